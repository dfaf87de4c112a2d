//! Command-line parsing and dispatch. Each verb's work lives in its pipeline module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::{self, Error};
use crate::render;
use crate::workspace;

/// `render --format`: the template formats, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateFormat {
    /// YAML, the way people read templates.
    Yaml,
    /// JSON, the way CloudFormation stores them.
    Json,
}

impl From<TemplateFormat> for render::Format {
    fn from(format: TemplateFormat) -> Self {
        match format {
            TemplateFormat::Yaml => render::Format::Yaml,
            TemplateFormat::Json => render::Format::Json,
        }
    }
}

/// Output shape shared by the verbs that talk to AWS.
#[derive(Debug, Args)]
struct Output {
    /// One JSON object per event on stdout, then a summary object (no colour, no prompts)
    #[arg(long)]
    json: bool,
    /// Print only the result
    #[arg(short, long, conflicts_with = "json")]
    quiet: bool,
    /// Also show each AWS call (service, operation, outcome, time) and every line of the build
    /// tools' output on stderr
    #[arg(short, long)]
    verbose: bool,
}

impl Output {
    fn reporter(&self) -> crate::ui::Reporter {
        let format = if self.json {
            crate::ui::Format::Json
        } else {
            crate::ui::Format::Human { quiet: self.quiet }
        };
        crate::ui::Reporter::new(format).verbose(self.verbose)
    }
}

/// The permission pre-flight.
#[derive(Debug, Args)]
struct Preflight {
    /// Do not ask IAM (iam:SimulatePrincipalPolicy) whether the caller may create what the
    /// template holds. The check runs before the change set, against the resources and condition
    /// keys of the real calls; an assumed role (SSO, OIDC in CI) is checked as its role (its path
    /// read with iam:GetRole); what it cannot confirm is a warning. Session policies, permission
    /// boundaries of the session and SCPs are not seen by the simulation: skip it when one of
    /// those decides
    #[arg(long)]
    skip_permission_check: bool,
}

/// Where function artifacts come from.
#[derive(Debug, Args)]
struct Artifacts {
    /// Use a prebuilt zip for a function (repeatable): FN=path/to/artifact.zip
    #[arg(long = "artifact", value_name = "FN=ZIP", value_parser = parse_artifact)]
    artifacts: Vec<(String, PathBuf)>,
    /// Build every function this way instead of its spec's `build.method`
    /// [docker: the multistage Dockerfile; cargo-lambda: `cargo lambda build` on this machine;
    /// zip: the spec's prebuilt `build.path`]
    #[arg(long, value_name = "METHOD", value_parser = parse_build_method)]
    build_method: Option<crate::spec::BuildMethod>,
    /// Docker: rebuild every layer, dependencies included
    #[arg(long)]
    no_cache: bool,
    /// Docker: the builder stage's base image, over the spec's `build.builder_image`
    /// [default: rust:1-bookworm]
    #[arg(long, value_name = "IMAGE", env = "DEPLOYER_BUILDER_IMAGE")]
    builder_image: Option<String>,
}

impl Artifacts {
    fn choice(&self) -> crate::commands::BuildChoice {
        crate::commands::BuildChoice {
            artifacts: self.artifacts.clone(),
            method: self.build_method,
            no_cache: self.no_cache,
            builder_image: self.builder_image.clone().filter(|i| !i.is_empty()),
        }
    }
}

fn parse_build_method(s: &str) -> Result<crate::spec::BuildMethod, String> {
    use crate::spec::BuildMethod;
    match s {
        "docker" => Ok(BuildMethod::Docker),
        "cargo-lambda" => Ok(BuildMethod::CargoLambda),
        "zip" => Ok(BuildMethod::Zip),
        _ => Err("expected docker, cargo-lambda or zip".into()),
    }
}

fn parse_artifact(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((f, p)) if !f.is_empty() && !p.is_empty() => Ok((f.to_string(), PathBuf::from(p))),
        _ => Err("expected FN=path/to/artifact.zip".into()),
    }
}

/// Put a Rust service on AWS Lambda behind an Application Load Balancer, with DynamoDB tables and
/// least-privilege IAM, from one small YAML spec.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, after_help = exit::HELP, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which spec, and which environment of it.
#[derive(Debug, Args)]
struct Target {
    /// The stack spec [default: the only *.yaml in stacks/]
    #[arg(short, long, value_name = "SPEC")]
    spec: Option<PathBuf>,
    /// Environment (stack `<app>-<env>`) [default: the spec's `env`]
    #[arg(short, long, env = "DEPLOYER_ENV")]
    env: Option<String>,
    /// Derive the environment from the git branch (CI variables first, then `git`)
    #[arg(long, conflicts_with = "env")]
    env_from_branch: bool,
}

