//! One function per verb that talks to AWS: connect, run the engine, report the result.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudformation::types::StackStatus;
use futures_util::StreamExt;

use crate::aws::Aws;
use crate::build::{self, Artifact, Source};
use crate::converge::engine::{
    Confirmation, Engine, Interrupts, Mode, Outcome, Progress, Teardown, Ui, cloud_failure,
};
use crate::converge::hotswap::Why;
use crate::converge::model::APP_TAG;
use crate::converge::{self, cloud::Cloud, ephemeral};
use crate::exit::{Code, Error};
use crate::render;
use crate::spec::BuildMethod;
use crate::ui::record::{self, Seconds};
use crate::ui::{Reporter, Summary};
use crate::verify;
use crate::workspace::Loaded;

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// A runtime with two workers, for commands whose work is many requests at once (`table import`,
/// `local`): both cores serve them.
pub fn two_worker_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// How `up`, `plan` and `build` get artifacts: command-line choices over the spec's `build`.
#[derive(Debug, Clone, Default)]
pub struct BuildChoice {
    /// `--artifact FN=ZIP`: a prebuilt zip for a function, whatever its build method.
    pub artifacts: Vec<(String, PathBuf)>,
    /// `--build-method`: every function's method, over the spec's.
    pub method: Option<BuildMethod>,
    /// `--no-cache`: Docker rebuilds every layer.
    pub no_cache: bool,
    /// `--builder-image` (or `DEPLOYER_BUILDER_IMAGE`): over the spec's `build.builder_image`.
    pub builder_image: Option<String>,
}

/// Where each function's artifact comes from: `--artifact` first, then `--build-method`, then
/// the spec's `build` (default docker). Decided before any network call or build, so a missing
/// zip or an unknown function is a usage error (exit 2).
pub fn artifact_sources(
    loaded: &Loaded,
    choice: &BuildChoice,
    only: &[String],
) -> Result<Vec<(String, Source)>, Error> {
    let spec = &loaded.spec;
    let known = || {
        spec.functions
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (function, _) in &choice.artifacts {
        if !spec.functions.contains_key(function) {
            return Err(Error::usage(format!(
                "--artifact names function `{function}`, which the spec does not have (functions: {})",
                known()
            )));
        }
    }
    for function in only {
        if !spec.functions.contains_key(function) {
            return Err(Error::usage(format!(
                "--fn names function `{function}`, which the spec does not have (functions: {})",
                known()
            )));
        }
    }
    let mut sources = Vec::new();
    for (name, function) in &spec.functions {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        if let Some((_, path)) = choice.artifacts.iter().rev().find(|(f, _)| f == name) {
            sources.push((name.clone(), Source::Zip(path.clone())));
            continue;
        }
        let build = function.build.clone().unwrap_or_default();
        let method = choice.method.unwrap_or(build.method);
        let project = build::Project {
            dir: loaded.base_dir().join(&function.path),
            binary: function.binary.clone(),
            architecture: function.architecture,
        };
        let source = match method {
            BuildMethod::Zip => match build.path {
                Some(path) => Source::Zip(loaded.base_dir().join(path)),
                None => {
                    return Err(Error::usage(format!(
                        "function `{name}` builds with `zip` but names no zip: pass --artifact {name}=path/to/bootstrap.zip, \
                         or set `build: {{ method: zip, path: ... }}` in the spec"
                    )));
                }
            },
            BuildMethod::Docker => Source::Docker {
                project,
                dockerfile: build.dockerfile.map(|d| loaded.base_dir().join(d)),
                builder_image: choice.builder_image.clone().or(build.builder_image),
                no_cache: choice.no_cache,
            },
            BuildMethod::CargoLambda => Source::CargoLambda { project },
        };
        sources.push((name.clone(), source));
    }
    Ok(sources)
}

/// Counts Ctrl-C presses for the engine. A second press always ends the process with 130 within
/// two seconds, even if the engine is inside a slow call and cannot react itself.
fn listen_for_ctrl_c(resume_hint: String) -> Interrupts {
    let interrupts = Interrupts::default();
    let counter = interrupts.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            counter.bump();
            if counter.count() >= 2 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                crate::ui::note(format!(
                    "error: interrupted: stopped watching. Resume watching with: {resume_hint}"
                ));
                std::process::exit(Code::Interrupted as i32);
            }
        }
    });
    interrupts
}

