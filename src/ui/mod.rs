//! What people and machines see: progress on stderr (an in-place view on a terminal, append-only
//! lines elsewhere), or JSON lines on stdout (`--json`). The engine never prints; it reports
//! [`Progress`] to the [`Reporter`], which hands everything to the printer of the output mode
//! ([`printer::Printer`]: [`json::JsonLines`] or [`terminal::Terminal`]).

pub mod import;
pub mod json;
pub mod live;
pub mod local;
pub mod printer;
pub mod record;
pub mod terminal;

use std::cell::{Cell, RefCell};
use std::io::{BufRead, IsTerminal};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use console::style;

use crate::converge::engine::{Confirmation, Progress, Ui};
use crate::converge::model::{Change, IndexStatus, Stack, TableBusy};
use printer::{Printer, Sink};
use record::{ImportCounts, LocalRoute};

/// How output is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people on stderr; results on stdout.
    Human {
        /// Only the result.
        quiet: bool,
    },
    /// One JSON object per line on stdout, then a summary object.
    Json,
}

/// A command's result: the `summary` record that ends its `--json` output (its fields beside
/// `type` and `command`), and what people see. Each verb defines its own, beside its `run`, so a
/// field is added in one place.
pub trait Outcome: serde::Serialize {
    /// `command` in the summary record.
    fn command(&self) -> &'static str;
    /// The result as people see it.
    fn human(&self) -> Human;
}

/// A result as people see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Human {
    /// `✓ <headline>` on stderr (`✗` when `failed`).
    pub headline: Option<String>,
    /// The command failed: the headline says why.
    pub failed: bool,
    /// A plain line on stderr, which `-q` hides: a result that is neither a success nor a
    /// failure (`local` stopped).
    pub step: Option<String>,
    /// Lines under the headline, on stderr.
    pub details: Vec<String>,
    /// Lines on stdout: what scripts read without `--json` (outputs, artifacts).
    pub stdout: Vec<String>,
}

impl Human {
    /// Only a `✓` line.
    pub fn done(headline: String) -> Self {
        Human {
            headline: Some(headline),
            ..Human::default()
        }
    }

    /// Only a line on stderr, which `-q` hides.
    pub fn step(line: String) -> Self {
        Human {
            step: Some(line),
            ..Human::default()
        }
    }
}

/// A result's summary record as one line of JSON: `{"type":"summary","command":...}` and the
/// result's fields.
pub fn summary_line<O: Outcome>(outcome: &O) -> String {
    let record = SummaryRecord {
        kind: "summary",
        command: outcome.command(),
        outcome,
    };
    // Serializing these types cannot fail: no maps with non-string keys, no custom errors.
    serde_json::to_string(&record).unwrap_or_default()
}

/// The summary record: `{"type":"summary","command":...}` and the result's fields.
#[derive(serde::Serialize)]
struct SummaryRecord<'a, O> {
    #[serde(rename = "type")]
    kind: &'static str,
    command: &'static str,
    #[serde(flatten)]
    outcome: &'a O,
}

/// The reporter for one command: what commands and the engine report to, handed to the printer
/// of the output mode. It keeps what is the same in every mode: `-v`, the time spent at
/// prompts, and which table wait was shown last.
pub struct Reporter {
    printer: Box<dyn Printer>,
    /// `-v`: one line per AWS call, every line of the build tools.
    verbose: bool,
    /// Time spent waiting for answers at prompts: not the command's own time.
    at_prompts: Cell<Duration>,
    /// The table wait shown last: a wait is shown again only when it changes, or as a heartbeat.
    last_table_wait: RefCell<Option<(String, TableBusy)>>,
}

/// After this long without a line, CI output gets a heartbeat so logs never look hung.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// What a captured reporter wrote: stdout and stderr.
#[derive(Clone, Default)]
pub struct Captured {
    out: Rc<RefCell<Vec<u8>>>,
    err: Rc<RefCell<Vec<u8>>>,
}

impl Captured {
    /// Everything written to stdout.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.borrow()).into_owned()
    }
    /// Everything written to stderr.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.borrow()).into_owned()
    }
}

