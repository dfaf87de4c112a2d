//! A function: its role, log group, Lambda function, and when routed its target group, rules,
//! invoke permission and alarms.

use serde_json::{Map, Value, json};

use super::alb::Listener;
use super::{Doc, get_att, r#ref};
use deployer_spec::{Access, Function, Secret, SecretStore, Spec, names};

/// The logical ids derived from a function's spec name.
pub struct Ids {
    pub prefix: String,
    pub function: String,
    pub role: String,
    pub log_group: String,
    pub target_group: String,
    pub permission: String,
}

impl Ids {
    /// Ids for the function called `name` in the spec.
    pub fn of(name: &str) -> Ids {
        let prefix = names::logical_id(name);
        Ids {
            function: format!("{prefix}Function"),
            role: format!("{prefix}Role"),
            log_group: format!("{prefix}LogGroup"),
            target_group: format!("{prefix}TargetGroup"),
            permission: format!("{prefix}AlbPermission"),
            prefix,
        }
    }
}

/// DynamoDB actions per access level, sorted; nothing beyond what the level names.
fn dynamodb_actions(access: Access) -> &'static [&'static str] {
    match access {
        Access::Read => &[
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
        ],
        Access::Write => &[
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        Access::ReadWrite => &[
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
        ],
    }
}

/// Adds everything one function needs.
pub fn render(spec: &Spec, name: &str, f: &Function, listener: Option<&Listener>, doc: &mut Doc) {
    let ids = Ids::of(name);
    let physical_name = names::function_name(&spec.app, &spec.env, name);
    let code = super::code_parameters(spec)
        .into_iter()
        .find(|c| c.function == name)
        .expect("every function has code parameters");
    doc.parameters.insert(
        code.bucket.clone(),
        json!({ "Type": "String", "MinLength": 1, "Description": format!("S3 bucket of the `{name}` artifact") }),
    );
    doc.parameters.insert(
        code.key.clone(),
        json!({ "Type": "String", "MinLength": 1, "Description": format!("S3 key of the `{name}` artifact (its sha256)") }),
    );

    doc.resource(
        &ids.log_group,
        "AWS::Logs::LogGroup",
        json!({
            "LogGroupName": format!("/aws/lambda/{physical_name}"),
            "RetentionInDays": f.log_retention_days,
        }),
    );
    role(spec, name, f, &ids, doc);
    lambda_function(spec, name, f, &ids, &code, doc);
    let routed = f.default_route || !f.routes.is_empty();
    if let (Some(listener), true) = (listener, routed) {
        render_routing(spec, name, f, &ids, listener, doc);
        if f.rollout.is_some() {
            super::rollout::alarms(
                spec,
                name,
                &ids.function,
                &listener.load_balancer_full_name,
                doc,
            );
        }
    }
    if f.alarms {
        render_alarms(spec, name, &ids, listener.filter(|_| routed), doc);
    }
}

/// The function's role: writing its logs, and the actions its `tables` access allows on them
/// (and their indexes), nothing else.
fn role(spec: &Spec, name: &str, f: &Function, ids: &Ids, doc: &mut Doc) {
    let mut statements = vec![json!({
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": get_att(&ids.log_group, "Arn"),
    })];
    for (table, access) in &f.tables {
        let table_id = super::table::id(table);
        let mut resources = vec![get_att(&table_id, "Arn")];
        if spec
            .tables
            .get(table)
            .is_some_and(|t| !t.indexes.is_empty())
        {
            resources.push(json!({ "Fn::Sub": format!("${{{table_id}.Arn}}/index/*") }));
        }
        statements.push(json!({
            "Effect": "Allow",
            "Action": dynamodb_actions(*access),
            "Resource": resources,
        }));
    }
    statements.extend(secret_statements(spec, f));
    doc.resource(
        &ids.role,
        "AWS::IAM::Role",
        json!({
            "Description": format!("Runs the `{name}` function of {}", spec.stack_name()),
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Service": "lambda.amazonaws.com" },
                    "Action": "sts:AssumeRole",
                }],
            },
            "Policies": [{
                "PolicyName": "least-privilege",
                "PolicyDocument": { "Version": "2012-10-17", "Statement": statements },
            }],
        }),
    );
}

