//! One load balancer shared by an app's envs: the `<app>-shared-alb` stack (load balancer,
//! security group, listeners with a 404 default, the preview domain's alias record), and what an
//! env stack attached to it holds instead of a load balancer of its own.
//!
//! An env attaches through a *slot* of one shared load balancer, which deployer allocates in the
//! artifact bucket: slot `k` owns the rule priorities `k * BAND + 1 ..= (k + 1) * BAND` and the
//! listener port `PORT_BASE + k`, so two envs never take the same priority or port.

use std::ops::RangeInclusive;

use serde_json::json;

use super::alb::{self, Listener, Priorities};
use super::{Doc, Template, network, r#ref};
use deployer_spec::{Alb, Spec, names};

/// Rule priorities each slot owns on a shared listener (ALB priorities are 1..=50,000).
pub const BAND: u32 = 1000;
/// The listener port of slot 0 when there is no preview domain; slot `k` listens on
/// `PORT_BASE + k`. The shared security group opens `PORT_BASE..PORT_BASE + MAX_PORT_SLOTS`.
pub const PORT_BASE: u16 = 8000;
/// Listeners per load balancer (ELB quota: 50), one of which is the shared HTTP:80.
pub const MAX_PORT_SLOTS: u32 = 49;
/// Slots per shared load balancer with a preview domain: the priority bands that fit.
pub const MAX_BAND_SLOTS: u32 = 50_000 / BAND;
/// Rules per load balancer, default rules excluded (ELB quota).
pub const RULES_PER_LOAD_BALANCER: u32 = 100;
/// Target groups per load balancer (ELB quota).
pub const TARGET_GROUPS_PER_LOAD_BALANCER: u32 = 100;

/// Parameters of an attached env stack, filled from the shared stack's outputs of the same name.
pub const LOAD_BALANCER_ARN: &str = "SharedLoadBalancerArn";
/// The load balancer's `app/<name>/<id>`, which CloudWatch's `LoadBalancer` dimension takes.
pub const LOAD_BALANCER_FULL_NAME: &str = "SharedLoadBalancerFullName";
/// The load balancer's DNS name.
pub const LOAD_BALANCER_DNS_NAME: &str = "SharedLoadBalancerDnsName";
/// The listener envs put their rules on (HTTPS:443 with a preview domain, else HTTP:80).
pub const LISTENER_ARN: &str = "SharedListenerArn";
/// Every output of the shared stack an env stack may take as a parameter (each template
/// declares those it uses).
pub const OUTPUTS: [&str; 4] = [
    LOAD_BALANCER_ARN,
    LOAD_BALANCER_FULL_NAME,
    LOAD_BALANCER_DNS_NAME,
    LISTENER_ARN,
];

/// The name of the app's `index`-th shared load balancer stack (1: `<app>-shared-alb`, then
/// `<app>-shared-alb-2`, ...), made when the ones before are full.
pub fn stack_name(app: &str, index: u32) -> String {
    match index {
        1 => format!("{app}-{}", names::SHARED_ALB_ENV),
        n => format!("{app}-{}-{n}", names::SHARED_ALB_ENV),
    }
}

/// The index of a shared stack from its name (`None`: not one of `app`'s).
pub fn stack_index(app: &str, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(&stack_name(app, 1))?;
    match rest {
        "" => Some(1),
        _ => rest
            .strip_prefix('-')?
            .parse()
            .ok()
            .filter(|n| *n >= 2 && !rest[1..].starts_with('0')),
    }
}

/// The listener port of a slot (no preview domain).
pub fn port(slot: u32) -> u16 {
    PORT_BASE + slot as u16
}

/// The rule priorities a slot owns.
pub fn band(slot: u32) -> RangeInclusive<u32> {
    slot * BAND + 1..=(slot + 1) * BAND
}

/// How many envs of this spec one shared load balancer holds: its listeners (one per env
/// without a preview domain) or priority bands, and its 100 rules and 100 target groups, each
/// env using what this spec renders.
pub fn capacity(spec: &Spec) -> u32 {
    let alb = spec.alb.as_ref();
    let domain = alb.is_some_and(|a| a.preview_domain.is_some());
    let routed: Vec<_> = spec
        .functions
        .values()
        .filter(|f| f.default_route || !f.routes.is_empty())
        .collect();
    let mut rules: u32 = routed.iter().map(|f| f.routes.len() as u32).sum();
    if domain && routed.iter().any(|f| f.default_route) {
        // The default route is a rule of its own on the shared listener.
        rules += 1;
    }
    slots(spec)
        .min(RULES_PER_LOAD_BALANCER / rules.max(1))
        .min(TARGET_GROUPS_PER_LOAD_BALANCER / (routed.len() as u32).max(1))
}

/// The slots of a shared load balancer, quotas aside: priority bands with a preview domain,
/// else listener ports.
pub fn slots(spec: &Spec) -> u32 {
    match spec
        .alb
        .as_ref()
        .is_some_and(|a| a.preview_domain.is_some())
    {
        true => MAX_BAND_SLOTS,
        false => MAX_PORT_SLOTS,
    }
}

/// The host an attached env answers at, with a preview domain.
pub fn preview_host(spec: &Spec) -> Option<String> {
    let domain = spec.alb.as_ref()?.preview_domain.as_ref()?;
    Some(format!("{}.{domain}", spec.env))
}

/// The env stack's side of the shared load balancer: the parameters it takes, its own HTTP
/// listener on its slot's port (no preview domain), the `Url` output; where its rules go.
pub(crate) fn attach(spec: &Spec, slot: u32, doc: &mut Doc) -> Listener {
    let parameter =
        |description: &str| json!({ "Type": "String", "MinLength": 1, "Description": description });
    // Only the routed functions' 5xx alarms name the load balancer.
    if spec
        .functions
        .values()
        .any(|f| f.alarms && (f.default_route || !f.routes.is_empty()))
    {
        doc.parameters.insert(
            LOAD_BALANCER_FULL_NAME.into(),
            parameter("The shared load balancer's full name (app/<name>/<id>)"),
        );
    }
    let priorities = Priorities::band(band(slot));
    let shared = stack_name(&spec.app, 1);
    if let Some(host) = preview_host(spec) {
        doc.parameters.insert(
            LISTENER_ARN.into(),
            parameter(&format!("The HTTPS listener of {shared} (or a later one)")),
        );
        doc.output(
            "Url",
            "Where the service answers",
            json!(format!("https://{host}")),
        );
        return Listener {
            arn: r#ref(LISTENER_ARN),
            load_balancer_full_name: r#ref(LOAD_BALANCER_FULL_NAME),
            priorities,
            host: Some(host),
        };
    }
    doc.parameters.insert(
        LOAD_BALANCER_ARN.into(),
        parameter(&format!("The load balancer of {shared} (or a later one)")),
    );
    doc.parameters.insert(
        LOAD_BALANCER_DNS_NAME.into(),
        parameter("The shared load balancer's DNS name"),
    );
    let port = port(slot);
    doc.resource(
        "HttpListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": r#ref(LOAD_BALANCER_ARN),
            "Port": port,
            "Protocol": "HTTP",
            "DefaultActions": [alb::default_action(spec)],
        }),
    );
    doc.output(
        "Url",
        "Where the service answers",
        json!({ "Fn::Sub": format!("http://${{{LOAD_BALANCER_DNS_NAME}}}:{port}") }),
    );
    Listener {
        arn: r#ref("HttpListener"),
        load_balancer_full_name: r#ref(LOAD_BALANCER_FULL_NAME),
        priorities,
        host: None,
    }
}

