//! The permission pre-flight: before a change set, ask IAM whether the caller may do what the
//! template needs, so that a missing `iam:PassRole` is an error now instead of a rollback minutes
//! into the operation. CloudFormation acts with the caller's credentials (no service role).
//!
//! Each action is simulated against the resources the real call acts on (the names deployer
//! gives, and names of the shape CloudFormation generates) with the condition keys the real call
//! carries, so that a least-privilege role scoped to the app's resources is not refused; what the
//! simulation cannot tell is a warning, not a refusal.
//!
//! The decisions here are pure; [`check`] makes the IAM calls around them.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::Value;

use super::cloud::Cloud;
pub use super::model::{ContextEntry, ContextKeyType, Decision, Evaluation, Probe};
use crate::exit::{Code, Error};

/// The calls deployer itself makes for `up` once the bootstrap stack exists.
///
/// Not here, since a role without them still deploys: drift detection's
/// (`cloudformation:DetectStackDrift`, `DescribeStackDriftDetectionStatus`,
/// `DescribeStackResourceDrifts`: `plan` warns when it cannot detect drift), `s3:DeleteObject`
/// (only an env that stops sharing its app's load balancer frees its slot record with it) and
/// `pricing:GetProducts` (`--prices live` only).
pub const OWN_ACTIONS: &[&str] = &[
    "cloudformation:CreateChangeSet",
    // A first create nobody reviews is one CreateStack; tags-only changes are an UpdateStack.
    "cloudformation:CreateStack",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStacks",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:GetTemplate",
    "cloudformation:ListStackResources",
    "cloudformation:UpdateStack",
    "s3:GetObject",
    // Without it S3 answers a missing key (a new artifact, no hotswap record) 403, not 404.
    "s3:ListBucket",
    "s3:PutObject",
];

