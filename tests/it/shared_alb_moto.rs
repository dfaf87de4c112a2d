//! One load balancer shared by an app's ephemeral envs, against moto: two envs deployed by two
//! processes at once, their slots, rules, URLs, and what `down` and `gc` leave.

use crate::common;

use std::collections::BTreeSet;

use common::moto::Moto;
use common::proxy::{Fault, FaultKind, Proxy, Rules};

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    moto.sdk_config().await
}

/// The load balancers of the account, by name.
async fn load_balancers(moto: &Moto) -> Vec<String> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk(moto).await);
    let out = elb.describe_load_balancers().send().await.unwrap();
    out.load_balancers()
        .iter()
        .map(|lb| lb.load_balancer_name().unwrap().to_string())
        .collect()
}

/// Every listener of the account: (port, rule priorities).
async fn listeners(moto: &Moto) -> Vec<(i32, Vec<String>)> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk(moto).await);
    let mut found = Vec::new();
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    for lb in lbs.load_balancers() {
        let out = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        for listener in out.listeners() {
            let rules = elb
                .describe_rules()
                .listener_arn(listener.listener_arn().unwrap())
                .send()
                .await
                .unwrap();
            let priorities = rules
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .map(|r| r.priority().unwrap().to_string())
                .collect();
            found.push((listener.port().unwrap(), priorities));
        }
    }
    found.sort();
    found
}

async fn stack(moto: &Moto, name: &str) -> Option<aws_sdk_cloudformation::types::Stack> {
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(moto).await);
    let out = cfn.describe_stacks().stack_name(name).send().await.ok()?;
    out.stacks()
        .first()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .cloned()
}

fn tag(stack: &aws_sdk_cloudformation::types::Stack, key: &str) -> Option<String> {
    stack
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_string))
}

