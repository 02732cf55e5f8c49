//! The toy decoder-only transformer with a switchable FFN (dense SwiGLU or sparse MoE), the
//! Mixtral architecture at toy scale (paper Sec. 2, Table 1).
//!
//! `tokens [B, T] → embedding [V, d] → L pre-norm blocks → RMSNorm → untied head [d, V] →
//! logits [B·T, V]`. A block is
//! `h = x + Attn(RMSNorm(x))`, `out = h + FFN(RMSNorm(h))` with
//! - causal grouped-query attention (`H` query heads, `KV` key/value heads, head width `hd`,
//!   rotary positions, no biases);
//! - FFN dense: `SwiGLU(x) = (silu(x W1) ⊙ x W3) W2` ([`dense_swiglu`]);
//! - FFN MoE (Sec. 2.1, Eq. 1–2): `y = Σ_{i ∈ top-k} Softmax(TopK(x·W_g))_i · SwiGLU_i(x)`
//!   through the kernels' [`moe_layer`].
//!
//! Every weight is a [`Param`] drawn from a seeded host stream ([`init`]): the same seed gives the
//! same model on every backend. Shared parts (embedding, attention, norms, head) come from one
//! stream and the FFN from another, so every arm of a seed starts from the same shared weights.
//! The parameters are exactly those [`crate::params::param_counts`] counts.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use claimbench_kernels::burn_ops::{MoeBackend, dense_swiglu, moe_layer};
use claimbench_kernels::moe::MoeSpec;
use rand::rngs::StdRng;

use crate::config::ModelConfig;
use crate::data::normal;
use crate::error::Error;
use crate::params::FfnShape;

/// RMSNorm's `ε`.
pub const RMS_EPS: f64 = 1e-5;
/// Rotary base `θ` (Mixtral uses 1e6 at 32k context; the toy's short context needs no more than
/// Llama's 1e4).
pub const ROPE_THETA: f64 = 10_000.0;

/// One FFN: dense (`router = None`, one "expert" `w13 [1, d, 2h]`, `w2 [1, h, d]`) or MoE
/// (`router [d, E]`, `w13 [E, d, 2h]`, `w2 [E, h, d]`; columns `0..h` of `w13` are `W1`, the
/// gate, `h..2h` are `W3`).
#[derive(Module, Debug)]
pub struct Ffn<B: Backend> {
    /// Router `W_g [d, E]` (MoE only).
    pub router: Option<Param<Tensor<B, 2>>>,
    /// `W1 | W3` per expert, `[E, d, 2h]`.
    pub w13: Param<Tensor<B, 3>>,
    /// `W2` per expert, `[E, h, d]`.
    pub w2: Param<Tensor<B, 3>>,
    /// Experts per token (MoE only; 0 for dense).
    pub top_k: usize,
}

/// One transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// RMSNorm weight before attention `[d]`.
    pub attn_norm: Param<Tensor<B, 1>>,
    /// `W_q [d, H·hd]`.
    pub wq: Param<Tensor<B, 2>>,
    /// `W_k [d, KV·hd]`.
    pub wk: Param<Tensor<B, 2>>,
    /// `W_v [d, KV·hd]`.
    pub wv: Param<Tensor<B, 2>>,
    /// `W_o [H·hd, d]`.
    pub wo: Param<Tensor<B, 2>>,
    /// RMSNorm weight before the FFN `[d]`.
    pub ffn_norm: Param<Tensor<B, 1>>,
    /// The FFN.
    pub ffn: Ffn<B>,
}

/// The decoder (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// Token embedding `[V, d]`.
    pub embed: Param<Tensor<B, 2>>,
    /// The blocks.
    pub blocks: Vec<Block<B>>,
    /// Final RMSNorm weight `[d]`.
    pub norm: Param<Tensor<B, 1>>,
    /// Untied LM head `[d, V]`.
    pub head: Param<Tensor<B, 2>>,
    /// Query heads `H`.
    pub n_heads: usize,
    /// Key/value heads `KV`.
    pub n_kv_heads: usize,
}

/// One MoE layer's routing in a forward pass (all on the device).
#[derive(Debug, Clone)]
pub struct Routing<B: Backend> {
    /// Router logits `[n, E]`.
    pub logits: Tensor<B, 2>,
    /// Router softmax `[n, E]`.
    pub probs: Tensor<B, 2>,
    /// Chosen experts `[n, k]`, by descending weight.
    pub ids: Tensor<B, 2, Int>,
}

