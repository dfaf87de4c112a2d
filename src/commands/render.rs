//! `deployer render`: the CloudFormation template a spec renders to (or the bootstrap stack's).

use std::path::PathBuf;

use crate::exit::Error;
use crate::render;

use super::args::{Target, write_output};

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

/// `deployer render`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer render -s stacks/example.yaml\n  deployer render --env pr-42 --ephemeral --format json -o template.json\n  deployer render --bootstrap"
)]
pub struct Args {
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
}

impl Args {
    /// Runs `render`.
    pub fn run(self) -> Result<(), Error> {
        let template = if self.bootstrap {
            render::bootstrap::template()
        } else {
            let options = render::Options {
                ephemeral: self.ephemeral,
            };
            self.target.load()?.render(options)?
        };
        write_output(self.output, &template.to_string(self.format.into()))
    }
}
