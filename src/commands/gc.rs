//! `deployer gc`: delete expired ephemeral stacks (tagged `deployer:ephemeral=true`), four at a
//! time; never a stack without that tag, a termination-protected one, or one mid-operation.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::converge::engine::{Confirmation, Ui, cloud_failure};
use crate::converge::model::APP_TAG;
use crate::converge::{self, cloud::Cloud, ephemeral};
use crate::exit::Error;
use crate::ui::record::Seconds;
use crate::ui::{Human, Outcome, Reporter};

use super::args::{Output, parse_ttl};
use super::session::{Session, now};

/// `deployer gc`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer gc --dry-run\n  deployer gc --app notes --yes --json        # nightly in CI\n  deployer gc --older-than 7d --yes\n\nNever touches a stack without deployer:ephemeral=true, nor one that is\ntermination-protected or has an operation running. An app's shared load balancer goes\nwith the last env attached to it."
)]
pub struct Args {
    /// Only this app's stacks
    #[arg(long)]
    app: Option<String>,
    /// List what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Delete ephemeral stacks last deployed longer ago than this, whatever their expiry
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    older_than: Option<Duration>,
    /// Delete without asking (required when not on a terminal)
    #[arg(short, long)]
    yes: bool,
    /// Region [default: the SDK's region chain]
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    prices: super::args::PricesArg,
    #[command(flatten)]
    output: Output,
}

/// What `gc` did: the `summary` record (command `gc`), `✓ gc: <message>` for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collected {
    /// `ok`, or `failed` when a deletion failed.
    pub status: GcStatus,
    /// The result, in a sentence.
    pub message: String,
    /// The command's time.
    pub duration_s: Seconds,
    /// Nothing was deleted: `stacks` lists what would be.
    pub dry_run: bool,
    /// Deleted, or to delete with `dry_run`.
    pub stacks: Vec<String>,
    /// `stack: why`, for each deletion that failed.
    pub failed: Vec<String>,
    /// What `stacks` cost a month before use (null: no prices for the region).
    pub monthly_fixed_usd: Option<f64>,
}

/// How `gc` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GcStatus {
    /// Every deletion it made succeeded (or there was none).
    Ok,
    /// At least one deletion failed.
    Failed,
}

impl Outcome for Collected {
    fn command(&self) -> &'static str {
        "gc"
    }

    fn human(&self) -> Human {
        Human::done(format!(
            "gc: {} ({:.1} s)",
            self.message,
            self.duration_s.0.as_secs_f64()
        ))
    }
}

/// How many stacks `gc` deletes at once: CloudFormation deletes run for minutes, and more
/// concurrent operations only invite throttling.
const GC_CONCURRENCY: usize = 4;

impl Args {
    /// Runs `gc`.
    pub fn run(self) -> Result<(), Error> {
        let started = Instant::now();
        let now = now()?;
        let reporter = self.output.reporter();
        Session::run(self.region.as_deref(), &reporter, None, async |session| {
            let cloud = session.aws.cloud();
            let region = session.aws.region();
            let prices =
                crate::aws::pricing::resolve(&session.aws, &region, self.prices.prices).await?;
            if prices.is_none() {
                reporter.warn_no_prices(&region);
            }
            let (doomed, cents) = self
                .expired(&cloud, now, prices.as_ref(), &reporter)
                .await?;
            let costing = cents.map_or(String::new(), |c| {
                format!("; they cost ${:.2} a month", c as f64 / 100.0)
            });
            let monthly_fixed_usd = cents.map(|c| c as f64 / 100.0);
            if self.dry_run || doomed.is_empty() {
                reporter.finish(&Collected {
                    status: GcStatus::Ok,
                    message: format!(
                        "{} stack(s) to delete{}{}",
                        doomed.len(),
                        if self.dry_run { " (dry run)" } else { "" },
                        if doomed.is_empty() {
                            ""
                        } else {
                            costing.as_str()
                        }
                    ),
                    duration_s: Seconds(started.elapsed()),
                    dry_run: self.dry_run,
                    stacks: doomed,
                    failed: Vec::new(),
                    monthly_fixed_usd,
                });
                return Ok(());
            }
            if !self.yes {
                confirm(&reporter, doomed.len())?;
            }
            let (deleted, failed) = delete_all(session, &cloud, &reporter, doomed).await;
            reporter.finish(&Collected {
                status: if failed.is_empty() {
                    GcStatus::Ok
                } else {
                    GcStatus::Failed
                },
                message: format!(
                    "deleted {} stack(s): {}{costing}",
                    deleted.len(),
                    deleted.join(", ")
                ),
                duration_s: Seconds(started.elapsed()),
                dry_run: false,
                stacks: deleted,
                failed: failed.clone(),
                monthly_fixed_usd,
            });
            match failed.is_empty() {
                true => Ok(()),
                false => Err(Error::failed(format!(
                    "{} deletion(s) failed:\n{}",
                    failed.len(),
                    failed.join("\n")
                ))),
            }
        })
    }

