//! `deployer local`: the real notes service served through the rendered listener rules, its
//! writes landing in moto; and the load balancer's own answers (fixed 404, 502, 413, 400).

use std::path::Path;
use std::time::Duration;

use crate::common;
use common::local::{Local, requests};
use common::moto::Moto;

/// A project holding the example spec for x86_64 and the example service, built for this
/// machine, as a zip.
fn example_for_this_machine() -> tempfile::TempDir {
    let notes = common::root().join("examples/notes");
    let zip = deployer::build::zip_bootstrap(
        &std::fs::read(crate::notes_service::notes_api(&notes)).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.zip"), zip).unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    let spec = std::fs::read_to_string(common::root().join("stacks/example.yaml")).unwrap();
    std::fs::write(
        dir.path().join("stacks/example.yaml"),
        spec.replace("architecture: arm64", "architecture: x86_64")
            .replace(
                "path: ../examples/notes",
                &format!("path: {}", notes.display()),
            ),
    )
    .unwrap();
    dir
}

/// POST /notes, GET /notes/{id}, GET /openapi.json through `deployer local`; the note is in the
/// table at the endpoint. Returns the note's id.
pub fn exercise_the_notes_api(local: &Local) -> String {
    let created = local.request(
        "POST",
        "/notes",
        &[("Content-Type", "application/json")],
        br#"{"title":"from local","body":"through the listener rules","owner":"ada"}"#,
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let note = created.json();
    let id = note["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/notes/{id}").as_str())
    );

    let read = local.request("GET", &format!("/notes/{id}"), &[], b"");
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["title"], "from local");

    let openapi = local.request("GET", "/openapi.json", &[], b"");
    assert_eq!(openapi.status, 200);
    assert!(
        openapi.json()["paths"]["/notes"].is_object(),
        "{}",
        openapi.json()
    );
    id
}

/// The item DynamoDB holds for note `id` in `table` at moto.
pub async fn stored_note(moto: &Moto, table: &str, id: &str) -> Option<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("NOTE#{id}")))
        .key("sk", AttributeValue::S("NOTE".into()))
        .send()
        .await
        .unwrap()
        .item?;
    item.get("title").and_then(|t| t.as_s().ok()).cloned()
}