/// Reading exactly the function's secrets: `ssm:GetParameter(s)` on each parameter,
/// `secretsmanager:GetSecretValue` on each secret (its ARN ends in `-` and six random
/// characters), and `kms:Decrypt` on the customer keys `up` found, only through the service
/// that keeps the secret.
fn secret_statements(spec: &Spec, f: &Function) -> Vec<Value> {
    let arn = |service: &str, resource: String| json!({ "Fn::Sub": format!("arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}") });
    let mut statements = Vec::new();
    for store in [SecretStore::Ssm, SecretStore::SecretsManager] {
        let of_store: Vec<&Secret> = f.secrets.values().filter(|s| s.store == store).collect();
        if of_store.is_empty() {
            continue;
        }
        let names = of_store.iter().map(|s| s.full_name(&spec.app, &spec.env));
        let (service, actions, resources): (&str, &[&str], Vec<Value>) = match store {
            SecretStore::Ssm => (
                "ssm",
                &["ssm:GetParameter", "ssm:GetParameters"],
                names.map(|n| arn("ssm", format!("parameter{n}"))).collect(),
            ),
            SecretStore::SecretsManager => (
                "secretsmanager",
                &["secretsmanager:GetSecretValue"],
                names
                    .map(|n| arn("secretsmanager", format!("secret:{n}-??????")))
                    .collect(),
            ),
        };
        statements.push(json!({ "Effect": "Allow", "Action": actions, "Resource": resources }));
        let mut keys: Vec<&String> = of_store
            .iter()
            .filter_map(|s| s.kms_key_arn.as_ref())
            .collect();
        keys.sort();
        keys.dedup();
        if !keys.is_empty() {
            statements.push(json!({
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": keys,
                "Condition": { "StringEquals": {
                    "kms:ViaService": { "Fn::Sub": format!("{service}.${{AWS::Region}}.amazonaws.com") },
                } },
            }));
        }
    }
    statements
}

