//! What `up` does once the stack is deployed: one request to the service (the spec's `verify`,
//! default `GET /`), after its target's health check passes when it has one.

use std::time::{Duration, Instant, SystemTime};

use crate::aws::Aws;
use crate::converge::{self, cloud::Cloud, engine::Progress, engine::Ui};
use crate::exit::Error;
use crate::ui::Reporter;
use crate::ui::record::Verified;
use crate::verify;

/// After `up`: the request of [`verify::plan`], reported; a failing answer fails the command
/// with the response and the routed function's latest log lines.
pub async fn verify_deployed(
    aws: &Aws,
    spec: &crate::spec::Spec,
    outputs: &[(String, String)],
    flag: Option<bool>,
    since: SystemTime,
    reporter: &Reporter,
) -> Result<Option<Verified>, Error> {
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
            Ok(Some(Verified {
                path: target.path,
                status,
                latency_ms: latency.as_millis() as u64,
            }))
        }
        verify::Probed::Answered { status, body, .. } => {
            let mut message = wrong_answer(&name, &shown, &target, status, &body);
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

/// `notes-dev is deployed, but GET / answered 502 (expected 200) at <url>`, with the body.
fn wrong_answer(
    name: &str,
    shown: &str,
    target: &verify::Target,
    status: u16,
    body: &str,
) -> String {
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
    message
}
