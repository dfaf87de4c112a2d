//! The `--json` interface: one [`Record`] per line on stdout. Every field name and value shape is
//! documented in the README's table of records, and a test holds this module to that table.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::converge::model::{
    Change, ChangeAction, IndexStatus, Phase, Replacement, ResourceDrift, ResourceStatus,
    StackEvent, StackResourceDriftStatus, StackStatus, TableStatus, phase,
};

/// One line of `--json` output. `type` names the record; a command's last line is its `summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A step of the command began.
    Step {
        /// The step, in a few words.
        message: String,
    },
    /// Something worth knowing that does not stop the command.
    Warning {
        /// What, and what it means.
        message: String,
    },
    /// A build began.
    BuildStarted {
        /// The function.
        function: String,
        /// The build method.
        method: crate::build::Method,
    },
    /// A line of the build tool's output (`-v` only).
    BuildOutput {
        /// The function.
        function: String,
        /// The line.
        line: String,
    },
    /// A build finished.
    Build(Built),
    /// An artifact is in the bucket (`uploaded`: false when it already was).
    Artifact {
        /// The function.
        function: String,
        /// The S3 key.
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
        changes: Vec<ChangeRecord>,
    },
    /// A resource a drift detection found not in sync with the template.
    Drift {
        /// The stack.
        stack: String,
        /// Its logical id.
        logical_id: String,
        /// Its type.
        resource_type: String,
        /// `MODIFIED`, `DELETED`, `NOT_CHECKED`, ...
        status: Aws<StackResourceDriftStatus>,
        /// What differs: the template's value and the resource's.
        differences: Vec<DifferenceRecord>,
    },
    /// A new stack event.
    Event {
        /// The stack.
        stack: String,
        /// The resource's logical id (the stack's name for its own events).
        logical_id: String,
        /// The resource type.
        resource_type: String,
        /// CloudFormation's status, e.g. `CREATE_COMPLETE`.
        status: Aws<ResourceStatus>,
        /// Where that status puts the resource.
        phase: EventPhase,
        /// CloudFormation's reason, when it gives one.
        reason: Option<String>,
        /// When it happened.
        timestamp: Timestamp,
        /// Whole seconds since the operation began.
        elapsed_s: u64,
    },
    /// A function's code was updated directly, outside CloudFormation, and is live.
    CodeUpdate {
        /// The function.
        function: String,
        /// Its Lambda name.
        lambda_name: String,
        /// Lowercase hex SHA-256 of the code live now.
        sha256: String,
        /// `hotswap`, or `restore`: the template's code put back after one.
        why: CodeUpdateWhy,
        /// From UpdateFunctionCode until Lambda reported it done.
        duration_s: Seconds,
    },
    /// A table deployer made whose env has no stack any more (`ls --retained`).
    RetainedTable {
        /// Its name.
        table: String,
        /// Its app (tag).
        app: String,
        /// Its env (tag).
        env: String,
        /// The spec's name of the table (empty for a table made before deployer tagged it).
        spec_table: String,
        /// Bytes stored, as DynamoDB last counted.
        size_bytes: Option<i64>,
        /// Items, likewise.
        items: Option<i64>,
        /// Storage a month, in USD, at us-east-1's Standard price.
        monthly_storage_usd: Option<f64>,
    },
    /// A rollout moved a function's traffic, holds a step while it watches alarms, finished,
    /// or rolled back.
    Shift {
        /// The stack.
        stack: String,
        /// The function's name in the spec.
        function: String,
        /// The version serving the rest of the requests.
        from_version: String,
        /// The new version.
        to_version: String,
        /// Percent of requests on the new version.
        percent: u32,
        /// Whole seconds until the shift ends, if no alarm fires.
        left_s: u64,
        /// Where the shift is.
        phase: crate::converge::model::ShiftPhase,
        /// The alarm whose `ALARM` state rolled it back.
        alarm: Option<String>,
        /// CloudWatch's reason for that state.
        alarm_reason: Option<String>,
    },
    /// An update waits for a table, or one of its indexes, to become ACTIVE.
    TableWait {
        /// The stack.
        stack: String,
        /// The table's logical id.
        table: String,
        /// The index waited for; `None`: the table itself.
        index: Option<String>,
        /// DynamoDB's status of what is waited for, e.g. `CREATING`.
        status: TableWaitStatus,
        /// How far an index's backfill is (its items against the table's), where DynamoDB's
        /// counts say.
        percent: Option<u8>,
        /// Whole seconds since the wait began.
        elapsed_s: u64,
    },
    /// Still waiting, so that logs never look hung: on a stack (`stack`, `status`) or a build
    /// (`function`, `line`).
    Heartbeat {
        /// The stack being waited on.
        #[serde(skip_serializing_if = "Option::is_none")]
        stack: Option<String>,
        /// Its status.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<Aws<StackStatus>>,
        /// The function being built.
        #[serde(skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        /// The build tool's latest line.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<String>,
        /// Whole seconds since the wait began.
        elapsed_s: u64,
    },
    /// One `gc` decision.
    Gc {
        /// The stack.
        stack: String,
        /// Deleted or kept.
        action: GcAction,
        /// Why.
        reason: String,
    },
    /// One stack (`status`, and each row of `ls`); `status` is null when it does not exist.
    Stack {
        /// The stack name.
        stack: String,
        /// Its status; null when there is no such stack.
        status: Option<Aws<StackStatus>>,
        /// Why it is in that status, when CloudFormation says.
        reason: Option<String>,
        /// The `deployer:app` tag.
        app: Option<String>,
        /// The `deployer:env` tag.
        env: Option<String>,
        /// The last deployment.
        updated: Option<Timestamp>,
        /// An ephemeral env's expiry (RFC 3339).
        expires: Option<String>,
        /// Whether termination protection is on.
        termination_protection: bool,
        /// The shared load balancer the env is attached to, as `<stack>/<slot>`; null when it
        /// has its own (or none).
        shared_alb: Option<String>,
        /// `ls`: what the stack costs a month before use (an attached env: with its share of
        /// the shared load balancer); null in `status`, or where the region has no prices.
        monthly_fixed_usd: Option<f64>,
        /// `status`: functions running hotswapped code, to its SHA-256 (empty: none; null: not
        /// read, as in `ls`).
        hotswapped: Option<BTreeMap<String, String>>,
    },
    /// `outputs`: the stack's outputs by key.
    Outputs {
        /// The stack name.
        stack: String,
        /// Output key to value.
        outputs: BTreeMap<String, String>,
    },
    /// One CloudWatch Logs event of a function.
    Log {
        /// The function.
        function: String,
        /// When it was logged.
        timestamp: Timestamp,
        /// The line.
        message: String,
    },
    /// `table import`: the counters so far (every few seconds).
    ImportProgress(ImportCounts),
    /// `table import`: a row that was not written, and why.
    Rejected {
        /// Its number among the source's records (a CSV header does not count).
        row: u64,
        /// The line it starts on (the row, for a query).
        line: u64,
        /// Why.
        reason: String,
    },
    /// `table import`: a row whose key an earlier row had; the later one is what the table keeps.
    Duplicate {
        /// The later row.
        row: u64,
        /// Its line.
        line: u64,
        /// The key, `name=value` for each key attribute.
        key: String,
    },
    /// `local`: a spec table at the local DynamoDB endpoint.
    LocalTable {
        /// The spec's name.
        table: String,
        /// The name the functions get in `TABLE_*`.
        physical_table: String,
        /// The endpoint.
        endpoint: String,
        /// Created now, rather than found with its data.
        created: bool,
    },
    /// `local`: serving.
    LocalReady {
        /// The stack whose template is served.
        stack: String,
        /// Where.
        url: String,
        /// The listener's rules in priority order, then the default.
        routes: Vec<LocalRoute>,
    },
    /// `local`: a function's process started or ended.
    LocalProcess {
        /// The function.
        function: String,
        /// `started` or `exited`.
        event: ProcessEvent,
        /// How it ended (null when it started).
        detail: Option<String>,
    },
    /// `local`: a line the function wrote.
    LocalLog {
        /// The function.
        function: String,
        /// The line.
        line: String,
    },
    /// `local`: an answered request.
    LocalRequest {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// The status sent.
        status: u16,
        /// The function that answered (null: a fixed response or the load balancer's own error).
        function: Option<String>,
        /// Receipt to answer, milliseconds.
        duration_ms: f64,
        /// Process start to this answer when this request started the process, milliseconds.
        cold_start_ms: Option<f64>,
        /// Why the load balancer answered itself (null otherwise).
        error: Option<String>,
    },
}

