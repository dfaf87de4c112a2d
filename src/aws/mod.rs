//! AWS clients from one `SdkConfig` (region, credentials, `AWS_ENDPOINT_URL` as the SDK reads
//! them), the credentials check, and [`AwsCloud`], the SDK implementation of [`Cloud`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::converge::cloud::{
    ChangeSetRequest, Cloud, CloudError, Condition, Object, StackRequest,
};
use crate::converge::model::{
    Change, ChangeAction, ChangeSet, ChangeSetStatus, DifferenceType, DriftDetection, FunctionCode,
    IndexState, PropertyDifference, Resource, ResourceDrift, ResourceStatus, Stack,
    StackDriftDetectionStatus, StackEvent, TableState, TableSummary, TimeToLiveStatus,
};
use crate::converge::preflight::{Decision, Evaluation, Probe};
use crate::exit::{Code, Error};

pub mod dynamodb;
pub mod lookups;
pub mod pricing;
pub mod query;

/// The clients deployer uses, all from one configuration.
pub struct Aws {
    /// The resolved configuration.
    pub config: aws_config::SdkConfig,
    cfn: aws_sdk_cloudformation::Client,
    s3: aws_sdk_s3::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    sts: aws_sdk_sts::Client,
    lambda: aws_sdk_lambda::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// EC2 and IAM (see [`query`]).
    query: query::QueryClient,
}

/// Where `-v` sends one line per AWS call.
pub type CallLog = fn(String);

/// Logs every AWS call made through a client (`-v`): service, operation, outcome, duration.
#[derive(Debug)]
struct LogCalls(CallLog);

/// When the current call started.
#[derive(Debug, Clone)]
struct CallStart(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LogCalls {
    fn name(&self) -> &'static str {
        "deployer-log-calls"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(CallStart(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let metadata = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>();
        let (service, operation) = metadata.map_or(("?", "?"), |m| (m.service(), m.name()));
        let took = cfg
            .load::<CallStart>()
            .map(|s| s.0.elapsed().as_millis())
            .unwrap_or_default();
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "error",
            None => "no response",
        };
        (self.0)(format!("aws {service}.{operation} {outcome} {took} ms"));
        Ok(())
    }
}

/// One CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Unique id.
    pub id: String,
    /// Epoch milliseconds.
    pub timestamp_ms: i64,
    /// The line, without its trailing newline.
    pub message: String,
}

/// Each attempt of an AWS call gets this long before the SDK retries it (throttling and
/// transient errors are retried by the SDK's standard mode, `AWS_MAX_ATTEMPTS` attempts).
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connect and per-attempt timeouts; `DEPLOYER_ATTEMPT_TIMEOUT_MS` overrides the attempt timeout
/// (slow links, and tests that hold responses back).
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(attempt_timeout())
        .build()
}

