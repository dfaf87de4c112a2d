//! Whether an update is safe on AWS, and how to make it so. Pure: from the deployed template and
//! the wanted one to the templates to submit, one change set each, or a refusal.
//!
//! moto accepts updates that CloudFormation rejects; these are the rules it does not enforce:
//! - Listener rules: CloudFormation adds and modifies rules in parallel and deletes old ones last,
//!   so no rule may take a priority that another rule holds in the deployed stack.
//! - Global secondary indexes: one created or deleted per table per update, none edited in place.
//! - Time to live: disabling takes the attribute name; DynamoDB allows one TTL change at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use serde_json::{Value, json};

const LISTENER_RULE: &str = "AWS::ElasticLoadBalancingV2::ListenerRule";
const TABLE: &str = "AWS::DynamoDB::Table";
/// The priorities an ALB listener rule may have.
const PRIORITIES: RangeInclusive<u32> = 1..=50_000;

/// The templates to submit in order (the last is the wanted one, renumbered and amended), with
/// what each intermediate step does.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Templates, one update each.
    pub steps: Vec<Value>,
    /// Per step, what it changes that needs a step of its own (empty for a single step).
    pub notes: Vec<Vec<String>>,
    /// The tables (logical ids) whose indexes the transition creates or deletes: before each
    /// step, each must be ACTIVE with every index ACTIVE (CloudFormation does not wait for an
    /// index to backfill, and DynamoDB refuses to update the table until it has).
    pub index_tables: Vec<String>,
}

/// The templates that take the stack from `deployed` (none: a create) to `wanted`, or why AWS
/// would refuse the update: each line names the table or index and what to do instead.
///
/// An update that creates or deletes an index changes nothing else: the other changes go first,
/// in an update of their own (`parameters_change`: the stack's parameters change too, such as a
/// function's code, which the template comparison cannot see).
pub fn plan(
    deployed: Option<&Value>,
    wanted: &Value,
    parameters_change: bool,
) -> Result<Transition, Vec<String>> {
    let mut wanted = wanted.clone();
    let Some(deployed) = deployed else {
        return Ok(Transition {
            steps: vec![wanted],
            notes: vec![Vec::new()],
            index_tables: Vec::new(),
        });
    };
    renumber_rules(deployed, &mut wanted);
    let staged = table_updates(deployed, &mut wanted)?;
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if !staged.is_empty() {
        // Everything but the index changes: the deployed indexes on the wanted tables.
        let mut others = wanted.clone();
        for id in staged.keys() {
            stage_indexes(
                &deployed["Resources"][id],
                &mut others["Resources"][id],
                &[],
            );
        }
        if others != *deployed || parameters_change {
            steps.push(others);
            notes.push(vec!["everything but the index changes".to_string()]);
        }
    }
    let count = staged.values().map(Vec::len).max().unwrap_or(0);
    for k in 1..=count {
        let mut step = wanted.clone();
        let mut said = Vec::new();
        for (id, table_steps) in &staged {
            let done = k.min(table_steps.len());
            if k <= table_steps.len() {
                said.push(format!("{id}: {}", table_steps[k - 1].describe()));
            }
            if k < count {
                let old = &deployed["Resources"][id];
                stage_indexes(old, &mut step["Resources"][id], &table_steps[..done]);
            }
        }
        steps.push(step);
        notes.push(said);
    }
    if steps.is_empty() {
        steps.push(wanted);
        notes.push(Vec::new());
    }
    if steps.len() == 1 {
        notes = vec![Vec::new()];
    }
    Ok(Transition {
        steps,
        notes,
        index_tables: staged.into_keys().collect(),
    })
}

