//! The stated bounds of [`DoraConfig`]'s sizes, counts and steps, and the memory estimate of one
//! seed ([`DoraConfig::estimated_bytes`]).
//!
//! The limits sit far above the `full` preset (`d = 64`, MLP widths up to 64, ranks up to 16,
//! 1500 steps, batches of 128, 4096 held-out samples) yet keep a validated run finite and its
//! matrices allocatable: a 4096 × 4096 layer is 64 MiB in f32, a million steps of it hours on a
//! GPU, not centuries. What fits the machine is decided by the estimate, not by these limits.

use claimbench_claims::limits::{LimitError, at_most, len_at_most, product, total};

use crate::config::DoraConfig;
use crate::error::Error;

/// Widest layer: `d`, every entry of `mlp_widths`, and so every rank (`ranks`, `target_rank`,
/// `adapt_target_rank`, `analysis_rank`).
pub const MAX_WIDTH: usize = 4096;
/// Most layers of the MLP (`mlp_widths` holds one more width than layers).
pub const MAX_LAYERS: usize = 64;
/// Most Adam steps of one run (`steps`, `pretrain_steps`, `adapt_steps`), and the longest
/// `checkpoint_every`.
pub const MAX_STEPS: usize = 1_000_000;
/// Most fresh samples per step (`batch`).
pub const MAX_BATCH: usize = 65_536;
/// Most held-out samples (`eval_samples`).
pub const MAX_EVAL_SAMPLES: usize = 1_000_000;
/// Most entries of `ranks`, `lr_grid` and `tuning_seeds` (each entry multiplies the runs).
pub const MAX_LIST: usize = 64;

impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Error::Config {
            name: e.field,
            value: e.value,
            rule: e.rule,
        }
    }
}

impl DoraConfig {
    /// Checks every size, count, step and list length against its limit; the error is
    /// [`Error::Config`], e.g. `dora setting d = 1000000000: is above the limit 4096`. Called by
    /// [`DoraConfig::validate`] before any adapter geometry is checked.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        for (field, value, max) in [
            ("d", self.d, MAX_WIDTH),
            ("target_rank", self.target_rank, MAX_WIDTH),
            ("adapt_target_rank", self.adapt_target_rank, MAX_WIDTH),
            ("analysis_rank", self.analysis_rank, MAX_WIDTH),
            ("steps", self.steps, MAX_STEPS),
            ("pretrain_steps", self.pretrain_steps, MAX_STEPS),
            ("adapt_steps", self.adapt_steps, MAX_STEPS),
            ("checkpoint_every", self.checkpoint_every, MAX_STEPS),
            ("batch", self.batch, MAX_BATCH),
            ("eval_samples", self.eval_samples, MAX_EVAL_SAMPLES),
        ] {
            at_most(field, value, max)?;
        }
        len_at_most("ranks", self.ranks.len(), MAX_LIST)?;
        len_at_most("lr_grid", self.lr_grid.len(), MAX_LIST)?;
        len_at_most("tuning_seeds", self.tuning_seeds.len(), MAX_LIST)?;
        len_at_most("mlp_widths", self.mlp_widths.len(), MAX_LAYERS + 1)?;
        for (i, &r) in self.ranks.iter().enumerate() {
            at_most(&format!("ranks[{i}]"), r, MAX_WIDTH)?;
        }
        for (i, &w) in self.mlp_widths.iter().enumerate() {
            at_most(&format!("mlp_widths[{i}]"), w, MAX_WIDTH)?;
        }
        Ok(())
    }

    /// An upper-bound estimate of the peak memory of one seed (the capacity or control layer
    /// and the MLP adaptation, summed although they run one after the other), in bytes
    /// (saturating). With `r` the largest rank, `R = max(batch, eval_samples)` rows, and for
    /// every layer `d_in × d_out` (the `d × d` layer, then the MLP's):
    ///
    /// ```text
    /// 68·d_in·d_out              f64 host copies of W0, target, Δ and the perturbed weights,
    ///                            f32 W0 and teacher, full fine-tuning's weights, grads and moments,
    ///                            DoRA's W0 + s·A·B column-norm temporary
    /// + 16·(r·(d_in + d_out) + 2·d_out)   the adapter, magnitude and bias under Adam
    /// + 24·R·d_out               six f32 activations of the layer (output, teacher, prediction,
    ///                            pre/post-ReLU, gradient)
    /// ```
    ///
    /// plus `12·R·d_in` of the first layer's inputs (f64 host and f32 device).
    pub fn estimated_bytes(&self) -> u64 {
        let rank = self.ranks.iter().copied().max().unwrap_or(0);
        let rows = self.batch.max(self.eval_samples);
        let layer = |d_in: usize, d_out: usize| {
            total(&[
                product(&[68, d_in, d_out]),
                total(&[
                    product(&[rank, d_in.saturating_add(d_out)]),
                    product(&[2, d_out]),
                ])
                .saturating_mul(16),
                product(&[24, rows, d_out]),
            ])
        };
        let inputs = |d_in: usize| product(&[12, rows, d_in]);
        let capacity = total(&[layer(self.d, self.d), inputs(self.d)]);
        let adapt = self
            .mlp_layers()
            .iter()
            .fold(0u64, |acc, &(i, o)| acc.saturating_add(layer(i, o)));
        let first = self.mlp_widths.first().copied().unwrap_or(0);
        total(&[capacity, adapt, inputs(first)])
    }
}
