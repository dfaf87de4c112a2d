//! Hotswap: when function code is all that differs from the deployed stack, `up --hotswap`
//! updates the functions directly (UpdateFunctionCode) instead of running a CloudFormation
//! update, and records the drift in the artifact bucket so that `status` and `plan` show it and
//! the next full `up` puts the template's code back.
//!
//! The decisions ([`plan`], [`after_swaps`], [`restores`]) are pure; [`update_code`] makes the
//! calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::cloud::{Cloud, CloudError};
use super::decide::{Action, decide};
use super::engine::Engine;
pub use super::model::Why;
use super::model::{Deployment, Progress, Ui};
use super::model::{LastUpdateStatus, Stack};
use crate::exit::Error;

/// The S3 key, in the artifact bucket, of a stack's drift record.
pub fn record_key(stack_name: &str) -> String {
    format!("hotswap/{stack_name}.json")
}

/// The functions whose live code is not the code their stack's template names. Written by a
/// hotswap, read by `up`, `plan` and `status`, deleted once the stack is back in line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The stack's ARN: a record of a deleted stack of the same name does not apply.
    pub stack_id: String,
    /// By function (its name in the spec).
    pub functions: BTreeMap<String, LiveCode>,
}

/// The artifact a function runs after a hotswap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCode {
    /// Its S3 key in the artifact bucket.
    pub key: String,
    /// Lowercase hex SHA-256 of the zip.
    pub sha256: String,
    /// When it went live (RFC 3339).
    pub at: String,
}

impl Drift {
    /// Whether every function runs its template's code.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The drift of `stack`: empty when the record is of another stack of the same name (one
    /// deleted since) or there is no stack.
    pub fn of(self, stack: Option<&Stack>) -> Drift {
        match stack {
            Some(stack) if stack.id == self.stack_id => self,
            _ => Drift::default(),
        }
    }
}

/// A function of the deployment: where its code goes and which artifact the deployment wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSlot {
    /// The function's name in the spec.
    pub function: String,
    /// Its Lambda name.
    pub lambda_name: String,
    /// The template parameter holding its artifact's S3 key.
    pub key_parameter: String,
    /// The SHA-256 of the artifact the deployment wants.
    pub sha256: [u8; 32],
}

/// One function to update directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The function's name in the spec.
    pub function: String,
    /// Its Lambda name.
    pub lambda_name: String,
    /// The artifact to put live: its S3 key...
    pub key: String,
    /// ...and its SHA-256.
    pub sha256: [u8; 32],
}

/// What `up --hotswap` can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Function code is all that differs: these updates bring the live functions in line.
    Swap(Vec<Swap>),
    /// The live functions already run the wanted code and nothing else differs.
    UpToDate,
    /// Only CloudFormation can make the change; why, in a few words.
    NeedsChangeSet(String),
}

/// Decides whether the deployment can go live by updating function code alone: the stack must
/// be stable, and the deployment, with the deployed artifact keys in place of the wanted ones,
/// must have the digest the stack records (so template, parameters, tags and protection are
/// all unchanged). A function differs when its wanted key is not the one live now (the drift's,
/// else the stack's parameter).
pub fn plan(
    stack: Option<&Stack>,
    recorded: Option<&str>,
    deployment: &Deployment,
    slots: &[CodeSlot],
    drift: &Drift,
) -> Plan {
    let Some(stack) = stack else {
        return Plan::NeedsChangeSet("the stack does not exist yet".into());
    };
    if decide(Some(&stack.status)) != Action::Update {
        return Plan::NeedsChangeSet(format!("the stack is {}", stack.status.as_str()));
    }
    if deployment.refresh_tags {
        return Plan::NeedsChangeSet("the env's expiry is due for extension".into());
    }
    let mut as_deployed = deployment.clone();
    for slot in slots {
        match stack.parameters.get(&slot.key_parameter) {
            Some(deployed) => {
                as_deployed
                    .parameters
                    .insert(slot.key_parameter.clone(), deployed.clone());
            }
            None => return Plan::NeedsChangeSet(format!("function `{}` is new", slot.function)),
        }
    }
    if recorded != Some(as_deployed.digest().as_str()) {
        return Plan::NeedsChangeSet("more than function code changed".into());
    }
    let swaps: Vec<Swap> = slots
        .iter()
        .filter_map(|slot| {
            let wanted = deployment.parameters.get(&slot.key_parameter)?;
            let live = match drift.functions.get(&slot.function) {
                Some(code) => &code.key,
                None => stack.parameters.get(&slot.key_parameter)?,
            };
            (wanted != live).then(|| Swap {
                function: slot.function.clone(),
                lambda_name: slot.lambda_name.clone(),
                key: wanted.clone(),
                sha256: slot.sha256,
            })
        })
        .collect();
    if swaps.is_empty() {
        Plan::UpToDate
    } else {
        Plan::Swap(swaps)
    }
}