/// Each table's update checked against DynamoDB's rules (every refusal, or none), and its index
/// changes as the steps they need, by logical id; `wanted`'s TTL staged where it must be.
fn table_updates(
    deployed: &Value,
    wanted: &mut Value,
) -> Result<BTreeMap<String, Vec<IndexStep>>, Vec<String>> {
    let mut refusals = Vec::new();
    let mut staged: BTreeMap<String, Vec<IndexStep>> = BTreeMap::new();
    for (id, new) in resources_of(wanted, TABLE) {
        let Some(old) = resources_of(deployed, TABLE).remove(&id) else {
            continue;
        };
        if let Err(why) = time_to_live(&id, &old, &mut wanted["Resources"][&id]) {
            refusals.push(why);
        }
        refusals.extend(stream_view(&id, &old, &new));
        refusals.extend(index_key_types(&id, &old, &new));
        match index_steps(&id, &old, &new) {
            Ok(steps) if !steps.is_empty() => {
                staged.insert(id, steps);
            }
            Ok(_) => {}
            Err(mut why) => refusals.append(&mut why),
        }
    }
    match refusals.is_empty() {
        true => Ok(staged),
        false => Err(refusals),
    }
}

/// The resources of one type, by logical id.
fn resources_of(template: &Value, kind: &str) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| v["Type"] == kind)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A literal rule priority (JSON number, or a string in a hand-written YAML template).
fn priority_of(rule: &Value) -> Option<u32> {
    let p = &rule["Properties"]["Priority"];
    p.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
}

/// Gives the wanted rules priorities in the order the wanted template ranks them, none of them
/// held by another rule in the deployed stack, keeping as many deployed priorities as it can.
fn renumber_rules(deployed: &Value, wanted: &mut Value) {
    let held: BTreeMap<String, u32> = resources_of(deployed, LISTENER_RULE)
        .iter()
        .filter_map(|(id, r)| Some((id.clone(), priority_of(r)?)))
        .collect();
    let range = rule_priorities(wanted);
    let mut order: Vec<(u32, String)> = resources_of(wanted, LISTENER_RULE)
        .iter()
        .filter_map(|(id, r)| Some((priority_of(r)?, id.clone())))
        .collect();
    order.sort();
    let order: Vec<String> = order.into_iter().map(|(_, id)| id).collect();
    for (id, priority) in assign_priorities(&order, &held, range) {
        wanted["Resources"][&id]["Properties"]["Priority"] = json!(priority);
    }
}

/// The priorities the template's rules must stay in: the band its metadata names (an env on a
/// shared listener, see `render::shared`), else every priority.
fn rule_priorities(template: &Value) -> RangeInclusive<u32> {
    let band = &template["Metadata"][crate::render::METADATA_KEY][crate::render::RULE_PRIORITIES];
    match (band[0].as_u64(), band[1].as_u64()) {
        (Some(first), Some(last)) if first >= 1 && first <= last && last <= 50_000 => {
            first as u32..=last as u32
        }
        _ => PRIORITIES,
    }
}

/// Priorities for `order` (highest precedence first) within `range`: strictly increasing; a
/// rule keeps its deployed priority where the order and the range allow (the longest run of
/// deployed priorities already in order); every other rule gets a priority that no deployed
/// rule holds, spread over the gap.
pub fn assign_priorities(
    order: &[String],
    held: &BTreeMap<String, u32>,
    range: RangeInclusive<u32>,
) -> BTreeMap<String, u32> {
    let taken: BTreeSet<u32> = held.values().copied().collect();
    let inside: BTreeMap<String, u32> = held
        .iter()
        .filter(|(_, p)| range.contains(p))
        .map(|(id, p)| (id.clone(), *p))
        .collect();
    let kept = longest_increasing(order, &inside);
    fill(order, &kept, &taken, &range).unwrap_or_else(|| {
        // No room between the kept ones: move every rule to free priorities. Still safe, since
        // no rule takes a priority held by another. A band of 1,000 holds 100 rules twice.
        fill(order, &BTreeMap::new(), &taken, &range).expect("a band holds its rules twice")
    })
}

/// The rules that keep their deployed priority: the longest subsequence of `order` whose
/// deployed priorities increase.
fn longest_increasing(order: &[String], held: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let items: Vec<(usize, u32)> = order
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some((i, *held.get(id)?)))
        .collect();
    // O(n²) is plenty for at most 100 rules per listener.
    let mut best: Vec<(usize, Option<usize>)> = Vec::with_capacity(items.len());
    for j in 0..items.len() {
        let mut entry = (1, None);
        for i in 0..j {
            if items[i].1 < items[j].1 && best[i].0 + 1 > entry.0 {
                entry = (best[i].0 + 1, Some(i));
            }
        }
        best.push(entry);
    }
    let mut kept = BTreeMap::new();
    let mut at = (0..items.len()).max_by_key(|&j| (best[j].0, std::cmp::Reverse(j)));
    while let Some(j) = at {
        kept.insert(order[items[j].0].clone(), items[j].1);
        at = best[j].1;
    }
    kept
}

