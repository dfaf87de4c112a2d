//! Ephemeral environments against moto: `--ttl`, expiry, `gc`, `ls`, artifact cleanup.

use crate::common;

use std::path::Path;

use common::moto::Moto;

const T0: &str = "2030-01-01T00:00:00Z";
const T0_PLUS_2H: &str = "2030-01-01T02:00:00Z";
const T0_PLUS_10H: &str = "2030-01-01T10:00:00Z";

fn project() -> tempfile::TempDir {
    common::project_with(&[("shared.zip", "shared"), ("unique.zip", "unique")])
}

fn up(
    moto: &Moto,
    dir: &Path,
    env: &str,
    zip: &str,
    extra: &[&str],
    now: &str,
) -> common::moto::Output {
    let artifact = format!("api={}", dir.join(zip).display());
    let mut args = vec!["up", "--env", env, "--artifact", &artifact, "--yes"];
    args.extend_from_slice(extra);
    moto.deployer_with(dir, &args, &[("DEPLOYER_NOW", now)])
}

async fn cfn(moto: &Moto) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&moto.sdk_config().await)
}

async fn tags(moto: &Moto, stack: &str) -> std::collections::BTreeMap<String, String> {
    let out = cfn(moto)
        .await
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    out.stacks()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

async fn live_stacks(moto: &Moto) -> Vec<String> {
    let out = cfn(moto).await.describe_stacks().send().await.unwrap();
    let mut names: Vec<String> = out
        .stacks()
        .iter()
        .map(|s| s.stack_name().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    common::records(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_deletes_exactly_the_expired_ephemeral_envs() {
    let moto = Moto::start();
    let p = project();
    let dir = p.path();
    up(&moto, dir, "pr-1", "shared.zip", &["--ttl", "1h"], T0).expect_code(0);
    up(&moto, dir, "pr-2", "shared.zip", &["--ttl", "48h"], T0).expect_code(0);
    up(&moto, dir, "pr-3", "shared.zip", &["--ttl", "7d"], T0).expect_code(0);
    up(&moto, dir, "prod", "shared.zip", &[], T0).expect_code(0);
    up(&moto, dir, "staging", "shared.zip", &[], T0).expect_code(0);
    // A stack deployer did not make, even one that looks ephemeral, is never touched.
    cfn(&moto)
        .await
        .create_stack()
        .stack_name("hand-made")
        .template_body(r#"{"Resources":{"Topic":{"Type":"AWS::SNS::Topic"}}}"#)
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("deployer:ephemeral")
                .value("true")
                .build(),
        )
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("deployer:expires-at")
                .value("2000-01-01T00:00:00Z")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let t = tags(&moto, "notes-pr-1").await;
    assert_eq!(t["deployer:ephemeral"], "true");
    assert_eq!(t["deployer:expires-at"], "2030-01-01T01:00:00Z");
    assert_eq!(t["deployer:app"], "notes");
    assert_eq!(t["deployer:env"], "pr-1");
    let template = cfn(&moto)
        .await
        .get_template()
        .stack_name("notes-pr-1")
        .send()
        .await
        .unwrap();
    let template: serde_json::Value =
        serde_json::from_str(template.template_body().unwrap()).unwrap();
    assert_eq!(
        template["Resources"]["NotesTable"]["DeletionPolicy"], "Delete",
        "ephemeral tables are deleted with the env"
    );
    assert!(
        !tags(&moto, "notes-prod")
            .await
            .contains_key("deployer:ephemeral")
    );

    let dry = moto.deployer_with(
        dir,
        &["gc", "--dry-run", "--json"],
        &[("DEPLOYER_NOW", T0_PLUS_2H)],
    );
    dry.expect_code(0);
    let lines = json_lines(&dry.stdout);
    let deletions: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "gc" && l["action"] == "delete")
        .map(|l| l["stack"].as_str().unwrap())
        .collect();
    assert_eq!(deletions, ["notes-pr-1"]);
    let dry_summary = lines.last().unwrap();
    assert_eq!(dry_summary["command"], "gc");
    assert_eq!(dry_summary["dry_run"], true);
    assert_eq!(dry_summary["stacks"], serde_json::json!(["notes-pr-1"]));
    let reason = |stack: &str| {
        lines.iter().find(|l| l["stack"] == stack).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(reason("notes-pr-1"), "expired at 2030-01-01T01:00:00Z");
    assert_eq!(reason("notes-pr-2"), "expires at 2030-01-03T00:00:00Z");
    assert_eq!(reason("notes-prod"), "not ephemeral");
    assert_eq!(reason("hand-made"), "not managed by deployer");
    assert_eq!(
        reason("notes-shared-alb"),
        "the app's shared load balancer: deleted with its last env"
    );
    assert_eq!(
        live_stacks(&moto).await.len(),
        8,
        "a dry run deletes nothing"
    );

    moto.reset_recording();
    let gc = moto.deployer_with(
        dir,
        &["gc", "--yes", "--json"],
        &[("DEPLOYER_NOW", T0_PLUS_2H)],
    );
    gc.expect_code(0);
    assert_eq!(moto.count("DeleteStack"), 1);
    let summary = json_lines(&gc.stdout).pop().unwrap();
    assert_eq!(summary["command"], "gc");
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["stacks"], serde_json::json!(["notes-pr-1"]));
    assert_eq!(
        live_stacks(&moto).await,
        [
            "deployer-bootstrap",
            "hand-made",
            "notes-pr-2",
            "notes-pr-3",
            "notes-prod",
            "notes-shared-alb",
            "notes-staging"
        ]
    );

    // Without --yes off a terminal, gc refuses; with nothing expired it has nothing to do.
    let refuse = moto.deployer_with(dir, &["gc"], &[("DEPLOYER_NOW", "2030-01-05T00:00:00Z")]);
    refuse.expect_code(2);
    assert!(refuse.stderr.contains("pass --yes"), "{}", refuse.stderr);
    let nothing = moto.deployer_with(dir, &["gc", "--yes"], &[("DEPLOYER_NOW", T0_PLUS_2H)]);
    nothing.expect_code(0);
    assert!(
        nothing.stderr.contains("0 stack(s) to delete"),
        "{}",
        nothing.stderr
    );

    let ls = moto.deployer(dir, &["ls", "--app", "notes", "--json"]);
    ls.expect_code(0);
    let rows = json_lines(&ls.stdout);
    let rows: Vec<_> = rows
        .iter()
        .map(|r| (&r["stack"], &r["env"], &r["shared_alb"]))
        .collect();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let rows: Vec<_> = rows
        .iter()
        .map(|(s, e, a)| (text(s).unwrap(), text(e), text(a)))
        .collect();
    let shared = |slot: &str| Some(format!("notes-shared-alb/{slot}"));
    // The ephemeral envs are attached to the shared load balancer, which is listed too.
    assert_eq!(
        rows,
        [
            ("notes-pr-2".into(), Some("pr-2".into()), shared("1")),
            ("notes-pr-3".into(), Some("pr-3".into()), shared("2")),
            ("notes-prod".into(), Some("prod".into()), None),
            (
                "notes-shared-alb".into(),
                None,
                Some("notes-shared-alb".into())
            ),
            ("notes-staging".into(), Some("staging".into()), None),
        ]
    );
    let rows = json_lines(&ls.stdout);
    assert_eq!(rows[0]["expires"], "2030-01-03T00:00:00Z");
    assert_eq!(rows[2]["expires"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_up_extends_the_expiry_and_refusals_protect_data() {
    let moto = Moto::start();
    let p = project();
    let dir = p.path();
    up(&moto, dir, "pr-9", "shared.zip", &["--ttl", "48h"], T0).expect_code(0);
    // An unchanged env right after: a no-op, no tag update.
    moto.reset_recording();
    up(
        &moto,
        dir,
        "pr-9",
        "shared.zip",
        &[],
        "2030-01-01T00:05:00Z",
    )
    .expect_code(0);
    assert_eq!(moto.count("UpdateStack") + moto.count("CreateChangeSet"), 0);
    // Ten hours later, without --ttl: still ephemeral, expiry pushed out by the stored 48h.
    let later = up(&moto, dir, "pr-9", "shared.zip", &[], T0_PLUS_10H);
    later.expect_code(0);
    assert!(
        later.stderr.contains("extending the expiry"),
        "{}",
        later.stderr
    );
    let t = tags(&moto, "notes-pr-9").await;
    assert_eq!(t["deployer:expires-at"], "2030-01-03T10:00:00Z");
    assert_eq!(t["deployer:ttl"], "2days");

    let protected = up(&moto, dir, "prod", "shared.zip", &["--ttl", "1h"], T0);
    protected.expect_code(2);
    assert!(
        protected
            .stderr
            .contains("protected (`protected_envs`), so it can never be ephemeral"),
        "{}",
        protected.stderr
    );

    up(&moto, dir, "staging", "shared.zip", &[], T0).expect_code(0);
    let convert = up(&moto, dir, "staging", "shared.zip", &["--ttl", "1h"], T0);
    convert.expect_code(2);
    assert!(
        convert
            .stderr
            .contains("making it ephemeral would delete its tables"),
        "{}",
        convert.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn down_of_an_ephemeral_env_removes_only_its_unreferenced_artifacts() {
    let moto = Moto::start();
    let p = project();
    let dir = p.path();
    up(&moto, dir, "pr-5", "shared.zip", &["--ttl", "1h"], T0).expect_code(0);
    up(&moto, dir, "pr-6", "unique.zip", &["--ttl", "1h"], T0).expect_code(0);
    up(&moto, dir, "pr-7", "shared.zip", &["--ttl", "1h"], T0).expect_code(0);
    let config = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = {
        let out = cfn(&moto)
            .await
            .describe_stacks()
            .stack_name("deployer-bootstrap")
            .send()
            .await
            .unwrap();
        out.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some("ArtifactBucket"))
            .unwrap()
            .output_value()
            .unwrap()
            .to_string()
    };
    // Every key in the bucket: artifacts (`.zip`) apart from the records of what was deployed.
    let all_keys = || async {
        let out = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    let keys = || async {
        let mut keys = all_keys().await;
        keys.retain(|k| k.ends_with(".zip"));
        keys
    };
    assert_eq!(keys().await.len(), 2);

    let down = moto.deployer(dir, &["down", "--env", "pr-6", "--yes", "--json"]);
    down.expect_code(0);
    let summary = json_lines(&down.stdout).pop().unwrap();
    assert_eq!(summary["removed_artifacts"].as_array().unwrap().len(), 1);
    let down = moto.deployer(dir, &["down", "--env", "pr-5", "--yes", "--json"]);
    down.expect_code(0);
    let summary = json_lines(&down.stdout).pop().unwrap();
    assert_eq!(summary["removed_artifacts"], serde_json::json!([]));
    assert_eq!(
        summary["kept_artifacts"].as_array().unwrap().len(),
        1,
        "pr-7 still uses the shared artifact"
    );
    let left = keys().await;
    assert_eq!(left.len(), 1, "{left:?}");
    let records: Vec<String> = all_keys()
        .await
        .into_iter()
        .filter(|k| k.starts_with("deployed/"))
        .collect();
    assert_eq!(
        records,
        ["deployed/notes-pr-7.json"],
        "the records of the envs taken down go with them"
    );
    let shared_key = {
        let out = cfn(&moto)
            .await
            .describe_stacks()
            .stack_name("notes-pr-7")
            .send()
            .await
            .unwrap();
        out.stacks()[0]
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some("ApiCodeKey"))
            .unwrap()
            .parameter_value()
            .unwrap()
            .to_string()
    };
    assert_eq!(left, [shared_key]);
}

/// Ephemeral envs run in express mode by default: every CreateStack, UpdateStack and
/// CreateChangeSet of theirs says so; `--no-express` and persistent envs send none.
#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_envs_deploy_in_express_mode_unless_told_otherwise() {
    let moto = Moto::start();
    let dir = project();
    let modes = |moto: &Moto, stack: &str| -> Vec<(String, Option<String>)> {
        moto.requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.action.as_deref(),
                    Some("CreateStack" | "UpdateStack" | "CreateChangeSet")
                ) && r.field("StackName") == Some(stack)
            })
            .map(|r| {
                (
                    r.action.clone().unwrap(),
                    r.field("DeploymentConfig.Mode").map(str::to_string),
                )
            })
            .collect()
    };
    let express = Some("EXPRESS".to_string());
    // `bootstrap --express`: deployer's own stack too.
    moto.reset_recording();
    moto.deployer(dir.path(), &["bootstrap", "--express"])
        .expect_code(0);
    assert_eq!(
        modes(&moto, "deployer-bootstrap"),
        [("CreateStack".into(), express.clone())]
    );
    moto.reset_recording();
    let first = up(
        &moto,
        dir.path(),
        "pr-3",
        "shared.zip",
        &["--ttl", "2h"],
        T0,
    );
    first.expect_code(0);
    assert!(first.stderr.contains("express mode"), "{}", first.stderr);
    assert_eq!(
        modes(&moto, "notes-pr-3"),
        [("CreateStack".into(), express.clone())]
    );
    // A change of code: the change set is express too.
    moto.reset_recording();
    up(
        &moto,
        dir.path(),
        "pr-3",
        "unique.zip",
        &["--ttl", "2h"],
        T0,
    )
    .expect_code(0);
    assert_eq!(
        modes(&moto, "notes-pr-3"),
        [("CreateChangeSet".into(), express)]
    );
    // --no-express: standard.
    moto.reset_recording();
    up(
        &moto,
        dir.path(),
        "pr-3",
        "shared.zip",
        &["--ttl", "2h", "--no-express"],
        T0,
    )
    .expect_code(0);
    assert_eq!(
        modes(&moto, "notes-pr-3"),
        [("CreateChangeSet".into(), None)]
    );
    // A persistent env: standard; with --express: express.
    moto.reset_recording();
    let persistent = up(&moto, dir.path(), "dev", "shared.zip", &[], T0);
    persistent.expect_code(0);
    assert!(
        !persistent.stderr.contains("express mode"),
        "{}",
        persistent.stderr
    );
    assert_eq!(modes(&moto, "notes-dev"), [("CreateStack".into(), None)]);
    // A protected env refuses --express before any call.
    moto.reset_recording();
    let refused = up(&moto, dir.path(), "prod", "shared.zip", &["--express"], T0);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("protected env"),
        "{}",
        refused.stderr
    );
    assert!(moto.requests().is_empty(), "{:?}", moto.requests().len());
    // down: an ephemeral env in express mode, a persistent one in standard mode.
    moto.reset_recording();
    moto.deployer(dir.path(), &["down", "--env", "pr-3", "--yes"])
        .expect_code(0);
    moto.deployer(dir.path(), &["down", "--env", "dev", "--yes"])
        .expect_code(0);
    let deletes: Vec<Option<String>> = moto
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("DeleteStack"))
        .map(|r| r.field("DeploymentConfig.Mode").map(str::to_string))
        .collect();
    assert_eq!(
        deletes,
        [Some("EXPRESS".to_string()), None, None],
        "pr-3, then the shared load balancer it was the last env of, then dev"
    );
}

/// CI pipelines deploy several branches at once: two first `up`s in an account and region
/// without the bootstrap stack both find it missing, and both ask to create it.
#[tokio::test(flavor = "multi_thread")]
async fn two_first_ups_at_once_share_one_bootstrap_stack() {
    use common::proxy::{Fault, FaultKind, Proxy, Rules};
    let moto = Moto::start();
    let dir = project();
    // The first DescribeStacks of each process (the app stack, then the bootstrap stack)
    // answer late, so that both have asked about the bootstrap stack before either creates it.
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            faults: vec![Fault {
                action: Some("DescribeStacks".into()),
                times: 4,
                kind: FaultKind::Delay(std::time::Duration::from_millis(2500)),
            }],
            ..Rules::default()
        },
    );
    let spawn = |env: &str| {
        let artifact = format!("api={}", dir.path().join("unique.zip").display());
        moto.command(assert_cmd::cargo::cargo_bin("deployer"))
            .current_dir(dir.path())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args([
                "up",
                "--env",
                env,
                "--ttl",
                "2h",
                "--artifact",
                &artifact,
                "--yes",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("pr-1"), spawn("pr-2"));
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let creates = proxy
        .recorded()
        .into_iter()
        .filter(|r| {
            let body = String::from_utf8_lossy(&r.body);
            body.contains("Action=CreateStack") && body.contains("StackName=deployer-bootstrap")
        })
        .count();
    assert_eq!(creates, 2, "both asked to create the bootstrap stack");
    assert!(
        outputs.iter().any(|o| String::from_utf8_lossy(&o.stderr)
            .contains("deployer-bootstrap: another deploy is creating it: waiting for that one")),
        "the second waited for the first"
    );
    assert_eq!(
        live_stacks(&moto).await,
        [
            "deployer-bootstrap",
            "notes-pr-1",
            "notes-pr-2",
            "notes-shared-alb"
        ]
    );
}

#[test]
fn env_from_branch_uses_ci_variables_and_makes_a_valid_name() {
    let out = assert_cmd::Command::cargo_bin("deployer")
        .unwrap()
        .current_dir(common::root())
        .env("GITHUB_HEAD_REF", "feature/Login_Page")
        .args(["validate", "-s", "stacks/example.yaml", "--env-from-branch"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "stacks/example.yaml: ok (stack notes-feature-login-page)\n"
    );
}
