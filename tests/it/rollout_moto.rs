//! Gradual rollouts against moto, as far as moto goes: Lambda versions and aliases, ELB's
//! weighted forward actions on a deployed stack's rules and listener, and CloudWatch alarms whose
//! state a test sets. moto's CloudFormation cannot create `AWS::Lambda::Alias` (its change set
//! fails with HTTP 500), so the rollout template itself is checked by the render snapshot,
//! cfn-lint and checkov, and `up`'s promotion by the scripted fake (converge_fake::rollout).

use std::time::Duration;

use crate::common;

use common::moto::Moto;
use deployer::converge::cloud::Cloud;
use deployer::converge::engine::{Confirmation, Engine, Poll, Progress, Ui};
use deployer::converge::model::{AlarmStatus, Forwarder, ShiftPhase};
use deployer::converge::rollout::{Ended, Shift, Step};

#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<Progress>>);

impl Ui for Seen {
    fn progress(&self, progress: Progress) {
        self.0.lock().unwrap().push(progress);
    }
    fn confirm(&self, _: &str) -> Confirmation {
        Confirmation::NotInteractive
    }
}

const QUICK: Poll = Poll {
    first: Duration::from_millis(20),
    max: Duration::from_millis(50),
    steady: Duration::from_millis(25),
    near_end: Duration::from_millis(20),
};

/// A call to moto's CloudWatch query API.
fn cloudwatch(moto: &Moto, action: &str, params: &[(&str, &str)]) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", action)
        .append_pair("Version", "2010-08-01")
        .extend_pairs(params)
        .finish();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIATESTINGONLY00000/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"])
        .args(["--data-binary", &body])
        .arg(&moto.endpoint)
        .output()
        .expect("curl runs (scripts/test installs it)");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !answer.contains("<Error>"),
        "{answer}"
    );
}

/// PutMetricAlarm: an alarm on a function metric, as the rollout template makes (moto's
/// CloudFormation does not create `AWS::CloudWatch::Alarm`).
fn put_alarm(moto: &Moto, name: &str, metric: &str) {
    cloudwatch(
        moto,
        "PutMetricAlarm",
        &[
            ("AlarmName", name),
            ("Namespace", "AWS/Lambda"),
            ("MetricName", metric),
            ("Statistic", "Sum"),
            ("Period", "60"),
            ("EvaluationPeriods", "1"),
            ("Threshold", "1"),
            ("ComparisonOperator", "GreaterThanOrEqualToThreshold"),
        ],
    );
}

