//! Converge: bring the stack `<app>-<env>` to exactly what the spec says, whatever state it is in.
//!
//! [`decide`] and [`model`] are pure; [`engine`] drives a [`cloud::Cloud`] and reports to an
//! [`engine::Ui`]; this module wires spec, render, build and engine into `up`, `plan` and `down`.

pub mod cloud;
pub mod costing;
pub mod data_loss;
pub mod decide;
pub mod engine;
pub mod ephemeral;
pub mod express;
pub mod hotswap;
pub mod indexes;
pub mod model;
pub mod outputs;
pub mod preflight;
pub mod recorded;
pub mod resolve;
pub mod retained;
pub mod rollout;
pub mod shared_alb;
pub mod stack_drift;
pub mod transition;
pub mod watch;

use std::collections::BTreeMap;
use std::future::Future;

use cloud::Cloud;
use engine::{Deployment, Engine, Mode, Outcome, Teardown, Ui, cloud_failure};
use model::{APP_TAG, ENV_TAG, Stack};

use crate::build::Artifact;
use crate::exit::Error;
use crate::render::{self, Template, bootstrap};
use crate::spec::Spec;

/// DescribeStacks for one stack (`None`: it does not exist), failing with the exit code the
/// error calls for: the one place that error is worded.
pub async fn describe<C: Cloud>(cloud: &C, name: &str) -> Result<Option<Stack>, Error> {
    cloud
        .stack(name)
        .await
        .map_err(|e| cloud_failure(&format!("cannot describe stack {name}"), e))
}

/// What the bootstrap stack provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The artifact bucket.
    pub bucket: String,
    /// The shared VPC.
    pub vpc_id: String,
    /// Its public subnets.
    pub subnet_ids: Vec<String>,
}

/// Creates or updates `deployer-bootstrap` when it is missing or outdated, and reads what it provides.
pub async fn ensure_bootstrap<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
) -> Result<Bootstrap, Error> {
    let existing = describe(cloud, bootstrap::STACK_NAME).await?;
    let parameters = bootstrap_parameters(cloud, existing.as_ref()).await?;
    let stack = engine
        .put_stack(
            bootstrap::STACK_NAME,
            &bootstrap::template().body(),
            &parameters,
            &BTreeMap::new(),
            existing,
        )
        .await?;
    read_bootstrap(cloud, &stack).await
}

/// `plan`'s view of `deployer-bootstrap`, changing nothing: what it provides, with a line when
/// `up` would update it first; `None` when it does not exist (`up` creates it first).
pub async fn planned_bootstrap<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
) -> Result<Option<Bootstrap>, Error> {
    let Some(existing) = describe(cloud, bootstrap::STACK_NAME).await? else {
        return Ok(None);
    };
    let parameters = bootstrap_parameters(cloud, Some(&existing)).await?;
    let digest = engine::own_stack_digest(&bootstrap::template().body(), &parameters);
    if !engine::own_stack_is_current(&existing, &digest) {
        engine.step(format!(
            "{} is not current: `up` updates it first (plan shows only the app stack's changes)",
            bootstrap::STACK_NAME
        ));
    }
    read_bootstrap(cloud, &existing).await.map(Some)
}

/// The bootstrap stack's parameters: its VPC's two zones.
async fn bootstrap_parameters<C: Cloud>(
    cloud: &C,
    existing: Option<&Stack>,
) -> Result<BTreeMap<String, String>, Error> {
    let zones = bootstrap_zones(cloud, existing).await?;
    Ok(bootstrap::ZONE_PARAMETERS
        .iter()
        .map(|p| p.to_string())
        .zip(zones)
        .collect())
}

/// The zones of the bootstrap VPC's two subnets: those it has (a later update must never move
/// subnets that load balancers use), else the first two of the region's available zones.
async fn bootstrap_zones<C: Cloud>(
    cloud: &C,
    existing: Option<&Stack>,
) -> Result<[String; 2], Error> {
    if let Some(stack) = existing {
        if let Some(kept) = kept_zones(&stack.parameters) {
            return Ok(kept);
        }
        // Made before its zones were parameters: wherever its subnets are.
        let resources = cloud
            .resources(bootstrap::STACK_NAME)
            .await
            .unwrap_or_default();
        let subnets: Vec<String> = ["PublicSubnet1", "PublicSubnet2"]
            .iter()
            .filter_map(|id| resources.iter().find(|r| r.logical_id == *id))
            .map(|r| r.physical_id.clone())
            .collect();
        if subnets.len() == 2
            && let Ok(zones) = cloud.subnet_zones(&subnets).await
            && let Ok(zones) = <[String; 2]>::try_from(zones)
        {
            return Ok(zones);
        }
    }
    let available = cloud
        .availability_zones()
        .await
        .map_err(|e| cloud_failure("cannot list the region's Availability Zones", e))?;
    first_two_zones(&available).map_err(Error::failed)
}