/// The example spec `spec` (in `dir`) served by `deployer local` with `zip` against a new moto:
/// the notes API answers and the note lands in moto. Returns the run's records. For the arm64
/// builds, whose bootstrap runs under qemu-user.
pub fn the_notes_api_answers_through_local(
    dir: &Path,
    spec: &str,
    zip: &Path,
) -> Vec<serde_json::Value> {
    let moto = Moto::start();
    let artifact = format!("api={}", zip.display());
    let local = Local::start(
        &moto,
        dir,
        &["-s", spec, "--artifact", &artifact],
        &[],
        Duration::from_secs(60),
    );
    let id = exercise_the_notes_api(&local);
    let stopped = local.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime
            .block_on(stored_note(&moto, "notes-dev-notes", &id))
            .as_deref(),
        Some("from local")
    );
    let served = requests(&stopped.records);
    assert_eq!(served.len(), 3);
    assert!(served[0]["cold_start_ms"].as_f64().is_some());
    stopped.records
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_service_answers_through_local_and_its_data_lands_in_moto() {
    let dir = example_for_this_machine();
    let moto = Moto::start();
    let local = Local::start(
        &moto,
        dir.path(),
        &["--artifact", "api=api.zip"],
        &[],
        Duration::from_secs(60),
    );
    let id = exercise_the_notes_api(&local);
    let stopped = local.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let records = &stopped.records;

    let table = records.iter().find(|r| r["type"] == "local_table").unwrap();
    assert_eq!(table["physical_table"], "notes-dev-notes");
    assert_eq!(table["created"], true);
    assert_eq!(
        stored_note(&moto, "notes-dev-notes", &id).await.as_deref(),
        Some("from local"),
        "the note is in the table deployer created at the endpoint"
    );

    let ready = records.iter().find(|r| r["type"] == "local_ready").unwrap();
    let routes: Vec<(serde_json::Value, &str)> = ready["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["priority"].clone(), r["conditions"].as_str().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [
            (100.into(), "/notes*"),
            (200.into(), "GET /docs*"),
            (300.into(), "GET /openapi.json"),
            (serde_json::Value::Null, "anything else"),
        ]
    );
    let served = requests(records);
    assert_eq!(
        served
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [201, 200, 200]
    );
    assert!(served.iter().all(|r| r["function"] == "api"));
    assert!(
        served[0]["cold_start_ms"].as_f64().unwrap() > 0.0,
        "the first request starts the process"
    );
    assert!(
        served[1..].iter().all(|r| r["cold_start_ms"].is_null()),
        "one process serves the rest"
    );
    assert!(
        records.iter().any(|r| r["type"] == "local_log"
            && r["function"] == "api"
            && r["line"].as_str().unwrap().contains("handled")),
        "the function's log lines are streamed"
    );
    let processes: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "local_process")
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        processes,
        ["started", "exited"],
        "Ctrl-C stops the function's process"
    );
    let summary = records.last().unwrap();
    assert_eq!(
        (summary["command"].as_str(), summary["requests"].as_u64()),
        (Some("local"), Some(3))
    );

    // A second run keeps the table and its data.
    let again = Local::start(
        &moto,
        dir.path(),
        &["--artifact", "api=api.zip"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        again
            .request("GET", &format!("/notes/{id}"), &[], b"")
            .status,
        200
    );
    let records = again.stop().records;
    let table = records.iter().find(|r| r["type"] == "local_table").unwrap();
    assert_eq!(table["created"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_answers_as_the_load_balancer_when_no_rule_matches_or_the_function_fails() {
    // A function whose process prints a line and exits without polling the Runtime API.
    let dir = tempfile::tempdir().unwrap();
    common::hello_crate(dir.path());
    let build = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.path().join("hello/Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(build.success());
    let binary = std::fs::read(dir.path().join("hello/target/debug/hello-api")).unwrap();
    std::fs::write(
        dir.path().join("hello.zip"),
        deployer::build::zip_bootstrap(&binary),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!(
            "app: edge\nalb: {{ allowed_cidrs: [10.0.0.0/8] }}\nfunctions:\n  crash:\n    path: hello\n    architecture: {}\n    \
             routes:\n      - {{ path: /crash*, methods: [GET, POST] }}\n",
            if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                "x86_64"
            }
        ),
    )
    .unwrap();

    let moto = Moto::start();
    let local = Local::start(
        &moto,
        dir.path(),
        &["-s", "stack.yaml", "--artifact", "crash=hello.zip"],
        &[],
        Duration::from_secs(30),
    );
    // No rule matches and no function is the default route: the listener's fixed 404.
    let nothing = local.request("GET", "/", &[], b"");
    assert_eq!(nothing.status, 404);
    assert_eq!(nothing.json()["message"], "no route matches this request");
    // Methods are part of the rule: DELETE /crash is not routed.
    assert_eq!(local.request("DELETE", "/crash", &[], b"").status, 404);
    // The process exits without answering: 502, twice (a new process each time).
    assert_eq!(local.request("GET", "/crash", &[], b"").status, 502);
    assert_eq!(local.request("GET", "/crash/again", &[], b"").status, 502);
    // Over the 1 MB a Lambda target accepts: 413, the function is not invoked.
    let big = vec![b'x'; 1024 * 1024 + 1];
    assert_eq!(
        local
            .request("POST", "/crash", &[("Content-Type", "text/plain")], &big)
            .status,
        413
    );
    // WebSocket upgrades are refused with 400.
    let upgrade = local.request(
        "GET",
        "/crash",
        &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        b"",
    );
    assert_eq!(upgrade.status, 400);
    let stopped = local.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);

    let served = requests(&stopped.records);
    let errors: Vec<(u64, &str)> = served
        .iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap(),
                r["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(errors[0], (404, ""));
    assert!(
        served[0]["function"].is_null(),
        "a fixed response involves no function"
    );
    for (status, error) in &errors[2..4] {
        assert_eq!(*status, 502);
        assert!(
            error.contains("exited with code 0 before answering"),
            "{error}"
        );
    }
    assert!(errors[4].1.contains("1 MB"), "{:?}", errors[4]);
    assert!(errors[5].1.contains("WebSocket"), "{:?}", errors[5]);
    let started = stopped
        .records
        .iter()
        .filter(|r| r["type"] == "local_process" && r["event"] == "started")
        .count();
    assert_eq!(
        started, 2,
        "each failed invocation's process is replaced on the next request"
    );
    let arch = if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    };
    assert!(
        stopped
            .records
            .iter()
            .any(|r| r["type"] == "local_log" && r["line"] == format!("hello from {arch}")),
        "the process's output is streamed"
    );
}

#[test]
fn local_refuses_to_point_tables_at_aws_without_an_endpoint() {
    let dir = common::project_with(&[("api.zip", "x")]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["local", "--artifact", "api=api.zip"])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dynamodb-endpoint"), "{stderr}");
    assert!(stderr.contains("(notes)"), "{stderr}");
}

/// A function with a secret gets its variable, as on Lambda, and reads the value at start-up
/// from the local endpoint (here moto's SSM, where `deployer secret set` put it): the example
/// service then wants the key for writes.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_reads_its_secret_from_the_local_endpoint() {
    let dir = example_for_this_machine();
    let spec = dir.path().join("stacks/example.yaml");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "    tables: { notes: read_write }\n",
        "    tables: { notes: read_write }\n    secrets: { API_KEY: ssm:api-key }\n",
    );
    std::fs::write(&spec, text).unwrap();
    let moto = Moto::start();
    let key = "local-api-key-2f9e";
    moto.deployer_with_stdin(
        dir.path(),
        &["secret", "set", "api", "API_KEY"],
        &format!("{key}\n"),
    )
    .expect_code(0);
    let local = Local::start(
        &moto,
        dir.path(),
        &["--artifact", "api=api.zip"],
        &[],
        Duration::from_secs(60),
    );
    let note = br#"{"title":"keyed"}"#;
    let json = ("Content-Type", "application/json");
    let refused = local.request("POST", "/notes", &[json], note);
    assert_eq!(
        refused.status,
        401,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let created = local.request("POST", "/notes", &[json, ("x-api-key", key)], note);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let stopped = local.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert!(!stopped.stderr.contains(key), "the value is never shown");
}
