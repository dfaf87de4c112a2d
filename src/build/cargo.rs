//! What cargo says about a function's project: its workspace, the package that holds the
//! binary, and every target (the Docker skeleton stubs them all).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::exit::Error;

/// A cargo workspace, as `cargo metadata --no-deps` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Workspace {
    /// The directory holding the workspace's root `Cargo.toml` (and `Cargo.lock`).
    #[serde(rename = "workspace_root")]
    pub root: PathBuf,
    /// Where cargo writes build output.
    #[serde(rename = "target_directory")]
    pub target_dir: PathBuf,
    /// The workspace's own packages.
    pub packages: Vec<Package>,
}

/// One package of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// Its `Cargo.toml`.
    #[serde(rename = "manifest_path")]
    pub manifest: PathBuf,
    /// Its targets (lib, bins, tests, build script...).
    pub targets: Vec<Target>,
}

/// One cargo target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Target {
    /// The target name (a binary's file name).
    pub name: String,
    /// `lib`, `bin`, `test`, `custom-build`, `proc-macro`...
    pub kind: Vec<String>,
    /// Its root source file.
    pub src_path: PathBuf,
}

/// The cargo program: `$CARGO` when deployer runs under cargo, else `cargo` on PATH.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Asks cargo about the project in `dir` (no network, no dependency resolution).
pub fn workspace(dir: &Path) -> Result<Workspace, Error> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::usage(format!(
            "{} has no Cargo.toml: a function's `path` must be its cargo project",
            dir.display()
        )));
    }
    metadata(&manifest, &["--no-deps"])
}

