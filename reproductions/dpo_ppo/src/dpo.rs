//! The DPO loss (Rafailov et al. 2023, eq. 7), its conservative (label-smoothed) form, the implicit
//! rewards, and the closed-form gradient, as f64 references.
//!
//! For a preference pair (prompt `x`, chosen `y_c`, rejected `y_r`) with sequence
//! log-probabilities (see [`crate::seq`]) under the policy (`log π_c`, `log π_r`) and the frozen
//! reference (`log π_ref,c`, `log π_ref,r`), the margin ("DPO logits" in TRL/OpenRLHF) is
//!
//! ```text
//! h = (log π_c − log π_ref,c) − (log π_r − log π_ref,r)
//! ```
//!
//! and the loss, with `β > 0` and label smoothing `ε ∈ [0, 0.5)` (conservative DPO, which treats
//! each label as flipped with probability `ε`; `ε = 0` is the paper's DPO), is
//!
//! ```text
//! ℓ(h) = −(1 − ε) · log σ(β h) − ε · log σ(−β h)
//! ```
//!
//! The implicit rewards are `β (log π_c − log π_ref,c)` and `β (log π_r − log π_ref,r)`, so
//! `β h` is their difference. With `d/dz log σ(z) = σ(−z)`, the gradient is
//!
//! ```text
//! ∂ℓ/∂h = −β [(1 − ε) σ(−β h) − ε σ(β h)],   ∂ℓ/∂ log π_c = ∂ℓ/∂h,   ∂ℓ/∂ log π_r = −∂ℓ/∂h
//! ```
//!
//! (the reference terms are constants). For `ε > 0` the gradient vanishes at
//! `σ(β h) = 1 − ε`, i.e. `β h = log((1 − ε)/ε)`, instead of pushing `h → ∞`.
//!
//! The paper (arXiv 2404.10719) uses `β = 0.1` ([`DpoConfig::default`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, check_finite};

/// `log σ(x) = −log(1 + e^{−x})`, stable for every `x`: `−log1p(e^{−x})` for `x ≥ 0` and
/// `x − log1p(e^{x})` for `x < 0`, so no `exp` overflows. `log σ(+∞) = 0`, `log σ(−∞) = −∞`,
/// NaN stays NaN.
pub fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// `σ(x) = 1 / (1 + e^{−x})`, stable for every `x` (`e^{x} / (1 + e^{x})` for `x < 0`).
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// DPO's hyper-parameters: `β` and conservative DPO's label smoothing `ε`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DpoConfig {
    /// `β > 0`, the strength of the implicit KL regularisation (the paper: 0.1).
    pub beta: f64,
    /// `ε ∈ [0, 0.5)`, the assumed probability that a label is flipped; 0 is plain DPO.
    #[serde(default)]
    pub label_smoothing: f64,
}

impl Default for DpoConfig {
    /// The paper's setting: `β = 0.1`, no label smoothing.
    fn default() -> Self {
        DpoConfig {
            beta: 0.1,
            label_smoothing: 0.0,
        }
    }
}

impl DpoConfig {
    /// A validated config ([`DpoConfig::validate`]).
    pub fn new(beta: f64, label_smoothing: f64) -> Result<Self, Error> {
        let c = DpoConfig {
            beta,
            label_smoothing,
        };
        c.validate()?;
        Ok(c)
    }

