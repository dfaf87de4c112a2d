//! The load balancer's routing, read from the rendered template (not re-derived from the spec, so
//! what `deployer local` serves is what CloudFormation will create), and matched the way an
//! Application Load Balancer evaluates listener rules.

use serde_json::Value;

/// What a rule (or the listener's default) does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Invoke the function behind a target group.
    Forward {
        /// The target group's logical id.
        target_group: String,
        /// Its `Name` (for the event's `targetGroupArn`).
        target_group_name: String,
        /// The logical id of the function registered in it.
        function: String,
    },
    /// Answer without a function.
    Fixed {
        /// The status code.
        status: u16,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
}

/// One listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's logical id.
    pub id: String,
    /// Lower is evaluated first.
    pub priority: u32,
    /// `path-pattern` values (any may match); empty: no path condition.
    pub paths: Vec<String>,
    /// `host-header` values.
    pub hosts: Vec<String>,
    /// `http-request-method` values.
    pub methods: Vec<String>,
    /// What it does.
    pub action: Action,
}

/// The listener the routes attach to: its rules in priority order and its default action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Sorted by priority.
    pub rules: Vec<Rule>,
    /// When no rule matches.
    pub default: Action,
}

/// A function as the template defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    /// Its logical id.
    pub logical_id: String,
    /// `FunctionName`.
    pub name: String,
    /// `arm64` or `x86_64`.
    pub architecture: String,
    /// `MemorySize`, MB.
    pub memory: u64,
    /// `Timeout`, seconds.
    pub timeout: u64,
    /// `LoggingConfig.LogFormat` is JSON.
    pub json_logs: bool,
    /// `Environment.Variables`: a literal, or a `Ref` to a logical id (a table) left to the caller.
    pub environment: Vec<(String, EnvValue)>,
}

/// An environment variable's value in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// As written.
    Literal(String),
    /// `{"Ref": id}`.
    Ref(String),
}

fn resources(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.iter())
}

fn of_type<'a>(
    template: &'a Value,
    kind: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(template).filter(move |(_, r)| r["Type"] == kind)
}

fn ref_of(value: &Value) -> Option<&str> {
    value["Ref"].as_str()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn action(template: &Value, actions: &Value) -> Result<Action, String> {
    let first = &actions[0];
    match first["Type"].as_str() {
        Some("forward") => {
            let target_group = ref_of(&first["TargetGroupArn"])
                .ok_or("a forward action names no target group by Ref")?
                .to_string();
            let group = &template["Resources"][&target_group];
            let function = group["Properties"]["Targets"][0]["Id"]["Fn::GetAtt"][0]
                .as_str()
                .ok_or_else(|| format!("target group {target_group} registers no function"))?
                .to_string();
            Ok(Action::Forward {
                target_group_name: group["Properties"]["Name"]
                    .as_str()
                    .unwrap_or(&target_group)
                    .to_string(),
                target_group,
                function,
            })
        }
        Some("fixed-response") => {
            let config = &first["FixedResponseConfig"];
            Ok(Action::Fixed {
                status: config["StatusCode"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or("a fixed response has no status code")?,
                content_type: config["ContentType"]
                    .as_str()
                    .unwrap_or("text/plain")
                    .to_string(),
                body: config["MessageBody"].as_str().unwrap_or("").to_string(),
            })
        }
        other => Err(format!("listener action {other:?} is not served locally")),
    }
}

impl Routing {
    /// The routing of the listener the rules attach to: HTTPS when the template has one (its
    /// HTTP listener only redirects there), else HTTP.
    pub fn from_template(template: &Value) -> Result<Routing, String> {
        let listeners: Vec<(&String, &Value)> =
            of_type(template, "AWS::ElasticLoadBalancingV2::Listener").collect();
        let (listener, properties) = listeners
            .iter()
            .find(|(_, l)| l["Properties"]["Protocol"] == "HTTPS")
            .or(listeners.first())
            .map(|(id, l)| (id.as_str(), &l["Properties"]))
            .ok_or("the stack has no load balancer listener (no function has routes)")?;
        let default = action(template, &properties["DefaultActions"])?;
        let mut rules = Vec::new();
        for (id, rule) in of_type(template, "AWS::ElasticLoadBalancingV2::ListenerRule") {
            let properties = &rule["Properties"];
            if ref_of(&properties["ListenerArn"]) != Some(listener) {
                continue;
            }
            let mut parsed = Rule {
                id: id.clone(),
                priority: properties["Priority"]
                    .as_u64()
                    .ok_or_else(|| format!("rule {id} has no priority"))?
                    as u32,
                paths: Vec::new(),
                hosts: Vec::new(),
                methods: Vec::new(),
                action: action(template, &properties["Actions"])?,
            };
            for condition in properties["Conditions"].as_array().into_iter().flatten() {
                match condition["Field"].as_str() {
                    Some("path-pattern") => {
                        parsed.paths = strings(&condition["PathPatternConfig"]["Values"])
                    }
                    Some("host-header") => {
                        parsed.hosts = strings(&condition["HostHeaderConfig"]["Values"])
                    }
                    Some("http-request-method") => {
                        parsed.methods = strings(&condition["HttpRequestMethodConfig"]["Values"])
                    }
                    other => {
                        return Err(format!(
                            "rule {id}: condition {other:?} is not served locally"
                        ));
                    }
                }
            }
            rules.push(parsed);
        }
        rules.sort_by_key(|r| r.priority);
        Ok(Routing { rules, default })
    }

    /// What the listener does with a request: the first rule, by priority, whose every
    /// condition matches, else the default action.
    pub fn route(&self, method: &str, host: &str, path: &str) -> (&Action, Option<&Rule>) {
        for rule in &self.rules {
            if rule.matches(method, host, path) {
                return (&rule.action, Some(rule));
            }
        }
        (&self.default, None)
    }
}

impl Rule {
    /// Conditions are ANDed; the values of one condition are ORed.
    pub fn matches(&self, method: &str, host: &str, path: &str) -> bool {
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| test(v))
        };
        any(&self.paths, &|p| wildcard(p.as_bytes(), path.as_bytes()))
            && any(&self.hosts, &|h| {
                // Host names compare case-insensitively, without the port.
                let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
                wildcard(h.to_ascii_lowercase().as_bytes(), host.as_bytes())
            })
            && any(&self.methods, &|m| m == method)
    }
}

