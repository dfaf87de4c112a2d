//! What people see: progress on stderr, results on stdout. In CI (or any stderr that is not a
//! terminal) append-only lines with a heartbeat; on a terminal, the running operation as a view
//! redrawn in place under the lines. `-q` keeps only warnings and results.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use console::style;
use deployer_local::Event;

use super::import::{CI_EVERY, DUPLICATES_SHOWN, ImportView, progress_line};
use super::printer::{Printer, Sink};
use super::record::{ImportCounts, LocalRoute};
use super::{Human, change_lines, clock, human_size, live, rough_age, table_wait_line};
use crate::converge::engine::Progress;
use crate::converge::ephemeral::{StackRow, Verdict, format_time};
use crate::converge::hotswap::{Drift, Why};
use crate::converge::model::{Phase, Stack, StackEvent, TableBusy, phase};
use crate::converge::retained::{Orphan, monthly_storage_usd};

/// The printer for people.
pub struct Terminal {
    sink: Sink,
    /// `-q`: only warnings and results.
    quiet: bool,
    /// `-v`: every line of the build tools.
    verbose: Cell<bool>,
    /// Draw the in-place view (a terminal, not quiet, not verbose).
    live: Cell<bool>,
    view: RefCell<live::LiveView>,
    /// Lines of the view currently on screen, to erase before the next draw.
    drawn: Cell<usize>,
    /// What those lines say: an unchanged frame is not redrawn.
    last_frame: RefCell<Vec<String>>,
    /// The in-place line under a running build or import: its latest state.
    status_line: RefCell<Option<String>>,
}

impl Terminal {
    /// A printer writing to `sink`; `live` draws the view in place.
    pub fn new(sink: Sink, quiet: bool, live: bool) -> Self {
        Terminal {
            sink,
            quiet,
            verbose: Cell::new(false),
            live: Cell::new(live && !quiet),
            view: RefCell::new(live::LiveView::default()),
            drawn: Cell::new(0),
            last_frame: RefCell::new(Vec::new()),
            status_line: RefCell::new(None),
        }
    }

    /// A line on stderr, above the live view when there is one.
    fn line(&self, line: impl std::fmt::Display) {
        self.erase_view();
        self.sink.stderr_line(line);
    }

