//! The flags several verbs share (`-s/--env`, `--json/-q/-v`, the artifact choices, the
//! permission check) and what they decide before any AWS call.

use std::path::PathBuf;

use clap::Args;

use crate::build::{self, Source};
use crate::exit::Error;
use crate::spec::BuildMethod;
use crate::workspace::{self, Loaded};

/// Output shape shared by the verbs that talk to AWS.
#[derive(Debug, Args)]
pub struct Output {
    /// One JSON object per event on stdout, then a summary object (no colour, no prompts)
    #[arg(long)]
    pub json: bool,
    /// Print only the result
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
    /// Also show each AWS call (service, operation, outcome, time) and every line of the build
    /// tools' output on stderr
    #[arg(short, long)]
    pub verbose: bool,
}

impl Output {
    /// The reporter these flags ask for.
    pub fn reporter(&self) -> crate::ui::Reporter {
        let format = if self.json {
            crate::ui::Format::Json
        } else {
            crate::ui::Format::Human { quiet: self.quiet }
        };
        crate::ui::Reporter::new(format).verbose(self.verbose)
    }
}

/// Where cost estimates take their prices from.
#[derive(Debug, Args)]
pub struct PricesArg {
    /// `table`: the committed price table (US East only); `live`: the Price List Query API
    /// (pricing:GetProducts, any region), cached for a week
    #[arg(long, value_enum, default_value = "table", value_name = "SOURCE")]
    pub prices: crate::cost::prices::Source,
}

/// The permission pre-flight.
#[derive(Debug, Args)]
pub struct Preflight {
    /// Do not ask IAM (iam:SimulatePrincipalPolicy) whether the caller may create what the
    /// template holds. The check runs before the change set, against the resources and condition
    /// keys of the real calls; an assumed role (SSO, OIDC in CI) is checked as its role (its path
    /// read with iam:GetRole); what it cannot confirm is a warning. Session policies, permission
    /// boundaries of the session and SCPs are not seen by the simulation: skip it when one of
    /// those decides
    #[arg(long)]
    pub skip_permission_check: bool,
}

/// Where function artifacts come from.
#[derive(Debug, Args)]
pub struct Artifacts {
    /// Use a prebuilt zip for a function (repeatable): FN=path/to/artifact.zip
    #[arg(long = "artifact", value_name = "FN=ZIP", value_parser = parse_artifact)]
    artifacts: Vec<(String, PathBuf)>,
    /// Build every function this way instead of its spec's `build.method`
    /// [docker: the multistage Dockerfile; cargo-lambda: `cargo lambda build` on this machine;
    /// zip: the spec's prebuilt `build.path`]
    #[arg(long, value_name = "METHOD", value_parser = parse_build_method)]
    build_method: Option<crate::spec::BuildMethod>,
    /// Docker: rebuild every layer, dependencies included
    #[arg(long)]
    no_cache: bool,
    /// Docker: the builder stage's base image, over the spec's `build.builder_image`
    /// [default: rust:1-bookworm]
    #[arg(long, value_name = "IMAGE", env = "DEPLOYER_BUILDER_IMAGE")]
    builder_image: Option<String>,
}

impl Artifacts {
    /// The choices, for [`artifact_sources`].
    pub fn choice(&self) -> BuildChoice {
        BuildChoice {
            artifacts: self.artifacts.clone(),
            method: self.build_method,
            no_cache: self.no_cache,
            builder_image: self.builder_image.clone().filter(|i| !i.is_empty()),
        }
    }
}

fn parse_build_method(s: &str) -> Result<crate::spec::BuildMethod, String> {
    use crate::spec::BuildMethod;
    match s {
        "docker" => Ok(BuildMethod::Docker),
        "cargo-lambda" => Ok(BuildMethod::CargoLambda),
        "zip" => Ok(BuildMethod::Zip),
        _ => Err("expected docker, cargo-lambda or zip".into()),
    }
}

fn parse_artifact(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((f, p)) if !f.is_empty() && !p.is_empty() => Ok((f.to_string(), PathBuf::from(p))),
        _ => Err("expected FN=path/to/artifact.zip".into()),
    }
}

