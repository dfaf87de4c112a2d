//! The service fed real ALB event JSON (`tests/fixtures/alb/`), against DynamoDB in moto: every
//! endpoint, pagination, conflicts, bad input, unknown routes, and the OpenAPI document.
//!
//! moto (PyPI `moto[server]`) comes from deployer's `scripts/setup-python` (`.venv` at the
//! repository root, or `DEPLOYER_VENV`), or from PATH. One server serves every test here; each
//! test has its own table. deployer's own tests run `works_against_the_table_named_in_notes_table`
//! against the table `deployer up` created.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lambda_http::{Body, Response};
use notes::App;
use serde_json::{Value, json};

/// The moto server of this test binary, started once. It stops when this process ends: a shell
/// holds it and kills it when its stdin, a pipe only this process writes to, closes.
struct Moto {
    endpoint: String,
    _lifeline: ChildStdin,
}

fn moto_server() -> PathBuf {
    let venv = std::env::var_os("DEPLOYER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let in_venv = venv.join("bin/moto_server");
    if in_venv.is_file() {
        return in_venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("moto_server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server is missing: run scripts/setup-python at the repository root \
             (or `pip install 'moto[server]'`)"
        )
    })
}

fn moto() -> &'static str {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    // An endpoint given by the caller (deployer's tests, with their own moto) wins.
    if let Ok(endpoint) = std::env::var("NOTES_DYNAMODB_ENDPOINT") {
        return Box::leak(endpoint.into_boxed_str());
    }
    &MOTO
        .get_or_init(|| {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            // Never waited for: the shell ends with this process, which nothing outlives.
            #[allow(clippy::zombie_processes)]
            let mut child = Command::new("sh")
                .args(["-c", "\"$0\" \"$@\" & m=$!; cat >/dev/null; kill $m"])
                .arg(moto_server())
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start moto_server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "moto did not start within 30 s");
                std::thread::sleep(Duration::from_millis(50));
            }
            Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                _lifeline: child.stdin.take().expect("piped"),
            }
        })
        .endpoint
}

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&moto_config().await)
}

async fn moto_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIATESTINGONLY00000",
            "test-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

/// The app over a new table of its own, keyed as the spec declares it (pk, sk).
async fn app() -> App {
    static TABLES: AtomicUsize = AtomicUsize::new(0);
    let table = format!(
        "notes-test-{}-{}",
        std::process::id(),
        TABLES.fetch_add(1, Ordering::Relaxed)
    );
    let db = dynamodb().await;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    db.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .unwrap();
    App {
        db,
        table,
        api_key: None,
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alb")
        .join(name)
}

/// An ALB event; `multi`: the multi-value form ALB sends when the target group enables it.
fn event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&str>,
    multi: bool,
) -> String {
    let mut event = json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/notes/6d0ecf831eec9f09" } },
        "httpMethod": method,
        "path": path,
        "body": body.unwrap_or(""),
        "isBase64Encoded": false,
    });
    let headers = [
        ("content-type", "application/json"),
        ("host", "lb.example.com"),
        ("x-forwarded-proto", "http"),
    ];
    if multi {
        event["multiValueQueryStringParameters"] = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!([v])))
            .collect();
        event["multiValueHeaders"] = headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!([v])))
            .collect();
    } else {
        event["queryStringParameters"] = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        event["headers"] = headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
    }
    event.to_string()
}

async fn call(app: &App, event: &str) -> (u16, Value, Response<Body>) {
    let request = lambda_http::request::from_str(event).expect("a valid ALB event");
    let response = notes::handle(app, request).await;
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (response.status().as_u16(), value, response)
}