    /// [`Error::Beta`] unless `β` is finite and above 0; [`Error::LabelSmoothing`] unless
    /// `ε ∈ [0, 0.5)`.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(Error::Beta { beta: self.beta });
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(Error::LabelSmoothing {
                eps: self.label_smoothing,
            });
        }
        Ok(())
    }

    /// `ℓ(h) = −(1 − ε) log σ(β h) − ε log σ(−β h)` for one margin `h` (config assumed valid).
    /// The `ε` term is dropped when `ε = 0`, so `ℓ(+∞) = 0` rather than `0 · ∞ = NaN`.
    pub fn pair_loss(&self, h: f64) -> f64 {
        let z = self.beta * h;
        let eps = self.label_smoothing;
        let mut loss = -(1.0 - eps) * log_sigmoid(z);
        if eps > 0.0 {
            loss -= eps * log_sigmoid(-z);
        }
        loss
    }

    /// `∂ℓ/∂h = −β [(1 − ε) σ(−β h) − ε σ(β h)]`, which is also `∂ℓ/∂ log π_c`; `∂ℓ/∂ log π_r`
    /// is its negative.
    pub fn pair_grad(&self, h: f64) -> f64 {
        let z = self.beta * h;
        let eps = self.label_smoothing;
        -self.beta * ((1.0 - eps) * sigmoid(-z) - eps * sigmoid(z))
    }
}

/// A batch of `B` preference pairs: four `[B]` arrays of sequence log-probabilities (e.g. from
/// [`crate::masked_sequence_logprobs`]).
#[derive(Debug, Clone, Copy)]
pub struct DpoInputs<'a> {
    /// `log π(y_c | x)` under the policy.
    pub policy_chosen: &'a [f64],
    /// `log π(y_r | x)` under the policy.
    pub policy_rejected: &'a [f64],
    /// `log π_ref(y_c | x)` under the frozen reference.
    pub reference_chosen: &'a [f64],
    /// `log π_ref(y_r | x)` under the frozen reference.
    pub reference_rejected: &'a [f64],
}

/// Per-pair results of [`dpo`], all `[B]`, plus the mean loss.
#[derive(Debug, Clone, PartialEq)]
pub struct DpoOutput {
    /// Margins `h = (log π_c − log π_ref,c) − (log π_r − log π_ref,r)`.
    pub margins: Vec<f64>,
    /// Per-pair losses `ℓ(h)`.
    pub losses: Vec<f64>,
    /// Implicit rewards of the chosen responses, `β (log π_c − log π_ref,c)`.
    pub chosen_rewards: Vec<f64>,
    /// Implicit rewards of the rejected responses, `β (log π_r − log π_ref,r)`.
    pub rejected_rewards: Vec<f64>,
    /// `(1/B) Σ ℓ(h_b)`, the training loss.
    pub mean_loss: f64,
    /// `∂ℓ_b/∂ log π_c,b` of each pair's own loss; the mean loss's gradient is this divided by
    /// `B`.
    pub grad_chosen: Vec<f64>,
    /// `∂ℓ_b/∂ log π_r,b = −grad_chosen[b]`; divide by `B` for the mean loss.
    pub grad_rejected: Vec<f64>,
}

impl DpoOutput {
    /// Fraction of pairs whose chosen implicit reward is strictly above the rejected one
    /// (`h > 0`), the usual "reward accuracy".
    pub fn reward_accuracy(&self) -> f64 {
        let n = self.margins.iter().filter(|&&h| h > 0.0).count();
        n as f64 / self.margins.len() as f64
    }

    /// `(∂ mean_loss/∂ log π_c, ∂ mean_loss/∂ log π_r)`: the per-pair gradients divided by `B`.
    pub fn mean_loss_grads(&self) -> (Vec<f64>, Vec<f64>) {
        let b = self.margins.len() as f64;
        (
            self.grad_chosen.iter().map(|g| g / b).collect(),
            self.grad_rejected.iter().map(|g| g / b).collect(),
        )
    }
}