/// The drift once `swapped` are live: a function back on its template's artifact leaves the
/// record; any other swapped function is recorded with its new code.
pub fn after_swaps(
    drift: &Drift,
    stack: &Stack,
    slots: &[CodeSlot],
    swapped: &[Swap],
    at: SystemTime,
) -> Drift {
    let mut next = drift.clone();
    next.stack_id = stack.id.clone();
    for swap in swapped {
        let template_key = slots
            .iter()
            .find(|s| s.function == swap.function)
            .and_then(|s| stack.parameters.get(&s.key_parameter));
        if template_key == Some(&swap.key) {
            next.functions.remove(&swap.function);
        } else {
            next.functions.insert(
                swap.function.clone(),
                LiveCode {
                    key: swap.key.clone(),
                    sha256: crate::build::hex(&swap.sha256),
                    at: humantime::format_rfc3339_seconds(at).to_string(),
                },
            );
        }
    }
    next
}

/// After a full deployment: the drifted functions CloudFormation did not give new code (their
/// artifact parameter was the same before, so CloudFormation saw nothing to update) and that
/// therefore still run hotswapped code; each is put back on the deployment's artifact. A
/// function whose parameter changed got its code from CloudFormation; one the spec no longer
/// has was deleted with its resource.
pub fn restores(
    drift: &Drift,
    before: Option<&Stack>,
    deployment: &Deployment,
    slots: &[CodeSlot],
) -> Vec<Swap> {
    slots
        .iter()
        .filter_map(|slot| {
            let live = drift.functions.get(&slot.function)?;
            let wanted = deployment.parameters.get(&slot.key_parameter)?;
            let before = before?.parameters.get(&slot.key_parameter)?;
            (before == wanted && &live.key != wanted).then(|| Swap {
                function: slot.function.clone(),
                lambda_name: slot.lambda_name.clone(),
                key: wanted.clone(),
                sha256: slot.sha256,
            })
        })
        .collect()
}

/// A function whose code was updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// The function's name in the spec.
    pub function: String,
    /// Lowercase hex SHA-256 of the code live now.
    pub sha256: String,
    /// Why.
    pub why: Why,
}

/// Lambda's answer while another update of the function still runs.
const CONFLICT: &str = "ResourceConflictException";

impl<C: Cloud, U: Ui> Engine<'_, C, U> {
    /// Updates every function of `swaps` at once (UpdateFunctionCode from the artifact bucket),
    /// waits until Lambda reports each update `Successful`, and checks that the code it runs is
    /// the artifact's (Lambda's CodeSha256 is the zip's SHA-256).
    pub async fn update_code(
        &self,
        bucket: &str,
        swaps: &[Swap],
        why: Why,
    ) -> Result<Vec<Swapped>, Error> {
        let results = join_all(swaps.iter().map(|swap| self.update_one(bucket, swap, why))).await;
        results.into_iter().collect()
    }

    async fn update_one(&self, bucket: &str, swap: &Swap, why: Why) -> Result<Swapped, Error> {
        let started = Instant::now();
        let name = &swap.lambda_name;
        let failed =
            |what: &str, e: CloudError| Error::new(e.exit_code(), format!("{what} {name}: {e}"));
        let mut conflicts = 0;
        loop {
            match self
                .cloud()
                .update_function_code(name, bucket, &swap.key)
                .await
            {
                Ok(()) => break,
                // Another update runs (a deploy of someone else, or one just made): wait for it.
                Err(e) if e.code.as_deref() == Some(CONFLICT) && conflicts < 3 => {
                    conflicts += 1;
                    self.wait_for_update(name)
                        .await
                        .map_err(|e| failed("cannot wait for", e))?;
                }
                Err(e) => return Err(failed("cannot update the code of", e)),
            }
        }
        let code = self
            .wait_for_update(name)
            .await
            .map_err(|e| failed("cannot read the state of", e))?;
        match code.last_update {
            Some(LastUpdateStatus::Successful) | None => {}
            Some(status) => {
                return Err(Error::failed(format!(
                    "the code update of {name} ended {}: {}",
                    status.as_str(),
                    code.reason.unwrap_or_default()
                )));
            }
        }
        let expected = aws_smithy_types::base64::encode(swap.sha256);
        if code.sha256 != expected {
            return Err(Error::failed(format!(
                "{name} runs code with SHA-256 {} (base64) after the update, not the artifact's {expected}",
                code.sha256
            )));
        }
        self.report(Progress::CodeUpdated {
            function: swap.function.clone(),
            lambda_name: name.clone(),
            sha256: crate::build::hex(&swap.sha256),
            why,
            elapsed: started.elapsed(),
        });
        Ok(Swapped {
            function: swap.function.clone(),
            sha256: crate::build::hex(&swap.sha256),
            why,
        })
    }

    /// Polls GetFunctionConfiguration until the last update is no longer `InProgress`.
    async fn wait_for_update(&self, name: &str) -> Result<super::model::FunctionCode, CloudError> {
        let mut delay = self.poll_schedule().first;
        loop {
            let code = self.cloud().function_code(name).await?;
            if code.last_update != Some(LastUpdateStatus::InProgress) {
                return Ok(code);
            }
            tokio::time::sleep(delay).await;
            delay = self.poll_schedule().next(delay);
        }
    }
}