/// The calls deployer itself makes on resources of a type, when the template has one: index
/// steps wait for the table (DescribeTable), TTL is read before it is enabled again, and the
/// verification after `up` waits for a checked target to be healthy and shows the function's
/// log lines when it fails (both skipped on emulators).
pub const OWN_TYPE_ACTIONS: &[(&str, &[&str])] = &[
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:DescribeTable",
            "dynamodb:DescribeTimeToLive",
            // A new stack looks for the tables its env's earlier stack retained.
            "dynamodb:ListTables",
            "dynamodb:ListTagsOfResource",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        &["elasticloadbalancing:DescribeTargetHealth"],
    ),
    ("AWS::Logs::LogGroup", &["logs:FilterLogEvents"]),
    // `alb.domain`'s zone, found by name or checked (converge::resolve).
    (
        "AWS::Route53::RecordSet",
        &["route53:GetHostedZone", "route53:ListHostedZonesByName"],
    ),
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
        write: &[
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:TagResource",
        ],
        delete: &["cloudwatch:DeleteAlarms"],
    },
    TypeActions {
        kind: "AWS::CertificateManager::Certificate",
        // DNS validation: the handler writes the validation record into the zone itself.
        write: &[
            "acm:AddTagsToCertificate",
            "acm:DescribeCertificate",
            "acm:RequestCertificate",
            "route53:ChangeResourceRecordSets",
        ],
        delete: &["acm:DeleteCertificate"],
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
        write: &["ec2:CreateInternetGateway", "ec2:CreateTags"],
        delete: &["ec2:DeleteInternetGateway"],
    },
    TypeActions {
        kind: "AWS::EC2::Route",
        write: &["ec2:CreateRoute"],
        delete: &["ec2:DeleteRoute"],
    },
    TypeActions {
        kind: "AWS::EC2::RouteTable",
        write: &["ec2:CreateRouteTable", "ec2:CreateTags"],
        delete: &["ec2:DeleteRouteTable"],
    },
    TypeActions {
        kind: "AWS::EC2::SecurityGroup",
        write: &[
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:DescribeSecurityGroups",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
        ],
        delete: &["ec2:DeleteSecurityGroup"],
    },
    TypeActions {
        kind: "AWS::EC2::Subnet",
        write: &["ec2:CreateSubnet", "ec2:CreateTags"],
        delete: &["ec2:DeleteSubnet"],
    },
    TypeActions {
        kind: "AWS::EC2::SubnetRouteTableAssociation",
        write: &["ec2:AssociateRouteTable"],
        delete: &["ec2:DisassociateRouteTable"],
    },
    TypeActions {
        kind: "AWS::EC2::VPC",
        write: &["ec2:CreateTags", "ec2:CreateVpc", "ec2:DescribeVpcs"],
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
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:ModifyListener",
        ],
        delete: &["elasticloadbalancing:DeleteListener"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::ListenerRule",
        write: &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:ModifyRule",
            // Priorities move on update (see the transition's renumbering).
            "elasticloadbalancing:SetRulePriorities",
        ],
        delete: &["elasticloadbalancing:DeleteRule"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::LoadBalancer",
        write: &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
        ],
        delete: &["elasticloadbalancing:DeleteLoadBalancer"],
    },
    TypeActions {
        kind: "AWS::ElasticLoadBalancingV2::TargetGroup",
        write: &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:RegisterTargets",
        ],
        delete: &["elasticloadbalancing:DeleteTargetGroup"],
    },
    TypeActions {
        kind: "AWS::IAM::Role",
        write: &[
            "iam:CreateRole",
            "iam:GetRole",
            "iam:PutRolePolicy",
            "iam:TagRole",
        ],
        delete: &["iam:DeleteRole", "iam:DeleteRolePolicy"],
    },
    TypeActions {
        kind: "AWS::Lambda::Function",
        write: &[
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:TagResource",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "s3:GetObject",
        ],
        delete: &["lambda:DeleteFunction"],
    },
    TypeActions {
        kind: "AWS::Lambda::Version",
        write: &[
            "lambda:GetFunctionConfiguration",
            "lambda:ListVersionsByFunction",
            "lambda:PublishVersion",
        ],
        // Retained: a replaced version stays (its `live` alias may still point at it).
        delete: &[],
    },
    TypeActions {
        kind: "AWS::Lambda::Alias",
        write: &[
            "lambda:CreateAlias",
            "lambda:GetAlias",
            "lambda:UpdateAlias",
        ],
        delete: &["lambda:DeleteAlias", "lambda:GetAlias"],
    },
    TypeActions {
        kind: "AWS::Lambda::Permission",
        write: &["lambda:AddPermission"],
        delete: &["lambda:RemovePermission"],
    },
    TypeActions {
        kind: "AWS::Route53::RecordSet",
        write: &[
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:GetHostedZone",
            "route53:ListResourceRecordSets",
        ],
        delete: &["route53:ChangeResourceRecordSets", "route53:GetChange"],
    },
    TypeActions {
        kind: "AWS::Logs::LogGroup",
        write: &[
            "logs:CreateLogGroup",
            "logs:DescribeLogGroups",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
        ],
        delete: &["logs:DeleteLogGroup"],
    },
    TypeActions {
        kind: "AWS::SNS::Topic",
        write: &[
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:Subscribe",
            "sns:TagResource",
        ],
        delete: &["sns:DeleteTopic"],
    },
];

/// Actions a resource's handlers call only when the template sets a property: asked for only
/// then, so that a role without them is not refused for a feature the spec does not use.
pub struct PropertyActions {
    /// The resource type.
    pub kind: &'static str,
    /// The property path, `.`-separated.
    pub property: &'static str,
    /// To create or update one that sets it.
    pub write: &'static [&'static str],
}

/// Per resource type and property, the extra actions its handlers need.
pub const PROPERTY_ACTIONS: &[PropertyActions] = &[
    PropertyActions {
        kind: "AWS::Lambda::Function",
        property: "ReservedConcurrentExecutions",
        write: &["lambda:PutFunctionConcurrency"],
    },
    PropertyActions {
        kind: "AWS::DynamoDB::Table",
        property: "SSESpecification.KMSMasterKeyId",
        write: &["kms:CreateGrant", "kms:DescribeKey"],
    },
];

/// Who IAM simulates for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A session of a role (SSO, OIDC in CI, `AssumeRole`): simulated as the role, whose ARN
    /// (with its path, which the session ARN does not carry) `iam:GetRole` gives.
    AssumedRole {
        /// The role's name.
        name: String,
        /// Its ARN without a path: what to simulate when GetRole is not allowed.
        without_path: String,
    },
    /// A user or role ARN, simulated as it is.
    Arn(String),
}

