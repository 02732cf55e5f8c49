//! The synthetic experiment of the paper's Sec. 4.2 / Fig. 1 (arXiv 2404.10719), with small burn
//! MLPs, and the distribution-shift and DPO-Iter comparisons (Sec. 5 / Table 2) on the same setup.
//!
//! # Setup (one seed)
//!
//! `X` prompts × `Y` responses (8 × 8, the paper's). The true reward has its optimum on the
//! diagonal: `r*(x, x) = 1`, `r*(x, y ≠ x) ~ U[0, off_diagonal_max)`. The preference data cover
//! few pairs: per prompt `covered_per_prompt` responses (the diagonal one and random others) and
//! `pairs_per_prompt` pairs among them, the pairs with the diagonal first, labelled by `r*` (hard
//! labels). A response of prompt `x` that appears in none of `x`'s pairs is **uncovered**.
//!
//! Models (weights drawn on the host from a seeded `StdRng`, never from burn's RNG):
//! - policy: `one-hot(x) [X] → Linear(X, H) → ReLU → Linear(H, Y) → log-softmax`, `H =
//!   policy_hidden`; all prompts go through at once, so a forward pass gives the `[X, Y]` table;
//! - reward model, two architectures ([`RmArch`]), `H = rm_hidden`:
//!   - `prompt-heads` (the default; `papers.md`: "one-hot prompt → MLP policy and reward model"):
//!     `one-hot(x) [X] → Linear(X, H) → ReLU → Linear(H, Y)`, one reward per response, the
//!     policy's architecture without the softmax;
//!   - `pair`: `[one-hot(x); one-hot(y)] [X + Y] → Linear(X + Y, H) → ReLU → Linear(H, 1)`;
//!
//!   either way evaluated on all `X·Y` cells at once.
//!
//! Runs, in order (all full-batch AdamW unless stated):
//! 1. a *base* initialisation; `π_ref` = base after SFT (cross-entropy) on `sft_samples_per_prompt`
//!    samples per prompt from a spread distribution `q(y|x) ∝ exp(ref_spread · g_xy)`, `g ~ N(0,1)`,
//!    so uncovered cells keep noticeable mass (the paper's 0.11);
//! 2. the reward model, Bradley–Terry loss `−mean log σ(r(x, y_c) − r(x, y_r))` on the pairs;
//! 3. DPO from `π_ref` (policy initialised with `π_ref`'s weights): `−mean log σ(β h)`,
//!    `h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r)` (DPO paper eq. 7), β = 0.1;
//! 4. PPO from `π_ref` in bandit form (one-token responses): each iteration samples
//!    `ppo_batch` (prompt, response) pairs on the host from the read-back policy (prompt `i mod X`
//!    for sample `i`), reward `RM(x, y) − β (log π_old(y|x) − log π_ref(y|x))`, baseline the
//!    per-prompt batch mean of that reward, advantages whitened over the batch
//!    ([`crate::ppo::whiten`]), then `ppo_epochs` epochs of `ppo_minibatches` shuffled minibatches
//!    of the clipped loss `mean max(−A ρ, −A clip(ρ, 1 ± ε))`, `ρ = π/π_old`. Its target is the
//!    KL-regularised optimum of the learnt reward, `π* ∝ π_ref · exp(r_RM/β)` ([`kl_optimum`]);
//!    as a control, the same PPO rewarded by the true `r*` instead of the reward model (an oracle
//!    reward, right on uncovered cells too) separates PPO itself from its reward model's errors;
//! 5. distribution shift: `π_ref^other` = base after SFT on data concentrated on the uncovered
//!    responses (share `other_covered_share` spread over the covered ones); `π_ref^sft` = base
//!    (from the same base weights, not from `π_ref^other`) after SFT on the chosen responses of
//!    the preference data. DPO and PPO (same reward model) from each;
//! 6. DPO-Iter from each of the two: round 0 is the one-round DPO policy of step 5; every further
//!    round samples `iter_samples_per_prompt` responses per prompt from the current policy, pairs
//!    consecutive samples (pairs of equal responses are dropped), labels them with the reward
//!    model, and runs DPO (`dpo_steps`) with the current policy as the reference.
//!
//! Every number comes back in a [`Fig1Measurements`]; [`specs`] states the claims and
//! [`evaluate`] computes their verdicts from per-seed measurements through
//! `claimbench_claims::evaluate`.

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::AutodiffBackend;
use claimbench_claims::{Claim, ClaimError, ClaimSpec, Direction, Evidence, TestSpec};
use claimbench_kernels::burn_ops::{PreferenceBackend, dpo_loss_unchecked};
use claimbench_kernels::preference::DpoSettings;
use claimbench_paper::metrics::{MetricTable, whole};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;
use crate::mlp::{Mlp, MlpWeights, read};
use crate::ppo::whiten;
use crate::seq::Shape;
use crate::tabular::{Preference, TabularPolicy, kl_optimum};
use claimbench_paper::Scale;

const PAPER: &str = "dpo-ppo";

/// The reward model's input and output layout (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RmArch {
    /// `one-hot(x) → H → Y` rewards, one per response.
    PromptHeads,
    /// `[one-hot(x); one-hot(y)] → H → 1` reward.
    Pair,
}

/// Everything that decides the experiment's numbers (the seed aside). Missing fields are an
/// error when deserialising; start from [`Fig1Config::for_scale`].
///
/// Limits ([`crate::limits`]): `n_prompts`, `n_responses`, `covered_per_prompt` ≤ 1024,
/// `pairs_per_prompt` ≤ 4096, `sft_samples_per_prompt` ≤ 100 000, `policy_hidden`, `rm_hidden`
/// ≤ 4096, `sft_steps`, `rm_steps`, `dpo_steps` ≤ 1 000 000, `ppo_iterations` ≤ 100 000,
/// `ppo_batch` ≤ 65 536, `ppo_minibatches` ≤ 4096, `ppo_epochs`, `iter_rounds` ≤ 64,
/// `iter_samples_per_prompt` ≤ 4096. Peak memory of a seed: [`Fig1Config::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig1Config {
    /// Prompts `X` (the paper: 8).
    pub n_prompts: usize,
    /// Responses per prompt `Y` (the paper: 8).
    pub n_responses: usize,
    /// Off-diagonal true rewards are drawn from `U[0, off_diagonal_max)`; the diagonal's is 1.
    /// Must be in `[0, 1)` so that the diagonal is the unique optimum.
    pub off_diagonal_max: f64,
    /// Responses per prompt that appear in the preference data, the diagonal one included;
    /// in `[2, Y − 1]` (at least one response stays uncovered).
    pub covered_per_prompt: usize,
    /// Pairs per prompt among the covered responses (those with the diagonal first); in
    /// `[1, C(covered_per_prompt, 2)]`.
    pub pairs_per_prompt: usize,
    /// Logit scale of `π_ref`'s SFT distribution `q(y|x) ∝ exp(ref_spread · g_xy)`; ≥ 0.
    pub ref_spread: f64,
    /// SFT samples per prompt for `π_ref` and `π_ref^other`; ≥ 1.
    pub sft_samples_per_prompt: usize,
    /// Share of `π_ref^other`'s SFT data on the covered responses (the rest is spread evenly
    /// over the uncovered ones); in `[0, 1]`.
    pub other_covered_share: f64,
    /// Hidden width of the policy MLP; ≥ 1.
    pub policy_hidden: usize,
    /// The reward model's architecture.
    pub rm_arch: RmArch,
    /// Hidden width of the reward-model MLP; ≥ 1.
    pub rm_hidden: usize,
    /// Full-batch SFT steps; ≥ 1.
    pub sft_steps: usize,
    /// SFT learning rate (AdamW, no weight decay); finite and > 0.
    pub sft_lr: f64,
    /// Full-batch reward-model steps; ≥ 1.
    pub rm_steps: usize,
    /// Reward-model learning rate; finite and > 0.
    pub rm_lr: f64,
    /// Reward-model AdamW weight decay; finite and ≥ 0.
    pub rm_weight_decay: f64,
    /// β of DPO and PPO's KL coefficient (the paper: 0.1 for both); finite and > 0.
    pub beta: f64,
    /// Full-batch DPO steps (per DPO run and per DPO-Iter round); ≥ 1.
    pub dpo_steps: usize,
    /// DPO learning rate (AdamW, no weight decay); finite and > 0.
    pub dpo_lr: f64,
    /// PPO iterations (sample a batch, then optimise on it); ≥ 1.
    pub ppo_iterations: usize,
    /// Samples per PPO iteration; ≥ `ppo_minibatches` (the paper: 512).
    pub ppo_batch: usize,
    /// Minibatches per epoch (the paper: 4); ≥ 1.
    pub ppo_minibatches: usize,
    /// Epochs over each batch; ≥ 1.
    pub ppo_epochs: usize,
    /// PPO learning rate (AdamW, no weight decay); finite and > 0.
    pub ppo_lr: f64,
    /// PPO's clip range ε (0.2); finite and > 0.
    pub ppo_clip: f64,
    /// DPO-Iter rounds after the one-round DPO; ≥ 1.
    pub iter_rounds: usize,
    /// Responses sampled per prompt per DPO-Iter round (paired consecutively); ≥ 2.
    pub iter_samples_per_prompt: usize,
}