/// The shared load balancer's stack for `spec`'s app: what its envs attach to.
pub fn template(spec: &Spec, index: u32) -> Template {
    let alb = spec
        .alb
        .as_ref()
        .expect("only a spec with `alb` shares one");
    let mut doc = Doc::default();
    let placed = network::place(spec, &mut doc);
    let name = stack_name(&spec.app, index);
    let ingress: Vec<(u16, u16, &str)> = match alb.preview_domain {
        Some(_) => vec![(80, 80, "HTTP"), (443, 443, "HTTPS")],
        None => vec![
            (80, 80, "HTTP"),
            (
                PORT_BASE,
                PORT_BASE + MAX_PORT_SLOTS as u16 - 1,
                "the envs' own HTTP listeners",
            ),
        ],
    };
    alb::security_group(&name, alb, &placed, &ingress, &mut doc);
    alb::load_balancer(alb, false, &placed, &mut doc);
    let not_found = alb::not_found();
    let http_action = match alb.preview_domain {
        Some(_) => alb::redirect_to_https(),
        None => not_found.clone(),
    };
    alb::listener(&mut doc, "HttpListener", 80, http_action, None);
    let listener = match (&alb.preview_domain, &alb.certificate_arn) {
        (Some(domain), Some(certificate)) => {
            alb::listener(
                &mut doc,
                "HttpsListener",
                443,
                not_found,
                Some(json!(certificate)),
            );
            alias_record(alb, domain, &mut doc);
            "HttpsListener"
        }
        _ => "HttpListener",
    };
    let att = |attribute: &str| super::get_att("LoadBalancer", attribute);
    doc.output(
        LOAD_BALANCER_ARN,
        "The shared load balancer",
        r#ref("LoadBalancer"),
    );
    doc.output(
        LOAD_BALANCER_FULL_NAME,
        "Its full name",
        att("LoadBalancerFullName"),
    );
    doc.output(LOAD_BALANCER_DNS_NAME, "Its DNS name", att("DNSName"));
    doc.output(
        LISTENER_ARN,
        "The listener env rules go on",
        r#ref(listener),
    );
    doc.finish(format!(
        "deployer shared load balancer {name} (app {}): the envs attached to it hold their own listener rules and target groups",
        spec.app
    ))
}

