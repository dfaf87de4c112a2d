//! The `deployer` command: parses the arguments and reports the error of a failed command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deployer::cli::Cli::parse();
    match cli.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if let Some(line) = error.report() {
                deployer::ui::note(line);
            }
            std::process::ExitCode::from(error.code as u8)
        }
    }
}
