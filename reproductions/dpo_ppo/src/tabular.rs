//! The paper's tabular facts (arXiv 2404.10719, Sec. 4.1, Theorem 4.1 and Table 1) as functions
//! that return numbers, and the random tabular problem on which the KL-regularised optimum turns
//! the DPO loss into the reward-model loss.
//!
//! A tabular policy is a table `π(y | x)` over `X` prompts and `Y` responses ([`TabularPolicy`]);
//! a preference data set is a list of [`Preference`]s `(x, y_c ≻ y_r)` with the probability `p`
//! that the label says `y_c ≻ y_r` (1 for a hard label). Indices are 0-based everywhere, in
//! messages too: the paper's `y1, y2, y3` are `0, 1, 2` here.
//!
//! # The equations
//!
//! DPO loss of `π` on the data, with `h = log(π(y_c|x)/π_ref(y_c|x)) − log(π(y_r|x)/π_ref(y_r|x))`:
//!
//! ```text
//! L_DPO(π) = (1/n) Σ_i [ −p_i log σ(β h_i) − (1 − p_i) log σ(−β h_i) ]       (hard labels: p = 1)
//! ```
//!
//! Bradley–Terry (reward-model) loss of a reward `r`, the same with `β h` replaced by
//! `r(x, y_c) − r(x, y_r)`. The KL-regularised RL objective and its maximiser (the PPO optimum;
//! DPO paper eq. 4):
//!
//! ```text
//! J(π) = (1/X) Σ_x [ Σ_y π(y|x) r(x,y) − β KL(π(·|x) ‖ π_ref(·|x)) ],
//! π*(y|x) = π_ref(y|x) exp(r(x,y)/β) / Z(x),   max J = (1/X) Σ_x β log Z(x)
//! ```
//!
//! Since `β log(π*/π_ref) = r − β log Z(x)`, plugging `π*` into `L_DPO` gives `β h = r_c − r_r`
//! exactly, so `L_DPO(π*) = L_BT(r)` ([`optimum_losses`]). Each pair's term is the cross-entropy
//! between Bernoulli(`p`) and Bernoulli(`σ(β h)`), so every policy has
//! `L_DPO(π) ≥ (1/n) Σ_i H(p_i)` (Gibbs), with equality iff `σ(β h_i) = p_i` for every pair
//! ([`dpo_loss_lower_bound`]): when the labels are Bradley–Terry probabilities of a reward `r`,
//! `π*` attains it, so the bound is the infimum.
//!
//! # Table 1, as read from `papers.md`
//!
//! One prompt, three responses, `π_ref = (0.5, 0.5, 0)`, data `{y1 ≻ y2}` (one hard label).
//! Writing `π = (a, b, c)`, the reference cancels because `π_ref(y1) = π_ref(y2)`, and
//! `L_DPO = −log σ(β log(a/b)) = log(1 + (b/a)^β)` ([`table1_closed_form_dpo_loss`]). Its infimum
//! over policies is 0 ([`TABLE1_DPO_INFIMUM`]): the loss is positive for every `b > 0` and tends
//! to 0 as `b/a → 0`; it is attained at `b = 0, a > 0` under `log 0 = −∞` (then `h = +∞` and
//! `−log σ(+∞) = 0`). `c` never enters, so `π = (0.1, 0, 0.9)` ([`TABLE1_DPO_SOLUTION`]) is a
//! DPO optimum though `π_ref(y3) = 0`.
//!
//! For PPO the reading is: the reward model is trained on the same data, so only
//! `Δ = r(y1) − r(y2)` is pinned down (the BT loss `log(1 + e^{−Δ})` drives `Δ → ∞` on a single
//! hard label) and `r(y3)` is arbitrary. For every finite reward, `π*(y3) = π_ref(y3)·(…) = 0`
//! (equivalently, `KL(π ‖ π_ref) = ∞` whenever `π(y3) > 0`, so `J(π) = −∞`), and
//! `π* = (1, e^{−Δ/β}, 0)/(1 + e^{−Δ/β}) → (1, 0, 0)` ([`TABLE1_PPO_LIMIT`]) as `Δ → ∞`.
//! The limit also has DPO loss 0: every PPO solution is a DPO solution, not conversely
//! (Theorem 4.1, `Π_PPO ⊊ Π_DPO`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dpo::{DpoConfig, log_sigmoid, sigmoid};
use crate::error::Error;

/// How far a policy row's sum may be from 1.
pub const ROW_SUM_TOLERANCE: f64 = 1e-9;

/// A tabular policy `π(y | x)`: `X` prompts × `Y` responses, row-major (`π(y|x)` at
/// `x·Y + y`), every row a probability distribution (entries in `[0, 1]`, sum within
/// [`ROW_SUM_TOLERANCE`] of 1). Zero entries are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularPolicy {
    n_prompts: usize,
    n_responses: usize,
    probs: Vec<f64>,
}

