//! The example service (examples/notes) fed real ALB event JSON, against DynamoDB in moto.

use crate::common;

use common::moto::Moto;
use lambda_http::{Body, Response};
use notes::App;
use serde_json::{Value, json};

const TABLE: &str = "notes-test";

async fn app(moto: &Moto) -> App {
    let db = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    db.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    App {
        db,
        table: TABLE.into(),
    }
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
    let moto = Moto::start();
    let app = app(&moto).await;
    let health =
        std::fs::read_to_string(common::root().join("tests/fixtures/alb/get-health.json")).unwrap();
    let (status, body, response) = call(&app, &health).await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    assert_eq!(response.headers()["content-type"], "application/json");
    let list =
        std::fs::read_to_string(common::root().join("tests/fixtures/alb/list-multi-value.json"))
            .unwrap();
    let (status, body, _) = call(&app, &list).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_update_delete_with_conflicts() {
    let moto = Moto::start();
    let app = app(&moto).await;
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
    let moto = Moto::start();
    let app = app(&moto).await;
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
    let moto = Moto::start();
    let app = app(&moto).await;
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
    let moto = Moto::start();
    let app = app(&moto).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn deployer_up_deploys_the_example_service_and_its_table_fits_the_code() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    // The real service, built for this machine: the example's arm64 needs a cross toolchain this
    // machine does not have, so the test deploys it as x86_64.
    // The example is its own workspace, with its own target directory.
    let notes = common::root().join("examples/notes");
    let build = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bin", "notes-api", "--manifest-path"])
        .arg(notes.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(build.success());
    let zip = deployer::build::zip_bootstrap(
        &std::fs::read(notes.join("target/debug/notes-api")).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.zip"), &zip).unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    let spec = std::fs::read_to_string(common::root().join("stacks/example.yaml")).unwrap();
    assert!(spec.contains("architecture: arm64"));
    std::fs::write(
        dir.path().join("stacks/example.yaml"),
        spec.replace("architecture: arm64", "architecture: x86_64"),
    )
    .unwrap();

    let moto = Moto::start();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    let up = moto.deployer(
        dir.path(),
        &["up", "--artifact", &artifact, "--yes", "--json"],
    );
    up.expect_code(0);
    let summary = common::summary(&up.stdout);
    let table = summary["outputs"]["NotesTableName"]
        .as_str()
        .unwrap()
        .to_string();

    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    let function = lambda
        .get_function()
        .function_name("notes-dev-api")
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(
        config.code_sha256(),
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(Sha256::digest(&zip))
                .as_str()
        )
    );
    assert_eq!(
        config.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    assert_eq!(config.handler(), Some("bootstrap"));
    let env = config.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env.get("TABLE_NOTES"), Some(&table));

    // The service's own code works against the table deployer created from the spec.
    let app = App {
        db: aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        table,
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
