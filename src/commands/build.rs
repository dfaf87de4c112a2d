//! `deployer build`: every function's deployment zip (or those named by `--fn`), with its sha256
//! and size. No AWS calls.

use serde::Serialize;

use crate::exit::Error;
use crate::ui::record::Built;
use crate::ui::{Human, Outcome, human_size};

use super::args::{Artifacts, Output, Target};
use super::session::runtime;

/// `deployer build`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer build\n  deployer build --fn api --build-method cargo-lambda --json\n\nMethods (per function `build.method`, or --build-method for all):\n  docker        the multistage Dockerfile (templates/Dockerfile; `build.dockerfile` to\n                replace it), run offline from vendored crates; needs a Docker daemon\n                (DOCKER_HOST is honoured); --builder-image sets the builder image.\n  cargo-lambda  `cargo lambda build --release` on this machine (zig cross-compiles)\n  zip           a prebuilt zip (`build.path`, or --artifact FN=ZIP)\n\nThe zip is reproducible: the same binary gives the same sha256, so `up` skips the\nupload and the update. It is written to <target>/lambda/<binary>/bootstrap.zip."
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Build only this function (repeatable)
    #[arg(long = "fn", value_name = "NAME")]
    functions: Vec<String>,
    #[command(flatten)]
    artifacts: Artifacts,
    #[command(flatten)]
    output: Output,
}

/// What `build` made: the `summary` record (command `build`); for people, one line per function
/// on stdout (`FN  SHA256  SIZE  PATH`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuiltAll {
    /// One per function.
    pub artifacts: Vec<Built>,
}

impl Outcome for BuiltAll {
    fn command(&self) -> &'static str {
        "build"
    }

    fn human(&self) -> Human {
        Human {
            stdout: self
                .artifacts
                .iter()
                .map(|b| {
                    format!(
                        "{}  {}  {}  {}",
                        b.function,
                        b.sha256,
                        human_size(b.size),
                        b.path
                    )
                })
                .collect(),
            ..Human::default()
        }
    }
}

impl Args {
    /// Runs `build`.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        let sources = super::artifact_sources(&loaded, &self.artifacts.choice(), &self.functions)?;
        let built = runtime()?.block_on(crate::build::build_all(&sources, &reporter))?;
        reporter.finish(&BuiltAll {
            artifacts: built
                .iter()
                .map(|(function, b)| Built::of(function, b))
                .collect(),
        });
        Ok(())
    }
}
