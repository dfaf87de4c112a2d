//! One function's `bootstrap`, run as Lambda runs it: a process that pulls invocations from a
//! Lambda Runtime API (`/2018-06-01/runtime/...`) served on a loopback port for that process alone.
//!
//! Each process gets its own Runtime API server: when the process dies or times out, its server
//! and every connection to it go with it, so no invocation is ever handed to a dead process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use crate::Event;

/// How to start a function's process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Prefix before the bootstrap, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`
    /// for an arm64 bootstrap on an x86_64 machine; empty to run it directly.
    pub emulator: Vec<OsString>,
    /// The extracted `bootstrap`.
    pub bootstrap: PathBuf,
    /// Its working directory (Lambda's `/var/task`).
    pub dir: PathBuf,
    /// The whole environment: nothing of deployer's own is inherited, as on Lambda.
    pub env: Vec<(String, String)>,
}

/// What a function answered.
enum Answer {
    Response(Bytes),
    Error(Bytes),
}

struct Invocation {
    id: String,
    event: Bytes,
    deadline: SystemTime,
    reply: oneshot::Sender<Answer>,
}

/// Why an invocation got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The function reported an error (`/response` was `/error`).
    #[error("the function returned an error: {0}")]
    Function(String),
    /// The process ended before answering.
    #[error("the function's process {0} before answering")]
    Exited(String),
    /// No answer within the function's timeout; the process was stopped.
    #[error("the function did not answer within its timeout ({} s); its process was stopped", .0.as_secs())]
    Timeout(Duration),
    /// The process could not be started.
    #[error("the function could not be started: {0}")]
    Start(String),
}

/// A running process and the Runtime API it polls.
struct Instance {
    invocations: mpsc::Sender<Invocation>,
    /// `Some(how it ended)` once the process has exited.
    exited: watch::Receiver<Option<String>>,
    /// Dropping it stops the process.
    _stop: oneshot::Sender<()>,
    /// Dropping it stops the Runtime API server and its connections.
    _api: tokio::task::AbortHandle,
    init_error: Arc<std::sync::Mutex<Option<String>>>,
    started: Instant,
    answered: bool,
}

