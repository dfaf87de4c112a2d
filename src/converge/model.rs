//! What the engine knows about stacks, change sets and events, independent of the SDK's shapes,
//! and the pure functions over them: the digest, the root cause, the change summary.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use aws_sdk_cloudformation::types::{
    ChangeAction, ChangeSetStatus, DifferenceType, Replacement, ResourceStatus,
    StackDriftDetectionStatus, StackDriftStatus, StackResourceDriftStatus, StackStatus,
};
pub use aws_sdk_dynamodb::types::{IndexStatus, TableStatus, TimeToLiveStatus};
pub use aws_sdk_lambda::types::LastUpdateStatus;
use sha2::{Digest, Sha256};

/// Stack tag holding the digest of what was last deployed.
pub const DIGEST_TAG: &str = "deployer:digest";
/// Tag marking a stack as ephemeral (`true`).
pub const EPHEMERAL_TAG: &str = "deployer:ephemeral";
/// Tag holding the RFC 3339 time after which `gc` deletes the stack.
pub const EXPIRES_TAG: &str = "deployer:expires-at";
/// Tag holding the TTL, so that a later `up` without `--ttl` extends by the same amount.
pub const TTL_TAG: &str = "deployer:ttl";

/// Tags that change on every `up` of an ephemeral env; the digest ignores them so an unchanged
/// env is still a no-op (the expiry is extended separately when it needs to be).
pub const VOLATILE_TAGS: &[&str] = &[EXPIRES_TAG];

/// Stack tag naming the app (on tables too).
pub const APP_TAG: &str = crate::render::APP_TAG;
/// Stack tag naming the environment (on tables too).
pub const ENV_TAG: &str = crate::render::ENV_TAG;
/// Stack tag of an env attached to its app's shared load balancer: `<shared stack>/<slot>`;
/// on the shared stack, its own name (see `shared_alb`). `down`, `gc` and `ls` read it.
pub const SHARED_TAG: &str = "deployer:shared-alb";

/// A Lambda function's code and the state of its last update, as GetFunctionConfiguration
/// shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCode {
    /// The code's SHA-256, base64 as Lambda reports it.
    pub sha256: String,
    /// The last update's state; `None` before any update.
    pub last_update: Option<LastUpdateStatus>,
    /// Why the last update failed, when it did.
    pub reason: Option<String>,
}

/// One property of a drifted resource: what the template says and what the resource has
/// (DescribeStackResourceDrifts' `PropertyDifferences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDifference {
    /// The property's JSON pointer, e.g. `/MemorySize`.
    pub path: String,
    /// The template's value (JSON text; empty when the property was added out of band).
    pub expected: String,
    /// The resource's value (JSON text; empty when it was removed).
    pub actual: String,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub kind: DifferenceType,
}

/// A resource whose configuration is not what the template says, as the last drift detection
/// found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDrift {
    /// Its logical id.
    pub logical_id: String,
    /// Its type.
    pub resource_type: String,
    /// `MODIFIED`, `DELETED`, `NOT_CHECKED` (a type or property detection cannot read), ...
    pub status: StackResourceDriftStatus,
    /// What differs (for `MODIFIED`).
    pub differences: Vec<PropertyDifference>,
}

/// Where a drift detection stands (DescribeStackDriftDetectionStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftDetection {
    /// `DETECTION_IN_PROGRESS`, `DETECTION_COMPLETE` or `DETECTION_FAILED`.
    pub status: StackDriftDetectionStatus,
    /// The stack's drift once known: `DRIFTED`, `IN_SYNC`, ...
    pub drift: Option<StackDriftStatus>,
    /// Why the detection failed (some resources could not be checked).
    pub reason: Option<String>,
}

/// A table and its global secondary indexes as DescribeTable shows them: what an index step
/// waits on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableState {
    /// The table's status; `None` when DynamoDB did not say.
    pub status: Option<TableStatus>,
    /// The table's items (DynamoDB updates it about every six hours).
    pub item_count: Option<i64>,
    /// Its global secondary indexes.
    pub indexes: Vec<IndexState>,
}

