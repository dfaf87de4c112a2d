//! The Application Load Balancer, its security group and listeners: an env's own, or (through
//! [`super::shared`]) the pieces of one its app's envs share.

use std::ops::RangeInclusive;

use serde_json::{Value, json};

use super::network::Placed;
use super::{Doc, r#ref};
use deployer_spec::{Alb, Spec};

/// TLS 1.2 and 1.3 only.
const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// Where function rules go.
pub struct Listener {
    /// The listener's ARN, as a template value.
    pub arn: Value,
    /// The load balancer's full name (`app/<name>/<id>`), for CloudWatch's dimension.
    pub load_balancer_full_name: Value,
    /// The priorities the rules may take.
    pub priorities: Priorities,
    /// A host every rule also matches (an env on a shared preview domain); its default route
    /// is then a rule of its own, last in the band.
    pub host: Option<String>,
}

/// The rule priorities a template's rules are spread over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priorities(pub RangeInclusive<u32>);

impl Priorities {
    /// A listener of the env's own: every priority ALB allows.
    pub fn all() -> Priorities {
        Priorities(1..=50_000)
    }

    /// A band of a shared listener.
    pub fn band(band: RangeInclusive<u32>) -> Priorities {
        Priorities(band)
    }

    /// The priority of rule `k` (1-based, in spec order) of `total`: spaced
    /// [`super::PRIORITY_STEP`] apart when the range has room, closer in a narrow band.
    pub fn nth(&self, k: u32, total: u32) -> u32 {
        let room = self.0.end() - self.0.start() + 1;
        let step = super::PRIORITY_STEP.min(room / (total + 1)).max(1);
        self.0.start() - 1 + k * step
    }
}

/// Adds an env's own security group, load balancer and listeners; returns where routes attach.
pub fn render(spec: &Spec, alb: &Alb, placed: &Placed, doc: &mut Doc) -> Listener {
    let certificate = certificate(spec, alb, doc);
    let ingress: &[(u16, u16, &str)] = match certificate {
        Some(_) => &[(80, 80, "HTTP"), (443, 443, "HTTPS")],
        None => &[(80, 80, "HTTP")],
    };
    security_group(&spec.stack_name(), alb, placed, ingress, doc);
    load_balancer(alb, spec.is_protected(), placed, doc);
    load_balancer_alarm(spec, doc);
    if let Some(name) = spec.domain_name() {
        alias_record(&name, alb, doc);
    }
    listeners(spec, certificate, doc)
}

/// The parameter that carries the hosted zone of `alb.domain` when the spec does not name it:
/// `up` finds the zone by name and passes it.
pub const HOSTED_ZONE_PARAMETER: &str = "HostedZoneId";

/// The HTTPS listener's certificate: `certificate_arn`, else with `domain` one the stack makes,
/// validated by DNS in the domain's zone (CloudFormation adds the validation record itself and
/// waits until ACM issues the certificate).
fn certificate(spec: &Spec, alb: &Alb, doc: &mut Doc) -> Option<Value> {
    if let Some(arn) = &alb.certificate_arn {
        return Some(json!(arn));
    }
    let name = spec.domain_name()?;
    let zone = hosted_zone(alb, doc);
    doc.resource(
        "Certificate",
        "AWS::CertificateManager::Certificate",
        json!({
            "DomainName": name,
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [{ "DomainName": name, "HostedZoneId": zone }],
        }),
    );
    Some(r#ref("Certificate"))
}

/// The domain's hosted zone: `hosted_zone_id`, else the [`HOSTED_ZONE_PARAMETER`].
fn hosted_zone(alb: &Alb, doc: &mut Doc) -> Value {
    match &alb.hosted_zone_id {
        Some(id) => json!(id),
        None => {
            doc.parameters.insert(
                HOSTED_ZONE_PARAMETER.into(),
                json!({
                    "Type": "AWS::Route53::HostedZone::Id",
                    "Description": "The public hosted zone of alb.domain (up finds it by name)",
                }),
            );
            r#ref(HOSTED_ZONE_PARAMETER)
        }
    }
}

/// `name` as an alias of the load balancer: an A record (the load balancer is IPv4-only, so
/// no AAAA).
fn alias_record(name: &str, alb: &Alb, doc: &mut Doc) {
    let zone = hosted_zone(alb, doc);
    doc.resource(
        "AliasRecord",
        "AWS::Route53::RecordSet",
        json!({
            "HostedZoneId": zone,
            "Name": format!("{name}."),
            "Type": "A",
            "AliasTarget": {
                "DNSName": super::get_att("LoadBalancer", "DNSName"),
                "HostedZoneId": super::get_att("LoadBalancer", "CanonicalHostedZoneID"),
                "EvaluateTargetHealth": false,
            },
        }),
    );
}

/// The load balancer's security group: the allowed CIDRs in on each `(from, to, what)` port
/// range, nothing out.
pub fn security_group(
    owner: &str,
    alb: &Alb,
    placed: &Placed,
    ports: &[(u16, u16, &str)],
    doc: &mut Doc,
) {
    let mut ingress = Vec::new();
    for cidr in &alb.allowed_cidrs {
        for (from, to, what) in ports {
            ingress.push(json!({
                "IpProtocol": "tcp",
                "FromPort": from,
                "ToPort": to,
                "CidrIp": cidr,
                "Description": format!("{what} from an allowed CIDR"),
            }));
        }
    }
    doc.resource(
        "AlbSecurityGroup",
        "AWS::EC2::SecurityGroup",
        json!({
            "GroupDescription": format!("Load balancer of {owner}"),
            "VpcId": placed.vpc_id,
            "SecurityGroupIngress": ingress,
            // Lambda targets are invoked by the load balancer service, not over the VPC, so the
            // group needs no egress. An empty list would mean "allow all": this rule allows nothing
            // (ICMP type 252 code 86 to a broadcast address), the form AWS CDK uses.
            "SecurityGroupEgress": [{
                "IpProtocol": "icmp",
                "FromPort": 252,
                "ToPort": 86,
                "CidrIp": "255.255.255.255/32",
                "Description": "Disallow all traffic",
            }],
        }),
    );
}

/// The load balancer (`protected`: with deletion protection).
pub fn load_balancer(alb: &Alb, protected: bool, placed: &Placed, doc: &mut Doc) {
    let load_balancer = doc.resource(
        "LoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "application",
            "Scheme": if alb.internal { "internal" } else { "internet-facing" },
            "Subnets": placed.subnet_ids,
            "SecurityGroups": [r#ref("AlbSecurityGroup")],
            "LoadBalancerAttributes": [
                { "Key": "idle_timeout.timeout_seconds", "Value": alb.idle_timeout.to_string() },
                { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" },
                { "Key": "deletion_protection.enabled", "Value": protected.to_string() },
            ],
        }),
    );
    if !placed.depends_on.is_empty() {
        load_balancer.insert("DependsOn".into(), json!(placed.depends_on));
    }
}

/// The load balancer's 5xx alarm, when a function has alarms.
fn load_balancer_alarm(spec: &Spec, doc: &mut Doc) {
    if spec.functions.values().any(|f| f.alarms) {
        super::alarm(
            spec,
            doc,
            "LoadBalancer5xxAlarm".into(),
            format!(
                "{}: 5xx answers made by the load balancer itself (no healthy target, a target error or timeout)",
                spec.stack_name()
            ),
            json!({
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_ELB_5XX_Count",
                "Dimensions": [
                    { "Name": "LoadBalancer", "Value": super::get_att("LoadBalancer", "LoadBalancerFullName") },
                ],
            }),
            5,
        );
    }
}

/// A fixed 404 answer, for requests no rule matches.
pub fn not_found() -> Value {
    json!({
        "Type": "fixed-response",
        "FixedResponseConfig": {
            "StatusCode": "404",
            "ContentType": "application/json",
            "MessageBody": "{\"message\":\"no route matches this request\"}",
        },
    })
}

/// A permanent redirect to HTTPS on 443.
pub fn redirect_to_https() -> Value {
    json!({
        "Type": "redirect",
        "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" },
    })
}

/// What a listener of the env's does with requests no rule matches: the default-route
/// function, or a 404.
pub fn default_action(spec: &Spec) -> Value {
    match spec.functions.iter().find(|(_, f)| f.default_route) {
        Some((name, f)) => super::rollout::forward(name, f.rollout.is_some()),
        None => not_found(),
    }
}

/// A listener of the template's load balancer (HTTPS when given a certificate).
pub fn listener(doc: &mut Doc, id: &str, port: u16, action: Value, certificate: Option<Value>) {
    let mut properties = serde_json::Map::new();
    properties.insert("LoadBalancerArn".into(), r#ref("LoadBalancer"));
    properties.insert("Port".into(), json!(port));
    let protocol = if certificate.is_some() {
        "HTTPS"
    } else {
        "HTTP"
    };
    properties.insert("Protocol".into(), json!(protocol));
    if let Some(certificate) = certificate {
        properties.insert("SslPolicy".into(), json!(TLS_POLICY));
        properties.insert(
            "Certificates".into(),
            json!([{ "CertificateArn": certificate }]),
        );
    }
    properties.insert("DefaultActions".into(), json!([action]));
    doc.resource(
        id,
        "AWS::ElasticLoadBalancingV2::Listener",
        Value::Object(properties),
    );
}

/// The HTTP listener (a redirect to HTTPS when there is a certificate), the HTTPS one, and the
/// `Url` output (the domain when there is one); the listener the routing rules go on.
fn listeners(spec: &Spec, certificate: Option<Value>, doc: &mut Doc) -> Listener {
    let https = certificate.is_some();
    let http_action = match https {
        true => redirect_to_https(),
        false => default_action(spec),
    };
    listener(doc, "HttpListener", 80, http_action, None);
    if certificate.is_some() {
        listener(doc, "HttpsListener", 443, default_action(spec), certificate);
    }
    let scheme = if https { "https" } else { "http" };
    let load_balancer_url = json!({ "Fn::Sub": format!("{scheme}://${{LoadBalancer.DNSName}}") });
    match spec.domain_name() {
        Some(name) => {
            doc.output(
                "Url",
                "Where the service answers",
                json!(format!("https://{name}")),
            );
            doc.output(
                "LoadBalancerUrl",
                "The load balancer's own name (its certificate is for the domain)",
                load_balancer_url,
            );
        }
        None => doc.output("Url", "Where the service answers", load_balancer_url),
    }
    Listener {
        arn: r#ref(if https {
            "HttpsListener"
        } else {
            "HttpListener"
        }),
        load_balancer_full_name: super::get_att("LoadBalancer", "LoadBalancerFullName"),
        priorities: Priorities::all(),
        host: None,
    }
}
