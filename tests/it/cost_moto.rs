//! The monthly cost in `plan`, `up`, `ls` and `gc`, against moto (region us-east-1, whose
//! prices the committed table has), checked against figures computed by hand.

use crate::common;

use common::moto::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn plan_up_ls_and_gc_say_what_stacks_cost_a_month() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let artifact = format!("api={}", d.join("api.zip").display());
    // The example's own env: one load balancer ($0.0225 × 730 h = $16.425) and four alarms
    // (Errors, Throttles, target 5xx, the load balancer's 5xx: 4 × $0.10), an on-demand table
    // with nothing stored: $16.825, $16.83 on the bill. All of it new.
    let up = moto.deployer(d, &["up", "--artifact", &artifact, "--yes", "--json"]);
    let summary = common::summary(&up.stdout);
    let cost = &summary["monthly_cost"];
    assert_eq!(cost["fixed_usd"], 16.83, "{}", up.stdout);
    assert_eq!(cost["delta_usd"], 16.83);
    assert_eq!(cost["prices_as_of"], "2025-06-01");
    let usage: Vec<&str> = cost["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["what"].as_str().unwrap())
        .collect();
    assert!(
        usage.iter().any(|u| u.contains("256 MB arm64")),
        "{usage:?}"
    );
    assert!(
        up.stdout
            .contains("notes-dev: $16.83 a month before use (+16.83 with this change)"),
        "{}",
        up.stdout
    );
    // Planned again: the same cost, nothing added.
    let plan = moto.deployer(
        d,
        &["plan", "--artifact", &artifact, "--json", "--no-drift"],
    );
    let cost = &common::summary(&plan.stdout)["monthly_cost"];
    assert_eq!(cost["fixed_usd"], 16.83);
    assert_eq!(cost["delta_usd"], 0.0);

    // An ephemeral env on the shared load balancer, alone on it: the whole load balancer as its
    // share ($16.425) and three alarms (no load balancer alarm of its own): $16.725 → $16.73.
    let pr = moto.deployer(
        d,
        &[
            "up",
            "--env",
            "pr-1",
            "--ttl",
            "2h",
            "--artifact",
            &artifact,
            "--yes",
            "--json",
        ],
    );
    assert_eq!(
        common::summary(&pr.stdout)["monthly_cost"]["fixed_usd"],
        16.73,
        "{}",
        pr.stdout
    );

    // ls: each stack's cost; the shared load balancer's stack lists its own, the total counts
    // it once (in its env's share): 16.83 + 16.73.
    let ls = moto.deployer(d, &["ls", "--app", "notes", "--json"]);
    let rows = common::records(&ls.stdout);
    let cost_of = |stack: &str| {
        rows.iter().find(|r| r["stack"] == stack).unwrap()["monthly_fixed_usd"].clone()
    };
    assert_eq!(cost_of("notes-dev"), 16.83);
    assert_eq!(cost_of("notes-pr-1"), 16.73);
    assert_eq!(cost_of("notes-shared-alb"), 16.43);
    let ls = moto.deployer(d, &["ls", "--app", "notes"]);
    assert!(ls.stdout.contains("total: $33.56 a month"), "{}", ls.stdout);

    // gc of the expired env says what it was costing.
    let gc = moto.deployer_with(
        d,
        &["gc", "--dry-run", "--json"],
        &[("DEPLOYER_NOW", "2099-01-01T00:00:00Z")],
    );
    let summary = common::summary(&gc.stdout);
    assert_eq!(summary["stacks"], serde_json::json!(["notes-pr-1"]));
    assert_eq!(summary["monthly_fixed_usd"], 16.73, "{}", gc.stdout);
}