impl Target {
    fn load(&self) -> Result<workspace::Loaded, Error> {
        if self.env_from_branch {
            workspace::load_for_branch(self.spec.as_deref())
        } else {
            workspace::load(self.spec.as_deref(), self.env.as_deref())
        }
    }
}

fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    crate::converge::ephemeral::parse_duration(s)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a spec and report every problem as FILE:LINE:COL (no AWS calls)
    #[command(after_help = "Example:\n  deployer validate -s stacks/example.yaml")]
    Validate {
        #[command(flatten)]
        target: Target,
    },
    /// Print the CloudFormation template a spec renders to
    #[command(
        after_help = "Examples:\n  deployer render -s stacks/example.yaml\n  deployer render --env pr-42 --ephemeral --format json -o template.json\n  deployer render --bootstrap"
    )]
    Render {
        #[command(flatten)]
        target: Target,
        /// Output format
        #[arg(long, value_enum, default_value = "yaml")]
        format: TemplateFormat,
        /// Write to FILE instead of standard output
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Render for an ephemeral environment: tables are deleted with the stack
        #[arg(long)]
        ephemeral: bool,
        /// Render the per-region bootstrap stack (artifact bucket, shared VPC) instead
        #[arg(long, conflicts_with_all = ["ephemeral"])]
        bootstrap: bool,
    },
    /// Build each function's deployment zip and print its sha256, size and path (no AWS calls)
    #[command(
        after_help = "Examples:\n  deployer build\n  deployer build --fn api --build-method cargo-lambda --json\n\nMethods (per function `build.method`, or --build-method for all):\n  docker        the multistage Dockerfile (templates/Dockerfile; `build.dockerfile` to\n                replace it), run offline from vendored crates; needs a Docker daemon\n                (DOCKER_HOST is honoured); --builder-image sets the builder image.\n  cargo-lambda  `cargo lambda build --release` on this machine (zig cross-compiles)\n  zip           a prebuilt zip (`build.path`, or --artifact FN=ZIP)\n\nThe zip is reproducible: the same binary gives the same sha256, so `up` skips the\nupload and the update. It is written to <target>/lambda/<binary>/bootstrap.zip."
    )]
    Build {
        #[command(flatten)]
        target: Target,
        /// Build only this function (repeatable)
        #[arg(long = "fn", value_name = "NAME")]
        functions: Vec<String>,
        #[command(flatten)]
        artifacts: Artifacts,
        #[command(flatten)]
        output: Output,
    },
    /// Create or update the stack so it matches the spec (bootstrap, build, upload, change set, execute)
    #[command(
        after_help = "Examples:\n  deployer up --yes\n  deployer up -s stacks/example.yaml --env pr-42 --artifact api=target/api.zip --yes --json\n  deployer up --env staging --yes --adopt-retained   # after a down: bring its tables back\n\nRuns with nothing but AWS credentials: the first `up` in a region creates the\ndeployer-bootstrap stack (artifact bucket, shared VPC) without asking. An unchanged\nspec and artifact is detected without creating a change set and exits 0."
    )]
    Up {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        artifacts: Artifacts,
        /// Make the env ephemeral: tables are deleted with it, and `deployer gc` deletes it once
        /// this long has passed since the last `up` (e.g. 48h, 7d)
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<std::time::Duration>,
        /// Apply without asking (required when not on a terminal, e.g. in CI)
        #[arg(short, long)]
        yes: bool,
        /// Go ahead even if tables, buckets or log groups would be deleted or replaced (exit 4 otherwise)
        #[arg(long)]
        allow_data_loss: bool,
        /// When function code is all that changed, update the functions directly (seconds)
        /// instead of through CloudFormation; the next full `up` puts the template's code back.
        /// Refused for protected envs. The spec's `hotswap: true` makes it the default
        #[arg(long, overrides_with = "no_hotswap")]
        hotswap: bool,
        /// Deploy through CloudFormation even where the spec says `hotswap: true`
        #[arg(long, overrides_with = "hotswap")]
        no_hotswap: bool,
        /// Fail when the service cannot be reached for verification (by default an internal or
        /// restricted load balancer is reported in one line)
        #[arg(long, overrides_with = "no_verify")]
        verify: bool,
        /// Do not send the verification request (`verify:` in the spec, default `GET /`)
        #[arg(long, overrides_with = "verify")]
        no_verify: bool,
        /// CloudFormation's express mode: each operation ends once the resources are configured,
        /// without waiting for them to stabilize, and without rollback. Default for ephemeral
        /// envs (`--ttl`, `--env-from-branch`) and where the spec says `deploy: { express: true }`;
        /// refused for a protected env unless its spec says so
        #[arg(long, overrides_with = "no_express")]
        express: bool,
        /// Standard mode even where express mode is the default
        #[arg(long, overrides_with = "express")]
        no_express: bool,
        /// When the env's earlier stack retained tables (its `down` keeps their data): import
        /// them into the new stack, data and all (a CloudFormation resource import)
        #[arg(long, conflicts_with = "fresh_tables")]
        adopt_retained: bool,
        /// When the env's earlier stack retained tables: create new, empty tables and leave
        /// those as they are (`deployer ls --retained` lists them)
        #[arg(long)]
        fresh_tables: bool,
        #[command(flatten)]
        preflight: Preflight,
        #[command(flatten)]
        output: Output,
    },
    /// Show what `up` would change, without changing anything (exit 10 when changes are pending)
    #[command(
        after_help = "plan builds the artifacts locally and writes nothing: its only calls that are not reads are\nCreateChangeSet and DeleteChangeSet (a new stack's resources are listed from the template).\n\nExample:\n  deployer plan --env staging || [ $? -eq 10 ] && echo \"changes pending\""
    )]
    Plan {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        artifacts: Artifacts,
        /// Plan for an ephemeral env (see `up --ttl`)
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<std::time::Duration>,
        /// Upload a template over CloudFormation's 51,200-byte inline limit to the artifact
        /// bucket so it can be previewed (the one write plan may make; `up` uploads the same
        /// object)
        #[arg(long)]
        upload_template: bool,
        #[command(flatten)]
        preflight: Preflight,
        #[command(flatten)]
        output: Output,
    },
    /// Delete the stack and wait until it is gone (retained tables are listed, never lost)
    #[command(after_help = "Example:\n  deployer down --env pr-42 --yes")]
    Down {
        #[command(flatten)]
        target: Target,
        /// Delete without asking (required when not on a terminal)
        #[arg(short, long)]
        yes: bool,
        /// Delete in CloudFormation's express mode, without waiting for each resource to be gone
        /// (the default for an ephemeral env)
        #[arg(long, overrides_with = "no_express")]
        express: bool,
        /// Delete in standard mode even for an ephemeral env
        #[arg(long, overrides_with = "express")]
        no_express: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Show the stack's status (with --watch, follow a running operation until it settles)
    #[command(
        after_help = "Examples:\n  deployer status --env dev\n  deployer status --watch --env pr-42   # resume watching after Ctrl-C"
    )]
    Status {
        #[command(flatten)]
        target: Target,
        /// Follow the running operation's events until it settles
        #[arg(short, long)]
        watch: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Print the stack's outputs (Url first)
    #[command(after_help = "Example:\n  curl \"$(deployer outputs --json | jq -r .Url)/health\"")]
    Outputs {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        output: Output,
    },
    /// Delete expired ephemeral stacks (tagged deployer:ephemeral=true), four at a time
    #[command(
        after_help = "Examples:\n  deployer gc --dry-run\n  deployer gc --app notes --yes --json        # nightly in CI\n  deployer gc --older-than 7d --yes\n\nNever touches a stack without deployer:ephemeral=true, nor one that is\ntermination-protected or has an operation running."
    )]
    Gc {
        /// Only this app's stacks
        #[arg(long)]
        app: Option<String>,
        /// List what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Delete ephemeral stacks last deployed longer ago than this, whatever their expiry
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        older_than: Option<std::time::Duration>,
        /// Delete without asking (required when not on a terminal)
        #[arg(short, long)]
        yes: bool,
        /// Region [default: the SDK's region chain]
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the stacks deployer manages, with env, status, last update and expiry
    #[command(
        after_help = "Examples:\n  deployer ls --app notes\n  deployer ls --retained --app notes   # tables kept after down, and what they cost"
    )]
    Ls {
        /// Only this app's stacks
        #[arg(long)]
        app: Option<String>,
        /// Instead: the tables deployer made whose env has no stack any more (kept by
        /// `down`, with their data), their size and what storing them costs a month
        #[arg(long)]
        retained: bool,
        /// Region [default: the SDK's region chain]
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Create or update the per-region deployer-bootstrap stack (`up` does this by itself)
    #[command(after_help = "Example:\n  AWS_REGION=eu-west-1 deployer bootstrap")]
    Bootstrap {
        /// Region [default: the SDK's region chain]
        #[arg(long)]
        region: Option<String>,
        /// Create or update it in CloudFormation's express mode (no stabilization wait)
        #[arg(long)]
        express: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Print a function's CloudWatch logs (and keep following them with --follow)
    #[command(
        after_help = "Examples:\n  deployer logs --since 1h\n  deployer logs --fn api --follow --env pr-42"
    )]
    Logs {
        #[command(flatten)]
        target: Target,
        /// The function [default: the only one]
        #[arg(long = "fn", value_name = "NAME")]
        function: Option<String>,
        /// Keep printing new events until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// How far back to start
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_ttl)]
        since: std::time::Duration,
        #[command(flatten)]
        output: Output,
    },
    /// Create a deployable service: a Rust Lambda crate, its stack spec, a .gitignore
    #[command(
        after_help = "Examples:\n  deployer init my-service && cd my-service && deployer validate\n  deployer init . --name notes\n\nWrites service/Cargo.toml, service/src/main.rs, stacks/<name>.yaml and .gitignore;\nrefuses to overwrite any of them."
    )]
    Init {
        /// Where to create it
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// App name [default: from the directory's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  deployer completions bash > ~/.local/share/bash-completion/completions/deployer\n  deployer completions zsh > \"${fpath[1]}/_deployer\"\n  deployer completions fish > ~/.config/fish/completions/deployer.fish"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Serve the functions on a loopback port the way the load balancer will (no AWS account)
    #[command(
        after_help = "Examples:\n  deployer local --build-method cargo-lambda --dynamodb-endpoint http://127.0.0.1:5000\n  deployer local --artifact api=target/api.zip --port 0 --json\n\nThe listener rules come from the rendered template and are evaluated in priority\norder (paths, methods, hosts; then the default route or the fixed 404). Each routed\nfunction's `bootstrap` starts on its first request (the cold start is shown) behind\na Lambda Runtime API, with the environment it gets on Lambda: `TABLE_*` name tables\ncreated from the spec at --dynamodb-endpoint (moto, DynamoDB Local), kept with their\ndata between runs. An arm64 bootstrap on an x86_64 machine runs under qemu-user\n(Debian: qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross).\nOne request at a time per function.\nFunction logs stream to stderr, prefixed by function. Ctrl-C stops everything."
    )]
    Local {
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
        #[command(flatten)]
        output: Output,
    },
    /// Work with a deployed table's data
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Print the JSON Schema of the stack spec, for editor completion
    #[command(
        after_help = "Example:\n  deployer schema > deployer.schema.json\n  # then, first line of a spec:\n  # yaml-language-server: $schema=./deployer.schema.json"
    )]
    Schema,
}