/// One global secondary index of a [`TableState`].
#[derive(Debug, Clone, PartialEq)]
pub struct IndexState {
    /// The index name.
    pub name: String,
    /// `CREATING`, `UPDATING`, `DELETING` or `ACTIVE`.
    pub status: Option<IndexStatus>,
    /// Whether it is still being filled from the table's items.
    pub backfilling: bool,
    /// The items in it so far.
    pub item_count: Option<i64>,
}

/// A DynamoDB table as `up` and `ls --retained` look for the ones a deleted stack retained:
/// DescribeTable and ListTagsOfResource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSummary {
    /// The table's name.
    pub name: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its primary key: (attribute, type `S`/`N`/`B`), partition key first.
    pub key: Vec<(String, String)>,
    /// Bytes stored (DynamoDB updates it about every six hours).
    pub size_bytes: Option<i64>,
    /// Items (likewise).
    pub item_count: Option<i64>,
}

/// A resource an IMPORT change set brings into a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceToImport {
    /// Its type, e.g. `AWS::DynamoDB::Table`.
    pub resource_type: String,
    /// Its logical id in the template.
    pub logical_id: String,
    /// The properties that identify it (`TableName` for a table).
    pub identifier: BTreeMap<String, String>,
}

/// What forwards a function's requests: a listener rule, or a listener's default action (by ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarder {
    /// A listener rule (ModifyRule).
    Rule(String),
    /// A listener's default action (ModifyListener).
    Listener(String),
}

/// Where a shift is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftPhase {
    /// Traffic just moved to a step.
    Moved,
    /// A step is held; the alarms are fine so far.
    Holding,
    /// Every request goes to the new version.
    Finished,
    /// Every request went back to the old version.
    RolledBack,
}

/// A shift as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftState {
    /// The stack.
    pub stack: String,
    /// The function's name in the spec.
    pub function: String,
    /// The version serving the rest.
    pub from: String,
    /// The new version.
    pub to: String,
    /// Percent of requests on the new version.
    pub percent: u32,
    /// Until the shift ends if no alarm fires.
    pub left: Duration,
    /// Where it is.
    pub phase: ShiftPhase,
    /// The alarm that fired, when one did.
    pub alarm: Option<AlarmState>,
}

/// A CloudWatch alarm's state (DescribeAlarms' `StateValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmStatus {
    /// `OK`.
    Ok,
    /// `ALARM`.
    Alarm,
    /// `INSUFFICIENT_DATA`.
    InsufficientData,
}

impl AlarmStatus {
    /// From CloudWatch's spelling; `None` for a value it does not document.
    pub fn parse(value: &str) -> Option<AlarmStatus> {
        match value {
            "OK" => Some(AlarmStatus::Ok),
            "ALARM" => Some(AlarmStatus::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmStatus::InsufficientData),
            _ => None,
        }
    }

    /// As CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmStatus::Ok => "OK",
            AlarmStatus::Alarm => "ALARM",
            AlarmStatus::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One alarm as DescribeAlarms answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    /// Its name.
    pub name: String,
    /// Its state.
    pub status: AlarmStatus,
    /// CloudWatch's reason for the state.
    pub reason: String,
}

/// What a table waits for before it can be updated again: none when it and every index are
/// ACTIVE.
#[derive(Debug, Clone, PartialEq)]
pub enum TableBusy {
    /// The table itself is not ACTIVE.
    Table(TableStatus),
    /// An index is not ACTIVE; `percent`: how far its backfill is, where the counts say.
    Index {
        /// The index name.
        name: String,
        /// Its status.
        status: IndexStatus,
        /// Items in the index against items in the table, while it backfills.
        percent: Option<u8>,
    },
}

impl TableState {
    /// What the table waits for, if anything (the table first, then its indexes in order).
    pub fn busy(&self) -> Option<TableBusy> {
        if let Some(status) = &self.status
            && *status != TableStatus::Active
        {
            return Some(TableBusy::Table(status.clone()));
        }
        self.indexes.iter().find_map(|index| {
            let status = index.status.clone()?;
            if status == IndexStatus::Active {
                return None;
            }
            let percent = match (index.item_count, self.item_count) {
                (Some(done), Some(all)) if status == IndexStatus::Creating && all > 0 => {
                    Some((done.clamp(0, all) * 100 / all) as u8)
                }
                _ => None,
            };
            Some(TableBusy::Index {
                name: index.name.clone(),
                status,
                percent,
            })
        })
    }
}

