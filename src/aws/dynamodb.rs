//! DynamoDB for `table import`: the table's key and write capacity (DescribeTable), and the
//! writes (BatchWriteItem, PutItem) as a [`Sink`] for the import pipeline. The SDK's own
//! retries are off on this client: the pipeline retries, and must see every throttle to pace.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, KeysAndAttributes, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use deployer_import::pipeline::{Sink, WriteError};
use deployer_import::value::{Item, KeyKind, KeySchema, Value};

/// What an import needs to know of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// Its key.
    pub key: KeySchema,
    /// The write units a second it takes at most: the smallest provisioned write capacity of
    /// the table and its indexes (each write to the table also writes them), or an on-demand
    /// table's maximum; `None` for on-demand without one.
    pub write_capacity: Option<f64>,
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing: String,
}

/// DynamoDB for one table.
#[derive(Clone)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    /// The physical table name.
    pub name: String,
    key: Option<KeySchema>,
}

impl Table {
    /// The table `name` through a client built from `config`, without the SDK's retries.
    pub fn new(config: &aws_config::SdkConfig, name: &str) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Table {
            client: aws_sdk_dynamodb::Client::from_conf(conf),
            name: name.to_string(),
            key: None,
        }
    }

    /// DescribeTable: the key and the write capacity; remembers the key for the writes.
    pub async fn describe(&mut self) -> Result<TableInfo, String> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
            .map_err(|e| format!("cannot describe table {}: {}", self.name, message(&e)))?
            .table
            .ok_or_else(|| format!("DescribeTable answered no table for {}", self.name))?;
        let kind_of = |name: &str| {
            table
                .attribute_definitions()
                .iter()
                .find(|d| d.attribute_name() == name)
                .map(|d| match d.attribute_type() {
                    ScalarAttributeType::N => KeyKind::N,
                    ScalarAttributeType::B => KeyKind::B,
                    _ => KeyKind::S,
                })
                .unwrap_or(KeyKind::S)
        };
        let mut hash = None;
        let mut range = None;
        for element in table.key_schema() {
            let name = element.attribute_name().to_string();
            let kind = kind_of(&name);
            match element.key_type() {
                KeyType::Hash => hash = Some((name, kind)),
                _ => range = Some((name, kind)),
            }
        }
        let key = KeySchema {
            hash: hash.ok_or_else(|| format!("table {} has no partition key", self.name))?,
            range,
        };
        let billing = table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .cloned()
            .unwrap_or(BillingMode::Provisioned);
        let write_capacity = if billing == BillingMode::PayPerRequest {
            table
                .on_demand_throughput()
                .and_then(|t| t.max_write_request_units())
                .filter(|units| *units > 0)
                .map(|units| units as f64)
        } else {
            let table_units = table
                .provisioned_throughput()
                .and_then(|t| t.write_capacity_units());
            let index_units = table.global_secondary_indexes().iter().filter_map(|index| {
                index
                    .provisioned_throughput()
                    .and_then(|t| t.write_capacity_units())
            });
            table_units
                .into_iter()
                .chain(index_units)
                .filter(|units| *units > 0)
                .min()
                .map(|units| units as f64)
        };
        self.key = Some(key.clone());
        Ok(TableInfo {
            key,
            write_capacity,
            billing: billing.as_str().to_string(),
        })
    }

    /// BatchGetItem (consistent reads) of the items with these items' keys, at most 100: each
    /// as the table holds it, or `None` when it has none.
    pub async fn get_items(&self, items: &[Item]) -> Result<Vec<Option<Item>>, String> {
        let Some(key) = &self.key else {
            return Err("the table was not described".into());
        };
        let key_of = |item: &Item| -> HashMap<String, AttributeValue> {
            key.attributes()
                .filter_map(|(name, _)| {
                    item.iter()
                        .find(|(n, _)| n == name)
                        .map(|(n, v)| (n.clone(), attribute(v)))
                })
                .collect()
        };
        let mut pending: Vec<HashMap<String, AttributeValue>> = items.iter().map(key_of).collect();
        let mut found: Vec<HashMap<String, AttributeValue>> = Vec::new();
        for attempt in 0..10u32 {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(6))).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| e.to_string())?;
            let answer = match self
                .client
                .batch_get_item()
                .request_items(&self.name, request.clone())
                .send()
                .await
            {
                Ok(answer) => answer,
                Err(e) => match classify(e) {
                    WriteError::Throttled(_) | WriteError::Transient(_) => {
                        pending = request.keys().to_vec();
                        continue;
                    }
                    WriteError::Invalid(e) | WriteError::Fatal(e) => {
                        return Err(format!("cannot read items back: {e}"));
                    }
                },
            };
            if let Some(items) = answer.responses().and_then(|r| r.get(&self.name)) {
                found.extend(items.iter().cloned());
            }
            if let Some(unprocessed) = answer.unprocessed_keys().and_then(|u| u.get(&self.name)) {
                pending = unprocessed.keys().to_vec();
            }
        }
        if !pending.is_empty() {
            return Err("cannot read items back: keys still unprocessed after 10 attempts".into());
        }
        Ok(items
            .iter()
            .map(|item| {
                found
                    .iter()
                    .find(|got| self.is_same_key(item, got))
                    .map(|got| got.iter().map(|(k, v)| (k.clone(), value(v))).collect())
            })
            .collect())
    }

    fn is_same_key(&self, item: &Item, returned: &HashMap<String, AttributeValue>) -> bool {
        let Some(key) = &self.key else { return false };
        key.attributes().all(|(name, _)| {
            let ours = item.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            match (ours, returned.get(name)) {
                (Some(Value::S(a)), Some(AttributeValue::S(b))) => a == b,
                (Some(Value::N(a)), Some(AttributeValue::N(b))) => a == b,
                (Some(Value::B(a)), Some(AttributeValue::B(b))) => a.as_slice() == b.as_ref(),
                _ => false,
            }
        })
    }
}

