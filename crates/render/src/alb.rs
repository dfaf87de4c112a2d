//! The Application Load Balancer, its security group and listeners.

use serde_json::{Value, json};

use super::function::Ids;
use super::network::Placed;
use super::{Doc, r#ref};
use deployer_spec::{Alb, Spec};

/// TLS 1.2 and 1.3 only.
const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// What function rules need from the load balancer.
pub struct Listener {
    /// The listener the routes attach to (HTTPS when there is a certificate).
    pub id: &'static str,
    /// The load balancer's logical id.
    pub load_balancer: &'static str,
}

/// Adds the security group, load balancer and listeners; returns where routes attach.
pub fn render(spec: &Spec, alb: &Alb, placed: &Placed, doc: &mut Doc) -> Listener {
    security_group(spec, alb, placed, doc);
    load_balancer(spec, alb, placed, doc);
    listeners(spec, alb, doc)
}

/// The load balancer's security group: the allowed CIDRs in on 80 (and 443), nothing out.
fn security_group(spec: &Spec, alb: &Alb, placed: &Placed, doc: &mut Doc) {
    let https = alb.certificate_arn.is_some();
    let ports: &[u16] = if https { &[80, 443] } else { &[80] };
    let mut ingress = Vec::new();
    for cidr in &alb.allowed_cidrs {
        for port in ports {
            ingress.push(json!({
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "CidrIp": cidr,
                "Description": format!("HTTP{} from an allowed CIDR", if *port == 443 { "S" } else { "" }),
            }));
        }
    }
    doc.resource(
        "AlbSecurityGroup",
        "AWS::EC2::SecurityGroup",
        json!({
            "GroupDescription": format!("Load balancer of {}", spec.stack_name()),
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

/// The load balancer, and its 5xx alarm when a function has alarms.
fn load_balancer(spec: &Spec, alb: &Alb, placed: &Placed, doc: &mut Doc) {
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
                { "Key": "deletion_protection.enabled", "Value": spec.is_protected().to_string() },
            ],
        }),
    );
    if !placed.depends_on.is_empty() {
        load_balancer.insert("DependsOn".into(), json!(placed.depends_on));
    }
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

/// The HTTP listener (a redirect to HTTPS when there is a certificate), the HTTPS one, and the
/// `Url` output; the listener the routing rules go on.
fn listeners(spec: &Spec, alb: &Alb, doc: &mut Doc) -> Listener {
    let https = alb.certificate_arn.is_some();
    let default_action = match spec.functions.iter().find(|(_, f)| f.default_route) {
        Some((name, _)) => {
            json!({ "Type": "forward", "TargetGroupArn": r#ref(&Ids::of(name).target_group) })
        }
        None => json!({
            "Type": "fixed-response",
            "FixedResponseConfig": {
                "StatusCode": "404",
                "ContentType": "application/json",
                "MessageBody": "{\"message\":\"no route matches this request\"}",
            },
        }),
    };
    let http_action: Value = if https {
        json!({
            "Type": "redirect",
            "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" },
        })
    } else {
        default_action.clone()
    };
    doc.resource(
        "HttpListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": r#ref("LoadBalancer"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [http_action],
        }),
    );
    if let Some(certificate) = &alb.certificate_arn {
        doc.resource(
            "HttpsListener",
            "AWS::ElasticLoadBalancingV2::Listener",
            json!({
                "LoadBalancerArn": r#ref("LoadBalancer"),
                "Port": 443,
                "Protocol": "HTTPS",
                "SslPolicy": TLS_POLICY,
                "Certificates": [{ "CertificateArn": certificate }],
                "DefaultActions": [default_action],
            }),
        );
    }
    let scheme = if https { "https" } else { "http" };
    doc.output(
        "Url",
        "Where the service answers",
        json!({ "Fn::Sub": format!("{scheme}://${{LoadBalancer.DNSName}}") }),
    );
    Listener {
        id: if https {
            "HttpsListener"
        } else {
            "HttpListener"
        },
        load_balancer: "LoadBalancer",
    }
}
