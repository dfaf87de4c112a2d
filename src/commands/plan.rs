//! `deployer plan`: `up` without changing anything; exit 10 when changes are pending.

use std::time::Duration;

use crate::converge::engine::Mode;
use crate::exit::Error;

use super::args::{Artifacts, Output, Preflight, Target, parse_ttl};
use super::up::{Request, deploy};

/// `deployer plan`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "plan builds the artifacts locally and writes nothing: its only calls that are not reads are\nCreateChangeSet and DeleteChangeSet (a new stack's resources are listed from the template).\n\nExample:\n  deployer plan --env staging || [ $? -eq 10 ] && echo \"changes pending\""
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    artifacts: Artifacts,
    /// Plan for an ephemeral env (see `up --ttl`)
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Option<Duration>,
    /// Upload a template over CloudFormation's 51,200-byte inline limit to the artifact
    /// bucket so it can be previewed (the one write plan may make; `up` uploads the same
    /// object)
    #[arg(long)]
    upload_template: bool,
    #[command(flatten)]
    preflight: Preflight,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `plan`.
    pub fn run(self) -> Result<(), Error> {
        let request = Request {
            mode: Mode::Plan,
            ttl: self.ttl,
            check_permissions: !self.preflight.skip_permission_check,
            hotswap: None,
            verify: None,
            upload_template: self.upload_template,
            express: None,
            retained: Default::default(),
        };
        deploy(
            &self.target.load()?,
            &self.artifacts.choice(),
            request,
            &self.output.reporter(),
        )
    }
}
