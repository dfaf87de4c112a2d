//! Second deploys: the edits users make to a deployed spec, each `up` against moto, and every
//! template deployer submits checked against AWS's rules by a checker of its own (moto enforces
//! duplicate listener priorities, but not one GSI per update or the inline template size).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::common::moto::Moto;

/// A spec of routed functions (name, route paths) and one table (indexes, TTL attribute).
struct Shape {
    functions: Vec<(String, Vec<String>)>,
    indexes: Vec<&'static str>,
    ttl: Option<&'static str>,
    /// `network: { dedicated: true }` instead of the shared VPC.
    dedicated: bool,
}

impl Shape {
    fn yaml(&self) -> String {
        let network = if self.dedicated {
            "network: { dedicated: true }\n"
        } else {
            ""
        };
        let mut s = format!("app: shop\n{network}alb: {{}}\nfunctions:\n");
        for (name, routes) in &self.functions {
            s.push_str(&format!(
                "  {name}:\n    path: .\n    build: {{ method: zip, path: ../fn.zip }}\n    tables: {{ items: read }}\n    routes:\n"
            ));
            for path in routes {
                s.push_str(&format!("      - path: {path}\n"));
            }
        }
        s.push_str("tables:\n  items:\n    partition_key: { name: pk, type: S }\n");
        if let Some(ttl) = self.ttl {
            s.push_str(&format!("    ttl_attribute: {ttl}\n"));
        }
        if !self.indexes.is_empty() {
            s.push_str("    indexes:\n");
            for index in &self.indexes {
                s.push_str(&format!(
                    "      - name: {index}\n        partition_key: {{ name: {index}_key, type: S }}\n"
                ));
            }
        }
        s
    }

    /// Every route path in the order the spec ranks them.
    fn precedence(&self) -> Vec<String> {
        self.functions
            .iter()
            .flat_map(|(_, routes)| routes.clone())
            .collect()
    }
}

fn functions(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    spec.iter()
        .map(|(n, r)| (n.to_string(), r.iter().map(|p| p.to_string()).collect()))
        .collect()
}

struct Env {
    moto: Moto,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        let zip = deployer::build::zip_bootstrap(b"#!/bin/sh\n# placeholder\n");
        std::fs::write(dir.path().join("fn.zip"), zip).unwrap();
        Env {
            moto: Moto::start(),
            dir,
        }
    }

    async fn cfn(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.moto.sdk_config().await)
    }

    async fn deployed(&self) -> Option<Value> {
        let out = self
            .cfn()
            .await
            .get_template()
            .stack_name("shop-dev")
            .send()
            .await
            .ok()?;
        serde_json::from_str(out.template_body()?).ok()
    }

    /// Writes the spec, runs `up --yes`, and returns what it submitted and how (inline size or
    /// URL), in order.
    async fn up(&self, shape: &Shape, extra: &[&str]) -> Vec<(Value, Submitted)> {
        std::fs::write(self.dir.path().join("stacks/shop.yaml"), shape.yaml()).unwrap();
        self.moto.reset_recording();
        let mut args = vec!["up", "--yes"];
        args.extend_from_slice(extra);
        let out = self.moto.deployer(self.dir.path(), &args);
        out.expect_code(0);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.moto.sdk_config().await)
                .force_path_style(true)
                .build(),
        );
        let mut submitted = Vec::new();
        for request in self
            .moto
            .requests()
            .into_iter()
            // A change set, or the app stack's direct create (`--yes`, nothing to review).
            .filter(|r| match r.action.as_deref() {
                Some("CreateChangeSet") => true,
                Some("CreateStack") => r.field("StackName") != Some("deployer-bootstrap"),
                _ => false,
            })
        {
            // Named IAM resources under `extra` need the named capability.
            assert_eq!(
                request.field("Capabilities.member.1"),
                Some("CAPABILITY_NAMED_IAM")
            );
            if let Some(body) = request.field("TemplateBody") {
                submitted.push((
                    serde_json::from_str(body).unwrap(),
                    Submitted::Inline(body.len()),
                ));
            } else {
                let url = request.field("TemplateURL").expect("a body or a URL");
                let rest = url.strip_prefix("https://").unwrap();
                let (host, key) = rest.split_once('/').unwrap();
                let bucket = host.split(".s3.").next().unwrap();
                let object = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                let bytes = object.body.collect().await.unwrap().into_bytes();
                submitted.push((
                    serde_json::from_slice(&bytes).unwrap(),
                    Submitted::Url(url.to_string(), bytes.len()),
                ));
            }
        }
        submitted
    }

    /// The route paths of the live listener's rules, by priority.
    async fn live_precedence(&self) -> Vec<String> {
        let resources = self
            .cfn()
            .await
            .list_stack_resources()
            .stack_name("shop-dev")
            .send()
            .await
            .unwrap();
        let listener = resources
            .stack_resource_summaries()
            .iter()
            .find(|r| r.logical_resource_id() == Some("HttpListener"))
            .and_then(|r| r.physical_resource_id())
            .unwrap()
            .to_string();
        // moto 5.2.5 never deletes a listener rule removed from a stack (it has no delete for
        // that resource type): only the rules the stack still holds count.
        let held: BTreeSet<String> = resources
            .stack_resource_summaries()
            .iter()
            .filter(|r| r.resource_type() == Some("AWS::ElasticLoadBalancingV2::ListenerRule"))
            .filter_map(|r| r.physical_resource_id().map(str::to_string))
            .collect();
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.moto.sdk_config().await);
        let rules = elb
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .unwrap();
        let mut ranked: Vec<(u32, String)> = rules
            .rules()
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .filter(|r| r.rule_arn().is_some_and(|arn| held.contains(arn)))
            .map(|r| {
                let path = r.conditions()[0].path_pattern_config().unwrap().values()[0].clone();
                (r.priority().unwrap().parse().unwrap(), path)
            })
            .collect();
        ranked.sort();
        ranked.into_iter().map(|(_, p)| p).collect()
    }
}

