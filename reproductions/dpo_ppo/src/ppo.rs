//! PPO's per-token pieces for RLHF, as f64 references: KL-penalised rewards, generalised advantage
//! estimation (GAE), advantage whitening, and the clipped policy and value losses.
//!
//! Every array is row-major `[B, T]` with a 0/1 mask of valid (response) tokens, under the
//! [mask rules](crate::seq#mask-rules): every row has at least one valid token, masked positions
//! are never read (they may hold NaN) and come back as exactly 0, valid ones must be finite.
//!
//! The equations (Schulman et al. 2017 for the clipped losses, Schulman et al. 2016 for GAE,
//! Ziegler et al. 2019 / Ouyang et al. 2022 for the per-token KL penalty; as in TRL and OpenRLHF,
//! which the paper arXiv 2404.10719 builds on):
//!
//! ```text
//! r_t   = −κ (log π_t − log π_ref,t)  (+ score at the last valid token)        rewards
//! δ_t   = r_t + γ V_{t+1} − V_t,   A_t = δ_t + γλ A_{t+1},   R_t = A_t + V_t    GAE
//! Â_t   = (A_t − mean A) / sqrt(var A + 1e-8)                                  whitening
//! L_π   = mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε, 1 + ε)),  ρ_t = exp(log π_t − log π_old,t)
//! L_V   = ½ mean_t max((V_t − R_t)², (clip(V_t, V_old,t − ε_v, V_old,t + ε_v) − R_t)²)
//! ```
//!
//! The paper's PPO: `γ = λ = 1`, KL coefficient 0.1, advantage normalisation ([`PpoConfig`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, check_clip, check_finite, check_unit};
use crate::seq::Shape;

/// PPO's hyper-parameters, with [`PpoConfig::default`] the paper's where it gives them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PpoConfig {
    /// Discount `γ ∈ [0, 1]` (the paper: 1).
    pub gamma: f64,
    /// GAE's `λ ∈ [0, 1]` (the paper: 1).
    pub lambda: f64,
    /// KL penalty coefficient `κ ≥ 0` (the paper: 0.1).
    pub kl_coef: f64,
    /// Policy clip range `ε > 0` (0.2, PPO's usual value; the paper does not state it).
    pub clip_eps: f64,
    /// Value clip range `ε_v > 0` (0.2, TRL's default; the paper does not state it).
    pub value_clip_eps: f64,
}

impl Default for PpoConfig {
    /// `γ = λ = 1`, `κ = 0.1` (the paper); `ε = ε_v = 0.2` (conventional).
    fn default() -> Self {
        PpoConfig {
            gamma: 1.0,
            lambda: 1.0,
            kl_coef: 0.1,
            clip_eps: 0.2,
            value_clip_eps: 0.2,
        }
    }
}

impl PpoConfig {
    /// [`Error::Discount`] for `γ` or `λ` outside `[0, 1]`, [`Error::KlCoef`] for a negative or
    /// non-finite `κ`, [`Error::ClipRange`] for a clip range that is not finite and above 0.
    pub fn validate(&self) -> Result<(), Error> {
        check_unit("γ", self.gamma)?;
        check_unit("λ", self.lambda)?;
        check_kl(self.kl_coef)?;
        check_clip("policy clip ε", self.clip_eps)?;
        check_clip("value clip ε", self.value_clip_eps)
    }
}

fn check_kl(value: f64) -> Result<(), Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::KlCoef { value })
    }
}

/// Per-token KL-penalised rewards.
///
/// `r[b, t] = −κ (logprobs[b, t] − ref_logprobs[b, t])` on valid tokens, 0 on masked ones, and
/// `scores[b]` (the reward model's score of sequence `b`) added at the row's last valid token
/// (its highest index with mask 1). `logprobs`, `ref_logprobs`, `mask` are `[B, T]`; `scores`
/// is `[B]`. `κ (log π − log π_ref)` summed over a sequence is `κ` times the sample estimate of
/// `KL(π ‖ π_ref)`, so the total reward is `score − κ·KL̂`.
///
/// Errors: the mask errors, [`Error::ShapeMismatch`], [`Error::BatchMismatch`] for `scores`,
/// [`Error::NonFinite`] (valid positions and every score), [`Error::KlCoef`].
pub fn kl_penalised_rewards(
    logprobs: &[f64],
    ref_logprobs: &[f64],
    scores: &[f64],
    mask: &[f64],
    shape: Shape,
    kl_coef: f64,
) -> Result<Vec<f64>, Error> {
    check_kl(kl_coef)?;
    shape.check_mask(mask)?;
    shape.check_valid_finite("logprobs", logprobs, mask)?;
    shape.check_valid_finite("ref_logprobs", ref_logprobs, mask)?;
    if scores.len() != shape.batch {
        return Err(Error::BatchMismatch {
            name: "scores",
            len: scores.len(),
            reference: "the shape's B",
            expected: shape.batch,
        });
    }
    for (b, &s) in scores.iter().enumerate() {
        check_finite("scores", || b.to_string(), s)?;
    }
    let t = shape.time;
    let mut out = vec![0.0; shape.len()];
    for (b, &score) in scores.iter().enumerate() {
        let mut last = 0;
        for i in b * t..(b + 1) * t {
            if mask[i] == 1.0 {
                out[i] = -kl_coef * (logprobs[i] - ref_logprobs[i]);
                last = i;
            }
        }
        out[last] += score;
    }
    Ok(out)
}

