//! The in-place terminal view of a running operation, as plain frames of text (pure, so it is
//! tested by rendering frames to strings): a header with counts and elapsed time, then one line
//! per resource that is in progress or failed.

use std::time::Duration;

use crate::converge::model::{Phase, StackEvent, phase};

/// One resource being worked on.
#[derive(Debug, Clone, PartialEq)]
struct Active {
    logical_id: String,
    resource_type: String,
    status: String,
    reason: Option<String>,
    /// When its current status began, as elapsed time of the operation.
    since: Duration,
}

/// The state behind the view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    stack: String,
    stack_status: String,
    total: usize,
    done: usize,
    active: Vec<Active>,
}

impl LiveView {
    /// A view of `stack`, where `total` resources will change.
    pub fn start(&mut self, stack: &str, total: usize) {
        *self = LiveView {
            stack: stack.to_string(),
            total,
            ..LiveView::default()
        };
    }

    /// Records an event. Returns the summary line to scroll above the view when a resource is done.
    pub fn event(&mut self, event: &StackEvent, elapsed: Duration) -> Option<String> {
        if event.logical_id == self.stack || event.resource_type == "AWS::CloudFormation::Stack" {
            self.stack_status = event.status.as_str().to_string();
            return None;
        }
        let position = self
            .active
            .iter()
            .position(|a| a.logical_id == event.logical_id);
        if phase(&event.status) == Phase::Complete {
            if let Some(i) = position {
                let a = self.active.remove(i);
                self.done += 1;
                let took = elapsed.saturating_sub(a.since).as_secs();
                return Some(format!(
                    "{}  {}  {}  {took}s",
                    a.logical_id,
                    a.resource_type,
                    event.status.as_str()
                ));
            }
            self.done += 1;
            return Some(format!(
                "{}  {}  {}",
                event.logical_id,
                event.resource_type,
                event.status.as_str()
            ));
        }
        let active = Active {
            logical_id: event.logical_id.clone(),
            resource_type: event.resource_type.clone(),
            status: event.status.as_str().to_string(),
            reason: event.reason.clone(),
            since: elapsed,
        };
        match position {
            Some(i) => self.active[i] = active,
            None => self.active.push(active),
        }
        None
    }

    /// Whether the view is about `stack`.
    pub fn is_for(&self, stack: &str) -> bool {
        self.stack == stack
    }

    /// The stack's own status, from polling.
    pub fn stack_status(&mut self, status: &str) {
        self.stack_status = status.to_string();
    }

    /// The lines to draw now.
    pub fn frame(&self, elapsed: Duration) -> Vec<String> {
        let total = if self.total > 0 {
            self.total.to_string()
        } else {
            "?".into()
        };
        let mut lines = vec![format!(
            "{}  {}  {}/{total} done  +{}s",
            self.stack,
            if self.stack_status.is_empty() {
                "…"
            } else {
                &self.stack_status
            },
            self.done,
            elapsed.as_secs()
        )];
        let width = self
            .active
            .iter()
            .map(|a| a.logical_id.len())
            .max()
            .unwrap_or(0);
        let type_width = self
            .active
            .iter()
            .map(|a| a.resource_type.len())
            .max()
            .unwrap_or(0);
        for a in &self.active {
            let reason = a
                .reason
                .as_deref()
                .map(|r| format!("  {r}"))
                .unwrap_or_default();
            lines.push(format!(
                "  {:width$}  {:type_width$}  {}  {}s{reason}",
                a.logical_id,
                a.resource_type,
                a.status,
                elapsed.saturating_sub(a.since).as_secs()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            id: format!("{id}-{status}"),
            logical_id: id.into(),
            resource_type: kind.into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            timestamp: std::time::SystemTime::UNIX_EPOCH,
            token: None,
        }
    }

    #[test]
    fn frames_show_what_is_running_and_scroll_what_is_done() {
        let mut view = LiveView::default();
        view.start("notes-dev", 3);
        let s = Duration::from_secs;
        assert_eq!(
            view.event(
                &event(
                    "notes-dev",
                    "AWS::CloudFormation::Stack",
                    "UPDATE_IN_PROGRESS",
                    None
                ),
                s(0)
            ),
            None
        );
        assert_eq!(
            view.event(
                &event("Api", "AWS::Lambda::Function", "UPDATE_IN_PROGRESS", None),
                s(1)
            ),
            None
        );
        assert_eq!(
            view.event(
                &event(
                    "NotesTable",
                    "AWS::DynamoDB::Table",
                    "UPDATE_IN_PROGRESS",
                    None
                ),
                s(2)
            ),
            None
        );
        assert_eq!(
            view.frame(s(5)),
            [
                "notes-dev  UPDATE_IN_PROGRESS  0/3 done  +5s",
                "  Api         AWS::Lambda::Function  UPDATE_IN_PROGRESS  4s",
                "  NotesTable  AWS::DynamoDB::Table   UPDATE_IN_PROGRESS  3s",
            ]
        );
        let scrolled = view.event(
            &event("Api", "AWS::Lambda::Function", "UPDATE_COMPLETE", None),
            s(7),
        );
        assert_eq!(
            scrolled.as_deref(),
            Some("Api  AWS::Lambda::Function  UPDATE_COMPLETE  6s")
        );
        view.event(
            &event(
                "NotesTable",
                "AWS::DynamoDB::Table",
                "UPDATE_FAILED",
                Some("Throughput exceeds the limit"),
            ),
            s(8),
        );
        assert_eq!(
            view.frame(s(9)),
            [
                "notes-dev  UPDATE_IN_PROGRESS  1/3 done  +9s",
                "  NotesTable  AWS::DynamoDB::Table  UPDATE_FAILED  1s  Throughput exceeds the limit",
            ]
        );
    }
}