fn attempt_timeout() -> std::time::Duration {
    std::env::var("DEPLOYER_ATTEMPT_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(ATTEMPT_TIMEOUT, std::time::Duration::from_millis)
}

/// Whether an endpoint override is in force (an emulator): S3 must then use path-style URLs,
/// since `bucket.localhost` does not resolve.
/// Whether an endpoint is configured (an emulator such as moto).
pub fn endpoint_overridden() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

impl Aws {
    /// Loads the configuration: the spec's region if it has one, else the SDK's region chain;
    /// credentials from the SDK's default chain (environment, profile, SSO, web identity, ...).
    pub async fn connect(region: Option<&str>, log_calls: Option<CallLog>) -> Result<Aws, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(Error::new(
                Code::Credentials,
                "no AWS region: set `region:` in the spec, AWS_REGION, or a region in your AWS profile",
            ));
        }
        Ok(Aws::from_config(config, log_calls))
    }

    /// The clients for a loaded configuration (tests build one for an emulator).
    pub fn from_config(config: aws_config::SdkConfig, log_calls: Option<CallLog>) -> Aws {
        // One macro per client type would not be clearer than this: each SDK has its own Builder.
        let mut cfn = aws_sdk_cloudformation::config::Builder::from(&config);
        let mut s3 =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(endpoint_overridden());
        let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(&config);
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(&config);
        let mut sts = aws_sdk_sts::config::Builder::from(&config);
        let mut lambda = aws_sdk_lambda::config::Builder::from(&config);
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&config);
        if let Some(log) = log_calls {
            cfn.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            s3.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            elb.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            logs.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            sts.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            lambda.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
            dynamodb.push_interceptor(
                aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(LogCalls(log)),
            );
        }
        Aws {
            cfn: aws_sdk_cloudformation::Client::from_conf(cfn.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            query: query::QueryClient::new(&config, attempt_timeout(), log_calls),
            config,
        }
    }

    /// The region in use.
    pub fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// Resolves the credentials (environment, profile, SSO, web identity, instance metadata)
    /// without a request to AWS: a missing set is one clear sentence, exit 3, before any call.
    /// Whether AWS accepts them shows on the first call, which words its own failure.
    pub async fn check_credentials(&self) -> Result<(), Error> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let Some(provider) = self.config.credentials_provider() else {
            return Err(Error::new(
                Code::Credentials,
                format!("no usable AWS credentials ({TRIED})"),
            ));
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::new(
                Code::Credentials,
                format!(
                    "no usable AWS credentials ({TRIED}): {}",
                    one_line(&DisplayErrorContext(&e).to_string())
                ),
            )),
        }
    }

    /// DescribeTargetHealth: each target's `(state, reason code)`.
    pub async fn target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| {
                crate::converge::engine::cloud_failure(
                    "cannot read the target group's health",
                    cloud_error(e),
                )
            })?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target_health())
            .map(|h| {
                (
                    h.state().map_or("unknown", |s| s.as_str()).to_string(),
                    h.reason().map(|r| r.as_str().to_string()),
                )
            })
            .collect())
    }

    /// Log events of `group` at or after `start_ms` (epoch milliseconds), all pages, oldest first.
    /// A missing group is an empty result: the function has not logged yet.
    pub async fn log_events(&self, group: &str, start_ms: i64) -> Result<Vec<LogEvent>, Error> {
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(start_ms)
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let out = match page {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    break;
                }
                Err(e) => {
                    return Err(Error::failed(format!(
                        "cannot read the logs of {group}: {}",
                        cloud_error(e)
                    )));
                }
            };
            events.extend(out.events().iter().map(|e| LogEvent {
                id: e.event_id().unwrap_or_default().to_string(),
                timestamp_ms: e.timestamp().unwrap_or_default(),
                message: e.message().unwrap_or_default().trim_end().to_string(),
            }));
        }
        Ok(events)
    }

    /// The [`Cloud`] over these clients.
    pub fn cloud(&self) -> AwsCloud<'_> {
        AwsCloud { aws: self }
    }
}

/// Whether an SDK error means no answer came back: refused, DNS, timeouts.
fn no_answer<E, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::TimeoutError(_))
        || matches!(e, SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout())
}

/// Where the SDK looks for credentials, for the error that says none were found.
const TRIED: &str = "tried: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or the `default` profile) in ~/.aws, \
                     SSO, web identity, and container/instance metadata";

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An SDK error reduced to its code and message; no answer at all is "unreachable".
fn cloud_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> CloudError {
    if no_answer(&e) {
        // The innermost cause ("Connection refused", "timed out") is the one worth a line.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        return CloudError::unreachable(format!(
            "no answer from AWS: {}",
            one_line(&cause.to_string())
        ));
    }
    // An answer that is no AWS error at all (an emulator's HTML 500 for a call it lacks): its
    // HTTP status, not the SDK's dump of the whole response.
    let bare_status = match (e.code(), e.message(), &e) {
        (None, None, SdkError::ServiceError(service)) => Some(service.raw().status().as_u16()),
        _ => None,
    };
    CloudError {
        code: e.code().map(str::to_string),
        message: match bare_status {
            Some(status) => format!(
                "the service answered HTTP {status} with no AWS error in it (an endpoint that does not implement this call answers so)"
            ),
            None => e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| one_line(&DisplayErrorContext(&e).to_string())),
        },
        unreachable: false,
    }
}

