//! The data-loss guard: which changes would destroy data. Pure.
//!
//! A resource holding data (a table, a bucket, a log group) is lost when the change set removes
//! it and the deployed template does not retain it, or when it is replaced: the replacement
//! starts empty, and even a retained old copy is no longer what the app uses.

use serde_json::Value;

use super::model::{Change, ChangeAction, Replacement};

/// Resource types whose deletion or replacement destroys data.
pub const DATA_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
];

/// Properties whose change replaces the resource, per type (CloudFormation's "Update requires:
/// Replacement"), for backends whose change sets do not say (moto).
const REPLACING_PROPERTIES: &[(&str, &[&str])] = &[
    ("AWS::DynamoDB::Table", &["KeySchema", "TableName"]),
    ("AWS::DynamoDB::GlobalTable", &["KeySchema", "TableName"]),
    ("AWS::S3::Bucket", &["BucketName"]),
    ("AWS::Logs::LogGroup", &["LogGroupName"]),
];

/// One resource whose data the change would destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Logical id.
    pub logical_id: String,
    /// Resource type.
    pub resource_type: String,
    /// What happens to it, in words.
    pub why: String,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.logical_id, self.resource_type, self.why
        )
    }
}

/// Whether a `DeletionPolicy` keeps the resource when it leaves the stack. `RetainExceptOnCreate`
/// deletes only a resource whose own creation is being rolled back, which holds nothing yet.
pub fn retains(policy: &Value) -> bool {
    matches!(policy.as_str(), Some("Retain" | "RetainExceptOnCreate"))
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    &template["Resources"][id]
}

/// The property that forces a replacement, comparing the deployed and the new definition.
pub fn replacing_change(resource_type: &str, old: &Value, new: &Value) -> Option<&'static str> {
    let (_, properties) = REPLACING_PROPERTIES
        .iter()
        .find(|(t, _)| *t == resource_type)?;
    properties
        .iter()
        .find(|p| old["Properties"][**p] != new["Properties"][**p])
        .copied()
}

/// `changes` with the replacements the backend did not report (moto gives no `Replacement`)
/// marked as such, as [`losses`] judges them, so that the list shows `!` where the warning says
/// "replaced".
pub fn with_inferred_replacements(changes: &[Change], old: &Value, new: &Value) -> Vec<Change> {
    changes
        .iter()
        .map(|c| {
            let inferred = c.action == ChangeAction::Modify
                && c.replacement.is_none()
                && replacing_change(
                    &c.resource_type,
                    resource(old, &c.logical_id),
                    resource(new, &c.logical_id),
                )
                .is_some();
            Change {
                replacement: if inferred {
                    Some(Replacement::True)
                } else {
                    c.replacement.clone()
                },
                ..c.clone()
            }
        })
        .collect()
}

