//! The stack state machine: settle whatever state a stack is in, then bring it to the wanted
//! template through a change set, watching events until it is done. Never prints: it reports
//! [`Progress`] to a [`Ui`] and returns outcomes or errors.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudformation::types::{ChangeAction, StackStatus};

use super::cloud::{ChangeSetRequest, Cloud, CloudError, StackRequest};
use super::decide::{Action, Decided, decide, decide_for, is_in_progress, is_success};
use super::model::{Change, DIGEST_TAG, Phase, Stack, StackEvent, digest, phase, root_cause};
pub use super::model::{Confirmation, Deployment, Mode, Outcome, Progress, Teardown, Ui};
use super::watch::Watch;
pub use super::watch::{Poll, is_new};
use crate::exit::{Code, Error};

/// The largest template CreateChangeSet and UpdateStack take inline (`TemplateBody`).
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// The engine over a cloud and a UI.
pub struct Engine<'a, C, U> {
    cloud: &'a C,
    ui: &'a U,
    poll: Poll,
    interrupts: Interrupts,
    /// Ctrl-C presses already answered (a rollout's "roll back or finish?"): the command goes
    /// on as if they had not been pressed.
    answered: std::cell::Cell<usize>,
    resume_hint: String,
    /// `plan --upload-template`: a template over the inline limit may be uploaded to preview it.
    plan_uploads_template: bool,
    /// `bootstrap --express`: deployer's own stack in express mode.
    express_own_stack: bool,
}

/// Ctrl-C presses, counted by a signal task and read by the engine at safe points.
#[derive(Debug, Clone, Default)]
pub struct Interrupts {
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Interrupts {
    /// Records one Ctrl-C.
    pub fn bump(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// How many so far.
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once more than `n` have happened.
    async fn beyond(&self, n: usize) {
        loop {
            // Created before the check, so a press in between still wakes it.
            let notified = self.notify.notified();
            if self.count() > n {
                return;
            }
            notified.await;
        }
    }
}

/// What the first Ctrl-C does while an operation is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnInterrupt {
    /// Stop watching; CloudFormation goes on.
    StopWatching,
    /// The stack is being created and holds nothing yet: delete it.
    DeleteCreating,
    /// Cancel the update; CloudFormation rolls it back.
    CancelUpdate,
}

/// A change set that was created, waited for and shown, not yet executed.
struct Review {
    /// Change set ARN.
    id: String,
    /// Stack ARN.
    stack_id: String,
    /// The change set made the (empty) stack.
    husk_created: bool,
    /// A CREATE change set.
    create: bool,
    /// The stack before it, if any.
    stack: Option<Stack>,
    /// What it changes, as CloudFormation says.
    changes: Vec<Change>,
    /// What it would destroy.
    losses: Vec<super::data_loss::Loss>,
}

/// What reviewing found.
enum Reviewed {
    /// Changes to decide on.
    Ready(Review),
    /// Nothing to change; the stack, its digest recorded.
    NoChanges(Stack),
    /// An express change set that replaces these resources, deleted: such an update does not
    /// run while rollback is off, so it is made again in standard mode. The stack as before.
    NeedsStandard(Vec<String>, Option<Stack>),
}

/// What to do with a reviewed change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Execute it.
    Go,
    /// Ask the person, then decide again with the answer.
    Ask,
    /// Delete it and stop.
    Refuse(Refusal),
    /// `plan`: show it, then delete it.
    Plan,
}

/// Why a change set does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It would destroy data and `--allow-data-loss` was not given (exit 4).
    DataLoss,
    /// The person said no.
    Cancelled,
    /// Nobody can be asked and `--yes` was not given (exit 2).
    NotInteractive,
}

/// The decision on a reviewed change set: from the mode, whether it destroys data, and the
/// person's answer once asked (`None`: not asked yet).
pub fn gate(mode: Mode, destroys_data: bool, answer: Option<Confirmation>) -> Gate {
    match mode {
        Mode::Plan => Gate::Plan,
        Mode::Apply {
            allow_data_loss: false,
            ..
        } if destroys_data => Gate::Refuse(Refusal::DataLoss),
        Mode::Apply { yes: true, .. } => Gate::Go,
        Mode::Apply { .. } => match answer {
            None => Gate::Ask,
            Some(Confirmation::Yes) => Gate::Go,
            Some(Confirmation::No) => Gate::Refuse(Refusal::Cancelled),
            Some(Confirmation::NotInteractive) => Gate::Refuse(Refusal::NotInteractive),
        },
    }
}

/// A cloud error as the error that ends the command, with the exit code its kind calls for.
pub fn cloud_failure(what: &str, e: CloudError) -> Error {
    let hint = match e.exit_code() {
        Code::Credentials => {
            ": refresh the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE)"
        }
        Code::Denied => ": the credentials lack this IAM permission",
        Code::Unreachable => ": check the network, AWS_ENDPOINT_URL, and that the region exists",
        _ => "",
    };
    Error::new(e.exit_code(), format!("{what}: {e}{hint}"))
}

/// A token unique to one operation: CloudFormation uses it to make retries idempotent.
pub fn token(kind: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("deployer-{kind}-{nanos}")
}

impl<'a, C: Cloud, U: Ui> Engine<'a, C, U> {
    /// An engine with the default polling cadence.
    pub fn new(cloud: &'a C, ui: &'a U) -> Self {
        Engine {
            cloud,
            ui,
            poll: Poll::default(),
            interrupts: Interrupts::default(),
            answered: std::cell::Cell::new(0),
            plan_uploads_template: false,
            express_own_stack: false,
            resume_hint: "deployer status --watch".into(),
        }
    }

    /// The same engine polling at another cadence (tests against fakes poll fast).
    pub fn with_poll(mut self, poll: Poll) -> Self {
        self.poll = poll;
        self
    }

    /// The same engine reacting to Ctrl-C presses counted in `interrupts`; `resume_hint` is the
    /// command that resumes watching after a second Ctrl-C.
    pub fn with_interrupts(
        mut self,
        interrupts: Interrupts,
        resume_hint: impl Into<String>,
    ) -> Self {
        self.interrupts = interrupts;
        self.resume_hint = resume_hint.into();
        self
    }

    /// With [`Mode::Plan`], whether a template too large to send inline may be uploaded to the
    /// artifact bucket (the one write `plan` can make; `up` uploads the same object).
    pub fn with_plan_uploads_template(mut self, allowed: bool) -> Self {
        self.plan_uploads_template = allowed;
        self
    }

    /// Whether [`Self::put_stack`] runs deployer's own stack in express mode.
    pub fn with_express_own_stack(mut self, express: bool) -> Self {
        self.express_own_stack = express;
        self
    }

    /// The cloud it works on (for the other parts of converge).
    pub(super) fn cloud(&self) -> &C {
        self.cloud
    }

    /// Shows progress.
    pub(super) fn report(&self, progress: Progress) {
        self.ui.progress(progress);
    }

    /// How often it polls.
    pub(super) fn poll_schedule(&self) -> Poll {
        self.poll
    }

    fn interrupted(&self) -> bool {
        self.interrupts.count() > self.answered.get()
    }

    /// Ctrl-C presses so far.
    pub(super) fn interrupt_count(&self) -> usize {
        self.interrupts.count()
    }

    /// The Ctrl-C presses so far were answered: what follows runs as if none had been.
    pub(super) fn answered_interrupts(&self) {
        self.answered.set(self.interrupts.count());
    }

