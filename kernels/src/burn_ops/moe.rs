//! The sparse MoE layer of Mixtral (arXiv 2401.04088, Sec. 2.1) on burn.
//!
//! `y = Σ_{i ∈ top-k} G(x)_i · SwiGLU_i(x)`, `G(x) = Softmax(TopK(x·W_g))`. [`MoeBackend`] splits
//! it in two ops: the router (softmax, top-k, renormalised weights) and the experts (dispatch,
//! grouped SwiGLU, combine). Entry points:
//! - [`moe_layer`]: the layer (router GEMM by the backend, then the two ops);
//! - [`moe_layer_loop`]: what a PyTorch user writes (HF `MixtralSparseMoeBlock`: per expert, select
//!   its tokens, SwiGLU, index-add back), in burn ops: the benchmark baseline and test oracle;
//! - [`dense_swiglu`]: the dense SwiGLU FFN (the equal-active-parameters baseline).
//!
//! Shapes: `x [n, d]`, router `[d, E]`, `w13 [E, d, 2h]` (`W1 | W3`), `w2 [E, h, d]`; see
//! [`crate::moe`].

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::Flex;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, IndexingUpdateOp, Int, Shape, Tensor, TensorData, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use burn_fusion::{Fusion, FusionBackend};

use super::custom::{Prim, Tracked, Vjp, f32_out, fused, fused_n, fused1, op_id};
use super::{check_f32, float, prim};
use crate::KernelError;
use crate::moe::{self, MoeDims, MoeSpec};

/// What [`MoeBackend::moe_experts_saved`] keeps for the backward: the routing ids and, on kernel
/// backends, the forward's intermediates (`hpre [m, 2h]`, `act [m, h]`, `out [m, d]`) and the
/// dispatch (`offsets [E + 1]`, `assign [m]`, `inverse [m]`, u32).
#[derive(Debug, Clone)]
pub struct MoeState<B: Backend> {
    /// The routing ids `[n, k]`.
    pub ids: IntTensor<B>,
    /// Float intermediates (empty for the composition).
    pub saved: Vec<FloatTensor<B>>,
    /// Index buffers (empty for the composition).
    pub index: Vec<IntTensor<B>>,
}

/// A backend with the two ops of the MoE layer. The default methods are the tensor-op
/// composition (host-side top-k and the per-expert loop, gradients by burn's autodiff); kernel
/// backends set [`MoeBackend::KERNELS`] and override them, and then `Autodiff<B>` uses the
/// handwritten backward ([`MoeBackend::moe_route_backward`], [`MoeBackend::moe_experts_backward`]).
///
/// # Shapes
/// - `moe_route(logits [n, E], k) → (probs [n, E], weights [n, k], ids [n, k])`: `probs` the
///   full f32 softmax (for the load-balancing loss), `ids` ordered by descending probability
///   (ties → lower id), `weights` the renormalised top-k probabilities;
/// - `moe_experts(x [n, d], weights [n, k], ids [n, k], w13 [E, d, 2h], w2 [E, h, d]) → y [n, d]`.
///
/// Callers validate first ([`moe_layer`] does): implementations may panic on invalid input.
pub trait MoeBackend: Backend {
    /// Whether the ops run fused kernels (with a handwritten backward under autodiff).
    const KERNELS: bool = false;

    /// Router: softmax, top-k, renormalise.
    fn moe_route(
        logits: FloatTensor<Self>,
        top_k: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let (probs, weights, ids) = route_composition::<Self>(float(logits), top_k);
        (prim(probs), prim(weights), ids.into_primitive())
    }