/// `*.<preview_domain>`, an alias of the load balancer, in the zone `hosted_zone_id` or else
/// the one named after the domain's parent.
fn alias_record(alb: &Alb, domain: &str, doc: &mut Doc) {
    let mut record = json!({
        "Name": format!("*.{domain}."),
        "Type": "A",
        "AliasTarget": {
            "DNSName": super::get_att("LoadBalancer", "DNSName"),
            "HostedZoneId": super::get_att("LoadBalancer", "CanonicalHostedZoneID"),
        },
    });
    let zone = match &alb.hosted_zone_id {
        Some(id) => ("HostedZoneId", json!(id)),
        None => {
            let parent = domain.split_once('.').map_or(domain, |(_, p)| p);
            ("HostedZoneName", json!(format!("{parent}.")))
        }
    };
    record
        .as_object_mut()
        .expect("object literal")
        .insert(zone.0.into(), zone.1);
    doc.resource("PreviewAliasRecord", "AWS::Route53::RecordSet", record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_and_their_indexes_round_trip() {
        assert_eq!(stack_name("notes", 1), "notes-shared-alb");
        assert_eq!(stack_name("notes", 2), "notes-shared-alb-2");
        for n in [1, 2, 3, 17] {
            assert_eq!(stack_index("notes", &stack_name("notes", n)), Some(n));
        }
        for other in [
            "notes-pr-1",
            "notes-shared-alb-1",
            "notes-shared-alb-02",
            "notes-shared-alb-x",
            "other-shared-alb",
            "notes-shared-albx",
        ] {
            assert_eq!(stack_index("notes", other), None, "{other}");
        }
    }

    #[test]
    fn slots_own_disjoint_bands_and_ports() {
        assert_eq!(band(0), 1..=1000);
        assert_eq!(band(3), 3001..=4000);
        assert_eq!(*band(MAX_BAND_SLOTS - 1).end(), 50_000);
        assert_eq!(port(0), 8000);
        assert_eq!(port(MAX_PORT_SLOTS - 1), 8048);
    }
}
