//! `deployer ls`: the stacks deployer manages, or (`--retained`) the tables their envs left.

use crate::converge::engine::cloud_failure;
use crate::converge::model::APP_TAG;
use crate::converge::{self, cloud::Cloud, ephemeral};
use crate::exit::Error;

use super::args::Output;
use super::session::Session;

/// `deployer ls`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer ls --app notes              # each env, its shared load balancer, what it costs a month\n  deployer ls --retained --app notes   # tables kept after down, and what they cost"
)]
pub struct Args {
    /// Only this app's stacks
    #[arg(long)]
    app: Option<String>,
    /// Instead: the tables deployer made whose env has no stack any more (kept by
    /// `down`, with their data), their size and what storing them costs a month
    #[arg(long)]
    retained: bool,
    /// Region [default: the SDK's region chain]
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    prices: super::args::PricesArg,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `ls`.
    pub fn run(self) -> Result<(), Error> {
        let reporter = self.output.reporter();
        let app = self.app.as_deref();
        Session::run(self.region.as_deref(), &reporter, None, async |session| {
            let cloud = session.aws.cloud();
            let stacks = cloud
                .list_stacks()
                .await
                .map_err(|e| cloud_failure("cannot list stacks", e))?;
            if self.retained {
                let names = stacks.iter().map(|s| s.name.clone()).collect();
                let orphans = converge::retained::list(&cloud, &names, app).await?;
                reporter.retained_tables(&orphans);
                return Ok(());
            }
            let listed: Vec<_> = stacks
                .iter()
                .filter(|s| s.tags.contains_key(APP_TAG))
                .filter(|s| app.is_none_or(|a| s.tags.get(APP_TAG).is_some_and(|t| t == a)))
                .collect();
            let bucket = converge::existing_bootstrap(&cloud).await.ok().flatten();
            let bucket = bucket.as_ref().map(|b| b.bucket.as_str());
            let region = session.aws.region();
            let prices =
                crate::aws::pricing::resolve(&session.aws, &region, self.prices.prices).await?;
            if prices.is_none() {
                reporter.warn_no_prices(&region);
            }
            let mut rows = Vec::new();
            for stack in listed {
                let mut row = ephemeral::StackRow::of(stack);
                if let Some(prices) = &prices {
                    row.monthly_fixed_cents =
                        converge::costing::stack_fixed_cents(&cloud, stack, bucket, prices).await;
                }
                rows.push(row);
            }
            rows.sort();
            reporter.stack_list(&rows);
            Ok(())
        })
    }
}
