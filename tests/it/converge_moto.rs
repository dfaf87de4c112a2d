//! `up`, `plan`, `down`, `status`, `outputs` against moto in server mode, through the real binary
//! and the real AWS SDK.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::moto::Moto;
use sha2::{Digest, Sha256};

/// A working directory with the example spec and an artifact zip.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        let example = std::fs::read_to_string(common::root().join("stacks/example.yaml")).unwrap();
        std::fs::write(dir.path().join("stacks/example.yaml"), example).unwrap();
        let project = Project { dir };
        project.artifact("v1");
        project
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `api.zip` whose bootstrap holds `content`; returns the zip's sha256.
    fn artifact(&self, content: &str) -> [u8; 32] {
        let zip = deployer::build::zip_bootstrap(format!("#!/bin/sh\n# {content}\n").as_bytes());
        std::fs::write(self.path().join("api.zip"), &zip).unwrap();
        Sha256::digest(&zip).into()
    }

    fn edit_spec(&self, from: &str, to: &str) {
        let path = self.path().join("stacks/example.yaml");
        let spec = std::fs::read_to_string(&path).unwrap();
        assert!(spec.contains(from), "{from} not in the spec");
        std::fs::write(path, spec.replacen(from, to, 1)).unwrap();
    }

    fn zip(&self) -> PathBuf {
        self.path().join("api.zip")
    }
}

fn up(moto: &Moto, p: &Project, extra: &[&str]) -> common::moto::Output {
    let artifact = format!("api={}", p.zip().display());
    let mut args = vec!["up", "--artifact", &artifact, "--yes"];
    args.extend_from_slice(extra);
    moto.deployer(p.path(), &args)
}

async fn function_config(
    moto: &Moto,
    name: &str,
) -> aws_sdk_lambda::operation::get_function::GetFunctionOutput {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .unwrap()
}

