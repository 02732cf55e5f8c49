//! [`Error`], the one error type of this crate.
//!
//! Every message names the bad value and where it sits. Numbers are printed as Rust prints an
//! `f64` (`0.5`, `-1`, `NaN`, `inf`); positions in a `[B, T]` array as `name[b, t]` (0-based),
//! positions in a `[B]` array as `name[b]`.

/// What is wrong with an input to one of this crate's functions. Each message names the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A `[B, T]` shape with `B = 0` or `T = 0`, e.g. `shape [B = 0, T = 4] is empty; B and T
    /// must both be ≥ 1`.
    #[error("shape [B = {batch}, T = {time}] is empty; B and T must both be ≥ 1")]
    EmptyShape {
        /// `B` given.
        batch: usize,
        /// `T` given.
        time: usize,
    },
    /// A row-major `[B, T]` array has the wrong length, e.g. `mask has 5 values; shape
    /// [B = 2, T = 3] needs 6`.
    #[error("{name} has {len} values; shape [B = {batch}, T = {time}] needs {}", .batch * .time)]
    ShapeMismatch {
        /// Which array.
        name: &'static str,
        /// Its length.
        len: usize,
        /// `B` of the shape.
        batch: usize,
        /// `T` of the shape.
        time: usize,
    },
    /// A per-sequence `[B]` array has the wrong length, e.g. `policy_rejected has 3 entries but
    /// policy_chosen has 4; they must match`.
    #[error("{name} has {len} entries but {reference} has {expected}; they must match")]
    BatchMismatch {
        /// Which array.
        name: &'static str,
        /// Its length.
        len: usize,
        /// The array (or shape) it is compared with.
        reference: &'static str,
        /// That array's length.
        expected: usize,
    },
    /// A batch of pairs or sequences is empty.
    #[error("the batch is empty; it needs at least 1 {what}")]
    EmptyBatch {
        /// What a batch element is (`pair`, `sequence`).
        what: &'static str,
    },
    /// A mask entry is not exactly 0 or 1, e.g. `mask[1, 2] is 0.5; a mask holds only 0 or 1`.
    #[error("mask[{row}, {col}] is {value}; a mask holds only 0 or 1")]
    MaskValue {
        /// Row (sequence) index.
        row: usize,
        /// Column (token) index.
        col: usize,
        /// The value found.
        value: f64,
    },
    /// A sequence has no valid token, e.g. `mask row 3 is all zeros; every sequence needs at
    /// least one valid token`.
    #[error("mask row {row} is all zeros; every sequence needs at least one valid token")]
    EmptyRow {
        /// Row (sequence) index.
        row: usize,
    },
    /// An input that must be finite is NaN or infinite, e.g. `rewards[0, 3] is NaN; inputs must
    /// be finite`. Only valid (mask = 1) positions are checked.
    #[error("{name}[{index}] is {value}; inputs must be finite")]
    NonFinite {
        /// Which array.
        name: &'static str,
        /// The position, `b, t` or `b`.
        index: String,
        /// The value found.
        value: f64,
    },
    /// DPO's β is not a finite number above 0, e.g. `β -0.1 must be a finite number above 0`.
    #[error("β {beta} must be a finite number above 0")]
    Beta {
        /// The value given.
        beta: f64,
    },
    /// Conservative DPO's label smoothing is outside `[0, 0.5)`, e.g. `label smoothing ε 0.5 is
    /// outside [0, 0.5)`.
    #[error("label smoothing ε {eps} is outside [0, 0.5)")]
    LabelSmoothing {
        /// The value given.
        eps: f64,
    },
    /// γ or λ is outside `[0, 1]`, e.g. `γ 1.5 is outside [0, 1]`.
    #[error("{name} {value} is outside [0, 1]")]
    Discount {
        /// `γ` or `λ`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A clip range is not a finite number above 0, e.g. `policy clip ε 0 must be a finite
    /// number above 0`.
    #[error("{name} {value} must be a finite number above 0")]
    ClipRange {
        /// `policy clip ε` or `value clip ε`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The KL coefficient is negative or not finite, e.g. `KL coefficient -0.1 must be a finite
    /// number ≥ 0`.
    #[error("KL coefficient {value} must be a finite number ≥ 0")]
    KlCoef {
        /// The value given.
        value: f64,
    },
    /// A tabular problem with no prompt or fewer than 2 responses.
    #[error(
        "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got {n_prompts} × {n_responses}"
    )]
    EmptyTable {
        /// Prompts given.
        n_prompts: usize,
        /// Responses per prompt given.
        n_responses: usize,
    },
    /// A `[prompts, responses]` table has the wrong length, e.g. `reward has 5 values;
    /// 2 prompts × 3 responses need 6`.
    #[error("{name} has {len} values; {n_prompts} prompts × {n_responses} responses need {}",
        .n_prompts * .n_responses)]
    TableShape {
        /// Which table.
        name: &'static str,
        /// Its length.
        len: usize,
        /// Prompts.
        n_prompts: usize,
        /// Responses per prompt.
        n_responses: usize,
    },
    /// Two tables of one problem have different dimensions, e.g. `the reference is 2 prompts ×
    /// 3 responses but the policy is 1 × 3`.
    #[error(
        "the {name} is {n_prompts} prompts × {n_responses} responses but the policy is \
         {expected_prompts} × {expected_responses}"
    )]
    TableMismatch {
        /// Which table (`reference`).
        name: &'static str,
        /// Its prompts.
        n_prompts: usize,
        /// Its responses per prompt.
        n_responses: usize,
        /// The policy's prompts.
        expected_prompts: usize,
        /// The policy's responses per prompt.
        expected_responses: usize,
    },
    /// A tabular policy entry is NaN or outside `[0, 1]`, e.g. `π(y2 | x0) is -0.1;
    /// probabilities must be in [0, 1]`.
    #[error("π(y{response} | x{prompt}) is {value}; probabilities must be in [0, 1]")]
    Probability {
        /// Prompt index.
        prompt: usize,
        /// Response index.
        response: usize,
        /// The value found.
        value: f64,
    },
    /// A tabular policy row does not sum to 1 (within 1e-9), e.g. `π(· | x0) sums to 1.2; it
    /// must sum to 1`.
    #[error("π(· | x{prompt}) sums to {sum}; it must sum to 1")]
    NotDistribution {
        /// Prompt index.
        prompt: usize,
        /// The sum found.
        sum: f64,
    },
    /// A reward is NaN or infinite, e.g. `r(x0, y1) is inf; rewards must be finite`.
    #[error("r(x{prompt}, y{response}) is {value}; rewards must be finite")]
    Reward {
        /// Prompt index.
        prompt: usize,
        /// Response index.
        response: usize,
        /// The value found.
        value: f64,
    },
    /// The preference data set is empty.
    #[error("the preference data set is empty")]
    EmptyData,
    /// A preference names a prompt or response outside the table, e.g. `preference 2 (x0, y5 ≻
    /// y1) is outside 1 prompts × 3 responses`.
    #[error(
        "preference {pair} (x{prompt}, y{chosen} ≻ y{rejected}) is outside {n_prompts} prompts × \
         {n_responses} responses"
    )]
    PairIndex {
        /// Index of the preference in the data set.
        pair: usize,
        /// Its prompt.
        prompt: usize,
        /// Its chosen response.
        chosen: usize,
        /// Its rejected response.
        rejected: usize,
        /// Prompts in the table.
        n_prompts: usize,
        /// Responses per prompt in the table.
        n_responses: usize,
    },
    /// A preference compares a response with itself, e.g. `preference 0 compares y1 with itself`.
    #[error("preference {pair} compares y{response} with itself")]
    SameResponse {
        /// Index of the preference in the data set.
        pair: usize,
        /// The response.
        response: usize,
    },
    /// A preference probability is NaN or outside `[0, 1]`, e.g. `preference 1 has P(chosen ≻
    /// rejected) = 1.5; it must be in [0, 1]`.
    #[error("preference {pair} has P(chosen ≻ rejected) = {value}; it must be in [0, 1]")]
    PreferenceProb {
        /// Index of the preference in the data set.
        pair: usize,
        /// The value given.
        value: f64,
    },
    /// The reference policy gives probability 0 to a response the data uses, so `log π_ref` is
    /// −∞ in the DPO loss, e.g. `π_ref(y2 | x0) = 0 but preference 0 uses y2; DPO needs π_ref > 0
    /// on every response in the data`.
    #[error(
        "π_ref(y{response} | x{prompt}) = 0 but preference {pair} uses y{response}; DPO needs \
         π_ref > 0 on every response in the data"
    )]
    ReferenceZero {
        /// Index of the preference in the data set.
        pair: usize,
        /// Its prompt.
        prompt: usize,
        /// The response with zero reference probability.
        response: usize,
    },
    /// The policy gives probability 0 to both responses of a preference, so the DPO margin is
    /// `(−∞) − (−∞)`, undefined.
    #[error(
        "π gives 0 to both y{chosen} and y{rejected} of preference {pair} (x{prompt}); the DPO \
         margin log π(y_c) − log π(y_r) is undefined"
    )]
    UndefinedMargin {
        /// Index of the preference in the data set.
        pair: usize,
        /// Its prompt.
        prompt: usize,
        /// Its chosen response.
        chosen: usize,
        /// Its rejected response.
        rejected: usize,
    },
    /// A Fig. 1 experiment setting is invalid, e.g. `fig1 setting beta = 0: must be a finite
    /// number above 0`.
    #[error("fig1 setting {name} = {value}: {requirement}")]
    Fig1Setting {
        /// The setting's field name in `Fig1Config`.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What it must be.
        requirement: String,
    },
    /// A training run's loss stopped being finite, e.g. `dpo (ref) diverged: loss NaN at step 12`.
    #[error("{stage} diverged: loss {loss} at step {step}")]
    Diverged {
        /// Which run (`sft (ref)`, `reward model`, `dpo (ref)`, `ppo (other)`, ...).
        stage: String,
        /// The step (0-based).
        step: usize,
        /// The loss found.
        loss: f64,
    },
    /// A tensor could not be read back to the host (a backend failure).
    #[error("reading a tensor back failed: {0}")]
    ReadBack(String),
    /// Metric rows that do not describe a measurement, e.g. `metric rows: reward_dpo is
    /// missing`.
    #[error("metric rows: {0}")]
    Metrics(String),
    /// A PPO-ladder setting is invalid, e.g. `ladder setting minibatches = 3: does not divide
    /// batch 32`.
    #[error("ladder setting {name} = {value}: {rule}")]
    LadderConfig {
        /// The setting's field name in `LadderConfig`.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What it must be.
        rule: String,
    },
    /// A stored policy does not fit the configuration, e.g. `SFT policy: W1 has 10 values;
    /// [I = 4, H = 3] needs 12`.
    #[error("SFT policy: {0}")]
    Policy(String),
}

/// Checks that `value` is finite, else [`Error::NonFinite`] naming `name[index]`.
pub(crate) fn check_finite(
    name: &'static str,
    index: impl FnOnce() -> String,
    value: f64,
) -> Result<(), Error> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite {
            name,
            index: index(),
            value,
        })
    }
}

/// Checks that γ or λ is in `[0, 1]` (NaN fails), else [`Error::Discount`].
pub(crate) fn check_unit(name: &'static str, value: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::Discount { name, value })
    }
}

/// Checks that a clip range is finite and above 0, else [`Error::ClipRange`].
pub(crate) fn check_clip(name: &'static str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::ClipRange { name, value })
    }
}

impl From<claimbench_paper::metrics::MetricsError> for Error {
    fn from(e: claimbench_paper::metrics::MetricsError) -> Self {
        Error::Metrics(e.0)
    }
}
