//! LoRA and DoRA linear layers on burn (arXiv 2402.09353): the base GEMM is the backend's own
//! matmul; the column norms, the low-rank term and the column scaling are fused around it.
//!
//! [`DoraBackend`] is implemented like the other ops of [`super`]: the cubecl kernels of
//! [`crate::dora`] on `CubeBackend`, the tensor-op composition on `Flex`, a handwritten backward on
//! `Autodiff<B, C>` and custom ops on `Fusion<B>`. Entry points:
//! - [`lora_linear`], [`dora_linear`] (the layers; [`NormGrad`] picks the detached gradient of
//!   Sec. 4.3 / Eq. 11 or the exact one of Eq. 6), [`dora_column_norms`], and
//!   [`dora_merge`] / [`dora_unmerge`], [`lora_merge`] / [`lora_unmerge`];
//! - [`lora_linear_composition`], [`dora_linear_peft`]: what a burn user writes without the
//!   kernels (PEFT's unfused forms), the benchmarks' baselines and the tests' oracles.
//!
//! Shapes (burn's `Linear` layout): `x [n, d_in]`, `W0 [d_in, d_out]`, `A [d_in, r]`,
//! `B [r, d_out]`, `m [d_out]`, output `[n, d_out]`; scaling `s = α / r`.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::Flex;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use super::{check_f32, float, prim};
use crate::KernelError;
use crate::dora::{self, AdapterSpec, Dims, NORM_EPS};