/// The command that resumes watching this spec's stack.
fn resume_hint(loaded: &Loaded) -> String {
    format!(
        "deployer status --watch -s {} --env {}",
        loaded.path.display(),
        loaded.spec.env
    )
}

/// What every command that talks to AWS starts with: the clients, the credentials resolved
/// (without a request: AWS's verdict on them comes with the first call), and, for commands
/// that watch CloudFormation, Ctrl-C counted.
struct Session {
    aws: Aws,
    /// Ctrl-C presses, and the command that resumes watching after the second.
    interrupts: Option<(Interrupts, String)>,
}

impl Session {
    /// Runs `work` in a session on a new runtime. `watch`: the resume command, for commands
    /// whose Ctrl-C the engine handles.
    fn run<T>(
        region: Option<&str>,
        reporter: &Reporter,
        watch: Option<String>,
        work: impl AsyncFnOnce(&Session) -> Result<T, Error>,
    ) -> Result<T, Error> {
        runtime()?.block_on(async {
            let interrupts = watch.map(|hint| (listen_for_ctrl_c(hint.clone()), hint));
            let aws = Aws::connect(region, reporter.call_log()).await?;
            aws.check_credentials().await?;
            let session = Session { aws, interrupts };
            work(&session).await
        })
    }

    /// The engine over `cloud`, reacting to Ctrl-C when the session counts it.
    fn engine<'a>(
        &self,
        cloud: &'a crate::aws::AwsCloud<'a>,
        reporter: &'a Reporter,
    ) -> Engine<'a, crate::aws::AwsCloud<'a>, Reporter> {
        let engine = Engine::new(cloud, reporter);
        match &self.interrupts {
            Some((interrupts, hint)) => engine.with_interrupts(interrupts.clone(), hint.clone()),
            None => engine,
        }
    }
}

/// The current time; `DEPLOYER_NOW` (RFC 3339) replaces it in tests of expiry and `gc`.
pub fn now() -> Result<SystemTime, Error> {
    match std::env::var("DEPLOYER_NOW") {
        Ok(text) => ephemeral::parse_time(&text)
            .ok_or_else(|| Error::usage(format!("DEPLOYER_NOW=`{text}` is not an RFC 3339 time"))),
        Err(_) => Ok(SystemTime::now()),
    }
}

/// Whether `up` hotswaps: `--hotswap`/`--no-hotswap` first, then the spec's `hotswap`, which
/// never applies to a protected env; `--hotswap` on one is refused, since a hotswap bypasses
/// CloudFormation's review and rollback.
pub fn hotswap_wanted(flag: Option<bool>, spec: &crate::spec::Spec) -> Result<bool, Error> {
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

/// What `up` may do beyond converging: the `--hotswap`/`--no-hotswap` and
/// `--verify`/`--no-verify` flags, when given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// `Some(true)`: `--hotswap`; `Some(false)`: `--no-hotswap`.
    pub hotswap: Option<bool>,
    /// `Some(true)`: `--verify` (an unreachable service fails the command); `Some(false)`:
    /// `--no-verify`.
    pub verify: Option<bool>,
    /// `plan --upload-template`: a template too large to send inline may be uploaded.
    pub upload_template: bool,
    /// `--adopt-retained` / `--fresh-tables`: what to do with tables an earlier stack of the
    /// env retained.
    pub retained: converge::retained::RetainedChoice,
    /// `Some(true)`: `--express`; `Some(false)`: `--no-express`.
    pub express: Option<bool>,
}

