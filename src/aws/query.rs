//! Calls to the services deployer needs a handful of operations of, signed with `aws-sigv4`:
//! EC2 and IAM over the query protocol, SSM, Secrets Manager, ACM and KMS over JSON 1.1, Route 53's
//! one REST lookup. Why not their SDK crates: aws-sdk-ec2 and aws-sdk-iam alone are 80 MB of
//! generated source, more than half of deployer's build time, for three read-only calls; the
//! others would add as much again for eight.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::ConfigBuilderExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::CallLog;
use crate::converge::cloud::CloudError;

/// A query-protocol service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon EC2 (regional).
    Ec2,
    /// IAM (global: one endpoint per partition, signed for that partition's home region).
    Iam,
    /// SSM Parameter Store (JSON 1.1).
    Ssm,
    /// Secrets Manager (JSON 1.1).
    SecretsManager,
    /// Certificate Manager (JSON 1.1).
    Acm,
    /// KMS (JSON 1.1).
    Kms,
    /// Route 53 (REST, global like IAM).
    Route53,
    /// CloudWatch (query): alarm states during a rollout.
    CloudWatch,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Iam => "iam",
            Service::Ssm => "ssm",
            Service::SecretsManager => "secretsmanager",
            Service::Acm => "acm",
            Service::Kms => "kms",
            Service::Route53 => "route53",
            Service::CloudWatch => "monitoring",
        }
    }

    /// The query protocol's `Version`; the JSON protocol's target prefix.
    fn api_version(self) -> &'static str {
        match self {
            Service::Ec2 => "2016-11-15",
            Service::Iam => "2010-05-08",
            Service::Ssm => "AmazonSSM",
            Service::SecretsManager => "secretsmanager",
            Service::Acm => "CertificateManager",
            Service::Kms => "TrentService",
            Service::Route53 => "2013-04-01",
            Service::CloudWatch => "2010-08-01",
        }
    }

    /// Name in `-v` lines, as the SDK names its services.
    fn label(self) -> &'static str {
        match self {
            Service::Ec2 => "EC2",
            Service::Iam => "IAM",
            Service::Ssm => "SSM",
            Service::SecretsManager => "SecretsManager",
            Service::Acm => "ACM",
            Service::Kms => "KMS",
            Service::Route53 => "Route53",
            Service::CloudWatch => "CloudWatch",
        }
    }

    /// `AWS_ENDPOINT_URL_<SERVICE>`, the SDK's service-specific override.
    fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::Acm => "AWS_ENDPOINT_URL_ACM",
            Service::Kms => "AWS_ENDPOINT_URL_KMS",
            Service::Route53 => "AWS_ENDPOINT_URL_ROUTE_53",
            Service::CloudWatch => "AWS_ENDPOINT_URL_CLOUDWATCH",
        }
    }
}

/// One request, before signing.
struct Outgoing {
    method: &'static str,
    url: String,
    content_type: Option<&'static str>,
    target: Option<String>,
    body: String,
}