/// A backend with the fused pieces of the LoRA/DoRA layers.
///
/// # Shapes
/// - `dora_column_norms(W0 [d_in, d_out], A [d_in, r], B [r, d_out], s) → c [d_out]`,
///   `c_j = ‖(W0 + s A B)[:, j]‖` (no floor);
/// - `lora_epilogue(both [n, d_out + r], B, g: Option<[d_out]>, s) → [n, d_out]`,
///   `(base + s·xa·B) ⊙ g` (or without `⊙ g`), with `both = [base | xa]`;
/// - `dora_epilogue_backward(dy [n, d_out], both, B, g, s) → (dy ⊙ g [n, d_out], Σ_t dy ⊙ z
///   [d_out])`, `z = base + s·xa·B`;
/// - `adapted_forward(x [n, d_in], W0, A, B, g: Option<[d_out]>, s, keep_both) → (y [n, d_out],
///   both)`: `y = (x W0 + s·(x A)·B) ⊙ g`, and `both = x [W0 | A]` (what the backward reads)
///   when `keep_both` (it may also come without).
///
/// Callers validate first (the entry points of this module do): implementations may panic on
/// invalid input.
pub trait DoraBackend: Backend {
    /// Column norms of `W0 + s·A·B`.
    fn dora_column_norms(
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self>;

    /// The epilogue after the GEMM.
    fn lora_epilogue(
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
    ) -> FloatTensor<Self>;

    /// The scaled epilogue's backward with respect to the base output and `g`.
    fn dora_epilogue_backward(
        dy: FloatTensor<Self>,
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The whole adapted layer; by default [`gemm_then_epilogue`] (`both` always comes).
    fn adapted_forward(
        x: FloatTensor<Self>,
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
        keep_both: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let _ = keep_both;
        let (y, both) = gemm_then_epilogue::<Self>(x, w0, a, b, g, scale);
        (y, Some(both))
    }
}

/// [`DoraBackend::adapted_forward`] through the backend's GEMM: `both = x [W0 | A]`, then
/// [`DoraBackend::lora_epilogue`]. Returns `(y, both)`.
pub fn gemm_then_epilogue<B: DoraBackend>(
    x: FloatTensor<B>,
    w0: FloatTensor<B>,
    a: FloatTensor<B>,
    b: FloatTensor<B>,
    g: Option<FloatTensor<B>>,
    scale: f32,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let wa = Tensor::cat(vec![float::<B, 2>(w0), float(a)], 1);
    let both = float::<B, 2>(x).matmul(wa);
    let y = B::lora_epilogue(prim(both.clone()), b, g, scale);
    (y, prim(both))
}

/// The composition of tensor ops for the column norms (materialises `W0 + s A B`).
pub fn composition_column_norms<B: Backend>(
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scale: f32,
) -> Tensor<B, 1> {
    let [_, d_out] = w0.dims();
    (w0 + a.matmul(b).mul_scalar(scale))
        .powi_scalar(2)
        .sum_dim(0)
        .sqrt()
        .reshape([d_out])
}

/// `both [n, d_out + r]` split into `(base [n, d_out], xa [n, r])`.
fn split<B: Backend>(both: Tensor<B, 2>, d_out: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [n, len] = both.dims();
    (
        both.clone().slice([0..n, 0..d_out]),
        both.slice([0..n, d_out..len]),
    )
}

/// The composition of tensor ops for the epilogue `(base + s·xa·B) ⊙ g`.
pub fn composition_epilogue<B: Backend>(
    both: Tensor<B, 2>,
    b: Tensor<B, 2>,
    g: Option<Tensor<B, 1>>,
    scale: f32,
) -> Tensor<B, 2> {
    let [_, d_out] = b.dims();
    let (base, xa) = split(both, d_out);
    let z = base + xa.matmul(b).mul_scalar(scale);
    match g {
        Some(g) => z * g.reshape([1, d_out]),
        None => z,
    }
}

/// The composition of tensor ops for the epilogue's backward: `(dy ⊙ g, Σ_t dy ⊙ z)`.
pub fn composition_epilogue_backward<B: Backend>(
    dy: Tensor<B, 2>,
    both: Tensor<B, 2>,
    b: Tensor<B, 2>,
    g: Tensor<B, 1>,
    scale: f32,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let [d_out] = g.dims();
    let z = composition_epilogue(both, b, None, scale);
    let dg = (dy.clone() * z).sum_dim(0).reshape([d_out]);
    (dy * g.reshape([1, d_out]), dg)
}

impl DoraBackend for Flex {
    fn dora_column_norms(
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        prim(composition_column_norms::<Self>(
            float(w0),
            float(a),
            float(b),
            scale,
        ))
    }

    fn lora_epilogue(
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
    ) -> FloatTensor<Self> {
        prim(composition_epilogue::<Self>(
            float(both),
            float(b),
            g.map(float),
            scale,
        ))
    }

    fn dora_epilogue_backward(
        dy: FloatTensor<Self>,
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dbase, dg) = composition_epilogue_backward::<Self>(
            float(dy),
            float(both),
            float(b),
            float(g),
            scale,
        );
        (prim(dbase), prim(dg))
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> DoraBackend
    for CubeBackend<R, F, I, BT>
{
    fn dora_column_norms(
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let [w0, a, b] = [w0, a, b].map(contiguous_f32);
        let [d_in, d_out] = w0.shape().dims::<2>();
        let rank = a.shape()[1];
        let dims = Dims {
            rows: d_in,
            d_out,
            rank,
        };
        let out = dora::column_norms(
            &w0.client,
            dims,
            w0.handle.clone(),
            a.handle.clone(),
            b.handle.clone(),
            scale,
        );
        tensor_like(&w0, [d_out], out)
    }

    fn lora_epilogue(
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let [both, b] = [both, b].map(contiguous_f32);
        let g = g.map(contiguous_f32);
        let [rank, d_out] = b.shape().dims::<2>();
        let n = both.shape()[0];
        let dims = Dims {
            rows: n,
            d_out,
            rank,
        };
        let out = dora::epilogue(
            &both.client,
            dims,
            both.handle.clone(),
            b.handle.clone(),
            g.map(|g| g.handle.clone()),
            scale,
        );
        tensor_like(&both, [n, d_out], out)
    }

    fn dora_epilogue_backward(
        dy: FloatTensor<Self>,
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [dy, both, b, g] = [dy, both, b, g].map(contiguous_f32);
        let [rank, d_out] = b.shape().dims::<2>();
        let n = both.shape()[0];
        let dims = Dims {
            rows: n,
            d_out,
            rank,
        };
        let (dbase, dg) = dora::epilogue_backward(
            &both.client,
            dims,
            dy.handle.clone(),
            both.handle.clone(),
            b.handle.clone(),
            g.handle.clone(),
            scale,
        );
        (
            tensor_like(&both, [n, d_out], dbase),
            tensor_like(&both, [d_out], dg),
        )
    }

    /// [`dora::adapted_matmul`] on CPU-like devices ([`dora::fused_gemm`]), else the backend's
    /// GEMM and the epilogue.
    fn adapted_forward(
        x: FloatTensor<Self>,
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
        keep_both: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        if !dora::fused_gemm(&x.client) {
            let (y, both) = gemm_then_epilogue::<Self>(x, w0, a, b, g, scale);
            return (y, Some(both));
        }
        let [x, w0, a, b] = [x, w0, a, b].map(contiguous_f32);
        let g = g.map(contiguous_f32);
        let [n, d_in] = x.shape().dims::<2>();
        let [rank, d_out] = b.shape().dims::<2>();
        let dims = Dims {
            rows: n,
            d_out,
            rank,
        };
        let (y, both) = dora::adapted_matmul(
            &x.client,
            dims,
            d_in,
            x.handle.clone(),
            w0.handle.clone(),
            a.handle.clone(),
            b.handle.clone(),
            g.map(|g| g.handle.clone()),
            scale,
            keep_both,
        );
        (
            tensor_like(&x, [n, d_out], y),
            both.map(|both| tensor_like(&x, [n, d_out + rank], both)),
        )
    }
}

fn contiguous_f32<R: CubeRuntime>(t: CubeTensor<R>) -> CubeTensor<R> {
    check_f32("LoRA/DoRA operand", t.dtype).expect("the entry points validate the dtype");
    burn_cubecl::kernel::into_contiguous(t)
}

fn tensor_like<R: CubeRuntime, const D: usize>(
    like: &CubeTensor<R>,
    shape: [usize; D],
    handle: cubecl::server::Handle,
) -> CubeTensor<R> {
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::new(shape),
        handle,
        DType::F32,
    )
}

/// The exact gradient of the column norms: with `u = ∂L/∂c / max(c, ε)` and `V = W0 + s A B`,
/// `∂L/∂V = V ⊙ u` (column-wise), so `∂L/∂A = s (W0 ⊙ u) Bᵀ + s² A ((B ⊙ u) Bᵀ)` and
/// `∂L/∂B = s (Aᵀ W0) ⊙ u + s² (Aᵀ A)(B ⊙ u)`: GEMMs of size `d_in·d_out·r`, `V` never formed
/// (only `∂L/∂W0`, when `W0` is tracked, materialises it).
#[derive(Debug)]
struct NormsGrad;

impl<B: DoraBackend> Backward<B, 3> for NormsGrad {
    /// `(W0, A, B, c, s)`.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f32,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [p_w0, p_a, p_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (w0, a, b, c, s) = ops.state;
        let (w0, a, b) = (float::<B, 2>(w0), float::<B, 2>(a), float::<B, 2>(b));
        let c = float::<B, 1>(c);
        let [d_out] = c.dims();
        let u = (float::<B, 1>(grad) / c.clamp_min(NORM_EPS)).reshape([1, d_out]);
        if let Some(p) = p_w0 {
            let v = w0.clone() + a.clone().matmul(b.clone()).mul_scalar(s);
            grads.register::<B>(p.id, prim(v * u.clone()));
        }
        if let Some(p) = p_a {
            let bu = b.clone() * u.clone();
            let da = (w0.clone() * u.clone())
                .matmul(b.clone().transpose())
                .mul_scalar(s)
                + a.clone()
                    .matmul(bu.matmul(b.clone().transpose()))
                    .mul_scalar(s * s);
            grads.register::<B>(p.id, prim(da));
        }
        if let Some(p) = p_b {
            let at = a.clone().transpose();
            let db = at.clone().matmul(w0).mul_scalar(s) * u.clone()
                + at.matmul(a).matmul(b * u).mul_scalar(s * s);
            grads.register::<B>(p.id, prim(db));
        }
    }
}

/// What the epilogue's backward gives: `∂L/∂z [n, d_out]` (`dy ⊙ g`, or `dy`), `∂L/∂xa =
/// s ∂L/∂z Bᵀ [n, r]`, `∂L/∂B = s xaᵀ ∂L/∂z` (when asked) and `∂L/∂g` (scaled only).
struct EpilogueGrads<B: Backend> {
    dz: Tensor<B, 2>,
    dxa: Tensor<B, 2>,
    db: Option<Tensor<B, 2>>,
    dg: Option<FloatTensor<B>>,
}

fn epilogue_grads<B: DoraBackend>(
    dy: FloatTensor<B>,
    both: FloatTensor<B>,
    b: FloatTensor<B>,
    g: Option<FloatTensor<B>>,
    s: f32,
    want_b: bool,
) -> EpilogueGrads<B> {
    let (dz, dg) = match g {
        Some(g) => {
            let (dz, dg) = B::dora_epilogue_backward(dy, both.clone(), b.clone(), g, s);
            (float::<B, 2>(dz), Some(dg))
        }
        None => (float::<B, 2>(dy), None),
    };
    let b = float::<B, 2>(b);
    let [_, d_out] = b.dims();
    let dxa = dz.clone().matmul(b.transpose()).mul_scalar(s);
    let db = want_b.then(|| {
        let (_, xa) = split(float::<B, 2>(both), d_out);
        xa.transpose().matmul(dz.clone()).mul_scalar(s)
    });
    EpilogueGrads { dz, dxa, db, dg }
}

/// State of the layer's backward: `(x, W0, A, B, g, both, s)`.
type LayerState<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    Option<FloatTensor<B>>,
    FloatTensor<B>,
    f32,
);

