//! `deployer schema`: the JSON Schema of the stack spec, for editors.

use crate::exit::Error;

use super::args::write_output;

/// `deployer schema`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  deployer schema > deployer.schema.json\n  # then, first line of a spec:\n  # yaml-language-server: $schema=./deployer.schema.json"
)]
pub struct Args {}

impl Args {
    /// Runs `schema`.
    pub fn run(self) -> Result<(), Error> {
        write_output(None, &crate::spec::schema())
    }
}
