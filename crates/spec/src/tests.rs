//! One test row per validation rule: the input and the exact `line:col: message` it must give.

use super::parse;

const FN: &str = "functions:\n  api:\n    path: svc\n";

fn errors(source: &str) -> Vec<String> {
    match parse(source, "s.yaml") {
        Ok(_) => Vec::new(),
        Err(e) => e
            .diags
            .iter()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect(),
    }
}

#[track_caller]
fn rejects(source: &str, expected: &str) {
    assert_eq!(errors(source), [expected], "for:\n{source}");
}

#[test]
fn rules_from_what_aws_enforces() {
    // Tags reach DynamoDB, whose tag characters are the strictest of the tagged resources.
    rejects(
        "app: notes\ntags: { owner: a@b }\n",
        "2:16: tag `owner` `a@b` contains `@`: tags propagate to DynamoDB tables, which accept only letters, digits, spaces and `+ - = . _ : /`",
    );
    rejects(
        "app: notes\ntags: { \"a#b\": x }\n",
        "2:9: tag key `a#b` contains `#`: tags propagate to DynamoDB tables, which accept only letters, digits, spaces and `+ - = . _ : /`",
    );
    assert!(errors("app: notes\ntags: { Équipe: \"plate-forme: a/b +1 = x.y_z\" }\n").is_empty());
    let many: String = (0..45).map(|i| format!("  t{i}: v\n")).collect();
    rejects(
        &format!("app: notes\ntags:\n{many}"),
        "47:3: 45 tags: a resource holds at most 50, and deployer adds up to 6 of its own, so the spec may set 44",
    );
    let alb = "app: notes\nalb: {}\n";
    // ALB rule conditions: at most 3 values each.
    rejects(
        &format!(
            "{alb}{FN}    routes:\n      - path: /a\n        methods: [GET, HEAD, POST, PUT]\n"
        ),
        "8:18: 4 methods in one route: an ALB rule condition matches at most 3 values; split them over two routes with the same path",
    );
    // The load balancer is IPv4-only.
    rejects(
        "app: notes\nalb: { allowed_cidrs: [\"::/0\"] }\n",
        "2:24: CIDR `::/0` is IPv6, but the load balancer is IPv4-only (an internal ALB cannot be anything else): such a rule would never match",
    );
    // A certificate of another region.
    rejects(
        "app: notes\nregion: eu-west-1\nalb: { certificate_arn: \"arn:aws:acm:us-east-1:123456789012:certificate/x\" }\n",
        "3:25: certificate_arn is in us-east-1, but the stack deploys to eu-west-1: a load balancer can only use an ACM certificate of its own region",
    );
    // The environment budget counts the TABLE_* variables.
    let big = "v".repeat(4060);
    rejects(
        &format!(
            "app: notes\n{FN}    environment: {{ BIG: {big} }}\n    tables: {{ notes: read }}\ntables:\n  notes:\n    partition_key: {{ name: pk, type: S }}\n"
        ),
        "3:3: the environment of function `api` can reach 4108 bytes once deployed, counting the `TABLE_*` variables deployer adds (each holds a table name CloudFormation generates); Lambda allows 4096",
    );
    // Opt-in health checks need a target group.
    rejects(
        &format!("app: notes\n{FN}    health_check: /health\n"),
        "5:19: function `api` has a `health_check` but no routes: only a routed function has a target group to check",
    );
    rejects(
        &format!("{alb}{FN}    default_route: true\n    health_check: health\n"),
        "7:19: health_check `health` must start with `/`",
    );
    // Encryption and alarm targets.
    rejects(
        "app: notes\ntables:\n  t:\n    partition_key: { name: pk, type: S }\n    encryption: customer\n",
        "5:17: `encryption` must be `aws_owned`, `aws_managed` or a KMS key ARN; `customer` is not a KMS key ARN such as `arn:aws:kms:eu-west-1:123456789012:key/1234abcd-...`",
    );
    rejects(
        "app: notes\nalarms: { email: [ops] }\n",
        "2:19: alarm email `ops` is not an email address",
    );
    rejects(
        "app: notes\nalarms: {}\n",
        "2:9: `alarms` needs `email`, `sns_topic_arn`, or both",
    );
}

