//! Exit codes (contracts.md) and the errors that map onto them.

use std::process::ExitCode;

/// The process exit codes of contracts.md. When several apply, the highest wins, except that
/// [`Exit::Inconclusive`] never hides [`Exit::Regression`] or [`Exit::Correctness`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything ran and passed.
    Ok = 0,
    /// A performance regression.
    Regression = 1,
    /// A correctness failure, or a claim no longer reproduced.
    Correctness = 2,
    /// An inconclusive comparison, only with `--fail-on-inconclusive`.
    Inconclusive = 3,
    /// An environment, input or config error.
    Input = 4,
}

impl Exit {
    /// Combines two outcomes by the rule above.
    pub fn combine(self, other: Exit) -> Exit {
        use Exit::*;
        match (self, other) {
            (Inconclusive, Regression | Correctness) | (Regression | Correctness, Inconclusive) => {
                if self == Inconclusive {
                    other
                } else {
                    self
                }
            }
            _ => self.max(other),
        }
    }

    /// As a process exit code.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// An error the user can fix: bad input, config or environment (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Builds an [`InputError`] wrapped in `anyhow`.
pub fn input_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}