/// The URL and signing region of `service` in `region`, from AWS's endpoint rules for the
/// commercial, China and GovCloud partitions.
pub fn endpoint(service: Service, region: &str) -> (String, String) {
    let china = region.starts_with("cn-");
    let suffix = if china {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    // A global service: one endpoint per partition, signed for its home region.
    let global = |cn: (&str, &str), gov: (&str, &str), commercial: (&str, &str)| {
        let (url, home) = if china {
            cn
        } else if region.starts_with("us-gov-") {
            gov
        } else {
            commercial
        };
        (url.to_string(), home.to_string())
    };
    match service {
        Service::Route53 => global(
            ("https://route53.amazonaws.com.cn", "cn-northwest-1"),
            ("https://route53.us-gov.amazonaws.com", "us-gov-west-1"),
            ("https://route53.amazonaws.com", "us-east-1"),
        ),
        Service::Ec2
        | Service::Ssm
        | Service::SecretsManager
        | Service::Acm
        | Service::Kms
        | Service::CloudWatch => (
            format!("https://{}.{region}.{suffix}", service.signing_name()),
            region.to_string(),
        ),
        Service::Iam => global(
            ("https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1"),
            ("https://iam.us-gov.amazonaws.com", "us-gov-west-1"),
            ("https://iam.amazonaws.com", "us-east-1"),
        ),
    }
}

/// Signs and sends query calls with the SDK configuration's credentials, region and endpoint.
pub struct QueryClient {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: aws_config::SdkConfig,
    attempt_timeout: Duration,
    log_calls: Option<CallLog>,
    /// The credentials of the last call, reused until they near expiry: the SDK config's
    /// provider is the uncached chain, and resolving it can itself be an STS or SSO call.
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

/// Credentials this close to expiry are resolved again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Attempts per call: throttling, 5xx answers and dropped connections are retried.
const ATTEMPTS: u32 = 3;

impl QueryClient {
    /// A client for `config` (credentials, region, `AWS_ENDPOINT_URL`).
    pub fn new(
        config: &aws_config::SdkConfig,
        attempt_timeout: Duration,
        log_calls: Option<CallLog>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.enforce_http(false);
        let tls = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::aws_lc_rs::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions");
        // Without a usable root store, plain HTTP still reaches an emulator, and HTTPS fails
        // with the TLS error in the message.
        let tls = match tls.clone().with_native_roots() {
            Ok(with_roots) => with_roots,
            Err(_) => tls.with_root_certificates(rustls::RootCertStore::empty()),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.with_no_client_auth())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        QueryClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            config: config.clone(),
            attempt_timeout,
            log_calls,
            credentials: tokio::sync::Mutex::new(None),
        }
    }

    /// The endpoint and signing region: the service's own override, `AWS_ENDPOINT_URL`, or AWS.
    fn target(&self, service: Service) -> (String, String) {
        let region = self
            .config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let (url, signing_region) = endpoint(service, &region);
        let overridden = std::env::var(service.endpoint_variable())
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.config.endpoint_url().map(str::to_string));
        match overridden {
            // An emulator answers every service in the configured region.
            Some(url) => (url, region),
            None => (url, signing_region),
        }
    }

    /// Calls `action` with `params` and returns the XML answer, retrying what is worth it.
    pub async fn call(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, CloudError> {
        let (url, _) = self.target(service);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", service.api_version())
            .extend_pairs(params)
            .finish();
        let outgoing = Outgoing {
            method: "POST",
            url,
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            target: None,
            body,
        };
        self.send(service, action, &outgoing).await
    }

    /// Calls a JSON 1.1 `operation` with `input` and returns the answer's JSON.
    pub async fn call_json(
        &self,
        service: Service,
        operation: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, CloudError> {
        let (url, _) = self.target(service);
        let outgoing = Outgoing {
            method: "POST",
            url,
            content_type: Some("application/x-amz-json-1.1"),
            target: Some(format!("{}.{operation}", service.api_version())),
            body: input.to_string(),
        };
        let text = self.send(service, operation, &outgoing).await?;
        serde_json::from_str(&text)
            .map_err(|e| CloudError::new("InvalidResponse", format!("{operation}: not JSON: {e}")))
    }

    /// GETs `path_and_query` of a REST service and returns the XML answer.
    pub async fn get(
        &self,
        service: Service,
        operation: &str,
        path_and_query: &str,
    ) -> Result<String, CloudError> {
        let (url, _) = self.target(service);
        let outgoing = Outgoing {
            method: "GET",
            url: format!("{}{path_and_query}", url.trim_end_matches('/')),
            content_type: None,
            target: None,
            body: String::new(),
        };
        self.send(service, operation, &outgoing).await
    }

    async fn send(
        &self,
        service: Service,
        action: &str,
        outgoing: &Outgoing,
    ) -> Result<String, CloudError> {
        let started = Instant::now();
        let mut result = Err(CloudError::unreachable("no attempt was made"));
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            result = self.attempt(service, outgoing).await;
            if !result.as_ref().is_err_and(is_retryable) {
                break;
            }
        }
        if let Some(log) = self.log_calls {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            let took = started.elapsed().as_millis();
            log(format!(
                "aws {}.{action} {outcome} {took} ms",
                service.label()
            ));
        }
        result
    }

    async fn attempt(&self, service: Service, outgoing: &Outgoing) -> Result<String, CloudError> {
        let (_, signing_region) = self.target(service);
        let url = &outgoing.url;
        let mut builder = http::Request::builder().method(outgoing.method).uri(url);
        if let Some(content_type) = outgoing.content_type {
            builder = builder.header("content-type", content_type);
        }
        if let Some(target) = &outgoing.target {
            builder = builder.header("x-amz-target", target);
        }
        let body = outgoing.body.as_bytes();
        let mut request = builder
            .body(Full::new(Bytes::from(outgoing.body.clone())))
            .map_err(|e| CloudError::new("InvalidEndpoint", format!("{url}: {e}")))?;
        self.sign(&mut request, service, &signing_region, body)
            .await?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| CloudError::unreachable(format!("{url}: {e}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CloudError::unreachable(format!("{url}: {e}")))?
                .to_bytes();
            Ok::<_, CloudError>((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        let (status, text) = tokio::time::timeout(self.attempt_timeout, exchange)
            .await
            .map_err(|_| CloudError::unreachable(format!("{url}: no answer in time")))??;
        if status.is_success() {
            return Ok(text);
        }
        let (code, message) = error_of(&text);
        let code = code.unwrap_or_else(|| format!("Http{}", status.as_u16()));
        Err(CloudError::new(
            &code,
            message.unwrap_or_else(|| status.to_string()),
        ))
    }

    async fn sign(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        service: Service,
        region: &str,
        body: &[u8],
    ) -> Result<(), CloudError> {
        let identity = Identity::from(self.credentials().await?);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service.signing_name())
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CloudError::new("SigningError", e.to_string()))?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let method = request.method().as_str().to_string();
        let signable = SignableRequest::new(&method, &uri, headers, SignableBody::Bytes(body))
            .map_err(|e| CloudError::new("SigningError", e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| CloudError::new("SigningError", e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

impl QueryClient {
    /// The cached credentials while they are fresh, else the provider's.
    async fn credentials(&self) -> Result<Credentials, CloudError> {
        let mut cached = self.credentials.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + EXPIRY_MARGIN)
        };
        if let Some(credentials) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(credentials.clone());
        }
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| CloudError::new("NoCredentials", "no credentials provider"))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| CloudError::new("CredentialsError", e.to_string()))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

fn is_retryable(e: &CloudError) -> bool {
    e.unreachable
        || e.code.as_deref().is_some_and(|c| {
            matches!(
                c,
                "Throttling" | "RequestLimitExceeded" | "ServiceUnavailable" | "InternalError"
            ) || c.starts_with("Http5")
        })
}

/// The code and message of an error answer: XML (`<Code>`, `<Message>`) or JSON (`__type`,
/// whose part after `#` is the code, and `message` or `Message`).
fn error_of(text: &str) -> (Option<String>, Option<String>) {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let code = json["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
        let message = json["message"]
            .as_str()
            .or(json["Message"].as_str())
            .map(str::to_string);
        return (code, message);
    }
    (first_text(text, "Code"), first_text(text, "Message"))
}

/// The text of the first element named `name`, anywhere in the document (error codes and
/// messages, `IsTruncated`, `Marker`).
pub fn first_text(xml: &str, name: &str) -> Option<String> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().ok()?;
    find_text(&mut root, name)
}

fn find_text(decoder: &mut ScopedDecoder, name: &str) -> Option<String> {
    while let Some(mut child) = decoder.next_tag() {
        if child.start_el().local() == name {
            return try_data(&mut child).ok().map(|t| t.into_owned());
        }
        if let Some(found) = find_text(&mut child, name) {
            return Some(found);
        }
    }
    None
}

/// The entries of a list (`<subnetSet><item>...` in EC2, `<EvaluationResults><member>...` in
/// IAM): for each entry, the text of its direct children named in `fields`. `list` names the
/// list element, found at any depth.
pub fn list_items(xml: &str, list: &str, fields: &[&str]) -> Vec<BTreeMap<String, String>> {
    list_items_with_lists(xml, list, fields, &[])
}

/// [`list_items`], where the children named in `list_fields` are lists of plain values
/// (`<MissingContextValues><member>aws:CalledVia</member>...`): their values joined by `\n`.
pub fn list_items_with_lists(
    xml: &str,
    list: &str,
    fields: &[&str],
    list_fields: &[&str],
) -> Vec<BTreeMap<String, String>> {
    let mut doc = Document::new(xml);
    let Ok(mut root) = doc.root_element() else {
        return Vec::new();
    };
    let mut items = Vec::new();
    collect_items(&mut root, list, fields, list_fields, &mut items);
    items
}

fn collect_items(
    decoder: &mut ScopedDecoder,
    list: &str,
    fields: &[&str],
    list_fields: &[&str],
    items: &mut Vec<BTreeMap<String, String>>,
) {
    while let Some(mut child) = decoder.next_tag() {
        if child.start_el().local() != list {
            collect_items(&mut child, list, fields, list_fields, items);
            continue;
        }
        while let Some(mut entry) = child.next_tag() {
            let mut item = BTreeMap::new();
            while let Some(mut field) = entry.next_tag() {
                let name = field.start_el().local().to_string();
                if list_fields.contains(&name.as_str()) {
                    let mut values = Vec::new();
                    while let Some(mut member) = field.next_tag() {
                        if let Ok(text) = try_data(&mut member) {
                            values.push(text.into_owned());
                        }
                    }
                    item.insert(name, values.join("\n"));
                } else if fields.contains(&name.as_str())
                    && let Ok(text) = try_data(&mut field)
                {
                    item.insert(name, text.into_owned());
                }
            }
            items.push(item);
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_partitions() {
        assert_eq!(
            endpoint(Service::Ec2, "eu-west-1"),
            (
                "https://ec2.eu-west-1.amazonaws.com".into(),
                "eu-west-1".into()
            )
        );
        assert_eq!(
            endpoint(Service::Ec2, "cn-northwest-1").0,
            "https://ec2.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint(Service::Iam, "eu-west-1"),
            ("https://iam.amazonaws.com".into(), "us-east-1".into())
        );
        assert_eq!(endpoint(Service::Iam, "cn-north-1").1, "cn-north-1");
        assert_eq!(endpoint(Service::Iam, "us-gov-east-1").1, "us-gov-west-1");
        assert_eq!(
            endpoint(Service::Route53, "eu-west-1"),
            ("https://route53.amazonaws.com".into(), "us-east-1".into())
        );
        assert_eq!(endpoint(Service::Route53, "cn-north-1").1, "cn-northwest-1");
        assert_eq!(
            endpoint(Service::Ssm, "eu-west-1").0,
            "https://ssm.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn lists_read_direct_fields_of_each_entry_and_skip_nested_lists() {
        // The shape of EC2's DescribeSubnets answer, with a nested tag list per subnet.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <subnetSet>
    <item><subnetId>subnet-1</subnetId><availabilityZone>us-east-1b</availabilityZone>
      <tagSet><item><key>subnetId</key><value>not-this</value></item></tagSet></item>
    <item><subnetId>subnet-2</subnetId><availabilityZone>us-east-1a</availabilityZone></item>
  </subnetSet>
</DescribeSubnetsResponse>"#;
        let items = list_items(xml, "subnetSet", &["subnetId", "availabilityZone"]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["subnetId"], "subnet-1");
        assert_eq!(items[0]["availabilityZone"], "us-east-1b");
        assert_eq!(items[1]["subnetId"], "subnet-2");
        assert!(list_items(xml, "nothing", &["x"]).is_empty());
    }

    #[test]
    fn errors_of_both_services_are_read() {
        let ec2 = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(first_text(ec2, "Code").unwrap(), "UnauthorizedOperation");
        assert_eq!(
            first_text(ec2, "Message").unwrap(),
            "You are not authorized"
        );
        let iam = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error><RequestId>y</RequestId></ErrorResponse>";
        assert_eq!(first_text(iam, "Code").unwrap(), "AccessDenied");
        assert_eq!(first_text("not xml", "Code"), None);
    }

    /// Counts the resolutions of credentials that expire at `expiry`.
    #[derive(Debug)]
    struct Counting {
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let credentials = Credentials::new("AKIA", "secret", None, self.expiry, "test");
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(credentials))
        }
    }

    async fn resolutions(expiry: Option<SystemTime>) -> usize {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let provider = Counting {
            calls: calls.clone(),
            expiry,
        };
        let config = aws_config::SdkConfig::builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        let client = QueryClient::new(&config, Duration::from_secs(1), None);
        for _ in 0..3 {
            client.credentials().await.unwrap();
        }
        calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn credentials_are_resolved_once_while_fresh() {
        assert_eq!(resolutions(None).await, 1);
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(resolutions(Some(in_an_hour)).await, 1);
        // About to expire: each call resolves them again.
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(resolutions(Some(in_a_minute)).await, 3);
    }

    #[test]
    fn throttling_and_no_answer_are_retried_denials_are_not() {
        assert!(is_retryable(&CloudError::new("Throttling", "slow down")));
        assert!(is_retryable(&CloudError::new("Http503", "unavailable")));
        assert!(is_retryable(&CloudError::unreachable("refused")));
        assert!(!is_retryable(&CloudError::new("AccessDenied", "no")));
    }
}
