//! One file per verb: each owns its `clap::Args` struct, its result type and a `run`. This file
//! only lists the verbs and dispatches to them; what several verbs share is in `args.rs` (the
//! flags) and `session.rs` (runtime, AWS session, Ctrl-C).

pub mod args;
pub mod bootstrap;
pub mod build;
pub mod completions;
pub mod down;
pub mod gc;
pub mod init;
pub mod local;
pub mod logs;
pub mod ls;
pub mod outputs;
pub mod plan;
pub mod render;
pub mod schema;
pub mod secret;
pub mod session;
pub mod status;
pub mod table_import;
pub mod up;
pub mod validate;
pub mod verification;

pub use args::{BuildChoice, artifact_sources};
pub use session::{now, two_worker_runtime};

use clap::Subcommand;

use crate::exit::Error;

/// The verbs, in the order `--help` lists them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec and report every problem as FILE:LINE:COL (no AWS calls)
    Validate(validate::Args),
    /// Print the CloudFormation template a spec renders to
    Render(render::Args),
    /// Build each function's deployment zip and print its sha256, size and path (no AWS calls)
    Build(build::Args),
    /// Create or update the stack so it matches the spec (bootstrap, build, upload, change set, execute)
    Up(up::Args),
    /// Show what `up` would change, without changing anything (exit 10 when changes are pending)
    Plan(plan::Args),
    /// Delete the stack and wait until it is gone (retained tables are listed, never lost)
    Down(down::Args),
    /// Show the stack's status (with --watch, follow a running operation until it settles)
    Status(status::Args),
    /// Print the stack's outputs (Url first)
    Outputs(outputs::Args),
    /// Delete expired ephemeral stacks (tagged deployer:ephemeral=true), four at a time
    Gc(gc::Args),
    /// List the stacks deployer manages, with env, status, last update and expiry
    Ls(ls::Args),
    /// Create or update the per-region deployer-bootstrap stack (`up` does this by itself)
    Bootstrap(bootstrap::Args),
    /// Print a function's CloudWatch logs (and keep following them with --follow)
    Logs(logs::Args),
    /// Create a deployable service: a Rust Lambda crate, its stack spec, a .gitignore
    Init(init::Args),
    /// Print a shell completion script
    Completions(completions::Args),
    /// Serve the functions on a loopback port the way the load balancer will (no AWS account)
    Local(local::Args),
    /// Work with a deployed table's data
    Table {
        /// The `table` verb.
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Print the JSON Schema of the stack spec, for editor completion
    Schema(schema::Args),
    /// Set and list the secrets functions read (SSM Parameter Store, Secrets Manager); values
    /// are never arguments and never printed
    Secret {
        /// The `secret` verb.
        #[command(subcommand)]
        command: secret::Command,
    },
}

/// `table` verbs.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Write rows from a file or a SQL query into a deployed table: batches of 25, many in
    /// flight, an adaptive rate, resumable, every rejected row reported
    Import(table_import::Args),
}

impl Command {
    /// Runs the verb.
    pub fn run(self) -> Result<(), Error> {
        match self {
            Command::Validate(args) => args.run(),
            Command::Render(args) => args.run(),
            Command::Build(args) => args.run(),
            Command::Up(args) => args.run(),
            Command::Plan(args) => args.run(),
            Command::Down(args) => args.run(),
            Command::Status(args) => args.run(),
            Command::Outputs(args) => args.run(),
            Command::Gc(args) => args.run(),
            Command::Ls(args) => args.run(),
            Command::Bootstrap(args) => args.run(),
            Command::Logs(args) => args.run(),
            Command::Init(args) => args.run(),
            Command::Completions(args) => args.run(),
            Command::Local(args) => args.run(),
            Command::Table {
                command: TableCommand::Import(args),
            } => args.run(),
            Command::Schema(args) => args.run(),
            Command::Secret { command } => command.run(),
        }
    }
}