    /// Sleeps `delay`; `true` when a Ctrl-C beyond the first `handled` came first.
    pub(super) async fn wait_or_interrupt(&self, delay: Duration, handled: usize) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => self.interrupts.count() > handled,
            () = self.interrupts.beyond(handled) => true,
        }
    }

    fn stopped_watching(&self, name: &str) -> Error {
        Error::new(
            Code::Interrupted,
            format!(
                "interrupted: stopped watching {name}, which CloudFormation is still changing. Resume watching with: {}",
                self.resume_hint
            ),
        )
    }

    /// Asks a yes/no question (no: a person said no, or nobody can be asked).
    pub fn ask(&self, question: &str) -> Confirmation {
        self.ui.confirm(question)
    }

    /// Brings existing resources into a new stack `deployment` names, with a change set of type
    /// IMPORT whose `template` holds only them; the stack as imported, its digest not the
    /// deployment's, so that the update that follows is not skipped.
    pub async fn import_into_new_stack(
        &self,
        deployment: &Deployment,
        template: &serde_json::Value,
        imports: Vec<super::model::ResourceToImport>,
    ) -> Result<Stack, Error> {
        let name = &deployment.stack_name;
        let recorded = format!("{}-import", deployment.digest());
        let request = ChangeSetRequest {
            stack_name: name.clone(),
            name: token("import"),
            create: true,
            template_body: serde_json::to_string(template).expect("JSON values always serialize"),
            template_url: None,
            // The template declares none of the stack's parameters.
            parameters: BTreeMap::new(),
            tags: self.tags_with(deployment, &recorded),
            imports,
            // An import changes nothing to wait for, and keeps its rollback.
            express: false,
            revert_drift: false,
        };
        self.step(format!("{name}: creating an IMPORT change set"));
        let (id, stack_id) = self.cloud.create_change_set(&request).await.map_err(|e| {
            cloud_failure(&format!("cannot create an import change set for {name}"), e)
        })?;
        let change_set = self.wait_for_change_set(&id).await?;
        if !change_set.is_ready() {
            let reason = change_set
                .reason
                .unwrap_or_else(|| change_set.status.as_str().to_string());
            self.delete_change_set(&id).await;
            return Err(Error::failed(format!(
                "{name}: the import change set failed: {reason}. Nothing was imported; the tables are as they were"
            )));
        }
        self.ui.progress(Progress::Changes {
            stack: name.clone(),
            changes: change_set.changes.clone(),
        });
        // As a create: a Ctrl-C deletes the new stack, which keeps the tables (`Retain`).
        let review = Review {
            id,
            stack_id,
            husk_created: true,
            create: true,
            stack: None,
            changes: change_set.changes,
            losses: Vec::new(),
        };
        match self.execute(deployment, &recorded, review).await? {
            Outcome::Applied { stack, .. } | Outcome::NoChanges { stack } => Ok(stack),
            Outcome::Planned { .. } => unreachable!("an executed import is applied"),
        }
    }

    /// Reports a step.
    pub fn step(&self, message: impl Into<String>) {
        self.ui.progress(Progress::Step(message.into()));
    }

    /// Shows a warning: something did not happen that does not fail the command.
    pub fn warn(&self, message: impl Into<String>) {
        self.ui.progress(Progress::Warning(message.into()));
    }

    async fn describe(&self, name: &str) -> Result<Option<Stack>, Error> {
        super::describe(self.cloud, name).await
    }

    /// Settles the stack: waits out running operations, clears failed creations, continues stuck
    /// rollbacks. Returns the stack to update, or `None` when it must be created.
    pub async fn settle(&self, name: &str) -> Result<Option<Stack>, Error> {
        let stack = self.describe(name).await?;
        self.settle_from(name, stack).await
    }

    /// [`Engine::settle`] starting from a description just made, which saves one DescribeStacks.
    async fn settle_from(
        &self,
        name: &str,
        described: Option<Stack>,
    ) -> Result<Option<Stack>, Error> {
        let mut described = Some(described);
        // Each round either finishes or waits for CloudFormation; a handful always suffices.
        for _ in 0..8 {
            let stack = match described.take() {
                Some(stack) => stack,
                None => self.describe(name).await?,
            };
            match decide_for(stack) {
                Decided::Create(reviewed) => return Ok(reviewed),
                Decided::Update(stack) => return Ok(Some(stack)),
                Decided::Wait(stack) => {
                    self.step(format!(
                        "{name} is {}: waiting for it to settle",
                        stack.status.as_str()
                    ));
                    self.watch(&stack, None, Instant::now()).await?;
                }
                Decided::DeleteThenCreate(stack) => {
                    self.step(format!(
                        "{name} is {} after a failed creation, so it holds nothing to keep: deleting it first",
                        stack.status.as_str()
                    ));
                    let token = token("delete");
                    let started = Instant::now();
                    self.cloud
                        .delete_stack(&stack.id, &token, false)
                        .await
                        .map_err(|e| cloud_failure(&format!("cannot delete {name}"), e))?;
                    self.watch(&stack, Some(&token), started).await?;
                }
                Decided::ContinueRollbackThenUpdate(stack) => {
                    self.step(format!(
                        "{name} is UPDATE_ROLLBACK_FAILED: continuing the rollback"
                    ));
                    let token = token("continue");
                    let started = Instant::now();
                    self.cloud
                        .continue_update_rollback(name, &token)
                        .await
                        .map_err(|e| {
                            cloud_failure(&format!("cannot continue the rollback of {name}"), e)
                        })?;
                    self.watch(&stack, Some(&token), started).await?;
                }
                Decided::Stop(stack, why) => return Err(self.stopped(&stack, name, &why).await),
            }
        }
        Err(Error::failed(format!(
            "{name} did not settle: it keeps changing status; try again later"
        )))
    }

    /// Why nothing automatic is safe, with the resources whose operations failed.
    async fn stopped(&self, stack: &Stack, name: &str, why: &str) -> Error {
        let events = self
            .cloud
            .events(&stack.id, SystemTime::UNIX_EPOCH)
            .await
            .unwrap_or_default();
        let failed: Vec<String> = failed_resources(&events, name);
        let detail = if failed.is_empty() {
            String::new()
        } else {
            format!("\n{}", failed.join("\n"))
        };
        Error::failed(format!("{name}: {why}{detail}"))
    }

    /// Polls the stack and its new events until no operation is running; returns the final stack
    /// (`None` when it is gone) and the events seen.
    async fn watch(
        &self,
        stack: &Stack,
        token: Option<&str>,
        started: Instant,
    ) -> Result<(Option<Stack>, Vec<StackEvent>), Error> {
        self.watch_reacting(stack, token, started, OnInterrupt::StopWatching, &[])
            .await
    }

    /// [`Self::watch`], with the first Ctrl-C handled as `on_interrupt` says and the second one
    /// ending the watch (exit 130) with the command that resumes it.
    async fn watch_reacting(
        &self,
        stack: &Stack,
        token: Option<&str>,
        started: Instant,
        on_interrupt: OnInterrupt,
        expected: &[Change],
    ) -> Result<(Option<Stack>, Vec<StackEvent>), Error> {
        let name = &stack.name;
        let mut watch = Watch::new(stack, token, started, expected, self.poll.first);
        let shows_events = self.ui.shows_events();
        let mut handled = self.interrupts.count();
        let mut reacted = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(watch.delay) => {}
                () = self.interrupts.beyond(handled) => {}
            }
            if self.interrupts.count() > handled {
                handled = self.interrupts.count();
                if reacted || on_interrupt == OnInterrupt::StopWatching {
                    return Err(self.stopped_watching(name));
                }
                reacted = true;
                self.stop_operation(stack, on_interrupt).await;
            }
            let mut current: Option<Option<Stack>> = None;
            let mut read_events = shows_events || watch.tagged;
            if !read_events {
                let described = self.describe(&stack.id).await?;
                read_events = watch.described(described.as_ref());
                current = Some(described);
            }
            let mut ended = false;
            if read_events {
                let events = watch.new_events(self.cloud).await;
                ended = watch.take(events, self.ui);
            }
            watch.polled(&self.poll);
            // Deleted: AWS's own event says so; nothing is left to describe.
            if watch.tagged
                && ended
                && watch.status == StackStatus::DeleteComplete
                && current.is_none()
            {
                return Ok((None, watch.all));
            }
            if watch.tagged && !ended && current.is_none() && !watch.describe_due() {
                watch.waiting(self.ui, None);
                continue;
            }
            let current = match current {
                Some(current) => current,
                // By id, so that a deleted stack is still found (as DELETE_COMPLETE).
                None => {
                    watch.redescribed();
                    self.describe(&stack.id).await?
                }
            };
            if let Some(s) = current.as_ref().filter(|s| is_in_progress(&s.status)) {
                watch.waiting(self.ui, Some(&s.status));
                continue;
            }
            let ended_well = current
                .as_ref()
                .is_none_or(|s| is_success(&s.status) || s.status == StackStatus::DeleteComplete);
            if !shows_events && !ended_well {
                // Nobody watched the events, but a failure is explained by them.
                let events = watch.new_events(self.cloud).await;
                watch.all.extend(events);
            }
            return Ok(match current {
                Some(s) if s.status == StackStatus::DeleteComplete => (None, watch.all),
                other => (other, watch.all),
            });
        }
    }

    /// The first Ctrl-C while watching: delete a stack being created (it holds nothing yet), or
    /// cancel an update (CloudFormation rolls it back); watching goes on.
    async fn stop_operation(&self, stack: &Stack, on_interrupt: OnInterrupt) {
        let name = &stack.name;
        let token = token("interrupt");
        let reaction = match on_interrupt {
            OnInterrupt::DeleteCreating => {
                self.ui.progress(Progress::Warning(format!(
                    "Ctrl-C: deleting {name}, which was being created and holds nothing yet (Ctrl-C again to stop watching)"
                )));
                self.cloud.delete_stack(&stack.id, &token, false).await
            }
            _ => {
                self.ui.progress(Progress::Warning(format!(
                    "Ctrl-C: cancelling the update of {name}; CloudFormation rolls it back (Ctrl-C again to stop watching)"
                )));
                self.cloud.cancel_update_stack(name, &token).await
            }
        };
        if let Err(e) = reaction {
            self.ui.progress(Progress::Warning(format!(
                "could not stop the operation on {name}: {e}"
            )));
        }
    }

    /// `status --watch`: follows the running operation, if any, until it settles.
    pub async fn follow(&self, name: &str) -> Result<Option<Stack>, Error> {
        let Some(stack) = self.describe(name).await? else {
            return Ok(None);
        };
        if !is_in_progress(&stack.status) {
            return Ok(Some(stack));
        }
        self.step(format!(
            "{name} is {}: watching until it settles",
            stack.status.as_str()
        ));
        let (done, _) = self.watch(&stack, None, Instant::now()).await?;
        Ok(done)
    }

    /// Brings the stack to `deployment`, or with [`Mode::Plan`] only shows what would change.
    pub async fn deploy(&self, deployment: &Deployment, mode: Mode) -> Result<Outcome, Error> {
        let existing = self.describe(&deployment.stack_name).await?;
        let recorded = self.recorded_digest(deployment, existing.as_ref()).await?;
        self.deploy_from(deployment, mode, existing, recorded).await
    }

    /// The digest recorded for the stack as described (see [`super::recorded`]).
    pub async fn recorded_digest(
        &self,
        deployment: &Deployment,
        stack: Option<&Stack>,
    ) -> Result<Option<String>, Error> {
        match stack {
            Some(stack) => {
                super::recorded::read(self.cloud, deployment.bucket.as_deref(), stack).await
            }
            None => Ok(None),
        }
    }

    /// The stack tags a deployment sends: the spec's, and the digest only where there is no
    /// bucket to record it in (stack tags propagate to every resource).
    fn tags_with(&self, deployment: &Deployment, recorded: &str) -> BTreeMap<String, String> {
        let mut tags = deployment.tags.clone();
        if deployment.bucket.is_none() {
            tags.insert(DIGEST_TAG.into(), recorded.to_string());
        }
        tags
    }

    /// Records `digest` as what `stack` runs: in the bucket (a failure is a warning: the next
    /// `up` then finds no record and a change set with no changes, and records it).
    async fn record(&self, deployment: &Deployment, stack: &Stack, digest: &str) {
        if let Some(bucket) = &deployment.bucket
            && let Err(e) = super::recorded::write(self.cloud, bucket, stack, digest).await
        {
            self.warn(format!(
                "{}: deployed, but what was deployed could not be recorded in s3://{bucket}/{}: {e}; the next `up` makes a change set to find out",
                stack.name,
                super::recorded::key(&stack.name)
            ));
        }
    }

    /// [`Self::deploy`] from the stack as just described (`None`: there is none) and the digest
    /// recorded for it ([`Self::recorded_digest`]).
    pub async fn deploy_from(
        &self,
        deployment: &Deployment,
        mode: Mode,
        existing: Option<Stack>,
        recorded: Option<String>,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        let digest = deployment.digest();
        if let Some(stack) = existing.as_ref().filter(|s| {
            recorded.as_ref() == Some(&digest)
                && decide(Some(&s.status)) == Action::Update
                && !deployment.revert_drift
        }) {
            return self
                .unchanged(deployment, mode, stack.clone(), &digest)
                .await;
        }
        // `plan` changes nothing: what settling would do is said, not done.
        let existing = match mode {
            Mode::Plan => match self.planned_settling(name, existing) {
                Some(existing) => existing,
                None => {
                    return Ok(Outcome::Planned {
                        changes: Vec::new(),
                    });
                }
            },
            Mode::Apply { .. } => existing,
        };
        let stack = self.settle_from(name, existing).await?;
        let create = stack
            .as_ref()
            .is_none_or(|s| s.status == StackStatus::ReviewInProgress);
        // The deployed template and who the caller is: two independent reads, at once.
        let (deployed, caller) = tokio::join!(
            async {
                match &stack {
                    Some(stack) if !create => self.deployed_template(&stack.name).await.map(Some),
                    _ => Ok(None),
                }
            },
            async {
                match deployment.check_permissions {
                    true => Some(self.cloud.caller_arn().await),
                    false => None,
                }
            }
        );
        let deployed = deployed?;
        let wanted: serde_json::Value = serde_json::from_str(&deployment.template_body)
            .map_err(|e| Error::failed(format!("the rendered template is not JSON: {e}")))?;
        if let Some(caller) = caller {
            let caller = caller.map_err(|e| {
                cloud_failure("cannot learn who the caller is (sts:GetCallerIdentity)", e)
            })?;
            self.check_permissions(deployment, &caller, deployed.as_ref(), &wanted)
                .await?;
        }
        let parameters_change = stack
            .as_ref()
            .is_some_and(|s| s.parameters != deployment.parameters);
        let transition = super::transition::plan(deployed.as_ref(), &wanted, parameters_change)
            .map_err(|why| {
                Error::usage(format!(
                    "{name}: AWS would refuse this update, so nothing was sent:\n  {}",
                    why.join("\n  ")
                ))
            })?;
        let index_tables = match (&stack, &deployed) {
            (Some(stack), Some(deployed)) => {
                self.read_tables(stack, deployed, &wanted, &transition, mode)
                    .await?
            }
            _ => BTreeMap::new(),
        };
        self.apply_steps(deployment, stack, deployed, transition, index_tables, mode)
            .await
    }

    /// Nothing changed since the recorded deployment: the stack as it is, its termination
    /// protection as wanted, and for an ephemeral env (`refresh_tags`) its expiry extended.
    async fn unchanged(
        &self,
        deployment: &Deployment,
        mode: Mode,
        stack: Stack,
        digest: &str,
    ) -> Result<Outcome, Error> {
        if mode == Mode::Plan {
            return Ok(Outcome::NoChanges { stack });
        }
        let stack = self
            .ensure_protection(stack, deployment.termination_protection)
            .await;
        if !deployment.refresh_tags {
            return Ok(Outcome::NoChanges { stack });
        }
        let tags = self.tags_with(deployment, digest);
        self.step(format!("{}: extending the expiry", deployment.stack_name));
        let stack = self.update_tags(&stack, deployment, &tags).await?;
        Ok(Outcome::NoChanges { stack })
    }

    /// `plan`: what settling the stack would do, said; the stack to plan against, or `None`
    /// when no change set can be previewed yet.
    fn planned_settling(&self, name: &str, existing: Option<Stack>) -> Option<Option<Stack>> {
        let Some(stack) = &existing else {
            return Some(existing);
        };
        match decide(Some(&stack.status)) {
            Action::DeleteThenCreate => {
                self.step(format!(
                    "{name} is {}: `up` deletes it first (a failed creation holds nothing), then creates it",
                    stack.status.as_str()
                ));
                Some(None)
            }
            Action::ContinueRollbackThenUpdate => {
                self.warn(format!(
                    "{name} is UPDATE_ROLLBACK_FAILED: `up` continues the rollback first; the update's changes can be previewed once it has"
                ));
                None
            }
            _ => Some(existing),
        }
    }

    /// The permission pre-flight: denied actions stop the deployment (exit 5); what cannot be
    /// confirmed is a warning.
    async fn check_permissions(
        &self,
        deployment: &Deployment,
        caller: &str,
        deployed: Option<&serde_json::Value>,
        wanted: &serde_json::Value,
    ) -> Result<(), Error> {
        let app = deployment
            .tags
            .get(super::model::APP_TAG)
            .map(String::as_str);
        let scope = super::preflight::Scope::of(
            caller,
            &self.cloud.region(),
            &deployment.stack_name,
            deployment.bucket.as_deref(),
        )
        .with_app(app);
        match super::preflight::check(self.cloud, caller, &scope, deployed, wanted).await? {
            super::preflight::Checked::Allowed => {}
            super::preflight::Checked::Skipped(why)
            | super::preflight::Checked::Unconfirmed(why) => self.warn(why),
        }
        Ok(())
    }

    /// The tables read before anything is sent: those whose TTL is enabled again (checked
    /// here), and (for `up`; `plan` sends one change set and waits for nothing) those whose
    /// indexes change, returned by logical id. One ListStackResources names them all.
    async fn read_tables(
        &self,
        stack: &Stack,
        deployed: &serde_json::Value,
        wanted: &serde_json::Value,
        transition: &super::transition::Transition,
        mode: Mode,
    ) -> Result<BTreeMap<String, String>, Error> {
        let enabling = super::transition::ttl_enabling(deployed, wanted);
        let waiting: &[String] = match mode {
            Mode::Apply { .. } => &transition.index_tables,
            Mode::Plan => &[],
        };
        let ids: Vec<String> = enabling.iter().chain(waiting).cloned().collect();
        let names = self.physical_names(&stack.name, &ids).await?;
        let pick = |ids: &[String]| -> BTreeMap<String, String> {
            names
                .iter()
                .filter(|(id, _)| ids.contains(id))
                .map(|(id, n)| (id.clone(), n.clone()))
                .collect()
        };
        self.check_ttl_enabling(stack, &pick(&enabling)).await?;
        Ok(pick(waiting))
    }

    /// Applies the transition's templates in order, one change set each, waiting before each for
    /// `index_tables` (logical id to table name) to be ACTIVE; only the last records the
    /// deployment's digest.
    async fn apply_steps(
        &self,
        deployment: &Deployment,
        stack: Option<Stack>,
        deployed: Option<serde_json::Value>,
        transition: super::transition::Transition,
        index_tables: BTreeMap<String, String>,
        mode: Mode,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        let digest = deployment.digest();
        let count = transition.steps.len();
        if count > 1 {
            let mut lines = Vec::new();
            for (k, notes) in transition.notes.iter().enumerate() {
                lines.push(format!("  update {}: {}", k + 1, notes.join("; ")));
            }
            self.step(format!(
                "{name}: DynamoDB creates or deletes one index per table per update, and an update that does changes nothing else, so this takes {count} updates:\n{}",
                lines.join("\n")
            ));
        }
        let mut stack = stack;
        let mut previous = deployed;
        let mut applied: Vec<Change> = Vec::new();
        for (k, template) in transition.steps.into_iter().enumerate() {
            let last = k + 1 == count;
            // Tables whose indexes change wait to be ACTIVE before each update.
            if !index_tables.is_empty() {
                self.wait_for_indexes(name, &index_tables, count - k)
                    .await?;
            }
            let step = Deployment {
                template_body: serde_json::to_string(&template)
                    .expect("JSON values always serialize"),
                ..deployment.clone()
            };
            // An unfinished sequence must not look done to the next run's no-op check.
            let recorded = if last {
                digest.to_string()
            } else {
                format!("{digest}-step-{}-of-{count}", k + 1)
            };
            let outcome = self
                .apply(&step, &recorded, stack, previous.as_ref(), mode)
                .await?;
            match outcome {
                Outcome::Planned { changes } => {
                    if count > 1 {
                        self.ui.progress(Progress::Warning(format!(
                            "these are the changes of update 1 of {count}; `up` applies the next ones after it"
                        )));
                    }
                    return Ok(Outcome::Planned { changes });
                }
                Outcome::Applied {
                    stack: done,
                    changes,
                } => {
                    applied.extend(changes);
                    stack = Some(done);
                }
                Outcome::NoChanges { stack: same } => stack = Some(same),
            }
            previous = Some(template);
        }
        let stack = stack.expect("every step leaves a stack");
        Ok(if applied.is_empty() {
            Outcome::NoChanges { stack }
        } else {
            Outcome::Applied {
                stack,
                changes: applied,
            }
        })
    }

    /// One change set: [`Self::review`] it, [`gate`] it (asking when the gate says so), then
    /// [`Self::execute`] it or delete it. `recorded` is the digest tag it writes; `deployed` the
    /// template it starts from (none for a create).
    async fn apply(
        &self,
        deployment: &Deployment,
        recorded: &str,
        stack: Option<Stack>,
        deployed: Option<&serde_json::Value>,
        mode: Mode,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        // A first create that nobody reviews loses nothing and needs no answer: a change set
        // would only cost requests and the seconds CloudFormation takes to compute it.
        if stack.is_none() && matches!(mode, Mode::Apply { yes: true, .. }) {
            return self.create_directly(deployment, recorded).await;
        }
        // A CREATE change set would make a stack (REVIEW_IN_PROGRESS) that only DeleteStack
        // removes: `plan` lists what the template creates instead.
        if stack.is_none() && mode == Mode::Plan {
            let changes = self.show_creation(&deployment.stack_name, &deployment.template_body);
            return Ok(Outcome::Planned { changes });
        }
        let review = match self
            .review(deployment, recorded, stack, deployed, mode == Mode::Plan)
            .await?
        {
            Reviewed::Ready(review) => review,
            Reviewed::NoChanges(stack) => return Ok(Outcome::NoChanges { stack }),
            Reviewed::NeedsStandard(replaced, stack) => {
                self.step(format!(
                    "{name}: this update replaces {}, which CloudFormation does not do while rollback is off (express mode): it runs in standard mode",
                    replaced.join(", ")
                ));
                let standard = Deployment {
                    express: false,
                    ..deployment.clone()
                };
                return Box::pin(self.apply(&standard, recorded, stack, deployed, mode)).await;
            }
        };
        self.pass_gate(deployment, recorded, review, mode).await
    }

    /// The reviewed changes through the gate: planned, applied, or refused (the change set
    /// deleted).
    async fn pass_gate(
        &self,
        deployment: &Deployment,
        recorded: &str,
        review: Review,
        mode: Mode,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        let losses = !review.losses.is_empty();
        let mut decision = gate(mode, losses, None);
        if decision == Gate::Ask {
            let question = format!("Apply these {} changes to {name}?", review.changes.len());
            decision = gate(mode, losses, Some(self.ui.confirm(&question)));
        }
        let loss_lines: Vec<String> = review.losses.iter().map(|l| format!("  {l}")).collect();
        let loss_lines = loss_lines.join("\n");
        let refusal = match decision {
            Gate::Plan => {
                if losses {
                    self.warn(format!(
                        "`up` would refuse these changes, which destroy data, without --allow-data-loss:\n{loss_lines}"
                    ));
                }
                self.abandon(&review).await;
                return Ok(Outcome::Planned {
                    changes: review.changes,
                });
            }
            Gate::Go => {
                if losses {
                    self.warn(format!(
                        "--allow-data-loss: going ahead although this destroys data:\n{loss_lines}"
                    ));
                }
                None
            }
            Gate::Ask => unreachable!("the gate was asked with an answer"),
            Gate::Refuse(Refusal::DataLoss) => Some(Error::new(
                Code::DataLoss,
                format!(
                    "refusing to change {name}: it would destroy data\n{loss_lines}\nNothing was changed. Back the data up, then re-run with --allow-data-loss if this is what you want"
                ),
            )),
            Gate::Refuse(Refusal::Cancelled) => {
                Some(Error::failed("cancelled: nothing was changed"))
            }
            Gate::Refuse(Refusal::NotInteractive) => Some(Error::usage(format!(
                "not a terminal, so nobody can confirm the changes to {name}: pass --yes to apply them \
                 (or run `deployer plan` to only see them)"
            ))),
        };
        match refusal {
            Some(error) => {
                self.abandon(&review).await;
                Err(error)
            }
            None => self.execute(deployment, recorded, review).await,
        }
    }

    /// Creates the change set and waits for it; `NoChanges` (the digest recorded) when it has
    /// none, else the changes as shown and what they would destroy.
    async fn review(
        &self,
        deployment: &Deployment,
        recorded: &str,
        stack: Option<Stack>,
        deployed: Option<&serde_json::Value>,
        plan: bool,
    ) -> Result<Reviewed, Error> {
        let name = &deployment.stack_name;
        let create = stack
            .as_ref()
            .is_none_or(|s| s.status == StackStatus::ReviewInProgress);
        let tags = self.tags_with(deployment, recorded);
        let (id, stack_id) = self
            .submit_change_set(deployment, &tags, create, plan)
            .await?;
        let mut review = Review {
            id,
            stack_id,
            // A CREATE change set makes an empty REVIEW_IN_PROGRESS stack; when nothing is
            // executed (plan, refusal), that husk is deleted again so nothing is left behind.
            husk_created: stack.is_none(),
            create,
            stack,
            changes: Vec::new(),
            losses: Vec::new(),
        };
        let change_set = self.wait_for_change_set(&review.id).await?;
        if self.interrupted() {
            self.abandon(&review).await;
            return Err(self.interrupted_before(name));
        }
        // A change set CloudFormation made that lists no resource change still applies new
        // parameter values (a backend that lists only template changes, like moto, shows them
        // that way): it is executed, not taken for "no changes".
        let applies_parameters = change_set.is_ready()
            && review
                .stack
                .as_ref()
                .is_some_and(|s| s.parameters != deployment.parameters);
        if change_set.has_no_changes() && !applies_parameters {
            self.abandon(&review).await;
            let Some(stack) = review.stack else {
                return Err(Error::failed(format!(
                    "{name}: the CREATE change set has no changes"
                )));
            };
            // `plan` records nothing.
            if plan {
                return Ok(Reviewed::NoChanges(stack));
            }
            let stack = self.no_changes(deployment, stack, &tags, recorded).await?;
            return Ok(Reviewed::NoChanges(stack));
        }
        if !change_set.is_ready() {
            self.abandon(&review).await;
            let reason = change_set
                .reason
                .unwrap_or_else(|| change_set.status.as_str().to_string());
            return Err(Error::failed(format!(
                "{name}: the change set failed: {reason}"
            )));
        }
        if deployment.express {
            let replaced = super::express::needs_standard(&change_set.changes);
            if !replaced.is_empty() {
                self.abandon(&review).await;
                return Ok(Reviewed::NeedsStandard(replaced, review.stack));
            }
        }
        let changes = change_set.changes;
        review.losses = self.show_changes(deployment, deployed.filter(|_| !create), &changes);
        review.changes = changes;
        Ok(Reviewed::Ready(review))
    }

    /// A change set with no changes: the stack's tags set where only they differ (stack tags are
    /// no resource, so a backend may see no change), and the deployment recorded.
    async fn no_changes(
        &self,
        deployment: &Deployment,
        stack: Stack,
        tags: &BTreeMap<String, String>,
        recorded: &str,
    ) -> Result<Stack, Error> {
        // The digest tag counts only without a bucket to record it in.
        let ours = |t: &BTreeMap<String, String>| {
            t.iter()
                .filter(|(k, _)| deployment.bucket.is_none() || *k != DIGEST_TAG)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let stack = if ours(&stack.tags) != ours(tags) {
            self.update_tags(&stack, deployment, tags).await?
        } else {
            stack
        };
        self.record(deployment, &stack, recorded).await;
        Ok(stack)
    }

    /// Creates the change set (by URL when the template is too large to send inline); returns
    /// its id and the stack's.
    async fn submit_change_set(
        &self,
        deployment: &Deployment,
        tags: &BTreeMap<String, String>,
        create: bool,
        plan: bool,
    ) -> Result<(String, String), Error> {
        let name = &deployment.stack_name;
        let upload = !plan || self.plan_uploads_template;
        let request = ChangeSetRequest {
            stack_name: name.clone(),
            name: token("cs"),
            create,
            template_body: deployment.template_body.clone(),
            template_url: self.template_url(deployment, upload).await?,
            parameters: deployment.parameters.clone(),
            tags: tags.clone(),
            imports: Vec::new(),
            express: deployment.express,
            // Only an update has drift to revert.
            revert_drift: deployment.revert_drift && !create,
        };
        self.step(format!(
            "{name}: creating {} change set",
            if create { "a CREATE" } else { "an UPDATE" }
        ));
        self.cloud
            .create_change_set(&request)
            .await
            .map_err(|e| cloud_failure(&format!("cannot create a change set for {name}"), e))
    }

    /// Shows what creating the stack adds (every resource of its template, as a CREATE change
    /// set would list them) and returns it.
    pub(super) fn show_creation(&self, stack: &str, template_body: &str) -> Vec<Change> {
        let wanted: serde_json::Value = serde_json::from_str(template_body).unwrap_or_default();
        let changes = super::model::resource_changes(&wanted, ChangeAction::Add);
        self.ui.progress(Progress::Changes {
            stack: stack.to_string(),
            changes: changes.clone(),
        });
        changes
    }

    /// Shows the changes (replacements the backend did not report marked as such) and returns
    /// the data they would lose, judged against the `deployed` template of an update.
    fn show_changes(
        &self,
        deployment: &Deployment,
        deployed: Option<&serde_json::Value>,
        changes: &[Change],
    ) -> Vec<super::data_loss::Loss> {
        let wanted: serde_json::Value =
            serde_json::from_str(&deployment.template_body).unwrap_or_default();
        let (shown, losses) = match deployed {
            Some(deployed) => (
                super::data_loss::with_inferred_replacements(changes, deployed, &wanted),
                super::data_loss::losses(changes, deployed, &wanted),
            ),
            None => (changes.to_vec(), Vec::new()),
        };
        self.ui.progress(Progress::Changes {
            stack: deployment.stack_name.clone(),
            changes: shown,
        });
        losses
    }

    /// Deletes a change set that will not run (and the empty stack a CREATE one made).
    async fn abandon(&self, review: &Review) {
        self.delete_change_set(&review.id).await;
        if review.husk_created {
            let _ = self
                .cloud
                .delete_stack(&review.stack_id, &token("husk"), false)
                .await;
        }
    }

    fn interrupted_before(&self, name: &str) -> Error {
        Error::new(
            Code::Interrupted,
            format!("interrupted before {name} changed: the change set was deleted"),
        )
    }

    /// CreateStack (no change set) and watches it to the end; Ctrl-C deletes what it made.
    async fn create_directly(
        &self,
        deployment: &Deployment,
        recorded: &str,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        let changes = self.show_creation(&deployment.stack_name, &deployment.template_body);
        if self.interrupted() {
            return Err(Error::new(
                Code::Interrupted,
                format!("interrupted before {name} was created: nothing was changed"),
            ));
        }
        let tags = self.tags_with(deployment, recorded);
        let token = token("create");
        let request = StackRequest {
            stack_name: name.clone(),
            create: true,
            template_body: Some(deployment.template_body.clone()),
            template_url: self.template_url(deployment, true).await?,
            termination_protection: deployment.termination_protection,
            parameters: deployment.parameters.clone(),
            tags,
            token: token.clone(),
            express: deployment.express,
        };
        self.step(format!("{name}: creating the stack"));
        let started = Instant::now();
        let id = self
            .cloud
            .put_stack(&request)
            .await
            .map_err(|e| cloud_failure(&format!("cannot create {name}"), e))?;
        let watched = Stack::being_created(&id, name);
        let watch = self
            .watch_reacting(
                &watched,
                Some(&token),
                started,
                OnInterrupt::DeleteCreating,
                &changes,
            )
            .await?;
        self.finish(deployment, recorded, true, watch, changes)
            .await
    }

    /// Executes a reviewed change set and watches it to the end; Ctrl-C undoes a create and
    /// cancels an update.
    async fn execute(
        &self,
        deployment: &Deployment,
        recorded: &str,
        review: Review,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        if self.interrupted() {
            self.abandon(&review).await;
            return Err(self.interrupted_before(name));
        }
        let token = token("exec");
        let started = Instant::now();
        self.step(format!("{name}: executing the change set"));
        self.cloud
            .execute_change_set(&review.id, &token)
            .await
            .map_err(|e| cloud_failure(&format!("cannot execute the change set for {name}"), e))?;
        let watched = Stack::being_created(&review.stack_id, name);
        let on_interrupt = if review.create {
            OnInterrupt::DeleteCreating
        } else {
            OnInterrupt::CancelUpdate
        };
        let watch = self
            .watch_reacting(
                &watched,
                Some(&token),
                started,
                on_interrupt,
                &review.changes,
            )
            .await?;
        self.finish(deployment, recorded, review.create, watch, review.changes)
            .await
    }

    /// The end of a watched create or update: an interruption, a failure with its root cause,
    /// or the stack as applied (termination protection as wanted, `recorded` recorded).
    async fn finish(
        &self,
        deployment: &Deployment,
        recorded: &str,
        create: bool,
        (done, events): (Option<Stack>, Vec<StackEvent>),
        changes: Vec<Change>,
    ) -> Result<Outcome, Error> {
        let name = &deployment.stack_name;
        if self.interrupted() {
            let end = done.as_ref().map_or("deleted".to_string(), |s| {
                format!("now {}", s.status.as_str())
            });
            let what = if create {
                "the creation was undone"
            } else {
                "the update was cancelled and rolled back"
            };
            return Err(Error::new(
                Code::Interrupted,
                format!("interrupted: {what}; {name} is {end}"),
            ));
        }
        let done = match done {
            Some(stack) if is_success(&stack.status) => stack,
            other => return Err(self.failure(name, other.as_ref(), &events)),
        };
        let done = self
            .ensure_protection(done, deployment.termination_protection)
            .await;
        self.record(deployment, &done, recorded).await;
        Ok(Outcome::Applied {
            stack: done,
            changes,
        })
    }

    /// Turns termination protection on or off as wanted. Change sets cannot carry it, so this is
    /// a separate call; when it fails the deployment still stands, so it warns instead of failing
    /// (every later `up` tries again, and `deployer down` refuses protected envs regardless).
    async fn ensure_protection(&self, stack: Stack, wanted: bool) -> Stack {
        if stack.termination_protection == wanted {
            return stack;
        }
        match self
            .cloud
            .set_termination_protection(&stack.id, wanted)
            .await
        {
            Ok(()) => Stack {
                termination_protection: wanted,
                ..stack
            },
            Err(e) => {
                let state = if wanted { "on" } else { "off" };
                self.ui.progress(Progress::Warning(format!(
                    "could not turn termination protection {state} for {}: {e}",
                    stack.name
                )));
                stack
            }
        }
    }

    /// The deployed template of a stack, parsed.
    async fn deployed_template(&self, name: &str) -> Result<serde_json::Value, Error> {
        let text = self.cloud.deployed_template(name).await.map_err(|e| {
            cloud_failure(&format!("cannot read the deployed template of {name}"), e)
        })?;
        Ok(self.parse_template(name, &text))
    }

    /// A deployed template as JSON, the only form deployer deploys. Anything else (a template
    /// deployed by hand in YAML) reads as empty, with a warning: the data-loss guard then counts
    /// every removal as a loss, and no priority is known to be taken.
    fn parse_template(&self, name: &str, text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|_| {
            self.ui.progress(Progress::Warning(format!(
                "the deployed template of {name} is not JSON, so deployer did not deploy it: \
                 its resources are treated as unknown (every removal counts as a data loss)"
            )));
            serde_json::Value::Null
        })
    }

    /// The URL of a template too large to send inline, in the artifact bucket under its sha256
    /// (uploaded first unless it is there; `upload` false: `plan`, which then says it cannot
    /// preview); `None` when it fits inline.
    async fn template_url(
        &self,
        deployment: &Deployment,
        upload: bool,
    ) -> Result<Option<String>, Error> {
        let body = deployment.template_body.as_bytes();
        if body.len() <= TEMPLATE_BODY_LIMIT {
            return Ok(None);
        }
        let Some(bucket) = &deployment.bucket else {
            return Err(Error::usage(format!(
                "the template of {} has {} bytes, over CloudFormation's inline limit of {TEMPLATE_BODY_LIMIT}, and there is no bucket to pass it through",
                deployment.stack_name,
                body.len()
            )));
        };
        use sha2::Digest as _;
        let sha256: [u8; 32] = sha2::Sha256::digest(body).into();
        let key = format!(
            "templates/{}/{}.json",
            deployment.stack_name,
            crate::build::hex(&sha256)
        );
        let exists = self
            .cloud
            .object_exists(bucket, &key)
            .await
            .map_err(|e| cloud_failure(&format!("cannot look for s3://{bucket}/{key}"), e))?;
        if !exists && !upload {
            return Err(Error::usage(format!(
                "the template of {} has {} bytes, over CloudFormation's inline limit of {TEMPLATE_BODY_LIMIT}: a change set reads it from s3://{bucket}/{key}, which is not there yet, and `plan` writes nothing. Nothing was changed. Run `deployer plan --upload-template` to upload it (`up` uploads the same object), or `deployer up`",
                deployment.stack_name,
                body.len()
            )));
        }
        if !exists {
            self.cloud
                .put_object(bucket, &key, body.to_vec(), &sha256)
                .await
                .map_err(|e| cloud_failure(&format!("cannot upload s3://{bucket}/{key}"), e))?;
        }
        Ok(Some(self.cloud.object_url(bucket, &key)))
    }

    /// The error for a failed operation: the root cause first, then the final status.
    fn failure(&self, name: &str, stack: Option<&Stack>, events: &[StackEvent]) -> Error {
        let status = stack.map_or(StackStatus::DeleteComplete, |s| s.status.clone());
        let mut message = match root_cause(events, name) {
            Some(cause) => format!(
                "{} ({}) {}: {}\n",
                cause.logical_id,
                cause.resource_type,
                cause.status,
                cause.reason.as_deref().unwrap_or("no reason given")
            ),
            None => String::new(),
        };
        let rolled_back = super::model::rolled_back(events, name);
        if !rolled_back.is_empty() {
            message.push_str(&format!("rolled back: {}\n", rolled_back.join(", ")));
        }
        message.push_str(&format!("{name} ended in {status}"));
        if let Some(reason) = stack.and_then(|s| s.reason.as_deref()) {
            message.push_str(&format!(": {reason}"));
        }
        Error::failed(message)
    }

    async fn wait_for_change_set(&self, id: &str) -> Result<super::model::ChangeSet, Error> {
        // CloudFormation computes a change set in seconds, and the whole deploy waits on it:
        // polled at least every half second.
        let poll = Poll {
            first: self.poll.first.min(Duration::from_millis(200)),
            max: self.poll.max.min(Duration::from_millis(500)),
            ..self.poll
        };
        let mut delay = poll.first;
        loop {
            let change_set = self
                .cloud
                .change_set(id)
                .await
                .map_err(|e| cloud_failure("cannot describe the change set", e))?;
            if !change_set.is_pending() || self.interrupted() {
                return Ok(change_set);
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.interrupts.beyond(self.answered.get()) => {}
            }
            delay = poll.next(delay);
        }
    }

    async fn delete_change_set(&self, id: &str) {
        // A leftover change set costs nothing and expires with the stack; never fail over it.
        let _ = self.cloud.delete_change_set(id).await;
    }

    /// Writes the stack's tags without changing its template: records the digest after a change
    /// set with no changes (so the next run skips the change set), or extends an expiry.
    async fn update_tags(
        &self,
        stack: &Stack,
        deployment: &Deployment,
        tags: &BTreeMap<String, String>,
    ) -> Result<Stack, Error> {
        let token = token("tags");
        // The template is unchanged: reuse the deployed one rather than send it again.
        let request = StackRequest {
            stack_name: stack.name.clone(),
            create: false,
            template_body: None,
            template_url: None,
            termination_protection: stack.termination_protection,
            parameters: deployment.parameters.clone(),
            tags: tags.clone(),
            token: token.clone(),
            express: deployment.express,
        };
        let started = Instant::now();
        match self.cloud.put_stack(&request).await {
            Ok(_) => {
                let (done, _) = self.watch(stack, Some(&token), started).await?;
                Ok(done.unwrap_or_else(|| stack.clone()))
            }
            // Tags only differ in ways CloudFormation ignores: nothing to record.
            Err(e) if e.is_no_updates() => Ok(stack.clone()),
            Err(e) => Err(cloud_failure(
                &format!("cannot record the digest on {}", stack.name),
                e,
            )),
        }
    }

    /// Creates or updates a stack directly (no change set): for deployer's own stacks (the
    /// bootstrap stack, an app's shared load balancer), tagged `tags`. `existing` is its
    /// description, just made.
    pub async fn put_stack(
        &self,
        name: &str,
        template_body: &str,
        parameters: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
        existing: Option<Stack>,
    ) -> Result<Stack, Error> {
        let digest = own_stack_digest(template_body, parameters);
        let mut existing = existing;
        // Two deploys may find the stack missing or outdated at the same moment (CI jobs of
        // several branches): the one whose request comes second waits for the other's and
        // decides again, a few times at most.
        for _ in 0..3 {
            if let Some(stack) = existing
                .as_ref()
                .filter(|s| own_stack_is_current(s, &digest))
            {
                return Ok(stack.clone());
            }
            let stack = self.settle_from(name, existing).await?;
            let mut tags = tags.clone();
            tags.insert(DIGEST_TAG.to_string(), digest.clone());
            let token = token("put");
            let request = StackRequest {
                stack_name: name.to_string(),
                create: stack.is_none(),
                template_body: Some(template_body.to_string()),
                template_url: None,
                termination_protection: false,
                parameters: parameters.clone(),
                tags,
                token: token.clone(),
                express: self.express_own_stack,
            };
            self.step(format!(
                "{name}: {}",
                if stack.is_none() {
                    "creating"
                } else {
                    "updating"
                }
            ));
            let started = Instant::now();
            let id = match self.cloud.put_stack(&request).await {
                Ok(id) => id,
                Err(e) if e.is_no_updates() => {
                    return stack.ok_or_else(|| Error::failed(format!("{name}: {e}")));
                }
                Err(e) if super::cloud::is_busy_elsewhere(&e) => {
                    self.step(format!(
                        "{name}: another deploy is {} it: waiting for that one, then deciding again",
                        if stack.is_none() { "creating" } else { "updating" }
                    ));
                    existing = self.settle(name).await?;
                    continue;
                }
                Err(e) => {
                    return Err(cloud_failure(&format!("cannot create or update {name}"), e));
                }
            };
            let watched = stack.unwrap_or_else(|| Stack::being_created(&id, name));
            let (done, events) = self.watch(&watched, Some(&token), started).await?;
            return match done {
                Some(stack) if is_success(&stack.status) => Ok(stack),
                other => Err(self.failure(name, other.as_ref(), &events)),
            };
        }
        Err(Error::failed(format!(
            "{name}: other deploys kept changing it; try again"
        )))
    }

    /// Deletes the stack and waits until it is gone. `protected`: refuse (a protected env).
    pub async fn teardown(
        &self,
        name: &str,
        protected: bool,
        yes: bool,
    ) -> Result<Teardown, Error> {
        let described = self.describe(name).await?;
        self.teardown_from(name, described, protected, yes, false)
            .await
    }

    /// [`Self::teardown`] from the stack as just described (`None`: there is none); `express`:
    /// the deletion in express mode.
    pub async fn teardown_from(
        &self,
        name: &str,
        described: Option<Stack>,
        protected: bool,
        yes: bool,
        express: bool,
    ) -> Result<Teardown, Error> {
        let Some(stack) = described else {
            return Ok(Teardown::NothingToDelete);
        };
        if protected {
            return Err(Error::usage(format!(
                "{name} belongs to a protected environment (`protected_envs` in the spec): deployer down refuses to delete it"
            )));
        }
        if stack.termination_protection {
            return Err(Error::usage(format!(
                "{name} has termination protection on: turn it off first if you really mean to delete it"
            )));
        }
        let text = self
            .cloud
            .deployed_template(name)
            .await
            .map_err(|e| cloud_failure(&format!("cannot read the template of {name}"), e))?;
        let template = self.parse_template(name, &text);
        let retained_tables = self.retained_tables(&stack, &template).await?;
        // What the deletion goes through, so that the watch knows when its end is near.
        let deleting = super::model::resource_changes(&template, ChangeAction::Remove);
        if !yes {
            let question = format!("Delete stack {name}?");
            match self.ui.confirm(&question) {
                Confirmation::Yes => {}
                Confirmation::No => return Err(Error::failed("cancelled: nothing was deleted")),
                Confirmation::NotInteractive => {
                    return Err(Error::usage(format!(
                        "not a terminal, so nobody can confirm deleting {name}: pass --yes"
                    )));
                }
            }
        }
        // After a question the description may be old: the answer can take minutes.
        let current = if yes {
            Some(stack.clone())
        } else {
            self.describe(name).await?
        };
        let stack = match self.settle_from(name, current).await? {
            Some(stack) => stack,
            None if stack.status == StackStatus::ReviewInProgress => stack,
            None => return Ok(Teardown::NothingToDelete),
        };
        let token = token("delete");
        self.step(format!("{name}: deleting"));
        let started = Instant::now();
        if express {
            self.step(format!(
                "{name}: express mode: CloudFormation ends the deletion without waiting for each resource to be gone"
            ));
        }
        self.cloud
            .delete_stack(&stack.id, &token, express)
            .await
            .map_err(|e| cloud_failure(&format!("cannot delete {name}"), e))?;
        let (done, events) = self
            .watch_reacting(
                &stack,
                Some(&token),
                started,
                OnInterrupt::StopWatching,
                &deleting,
            )
            .await?;
        match done {
            None => Ok(Teardown::Deleted { retained_tables }),
            Some(other) => Err(self.failure(name, Some(&other), &events)),
        }
    }

    /// Physical names of the DynamoDB tables the deployed template retains on deletion: from the
    /// stack's outputs where the template has one that names the table, else from its resources.
    async fn retained_tables(
        &self,
        stack: &Stack,
        template: &serde_json::Value,
    ) -> Result<Vec<String>, Error> {
        let name = &stack.name;
        let retained: Vec<&String> = template["Resources"]
            .as_object()
            .map(|resources| {
                resources
                    .iter()
                    .filter(|(_, r)| {
                        r["Type"] == "AWS::DynamoDB::Table"
                            && super::data_loss::retains(&r["DeletionPolicy"])
                    })
                    .map(|(id, _)| id)
                    .collect()
            })
            .unwrap_or_default();
        if retained.is_empty() {
            return Ok(Vec::new());
        }
        let from_outputs: Vec<String> = retained
            .iter()
            .filter_map(|id| super::outputs::naming(template, stack, id))
            .collect();
        if from_outputs.len() == retained.len() {
            return Ok(from_outputs);
        }
        let resources = self
            .cloud
            .resources(name)
            .await
            .map_err(|e| cloud_failure(&format!("cannot list the resources of {name}"), e))?;
        Ok(resources
            .into_iter()
            .filter(|r| retained.contains(&&r.logical_id) && !r.physical_id.is_empty())
            .map(|r| r.physical_id)
            .collect())
    }

    /// Uploads an artifact under `key` unless it is already there; `known`: it is (the deployed
    /// stack names it), so S3 is not asked.
    pub async fn upload(
        &self,
        bucket: &str,
        key: &str,
        function: &str,
        zip: &crate::build::Artifact,
        known: bool,
    ) -> Result<(), Error> {
        let exists =
            known
                || self.cloud.object_exists(bucket, key).await.map_err(|e| {
                    cloud_failure(&format!("cannot look for s3://{bucket}/{key}"), e)
                })?;
        if !exists {
            self.cloud
                .put_object(bucket, key, zip.bytes.clone(), &zip.sha256)
                .await
                .map_err(|e| cloud_failure(&format!("cannot upload s3://{bucket}/{key}"), e))?;
        }
        self.ui.progress(Progress::Artifact {
            function: function.to_string(),
            key: key.to_string(),
            size: zip.bytes.len(),
            uploaded: !exists,
        });
        Ok(())
    }
}