/// `table` verbs.
#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Write rows from a file or a SQL query into a deployed table: batches of 25, many in
    /// flight, an adaptive rate, resumable, every rejected row reported
    #[command(after_help = IMPORT_HELP)]
    Import {
        /// The table, by its name in the spec (deployer finds the deployed table)
        table: String,
        #[command(flatten)]
        target: Target,
        /// The source: a file (.csv, .jsonl, .json — DynamoDB's export lines are recognised —
        /// each maybe .gz), `-` for standard input, or a postgres://, mysql:// or mariadb:// URL
        #[arg(long, value_name = "SOURCE")]
        from: String,
        /// The rows to import from a database: a SELECT
        #[arg(long, value_name = "SQL")]
        query: Option<String>,
        /// The file format, when the name does not say (and for `-`)
        #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
        format: Option<deployer_import::source::Format>,
        /// Build a key attribute from columns (repeatable): pk='USER#{id}'; `{{`/`}}` are braces.
        /// Without one, a key attribute comes from the column of its name
        #[arg(long = "key", value_name = "ATTR=TEMPLATE", value_parser = parse_key)]
        keys: Vec<deployer_import::mapping::KeyTemplate>,
        /// A column whose text is JSON, written as a map or list (repeatable): a CSV cell, or a
        /// MariaDB JSON column (text on the wire; PostgreSQL's json/jsonb need nothing)
        #[arg(long = "json-column", value_name = "COLUMN")]
        json_columns: Vec<String>,
        /// A query's order, for resuming: columns that identify a row [default: the columns the
        /// key is made of]
        #[arg(long, value_name = "COLUMN", value_delimiter = ',')]
        order_by: Vec<String>,
        /// Rejected rows tolerated before the import stops (0: stop at the first)
        #[arg(long, value_name = "N", default_value_t = 0)]
        max_errors: u64,
        /// Write units a second at most (a provisioned table's capacity caps it anyway)
        #[arg(long, value_name = "WCU")]
        max_wcu: Option<f64>,
        /// Requests in flight at once
        #[arg(long, value_name = "N", default_value_t = 16)]
        concurrency: usize,
        /// Continue an interrupted import from its checkpoint
        #[arg(long, conflicts_with = "restart")]
        resume: bool,
        /// Drop an interrupted import's checkpoint and start from the first row
        #[arg(long)]
        restart: bool,
        /// The checkpoint file [default: .deployer/imports/<stack>.<table>.checkpoint.json]
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The rejected rows, one JSON line each [default: .deployer/imports/<stack>.<table>.rejects.jsonl]
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// Import into a protected env without asking
        #[arg(short, long)]
        yes: bool,
        /// At the end, read items back (BatchGetItem) and compare them with the source: N chosen
        /// at random (default 100), or `all` (the source is read again)
        #[arg(long, value_name = "N|all", num_args = 0..=1, default_missing_value = "100", value_parser = parse_verify)]
        verify: Option<crate::import::Verify>,
        #[command(flatten)]
        output: Output,
    },
}

