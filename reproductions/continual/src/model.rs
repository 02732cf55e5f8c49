//! The small decoder-only language model the reproduction trains, and its loss.
//!
//! `tokens [B, T] → embed + learned positions → n pre-norm causal transformer blocks → LayerNorm →
//! linear head → logits [B, T, V]`. The loss is the mean next-token cross-entropy through
//! `claimbench_kernels::burn_ops::cross_entropy_unchecked`: the fused cubecl kernel on wgpu and
//! CUDA, its tensor-op composition on `flex`, one op in both cases.

use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use claimbench_kernels::burn_ops::{TokenLogprobBackend, cross_entropy_unchecked};
use claimbench_kernels::cross_entropy::Settings;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Model shape. `vocab` is both languages' tokens together.
///
/// Limits ([`crate::limits`]): `vocab` ≤ 8195, `context` ≤ 4096, `d_model` ≤ 4096, `n_heads`
/// ≤ 256, `n_layers` ≤ 64, `d_ff` ≤ 16 384.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Context length `T` (positions).
    pub context: usize,
    /// Width `d`.
    pub d_model: usize,
    /// Attention heads (divides `d`).
    pub n_heads: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Feed-forward width.
    pub d_ff: usize,
}

impl ModelConfig {
    /// Checks every size is ≥ 1 and within its limit ([`ModelConfig::check_limits`]), and the
    /// heads divide the width.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("vocab", self.vocab),
            ("context", self.context),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_layers", self.n_layers),
            ("d_ff", self.d_ff),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!(
                "model {name} must be at least 1, got 0"
            )));
        }
        self.check_limits()?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ConfigError::Invalid(format!(
                "model n_heads {} does not divide d_model {}",
                self.n_heads, self.d_model
            )));
        }
        Ok(())
    }

    /// A freshly initialised model on `device` (burn's initialisers, seeded by the caller
    /// through `B::seed`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> TinyLm<B> {
        TinyLm {
            tok: EmbeddingConfig::new(self.vocab, self.d_model).init(device),
            pos: EmbeddingConfig::new(self.context, self.d_model).init(device),
            blocks: TransformerEncoderConfig::new(
                self.d_model,
                self.d_ff,
                self.n_heads,
                self.n_layers,
            )
            .with_dropout(0.0)
            .with_norm_first(true)
            .init(device),
            norm: LayerNormConfig::new(self.d_model).init(device),
            head: LinearConfig::new(self.d_model, self.vocab).init(device),
        }
    }

    /// Number of trainable scalars: [`ModelConfig::parameters_saturating`] (the one formula),
    /// exact for every config within its limits.
    pub fn parameters(&self) -> usize {
        usize::try_from(self.parameters_saturating()).unwrap_or(usize::MAX)
    }
}

/// A decoder-only transformer LM (see the module docs).
#[derive(Module, Debug)]
pub struct TinyLm<B: Backend> {
    /// Token embedding `[V, d]`.
    pub tok: Embedding<B>,
    /// Learned positions `[T, d]`.
    pub pos: Embedding<B>,
    /// The pre-norm blocks (burn's encoder with a causal mask; each block's `norm_2` comes
    /// before attention and `norm_1` before the feed-forward, burn's naming).
    pub blocks: TransformerEncoder<B>,
    /// The final LayerNorm.
    pub norm: LayerNorm<B>,
    /// The output layer `[d, V]`.
    pub head: Linear<B>,
}

impl<B: Backend> TinyLm<B> {
    /// `tokens [B, T']` (`T' ≤ T`) → next-token logits `[B, T', V]`; position `i` sees tokens
    /// `0..=i` only (causal mask).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let x = self.tok.forward(tokens) + self.pos.forward(positions);
        let mask = generate_autoregressive_mask::<B>(b, t, &device);
        let h = self
            .blocks
            .forward(TransformerEncoderInput::new(x).mask_attn(mask));
        self.head.forward(self.norm.forward(h))
    }
}

/// Mean next-token cross-entropy (nats) of `model` on `seqs [B, T + 1]`: inputs are tokens
/// `0..T`, targets tokens `1..=T`, every position counted. A one-element tensor.
pub fn lm_loss<B: TokenLogprobBackend>(model: &TinyLm<B>, seqs: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    match next_token_loss::<B, std::convert::Infallible>(seqs, |inputs| Ok(model.forward(inputs))) {
        Ok(loss) => loss,
        Err(never) => match never {},
    }
}

/// [`lm_loss`] of any model: `forward` maps `tokens [B, T]` to logits `[B, T, V]` (another
/// parametrisation of [`TinyLm`], e.g. one with adapted projections) or fails with `E`.
pub fn next_token_loss<B: TokenLogprobBackend, E>(
    seqs: Tensor<B, 2, Int>,
    forward: impl FnOnce(Tensor<B, 2, Int>) -> Result<Tensor<B, 3>, E>,
) -> Result<Tensor<B, 1>, E> {
    let [b, len] = seqs.dims();
    let t = len - 1;
    let inputs = seqs.clone().slice([0..b, 0..t]);
    let targets = seqs.slice([0..b, 1..len]).reshape([b * t]);
    let logits = forward(inputs)?;
    let v = logits.dims()[2];
    Ok(cross_entropy_unchecked(
        logits.reshape([b * t, v]),
        targets,
        Settings::default(),
        b * t,
    ))
}
