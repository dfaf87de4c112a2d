//! The engine against a scripted CloudFormation: response sequences moto never produces
//! (rollbacks, stuck rollbacks, operations already running, replacements, failed creates).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudformation::types::StackStatus;
use deployer::converge::cloud::{
    ChangeSetRequest, Cloud, CloudError, Condition, Object, StackRequest,
};
use deployer::converge::engine::{
    Confirmation, Deployment, Engine, Mode, Outcome, Poll, Progress, Teardown, Ui,
};
use deployer::converge::model::{
    Change, ChangeSet, DIGEST_TAG, FunctionCode, Resource, Stack, StackEvent,
};

const NAME: &str = "notes-dev";
const ID: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/notes-dev/1";

fn stack(status: &str) -> Option<Stack> {
    Some(Stack {
        id: ID.into(),
        name: NAME.into(),
        status: StackStatus::from(status),
        reason: None,
        outputs: vec![],
        tags: BTreeMap::new(),
        termination_protection: false,
        parameters: BTreeMap::new(),
        created: None,
        updated: None,
        drift: None,
    })
}

fn event(t: f64, logical_id: &str, status: &str, reason: &str) -> StackEvent {
    StackEvent {
        id: format!("{logical_id}-{status}-{t}"),
        logical_id: logical_id.into(),
        resource_type: resource_type(logical_id).into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t),
        token: None,
    }
}

/// The type deployer gives a logical id, from its suffix.
fn resource_type(logical_id: &str) -> &'static str {
    match logical_id {
        NAME => "AWS::CloudFormation::Stack",
        id if id.ends_with("Role") => "AWS::IAM::Role",
        id if id.ends_with("LogGroup") => "AWS::Logs::LogGroup",
        id if id.ends_with("Function") => "AWS::Lambda::Function",
        _ => "AWS::DynamoDB::Table",
    }
}

