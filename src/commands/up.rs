//! `deployer up` (and, through [`deploy`], `plan`): bootstrap, build, upload, check permissions,
//! converge the stack, verify the service; the result is a [`Deployed`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::build::{self, Artifact};
use crate::converge::engine::{Mode, Outcome};
use crate::converge::hotswap::Why;
use crate::converge::model::{Change, StackStatus};
use crate::converge::{self, ephemeral, retained::RetainedChoice};
use crate::exit::{Code, Error};
use crate::render;
use crate::spec::Spec;
use crate::ui::record::{ChangeRecord, CodeUpdateRecord, Seconds, Verified};
use crate::ui::{Human, Reporter};
use crate::workspace::Loaded;

use super::args::{Artifacts, Output, Preflight, Target, parse_ttl};
use super::session::{Session, now, resume_hint};

/// `deployer up`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer up --yes\n  deployer up -s stacks/example.yaml --env pr-42 --artifact api=target/api.zip --yes --json\n  deployer up --env staging --yes --adopt-retained   # after a down: bring its tables back\n  deployer up --env prod --revert-drift               # put back what was changed by hand\n\nRuns with nothing but AWS credentials: the first `up` in a region creates the\ndeployer-bootstrap stack (artifact bucket, shared VPC) without asking, and the first\nephemeral env of an app its shared load balancer (<app>-shared-alb). Before any change\nset it says what the stack will cost a month (`--prices live` outside us-east-1). An\nunchanged spec and artifact is detected without creating a change set and exits 0."
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    artifacts: Artifacts,
    /// Make the env ephemeral: tables are deleted with it, `deployer gc` deletes it once this
    /// long has passed since the last `up` (e.g. 48h, 7d), and it attaches to the app's shared
    /// load balancer (`alb.share`, default `ephemeral`) instead of creating its own
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Option<Duration>,
    /// Apply without asking (required when not on a terminal, e.g. in CI)
    #[arg(short, long)]
    yes: bool,
    /// Go ahead even if tables, buckets or log groups would be deleted or replaced (exit 4 otherwise)
    #[arg(long)]
    allow_data_loss: bool,
    /// When function code is all that changed, update the functions directly (seconds)
    /// instead of through CloudFormation; the next full `up` puts the template's code back.
    /// Refused for protected envs. The spec's `hotswap: true` makes it the default
    #[arg(long, overrides_with = "no_hotswap")]
    hotswap: bool,
    /// Deploy through CloudFormation even where the spec says `hotswap: true`
    #[arg(long, overrides_with = "hotswap")]
    no_hotswap: bool,
    /// Fail when the service cannot be reached for verification (by default an internal or
    /// restricted load balancer is reported in one line)
    #[arg(long, overrides_with = "no_verify")]
    verify: bool,
    /// Do not send the verification request (`verify:` in the spec, default `GET /`)
    #[arg(long, overrides_with = "verify")]
    no_verify: bool,
    /// CloudFormation's express mode: each operation ends once the resources are configured,
    /// without waiting for them to stabilize, and without rollback. Default for ephemeral
    /// envs (`--ttl`, `--env-from-branch`) and where the spec says `deploy: { express: true }`;
    /// refused for a protected env unless its spec says so
    #[arg(long, overrides_with = "no_express")]
    express: bool,
    /// Standard mode even where express mode is the default
    #[arg(long, overrides_with = "express")]
    no_express: bool,
    /// Put what was changed outside CloudFormation back as the template says: the drift is
    /// detected and listed first, then a drift-aware change set (`REVERT_DRIFT`) runs, under
    /// the same data-loss guard
    #[arg(long, conflicts_with = "hotswap")]
    revert_drift: bool,
    /// When the env's earlier stack retained tables (its `down` keeps their data): import
    /// them into the new stack, data and all (a CloudFormation resource import)
    #[arg(long, conflicts_with = "fresh_tables")]
    adopt_retained: bool,
    /// When the env's earlier stack retained tables: create new, empty tables and leave
    /// those as they are (`deployer ls --retained` lists them)
    #[arg(long)]
    fresh_tables: bool,
    #[command(flatten)]
    preflight: Preflight,
    #[command(flatten)]
    prices: super::args::PricesArg,
    #[command(flatten)]
    output: Output,
}

