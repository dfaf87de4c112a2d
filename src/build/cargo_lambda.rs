//! Build method `cargo-lambda`: `cargo lambda build` on the host. It cross-compiles with zig, so
//! arm64 builds on an x86_64 machine (and the other way round) without Docker.

use std::process::Command;

use super::cargo::{Package, Workspace, cargo_program};
use super::process;
use crate::exit::Error;
use crate::spec::Architecture;

/// The `cargo lambda build` arguments for one binary.
pub fn args(package: &Package, binary: &str, architecture: Architecture) -> Vec<String> {
    let arch = match architecture {
        Architecture::X86_64 => "--x86-64",
        Architecture::Arm64 => "--arm64",
    };
    vec![
        "lambda".into(),
        "build".into(),
        "--release".into(),
        arch.into(),
        "--manifest-path".into(),
        package.manifest.display().to_string(),
        "--bin".into(),
        binary.into(),
    ]
}

/// Builds `binary` and returns the `bootstrap` bytes cargo-lambda left in target/lambda.
pub fn build(
    workspace: &Workspace,
    package: &Package,
    binary: &str,
    architecture: Architecture,
    on_line: &mut dyn FnMut(&str),
) -> Result<Vec<u8>, Error> {
    let installed = Command::new(cargo_program())
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        return Err(Error::usage(
            "cannot build with cargo-lambda: `cargo lambda` is not installed. Install it with \
             `pip install cargo-lambda` (it brings zig; pin ziglang==0.17.1) or see \
             https://www.cargo-lambda.info, or use `--build-method docker`",
        ));
    }
    let mut command = Command::new(cargo_program());
    command.args(args(package, binary, architecture));
    let finished = process::run(&mut command, on_line)?;
    if !finished.success {
        return Err(Error::failed(format!(
            "cargo lambda build of `{binary}` failed; its last lines:\n{}",
            finished.tail.join("\n")
        )));
    }
    let bootstrap = workspace
        .target_dir
        .join("lambda")
        .join(binary)
        .join("bootstrap");
    std::fs::read(&bootstrap).map_err(|e| {
        Error::failed(format!(
            "cargo lambda build succeeded but {} cannot be read: {e}",
            bootstrap.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_picks_the_cross_target() {
        let package = Package {
            name: "notes".into(),
            manifest: "/w/notes/Cargo.toml".into(),
            targets: Vec::new(),
        };
        let args = args(&package, "notes-api", Architecture::Arm64);
        assert_eq!(
            args,
            [
                "lambda",
                "build",
                "--release",
                "--arm64",
                "--manifest-path",
                "/w/notes/Cargo.toml",
                "--bin",
                "notes-api"
            ]
        );
        assert!(super::args(&package, "x", Architecture::X86_64).contains(&"--x86-64".into()));
    }
}
