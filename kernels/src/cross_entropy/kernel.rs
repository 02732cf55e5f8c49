//! The cubecl kernel of the fused cross-entropy forward. It shares the per-row online
//! log-sum-exp of the token-logprob family ([`crate::token_logprob::kernel::row_stats`]); the
//! backward is the token-logprob backward with cross-entropy's weights
//! ([`crate::token_logprob::backward_weighted`]).

use cubecl::prelude::*;

use crate::token_logprob::kernel::row_stats;

/// Forward: one cube per row of `logits [rows, vocab]` (vectors of `N` f32). With `m`, `ln_s` and
/// `gap = m − Σ_v logits[v] / vocab` from [`row_stats`] and `t = targets[row]`:
/// - ignored rows (`t == ignore_index`): `loss[row] = 0`;
/// - otherwise `nll = lse − logits[t] = ln_s − (logits[t] − m)` and, with label smoothing ε
///   (`smooth` comptime, `eps` its value), `loss[row] = (1 − ε)·nll + ε·(ln_s + gap)`, where
///   `ln_s + gap = lse − Σ_v logits[v] / vocab`: the cross-entropy against the target distribution
///   `(1 − ε)·one_hot(t) + ε/vocab` (PyTorch's definition). Every term is formed relative to `m`,
///   never through an `lse` rounded at the logits' magnitude.
///
/// `lse[row] = m + ln_s` is written for the backward. Assumes validated input: every `t` is in
/// `[0, vocab)` or equals `ignore_index`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward_kernel<I: Int, N: Size>(
    logits: &Array<Vector<f32, N>>,
    targets: &Array<I>,
    loss_out: &mut Array<f32>,
    lse_out: &mut Array<f32>,
    rows: u32,
    vocab: u32,
    ignore_index: i32,
    eps: f32,
    #[comptime] cube_size: usize,
    #[comptime] smooth: bool,
) {
    let row = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    // Uniform across the cube (one row per cube), so no unit skips a barrier.
    if row >= rows as usize {
        terminate!();
    }
    let vecs_per_row = vocab as usize / N::value();
    let target = i32::cast_from(targets[row]);
    let ignored = target == ignore_index;
    let (m, ln_s, target_logit, holds_target, gap) = row_stats::<N>(
        logits,
        row * vecs_per_row,
        vecs_per_row,
        target,
        cube_size,
        smooth,
    );
    if UNIT_POS_X == 0 {
        lse_out[row] = m + ln_s;
        if ignored {
            loss_out[row] = 0.0;
        }
    }
    if holds_target && !ignored {
        let nll = ln_s - (target_logit - m);
        let mut loss = nll;
        if smooth {
            loss = (1.0 - eps) * nll + eps * (ln_s + gap);
        }
        loss_out[row] = loss;
    }
}