/// `local`: one route as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalRoute {
    /// The rule's priority (null: the listener's default).
    pub priority: Option<u32>,
    /// Its conditions in words (`GET /docs*`).
    pub conditions: String,
    /// The function it invokes (null: a fixed response).
    pub function: Option<String>,
    /// The fixed response's status (null: a function).
    pub fixed_status: Option<u16>,
}

/// `table import --verify`: what reading back found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportVerified {
    /// Items read back.
    pub checked: u64,
    /// Of those, missing or not as written.
    pub differ: u64,
}

/// `table import`'s counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportCounts {
    /// The spec's table name.
    pub table: String,
    /// Records read.
    pub read: u64,
    /// Items DynamoDB acknowledged.
    pub written: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rows whose key an earlier row had.
    pub duplicates: u64,
    /// Requests the table pushed back.
    pub throttles: u64,
    /// Requests sent again.
    pub retries: u64,
    /// Items written a second, over the whole run.
    pub items_per_s: f64,
    /// Write units consumed a second, over the whole run.
    pub wcu_per_s: f64,
    /// The source read so far, when its size is known (0–100).
    pub percent: Option<f64>,
    /// Time since the start.
    pub elapsed_s: Seconds,
}

/// The verification request `up` made, and what it got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    /// The path requested.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// How long the answer took.
    pub latency_ms: u64,
}

