//! After `up`: one GET to the load balancer proves the service answers. Which request, whether
//! it passes and when to skip it are plain functions ([`plan`], [`route_for`], [`passes`]);
//! [`probe`] makes the request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::spec::Spec;

/// The request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full URL.
    pub url: String,
    /// The path, for display.
    pub path: String,
    /// A `Host` header the listener rule needs, when it matches on a host.
    pub host: Option<String>,
    /// The function the ALB routes it to (`None`: the listener's fixed 404).
    pub function: Option<String>,
    /// The status it must answer; `None`: any below 500.
    pub expect: Option<u16>,
}

/// Whether and where to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Make this request.
    Probe(Target),
    /// Not now, and why, in a few words (`None`: nothing worth a line, e.g. `--no-verify`).
    Skip(Option<String>),
}

/// Decides the request: the spec's `verify` (default `GET /`), sent to `override_url` when given
/// (tests, tunnels), else to the stack's `Url` output; skipped with `--no-verify`, without a
/// load balancer, and against an emulator, whose load balancer URL resolves nowhere.
pub fn plan(
    spec: &Spec,
    outputs: &[(String, String)],
    emulator: bool,
    override_url: Option<&str>,
    wanted: bool,
) -> Plan {
    if !wanted {
        return Plan::Skip(None);
    }
    if spec.alb.is_none() {
        return Plan::Skip(Some("the stack has no load balancer".into()));
    }
    let base = match override_url {
        Some(url) => url.to_string(),
        None if emulator => {
            return Plan::Skip(Some(
                "AWS_ENDPOINT_URL is set: the load balancer of an emulator has no real URL".into(),
            ));
        }
        None => match outputs.iter().find(|(k, _)| k == "Url") {
            Some((_, url)) => url.clone(),
            None => return Plan::Skip(Some("the stack has no `Url` output".into())),
        },
    };
    let path = spec
        .verify
        .as_ref()
        .map_or_else(crate::spec::model::default_verify_path, |v| v.path.clone());
    let (function, host) = match route_for(spec, &path) {
        Some((function, host)) => (Some(function.to_string()), host),
        None => (None, None),
    };
    Plan::Probe(Target {
        url: format!("{}{path}", base.trim_end_matches('/')),
        path,
        host,
        function,
        expect: spec
            .verify
            .as_ref()
            .and_then(|v| v.expect)
            .and_then(|e| u16::try_from(e).ok()),
    })
}

/// The function the listener sends `GET path` to, with the `Host` header its rule needs: the
/// rules in spec order (as rendered), then the default route. A route whose host is a pattern
/// (`*.example.com`) cannot be addressed by name and is passed over.
pub fn route_for<'a>(spec: &'a Spec, path: &str) -> Option<(&'a str, Option<String>)> {
    for (name, function) in &spec.functions {
        for route in &function.routes {
            let path_matches = route
                .path
                .as_deref()
                .is_none_or(|pattern| pattern_matches(pattern, path));
            let get = route.methods.is_empty()
                || route.methods.iter().any(|m| m.eq_ignore_ascii_case("GET"));
            let host = route.host.clone();
            if host.as_deref().is_some_and(|h| h.contains(['*', '?'])) {
                continue;
            }
            if path_matches && get {
                return Some((name, host));
            }
        }
    }
    spec.functions
        .iter()
        .find(|(_, f)| f.default_route)
        .map(|(name, _)| (name.as_str(), None))
}

/// An ALB path pattern: case-sensitive, `*` any run of characters, `?` exactly one.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), path.chars().collect());
    // matched[j]: the pattern so far matches the first j characters of the path.
    let mut matched = vec![false; s.len() + 1];
    matched[0] = true;
    for c in &p {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && s[j - 1] == *c,
            };
        }
        matched = next;
    }
    matched[s.len()]
}

/// Whether a status passes: the expected one, else any below 500.
pub fn passes(status: u16, expect: Option<u16>) -> bool {
    match expect {
        Some(expected) => status == expected,
        None => status < 500,
    }
}