/// The keys of the slot records in the artifact bucket.
async fn slot_records(moto: &Moto) -> Vec<String> {
    let s3 = aws_sdk_s3::Client::new(&sdk(moto).await);
    let buckets = s3.list_buckets().send().await.unwrap();
    let mut keys = Vec::new();
    for bucket in buckets.buckets() {
        let out = s3
            .list_objects_v2()
            .bucket(bucket.name().unwrap())
            .prefix("shared-alb/")
            .send()
            .await
            .unwrap();
        keys.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
    }
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ephemeral_envs_at_once_share_one_load_balancer_until_the_last_goes() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    // The first DescribeStacks calls answer late, so that both processes look for the
    // bootstrap and shared stacks before either has made them.
    let proxy = Proxy::start(
        &moto.endpoint,
        Rules {
            faults: vec![Fault {
                action: Some("DescribeStacks".into()),
                times: 4,
                kind: FaultKind::Delay(std::time::Duration::from_millis(2000)),
            }],
            ..Rules::default()
        },
    );
    let spawn = |env: &str| {
        let artifact = format!("api={}", dir.path().join("api.zip").display());
        moto.command(assert_cmd::cargo::cargo_bin("deployer"))
            .current_dir(dir.path())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["up", "--env", env, "--ttl", "2h", "--artifact", &artifact])
            .args(["--yes", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("pr-1"), spawn("pr-2"));
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut urls = BTreeSet::new();
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let summary = common::summary(&String::from_utf8_lossy(&out.stdout));
        urls.insert(summary["outputs"]["Url"].as_str().unwrap().to_string());
    }
    // Both asked CloudFormation to create the shared stack; one waited for the other's.
    let creates = proxy
        .recorded()
        .into_iter()
        .filter(|r| {
            let body = String::from_utf8_lossy(&r.body);
            body.contains("Action=CreateStack") && body.contains("StackName=notes-shared-alb")
        })
        .count();
    assert!(creates >= 1, "the shared stack was created");
    assert_eq!(load_balancers(&moto).await.len(), 1, "one load balancer");
    // Each env: its own slot (tag), port and URL.
    let (one, two) = (
        stack(&moto, "notes-pr-1").await.unwrap(),
        stack(&moto, "notes-pr-2").await.unwrap(),
    );
    let slots: BTreeSet<String> = [&one, &two]
        .iter()
        .map(|s| tag(s, "deployer:shared-alb").unwrap())
        .collect();
    assert_eq!(
        slots,
        BTreeSet::from(["notes-shared-alb/0".into(), "notes-shared-alb/1".into()])
    );
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(
        urls.iter()
            .all(|u| u.ends_with(":8000") || u.ends_with(":8001")),
        "{urls:?}"
    );
    // The shared HTTP:80 (a 404 default, no rules) and one listener per env with its rules.
    let found = listeners(&moto).await;
    let ports: Vec<i32> = found.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports, [80, 8000, 8001], "{found:?}");
    for (port, priorities) in &found {
        let distinct: BTreeSet<_> = priorities.iter().collect();
        assert_eq!(
            distinct.len(),
            priorities.len(),
            "priority clash on :{port}"
        );
        let want = if *port == 80 { 0 } else { 3 };
        assert_eq!(priorities.len(), want, ":{port} {priorities:?}");
    }
    assert_eq!(slot_records(&moto).await.len(), 2);

    // A second `up` of the same env keeps its slot and changes nothing.
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    let again = moto.deployer(
        dir.path(),
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
    let summary = common::summary(&again.stdout);
    assert_eq!(summary["status"], "no changes", "{}", again.stderr);

    // `plan` of a new env shows its creation and takes no slot.
    let plan = moto.deployer(
        dir.path(),
        &[
            "plan",
            "--env",
            "pr-3",
            "--ttl",
            "2h",
            "--artifact",
            &artifact,
            "--json",
        ],
    );
    plan.expect_code(10);
    assert!(
        plan.stdout.contains(
            "notes-pr-3: would take slot 2 of the shared load balancer notes-shared-alb (port 8002)"
        ),
        "{}",
        plan.stdout
    );
    assert_eq!(slot_records(&moto).await.len(), 2, "plan writes no slot");
    assert!(stack(&moto, "notes-pr-3").await.is_none());

    // `down` of one leaves the other's listener and rules, and the shared stack. (moto keeps
    // the ELB resources of a deleted stack, which AWS deletes: what is gone is read from
    // CloudFormation, what is left from both.)
    let down = moto.deployer(dir.path(), &["down", "--env", "pr-1", "--yes", "--json"]);
    let summary = common::summary(&down.stdout);
    assert_eq!(summary["shared_alb"], "notes-shared-alb", "{}", down.stderr);
    assert_eq!(summary["shared_alb_deleted"], false);
    assert!(stack(&moto, "notes-pr-1").await.is_none());
    assert!(stack(&moto, "notes-shared-alb").await.is_some());
    let other = tag(&two, "deployer:shared-alb").unwrap();
    let other_listener = physical_id(&moto, "notes-pr-2", "HttpListener").await;
    assert_eq!(
        rule_count(&moto, &other_listener).await,
        3,
        "pr-2 keeps its rules"
    );
    assert_eq!(slot_records(&moto).await.len(), 1);

    // `ls` names the shared load balancer of the env that is left.
    let ls = moto.deployer(dir.path(), &["ls", "--app", "notes"]);
    assert!(ls.stdout.contains(&other), "{}", ls.stdout);

    // `gc` of the last env (expired) deletes the shared stack with it.
    let gc = moto.deployer_with(
        dir.path(),
        &["gc", "--yes"],
        &[("DEPLOYER_NOW", "2099-01-01T00:00:00Z")],
    );
    assert!(
        gc.stderr
            .contains("notes-shared-alb: no env uses it any more"),
        "{}",
        gc.stderr
    );
    assert!(stack(&moto, "notes-pr-2").await.is_none());
    assert!(stack(&moto, "notes-shared-alb").await.is_none());
    assert!(slot_records(&moto).await.is_empty());
}

async fn physical_id(moto: &Moto, stack: &str, logical: &str) -> String {
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(moto).await);
    let out = cfn
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id(logical)
        .send()
        .await
        .unwrap();
    let detail = out.stack_resource_detail().unwrap();
    detail.physical_resource_id().unwrap().to_string()
}

/// The non-default rules of a listener.
async fn rule_count(moto: &Moto, listener: &str) -> usize {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk(moto).await);
    let rules = elb
        .describe_rules()
        .listener_arn(listener)
        .send()
        .await
        .unwrap();
    rules
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .count()
}

