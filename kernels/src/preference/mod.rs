//! Preference-loss kernels: masked per-sequence sums of token log-probabilities and the DPO loss.
//!
//! With token log-probs `ℓ[s, t]` (from [`crate::token_logprob`]) and a 0/1 mask of response
//! tokens (prompt and padding excluded; [`crate::sequences`] states the mask rules):
//! - sequence log-probs: `log π(y_s | x_s) = Σ_t mask[s, t] · ℓ[s, t]` ([`masked_row_sums`]);
//! - DPO (Rafailov et al. 2023; TRL's `sigmoid` loss with conservative label smoothing ε), over
//!   `P` pairs stacked as `[chosen_0 .. chosen_{P−1}, rejected_0 .. rejected_{P−1}]`:
//!   `h_p = (log π_c − log π_r) − (log π_ref,c − log π_ref,r)`,
//!   `ℓ_p = −(1 − ε) log σ(β h_p) − ε log σ(−β h_p)`, implicit rewards `β (log π − log π_ref)`
//!   ([`dpo_pairs`]), and `∂ℓ_p/∂ log π_c = −β [(1 − ε) σ(−β h) − ε σ(β h)] = −∂ℓ_p/∂ log π_r`;
//! - backward to the tokens: `∂L/∂ℓ[s, t] = mask[s, t] · ∂L/∂ log π(y_s)` (an elementwise
//!   product, left to the backend's tensor ops), then the token-logprob backward.
//!
//! The plain-Rust references are `claimbench_dpo_ppo::{masked_sequence_logprobs, dpo,
//! sequence_grad_to_tokens}` (f64): the kernel tests compare against them.

pub mod kernel;

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::KernelError;
use crate::launch::{cube_size_pow2, grid_1d};
use crate::sequences::SeqShape;

/// Units per cube of the row-sum kernel (at most; fewer for short rows).
const ROW_CUBE_MAX: usize = 128;
/// Units per cube of the elementwise kernels.
const ELEMENT_CUBE: usize = 256;

/// DPO's settings: `β` and conservative DPO's label smoothing `ε`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpoSettings {
    /// `β > 0` (the paper arXiv 2404.10719 uses 0.1).
    pub beta: f32,
    /// `ε ∈ [0, 0.5)`: the assumed probability that a label is flipped; 0 is plain DPO.
    pub label_smoothing: f32,
}

impl Default for DpoSettings {
    /// `β = 0.1`, no label smoothing.
    fn default() -> Self {
        Self {
            beta: 0.1,
            label_smoothing: 0.0,
        }
    }
}

impl DpoSettings {
    /// Fails unless `β` is finite and above 0 and `ε ∈ [0, 0.5)`.
    pub fn validate(&self) -> Result<(), KernelError> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(KernelError::InvalidSetting {
                what: "DPO β",
                value: self.beta.to_string(),
                expected: "a finite value above 0",
            });
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(KernelError::InvalidSetting {
                what: "DPO label smoothing",
                value: self.label_smoothing.to_string(),
                expected: "a value in [0, 0.5)",
            });
        }
        Ok(())
    }
}

/// The outputs of [`dpo_pairs`]: f32 buffers.
pub struct DpoHandles {
    /// Per-pair losses `[P]`.
    pub losses: Handle,
    /// Implicit rewards `[2P]`, chosen then rejected.
    pub rewards: Handle,
    /// `∂ℓ_p/∂ policy[s]` `[2P]`, each pair's own loss (not divided by `P`).
    pub grads: Handle,
}

/// Masked sums of `values [rows, time]` per row → `[rows]` f32. Assumes the mask rules hold
/// (check with [`SeqShape::check_mask`] where masks come from users).
pub fn masked_row_sums<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    values: Handle,
    mask: Handle,
) -> Handle {
    launch_row_sums(client, shape, values, Some(mask))
}

/// Plain sums of `values [rows, time]` per row → `[rows]` f32 (every position counts).
pub fn row_sums<R: Runtime>(client: &ComputeClient<R>, shape: SeqShape, values: Handle) -> Handle {
    launch_row_sums(client, shape, values, None)
}

fn launch_row_sums<R: Runtime>(
    client: &ComputeClient<R>,
    shape: SeqShape,
    values: Handle,
    mask: Option<Handle>,
) -> Handle {
    let masked = mask.is_some();
    // Unmasked: the kernel never reads its mask argument; bind the values buffer in its place.
    let mask = mask.unwrap_or_else(|| values.clone());
    let out = client.empty(shape.rows * 4);
    let cube = cube_size_pow2(client, ROW_CUBE_MAX.min(shape.time.next_power_of_two()));
    // SAFETY: values and mask hold rows·time f32, out `rows`; the kernel reads only in range.
    unsafe {
        kernel::masked_row_sum_kernel::launch_unchecked::<R>(
            client,
            grid_1d(client, shape.rows),
            CubeDim::new_1d(cube as u32),
            ArrayArg::from_raw_parts(values, shape.len()),
            ArrayArg::from_raw_parts(mask, shape.len()),
            ArrayArg::from_raw_parts(out.clone(), shape.rows),
            shape.rows as u32,
            shape.time as u32,
            cube,
            masked,
        );
    }
    out
}

/// The DPO loss of `pairs` pairs from stacked sequence log-probs `policy [2P]` and `reference
/// [2P]` (chosen first). Validates the settings and `pairs ≥ 1`; the inputs are assumed finite
/// (check reference log-probs from users with [`crate::sequences::check_finite`]).
pub fn dpo_pairs<R: Runtime>(
    client: &ComputeClient<R>,
    pairs: usize,
    policy: Handle,
    reference: Handle,
    settings: DpoSettings,
) -> Result<DpoHandles, KernelError> {
    settings.validate()?;
    if pairs == 0 {
        return Err(KernelError::EmptyDimension {
            what: "number of preference pairs",
        });
    }
    let losses = client.empty(pairs * 4);
    let rewards = client.empty(2 * pairs * 4);
    let grads = client.empty(2 * pairs * 4);
    let cube = cube_size_pow2(client, ELEMENT_CUBE.min(pairs.next_power_of_two()));
    // SAFETY: policy and reference hold 2·pairs f32 (the caller's contract), outputs as allocated.
    unsafe {
        kernel::dpo_pairs_kernel::launch_unchecked::<R>(
            client,
            grid_1d(client, pairs.div_ceil(cube)),
            CubeDim::new_1d(cube as u32),
            ArrayArg::from_raw_parts(policy, 2 * pairs),
            ArrayArg::from_raw_parts(reference, 2 * pairs),
            ArrayArg::from_raw_parts(losses.clone(), pairs),
            ArrayArg::from_raw_parts(rewards.clone(), 2 * pairs),
            ArrayArg::from_raw_parts(grads.clone(), 2 * pairs),
            pairs as u32,
            settings.beta,
            settings.label_smoothing,
        );
    }
    Ok(DpoHandles {
        losses,
        rewards,
        grads,
    })
}