/// What the target group's health says, before the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A target is healthy, or checks are off (a Lambda target then reads `unavailable` with
    /// `Target.HealthCheckDisabled`, and the request itself is the proof), or no target is
    /// registered (nothing to wait for: the request shows what the ALB does): make the request.
    Ready,
    /// Not yet (registering, the first checks, unhealthy so far), and what it says.
    Wait(String),
}

/// The verdict over a target group's targets, `(state, reason code)` as DescribeTargetHealth
/// lists them.
pub fn health(targets: &[(String, Option<String>)]) -> Health {
    let any = |state: &str, reason: Option<&str>| {
        targets
            .iter()
            .any(|(s, r)| s == state && (reason.is_none() || r.as_deref() == reason))
    };
    if any("healthy", None) || any("unavailable", Some("Target.HealthCheckDisabled")) {
        return Health::Ready;
    }
    match targets.first() {
        None => Health::Ready,
        Some((state, None)) => Health::Wait(state.clone()),
        Some((state, Some(reason))) => Health::Wait(format!("{state} ({reason})")),
    }
}

/// What the request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// An answer.
    Answered {
        /// Its status.
        status: u16,
        /// From sending to the whole (capped) body.
        latency: Duration,
        /// The start of the body, for a failure's report.
        body: String,
    },
    /// No answer: refused, timed out, no such host (an internal or restricted load balancer).
    Unreachable(String),
}

/// How much of a body a failure shows.
const BODY_SHOWN: usize = 2048;