/// `--x` / `--no-x`: `Some(true)`, `Some(false)`, or `None` when neither was given.
pub fn either(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl Args {
    /// Runs `up`.
    pub fn run(self) -> Result<(), Error> {
        let request = Request {
            mode: Mode::Apply {
                yes: self.yes,
                allow_data_loss: self.allow_data_loss,
            },
            ttl: self.ttl,
            check_permissions: !self.preflight.skip_permission_check,
            hotswap: either(self.hotswap, self.no_hotswap),
            verify: either(self.verify, self.no_verify),
            upload_template: false,
            express: either(self.express, self.no_express),
            retained: match (self.adopt_retained, self.fresh_tables) {
                (true, _) => RetainedChoice::Adopt,
                (_, true) => RetainedChoice::Fresh,
                _ => RetainedChoice::Ask,
            },
            detect_drift: self.revert_drift,
            revert_drift: self.revert_drift,
            prices: self.prices.prices,
        };
        let loaded = self.target.load()?;
        deploy(
            &loaded,
            &self.artifacts.choice(),
            request,
            &self.output.reporter(),
        )
    }
}

/// What `up` or `plan` was asked to do, beyond the spec and its artifacts.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Apply (with `--yes`, `--allow-data-loss`) or only plan.
    pub mode: Mode,
    /// `--ttl`: the env is ephemeral and expires this long after its last `up`.
    pub ttl: Option<Duration>,
    /// Ask IAM first whether the caller may make the change (no `--skip-permission-check`).
    pub check_permissions: bool,
    /// `Some(true)`: `--hotswap`; `Some(false)`: `--no-hotswap`.
    pub hotswap: Option<bool>,
    /// `Some(true)`: `--verify` (an unreachable service fails the command); `Some(false)`:
    /// `--no-verify`.
    pub verify: Option<bool>,
    /// `plan --upload-template`: a template too large to send inline may be uploaded.
    pub upload_template: bool,
    /// `Some(true)`: `--express`; `Some(false)`: `--no-express`.
    pub express: Option<bool>,
    /// `--adopt-retained` / `--fresh-tables`: what to do with tables an earlier stack of the
    /// env retained.
    pub retained: RetainedChoice,
    /// Detect the existing stack's drift too (`plan` without `--no-drift`, `up
    /// --revert-drift`).
    pub detect_drift: bool,
    /// `up --revert-drift`: a drift-aware change set (never a hotswap, which would skip it).
    pub revert_drift: bool,
    /// Where the cost estimate's prices come from.
    pub prices: crate::cost::prices::Source,
}

/// What `up` or `plan` did: the `summary` record that ends `--json` output (command `up` or
/// `plan`), and for people `✓ <stack>: <status> in <time>` with the outputs on stdout. A new
/// field goes here and in the README's table of records, nowhere else.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Deployed {
    /// `plan` rather than `up`.
    #[serde(skip)]
    pub plan: bool,
    /// Stack name.
    pub stack: String,
    /// Environment.
    pub env: String,
    /// The stack's final status, or what happened instead of an update.
    pub status: UpStatus,
    /// Whether anything changed (or, for `plan`, would).
    pub changed: bool,
    /// Stack outputs, Url first (a map in JSON).
    #[serde(serialize_with = "as_map")]
    pub outputs: Vec<(String, String)>,
    /// The change set's changes.
    pub changes: Vec<ChangeRecord>,
    /// Functions whose code was updated outside CloudFormation.
    pub code_updates: Vec<CodeUpdateRecord>,
    /// The verification request and its answer; null when none was made.
    pub verified: Option<Verified>,
    /// CloudFormation's express mode (no stabilization wait, no rollback) was asked for.
    pub express: bool,
    /// `plan`: the resources a drift detection found changed outside CloudFormation; null
    /// when there was none (`up`, `--no-drift`, no stack yet).
    pub drifted: Option<Vec<String>>,
    /// What the stack costs a month, and what this change adds; null where the price table
    /// has no prices for the region.
    pub monthly_cost: Option<crate::cost::MonthlyCost>,
    /// The command's own time, prompts excluded.
    pub duration_s: Seconds,
}