/// Which spec, and which environment of it.
#[derive(Debug, Args)]
pub struct Target {
    /// The stack spec [default: the only *.yaml in stacks/]
    #[arg(short, long, value_name = "SPEC")]
    spec: Option<PathBuf>,
    /// Environment (stack `<app>-<env>`) [default: the spec's `env`]
    #[arg(short, long, env = "DEPLOYER_ENV")]
    env: Option<String>,
    /// Derive the environment from the git branch (CI variables first, then `git`)
    #[arg(long, conflicts_with = "env")]
    env_from_branch: bool,
}

impl Target {
    /// The spec, for the env asked for.
    pub fn load(&self) -> Result<workspace::Loaded, Error> {
        if self.env_from_branch {
            workspace::load_for_branch(self.spec.as_deref())
        } else {
            workspace::load(self.spec.as_deref(), self.env.as_deref())
        }
    }
}

/// A `--ttl`-style duration: `90s`, `30m`, `48h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    crate::converge::ephemeral::parse_duration(s)
}

/// How `up`, `plan` and `build` get artifacts: command-line choices over the spec's `build`.
#[derive(Debug, Clone, Default)]
pub struct BuildChoice {
    /// `--artifact FN=ZIP`: a prebuilt zip for a function, whatever its build method.
    pub artifacts: Vec<(String, PathBuf)>,
    /// `--build-method`: every function's method, over the spec's.
    pub method: Option<BuildMethod>,
    /// `--no-cache`: Docker rebuilds every layer.
    pub no_cache: bool,
    /// `--builder-image` (or `DEPLOYER_BUILDER_IMAGE`): over the spec's `build.builder_image`.
    pub builder_image: Option<String>,
}

