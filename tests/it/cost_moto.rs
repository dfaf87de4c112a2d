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

/// `--prices live` in a region the committed table lacks: the prices come from the Price List
/// Query API (here a stand-in answering GetProducts as the API documents it, paged, with a
/// product of another table class and a free first tier to skip), then from the cache.
#[tokio::test(flavor = "multi_thread")]
async fn live_prices_come_from_the_price_list_api_and_then_the_cache() {
    use common::proxy::{Proxy, Rules};
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let cache = tempfile::tempdir().unwrap();
    let artifact = format!("api={}", d.join("api.zip").display());
    let product = |service: &str, usage: &str, usd: &str| {
        (
            service.to_string(),
            "eu-west-1".to_string(),
            format!("EUW1-{usage}"),
            usd.to_string(),
        )
    };
    let products = vec![
        product("AWSELB", "LoadBalancerUsage", "0.0252000000"),
        product("AWSELB", "LCUUsage", "0.0080000000"),
        product("AmazonDynamoDB", "IA-WriteCapacityUnit-Hrs", "0.0008100000"),
        product("AmazonDynamoDB", "WriteCapacityUnit-Hrs", "0.0007350000"),
        product("AmazonDynamoDB", "ReadCapacityUnit-Hrs", "0.0001470000"),
        product("AmazonDynamoDB", "WriteRequestUnits", "0.0000007070"),
        product("AmazonDynamoDB", "ReadRequestUnits", "0.0000001410"),
        product("AmazonDynamoDB", "TimedStorage-ByteHrs", "0.2830000000"),
        product("AmazonDynamoDB", "TimedPITRStorage-ByteHrs", "0.2260000000"),
        product("AWSLambda", "Request", "0.0000002000"),
        product("AWSLambda", "Lambda-GB-Second", "0.0000166667"),
        product("AWSLambda", "Lambda-GB-Second-ARM", "0.0000133334"),
        product("AmazonCloudWatch", "CW:AlarmMonitorUsage", "0.1000000000"),
        product("AmazonCloudWatch", "DataProcessing-Bytes", "0.5700000000"),
        product("AmazonCloudWatch", "TimedStorage-ByteHrs", "0.0300000000"),
    ];
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            pricing: Some(products),
            ..Rules::default()
        },
    );
    let env = [
        ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("XDG_CACHE_HOME", cache.path().to_str().unwrap()),
    ];
    // Without live prices: a warning, and no estimate.
    let up = moto.deployer_with(d, &["up", "--artifact", &artifact, "--yes", "--json"], &env);
    up.expect_code(0);
    assert_eq!(
        common::summary(&up.stdout)["monthly_cost"],
        serde_json::Value::Null
    );
    assert!(
        up.stdout.contains("no prices for eu-west-1"),
        "{}",
        up.stdout
    );
    // Live: $0.0252 × 730 h = $18.396 for the load balancer, 4 alarms × $0.10: $18.796 → $18.80.
    let plan = [
        "plan",
        "--artifact",
        &artifact,
        "--json",
        "--no-drift",
        "--prices",
        "live",
    ];
    let out = moto.deployer_with(d, &plan, &env);
    let cost = &common::summary(&out.stdout)["monthly_cost"];
    assert_eq!(cost["fixed_usd"], 18.8, "{}", out.stdout);
    // The arm64 function at 256 MB, 100 ms: $0.20 + 0.025e6 GB-s × $0.0000133334 = $0.533335.
    let arm = cost["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"].as_str().unwrap().contains("arm64"))
        .unwrap()["usd_per_million"]
        .as_f64()
        .unwrap();
    assert!((arm - 0.533_335).abs() < 1e-6, "{arm}");
    let asked = proxy.count("AWSPriceListService.GetProducts");
    assert!(asked >= 4, "one query per service, paged: {asked}");
    // Again: from the cache, no request.
    let again = moto.deployer_with(d, &plan, &env);
    assert_eq!(
        common::summary(&again.stdout)["monthly_cost"]["fixed_usd"],
        18.8
    );
    assert_eq!(proxy.count("AWSPriceListService.GetProducts"), asked);
}