fn as_map<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().cloned().collect::<BTreeMap<_, _>>())
}

/// How `up` or `plan` ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UpStatus {
    /// Nothing to do: `no changes`.
    #[default]
    NoChanges,
    /// `plan` found changes (or functions to put back on their template's code): `changes pending`.
    ChangesPending,
    /// Function code updated directly: `hotswapped`.
    Hotswapped,
    /// A full `up` put hotswapped functions back on their template's code: `code restored`.
    CodeRestored,
    /// The stack's status after the operation (`CREATE_COMPLETE`, `UPDATE_COMPLETE`, ...).
    Stack(StackStatus),
}

impl fmt::Display for UpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpStatus::NoChanges => "no changes",
            UpStatus::ChangesPending => "changes pending",
            UpStatus::Hotswapped => "hotswapped",
            UpStatus::CodeRestored => "code restored",
            UpStatus::Stack(status) => status.as_str(),
        })
    }
}

impl Serialize for UpStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl crate::ui::Outcome for Deployed {
    fn command(&self) -> &'static str {
        if self.plan { "plan" } else { "up" }
    }

    fn human(&self) -> Human {
        Human {
            headline: Some(format!(
                "{}: {} in {:.1} s",
                self.stack,
                self.status,
                self.duration_s.0.as_secs_f64()
            )),
            stdout: self
                .outputs
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect(),
            ..Human::default()
        }
    }
}

/// Whether `up` hotswaps: `--hotswap`/`--no-hotswap` first, then the spec's `hotswap`, which
/// never applies to a protected env; `--hotswap` on one is refused, since a hotswap bypasses
/// CloudFormation's review and rollback.
pub fn hotswap_wanted(flag: Option<bool>, spec: &Spec) -> Result<bool, Error> {
    match flag {
        Some(true) if spec.is_protected() => Err(Error::usage(format!(
            "env `{}` is protected (`protected_envs`): it is only changed through CloudFormation, \
             so --hotswap is refused there",
            spec.env
        ))),
        Some(wanted) => Ok(wanted),
        None => Ok(spec.hotswap && !spec.is_protected()),
    }
}

/// Whether a rollout rules the hotswap out: traffic goes to the `live` alias's version, which
/// a hotswap (it updates `$LATEST`) would not change. `--hotswap` is refused (exit 2, naming
/// the rollout); the spec's `hotswap: true` gives way, and says so. Ephemeral envs have no
/// rollouts.
fn rollouts_refuse_hotswap(
    spec: &Spec,
    env: &Env,
    flag: Option<bool>,
    reporter: &Reporter,
) -> Result<bool, Error> {
    use crate::converge::engine::{Progress, Ui};
    let Some((name, rollout)) = spec
        .functions
        .iter()
        .find_map(|(name, f)| Some((name, f.rollout.as_ref()?)))
        .filter(|_| !env.ephemeral)
    else {
        return Ok(false);
    };
    let why = format!(
        "`{name}` has a rollout (`{}`, line {}): its requests go to a published version, which a hotswap would not change",
        rollout.strategy.as_str(),
        rollout.pos.line
    );
    match flag {
        Some(true) => Err(Error::usage(format!(
            "--hotswap is refused in env `{}`: {why}; deploy without --hotswap to roll the change out",
            spec.env
        ))),
        _ => {
            reporter.progress(Progress::Step(format!("no hotswap: {why}")));
            Ok(true)
        }
    }
}

/// What is refused before any AWS call: `--ttl` or `--express` for a protected env, a spec over
/// the stack limits (500 resources, 1 MB; the template sent later differs only in the deletion
/// policies of an ephemeral env).
fn refuse_early(loaded: &Loaded, request: &Request) -> Result<(), Error> {
    let spec = &loaded.spec;
    if request.ttl.is_some() && spec.is_protected() {
        return Err(Error::usage(format!(
            "env `{}` is protected (`protected_envs`), so it can never be ephemeral: drop --ttl",
            spec.env
        )));
    }
    express_for(spec, request.express, false)?;
    loaded.render(render::Options::default())?;
    Ok(())
}