/// Who IAM can simulate for `caller`; `None` for the account root, which IAM cannot simulate.
pub fn principal(caller: &str) -> Option<Principal> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts[..] else {
        return None;
    };
    match (service, resource.split('/').collect::<Vec<_>>().as_slice()) {
        ("sts", ["assumed-role", role, _session]) => Some(Principal::AssumedRole {
            name: role.to_string(),
            without_path: format!("arn:{partition}:iam::{account}:role/{role}"),
        }),
        ("iam", ["root"]) => None,
        ("iam", [kind, ..]) if *kind == "user" || *kind == "role" => {
            Some(Principal::Arn(caller.to_string()))
        }
        _ => None,
    }
}

/// Whether `template` sets `path` (`.`-separated) on resource `r`.
fn sets(r: &Value, path: &str) -> bool {
    let mut v = &r["Properties"];
    for part in path.split('.') {
        v = &v[part];
    }
    !v.is_null()
}

/// The actions an update from `deployed` (none: a create) to `wanted` needs, and deployer's own,
/// sorted and unique: creating and updating every type the template holds (with the actions of
/// the properties it sets), deleting only the types of resources it removes. Types deployer does
/// not render itself (`extra`) are not checked.
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
    for (id, kind) in &kept {
        actions.extend(
            of(kind)
                .into_iter()
                .flat_map(|t| t.write)
                .map(|a| a.to_string()),
        );
        for (_, own) in OWN_TYPE_ACTIONS.iter().filter(|(k, _)| k == kind) {
            actions.extend(own.iter().map(|a| a.to_string()));
        }
        for extra in PROPERTY_ACTIONS.iter().filter(|p| p.kind == kind) {
            if sets(&wanted["Resources"][id], extra.property) {
                actions.extend(extra.write.iter().map(|a| a.to_string()));
            }
        }
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

impl ContextKeyType {
    /// The name in the API (`ContextKeyType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContextKeyType::String => "string",
            ContextKeyType::StringList => "stringList",
        }
    }
}

/// Where the stack's resources live: what their ARNs are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `aws`, `aws-cn`, ...
    pub partition: String,
    /// The account.
    pub account: String,
    /// The stack's region.
    pub region: String,
    /// The stack.
    pub stack_name: String,
    /// The artifact bucket, once known.
    pub bucket: Option<String>,
    /// The app: the first part of its artifacts' keys (`<app>/<fn>/<sha256>.zip`).
    pub app: Option<String>,
}

impl Scope {
    /// From the caller's ARN (partition and account) and the stack.
    pub fn of(caller: &str, region: &str, stack_name: &str, bucket: Option<&str>) -> Scope {
        let parts: Vec<&str> = caller.splitn(6, ':').collect();
        Scope {
            partition: parts.get(1).copied().unwrap_or("aws").to_string(),
            account: parts.get(4).copied().unwrap_or_default().to_string(),
            region: region.to_string(),
            stack_name: stack_name.to_string(),
            bucket: bucket.map(str::to_string),
            app: None,
        }
    }

    /// With the app whose artifacts the bucket holds.
    pub fn with_app(mut self, app: Option<&str>) -> Scope {
        self.app = app.map(str::to_string);
        self
    }

    /// The name CloudFormation gives a resource it names itself: `<stack>-<LogicalId>-<suffix>`
    /// (a 12-character random suffix), cut to `max` characters as it does.
    fn generated_name(&self, logical_id: &str, max: usize) -> String {
        const SUFFIX: &str = "1A2B3C4D5E6F";
        let head = format!("{}-{logical_id}", self.stack_name);
        let room = max.saturating_sub(SUFFIX.len() + 1);
        format!("{}-{SUFFIX}", &head[..head.len().min(room)])
    }
}

/// The service that CloudFormation calls on the caller's behalf (`aws:CalledVia`).
const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";

