//! Fault injection: `up` and `down` through a proxy that throttles, fails, resets connections and
//! holds answers past the SDK's timeout. Nothing breaks, nothing runs twice, nothing is corrupted,
//! and the result equals a fault-free run's.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::moto::Moto;
use common::proxy::{Fault, FaultKind, Proxy, Rules};
use sha2::{Digest, Sha256};

fn project() -> tempfile::TempDir {
    common::project_with(&[("api.zip", "the artifact under test")])
}

fn deployer(moto: &Moto, endpoint: &str, dir: &Path, args: &[&str]) -> common::moto::Output {
    let env = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_MAX_ATTEMPTS", "6"),
        ("DEPLOYER_ATTEMPT_TIMEOUT_MS", "1500"),
    ];
    moto.deployer_with(dir, args, &env)
}

/// What a finished deployment looks like, independent of random physical names.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: String,
    template: String,
    resources: Vec<String>,
    code_sha256: String,
    memory: i32,
}

async fn outcome(moto: &Moto) -> Outcome {
    let config = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let stack = cfn
        .describe_stacks()
        .stack_name("notes-dev")
        .send()
        .await
        .unwrap();
    let template = cfn
        .get_template()
        .stack_name("notes-dev")
        .send()
        .await
        .unwrap();
    let resources = cfn
        .describe_stack_resources()
        .stack_name("notes-dev")
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| r.logical_resource_id().map(str::to_string))
        .collect();
    ids.sort();
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = lambda
        .get_function()
        .function_name("notes-dev-api")
        .send()
        .await
        .unwrap();
    let f = function.configuration().unwrap();
    Outcome {
        status: stack.stacks()[0]
            .stack_status()
            .unwrap()
            .as_str()
            .to_string(),
        template: template.template_body().unwrap().to_string(),
        resources: ids,
        code_sha256: f.code_sha256().unwrap().to_string(),
        memory: f.memory_size().unwrap(),
    }
}

/// Every artifact in the bucket hashes to the sha256 in its key.
async fn artifacts_intact(moto: &Moto) -> usize {
    let config = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let buckets = s3.list_buckets().send().await.unwrap();
    let bucket = buckets
        .buckets()
        .iter()
        .find_map(|b| b.name().filter(|n| n.contains("artifactbucket")))
        .unwrap()
        .to_string();
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let mut checked = 0;
    for object in objects.contents() {
        let key = object.key().unwrap();
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        if key.starts_with("deployed/") {
            // What was deployed to a stack: whole JSON, never a torn write.
            let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(
                record["digest"].is_string() && record["stack_id"].is_string(),
                "{key}"
            );
            continue;
        }
        let sha = deployer::build::hex(&Sha256::digest(&body));
        assert!(
            key.ends_with(&format!("/{sha}.zip")),
            "{key} holds bytes hashing to {sha}"
        );
        checked += 1;
    }
    checked
}

fn fault(action: Option<&str>, times: usize, kind: FaultKind) -> Fault {
    Fault {
        action: action.map(str::to_string),
        times,
        kind,
    }
}