impl Fig1Config {
    /// Defaults for `smoke` (seconds), `small` (5 seeds in well under a minute on 2 cores) and
    /// `full`. The three scales differ only in steps and batch.
    pub fn for_scale(scale: Scale) -> Self {
        let (sft, rm, dpo, ppo_iters, ppo_batch, rounds) = match scale {
            Scale::Smoke => (150, 150, 100, 25, 128, 2),
            Scale::Full => (600, 600, 400, 200, 512, 5),
            Scale::Small => (300, 300, 200, 80, 512, 3),
        };
        Fig1Config {
            n_prompts: 8,
            n_responses: 8,
            off_diagonal_max: 0.6,
            covered_per_prompt: 3,
            pairs_per_prompt: 3,
            ref_spread: 0.5,
            sft_samples_per_prompt: 64,
            other_covered_share: 0.1,
            policy_hidden: 32,
            rm_arch: RmArch::PromptHeads,
            rm_hidden: 32,
            sft_steps: sft,
            sft_lr: 1e-2,
            rm_steps: rm,
            rm_lr: 1e-2,
            rm_weight_decay: 1e-2,
            beta: 0.1,
            dpo_steps: dpo,
            dpo_lr: 1e-2,
            ppo_iterations: ppo_iters,
            ppo_batch,
            ppo_minibatches: 4,
            ppo_epochs: 2,
            ppo_lr: 1e-2,
            ppo_clip: 0.2,
            iter_rounds: rounds,
            iter_samples_per_prompt: 8,
        }
    }

    /// Checks every setting, sizes and steps against their limits
    /// ([`Fig1Config::check_limits`]) first; the error names the first bad one
    /// ([`Error::Fig1Setting`]).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &'static str, value: String, requirement: &str| {
            Err(Error::Fig1Setting {
                name,
                value,
                requirement: requirement.into(),
            })
        };
        let counts = [
            ("n_prompts", self.n_prompts, 1),
            ("n_responses", self.n_responses, 3),
            ("sft_samples_per_prompt", self.sft_samples_per_prompt, 1),
            ("policy_hidden", self.policy_hidden, 1),
            ("rm_hidden", self.rm_hidden, 1),
            ("sft_steps", self.sft_steps, 1),
            ("rm_steps", self.rm_steps, 1),
            ("dpo_steps", self.dpo_steps, 1),
            ("ppo_iterations", self.ppo_iterations, 1),
            ("ppo_minibatches", self.ppo_minibatches, 1),
            ("ppo_epochs", self.ppo_epochs, 1),
            ("iter_rounds", self.iter_rounds, 1),
            ("iter_samples_per_prompt", self.iter_samples_per_prompt, 2),
        ];
        for (name, v, min) in counts {
            if v < min {
                return bad(name, v.to_string(), &format!("must be at least {min}"));
            }
        }
        self.check_limits()?;
        if self.covered_per_prompt < 2 || self.covered_per_prompt >= self.n_responses {
            return bad(
                "covered_per_prompt",
                self.covered_per_prompt.to_string(),
                &format!(
                    "must be in [2, n_responses − 1 = {}] (a pair needs 2 responses and one \
                     response must stay uncovered)",
                    self.n_responses - 1
                ),
            );
        }
        let max_pairs = self.covered_per_prompt * (self.covered_per_prompt - 1) / 2;
        if self.pairs_per_prompt == 0 || self.pairs_per_prompt > max_pairs {
            return bad(
                "pairs_per_prompt",
                self.pairs_per_prompt.to_string(),
                &format!(
                    "must be in [1, {max_pairs}] (the pairs among {} covered responses); with 0 \
                     there are no preferences",
                    self.covered_per_prompt
                ),
            );
        }
        if self.ppo_batch < self.ppo_minibatches {
            return bad(
                "ppo_batch",
                self.ppo_batch.to_string(),
                &format!(
                    "must be at least ppo_minibatches = {} (every minibatch needs a sample)",
                    self.ppo_minibatches
                ),
            );
        }
        if !(0.0..1.0).contains(&self.off_diagonal_max) {
            return bad(
                "off_diagonal_max",
                self.off_diagonal_max.to_string(),
                "must be in [0, 1) so that the diagonal (reward 1) is the unique optimum",
            );
        }
        if !(0.0..=1.0).contains(&self.other_covered_share) {
            return bad(
                "other_covered_share",
                self.other_covered_share.to_string(),
                "must be in [0, 1]",
            );
        }
        let positive = [
            ("beta", self.beta),
            ("sft_lr", self.sft_lr),
            ("rm_lr", self.rm_lr),
            ("dpo_lr", self.dpo_lr),
            ("ppo_lr", self.ppo_lr),
            ("ppo_clip", self.ppo_clip),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, v.to_string(), "must be a finite number above 0");
            }
        }
        for (name, v) in [
            ("ref_spread", self.ref_spread),
            ("rm_weight_decay", self.rm_weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, v.to_string(), "must be a finite number ≥ 0");
            }
        }
        Ok(())
    }

    fn cells(&self) -> usize {
        self.n_prompts * self.n_responses
    }
}

/// A seed for one of the experiment's random streams: `seed` mixed with the stream's tag.
fn stream(seed: u64, tag: u64) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One draw from the distribution `probs` (non-negative, any positive sum).
fn categorical(rng: &mut StdRng, probs: &[f64]) -> usize {
    let total: f64 = probs.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    // Rounding left `u` at or above the last weight: the last response with positive weight.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// The seeded problem of one seed: true reward, preference data and the SFT data sets. Tables are
/// row-major `[X, Y]` (`(x, y)` at `x·Y + y`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Prompts `X`.
    pub n_prompts: usize,
    /// Responses `Y`.
    pub n_responses: usize,
    /// `r*(x, y)`, `[X·Y]`: 1 on the diagonal, `U[0, off_diagonal_max)` elsewhere.
    pub true_reward: Vec<f64>,
    /// `covered[x·Y + y]`: `y` appears in one of `x`'s pairs. The diagonal is always covered.
    pub covered: Vec<bool>,
    /// The preference data, hard labels by `r*`, grouped by prompt.
    pub pairs: Vec<Preference>,
    /// SFT counts of `π_ref`'s data, `[X·Y]`.
    pub ref_counts: Vec<f64>,
    /// SFT counts of `π_ref^other`'s data (concentrated on uncovered responses), `[X·Y]`.
    pub other_counts: Vec<f64>,
    /// SFT counts of `π_ref^sft`'s data: each pair's chosen response once, `[X·Y]`.
    pub chosen_counts: Vec<f64>,
}

impl Setup {
    /// The problem of `seed` under `cfg` (validated first).
    pub fn generate(cfg: &Fig1Config, seed: u64) -> Result<Self, Error> {
        cfg.validate()?;
        let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
        let mut rng = stream(seed, 1);
        let mut true_reward = vec![0.0; nx * ny];
        for x in 0..nx {
            for y in 0..ny {
                true_reward[x * ny + y] = if x % ny == y {
                    1.0
                } else {
                    rng.random::<f64>() * cfg.off_diagonal_max
                };
            }
        }
        let mut covered = vec![false; nx * ny];
        let mut pairs = Vec::new();
        for x in 0..nx {
            let diag = x % ny;
            // A partial Fisher–Yates shuffle picks the covered non-diagonal responses.
            let mut others: Vec<usize> = (0..ny).filter(|&y| y != diag).collect();
            for i in 0..cfg.covered_per_prompt - 1 {
                let j = rng.random_range(i..others.len());
                others.swap(i, j);
            }
            let mut resp = vec![diag];
            resp.extend_from_slice(&others[..cfg.covered_per_prompt - 1]);
            // All pairs among the covered responses, those with the diagonal (index 0) first.
            let mut cand = Vec::new();
            for i in 0..resp.len() {
                for j in i + 1..resp.len() {
                    cand.push((resp[i], resp[j]));
                }
            }
            for &(a, b) in cand.iter().take(cfg.pairs_per_prompt) {
                let (ra, rb) = (true_reward[x * ny + a], true_reward[x * ny + b]);
                let (c, r) = if ra >= rb { (a, b) } else { (b, a) };
                covered[x * ny + a] = true;
                covered[x * ny + b] = true;
                pairs.push(Preference::hard(x, c, r));
            }
        }
        let mut ref_counts = vec![0.0; nx * ny];
        let mut other_counts = vec![0.0; nx * ny];
        let mut chosen_counts = vec![0.0; nx * ny];
        let mut srng = stream(seed, 2);
        for x in 0..nx {
            let g: Vec<f64> = (0..ny)
                .map(|_| (cfg.ref_spread * normal(&mut srng)).exp())
                .collect();
            let row = &covered[x * ny..(x + 1) * ny];
            let n_cov = row.iter().filter(|&&c| c).count() as f64;
            let n_unc = ny as f64 - n_cov;
            let other: Vec<f64> = row
                .iter()
                .map(|&c| {
                    if c {
                        cfg.other_covered_share / n_cov
                    } else {
                        (1.0 - cfg.other_covered_share) / n_unc
                    }
                })
                .collect();
            for _ in 0..cfg.sft_samples_per_prompt {
                ref_counts[x * ny + categorical(&mut srng, &g)] += 1.0;
                other_counts[x * ny + categorical(&mut srng, &other)] += 1.0;
            }
        }
        for p in &pairs {
            chosen_counts[p.prompt * ny + p.chosen] += 1.0;
        }
        Ok(Setup {
            n_prompts: nx,
            n_responses: ny,
            true_reward,
            covered,
            pairs,
            ref_counts,
            other_counts,
            chosen_counts,
        })
    }

    /// Expected true reward of a policy table `[X·Y]`, prompts uniform:
    /// `(1/X) Σ_x Σ_y π(y|x) r*(x, y)`.
    pub fn expected_true_reward(&self, probs: &[f64]) -> f64 {
        probs
            .iter()
            .zip(&self.true_reward)
            .map(|(p, r)| p * r)
            .sum::<f64>()
            / self.n_prompts as f64
    }