/// Fills the gaps around the `kept` priorities with free ones; `None` when a gap is too small.
fn fill(
    order: &[String],
    kept: &BTreeMap<String, u32>,
    taken: &BTreeSet<u32>,
    range: &RangeInclusive<u32>,
) -> Option<BTreeMap<String, u32>> {
    let step = crate::render::PRIORITY_STEP;
    let mut out = BTreeMap::new();
    let mut pending: Vec<&String> = Vec::new();
    let mut low = range.start() - 1;
    for id in order.iter().map(Some).chain([None]) {
        let anchor = id.and_then(|id| kept.get(id).map(|p| (id, *p)));
        if let (Some(id), None) = (id, anchor) {
            pending.push(id);
            continue;
        }
        let high = anchor.map_or(range.end() + 1, |(_, p)| p);
        let free: Vec<u32> = (low + 1..high).filter(|p| !taken.contains(p)).collect();
        if free.len() < pending.len() {
            return None;
        }
        let n = pending.len();
        for (k, id) in pending.drain(..).enumerate() {
            // After the last kept rule, continue the spaced numbering; between two, spread out.
            let index = if anchor.is_none() {
                ((k + 1) * step as usize - 1).min(free.len() - (n - k))
            } else {
                (k + 1) * free.len() / (n + 1)
            };
            let index = index.max(k);
            out.insert(id.clone(), free[index]);
        }
        // Spread choices can collide with a later one only if not increasing: keep them strict.
        if let Some((id, p)) = anchor {
            out.insert(id.clone(), p);
            low = p;
        }
    }
    let mut last = 0;
    for id in order {
        let p = out[id];
        if p <= last {
            return None;
        }
        last = p;
    }
    Some(out)
}

/// One index creation or deletion.
#[derive(Debug, Clone, PartialEq)]
enum IndexStep {
    Delete(String),
    Create(Value),
}

impl IndexStep {
    fn describe(&self) -> String {
        match self {
            IndexStep::Delete(name) => format!("delete index {name}"),
            IndexStep::Create(index) => format!(
                "create index {}",
                index["IndexName"].as_str().unwrap_or("?")
            ),
        }
    }
}