async fn fault_free() -> Outcome {
    let moto = Moto::start();
    let dir = project();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    moto.deployer(dir.path(), &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    outcome(&moto).await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_down_survive_every_fault_class() {
    let expected = fault_free().await;
    let hold = Duration::from_millis(3000); // past the 1.5 s attempt timeout
    let scenarios: Vec<(&str, Vec<Fault>)> = vec![
        (
            "throttle the first requests of every kind",
            vec![fault(None, 4, FaultKind::Throttle)],
        ),
        (
            "throttle CloudFormation calls",
            vec![
                fault(Some("CreateChangeSet"), 2, FaultKind::Throttle),
                fault(Some("DescribeChangeSet"), 2, FaultKind::Throttle),
                fault(Some("ExecuteChangeSet"), 2, FaultKind::Throttle),
                fault(Some("DescribeStackEvents"), 2, FaultKind::Throttle),
            ],
        ),
        (
            "503 from STS, CloudFormation and S3",
            vec![
                fault(Some("GetCallerIdentity"), 1, FaultKind::Unavailable),
                fault(Some("DescribeStacks"), 2, FaultKind::Unavailable),
                fault(Some("PUT "), 2, FaultKind::Unavailable),
            ],
        ),
        (
            "connections reset",
            vec![
                fault(Some("HEAD "), 1, FaultKind::Reset),
                fault(Some("CreateStack"), 1, FaultKind::Reset),
                fault(Some("ExecuteChangeSet"), 1, FaultKind::Reset),
            ],
        ),
        (
            "CreateStack answered too late",
            // Three hits: the bootstrap's create, its retry, then the app's create.
            vec![fault(Some("CreateStack"), 3, FaultKind::Delay(hold))],
        ),
        (
            "the upload answered too late",
            vec![fault(Some("PUT "), 1, FaultKind::Delay(hold))],
        ),
    ];
    let count = scenarios.len();
    for (name, faults) in scenarios {
        let moto = Moto::start();
        let dir = project();
        let proxy = Proxy::start(
            &moto.endpoint,
            Rules {
                faults,
                ..Rules::default()
            },
        );
        let artifact = format!("api={}", dir.path().join("api.zip").display());
        let up = deployer(
            &moto,
            &proxy.endpoint,
            dir.path(),
            &["up", "--artifact", &artifact, "--yes"],
        );
        assert_eq!(
            up.code,
            Some(0),
            "{name}: up failed\n{}\nproxy saw {:?}",
            up.stderr,
            proxy.actions()
        );
        assert!(
            proxy.injected() > 0,
            "{name}: no fault was injected: {:?}",
            proxy.actions()
        );
        // A create nobody reviews goes without a change set: the stack is created once.
        assert_eq!(
            moto.count("CreateStack"),
            2,
            "{name}: bootstrap and app stack, each created exactly once"
        );
        assert_eq!(moto.count("ExecuteChangeSet"), 0, "{name}");
        if name.starts_with("CreateStack answered too late") {
            // The SDK retried each create (bootstrap, app) with the same ClientRequestToken:
            // answered as the first, as CloudFormation does, so each ran once.
            let repeats = proxy
                .actions()
                .iter()
                .filter(|a| a.starts_with("CreateStack (repeat"))
                .count();
            assert_eq!(repeats, 2, "{name}: both creates: {:?}", proxy.actions());
        }
        assert_eq!(artifacts_intact(&moto).await, 1, "{name}");
        assert_eq!(
            outcome(&moto).await,
            expected,
            "{name}: differs from the fault-free run"
        );
        eprintln!("scenario ok: {name} ({} faults injected)", proxy.injected());
    }
    eprintln!("{count} fault scenarios for up");
}

#[tokio::test(flavor = "multi_thread")]
async fn down_survives_faults_and_deletes_once() {
    let moto = Moto::start();
    let dir = project();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    moto.deployer(dir.path(), &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    let faults = vec![
        fault(Some("GetTemplate"), 1, FaultKind::Throttle),
        fault(Some("DeleteStack"), 1, FaultKind::Reset),
        fault(Some("DescribeStacks"), 2, FaultKind::Unavailable),
        // Held past the 1.5 s attempt timeout: the read is retried.
        fault(
            Some("DescribeStackEvents"),
            1,
            FaultKind::Delay(Duration::from_millis(3000)),
        ),
    ];
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            faults,
            ..Rules::default()
        },
    );
    moto.reset_recording();
    let down = deployer(&moto, &proxy.endpoint, dir.path(), &["down", "--yes"]);
    assert_eq!(
        down.code,
        Some(0),
        "{}\nproxy saw {:?}",
        down.stderr,
        proxy.actions()
    );
    assert_eq!(
        proxy.injected(),
        5,
        "every fault was injected: {:?}",
        proxy.actions()
    );
    assert!(
        down.stderr.contains("retained and keep their data"),
        "{}",
        down.stderr
    );
    assert_eq!(
        moto.count("DeleteStack"),
        1,
        "reset before forwarding: moto saw the retry only"
    );
    let again = deployer(&moto, &proxy.endpoint, dir.path(), &["down", "--yes"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
}

/// `logs --follow` ends on a Ctrl-C that comes while a poll's call is still out: a listener
/// made only for the wait between polls missed such a press, and the command ran on.
#[test]
fn logs_follow_ends_on_a_ctrl_c_during_a_call() {
    let moto = Moto::start();
    let dir = project();
    let held = Duration::from_secs(20);
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            faults: vec![fault(
                Some("Logs_20140328.FilterLogEvents"),
                100,
                FaultKind::Delay(held),
            )],
            ..Rules::default()
        },
    );
    let mut follow = moto
        .command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(dir.path())
        .args(["logs", "--follow"])
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("DEPLOYER_ATTEMPT_TIMEOUT_MS", "60000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !proxy
        .actions()
        .iter()
        .any(|a| a.contains("FilterLogEvents"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no FilterLogEvents call: {:?}",
            proxy.actions()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pressed = std::time::Instant::now();
    unsafe {
        libc::kill(follow.id() as i32, libc::SIGINT);
    }
    // Well before the held answer comes back, or never.
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break Some(status);
        }
        if pressed.elapsed() > held / 2 {
            follow.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "Ctrl-C during the call did not end `logs --follow`"
    );
}
