//! Command-line parsing and dispatch. Each verb's work lives in its pipeline module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::{self, Error};
use crate::render::{self, Format};
use crate::workspace;

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
        format: Format,
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
    /// Print the JSON Schema of the stack spec, for editor completion
    #[command(
        after_help = "Example:\n  deployer schema > deployer.schema.json\n  # then, first line of a spec:\n  # yaml-language-server: $schema=./deployer.schema.json"
    )]
    Schema,
}

impl Cli {
    /// Runs the parsed command.
    pub fn run(self) -> Result<(), Error> {
        match self.command {
            Command::Validate { target } => {
                let loaded = workspace::load(target.spec.as_deref(), target.env.as_deref())?;
                loaded.render(render::Options::default())?;
                eprintln!(
                    "{}: ok (stack {})",
                    loaded.path.display(),
                    loaded.spec.stack_name()
                );
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
                    let loaded = workspace::load(target.spec.as_deref(), target.env.as_deref())?;
                    loaded.render(render::Options { ephemeral })?
                };
                write_output(output, &template.to_string(format))
            }
            Command::Schema => write_output(None, &crate::spec::schema()),
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
