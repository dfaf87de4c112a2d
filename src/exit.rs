//! Exit codes and the error that carries one. Documented in `--help` and the README.

use std::fmt;

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

/// An error that ends the command: one message for people, one exit code for scripts.
#[derive(Debug)]
pub struct Error {
    /// The exit code.
    pub code: Code,
    /// What went wrong and, where possible, what to do about it.
    pub message: String,
}

impl Error {
    /// An error with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
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

    /// What the process prints on stderr as it exits with this error: `error: <message>`, styled
    /// as stderr's colour settings allow; nothing for an error without a message (`plan` with
    /// changes pending, exit 10).
    pub fn report(&self) -> Option<String> {
        (!self.message.is_empty()).then(|| {
            format!(
                "{} {}",
                console::style("error:").red().bold().for_stderr(),
                self.message
            )
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

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