    /// The largest `π(y|x) − π_ref(y|x)` over uncovered cells (which are never the diagonal),
    /// and its cell `x·Y + y`.
    pub fn largest_uncovered_increase(&self, policy: &[f64], reference: &[f64]) -> (usize, f64) {
        let mut best = (0, f64::NEG_INFINITY);
        for (i, &c) in self.covered.iter().enumerate() {
            let d = policy[i] - reference[i];
            if !c && d > best.1 {
                best = (i, d);
            }
        }
        best
    }
}

fn tensor1<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

fn tensor2<B: Backend>(v: &[f64], rows: usize, cols: usize, device: &B::Device) -> Tensor<B, 2> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// The `[n, cells]` matrix whose row `i` is `+1` at `plus[i]` and `−1` at `minus[i]` (if given):
/// multiplying a flattened `[cells]` table by it selects entries or pair differences.
fn selector<B: Backend>(
    plus: &[usize],
    minus: Option<&[usize]>,
    cells: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut m = vec![0.0; plus.len() * cells];
    for (i, &c) in plus.iter().enumerate() {
        m[i * cells + c] += 1.0;
    }
    if let Some(minus) = minus {
        for (i, &c) in minus.iter().enumerate() {
            m[i * cells + c] -= 1.0;
        }
    }
    tensor2(&m, plus.len(), cells, device)
}

/// `[n, cells] · [cells] → [n]`.
fn select<B: Backend>(sel: &Tensor<B, 2>, table: Tensor<B, 1>) -> Tensor<B, 1> {
    let n = sel.dims()[0];
    let cells = table.dims()[0];
    sel.clone().matmul(table.reshape([cells, 1])).reshape([n])
}

fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem::<f64>()
}

fn check_loss(stage: &str, step: usize, loss: f64) -> Result<(), Error> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged {
            stage: stage.into(),
            step,
            loss,
        })
    }
}

/// The per-seed tensors every policy run shares: the one-hot prompts `I [X, X]`.
struct Ctx<'a, B: Backend> {
    cfg: &'a Fig1Config,
    device: &'a B::Device,
    eye: Tensor<B, 2>,
}

impl<'a, B: AutodiffBackend + PreferenceBackend> Ctx<'a, B> {
    fn new(cfg: &'a Fig1Config, device: &'a B::Device) -> Self {
        let nx = cfg.n_prompts;
        let mut eye = vec![0.0; nx * nx];
        for x in 0..nx {
            eye[x * nx + x] = 1.0;
        }
        Ctx {
            cfg,
            device,
            eye: tensor2(&eye, nx, nx, device),
        }
    }

    /// `log π(y|x)` flattened `[X·Y]` (log-softmax over responses).
    fn logp(&self, policy: &Mlp<B>) -> Tensor<B, 1> {
        log_softmax(policy.forward(self.eye.clone()), 1).reshape([self.cfg.cells()])
    }

    /// `log π(y|x)` on the host, `[X·Y]`.
    fn logp_host(&self, w: &MlpWeights) -> Result<Vec<f64>, Error> {
        let m = w.to_module::<B>(self.device);
        Ok(read(self.logp(&m))?.iter().map(|&v| v as f64).collect())
    }

    /// SFT: full-batch cross-entropy `−Σ_xy c(x,y) log π(y|x) / Σ c` on counts `c [X·Y]`.
    fn sft(&self, init: &MlpWeights, counts: &[f64], stage: &str) -> Result<MlpWeights, Error> {
        let total: f64 = counts.iter().sum();
        let w = tensor1::<B>(
            &counts.iter().map(|c| c / total).collect::<Vec<_>>(),
            self.device,
        );
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        for step in 0..self.cfg.sft_steps {
            let loss = (self.logp(&model) * w.clone()).sum().neg();
            check_loss(stage, step, scalar(&loss))?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.cfg.sft_lr, model, grads);
        }
        MlpWeights::from_module(&model)
    }

    /// DPO (eq. 7 of the DPO paper, no label smoothing) on `pairs`, the policy initialised from
    /// `init`, against the reference log-probabilities `ref_logp [X·Y]`. Returns the weights and
    /// the loss before each step.
    ///
    /// The loss goes through the fused DPO path of `claimbench_kernels` (token log-probs →
    /// sequence sums → loss; the cubecl kernels on wgpu/CUDA, their composition on flex): each
    /// response is a one-token sequence, stacked `[chosen.., rejected..]` as `logits [2P, 1, Y]`
    /// (the policy's logits at each pair's prompt), with the reference's log-probs `[2P]`.
    fn dpo(
        &self,
        init: &MlpWeights,
        ref_logp: &[f64],
        pairs: &[Preference],
        stage: &str,
    ) -> Result<(MlpWeights, Vec<f64>), Error> {
        let ny = self.cfg.n_responses;
        let n = 2 * pairs.len();
        let prompts: Vec<i64> = pairs.iter().chain(pairs).map(|p| p.prompt as i64).collect();
        let responses: Vec<i64> = pairs
            .iter()
            .map(|p| p.chosen as i64)
            .chain(pairs.iter().map(|p| p.rejected as i64))
            .collect();
        let reference: Vec<f64> = pairs
            .iter()
            .map(|p| ref_logp[p.prompt * ny + p.chosen])
            .chain(pairs.iter().map(|p| ref_logp[p.prompt * ny + p.rejected]))
            .collect();
        let prompt_idx = Tensor::<B, 1, Int>::from_data(TensorData::new(prompts, [n]), self.device);
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(responses, [n, 1]), self.device);
        let mask = Tensor::<B, 2>::ones([n, 1], self.device);
        let reference = tensor1::<B>(&reference, self.device);
        let settings = DpoSettings {
            beta: self.cfg.beta as f32,
            label_smoothing: 0.0,
        };
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        let mut curve = Vec::with_capacity(self.cfg.dpo_steps);
        for step in 0..self.cfg.dpo_steps {
            // h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r); L = −mean log σ(β h).
            let logits = model
                .forward(self.eye.clone())
                .select(0, prompt_idx.clone())
                .reshape([n, 1, ny]);
            let loss = dpo_loss_unchecked(
                logits,
                ids.clone(),
                mask.clone(),
                reference.clone(),
                settings,
            )
            .loss;
            let v = scalar(&loss);
            check_loss(stage, step, v)?;
            curve.push(v);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(self.cfg.dpo_lr, model, grads);
        }
        Ok((MlpWeights::from_module(&model)?, curve))
    }

    /// Bandit PPO from `init` against `ref_logp`, rewarded by `rm [X·Y]` (see the module docs).
    /// Returns the weights and the expected true reward before the first and after every
    /// iteration (`ppo_iterations + 1` values).
    fn ppo(
        &self,
        init: &MlpWeights,
        ref_logp: &[f64],
        rm: &[f64],
        setup: &Setup,
        rng: &mut StdRng,
        stage: &str,
    ) -> Result<(MlpWeights, Vec<f64>), Error> {
        let cfg = self.cfg;
        let (nx, ny, n) = (cfg.n_prompts, cfg.n_responses, cfg.ppo_batch);
        let mut model = init.to_module::<B>(self.device);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, Mlp<B>>();
        let mut curve = Vec::with_capacity(cfg.ppo_iterations + 1);
        let mut step = 0;
        for _ in 0..cfg.ppo_iterations {
            let old: Vec<f64> = read(self.logp(&model))?.iter().map(|&v| v as f64).collect();
            let probs: Vec<f64> = old.iter().map(|v| v.exp()).collect();
            curve.push(setup.expected_true_reward(&probs));
            // Rollouts: prompt i mod X, response ~ π_old(·|x).
            let cells: Vec<usize> = (0..n)
                .map(|i| {
                    let x = i % nx;
                    x * ny + categorical(rng, &probs[x * ny..(x + 1) * ny])
                })
                .collect();
            // KL-penalised reward, per-prompt mean baseline, whitened advantages.
            let reward: Vec<f64> = cells
                .iter()
                .map(|&c| rm[c] - cfg.beta * (old[c] - ref_logp[c]))
                .collect();
            let mut sum = vec![0.0; nx];
            let mut count = vec![0.0; nx];
            for (i, &r) in reward.iter().enumerate() {
                sum[i % nx] += r;
                count[i % nx] += 1.0;
            }
            let adv: Vec<f64> = reward
                .iter()
                .enumerate()
                .map(|(i, &r)| r - sum[i % nx] / count[i % nx])
                .collect();
            let adv = whiten(&adv, &vec![1.0; n], Shape::new(n, 1)?)?;
            let mut order: Vec<usize> = (0..n).collect();
            for _ in 0..cfg.ppo_epochs {
                for i in (1..n).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                for k in 0..cfg.ppo_minibatches {
                    let idx =
                        &order[k * n / cfg.ppo_minibatches..(k + 1) * n / cfg.ppo_minibatches];
                    let mc: Vec<usize> = idx.iter().map(|&i| cells[i]).collect();
                    let sel = selector::<B>(&mc, None, cfg.cells(), self.device);
                    let old_lp =
                        tensor1::<B>(&mc.iter().map(|&c| old[c]).collect::<Vec<_>>(), self.device);
                    let a = tensor1::<B>(
                        &idx.iter().map(|&i| adv[i]).collect::<Vec<_>>(),
                        self.device,
                    );
                    // ρ = exp(log π − log π_old); L = mean max(−A ρ, −A clip(ρ, 1 ± ε)).
                    let ratio = (select(&sel, self.logp(&model)) - old_lp).exp();
                    let clipped = ratio.clone().clamp(1.0 - cfg.ppo_clip, 1.0 + cfg.ppo_clip);
                    let loss = (a.clone().neg() * ratio).max_pair(a.neg() * clipped).mean();
                    check_loss(stage, step, scalar(&loss))?;
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = optim.step(cfg.ppo_lr, model, grads);
                    step += 1;
                }
            }
        }
        let w = MlpWeights::from_module(&model)?;
        let fin: Vec<f64> = self.logp_host(&w)?.iter().map(|v| v.exp()).collect();
        curve.push(setup.expected_true_reward(&fin));
        Ok((w, curve))
    }
}

