//! `deployer local`: builds the routed functions, creates the spec's tables at a local DynamoDB
//! endpoint, and serves the rendered template's listener rules on a loopback port until Ctrl-C
//! (the serving itself is crates/local).

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deployer_local::routes::{Action, EnvValue, FunctionDef, Routing};
use deployer_local::{Arch, Event};
use tokio::signal::unix::{Signal, SignalKind, signal};

use serde::Serialize;

use crate::build;
use crate::commands::BuildChoice;
use crate::exit::Error;
use crate::spec::Architecture;
use crate::ui::record::{LocalRoute, Seconds};
use crate::ui::{Human, Outcome, Reporter};
use crate::workspace::Loaded;

use super::args::{Artifacts, Output, Target};

/// The account id in the ARNs handed to functions (nothing checks it locally).
const LOCAL_ACCOUNT: &str = "123456789012";

/// `deployer local`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer local --build-method cargo-lambda --dynamodb-endpoint http://127.0.0.1:5000\n  deployer local --artifact api=target/api.zip --port 0 --json\n\nThe listener rules come from the rendered template and are evaluated in priority\norder (paths, methods, hosts; then the default route or the fixed 404). Each routed\nfunction's `bootstrap` starts on its first request (the cold start is shown) behind\na Lambda Runtime API, with the environment it gets on Lambda: `TABLE_*` name tables\ncreated from the spec at --dynamodb-endpoint (moto, DynamoDB Local), kept with their\ndata between runs; `<NAME>_PARAMETER` and `<NAME>_SECRET_ID` name the spec's secrets,\nread at --secrets-endpoint (set them there with `deployer secret set`).\nAn arm64 bootstrap on an x86_64 machine runs under qemu-user\n(Debian: qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross).\nOne request at a time per function.\nFunction logs stream to stderr, prefixed by function. Ctrl-C stops everything."
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    artifacts: Artifacts,
    /// The loopback port to serve on (0: any free one, printed on stdout)
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The DynamoDB endpoint for the functions' tables (moto, DynamoDB Local)
    /// [default: AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    dynamodb_endpoint: Option<String>,
    /// The SSM and Secrets Manager endpoint the functions read their `secrets` from (moto,
    /// LocalStack) [default: AWS_ENDPOINT_URL_SSM, then AWS_ENDPOINT_URL; else your AWS
    /// account's, with your credentials]
    #[arg(long, value_name = "URL")]
    secrets_endpoint: Option<String>,
    #[command(flatten)]
    output: Output,
}

/// Where the functions' AWS clients go instead of AWS.
#[derive(Debug, Clone, Copy, Default)]
pub struct Endpoints<'a> {
    /// DynamoDB (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub dynamodb: Option<&'a str>,
    /// SSM and Secrets Manager (`AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub secrets: Option<&'a str>,
}

impl Args {
    /// Runs `local` until Ctrl-C.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        local(
            &loaded,
            &self.artifacts.choice(),
            &self,
            &self.output.reporter(),
        )
    }
}

/// What `local` reported when it stopped: the `summary` record (command `local`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stopped {
    /// Always `stopped`: `local` ends only when stopped.
    pub status: LocalStatus,
    /// The stack served.
    pub stack: String,
    /// Requests answered.
    pub requests: u64,
    /// The command's time.
    pub duration_s: Seconds,
}

/// How `local` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalStatus {
    /// Ctrl-C or SIGTERM.
    Stopped,
}

impl Outcome for Stopped {
    fn command(&self) -> &'static str {
        "local"
    }

    fn human(&self) -> Human {
        Human::step(format!(
            "stopped: {} request(s) answered, every function's process ended",
            self.requests
        ))
    }
}

/// The name a spec table gets at the local endpoint: readable and per env, since CloudFormation's
/// generated name does not exist until a deploy.
pub fn local_table_name(stack: &str, table: &str) -> String {
    format!("{stack}-{table}")
}

