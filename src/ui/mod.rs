//! What people and machines see: progress on stderr (an in-place view on a terminal, append-only
//! lines elsewhere), or JSON lines on stdout (`--json`). The engine never prints; it reports
//! [`Progress`] here.

pub mod import;
pub mod live;
pub mod local;
pub mod record;

use std::cell::{Cell, RefCell};
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use console::style;

use crate::converge::engine::{Confirmation, Progress, Ui};
use crate::converge::hotswap::Why;
use crate::converge::model::{Change, IndexStatus, Phase, Stack, StackEvent, TableBusy, phase};
use record::{Record, Seconds, Timestamp};

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
    /// `▸`-less lines under nothing, on stderr unless `-q` (a result that is not a success or a
    /// failure, e.g. `local` stopped).
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

/// The reporter for one command.
pub struct Reporter {
    format: Format,
    /// `-v`: one line per AWS call.
    verbose: bool,
    /// Draw the in-place view (a terminal, not quiet, not JSON).
    live: bool,
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
    view: RefCell<live::LiveView>,
    /// Lines of the view currently on screen, to erase before the next draw.
    drawn: Cell<usize>,
    /// What those lines say: an unchanged frame is not redrawn.
    last_frame: RefCell<Vec<String>>,
    last_output: Cell<Instant>,
    /// The in-place line under a running build: its latest output line.
    build_status: RefCell<Option<String>>,
    heartbeat: Duration,
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

impl Write for Shared {
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

fn change_records(changes: &[Change]) -> Vec<record::ChangeRecord> {
    changes.iter().map(record::ChangeRecord::from).collect()
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

impl Reporter {
    /// A reporter in `format` on stdout and stderr; the live view when stderr is a terminal.
    pub fn new(format: Format) -> Self {
        let live = format == Format::Human { quiet: false } && stderr_is_live_terminal();
        Reporter::with_sinks(
            format,
            live,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
    }

    /// A reporter writing into memory (tests): `live` selects the terminal view.
    pub fn capture(format: Format, live: bool) -> (Self, Captured) {
        let captured = Captured::default();
        let reporter = Reporter::with_sinks(
            format,
            live,
            Box::new(Shared(captured.out.clone())),
            Box::new(Shared(captured.err.clone())),
        );
        (reporter, captured)
    }

    fn with_sinks(format: Format, live: bool, out: Box<dyn Write>, err: Box<dyn Write>) -> Self {
        Reporter {
            format,
            verbose: false,
            live,
            out: RefCell::new(out),
            err: RefCell::new(err),
            view: RefCell::new(live::LiveView::default()),
            drawn: Cell::new(0),
            last_frame: RefCell::new(Vec::new()),
            last_output: Cell::new(Instant::now()),
            build_status: RefCell::new(None),
            heartbeat: HEARTBEAT,
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
        self.live
    }

    /// The same reporter printing each AWS call (`-v`); lines replace the live view, which
    /// those calls would tear.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self.live &= !verbose;
        self
    }

    /// Where the AWS layer logs its calls, with `-v`.
    pub fn call_log(&self) -> Option<crate::aws::CallLog> {
        self.verbose.then_some(print_call as crate::aws::CallLog)
    }

    /// One CloudWatch Logs event.
    pub fn log_event(&self, function: &str, event: &crate::aws::LogEvent) {
        let time = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(event.timestamp_ms).unwrap_or_default());
        match self.format {
            Format::Json => self.record(&Record::Log {
                function: function.to_string(),
                timestamp: Timestamp(time),
                message: event.message.clone(),
            }),
            Format::Human { .. } => self.stdout_line(format!("{} {}", clock(time), event.message)),
        }
    }

    /// The same reporter with another heartbeat interval (tests).
    pub fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// The JSON sink: one record per line on stdout.
    fn record(&self, record: &Record) {
        let _ = writeln!(self.out.borrow_mut(), "{}", record.to_line());
        self.last_output.set(Instant::now());
    }

    fn stdout_line(&self, line: impl std::fmt::Display) {
        let _ = writeln!(self.out.borrow_mut(), "{line}");
    }

    /// A line on stderr, above the live view when there is one.
    fn stderr_line(&self, line: impl std::fmt::Display) {
        self.erase_view();
        let _ = writeln!(self.err.borrow_mut(), "{line}");
        self.last_output.set(Instant::now());
    }

    fn human(&self, line: impl std::fmt::Display) {
        if let Format::Human { quiet: false } = self.format {
            self.stderr_line(line);
            self.draw_view(None);
        }
    }

    fn erase_view(&self) {
        let mut err = self.err.borrow_mut();
        for _ in 0..self.drawn.replace(0) {
            // Cursor up one line, erase it.
            let _ = write!(err, "\x1b[1A\x1b[2K");
        }
    }

    /// Redraws the live view (while an operation is being watched) and the running build's line.
    fn draw_view(&self, elapsed: Option<Duration>) {
        if !self.live {
            return;
        }
        let mut frame = elapsed.map_or_else(Vec::new, |e| self.view.borrow().frame(e));
        frame.extend(self.build_status.borrow().clone());
        if frame.is_empty() || (self.drawn.get() > 0 && *self.last_frame.borrow() == frame) {
            // Nothing changed on screen: a redraw would only flicker.
            return;
        }
        self.erase_view();
        let mut err = self.err.borrow_mut();
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

    /// A command's result: its summary record, or for people its headline, details and the
    /// lines on stdout.
    pub fn finish<O: Outcome>(&self, outcome: &O) {
        match self.format {
            Format::Json => {
                let _ = writeln!(self.out.borrow_mut(), "{}", summary_line(outcome));
                self.last_output.set(Instant::now());
            }
            Format::Human { .. } => self.show_result(&outcome.human()),
        }
    }

    fn show_result(&self, human: &Human) {
        *self.build_status.borrow_mut() = None;
        self.take_view_down();
        if let Some(line) = &human.step {
            self.human(line);
        }
        if let Some(headline) = &human.headline {
            let mark = match human.failed {
                false => style("✓").green().bold().for_stderr(),
                true => style("✗").red().bold().for_stderr(),
            };
            self.stderr_line(format!("{mark} {headline}"));
        }
        for line in &human.details {
            self.stderr_line(line);
        }
        for line in &human.stdout {
            self.stdout_line(line);
        }
    }

    /// The service answered the verification request (`✓ stack: GET /health 200 in 43 ms`; in
    /// JSON it is part of the summary).
    pub fn verified(&self, stack: &str, request: &str, status: u16, latency: Duration) {
        if let Format::Human { quiet: false } = self.format {
            self.take_view_down();
            self.stderr_line(format!(
                "{} {stack}: {request} {status} in {} ms",
                style("✓").green().bold().for_stderr(),
                latency.as_millis()
            ));
        }
    }

    /// `status`: one stack's state.
    pub fn status(
        &self,
        stack: Option<&Stack>,
        name: &str,
        drift: Option<&crate::converge::hotswap::Drift>,
    ) {
        match (self.format, stack) {
            (Format::Json, None) => self.record(&Record::Stack {
                stack: name.to_string(),
                status: None,
                reason: None,
                app: None,
                env: None,
                updated: None,
                expires: None,
                termination_protection: false,
                hotswapped: None,
            }),
            (Format::Json, Some(s)) => {
                let row = crate::converge::ephemeral::StackRow::of(s);
                let mut record = stack_record(&row, s.reason.clone());
                if let Record::Stack { hotswapped, .. } = &mut record {
                    *hotswapped = drift.map(|d| {
                        d.functions
                            .iter()
                            .map(|(f, code)| (f.clone(), code.sha256.clone()))
                            .collect()
                    });
                }
                self.record(&record)
            }
            (Format::Human { .. }, None) => self.stdout_line(format!("{name}: does not exist")),
            (Format::Human { .. }, Some(s)) => {
                let reason = s
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                self.stdout_line(format!("{}: {}{reason}", s.name, s.status.as_str()));
                let now = SystemTime::now();
                for (function, code) in drift.iter().flat_map(|d| &d.functions) {
                    let since = crate::converge::hotswap::age(&code.at, now)
                        .map(|age| format!(" for {}", rough_age(age)))
                        .unwrap_or_default();
                    self.stdout_line(format!(
                        "  {function}: runs hotswapped code {}{since}, not its template's; `deployer up` puts the template's code back",
                        &code.sha256[..12.min(code.sha256.len())]
                    ));
                }
            }
        }
    }

    /// One `gc` decision.
    pub fn gc_verdict(&self, stack: &str, verdict: &crate::converge::ephemeral::Verdict) {
        use crate::converge::ephemeral::Verdict;
        let (action, reason) = match verdict {
            Verdict::Delete(r) => ("delete", r),
            Verdict::Skip(r) => ("skip", r),
        };
        match self.format {
            Format::Json => self.record(&Record::Gc {
                stack: stack.to_string(),
                action: match verdict {
                    Verdict::Delete(_) => record::GcAction::Delete,
                    Verdict::Skip(_) => record::GcAction::Skip,
                },
                reason: reason.clone(),
            }),
            Format::Human { .. } => self.human(format!("{action:6} {stack}  ({reason})")),
        }
    }

    /// `ls`: one row per stack.
    pub fn stack_list(&self, rows: &[crate::converge::ephemeral::StackRow]) {
        match self.format {
            Format::Json => {
                for r in rows {
                    self.record(&stack_record(r, None));
                }
            }
            Format::Human { .. } => {
                let width = rows.iter().map(|r| r.stack.len()).max().unwrap_or(5).max(5);
                self.stdout_line(format!(
                    "{:width$}  {:12}  {:10}  {:26}  {:20}  EXPIRES",
                    "STACK", "APP", "ENV", "STATUS", "UPDATED"
                ));
                for r in rows {
                    let expires = r.expires.as_deref().unwrap_or("-");
                    let updated = r
                        .updated
                        .map(crate::converge::ephemeral::format_time)
                        .unwrap_or_default();
                    self.stdout_line(format!(
                        "{:width$}  {:12}  {:10}  {:26}  {updated:20}  {expires}",
                        r.stack,
                        r.app,
                        r.env,
                        r.status.as_str()
                    ));
                }
            }
        }
    }

    /// `ls --retained`: one line per table, and the monthly total; or a record each.
    pub fn retained_tables(&self, tables: &[crate::converge::retained::Orphan]) {
        use crate::converge::retained::monthly_storage_usd;
        let cost = |t: &crate::converge::retained::Orphan| t.size_bytes.map(monthly_storage_usd);
        match self.format {
            Format::Json => {
                for t in tables {
                    self.record(&Record::RetainedTable {
                        table: t.table.clone(),
                        app: t.app.clone(),
                        env: t.env.clone(),
                        spec_table: t.spec_table.clone(),
                        size_bytes: t.size_bytes,
                        items: t.item_count,
                        monthly_storage_usd: cost(t),
                    });
                }
            }
            Format::Human { .. } => {
                let width = tables
                    .iter()
                    .map(|t| t.table.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                self.stdout_line(format!(
                    "{:width$}  {:12}  {:10}  {:12}  {:>12}  {:>10}  USD/MONTH",
                    "TABLE", "APP", "ENV", "SPEC NAME", "SIZE", "ITEMS"
                ));
                for t in tables {
                    let size = t
                        .size_bytes
                        .map(|b| format!("{:.1} MB", b as f64 / 1_000_000.0))
                        .unwrap_or_else(|| "-".into());
                    let items = t
                        .item_count
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "-".into());
                    let usd = cost(t)
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "-".into());
                    self.stdout_line(format!(
                        "{:width$}  {:12}  {:10}  {:12}  {size:>12}  {items:>10}  {usd}",
                        t.table, t.app, t.env, t.spec_table
                    ));
                }
                let total: f64 = tables.iter().filter_map(cost).sum();
                self.human(format!(
                    "{} retained table{} of envs without a stack: about ${total:.2} a month of storage (us-east-1's Standard price; `up --adopt-retained` in the env brings one back, or delete it in DynamoDB)",
                    tables.len(),
                    if tables.len() == 1 { "" } else { "s" }
                ));
            }
        }
    }

    /// `outputs`: key/value lines, or one `outputs` record.
    pub fn outputs(&self, stack: &str, outputs: &[(String, String)]) {
        match self.format {
            Format::Json => self.record(&Record::Outputs {
                stack: stack.to_string(),
                outputs: outputs.iter().cloned().collect(),
            }),
            Format::Human { .. } => {
                for (k, v) in outputs {
                    self.stdout_line(format!("{k}: {v}"));
                }
            }
        }
    }
}

impl Reporter {
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

    fn due_for_heartbeat(&self) -> bool {
        self.last_output.get().elapsed() >= self.heartbeat
    }
}

/// The `stack` record of a row (`status`, `ls`).
fn stack_record(row: &crate::converge::ephemeral::StackRow, reason: Option<String>) -> Record {
    let known = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Record::Stack {
        stack: row.stack.clone(),
        status: Some(record::Aws(row.status.clone())),
        reason,
        app: known(&row.app),
        env: known(&row.env),
        updated: row.updated.map(Timestamp),
        expires: row.expires.clone(),
        termination_protection: row.termination_protection,
        hotswapped: None,
    }
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

/// Builds take minutes: a progress line (in place on a terminal, a heartbeat elsewhere), the
/// tool's every line with `-v`, and the tail of it in the error when it fails.
impl crate::build::Observer for Reporter {
    fn build_started(&self, function: &str, method: crate::build::Method) {
        match self.format {
            Format::Json => self.record(&Record::BuildStarted {
                function: function.to_string(),
                method,
            }),
            Format::Human { .. } => self.human(format!(
                "{} building {function} with {method}",
                style("▸").cyan().for_stderr()
            )),
        }
    }

    fn build_line(&self, function: &str, line: &str) {
        if !self.verbose {
            return;
        }
        match self.format {
            Format::Json => self.record(&Record::BuildOutput {
                function: function.to_string(),
                line: line.to_string(),
            }),
            Format::Human { .. } => {
                self.stderr_line(style(format!("  {function} │ {line}")).dim().for_stderr())
            }
        }
    }

    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str) {
        let last: String = last_line.chars().take(100).collect();
        match self.format {
            Format::Json => {
                if self.due_for_heartbeat() {
                    self.record(&Record::Heartbeat {
                        stack: None,
                        status: None,
                        function: Some(function.to_string()),
                        line: Some(last),
                        elapsed_s: elapsed.as_secs(),
                    });
                }
            }
            Format::Human { quiet: true } => {}
            Format::Human { .. } if self.live => {
                *self.build_status.borrow_mut() = Some(format!(
                    "  building {function} +{}s  {last}",
                    elapsed.as_secs()
                ));
                self.draw_view(None);
            }
            Format::Human { .. } if !self.verbose && self.due_for_heartbeat() => {
                self.stderr_line(format!(
                    "{} +{}s  still building {function}: {last}",
                    clock(SystemTime::now()),
                    elapsed.as_secs()
                ));
            }
            Format::Human { .. } => {}
        }
    }

    fn build_finished(&self, function: &str, built: &crate::build::Built) {
        *self.build_status.borrow_mut() = None;
        match self.format {
            Format::Json => self.record(&Record::Build(record::Built::of(function, built))),
            Format::Human { .. } => {
                self.erase_view();
                self.human(format!(
                    "{} built {function} ({}): {} in {:.1} s",
                    style("✓").green().for_stderr(),
                    built.method,
                    human_size(built.artifact.bytes.len()),
                    built.elapsed.as_secs_f64()
                ));
            }
        }
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

/// A line for people on stderr from outside a command's reporter (`validate`, `init`, the final
/// error): the one other place deployer writes to the terminal.
pub fn note(line: impl std::fmt::Display) {
    eprintln!("{line}");
}

impl Ui for Reporter {
    fn shows_events(&self) -> bool {
        self.format != (Format::Human { quiet: true })
    }

    fn progress(&self, progress: Progress) {
        let quiet = self.format == Format::Human { quiet: true };
        match (self.format, progress) {
            (Format::Json, Progress::Step(message)) => self.record(&Record::Step { message }),
            (Format::Json, Progress::Warning(message)) => self.record(&Record::Warning { message }),
            (
                Format::Json,
                Progress::Artifact {
                    function,
                    key,
                    size,
                    uploaded,
                },
            ) => self.record(&Record::Artifact {
                function,
                key,
                size,
                uploaded,
            }),
            (Format::Json, Progress::Changes { stack, changes }) => self.record(&Record::Changes {
                stack,
                changes: change_records(&changes),
            }),
            (
                Format::Json,
                Progress::Event {
                    stack,
                    event,
                    elapsed,
                },
            ) => self.record(&Record::event(&stack, &event, elapsed)),
            (
                Format::Json,
                Progress::CodeUpdated {
                    function,
                    lambda_name,
                    sha256,
                    why,
                    elapsed,
                },
            ) => self.record(&Record::CodeUpdate {
                function,
                lambda_name,
                sha256,
                why: why.into(),
                duration_s: Seconds(elapsed),
            }),
            (
                Format::Json,
                Progress::Waiting {
                    stack,
                    status,
                    elapsed,
                },
            ) => {
                if self.due_for_heartbeat() {
                    self.record(&Record::Heartbeat {
                        stack: Some(stack),
                        status: Some(record::Aws(status)),
                        function: None,
                        line: None,
                        elapsed_s: elapsed.as_secs(),
                    });
                }
            }
            (
                format,
                Progress::TableBusy {
                    stack,
                    table,
                    busy,
                    elapsed,
                },
            ) => {
                let shown = Some((table.clone(), busy.clone()));
                if *self.last_table_wait.borrow() == shown && !self.due_for_heartbeat() {
                    return;
                }
                *self.last_table_wait.borrow_mut() = shown;
                match format {
                    Format::Json => {
                        let (index, status, percent) = match busy {
                            TableBusy::Table(status) => {
                                (None, record::TableWaitStatus::Table(status), None)
                            }
                            TableBusy::Index {
                                name,
                                status,
                                percent,
                            } => (Some(name), record::TableWaitStatus::Index(status), percent),
                        };
                        self.record(&Record::TableWait {
                            stack,
                            table,
                            index,
                            status,
                            percent,
                            elapsed_s: elapsed.as_secs(),
                        });
                    }
                    Format::Human { .. } if !quiet => self.human(format!(
                        "{} {}",
                        style("▸").cyan().for_stderr(),
                        table_wait_line(&table, &busy, elapsed)
                    )),
                    Format::Human { .. } => {}
                }
            }
            // Warnings show even with -q: they are about the result.
            (Format::Human { .. }, Progress::Warning(message)) => {
                self.stderr_line(format!(
                    "{} {message}",
                    style("warning:").yellow().bold().for_stderr()
                ));
            }
            (Format::Human { .. }, _) if quiet => {}
            (Format::Human { .. }, Progress::Step(message)) => {
                self.human(format!("{} {message}", style("▸").cyan().for_stderr()))
            }
            (
                Format::Human { .. },
                Progress::Artifact {
                    function,
                    key,
                    size,
                    uploaded,
                },
            ) => {
                let what = if uploaded {
                    "uploaded"
                } else {
                    "already in the bucket"
                };
                let arrow = style("▸").cyan().for_stderr();
                self.human(format!(
                    "{arrow} artifact {function}: {} {key} ({what})",
                    human_size(size)
                ));
            }
            (
                Format::Human { .. },
                Progress::CodeUpdated {
                    function,
                    lambda_name,
                    sha256,
                    why,
                    elapsed,
                },
            ) => {
                let what = match why {
                    Why::Hotswap => "hotswapped",
                    Why::Restore => "back on its template's code",
                };
                self.human(format!(
                    "{} {function} ({lambda_name}): {what}, code {} live in {:.1} s",
                    style("✓").green().for_stderr(),
                    &sha256[..12.min(sha256.len())],
                    elapsed.as_secs_f64()
                ));
            }
            (Format::Human { .. }, Progress::Changes { stack, changes }) => {
                self.human(format!(
                    "Changes to {stack} (+ add, ~ modify, - remove, ! replace):"
                ));
                for line in change_lines(&changes) {
                    self.human(format!("  {line}"));
                }
                self.view.borrow_mut().start(&stack, changes.len());
            }
            (
                Format::Human { .. },
                Progress::Event {
                    stack,
                    event,
                    elapsed,
                },
            ) if self.live => {
                if !self.view.borrow().is_for(&stack) {
                    // Deletes and waits have no change set to count from.
                    self.view.borrow_mut().start(&stack, 0);
                }
                let done = self.view.borrow_mut().event(&event, elapsed);
                if let Some(line) = done {
                    self.stderr_line(format!("{} {line}", style("✓").green().for_stderr()));
                } else if phase(&event.status) == Phase::Failed {
                    self.stderr_line(Self::event_line(&event, elapsed));
                }
                self.draw_view(Some(elapsed));
            }
            (Format::Human { .. }, Progress::Event { event, elapsed, .. }) => {
                self.stderr_line(Self::event_line(&event, elapsed));
            }
            (
                Format::Human { .. },
                Progress::Waiting {
                    stack,
                    status,
                    elapsed,
                },
            ) => {
                if self.live {
                    self.view.borrow_mut().stack_status(status.as_str());
                    self.draw_view(Some(elapsed));
                } else if self.due_for_heartbeat() {
                    let status = status.as_str();
                    self.stderr_line(format!(
                        "{} +{}s  {stack}  still {status}",
                        clock(SystemTime::now()),
                        elapsed.as_secs()
                    ));
                }
            }
        }
    }

    fn confirm(&self, question: &str) -> Confirmation {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Confirmation::NotInteractive;
        }
        self.erase_view();
        let _ = write!(self.err.borrow_mut(), "{question} [y/N] ");
        let _ = self.err.borrow_mut().flush();
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