/// The zones a bootstrap stack was created with, from its parameters.
pub fn kept_zones(parameters: &BTreeMap<String, String>) -> Option<[String; 2]> {
    let [a, b] = bootstrap::ZONE_PARAMETERS.map(|p| parameters.get(p).filter(|z| !z.is_empty()));
    Some([a?.clone(), b?.clone()])
}

/// The first two zones by name: an ALB needs subnets in two.
pub fn first_two_zones(available: &[String]) -> Result<[String; 2], String> {
    let mut sorted = available.to_vec();
    sorted.sort();
    match sorted.as_slice() {
        [a, b, ..] => Ok([a.clone(), b.clone()]),
        _ => Err(format!(
            "the region has {} available Availability Zone(s); a load balancer needs two",
            sorted.len()
        )),
    }
}

/// What an existing bootstrap stack provides: from its outputs, or (when the backend gives no
/// outputs) from the physical ids of the same resources.
pub async fn read_bootstrap<C: Cloud>(cloud: &C, stack: &Stack) -> Result<Bootstrap, Error> {
    let value = |output: &str| stack.output(output).map(str::to_string);
    let from_outputs = (
        value(bootstrap::OUTPUT_BUCKET),
        value(bootstrap::OUTPUT_VPC_ID),
        bootstrap::OUTPUT_SUBNETS.map(value),
    );
    if let (Some(bucket), Some(vpc_id), [Some(a), Some(b)]) = from_outputs {
        return Ok(Bootstrap {
            bucket,
            vpc_id,
            subnet_ids: vec![a, b],
        });
    }
    // No Outputs from the backend: read the physical ids of the same resources.
    let resources = cloud.resources(bootstrap::STACK_NAME).await.map_err(|e| {
        Error::failed(format!(
            "cannot read the resources of {}: {e}",
            bootstrap::STACK_NAME
        ))
    })?;
    let physical = |id: &str| {
        resources
            .iter()
            .find(|r| r.logical_id == id)
            .map(|r| r.physical_id.clone())
            .ok_or_else(|| Error::failed(format!("{} has no resource {id}", bootstrap::STACK_NAME)))
    };
    Ok(Bootstrap {
        bucket: physical("ArtifactBucket")?,
        vpc_id: physical("Vpc")?,
        subnet_ids: vec![physical("PublicSubnet1")?, physical("PublicSubnet2")?],
    })
}

/// The bootstrap stack of the region, when there is one (read-only: for `down` and `gc`).
pub async fn existing_bootstrap<C: Cloud>(cloud: &C) -> Result<Option<Bootstrap>, Error> {
    match describe(cloud, bootstrap::STACK_NAME).await? {
        Some(stack) => read_bootstrap(cloud, &stack).await.map(Some),
        None => Ok(None),
    }
}

/// The functions of `stack` that run hotswapped code (`status`); `None` without a bootstrap
/// stack, where no hotswap can have happened.
pub async fn drift<C: Cloud>(cloud: &C, stack: &Stack) -> Result<Option<hotswap::Drift>, Error> {
    let Some(boot) = existing_bootstrap(cloud).await? else {
        return Ok(None);
    };
    let drift = hotswap::read(cloud, &boot.bucket, &stack.name).await?;
    Ok(Some(drift.of(Some(stack))))
}

/// What `down` did.
#[derive(Debug, Clone, PartialEq)]
pub struct DownReport {
    /// The teardown itself.
    pub teardown: Teardown,
    /// Artifacts deleted with an ephemeral env (no other stack referenced them).
    pub removed_artifacts: Vec<String>,
    /// Artifacts of the env kept because another stack still uses them.
    pub kept_artifacts: Vec<String>,
    /// The shared load balancer the env was attached to, and whether it went with it.
    pub shared_alb: Option<shared_alb::Released>,
}

