//! The one error type of this crate: bad input to the statistics or to [`crate::evaluate`].
//!
//! Nothing in this crate panics on user input; every problem below comes back as an `Err`.
//! Indices in messages are 0-based, like the `Vec`s they point into.

use crate::claim::TestKind;

/// What went wrong with the input of a statistic or of a claim evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    /// A sample set that must hold at least one value holds none.
    #[error("{what} is empty")]
    Empty {
        /// The sample set, e.g. `arm a`.
        what: String,
    },
    /// Two sample sets that must be paired element by element have different lengths.
    #[error("length mismatch: {left} has {left_len} values but {right} has {right_len}")]
    LengthMismatch {
        /// Name of the first set.
        left: String,
        /// Its length.
        left_len: usize,
        /// Name of the second set.
        right: String,
        /// Its length.
        right_len: usize,
    },
    /// A sample is NaN or infinite, e.g. `sample 3 of arm b is NaN`.
    #[error("sample {index} of {what} is {kind}")]
    NonFinite {
        /// The sample set.
        what: String,
        /// 0-based index of the bad sample.
        index: usize,
        /// `NaN` or `infinite`.
        kind: &'static str,
    },
    /// A sample that must be > 0 (a time) is not.
    #[error("sample {index} of {what} is not positive ({value})")]
    NonPositive {
        /// The sample set.
        what: String,
        /// 0-based index of the bad sample.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A statistic needs more values than it got.
    #[error("{what} needs at least {min} values, got {got}")]
    TooFew {
        /// The statistic and its input, e.g. `t-interval of samples`.
        what: String,
        /// The minimum.
        min: usize,
        /// What was given.
        got: usize,
    },
    /// The significance level is outside (0, 0.5).
    #[error("alpha must be in (0, 0.5), got {0}")]
    BadAlpha(f64),
    /// A margin or tolerance is negative, NaN or infinite (or zero where it must be positive).
    #[error("{what} must be finite and {requirement}, got {value}")]
    BadMargin {
        /// Which margin, e.g. `equivalence margin`.
        what: &'static str,
        /// `non-negative` or `positive`.
        requirement: &'static str,
        /// The offending value.
        value: f64,
    },
    /// Any other parameter out of its range (percentile, resamples, min |rho|, ...).
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The evidence does not carry the data the test needs.
    #[error("{test} test cannot use {evidence} evidence (it needs {needs})")]
    EvidenceMismatch {
        /// The test.
        test: TestKind,
        /// The kind of evidence given.
        evidence: &'static str,
        /// The kinds it accepts.
        needs: &'static str,
    },
    /// The seed list and the per-seed evidence disagree in length.
    #[error("{seeds} seeds listed but the evidence has {n} per-seed values")]
    SeedCountMismatch {
        /// Length of the seed list.
        seeds: usize,
        /// Number of per-seed values in the evidence.
        n: usize,
    },
    /// A seed appears twice in the seed list, so the runs cannot be independent.
    #[error("seed {0} is listed more than once")]
    DuplicateSeed(u64),
    /// A rank correlation was asked of a constant sequence.
    #[error("{what} is constant, so its rank correlation is undefined")]
    Constant {
        /// The constant sequence.
        what: String,
    },
    /// The claim spec's `margin` differs from the margin its test uses.
    #[error("margin {spec} in the claim spec differs from the {test} test's margin {used}")]
    MarginMismatch {
        /// `ClaimSpec::margin`.
        spec: f64,
        /// The test.
        test: TestKind,
        /// The margin the test uses.
        used: f64,
    },
    /// The claim spec sets a `margin` but its test uses none.
    #[error("margin {spec} in the claim spec is not used by the {test} test")]
    MarginUnused {
        /// `ClaimSpec::margin`.
        spec: f64,
        /// The test.
        test: TestKind,
    },
    /// A `claims.json` with a schema version this crate does not read.
    #[error("unsupported claims.json schema_version {found} (this build reads 1 to {expected})")]
    UnsupportedSchema {
        /// Version in the file.
        found: u32,
        /// Version this crate reads and writes.
        expected: u32,
    },
    /// A `claims.json` that is not valid JSON for [`crate::ClaimsFile`].
    #[error("claim {id}: an exact test is a check, not a {kind}")]
    ExactNotCheck {
        /// Claim id.
        id: String,
        /// The kind the spec gave.
        kind: crate::claim::ClaimKind,
    },

    #[error("claim {id}: a {kind} states the rule its band comes from (band_rule is empty)")]
    MissingBandRule {
        /// Claim id.
        id: String,
        /// Its kind.
        kind: crate::claim::ClaimKind,
    },

    #[error("invalid claims.json: {0}")]
    Json(String),
}
