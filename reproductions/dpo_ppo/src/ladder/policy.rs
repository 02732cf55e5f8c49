//! The policy's token log-probs, the PPO losses in burn, and the exact state table and pass rates ([`StateTable`]).

use super::*;

pub(super) fn host_f64<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Per-token log-probabilities of the taken tokens: `log_softmax(logits)[n, token_n]`,
/// `logits [N, V]`, `onehot [N, V]` (one 1 per row) → `[N]`. Upcast is moot: f32 throughout.
pub fn token_logprobs<B: Backend>(logits: Tensor<B, 2>, onehot: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = logits.dims()[0];
    (log_softmax(logits, 1) * onehot).sum_dim(1).reshape([n])
}

/// PPO's clipped surrogate (Schulman et al. 2017, eq. 7; the f64 reference is
/// [`crate::ppo::policy_loss`]):
/// `L_π = Σ_t m_t max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε, 1 + ε)) / Σ_t m_t`,
/// `ρ_t = exp(log π_t − log π_old,t)`. All inputs `[N]` (flattened `[B, T]`); `mask` is 0/1 and
/// masked entries must be finite (they are multiplied by 0). At a tie the unclipped branch is
/// taken, so its gradient flows, as in the reference. Returns a one-element tensor.
pub fn policy_loss_tensor<B: Backend>(
    logprobs: Tensor<B, 1>,
    old_logprobs: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    mask: Tensor<B, 1>,
    clip_eps: f64,
) -> Tensor<B, 1> {
    let ratio = (logprobs - old_logprobs).exp();
    let unclipped = -advantages.clone() * ratio.clone();
    let clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps);
    // max_pair keeps `unclipped` unless `unclipped < clipped` (ties → unclipped).
    (unclipped.max_pair(clipped) * mask.clone()).sum() / mask.sum()
}

/// PPO's clipped value loss (the f64 reference is [`crate::ppo::value_loss`]):
/// `L_V = ½ Σ_t m_t max((V_t − R_t)², (clip(V_t, V_old,t − ε_v, V_old,t + ε_v) − R_t)²) / Σ_t m_t`.
/// All inputs `[N]`; `mask` as in [`policy_loss_tensor`]. Returns a one-element tensor.
pub fn value_loss_tensor<B: Backend>(
    values: Tensor<B, 1>,
    old_values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    mask: Tensor<B, 1>,
    value_clip_eps: f64,
) -> Tensor<B, 1> {
    let clipped =
        old_values.clone() + (values.clone() - old_values).clamp(-value_clip_eps, value_clip_eps);
    let e1 = (values - returns.clone()).square();
    let e2 = (clipped - returns).square();
    (e1.max_pair(e2) * mask.clone()).sum().mul_scalar(0.5) / mask.sum()
}

/// A policy's log-probabilities over every state of the task, `[states, V]` row-major
/// (state ids from [`Task::state`]), read back from one forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct StateTable {
    /// `log π(y | state)`, `[states, V]`.
    pub(super) logprobs: Vec<f64>,
    /// `V`.
    pub(super) vocab: usize,
}

impl StateTable {
    /// `log π(y | state)`, `[states, V]` row-major.
    pub fn logprobs(&self) -> &[f64] {
        &self.logprobs
    }

    pub(super) fn row(&self, state: usize) -> &[f64] {
        &self.logprobs[state * self.vocab..(state + 1) * self.vocab]
    }

    /// `π(y*(x) | x) = Π_t π(y*_t | x, t, y*_{t−1})` for prompt id `p`. Panics if `p` is not a
    /// prompt id of `task` (tables are built for one task, by [`run_arm`]).
    pub fn pass_prob(&self, task: &Task, p: usize) -> f64 {
        let y = task.solution(task.prompts[p]);
        let mut lp = 0.0;
        let mut prev = task.vocab;
        for (t, &tok) in y.iter().enumerate() {
            lp += self.row(task.state(p, t, prev))[tok];
            prev = tok;
        }
        lp.exp()
    }

    /// `(pass@1, pass@k)` over the prompt ids `ids`: means of `p_x` and `1 − (1 − p_x)^k`.
    pub fn pass_rates(&self, task: &Task, ids: &[usize], k: usize) -> (f64, f64) {
        let n = ids.len().max(1) as f64;
        let (mut one, mut at_k) = (0.0, 0.0);
        for &p in ids {
            let q = self.pass_prob(task, p);
            one += q;
            at_k += 1.0 - (1.0 - q).powi(k as i32);
        }
        (one / n, at_k / n)
    }

    /// Exact sequence-level `KL(π ‖ π_ref)` averaged over `ids`, by a forward pass over the
    /// occupancy of `(t, y_{t−1})`: `Σ_t Σ_prev occ_t(prev) KL(π(·|s) ‖ π_ref(·|s))`.
    pub fn kl_to(&self, reference: &StateTable, task: &Task, ids: &[usize]) -> f64 {
        let v = task.vocab;
        let mut total = 0.0;
        for &p in ids {
            let mut occ = vec![0.0; v + 1];
            occ[v] = 1.0;
            for t in 0..task.length {
                let mut next = vec![0.0; v + 1];
                for (prev, &o) in occ.iter().enumerate() {
                    if o == 0.0 {
                        continue;
                    }
                    let s = task.state(p, t, prev);
                    let (a, r) = (self.row(s), reference.row(s));
                    for y in 0..v {
                        let q = a[y].exp();
                        total += o * q * (a[y] - r[y]);
                        next[y] += o * q;
                    }
                }
                occ = next;
            }
        }
        total / ids.len().max(1) as f64
    }
}

/// Runs `mlp` over every state; `[states, out]` outputs as f64 (log-softmaxed when `log_probs`).
pub(super) fn forward_all<B: Backend>(
    mlp: &Mlp<B>,
    task: &Task,
    log_probs: bool,
    device: &B::Device,
) -> Vec<f64> {
    let n = task.states();
    let states: Vec<usize> = (0..n).collect();
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(task.inputs(&states), [n, task.features()]),
        device,
    );
    let out = mlp.forward(x);
    host_f64(if log_probs { log_softmax(out, 1) } else { out })
}

pub(super) fn table<B: Backend>(policy: &Mlp<B>, task: &Task, device: &B::Device) -> StateTable {
    StateTable {
        logprobs: forward_all(policy, task, true, device),
        vocab: task.vocab,
    }
}
