//! PPO's per-token kernels for RLHF: KL-penalised rewards, GAE as a reverse scan per sequence,
//! advantage whitening over the valid tokens, and the clipped policy and value losses with their
//! gradients.
//!
//! Every array is row-major `[rows, time]` f32 with a 0/1 mask of valid (response) tokens under
//! the [mask rules](crate::sequences). The equations (as in TRL / OpenRLHF, which the paper arXiv
//! 2404.10719 builds on):
//!
//! ```text
//! r_t = −κ (log π_t − log π_ref,t)  (+ score at the last valid token)          kl_rewards
//! δ_t = r_t + γ V_{t'} − V_t,  A_t = δ_t + γλ A_{t'},  R_t = A_t + V_t          gae (t' = next valid)
//! Â_t = (A_t − mean A) / sqrt(var A + 1e-8)   (population variance)            whiten
//! L_π = mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1 ± ε)),  ρ_t = exp(log π_t − log π_old,t)
//! L_V = ½ mean_t max((V_t − R_t)², (clip(V_t, V_old,t ± ε_v) − R_t)²)          clipped_losses
//! ```
//!
//! The plain-Rust references are `claimbench_dpo_ppo::{kl_penalised_rewards, gae, whiten,
//! policy_loss, value_loss}` (f64): the kernel tests compare against them. Entry points validate
//! the settings; the data rules are checked on the host with [`Rollout::validate`] (or
//! [`SeqShape`]'s checks) where data comes from users, since checking them on the device would
//! cost a read-back.

pub mod kernel;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
use crate::launch::{cube_size_pow2, grid_1d};
use crate::preference::row_sums;
use crate::sequences::{SeqShape, check_finite};

/// The epsilon added to the variance before the square root when whitening.
pub const WHITEN_EPS: f32 = 1e-8;
/// Units per cube of the per-row scans (at most).
const SCAN_CUBE: usize = 64;
/// Units per cube of the elementwise kernels and of the one-cube whitening reduction.
const ELEMENT_CUBE: usize = 256;

/// PPO's settings, [`PpoSettings::default`] the paper's where it states them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpoSettings {
    /// Discount `γ ∈ [0, 1]` (the paper: 1).
    pub gamma: f32,
    /// GAE's `λ ∈ [0, 1]` (the paper: 1).
    pub lambda: f32,
    /// KL penalty coefficient `κ ≥ 0` (the paper: 0.1).
    pub kl_coef: f32,
    /// Policy clip range `ε > 0` (0.2).
    pub clip_eps: f32,
    /// Value clip range `ε_v > 0` (0.2).
    pub value_clip_eps: f32,
}

impl Default for PpoSettings {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            lambda: 1.0,
            kl_coef: 0.1,
            clip_eps: 0.2,
            value_clip_eps: 0.2,
        }
    }
}

fn setting(
    what: &'static str,
    value: f32,
    ok: bool,
    expected: &'static str,
) -> Result<(), KernelError> {
    if ok {
        Ok(())
    } else {
        Err(KernelError::InvalidSetting {
            what,
            value: value.to_string(),
            expected,
        })
    }
}

impl PpoSettings {
    /// Fails naming the first setting out of its range.
    pub fn validate(&self) -> Result<(), KernelError> {
        let unit = |x: f32| (0.0..=1.0).contains(&x);
        setting("γ", self.gamma, unit(self.gamma), "a value in [0, 1]")?;
        setting("λ", self.lambda, unit(self.lambda), "a value in [0, 1]")?;
        setting(
            "KL coefficient",
            self.kl_coef,
            self.kl_coef.is_finite() && self.kl_coef >= 0.0,
            "a finite value ≥ 0",
        )?;
        setting(
            "policy clip ε",
            self.clip_eps,
            self.clip_eps.is_finite() && self.clip_eps > 0.0,
            "a finite value above 0",
        )?;
        setting(
            "value clip ε",
            self.value_clip_eps,
            self.value_clip_eps.is_finite() && self.value_clip_eps > 0.0,
            "a finite value above 0",
        )
    }
}

/// A rollout batch on the host, for validation before upload: `[rows, time]` arrays and `[rows]`
/// scores.
#[derive(Clone, Copy, Debug)]
pub struct Rollout<'a> {
    /// `log π_old` of the sampled tokens.
    pub logprobs: &'a [f32],
    /// `log π_ref` of the sampled tokens.
    pub ref_logprobs: &'a [f32],
    /// Value estimates `V_t`.
    pub values: &'a [f32],
    /// The reward model's (or verifier's) score per sequence.
    pub scores: &'a [f32],
    /// 0/1 mask of valid tokens.
    pub mask: &'a [f32],
}