/// Deletes the stack; for an ephemeral env, also the artifacts no other stack references.
pub async fn down<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    name: &str,
    protected: bool,
    yes: bool,
    express: Option<bool>,
) -> Result<DownReport, Error> {
    let before = describe(cloud, name).await?;
    // An ephemeral env is taken down in express mode unless told otherwise.
    let express = express.unwrap_or_else(|| before.as_ref().is_some_and(ephemeral::is_ephemeral));
    let teardown = engine
        .teardown_from(name, before.clone(), protected, yes, express)
        .await?;
    let mut report = DownReport {
        teardown,
        removed_artifacts: Vec::new(),
        kept_artifacts: Vec::new(),
        shared_alb: None,
    };
    if report.teardown == Teardown::NothingToDelete {
        return Ok(report);
    }
    if let Some(attached) = before
        .as_ref()
        .filter(|s| s.tags.contains_key(shared_alb::SHARED_TAG))
        && let Some(boot) = existing_bootstrap(cloud).await?
    {
        report.shared_alb = shared_alb::release(engine, cloud, &boot.bucket, attached).await?;
    }
    let Some(before) = before.filter(ephemeral::is_ephemeral) else {
        return Ok(report);
    };
    let others = cloud.list_stacks().await.map_err(|e| {
        Error::failed(format!(
            "{name} is deleted, but listing stacks to clean its artifacts failed: {e}"
        ))
    })?;
    let unreferenced = ephemeral::unreferenced_artifacts(&before, &others);
    let Some(boot) = existing_bootstrap(cloud).await? else {
        return Ok(report);
    };
    for key in before
        .parameters
        .iter()
        .filter(|(k, _)| k.ends_with("CodeKey"))
        .map(|(_, v)| v)
    {
        if unreferenced.contains(key) {
            cloud.delete_object(&boot.bucket, key).await.map_err(|e| {
                Error::failed(format!(
                    "{name} is deleted, but its artifact {key} was not: {e}"
                ))
            })?;
            report.removed_artifacts.push(key.clone());
        } else {
            report.kept_artifacts.push(key.clone());
        }
    }
    // What was deployed to it: the record of a stack that is gone.
    let record = recorded::key(name);
    cloud
        .delete_object(&boot.bucket, &record)
        .await
        .map_err(|e| {
            Error::failed(format!(
                "{name} is deleted, but its record {record} was not: {e}"
            ))
        })?;
    Ok(report)
}

/// The stack tags deployer sets: the spec's, plus who manages the stack.
pub fn stack_tags(spec: &Spec) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = spec
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.insert(APP_TAG.into(), spec.app.clone());
    tags.insert(ENV_TAG.into(), spec.env.clone());
    tags
}

/// The full deployment: template parameters filled from the bootstrap stack and the artifacts.
pub fn deployment(
    spec: &Spec,
    template: &Template,
    boot: &Bootstrap,
    artifacts: &[(String, Artifact)],
    lifetime: &Lifetime,
) -> Deployment {
    let mut parameters = BTreeMap::new();
    for code in render::code_parameters(spec) {
        if let Some((_, artifact)) = artifacts.iter().find(|(f, _)| *f == code.function) {
            parameters.insert(code.bucket, boot.bucket.clone());
            parameters.insert(code.key, artifact.key(&spec.app, &code.function));
        }
    }
    if render::uses_shared_vpc(spec) {
        parameters.insert(render::VPC_PARAMETER.into(), boot.vpc_id.clone());
        parameters.insert(render::SUBNETS_PARAMETER.into(), boot.subnet_ids.join(","));
    }
    Deployment {
        stack_name: spec.stack_name(),
        template_body: template.body(),
        parameters,
        tags: {
            let mut tags = stack_tags(spec);
            tags.extend(lifetime.tags.clone());
            tags
        },
        termination_protection: spec.is_protected(),
        refresh_tags: lifetime.refresh,
        bucket: Some(boot.bucket.clone()),
        check_permissions: false,
        revert_drift: false,
        express: false,
    }
}

/// Whether an env is ephemeral, with the tags that say so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Ephemeral tags (empty for a persistent env).
    pub tags: BTreeMap<String, String>,
    /// Write them even if nothing else changed (the expiry is due for extension).
    pub refresh: bool,
}

/// What `up` and `plan` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Up {
    /// What CloudFormation did; after a hotswap, nothing (the stack as it was).
    pub outcome: Outcome,
    /// Functions whose code deployer updated directly (a hotswap, or a full `up` putting the
    /// template's code back after one).
    pub code_updates: Vec<hotswap::Swapped>,
    /// `plan`: functions that run hotswapped code and that `up` would put back.
    pub pending_restores: Vec<hotswap::Swap>,
}

