//! One function per verb that talks to AWS: connect, run the engine, report the result.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::aws::Aws;
use crate::build::{self, Artifact, Source};
use crate::converge::engine::{Engine, Mode, Outcome, Teardown};
use crate::converge::{self, cloud::Cloud};
use crate::exit::{Code, Error};
use crate::render;
use crate::spec::BuildMethod;
use crate::ui::{Reporter, Summary};
use crate::workspace::Loaded;

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// Where each function's artifact comes from: `--artifact` first, then the spec's `build`.
/// Decided before any network call, so a missing artifact is a usage error (exit 2).
pub fn artifact_sources(
    loaded: &Loaded,
    overrides: &[(String, PathBuf)],
) -> Result<Vec<(String, Source)>, Error> {
    let spec = &loaded.spec;
    for (function, _) in overrides {
        if !spec.functions.contains_key(function) {
            let known: Vec<&str> = spec.functions.keys().map(String::as_str).collect();
            return Err(Error::usage(format!(
                "--artifact names function `{function}`, which the spec does not have (functions: {})",
                known.join(", ")
            )));
        }
    }
    let mut sources = Vec::new();
    for (name, function) in &spec.functions {
        if let Some((_, path)) = overrides.iter().rev().find(|(f, _)| f == name) {
            sources.push((name.clone(), Source::Zip(path.clone())));
            continue;
        }
        let build = function.build.clone().unwrap_or(crate::spec::Build {
            method: BuildMethod::Docker,
            path: None,
            dockerfile: None,
        });
        match (build.method, build.path) {
            (BuildMethod::Zip, Some(path)) => {
                sources.push((name.clone(), Source::Zip(loaded.base_dir().join(path))))
            }
            (method, _) => {
                let method = match method {
                    BuildMethod::Docker => "docker (the default build method)",
                    BuildMethod::CargoLambda => "cargo-lambda",
                    BuildMethod::Zip => "zip",
                };
                return Err(Error::usage(format!(
                    "function `{name}` builds with {method}, which this version of deployer does not run yet: \
                     pass --artifact {name}=path/to/artifact.zip, or set `build: {{ method: zip, path: ... }}` in the spec"
                )));
            }
        }
    }
    Ok(sources)
}

async fn connect(region: Option<&str>) -> Result<Aws, Error> {
    let aws = Aws::connect(region).await?;
    aws.identity().await?;
    Ok(aws)
}

/// `up` and `plan`.
pub fn up(
    loaded: &Loaded,
    overrides: &[(String, PathBuf)],
    mode: Mode,
    reporter: &Reporter,
) -> Result<(), Error> {
    let started = Instant::now();
    let spec = &loaded.spec;
    let template = loaded.render(render::Options::default())?;
    let sources = artifact_sources(loaded, overrides)?;
    runtime()?.block_on(async {
        let aws = connect(spec.region.as_deref()).await?;
        let cloud = aws.cloud();
        let engine = Engine::new(&cloud, reporter);
        let artifacts = async {
            sources
                .iter()
                .map(|(function, source)| build::build(source).map(|a| (function.clone(), a)))
                .collect::<Result<Vec<(String, Artifact)>, Error>>()
        };
        let outcome = converge::up(&engine, &cloud, spec, &template, artifacts, mode).await?;
        let (status, changed, outputs, changes) = match &outcome {
            Outcome::NoChanges { stack } => {
                let outputs = converge::stack_outputs(&cloud, stack).await;
                ("no changes".to_string(), false, outputs, Vec::new())
            }
            Outcome::Planned { changes } => (
                "changes pending".to_string(),
                true,
                Vec::new(),
                changes.clone(),
            ),
            Outcome::Applied { stack, changes } => {
                let outputs = converge::stack_outputs(&cloud, stack).await;
                (
                    stack.status.as_str().to_string(),
                    true,
                    outputs,
                    changes.clone(),
                )
            }
        };
        reporter.finish(&Summary {
            stack: spec.stack_name(),
            env: spec.env.clone(),
            status,
            changed,
            outputs,
            changes,
            elapsed: started.elapsed(),
        });
        match outcome {
            Outcome::Planned { .. } => Err(Error::new(Code::Changes, "")),
            _ => Ok(()),
        }
    })
}

/// `down`.
pub fn down(loaded: &Loaded, yes: bool, reporter: &Reporter) -> Result<(), Error> {
    let started = Instant::now();
    let spec = &loaded.spec;
    let name = spec.stack_name();
    runtime()?.block_on(async {
        let aws = connect(spec.region.as_deref()).await?;
        let cloud = aws.cloud();
        let engine = Engine::new(&cloud, reporter);
        match engine.teardown(&name, spec.is_protected(), yes).await? {
            Teardown::NothingToDelete => {
                reporter.done(
                    &name,
                    "absent",
                    "nothing to delete",
                    started.elapsed(),
                    json!({}),
                );
            }
            Teardown::Deleted { retained_tables } => {
                let message = if retained_tables.is_empty() {
                    "deleted".to_string()
                } else {
                    format!(
                        "deleted; these tables are retained and keep their data: {}",
                        retained_tables.join(", ")
                    )
                };
                reporter.done(
                    &name,
                    "DELETE_COMPLETE",
                    &message,
                    started.elapsed(),
                    json!({ "retained_tables": retained_tables }),
                );
            }
        }
        Ok(())
    })
}

/// `status`.
pub fn status(loaded: &Loaded, reporter: &Reporter) -> Result<(), Error> {
    let name = loaded.spec.stack_name();
    runtime()?.block_on(async {
        let aws = connect(loaded.spec.region.as_deref()).await?;
        let stack = aws
            .cloud()
            .stack(&name)
            .await
            .map_err(|e| Error::failed(format!("cannot describe {name}: {e}")))?;
        reporter.status(stack.as_ref(), &name);
        Ok(())
    })
}

/// `outputs`.
pub fn outputs(loaded: &Loaded, reporter: &Reporter) -> Result<(), Error> {
    let name = loaded.spec.stack_name();
    runtime()?.block_on(async {
        let aws = connect(loaded.spec.region.as_deref()).await?;
        let cloud = aws.cloud();
        let stack = cloud
            .stack(&name)
            .await
            .map_err(|e| Error::failed(format!("cannot describe {name}: {e}")))?
            .ok_or_else(|| {
                Error::failed(format!("{name} does not exist: run `deployer up` first"))
            })?;
        reporter.outputs(&converge::stack_outputs(&cloud, &stack).await);
        Ok(())
    })
}

/// `bootstrap`.
pub fn bootstrap(region: Option<&str>, reporter: &Reporter) -> Result<(), Error> {
    let started = Instant::now();
    runtime()?.block_on(async {
        let aws = connect(region).await?;
        let cloud = aws.cloud();
        let engine = Engine::new(&cloud, reporter);
        let boot = converge::ensure_bootstrap(&engine, &cloud).await?;
        reporter.done(
            render::bootstrap::STACK_NAME,
            "ready",
            &format!("ready in {}: bucket {}, VPC {}", aws.region(), boot.bucket, boot.vpc_id),
            started.elapsed(),
            json!({ "bucket": boot.bucket, "vpc_id": boot.vpc_id, "subnet_ids": boot.subnet_ids, "region": aws.region() }),
        );
        Ok(())
    })
}
