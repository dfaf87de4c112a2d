//! `alb.domain` against moto's Route 53: the zone is found by name (or checked when given),
//! the stack gets a DNS-validated certificate, an HTTPS listener with it and an alias record,
//! and `Url` is the domain.

use crate::common;

use common::moto::Moto;

/// Creates a public hosted zone named `name` in moto (CreateHostedZone); its id.
fn create_zone(moto: &Moto, name: &str, reference: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>{name}</Name><CallerReference>{reference}</CallerReference></CreateHostedZoneRequest>"
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "Content-Type: application/xml", "--data-binary", &body])
        // moto reads the region and service from the (unchecked) signature.
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIATESTINGONLY00000/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0"])
        .arg(format!("{}/2013-04-01/hostedzone", moto.endpoint))
        .output()
        .expect("curl runs (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = text
        .split("<Id>")
        .nth(1)
        .and_then(|rest| rest.split("</Id>").next())
        .unwrap_or_else(|| {
            panic!(
                "no zone id in {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    id.trim_start_matches("/hostedzone/").to_string()
}

/// Requests an ACM certificate for `name` in moto; its ARN.
fn request_certificate(moto: &Moto, name: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-H", "X-Amz-Target: CertificateManager.RequestCertificate"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIATESTINGONLY00000/20260101/us-east-1/acm/aws4_request, SignedHeaders=host, Signature=0"])
        .args(["--data-binary", &format!("{{\"DomainName\":\"{name}\",\"ValidationMethod\":\"DNS\"}}")])
        .arg(&moto.endpoint)
        .output()
        .expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    answer["CertificateArn"].as_str().unwrap().to_string()
}

fn with_domain(dir: &std::path::Path, extra: &str) {
    let spec = dir.join("stacks/example.yaml");
    let example = common::root().join("stacks/example.yaml");
    let text = std::fs::read_to_string(example).unwrap().replace(
        "  idle_timeout: 60\n",
        &format!("  idle_timeout: 60\n  domain: api.example.com\n{extra}"),
    );
    std::fs::write(&spec, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_gets_its_certificate_listener_and_record() {
    let moto = Moto::start();
    let dir = common::project_with(&[("api.zip", "api")]);
    let d = dir.path();
    with_domain(d, "");
    let artifact = format!("api={}", d.join("api.zip").display());

    // No zone holds it: stopped before any change.
    let up = moto.deployer(d, &["up", "--artifact", &artifact, "--yes"]);
    up.expect_code(2);
    assert!(
        up.stderr
            .contains("no public Route 53 hosted zone holds `api.example.com`"),
        "{}",
        up.stderr
    );
    assert_eq!(moto.count("CreateChangeSet") + moto.count("CreateStack"), 0);

    // Found by name; a certificate that does not cover the domain is refused.
    let zone = create_zone(&moto, "example.com", "one");
    create_zone(&moto, "other.org", "two");
    let www = request_certificate(&moto, "www.example.com");
    with_domain(d, &format!("  certificate_arn: {www}\n"));
    let up = moto.deployer(d, &["up", "--artifact", &artifact, "--yes"]);
    up.expect_code(2);
    assert!(
        up.stderr.contains("does not cover `api.example.com`"),
        "{}",
        up.stderr
    );

    // With a wildcard certificate made elsewhere (moto's CloudFormation cannot make an ACM
    // certificate: the stack's own `Certificate` is checked by the render and cfn-lint tests).
    let wildcard = request_certificate(&moto, "*.example.com");
    with_domain(d, &format!("  certificate_arn: {wildcard}\n"));
    let up = moto.deployer(
        d,
        &[
            "up",
            "--artifact",
            &artifact,
            "--yes",
            "--json",
            "--no-verify",
        ],
    );
    up.expect_code(0);
    let summary = common::summary(&up.stdout);
    assert_eq!(
        summary["outputs"]["Url"], "https://api.example.com",
        "{}",
        up.stdout
    );
    let template = moto.template("notes-dev").await;
    let resources = &template["Resources"];
    assert_eq!(
        resources["AliasRecord"]["Properties"]["HostedZoneId"],
        zone.as_str()
    );
    assert_eq!(
        resources["AliasRecord"]["Properties"]["Name"],
        "api.example.com."
    );
    assert_eq!(resources["AliasRecord"]["Properties"]["Type"], "A");
    assert_eq!(
        resources["HttpsListener"]["Properties"]["Certificates"][0]["CertificateArn"],
        wildcard.as_str()
    );
    assert_eq!(
        resources["HttpListener"]["Properties"]["DefaultActions"][0]["Type"],
        "redirect"
    );
    assert!(
        template
            .get("Parameters")
            .is_none_or(|p| p.get("HostedZoneId").is_none())
    );

    // Without a certificate, the stack makes one, validated in the zone found by name.
    with_domain(d, "");
    let plan = moto.deployer(
        d,
        &["plan", "--artifact", &artifact, "--json", "--no-drift"],
    );
    assert!(plan.stdout.contains("\"logical_id\":\"Certificate\",\"resource_type\":\"AWS::CertificateManager::Certificate\""), "{}", plan.stdout);

    // Another env of the spec answers at `<env>.<domain>`.
    let render = moto.deployer(d, &["render", "--env", "staging", "--format", "json"]);
    render.expect_code(0);
    assert!(
        render.stdout.contains("\"staging.api.example.com.\""),
        "{}",
        render.stdout
    );

    // (A given `hosted_zone_id` is checked with GetHostedZone; moto's zone ids do not start
    // with `Z` as AWS's do, so the spec check refuses them: `resolve`'s unit tests cover it.)
}
