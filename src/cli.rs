//! Command-line parsing: the top-level parser. The verbs, their flags and their work are in
//! `commands/<verb>.rs`.

use clap::Parser;

use crate::commands::Command;
use crate::exit::{self, Error};

/// Put a Rust service on AWS Lambda behind an Application Load Balancer, with DynamoDB tables and
/// least-privilege IAM, from one small YAML spec.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, after_help = exit::HELP, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Runs the parsed command.
    pub fn run(self) -> Result<(), Error> {
        self.command.run()
    }
}
