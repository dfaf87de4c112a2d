//! Stack outputs, Url first; derived from the stack's resources when the backend returns none
//! (moto does not compute Outputs for stacks created through CREATE change sets).

use serde_json::Value;

use super::model::{Resource, Stack};

/// Outputs in display order: `Url` first, then as the template lists them.
pub fn ordered(mut outputs: Vec<(String, String)>) -> Vec<(String, String)> {
    outputs.sort_by_key(|(k, _)| k != "Url");
    outputs
}

/// Region, account and partition from a stack ARN
/// (`arn:aws:cloudformation:eu-west-1:123456789012:stack/name/id`).
fn arn_parts(stack_id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = stack_id.split(':');
    let (_, partition, _, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((partition, region, account))
}

/// The physical id of resource `logical_id`, read from a stack output whose value in `template`
/// is exactly `{"Ref": logical_id}` (the physical id, for the types deployer renders outputs of).
pub fn naming(template: &Value, stack: &Stack, logical_id: &str) -> Option<String> {
    let outputs = template["Outputs"].as_object()?;
    let (key, _) = outputs
        .iter()
        .find(|(_, o)| o["Value"] == serde_json::json!({ "Ref": logical_id }))?;
    stack.output(key).map(str::to_string)
}

/// The outputs the template declares, computed from physical resource ids: `Ref` gives the
/// physical id, a Lambda function's `Arn` is built from its name, and `Fn::Sub` of
/// `${LoadBalancer.DNSName}` uses `load_balancer_dns`. Outputs it cannot compute are left out.
pub fn derive(
    stack: &Stack,
    template: &Value,
    resources: &[Resource],
    load_balancer_dns: Option<&str>,
) -> Vec<(String, String)> {
    let physical = |id: &str| resources.iter().find(|r| r.logical_id == id);
    let mut derived = Vec::new();
    let Some(outputs) = template["Outputs"].as_object() else {
        return derived;
    };
    for (key, output) in outputs {
        let value = &output["Value"];
        let computed = if let Some(id) = value["Ref"].as_str() {
            physical(id).map(|r| r.physical_id.clone())
        } else if let Some([id, attribute]) = value["Fn::GetAtt"].as_array().map(Vec::as_slice) {
            let resource = id.as_str().and_then(physical);
            match (resource, attribute.as_str(), arn_parts(&stack.id)) {
                (Some(r), Some("Arn"), Some((partition, region, account)))
                    if r.resource_type == "AWS::Lambda::Function" =>
                {
                    Some(format!(
                        "arn:{partition}:lambda:{region}:{account}:function:{}",
                        r.physical_id
                    ))
                }
                _ => None,
            }
        } else if let Some(text) = value["Fn::Sub"].as_str() {
            load_balancer_dns
                .filter(|_| text.contains("${LoadBalancer.DNSName}"))
                .map(|dns| text.replace("${LoadBalancer.DNSName}", dns))
        } else {
            None
        };
        if let Some(v) = computed {
            derived.push((key.clone(), v));
        }
    }
    ordered(derived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::StackStatus;
    use serde_json::json;

    #[test]
    fn derives_the_declared_outputs_from_resources() {
        let stack = Stack {
            id: "arn:aws:cloudformation:us-east-1:123456789012:stack/notes-dev/x".into(),
            name: "notes-dev".into(),
            status: StackStatus::CreateComplete,
            reason: None,
            outputs: vec![],
            tags: Default::default(),
            termination_protection: false,
            parameters: Default::default(),
            created: None,
            updated: None,
            drift: None,
        };
        let template = json!({ "Outputs": {
            "ApiFunctionArn": { "Value": { "Fn::GetAtt": ["ApiFunction", "Arn"] } },
            "NotesTableName": { "Value": { "Ref": "NotesTable" } },
            "Url": { "Value": { "Fn::Sub": "http://${LoadBalancer.DNSName}" } },
            "Other": { "Value": { "Fn::GetAtt": ["Thing", "Arn"] } },
        }});
        let resources = vec![
            Resource {
                logical_id: "ApiFunction".into(),
                physical_id: "notes-dev-api".into(),
                resource_type: "AWS::Lambda::Function".into(),
            },
            Resource {
                logical_id: "NotesTable".into(),
                physical_id: "notes-dev-NotesTable-X".into(),
                resource_type: "AWS::DynamoDB::Table".into(),
            },
        ];
        let outputs = derive(
            &stack,
            &template,
            &resources,
            Some("lb-1.elb.amazonaws.com"),
        );
        assert_eq!(
            outputs,
            vec![
                (
                    "Url".to_string(),
                    "http://lb-1.elb.amazonaws.com".to_string()
                ),
                (
                    "ApiFunctionArn".to_string(),
                    "arn:aws:lambda:us-east-1:123456789012:function:notes-dev-api".to_string()
                ),
                (
                    "NotesTableName".to_string(),
                    "notes-dev-NotesTable-X".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_resource_is_named_by_the_output_that_refs_it_and_by_nothing_else() {
        let stack = Stack {
            outputs: vec![
                ("NotesTableName".into(), "notes-dev-NotesTable-X".into()),
                ("Joined".into(), "a-b".into()),
            ],
            ..Stack::being_created("arn:aws:cloudformation:us-east-1:1:stack/s/x", "s")
        };
        let template = json!({ "Outputs": {
            "NotesTableName": { "Value": { "Ref": "NotesTable" } },
            "Joined": { "Value": { "Fn::Join": ["-", [{ "Ref": "Other" }, "b"]] } },
            "Undeployed": { "Value": { "Ref": "Later" } },
        }});
        let named = |id| naming(&template, &stack, id);
        assert_eq!(
            named("NotesTable").as_deref(),
            Some("notes-dev-NotesTable-X")
        );
        assert_eq!(
            named("Other"),
            None,
            "only an output that is the Ref itself"
        );
        assert_eq!(
            named("Later"),
            None,
            "declared, but the stack has no such output"
        );
        assert_eq!(naming(&json!({}), &stack, "NotesTable"), None);
    }
}
