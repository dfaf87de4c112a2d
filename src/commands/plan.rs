//! `deployer plan`: `up` without changing anything; exit 10 when changes are pending.

use std::time::Duration;

use crate::aws::AwsCloud;
use crate::converge::engine::{Mode, Progress, Ui};
use crate::converge::model::Stack;
use crate::converge::stack_drift;
use crate::exit::Error;
use crate::ui::Reporter;

use super::args::{Artifacts, Output, Preflight, Target, parse_ttl};
use super::session::Session;
use super::up::{Request, deploy};

/// `deployer plan`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "plan builds the artifacts locally and writes nothing: its only calls that are not reads are\nCreateChangeSet and DeleteChangeSet (a new stack's resources are listed from the template),\nand DetectStackDrift: an existing stack's drift is detected too, unless --no-drift, and\ndrift makes plan exit 10 even when the template has no changes.\n\nExamples:\n  deployer plan --env staging || [ $? -eq 10 ] && echo \"changes or drift pending\"\n  deployer plan --env prod --no-drift --json\n  deployer plan --env prod --prices live   # the monthly cost in a region the price table lacks"
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
    /// Skip drift detection (which takes seconds to minutes on a large stack)
    #[arg(long)]
    no_drift: bool,
    #[command(flatten)]
    preflight: Preflight,
    #[command(flatten)]
    prices: super::args::PricesArg,
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
            detect_drift: !self.no_drift,
            revert_drift: false,
            prices: self.prices.prices,
        };
        deploy(
            &self.target.load()?,
            &self.artifacts.choice(),
            request,
            &self.output.reporter(),
        )
    }
}

/// What `plan` (unless `--no-drift`) and `status --drift` show of a drift detection: the
/// resources not in sync (a `drift` record each), a warning when the detection failed, and the
/// way back when something drifted.
pub fn show_drift(reporter: &Reporter, stack: &str, report: &stack_drift::Report) {
    if let Some(why) = &report.failed {
        reporter.progress(Progress::Warning(format!(
            "{stack}: drift detection did not check every resource: {why}"
        )));
    }
    let shown = report.shown();
    if shown.is_empty() {
        reporter.progress(Progress::Step(format!(
            "{stack}: no drift: every resource is as the template says"
        )));
        return;
    }
    reporter.progress(Progress::Drift {
        stack: stack.to_string(),
        resources: shown,
    });
    if report.is_drifted() {
        reporter.progress(Progress::Step(format!(
            "{stack}: {} resource(s) changed outside CloudFormation: `deployer up --revert-drift` puts them back as the template says",
            report.drifted.len()
        )));
    }
}

/// `plan`'s drift detection of the stack as it stood (none: there is no stack to drift, or an
/// operation is running on it).
pub async fn detect_drift(
    session: &Session,
    cloud: &AwsCloud<'_>,
    spec: &crate::spec::Spec,
    stack: Option<&Stack>,
    reporter: &Reporter,
) -> Result<Option<stack_drift::Report>, Error> {
    let Some(stack) = stack.filter(|s| !crate::converge::decide::is_in_progress(&s.status)) else {
        return Ok(None);
    };
    let hotswapped = crate::converge::drift(cloud, stack)
        .await?
        .unwrap_or_default();
    let engine = session.engine(cloud, reporter);
    // The plan stands without it: a detection that cannot run (no permission to read a
    // resource type, an emulator without it) is one warning.
    let report = match stack_drift::detect(&engine, cloud, spec, stack, &hotswapped).await {
        Ok(report) => report,
        Err(e) if e.code == crate::exit::Code::Interrupted => return Err(e),
        Err(e) => {
            reporter.progress(Progress::Warning(format!(
                "{}: drift not detected: {e}",
                stack.name
            )));
            return Ok(None);
        }
    };
    show_drift(reporter, &stack.name, &report);
    Ok(Some(report))
}