/// The app stack as described earlier in the same command, and when.
#[derive(Debug, Clone)]
pub struct Described {
    /// The description (`None`: no such stack).
    pub stack: Option<Stack>,
    /// When it was made.
    pub at: std::time::Instant,
}

/// How long a description stays good enough to decide on: after a longer build it is made
/// again, since another deploy may have changed the stack meanwhile.
const DESCRIPTION_REUSED_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// What `up` and `plan` converge, and how.
#[derive(Debug, Clone)]
pub struct UpRequest<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Its rendered template.
    pub template: &'a Template,
    /// Ephemeral or not, and the tags that say so.
    pub lifetime: &'a Lifetime,
    /// Apply or plan.
    pub mode: Mode,
    /// Ask IAM first whether the caller may make the change (when there is one).
    pub check_permissions: bool,
    /// Update function code directly when it is all that changed.
    pub hotswap: bool,
    /// CloudFormation's express mode.
    pub express: bool,
    /// What to do with tables an earlier stack of the env retained.
    pub retained: retained::RetainedChoice,
    /// The app stack as the caller already described it.
    pub described: Option<Described>,
    /// Attach the env to its app's shared load balancer ([`shared_alb`]), rendering its
    /// template for the slot it gets (`template` is then only what `plan` shows before the
    /// bootstrap stack exists).
    pub attach: Option<RenderAttached<'a>>,
    /// The time slot records are written with.
    pub now: std::time::SystemTime,
    /// `--revert-drift`: a drift-aware change set, even when nothing else changed.
    pub revert_drift: bool,
}

/// Renders the env's template for a slot of the shared load balancer.
#[derive(Clone, Copy)]
pub struct RenderAttached<'a>(pub &'a (dyn Fn(u32) -> Result<Template, Error> + Sync));

impl std::fmt::Debug for RenderAttached<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderAttached")
    }
}

/// `up` and `plan`: bootstrap (while the artifacts build), upload, check the caller's
/// permissions (when asked and there is a change to check), then converge the app stack, by
/// hotswap when asked and function code is all that changed.
pub async fn up<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    request: &UpRequest<'_>,
    artifacts: impl Future<Output = Result<Vec<(String, Artifact)>, Error>>,
) -> Result<Up, Error> {
    let UpRequest {
        spec,
        template,
        mode,
        hotswap,
        express,
        retained,
        ref described,
        ..
    } = *request;
    let described = described.clone();
    let name = spec.stack_name();
    let (boot, artifacts) = tokio::join!(bootstrap_for(engine, cloud, mode), artifacts);
    let (boot, artifacts) = (boot?, artifacts?);
    let Some(boot) = boot else {
        return Ok(plan_from_nothing(engine, &name, template));
    };
    let existing = match described.filter(|d| d.at.elapsed() < DESCRIPTION_REUSED_FOR) {
        Some(described) => described.stack,
        None => describe(cloud, &name).await?,
    };
    // `plan` uploads nothing: the keys are the artifacts' local sha256, and CloudFormation
    // does not read the code while it makes a change set.
    if mode != Mode::Plan {
        upload_artifacts(engine, spec, &boot.bucket, &artifacts, existing.as_ref()).await?;
    }
    let deployment =
        deployment_of(engine, cloud, request, &boot, &artifacts, existing.as_ref()).await?;
    if express {
        engine.step(format!(
            "{}: express mode: CloudFormation ends each operation once the resources are configured, without waiting for them to stabilize, and without rollback",
            deployment.stack_name
        ));
    }
    let slots = code_slots(spec, &artifacts);
    let drift = drift_of(cloud, &boot.bucket, existing.as_ref()).await?;
    // A new stack of an env whose earlier stack retained its tables: adopt them, or not.
    let existing = match creates(existing.as_ref()) {
        true => adopt_retained(engine, cloud, spec, &deployment, mode, retained, existing).await?,
        false => existing,
    };
    let recorded = engine
        .recorded_digest(&deployment, existing.as_ref())
        .await?;
    let changed = Changed {
        bucket: &boot.bucket,
        deployment: &deployment,
        slots: &slots,
        drift: &drift,
    };
    // An env that leaves the shared load balancer (`alb.share` changed) frees its slot once
    // its own load balancer has taken over.
    let detached = existing
        .clone()
        .filter(|s| request.attach.is_none() && s.tags.contains_key(shared_alb::SHARED_TAG));
    let up = if !(hotswap && matches!(mode, Mode::Apply { .. })) {
        full_deploy(engine, cloud, &changed, existing, recorded, mode).await?
    } else {
        hotswap_or_deploy(engine, cloud, &changed, existing, recorded, mode).await?
    };
    if let (Some(detached), Mode::Apply { .. }) = (detached, mode) {
        shared_alb::release(engine, cloud, &boot.bucket, &detached).await?;
    }
    match mode {
        Mode::Apply { .. } => roll_out(engine, cloud, spec, &deployment, up).await,
        Mode::Plan => {
            say_planned_rollouts(engine, spec, &up);
            Ok(up)
        }
    }
}

