//! `deployer bootstrap`: the per-region stack with the artifact bucket and the shared VPC
//! (`up` makes it by itself when it is missing).

use std::time::Instant;

use serde::Serialize;

use crate::converge;
use crate::exit::Error;
use crate::render;
use crate::ui::record::Seconds;
use crate::ui::{Human, Outcome};

use super::args::Output;
use super::session::Session;

/// `deployer bootstrap`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  AWS_REGION=eu-west-1 deployer bootstrap")]
pub struct Args {
    /// Region [default: the SDK's region chain]
    #[arg(long)]
    region: Option<String>,
    /// Create or update it in CloudFormation's express mode (no stabilization wait)
    #[arg(long)]
    express: bool,
    #[command(flatten)]
    output: Output,
}

/// What `bootstrap` made ready: the `summary` record (command `bootstrap`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ready {
    /// The bootstrap stack's name.
    pub stack: String,
    /// The region.
    pub region: String,
    /// The artifact bucket.
    pub bucket: String,
    /// The shared VPC.
    pub vpc_id: String,
    /// Its public subnets.
    pub subnet_ids: Vec<String>,
    /// The command's time.
    pub duration_s: Seconds,
}

impl Outcome for Ready {
    fn command(&self) -> &'static str {
        "bootstrap"
    }

    fn human(&self) -> Human {
        Human::done(format!(
            "{}: ready in {}: bucket {}, VPC {} ({:.1} s)",
            self.stack,
            self.region,
            self.bucket,
            self.vpc_id,
            self.duration_s.0.as_secs_f64()
        ))
    }
}

impl Args {
    /// Runs `bootstrap`.
    pub fn run(self) -> Result<(), Error> {
        let started = Instant::now();
        let reporter = self.output.reporter();
        Session::run(self.region.as_deref(), &reporter, None, async |session| {
            let aws = &session.aws;
            let cloud = aws.cloud();
            let engine = session
                .engine(&cloud, &reporter)
                .with_express_own_stack(self.express);
            let boot = converge::ensure_bootstrap(&engine, &cloud).await?;
            reporter.finish(&Ready {
                stack: render::bootstrap::STACK_NAME.to_string(),
                region: aws.region(),
                bucket: boot.bucket,
                vpc_id: boot.vpc_id,
                subnet_ids: boot.subnet_ids,
                duration_s: Seconds(started.elapsed()),
            });
            Ok(())
        })
    }
}
