//! The parameter counter: total and active parameters of a Mixtral-style decoder
//! ([`ModelShape`] → [`ParamCounts`]), exact for Mixtral 8x7B (Table 1) and for the toy models
//! this crate trains (a test checks it against burn's `num_params`).
//!
//! Per layer: attention `W_q [d, H·hd]`, `W_k, W_v [d, KV·hd]`, `W_o [H·hd, d]` (no biases), two
//! RMSNorm weights `[d]`, and the FFN: a dense SwiGLU (`W1, W3 [d, h]`, `W2 [h, d]`) or `E`
//! SwiGLU experts of hidden `h` plus the router `W_g [d, E]`. Outside the layers: the token
//! embedding `[V, d]`, the final RMSNorm `[d]` and the untied LM head `[d, V]`. Rotary positions
//! have no parameters. "Active" counts what one token uses: the `k` experts it is routed to and
//! everything shared (attention, router, norms, embedding, head), the convention of the paper's
//! "13B active".

use serde::{Deserialize, Serialize};

/// The feed-forward block of every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum FfnShape {
    /// A dense SwiGLU of hidden width `hidden`.
    Dense {
        /// Hidden width `h`.
        hidden: usize,
    },
    /// `experts` SwiGLU experts of hidden width `hidden`, `top_k` per token, with a router.
    Moe {
        /// Experts `E`.
        experts: usize,
        /// Experts per token `k`.
        top_k: usize,
        /// Hidden width `h` of each expert.
        hidden: usize,
    },
}

/// The sizes that decide a decoder's parameter count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelShape {
    /// Vocabulary `V`.
    pub vocab: usize,
    /// Width `d`.
    pub d_model: usize,
    /// Transformer blocks `L`.
    pub n_layers: usize,
    /// Query heads `H`.
    pub n_heads: usize,
    /// Key/value heads `KV` (grouped-query attention; `KV` divides `H`).
    pub n_kv_heads: usize,
    /// Width of one head `hd` (Mixtral: 128 = 4096 / 32).
    pub head_dim: usize,
    /// The FFN of every layer.
    pub ffn: FfnShape,
}

/// Parameter counts of a [`ModelShape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParamCounts {
    /// Every parameter.
    pub total: u64,
    /// The parameters one token uses (top-`k` experts plus everything shared).
    pub active: u64,
    /// Of `total`, the FFN weights (experts or dense SwiGLU, without the router).
    pub ffn_total: u64,
    /// Of `active`, the FFN weights one token uses (`k` experts or the dense SwiGLU).
    pub ffn_active: u64,
}

/// Mixtral 8x7B as in Table 1 of the paper: dim 4096, 32 layers, 32 heads of 128, 8 KV heads,
/// expert hidden 14336, vocab 32000, 8 experts, top-2.
pub fn mixtral_8x7b() -> ModelShape {
    ModelShape {
        vocab: 32_000,
        d_model: 4096,
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        ffn: FfnShape::Moe {
            experts: 8,
            top_k: 2,
            hidden: 14_336,
        },
    }
}

/// Mixtral 8x7B's totals as announced (46.7B total, 12.9B active), to the parameter.
pub const MIXTRAL_8X7B_TOTAL: u64 = 46_702_792_704;
/// See [`MIXTRAL_8X7B_TOTAL`].
pub const MIXTRAL_8X7B_ACTIVE: u64 = 12_879_925_248;

/// Total and active parameters of `shape` (see the [module docs](self) for what is counted).
pub fn param_counts(shape: &ModelShape) -> ParamCounts {
    let u = |v: usize| v as u64;
    let (v, d, l) = (u(shape.vocab), u(shape.d_model), u(shape.n_layers));
    let (q, kv) = (
        u(shape.n_heads * shape.head_dim),
        u(shape.n_kv_heads * shape.head_dim),
    );
    // W_q, W_k, W_v, W_o.
    let attention = d * q + 2 * d * kv + q * d;
    let norms = 2 * d;
    let (router, ffn_total, ffn_active) = match shape.ffn {
        FfnShape::Dense { hidden } => (0, 3 * d * u(hidden), 3 * d * u(hidden)),
        FfnShape::Moe {
            experts,
            top_k,
            hidden,
        } => (
            d * u(experts),
            u(experts) * 3 * d * u(hidden),
            u(top_k) * 3 * d * u(hidden),
        ),
    };
    let shared_layer = attention + norms + router;
    // Token embedding [V, d], LM head [d, V], final norm [d].
    let outside = 2 * v * d + d;
    ParamCounts {
        total: l * (shared_layer + ffn_total) + outside,
        active: l * (shared_layer + ffn_active) + outside,
        ffn_total: l * ffn_total,
        ffn_active: l * ffn_active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixtral_totals() {
        let c = param_counts(&mixtral_8x7b());
        assert_eq!(c.total, MIXTRAL_8X7B_TOTAL);
        assert_eq!(c.active, MIXTRAL_8X7B_ACTIVE);
    }
}
