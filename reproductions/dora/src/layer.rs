//! The adapted layers and networks: a stack of linear layers `y = x W + b` (ReLU between layers,
//! burn's layout `W [d_in, d_out]`) whose weights are adapted by one [`Method`]:
//!
//! - [`Method::Full`]: every `W_l` and `b_l` is trained (full fine-tuning, FT);
//! - [`Method::Lora`]: `y = x W0 + s (x A) B + b0` ([`lora_linear`]), `A [d_in, r]`,
//!   `B [r, d_out]` trained, `W0`, `b0` frozen;
//! - [`Method::Dora`]: `y = (x W0 + s (x A) B) ⊙ m / max(‖W0 + s A B‖_c, ε) + b0`
//!   ([`dora_linear`] with [`NormGrad::Detached`], the paper's Sec. 4.3 choice), `A`, `B`,
//!   `m [d_out]` trained.
//!
//! Initialisation (paper Sec. 4.1, PEFT): `A` Kaiming-uniform (`U(−1/√d_in, 1/√d_in)`, PyTorch's
//! `kaiming_uniform_(a = √5)`) from a seeded host RNG, `B = 0`, `m = ‖W0‖_c`
//! ([`dora_column_norms`] at `B = 0`), so every adapted network equals its base at step 0.
//!
//! Invariant: the frozen `W0`, `b0` live in [`Net`] as plain tensors (never `Param`s), outside
//! the [`Trainable`] module the optimizer sees, so they cannot be updated.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::{
    DoraBackend, NormGrad, dora_column_norms, dora_linear, lora_linear, lora_merge,
};
use claimbench_kernels::dora::AdapterSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a network's weights are adapted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Full fine-tuning: every weight and bias trained.
    Full,
    /// LoRA: `W0 + s A B`.
    Lora,
    /// DoRA: `m ⊙ (W0 + s A B) / ‖W0 + s A B‖_c`.
    Dora,
}

impl Method {
    /// `ft`, `lora` or `dora` (the names in metric rows).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Full => "ft",
            Method::Lora => "lora",
            Method::Dora => "dora",
        }
    }

    /// The inverse of [`Method::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ft" => Some(Method::Full),
            "lora" => Some(Method::Lora),
            "dora" => Some(Method::Dora),
            _ => None,
        }
    }
}

/// A seeded random stream: `seed` mixed with the stream's `tag`.
pub(crate) fn stream(seed: u64, tag: u64) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One linear layer's weights on the host: `w [d_in, d_out]` row-major (`w[i·d_out + j]`),
/// `bias [d_out]` (`None`: no bias).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearWeights {
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
    /// `W [d_in, d_out]`, row-major.
    pub w: Vec<f64>,
    /// `b [d_out]`.
    pub bias: Option<Vec<f64>>,
}

impl LinearWeights {
    /// `W_ij ~ N(0, gain² / d_in)`, bias `~ N(0, bias_sd²)` (`None` without one).
    pub fn gaussian(
        d_in: usize,
        d_out: usize,
        gain: f64,
        bias_sd: Option<f64>,
        rng: &mut StdRng,
    ) -> Self {
        let sd = gain / (d_in as f64).sqrt();
        let w = (0..d_in * d_out).map(|_| sd * normal(rng)).collect();
        let bias = bias_sd.map(|s| (0..d_out).map(|_| s * normal(rng)).collect());
        LinearWeights {
            d_in,
            d_out,
            w,
            bias,
        }
    }

    /// Column norms `‖W[:, j]‖`, `[d_out]`.
    pub fn column_norms(&self) -> Vec<f64> {
        column_norms(&self.w, self.d_in, self.d_out)
    }

    /// `‖W‖_F`.
    pub fn frobenius(&self) -> f64 {
        self.w.iter().map(|v| v * v).sum::<f64>().sqrt()
    }
}

/// Column norms of a row-major `[rows, cols]` matrix.
pub(crate) fn column_norms(w: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut n = vec![0.0; cols];
    for i in 0..rows {
        for (j, acc) in n.iter_mut().enumerate() {
            let v = w[i * cols + j];
            *acc += v * v;
        }
    }
    n.iter().map(|v| v.sqrt()).collect()
}

/// A tensor's values on the host as f64, row-major.
pub(crate) fn read<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f64>, Error> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map(|v| v.into_iter().map(f64::from).collect())
        .map_err(|e| Error::ReadBack(format!("{e:?}")))
}

pub(crate) fn tensor2<B: Backend>(
    v: &[f64],
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

pub(crate) fn tensor1<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [v.len()]), device)
}