/// Whether `up` runs in express mode: the flag, the spec, whether the env is ephemeral.
fn express_for(spec: &Spec, flag: Option<bool>, ephemeral: bool) -> Result<bool, Error> {
    let from_spec = spec.deploy.and_then(|d| d.express);
    converge::express::wanted(flag, from_spec, ephemeral, spec.is_protected()).map_err(Error::usage)
}

/// Without `region` in the spec, `validate` could not compare the spec's ARNs' regions with
/// the one the SDK chose: they are compared here.
fn refuse_other_regions(spec: &Spec, region: &str) -> Result<(), Error> {
    let wrong: Vec<String> = spec
        .regional_arns()
        .into_iter()
        .filter_map(|(field, arn)| crate::spec::names::check_same_region(field, arn, region).err())
        .collect();
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(Error::usage(wrong.join("\n"))),
    }
}

/// `up` and `plan`.
pub fn deploy(
    loaded: &Loaded,
    choice: &super::BuildChoice,
    request: Request,
    reporter: &Reporter,
) -> Result<(), Error> {
    let started = Instant::now();
    let spec = &loaded.spec;
    let hotswap = request.mode != Mode::Plan
        && !request.revert_drift
        && hotswap_wanted(request.hotswap, spec)?;
    let now = now()?;
    refuse_early(loaded, &request)?;
    let sources = super::artifact_sources(loaded, choice, &[])?;
    let watch = Some(resume_hint(loaded));
    Session::run(spec.region.as_deref(), reporter, watch, async |session| {
        let deploy_started = SystemTime::now();
        refuse_other_regions(spec, &session.aws.region())?;
        let cloud = session.aws.cloud();
        let engine = session
            .engine(&cloud, reporter)
            .with_plan_uploads_template(request.upload_template);
        let env = Env::of(&cloud, loaded, &request, now).await?;
        let monthly_cost =
            monthly_cost(session, &env.resolved, &env, request.prices, reporter).await?;
        // `--revert-drift` lists what it will put back before anything runs.
        if request.revert_drift {
            let existing = env.existing.as_ref();
            super::plan::detect_drift(session, &cloud, spec, existing, reporter).await?;
        }
        let ephemeral = env.ephemeral;
        let render_for = |slot| {
            env.resolved.render(render::Options {
                ephemeral,
                shared_slot: Some(slot),
            })
        };
        let artifacts = build_artifacts(&sources, reporter);
        let up = converge::up(
            &engine,
            &cloud,
            &converge::UpRequest {
                spec,
                template: &env.template,
                lifetime: &env.lifetime,
                mode: request.mode,
                check_permissions: request.check_permissions,
                hotswap: hotswap
                    && !rollouts_refuse_hotswap(spec, &env, request.hotswap, reporter)?,
                express: env.express,
                retained: request.retained,
                described: Some(converge::Described {
                    stack: env.existing.clone(),
                    at: env.described_at,
                }),
                attach: env.shared.then_some(converge::RenderAttached(&render_for)),
                now,
                revert_drift: request.revert_drift,
            },
            artifacts,
        )
        .await?;
        say_known_drift(&up, reporter);
        let mut deployed = result_of(&cloud, spec, &up, &request, env.express, monthly_cost).await;
        let drift = after(
            session,
            &cloud,
            spec,
            &request,
            &env,
            &mut deployed,
            deploy_started,
            reporter,
        )
        .await?;
        deployed.duration_s = Seconds(started.elapsed().saturating_sub(reporter.time_at_prompts()));
        reporter.finish(&deployed);
        exit_of(&up, drift.is_some_and(|d| d.is_drifted()))
    })
}