fn parameters(values: &BTreeMap<String, String>) -> Vec<Parameter> {
    values
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn tags(values: &BTreeMap<String, String>) -> Vec<Tag> {
    values
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The SDK's timestamp as the engine's clock type (`None` only for dates `SystemTime` cannot hold).
/// `DeploymentConfig { Mode: EXPRESS }` for an express operation; none (standard) otherwise.
fn express_config(express: bool) -> Option<aws_sdk_cloudformation::types::DeploymentConfig> {
    express.then(|| {
        aws_sdk_cloudformation::types::DeploymentConfig::builder()
            .mode(aws_sdk_cloudformation::types::DeploymentConfigMode::Express)
            .build()
    })
}

/// The evaluation results of one SimulatePrincipalPolicy answer page.
fn evaluations(xml: &str) -> Vec<Evaluation> {
    let fields = ["EvalActionName", "EvalDecision"];
    let lists = ["MissingContextValues", "MatchedStatements"];
    query::list_items_with_lists(xml, "EvaluationResults", &fields, &lists)
        .into_iter()
        .map(|item| Evaluation {
            action: item.get("EvalActionName").cloned().unwrap_or_default(),
            decision: match item.get("EvalDecision").map(String::as_str) {
                Some("allowed") => Decision::Allowed,
                Some("explicitDeny") => Decision::ExplicitDeny,
                _ => Decision::ImplicitDeny,
            },
            missing_context: item
                .get("MissingContextValues")
                .map(|v| v.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

fn stack_from(s: &aws_sdk_cloudformation::types::Stack) -> Stack {
    Stack {
        id: s.stack_id().unwrap_or_default().to_string(),
        name: s.stack_name().unwrap_or_default().to_string(),
        status: s
            .stack_status()
            .cloned()
            .unwrap_or_else(|| "UNKNOWN".into()),
        reason: s.stack_status_reason().map(str::to_string),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        termination_protection: s.enable_termination_protection().unwrap_or(false),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        created: s.creation_time().and_then(system_time),
        updated: s.last_updated_time().and_then(system_time),
        drift: s
            .drift_information()
            .and_then(|d| d.stack_drift_status())
            .cloned(),
    }
}

/// [`Cloud`] over the AWS SDK.
pub struct AwsCloud<'a> {
    aws: &'a Aws,
}

impl Cloud for AwsCloud<'_> {
    async fn stack(&self, name: &str) -> Result<Option<Stack>, CloudError> {
        match self.aws.cfn.describe_stacks().stack_name(name).send().await {
            Ok(out) => Ok(out.stacks().first().map(stack_from)),
            Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
            Err(e) => Err(cloud_error(e)),
        }
    }

    async fn list_stacks(&self) -> Result<Vec<Stack>, CloudError> {
        let stacks: Vec<_> = self
            .aws
            .cfn
            .describe_stacks()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(cloud_error)?;
        Ok(stacks.iter().map(stack_from).collect())
    }

    async fn put_stack(&self, r: &StackRequest) -> Result<String, CloudError> {
        // TemplateURL replaces the body when the template is too large to send inline.
        let body = r.template_body.clone().filter(|_| r.template_url.is_none());
        let id = if r.create {
            self.aws
                .cfn
                .create_stack()
                .stack_name(&r.stack_name)
                .set_template_body(body)
                .set_template_url(r.template_url.clone())
                .set_parameters(Some(parameters(&r.parameters)))
                .set_tags(Some(tags(&r.tags)))
                .capabilities(Capability::CapabilityNamedIam)
                .enable_termination_protection(r.termination_protection)
                .client_request_token(&r.token)
                .set_deployment_config(express_config(r.express))
                .send()
                .await
                .map_err(cloud_error)?
                .stack_id
        } else {
            self.aws
                .cfn
                .update_stack()
                .stack_name(&r.stack_name)
                .set_template_body(body)
                .set_template_url(r.template_url.clone())
                .use_previous_template(r.template_body.is_none() && r.template_url.is_none())
                .set_parameters(Some(parameters(&r.parameters)))
                .set_tags(Some(tags(&r.tags)))
                .capabilities(Capability::CapabilityNamedIam)
                .client_request_token(&r.token)
                .set_deployment_config(express_config(r.express))
                .send()
                .await
                .map_err(cloud_error)?
                .stack_id
        };
        Ok(id.unwrap_or_else(|| r.stack_name.clone()))
    }

    async fn create_change_set(
        &self,
        r: &ChangeSetRequest,
    ) -> Result<(String, String), CloudError> {
        let out = self
            .aws
            .cfn
            .create_change_set()
            .stack_name(&r.stack_name)
            .change_set_name(&r.name)
            // Idempotent under retries, like the other mutating calls.
            .client_token(&r.name)
            .change_set_type(match (r.imports.is_empty(), r.create) {
                (false, _) => ChangeSetType::Import,
                (true, true) => ChangeSetType::Create,
                (true, false) => ChangeSetType::Update,
            })
            .set_resources_to_import(
                Some(
                    r.imports
                        .iter()
                        .map(|i| {
                            aws_sdk_cloudformation::types::ResourceToImport::builder()
                                .resource_type(&i.resource_type)
                                .logical_resource_id(&i.logical_id)
                                .set_resource_identifier(Some(
                                    i.identifier.clone().into_iter().collect(),
                                ))
                                .build()
                        })
                        .collect(),
                )
                .filter(|v: &Vec<_>| !v.is_empty()),
            )
            .set_template_body(r.template_url.is_none().then(|| r.template_body.clone()))
            .set_template_url(r.template_url.clone())
            .set_parameters(Some(parameters(&r.parameters)))
            .set_tags(Some(tags(&r.tags)))
            .capabilities(Capability::CapabilityNamedIam)
            .set_deployment_config(express_config(r.express))
            .set_deployment_mode(
                r.revert_drift
                    .then_some(aws_sdk_cloudformation::types::DeploymentMode::RevertDrift),
            )
            .send()
            .await
            .map_err(cloud_error)?;
        Ok((
            out.id().unwrap_or(&r.name).to_string(),
            out.stack_id().unwrap_or(&r.stack_name).to_string(),
        ))
    }

    async fn change_set(&self, id: &str) -> Result<ChangeSet, CloudError> {
        let mut pages = self
            .aws
            .cfn
            .describe_change_set()
            .change_set_name(id)
            .into_paginator()
            .send();
        let mut result: Option<ChangeSet> = None;
        while let Some(page) = pages.next().await {
            let out = page.map_err(cloud_error)?;
            let cs = result.get_or_insert_with(|| ChangeSet {
                id: out.change_set_id().unwrap_or(id).to_string(),
                status: out
                    .status()
                    .cloned()
                    .unwrap_or_else(|| ChangeSetStatus::from("UNKNOWN")),
                reason: out.status_reason().map(str::to_string),
                changes: Vec::new(),
            });
            let changes = out.changes().iter().filter_map(|c| c.resource_change());
            cs.changes.extend(changes.map(|rc| {
                Change {
                    action: rc
                        .action()
                        .cloned()
                        .unwrap_or_else(|| ChangeAction::from("UNKNOWN")),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: rc.resource_type().unwrap_or_default().to_string(),
                    replacement: rc.replacement().cloned(),
                }
            }));
        }
        result.ok_or_else(|| {
            CloudError::new("EmptyResponse", format!("no answer for change set {id}"))
        })
    }

    async fn execute_change_set(&self, id: &str, token: &str) -> Result<(), CloudError> {
        self.aws
            .cfn
            .execute_change_set()
            .change_set_name(id)
            .client_request_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError> {
        self.aws
            .cfn
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn delete_stack(&self, name: &str, token: &str, express: bool) -> Result<(), CloudError> {
        self.aws
            .cfn
            .delete_stack()
            .stack_name(name)
            .client_request_token(token)
            .set_deployment_config(express_config(express))
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn cancel_update_stack(&self, name: &str, token: &str) -> Result<(), CloudError> {
        self.aws
            .cfn
            .cancel_update_stack()
            .stack_name(name)
            .client_request_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn continue_update_rollback(&self, name: &str, token: &str) -> Result<(), CloudError> {
        self.aws
            .cfn
            .continue_update_rollback()
            .stack_name(name)
            .client_request_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn set_termination_protection(&self, name: &str, on: bool) -> Result<(), CloudError> {
        self.aws
            .cfn
            .update_termination_protection()
            .stack_name(name)
            .enable_termination_protection(on)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn events(
        &self,
        stack_id: &str,
        since: SystemTime,
    ) -> Result<Vec<StackEvent>, CloudError> {
        // Newest first: the stream stops fetching pages at the first event older than `since`.
        let mut stream = self
            .aws
            .cfn
            .describe_stack_events()
            .stack_name(stack_id)
            .into_paginator()
            .items()
            .send();
        let mut events = Vec::new();
        while let Some(e) = stream.next().await {
            let e = e.map_err(cloud_error)?;
            let timestamp = e
                .timestamp()
                .and_then(system_time)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if timestamp < since {
                break;
            }
            events.push(StackEvent {
                id: e.event_id().unwrap_or_default().to_string(),
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: e.resource_type().unwrap_or_default().to_string(),
                status: e
                    .resource_status()
                    .cloned()
                    .unwrap_or_else(|| ResourceStatus::from("UNKNOWN")),
                reason: e.resource_status_reason().map(str::to_string),
                timestamp,
                token: e.client_request_token().map(str::to_string),
            });
        }
        Ok(events)
    }

    async fn resources(&self, stack_name: &str) -> Result<Vec<Resource>, CloudError> {
        // DescribeStackResources stops at 100 resources; ListStackResources pages through all.
        let summaries: Vec<_> = self
            .aws
            .cfn
            .list_stack_resources()
            .stack_name(stack_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(cloud_error)?;
        Ok(summaries
            .iter()
            .filter_map(|r| {
                Some(Resource {
                    logical_id: r.logical_resource_id()?.to_string(),
                    physical_id: r.physical_resource_id().unwrap_or_default().to_string(),
                    resource_type: r.resource_type().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    async fn detect_stack_drift(&self, stack_name: &str) -> Result<String, CloudError> {
        let out = self
            .aws
            .cfn
            .detect_stack_drift()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out
            .stack_drift_detection_id()
            .unwrap_or_default()
            .to_string())
    }

    async fn drift_detection(&self, detection_id: &str) -> Result<DriftDetection, CloudError> {
        let out = self
            .aws
            .cfn
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(detection_id)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(DriftDetection {
            status: out
                .detection_status()
                .cloned()
                .unwrap_or(StackDriftDetectionStatus::DetectionInProgress),
            drift: out.stack_drift_status().cloned(),
            reason: out.detection_status_reason().map(str::to_string),
        })
    }

    async fn resource_drifts(&self, stack_name: &str) -> Result<Vec<ResourceDrift>, CloudError> {
        let mut pages = self
            .aws
            .cfn
            .describe_stack_resource_drifts()
            .stack_name(stack_name)
            .into_paginator()
            .send();
        let mut drifts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(cloud_error)?;
            for r in page.stack_resource_drifts() {
                let Some(status) = r.stack_resource_drift_status() else {
                    continue;
                };
                drifts.push(ResourceDrift {
                    logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: r.resource_type().unwrap_or_default().to_string(),
                    status: status.clone(),
                    differences: r
                        .property_differences()
                        .iter()
                        .map(|d| PropertyDifference {
                            path: d.property_path().unwrap_or_default().to_string(),
                            expected: d.expected_value().unwrap_or_default().to_string(),
                            actual: d.actual_value().unwrap_or_default().to_string(),
                            kind: d
                                .difference_type()
                                .cloned()
                                .unwrap_or(DifferenceType::NotEqual),
                        })
                        .collect(),
                });
            }
        }
        Ok(drifts)
    }

    async fn deployed_template(&self, stack_name: &str) -> Result<String, CloudError> {
        let out = self
            .aws
            .cfn
            .get_template()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.template_body().unwrap_or_default().to_string())
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, CloudError> {
        Ok(self.read_object(bucket, key).await?.map(|o| o.body))
    }

    async fn update_function_code(
        &self,
        function: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(), CloudError> {
        self.aws
            .lambda
            .update_function_code()
            .function_name(function)
            .s3_bucket(bucket)
            .s3_key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn function_code(&self, function: &str) -> Result<FunctionCode, CloudError> {
        let out = self
            .aws
            .lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(FunctionCode {
            sha256: out.code_sha256().unwrap_or_default().to_string(),
            last_update: out.last_update_status().cloned(),
            reason: out.last_update_status_reason().map(str::to_string),
        })
    }

    async fn object_exists(&self, bucket: &str, key: &str) -> Result<bool, CloudError> {
        match self
            .aws
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(cloud_error(e)),
        }
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        sha256: &[u8; 32],
    ) -> Result<(), CloudError> {
        self.aws
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .content_type(if key.ends_with(".json") {
                "application/json"
            } else {
                "application/zip"
            })
            .checksum_sha256(aws_smithy_types::base64::encode(sha256))
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        // Virtual-hosted style, the form AWS documents for TemplateURL (emulators such as moto
        // read it too: a URL built from a loopback endpoint would not name the bucket the same way).
        let region = self.aws.region();
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{bucket}.s3.{region}.{domain}/{key}")
    }

    async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, CloudError> {
        let mut pages = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(cloud_error)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    async fn read_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, CloudError> {
        match self
            .aws
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                match out.body.collect().await {
                    Ok(body) => Ok(Some(Object {
                        body: body.into_bytes().to_vec(),
                        etag,
                    })),
                    Err(e) => Err(CloudError::unreachable(format!(
                        "reading s3://{bucket}/{key} broke off: {e}"
                    ))),
                }
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(cloud_error(e)),
        }
    }

    async fn put_object_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> Result<bool, CloudError> {
        let request = self
            .aws
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into());
        let request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Matches(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                // 404 NoSuchKey answers `If-Match` on a key deleted meanwhile: also not written.
                match (status, e.code()) {
                    (Some(412 | 409 | 404), _)
                    | (_, Some("PreconditionFailed" | "ConditionalRequestConflict")) => Ok(false),
                    _ => Err(cloud_error(e)),
                }
            }
        }
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), CloudError> {
        self.aws
            .s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(cloud_error)
    }

    async fn table_state(&self, table: &str) -> Result<TableState, CloudError> {
        let out = self
            .aws
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(cloud_error)?;
        let Some(t) = out.table() else {
            return Ok(TableState::default());
        };
        Ok(TableState {
            status: t.table_status().cloned(),
            item_count: t.item_count(),
            indexes: t
                .global_secondary_indexes()
                .iter()
                .map(|i| IndexState {
                    name: i.index_name().unwrap_or_default().to_string(),
                    status: i.index_status().cloned(),
                    backfilling: i.backfilling().unwrap_or(false),
                    item_count: i.item_count(),
                })
                .collect(),
        })
    }

    async fn table_names(&self, prefix: &str) -> Result<Vec<String>, CloudError> {
        let mut pages = self.aws.dynamodb.list_tables().into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(cloud_error)?;
            names.extend(
                page.table_names()
                    .iter()
                    .filter(|n| n.starts_with(prefix))
                    .cloned(),
            );
        }
        Ok(names)
    }

    async fn table_summary(&self, name: &str) -> Result<TableSummary, CloudError> {
        let out = self
            .aws
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(cloud_error)?;
        let Some(t) = out.table() else {
            return Ok(TableSummary {
                name: name.to_string(),
                ..TableSummary::default()
            });
        };
        let types: BTreeMap<&str, &str> = t
            .attribute_definitions()
            .iter()
            .map(|d| (d.attribute_name(), d.attribute_type().as_str()))
            .collect();
        let mut key: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| {
                let attr = k.attribute_name();
                let kind = types.get(attr).copied().unwrap_or_default();
                (attr.to_string(), kind.to_string())
            })
            .collect();
        // The partition key first, whatever order DynamoDB lists them in.
        key.sort_by_key(|(attr, _)| {
            t.key_schema()
                .iter()
                .find(|k| k.attribute_name() == attr)
                .is_some_and(|k| k.key_type() == &aws_sdk_dynamodb::types::KeyType::Range)
        });
        let mut tags = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .aws
                .dynamodb
                .list_tags_of_resource()
                .resource_arn(t.table_arn().unwrap_or_default())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(cloud_error)?;
            for tag in page.tags() {
                tags.insert(tag.key().to_string(), tag.value().to_string());
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(TableSummary {
            name: name.to_string(),
            tags,
            key,
            size_bytes: t.table_size_bytes(),
            item_count: t.item_count(),
        })
    }

    async fn time_to_live(&self, table: &str) -> Result<Option<TimeToLiveStatus>, CloudError> {
        let out = self
            .aws
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .cloned())
    }

    async fn caller_arn(&self) -> Result<String, CloudError> {
        let out = self
            .aws
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.arn().unwrap_or_default().to_string())
    }

    fn region(&self) -> String {
        self.aws.region()
    }

    async fn role_arn(&self, name: &str) -> Result<String, CloudError> {
        let params = [("RoleName".to_string(), name.to_string())];
        let xml = self
            .aws
            .query
            .call(query::Service::Iam, "GetRole", &params)
            .await?;
        query::first_text(&xml, "Arn")
            .ok_or_else(|| CloudError::new("InvalidResponse", "GetRole answered without an Arn"))
    }

    async fn simulate(
        &self,
        principal: &str,
        probe: &Probe,
    ) -> Result<Vec<Evaluation>, CloudError> {
        let mut results = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut params = vec![
                ("PolicySourceArn".to_string(), principal.to_string()),
                ("ResourceArns.member.1".to_string(), probe.resource.clone()),
            ];
            for (i, action) in probe.actions.iter().enumerate() {
                params.push((format!("ActionNames.member.{}", i + 1), action.clone()));
            }
            for (i, entry) in probe.context.iter().enumerate() {
                let at = format!("ContextEntries.member.{}", i + 1);
                params.push((format!("{at}.ContextKeyName"), entry.key.clone()));
                params.push((format!("{at}.ContextKeyType"), entry.kind.as_str().into()));
                for (j, value) in entry.values.iter().enumerate() {
                    params.push((
                        format!("{at}.ContextKeyValues.member.{}", j + 1),
                        value.clone(),
                    ));
                }
            }
            if let Some(marker) = &marker {
                params.push(("Marker".into(), marker.clone()));
            }
            let xml = self
                .aws
                .query
                .call(query::Service::Iam, "SimulatePrincipalPolicy", &params)
                .await?;
            results.extend(evaluations(&xml));
            marker = query::first_text(&xml, "Marker");
            if query::first_text(&xml, "IsTruncated").as_deref() != Some("true") || marker.is_none()
            {
                return Ok(results);
            }
        }
    }

    async fn availability_zones(&self) -> Result<Vec<String>, CloudError> {
        let params = [
            ("Filter.1.Name", "state"),
            ("Filter.1.Value.1", "available"),
            ("Filter.2.Name", "zone-type"),
            ("Filter.2.Value.1", "availability-zone"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let xml = self
            .aws
            .query
            .call(query::Service::Ec2, "DescribeAvailabilityZones", &params)
            .await?;
        let mut zones: Vec<String> = query::list_items(&xml, "availabilityZoneInfo", &["zoneName"])
            .into_iter()
            .filter_map(|z| z.get("zoneName").cloned())
            .collect();
        zones.sort();
        Ok(zones)
    }

    async fn subnet_zones(&self, subnet_ids: &[String]) -> Result<Vec<String>, CloudError> {
        let params: Vec<(String, String)> = subnet_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("SubnetId.{}", i + 1), id.clone()))
            .collect();
        let xml = self
            .aws
            .query
            .call(query::Service::Ec2, "DescribeSubnets", &params)
            .await?;
        let subnets = query::list_items(&xml, "subnetSet", &["subnetId", "availabilityZone"]);
        subnet_ids
            .iter()
            .map(|id| {
                subnets
                    .iter()
                    .find(|s| s.get("subnetId") == Some(id))
                    .and_then(|s| s.get("availabilityZone").cloned())
                    .ok_or_else(|| {
                        CloudError::new("NotFound", format!("subnet {id} was not found"))
                    })
            })
            .collect()
    }

    async fn load_balancer_dns(&self, arn: &str) -> Result<Option<String>, CloudError> {
        let out = self
            .aws
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out
            .load_balancers()
            .first()
            .and_then(|lb| lb.dns_name())
            .map(str::to_string))
    }

    async fn forward(
        &self,
        forwarder: &crate::converge::model::Forwarder,
        groups: &[(String, u32)],
    ) -> Result<(), CloudError> {
        use crate::converge::model::Forwarder;
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
        };
        let tuples = groups
            .iter()
            .map(|(arn, weight)| {
                TargetGroupTuple::builder()
                    .target_group_arn(arn)
                    .weight(i32::try_from(*weight).unwrap_or(i32::MAX))
                    .build()
            })
            .collect();
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .set_target_groups(Some(tuples))
                    .build(),
            )
            .build();
        match forwarder {
            Forwarder::Rule(arn) => self
                .aws
                .elb
                .modify_rule()
                .rule_arn(arn)
                .actions(action)
                .send()
                .await
                .map(|_| ())
                .map_err(cloud_error),
            Forwarder::Listener(arn) => self
                .aws
                .elb
                .modify_listener()
                .listener_arn(arn)
                .default_actions(action)
                .send()
                .await
                .map(|_| ())
                .map_err(cloud_error),
        }
    }

    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<crate::converge::model::AlarmState>, CloudError> {
        let mut states = Vec::new();
        // DescribeAlarms takes at most 100 names a call, and answers only metric alarms unless
        // `AlarmTypes` names composite ones too.
        for chunk in names.chunks(100) {
            let params: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, name)| (format!("AlarmNames.member.{}", i + 1), name.clone()))
                .chain([
                    ("AlarmTypes.member.1".to_string(), "MetricAlarm".to_string()),
                    (
                        "AlarmTypes.member.2".to_string(),
                        "CompositeAlarm".to_string(),
                    ),
                    ("MaxRecords".to_string(), "100".to_string()),
                ])
                .collect();
            let xml = self
                .aws
                .query
                .call(query::Service::CloudWatch, "DescribeAlarms", &params)
                .await?;
            states.extend(alarm_states_of(&xml));
        }
        Ok(states)
    }
}

/// The alarms of a DescribeAlarms answer, metric and composite, with their states.
fn alarm_states_of(xml: &str) -> Vec<crate::converge::model::AlarmState> {
    use crate::converge::model::{AlarmState, AlarmStatus};
    let fields = ["AlarmName", "StateValue", "StateReason"];
    ["MetricAlarms", "CompositeAlarms"]
        .iter()
        .flat_map(|list| query::list_items(xml, list, &fields))
        .filter_map(|alarm| {
            Some(AlarmState {
                name: alarm.get("AlarmName")?.clone(),
                status: AlarmStatus::parse(alarm.get("StateValue")?)?,
                reason: alarm.get("StateReason").cloned().unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_alarms_answers_metric_and_composite_alarms() {
        use crate::converge::model::AlarmStatus;
        // The shape the CloudWatch API Reference documents for DescribeAlarms.
        let xml = r#"<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <DescribeAlarmsResult>
    <CompositeAlarms>
      <member><AlarmName>notes-health</AlarmName><AlarmRule>ALARM(a)</AlarmRule><StateValue>ALARM</StateValue><StateReason>a is ALARM</StateReason></member>
    </CompositeAlarms>
    <MetricAlarms>
      <member><AlarmName>notes-p99</AlarmName><StateValue>OK</StateValue><StateReason>fine</StateReason><Dimensions><member><Name>F</Name><Value>v</Value></member></Dimensions></member>
      <member><AlarmName>odd</AlarmName><StateValue>SOMETHING_NEW</StateValue></member>
    </MetricAlarms>
  </DescribeAlarmsResult>
</DescribeAlarmsResponse>"#;
        let states: Vec<(String, AlarmStatus, String)> = alarm_states_of(xml)
            .into_iter()
            .map(|a| (a.name, a.status, a.reason))
            .collect();
        assert_eq!(
            states,
            [
                ("notes-p99".into(), AlarmStatus::Ok, "fine".into()),
                (
                    "notes-health".into(),
                    AlarmStatus::Alarm,
                    "a is ALARM".into()
                ),
            ]
        );
    }

    /// A SimulatePrincipalPolicy answer in the shape the IAM API Reference documents
    /// (EvaluationResults of members with nested MatchedStatements and MissingContextValues
    /// lists, IsTruncated and Marker), one page of two.
    const FIRST_PAGE: &str = r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>true</IsTruncated>
    <Marker>page-2</Marker>
    <EvaluationResults>
      <member>
        <EvalActionName>lambda:UpdateFunctionCode</EvalActionName>
        <EvalResourceName>arn:aws:lambda:eu-west-1:123456789012:function:notes-dev-api</EvalResourceName>
        <EvalDecision>allowed</EvalDecision>
        <MatchedStatements>
          <member><SourcePolicyId>ci</SourcePolicyId><SourcePolicyType>IAM Policy</SourcePolicyType></member>
        </MatchedStatements>
        <MissingContextValues/>
      </member>
      <member>
        <EvalActionName>iam:PassRole</EvalActionName>
        <EvalResourceName>arn:aws:iam::123456789012:role/notes-dev-ApiRole-1A2B3C4D5E6F</EvalResourceName>
        <EvalDecision>implicitDeny</EvalDecision>
        <MatchedStatements/>
        <MissingContextValues>
          <member>iam:PassedToService</member>
          <member>aws:ResourceTag/app</member>
        </MissingContextValues>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#;

    #[test]
    fn a_simulation_page_is_read_with_its_missing_context_and_its_marker() {
        let got = evaluations(FIRST_PAGE);
        assert_eq!(
            got,
            [
                Evaluation {
                    action: "lambda:UpdateFunctionCode".into(),
                    decision: Decision::Allowed,
                    missing_context: vec![],
                },
                Evaluation {
                    action: "iam:PassRole".into(),
                    decision: Decision::ImplicitDeny,
                    missing_context: vec![
                        "iam:PassedToService".into(),
                        "aws:ResourceTag/app".into()
                    ],
                },
            ]
        );
        // The matched statements' nested members are not taken for results.
        assert_eq!(got.len(), 2);
        assert_eq!(
            query::first_text(FIRST_PAGE, "IsTruncated").as_deref(),
            Some("true")
        );
        assert_eq!(
            query::first_text(FIRST_PAGE, "Marker").as_deref(),
            Some("page-2")
        );
        let last = FIRST_PAGE
            .replace(
                "<IsTruncated>true</IsTruncated>",
                "<IsTruncated>false</IsTruncated>",
            )
            .replace("<Marker>page-2</Marker>", "")
            .replace("implicitDeny", "explicitDeny");
        assert_eq!(evaluations(&last)[1].decision, Decision::ExplicitDeny);
        assert_eq!(query::first_text(&last, "Marker"), None);
    }

    #[test]
    fn a_simulation_error_has_no_results_and_its_code() {
        let denied = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/ci/run is not authorized to perform: iam:SimulatePrincipalPolicy</Message></Error><RequestId>r2</RequestId></ErrorResponse>"#;
        assert!(evaluations(denied).is_empty());
        assert_eq!(
            query::first_text(denied, "Code").as_deref(),
            Some("AccessDenied")
        );
    }
}
