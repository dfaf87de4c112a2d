//! From the YAML tree to a [`Spec`], collecting every problem instead of stopping at the first.

use indexmap::IndexMap;

use super::diag::{Diag, Pos};
use super::model::*;
use super::names;
use super::yaml::{Node, Value, parse_bool, parse_int};

/// Decodes and validates a parsed spec. `None` when any problem was found (all are in `diags`).
pub fn decode(root: &Node, diags: &mut Vec<Diag>) -> Option<Spec> {
    let mut cx = Cx {
        diags,
        declared_tables: Vec::new(),
        region: None,
        env: None,
    };
    // A best-effort spec even when fields are wrong, so cross-checks still report their problems.
    let spec = cx.spec(root);
    if let Some(spec) = &spec {
        cross_check(spec, &cx.declared_tables, cx.diags);
    }
    spec.filter(|_| diags.is_empty())
}

/// The keys each part of the spec accepts; a test checks them against the JSON Schema.
pub mod keys {
    /// Keys of spec.
    pub const SPEC: &[&str] = &[
        "app",
        "env",
        "region",
        "tags",
        "protected_envs",
        "hotswap",
        "network",
        "alb",
        "functions",
        "tables",
        "alarms",
        "verify",
        "deploy",
        "extra",
    ];
    /// Keys of function.
    pub const FUNCTION: &[&str] = &[
        "path",
        "binary",
        "architecture",
        "memory",
        "timeout",
        "reserved_concurrency",
        "environment",
        "default_route",
        "routes",
        "tables",
        "log_retention_days",
        "alarms",
        "health_check",
        "build",
        "secrets",
        "rollout",
    ];
    /// Keys of a function's rollout.
    pub const ROLLOUT: &[&str] = &["strategy", "percent", "wait", "alarms"];
    /// Keys of table.
    pub const TABLE: &[&str] = &[
        "partition_key",
        "sort_key",
        "billing",
        "ttl_attribute",
        "stream",
        "point_in_time_recovery",
        "indexes",
        "encryption",
    ];
    /// Keys of network.
    pub const NETWORK: &[&str] = &["vpc_id", "subnet_ids", "dedicated"];
    /// Keys of alb.
    pub const ALB: &[&str] = &[
        "internal",
        "certificate_arn",
        "allowed_cidrs",
        "idle_timeout",
        "share",
        "preview_domain",
        "hosted_zone_id",
        "domain",
    ];
    /// Keys of route.
    pub const ROUTE: &[&str] = &["path", "host", "methods"];
    /// Keys of build.
    pub const BUILD: &[&str] = &["method", "path", "dockerfile", "builder_image"];
    /// Keys of key.
    pub const KEY: &[&str] = &["name", "type"];
    /// Keys of index.
    pub const INDEX: &[&str] = &["name", "partition_key", "sort_key", "projection"];
    /// Keys of billing.
    pub const BILLING: &[&str] = &["read", "write"];
    /// Keys of alarms (the spec's notification targets).
    pub const ALARM_TARGETS: &[&str] = &["email", "sns_topic_arn"];
    /// Keys of `verify`.
    pub const VERIFY: &[&str] = &["path", "expect"];
    /// Keys of deploy (how stack operations run).
    pub const DEPLOY: &[&str] = &["express"];
}

struct Cx<'d> {
    diags: &'d mut Vec<Diag>,
    /// Every table name under `tables`, including tables that failed to decode.
    declared_tables: Vec<String>,
    /// The spec's `region`, once read: ARNs that must be in it are checked against it.
    region: Option<String>,
    /// The spec's `env`, once read: the env `alb.domain` names as it is.
    env: Option<String>,
}

/// A mapping whose keys were checked against the allowed ones.
struct Fields<'n> {
    pos: Pos,
    entries: &'n [(Node, Node)],
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }
}

/// The key closest to `unknown`, when it is close enough to be a typo.
pub fn suggest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let known: Vec<&str> = known.into_iter().collect();
    if let Some(same) = known.iter().find(|k| k.eq_ignore_ascii_case(unknown)) {
        return Some(same);
    }
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// How a wrongly typed node is named in a message: scalars by their text.
fn found(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, plain: false }
            if parse_int(text).is_some() || parse_bool(text).is_some() =>
        {
            format!("the quoted string '{text}' (remove the quotes)")
        }
        Value::Scalar { text, .. } if !node.is_null() => format!("`{text}`"),
        _ => node.kind().to_string(),
    }
}

/// `architecture`'s values.
const SHARES: &[(&str, Share)] = &[
    ("ephemeral", Share::Ephemeral),
    ("all", Share::All),
    ("none", Share::None),
];

const ARCHITECTURES: &[(&str, Architecture)] = &[
    ("arm64", Architecture::Arm64),
    ("x86_64", Architecture::X86_64),
];