/// The env as `up` finds it before converging: its stack, whether it is ephemeral, its mode,
/// its template (without a slot of the shared load balancer), whether it shares one.
struct Env {
    existing: Option<crate::converge::model::Stack>,
    described_at: Instant,
    lifetime: converge::Lifetime,
    ephemeral: bool,
    express: bool,
    template: render::Template,
    shared: bool,
    /// The spec with what AWS said filled in ([`converge::resolve`]): what is rendered.
    resolved: Loaded,
}

impl Env {
    async fn of(
        cloud: &crate::aws::AwsCloud<'_>,
        loaded: &Loaded,
        request: &Request,
        now: SystemTime,
    ) -> Result<Env, Error> {
        let spec = &loaded.spec;
        let existing = converge::describe(cloud, &spec.stack_name()).await?;
        let described_at = Instant::now();
        let lifetime = ephemeral::lifetime(spec, request.ttl, existing.as_ref(), now)?;
        let ephemeral = !lifetime.tags.is_empty();
        let shared = spec.alb.as_ref().is_some_and(|a| a.shared_for(ephemeral));
        // The domain's zone and the secrets' keys, before anything changes.
        let resolved = Loaded {
            spec: converge::resolve::resolve(cloud, spec, shared).await?,
            path: loaded.path.clone(),
        };
        Ok(Env {
            express: express_for(spec, request.express, ephemeral)?,
            template: resolved.render(render::Options {
                ephemeral,
                shared_slot: None,
            })?,
            resolved,
            shared,
            existing,
            described_at,
            lifetime,
            ephemeral,
        })
    }
}

/// The stack's monthly cost as the change would leave it, said before anything is asked.
async fn monthly_cost(
    session: &Session,
    loaded: &Loaded,
    env: &Env,
    source: crate::cost::prices::Source,
    reporter: &Reporter,
) -> Result<Option<crate::cost::MonthlyCost>, Error> {
    use crate::converge::engine::{Progress, Ui};
    let cloud = &session.aws.cloud();
    let region = session.aws.region();
    let Some(prices) = crate::aws::pricing::resolve(&session.aws, &region, source).await? else {
        reporter.warn_no_prices(&region);
        return Ok(None);
    };
    // An attached env's template, with any slot: the cost does not depend on which.
    let attached;
    let wanted = match env.shared {
        true => {
            let options = render::Options {
                ephemeral: env.ephemeral,
                shared_slot: Some(0),
            };
            attached = loaded.render(options)?;
            &attached.0
        }
        false => &env.template.0,
    };
    let existing = env.existing.as_ref();
    let boot = converge::existing_bootstrap(cloud).await.ok().flatten();
    let shared = boot
        .as_ref()
        .filter(|_| env.shared)
        .map(|b| (b.bucket.as_str(), loaded.spec.app.as_str()));
    let facts = converge::costing::facts(cloud, existing, shared).await;
    let deployed = converge::costing::deployed_template(cloud, existing).await;
    let cost = crate::cost::estimate(wanted, deployed.as_ref(), &facts, &prices);
    reporter.progress(Progress::Step(crate::cost::sentence(
        &loaded.spec.stack_name(),
        &cost,
    )));
    Ok(Some(cost))
}

/// After converging: `plan` detects drift (unless `--no-drift`), `up` verifies the service.
#[allow(clippy::too_many_arguments)]
async fn after(
    session: &Session,
    cloud: &crate::aws::AwsCloud<'_>,
    spec: &Spec,
    request: &Request,
    env: &Env,
    deployed: &mut Deployed,
    deploy_started: SystemTime,
    reporter: &Reporter,
) -> Result<Option<converge::stack_drift::Report>, Error> {
    match request.mode {
        Mode::Plan if request.detect_drift => {
            let existing = env.existing.as_ref();
            let drift = super::plan::detect_drift(session, cloud, spec, existing, reporter).await?;
            deployed.drifted = drift
                .as_ref()
                .map(|d| d.drifted.iter().map(|r| r.logical_id.clone()).collect());
            Ok(drift)
        }
        Mode::Plan => Ok(None),
        Mode::Apply { .. } => {
            deployed.verified = super::verification::verify_deployed(
                &session.aws,
                spec,
                &deployed.outputs,
                request.verify,
                deploy_started,
                reporter,
            )
            .await?;
            Ok(None)
        }
    }
}