/// The adapted layer's backward from the epilogue's: `∂L/∂A = xᵀ ∂L/∂xa`,
/// `∂L/∂x = [∂L/∂z | ∂L/∂xa] [W0 | A]ᵀ` (one GEMM), `∂L/∂W0 = xᵀ ∂L/∂z` (only when tracked).
fn layer_backward<B: DoraBackend>(
    state: LayerState<B>,
    dy: FloatTensor<B>,
    parents: [Option<NodeId>; 5],
    grads: &mut Gradients,
) {
    let (x, w0, a, b, g, both, s) = state;
    let [p_x, p_w0, p_a, p_b, p_g] = parents;
    let e = epilogue_grads::<B>(dy, both, b, g, s, p_b.is_some());
    let x = float::<B, 2>(x);
    if let Some(p) = p_x {
        let dboth = Tensor::cat(vec![e.dz.clone(), e.dxa.clone()], 1);
        let wa = Tensor::cat(vec![float::<B, 2>(w0), float(a)], 1);
        grads.register::<B>(p, prim(dboth.matmul(wa.transpose())));
    }
    if let Some(p) = p_w0 {
        grads.register::<B>(p, prim(x.clone().transpose().matmul(e.dz)));
    }
    if let Some(p) = p_a {
        grads.register::<B>(p, prim(x.transpose().matmul(e.dxa)));
    }
    if let (Some(p), Some(d)) = (p_b, e.db) {
        grads.register::<B>(p, prim(d));
    }
    if let (Some(p), Some(d)) = (p_g, e.dg) {
        grads.register::<B>(p, d);
    }
}