/// Why a function's code was updated outside CloudFormation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeUpdateWhy {
    /// `up --hotswap`.
    Hotswap,
    /// A full `up` put the template's code back.
    Restore,
}

impl From<crate::converge::hotswap::Why> for CodeUpdateWhy {
    fn from(why: crate::converge::hotswap::Why) -> Self {
        match why {
            crate::converge::hotswap::Why::Hotswap => CodeUpdateWhy::Hotswap,
            crate::converge::hotswap::Why::Restore => CodeUpdateWhy::Restore,
        }
    }
}

/// A function whose code was updated outside CloudFormation, in a summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeUpdateRecord {
    /// The function.
    pub function: String,
    /// Lowercase hex SHA-256 of the code live now.
    pub sha256: String,
    /// `hotswap` or `restore`.
    pub why: CodeUpdateWhy,
}

impl CodeUpdateRecord {
    /// The record of an update.
    pub fn of(swapped: &crate::converge::hotswap::Swapped) -> Self {
        CodeUpdateRecord {
            function: swapped.function.clone(),
            sha256: swapped.sha256.clone(),
            why: swapped.why.into(),
        }
    }
}

/// One built artifact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Built {
    /// The function.
    pub function: String,
    /// `docker (classic)`, `cargo-lambda`, `zip`...
    pub method: crate::build::Method,
    /// Lowercase hex sha256 of the zip.
    pub sha256: String,
    /// Bytes.
    pub size: usize,
    /// Where the zip is.
    pub path: String,
    /// How long it took.
    pub duration_s: Seconds,
}

impl Built {
    /// The record of a build.
    pub fn of(function: &str, built: &crate::build::Built) -> Built {
        Built {
            function: function.to_string(),
            method: built.method,
            sha256: built.artifact.sha256_hex(),
            size: built.artifact.bytes.len(),
            path: built.path.display().to_string(),
            duration_s: Seconds(built.elapsed),
        }
    }
}

/// One property of a drifted resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DifferenceRecord {
    /// The property's JSON pointer (`/MemorySize`).
    pub path: String,
    /// The template's value (JSON text; empty when the property was added).
    pub expected: String,
    /// The resource's value (JSON text; empty when it was removed).
    pub actual: String,
}

impl Record {
    /// The `drift` record of one resource.
    pub fn drift(stack: &str, r: &ResourceDrift) -> Record {
        Record::Drift {
            stack: stack.to_string(),
            logical_id: r.logical_id.clone(),
            resource_type: r.resource_type.clone(),
            status: Aws(r.status.clone()),
            differences: r
                .differences
                .iter()
                .map(|d| DifferenceRecord {
                    path: d.path.clone(),
                    expected: d.expected.clone(),
                    actual: d.actual.clone(),
                })
                .collect(),
        }
    }
}