/// `plan`: how the functions whose new version the changes publish would take traffic.
fn say_planned_rollouts<C: Cloud, U: Ui>(engine: &Engine<'_, C, U>, spec: &Spec, up: &Up) {
    if let Outcome::Planned { changes } = &up.outcome {
        for line in rollout::planned(spec, changes) {
            engine.step(format!("{}: {line}", spec.stack_name()));
        }
    }
}

/// Points `live` at the new version of each `finished` shift (a parameter-only update of the
/// same template), then puts their weights back on `live`, which now serves it.
async fn promote<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    deployment: &Deployment,
    stack_name: &str,
    finished: &[rollout::Shift],
) -> Result<Outcome, Error> {
    // The first update's permission check covered `UpdateAlias` already.
    let mut promoted = Deployment {
        check_permissions: false,
        ..deployment.clone()
    };
    for shift in finished {
        let parameter = render::rollout::RolloutIds::of(&shift.function).live_version_parameter;
        promoted.parameters.insert(parameter, shift.to.clone());
    }
    engine.step(format!(
        "{stack_name}: the `live` alias takes the new version{}",
        if finished.len() > 1 { "s" } else { "" }
    ));
    let apply = Mode::Apply {
        yes: true,
        allow_data_loss: false,
    };
    let promotion = engine.deploy(&promoted, apply).await?;
    for shift in finished {
        engine.forward_to_live(shift).await?;
    }
    Ok(promotion)
}

/// After the stack update: shifts the traffic of each function whose `live` alias does not
/// serve its newest version yet ([`rollout`]), then points `live` at the versions that took
/// all of it (a parameter-only update) and puts their weights back on `live`. A rollback ends
/// `up` with an error naming the alarm, once the functions that finished are promoted.
pub async fn roll_out<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    deployment: &Deployment,
    mut up: Up,
) -> Result<Up, Error> {
    let stack = match &up.outcome {
        Outcome::Applied { stack, .. } | Outcome::NoChanges { stack } => stack.clone(),
        Outcome::Planned { .. } => return Ok(up),
    };
    // The versions are the stack's own outputs (`stack_outputs` would derive others, with more
    // calls, for a backend that answers none).
    let pending = rollout::pending(spec, &stack.outputs);
    if pending.is_empty() {
        return Ok(up);
    }
    let template: serde_json::Value =
        serde_json::from_str(&deployment.template_body).unwrap_or_default();
    let physical: BTreeMap<String, String> = cloud
        .resources(&stack.name)
        .await
        .map_err(|e| engine::cloud_failure(&format!("cannot list {}'s resources", stack.name), e))?
        .into_iter()
        .map(|r| (r.logical_id, r.physical_id))
        .collect();
    let mut finished = Vec::new();
    let mut rolled_back = None;
    for pending in &pending {
        let Some(rollout) = spec.functions[&pending.function].rollout.as_ref() else {
            continue;
        };
        let Some(shift) = rollout::Shift::of(&stack.name, pending, rollout, &template, &physical)
        else {
            engine.warn(format!(
                "{}: `{}` has versions {} and {} but not every resource of its rollout; `deployer up` again completes it",
                stack.name, pending.function, pending.from, pending.to
            ));
            continue;
        };
        match engine.shift(&shift).await? {
            rollout::Ended::Finished => finished.push(shift),
            rollout::Ended::RolledBack(alarm) => {
                rolled_back = Some((shift, alarm));
                break;
            }
        }
    }
    if !finished.is_empty() {
        let promotion = promote(engine, deployment, &stack.name, &finished).await?;
        up.outcome = match (up.outcome, promotion) {
            (Outcome::Applied { changes, .. }, Outcome::Applied { stack, .. }) => {
                Outcome::Applied { stack, changes }
            }
            (_, promotion) => promotion,
        };
    }
    match rolled_back {
        None => Ok(up),
        Some((shift, alarm)) => Err(rollout::rolled_back_error(&shift, alarm.as_ref())),
    }
}

