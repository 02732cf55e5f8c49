//! The stated bounds of [`ExperimentConfig`]'s and [`ModelConfig`]'s sizes, counts and steps,
//! and the memory estimate of one arm ([`ExperimentConfig::estimated_bytes`]).
//!
//! The limits sit far above the `full` preset (`d = 128`, four layers, 16 384 windows, 1000
//! steps per stage) yet keep a validated run finite and its tables
//! allocatable: a width of 4096 with 64 layers is a ~13B-parameter model, already far beyond
//! what this toy reproduction can train; a million steps per stage is weeks on a CPU, not
//! centuries. What fits the machine is decided by the estimate, not by these limits.

use claimbench_claims::limits::{LimitError, at_most, finite_in, len_at_most, product, total};

use crate::config::ConfigError;
use crate::experiment::ExperimentConfig;
use crate::model::ModelConfig;

/// Most training or held-out sequences per dataset (`train_sequences`, `eval_sequences`).
pub const MAX_SEQUENCES: usize = 1_000_000;
/// Most vocabulary entries (`model.vocab`): the corpus's largest BPE vocabulary.
pub const MAX_VOCAB: usize = *claimbench_corpus::VOCAB_RANGE.end();
/// Most positions (`model.context`).
pub const MAX_CONTEXT: usize = 4096;
/// Widest model (`model.d_model`).
pub const MAX_WIDTH: usize = 4096;
/// Widest feed-forward layer (`model.d_ff`).
pub const MAX_FF_WIDTH: usize = 16_384;
/// Most attention heads (`model.n_heads`).
pub const MAX_HEADS: usize = 256;
/// Most transformer blocks (`model.n_layers`).
pub const MAX_LAYERS: usize = 64;
/// Most sequences per batch (`batch`).
pub const MAX_BATCH: usize = 4096;
/// Most optimizer steps per stage (`stage_steps`), and the longest `eval_every`.
pub const MAX_STEPS: usize = 1_000_000;
/// Most entries of `replay_shares` and of `peaks` (each entry is one or two more arms).
pub const MAX_LIST: usize = 64;
/// Largest AdamW weight decay (`weight_decay`, finite and ≥ 0).
pub const MAX_WEIGHT_DECAY: f64 = 1000.0;

impl From<LimitError> for ConfigError {
    fn from(e: LimitError) -> Self {
        ConfigError::Invalid(e.to_string())
    }
}

impl ModelConfig {
    /// Checks every size against its limit ([`MAX_VOCAB`], [`MAX_CONTEXT`], [`MAX_WIDTH`],
    /// [`MAX_HEADS`], [`MAX_LAYERS`], [`MAX_FF_WIDTH`]); fields are named `model.<field>`.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        for (field, value, max) in [
            ("model.vocab", self.vocab, MAX_VOCAB),
            ("model.context", self.context, MAX_CONTEXT),
            ("model.d_model", self.d_model, MAX_WIDTH),
            ("model.n_heads", self.n_heads, MAX_HEADS),
            ("model.n_layers", self.n_layers, MAX_LAYERS),
            ("model.d_ff", self.d_ff, MAX_FF_WIDTH),
        ] {
            at_most(field, value, max)?;
        }
        Ok(())
    }

    /// Number of trainable scalars in saturating arithmetic (any sizes, no overflow): token and
    /// position embeddings `(V + T)·d`, per block the attention's four `d×d` projections with
    /// biases, the two FFN linears `d×f + f` and `f×d + d`, two LayerNorms `4d`; the final
    /// LayerNorm `2d` and the head `d·V + V`. [`ModelConfig::parameters`] reads it.
    pub fn parameters_saturating(&self) -> u64 {
        let (v, t, d, f, l) = (
            self.vocab,
            self.context,
            self.d_model,
            self.d_ff,
            self.n_layers,
        );
        let block = total(&[
            product(&[4, d, d]),
            product(&[4, d]),
            product(&[2, d, f]),
            f as u64,
            d as u64,
            product(&[4, d]),
        ]);
        total(&[
            product(&[v, d]),
            product(&[t, d]),
            block.saturating_mul(l as u64),
            product(&[2, d]),
            product(&[d, v]),
            v as u64,
        ])
    }
}

impl ExperimentConfig {
    /// Checks every size, count and step against its limit (the model's through
    /// [`ModelConfig::check_limits`]) and that `weight_decay` is finite in
    /// `[0, MAX_WEIGHT_DECAY]`. Called first by [`ExperimentConfig::validate`].
    pub fn check_limits(&self) -> Result<(), LimitError> {
        for (field, value, max) in [
            ("train_sequences", self.train_sequences, MAX_SEQUENCES),
            ("eval_sequences", self.eval_sequences, MAX_SEQUENCES),
            ("batch", self.batch, MAX_BATCH),
            ("stage_steps", self.stage_steps, MAX_STEPS),
            ("eval_every", self.eval_every, MAX_STEPS),
        ] {
            at_most(field, value, max)?;
        }
        len_at_most("replay_shares", self.replay_shares.len(), MAX_LIST)?;
        len_at_most("peaks", self.peaks.len(), MAX_LIST)?;
        finite_in("weight_decay", self.weight_decay, 0.0, MAX_WEIGHT_DECAY)?;
        self.model.check_limits()
    }

