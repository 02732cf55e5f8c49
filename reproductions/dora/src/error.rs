//! [`Error`], the one error type of this crate. Every message names the bad value.

use claimbench_claims::ClaimError;
use claimbench_kernels::KernelError;

/// What went wrong in a DoRA experiment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A [`crate::config::DoraConfig`] setting is invalid, e.g. `dora setting lr_grid = []: must
    /// hold at least one learning rate`.
    #[error("dora setting {name} = {value}: {rule}")]
    Config {
        /// The field name in `DoraConfig` (with an index where it is a list, `ranks[2]`).
        name: String,
        /// The value given, as text.
        value: String,
        /// What it must be.
        rule: String,
    },
    /// An adapter geometry the kernels refuse (the message is [`KernelError`]'s, so it agrees with
    /// `AdapterSpec::validate`), e.g. `dora setting ranks[3] (capacity layer 32×32): adapter rank r
    /// 80 (layer 32×32) is invalid: expected 1 ≤ r ≤ min(d_in, d_out): …`.
    #[error("dora setting {setting}: {source}")]
    Adapter {
        /// Which setting and layer.
        setting: String,
        /// The kernels' reason.
        source: KernelError,
    },
    /// A kernel entry point refused its input at run time.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A claim could not be evaluated.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// A training run's loss stopped being finite, e.g. `capacity/lora/r4 (lr 0.1) diverged: loss
    /// NaN at step 12`.
    #[error("{run} diverged: loss {loss} at step {step}")]
    Diverged {
        /// Which run.
        run: String,
        /// The step (0-based).
        step: usize,
        /// The loss found.
        loss: f64,
    },
    /// A tensor could not be read back to the host (a backend failure).
    #[error("reading a tensor back failed: {0}")]
    ReadBack(String),
    /// A memory measurement could not be made ([`crate::memory::norm_memory`]): the binary
    /// declares no counting global allocator (the message says which line to add), or the
    /// backward pass left a trainable tensor without a gradient.
    #[error("memory measurement: {0}")]
    Memory(String),
    /// The real-text experiment could not get its text or base model, e.g. a stored base model
    /// trained with other settings than `text.base`.
    #[error("dora on real text: {0}")]
    Text(String),
    /// Metric rows that do not describe a measurement, e.g. `metric rows: seed is missing`.
    #[error("metric rows: {0}")]
    Metrics(String),
}

impl From<claimbench_paper::metrics::MetricsError> for Error {
    fn from(e: claimbench_paper::metrics::MetricsError) -> Self {
        Error::Metrics(e.0)
    }
}