/// Advantages and returns from [`gae`], both `[B, T]`, 0 at masked positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Gae {
    /// `A_t`.
    pub advantages: Vec<f64>,
    /// `R_t = A_t + V_t`, the value function's regression targets.
    pub returns: Vec<f64>,
}

/// Generalised advantage estimation as a reverse scan over each row's valid tokens.
///
/// With `t' ` the next valid token after `t` in the same row (masked positions are skipped, so
/// `γ` and `λ` apply once per valid step, not per position), and `V_{t'} = 0`, `A_{t'} = 0` past
/// the last valid token:
///
/// ```text
/// δ_t = r_t + γ V_{t'} − V_t,    A_t = δ_t + γλ A_{t'} = Σ_k (γλ)^k δ_{t+k},    R_t = A_t + V_t
/// ```
///
/// (`t + k` counting valid tokens). For the usual layout (prompt, response, padding) this is the
/// standard GAE over the response. Rewards and values at masked positions are ignored, so a
/// reward placed on a masked position is lost ([`kl_penalised_rewards`] puts the score on a
/// valid one). With `λ = 1`, `R_t` is the discounted return `Σ_k γ^k r_{t+k}`; with `λ = 0`,
/// `A_t = δ_t`.
///
/// Errors: the mask errors, [`Error::ShapeMismatch`], [`Error::NonFinite`] (rewards or values at
/// a valid position), [`Error::Discount`] for `γ` or `λ` outside `[0, 1]`.
pub fn gae(
    rewards: &[f64],
    values: &[f64],
    mask: &[f64],
    shape: Shape,
    gamma: f64,
    lambda: f64,
) -> Result<Gae, Error> {
    check_unit("γ", gamma)?;
    check_unit("λ", lambda)?;
    shape.check_mask(mask)?;
    shape.check_valid_finite("rewards", rewards, mask)?;
    shape.check_valid_finite("values", values, mask)?;
    let mut advantages = vec![0.0; shape.len()];
    let mut returns = vec![0.0; shape.len()];
    let t = shape.time;
    for b in 0..shape.batch {
        let (mut next_value, mut next_adv) = (0.0, 0.0);
        for i in (b * t..(b + 1) * t).rev() {
            if mask[i] != 1.0 {
                continue;
            }
            let delta = rewards[i] + gamma * next_value - values[i];
            let a = delta + gamma * lambda * next_adv;
            advantages[i] = a;
            returns[i] = a + values[i];
            next_value = values[i];
            next_adv = a;
        }
    }
    Ok(Gae {
        advantages,
        returns,
    })
}

/// The epsilon added to the variance before the square root in [`whiten`].
pub const WHITEN_EPS: f64 = 1e-8;

/// Whitens `values` over the valid tokens of the whole batch.
///
/// `out = (x − μ) / sqrt(σ² + 1e-8)` on valid tokens, 0 on masked ones, with `μ` the mean and
/// `σ²` the **population** variance (divided by `N`, the number of valid tokens, not `N − 1`)
/// over all valid tokens of all rows. The result has mean 0 and population variance
/// `σ² / (σ² + 1e-8)` (1 up to the epsilon). Population rather than sample variance so that a
/// batch with a single valid token is defined (it whitens to 0); TRL's `masked_whiten` uses the
/// sample variance, which differs by the factor `sqrt(N / (N − 1))`.
///
/// Errors: the mask errors, [`Error::ShapeMismatch`], [`Error::NonFinite`].
pub fn whiten(values: &[f64], mask: &[f64], shape: Shape) -> Result<Vec<f64>, Error> {
    let n = shape.check_mask(mask)? as f64;
    shape.check_valid_finite("values", values, mask)?;
    let valid = || values.iter().zip(mask).filter(|&(_, &m)| m == 1.0);
    let mean = valid().map(|(&v, _)| v).sum::<f64>() / n;
    let var = valid().map(|(&v, _)| (v - mean) * (v - mean)).sum::<f64>() / n;
    let scale = 1.0 / (var + WHITEN_EPS).sqrt();
    Ok(values
        .iter()
        .zip(mask)
        .map(|(&v, &m)| if m == 1.0 { (v - mean) * scale } else { 0.0 })
        .collect())
}