/// `up` and `plan`.
pub fn up(
    loaded: &Loaded,
    choice: &BuildChoice,
    ttl: Option<Duration>,
    mode: Mode,
    check_permissions: bool,
    options: UpOptions,
    reporter: &Reporter,
) -> Result<(), Error> {
    let hotswap = options.hotswap;
    let started = Instant::now();
    let spec = &loaded.spec;
    let hotswap = mode != Mode::Plan && hotswap_wanted(hotswap, spec)?;
    let now = now()?;
    if ttl.is_some() && spec.is_protected() {
        return Err(Error::usage(format!(
            "env `{}` is protected (`protected_envs`), so it can never be ephemeral: drop --ttl",
            spec.env
        )));
    }
    // Refused before any AWS call: --express for a protected env the spec does not make express.
    let spec_express = spec.deploy.and_then(|d| d.express);
    converge::express::wanted(options.express, spec_express, false, spec.is_protected())
        .map_err(Error::usage)?;
    // The stack limits (500 resources, 1 MB) are checked before any AWS call; the template
    // sent later differs only in the deletion policies of an ephemeral env.
    loaded.render(render::Options::default())?;
    let sources = artifact_sources(loaded, choice, &[])?;
    let watch = Some(resume_hint(loaded));
    Session::run(spec.region.as_deref(), reporter, watch, async |session| {
        let aws = &session.aws;
        let deploy_started = SystemTime::now();
        // Without `region` in the spec, `validate` could not compare these ARNs' regions.
        let region = aws.region();
        let wrong: Vec<String> = spec
            .regional_arns()
            .into_iter()
            .filter_map(|(field, arn)| {
                crate::spec::names::check_same_region(field, arn, &region).err()
            })
            .collect();
        if !wrong.is_empty() {
            return Err(Error::usage(wrong.join("\n")));
        }
        let cloud = aws.cloud();
        let engine = session
            .engine(&cloud, reporter)
            .with_plan_uploads_template(options.upload_template);
        let existing = converge::describe(&cloud, &spec.stack_name()).await?;
        let described_at = Instant::now();
        let lifetime = ephemeral::lifetime(spec, ttl, existing.as_ref(), now)?;
        let ephemeral = !lifetime.tags.is_empty();
        let express = converge::express::wanted(
            options.express,
            spec_express,
            ephemeral,
            spec.is_protected(),
        )
        .map_err(Error::usage)?;
        let template = loaded.render(render::Options {
            ephemeral: !lifetime.tags.is_empty(),
        })?;
        let artifacts = async {
            let built = build::build_all(&sources, reporter).await?;
            Ok::<_, Error>(
                built
                    .into_iter()
                    .map(|(function, built)| (function, built.artifact))
                    .collect::<Vec<(String, Artifact)>>(),
            )
        };
        let converge::Up {
            outcome,
            code_updates,
            pending_restores,
        } = converge::up(
            &engine,
            &cloud,
            spec,
            &template,
            artifacts,
            &lifetime,
            mode,
            check_permissions,
            hotswap,
            express,
            options.retained,
            Some(converge::Described {
                stack: existing,
                at: described_at,
            }),
        )
        .await?;
        let hotswapped = code_updates.iter().any(|u| u.why == Why::Hotswap);
        let (status, changed, outputs, changes) = match &outcome {
            Outcome::NoChanges { stack } if hotswapped => {
                let outputs = converge::stack_outputs(&cloud, stack).await;
                ("hotswapped".to_string(), true, outputs, Vec::new())
            }
            Outcome::NoChanges { .. } if !pending_restores.is_empty() => {
                ("changes pending".to_string(), true, Vec::new(), Vec::new())
            }
            Outcome::NoChanges { stack } => {
                let outputs = converge::stack_outputs(&cloud, stack).await;
                let changed = !code_updates.is_empty();
                let status = if changed {
                    "code restored"
                } else {
                    "no changes"
                };
                (status.to_string(), changed, outputs, Vec::new())
            }
            Outcome::Planned { changes } => (
                "changes pending".to_string(),
                true,
                Vec::new(),
                changes.clone(),
            ),
            Outcome::Applied { stack, changes } => {
                let outputs = converge::stack_outputs(&cloud, stack).await;
                (
                    stack.status.as_str().to_string(),
                    true,
                    outputs,
                    changes.clone(),
                )
            }
        };
        let verified = if mode == Mode::Plan {
            None
        } else {
            verify_deployed(
                aws,
                spec,
                &outputs,
                options.verify,
                deploy_started,
                reporter,
            )
            .await?
        };
        reporter.finish(&Summary {
            stack: spec.stack_name(),
            env: spec.env.clone(),
            status,
            changed,
            outputs,
            changes,
            code_updates,
            verified,
            elapsed: started.elapsed().saturating_sub(reporter.time_at_prompts()),
            plan: mode == Mode::Plan,
        });
        match outcome {
            Outcome::Planned { .. } => Err(Error::new(Code::Changes, "")),
            _ if !pending_restores.is_empty() => Err(Error::new(Code::Changes, "")),
            _ => Ok(()),
        }
    })
}