#[test]
fn top_level_rules() {
    rejects(
        "app: notes\nregion: europe\n",
        "2:9: region `europe` is not an AWS region name such as `eu-west-1`",
    );
    rejects(
        "app: notes\ntags: { team: [a] }\n",
        "2:15: tag `team` must be a string, found a list",
    );
    let long = "x".repeat(257);
    rejects(
        &format!(
            "app: notes
tags: {{ t: {long} }}
"
        ),
        &format!("2:12: tag `t` `{long}` is longer than 256 characters"),
    );
    rejects(
        "app: notes\nprotected_envs: [Prod]\n",
        "2:18: protected env `Prod` must be a lowercase letter followed by up to 31 lowercase letters, digits or single dashes",
    );
    rejects(
        "app: notes\nprotected_envs: prod\n",
        "2:17: `protected_envs` must be a list, found a string",
    );
    rejects(
        "app: notes\nverify: { path: health }\n",
        "2:17: `verify.path` must start with `/` and hold no spaces, found `health`",
    );
    rejects(
        "app: notes\nverify: { expect: 99 }\n",
        "2:19: `verify.expect` must be from 100 to 599, found 99",
    );
    rejects(
        "app: notes\nverify: { method: POST }\n",
        "2:11: unknown key `method` in `verify`; expected one of: path, expect",
    );
    rejects(
        "app: notes\nhotswap: yes please\n",
        "2:10: `hotswap` must be true or false, found `yes please`",
    );
    rejects(
        "app: notes\ndeploy: { express: sometimes }\n",
        "2:20: `deploy.express` must be true or false, found `sometimes`",
    );
    rejects(
        "app: notes\ndeploy: { fast: true }\n",
        "2:11: unknown key `fast` in `deploy`; expected one of: express",
    );
    rejects(
        "app: notes\nbogus: 1\n",
        "2:1: unknown key `bogus` in the spec; expected one of: app, env, region, tags, protected_envs, hotswap, network, alb, functions, tables, alarms, verify, deploy, extra",
    );
    rejects(
        "app: notes\nx: &a 1\n",
        "2:1: unknown key `x` in the spec; expected one of: app, env, region, tags, protected_envs, hotswap, network, alb, functions, tables, alarms, verify, deploy, extra",
    );
    rejects(
        "app: *nothing\n",
        "1:6: invalid YAML: while parsing node, found unknown anchor",
    );
    rejects("? [a]\n: 1\n", "1:3: mapping keys must be plain strings");
}

#[test]
fn network_rules() {
    rejects(
        "app: a\nnetwork: { vpc_id: vpc-0123 }\n",
        "2:10: `vpc_id` and `subnet_ids` go together: name the VPC and its subnets",
    );
    rejects(
        "app: a\nnetwork: { dedicated: true, vpc_id: vpc-0123, subnet_ids: [subnet-1, subnet-2] }\n",
        "2:10: `dedicated: true` creates a VPC; it cannot be combined with `vpc_id` or `subnet_ids`",
    );
    rejects(
        "app: a\nnetwork: { vpc_id: vpc-0123, subnet_ids: [subnet-1, subnet-1] }\n",
        "2:53: subnet `subnet-1` is listed twice",
    );
    rejects(
        "app: a\nnetwork: { vpc_id: vpc-0123, subnet_ids: [subnet-1, sn-2] }\n",
        "2:53: subnet id `sn-2` is not a subnet id such as `subnet-0123abcd`",
    );
    rejects(
        "app: a\nnetwork: { vpc_id: vpc-XYZ, subnet_ids: [subnet-1, subnet-2] }\n",
        "2:20: vpc_id `vpc-XYZ` is not a VPC id such as `vpc-0123abcd`",
    );
    rejects(
        "app: a\nnetwork: { dedicated: yes }\n",
        "2:23: `dedicated` must be true or false, found `yes`",
    );
}