/// The Lambda function, on the code of its parameters, and its `FunctionArn` output.
fn lambda_function(
    spec: &Spec,
    name: &str,
    f: &Function,
    ids: &Ids,
    code: &super::CodeParameters,
    doc: &mut Doc,
) {
    let physical_name = names::function_name(&spec.app, &spec.env, name);
    let mut variables = Map::new();
    for (key, value) in &f.environment {
        variables.insert(key.clone(), json!(value));
    }
    for table in f.tables.keys() {
        variables.insert(names::table_env_var(table), r#ref(&super::table::id(table)));
    }
    // The secret's name, never its value: the function reads it at start-up.
    for (key, secret) in &f.secrets {
        let name = secret.full_name(&spec.app, &spec.env);
        variables.insert(secret.variable(key), json!(name));
    }
    let mut properties = json!({
        "FunctionName": physical_name,
        "Description": format!("`{name}` of {}", spec.stack_name()),
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Architectures": [f.architecture.as_str()],
        "MemorySize": f.memory,
        "Timeout": f.timeout,
        "Role": get_att(&ids.role, "Arn"),
        "Code": { "S3Bucket": r#ref(&code.bucket), "S3Key": r#ref(&code.key) },
        "LoggingConfig": { "LogGroup": r#ref(&ids.log_group), "LogFormat": "JSON" },
    });
    let props = properties.as_object_mut().expect("object literal");
    if !variables.is_empty() {
        props.insert("Environment".into(), json!({ "Variables": variables }));
    }
    if let Some(n) = f.reserved_concurrency {
        props.insert("ReservedConcurrentExecutions".into(), json!(n));
    }
    let configuration = f.rollout.as_ref().map(|_| properties.clone());
    doc.resource(&ids.function, "AWS::Lambda::Function", properties);
    if let Some(configuration) = configuration {
        super::rollout::versions(spec, name, &ids.function, &code.key, &configuration, doc);
    }
    doc.output(
        format!("{}FunctionArn", ids.prefix),
        &format!("ARN of the `{name}` function"),
        get_att(&ids.function, "Arn"),
    );
}

/// Priorities of a first deployment are spaced this far apart, leaving room to insert routes
/// without moving the others.
pub const PRIORITY_STEP: u32 = 100;

/// The target group's name: fixed (so the invoke permission can name it before it exists), unique
/// per account and region (a hash of stack and function), at most ELB's 32 characters.
pub fn target_group_name(stack: &str, function: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(format!("{stack}/{function}").as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    let readable: String = format!("{stack}-{function}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(23)
        .collect();
    format!("{}-{hex}", readable.trim_matches('-'))
}

fn render_routing(
    spec: &Spec,
    name: &str,
    f: &Function,
    ids: &Ids,
    listener: &Listener,
    doc: &mut Doc,
) {
    let stack = spec.stack_name();
    match f.rollout {
        None => target_group(
            f,
            &target_group_name(&stack, name),
            (&ids.target_group, &ids.permission),
            get_att(&ids.function, "Arn"),
            doc,
        ),
        Some(_) => {
            // One group per alias: `live` keeps the function's usual group (and its name).
            let r = super::rollout::RolloutIds::of(name);
            target_group(
                f,
                &target_group_name(&stack, name),
                (&ids.target_group, &ids.permission),
                r#ref(&r.live_alias),
                doc,
            );
            target_group(
                f,
                &target_group_name(&stack, &format!("{name}-{}", super::rollout::NEXT_ALIAS)),
                (&r.next_target_group, &r.next_permission),
                r#ref(&r.next_alias),
                doc,
            );
        }
    }
    listener_rules(spec, name, f, ids, listener, doc);
}

/// A target group named `group_name` with one Lambda target, `target` (a function or alias
/// ARN), and the permission that lets the load balancer invoke it: `(group id, permission id)`.
fn target_group(
    f: &Function,
    group_name: &str,
    (group_id, permission_id): (&str, &str),
    target: Value,
    doc: &mut Doc,
) {
    // The group must wait for this permission to exist, so SourceArn cannot reference it: the
    // group gets a fixed name instead, and the permission names that name.
    doc.resource(
        permission_id,
        "AWS::Lambda::Permission",
        json!({
            "FunctionName": target,
            "Action": "lambda:InvokeFunction",
            "Principal": "elasticloadbalancing.amazonaws.com",
            "SourceAccount": r#ref("AWS::AccountId"),
            "SourceArn": { "Fn::Sub": format!("arn:${{AWS::Partition}}:elasticloadbalancing:${{AWS::Region}}:${{AWS::AccountId}}:targetgroup/{group_name}/*") },
        }),
    );
    let mut group = json!({
        "Name": group_name,
        "TargetType": "lambda",
        "Targets": [{ "Id": target }],
        "TargetGroupAttributes": [{ "Key": "lambda.multi_value_headers.enabled", "Value": "true" }],
        "HealthCheckEnabled": f.health_check.is_some(),
    });
    if let Some(path) = &f.health_check {
        let group = group.as_object_mut().expect("object literal");
        group.insert("HealthCheckPath".into(), json!(path));
        group.insert("HealthCheckIntervalSeconds".into(), json!(60));
        group.insert("HealthCheckTimeoutSeconds".into(), json!(30));
    }
    doc.resource(group_id, "AWS::ElasticLoadBalancingV2::TargetGroup", group)
        .insert("DependsOn".into(), json!(permission_id));
}

/// One listener rule per route.
fn listener_rules(
    spec: &Spec,
    name: &str,
    f: &Function,
    ids: &Ids,
    listener: &Listener,
    doc: &mut Doc,
) {
    // Precedence follows the spec: functions top to bottom, each function's routes in order.
    // `up` renumbers these against the deployed stack (converge::transition) so that no rule
    // takes a priority another rule still holds.
    let first = spec
        .functions
        .iter()
        .take_while(|(n, _)| n.as_str() != name)
        .map(|(_, other)| other.routes.len() as u32)
        .sum::<u32>()
        + 1;
    let total = spec.functions.values().map(|f| f.routes.len() as u32).sum();
    let host = listener
        .host
        .as_ref()
        .map(|host| json!({ "Field": "host-header", "HostHeaderConfig": { "Values": [host] } }));
    for (i, route) in f.routes.iter().enumerate() {
        let mut conditions: Vec<Value> = host.iter().cloned().collect();
        if let Some(path) = &route.path {
            conditions.push(
                json!({ "Field": "path-pattern", "PathPatternConfig": { "Values": [path] } }),
            );
        }
        if let Some(host) = &route.host {
            conditions
                .push(json!({ "Field": "host-header", "HostHeaderConfig": { "Values": [host] } }));
        }
        if !route.methods.is_empty() {
            conditions.push(json!({
                "Field": "http-request-method",
                "HttpRequestMethodConfig": { "Values": route.methods },
            }));
        }
        let priority = listener.priorities.nth(first + i as u32, total);
        rule(
            doc,
            format!("{}Route{}", ids.prefix, i + 1),
            listener,
            priority,
            conditions,
            (name, f),
        );
    }
    // On a shared listener the env's default route is its host alone, after its other rules.
    if let (Some(host), true) = (host, f.default_route) {
        let last = *listener.priorities.0.end();
        rule(
            doc,
            format!("{}DefaultRoute", ids.prefix),
            listener,
            last,
            vec![host],
            (name, f),
        );
    }
}

/// A rule forwarding what matches `conditions` to function `name`'s target group (or groups).
fn rule(
    doc: &mut Doc,
    id: String,
    listener: &Listener,
    priority: u32,
    conditions: Vec<Value>,
    (name, f): (&str, &Function),
) {
    doc.resource(
        id,
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        json!({
            "ListenerArn": listener.arn,
            "Priority": priority,
            "Conditions": conditions,
            "Actions": [super::rollout::forward(name, f.rollout.is_some())],
        }),
    );
}

fn render_alarms(spec: &Spec, name: &str, ids: &Ids, listener: Option<&Listener>, doc: &mut Doc) {
    let stack = spec.stack_name();
    for metric in ["Errors", "Throttles"] {
        super::alarm(
            spec,
            doc,
            format!("{}{metric}Alarm", ids.prefix),
            format!("`{name}` of {stack}: {metric} in the last 5 minutes"),
            json!({
                "Namespace": "AWS/Lambda",
                "MetricName": metric,
                "Dimensions": [{ "Name": "FunctionName", "Value": r#ref(&ids.function) }],
            }),
            1,
        );
    }
    if let Some(listener) = listener {
        super::alarm(
            spec,
            doc,
            format!("{}Target5xxAlarm", ids.prefix),
            format!("`{name}` of {stack}: 5xx answers through the load balancer"),
            json!({
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [
                    { "Name": "LoadBalancer", "Value": listener.load_balancer_full_name },
                    { "Name": "TargetGroup", "Value": get_att(&ids.target_group, "TargetGroupFullName") },
                ],
            }),
            5,
        );
    }
}
