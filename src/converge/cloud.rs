//! The narrow interface the engine needs from CloudFormation and S3, so that the same engine
//! runs against AWS, moto and a scripted fake.
#![allow(async_fn_in_trait)] // the engine runs on one task; no Send bound is needed

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::model::{
    ChangeSet, FunctionCode, Resource, ResourceToImport, Stack, StackEvent, TableState,
    TableSummary, TimeToLiveStatus,
};

/// An error from the cloud, reduced to what the engine decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError {
    /// The AWS error code (`ValidationError`, `AccessDenied`, ...), when there is one.
    pub code: Option<String>,
    /// The message to show.
    pub message: String,
    /// No answer came back (connection refused, DNS, timeouts): the network, the endpoint or
    /// the region is wrong.
    pub unreachable: bool,
}

impl CloudError {
    /// An error with a code.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        CloudError {
            code: Some(code.to_string()),
            message: message.into(),
            unreachable: false,
        }
    }

    /// An error without an answer from AWS.
    pub fn unreachable(message: impl Into<String>) -> Self {
        CloudError {
            code: None,
            message: message.into(),
            unreachable: true,
        }
    }

    /// UpdateStack's answer when the update would change nothing.
    pub fn is_no_updates(&self) -> bool {
        super::model::says_no_updates(&self.message)
    }

    /// The exit code this error ends a command with.
    pub fn exit_code(&self) -> crate::exit::Code {
        use crate::exit::Code;
        match self.code.as_deref() {
            _ if self.unreachable => Code::Unreachable,
            Some(
                "ExpiredToken"
                | "ExpiredTokenException"
                | "RequestExpired"
                | "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "SignatureDoesNotMatch",
            ) => Code::Credentials,
            Some(
                "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "AuthorizationError",
            ) => Code::Denied,
            _ => Code::Failed,
        }
    }
}

impl std::fmt::Display for CloudError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CloudError {}

/// What a CREATE or UPDATE change set is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetRequest {
    /// The stack.
    pub stack_name: String,
    /// A name unique to this operation.
    pub name: String,
    /// `true`: CREATE; `false`: UPDATE.
    pub create: bool,
    /// The template body.
    pub template_body: String,
    /// Where the same template was uploaded when it is too large to send inline: sent instead.
    pub template_url: Option<String>,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags (the digest only where there is no bucket to record it in).
    pub tags: BTreeMap<String, String>,
    /// Resources to import: when there are any, an IMPORT change set (into the stack, created
    /// by it when `create`), whose template holds only them.
    pub imports: Vec<ResourceToImport>,
    /// Run it in express mode (`DeploymentConfig { Mode: EXPRESS }`, see [`super::express`]).
    pub express: bool,
    /// A drift-aware change set (`DeploymentMode: REVERT_DRIFT`).
    pub revert_drift: bool,
}

/// A plain CreateStack/UpdateStack: deployer's own bootstrap stack, and an app stack's first
/// create when nobody reviews it (a change set would only add requests and seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRequest {
    /// The stack.
    pub stack_name: String,
    /// `true`: create; `false`: update.
    pub create: bool,
    /// The template body; `None`: the deployed template (an update of tags or parameters only).
    pub template_body: Option<String>,
    /// Where the same template was uploaded when it is too large to send inline: sent instead.
    pub template_url: Option<String>,
    /// Termination protection, for a create (an update leaves it as it is).
    pub termination_protection: bool,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags, digest included.
    pub tags: BTreeMap<String, String>,
    /// Idempotency token of the operation.
    pub token: String,
    /// Run it in express mode (`DeploymentConfig { Mode: EXPRESS }`, see [`super::express`]).
    pub express: bool,
}

/// An S3 object's body and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The body.
    pub body: Vec<u8>,
    /// Its ETag, for an `If-Match` write.
    pub etag: String,
}

/// When a conditional PutObject writes (S3 User Guide, "Add preconditions to S3 operations with
/// conditional requests").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `If-None-Match: *`: only if there is no such key yet.
    Absent,
    /// `If-Match: <etag>`: only if the object is still the one read.
    Matches(String),
}