async fn stack_names(moto: &Moto) -> Vec<(String, String)> {
    let cfn = aws_sdk_cloudformation::Client::new(&moto.sdk_config().await);
    let out = cfn.describe_stacks().send().await.unwrap();
    out.stacks()
        .iter()
        .map(|s| {
            (
                s.stack_name().unwrap().to_string(),
                s.stack_status().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_up_creates_bootstrap_and_app_and_the_second_is_a_no_op() {
    let moto = Moto::start();
    let p = Project::new();
    let first = up(&moto, &p, &[]);
    first.expect_code(0);
    assert!(
        first.stderr.contains("deployer-bootstrap: creating"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("✓ notes-dev: CREATE_COMPLETE"),
        "{}",
        first.stderr
    );
    let stacks = stack_names(&moto).await;
    assert!(
        stacks.contains(&("deployer-bootstrap".into(), "CREATE_COMPLETE".into())),
        "{stacks:?}"
    );
    assert!(
        stacks.contains(&("notes-dev".into(), "CREATE_COMPLETE".into())),
        "{stacks:?}"
    );
    // Url first: the stack's own Outputs (moto computes them for CreateStack).
    let first_line = first.stdout.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with("Url: http://") && first_line.contains(".elb.amazonaws.com"),
        "{}",
        first.stdout
    );
    // A create nobody reviews (`--yes`) goes without a change set.
    assert_eq!(moto.count("CreateStack"), 2, "bootstrap and app");
    assert_eq!(moto.count("CreateChangeSet"), 0);
    assert_eq!(
        moto.count("DescribeLoadBalancers"),
        0,
        "the Url is an output"
    );

    moto.reset_recording();
    let second = up(&moto, &p, &["--json"]);
    second.expect_code(0);
    assert_eq!(
        moto.count("CreateChangeSet"),
        0,
        "a no-op must not create a change set"
    );
    assert_eq!(moto.count("CreateStack") + moto.count("UpdateStack"), 0);
    assert!(
        moto.requests().iter().all(|r| r.method != "PUT"),
        "a no-op must not upload"
    );
    let summary = common::summary(&second.stdout);
    assert_eq!(summary["command"], "up");
    assert_eq!(summary["status"], "no changes");
    assert_eq!(summary["changed"], false);
    assert_eq!(summary["stack"], "notes-dev");
    assert!(
        summary["outputs"]["Url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spec_change_updates_and_a_new_artifact_gets_a_new_key_and_code() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);
    assert_eq!(
        function_config(&moto, "notes-dev-api")
            .await
            .configuration()
            .unwrap()
            .memory_size(),
        Some(256)
    );

    p.edit_spec("memory: 256", "memory: 512");
    moto.reset_recording();
    let update = up(&moto, &p, &[]);
    update.expect_code(0);
    assert!(update.stderr.contains("~ ApiFunction"), "{}", update.stderr);
    assert!(
        update.stderr.contains("UPDATE_COMPLETE"),
        "{}",
        update.stderr
    );
    assert_eq!(moto.count("ExecuteChangeSet"), 1);
    assert_eq!(
        function_config(&moto, "notes-dev-api")
            .await
            .configuration()
            .unwrap()
            .memory_size(),
        Some(512)
    );

    let sha = p.artifact("v2");
    let key = format!("notes/api/{}.zip", deployer::build::hex(&sha));
    let new_code = up(&moto, &p, &[]);
    new_code.expect_code(0);
    assert!(
        new_code.stderr.contains(&format!("{key} (uploaded)")),
        "{}",
        new_code.stderr
    );
    let function = function_config(&moto, "notes-dev-api").await;
    let code_sha = function
        .configuration()
        .unwrap()
        .code_sha256()
        .unwrap()
        .to_string();
    assert_eq!(
        code_sha,
        base64::engine::general_purpose::STANDARD.encode(sha),
        "Lambda runs the new artifact"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_exits_0_without_changes_and_10_with_changes_and_changes_nothing() {
    let moto = Moto::start();
    let p = Project::new();
    let artifact = format!("api={}", p.zip().display());
    // Before anything exists, plan shows a creation.
    moto.deployer(p.path(), &["plan", "--artifact", &artifact])
        .expect_code(10);
    assert!(
        !stack_names(&moto)
            .await
            .iter()
            .any(|(n, _)| n == "notes-dev"),
        "plan must not leave a REVIEW_IN_PROGRESS stack behind"
    );
    up(&moto, &p, &[]).expect_code(0);
    moto.deployer(p.path(), &["plan", "--artifact", &artifact])
        .expect_code(0);
    p.edit_spec("timeout: 10", "timeout: 20");
    moto.reset_recording();
    let plan = moto.deployer(p.path(), &["plan", "--artifact", &artifact, "--json"]);
    plan.expect_code(10);
    assert!(
        !plan.stderr.contains("error:"),
        "pending changes are no error: {}",
        plan.stderr
    );
    assert_eq!(moto.count("ExecuteChangeSet"), 0);
    assert_eq!(
        moto.count("DeleteChangeSet"),
        1,
        "plan cleans up its change set"
    );
    let summary = common::summary(&plan.stdout);
    assert_eq!(summary["command"], "plan");
    assert_eq!(summary["changed"], true);
    assert_eq!(summary["changes"][0]["logical_id"], "ApiFunction");
    assert_eq!(summary["changes"][0]["action"], "modify");
    assert_eq!(
        function_config(&moto, "notes-dev-api")
            .await
            .configuration()
            .unwrap()
            .timeout(),
        Some(10)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn down_deletes_lists_retained_tables_and_is_idempotent() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);
    let down = moto.deployer(p.path(), &["down", "--yes"]);
    down.expect_code(0);
    assert!(
        down.stderr
            .contains("retained and keep their data: notes-dev-NotesTable-"),
        "{}",
        down.stderr
    );
    assert!(
        !stack_names(&moto)
            .await
            .iter()
            .any(|(n, _)| n == "notes-dev")
    );
    let again = moto.deployer(p.path(), &["down", "--yes"]);
    again.expect_code(0);
    assert!(
        again.stderr.contains("nothing to delete"),
        "{}",
        again.stderr
    );
    // deployer itself never deletes a table. (Whether the table survives is CloudFormation's
    // part: moto 5.2.5 honours only `DeletionPolicy: Retain`, not `RetainExceptOnCreate`, so it
    // cannot show that here; the policy is asserted in tests/it/render.rs.)
    let dynamodb_tables = moto.count("DynamoDB_20120810.DeleteTable");
    assert_eq!(dynamodb_tables, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_envs_get_termination_protection_and_down_refuses() {
    let moto = Moto::start();
    let p = Project::new();
    let prod = up(&moto, &p, &["--env", "prod"]);
    prod.expect_code(0);
    // CreateStack turns it on itself: no UpdateTerminationProtection, which moto 5.2.5 does not
    // implement (HTTP 500).
    assert_eq!(moto.count("UpdateTerminationProtection"), 0);
    assert!(
        !prod.stderr.contains("termination protection"),
        "{}",
        prod.stderr
    );
    let described = aws_sdk_cloudformation::Client::new(&moto.sdk_config().await)
        .describe_stacks()
        .stack_name("notes-prod")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.stacks()[0].enable_termination_protection(),
        Some(true)
    );
    let down = moto.deployer(p.path(), &["down", "--env", "prod", "--yes"]);
    down.expect_code(2);
    assert!(
        down.stderr.contains("protected environment"),
        "{}",
        down.stderr
    );
    assert!(
        stack_names(&moto)
            .await
            .iter()
            .any(|(n, _)| n == "notes-prod")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_without_yes_refuses_and_leaves_nothing_behind() {
    let moto = Moto::start();
    let p = Project::new();
    let artifact = format!("api={}", p.zip().display());
    let out = moto.deployer(p.path(), &["up", "--artifact", &artifact]);
    out.expect_code(2);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert_eq!(moto.count("ExecuteChangeSet"), 0);
    assert_eq!(moto.count("DeleteChangeSet"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_outputs_read_the_stack() {
    let moto = Moto::start();
    let p = Project::new();
    let missing = moto.deployer(p.path(), &["status", "--json"]);
    missing.expect_code(0);
    let missing = common::records(&missing.stdout);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["type"], "stack");
    assert_eq!(missing[0]["stack"], "notes-dev");
    assert_eq!(missing[0]["status"], serde_json::Value::Null);
    moto.deployer(p.path(), &["outputs"]).expect_code(1);
    up(&moto, &p, &[]).expect_code(0);
    let status = moto.deployer(p.path(), &["status"]);
    status.expect_code(0);
    assert_eq!(status.stdout.trim(), "notes-dev: CREATE_COMPLETE");
    let outputs = moto.deployer(p.path(), &["outputs", "--json"]);
    outputs.expect_code(0);
    let outputs = common::records(&outputs.stdout).remove(0);
    assert_eq!(outputs["type"], "outputs");
    let outputs = &outputs["outputs"];
    assert!(
        outputs["NotesTableName"]
            .as_str()
            .unwrap()
            .starts_with("notes-dev-NotesTable-")
    );
    assert_eq!(
        outputs["ApiFunctionArn"],
        format!(
            "arn:aws:lambda:us-east-1:{}:function:notes-dev-api",
            moto.account
        )
    );
}

#[test]
fn missing_credentials_exit_3_with_one_sentence() {
    let moto = Moto::start();
    let p = Project::new();
    let artifact = format!("api={}", p.zip().display());
    let out = moto
        .command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(p.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["up", "--artifact", &artifact, "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: no usable AWS credentials (tried: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ),
        "{stderr}"
    );
    assert!(
        moto.requests().is_empty(),
        "nothing may reach AWS without credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_key_schema_change_is_refused_unless_data_loss_is_allowed() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);
    p.edit_spec(
        "sort_key: { name: sk, type: S }",
        "sort_key: { name: created_at, type: S }",
    );

    let artifact = format!("api={}", p.zip().display());
    let plan = moto.deployer(p.path(), &["plan", "--artifact", &artifact]);
    plan.expect_code(10);
    assert!(
        plan.stderr.contains("`up` would refuse these changes"),
        "{}",
        plan.stderr
    );
    // moto reports no `Replacement`; deployer infers it, and the list says so as its legend does.
    assert!(plan.stderr.contains("! NotesTable"), "{}", plan.stderr);

    moto.reset_recording();
    let refused = up(&moto, &p, &[]);
    refused.expect_code(4);
    assert!(
        refused.stderr.contains(
            "NotesTable (AWS::DynamoDB::Table): replaced because `KeySchema` changes: the new one starts empty"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(moto.count("ExecuteChangeSet"), 0, "nothing is executed");
    assert_eq!(
        moto.count("DeleteChangeSet"),
        1,
        "the refused change set is cleaned up"
    );

    let allowed = up(&moto, &p, &["--allow-data-loss"]);
    allowed.expect_code(0);
    assert!(
        allowed
            .stderr
            .contains("warning: --allow-data-loss: going ahead"),
        "{}",
        allowed.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_prints_the_function_log_events() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config().await);
    let group = "/aws/lambda/notes-dev-api";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("s1")
        .send()
        .await
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (i, message) in [
        "{\"level\":\"INFO\",\"msg\":\"started\"}",
        "{\"level\":\"INFO\",\"msg\":\"GET /notes 200\"}",
    ]
    .iter()
    .enumerate()
    {
        logs.put_log_events()
            .log_group_name(group)
            .log_stream_name("s1")
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now_ms + i as i64)
                    .message(*message)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let out = moto.deployer(p.path(), &["logs", "--since", "10m"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].ends_with(" {\"level\":\"INFO\",\"msg\":\"started\"}"),
        "{}",
        out.stdout
    );
    let json = moto.deployer(p.path(), &["logs", "--json"]);
    json.expect_code(0);
    let first = common::records(&json.stdout).remove(0);
    assert_eq!(first["type"], "log");
    assert_eq!(first["function"], "api");
    assert!(
        deployer::converge::ephemeral::parse_time(first["timestamp"].as_str().unwrap()).is_some(),
        "{first}"
    );
    let unknown = moto.deployer(p.path(), &["logs", "--fn", "nope"]);
    unknown.expect_code(2);

    // --follow prints what exists, then what arrives, until Ctrl-C (exit 0: the user's way out).
    let mut follow = moto
        .command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(p.path())
        .args(["logs", "--since", "10m", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, printed) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || {
        printed
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("logs --follow printed nothing within 30 s")
    };
    assert!(next_line().ends_with("\"msg\":\"started\"}"));
    assert!(next_line().ends_with("\"msg\":\"GET /notes 200\"}"));
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("s1")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now_ms + 1000)
                .message("{\"level\":\"INFO\",\"msg\":\"later\"}")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let later = next_line();
    assert!(later.ends_with("\"msg\":\"later\"}"), "{later}");
    // Two more polls (every 2 s) find the same three events and print none of them again.
    let again = printed.recv_timeout(std::time::Duration::from_secs(5));
    assert!(again.is_err(), "an event is printed once: {again:?}");
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // Bounded: a Ctrl-C that `--follow` missed must fail this test, not hang the suite.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            follow.kill().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "Ctrl-C ends --follow cleanly"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_shows_each_aws_call_and_never_the_secret() {
    let moto = Moto::start();
    let p = Project::new();
    let out = up(&moto, &p, &["-v"]);
    out.expect_code(0); // expect_code also asserts that the secret key appears nowhere
    assert!(
        out.stderr.contains("aws STS.GetCallerIdentity ok"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("aws CloudFormation.CreateStack ok"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("aws S3.PutObject ok"), "{}", out.stderr);
    assert!(!out.stdout.contains("aws "), "calls go to stderr only");
}

/// Every AWS call `up` made, as IAM actions (`service:Operation`), from `-v`'s lines.
fn actions_called(stderr: &str) -> std::collections::BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("aws "))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|call| {
            let (service, operation) = call.split_once('.')?;
            let prefix = match service {
                "CloudFormation" => "cloudformation",
                "S3" => "s3",
                "DynamoDB" => "dynamodb",
                "STS" => "sts",
                "IAM" => "iam",
                "EC2" => "ec2",
                "Lambda" => "lambda",
                "CloudWatchLogs" => "logs",
                s if s.starts_with("ElasticLoadBalancing") => "elasticloadbalancing",
                other => panic!("no IAM prefix known for {other}"),
            };
            // S3 authorizes HeadObject as GetObject, and a listing as ListBucket.
            let operation = match operation {
                "HeadObject" => "GetObject",
                "ListObjectsV2" => "ListBucket",
                op => op,
            };
            Some(format!("{prefix}:{operation}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_up_makes_itself_is_in_the_list_the_preflight_checks() {
    use deployer::converge::preflight::{OWN_ACTIONS, OWN_TYPE_ACTIONS};
    // Calls the pre-flight does not ask about, and why.
    const NOT_CHECKED: &[&str] = &[
        "sts:GetCallerIdentity",         // needs no permission
        "iam:GetRole",                   // the pre-flight's own: without it, the check is skipped
        "iam:SimulatePrincipalPolicy",   // likewise
        "ec2:DescribeAvailabilityZones", // the bootstrap stack's first create, before the check
    ];
    let moto = Moto::start();
    let p = Project::new();
    let first = up(&moto, &p, &["-v"]);
    first.expect_code(0);
    // An update that adds an index and enables TTL: the table is read before and between.
    p.edit_spec("memory: 256", "memory: 512");
    p.edit_spec(
        "    indexes:\n",
        "    indexes:\n      - name: by_title\n        partition_key: { name: title, type: S }\n",
    );
    let update = up(&moto, &p, &["-v"]);
    update.expect_code(0);
    let mut called = actions_called(&first.stderr);
    called.extend(actions_called(&update.stderr));
    for expected in [
        "cloudformation:CreateStack",
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "s3:PutObject",
        "dynamodb:DescribeTable",
    ] {
        assert!(called.contains(expected), "{expected} not in {called:?}");
    }
    let own: Vec<&str> = OWN_ACTIONS
        .iter()
        .copied()
        .chain(OWN_TYPE_ACTIONS.iter().flat_map(|(_, a)| a.iter().copied()))
        .collect();
    let unlisted: Vec<&String> = called
        .iter()
        .filter(|a| !own.contains(&a.as_str()) && !NOT_CHECKED.contains(&a.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "calls `up` makes that the pre-flight does not check: {unlisted:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_iam_denies_is_stopped_before_any_change_set() {
    use common::proxy::{IamAnswers, Proxy, Rules};
    let moto = Moto::start();
    let p = Project::new();
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            iam: Some(IamAnswers {
                caller_arn: "arn:aws:sts::123456789012:assumed-role/ci-deploy/github-run-7".into(),
                denied: vec!["iam:PassRole".into()],
                policy: None,
                page_size: None,
            }),
            ..Rules::default()
        },
    );
    let artifact = format!("api={}", p.zip().display());
    let env = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let args = ["up", "--artifact", &artifact, "--yes"];
    let denied = moto.deployer_with(p.path(), &args, &env);
    denied.expect_code(5);
    assert!(
        denied
            .stderr
            .contains("arn:aws:iam::123456789012:role/ci-deploy lacks 1 permission")
            && denied.stderr.contains("iam:PassRole"),
        "{}",
        denied.stderr
    );
    assert_eq!(
        proxy.count("CreateChangeSet") + proxy.count("CreateStack"),
        1,
        "nothing was sent for the app stack (the one is the bootstrap stack)"
    );
    let mut principals = proxy.simulated();
    principals.dedup();
    assert_eq!(
        principals,
        ["arn:aws:iam::123456789012:role/ci-deploy"],
        "the assumed role is simulated as its role"
    );
    // With the check skipped, the same caller deploys (moto does not enforce IAM).
    let simulations = proxy.count("SimulatePrincipalPolicy");
    let mut unchecked = args.to_vec();
    unchecked.push("--skip-permission-check");
    moto.deployer_with(p.path(), &unchecked, &env)
        .expect_code(0);
    assert_eq!(
        proxy.count("SimulatePrincipalPolicy"),
        simulations,
        "no second simulation"
    );
    // Against moto itself, whose caller (`arn:aws:sts::...:user/moto`) IAM could not simulate:
    // one line, and the update goes on.
    p.edit_spec("memory: 256", "memory: 512");
    let plain = up(&moto, &p, &[]);
    plain.expect_code(0);
    assert!(
        plain.stderr.contains("warning: permissions not checked:"),
        "{}",
        plain.stderr
    );
    // The first deploy created the stack directly; the update is the one change set.
    assert_eq!(moto.count("ExecuteChangeSet"), 1);
}

/// The requests that changed the account, other than making and deleting change sets (what
/// `plan` may do): query and JSON calls by their action, S3 by its method.
fn writes_other_than_change_sets(moto: &Moto) -> Vec<String> {
    moto.requests()
        .into_iter()
        .filter_map(|r| match &r.action {
            Some(action) => {
                let op = action.rsplit('.').next().unwrap_or(action);
                let reads = ["Describe", "Get", "List", "Simulate"];
                // A drift detection reads each resource; it changes none.
                let allowed = reads.iter().any(|p| op.starts_with(p))
                    || ["CreateChangeSet", "DeleteChangeSet", "DetectStackDrift"].contains(&op);
                (!allowed).then(|| op.to_string())
            }
            None => (!["GET", "HEAD"].contains(&r.method.as_str()))
                .then(|| format!("{} {}", r.method, r.url)),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_writes_nothing_before_or_after_the_first_up() {
    let moto = Moto::start();
    let p = Project::new();
    let artifact = format!("api={}", p.zip().display());
    let plan = ["plan", "--artifact", artifact.as_str(), "--json"];
    // No bootstrap stack: what `up` would create, both stacks, and nothing created.
    let first = moto.deployer(p.path(), &plan);
    first.expect_code(10);
    assert_eq!(writes_other_than_change_sets(&moto), Vec::<String>::new());
    assert_eq!(
        moto.count("CreateChangeSet"),
        0,
        "a new stack is listed from its template"
    );
    let records = common::records(&first.stdout);
    let listed: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "changes")
        .map(|r| r["stack"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["deployer-bootstrap", "notes-dev"]);
    assert!(
        records.iter().any(|r| r["type"] == "step"
            && r["message"]
                .as_str()
                .unwrap()
                .contains("deployer-bootstrap does not exist")),
        "{}",
        first.stdout
    );
    // Deployed; then new code and more memory: a change set, created and deleted, and neither
    // the new artifact nor anything else written.
    up(&moto, &p, &[]).expect_code(0);
    p.artifact("v2");
    p.edit_spec("memory: 256", "memory: 512");
    moto.reset_recording();
    let second = moto.deployer(p.path(), &plan);
    second.expect_code(10);
    assert_eq!(writes_other_than_change_sets(&moto), Vec::<String>::new());
    // moto has no drift detection: one warning, and the plan stands.
    assert!(
        second.stdout.contains("notes-dev: drift not detected"),
        "{}",
        second.stdout
    );
    assert_eq!(moto.count("CreateChangeSet"), 1);
    assert_eq!(moto.count("DeleteChangeSet"), 1);
    // `up` then uploads the artifact plan did not.
    moto.reset_recording();
    up(&moto, &p, &[]).expect_code(0);
    assert!(
        moto.requests()
            .iter()
            .any(|r| r.method == "PUT" && r.url.contains(".zip?")),
        "up uploads the new artifact"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn adopt_retained_sends_an_import_change_set_of_the_tables_alone() {
    let moto = Moto::start();
    let p = Project::new();
    let table = retained_notes_table(&moto).await;
    // --adopt-retained: the IMPORT change set, as the SDK sends it. moto runs it as if it
    // created the table anew (it has no imports), so what an import does with the data is
    // tested on the scripted fake.
    moto.reset_recording();
    up(&moto, &p, &["--adopt-retained"]).expect_code(0);
    let import = moto
        .requests()
        .into_iter()
        .find(|r| r.action.as_deref() == Some("CreateChangeSet"))
        .expect("an import change set was asked for");
    assert_eq!(import.field("ChangeSetType"), Some("IMPORT"));
    assert_eq!(
        import.field("ResourcesToImport.member.1.LogicalResourceId"),
        Some("NotesTable")
    );
    assert_eq!(
        import.field("ResourcesToImport.member.1.ResourceType"),
        Some("AWS::DynamoDB::Table")
    );
    assert_eq!(
        import.field("ResourcesToImport.member.1.ResourceIdentifier.entry.1.key"),
        Some("TableName")
    );
    assert_eq!(
        import.field("ResourcesToImport.member.1.ResourceIdentifier.entry.1.value"),
        Some(table)
    );
    let body: serde_json::Value =
        serde_json::from_str(import.field("TemplateBody").unwrap()).unwrap();
    assert_eq!(
        body["Resources"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["NotesTable"]
    );
    assert_eq!(body["Resources"]["NotesTable"]["DeletionPolicy"], "Retain");
}

/// The table an earlier `down` of notes-dev leaves on AWS (RetainExceptOnCreate), with one
/// item. moto deletes such a table with its stack (it keeps only `Retain`), so it is made as
/// AWS leaves it: the name CloudFormation gave it, the tags deployer put on it.
async fn retained_notes_table(moto: &Moto) -> &'static str {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType, Tag,
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = "notes-dev-NotesTable-1OLD2TABLE3";
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    dynamodb
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .tags(tag("deployer:app", "notes"))
        .tags(tag("deployer:env", "dev"))
        .tags(tag("deployer:table", "notes"))
        .send()
        .await
        .unwrap();
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("n1".into()))
        .item("sk", AttributeValue::S("v".into()))
        .send()
        .await
        .unwrap();

    table
}

#[tokio::test(flavor = "multi_thread")]
async fn after_down_up_finds_the_retained_table_and_ls_lists_it() {
    let moto = Moto::start();
    let p = Project::new();
    let table = retained_notes_table(&moto).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);

    // The env has no stack: its table is listed, with its size and storage cost.
    let listed = moto.deployer(p.path(), &["ls", "--retained", "--json"]);
    listed.expect_code(0);
    let records = common::records(&listed.stdout);
    assert_eq!(records.len(), 1, "{}", listed.stdout);
    assert_eq!(records[0]["type"], "retained_table");
    assert_eq!(records[0]["table"], table);
    assert_eq!(
        (records[0]["app"].as_str(), records[0]["env"].as_str()),
        (Some("notes"), Some("dev"))
    );
    assert_eq!(records[0]["spec_table"], "notes");
    assert!(
        records[0]["monthly_storage_usd"].is_number(),
        "{}",
        records[0]
    );

    // A new `up` of the env: nobody to ask, no choice made, so it stops before any change.
    moto.reset_recording();
    let refused = up(&moto, &p, &[]);
    refused.expect_code(2);
    for part in [table, "--adopt-retained", "--fresh-tables"] {
        assert!(refused.stderr.contains(part), "{part}: {}", refused.stderr);
    }
    let app_stack_calls = moto
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(r.action.as_deref(), Some("CreateStack" | "CreateChangeSet"))
                && r.field("StackName") == Some("notes-dev")
        })
        .count();
    assert_eq!(app_stack_calls, 0, "the bootstrap stack alone was created");
    // plan says the same as a warning, and changes nothing.
    let planned = moto.deployer(
        p.path(),
        &["plan", "--artifact", &format!("api={}", p.zip().display())],
    );
    planned.expect_code(10);
    assert!(
        planned.stderr.contains("`up` asks what to do with them"),
        "{}",
        planned.stderr
    );
    // --fresh-tables: a new, empty table beside the retained one, which keeps its item.
    up(&moto, &p, &["--fresh-tables"]).expect_code(0);
    let kept = dynamodb.scan().table_name(table).send().await.unwrap();
    assert_eq!(kept.count(), 1, "the retained table is untouched");
    let listed = moto.deployer(p.path(), &["ls", "--retained", "--json"]);
    assert!(
        common::records(&listed.stdout).is_empty(),
        "the env has a stack again: {}",
        listed.stdout
    );
}

/// The stack tags a CreateStack or CreateChangeSet request carries, by key.
fn request_tags(request: &common::moto::Request) -> BTreeMap<String, String> {
    (1..)
        .map_while(|i| {
            let key = request.field(&format!("Tags.member.{i}.Key"))?;
            let value = request.field(&format!("Tags.member.{i}.Value"))?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_sends_the_same_stack_tags_and_changes_only_what_changed() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);
    let created = moto
        .requests()
        .into_iter()
        .find(|r| {
            r.action.as_deref() == Some("CreateStack") && r.field("StackName") == Some("notes-dev")
        })
        .expect("the first up creates the stack");
    let first = request_tags(&created);
    assert!(
        !first.is_empty() && !first.contains_key("deployer:digest"),
        "{first:?}"
    );
    // One function's memory: the change set carries the very same tags (stack tags propagate
    // to every resource, so a changed tag would modify them all), and names only the function.
    p.edit_spec("memory: 256", "memory: 512");
    moto.reset_recording();
    let planned = moto.deployer(
        p.path(),
        &[
            "plan",
            "--artifact",
            &format!("api={}", p.zip().display()),
            "--json",
        ],
    );
    planned.expect_code(10);
    let change_sets: Vec<_> = moto
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("CreateChangeSet"))
        .collect();
    assert_eq!(change_sets.len(), 1);
    assert_eq!(
        request_tags(&change_sets[0]),
        first,
        "the stack tags do not change"
    );
    let summary = common::records(&planned.stdout)
        .into_iter()
        .find(|r| r["type"] == "summary")
        .unwrap();
    let changed: Vec<&str> = summary["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logical_id"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["ApiFunction"], "{summary}");
    // Applied, then recorded in the bucket: the same spec again is a no-op without a change set.
    up(&moto, &p, &[]).expect_code(0);
    moto.reset_recording();
    let again = up(&moto, &p, &[]);
    again.expect_code(0);
    assert!(again.stderr.contains("no changes"), "{}", again.stderr);
    assert_eq!(moto.count("CreateChangeSet") + moto.count("UpdateStack"), 0);
    // A change of the spec's tags alone: the stack gets them (on AWS through the change set,
    // which lists the resources they propagate to; moto sees no change there, so by an
    // UpdateStack of the tags alone), then the next `up` is a no-op again.
    p.edit_spec("tags: { team: platform }", "tags: { team: data }");
    moto.reset_recording();
    up(&moto, &p, &[]).expect_code(0);
    assert_eq!(
        moto.count("ExecuteChangeSet") + moto.count("UpdateStack"),
        1
    );
    let tags: BTreeMap<String, String> =
        aws_sdk_cloudformation::Client::new(&moto.sdk_config().await)
            .describe_stacks()
            .stack_name("notes-dev")
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect();
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("data"),
        "{tags:?}"
    );
    assert!(!tags.contains_key("deployer:digest"), "{tags:?}");
    moto.reset_recording();
    let again = up(&moto, &p, &[]);
    assert!(again.stderr.contains("no changes"), "{}", again.stderr);
    assert_eq!(moto.count("CreateChangeSet"), 0);
}

/// A least-privilege CI role as teams write them: every statement scoped to the app's resources
/// (`notes-*`), the artifact bucket or the region, PassRole only to Lambda, IAM only through
/// CloudFormation. `without` leaves one action out of the Lambda statement.
fn scoped_ci_policy(without: Option<&str>) -> serde_json::Value {
    let lambda: Vec<&str> = [
        "lambda:AddPermission",
        "lambda:CreateFunction",
        "lambda:DeleteFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:PutFunctionConcurrency",
        "lambda:RemovePermission",
        "lambda:TagResource",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
    ]
    .into_iter()
    .filter(|a| Some(*a) != without)
    .collect();
    let account = "123456789012";
    serde_json::json!({ "Version": "2012-10-17", "Statement": [
        { "Effect": "Allow", "Action": "cloudformation:*",
          "Resource": format!("arn:aws:cloudformation:us-east-1:{account}:stack/notes-*/*") },
        { "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
          "Resource": ["arn:aws:s3:::deployer-bootstrap-*", "arn:aws:s3:::deployer-bootstrap-*/*"] },
        { "Effect": "Allow", "Action": "iam:PassRole",
          "Resource": format!("arn:aws:iam::{account}:role/notes-*"),
          "Condition": { "StringEquals": { "iam:PassedToService": "lambda.amazonaws.com" } } },
        { "Effect": "Allow", "Action": ["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy", "iam:TagRole", "iam:DeleteRole", "iam:DeleteRolePolicy"],
          "Resource": format!("arn:aws:iam::{account}:role/notes-*"),
          "Condition": { "ForAnyValue:StringEquals": { "aws:CalledVia": "cloudformation.amazonaws.com" } } },
        { "Effect": "Allow", "Action": lambda,
          "Resource": format!("arn:aws:lambda:us-east-1:{account}:function:notes-*") },
        { "Effect": "Allow", "Action": "logs:*",
          "Resource": format!("arn:aws:logs:us-east-1:{account}:log-group:/aws/lambda/notes-*") },
        { "Effect": "Allow", "Action": "dynamodb:*",
          "Resource": format!("arn:aws:dynamodb:us-east-1:{account}:table/notes-*") },
        // ListTables acts on no table: IAM wants `*` for it.
        { "Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*" },
        { "Effect": "Allow", "Action": ["ec2:*", "elasticloadbalancing:*", "cloudwatch:*", "sns:*"], "Resource": "*",
          "Condition": { "StringEquals": { "aws:RequestedRegion": "us-east-1" } } },
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_ci_role_passes_the_preflight_and_a_missing_action_is_named() {
    use common::proxy::{IamAnswers, Proxy, Rules};
    let moto = Moto::start();
    let p = Project::new();
    let artifact = format!("api={}", p.zip().display());
    let args = ["up", "--artifact", &artifact, "--yes"];
    // `up` as the caller `policy` makes it, IAM answering in pages of two (the actions of every
    // page count); the proxy, for what it recorded.
    let up_as = |policy: serde_json::Value| {
        let proxy = Proxy::start(
            &moto.endpoint,
            Rules {
                iam: Some(IamAnswers {
                    caller_arn: "arn:aws:sts::123456789012:assumed-role/ci-deploy/run-9".into(),
                    denied: Vec::new(),
                    policy: Some(policy),
                    page_size: Some(2),
                }),
                ..Rules::default()
            },
        );
        let env = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
        let out = moto.deployer_with(p.path(), &args, &env);
        (out, proxy)
    };
    // Without lambda:UpdateFunctionCode: refused, naming exactly that action.
    let (denied, _) = up_as(scoped_ci_policy(Some("lambda:UpdateFunctionCode")));
    denied.expect_code(5);
    assert!(
        denied.stderr.contains("lacks 1 permission")
            && denied.stderr.contains(": lambda:UpdateFunctionCode\n"),
        "{}",
        denied.stderr
    );
    // The scoped policy itself: allowed, and the stack is created.
    let (allowed, proxy) = up_as(scoped_ci_policy(None));
    allowed.expect_code(0);
    assert!(
        !allowed.stderr.contains("could not be confirmed"),
        "every action of this spec is confirmed: {}",
        allowed.stderr
    );
    // Every simulation named a resource and the region it goes to, as the real calls do.
    let simulations: Vec<String> = proxy
        .recorded()
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|b| b.contains("Action=SimulatePrincipalPolicy"))
        .collect();
    assert!(!simulations.is_empty());
    for body in &simulations {
        assert!(body.contains("ResourceArns.member.1="), "{body}");
        assert!(body.contains("aws%3ARequestedRegion"), "{body}");
    }
    // A condition on a key the simulation is not given (a resource tag): a warning naming the
    // actions, and the deploy goes on.
    let mut tagged = scoped_ci_policy(None);
    tagged["Statement"][4]["Condition"] =
        serde_json::json!({ "StringEquals": { "aws:ResourceTag/app": "notes" } });
    p.edit_spec("memory: 256", "memory: 512");
    let (warned, _) = up_as(tagged);
    warned.expect_code(0);
    assert!(
        warned.stderr.contains("permissions could not be confirmed")
            && warned.stderr.contains("lambda:UpdateFunctionConfiguration"),
        "{}",
        warned.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_of_another_region_is_refused_before_anything_is_sent() {
    let moto = Moto::start();
    let p = Project::new();
    // No `region` in the spec, so only `up` knows the stack's region (us-east-1 here).
    p.edit_spec(
        "  idle_timeout: 60\n",
        "  idle_timeout: 60\n  certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/abc\n",
    );
    p.edit_spec(
        "\ntables:\n",
        "\nalarms:\n  sns_topic_arn: arn:aws:sns:eu-west-1:123456789012:pager\n\ntables:\n",
    );
    let refused = up(&moto, &p, &[]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("certificate_arn is in eu-west-1, but the stack deploys to us-east-1")
            && refused.stderr.contains(
                "sns_topic_arn is in eu-west-1, but the stack deploys to us-east-1: CloudWatch alarms notify SNS topics of their own region only"
            ),
        "{}",
        refused.stderr
    );
    assert_eq!(moto.count("CreateStack") + moto.count("CreateChangeSet"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_over_the_resource_limit_never_reaches_aws() {
    let moto = Moto::start();
    let spec = common::root().join("tests/bad-specs/40-too-many-resources.yaml");
    let out = moto.deployer(
        &common::root(),
        &["up", "--yes", "-s", spec.to_str().unwrap()],
    );
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("over CloudFormation's limit of 500 per stack"),
        "{}",
        out.stderr
    );
    assert!(moto.requests().is_empty(), "{:?}", moto.requests());
}

#[path = "converge_moto/hotswap.rs"]
mod hotswap;
#[path = "converge_moto/transitions.rs"]
mod transitions;
#[path = "converge_moto/verify.rs"]
mod verify;

/// EC2 and IAM are called over the query protocol by hand (src/aws/query.rs), not by SDK crates:
/// checked here against moto's own EC2 answers, signed as the SDK would sign them.
#[tokio::test(flavor = "multi_thread")]
async fn the_hand_signed_ec2_and_iam_calls_read_real_answers() {
    use deployer::converge::cloud::Cloud;
    let moto = Moto::start();
    let p = Project::new();
    let first = up(&moto, &p, &["-v"]);
    first.expect_code(0);
    assert!(
        first
            .stderr
            .contains("aws EC2.DescribeAvailabilityZones ok"),
        "{}",
        first.stderr
    );
    let aws = deployer::aws::Aws::from_config(moto.sdk_config().await, None);
    let cloud = aws.cloud();
    let zones = cloud.availability_zones().await.unwrap();
    assert!(zones.len() >= 2, "{zones:?}");
    assert!(zones.windows(2).all(|w| w[0] < w[1]), "sorted: {zones:?}");
    assert!(
        zones.iter().all(|z| z.starts_with("us-east-1")),
        "{zones:?}"
    );
    // The bootstrap's subnets are in the zones it was given as parameters.
    let boot = cloud.stack("deployer-bootstrap").await.unwrap().unwrap();
    let subnets: Vec<String> = cloud
        .resources("deployer-bootstrap")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.resource_type == "AWS::EC2::Subnet")
        .map(|r| r.physical_id)
        .collect();
    assert_eq!(subnets.len(), 2);
    let expected: Vec<String> = ["AvailabilityZone1", "AvailabilityZone2"]
        .iter()
        .map(|k| boot.parameters[*k].clone())
        .collect();
    let mut found = cloud.subnet_zones(&subnets).await.unwrap();
    let mut wanted = expected.clone();
    found.sort();
    wanted.sort();
    assert_eq!(found, wanted);
    let missing = cloud
        .subnet_zones(&["subnet-00000000000000000".to_string()])
        .await
        .unwrap_err();
    assert!(missing.code.is_some(), "{missing:?}");
    // moto implements no SimulatePrincipalPolicy: an error with AWS's shape, not a panic.
    let simulated = cloud
        .simulate(
            "arn:aws:iam::123456789012:role/x",
            &deployer::converge::preflight::Probe {
                actions: vec!["s3:GetObject".into()],
                resource: "*".into(),
                context: Vec::new(),
            },
        )
        .await;
    assert!(simulated.is_err(), "{simulated:?}");
}