/// A freshly initialised reward model of `cfg.rm_arch`.
fn rm_weights(cfg: &Fig1Config, rng: &mut StdRng) -> MlpWeights {
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    match cfg.rm_arch {
        RmArch::Pair => MlpWeights::init(nx + ny, cfg.rm_hidden, 1, rng),
        RmArch::PromptHeads => MlpWeights::init(nx, cfg.rm_hidden, ny, rng),
    }
}

/// Trains the reward model (Bradley–Terry, full batch, AdamW with `rm_weight_decay`) and returns
/// `r(x, y)` on every cell `[X·Y]` and the loss before each step.
fn train_reward_model<B: AutodiffBackend>(
    cfg: &Fig1Config,
    setup: &Setup,
    init: &MlpWeights,
    device: &B::Device,
) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    let inputs = match cfg.rm_arch {
        RmArch::Pair => {
            let mut v = vec![0.0; nx * ny * (nx + ny)];
            for x in 0..nx {
                for y in 0..ny {
                    let row = (x * ny + y) * (nx + ny);
                    v[row + x] = 1.0;
                    v[row + nx + y] = 1.0;
                }
            }
            tensor2::<B>(&v, nx * ny, nx + ny, device)
        }
        RmArch::PromptHeads => {
            let mut v = vec![0.0; nx * nx];
            for x in 0..nx {
                v[x * nx + x] = 1.0;
            }
            tensor2::<B>(&v, nx, nx, device)
        }
    };
    let c: Vec<usize> = setup
        .pairs
        .iter()
        .map(|p| p.prompt * ny + p.chosen)
        .collect();
    let r: Vec<usize> = setup
        .pairs
        .iter()
        .map(|p| p.prompt * ny + p.rejected)
        .collect();
    let sel = selector::<B>(&c, Some(&r), nx * ny, device);
    let mut model = init.to_module::<B>(device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.rm_weight_decay as f32)
        .init::<B, Mlp<B>>();
    let mut curve = Vec::with_capacity(cfg.rm_steps);
    for step in 0..cfg.rm_steps {
        // L_BT = −mean log σ(r(x, y_c) − r(x, y_r)).
        let rewards = model.forward(inputs.clone()).reshape([nx * ny]);
        let loss = log_sigmoid(select(&sel, rewards)).mean().neg();
        let v = scalar(&loss);
        check_loss("reward model", step, v)?;
        curve.push(v);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.rm_lr, model, grads);
    }
    let rewards = read(model.forward(inputs).reshape([nx * ny]))?;
    Ok((rewards.iter().map(|&v| v as f64).collect(), curve))
}

/// Mean over prompts of the total-variation distance `½ Σ_y |p(y|x) − q(y|x)|`.
pub fn mean_tv(p: &[f64], q: &[f64], n_responses: usize) -> f64 {
    let rows = p.len() / n_responses;
    p.chunks(n_responses)
        .zip(q.chunks(n_responses))
        .map(|(a, b)| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>())
        .sum::<f64>()
        / rows as f64
}

/// `exp` of a log-probability table, renormalised per row (f32 rounding) so that it is a valid
/// [`TabularPolicy`].
fn probs_of(logp: &[f64], n_responses: usize) -> Vec<f64> {
    let mut p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
    for row in p.chunks_mut(n_responses) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    p
}

/// Everything one seed measured. Tables are row-major `[X·Y]` (cell `x·Y + y`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig1Measurements {
    /// The seed.
    pub seed: u64,
    /// Prompts `X`.
    pub n_prompts: usize,
    /// Responses `Y`.
    pub n_responses: usize,
    /// `r*(x, y)`.
    pub true_reward: Vec<f64>,
    /// 1 where the cell appears in the preference data, else 0.
    pub coverage: Vec<f64>,
    /// The reward model's `r(x, y)`.
    pub rm_reward: Vec<f64>,
    /// Share of the preference pairs the reward model orders correctly (`r_c > r_r`).
    pub rm_accuracy: f64,
    /// Share of prompts whose reward-model argmax response is uncovered: where the learnt
    /// reward, and so `π*`, favours a response the data never compared.
    pub rm_argmax_uncovered: f64,
    /// `π_ref(y|x)` (SFT on the spread data).
    pub pi_ref: Vec<f64>,
    /// `π_DPO(y|x)`, DPO from `π_ref`.
    pub pi_dpo: Vec<f64>,
    /// `π_PPO(y|x)`, PPO from `π_ref`.
    pub pi_ppo: Vec<f64>,
    /// `π*(y|x) ∝ π_ref·exp(r_RM/β)`, the KL-regularised optimum of the learnt reward.
    pub pi_star: Vec<f64>,
    /// Expected true reward of `π_ref`.
    pub reward_ref: f64,
    /// Expected true reward of `π_DPO`.
    pub reward_dpo: f64,
    /// Expected true reward of `π_PPO`.
    pub reward_ppo: f64,
    /// Expected true reward of `π*`.
    pub reward_star: f64,
    /// Largest `π_DPO − π_ref` over uncovered cells.
    pub dpo_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub dpo_uncovered_cell: usize,
    /// Largest `π_PPO − π_ref` over uncovered cells.
    pub ppo_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub ppo_uncovered_cell: usize,
    /// Control: expected true reward of PPO from `π_ref` rewarded by the true reward `r*`
    /// instead of the reward model (an oracle reward, correct on uncovered cells too).
    pub reward_ppo_oracle: f64,
    /// Largest `π_PPO-oracle − π_ref` over uncovered cells.
    pub ppo_oracle_uncovered_increase: f64,
    /// Its cell `x·Y + y`.
    pub ppo_oracle_uncovered_cell: usize,
    /// Mean total variation between `π_DPO` and `π*`.
    pub dpo_tv_to_optimum: f64,
    /// Mean total variation between `π_PPO` and `π*`.
    pub ppo_tv_to_optimum: f64,
    /// Bradley–Terry loss before each reward-model step.
    pub curve_rm_loss: Vec<f64>,
    /// DPO loss before each step (DPO from `π_ref`).
    pub curve_dpo_loss: Vec<f64>,
    /// Expected true reward before the first and after every PPO iteration (from `π_ref`).
    pub curve_ppo_reward: Vec<f64>,
    /// Expected true reward of `π_ref^other` (SFT on other data).
    pub shift_reward_ref_other: f64,
    /// Expected true reward of `π_ref^sft` (SFT on the chosen responses).
    pub shift_reward_ref_sft: f64,
    /// DPO from `π_ref^other`.
    pub shift_reward_dpo_other: f64,
    /// DPO from `π_ref^sft`.
    pub shift_reward_dpo_sft: f64,
    /// PPO from `π_ref^other`.
    pub shift_reward_ppo_other: f64,
    /// PPO from `π_ref^sft`.
    pub shift_reward_ppo_sft: f64,
    /// DPO-Iter from `π_ref^other`: expected true reward per round (round 0 = one-round DPO).
    pub iter_reward_other: Vec<f64>,
    /// DPO-Iter from `π_ref^sft`, as `iter_reward_other`.
    pub iter_reward_sft: Vec<f64>,
}

/// One metric row: name, index (a cell `x·Y + y`, a step, a round; `None` for a scalar), value.
pub use claimbench_paper::metrics::MetricRow;

/// The scalar fields (name, accessor) of [`Fig1Measurements`], in metric order.
type Getter = fn(&Fig1Measurements) -> f64;
type Setter = fn(&mut Fig1Measurements, f64);

macro_rules! field_tables {
    (scalars: [$($s:ident),*], vectors: [$($v:ident),*]) => {
        const SCALARS: &[(&str, Getter, Setter)] = &[
            $((stringify!($s), |m| m.$s, |m, v| m.$s = v)),*
        ];
        type VecGetter = fn(&Fig1Measurements) -> &Vec<f64>;
        type VecSetter = fn(&mut Fig1Measurements) -> &mut Vec<f64>;
        const VECTORS: &[(&str, VecGetter, VecSetter)] = &[
            $((stringify!($v), |m| &m.$v, |m| &mut m.$v)),*
        ];
    };
}

field_tables!(
    scalars: [
        rm_accuracy, rm_argmax_uncovered, reward_ref, reward_dpo, reward_ppo, reward_ppo_oracle,
        reward_star, dpo_tv_to_optimum,
        ppo_tv_to_optimum, shift_reward_ref_other, shift_reward_ref_sft, shift_reward_dpo_other,
        shift_reward_dpo_sft, shift_reward_ppo_other, shift_reward_ppo_sft
    ],
    vectors: [
        true_reward, coverage, rm_reward, pi_ref, pi_dpo, pi_ppo, pi_star, curve_rm_loss,
        curve_dpo_loss, curve_ppo_reward, iter_reward_other, iter_reward_sft
    ]
);

