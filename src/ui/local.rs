//! `deployer local` on the terminal (the routes, then function logs prefixed by function and one
//! line per request) and in JSON (`local_table`, `local_ready`, `local_process`, `local_log`,
//! `local_request`, then the summary after Ctrl-C).

use std::time::Duration;

use console::style;
use deployer_local::Event;

use super::record::{LocalRoute, Record};
use super::{Format, Reporter};

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

impl Reporter {
    /// A spec table at the local endpoint.
    pub fn local_table(&self, table: &str, physical: &str, endpoint: &str, created: bool) {
        match self.format {
            Format::Json => self.record(&Record::LocalTable {
                table: table.into(),
                physical_table: physical.into(),
                endpoint: endpoint.into(),
                created,
            }),
            Format::Human { .. } => self.human(format!(
                "table {table}: {physical} at {endpoint} ({})",
                if created {
                    "created"
                } else {
                    "already there, with its data"
                }
            )),
        }
    }

    /// Serving: where, and the routes in the order the load balancer evaluates them.
    pub fn local_ready(&self, stack: &str, url: &str, routes: Vec<LocalRoute>) {
        match self.format {
            Format::Json => self.record(&Record::LocalReady {
                stack: stack.into(),
                url: url.into(),
                routes,
            }),
            Format::Human { quiet } => {
                // The URL is the result: on stdout, even with -q.
                self.stdout_line(url);
                if quiet {
                    return;
                }
                self.stderr_line(format!(
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
                    self.stderr_line(format!(
                        "  {priority:>7}  {:<32} → {target}",
                        route.conditions
                    ));
                }
            }
        }
    }

    /// What the served functions did.
    pub fn local_event(&self, event: Event) {
        match (self.format, event) {
            (Format::Json, Event::Started { function, .. }) => self.record(&Record::LocalProcess {
                function,
                event: super::record::ProcessEvent::Started,
                detail: None,
            }),
            (Format::Json, Event::Exited { function, how }) => self.record(&Record::LocalProcess {
                function,
                event: super::record::ProcessEvent::Exited,
                detail: Some(how),
            }),
            (Format::Json, Event::Log { function, line }) => {
                self.record(&Record::LocalLog { function, line })
            }
            (Format::Json, Event::Request(served)) => self.record(&Record::LocalRequest {
                method: served.method,
                path: served.path,
                status: served.status,
                function: served.function,
                duration_ms: ms(served.duration),
                cold_start_ms: served.cold_start.map(ms),
                error: served.error,
            }),
            (Format::Human { quiet: true }, _) => {}
            (Format::Human { .. }, Event::Started { function, pid }) => self.stderr_line(format!(
                "{} started (pid {})",
                style(format!("{function} │")).cyan().for_stderr(),
                pid.map_or_else(|| "?".into(), |p| p.to_string())
            )),
            (Format::Human { .. }, Event::Exited { function, how }) => self.stderr_line(format!(
                "{} process {how}",
                style(format!("{function} │")).cyan().for_stderr()
            )),
            (Format::Human { .. }, Event::Log { function, line }) => self.stderr_line(format!(
                "{} {line}",
                style(format!("{function} │")).cyan().for_stderr()
            )),
            (Format::Human { .. }, Event::Request(served)) => {
                let status = match served.status {
                    200..=399 => style(served.status.to_string()).green(),
                    400..=499 => style(served.status.to_string()).yellow(),
                    _ => style(served.status.to_string()).red(),
                };
                let mut line = format!(
                    "{} {} {} {}",
                    status.for_stderr(),
                    served.method,
                    served.path,
                    served.function.as_deref().unwrap_or("(load balancer)")
                );
                line.push_str(&format!(" {:.1} ms", ms(served.duration)));
                if let Some(cold) = served.cold_start {
                    line.push_str(&format!(" (cold start {:.1} ms)", ms(cold)));
                }
                if let Some(error) = served.error {
                    line.push_str(&format!(": {error}"));
                }
                self.stderr_line(line);
            }
        }
    }
}