/// The trainable tensors of one layer; which are present depends on the [`Method`]
/// (FT: `w`, `bias`; LoRA: `a`, `b`; DoRA: `a`, `b`, `m`).
#[derive(Module, Debug)]
pub struct LayerParams<B: Backend> {
    /// `A [d_in, r]`.
    pub a: Option<Param<Tensor<B, 2>>>,
    /// `B [r, d_out]`.
    pub b: Option<Param<Tensor<B, 2>>>,
    /// DoRA's magnitude `m [d_out]`.
    pub m: Option<Param<Tensor<B, 1>>>,
    /// FT's weight `W [d_in, d_out]`.
    pub w: Option<Param<Tensor<B, 2>>>,
    /// FT's bias `[d_out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

/// Everything the optimizer updates: one [`LayerParams`] per layer.
#[derive(Module, Debug)]
pub struct Trainable<B: Backend> {
    /// Per layer.
    pub layers: Vec<LayerParams<B>>,
}

/// A network's frozen part: base weights `W0_l`, biases `b0_l` (plain tensors, never trained)
/// and, for LoRA/DoRA, each layer's [`AdapterSpec`].
#[derive(Debug, Clone)]
pub struct Net<B: Backend> {
    /// The method.
    pub method: Method,
    /// The base layers on the host.
    pub base: Vec<LinearWeights>,
    /// `W0_l [d_in, d_out]` on the device.
    w0: Vec<Tensor<B, 2>>,
    /// `b0_l [d_out]` on the device.
    b0: Vec<Option<Tensor<B, 1>>>,
    /// `Some` for LoRA/DoRA.
    specs: Vec<Option<AdapterSpec>>,
    /// DoRA's norm gradient (the paper's detached one unless [`Net::with_norm`] says otherwise).
    norm: NormGrad,
}

impl<B: AutodiffBackend + DoraBackend> Net<B> {
    /// The frozen part of `base` adapted by `method` at `rank` (ignored by FT) with `α`, and
    /// its initial trainable part: `A` Kaiming-uniform from `rng`, `B = 0`, `m = ‖W0‖_c`; FT
    /// starts from `W0`, `b0`. Fails where `rank`/`α` do not fit a layer (`AdapterSpec::validate`).
    pub fn new(
        base: &[LinearWeights],
        method: Method,
        rank: usize,
        alpha: f64,
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Result<(Self, Trainable<B>), Error> {
        let mut w0 = Vec::new();
        let mut b0 = Vec::new();
        let mut specs = Vec::new();
        let mut layers = Vec::new();
        for l in base {
            let w = tensor2::<B>(&l.w, l.d_in, l.d_out, device);
            let bias = l.bias.as_ref().map(|b| tensor1::<B>(b, device));
            let mut p = LayerParams {
                a: None,
                b: None,
                m: None,
                w: None,
                bias: None,
            };
            let spec = match method {
                Method::Full => {
                    p.w = Some(Param::from_tensor(w.clone()));
                    p.bias = bias.clone().map(Param::from_tensor);
                    None
                }
                Method::Lora | Method::Dora => {
                    let spec = AdapterSpec {
                        d_in: l.d_in,
                        d_out: l.d_out,
                        rank,
                        alpha: alpha as f32,
                    };
                    spec.validate()?;
                    let bound = 1.0 / (l.d_in as f64).sqrt();
                    let a: Vec<f64> = (0..l.d_in * rank)
                        .map(|_| rng.random_range(-bound..bound))
                        .collect();
                    let a = tensor2::<B>(&a, l.d_in, rank, device);
                    let b = Tensor::<B, 2>::zeros([rank, l.d_out], device);
                    if method == Method::Dora {
                        // m = ‖W0 + s A·0‖_c = ‖W0‖_c: the layer equals the base at init.
                        let m = dora_column_norms::<B>(&spec, w.clone(), a.clone(), b.clone())?;
                        p.m = Some(Param::from_tensor(m.detach()));
                    }
                    p.a = Some(Param::from_tensor(a));
                    p.b = Some(Param::from_tensor(b));
                    Some(spec)
                }
            };
            w0.push(w);
            b0.push(bias);
            specs.push(spec);
            layers.push(p);
        }
        Ok((
            Net {
                method,
                base: base.to_vec(),
                w0,
                b0,
                specs,
                norm: NormGrad::Detached,
            },
            Trainable { layers },
        ))
    }

    /// `x [n, d_in of layer 0] → [n, d_out of the last layer]`: each layer by its method, ReLU
    /// between layers (not after the last).
    pub fn forward(&self, params: &Trainable<B>, x: Tensor<B, 2>) -> Result<Tensor<B, 2>, Error> {
        let n = self.w0.len();
        let mut h = x;
        for (l, p) in params.layers.iter().enumerate() {
            h = self.layer(l, p, h)?;
            if l + 1 < n {
                h = relu(h);
            }
        }
        Ok(h)
    }

    /// The same network with DoRA's column norm getting `norm`'s gradient (Eq. 11 detached, the
    /// default, or Eq. 6 exact).
    pub fn with_norm(self, norm: NormGrad) -> Self {
        Net { norm, ..self }
    }

    /// Layer `l`'s adapter geometry. Panics for FT (no adapters).
    pub fn spec(&self, l: usize) -> AdapterSpec {
        self.specs[l].expect("LoRA/DoRA layers have a spec")
    }

    /// Layer `l`'s frozen `W0 [d_in, d_out]` on the device.
    pub fn w0(&self, l: usize) -> Tensor<B, 2> {
        self.w0[l].clone()
    }

    /// Layer `l` alone: `x [n, d_in] → [n, d_out]` by the method, bias added (no activation).
    pub fn layer(
        &self,
        l: usize,
        p: &LayerParams<B>,
        x: Tensor<B, 2>,
    ) -> Result<Tensor<B, 2>, Error> {
        let (y, bias) = match (self.method, &self.specs[l]) {
            (Method::Full, _) => {
                let w = p.w.as_ref().expect("FT layers hold w").val();
                (x.matmul(w), p.bias.as_ref().map(Param::val))
            }
            (Method::Lora, Some(spec)) => {
                let (a, b) = adapters(p);
                let y = lora_linear::<B>(spec, x, self.w0[l].clone(), a, b)?;
                (y, self.b0[l].clone())
            }
            (Method::Dora, Some(spec)) => {
                let (a, b) = adapters(p);
                let m = p.m.as_ref().expect("DoRA layers hold m").val();
                let y = dora_linear::<B>(spec, x, self.w0[l].clone(), a, b, m, self.norm)?;
                (y, self.b0[l].clone())
            }
            _ => unreachable!("LoRA/DoRA layers have a spec"),
        };
        Ok(match bias {
            Some(b) => y + b.unsqueeze_dim(0),
            None => y,
        })
    }

    /// The network's current layers on the host, with LoRA merged (`W0 + s A B`, [`lora_merge`])
    /// and FT read as is, plus each layer's magnitude and direction as the paper's Sec. 3.2
    /// reads them: FT/LoRA `m_t = ‖W_t‖_c`, direction `W_t[:, n]`; DoRA `m_t` = the learned
    /// magnitude, direction `V_t = W0 + s A B` (the merged DoRA weight `V ⊙ m / ‖V‖_c` has
    /// the same column directions where `m > 0`).
    pub fn decompose(&self, params: &Trainable<B>) -> Result<Vec<Decomposed>, Error> {
        let mut out = Vec::new();
        for (l, p) in params.layers.iter().enumerate() {
            let base = &self.base[l];
            let (dir, magnitude) = match (self.method, &self.specs[l]) {
                (Method::Full, _) => {
                    let w = read(p.w.as_ref().expect("FT layers hold w").val())?;
                    let m = column_norms(&w, base.d_in, base.d_out);
                    (w, m)
                }
                (method, Some(spec)) => {
                    let (a, b) = adapters(p);
                    let v = read(lora_merge::<B>(spec, self.w0[l].clone(), a, b)?)?;
                    let m = match method {
                        Method::Dora => read(p.m.as_ref().expect("DoRA layers hold m").val())?,
                        _ => column_norms(&v, base.d_in, base.d_out),
                    };
                    (v, m)
                }
                _ => unreachable!("LoRA/DoRA layers have a spec"),
            };
            out.push(Decomposed {
                d_in: base.d_in,
                d_out: base.d_out,
                direction: dir,
                magnitude,
            });
        }
        Ok(out)
    }
}

fn adapters<B: Backend>(p: &LayerParams<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    (
        p.a.as_ref().expect("adapted layers hold A").val(),
        p.b.as_ref().expect("adapted layers hold B").val(),
    )
}

/// One layer read as magnitude and direction (see [`Net::decompose`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposed {
    /// Rows of `direction`.
    pub d_in: usize,
    /// Columns (output features) `k`.
    pub d_out: usize,
    /// The matrix whose columns are the directions, `[d_in, d_out]` row-major.
    pub direction: Vec<f64>,
    /// `m_t [d_out]`.
    pub magnitude: Vec<f64>,
}

impl Decomposed {
    /// The paper's Sec. 3.2 statistics against the base layer `W0` (whose `m_0 = ‖W0‖_c`):
    /// `(ΔD, ΔM)` with `ΔM = Σ_n |m_t,n − m_0,n| / k` and
    /// `ΔD = Σ_n (1 − cos(dir_t[:, n], W0[:, n])) / k` over the `k = d_out` columns.
    pub fn deltas(&self, base: &LinearWeights) -> (f64, f64) {
        let (rows, k) = (self.d_in, self.d_out);
        let m0 = base.column_norms();
        let dn = column_norms(&self.direction, rows, k);
        let mut dd = 0.0;
        let mut dm = 0.0;
        for n in 0..k {
            let dot: f64 = (0..rows)
                .map(|i| self.direction[i * k + n] * base.w[i * k + n])
                .sum();
            let cos = dot / (dn[n] * m0[n]).max(1e-30);
            dd += 1.0 - cos;
            dm += (self.magnitude[n] - m0[n]).abs();
        }
        (dd / k as f64, dm / k as f64)
    }
}