/// DoRA's layer backward (parents `x, W0, A, B, g`).
#[derive(Debug)]
struct DoraLayerGrad;

impl<B: DoraBackend> Backward<B, 5> for DoraLayerGrad {
    type State = LayerState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 5>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let parents = ops.parents.map(|p| p.map(|p| p.id));
        layer_backward::<B>(ops.state, dy, parents, grads);
    }
}

/// LoRA's layer backward (parents `x, W0, A, B`).
#[derive(Debug)]
struct LoraLayerGrad;

impl<B: DoraBackend> Backward<B, 4> for LoraLayerGrad {
    type State = LayerState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let [x, w0, a, b] = ops.parents.map(|p| p.map(|p| p.id));
        layer_backward::<B>(ops.state, dy, [x, w0, a, b, None], grads);
    }
}

/// The epilogue's own backward (parents `both, B, g`), for merges under autodiff:
/// `∂L/∂both = [∂L/∂z | ∂L/∂xa]`.
#[derive(Debug)]
struct EpilogueGrad;

impl<B: DoraBackend> Backward<B, 3> for EpilogueGrad {
    /// `(both, B, g, s)`.
    type State = (FloatTensor<B>, FloatTensor<B>, Option<FloatTensor<B>>, f32);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let [p_both, p_b, p_g] = ops.parents;
        let (both, b, g, s) = ops.state;
        let e = epilogue_grads::<B>(dy, both, b, g, s, p_b.is_some());
        if let Some(p) = p_both {
            grads.register::<B>(p.id, prim(Tensor::cat(vec![e.dz, e.dxa], 1)));
        }
        if let (Some(p), Some(d)) = (p_b, e.db) {
            grads.register::<B>(p.id, prim(d));
        }
        if let (Some(p), Some(d)) = (p_g, e.dg) {
            grads.register::<B>(p.id, d);
        }
    }
}