impl Rollout<'_> {
    /// Checks the mask rules, the lengths, and that every value at a valid position and every
    /// score is finite (a NaN reward is refused here, not propagated into the advantages).
    /// Returns the number of valid tokens.
    pub fn validate(&self, shape: SeqShape) -> Result<usize, KernelError> {
        let n = shape.check_mask(self.mask)?;
        shape.check_valid_finite("logprobs", self.logprobs, self.mask)?;
        shape.check_valid_finite("ref_logprobs", self.ref_logprobs, self.mask)?;
        shape.check_valid_finite("values", self.values, self.mask)?;
        if self.scores.len() != shape.rows {
            return Err(KernelError::BatchMismatch {
                what: "scores vs sequences",
                left: self.scores.len(),
                right: shape.rows,
            });
        }
        check_finite("scores", self.scores)?;
        Ok(n)
    }
}

/// One unit per row: the launch geometry of the per-row scans.
fn per_row<R: Runtime>(client: &ComputeClient<R>, rows: usize) -> (CubeCount, CubeDim) {
    let cube = cube_size_pow2(client, SCAN_CUBE.min(rows.next_power_of_two()));
    (
        grid_1d(client, rows.div_ceil(cube)),
        CubeDim::new_1d(cube as u32),
    )
}

/// One unit per element: the launch geometry of the elementwise kernels.
fn per_element<R: Runtime>(client: &ComputeClient<R>, len: usize) -> (CubeCount, CubeDim) {
    let cube = cube_size_pow2(client, ELEMENT_CUBE);
    (
        grid_1d(client, len.div_ceil(cube)),
        CubeDim::new_1d(cube as u32),
    )
}

/// KL-penalised per-token rewards `[rows, time]` (see the module docs). `scores` is `[rows]`.
pub fn kl_rewards<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    logprobs: Handle,
    ref_logprobs: Handle,
    scores: Handle,
    mask: Handle,
    settings: PpoSettings,
) -> Result<Handle, KernelError> {
    settings.validate()?;
    let out = client.empty(shape.len() * 4);
    let (count, dim) = per_row(client, shape.rows);
    // SAFETY: the [rows, time] buffers hold rows·time f32, scores `rows`.
    unsafe {
        kernel::kl_rewards_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(logprobs, shape.len()),
            ArrayArg::from_raw_parts(ref_logprobs, shape.len()),
            ArrayArg::from_raw_parts(scores, shape.rows),
            ArrayArg::from_raw_parts(mask, shape.len()),
            ArrayArg::from_raw_parts(out.clone(), shape.len()),
            shape.rows as u32,
            shape.time as u32,
            settings.kl_coef,
        );
    }
    Ok(out)
}

/// The outputs of [`gae`]: `[rows, time]` f32, 0 at masked positions.
pub struct GaeHandles {
    /// `A_t`.
    pub advantages: Handle,
    /// `R_t = A_t + V_t`.
    pub returns: Handle,
}

/// GAE over each row's valid tokens (see the module docs): one launch, one unit per sequence.
pub fn gae<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    rewards: Handle,
    values: Handle,
    mask: Handle,
    settings: PpoSettings,
) -> Result<GaeHandles, KernelError> {
    settings.validate()?;
    let advantages = client.empty(shape.len() * 4);
    let returns = client.empty(shape.len() * 4);
    let (count, dim) = per_row(client, shape.rows);
    // SAFETY: every buffer holds rows·time f32.
    unsafe {
        kernel::gae_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(rewards, shape.len()),
            ArrayArg::from_raw_parts(values, shape.len()),
            ArrayArg::from_raw_parts(mask, shape.len()),
            ArrayArg::from_raw_parts(advantages.clone(), shape.len()),
            ArrayArg::from_raw_parts(returns.clone(), shape.len()),
            shape.rows as u32,
            shape.time as u32,
            settings.gamma,
            settings.lambda,
        );
    }
    Ok(GaeHandles {
        advantages,
        returns,
    })
}

/// Whitens `values [rows, time]` over the valid tokens of the whole batch → `[rows, time]`, 0 at
/// masked positions: a one-cube two-pass reduction for `(μ, 1/sqrt(σ² + 1e-8))`, then one
/// elementwise pass.
pub fn whiten<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    values: Handle,
    mask: Handle,
) -> Handle {
    let stats = client.empty(2 * 4);
    let out = client.empty(shape.len() * 4);
    let cube = cube_size_pow2(client, ELEMENT_CUBE);
    // SAFETY: values and mask hold rows·time f32, stats 2.
    unsafe {
        kernel::whiten_stats_kernel::launch_unchecked::<R>(
            client,
            CubeCount::Static(1, 1, 1),
            CubeDim::new_1d(cube as u32),
            ArrayArg::from_raw_parts(values.clone(), shape.len()),
            ArrayArg::from_raw_parts(mask.clone(), shape.len()),
            ArrayArg::from_raw_parts(stats.clone(), 2),
            shape.len() as u32,
            WHITEN_EPS,
            cube,
        );
    }
    let (count, dim) = per_element(client, shape.len());
    // SAFETY: as above; out holds rows·time f32.
    unsafe {
        kernel::whiten_apply_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(values, shape.len()),
            ArrayArg::from_raw_parts(mask, shape.len()),
            ArrayArg::from_raw_parts(stats, 2),
            ArrayArg::from_raw_parts(out.clone(), shape.len()),
            shape.len() as u32,
        );
    }
    out
}

