//! `deployer completions`: a completion script for bash, zsh, fish, elvish or PowerShell.

use crate::exit::Error;

use super::args::write_output;

/// `deployer completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer completions bash > ~/.local/share/bash-completion/completions/deployer\n  deployer completions zsh > \"${fpath[1]}/_deployer\"\n  deployer completions fish > ~/.config/fish/completions/deployer.fish"
)]
pub struct Args {
    /// The shell
    shell: clap_complete::Shell,
}

impl Args {
    /// Runs `completions`.
    pub fn run(self) -> Result<(), Error> {
        use clap::CommandFactory;
        let mut script = Vec::new();
        let mut command = crate::cli::Cli::command();
        clap_complete::generate(self.shell, &mut command, "deployer", &mut script);
        write_output(None, &String::from_utf8_lossy(&script))
    }
}
