//! Exit codes and the error that carries one. Documented in `--help` and the README.

/// The process exit codes deployer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Success, including "no changes".
    Ok = 0,
    /// The deployment failed (the stack did not reach the wanted state).
    Failed = 1,
    /// Bad usage or an invalid spec: nothing was sent to AWS.
    Usage = 2,
    /// Credentials missing, invalid or expired.
    Credentials = 3,
    /// The change would destroy data and `--allow-data-loss` was not given.
    DataLoss = 4,
    /// AWS denied a call: the credentials lack an IAM permission.
    Denied = 5,
    /// AWS could not be reached (network, endpoint, or a region that does not exist).
    Unreachable = 6,
    /// `plan` found changes.
    Changes = 10,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

/// An error that ends the command: one message for people, one exit code for scripts, and the
/// error that caused it, when there is one (shown as `caused by:` lines).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The exit code.
    pub code: Code,
    /// What went wrong and, where possible, what to do about it.
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// An error that says what `error` says, with `error`'s causes under it.
    pub fn of(code: Code, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::new(code, error.to_string()).caused_by(error)
    }

    /// The same error, caused by `source`.
    pub fn caused_by(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// An exit code with nothing more to say: what happened was reported already (`plan` with
    /// changes pending, an import that ended early).
    pub fn code_only(code: Code) -> Self {
        Error::new(code, "")
    }

    /// A usage or spec error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(Code::Usage, message)
    }

    /// A failed operation (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Error::new(Code::Failed, message)
    }

    /// What the process prints on stderr as it exits with this error: `error: <message>`, then
    /// `  caused by: <cause>` for each error in its source chain, styled as stderr's colour
    /// settings allow; nothing for an error without a message (`plan` with changes pending,
    /// exit 10).
    pub fn report(&self) -> Option<String> {
        if self.message.is_empty() {
            return None;
        }
        let mut report = format!(
            "{} {}",
            console::style("error:").red().bold().for_stderr(),
            self.message
        );
        let mut said = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            // An error made `of` another says its text already.
            let text = error.to_string();
            if text != said {
                report.push_str(&format!("\n  caused by: {text}"));
            }
            said = text;
            cause = error.source();
        }
        Some(report)
    }
}

/// The exit-code table shown in `--help`.
pub const HELP: &str = "\
Exit codes:
  0    success, or nothing to change
  1    the deployment failed (the root cause is printed first)
  2    bad usage or invalid spec (nothing was sent to AWS)
  3    credentials missing, invalid or expired
  4    refused: the change would destroy data (see --allow-data-loss)
  5    AWS denied a call, or the permission check found one missing: the credentials lack a permission
  6    AWS could not be reached (network, endpoint, or region)
  10   plan: changes are pending
  130  interrupted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_shows_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let error = Error::failed("cannot write out.json").caused_by(io);
        let report = console::strip_ansi_codes(&error.report().unwrap()).into_owned();
        assert_eq!(
            report,
            "error: cannot write out.json\n  caused by: Permission denied"
        );

        // An error made `of` another starts from its text, and shows only what is under it.
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read c.json")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::other("disk on fire");
        let report = Error::of(Code::Failed, Outer(inner)).report().unwrap();
        let report = console::strip_ansi_codes(&report).into_owned();
        assert_eq!(
            report,
            "error: cannot read c.json\n  caused by: disk on fire"
        );

        assert_eq!(Error::code_only(Code::Changes).report(), None);
    }
}