/// With `alb.preview_domain`, envs answer at `<env>.<domain>` over the shared HTTPS listener:
/// their rules sit there in bands of their own, and the shared stack owns the wildcard record.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_preview_domain_envs_share_the_https_listener_in_bands_of_their_own() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    // The zone the record goes in (found by name: the domain's parent) and the wildcard
    // certificate, made in moto the way an account would have them.
    let made = moto
        .command(common::python_tool("python"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args([
            "-c",
            "import boto3\n\
             boto3.client('route53').create_hosted_zone(Name='example.com.', CallerReference='t')\n\
             print(boto3.client('acm').request_certificate(DomainName='*.preview.example.com')['CertificateArn'])",
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let certificate = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let spec_path = dir.path().join("stacks/example.yaml");
    let spec = std::fs::read_to_string(&spec_path).unwrap().replace(
        "  idle_timeout: 60\n",
        &format!(
            "  idle_timeout: 60\n  certificate_arn: {certificate}\n  preview_domain: preview.example.com\n"
        ),
    );
    std::fs::write(&spec_path, spec).unwrap();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    for env in ["pr-1", "pr-2"] {
        let out = moto.deployer(
            dir.path(),
            &[
                "up",
                "--env",
                env,
                "--ttl",
                "2h",
                "--artifact",
                &artifact,
                "--yes",
                "--json",
            ],
        );
        let summary = common::summary(&out.stdout);
        assert_eq!(
            summary["outputs"]["Url"],
            format!("https://{env}.preview.example.com"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(load_balancers(&moto).await.len(), 1);
    // HTTP:80 (a redirect) and HTTPS:443 with both envs' rules: 3 routes and a default each.
    let found = listeners(&moto).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let (port, priorities) = &found[1];
    assert_eq!(*port, 443);
    let mut priorities: Vec<u32> = priorities.iter().map(|p| p.parse().unwrap()).collect();
    priorities.sort();
    assert_eq!(priorities, [100, 200, 300, 1000, 1100, 1200, 1300, 2000]);
    let record = moto
        .command(common::python_tool("python"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args([
            "-c",
            "import boto3\n\
             r = boto3.client('route53')\n\
             zone = r.list_hosted_zones_by_name(DNSName='example.com.')['HostedZones'][0]['Id']\n\
             print([s['Name'] for s in r.list_resource_record_sets(HostedZoneId=zone)['ResourceRecordSets'] if s['Type'] == 'A'])",
        ])
        .output()
        .unwrap();
    let record = String::from_utf8_lossy(&record.stdout);
    assert!(record.contains("*.preview.example.com."), "{record}");
}

/// `alb.share: none` for an env that was attached: its own load balancer takes over, and its
/// slot is freed (here the last one: the shared stack goes too).
#[tokio::test(flavor = "multi_thread")]
async fn an_env_that_stops_sharing_frees_its_slot() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    let up = [
        "up",
        "--env",
        "pr-1",
        "--ttl",
        "2h",
        "--artifact",
        &artifact,
        "--yes",
    ];
    moto.deployer(dir.path(), &up).expect_code(0);
    assert_eq!(slot_records(&moto).await.len(), 1);
    let spec_path = dir.path().join("stacks/example.yaml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        spec.replace(
            "  idle_timeout: 60\n",
            "  idle_timeout: 60\n  share: none\n",
        ),
    )
    .unwrap();
    let out = moto.deployer(dir.path(), &up);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("notes-shared-alb: no env uses it any more"),
        "{}",
        out.stderr
    );
    // (The change set drops the stack's `deployer:shared-alb` tag; moto keeps an executed
    // change set's stack tags as they were, so that is not checked here.)
    assert!(slot_records(&moto).await.is_empty());
    assert!(stack(&moto, "notes-shared-alb").await.is_none());
    // Its own load balancer now: the shared one is gone, and a later `up` has nothing to free.
    let again = moto.deployer(dir.path(), &up);
    again.expect_code(0);
    assert!(
        !again.stderr.contains("notes-shared-alb"),
        "{}",
        again.stderr
    );
}