/// One change of a change set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    /// What happens to the resource.
    pub action: Action,
    /// Logical id.
    pub logical_id: String,
    /// CloudFormation resource type.
    pub resource_type: String,
    /// For a modification: whether it replaces the resource; null otherwise.
    pub replacement: Option<Replacing>,
}

impl From<&Change> for ChangeRecord {
    fn from(c: &Change) -> Self {
        let action = match &c.action {
            ChangeAction::Add => Action::Add,
            ChangeAction::Modify => Action::Modify,
            ChangeAction::Remove => Action::Remove,
            ChangeAction::Import => Action::Import,
            _ => Action::Other,
        };
        let replacing = match &c.replacement {
            Some(Replacement::True) => Replacing::Always,
            Some(Replacement::Conditional) => Replacing::Conditional,
            Some(Replacement::False) => Replacing::Never,
            _ => Replacing::Unknown,
        };
        let replacement = (c.action == ChangeAction::Modify).then_some(replacing);
        ChangeRecord {
            action,
            logical_id: c.logical_id.clone(),
            resource_type: c.resource_type.clone(),
            replacement,
        }
    }
}

/// A change's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created.
    Add,
    /// Updated in place or replaced (see `replacement`).
    Modify,
    /// Deleted (or retained, by its deletion policy).
    Remove,
    /// Imported.
    Import,
    /// Anything CloudFormation adds later (`Dynamic`, ...).
    Other,
}

/// Whether a modification replaces the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replacing {
    /// Updated in place.
    Never,
    /// Replaced: a new physical resource.
    Always,
    /// Replaced depending on values known only at deploy time.
    Conditional,
    /// The backend did not say (moto).
    Unknown,
}

/// Where an event's status puts its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventPhase {
    /// `*_IN_PROGRESS`.
    InProgress,
    /// `*_COMPLETE`, `DELETE_SKIPPED`.
    Complete,
    /// `*_FAILED`.
    Failed,
}

impl From<Phase> for EventPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::InProgress => EventPhase::InProgress,
            Phase::Complete => EventPhase::Complete,
            Phase::Failed => EventPhase::Failed,
        }
    }
}

/// A `gc` decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GcAction {
    /// Expired: deleted (or would be, with `--dry-run`).
    Delete,
    /// Kept.
    Skip,
}

/// An enum of the AWS SDK (a stack, resource, table or index status), written as AWS spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aws<T>(pub T);

/// The SDK enums records carry: each has `as_str`, which no SDK trait names.
pub trait AwsEnum {
    /// The value as AWS spells it.
    fn aws_name(&self) -> &str;
}

macro_rules! aws_enum {
    ($($t:ty),*) => {$(
        impl AwsEnum for $t {
            fn aws_name(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}
aws_enum!(
    StackStatus,
    ResourceStatus,
    TableStatus,
    IndexStatus,
    StackResourceDriftStatus
);

impl<T: AwsEnum> Serialize for Aws<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.aws_name())
    }
}

/// What a `table_wait` waits on: the table's status, or the index's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableWaitStatus {
    /// The table is not ACTIVE.
    Table(TableStatus),
    /// An index is not ACTIVE.
    Index(IndexStatus),
}

impl Serialize for TableWaitStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            TableWaitStatus::Table(status) => status.as_str(),
            TableWaitStatus::Index(status) => status.as_str(),
        })
    }
}

/// What happened to a function's process under `deployer local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessEvent {
    /// It started (on its first request).
    Started,
    /// It ended.
    Exited,
}

/// A time, written as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub SystemTime);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(self.0))
    }
}

/// A duration, written as seconds with two decimals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((self.0.as_secs_f64() * 100.0).round() / 100.0)
    }
}

impl Record {
    /// The record of a stack event.
    pub fn event(stack: &str, event: &StackEvent, elapsed: Duration) -> Record {
        Record::Event {
            stack: stack.to_string(),
            logical_id: event.logical_id.clone(),
            resource_type: event.resource_type.clone(),
            status: Aws(event.status.clone()),
            phase: phase(&event.status).into(),
            reason: event.reason.clone(),
            timestamp: Timestamp(event.timestamp),
            elapsed_s: elapsed.as_secs(),
        }
    }

