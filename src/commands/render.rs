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
    after_help = "Examples:\n  deployer render -s stacks/example.yaml\n  deployer render --env pr-42 --ephemeral --format json -o template.json\n  deployer render --bootstrap\n  deployer render --env pr-42 --ephemeral --shared-slot 3   # attached to the shared load balancer\n  deployer render --shared-alb                               # the shared load balancer's stack"
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
    /// Render the env attached to the app's shared load balancer through this slot (its
    /// listener rules take priorities `N*1000+1..=(N+1)*1000`; without `alb.preview_domain`
    /// it listens on port 8000+N) rather than with a load balancer of its own
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..50))]
    shared_slot: Option<u32>,
    /// Render the per-region bootstrap stack (artifact bucket, shared VPC) instead
    #[arg(long, conflicts_with_all = ["ephemeral", "shared_slot", "shared_alb"])]
    bootstrap: bool,
    /// Render the app's shared load balancer stack (`<app>-shared-alb`) instead
    #[arg(long, conflicts_with_all = ["ephemeral", "shared_slot"])]
    shared_alb: bool,
}

impl Args {
    /// Runs `render`.
    pub fn run(self) -> Result<(), Error> {
        let template = if self.bootstrap {
            render::bootstrap::template()
        } else if self.shared_alb {
            let loaded = self.target.load()?;
            if loaded.spec.alb.is_none() {
                return Err(Error::usage(
                    "the spec has no `alb` section: there is no load balancer to share",
                ));
            }
            render::shared::template(&loaded.spec, 1)
        } else {
            let options = render::Options {
                ephemeral: self.ephemeral,
                shared_slot: self.shared_slot,
            };
            self.target.load()?.render(options)?
        };
        write_output(self.output, &template.to_string(self.format.into()))
    }
}