/// ELB's pattern match: `*` is any run of characters (including none), `?` exactly one, the
/// rest literal and case-sensitive. Written by hand: glob crates treat `/` or `[` specially.
pub fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The functions the template defines.
pub fn functions(template: &Value) -> Vec<FunctionDef> {
    of_type(template, "AWS::Lambda::Function")
        .map(|(id, f)| {
            let p = &f["Properties"];
            let environment = p["Environment"]["Variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    let value = match (value.as_str(), ref_of(value)) {
                        (Some(literal), _) => EnvValue::Literal(literal.to_string()),
                        (_, Some(id)) => EnvValue::Ref(id.to_string()),
                        _ => EnvValue::Literal(value.to_string()),
                    };
                    (key.clone(), value)
                })
                .collect();
            FunctionDef {
                logical_id: id.clone(),
                name: p["FunctionName"].as_str().unwrap_or(id).to_string(),
                architecture: p["Architectures"][0]
                    .as_str()
                    .unwrap_or("x86_64")
                    .to_string(),
                memory: p["MemorySize"].as_u64().unwrap_or(128),
                timeout: p["Timeout"].as_u64().unwrap_or(3),
                json_logs: p["LoggingConfig"]["LogFormat"] == "JSON",
                environment,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_elb_documents_them() {
        for (pattern, text, expected) in [
            ("/notes*", "/notes", true),
            ("/notes*", "/notes/42", true),
            ("/notes*", "/Notes", false), // case-sensitive
            ("/notes*", "/note", false),
            ("/openapi.json", "/openapi.json", true),
            ("/openapi.json", "/openapi.jsonx", false),
            ("/img/*.png", "/img/a/b.png", true), // `*` crosses `/`
            ("/v?/x", "/v1/x", true),
            ("/v?/x", "/v10/x", false),
            ("*", "", true),
            ("/a*b*c", "/aXbYbZc", true),
            ("/a*b*c", "/aXbYbZ", false),
            ("", "/", false),
        ] {
            assert_eq!(
                wildcard(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    fn template() -> Value {
        let forward =
            |group: &str| json!([{ "Type": "forward", "TargetGroupArn": { "Ref": group } }]);
        json!({ "Resources": {
            "HttpListener": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
                "Protocol": "HTTP", "DefaultActions": [{ "Type": "fixed-response", "FixedResponseConfig": {
                    "StatusCode": "404", "ContentType": "application/json", "MessageBody": "{}" } }] } },
            "ApiTargetGroup": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
                "Name": "notes-dev-api-1a2b3c4d", "Targets": [{ "Id": { "Fn::GetAtt": ["ApiFunction", "Arn"] } }] } },
            "AdminTargetGroup": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
                "Name": "notes-dev-admin-0f0f0f0f", "Targets": [{ "Id": { "Fn::GetAtt": ["AdminFunction", "Arn"] } }] } },
            // Out of priority order on purpose.
            "ApiRoute1": { "Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {
                "ListenerArn": { "Ref": "HttpListener" }, "Priority": 300,
                "Conditions": [{ "Field": "path-pattern", "PathPatternConfig": { "Values": ["/notes*"] } }],
                "Actions": forward("ApiTargetGroup") } },
            "AdminRoute1": { "Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {
                "ListenerArn": { "Ref": "HttpListener" }, "Priority": 100,
                "Conditions": [
                    { "Field": "path-pattern", "PathPatternConfig": { "Values": ["/notes/admin*", "/admin*"] } },
                    { "Field": "http-request-method", "HttpRequestMethodConfig": { "Values": ["POST", "DELETE"] } }],
                "Actions": forward("AdminTargetGroup") } },
            "AdminRoute2": { "Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {
                "ListenerArn": { "Ref": "HttpListener" }, "Priority": 200,
                "Conditions": [{ "Field": "host-header", "HostHeaderConfig": { "Values": ["admin.*.example.com"] } }],
                "Actions": forward("AdminTargetGroup") } },
        }})
    }

    #[test]
    fn rules_are_evaluated_in_priority_order_with_every_condition() {
        let routing = Routing::from_template(&template()).unwrap();
        assert_eq!(
            routing.rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
            [100, 200, 300]
        );
        let target = |method, host, path| match routing.route(method, host, path) {
            (Action::Forward { function, .. }, rule) => {
                format!("{function} {}", rule.map_or("default", |r| r.id.as_str()))
            }
            (Action::Fixed { status, .. }, _) => status.to_string(),
        };
        for (method, host, path, expected) in [
            (
                "POST",
                "localhost:3000",
                "/notes/admin/x",
                "AdminFunction AdminRoute1",
            ),
            // Methods are case-sensitive, and both conditions must hold.
            (
                "post",
                "localhost",
                "/notes/admin/x",
                "ApiFunction ApiRoute1",
            ),
            (
                "GET",
                "localhost",
                "/notes/admin/x",
                "ApiFunction ApiRoute1",
            ),
            ("DELETE", "localhost", "/admin", "AdminFunction AdminRoute1"),
            // Hosts are case-insensitive, without the port.
            (
                "GET",
                "ADMIN.eu.Example.com:8080",
                "/notes",
                "AdminFunction AdminRoute2",
            ),
            ("GET", "localhost", "/notes", "ApiFunction ApiRoute1"),
            ("GET", "localhost", "/", "404"),
            ("GET", "localhost", "/NOTES", "404"),
        ] {
            assert_eq!(
                target(method, host, path),
                expected,
                "{method} {host} {path}"
            );
        }
    }

    #[test]
    fn the_https_listener_is_the_one_served_and_a_forward_default_names_its_function() {
        let mut t = template();
        t["Resources"]["HttpsListener"] = json!({ "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
            "Protocol": "HTTPS", "DefaultActions": [{ "Type": "forward", "TargetGroupArn": { "Ref": "ApiTargetGroup" } }] } });
        t["Resources"]["HttpListener"]["Properties"]["DefaultActions"] =
            json!([{ "Type": "redirect", "RedirectConfig": { "Protocol": "HTTPS" } }]);
        let routing = Routing::from_template(&t).unwrap();
        assert!(
            routing.rules.is_empty(),
            "the rules attach to the HTTP listener here"
        );
        assert_eq!(
            routing.default,
            Action::Forward {
                target_group: "ApiTargetGroup".into(),
                target_group_name: "notes-dev-api-1a2b3c4d".into(),
                function: "ApiFunction".into()
            }
        );
    }

    #[test]
    fn functions_keep_literal_variables_and_name_table_refs() {
        let t = json!({ "Resources": { "ApiFunction": { "Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": "notes-dev-api", "Architectures": ["arm64"], "MemorySize": 256, "Timeout": 10,
            "LoggingConfig": { "LogFormat": "JSON" },
            "Environment": { "Variables": { "RUST_LOG": "info", "TABLE_NOTES": { "Ref": "NotesTable" } } } } } } });
        let f = &functions(&t)[0];
        assert_eq!(
            (
                f.name.as_str(),
                f.architecture.as_str(),
                f.memory,
                f.timeout,
                f.json_logs
            ),
            ("notes-dev-api", "arm64", 256, 10, true)
        );
        assert_eq!(
            f.environment,
            [
                ("RUST_LOG".into(), EnvValue::Literal("info".into())),
                ("TABLE_NOTES".into(), EnvValue::Ref("NotesTable".into()))
            ]
        );
    }
}
