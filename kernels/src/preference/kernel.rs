//! The cubecl kernels of the preference family. They assume validated input (see
//! [`super::masked_row_sums`] and [`super::dpo_pairs`]): masks of exactly 0/1 with a valid token in
//! every row, finite values at valid positions, buffers of the stated lengths.

use cubecl::prelude::*;

/// `log σ(x) = min(x, 0) − ln(1 + e^{−|x|})`, stable for every finite `x` (no `exp` overflows).
#[cube]
pub fn log_sigmoid(x: f32) -> f32 {
    let neg_abs = -x.abs();
    min(x, 0.0f32) - neg_abs.exp().log1p()
}

/// Masked row sums: one cube per row of `values [rows, time]`;
/// `out[r] = Σ_t values[r, t]` over the `t` with `mask[r, t] == 1` (masked positions are not
/// read into the sum, so padding may hold NaN); with `masked == false` the mask is not read and
/// every position counts. Each unit sums a strided slice; the cube merges the partial sums
/// through shared memory (a tree over `cube_size`, a power of two).
///
/// Grid: rows may spill from x into y (see `crate::launch::grid_1d`).
#[cube(launch_unchecked)]
pub fn masked_row_sum_kernel(
    values: &Array<f32>,
    mask: &Array<f32>,
    out: &mut Array<f32>,
    rows: u32,
    time: u32,
    #[comptime] cube_size: usize,
    #[comptime] masked: bool,
) {
    let row = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    // Uniform across the cube (all units share the row): no unit skips a barrier.
    if row >= rows as usize {
        terminate!();
    }
    let unit = UNIT_POS_X as usize;
    let base = row * time as usize;
    let mut acc = 0.0f32;
    let mut t = unit;
    while t < time as usize {
        if masked {
            if mask[base + t] == 1.0f32 {
                acc += values[base + t];
            }
        } else {
            acc += values[base + t];
        }
        t += cube_size;
    }
    let mut smem = SharedMemory::<f32>::new(cube_size);
    smem[unit] = acc;
    sync_cube();
    let mut stride = (CUBE_DIM_X / 2) as usize;
    while stride > 0 {
        if unit < stride {
            smem[unit] += smem[unit + stride];
        }
        sync_cube();
        stride /= 2;
    }
    if unit == 0 {
        out[row] = smem[0];
    }
}

/// DPO per pair: one unit per pair `p < pairs`, with the chosen sequence at `p` and the rejected
/// one at `pairs + p` of `policy [2·pairs]` and `reference [2·pairs]` (summed log-probs).
///
/// - `rewards[s] = β (policy[s] − reference[s])` (the implicit rewards);
/// - `z = rewards[p] − rewards[pairs + p] = β h`, `h` the DPO margin;
/// - `losses[p] = −(1 − ε) log σ(z) − ε log σ(−z)` (conservative DPO; plain DPO at `ε = 0`);
/// - `grads[p] = ∂ℓ/∂ policy[p] = −β [(1 − ε) σ(−z) − ε σ(z)]`, `grads[pairs + p] = −grads[p]`
///   (each pair's own loss; a mean over pairs scales them by `1/pairs` upstream).
#[cube(launch_unchecked)]
pub fn dpo_pairs_kernel(
    policy: &Array<f32>,
    reference: &Array<f32>,
    losses: &mut Array<f32>,
    rewards: &mut Array<f32>,
    grads: &mut Array<f32>,
    pairs: u32,
    beta: f32,
    smoothing: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let p = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if p >= pairs as usize {
        terminate!();
    }
    let r = p + pairs as usize;
    let reward_c = beta * (policy[p] - reference[p]);
    let reward_r = beta * (policy[r] - reference[r]);
    let z = reward_c - reward_r;
    let ls_pos = log_sigmoid(z);
    let ls_neg = log_sigmoid(-z);
    let mut loss = -(1.0f32 - smoothing) * ls_pos;
    if smoothing > 0.0f32 {
        loss -= smoothing * ls_neg;
    }
    let g = -beta * ((1.0f32 - smoothing) * ls_neg.exp() - smoothing * ls_pos.exp());
    losses[p] = loss;
    rewards[p] = reward_c;
    rewards[r] = reward_r;
    grads[p] = g;
    grads[r] = -g;
}