/// What a function's process gets: what Lambda sets for a `provided.al2023` function, the
/// template's variables with table references resolved to local names, region and credentials
/// for the SDK, and the local endpoints. Nothing else of deployer's environment leaks in.
pub fn function_env(
    def: &FunctionDef,
    tables: &HashMap<String, String>,
    region: &str,
    endpoints: Endpoints,
    credentials: &[(String, String)],
    task_root: &Path,
) -> Result<Vec<(String, String)>, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("AWS_LAMBDA_FUNCTION_NAME", def.name.clone());
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", def.memory.to_string());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", def.name),
    );
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "local/[$LATEST]00000000000000000000000000000000".into(),
    );
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    if def.json_logs {
        set("AWS_LAMBDA_LOG_FORMAT", "JSON".into());
    }
    set("AWS_REGION", region.into());
    set("AWS_DEFAULT_REGION", region.into());
    set("_HANDLER", "bootstrap".into());
    set("LAMBDA_TASK_ROOT", task_root.display().to_string());
    set("LAMBDA_RUNTIME_DIR", task_root.display().to_string());
    set("PATH", "/usr/local/bin:/usr/bin:/bin".into());
    set("LANG", "en_US.UTF-8".into());
    set("TZ", ":UTC".into());
    for (key, value) in credentials {
        set(key, value.clone());
    }
    if let Some(endpoint) = endpoints.dynamodb {
        set("AWS_ENDPOINT_URL_DYNAMODB", endpoint.into());
    }
    // The secrets' variables (`<NAME>_PARAMETER`, `<NAME>_SECRET_ID`) are the template's.
    if let Some(endpoint) = endpoints.secrets {
        set("AWS_ENDPOINT_URL_SSM", endpoint.into());
        set("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.into());
    }
    for (key, value) in &def.environment {
        let value = match value {
            EnvValue::Literal(value) => value.clone(),
            EnvValue::Ref(id) => tables.get(id).cloned().ok_or_else(|| {
                format!(
                    "{} of {} refers to {id}, which is not a table served locally",
                    key, def.name
                )
            })?,
        };
        set(key, value);
    }
    Ok(env.into_iter().collect())
}

/// The routes as shown: conditions in words, the function by its spec name.
fn route_lines(routing: &Routing, labels: &HashMap<String, String>) -> Vec<LocalRoute> {
    let target = |action: &Action| match action {
        Action::Forward { function, .. } => (labels.get(function).cloned(), None),
        Action::Fixed { status, .. } => (None, Some(*status)),
    };
    let mut lines: Vec<LocalRoute> = routing
        .rules
        .iter()
        .map(|rule| {
            let mut words = Vec::new();
            if !rule.methods.is_empty() {
                words.push(rule.methods.join(","));
            }
            if !rule.hosts.is_empty() {
                words.push(format!("host {}", rule.hosts.join(",")));
            }
            if !rule.paths.is_empty() {
                words.push(rule.paths.join(","));
            }
            let (function, fixed_status) = target(&rule.action);
            LocalRoute {
                priority: Some(rule.priority),
                conditions: words.join(" "),
                function,
                fixed_status,
            }
        })
        .collect();
    let (function, fixed_status) = target(&routing.default);
    lines.push(LocalRoute {
        priority: None,
        conditions: "anything else".into(),
        function,
        fixed_status,
    });
    lines
}

/// The `bootstrap` of a zip, written executable under `dir`.
fn extract_bootstrap(zip: &[u8], dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| e.to_string())?;
    let mut entry = archive
        .by_name("bootstrap")
        .map_err(|_| "the zip has no `bootstrap`".to_string())?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = dir.join("bootstrap");
    std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// Removes the extracted bootstraps however the command ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Credentials for the functions: the caller's from the environment, else placeholders a local
/// endpoint accepts (moto and DynamoDB Local check none).
fn local_credentials() -> Vec<(String, String)> {
    let from_env: Vec<(String, String)> = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
    .collect();
    if from_env.len() >= 2 {
        return from_env;
    }
    vec![
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
    ]
}

/// What `local` serves: the template's routing, the functions it routes to, the tables they
/// use. Decided from the spec alone.
struct Served {
    template: serde_json::Value,
    routing: Routing,
    /// Spec names by the function's logical id.
    labels: HashMap<String, String>,
    /// The spec names of the routed functions, sorted.
    routed: Vec<String>,
    defs: Vec<FunctionDef>,
    /// Spec names of tables by logical id.
    table_specs: HashMap<String, String>,
    /// Logical ids of the tables the routed functions name, sorted.
    needed: Vec<String>,
}

