//! Finding and reading the spec file: the only file access before rendering.

use std::path::{Path, PathBuf};

use crate::exit::Error;
use crate::spec::{self, Spec};

/// Where specs live by default.
pub const STACKS_DIR: &str = "stacks";

/// A spec read from disk, with the path it came from.
pub struct Loaded {
    /// The validated spec, for its default env or `--env`.
    pub spec: Spec,
    /// The spec file.
    pub path: PathBuf,
}

impl Loaded {
    /// The directory relative paths in the spec are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// `-s SPEC`, or the only `*.yaml`/`*.yml` file in `stacks/`.
pub fn find_spec(given: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let dir = Path::new(STACKS_DIR);
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| Error::usage(format!("no spec given and no `{STACKS_DIR}/` directory here: pass -s FILE, or run `deployer init`")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::usage(format!(
            "no spec in `{STACKS_DIR}/`: pass -s FILE, or run `deployer init`"
        ))),
        _ => {
            let list: Vec<String> = found.iter().map(|p| format!("  {}", p.display())).collect();
            Err(Error::usage(format!(
                "several specs in `{STACKS_DIR}/`; pick one with -s:\n{}",
                list.join("\n")
            )))
        }
    }
}

/// Reads and validates the spec, switching it to `env` when given.
pub fn load(given: Option<&Path>, env: Option<&str>) -> Result<Loaded, Error> {
    let path = find_spec(given)?;
    let shown = path.display().to_string();
    let source =
        std::fs::read(&path).map_err(|e| Error::usage(format!("cannot read {shown}: {e}")))?;
    let source = String::from_utf8(source)
        .map_err(|_| Error::usage(format!("{shown}: the spec is not UTF-8 text")))?;
    let mut spec =
        spec::parse(&source, &shown).map_err(|errors| Error::usage(errors.to_string()))?;
    if let Some(env) = env {
        spec = spec
            .for_env(env)
            .map_err(|why| Error::usage(format!("{shown}: {why}")))?;
    }
    Ok(Loaded { spec, path })
}

impl Loaded {
    /// Renders the app template; a clash between `extra` and rendered ids is a spec error.
    pub fn render(
        &self,
        options: crate::render::Options,
    ) -> Result<crate::render::Template, Error> {
        crate::render::app(&self.spec, options).map_err(|diags| {
            let errors = spec::SpecErrors {
                file: self.path.display().to_string(),
                diags,
            };
            Error::usage(errors.to_string())
        })
    }
}

/// Reads the spec for the env named after the current git branch (`--env-from-branch`).
pub fn load_for_branch(given: Option<&Path>) -> Result<Loaded, Error> {
    let loaded = load(given, None)?;
    let git_branch = || {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--abbrev-ref", "HEAD"])
            .current_dir(loaded.base_dir())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let branch = crate::converge::ephemeral::branch_from_environment(git_branch).ok_or_else(|| {
        Error::usage("--env-from-branch: no branch found (not a git checkout, or a detached HEAD without CI variables)")
    })?;
    // Leave room for `<app>-<env>-<function>` within Lambda's 64 characters.
    let longest_function = loaded
        .spec
        .functions
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0);
    let room = 64usize.saturating_sub(loaded.spec.app.len() + longest_function + 2);
    let env = crate::converge::ephemeral::env_from_branch(&branch, room.min(32));
    let spec = loaded.spec.for_env(&env).map_err(|why| {
        Error::usage(format!(
            "{}: env `{env}` from branch `{branch}`: {why}",
            loaded.path.display()
        ))
    })?;
    Ok(Loaded { spec, ..loaded })
}
