//! `deployer validate`: the spec checked, every problem as FILE:LINE:COL. No AWS calls.

use crate::exit::Error;
use crate::render;

use super::args::Target;

/// `deployer validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deployer validate -s stacks/example.yaml")]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

impl Args {
    /// Runs `validate`: it renders too, since the stack limits are checked on the template.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        loaded.render(render::Options::default())?;
        crate::ui::note(format!(
            "{}: ok (stack {})",
            loaded.path.display(),
            loaded.spec.stack_name()
        ));
        Ok(())
    }
}