/// Where each function's artifact comes from: `--artifact` first, then `--build-method`, then
/// the spec's `build` (default docker). Decided before any network call or build, so a missing
/// zip or an unknown function is a usage error (exit 2).
pub fn artifact_sources(
    loaded: &Loaded,
    choice: &BuildChoice,
    only: &[String],
) -> Result<Vec<(String, Source)>, Error> {
    let spec = &loaded.spec;
    let known = || {
        spec.functions
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (function, _) in &choice.artifacts {
        if !spec.functions.contains_key(function) {
            return Err(Error::usage(format!(
                "--artifact names function `{function}`, which the spec does not have (functions: {})",
                known()
            )));
        }
    }
    for function in only {
        if !spec.functions.contains_key(function) {
            return Err(Error::usage(format!(
                "--fn names function `{function}`, which the spec does not have (functions: {})",
                known()
            )));
        }
    }
    let mut sources = Vec::new();
    for (name, function) in &spec.functions {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        if let Some((_, path)) = choice.artifacts.iter().rev().find(|(f, _)| f == name) {
            sources.push((name.clone(), Source::Zip(path.clone())));
            continue;
        }
        let build = function.build.clone().unwrap_or_default();
        let method = choice.method.unwrap_or(build.method);
        let project = build::Project {
            dir: loaded.base_dir().join(&function.path),
            binary: function.binary.clone(),
            architecture: function.architecture,
        };
        let source = match method {
            BuildMethod::Zip => match build.path {
                Some(path) => Source::Zip(loaded.base_dir().join(path)),
                None => {
                    return Err(Error::usage(format!(
                        "function `{name}` builds with `zip` but names no zip: pass --artifact {name}=path/to/bootstrap.zip, \
                         or set `build: {{ method: zip, path: ... }}` in the spec"
                    )));
                }
            },
            BuildMethod::Docker => Source::Docker {
                project,
                dockerfile: build.dockerfile.map(|d| loaded.base_dir().join(d)),
                builder_image: choice.builder_image.clone().or(build.builder_image),
                no_cache: choice.no_cache,
            },
            BuildMethod::CargoLambda => Source::CargoLambda { project },
        };
        sources.push((name.clone(), source));
    }
    Ok(sources)
}
/// Writes `text` to `path`, or to stdout (a closed pipe is not an error).
pub fn write_output(path: Option<PathBuf>, text: &str) -> Result<(), Error> {
    match path {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| Error::failed(format!("cannot write {}", path.display())).caused_by(e)),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Code;

    fn loaded() -> Loaded {
        let source = "app: a\nfunctions:\n  api:\n    path: svc\n    binary: api-bin\n    \
                      architecture: x86_64\n  worker:\n    path: work\n    \
                      build: { method: zip, path: dist/worker.zip }\n  cron:\n    path: cron\n    \
                      build: { method: cargo-lambda }\n  pinned:\n    path: pinned\n    \
                      build: { builder_image: my/rust:1 }\n";
        Loaded {
            spec: crate::spec::parse(source, "stacks/a.yaml").unwrap(),
            path: PathBuf::from("stacks/a.yaml"),
        }
    }

    fn sources(choice: &BuildChoice, only: &[&str]) -> Vec<(String, Source)> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        artifact_sources(&loaded(), choice, &only).unwrap()
    }

    #[test]
    fn each_function_gets_its_specs_method_with_paths_from_the_spec_file() {
        let all = sources(&BuildChoice::default(), &[]);
        let methods: Vec<String> = all
            .iter()
            .map(|(f, s)| format!("{f}: {}", s.method()))
            .collect();
        assert_eq!(
            methods,
            [
                "api: docker",
                "worker: zip",
                "cron: cargo-lambda",
                "pinned: docker"
            ]
        );
        let Source::Docker {
            project,
            builder_image,
            no_cache,
            dockerfile,
        } = &all[0].1
        else {
            panic!("{:?}", all[0]);
        };
        assert_eq!(project.dir, PathBuf::from("stacks/svc"));
        assert_eq!(project.binary.as_deref(), Some("api-bin"));
        assert_eq!(project.architecture, crate::spec::Architecture::X86_64);
        assert_eq!(
            (builder_image, no_cache, dockerfile),
            (&None, &false, &None)
        );
        assert_eq!(
            all[1].1,
            Source::Zip(PathBuf::from("stacks/dist/worker.zip"))
        );
        let Source::Docker { builder_image, .. } = &all[3].1 else {
            panic!()
        };
        assert_eq!(builder_image.as_deref(), Some("my/rust:1"));
    }

    #[test]
    fn artifact_beats_build_method_which_beats_the_spec() {
        let choice = BuildChoice {
            artifacts: vec![("cron".into(), "c.zip".into())],
            method: Some(BuildMethod::CargoLambda),
            no_cache: false,
            builder_image: None,
        };
        let all = sources(&choice, &["api", "cron"]);
        assert_eq!(all.len(), 2, "--fn keeps only the named functions");
        assert_eq!(all[0].1.method().to_string(), "cargo-lambda");
        assert_eq!(all[1].1, Source::Zip(PathBuf::from("c.zip")));
    }

    #[test]
    fn the_command_lines_builder_image_and_no_cache_reach_docker_builds() {
        let choice = BuildChoice {
            no_cache: true,
            builder_image: Some("local/builder:1".into()),
            ..BuildChoice::default()
        };
        for (function, source) in sources(&choice, &["api", "pinned"]) {
            let Source::Docker {
                builder_image,
                no_cache,
                ..
            } = source
            else {
                panic!()
            };
            assert_eq!(
                builder_image.as_deref(),
                Some("local/builder:1"),
                "{function}"
            );
            assert!(no_cache);
        }
    }

    #[test]
    fn unknown_functions_and_zip_without_a_path_are_usage_errors() {
        let unknown = |choice: &BuildChoice, only: &[String]| {
            artifact_sources(&loaded(), choice, only).unwrap_err()
        };
        let err = unknown(&BuildChoice::default(), &["apj".into()]);
        assert_eq!(err.code, Code::Usage);
        assert!(err.message.contains("--fn names function `apj`"), "{err}");
        assert!(
            err.message
                .contains("(functions: api, worker, cron, pinned)"),
            "{err}"
        );
        let choice = BuildChoice {
            artifacts: vec![("nope".into(), "n.zip".into())],
            ..BuildChoice::default()
        };
        assert!(
            unknown(&choice, &[])
                .message
                .contains("--artifact names function `nope`")
        );
        let choice = BuildChoice {
            method: Some(BuildMethod::Zip),
            ..BuildChoice::default()
        };
        let err = unknown(&choice, &[]);
        assert!(
            err.message
                .contains("function `api` builds with `zip` but names no zip"),
            "{err}"
        );
    }
}