/// Every resource of `template` as one change with `action`, in template order: what creating
/// it adds (as a CREATE change set lists it), or what deleting it removes. Resources under a
/// `Condition` are left out: whether they exist depends on parameter values that only
/// CloudFormation evaluates.
pub fn resource_changes(template: &serde_json::Value, action: ChangeAction) -> Vec<Change> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.get("Condition").is_none())
        .map(|(id, r)| Change {
            action: action.clone(),
            logical_id: id.clone(),
            resource_type: r["Type"].as_str().unwrap_or_default().to_string(),
            replacement: None,
        })
        .collect()
}

/// A stack as DescribeStacks shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The stack ARN.
    pub id: String,
    /// The stack name.
    pub name: String,
    /// Its status.
    pub status: StackStatus,
    /// Why it is in that status, when CloudFormation says.
    pub reason: Option<String>,
    /// Outputs by key, in the order CloudFormation lists them.
    pub outputs: Vec<(String, String)>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Whether termination protection is on.
    pub termination_protection: bool,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Creation time.
    pub created: Option<SystemTime>,
    /// Last update time.
    pub updated: Option<SystemTime>,
    /// The stack's drift as its last detection found it (`DRIFTED`, `IN_SYNC`; `NOT_CHECKED`
    /// or none before any).
    pub drift: Option<StackDriftStatus>,
}

impl Stack {
    /// A stack just created, known only by its ARN and name until the first poll describes it.
    pub fn being_created(id: &str, name: &str) -> Stack {
        Stack {
            id: id.to_string(),
            name: name.to_string(),
            status: StackStatus::CreateInProgress,
            reason: None,
            outputs: Vec::new(),
            tags: BTreeMap::new(),
            termination_protection: false,
            parameters: BTreeMap::new(),
            created: None,
            updated: None,
            drift: None,
        }
    }

    /// An output's value.
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One resource of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Logical id in the template.
    pub logical_id: String,
    /// Physical id (name or ARN) in AWS.
    pub physical_id: String,
    /// CloudFormation resource type.
    pub resource_type: String,
}

/// One stack event.
#[derive(Debug, Clone, PartialEq)]
pub struct StackEvent {
    /// Unique id of the event.
    pub id: String,
    /// The resource's logical id (the stack's own name for stack-level events).
    pub logical_id: String,
    /// The resource type.
    pub resource_type: String,
    /// The resource status. A stack-level event can carry a stack-only status (e.g.
    /// `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`), which the SDK keeps as an unknown variant.
    pub status: ResourceStatus,
    /// CloudFormation's reason, when given.
    pub reason: Option<String>,
    /// When it happened.
    pub timestamp: SystemTime,
    /// The operation's client request token, when the backend records it.
    pub token: Option<String>,
}

/// What a change set would do to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Add, Modify, Remove, Import, ...
    pub action: ChangeAction,
    /// Logical id.
    pub logical_id: String,
    /// Resource type.
    pub resource_type: String,
    /// For modifications: whether the resource is replaced (`None` where the backend does not say).
    pub replacement: Option<Replacement>,
}

impl Change {
    /// The one-character marker: `+` add, `~` modify, `-` remove, `!` replace.
    pub fn marker(&self) -> char {
        match (&self.action, &self.replacement) {
            (ChangeAction::Modify, Some(Replacement::True | Replacement::Conditional)) => '!',
            (ChangeAction::Add | ChangeAction::Import, _) => '+',
            (ChangeAction::Remove, _) => '-',
            _ => '~',
        }
    }

    /// Whether the resource may be replaced (`True` or `Conditional`).
    pub fn may_replace(&self) -> bool {
        self.action == ChangeAction::Modify
            && matches!(
                self.replacement,
                Some(Replacement::True | Replacement::Conditional)
            )
    }
}