    /// A progress line (not with `-q`), the view redrawn under it.
    fn say(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            self.line(line);
            self.draw_view(None);
        }
    }

    fn erase_view(&self) {
        let mut err = self.sink.err();
        for _ in 0..self.drawn.replace(0) {
            // Cursor up one line, erase it.
            let _ = write!(err, "\x1b[1A\x1b[2K");
        }
    }

    /// Redraws the live view (while an operation is being watched) and the status line.
    fn draw_view(&self, elapsed: Option<Duration>) {
        if !self.live.get() {
            return;
        }
        let mut frame = elapsed.map_or_else(Vec::new, |e| self.view.borrow().frame(e));
        frame.extend(self.status_line.borrow().clone());
        if frame.is_empty() || (self.drawn.get() > 0 && *self.last_frame.borrow() == frame) {
            // Nothing changed on screen: a redraw would only flicker.
            return;
        }
        self.erase_view();
        let mut err = self.sink.err();
        for line in &frame {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.drawn.set(frame.len());
        *self.last_frame.borrow_mut() = frame;
    }

    fn take_view_down(&self) {
        self.erase_view();
        *self.view.borrow_mut() = live::LiveView::default();
    }

    /// `HH:MM:SS +Ns  Logical  Type  STATUS  reason`: one append-only line per event.
    fn event_line(event: &StackEvent, elapsed: Duration) -> String {
        let text = event.status.as_str();
        let status = match phase(&event.status) {
            Phase::Failed => style(text).red().for_stderr(),
            Phase::Complete => style(text).green().for_stderr(),
            Phase::InProgress => style(text).for_stderr(),
        };
        let reason = event
            .reason
            .as_deref()
            .map(|r| format!("  {r}"))
            .unwrap_or_default();
        format!(
            "{} +{}s  {}  {}  {status}{reason}",
            clock(event.timestamp),
            elapsed.as_secs(),
            event.logical_id,
            event.resource_type
        )
    }

    /// A stack event: the view advanced (and finished resources listed) on a terminal, a line
    /// elsewhere.
    fn event(&self, stack: &str, event: &StackEvent, elapsed: Duration) {
        if !self.live.get() {
            return self.line(Self::event_line(event, elapsed));
        }
        if !self.view.borrow().is_for(stack) {
            // Deletes and waits have no change set to count from.
            self.view.borrow_mut().start(stack, 0);
        }
        let done = self.view.borrow_mut().event(event, elapsed);
        if let Some(line) = done {
            self.line(format!("{} {line}", style("✓").green().for_stderr()));
        } else if phase(&event.status) == Phase::Failed {
            self.line(Self::event_line(event, elapsed));
        }
        self.draw_view(Some(elapsed));
    }

    /// Still running: the view's status on a terminal, a heartbeat line elsewhere.
    fn waiting(&self, stack: &str, status: &str, elapsed: Duration) {
        if self.live.get() {
            self.view.borrow_mut().stack_status(status);
            self.draw_view(Some(elapsed));
        } else if self.sink.due_for_heartbeat() {
            self.line(format!(
                "{} +{}s  {stack}  still {status}",
                clock(SystemTime::now()),
                elapsed.as_secs()
            ));
        }
    }

    fn code_updated(
        &self,
        function: &str,
        lambda_name: &str,
        sha256: &str,
        why: Why,
        elapsed: Duration,
    ) {
        let what = match why {
            Why::Hotswap => "hotswapped",
            Why::Restore => "back on its template's code",
        };
        self.say(format!(
            "{} {function} ({lambda_name}): {what}, code {} live in {:.1} s",
            style("✓").green().for_stderr(),
            &sha256[..12.min(sha256.len())],
            elapsed.as_secs_f64()
        ));
    }
}

impl Printer for Terminal {
    fn sink(&self) -> &Sink {
        &self.sink
    }

    fn is_live(&self) -> bool {
        self.live.get()
    }

    fn set_verbose(&self, verbose: bool) {
        // The lines -v adds would tear the live view.
        self.verbose.set(verbose);
        self.live.set(self.live.get() && !verbose);
    }

    fn shows_events(&self) -> bool {
        !self.quiet
    }

    fn progress(&self, progress: Progress) {
        let arrow = style("▸").cyan().for_stderr();
        match progress {
            // Warnings show even with -q: they are about the result.
            Progress::Warning(message) => self.line(format!(
                "{} {message}",
                style("warning:").yellow().bold().for_stderr()
            )),
            _ if self.quiet => {}
            Progress::Step(message) => self.say(format!("{arrow} {message}")),
            Progress::Artifact {
                function,
                key,
                size,
                uploaded,
            } => {
                let what = match uploaded {
                    true => "uploaded",
                    false => "already in the bucket",
                };
                self.say(format!(
                    "{arrow} artifact {function}: {} {key} ({what})",
                    human_size(size)
                ));
            }
            Progress::CodeUpdated {
                function,
                lambda_name,
                sha256,
                why,
                elapsed,
            } => self.code_updated(&function, &lambda_name, &sha256, why, elapsed),
            Progress::Drift { stack, resources } => {
                self.say(format!(
                    "Drift of {stack} (~ changed, - deleted outside CloudFormation; ? not checked):"
                ));
                for line in drift_lines(&resources) {
                    self.say(format!("  {line}"));
                }
            }
            Progress::Shift(shift) => self.say(format!("{arrow} {}", super::shift_line(&shift))),
            Progress::Changes { stack, changes } => {
                self.say(format!(
                    "Changes to {stack} (+ add, ~ modify, - remove, ! replace):"
                ));
                for line in change_lines(&changes) {
                    self.say(format!("  {line}"));
                }
                self.view.borrow_mut().start(&stack, changes.len());
            }
            Progress::Event {
                stack,
                event,
                elapsed,
            } => self.event(&stack, &event, elapsed),
            Progress::Waiting {
                stack,
                status,
                elapsed,
            } => self.waiting(&stack, status.as_str(), elapsed),
            Progress::TableBusy { .. } => {}
        }
    }