    /// The router's backward: `∂L/∂logits` from `∂L/∂weights` and optionally `∂L/∂probs`:
    /// `p ⊙ (gp − ⟨p, gp⟩) + scatter_ids(w ⊙ (gw − ⟨w, gw⟩))` (the renormalised weights are the
    /// softmax of the kept logits).
    fn moe_route_backward(
        probs: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        dprobs: Option<FloatTensor<Self>>,
        dweights: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (p, w) = (float::<Self, 2>(probs), float::<Self, 2>(weights));
        let gw = float::<Self, 2>(dweights);
        let kept = w.clone() * (gw.clone() - (w.clone() * gw).sum_dim(1));
        let mut dl = p.zeros_like();
        if let Some(gp) = dprobs {
            let gp = float::<Self, 2>(gp);
            dl = p.clone() * (gp.clone() - (p * gp).sum_dim(1));
        }
        prim(dl.scatter(1, Tensor::from_primitive(ids), kept, IndexingUpdateOp::Add))
    }

    /// Experts: `y_t = Σ_j weights[t, j] · SwiGLU_{ids[t, j]}(x_t)`.
    fn moe_experts(
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::moe_experts_saved(x, weights, ids, w13, w2).0
    }

    /// [`MoeBackend::moe_experts`], keeping what the backward needs.
    fn moe_experts_saved(
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, MoeState<Self>) {
        let y = experts_loop::<Self>(
            float(x),
            float(weights),
            Tensor::from_primitive(ids.clone()),
            float(w13),
            float(w2),
        );
        let state = MoeState {
            ids,
            saved: vec![],
            index: vec![],
        };
        (prim(y), state)
    }

    /// The experts' backward from `dy [n, d]`: `(dx, dweights, dw13, dw2)`. The default runs
    /// burn's autodiff over the per-expert loop (recomputing the forward).
    fn moe_experts_backward(
        state: MoeState<Self>,
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 4] {
        type Ad<B> = Autodiff<B>;
        let x = Tensor::<Ad<Self>, 2>::from_inner(float(x)).require_grad();
        let w = Tensor::<Ad<Self>, 2>::from_inner(float(weights)).require_grad();
        let w13 = Tensor::<Ad<Self>, 3>::from_inner(float(w13)).require_grad();
        let w2 = Tensor::<Ad<Self>, 3>::from_inner(float(w2)).require_grad();
        let ids = Tensor::<Ad<Self>, 2, Int>::from_inner(Tensor::from_primitive(state.ids));
        let y = experts_loop(x.clone(), w.clone(), ids, w13.clone(), w2.clone());
        let dy = Tensor::<Ad<Self>, 2>::from_inner(float(dy));
        let grads = (y * dy).sum().backward();
        let grad = |g: Option<Tensor<Self, 2>>, like: &Tensor<Ad<Self>, 2>| {
            prim(g.unwrap_or_else(|| like.clone().inner().zeros_like()))
        };
        let grad3 = |g: Option<Tensor<Self, 3>>, like: &Tensor<Ad<Self>, 3>| {
            prim(g.unwrap_or_else(|| like.clone().inner().zeros_like()))
        };
        [
            grad(x.grad(&grads), &x),
            grad(w.grad(&grads), &w),
            grad3(w13.grad(&grads), &w13),
            grad3(w2.grad(&grads), &w2),
        ]
    }
}

impl MoeBackend for Flex {}

/// The composition of the router: softmax in f32, top-k on the host (ties → lower id),
/// renormalised weights gathered from the softmax (differentiable under autodiff).
fn route_composition<B: Backend>(
    logits: Tensor<B, 2>,
    top_k: usize,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2, Int>) {
    let [n, e] = logits.dims();
    let device = logits.device();
    let probs = softmax(logits.clone(), 1);
    let host = logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 logits");
    let ids: Vec<i64> = host
        .chunks(e)
        .flat_map(|row| topk_row(row, top_k).into_iter().map(|i| i as i64))
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, top_k]), &device);
    let kept = probs.clone().gather(1, ids.clone());
    let weights = kept.clone() / kept.sum_dim(1);
    (probs, weights, ids)
}

/// The top-`k` indices of one row, by descending value, ties to the lower index.
fn topk_row(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    order.truncate(k);
    order
}