    /// An upper-bound estimate of the peak memory of one arm of one seed, in bytes (saturating,
    /// so any config gives a number). With `P` = [`ModelConfig::parameters`], `V, T, d, f, L, H`
    /// the model's vocabulary, context, width, feed-forward width, layers and heads,
    /// `B' = max(batch, 64)` (evaluation runs in batches of 64), `n` the train plus held-out
    /// sequences per dataset, `D` the corpus's domains and `Y` its bytes per domain:
    ///
    /// ```text
    /// 20·P                                       weights, grads, 2 AdamW moments, stage-0 checkpoint
    /// + 4·B'·T·(L·(16d + 4f + 3·H·T) + 4V + 4d)  activations kept for backward (f32): per block
    ///                                            16 d-wide and 4 f-wide values per token, scores,
    ///                                            softmax and their gradient per head; 4 V-wide
    ///                                            logit tensors; embeddings
    /// + 12·n·(T + 1)                             three datasets' i32 tokens
    /// + 9·D·Y                                    the loaded corpus: its text and u32 tokens
    ///                                            (at most one token per byte plus separators),
    ///                                            held once per process
    /// ```
    pub fn estimated_bytes(&self) -> u64 {
        let m = &self.model;
        let (v, t, d, f, l, h) = (m.vocab, m.context, m.d_model, m.d_ff, m.n_layers, m.n_heads);
        let rows = product(&[self.batch.max(64), t]);
        let per_layer = total(&[product(&[16, d]), product(&[4, f]), product(&[3, h, t])]);
        let per_token = total(&[
            per_layer.saturating_mul(l as u64),
            product(&[4, v]),
            product(&[4, d]),
        ]);
        total(&[
            m.parameters_saturating().saturating_mul(20),
            rows.saturating_mul(per_token).saturating_mul(4),
            product(&[
                12,
                self.train_sequences.saturating_add(self.eval_sequences),
                t.saturating_add(1),
            ]),
            product(&[9, self.corpus.domains.len()])
                .saturating_mul(self.corpus.max_bytes_per_domain),
        ])
    }
}

#[cfg(test)]
mod tests {
    use claimbench_claims::limits::{GIB, fmt_bytes};
    use claimbench_paper::Scale;

    use super::*;

    fn refused(f: impl Fn(&mut ExperimentConfig)) -> String {
        let mut c = ExperimentConfig::for_scale(Scale::Small);
        f(&mut c);
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn every_scale_validates_and_fits_in_8_gib() {
        for scale in Scale::ALL {
            let c = ExperimentConfig::for_scale(scale);
            c.validate().unwrap();
            let bytes = c.estimated_bytes();
            eprintln!("continual {scale}: {bytes} bytes ({})", fmt_bytes(bytes));
            assert!(bytes < 8 * GIB, "{scale}: {}", fmt_bytes(bytes));
        }
    }

    #[test]
    fn huge_sizes_and_steps_are_refused_naming_field_and_limit() {
        assert_eq!(
            refused(|c| c.model.d_model = 1_000_000_000),
            "model.d_model 1000000000 is above the limit 4096"
        );
        assert_eq!(
            refused(|c| c.stage_steps = usize::MAX),
            format!("stage_steps {} is above the limit 1000000", usize::MAX)
        );
        assert!(
            refused(|c| c.corpus.max_bytes_per_domain = 1 << 40).contains("max_bytes_per_domain")
        );
        assert_eq!(
            refused(|c| c.replay_shares = vec![0.0; 65]),
            "replay_shares length 65 is above the limit 64"
        );
        assert_eq!(
            refused(|c| c.weight_decay = f64::NAN),
            "weight_decay NaN is not finite"
        );
        type Edit = fn(&mut ExperimentConfig);
        let cases: [(&str, Edit); 10] = [
            ("model.vocab", |c| c.model.vocab = usize::MAX),
            ("model.context", |c| c.model.context = usize::MAX),
            ("model.n_heads", |c| c.model.n_heads = usize::MAX),
            ("model.n_layers", |c| c.model.n_layers = usize::MAX),
            ("model.d_ff", |c| c.model.d_ff = usize::MAX),
            ("train_sequences", |c| c.train_sequences = usize::MAX),
            ("eval_sequences", |c| c.eval_sequences = usize::MAX),
            ("batch", |c| c.batch = usize::MAX),
            ("eval_every", |c| c.eval_every = usize::MAX),
            ("peaks length", |c| c.peaks = vec![1e-3; 65]),
        ];
        for (field, patch) in cases {
            let e = refused(patch);
            assert!(e.starts_with(field) && e.contains("above the limit"), "{e}");
        }
        // The zero checks still come first, with their own messages.
        assert!(refused(|c| c.batch = 0).contains("batch must be at least 1, got 0"));
    }

    #[test]
    fn the_estimate_grows_with_the_width_and_saturates() {
        let c = ExperimentConfig::for_scale(Scale::Small);
        let mut wide = c.clone();
        wide.model.d_model = 4 * c.model.d_model;
        assert!(wide.estimated_bytes() > c.estimated_bytes());
        // Parameters alone account for 20 bytes each.
        assert!(c.estimated_bytes() >= 20 * c.model.parameters() as u64);
        wide.model.d_model = usize::MAX;
        wide.stage_steps = usize::MAX;
        assert_eq!(wide.estimated_bytes(), u64::MAX);
    }
}
