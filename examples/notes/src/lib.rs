//! A notes REST API for AWS Lambda behind an Application Load Balancer, stored in DynamoDB.
//!
//! Routes are listed once in [`ROUTES`]; the OpenAPI document ([`ApiDoc`]) is generated from the
//! handlers' annotations, and a test checks that the two agree.

mod store;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::{OpenApi, ToSchema};

pub use store::StoreError;

/// What every handler needs.
pub struct App {
    /// DynamoDB.
    pub db: aws_sdk_dynamodb::Client,
    /// The table name (from `TABLE_NOTES`).
    pub table: String,
    /// When set, writes need it in `x-api-key` ([`read_api_key`]).
    pub api_key: Option<String>,
}

/// The variable deployer sets for the spec's `secrets: { API_KEY: ssm:... }`: the parameter's
/// name, never its value.
pub const API_KEY_PARAMETER: &str = "API_KEY_PARAMETER";

/// The API key, read once at start-up (a cold start) and kept for the life of the process:
/// the SSM `SecureString` parameter `parameter` names (the value of [`API_KEY_PARAMETER`]),
/// decrypted. `None` without a parameter (the spec names no such secret): writes are then open.
pub async fn read_api_key(
    ssm: &aws_sdk_ssm::Client,
    parameter: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(name) = parameter else {
        return Ok(None);
    };
    let answer = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            let e = aws_sdk_ssm::error::DisplayErrorContext(e);
            format!("cannot read the API key from SSM parameter {name}: {e}")
        })?;
    let value = answer
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default();
    match value.is_empty() {
        true => Err(format!("SSM parameter {name} is empty")),
        false => Ok(Some(value.to_string())),
    }
}

/// Whether `request` may write: always without a key, else with it in `x-api-key` (compared in
/// constant time, so the answer's timing does not tell how much of a guess was right).
fn may_write(app: &App, request: &Request) -> bool {
    let Some(key) = &app.api_key else {
        return true;
    };
    let given = request
        .headers()
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    given.len() == key.len()
        && given
            .iter()
            .zip(key.as_bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Every route the service answers: method and path template.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/notes"),
    ("GET", "/notes"),
    ("GET", "/notes/{id}"),
    ("PUT", "/notes/{id}"),
    ("DELETE", "/notes/{id}"),
];

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// Unique id.
    pub id: String,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Text, up to 10,000 characters.
    pub body: String,
    /// Who owns it.
    pub owner: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created: i64,
    /// Last change, epoch milliseconds.
    pub updated: i64,
    /// Increases with every update; updates must name the version they change.
    pub version: u64,
}

/// A note to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Text, up to 10,000 characters.
    #[serde(default)]
    pub body: String,
    /// Who owns it.
    pub owner: Option<String>,
}

/// A change to a note: applied only if `version` is still the current one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteUpdate {
    /// New title.
    pub title: String,
    /// New text.
    #[serde(default)]
    pub body: String,
    /// The version being changed (from the last read).
    pub version: u64,
}

/// One page of notes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotePage {
    /// The notes.
    pub items: Vec<Note>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An error, as RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
}

/// Service health.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the function answers.
    pub status: String,
}

/// The OpenAPI document, generated from the handlers below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "notes",
        description = "The deployer example service: notes on DynamoDB."
    ),
    paths(
        health,
        openapi_json,
        docs,
        create_note,
        list_notes,
        get_note,
        update_note,
        delete_note
    ),
    components(schemas(Note, NewNote, NoteUpdate, NotePage, Problem, Health))
)]
pub struct ApiDoc;

const TITLE_MAX: usize = 200;
const BODY_MAX: usize = 10_000;
const PAGE_DEFAULT: i32 = 20;
const PAGE_MAX: i32 = 100;

/// JSON lines on stdout (CloudWatch Logs Insights queries them), each with the request id.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .init();
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(serde_json::to_string(value).unwrap_or_default()))
        .expect("static headers are valid")
}

/// A problem response.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response<Body> {
    let body = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: detail.into(),
    };
    let mut response = json(status, &body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/problem+json".parse().expect("valid header"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
    }
    response
}

/// A request refused before any work: a status, why, and for 405 the allowed methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    detail: String,
    allow: Option<String>,
}

impl Rejection {
    fn bad_request(detail: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            allow: None,
        }
    }

    /// The problem response.
    pub fn into_response(self) -> Response<Body> {
        let mut response = problem(self.status, self.detail);
        if let Some(allow) = self.allow {
            response.headers_mut().insert(
                header::ALLOW,
                allow.parse().expect("method names are header-safe"),
            );
        }
        response
    }
}