/// What `up` submits: the template's parameters from the bootstrap stack and the artifacts;
/// for an env attached to its app's shared load balancer, its template for the slot it gets,
/// the shared stack's outputs it takes, and the tag naming the slot.
async fn deployment_of<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    request: &UpRequest<'_>,
    boot: &Bootstrap,
    artifacts: &[(String, Artifact)],
    existing: Option<&Stack>,
) -> Result<Deployment, Error> {
    let spec = request.spec;
    let attached = match request.attach {
        Some(render_for) => {
            let attached = shared_alb::attach(
                engine,
                cloud,
                spec,
                boot,
                existing,
                request.mode,
                request.now,
            )
            .await?;
            Some((render_for.0(attached.slot.slot)?, attached))
        }
        None => None,
    };
    let template = attached.as_ref().map_or(request.template, |(t, _)| t);
    let mut deployment = Deployment {
        check_permissions: request.check_permissions,
        express: request.express,
        revert_drift: request.revert_drift,
        ..deployment(spec, template, boot, artifacts, request.lifetime)
    };
    // A rollout's `live` alias stays on the version it serves; `up` moves it after the shift.
    for (name, _) in spec.functions.iter().filter(|(_, f)| f.rollout.is_some()) {
        let ids = render::rollout::RolloutIds::of(name);
        if template.0["Parameters"]
            .get(&ids.live_version_parameter)
            .is_some()
        {
            let serving = existing
                .and_then(|s| {
                    s.outputs
                        .iter()
                        .find(|(k, _)| *k == ids.live_version_output)
                })
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            deployment
                .parameters
                .insert(ids.live_version_parameter, serving);
        }
    }
    if let Some((template, attached)) = &attached {
        let declared = &template.0["Parameters"];
        deployment.parameters.extend(
            attached
                .parameters
                .iter()
                .filter(|(k, _)| declared.get(k.as_str()).is_some())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        deployment
            .tags
            .insert(shared_alb::SHARED_TAG.into(), attached.slot.tag(&spec.app));
    }
    Ok(deployment)
}

/// `up --hotswap`: the functions' code updated directly when it is all that changed, else a
/// full deploy.
async fn hotswap_or_deploy<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    changed: &Changed<'_>,
    existing: Option<Stack>,
    recorded: Option<String>,
    mode: Mode,
) -> Result<Up, Error> {
    let plan = hotswap::plan(
        existing.as_ref(),
        recorded.as_deref(),
        changed.deployment,
        changed.slots,
        changed.drift,
    );
    match (plan, existing) {
        (hotswap::Plan::Swap(swaps), Some(stack)) => {
            swap_code(engine, cloud, changed, stack, swaps).await
        }
        (hotswap::Plan::UpToDate, Some(stack)) => Ok(Up {
            outcome: Outcome::NoChanges { stack },
            code_updates: Vec::new(),
            pending_restores: Vec::new(),
        }),
        (hotswap::Plan::NeedsChangeSet(why), existing) => {
            engine.step(format!(
                "{}: no hotswap ({why}): deploying through CloudFormation",
                changed.deployment.stack_name
            ));
            full_deploy(engine, cloud, changed, existing, recorded, mode).await
        }
        // A swap, or an up-to-date stack, is only planned for a stack that exists.
        (_, None) => full_deploy(engine, cloud, changed, None, recorded, mode).await,
    }
}

/// The bootstrap stack, made ready; for `plan`, as it is (`None`: there is none yet).
async fn bootstrap_for<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    mode: Mode,
) -> Result<Option<Bootstrap>, Error> {
    match mode {
        Mode::Plan => planned_bootstrap(engine, cloud).await,
        Mode::Apply { .. } => ensure_bootstrap(engine, cloud).await.map(Some),
    }
}

/// Functions that run code a hotswap put there, not their template's. Without a stack there
/// is no drift to read (a record of a deleted one does not apply).
async fn drift_of<C: Cloud>(
    cloud: &C,
    bucket: &str,
    existing: Option<&Stack>,
) -> Result<hotswap::Drift, Error> {
    match existing {
        Some(stack) => Ok(hotswap::read(cloud, bucket, &stack.name)
            .await?
            .of(Some(stack))),
        None => Ok(hotswap::Drift::default()),
    }
}