    fn table_wait(&self, _: String, table: String, busy: TableBusy, elapsed: Duration) {
        self.say(format!(
            "{} {}",
            style("▸").cyan().for_stderr(),
            table_wait_line(&table, &busy, elapsed)
        ));
    }

    fn result(&self, _: &str, human: &Human) {
        *self.status_line.borrow_mut() = None;
        self.take_view_down();
        if let Some(line) = &human.step {
            self.say(line);
        }
        if let Some(headline) = &human.headline {
            let mark = match human.failed {
                false => style("✓").green().bold().for_stderr(),
                true => style("✗").red().bold().for_stderr(),
            };
            self.line(format!("{mark} {headline}"));
        }
        for line in &human.details {
            self.line(line);
        }
        for line in &human.stdout {
            self.sink.stdout_line(line);
        }
    }

    /// `✓ stack: GET /health 200 in 43 ms`.
    fn verified(&self, stack: &str, request: &str, status: u16, latency: Duration) {
        if !self.quiet {
            self.take_view_down();
            self.line(format!(
                "{} {stack}: {request} {status} in {} ms",
                style("✓").green().bold().for_stderr(),
                latency.as_millis()
            ));
        }
    }

    fn status(&self, stack: Option<&Stack>, name: &str, drift: Option<&Drift>) {
        let Some(s) = stack else {
            return self.sink.stdout_line(format!("{name}: does not exist"));
        };
        let reason = s
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        self.sink
            .stdout_line(format!("{}: {}{reason}", s.name, s.status.as_str()));
        let now = SystemTime::now();
        for (function, code) in drift.iter().flat_map(|d| &d.functions) {
            let since = crate::converge::hotswap::age(&code.at, now)
                .map(|age| format!(" for {}", rough_age(age)))
                .unwrap_or_default();
            self.sink.stdout_line(format!(
                "  {function}: runs hotswapped code {}{since}, not its template's; `deployer up` puts the template's code back",
                &code.sha256[..12.min(code.sha256.len())]
            ));
        }
    }

    fn gc_verdict(&self, stack: &str, verdict: &Verdict) {
        let (action, reason) = match verdict {
            Verdict::Delete(r) => ("delete", r),
            Verdict::Skip(r) => ("skip", r),
        };
        self.say(format!("{action:6} {stack}  ({reason})"));
    }

    fn stack_list(&self, rows: &[StackRow]) {
        let width = rows.iter().map(|r| r.stack.len()).max().unwrap_or(5).max(5);
        self.sink.stdout_line(format!(
            "{:width$}  {:12}  {:10}  {:26}  {:20}  {:20}  {:>10}  SHARED ALB",
            "STACK", "APP", "ENV", "STATUS", "UPDATED", "EXPIRES", "USD/MONTH"
        ));
        for r in rows {
            let expires = r.expires.as_deref().unwrap_or("-");
            let updated = r.updated.map(format_time).unwrap_or_default();
            let shared = r.shared_alb.as_deref().unwrap_or("-");
            let usd = r
                .monthly_fixed_cents
                .map_or("-".to_string(), |c| format!("{:.2}", c as f64 / 100.0));
            self.sink.stdout_line(format!(
                "{:width$}  {:12}  {:10}  {:26}  {updated:20}  {expires:20}  {usd:>10}  {shared}",
                r.stack,
                r.app,
                r.env,
                r.status.as_str()
            ));
        }
        // A shared load balancer's stack is counted in its envs' shares, not again.
        let total: u64 = rows
            .iter()
            .filter(|r| r.shared_alb.as_deref() != Some(r.stack.as_str()))
            .filter_map(|r| r.monthly_fixed_cents)
            .sum();
        if rows.iter().any(|r| r.monthly_fixed_cents.is_some()) {
            self.sink.stdout_line(format!(
                "total: ${:.2} a month before use (a shared load balancer counted in its envs' shares)",
                total as f64 / 100.0
            ));
        }
    }