impl<B: DoraBackend, C: CheckpointStrategy> DoraBackend for Autodiff<B, C> {
    fn dora_column_norms(
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let out = B::dora_column_norms(
            w0.primitive.clone(),
            a.primitive.clone(),
            b.primitive.clone(),
            scale,
        );
        match NormsGrad
            .prepare::<C>([w0.node.clone(), a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (w0.primitive, a.primitive, b.primitive, out.clone(), scale),
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn lora_epilogue(
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let out = B::lora_epilogue(
            both.primitive.clone(),
            b.primitive.clone(),
            g.as_ref().map(|g| g.primitive.clone()),
            scale,
        );
        // Untracked parents stand in for a missing g (LoRA).
        let g_node = g
            .as_ref()
            .map_or_else(|| b.node.clone(), |g| g.node.clone());
        let prep = EpilogueGrad
            .prepare::<C>([both.node.clone(), b.node.clone(), g_node])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                (both.primitive, b.primitive, g.map(|g| g.primitive), scale),
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn dora_epilogue_backward(
        dy: FloatTensor<Self>,
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Not differentiated twice: computed on the inner backend, untracked.
        let (dbase, dg) = B::dora_epilogue_backward(
            dy.primitive,
            both.primitive,
            b.primitive,
            g.primitive,
            scale,
        );
        (
            <Self as AutodiffBackend>::from_inner(dbase),
            <Self as AutodiffBackend>::from_inner(dg),
        )
    }

    fn adapted_forward(
        x: FloatTensor<Self>,
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
        keep_both: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let nodes = [
            x.node.clone(),
            w0.node.clone(),
            a.node.clone(),
            b.node.clone(),
        ];
        // The backward reads `both`: ask for it when any input is tracked.
        let tracked = nodes
            .iter()
            .chain(g.as_ref().map(|g| &g.node))
            .any(|n| !n.requirement.is_none());
        let forward = |keep| {
            B::adapted_forward(
                x.primitive.clone(),
                w0.primitive.clone(),
                a.primitive.clone(),
                b.primitive.clone(),
                g.as_ref().map(|g| g.primitive.clone()),
                scale,
                keep,
            )
        };
        let (y, both) = forward(tracked || keep_both);
        let both_out = both.clone().map(<Self as AutodiffBackend>::from_inner);
        let state = |g: Option<FloatTensor<B>>| {
            // Tracked without `both` (no input looked tracked): run the forward again for it.
            let both = both
                .clone()
                .or_else(|| forward(true).1)
                .expect("adapted_forward returns both when asked");
            (
                x.primitive.clone(),
                w0.primitive.clone(),
                a.primitive.clone(),
                b.primitive.clone(),
                g,
                both,
                scale,
            )
        };
        let y = match &g {
            Some(g) => {
                let [nx, nw, na, nb] = nodes;
                match DoraLayerGrad
                    .prepare::<C>([nx, nw, na, nb, g.node.clone()])
                    .compute_bound()
                    .stateful()
                {
                    OpsKind::Tracked(prep) => prep.finish(state(Some(g.primitive.clone())), y),
                    OpsKind::UnTracked(prep) => prep.finish(y),
                }
            }
            None => match LoraLayerGrad.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish(state(None), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            },
        };
        (y, both_out)
    }
}

mod fusion {
    use super::DoraBackend;
    use burn::tensor::ops::FloatTensor;
    use burn::tensor::{DType, Shape};
    use burn_fusion::stream::{Operation, OperationStreams};
    use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
    use std::marker::PhantomData;

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Norms,
        Lora,
        Dora,
        DoraBackward,
        /// The layer; `keep`: `both` is a second output.
        LoraLayer {
            keep: bool,
        },
        DoraLayer {
            keep: bool,
        },
    }

    #[derive(Clone, Debug)]
    struct DoraOp<B> {
        desc: CustomOpIr,
        kind: Kind,
        scale: f32,
        _b: PhantomData<B>,
    }

    impl<B: FusionBackend + DoraBackend> Operation<B::FusionRuntime> for DoraOp<B> {
        fn execute(
            &self,
            handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let mut inputs = self
                .desc
                .inputs
                .iter()
                .map(|t| handles.get_float_tensor::<B>(t));
            let mut next = || inputs.next().expect("registered inputs");
            let s = self.scale;
            let outs: Vec<FloatTensor<B>> = match self.kind {
                Kind::Norms => vec![B::dora_column_norms(next(), next(), next(), s)],
                Kind::Lora => vec![B::lora_epilogue(next(), next(), None, s)],
                Kind::Dora => vec![B::lora_epilogue(next(), next(), Some(next()), s)],
                Kind::DoraBackward => {
                    let (d, g) = B::dora_epilogue_backward(next(), next(), next(), next(), s);
                    vec![d, g]
                }
                Kind::LoraLayer { keep } => {
                    let (y, both) =
                        B::adapted_forward(next(), next(), next(), next(), None, s, keep);
                    [Some(y), both].into_iter().flatten().collect()
                }
                Kind::DoraLayer { keep } => {
                    let g = Some(next());
                    let (y, both) = B::adapted_forward(next(), next(), next(), next(), g, s, keep);
                    [Some(y), both].into_iter().flatten().collect()
                }
            };
            for (ir, t) in self.desc.outputs.iter().zip(outs) {
                handles.register_float_tensor::<B>(&ir.id, t);
            }
        }
    }

    fn register<B: FusionBackend + DoraBackend>(
        kind: Kind,
        name: &str,
        inputs: Vec<FloatTensor<Fusion<B>>>,
        out_shapes: &[Vec<usize>],
        scale: f32,
    ) -> Vec<FloatTensor<Fusion<B>>> {
        let client = inputs[0].client.clone();
        let streams = OperationStreams::with_inputs(inputs.iter());
        let outputs: Vec<TensorIr> = out_shapes
            .iter()
            .map(|s| {
                TensorIr::uninit(
                    client.create_empty_handle(),
                    Shape::from(s.clone()),
                    DType::F32,
                )
            })
            .collect();
        // The id names the scale, so ops that differ only in it are never merged.
        let desc = CustomOpIr {
            id: format!("{name}[{scale}]"),
            inputs: inputs.into_iter().map(|t| t.into_ir()).collect(),
            outputs,
        };
        client
            .register(
                streams,
                OperationIr::Custom(desc.clone()),
                DoraOp::<B> {
                    desc,
                    kind,
                    scale,
                    _b: PhantomData,
                },
            )
            .into_iter()
            .collect()
    }

    impl<B: FusionBackend + DoraBackend> DoraBackend for Fusion<B> {
        fn dora_column_norms(
            w0: FloatTensor<Self>,
            a: FloatTensor<Self>,
            b: FloatTensor<Self>,
            scale: f32,
        ) -> FloatTensor<Self> {
            let d_out = w0.shape[1];
            let mut out = register::<B>(
                Kind::Norms,
                "dora_column_norms",
                vec![w0, a, b],
                &[vec![d_out]],
                scale,
            );
            out.remove(0)
        }

        fn lora_epilogue(
            both: FloatTensor<Self>,
            b: FloatTensor<Self>,
            g: Option<FloatTensor<Self>>,
            scale: f32,
        ) -> FloatTensor<Self> {
            let shape = vec![both.shape[0], b.shape[1]];
            let mut out = match g {
                Some(g) => register::<B>(
                    Kind::Dora,
                    "dora_epilogue",
                    vec![both, b, g],
                    &[shape],
                    scale,
                ),
                None => register::<B>(Kind::Lora, "lora_epilogue", vec![both, b], &[shape], scale),
            };
            out.remove(0)
        }

        fn dora_epilogue_backward(
            dy: FloatTensor<Self>,
            both: FloatTensor<Self>,
            b: FloatTensor<Self>,
            g: FloatTensor<Self>,
            scale: f32,
        ) -> (FloatTensor<Self>, FloatTensor<Self>) {
            let [n, d_out] = dy.shape.dims::<2>();
            let mut out = register::<B>(
                Kind::DoraBackward,
                "dora_epilogue_backward",
                vec![dy, both, b, g],
                &[vec![n, d_out], vec![d_out]],
                scale,
            );
            let dg = out.pop().expect("two outputs");
            (out.pop().expect("two outputs"), dg)
        }

        fn adapted_forward(
            x: FloatTensor<Self>,
            w0: FloatTensor<Self>,
            a: FloatTensor<Self>,
            b: FloatTensor<Self>,
            g: Option<FloatTensor<Self>>,
            scale: f32,
            keep_both: bool,
        ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
            let n = x.shape[0];
            let [rank, d_out] = b.shape.dims::<2>();
            let keep = keep_both;
            let shapes = [vec![n, d_out], vec![n, d_out + rank]];
            let shapes = &shapes[..if keep { 2 } else { 1 }];
            let mut out = match g {
                // g first: the op reads its inputs in order.
                Some(g) => register::<B>(
                    Kind::DoraLayer { keep },
                    if keep {
                        "dora_layer+both"
                    } else {
                        "dora_layer"
                    },
                    vec![g, x, w0, a, b],
                    shapes,
                    scale,
                ),
                None => register::<B>(
                    Kind::LoraLayer { keep },
                    if keep {
                        "lora_layer+both"
                    } else {
                        "lora_layer"
                    },
                    vec![x, w0, a, b],
                    shapes,
                    scale,
                ),
            };
            let both = keep.then(|| out.pop().expect("two outputs"));
            (out.pop().expect("an output"), both)
        }
    }
}

/// Which gradient DoRA's column norm gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormGrad {
    /// Treat `‖V‖_c` as a constant (Sec. 4.3, Eq. 11): `∇_V L = (m / C) ∇_{W'} L`. The paper's
    /// choice for every experiment; no gradient flows through the norm.
    #[default]
    Detached,
    /// The exact gradient through the norm (Eq. 6).
    Exact,
}

fn spec_check<B: Backend>(
    spec: &AdapterSpec,
    x: Option<&Tensor<B, 2>>,
    w0: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    b: &Tensor<B, 2>,
    m: Option<&Tensor<B, 1>>,
) -> Result<(), KernelError> {
    spec.check_shapes(
        x.map(|x| x.dims()),
        w0.dims(),
        a.dims(),
        b.dims(),
        m.map(|m| m.dims()),
    )?;
    for (what, dtype) in [
        ("base weight W0", Some(w0.dtype())),
        ("adapter A", Some(a.dtype())),
        ("adapter B", Some(b.dtype())),
        ("input x", x.map(|x| x.dtype())),
        ("magnitude m", m.map(|m| m.dtype())),
    ] {
        if let Some(dtype) = dtype {
            check_f32(what, dtype)?;
        }
    }
    Ok(())
}

/// The fused LoRA layer `y = x W0 + s (x A) B` (`s = spec.scale()`): two backend GEMMs (`x W0`,
/// `x A`) and one epilogue; `A B` is never formed. Checks shapes and dtypes against `spec`
/// (dimensions only: no device read).
pub fn lora_linear<B: DoraBackend>(
    spec: &AdapterSpec,
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, Some(&x), &w0, &a, &b, None)?;
    let (y, _) = B::adapted_forward(
        prim(x),
        prim(w0),
        prim(a),
        prim(b),
        None,
        spec.scale(),
        false,
    );
    Ok(float(y))
}

/// `t` cut from the autodiff graph and not requiring a gradient: what the detached norm (Eq. 11)
/// reads. `detach` alone keeps a leaf's `require_grad` (burn 0.21), so an op on detached
/// parameters stays tracked: the norms' backward then computed the exact gradient for fresh
/// leaves nobody reads, 20–25 ms of a 0.5 s training step at the benchmark shape on lavapipe.
pub fn untracked<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    t.detach().set_require_grad(false)
}