/// Every loss in `changes`, given the deployed (`old`) and wanted (`new`) templates.
pub fn losses(changes: &[Change], old: &Value, new: &Value) -> Vec<Loss> {
    let mut losses = Vec::new();
    for change in changes
        .iter()
        .filter(|c| DATA_TYPES.contains(&c.resource_type.as_str()))
    {
        let before = resource(old, &change.logical_id);
        let after = resource(new, &change.logical_id);
        let why = match (&change.action, &change.replacement) {
            (ChangeAction::Remove, _) if retains(&before["DeletionPolicy"]) => None,
            (ChangeAction::Remove, _) => {
                Some("deleted with its data (removed from the template)".to_string())
            }
            (ChangeAction::Modify, Some(Replacement::True)) => {
                Some("replaced: the new one starts empty".to_string())
            }
            (ChangeAction::Modify, Some(Replacement::Conditional)) => {
                Some("may be replaced, and the new one would start empty".to_string())
            }
            (ChangeAction::Modify, None) => replacing_change(&change.resource_type, before, after)
                .map(|p| format!("replaced because `{p}` changes: the new one starts empty")),
            _ => None,
        };
        if let Some(mut why) = why {
            if change.action == ChangeAction::Modify && before["UpdateReplacePolicy"] == "Retain" {
                why.push_str(" (the old one is retained, but nothing uses it any more)");
            }
            losses.push(Loss {
                logical_id: change.logical_id.clone(),
                resource_type: change.resource_type.clone(),
                why,
            });
        }
    }
    losses
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(action: &str, id: &str, kind: &str, replacement: Option<&str>) -> Change {
        Change {
            action: action.into(),
            logical_id: id.into(),
            resource_type: kind.into(),
            replacement: replacement.map(Replacement::from),
        }
    }

    fn table(key: &str, policy: &str) -> Value {
        json!({
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": policy,
            "UpdateReplacePolicy": policy,
            "Properties": { "KeySchema": [{ "AttributeName": key, "KeyType": "HASH" }], "BillingMode": "PAY_PER_REQUEST" },
        })
    }

    const T: &str = "AWS::DynamoDB::Table";

    #[test]
    fn removal_loses_data_unless_retained() {
        let old = json!({ "Resources": { "Kept": table("pk", "Retain"), "Gone": table("pk", "Delete") } });
        let new = json!({ "Resources": {} });
        let changes = [
            change("Remove", "Kept", T, None),
            change("Remove", "Gone", T, None),
        ];
        let found = losses(&changes, &old, &new);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].to_string(),
            "Gone (AWS::DynamoDB::Table): deleted with its data (removed from the template)"
        );
    }

    #[test]
    fn retain_except_on_create_retains_on_removal() {
        let old = json!({ "Resources": { "T": table("pk", "RetainExceptOnCreate") } });
        let found = losses(&[change("Remove", "T", T, None)], &old, &json!({}));
        assert!(found.is_empty(), "{found:?}");
        for (policy, kept) in [
            ("Retain", true),
            ("RetainExceptOnCreate", true),
            ("Delete", false),
            ("Snapshot", false),
        ] {
            assert_eq!(retains(&json!(policy)), kept, "{policy}");
        }
    }

    #[test]
    fn replacement_as_the_change_set_says() {
        let t = json!({ "Resources": { "A": table("pk", "Delete") } });
        for (replacement, lost) in [
            (Some("True"), true),
            (Some("Conditional"), true),
            (Some("False"), false),
        ] {
            let found = losses(&[change("Modify", "A", T, replacement)], &t, &t);
            assert_eq!(!found.is_empty(), lost, "{replacement:?}");
        }
    }

    #[test]
    fn replacement_derived_from_the_template_when_the_backend_is_silent() {
        let old = json!({ "Resources": { "A": table("pk", "Retain") } });
        let same_keys = json!({ "Resources": { "A": { "Properties": { "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }], "BillingMode": "PROVISIONED" } } } });
        assert!(
            losses(&[change("Modify", "A", T, None)], &old, &same_keys).is_empty(),
            "billing changes in place"
        );
        let new_keys = json!({ "Resources": { "A": table("id", "Retain") } });
        let found = losses(&[change("Modify", "A", T, None)], &old, &new_keys);
        assert_eq!(
            found[0].why,
            "replaced because `KeySchema` changes: the new one starts empty (the old one is retained, but nothing uses it any more)"
        );
        let renamed = json!({ "Resources": { "A": { "Properties": { "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }], "TableName": "x" } } } });
        assert_eq!(
            replacing_change(T, &old["Resources"]["A"], &renamed["Resources"]["A"]),
            Some("TableName")
        );
    }

    #[test]
    fn inferred_replacements_are_marked() {
        let old = json!({ "Resources": { "A": table("pk", "Retain") } });
        let new = json!({ "Resources": { "A": table("id", "Retain") } });
        let marked = with_inferred_replacements(&[change("Modify", "A", T, None)], &old, &new);
        assert_eq!(marked[0].marker(), '!');
        let same = with_inferred_replacements(&[change("Modify", "A", T, None)], &old, &old);
        assert_eq!(same[0].marker(), '~');
    }

    #[test]
    fn other_types_and_additions_are_never_losses() {
        let t = json!({ "Resources": {} });
        let changes = [
            change("Remove", "Fn", "AWS::Lambda::Function", None),
            change("Modify", "Fn", "AWS::Lambda::Function", Some("True")),
            change("Add", "New", T, None),
        ];
        assert!(losses(&changes, &t, &t).is_empty());
        let logs = [change("Remove", "ApiLogGroup", "AWS::Logs::LogGroup", None)];
        assert_eq!(losses(&logs, &t, &t).len(), 1, "log groups hold logs");
    }
}
