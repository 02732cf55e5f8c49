//! The router's auxiliary losses (not in the paper, which does not state its training losses;
//! the standard ones of the Mixtral implementations):
//!
//! - **load balancing** (Switch Transformer Eq. 4–6, HF `load_balancing_loss_func`):
//!   `L_aux = E · Σ_e f_e · P_e` with `f_e = (1/n) Σ_t Σ_j [ids[t, j] = e]` (HF's mean one-hot
//!   of the top-k choices, summed over the `k` slots: `Σ_e f_e = k`) and
//!   `P_e = (1/n) Σ_t softmax(logits_t)_e`. Under perfectly balanced routing `f_e = k/E`,
//!   `P_e = 1/E` and `L_aux = k` ([`AuxNorm::Hf`]); megablocks divides by `k` so that balanced
//!   routing gives 1 ([`AuxNorm::Megablocks`]). Only `P` carries a gradient (`f` counts an
//!   argmax). HF concatenates every layer's tokens before computing `f` and `P`; we compute the
//!   loss per layer (megablocks' choice) and average over layers.
//! - **router z-loss** (ST-MoE Eq. 5): `L_z = (1/n) Σ_t (logsumexp_e logits_{t,e})²`.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use crate::config::AuxNorm;

/// `f_e` of the module docs: `[E]`, `Σ_e f_e = k`, no gradient. `ids [n, k]`.
pub fn assignment_fractions<B: Backend>(ids: Tensor<B, 2, Int>, experts: usize) -> Tensor<B, 1> {
    let [n, k] = ids.dims();
    let device = ids.device();
    Tensor::<B, 2>::zeros([n, experts], &device)
        .scatter(1, ids, Tensor::ones([n, k], &device), IndexingUpdateOp::Add)
        .mean_dim(0)
        .reshape([experts])
}

/// The load-balancing loss of one layer (module docs): `probs [n, E]` (the router softmax),
/// `ids [n, k]` → a one-element tensor, `k` (HF) or 1 (megablocks) when balanced.
pub fn load_balancing_loss<B: Backend>(
    probs: Tensor<B, 2>,
    ids: Tensor<B, 2, Int>,
    norm: AuxNorm,
) -> Tensor<B, 1> {
    let [_, e] = probs.dims();
    let k = ids.dims()[1];
    let f = assignment_fractions(ids, e);
    let p = probs.mean_dim(0).reshape([e]);
    let hf = (f * p).sum().mul_scalar(e as f64);
    match norm {
        AuxNorm::Hf => hf,
        AuxNorm::Megablocks => hf.div_scalar(k as f64),
    }
}

/// The router z-loss `(1/n) Σ_t logsumexp(logits_t)²` of `logits [n, E]` → one element.
pub fn router_z_loss<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 1> {
    let m = logits.clone().max_dim(1).detach(); // [n, 1]; lse is shift-invariant
    let lse = (logits - m.clone()).exp().sum_dim(1).log() + m; // [n, 1]
    lse.powi_scalar(2).mean()
}
