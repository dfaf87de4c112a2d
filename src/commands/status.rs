//! `deployer status`: the stack's state, and code a hotswap left outside its template; with
//! `--watch`, the running operation followed until it settles.

use crate::converge::{self, engine::Progress, engine::Ui};
use crate::exit::Error;

use super::args::{Output, Target};
use super::session::{Session, resume_hint};

/// `deployer status`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer status --env dev\n  deployer status --watch --env pr-42   # resume watching after Ctrl-C\n  deployer status --drift --env prod    # what was changed by hand"
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Follow the running operation's events until it settles
    #[arg(short, long)]
    watch: bool,
    /// Also detect drift: what was changed outside CloudFormation (each resource against the
    /// template, and function code against what deployer deployed); `drift` records
    #[arg(long)]
    drift: bool,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `status`.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        let name = loaded.spec.stack_name();
        let resume = self.watch.then(|| resume_hint(&loaded));
        let region = loaded.spec.region.as_deref();
        Session::run(region, &reporter, resume, async |session| {
            let cloud = session.aws.cloud();
            let stack = if self.watch {
                session.engine(&cloud, &reporter).follow(&name).await?
            } else {
                converge::describe(&cloud, &name).await?
            };
            let drift = match &stack {
                Some(stack) => match converge::drift(&cloud, stack).await {
                    Ok(drift) => drift,
                    Err(e) => {
                        reporter.progress(Progress::Warning(format!(
                            "whether a hotswap left code outside the template is unknown: {e}"
                        )));
                        None
                    }
                },
                None => None,
            };
            if let (true, Some(stack)) = (self.drift, &stack) {
                let engine = session.engine(&cloud, &reporter);
                let hotswapped = drift.clone().unwrap_or_default();
                let spec = &loaded.spec;
                let report =
                    converge::stack_drift::detect(&engine, &cloud, spec, stack, &hotswapped)
                        .await?;
                super::plan::show_drift(&reporter, &name, &report);
            }
            if let Some(stack) = &stack {
                say_pending_rollouts(&loaded.spec, stack, &reporter);
            }
            reporter.status(stack.as_ref(), &name, drift.as_ref());
            Ok(())
        })
    }
}

/// A function whose newest version serves nothing yet: its rollout rolled back, or deployer
/// stopped mid-shift (the stack's outputs say; `up` shifts again).
fn say_pending_rollouts(
    spec: &crate::spec::Spec,
    stack: &converge::model::Stack,
    reporter: &crate::ui::Reporter,
) {
    for pending in converge::rollout::pending(spec, &stack.outputs) {
        reporter.progress(Progress::Warning(format!(
            "{}: `{}` serves version {} while version {} waits on `next` (a rollout rolled back, or stopped mid-shift): `deployer up` shifts to it again",
            stack.name, pending.function, pending.from, pending.to
        )));
    }
}