/// Where a resource's status puts it: what every status check outside this module asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Still running (`*_IN_PROGRESS`).
    InProgress,
    /// Done (`*_COMPLETE`, `DELETE_SKIPPED`).
    Complete,
    /// Failed (`*_FAILED`).
    Failed,
}

/// The phase of a resource (or stack-level) status.
pub fn phase(status: &ResourceStatus) -> Phase {
    use ResourceStatus as R;
    match status {
        R::CreateFailed
        | R::DeleteFailed
        | R::ExportFailed
        | R::ExportRollbackFailed
        | R::ImportFailed
        | R::ImportRollbackFailed
        | R::RollbackFailed
        | R::UpdateFailed
        | R::UpdateRollbackFailed => Phase::Failed,
        R::CreateComplete
        | R::DeleteComplete
        | R::DeleteSkipped
        | R::ExportComplete
        | R::ExportRollbackComplete
        | R::ImportComplete
        | R::ImportRollbackComplete
        | R::RollbackComplete
        | R::UpdateComplete
        | R::UpdateRollbackComplete => Phase::Complete,
        R::CreateInProgress
        | R::DeleteInProgress
        | R::ExportInProgress
        | R::ExportRollbackInProgress
        | R::ImportInProgress
        | R::ImportRollbackInProgress
        | R::RollbackInProgress
        | R::UpdateInProgress
        | R::UpdateRollbackInProgress => Phase::InProgress,
        // Stack-only statuses on stack-level events, and statuses newer than this SDK: the
        // suffix is CloudFormation's naming rule for every status.
        other => match other.as_str() {
            s if s.ends_with("_FAILED") => Phase::Failed,
            s if s.ends_with("_COMPLETE") || s.ends_with("_SKIPPED") => Phase::Complete,
            _ => Phase::InProgress,
        },
    }
}

/// A change set's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The change set ARN.
    pub id: String,
    /// Its status.
    pub status: ChangeSetStatus,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Every change, across all pages.
    pub changes: Vec<Change>,
}

impl ChangeSet {
    /// Whether CloudFormation is still computing it.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status,
            ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress
        )
    }

    /// "No changes" in any of the forms CloudFormation uses.
    pub fn has_no_changes(&self) -> bool {
        let reason = self.reason.as_deref().unwrap_or_default();
        (self.status == ChangeSetStatus::Failed
            && (reason.contains("didn't contain changes") || says_no_updates(reason)))
            || (self.is_ready() && self.changes.is_empty())
    }

    /// Whether it can be executed.
    pub fn is_ready(&self) -> bool {
        self.status == ChangeSetStatus::CreateComplete
    }
}

/// Whether CloudFormation's message says that an update would change nothing (an UpdateStack
/// error, or a change set's failure reason): the one place that text is matched.
pub fn says_no_updates(message: &str) -> bool {
    message.contains("No updates are to be performed")
}

/// Everything that decides what a deployment is, hashed: equal digests mean nothing to do.
pub fn digest(
    template_body: &str,
    parameters: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
    termination_protection: bool,
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |label: &str, value: &str| {
        // Length-prefixed so that no two different inputs concatenate to the same bytes.
        hasher.update(label.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    };
    field("template", template_body);
    for (k, v) in parameters {
        field("parameter", k);
        field("value", v);
    }
    let ignored = |k: &str| k == DIGEST_TAG || VOLATILE_TAGS.contains(&k);
    for (k, v) in tags.iter().filter(|(k, _)| !ignored(k)) {
        field("tag", k);
        field("value", v);
    }
    field(
        "protection",
        if termination_protection { "on" } else { "off" },
    );
    crate::build::hex(&hasher.finalize())
}

/// Reasons that only say "because something else failed".
fn is_cascade(reason: &str) -> bool {
    reason.contains("Resource creation cancelled")
        || reason.contains("Resource update cancelled")
        || reason.contains("Resource deletion cancelled")
}

/// The event that explains a failure: the earliest `*_FAILED` resource event whose reason is not
/// just a cancellation caused by another failure.
pub fn root_cause<'a>(events: &'a [StackEvent], stack_name: &str) -> Option<&'a StackEvent> {
    let failed = |e: &&StackEvent| phase(&e.status) == Phase::Failed;
    let mut candidates: Vec<&StackEvent> = events
        .iter()
        .filter(failed)
        .filter(|e| !e.reason.as_deref().is_some_and(is_cascade))
        .collect();
    candidates.sort_by_key(|e| e.timestamp);
    // Prefer a resource's own failure over the stack-level summary.
    candidates
        .iter()
        .find(|e| e.logical_id != stack_name)
        .or_else(|| candidates.first())
        .copied()
}