async fn send(
    app: &App,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let (status, value, _) = call(app, &event(method, path, query, body, false)).await;
    // The multi-value form of the same request must be answered the same way (idempotent reads only).
    if method == "GET" {
        let (multi_status, _, _) = call(app, &event(method, path, query, body, true)).await;
        assert_eq!(
            status, multi_status,
            "{method} {path} single vs multi-value headers"
        );
    }
    (status, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn real_alb_events_parse_and_are_answered() {
    let app = app().await;
    let health = std::fs::read_to_string(fixture("get-health.json")).unwrap();
    let (status, body, response) = call(&app, &health).await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    assert_eq!(response.headers()["content-type"], "application/json");
    let list = std::fs::read_to_string(fixture("list-multi-value.json")).unwrap();
    let (status, body, _) = call(&app, &list).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_update_delete_with_conflicts() {
    let app = app().await;
    let (status, created, response) = call(
        &app,
        &event(
            "POST",
            "/notes",
            &[],
            Some(r#"{"title":"first","body":"hello","owner":"ada"}"#),
            false,
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(response.headers()["location"], format!("/notes/{id}"));
    assert_eq!(
        (created["version"].as_u64(), created["owner"].as_str()),
        (Some(1), Some("ada"))
    );

    let (status, read) = send(&app, "GET", &format!("/notes/{id}"), &[], None).await;
    assert_eq!((status, &read), (200, &created));

    let change = r#"{"title":"first, edited","body":"hello again","version":1}"#;
    let (status, updated) = send(&app, "PUT", &format!("/notes/{id}"), &[], Some(change)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["version"].as_u64(), updated["title"].as_str()),
        (Some(2), Some("first, edited"))
    );
    // The same change again names version 1, which is gone: a lost update is refused.
    let (status, conflict) = send(&app, "PUT", &format!("/notes/{id}"), &[], Some(change)).await;
    assert_eq!(status, 409, "{conflict}");
    assert!(
        conflict["detail"].as_str().unwrap().contains("version 2"),
        "{conflict}"
    );
    let (status, _) = send(&app, "PUT", "/notes/nope", &[], Some(change)).await;
    assert_eq!(status, 404);

    let (status, _) = send(&app, "DELETE", &format!("/notes/{id}"), &[], None).await;
    assert_eq!(status, 204);
    let (status, gone) = send(&app, "GET", &format!("/notes/{id}"), &[], None).await;
    assert_eq!(status, 404);
    assert_eq!(gone["status"], 404);
    assert_eq!(gone["title"], "Not Found");
    let (status, _) = send(&app, "DELETE", &format!("/notes/{id}"), &[], None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_with_a_cursor_and_sees_every_note_once() {
    let app = app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, note) = send(
            &app,
            "POST",
            "/notes",
            &[],
            Some(&format!(r#"{{"title":"note {i}"}}"#)),
        )
        .await;
        assert_eq!(status, 201);
        ids.push(note["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let (status, page) = send(&app, "GET", "/notes", &query, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|n| n["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    assert!(pages >= 3, "5 notes in pages of 2");
}

/// Method, path, query, body, expected status, expected words in the problem's detail.
type BadCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_unknown_routes_and_wrong_methods() {
    let app = app().await;
    let cases: &[BadCase] = &[
        (
            "POST",
            "/notes",
            &[],
            Some("{not json"),
            400,
            "invalid JSON body",
        ),
        (
            "POST",
            "/notes",
            &[],
            Some(r#"{"title":"x","colour":"red"}"#),
            400,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/notes",
            &[],
            Some(r#"{"title":"  "}"#),
            400,
            "`title` must be 1 to 200 characters",
        ),
        ("POST", "/notes", &[], None, 400, "invalid JSON body"),
        (
            "GET",
            "/notes",
            &[("limit", "0")],
            None,
            400,
            "`limit` must be a whole number from 1 to 100",
        ),
        (
            "GET",
            "/notes",
            &[("cursor", "%%%")],
            None,
            400,
            "`cursor` is not one this service returned",
        ),
        ("GET", "/nowhere", &[], None, 404, "no route for /nowhere"),
        (
            "PATCH",
            "/notes",
            &[],
            None,
            405,
            "PATCH is not allowed on /notes",
        ),
    ];
    for (method, path, query, body, status, detail) in cases {
        let (got, problem, response) = call(&app, &event(method, path, query, *body, false)).await;
        assert_eq!(got, *status, "{method} {path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(detail),
            "{method} {path}: {problem}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_documents_itself() {
    let app = app().await;
    let (status, doc) = send(&app, "GET", "/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/notes/{id}"]["put"].is_object(), "{doc}");
    let (status, page, response) = call(&app, &event("GET", "/docs", &[], None, false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = page.as_str().unwrap();
    assert!(html.contains("openapi.json"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external assets"
    );
}

/// With `NOTES_TABLE` (and `NOTES_DYNAMODB_ENDPOINT`) set, the table `deployer up` created from
/// the spec; otherwise a table of its own. Either way the service's code works on it.
#[tokio::test(flavor = "multi_thread")]
async fn works_against_the_table_named_in_notes_table() {
    let app = match std::env::var("NOTES_TABLE") {
        Ok(table) => App {
            db: dynamodb().await,
            table,
            api_key: None,
        },
        Err(_) => app().await,
    };
    let (status, note) = send(
        &app,
        "POST",
        "/notes",
        &[],
        Some(r#"{"title":"deployed","owner":"ops"}"#),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let (status, page) = send(&app, "GET", "/notes", &[], None).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 1));
}

/// With an API key, a write without it (or with another) is 401 and changes nothing; with it,
/// the write goes through. Reads never need it.
#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_api_key_once_one_is_set() {
    let app = App {
        api_key: Some("k3y-from-ssm".into()),
        ..app().await
    };
    let create = |key: Option<&str>| {
        let mut event: Value = serde_json::from_str(&event(
            "POST",
            "/notes",
            &[],
            Some(r#"{"title":"keyed"}"#),
            false,
        ))
        .unwrap();
        if let Some(key) = key {
            event["headers"]["x-api-key"] = json!(key);
        }
        event.to_string()
    };
    for wrong in [None, Some("k3y-from-ssX"), Some("k3y")] {
        let (status, problem, _) = call(&app, &create(wrong)).await;
        assert_eq!(status, 401, "{wrong:?}: {problem}");
    }
    let (status, listed) = send(&app, "GET", "/notes", &[], None).await;
    assert_eq!(
        (status, listed["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, note, _) = call(&app, &create(Some("k3y-from-ssm"))).await;
    assert_eq!(status, 201, "{note}");
}

/// `read_api_key` reads the SecureString parameter `API_KEY_PARAMETER` names, decrypted;
/// without one there is no key, and a missing one is an error naming it.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_is_read_from_the_parameter_the_variable_names() {
    let ssm = aws_sdk_ssm::Client::new(&moto_config().await);
    let name = format!("/notes/test-{}/api-key", std::process::id());
    ssm.put_parameter()
        .name(&name)
        .value("k3y-from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    assert_eq!(notes::read_api_key(&ssm, None).await, Ok(None));
    assert_eq!(
        notes::read_api_key(&ssm, Some(&name)).await,
        Ok(Some("k3y-from-ssm".to_string()))
    );
    let missing = notes::read_api_key(&ssm, Some("/notes/missing"))
        .await
        .unwrap_err();
    assert!(missing.contains("/notes/missing"), "{missing}");
}