impl Cx<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diag::new(pos, message));
    }

    /// Checks that `node` is a mapping with only `allowed` keys.
    fn fields<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            let found = node.kind();
            self.err(node.pos, format!("{what} must be a mapping, found {found}"));
            return None;
        };
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !allowed.contains(&name) {
                let hint = match suggest(name, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                self.err(key.pos, format!("unknown key `{name}` in {what}; {hint}"));
            }
        }
        Some(Fields {
            pos: node.pos,
            entries,
        })
    }

    fn required<'n>(&mut self, f: &Fields<'n>, key: &str, what: &str) -> Option<&'n Node> {
        let node = f.get(key);
        if node.is_none() {
            self.err(f.pos, format!("{what} is missing the required key `{key}`"));
        }
        node
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match (&node.value, node.is_null()) {
            (Value::Scalar { text, .. }, false) => Some(text.clone()),
            _ => {
                let found = node.kind();
                self.err(node.pos, format!("{what} must be a string, found {found}"));
                None
            }
        }
    }

    /// A string that must match `rule`; the message explains the rule in words.
    /// An error at `node` when `arn` is not in the spec's region (unknown here without `region`:
    /// `up` checks it then).
    fn same_region(&mut self, node: &Node, field: &str, arn: &str) {
        if let Some(region) = &self.region
            && let Err(why) = names::check_same_region(field, arn, region)
        {
            self.err(node.pos, why);
        }
    }

    fn checked(
        &mut self,
        node: &Node,
        what: &str,
        rule: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let text = self.string(node, what)?;
        match rule(&text) {
            Ok(()) => Some(text),
            Err(why) => {
                self.err(node.pos, format!("{what} `{text}` {why}"));
                None
            }
        }
    }

    fn int(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<u32> {
        let value = match &node.value {
            Value::Scalar { text, plain: true } => parse_int(text),
            _ => None,
        };
        match value {
            Some(v) if (min..=max).contains(&v) => u32::try_from(v).ok(),
            Some(v) => {
                self.err(
                    node.pos,
                    format!("{what} must be from {min} to {max}, found {v}"),
                );
                None
            }
            None => {
                let found = found(node);
                self.err(
                    node.pos,
                    format!("{what} must be a whole number from {min} to {max}, found {found}"),
                );
                None
            }
        }
    }

    fn bounded(&mut self, node: &Node, what: &str, bounds: Bounds) -> Option<u32> {
        self.int(node, what, bounds.min, bounds.max)
    }

    fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        if let Value::Scalar { text, plain: true } = &node.value
            && let Some(b) = parse_bool(text)
        {
            return Some(b);
        }
        let found = found(node);
        self.err(
            node.pos,
            format!("{what} must be true or false, found {found}"),
        );
        None
    }

    /// One of a fixed set of words.
    fn choice<T: Clone>(&mut self, node: &Node, what: &str, options: &[(&str, T)]) -> Option<T> {
        let text = self.string(node, what)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == text) {
            return Some(v.clone());
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = match suggest(&text, names.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => String::new(),
        };
        self.err(
            node.pos,
            format!(
                "{what} must be one of {}, found `{text}`{hint}",
                names.join(", ")
            ),
        );
        None
    }

    fn list<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            _ => {
                let found = node.kind();
                self.err(node.pos, format!("{what} must be a list, found {found}"));
                &[]
            }
        }
    }

    fn map_entries<'n>(&mut self, node: &'n Node, what: &str) -> &'n [(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            _ => {
                let found = node.kind();
                self.err(node.pos, format!("{what} must be a mapping, found {found}"));
                &[]
            }
        }
    }

    fn spec(&mut self, root: &Node) -> Option<Spec> {
        let Value::Map(_) = root.value else {
            let found = root.kind();
            self.err(root.pos, format!("the spec must be a mapping with keys such as `app` and `functions`, found {found}"));
            return None;
        };
        let f = self.fields(root, "the spec", keys::SPEC)?;
        let app = self
            .required(&f, "app", "the spec")
            .and_then(|n| self.checked(n, "app", names::check_app));
        let env = match f.get("env") {
            Some(n) => self.checked(n, "env", names::check_env),
            None => Some(default_env()),
        };
        let region = f
            .get("region")
            .and_then(|n| self.checked(n, "region", names::check_region));
        self.region = region.clone();
        self.env = env.clone();
        let tags = f.get("tags").map(|n| self.tags(n)).unwrap_or_default();
        let protected_envs = f
            .get("protected_envs")
            .map(|n| {
                let items = self.list(n, "`protected_envs`");
                items
                    .iter()
                    .filter_map(|i| self.checked(i, "protected env", names::check_env))
                    .collect()
            })
            .unwrap_or_default();
        let hotswap = f
            .get("hotswap")
            .and_then(|n| self.bool(n, "`hotswap`"))
            .unwrap_or(false);
        let network = f.get("network").and_then(|n| self.network(n));
        let alb = f.get("alb").and_then(|n| self.alb(n));
        let mut functions = IndexMap::new();
        if let Some(n) = f.get("functions") {
            for (key, value) in self.map_entries(n, "`functions`") {
                let name = self.checked(key, "function name", names::check_resource_name);
                let function = self.function(value, key.as_str().unwrap_or_default(), key.pos);
                if let (Some(name), Some(function)) = (name, function) {
                    functions.insert(name, function);
                }
            }
        }
        let mut tables = IndexMap::new();
        if let Some(n) = f.get("tables") {
            for (key, value) in self.map_entries(n, "`tables`") {
                self.declared_tables
                    .extend(key.as_str().map(str::to_string));
                let name = self.checked(key, "table name", names::check_resource_name);
                let table = self.table(value, key.as_str().unwrap_or_default(), key.pos);
                if let (Some(name), Some(table)) = (name, table) {
                    tables.insert(name, table);
                }
            }
        }
        let alarms = f.get("alarms").and_then(|n| self.alarm_targets(n));
        let verify = f.get("verify").and_then(|n| self.verify(n));
        let deploy = f.get("deploy").and_then(|n| self.deploy(n));
        let extra = f.get("extra").and_then(|n| self.extra(n));
        Some(Spec {
            app: app.unwrap_or_default(),
            env: env.unwrap_or_default(),
            region,
            tags,
            protected_envs,
            hotswap,
            network,
            alb,
            functions,
            tables,
            alarms,
            verify,
            deploy,
            extra,
        })
    }

    fn deploy(&mut self, node: &Node) -> Option<Deploy> {
        let f = self.fields(node, "`deploy`", keys::DEPLOY)?;
        let express = f
            .get("express")
            .and_then(|n| self.bool(n, "`deploy.express`"));
        Some(Deploy { express })
    }

    fn verify(&mut self, node: &Node) -> Option<Verify> {
        let f = self.fields(node, "`verify`", keys::VERIFY)?;
        let path = match f.get("path") {
            Some(n) => {
                let path = self.string(n, "`verify.path`")?;
                if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                    self.err(
                        n.pos,
                        format!(
                            "`verify.path` must start with `/` and hold no spaces, found `{path}`"
                        ),
                    );
                    return None;
                }
                path
            }
            None => default_verify_path(),
        };
        let expect = f
            .get("expect")
            .and_then(|n| self.bounded(n, "`verify.expect`", HTTP_STATUS));
        Some(Verify { path, expect })
    }

    fn alarm_targets(&mut self, node: &Node) -> Option<AlarmTargets> {
        let f = self.fields(node, "`alarms`", keys::ALARM_TARGETS)?;
        let mut email: Vec<String> = Vec::new();
        if let Some(n) = f.get("email") {
            for item in self.list(n, "`alarms.email`") {
                if let Some(address) = self.checked(item, "alarm email", names::check_email) {
                    if email.contains(&address) {
                        self.err(item.pos, format!("`{address}` is listed twice"));
                    }
                    email.push(address);
                }
            }
        }
        let sns_topic_arn = f
            .get("sns_topic_arn")
            .and_then(|n| self.checked(n, "sns_topic_arn", names::check_sns_topic_arn));
        if let (Some(arn), Some(n)) = (&sns_topic_arn, f.get("sns_topic_arn")) {
            self.same_region(n, "sns_topic_arn", arn);
        }
        let no_email = f
            .get("email")
            .is_none_or(|n| matches!(&n.value, Value::Seq(items) if items.is_empty()));
        if no_email && f.get("sns_topic_arn").is_none() {
            self.err(f.pos, "`alarms` needs `email`, `sns_topic_arn`, or both");
        }
        Some(AlarmTargets {
            email,
            sns_topic_arn,
        })
    }

    fn tags(&mut self, node: &Node) -> IndexMap<String, String> {
        let mut tags = IndexMap::new();
        let entries = self.map_entries(node, "`tags`");
        if entries.len() > names::MAX_SPEC_TAGS {
            self.err(
                entries[names::MAX_SPEC_TAGS].0.pos,
                format!(
                    "{} tags: a resource holds at most 50, and deployer adds up to {} of its own, so the spec may set {}",
                    entries.len(),
                    50 - names::MAX_SPEC_TAGS,
                    names::MAX_SPEC_TAGS
                ),
            );
        }
        for (key, value) in entries {
            let Some(name) = self.checked(key, "tag key", names::check_tag_key) else {
                continue;
            };
            let what = format!("tag `{name}`");
            if let Some(value) = self.checked(value, &what, names::check_tag_value) {
                tags.insert(name, value);
            }
        }
        tags
    }

    fn network(&mut self, node: &Node) -> Option<Network> {
        let f = self.fields(node, "`network`", keys::NETWORK)?;
        let vpc_id = f
            .get("vpc_id")
            .and_then(|n| self.checked(n, "vpc_id", names::check_vpc_id));
        let mut subnet_ids: Vec<String> = Vec::new();
        let mut subnets_given = 0;
        if let Some(n) = f.get("subnet_ids") {
            let items = self.list(n, "`subnet_ids`");
            subnets_given = items.len();
            for item in items {
                let Some(id) = self.checked(item, "subnet id", names::check_subnet_id) else {
                    continue;
                };
                if subnet_ids.contains(&id) {
                    self.err(item.pos, format!("subnet `{id}` is listed twice"));
                }
                subnet_ids.push(id);
            }
        }
        let dedicated = f
            .get("dedicated")
            .and_then(|n| self.bool(n, "`dedicated`"))
            .unwrap_or(false);
        if dedicated && (f.get("vpc_id").is_some() || f.get("subnet_ids").is_some()) {
            self.err(f.pos, "`dedicated: true` creates a VPC; it cannot be combined with `vpc_id` or `subnet_ids`");
        } else if f.get("vpc_id").is_some() != f.get("subnet_ids").is_some() {
            self.err(
                f.pos,
                "`vpc_id` and `subnet_ids` go together: name the VPC and its subnets",
            );
        } else if f.get("subnet_ids").is_some() && subnets_given < 2 {
            self.err(f.pos, "an ALB needs subnets in at least 2 Availability Zones: give at least 2 `subnet_ids`");
        }
        Some(Network {
            vpc_id,
            subnet_ids,
            dedicated,
        })
    }

    fn alb(&mut self, node: &Node) -> Option<Alb> {
        let f = self.fields(node, "`alb`", keys::ALB)?;
        let internal = f
            .get("internal")
            .and_then(|n| self.bool(n, "`internal`"))
            .unwrap_or(false);
        let certificate_arn = f
            .get("certificate_arn")
            .and_then(|n| self.checked(n, "certificate_arn", names::check_certificate_arn));
        if let (Some(arn), Some(n)) = (&certificate_arn, f.get("certificate_arn")) {
            self.same_region(n, "certificate_arn", arn);
        }
        let allowed_cidrs = match f.get("allowed_cidrs") {
            Some(n) => {
                let items = self.list(n, "`allowed_cidrs`");
                if items.is_empty() && matches!(n.value, Value::Seq(_)) {
                    self.err(
                        n.pos,
                        "`allowed_cidrs` is empty: nobody could reach the load balancer",
                    );
                }
                let mut cidrs: Vec<String> = Vec::new();
                for item in items {
                    if let Some(cidr) = self.checked(item, "CIDR", names::check_ipv4_cidr) {
                        if cidrs.contains(&cidr) {
                            self.err(item.pos, format!("CIDR `{cidr}` is listed twice"));
                        }
                        cidrs.push(cidr);
                    }
                }
                cidrs
            }
            None => vec!["0.0.0.0/0".to_string()],
        };
        let idle_timeout = f
            .get("idle_timeout")
            .and_then(|n| self.bounded(n, "`idle_timeout`", IDLE_TIMEOUT))
            .unwrap_or(default_idle_timeout());
        let share = f
            .get("share")
            .and_then(|n| self.choice(n, "`share`", SHARES))
            .unwrap_or_default();
        let preview_domain = f
            .get("preview_domain")
            .and_then(|n| self.checked(n, "preview_domain", names::check_preview_domain));
        let hosted_zone_id = f
            .get("hosted_zone_id")
            .and_then(|n| self.checked(n, "hosted_zone_id", names::check_hosted_zone_id));
        if let (Some(n), None) = (f.get("preview_domain"), &certificate_arn) {
            self.err(n.pos, "`preview_domain` needs `certificate_arn`: a wildcard certificate for `*.<preview_domain>` (envs answer over HTTPS at `<env>.<preview_domain>`)");
        }
        let domain = self.alb_domain(&f, share);
        Some(Alb {
            internal,
            certificate_arn,
            allowed_cidrs,
            idle_timeout,
            share,
            preview_domain,
            hosted_zone_id,
            domain,
        })
    }

    /// `alb.domain`, and the checks that tie it to `hosted_zone_id` and `share`.
    fn alb_domain(&mut self, f: &Fields, share: Share) -> Option<Domain> {
        let domain = f.get("domain").and_then(|n| {
            let name = self.checked(n, "domain", names::check_domain)?;
            let env = self.env.clone().unwrap_or_default();
            Some(Domain { name, env })
        });
        if let (Some(n), None, None) = (
            f.get("hosted_zone_id"),
            f.get("preview_domain"),
            f.get("domain"),
        ) {
            self.err(n.pos, "`hosted_zone_id` is where the `domain` or `preview_domain` records go: set one of them too");
        }
        if let (Some(n), Share::All) = (f.get("domain"), share) {
            self.err(n.pos, "`domain` is the name of an env's own load balancer, and with `share: all` no env has one: use `preview_domain` (envs answer at `<env>.<preview_domain>`)");
        }
        domain
    }

    fn function(&mut self, node: &Node, name: &str, pos: Pos) -> Option<Function> {
        let what = format!("function `{name}`");
        let f = self.fields(node, &what, keys::FUNCTION)?;
        let path = self
            .required(&f, "path", &what)
            .and_then(|n| self.string(n, "`path`"));
        let binary = f
            .get("binary")
            .and_then(|n| self.checked(n, "binary", names::check_binary));
        let architecture = f
            .get("architecture")
            .and_then(|n| self.choice(n, "`architecture`", ARCHITECTURES))
            .unwrap_or_default();
        let memory = f
            .get("memory")
            .and_then(|n| self.bounded(n, "`memory`", MEMORY))
            .unwrap_or(default_memory());
        let timeout = f
            .get("timeout")
            .and_then(|n| self.bounded(n, "`timeout`", TIMEOUT))
            .unwrap_or(default_timeout());
        let reserved_concurrency = f
            .get("reserved_concurrency")
            .and_then(|n| self.bounded(n, "`reserved_concurrency`", RESERVED_CONCURRENCY));
        let environment = f
            .get("environment")
            .map(|n| self.environment(n))
            .unwrap_or_default();
        let default_route = f
            .get("default_route")
            .and_then(|n| self.bool(n, "`default_route`"))
            .unwrap_or(false);
        let default_route_pos = f.get("default_route").map_or(pos, |n| n.pos);
        let routes = self.routes(f.get("routes"));
        let (tables, table_ref_pos) = match f.get("tables") {
            Some(n) => self.function_tables(n),
            None => (IndexMap::new(), Vec::new()),
        };
        let log_retention_days = match f.get("log_retention_days") {
            Some(n) => self.log_retention(n)?,
            None => default_log_retention_days(),
        };
        let alarms = f
            .get("alarms")
            .and_then(|n| self.bool(n, "`alarms`"))
            .unwrap_or(true);
        let health_check = f
            .get("health_check")
            .and_then(|n| self.health_check(n, name, f.get("routes").is_some() || default_route));
        let build = f.get("build").and_then(|n| self.build(n));
        let rollout = f
            .get("rollout")
            .and_then(|n| self.rollout(n, name, f.get("routes").is_some() || default_route));
        let secrets = f
            .get("secrets")
            .map(|n| self.secrets(n, &environment))
            .unwrap_or_default();
        Some(Function {
            pos,
            path: path?,
            binary,
            architecture,
            memory,
            timeout,
            reserved_concurrency,
            environment,
            default_route,
            default_route_pos,
            routes,
            tables,
            table_ref_pos,
            log_retention_days,
            alarms,
            health_check,
            build,
            secrets,
            rollout,
        })
    }

    /// A function's `rollout`: a strategy, its step and wait, and the alarms it watches.
    fn rollout(&mut self, node: &Node, name: &str, routed: bool) -> Option<Rollout> {
        let f = self.fields(node, "`rollout`", keys::ROLLOUT)?;
        if !routed {
            self.err(node.pos, format!("function `{name}` has a `rollout` but no routes: only traffic through the load balancer is shifted"));
        }
        let strategy = self.required(&f, "strategy", "`rollout`").and_then(|n| {
            self.choice(
                n,
                "`rollout.strategy`",
                &[
                    ("canary", Strategy::Canary),
                    ("linear", Strategy::Linear),
                    ("all_at_once", Strategy::AllAtOnce),
                ],
            )
        })?;
        let percent = match (f.get("percent"), strategy) {
            (Some(n), Strategy::AllAtOnce) => {
                self.err(n.pos, "`rollout.percent` is for `canary` and `linear`: `all_at_once` moves every request at once");
                None
            }
            (Some(n), _) => self.bounded(n, "`rollout.percent`", ROLLOUT_PERCENT),
            (None, _) => Some(default_rollout_percent()),
        };
        let wait = match f.get("wait") {
            Some(n) => {
                let text = self.string(n, "`rollout.wait`")?;
                match names::parse_wait(&text) {
                    Ok(wait) => Some(wait),
                    Err(why) => {
                        self.err(n.pos, format!("`rollout.wait` `{text}` {why}"));
                        None
                    }
                }
            }
            None => Some(strategy.default_wait()),
        };
        let mut alarms: Vec<String> = Vec::new();
        if let Some(n) = f.get("alarms") {
            let items = self.list(n, "`rollout.alarms`");
            if items.len() > ROLLOUT_ALARMS_MAX {
                self.err(n.pos, format!("`rollout.alarms` names {} alarms; a rollout watches at most {ROLLOUT_ALARMS_MAX} besides its own", items.len()));
            }
            for item in items {
                let Some(alarm) = self.checked(item, "alarm", names::check_alarm_name) else {
                    continue;
                };
                if alarms.contains(&alarm) {
                    self.err(item.pos, format!("alarm `{alarm}` is listed twice"));
                    continue;
                }
                alarms.push(alarm);
            }
        }
        Some(Rollout {
            pos: node.pos,
            strategy,
            percent: percent?,
            wait: wait?,
            alarms,
        })
    }

    /// A function's `routes`, each checked.
    fn routes(&mut self, n: Option<&Node>) -> Vec<Route> {
        let Some(n) = n else {
            return Vec::new();
        };
        self.list(n, "`routes`")
            .iter()
            .filter_map(|r| self.route(r))
            .collect()
    }

    /// A function's `secrets`: `NAME: ssm:<parameter>` or `NAME: secretsmanager:<name>`.
    fn secrets(
        &mut self,
        node: &Node,
        environment: &IndexMap<String, String>,
    ) -> IndexMap<String, Secret> {
        let mut secrets = IndexMap::new();
        for (key, value) in self.map_entries(node, "`secrets`") {
            let Some(name) = self.checked(key, "secret variable", names::check_env_var) else {
                continue;
            };
            let Some(text) = self.string(value, &format!("secret `{name}`")) else {
                continue;
            };
            let parsed = match text.split_once(':') {
                Some(("ssm", rest)) => Some((
                    SecretStore::Ssm,
                    rest,
                    names::check_ssm_parameter as fn(&str) -> Result<(), String>,
                )),
                Some(("secretsmanager", rest)) => Some((
                    SecretStore::SecretsManager,
                    rest,
                    names::check_secret_name as fn(&str) -> Result<(), String>,
                )),
                _ => None,
            };
            let Some((store, rest, rule)) = parsed else {
                self.err(value.pos, format!("secret `{name}` is `{text}`: write where it is kept, `ssm:/path/name` (or `ssm:name`, under `/<app>/<env>/`) or `secretsmanager:name`; the value itself never goes in the spec (`deployer secret set`)"));
                continue;
            };
            if let Err(why) = rule(rest) {
                self.err(value.pos, format!("secret `{name}`: `{rest}` {why}"));
                continue;
            }
            let secret = Secret {
                store,
                name: rest.to_string(),
                kms_key_arn: None,
            };
            let variable = secret.variable(&name);
            for clash in [&name, &variable] {
                if environment.contains_key(clash) {
                    self.err(key.pos, format!("secret `{name}` sets `{variable}`, and `{clash}` is also in `environment`: rename one"));
                }
            }
            secrets.insert(name, secret);
        }
        secrets
    }

    /// `health_check`: a path, on a routed function (only that has a target group to check).
    fn health_check(&mut self, n: &Node, name: &str, routed: bool) -> Option<String> {
        let path = self.checked(n, "health_check", names::check_health_check_path);
        if path.is_some() && !routed {
            self.err(
                n.pos,
                format!("function `{name}` has a `health_check` but no routes: only a routed function has a target group to check"),
            );
        }
        path
    }

    /// A function's `tables`: the access to each, and where each is named.
    fn function_tables(&mut self, n: &Node) -> (IndexMap<String, Access>, Vec<Pos>) {
        let mut tables = IndexMap::new();
        let mut table_ref_pos = Vec::new();
        for (key, value) in self.map_entries(n, "`tables` of a function") {
            let Some(table) = self.string(key, "table name") else {
                continue;
            };
            let access = self.choice(
                value,
                &format!("access to table `{table}`"),
                &[
                    ("read", Access::Read),
                    ("write", Access::Write),
                    ("read_write", Access::ReadWrite),
                ],
            );
            if let Some(access) = access {
                tables.insert(table, access);
                table_ref_pos.push(key.pos);
            }
        }
        (tables, table_ref_pos)
    }

    /// `log_retention_days`: one of the values CloudWatch Logs accepts.
    fn log_retention(&mut self, n: &Node) -> Option<u32> {
        let days = self.bounded(n, "`log_retention_days`", LOG_RETENTION)?;
        if !LOG_RETENTION_DAYS.contains(&days) {
            let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
            self.err(
                n.pos,
                format!(
                    "`log_retention_days` must be one of {}, found {days}",
                    allowed.join(", ")
                ),
            );
        }
        Some(days)
    }

    fn environment(&mut self, node: &Node) -> IndexMap<String, String> {
        let mut vars = IndexMap::new();
        let mut size = 0;
        for (key, value) in self.map_entries(node, "`environment`") {
            let Some(name) = self.checked(key, "environment variable", names::check_env_var) else {
                continue;
            };
            // Numbers and booleans are fine as values: Lambda sees them as text anyway.
            let value = match &value.value {
                Value::Scalar { text, .. } => text.clone(),
                _ => {
                    let found = value.kind();
                    self.err(
                        value.pos,
                        format!("environment variable `{name}` must be a string, found {found}"),
                    );
                    continue;
                }
            };
            size += name.len() + value.len();
            if size > names::ENVIRONMENT_LIMIT {
                self.err(key.pos, "environment variables exceed Lambda's 4 KB limit");
            }
            vars.insert(name, value);
        }
        vars
    }

    fn route(&mut self, node: &Node) -> Option<Route> {
        let f = self.fields(node, "a route", keys::ROUTE)?;
        let path = f
            .get("path")
            .and_then(|n| self.checked(n, "route path", names::check_path_pattern));
        let host = f
            .get("host")
            .and_then(|n| self.checked(n, "route host", names::check_host_pattern));
        let mut methods: Vec<String> = Vec::new();
        if let Some(n) = f.get("methods") {
            let items = self.list(n, "`methods`");
            if items.is_empty() && matches!(n.value, Value::Seq(_)) {
                self.err(
                    n.pos,
                    "`methods` is empty: leave it out to match every method",
                );
            }
            for item in items {
                let m = self.choice(
                    item,
                    "method",
                    &[
                        ("GET", "GET"),
                        ("HEAD", "HEAD"),
                        ("POST", "POST"),
                        ("PUT", "PUT"),
                        ("PATCH", "PATCH"),
                        ("DELETE", "DELETE"),
                        ("OPTIONS", "OPTIONS"),
                    ],
                );
                if let Some(m) = m {
                    if methods.iter().any(|x| x == m) {
                        self.err(item.pos, format!("method `{m}` is listed twice"));
                    }
                    methods.push(m.to_string());
                }
            }
        }
        if f.get("path").is_none() && f.get("host").is_none() {
            self.err(f.pos, "a route needs a `path`, a `host`, or both");
            return None;
        }
        if methods.len() > names::MAX_CONDITION_VALUES {
            self.err(
                f.get("methods").map_or(f.pos, |n| n.pos),
                format!(
                    "{} methods in one route: an ALB rule condition matches at most {} values; split them over two routes with the same path",
                    methods.len(),
                    names::MAX_CONDITION_VALUES
                ),
            );
        }
        Some(Route {
            pos: f.pos,
            path,
            host,
            methods,
        })
    }

    fn build(&mut self, node: &Node) -> Option<Build> {
        let f = self.fields(node, "`build`", keys::BUILD)?;
        let method = f
            .get("method")
            .and_then(|n| {
                self.choice(
                    n,
                    "`build.method`",
                    &[
                        ("docker", BuildMethod::Docker),
                        ("cargo-lambda", BuildMethod::CargoLambda),
                        ("zip", BuildMethod::Zip),
                    ],
                )
            })
            .unwrap_or_default();
        let path = f.get("path").and_then(|n| self.string(n, "`build.path`"));
        let dockerfile = f
            .get("dockerfile")
            .and_then(|n| self.string(n, "`build.dockerfile`"));
        if method == BuildMethod::Zip && f.get("path").is_none() {
            self.err(f.pos, "`build.method: zip` needs `path`: the prebuilt zip");
        }
        if method != BuildMethod::Zip && f.get("path").is_some() {
            self.err(f.pos, "`build.path` is only for `method: zip`");
        }
        if method != BuildMethod::Docker && f.get("dockerfile").is_some() {
            self.err(f.pos, "`build.dockerfile` is only for `method: docker`");
        }
        let builder_image = f
            .get("builder_image")
            .and_then(|n| self.string(n, "`build.builder_image`"));
        if method != BuildMethod::Docker && f.get("builder_image").is_some() {
            self.err(f.pos, "`build.builder_image` is only for `method: docker`");
        }
        Some(Build {
            method,
            path,
            dockerfile,
            builder_image,
        })
    }

    /// A table's `indexes`: at most 20, each name once.
    fn indexes(&mut self, n: &Node, what: &str) -> Vec<Index> {
        let mut indexes: Vec<Index> = Vec::new();
        let items = self.list(n, "`indexes`");
        if items.len() > 20 {
            self.err(
                n.pos,
                format!("a table can have at most 20 indexes, found {}", items.len()),
            );
        }
        for item in items {
            if let Some(index) = self.index(item) {
                if indexes.iter().any(|i| i.name == index.name) {
                    self.err(
                        item.pos,
                        format!("index `{}` is defined twice in {what}", index.name),
                    );
                }
                indexes.push(index);
            }
        }
        indexes
    }

    /// A table's `encryption`: `aws_owned`, `aws_managed` or a KMS key ARN of the spec's region.
    fn encryption(&mut self, n: &Node) -> Option<Encryption> {
        Some(match self.string(n, "`encryption`")?.as_str() {
            "aws_owned" => Encryption::AwsOwned,
            "aws_managed" => Encryption::AwsManaged,
            arn => match names::check_kms_key_arn(arn) {
                Ok(()) => {
                    self.same_region(n, "encryption", arn);
                    Encryption::Kms(arn.to_string())
                }
                Err(why) => {
                    self.err(
                        n.pos,
                        format!("`encryption` must be `aws_owned`, `aws_managed` or a KMS key ARN; `{arn}` {why}"),
                    );
                    Encryption::AwsOwned
                }
            },
        })
    }

    fn table(&mut self, node: &Node, name: &str, pos: Pos) -> Option<Table> {
        let what = format!("table `{name}`");
        let f = self.fields(node, &what, keys::TABLE)?;
        let partition_key = self
            .required(&f, "partition_key", &what)
            .and_then(|n| self.key(n, "`partition_key`"));
        let sort_key = f.get("sort_key").and_then(|n| self.key(n, "`sort_key`"));
        let billing = f
            .get("billing")
            .and_then(|n| self.billing(n))
            .unwrap_or_default();
        let ttl_attribute = f
            .get("ttl_attribute")
            .and_then(|n| self.checked(n, "ttl_attribute", names::check_attribute));
        let stream = f.get("stream").and_then(|n| {
            self.choice(
                n,
                "`stream`",
                &[
                    ("keys_only", StreamView::KeysOnly),
                    ("new_image", StreamView::NewImage),
                    ("old_image", StreamView::OldImage),
                    ("new_and_old_images", StreamView::NewAndOldImages),
                ],
            )
        });
        let point_in_time_recovery = f
            .get("point_in_time_recovery")
            .and_then(|n| self.bool(n, "`point_in_time_recovery`"))
            .unwrap_or(true);
        let indexes = match f.get("indexes") {
            Some(n) => self.indexes(n, &what),
            None => Vec::new(),
        };
        let encryption = match f.get("encryption") {
            Some(n) => self.encryption(n)?,
            None => Encryption::AwsOwned,
        };
        Some(Table {
            pos,
            partition_key: partition_key?,
            sort_key,
            billing,
            ttl_attribute,
            stream,
            point_in_time_recovery,
            indexes,
            encryption,
        })
    }

    fn key(&mut self, node: &Node, what: &str) -> Option<Key> {
        let f = self.fields(node, what, keys::KEY)?;
        let name = self
            .required(&f, "name", what)
            .and_then(|n| self.checked(n, "key name", names::check_attribute));
        let kind = self.required(&f, "type", what).and_then(|n| {
            self.choice(
                n,
                "key `type`",
                &[("S", KeyType::S), ("N", KeyType::N), ("B", KeyType::B)],
            )
        });
        Some(Key {
            pos: f.pos,
            name: name?,
            kind: kind?,
        })
    }

    fn billing(&mut self, node: &Node) -> Option<Billing> {
        if let Value::Scalar { .. } = node.value {
            if node.as_str() == Some("on_demand") {
                return Some(Billing::OnDemand);
            }
            let found = found(node);
            self.err(
                node.pos,
                format!(
                    "`billing` must be `on_demand` or `{{ read: N, write: N }}`, found {found}"
                ),
            );
            return None;
        }
        let f = self.fields(node, "`billing`", keys::BILLING)?;
        let read = self
            .required(&f, "read", "`billing`")
            .and_then(|n| self.bounded(n, "`read`", CAPACITY));
        let write = self
            .required(&f, "write", "`billing`")
            .and_then(|n| self.bounded(n, "`write`", CAPACITY));
        Some(Billing::Provisioned {
            read: read?,
            write: write?,
        })
    }

    fn index(&mut self, node: &Node) -> Option<Index> {
        let f = self.fields(node, "an index", keys::INDEX)?;
        let name = self
            .required(&f, "name", "an index")
            .and_then(|n| self.checked(n, "index name", names::check_index_name));
        let partition_key = self
            .required(&f, "partition_key", "an index")
            .and_then(|n| self.key(n, "`partition_key`"));
        let sort_key = f.get("sort_key").and_then(|n| self.key(n, "`sort_key`"));
        let projection = match f.get("projection") {
            None => Some(Projection::All),
            Some(
                n @ Node {
                    value: Value::Seq(items),
                    ..
                },
            ) => {
                if items.is_empty() {
                    self.err(n.pos, "`projection` lists no attributes: use `keys_only`");
                }
                let mut attrs: Vec<String> = Vec::new();
                for item in items {
                    if let Some(a) =
                        self.checked(item, "projected attribute", names::check_attribute)
                    {
                        if attrs.contains(&a) {
                            self.err(item.pos, format!("attribute `{a}` is projected twice"));
                        }
                        attrs.push(a);
                    }
                }
                Some(Projection::Include(attrs))
            }
            Some(n) => self.choice(
                n,
                "`projection`",
                &[
                    ("all", Projection::All),
                    ("keys_only", Projection::KeysOnly),
                ],
            ),
        };
        Some(Index {
            name: name?,
            partition_key: partition_key?,
            sort_key,
            projection: projection?,
        })
    }

    fn extra(&mut self, node: &Node) -> Option<Extra> {
        const SECTIONS: &[&str] = &[
            "Resources",
            "Outputs",
            "Conditions",
            "Mappings",
            "Parameters",
        ];
        let f = self.fields(node, "`extra`", SECTIONS)?;
        let mut extra = Extra::default();
        for section in SECTIONS {
            let Some(n) = f.get(section) else {
                continue;
            };
            let mut items = IndexMap::new();
            for (key, value) in self.map_entries(n, &format!("`extra.{section}`")) {
                let Some(id) = self.checked(key, "logical id", names::check_logical_id) else {
                    continue;
                };
                if !matches!(value.value, Value::Map(_)) {
                    let found = value.kind();
                    self.err(
                        value.pos,
                        format!("`extra.{section}.{id}` must be a mapping, found {found}"),
                    );
                    continue;
                }
                extra
                    .positions
                    .push((section.to_string(), id.clone(), key.pos));
                items.insert(id, value.to_json());
            }
            extra.sections.insert(section.to_string(), items);
        }
        Some(extra)
    }
}