/// Reads a stack's drift record; none is an empty drift. A record that does not parse is
/// reported as an error: ignoring it could leave hotswapped code live for good.
pub async fn read<C: Cloud>(cloud: &C, bucket: &str, stack_name: &str) -> Result<Drift, Error> {
    let key = record_key(stack_name);
    let cannot = |e: String| {
        Error::failed(format!(
            "cannot read the hotswap record s3://{bucket}/{key}: {e}"
        ))
    };
    match cloud.get_object(bucket, &key).await {
        Ok(None) => Ok(Drift::default()),
        Ok(Some(body)) => serde_json::from_slice(&body).map_err(|e| cannot(e.to_string())),
        Err(e) => Err(Error::new(
            e.exit_code(),
            format!("cannot read the hotswap record s3://{bucket}/{key}: {e}"),
        )),
    }
}

/// Writes a stack's drift record, or deletes it when the drift is empty.
pub async fn write<C: Cloud>(
    cloud: &C,
    bucket: &str,
    stack_name: &str,
    drift: &Drift,
) -> Result<(), Error> {
    let key = record_key(stack_name);
    let result = if drift.is_empty() {
        cloud.delete_object(bucket, &key).await
    } else {
        let body = serde_json::to_vec_pretty(drift).expect("the record always serializes");
        let sha: [u8; 32] = sha2::Sha256::digest(&body).into();
        cloud.put_object(bucket, &key, body, &sha).await
    };
    result.map_err(|e| {
        Error::new(
            e.exit_code(),
            format!(
                "the functions were updated, but the hotswap record s3://{bucket}/{key} was not written: {e}"
            ),
        )
    })
}