    fn retained_tables(&self, tables: &[Orphan]) {
        let cost = |t: &Orphan| t.size_bytes.map(monthly_storage_usd);
        let width = tables
            .iter()
            .map(|t| t.table.len())
            .max()
            .unwrap_or(5)
            .max(5);
        self.sink.stdout_line(format!(
            "{:width$}  {:12}  {:10}  {:12}  {:>12}  {:>10}  USD/MONTH",
            "TABLE", "APP", "ENV", "SPEC NAME", "SIZE", "ITEMS"
        ));
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        for t in tables {
            let size = or_dash(
                t.size_bytes
                    .map(|b| format!("{:.1} MB", b as f64 / 1_000_000.0)),
            );
            let items = or_dash(t.item_count.map(|i| i.to_string()));
            let usd = or_dash(cost(t).map(|c| format!("{c:.2}")));
            self.sink.stdout_line(format!(
                "{:width$}  {:12}  {:10}  {:12}  {size:>12}  {items:>10}  {usd}",
                t.table, t.app, t.env, t.spec_table
            ));
        }
        let total: f64 = tables.iter().filter_map(cost).sum();
        self.say(format!(
            "{} retained table{} of envs without a stack: about ${total:.2} a month of storage (us-east-1's Standard price; `up --adopt-retained` in the env brings one back, or delete it in DynamoDB)",
            tables.len(),
            if tables.len() == 1 { "" } else { "s" }
        ));
    }

    fn outputs(&self, _: &str, outputs: &[(String, String)]) {
        for (k, v) in outputs {
            self.sink.stdout_line(format!("{k}: {v}"));
        }
    }