/// Resources undone after a failure: those that reached a `*_COMPLETE` status after the first
/// failed event, in the order they were undone.
pub fn rolled_back(events: &[StackEvent], stack_name: &str) -> Vec<String> {
    let mut ordered: Vec<&StackEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.timestamp);
    let Some(first_failure) = ordered
        .iter()
        .position(|e| phase(&e.status) == Phase::Failed)
    else {
        return Vec::new();
    };
    let mut undone: Vec<String> = Vec::new();
    for e in &ordered[first_failure..] {
        let undoing = matches!(
            e.status,
            ResourceStatus::DeleteComplete | ResourceStatus::UpdateComplete
        );
        if undoing && e.logical_id != stack_name && !undone.contains(&e.logical_id) {
            undone.push(e.logical_id.clone());
        }
    }
    undone
}

/// Something worth showing while the engine works.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A step, in a few words.
    Step(String),
    /// Something went wrong that does not fail the command, and what it means.
    Warning(String),
    /// An artifact is in the bucket (`uploaded`: it was sent now; otherwise it was already there).
    Artifact {
        /// The function.
        function: String,
        /// Its S3 key.
        key: String,
        /// Bytes.
        size: usize,
        /// Sent now, rather than found in the bucket.
        uploaded: bool,
    },
    /// What a change set would do.
    Changes {
        /// The stack.
        stack: String,
        /// Its changes.
        changes: Vec<Change>,
    },
    /// The resources a drift detection found changed outside CloudFormation (or unreadable).
    Drift {
        /// The stack.
        stack: String,
        /// Each resource that is not in sync.
        resources: Vec<ResourceDrift>,
    },
    /// A new stack event.
    Event {
        /// The stack.
        stack: String,
        /// The event.
        event: StackEvent,
        /// Since the operation began.
        elapsed: Duration,
    },
    /// A function's code was updated directly, outside CloudFormation, and Lambda reports the
    /// update done.
    CodeUpdated {
        /// The function's name in the spec.
        function: String,
        /// Its Lambda name.
        lambda_name: String,
        /// Lowercase hex SHA-256 of the code live now.
        sha256: String,
        /// A hotswap, or the template's code put back.
        why: Why,
        /// From UpdateFunctionCode to `Successful`.
        elapsed: Duration,
    },
    /// A table, or one of its indexes, is not ACTIVE yet, so the next update waits for it.
    TableBusy {
        /// The stack.
        stack: String,
        /// The table's logical id.
        table: String,
        /// What it waits for.
        busy: super::model::TableBusy,
        /// Since the wait began.
        elapsed: Duration,
    },
    /// A rollout moved a function's traffic, or is holding a step while it watches alarms.
    Shift(ShiftState),
    /// A poll found the operation still running (drives heartbeats and the live view's clock).
    Waiting {
        /// The stack.
        stack: String,
        /// Its status at the poll.
        status: StackStatus,
        /// Since the operation began.
        elapsed: Duration,
    },
}

/// The answer to "go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Go ahead.
    Yes,
    /// The person said no.
    No,
    /// Nobody can be asked (not a terminal).
    NotInteractive,
}

/// Where progress goes and who is asked for confirmation.
pub trait Ui {
    /// Shows progress.
    fn progress(&self, progress: Progress);
    /// Asks a yes/no question.
    fn confirm(&self, question: &str) -> Confirmation;
    /// Whether stack events are shown as they come (a failure's are read regardless).
    fn shows_events(&self) -> bool {
        true
    }
}

