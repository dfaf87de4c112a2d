//! One moto server (the AWS emulator, PyPI `moto[server]`) for the whole test binary, and for
//! each test its own account on it: a recording proxy (`super::proxy`) in front of the server
//! names the test's account in every request, so tests running in parallel see only their own
//! stacks, buckets and functions, and count only their own requests.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::proxy::{Proxy, Rules};

/// The server all tests share. It stops when the test process ends: a shell holds it and kills
/// it when its stdin, a pipe only this process writes to, closes.
struct Server {
    endpoint: String,
    dir: tempfile::TempDir,
    _lifeline: ChildStdin,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let moto_server = super::python_tool("moto_server");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        // Never waited for: the shell ends with this process, which nothing outlives.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new("sh")
            .args(["-c", "\"$0\" \"$@\" & m=$!; cat >/dev/null; kill $m"])
            .arg(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start moto_server");
        let server = Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _lifeline: child.stdin.take().expect("piped"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start within 30 s: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    })
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

/// One test's account on the shared moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`: this test's recording proxy.
    pub endpoint: String,
    /// The account this test's requests act in.
    pub account: String,
    proxy: Proxy,
}

/// One request this test made.
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
    /// A new account on the shared server (started, and warmed, by the first test that asks).
    /// Panics with what to install when moto is missing.
    pub fn start() -> Moto {
        static ACCOUNTS: AtomicU64 = AtomicU64::new(0);
        static WARM: OnceLock<()> = OnceLock::new();
        let server = server();
        // Twelve digits, never moto's default account (123456789012).
        let account = format!(
            "{:012}",
            200_000_000_000 + ACCOUNTS.fetch_add(1, Ordering::Relaxed)
        );
        let proxy = Proxy::start(
            &server.endpoint,
            Rules {
                account: Some(account.clone()),
                ..Rules::default()
            },
        );
        let moto = Moto {
            endpoint: proxy.endpoint.clone(),
            account,
            proxy,
        };
        WARM.get_or_init(|| {
            // The first request imports moto's service modules (seconds): not a test's step.
            std::fs::write(server.dir.path().join("warm.yaml"), "app: warm\n").unwrap();
            let warm = moto.deployer(server.dir.path(), &["status", "-s", "warm.yaml"]);
            assert_eq!(
                warm.code,
                Some(0),
                "warming moto with `deployer status` failed: {warm:?}\n{}",
                server.log()
            );
        });
        moto.reset_recording();
        moto
    }

    /// moto's own output (every test's), for failure messages.
    pub fn log(&self) -> String {
        server().log()
    }

    /// Forgets the requests recorded so far.
    pub fn reset_recording(&self) {
        self.proxy.clear();
    }

    /// Every request of this test since the last reset.
    pub fn requests(&self) -> Vec<Request> {
        self.proxy
            .recorded()
            .into_iter()
            .map(|r| {
                let body = String::from_utf8_lossy(&r.body).into_owned();
                let from_body = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .map(str::to_string);
                Request {
                    action: from_body.or(r.target),
                    form: form_urlencoded::parse(body.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect(),
                    method: r.method,
                    url: r.url,
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
        let mut cmd = self.command(assert_cmd::cargo::cargo_bin("deployer"));
        cmd.current_dir(dir).args(args).envs(env.iter().copied());
        Output::of(cmd.output().unwrap())
    }

    /// `deployer ARGS` with `input` on its stdin (a value `secret set` reads).
    pub fn deployer_with_stdin(&self, dir: &Path, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = self
            .command(assert_cmd::cargo::cargo_bin("deployer"))
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        Output::of(child.wait_with_output().unwrap())
    }

    /// The template of `stack` as CloudFormation holds it (GetTemplate).
    pub async fn template(&self, stack: &str) -> serde_json::Value {
        let cfn = aws_sdk_cloudformation::Client::new(&self.sdk_config().await);
        let body = cfn.get_template().stack_name(stack).send().await.unwrap();
        serde_json::from_str(body.template_body().unwrap()).unwrap()
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
    /// A finished process's exit code and text.
    fn of(out: std::process::Output) -> Output {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

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