#[derive(Debug)]
enum Submitted {
    Inline(usize),
    Url(String, usize),
}

fn priorities(template: &Value) -> BTreeMap<String, u64> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule")
        .map(|(id, r)| (id.clone(), r["Properties"]["Priority"].as_u64().unwrap()))
        .collect()
}

/// The route paths of a template's rules, by priority.
fn template_precedence(template: &Value) -> Vec<String> {
    let mut ranked: Vec<(u64, String)> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule")
        .map(|r| {
            let path = r["Properties"]["Conditions"][0]["PathPatternConfig"]["Values"][0]
                .as_str()
                .unwrap()
                .to_string();
            (r["Properties"]["Priority"].as_u64().unwrap(), path)
        })
        .collect();
    ranked.sort();
    ranked.into_iter().map(|(_, p)| p).collect()
}

fn index_names(template: &Value) -> BTreeMap<String, BTreeSet<String>> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .map(|(id, r)| {
            let names = r["Properties"]["GlobalSecondaryIndexes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["IndexName"].as_str().unwrap().to_string())
                .collect();
            (id.clone(), names)
        })
        .collect()
}

/// AWS's rules for one update from `before` to `after`.
fn check_update(before: &Value, after: &Value, how: &Submitted) {
    let (old, new) = (priorities(before), priorities(after));
    let mut seen = BTreeSet::new();
    for (id, p) in &new {
        assert!(seen.insert(*p), "two rules share priority {p}: {new:?}");
        for (other, q) in &old {
            assert!(
                other == id || q != p,
                "{id} is given priority {p}, which {other} still holds: {old:?} -> {new:?}"
            );
        }
    }
    let (old, new) = (index_names(before), index_names(after));
    for (table, names) in &new {
        if let Some(was) = old.get(table) {
            let changed = names.symmetric_difference(was).count();
            assert!(
                changed <= 1,
                "{table}: {changed} index creations/deletions in one update: {was:?} -> {names:?}"
            );
        }
    }
    if let Submitted::Inline(size) = how {
        assert!(*size <= 51_200, "a {size}-byte TemplateBody");
    }
    // A VPC made in the same template: the internet-facing load balancer waits for its gateway
    // attachment and public route (else "VPC has no internet gateway" on create).
    let resources = after["Resources"].as_object().unwrap();
    let of_type = |kind: &str| -> Vec<&String> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .map(|(id, _)| id)
            .collect()
    };
    for lb in of_type("AWS::ElasticLoadBalancingV2::LoadBalancer") {
        let depends = resources[lb]["DependsOn"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for needed in of_type("AWS::EC2::VPCGatewayAttachment")
            .into_iter()
            .chain(of_type("AWS::EC2::Route"))
        {
            assert!(
                depends.contains(&serde_json::json!(needed)),
                "{lb} does not wait for {needed}"
            );
        }
    }
}

