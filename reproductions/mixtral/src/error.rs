//! [`Error`], the one error type of this crate. Every message names the bad value.

use claimbench_claims::ClaimError;
use claimbench_kernels::KernelError;

/// What went wrong in a Mixtral experiment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A [`crate::config::MixtralConfig`] setting is invalid, e.g. `mixtral setting model.top_k =
    /// 9: must be at most model.experts = 8`.
    #[error("mixtral setting {name} = {value}: {rule}")]
    Config {
        /// The field path in `MixtralConfig` (`model.top_k`, `data.vocab`, `seeds[2]`).
        name: String,
        /// The value given, as text.
        value: String,
        /// What it must be.
        rule: String,
    },
    /// A kernel entry point refused its input at run time.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A claim could not be evaluated.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// A training run's loss stopped being finite, e.g. `moe diverged: loss NaN at step 12`.
    #[error("{run} diverged: loss {loss} at step {step}")]
    Diverged {
        /// Which run (the arm).
        run: String,
        /// The step (0-based).
        step: usize,
        /// The loss found.
        loss: f64,
    },
    /// The text could not be loaded or is too short for the settings, e.g. `rust-src: the
    /// validation split has 40 tokens, fewer than 24 disjoint windows of 65`.
    #[error("mixtral data: {0}")]
    Data(String),
    /// A tensor could not be read back to the host (a backend failure).
    #[error("reading a tensor back failed: {0}")]
    ReadBack(String),
    /// Metric rows that do not describe a measurement, e.g. `metric rows: seed is missing`.
    #[error("metric rows: {0}")]
    Metrics(String),
}

impl From<claimbench_paper::metrics::MetricsError> for Error {
    fn from(e: claimbench_paper::metrics::MetricsError) -> Self {
        Error::Metrics(e.0)
    }
}
