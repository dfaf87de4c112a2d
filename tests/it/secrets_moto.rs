//! `functions.<fn>.secrets` and `deployer secret set|ls`, against moto's SSM and Secrets
//! Manager: values go in through stdin and never come out, the template carries names only,
//! the role reads exactly the named secrets, and `up` stops on a missing one before any change.

use crate::common;

use common::moto::{Moto, Output};

const API_KEY: &str = "api-key-value-9d1c47";
const STRIPE: &str = "stripe-value-51aa0e";

fn with_secrets(dir: &std::path::Path) {
    let spec = dir.join("stacks/example.yaml");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "    tables: { notes: read_write }\n",
        "    tables: { notes: read_write }\n    secrets:\n      API_KEY: ssm:api-key\n      STRIPE_KEY: secretsmanager:notes/stripe\n",
    );
    std::fs::write(&spec, text).unwrap();
}

/// `deployer secret set api NAME --json` with `value` on stdin.
fn set(moto: &Moto, dir: &std::path::Path, name: &str, value: &str) -> Output {
    let args = ["secret", "set", "api", name, "--json"];
    moto.deployer_with_stdin(dir, &args, &format!("{value}\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_reach_the_function_by_name_only() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    with_secrets(d);
    let artifact = format!("api={}", d.join("api.zip").display());

    // Neither exists: `up` names both and changes nothing; `secret ls` says so, exit 2.
    let up = moto.deployer(d, &["up", "--artifact", &artifact, "--yes"]);
    up.expect_code(2);
    assert!(
        up.stderr.contains("api.API_KEY: ssm:/notes/dev/api-key"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr
            .contains("api.STRIPE_KEY: secretsmanager:notes/stripe"),
        "{}",
        up.stderr
    );
    assert_eq!(moto.count("CreateChangeSet") + moto.count("CreateStack"), 0);
    let ls = moto.deployer(d, &["secret", "ls", "--json"]);
    ls.expect_code(2);
    assert_eq!(common::summary(&ls.stdout)["missing"], 2, "{}", ls.stdout);

    // Set from stdin: a version comes back, the value never.
    let written = set(&moto, d, "API_KEY", API_KEY);
    written.expect_code(0);
    let summary = common::summary(&written.stdout);
    assert_eq!(summary["reference"], "ssm:/notes/dev/api-key");
    assert_eq!(summary["version"], "1");
    set(&moto, d, "STRIPE_KEY", STRIPE).expect_code(0);
    let again = set(&moto, d, "API_KEY", API_KEY);
    assert_eq!(common::summary(&again.stdout)["version"], "2");
    // Undeclared: refused, with the line to add.
    let undeclared = set(&moto, d, "NOPE", "x");
    undeclared.expect_code(2);
    assert!(
        undeclared.stderr.contains("NOPE: ssm:nope"),
        "{}",
        undeclared.stderr
    );

    let ls = moto.deployer(d, &["secret", "ls", "--json"]);
    ls.expect_code(0);
    let listing = common::summary(&ls.stdout);
    assert_eq!(listing["missing"], 0);
    assert_eq!(listing["secrets"][0]["version"], "2");
    let human = moto.deployer(d, &["secret", "ls"]);
    for out in [&ls, &human, &written] {
        assert!(!out.stdout.contains(API_KEY) && !out.stderr.contains(API_KEY));
    }

    // `up`: no request of it carries a value (the template, the change set, Lambda's config).
    let before = moto.requests().len();
    let up = moto.deployer(d, &["up", "--artifact", &artifact, "--yes", "--json"]);
    up.expect_code(0);
    for request in &moto.requests()[before..] {
        let all = format!("{} {:?}", request.url, request.form);
        assert!(!all.contains(API_KEY) && !all.contains(STRIPE), "{all}");
    }
    assert!(!up.stdout.contains(API_KEY) && !up.stderr.contains(API_KEY));

    // The function gets the names; its role reads exactly those two.
    let template = moto.template("notes-dev").await;
    let variables = &template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["API_KEY_PARAMETER"], "/notes/dev/api-key");
    assert_eq!(variables["STRIPE_KEY_SECRET_ID"], "notes/stripe");
    let statements = template["Resources"]["ApiRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let reading: Vec<String> = statements
        .iter()
        .filter(|s| s.to_string().contains("ssm:") || s.to_string().contains("secretsmanager:"))
        .map(|s| s["Resource"].to_string())
        .collect();
    assert_eq!(reading.len(), 2, "{statements:?}");
    assert!(
        reading[0].contains(":parameter/notes/dev/api-key\"") && !reading[0].contains('*'),
        "{}",
        reading[0]
    );
    assert!(
        reading[1].contains(":secret:notes/stripe-??????\""),
        "{}",
        reading[1]
    );
    assert!(
        !statements.iter().any(|s| s.to_string().contains("kms:")),
        "moto's parameters use the AWS managed key"
    );
}