fn indexes(table: &Value) -> Vec<Value> {
    table["Properties"]["GlobalSecondaryIndexes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What an index is, apart from its capacity (which changes in place).
fn shape(index: &Value) -> Value {
    let mut projection = index["Projection"].clone();
    if let Some(attrs) = projection["NonKeyAttributes"].as_array_mut() {
        attrs.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    if projection["ProjectionType"].is_null() {
        projection["ProjectionType"] = json!("ALL");
    }
    json!({ "KeySchema": index["KeySchema"], "Projection": projection })
}

/// The index creations and deletions from `old` to `new`: deletions first (they free capacity
/// and names), then creations, in the wanted order. An index edited in place is refused.
fn index_steps(id: &str, old: &Value, new: &Value) -> Result<Vec<IndexStep>, Vec<String>> {
    let (before, after) = (indexes(old), indexes(new));
    let name = |i: &Value| i["IndexName"].as_str().unwrap_or_default().to_string();
    let mut steps = Vec::new();
    let mut refusals = Vec::new();
    for b in &before {
        match after.iter().find(|a| name(a) == name(b)) {
            None => steps.push(IndexStep::Delete(name(b))),
            Some(a) if shape(a) != shape(b) => refusals.push(format!(
                "table {id}: index `{}` changes its keys or projection, which DynamoDB cannot do in place; give the new definition a new name (the old index is deleted and the new one built in two updates)",
                name(b)
            )),
            Some(_) => {}
        }
    }
    for a in &after {
        if !before.iter().any(|b| name(b) == name(a)) {
            steps.push(IndexStep::Create(a.clone()));
        }
    }
    if refusals.is_empty() {
        Ok(steps)
    } else {
        Err(refusals)
    }
}

/// Rewrites the wanted table `new` to hold the deployed indexes with `done` applied; its
/// attribute definitions follow (DynamoDB rejects definitions no key uses).
fn stage_indexes(old: &Value, new: &mut Value, done: &[IndexStep]) {
    let wanted = indexes(new);
    let mut current = indexes(old);
    for step in done {
        match step {
            IndexStep::Delete(name) => current.retain(|i| i["IndexName"] != name.as_str()),
            IndexStep::Create(index) => current.push(index.clone()),
        }
    }
    let on_demand = new["Properties"]["BillingMode"] == "PAY_PER_REQUEST";
    for index in &mut current {
        if let Some(w) = wanted.iter().find(|w| w["IndexName"] == index["IndexName"]) {
            *index = w.clone();
        }
        let fields = index.as_object_mut().expect("an index is an object");
        if on_demand {
            fields.remove("ProvisionedThroughput");
        } else if !fields.contains_key("ProvisionedThroughput") {
            fields.insert(
                "ProvisionedThroughput".into(),
                new["Properties"]["ProvisionedThroughput"].clone(),
            );
        }
    }
    // An attribute keeps its deployed type while a deployed index still uses it (a renamed index
    // of another key type is built only after the old one is gone), else takes the wanted one.
    let (old_types, new_types) = (attribute_types(old), attribute_types(new));
    let deployed_names: Vec<Value> = indexes(old)
        .iter()
        .map(|i| i["IndexName"].clone())
        .collect();
    let key_names = |i: &Value| -> Vec<String> {
        i["KeySchema"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["AttributeName"].as_str().map(str::to_string))
            .collect()
    };
    let held_by_deployed: BTreeSet<String> = current
        .iter()
        .filter(|i| deployed_names.contains(&i["IndexName"]))
        .flat_map(key_names)
        .collect();
    let type_of = |n: &str| -> String {
        let (first, second) = if held_by_deployed.contains(n) {
            (&old_types, &new_types)
        } else {
            (&new_types, &old_types)
        };
        first
            .get(n)
            .or_else(|| second.get(n))
            .cloned()
            .unwrap_or_else(|| "S".to_string())
    };
    let mut used: Vec<String> = Vec::new();
    let keys = key_names(&new["Properties"])
        .into_iter()
        .chain(current.iter().flat_map(key_names));
    for name in keys {
        if !used.contains(&name) {
            used.push(name);
        }
    }
    let definitions: Vec<Value> = used
        .iter()
        .map(|n| json!({ "AttributeName": n, "AttributeType": type_of(n) }))
        .collect();
    let props = new["Properties"]
        .as_object_mut()
        .expect("a table has properties");
    props.insert("AttributeDefinitions".into(), json!(definitions));
    if current.is_empty() {
        props.remove("GlobalSecondaryIndexes");
    } else {
        props.insert("GlobalSecondaryIndexes".into(), json!(current));
    }
}

/// A stream's view type cannot change while the stream is enabled: UpdateTable refuses to enable
/// a stream on a table that has one, so the stream must be disabled in a deploy of its own first.
fn stream_view(id: &str, old: &Value, new: &Value) -> Option<String> {
    let view = |t: &Value| {
        let s = &t["Properties"]["StreamSpecification"];
        s["StreamViewType"].as_str().map(str::to_string)
    };
    match (view(old), view(new)) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "table {id}: the stream's view type changes from {a} to {b}, but DynamoDB cannot change it while the stream is enabled: remove `stream`, run `deployer up`, then set the new type in a later deploy (the stream gets a new ARN; its consumers must follow)"
        )),
        _ => None,
    }
}