/// Rules that span sections: references, uniqueness, and names derived from several fields.
fn cross_check(spec: &Spec, declared_tables: &[String], diags: &mut Vec<Diag>) {
    check_function_references(spec, declared_tables, diags);
    check_default_route(spec, diags);
    check_routes(spec, diags);
    check_logical_ids(spec, diags);
    check_key_types(spec, diags);
    check_environments(spec, diags);
}

/// Each function's tables exist, its routes have a load balancer, its name fits.
fn check_function_references(spec: &Spec, declared_tables: &[String], diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    for (name, f) in &spec.functions {
        for ((table, _), pos) in f.tables.iter().zip(&f.table_ref_pos) {
            if !declared_tables.contains(table) {
                let hint = match suggest(table, declared_tables.iter().map(String::as_str)) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => String::new(),
                };
                err(
                    *pos,
                    format!(
                        "function `{name}` uses table `{table}`, which is not defined under `tables`{hint}"
                    ),
                );
            }
        }
        if spec.alb.is_none() && (f.default_route || !f.routes.is_empty()) {
            let pos = f.routes.first().map_or(f.default_route_pos, |r| r.pos);
            err(
                pos,
                format!(
                    "function `{name}` has routes, but the spec has no `alb` section to route from"
                ),
            );
        }
        let names_valid = !spec.app.is_empty() && !spec.env.is_empty();
        if let (true, Err(why)) = (
            names_valid,
            names::check_function_name(&spec.app, &spec.env, name),
        ) {
            err(f.pos, why);
        }
    }
}