/// The DoRA gain `g = m / max(c, ε)` `[d_out]`.
pub fn dora_gain<B: Backend>(m: Tensor<B, 1>, norms: Tensor<B, 1>) -> Tensor<B, 1> {
    m / norms.clamp_min(NORM_EPS)
}

/// Column norms `c [d_out]` of `V = W0 + s A B`, fused (no floor): differentiable with respect
/// to `W0`, `A`, `B` (the exact gradient; detach the inputs for the detached one).
pub fn dora_column_norms<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 1>, KernelError> {
    spec_check(spec, None, &w0, &a, &b, None)?;
    Ok(float(B::dora_column_norms(
        prim(w0),
        prim(a),
        prim(b),
        spec.scale(),
    )))
}

/// The fused DoRA layer `y = (x W0 + s (x A) B) ⊙ m / max(‖W0 + s A B‖_c, ε)` (Eq. 5): the
/// backend's GEMMs for `x W0` and `x A`, one fused pass for the column norms (over `W0`, with
/// `(A B)[i, j]` recomputed, never stored), one epilogue. `norm` picks the detached (Eq. 11) or
/// exact (Eq. 6) gradient; `∂L/∂m` is Eq. 7 either way.
#[allow(clippy::too_many_arguments)]
pub fn dora_linear<B: DoraBackend>(
    spec: &AdapterSpec,
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    norm: NormGrad,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, Some(&x), &w0, &a, &b, Some(&m))?;
    let s = spec.scale();
    let norms = match norm {
        NormGrad::Detached => B::dora_column_norms(
            prim(untracked(w0.clone())),
            prim(untracked(a.clone())),
            prim(untracked(b.clone())),
            s,
        ),
        NormGrad::Exact => {
            B::dora_column_norms(prim(w0.clone()), prim(a.clone()), prim(b.clone()), s)
        }
    };
    let g = dora_gain(m, float(norms));
    let (y, _) = B::adapted_forward(prim(x), prim(w0), prim(a), prim(b), Some(prim(g)), s, false);
    Ok(float(y))
}