/// Runs `up` for `shape` and checks every submitted template against the deployed one before it,
/// then the live precedence. Returns the submissions.
async fn deploy_and_check(env: &Env, shape: &Shape, extra: &[&str]) -> Vec<(Value, Submitted)> {
    let mut before = env
        .deployed()
        .await
        .unwrap_or(serde_json::json!({ "Resources": {} }));
    let submitted = env.up(shape, extra).await;
    for (template, how) in &submitted {
        check_update(&before, template, how);
        before = template.clone();
    }
    // moto 5.2.5 ignores a changed Priority on update (its ListenerRule update applies only
    // conditions and actions), so the live order is checked as a set and the order from the
    // deployed template, which is what CloudFormation applies on AWS.
    let deployed = env.deployed().await.unwrap();
    assert_eq!(
        template_precedence(&deployed),
        shape.precedence(),
        "routing precedence follows the spec"
    );
    let mut live = env.live_precedence().await;
    let mut want = shape.precedence();
    live.sort();
    want.sort();
    assert_eq!(live, want, "the listener holds exactly the spec's routes");
    submitted
}

#[tokio::test(flavor = "multi_thread")]
async fn every_common_edit_of_a_deployed_spec_deploys() {
    let env = Env::new();
    let mut shape = Shape {
        functions: functions(&[("alpha", &["/a*"]), ("beta", &["/b*"]), ("gamma", &["/c*"])]),
        indexes: vec![],
        ttl: Some("expires_at"),
        dedicated: false,
    };
    assert_eq!(
        deploy_and_check(&env, &shape, &[]).await.len(),
        1,
        "the create"
    );

    // A second route for the first function: PriorityInUse before.
    shape.functions[0].1.insert(0, "/a/special".into());
    assert_eq!(deploy_and_check(&env, &shape, &[]).await.len(), 1);

    // A function removed (its log group goes with it: data, hence the flag), then the rest
    // reordered.
    shape.functions.remove(1);
    deploy_and_check(&env, &shape, &["--allow-data-loss"]).await;
    shape.functions.reverse();
    deploy_and_check(&env, &shape, &[]).await;

    // Past 51,200 bytes: the template goes through the artifact bucket.
    for i in 0..10 {
        shape
            .functions
            .push((format!("extra{i}"), vec![format!("/x{i}*")]));
    }
    let steps = deploy_and_check(&env, &shape, &[]).await;
    match &steps[0].1 {
        Submitted::Url(url, size) => {
            assert!(*size > 51_200, "{size}");
            assert!(
                url.starts_with("https://")
                    && url.contains(".s3.us-east-1.amazonaws.com/templates/shop-dev/"),
                "{url}"
            );
        }
        inline => panic!("a large template was sent inline: {inline:?}"),
    }
    // Two new indexes: the role's access to the table's indexes (a change of its own) first,
    // then one update per index, each carrying that index alone.
    shape.indexes = vec!["by_owner", "by_state"];
    let steps = deploy_and_check(&env, &shape, &[]).await;
    let counts: Vec<usize> = steps
        .iter()
        .map(|(t, _)| index_names(t).get("ItemsTable").map_or(0, BTreeSet::len))
        .collect();
    assert_eq!(
        counts,
        [0, 1, 2],
        "the other changes, then one update per index"
    );
    let items = env.deployed().await.unwrap();
    assert_eq!(index_names(&items)["ItemsTable"].len(), 2);

    // TTL removed: disabled by name, not dropped.
    shape.ttl = None;
    let steps = deploy_and_check(&env, &shape, &[]).await;
    assert_eq!(
        steps[0].0["Resources"]["ItemsTable"]["Properties"]["TimeToLiveSpecification"],
        serde_json::json!({ "AttributeName": "expires_at", "Enabled": false })
    );

    // And the same spec again is a no-op.
    // moto 5.2.5 does not apply a change set's tags to the stack (AWS does), so the first repeat
    // finds the digest stale, sees no changes and records it; from then on, no change set at all.
    for _ in 0..2 {
        env.moto.reset_recording();
        let again = env.moto.deployer(env.dir.path(), &["up", "--yes"]);
        again.expect_code(0);
        assert!(again.stderr.contains("no changes"), "{}", again.stderr);
        assert_eq!(env.moto.count("ExecuteChangeSet"), 0, "{}", again.stderr);
    }
    assert_eq!(
        env.moto.count("CreateChangeSet"),
        0,
        "an unchanged spec is a no-op"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dedicated_vpc_stack_is_created_and_updated_in_order() {
    let env = Env::new();
    let mut shape = Shape {
        functions: functions(&[("alpha", &["/a*"])]),
        indexes: vec![],
        ttl: None,
        dedicated: true,
    };
    deploy_and_check(&env, &shape, &[]).await;
    shape.functions.push(("beta".into(), vec!["/b*".into()]));
    deploy_and_check(&env, &shape, &[]).await;
}