/// The per-expert loop of HF's `MixtralSparseMoeBlock`: per expert, the (token, slot) pairs routed
/// to it are read back to the host, the tokens gathered (`select`), run through SwiGLU, scaled by
/// their weights and index-added into the output.
fn experts_loop<B: Backend>(
    x: Tensor<B, 2>,
    weights: Tensor<B, 2>,
    ids: Tensor<B, 2, Int>,
    w13: Tensor<B, 3>,
    w2: Tensor<B, 3>,
) -> Tensor<B, 2> {
    let [n, d] = x.dims();
    let [e, _, h2] = w13.dims();
    let h = h2 / 2;
    let k = ids.dims()[1];
    let device = x.device();
    let host_ids: Vec<i64> = ids
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .expect("int ids");
    let flat_weights = weights.reshape([n * k, 1]);
    let mut y = Tensor::<B, 2>::zeros([n, d], &device);
    for expert in 0..e {
        let slots: Vec<i64> = (0..n * k)
            .filter(|&s| host_ids[s] as usize == expert)
            .map(|s| s as i64)
            .collect();
        if slots.is_empty() {
            continue;
        }
        let count = slots.len();
        let tokens: Vec<i64> = slots.iter().map(|&s| s / k as i64).collect();
        let tokens = Tensor::<B, 1, Int>::from_data(TensorData::new(tokens, [count]), &device);
        let slots = Tensor::<B, 1, Int>::from_data(TensorData::new(slots, [count]), &device);
        let xe = x.clone().select(0, tokens.clone());
        let w13e = w13.clone().narrow(0, expert, 1).reshape([d, h2]);
        let w2e = w2.clone().narrow(0, expert, 1).reshape([h, d]);
        let act = swiglu_gate(xe, w13e);
        let out = act.matmul(w2e) * flat_weights.clone().select(0, slots);
        y = y.select_assign(0, tokens, out, IndexingUpdateOp::Add);
    }
    y
}

/// The output of [`moe_layer`].
#[derive(Debug, Clone)]
pub struct MoeOutput<B: Backend> {
    /// The layer output `[n, d]`.
    pub y: Tensor<B, 2>,
    /// Router logits `x·W_g` `[n, E]` (for the router z-loss).
    pub logits: Tensor<B, 2>,
    /// The full router softmax `[n, E]` (for the load-balancing loss).
    pub probs: Tensor<B, 2>,
    /// The chosen experts `[n, k]`, by descending weight.
    pub ids: Tensor<B, 2, Int>,
    /// Their renormalised weights `[n, k]`.
    pub weights: Tensor<B, 2>,
}

fn check_layer<B: Backend>(
    spec: &MoeSpec,
    x: &Tensor<B, 2>,
    router: Option<&Tensor<B, 2>>,
    w13: &Tensor<B, 3>,
    w2: &Tensor<B, 3>,
) -> Result<(), KernelError> {
    spec.check_shapes(
        Some(x.dims()),
        router.map(|r| r.dims()),
        w13.dims(),
        w2.dims(),
    )?;
    check_f32("tokens x", x.dtype())?;
    if let Some(r) = router {
        check_f32("router weight", r.dtype())?;
    }
    check_f32("expert weights w13", w13.dtype())?;
    check_f32("expert weights w2", w2.dtype())
}

/// The sparse MoE layer: `logits = x·router` (the backend's GEMM), then [`MoeBackend::moe_route`]
/// and [`MoeBackend::moe_experts`]. Checks shapes and dtypes against `spec` (no device read).
pub fn moe_layer<B: MoeBackend>(
    spec: &MoeSpec,
    x: Tensor<B, 2>,
    router: Tensor<B, 2>,
    w13: Tensor<B, 3>,
    w2: Tensor<B, 3>,
) -> Result<MoeOutput<B>, KernelError> {
    check_layer(spec, &x, Some(&router), &w13, &w2)?;
    let logits = x.clone().matmul(router);
    let (probs, weights, ids) = B::moe_route(prim(logits.clone()), spec.top_k);
    let (probs, weights) = (float::<B, 2>(probs), float::<B, 2>(weights));
    let ids = Tensor::<B, 2, Int>::from_primitive(ids);
    let y = B::moe_experts(
        prim(x),
        prim(weights.clone()),
        ids.clone().into_primitive(),
        prim(w13),
        prim(w2),
    );
    Ok(MoeOutput {
        y: float(y),
        logits,
        probs,
        ids,
        weights,
    })
}

