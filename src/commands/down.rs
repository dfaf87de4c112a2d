//! `deployer down`: delete the env's stack and wait until it is gone; retained tables are named,
//! never lost.

use std::time::Instant;

use serde::Serialize;

use crate::converge::{self, engine::Teardown};
use crate::exit::Error;
use crate::ui::record::Seconds;
use crate::ui::{Human, Outcome};

use super::args::{Output, Target};
use super::session::{Session, resume_hint};
use super::up::either;

/// `deployer down`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  deployer down --env pr-42 --yes\n\nAn env attached to its app's shared load balancer frees its slot; the last one's\n`down` deletes the shared load balancer (<app>-shared-alb) too."
)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Delete without asking (required when not on a terminal)
    #[arg(short, long)]
    yes: bool,
    /// Delete in CloudFormation's express mode, without waiting for each resource to be gone
    /// (the default for an ephemeral env)
    #[arg(long, overrides_with = "no_express")]
    express: bool,
    /// Delete in standard mode even for an ephemeral env
    #[arg(long, overrides_with = "express")]
    no_express: bool,
    #[command(flatten)]
    output: Output,
}

/// What `down` did: the `summary` record (command `down`), `✓ <stack>: <message>` for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deleted {
    /// The stack name.
    pub stack: String,
    /// `DELETE_COMPLETE`, or `absent` when there was no stack.
    pub status: DownStatus,
    /// The result, in a sentence.
    pub message: String,
    /// The command's time.
    pub duration_s: Seconds,
    /// Physical names of the tables kept with their data.
    pub retained_tables: Vec<String>,
    /// Artifact keys deleted from the bucket.
    pub removed_artifacts: Vec<String>,
    /// Artifact keys other envs still use.
    pub kept_artifacts: Vec<String>,
    /// The shared load balancer stack the env was attached to (null: none).
    pub shared_alb: Option<String>,
    /// Whether that stack was deleted with it (no env uses it any more).
    pub shared_alb_deleted: bool,
}

/// How `down` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DownStatus {
    /// The stack was deleted.
    #[serde(rename = "DELETE_COMPLETE")]
    DeleteComplete,
    /// There was no stack.
    #[serde(rename = "absent")]
    Absent,
}

impl Outcome for Deleted {
    fn command(&self) -> &'static str {
        "down"
    }

    fn human(&self) -> Human {
        Human::done(format!(
            "{}: {} ({:.1} s)",
            self.stack,
            self.message,
            self.duration_s.0.as_secs_f64()
        ))
    }
}

impl Args {
    /// Runs `down`.
    pub fn run(self) -> Result<(), Error> {
        let started = Instant::now();
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        let spec = &loaded.spec;
        let name = spec.stack_name();
        let express = either(self.express, self.no_express);
        let watch = Some(resume_hint(&loaded));
        Session::run(spec.region.as_deref(), &reporter, watch, async |session| {
            let cloud = session.aws.cloud();
            let engine = session.engine(&cloud, &reporter);
            let protected = spec.is_protected();
            let report =
                converge::down(&engine, &cloud, &name, protected, self.yes, express).await?;
            let (status, mut message, retained) = match report.teardown {
                Teardown::NothingToDelete => (
                    DownStatus::Absent,
                    "nothing to delete".to_string(),
                    Vec::new(),
                ),
                Teardown::Deleted { retained_tables } if retained_tables.is_empty() => (
                    DownStatus::DeleteComplete,
                    "deleted".to_string(),
                    Vec::new(),
                ),
                Teardown::Deleted { retained_tables } => (
                    DownStatus::DeleteComplete,
                    format!(
                        "deleted; these tables are retained and keep their data: {} (`deployer up` of this env offers to bring them back: --adopt-retained)",
                        retained_tables.join(", ")
                    ),
                    retained_tables,
                ),
            };
            if let Some(released) = &report.shared_alb {
                message.push_str(&match released.deleted {
                    true => format!("; {} deleted with its last env", released.shared_stack),
                    false => format!("; its slot on {} is free", released.shared_stack),
                });
            }
            if !report.removed_artifacts.is_empty() || !report.kept_artifacts.is_empty() {
                message.push_str(&format!(
                    "; removed {} artifact(s), kept {} still used by other envs",
                    report.removed_artifacts.len(),
                    report.kept_artifacts.len()
                ));
            }
            reporter.finish(&Deleted {
                stack: name.clone(),
                status,
                message,
                duration_s: Seconds(started.elapsed()),
                retained_tables: retained,
                removed_artifacts: report.removed_artifacts,
                kept_artifacts: report.kept_artifacts,
                shared_alb: report.shared_alb.as_ref().map(|r| r.shared_stack.clone()),
                shared_alb_deleted: report.shared_alb.is_some_and(|r| r.deleted),
            });
            Ok(())
        })
    }
}
