//! {{name}}: a Rust service on AWS Lambda behind an Application Load Balancer.
//! Deploy it with `deployer up` (see stacks/{{name}}.yaml).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response, service_fn};

async fn handle(request: Request) -> Result<Response<Body>, Error> {
    let (status, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/health") => (StatusCode::OK, serde_json::json!({ "status": "ok" })),
        ("GET", "/") => (StatusCode::OK, serde_json::json!({ "hello": "{{name}}" })),
        _ => (StatusCode::NOT_FOUND, serde_json::json!({ "title": "Not Found", "status": 404 })),
    };
    tracing::info!(status = status.as_u16(), path = request.uri().path(), "handled");
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // JSON lines: CloudWatch Logs Insights can query them.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    lambda_http::run(service_fn(handle)).await
}
