//! [`AdaptedLm`]: continual's [`TinyLm`] with the six projections of every block (attention
//! query, key, value, output; feed-forward inner, outer) adapted by LoRA or DoRA through
//! [`Net`] (the fused `lora_linear` / `dora_linear` of `claimbench-kernels`), everything else
//! frozen. Full fine-tuning trains the [`TinyLm`] itself and needs no wrapper.
//!
//! The forward pass is burn's pre-norm `TransformerEncoder` written out (burn 0.21,
//! `TransformerEncoderLayer::forward` with `norm_first`): `x + MHA(norm_2(x))`, then
//! `x + W_outer(act(W_inner(norm_1(x))))`, attention `softmax(Q Kᵀ / √d_k)` with masked scores
//! set to the layer's `min_float`. With `B = 0` (every adapter at initialisation) the logits
//! are the base model's ([`AdaptedLm::forward`]'s test), and [`AdaptedLm::merged`] folds the
//! adapters into one plain model (the paper's "no inference overhead").

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::Linear;
use burn::nn::attention::generate_autoregressive_mask;
use burn::prelude::*;
use burn::tensor::activation::{quiet_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use claimbench_continual::model::TinyLm;
use claimbench_kernels::burn_ops::{DoraBackend, NormGrad, dora_merge, lora_merge};
use rand::rngs::StdRng;

use crate::error::Error;
use crate::layer::{Decomposed, LinearWeights, Method, Net, Trainable, column_norms, read};

/// The adapted projections of one block, in [`Net`]'s layer order (`6·block + j`).
pub const PROJECTIONS: [&str; 6] = ["query", "key", "value", "output", "inner", "outer"];

/// The positions (within a block) of the projections the paper's Sec. 3.2 analysis reads: query
/// and value.
pub const ANALYSED: [usize; 2] = [0, 2];

/// The projections of `lm`, 6 per block in [`PROJECTIONS`] order.
pub fn projections<B: Backend>(lm: &TinyLm<B>) -> Vec<&Linear<B>> {
    lm.blocks
        .layers
        .iter()
        .flat_map(|l| {
            [
                &l.mha.query,
                &l.mha.key,
                &l.mha.value,
                &l.mha.output,
                &l.pwff.linear_inner,
                &l.pwff.linear_outer,
            ]
        })
        .collect()
}

fn projections_mut<B: Backend>(lm: &mut TinyLm<B>) -> Vec<&mut Linear<B>> {
    lm.blocks
        .layers
        .iter_mut()
        .flat_map(|l| {
            [
                &mut l.mha.query,
                &mut l.mha.key,
                &mut l.mha.value,
                &mut l.mha.output,
                &mut l.pwff.linear_inner,
                &mut l.pwff.linear_outer,
            ]
        })
        .collect()
}

/// A linear layer's weights on the host (`W [d_in, d_out]`, bias).
pub fn host_weights<B: Backend>(l: &Linear<B>) -> Result<LinearWeights, Error> {
    let [d_in, d_out] = l.weight.dims();
    Ok(LinearWeights {
        d_in,
        d_out,
        w: read(l.weight.val())?,
        bias: match &l.bias {
            Some(b) => Some(read(b.val())?),
            None => None,
        },
    })
}

/// The projections of `lm` read as magnitude and direction (FT's reading: `m = ‖W‖_c`).
pub fn decompose_full<B: Backend>(lm: &TinyLm<B>) -> Result<Vec<Decomposed>, Error> {
    projections(lm)
        .into_iter()
        .map(|l| {
            let h = host_weights(l)?;
            Ok(Decomposed {
                magnitude: column_norms(&h.w, h.d_in, h.d_out),
                d_in: h.d_in,
                d_out: h.d_out,
                direction: h.w,
            })
        })
        .collect()
}

/// The base model (frozen) with its projections adapted by LoRA or DoRA.
#[derive(Debug)]
pub struct AdaptedLm<B: AutodiffBackend + DoraBackend> {
    base: TinyLm<B>,
    net: Net<B>,
}

impl<B: AutodiffBackend + DoraBackend> AdaptedLm<B> {
    /// `base` frozen (no parameter requires a gradient) with adapters of `rank` and `α` on every
    /// projection (`A` Kaiming-uniform from `rng`, `B = 0`, DoRA's `m = ‖W0‖_c`), DoRA's norm
    /// gradient `norm`. Errors: FT (train the [`TinyLm`] itself), a rank the kernels refuse.
    pub fn new(
        base: TinyLm<B>,
        method: Method,
        rank: usize,
        alpha: f64,
        norm: NormGrad,
        rng: &mut StdRng,
    ) -> Result<(Self, Trainable<B>), Error> {
        if method == Method::Full {
            return Err(Error::Text(
                "full fine-tuning trains the base model itself, not adapters".into(),
            ));
        }
        let layers: Vec<LinearWeights> = projections(&base)
            .into_iter()
            .map(host_weights)
            .collect::<Result<_, _>>()?;
        let device = base.head.weight.device();
        let (net, params) = Net::new(&layers, method, rank, alpha, rng, &device)?;
        Ok((
            AdaptedLm {
                base: base.no_grad(),
                net: net.with_norm(norm),
            },
            params,
        ))
    }

    /// The frozen projections on the host (the `W0` of the analysis).
    pub fn base_layers(&self) -> &[LinearWeights] {
        &self.net.base
    }

    /// Projection `l` of `x [b, t, d_in]` → `[b, t, d_out]` (bias included).
    fn proj(&self, l: usize, p: &Trainable<B>, x: Tensor<B, 3>) -> Result<Tensor<B, 3>, Error> {
        let [b, t, d_in] = x.dims();
        let y = self.net.layer(l, &p.layers[l], x.reshape([b * t, d_in]))?;
        let d_out = y.dims()[1];
        Ok(y.reshape([b, t, d_out]))
    }

    /// `tokens [B, T]` → next-token logits `[B, T, V]`, causal (position `i` sees `0..=i`).
    pub fn forward(
        &self,
        params: &Trainable<B>,
        tokens: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>, Error> {
        let lm = &self.base;
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let mut x = lm.tok.forward(tokens) + lm.pos.forward(positions);
        let d = x.dims()[2];
        let mask = generate_autoregressive_mask::<B>(b, t, &device).reshape([b, 1, t, t]);
        for (i, layer) in lm.blocks.layers.iter().enumerate() {
            let mha = &layer.mha;
            let (heads, dk) = (mha.n_heads, mha.d_k);
            let h = layer.norm_2.forward(x.clone());
            let split = |j: usize, h: Tensor<B, 3>| -> Result<Tensor<B, 4>, Error> {
                Ok(self
                    .proj(6 * i + j, params, h)?
                    .reshape([b, t, heads, dk])
                    .swap_dims(1, 2))
            };
            let q = split(0, h.clone())?;
            let k = split(1, h.clone())?;
            let v = split(2, h)?;
            let scores = q
                .matmul(k.transpose())
                .div_scalar((dk as f32).sqrt())
                .mask_fill(mask.clone(), mha.min_float);
            let w = match mha.quiet_softmax {
                true => quiet_softmax(scores, 3),
                false => softmax(scores, 3),
            };
            let ctx = w.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
            x = x + self.proj(6 * i + 3, params, ctx)?;
            let h = layer.norm_1.forward(x.clone());
            let f = layer
                .pwff
                .activation
                .forward(self.proj(6 * i + 4, params, h)?);
            x = x + self.proj(6 * i + 5, params, f)?;
        }
        Ok(lm.head.forward(lm.norm.forward(x)))
    }

    /// The adapted model as one plain [`TinyLm`] on the inner backend: every projection's
    /// weight replaced by its merge (LoRA `W0 + s A B`, DoRA `m ⊙ V / ‖V‖_c`), biases and the
    /// rest the base's. What evaluation runs (no autodiff, no adapter overhead).
    pub fn merged(&self, params: &Trainable<B>) -> Result<TinyLm<B::InnerBackend>, Error> {
        let mut lm = self.base.valid();
        for (l, lin) in projections_mut(&mut lm).into_iter().enumerate() {
            let p = &params.layers[l];
            let spec = self.net.spec(l);
            let (w0, a, b) = (
                self.net.w0(l),
                p.a.as_ref().expect("adapted layers hold A").val(),
                p.b.as_ref().expect("adapted layers hold B").val(),
            );
            let w = match self.net.method {
                Method::Dora => {
                    let m = p.m.as_ref().expect("DoRA layers hold m").val();
                    dora_merge::<B>(&spec, w0, a, b, m)?.0
                }
                _ => lora_merge::<B>(&spec, w0, a, b)?,
            };
            lin.weight = Param::from_tensor(w.inner());
        }
        Ok(lm)
    }

    /// Every projection read as magnitude and direction ([`Net::decompose`]).
    pub fn decompose(&self, params: &Trainable<B>) -> Result<Vec<Decomposed>, Error> {
        self.net.decompose(params)
    }
}