/// Replays stack states: each `stack()` call takes the next state; the last one repeats.
#[derive(Default)]
struct Script {
    states: RefCell<VecDeque<Option<Stack>>>,
    change_set: RefCell<Option<ChangeSet>>,
    events: RefCell<Vec<StackEvent>>,
    /// Events exist only once this many `stack()` calls were made (they happen while waiting).
    reveal_after: std::cell::Cell<usize>,
    stack_calls: std::cell::Cell<usize>,
    /// `stack()` calls made when the change set (or, for a direct create, the stack) was
    /// submitted.
    stack_calls_before_change_set: std::cell::Cell<Option<usize>>,
    calls: RefCell<Vec<String>>,
    /// An error to answer one operation with (`"stack"`, `"create_change_set"`).
    fail: RefCell<Option<(&'static str, CloudError)>>,
    /// Every change set requested, in order.
    requests: RefCell<Vec<ChangeSetRequest>>,
    /// What GetTemplate answers.
    deployed: RefCell<Option<String>>,
    /// Actions IAM's simulation denies.
    denied: RefCell<Vec<String>>,
    /// Every CreateStack/UpdateStack request, in order.
    stack_requests: RefCell<Vec<StackRequest>>,
    /// S3 objects written with their bodies (the artifact bucket's records).
    objects: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Every PutObject, in order.
    written: RefCell<Vec<(String, Vec<u8>)>>,
    /// Another deploy's writes that land just before this one's conditional write of the same
    /// key (it listed the bucket before they did).
    concurrent_writes: RefCell<Vec<(String, Vec<u8>)>>,
    /// What DescribeStackDriftDetectionStatus answers, call by call (the last repeats), and
    /// what DescribeStackResourceDrifts answers once it is done.
    drift_detections: RefCell<VecDeque<deployer::converge::model::DriftDetection>>,
    resource_drifts: RefCell<Vec<deployer::converge::model::ResourceDrift>>,
    /// Resources of the app stack listed besides its table.
    extra_resources: RefCell<Vec<Resource>>,
    /// Lambda functions by name.
    functions: RefCell<BTreeMap<String, Function>>,
    /// As AWS does: events carry the token of the operation that made them (the last one
    /// started), and one more of them exists at each DescribeStackEvents (oldest first).
    tagged_paced: std::cell::Cell<bool>,
    /// The token of the last operation started.
    token: RefCell<Option<String>>,
    events_calls: std::cell::Cell<usize>,
    /// The stack's DynamoDB table, as DescribeTable shows it.
    table: RefCell<FakeTable>,
    /// What DescribeTimeToLive answers.
    ttl_status: RefCell<Option<deployer::converge::model::TimeToLiveStatus>>,
    /// The region's DynamoDB tables, as ListTables, DescribeTable and ListTagsOfResource see
    /// them.
    tables: RefCell<Vec<deployer::converge::model::TableSummary>>,
    /// The load balancer's rules and listeners by ARN, with the weights of their forward
    /// action: ModifyRule/ModifyListener on another ARN fail as on AWS.
    forwarders: RefCell<BTreeMap<String, Vec<(String, u32)>>>,
    /// Every weight change: the forwarder's ARN and the weight of its second target group.
    moves: RefCell<Vec<(String, u32)>>,
    /// CloudWatch's alarms.
    alarms: RefCell<Vec<deployer::converge::model::AlarmState>>,
    /// An alarm that goes to ALARM (name, reason) at this DescribeAlarms call.
    alarm_fires: RefCell<Option<(usize, String, String)>>,
    alarm_calls: std::cell::Cell<usize>,
    /// Ctrl-C pressed at this DescribeAlarms call.
    interrupt_at: RefCell<Option<(usize, deployer::converge::engine::Interrupts)>>,
}

/// The stack's table as DynamoDB keeps it: an index created or deleted by an update stays
/// CREATING or DELETING for `busy_reads` DescribeTable calls, since CloudFormation ends the
/// update without waiting for it. An update executed while an index is busy fails, as on AWS.
#[derive(Debug, Clone, Default)]
struct FakeTable {
    /// By name: DescribeTable reads it stays busy for, and whether it is going away.
    indexes: BTreeMap<String, (usize, bool)>,
    busy_reads: usize,
    /// Every DescribeTable answer that had a busy index.
    busy_answers: usize,
    /// Updates executed while an index was busy (AWS fails them).
    refused: Vec<String>,
}

impl FakeTable {
    /// What an executed template does to the table; an error when AWS would fail the update.
    fn update_to(&mut self, template: &str) -> Result<(), String> {
        let t: serde_json::Value = serde_json::from_str(template).unwrap();
        let wanted: Vec<String> =
            t["Resources"]["NotesTable"]["Properties"]["GlobalSecondaryIndexes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["IndexName"].as_str().unwrap().to_string())
                .collect();
        let current: Vec<String> = self
            .indexes
            .iter()
            .filter(|(_, (_, going))| !going)
            .map(|(n, _)| n.clone())
            .collect();
        let changes = wanted != current;
        if let Some((busy, _)) = self.indexes.iter().find(|(_, (reads, _))| *reads > 0)
            && changes
        {
            let why = format!(
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table (index {busy} is not ACTIVE)"
            );
            self.refused.push(why.clone());
            return Err(why);
        }
        self.indexes
            .retain(|_, (reads, going)| !(*going && *reads == 0));
        for name in &current {
            if !wanted.contains(name) {
                self.indexes.insert(name.clone(), (self.busy_reads, true));
            }
        }
        for name in wanted {
            self.indexes.entry(name).or_insert((self.busy_reads, false));
        }
        Ok(())
    }

    fn describe(&mut self) -> deployer::converge::model::TableState {
        use deployer::converge::model::{IndexState, IndexStatus, TableState, TableStatus};
        let busy = self.indexes.values().any(|(reads, _)| *reads > 0);
        self.busy_answers += usize::from(busy);
        let indexes = self
            .indexes
            .iter_mut()
            .map(|(name, (reads, going))| {
                let status = match (*reads, *going) {
                    (0, _) => IndexStatus::Active,
                    (_, true) => IndexStatus::Deleting,
                    (_, false) => IndexStatus::Creating,
                };
                let filled = 200 - 200 * (*reads as i64) / (self.busy_reads.max(1) as i64 + 1);
                *reads = reads.saturating_sub(1);
                IndexState {
                    name: name.clone(),
                    status: Some(status),
                    backfilling: !*going && *reads > 0,
                    item_count: Some(filled),
                }
            })
            .collect();
        self.indexes
            .retain(|_, (reads, going)| !(*going && *reads == 0));
        TableState {
            status: Some(TableStatus::Active),
            item_count: Some(200),
            indexes,
        }
    }
}

/// A Lambda function as the fake keeps it: updates take `update_polls` reads to finish, as
/// on AWS, where `LastUpdateStatus` stays `InProgress` for a few seconds.
#[derive(Debug, Clone, Default)]
struct Function {
    sha256: String,
    in_progress_reads: usize,
    /// Reads an update takes; `fail_with`: the update ends `Failed` with this reason.
    update_polls: usize,
    fail_with: Option<String>,
    failed: Option<String>,
    updates: usize,
}

impl Script {
    fn failure(&self, operation: &str) -> Result<(), CloudError> {
        match &*self.fail.borrow() {
            Some((op, e)) if *op == operation => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl Script {
    fn new(states: Vec<Option<Stack>>) -> Script {
        Script {
            states: RefCell::new(states.into()),
            change_set: RefCell::new(Some(ChangeSet {
                id: "cs-1".into(),
                status: "CREATE_COMPLETE".into(),
                reason: None,
                changes: vec![Change {
                    action: "Modify".into(),
                    logical_id: "ApiFunction".into(),
                    resource_type: "AWS::Lambda::Function".into(),
                    replacement: Some("False".into()),
                }],
            })),
            ..Script::default()
        }
    }

    fn call(&self, what: impl Into<String>) {
        self.calls.borrow_mut().push(what.into());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

/// An ETag as S3 makes one for a single-part upload without KMS: the body's MD5, quoted. The
/// fake only needs equal bodies to share it and different ones not to, so its SHA-256 does.
fn etag_of(body: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(body);
    format!(
        "\"{}\"",
        hash[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl Cloud for Script {
    async fn stack(&self, _name: &str) -> Result<Option<Stack>, CloudError> {
        self.failure("stack")?;
        self.stack_calls.set(self.stack_calls.get() + 1);
        let mut states = self.states.borrow_mut();
        Ok(if states.len() > 1 {
            states.pop_front().unwrap()
        } else {
            states[0].clone()
        })
    }
    async fn list_stacks(&self) -> Result<Vec<Stack>, CloudError> {
        Ok(self.states.borrow()[0].iter().cloned().collect())
    }
    async fn delete_object(&self, _bucket: &str, key: &str) -> Result<(), CloudError> {
        self.call(format!("delete_object {key}"));
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
    async fn get_object(&self, _bucket: &str, key: &str) -> Result<Option<Vec<u8>>, CloudError> {
        Ok(self.objects.borrow().get(key).cloned())
    }
    async fn detect_stack_drift(&self, stack_name: &str) -> Result<String, CloudError> {
        self.call(format!("detect_stack_drift {stack_name}"));
        Ok("drift-detection-1".into())
    }
    async fn drift_detection(
        &self,
        detection_id: &str,
    ) -> Result<deployer::converge::model::DriftDetection, CloudError> {
        self.call(format!("drift_detection {detection_id}"));
        let mut states = self.drift_detections.borrow_mut();
        Ok(if states.len() > 1 {
            states.pop_front().unwrap()
        } else {
            states[0].clone()
        })
    }
    async fn resource_drifts(
        &self,
        stack_name: &str,
    ) -> Result<Vec<deployer::converge::model::ResourceDrift>, CloudError> {
        self.call(format!("resource_drifts {stack_name}"));
        Ok(self.resource_drifts.borrow().clone())
    }
    async fn list_objects(&self, _bucket: &str, prefix: &str) -> Result<Vec<String>, CloudError> {
        // ListObjectsV2 returns keys in UTF-8 binary order, as a BTreeMap iterates them.
        Ok(self
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    async fn read_object(&self, _bucket: &str, key: &str) -> Result<Option<Object>, CloudError> {
        Ok(self.objects.borrow().get(key).map(|body| Object {
            etag: etag_of(body),
            body: body.clone(),
        }))
    }
    async fn put_object_if(
        &self,
        _bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> Result<bool, CloudError> {
        self.call(format!("put_object_if {key}"));
        let mut objects = self.objects.borrow_mut();
        let mut concurrent = self.concurrent_writes.borrow_mut();
        if let Some(at) = concurrent.iter().position(|(k, _)| k == key) {
            let (k, other) = concurrent.remove(at);
            objects.insert(k, other);
        }
        let holds = match (condition, objects.get(key)) {
            (Condition::Absent, existing) => existing.is_none(),
            (Condition::Matches(etag), Some(existing)) => etag_of(existing) == *etag,
            (Condition::Matches(_), None) => false,
        };
        if holds {
            objects.insert(key.to_string(), body);
        }
        Ok(holds)
    }
    async fn update_function_code(
        &self,
        function: &str,
        _bucket: &str,
        key: &str,
    ) -> Result<(), CloudError> {
        self.call(format!("update_function_code {function} {key}"));
        let mut functions = self.functions.borrow_mut();
        let Some(f) = functions.get_mut(function) else {
            return Err(CloudError::new(
                "ResourceNotFoundException",
                format!("Function not found: {function}"),
            ));
        };
        // As on AWS: one update at a time.
        if f.in_progress_reads > 0 {
            return Err(CloudError::new(
                "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress for resource",
            ));
        }
        // Lambda hashes the object; the fake's objects are named by their hash.
        let hex = key.rsplit('/').next().unwrap().trim_end_matches(".zip");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        use base64::Engine as _;
        f.sha256 = base64::engine::general_purpose::STANDARD.encode(bytes);
        f.in_progress_reads = f.update_polls;
        f.failed = None;
        f.updates += 1;
        Ok(())
    }
    async fn function_code(&self, function: &str) -> Result<FunctionCode, CloudError> {
        use deployer::converge::model::LastUpdateStatus;
        self.call(format!("function_code {function}"));
        let mut functions = self.functions.borrow_mut();
        let f = functions.get_mut(function).unwrap();
        let last_update = if f.in_progress_reads > 0 {
            f.in_progress_reads -= 1;
            if f.in_progress_reads == 0 {
                f.failed = f.fail_with.clone();
            }
            LastUpdateStatus::InProgress
        } else if f.failed.is_some() {
            LastUpdateStatus::Failed
        } else {
            LastUpdateStatus::Successful
        };
        let reason = f
            .failed
            .clone()
            .filter(|_| last_update == LastUpdateStatus::Failed);
        Ok(FunctionCode {
            sha256: f.sha256.clone(),
            last_update: Some(last_update),
            reason,
        })
    }
    async fn put_stack(&self, r: &StackRequest) -> Result<String, CloudError> {
        self.call(format!("put_stack create={}", r.create));
        *self.token.borrow_mut() = Some(r.token.clone());
        if self.stack_calls_before_change_set.get().is_none() {
            self.stack_calls_before_change_set
                .set(Some(self.stack_calls.get()));
        }
        self.stack_requests.borrow_mut().push(r.clone());
        Ok(ID.into())
    }
    async fn create_change_set(
        &self,
        r: &ChangeSetRequest,
    ) -> Result<(String, String), CloudError> {
        self.failure("create_change_set")?;
        self.stack_calls_before_change_set
            .set(Some(self.stack_calls.get()));
        self.call(format!(
            "create_change_set {}",
            match (r.imports.is_empty(), r.create) {
                (false, _) => "IMPORT",
                (true, true) => "CREATE",
                (true, false) => "UPDATE",
            }
        ));
        if !r.imports.is_empty() {
            // As CloudFormation checks an import: the template holds only the resources
            // imported, each with a DeletionPolicy, and declares the parameters it is given.
            let t: serde_json::Value = serde_json::from_str(&r.template_body).unwrap();
            let resources = t["Resources"].as_object().cloned().unwrap_or_default();
            let imported: Vec<&str> = r.imports.iter().map(|i| i.logical_id.as_str()).collect();
            for (id, resource) in &resources {
                if !imported.contains(&id.as_str()) {
                    return Err(CloudError::new(
                        "ValidationError",
                        format!("As part of the import operation, you cannot modify or add [{id}]"),
                    ));
                }
                if resource["DeletionPolicy"].is_null() {
                    return Err(CloudError::new(
                        "ValidationError",
                        format!(
                            "The following resources to import [{id}] must have DeletionPolicy attribute specified in the template."
                        ),
                    ));
                }
            }
            if imported.iter().any(|id| !resources.contains_key(*id)) || !r.parameters.is_empty() {
                return Err(CloudError::new(
                    "ValidationError",
                    "template and resources to import differ",
                ));
            }
        }
        self.requests.borrow_mut().push(r.clone());
        Ok(("cs-1".into(), ID.into()))
    }
    async fn change_set(&self, _id: &str) -> Result<ChangeSet, CloudError> {
        let scripted = self.change_set.borrow().clone().unwrap();
        // An IMPORT change set lists each resource it brings in.
        if let Some(request) = self
            .requests
            .borrow()
            .last()
            .filter(|r| !r.imports.is_empty())
        {
            return Ok(ChangeSet {
                status: "CREATE_COMPLETE".into(),
                reason: None,
                changes: request
                    .imports
                    .iter()
                    .map(|i| Change {
                        action: "Import".into(),
                        logical_id: i.logical_id.clone(),
                        resource_type: i.resource_type.clone(),
                        replacement: None,
                    })
                    .collect(),
                ..scripted
            });
        }
        let Some(request) = self.requests.borrow().last().filter(|r| r.create).cloned() else {
            return Ok(scripted);
        };
        // As on AWS: a CREATE change set adds every resource of the template, nothing else.
        let template: serde_json::Value = serde_json::from_str(&request.template_body).unwrap();
        let changes = template["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, r)| Change {
                action: "Add".into(),
                logical_id: id.clone(),
                resource_type: r["Type"].as_str().unwrap_or_default().into(),
                replacement: None,
            })
            .collect();
        Ok(ChangeSet {
            changes,
            ..scripted
        })
    }
    async fn execute_change_set(&self, _id: &str, token: &str) -> Result<(), CloudError> {
        assert!(
            token.starts_with("deployer-exec-"),
            "ExecuteChangeSet needs an idempotency token"
        );
        self.call("execute_change_set");
        *self.token.borrow_mut() = Some(token.to_string());
        let template = self.requests.borrow().last().unwrap().template_body.clone();
        if let Err(why) = self.table.borrow_mut().update_to(&template) {
            // The update fails on the table and rolls back, as CloudFormation does.
            let now = SystemTime::now() + Duration::from_millis(10);
            let failed = StackEvent {
                timestamp: now,
                ..event(0.0, "NotesTable", "UPDATE_FAILED", &why)
            };
            self.events.borrow_mut().push(failed);
            *self.states.borrow_mut() = vec![
                stack("UPDATE_ROLLBACK_IN_PROGRESS"),
                stack("UPDATE_ROLLBACK_COMPLETE"),
            ]
            .into();
        }
        Ok(())
    }
    async fn table_state(
        &self,
        table: &str,
    ) -> Result<deployer::converge::model::TableState, CloudError> {
        self.call(format!("describe_table {table}"));
        Ok(self.table.borrow_mut().describe())
    }
    async fn table_names(&self, prefix: &str) -> Result<Vec<String>, CloudError> {
        self.call(format!("list_tables {prefix}"));
        Ok(self
            .tables
            .borrow()
            .iter()
            .filter(|t| t.name.starts_with(prefix))
            .map(|t| t.name.clone())
            .collect())
    }
    async fn table_summary(
        &self,
        name: &str,
    ) -> Result<deployer::converge::model::TableSummary, CloudError> {
        self.call(format!("describe_table {name}"));
        self.tables
            .borrow()
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| {
                CloudError::new(
                    "ResourceNotFoundException",
                    format!("Table not found: {name}"),
                )
            })
    }
    async fn time_to_live(
        &self,
        table: &str,
    ) -> Result<Option<deployer::converge::model::TimeToLiveStatus>, CloudError> {
        self.call(format!("describe_time_to_live {table}"));
        Ok(self.ttl_status.borrow().clone())
    }
    async fn delete_change_set(&self, _id: &str) -> Result<(), CloudError> {
        self.call("delete_change_set");
        Ok(())
    }
    async fn delete_stack(
        &self,
        name: &str,
        _token: &str,
        express: bool,
    ) -> Result<(), CloudError> {
        self.call(match express {
            true => format!("delete_stack {name} express"),
            false => format!("delete_stack {name}"),
        });
        Ok(())
    }
    async fn cancel_update_stack(&self, name: &str, _token: &str) -> Result<(), CloudError> {
        self.call(format!("cancel_update_stack {name}"));
        Ok(())
    }
    async fn continue_update_rollback(&self, name: &str, _token: &str) -> Result<(), CloudError> {
        self.call(format!("continue_update_rollback {name}"));
        Ok(())
    }
    async fn set_termination_protection(&self, _name: &str, on: bool) -> Result<(), CloudError> {
        self.call(format!("set_termination_protection {on}"));
        Ok(())
    }
    async fn events(
        &self,
        _stack_id: &str,
        since: SystemTime,
    ) -> Result<Vec<StackEvent>, CloudError> {
        if self.tagged_paced.get() {
            let calls = self.events_calls.get() + 1;
            self.events_calls.set(calls);
            let token = self.token.borrow().clone();
            let mut events: Vec<StackEvent> = self.events.borrow()
                [..calls.min(self.events.borrow().len())]
                .iter()
                .map(|e| StackEvent {
                    token: token.clone(),
                    ..e.clone()
                })
                .collect();
            events.reverse(); // newest first, as CloudFormation lists them
            return Ok(events);
        }
        if self.stack_calls.get() < self.reveal_after.get() {
            return Ok(Vec::new());
        }
        Ok(self
            .events
            .borrow()
            .iter()
            .filter(|e| e.timestamp >= since)
            .cloned()
            .collect())
    }
    async fn resources(&self, stack_name: &str) -> Result<Vec<Resource>, CloudError> {
        if stack_name == "deployer-bootstrap" {
            return Ok(["PublicSubnet1", "PublicSubnet2"]
                .iter()
                .map(|id| Resource {
                    logical_id: id.to_string(),
                    physical_id: format!("subnet-{}", id.len()),
                    resource_type: "AWS::EC2::Subnet".into(),
                })
                .collect());
        }
        let mut resources = vec![Resource {
            logical_id: "NotesTable".into(),
            physical_id: "notes-dev-NotesTable-ABC".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
        }];
        resources.extend(self.extra_resources.borrow().iter().cloned());
        Ok(resources)
    }
    async fn deployed_template(&self, _stack_name: &str) -> Result<String, CloudError> {
        self.call("get_template");
        Ok(self.deployed.borrow().clone().unwrap_or_else(|| {
            r#"{"Resources":{"NotesTable":{"Type":"AWS::DynamoDB::Table","DeletionPolicy":"RetainExceptOnCreate"}}}"#.into()
        }))
    }
    fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("https://{bucket}.s3.eu-west-1.amazonaws.com/{key}")
    }
    async fn object_exists(&self, _bucket: &str, key: &str) -> Result<bool, CloudError> {
        // Artifacts are there already; templates are new.
        Ok(!key.starts_with("templates/"))
    }
    async fn put_object(
        &self,
        _b: &str,
        k: &str,
        body: Vec<u8>,
        _sha: &[u8; 32],
    ) -> Result<(), CloudError> {
        self.call(format!("put_object {k}"));
        self.written
            .borrow_mut()
            .push((k.to_string(), body.clone()));
        self.objects.borrow_mut().insert(k.to_string(), body);
        Ok(())
    }
    async fn load_balancer_dns(&self, _arn: &str) -> Result<Option<String>, CloudError> {
        Ok(None)
    }
    async fn caller_arn(&self) -> Result<String, CloudError> {
        self.call("caller_arn");
        Ok("arn:aws:iam::123456789012:user/ci".into())
    }
    fn region(&self) -> String {
        "eu-west-1".into()
    }
    async fn role_arn(&self, name: &str) -> Result<String, CloudError> {
        self.call(format!("role_arn {name}"));
        // IAM Identity Center's roles live under a path the session ARN does not carry.
        Ok(match name.strip_prefix("AWSReservedSSO_") {
            Some(_) => format!(
                "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/{name}"
            ),
            None => format!("arn:aws:iam::123456789012:role/{name}"),
        })
    }
    async fn simulate(
        &self,
        principal: &str,
        probe: &deployer::converge::preflight::Probe,
    ) -> Result<Vec<deployer::converge::preflight::Evaluation>, CloudError> {
        use deployer::converge::preflight::{Decision, Evaluation};
        self.failure("simulate")?;
        self.call(format!("simulate {principal}"));
        let denied = self.denied.borrow();
        Ok(probe
            .actions
            .iter()
            .map(|a| Evaluation {
                action: a.clone(),
                decision: if denied.contains(a) {
                    Decision::ImplicitDeny
                } else {
                    Decision::Allowed
                },
                missing_context: Vec::new(),
            })
            .collect())
    }
    async fn availability_zones(&self) -> Result<Vec<String>, CloudError> {
        self.call("availability_zones");
        Ok(vec![
            "eu-west-1c".into(),
            "eu-west-1a".into(),
            "eu-west-1b".into(),
        ])
    }
    async fn forward(
        &self,
        forwarder: &deployer::converge::model::Forwarder,
        groups: &[(String, u32)],
    ) -> Result<(), CloudError> {
        use deployer::converge::model::Forwarder;
        let (Forwarder::Rule(arn) | Forwarder::Listener(arn)) = forwarder;
        // ELB API Reference, TargetGroupTuple: a weight is 0 to 999.
        if groups.iter().any(|(_, w)| *w > 999) {
            return Err(CloudError::new("ValidationError", "weight out of range"));
        }
        let mut forwarders = self.forwarders.borrow_mut();
        let Some(current) = forwarders.get_mut(arn) else {
            return Err(CloudError::new("RuleNotFound", format!("{arn} not found")));
        };
        *current = groups.to_vec();
        self.moves
            .borrow_mut()
            .push((arn.clone(), groups.get(1).map_or(0, |g| g.1)));
        Ok(())
    }
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<deployer::converge::model::AlarmState>, CloudError> {
        use deployer::converge::model::AlarmStatus;
        let call = self.alarm_calls.get() + 1;
        self.alarm_calls.set(call);
        if let Some((at, interrupts)) = &*self.interrupt_at.borrow()
            && *at == call
        {
            interrupts.bump();
        }
        let mut alarms = self.alarms.borrow_mut();
        if let Some((at, name, reason)) = &*self.alarm_fires.borrow()
            && *at == call
            && let Some(alarm) = alarms.iter_mut().find(|a| a.name == *name)
        {
            alarm.status = AlarmStatus::Alarm;
            alarm.reason = reason.clone();
        }
        Ok(alarms
            .iter()
            .filter(|a| names.contains(&a.name))
            .cloned()
            .collect())
    }
    async fn subnet_zones(&self, subnet_ids: &[String]) -> Result<Vec<String>, CloudError> {
        self.call(format!("subnet_zones {}", subnet_ids.join(",")));
        Ok(subnet_ids
            .iter()
            .enumerate()
            .map(|(i, _)| ["eu-west-1c", "eu-west-1a"][i % 2].to_string())
            .collect())
    }
}

#[derive(Default)]
struct Recorder {
    seen: RefCell<Vec<Progress>>,
    /// What `confirm` answers; `None`: yes.
    answer: std::cell::Cell<Option<Confirmation>>,
}

impl Ui for Recorder {
    fn progress(&self, progress: Progress) {
        self.seen.borrow_mut().push(progress);
    }
    fn confirm(&self, _question: &str) -> Confirmation {
        self.answer.get().unwrap_or(Confirmation::Yes)
    }
}

impl Recorder {
    fn events_shown(&self) -> usize {
        self.seen
            .borrow()
            .iter()
            .filter(|p| matches!(p, Progress::Event { .. }))
            .count()
    }

    fn steps(&self) -> Vec<String> {
        self.seen
            .borrow()
            .iter()
            .filter_map(|p| match p {
                Progress::Step(s) | Progress::Warning(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The template the scripted deployments submit: a function and a retained table.
const TEMPLATE: &str = r#"{"Resources":{"ApiFunction":{"Type":"AWS::Lambda::Function","Properties":{}},"NotesTable":{"Type":"AWS::DynamoDB::Table","DeletionPolicy":"RetainExceptOnCreate","Properties":{"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}}}}"#;

fn deployment() -> Deployment {
    Deployment {
        stack_name: NAME.into(),
        template_body: TEMPLATE.into(),
        parameters: BTreeMap::new(),
        tags: BTreeMap::new(),
        termination_protection: false,
        refresh_tags: false,
        bucket: Some("artifacts".into()),
        check_permissions: false,
        revert_drift: false,
        express: false,
    }
}

const FAST: Poll = Poll {
    first: Duration::from_millis(1),
    max: Duration::from_millis(2),
    steady: Duration::from_millis(2),
    near_end: Duration::from_millis(1),
};

async fn run(script: &Script, ui: &Recorder) -> Result<Outcome, deployer::exit::Error> {
    Engine::new(script, ui)
        .with_poll(FAST)
        .deploy(
            &deployment(),
            Mode::Apply {
                yes: true,
                allow_data_loss: false,
            },
        )
        .await
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

mod express {
    use super::*;

    fn express() -> Deployment {
        Deployment {
            express: true,
            ..deployment()
        }
    }

    #[tokio::test]
    async fn a_failed_express_create_is_deleted_and_created_again_by_the_next_up() {
        // Without rollback, a failed create stays CREATE_FAILED.
        let script = Script::new(vec![
            None,
            stack("CREATE_IN_PROGRESS"),
            stack("CREATE_FAILED"),
        ]);
        let ui = Recorder::default();
        let engine = Engine::new(&script, &ui).with_poll(FAST);
        engine.deploy(&express(), apply_yes()).await.unwrap_err();
        assert!(
            script.stack_requests.borrow()[0].express,
            "sent in express mode"
        );
        // The next up: nothing to keep in it, so it is deleted, then created.
        *script.states.borrow_mut() = vec![
            stack("CREATE_FAILED"),
            stack("DELETE_IN_PROGRESS"),
            stack("DELETE_COMPLETE"),
            None,
            stack("CREATE_IN_PROGRESS"),
            stack("CREATE_COMPLETE"),
        ]
        .into();
        let outcome = engine.deploy(&express(), apply_yes()).await.unwrap();
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        let calls = script.calls();
        assert!(calls.contains(&format!("delete_stack {ID}")), "{calls:?}");
        assert_eq!(
            calls
                .iter()
                .filter(|c| *c == "put_stack create=true")
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn a_failed_express_update_is_updated_again_by_the_next_up() {
        // Without rollback, a failed update stays UPDATE_FAILED: the next up updates it.
        let script = Script::new(vec![
            stack("UPDATE_FAILED"),
            stack("UPDATE_IN_PROGRESS"),
            stack("UPDATE_COMPLETE"),
        ]);
        let ui = Recorder::default();
        let outcome = Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy(&express(), apply_yes())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        assert!(script.requests.borrow()[0].express);
        assert!(script.calls().contains(&"execute_change_set".to_string()));
    }

    #[tokio::test]
    async fn a_replacement_under_express_runs_in_standard_mode() {
        let script = Script::new(vec![
            stack("UPDATE_COMPLETE"),
            stack("UPDATE_IN_PROGRESS"),
            stack("UPDATE_COMPLETE"),
        ]);
        script.change_set.borrow_mut().as_mut().unwrap().changes[0].replacement =
            Some("True".into());
        let ui = Recorder::default();
        let outcome = Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy(&express(), apply_yes())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        let modes: Vec<bool> = script.requests.borrow().iter().map(|r| r.express).collect();
        assert_eq!(modes, [true, false], "made again in standard mode");
        assert_eq!(
            script.calls(),
            [
                "get_template",
                "create_change_set UPDATE",
                "delete_change_set",
                "create_change_set UPDATE",
                "execute_change_set",
                "put_object deployed/notes-dev.json"
            ]
        );
        assert!(
            ui.steps()
                .iter()
                .any(|s| s.contains("replaces ApiFunction") && s.contains("standard mode")),
            "{:?}",
            ui.steps()
        );
    }
}

#[tokio::test]
async fn rollback_complete_is_deleted_then_created() {
    let script = Script::new(vec![
        stack("ROLLBACK_COMPLETE"),  // deploy's look, which settle starts from
        stack("DELETE_IN_PROGRESS"), // watching the delete
        stack("DELETE_COMPLETE"),
        None,                        // settle again: gone
        stack("CREATE_IN_PROGRESS"), // watching the execution
        stack("CREATE_COMPLETE"),
    ]);
    let ui = Recorder::default();
    let outcome = run(&script, &ui).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    assert_eq!(
        script.calls(),
        // A create nobody reviews (`--yes`) needs no change set.
        [
            format!("delete_stack {ID}"),
            "put_stack create=true".into(),
            "put_object deployed/notes-dev.json".into()
        ]
    );
    assert!(
        ui.steps()[0].contains("ROLLBACK_COMPLETE after a failed creation"),
        "{:?}",
        ui.steps()
    );
}

#[tokio::test]
async fn a_settled_stack_is_described_once_before_its_change_set() {
    for first in [None, stack("UPDATE_COMPLETE")] {
        let script = Script::new(vec![
            first.clone(),
            stack("UPDATE_IN_PROGRESS"),
            stack("UPDATE_COMPLETE"),
        ]);
        run(&script, &Recorder::default()).await.unwrap();
        assert_eq!(
            script.stack_calls_before_change_set.get(),
            Some(1),
            "{first:?}"
        );
    }
}

#[tokio::test]
async fn update_rollback_failed_is_continued_then_updated() {
    let script = Script::new(vec![
        stack("UPDATE_ROLLBACK_FAILED"),
        stack("UPDATE_ROLLBACK_IN_PROGRESS"),
        stack("UPDATE_ROLLBACK_COMPLETE"),
        stack("UPDATE_ROLLBACK_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
    ]);
    let ui = Recorder::default();
    run(&script, &ui).await.unwrap();
    assert_eq!(
        script.calls(),
        [
            format!("continue_update_rollback {NAME}"),
            "get_template".into(),
            "create_change_set UPDATE".into(),
            "execute_change_set".into(),
            "put_object deployed/notes-dev.json".into()
        ]
    );
}

#[tokio::test]
async fn an_update_in_progress_is_waited_for_with_its_events_shown() {
    let script = Script::new(vec![
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_COMPLETE"),
    ]);
    script
        .events
        .borrow_mut()
        .push(event(now() + 1.0, "NotesTable", "UPDATE_COMPLETE", ""));
    script.reveal_after.set(2);
    let ui = Recorder::default();
    run(&script, &ui).await.unwrap();
    assert!(
        ui.steps()[0].contains("is UPDATE_IN_PROGRESS: waiting for it to settle"),
        "{:?}",
        ui.steps()
    );
    let shown = ui.events_shown();
    assert!(
        shown >= 1,
        "the running operation's events are shown: {:?}",
        ui.seen.borrow()
    );
    assert_eq!(
        script.calls(),
        [
            "get_template",
            "create_change_set UPDATE",
            "execute_change_set",
            "put_object deployed/notes-dev.json"
        ]
    );
}

/// What AWS's change set says of a table whose update replaces it.
fn table_replaced() -> Change {
    Change {
        action: "Modify".into(),
        logical_id: "NotesTable".into(),
        resource_type: "AWS::DynamoDB::Table".into(),
        replacement: Some("True".into()),
    }
}

#[tokio::test]
async fn replacements_are_shown_as_such() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    script.change_set.borrow_mut().as_mut().unwrap().changes = vec![table_replaced()];
    let ui = Recorder::default();
    let outcome = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&deployment(), Mode::Plan)
        .await
        .unwrap();
    let Outcome::Planned { changes } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(changes[0].marker(), '!');
    assert_eq!(
        deployer::ui::change_lines(&changes),
        ["! NotesTable  AWS::DynamoDB::Table  (replaced)"]
    );
    assert!(
        ui.steps().iter().any(|s| s.starts_with(
            "`up` would refuse these changes, which destroy data, without --allow-data-loss:\n  NotesTable (AWS::DynamoDB::Table): replaced"
        )),
        "the data-loss warning: {:?}",
        ui.steps()
    );
    assert_eq!(
        script.calls(),
        [
            "get_template",
            "create_change_set UPDATE",
            "delete_change_set"
        ],
        "plan executes nothing"
    );
}

#[tokio::test]
async fn a_failed_create_reports_the_root_cause_not_the_cancellations() {
    let t = now() + 1.0;
    let script = Script::new(vec![
        None,
        stack("ROLLBACK_IN_PROGRESS"),
        stack("ROLLBACK_COMPLETE"),
    ]);
    *script.events.borrow_mut() = vec![
        event(t + 6.0, NAME, "ROLLBACK_COMPLETE", ""),
        event(
            t + 5.0,
            NAME,
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [ApiRole, NotesTable].",
        ),
        event(
            t + 4.0,
            "ApiRole",
            "CREATE_FAILED",
            "Resource creation cancelled",
        ),
        event(
            t + 3.0,
            "NotesTable",
            "CREATE_FAILED",
            "Table notes already exists",
        ),
        event(
            t + 2.0,
            "ApiLogGroup",
            "CREATE_FAILED",
            "Resource creation cancelled",
        ),
        event(t + 1.0, NAME, "CREATE_IN_PROGRESS", "User Initiated"),
    ];
    let ui = Recorder::default();
    let error = run(&script, &ui).await.unwrap_err();
    assert_eq!(error.code, deployer::exit::Code::Failed);
    assert_eq!(
        error.message,
        "NotesTable (AWS::DynamoDB::Table) CREATE_FAILED: Table notes already exists\nnotes-dev ended in ROLLBACK_COMPLETE"
    );
}

#[tokio::test]
async fn delete_failed_stops_and_names_the_resources() {
    let script = Script::new(vec![stack("DELETE_FAILED")]);
    *script.events.borrow_mut() = vec![
        event(
            3.0,
            NAME,
            "DELETE_FAILED",
            "The following resource(s) failed to delete: [NotesTable].",
        ),
        event(
            2.0,
            "NotesTable",
            "DELETE_FAILED",
            "Table has deletion protection enabled",
        ),
        event(1.0, "ApiFunction", "DELETE_COMPLETE", ""),
    ];
    let ui = Recorder::default();
    let error = run(&script, &ui).await.unwrap_err();
    assert_eq!(error.code, deployer::exit::Code::Failed);
    assert!(
        error
            .message
            .starts_with("notes-dev: the stack is DELETE_FAILED"),
        "{}",
        error.message
    );
    assert!(
        error.message.ends_with(
            "\n  NotesTable (AWS::DynamoDB::Table): Table has deletion protection enabled"
        ),
        "{}",
        error.message
    );
    assert!(
        script.calls().is_empty(),
        "nothing is attempted on a DELETE_FAILED stack"
    );
}

#[tokio::test]
async fn an_equal_digest_creates_no_change_set() {
    let mut current = stack("UPDATE_COMPLETE").unwrap();
    current
        .tags
        .insert(DIGEST_TAG.into(), deployment().digest());
    let script = Script::new(vec![Some(current)]);
    let ui = Recorder::default();
    let outcome = run(&script, &ui).await.unwrap();
    assert!(matches!(outcome, Outcome::NoChanges { .. }));
    assert!(script.calls().is_empty(), "{:?}", script.calls());
}

#[tokio::test]
async fn no_changes_records_the_digest_and_deletes_the_change_set() {
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_COMPLETE"),
    ]);
    *script.change_set.borrow_mut() = Some(ChangeSet {
        id: "cs-1".into(),
        status: "FAILED".into(),
        reason: Some("No updates are to be performed.".into()),
        changes: vec![],
    });
    let ui = Recorder::default();
    let outcome = run(&script, &ui).await.unwrap();
    assert!(matches!(outcome, Outcome::NoChanges { .. }));
    assert_eq!(
        script.calls(),
        // The digest is recorded in the bucket: no stack update (its tags would propagate).
        [
            "get_template",
            "create_change_set UPDATE",
            "delete_change_set",
            "put_object deployed/notes-dev.json"
        ]
    );
    let record: serde_json::Value =
        serde_json::from_slice(&script.objects.borrow()["deployed/notes-dev.json"]).unwrap();
    assert_eq!(
        record,
        serde_json::json!({ "stack_id": ID, "digest": deployment().digest() })
    );
    // Recorded: the next run is a no-op without a change set.
    let again = run(&script, &ui).await.unwrap();
    assert!(matches!(again, Outcome::NoChanges { .. }));
    assert_eq!(script.calls().len(), 4, "{:?}", script.calls());
}

#[tokio::test]
async fn termination_protection_is_set_after_creating_a_protected_stack() {
    let script = Script::new(vec![
        None,
        stack("CREATE_IN_PROGRESS"),
        stack("CREATE_COMPLETE"),
    ]);
    let ui = Recorder::default();
    let mut protected = deployment();
    protected.termination_protection = true;
    let outcome = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(
            &protected,
            Mode::Apply {
                yes: true,
                allow_data_loss: false,
            },
        )
        .await
        .unwrap();
    let Outcome::Applied { stack, .. } = outcome else {
        panic!()
    };
    assert!(stack.termination_protection);
    let calls = script.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        [
            "set_termination_protection true",
            "put_object deployed/notes-dev.json"
        ]
    );
}

#[tokio::test]
async fn teardown_lists_retained_tables_and_refuses_protected_envs() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    let ui = Recorder::default();
    let engine = Engine::new(&script, &ui).with_poll(FAST);
    let refused = engine.teardown(NAME, true, true).await.unwrap_err();
    assert_eq!(refused.code, deployer::exit::Code::Usage);
    assert!(script.calls().is_empty());

    // With --yes, the one description serves the checks and the settling.
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("DELETE_IN_PROGRESS"),
        stack("DELETE_COMPLETE"),
    ]);
    let engine = Engine::new(&script, &ui).with_poll(FAST);
    let done = engine.teardown(NAME, false, true).await.unwrap();
    assert_eq!(
        done,
        Teardown::Deleted {
            retained_tables: vec!["notes-dev-NotesTable-ABC".into()]
        }
    );
    assert_eq!(
        script.calls(),
        ["get_template".to_string(), format!("delete_stack {ID}")]
    );
}

fn apply_yes() -> Mode {
    Mode::Apply {
        yes: true,
        allow_data_loss: false,
    }
}

fn changes_shown(ui: &Recorder) -> Vec<Vec<Change>> {
    ui.seen
        .borrow()
        .iter()
        .filter_map(|p| match p {
            Progress::Changes { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_create_change_set_lists_only_additions() {
    let script = Script::new(vec![
        None,
        stack("CREATE_IN_PROGRESS"),
        stack("CREATE_COMPLETE"),
    ]);
    let ui = Recorder::default();
    run(&script, &ui).await.unwrap();
    let shown = changes_shown(&ui);
    assert_eq!(shown.len(), 1);
    let actions: Vec<(&str, &str)> = shown[0]
        .iter()
        .map(|c| (c.action.as_str(), c.logical_id.as_str()))
        .collect();
    assert_eq!(actions, [("Add", "ApiFunction"), ("Add", "NotesTable")]);
    assert!(
        !script.calls().contains(&"get_template".to_string()),
        "a create reads no deployed template"
    );
}

#[tokio::test]
async fn a_table_replacement_reported_by_aws_exits_4_and_changes_nothing() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    script.change_set.borrow_mut().as_mut().unwrap().changes = vec![table_replaced()];
    // The deployed table has the same keys: only AWS's `Replacement: True` says it is replaced.
    *script.deployed.borrow_mut() = Some(TEMPLATE.into());
    let ui = Recorder::default();
    let err = run(&script, &ui).await.unwrap_err();
    assert_eq!(err.code, deployer::exit::Code::DataLoss, "{err}");
    assert!(
        err.message
            .contains("NotesTable (AWS::DynamoDB::Table): replaced: the new one starts empty"),
        "{err}"
    );
    assert_eq!(
        script.calls(),
        [
            "get_template",
            "create_change_set UPDATE",
            "delete_change_set"
        ],
        "nothing executed"
    );
}

fn with_indexes(names: &[&str]) -> String {
    let indexes: Vec<serde_json::Value> = names
        .iter()
        .map(|n| serde_json::json!({ "IndexName": n, "KeySchema": [{ "AttributeName": n, "KeyType": "HASH" }], "Projection": { "ProjectionType": "ALL" } }))
        .collect();
    let mut t: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
    let props = &mut t["Resources"]["NotesTable"]["Properties"];
    props["AttributeDefinitions"] = std::iter::once("pk")
        .chain(names.iter().copied())
        .map(|n| serde_json::json!({ "AttributeName": n, "AttributeType": "S" }))
        .collect();
    if !indexes.is_empty() {
        props["GlobalSecondaryIndexes"] = serde_json::json!(indexes);
    }
    t.to_string()
}

#[tokio::test]
async fn two_new_indexes_are_applied_in_two_updates() {
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
    ]);
    *script.deployed.borrow_mut() = Some(with_indexes(&[]));
    let ui = Recorder::default();
    let wanted = Deployment {
        template_body: with_indexes(&["a", "b"]),
        ..deployment()
    };
    let outcome = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&wanted, apply_yes())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let submitted: Vec<usize> = script
        .requests
        .borrow()
        .iter()
        .map(|r| {
            let t: serde_json::Value = serde_json::from_str(&r.template_body).unwrap();
            t["Resources"]["NotesTable"]["Properties"]["GlobalSecondaryIndexes"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert_eq!(submitted, [1, 2], "one index more per update");
    assert!(
        script
            .requests
            .borrow()
            .iter()
            .all(|r| !r.tags.contains_key(DIGEST_TAG)),
        "stack tags carry no digest: they would propagate to every resource"
    );
    let digests: Vec<String> = script
        .written
        .borrow()
        .iter()
        .filter(|(k, _)| k == "deployed/notes-dev.json")
        .map(|(_, body)| {
            let record: serde_json::Value = serde_json::from_slice(body).unwrap();
            record["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0], format!("{}-step-1-of-2", wanted.digest()));
    assert_eq!(
        digests[1],
        wanted.digest(),
        "only the last step records the digest"
    );
    // The TTL is not enabled anew: no DescribeTimeToLive. Each update first reads the table
    // (its indexes are ACTIVE at once here).
    assert_eq!(
        script.calls(),
        [
            "get_template",
            "describe_table notes-dev-NotesTable-ABC",
            "create_change_set UPDATE",
            "execute_change_set",
            "put_object deployed/notes-dev.json",
            "describe_table notes-dev-NotesTable-ABC",
            "create_change_set UPDATE",
            "execute_change_set",
            "put_object deployed/notes-dev.json"
        ]
    );
    assert!(
        ui.steps()
            .iter()
            .any(|s| s.contains("takes 2 updates") && s.contains("NotesTable: create index b")),
        "{:?}",
        ui.steps()
    );
}

/// The table of `with_indexes(names)`, each index ACTIVE, whose new indexes stay busy for
/// `busy_reads` DescribeTable calls.
fn fake_table(names: &[&str], busy_reads: usize) -> FakeTable {
    FakeTable {
        indexes: names.iter().map(|n| (n.to_string(), (0, false))).collect(),
        busy_reads,
        ..FakeTable::default()
    }
}

#[tokio::test]
async fn each_index_update_waits_until_the_table_and_its_indexes_are_active() {
    // Another change (the function) beside two new indexes, on a table whose index `a`
    // an earlier run left CREATING.
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
    ]);
    *script.deployed.borrow_mut() = Some(with_indexes(&["a"]));
    let mut table = fake_table(&["a"], 4);
    table.indexes.insert("a".into(), (3, false));
    *script.table.borrow_mut() = table;
    let mut wanted: serde_json::Value =
        serde_json::from_str(&with_indexes(&["a", "b", "c"])).unwrap();
    wanted["Resources"]["ApiFunction"]["Properties"]["MemorySize"] = serde_json::json!(512);
    let wanted = Deployment {
        template_body: wanted.to_string(),
        ..deployment()
    };
    let ui = Recorder::default();
    let outcome = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&wanted, apply_yes())
        .await;
    let table = script.table.borrow().clone();
    assert_eq!(
        table.refused,
        Vec::<String>::new(),
        "no update while an index was busy"
    );
    assert!(
        matches!(outcome, Ok(Outcome::Applied { .. })),
        "{outcome:?}"
    );
    // The other change first, then one index per update.
    let submitted: Vec<(Vec<String>, serde_json::Value)> = script
        .requests
        .borrow()
        .iter()
        .map(|r| {
            let t: serde_json::Value = serde_json::from_str(&r.template_body).unwrap();
            let names = t["Resources"]["NotesTable"]["Properties"]["GlobalSecondaryIndexes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["IndexName"].as_str().unwrap().to_string())
                .collect();
            (
                names,
                t["Resources"]["ApiFunction"]["Properties"]["MemorySize"].clone(),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let memory = serde_json::json!(512);
    assert_eq!(
        submitted,
        [
            (s(&["a"]), memory.clone()),
            (s(&["a", "b"]), memory.clone()),
            (s(&["a", "b", "c"]), memory)
        ]
    );
    // It waited before the first update (a left CREATING) and between the index updates.
    let calls = script.calls();
    let executes: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "execute_change_set")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(executes.len(), 3);
    assert!(
        calls[..executes[0]]
            .iter()
            .any(|c| c.starts_with("describe_table notes-dev-NotesTable-ABC")),
        "{calls:?}"
    );
    assert!(
        table.busy_answers >= 3 + 4,
        "{} busy answers",
        table.busy_answers
    );
    let waits: Vec<String> = ui
        .seen
        .borrow()
        .iter()
        .filter_map(|p| match p {
            Progress::TableBusy {
                table,
                busy,
                elapsed,
                ..
            } => Some(deployer::ui::table_wait_line(table, busy, *elapsed)),
            _ => None,
        })
        .collect();
    assert!(
        waits.iter().any(
            |w| w.starts_with("waiting for index b of NotesTable to backfill: ")
                && w.contains(" % (")
        ),
        "{waits:?}"
    );
    assert!(
        ui.steps().iter().any(|s| s.contains("takes 3 updates")
            && s.contains("update 1: everything but the index changes")
            && s.contains("update 3: NotesTable: create index c")),
        "{:?}",
        ui.steps()
    );
}

#[tokio::test]
async fn without_the_wait_the_fake_fails_the_update_as_aws_does() {
    // The fake itself: an index update executed while another index backfills fails.
    let mut table = fake_table(&[], 2);
    table.update_to(&with_indexes(&["a"])).unwrap();
    let err = table.update_to(&with_indexes(&["a", "b"])).unwrap_err();
    assert!(err.contains("Only 1 online index"), "{err}");
    table.describe();
    table.describe();
    table.update_to(&with_indexes(&["a", "b"])).unwrap();
}

#[tokio::test]
async fn enabling_ttl_while_it_is_still_being_disabled_is_refused_before_any_change_set() {
    use deployer::converge::model::TimeToLiveStatus;
    let with_ttl = |enabled: bool| {
        let mut t: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
        t["Resources"]["NotesTable"]["Properties"]["TimeToLiveSpecification"] =
            serde_json::json!({ "AttributeName": "exp", "Enabled": enabled });
        t.to_string()
    };
    for (status, refused) in [
        (TimeToLiveStatus::Disabling, true),
        (TimeToLiveStatus::Disabled, false),
    ] {
        let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
        *script.deployed.borrow_mut() = Some(with_ttl(false));
        *script.ttl_status.borrow_mut() = Some(status.clone());
        let wanted = Deployment {
            template_body: with_ttl(true),
            ..deployment()
        };
        let ui = Recorder::default();
        let result = Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy(&wanted, Mode::Plan)
            .await;
        let calls = script.calls();
        assert!(
            calls.contains(&"describe_time_to_live notes-dev-NotesTable-ABC".to_string()),
            "{calls:?}"
        );
        match result {
            Err(err) => {
                assert!(refused, "{status:?}: {err}");
                assert_eq!(err.code, deployer::exit::Code::Usage, "{err}");
                assert!(err.message.contains("TTL is still being disabled"), "{err}");
                assert!(err.message.contains("retry"), "{err}");
                assert!(
                    !calls.iter().any(|c| c.starts_with("create_change_set")),
                    "{calls:?}"
                );
            }
            Ok(_) => assert!(!refused, "{status:?} must be refused"),
        }
    }
}

#[tokio::test]
async fn an_update_aws_would_refuse_is_refused_before_any_change_set() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    *script.deployed.borrow_mut() = Some(with_indexes(&["a"]));
    let mut edited: serde_json::Value = serde_json::from_str(&with_indexes(&["a"])).unwrap();
    edited["Resources"]["NotesTable"]["Properties"]["GlobalSecondaryIndexes"][0]["Projection"] =
        serde_json::json!({ "ProjectionType": "KEYS_ONLY" });
    let wanted = Deployment {
        template_body: edited.to_string(),
        ..deployment()
    };
    let ui = Recorder::default();
    let err = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&wanted, apply_yes())
        .await
        .unwrap_err();
    assert_eq!(err.code, deployer::exit::Code::Usage, "{err}");
    assert!(
        err.message
            .contains("index `a` changes its keys or projection"),
        "{err}"
    );
    assert_eq!(script.calls(), ["get_template"], "no change set");
}

#[tokio::test]
async fn a_template_over_51200_bytes_is_passed_by_url() {
    let script = Script::new(vec![
        None,
        stack("CREATE_IN_PROGRESS"),
        stack("CREATE_COMPLETE"),
    ]);
    let mut big: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
    big["Description"] = serde_json::json!("x".repeat(52_000));
    let wanted = Deployment {
        template_body: big.to_string(),
        ..deployment()
    };
    let ui = Recorder::default();
    Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&wanted, apply_yes())
        .await
        .unwrap();
    // A create nobody reviews goes without a change set: CreateStack takes the URL.
    let request = script.stack_requests.borrow()[0].clone();
    let url = request.template_url.expect("sent by URL");
    assert!(
        url.starts_with("https://artifacts.s3.eu-west-1.amazonaws.com/templates/notes-dev/")
            && url.ends_with(".json"),
        "{url}"
    );
    let key = url.split_once(".com/").unwrap().1;
    assert_eq!(script.calls()[0], format!("put_object {key}"));
    // A small one goes inline.
    let script = Script::new(vec![None, stack("CREATE_COMPLETE")]);
    run(&script, &Recorder::default()).await.unwrap();
    assert_eq!(script.stack_requests.borrow()[0].template_url, None);
}

mod retained {
    use super::*;
    use deployer::converge::engine::Confirmation;
    use deployer::converge::model::TableSummary;
    use deployer::converge::retained::RetainedChoice;

    const SPEC: &str = "app: notes\nfunctions:\n  api:\n    path: x\n    tables: { notes: read_write }\ntables:\n  notes:\n    partition_key: { name: pk, type: S }\n";

    /// The spec's deployment, and the table its env's earlier stack retained.
    fn setup() -> (deployer::spec::Spec, Deployment, Script) {
        let spec = deployer::spec::parse(SPEC, "s.yaml").unwrap();
        let template = deployer::render::app(&spec, deployer::render::Options::default()).unwrap();
        let deployment = Deployment {
            template_body: template.body(),
            ..deployment()
        };
        let script = Script::new(vec![None]);
        *script.tables.borrow_mut() = vec![TableSummary {
            name: "notes-dev-NotesTable-OLD123".into(),
            tags: [
                ("deployer:app", "notes"),
                ("deployer:env", "dev"),
                ("deployer:table", "notes"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            key: vec![("pk".into(), "S".into())],
            size_bytes: Some(2_000_000),
            item_count: Some(500),
        }];
        (spec, deployment, script)
    }

    async fn adopt(
        spec: &deployer::spec::Spec,
        deployment: &Deployment,
        script: &Script,
        ui: &Recorder,
        mode: Mode,
        choice: RetainedChoice,
    ) -> Result<Option<Stack>, deployer::exit::Error> {
        let engine = Engine::new(script, ui).with_poll(FAST);
        deployer::converge::adopt_retained(&engine, script, spec, deployment, mode, choice, None)
            .await
    }

    #[tokio::test]
    async fn without_a_choice_a_run_nobody_can_ask_stops_naming_the_tables_and_the_flags() {
        let (spec, deployment, script) = setup();
        let ui = Recorder::default();
        ui.answer.set(Some(Confirmation::NotInteractive));
        let err = adopt(
            &spec,
            &deployment,
            &script,
            &ui,
            apply_yes(),
            RetainedChoice::Ask,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, deployer::exit::Code::Usage, "{err}");
        for part in [
            "notes → notes-dev-NotesTable-OLD123 (500 items, 2.0 MB)",
            "--adopt-retained",
            "--fresh-tables",
        ] {
            assert!(err.message.contains(part), "{part}: {err}");
        }
        assert!(
            !script
                .calls()
                .iter()
                .any(|c| c.starts_with("create_change_set")),
            "{:?}",
            script.calls()
        );
        // Only the tables named after the stack were described.
        assert_eq!(
            script.calls(),
            [
                "list_tables notes-dev-",
                "describe_table notes-dev-NotesTable-OLD123"
            ]
        );
    }

    #[tokio::test]
    async fn fresh_tables_and_plan_leave_the_retained_table_alone() {
        let (spec, deployment, script) = setup();
        let ui = Recorder::default();
        let kept = adopt(
            &spec,
            &deployment,
            &script,
            &ui,
            apply_yes(),
            RetainedChoice::Fresh,
        )
        .await
        .unwrap();
        assert_eq!(kept, None, "the stack is created as new");
        let planned = adopt(
            &spec,
            &deployment,
            &script,
            &ui,
            Mode::Plan,
            RetainedChoice::Ask,
        )
        .await
        .unwrap();
        assert_eq!(planned, None);
        assert!(
            ui.steps()
                .iter()
                .any(|s| s.contains("`up` asks what to do with them"))
        );
        assert!(
            !script
                .calls()
                .iter()
                .any(|c| c.starts_with("create_change_set"))
        );
    }

    #[tokio::test]
    async fn adopting_imports_the_tables_alone_then_the_update_adds_the_rest() {
        let (spec, deployment, script) = setup();
        *script.states.borrow_mut() = vec![
            stack("IMPORT_IN_PROGRESS"),
            stack("IMPORT_COMPLETE"),
            stack("UPDATE_IN_PROGRESS"),
            stack("UPDATE_COMPLETE"),
        ]
        .into();
        let ui = Recorder::default(); // says yes at the prompt
        let imported = adopt(
            &spec,
            &deployment,
            &script,
            &ui,
            apply_yes(),
            RetainedChoice::Ask,
        )
        .await
        .unwrap()
        .expect("the import made the stack");
        assert_eq!(imported.status, StackStatus::ImportComplete);
        let request = script.requests.borrow()[0].clone();
        assert_eq!(request.imports.len(), 1);
        assert_eq!(request.imports[0].logical_id, "NotesTable");
        assert_eq!(
            request.imports[0].identifier["TableName"],
            "notes-dev-NotesTable-OLD123"
        );
        let t: serde_json::Value = serde_json::from_str(&request.template_body).unwrap();
        assert_eq!(
            t["Resources"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["NotesTable"]
        );
        assert_eq!(t["Resources"]["NotesTable"]["DeletionPolicy"], "Retain");
        // The import is not the deployment: the update that follows runs, from the imported
        // template, and adds the rest.
        *script.deployed.borrow_mut() = Some(request.template_body.clone());
        let recorded = Engine::new(&script, &ui)
            .recorded_digest(&deployment, Some(&imported))
            .await
            .unwrap();
        assert_eq!(recorded, Some(format!("{}-import", deployment.digest())));
        let outcome = Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy_from(&deployment, apply_yes(), Some(imported), recorded)
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        let kinds: Vec<String> = script
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("create_change_set") || c == "execute_change_set")
            .collect();
        assert_eq!(
            kinds,
            [
                "create_change_set IMPORT",
                "execute_change_set",
                "create_change_set UPDATE",
                "execute_change_set"
            ]
        );
        let update = script.requests.borrow()[1].clone();
        assert!(update.imports.is_empty());
        assert_eq!(update.template_body, deployment.template_body);
    }

    #[tokio::test]
    async fn a_table_whose_key_differs_is_not_adopted() {
        let (spec, deployment, script) = setup();
        script.tables.borrow_mut()[0].key = vec![("id".into(), "N".into())];
        let ui = Recorder::default();
        let err = adopt(
            &spec,
            &deployment,
            &script,
            &ui,
            apply_yes(),
            RetainedChoice::Adopt,
        )
        .await
        .unwrap_err();
        assert!(
            err.message
                .contains("its key is id (N), the spec's is pk (S)"),
            "{err}"
        );
        assert!(err.message.contains("--fresh-tables"), "{err}");
        assert!(
            !script
                .calls()
                .iter()
                .any(|c| c.starts_with("create_change_set"))
        );
    }
}

/// The calls of the fake that change the account: `plan` may make only the change-set ones.
fn writes(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            !(c.starts_with("get_template")
                || c.starts_with("describe_")
                || c.starts_with("simulate")
                || c.starts_with("role_arn")
                || c.starts_with("caller_arn")
                || c.starts_with("function_code")
                || c.starts_with("availability_zones")
                || c.starts_with("subnet_zones")
                || c.starts_with("create_change_set")
                || *c == "delete_change_set")
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn plan_changes_nothing_whatever_the_stack_is() {
    // A large template of an existing stack: the preview needs it in S3, which plan will not
    // write unless told.
    let mut big: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
    big["Description"] = serde_json::json!("x".repeat(52_000));
    let wanted = Deployment {
        template_body: big.to_string(),
        ..deployment()
    };
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    let ui = Recorder::default();
    let err = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&wanted, Mode::Plan)
        .await
        .unwrap_err();
    assert_eq!(err.code, deployer::exit::Code::Usage, "{err}");
    assert!(
        err.message.contains("deployer plan --upload-template"),
        "{err}"
    );
    assert_eq!(writes(&script.calls()), Vec::<String>::new());
    // Allowed: the one write, the template `up` would upload too.
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    let planned = Engine::new(&script, &ui)
        .with_poll(FAST)
        .with_plan_uploads_template(true)
        .deploy(&wanted, Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(planned, Outcome::Planned { .. }), "{planned:?}");
    let written = writes(&script.calls());
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        written[0].starts_with("put_object templates/notes-dev/"),
        "{written:?}"
    );

    // A stack whose creation failed: `up` would delete it; plan says so and lists the create.
    let script = Script::new(vec![stack("ROLLBACK_COMPLETE")]);
    let ui = Recorder::default();
    let planned = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&deployment(), Mode::Plan)
        .await
        .unwrap();
    let Outcome::Planned { changes } = planned else {
        panic!("{planned:?}")
    };
    assert_eq!(changes.len(), 2, "every resource of the template is added");
    assert_eq!(
        script.calls(),
        Vec::<String>::new(),
        "no DeleteStack, no change set"
    );
    assert!(
        ui.steps()
            .iter()
            .any(|s| s.contains("`up` deletes it first")),
        "{:?}",
        ui.steps()
    );
    // A stuck rollback: `up` would continue it; plan only says so.
    let script = Script::new(vec![stack("UPDATE_ROLLBACK_FAILED")]);
    let ui = Recorder::default();
    let planned = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&deployment(), Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(planned, Outcome::Planned { .. }), "{planned:?}");
    assert_eq!(script.calls(), Vec::<String>::new());
    // No changes: nothing recorded, no protection set.
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    *script.change_set.borrow_mut() = Some(ChangeSet {
        id: "cs-1".into(),
        status: "FAILED".into(),
        reason: Some("No updates are to be performed.".into()),
        changes: vec![],
    });
    let protected = Deployment {
        termination_protection: true,
        ..deployment()
    };
    let planned = Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&protected, Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(planned, Outcome::NoChanges { .. }), "{planned:?}");
    assert_eq!(writes(&script.calls()), Vec::<String>::new());
}

/// 2030-01-01T00:00:00Z: fixed event times keep the snapshots stable.
const T2030: f64 = 1_893_456_000.0;

fn failed_create_script() -> Script {
    let script = Script::new(vec![
        None,
        stack("CREATE_IN_PROGRESS"),
        stack("ROLLBACK_COMPLETE"),
    ]);
    let t = T2030;
    *script.events.borrow_mut() = vec![
        event(t + 9.0, NAME, "ROLLBACK_COMPLETE", ""),
        event(t + 8.0, "ApiLogGroup", "DELETE_COMPLETE", ""),
        event(
            t + 7.0,
            NAME,
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [ApiRole, NotesTable].",
        ),
        event(
            t + 6.0,
            "ApiRole",
            "CREATE_FAILED",
            "Resource creation cancelled",
        ),
        event(
            t + 5.0,
            "NotesTable",
            "CREATE_FAILED",
            "Table notes already exists",
        ),
        event(t + 4.0, "ApiLogGroup", "CREATE_COMPLETE", ""),
        event(t + 3.0, "NotesTable", "CREATE_IN_PROGRESS", ""),
        event(t + 1.0, NAME, "CREATE_IN_PROGRESS", "User Initiated"),
    ];
    script
}

/// What a command prints: stdout, stderr, then the error `main` would print and its exit code.
fn transcript(
    captured: &deployer::ui::Captured,
    result: &Result<Outcome, deployer::exit::Error>,
) -> String {
    // The last line as the binary prints it (deployer::exit::Error::report, which main uses).
    let ending = match result {
        Ok(_) => "exit 0".to_string(),
        Err(e) => format!("exit {}\n{}", e.code as i32, e.report().unwrap_or_default()),
    };
    format!(
        "--- stdout\n{}--- stderr\n{}--- {ending}\n",
        captured.stdout(),
        captured.stderr()
    )
}

#[tokio::test]
async fn ci_and_json_output_of_a_failed_create() {
    use deployer::ui::{Format, Reporter};
    for (name, format) in [
        ("failed-create-ci", Format::Human { quiet: false }),
        ("failed-create-json", Format::Json),
    ] {
        let script = failed_create_script();
        let (reporter, captured) = Reporter::capture(format, false);
        let result = Engine::new(&script, &reporter)
            .with_poll(FAST)
            .deploy(
                &deployment(),
                Mode::Apply {
                    yes: true,
                    allow_data_loss: false,
                },
            )
            .await;
        if format == Format::Json {
            // Every record, as the README's table of records documents it.
            assert!(crate::common::records(&captured.stdout()).len() > 5);
        }
        insta::assert_snapshot!(name, transcript(&captured, &result));
    }
}

#[tokio::test]
async fn ci_output_of_an_update_and_the_live_view() {
    use deployer::commands::up::{Deployed, UpStatus};
    use deployer::ui::record::Seconds;
    use deployer::ui::{Format, Reporter};
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
    ]);
    *script.events.borrow_mut() = vec![
        event(T2030 + 3.0, NAME, "UPDATE_COMPLETE", ""),
        event(T2030 + 2.0, "ApiFunction", "UPDATE_COMPLETE", ""),
        event(T2030 + 1.0, "ApiFunction", "UPDATE_IN_PROGRESS", ""),
        event(T2030, NAME, "UPDATE_IN_PROGRESS", "User Initiated"),
    ];
    script.reveal_after.set(2); // the events happen after the change set is executed
    for (name, live) in [("update-ci", false), ("update-live", true)] {
        script.stack_calls.set(0);
        // The first run recorded what it deployed: the second starts from the same stack.
        script.objects.borrow_mut().clear();
        *script.states.borrow_mut() = vec![
            stack("UPDATE_COMPLETE"),
            stack("UPDATE_IN_PROGRESS"),
            stack("UPDATE_COMPLETE"),
        ]
        .into();
        let (reporter, captured) = Reporter::capture(Format::Human { quiet: false }, live);
        let result = Engine::new(&script, &reporter)
            .with_poll(FAST)
            .deploy(
                &deployment(),
                Mode::Apply {
                    yes: true,
                    allow_data_loss: false,
                },
            )
            .await;
        reporter.finish(&Deployed {
            stack: NAME.into(),
            env: "dev".into(),
            status: UpStatus::Stack(StackStatus::UpdateComplete),
            changed: true,
            outputs: vec![("Url".into(), "http://lb.example".into())],
            duration_s: Seconds(Duration::from_millis(1234)),
            ..Deployed::default()
        });
        // Escape the terminal control codes so the snapshot shows where the view is redrawn.
        let text = transcript(&captured, &result).replace('\x1b', "<ESC>");
        insta::assert_snapshot!(name, text);
    }
}

#[tokio::test]
async fn ci_output_says_it_is_alive_during_long_silences() {
    use deployer::ui::{Format, Reporter};
    let script = Script::new(vec![
        stack("UPDATE_COMPLETE"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_IN_PROGRESS"),
        stack("UPDATE_COMPLETE"),
    ]);
    let (reporter, captured) = Reporter::capture(Format::Human { quiet: false }, false);
    let reporter = reporter.with_heartbeat(Duration::ZERO);
    Engine::new(&script, &reporter)
        .with_poll(FAST)
        .deploy(
            &deployment(),
            Mode::Apply {
                yes: true,
                allow_data_loss: false,
            },
        )
        .await
        .unwrap();
    let heartbeats = captured
        .stderr()
        .lines()
        .filter(|l| l.ends_with("notes-dev  still UPDATE_IN_PROGRESS"))
        .count();
    assert_eq!(heartbeats, 2, "{}", captured.stderr());
}

#[tokio::test]
async fn each_kind_of_aws_failure_has_its_exit_code_and_one_sentence() {
    use deployer::exit::Code;
    let cases = [
        (
            "stack",
            CloudError::new(
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
            Code::Credentials,
            "cannot describe stack notes-dev: The security token included in the request is expired (ExpiredToken): refresh the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE)",
        ),
        (
            "create_change_set",
            CloudError::new(
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:CreateChangeSet",
            ),
            Code::Denied,
            "cannot create a change set for notes-dev: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:CreateChangeSet (AccessDenied): the credentials lack this IAM permission",
        ),
        (
            "stack",
            CloudError::unreachable(
                "dispatch failure: dns error: failed to lookup address information",
            ),
            Code::Unreachable,
            "cannot describe stack notes-dev: dispatch failure: dns error: failed to lookup address information: check the network, AWS_ENDPOINT_URL, and that the region exists",
        ),
    ];
    for (operation, error, code, message) in cases {
        let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
        *script.fail.borrow_mut() = Some((operation, error));
        let ui = Recorder::default();
        let e = run(&script, &ui).await.unwrap_err();
        assert_eq!(e.code, code, "{operation}");
        assert_eq!(e.message, message);
        assert_eq!(e.message.lines().count(), 1);
    }
}

#[tokio::test]
async fn the_bootstrap_vpc_keeps_its_zones() {
    use deployer::converge::ensure_bootstrap;
    let boot = |parameters: &[(&str, &str)]| {
        let mut s = stack("UPDATE_COMPLETE").unwrap();
        s.name = "deployer-bootstrap".into();
        s.parameters = parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.outputs = ["ArtifactBucket", "VpcId", "PublicSubnet1", "PublicSubnet2"]
            .iter()
            .map(|o| (o.to_string(), format!("{o}-id")))
            .collect();
        Some(s)
    };
    let zones = |script: &Script| -> Vec<String> {
        let request = script.stack_requests.borrow().last().cloned().unwrap();
        ["AvailabilityZone1", "AvailabilityZone2"]
            .iter()
            .map(|p| request.parameters[*p].clone())
            .collect()
    };
    // New: the first two available zones, by name.
    let script = Script::new(vec![
        None,
        stack("CREATE_COMPLETE").map(|mut s| {
            s.outputs = boot(&[]).unwrap().outputs;
            s
        }),
    ]);
    let ui = Recorder::default();
    let engine = Engine::new(&script, &ui).with_poll(FAST);
    ensure_bootstrap(&engine, &script).await.unwrap();
    assert_eq!(zones(&script), ["eu-west-1a", "eu-west-1b"]);
    // Kept: an update passes the zones the stack has, whatever the region lists now.
    let script = Script::new(vec![
        boot(&[
            ("AvailabilityZone1", "eu-west-1b"),
            ("AvailabilityZone2", "eu-west-1c"),
        ]),
        boot(&[]),
    ]);
    let engine = Engine::new(&script, &ui).with_poll(FAST);
    ensure_bootstrap(&engine, &script).await.unwrap();
    assert_eq!(zones(&script), ["eu-west-1b", "eu-west-1c"]);
    assert!(!script.calls().contains(&"availability_zones".to_string()));
    // Made before zones were parameters: where its subnets are.
    let script = Script::new(vec![boot(&[]), boot(&[])]);
    *script.deployed.borrow_mut() = None;
    let engine = Engine::new(&script, &ui).with_poll(FAST);
    ensure_bootstrap(&engine, &script).await.unwrap();
    assert!(
        script.calls().iter().any(|c| c.starts_with("subnet_zones")),
        "{:?}",
        script.calls()
    );
    assert_eq!(
        zones(&script),
        ["eu-west-1c", "eu-west-1a"],
        "as they are, not re-sorted"
    );
}

#[tokio::test]
async fn the_preflight_names_what_iam_denies_and_maps_assumed_roles() {
    use deployer::converge::preflight::{Checked, Scope, check};
    let mut template: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
    template["Resources"]["ApiRole"] = serde_json::json!({ "Type": "AWS::IAM::Role" });
    template["Resources"]["ApiRule"] =
        serde_json::json!({ "Type": "AWS::ElasticLoadBalancingV2::ListenerRule" });
    let scope = |caller: &str| Scope::of(caller, "eu-west-1", NAME, Some("artifacts"));
    let simulated = |script: &Script| -> Vec<String> {
        let mut principals: Vec<String> = script
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("simulate "))
            .collect();
        principals.dedup();
        principals
    };
    let script = Script::new(vec![None]);
    *script.denied.borrow_mut() = vec!["iam:PassRole".into()];
    let caller = "arn:aws:sts::123456789012:assumed-role/ci-deploy/run-1";
    let err = check(&script, caller, &scope(caller), None, &template)
        .await
        .unwrap_err();
    assert_eq!(err.code, deployer::exit::Code::Denied);
    assert!(
        err.message.contains("lacks 1 permission") && err.message.contains("iam:PassRole"),
        "{err}"
    );
    assert_eq!(script.calls()[0], "role_arn ci-deploy");
    // Denied on a resource deployer cannot name (a listener rule's ARN has CloudFormation's
    // hash): a policy scoped to the real ARN may allow it, so it is a warning, not a refusal.
    let script = Script::new(vec![None]);
    *script.denied.borrow_mut() = vec!["elasticloadbalancing:CreateRule".into()];
    let Checked::Unconfirmed(why) = check(&script, caller, &scope(caller), None, &template)
        .await
        .unwrap()
    else {
        panic!("a deny of `*` is not confirmed either way")
    };
    assert!(why.contains("elasticloadbalancing:CreateRule"), "{why}");
    let script = Script::new(vec![None]);
    *script.denied.borrow_mut() = vec!["iam:PassRole".into()];
    check(&script, caller, &scope(caller), None, &template)
        .await
        .unwrap_err();
    assert_eq!(
        simulated(&script),
        ["simulate arn:aws:iam::123456789012:role/ci-deploy"]
    );
    // An IAM Identity Center (SSO) role: simulated under its path, which GetRole gives.
    let script = Script::new(vec![None]);
    let sso =
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane@example.com";
    assert_eq!(
        check(&script, sso, &scope(sso), None, &template)
            .await
            .unwrap(),
        Checked::Allowed
    );
    assert_eq!(
        simulated(&script),
        [
            "simulate arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123abcd"
        ]
    );
    // Allowed: nothing to say. The root user cannot be simulated: skipped, with a note.
    let script = Script::new(vec![None]);
    let user = "arn:aws:iam::123456789012:user/ci";
    assert_eq!(
        check(&script, user, &scope(user), None, &template)
            .await
            .unwrap(),
        Checked::Allowed
    );
    let root = "arn:aws:iam::123456789012:root";
    let skipped = check(&script, root, &scope(root), None, &template)
        .await
        .unwrap();
    assert!(matches!(skipped, Checked::Skipped(_)), "{skipped:?}");
    // The caller may not simulate: one line, not a failure.
    *script.fail.borrow_mut() = Some((
        "simulate",
        CloudError::new(
            "AccessDenied",
            "not authorized to perform iam:SimulatePrincipalPolicy",
        ),
    ));
    let Checked::Skipped(why) = check(&script, user, &scope(user), None, &template)
        .await
        .unwrap()
    else {
        panic!("a failed simulation is skipped")
    };
    assert!(
        why.contains("iam:SimulatePrincipalPolicy for arn:aws:iam::123456789012:user/ci failed"),
        "{why}"
    );
}

#[tokio::test]
async fn a_deployed_template_that_is_not_json_is_unknown_and_removals_count_as_losses() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    // Deployed by hand, in YAML, retaining the table: deployer cannot read that, so it must not
    // assume the retention either.
    *script.deployed.borrow_mut() = Some(
        "Resources:\n  NotesTable:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Retain\n"
            .into(),
    );
    script.change_set.borrow_mut().as_mut().unwrap().changes = vec![Change {
        action: "Remove".into(),
        logical_id: "NotesTable".into(),
        resource_type: "AWS::DynamoDB::Table".into(),
        replacement: None,
    }];
    let ui = Recorder::default();
    let err = run(&script, &ui).await.unwrap_err();
    assert_eq!(err.code, deployer::exit::Code::DataLoss, "{err}");
    assert!(
        ui.steps()
            .iter()
            .any(|w| w.contains("deployed template of notes-dev is not JSON")),
        "{:?}",
        ui.steps()
    );
}

mod hotswap {
    use super::*;
    use deployer::converge::hotswap::{Swap, Why};

    const A: [u8; 32] = [0xaa; 32];
    const B: [u8; 32] = [0xbb; 32];

    fn swap(function: &str, sha: [u8; 32]) -> Swap {
        Swap {
            function: function.into(),
            lambda_name: format!("notes-dev-{function}"),
            key: format!("notes/{function}/{}.zip", deployer::build::hex(&sha)),
            sha256: sha,
        }
    }

    /// `update_code` of the engine over `script`, polling fast.
    async fn update(
        script: &Script,
        ui: &Recorder,
        swaps: &[Swap],
        why: Why,
    ) -> Result<Vec<deployer::converge::hotswap::Swapped>, deployer::exit::Error> {
        Engine::new(script, ui)
            .with_poll(FAST)
            .update_code("bucket", swaps, why)
            .await
    }

    fn script_with(functions: &[(&str, Function)]) -> Script {
        let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
        for (name, f) in functions {
            script
                .functions
                .borrow_mut()
                .insert(format!("notes-dev-{name}"), f.clone());
        }
        script
    }

    #[tokio::test]
    async fn every_function_is_updated_at_once_and_waited_for_until_successful() {
        let slow = Function {
            update_polls: 3,
            ..Function::default()
        };
        let script = script_with(&[("api", slow.clone()), ("cron", slow)]);
        let ui = Recorder::default();
        let done = update(
            &script,
            &ui,
            &[swap("api", A), swap("cron", B)],
            Why::Hotswap,
        )
        .await
        .unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[1].sha256, "bb".repeat(32));
        let calls = script.calls();
        // Concurrent: cron's update goes out while api's is still being waited for.
        let cron_update = calls
            .iter()
            .position(|c| c.starts_with("update_function_code notes-dev-cron"))
            .unwrap();
        let api_done = calls
            .iter()
            .rposition(|c| c == "function_code notes-dev-api")
            .unwrap();
        assert!(cron_update < api_done, "{calls:?}");
        // Three reads InProgress each, then one Successful.
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.starts_with("function_code"))
                .count(),
            8
        );
        let updated: Vec<_> = ui
            .seen
            .borrow()
            .iter()
            .filter_map(|p| match p {
                Progress::CodeUpdated { function, why, .. } => Some((function.clone(), *why)),
                _ => None,
            })
            .collect();
        assert_eq!(updated.len(), 2, "{updated:?}");
    }

    #[tokio::test]
    async fn an_update_already_running_is_waited_out_then_retried() {
        let busy = Function {
            in_progress_reads: 2,
            ..Function::default()
        };
        let script = script_with(&[("api", busy)]);
        let ui = Recorder::default();
        let done = update(&script, &ui, &[swap("api", A)], Why::Restore)
            .await
            .unwrap();
        assert_eq!(done[0].why, Why::Restore);
        let updates = script
            .calls()
            .iter()
            .filter(|c| c.starts_with("update_function_code"))
            .count();
        assert_eq!(updates, 2, "{:?}", script.calls());
        assert_eq!(script.functions.borrow()["notes-dev-api"].updates, 1);
    }

    #[tokio::test]
    async fn a_failed_update_fails_with_lambdas_reason() {
        let failing = Function {
            update_polls: 1,
            fail_with: Some("Code size exceeds the limit".into()),
            ..Function::default()
        };
        let script = script_with(&[("api", failing)]);
        let ui = Recorder::default();
        let err = update(&script, &ui, &[swap("api", A)], Why::Hotswap)
            .await
            .unwrap_err();
        assert_eq!(err.code, deployer::exit::Code::Failed);
        assert!(
            err.message.contains(
                "the code update of notes-dev-api ended Failed: Code size exceeds the limit"
            ),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn code_that_is_not_the_artifact_is_an_error() {
        let script = script_with(&[("api", Function::default())]);
        let ui = Recorder::default();
        // The key names A's hash; the swap claims B's.
        let mut wrong = swap("api", A);
        wrong.sha256 = B;
        let err = update(&script, &ui, &[wrong], Why::Hotswap)
            .await
            .unwrap_err();
        assert!(
            err.message.contains("not the artifact's"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn a_missing_function_names_it() {
        let script = script_with(&[]);
        let ui = Recorder::default();
        let err = update(&script, &ui, &[swap("api", A)], Why::Hotswap)
            .await
            .unwrap_err();
        assert!(
            err.message
                .starts_with("cannot update the code of notes-dev-api: Function not found"),
            "{}",
            err.message
        );
    }
}

#[tokio::test]
async fn with_events_tagged_by_token_polls_read_events_and_describe_the_stack_once_at_the_end() {
    let script = Script::new(vec![stack("UPDATE_COMPLETE")]);
    *script.deployed.borrow_mut() = Some(TEMPLATE.into());
    script.tagged_paced.set(true);
    let t = now();
    // Oldest first: one more appears at each poll, as CloudFormation works.
    *script.events.borrow_mut() = vec![
        event(t + 1.0, NAME, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(t + 2.0, "ApiFunction", "UPDATE_IN_PROGRESS", ""),
        event(t + 3.0, "ApiFunction", "UPDATE_COMPLETE", ""),
        event(t + 4.0, NAME, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", ""),
        event(t + 5.0, NAME, "UPDATE_COMPLETE", ""),
    ];
    let ui = Recorder::default();
    let outcome = run(&script, &ui).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    assert_eq!(
        script.events_calls.get(),
        5,
        "one poll per event until the last"
    );
    // The deploy's own look, then one at the end: none while the events told the story.
    assert_eq!(script.stack_calls.get(), 2);
    let shown = ui.events_shown();
    assert_eq!(shown, 5, "every event shown once");
}

#[tokio::test]
async fn a_create_someone_confirms_is_reviewed_through_a_change_set() {
    let script = Script::new(vec![None, stack("CREATE_COMPLETE")]);
    let ui = Recorder::default(); // answers yes
    let asked = Mode::Apply {
        yes: false,
        allow_data_loss: false,
    };
    Engine::new(&script, &ui)
        .with_poll(FAST)
        .deploy(&deployment(), asked)
        .await
        .unwrap();
    assert_eq!(
        script.calls(),
        [
            "create_change_set CREATE",
            "execute_change_set",
            "put_object deployed/notes-dev.json"
        ],
        "the question shows the change set's own list"
    );
    // With --yes there is nothing to review: CreateStack, no change set.
    let script = Script::new(vec![None, stack("CREATE_COMPLETE")]);
    let ui = Recorder::default();
    run(&script, &ui).await.unwrap();
    assert_eq!(
        script.calls(),
        [
            "put_stack create=true",
            "put_object deployed/notes-dev.json"
        ]
    );
    let request = script.stack_requests.borrow()[0].clone();
    assert!(request.token.starts_with("deployer-create-"), "idempotent");
    assert!(
        !request.tags.contains_key(DIGEST_TAG),
        "stack tags propagate to every resource: the digest goes in the bucket"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&script.objects.borrow()["deployed/notes-dev.json"]).unwrap();
    assert_eq!(
        record["digest"],
        deployment().digest(),
        "the no-op check needs it"
    );
    let listed = ui.seen.borrow().iter().find_map(|p| match p {
        Progress::Changes { changes, .. } => Some(changes.len()),
        _ => None,
    });
    assert_eq!(listed, Some(2), "what is created is still listed");
}

/// The slot of the shared load balancer an env takes: conditional writes decide between two
/// deploys that listed the same free slot, and only an old record of a missing stack is taken
/// over.
mod shared_slots {
    use super::*;
    use deployer::converge::shared_alb::{Allocation, Slot, allocate};

    fn record(stack: &str, at: &str) -> Vec<u8> {
        serde_json::to_vec(&Allocation {
            stack: stack.into(),
            allocated_at: at.into(),
        })
        .unwrap()
    }

    fn spec(env: &str) -> deployer::spec::Spec {
        let spec = crate::common::load(&crate::common::root().join("stacks/example.yaml"));
        spec.for_env(env).unwrap()
    }

    const NOW: &str = "2030-01-01T12:00:00Z";

    async fn take(script: &Script, env: &str) -> Slot {
        let ui = Recorder::default();
        let engine = Engine::new(script, &ui).with_poll(FAST);
        let now = deployer::converge::ephemeral::parse_time(NOW).unwrap();
        allocate(&engine, script, &spec(env), "artifacts", None, now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_slot_written_first_by_another_deploy_makes_this_one_take_the_next() {
        let script = Script::new(vec![None]);
        script.concurrent_writes.borrow_mut().push((
            "shared-alb/notes/1/0.json".into(),
            record("notes-pr-1", NOW),
        ));
        let slot = take(&script, "pr-2").await;
        assert_eq!(slot, Slot { index: 1, slot: 1 });
        let puts: Vec<String> = script
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("put_object_if"))
            .cloned()
            .collect();
        assert_eq!(
            puts,
            [
                "put_object_if shared-alb/notes/1/0.json",
                "put_object_if shared-alb/notes/1/1.json"
            ]
        );
        let objects = script.objects.borrow();
        let owner: Allocation =
            serde_json::from_slice(&objects["shared-alb/notes/1/0.json"]).unwrap();
        assert_eq!(
            owner.stack, "notes-pr-1",
            "the other deploy's record stands"
        );
    }

    #[tokio::test]
    async fn a_full_load_balancer_takes_over_an_old_slot_of_a_deleted_env_else_opens_another() {
        // The example spec: 3 rules and 1 target group per env, so 33 envs per load balancer.
        let capacity = deployer::render::shared::capacity(&spec("pr-1"));
        assert_eq!(capacity, 33);
        let fill = |script: &Script, old_slot: Option<u32>| {
            for slot in 0..capacity {
                let at = match Some(slot) == old_slot {
                    true => "2030-01-01T10:00:00Z",
                    false => "2030-01-01T11:30:00Z",
                };
                script.objects.borrow_mut().insert(
                    format!("shared-alb/notes/1/{slot}.json"),
                    record(&format!("notes-gone-{slot}"), at),
                );
            }
        };
        // No stack exists (the script answers None): slot 7 is two hours old, the rest recent.
        let script = Script::new(vec![None]);
        fill(&script, Some(7));
        assert_eq!(take(&script, "pr-2").await, Slot { index: 1, slot: 7 });
        let taken: Allocation =
            serde_json::from_slice(&script.objects.borrow()["shared-alb/notes/1/7.json"]).unwrap();
        assert_eq!(taken.stack, "notes-pr-2");
        // Every record recent: none is taken over; the second shared load balancer opens.
        let script = Script::new(vec![None]);
        fill(&script, None);
        assert_eq!(take(&script, "pr-2").await, Slot { index: 2, slot: 0 });
    }
}

/// Drift detection as the CloudFormation API Reference describes it: DetectStackDrift starts
/// it, DescribeStackDriftDetectionStatus says `DETECTION_IN_PROGRESS` until it ends
/// (`DETECTION_COMPLETE`, or `DETECTION_FAILED` with a reason when some resources could not be
/// checked: the others' results still stand), DescribeStackResourceDrifts gives each resource.
mod drift {
    use super::*;
    use deployer::converge::hotswap;
    use deployer::converge::model::{
        DifferenceType, DriftDetection, PropertyDifference, ResourceDrift,
        StackDriftDetectionStatus as D, StackDriftStatus, StackResourceDriftStatus as S,
    };
    use deployer::converge::stack_drift::{Report, detect};

    const TEMPLATE_SHA: &str = "aa";

    fn hex(byte: u8) -> String {
        format!("{byte:02x}").repeat(32)
    }

    fn detection(
        status: D,
        drift: Option<StackDriftStatus>,
        reason: Option<&str>,
    ) -> DriftDetection {
        DriftDetection {
            status,
            drift,
            reason: reason.map(str::to_string),
        }
    }

    fn resource(
        id: &str,
        kind: &str,
        status: S,
        differences: &[(&str, &str, &str)],
    ) -> ResourceDrift {
        ResourceDrift {
            logical_id: id.into(),
            resource_type: kind.into(),
            status,
            differences: differences
                .iter()
                .map(|(path, expected, actual)| PropertyDifference {
                    path: path.to_string(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                    kind: DifferenceType::NotEqual,
                })
                .collect(),
        }
    }

    /// The example's stack, whose function runs the code byte `live` (its template's is 0xaa).
    fn script(detections: Vec<DriftDetection>, drifts: Vec<ResourceDrift>, live: u8) -> Script {
        let mut deployed = stack("UPDATE_COMPLETE").unwrap();
        deployed
            .parameters
            .insert("ApiCodeKey".into(), format!("notes/api/{}.zip", hex(0xaa)));
        let script = Script::new(vec![Some(deployed)]);
        *script.drift_detections.borrow_mut() = detections.into();
        *script.resource_drifts.borrow_mut() = drifts;
        script.extra_resources.borrow_mut().push(Resource {
            logical_id: "ApiFunction".into(),
            physical_id: "notes-dev-api".into(),
            resource_type: "AWS::Lambda::Function".into(),
        });
        script.functions.borrow_mut().insert(
            "notes-dev-api".into(),
            Function {
                sha256: aws_smithy_types::base64::encode([live; 32]),
                ..Function::default()
            },
        );
        script
    }

    async fn run(script: &Script, hotswapped: &hotswap::Drift) -> Report {
        let spec = crate::common::load(&crate::common::root().join("stacks/example.yaml"));
        let ui = Recorder::default();
        let engine = Engine::new(script, &ui).with_poll(FAST);
        let stack = script.states.borrow()[0].clone().unwrap();
        detect(&engine, script, &spec, &stack, hotswapped)
            .await
            .unwrap()
    }

    fn ids(resources: &[ResourceDrift]) -> Vec<String> {
        resources.iter().map(|r| r.logical_id.clone()).collect()
    }

    /// `up --revert-drift` makes a drift-aware change set even when the recorded digest says
    /// nothing changed (the drift is outside what deployer deployed).
    #[tokio::test]
    async fn revert_drift_makes_a_drift_aware_change_set_even_without_changes() {
        let revert = Deployment {
            revert_drift: true,
            ..deployment()
        };
        let mut current = stack("UPDATE_COMPLETE").unwrap();
        current.tags.insert(DIGEST_TAG.into(), revert.digest());
        let script = Script::new(vec![Some(current)]);
        let ui = Recorder::default();
        Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy(&revert, apply_yes())
            .await
            .unwrap();
        {
            let requests = script.requests.borrow();
            assert_eq!(requests.len(), 1, "{:?}", script.calls());
            assert!(requests[0].revert_drift);
        }
        // Without it, the same digest makes no change set.
        let mut current = stack("UPDATE_COMPLETE").unwrap();
        current
            .tags
            .insert(DIGEST_TAG.into(), deployment().digest());
        let script = Script::new(vec![Some(current)]);
        Engine::new(&script, &ui)
            .with_poll(FAST)
            .deploy(&deployment(), apply_yes())
            .await
            .unwrap();
        assert!(script.requests.borrow().is_empty());
    }

    #[tokio::test]
    async fn in_sync_after_waiting_for_the_detection() {
        let script = script(
            vec![
                detection(D::DetectionInProgress, None, None),
                detection(D::DetectionInProgress, None, None),
                detection(D::DetectionComplete, Some(StackDriftStatus::InSync), None),
            ],
            vec![
                resource("NotesTable", "AWS::DynamoDB::Table", S::InSync, &[]),
                resource("ApiFunction", "AWS::Lambda::Function", S::InSync, &[]),
            ],
            0xaa,
        );
        let report = run(&script, &hotswap::Drift::default()).await;
        assert_eq!(report, Report::default());
        let polls = script
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("drift_detection"))
            .count();
        assert_eq!(polls, 3, "polled until the detection ended");
        let _ = TEMPLATE_SHA;
    }

    #[tokio::test]
    async fn modified_deleted_and_not_checked_resources_are_told_apart() {
        let script = script(
            vec![detection(
                D::DetectionComplete,
                Some(StackDriftStatus::Drifted),
                None,
            )],
            vec![
                resource(
                    "ApiFunction",
                    "AWS::Lambda::Function",
                    S::Modified,
                    &[("/MemorySize", "256", "512")],
                ),
                resource("NotesTable", "AWS::DynamoDB::Table", S::Deleted, &[]),
                resource("ApiErrorsAlarm", "AWS::CloudWatch::Alarm", S::InSync, &[]),
                resource(
                    "ApiAlbPermission",
                    "AWS::Lambda::Permission",
                    S::NotChecked,
                    &[],
                ),
            ],
            0xaa,
        );
        let report = run(&script, &hotswap::Drift::default()).await;
        assert!(report.is_drifted());
        assert_eq!(ids(&report.drifted), ["ApiFunction", "NotesTable"]);
        assert_eq!(report.drifted[0].differences[0].path, "/MemorySize");
        assert_eq!(report.drifted[0].differences[0].actual, "512");
        assert_eq!(ids(&report.not_checked), ["ApiAlbPermission"]);
        assert_eq!(report.failed, None);
    }

    #[tokio::test]
    async fn a_failed_detection_says_why_and_keeps_what_it_checked() {
        let script = script(
            vec![detection(
                D::DetectionFailed,
                Some(StackDriftStatus::Drifted),
                Some("Failed to detect drift on resource [ApiRole]"),
            )],
            vec![
                resource(
                    "NotesTable",
                    "AWS::DynamoDB::Table",
                    S::Modified,
                    &[("/BillingMode", "\"PAY_PER_REQUEST\"", "\"PROVISIONED\"")],
                ),
                resource("ApiRole", "AWS::IAM::Role", S::UnknownValue, &[]),
            ],
            0xaa,
        );
        let report = run(&script, &hotswap::Drift::default()).await;
        assert_eq!(
            report.failed.as_deref(),
            Some("Failed to detect drift on resource [ApiRole]")
        );
        assert_eq!(ids(&report.drifted), ["NotesTable"]);
        assert_eq!(ids(&report.not_checked), ["ApiRole"]);
    }

    #[tokio::test]
    async fn code_nobody_deployed_is_drift_and_a_recorded_hotswap_is_not() {
        let complete = || {
            vec![detection(
                D::DetectionComplete,
                Some(StackDriftStatus::InSync),
                None,
            )]
        };
        // CloudFormation sees nothing; the function runs 0xcc, neither 0xaa nor a hotswap.
        let report = run(
            &script(complete(), vec![], 0xcc),
            &hotswap::Drift::default(),
        )
        .await;
        assert_eq!(ids(&report.drifted), ["ApiFunction"]);
        assert_eq!(report.drifted[0].differences[0].actual, hex(0xcc));
        // The same code, recorded as hotswapped: no drift.
        let mut hotswapped = hotswap::Drift::default();
        hotswapped.functions.insert(
            "api".into(),
            hotswap::LiveCode {
                key: format!("notes/api/{}.zip", hex(0xcc)),
                sha256: hex(0xcc),
                at: "2030-01-01T00:00:00Z".into(),
            },
        );
        let report = run(&script(complete(), vec![], 0xcc), &hotswapped).await;
        assert_eq!(report, Report::default());
    }
}

/// Gradual rollouts: the shift after a stack update, its alarms, Ctrl-C, and the promotion of
/// the new version to `live`.
mod rollout {
    use super::*;
    use deployer::converge::model::{AlarmState, AlarmStatus, ShiftPhase, ShiftState};

    const SPEC: &str = "app: notes\nenv: dev\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    routes: [{ path: /admin* }]\n    rollout: { strategy: linear, percent: 50, wait: 1s, alarms: [notes-latency] }\n";
    const RULE: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/lb/1/2/3";
    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/lb/1/2";
    const LIVE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/live/1";
    const NEXT: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/next/2";
    const ERRORS: &str = "notes-dev-ApiNextErrorsAlarm-1A2B";

    fn spec() -> deployer::spec::Spec {
        deployer::spec::parse(SPEC, "s.yaml").unwrap()
    }

    fn with_versions(status: &str, live: &str, next: &str) -> Option<Stack> {
        let mut s = stack(status)?;
        s.outputs = vec![
            ("ApiLiveVersion".into(), live.into()),
            ("ApiNextVersion".into(), next.into()),
        ];
        Some(s)
    }

    /// A stack just updated to version 4 while `live` serves 3; the promotion's update follows.
    fn script() -> (Script, Deployment) {
        let template = deployer::render::app(&spec(), Default::default()).unwrap();
        let deployment = Deployment {
            template_body: template.body(),
            parameters: BTreeMap::from([("ApiLiveVersion".into(), "3".into())]),
            ..deployment()
        };
        let script = Script::new(vec![
            with_versions("UPDATE_COMPLETE", "3", "4"),
            with_versions("UPDATE_IN_PROGRESS", "3", "4"),
            with_versions("UPDATE_COMPLETE", "4", "4"),
        ]);
        *script.deployed.borrow_mut() = Some(deployment.template_body.clone());
        let resource = |logical: &str, physical: &str, kind: &str| Resource {
            logical_id: logical.into(),
            physical_id: physical.into(),
            resource_type: kind.into(),
        };
        *script.extra_resources.borrow_mut() = vec![
            resource(
                "ApiRoute1",
                RULE,
                "AWS::ElasticLoadBalancingV2::ListenerRule",
            ),
            resource(
                "HttpListener",
                LISTENER,
                "AWS::ElasticLoadBalancingV2::Listener",
            ),
            resource(
                "ApiTargetGroup",
                LIVE,
                "AWS::ElasticLoadBalancingV2::TargetGroup",
            ),
            resource(
                "ApiNextTargetGroup",
                NEXT,
                "AWS::ElasticLoadBalancingV2::TargetGroup",
            ),
            resource("ApiNextErrorsAlarm", ERRORS, "AWS::CloudWatch::Alarm"),
            resource(
                "ApiNext5xxAlarm",
                "notes-dev-ApiNext5xxAlarm-3C4D",
                "AWS::CloudWatch::Alarm",
            ),
        ];
        let template_weights = vec![(LIVE.to_string(), 100), (NEXT.to_string(), 0)];
        *script.forwarders.borrow_mut() = BTreeMap::from([
            (RULE.to_string(), template_weights.clone()),
            (LISTENER.to_string(), template_weights),
        ]);
        let ok = |name: &str| AlarmState {
            name: name.into(),
            status: AlarmStatus::Ok,
            reason: "Threshold Crossed: no datapoints were received".into(),
        };
        *script.alarms.borrow_mut() = vec![
            ok(ERRORS),
            ok("notes-dev-ApiNext5xxAlarm-3C4D"),
            ok("notes-latency"),
        ];
        (script, deployment)
    }

    fn updated() -> deployer::converge::Up {
        deployer::converge::Up {
            outcome: Outcome::Applied {
                stack: with_versions("UPDATE_COMPLETE", "3", "4").unwrap(),
                changes: Vec::new(),
            },
            code_updates: Vec::new(),
            pending_restores: Vec::new(),
        }
    }

    /// `up`'s rollout after `up`, on `script`, with the test spec.
    async fn roll_out(
        script: &Script,
        ui: &Recorder,
        deployment: &Deployment,
        up: deployer::converge::Up,
    ) -> Result<deployer::converge::Up, deployer::exit::Error> {
        let engine = Engine::new(script, ui).with_poll(FAST);
        deployer::converge::roll_out(&engine, script, &spec(), deployment, up).await
    }

    fn shifts(ui: &Recorder) -> Vec<ShiftState> {
        ui.seen
            .borrow()
            .iter()
            .filter_map(|p| match p {
                Progress::Shift(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// The weight of `next` on the rule, change by change.
    fn rule_moves(script: &Script) -> Vec<u32> {
        let moves = script.moves.borrow();
        let rule: Vec<u32> = moves
            .iter()
            .filter(|(a, _)| a == RULE)
            .map(|m| m.1)
            .collect();
        let listener: Vec<u32> = moves
            .iter()
            .filter(|(a, _)| a == LISTENER)
            .map(|m| m.1)
            .collect();
        assert_eq!(
            rule, listener,
            "the rule and the default action move together"
        );
        rule
    }

    #[tokio::test]
    async fn a_shift_moves_in_steps_then_live_takes_the_new_version() {
        let (script, deployment) = script();
        let ui = Recorder::default();
        let started = std::time::Instant::now();
        let up = roll_out(&script, &ui, &deployment, updated())
            .await
            .unwrap();
        // 50 % for the one-second step, all, then (once `live` is 4) the template's weights.
        assert_eq!(rule_moves(&script), [50, 100, 0]);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "the step was held"
        );
        assert!(
            script.alarm_calls.get() > 2,
            "alarms were read while holding"
        );
        let promotion = script.requests.borrow().last().cloned().unwrap();
        assert_eq!(promotion.parameters["ApiLiveVersion"], "4");
        assert_eq!(promotion.template_body, deployment.template_body);
        let phases: Vec<(ShiftPhase, u32)> =
            shifts(&ui).iter().map(|s| (s.phase, s.percent)).collect();
        assert_eq!(phases.first(), Some(&(ShiftPhase::Moved, 50)));
        assert!(phases.contains(&(ShiftPhase::Holding, 50)), "{phases:?}");
        assert_eq!(phases.last(), Some(&(ShiftPhase::Finished, 100)));
        let Outcome::Applied { stack, .. } = up.outcome else {
            panic!("{:?}", up.outcome)
        };
        assert!(
            stack
                .outputs
                .contains(&("ApiLiveVersion".into(), "4".into()))
        );
    }

    #[tokio::test]
    async fn an_alarm_moves_every_request_back_and_up_fails_naming_it() {
        let (script, deployment) = script();
        *script.alarm_fires.borrow_mut() = Some((
            4,
            ERRORS.into(),
            "Threshold Crossed: 1 datapoint [3.0] was greater than or equal to the threshold (1.0).".into(),
        ));
        let ui = Recorder::default();
        let e = roll_out(&script, &ui, &deployment, updated())
            .await
            .unwrap_err();
        assert_eq!(e.code, deployer::exit::Code::Failed);
        assert!(
            e.message
                .contains(&format!("Alarm `{ERRORS}` is ALARM: Threshold Crossed")),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("rolled `api` back to version 3"),
            "{}",
            e.message
        );
        assert_eq!(rule_moves(&script), [50, 0]);
        assert!(
            !script
                .calls()
                .iter()
                .any(|c| c.starts_with("create_change_set")),
            "`live` stays: no promotion"
        );
        let last = shifts(&ui).pop().unwrap();
        assert_eq!((last.phase, last.percent), (ShiftPhase::RolledBack, 0));
        assert_eq!(last.alarm.unwrap().name, ERRORS);
    }

    #[tokio::test]
    async fn ctrl_c_asks_and_finishes_or_rolls_back() {
        for (answer, moves) in [
            (Confirmation::No, vec![50, 100, 0]),
            (Confirmation::Yes, vec![50, 0]),
        ] {
            let (script, deployment) = script();
            let interrupts = deployer::converge::engine::Interrupts::default();
            *script.interrupt_at.borrow_mut() = Some((3, interrupts.clone()));
            let ui = Recorder::default();
            ui.answer.set(Some(answer));
            let engine = Engine::new(&script, &ui)
                .with_poll(FAST)
                .with_interrupts(interrupts, "deployer status --watch");
            let spec = spec();
            let started = std::time::Instant::now();
            let result =
                deployer::converge::roll_out(&engine, &script, &spec, &deployment, updated()).await;
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{answer:?}: the step was cut short"
            );
            assert_eq!(rule_moves(&script), moves, "{answer:?}");
            match answer {
                Confirmation::No => assert!(result.is_ok(), "{result:?}"),
                _ => {
                    let e = result.unwrap_err();
                    assert_eq!(e.code, deployer::exit::Code::Interrupted);
                    assert!(e.message.contains("back to version 3"), "{}", e.message);
                }
            }
        }
    }

    #[tokio::test]
    async fn a_missing_alarm_is_refused_before_any_traffic_moves() {
        let (script, deployment) = script();
        script
            .alarms
            .borrow_mut()
            .retain(|a| a.name != "notes-latency");
        let ui = Recorder::default();
        let e = roll_out(&script, &ui, &deployment, updated())
            .await
            .unwrap_err();
        assert_eq!(e.code, deployer::exit::Code::Usage);
        assert!(e.message.contains("notes-latency"), "{}", e.message);
        assert!(script.moves.borrow().is_empty());
    }

    #[tokio::test]
    async fn an_alarm_already_firing_stops_the_shift_before_any_traffic_moves() {
        let (script, deployment) = script();
        // The alarm the last rollback left in ALARM: it is read before anything moves.
        *script.alarm_fires.borrow_mut() = Some((1, ERRORS.into(), "Threshold Crossed".into()));
        let ui = Recorder::default();
        let e = roll_out(&script, &ui, &deployment, updated())
            .await
            .unwrap_err();
        assert_eq!(e.code, deployer::exit::Code::Failed);
        assert!(
            e.message.contains(&format!(
                "alarm `{ERRORS}` is already ALARM (Threshold Crossed)"
            )) && e.message.contains("no traffic was moved"),
            "{}",
            e.message
        );
        assert!(script.moves.borrow().is_empty());
        assert_eq!(script.alarm_calls.get(), 1);
    }

    #[tokio::test]
    async fn nothing_moves_when_live_serves_the_newest_version() {
        let (script, deployment) = script();
        let ui = Recorder::default();
        let mut up = updated();
        up.outcome = Outcome::NoChanges {
            stack: with_versions("UPDATE_COMPLETE", "4", "4").unwrap(),
        };
        roll_out(&script, &ui, &deployment, up).await.unwrap();
        assert!(script.moves.borrow().is_empty());
        assert_eq!(script.alarm_calls.get(), 0);
    }
}
