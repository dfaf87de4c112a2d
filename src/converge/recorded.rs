//! What deployer last deployed to a stack (its digest), recorded in the artifact bucket as
//! `deployed/<stack>.json` rather than as a stack tag: stack tags propagate to every taggable
//! resource, so a tag that changed on every deploy would re-tag every resource, and every change
//! set would list them all as Modify (aws-sam-cli#7050 describes the same trap). Stack tags
//! now change only when the spec's tags do.
//!
//! A stack deployed before the record existed carries the digest in its `deployer:digest` tag:
//! that is read when there is no record, and dropped by the next update.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::cloud::Cloud;
use super::model::{DIGEST_TAG, Stack};
use crate::exit::Error;

/// The S3 key, in the artifact bucket, of a stack's record.
pub fn key(stack_name: &str) -> String {
    format!("deployed/{stack_name}.json")
}

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The stack's ARN: a record of a deleted stack of the same name does not apply.
    pub stack_id: String,
    /// The digest of the deployment last applied (or of the step of one, `<digest>-step-k-of-n`).
    pub digest: String,
}

/// The digest recorded for `stack`: the bucket's record when it names this stack, else the
/// legacy tag; `None` when neither says.
pub async fn read<C: Cloud>(
    cloud: &C,
    bucket: Option<&str>,
    stack: &Stack,
) -> Result<Option<String>, Error> {
    let legacy = || stack.tags.get(DIGEST_TAG).cloned();
    let Some(bucket) = bucket else {
        return Ok(legacy());
    };
    let key = key(&stack.name);
    let body = cloud.get_object(bucket, &key).await.map_err(|e| {
        Error::new(
            e.exit_code(),
            format!(
                "cannot read what was deployed to {} (s3://{bucket}/{key}): {e}",
                stack.name
            ),
        )
    })?;
    let Some(body) = body else {
        return Ok(legacy());
    };
    // A record that does not parse is as good as none: the change set then decides.
    Ok(match serde_json::from_slice::<Record>(&body) {
        Ok(record) if record.stack_id == stack.id => Some(record.digest),
        Ok(_) => None,
        Err(_) => legacy(),
    })
}

/// Records `digest` as what `stack` now runs.
pub async fn write<C: Cloud>(
    cloud: &C,
    bucket: &str,
    stack: &Stack,
    digest: &str,
) -> Result<(), String> {
    let record = Record {
        stack_id: stack.id.clone(),
        digest: digest.to_string(),
    };
    let body = serde_json::to_vec_pretty(&record).expect("the record always serializes");
    let sha: [u8; 32] = sha2::Sha256::digest(&body).into();
    cloud
        .put_object(bucket, &key(&stack.name), body, &sha)
        .await
        .map_err(|e| e.to_string())
}