fn parse_verify(s: &str) -> Result<crate::import::Verify, String> {
    match s {
        "all" => Ok(crate::import::Verify::All),
        n => n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(crate::import::Verify::Sample)
            .ok_or_else(|| "expected a number of items, or all".to_string()),
    }
}

const IMPORT_HELP: &str = "Examples:
  deployer table import notes --from notes.csv
  deployer table import notes --from export.json.gz --env staging --max-wcu 2000
  deployer table import notes --from \"$LEGACY_DB\" --query 'SELECT * FROM notes' \\
    --key pk='NOTE#{id}' --key sk='{created_at}' --verify
  (LEGACY_DB=mysql://app:secret@db.internal/app, or postgres://...)

Mapping: columns become attributes by name. CSV cells are strings (as in DynamoDB's own
CSV import), key cells take the key's type, empty cells are left out. JSON lines keep
their types (numbers exactly, objects as maps, arrays as lists). SQL types map to S, N,
B, BOOL, NULL; JSON columns to M and L; times to ISO 8601 strings.

A row that cannot be an item is reported with its row and line and written to the
rejects file; --max-errors says how many to tolerate. Two rows with one key: reported,
and the later one is what the table keeps.

Ctrl-C (or a crash) leaves a checkpoint: the same command with --resume continues after
the last row written (a few items may be written twice: a put is idempotent).";

fn parse_format(s: &str) -> Result<deployer_import::source::Format, String> {
    use deployer_import::source::Format;
    match s {
        "csv" => Ok(Format::Csv),
        "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
        "dynamodb-json" | "dynamodb" => Ok(Format::DynamoDbJson),
        _ => Err("expected csv, jsonl or dynamodb-json".into()),
    }
}

fn parse_key(s: &str) -> Result<deployer_import::mapping::KeyTemplate, String> {
    deployer_import::mapping::KeyTemplate::parse(s)
}

impl Cli {
    /// Runs the parsed command.
    pub fn run(self) -> Result<(), Error> {
        match self.command {
            Command::Up {
                target,
                artifacts,
                ttl,
                yes,
                allow_data_loss,
                hotswap,
                no_hotswap,
                verify,
                no_verify,
                express,
                no_express,
                adopt_retained,
                fresh_tables,
                preflight,
                output,
            } => {
                let mode = crate::converge::engine::Mode::Apply {
                    yes,
                    allow_data_loss,
                };
                let flag = |on: bool, off: bool| match (on, off) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                let options = crate::commands::UpOptions {
                    hotswap: flag(hotswap, no_hotswap),
                    verify: flag(verify, no_verify),
                    upload_template: false,
                    express: flag(express, no_express),
                    retained: match (adopt_retained, fresh_tables) {
                        (true, _) => crate::converge::retained::RetainedChoice::Adopt,
                        (_, true) => crate::converge::retained::RetainedChoice::Fresh,
                        _ => crate::converge::retained::RetainedChoice::Ask,
                    },
                };
                crate::commands::up(
                    &target.load()?,
                    &artifacts.choice(),
                    ttl,
                    mode,
                    !preflight.skip_permission_check,
                    options,
                    &output.reporter(),
                )
            }
            Command::Plan {
                target,
                artifacts,
                ttl,
                upload_template,
                preflight,
                output,
            } => {
                let mode = crate::converge::engine::Mode::Plan;
                crate::commands::up(
                    &target.load()?,
                    &artifacts.choice(),
                    ttl,
                    mode,
                    !preflight.skip_permission_check,
                    crate::commands::UpOptions {
                        upload_template,
                        ..Default::default()
                    },
                    &output.reporter(),
                )
            }
            Command::Build {
                target,
                functions,
                artifacts,
                output,
            } => crate::commands::build(
                &target.load()?,
                &artifacts.choice(),
                &functions,
                &output.reporter(),
            ),
            Command::Down {
                target,
                yes,
                express,
                no_express,
                output,
            } => crate::commands::down(
                &target.load()?,
                yes,
                match (express, no_express) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                &output.reporter(),
            ),
            Command::Status {
                target,
                watch,
                output,
            } => crate::commands::status(&target.load()?, watch, &output.reporter()),
            Command::Outputs { target, output } => {
                crate::commands::outputs(&target.load()?, &output.reporter())
            }
            Command::Gc {
                app,
                dry_run,
                older_than,
                yes,
                region,
                output,
            } => crate::commands::gc(
                region.as_deref(),
                app.as_deref(),
                older_than,
                dry_run,
                yes,
                &output.reporter(),
            ),
            Command::Ls {
                app,
                retained,
                region,
                output,
            } => crate::commands::ls(
                region.as_deref(),
                app.as_deref(),
                retained,
                &output.reporter(),
            ),
            Command::Bootstrap {
                region,
                express,
                output,
            } => crate::commands::bootstrap(region.as_deref(), express, &output.reporter()),
            Command::Validate { target } => {
                let loaded = target.load()?;
                loaded.render(render::Options::default())?;
                crate::ui::note(format!(
                    "{}: ok (stack {})",
                    loaded.path.display(),
                    loaded.spec.stack_name()
                ));
                Ok(())
            }
            Command::Render {
                target,
                format,
                output,
                ephemeral,
                bootstrap,
            } => {
                let template = if bootstrap {
                    render::bootstrap::template()
                } else {
                    target.load()?.render(render::Options { ephemeral })?
                };
                write_output(output, &template.to_string(format.into()))
            }
            Command::Schema => write_output(None, &crate::spec::schema()),
            Command::Local {
                target,
                artifacts,
                port,
                dynamodb_endpoint,
                output,
            } => crate::local::local(
                &target.load()?,
                &artifacts.choice(),
                &crate::local::LocalOptions {
                    port,
                    dynamodb_endpoint,
                },
                &output.reporter(),
            ),
            Command::Table {
                command:
                    TableCommand::Import {
                        table,
                        target,
                        from,
                        query,
                        format,
                        keys,
                        json_columns,
                        order_by,
                        max_errors,
                        max_wcu,
                        concurrency,
                        resume,
                        restart,
                        checkpoint,
                        rejects,
                        yes,
                        verify,
                        output,
                    },
            } => crate::import::table_import(
                &target.load()?,
                crate::import::ImportOptions {
                    table,
                    from,
                    query,
                    format,
                    keys,
                    json_columns,
                    order_by,
                    max_errors,
                    max_wcu,
                    concurrency,
                    resume,
                    restart,
                    checkpoint,
                    rejects,
                    yes,
                    verify,
                },
                &output.reporter(),
            ),
            Command::Logs {
                target,
                function,
                follow,
                since,
                output,
            } => crate::commands::logs(
                &target.load()?,
                function.as_deref(),
                since,
                follow,
                &output.reporter(),
            ),
            Command::Init { dir, name } => {
                let files = crate::init::init(&dir, name.as_deref())?;
                for file in &files {
                    crate::ui::note(format!("created {}", file.display()));
                }
                crate::ui::note(format!(
                    "next: cd {} && deployer validate && deployer up   (up builds the service first)",
                    dir.display()
                ));
                Ok(())
            }
            Command::Completions { shell } => {
                use clap::CommandFactory;
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "deployer", &mut script);
                write_output(None, &String::from_utf8_lossy(&script))
            }
        }
    }
}

fn write_output(path: Option<PathBuf>, text: &str) -> Result<(), Error> {
    match path {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display()))),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
