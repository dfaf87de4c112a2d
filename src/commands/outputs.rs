//! `deployer outputs`: the stack's outputs, Url first.

use crate::converge;
use crate::exit::Error;

use super::args::{Output, Target};
use super::session::Session;

/// `deployer outputs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  curl \"$(deployer outputs --json | jq -r .Url)/health\"")]
pub struct Args {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `outputs`.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        let name = loaded.spec.stack_name();
        let region = loaded.spec.region.as_deref();
        Session::run(region, &reporter, None, async |session| {
            let cloud = session.aws.cloud();
            let stack = converge::describe(&cloud, &name).await?.ok_or_else(|| {
                Error::failed(format!("{name} does not exist: run `deployer up` first"))
            })?;
            reporter.outputs(&stack.name, &converge::stack_outputs(&cloud, &stack).await);
            Ok(())
        })
    }
}
