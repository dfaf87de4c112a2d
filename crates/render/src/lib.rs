//! Spec → CloudFormation. Pure and deterministic: the same spec, env and options always give the
//! same bytes, and logical ids come from spec names so an unchanged spec never replaces anything.
//!
//! Templates are built as JSON values in code, never by pasting user text into YAML.

#![warn(missing_docs)]

mod alb;
pub mod bootstrap;
mod emit;
mod function;
mod network;
pub mod rollout;
pub mod shared;
mod table;

use serde_json::{Map, Value, json};

use deployer_spec::{Diag, Pos, Spec, names};

pub use emit::to_yaml;
pub use table::TABLE_TAG;

/// Tag naming the app, on the stack and on each table (so that a table the stack retained can
/// be found again once the stack is gone).
pub const APP_TAG: &str = "deployer:app";
/// Tag naming the environment, likewise.
pub const ENV_TAG: &str = "deployer:env";
pub use function::PRIORITY_STEP;
pub use network::{SUBNETS_PARAMETER, VPC_PARAMETER, uses_shared_vpc};

/// How to render an app stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// An ephemeral environment: tables are deleted with the stack instead of retained.
    pub ephemeral: bool,
    /// Attached to the app's shared load balancer through this slot ([`shared`]), instead of
    /// having one of its own.
    pub shared_slot: Option<u32>,
}

/// A rendered CloudFormation template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pub Value);

/// Output formats of `deployer render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, the way people read templates.
    Yaml,
    /// JSON, the way CloudFormation stores them.
    Json,
}

impl Template {
    /// The template as text in `format`, ending with a newline.
    pub fn to_string(&self, format: Format) -> String {
        match format {
            Format::Yaml => to_yaml(&self.0),
            Format::Json => {
                let mut s =
                    serde_json::to_string_pretty(&self.0).expect("JSON values always serialize");
                s.push('\n');
                s
            }
        }
    }

    /// The template body sent to CloudFormation (compact JSON: the smallest, still deterministic).
    pub fn body(&self) -> String {
        serde_json::to_string(&self.0).expect("JSON values always serialize")
    }
}

/// The template parameters through which a function's code location is passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeParameters {
    /// The function's name in the spec.
    pub function: String,
    /// Parameter holding the artifact bucket, `<Fn>CodeBucket`.
    pub bucket: String,
    /// Parameter holding the artifact key, `<Fn>CodeKey`.
    pub key: String,
}

/// The logical id of the target group of function `name` (its ARN is the physical id).
pub fn target_group_id(name: &str) -> String {
    function::Ids::of(name).target_group
}

/// The logical id of function `name`'s Lambda function.
pub fn function_id(name: &str) -> String {
    function::Ids::of(name).function
}

/// The logical id of table `name`.
pub fn table_id(name: &str) -> String {
    table::id(name)
}

/// The code parameters of every function of the spec, in spec order.
pub fn code_parameters(spec: &Spec) -> Vec<CodeParameters> {
    spec.functions
        .keys()
        .map(|name| {
            let id = names::logical_id(name);
            CodeParameters {
                function: name.clone(),
                bucket: format!("{id}CodeBucket"),
                key: format!("{id}CodeKey"),
            }
        })
        .collect()
}

/// The template's `Metadata` key for what deployer notes about the stack.
pub const METADATA_KEY: &str = "Deployer";
/// Under [`METADATA_KEY`]: `[first, last]`, the rule priorities the stack's rules must stay in
/// (the band of a shared listener).
pub const RULE_PRIORITIES: &str = "RulePriorities";

/// The sections of a template under construction, in the order they are printed.
#[derive(Default)]
struct Doc {
    metadata: Option<Value>,
    parameters: Map<String, Value>,
    mappings: Map<String, Value>,
    conditions: Map<String, Value>,
    resources: Map<String, Value>,
    outputs: Map<String, Value>,
}

impl Doc {
    fn resource(
        &mut self,
        id: impl Into<String>,
        kind: &str,
        properties: Value,
    ) -> &mut Map<String, Value> {
        let id = id.into();
        self.resources.insert(
            id.clone(),
            json!({ "Type": kind, "Properties": properties }),
        );
        self.resources[&id]
            .as_object_mut()
            .expect("just inserted an object")
    }

    fn output(&mut self, id: impl Into<String>, description: &str, value: Value) {
        self.outputs.insert(
            id.into(),
            json!({ "Description": description, "Value": value }),
        );
    }

