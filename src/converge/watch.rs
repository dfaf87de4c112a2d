//! Watching one CloudFormation operation: which events are its own, when to poll next, when to
//! describe the stack. The engine's loop around it handles Ctrl-C and decides when it ended.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudformation::types::StackStatus;

use super::cloud::Cloud;
use super::decide::is_in_progress;
use super::model::{Change, Progress, Stack, StackEvent, Ui};

/// How often to poll: starts fast, backs off to `max`; once events show a real operation (they
/// carry its token), at `steady`, and at `near_end` when its events say its end is close.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    /// The first delay.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The pace of polls that read tagged events.
    pub steady: Duration,
    /// The pace once every resource the operation changes is done.
    pub near_end: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        // Under one request a second while CloudFormation works (on a backend that tags events;
        // two on one that does not): quick first polls for quick operations, then steady; the
        // end is caught by the near-end polls, not by the steady pace.
        Poll {
            first: Duration::from_millis(250),
            max: Duration::from_millis(1200),
            // With the near-end polls, under one request a second on average.
            steady: Duration::from_millis(1500),
            near_end: Duration::from_millis(250),
        }
    }
}

impl Poll {
    /// The delay after `delay`.
    pub(super) fn next(&self, delay: Duration) -> Duration {
        (delay * 8 / 5).min(self.max)
    }
}

/// Polls made sooner ([`Poll::near_end`]) once every changed resource is done, before the steady
/// pace resumes (a cleanup after replacements can take minutes).
const SOONER_POLLS: u32 = 4;

/// Polls by events alone describe the stack at least this often anyway.
const DESCRIBE_AT_LEAST_EVERY: u32 = 30;

/// How far back event paging reaches (clocks may disagree; [`is_new`] decides what is new).
const HISTORY: Duration = Duration::from_secs(300);

/// What a watch knows between polls.
pub(super) struct Watch<'a> {
    stack: &'a Stack,
    token: Option<&'a str>,
    started: Instant,
    /// The resources the operation changes: once all are done, the stack's own end is close
    /// (CloudFormation ends it right after the last resource, cleanup aside), so a few polls
    /// come sooner.
    expected: &'a [Change],
    done: HashSet<&'a str>,
    sooner: u32,
    /// Which events belong to the operation: see [`is_new`]. `since` only bounds paging.
    began: SystemTime,
    since: SystemTime,
    seen: HashSet<String>,
    /// Every event of the operation seen so far, oldest first.
    pub all: Vec<StackEvent>,
    /// AWS tags this operation's events with its token: then a stack-level event says when it
    /// ended, and DescribeStacks is needed only once, at the end. Otherwise every poll
    /// describes the stack.
    pub tagged: bool,
    /// Quiet: events are read once while the operation runs, to learn whether they are tagged
    /// (then an events poll is as cheap as a DescribeStacks, and tells more).
    probed: bool,
    /// A missed stack-level event must not leave the watch waiting forever.
    polls_since_described: u32,
    /// The stack's status as last seen.
    pub status: StackStatus,
    /// The wait before the next poll.
    pub delay: Duration,
}

impl<'a> Watch<'a> {
    pub(super) fn new(
        stack: &'a Stack,
        token: Option<&'a str>,
        started: Instant,
        expected: &'a [Change],
        first: Duration,
    ) -> Self {
        let began = SystemTime::now() - started.elapsed();
        Watch {
            stack,
            token,
            started,
            expected,
            done: HashSet::new(),
            sooner: 0,
            began,
            since: began - HISTORY,
            seen: HashSet::new(),
            all: Vec::new(),
            tagged: false,
            probed: false,
            polls_since_described: 0,
            status: stack.status.clone(),
            delay: first,
        }
    }

    /// The stack was described: whether to read events too (once, while it runs, to learn
    /// whether they are tagged).
    pub(super) fn described(&mut self, described: Option<&Stack>) -> bool {
        self.polls_since_described = 0;
        let running = described.is_some_and(|s| is_in_progress(&s.status));
        let read = running && !self.probed;
        self.probed |= running;
        read
    }

    /// The stack is being described again, whatever the events said.
    pub(super) fn redescribed(&mut self) {
        self.polls_since_described = 0;
    }

    /// The operation's events not yet seen (now marked seen), oldest first.
    pub(super) async fn new_events(&mut self, cloud: &impl Cloud) -> Vec<StackEvent> {
        let mut events = cloud
            .events(&self.stack.id, self.since)
            .await
            .unwrap_or_default();
        events.retain(|e| !self.seen.contains(&e.id) && is_new(e, self.token, self.began));
        events.reverse(); // oldest first
        for event in &events {
            self.seen.insert(event.id.clone());
        }
        events
    }

    /// Shows a poll's events and notes what they say; whether the stack's own event says the
    /// operation ended.
    pub(super) fn take(&mut self, events: Vec<StackEvent>, ui: &impl Ui) -> bool {
        let name = &self.stack.name;
        let mut ended = false;
        for event in events {
            if self.token.is_some() && event.token.as_deref() == self.token {
                self.tagged = true;
            }
            if event.logical_id == *name && event.resource_type == "AWS::CloudFormation::Stack" {
                self.status = StackStatus::from(event.status.as_str());
                ended |= !is_in_progress(&self.status);
            } else if let Some(change) = self
                .expected
                .iter()
                .find(|c| c.logical_id == event.logical_id)
                && !event.status.as_str().ends_with("_IN_PROGRESS")
            {
                self.done.insert(change.logical_id.as_str());
            }
            ui.progress(Progress::Event {
                stack: name.clone(),
                event: event.clone(),
                elapsed: self.started.elapsed(),
            });
            self.all.push(event);
        }
        ended
    }

    /// A poll is over: the wait before the next.
    pub(super) fn polled(&mut self, poll: &Poll) {
        self.polls_since_described += 1;
        let near_end =
            self.tagged && !self.expected.is_empty() && self.done.len() == self.expected.len();
        self.delay = if near_end && self.sooner < SOONER_POLLS {
            self.sooner += 1;
            poll.near_end
        } else if self.tagged {
            // A real operation (its events are tagged): it takes minutes, and its events say
            // when its end is near; the quick first polls are for emulators.
            poll.steady
        } else {
            poll.next(self.delay)
        };
    }

    /// Whether the stack is due a DescribeStacks, though its events said nothing of an end.
    pub(super) fn describe_due(&self) -> bool {
        self.polls_since_described >= DESCRIBE_AT_LEAST_EVERY
    }

    /// Still running: shown, with the status just described when there is one.
    pub(super) fn waiting(&mut self, ui: &impl Ui, described: Option<&StackStatus>) {
        if let Some(status) = described {
            self.status = status.clone();
        }
        ui.progress(Progress::Waiting {
            stack: self.stack.name.clone(),
            status: self.status.clone(),
            elapsed: self.started.elapsed(),
        });
    }
}

/// Whether `event` belongs to the operation that began at `began` (local clock) with `token`.
/// AWS tags every event of an operation with its ClientRequestToken, so a tagged event is
/// judged by its token alone, whatever the clocks say. An untagged one (an operation deployer
/// did not start, or a backend that does not tag, like moto) counts from `began`, to the
/// millisecond CloudFormation stamps events with. No DescribeStackEvents before the operation.
pub fn is_new(event: &StackEvent, token: Option<&str>, began: SystemTime) -> bool {
    match (token, event.token.as_deref()) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => {
            let ms = began
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let began_ms = SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
            event.timestamp >= began_ms
        }
    }
}