/// Merges a DoRA adapter into one weight: `(W' [d_in, d_out], c [d_out])` with
/// `W' = (W0 + s A B) ⊙ m / max(c, ε)` (one fused pass after the norms); keep `c` to unmerge.
pub fn dora_merge<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
) -> Result<(Tensor<B, 2>, Tensor<B, 1>), KernelError> {
    spec_check(spec, None, &w0, &a, &b, Some(&m))?;
    let s = spec.scale();
    let norms: Tensor<B, 1> = float(B::dora_column_norms(
        prim(w0.clone()),
        prim(a.clone()),
        prim(b.clone()),
        s,
    ));
    let g = dora_gain(m, norms.clone());
    let both = Tensor::cat(vec![w0, a], 1);
    let merged = float(B::lora_epilogue(prim(both), prim(b), Some(prim(g)), s));
    Ok((merged, norms))
}

/// Recovers `W0 = W' ⊙ max(c, ε) / m − s A B` from a merged weight and the norms [`dora_merge`]
/// returned. Fails on a zero magnitude (the column's direction is lost).
pub fn dora_unmerge<B: DoraBackend>(
    spec: &AdapterSpec,
    merged: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    norms: Tensor<B, 1>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &merged, &a, &b, Some(&m))?;
    let host: Vec<f32> = m.to_data().convert::<f32>().to_vec().expect("f32");
    if let Some(j) = host.iter().position(|&v| v == 0.0 || !v.is_finite()) {
        return Err(KernelError::InvalidSetting {
            what: "DoRA magnitude to unmerge",
            value: format!("{} at column {j}", host[j]),
            expected: "non-zero finite magnitudes (a zero column cannot be unmerged)",
        });
    }
    let [d_out] = norms.dims();
    let undo = (norms.clamp_min(NORM_EPS) / m).reshape([1, d_out]);
    let both = Tensor::cat(vec![merged * undo, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        -spec.scale(),
    )))
}

