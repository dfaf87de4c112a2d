//! A moto server (the AWS emulator, PyPI `moto[server]`) on a free loopback port for one test,
//! with its request recorder on, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// One running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

/// One request moto received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    /// `Action=...` of query-protocol calls (CloudFormation, STS, ELB), or the `X-Amz-Target`.
    pub action: Option<String>,
    /// The form fields of a query-protocol call, decoded.
    pub form: Vec<(String, String)>,
}

impl Request {
    /// The first form field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Moto {
    /// Starts moto and waits until it answers. Panics with what to install when it is missing.
    pub fn start() -> Moto {
        let server = super::python_tool("moto_server");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start within 30 s: {}",
                moto.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Warm it with read-only calls (STS, DescribeStacks): the first request imports moto's
        // service modules, which should not count against the first test step.
        std::fs::write(moto.dir.path().join("warm.yaml"), "app: warm\n").unwrap();
        let warm = moto.deployer(moto.dir.path(), &["status", "-s", "warm.yaml"]);
        assert_eq!(
            warm.code,
            Some(0),
            "warming moto with `deployer status` failed: {warm:?}\n{}",
            moto.log()
        );
        moto.reset_recording();
        moto
    }

    /// moto's own output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    fn recording_path(&self) -> PathBuf {
        self.dir.path().join("recording.jsonl")
    }

    /// Forgets the requests recorded so far.
    pub fn reset_recording(&self) {
        std::fs::write(self.recording_path(), "").unwrap();
    }

    /// Every request since the last reset.
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(self.recording_path()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let body = entry["body"].as_str().unwrap_or_default();
                let body = if entry["body_encoded"] == true {
                    String::from_utf8_lossy(
                        &base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .unwrap_or_default(),
                    )
                    .into_owned()
                } else {
                    body.to_string()
                };
                let from_body = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .map(str::to_string);
                let target = entry["headers"]
                    .as_object()
                    .and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                    })
                    .and_then(|(_, v)| v.as_str())
                    .map(str::to_string);
                Request {
                    method: entry["method"].as_str().unwrap_or_default().to_string(),
                    url: entry["url"].as_str().unwrap_or_default().to_string(),
                    action: from_body.or(target),
                    form: form_urlencoded::parse(body.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect(),
                }
            })
            .collect()
    }

    /// How many recorded requests were `action`.
    pub fn count(&self, action: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .count()
    }

    /// A command for `program` with the environment pointing at this moto: region, dummy
    /// credentials, one attempt per call, no instance metadata, and no host AWS config.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIATESTINGONLY00000")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/deployer-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/deployer-test-credentials",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// `deployer ARGS` against this moto, from `dir`.
    pub fn deployer(&self, dir: &Path, args: &[&str]) -> Output {
        self.deployer_with(dir, args, &[])
    }

    /// `deployer ARGS` with extra environment variables.
    pub fn deployer_with(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self
            .command(assert_cmd::cargo::cargo_bin("deployer"))
            .current_dir(dir)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// An SDK config for this moto, for tests that read back what deployer made.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "AKIATESTINGONLY00000",
                SECRET,
                None,
                None,
                "test",
            ))
            .load()
            .await
    }
}

/// The secret access key the tests use; no output may ever contain it.
pub const SECRET: &str = "deployer-test-secret-never-printed-7f3a9c";

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stdout.contains(SECRET) && !self.stderr.contains(SECRET),
            "the secret key was printed"
        );
        self
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