/// Uploads each artifact the bucket may not have. Keys are content-addressed: one the stack
/// names was read from the bucket by CloudFormation already, so its HeadObject is skipped.
async fn upload_artifacts<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    spec: &Spec,
    bucket: &str,
    artifacts: &[(String, Artifact)],
    existing: Option<&Stack>,
) -> Result<(), Error> {
    for (function, artifact) in artifacts {
        let key = artifact.key(&spec.app, function);
        let named = existing.is_some_and(|s| s.parameters.values().any(|v| *v == key));
        engine
            .upload(bucket, &key, function, artifact, named)
            .await?;
    }
    Ok(())
}

/// Whether `up` creates the stack (there is none, or only a failed creation to delete first).
fn creates(existing: Option<&Stack>) -> bool {
    existing.is_none_or(|s| {
        matches!(
            decide::decide(Some(&s.status)),
            decide::Action::Create | decide::Action::DeleteThenCreate
        )
    })
}

/// Before the first stack of an env whose earlier stack retained tables: finds them, and
/// imports them into the new stack when `choice` (or the person asked) says so. Returns the
/// stack to go on from: the imported one, or `existing` as it was.
pub async fn adopt_retained<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    deployment: &Deployment,
    mode: Mode,
    choice: retained::RetainedChoice,
    existing: Option<Stack>,
) -> Result<Option<Stack>, Error> {
    use retained::Handling;
    let name = &deployment.stack_name;
    let wanted: serde_json::Value =
        serde_json::from_str(&deployment.template_body).unwrap_or_default();
    let found = match retained::find(cloud, name, &spec.app, &spec.env, &wanted).await {
        Ok(found) => found,
        // Looking is a courtesy: a role that may not list tables still deploys.
        Err(e) if e.code == crate::exit::Code::Denied => {
            engine.warn(format!(
                "{name} is new; whether its env's earlier stack retained tables is unknown: {e}"
            ));
            return Ok(existing);
        }
        Err(e) => return Err(e),
    };
    if found.is_empty() {
        return Ok(existing);
    }
    let list: Vec<String> = found
        .iter()
        .map(|r| format!("  {}", r.describe()))
        .collect();
    let list = list.join("\n");
    let choices = "--adopt-retained brings them into the new stack with their data (a CloudFormation import); --fresh-tables creates new, empty tables and leaves these as they are";
    let question = "Bring them into the new stack, with their data? (no: create new, empty tables)";
    let said = format!("{name} is new, but its env's earlier stack retained these tables:\n{list}");
    let ask = || {
        engine.step(said.clone());
        engine.ask(question)
    };
    match retained::handling(mode == Mode::Plan, choice, ask) {
        Handling::Mention => {
            engine.warn(format!(
                "{said}\n`up` asks what to do with them ({choices})"
            ));
            return Ok(existing);
        }
        Handling::Refuse => {
            return Err(Error::usage(format!(
                "{said}\nNothing was changed. Choose: {choices}"
            )));
        }
        Handling::Fresh => {
            engine.warn(format!(
                "--fresh-tables: {name} gets new, empty tables; the retained ones stay as they are (`deployer ls --retained` lists them)"
            ));
            return Ok(existing);
        }
        Handling::Adopt => {}
    }
    refuse_obstacles(name, &found)?;
    // A stack whose creation failed holds nothing: `up` deletes it first anyway (an empty
    // REVIEW_IN_PROGRESS one takes the import as it is).
    if existing.is_some() {
        engine.settle(name).await?;
    }
    let template = retained::import_template(&wanted, &found);
    let stack = engine
        .import_into_new_stack(deployment, &template, retained::imports(&found))
        .await?;
    Ok(Some(stack))
}

/// Adopting is refused, before anything is sent, when a retained table cannot be imported as
/// the spec describes it.
fn refuse_obstacles(name: &str, found: &[retained::Retained]) -> Result<(), Error> {
    let blocked: Vec<String> = found
        .iter()
        .filter(|r| r.obstacle.is_some())
        .map(|r| format!("  {}", r.describe()))
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "cannot bring these retained tables into {name} as the spec describes them:\n{}\nNothing was changed. Use --fresh-tables to start with new tables",
        blocked.join("\n")
    )))
}

/// `plan` in an account and region without `deployer-bootstrap`: what `up` would create, both
/// stacks, and nothing sent.
fn plan_from_nothing<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    name: &str,
    template: &Template,
) -> Up {
    engine.step(format!(
        "{} does not exist: `up` creates it first (the artifact bucket and a shared VPC), then {name}",
        bootstrap::STACK_NAME
    ));
    engine.show_creation(bootstrap::STACK_NAME, &bootstrap::template().body());
    let changes = engine.show_creation(name, &template.body());
    Up {
        outcome: Outcome::Planned { changes },
        code_updates: Vec::new(),
        pending_restores: Vec::new(),
    }
}