/// A function: started on its first invocation (a cold start, as on Lambda), restarted on the
/// next invocation after it exits or times out. One invocation at a time.
pub struct Function {
    /// Its name in the spec, prefixed to its log lines.
    pub label: String,
    /// Its deployed name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The function ARN handed to the runtime.
    pub arn: String,
    /// The function's timeout.
    pub timeout: Duration,
    launch: Launch,
    instance: Mutex<Option<Instance>>,
    events: mpsc::UnboundedSender<Event>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Function {
    /// A function that starts `launch` when first invoked and reports to `events`.
    pub fn new(
        label: String,
        name: String,
        arn: String,
        timeout: Duration,
        launch: Launch,
        events: mpsc::UnboundedSender<Event>,
    ) -> Function {
        Function {
            label,
            name,
            arn,
            timeout,
            launch,
            instance: Mutex::new(None),
            events,
            next_id: Default::default(),
        }
    }

    /// Invokes the function with `event`: its response payload, and the cold start (process
    /// start to this answer) when this invocation started the process.
    pub async fn invoke(&self, event: Bytes) -> Result<(Bytes, Option<Duration>), Failure> {
        let mut slot = self.instance.lock().await;
        if slot.as_ref().is_some_and(|i| i.exited.borrow().is_some()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.start().await.map_err(Failure::Start)?);
        }
        let instance = slot.as_mut().expect("started above");
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let invocation = Invocation {
            id: format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id()),
            event,
            deadline: SystemTime::now() + self.timeout,
            reply,
        };
        let mut exited = instance.exited.clone();
        let outcome = tokio::select! {
            sent = instance.invocations.send(invocation) => match sent {
                Ok(()) => tokio::select! {
                    answer = answer => match answer {
                        Ok(Answer::Response(body)) => Ok(body),
                        Ok(Answer::Error(body)) => Err(Failure::Function(String::from_utf8_lossy(&body).into_owned())),
                        Err(_) => Err(Failure::Exited("stopped".into())),
                    },
                    how = exited.wait_for(Option::is_some) => {
                        Err(Failure::Exited(how.map(|h| h.clone().unwrap_or_default()).unwrap_or_default()))
                    }
                    _ = tokio::time::sleep(self.timeout) => Err(Failure::Timeout(self.timeout)),
                },
                Err(_) => Err(Failure::Exited("stopped".into())),
            },
            _ = tokio::time::sleep(self.timeout) => Err(Failure::Timeout(self.timeout)),
        };
        match outcome {
            Ok(body) => {
                let cold = (!instance.answered).then(|| instance.started.elapsed());
                instance.answered = true;
                Ok((body, cold))
            }
            Err(failure) => {
                let failure = match failure {
                    Failure::Exited(how) => match instance.init_error.lock().unwrap().clone() {
                        Some(init) => Failure::Exited(format!("{how} (init error: {init})")),
                        None => Failure::Exited(how),
                    },
                    other => other,
                };
                // A function error leaves the process serving; anything else replaces it.
                if !matches!(failure, Failure::Function(_)) {
                    *slot = None;
                }
                Err(failure)
            }
        }
    }

    /// Stops the process, if one runs.
    pub async fn stop(&self) {
        *self.instance.lock().await = None;
    }

    /// The bootstrap's command (under its emulator, if any), with Lambda's environment and the
    /// Runtime API at `address`; and the program it runs.
    fn command(
        &self,
        address: std::net::SocketAddr,
    ) -> (std::ffi::OsString, tokio::process::Command) {
        let (program, args) = match self.launch.emulator.split_first() {
            Some((emulator, args)) => (emulator.clone(), args.to_vec()),
            None => (self.launch.bootstrap.clone().into_os_string(), Vec::new()),
        };
        let mut command = tokio::process::Command::new(&program);
        command.args(args);
        if !self.launch.emulator.is_empty() {
            command.arg(&self.launch.bootstrap);
        }
        command
            .current_dir(&self.launch.dir)
            .env_clear()
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        (program, command)
    }

    /// Each line the process writes, stdout and stderr, as a `Log` event.
    fn forward_output(&self, child: &mut tokio::process::Child) {
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ];
        for stream in streams.into_iter().flatten() {
            let (events, label) = (self.events.clone(), self.label.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = events.send(Event::Log {
                        function: label.clone(),
                        line,
                    });
                }
            });
        }
    }

    async fn start(&self) -> Result<Instance, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot open a port for its Runtime API: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let (invocations, queue) = mpsc::channel(1);
        let init_error = Arc::new(std::sync::Mutex::new(None));
        let api = RuntimeApi {
            queue: Mutex::new(queue),
            pending: Default::default(),
            arn: self.arn.clone(),
            init_error: init_error.clone(),
        };
        let api = tokio::spawn(serve_runtime_api(listener, Arc::new(api))).abort_handle();

        let (program, mut command) = self.command(address);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", program.to_string_lossy()))?;
        let _ = self.events.send(Event::Started {
            function: self.label.clone(),
            pid: child.id(),
        });
        self.forward_output(&mut child);
        let (exit_tx, exited) = watch::channel(None);
        let (stop, stopped) = oneshot::channel::<()>();
        let events = self.events.clone();
        let label = self.label.clone();
        tokio::spawn(async move {
            let how = tokio::select! {
                status = child.wait() => match status {
                    Ok(status) => match status.code() {
                        Some(code) => format!("exited with code {code}"),
                        None => format!("was ended by a signal ({status})"),
                    },
                    Err(e) => format!("could not be waited for: {e}"),
                },
                _ = stopped => {
                    let _ = child.kill().await;
                    "was stopped".to_string()
                }
            };
            let _ = events.send(Event::Exited {
                function: label,
                how: how.clone(),
            });
            let _ = exit_tx.send(Some(how));
        });
        Ok(Instance {
            invocations,
            exited,
            _stop: stop,
            _api: api,
            init_error,
            started,
            answered: false,
        })
    }
}

struct RuntimeApi {
    queue: Mutex<mpsc::Receiver<Invocation>>,
    pending: std::sync::Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    arn: String,
    init_error: Arc<std::sync::Mutex<Option<String>>>,
}

async fn serve_runtime_api(listener: tokio::net::TcpListener, api: Arc<RuntimeApi>) {
    // Connections live in this set: aborting this task closes them all.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let api = api.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

impl RuntimeApi {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return reply(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown path\"}");
        };
        if method == hyper::Method::GET && rest == "invocation/next" {
            // Long poll: held until there is work, as Lambda does between invocations.
            let Some(invocation) = self.queue.lock().await.recv().await else {
                return reply(StatusCode::GONE, "");
            };
            let deadline = invocation
                .deadline
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            self.pending
                .lock()
                .unwrap()
                .insert(invocation.id.clone(), invocation.reply);
            let mut response = Response::new(Full::new(invocation.event));
            let headers = response.headers_mut();
            let mut set = |name: &'static str, value: String| {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            };
            set("content-type", "application/json".into());
            set("lambda-runtime-aws-request-id", invocation.id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set("lambda-runtime-invoked-function-arn", self.arn.clone());
            set(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            );
            return response;
        }
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return reply(StatusCode::BAD_REQUEST, ""),
        };
        if method == hyper::Method::POST && rest == "init/error" {
            *self.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
            return reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}");
        }
        let parts: Vec<&str> = rest.split('/').collect();
        if let (true, ["invocation", id, kind @ ("response" | "error")]) =
            (method == hyper::Method::POST, parts.as_slice())
        {
            let Some(waiting) = self.pending.lock().unwrap().remove(*id) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "{\"errorMessage\":\"unknown request id\",\"errorType\":\"InvalidRequestID\"}",
                );
            };
            let answer = if *kind == "response" {
                Answer::Response(body)
            } else {
                Answer::Error(body)
            };
            let _ = waiting.send(answer);
            return reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}");
        }
        reply(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown path\"}")
    }
}