impl TabularPolicy {
    /// A validated policy. Errors: [`Error::EmptyTable`] (`X = 0` or `Y < 2`),
    /// [`Error::TableShape`], [`Error::Probability`] (NaN or outside `[0, 1]`),
    /// [`Error::NotDistribution`].
    pub fn new(n_prompts: usize, n_responses: usize, probs: Vec<f64>) -> Result<Self, Error> {
        check_table("policy", n_prompts, n_responses, probs.len())?;
        for (x, row) in probs.chunks(n_responses).enumerate() {
            for (y, &value) in row.iter().enumerate() {
                if !(0.0..=1.0).contains(&value) {
                    return Err(Error::Probability {
                        prompt: x,
                        response: y,
                        value,
                    });
                }
            }
            let sum: f64 = row.iter().sum();
            if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
                return Err(Error::NotDistribution { prompt: x, sum });
            }
        }
        Ok(TabularPolicy {
            n_prompts,
            n_responses,
            probs,
        })
    }

    /// `X`.
    pub fn n_prompts(&self) -> usize {
        self.n_prompts
    }

    /// `Y`.
    pub fn n_responses(&self) -> usize {
        self.n_responses
    }

    /// `π(y | x)`. Panics if `x` or `y` is out of range.
    pub fn prob(&self, x: usize, y: usize) -> f64 {
        assert!(x < self.n_prompts && y < self.n_responses);
        self.probs[x * self.n_responses + y]
    }

    /// `π(· | x)`. Panics if `x` is out of range.
    pub fn row(&self, x: usize) -> &[f64] {
        &self.probs[x * self.n_responses..(x + 1) * self.n_responses]
    }

    /// The whole table, row-major.
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    fn check_same_shape(&self, other: &TabularPolicy, name: &'static str) -> Result<(), Error> {
        if self.n_prompts == other.n_prompts && self.n_responses == other.n_responses {
            Ok(())
        } else {
            Err(Error::TableMismatch {
                name,
                n_prompts: other.n_prompts,
                n_responses: other.n_responses,
                expected_prompts: self.n_prompts,
                expected_responses: self.n_responses,
            })
        }
    }
}

fn check_table(
    name: &'static str,
    n_prompts: usize,
    n_responses: usize,
    len: usize,
) -> Result<(), Error> {
    if n_prompts == 0 || n_responses < 2 {
        return Err(Error::EmptyTable {
            n_prompts,
            n_responses,
        });
    }
    if len != n_prompts * n_responses {
        return Err(Error::TableShape {
            name,
            len,
            n_prompts,
            n_responses,
        });
    }
    Ok(())
}

fn check_reward(reward: &[f64], n_prompts: usize, n_responses: usize) -> Result<(), Error> {
    check_table("reward", n_prompts, n_responses, reward.len())?;
    for (i, &value) in reward.iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::Reward {
                prompt: i / n_responses,
                response: i % n_responses,
                value,
            });
        }
    }
    Ok(())
}

fn check_beta(beta: f64) -> Result<(), Error> {
    DpoConfig::new(beta, 0.0).map(|_| ())
}

/// One preference `(x, y_c ≻ y_r)`, labelled `y_c ≻ y_r` with probability `prob`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    /// The prompt `x`.
    pub prompt: usize,
    /// The response labelled preferred, `y_c`.
    pub chosen: usize,
    /// The response labelled dispreferred, `y_r`.
    pub rejected: usize,
    /// `P(y_c ≻ y_r)` in `[0, 1]`; 1 for a hard label.
    pub prob: f64,
}

impl Preference {
    /// A hard label: `y_c ≻ y_r` with probability 1.
    pub fn hard(prompt: usize, chosen: usize, rejected: usize) -> Self {
        Preference {
            prompt,
            chosen,
            rejected,
            prob: 1.0,
        }
    }
}

/// Checks the data set against an `X × Y` table: [`Error::EmptyData`], [`Error::PairIndex`],
/// [`Error::SameResponse`], [`Error::PreferenceProb`].
fn check_data(data: &[Preference], n_prompts: usize, n_responses: usize) -> Result<(), Error> {
    if data.is_empty() {
        return Err(Error::EmptyData);
    }
    for (pair, d) in data.iter().enumerate() {
        if d.prompt >= n_prompts || d.chosen >= n_responses || d.rejected >= n_responses {
            return Err(Error::PairIndex {
                pair,
                prompt: d.prompt,
                chosen: d.chosen,
                rejected: d.rejected,
                n_prompts,
                n_responses,
            });
        }
        if d.chosen == d.rejected {
            return Err(Error::SameResponse {
                pair,
                response: d.chosen,
            });
        }
        if !(0.0..=1.0).contains(&d.prob) {
            return Err(Error::PreferenceProb {
                pair,
                value: d.prob,
            });
        }
    }
    Ok(())
}

/// `−p log σ(z) − (1 − p) log σ(−z)`, dropping a term whose weight is 0 (so `z = ±∞` with a hard
/// label gives 0 or ∞, never `0 · ∞`).
fn soft_label_loss(p: f64, z: f64) -> f64 {
    let mut loss = 0.0;
    if p > 0.0 {
        loss -= p * log_sigmoid(z);
    }
    if p < 1.0 {
        loss -= (1.0 - p) * log_sigmoid(-z);
    }
    loss
}

/// `H(p) = −p log p − (1 − p) log(1 − p)`, with `0 log 0 = 0`.
fn binary_entropy(p: f64) -> f64 {
    let term = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    term(p) + term(1.0 - p)
}

