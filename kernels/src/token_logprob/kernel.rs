//! The cubecl kernels of the token-logprob family. They assume validated input (see
//! [`super::forward`]): `vocab % N == 0`, targets in `[0, vocab)`, buffers of the stated lengths.

use cubecl::prelude::*;

/// Merge two online log-sum-exp states `(m_a, s_a)` and `(m_b, s_b)`, where each state stands for
/// `s · exp(m)`: the merged state is `(m, s_a·exp(m_a − m) + s_b·exp(m_b − m))`, `m = max(m_a, m_b)`.
#[cube]
fn merge_lse(m_a: f32, s_a: f32, m_b: f32, s_b: f32) -> (f32, f32) {
    let m = max(m_a, m_b);
    (m, s_a * (m_a - m).exp() + s_b * (m_b - m).exp())
}

/// The per-row reduction both the token-logprob and the cross-entropy forward kernels run: the
/// cube of `cube_size` units (a power of two) owns one row of `vecs_per_row` vectors starting at
/// vector `base`.
///
/// Each unit runs an online max / sum-exp over a strided set of the row's vectors (one pass over
/// the logits, f32 accumulation) and, when `with_sum`, the sum of the logits relative to the row's
/// first logit `x_0`; the cube merges the unit states through shared memory (a tree over
/// `cube_size`). Returns, for every unit, `(m, ln_s, target_logit, holds_target, gap)`:
/// - `m = max_v x_v` and `ln_s = ln Σ_v exp(x_v − m)` (in `[0, ln vocab]`), kept apart so that
///   callers form `x_t − lse = (x_t − m) − ln_s` without rounding `lse = m + ln_s` at `|m|` first
///   (at |x| ≈ 1e4 that rounding alone is ≈ 5e-4);
/// - `gap = m − (1/vocab)·Σ_v x_v = (m − x_0) − (1/vocab)·Σ_v (x_v − x_0)` (0 unless `with_sum`):
///   summed relative to `x_0`, its error grows with the row's range, not with its magnitude;
/// - `target_logit`, valid only where `holds_target` (the one unit whose slice holds column
///   `target`; none if `target` is outside `[0, vocab)`).
///
/// `m`, `ln_s` and `gap` are the cube's.
#[cube]
pub fn row_stats<N: Size>(
    logits: &Array<Vector<f32, N>>,
    base: usize,
    vecs_per_row: usize,
    target: i32,
    #[comptime] cube_size: usize,
    #[comptime] with_sum: bool,
) -> (f32, f32, f32, bool, f32) {
    let width = N::value();
    let unit = UNIT_POS_X as usize;
    // The running max starts at the most negative finite f32 (WGSL rejects `-inf` literals);
    // `exp(min - m) == 0` for any real `m`, so it acts as `-inf`.
    let mut m = f32::min_value();
    let mut s = 0.0f32;
    let mut sum = 0.0f32;
    let mut target_logit = 0.0f32;
    let mut holds_target = false;
    // The row's first logit, the origin of the sum (the same address for every unit of the cube).
    let mut pivot = 0.0f32;
    if with_sum {
        pivot = logits[base][0];
    }

    let mut c = unit;
    while c < vecs_per_row {
        let v = logits[base + c];
        let mut vmax = v[0];
        #[unroll]
        for k in 1..width {
            vmax = max(vmax, v[k]);
        }
        if vmax > m {
            s *= (m - vmax).exp();
            m = vmax;
        }
        let col0 = (c * width) as i32;
        #[unroll]
        for k in 0..width {
            s += (v[k] - m).exp();
            if with_sum {
                sum += v[k] - pivot;
            }
            if col0 + k as i32 == target {
                target_logit = v[k];
                holds_target = true;
            }
        }
        c += cube_size;
    }

    let mut smem_m = SharedMemory::<f32>::new(cube_size);
    let mut smem_s = SharedMemory::<f32>::new(cube_size);
    let mut smem_sum = SharedMemory::<f32>::new(if with_sum { cube_size } else { 1usize });
    smem_m[unit] = m;
    smem_s[unit] = s;
    if with_sum {
        smem_sum[unit] = sum;
    }
    sync_cube();

    // A runtime copy of the (comptime) cube size: the loop variable must be mutable.
    let mut stride = (CUBE_DIM_X / 2) as usize;
    while stride > 0 {
        if unit < stride {
            let (mm, ss) = merge_lse(
                smem_m[unit],
                smem_s[unit],
                smem_m[unit + stride],
                smem_s[unit + stride],
            );
            smem_m[unit] = mm;
            smem_s[unit] = ss;
            if with_sum {
                smem_sum[unit] += smem_sum[unit + stride];
            }
        }
        sync_cube();
        stride /= 2;
    }

    let row_m = smem_m[0];
    let mut gap = 0.0f32;
    if with_sum {
        let vocab = (vecs_per_row * width) as f32;
        gap = (row_m - pivot) - smem_sum[0] / vocab;
    }
    (row_m, smem_s[0].ln(), target_logit, holds_target, gap)
}

