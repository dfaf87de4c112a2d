//! The permission pre-flight: before a change set, ask IAM whether the caller may do what the
//! template needs, so that a missing `iam:PassRole` is an error now instead of a rollback minutes
//! into the operation. CloudFormation acts with the caller's credentials (no service role).
//!
//! The decisions here are pure; [`check`] makes the one IAM call around them.

use serde_json::Value;

use super::cloud::Cloud;
use crate::exit::{Code, Error};

/// The calls deployer itself makes for `up` once the bootstrap stack exists.
pub const OWN_ACTIONS: &[&str] = &[
    "cloudformation:CreateChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStacks",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:GetTemplate",
    "cloudformation:ListStackResources",
    "s3:GetObject",
    // Without it S3 answers a missing key (a new artifact, no hotswap record) 403, not 404.
    "s3:ListBucket",
    "s3:PutObject",
];

/// What CloudFormation's handlers call for one resource type, as deployer configures it: a subset
/// of the handler permissions in the type's resource schema (tests/it/oracles.rs checks each against
/// the schemas cfn-lint ships). The optional ones (KMS, VPC configuration, code signing, ...) are
/// left out, so that a role without them is not refused for features deployer does not use.
pub struct TypeActions {
    /// The resource type.
    pub kind: &'static str,
    /// To create or update one.
    pub write: &'static [&'static str],
    /// To delete one: asked for only when an update removes a resource of the type.
    pub delete: &'static [&'static str],
}