/// The DPO loss `L_DPO(π)` of a tabular policy on a preference data set (mean over the data; see
/// the [module docs](self)).
///
/// Zeros in `π` are allowed: `π(y_r|x) = 0 < π(y_c|x)` gives `h = +∞` (a hard label's term is
/// then 0, the Table 1 optimum), `π(y_c|x) = 0 < π(y_r|x)` gives `h = −∞` (term ∞).
///
/// Errors: [`Error::Beta`]; [`Error::TableMismatch`] when `reference` has other dimensions;
/// the data errors ([`Error::EmptyData`], [`Error::PairIndex`], [`Error::SameResponse`],
/// [`Error::PreferenceProb`]); [`Error::ReferenceZero`] when `π_ref` is 0 on a response the
/// data uses; [`Error::UndefinedMargin`] when `π` is 0 on both responses of a pair.
pub fn dpo_loss(
    policy: &TabularPolicy,
    reference: &TabularPolicy,
    data: &[Preference],
    beta: f64,
) -> Result<f64, Error> {
    check_beta(beta)?;
    policy.check_same_shape(reference, "reference")?;
    check_data(data, policy.n_prompts, policy.n_responses)?;
    let mut sum = 0.0;
    for (pair, d) in data.iter().enumerate() {
        let x = d.prompt;
        for y in [d.chosen, d.rejected] {
            if reference.prob(x, y) == 0.0 {
                return Err(Error::ReferenceZero {
                    pair,
                    prompt: x,
                    response: y,
                });
            }
        }
        let (pc, pr) = (policy.prob(x, d.chosen), policy.prob(x, d.rejected));
        if pc == 0.0 && pr == 0.0 {
            return Err(Error::UndefinedMargin {
                pair,
                prompt: x,
                chosen: d.chosen,
                rejected: d.rejected,
            });
        }
        let h = (pc.ln() - reference.prob(x, d.chosen).ln())
            - (pr.ln() - reference.prob(x, d.rejected).ln());
        sum += soft_label_loss(d.prob, beta * h);
    }
    Ok(sum / data.len() as f64)
}

/// The Bradley–Terry (reward-model) loss of a reward table `r` (`X × Y`, row-major) on the data:
/// `(1/n) Σ_i [−p_i log σ(r(x, y_c) − r(x, y_r)) − (1 − p_i) log σ(r(x, y_r) − r(x, y_c))]`.
///
/// Errors: [`Error::EmptyTable`], [`Error::TableShape`], [`Error::Reward`] (NaN or ±∞), and the
/// data errors.
pub fn bradley_terry_loss(
    reward: &[f64],
    n_prompts: usize,
    n_responses: usize,
    data: &[Preference],
) -> Result<f64, Error> {
    check_reward(reward, n_prompts, n_responses)?;
    check_data(data, n_prompts, n_responses)?;
    let r = |x: usize, y: usize| reward[x * n_responses + y];
    let sum: f64 = data
        .iter()
        .map(|d| soft_label_loss(d.prob, r(d.prompt, d.chosen) - r(d.prompt, d.rejected)))
        .sum();
    Ok(sum / data.len() as f64)
}

/// `(1/n) Σ_i H(p_i)`, the mean binary entropy of the labels: a lower bound on [`dpo_loss`] for
/// every policy and every `β` (each pair's term is a cross-entropy against Bernoulli(`p_i`)), and
/// the infimum when the labels are Bradley–Terry probabilities of some reward, which includes
/// every data set of hard labels whose preference graph has no cycle (e.g. Table 1: 0).
///
/// Errors: [`Error::EmptyData`], [`Error::PreferenceProb`]. (Indices are not checked: no table
/// is given.)
pub fn dpo_loss_lower_bound(data: &[Preference]) -> Result<f64, Error> {
    check_data(data, usize::MAX, usize::MAX)?;
    Ok(data.iter().map(|d| binary_entropy(d.prob)).sum::<f64>() / data.len() as f64)
}

/// The KL-regularised RL optimum `π*(y|x) = π_ref(y|x) exp(r(x,y)/β) / Z(x)` (the PPO target).
///
/// Computed with the row's largest `r/β` over the reference's support subtracted before `exp`,
/// so no overflow; where `π_ref(y|x) = 0`, `π*(y|x) = 0` exactly, whatever `r(x, y)`.
///
/// Errors: [`Error::Beta`], and [`Error::TableShape`] / [`Error::Reward`] for `reward`.
pub fn kl_optimum(
    reference: &TabularPolicy,
    reward: &[f64],
    beta: f64,
) -> Result<TabularPolicy, Error> {
    check_beta(beta)?;
    check_reward(reward, reference.n_prompts, reference.n_responses)?;
    let ny = reference.n_responses;
    let mut probs = vec![0.0; reference.probs.len()];
    for x in 0..reference.n_prompts {
        let row = reference.row(x);
        let r = &reward[x * ny..(x + 1) * ny];
        let m = (0..ny)
            .filter(|&y| row[y] > 0.0)
            .map(|y| r[y] / beta)
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = (0..ny)
            .map(|y| {
                if row[y] > 0.0 {
                    row[y] * (r[y] / beta - m).exp()
                } else {
                    0.0
                }
            })
            .collect();
        let z: f64 = w.iter().sum();
        for y in 0..ny {
            probs[x * ny + y] = w[y] / z;
        }
    }
    TabularPolicy::new(reference.n_prompts, ny, probs)
}

/// `KL(π(·|x) ‖ π_ref(·|x)) = Σ_y π log(π/π_ref)` per prompt (`[X]`), with `0 log 0 = 0` and
/// `+∞` when `π(y|x) > 0 = π_ref(y|x)`.
///
/// Errors: [`Error::TableMismatch`].
pub fn kl_divergence(policy: &TabularPolicy, reference: &TabularPolicy) -> Result<Vec<f64>, Error> {
    policy.check_same_shape(reference, "reference")?;
    Ok((0..policy.n_prompts)
        .map(|x| {
            policy
                .row(x)
                .iter()
                .zip(reference.row(x))
                .map(|(&p, &q)| {
                    if p == 0.0 {
                        0.0
                    } else if q == 0.0 {
                        f64::INFINITY
                    } else {
                        p * (p / q).ln()
                    }
                })
                .sum()
        })
        .collect())
}