    fn finish(self, description: String) -> Template {
        let mut t = Map::new();
        t.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        t.insert("Description".into(), json!(description));
        if let Some(metadata) = self.metadata {
            t.insert("Metadata".into(), metadata);
        }
        for (name, section) in [
            ("Parameters", self.parameters),
            ("Mappings", self.mappings),
            ("Conditions", self.conditions),
            ("Resources", self.resources),
            ("Outputs", self.outputs),
        ] {
            if !section.is_empty() {
                t.insert(name.into(), Value::Object(section));
            }
        }
        Template(Value::Object(t))
    }
}

/// Renders the app stack `<app>-<env>` for `spec.env`.
///
/// Fails only when `extra` defines a logical id that deployer renders too.
pub fn app(spec: &Spec, options: Options) -> Result<Template, Vec<Diag>> {
    let spec = &*rolled_out_where_it_applies(spec, options);
    if let Some(slot) = options.shared_slot {
        let slots = shared::slots(spec);
        if slot >= slots {
            return Err(vec![Diag::new(
                Pos { line: 1, col: 1 },
                format!("slot {slot} is past the last of a shared load balancer's {slots} slots"),
            )]);
        }
        refuse_hosts_on_preview_domain(spec)?;
    }
    let mut doc = Doc::default();
    let listener = match (&spec.alb, options.shared_slot) {
        (None, _) => None,
        (Some(_), Some(slot)) => {
            let listener = shared::attach(spec, slot, &mut doc);
            // Where the rules' priorities may go: `up` keeps them in the band when it renumbers.
            let band = &listener.priorities.0;
            doc.metadata =
                Some(json!({ METADATA_KEY: { RULE_PRIORITIES: [band.start(), band.end()] } }));
            Some(listener)
        }
        (Some(alb), None) => {
            let placement = network::place(spec, &mut doc);
            Some(alb::render(spec, alb, &placement, &mut doc))
        }
    };
    // Where the template passes one of CloudFormation's count limits, to point the error there.
    let mut over_at: [Option<Pos>; 3] = [None; 3];
    let mut note = |doc: &Doc, pos: Pos| {
        for (at, limit) in over_at.iter_mut().zip(COUNT_LIMITS) {
            if (limit.count)(doc) > limit.max {
                at.get_or_insert(pos);
            }
        }
    };
    for (name, function) in &spec.functions {
        function::render(spec, name, function, listener.as_ref(), &mut doc);
        note(&doc, function.pos);
    }
    for (name, table) in &spec.tables {
        table::render(spec, name, table, options, &mut doc);
        note(&doc, table.pos);
    }
    alarm_topic(spec, &mut doc);
    merge_extra(spec, &mut doc)?;
    let counts: Vec<usize> = COUNT_LIMITS.iter().map(|l| (l.count)(&doc)).collect();
    let template = doc.finish(format!(
        "deployer stack {} (app {}, env {})",
        spec.stack_name(),
        spec.app,
        spec.env
    ));
    let mut diags = Vec::new();
    for ((limit, count), at) in COUNT_LIMITS.iter().zip(counts).zip(over_at) {
        if count > limit.max {
            let (what, max) = (limit.what, limit.max);
            diags.push(Diag::new(
                at.unwrap_or(Pos { line: 1, col: 1 }),
                format!("the stack would have {count} {what}, over CloudFormation's limit of {max} per stack (this function or table passes it): split the spec into two stacks"),
            ));
        }
    }
    let size = template.body().len();
    if size > MAX_TEMPLATE_BYTES {
        diags.push(Diag::new(
            Pos { line: 1, col: 1 },
            format!("the template would have {size} bytes, over CloudFormation's limit of {MAX_TEMPLATE_BYTES} (a template passed through S3): split the spec into two stacks"),
        ));
    }
    if diags.is_empty() {
        Ok(template)
    } else {
        Err(diags)
    }
}

/// The spec as rendered: an ephemeral env's traffic is its testers', so its new versions serve
/// all of it at once (no rollouts).
fn rolled_out_where_it_applies(spec: &Spec, options: Options) -> std::borrow::Cow<'_, Spec> {
    match options.ephemeral {
        true => {
            let mut plain = spec.clone();
            plain.functions.values_mut().for_each(|f| f.rollout = None);
            std::borrow::Cow::Owned(plain)
        }
        false => std::borrow::Cow::Borrowed(spec),
    }
}