/// CloudFormation and S3, as far as deployer uses them.
pub trait Cloud {
    /// DescribeStacks for one stack; `None` when it does not exist.
    async fn stack(&self, name: &str) -> Result<Option<Stack>, CloudError>;
    /// DescribeStacks for every stack of the account and region (all pages).
    async fn list_stacks(&self) -> Result<Vec<Stack>, CloudError>;
    /// CreateStack or UpdateStack; returns the stack ARN.
    async fn put_stack(&self, request: &StackRequest) -> Result<String, CloudError>;
    /// CreateChangeSet; returns the change set ARN and the stack ARN.
    async fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> Result<(String, String), CloudError>;
    /// DescribeChangeSet, all pages of changes.
    async fn change_set(&self, id: &str) -> Result<ChangeSet, CloudError>;
    /// ExecuteChangeSet with an idempotency token.
    async fn execute_change_set(&self, id: &str, token: &str) -> Result<(), CloudError>;
    /// DeleteChangeSet.
    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError>;
    /// DeleteStack with an idempotency token (`express`: in express mode, which does not wait
    /// for each deletion to finish).
    async fn delete_stack(&self, name: &str, token: &str, express: bool) -> Result<(), CloudError>;
    /// CancelUpdateStack with an idempotency token.
    async fn cancel_update_stack(&self, name: &str, token: &str) -> Result<(), CloudError>;
    /// ContinueUpdateRollback with an idempotency token.
    async fn continue_update_rollback(&self, name: &str, token: &str) -> Result<(), CloudError>;
    /// UpdateTerminationProtection.
    async fn set_termination_protection(&self, name: &str, on: bool) -> Result<(), CloudError>;
    /// DescribeStackEvents, newest first, only events at or after `since`:
    /// paging stops at the first older event.
    async fn events(
        &self,
        stack_id: &str,
        since: SystemTime,
    ) -> Result<Vec<StackEvent>, CloudError>;
    /// DetectStackDrift: starts a drift detection of the stack; its id.
    async fn detect_stack_drift(&self, stack_name: &str) -> Result<String, CloudError>;
    /// DescribeStackDriftDetectionStatus.
    async fn drift_detection(
        &self,
        detection_id: &str,
    ) -> Result<super::model::DriftDetection, CloudError>;
    /// DescribeStackResourceDrifts (all pages): each resource as the last detection found it.
    async fn resource_drifts(
        &self,
        stack_name: &str,
    ) -> Result<Vec<super::model::ResourceDrift>, CloudError>;
    /// ListStackResources, all pages.
    async fn resources(&self, stack_name: &str) -> Result<Vec<Resource>, CloudError>;
    /// GetTemplate of the deployed stack (JSON or YAML text as stored).
    async fn deployed_template(&self, stack_name: &str) -> Result<String, CloudError>;
    /// GetObject; `None` when there is no such key.
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, CloudError>;
    /// HeadObject: whether the key exists.
    async fn object_exists(&self, bucket: &str, key: &str) -> Result<bool, CloudError>;
    /// PutObject with a SHA-256 checksum S3 verifies.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        sha256: &[u8; 32],
    ) -> Result<(), CloudError>;
    /// ListObjectsV2 (all pages): the keys under `prefix`.
    async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, CloudError>;
    /// GetObject with its ETag; `None` when there is no such key.
    async fn read_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, CloudError>;
    /// PutObject only if `condition` holds (`If-None-Match: *` or `If-Match: <etag>`): `false`
    /// when S3 refused because it did not (412 PreconditionFailed, or 409
    /// ConditionalRequestConflict from a concurrent conditional write).
    async fn put_object_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> Result<bool, CloudError>;
    /// The URL CloudFormation reads an object of the bucket from (`TemplateURL`).
    fn object_url(&self, bucket: &str, key: &str) -> String;
    /// DeleteObject.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), CloudError>;
    /// The DNS name of a load balancer, by ARN (for stacks whose backend returns no Outputs).
    async fn load_balancer_dns(&self, arn: &str) -> Result<Option<String>, CloudError>;
    /// UpdateFunctionCode from an S3 object. Lambda answers at once and updates on its own
    /// (`LastUpdateStatus` `InProgress`); `ResourceConflictException` while an update still runs.
    async fn update_function_code(
        &self,
        function: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(), CloudError>;
    /// GetFunctionConfiguration: the code's hash and the last update's state.
    async fn function_code(&self, function: &str) -> Result<FunctionCode, CloudError>;
    /// DescribeTable: the table's and its indexes' status.
    async fn table_state(&self, table: &str) -> Result<TableState, CloudError>;
    /// ListTables (all pages): the region's tables whose names start with `prefix`.
    async fn table_names(&self, prefix: &str) -> Result<Vec<String>, CloudError>;
    /// DescribeTable and ListTagsOfResource: a table's key, size and tags.
    async fn table_summary(&self, name: &str) -> Result<TableSummary, CloudError>;
    /// DescribeTimeToLive: where the table's TTL stands (`DISABLING` for about an hour after
    /// it was disabled, when it cannot be enabled again).
    async fn time_to_live(&self, table: &str) -> Result<Option<TimeToLiveStatus>, CloudError>;
    /// GetCallerIdentity: the ARN of whoever the credentials belong to.
    async fn caller_arn(&self) -> Result<String, CloudError>;
    /// The region the stack is in.
    fn region(&self) -> String;
    /// GetRole: the ARN of the role `name`, with its path.
    async fn role_arn(&self, name: &str) -> Result<String, CloudError>;
    /// SimulatePrincipalPolicy (all pages): what IAM decides for `principal` on each of the
    /// probe's actions, against its resource, with its context keys.
    async fn simulate(
        &self,
        principal: &str,
        probe: &super::model::Probe,
    ) -> Result<Vec<super::model::Evaluation>, CloudError>;
    /// DescribeAvailabilityZones: the region's available zones of type `availability-zone`
    /// (no Local or Wavelength Zones), by name.
    async fn availability_zones(&self) -> Result<Vec<String>, CloudError>;
    /// DescribeSubnets: the zone of each subnet, in the order given.
    async fn subnet_zones(&self, subnet_ids: &[String]) -> Result<Vec<String>, CloudError>;
    /// ModifyRule or ModifyListener: `forwarder` forwards to these target groups (ARN, weight).
    async fn forward(
        &self,
        forwarder: &super::model::Forwarder,
        groups: &[(String, u32)],
    ) -> Result<(), CloudError>;
    /// DescribeAlarms: the state of each alarm of these names that exists.
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<super::model::AlarmState>, CloudError>;
}

/// Whether CloudFormation refused a create or update because another operation got there
/// first: the stack was created meanwhile (`AlreadyExistsException`), or an operation is
/// running on it ("... is in UPDATE_IN_PROGRESS state and can not be updated").
pub fn is_busy_elsewhere(e: &super::cloud::CloudError) -> bool {
    e.code.as_deref() == Some("AlreadyExistsException")
        || (e.code.as_deref() == Some("ValidationError")
            && e.message.contains("_IN_PROGRESS state"))
}
