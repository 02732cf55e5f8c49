//! Fused per-token log-probabilities: `log_softmax(logits)[target]` per row in one pass.
//!
//! Given logits `[rows, vocab]` (rows = B·T) and target ids `[rows]`:
//! - forward: with `m_r = max_v logits[r, v]` and `ln_s_r = ln Σ_v exp(logits[r, v] − m_r)` (online
//!   max / sum-exp, f32 accumulation), `logprob[r] = (logits[r, t_r] − m_r) − ln_s_r` and
//!   `lse[r] = m_r + ln_s_r = log Σ_v exp(logits[r, v])`. The log-prob never goes through `lse`:
//!   rounded to f32 at `|lse|` (ulp(1e4) ≈ 1e-3) it would lose what the log-prob needs when the
//!   logits are large and close together (ten at −1e4, one at −9990: −10.000454, not −10.0);
//! - backward: `∂logprob[r]/∂logits[r, v] · g[r] = g[r] · (1{v = t_r} − softmax(logits[r])_v)`.
//!
//! [`forward_reference`] and [`backward_reference`] are the plain-Rust references (f64 accumulation)
//! every kernel test compares against; [`forward`] and [`backward`] are the validated entry points.

pub mod kernel;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
use crate::launch::{cube_size_pow2, grid_1d, max_buffer_bytes, vector_size_dividing};

/// Units per cube for the backward (elementwise) kernel.
const BACKWARD_CUBE: usize = 256;
/// Upper bound on units per cube for the forward (row-reduction) kernel.
const FORWARD_CUBE_MAX: usize = 256;

/// The element type of a target-id buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdType {
    /// 32-bit signed ids (burn's default int on wgpu and CUDA).
    I32,
    /// 64-bit signed ids.
    I64,
    /// 32-bit unsigned ids.
    U32,
}

/// The shape of one token-logprob problem: `rows` tokens over a vocabulary of `vocab` logits.
///
/// Invariant: both are at least 1 (checked by [`Problem::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    rows: usize,
    vocab: usize,
}

impl Problem {
    /// A problem of `rows` tokens and `vocab` logits each; both must be at least 1.
    pub fn new(rows: usize, vocab: usize) -> Result<Self, KernelError> {
        if rows == 0 {
            return Err(KernelError::EmptyDimension {
                what: "number of tokens (B·T)",
            });
        }
        if vocab == 0 {
            return Err(KernelError::EmptyDimension {
                what: "vocabulary size",
            });
        }
        if vocab > i32::MAX as usize {
            return Err(KernelError::TooLarge {
                what: "vocabulary",
                bytes: vocab as u64,
                limit: i32::MAX as u64,
                device: "any (target ids are compared as i32)".into(),
            });
        }
        Ok(Self { rows, vocab })
    }

    /// Number of tokens.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Bytes of the f32 logits (and of their gradient).
    pub fn logits_bytes(&self) -> u64 {
        self.rows as u64 * self.vocab as u64 * 4
    }

    /// Bytes the forward pass must move at least: the logits once, the ids, and two f32 outputs.
    pub fn forward_bytes(&self) -> u64 {
        self.logits_bytes() + self.rows as u64 * (4 + 8)
    }

    /// Floating-point operations of the forward pass, counting one exp as one op (≈ 4 per logit).
    pub fn forward_flops(&self) -> u64 {
        self.rows as u64 * self.vocab as u64 * 4
    }
}

/// Fails with [`KernelError::TooLarge`] when the logits exceed what `client` binds in one buffer
/// (wgpu: `max_storage_buffer_binding_size`, 128 MiB by default). CUDA takes any size.
pub fn check_fits<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
) -> Result<(), KernelError> {
    let limit = max_buffer_bytes(client);
    if problem.logits_bytes() > limit {
        return Err(KernelError::TooLarge {
            what: "the logits",
            bytes: problem.logits_bytes(),
            limit,
            device: R::name(client).to_string(),
        });
    }
    Ok(())
}

/// Fails with [`KernelError::TargetOutOfRange`] naming the first id outside `[0, vocab)`.
pub fn check_targets(targets: &[i64], vocab: usize) -> Result<(), KernelError> {
    match targets
        .iter()
        .position(|&t| t < 0 || t as u64 >= vocab as u64)
    {
        Some(position) => Err(KernelError::TargetOutOfRange {
            position,
            id: targets[position],
            vocab,
        }),
        None => Ok(()),
    }
}

/// The outputs of [`forward`]: two f32 buffers of `rows` elements each.
pub struct ForwardOutput {
    /// `log_softmax(logits)[target]` per row.
    pub logprobs: Handle,
    /// `logsumexp(logits)` per row, kept for the backward pass.
    pub lse: Handle,
}