/// The DPO loss of a batch of pairs, with implicit rewards and gradients (see the
/// [module docs](self) for the equations).
///
/// Errors: an invalid config ([`Error::Beta`], [`Error::LabelSmoothing`]); [`Error::EmptyBatch`]
/// when `B = 0`; [`Error::BatchMismatch`] when an array's length differs from
/// `policy_chosen`'s; [`Error::NonFinite`] for a NaN or infinite log-probability.
pub fn dpo(config: &DpoConfig, inputs: &DpoInputs<'_>) -> Result<DpoOutput, Error> {
    config.validate()?;
    let b = inputs.policy_chosen.len();
    let named = [
        ("policy_chosen", inputs.policy_chosen),
        ("policy_rejected", inputs.policy_rejected),
        ("reference_chosen", inputs.reference_chosen),
        ("reference_rejected", inputs.reference_rejected),
    ];
    for (name, a) in named {
        if a.len() != b {
            return Err(Error::BatchMismatch {
                name,
                len: a.len(),
                reference: "policy_chosen",
                expected: b,
            });
        }
    }
    if b == 0 {
        return Err(Error::EmptyBatch { what: "pair" });
    }
    for (name, a) in named {
        for (i, &v) in a.iter().enumerate() {
            check_finite(name, || i.to_string(), v)?;
        }
    }
    let beta = config.beta;
    let mut out = DpoOutput {
        margins: Vec::with_capacity(b),
        losses: Vec::with_capacity(b),
        chosen_rewards: Vec::with_capacity(b),
        rejected_rewards: Vec::with_capacity(b),
        mean_loss: 0.0,
        grad_chosen: Vec::with_capacity(b),
        grad_rejected: Vec::with_capacity(b),
    };
    for i in 0..b {
        let c = inputs.policy_chosen[i] - inputs.reference_chosen[i];
        let r = inputs.policy_rejected[i] - inputs.reference_rejected[i];
        let h = c - r;
        let g = config.pair_grad(h);
        out.margins.push(h);
        out.losses.push(config.pair_loss(h));
        out.chosen_rewards.push(beta * c);
        out.rejected_rewards.push(beta * r);
        out.grad_chosen.push(g);
        out.grad_rejected.push(-g);
    }
    out.mean_loss = out.losses.iter().sum::<f64>() / b as f64;
    Ok(out)
}

