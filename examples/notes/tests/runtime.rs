//! The built `notes-api` binary under a Lambda Runtime API emulator (a small HTTP server in this
//! test), invoked with ALB events the way Lambda would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Invocations handed out in order, and the responses the function posted back.
struct Emulator {
    events: Mutex<Vec<(String, Value)>>,
    responses: Mutex<Vec<(String, Value)>>,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut start = String::new();
    stream.read_line(&mut start).ok()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    let mut parts = start.split_whitespace();
    Some((parts.next()?.to_string(), parts.next()?.to_string(), body))
}

fn serve(emulator: Arc<Emulator>, stream: TcpStream) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/invocation/next") {
            let next = emulator.events.lock().unwrap().pop();
            let Some((id, event)) = next else {
                // No more work: hold the long poll, as Lambda does between invocations.
                std::thread::sleep(Duration::from_secs(600));
                return;
            };
            let body = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:notes-dev-api\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5f84c7a9-0e5c3b6f7a8d9e0f1a2b3c4d\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            writer.write_all(head.as_bytes()).unwrap();
            writer.write_all(body.as_bytes()).unwrap();
        } else if method == "POST" && path.contains("/invocation/") {
            let id = path.split('/').nth(4).unwrap_or_default().to_string();
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            emulator
                .responses
                .lock()
                .unwrap()
                .push((format!("{id} {}", path.rsplit('/').next().unwrap()), value));
            writer
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        } else {
            writer
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        }
    }
}

fn alb_event(path: &str, multi_value: bool) -> Value {
    let mut event = json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/notes/6d0ecf831eec9f09" } },
        "httpMethod": "GET",
        "path": path,
        "body": "",
        "isBase64Encoded": false,
    });
    if multi_value {
        event["multiValueHeaders"] =
            json!({ "accept": ["application/json"], "host": ["lb.example.com"] });
        event["multiValueQueryStringParameters"] = json!({});
    } else {
        event["headers"] = json!({ "accept": "application/json", "host": "lb.example.com" });
        event["queryStringParameters"] = json!({});
    }
    event
}

#[test]
fn the_bootstrap_answers_alb_invocations_from_the_runtime_api() {
    let emulator = Arc::new(Emulator {
        // Popped from the end: /health first (single-value), then /nowhere (multi-value).
        events: Mutex::new(vec![
            ("req-2".into(), alb_event("/nowhere", true)),
            ("req-1".into(), alb_event("/health", false)),
        ]),
        responses: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let shared = emulator.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let emulator = shared.clone();
            std::thread::spawn(move || serve(emulator, stream));
        }
    });

    // NOTES_BOOTSTRAP runs another build of the service, such as the `bootstrap` deployer's
    // Docker build produced, under the same emulator.
    let bootstrap = std::env::var_os("NOTES_BOOTSTRAP")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_notes-api").into());
    let mut child = Command::new(&bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "notes-dev-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/notes-dev-api")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TABLE_NOTES", "notes-dev-NotesTable-LOCAL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while emulator.responses.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the function did not answer: {:?}",
            emulator.responses.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        });
    eprintln!(
        "resident memory after two requests: {}",
        rss.unwrap_or_default()
    );
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();

    let responses = emulator.responses.lock().unwrap().clone();
    let (id, health) = &responses[0];
    assert_eq!(id, "req-1 response");
    assert_eq!(health["statusCode"], 200);
    assert_eq!(health["statusDescription"], "200 OK");
    assert_eq!(health["body"], r#"{"status":"ok"}"#);
    assert_eq!(health["isBase64Encoded"], false);
    assert_eq!(health["headers"]["content-type"], "application/json");
    let (id, missing) = &responses[1];
    assert_eq!(id, "req-2 response");
    assert_eq!(missing["statusCode"], 404);
    // A multi-value request gets multi-value headers back, as ALB requires.
    assert_eq!(
        missing["multiValueHeaders"]["content-type"],
        json!(["application/problem+json"])
    );

    // Every log line is JSON and carries the Lambda request id.
    let logs = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let handled: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "handled")
        .collect();
    assert_eq!(handled.len(), 2, "{logs}");
    assert_eq!(handled[0]["span"]["request_id"], "req-1");
    assert_eq!(handled[1]["span"]["request_id"], "req-2");
    assert_eq!(handled[1]["fields"]["status"], 404);
}