/// What a deployment brings, as the hotswap and restore steps need it.
struct Changed<'a> {
    /// The artifact bucket.
    bucket: &'a str,
    deployment: &'a Deployment,
    slots: &'a [hotswap::CodeSlot],
    /// The functions running hotswapped code now.
    drift: &'a hotswap::Drift,
}

/// A hotswap: the functions' code updated directly, the drift recorded.
async fn swap_code<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    changed: &Changed<'_>,
    stack: Stack,
    swaps: Vec<hotswap::Swap>,
) -> Result<Up, Error> {
    let name = &changed.deployment.stack_name;
    let functions: Vec<&str> = swaps.iter().map(|s| s.function.as_str()).collect();
    engine.step(format!(
        "{name}: function code is all that changed: updating {} directly (hotswap)",
        functions.join(", ")
    ));
    let code_updates = engine
        .update_code(changed.bucket, &swaps, hotswap::Why::Hotswap)
        .await?;
    let now = std::time::SystemTime::now();
    let next = hotswap::after_swaps(changed.drift, &stack, changed.slots, &swaps, now);
    hotswap::write(cloud, changed.bucket, name, &next).await?;
    Ok(Up {
        outcome: Outcome::NoChanges { stack },
        code_updates,
        pending_restores: Vec::new(),
    })
}

/// Through CloudFormation; then any hotswapped code the update did not replace is put back
/// (`plan`: listed) and the drift forgotten.
async fn full_deploy<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    changed: &Changed<'_>,
    existing: Option<Stack>,
    recorded: Option<String>,
    mode: Mode,
) -> Result<Up, Error> {
    let name = &changed.deployment.stack_name;
    let drift = changed.drift;
    let restores = hotswap::restores(drift, existing.as_ref(), changed.deployment, changed.slots);
    let outcome = engine
        .deploy_from(changed.deployment, mode, existing, recorded)
        .await?;
    if mode == Mode::Plan {
        for function in drift.functions.keys() {
            engine.warn(format!(
                "{name}: `{function}` runs hotswapped code that its template does not name; `up` puts the template's code back"
            ));
        }
        return Ok(Up {
            outcome,
            code_updates: Vec::new(),
            pending_restores: restores,
        });
    }
    let mut code_updates = Vec::new();
    if !drift.is_empty() {
        code_updates = engine
            .update_code(changed.bucket, &restores, hotswap::Why::Restore)
            .await?;
        hotswap::write(cloud, changed.bucket, name, &hotswap::Drift::default()).await?;
    }
    Ok(Up {
        outcome,
        code_updates,
        pending_restores: Vec::new(),
    })
}

/// Each built function of the spec: its Lambda name, its code parameter and its artifact's hash.
fn code_slots(spec: &Spec, artifacts: &[(String, Artifact)]) -> Vec<hotswap::CodeSlot> {
    render::code_parameters(spec)
        .into_iter()
        .filter_map(|code| {
            let (_, artifact) = artifacts.iter().find(|(f, _)| *f == code.function)?;
            Some(hotswap::CodeSlot {
                lambda_name: crate::spec::names::function_name(
                    &spec.app,
                    &spec.env,
                    &code.function,
                ),
                function: code.function,
                key_parameter: code.key,
                sha256: artifact.sha256,
            })
        })
        .collect()
}

/// The stack's outputs, Url first; derived from its resources when the backend gave none.
pub async fn stack_outputs<C: Cloud>(cloud: &C, stack: &Stack) -> Vec<(String, String)> {
    if !stack.outputs.is_empty() {
        return outputs::ordered(stack.outputs.clone());
    }
    let Ok(template) = cloud.deployed_template(&stack.name).await else {
        return Vec::new();
    };
    let template: serde_json::Value = serde_json::from_str(&template).unwrap_or_default();
    let resources = cloud.resources(&stack.name).await.unwrap_or_default();
    let mut dns = None;
    if let Some(lb) = resources.iter().find(|r| r.logical_id == "LoadBalancer") {
        dns = cloud
            .load_balancer_dns(&lb.physical_id)
            .await
            .ok()
            .flatten();
    }
    outputs::derive(stack, &template, &resources, dns.as_deref())
}