impl Fig1Measurements {
    /// The measurements as metric rows:
    /// - `seed`, `n_prompts`, `n_responses` (no index);
    /// - scalars, no index: `rm_accuracy`, `rm_argmax_uncovered`, `reward_{ref,dpo,ppo,star}`
    ///   (expected true reward of `π_ref`, `π_DPO`, `π_PPO`, `π*`), `{dpo,ppo}_tv_to_optimum`,
    ///   `shift_reward_{ref,dpo,ppo}_{other,sft}`;
    /// - `dpo_uncovered_increase` / `ppo_uncovered_increase` / `ppo_oracle_uncovered_increase`,
    ///   indexed by their cell `x·Y + y`; `reward_ppo_oracle` (no index);
    /// - tables indexed by cell: `true_reward`, `coverage`, `rm_reward`, `pi_ref`, `pi_dpo`,
    ///   `pi_ppo`, `pi_star`;
    /// - curves indexed by step: `curve_rm_loss`, `curve_dpo_loss`, `curve_ppo_reward` (index =
    ///   PPO iterations done), `iter_reward_other` / `iter_reward_sft` (index = DPO-Iter round,
    ///   0 = one-round DPO).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows: Vec<MetricRow> = vec![
            MetricRow::new("seed", None, self.seed as f64),
            MetricRow::new("n_prompts", None, self.n_prompts as f64),
            MetricRow::new("n_responses", None, self.n_responses as f64),
            MetricRow::new(
                "dpo_uncovered_increase",
                Some(self.dpo_uncovered_cell as i64),
                self.dpo_uncovered_increase,
            ),
            MetricRow::new(
                "ppo_uncovered_increase",
                Some(self.ppo_uncovered_cell as i64),
                self.ppo_uncovered_increase,
            ),
            MetricRow::new(
                "ppo_oracle_uncovered_increase",
                Some(self.ppo_oracle_uncovered_cell as i64),
                self.ppo_oracle_uncovered_increase,
            ),
        ];
        for (name, get, _) in SCALARS {
            rows.push(MetricRow::new(*name, None, get(self)));
        }
        for (name, get, _) in VECTORS {
            for (i, &v) in get(self).iter().enumerate() {
                rows.push(MetricRow::new(*name, Some(i as i64), v));
            }
        }
        rows
    }

    /// The inverse of [`Fig1Measurements::metrics`]: every name must be present (vectors with
    /// indices `0..n`, no gaps or repeats; scalars once, without index). Errors:
    /// [`Error::Metrics`] naming the bad row.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let table = MetricTable::new(rows);
        let plain = |name: &str| table.scalar(name);
        let count = |name: &str| whole(table.scalar(name)?, name);
        let vector = |name: &str| table.dense(name);
        let cell = |name: &str| -> Result<(usize, f64), Error> {
            match table.indexed(name)?.as_slice() {
                [one] => Ok(*one),
                rs => Err(Error::Metrics(format!(
                    "{name} has {} rows; it needs exactly 1",
                    rs.len()
                ))),
            }
        };
        let (dpo_cell, dpo_inc) = cell("dpo_uncovered_increase")?;
        let (ppo_cell, ppo_inc) = cell("ppo_uncovered_increase")?;
        let (oracle_cell, oracle_inc) = cell("ppo_oracle_uncovered_increase")?;
        let mut m = Fig1Measurements {
            seed: count("seed")? as u64,
            n_prompts: count("n_prompts")?,
            n_responses: count("n_responses")?,
            true_reward: Vec::new(),
            coverage: Vec::new(),
            rm_reward: Vec::new(),
            rm_accuracy: 0.0,
            rm_argmax_uncovered: 0.0,
            pi_ref: Vec::new(),
            pi_dpo: Vec::new(),
            pi_ppo: Vec::new(),
            pi_star: Vec::new(),
            reward_ref: 0.0,
            reward_dpo: 0.0,
            reward_ppo: 0.0,
            reward_star: 0.0,
            dpo_uncovered_increase: dpo_inc,
            dpo_uncovered_cell: dpo_cell,
            ppo_uncovered_increase: ppo_inc,
            ppo_uncovered_cell: ppo_cell,
            reward_ppo_oracle: 0.0,
            ppo_oracle_uncovered_increase: oracle_inc,
            ppo_oracle_uncovered_cell: oracle_cell,
            dpo_tv_to_optimum: 0.0,
            ppo_tv_to_optimum: 0.0,
            curve_rm_loss: Vec::new(),
            curve_dpo_loss: Vec::new(),
            curve_ppo_reward: Vec::new(),
            shift_reward_ref_other: 0.0,
            shift_reward_ref_sft: 0.0,
            shift_reward_dpo_other: 0.0,
            shift_reward_dpo_sft: 0.0,
            shift_reward_ppo_other: 0.0,
            shift_reward_ppo_sft: 0.0,
            iter_reward_other: Vec::new(),
            iter_reward_sft: Vec::new(),
        };
        for (name, _, set) in SCALARS {
            set(&mut m, plain(name)?);
        }
        for (name, _, set) in VECTORS {
            *set(&mut m) = vector(name)?;
        }
        let cells = m.n_prompts * m.n_responses;
        for (name, get, _) in VECTORS.iter().take(7) {
            if get(&m).len() != cells {
                return Err(Error::Metrics(format!(
                    "{name} has {} cells; {} × {} needs {cells}",
                    get(&m).len(),
                    m.n_prompts,
                    m.n_responses
                )));
            }
        }
        Ok(m)
    }

    /// `|R_PPO(sft) − R_PPO(other)|`: PPO's sensitivity to its reference.
    pub fn ppo_reference_gap(&self) -> f64 {
        (self.shift_reward_ppo_sft - self.shift_reward_ppo_other).abs()
    }

    /// `|R_DPO(sft) − R_DPO(other)|`: DPO's sensitivity to its reference.
    pub fn dpo_reference_gap(&self) -> f64 {
        (self.shift_reward_dpo_sft - self.shift_reward_dpo_other).abs()
    }
}

/// DPO-Iter rounds from `start` (round 0's policy, whose reward is `iter[0]`): sample, label with
/// the reward model, DPO against the current policy. Returns the expected true reward per round,
/// round 0 included.
fn dpo_iter<B: AutodiffBackend + PreferenceBackend>(
    ctx: &Ctx<'_, B>,
    start: &MlpWeights,
    rm: &[f64],
    setup: &Setup,
    rng: &mut StdRng,
    stage: &str,
) -> Result<Vec<f64>, Error> {
    let cfg = ctx.cfg;
    let ny = cfg.n_responses;
    let mut cur = start.clone();
    let mut cur_logp = ctx.logp_host(&cur)?;
    let mut rewards = vec![setup.expected_true_reward(&probs_of(&cur_logp, ny))];
    for round in 1..=cfg.iter_rounds {
        let probs = probs_of(&cur_logp, ny);
        let mut pairs = Vec::new();
        for x in 0..cfg.n_prompts {
            let row = &probs[x * ny..(x + 1) * ny];
            let s: Vec<usize> = (0..cfg.iter_samples_per_prompt)
                .map(|_| categorical(rng, row))
                .collect();
            for two in s.chunks_exact(2) {
                let (a, b) = (two[0], two[1]);
                let (ra, rb) = (rm[x * ny + a], rm[x * ny + b]);
                if a != b && ra != rb {
                    let (c, r) = if ra > rb { (a, b) } else { (b, a) };
                    pairs.push(Preference::hard(x, c, r));
                }
            }
        }
        if !pairs.is_empty() {
            let (w, _) = ctx.dpo(&cur, &cur_logp, &pairs, &format!("{stage} round {round}"))?;
            cur = w;
            cur_logp = ctx.logp_host(&cur)?;
        }
        rewards.push(setup.expected_true_reward(&probs_of(&cur_logp, ny)));
    }
    Ok(rewards)
}