/// The attribute type of each name in a table's `AttributeDefinitions`.
pub(super) fn attribute_types(table: &Value) -> BTreeMap<String, String> {
    table["Properties"]["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d["AttributeName"].as_str()?.to_string(),
                d["AttributeType"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// An index kept under its name keeps its key attributes' types: DynamoDB cannot change them in
/// place, and CloudFormation would try to.
fn index_key_types(id: &str, old: &Value, new: &Value) -> Vec<String> {
    let (before, after) = (attribute_types(old), attribute_types(new));
    let mut refusals = Vec::new();
    for index in indexes(new) {
        let name = index["IndexName"].as_str().unwrap_or_default();
        if !indexes(old).iter().any(|i| i["IndexName"] == name) {
            continue;
        }
        for key in index["KeySchema"].as_array().into_iter().flatten() {
            let Some(attr) = key["AttributeName"].as_str() else {
                continue;
            };
            if let (Some(a), Some(b)) = (before.get(attr), after.get(attr))
                && a != b
            {
                refusals.push(format!(
                    "table {id}: index `{name}` keeps its name but its key `{attr}` changes type from {a} to {b}, which DynamoDB cannot do in place; give the index a new name (the old one is deleted and the new one built in two updates)"
                ));
            }
        }
    }
    refusals
}

/// The deployed tables (logical ids) whose TTL the update enables where the deployed template
/// has it off: DynamoDB refuses that while an earlier disable is still under way.
pub fn ttl_enabling(deployed: &Value, wanted: &Value) -> Vec<String> {
    let enabled = |t: &Value| {
        let e = &t["Properties"]["TimeToLiveSpecification"]["Enabled"];
        *e == true || *e == "true"
    };
    let before = resources_of(deployed, TABLE);
    resources_of(wanted, TABLE)
        .into_iter()
        .filter(|(id, new)| enabled(new) && before.get(id).is_some_and(|old| !enabled(old)))
        .map(|(id, _)| id)
        .collect()
}

/// Time to live: a removed attribute is disabled by name (a template without the property leaves
/// TTL on); a new name while another is enabled is refused.
fn time_to_live(id: &str, old: &Value, new: &mut Value) -> Result<(), String> {
    let before = &old["Properties"]["TimeToLiveSpecification"];
    let after = &new["Properties"]["TimeToLiveSpecification"];
    let enabled = |s: &Value| s["Enabled"] == true || s["Enabled"] == "true";
    match (
        before["AttributeName"].as_str(),
        after["AttributeName"].as_str(),
    ) {
        (Some(name), None) => {
            new["Properties"]["TimeToLiveSpecification"] =
                json!({ "AttributeName": name, "Enabled": false });
            Ok(())
        }
        (Some(a), Some(b)) if a != b && enabled(before) && enabled(after) => Err(format!(
            "table {id}: the TTL attribute changes from `{a}` to `{b}`, but DynamoDB makes one TTL change at a time and a disabled TTL can be enabled again only after about an hour: remove `ttl_attribute`, run `deployer up`, and set `{b}` in a later deploy"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn held(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// The property every assignment must have, whatever the case.
    fn check(order: &[String], deployed: &BTreeMap<String, u32>, got: &BTreeMap<String, u32>) {
        let mut last = 0;
        for id in order {
            let p = got[id];
            assert!(
                p > last && PRIORITIES.contains(&p),
                "order broken at {id}: {got:?}"
            );
            last = p;
            for (other, q) in deployed {
                assert!(
                    other == id || *q != p,
                    "{id} takes {p}, held by {other}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn priorities_stay_safe_and_ordered_for_every_edit() {
        let deployed = held(&[
            ("ARoute1", 100),
            ("ARoute2", 200),
            ("BRoute1", 300),
            ("CRoute1", 400),
        ]);
        type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, u32)]);
        let cases: &[Case] = &[
            (
                "unchanged",
                &["ARoute1", "ARoute2", "BRoute1", "CRoute1"],
                &[("ARoute1", 100), ("BRoute1", 300)],
            ),
            // Render numbers a new route into A: the ids after it shift, ARoute3 is new.
            (
                "a route added to the first function",
                &["ARoute1", "ARoute2", "ARoute3", "BRoute1", "CRoute1"],
                &[("BRoute1", 300), ("CRoute1", 400)],
            ),
            (
                "a function removed",
                &["ARoute1", "ARoute2", "CRoute1"],
                &[("CRoute1", 400)],
            ),
            (
                "functions reordered",
                &["CRoute1", "BRoute1", "ARoute1", "ARoute2"],
                &[],
            ),
            ("all new", &["XRoute1", "XRoute2"], &[]),
        ];
        for (what, order, kept) in cases {
            let order = ids(order);
            let got = assign_priorities(&order, &deployed, PRIORITIES);
            check(&order, &deployed, &got);
            for (id, p) in *kept {
                assert_eq!(got[*id], *p, "{what}: {id} keeps its priority: {got:?}");
            }
        }
    }

    #[test]
    fn a_crowded_gap_moves_everything_to_free_priorities() {
        let deployed = held(&[("A", 1), ("B", 2)]);
        let order = ids(&["A", "New", "B"]);
        let got = assign_priorities(&order, &deployed, PRIORITIES);
        check(&order, &deployed, &got);
    }

    #[test]
    fn rules_on_a_shared_listener_stay_in_their_band() {
        let band = 3001..=4000;
        // (deployed, wanted order): an insert, a swap, a crowded band edge, a move from
        // another band (the env got a new slot), a first deploy.
        type Case<'a> = (&'a [(&'a str, u32)], &'a [&'a str]);
        let cases: [Case; 5] = [
            (&[("A", 3100), ("B", 3200)], &["A", "New", "B"]),
            (&[("A", 3100), ("B", 3200)], &["B", "A"]),
            (&[("A", 3999), ("B", 4000)], &["A", "B", "New"]),
            (&[("A", 100), ("B", 200)], &["A", "B"]),
            (&[], &["A", "B", "C"]),
        ];
        for (deployed, order) in cases {
            let deployed = held(deployed);
            let order = ids(order);
            let got = assign_priorities(&order, &deployed, band.clone());
            check(&order, &deployed, &got);
            assert!(got.values().all(|p| band.contains(p)), "{got:?}");
        }
        let template = |band: serde_json::Value| json!({ "Metadata": { "Deployer": { "RulePriorities": band } } });
        assert_eq!(rule_priorities(&template(json!([3001, 4000]))), 3001..=4000);
        assert_eq!(rule_priorities(&json!({})), PRIORITIES);
        assert_eq!(rule_priorities(&template(json!([0, 10]))), PRIORITIES);
    }

    #[test]
    fn a_swap_of_two_rules_never_reuses_the_others_priority() {
        let deployed = held(&[("A", 100), ("B", 200)]);
        let order = ids(&["B", "A"]);
        let got = assign_priorities(&order, &deployed, PRIORITIES);
        check(&order, &deployed, &got);
        assert_eq!(
            got.values().filter(|p| [100, 200].contains(p)).count(),
            1,
            "one keeps its own: {got:?}"
        );
    }

    /// [`plan`] of a template change alone (no parameter changes).
    fn plan_of(deployed: Option<&Value>, wanted: &Value) -> Result<Transition, Vec<String>> {
        plan(deployed, wanted, false)
    }

    fn table(indexes: &[(&str, &str)], ttl: Option<&str>) -> Value {
        let gsis: Vec<Value> = indexes
            .iter()
            .map(|(name, key)| json!({ "IndexName": name, "KeySchema": [{ "AttributeName": key, "KeyType": "HASH" }], "Projection": { "ProjectionType": "ALL" } }))
            .collect();
        let mut props = json!({
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }],
            "AttributeDefinitions": std::iter::once("pk").chain(indexes.iter().map(|(_, k)| *k)).map(|k| json!({ "AttributeName": k, "AttributeType": "S" })).collect::<Vec<_>>(),
        });
        if !gsis.is_empty() {
            props["GlobalSecondaryIndexes"] = json!(gsis);
        }
        if let Some(name) = ttl {
            props["TimeToLiveSpecification"] = json!({ "AttributeName": name, "Enabled": true });
        }
        json!({ "Resources": { "T": { "Type": TABLE, "Properties": props } } })
    }

    fn names_in(step: &Value) -> Vec<String> {
        indexes(&step["Resources"]["T"])
            .iter()
            .map(|i| i["IndexName"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn index_changes_are_split_into_one_per_update() {
        type Indexes<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Indexes, Indexes, &[&[&str]])] = &[
            (&[], &[("a", "x")], &[&["a"]]),
            (&[], &[("a", "x"), ("b", "y")], &[&["a"], &["a", "b"]]),
            (&[("a", "x"), ("b", "y")], &[], &[&["b"], &[]]),
            (
                &[("a", "x")],
                &[("b", "y"), ("c", "z")],
                &[&[], &["b"], &["b", "c"]],
            ),
        ];
        for (before, after, want) in cases {
            let t = plan_of(Some(&table(before, None)), &table(after, None)).unwrap();
            let got: Vec<Vec<String>> = t.steps.iter().map(names_in).collect();
            let want: Vec<Vec<String>> = want.iter().map(|s| ids(s)).collect();
            assert_eq!(got, want, "{before:?} -> {after:?}");
            for step in &t.steps {
                let defined: Vec<&str> =
                    step["Resources"]["T"]["Properties"]["AttributeDefinitions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["AttributeName"].as_str().unwrap())
                        .collect();
                let mut keys = vec!["pk".to_string()];
                for i in indexes(&step["Resources"]["T"]) {
                    keys.push(i["KeySchema"][0]["AttributeName"].as_str().unwrap().into());
                }
                assert_eq!(defined, keys, "attribute definitions match the keys in use");
            }
            assert_eq!(
                t.steps.last().unwrap(),
                &table(after, None),
                "the last step is the wanted template"
            );
        }
    }

    #[test]
    fn an_index_update_carries_that_index_alone() {
        // Another resource and the table's own billing change beside two new indexes.
        let deployed = table(&[], None);
        let mut wanted = table(&[("a", "x"), ("b", "y")], None);
        wanted["Resources"]["F"] =
            json!({ "Type": "AWS::Lambda::Function", "Properties": { "MemorySize": 512 } });
        wanted["Resources"]["T"]["Properties"]["BillingMode"] = json!("PROVISIONED");
        wanted["Resources"]["T"]["Properties"]["ProvisionedThroughput"] =
            json!({ "ReadCapacityUnits": 5, "WriteCapacityUnits": 5 });
        let t = plan_of(Some(&deployed), &wanted).unwrap();
        assert_eq!(t.index_tables, ["T"]);
        let got: Vec<Vec<String>> = t.steps.iter().map(names_in).collect();
        assert_eq!(got, [ids(&[]), ids(&["a"]), ids(&["a", "b"])]);
        assert_eq!(t.notes[0], ["everything but the index changes"]);
        assert_eq!(t.notes[1], ["T: create index a"]);
        // The first update holds every other change; each later one differs from the one
        // before it by one index (and the attribute it is keyed on) only.
        assert_eq!(t.steps[0]["Resources"]["F"], wanted["Resources"]["F"]);
        assert_eq!(
            t.steps[0]["Resources"]["T"]["Properties"]["BillingMode"],
            "PROVISIONED"
        );
        for pair in t.steps.windows(2) {
            let (mut a, mut b) = (pair[0].clone(), pair[1].clone());
            for t in [&mut a, &mut b] {
                let props = t["Resources"]["T"]["Properties"].as_object_mut().unwrap();
                props.remove("GlobalSecondaryIndexes");
                props.remove("AttributeDefinitions");
            }
            assert_eq!(a, b, "an index step changes nothing else");
        }
        // Only parameters change (new code): they go first too.
        let only_indexes = table(&[("a", "x")], None);
        assert_eq!(
            plan_of(Some(&deployed), &only_indexes).unwrap().steps.len(),
            1
        );
        let with_code = plan(Some(&deployed), &only_indexes, true).unwrap();
        assert_eq!(with_code.steps.len(), 2);
        assert_eq!(names_in(&with_code.steps[0]), Vec::<String>::new());
        // No index change: one step, no tables to wait for.
        let same = plan(Some(&deployed), &deployed, true).unwrap();
        assert_eq!((same.steps.len(), same.index_tables.len()), (1, 0));
    }

    #[test]
    fn an_index_edited_in_place_is_refused_with_a_rename() {
        let why = plan_of(
            Some(&table(&[("a", "x")], None)),
            &table(&[("a", "y")], None),
        )
        .unwrap_err();
        assert_eq!(why.len(), 1);
        assert!(
            why[0].contains("index `a` changes its keys or projection")
                && why[0].contains("new name"),
            "{why:?}"
        );
    }

    #[test]
    fn removing_ttl_disables_it_by_name_and_renaming_is_refused() {
        let t = plan_of(Some(&table(&[], Some("exp"))), &table(&[], None)).unwrap();
        assert_eq!(
            t.steps[0]["Resources"]["T"]["Properties"]["TimeToLiveSpecification"],
            json!({ "AttributeName": "exp", "Enabled": false })
        );
        let why =
            plan_of(Some(&table(&[], Some("exp"))), &table(&[], Some("expires"))).unwrap_err();
        assert!(why[0].contains("from `exp` to `expires`"), "{why:?}");
        let same = plan_of(Some(&table(&[], Some("exp"))), &table(&[], Some("exp"))).unwrap();
        assert_eq!(same.steps, vec![table(&[], Some("exp"))]);
    }

    #[test]
    fn a_stream_view_type_change_is_refused_with_the_two_deploy_path() {
        let with_stream = |view: Option<&str>| {
            let mut t = table(&[], None);
            if let Some(view) = view {
                t["Resources"]["T"]["Properties"]["StreamSpecification"] =
                    json!({ "StreamViewType": view });
            }
            t
        };
        for (before, after, refused) in [
            (Some("NEW_IMAGE"), Some("NEW_AND_OLD_IMAGES"), true),
            (Some("NEW_IMAGE"), Some("NEW_IMAGE"), false),
            (None, Some("KEYS_ONLY"), false),
            (Some("KEYS_ONLY"), None, false),
        ] {
            let got = plan_of(Some(&with_stream(before)), &with_stream(after));
            assert_eq!(got.is_err(), refused, "{before:?} -> {after:?}");
            if let Err(why) = got {
                assert!(why[0].contains("remove `stream`"), "{why:?}");
            }
        }
    }

    #[test]
    fn an_index_key_changing_type_under_its_name_is_refused() {
        let typed = |ty: &str| {
            let mut t = table(&[("by_a", "a")], None);
            t["Resources"]["T"]["Properties"]["AttributeDefinitions"] = json!([{ "AttributeName": "pk", "AttributeType": "S" }, { "AttributeName": "a", "AttributeType": ty }]);
            t
        };
        let why = plan_of(Some(&typed("S")), &typed("N")).unwrap_err();
        assert_eq!(why.len(), 1);
        assert!(
            why[0].contains("index `by_a` keeps its name but its key `a` changes type from S to N"),
            "{why:?}"
        );
        assert!(plan_of(Some(&typed("S")), &typed("S")).is_ok());
        // A new name for the new definition is the way through: two updates.
        let mut renamed = typed("N");
        renamed["Resources"]["T"]["Properties"]["GlobalSecondaryIndexes"][0]["IndexName"] =
            json!("by_a_number");
        assert_eq!(plan_of(Some(&typed("S")), &renamed).unwrap().steps.len(), 2);
    }

    #[test]
    fn ttl_is_enabled_again_only_on_deployed_tables_that_have_it_off() {
        let mut off = table(&[], Some("exp"));
        off["Resources"]["T"]["Properties"]["TimeToLiveSpecification"]["Enabled"] = json!(false);
        let on = table(&[], Some("exp"));
        let none = table(&[], None);
        assert_eq!(ttl_enabling(&off, &on), ["T"]);
        assert_eq!(ttl_enabling(&none, &on), ["T"]);
        assert!(ttl_enabling(&on, &on).is_empty());
        assert!(ttl_enabling(&on, &off).is_empty());
        let elsewhere = json!({ "Resources": {} });
        assert!(
            ttl_enabling(&elsewhere, &on).is_empty(),
            "a new table has no TTL to wait for"
        );
    }

    #[test]
    fn a_create_is_one_step_as_rendered() {
        let wanted = table(&[("a", "x"), ("b", "y")], Some("exp"));
        assert_eq!(plan_of(None, &wanted).unwrap().steps, vec![wanted]);
    }
}
