//! A function with a `rollout`: each change publishes a version, and the load balancer forwards
//! to two aliases, `live` (the version serving) and `next` (the newest), through a target group
//! each, weighted on every rule. The template keeps all weight on `live`; `up` moves it in
//! steps (converge::rollout), then points `live` at the new version through the
//! [`RolloutIds::live_version_parameter`].

use serde_json::{Value, json};

use super::function::Ids;
use super::{Doc, get_att, r#ref};
use deployer_spec::Spec;

/// The alias the load balancer's stable target group forwards to.
pub const LIVE_ALIAS: &str = "live";
/// The alias of the newest version, behind the second target group.
pub const NEXT_ALIAS: &str = "next";

/// The logical ids, parameter and outputs of a function's rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutIds {
    /// `AWS::Lambda::Version`, replaced (and a version published) whenever code or
    /// configuration change; the old one is retained, since `live` may still point at it.
    pub version: String,
    /// The `live` alias.
    pub live_alias: String,
    /// The `next` alias.
    pub next_alias: String,
    /// The target group of `live` (the function's usual target group id).
    pub live_target_group: String,
    /// The target group of `next`.
    pub next_target_group: String,
    /// The invoke permission of `next`'s target group.
    pub next_permission: String,
    /// The version `live` serves: `up` passes the deployed one; empty means the new one.
    pub live_version_parameter: String,
    /// Whether [`Self::live_version_parameter`] is set.
    pub has_live_version: String,
    /// Output: the version `live` serves.
    pub live_version_output: String,
    /// Output: the newest version (`next`).
    pub next_version_output: String,
    /// The alarm on the errors of `next` alone.
    pub next_errors_alarm: String,
    /// The alarm on 5xx answers of `next`'s target group.
    pub next_5xx_alarm: String,
}

impl RolloutIds {
    /// The ids of function `name`'s rollout.
    pub fn of(name: &str) -> RolloutIds {
        let ids = Ids::of(name);
        let p = &ids.prefix;
        RolloutIds {
            version: format!("{p}Version"),
            live_alias: format!("{p}LiveAlias"),
            next_alias: format!("{p}NextAlias"),
            live_target_group: ids.target_group.clone(),
            next_target_group: format!("{p}NextTargetGroup"),
            next_permission: format!("{p}NextAlbPermission"),
            live_version_parameter: format!("{p}LiveVersion"),
            has_live_version: format!("{p}HasLiveVersion"),
            live_version_output: format!("{p}LiveVersion"),
            next_version_output: format!("{p}NextVersion"),
            next_errors_alarm: format!("{p}NextErrorsAlarm"),
            next_5xx_alarm: format!("{p}Next5xxAlarm"),
        }
    }
}

