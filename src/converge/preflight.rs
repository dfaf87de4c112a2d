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
    "s3:PutObject",
];

/// Per resource type deployer renders, the actions CloudFormation's handlers call to create,
/// update and delete it as deployer configures it: a subset of the handler permissions in the
/// type's resource schema (tests/oracles.rs checks each against the schemas cfn-lint ships).
/// The optional ones (KMS, VPC configuration, code signing, ...) are left out, so that a role
/// without them is not refused for features deployer does not use.
pub const RESOURCE_ACTIONS: &[(&str, &[&str])] = &[
    (
        "AWS::CloudWatch::Alarm",
        &[
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
        ],
    ),
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:CreateTable",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTable",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:TagResource",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:UpdateTable",
            "dynamodb:UpdateTimeToLive",
        ],
    ),
    (
        "AWS::EC2::InternetGateway",
        &["ec2:CreateInternetGateway", "ec2:DeleteInternetGateway"],
    ),
    ("AWS::EC2::Route", &["ec2:CreateRoute", "ec2:DeleteRoute"]),
    (
        "AWS::EC2::RouteTable",
        &["ec2:CreateRouteTable", "ec2:DeleteRouteTable"],
    ),
    (
        "AWS::EC2::SecurityGroup",
        &[
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateSecurityGroup",
            "ec2:DeleteSecurityGroup",
            "ec2:DescribeSecurityGroups",
            "ec2:RevokeSecurityGroupEgress",
        ],
    ),
    (
        "AWS::EC2::Subnet",
        &["ec2:CreateSubnet", "ec2:DeleteSubnet"],
    ),
    (
        "AWS::EC2::SubnetRouteTableAssociation",
        &["ec2:AssociateRouteTable", "ec2:DisassociateRouteTable"],
    ),
    (
        "AWS::EC2::VPC",
        &["ec2:CreateVpc", "ec2:DeleteVpc", "ec2:DescribeVpcs"],
    ),
    (
        "AWS::EC2::VPCGatewayAttachment",
        &["ec2:AttachInternetGateway", "ec2:DetachInternetGateway"],
    ),
    (
        "AWS::ElasticLoadBalancingV2::Listener",
        &[
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:ModifyListener",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        &[
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:ModifyRule",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        &[
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        &[
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:RegisterTargets",
        ],
    ),
    (
        "AWS::IAM::Role",
        &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:GetRole",
            "iam:PutRolePolicy",
        ],
    ),
    (
        "AWS::Lambda::Function",
        &[
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:DeleteFunction",
            "lambda:GetFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "s3:GetObject",
        ],
    ),
    (
        "AWS::Lambda::Permission",
        &["lambda:AddPermission", "lambda:RemovePermission"],
    ),
    (
        "AWS::Logs::LogGroup",
        &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:DescribeLogGroups",
            "logs:PutRetentionPolicy",
        ],
    ),
    (
        "AWS::SNS::Topic",
        &[
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetTopicAttributes",
            "sns:Subscribe",
        ],
    ),
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

/// The actions the template's resource types need, and deployer's own, sorted and unique.
/// Resource types deployer does not render itself (`extra`) are not checked.
pub fn required_actions(template: &Value) -> Vec<String> {
    let mut actions: Vec<String> = OWN_ACTIONS.iter().map(|a| a.to_string()).collect();
    let types = template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.values())
        .filter_map(|r| r["Type"].as_str());
    for kind in types {
        if let Some((_, needed)) = RESOURCE_ACTIONS.iter().find(|(t, _)| *t == kind) {
            actions.extend(needed.iter().map(|a| a.to_string()));
        }
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

/// Asks IAM whether `caller` may do what `template` needs; an error (exit 5) naming the missing
/// actions when it may not.
pub async fn check<C: Cloud>(cloud: &C, caller: &str, template: &Value) -> Result<Checked, Error> {
    let Some(principal) = principal(caller) else {
        return Ok(Checked::Skipped(format!(
            "permissions not checked: IAM cannot simulate {caller}"
        )));
    };
    let actions = required_actions(template);
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
    fn actions_follow_the_resource_types() {
        let template = json!({ "Resources": {
            "F": { "Type": "AWS::Lambda::Function" },
            "G": { "Type": "AWS::Lambda::Function" },
            "X": { "Type": "AWS::SQS::Queue" },
        }});
        let actions = required_actions(&template);
        assert!(actions.contains(&"iam:PassRole".to_string()));
        assert!(actions.contains(&"cloudformation:CreateChangeSet".to_string()));
        assert!(
            !actions.iter().any(|a| a.starts_with("sqs:")),
            "extra types are not checked"
        );
        assert!(!actions.iter().any(|a| a.starts_with("dynamodb:")));
        let mut sorted = actions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(actions, sorted);
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
                    RESOURCE_ACTIONS.iter().any(|(t, _)| *t == kind),
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
