//! Fused cross-entropy over logits `[rows, vocab]` with integer targets `[rows]`: an ignore index
//! and optional label smoothing ε, mean over the rows that are not ignored.
//!
//! With `lse_r = log Σ_v exp(x_rv)` and `t_r` the target of row `r` (valid rows `V`, `n = |V|`):
//! - per row: `ℓ_r = (1 − ε)(lse_r − x_{r t_r}) + ε (lse_r − (1/vocab) Σ_v x_rv)` (0 if ignored);
//! - loss: `L = (1/n) Σ_{r ∈ V} ℓ_r`;
//! - backward, for `g_r = ∂L/∂ℓ_r` (`= g/n` on valid rows, 0 on ignored ones):
//!   `∂L/∂x_rv = g_r (softmax(x_r)_v − (1 − ε) 1{v = t_r} − ε/vocab)`.
//!
//! One pass over the logits each way: the forward is one cube per row sharing the token-logprob
//! family's online log-sum-exp ([`crate::token_logprob::kernel::row_stats`]), writing `ℓ_r` and
//! `lse_r`. It forms `lse_r − x_{r t_r} = ln_s_r − (x_{r t_r} − m_r)` and
//! `lse_r − mean_v x_rv = ln_s_r + (m_r − mean_v x_rv)` (`m_r` the row max, `ln_s_r =
//! ln Σ_v exp(x_rv − m_r)`), never `lse_r` rounded at the logits' magnitude first; the backward is the token-logprob backward with [`BackwardWeights::cross_entropy`].
//! The mean over `rows` values is the caller's (a burn `sum`, or the reference's).

pub mod kernel;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
use crate::token_logprob::{
    BackwardWeights, ForwardOutput, IdType, Problem, RowGeometry, backward_weighted, check_fits,
};

/// The options of a cross-entropy: which target id is ignored, and the label smoothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Rows whose target equals this id add nothing and are not counted (PyTorch: -100).
    pub ignore_index: i64,
    /// Label smoothing ε in `[0, 1]`.
    pub smoothing: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ignore_index: -100,
            smoothing: 0.0,
        }
    }
}

impl Settings {
    /// Fails unless ε is finite and in `[0, 1]` and the ignore index fits in i32.
    pub fn validate(&self) -> Result<(), KernelError> {
        if !self.smoothing.is_finite() || !(0.0..=1.0).contains(&self.smoothing) {
            return Err(KernelError::InvalidSetting {
                what: "label smoothing",
                value: self.smoothing.to_string(),
                expected: "a value in [0, 1]",
            });
        }
        if i32::try_from(self.ignore_index).is_err() {
            return Err(KernelError::InvalidSetting {
                what: "ignore index",
                value: self.ignore_index.to_string(),
                expected: "an i32",
            });
        }
        Ok(())
    }
}

/// Checks every target is in `[0, vocab)` or the ignore index; returns the number of rows that
/// count (`n`). No counted row is an error: the mean would be 0/0.
pub fn check_targets(targets: &[i64], vocab: usize, s: Settings) -> Result<usize, KernelError> {
    s.validate()?;
    let mut n = 0;
    for (position, &t) in targets.iter().enumerate() {
        if t == s.ignore_index {
            continue;
        }
        if t < 0 || t as u64 >= vocab as u64 {
            return Err(KernelError::TargetOutOfRange {
                position,
                id: t,
                vocab,
            });
        }
        n += 1;
    }
    if n == 0 {
        return Err(KernelError::NothingToAverage {
            rows: targets.len(),
            ignore_index: s.ignore_index,
        });
    }
    Ok(n)
}