struct Shared(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether stderr is a terminal that can redraw lines.
fn stderr_is_live_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// `HH:MM:SS` (UTC) of a time.
fn clock(time: SystemTime) -> String {
    let s = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// `812 B`, `14.2 KB`, `3.1 MB`.
pub fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1_000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

/// One line per change: `+ ApiFunction  AWS::Lambda::Function`.
pub fn change_lines(changes: &[Change]) -> Vec<String> {
    let width = changes
        .iter()
        .map(|c| c.logical_id.len())
        .max()
        .unwrap_or(0);
    changes
        .iter()
        .map(|c| {
            let note = match c.marker() {
                '!' => "  (replaced)",
                _ => "",
            };
            format!(
                "{} {:width$}  {}{note}",
                c.marker(),
                c.logical_id,
                c.resource_type
            )
        })
        .collect()
}

/// "3 min", "2 h": how long, to the unit that matters.
fn rough_age(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

impl Reporter {
    /// A reporter in `format` on stdout and stderr; the live view when stderr is a terminal.
    pub fn new(format: Format) -> Self {
        let live = format == Format::Human { quiet: false } && stderr_is_live_terminal();
        let sink = Sink::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
        Reporter::with_printer(format, live, sink)
    }

    /// A reporter writing into memory (tests): `live` selects the terminal view.
    pub fn capture(format: Format, live: bool) -> (Self, Captured) {
        let captured = Captured::default();
        let sink = Sink::new(
            Box::new(Shared(captured.out.clone())),
            Box::new(Shared(captured.err.clone())),
        );
        (Reporter::with_printer(format, live, sink), captured)
    }

    fn with_printer(format: Format, live: bool, sink: Sink) -> Self {
        let printer: Box<dyn Printer> = match format {
            Format::Json => Box::new(json::JsonLines::new(sink)),
            Format::Human { quiet } => Box::new(terminal::Terminal::new(sink, quiet, live)),
        };
        Reporter {
            printer,
            verbose: false,
            at_prompts: Cell::new(Duration::ZERO),
            last_table_wait: RefCell::new(None),
        }
    }

    /// How long the person took to answer prompts so far.
    pub fn time_at_prompts(&self) -> Duration {
        self.at_prompts.get()
    }

    /// Whether a line is redrawn in place (a terminal, not quiet, not JSON).
    pub fn is_live(&self) -> bool {
        self.printer.is_live()
    }

    /// The same reporter printing each AWS call (`-v`); lines replace the live view, which
    /// those calls would tear.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self.printer.set_verbose(verbose);
        self
    }

    /// The same reporter with another heartbeat interval (tests).
    pub fn with_heartbeat(self, interval: Duration) -> Self {
        self.printer.sink().set_heartbeat(interval);
        self
    }

    /// Where the AWS layer logs its calls, with `-v`.
    pub fn call_log(&self) -> Option<crate::aws::CallLog> {
        self.verbose.then_some(print_call as crate::aws::CallLog)
    }

    /// A command's result: its summary record, or for people its headline, details and the
    /// lines on stdout.
    pub fn finish<O: Outcome>(&self, outcome: &O) {
        self.printer
            .result(&summary_line(outcome), &outcome.human());
    }

    /// The service answered the verification request (`✓ stack: GET /health 200 in 43 ms`; in
    /// JSON it is part of the summary).
    pub fn verified(&self, stack: &str, request: &str, status: u16, latency: Duration) {
        self.printer.verified(stack, request, status, latency);
    }

    /// One CloudWatch Logs event.
    pub fn log_event(&self, function: &str, event: &crate::aws::LogEvent) {
        self.printer.log_event(function, event);
    }

    /// `status`: one stack's state.
    pub fn status(
        &self,
        stack: Option<&Stack>,
        name: &str,
        drift: Option<&crate::converge::hotswap::Drift>,
    ) {
        self.printer.status(stack, name, drift);
    }

    /// One `gc` decision.
    pub fn gc_verdict(&self, stack: &str, verdict: &crate::converge::ephemeral::Verdict) {
        self.printer.gc_verdict(stack, verdict);
    }

    /// `ls`: one row per stack.
    pub fn stack_list(&self, rows: &[crate::converge::ephemeral::StackRow]) {
        self.printer.stack_list(rows);
    }

    /// A warning: no cost estimate, the committed price table lacking the region.
    pub fn warn_no_prices(&self, region: &str) {
        self.printer.progress(Progress::Warning(format!(
            "no cost estimate: the committed price table has no prices for {region} (`--prices live` reads them from the Price List Query API)"
        )));
    }

    /// `ls --retained`: one line per table, and the monthly total; or a record each.
    pub fn retained_tables(&self, tables: &[crate::converge::retained::Orphan]) {
        self.printer.retained_tables(tables);
    }

    /// `outputs`: key/value lines, or one `outputs` record.
    pub fn outputs(&self, stack: &str, outputs: &[(String, String)]) {
        self.printer.outputs(stack, outputs);
    }

    /// `table import`'s counters, as often as they come (each printer paces them).
    pub fn import_progress(&self, view: &mut import::ImportView, counts: &ImportCounts) {
        self.printer.import_progress(view, counts);
    }

    /// A rejected row.
    pub fn import_rejected(&self, row: u64, line: u64, reason: &str) {
        self.printer.import_rejected(row, line, reason);
    }

    /// A row whose key an earlier row had: the first few shown, the rest counted.
    pub fn import_duplicate(&self, view: &mut import::ImportView, row: u64, line: u64, key: &str) {
        self.printer.import_duplicate(view, row, line, key);
    }

    /// The import ended; its result follows.
    pub fn import_finished(&self, counts: &ImportCounts) {
        self.printer.import_finished(counts);
    }

    /// `local`: a spec table at the local endpoint.
    pub fn local_table(&self, table: &str, physical: &str, endpoint: &str, created: bool) {
        self.printer.local_table(table, physical, endpoint, created);
    }

    /// `local`: serving, and the routes in the order the load balancer evaluates them.
    pub fn local_ready(&self, stack: &str, url: &str, routes: Vec<LocalRoute>) {
        self.printer.local_ready(stack, url, routes);
    }

    /// `local`: what the served functions did.
    pub fn local_event(&self, event: deployer_local::Event) {
        self.printer.local_event(event);
    }
}

/// Builds take minutes: a progress line (in place on a terminal, a heartbeat elsewhere), the
/// tool's every line with `-v`, and the tail of it in the error when it fails.
impl crate::build::Observer for Reporter {
    fn build_started(&self, function: &str, method: crate::build::Method) {
        self.printer.build_started(function, method);
    }

    fn build_line(&self, function: &str, line: &str) {
        if self.verbose {
            self.printer.build_line(function, line);
        }
    }

    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str) {
        self.printer.build_waiting(function, elapsed, last_line);
    }

    fn build_finished(&self, function: &str, built: &crate::build::Built) {
        self.printer.build_finished(function, built);
    }
}

/// `-v` output: straight to stderr, dimmed; it never goes to stdout, which may carry JSON.
fn print_call(line: String) {
    eprintln!("{}", style(line).dim().for_stderr());
}

/// What an update waits for, for people: `waiting for index by_owner of NotesTable to
/// backfill: 41 % (12 s)`.
pub fn table_wait_line(table: &str, busy: &TableBusy, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match busy {
        TableBusy::Table(status) => {
            format!(
                "waiting for table {table} to become ACTIVE ({}, {secs} s)",
                status.as_str()
            )
        }
        TableBusy::Index {
            name,
            status: IndexStatus::Creating,
            percent: Some(p),
        } => format!("waiting for index {name} of {table} to backfill: {p} % ({secs} s)"),
        TableBusy::Index {
            name,
            status: IndexStatus::Creating,
            percent: None,
        } => format!("waiting for index {name} of {table} to backfill ({secs} s)"),
        TableBusy::Index {
            name,
            status: IndexStatus::Deleting,
            ..
        } => format!("waiting for index {name} of {table} to be deleted ({secs} s)"),
        TableBusy::Index { name, status, .. } => format!(
            "waiting for index {name} of {table} to become ACTIVE ({}, {secs} s)",
            status.as_str()
        ),
    }
}

/// A rollout's step for people: `api: 10 % on version 42, 4 min 50 s left, alarms OK`.
pub fn shift_line(shift: &crate::converge::model::ShiftState) -> String {
    use crate::converge::model::ShiftPhase;
    let (function, from, to) = (&shift.function, &shift.from, &shift.to);
    match shift.phase {
        ShiftPhase::Moved | ShiftPhase::Holding => {
            let left = shift.left.as_secs();
            let left = match left {
                0..60 => format!("{left} s"),
                _ => format!("{} min {} s", left / 60, left % 60),
            };
            match shift.percent {
                100 => {
                    format!("{function}: every request on version {to}, alarms watched {left} more")
                }
                p => format!(
                    "{function}: {p} % on version {to} (the rest on {from}), {left} left, alarms OK"
                ),
            }
        }
        ShiftPhase::Finished => format!("{function}: every request on version {to}"),
        ShiftPhase::RolledBack => match &shift.alarm {
            Some(alarm) => format!(
                "{function}: alarm {} is {}: every request back on version {from}",
                alarm.name,
                alarm.status.as_str()
            ),
            None => format!("{function}: every request back on version {from}"),
        },
    }
}

/// A line for people on stderr from outside a command's reporter (`validate`, `init`, the final
/// error): the one other place deployer writes to the terminal.
pub fn note(line: impl std::fmt::Display) {
    eprintln!("{line}");
}

impl Ui for Reporter {
    fn shows_events(&self) -> bool {
        self.printer.shows_events()
    }

    fn progress(&self, progress: Progress) {
        if let Progress::Shift(shift) = &progress {
            // A held step is shown again only as a heartbeat; each move, end or rollback is.
            let holding = shift.phase == crate::converge::model::ShiftPhase::Holding;
            if holding && !self.printer.sink().due_for_heartbeat() {
                return;
            }
            return self.printer.progress(progress);
        }
        let Progress::TableBusy {
            stack,
            table,
            busy,
            elapsed,
        } = progress
        else {
            return self.printer.progress(progress);
        };
        // A wait is shown again only when it changes, or as a heartbeat.
        let shown = Some((table.clone(), busy.clone()));
        if *self.last_table_wait.borrow() == shown && !self.printer.sink().due_for_heartbeat() {
            return;
        }
        *self.last_table_wait.borrow_mut() = shown;
        self.printer.table_wait(stack, table, busy, elapsed);
    }

    fn confirm(&self, question: &str) -> Confirmation {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Confirmation::NotInteractive;
        }
        self.printer.prompt(question);
        let mut answer = String::new();
        let asked = Instant::now();
        let read = std::io::stdin().lock().read_line(&mut answer);
        self.at_prompts.set(self.at_prompts.get() + asked.elapsed());
        if read.is_err() {
            return Confirmation::No;
        }
        if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            Confirmation::Yes
        } else {
            Confirmation::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_reads_as_where_the_requests_go() {
        use crate::converge::model::{AlarmState, AlarmStatus, ShiftPhase, ShiftState};
        let state = |percent, left, phase, alarm: Option<&str>| ShiftState {
            stack: "notes-prod".into(),
            function: "api".into(),
            from: "41".into(),
            to: "42".into(),
            percent,
            left: Duration::from_secs(left),
            phase,
            alarm: alarm.map(|name| AlarmState {
                name: name.into(),
                status: AlarmStatus::Alarm,
                reason: "Threshold Crossed".into(),
            }),
        };
        for (shift, line) in [
            (
                state(10, 300, ShiftPhase::Moved, None),
                "api: 10 % on version 42 (the rest on 41), 5 min 0 s left, alarms OK",
            ),
            (
                state(10, 42, ShiftPhase::Holding, None),
                "api: 10 % on version 42 (the rest on 41), 42 s left, alarms OK",
            ),
            (
                state(100, 90, ShiftPhase::Holding, None),
                "api: every request on version 42, alarms watched 1 min 30 s more",
            ),
            (
                state(100, 0, ShiftPhase::Finished, None),
                "api: every request on version 42",
            ),
            (
                state(0, 0, ShiftPhase::RolledBack, Some("errors")),
                "api: alarm errors is ALARM: every request back on version 41",
            ),
            (
                state(0, 0, ShiftPhase::RolledBack, None),
                "api: every request back on version 41",
            ),
        ] {
            assert_eq!(shift_line(&shift), line);
        }
    }

    fn built() -> crate::build::Built {
        crate::build::Built {
            artifact: crate::build::Artifact::from_zip(vec![0; 2_900_000]),
            method: crate::build::Method::Docker(Some(crate::build::docker::Builder::Classic)),
            path: "/p/target/lambda/api/bootstrap.zip".into(),
            elapsed: Duration::from_millis(84_200),
        }
    }

    #[test]
    fn builds_report_a_progress_line_and_their_output_only_with_verbose() {
        use crate::build::Observer;
        let (reporter, captured) = Reporter::capture(Format::Human { quiet: false }, false);
        let reporter = reporter.with_heartbeat(Duration::ZERO);
        reporter.build_started("api", crate::build::Method::Docker(None));
        reporter.build_line("api", "Step 1/14 : ARG BUILDER_IMAGE");
        reporter.build_waiting("api", Duration::from_secs(61), "   Compiling tokio v1.0.0");
        reporter.build_finished("api", &built());
        reporter.finish(&crate::commands::build::BuiltAll {
            artifacts: vec![record::Built::of("api", &built())],
        });
        let err = captured.stderr();
        assert!(err.contains("▸ building api with docker"), "{err}");
        assert!(
            !err.contains("Step 1/14"),
            "tool output only with -v: {err}"
        );
        assert!(
            err.contains("+61s  still building api:    Compiling tokio"),
            "{err}"
        );
        assert!(
            err.contains("✓ built api (docker (classic)): 2.9 MB in 84.2 s"),
            "{err}"
        );
        let sha = built().artifact.sha256_hex();
        assert_eq!(
            captured.stdout(),
            format!("api  {sha}  2.9 MB  /p/target/lambda/api/bootstrap.zip\n")
        );

        let (reporter, captured) = Reporter::capture(Format::Human { quiet: false }, false);
        let reporter = reporter.verbose(true);
        reporter.build_line("api", "Step 1/14 : ARG BUILDER_IMAGE");
        assert!(
            captured
                .stderr()
                .contains("api │ Step 1/14 : ARG BUILDER_IMAGE")
        );
    }

    #[test]
    fn builds_in_json_are_events_then_a_summary() {
        use crate::build::Observer;
        let (reporter, captured) = Reporter::capture(Format::Json, false);
        let reporter = reporter.verbose(true);
        reporter.build_started("api", crate::build::Method::Docker(None));
        reporter.build_line("api", "Compiling notes");
        reporter.build_finished("api", &built());
        reporter.finish(&crate::commands::build::BuiltAll {
            artifacts: vec![record::Built::of("api", &built())],
        });
        let lines: Vec<serde_json::Value> = captured
            .stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["build_started", "build_output", "build", "summary"]);
        assert_eq!(lines[1]["line"], "Compiling notes");
        assert_eq!(lines[2]["size"], 2_900_000);
        assert_eq!(lines[2]["duration_s"], 84.2);
        assert_eq!(
            lines[3]["artifacts"][0]["path"],
            "/p/target/lambda/api/bootstrap.zip"
        );
        assert_eq!(
            lines[3]["artifacts"][0]["sha256"],
            built().artifact.sha256_hex()
        );
        assert!(captured.stderr().is_empty());
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(14_200), "14.2 KB");
        assert_eq!(human_size(3_100_000), "3.1 MB");
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        let at = |s: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s);
        assert_eq!(clock(at(0.0)), "00:00:00");
        assert_eq!(clock(at(86_400.0 + 3_723.9)), "01:02:03");
    }

    #[test]
    fn change_lines_align_and_flag_replacements() {
        let c = |a: &str, id: &str, r: Option<&str>| Change {
            action: a.into(),
            logical_id: id.into(),
            resource_type: "AWS::T".into(),
            replacement: r.map(crate::converge::model::Replacement::from),
        };
        let lines = change_lines(&[
            c("Add", "Api", None),
            c("Modify", "NotesTable", Some("True")),
        ]);
        assert_eq!(
            lines,
            ["+ Api         AWS::T", "! NotesTable  AWS::T  (replaced)"]
        );
    }
}
