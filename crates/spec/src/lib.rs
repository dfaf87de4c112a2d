//! The stack spec: parse the YAML, validate it, and hand back a typed [`Spec`].
//!
//! Pure: no file or network access. The caller reads the file and passes its text.

#![warn(missing_docs)]

pub mod decode;
pub mod diag;
pub mod model;
pub mod names;
pub mod yaml;

pub use diag::{Diag, Pos, SpecErrors};
pub use model::*;

/// Parses and validates a spec. `file` is how the path is shown in messages.
///
/// Every problem is reported, each with its `line:col`, sorted by position.
pub fn parse(source: &str, file: &str) -> Result<Spec, SpecErrors> {
    let (root, mut diags) = yaml::parse(source);
    let spec = root.and_then(|root| decode::decode(&root, &mut diags));
    match spec {
        Some(spec) if diags.is_empty() => Ok(spec),
        _ => {
            diags.sort_by_key(|d| d.pos);
            diags.dedup();
            Err(SpecErrors {
                file: file.to_string(),
                diags,
            })
        }
    }
}

impl Spec {
    /// The spec for another environment (from `--env`), with the rules that depend on it checked.
    pub fn for_env(&self, env: &str) -> Result<Spec, String> {
        names::check_env(env).map_err(|why| format!("environment `{env}` {why}"))?;
        for name in self.functions.keys() {
            names::check_function_name(&self.app, env, name)?;
        }
        if let Some(domain) = self.alb.as_ref().and_then(|a| a.domain.as_ref()) {
            let name = domain.for_env(env);
            if name.len() > names::CERTIFICATE_DOMAIN_MAX {
                return Err(format!(
                    "its HTTPS name `{name}` (`<env>.<alb.domain>`) is longer than the {} characters ACM takes as a certificate's domain name",
                    names::CERTIFICATE_DOMAIN_MAX
                ));
            }
        }
        Ok(Spec {
            env: env.to_string(),
            ..self.clone()
        })
    }

    /// The CloudFormation stack name, `<app>-<env>`.
    pub fn stack_name(&self) -> String {
        names::stack_name(&self.app, &self.env)
    }

    /// The env's own HTTPS name from `alb.domain`: the domain for the spec's own env,
    /// `<env>.<domain>` for another.
    pub fn domain_name(&self) -> Option<String> {
        let domain = self.alb.as_ref()?.domain.as_ref()?;
        Some(domain.for_env(&self.env))
    }

    /// Whether the current env is listed in `protected_envs`.
    pub fn is_protected(&self) -> bool {
        self.protected_envs.contains(&self.env)
    }
}

/// The JSON Schema of the spec format, pretty-printed, for editors.
pub fn schema() -> String {
    let schema = schemars::schema_for!(Spec);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas always serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;
