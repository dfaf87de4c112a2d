//! `--json`: one record per line on stdout, as the README's table documents them; a command's
//! last line is its summary. Nothing on stderr, no colour, no prompts shown.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use deployer_local::Event;

use super::Human;
use super::import::{CI_EVERY, ImportView};
use super::local::ms;
use super::printer::{Printer, Sink};
use super::record::{self, ImportCounts, LocalRoute, Record, Seconds, Timestamp};
use crate::converge::engine::Progress;
use crate::converge::ephemeral::{StackRow, Verdict};
use crate::converge::hotswap::Drift;
use crate::converge::model::{Stack, TableBusy};
use crate::converge::retained::{Orphan, monthly_storage_usd};

/// The JSON-lines printer.
pub struct JsonLines {
    sink: Sink,
}

impl JsonLines {
    /// A printer writing to `sink`.
    pub fn new(sink: Sink) -> Self {
        JsonLines { sink }
    }

    fn record(&self, record: &Record) {
        self.sink.record(record);
    }
}

/// The `stack` record of a row (`status`, `ls`).
pub fn stack_record(row: &StackRow, reason: Option<String>) -> Record {
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
        shared_alb: row.shared_alb.clone(),
        monthly_fixed_usd: row.monthly_fixed_cents.map(|c| c as f64 / 100.0),
        hotswapped: None,
    }
}

impl Printer for JsonLines {
    fn sink(&self) -> &Sink {
        &self.sink
    }

    fn set_verbose(&self, _: bool) {}

    fn shows_events(&self) -> bool {
        true
    }

    fn progress(&self, progress: Progress) {
        let record = match progress {
            Progress::Step(message) => Record::Step { message },
            Progress::Warning(message) => Record::Warning { message },
            Progress::Artifact {
                function,
                key,
                size,
                uploaded,
            } => Record::Artifact {
                function,
                key,
                size,
                uploaded,
            },
            Progress::Changes { stack, changes } => Record::Changes {
                stack,
                changes: changes.iter().map(record::ChangeRecord::from).collect(),
            },
            Progress::Drift { stack, resources } => {
                for r in &resources {
                    self.record(&Record::drift(&stack, r));
                }
                return;
            }
            Progress::Event {
                stack,
                event,
                elapsed,
            } => Record::event(&stack, &event, elapsed),
            Progress::CodeUpdated {
                function,
                lambda_name,
                sha256,
                why,
                elapsed,
            } => Record::CodeUpdate {
                function,
                lambda_name,
                sha256,
                why: why.into(),
                duration_s: Seconds(elapsed),
            },
            Progress::Shift(shift) => Record::Shift {
                alarm_reason: shift.alarm.as_ref().map(|a| a.reason.clone()),
                alarm: shift.alarm.map(|a| a.name),
                stack: shift.stack,
                function: shift.function,
                from_version: shift.from,
                to_version: shift.to,
                percent: shift.percent,
                left_s: shift.left.as_secs(),
                phase: shift.phase,
            },
            Progress::Waiting {
                stack,
                status,
                elapsed,
            } if self.sink.due_for_heartbeat() => Record::Heartbeat {
                stack: Some(stack),
                status: Some(record::Aws(status)),
                function: None,
                line: None,
                elapsed_s: elapsed.as_secs(),
            },
            Progress::Waiting { .. } | Progress::TableBusy { .. } => return,
        };
        self.record(&record);
    }