    /// The record as one line of JSON.
    pub fn to_line(&self) -> String {
        // Serializing these types cannot fail: no maps with non-string keys, no custom errors.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The README's table of records: for each record kind (`type`, or `summary (command)`), its
/// documented fields. Rows look like ``| `event` | `stack`, `logical_id`, ... |``.
pub fn readme_table(readme: &str) -> BTreeMap<String, Vec<String>> {
    let start = readme
        .find("<!-- json-records -->")
        .expect("the README marks its table of JSON records with <!-- json-records -->");
    let mut table = BTreeMap::new();
    for line in readme[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(kind) = cells.first().and_then(|c| c.strip_prefix('`')) else {
            continue;
        };
        let kind = kind.replacen('`', "", 1);
        let fields = cells.get(1).map_or_else(Vec::new, |cell| field_names(cell));
        table.insert(kind, fields);
    }
    table
}

/// The field names of a README cell: backticked names at the start of each comma-separated item,
/// before any `;`, outside parentheses (which describe values).
fn field_names(cell: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0usize;
    for ch in cell.chars() {
        match ch {
            ';' if depth == 0 => break,
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => items.push(String::new()),
            _ if depth == 0 => items.last_mut().expect("never empty").push(ch),
            _ => {}
        }
    }
    items
        .iter()
        .filter_map(|item| {
            Some(
                item.trim()
                    .strip_prefix('`')?
                    .split('`')
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

/// Checks one JSON record against the README's table: a known kind, every field documented, and
/// every documented field present (optional fields are marked `?` in the table).
pub fn check(
    table: &BTreeMap<String, Vec<String>>,
    record: &serde_json::Value,
) -> Result<(), String> {
    let object = record.as_object().ok_or("not an object")?;
    let kind = object
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or("no `type`")?;
    let key = match object.get("command").and_then(|c| c.as_str()) {
        Some(command) if kind == "summary" => format!("summary ({command})"),
        _ => kind.to_string(),
    };
    let fields = table
        .get(&key)
        .ok_or_else(|| format!("`{key}` is not in the README's table of records"))?;
    let documented = |name: &str| fields.iter().any(|f| f.trim_end_matches('?') == name);
    for name in object.keys() {
        if name != "type" && name != "command" && !documented(name) {
            return Err(format!("`{key}` has the undocumented field `{name}`"));
        }
    }
    for field in fields.iter().filter(|f| !f.ends_with('?')) {
        if !object.contains_key(field) {
            return Err(format!("`{key}` lacks the documented field `{field}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts samples share: import counters, a change, a built artifact.
    fn parts(d: Seconds) -> (ImportCounts, ChangeRecord, Built) {
        let counts = ImportCounts {
            table: "notes".into(),
            read: 12,
            written: 10,
            rejected: 1,
            duplicates: 1,
            throttles: 2,
            retries: 2,
            items_per_s: 1_250.5,
            wcu_per_s: 1_300.0,
            percent: Some(100.0),
            elapsed_s: d,
        };
        let change = ChangeRecord {
            action: Action::Modify,
            logical_id: "NotesTable".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
            replacement: Some(Replacing::Always),
        };
        let built = Built {
            function: "api".into(),
            method: crate::build::Method::Docker(None),
            sha256: "ab".repeat(32),
            size: 2_900_000,
            path: "target/lambda/api/bootstrap.zip".into(),
            duration_s: d,
        };
        (counts, change, built)
    }

    /// One record of every kind, in every variant: adding a variant without a sample here does not
    /// compile (see `kind`).
    fn samples() -> Vec<Record> {
        let t = Timestamp(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        let d = Seconds(Duration::from_millis(8_215));
        let (counts, change, built) = parts(d);
        let s = |x: &str| x.to_string();
        vec![
            Record::Step {
                message: s("building"),
            },
            Record::Warning {
                message: s("careful"),
            },
            Record::BuildStarted {
                function: s("api"),
                method: crate::build::Method::Docker(None),
            },
            Record::BuildOutput {
                function: s("api"),
                line: s("Compiling"),
            },
            Record::Build(built.clone()),
            Record::Artifact {
                function: s("api"),
                key: s("k"),
                size: 1,
                uploaded: true,
            },
            Record::Changes {
                stack: s("notes-dev"),
                changes: vec![change],
            },
            Record::Drift {
                stack: s("notes-dev"),
                logical_id: s("ApiFunction"),
                resource_type: s("AWS::Lambda::Function"),
                status: Aws(StackResourceDriftStatus::Modified),
                differences: vec![DifferenceRecord {
                    path: s("/MemorySize"),
                    expected: s("256"),
                    actual: s("512"),
                }],
            },
            Record::Event {
                stack: s("notes-dev"),
                logical_id: s("Api"),
                resource_type: s("AWS::Lambda::Function"),
                status: Aws(ResourceStatus::CreateComplete),
                phase: EventPhase::Complete,
                reason: None,
                timestamp: t,
                elapsed_s: 3,
            },
            Record::CodeUpdate {
                function: s("api"),
                lambda_name: s("notes-dev-api"),
                sha256: s("ab"),
                why: CodeUpdateWhy::Hotswap,
                duration_s: d,
            },
            Record::RetainedTable {
                table: s("notes-pr-7-NotesTable-1X2Y"),
                app: s("notes"),
                env: s("pr-7"),
                spec_table: s("notes"),
                size_bytes: Some(5_100_000),
                items: Some(1234),
                monthly_storage_usd: Some(0.0012),
            },
            Record::Shift {
                stack: s("notes-prod"),
                function: s("api"),
                from_version: s("41"),
                to_version: s("42"),
                percent: 0,
                left_s: 0,
                phase: crate::converge::model::ShiftPhase::RolledBack,
                alarm: Some(s("notes-prod-ApiNextErrorsAlarm-1A2B3C")),
                alarm_reason: Some(s(
                    "Threshold Crossed: 1 datapoint [3.0] was greater than or equal to the threshold (1.0).",
                )),
            },
            Record::TableWait {
                stack: s("notes-dev"),
                table: s("NotesTable"),
                index: Some(s("by_owner")),
                status: TableWaitStatus::Index(IndexStatus::Creating),
                percent: Some(41),
                elapsed_s: 12,
            },
            Record::Heartbeat {
                stack: Some(s("notes-dev")),
                status: Some(Aws(StackStatus::UpdateInProgress)),
                function: None,
                line: None,
                elapsed_s: 30,
            },
            Record::Heartbeat {
                stack: None,
                status: None,
                function: Some(s("api")),
                line: Some(s("Compiling tokio")),
                elapsed_s: 30,
            },
            Record::Gc {
                stack: s("notes-pr-1"),
                action: GcAction::Delete,
                reason: s("expired"),
            },
            Record::Stack {
                stack: s("notes-dev"),
                status: Some(Aws(StackStatus::UpdateComplete)),
                reason: None,
                app: Some(s("notes")),
                env: Some(s("dev")),
                updated: Some(t),
                expires: None,
                termination_protection: false,
                shared_alb: None,
                monthly_fixed_usd: None,
                hotswapped: Some(BTreeMap::from([(s("api"), s("ab"))])),
            },
            Record::Outputs {
                stack: s("notes-dev"),
                outputs: BTreeMap::new(),
            },
            Record::Log {
                function: s("api"),
                timestamp: t,
                message: s("hello"),
            },
            Record::ImportProgress(counts.clone()),
            Record::Rejected {
                row: 3,
                line: 4,
                reason: s("no value for the key attribute pk"),
            },
            Record::Duplicate {
                row: 9,
                line: 10,
                key: s("pk=USER#1"),
            },
            Record::LocalTable {
                table: s("notes"),
                physical_table: s("notes-dev-notes"),
                endpoint: s("http://127.0.0.1:5000"),
                created: true,
            },
            Record::LocalReady {
                stack: s("notes-dev"),
                url: s("http://127.0.0.1:3000"),
                routes: vec![LocalRoute {
                    priority: Some(100),
                    conditions: s("GET /docs*"),
                    function: Some(s("api")),
                    fixed_status: None,
                }],
            },
            Record::LocalProcess {
                function: s("api"),
                event: ProcessEvent::Exited,
                detail: Some(s("exited with code 1")),
            },
            Record::LocalLog {
                function: s("api"),
                line: s("listening"),
            },
            Record::LocalRequest {
                method: s("GET"),
                path: s("/notes/1"),
                status: 200,
                function: Some(s("api")),
                duration_ms: 12.5,
                cold_start_ms: Some(40.1),
                error: None,
            },
        ]
    }

    /// Each command's summary record, as `--json` ends with it.
    fn summary_samples() -> Vec<(String, String)> {
        use crate::commands::{bootstrap, build, down, gc, local, secret, table_import, up};
        use crate::ui::summary_line;
        let d = Seconds(Duration::from_millis(8_215));
        let (counts, change, built) = parts(d);
        let deployed = up::Deployed {
            stack: "notes-dev".into(),
            env: "dev".into(),
            status: up::UpStatus::Stack(crate::converge::model::StackStatus::UpdateComplete),
            changed: true,
            outputs: vec![("Url".into(), "http://x".into())],
            changes: vec![change],
            code_updates: vec![CodeUpdateRecord {
                function: "api".into(),
                sha256: "ab".into(),
                why: CodeUpdateWhy::Restore,
            }],
            verified: Some(Verified {
                path: "/".into(),
                status: 200,
                latency_ms: 43,
            }),
            duration_s: d,
            ..up::Deployed::default()
        };
        let s = |x: &str| x.to_string();
        vec![
            ("summary (up)".into(), summary_line(&deployed)),
            (
                "summary (plan)".into(),
                summary_line(&up::Deployed {
                    plan: true,
                    status: up::UpStatus::ChangesPending,
                    ..deployed
                }),
            ),
            (
                "summary (import)".into(),
                summary_line(&table_import::Imported {
                    status: table_import::ImportStatus::Complete,
                    message: s("10 items written"),
                    physical_table: s("notes-dev-NotesTable-1"),
                    counts,
                    checkpoint: None,
                    rejects_file: Some(s(".deployer/imports/notes-dev.notes.rejects.jsonl")),
                    verified: Some(ImportVerified {
                        checked: 10,
                        differ: 0,
                    }),
                }),
            ),
            (
                "summary (down)".into(),
                summary_line(&down::Deleted {
                    stack: s("notes-dev"),
                    status: down::DownStatus::DeleteComplete,
                    message: s("deleted"),
                    duration_s: d,
                    retained_tables: vec![],
                    removed_artifacts: vec![],
                    kept_artifacts: vec![],
                    shared_alb: None,
                    shared_alb_deleted: false,
                }),
            ),
            (
                "summary (gc)".into(),
                summary_line(&gc::Collected {
                    status: gc::GcStatus::Ok,
                    message: s("deleted 0 stack(s)"),
                    duration_s: d,
                    dry_run: false,
                    stacks: vec![],
                    failed: vec![],
                    monthly_fixed_usd: Some(0.0),
                }),
            ),
            (
                "summary (bootstrap)".into(),
                summary_line(&bootstrap::Ready {
                    stack: s("deployer-bootstrap"),
                    region: s("us-east-1"),
                    bucket: s("b"),
                    vpc_id: s("vpc-1"),
                    subnet_ids: vec![],
                    duration_s: d,
                }),
            ),
            (
                "summary (secret set)".into(),
                summary_line(&secret::Written {
                    function: s("api"),
                    name: s("DB_PASSWORD"),
                    reference: s("ssm:/notes/prod/db-password"),
                    version: s("3"),
                }),
            ),
            (
                "summary (secret ls)".into(),
                summary_line(&secret::Listing {
                    stack: s("notes-prod"),
                    secrets: vec![secret::Listed {
                        function: s("api"),
                        name: s("DB_PASSWORD"),
                        reference: s("ssm:/notes/prod/db-password"),
                        version: None,
                        last_changed: None,
                    }],
                    missing: 1,
                }),
            ),
            (
                "summary (build)".into(),
                summary_line(&build::BuiltAll {
                    artifacts: vec![built],
                }),
            ),
            (
                "summary (local)".into(),
                summary_line(&local::Stopped {
                    status: local::LocalStatus::Stopped,
                    stack: s("notes-dev"),
                    requests: 3,
                    duration_s: d,
                }),
            ),
        ]
    }

    /// The README's name of a record: its `type`, and for a summary its `command`.
    fn kind(record: &Record) -> &'static str {
        // Exhaustive on purpose: a new variant must be named here, and so get a sample above.
        match record {
            Record::Step { .. } => "step",
            Record::Warning { .. } => "warning",
            Record::BuildStarted { .. } => "build_started",
            Record::BuildOutput { .. } => "build_output",
            Record::Build(_) => "build",
            Record::Artifact { .. } => "artifact",
            Record::Changes { .. } => "changes",
            Record::Drift { .. } => "drift",
            Record::Event { .. } => "event",
            Record::CodeUpdate { .. } => "code_update",
            Record::TableWait { .. } => "table_wait",
            Record::Shift { .. } => "shift",
            Record::RetainedTable { .. } => "retained_table",
            Record::Heartbeat { .. } => "heartbeat",
            Record::Gc { .. } => "gc",
            Record::Stack { .. } => "stack",
            Record::Outputs { .. } => "outputs",
            Record::Log { .. } => "log",
            Record::ImportProgress(_) => "import_progress",
            Record::Rejected { .. } => "rejected",
            Record::Duplicate { .. } => "duplicate",
            Record::LocalTable { .. } => "local_table",
            Record::LocalReady { .. } => "local_ready",
            Record::LocalProcess { .. } => "local_process",
            Record::LocalLog { .. } => "local_log",
            Record::LocalRequest { .. } => "local_request",
        }
    }

    #[test]
    fn every_record_matches_the_readme_table() {
        let readme = include_str!("../../README.md");
        let table = crate::ui::record::readme_table(readme);
        let mut samples: Vec<(String, String)> = samples()
            .iter()
            .map(|r| (kind(r).to_string(), r.to_line()))
            .collect();
        samples.extend(summary_samples());
        for (kind, line) in &samples {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["type"], kind.split(' ').next().unwrap());
            if let Err(e) = check(&table, &value) {
                panic!("{line}: {e}");
            }
        }
        let sampled: std::collections::BTreeSet<&str> =
            samples.iter().map(|(kind, _)| kind.as_str()).collect();
        let documented: std::collections::BTreeSet<&str> =
            table.keys().map(String::as_str).collect();
        assert_eq!(sampled, documented, "README rows and record kinds differ");
    }

    #[test]
    fn a_record_with_an_undocumented_field_fails_the_check() {
        let table = crate::ui::record::readme_table(include_str!("../../README.md"));
        let bad = serde_json::json!({ "type": "step", "message": "m", "extra": 1 });
        assert!(check(&table, &bad).unwrap_err().contains("extra"));
        let missing = serde_json::json!({ "type": "warning" });
        assert!(check(&table, &missing).unwrap_err().contains("message"));
        let unknown = serde_json::json!({ "type": "nope" });
        assert!(check(&table, &unknown).is_err());
    }

    #[test]
    fn changes_and_events_use_enums_and_rfc3339() {
        let change = Change {
            action: ChangeAction::Modify,
            logical_id: "T".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
            replacement: Some(Replacement::False),
        };
        let json = serde_json::to_value(ChangeRecord::from(&change)).unwrap();
        assert_eq!(json["action"], "modify");
        assert_eq!(json["replacement"], "never");
        let added = Change {
            action: ChangeAction::Add,
            replacement: None,
            ..change
        };
        assert_eq!(
            serde_json::to_value(ChangeRecord::from(&added)).unwrap()["replacement"],
            serde_json::Value::Null
        );
        let event = StackEvent {
            id: "e".into(),
            logical_id: "Api".into(),
            resource_type: "AWS::Lambda::Function".into(),
            status: "UPDATE_FAILED".into(),
            reason: Some("boom".into()),
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
            token: None,
        };
        let line = Record::event("s", &event, Duration::from_secs(2)).to_line();
        assert_eq!(
            line,
            r#"{"type":"event","stack":"s","logical_id":"Api","resource_type":"AWS::Lambda::Function","status":"UPDATE_FAILED","phase":"failed","reason":"boom","timestamp":"1970-01-01T00:00:01.500Z","elapsed_s":2}"#
        );
    }
}
