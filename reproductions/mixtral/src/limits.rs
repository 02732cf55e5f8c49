//! The stated bounds of [`MixtralConfig`]'s sizes, counts and steps, and the memory estimate of
//! one arm ([`MixtralConfig::estimated_bytes`]).
//!
//! The limits sit far above the `full` preset (`V = 4096`, `d = 128`, 4 layers, 8 experts of
//! 64, sequences of 128, batches of 32, 20 000 steps) yet keep a validated run finite and its
//! tables allocatable: `d = 4096` with 64 layers is Mixtral-sized, far beyond what this toy can
//! train, and a million steps is weeks, not centuries. What fits the machine is decided by the
//! estimate, not by these limits; the corpus settings are bounded by `claimbench-corpus`.

use claimbench_claims::limits::{LimitError, at_most, product, total};

use crate::config::MixtralConfig;
use crate::error::Error;

/// Largest vocabulary (`model.vocab`; the corpus layer's bound on its tokenizer).
pub const MAX_VOCAB: usize = *claimbench_corpus::VOCAB_RANGE.end();
/// Most permutations of the specialisation test's null (`permutations`).
pub const MAX_PERMUTATIONS: usize = 100_000;
/// Longest sequence (`data.seq_len`).
pub const MAX_SEQ_LEN: usize = 4096;
/// Most validation sequences per domain (`data.val_seqs_per_domain`).
pub const MAX_VAL_SEQS: usize = 65_536;
/// Widest model (`model.d_model`).
pub const MAX_WIDTH: usize = 4096;
/// Most transformer blocks (`model.n_layers`).
pub const MAX_LAYERS: usize = 64;
/// Most query or key/value heads (`model.n_heads`, `model.n_kv_heads`).
pub const MAX_HEADS: usize = 256;
/// Most experts, and so experts per token (`model.experts`, `model.top_k`).
pub const MAX_EXPERTS: usize = 256;
/// Widest expert (`model.expert_hidden`).
pub const MAX_EXPERT_HIDDEN: usize = 16_384;
/// Widest dense FFN (`model.dense_hidden`, `model.dense_total_hidden`).
pub const MAX_DENSE_HIDDEN: usize = 262_144;
/// Most Adam steps (`train.steps`), and the longest `train.warmup` and `train.eval_every`.
pub const MAX_STEPS: usize = 1_000_000;
/// Most sequences per step (`train.batch`).
pub const MAX_BATCH: usize = 4096;

impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Error::Config {
            name: e.field,
            value: e.value,
            rule: e.rule,
        }
    }
}