/// The KL-regularised objective `J(π) = (1/X) Σ_x [Σ_y π(y|x) r(x,y) − β KL(π(·|x) ‖ π_ref(·|x))]`
/// (prompts uniform); `−∞` when `π` leaves the reference's support.
///
/// Errors: [`Error::Beta`], [`Error::TableMismatch`], [`Error::TableShape`] / [`Error::Reward`].
pub fn rl_objective(
    policy: &TabularPolicy,
    reference: &TabularPolicy,
    reward: &[f64],
    beta: f64,
) -> Result<f64, Error> {
    check_beta(beta)?;
    check_reward(reward, policy.n_prompts, policy.n_responses)?;
    let kl = kl_divergence(policy, reference)?;
    let ny = policy.n_responses;
    let total: f64 = (0..policy.n_prompts)
        .map(|x| {
            let er: f64 = policy
                .row(x)
                .iter()
                .zip(&reward[x * ny..(x + 1) * ny])
                .map(|(p, r)| p * r)
                .sum();
            er - beta * kl[x]
        })
        .sum();
    Ok(total / policy.n_prompts as f64)
}

/// `max_π J(π) = (1/X) Σ_x β log Z(x)`, `Z(x) = Σ_y π_ref(y|x) exp(r(x,y)/β)`, attained by
/// [`kl_optimum`] (computed with the same max-shift).
///
/// Errors: [`Error::Beta`], [`Error::TableShape`] / [`Error::Reward`].
pub fn rl_objective_max(
    reference: &TabularPolicy,
    reward: &[f64],
    beta: f64,
) -> Result<f64, Error> {
    check_beta(beta)?;
    check_reward(reward, reference.n_prompts, reference.n_responses)?;
    let ny = reference.n_responses;
    let total: f64 = (0..reference.n_prompts)
        .map(|x| {
            let row = reference.row(x);
            let r = &reward[x * ny..(x + 1) * ny];
            let m = (0..ny)
                .filter(|&y| row[y] > 0.0)
                .map(|y| r[y] / beta)
                .fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = (0..ny).map(|y| row[y] * (r[y] / beta - m).exp()).sum();
            beta * (m + z.ln())
        })
        .sum();
    Ok(total / reference.n_prompts as f64)
}

/// Table 1's infimum of the DPO loss over policies: 0 (see the [module docs](self#table-1-as-read-from-papersmd)).
pub const TABLE1_DPO_INFIMUM: f64 = 0.0;

/// The DPO optimum `π = (0.1, 0, 0.9)` that `papers.md` states for Table 1: loss 0, though it puts
/// 0.9 on `y3`, which the reference never produces.
pub const TABLE1_DPO_SOLUTION: [f64; 3] = [0.1, 0.0, 0.9];

/// The PPO solution of Table 1, `(1, 0, 0)`: the limit of `π*` as the learnt reward gap
/// `r(y1) − r(y2)` grows.
pub const TABLE1_PPO_LIMIT: [f64; 3] = [1.0, 0.0, 0.0];

/// Table 1's closed form `L_DPO(a, b, ·) = log(1 + (b/a)^β)` for `π = (a, b, c)` (computed as
/// `ln_1p`). Meant for `a > 0`; `a = 0 < b` gives ∞ and `a = b = 0` NaN.
pub fn table1_closed_form_dpo_loss(a: f64, b: f64, beta: f64) -> f64 {
    (b / a).powf(beta).ln_1p()
}

/// The paper's Table 1 problem: one prompt, three responses, `π_ref = (0.5, 0.5, 0)`, and the
/// single hard preference `y1 ≻ y2` (indices 0 ≻ 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Table1 {
    /// `π_ref = (0.5, 0.5, 0)`.
    pub reference: TabularPolicy,
    /// `{y1 ≻ y2}`.
    pub data: Vec<Preference>,
}

impl Default for Table1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Table1 {
    /// The problem as `papers.md` states it.
    pub fn new() -> Self {
        Table1 {
            reference: TabularPolicy::new(1, 3, vec![0.5, 0.5, 0.0])
                .expect("Table 1's reference is a distribution"),
            data: vec![Preference::hard(0, 0, 1)],
        }
    }

    /// `π = (a, b, c)` as a one-prompt tabular policy (validated).
    pub fn policy(probs: [f64; 3]) -> Result<TabularPolicy, Error> {
        TabularPolicy::new(1, 3, probs.to_vec())
    }

    /// [`dpo_loss`] of `π = probs` on `{y1 ≻ y2}`.
    pub fn dpo_loss(&self, probs: [f64; 3], beta: f64) -> Result<f64, Error> {
        dpo_loss(&Self::policy(probs)?, &self.reference, &self.data, beta)
    }

    /// The PPO optimum [`kl_optimum`] for the reward `(r(y1), r(y2), r(y3))`: always 0 on `y3`.
    pub fn ppo_optimum(&self, reward: [f64; 3], beta: f64) -> Result<[f64; 3], Error> {
        let p = kl_optimum(&self.reference, &reward, beta)?;
        Ok([p.prob(0, 0), p.prob(0, 1), p.prob(0, 2)])
    }
}