/// The forward action of function `name`'s routes: to its target group, or with a rollout
/// weighted between `live` (all of it) and `next` (none), which `up` shifts.
pub(crate) fn forward(name: &str, rolls_out: bool) -> Value {
    let ids = Ids::of(name);
    if !rolls_out {
        return json!({ "Type": "forward", "TargetGroupArn": r#ref(&ids.target_group) });
    }
    let r = RolloutIds::of(name);
    json!({
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                { "TargetGroupArn": r#ref(&r.live_target_group), "Weight": 100 },
                { "TargetGroupArn": r#ref(&r.next_target_group), "Weight": 0 },
            ],
        },
    })
}

/// The version `live` serves: the parameter when set, else the one this template publishes.
fn live_version(r: &RolloutIds) -> Value {
    json!({ "Fn::If": [r.has_live_version, r#ref(&r.live_version_parameter), get_att(&r.version, "Version")] })
}

/// The version, the two aliases, and the parameter, condition and outputs that tie them to
/// `up`. `configuration` is the function's rendered properties: a change to them (or to the
/// code key) changes the version's description, which publishes a new version.
pub(crate) fn versions(
    spec: &Spec,
    name: &str,
    function_id: &str,
    code_key: &str,
    configuration: &Value,
    doc: &mut Doc,
) {
    let r = RolloutIds::of(name);
    let description = version_description(spec, name, code_key, configuration);
    doc.parameters.insert(
        r.live_version_parameter.clone(),
        json!({
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^[0-9]*$",
            "Description": format!("The version of `{name}` its `live` alias serves (up passes the deployed one; empty: the new one)"),
        }),
    );
    doc.conditions.insert(
        r.has_live_version.clone(),
        json!({ "Fn::Not": [{ "Fn::Equals": [r#ref(&r.live_version_parameter), ""] }] }),
    );
    let version = doc.resource(
        &r.version,
        "AWS::Lambda::Version",
        json!({
            "FunctionName": r#ref(function_id),
            "Description": { "Fn::Sub": description },
        }),
    );
    // `live` may still serve the version this one replaces, and a rollback needs it.
    version.insert("DeletionPolicy".into(), json!("Retain"));
    version.insert("UpdateReplacePolicy".into(), json!("Retain"));
    for (id, alias, target) in [
        (&r.live_alias, LIVE_ALIAS, live_version(&r)),
        (&r.next_alias, NEXT_ALIAS, get_att(&r.version, "Version")),
    ] {
        doc.resource(
            id,
            "AWS::Lambda::Alias",
            json!({ "FunctionName": r#ref(function_id), "Name": alias, "FunctionVersion": target }),
        );
    }
    doc.output(
        &r.live_version_output,
        &format!("The version of `{name}` that serves (its `live` alias)"),
        live_version(&r),
    );
    doc.output(
        &r.next_version_output,
        &format!("The newest version of `{name}` (its `next` alias)"),
        get_att(&r.version, "Version"),
    );
}

/// A version's description: what makes `$LATEST` differ from the last version, so that any
/// change of it replaces the version (a new one is published). The code key and the rendered
/// configuration, and the names of the tables the function's variables carry, which change
/// without the configuration's text when a table is replaced. Those go in while the
/// description fits Lambda's 256 characters; one that does not reaches `next` with the next
/// code or configuration change.
fn version_description(spec: &Spec, name: &str, code_key: &str, configuration: &Value) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(configuration.to_string().as_bytes());
    let hash: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut text = format!("code ${{{code_key}}}, configuration {hash}");
    // The code key resolves to `<app>/<function>/<sha256>.zip`.
    let mut resolved = text.len() - code_key.len() - 3 + spec.app.len() + name.len() + 70;
    for table in spec.functions[name].tables.keys() {
        let id = super::table::id(table);
        let more =
            2 + table.len() + 1 + deployer_spec::names::generated_table_name_len(spec, table);
        if resolved + more > 256 {
            break;
        }
        text.push_str(&format!(", {table} ${{{id}}}"));
        resolved += more;
    }
    text
}

/// The alarms that stop a shift: errors of `next` alone (Lambda's per-alias `Resource`
/// dimension), and 5xx answers of its target group. One-minute periods, so that a step of a few
/// minutes sees them.
pub(crate) fn alarms(
    spec: &Spec,
    name: &str,
    function_id: &str,
    load_balancer: &Value,
    doc: &mut Doc,
) {
    let r = RolloutIds::of(name);
    let stack = spec.stack_name();
    super::alarm(
        spec,
        doc,
        r.next_errors_alarm.clone(),
        format!("`{name}` of {stack}: errors of the version being rolled out"),
        json!({
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [
                { "Name": "FunctionName", "Value": r#ref(function_id) },
                { "Name": "Resource", "Value": { "Fn::Sub": format!("${{{function_id}}}:{NEXT_ALIAS}") } },
            ],
        }),
        1,
    );
    super::alarm(
        spec,
        doc,
        r.next_5xx_alarm.clone(),
        format!("`{name}` of {stack}: 5xx answers of the version being rolled out"),
        json!({
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [
                { "Name": "LoadBalancer", "Value": load_balancer },
                { "Name": "TargetGroup", "Value": get_att(&r.next_target_group, "TargetGroupFullName") },
            ],
        }),
        1,
    );
    for id in [&r.next_errors_alarm, &r.next_5xx_alarm] {
        doc.resources[id]["Properties"]["Period"] = json!(60);
    }
}