/// Forward: one cube per row of `logits [rows, vocab]` (read as vectors of `N` f32), reduced by
/// [`row_stats`] to `m` and `ln_s`; then `lse[row] = m + ln_s` (for the backward) and
/// `out[row] = log_softmax(logits[row])[t] = (logits[row, t] − m) − ln_s`, subtracting before
/// anything is rounded at the logits' magnitude. The unit whose slice holds the target writes
/// `out[row]`.
///
/// Grid: rows may spill from x into y (see `crate::launch::grid_1d`).
#[cube(launch_unchecked)]
pub fn token_logprob_forward_kernel<I: Int, N: Size>(
    logits: &Array<Vector<f32, N>>,
    targets: &Array<I>,
    out: &mut Array<f32>,
    lse_out: &mut Array<f32>,
    rows: u32,
    vocab: u32,
    #[comptime] cube_size: usize,
) {
    let row = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    // Uniform across the cube: every unit of a cube shares its row, so no unit skips a barrier.
    // (Counts come as arguments: `Array::len` is not reliable on every runtime.)
    if row >= rows as usize {
        terminate!();
    }
    let vecs_per_row = vocab as usize / N::value();
    let target = i32::cast_from(targets[row]);
    let (m, ln_s, target_logit, holds_target, _gap) = row_stats::<N>(
        logits,
        row * vecs_per_row,
        vecs_per_row,
        target,
        cube_size,
        false,
    );
    if holds_target {
        out[row] = (target_logit - m) - ln_s;
    }
    if UNIT_POS_X == 0 {
        lse_out[row] = m + ln_s;
    }
}

/// Backward, first pass: one unit per vector of `grad_logits [rows, vocab]`:
/// `grad[r, v] = g[r] · (softmax_weight · exp(logits[r, v] − lse[r]) + uniform)`, with the f32
/// `lse` the forward stored: rounded at `|lse|` (ε/2 relative), it gives every probability that
/// relative error (≈ 5e-4 at logits near 1e4).
/// Token log-probs use `(−1, 0)`; cross-entropy with label smoothing ε uses `(1, −ε / vocab)`.
/// The target term `g[r]·target_weight` is added by [`token_logprob_backward_target_kernel`].
///
/// Grid: cubes of `CUBE_DIM_X` units, spilling from x into y; surplus units exit.
#[cube(launch_unchecked)]
pub fn token_logprob_backward_kernel<N: Size>(
    logits: &Array<Vector<f32, N>>,
    lse: &Array<f32>,
    grad_out: &Array<f32>,
    grad_logits: &mut Array<Vector<f32, N>>,
    rows: u32,
    vocab: u32,
    softmax_weight: f32,
    uniform: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let idx = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    let vecs_per_row = vocab as usize / N::value();
    if idx >= rows as usize * vecs_per_row {
        terminate!();
    }
    let row = idx / vecs_per_row;
    let g = Vector::<f32, N>::new(grad_out[row]);
    let l = Vector::<f32, N>::new(lse[row]);
    let w = Vector::<f32, N>::new(softmax_weight);
    let u = Vector::<f32, N>::new(uniform);
    grad_logits[idx] = g * (w * (logits[idx] - l).exp() + u);
}

/// Backward, second pass: one unit per row adds `g[r] · target_weight` at `grad[r, t_r]` (the
/// one-hot term; `1` for token log-probs, `−(1 − ε)` for cross-entropy with label smoothing ε), reading the gradient as scalars. Rows whose target lies
/// outside `[0, vocab)` (an ignored row of cross-entropy) are skipped.
#[cube(launch_unchecked)]
pub fn token_logprob_backward_target_kernel<I: Int>(
    targets: &Array<I>,
    grad_out: &Array<f32>,
    grad_logits: &mut Array<f32>,
    rows: u32,
    vocab: u32,
    target_weight: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let row = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if row >= rows as usize {
        terminate!();
    }
    let t = i32::cast_from(targets[row]);
    if t >= 0 && t < vocab as i32 {
        let at = row * vocab as usize + t as usize;
        grad_logits[at] += grad_out[row] * target_weight;
    }
}
