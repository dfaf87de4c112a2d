//! `deployer logs`: a function's CloudWatch log events, and with `--follow` the new ones until
//! Ctrl-C.

use std::time::{Duration, SystemTime};

use crate::exit::Error;

use super::args::{Output, Target, parse_ttl};
use super::session::{Session, now};

/// `deployer logs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer logs --since 1h\n  deployer logs --fn api --follow --env pr-42"
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// The function [default: the only one]
    #[arg(long = "fn", value_name = "NAME")]
    function: Option<String>,
    /// Keep printing new events until Ctrl-C
    #[arg(short, long)]
    follow: bool,
    /// How far back to start
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_ttl)]
    since: Duration,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `logs`: the events since `--since` ago; `--follow` keeps polling every 2 s.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        let spec = &loaded.spec;
        let function = match self.function.as_deref() {
            Some(f) if spec.functions.contains_key(f) => f.to_string(),
            Some(f) => return Err(Error::usage(format!("the spec has no function `{f}`"))),
            None if spec.functions.len() == 1 => {
                spec.functions.keys().next().cloned().unwrap_or_default()
            }
            None => {
                let names: Vec<&str> = spec.functions.keys().map(String::as_str).collect();
                return Err(Error::usage(format!(
                    "several functions; pick one with --fn ({})",
                    names.join(", ")
                )));
            }
        };
        let group = format!(
            "/aws/lambda/{}",
            crate::spec::names::function_name(&spec.app, &spec.env, &function)
        );
        let start = now()?
            .checked_sub(self.since)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut start_ms = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Session::run(spec.region.as_deref(), &reporter, None, async |session| {
            let aws = &session.aws;
            let mut seen = std::collections::HashSet::new();
            // One listener for the whole run: a Ctrl-C that comes during a call, not during the
            // wait between polls, still ends it (a listener made later would not see it).
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            loop {
                let events = tokio::select! {
                    events = aws.log_events(&group, start_ms) => events?,
                    _ = &mut ctrl_c => return Ok(()),
                };
                for event in events {
                    if seen.insert(event.id.clone()) {
                        start_ms = start_ms.max(event.timestamp_ms);
                        reporter.log_event(&function, &event);
                    }
                }
                if !self.follow {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = &mut ctrl_c => return Ok(()),
                }
            }
        })
    }
}
