//! Notes in DynamoDB: one item per note, `pk = NOTE#<id>`, `sk = NOTE`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use base64::Engine as _;

use crate::{App, NewNote, Note, NotePage, NoteUpdate};

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No note with that id.
    NotFound(String),
    /// The note is at another version than the one the update named.
    Conflict { current: u64 },
    /// DynamoDB kept throttling after the SDK's retries.
    Throttled,
    /// The list cursor was not one this service made.
    BadCursor,
    /// Anything else.
    Other(String),
}

const SORT_KEY: &str = "NOTE";

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(format!("NOTE#{id}"))),
        ("sk".to_string(), AttributeValue::S(SORT_KEY.into())),
    ])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn store_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    match e.code() {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded",
        ) => StoreError::Throttled,
        _ => StoreError::Other(format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        )),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn note_of(item: &HashMap<String, AttributeValue>) -> Result<Note, StoreError> {
    let missing = |what: &str| StoreError::Other(format!("item without {what}"));
    Ok(Note {
        id: text(item, "id").ok_or_else(|| missing("id"))?,
        title: text(item, "title").ok_or_else(|| missing("title"))?,
        body: text(item, "body").unwrap_or_default(),
        owner: text(item, "owner"),
        created: number(item, "created").ok_or_else(|| missing("created"))?,
        updated: number(item, "updated").ok_or_else(|| missing("updated"))?,
        version: number(item, "version").ok_or_else(|| missing("version"))? as u64,
    })
}

/// Stores a new note.
pub async fn create(app: &App, new: NewNote) -> Result<Note, StoreError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = now_ms();
    let mut item = key(&id);
    item.insert("id".into(), AttributeValue::S(id.clone()));
    item.insert("title".into(), AttributeValue::S(new.title.clone()));
    item.insert("body".into(), AttributeValue::S(new.body.clone()));
    item.insert("created".into(), AttributeValue::N(now.to_string()));
    item.insert("updated".into(), AttributeValue::N(now.to_string()));
    item.insert("version".into(), AttributeValue::N("1".into()));
    if let Some(owner) = &new.owner {
        item.insert("owner".into(), AttributeValue::S(owner.clone()));
    }
    app.db
        .put_item()
        .table_name(&app.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(store_error)?;
    Ok(Note {
        id,
        title: new.title,
        body: new.body,
        owner: new.owner,
        created: now,
        updated: now,
        version: 1,
    })
}

/// Reads one note.
pub async fn get(app: &App, id: &str) -> Result<Note, StoreError> {
    let out = app
        .db
        .get_item()
        .table_name(&app.table)
        .set_key(Some(key(id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    match out.item() {
        Some(item) => note_of(item),
        None => Err(StoreError::NotFound(id.to_string())),
    }
}

/// One page of notes; `cursor` continues where the last page ended.
pub async fn list(app: &App, limit: i32, cursor: Option<&str>) -> Result<NotePage, StoreError> {
    let start = match cursor {
        None => None,
        Some(c) => {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .map_err(|_| StoreError::BadCursor)?;
            let id: String = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
            Some(key(&id))
        }
    };
    let out = app
        .db
        .scan()
        .table_name(&app.table)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(store_error)?;
    let items = out
        .items()
        .iter()
        .map(note_of)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = out
        .last_evaluated_key()
        .and_then(|k| k.get("pk"))
        .and_then(|pk| pk.as_s().ok())
        .and_then(|pk| pk.strip_prefix("NOTE#"))
        .map(|id| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(id).unwrap_or_default())
        });
    Ok(NotePage { items, next_cursor })
}

/// Applies `change` only if the note is still at `change.version`.
pub async fn update(app: &App, id: &str, change: NoteUpdate) -> Result<Note, StoreError> {
    let result = app
        .db
        .update_item()
        .table_name(&app.table)
        .set_key(Some(key(id)))
        .update_expression(
            "SET title = :title, body = :body, updated = :now, version = version + :one",
        )
        .condition_expression("attribute_exists(pk) AND version = :expected")
        .expression_attribute_values(":title", AttributeValue::S(change.title))
        .expression_attribute_values(":body", AttributeValue::S(change.body))
        .expression_attribute_values(":now", AttributeValue::N(now_ms().to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":expected", AttributeValue::N(change.version.to_string()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(out) => note_of(
            out.attributes()
                .ok_or_else(|| StoreError::Other("no attributes returned".into()))?,
        ),
        // Either gone or changed: a consistent read tells which.
        Err(e) if is_condition_failure(&e) => match get(app, id).await {
            Ok(current) => Err(StoreError::Conflict {
                current: current.version,
            }),
            Err(e) => Err(e),
        },
        Err(e) => Err(store_error(e)),
    }
}

/// Deletes a note that exists.
pub async fn delete(app: &App, id: &str) -> Result<(), StoreError> {
    let result = app
        .db
        .delete_item()
        .table_name(&app.table)
        .set_key(Some(key(id)))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound(id.to_string())),
        Err(e) => Err(store_error(e)),
    }
}