/// The DPO path from token log-probabilities: masked sequence sums of `token_logprobs [2B, T]`
/// (chosen sequences at rows `0..B`, rejected at `B..2B`, the stacked layout of the fused kernels),
/// the DPO loss against `reference [2B]` (same layout), and the mean loss's gradient back to the
/// tokens (`[2B, T]`, 0 at masked positions): the reference a fused
/// `logits → token log-probs → sequence sums → loss` path is checked against (the step from the
/// logits is the token-logprob reference's).
///
/// Errors: those of [`crate::masked_sequence_logprobs`], [`dpo`] and
/// [`crate::sequence_grad_to_tokens`], and [`Error::BatchMismatch`] for an odd number of rows or a
/// `reference` of another length.
pub fn dpo_from_tokens(
    config: &DpoConfig,
    token_logprobs: &[f64],
    mask: &[f64],
    shape: crate::seq::Shape,
    reference: &[f64],
) -> Result<(DpoOutput, Vec<f64>), Error> {
    if !shape.batch.is_multiple_of(2) {
        return Err(Error::BatchMismatch {
            name: "the rejected rows (second half of the stack)",
            len: shape.batch / 2,
            reference: "the chosen rows (first half)",
            expected: shape.batch - shape.batch / 2,
        });
    }
    if reference.len() != shape.batch {
        return Err(Error::BatchMismatch {
            name: "reference",
            len: reference.len(),
            reference: "the shape's B",
            expected: shape.batch,
        });
    }
    let b = shape.batch / 2;
    let seq = crate::seq::masked_sequence_logprobs(token_logprobs, mask, shape)?;
    let out = dpo(
        config,
        &DpoInputs {
            policy_chosen: &seq[..b],
            policy_rejected: &seq[b..],
            reference_chosen: &reference[..b],
            reference_rejected: &reference[b..],
        },
    )?;
    let (gc, gr) = out.mean_loss_grads();
    let seq_grad: Vec<f64> = gc.into_iter().chain(gr).collect();
    let tokens = crate::seq::sequence_grad_to_tokens(&seq_grad, mask, shape)?;
    Ok((out, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LN2: f64 = std::f64::consts::LN_2;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn one(cfg: DpoConfig, pc: f64, pr: f64, rc: f64, rr: f64) -> DpoOutput {
        dpo(
            &cfg,
            &DpoInputs {
                policy_chosen: &[pc],
                policy_rejected: &[pr],
                reference_chosen: &[rc],
                reference_rejected: &[rr],
            },
        )
        .unwrap()
    }

    /// log σ(0) = −ln 2; σ(0) = 1/2; log σ(ln 3) = ln(3/4); the identity
    /// log σ(x) − log σ(−x) = x; and the tails: log σ(800) = 0, log σ(−800) = −800 (a naive
    /// `ln(1/(1+e^{−x}))` gives −∞ there).
    #[test]
    fn log_sigmoid_values_and_tails() {
        assert_eq!(log_sigmoid(0.0), -LN2);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(close(log_sigmoid(3f64.ln()), (0.75f64).ln(), 1e-15));
        assert!(close(sigmoid(-(3f64.ln())), 0.25, 1e-15));
        for x in [-30.0, -5.0, -0.3, 0.0, 0.7, 4.0, 25.0] {
            assert!(close(log_sigmoid(x) - log_sigmoid(-x), x, 1e-14), "x {x}");
            let naive = (1.0 / (1.0 + f64::exp(-x))).ln();
            assert!(close(log_sigmoid(x), naive, 1e-12), "x {x}");
            assert!(close(sigmoid(x) + sigmoid(-x), 1.0, 1e-15), "x {x}");
        }
        assert_eq!(log_sigmoid(800.0), 0.0);
        assert_eq!(log_sigmoid(-800.0), -800.0);
        assert!((1.0 / (1.0 + f64::exp(800.0))).ln().is_infinite());
        assert_eq!(log_sigmoid(f64::INFINITY), 0.0);
        assert_eq!(log_sigmoid(f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }

    /// Finite differences of log σ and the identity d/dx log σ(x) = σ(−x).
    #[test]
    fn log_sigmoid_derivative() {
        let h = 1e-6;
        for x in [-12.0, -2.0, -0.1, 0.0, 0.5, 3.0, 15.0] {
            let fd = (log_sigmoid(x + h) - log_sigmoid(x - h)) / (2.0 * h);
            assert!(
                close(fd, sigmoid(-x), 1e-8),
                "x {x}: {fd} vs {}",
                sigmoid(-x)
            );
        }
    }

    /// h = 0: ℓ = ln 2 for every ε (σ(0) = 1/2 on both terms); ∂ℓ/∂log π_c = −β/2 at ε = 0
    /// and −β(1 − 2ε)/2 otherwise: −0.05 at β = 0.1, and −0.04 at ε = 0.1.
    #[test]
    fn zero_margin_by_hand() {
        let o = one(DpoConfig::default(), -3.0, -4.0, -3.0, -4.0);
        assert_eq!(o.margins, vec![0.0]);
        assert!(close(o.mean_loss, LN2, 1e-15));
        assert!(close(o.grad_chosen[0], -0.05, 1e-15));
        assert!(close(o.grad_rejected[0], 0.05, 1e-15));
        let o = one(DpoConfig::new(0.1, 0.1).unwrap(), -3.0, -4.0, -3.0, -4.0);
        assert!(close(o.mean_loss, LN2, 1e-15));
        assert!(close(o.grad_chosen[0], -0.04, 1e-14));
    }

    /// π_c = −5, π_ref,c = −6, π_r = −7, π_ref,r = −6: h = 1 − (−1) = 2. With β = 0.5, βh = 1:
    /// ℓ = ln(1 + e^{−1}) = 0.31326168751822286, rewards 0.5 and −0.5,
    /// ∂ℓ/∂log π_c = −0.5 σ(−1) = −0.5/(1 + e) = −0.13447071068499755.
    #[test]
    fn margin_two_by_hand() {
        let o = one(DpoConfig::new(0.5, 0.0).unwrap(), -5.0, -7.0, -6.0, -6.0);
        assert_eq!(o.margins, vec![2.0]);
        assert!(close(o.losses[0], 0.313_261_687_518_222_86, 1e-15));
        assert_eq!(o.chosen_rewards, vec![0.5]);
        assert_eq!(o.rejected_rewards, vec![-0.5]);
        assert!(close(o.grad_chosen[0], -0.134_470_710_684_997_55, 1e-14));
        assert_eq!(o.grad_rejected[0], -o.grad_chosen[0]);
        assert_eq!(o.reward_accuracy(), 1.0);
    }

    /// β = 1, h = ln 3: σ(βh) = 3/4, so ℓ = ln(4/3) = 0.28768207245178085 and ∂ℓ/∂h = −1/4.
    /// With ε = 1/4 the gradient is 0 there (σ(βh) = 1 − ε), and ℓ = H(1/4) =
    /// −(3/4) ln(3/4) − (1/4) ln(1/4) = 0.5623351446188083, cDPO's minimum.
    #[test]
    fn label_smoothing_by_hand() {
        let h = 3f64.ln();
        let plain = DpoConfig::new(1.0, 0.0).unwrap();
        assert!(close(plain.pair_loss(h), 0.287_682_072_451_780_85, 1e-15));
        assert!(close(plain.pair_grad(h), -0.25, 1e-15));
        let smooth = DpoConfig::new(1.0, 0.25).unwrap();
        assert!(smooth.pair_grad(h).abs() < 1e-15);
        assert!(close(smooth.pair_loss(h), 0.562_335_144_618_808_3, 1e-15));
        // It is a minimum: the loss is higher on both sides.
        assert!(smooth.pair_loss(h + 0.1) > smooth.pair_loss(h));
        assert!(smooth.pair_loss(h - 0.1) > smooth.pair_loss(h));
        // Negative control: plain DPO keeps decreasing past that point.
        assert!(plain.pair_loss(h + 0.1) < plain.pair_loss(h));
    }

    /// Large margins stay finite and exact: ℓ(−1000/β) = 1000 and ℓ(1000/β) = 0 at ε = 0.
    #[test]
    fn extreme_margins_are_stable() {
        let cfg = DpoConfig::new(0.1, 0.0).unwrap();
        assert_eq!(cfg.pair_loss(-10_000.0), 1000.0);
        assert_eq!(cfg.pair_loss(10_000.0), 0.0);
        assert!(close(cfg.pair_grad(-10_000.0), -0.1, 1e-15));
        assert_eq!(cfg.pair_grad(10_000.0), 0.0);
        let cs = DpoConfig::new(0.1, 0.2).unwrap();
        assert!(close(cs.pair_loss(10_000.0), 200.0, 1e-12));
        assert!(close(cs.pair_grad(10_000.0), 0.1 * 0.2, 1e-15));
    }

    fn batch(seed: u64, b: usize) -> [Vec<f64>; 4] {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(seed);
        std::array::from_fn(|_| (0..b).map(|_| rng.random_range(-40.0..-2.0)).collect())
    }

    /// Finite differences of the mean loss with respect to every policy log-probability, for
    /// several β and ε, B = 1 and B = 7.
    #[test]
    fn gradient_matches_finite_differences() {
        for (beta, eps) in [(0.1, 0.0), (0.5, 0.0), (1.0, 0.1), (2.0, 0.45)] {
            let cfg = DpoConfig::new(beta, eps).unwrap();
            for b in [1, 7] {
                let [pc, pr, rc, rr] = batch(b as u64 * 31 + 5, b);
                let mean = |pc: &[f64], pr: &[f64]| {
                    dpo(
                        &cfg,
                        &DpoInputs {
                            policy_chosen: pc,
                            policy_rejected: pr,
                            reference_chosen: &rc,
                            reference_rejected: &rr,
                        },
                    )
                    .unwrap()
                    .mean_loss
                };
                let out = dpo(
                    &cfg,
                    &DpoInputs {
                        policy_chosen: &pc,
                        policy_rejected: &pr,
                        reference_chosen: &rc,
                        reference_rejected: &rr,
                    },
                )
                .unwrap();
                let (gc, gr) = out.mean_loss_grads();
                let h = 1e-6;
                for i in 0..b {
                    let (mut p, mut m) = (pc.clone(), pc.clone());
                    p[i] += h;
                    m[i] -= h;
                    let fd = (mean(&p, &pr) - mean(&m, &pr)) / (2.0 * h);
                    assert!(
                        close(fd, gc[i], 1e-7),
                        "β {beta} ε {eps} c{i}: {fd} vs {}",
                        gc[i]
                    );
                    let (mut p, mut m) = (pr.clone(), pr.clone());
                    p[i] += h;
                    m[i] -= h;
                    let fd = (mean(&pc, &p) - mean(&pc, &m)) / (2.0 * h);
                    assert!(
                        close(fd, gr[i], 1e-7),
                        "β {beta} ε {eps} r{i}: {fd} vs {}",
                        gr[i]
                    );
                }
            }
        }
    }

    /// The batch form agrees with the per-pair closed form, the mean is the mean, and the
    /// implicit rewards' difference is β h.
    #[test]
    fn batch_is_consistent() {
        let cfg = DpoConfig::new(0.3, 0.05).unwrap();
        let [pc, pr, rc, rr] = batch(9, 13);
        let out = dpo(
            &cfg,
            &DpoInputs {
                policy_chosen: &pc,
                policy_rejected: &pr,
                reference_chosen: &rc,
                reference_rejected: &rr,
            },
        )
        .unwrap();
        let mut sum = 0.0;
        for i in 0..13 {
            let h = (pc[i] - rc[i]) - (pr[i] - rr[i]);
            assert!(close(out.margins[i], h, 1e-13));
            assert!(close(out.losses[i], cfg.pair_loss(h), 1e-13));
            assert!(close(
                out.chosen_rewards[i] - out.rejected_rewards[i],
                0.3 * h,
                1e-12
            ));
            sum += out.losses[i];
        }
        assert!(close(out.mean_loss, sum / 13.0, 1e-14));
        let acc = out.margins.iter().filter(|&&h| h > 0.0).count() as f64 / 13.0;
        assert_eq!(out.reward_accuracy(), acc);
    }

    /// Negative control: swapping chosen and rejected changes the loss (unless h = 0) and
    /// flips the gradient's sign.
    #[test]
    fn swapping_the_pair_is_not_the_same() {
        let cfg = DpoConfig::default();
        let a = one(cfg, -5.0, -7.0, -6.0, -6.0);
        let b = one(cfg, -7.0, -5.0, -6.0, -6.0);
        assert!((a.mean_loss - b.mean_loss).abs() > 0.1);
        assert!(a.grad_chosen[0] < 0.0 && b.grad_chosen[0] < 0.0);
        assert!(a.grad_chosen[0].abs() < b.grad_chosen[0].abs());
        assert_eq!(b.reward_accuracy(), 0.0);
    }

    #[test]
    fn errors_name_the_bad_value() {
        let e = |beta, eps| DpoConfig::new(beta, eps).unwrap_err().to_string();
        assert_eq!(e(0.0, 0.0), "β 0 must be a finite number above 0");
        assert_eq!(e(-0.1, 0.0), "β -0.1 must be a finite number above 0");
        assert_eq!(e(f64::NAN, 0.0), "β NaN must be a finite number above 0");
        assert_eq!(
            e(f64::INFINITY, 0.0),
            "β inf must be a finite number above 0"
        );
        assert_eq!(e(0.1, 0.5), "label smoothing ε 0.5 is outside [0, 0.5)");
        assert_eq!(e(0.1, -0.01), "label smoothing ε -0.01 is outside [0, 0.5)");
        assert_eq!(
            e(0.1, f64::NAN),
            "label smoothing ε NaN is outside [0, 0.5)"
        );
        DpoConfig::new(0.1, 0.0).unwrap();
        DpoConfig::new(0.1, 0.499).unwrap();

        let cfg = DpoConfig::default();
        let run = |pc: &[f64], pr: &[f64], rc: &[f64], rr: &[f64]| {
            dpo(
                &cfg,
                &DpoInputs {
                    policy_chosen: pc,
                    policy_rejected: pr,
                    reference_chosen: rc,
                    reference_rejected: rr,
                },
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            run(&[0.0; 4], &[0.0; 3], &[0.0; 4], &[0.0; 4]),
            "policy_rejected has 3 entries but policy_chosen has 4; they must match"
        );
        assert_eq!(
            run(&[0.0; 4], &[0.0; 4], &[0.0; 4], &[0.0; 5]),
            "reference_rejected has 5 entries but policy_chosen has 4; they must match"
        );
        assert_eq!(
            run(&[], &[], &[], &[]),
            "the batch is empty; it needs at least 1 pair"
        );
        assert_eq!(
            run(&[0.0, f64::NAN], &[0.0; 2], &[0.0; 2], &[0.0; 2]),
            "policy_chosen[1] is NaN; inputs must be finite"
        );
        assert_eq!(
            run(&[0.0; 2], &[0.0; 2], &[f64::NEG_INFINITY, 0.0], &[0.0; 2]),
            "reference_chosen[0] is -inf; inputs must be finite"
        );
        let bad = DpoConfig {
            beta: 0.1,
            label_smoothing: 0.7,
        };
        assert_eq!(
            dpo(
                &bad,
                &DpoInputs {
                    policy_chosen: &[0.0],
                    policy_rejected: &[0.0],
                    reference_chosen: &[0.0],
                    reference_rejected: &[0.0],
                }
            )
            .unwrap_err()
            .to_string(),
            "label smoothing ε 0.7 is outside [0, 0.5)"
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = DpoConfig::new(0.1, 0.1).unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<DpoConfig>(&j).unwrap(), c);
        let d: DpoConfig = serde_json::from_str(r#"{"beta": 0.1}"#).unwrap();
        assert_eq!(d, DpoConfig::default());
    }

    /// The path from tokens: sums over the mask, then the loss, then `mask · ∂L/∂ log π / B`
    /// back on the tokens (0 at masked positions); an odd stack or a short reference is refused.
    #[test]
    fn dpo_from_tokens_chains_sums_loss_and_gradient() {
        let cfg = DpoConfig::new(0.5, 0.0).unwrap();
        let shape = crate::seq::Shape::new(2, 3).unwrap();
        // Chosen: −1 − 2 = −3 (t = 2 masked, NaN); rejected: −4 (t = 0 masked).
        let tokens = [-1.0, -2.0, f64::NAN, f64::NAN, -1.5, -2.5];
        let mask = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let (out, g) = dpo_from_tokens(&cfg, &tokens, &mask, shape, &[-3.5, -3.0]).unwrap();
        // h = (−3 − (−3.5)) − (−4 − (−3)) = 1.5.
        assert!((out.margins[0] - 1.5).abs() < 1e-15);
        let gc = cfg.pair_grad(1.5);
        assert_eq!(g, vec![gc, gc, 0.0, 0.0, -gc, -gc]);
        let odd = crate::seq::Shape::new(3, 1).unwrap();
        let err = dpo_from_tokens(&cfg, &[0.0; 3], &[1.0; 3], odd, &[0.0; 3]).unwrap_err();
        assert!(err.to_string().contains("rejected rows"), "{err}");
        assert!(dpo_from_tokens(&cfg, &tokens, &mask, shape, &[0.0]).is_err());
    }
}
