//! The one trait every output mode implements, and the writers they share. The [`Reporter`]
//! (what commands and the engine talk to) hands each output to its printer: [`JsonLines`] for
//! `--json`, [`Terminal`] for people (lines in CI, a view redrawn in place on a terminal). No
//! other code branches on the format.
//!
//! [`Reporter`]: super::Reporter
//! [`JsonLines`]: super::json::JsonLines
//! [`Terminal`]: super::terminal::Terminal

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::time::{Duration, Instant};

use deployer_local::Event;

use super::Human;
use super::import::ImportView;
use super::record::{ImportCounts, LocalRoute, Record};
use crate::converge::engine::Progress;
use crate::converge::ephemeral::{StackRow, Verdict};
use crate::converge::hotswap::Drift;
use crate::converge::model::{Stack, TableBusy};
use crate::converge::retained::Orphan;

/// One output mode: how each kind of output looks, and where it goes.
pub trait Printer {
    /// The writers.
    fn sink(&self) -> &Sink;
    /// Whether a line is redrawn in place.
    fn is_live(&self) -> bool {
        false
    }
    /// `-v`: the build tools' lines are shown, and lines replace the live view.
    fn set_verbose(&self, verbose: bool);
    /// Whether stack events are worth reading for this output (not with `-q`).
    fn shows_events(&self) -> bool;
    /// The engine's progress (table waits come through [`Printer::table_wait`]).
    fn progress(&self, progress: Progress);
    /// An update waits for a table or index to be ACTIVE (a changed wait, or a heartbeat).
    fn table_wait(&self, stack: String, table: String, busy: TableBusy, elapsed: Duration);
    /// A command's result: its summary record, or as people see it.
    fn result(&self, summary: &str, human: &Human);
    /// The service answered the verification request.
    fn verified(&self, stack: &str, request: &str, status: u16, latency: Duration);
    /// `status`: one stack's state, and code a hotswap left outside its template.
    fn status(&self, stack: Option<&Stack>, name: &str, drift: Option<&Drift>);
    /// One `gc` decision.
    fn gc_verdict(&self, stack: &str, verdict: &Verdict);
    /// `ls`: one row per stack.
    fn stack_list(&self, rows: &[StackRow]);
    /// `ls --retained`: one row per table.
    fn retained_tables(&self, tables: &[Orphan]);
    /// `outputs`.
    fn outputs(&self, stack: &str, outputs: &[(String, String)]);
    /// One CloudWatch Logs event.
    fn log_event(&self, function: &str, event: &crate::aws::LogEvent);
    /// A function's build starts.
    fn build_started(&self, function: &str, method: crate::build::Method);
    /// One line of a build tool's output (`-v`).
    fn build_line(&self, function: &str, line: &str);
    /// Still building.
    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str);
    /// A build is done.
    fn build_finished(&self, function: &str, built: &crate::build::Built);
    /// `table import`'s counters.
    fn import_progress(&self, view: &mut ImportView, counts: &ImportCounts);
    /// A rejected row.
    fn import_rejected(&self, row: u64, line: u64, reason: &str);
    /// A row whose key an earlier row had.
    fn import_duplicate(&self, view: &mut ImportView, row: u64, line: u64, key: &str);
    /// The import ended; its result follows.
    fn import_finished(&self, counts: &ImportCounts);
    /// `local`: a spec table at the local endpoint.
    fn local_table(&self, table: &str, physical: &str, endpoint: &str, created: bool);
    /// `local`: serving, and the routes.
    fn local_ready(&self, stack: &str, url: &str, routes: Vec<LocalRoute>);
    /// `local`: what the served functions did.
    fn local_event(&self, event: Event);
    /// A question, on stderr, before the answer is read.
    fn prompt(&self, question: &str);
}

/// Where printers write: stdout (results, JSON), stderr (progress), and when they last did.
pub struct Sink {
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
    last_output: Cell<Instant>,
    heartbeat: Cell<Duration>,
}

impl Sink {
    /// Writers, with the default heartbeat.
    pub fn new(out: Box<dyn Write>, err: Box<dyn Write>) -> Self {
        Sink {
            out: RefCell::new(out),
            err: RefCell::new(err),
            last_output: Cell::new(Instant::now()),
            heartbeat: Cell::new(super::HEARTBEAT),
        }
    }

    /// Another heartbeat interval (tests).
    pub fn set_heartbeat(&self, interval: Duration) {
        self.heartbeat.set(interval);
    }

    /// Whether nothing was written for a heartbeat's interval.
    pub fn due_for_heartbeat(&self) -> bool {
        self.last_output.get().elapsed() >= self.heartbeat.get()
    }

    /// One record as a line of JSON on stdout.
    pub fn record(&self, record: &Record) {
        self.json_line(&record.to_line());
    }

    /// A line of JSON on stdout.
    pub fn json_line(&self, line: &str) {
        let _ = writeln!(self.out.borrow_mut(), "{line}");
        self.last_output.set(Instant::now());
    }

    /// A line on stdout (a result people or scripts read).
    pub fn stdout_line(&self, line: impl std::fmt::Display) {
        let _ = writeln!(self.out.borrow_mut(), "{line}");
    }

    /// A line on stderr.
    pub fn stderr_line(&self, line: impl std::fmt::Display) {
        let _ = writeln!(self.err.borrow_mut(), "{line}");
        self.last_output.set(Instant::now());
    }

    /// Stderr itself, for what is drawn and erased in place.
    pub fn err(&self) -> std::cell::RefMut<'_, Box<dyn Write>> {
        self.err.borrow_mut()
    }
}