/// On a shared preview domain every rule matches the env's host, and an ALB rule takes one
/// host condition: a route's own `host` cannot apply there.
fn refuse_hosts_on_preview_domain(spec: &Spec) -> Result<(), Vec<Diag>> {
    if shared::preview_host(spec).is_none() {
        return Ok(());
    }
    let diags: Vec<Diag> = spec
        .functions
        .iter()
        .flat_map(|(name, f)| f.routes.iter().filter(|r| r.host.is_some()).map(move |r| (name, r)))
        .map(|(name, route)| {
            Diag::new(
                route.pos,
                format!("a route of `{name}` matches `host`, but on the shared load balancer every rule of this env matches `<env>.<preview_domain>` (one host condition per rule): drop `host`, or set `alb.share: none`"),
            )
        })
        .collect();
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// Resources one CloudFormation stack may hold.
pub const MAX_RESOURCES: usize = 500;

/// One of CloudFormation's per-template count limits ("CloudFormation quotas").
struct CountLimit {
    what: &'static str,
    max: usize,
    count: fn(&Doc) -> usize,
}

/// Resources, parameters and outputs: each function adds to all three.
const COUNT_LIMITS: [CountLimit; 3] = [
    CountLimit {
        what: "resources",
        max: MAX_RESOURCES,
        count: |d| d.resources.len(),
    },
    CountLimit {
        what: "parameters",
        max: 200,
        count: |d| d.parameters.len(),
    },
    CountLimit {
        what: "outputs",
        max: 200,
        count: |d| d.outputs.len(),
    },
];
/// The largest template CloudFormation reads from S3 (`TemplateURL`), in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;

fn merge_extra(spec: &Spec, doc: &mut Doc) -> Result<(), Vec<Diag>> {
    let Some(extra) = &spec.extra else {
        return Ok(());
    };
    let mut clashes = Vec::new();
    for (section, id, pos) in &extra.positions {
        let target = match section.as_str() {
            "Resources" => &mut doc.resources,
            "Outputs" => &mut doc.outputs,
            "Conditions" => &mut doc.conditions,
            "Mappings" => &mut doc.mappings,
            _ => &mut doc.parameters,
        };
        if target.contains_key(id) {
            clashes.push(Diag::new(
                *pos,
                format!("`extra.{section}.{id}` clashes with a logical id deployer renders; pick another name"),
            ));
            continue;
        }
        if let Some(value) = extra.sections.get(section).and_then(|s| s.get(id)) {
            target.insert(id.clone(), value.clone());
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes)
    }
}

/// The logical id of the SNS topic the stack creates for `alarms.email`.
pub const ALARM_TOPIC: &str = "AlarmTopic";

/// Adds a CloudWatch alarm on `metric` (`Namespace`, `MetricName`, `Dimensions`): its 5-minute
/// sum at or above `threshold`, no data counting as fine; it notifies the spec's `alarms` targets.
fn alarm(
    spec: &Spec,
    doc: &mut Doc,
    id: String,
    description: String,
    metric: Value,
    threshold: u32,
) {
    let mut properties = json!({
        "AlarmDescription": description,
        "Namespace": metric["Namespace"],
        "MetricName": metric["MetricName"],
        "Dimensions": metric["Dimensions"],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    });
    let mut targets = Vec::new();
    if let Some(alarms) = &spec.alarms {
        if !alarms.email.is_empty() {
            targets.push(r#ref(ALARM_TOPIC));
        }
        targets.extend(alarms.sns_topic_arn.iter().map(|arn| json!(arn)));
    }
    if !targets.is_empty() {
        let props = properties
            .as_object_mut()
            .expect("alarm properties are an object");
        props.insert("AlarmActions".into(), json!(targets));
        props.insert("OKActions".into(), json!(targets));
    }
    doc.resource(id, "AWS::CloudWatch::Alarm", properties);
}

/// The stack's topic for alarm mail, when `alarms.email` names anyone.
fn alarm_topic(spec: &Spec, doc: &mut Doc) {
    let Some(alarms) = spec.alarms.as_ref().filter(|a| !a.email.is_empty()) else {
        return;
    };
    let subscriptions: Vec<Value> = alarms
        .email
        .iter()
        .map(|address| json!({ "Protocol": "email", "Endpoint": address }))
        .collect();
    doc.resource(
        ALARM_TOPIC,
        "AWS::SNS::Topic",
        json!({
            "DisplayName": format!("{} alarms", spec.stack_name()),
            "Subscription": subscriptions,
        }),
    );
}

/// `{"Ref": id}`.
fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

/// `{"Fn::GetAtt": [id, attribute]}`.
fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}
