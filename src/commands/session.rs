//! What the verbs that talk to AWS share: the async runtime, the AWS session with its
//! credentials resolved, Ctrl-C counted for the engine, and the clock.

use std::time::{Duration, SystemTime};

use crate::aws::Aws;
use crate::converge::engine::{Engine, Interrupts};
use crate::converge::ephemeral;
use crate::exit::{Code, Error};
use crate::ui::Reporter;
use crate::workspace::Loaded;

/// A runtime on this thread, for commands that wait on one request at a time.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// A runtime with two workers, for commands whose work is many requests at once (`table import`,
/// `local`): both cores serve them.
pub fn two_worker_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}

/// Counts Ctrl-C presses for the engine. A second press always ends the process with 130 within
/// two seconds, even if the engine is inside a slow call and cannot react itself.
fn listen_for_ctrl_c(resume_hint: String) -> Interrupts {
    let interrupts = Interrupts::default();
    let counter = interrupts.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            counter.bump();
            if counter.count() >= 2 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                crate::ui::note(format!(
                    "error: interrupted: stopped watching. Resume watching with: {resume_hint}"
                ));
                std::process::exit(Code::Interrupted as i32);
            }
        }
    });
    interrupts
}

/// The command that resumes watching this spec's stack.
pub fn resume_hint(loaded: &Loaded) -> String {
    format!(
        "deployer status --watch -s {} --env {}",
        loaded.path.display(),
        loaded.spec.env
    )
}

/// What every command that talks to AWS starts with: the clients, the credentials resolved
/// (without a request: AWS's verdict on them comes with the first call), and, for commands
/// that watch CloudFormation, Ctrl-C counted.
pub struct Session {
    /// The AWS clients.
    pub aws: Aws,
    /// Ctrl-C presses, and the command that resumes watching after the second.
    interrupts: Option<(Interrupts, String)>,
}

impl Session {
    /// Runs `work` in a session on a new runtime. `watch`: the resume command, for commands
    /// whose Ctrl-C the engine handles.
    pub fn run<T>(
        region: Option<&str>,
        reporter: &Reporter,
        watch: Option<String>,
        work: impl AsyncFnOnce(&Session) -> Result<T, Error>,
    ) -> Result<T, Error> {
        runtime()?.block_on(async {
            let interrupts = watch.map(|hint| (listen_for_ctrl_c(hint.clone()), hint));
            let aws = Aws::connect(region, reporter.call_log()).await?;
            aws.check_credentials().await?;
            let session = Session { aws, interrupts };
            work(&session).await
        })
    }

    /// The engine over `cloud`, reacting to Ctrl-C when the session counts it.
    pub fn engine<'a>(
        &self,
        cloud: &'a crate::aws::AwsCloud<'a>,
        reporter: &'a Reporter,
    ) -> Engine<'a, crate::aws::AwsCloud<'a>, Reporter> {
        let engine = Engine::new(cloud, reporter);
        match &self.interrupts {
            Some((interrupts, hint)) => engine.with_interrupts(interrupts.clone(), hint.clone()),
            None => engine,
        }
    }
}

/// The current time; `DEPLOYER_NOW` (RFC 3339) replaces it in tests of expiry and `gc`.
pub fn now() -> Result<SystemTime, Error> {
    match std::env::var("DEPLOYER_NOW") {
        Ok(text) => ephemeral::parse_time(&text)
            .ok_or_else(|| Error::usage(format!("DEPLOYER_NOW=`{text}` is not an RFC 3339 time"))),
        Err(_) => Ok(SystemTime::now()),
    }
}