/// One default route at most.
fn check_default_route(spec: &Spec, diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    let mut default_owner: Option<&str> = None;
    for (name, f) in spec.functions.iter().filter(|(_, f)| f.default_route) {
        match default_owner {
            Some(owner) => err(
                f.default_route_pos,
                format!("only one function can be the default route, and `{owner}` already is"),
            ),
            None => default_owner = Some(name),
        }
    }
}

/// No route twice; at most the 100 rules a listener allows.
fn check_routes(spec: &Spec, diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    let mut seen: Vec<(&Route, &str)> = Vec::new();
    for (name, f) in &spec.functions {
        for route in &f.routes {
            let mut methods = route.methods.clone();
            methods.sort();
            let same = seen.iter().find(|(r, _)| {
                let mut other = r.methods.clone();
                other.sort();
                r.path == route.path && r.host == route.host && other == methods
            });
            match same {
                Some((first, owner)) => err(
                    route.pos,
                    format!(
                        "duplicate route: function `{owner}` already has this route at line {}",
                        first.pos.line
                    ),
                ),
                None => seen.push((route, name)),
            }
        }
    }
    if seen.len() > 100 {
        let pos = seen[100].0.pos;
        err(
            pos,
            format!(
                "an ALB listener allows 100 rules; the spec has {}",
                seen.len()
            ),
        );
    }
}

