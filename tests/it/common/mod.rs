//! Helpers shared by the integration tests.

pub mod databases;
pub mod local;
pub mod moto;
pub mod proxy;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every spec that must render: `stacks/*.yaml` and `tests/specs/*.yaml`, sorted.
pub fn good_specs() -> Vec<PathBuf> {
    let mut specs = Vec::new();
    for dir in ["stacks", "tests/specs"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                specs.push(path);
            }
        }
    }
    specs.sort();
    assert!(
        specs.len() >= 6,
        "expected the example and at least 5 test specs, found {specs:?}"
    );
    specs
}

/// Parses a spec file, panicking with the spec errors.
pub fn load(path: &Path) -> deployer::spec::Spec {
    let source = std::fs::read_to_string(path).unwrap();
    deployer::spec::parse(&source, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// A tool installed by `scripts/test` into the project venv (`.venv/bin`), or on PATH.
/// Panics with what to run when it is missing: a missing oracle is a failure, never a skip.
pub fn python_tool(name: &str) -> PathBuf {
    let venv =
        std::env::var_os("DEPLOYER_VENV").map_or_else(|| root().join(".venv"), PathBuf::from);
    let in_venv = venv.join("bin").join(name);
    if in_venv.is_file() {
        return in_venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed (looked in {} and on PATH): run `scripts/test`, which installs it into .venv",
            in_venv.display()
        )
    })
}

/// A temporary project: `stacks/example.yaml` and, for each `(file, marker)`, a deployment zip
/// whose `bootstrap` mentions `marker` (different markers give different sha256 keys).
pub fn project_with(zips: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    std::fs::copy(
        root().join("stacks/example.yaml"),
        dir.path().join("stacks/example.yaml"),
    )
    .unwrap();
    for (file, marker) in zips {
        let zip = deployer::build::zip_bootstrap(format!("#!/bin/sh\n# {marker}\n").as_bytes());
        std::fs::write(dir.path().join(file), zip).unwrap();
    }
    dir
}

/// A dependency-free service crate in `dir/hello` (package `hello`, binary `hello-api`, its own
/// workspace and lockfile) that prints its CPU architecture: quick to build by any method.
pub fn hello_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("hello/src")).unwrap();
    std::fs::write(
        dir.join("hello/Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n\
         [[bin]]\nname = \"hello-api\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hello/Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"hello\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hello/src/main.rs"),
        "fn main() {\n    println!(\"hello from {}\", std::env::consts::ARCH);\n}\n",
    )
    .unwrap();
}

/// Every line of a `--json` run's stdout, each checked against the README's table of records:
/// every record deployer writes in the tests is held to the documented interface.
pub fn records(stdout: &str) -> Vec<serde_json::Value> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = deployer::ui::record::readme_table(&readme);
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if let Err(why) = deployer::ui::record::check(&table, &value) {
                panic!("{why}: {line}");
            }
            value
        })
        .collect()
}

/// The last record of a `--json` run, which must be its summary.
pub fn summary(stdout: &str) -> serde_json::Value {
    let last = records(stdout).pop().expect("no JSON output");
    assert_eq!(last["type"], "summary", "{stdout}");
    last
}