/// A forward pass: logits and, for MoE models, every layer's routing.
#[derive(Debug, Clone)]
pub struct Forward<B: Backend> {
    /// Next-token logits `[B·T, V]`, row `b·T + t`.
    pub logits: Tensor<B, 2>,
    /// One entry per block (empty for dense models).
    pub routing: Vec<Routing<B>>,
}

fn tensor<B: Backend, const D: usize>(
    v: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn gaussian(n: usize, sd: f64, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| (sd * normal(rng)) as f32).collect()
}

fn param<B: Backend, const D: usize>(
    shape: [usize; D],
    sd: f64,
    rng: &mut StdRng,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    let n = shape.iter().product();
    Param::from_tensor(tensor(gaussian(n, sd, rng), shape, device))
}

fn ones<B: Backend>(d: usize, device: &B::Device) -> Param<Tensor<B, 1>> {
    Param::from_tensor(Tensor::ones([d], device))
}

/// A freshly initialised decoder of `cfg` with FFN `ffn`. Shared weights come from `shared`,
/// FFN weights from `ffn_rng`. Scales: embedding `N(0, 1)`; `W_q, W_k, W_v, W1, W3, W_g`
/// `N(0, 1/d)`; the residual outputs `W_o`, `W2` `N(0, 1/(fan_in · 2L))` (GPT-2's depth
/// scaling); head `N(0, 1/d)`; norms 1.
pub fn init<B: Backend>(
    cfg: &ModelConfig,
    ffn: FfnShape,
    shared: &mut StdRng,
    ffn_rng: &mut StdRng,
    device: &B::Device,
) -> Decoder<B> {
    let (d, hd, l) = (cfg.d_model, cfg.head_dim(), cfg.n_layers);
    let (q, kv) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let s_in = 1.0 / (d as f64).sqrt();
    let depth = 1.0 / (2.0 * l as f64).sqrt();
    let embed = param([cfg.vocab, d], 1.0, shared, device);
    let blocks = (0..l)
        .map(|_| {
            let wq = param([d, q], s_in, shared, device);
            let wk = param([d, kv], s_in, shared, device);
            let wv = param([d, kv], s_in, shared, device);
            let wo = param([q, d], depth / (q as f64).sqrt(), shared, device);
            let ffn = match ffn {
                FfnShape::Dense { hidden } => Ffn {
                    router: None,
                    w13: param([1, d, 2 * hidden], s_in, ffn_rng, device),
                    w2: param(
                        [1, hidden, d],
                        depth / (hidden as f64).sqrt(),
                        ffn_rng,
                        device,
                    ),
                    top_k: 0,
                },
                FfnShape::Moe {
                    experts,
                    top_k,
                    hidden,
                } => Ffn {
                    router: Some(param([d, experts], s_in, ffn_rng, device)),
                    w13: param([experts, d, 2 * hidden], s_in, ffn_rng, device),
                    w2: param(
                        [experts, hidden, d],
                        depth / (hidden as f64).sqrt(),
                        ffn_rng,
                        device,
                    ),
                    top_k,
                },
            };
            Block {
                attn_norm: ones(d, device),
                wq,
                wk,
                wv,
                wo,
                ffn_norm: ones(d, device),
                ffn,
            }
        })
        .collect();
    let head = param([d, cfg.vocab], s_in, shared, device);
    Decoder {
        embed,
        blocks,
        norm: ones(d, device),
        head,
        n_heads: cfg.n_heads,
        n_kv_heads: cfg.n_kv_heads,
    }
}

/// `RMSNorm(x) = x / sqrt(mean(x², −1) + ε) ⊙ w`, `x [n, d]`, `w [d]`.
fn rms_norm<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 1>) -> Tensor<B, 2> {
    let inv = x
        .clone()
        .powi_scalar(2)
        .mean_dim(1)
        .add_scalar(RMS_EPS)
        .sqrt()
        .recip();
    x * inv * w.unsqueeze_dim(0)
}