    fn table_wait(&self, stack: String, table: String, busy: TableBusy, elapsed: Duration) {
        let (index, status, percent) = match busy {
            TableBusy::Table(status) => (None, record::TableWaitStatus::Table(status), None),
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

    fn result(&self, summary: &str, _: &Human) {
        self.sink.json_line(summary);
    }

    /// In JSON the verification is part of the summary.
    fn verified(&self, _: &str, _: &str, _: u16, _: Duration) {}

    fn status(&self, stack: Option<&Stack>, name: &str, drift: Option<&Drift>) {
        let Some(s) = stack else {
            return self.record(&Record::Stack {
                stack: name.to_string(),
                status: None,
                reason: None,
                app: None,
                env: None,
                updated: None,
                expires: None,
                termination_protection: false,
                shared_alb: None,
                monthly_fixed_usd: None,
                hotswapped: None,
            });
        };
        let row = StackRow::of(s);
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

    fn gc_verdict(&self, stack: &str, verdict: &Verdict) {
        let (action, reason) = match verdict {
            Verdict::Delete(r) => (record::GcAction::Delete, r),
            Verdict::Skip(r) => (record::GcAction::Skip, r),
        };
        self.record(&Record::Gc {
            stack: stack.to_string(),
            action,
            reason: reason.clone(),
        });
    }

    fn stack_list(&self, rows: &[StackRow]) {
        for row in rows {
            self.record(&stack_record(row, None));
        }
    }

    fn retained_tables(&self, tables: &[Orphan]) {
        for t in tables {
            self.record(&Record::RetainedTable {
                table: t.table.clone(),
                app: t.app.clone(),
                env: t.env.clone(),
                spec_table: t.spec_table.clone(),
                size_bytes: t.size_bytes,
                items: t.item_count,
                monthly_storage_usd: t.size_bytes.map(monthly_storage_usd),
            });
        }
    }

    fn outputs(&self, stack: &str, outputs: &[(String, String)]) {
        self.record(&Record::Outputs {
            stack: stack.to_string(),
            outputs: outputs.iter().cloned().collect(),
        });
    }

    fn log_event(&self, function: &str, event: &crate::aws::LogEvent) {
        let time = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(event.timestamp_ms).unwrap_or_default());
        self.record(&Record::Log {
            function: function.to_string(),
            timestamp: Timestamp(time),
            message: event.message.clone(),
        });
    }

    fn build_started(&self, function: &str, method: crate::build::Method) {
        self.record(&Record::BuildStarted {
            function: function.to_string(),
            method,
        });
    }

    fn build_line(&self, function: &str, line: &str) {
        self.record(&Record::BuildOutput {
            function: function.to_string(),
            line: line.to_string(),
        });
    }

    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str) {
        if self.sink.due_for_heartbeat() {
            self.record(&Record::Heartbeat {
                stack: None,
                status: None,
                function: Some(function.to_string()),
                line: Some(last_line.chars().take(100).collect()),
                elapsed_s: elapsed.as_secs(),
            });
        }
    }

    fn build_finished(&self, function: &str, built: &crate::build::Built) {
        self.record(&Record::Build(record::Built::of(function, built)));
    }

    /// A record every few seconds.
    fn import_progress(&self, view: &mut ImportView, counts: &ImportCounts) {
        if view.last_line.is_none_or(|at| at.elapsed() >= CI_EVERY) {
            view.last_line = Some(Instant::now());
            self.record(&Record::ImportProgress(counts.clone()));
        }
    }

    fn import_rejected(&self, row: u64, line: u64, reason: &str) {
        self.record(&Record::Rejected {
            row,
            line,
            reason: reason.to_string(),
        });
    }

    fn import_duplicate(&self, _: &mut ImportView, row: u64, line: u64, key: &str) {
        self.record(&Record::Duplicate {
            row,
            line,
            key: key.to_string(),
        });
    }

    fn import_finished(&self, _: &ImportCounts) {}

    fn local_table(&self, table: &str, physical: &str, endpoint: &str, created: bool) {
        self.record(&Record::LocalTable {
            table: table.into(),
            physical_table: physical.into(),
            endpoint: endpoint.into(),
            created,
        });
    }

    fn local_ready(&self, stack: &str, url: &str, routes: Vec<LocalRoute>) {
        self.record(&Record::LocalReady {
            stack: stack.into(),
            url: url.into(),
            routes,
        });
    }

    fn local_event(&self, event: Event) {
        self.record(&match event {
            Event::Started { function, .. } => Record::LocalProcess {
                function,
                event: record::ProcessEvent::Started,
                detail: None,
            },
            Event::Exited { function, how } => Record::LocalProcess {
                function,
                event: record::ProcessEvent::Exited,
                detail: Some(how),
            },
            Event::Log { function, line } => Record::LocalLog { function, line },
            Event::Request(served) => Record::LocalRequest {
                method: served.method,
                path: served.path,
                status: served.status,
                function: served.function,
                duration_ms: ms(served.duration),
                cold_start_ms: served.cold_start.map(ms),
                error: served.error,
            },
        });
    }

    fn prompt(&self, question: &str) {
        let mut err = self.sink.err();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
    }
}