/// Per resource type deployer renders, the actions its handlers need.
pub const RESOURCE_ACTIONS: &[TypeActions] = &[
    TypeActions {
        kind: "AWS::CloudWatch::Alarm",
        write: &["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"],
        delete: &["cloudwatch:DeleteAlarms"],
    },
    TypeActions {
        kind: "AWS::DynamoDB::Table",
        write: &[
            "dynamodb:CreateTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTable",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:TagResource",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:UpdateTable",
            "dynamodb:UpdateTimeToLive",
        ],
        delete: &["dynamodb:DeleteTable"],
    },
    TypeActions {
        kind: "AWS::EC2::InternetGateway",
        write: &["ec2:CreateInternetGateway"],
        delete: &["ec2:DeleteInternetGateway"],
    },
    TypeActions {
        kind: "AWS::EC2::Route",
        write: &["ec2:CreateRoute"],
        delete: &["ec2:DeleteRoute"],
    },
    TypeActions {
        kind: "AWS::EC2::RouteTable",
        write: &["ec2:CreateRouteTable"],
        delete: &["ec2:DeleteRouteTable"],
    },
    TypeActions {
        kind: "AWS::EC2::SecurityGroup",
        write: &[
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateSecurityGroup",
            "ec2:DescribeSecurityGroups",
            "ec2:RevokeSecurityGroupEgress",
        ],
        delete: &["ec2:DeleteSecurityGroup"],
    },
    TypeActions {
        kind: "AWS::EC2::Subnet",
        write: &["ec2:CreateSubnet"],
        delete: &["ec2:DeleteSubnet"],
    },
    TypeActions {
        kind: "AWS::EC2::SubnetRouteTableAssociation",
        write: &["ec2:AssociateRouteTable"],
        delete: &["ec2:DisassociateRouteTable"],
    },
    TypeActions {
        kind: "AWS::EC2::VPC",
        write: &["ec2:CreateVpc", "ec2:DescribeVpcs"],
        delete: &["ec2:DeleteVpc"],
    },
    TypeActions {
        kind: "AWS::EC2::VPCGatewayAttachment",
        write: &["ec2:AttachInternetGateway"],
        delete: &["ec2:DetachInternetGateway"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::Listener",
        write: &[
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:ModifyListener",
        ],
        delete: &["elasticloadbalancing:DeleteListener"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::ListenerRule",
        write: &[
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:ModifyRule",
        ],
        delete: &["elasticloadbalancing:DeleteRule"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::LoadBalancer",
        write: &[
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
        ],
        delete: &["elasticloadbalancing:DeleteLoadBalancer"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::TargetGroup",
        write: &[
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:RegisterTargets",
        ],
        delete: &["elasticloadbalancing:DeleteTargetGroup"],
    },
    TypeActions {
        kind: "AWS::IAM::Role",
        write: &["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy"],
        delete: &["iam:DeleteRole", "iam:DeleteRolePolicy"],
    },
    TypeActions {
        kind: "AWS::Lambda::Function",
        write: &[
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "s3:GetObject",
        ],
        delete: &["lambda:DeleteFunction"],
    },
    TypeActions {
        kind: "AWS::Lambda::Permission",
        write: &["lambda:AddPermission"],
        delete: &["lambda:RemovePermission"],
    },
    TypeActions {
        kind: "AWS::Logs::LogGroup",
        write: &[
            "logs:CreateLogGroup",
            "logs:DescribeLogGroups",
            "logs:PutRetentionPolicy",
        ],
        delete: &["logs:DeleteLogGroup"],
    },
    TypeActions {
        kind: "AWS::SNS::Topic",
        write: &["sns:CreateTopic", "sns:GetTopicAttributes", "sns:Subscribe"],
        delete: &["sns:DeleteTopic"],
    },
];

/// The ARN IAM can simulate for a caller: an assumed role (SSO, OIDC in CI, `AssumeRole`) as its
/// role, a user as itself; `None` for the account root, which IAM cannot simulate.
///
/// An assumed-role ARN does not carry the role's path, so a role under a path is named without
/// it; IAM then answers NoSuchEntity and the check is skipped with a note.
pub fn principal(caller: &str) -> Option<String> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts[..] else {
        return None;
    };
    match (service, resource.split('/').collect::<Vec<_>>().as_slice()) {
        ("sts", ["assumed-role", role, _session]) => {
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        ("iam", ["root"]) => None,
        ("iam", [kind, ..]) if *kind == "user" || *kind == "role" => Some(caller.to_string()),
        _ => None,
    }
}

/// The actions an update from `deployed` (none: a create) to `wanted` needs, and deployer's own,
/// sorted and unique: creating and updating every type the template holds, deleting only the
/// types of resources it removes. Types deployer does not render itself (`extra`) are not checked.
pub fn required_actions(deployed: Option<&Value>, wanted: &Value) -> Vec<String> {
    let resources = |t: &Value| -> Vec<(String, String)> {
        t["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(id, r)| Some((id.clone(), r["Type"].as_str()?.to_string())))
            .collect()
    };
    let kept = resources(wanted);
    let removed: Vec<(String, String)> = deployed
        .map(resources)
        .unwrap_or_default()
        .into_iter()
        .filter(|(id, _)| !kept.iter().any(|(k, _)| k == id))
        .collect();
    let of = |kind: &str| RESOURCE_ACTIONS.iter().find(|t| t.kind == kind);
    let mut actions: Vec<String> = OWN_ACTIONS.iter().map(|a| a.to_string()).collect();
    for (_, kind) in &kept {
        actions.extend(
            of(kind)
                .into_iter()
                .flat_map(|t| t.write)
                .map(|a| a.to_string()),
        );
    }
    for (_, kind) in &removed {
        actions.extend(
            of(kind)
                .into_iter()
                .flat_map(|t| t.delete)
                .map(|a| a.to_string()),
        );
    }
    actions.sort();
    actions.dedup();
    actions
}

/// The actions IAM did not allow.
pub fn denied(decisions: &[(String, bool)]) -> Vec<String> {
    decisions
        .iter()
        .filter(|(_, allowed)| !allowed)
        .map(|(action, _)| action.clone())
        .collect()
}

/// What the pre-flight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Every action is allowed.
    Allowed,
    /// The check could not run (the caller may not simulate, the root user, IAM unavailable):
    /// why, in one line. The deployment goes ahead.
    Skipped(String),
}

/// Asks IAM whether `caller` may do what the update from `deployed` (none: a create) to
/// `template` needs; an error (exit 5) naming the missing actions when it may not.
pub async fn check<C: Cloud>(
    cloud: &C,
    caller: &str,
    deployed: Option<&Value>,
    template: &Value,
) -> Result<Checked, Error> {
    let Some(principal) = principal(caller) else {
        return Ok(Checked::Skipped(format!(
            "permissions not checked: IAM cannot simulate {caller}"
        )));
    };
    let actions = required_actions(deployed, template);
    let decisions = match cloud.simulate(&principal, &actions).await {
        Ok(decisions) => decisions,
        Err(e) => {
            return Ok(Checked::Skipped(format!(
                "permissions not checked: iam:SimulatePrincipalPolicy for {principal} failed: {e}"
            )));
        }
    };
    let missing = denied(&decisions);
    if missing.is_empty() {
        return Ok(Checked::Allowed);
    }
    Err(Error::new(
        Code::Denied,
        format!(
            "{principal} lacks {} permission{} this deployment needs (iam:SimulatePrincipalPolicy): {}\n\
             Nothing was changed. Grant them, or use --skip-permission-check if a policy scoped to \
             specific resources makes the simulation deny what the real calls would be allowed",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn callers_map_to_what_iam_can_simulate() {
        for (caller, want) in [
            (
                "arn:aws:sts::123456789012:assumed-role/ci-deploy/GitHubActions",
                Some("arn:aws:iam::123456789012:role/ci-deploy"),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane@example.com",
                Some("arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123abcd"),
            ),
            (
                "arn:aws-cn:sts::123456789012:assumed-role/deploy/s",
                Some("arn:aws-cn:iam::123456789012:role/deploy"),
            ),
            (
                "arn:aws:iam::123456789012:user/ci",
                Some("arn:aws:iam::123456789012:user/ci"),
            ),
            (
                "arn:aws:iam::123456789012:user/team/ci",
                Some("arn:aws:iam::123456789012:user/team/ci"),
            ),
            ("arn:aws:iam::123456789012:root", None),
            ("arn:aws:sts::123456789012:federated-user/bob", None),
            ("not an arn", None),
        ] {
            assert_eq!(principal(caller).as_deref(), want, "{caller}");
        }
    }

    #[test]
    fn actions_follow_the_resource_types_and_deletes_only_removals() {
        let template = json!({ "Resources": {
            "F": { "Type": "AWS::Lambda::Function" },
            "G": { "Type": "AWS::Lambda::Function" },
            "X": { "Type": "AWS::SQS::Queue" },
        }});
        let actions = required_actions(None, &template);
        assert!(actions.contains(&"iam:PassRole".to_string()));
        assert!(actions.contains(&"cloudformation:CreateChangeSet".to_string()));
        assert!(
            !actions.contains(&"lambda:DeleteFunction".to_string()),
            "a create deletes nothing"
        );
        assert!(
            !actions.iter().any(|a| a.starts_with("sqs:")),
            "extra types are not checked"
        );
        assert!(!actions.iter().any(|a| a.starts_with("dynamodb:")));
        let mut sorted = actions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(actions, sorted);
        let deployed = json!({ "Resources": {
            "F": { "Type": "AWS::Lambda::Function" },
            "T": { "Type": "AWS::DynamoDB::Table" },
        }});
        let update = required_actions(Some(&deployed), &template);
        assert!(
            update.contains(&"dynamodb:DeleteTable".to_string()),
            "T is removed"
        );
        assert!(
            !update.contains(&"lambda:DeleteFunction".to_string()),
            "no function is removed"
        );
    }

    #[test]
    fn every_rendered_type_is_covered() {
        let spec = crate::spec::parse(
            "app: a\nnetwork: { dedicated: true }\nalb: {}\nalarms: { email: [a@b.co] }\nfunctions:\n  f:\n    path: x\n    routes: [{ path: /x }]\n    tables: { t: read }\ntables:\n  t:\n    partition_key: { name: pk, type: S }\n",
            "s.yaml",
        )
        .unwrap();
        let template = crate::render::app(&spec, crate::render::Options::default()).unwrap();
        let boot = crate::render::bootstrap::template();
        for t in [&template.0, &boot.0] {
            for r in t["Resources"].as_object().unwrap().values() {
                let kind = r["Type"].as_str().unwrap();
                if kind.starts_with("AWS::S3::") {
                    continue; // only in the bootstrap stack, which deployer creates before checking
                }
                assert!(
                    RESOURCE_ACTIONS.iter().any(|t| t.kind == kind),
                    "{kind} has no actions"
                );
            }
        }
    }

    #[test]
    fn only_denials_are_missing() {
        let decisions = vec![
            ("a:X".to_string(), true),
            ("iam:PassRole".to_string(), false),
        ];
        assert_eq!(denied(&decisions), ["iam:PassRole"]);
    }
}