/// Runs the whole experiment for one seed (see the module docs). Same seed and config ⇒
/// bit-identical measurements on the same backend. Errors: [`Error::Fig1Setting`] for a bad
/// config, [`Error::Diverged`], [`Error::ReadBack`].
pub fn run<B: AutodiffBackend + PreferenceBackend>(
    cfg: &Fig1Config,
    seed: u64,
    device: &B::Device,
) -> Result<Fig1Measurements, Error> {
    let setup = Setup::generate(cfg, seed)?;
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    let ctx = Ctx::<B>::new(cfg, device);
    let mut init_rng = stream(seed, 3);
    let base = MlpWeights::init(nx, cfg.policy_hidden, ny, &mut init_rng);
    let rm_init = rm_weights(cfg, &mut init_rng);

    // Fig. 1: π_ref, the reward model, DPO and PPO from π_ref.
    let ref_w = ctx.sft(&base, &setup.ref_counts, "sft (ref)")?;
    let ref_logp = ctx.logp_host(&ref_w)?;
    let pi_ref = probs_of(&ref_logp, ny);
    let (rm, curve_rm_loss) = train_reward_model::<B>(cfg, &setup, &rm_init, device)?;
    let correct = setup
        .pairs
        .iter()
        .filter(|p| rm[p.prompt * ny + p.chosen] > rm[p.prompt * ny + p.rejected])
        .count();
    let rm_accuracy = correct as f64 / setup.pairs.len() as f64;
    let argmax_uncovered = (0..nx)
        .filter(|&x| {
            let row = &rm[x * ny..(x + 1) * ny];
            let best = (0..ny).fold(0, |b, y| if row[y] > row[b] { y } else { b });
            !setup.covered[x * ny + best]
        })
        .count();
    let (dpo_w, curve_dpo_loss) = ctx.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo (ref)")?;
    let pi_dpo = probs_of(&ctx.logp_host(&dpo_w)?, ny);
    let mut ppo_rng = stream(seed, 4);
    let (ppo_w, curve_ppo_reward) =
        ctx.ppo(&ref_w, &ref_logp, &rm, &setup, &mut ppo_rng, "ppo (ref)")?;
    let pi_ppo = probs_of(&ctx.logp_host(&ppo_w)?, ny);
    let mut oracle_rng = stream(seed, 5);
    let (oracle_w, _) = ctx.ppo(
        &ref_w,
        &ref_logp,
        &setup.true_reward,
        &setup,
        &mut oracle_rng,
        "ppo (oracle reward)",
    )?;
    let pi_oracle = probs_of(&ctx.logp_host(&oracle_w)?, ny);
    let (oracle_cell, oracle_inc) = setup.largest_uncovered_increase(&pi_oracle, &pi_ref);
    let star = kl_optimum(&TabularPolicy::new(nx, ny, pi_ref.clone())?, &rm, cfg.beta)?;
    let pi_star = star.probs().to_vec();
    let (dpo_cell, dpo_inc) = setup.largest_uncovered_increase(&pi_dpo, &pi_ref);
    let (ppo_cell, ppo_inc) = setup.largest_uncovered_increase(&pi_ppo, &pi_ref);

    // Distribution shift: two references from the same base, DPO / PPO / DPO-Iter from each.
    let mut shift = Vec::new();
    for (name, counts, tag) in [
        ("other", &setup.other_counts, 10u64),
        ("sft", &setup.chosen_counts, 20u64),
    ] {
        let w = ctx.sft(&base, counts, &format!("sft ({name})"))?;
        let lp = ctx.logp_host(&w)?;
        let r_ref = setup.expected_true_reward(&probs_of(&lp, ny));
        let (dw, _) = ctx.dpo(&w, &lp, &setup.pairs, &format!("dpo ({name})"))?;
        let r_dpo = setup.expected_true_reward(&probs_of(&ctx.logp_host(&dw)?, ny));
        let mut rng = stream(seed, tag);
        let (_, pcurve) = ctx.ppo(&w, &lp, &rm, &setup, &mut rng, &format!("ppo ({name})"))?;
        let r_ppo = pcurve.last().copied().unwrap_or(f64::NAN);
        let mut irng = stream(seed, tag + 1);
        let iter = dpo_iter(
            &ctx,
            &dw,
            &rm,
            &setup,
            &mut irng,
            &format!("dpo-iter ({name})"),
        )?;
        shift.push((r_ref, r_dpo, r_ppo, iter));
    }
    let [(ro, dpo_o, ppo_o, iter_o), (rs, dpo_s, ppo_s, iter_s)]: [_; 2] = shift
        .try_into()
        .map_err(|_| Error::Metrics("internal: two references expected".into()))?;

    Ok(Fig1Measurements {
        seed,
        n_prompts: nx,
        n_responses: ny,
        reward_ref: setup.expected_true_reward(&pi_ref),
        reward_dpo: setup.expected_true_reward(&pi_dpo),
        reward_ppo: setup.expected_true_reward(&pi_ppo),
        reward_star: setup.expected_true_reward(&pi_star),
        dpo_tv_to_optimum: mean_tv(&pi_dpo, &pi_star, ny),
        ppo_tv_to_optimum: mean_tv(&pi_ppo, &pi_star, ny),
        true_reward: setup.true_reward.clone(),
        coverage: setup
            .covered
            .iter()
            .map(|&c| if c { 1.0 } else { 0.0 })
            .collect(),
        rm_reward: rm,
        rm_accuracy,
        rm_argmax_uncovered: argmax_uncovered as f64 / nx as f64,
        pi_ref,
        pi_dpo,
        pi_ppo,
        pi_star,
        dpo_uncovered_increase: dpo_inc,
        dpo_uncovered_cell: dpo_cell,
        ppo_uncovered_increase: ppo_inc,
        ppo_uncovered_cell: ppo_cell,
        reward_ppo_oracle: setup.expected_true_reward(&pi_oracle),
        ppo_oracle_uncovered_increase: oracle_inc,
        ppo_oracle_uncovered_cell: oracle_cell,
        curve_rm_loss,
        curve_dpo_loss,
        curve_ppo_reward,
        shift_reward_ref_other: ro,
        shift_reward_ref_sft: rs,
        shift_reward_dpo_other: dpo_o,
        shift_reward_dpo_sft: dpo_s,
        shift_reward_ppo_other: ppo_o,
        shift_reward_ppo_sft: ppo_s,
        iter_reward_other: iter_o,
        iter_reward_sft: iter_s,
    })
}

/// The probability margin of the two uncovered-mass claims: DPO's largest increase must lie
/// above it, PPO's below it.
pub const UNCOVERED_MARGIN: f64 = 0.05;
const UNCOVERED_WHY: &str = "0.05 probability: the paper's cell goes 0.11 → 0.23 (+0.12); 0.05 is \
    well under that and well above what f32 rounding and PPO's sampling noise move a cell whose \
    reward the model does not favour";
/// The largest mean total variation to `π*` at which PPO counts as having learnt the optimum.
pub const OPTIMUM_TV_MARGIN: f64 = 0.1;

fn spec(id: &str, statement: &str, source: &str, metric: &str, test: TestSpec) -> ClaimSpec {
    ClaimSpec::new(PAPER, id, statement, source, metric, test)
}

/// The claims of the experiment (ids `dpo-ppo/fig1-…` and `dpo-ppo/shift-…`), before running.
/// Every one is a paired or one-sample ordering test over seeds (`min_seeds` 5, a proxy).
pub fn specs(cfg: &Fig1Config) -> Vec<ClaimSpec> {
    let size = format!("{} × {}", cfg.n_prompts, cfg.n_responses);
    let mut a = spec(
        "fig1-dpo-raises-uncovered",
        "DPO raises the probability of some response the preference data never cover for its \
         prompt",
        "Sec. 4.2, Fig. 1",
        &format!(
            "max over uncovered off-diagonal cells of π_DPO − π_ref ({size}); a = that, b = the \
             margin {UNCOVERED_MARGIN}"
        ),
        TestSpec::ordering(Direction::Greater),
    );
    a.paper_value = json!({"pi_ref": 0.11, "pi_dpo": 0.23, "increase": 0.12});
    a.margin_why = UNCOVERED_WHY.into();
    let mut b = spec(
        "fig1-ppo-keeps-uncovered-low",
        "PPO does not raise the probability of uncovered responses",
        "Sec. 4.2, Fig. 1",
        &format!(
            "max over uncovered off-diagonal cells of π_PPO − π_ref ({size}); a = that, b = the \
             margin {UNCOVERED_MARGIN}"
        ),
        TestSpec::ordering(Direction::Less),
    );
    b.paper_value = json!("low (Fig. 1)");
    b.margin_why = UNCOVERED_WHY.into();
    let mut c = spec(
        "fig1-ppo-beats-dpo",
        "PPO reaches a higher true reward than DPO from the same reference and preference data",
        "Sec. 4.2, Fig. 1",
        "expected true reward E_x E_{y~π} r*(x, y); a = PPO, b = DPO (paired by seed)",
        TestSpec::ordering(Direction::Greater),
    );
    c.paper_value = json!("PPO learns the optimum (diagonal)");
    c.margin_why =
        "ordering: no margin, the interval of the paired difference must exclude 0".into();
    let mut d = spec(
        "fig1-ppo-learns-kl-optimum",
        "PPO learns the optimum of the KL-regularised objective of its reward model",
        "Sec. 4.2, Fig. 1 (Sec. 4.1: π* ∝ π_ref·exp(r/β))",
        &format!(
            "mean total variation between π_PPO and π* ∝ π_ref·exp(r_RM/β); a = that, b = the \
             margin {OPTIMUM_TV_MARGIN}"
        ),
        TestSpec::ordering(Direction::Less),
    );
    d.paper_value = json!("PPO learns the optimum");
    d.margin_why = "0.1 total variation: a policy that has found the argmax of π* but not all of \
        its mass; larger would not be 'learns the optimum'"
        .into();
    let mut e = spec(
        "shift-sft-on-preference-data-helps-dpo",
        "DPO from a reference SFT-trained on the preference data beats DPO from a reference \
         trained on other data",
        "Sec. 5, Table 2 (SafeRLHF safety rate)",
        "expected true reward; a = DPO from π_ref^sft, b = DPO from π_ref^other",
        TestSpec::ordering(Direction::Greater),
    );
    e.paper_value = json!({"dpo_sft_other": 0.554, "dpo_sft_preference": 0.718});
    e.margin_why = c.margin_why.clone();
    let mut f = spec(
        "shift-ppo-less-sensitive-to-reference",
        "PPO's result depends less on the reference than DPO's",
        "Sec. 5, Table 2",
        "|R(π_ref^sft start) − R(π_ref^other start)| of expected true reward; a = PPO's, b = DPO's",
        TestSpec::ordering(Direction::Less),
    );
    f.paper_value = json!({"dpo_gap": 0.164, "ppo": 0.995});
    f.margin_why = c.margin_why.clone();
    let mut g = spec(
        "shift-dpo-iter-improves",
        "Iterative DPO (samples of the current policy labelled by the reward model) improves on \
         one round of DPO",
        "Sec. 5, Table 2 (DPO-Iter)",
        &format!(
            "expected true reward from π_ref^sft; a = after {} DPO-Iter rounds, b = one-round DPO",
            cfg.iter_rounds
        ),
        TestSpec::ordering(Direction::Greater),
    );
    g.paper_value =
        json!({"dpo": 0.718, "dpo_iter": 0.999, "hh_rlhf_dpo": 0.611, "hh_rlhf_dpo_iter": 0.678});
    g.margin_why = c.margin_why.clone();
    vec![a, b, c, d, e, f, g]
}