/// Runs the fused forward on `client`: per-row losses `ℓ [rows]` and `lse [rows]` (in
/// [`ForwardOutput::logprobs`]' place: `logprobs` holds `ℓ`). Targets must pass [`check_targets`].
pub fn forward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    s: Settings,
) -> Result<ForwardOutput, KernelError> {
    s.validate()?;
    check_fits(client, problem)?;
    let (rows, vocab) = (problem.rows(), problem.vocab());
    let loss = client.empty(rows * 4);
    let lse = client.empty(rows * 4);
    let RowGeometry {
        width,
        vecs,
        cube,
        count,
        dim,
    } = RowGeometry::of(client, problem);
    let smooth = s.smoothing > 0.0;
    // SAFETY: lengths match the validated problem and the buffers allocated above: logits hold
    // rows·vocab f32 (rows·vocab/width vectors), targets and the outputs `rows` elements.
    unsafe {
        let logits = ArrayArg::from_raw_parts(logits, rows * vecs);
        let targets = ArrayArg::from_raw_parts(targets, rows);
        let out = ArrayArg::from_raw_parts(loss.clone(), rows);
        let lse_arg = ArrayArg::from_raw_parts(lse.clone(), rows);
        crate::launch_by_id!(
            ids,
            R,
            cross_entropy_forward_kernel,
            client,
            count,
            dim,
            width,
            logits,
            targets,
            out,
            lse_arg,
            rows as u32,
            vocab as u32,
            s.ignore_index as i32,
            s.smoothing,
            cube,
            smooth,
        );
    }
    Ok(ForwardOutput {
        logprobs: loss,
        lse,
    })
}

/// Runs the backward: `grad_logits [rows, vocab]` for per-row upstream gradients
/// `row_grad [rows]` (`∂L/∂ℓ_r`: `g/n` on counted rows, 0 on ignored ones), given the `lse` of
/// [`forward`].
#[allow(clippy::too_many_arguments)]
pub fn backward<R: Runtime>(
    client: &ComputeClient<R>,
    problem: Problem,
    logits: Handle,
    targets: Handle,
    ids: IdType,
    lse: Handle,
    row_grad: Handle,
    s: Settings,
) -> Result<Handle, KernelError> {
    s.validate()?;
    backward_weighted(
        client,
        problem,
        logits,
        targets,
        ids,
        lse,
        row_grad,
        BackwardWeights::cross_entropy(s.smoothing, problem.vocab()),
    )
}

/// Plain-Rust reference, in f64: `(per-row losses ℓ [rows], mean loss L)`. Ignored rows have
/// `ℓ = 0`.
///
/// # Panics
/// If the lengths disagree, a target is out of range, or no row counts (programmer errors in a
/// test; users get [`check_targets`]' errors).
pub fn forward_reference(
    logits: &[f32],
    targets: &[i64],
    vocab: usize,
    s: Settings,
) -> (Vec<f32>, f64) {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "logits must be [rows, vocab]"
    );
    let eps = s.smoothing as f64;
    let mut rows = Vec::with_capacity(targets.len());
    let (mut total, mut n) = (0.0f64, 0usize);
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t == s.ignore_index {
            rows.push(0.0);
            continue;
        }
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        let mean = row.iter().map(|&x| x as f64).sum::<f64>() / vocab as f64;
        let t = usize::try_from(t).expect("target id must be non-negative");
        let l = (1.0 - eps) * (lse - row[t] as f64) + eps * (lse - mean);
        rows.push(l as f32);
        total += l;
        n += 1;
    }
    assert!(n > 0, "no row counts");
    (rows, total / n as f64)
}

/// Plain-Rust reference of `∂(g·L)/∂logits`, in f64: `(g/n)(softmax − (1 − ε)one_hot − ε/vocab)`
/// on counted rows, 0 on ignored ones.
pub fn backward_reference(
    logits: &[f32],
    targets: &[i64],
    g: f32,
    vocab: usize,
    s: Settings,
) -> Vec<f32> {
    let eps = s.smoothing as f64;
    let n = targets.iter().filter(|&&t| t != s.ignore_index).count();
    assert!(n > 0, "no row counts");
    let scale = g as f64 / n as f64;
    let mut grad = Vec::with_capacity(logits.len());
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t == s.ignore_index {
            grad.extend(std::iter::repeat_n(0.0f32, vocab));
            continue;
        }
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        for (v, &x) in row.iter().enumerate() {
            let one_hot = if v as i64 == t { 1.0 } else { 0.0 };
            let d = (x as f64 - lse).exp() - (1.0 - eps) * one_hot - eps / vocab as f64;
            grad.push((scale * d) as f32);
        }
    }
    grad
}
