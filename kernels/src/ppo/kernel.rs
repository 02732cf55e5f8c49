//! The cubecl kernels of the PPO family. They assume validated input (see [`super`]): masks of
//! exactly 0/1 with a valid token in every row, finite values at valid positions, buffers of the
//! stated lengths.

use cubecl::prelude::*;

/// KL-penalised rewards, one unit per row of `[rows, time]`, scanning backwards:
/// `rewards[r, t] = −κ (logprobs[r, t] − ref_logprobs[r, t])` at valid positions (0 at masked
/// ones), plus `scores[r]` at the row's last valid position.
#[cube(launch_unchecked)]
pub fn kl_rewards_kernel(
    logprobs: &Array<f32>,
    ref_logprobs: &Array<f32>,
    scores: &Array<f32>,
    mask: &Array<f32>,
    rewards: &mut Array<f32>,
    rows: u32,
    time: u32,
    kl_coef: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let row = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if row >= rows as usize {
        terminate!();
    }
    let base = row * time as usize;
    let mut seen_last = false;
    let mut t = time as usize;
    while t > 0 {
        t -= 1;
        let i = base + t;
        let mut r = 0.0f32;
        if mask[i] == 1.0f32 {
            r = -kl_coef * (logprobs[i] - ref_logprobs[i]);
            if !seen_last {
                r += scores[row];
                seen_last = true;
            }
        }
        rewards[i] = r;
    }
}

/// GAE as a reverse scan, one unit per row of `[rows, time]`, over the row's valid positions
/// (masked ones are skipped: `γ`, `λ` apply once per valid step):
/// `δ_t = r_t + γ V_{t'} − V_t`, `A_t = δ_t + γλ A_{t'}`, `R_t = A_t + V_t`, with `t'` the next
/// valid position and `V_{t'} = A_{t'} = 0` past the last. Masked positions get 0.
#[cube(launch_unchecked)]
pub fn gae_kernel(
    rewards: &Array<f32>,
    values: &Array<f32>,
    mask: &Array<f32>,
    advantages: &mut Array<f32>,
    returns: &mut Array<f32>,
    rows: u32,
    time: u32,
    gamma: f32,
    lambda: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let row = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if row >= rows as usize {
        terminate!();
    }
    let base = row * time as usize;
    let gl = gamma * lambda;
    let mut next_value = 0.0f32;
    let mut next_adv = 0.0f32;
    let mut t = time as usize;
    while t > 0 {
        t -= 1;
        let i = base + t;
        let mut a = 0.0f32;
        let mut ret = 0.0f32;
        if mask[i] == 1.0f32 {
            let v = values[i];
            a = rewards[i] + gamma * next_value - v + gl * next_adv;
            ret = a + v;
            next_value = v;
            next_adv = a;
        }
        advantages[i] = a;
        returns[i] = ret;
    }
}

/// Whitening statistics in one cube over all `len` positions: `stats = [μ, 1/sqrt(σ² + eps)]`
/// with `μ` the mean and `σ²` the population variance of `values` over the valid positions
/// (two passes: the mean, then the centred squares). Each unit reduces a strided slice; the cube
/// merges through shared memory (a tree over `cube_size`, a power of two).
#[cube(launch_unchecked)]
pub fn whiten_stats_kernel(
    values: &Array<f32>,
    mask: &Array<f32>,
    stats: &mut Array<f32>,
    len: u32,
    eps: f32,
    #[comptime] cube_size: usize,
) {
    let unit = UNIT_POS_X as usize;
    let mut sum = 0.0f32;
    let mut count = 0.0f32;
    let mut i = unit;
    while i < len as usize {
        if mask[i] == 1.0f32 {
            sum += values[i];
            count += 1.0f32;
        }
        i += cube_size;
    }
    let mut s_sum = SharedMemory::<f32>::new(cube_size);
    let mut s_cnt = SharedMemory::<f32>::new(cube_size);
    s_sum[unit] = sum;
    s_cnt[unit] = count;
    sync_cube();
    let mut stride = (CUBE_DIM_X / 2) as usize;
    while stride > 0 {
        if unit < stride {
            s_sum[unit] += s_sum[unit + stride];
            s_cnt[unit] += s_cnt[unit + stride];
        }
        sync_cube();
        stride /= 2;
    }
    let n = s_cnt[0];
    let mean = s_sum[0] / n;
    // Every unit has read the totals before they are overwritten.
    sync_cube();
    let mut sq = 0.0f32;
    i = unit;
    while i < len as usize {
        if mask[i] == 1.0f32 {
            let d = values[i] - mean;
            sq += d * d;
        }
        i += cube_size;
    }
    s_sum[unit] = sq;
    sync_cube();
    stride = (CUBE_DIM_X / 2) as usize;
    while stride > 0 {
        if unit < stride {
            s_sum[unit] += s_sum[unit + stride];
        }
        sync_cube();
        stride /= 2;
    }
    if unit == 0 {
        stats[0] = mean;
        stats[1] = 1.0f32 / (s_sum[0] / n + eps).sqrt();
    }
}