/// A value in the SDK's type.
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.clone()),
        Value::B(b) => AttributeValue::B(Blob::new(b.clone())),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::L(list) => AttributeValue::L(list.iter().map(attribute).collect()),
        Value::M(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
        }
        Value::Ss(set) => AttributeValue::Ss(set.clone()),
        Value::Ns(set) => AttributeValue::Ns(set.clone()),
        Value::Bs(set) => AttributeValue::Bs(set.iter().map(|b| Blob::new(b.clone())).collect()),
    }
}

/// A value from the SDK's type.
pub fn value(attribute: &AttributeValue) -> Value {
    match attribute {
        AttributeValue::S(s) => Value::S(s.clone()),
        AttributeValue::N(n) => Value::N(n.clone()),
        AttributeValue::B(b) => Value::B(b.as_ref().to_vec()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(list) => Value::L(list.iter().map(value).collect()),
        AttributeValue::M(map) => {
            Value::M(map.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
        AttributeValue::Ss(set) => Value::Ss(set.clone()),
        AttributeValue::Ns(set) => Value::Ns(set.clone()),
        AttributeValue::Bs(set) => Value::Bs(set.iter().map(|b| b.as_ref().to_vec()).collect()),
        // Null, and any type a newer SDK adds.
        _ => Value::Null,
    }
}

/// An item in the SDK's type.
pub fn attributes(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| (name.clone(), attribute(value)))
        .collect()
}

fn message<E: ProvideErrorMetadata + std::error::Error + 'static>(error: &SdkError<E>) -> String {
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            )
        }
        other => {
            // The innermost cause ("Connection refused", "timed out") is the one worth a line.
            let mut cause: &dyn std::error::Error = other;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("no answer from DynamoDB: {cause}")
        }
    }
}

/// Sorts a failed write: throttling, worth retrying, the request's own fault, or the end.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: SdkError<E>,
) -> WriteError {
    let text = message(&error);
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            // The SDK models some of these per operation but not ValidationException or
            // AccessDenied, so the code is the one field every error carries.
            match service.err().code().unwrap_or("") {
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded" => WriteError::Throttled(text),
                "ValidationException" | "ItemCollectionSizeLimitExceededException" => {
                    WriteError::Invalid(text)
                }
                "ResourceNotFoundException"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "MissingAuthenticationTokenException" => WriteError::Fatal(text),
                _ if status >= 500 => WriteError::Transient(text),
                _ => WriteError::Fatal(text),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            WriteError::Transient(text)
        }
        _ => WriteError::Fatal(text),
    }
}