#[test]
fn alb_rules() {
    rejects(
        "app: a\nalb: { allowed_cidrs: [] }\n",
        "2:23: `allowed_cidrs` is empty: nobody could reach the load balancer",
    );
    rejects(
        "app: a\nalb: { allowed_cidrs: [10.0.0.0/8, 10.0.0.0/8] }\n",
        "2:36: CIDR `10.0.0.0/8` is listed twice",
    );
    rejects(
        "app: a\nalb: { allowed_cidrs: [anywhere] }\n",
        "2:24: CIDR `anywhere` is not a CIDR such as `203.0.113.0/24` or `::/0`",
    );
    rejects(
        "app: a\nalb: { idle_timeout: 0 }\n",
        "2:22: `idle_timeout` must be from 1 to 4000, found 0",
    );
    rejects(
        "app: a\nalb: { internal: 1 }\n",
        "2:18: `internal` must be true or false, found `1`",
    );
    rejects(
        "app: a\nalb: [x]\n",
        "2:6: `alb` must be a mapping, found a list",
    );
}

#[test]
fn function_rules() {
    let f = |extra: &str| format!("app: a\nalb: {{}}\n{FN}{extra}");
    rejects(
        &f("    binary: 'my bin'\n"),
        "6:13: binary `my bin` must be a cargo binary name (letters, digits, `-`, `_`)",
    );
    rejects(
        &f("    reserved_concurrency: -1\n"),
        "6:27: `reserved_concurrency` must be from 0 to 100000, found -1",
    );
    rejects(
        &f("    environment: { 1X: a }\n"),
        "6:20: environment variable `1X` must start with a letter or `_` and hold only letters, digits and `_`",
    );
    rejects(
        &f("    environment: { A: [1] }\n"),
        "6:23: environment variable `A` must be a string, found a list",
    );
    rejects(
        &f(&format!(
            "    environment: {{ A: {}, B: {} }}\n",
            "x".repeat(4000),
            "y".repeat(100)
        )),
        "6:4025: environment variables exceed Lambda's 4 KB limit",
    );
    rejects(
        &f("    default_route: maybe\n"),
        "6:20: `default_route` must be true or false, found `maybe`",
    );
    rejects(
        &f("    routes: { path: /x }\n"),
        "6:13: `routes` must be a list, found a mapping",
    );
    rejects(
        &f("    routes: [{ path: /x, methods: [] }]\n"),
        "6:35: `methods` is empty: leave it out to match every method",
    );
    rejects(
        &f("    routes: [{ path: /x, methods: [GET, GET] }]\n"),
        "6:41: method `GET` is listed twice",
    );
    rejects(
        &f("    routes: [{ path: /x, methods: [get] }]\n"),
        "6:36: method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, found `get`; did you mean `GET`?",
    );
    rejects(
        &f("    routes: [{ host: localhost }]\n"),
        "6:22: route host `localhost` is not a host name such as `api.example.com`",
    );
    rejects(
        &f("    routes: [{ host: 'api_x.example.com' }]\n"),
        "6:22: route host `api_x.example.com` contains `_`, which ALB host patterns do not allow",
    );
    rejects(
        &f(&format!("    routes: [{{ path: /{} }}]\n", "a".repeat(128))),
        &format!(
            "6:22: route path `/{}` is longer than the 128 characters an ALB path pattern allows",
            "a".repeat(128)
        ),
    );
    rejects(
        &f("    routes: [{ path: '/a b' }]\n"),
        "6:22: route path `/a b` contains ` `, which ALB path patterns do not allow",
    );
    rejects(
        &f("    routes: [{ path: /x, verbs: [GET] }]\n"),
        "6:26: unknown key `verbs` in a route; expected one of: path, host, methods",
    );
    rejects(
        &f("    build: { method: dockr }\n"),
        "6:22: `build.method` must be one of docker, cargo-lambda, zip, found `dockr`; did you mean `docker`?",
    );
    rejects(
        &f("    build: { method: docker, path: x.zip }\n"),
        "6:12: `build.path` is only for `method: zip`",
    );
    rejects(
        &f("    build: { method: cargo-lambda, dockerfile: D }\n"),
        "6:12: `build.dockerfile` is only for `method: docker`",
    );
    rejects(
        &f("    build: { method: zip, path: a.zip, builder_image: rust:1 }\n"),
        "6:12: `build.builder_image` is only for `method: docker`",
    );
    rejects(
        &f("    alarms: off\n"),
        "6:13: `alarms` must be true or false, found `off`",
    );
    rejects(
        "app: a\nfunctions:\n  api: {}\n",
        "3:8: function `api` is missing the required key `path`",
    );
    rejects(
        "app: a\nfunctions:\n  Api:\n    path: x\n",
        "3:3: function name `Api` must start with a lowercase letter and hold at most 48 lowercase letters, digits, `-` or `_`",
    );
    rejects(
        "app: a\nfunctions:\n  api:\n    path: x\n    default_route: true\n",
        "5:20: function `api` has routes, but the spec has no `alb` section to route from",
    );
}