/// The resources an action acts on in this stack, by the template: the names deployer gives
/// (functions, log groups, the stack, the bucket) and, for names CloudFormation generates (roles,
/// tables), names of the shape it generates. `*` where deployer cannot tell (EC2, load
/// balancers, alarms, topics).
/// The customer-managed KMS keys the tables name, each once.
fn customer_keys(tables: Vec<(&String, &Value)>) -> Vec<String> {
    let mut keys: Vec<String> = tables
        .into_iter()
        .filter_map(|(_, t)| {
            t["Properties"]["SSESpecification"]["KMSMasterKeyId"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn resources_for(action: &str, template: &Value, scope: &Scope) -> Vec<String> {
    let Scope {
        partition: p,
        account: a,
        region: r,
        stack_name,
        ..
    } = scope;
    let of_type = |kind: &str| -> Vec<(&String, &Value)> {
        template["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v["Type"] == kind)
            .collect()
    };
    let literal =
        |v: &Value, property: &str| v["Properties"][property].as_str().map(str::to_string);
    let (service, name) = action.split_once(':').unwrap_or((action, ""));
    let arns: Vec<String> = match service {
        "cloudformation" => vec![format!(
            "arn:{p}:cloudformation:{r}:{a}:stack/{stack_name}/*"
        )],
        "s3" => match (&scope.bucket, name) {
            (Some(bucket), "ListBucket") => vec![format!("arn:{p}:s3:::{bucket}")],
            // An artifact's key: what Lambda reads with the caller's credentials, and `up`
            // writes.
            (Some(bucket), _) => {
                let prefix = scope.app.as_deref().unwrap_or(stack_name);
                vec![format!("arn:{p}:s3:::{bucket}/{prefix}/artifact.zip")]
            }
            (None, _) => Vec::new(),
        },
        "lambda" => of_type("AWS::Lambda::Function")
            .into_iter()
            .filter_map(|(_, f)| literal(f, "FunctionName"))
            .map(|n| format!("arn:{p}:lambda:{r}:{a}:function:{n}"))
            .collect(),
        "logs" => of_type("AWS::Logs::LogGroup")
            .into_iter()
            .filter_map(|(_, g)| literal(g, "LogGroupName"))
            .map(|n| format!("arn:{p}:logs:{r}:{a}:log-group:{n}"))
            .collect(),
        "iam" => of_type("AWS::IAM::Role")
            .into_iter()
            .map(|(id, role)| {
                let n = literal(role, "RoleName").unwrap_or_else(|| scope.generated_name(id, 64));
                format!("arn:{p}:iam::{a}:role/{n}")
            })
            .collect(),
        // Listing tables acts on no table.
        "dynamodb" if name == "ListTables" => Vec::new(),
        "dynamodb" => of_type("AWS::DynamoDB::Table")
            .into_iter()
            .map(|(id, table)| {
                let n =
                    literal(table, "TableName").unwrap_or_else(|| scope.generated_name(id, 255));
                format!("arn:{p}:dynamodb:{r}:{a}:table/{n}")
            })
            .collect(),
        "kms" => customer_keys(of_type("AWS::DynamoDB::Table")),
        _ => Vec::new(),
    };
    if arns.is_empty() {
        vec!["*".to_string()]
    } else {
        arns
    }
}

/// Whether deployer makes the call itself (then without `aws:CalledVia`), and whether
/// CloudFormation makes it for deployer (with it): an action can be both.
fn callers(action: &str) -> (bool, bool) {
    let own = OWN_ACTIONS.contains(&action)
        || OWN_TYPE_ACTIONS
            .iter()
            .any(|(_, actions)| actions.contains(&action));
    let handler = RESOURCE_ACTIONS
        .iter()
        .any(|t| t.write.contains(&action) || t.delete.contains(&action))
        || PROPERTY_ACTIONS.iter().any(|p| p.write.contains(&action));
    (own, handler || !own)
}

/// The condition keys the real request for `action` carries: the region it goes to (IAM's,
/// a global service, is us-east-1 in the `aws` partition), `aws:CalledVia` for what
/// CloudFormation calls (`via_cloudformation`), and `iam:PassedToService` for the role passed
/// to Lambda.
fn context_for(action: &str, via_cloudformation: bool, scope: &Scope) -> Vec<ContextEntry> {
    let global_iam = action.starts_with("iam:") && action != "iam:PassRole";
    let region = match (global_iam, scope.partition.as_str()) {
        (true, "aws") => "us-east-1",
        _ => scope.region.as_str(),
    };
    let mut context = vec![ContextEntry::string("aws:RequestedRegion", region)];
    if via_cloudformation {
        context.push(ContextEntry {
            key: "aws:CalledVia".into(),
            kind: ContextKeyType::StringList,
            values: vec![CLOUDFORMATION.into()],
        });
        context.push(ContextEntry::string("aws:CalledViaFirst", CLOUDFORMATION));
        context.push(ContextEntry::string("aws:CalledViaLast", CLOUDFORMATION));
    }
    if action == "iam:PassRole" {
        context.push(ContextEntry::string(
            "iam:PassedToService",
            "lambda.amazonaws.com",
        ));
    }
    context.sort();
    context
}

/// The requests that ask IAM about `actions` as the real calls would be made: one per resource
/// and context, holding every action that shares them.
pub fn probes(actions: &[String], template: &Value, scope: &Scope) -> Vec<Probe> {
    let mut grouped: BTreeMap<(String, Vec<ContextEntry>), Vec<String>> = BTreeMap::new();
    for action in actions {
        let (own, via_cloudformation) = callers(action);
        let contexts = [(own, false), (via_cloudformation, true)]
            .into_iter()
            .filter(|(made, _)| *made)
            .map(|(_, via)| context_for(action, via, scope));
        for context in contexts {
            for resource in resources_for(action, template, scope) {
                grouped
                    .entry((resource, context.clone()))
                    .or_default()
                    .push(action.clone());
            }
        }
    }
    grouped
        .into_iter()
        .map(|((resource, context), actions)| Probe {
            actions,
            resource,
            context,
        })
        .collect()
}

/// What the pre-flight makes of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Allowed for every resource it was asked about.
    Allowed,
    /// The simulation cannot tell: the policies use a condition key it was not given, or an
    /// action on resources deployer cannot name (`*`) was denied where a statement scoped to
    /// specific resources may allow the real call.
    Unconfirmed,
    /// Denied for the very resource and context of the real call.
    Denied,
}

/// The verdict on one evaluation of a probe against `resource`.
pub fn verdict(resource: &str, evaluation: &Evaluation) -> Verdict {
    match evaluation.decision {
        Decision::Allowed => Verdict::Allowed,
        _ if !evaluation.missing_context.is_empty() => Verdict::Unconfirmed,
        Decision::ImplicitDeny if resource == "*" => Verdict::Unconfirmed,
        Decision::ImplicitDeny | Decision::ExplicitDeny => Verdict::Denied,
    }
}

/// What the pre-flight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Every action is allowed.
    Allowed,
    /// The check could not run (the caller may not simulate, the root user, IAM unavailable):
    /// why, in one line. The deployment goes ahead.
    Skipped(String),
    /// Nothing is denied, but these actions could not be confirmed (see [`Verdict`]): one
    /// warning, and the deployment goes ahead.
    Unconfirmed(String),
}

/// Asks IAM whether `caller` may do what the update from `deployed` (none: a create) to
/// `template` needs, against the resources the stack will have (`scope`); an error (exit 5)
/// naming the actions that are denied whatever the simulation could not see.
pub async fn check<C: Cloud>(
    cloud: &C,
    caller: &str,
    scope: &Scope,
    deployed: Option<&Value>,
    template: &Value,
) -> Result<Checked, Error> {
    let Some(who) = principal(caller) else {
        return Ok(Checked::Skipped(format!(
            "permissions not checked: IAM cannot simulate {caller}"
        )));
    };
    let principal = match who {
        Principal::Arn(arn) => arn,
        // Without iam:GetRole the path stays unknown: a role under one then answers
        // NoSuchEntity below, and the check is skipped with that reason.
        Principal::AssumedRole { name, without_path } => {
            cloud.role_arn(&name).await.unwrap_or(without_path)
        }
    };
    let actions = required_actions(deployed, template);
    let probes = probes(&actions, template, scope);
    let answers = join_all(probes.iter().map(|p| cloud.simulate(&principal, p))).await;
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    for (probe, answer) in probes.iter().zip(answers) {
        let evaluations = match answer {
            Ok(evaluations) => evaluations,
            Err(e) => {
                return Ok(Checked::Skipped(format!(
                    "permissions not checked: iam:SimulatePrincipalPolicy for {principal} failed: {e}"
                )));
            }
        };
        for evaluation in &evaluations {
            let v = verdict(&probe.resource, evaluation);
            let worst = verdicts.entry(evaluation.action.clone()).or_insert(v);
            *worst = (*worst).max(v);
        }
    }
    let with = |wanted: Verdict| -> Vec<String> {
        verdicts
            .iter()
            .filter(|(_, v)| **v == wanted)
            .map(|(a, _)| a.clone())
            .collect()
    };
    let (denied, unconfirmed) = (with(Verdict::Denied), with(Verdict::Unconfirmed));
    if !denied.is_empty() {
        return Err(Error::new(
            Code::Denied,
            format!(
                "{principal} lacks {} permission{} this deployment needs (iam:SimulatePrincipalPolicy, against the stack's own resources): {}\n\
                 Nothing was changed. Grant them, or use --skip-permission-check if a policy the \
                 simulation cannot see (an SCP, a session policy, a permissions boundary's exception) allows them",
                denied.len(),
                if denied.len() == 1 { "" } else { "s" },
                denied.join(", ")
            ),
        ));
    }
    if !unconfirmed.is_empty() {
        return Ok(Checked::Unconfirmed(format!(
            "permissions could not be confirmed for {principal} (conditions the simulation cannot evaluate, or resources deployer cannot name): {}; the deployment goes ahead",
            unconfirmed.join(", ")
        )));
    }
    Ok(Checked::Allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn callers_map_to_what_iam_can_simulate() {
        let role = |name: &str, arn: &str| {
            Some(Principal::AssumedRole {
                name: name.into(),
                without_path: arn.into(),
            })
        };
        for (caller, want) in [
            (
                "arn:aws:sts::123456789012:assumed-role/ci-deploy/GitHubActions",
                role("ci-deploy", "arn:aws:iam::123456789012:role/ci-deploy"),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane@example.com",
                role(
                    "AWSReservedSSO_Admin_0123abcd",
                    "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123abcd",
                ),
            ),
            (
                "arn:aws-cn:sts::123456789012:assumed-role/deploy/s",
                role("deploy", "arn:aws-cn:iam::123456789012:role/deploy"),
            ),
            (
                "arn:aws:iam::123456789012:user/ci",
                Some(Principal::Arn("arn:aws:iam::123456789012:user/ci".into())),
            ),
            (
                "arn:aws:iam::123456789012:user/team/ci",
                Some(Principal::Arn(
                    "arn:aws:iam::123456789012:user/team/ci".into(),
                )),
            ),
            ("arn:aws:iam::123456789012:root", None),
            ("arn:aws:sts::123456789012:federated-user/bob", None),
            ("not an arn", None),
        ] {
            assert_eq!(principal(caller), want, "{caller}");
        }
    }

    fn scope() -> Scope {
        Scope::of(
            "arn:aws:sts::123456789012:assumed-role/ci/run",
            "eu-west-1",
            "notes-dev",
            Some("deployer-artifacts-123456789012-eu-west-1"),
        )
        .with_app(Some("notes"))
    }

    #[test]
    fn each_action_is_asked_about_the_resources_and_context_of_the_real_call() {
        let template = json!({ "Resources": {
            "ApiFunction": { "Type": "AWS::Lambda::Function", "Properties": { "FunctionName": "notes-dev-api", "ReservedConcurrentExecutions": 5 } },
            "ApiRole": { "Type": "AWS::IAM::Role", "Properties": {} },
            "ApiLogGroup": { "Type": "AWS::Logs::LogGroup", "Properties": { "LogGroupName": "/aws/lambda/notes-dev-api" } },
            "NotesTable": { "Type": "AWS::DynamoDB::Table", "Properties": { "SSESpecification": { "KMSMasterKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k" } } },
            "LoadBalancer": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {} },
        }});
        let actions = required_actions(None, &template);
        for extra in [
            "lambda:PutFunctionConcurrency",
            "kms:CreateGrant",
            "kms:DescribeKey",
        ] {
            assert!(
                actions.contains(&extra.to_string()),
                "{extra}: the property is set"
            );
        }
        let probes = probes(&actions, &template, &scope());
        let probe_of = |action: &str| -> Vec<&Probe> {
            probes
                .iter()
                .filter(|p| p.actions.iter().any(|a| a == action))
                .collect()
        };
        let only = |action: &str| -> &Probe {
            let found = probe_of(action);
            assert_eq!(found.len(), 1, "{action}: {found:?}");
            found[0]
        };
        let key = |p: &Probe, k: &str| -> Option<Vec<String>> {
            p.context
                .iter()
                .find(|c| c.key == k)
                .map(|c| c.values.clone())
        };
        let code = only("lambda:UpdateFunctionCode");
        assert_eq!(
            code.resource,
            "arn:aws:lambda:eu-west-1:123456789012:function:notes-dev-api"
        );
        assert_eq!(
            key(code, "aws:CalledVia"),
            Some(vec![CLOUDFORMATION.to_string()])
        );
        assert_eq!(
            key(code, "aws:RequestedRegion"),
            Some(vec!["eu-west-1".to_string()])
        );
        let pass = only("iam:PassRole");
        assert_eq!(
            pass.resource, "arn:aws:iam::123456789012:role/notes-dev-ApiRole-1A2B3C4D5E6F",
            "the shape CloudFormation names a role"
        );
        assert_eq!(
            key(pass, "iam:PassedToService"),
            Some(vec!["lambda.amazonaws.com".into()])
        );
        assert_eq!(
            key(pass, "aws:RequestedRegion"),
            Some(vec!["eu-west-1".into()])
        );
        let create_role = only("iam:CreateRole");
        assert_eq!(
            key(create_role, "aws:RequestedRegion"),
            Some(vec!["us-east-1".into()]),
            "IAM is global: its calls go to us-east-1"
        );
        assert_eq!(key(create_role, "iam:PassedToService"), None);
        assert_eq!(
            only("dynamodb:CreateTable").resource,
            "arn:aws:dynamodb:eu-west-1:123456789012:table/notes-dev-NotesTable-1A2B3C4D5E6F"
        );
        assert_eq!(
            only("kms:CreateGrant").resource,
            "arn:aws:kms:eu-west-1:123456789012:key/k"
        );
        assert_eq!(
            only("logs:CreateLogGroup").resource,
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/notes-dev-api"
        );
        // deployer's own calls: no aws:CalledVia.
        let own = only("cloudformation:CreateChangeSet");
        assert_eq!(
            own.resource,
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/notes-dev/*"
        );
        assert_eq!(key(own, "aws:CalledVia"), None);
        assert_eq!(
            only("s3:ListBucket").resource,
            "arn:aws:s3:::deployer-artifacts-123456789012-eu-west-1"
        );
        let objects: Vec<&Probe> = probe_of("s3:PutObject");
        assert!(
            objects.iter().all(|p| p.resource
                == "arn:aws:s3:::deployer-artifacts-123456789012-eu-west-1/notes/artifact.zip"),
            "an artifact's key, under its app: {objects:?}"
        );
        // Load balancers are named by CloudFormation with a hash: asked about `*`.
        assert_eq!(
            only("elasticloadbalancing:CreateLoadBalancer").resource,
            "*"
        );
        // Every action is asked about exactly once per resource it has.
        let asked: usize = probes.iter().map(|p| p.actions.len()).sum();
        assert!(asked >= actions.len());
    }

    #[test]
    fn only_a_deny_for_the_real_resource_and_context_is_a_denial() {
        let e = |decision: Decision, missing: &[&str]| Evaluation {
            action: "a:B".into(),
            decision,
            missing_context: missing.iter().map(|m| m.to_string()).collect(),
        };
        let arn = "arn:aws:lambda:eu-west-1:1:function:f";
        for (resource, evaluation, want) in [
            (arn, e(Decision::Allowed, &[]), Verdict::Allowed),
            (arn, e(Decision::ImplicitDeny, &[]), Verdict::Denied),
            (arn, e(Decision::ExplicitDeny, &[]), Verdict::Denied),
            (
                arn,
                e(Decision::ImplicitDeny, &["aws:ResourceTag/app"]),
                Verdict::Unconfirmed,
            ),
            ("*", e(Decision::ImplicitDeny, &[]), Verdict::Unconfirmed),
            ("*", e(Decision::ExplicitDeny, &[]), Verdict::Denied),
            ("*", e(Decision::Allowed, &[]), Verdict::Allowed),
        ] {
            assert_eq!(
                verdict(resource, &evaluation),
                want,
                "{resource} {evaluation:?}"
            );
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
            "app: a\nnetwork: { dedicated: true }\nalb: { domain: api.example.com }\nalarms: { email: [a@b.co] }\nfunctions:\n  f:\n    path: x\n    routes: [{ path: /x }]\n    rollout: { strategy: canary }\n    tables: { t: read }\ntables:\n  t:\n    partition_key: { name: pk, type: S }\n",
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
}