/// Applies whitening, one unit per position: `out = (x − μ)·scale` at valid positions, 0 at
/// masked ones, with `stats = [μ, scale]` from [`whiten_stats_kernel`].
#[cube(launch_unchecked)]
pub fn whiten_apply_kernel(
    values: &Array<f32>,
    mask: &Array<f32>,
    stats: &Array<f32>,
    out: &mut Array<f32>,
    len: u32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let i = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if i >= len as usize {
        terminate!();
    }
    let mut y = 0.0f32;
    if mask[i] == 1.0f32 {
        y = (values[i] - stats[0]) * stats[1];
    }
    out[i] = y;
}

/// PPO's clipped losses per token, one unit per position `i < len`, with `inv_n = 1/N` (`N` valid
/// tokens). Writes four rows of `terms [4, len]`, each already divided by `N` so that a row sum
/// is the batch value:
/// 0. the policy term `max(−A ρ, −A clip(ρ, 1 − ε, 1 + ε))`, `ρ = exp(logπ − logπ_old)`;
/// 1. the value term `½ max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²)`;
/// 2. 1 where the policy's clipped term is strictly larger (clipping binds);
/// 3. 1 where the value's clipped error is strictly larger;
///
/// and the gradients `policy_grad = ∂L_π/∂logπ = −A ρ / N` where the unclipped term is the max
/// (else 0), `value_grad = ∂L_V/∂V = (V − R) / N` where the unclipped error is the max (else 0).
/// Masked positions get 0 everywhere.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn ppo_losses_kernel(
    logprobs: &Array<f32>,
    old_logprobs: &Array<f32>,
    advantages: &Array<f32>,
    values: &Array<f32>,
    old_values: &Array<f32>,
    returns: &Array<f32>,
    mask: &Array<f32>,
    terms: &mut Array<f32>,
    policy_grad: &mut Array<f32>,
    value_grad: &mut Array<f32>,
    len: u32,
    inv_n: f32,
    clip_eps: f32,
    value_clip_eps: f32,
) {
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let i = cube * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if i >= len as usize {
        terminate!();
    }
    let n = len as usize;
    let mut pg = 0.0f32;
    let mut vt = 0.0f32;
    let mut pclip = 0.0f32;
    let mut vclip = 0.0f32;
    let mut pgrad = 0.0f32;
    let mut vgrad = 0.0f32;
    if mask[i] == 1.0f32 {
        let a = advantages[i];
        let rho = (logprobs[i] - old_logprobs[i]).exp();
        let unclipped = -a * rho;
        let clipped = -a * max(min(rho, 1.0f32 + clip_eps), 1.0f32 - clip_eps);
        if clipped > unclipped {
            pg = clipped;
            pclip = 1.0f32;
        } else {
            pg = unclipped;
            pgrad = unclipped * inv_n;
        }
        let v = values[i];
        let r = returns[i];
        let v_old = old_values[i];
        let vc = max(min(v, v_old + value_clip_eps), v_old - value_clip_eps);
        let e1 = (v - r) * (v - r);
        let e2 = (vc - r) * (vc - r);
        if e2 > e1 {
            vt = e2;
            vclip = 1.0f32;
        } else {
            vt = e1;
            vgrad = (v - r) * inv_n;
        }
    }
    terms[i] = pg * inv_n;
    terms[n + i] = 0.5f32 * vt * inv_n;
    terms[2 * n + i] = pclip * inv_n;
    terms[3 * n + i] = vclip * inv_n;
    policy_grad[i] = pgrad;
    value_grad[i] = vgrad;
}