    /// The app's stacks, each with its verdict reported; the names of those to delete, and
    /// what they cost a month, in cents (`None`: no prices for the region).
    async fn expired(
        &self,
        cloud: &impl Cloud,
        now: std::time::SystemTime,
        prices: Option<&crate::cost::Prices>,
        reporter: &Reporter,
    ) -> Result<(Vec<String>, Option<u64>), Error> {
        let stacks = cloud
            .list_stacks()
            .await
            .map_err(|e| cloud_failure("cannot list stacks", e))?;
        let app = self.app.as_deref();
        let mut doomed = Vec::new();
        let mut cents = prices.map(|_| 0);
        let bucket = converge::existing_bootstrap(cloud).await.ok().flatten();
        let bucket = bucket.as_ref().map(|b| b.bucket.as_str());
        for stack in stacks
            .iter()
            .filter(|s| app.is_none_or(|a| s.tags.get(APP_TAG).is_some_and(|t| t == a)))
        {
            let verdict = ephemeral::gc_verdict(stack, now, self.older_than);
            reporter.gc_verdict(&stack.name, &verdict);
            if let ephemeral::Verdict::Delete(_) = verdict {
                doomed.push(stack.name.clone());
                if let Some(prices) = prices {
                    let cost =
                        converge::costing::stack_fixed_cents(cloud, stack, bucket, prices).await;
                    cents = cents.map(|c| c + cost.unwrap_or(0));
                }
            }
        }
        Ok((doomed, cents))
    }
}

/// Asks before deleting; refused where nobody can answer.
fn confirm(reporter: &Reporter, count: usize) -> Result<(), Error> {
    match reporter.confirm(&format!("Delete {count} expired stack(s)?")) {
        Confirmation::Yes => Ok(()),
        Confirmation::No => Err(Error::failed("cancelled: nothing was deleted")),
        Confirmation::NotInteractive => Err(Error::usage(
            "not a terminal, so nobody can confirm: pass --yes (or --dry-run)",
        )),
    }
}

/// Deletes `doomed`, [`GC_CONCURRENCY`] at a time: the names deleted (sorted), and `name: why`
/// for each that failed.
async fn delete_all(
    session: &Session,
    cloud: &crate::aws::AwsCloud<'_>,
    reporter: &Reporter,
    doomed: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let engine = session.engine(cloud, reporter);
    let results: Vec<(String, Result<converge::DownReport, Error>)> =
        futures_util::stream::iter(doomed)
            .map(|name| {
                let engine = &engine;
                async move {
                    let result = converge::down(engine, cloud, &name, false, true, None).await;
                    (name, result)
                }
            })
            .buffer_unordered(GC_CONCURRENCY)
            .collect()
            .await;
    let mut failed = Vec::new();
    let mut deleted = Vec::new();
    for (name, result) in results {
        match result {
            Ok(_) => deleted.push(name),
            Err(e) => failed.push(format!("{name}: {}", e.message)),
        }
    }
    deleted.sort();
    (deleted, failed)
}
