//! A DynamoDB table.

use serde_json::{Value, json};

use super::{Doc, Options, r#ref};
use deployer_spec::{Billing, Encryption, Key, Projection, Spec, Table, names};

/// The logical id of the table called `name` in the spec.
pub fn id(name: &str) -> String {
    format!("{}Table", names::logical_id(name))
}

fn key_schema(partition: &Key, sort: Option<&Key>) -> Vec<Value> {
    let mut schema = vec![json!({ "AttributeName": partition.name, "KeyType": "HASH" })];
    if let Some(sort) = sort {
        schema.push(json!({ "AttributeName": sort.name, "KeyType": "RANGE" }));
    }
    schema
}

/// Tag naming a table's name in the spec.
pub const TABLE_TAG: &str = "deployer:table";

/// Every key attribute of the table and its indexes once, in order of first use (the spec
/// rejects conflicting types).
fn key_attributes(t: &Table) -> Vec<&Key> {
    let mut attributes: Vec<&Key> = Vec::new();
    let all_keys = std::iter::once(&t.partition_key).chain(&t.sort_key).chain(
        t.indexes
            .iter()
            .flat_map(|i| std::iter::once(&i.partition_key).chain(&i.sort_key)),
    );
    for key in all_keys {
        if !attributes.iter().any(|k| k.name == key.name) {
            attributes.push(key);
        }
    }
    attributes
}

/// One `GlobalSecondaryIndexes` entry; a provisioned table's indexes get its throughput.
fn global_index(index: &deployer_spec::Index, throughput: Option<&Value>) -> Value {
    let projection = match &index.projection {
        Projection::All => json!({ "ProjectionType": "ALL" }),
        Projection::KeysOnly => json!({ "ProjectionType": "KEYS_ONLY" }),
        Projection::Include(attrs) => {
            json!({ "ProjectionType": "INCLUDE", "NonKeyAttributes": attrs })
        }
    };
    let mut gsi = json!({
        "IndexName": index.name,
        "KeySchema": key_schema(&index.partition_key, index.sort_key.as_ref()),
        "Projection": projection,
    });
    if let Some(throughput) = throughput {
        gsi["ProvisionedThroughput"] = throughput.clone();
    }
    gsi
}

/// Adds the table and its name output.
pub fn render(spec: &Spec, name: &str, t: &Table, options: Options, doc: &mut Doc) {
    let id = id(name);
    let attributes = key_attributes(t);
    let throughput = match &t.billing {
        Billing::OnDemand => None,
        Billing::Provisioned { read, write } => {
            Some(json!({ "ReadCapacityUnits": read, "WriteCapacityUnits": write }))
        }
    };
    let mut properties = json!({
        "AttributeDefinitions": attributes
            .iter()
            .map(|k| json!({ "AttributeName": k.name, "AttributeType": k.kind.as_str() }))
            .collect::<Vec<_>>(),
        "KeySchema": key_schema(&t.partition_key, t.sort_key.as_ref()),
        "BillingMode": if throughput.is_some() { "PROVISIONED" } else { "PAY_PER_REQUEST" },
        "SSESpecification": match &t.encryption {
            // DynamoDB encrypts every table; `false` means with a key AWS owns, at no charge.
            Encryption::AwsOwned => json!({ "SSEEnabled": false }),
            Encryption::AwsManaged => json!({ "SSEEnabled": true, "SSEType": "KMS" }),
            Encryption::Kms(key) => json!({ "SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": key }),
        },
        "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": t.point_in_time_recovery },
        "DeletionProtectionEnabled": spec.is_protected(),
        // On the table itself, not only through the stack: a retained table outlives its stack,
        // and `up` finds it again by these (see `up --adopt-retained`).
        "Tags": [
            { "Key": super::APP_TAG, "Value": spec.app },
            { "Key": super::ENV_TAG, "Value": spec.env },
            { "Key": TABLE_TAG, "Value": name },
        ],
    });
    let props = properties.as_object_mut().expect("object literal");
    if let Some(throughput) = &throughput {
        props.insert("ProvisionedThroughput".into(), throughput.clone());
    }
    if !t.indexes.is_empty() {
        let indexes: Vec<Value> = t
            .indexes
            .iter()
            .map(|index| global_index(index, throughput.as_ref()))
            .collect();
        props.insert("GlobalSecondaryIndexes".into(), json!(indexes));
    }
    if let Some(attribute) = &t.ttl_attribute {
        props.insert(
            "TimeToLiveSpecification".into(),
            json!({ "AttributeName": attribute, "Enabled": true }),
        );
    }
    if let Some(view) = t.stream {
        props.insert(
            "StreamSpecification".into(),
            json!({ "StreamViewType": view.as_cfn() }),
        );
    }
    let table = doc.resource(&id, "AWS::DynamoDB::Table", properties);
    // Data outlives the stack unless the environment is ephemeral; a table whose own creation
    // failed holds nothing, so a failed first `up` leaves no orphan behind.
    let (deletion, replace) = if options.ephemeral {
        ("Delete", "Delete")
    } else {
        ("RetainExceptOnCreate", "Retain")
    };
    table.insert("DeletionPolicy".into(), json!(deletion));
    table.insert("UpdateReplacePolicy".into(), json!(replace));
    doc.output(
        format!("{}TableName", names::logical_id(name)),
        &format!("Physical name of the `{name}` table"),
        r#ref(&id),
    );
}