/// A stack as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Stack name.
    pub stack_name: String,
    /// Template body.
    pub template_body: String,
    /// Every parameter value.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags (the digest tag is added by the engine).
    pub tags: BTreeMap<String, String>,
    /// Termination protection.
    pub termination_protection: bool,
    /// Write the tags even when nothing else changed (an ephemeral env's expiry is due for
    /// extension; the digest ignores it so that unchanged envs stay no-ops otherwise).
    pub refresh_tags: bool,
    /// The artifact bucket: a template over CloudFormation's 51,200-byte `TemplateBody` limit
    /// is uploaded there to be passed by URL, and the digest of what was deployed is recorded
    /// there ([`super::recorded`]). `None`: the digest goes in a stack tag instead.
    pub bucket: Option<String>,
    /// Ask IAM before the first change set whether the caller may do what the template needs
    /// ([`super::preflight`]); the caller's ARN is only looked up then.
    pub check_permissions: bool,
    /// Run the operations in CloudFormation's express mode ([`super::express`]).
    pub express: bool,
    /// `up --revert-drift`: a drift-aware change set (`DeploymentMode: REVERT_DRIFT`) that also
    /// puts properties changed outside CloudFormation back to the template's values; made even
    /// when the recorded digest says nothing changed.
    pub revert_drift: bool,
}

impl Deployment {
    /// The digest recorded on the stack once this deployment is done.
    pub fn digest(&self) -> String {
        digest(
            &self.template_body,
            &self.parameters,
            &self.tags,
            self.termination_protection,
        )
    }
}

/// Execute the change set, or only show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Execute; `yes`: without asking; `allow_data_loss`: even when tables, buckets or log
    /// groups would be deleted or replaced.
    Apply {
        /// Without asking.
        yes: bool,
        /// Even when data would be lost.
        allow_data_loss: bool,
    },
    /// Show the changes, then delete the change set.
    Plan,
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The stack already matched; no change set was created or it had no changes.
    NoChanges {
        /// The stack as it is.
        stack: Stack,
    },
    /// `plan`: these changes are pending.
    Planned {
        /// The pending changes.
        changes: Vec<Change>,
    },
    /// The change set ran and the stack reached a complete status.
    Applied {
        /// The stack afterwards.
        stack: Stack,
        /// What changed.
        changes: Vec<Change>,
    },
}

/// How `down` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Teardown {
    /// There was no stack.
    NothingToDelete,
    /// Deleted; these retained tables (physical names) survive it.
    Deleted {
        /// Physical names of the tables that survive.
        retained_tables: Vec<String>,
    },
}

/// Why a function's code was updated outside CloudFormation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `up --hotswap`: code was all that changed.
    Hotswap,
    /// A full `up` put the template's code back after a hotswap.
    Restore,
}

/// A condition key the real request carries, and its values (`ContextEntries`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContextEntry {
    /// The key, e.g. `aws:RequestedRegion`.
    pub key: String,
    /// Its type.
    pub kind: ContextKeyType,
    /// Its values.
    pub values: Vec<String>,
}

impl ContextEntry {
    pub(super) fn string(key: &str, value: &str) -> Self {
        ContextEntry {
            key: key.into(),
            kind: ContextKeyType::String,
            values: vec![value.into()],
        }
    }
}

/// One SimulatePrincipalPolicy request: actions against one resource, with the context the real
/// calls carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The actions.
    pub actions: Vec<String>,
    /// The resource's ARN (known, or of the shape CloudFormation generates); `*` where deployer
    /// cannot tell it.
    pub resource: String,
    /// The context keys.
    pub context: Vec<ContextEntry>,
}

/// IAM's decision for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allowed,
    /// A statement denies it.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

/// What SimulatePrincipalPolicy said of one action of a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The action.
    pub action: String,
    /// The decision.
    pub decision: Decision,
    /// Condition keys the policies use that the request did not give.
    pub missing_context: Vec<String>,
}