    fn log_event(&self, _: &str, event: &crate::aws::LogEvent) {
        let time = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(event.timestamp_ms).unwrap_or_default());
        self.sink
            .stdout_line(format!("{} {}", clock(time), event.message));
    }

    fn build_started(&self, function: &str, method: crate::build::Method) {
        self.say(format!(
            "{} building {function} with {method}",
            style("▸").cyan().for_stderr()
        ));
    }

    fn build_line(&self, function: &str, line: &str) {
        self.line(style(format!("  {function} │ {line}")).dim().for_stderr());
    }

    /// The status line on a terminal; a heartbeat line in CI (none with `-v`, whose lines say
    /// the build is alive).
    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str) {
        let last: String = last_line.chars().take(100).collect();
        if self.quiet {
        } else if self.live.get() {
            *self.status_line.borrow_mut() = Some(format!(
                "  building {function} +{}s  {last}",
                elapsed.as_secs()
            ));
            self.draw_view(None);
        } else if !self.verbose.get() && self.sink.due_for_heartbeat() {
            self.line(format!(
                "{} +{}s  still building {function}: {last}",
                clock(SystemTime::now()),
                elapsed.as_secs()
            ));
        }
    }

    fn build_finished(&self, function: &str, built: &crate::build::Built) {
        *self.status_line.borrow_mut() = None;
        self.erase_view();
        self.say(format!(
            "{} built {function} ({}): {} in {:.1} s",
            style("✓").green().for_stderr(),
            built.method,
            human_size(built.artifact.bytes.len()),
            built.elapsed.as_secs_f64()
        ));
    }

    /// Redrawn in place on a terminal, a line every few seconds in CI.
    fn import_progress(&self, view: &mut ImportView, counts: &ImportCounts) {
        if self.quiet {
        } else if self.live.get() {
            *self.status_line.borrow_mut() = Some(progress_line(counts));
            self.draw_view(None);
        } else if view.last_line.is_none_or(|at| at.elapsed() >= CI_EVERY) {
            view.last_line = Some(Instant::now());
            self.line(progress_line(counts));
        }
    }

    fn import_rejected(&self, row: u64, line: u64, reason: &str) {
        let place = match row == line {
            true => format!("row {row}"),
            false => format!("row {row} (line {line})"),
        };
        self.say(format!(
            "{} {place}: {reason}",
            style("rejected").yellow().bold().for_stderr()
        ));
    }

    /// The first few shown, the rest counted.
    fn import_duplicate(&self, view: &mut ImportView, row: u64, _: u64, key: &str) {
        if self.quiet || view.duplicates_shown >= DUPLICATES_SHOWN {
            return;
        }
        view.duplicates_shown += 1;
        let more = match view.duplicates_shown == DUPLICATES_SHOWN {
            true => " (further duplicates are only counted)",
            false => "",
        };
        self.say(format!(
            "{} row {row}: key {key} again; this row wins{more}",
            style("duplicate").yellow().for_stderr()
        ));
    }

    /// The in-place line goes with the view: its last state stays on screen.
    fn import_finished(&self, counts: &ImportCounts) {
        *self.status_line.borrow_mut() = None;
        self.take_view_down();
        if self.live.get() {
            self.line(progress_line(counts));
        }
    }

    fn local_table(&self, table: &str, physical: &str, endpoint: &str, created: bool) {
        let what = match created {
            true => "created",
            false => "already there, with its data",
        };
        self.say(format!("table {table}: {physical} at {endpoint} ({what})"));
    }

    fn local_ready(&self, stack: &str, url: &str, routes: Vec<LocalRoute>) {
        // The URL is the result: on stdout, even with -q.
        self.sink.stdout_line(url);
        if self.quiet {
            return;
        }
        self.line(format!(
            "{} {stack} served on {url} as its load balancer routes (Ctrl-C stops)",
            style("✓").green().for_stderr()
        ));
        for route in routes {
            let priority = route
                .priority
                .map_or_else(|| "default".to_string(), |p| p.to_string());
            let target = match (&route.function, route.fixed_status) {
                (Some(function), _) => function.clone(),
                (None, Some(status)) => format!("fixed {status}"),
                (None, None) => "-".into(),
            };
            self.line(format!(
                "  {priority:>7}  {:<32} → {target}",
                route.conditions
            ));
        }
    }

    fn local_event(&self, event: Event) {
        if self.quiet {
            return;
        }
        let prefix = |function: &str| style(format!("{function} │")).cyan().for_stderr();
        match event {
            Event::Started { function, pid } => self.line(format!(
                "{} started (pid {})",
                prefix(&function),
                pid.map_or_else(|| "?".into(), |p| p.to_string())
            )),
            Event::Exited { function, how } => {
                self.line(format!("{} process {how}", prefix(&function)))
            }
            Event::Log { function, line } => self.line(format!("{} {line}", prefix(&function))),
            Event::Request(served) => self.line(super::local::request_line(&served)),
        }
    }

    fn prompt(&self, question: &str) {
        self.erase_view();
        let mut err = self.sink.err();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
    }
}

/// One line per drifted resource, and one per property that differs under it.
fn drift_lines(resources: &[crate::converge::model::ResourceDrift]) -> Vec<String> {
    use crate::converge::model::StackResourceDriftStatus as S;
    let mut lines = Vec::new();
    for r in resources {
        let mark = match r.status {
            S::Modified => '~',
            S::Deleted => '-',
            _ => '?',
        };
        lines.push(format!(
            "{mark} {} ({}) {}",
            r.logical_id,
            r.resource_type,
            r.status.as_str()
        ));
        for d in &r.differences {
            let shown = |v: &str| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.to_string()
                }
            };
            lines.push(format!(
                "    {}: {} -> {}",
                d.path,
                shown(&d.expected),
                shown(&d.actual)
            ));
        }
    }
    lines
}
