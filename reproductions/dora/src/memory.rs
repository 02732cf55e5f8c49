//! Training memory with the exact and the detached column norm (DoRA Sec. 4.3: treating
//! `‖V + ΔV‖_c` as a constant cuts training memory, −24.4% on LLaMA-7B, at nearly the same
//! accuracy).
//!
//! # What is measured
//!
//! [`norm_memory`] builds a stack of [`MemoryShape::layers`] DoRA layers on
//! `Autodiff<Flex>` and measures, with the counting global allocator
//! ([`claimbench_paper::alloc::measure_peak`]), the peak heap bytes added by one training step:
//! the forward pass through the stack on `tokens` rows, the loss `mean(y²)`, `backward()`, and a
//! check that `A`, `B` and `m` of every layer got a gradient (the gradients are dropped inside
//! the measured region). Everything that exists before the step (the frozen `W0`, the input `x`,
//! the trainable `A`, `B`, `m`) is created outside it and is not counted. Units: bytes of heap
//! allocations (requested sizes), all threads. The step is measured once with
//! [`NormGrad::Exact`] and once with [`NormGrad::Detached`], each after an unmeasured warm-up
//! step of the same mode (first-use allocations: rayon's pool, gemm's per-thread packing slab,
//! the autodiff graph registry's tables).
//!
//! The layer is [`dora_linear_peft`], DoRA as PEFT writes it in tensor ops and burn's autodiff
//! differentiates it, the setting of the paper's claim (PEFT on PyTorch autograd). The fused
//! `dora_linear` of `claimbench-kernels` is not measured: its backward is handwritten, so what it
//! keeps for the backward pass is fixed by construction rather than by the autodiff graph, and
//! the claim is about what an autodiff framework has to keep.
//!
//! # Flex and the count
//!
//! Read in burn-flex 0.21.0 and burn-autodiff 0.21.0: Flex has no memory pool. A tensor's
//! storage is an `Arc<Bytes>` allocated through the global allocator and freed when the last
//! reference drops; elementwise ops reuse a uniquely owned input in place (so the count is
//! lower than one buffer per op). Flex runs large GEMMs (`m·n·k ≥ 192³`) and large reductions on
//! rayon's global pool; those allocations (gemm's packing buffers) are made on the worker
//! threads and are counted, because the counter is process-wide. gemm keeps one per-thread
//! packing slab (`L2_SLAB`, the L2 cache size) that lives as long as the thread: the warm-up
//! step allocates it. The autodiff graph is a process-wide registry; a step's saved tensors are
//! freed when backward has consumed it or, for steps backward never reaches, in the cleanup at
//! the end of `backward()`.
//!
//! Two consequences, measured:
//!
//! - Repeated calls agree to within about 2 KiB, not to the byte (e.g. 22 123 936 or
//!   22 124 208 bytes): the registry's hash tables (`std` and `hashbrown` maps with per-process
//!   random hashers) resize at points that depend on where the node ids hash, with one rayon
//!   thread as with two.
//! - [`NormGrad::Detached`] in [`dora_linear_peft`] builds `c` from untracked `W0`, `A`, `B`
//!   (`claimbench_kernels::burn_ops::untracked`), as PEFT builds it from
//!   `lora_weight.detach()`: the graph keeps no `W' = W0 + s A B` for it. An earlier version
//!   detached only `c`, after computing it from the tracked `A`, `B`; `powi` then saved `W'`
//!   (`d_in·d_out` f32 per layer) until the end of `backward()` in both modes, and the saving
//!   at the default shape was 0.238 instead of 0.477 (only the exact norm's backward
//!   temporaries differed).
//!
//! # Measured (2 shared CPU cores, release build, `tests/memory.rs`)
//!
//! | d | rank | tokens | layers | exact bytes | detached bytes | saving |
//! |---|---|---|---|---|---|---|
//! | 1024 | 8 | 256 | 2 (default) | 22 124 208 | 11 572 740 | 0.477 |
//! | 512 | 8 | 64 | 2 | 5 434 784 | 2 518 532 | 0.537 |
//! | 512 | 8 | 1024 | 2 | 18 985 420 | 16 889 908 | 0.110 |
//! | 256 | 4 | 64 | 3 | 1 957 624 | 963 516 | 0.508 |
//!
//! The saving shrinks as the activations (`tokens × d`) outgrow the weights (`d × d`): the
//! paper's 24.4% on LLaMA-7B sits between these shapes. Seeds agree to within the hash-table
//! noise above: the bytes do not depend on the values. One training step at the default shape
//! takes 30–40 ms; a [`norm_memory`] call (weights, two warm-up and two measured steps) 0.2 s.
//!
//! The count is process-wide: nothing else may run while [`norm_memory`] measures (the harness
//! runs units one at a time; tests serialise theirs).

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use claimbench_kernels::burn_ops::{NormGrad, dora_linear_peft};
use claimbench_paper::alloc;
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::layer::{normal, stream};