/// Matches a request to a route: the route's template and the `{id}` segment, if any.
pub fn route<'a>(
    method: &str,
    path: &'a str,
) -> Result<(&'static str, Option<&'a str>), Rejection> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let (template, id) = match path.strip_prefix("/notes/") {
        Some(id) if !id.is_empty() && !id.contains('/') => ("/notes/{id}", Some(id)),
        _ => (path, None),
    };
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|(_, t)| *t == template)
        .map(|(m, _)| *m)
        .collect();
    if allowed.is_empty() {
        return Err(Rejection {
            status: StatusCode::NOT_FOUND,
            detail: format!("no route for {path}"),
            allow: None,
        });
    }
    match ROUTES.iter().find(|(m, t)| *m == method && *t == template) {
        Some((_, t)) => Ok((t, id)),
        None => Err(Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            detail: format!("{method} is not allowed on {template}"),
            allow: Some(allowed.join(", ")),
        }),
    }
}

/// Handles one request; never fails (errors are problem responses).
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let request_id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_else(|| "local".into());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    async move {
        let response = dispatch(app, &request).await;
        tracing::info!(status = response.status().as_u16(), "handled");
        response
    }
    .instrument(span)
    .await
}

async fn dispatch(app: &App, request: &Request) -> Response<Body> {
    let method = request.method().as_str();
    let path = request.uri().path();
    let (template, id) = match route(method, path) {
        Ok(found) => found,
        Err(rejection) => return rejection.into_response(),
    };
    let id = id.unwrap_or_default();
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE
    );
    if writes && !may_write(app, request) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "writes need the API key in the x-api-key header",
        );
    }
    match (request.method(), template) {
        (&Method::GET, "/health") => health(),
        (&Method::GET, "/openapi.json") => openapi_json(),
        (&Method::GET, "/docs") => docs(),
        (&Method::POST, "/notes") => create_note(app, request).await,
        (&Method::GET, "/notes") => list_notes(app, request).await,
        (&Method::GET, "/notes/{id}") => get_note(app, id).await,
        (&Method::PUT, "/notes/{id}") => update_note(app, id, request).await,
        (&Method::DELETE, "/notes/{id}") => delete_note(app, id).await,
        _ => problem(StatusCode::NOT_FOUND, format!("no route for {path}")),
    }
}

fn body_json<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, Rejection> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection::bad_request(format!("invalid JSON body: {e}")))
}

fn check_text(title: &str, body: &str, owner: Option<&str>) -> Result<(), Rejection> {
    let title_len = title.chars().count();
    if title.trim().is_empty() || title_len > TITLE_MAX {
        return Err(Rejection::bad_request(format!(
            "`title` must be 1 to {TITLE_MAX} characters"
        )));
    }
    if body.chars().count() > BODY_MAX {
        return Err(Rejection::bad_request(format!(
            "`body` must be at most {BODY_MAX} characters"
        )));
    }
    if owner.is_some_and(|o| o.trim().is_empty() || o.len() > 100) {
        return Err(Rejection::bad_request(
            "`owner` must be 1 to 100 characters",
        ));
    }
    Ok(())
}

fn store_failure(error: StoreError) -> Response<Body> {
    match error {
        StoreError::NotFound(id) => {
            problem(StatusCode::NOT_FOUND, format!("note {id} does not exist"))
        }
        StoreError::Conflict { current } => problem(
            StatusCode::CONFLICT,
            format!(
                "the note changed since you read it: it is at version {current}; read it again and retry"
            ),
        ),
        StoreError::Throttled => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is throttling requests; retry in a moment",
        ),
        StoreError::BadCursor => problem(
            StatusCode::BAD_REQUEST,
            "`cursor` is not one this service returned",
        ),
        StoreError::Other(detail) => {
            tracing::error!(%detail, "database error");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database call failed",
            )
        }
    }
}

/// Liveness for the ALB target group.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "The function answers", body = Health)))]
pub fn health() -> Response<Body> {
    json(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
        },
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "The OpenAPI document")))]
pub fn openapi_json() -> Response<Body> {
    json(StatusCode::OK, &ApiDoc::openapi())
}

/// A human-readable page rendering the OpenAPI document (no external assets).
#[utoipa::path(get, path = "/docs", responses((status = 200, description = "HTML documentation", content_type = "text/html")))]
pub fn docs() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::Text(include_str!("docs.html").to_string()))
        .expect("static headers are valid")
}