/// [`moe_layer`] as a burn user writes it without the kernels (HF `MixtralSparseMoeBlock`):
/// softmax, `topk`, renormalise, then the per-expert select / SwiGLU / index-add loop.
pub fn moe_layer_loop<B: Backend>(
    spec: &MoeSpec,
    x: Tensor<B, 2>,
    router: Tensor<B, 2>,
    w13: Tensor<B, 3>,
    w2: Tensor<B, 3>,
) -> Result<MoeOutput<B>, KernelError> {
    check_layer(spec, &x, Some(&router), &w13, &w2)?;
    let logits = x.clone().matmul(router);
    let probs = softmax(logits.clone(), 1);
    let (kept, ids) = probs.clone().topk_with_indices(spec.top_k, 1);
    let weights = kept.clone() / kept.sum_dim(1);
    let y = experts_loop(x, weights.clone(), ids.clone(), w13, w2);
    Ok(MoeOutput {
        y,
        logits,
        probs,
        ids,
        weights,
    })
}

/// `silu(x W1) ⊙ (x W3)` for `w13 = [W1 | W3]` `[d, 2h]`, as two GEMMs on column slices of the
/// weight (burn 0.21's fused wgpu computed `silu` of a column slice of the product `x·w13`
/// wrongly: the layer's output was off by ~0.1 there).
fn swiglu_gate<B: Backend>(x: Tensor<B, 2>, w13: Tensor<B, 2>) -> Tensor<B, 2> {
    let [d, h2] = w13.dims();
    let h = h2 / 2;
    let gate = x.clone().matmul(w13.clone().slice([0..d, 0..h]));
    let up = x.matmul(w13.slice([0..d, h..h2]));
    silu(gate) * up
}

/// The dense SwiGLU FFN `(silu(x W1) ⊙ (x W3)) W2`, `w13 [d, 2h]`, `w2 [h, d]`.
pub fn dense_swiglu<B: Backend>(
    x: Tensor<B, 2>,
    w13: Tensor<B, 2>,
    w2: Tensor<B, 2>,
) -> Tensor<B, 2> {
    swiglu_gate(x, w13).matmul(w2)
}

fn cube_f32<R: CubeRuntime>(t: CubeTensor<R>) -> CubeTensor<R> {
    check_f32("MoE operand", t.dtype).expect("the entry points validate the dtype");
    burn_cubecl::kernel::into_contiguous(t)
}

fn cube_new<R: CubeRuntime, const D: usize>(
    like: &CubeTensor<R>,
    shape: [usize; D],
    handle: cubecl::server::Handle,
    dtype: DType,
) -> CubeTensor<R> {
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::new(shape),
        handle,
        dtype,
    )
}

/// The sizes of an experts call from `x [n, d]`, `ids [n, k]`, `w13 [E, d, 2h]`.
fn experts_dims<R: CubeRuntime>(
    x: &CubeTensor<R>,
    ids: &CubeTensor<R>,
    w13: &CubeTensor<R>,
) -> MoeDims {
    let [tokens, d_model] = x.shape().dims::<2>();
    let [experts, _, h2] = w13.shape().dims::<3>();
    MoeDims {
        tokens,
        experts,
        top_k: ids.shape()[1],
        d_model,
        hidden: h2 / 2,
    }
}