/// Sends the request. HTTPS is not checked against the certificate's name: this proves the
/// service answers at the load balancer's DNS name, which no certificate names (liveness, not
/// identity).
pub async fn probe(target: &Target, timeout: Duration) -> Probed {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeout));
    http.enforce_http(false);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(provider)))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut request = hyper::Request::get(&target.url);
    if let Some(host) = &target.host {
        request = request.header(hyper::header::HOST, host);
    }
    let request = match request.body(Empty::new()) {
        Ok(request) => request,
        Err(e) => return Probed::Unreachable(format!("not a valid URL: {e}")),
    };
    let started = Instant::now();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            use std::error::Error as _;
            match e.source() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }
        })?;
        let status = response.status().as_u16();
        // Only the start of the body is kept; a large page is not read to its end.
        let body = Limited::new(response.into_body(), BODY_SHOWN)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok((status, body))) => Probed::Answered {
            status,
            latency: started.elapsed(),
            body,
        },
        Ok(Err(why)) => Probed::Unreachable(why),
        Err(_) => Probed::Unreachable(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// Accepts a certificate for any name (see [`probe`]); signatures are still checked, so the
/// connection is TLS as usual.
#[derive(Debug)]
struct AnyName(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_target_or_checks_off_let_the_request_go_anything_else_waits() {
        let t = |state: &str, reason: Option<&str>| (state.to_string(), reason.map(str::to_string));
        type Targets = Vec<(String, Option<String>)>;
        let cases: Vec<(Targets, Health)> = vec![
            (vec![t("healthy", None)], Health::Ready),
            (
                vec![
                    t("unhealthy", Some("Target.ResponseCodeMismatch")),
                    t("healthy", None),
                ],
                Health::Ready,
            ),
            (
                vec![t("unavailable", Some("Target.HealthCheckDisabled"))],
                Health::Ready,
            ),
            (
                vec![t("initial", Some("Elb.InitialHealthChecking"))],
                Health::Wait("initial (Elb.InitialHealthChecking)".into()),
            ),
            (
                vec![t("unhealthy", Some("Target.FailedHealthChecks"))],
                Health::Wait("unhealthy (Target.FailedHealthChecks)".into()),
            ),
            (
                vec![t("unavailable", Some("Elb.InternalError"))],
                Health::Wait("unavailable (Elb.InternalError)".into()),
            ),
            (vec![t("draining", None)], Health::Wait("draining".into())),
            (vec![], Health::Ready),
        ];
        for (targets, want) in cases {
            assert_eq!(health(&targets), want, "{targets:?}");
        }
    }

    fn spec(yaml: &str) -> Spec {
        crate::spec::parse(yaml, "test.yaml").unwrap()
    }

    const ROUTED: &str = "app: notes\nalb: {}\nfunctions:\n  api:\n    path: x\n    routes:\n      - { path: /notes* }\n      - { path: /admin*, host: admin.example.com }\n      - { path: /wild*, host: '*.example.com' }\n      - { path: /docs*, methods: [POST] }\n  web:\n    path: y\n    default_route: true\n";

    #[test]
    fn alb_path_patterns() {
        for (pattern, path, matches) in [
            ("/notes*", "/notes", true),
            ("/notes*", "/notes/1", true),
            ("/notes*", "/Notes", false),
            ("/n?tes", "/notes", true),
            ("/n?tes", "/ntes", false),
            ("*", "/", true),
            ("/a*b*c", "/aXbYc", true),
            ("/a*b*c", "/aXbY", false),
            ("/", "/", true),
            ("/", "/x", false),
        ] {
            assert_eq!(pattern_matches(pattern, path), matches, "{pattern} {path}");
        }
    }

    #[test]
    fn the_route_a_get_takes() {
        let spec = spec(ROUTED);
        assert_eq!(route_for(&spec, "/notes/1"), Some(("api", None)));
        assert_eq!(
            route_for(&spec, "/admin"),
            Some(("api", Some("admin.example.com".into())))
        );
        // A host pattern cannot be sent; a POST-only route does not take a GET.
        assert_eq!(route_for(&spec, "/wild"), Some(("web", None)));
        assert_eq!(route_for(&spec, "/docs"), Some(("web", None)));
        assert_eq!(route_for(&spec, "/"), Some(("web", None)));
        let no_default = spec.functions["api"].clone();
        let mut only_api = spec.clone();
        only_api.functions.clear();
        only_api.functions.insert("api".into(), no_default);
        assert_eq!(route_for(&only_api, "/"), None);
    }

    #[test]
    fn the_plan_over_flags_emulators_and_outputs() {
        let routed = spec(ROUTED);
        let url = vec![("Url".to_string(), "https://lb.example.com/".to_string())];
        let probe = |p: Plan| match p {
            Plan::Probe(t) => t,
            other => panic!("{other:?}"),
        };
        let target = probe(plan(&routed, &url, false, None, true));
        assert_eq!(target.url, "https://lb.example.com/");
        assert_eq!(target.function.as_deref(), Some("web"));
        assert_eq!(target.expect, None);
        assert_eq!(plan(&routed, &url, false, None, false), Plan::Skip(None));
        assert!(matches!(
            plan(&routed, &url, true, None, true),
            Plan::Skip(Some(why)) if why.starts_with("AWS_ENDPOINT_URL is set")
        ));
        let local = probe(plan(&routed, &[], true, Some("http://127.0.0.1:9"), true));
        assert_eq!(local.url, "http://127.0.0.1:9/");
        let checked = spec(&format!(
            "{ROUTED}verify: {{ path: /admin/health, expect: 204 }}\n"
        ));
        let target = probe(plan(&checked, &url, false, None, true));
        assert_eq!(target.url, "https://lb.example.com/admin/health");
        assert_eq!(target.host.as_deref(), Some("admin.example.com"));
        assert_eq!(target.expect, Some(204));
        let no_alb = spec("app: notes\nfunctions:\n  api:\n    path: x\n");
        assert_eq!(
            plan(&no_alb, &url, false, None, true),
            Plan::Skip(Some("the stack has no load balancer".into()))
        );
    }

    #[test]
    fn which_statuses_pass() {
        for (status, expect, ok) in [
            (200, None, true),
            (404, None, true),
            (499, None, true),
            (500, None, false),
            (503, None, false),
            (200, Some(200), true),
            (204, Some(200), false),
            (503, Some(503), true),
        ] {
            assert_eq!(passes(status, expect), ok, "{status} {expect:?}");
        }
    }
}