/// Create a note.
#[utoipa::path(post, path = "/notes", request_body = NewNote, responses(
    (status = 201, description = "Created", body = Note),
    (status = 401, description = "The service has an API key and the request's `x-api-key` is not it", body = Problem),
    (status = 400, description = "Invalid input", body = Problem),
    (status = 503, description = "Throttled; retry", body = Problem),
))]
pub async fn create_note(app: &App, request: &Request) -> Response<Body> {
    let new: NewNote = match body_json(request) {
        Ok(n) => n,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(rejection) = check_text(&new.title, &new.body, new.owner.as_deref()) {
        return rejection.into_response();
    }
    match store::create(app, new).await {
        Ok(note) => {
            let mut response = json(StatusCode::CREATED, &note);
            let location = format!("/notes/{}", note.id)
                .parse()
                .expect("ids are header-safe");
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(e) => store_failure(e),
    }
}

/// List notes, a page at a time.
#[utoipa::path(get, path = "/notes", params(
    ("limit" = Option<i32>, Query, description = "Page size, 1 to 100 (default 20)"),
    ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
), responses(
    (status = 200, description = "A page of notes", body = NotePage),
    (status = 400, description = "Invalid limit or cursor", body = Problem),
))]
pub async fn list_notes(app: &App, request: &Request) -> Response<Body> {
    let query = request.query_string_parameters();
    let limit = match query.first("limit").map(str::parse::<i32>) {
        None => PAGE_DEFAULT,
        Some(Ok(n)) if (1..=PAGE_MAX).contains(&n) => n,
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("`limit` must be a whole number from 1 to {PAGE_MAX}"),
            );
        }
    };
    match store::list(app, limit, query.first("cursor")).await {
        Ok(page) => json(StatusCode::OK, &page),
        Err(e) => store_failure(e),
    }
}

/// Read a note.
#[utoipa::path(get, path = "/notes/{id}", params(("id" = String, Path, description = "Note id")), responses(
    (status = 200, description = "The note", body = Note),
    (status = 404, description = "No such note", body = Problem),
))]
pub async fn get_note(app: &App, id: &str) -> Response<Body> {
    match store::get(app, id).await {
        Ok(note) => json(StatusCode::OK, &note),
        Err(e) => store_failure(e),
    }
}

/// Change a note, if it is still at the version given (no lost updates).
#[utoipa::path(put, path = "/notes/{id}", params(("id" = String, Path, description = "Note id")), request_body = NoteUpdate, responses(
    (status = 200, description = "The updated note", body = Note),
    (status = 401, description = "The service has an API key and the request's `x-api-key` is not it", body = Problem),
    (status = 400, description = "Invalid input", body = Problem),
    (status = 404, description = "No such note", body = Problem),
    (status = 409, description = "Changed by someone else since it was read", body = Problem),
))]
pub async fn update_note(app: &App, id: &str, request: &Request) -> Response<Body> {
    let change: NoteUpdate = match body_json(request) {
        Ok(c) => c,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(rejection) = check_text(&change.title, &change.body, None) {
        return rejection.into_response();
    }
    match store::update(app, id, change).await {
        Ok(note) => json(StatusCode::OK, &note),
        Err(e) => store_failure(e),
    }
}

/// Delete a note.
#[utoipa::path(delete, path = "/notes/{id}", params(("id" = String, Path, description = "Note id")), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "The service has an API key and the request's `x-api-key` is not it", body = Problem),
    (status = 404, description = "No such note", body = Problem),
))]
pub async fn delete_note(app: &App, id: &str) -> Response<Body> {
    match store::delete(app, id).await {
        Ok(()) => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::Empty)
            .expect("no headers"),
        Err(e) => store_failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        assert_eq!(
            route("GET", "/notes/abc").unwrap(),
            ("/notes/{id}", Some("abc"))
        );
        assert_eq!(route("GET", "/notes/").unwrap(), ("/notes", None));
        assert_eq!(route("GET", "/health").unwrap(), ("/health", None));
        let not_found = route("GET", "/nope").unwrap_err().into_response();
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        let wrong = route("PATCH", "/notes/abc").unwrap_err().into_response();
        assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.headers()[header::ALLOW], "GET, PUT, DELETE");
        assert_eq!(
            route("GET", "/notes/a/b").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.")),
            Some(true)
        );
        // Every schema a response or body names is defined.
        let text = doc.to_string();
        for schema in [
            "Note",
            "NewNote",
            "NoteUpdate",
            "NotePage",
            "Problem",
            "Health",
        ] {
            assert!(
                text.contains(&format!("#/components/schemas/{schema}")),
                "{schema} is never referenced"
            );
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} is not defined"
            );
        }
    }

    #[test]
    fn throttling_is_503_with_retry_after() {
        let response = store_failure(StoreError::Throttled);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
