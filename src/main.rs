use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deployer::cli::Cli::parse();
    match cli.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "{} {error}",
                console::style("error:").red().bold().for_stderr()
            );
            std::process::ExitCode::from(error.code as u8)
        }
    }
}
