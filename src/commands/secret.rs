//! `deployer secret set|ls`: the values a function's `secrets` name, kept in SSM Parameter
//! Store or Secrets Manager; a value is read from stdin or a hidden prompt, never an argument,
//! and never printed.

use std::io::{IsTerminal, Read};

use serde::Serialize;

use crate::exit::Error;
use crate::spec::{Secret, Spec};
use crate::ui::{Human, Outcome};

use super::args::{Output, Target};
use super::session::Session;

/// `secret` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a secret's value (from stdin, or a hidden prompt) where the spec says it is kept
    #[command(
        after_help = "Examples:\n  deployer secret set api DB_PASSWORD            # prompts, without echo\n  printf %s \"$DB_PASSWORD\" | deployer secret set api DB_PASSWORD -e prod"
    )]
    Set(SetArgs),
    /// List the secrets the spec names, with their versions (never their values)
    #[command(
        after_help = "Example:\n  deployer secret ls -e prod --json | jq '.secrets[] | select(.version == null)'"
    )]
    Ls(LsArgs),
}

/// `deployer secret set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The function whose `secrets` name it
    function: String,
    /// The secret's variable name in `functions.<function>.secrets`
    name: String,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    output: Output,
}

/// `deployer secret ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    output: Output,
}

/// What `secret set` wrote: the `summary` record (command `secret set`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Written {
    /// The function.
    pub function: String,
    /// The secret's variable name.
    pub name: String,
    /// Where it is kept: `ssm:/notes/prod/db-password`.
    pub reference: String,
    /// Its new version.
    pub version: String,
}

impl Outcome for Written {
    fn command(&self) -> &'static str {
        "secret set"
    }

    fn human(&self) -> Human {
        Human::done(format!(
            "{}.{}: {} is at version {} (`deployer up` makes the function read it on its next start)",
            self.function, self.name, self.reference, self.version
        ))
    }
}

/// One secret of the spec, as its service describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// The function.
    pub function: String,
    /// The secret's variable name.
    pub name: String,
    /// Where it is kept.
    pub reference: String,
    /// Its version; `None`: it does not exist yet.
    pub version: Option<String>,
    /// When it last changed (seconds since the epoch).
    pub last_changed: Option<f64>,
}

/// What `secret ls` found: the `summary` record (command `secret ls`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The stack the secrets are for.
    pub stack: String,
    /// Every secret the spec names, in spec order.
    pub secrets: Vec<Listed>,
    /// How many do not exist (`up` stops on them).
    pub missing: usize,
}

impl Outcome for Listing {
    fn command(&self) -> &'static str {
        "secret ls"
    }

    fn human(&self) -> Human {
        let mut human = match self.missing {
            0 => Human::done(format!(
                "{}: {} secrets, all set",
                self.stack,
                self.secrets.len()
            )),
            n => Human {
                failed: true,
                ..Human::done(format!(
                    "{}: {n} of {} secrets are not set: `deployer secret set <function> <NAME>`",
                    self.stack,
                    self.secrets.len()
                ))
            },
        };
        human.stdout = self
            .secrets
            .iter()
            .map(|s| {
                let version = s.version.as_deref().unwrap_or("(missing)");
                format!("{}\t{}\t{}\t{version}", s.function, s.name, s.reference)
            })
            .collect();
        human
    }
}

impl Command {
    /// Runs the verb.
    pub fn run(self) -> Result<(), Error> {
        match self {
            Command::Set(args) => args.run(),
            Command::Ls(args) => args.run(),
        }
    }
}

/// The secret `function`.`name` of the spec, or a usage error saying how to declare it.
fn declared<'s>(spec: &'s Spec, function: &str, name: &str) -> Result<&'s Secret, Error> {
    let f = spec.functions.get(function).ok_or_else(|| {
        let known: Vec<&str> = spec.functions.keys().map(String::as_str).collect();
        Error::usage(format!(
            "no function `{function}` in the spec (it has {})",
            known.join(", ")
        ))
    })?;
    f.secrets.get(name).ok_or_else(|| {
        Error::usage(format!(
            "function `{function}` has no secret `{name}`: declare where it is kept first, e.g.\n  functions:\n    {function}:\n      secrets:\n        {name}: ssm:{}",
            name.to_ascii_lowercase().replace('_', "-")
        ))
    })
}

/// The value: all of stdin when it is not a terminal (one final newline dropped), else a
/// prompt that does not echo.
fn read_value(label: &str) -> Result<String, Error> {
    let mut value = if std::io::stdin().is_terminal() {
        console::Term::stderr()
            .write_str(&format!("{label}: "))
            .and_then(|_| console::Term::stderr().read_secure_line())
            .map_err(|e| Error::usage(format!("cannot read the value: {e}")))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::usage(format!("cannot read the value from stdin: {e}")))?;
        text
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    match value.is_empty() {
        true => Err(Error::usage("the value is empty: nothing was written")),
        false => Ok(value),
    }
}

impl SetArgs {
    fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let spec = &loaded.spec;
        let secret = declared(spec, &self.function, &self.name)?;
        let full_name = secret.full_name(&spec.app, &spec.env);
        let reference = secret.reference(&spec.app, &spec.env);
        let value = read_value(&format!("value of {} ({reference})", self.name))?;
        let reporter = self.output.reporter();
        Session::run(spec.region.as_deref(), &reporter, None, async |session| {
            let cloud = session.aws.cloud();
            let version = cloud
                .put_secret(secret.store, &full_name, &value)
                .await
                .map_err(|e| {
                    crate::converge::engine::cloud_failure(&format!("cannot write {reference}"), e)
                })?;
            reporter.finish(&Written {
                function: self.function.clone(),
                name: self.name.clone(),
                reference: reference.clone(),
                version,
            });
            Ok(())
        })
    }
}

impl LsArgs {
    fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let spec = &loaded.spec;
        let reporter = self.output.reporter();
        Session::run(spec.region.as_deref(), &reporter, None, async |session| {
            let cloud = session.aws.cloud();
            let found = crate::converge::resolve::look_up_secrets(&cloud, spec).await?;
            let secrets: Vec<Listed> = found
                .into_iter()
                .map(|s| Listed {
                    version: s.info.as_ref().map(|i| i.version.clone()),
                    last_changed: s.info.and_then(|i| i.last_changed),
                    function: s.function,
                    name: s.name,
                    reference: s.reference,
                })
                .collect();
            let missing = secrets.iter().filter(|s| s.version.is_none()).count();
            reporter.finish(&Listing {
                stack: spec.stack_name(),
                secrets,
                missing,
            });
            match missing {
                0 => Ok(()),
                _ => Err(Error::code_only(crate::exit::Code::Usage)),
            }
        })
    }
}