/// The inputs of [`clipped_losses`], all `[rows, time]` f32.
pub struct LossInputs {
    /// `log π` under the policy being trained.
    pub logprobs: Handle,
    /// `log π_old` at rollout time.
    pub old_logprobs: Handle,
    /// Advantages (whitened or not).
    pub advantages: Handle,
    /// `V` under the value model being trained.
    pub values: Handle,
    /// `V_old` at rollout time.
    pub old_values: Handle,
    /// Returns `R`.
    pub returns: Handle,
    /// 0/1 mask of valid tokens.
    pub mask: Handle,
}

/// The outputs of [`clipped_losses`].
pub struct LossHandles {
    /// `[L_π, L_V, policy clip fraction, value clip fraction]`, f32.
    pub totals: Handle,
    /// `∂L_π/∂ log π`, `[rows, time]`.
    pub policy_grad: Handle,
    /// `∂L_V/∂V`, `[rows, time]`.
    pub value_grad: Handle,
}

/// PPO's clipped policy and value losses and their gradients (see the module docs and
/// [`kernel::ppo_losses_kernel`]); `n_valid` is the number of valid tokens (from
/// [`SeqShape::check_mask`] or [`Rollout::validate`]). One elementwise launch and one row-sum
/// launch over the four per-token term rows.
pub fn clipped_losses<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    inputs: LossInputs,
    n_valid: usize,
    settings: PpoSettings,
) -> Result<LossHandles, KernelError> {
    settings.validate()?;
    if n_valid == 0 || n_valid > shape.len() {
        return Err(KernelError::InvalidSetting {
            what: "number of valid tokens",
            value: n_valid.to_string(),
            expected: "between 1 and rows × time (count them with SeqShape::check_mask)",
        });
    }
    let len = shape.len();
    let terms = client.empty(4 * len * 4);
    let policy_grad = client.empty(len * 4);
    let value_grad = client.empty(len * 4);
    let (count, dim) = per_element(client, len);
    // SAFETY: the inputs and the gradients hold `len` f32, terms 4·len.
    unsafe {
        kernel::ppo_losses_kernel::launch_unchecked::<R>(
            client,
            count,
            dim,
            ArrayArg::from_raw_parts(inputs.logprobs, len),
            ArrayArg::from_raw_parts(inputs.old_logprobs, len),
            ArrayArg::from_raw_parts(inputs.advantages, len),
            ArrayArg::from_raw_parts(inputs.values, len),
            ArrayArg::from_raw_parts(inputs.old_values, len),
            ArrayArg::from_raw_parts(inputs.returns, len),
            ArrayArg::from_raw_parts(inputs.mask, len),
            ArrayArg::from_raw_parts(terms.clone(), 4 * len),
            ArrayArg::from_raw_parts(policy_grad.clone(), len),
            ArrayArg::from_raw_parts(value_grad.clone(), len),
            len as u32,
            1.0 / n_valid as f32,
            settings.clip_eps,
            settings.value_clip_eps,
        );
    }
    let totals = row_sums(client, SeqShape::new(4, len)?, terms);
    Ok(LossHandles {
        totals,
        policy_grad,
        value_grad,
    })
}

/// The host loop a user without the kernel writes, in f32 as the kernel computes: GAE over each
/// row's valid tokens of host arrays (see [`gae`]). Returns `(advantages, returns)`. The
/// benchmark's baseline (after reading the inputs back from the device); the f64 reference is
/// `claimbench_dpo_ppo::gae`.
pub fn gae_host(
    rewards: &[f32],
    values: &[f32],
    mask: &[f32],
    shape: SeqShape,
    settings: PpoSettings,
) -> (Vec<f32>, Vec<f32>) {
    let mut advantages = vec![0.0f32; shape.len()];
    let mut returns = vec![0.0f32; shape.len()];
    let gl = settings.gamma * settings.lambda;
    for row in 0..shape.rows {
        let (mut next_value, mut next_adv) = (0.0f32, 0.0f32);
        for i in (row * shape.time..(row + 1) * shape.time).rev() {
            if mask[i] != 1.0 {
                continue;
            }
            let a = rewards[i] + settings.gamma * next_value - values[i] + gl * next_adv;
            advantages[i] = a;
            returns[i] = a + values[i];
            next_value = values[i];
            next_adv = a;
        }
    }
    (advantages, returns)
}
