use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deployer::cli::Cli::parse();
    match cli.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // `plan` with changes pending ends with exit 10 and nothing more to say.
            if !error.message.is_empty() {
                eprintln!(
                    "{} {error}",
                    console::style("error:").red().bold().for_stderr()
                );
            }
            std::process::ExitCode::from(error.code as u8)
        }
    }
}