type T = Autodiff<Flex>;

/// The adapter scale `s = α / r` with `α = 2r` (the paper's LLaMA settings, e.g. `r = 32`,
/// `α = 64`). It does not change what is allocated.
const SCALE: f32 = 2.0;
/// The standard deviation of `B`'s entries: small but nonzero, so the adapter path and its
/// gradients are not trivially zero.
const B_SD: f64 = 0.01;
/// The random-stream tag of the input; layer `l` uses `TAG + 1 + l`.
const TAG: u64 = 0x6d65_6d6f_7279_0000;

/// The network whose training step [`norm_memory`] measures: `layers` DoRA layers
/// `d_in → d_out` of rank `rank` applied in sequence to `tokens` rows (so `d_in == d_out` when
/// `layers > 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryShape {
    /// Input features, `1..=4096`.
    pub d_in: usize,
    /// Output features, `1..=4096`.
    pub d_out: usize,
    /// Adapter rank, `1..=min(d_in, d_out)`.
    pub rank: usize,
    /// Rows of the input, `1..=65536`.
    pub tokens: usize,
    /// Layers, `1..=64`.
    pub layers: usize,
}

impl Default for MemoryShape {
    /// `d 1024 → 1024`, rank 8, 256 tokens, 2 layers.
    fn default() -> Self {
        MemoryShape {
            d_in: 1024,
            d_out: 1024,
            rank: 8,
            tokens: 256,
            layers: 2,
        }
    }
}

impl MemoryShape {
    /// The largest `d_in`, `d_out`.
    pub const MAX_WIDTH: usize = 4096;
    /// The largest `tokens`.
    pub const MAX_TOKENS: usize = 65536;
    /// The largest `layers`.
    pub const MAX_LAYERS: usize = 64;
    /// The largest [`MemoryShape::tensor_bytes`]: 1 GiB.
    pub const MAX_BYTES: u64 = 1 << 30;

    /// The f32 bytes of the tensors the step starts from and produces in the forward pass:
    /// per layer `W0`, `A`, `B`, `m`, plus the input and every layer's output,
    /// `4 · (layers · (d_in·d_out + r·(d_in + d_out) + d_out) + tokens · (d_in + layers · d_out))`.
    /// The measured peak is a small multiple of it.
    pub fn tensor_bytes(&self) -> u64 {
        let [d_in, d_out, r, n, l] =
            [self.d_in, self.d_out, self.rank, self.tokens, self.layers].map(|v| v as u64);
        let weights = d_in * d_out + r * (d_in + d_out) + d_out;
        4 * (l * weights + n * (d_in + l * d_out))
    }

    /// Checks every size is in range (see the fields), `d_in == d_out` when `layers > 1`, and
    /// [`MemoryShape::tensor_bytes`] ≤ 1 GiB. The error names the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, value: String, rule: String| Error::Config {
            name: format!("memory.{name}"),
            value,
            rule,
        };
        for (name, value, max) in [
            ("d_in", self.d_in, Self::MAX_WIDTH),
            ("d_out", self.d_out, Self::MAX_WIDTH),
            ("tokens", self.tokens, Self::MAX_TOKENS),
            ("layers", self.layers, Self::MAX_LAYERS),
        ] {
            if !(1..=max).contains(&value) {
                return Err(bad(
                    name,
                    value.to_string(),
                    format!("must be in 1..={max}"),
                ));
            }
        }
        let max_rank = self.d_in.min(self.d_out);
        if !(1..=max_rank).contains(&self.rank) {
            return Err(bad(
                "rank",
                self.rank.to_string(),
                format!("must be in 1..=min(d_in, d_out) = {max_rank}"),
            ));
        }
        if self.layers > 1 && self.d_in != self.d_out {
            return Err(bad(
                "d_out",
                self.d_out.to_string(),
                format!(
                    "must equal d_in = {} when layers = {} > 1 (the layers are stacked)",
                    self.d_in, self.layers
                ),
            ));
        }
        let bytes = self.tensor_bytes();
        if bytes > Self::MAX_BYTES {
            return Err(bad(
                "(d_in, d_out, rank, tokens, layers)",
                format!(
                    "({}, {}, {}, {}, {})",
                    self.d_in, self.d_out, self.rank, self.tokens, self.layers
                ),
                format!("weights and activations take {bytes} bytes of f32, more than 1 GiB"),
            ));
        }
        Ok(())
    }
}

/// The peak heap bytes of one training step with each column-norm gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormMemory {
    /// With [`NormGrad::Exact`] (the gradient through `‖V + ΔV‖_c`), bytes.
    pub exact_bytes: u64,
    /// With [`NormGrad::Detached`] (the norm a constant, Sec. 4.3), bytes.
    pub detached_bytes: u64,
}