#[test]
fn environment_may_not_shadow_table_variables() {
    rejects(
        "app: a\nfunctions:\n  api:\n    path: x\n    environment: { TABLE_NOTES: x }\n    tables: { notes: read }\ntables:\n  notes:\n    partition_key: { name: pk, type: S }\n",
        "3:3: function `api` sets `TABLE_NOTES`, which deployer sets to the name of table `notes`",
    );
}

#[test]
fn table_rules() {
    let t = |body: &str| {
        format!("app: a\ntables:\n  notes:\n    partition_key: {{ name: pk, type: S }}\n{body}")
    };
    rejects(
        &t("    sort_key: { name: pk, type: S }\n"),
        "5:15: table `notes` uses `pk` as both partition and sort key",
    );
    rejects(
        &t("    billing: { read: 0, write: 1 }\n"),
        "5:22: `read` must be from 1 to 40000, found 0",
    );
    rejects(
        &t("    billing: { read: 1 }\n"),
        "5:14: `billing` is missing the required key `write`",
    );
    rejects(
        &t("    stream: all\n"),
        "5:13: `stream` must be one of keys_only, new_image, old_image, new_and_old_images, found `all`",
    );
    rejects(
        &t("    point_in_time_recovery: 'true'\n"),
        "5:29: `point_in_time_recovery` must be true or false, found the quoted string 'true' (remove the quotes)",
    );
    rejects(
        &t("    ttl_attribute: ''\n"),
        "5:20: ttl_attribute `` must be 1 to 255 characters",
    );
    rejects(
        &t("    indexes: [{ name: ab, partition_key: { name: x, type: S } }]\n"),
        "5:23: index name `ab` must be 3 to 255 letters, digits, `_`, `-` or `.`",
    );
    rejects(
        &t(
            "    indexes:\n      - { name: abc, partition_key: { name: x, type: S } }\n      - { name: abc, partition_key: { name: y, type: S } }\n",
        ),
        "7:9: index `abc` is defined twice in table `notes`",
    );
    rejects(
        &t("    indexes: [{ name: abc, partition_key: { name: x, type: S }, projection: [] }]\n"),
        "5:77: `projection` lists no attributes: use `keys_only`",
    );
    rejects(
        &t(
            "    indexes: [{ name: abc, partition_key: { name: x, type: S }, projection: [a, a] }]\n",
        ),
        "5:81: attribute `a` is projected twice",
    );
    rejects(
        &t("    indexes: [{ name: abc, partition_key: { name: x, type: S }, projection: some }]\n"),
        "5:77: `projection` must be one of all, keys_only, found `some`",
    );
    rejects(
        &t("    indexes: [{ name: abc }]\n"),
        "5:15: an index is missing the required key `partition_key`",
    );
    let many: String = (0..21)
        .map(|i| format!("      - {{ name: idx{i}, partition_key: {{ name: k, type: S }} }}\n"))
        .collect();
    rejects(
        &t(&format!("    indexes:\n{many}")),
        "6:7: a table can have at most 20 indexes, found 21",
    );
    rejects(
        "app: a\ntables:\n  notes:\n    partition_key: { name: pk }\n",
        "4:20: `partition_key` is missing the required key `type`",
    );
    rejects(
        "app: a\ntables:\n  Notes:\n    partition_key: { name: pk, type: S }\n",
        "3:3: table name `Notes` must start with a lowercase letter and hold at most 48 lowercase letters, digits, `-` or `_`",
    );
}

#[test]
fn extra_rules() {
    rejects(
        &format!("app: a\n{FN}extra:\n  Resources:\n    my-topic: {{ Type: AWS::SNS::Topic }}\n"),
        "7:5: logical id `my-topic` must be 1 to 255 letters and digits (CloudFormation logical id)",
    );
    rejects(
        &format!("app: a\n{FN}extra:\n  Outputs:\n    X: 1\n"),
        "7:8: `extra.Outputs.X` must be a mapping, found a number",
    );
}

