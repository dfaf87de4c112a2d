//! The load balancer's side: a loopback HTTP server that routes each request by the listener's
//! rules and answers from the function, a fixed response, or the load balancer's own errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::sync::mpsc;

use crate::alb;
use crate::routes::{Action, Routing};
use crate::runtime::{Failure, Function};
use crate::{Event, Served};

/// What the server routes to.
pub struct App {
    /// The listener's rules.
    pub routing: Routing,
    /// Functions by logical id.
    pub functions: HashMap<String, Arc<Function>>,
    /// Region and account for target group ARNs in events.
    pub arn_prefix: String,
    /// Where request records go.
    pub events: mpsc::UnboundedSender<Event>,
}

/// Serves `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let app = app.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.handle(request, peer).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    // Requests in flight go first: each holds its function until answered or timed out.
    drop(connections);
    for function in app.functions.values() {
        function.stop().await;
    }
}

fn plain(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// The load balancer's own error page.
fn elb_error(status: u16, reason: &str) -> Response<Full<Bytes>> {
    plain(
        status,
        "text/html",
        format!("<html><body><center><h1>{status} {reason}</h1></center></body></html>\n"),
    )
}

impl App {
    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().map(str::to_string);
        let host = request
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (response, function, cold_start, error) = self
            .answer(request, peer, &method, &host, &path, query.as_deref())
            .await;
        let _ = self.events.send(Event::Request(Served {
            method,
            path,
            status: response.status().as_u16(),
            function,
            duration: started.elapsed(),
            cold_start,
            error,
        }));
        response
    }

    async fn answer(
        &self,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
        method: &str,
        host: &str,
        path: &str,
        query: Option<&str>,
    ) -> (
        Response<Full<Bytes>>,
        Option<String>,
        Option<Duration>,
        Option<String>,
    ) {
        if request.headers().contains_key("upgrade") {
            return (
                elb_error(400, "Bad Request"),
                None,
                None,
                Some("WebSocket upgrades are refused for Lambda targets".into()),
            );
        }
        let (target_group_name, function) = match self.routing.route(method, host, path).0 {
            Action::Fixed {
                status,
                content_type,
                body,
            } => {
                return (plain(*status, content_type, body.clone()), None, None, None);
            }
            Action::Forward {
                target_group_name,
                function,
                ..
            } => (target_group_name.clone(), function.clone()),
        };
        let Some(function) = self.functions.get(&function) else {
            return (
                elb_error(503, "Service Temporarily Unavailable"),
                None,
                None,
                Some(format!("no artifact for {function}")),
            );
        };
        let label = Some(function.label.clone());
        let headers = forwarded_headers(&request, peer);
        let body = match Limited::new(request.into_body(), alb::MAX_REQUEST_BODY)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return (
                    elb_error(413, "Request Entity Too Large"),
                    label,
                    None,
                    Some("the request body is over the 1 MB a Lambda target accepts".into()),
                );
            }
        };
        let event = alb::event(
            &alb::Request {
                method,
                path,
                query,
                headers,
                body: &body,
            },
            &format!(
                "{}:targetgroup/{target_group_name}/0000000000000000",
                self.arn_prefix
            ),
        );
        let invoked = function.invoke(Bytes::from(event.to_string())).await;
        let (response, cold_start, error) = invoked_response(invoked);
        (response, label, cold_start, error)
    }
}

/// The request's headers as a Lambda target gets them: the client's, and the load balancer's
/// `x-forwarded-*`.
fn forwarded_headers(
    request: &Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.push(("x-forwarded-for".into(), peer.ip().to_string()));
    headers.push(("x-forwarded-port".into(), peer.port().to_string()));
    headers.push(("x-forwarded-proto".into(), "http".into()));
    headers
}

/// A function's answer as the HTTP response (a header HTTP cannot carry is left out).
fn http_response(answer: alb::Response) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// What the load balancer answers for an invocation: the function's response, a 502 for one it
/// cannot read or a failed invocation, a 503 when the function cannot start.
fn invoked_response(
    invoked: Result<(Bytes, Option<Duration>), Failure>,
) -> (Response<Full<Bytes>>, Option<Duration>, Option<String>) {
    match invoked {
        Ok((answer, cold_start)) => match alb::response(&answer) {
            Ok(answer) => (http_response(answer), cold_start, None),
            Err(why) => (elb_error(502, "Bad Gateway"), cold_start, Some(why)),
        },
        Err(failure @ Failure::Start(_)) => (
            elb_error(503, "Service Temporarily Unavailable"),
            None,
            Some(failure.to_string()),
        ),
        Err(failure) => (
            elb_error(502, "Bad Gateway"),
            None,
            Some(failure.to_string()),
        ),
    }
}