impl NormMemory {
    /// The fraction of the exact step's peak the detached norm saves, `1 − detached / exact`
    /// (the paper: 0.244 on LLaMA-7B); negative if detaching costs memory.
    pub fn saving(&self) -> f64 {
        1.0 - self.detached_bytes as f64 / self.exact_bytes as f64
    }
}

/// One layer's tensors: `W0 [d_in, d_out]` plain, `A [d_in, r]`, `B [r, d_out]`, `m [d_out]`
/// requiring gradients.
struct Layer {
    w0: Tensor<T, 2>,
    a: Tensor<T, 2>,
    b: Tensor<T, 2>,
    m: Tensor<T, 1>,
}

fn gaussian(len: usize, sd: f64, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| (sd * normal(rng)) as f32).collect()
}

fn tensor2(
    v: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &burn::tensor::Device<T>,
) -> Tensor<T, 2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// Layer `l` from its own seeded stream: `W0 ~ N(0, 1/d_in)`, `A ~ U(±1/√d_in)` (Kaiming
/// uniform), `B ~ N(0, B_SD²)`, `m = ‖W0 + s A B‖_c` (computed before `A`, `B` are tracked).
fn layer(shape: &MemoryShape, l: usize, seed: u64, device: &burn::tensor::Device<T>) -> Layer {
    let MemoryShape {
        d_in, d_out, rank, ..
    } = *shape;
    let mut rng = stream(seed, TAG + 1 + l as u64);
    let w0 = gaussian(d_in * d_out, 1.0 / (d_in as f64).sqrt(), &mut rng);
    let bound = 1.0 / (d_in as f32).sqrt();
    let a = (0..d_in * rank)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let b = gaussian(rank * d_out, B_SD, &mut rng);
    let (w0, a, b) = (
        tensor2(w0, d_in, d_out, device),
        tensor2(a, d_in, rank, device),
        tensor2(b, rank, d_out, device),
    );
    let m = (w0.clone() + a.clone().matmul(b.clone()).mul_scalar(SCALE))
        .powi_scalar(2)
        .sum_dim(0)
        .sqrt()
        .reshape([d_out]);
    Layer {
        w0,
        a: a.require_grad(),
        b: b.require_grad(),
        m: m.require_grad(),
    }
}

/// One training step: forward through the stack, `mean(y²)`, backward; checks every trainable
/// tensor got a gradient and drops the gradients.
fn train_step(layers: &[Layer], x: &Tensor<T, 2>, norm: NormGrad) -> Result<(), Error> {
    let mut h = x.clone();
    for l in layers {
        h = dora_linear_peft(
            h,
            l.w0.clone(),
            l.a.clone(),
            l.b.clone(),
            l.m.clone(),
            SCALE,
            norm,
        );
    }
    let grads = h.powi_scalar(2).mean().backward();
    for (i, l) in layers.iter().enumerate() {
        for (name, has) in [
            ("A", l.a.grad(&grads).is_some()),
            ("B", l.b.grad(&grads).is_some()),
            ("m", l.m.grad(&grads).is_some()),
        ] {
            if !has {
                return Err(Error::Memory(format!(
                    "layer {i}: backward ({norm:?} norm) left {name} without a gradient"
                )));
            }
        }
    }
    Ok(())
}

/// The peak heap bytes of one training step of `shape` (seeded weights and input from `seed`)
/// with the exact and the detached column norm; see the module docs for what is counted.
/// Repeatable to within about 2 KiB (hash-table noise, see the module docs) in a process that
/// runs nothing else meanwhile.
///
/// Errors: [`Error::Config`] for an invalid shape ([`MemoryShape::validate`]);
/// [`Error::Memory`] when the binary does not install
/// [`claimbench_paper::alloc::CountingAlloc`] as its global allocator.
pub fn norm_memory(shape: &MemoryShape, seed: u64) -> Result<NormMemory, Error> {
    shape.validate()?;
    if !alloc::installed() {
        return Err(Error::Memory(alloc::NotInstalled.to_string()));
    }
    let device = Default::default();
    let layers: Vec<Layer> = (0..shape.layers)
        .map(|l| layer(shape, l, seed, &device))
        .collect();
    let mut rng = stream(seed, TAG);
    let x = tensor2(
        gaussian(shape.tokens * shape.d_in, 1.0, &mut rng),
        shape.tokens,
        shape.d_in,
        &device,
    );
    let peak = |norm: NormGrad| -> Result<u64, Error> {
        train_step(&layers, &x, norm)?;
        let (step, bytes) = alloc::measure_peak(|| train_step(&layers, &x, norm))
            .map_err(|e| Error::Memory(e.to_string()))?;
        step?;
        Ok(bytes)
    };
    Ok(NormMemory {
        exact_bytes: peak(NormGrad::Exact)?,
        detached_bytes: peak(NormGrad::Detached)?,
    })
}