impl MixtralConfig {
    /// Checks every size, count and step against its limit; the error is [`Error::Config`],
    /// e.g. `mixtral setting model.d_model = 1000000000: is above the limit 4096`. Called by
    /// [`MixtralConfig::validate`] before anything multiplies sizes.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        let (d, m, t) = (&self.data, &self.model, &self.train);
        for (field, value, max) in [
            ("data.seq_len", d.seq_len, MAX_SEQ_LEN),
            (
                "data.val_seqs_per_domain",
                d.val_seqs_per_domain,
                MAX_VAL_SEQS,
            ),
            ("model.vocab", m.vocab, MAX_VOCAB),
            ("model.d_model", m.d_model, MAX_WIDTH),
            ("model.n_layers", m.n_layers, MAX_LAYERS),
            ("model.n_heads", m.n_heads, MAX_HEADS),
            ("model.n_kv_heads", m.n_kv_heads, MAX_HEADS),
            ("model.experts", m.experts, MAX_EXPERTS),
            ("model.top_k", m.top_k, MAX_EXPERTS),
            ("model.expert_hidden", m.expert_hidden, MAX_EXPERT_HIDDEN),
            ("model.dense_hidden", m.dense_hidden, MAX_DENSE_HIDDEN),
            (
                "model.dense_total_hidden",
                m.dense_total_hidden,
                MAX_DENSE_HIDDEN,
            ),
            ("train.steps", t.steps, MAX_STEPS),
            ("train.batch", t.batch, MAX_BATCH),
            ("train.warmup", t.warmup, MAX_STEPS),
            ("train.eval_every", t.eval_every, MAX_STEPS),
            ("permutations", self.permutations, MAX_PERMUTATIONS),
        ] {
            at_most(field, value, max)?;
        }
        Ok(())
    }

    /// An upper-bound estimate of the peak memory of the largest arm of one seed, in bytes
    /// (saturating). With `V, d, L, H, KV, E, k` the vocabulary, width, layers, heads, key/value
    /// heads, experts and experts per token, `h_e` the expert width, `h = max(dense_hidden,
    /// dense_total_hidden, k·h_e)`, `T = seq_len`, `N = max(batch, val_seqs_per_domain)·T`
    /// tokens, `D` domains, `B` bytes of text per domain, `n_v` validation sequences per domain, and the
    /// largest arm's parameters
    /// `P = L·(2d² + 2d·(d·KV/H) + 2d + max(3d·dense_total_hidden, 3d·dense_hidden,
    /// 3E·d·h_e + d·E)) + 2V·d + d`:
    ///
    /// ```text
    /// 20·P                           weights, grads, 2 Adam moments, the inner model's copy
    /// + 4·N·(L·(16d + 6h + 4k·d + 3H·T + 2E) + 4V + 4d)
    ///                                f32 activations kept for backward: per block 16 d-wide
    ///                                values, 6 h-wide FFN values, the k gathered expert rows,
    ///                                attention scores/probabilities/grads, router logits;
    ///                                logits, log-softmax and their gradient; embeddings
    /// + 8·D·B                        the token streams (u32, at most one token per byte: the
    ///                                corpus's copy and this crate's)
    /// + 8·D·n_v·(T + 1)·(1 + L·k)    validation tokens and the routing ids read back per layer
    /// ```
    pub fn estimated_bytes(&self) -> u64 {
        let (dc, m) = (&self.data, &self.model);
        let (v, d, l, h, e, k) = (
            m.vocab, m.d_model, m.n_layers, m.n_heads, m.experts, m.top_k,
        );
        let seq = dc.seq_len;
        let kv_width = product(&[d, m.n_kv_heads]) / (h.max(1) as u64);
        let attention = total(&[
            product(&[2, d, d]),
            product(&[2, d]).saturating_mul(kv_width),
            product(&[2, d]),
        ]);
        let ffn = [
            product(&[3, d, m.dense_total_hidden]),
            product(&[3, d, m.dense_hidden]),
            total(&[product(&[3, e, d, m.expert_hidden]), product(&[d, e])]),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let params = total(&[
            total(&[attention, ffn]).saturating_mul(l as u64),
            product(&[2, v, d]),
            d as u64,
        ]);
        let hidden = m
            .dense_hidden
            .max(m.dense_total_hidden)
            .max(k.saturating_mul(m.expert_hidden));
        let per_layer = total(&[
            product(&[16, d]),
            product(&[6, hidden]),
            product(&[4, k, d]),
            product(&[3, h, seq]),
            product(&[2, e]),
        ]);
        let per_token = total(&[
            per_layer.saturating_mul(l as u64),
            product(&[4, v]),
            product(&[4, d]),
        ]);
        let tokens = product(&[self.train.batch.max(dc.val_seqs_per_domain), seq]);
        let domains = dc.domains();
        let val_tokens = product(&[domains, dc.val_seqs_per_domain, seq.saturating_add(1)]);
        total(&[
            params.saturating_mul(20),
            tokens.saturating_mul(per_token).saturating_mul(4),
            product(&[8, domains]).saturating_mul(dc.corpus.max_bytes_per_domain),
            val_tokens
                .saturating_mul(8)
                .saturating_mul(product(&[l, k]).saturating_add(1)),
        ])
    }
}