impl Sink for Table {
    async fn write_batch(&self, items: &[Item]) -> Result<Vec<usize>, WriteError> {
        let requests = items
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(attributes(item)))
                    .build()
                    .expect("an item is set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let answer = self
            .client
            .batch_write_item()
            .request_items(&self.name, requests)
            .send()
            .await
            .map_err(classify)?;
        let Some(unprocessed) = answer
            .unprocessed_items()
            .and_then(|tables| tables.get(&self.name))
            .filter(|requests| !requests.is_empty())
        else {
            return Ok(Vec::new());
        };
        let mut indices = Vec::with_capacity(unprocessed.len());
        for request in unprocessed {
            let Some(returned) = request.put_request().map(|p| p.item()) else {
                continue;
            };
            if let Some(i) = items
                .iter()
                .position(|item| self.is_same_key(item, returned))
            {
                indices.push(i);
            }
        }
        if indices.len() != unprocessed.len() {
            // Should never happen; retrying everything is safe (a put is idempotent).
            return Ok((0..items.len()).collect());
        }
        Ok(indices)
    }

    async fn put(&self, item: &Item) -> Result<(), WriteError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(attributes(item)))
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }
}

/// A template's string, or "".
fn cfn_text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A template's `KeySchema`.
fn cfn_keys(
    schema: &serde_json::Value,
) -> Result<Vec<aws_sdk_dynamodb::types::KeySchemaElement>, String> {
    schema
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name(cfn_text(&k["AttributeName"]))
                .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or_default()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A template's `ProvisionedThroughput` (none for an on-demand table).
fn cfn_throughput(
    t: &serde_json::Value,
) -> Result<Option<aws_sdk_dynamodb::types::ProvisionedThroughput>, String> {
    if t.is_null() {
        return Ok(None);
    }
    aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
        .read_capacity_units(t["ReadCapacityUnits"].as_i64().unwrap_or(1))
        .write_capacity_units(t["WriteCapacityUnits"].as_i64().unwrap_or(1))
        .build()
        .map(Some)
        .map_err(|e| e.to_string())
}

/// One of a template's `GlobalSecondaryIndexes`.
fn cfn_index(
    index: &serde_json::Value,
) -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex, String> {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let projection = &index["Projection"];
    let non_key: Vec<String> = projection["NonKeyAttributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(cfn_text)
        .collect();
    GlobalSecondaryIndex::builder()
        .index_name(cfn_text(&index["IndexName"]))
        .set_key_schema(Some(cfn_keys(&index["KeySchema"])?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(
                    projection["ProjectionType"].as_str().unwrap_or("ALL"),
                ))
                .set_non_key_attributes((!non_key.is_empty()).then_some(non_key))
                .build(),
        )
        .set_provisioned_throughput(cfn_throughput(&index["ProvisionedThroughput"])?)
        .build()
        .map_err(|e| e.to_string())
}

/// `deployer local`: the table `name` at a local endpoint (moto, DynamoDB Local) with the key,
/// indexes and billing of `properties` (an `AWS::DynamoDB::Table`'s in the rendered template).
/// An existing table is kept with its data. Returns whether it was created.
pub async fn ensure_table(
    config: &aws_config::SdkConfig,
    name: &str,
    properties: &serde_json::Value,
) -> Result<bool, String> {
    use aws_sdk_dynamodb::types::AttributeDefinition;
    let client = aws_sdk_dynamodb::Client::new(config);
    match client.describe_table().table_name(name).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.code() == Some("ResourceNotFoundException") => {}
        Err(e) => return Err(format!("cannot describe table {name}: {}", message(&e))),
    }
    let mut create = client
        .create_table()
        .table_name(name)
        .set_key_schema(Some(cfn_keys(&properties["KeySchema"])?))
        .billing_mode(BillingMode::from(
            properties["BillingMode"]
                .as_str()
                .unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_provisioned_throughput(cfn_throughput(&properties["ProvisionedThroughput"])?);
    for attribute in properties["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(cfn_text(&attribute["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    attribute["AttributeType"].as_str().unwrap_or_default(),
                ))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for index in properties["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        create = create.global_secondary_indexes(cfn_index(index)?);
    }
    create
        .send()
        .await
        .map_err(|e| format!("cannot create table {name}: {}", message(&e)))?;
    Ok(true)
}