/// How long ago an RFC 3339 time was, for display; `None` when it does not parse.
pub fn age(at: &str, now: SystemTime) -> Option<Duration> {
    let at = humantime::parse_rfc3339_weak(at).ok()?;
    now.duration_since(at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converge::model::DIGEST_TAG;
    use aws_sdk_cloudformation::types::StackStatus;

    const OLD: &str = "notes/api/aaaa.zip";
    const NEW: &str = "notes/api/bbbb.zip";
    const THIRD: &str = "notes/api/cccc.zip";

    fn deployment(key: &str) -> Deployment {
        Deployment {
            stack_name: "notes-dev".into(),
            template_body: "{}".into(),
            parameters: BTreeMap::from([
                ("ApiCodeBucket".into(), "bucket".into()),
                ("ApiCodeKey".into(), key.into()),
            ]),
            tags: BTreeMap::new(),
            termination_protection: false,
            refresh_tags: false,
            bucket: None,
            check_permissions: false,
            revert_drift: false,
            express: false,
        }
    }

    const SHA: [u8; 32] = [1; 32];

    fn slots() -> Vec<CodeSlot> {
        vec![CodeSlot {
            function: "api".into(),
            lambda_name: "notes-dev-api".into(),
            key_parameter: "ApiCodeKey".into(),
            sha256: SHA,
        }]
    }

    /// A stack deployed from `deployment(key)`.
    fn stack(key: &str, status: StackStatus) -> Stack {
        let deployed = deployment(key);
        Stack {
            id: "id".into(),
            name: "notes-dev".into(),
            status,
            reason: None,
            outputs: vec![],
            tags: BTreeMap::from([(DIGEST_TAG.into(), deployed.digest())]),
            termination_protection: false,
            parameters: deployed.parameters,
            created: None,
            updated: None,
            drift: None,
        }
    }

    fn drift(key: &str) -> Drift {
        Drift {
            stack_id: "id".into(),
            functions: BTreeMap::from([(
                "api".into(),
                LiveCode {
                    key: key.into(),
                    sha256: "x".into(),
                    at: "2026-11-30T00:00:00Z".into(),
                },
            )]),
        }
    }

    fn swap(key: &str) -> Plan {
        Plan::Swap(vec![Swap {
            function: "api".into(),
            lambda_name: "notes-dev-api".into(),
            key: key.into(),
            sha256: SHA,
        }])
    }

    /// Rows: what, the stack, the deployment, the drift, the plan.
    type Row = (&'static str, Option<Stack>, Deployment, Drift, Plan);

    fn check(rows: Vec<Row>) {
        for (what, stack, deployment, drift, expected) in rows {
            // The rows record the digest as a stack deployed before the bucket record did.
            let recorded = stack.as_ref().and_then(|s| s.tags.get(DIGEST_TAG));
            let got = plan(
                stack.as_ref(),
                recorded.map(String::as_str),
                &deployment,
                &slots(),
                &drift,
            );
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn code_alone_is_swapped_against_the_live_code() {
        let complete = StackStatus::UpdateComplete;
        let none = Drift::default();
        check(vec![
            (
                "code only",
                Some(stack(OLD, complete.clone())),
                deployment(NEW),
                none.clone(),
                swap(NEW),
            ),
            (
                "after a rollback too",
                Some(stack(OLD, StackStatus::UpdateRollbackComplete)),
                deployment(NEW),
                none.clone(),
                swap(NEW),
            ),
            (
                "nothing",
                Some(stack(OLD, complete.clone())),
                deployment(OLD),
                none.clone(),
                Plan::UpToDate,
            ),
            (
                "again, the same code",
                Some(stack(OLD, complete.clone())),
                deployment(NEW),
                drift(NEW),
                Plan::UpToDate,
            ),
            (
                "another hotswap",
                Some(stack(OLD, complete.clone())),
                deployment(THIRD),
                drift(NEW),
                swap(THIRD),
            ),
            // Reverting a hotswap to the template's own artifact: the stack's parameter says
            // nothing changed, the drift says otherwise.
            (
                "back to the template's code",
                Some(stack(OLD, complete.clone())),
                deployment(OLD),
                drift(NEW),
                swap(OLD),
            ),
        ]);
    }

    #[test]
    fn a_new_function_needs_a_change_set() {
        let complete = StackStatus::UpdateComplete;
        let none = Drift::default();
        let mut new_function = slots();
        new_function.push(CodeSlot {
            function: "cron".into(),
            lambda_name: "notes-dev-cron".into(),
            key_parameter: "CronCodeKey".into(),
            sha256: SHA,
        });
        assert_eq!(
            plan(
                Some(&stack(OLD, complete.clone())),
                Some(&deployment(OLD).digest()),
                &deployment(NEW),
                &new_function,
                &none
            ),
            Plan::NeedsChangeSet("function `cron` is new".into())
        );
    }

    #[test]
    fn anything_else_needs_a_change_set() {
        let complete = StackStatus::UpdateComplete;
        let mut other_change = deployment(NEW);
        other_change.template_body = r#"{"Resources":{}}"#.into();
        let mut protection = deployment(NEW);
        protection.termination_protection = true;
        let mut refresh = deployment(NEW);
        refresh.refresh_tags = true;
        let mut untagged = stack(OLD, complete.clone());
        untagged.tags.clear();
        let mut mid_sequence = stack(OLD, complete.clone());
        mid_sequence
            .tags
            .insert(DIGEST_TAG.into(), "abc-step-1-of-2".into());
        let none = Drift::default();
        check(vec![
            (
                "no stack",
                None,
                deployment(NEW),
                none.clone(),
                Plan::NeedsChangeSet("the stack does not exist yet".into()),
            ),
            (
                "running",
                Some(stack(OLD, StackStatus::UpdateInProgress)),
                deployment(NEW),
                none.clone(),
                Plan::NeedsChangeSet("the stack is UPDATE_IN_PROGRESS".into()),
            ),
            (
                "failed create",
                Some(stack(OLD, StackStatus::RollbackComplete)),
                deployment(NEW),
                none.clone(),
                Plan::NeedsChangeSet("the stack is ROLLBACK_COMPLETE".into()),
            ),
            (
                "template",
                Some(stack(OLD, complete.clone())),
                other_change,
                none.clone(),
                Plan::NeedsChangeSet("more than function code changed".into()),
            ),
            (
                "protection",
                Some(stack(OLD, complete.clone())),
                protection,
                none.clone(),
                Plan::NeedsChangeSet("more than function code changed".into()),
            ),
            (
                "no digest",
                Some(untagged),
                deployment(NEW),
                none.clone(),
                Plan::NeedsChangeSet("more than function code changed".into()),
            ),
            (
                "unfinished sequence",
                Some(mid_sequence),
                deployment(NEW),
                none.clone(),
                Plan::NeedsChangeSet("more than function code changed".into()),
            ),
            (
                "expiry",
                Some(stack(OLD, complete.clone())),
                refresh,
                none.clone(),
                Plan::NeedsChangeSet("the env's expiry is due for extension".into()),
            ),
        ]);
    }

    #[test]
    fn the_drift_after_swaps_keeps_only_code_the_template_does_not_name() {
        let deployed = stack(OLD, StackStatus::UpdateComplete);
        let at = SystemTime::UNIX_EPOCH;
        let to = |key: &str| Swap {
            function: "api".into(),
            lambda_name: "notes-dev-api".into(),
            key: key.into(),
            sha256: SHA,
        };
        let recorded = after_swaps(&Drift::default(), &deployed, &slots(), &[to(NEW)], at);
        assert_eq!(recorded.stack_id, "id");
        assert_eq!(recorded.functions["api"].key, NEW);
        assert_eq!(recorded.functions["api"].sha256, "01".repeat(32));
        assert_eq!(recorded.functions["api"].at, "1970-01-01T00:00:00Z");
        let back = after_swaps(&recorded, &deployed, &slots(), &[to(OLD)], at);
        assert!(back.is_empty(), "{back:?}");
        let third = after_swaps(&recorded, &deployed, &slots(), &[to(THIRD)], at);
        assert_eq!(third.functions["api"].key, THIRD);
    }

    #[test]
    fn a_full_deploy_restores_only_code_cloudformation_did_not_replace() {
        let before = stack(OLD, StackStatus::UpdateComplete);
        let restore = |drift: &Drift, wanted: &str| {
            restores(drift, Some(&before), &deployment(wanted), &slots())
                .into_iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
        };
        // The template's artifact again: CloudFormation sees no change, deployer puts it back.
        assert_eq!(restore(&drift(NEW), OLD), vec![OLD.to_string()]);
        // A new artifact: CloudFormation updates the code itself.
        assert!(restore(&drift(NEW), THIRD).is_empty());
        // The hotswapped artifact itself: the parameter changes, CloudFormation updates it too.
        assert!(restore(&drift(NEW), NEW).is_empty());
        assert!(restore(&Drift::default(), OLD).is_empty());
        assert!(restores(&drift(NEW), None, &deployment(OLD), &slots()).is_empty());
    }

    #[test]
    fn a_record_applies_only_to_the_stack_it_was_written_for() {
        let same = stack(OLD, StackStatus::UpdateComplete);
        let mut recreated = same.clone();
        recreated.id = "id-2".into();
        assert_eq!(drift(NEW).of(Some(&same)), drift(NEW));
        assert!(drift(NEW).of(Some(&recreated)).is_empty());
        assert!(drift(NEW).of(None).is_empty());
    }

    #[test]
    fn the_record_round_trips_and_ages() {
        let drift = drift(NEW);
        let text = serde_json::to_string(&drift).unwrap();
        assert_eq!(serde_json::from_str::<Drift>(&text).unwrap(), drift);
        let now = humantime::parse_rfc3339("2026-11-30T00:02:00Z").unwrap();
        assert_eq!(
            age("2026-11-30T00:00:00Z", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(age("yesterday", now), None);
    }
}