/// The type of a context key's values, as SimulatePrincipalPolicy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContextKeyType {
    /// One string.
    String,
    /// A list of strings.
    StringList,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_operation_first_is_told_apart_from_other_refusals() {
        use super::super::cloud::CloudError;
        for (code, message, busy) in [
            (
                "AlreadyExistsException",
                "Stack [deployer-bootstrap] already exists",
                true,
            ),
            (
                "ValidationError",
                "Stack:arn:aws:cloudformation:eu-west-1:1:stack/deployer-bootstrap/x is in UPDATE_IN_PROGRESS state and can not be updated.",
                true,
            ),
            ("ValidationError", "Template format error", false),
            ("AccessDenied", "not authorized", false),
        ] {
            assert_eq!(
                super::super::cloud::is_busy_elsewhere(&CloudError::new(code, message)),
                busy,
                "{message}"
            );
        }
    }

    fn event(t: f64, id: &str, status: &str, reason: &str) -> StackEvent {
        StackEvent {
            id: format!("{id}-{t}"),
            logical_id: id.into(),
            resource_type: "AWS::X::Y".into(),
            status: status.into(),
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            timestamp: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(t),
            token: None,
        }
    }

    #[test]
    fn root_cause_skips_cancellations_and_the_stack_summary() {
        // Newest first, as DescribeStackEvents returns them.
        let events = vec![
            event(9.0, "app-dev", "ROLLBACK_COMPLETE", ""),
            event(8.0, "Api", "DELETE_COMPLETE", ""),
            event(
                6.0,
                "app-dev",
                "ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed to create: [Table, Api]",
            ),
            event(5.0, "Api", "CREATE_FAILED", "Resource creation cancelled"),
            event(4.0, "Table", "CREATE_FAILED", "Table already exists: notes"),
            event(3.0, "Role", "CREATE_FAILED", "Resource creation cancelled"),
            event(1.0, "app-dev", "CREATE_IN_PROGRESS", "User Initiated"),
        ];
        let cause = root_cause(&events, "app-dev").unwrap();
        assert_eq!(cause.logical_id, "Table");
        assert_eq!(cause.reason.as_deref(), Some("Table already exists: notes"));
    }

    #[test]
    fn rolled_back_lists_what_was_undone_after_the_failure() {
        let events = vec![
            event(9.0, "app-dev", "ROLLBACK_COMPLETE", ""),
            event(8.0, "Role", "DELETE_COMPLETE", ""),
            event(7.0, "Logs", "DELETE_COMPLETE", ""),
            event(5.0, "Table", "CREATE_FAILED", "exists"),
            event(4.0, "Logs", "CREATE_COMPLETE", ""),
            event(3.0, "Role", "CREATE_COMPLETE", ""),
        ];
        assert_eq!(rolled_back(&events, "app-dev"), ["Logs", "Role"]);
        assert!(rolled_back(&events[..1], "app-dev").is_empty());
    }

    #[test]
    fn root_cause_falls_back_to_the_stack_event_and_to_none() {
        let events = vec![event(2.0, "s", "UPDATE_FAILED", "Parameter X is invalid")];
        assert_eq!(root_cause(&events, "s").unwrap().logical_id, "s");
        let only_cancelled = vec![event(
            2.0,
            "A",
            "CREATE_FAILED",
            "Resource creation cancelled",
        )];
        assert!(root_cause(&only_cancelled, "s").is_none());
        assert!(root_cause(&[], "s").is_none());
    }

    #[test]
    fn digest_changes_with_each_input_but_not_with_the_digest_tag() {
        let params = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let tags = BTreeMap::from([("team".to_string(), "x".to_string())]);
        let base = digest("{}", &params, &tags, false);
        assert_eq!(base.len(), 64);
        assert_eq!(base, digest("{}", &params, &tags, false));
        assert_ne!(base, digest("{ }", &params, &tags, false));
        assert_ne!(
            base,
            digest(
                "{}",
                &BTreeMap::from([("A".into(), "2".into())]),
                &tags,
                false
            )
        );
        assert_ne!(base, digest("{}", &params, &BTreeMap::new(), false));
        assert_ne!(base, digest("{}", &params, &tags, true));
        let mut with_digest = tags.clone();
        with_digest.insert(DIGEST_TAG.into(), "old".into());
        with_digest.insert(super::EXPIRES_TAG.into(), "2030-01-01T00:00:00Z".into());
        assert_eq!(
            base,
            digest("{}", &params, &with_digest, false),
            "the digest and expiry tags are not inputs"
        );
        // Field boundaries matter: ("AB","") and ("A","B") differ.
        let ab = BTreeMap::from([("AB".to_string(), String::new())]);
        let a_b = BTreeMap::from([("A".to_string(), "B".to_string())]);
        assert_ne!(
            digest("", &ab, &tags, false),
            digest("", &a_b, &tags, false)
        );
    }

    #[test]
    fn no_changes_in_every_form() {
        let cs = |status: &str, reason: Option<&str>, n: usize| ChangeSet {
            id: "cs".into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            changes: vec![
                Change {
                    action: ChangeAction::Add,
                    logical_id: "X".into(),
                    resource_type: "T".into(),
                    replacement: None
                };
                n
            ],
        };
        let moto = "The submitted information didn't contain changes. Submit different information to create a change set.";
        assert!(cs("FAILED", Some(moto), 0).has_no_changes());
        assert!(cs("FAILED", Some("No updates are to be performed."), 0).has_no_changes());
        assert!(cs("CREATE_COMPLETE", None, 0).has_no_changes());
        assert!(!cs("CREATE_COMPLETE", None, 1).has_no_changes());
        assert!(!cs("FAILED", Some("Template format error"), 0).has_no_changes());
        assert!(cs("CREATE_PENDING", None, 0).is_pending());
    }

    #[test]
    fn a_creation_adds_every_unconditional_resource_in_template_order() {
        let template = serde_json::json!({ "Resources": {
            "Role": { "Type": "AWS::IAM::Role" },
            "Maybe": { "Type": "AWS::SNS::Topic", "Condition": "WithTopic" },
            "Fn": { "Type": "AWS::Lambda::Function" },
        }});
        let ids: Vec<(String, char)> = resource_changes(&template, ChangeAction::Add)
            .into_iter()
            .map(|c| (format!("{} {}", c.logical_id, c.resource_type), c.marker()))
            .collect();
        assert_eq!(
            ids,
            [
                ("Role AWS::IAM::Role".to_string(), '+'),
                ("Fn AWS::Lambda::Function".to_string(), '+')
            ]
        );
        assert!(resource_changes(&serde_json::json!({}), ChangeAction::Add).is_empty());
    }

    #[test]
    fn change_markers() {
        let c = |action: &str, replacement: Option<&str>| Change {
            action: action.into(),
            logical_id: "X".into(),
            resource_type: "T".into(),
            replacement: replacement.map(Replacement::from),
        };
        assert_eq!(c("Add", None).marker(), '+');
        assert_eq!(c("Remove", None).marker(), '-');
        assert_eq!(c("Modify", Some("False")).marker(), '~');
        assert_eq!(c("Modify", Some("True")).marker(), '!');
        assert_eq!(c("Modify", Some("Conditional")).marker(), '!');
        assert!(c("Modify", Some("True")).may_replace());
        assert!(!c("Modify", Some("False")).may_replace());
        assert!(!c("Remove", None).may_replace());
    }

    #[test]
    fn every_resource_status_has_a_phase() {
        // `values()` lists every status this SDK knows; the suffix is CloudFormation's rule.
        for name in ResourceStatus::values() {
            let expected = if name.ends_with("_FAILED") {
                Phase::Failed
            } else if name.ends_with("_COMPLETE") || name.ends_with("_SKIPPED") {
                Phase::Complete
            } else {
                assert!(name.ends_with("_IN_PROGRESS"), "{name}");
                Phase::InProgress
            };
            assert_eq!(phase(&ResourceStatus::from(*name)), expected, "{name}");
        }
        // Stack-level events carry stack statuses the resource enum does not have.
        let cleanup = ResourceStatus::from("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS");
        assert_eq!(phase(&cleanup), Phase::InProgress);
        assert_eq!(
            phase(&ResourceStatus::from("REVIEW_IN_PROGRESS")),
            Phase::InProgress
        );
    }
}