/// A seeded random tabular problem: `X` prompts × `Y` responses, a reference with full support,
/// a true reward, and Bradley–Terry labels on every pair of responses of every prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomTabular {
    /// `π_ref(·|x) = softmax(ℓ_x)`, logits `ℓ` uniform in `[−2, 2)`: every entry > 0.
    pub reference: TabularPolicy,
    /// The true reward `r(x, y)`, uniform in `[−3, 3)`, row-major `X × Y`.
    pub reward: Vec<f64>,
    /// For each prompt and each `i < j`: `(x, y_i ≻ y_j)` with `p = σ(r(x, y_i) − r(x, y_j))`.
    pub data: Vec<Preference>,
}

impl RandomTabular {
    /// Draws the problem from `seed` (rand's `StdRng`). Errors: [`Error::EmptyTable`] for `X = 0`
    /// or `Y < 2`.
    pub fn generate(seed: u64, n_prompts: usize, n_responses: usize) -> Result<Self, Error> {
        check_table("reference", n_prompts, n_responses, n_prompts * n_responses)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut probs = Vec::with_capacity(n_prompts * n_responses);
        for _ in 0..n_prompts {
            let w: Vec<f64> = (0..n_responses)
                .map(|_| rng.random_range(-2.0f64..2.0).exp())
                .collect();
            let z: f64 = w.iter().sum();
            probs.extend(w.iter().map(|w| w / z));
        }
        let reference = TabularPolicy::new(n_prompts, n_responses, probs)?;
        let reward: Vec<f64> = (0..n_prompts * n_responses)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let mut data = Vec::new();
        for x in 0..n_prompts {
            for i in 0..n_responses {
                for j in i + 1..n_responses {
                    let gap = reward[x * n_responses + i] - reward[x * n_responses + j];
                    data.push(Preference {
                        prompt: x,
                        chosen: i,
                        rejected: j,
                        prob: sigmoid(gap),
                    });
                }
            }
        }
        Ok(RandomTabular {
            reference,
            reward,
            data,
        })
    }

    /// `X`.
    pub fn n_prompts(&self) -> usize {
        self.reference.n_prompts
    }

    /// `Y`.
    pub fn n_responses(&self) -> usize {
        self.reference.n_responses
    }
}

/// The three numbers of the optimum identity, from [`optimum_losses`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimumLosses {
    /// `L_DPO(π*)`, the DPO loss of the KL-regularised optimum of the true reward.
    pub dpo_at_optimum: f64,
    /// `L_BT(r)`, the reward-model loss of the true reward.
    pub reward_model: f64,
    /// `(1/n) Σ H(p_i)`, which both equal when the labels are BT probabilities of `r`.
    pub label_entropy: f64,
}