/// An unchanged stack whose last drift detection found drift: says so, and the way back,
/// rather than a bare "no changes" (DescribeStacks carries it; no detection is run).
fn say_known_drift(up: &converge::Up, reporter: &Reporter) {
    use crate::converge::engine::{Progress, Ui};
    use crate::converge::model::StackDriftStatus;
    if let Outcome::NoChanges { stack } = &up.outcome
        && stack.drift == Some(StackDriftStatus::Drifted)
    {
        reporter.progress(Progress::Step(format!(
            "{}: no changes, but its last drift detection found resources changed outside CloudFormation: `deployer plan` shows which, `deployer up --revert-drift` puts them back",
            stack.name
        )));
    }
}

/// `plan`'s exit 10 when there are changes, code to put back, or drift; 0 otherwise.
fn exit_of(up: &converge::Up, drifted: bool) -> Result<(), Error> {
    match up.outcome {
        Outcome::Planned { .. } => Err(Error::code_only(Code::Changes)),
        _ if !up.pending_restores.is_empty() || drifted => Err(Error::code_only(Code::Changes)),
        _ => Ok(()),
    }
}

/// The artifacts, built while the bootstrap stack is made ready.
async fn build_artifacts(
    sources: &[(String, build::Source)],
    reporter: &Reporter,
) -> Result<Vec<(String, Artifact)>, Error> {
    let built = build::build_all(sources, reporter).await?;
    Ok(built
        .into_iter()
        .map(|(function, built)| (function, built.artifact))
        .collect())
}

/// The result of what converging did (its time and verification are filled in after).
async fn result_of(
    cloud: &crate::aws::AwsCloud<'_>,
    spec: &Spec,
    up: &converge::Up,
    request: &Request,
    express: bool,
    monthly_cost: Option<crate::cost::MonthlyCost>,
) -> Deployed {
    let mode = request.mode;
    let hotswapped = up.code_updates.iter().any(|u| u.why == Why::Hotswap);
    let none = Vec::<Change>::new;
    let (status, changed, outputs, changes) = match &up.outcome {
        Outcome::NoChanges { stack } if hotswapped => {
            let outputs = converge::stack_outputs(cloud, stack).await;
            (UpStatus::Hotswapped, true, outputs, none())
        }
        Outcome::NoChanges { .. } if !up.pending_restores.is_empty() => {
            (UpStatus::ChangesPending, true, Vec::new(), none())
        }
        Outcome::NoChanges { stack } => {
            let outputs = converge::stack_outputs(cloud, stack).await;
            match up.code_updates.is_empty() {
                true => (UpStatus::NoChanges, false, outputs, none()),
                false => (UpStatus::CodeRestored, true, outputs, none()),
            }
        }
        Outcome::Planned { changes } => {
            (UpStatus::ChangesPending, true, Vec::new(), changes.clone())
        }
        Outcome::Applied { stack, changes } => {
            let outputs = converge::stack_outputs(cloud, stack).await;
            (
                UpStatus::Stack(stack.status.clone()),
                true,
                outputs,
                changes.clone(),
            )
        }
    };
    Deployed {
        plan: mode == Mode::Plan,
        stack: spec.stack_name(),
        env: spec.env.clone(),
        status,
        changed,
        outputs,
        changes: changes.iter().map(ChangeRecord::from).collect(),
        code_updates: up.code_updates.iter().map(CodeUpdateRecord::of).collect(),
        express,
        monthly_cost,
        ..Deployed::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_before() {
        let cases = [
            (UpStatus::NoChanges, "no changes"),
            (UpStatus::ChangesPending, "changes pending"),
            (UpStatus::Hotswapped, "hotswapped"),
            (UpStatus::CodeRestored, "code restored"),
            (
                UpStatus::Stack(StackStatus::UpdateComplete),
                "UPDATE_COMPLETE",
            ),
        ];
        for (status, text) in cases {
            assert_eq!(status.to_string(), text);
            assert_eq!(serde_json::to_value(&status).unwrap(), text);
        }
    }
}