/// Result of [`policy_loss`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLoss {
    /// `L_π`, the mean over all valid tokens of the batch.
    pub loss: f64,
    /// Fraction of valid tokens where the clipped term is strictly larger than the unclipped
    /// one, i.e. where clipping binds and the token's gradient is 0 (TRL's `pg_clipfrac`).
    pub clip_fraction: f64,
    /// `ρ_t = exp(log π_t − log π_old,t)`, `[B, T]`, 0 at masked positions.
    pub ratios: Vec<f64>,
    /// `∂L_π/∂ log π_t`, `[B, T]`: `−A_t ρ_t / N` where the unclipped term is the max (or `ρ_t`
    /// is inside `[1 − ε, 1 + ε]`, where both terms agree), 0 where clipping binds and at masked
    /// positions. At an exact tie on the clip boundary the unclipped branch's value is used.
    pub grad: Vec<f64>,
}

/// PPO's clipped surrogate policy loss.
///
/// `L_π = (1/N) Σ_valid max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε, 1 + ε))`, with
/// `ρ_t = exp(log π_t − log π_old,t)` and `N` the number of valid tokens in the batch (a token
/// mean over the batch, not a mean of per-sequence means). `logprobs`, `old_logprobs`,
/// `advantages`, `mask` are `[B, T]`.
///
/// Errors: the mask errors, [`Error::ShapeMismatch`], [`Error::NonFinite`] (including a ratio
/// that overflows to ∞), [`Error::ClipRange`] for `ε ≤ 0` or non-finite.
pub fn policy_loss(
    logprobs: &[f64],
    old_logprobs: &[f64],
    advantages: &[f64],
    mask: &[f64],
    shape: Shape,
    clip_eps: f64,
) -> Result<PolicyLoss, Error> {
    check_clip("policy clip ε", clip_eps)?;
    let n = shape.check_mask(mask)? as f64;
    shape.check_valid_finite("logprobs", logprobs, mask)?;
    shape.check_valid_finite("old_logprobs", old_logprobs, mask)?;
    shape.check_valid_finite("advantages", advantages, mask)?;
    let (lo, hi) = (1.0 - clip_eps, 1.0 + clip_eps);
    let mut ratios = vec![0.0; shape.len()];
    let mut grad = vec![0.0; shape.len()];
    let (mut sum, mut clipped) = (0.0, 0usize);
    for i in 0..shape.len() {
        if mask[i] != 1.0 {
            continue;
        }
        let rho = (logprobs[i] - old_logprobs[i]).exp();
        check_finite("ratio", || shape.index(i), rho)?;
        let a = advantages[i];
        let unclipped = -a * rho;
        let clip_term = -a * rho.clamp(lo, hi);
        ratios[i] = rho;
        if clip_term > unclipped {
            sum += clip_term;
            clipped += 1;
        } else {
            sum += unclipped;
            grad[i] = unclipped / n;
        }
    }
    Ok(PolicyLoss {
        loss: sum / n,
        clip_fraction: clipped as f64 / n,
        ratios,
        grad,
    })
}

/// Result of [`value_loss`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValueLoss {
    /// `L_V`.
    pub loss: f64,
    /// Fraction of valid tokens where the clipped error is strictly larger (TRL's
    /// `vf_clipfrac`), i.e. where the token's gradient is 0.
    pub clip_fraction: f64,
    /// `∂L_V/∂V_t`, `[B, T]`: `(V_t − R_t)/N` where the unclipped error is the max, 0 where the
    /// clipped one binds and at masked positions.
    pub grad: Vec<f64>,
}

/// PPO's clipped value loss.
///
/// `L_V = ½ (1/N) Σ_valid max((V_t − R_t)², (clip(V_t, V_old,t − ε_v, V_old,t + ε_v) − R_t)²)`,
/// `N` the number of valid tokens. `values` (the current `V`), `old_values`, `returns`, `mask`
/// are `[B, T]`.
///
/// Errors: the mask errors, [`Error::ShapeMismatch`], [`Error::NonFinite`], [`Error::ClipRange`]
/// for `ε_v ≤ 0` or non-finite.
pub fn value_loss(
    values: &[f64],
    old_values: &[f64],
    returns: &[f64],
    mask: &[f64],
    shape: Shape,
    value_clip_eps: f64,
) -> Result<ValueLoss, Error> {
    check_clip("value clip ε", value_clip_eps)?;
    let n = shape.check_mask(mask)? as f64;
    shape.check_valid_finite("values", values, mask)?;
    shape.check_valid_finite("old_values", old_values, mask)?;
    shape.check_valid_finite("returns", returns, mask)?;
    let mut grad = vec![0.0; shape.len()];
    let (mut sum, mut clipped) = (0.0, 0usize);
    for i in 0..shape.len() {
        if mask[i] != 1.0 {
            continue;
        }
        let (v, r) = (values[i], returns[i]);
        let vc = v.clamp(
            old_values[i] - value_clip_eps,
            old_values[i] + value_clip_eps,
        );
        let (e1, e2) = ((v - r) * (v - r), (vc - r) * (vc - r));
        if e2 > e1 {
            sum += e2;
            clipped += 1;
        } else {
            sum += e1;
            grad[i] = (v - r) / n;
        }
    }
    Ok(ValueLoss {
        loss: 0.5 * sum / n,
        clip_fraction: clipped as f64 / n,
        grad,
    })
}

#[cfg(test)]
mod tests;