fn cube_ids<R: CubeRuntime>(ids: CubeTensor<R>) -> CubeTensor<R> {
    assert_eq!(
        ids.dtype,
        DType::I32,
        "MoE kernels take the i32 ids their router produces"
    );
    burn_cubecl::kernel::into_contiguous(ids)
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> MoeBackend
    for CubeBackend<R, F, I, BT>
{
    const KERNELS: bool = true;

    fn moe_route(
        logits: FloatTensor<Self>,
        top_k: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let logits = cube_f32(logits);
        let [tokens, experts] = logits.shape().dims::<2>();
        let dims = MoeDims {
            tokens,
            experts,
            top_k,
            d_model: 1,
            hidden: 1,
        };
        let r = moe::route(&logits.client, dims, logits.handle.clone());
        (
            cube_new(&logits, [tokens, experts], r.probs, DType::F32),
            cube_new(&logits, [tokens, top_k], r.weights, DType::F32),
            cube_new(&logits, [tokens, top_k], r.ids, DType::I32),
        )
    }

    fn moe_route_backward(
        probs: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        dprobs: Option<FloatTensor<Self>>,
        dweights: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [probs, weights, dweights] = [probs, weights, dweights].map(cube_f32);
        let ids = cube_ids(ids);
        let [tokens, experts] = probs.shape().dims::<2>();
        let dims = MoeDims {
            tokens,
            experts,
            top_k: weights.shape()[1],
            d_model: 1,
            hidden: 1,
        };
        let routing = moe::Routing {
            probs: probs.handle.clone(),
            weights: weights.handle.clone(),
            ids: ids.handle.clone(),
        };
        let dprobs = dprobs.map(cube_f32);
        let out = moe::route_backward(
            &probs.client,
            dims,
            &routing,
            dprobs.map(|t| t.handle.clone()),
            dweights.handle.clone(),
        );
        cube_new(&probs, [tokens, experts], out, DType::F32)
    }

    fn moe_experts_saved(
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, MoeState<Self>) {
        let [x, weights, w13, w2] = [x, weights, w13, w2].map(cube_f32);
        let ids = cube_ids(ids);
        let dims = experts_dims(&x, &ids, &w13);
        let client = &x.client;
        let dispatch = moe::dispatch(client, dims, ids.handle.clone());
        let (y, saved) = moe::experts_forward(
            client,
            dims,
            x.handle.clone(),
            weights.handle.clone(),
            &dispatch,
            w13.handle.clone(),
            w2.handle.clone(),
        );
        let (n, e, d, h, m) = (
            dims.tokens,
            dims.experts,
            dims.d_model,
            dims.hidden,
            dims.assignments(),
        );
        let state = MoeState {
            ids,
            saved: vec![
                cube_new(&x, [m, 2 * h], saved.hpre, DType::F32),
                cube_new(&x, [m, h], saved.act, DType::F32),
                cube_new(&x, [m, d], saved.out, DType::F32),
            ],
            index: vec![
                cube_new(&x, [e + 1], dispatch.offsets, DType::U32),
                cube_new(&x, [m], dispatch.assign, DType::U32),
                cube_new(&x, [m], dispatch.inverse, DType::U32),
            ],
        };
        (cube_new(&x, [n, d], y, DType::F32), state)
    }

    fn moe_experts_backward(
        state: MoeState<Self>,
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 4] {
        let [x, weights, w13, w2, dy] = [x, weights, w13, w2, dy].map(cube_f32);
        let dims = experts_dims(&x, &state.ids, &w13);
        let [hpre, act, out]: [CubeTensor<R>; 3] =
            state.saved.try_into().expect("three saved tensors");
        let [offsets, assign, inverse]: [CubeTensor<R>; 3] =
            state.index.try_into().expect("three index buffers");
        let dispatch = moe::Dispatch {
            offsets: offsets.handle,
            assign: assign.handle,
            inverse: inverse.handle,
        };
        let saved = moe::ExpertsSaved {
            hpre: hpre.handle,
            act: act.handle,
            out: out.handle,
        };
        let g = moe::experts_backward(
            &x.client,
            dims,
            x.handle.clone(),
            weights.handle.clone(),
            &dispatch,
            w13.handle.clone(),
            w2.handle.clone(),
            &saved,
            dy.handle.clone(),
        );
        let (n, e, d, h, k) = (
            dims.tokens,
            dims.experts,
            dims.d_model,
            dims.hidden,
            dims.top_k,
        );
        [
            cube_new(&x, [n, d], g.dx, DType::F32),
            cube_new(&x, [n, k], g.dweights, DType::F32),
            cube_new(&x, [e, d, 2 * h], g.dw13, DType::F32),
            cube_new(&x, [e, h, d], g.dw2, DType::F32),
        ]
    }
}

/// The router's VJP under autodiff (parent: the logits). The op's tracked output is
/// `[probs | weights]` `[n, E + k]`, split by the caller.
#[derive(Clone, Debug)]
struct RouteVjp<B: Backend> {
    probs: FloatTensor<B>,
    weights: FloatTensor<B>,
    ids: IntTensor<B>,
}

impl<B: MoeBackend> Vjp<B, 1> for RouteVjp<B> {
    fn vjp(self, grad: FloatTensor<B>, _wanted: [bool; 1]) -> [Option<FloatTensor<B>>; 1] {
        let g = float::<B, 2>(grad);
        let [n, width] = g.dims();
        let e = width - float::<B, 2>(self.weights.clone()).dims()[1];
        let dprobs = g.clone().slice([0..n, 0..e]);
        let dweights = g.slice([0..n, e..width]);
        [Some(B::moe_route_backward(
            self.probs,
            self.weights,
            self.ids,
            Some(prim(dprobs)),
            prim(dweights),
        ))]
    }
}

/// The experts' VJP under autodiff (parents `x, weights, w13, w2`).
#[derive(Clone, Debug)]
struct ExpertsVjp<B: Backend> {
    state: MoeState<B>,
    x: FloatTensor<B>,
    weights: FloatTensor<B>,
    w13: FloatTensor<B>,
    w2: FloatTensor<B>,
}

impl<B: MoeBackend> Vjp<B, 4> for ExpertsVjp<B> {
    fn vjp(self, dy: FloatTensor<B>, _wanted: [bool; 4]) -> [Option<FloatTensor<B>>; 4] {
        B::moe_experts_backward(self.state, self.x, self.weights, self.w13, self.w2, dy).map(Some)
    }
}

impl<B: MoeBackend, C: CheckpointStrategy> MoeBackend for Autodiff<B, C> {
    const KERNELS: bool = B::KERNELS;

    fn moe_route(
        logits: FloatTensor<Self>,
        top_k: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        if !B::KERNELS {
            let (probs, weights, ids) = route_composition::<Self>(float(logits), top_k);
            return (prim(probs), prim(weights), ids.into_primitive());
        }
        let (probs, weights, ids) = B::moe_route(logits.primitive.clone(), top_k);
        let e = float::<B, 2>(probs.clone()).dims()[1];
        let both = prim(Tensor::cat(
            vec![float::<B, 2>(probs.clone()), float(weights.clone())],
            1,
        ));
        let both = Tracked::<C>::op([&logits], both, || RouteVjp {
            probs,
            weights,
            ids: ids.clone(),
        });
        let both = float::<Self, 2>(both);
        let [n, width] = both.dims();
        (
            prim(both.clone().slice([0..n, 0..e])),
            prim(both.slice([0..n, e..width])),
            ids,
        )
    }

    fn moe_experts_saved(
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, MoeState<Self>) {
        let state = MoeState {
            ids: ids.clone(),
            saved: vec![],
            index: vec![],
        };
        if !B::KERNELS {
            let y = experts_loop::<Self>(
                float(x),
                float(weights),
                Tensor::from_primitive(ids),
                float(w13),
                float(w2),
            );
            return (prim(y), state);
        }
        let (y, inner) = B::moe_experts_saved(
            x.primitive.clone(),
            weights.primitive.clone(),
            ids,
            w13.primitive.clone(),
            w2.primitive.clone(),
        );
        let y = Tracked::<C>::op([&x, &weights, &w13, &w2], y, || ExpertsVjp {
            state: inner,
            x: x.primitive.clone(),
            weights: weights.primitive.clone(),
            w13: w13.primitive.clone(),
            w2: w2.primitive.clone(),
        });
        (y, state)
    }
}

/// The two ops and their backwards as custom ops on `Fusion<B>` ([`super::custom::fused`]): the
/// inner backend's kernels (or composition) run as one op each, with the experts' saved state as
/// extra outputs. burn's fusion never sees the dispatch.
impl<B: FusionBackend + MoeBackend> MoeBackend for Fusion<B> {
    const KERNELS: bool = B::KERNELS;

    fn moe_route(
        logits: FloatTensor<Self>,
        top_k: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let [n, e] = logits.shape.dims::<2>();
        let [probs, weights, ids] = fused_n::<B, 3>(
            op_id("moe_route", &[&top_k]),
            vec![logits],
            [
                f32_out([n, e]),
                f32_out([n, top_k]),
                ([n, top_k].into(), DType::I32),
            ],
            move |i| {
                let (p, w, ids) = B::moe_route(i.float(), top_k);
                [Prim::Float(p), Prim::Float(w), Prim::Int(ids)]
            },
        );
        (probs, weights, ids)
    }

    fn moe_route_backward(
        probs: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        dprobs: Option<FloatTensor<Self>>,
        dweights: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let shape = f32_out(probs.shape.dims::<2>());
        let with_probs = dprobs.is_some();
        let name = if with_probs {
            "moe_route_backward+probs"
        } else {
            "moe_route_backward"
        };
        let inputs = [probs, weights, ids, dweights]
            .into_iter()
            .chain(dprobs)
            .collect();
        fused1::<B>(op_id(name, &[]), inputs, shape, move |i| {
            let (p, w, ids, dw) = (i.float(), i.float(), i.int(), i.float());
            let dp = with_probs.then(|| i.float());
            Prim::Float(B::moe_route_backward(p, w, ids, dp, dw))
        })
    }

    fn moe_experts_saved(
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        ids: IntTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, MoeState<Self>) {
        let [n, d] = x.shape.dims::<2>();
        let [e, _, h2] = w13.shape.dims::<3>();
        let (h, m) = (h2 / 2, n * ids.shape[1]);
        // The output, then the saved state of the kernels: hpre, act, out (f32), offsets, assign,
        // inverse (u32). The composition saves nothing.
        let mut outputs = vec![f32_out([n, d])];
        if B::KERNELS {
            outputs.extend([f32_out([m, 2 * h]), f32_out([m, h]), f32_out([m, d])]);
            outputs.extend([vec![e + 1], vec![m], vec![m]].map(|s| (s, DType::U32)));
        }
        let inputs = vec![x, weights, ids.clone(), w13, w2];
        let mut out = fused::<B>(op_id("moe_experts", &[]), inputs, &outputs, |i| {
            let (x, w, ids, w13, w2) = (i.float(), i.float(), i.int(), i.float(), i.float());
            let (y, state) = B::moe_experts_saved(x, w, ids, w13, w2);
            let saved = state.saved.into_iter().map(Prim::Float);
            let index = state.index.into_iter().map(Prim::Int);
            std::iter::once(Prim::Float(y))
                .chain(saved)
                .chain(index)
                .collect()
        });
        let index = out.split_off(out.len().min(4));
        let saved = out.split_off(1);
        let y = out.pop().expect("the output");
        (y, MoeState { ids, saved, index })
    }

    fn moe_experts_backward(
        state: MoeState<Self>,
        x: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        w13: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 4] {
        let shapes = [
            f32_out(x.shape.dims::<2>()),
            f32_out(weights.shape.dims::<2>()),
            f32_out(w13.shape.dims::<3>()),
            f32_out(w2.shape.dims::<3>()),
        ];
        let (n_saved, n_index) = (state.saved.len(), state.index.len());
        let inputs = [x, weights, w13, w2, dy, state.ids]
            .into_iter()
            .chain(state.saved)
            .chain(state.index)
            .collect();
        fused_n::<B, 4>(
            op_id("moe_experts_backward", &[]),
            inputs,
            shapes,
            move |i| {
                let (x, w, w13, w2, dy) = (i.float(), i.float(), i.float(), i.float(), i.float());
                let state = MoeState {
                    ids: i.int(),
                    saved: (0..n_saved).map(|_| i.float()).collect(),
                    index: (0..n_index).map(|_| i.int()).collect(),
                };
                B::moe_experts_backward(state, x, w, w13, w2, dy).map(Prim::Float)
            },
        )
    }
}