/// The digest [`Engine::put_stack`] records on deployer's own stack for this template and these
/// parameters (it has no other tags, so the digest stays a tag there).
pub fn own_stack_digest(template_body: &str, parameters: &BTreeMap<String, String>) -> String {
    digest(template_body, parameters, &BTreeMap::new(), false)
}

/// Whether deployer's own stack already runs what has `digest` (then `put_stack` does nothing).
pub fn own_stack_is_current(stack: &Stack, digest: &str) -> bool {
    stack.tags.get(DIGEST_TAG).map(String::as_str) == Some(digest)
        && decide(Some(&stack.status)) == Action::Update
}

/// `Logical (Type): reason` for every resource whose last event failed.
fn failed_resources(events: &[StackEvent], stack_name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut done: HashSet<&str> = HashSet::new();
    for e in events {
        // Newest first: the first event per resource is its current state.
        if e.logical_id == stack_name || !done.insert(&e.logical_id) {
            continue;
        }
        if phase(&e.status) == Phase::Failed {
            lines.push(format!(
                "  {} ({}): {}",
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_the_operations_by_its_token_else_by_the_millisecond_it_began() {
        let began = SystemTime::UNIX_EPOCH + Duration::from_micros(1_000_500_700);
        let at = |ms: u64, token: Option<&str>| StackEvent {
            id: "e".into(),
            logical_id: "s".into(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: "UPDATE_IN_PROGRESS".into(),
            reason: None,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            token: token.map(str::to_string),
        };
        let ours = Some("exec-1");
        // (event, token of the operation watched, new?)
        let cases = [
            (at(1_000_400, ours), ours, true), // tagged: the clock does not matter
            (at(1_000_600, Some("exec-0")), ours, false), // another operation's
            (at(1_000_500, None), ours, true), // untagged, the millisecond it began
            (at(1_000_499, None), ours, false), // untagged, before it
            (at(1_000_499, Some("x")), None, false), // watching an operation not ours
            (at(1_000_501, Some("x")), None, true),
        ];
        for (k, (event, token, new)) in cases.iter().enumerate() {
            assert_eq!(is_new(event, *token, began), *new, "case {k}");
        }
    }

    #[test]
    fn the_gate_over_every_mode_loss_and_answer() {
        let apply = |yes, allow_data_loss| Mode::Apply {
            yes,
            allow_data_loss,
        };
        use Confirmation::{No, NotInteractive, Yes};
        let rows = [
            // mode, destroys data, answer, decision
            (Mode::Plan, false, None, Gate::Plan),
            (Mode::Plan, true, None, Gate::Plan),
            (apply(true, false), false, None, Gate::Go),
            (
                apply(true, false),
                true,
                None,
                Gate::Refuse(Refusal::DataLoss),
            ),
            (apply(true, true), true, None, Gate::Go),
            (apply(false, false), false, None, Gate::Ask),
            (
                apply(false, false),
                true,
                None,
                Gate::Refuse(Refusal::DataLoss),
            ),
            (apply(false, true), true, None, Gate::Ask),
            (apply(false, false), false, Some(Yes), Gate::Go),
            (
                apply(false, false),
                false,
                Some(No),
                Gate::Refuse(Refusal::Cancelled),
            ),
            (
                apply(false, true),
                true,
                Some(NotInteractive),
                Gate::Refuse(Refusal::NotInteractive),
            ),
        ];
        for (mode, destroys, answer, want) in rows {
            assert_eq!(
                gate(mode, destroys, answer),
                want,
                "{mode:?} {destroys} {answer:?}"
            );
        }
    }
}