/// The `next` weight of each forward action of `rules` and the listener, as moto holds them.
async fn next_weights(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
    next_group: &str,
) -> Vec<i32> {
    let weight = |actions: &[aws_sdk_elasticloadbalancingv2::types::Action]| {
        actions
            .iter()
            .filter_map(|a| a.forward_config())
            .flat_map(|f| f.target_groups())
            .find(|g| g.target_group_arn() == Some(next_group))
            .and_then(|g| g.weight())
            .unwrap_or(-1)
    };
    let rules = elb
        .describe_rules()
        .listener_arn(listener)
        .send()
        .await
        .unwrap();
    let listeners = elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .unwrap();
    let mut weights: Vec<i32> = rules
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .map(|r| weight(r.actions()))
        .collect();
    weights.push(weight(listeners.listeners()[0].default_actions()));
    weights
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shift_moves_weights_on_moto_and_an_alarm_moves_them_back() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let artifact = format!("api={}", d.join("api.zip").display());
    moto.deployer(d, &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);

    let config = moto.sdk_config().await;
    let aws = deployer::aws::Aws::from_config(config.clone(), None);
    let cloud = aws.cloud();
    let physical: std::collections::BTreeMap<String, String> = cloud
        .resources("notes-dev")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.logical_id, r.physical_id))
        .collect();

    // Two versions and the aliases a rollout's template makes, through moto's Lambda.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = &physical["ApiFunction"];
    let mut versions = Vec::new();
    for description in ["first", "second"] {
        lambda
            .update_function_configuration()
            .function_name(function)
            .description(description)
            .send()
            .await
            .unwrap();
        let published = lambda
            .publish_version()
            .function_name(function)
            .send()
            .await
            .unwrap();
        versions.push(published.version().unwrap().to_string());
    }
    assert_ne!(versions[0], versions[1]);
    let mut alias_arns = Vec::new();
    for (alias, version) in [("live", &versions[0]), ("next", &versions[1])] {
        let made = lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .unwrap();
        alias_arns.push(made.alias_arn().unwrap().to_string());
    }
    // `next`'s target group, forwarding to its alias.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let next_group = elb
        .create_target_group()
        .name("notes-dev-api-next")
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Lambda)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    elb.register_targets()
        .target_group_arn(&next_group)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(&alias_arns[1])
                .build(),
        )
        .send()
        .await
        .unwrap();

    let listener = physical["HttpListener"].clone();
    let mut forwarders: Vec<Forwarder> = ["ApiRoute1", "ApiRoute2", "ApiRoute3"]
        .iter()
        .map(|r| Forwarder::Rule(physical[*r].clone()))
        .collect();
    forwarders.push(Forwarder::Listener(listener.clone()));
    let errors_alarm = "notes-dev-ApiNextErrorsAlarm-1A2B".to_string();
    put_alarm(&moto, &errors_alarm, "Errors");
    put_alarm(&moto, "notes-dev-ApiNext5xxAlarm-3C4D", "Throttles");
    let shift = Shift {
        stack: "notes-dev".into(),
        function: "api".into(),
        from: versions[0].clone(),
        to: versions[1].clone(),
        steps: vec![
            Step {
                percent: 20,
                hold: Duration::from_millis(800),
            },
            Step {
                percent: 100,
                hold: Duration::ZERO,
            },
        ],
        groups: (physical["ApiTargetGroup"].clone(), next_group.clone()),
        forwarders,
        alarms: vec![
            errors_alarm.clone(),
            "notes-dev-ApiNext5xxAlarm-3C4D".into(),
        ],
    };

    // To the end: every forward action gives `next` all the weight; back to `live` after.
    let ui = Seen::default();
    let engine = Engine::new(&cloud, &ui).with_poll(QUICK);
    assert_eq!(engine.shift(&shift).await.unwrap(), Ended::Finished);
    assert_eq!(next_weights(&elb, &listener, &next_group).await, [100; 4]);
    assert!(moto.count("ModifyRule") >= 6 && moto.count("ModifyListener") >= 2);
    assert!(
        moto.count("DescribeAlarms") >= 2,
        "alarms were read while holding"
    );
    engine.forward_to_live(&shift).await.unwrap();
    assert_eq!(next_weights(&elb, &listener, &next_group).await, [0; 4]);

    // An alarm goes off while 20 % is held: every request back on `live`, the alarm named.
    let reason =
        "Threshold Crossed: 1 datapoint [2.0] was greater than or equal to the threshold (1.0).";
    let setter = {
        let endpoint_moto = &moto;
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let alarm = [
                ("AlarmName", errors_alarm.as_str()),
                ("StateValue", "ALARM"),
                ("StateReason", reason),
            ];
            cloudwatch(endpoint_moto, "SetAlarmState", &alarm);
        }
    };
    let (ended, ()) = tokio::join!(engine.shift(&shift), setter);
    let Ended::RolledBack(Some(alarm)) = ended.unwrap() else {
        panic!("not rolled back by the alarm")
    };
    assert_eq!(
        (alarm.name.as_str(), alarm.status),
        (shift.alarms[0].as_str(), AlarmStatus::Alarm)
    );
    assert_eq!(alarm.reason, reason);
    assert_eq!(next_weights(&elb, &listener, &next_group).await, [0; 4]);
    let seen = ui.0.lock().unwrap();
    let last = seen.iter().rev().find_map(|p| match p {
        Progress::Shift(s) => Some(s.clone()),
        _ => None,
    });
    assert_eq!(last.map(|s| s.phase), Some(ShiftPhase::RolledBack));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_with_a_rollout_refuses_hotswap() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let spec = d.join("stacks/example.yaml");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "    tables: { notes: read_write }\n",
        "    tables: { notes: read_write }\n    rollout: { strategy: canary, percent: 20, wait: 1m }\n",
    );
    std::fs::write(&spec, text).unwrap();
    let artifact = format!("api={}", d.join("api.zip").display());
    // `plan` says how the new version would take traffic (once there is a bootstrap stack to
    // plan the app stack against).
    moto.deployer(d, &["bootstrap"]).expect_code(0);
    let plan = moto.deployer(d, &["plan", "--artifact", &artifact]);
    plan.expect_code(10);
    assert!(
        plan.stderr.contains("`api` publishes a version; `up` then moves its requests to it (canary: 20 % for 1m, 100 %)"),
        "{}",
        plan.stderr
    );
    moto.reset_recording();
    let up = moto.deployer(d, &["up", "--hotswap", "--artifact", &artifact, "--yes"]);
    up.expect_code(2);
    assert!(
        up.stderr
            .contains("--hotswap is refused in env `dev`: `api` has a rollout (`canary`"),
        "{}",
        up.stderr
    );
    assert_eq!(moto.count("CreateChangeSet") + moto.count("CreateStack"), 0);
    // An ephemeral env switches at once: it has no rollout, and its hotswap is not refused.
    let args = [
        "up",
        "--hotswap",
        "--env",
        "pr-7",
        "--ttl",
        "1d",
        "--artifact",
        &artifact,
        "--yes",
    ];
    let preview = moto.deployer(d, &args);
    preview.expect_code(0);
    assert!(!preview.stderr.contains("rollout"), "{}", preview.stderr);
    let template = moto.template("notes-pr-7").await;
    assert!(template["Resources"].get("ApiLiveAlias").is_none());
}

/// `status` names a function whose newest version serves nothing yet (the stack's outputs say
/// `live` and `next` differ: a rollback, or a shift deployer did not finish).
#[tokio::test(flavor = "multi_thread")]
async fn status_names_a_version_left_on_next() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    let spec = d.join("stacks/example.yaml");
    let plain = std::fs::read_to_string(&spec).unwrap();
    // moto cannot create the aliases: a stack with the outputs a rolled-back rollout leaves.
    let with_outputs = format!(
        "{plain}extra:\n  Outputs:\n    ApiLiveVersion: {{ Value: \"3\" }}\n    ApiNextVersion: {{ Value: \"4\" }}\n"
    );
    std::fs::write(&spec, with_outputs).unwrap();
    let artifact = format!("api={}", d.join("api.zip").display());
    moto.deployer(d, &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    let status = moto.deployer(d, &["status"]);
    status.expect_code(0);
    assert!(
        !status.stderr.contains("waits on `next`"),
        "no rollout in the spec: {}",
        status.stderr
    );
    let rollout = plain.replace(
        "    tables: { notes: read_write }\n",
        "    tables: { notes: read_write }\n    rollout: { strategy: canary }\n",
    );
    std::fs::write(&spec, rollout).unwrap();
    let status = moto.deployer(d, &["status"]);
    status.expect_code(0);
    assert!(
        status
            .stderr
            .contains("`api` serves version 3 while version 4 waits on `next`"),
        "{}",
        status.stderr
    );
}