#[test]
fn a_valid_spec_keeps_defaults() {
    let spec = parse(&format!("app: notes\n{FN}"), "s.yaml").unwrap();
    assert_eq!(spec.env, "dev");
    let f = &spec.functions["api"];
    assert_eq!(
        (f.memory, f.timeout, f.log_retention_days, f.alarms),
        (256, 10, 14, true)
    );
    assert_eq!(f.architecture.as_str(), "arm64");
    assert_eq!(spec.stack_name(), "notes-dev");
}

#[test]
fn never_panics_on_truncated_or_mutated_specs() {
    let example = include_str!("../../../stacks/example.yaml");
    for end in (0..=example.len()).filter(|i| example.is_char_boundary(*i)) {
        let _ = parse(&example[..end], "s.yaml");
    }
    let bytes = example.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [
            b'\t', b':', b'[', b'{', b'-', b'&', b'*', b'!', b'"', b'\n', b' ',
        ] {
            let mut mutated = bytes.to_vec();
            mutated[i] = replacement;
            if let Ok(text) = std::str::from_utf8(&mutated) {
                let _ = parse(text, "s.yaml");
            }
        }
    }
}

#[test]
fn the_json_schema_names_exactly_the_keys_the_decoder_accepts() {
    use super::decode::keys;
    let schema: serde_json::Value = serde_json::from_str(&super::schema()).unwrap();
    let props = |v: &serde_json::Value| {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let sorted = |k: &[&str]| {
        let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    let defs = &schema["$defs"];
    assert_eq!(props(&schema), sorted(keys::SPEC));
    for (def, expected) in [
        ("Network", keys::NETWORK),
        ("Alb", keys::ALB),
        ("Function", keys::FUNCTION),
        ("Route", keys::ROUTE),
        ("Build", keys::BUILD),
        ("Table", keys::TABLE),
        ("Key", keys::KEY),
        ("Index", keys::INDEX),
        ("Verify", keys::VERIFY),
        ("Deploy", keys::DEPLOY),
    ] {
        assert_eq!(props(&defs[def]), sorted(expected), "{def}");
        assert_eq!(defs[def]["additionalProperties"], false, "{def}");
    }
    assert_eq!(
        props(&defs["Table"]["properties"]["billing"]["oneOf"][1]),
        sorted(keys::BILLING)
    );
}

/// The schema's ranges and defaults come from the same constants the decoder checks against.
#[test]
fn the_schema_states_the_decoders_ranges_and_defaults() {
    use super::model::{BOUNDED, CAPACITY};
    let schema: serde_json::Value = serde_json::from_str(&super::schema()).unwrap();
    for (def, property, bounds) in BOUNDED {
        let p = &schema["$defs"][def]["properties"][property];
        assert_eq!(p["minimum"], bounds.min, "{def}.{property}");
        assert_eq!(p["maximum"], bounds.max, "{def}.{property}");
        match bounds.default {
            Some(d) => assert_eq!(p["default"], d, "{def}.{property}"),
            None => assert!(p["default"].is_null(), "{def}.{property}"),
        }
        // The decoder: the bounds accepted, one past them refused.
        let field = |v: i64| match *def {
            "Alb" => format!("app: a\nalb: {{ {property}: {v} }}\n"),
            "Verify" => format!("app: a\nverify: {{ {property}: {v} }}\n"),
            _ => format!("app: a\nfunctions:\n  f:\n    path: x\n    {property}: {v}\n"),
        };
        let accepts = |v: i64| errors(&field(v)).iter().all(|e| !e.contains(property));
        if *property != "log_retention_days" {
            // (retention must also be one of CloudWatch's values)
            assert!(
                accepts(bounds.min) && accepts(bounds.max),
                "{def}.{property}"
            );
        }
        assert!(
            !accepts(bounds.min - 1) && !accepts(bounds.max + 1),
            "{def}.{property}"
        );
    }
    // The docs: a range written in a field's description (the schema's, from the model's doc
    // comment) or next to the key in the README's spec reference is the constants' range.
    let readme = include_str!("../../../README.md");
    for (def, property, bounds) in BOUNDED {
        let range = format!("{}..={}", bounds.min, bounds.max);
        let p = &schema["$defs"][def]["properties"][property];
        let description = p["description"].as_str().unwrap_or_default();
        assert!(
            !description.contains("..=") || description.contains(&range),
            "{def}.{property}: {description}"
        );
        let key = format!("{property}:");
        for line in readme
            .lines()
            .filter(|l| l.trim_start().starts_with(&key) && l.contains("..="))
        {
            assert!(line.contains(&range), "README: {line}");
        }
    }
    let billing = &schema["$defs"]["Table"]["properties"]["billing"]["oneOf"][1]["properties"];
    assert_eq!(billing["read"]["minimum"], CAPACITY.min);
    assert_eq!(billing["write"]["maximum"], CAPACITY.max);
}

#[test]
fn secret_names_follow_ssm_and_secrets_manager_rules() {
    use crate::names::{check_secret_name, check_ssm_parameter};
    for ok in ["db", "/notes/prod/db-password", "a.b_c-d"] {
        assert_eq!(check_ssm_parameter(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "/aws/x",
        "ssm-key",
        "/a//b",
        "/a/",
        "a b",
        &"/l".repeat(16),
    ] {
        assert!(check_ssm_parameter(bad).is_err(), "{bad}");
    }
    for ok in ["notes/stripe", "a+b=c.d@e-f_g"] {
        assert_eq!(check_secret_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "a b", "arn:aws:secretsmanager:x", &"s".repeat(513)] {
        assert!(check_secret_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn relative_parameters_live_under_the_app_and_env() {
    let spec = parse(
        "app: notes\nenv: prod\nalb: { domain: api.example.com }\nfunctions:\n  api:\n    path: svc\n    secrets:\n      A: ssm:db\n      B: ssm:/shared/key\n      C: secretsmanager:notes/stripe\n",
        "s.yaml",
    )
    .unwrap();
    let secrets = &spec.functions["api"].secrets;
    assert_eq!(secrets["A"].full_name("notes", "prod"), "/notes/prod/db");
    assert_eq!(secrets["B"].full_name("notes", "prod"), "/shared/key");
    assert_eq!(
        secrets["C"].reference("notes", "prod"),
        "secretsmanager:notes/stripe"
    );
    assert_eq!(secrets["A"].variable("A"), "A_PARAMETER");
    assert_eq!(secrets["C"].variable("C"), "C_SECRET_ID");
    // The domain names the spec's env; another env answers under it.
    assert_eq!(spec.domain_name().as_deref(), Some("api.example.com"));
    let staging = spec.for_env("staging").unwrap();
    assert_eq!(
        staging.domain_name().as_deref(),
        Some("staging.api.example.com")
    );
    assert_eq!(
        staging.functions["api"].secrets["A"].full_name("notes", "staging"),
        "/notes/staging/db"
    );
}

#[test]
fn rollout_waits_and_defaults() {
    use super::names::parse_wait;
    use std::time::Duration;
    for (text, seconds) in [
        ("0s", 0),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("60m", 3600),
    ] {
        assert_eq!(parse_wait(text), Ok(Duration::from_secs(seconds)), "{text}");
    }
    for bad in [
        "",
        "m",
        "5",
        "5 m",
        "-5m",
        "1.5m",
        "5d",
        "61m",
        "99999999999999999999s",
    ] {
        assert!(parse_wait(bad).is_err(), "{bad}");
    }
    let spec = |rollout: &str| {
        parse(
            &format!("app: notes\nalb: {{}}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    rollout: {rollout}\n"),
            "s.yaml",
        )
        .unwrap()
        .functions["api"]
            .rollout
            .clone()
            .unwrap()
    };
    let canary = spec("{ strategy: canary }");
    assert_eq!(
        (canary.percent, canary.wait),
        (10, Duration::from_secs(300))
    );
    let linear = spec("{ strategy: linear, percent: 25, alarms: [a, b] }");
    assert_eq!((linear.percent, linear.wait), (25, Duration::from_secs(60)));
    assert_eq!(linear.alarms, ["a", "b"]);
    assert_eq!(spec("{ strategy: all_at_once }").wait, Duration::ZERO);
    rejects(
        "app: notes\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    rollout: { strategy: canary, alarms: [a, a] }\n",
        "7:46: alarm `a` is listed twice",
    );
    rejects(
        "app: notes\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    rollout: { strategy: linear, percent: 100 }\n",
        "7:43: `rollout.percent` must be from 1 to 99, found 100",
    );
}