/// Plugs `π* ∝ π_ref exp(r/β)` into the DPO loss and returns it next to the Bradley–Terry loss of
/// `r` (and the labels' entropy). They agree to rounding (`β h = r_c − r_r` exactly in exact
/// arithmetic) as long as `π*` has no entry that underflows to 0, i.e. while the spread of `r/β`
/// within a prompt stays below about 700.
///
/// Errors: [`Error::Beta`], and any error of [`kl_optimum`] / [`dpo_loss`] on a hand-built
/// problem.
pub fn optimum_losses(problem: &RandomTabular, beta: f64) -> Result<OptimumLosses, Error> {
    let star = kl_optimum(&problem.reference, &problem.reward, beta)?;
    Ok(OptimumLosses {
        dpo_at_optimum: dpo_loss(&star, &problem.reference, &problem.data, beta)?,
        reward_model: bradley_terry_loss(
            &problem.reward,
            problem.n_prompts(),
            problem.n_responses(),
            &problem.data,
        )?,
        label_entropy: dpo_loss_lower_bound(&problem.data)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// β = 1, π = (0.5, 0.25, 0.25): L = log(1 + 1/2) = 0.4054651081081644; β = 0.1,
    /// π = (0.4, 0.4, 0.2): L = log 2. The general loss and the closed form agree on a grid.
    #[test]
    fn table1_loss_by_hand_and_closed_form() {
        let t = Table1::new();
        assert!(close(
            t.dpo_loss([0.5, 0.25, 0.25], 1.0).unwrap(),
            0.405_465_108_108_164_4,
            1e-15
        ));
        assert!(close(
            t.dpo_loss([0.4, 0.4, 0.2], 0.1).unwrap(),
            std::f64::consts::LN_2,
            1e-15
        ));
        for beta in [0.1, 0.5, 1.0, 3.0] {
            for a in [0.05, 0.3, 0.6, 0.85] {
                for b in [1e-6, 0.01, 0.05, 0.1] {
                    let c = 1.0 - a - b;
                    let general = t.dpo_loss([a, b, c], beta).unwrap();
                    let closed = table1_closed_form_dpo_loss(a, b, beta);
                    assert!(close(general, closed, 1e-13), "β {beta} a {a} b {b}");
                    assert!(general > TABLE1_DPO_INFIMUM);
                }
            }
        }
    }

    /// The infimum 0 is approached as b/a → 0 (the loss ≈ (b/a)^β for small b/a) and attained
    /// exactly at b = 0 by (0.1, 0, 0.9), by (1, 0, 0), and by anything with b = 0 < a,
    /// whatever c; it equals the lower bound H(1) = 0.
    #[test]
    fn table1_infimum_is_attained_by_the_stated_policy() {
        let t = Table1::new();
        let beta = 0.1;
        assert_eq!(
            t.dpo_loss(TABLE1_DPO_SOLUTION, beta).unwrap(),
            TABLE1_DPO_INFIMUM
        );
        assert_eq!(t.dpo_loss(TABLE1_PPO_LIMIT, beta).unwrap(), 0.0);
        assert_eq!(t.dpo_loss([0.001, 0.0, 0.999], beta).unwrap(), 0.0);
        assert_eq!(dpo_loss_lower_bound(&t.data).unwrap(), TABLE1_DPO_INFIMUM);
        let mut last = f64::INFINITY;
        for k in 1..12 {
            let b = 0.1f64.powi(k);
            let l = t.dpo_loss([0.5, b, 0.5 - b], beta).unwrap();
            assert!(l > 0.0 && l < last, "b {b}: {l}");
            assert!(close(l, (2.0 * b).powf(beta).ln_1p(), 1e-12));
            last = l;
        }
        // Negative control: putting the mass on y2 instead is the worst case, not an optimum.
        assert_eq!(t.dpo_loss([0.0, 0.1, 0.9], beta).unwrap(), f64::INFINITY);
    }

    /// The PPO side: π*(y3) = 0 for every reward, even r(y3) = 1000 ≫ r(y1); with gap Δ,
    /// π* = (1, e^{−Δ/β}, 0)/(1 + e^{−Δ/β}), e.g. Δ = β ln 3 gives (0.75, 0.25, 0); and
    /// π* → (1, 0, 0) as Δ grows. The DPO solution has infinite KL (J = −∞); the PPO limit has
    /// KL(π ‖ π_ref) = ln 2.
    #[test]
    fn table1_ppo_optimum() {
        let t = Table1::new();
        let beta = 0.1;
        let p = t
            .ppo_optimum([beta * 3f64.ln(), 0.0, 1000.0], beta)
            .unwrap();
        assert!(
            close(p[0], 0.75, 1e-15) && close(p[1], 0.25, 1e-15),
            "{p:?}"
        );
        assert_eq!(p[2], 0.0);
        for delta in [1.0, 3.0, 10.0] {
            let p = t.ppo_optimum([delta, 0.0, -5.0], beta).unwrap();
            let e = (-delta / beta).exp();
            assert!(close(p[0], 1.0 / (1.0 + e), 1e-15));
            assert!(close(p[1], e / (1.0 + e), 1e-12));
            assert_eq!(p[2], 0.0);
            // Its DPO loss is the BT loss of the reward, log(1 + e^{−Δ}).
            let l = t.dpo_loss(p, beta).unwrap();
            assert!(close(l, (-delta).exp().ln_1p(), 1e-12), "Δ {delta}: {l}");
        }
        // Δ/β = 1000: e^{−1000} underflows, so π* is exactly the limit.
        let far = t.ppo_optimum([100.0, 0.0, 50.0], beta).unwrap();
        assert_eq!(far, TABLE1_PPO_LIMIT);

        let dpo_sol = Table1::policy(TABLE1_DPO_SOLUTION).unwrap();
        let ppo_sol = Table1::policy(TABLE1_PPO_LIMIT).unwrap();
        assert_eq!(
            kl_divergence(&dpo_sol, &t.reference).unwrap(),
            vec![f64::INFINITY]
        );
        assert!(close(
            kl_divergence(&ppo_sol, &t.reference).unwrap()[0],
            std::f64::consts::LN_2,
            1e-15
        ));
        let r = [1.0, 0.0, 5.0];
        assert_eq!(
            rl_objective(&dpo_sol, &t.reference, &r, beta).unwrap(),
            f64::NEG_INFINITY
        );
        // Π_PPO ⊊ Π_DPO: both have DPO loss 0, only one has finite J.
        assert!(
            rl_objective(&ppo_sol, &t.reference, &r, beta)
                .unwrap()
                .is_finite()
        );
    }

    /// The identity of the brief: on seeded random problems, L_DPO(π*) = L_BT(r) (and both equal
    /// the labels' entropy, the infimum), within 1e-6 and in fact within 1e-12, for several β
    /// and shapes including 1 prompt × 2 responses.
    #[test]
    fn optimum_turns_dpo_into_the_reward_model_loss() {
        for (seed, x, y) in [(0, 1, 2), (1, 4, 3), (2, 8, 8), (3, 16, 5)] {
            let problem = RandomTabular::generate(seed, x, y).unwrap();
            assert_eq!(problem.data.len(), x * y * (y - 1) / 2);
            for beta in [0.05, 0.1, 1.0, 10.0] {
                let o = optimum_losses(&problem, beta).unwrap();
                assert!((o.dpo_at_optimum - o.reward_model).abs() < 1e-6);
                assert!(close(o.dpo_at_optimum, o.reward_model, 1e-12), "{o:?}");
                assert!(close(o.reward_model, o.label_entropy, 1e-12), "{o:?}");
            }
        }
    }

    /// The identity holds for any reward r' (not only the true one): L_DPO(π_{r'}) = L_BT(r');
    /// and the reference is not an optimum (negative control): its loss is log 2 per pair at
    /// h = 0, above the bound.
    #[test]
    fn identity_holds_for_any_reward_and_fails_off_the_optimum() {
        let problem = RandomTabular::generate(7, 5, 4).unwrap();
        let beta = 0.5;
        let other: Vec<f64> = problem
            .reward
            .iter()
            .enumerate()
            .map(|(i, r)| r * 0.3 + (i % 3) as f64)
            .collect();
        let pi = kl_optimum(&problem.reference, &other, beta).unwrap();
        let d = dpo_loss(&pi, &problem.reference, &problem.data, beta).unwrap();
        let bt = bradley_terry_loss(&other, 5, 4, &problem.data).unwrap();
        assert!(close(d, bt, 1e-12));
        let bound = dpo_loss_lower_bound(&problem.data).unwrap();
        assert!(d > bound + 1e-3, "{d} vs {bound}");
        let at_ref = dpo_loss(&problem.reference, &problem.reference, &problem.data, beta).unwrap();
        assert!(close(at_ref, std::f64::consts::LN_2, 1e-15));
        assert!(at_ref > bound + 1e-3);
        // A wrong β in π* breaks the identity.
        let wrong = kl_optimum(&problem.reference, &problem.reward, 2.0 * beta).unwrap();
        let dw = dpo_loss(&wrong, &problem.reference, &problem.data, beta).unwrap();
        assert!(dw > bound + 1e-3);
    }

    /// π* is the minimiser: random perturbations of π* (mixing with another distribution) never
    /// go below L_DPO(π*), and π* maximises J with max J = mean β log Z.
    #[test]
    fn optimum_is_a_minimum_and_maximises_j() {
        let problem = RandomTabular::generate(13, 3, 5).unwrap();
        let beta = 0.3;
        let star = kl_optimum(&problem.reference, &problem.reward, beta).unwrap();
        let l_star = dpo_loss(&star, &problem.reference, &problem.data, beta).unwrap();
        let j_star = rl_objective(&star, &problem.reference, &problem.reward, beta).unwrap();
        let j_max = rl_objective_max(&problem.reference, &problem.reward, beta).unwrap();
        assert!(close(j_star, j_max, 1e-12), "{j_star} vs {j_max}");
        let mut rng = StdRng::seed_from_u64(99);
        for _ in 0..50 {
            let mix: f64 = rng.random_range(0.01..0.5);
            let mut probs = Vec::new();
            for x in 0..3 {
                let w: Vec<f64> = (0..5).map(|_| rng.random_range(0.01f64..1.0)).collect();
                let z: f64 = w.iter().sum();
                probs.extend((0..5).map(|y| (1.0 - mix) * star.prob(x, y) + mix * w[y] / z));
            }
            let pi = TabularPolicy::new(3, 5, probs).unwrap();
            let l = dpo_loss(&pi, &problem.reference, &problem.data, beta).unwrap();
            assert!(l > l_star, "{l} vs {l_star}");
            let j = rl_objective(&pi, &problem.reference, &problem.reward, beta).unwrap();
            assert!(j < j_star, "{j} vs {j_star}");
        }
    }

    /// Theorem 4.1's mechanism on a random problem: drop every preference involving the last
    /// response, then move mass onto it while keeping the ratios among the others. The DPO loss
    /// does not change (it only sees log-ratio differences of covered responses), but π leaves
    /// the RL optimum: J falls.
    #[test]
    fn uncovered_response_is_invisible_to_dpo() {
        let problem = RandomTabular::generate(21, 4, 4).unwrap();
        let beta = 0.2;
        let covered: Vec<Preference> = problem
            .data
            .iter()
            .copied()
            .filter(|d| d.chosen != 3 && d.rejected != 3)
            .collect();
        assert_eq!(covered.len(), 4 * 3);
        let star = kl_optimum(&problem.reference, &problem.reward, beta).unwrap();
        let mut probs = Vec::new();
        for x in 0..4 {
            let rest: f64 = (0..3).map(|y| star.prob(x, y)).sum();
            let s = 0.5; // new mass on the last response
            probs.extend((0..3).map(|y| star.prob(x, y) * (1.0 - s) / rest));
            probs.push(s);
        }
        let shifted = TabularPolicy::new(4, 4, probs).unwrap();
        let l0 = dpo_loss(&star, &problem.reference, &covered, beta).unwrap();
        let l1 = dpo_loss(&shifted, &problem.reference, &covered, beta).unwrap();
        assert!(close(l0, l1, 1e-12), "{l0} vs {l1}");
        let j0 = rl_objective(&star, &problem.reference, &problem.reward, beta).unwrap();
        let j1 = rl_objective(&shifted, &problem.reference, &problem.reward, beta).unwrap();
        assert!(j1 < j0 - 1e-3, "{j1} vs {j0}");
        // Negative control: with the full data the same shift does change the DPO loss.
        let f0 = dpo_loss(&star, &problem.reference, &problem.data, beta).unwrap();
        let f1 = dpo_loss(&shifted, &problem.reference, &problem.data, beta).unwrap();
        assert!((f0 - f1).abs() > 1e-3);
    }

    /// The random problem is reproducible from its seed and differs across seeds; the reference
    /// has full support.
    #[test]
    fn random_problem_is_seeded() {
        let a = RandomTabular::generate(5, 3, 4).unwrap();
        assert_eq!(a, RandomTabular::generate(5, 3, 4).unwrap());
        assert_ne!(a, RandomTabular::generate(6, 3, 4).unwrap());
        assert!(a.reference.probs().iter().all(|&p| p > 0.0));
        for d in &a.data {
            let gap = a.reward[d.prompt * 4 + d.chosen] - a.reward[d.prompt * 4 + d.rejected];
            assert!(close(d.prob, sigmoid(gap), 1e-15));
        }
    }

    /// Large r/β does not overflow the optimum; a row whose reward is constant gives π* = π_ref.
    #[test]
    fn kl_optimum_is_stable() {
        let reference = TabularPolicy::new(2, 3, vec![0.2, 0.3, 0.5, 0.6, 0.4, 0.0]).unwrap();
        let reward = [500.0, 500.0, 500.0, 800.0, 0.0, -3.0];
        let p = kl_optimum(&reference, &reward, 0.5).unwrap();
        for y in 0..3 {
            assert!(close(p.prob(0, y), reference.prob(0, y), 1e-15));
        }
        assert_eq!(p.row(1), &[1.0, 0.0, 0.0]);
        let j = rl_objective_max(&reference, &reward, 0.5).unwrap();
        assert!(j.is_finite());
    }

    #[test]
    fn errors_name_the_bad_value() {
        let e = |r: Result<TabularPolicy, Error>| r.unwrap_err().to_string();
        assert_eq!(
            e(TabularPolicy::new(0, 3, vec![])),
            "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 0 × 3"
        );
        assert_eq!(
            e(TabularPolicy::new(1, 1, vec![1.0])),
            "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 1 × 1"
        );
        assert_eq!(
            e(TabularPolicy::new(2, 3, vec![0.5; 5])),
            "policy has 5 values; 2 prompts × 3 responses need 6"
        );
        assert_eq!(
            e(TabularPolicy::new(1, 3, vec![0.6, -0.1, 0.5])),
            "π(y1 | x0) is -0.1; probabilities must be in [0, 1]"
        );
        assert_eq!(
            e(TabularPolicy::new(1, 2, vec![f64::NAN, 0.5])),
            "π(y0 | x0) is NaN; probabilities must be in [0, 1]"
        );
        assert_eq!(
            e(TabularPolicy::new(2, 2, vec![0.5, 0.5, 0.7, 0.5])),
            "π(· | x1) sums to 1.2; it must sum to 1"
        );
        assert_eq!(
            e(kl_optimum(
                &Table1::new().reference,
                &[0.0, f64::INFINITY, 0.0],
                0.1
            )),
            "r(x0, y1) is inf; rewards must be finite"
        );
        assert_eq!(
            e(kl_optimum(&Table1::new().reference, &[0.0; 3], 0.0)),
            "β 0 must be a finite number above 0"
        );
        assert_eq!(
            e(kl_optimum(&Table1::new().reference, &[0.0; 4], 0.1)),
            "reward has 4 values; 1 prompts × 3 responses need 3"
        );

        let t = Table1::new();
        let pi = Table1::policy([0.2, 0.3, 0.5]).unwrap();
        let e = |data: &[Preference]| {
            dpo_loss(&pi, &t.reference, data, 0.1)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e(&[]), "the preference data set is empty");
        assert_eq!(
            e(&[Preference::hard(0, 0, 1), Preference::hard(0, 5, 1)]),
            "preference 1 (x0, y5 ≻ y1) is outside 1 prompts × 3 responses"
        );
        assert_eq!(
            e(&[Preference::hard(1, 0, 1)]),
            "preference 0 (x1, y0 ≻ y1) is outside 1 prompts × 3 responses"
        );
        assert_eq!(
            e(&[Preference::hard(0, 2, 2)]),
            "preference 0 compares y2 with itself"
        );
        assert_eq!(
            e(&[Preference {
                prob: 1.5,
                ..Preference::hard(0, 0, 1)
            }]),
            "preference 0 has P(chosen ≻ rejected) = 1.5; it must be in [0, 1]"
        );
        assert_eq!(
            e(&[Preference::hard(0, 0, 2)]),
            "π_ref(y2 | x0) = 0 but preference 0 uses y2; DPO needs π_ref > 0 on every response in the data"
        );
        let zero = Table1::policy([0.0, 0.0, 1.0]).unwrap();
        assert_eq!(
            dpo_loss(&zero, &t.reference, &t.data, 0.1)
                .unwrap_err()
                .to_string(),
            "π gives 0 to both y0 and y1 of preference 0 (x0); the DPO margin log π(y_c) − log π(y_r) is undefined"
        );
        assert_eq!(
            dpo_loss(&pi, &t.reference, &t.data, f64::NAN)
                .unwrap_err()
                .to_string(),
            "β NaN must be a finite number above 0"
        );
        let two = TabularPolicy::new(2, 3, vec![0.2, 0.3, 0.5, 0.2, 0.3, 0.5]).unwrap();
        assert_eq!(
            dpo_loss(&pi, &two, &t.data, 0.1).unwrap_err().to_string(),
            "the reference is 2 prompts × 3 responses but the policy is 1 × 3"
        );
        assert_eq!(
            bradley_terry_loss(&[0.0, f64::NAN, 1.0], 1, 3, &t.data)
                .unwrap_err()
                .to_string(),
            "r(x0, y1) is NaN; rewards must be finite"
        );
        assert_eq!(
            dpo_loss_lower_bound(&[Preference {
                prob: f64::NAN,
                ..Preference::hard(0, 0, 1)
            }])
            .unwrap_err()
            .to_string(),
            "preference 0 has P(chosen ≻ rejected) = NaN; it must be in [0, 1]"
        );
        assert_eq!(
            RandomTabular::generate(0, 3, 1).unwrap_err().to_string(),
            "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 3 × 1"
        );
    }
}