/// `cargo metadata` of `manifest` with `args`, parsed.
fn metadata<T: serde::de::DeserializeOwned>(manifest: &Path, args: &[&str]) -> Result<T, Error> {
    let output = Command::new(cargo_program())
        .args(["metadata", "--format-version", "1"])
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .map_err(|e| Error::usage(format!("cannot run cargo (needed to build functions): {e}")))?;
    if !output.status.success() {
        return Err(Error::usage(format!(
            "cargo cannot read {}:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::failed(format!("cannot read `cargo metadata` output: {e}")))
}

/// Every package a build of the workspace at `root` can compile for `triple` (including build
/// scripts and proc macros), as `name-version`: how `cargo vendor --versioned-dirs` names its
/// directories. Resolves dependencies from Cargo.lock, which must be current.
pub fn packages_for_platform(root: &Path, triple: &str) -> Result<BTreeSet<String>, Error> {
    #[derive(Deserialize)]
    struct Resolved {
        packages: Vec<Versioned>,
    }
    #[derive(Deserialize)]
    struct Versioned {
        name: String,
        version: String,
    }
    let resolved: Resolved = metadata(
        &root.join("Cargo.toml"),
        &["--locked", "--filter-platform", triple],
    )?;
    Ok(resolved
        .packages
        .into_iter()
        .map(|p| format!("{}-{}", p.name, p.version))
        .collect())
}

impl Workspace {
    /// The package with a binary target named `binary`, or the package of `dir` when no binary
    /// is named (its single binary).
    pub fn binary(&self, dir: &Path, binary: Option<&str>) -> Result<(&Package, String), Error> {
        let is_bin = |t: &&Target| t.kind.iter().any(|k| k == "bin");
        if let Some(binary) = binary {
            let found = self
                .packages
                .iter()
                .find(|p| p.targets.iter().filter(is_bin).any(|t| t.name == binary));
            return match found {
                Some(package) => Ok((package, binary.to_string())),
                None => Err(Error::usage(format!(
                    "the cargo workspace at {} has no binary `{binary}` (binaries: {})",
                    self.root.display(),
                    self.binaries().join(", ")
                ))),
            };
        }
        let manifest = dir.join("Cargo.toml");
        let package = self
            .packages
            .iter()
            .find(|p| same_file(&p.manifest, &manifest))
            .ok_or_else(|| {
                Error::usage(format!(
                    "{} is a virtual workspace manifest: name the function's `binary` (binaries: {})",
                    manifest.display(),
                    self.binaries().join(", ")
                ))
            })?;
        let bins: Vec<&Target> = package.targets.iter().filter(is_bin).collect();
        match bins.as_slice() {
            [only] => Ok((package, only.name.clone())),
            [] => Err(Error::usage(format!(
                "package `{}` has no binary target: a Lambda function needs a `main`",
                package.name
            ))),
            _ => Err(Error::usage(format!(
                "package `{}` has several binaries ({}): name one with the function's `binary`",
                package.name,
                bins.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn binaries(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .packages
            .iter()
            .flat_map(|p| &p.targets)
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .map(|t| t.name.clone())
            .collect();
        if names.is_empty() {
            names.push("none".into());
        }
        names
    }

    /// The stub source files of the dependency skeleton, relative to the workspace root: every
    /// target's root file with just enough in it to compile, so building the skeleton compiles
    /// the dependencies and nothing of the workspace's own code.
    pub fn skeleton_stubs(&self) -> Vec<(PathBuf, &'static str)> {
        let mut stubs: Vec<(PathBuf, &'static str)> = Vec::new();
        for target in self.packages.iter().flat_map(|p| &p.targets) {
            let Ok(relative) = target.src_path.strip_prefix(&self.root) else {
                continue;
            };
            let is_lib = target.kind.iter().any(|k| {
                matches!(
                    k.as_str(),
                    "lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro"
                )
            });
            let stub = if is_lib { "" } else { "fn main() {}\n" };
            if !stubs.iter().any(|(path, _)| path == relative) {
                stubs.push((relative.to_path_buf(), stub));
            }
        }
        stubs
    }

    /// The manifests the skeleton copies verbatim, relative to the workspace root: the root
    /// `Cargo.toml` and `Cargo.lock`, and every package's `Cargo.toml`.
    pub fn skeleton_manifests(&self) -> Vec<PathBuf> {
        let mut files = vec![PathBuf::from("Cargo.toml"), PathBuf::from("Cargo.lock")];
        for package in &self.packages {
            if let Ok(relative) = package.manifest.strip_prefix(&self.root)
                && !files.iter().any(|f| f == relative)
            {
                files.push(relative.to_path_buf());
            }
        }
        files
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, kind: &str, src: &str) -> Target {
        Target {
            name: name.into(),
            kind: vec![kind.into()],
            src_path: PathBuf::from(src),
        }
    }

    fn workspace() -> Workspace {
        Workspace {
            root: "/w".into(),
            target_dir: "/w/target".into(),
            packages: vec![
                Package {
                    name: "api".into(),
                    manifest: "/w/api/Cargo.toml".into(),
                    targets: vec![
                        target("api", "lib", "/w/api/src/lib.rs"),
                        target("api-server", "bin", "/w/api/src/main.rs"),
                        target("worker", "bin", "/w/api/src/bin/worker.rs"),
                        target("build-script-build", "custom-build", "/w/api/build.rs"),
                        target("smoke", "test", "/w/api/tests/smoke.rs"),
                    ],
                },
                Package {
                    name: "macros".into(),
                    manifest: "/w/macros/Cargo.toml".into(),
                    targets: vec![target("macros", "proc-macro", "/w/macros/src/lib.rs")],
                },
            ],
        }
    }

    #[test]
    fn every_target_gets_a_stub_that_compiles_to_nothing() {
        let stubs = workspace().skeleton_stubs();
        let stub = |p: &str| {
            stubs
                .iter()
                .find(|(path, _)| path == Path::new(p))
                .map(|(_, s)| *s)
        };
        assert_eq!(stub("api/src/lib.rs"), Some(""));
        assert_eq!(stub("macros/src/lib.rs"), Some(""));
        assert_eq!(stub("api/src/main.rs"), Some("fn main() {}\n"));
        assert_eq!(stub("api/src/bin/worker.rs"), Some("fn main() {}\n"));
        assert_eq!(stub("api/build.rs"), Some("fn main() {}\n"));
        assert_eq!(stub("api/tests/smoke.rs"), Some("fn main() {}\n"));
        assert_eq!(stubs.len(), 6);
    }

    #[test]
    fn the_skeleton_keeps_every_manifest_and_the_lockfile() {
        assert_eq!(
            workspace().skeleton_manifests(),
            [
                "Cargo.toml",
                "Cargo.lock",
                "api/Cargo.toml",
                "macros/Cargo.toml"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_named_binary_is_found_in_any_package_and_a_wrong_name_lists_the_real_ones() {
        let ws = workspace();
        let (package, binary) = ws.binary(Path::new("/w/api"), Some("worker")).unwrap();
        assert_eq!((package.name.as_str(), binary.as_str()), ("api", "worker"));
        let err = ws.binary(Path::new("/w/api"), Some("wroker")).unwrap_err();
        assert!(
            err.message
                .contains("no binary `wroker` (binaries: api-server, worker)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn without_a_name_the_package_must_have_exactly_one_binary() {
        let ws = workspace();
        // /w/api does not exist on disk, so the manifest paths compare as written.
        let err = ws.binary(Path::new("/w/api"), None).unwrap_err();
        assert!(
            err.message
                .contains("several binaries (api-server, worker)"),
            "{}",
            err.message
        );
        let err = ws.binary(Path::new("/w/macros"), None).unwrap_err();
        assert!(
            err.message.contains("has no binary target"),
            "{}",
            err.message
        );
        let err = ws.binary(Path::new("/w"), None).unwrap_err();
        assert!(err.message.contains("virtual workspace"), "{}", err.message);
    }
}
