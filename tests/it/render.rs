//! Snapshots of rendered templates, and the properties rendering promises.

use crate::common;

use deployer::render::{self, Format, Options};

fn snapshot_name(path: &std::path::Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_spec_renders_to_its_snapshot() {
    for path in common::good_specs() {
        let spec = common::load(&path);
        let template = render::app(&spec, Options::default()).unwrap();
        insta::assert_snapshot!(snapshot_name(&path), template.to_string(Format::Yaml));
    }
}

#[test]
fn ephemeral_example_deletes_its_tables() {
    let spec = common::load(&common::root().join("stacks/example.yaml"));
    let spec = spec.for_env("pr-42").unwrap();
    let template = render::app(
        &spec,
        Options {
            ephemeral: true,
            shared_slot: None,
        },
    )
    .unwrap();
    insta::assert_snapshot!("example-ephemeral", template.to_string(Format::Yaml));
    let table = &template.0["Resources"]["NotesTable"];
    assert_eq!(table["DeletionPolicy"], "Delete");
    assert_eq!(table["UpdateReplacePolicy"], "Delete");
}

#[test]
fn bootstrap_renders_to_its_snapshot() {
    insta::assert_snapshot!(
        "bootstrap",
        render::bootstrap::template().to_string(Format::Yaml)
    );
}

/// Byte-identical across processes (each with its own hash seeds), in both formats.
#[test]
fn rendering_is_deterministic_across_processes() {
    for path in common::good_specs() {
        for format in ["yaml", "json"] {
            let run = || {
                let out = assert_cmd::Command::cargo_bin("deployer")
                    .unwrap()
                    .args(["render", "--format", format, "-s"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            };
            let first = run();
            assert!(!first.is_empty());
            assert_eq!(first, run(), "{} as {format}", path.display());
        }
    }
}

#[test]
fn persistent_tables_are_retained_and_protected_envs_are_guarded() {
    let spec = common::load(&common::root().join("stacks/example.yaml"));
    let dev = render::app(&spec, Options::default()).unwrap();
    // A failed first `up` deletes the table it created (it holds nothing yet); later, it stays.
    assert_eq!(
        dev.0["Resources"]["NotesTable"]["DeletionPolicy"],
        "RetainExceptOnCreate"
    );
    assert_eq!(
        dev.0["Resources"]["NotesTable"]["UpdateReplacePolicy"],
        "Retain"
    );
    assert_eq!(
        dev.0["Resources"]["NotesTable"]["Properties"]["DeletionProtectionEnabled"],
        false
    );
    let prod = render::app(&spec.for_env("prod").unwrap(), Options::default()).unwrap();
    assert_eq!(
        prod.0["Resources"]["NotesTable"]["Properties"]["DeletionProtectionEnabled"],
        true
    );
}

#[test]
fn another_env_changes_names_but_not_logical_ids() {
    let spec = common::load(&common::root().join("stacks/example.yaml"));
    let dev = render::app(&spec, Options::default()).unwrap();
    let pr = render::app(&spec.for_env("pr-7").unwrap(), Options::default()).unwrap();
    let ids = |t: &render::Template| {
        t.0["Resources"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&dev), ids(&pr));
    assert_eq!(
        pr.0["Resources"]["ApiFunction"]["Properties"]["FunctionName"],
        "notes-pr-7-api"
    );
}

#[test]
fn iam_grants_only_what_each_access_level_needs() {
    let spec = common::load(&common::root().join("tests/specs/multi.yaml"));
    let t = render::app(&spec, Options::default()).unwrap();
    let statements = |role: &str| {
        t.0["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].clone()
    };
    let actions = |role: &str, i: usize| {
        statements(role)[i]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // ingest: write on events, read on users.
    assert!(actions("IngestRole", 1).contains(&"dynamodb:PutItem".to_string()));
    assert!(!actions("IngestRole", 1).contains(&"dynamodb:GetItem".to_string()));
    assert!(actions("IngestRole", 2).contains(&"dynamodb:GetItem".to_string()));
    assert!(!actions("IngestRole", 2).contains(&"dynamodb:PutItem".to_string()));
    // No statement anywhere grants on `*`.
    let body = t.body();
    assert!(!body.contains("\"Resource\":\"*\""), "{body}");
    // The index ARN is granted only for tables with indexes.
    let events = statements("QueryRole")[1]["Resource"].clone();
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
    let users = statements("IngestRole")[2]["Resource"].clone();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

#[test]
fn routes_get_unique_priorities_in_spec_order() {
    let spec = common::load(&common::root().join("tests/specs/multi.yaml"));
    let t = render::app(&spec, Options::default()).unwrap();
    let r = &t.0["Resources"];
    // Spaced, so that a route inserted later fits between without moving the others.
    assert_eq!(r["IngestRoute1"]["Properties"]["Priority"], 100);
    assert_eq!(r["QueryRoute1"]["Properties"]["Priority"], 200);
    // The default route forwards to `query`; `compact` has no routes and no target group.
    assert_eq!(
        r["HttpListener"]["Properties"]["DefaultActions"][0]["TargetGroupArn"]["Ref"],
        "QueryTargetGroup"
    );
    assert!(r.get("CompactTargetGroup").is_none());
}

#[test]
fn what_aws_needs_beyond_what_moto_checks() {
    let spec = common::load(&common::root().join("tests/specs/multi.yaml"));
    let t = render::app(&spec, Options::default()).unwrap();
    let r = &t.0["Resources"];
    // A dedicated VPC: the internet-facing ALB waits for the gateway and the public routes.
    let depends: Vec<&str> = r["LoadBalancer"]["DependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for needed in ["VpcGatewayAttachment", "PublicDefaultRoute"] {
        assert!(depends.contains(&needed), "{depends:?}");
    }
    // The security group allows no egress (an empty list would allow all).
    let egress = &r["AlbSecurityGroup"]["Properties"]["SecurityGroupEgress"];
    assert_eq!(egress[0]["CidrIp"], "255.255.255.255/32");
    assert_eq!(egress.as_array().unwrap().len(), 1);
    // Health checks are opt-in.
    assert_eq!(
        r["IngestTargetGroup"]["Properties"]["HealthCheckEnabled"],
        true
    );
    assert_eq!(
        r["IngestTargetGroup"]["Properties"]["HealthCheckPath"],
        "/health"
    );
    assert_eq!(
        r["QueryTargetGroup"]["Properties"]["HealthCheckEnabled"],
        false
    );
    // The invoke permission names its own target group, not every group of the account.
    let name = r["IngestTargetGroup"]["Properties"]["Name"]
        .as_str()
        .unwrap();
    assert!(
        name.len() <= 32 && name.starts_with("events-qa-ingest-"),
        "{name}"
    );
    let source = r["IngestAlbPermission"]["Properties"]["SourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        source.ends_with(&format!(":targetgroup/{name}/*")),
        "{source}"
    );
    // Encryption as chosen per table.
    assert_eq!(
        r["EventsTable"]["Properties"]["SSESpecification"],
        serde_json::json!({ "SSEEnabled": false })
    );
    assert_eq!(
        r["UsersTable"]["Properties"]["SSESpecification"]["SSEType"],
        "KMS"
    );
    assert!(r["AuditLogTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"].is_string());
    // Alarms notify the stack's topic and the given one; the ALB's own 5xx are watched too.
    let actions = &r["IngestErrorsAlarm"]["Properties"]["AlarmActions"];
    assert_eq!(actions[0]["Ref"], "AlarmTopic");
    assert_eq!(actions[1], "arn:aws:sns:eu-west-1:123456789012:pager");
    assert_eq!(
        r["AlarmTopic"]["Properties"]["Subscription"][0]["Endpoint"],
        "oncall@example.com"
    );
    assert_eq!(
        r["LoadBalancer5xxAlarm"]["Properties"]["MetricName"],
        "HTTPCode_ELB_5XX_Count"
    );
}

#[test]
fn extra_that_clashes_with_a_rendered_id_is_an_error() {
    let source = "app: a\nfunctions:\n  api:\n    path: x\nextra:\n  Resources:\n    ApiFunction: { Type: AWS::SNS::Topic }\n";
    let spec = deployer::spec::parse(source, "x.yaml").unwrap();
    let diags = render::app(&spec, Options::default()).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].pos.line, diags[0].pos.col), (7, 5));
    assert_eq!(
        diags[0].message,
        "`extra.Resources.ApiFunction` clashes with a logical id deployer renders; pick another name"
    );
}

/// Secrets: names in the environment, reads on exactly those, and `kms:Decrypt` only on the
/// customer keys `up` found, only through the secret's own service.
#[test]
fn secrets_grant_reads_on_exactly_their_names_and_decrypt_on_customer_keys() {
    let mut spec = common::load(&common::root().join("tests/specs/production.yaml"));
    let statements = |spec: &deployer::spec::Spec| {
        let t = render::app(spec, Options::default()).unwrap();
        t.0["Resources"]["ApiRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone()
    };
    let without = statements(&spec);
    assert!(!serde_json::to_string(&without).unwrap().contains("kms:"));
    let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let api = spec.functions.get_mut("api").unwrap();
    api.secrets.get_mut("DB_PASSWORD").unwrap().kms_key_arn = Some(key.to_string());
    let with = statements(&spec);
    let decrypt: Vec<&serde_json::Value> = with
        .iter()
        .filter(|s| s["Action"] == "kms:Decrypt")
        .collect();
    assert_eq!(decrypt.len(), 1, "{with:?}");
    assert_eq!(decrypt[0]["Resource"], serde_json::json!([key]));
    assert_eq!(
        decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"],
        "ssm.${AWS::Region}.amazonaws.com"
    );
    // The Secrets Manager secret uses the managed key: no statement for it.
    assert_eq!(with.len(), without.len() + 1);
}

#[test]
fn a_rollout_forwards_to_live_and_next_and_ephemeral_envs_have_none() {
    let spec = common::load(&common::root().join("tests/specs/production.yaml"));
    let t = render::app(&spec, Options::default()).unwrap().0;
    let r = &t["Resources"];
    // Every forward action of the function: all on `live`, none on `next`.
    let forward = serde_json::json!({
        "Type": "forward",
        "ForwardConfig": { "TargetGroups": [
            { "TargetGroupArn": { "Ref": "ApiTargetGroup" }, "Weight": 100 },
            { "TargetGroupArn": { "Ref": "ApiNextTargetGroup" }, "Weight": 0 },
        ] },
    });
    assert_eq!(r["ApiRoute1"]["Properties"]["Actions"][0], forward);
    assert_eq!(
        r["HttpsListener"]["Properties"]["DefaultActions"][0],
        forward
    );
    assert_eq!(
        r["ApiTargetGroup"]["Properties"]["Targets"][0]["Id"],
        serde_json::json!({ "Ref": "ApiLiveAlias" })
    );
    assert_eq!(
        r["ApiNextAlbPermission"]["Properties"]["FunctionName"],
        serde_json::json!({ "Ref": "ApiNextAlias" })
    );
    // A new code key publishes a version: the description names it.
    let description = r["ApiVersion"]["Properties"]["Description"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        description.starts_with("code ${ApiCodeKey}, configuration "),
        "{description}"
    );
    assert_eq!(
        r["ApiNextErrorsAlarm"]["Properties"]["Dimensions"][1]["Value"]["Fn::Sub"],
        "${ApiFunction}:next"
    );
    assert_eq!(t["Parameters"]["ApiLiveVersion"]["Default"], "");

    let ephemeral = render::app(
        &spec.for_env("pr-7").unwrap(),
        Options {
            ephemeral: true,
            shared_slot: None,
        },
    )
    .unwrap()
    .0;
    for id in [
        "ApiVersion",
        "ApiLiveAlias",
        "ApiNextTargetGroup",
        "ApiNextErrorsAlarm",
    ] {
        assert!(ephemeral["Resources"].get(id).is_none(), "{id}");
    }
}