impl Served {
    fn of(loaded: &Loaded) -> Result<Served, Error> {
        let spec = &loaded.spec;
        let template = loaded.render(crate::render::Options::default())?.0;
        let routing = Routing::from_template(&template)
            .map_err(|e| Error::usage(format!("nothing to serve: {e}")))?;
        let labels: HashMap<String, String> = spec
            .functions
            .keys()
            .map(|name| (crate::render::function_id(name), name.clone()))
            .collect();
        let mut routed: Vec<String> = routing
            .rules
            .iter()
            .map(|r| &r.action)
            .chain([&routing.default])
            .filter_map(|action| match action {
                Action::Forward { function, .. } => labels.get(function).cloned(),
                Action::Fixed { .. } => None,
            })
            .collect();
        routed.sort();
        routed.dedup();
        let defs: Vec<FunctionDef> = deployer_local::routes::functions(&template)
            .into_iter()
            .filter(|d| {
                labels
                    .get(&d.logical_id)
                    .is_some_and(|l| routed.contains(l))
            })
            .collect();
        let table_specs: HashMap<String, String> = spec
            .tables
            .keys()
            .map(|name| (crate::render::table_id(name), name.clone()))
            .collect();
        let mut needed: Vec<String> = defs
            .iter()
            .flat_map(|d| &d.environment)
            .filter_map(|(_, v)| match v {
                EnvValue::Ref(id) if table_specs.contains_key(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        needed.sort();
        needed.dedup();
        Ok(Served {
            template,
            routing,
            labels,
            routed,
            defs,
            table_specs,
            needed,
        })
    }

    /// The DynamoDB endpoint: `--dynamodb-endpoint`, then the environment's; required when a
    /// routed function uses a table, so none gets the AWS account's.
    fn endpoint(&self, given: Option<&str>) -> Result<Option<String>, Error> {
        let endpoint = given.map(str::to_string).or_else(|| {
            ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        });
        if !self.needed.is_empty() && endpoint.is_none() {
            return Err(Error::usage(format!(
                "the functions use tables ({}): pass --dynamodb-endpoint URL (moto, DynamoDB Local) \
                 so they get local ones, not your AWS account's",
                self.needed
                    .iter()
                    .map(|id| self.table_specs[id].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(endpoint)
    }

    /// Creates the needed tables at the endpoint (kept between runs): their local names by
    /// logical id.
    async fn create_tables(
        &self,
        stack: &str,
        region: &str,
        endpoint: &str,
        credentials: &[(String, String)],
        reporter: &Reporter,
    ) -> Result<HashMap<String, String>, Error> {
        let config = local_sdk_config(region, endpoint, credentials).await;
        let mut local_tables = HashMap::new();
        for id in &self.needed {
            let table = &self.table_specs[id];
            let physical = local_table_name(stack, table);
            let created = crate::aws::dynamodb::ensure_table(
                &config,
                &physical,
                &self.template["Resources"][id.as_str()]["Properties"],
            )
            .await
            .map_err(|e| {
                Error::new(
                    crate::exit::Code::Unreachable,
                    format!("{e} (at --dynamodb-endpoint {endpoint})"),
                )
            })?;
            reporter.local_table(table, &physical, endpoint, created);
            local_tables.insert(id.to_string(), physical);
        }
        Ok(local_tables)
    }
}

/// What a function's process needs that `local` decides once for all of them.
struct Runtime<'a> {
    spec: &'a crate::spec::Spec,
    region: &'a str,
    endpoints: Endpoints<'a>,
    credentials: &'a [(String, String)],
    local_tables: &'a HashMap<String, String>,
    dir: &'a Path,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
}

impl Runtime<'_> {
    /// Every routed function that was built, by logical id.
    fn functions(
        &self,
        served: &Served,
        built: &[(String, build::Built)],
    ) -> Result<HashMap<String, Arc<deployer_local::runtime::Function>>, Error> {
        let mut functions = HashMap::new();
        for def in &served.defs {
            let label = served.labels[&def.logical_id].clone();
            let Some((_, built)) = built.iter().find(|(f, _)| *f == label) else {
                continue;
            };
            let function = self.function(def, label, built)?;
            functions.insert(def.logical_id.clone(), Arc::new(function));
        }
        Ok(functions)
    }

    /// The routed function, its bootstrap taken out of its zip, ready to start on its first
    /// request.
    fn function(
        &self,
        def: &FunctionDef,
        label: String,
        built: &build::Built,
    ) -> Result<deployer_local::runtime::Function, Error> {
        let dir = self.dir.join(&label);
        let bootstrap = extract_bootstrap(&built.artifact.bytes, &dir)
            .map_err(|e| Error::usage(format!("function `{label}`: {e}")))?;
        let binary = std::fs::read(&bootstrap)
            .map_err(|e| Error::failed(format!("{}: {e}", bootstrap.display())))?;
        let wanted = self.spec.functions[&label].architecture;
        build::elf::check(&binary, wanted, &label)?;
        let arch = match wanted {
            Architecture::X86_64 => Arch::X86_64,
            Architecture::Arm64 => Arch::Aarch64,
        };
        let emulator = deployer_local::find_emulator(arch)
            .map_err(|e| Error::usage(format!("function `{label}`: {e}")))?;
        let env = function_env(
            def,
            self.local_tables,
            self.region,
            self.endpoints,
            self.credentials,
            &dir,
        )
        .map_err(Error::usage)?;
        let region = self.region;
        Ok(deployer_local::runtime::Function::new(
            label,
            def.name.clone(),
            format!(
                "arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{}",
                def.name
            ),
            Duration::from_secs(def.timeout),
            deployer_local::runtime::Launch {
                emulator,
                bootstrap,
                dir,
                env,
            },
            self.events.clone(),
        ))
    }
}

/// Runs `deployer local` until Ctrl-C.
pub fn local(
    loaded: &Loaded,
    choice: &BuildChoice,
    options: &Args,
    reporter: &Reporter,
) -> Result<(), Error> {
    let started = Instant::now();
    let spec = &loaded.spec;
    let stack = spec.stack_name();
    let served = Served::of(loaded)?;
    let endpoint = served.endpoint(options.dynamodb_endpoint.as_deref())?;
    let secrets_endpoint = options.secrets_endpoint.clone().or_else(|| {
        ["AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    });
    let region = spec
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let sources = crate::commands::artifact_sources(loaded, choice, &served.routed)?;

    let runtime = crate::commands::two_worker_runtime()?;
    runtime.block_on(async {
        let built = build::build_all(&sources, reporter).await?;
        let credentials = local_credentials();
        let local_tables = match &endpoint {
            Some(endpoint) => {
                served
                    .create_tables(&stack, &region, endpoint, &credentials, reporter)
                    .await?
            }
            None => HashMap::new(),
        };
        let temp =
            TempDir(std::env::temp_dir().join(format!("deployer-local-{}", std::process::id())));
        let (events, received) = tokio::sync::mpsc::unbounded_channel();
        let runtime = Runtime {
            spec,
            region: &region,
            endpoints: Endpoints {
                dynamodb: endpoint.as_deref(),
                secrets: secrets_endpoint.as_deref(),
            },
            credentials: &credentials,
            local_tables: &local_tables,
            dir: &temp.0,
            events: events.clone(),
        };
        let functions = runtime.functions(&served, &built)?;
        // Listening for Ctrl-C (and SIGTERM) from here on: one listener for the whole run, so a
        // signal that arrives while an event is being shown is not lost.
        let signals = (
            signal(SignalKind::interrupt())
                .map_err(|e| Error::failed(format!("cannot listen for Ctrl-C: {e}")))?,
            signal(SignalKind::terminate())
                .map_err(|e| Error::failed(format!("cannot listen for SIGTERM: {e}")))?,
        );
        let (listener, url) = bind(options.port).await?;
        reporter.local_ready(&stack, &url, route_lines(&served.routing, &served.labels));
        let app = Arc::new(deployer_local::server::App {
            routing: served.routing,
            functions,
            arn_prefix: format!("arn:aws:elasticloadbalancing:{region}:{LOCAL_ACCOUNT}"),
            events,
        });
        let requests = serve(listener, app, received, signals, reporter).await?;
        reporter.finish(&Stopped {
            status: LocalStatus::Stopped,
            stack: stack.clone(),
            requests,
            duration_s: Seconds(started.elapsed()),
        });
        drop(temp);
        Ok(())
    })
}

/// The loopback listener, and its URL.
async fn bind(port: u16) -> Result<(tokio::net::TcpListener, String), Error> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            Error::usage(format!(
                "cannot listen on 127.0.0.1:{port}: {e} (--port picks another; 0 takes any free one)"
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::failed(e.to_string()))?;
    Ok((listener, format!("http://{address}")))
}

/// Serves until Ctrl-C or SIGTERM, showing what happens; the requests answered.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<deployer_local::server::App>,
    mut received: tokio::sync::mpsc::UnboundedReceiver<Event>,
    signals: (Signal, Signal),
    reporter: &Reporter,
) -> Result<u64, Error> {
    let (mut interrupt, mut terminate) = signals;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(deployer_local::server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let mut requests = 0u64;
    let mut stop = Some(stop);
    loop {
        tokio::select! {
            event = received.recv() => match event {
                Some(event) => {
                    if matches!(event, Event::Request(_)) {
                        requests += 1;
                    }
                    reporter.local_event(event);
                }
                None => break,
            },
            _ = interrupt.recv(), if stop.is_some() => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            _ = terminate.recv(), if stop.is_some() => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            _ = &mut server => break,
        }
    }
    // The processes' last lines and exits.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Ok(event) = received.try_recv() {
        reporter.local_event(event);
    }
    Ok(requests)
}

/// An SDK configuration for the local endpoint.
async fn local_sdk_config(
    region: &str,
    endpoint: &str,
    credentials: &[(String, String)],
) -> aws_config::SdkConfig {
    let get = |k: &str| {
        credentials
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let credentials = aws_credential_types::Credentials::new(
        get("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        get("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        get("AWS_SESSION_TOKEN"),
        None,
        "deployer-local",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_gets_lambdas_variables_its_own_and_local_table_names_only() {
        let def = FunctionDef {
            logical_id: "ApiFunction".into(),
            name: "notes-dev-api".into(),
            architecture: "arm64".into(),
            memory: 256,
            timeout: 10,
            json_logs: true,
            environment: vec![
                ("RUST_LOG".into(), EnvValue::Literal("info".into())),
                ("TABLE_NOTES".into(), EnvValue::Ref("NotesTable".into())),
                // The spec may set what Lambda sets; the spec wins, as on Lambda for unreserved keys.
                ("TZ".into(), EnvValue::Literal("Europe/Paris".into())),
            ],
        };
        let tables = HashMap::from([("NotesTable".to_string(), "notes-dev-notes".to_string())]);
        let credentials = [
            ("AWS_ACCESS_KEY_ID".to_string(), "k".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "s".to_string()),
        ];
        let env: HashMap<String, String> = function_env(
            &def,
            &tables,
            "eu-west-1",
            Endpoints {
                dynamodb: Some("http://127.0.0.1:5000"),
                secrets: Some("http://127.0.0.1:5001"),
            },
            &credentials,
            Path::new("/tmp/api"),
        )
        .unwrap()
        .into_iter()
        .collect();
        for (key, value) in [
            ("TABLE_NOTES", "notes-dev-notes"),
            ("RUST_LOG", "info"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5001"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5001"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "notes-dev-api"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("LAMBDA_TASK_ROOT", "/tmp/api"),
            ("TZ", "Europe/Paris"),
        ] {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
        }
        assert!(
            !env.contains_key("HOME"),
            "nothing of deployer's own environment"
        );

        let missing = function_env(
            &def,
            &HashMap::new(),
            "r",
            Endpoints::default(),
            &[],
            Path::new("/"),
        )
        .unwrap_err();
        assert!(missing.contains("NotesTable"), "{missing}");
    }
}