/// The verdicts of [`specs`] on per-seed measurements (one per seed, distinct seeds), through
/// `claimbench_claims::evaluate`.
pub fn evaluate(
    cfg: &Fig1Config,
    per_seed: &[Fig1Measurements],
    scale: &str,
) -> Result<Vec<Claim>, ClaimError> {
    let seeds: Vec<u64> = per_seed.iter().map(|m| m.seed).collect();
    let col = |f: fn(&Fig1Measurements) -> f64| per_seed.iter().map(f).collect::<Vec<f64>>();
    let constant = |v: f64| vec![v; per_seed.len()];
    let evidence = [
        Evidence::Paired {
            a: col(|m| m.dpo_uncovered_increase),
            b: constant(UNCOVERED_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.ppo_uncovered_increase),
            b: constant(UNCOVERED_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.reward_ppo),
            b: col(|m| m.reward_dpo),
        },
        Evidence::Paired {
            a: col(|m| m.ppo_tv_to_optimum),
            b: constant(OPTIMUM_TV_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.shift_reward_dpo_sft),
            b: col(|m| m.shift_reward_dpo_other),
        },
        Evidence::Paired {
            a: col(Fig1Measurements::ppo_reference_gap),
            b: col(Fig1Measurements::dpo_reference_gap),
        },
        Evidence::Paired {
            a: col(|m| m.iter_reward_sft.last().copied().unwrap_or(f64::NAN)),
            b: col(|m| m.shift_reward_dpo_sft),
        },
    ];
    specs(cfg)
        .iter()
        .zip(&evidence)
        .map(|(s, e)| claimbench_claims::evaluate(s, e, &seeds, scale))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type T = Autodiff<Flex>;

    /// A tiny config for unit tests (well under a second per run).
    fn tiny() -> Fig1Config {
        Fig1Config {
            sft_steps: 60,
            rm_steps: 60,
            dpo_steps: 40,
            ppo_iterations: 6,
            ppo_batch: 64,
            iter_rounds: 1,
            ..Fig1Config::for_scale(Scale::Smoke)
        }
    }

    #[test]
    fn scales_validate_and_bad_settings_are_named() {
        for s in Scale::ALL {
            Fig1Config::for_scale(s).validate().unwrap();
        }
        let base = Fig1Config::for_scale(Scale::Small);
        let cases: Vec<(Fig1Config, &str)> = vec![
            (
                Fig1Config {
                    beta: 0.0,
                    ..base.clone()
                },
                "beta = 0",
            ),
            (
                Fig1Config {
                    beta: f64::NAN,
                    ..base.clone()
                },
                "beta = NaN",
            ),
            (
                Fig1Config {
                    dpo_steps: 0,
                    ..base.clone()
                },
                "dpo_steps = 0",
            ),
            (
                Fig1Config {
                    policy_hidden: 0,
                    ..base.clone()
                },
                "policy_hidden = 0",
            ),
            (
                Fig1Config {
                    rm_hidden: 0,
                    ..base.clone()
                },
                "rm_hidden = 0",
            ),
            (
                Fig1Config {
                    pairs_per_prompt: 0,
                    ..base.clone()
                },
                "pairs_per_prompt = 0",
            ),
            (
                Fig1Config {
                    pairs_per_prompt: 4,
                    ..base.clone()
                },
                "pairs_per_prompt = 4",
            ),
            (
                Fig1Config {
                    covered_per_prompt: 8,
                    ..base.clone()
                },
                "covered_per_prompt = 8",
            ),
            (
                Fig1Config {
                    ppo_batch: 3,
                    ..base.clone()
                },
                "ppo_batch = 3",
            ),
            (
                Fig1Config {
                    off_diagonal_max: 1.0,
                    ..base.clone()
                },
                "off_diagonal_max = 1",
            ),
            (
                Fig1Config {
                    other_covered_share: -0.1,
                    ..base.clone()
                },
                "other_covered_share = -0.1",
            ),
            (
                Fig1Config {
                    rm_weight_decay: -1.0,
                    ..base.clone()
                },
                "rm_weight_decay = -1",
            ),
            (
                Fig1Config {
                    ppo_clip: 0.0,
                    ..base.clone()
                },
                "ppo_clip = 0",
            ),
        ];
        for (cfg, needle) in cases {
            let e = cfg.validate().unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
            assert!(run::<T>(&cfg, 0, &Default::default()).is_err());
        }
        let text = serde_json::to_string(&base).unwrap();
        let back: Fig1Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, base);
        let extra = text.replacen('{', "{\"bogus\": 1, ", 1);
        assert!(serde_json::from_str::<Fig1Config>(&extra).is_err());
    }

    #[test]
    fn setup_covers_the_diagonal_labels_by_true_reward_and_leaves_cells_uncovered() {
        let cfg = Fig1Config::for_scale(Scale::Small);
        let s = Setup::generate(&cfg, 3).unwrap();
        let ny = cfg.n_responses;
        assert_eq!(s.pairs.len(), cfg.n_prompts * cfg.pairs_per_prompt);
        for x in 0..cfg.n_prompts {
            assert!(s.covered[x * ny + x]);
            let n_cov = s.covered[x * ny..(x + 1) * ny]
                .iter()
                .filter(|&&c| c)
                .count();
            assert_eq!(n_cov, cfg.covered_per_prompt);
            assert!(s.pairs.iter().any(|p| p.prompt == x && p.chosen == x));
        }
        for p in &s.pairs {
            assert!(
                s.true_reward[p.prompt * ny + p.chosen] > s.true_reward[p.prompt * ny + p.rejected]
            );
        }
        assert_eq!(Setup::generate(&cfg, 3).unwrap(), s);
        assert_ne!(Setup::generate(&cfg, 4).unwrap(), s);
    }

    #[test]
    fn dpo_loss_starts_at_log2_decreases_and_matches_the_f64_reference() {
        let cfg = tiny();
        let device = Default::default();
        let setup = Setup::generate(&cfg, 1).unwrap();
        let ctx = Ctx::<T>::new(&cfg, &device);
        let mut rng = stream(1, 3);
        let base = MlpWeights::init(8, cfg.policy_hidden, 8, &mut rng);
        let ref_w = ctx.sft(&base, &setup.ref_counts, "sft").unwrap();
        let ref_logp = ctx.logp_host(&ref_w).unwrap();
        let (w, curve) = ctx.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
        assert!((curve[0] - 2f64.ln()).abs() < 1e-5, "{}", curve[0]);
        assert!(*curve.last().unwrap() < 0.9 * curve[0], "{curve:?}");
        // The burn loss of the trained policy equals the f64 tabular DPO loss on its table.
        let lp = ctx.logp_host(&w).unwrap();
        let pol = TabularPolicy::new(8, 8, probs_of(&lp, 8)).unwrap();
        let reference = TabularPolicy::new(8, 8, probs_of(&ref_logp, 8)).unwrap();
        let f64_loss = crate::tabular::dpo_loss(&pol, &reference, &setup.pairs, cfg.beta).unwrap();
        let (_, again) = ctx.dpo(&w, &ref_logp, &setup.pairs, "dpo").unwrap();
        assert!(
            (again[0] - f64_loss).abs() < 1e-4,
            "{} vs {f64_loss}",
            again[0]
        );
    }

    /// The DPO stage trains the same through the cubecl kernels (burn's fused wgpu, lavapipe on a
    /// CPU-only machine) as through the flex composition: same loss curve and final table within
    /// f32 tolerance. Skipped without a wgpu device unless `CLAIMBENCH_REQUIRE_DEVICE=1`.
    #[test]
    fn dpo_trains_the_same_through_the_kernels_and_the_composition() {
        if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>(
            "fig1 dpo on wgpu",
        )
        .is_none()
        {
            return;
        }
        let cfg = Fig1Config {
            dpo_steps: 40,
            ..tiny()
        };
        let setup = Setup::generate(&cfg, 4).unwrap();
        let flex_device = Default::default();
        let flex = Ctx::<T>::new(&cfg, &flex_device);
        let mut rng = stream(4, 3);
        let base = MlpWeights::init(8, cfg.policy_hidden, 8, &mut rng);
        let ref_w = flex.sft(&base, &setup.ref_counts, "sft").unwrap();
        let ref_logp = flex.logp_host(&ref_w).unwrap();
        let (w_flex, c_flex) = flex.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
        type W = Autodiff<burn::backend::Wgpu>;
        let wgpu_device = Default::default();
        let wgpu = Ctx::<W>::new(&cfg, &wgpu_device);
        let (w_wgpu, c_wgpu) = wgpu.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo").unwrap();
        for (i, (a, b)) in c_flex.iter().zip(&c_wgpu).enumerate() {
            assert!((a - b).abs() < 2e-4, "step {i}: flex {a} vs wgpu {b}");
        }
        let (pf, pw) = (
            flex.logp_host(&w_flex).unwrap(),
            flex.logp_host(&w_wgpu).unwrap(),
        );
        let worst = pf
            .iter()
            .zip(&pw)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "final log-probs differ by {worst}");
    }

    #[test]
    fn reward_model_orders_every_covered_pair() {
        for rm_arch in [RmArch::PromptHeads, RmArch::Pair] {
            let cfg = Fig1Config { rm_arch, ..tiny() };
            let setup = Setup::generate(&cfg, 2).unwrap();
            let mut rng = stream(2, 3);
            let init = rm_weights(&cfg, &mut rng);
            let (rm, curve) =
                train_reward_model::<T>(&cfg, &setup, &init, &Default::default()).unwrap();
            assert_eq!(rm.len(), 64);
            for p in &setup.pairs {
                assert!(
                    rm[p.prompt * 8 + p.chosen] > rm[p.prompt * 8 + p.rejected],
                    "{rm_arch:?} {p:?}"
                );
            }
            assert!(curve.last().unwrap() < &(0.5 * curve[0]), "{curve:?}");
        }
    }

    #[test]
    fn same_seed_is_bit_identical_and_metrics_round_trip() {
        let cfg = tiny();
        let device = Default::default();
        let a = run::<T>(&cfg, 7, &device).unwrap();
        let b = run::<T>(&cfg, 7, &device).unwrap();
        assert_eq!(a, b);
        let c = run::<T>(&cfg, 8, &device).unwrap();
        assert_ne!(a.pi_dpo, c.pi_dpo);
        for t in [&a.pi_ref, &a.pi_dpo, &a.pi_ppo, &a.pi_star] {
            for row in t.chunks(8) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }
        }
        assert_eq!(a.curve_ppo_reward.len(), cfg.ppo_iterations + 1);
        assert_eq!(a.iter_reward_sft.len(), cfg.iter_rounds + 1);
        assert_eq!(a.coverage[a.dpo_uncovered_cell], 0.0);
        let rows = a.metrics();
        assert_eq!(Fig1Measurements::from_metrics(&rows).unwrap(), a);
        // Broken rows are named.
        let missing: Vec<_> = rows
            .iter()
            .filter(|r| r.metric != "reward_dpo")
            .cloned()
            .collect();
        let e = Fig1Measurements::from_metrics(&missing).unwrap_err();
        assert!(e.to_string().contains("reward_dpo"), "{e}");
        let mut dup = rows.clone();
        dup.push(MetricRow::new("pi_ref", Some(3), 0.5));
        assert!(Fig1Measurements::from_metrics(&dup).is_err());
        // The JSON form keeps every field (serde_json may move a float by one ulp).
        let text = serde_json::to_string(&a).unwrap();
        let back: Fig1Measurements = serde_json::from_str(&text).unwrap();
        assert_eq!(back.metrics().len(), rows.len());
        assert!((back.reward_dpo - a.reward_dpo).abs() < 1e-12);
    }

    #[test]
    fn other_table_sizes_and_the_pair_reward_model_run() {
        let cfg = Fig1Config {
            n_prompts: 5,
            n_responses: 4,
            covered_per_prompt: 2,
            pairs_per_prompt: 1,
            rm_arch: RmArch::Pair,
            ppo_batch: 20,
            ..tiny()
        };
        let m = run::<T>(&cfg, 0, &Default::default()).unwrap();
        assert_eq!(m.pi_ppo.len(), 20);
        for row in m.pi_dpo.chunks(4) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        assert_eq!(m.coverage.iter().sum::<f64>(), 10.0);
        assert!(m.ppo_uncovered_cell < 20 && m.coverage[m.ppo_uncovered_cell] == 0.0);
        assert_eq!(Fig1Measurements::from_metrics(&m.metrics()).unwrap(), m);
    }

    #[test]
    fn claims_get_verdicts_from_the_measurements() {
        let cfg = tiny();
        let device = Default::default();
        let runs: Vec<_> = (0..2)
            .map(|s| run::<T>(&cfg, s, &device).unwrap())
            .collect();
        let claims = evaluate(&cfg, &runs, "smoke").unwrap();
        assert_eq!(claims.len(), specs(&cfg).len());
        for c in &claims {
            assert!(c.id.starts_with("dpo-ppo/"));
            // Two seeds are below min_seeds 5: every verdict is inconclusive.
            assert_eq!(c.verdict.as_str(), "inconclusive", "{c:?}");
        }
        // Synthetic per-seed numbers that make every claim hold, then fail: the verdicts follow.
        let make = |seed: u64, good: bool| {
            let mut m = runs[0].clone();
            m.seed = seed;
            let j = seed as f64 * 1e-3;
            let s = if good { 1.0 } else { -1.0 };
            m.dpo_uncovered_increase = UNCOVERED_MARGIN + s * (0.1 + j);
            m.ppo_uncovered_increase = UNCOVERED_MARGIN - s * (0.04 + j);
            m.reward_ppo = 0.9 + j;
            m.reward_dpo = 0.9 - s * (0.2 + j);
            m.ppo_tv_to_optimum = OPTIMUM_TV_MARGIN - s * (0.05 + j);
            m.shift_reward_dpo_sft = 0.8 + j;
            m.shift_reward_dpo_other = 0.8 - s * (0.3 + j);
            m.shift_reward_ppo_sft = 0.95;
            m.shift_reward_ppo_other = 0.95 - (if good { 0.01 } else { 0.6 }) - j;
            m.iter_reward_sft = vec![0.8 + j, 0.8 + j + s * (0.1 + j)];
            m
        };
        for (good, want) in [(true, "reproduced"), (false, "not-reproduced")] {
            let per: Vec<_> = (0..5).map(|s| make(s, good)).collect();
            for c in evaluate(&cfg, &per, "small").unwrap() {
                assert_eq!(c.verdict.as_str(), want, "{}: {}", c.id, c.details);
            }
        }
        // Repeated seeds are an error, not a verdict.
        let twice = vec![runs[0].clone(), runs[0].clone()];
        assert!(evaluate(&cfg, &twice, "smoke").is_err());
    }

    /// Prints the `small` claims for seeds 0..5:
    /// `cargo test --release -p claimbench-dpo-ppo -- --ignored --nocapture small_claims`.
    #[test]
    #[ignore]
    fn small_claims() {
        let scale: Scale = std::env::var("FIG1_SCALE")
            .map(|s| s.parse().expect("FIG1_SCALE is smoke, small or full"))
            .unwrap_or_default();
        // FIG1_CONFIG='{"rm_arch": "pair"}' overrides fields of the scale's config.
        let mut value = serde_json::to_value(Fig1Config::for_scale(scale)).unwrap();
        if let Ok(text) = std::env::var("FIG1_CONFIG") {
            let over: serde_json::Value = serde_json::from_str(&text).unwrap();
            for (k, v) in over.as_object().unwrap() {
                value[k] = v.clone();
            }
        }
        let cfg: Fig1Config = serde_json::from_value(value).unwrap();
        cfg.validate().unwrap();
        let device = Default::default();
        let n = if scale == Scale::Smoke { 2 } else { 5 };
        let t = std::time::Instant::now();
        let runs: Vec<_> = (0..n)
            .map(|s| {
                let t = std::time::Instant::now();
                let m = run::<T>(&cfg, s, &device).unwrap();
                eprintln!("seed {s}: {:.2}s", t.elapsed().as_secs_f64());
                m
            })
            .collect();
        eprintln!(
            "total {:.1}s for {n} seeds at {scale}",
            t.elapsed().as_secs_f64()
        );
        for m in &runs {
            let ppo_tv: Vec<f64> = (0..m.n_prompts)
                .map(|x| {
                    let r = x * m.n_responses..(x + 1) * m.n_responses;
                    (mean_tv(&m.pi_ppo[r.clone()], &m.pi_star[r], m.n_responses) * 100.0).round()
                        / 100.0
                })
                .collect();
            if std::env::var("FIG1_DEBUG").is_ok() {
                for (x, tv) in ppo_tv.iter().enumerate() {
                    if *tv > 0.5 {
                        let r = x * m.n_responses..(x + 1) * m.n_responses;
                        let f = |v: &[f64]| {
                            v.iter()
                                .map(|p| format!("{p:.3}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        };
                        eprintln!(
                            "  x{x} ref  {}\n  x{x} ppo  {}\n  x{x} star {}\n  x{x} rm   {}\n  x{x} cov  {}\n  x{x} r*   {}",
                            f(&m.pi_ref[r.clone()]),
                            f(&m.pi_ppo[r.clone()]),
                            f(&m.pi_star[r.clone()]),
                            f(&m.rm_reward[r.clone()]),
                            f(&m.coverage[r.clone()]),
                            f(&m.true_reward[r])
                        );
                    }
                }
            }
            let c = &m.curve_ppo_reward;
            eprintln!(
                "seed {}: PPO true reward at 0, 1/4, 1/2, end: {:.3} {:.3} {:.3} {:.3}; TV(π_PPO, π*) per prompt {ppo_tv:?}; oracle PPO R {:.3} uncovered +{:.3}",
                m.seed,
                c[0],
                c[c.len() / 4],
                c[c.len() / 2],
                c[c.len() - 1],
                m.reward_ppo_oracle,
                m.ppo_oracle_uncovered_increase
            );
            eprintln!(
                "seed {}: R ref {:.3} dpo {:.3} ppo {:.3} star {:.3} | uncovered dpo +{:.3} @{} ({:.3}→{:.3}) ppo +{:.3} @{} | tv dpo {:.3} ppo {:.3} | rm acc {:.2} argmax-unc {:.2} | shift ref o/s {:.3}/{:.3} dpo {:.3}/{:.3} ppo {:.3}/{:.3} | iter o {:?} s {:?}",
                m.seed,
                m.reward_ref,
                m.reward_dpo,
                m.reward_ppo,
                m.reward_star,
                m.dpo_uncovered_increase,
                m.dpo_uncovered_cell,
                m.pi_ref[m.dpo_uncovered_cell],
                m.pi_dpo[m.dpo_uncovered_cell],
                m.ppo_uncovered_increase,
                m.ppo_uncovered_cell,
                m.dpo_tv_to_optimum,
                m.ppo_tv_to_optimum,
                m.rm_accuracy,
                m.rm_argmax_uncovered,
                m.shift_reward_ref_other,
                m.shift_reward_ref_sft,
                m.shift_reward_dpo_other,
                m.shift_reward_dpo_sft,
                m.shift_reward_ppo_other,
                m.shift_reward_ppo_sft,
                m.iter_reward_other
                    .iter()
                    .map(|v| (v * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>(),
                m.iter_reward_sft
                    .iter()
                    .map(|v| (v * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>(),
            );
        }
        for c in evaluate(&cfg, &runs, scale.name()).unwrap() {
            eprintln!("{} [{}]: {}", c.id, c.verdict, c.details);
        }
    }
}