/// Rotary tables `cos, sin [1, 1, T, hd/2]` for positions `0..T`, frequencies
/// `θ^(−2i/hd)` (RoFormer Eq. 15; HF's `rotate_half` layout: pairs `(i, i + hd/2)`).
fn rope_tables<B: Backend>(
    t: usize,
    hd: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let half = hd / 2;
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in 0..t {
        for i in 0..half {
            let a = p as f64 * ROPE_THETA.powf(-(2.0 * i as f64) / hd as f64);
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (
        tensor(cos, [1, 1, t, half], device),
        tensor(sin, [1, 1, t, half], device),
    )
}

/// Rotates `x [B, h, T, hd]`: `(x1, x2) → (x1 cos − x2 sin, x1 sin + x2 cos)` on the halves.
fn rope<B: Backend>(x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, t, hd] = x.dims();
    let half = hd / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..half]);
    let x2 = x.slice([0..b, 0..h, 0..t, half..hd]);
    Tensor::cat(
        vec![
            x1.clone() * cos.clone() - x2.clone() * sin.clone(),
            x1 * sin.clone() + x2 * cos.clone(),
        ],
        3,
    )
}

impl<B: Backend + MoeBackend> Decoder<B> {
    /// Model width `d`.
    pub fn d_model(&self) -> usize {
        self.embed.dims()[1]
    }

    /// Causal grouped-query attention of `x [B·T, d]` (already normalised) →  `[B·T, d]`.
    fn attention(
        &self,
        blk: &Block<B>,
        x: Tensor<B, 2>,
        b: usize,
        t: usize,
        rot: &(Tensor<B, 4>, Tensor<B, 4>),
        mask: &Tensor<B, 4>,
    ) -> Tensor<B, 2> {
        let (h, kvh) = (self.n_heads, self.n_kv_heads);
        let hd = blk.wq.dims()[1] / h;
        let heads = |y: Tensor<B, 2>, n: usize| y.reshape([b, t, n, hd]).swap_dims(1, 2); // [B, n, T, hd]
        let q = rope(heads(x.clone().matmul(blk.wq.val()), h), &rot.0, &rot.1);
        let k = rope(heads(x.clone().matmul(blk.wk.val()), kvh), &rot.0, &rot.1);
        let v = heads(x.matmul(blk.wv.val()), kvh);
        // GQA: each key/value head serves H / KV query heads.
        let rep = |y: Tensor<B, 4>| {
            if kvh == h {
                y
            } else {
                y.reshape([b, kvh, 1, t, hd])
                    .expand([b, kvh, h / kvh, t, hd])
                    .reshape([b, h, t, hd])
            }
        };
        let (k, v) = (rep(k), rep(v));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt()) + mask.clone(); // [B, H, T, T]
        let att = softmax(scores, 3).matmul(v); // [B, H, T, hd]
        att.swap_dims(1, 2)
            .reshape([b * t, h * hd])
            .matmul(blk.wo.val())
    }

    /// `tokens [B, T]` → [`Forward`]: logits `[B·T, V]` (position `t` sees tokens `0..=t`) and
    /// each MoE layer's routing. Errors: the MoE layer's shape checks ([`Error::Kernel`]).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Result<Forward<B>, Error> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let d = self.d_model();
        let hd = self
            .blocks
            .first()
            .map_or(2, |blk| blk.wq.dims()[1] / self.n_heads);
        let rot = rope_tables::<B>(t, hd, &device);
        // Additive causal mask [1, 1, T, T]: −1e9 above the diagonal.
        let m: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let mask = tensor::<B, 4>(m, [1, 1, t, t], &device);
        let mut x = self
            .embed
            .val()
            .select(0, tokens.reshape([b * t]))
            .reshape([b * t, d]);
        let mut routing = Vec::new();
        for blk in &self.blocks {
            let a = self.attention(
                blk,
                rms_norm(x.clone(), blk.attn_norm.val()),
                b,
                t,
                &rot,
                &mask,
            );
            x = x + a;
            let hn = rms_norm(x.clone(), blk.ffn_norm.val());
            let f = &blk.ffn;
            let y = match &f.router {
                None => {
                    let [_, dd, h2] = f.w13.dims();
                    let [_, h, _] = f.w2.dims();
                    dense_swiglu(
                        hn,
                        f.w13.val().reshape([dd, h2]),
                        f.w2.val().reshape([h, dd]),
                    )
                }
                Some(router) => {
                    let [e, dd, h2] = f.w13.dims();
                    let spec = MoeSpec {
                        experts: e,
                        top_k: f.top_k,
                        d_model: dd,
                        hidden: h2 / 2,
                    };
                    let out = moe_layer(&spec, hn, router.val(), f.w13.val(), f.w2.val())?;
                    routing.push(Routing {
                        logits: out.logits,
                        probs: out.probs,
                        ids: out.ids,
                    });
                    out.y
                }
            };
            x = x + y;
        }
        let logits = rms_norm(x, self.norm.val()).matmul(self.head.val());
        Ok(Forward { logits, routing })
    }
}