/// No two names that become one CloudFormation id.
fn check_logical_ids(spec: &Spec, diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    // Logical ids and env var names are derived from names; two names must not collapse into one.
    let mut ids: Vec<(String, &str, &str, Pos)> = Vec::new();
    let named = spec
        .functions
        .iter()
        .map(|(n, f)| (n, "function", f.pos))
        .chain(spec.tables.iter().map(|(n, t)| (n, "table", t.pos)));
    for (name, kind, pos) in named {
        let id = names::logical_id(name);
        if let Some((_, _, other, _)) = ids.iter().find(|(i, k, ..)| *i == id && *k == kind) {
            err(
                pos,
                format!(
                    "{kind} names `{other}` and `{name}` both become the CloudFormation id `{id}`; rename one"
                ),
            );
        } else {
            ids.push((id, kind, name, pos));
        }
    }
}

/// A key attribute has one type across a table and its indexes; partition and sort key differ.
fn check_key_types(spec: &Spec, diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    for (name, t) in &spec.tables {
        let mut keys = vec![&t.partition_key];
        keys.extend(&t.sort_key);
        for index in &t.indexes {
            keys.push(&index.partition_key);
            keys.extend(&index.sort_key);
        }
        let mut declared: Vec<&Key> = Vec::new();
        for key in keys {
            match declared.iter().find(|k| k.name == key.name) {
                Some(first) if first.kind != key.kind => err(
                    key.pos,
                    format!(
                        "attribute `{}` of table `{name}` is declared as {} here but as {} at line {}",
                        key.name,
                        key.kind.as_str(),
                        first.kind.as_str(),
                        first.pos.line
                    ),
                ),
                Some(_) => {}
                None => declared.push(key),
            }
        }
        if let Some(sort) = &t.sort_key
            && sort.name == t.partition_key.name
        {
            err(
                sort.pos,
                format!(
                    "table `{name}` uses `{}` as both partition and sort key",
                    sort.name
                ),
            );
        }
    }
}

/// Each function's environment fits Lambda's limit once deployer adds `TABLE_*`, and sets none
/// of those itself.
fn check_environments(spec: &Spec, diags: &mut Vec<Diag>) {
    let mut err = |pos: Pos, message: String| diags.push(Diag::new(pos, message));
    for (name, f) in &spec.functions {
        let own: usize = f.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        let size = names::environment_size(spec, f);
        // Over the limit on its own, the spec's part is reported where it happens.
        if own <= names::ENVIRONMENT_LIMIT && size > names::ENVIRONMENT_LIMIT {
            err(
                f.pos,
                format!(
                    "the environment of function `{name}` can reach {size} bytes once deployed, counting the `TABLE_*` variables deployer adds (each holds a table name CloudFormation generates); Lambda allows {}",
                    names::ENVIRONMENT_LIMIT
                ),
            );
        }
        for var in f.environment.keys() {
            if let Some(table) = spec.tables.keys().find(|t| names::table_env_var(t) == *var)
                && f.tables.contains_key(table)
            {
                err(
                    f.pos,
                    format!(
                        "function `{name}` sets `{var}`, which deployer sets to the name of table `{table}`"
                    ),
                );
            }
        }
    }
}