/// After `up`: the request of [`verify::plan`], reported; a failing answer fails the command
/// with the response and the routed function's latest log lines.
async fn verify_deployed(
    aws: &Aws,
    spec: &crate::spec::Spec,
    outputs: &[(String, String)],
    flag: Option<bool>,
    since: SystemTime,
    reporter: &Reporter,
) -> Result<Option<record::Verified>, Error> {
    let override_url = std::env::var("DEPLOYER_VERIFY_URL").ok();
    let emulator = crate::aws::endpoint_overridden();
    let name = spec.stack_name();
    let target = match verify::plan(
        spec,
        outputs,
        emulator,
        override_url.as_deref(),
        flag != Some(false),
    ) {
        verify::Plan::Probe(target) => target,
        verify::Plan::Skip(why) => {
            if let Some(why) = why {
                reporter.progress(Progress::Step(format!("{name}: not verified: {why}")));
            }
            return Ok(None);
        }
    };
    let shown = format!("GET {}", target.path);
    if let Some(function) = &target.function
        && spec
            .functions
            .get(function)
            .is_some_and(|f| f.health_check.is_some())
    {
        wait_until_healthy(aws, &name, function, reporter).await?;
    }
    match verify::probe(&target, VERIFY_TIMEOUT).await {
        verify::Probed::Answered {
            status, latency, ..
        } if verify::passes(status, target.expect) => {
            reporter.verified(&name, &shown, status, latency);
            Ok(Some(record::Verified {
                path: target.path,
                status,
                latency_ms: latency.as_millis() as u64,
            }))
        }
        verify::Probed::Answered { status, body, .. } => {
            let wanted = target
                .expect
                .map_or("a status below 500".to_string(), |e| e.to_string());
            let mut message = format!(
                "{name} is deployed, but {shown} answered {status} (expected {wanted}) at {}",
                target.url
            );
            if !body.trim().is_empty() {
                message.push_str(&format!(
                    "\nresponse:\n  {}",
                    body.trim().replace('\n', "\n  ")
                ));
            }
            if let Some(function) = &target.function {
                message.push_str(&latest_logs(aws, spec, function, since).await);
            }
            Err(Error::failed(message))
        }
        verify::Probed::Unreachable(why) if flag == Some(true) => Err(Error::failed(format!(
            "{name} is deployed, but {shown} at {} did not answer: {why}",
            target.url
        ))),
        verify::Probed::Unreachable(why) => {
            reporter.progress(Progress::Warning(format!(
                "{name}: not verified: {shown} at {} did not answer from here ({why}); an internal or \
                 address-restricted load balancer cannot be reached from outside (`--verify` makes this an error)",
                target.url
            )));
            Ok(None)
        }
    }
}

/// How long a target group with a health check may take to call its target healthy before the
/// request goes anyway (an ALB's first checks of a Lambda target take about a minute).
const HEALTHY_WITHIN: Duration = Duration::from_secs(300);

