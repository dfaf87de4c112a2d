//! `up --hotswap` end to end against moto: a code-only change goes live by UpdateFunctionCode
//! without a change set, anything else takes a change set, protected envs refuse it, `status`
//! and `plan` show the drift, and a full `up` puts the template's code back, also when it brings
//! the very artifact the template already names.

use base64::Engine as _;

use super::common::{self, moto::Moto};
use super::{Project, function_config, up};

/// The code Lambda runs, as the base64 SHA-256 it reports.
async fn live_code(moto: &Moto) -> String {
    function_config(moto, "notes-dev-api")
        .await
        .configuration()
        .unwrap()
        .code_sha256()
        .unwrap()
        .to_string()
}

fn b64(sha: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha)
}

/// UpdateFunctionCode calls (Lambda's REST API: `PUT .../functions/<name>/code`).
fn code_updates(moto: &Moto) -> usize {
    moto.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.url.contains("/functions/notes-dev-api/code"))
        .count()
}

/// The summary's `code_updates`, as (function, why).
fn updates_in(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["code_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["function"].as_str().unwrap().to_string(),
                u["why"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `status --json`'s `hotswapped`: function to SHA-256.
fn hotswapped(moto: &Moto, p: &Project) -> serde_json::Value {
    let status = moto.deployer(p.path(), &["status", "--json"]);
    status.expect_code(0);
    let records = common::records(&status.stdout);
    records.iter().find(|r| r["type"] == "stack").unwrap()["hotswapped"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_only_change_is_hotswapped_and_the_next_full_up_puts_the_template_code_back() {
    let moto = Moto::start();
    let p = Project::new();
    let v1 = p.artifact("v1");
    up(&moto, &p, &[]).expect_code(0);
    assert_eq!(live_code(&moto).await, b64(&v1));
    assert_eq!(hotswapped(&moto, &p), serde_json::json!({}));

    // Code only: no change set, UpdateFunctionCode, and Lambda runs the new zip.
    let v2 = p.artifact("v2");
    moto.reset_recording();
    let swap = up(&moto, &p, &["--hotswap", "--json"]);
    swap.expect_code(0);
    let summary = common::summary(&swap.stdout);
    assert_eq!(summary["status"], "hotswapped", "{}", swap.stdout);
    assert_eq!(summary["changed"], true);
    assert_eq!(updates_in(&summary), [("api".into(), "hotswap".into())]);
    assert_eq!(
        summary["code_updates"][0]["sha256"],
        deployer::build::hex(&v2)
    );
    assert_eq!(
        moto.count("CreateChangeSet"),
        0,
        "a hotswap needs no change set"
    );
    assert_eq!(code_updates(&moto), 1);
    assert_eq!(live_code(&moto).await, b64(&v2));
    let records = common::records(&swap.stdout);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "code_update" && r["why"] == "hotswap"),
        "{}",
        swap.stdout
    );
    // The drift is recorded and shown.
    assert_eq!(
        hotswapped(&moto, &p),
        serde_json::json!({ "api": deployer::build::hex(&v2) })
    );
    let status = moto.deployer(p.path(), &["status"]);
    assert!(
        status.stdout.contains(&format!(
            "api: runs hotswapped code {}",
            &deployer::build::hex(&v2)[..12]
        )),
        "{}",
        status.stdout
    );

    // The same code again: nothing to do.
    moto.reset_recording();
    let again = up(&moto, &p, &["--hotswap", "--json"]);
    again.expect_code(0);
    assert_eq!(common::summary(&again.stdout)["status"], "no changes");
    assert_eq!(code_updates(&moto), 0);

    // Back to the template's own artifact: `plan` sees the drift (exit 10) and changes nothing.
    p.artifact("v1");
    let artifact = format!("api={}", p.zip().display());
    moto.reset_recording();
    let plan = moto.deployer(p.path(), &["plan", "--artifact", &artifact]);
    plan.expect_code(10);
    assert!(
        plan.stderr.contains("`api` runs hotswapped code"),
        "{}",
        plan.stderr
    );
    assert_eq!(code_updates(&moto), 0);
    assert_eq!(live_code(&moto).await, b64(&v2));

    // A full `up` of it: CloudFormation sees no change (the template names v1 already), so
    // deployer puts v1 back itself and forgets the drift.
    moto.reset_recording();
    let full = up(&moto, &p, &["--json"]);
    full.expect_code(0);
    let summary = common::summary(&full.stdout);
    assert_eq!(summary["status"], "code restored", "{}", full.stdout);
    assert_eq!(updates_in(&summary), [("api".into(), "restore".into())]);
    assert_eq!(moto.count("ExecuteChangeSet"), 0);
    assert_eq!(live_code(&moto).await, b64(&v1));
    assert_eq!(hotswapped(&moto, &p), serde_json::json!({}));

    // And then it is a plain no-op again.
    moto.reset_recording();
    let noop = up(&moto, &p, &["--json"]);
    noop.expect_code(0);
    assert_eq!(common::summary(&noop.stdout)["status"], "no changes");
    assert_eq!(code_updates(&moto), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn anything_but_code_takes_a_change_set_and_protected_envs_refuse_hotswap() {
    let moto = Moto::start();
    let p = Project::new();
    up(&moto, &p, &[]).expect_code(0);

    // A hotswap, then a change of configuration and code: CloudFormation does both, and the
    // drift is gone (the new artifact parameter made CloudFormation update the code).
    p.artifact("v2");
    up(&moto, &p, &["--hotswap"]).expect_code(0);
    p.edit_spec("memory: 256", "memory: 512");
    let v3 = p.artifact("v3");
    moto.reset_recording();
    let both = up(&moto, &p, &["--hotswap", "--json"]);
    both.expect_code(0);
    assert!(
        both.stdout.contains(
            "no hotswap (more than function code changed): deploying through CloudFormation"
        ),
        "{}",
        both.stdout
    );
    assert_eq!(moto.count("ExecuteChangeSet"), 1);
    assert_eq!(code_updates(&moto), 0, "CloudFormation updated the code");
    let summary = common::summary(&both.stdout);
    assert_eq!(summary["status"], "UPDATE_COMPLETE");
    assert_eq!(live_code(&moto).await, b64(&v3));
    let config = function_config(&moto, "notes-dev-api").await;
    assert_eq!(config.configuration().unwrap().memory_size(), Some(512));
    assert_eq!(hotswapped(&moto, &p), serde_json::json!({}));

    // Protected: refused before anything is sent.
    moto.reset_recording();
    let artifact = format!("api={}", p.zip().display());
    let refused = moto.deployer(
        p.path(),
        &[
            "up",
            "--env",
            "prod",
            "--artifact",
            &artifact,
            "--yes",
            "--hotswap",
        ],
    );
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("env `prod` is protected (`protected_envs`): it is only changed through CloudFormation, so --hotswap is refused there"),
        "{}",
        refused.stderr
    );
    assert!(moto.requests().is_empty());

    // moto does not apply an executed change set's tags (AWS does), so the digest tag is still
    // the previous deployment's: a plain `up` writes it (on AWS it is a no-op).
    up(&moto, &p, &[]).expect_code(0);

    // `hotswap: true` in the spec makes it the default; --no-hotswap overrides it.
    let spec = p.path().join("stacks/example.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("hotswap: true\n{text}")).unwrap();
    p.artifact("v4");
    moto.reset_recording();
    let by_spec = up(&moto, &p, &["--json"]);
    by_spec.expect_code(0);
    assert_eq!(
        common::summary(&by_spec.stdout)["status"],
        "hotswapped",
        "{}",
        by_spec.stdout
    );
    assert_eq!(moto.count("CreateChangeSet"), 0);
    let v5 = p.artifact("v5");
    moto.reset_recording();
    let overridden = up(&moto, &p, &["--no-hotswap", "--json"]);
    overridden.expect_code(0);
    // Through CloudFormation: moto's change sets ignore parameter-only changes (AWS lists the
    // function as modified), so moto's stack takes the new artifact in the UpdateStack that
    // records the digest; either way the code is CloudFormation's doing, not a hotswap's.
    assert_eq!(moto.count("CreateChangeSet"), 1, "{}", overridden.stdout);
    assert_eq!(code_updates(&moto), 0);
    assert_eq!(live_code(&moto).await, b64(&v5));
    assert_eq!(hotswapped(&moto, &p), serde_json::json!({}));
}