/// Merges a LoRA adapter: `W0 + s A B` (one fused pass).
pub fn lora_merge<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &w0, &a, &b, None)?;
    let both = Tensor::cat(vec![w0, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        spec.scale(),
    )))
}

/// Undoes [`lora_merge`]: `W' − s A B`.
pub fn lora_unmerge<B: DoraBackend>(
    spec: &AdapterSpec,
    merged: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &merged, &a, &b, None)?;
    let both = Tensor::cat(vec![merged, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        -spec.scale(),
    )))
}

/// LoRA as a burn user writes it: `x W0 + ((x A) B) · s`, differentiated by burn's autodiff.
pub fn lora_linear_composition<B: Backend>(
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scale: f32,
) -> Tensor<B, 2> {
    x.clone().matmul(w0) + x.matmul(a).matmul(b).mul_scalar(scale)
}

/// DoRA as PEFT computes it, in burn ops (`peft/tuners/lora/dora.py`, transposed to burn's
/// layout): `W = W0 + s A B` materialised, `c = ‖W‖_c` (detached or not), `g = m / max(c, ε)`,
/// `y = base + (g − 1) ⊙ base + g ⊙ s (x A) B` with `base = x W0`. The unfused baseline and the
/// oracle of the fused path.
pub fn dora_linear_peft<B: Backend>(
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    scale: f32,
    norm: NormGrad,
) -> Tensor<B, 2> {
    let [_, d_out] = w0.dims();
    let weight = w0.clone() + a.clone().matmul(b.clone()).mul_scalar(scale);
    let mut c = weight.powi_scalar(2).sum_dim(0).sqrt();
    if norm == NormGrad::Detached {
        c = c.detach();
    }
    let g = (m.reshape([1, d_out]) / c.clamp_min(NORM_EPS)).reshape([1, d_out]);
    let base = x.clone().matmul(w0);
    let lora = x.matmul(a).matmul(b).mul_scalar(scale);
    base.clone() + (g.clone() - 1.0) * base + g * lora
}
