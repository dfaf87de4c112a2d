//! The verification request after `up`: moto's load balancer has no real URL, so a local HTTP
//! server stands in for it (`DEPLOYER_VERIFY_URL`, the explicit override).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::common::{self, moto::Moto};
use super::{Project, up};

/// A loopback HTTP server answering every request with `status` and `body`; it records each
/// request line and `Host` header.
struct Stand {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    served: Arc<AtomicUsize>,
}

impl Stand {
    fn start(status: u16, body: &'static str) -> Stand {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (requests.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut host = String::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some(h) = header.to_ascii_lowercase().strip_prefix("host:") {
                        host = h.trim().to_string();
                    }
                }
                seen.lock().unwrap().push((line.trim().to_string(), host));
                count.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Stand {
            url,
            requests,
            served,
        }
    }
}

fn up_against(moto: &Moto, p: &Project, url: &str, extra: &[&str]) -> common::moto::Output {
    let artifact = format!("api={}", p.zip().display());
    let mut args = vec!["up", "--artifact", &artifact, "--yes"];
    args.extend_from_slice(extra);
    moto.deployer_with(p.path(), &args, &[("DEPLOYER_VERIFY_URL", url)])
}

#[tokio::test(flavor = "multi_thread")]
async fn up_verifies_the_service_answers_and_fails_with_its_logs_when_it_does_not() {
    let moto = Moto::start();
    let p = Project::new();
    // Without the override, an emulator's load balancer is not asked.
    let first = up(&moto, &p, &[]);
    first.expect_code(0);
    assert!(
        first.stderr.contains(
            "notes-dev: not verified: AWS_ENDPOINT_URL is set: the load balancer of an emulator has no real URL"
        ),
        "{}",
        first.stderr
    );

    // Healthy: the spec's default request, reported, and part of the JSON summary.
    let ok = Stand::start(200, "ok");
    let healthy = up_against(&moto, &p, &ok.url, &[]);
    healthy.expect_code(0);
    assert!(
        healthy.stderr.contains("✓ notes-dev: GET / 200 in "),
        "{}",
        healthy.stderr
    );
    assert_eq!(ok.requests.lock().unwrap()[0].0, "GET / HTTP/1.1");
    let json = up_against(&moto, &p, &ok.url, &["--json"]);
    json.expect_code(0);
    let summary = common::summary(&json.stdout);
    assert_eq!(summary["verified"]["path"], "/");
    assert_eq!(summary["verified"]["status"], 200);

    // `verify:` in the spec: its path and status.
    let spec = p.path().join("stacks/example.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        format!("{text}verify: {{ path: /openapi.json, expect: 201 }}\n"),
    )
    .unwrap();
    let wrong = up_against(&moto, &p, &ok.url, &[]);
    wrong.expect_code(1);
    assert!(
        wrong
            .stderr
            .contains("notes-dev is deployed, but GET /openapi.json answered 200 (expected 201)"),
        "{}",
        wrong.stderr
    );
    std::fs::write(&spec, &text).unwrap();

    // Unhealthy: exit 1 with the response and the function's latest log lines.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config().await);
    let group = "/aws/lambda/notes-dev-api";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 60_000;
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("s")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(soon)
                .message("thread 'main' panicked: the table is gone")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let broken = Stand::start(503, "upstream broke");
    let failed = up_against(&moto, &p, &broken.url, &[]);
    failed.expect_code(1);
    for expected in [
        "notes-dev is deployed, but GET / answered 503 (expected a status below 500)",
        "response:\n  upstream broke",
        "last lines of /aws/lambda/notes-dev-api:\n  thread 'main' panicked: the table is gone",
    ] {
        assert!(
            failed.stderr.contains(expected),
            "{expected}\n{}",
            failed.stderr
        );
    }

    // --no-verify: no request.
    let before = broken.served.load(Ordering::SeqCst);
    up_against(&moto, &p, &broken.url, &["--no-verify"]).expect_code(0);
    assert_eq!(broken.served.load(Ordering::SeqCst), before);

    // Nobody listening: one warning line, unless --verify.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let unreachable = up_against(&moto, &p, &closed, &[]);
    unreachable.expect_code(0);
    assert!(
        unreachable
            .stderr
            .contains("warning: notes-dev: not verified: GET / at "),
        "{}",
        unreachable.stderr
    );
    let required = up_against(&moto, &p, &closed, &["--verify"]);
    required.expect_code(1);
    assert!(
        required
            .stderr
            .contains("notes-dev is deployed, but GET / at "),
        "{}",
        required.stderr
    );

    // The example's function has a health check: its target group's health is read before
    // the request (moto registers no target for a stack's Lambda target group: nothing to wait
    // for). Without one, it is not read: a Lambda target then reads `unavailable` by design.
    let read = moto.count("DescribeTargetHealth");
    assert!(read >= 1, "the health was read before the requests");
    p.edit_spec(
        "    health_check: /health         # off by default: each check is a billed invocation\n",
        "",
    );
    let unchecked = up_against(&moto, &p, &ok.url, &[]);
    unchecked.expect_code(0);
    assert!(
        unchecked.stderr.contains("✓ notes-dev: GET / 200 in "),
        "{}",
        unchecked.stderr
    );
    assert_eq!(moto.count("DescribeTargetHealth"), read);
}