/// Runs the fused forward kernel on `client`.
///
/// `logits`: f32 `[rows, vocab]` contiguous; `targets`: `[rows]` ids of type `ids`, each in
/// `[0, vocab)` (check them with [`check_targets`] where they come from users: an id outside the
/// range leaves its row's output unwritten). Returns handles to `logprobs [rows]` and `lse [rows]`.
pub fn forward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
) -> Result<ForwardOutput, KernelError> {
    check_fits(client, problem)?;
    let rows = problem.rows;
    let logprobs = client.empty(rows * 4);
    let lse = client.empty(rows * 4);
    launch_forward(
        client,
        problem,
        logits,
        targets,
        ids,
        logprobs.clone(),
        lse.clone(),
    );
    Ok(ForwardOutput { logprobs, lse })
}

/// Runs the backward kernel: returns `grad_logits [rows, vocab]` (f32) for upstream gradients
/// `grad_out [rows]`, given the `lse` saved by [`forward`].
pub fn backward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    lse: Handle,
    grad_out: Handle,
) -> Result<Handle, KernelError> {
    backward_weighted(
        client,
        problem,
        logits,
        targets,
        ids,
        lse,
        grad_out,
        BackwardWeights::LOGPROB,
    )
}

/// The weights of the generalised backward
/// `grad[r, v] = g[r] · (target_weight · 1{v = t_r} + softmax_weight · softmax(logits[r])_v + uniform)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackwardWeights {
    /// Weight of the one-hot target term.
    pub target_weight: f32,
    /// Weight of the softmax term.
    pub softmax_weight: f32,
    /// The constant every column receives.
    pub uniform: f32,
}

impl BackwardWeights {
    /// The gradient of `log_softmax(logits)[t]`: `one_hot − softmax`.
    pub const LOGPROB: Self = Self {
        target_weight: 1.0,
        softmax_weight: -1.0,
        uniform: 0.0,
    };

    /// The gradient of the cross-entropy against `(1 − ε)·one_hot + ε/vocab`:
    /// `softmax − (1 − ε)·one_hot − ε/vocab`.
    pub fn cross_entropy(smoothing: f32, vocab: usize) -> Self {
        Self {
            target_weight: -(1.0 - smoothing),
            softmax_weight: 1.0,
            uniform: -smoothing / vocab as f32,
        }
    }
}

/// [`backward`] with general [`BackwardWeights`]; rows whose target lies outside `[0, vocab)` get
/// no target term (cross-entropy's ignored rows, whose `grad_out` is 0).
#[allow(clippy::too_many_arguments)]
pub fn backward_weighted<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    lse: Handle,
    grad_out: Handle,
    weights: BackwardWeights,
) -> Result<Handle, KernelError> {
    check_fits(client, problem)?;
    let grad = client.empty(problem.logits_bytes() as usize);
    launch_backward(
        client,
        problem,
        logits,
        targets,
        ids,
        lse,
        grad_out,
        grad.clone(),
        weights,
    );
    Ok(grad)
}

/// Launches `kernel::$name` with the target-id element type of `$ids` as its first generic.
#[macro_export]
#[doc(hidden)]
macro_rules! launch_by_id {
    ($ids:expr, $r:ty, $name:ident, $($arg:expr),+ $(,)?) => {
        match $ids {
            IdType::I32 => kernel::$name::launch_unchecked::<i32, $r>($($arg),+),
            IdType::I64 => kernel::$name::launch_unchecked::<i64, $r>($($arg),+),
            IdType::U32 => kernel::$name::launch_unchecked::<u32, $r>($($arg),+),
        }
    };
}

/// Launch geometry of a row-reduction kernel on [`kernel::row_stats`]: one cube per row.
pub(crate) struct RowGeometry {
    /// Vector width (f32 elements per load), dividing `vocab`.
    pub width: usize,
    /// Vectors per row.
    pub vecs: usize,
    /// Units per cube (a power of two, at most the row's vector count rounded up).
    pub cube: usize,
    /// One cube per row, spilling from x into y.
    pub count: CubeCount,
    /// `cube` units along x.
    pub dim: CubeDim,
}

impl RowGeometry {
    /// The geometry of `problem` on `client`.
    pub fn of<R: Runtime>(client: &ComputeClient<R>, problem: Problem) -> Self {
        let width = vector_size_dividing(client, 4, problem.vocab);
        let vecs = problem.vocab / width;
        let cube = cube_size_pow2(client, FORWARD_CUBE_MAX.min(vecs.next_power_of_two()));
        Self {
            width,
            vecs,
            cube,
            count: grid_1d(client, problem.rows),
            dim: CubeDim::new_1d(cube as u32),
        }
    }
}

