//! Spec diagnostics: a message tied to a `line:col` in the spec file.

use std::fmt;

/// A 1-based position in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// Where the offending node starts.
    pub pos: Pos,
    /// One sentence, no trailing period.
    pub message: String,
}

impl Diag {
    /// A problem at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Diag {
            pos,
            message: message.into(),
        }
    }

    /// `file:line:col: message`, the form editors and CI annotators understand.
    pub fn display<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct Located<'a>(&'a Diag, &'a str);
        impl fmt::Display for Located<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Located(d, file) = self;
                write!(f, "{file}:{}:{}: {}", d.pos.line, d.pos.col, d.message)
            }
        }
        Located(self, file)
    }
}

/// Every problem found in one spec, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors {
    /// The spec's path as the user gave it.
    pub file: String,
    /// The problems, sorted by position.
    pub diags: Vec<Diag>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diags.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.display(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
