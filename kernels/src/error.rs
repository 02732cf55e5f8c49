//! Errors of the validated kernel entry points.

/// Why a kernel refused its input. Messages name the problem and the numbers involved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    /// A dimension that must be positive is zero.
    #[error("{what} must be at least 1, got 0")]
    EmptyDimension {
        /// The dimension's name (e.g. "vocabulary size").
        what: &'static str,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch: {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was compared.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
    /// A buffer is larger than the device can bind in one piece (wgpu: 128 MiB by default).
    #[error(
        "{what} needs {bytes} bytes in one buffer but the device binds at most {limit} bytes \
         ({device}); split the batch (e.g. fewer tokens per call) or use a CUDA device"
    )]
    TooLarge {
        /// The buffer's name.
        what: &'static str,
        /// Its size in bytes.
        bytes: u64,
        /// The device limit in bytes.
        limit: u64,
        /// The runtime/device name.
        device: String,
    },
    /// A target id lies outside `[0, vocab)`.
    #[error("target id {id} at position {position} is out of range for a vocabulary of {vocab}")]
    TargetOutOfRange {
        /// Flat position of the offending target.
        position: usize,
        /// The id found there.
        id: i64,
        /// The vocabulary size.
        vocab: usize,
    },
    /// An element type the kernel does not take.
    #[error("unsupported {what} dtype {dtype}: expected {expected}")]
    UnsupportedDType {
        /// Which input.
        what: &'static str,
        /// The dtype given.
        dtype: String,
        /// The dtypes accepted.
        expected: &'static str,
    },
    /// A setting outside its range.
    #[error("{what} {value} is invalid: expected {expected}")]
    InvalidSetting {
        /// The setting's name.
        what: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Every row is ignored, so a mean over the counted rows is undefined.
    #[error(
        "all {rows} targets equal the ignore index {ignore_index}: no token counts, so the mean loss is undefined"
    )]
    NothingToAverage {
        /// Number of rows.
        rows: usize,
        /// The ignore index.
        ignore_index: i64,
    },
    /// A mask value other than 0 or 1.
    #[error(
        "mask value {value} at row {row}, position {col}: a mask holds only 0 (ignored) or 1 (valid)"
    )]
    MaskValue {
        /// The sequence.
        row: usize,
        /// The position in it.
        col: usize,
        /// The value found.
        value: f32,
    },
    /// A sequence whose mask is all zeros: its log-probability (a sum over no token) means nothing.
    #[error(
        "sequence {row} has no valid token (its mask is all zeros): every sequence needs at least one response token"
    )]
    EmptySequence {
        /// The sequence.
        row: usize,
    },
    /// A NaN or infinite input where a finite number is needed.
    #[error(
        "{what} is {value} at {position}: inputs must be finite (a NaN here would make the loss NaN)"
    )]
    NonFinite {
        /// The input's name.
        what: &'static str,
        /// Where.
        position: String,
        /// The value found.
        value: f32,
    },
    /// Two batch sizes that must agree do not (e.g. chosen vs rejected).
    #[error("batch mismatch: {what}: {left} vs {right}")]
    BatchMismatch {
        /// What was compared, e.g. "chosen vs rejected sequences".
        what: &'static str,
        /// The first size.
        left: usize,
        /// The second size.
        right: usize,
    },
}