/// Launches the forward kernel. Assumes validated input (see [`forward`]).
pub(crate) fn launch_forward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    logprobs: Handle,
    lse: Handle,
) {
    let Problem { rows, vocab } = problem;
    let RowGeometry {
        width,
        vecs,
        cube,
        count,
        dim,
    } = RowGeometry::of(client, problem);
    // SAFETY: lengths match the buffers `forward` allocated and the validated problem: logits hold
    // rows·vocab f32 (rows·vocab/width vectors), targets and the outputs `rows` elements.
    unsafe {
        let logits = ArrayArg::from_raw_parts(logits, rows * vecs);
        let out = ArrayArg::from_raw_parts(logprobs, rows);
        let lse = ArrayArg::from_raw_parts(lse, rows);
        let targets = ArrayArg::from_raw_parts(targets, rows);
        launch_by_id!(
            ids,
            R,
            token_logprob_forward_kernel,
            client,
            count,
            dim,
            width,
            logits,
            targets,
            out,
            lse,
            rows as u32,
            vocab as u32,
            cube,
        );
    }
}

/// Launches the backward kernel. Assumes validated input (see [`backward`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_backward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    lse: Handle,
    grad_out: Handle,
    grad: Handle,
    weights: BackwardWeights,
) {
    let Problem { rows, vocab } = problem;
    let width = vector_size_dividing(client, 4, vocab);
    let vecs = rows * (vocab / width);
    let cube = cube_size_pow2(client, BACKWARD_CUBE);
    let count = grid_1d(client, vecs.div_ceil(cube));
    let dim = CubeDim::new_1d(cube as u32);
    // SAFETY: as in `launch_forward`; `grad` holds rows·vocab f32 (rows·vocab/width vectors).
    unsafe {
        kernel::token_logprob_backward_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            width,
            ArrayArg::from_raw_parts(logits, vecs),
            ArrayArg::from_raw_parts(lse, rows),
            ArrayArg::from_raw_parts(grad_out.clone(), rows),
            ArrayArg::from_raw_parts(grad.clone(), vecs),
            rows as u32,
            vocab as u32,
            weights.softmax_weight,
            weights.uniform,
        );
    }
    let row_cube = cube_size_pow2(client, BACKWARD_CUBE.min(rows.next_power_of_two()));
    let count = grid_1d(client, rows.div_ceil(row_cube));
    let dim = CubeDim::new_1d(row_cube as u32);
    // SAFETY: targets and grad_out hold `rows` elements, grad rows·vocab f32, ids < vocab.
    unsafe {
        let targets = ArrayArg::from_raw_parts(targets, rows);
        let grad_out = ArrayArg::from_raw_parts(grad_out, rows);
        let grad = ArrayArg::from_raw_parts(grad, rows * vocab);
        launch_by_id!(
            ids,
            R,
            token_logprob_backward_target_kernel,
            client,
            count,
            dim,
            targets,
            grad_out,
            grad,
            rows as u32,
            vocab as u32,
            weights.target_weight,
        );
    }
}

/// Plain-Rust reference of the forward pass, accumulating in f64.
///
/// `logits`: `[rows, vocab]` row-major; `targets`: `[rows]`, each in `[0, vocab)`.
/// Returns `(logprobs [rows], lse [rows])`.
///
/// # Panics
/// If the lengths disagree or a target is out of range (a programmer error in a test).
pub fn forward_reference(logits: &[f32], targets: &[i64], vocab: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "logits must be [rows, vocab]"
    );
    let mut logprobs = Vec::with_capacity(targets.len());
    let mut lses = Vec::with_capacity(targets.len());
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let s: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
        let lse = m + s.ln();
        let t = usize::try_from(t).expect("target id must be non-negative");
        logprobs.push((row[t] as f64 - lse) as f32);
        lses.push(lse as f32);
    }
    (logprobs, lses)
}

/// Plain-Rust reference of the backward pass:
/// `grad[r, v] = g[r] · (1{v = t_r} − exp(logits[r, v] − lse[r]))`, in f64, with `lse` recomputed
/// in f64 (not taken from a kernel).
pub fn backward_reference(
    logits: &[f32],
    targets: &[i64],
    grad_out: &[f32],
    vocab: usize,
) -> Vec<f32> {
    assert_eq!(grad_out.len(), targets.len(), "grad_out must be [rows]");
    let mut grad = Vec::with_capacity(logits.len());
    for ((row, &t), &g) in logits.chunks_exact(vocab).zip(targets).zip(grad_out) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        for (v, &x) in row.iter().enumerate() {
            let one_hot = if v as i64 == t { 1.0 } else { 0.0 };
            grad.push((g as f64 * (one_hot - (x as f64 - lse).exp())) as f32);
        }
    }
    grad
}