/// Where the routed function's target group has a health check: waits (DescribeTargetHealth
/// every 5 s) until a target is healthy; past [`HEALTHY_WITHIN`] the request goes anyway and its
/// answer decides.
async fn wait_until_healthy(
    aws: &Aws,
    stack: &str,
    function: &str,
    reporter: &Reporter,
) -> Result<(), Error> {
    let cloud = aws.cloud();
    let id = crate::render::target_group_id(function);
    let resources = cloud.resources(stack).await.map_err(|e| {
        converge::engine::cloud_failure(&format!("cannot list the resources of {stack}"), e)
    })?;
    let Some(arn) = resources
        .iter()
        .find(|r| r.logical_id == id)
        .map(|r| r.physical_id.clone())
    else {
        return Ok(());
    };
    let started = Instant::now();
    let mut said = None;
    loop {
        match verify::health(&aws.target_health(&arn).await?) {
            verify::Health::Ready => return Ok(()),
            verify::Health::Wait(state) if started.elapsed() >= HEALTHY_WITHIN => {
                reporter.progress(Progress::Warning(format!(
                    "{stack}: the target of `{function}` is still {state} after {} s; sending the request anyway",
                    HEALTHY_WITHIN.as_secs()
                )));
                return Ok(());
            }
            verify::Health::Wait(state) => {
                if said.as_ref() != Some(&state) {
                    reporter.progress(Progress::Step(format!(
                        "{stack}: waiting for the health check of `{function}`'s target group: {state}"
                    )));
                    said = Some(state);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// How long the verification request may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(15);

/// The last lines `function` logged since `since`, for a failed verification's message.
async fn latest_logs(
    aws: &Aws,
    spec: &crate::spec::Spec,
    function: &str,
    since: SystemTime,
) -> String {
    let physical = crate::spec::names::function_name(&spec.app, &spec.env, function);
    let group = format!("/aws/lambda/{physical}");
    let start_ms = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    match aws.log_events(&group, start_ms).await {
        Ok(events) if events.is_empty() => {
            format!("\n{group} has no log lines since the deploy began")
        }
        Ok(events) => {
            let tail: Vec<String> = events
                .iter()
                .rev()
                .take(20)
                .rev()
                .map(|e| format!("  {}", e.message))
                .collect();
            format!("\nlast lines of {group}:\n{}", tail.join("\n"))
        }
        Err(e) => format!("\n(its logs could not be read: {e})"),
    }
}

/// `down`; `express`: `--express` / `--no-express` (default: express for an ephemeral env).
pub fn down(
    loaded: &Loaded,
    yes: bool,
    express: Option<bool>,
    reporter: &Reporter,
) -> Result<(), Error> {
    let started = Instant::now();
    let spec = &loaded.spec;
    let name = spec.stack_name();
    let watch = Some(resume_hint(loaded));
    Session::run(spec.region.as_deref(), reporter, watch, async |session| {
        let cloud = session.aws.cloud();
        let engine = session.engine(&cloud, reporter);
        let report =
            converge::down(&engine, &cloud, &name, spec.is_protected(), yes, express).await?;
        let deleted_status = StackStatus::DeleteComplete.as_str();
        let (status, mut message, retained) = match &report.teardown {
            Teardown::NothingToDelete => ("absent", "nothing to delete".to_string(), Vec::new()),
            Teardown::Deleted { retained_tables } if retained_tables.is_empty() => {
                (deleted_status, "deleted".to_string(), Vec::new())
            }
            Teardown::Deleted { retained_tables } => (
                deleted_status,
                format!(
                    "deleted; these tables are retained and keep their data: {} (`deployer up` of this env offers to bring them back: --adopt-retained)",
                    retained_tables.join(", ")
                ),
                retained_tables.clone(),
            ),
        };
        if !report.removed_artifacts.is_empty() || !report.kept_artifacts.is_empty() {
            message.push_str(&format!(
                "; removed {} artifact(s), kept {} still used by other envs",
                report.removed_artifacts.len(),
                report.kept_artifacts.len()
            ));
        }
        let elapsed = started.elapsed();
        reporter.done(
            &name,
            &message,
            elapsed,
            record::Summary::Down {
                stack: name.clone(),
                status: status.to_string(),
                message: message.clone(),
                duration_s: Seconds(elapsed),
                retained_tables: retained,
                removed_artifacts: report.removed_artifacts,
                kept_artifacts: report.kept_artifacts,
            },
        );
        Ok(())
    })
}

/// `gc`: deletes expired ephemeral stacks, four at a time.
pub fn gc(
    region: Option<&str>,
    app: Option<&str>,
    older_than: Option<Duration>,
    dry_run: bool,
    yes: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    let started = Instant::now();
    let now = now()?;
    Session::run(region, reporter, None, async |session| {
        let cloud = session.aws.cloud();
        let stacks = cloud
            .list_stacks()
            .await
            .map_err(|e| cloud_failure("cannot list stacks", e))?;
        let mut doomed = Vec::new();
        for stack in stacks
            .iter()
            .filter(|s| app.is_none_or(|a| s.tags.get(APP_TAG).is_some_and(|t| t == a)))
        {
            let verdict = ephemeral::gc_verdict(stack, now, older_than);
            reporter.gc_verdict(&stack.name, &verdict);
            if let ephemeral::Verdict::Delete(_) = verdict {
                doomed.push(stack.name.clone());
            }
        }
        if dry_run || doomed.is_empty() {
            let message = format!(
                "{} stack(s) to delete{}",
                doomed.len(),
                if dry_run { " (dry run)" } else { "" }
            );
            let elapsed = started.elapsed();
            reporter.done(
                "gc",
                &message,
                elapsed,
                record::Summary::Gc {
                    status: "ok".into(),
                    message: message.clone(),
                    duration_s: Seconds(elapsed),
                    dry_run,
                    stacks: doomed,
                    failed: Vec::new(),
                },
            );
            return Ok(());
        }
        let engine = session.engine(&cloud, reporter);
        if !yes {
            match reporter.confirm(&format!("Delete {} expired stack(s)?", doomed.len())) {
                Confirmation::Yes => {}
                Confirmation::No => return Err(Error::failed("cancelled: nothing was deleted")),
                Confirmation::NotInteractive => {
                    return Err(Error::usage(
                        "not a terminal, so nobody can confirm: pass --yes (or --dry-run)",
                    ));
                }
            }
        }
        let results: Vec<(String, Result<converge::DownReport, Error>)> =
            futures_util::stream::iter(doomed)
                .map(|name| {
                    let (engine, cloud) = (&engine, &cloud);
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
        let message = format!("deleted {} stack(s): {}", deleted.len(), deleted.join(", "));
        let elapsed = started.elapsed();
        reporter.done(
            "gc",
            &message,
            elapsed,
            record::Summary::Gc {
                status: if failed.is_empty() { "ok" } else { "failed" }.into(),
                message: message.clone(),
                duration_s: Seconds(elapsed),
                dry_run: false,
                stacks: deleted,
                failed: failed.clone(),
            },
        );
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::failed(format!(
                "{} deletion(s) failed:\n{}",
                failed.len(),
                failed.join("\n")
            )))
        }
    })
}

/// How many stacks `gc` deletes at once: CloudFormation deletes run for minutes, and more
/// concurrent operations only invite throttling.
const GC_CONCURRENCY: usize = 4;

/// `ls`: the stacks deployer manages.
pub fn ls(
    region: Option<&str>,
    app: Option<&str>,
    retained: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    Session::run(region, reporter, None, async |session| {
        let cloud = session.aws.cloud();
        let stacks = cloud
            .list_stacks()
            .await
            .map_err(|e| cloud_failure("cannot list stacks", e))?;
        if retained {
            let names = stacks.iter().map(|s| s.name.clone()).collect();
            let orphans = converge::retained::list(&cloud, &names, app).await?;
            reporter.retained_tables(&orphans);
            return Ok(());
        }
        let mut rows: Vec<_> = stacks
            .iter()
            .filter(|s| s.tags.contains_key(APP_TAG))
            .filter(|s| app.is_none_or(|a| s.tags.get(APP_TAG).is_some_and(|t| t == a)))
            .map(ephemeral::StackRow::of)
            .collect();
        rows.sort();
        reporter.stack_list(&rows);
        Ok(())
    })
}

/// `status`, and with `watch` following a running operation until it settles.
pub fn status(loaded: &Loaded, watch: bool, reporter: &Reporter) -> Result<(), Error> {
    let name = loaded.spec.stack_name();
    let resume = watch.then(|| resume_hint(loaded));
    Session::run(
        loaded.spec.region.as_deref(),
        reporter,
        resume,
        async |session| {
            let cloud = session.aws.cloud();
            let stack = if watch {
                session.engine(&cloud, reporter).follow(&name).await?
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
            reporter.status(stack.as_ref(), &name, drift.as_ref());
            Ok(())
        },
    )
}

/// `outputs`.
pub fn outputs(loaded: &Loaded, reporter: &Reporter) -> Result<(), Error> {
    let name = loaded.spec.stack_name();
    Session::run(
        loaded.spec.region.as_deref(),
        reporter,
        None,
        async |session| {
            let cloud = session.aws.cloud();
            let stack = converge::describe(&cloud, &name).await?.ok_or_else(|| {
                Error::failed(format!("{name} does not exist: run `deployer up` first"))
            })?;
            reporter.outputs(&stack.name, &converge::stack_outputs(&cloud, &stack).await);
            Ok(())
        },
    )
}

/// `bootstrap`.
pub fn bootstrap(region: Option<&str>, express: bool, reporter: &Reporter) -> Result<(), Error> {
    let started = Instant::now();
    Session::run(region, reporter, None, async |session| {
        let aws = &session.aws;
        let cloud = aws.cloud();
        let engine = session
            .engine(&cloud, reporter)
            .with_express_own_stack(express);
        let boot = converge::ensure_bootstrap(&engine, &cloud).await?;
        let elapsed = started.elapsed();
        reporter.done(
            render::bootstrap::STACK_NAME,
            &format!(
                "ready in {}: bucket {}, VPC {}",
                aws.region(),
                boot.bucket,
                boot.vpc_id
            ),
            elapsed,
            record::Summary::Bootstrap {
                stack: render::bootstrap::STACK_NAME.to_string(),
                region: aws.region(),
                bucket: boot.bucket,
                vpc_id: boot.vpc_id,
                subnet_ids: boot.subnet_ids,
                duration_s: Seconds(elapsed),
            },
        );
        Ok(())
    })
}

/// `logs`: prints the function's CloudWatch log events since `since` ago; `follow` keeps polling.
pub fn logs(
    loaded: &Loaded,
    function: Option<&str>,
    since: Duration,
    follow: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    let spec = &loaded.spec;
    let function = match function {
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
    let start = now()?.checked_sub(since).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut start_ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Session::run(spec.region.as_deref(), reporter, None, async |session| {
        let aws = &session.aws;
        let mut seen = std::collections::HashSet::new();
        loop {
            for event in aws.log_events(&group, start_ms).await? {
                if seen.insert(event.id.clone()) {
                    start_ms = start_ms.max(event.timestamp_ms);
                    reporter.log_event(&function, &event);
                }
            }
            if !follow {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// `build`: every function's artifact (or those named by `--fn`), with its sha256 and size.
/// No AWS calls.
pub fn build(
    loaded: &Loaded,
    choice: &BuildChoice,
    only: &[String],
    reporter: &Reporter,
) -> Result<(), Error> {
    let sources = artifact_sources(loaded, choice, only)?;
    let built = runtime()?.block_on(build::build_all(&sources, reporter))?;
    reporter.built(&built);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded() -> Loaded {
        let source = "app: a\nfunctions:\n  api:\n    path: svc\n    binary: api-bin\n    \
                      architecture: x86_64\n  worker:\n    path: work\n    \
                      build: { method: zip, path: dist/worker.zip }\n  cron:\n    path: cron\n    \
                      build: { method: cargo-lambda }\n  pinned:\n    path: pinned\n    \
                      build: { builder_image: my/rust:1 }\n";
        Loaded {
            spec: crate::spec::parse(source, "stacks/a.yaml").unwrap(),
            path: PathBuf::from("stacks/a.yaml"),
        }
    }

    fn sources(choice: &BuildChoice, only: &[&str]) -> Vec<(String, Source)> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        artifact_sources(&loaded(), choice, &only).unwrap()
    }

    #[test]
    fn each_function_gets_its_specs_method_with_paths_from_the_spec_file() {
        let all = sources(&BuildChoice::default(), &[]);
        let methods: Vec<(&str, &str)> =
            all.iter().map(|(f, s)| (f.as_str(), s.method())).collect();
        assert_eq!(
            methods,
            [
                ("api", "docker"),
                ("worker", "zip"),
                ("cron", "cargo-lambda"),
                ("pinned", "docker")
            ]
        );
        let Source::Docker {
            project,
            builder_image,
            no_cache,
            dockerfile,
        } = &all[0].1
        else {
            panic!("{:?}", all[0]);
        };
        assert_eq!(project.dir, PathBuf::from("stacks/svc"));
        assert_eq!(project.binary.as_deref(), Some("api-bin"));
        assert_eq!(project.architecture, crate::spec::Architecture::X86_64);
        assert_eq!(
            (builder_image, no_cache, dockerfile),
            (&None, &false, &None)
        );
        assert_eq!(
            all[1].1,
            Source::Zip(PathBuf::from("stacks/dist/worker.zip"))
        );
        let Source::Docker { builder_image, .. } = &all[3].1 else {
            panic!()
        };
        assert_eq!(builder_image.as_deref(), Some("my/rust:1"));
    }

    #[test]
    fn artifact_beats_build_method_which_beats_the_spec() {
        let choice = BuildChoice {
            artifacts: vec![("cron".into(), "c.zip".into())],
            method: Some(BuildMethod::CargoLambda),
            no_cache: false,
            builder_image: None,
        };
        let all = sources(&choice, &["api", "cron"]);
        assert_eq!(all.len(), 2, "--fn keeps only the named functions");
        assert_eq!(all[0].1.method(), "cargo-lambda");
        assert_eq!(all[1].1, Source::Zip(PathBuf::from("c.zip")));
    }

    #[test]
    fn the_command_lines_builder_image_and_no_cache_reach_docker_builds() {
        let choice = BuildChoice {
            no_cache: true,
            builder_image: Some("local/builder:1".into()),
            ..BuildChoice::default()
        };
        for (function, source) in sources(&choice, &["api", "pinned"]) {
            let Source::Docker {
                builder_image,
                no_cache,
                ..
            } = source
            else {
                panic!()
            };
            assert_eq!(
                builder_image.as_deref(),
                Some("local/builder:1"),
                "{function}"
            );
            assert!(no_cache);
        }
    }

    #[test]
    fn unknown_functions_and_zip_without_a_path_are_usage_errors() {
        let unknown = |choice: &BuildChoice, only: &[String]| {
            artifact_sources(&loaded(), choice, only).unwrap_err()
        };
        let err = unknown(&BuildChoice::default(), &["apj".into()]);
        assert_eq!(err.code, Code::Usage);
        assert!(err.message.contains("--fn names function `apj`"), "{err}");
        assert!(
            err.message
                .contains("(functions: api, worker, cron, pinned)"),
            "{err}"
        );
        let choice = BuildChoice {
            artifacts: vec![("nope".into(), "n.zip".into())],
            ..BuildChoice::default()
        };
        assert!(
            unknown(&choice, &[])
                .message
                .contains("--artifact names function `nope`")
        );
        let choice = BuildChoice {
            method: Some(BuildMethod::Zip),
            ..BuildChoice::default()
        };
        let err = unknown(&choice, &[]);
        assert!(
            err.message
                .contains("function `api` builds with `zip` but names no zip"),
            "{err}"
        );
    }
}
