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
mod tests;
