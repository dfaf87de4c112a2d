//! Drift in `plan`, `status --drift` and `up --revert-drift`, against moto: moto has no drift
//! detection, so a proxy in front of it answers DetectStackDrift,
//! DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts as CloudFormation's API
//! Reference documents them; everything else is moto's.

use crate::common;

use common::moto::Moto;
use common::proxy::{DriftAnswers, DriftedResource, Proxy, Rules};

fn memory_drift() -> Vec<DriftedResource> {
    vec![
        (
            "ApiFunction".into(),
            "AWS::Lambda::Function".into(),
            "MODIFIED".into(),
            vec![("/MemorySize".into(), "256".into(), "1024".into())],
        ),
        (
            "NotesTable".into(),
            "AWS::DynamoDB::Table".into(),
            "IN_SYNC".into(),
            vec![],
        ),
        (
            "ApiAlbPermission".into(),
            "AWS::Lambda::Permission".into(),
            "NOT_CHECKED".into(),
            vec![],
        ),
    ]
}

/// `deployer ARGS` through a proxy that answers drift detection with `drift`.
fn through(
    moto: &Moto,
    dir: &std::path::Path,
    drift: DriftAnswers,
    args: &[&str],
) -> (common::moto::Output, Proxy) {
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            drift: Some(drift),
            ..Rules::default()
        },
    );
    let out = moto.deployer_with(dir, args, &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())]);
    (out, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_shown_by_plan_and_status_and_reverted_by_up() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let artifact = format!("api={}", d.join("api.zip").display());
    moto.deployer(d, &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    let drifted = DriftAnswers {
        polls_in_progress: 2,
        resources: memory_drift(),
        failed: None,
    };

    // plan: nothing to change in the template, but drift: exit 10, a record per resource.
    let plan = ["plan", "--artifact", artifact.as_str(), "--json"];
    let (out, proxy) = through(&moto, d, drifted.clone(), &plan);
    out.expect_code(10);
    assert_eq!(
        proxy.count("DescribeStackDriftDetectionStatus"),
        3,
        "waited for it"
    );
    let records = common::records(&out.stdout);
    let drift: Vec<&serde_json::Value> = records.iter().filter(|r| r["type"] == "drift").collect();
    assert_eq!(drift.len(), 2, "{}", out.stdout);
    assert_eq!(drift[0]["logical_id"], "ApiFunction");
    assert_eq!(drift[0]["status"], "MODIFIED");
    assert_eq!(
        drift[0]["differences"],
        serde_json::json!([{ "path": "/MemorySize", "expected": "256", "actual": "1024" }])
    );
    assert_eq!(drift[1]["status"], "NOT_CHECKED");
    let summary = common::summary(&out.stdout);
    assert_eq!(summary["status"], "no changes");
    assert_eq!(summary["drifted"], serde_json::json!(["ApiFunction"]));
    assert!(
        out.stdout.contains("deployer up --revert-drift"),
        "{}",
        out.stdout
    );

    // --no-drift: no detection, exit 0.
    let mut no_drift = plan.to_vec();
    no_drift.push("--no-drift");
    let (out, proxy) = through(&moto, d, drifted.clone(), &no_drift);
    out.expect_code(0);
    assert_eq!(proxy.count("DetectStackDrift"), 0);
    assert_eq!(
        common::summary(&out.stdout)["drifted"],
        serde_json::Value::Null
    );

    // In sync: exit 0, and the step says so.
    let in_sync = DriftAnswers {
        resources: memory_drift()
            .into_iter()
            .map(|(id, kind, _, _)| (id, kind, "IN_SYNC".into(), vec![]))
            .collect(),
        ..DriftAnswers::default()
    };
    let (out, _) = through(&moto, d, in_sync, &plan);
    out.expect_code(0);
    assert!(out.stdout.contains("no drift"), "{}", out.stdout);

    // A failed detection: a warning naming why; what it checked still counts.
    let failed = DriftAnswers {
        failed: Some("Failed to detect drift on resource [ApiRole]".into()),
        ..drifted.clone()
    };
    let (out, _) = through(&moto, d, failed, &plan);
    out.expect_code(10);
    assert!(
        out.stdout
            .contains("Failed to detect drift on resource [ApiRole]"),
        "{}",
        out.stdout
    );

    // status --drift: the same records, exit 0.
    let (out, _) = through(&moto, d, drifted.clone(), &["status", "--drift", "--json"]);
    out.expect_code(0);
    assert_eq!(
        common::records(&out.stdout)
            .iter()
            .filter(|r| r["type"] == "drift")
            .count(),
        2
    );

    // A no-op `up` after a detection that found drift says so (DescribeStacks carries it).
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            drift: Some(drifted.clone()),
            ..Rules::default()
        },
    );
    let env = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    moto.deployer_with(d, &["status", "--drift"], &env)
        .expect_code(0);
    let noop = moto.deployer_with(d, &["up", "--artifact", &artifact, "--yes"], &env);
    noop.expect_code(0);
    assert!(
        noop.stderr.contains("no changes, but its last drift detection found resources changed outside CloudFormation"),
        "{}",
        noop.stderr
    );
    drop(proxy);

    // up --revert-drift: listed first, then a drift-aware change set although the template and
    // artifact are unchanged.
    let revert = [
        "up",
        "--artifact",
        artifact.as_str(),
        "--yes",
        "--revert-drift",
        "--json",
    ];
    let (out, proxy) = through(&moto, d, drifted, &revert);
    out.expect_code(0);
    let records = common::records(&out.stdout);
    let first_drift = records.iter().position(|r| r["type"] == "drift").unwrap();
    let change_set = proxy
        .recorded()
        .into_iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("Action=CreateChangeSet"))
        .expect("a change set was made");
    assert!(
        String::from_utf8_lossy(&change_set.body).contains("DeploymentMode=REVERT_DRIFT"),
        "{}",
        String::from_utf8_lossy(&change_set.body)
    );
    let changes_at = records
        .iter()
        .position(|r| r["type"] == "changes")
        .unwrap_or(usize::MAX);
    assert!(
        first_drift < changes_at,
        "the drift is listed before the change set"
    );
}
