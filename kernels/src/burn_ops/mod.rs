//! burn custom ops backed by the kernels: the only module of this crate that knows burn.
//!
//! [`TokenLogprobBackend`] is implemented for
//! - `CubeBackend<R, ..>` (wgpu, CUDA): the cubecl kernels of [`crate::token_logprob`];
//! - `Flex`: the tensor-op composition (`max`, `exp`, `sum`, `log`, `gather`), for CPU training;
//! - `Autodiff<B, C>`: the handwritten backward `(one_hot − softmax) · g` on top of any of them;
//! - `Fusion<B>`: a custom op registered with burn's fusion stream, so burn's default fused `Wgpu`
//!   takes it (it is a fusion barrier: neighbours fuse separately).
//!
//! Use [`token_logprobs`] (validated) or [`token_logprobs_unchecked`] (hot paths with ids known to
//! be in range); [`token_logprobs_composition`] is what a burn user writes without the kernel and
//! serves as baseline and test oracle. [`cross_entropy`] is the fused mean cross-entropy (ignore
//! index, label smoothing) on the same trait, with [`cross_entropy_composition`] as its oracle.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::Flex;
use burn::tensor::TensorData;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, IndexingUpdateOp, Int, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::{Fusion, FusionBackend};

use crate::KernelError;
use crate::cross_entropy::{self, Settings};
use crate::token_logprob::{self, BackwardWeights, IdType, Problem};

use custom::{Prim, Tracked, Vjp, f32_out, fused_n, fused1, op_id};

pub mod custom;
pub mod dora;
pub mod moe;
pub mod preference;

pub use dora::{
    DoraBackend, NormGrad, dora_column_norms, dora_gain, dora_linear, dora_linear_peft, dora_merge,
    dora_unmerge, gemm_then_epilogue, lora_linear, lora_linear_composition, lora_merge,
    lora_unmerge, untracked,
};
pub use moe::{MoeBackend, MoeOutput, dense_swiglu, moe_layer, moe_layer_loop};
pub use preference::{
    DpoLoss, PreferenceBackend, concat_pairs, dpo_loss, dpo_loss_composition,
    dpo_loss_composition_logsumexp, dpo_loss_unchecked, gae_loop,
};

/// A backend that computes fused per-token log-probabilities.
///
/// # Shapes
/// - `logits`: `[rows, vocab]` f32, `targets`: `[rows]` int, each id in `[0, vocab)`;
/// - forward returns `(logprobs [rows], lse [rows])`, `lse = logsumexp(logits, 1)`;
/// - backward takes the forward's `lse` and the upstream gradient `[rows]`, returns
///   `grad_logits [rows, vocab] = g · (one_hot(targets) − exp(logits − lse))`.
///
/// Callers validate shapes and ids first ([`token_logprobs`] does): implementations may panic
/// on invalid input.
pub trait TokenLogprobBackend: Backend {
    /// Fused forward: `(log_softmax(logits)[targets], logsumexp(logits))`.
    fn token_logprob_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Backward of [`Self::token_logprob_forward`] with respect to the logits.
    fn token_logprob_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::token_logprob_backward_weighted(logits, targets, lse, grad, BackwardWeights::LOGPROB)
    }

    /// The generalised backward `grad [rows] · (w_t·one_hot + w_s·softmax + u)` (see
    /// [`BackwardWeights`]); rows whose target lies outside `[0, vocab)` get no one-hot term.
    fn token_logprob_backward_weighted(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weights: BackwardWeights,
    ) -> FloatTensor<Self>;

    /// Fused cross-entropy rows: `(ℓ [rows], lse [rows])` with `ℓ_r` of
    /// [`crate::cross_entropy`] (0 on ignored rows). Targets are in `[0, vocab)` or the ignore index.
    fn cross_entropy_rows_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        settings: Settings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The largest buffer, in bytes, this backend binds on `device` (`None`: no limit).
    fn token_logprob_max_bytes(device: &Self::Device) -> Option<u64>;
}

fn float<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The composition of tensor ops for `logits [rows, vocab]`, `targets [rows]`: with `m = max(x)`
/// and `ln_s = log Σ exp(x − m)`, `logprob = (x[t] − m) − ln_s` and `lse = m + ln_s`. The log-prob
/// is formed relative to `m`, never as `x[t] − lse` with `lse` rounded at the logits' magnitude.
pub fn composition_forward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let (lp, lse, _) = composition_stats(logits, targets, false);
    (lp, lse)
}

/// `(logprob [rows], lse [rows], gap [rows])` of [`composition_forward`], with, when `with_gap`,
/// `gap = lse − mean_v x_v = ln_s − mean_v (x_v − m)` (a mean of the shifted logits, whose error
/// grows with the row's range, not its magnitude); zeros otherwise.
fn composition_stats<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    with_gap: bool,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let [rows, _] = logits.dims();
    let m = logits.clone().max_dim(1); // [rows, 1]
    let shifted = logits - m.clone(); // [rows, vocab]
    let ln_s = shifted.clone().exp().sum_dim(1).log(); // [rows, 1]
    let picked = shifted.clone().gather(1, targets.reshape([rows, 1])); // [rows, 1], x[t] − m
    let gap = if with_gap {
        (ln_s.clone() - shifted.mean_dim(1)).reshape([rows])
    } else {
        Tensor::zeros([rows], &m.device())
    };
    (
        (picked - ln_s.clone()).reshape([rows]),
        (m + ln_s).reshape([rows]),
        gap,
    )
}

/// The composition of tensor ops for the backward:
/// `g[:, None] · (w_t·one_hot(t) + w_s·exp(x − lse) + u)` ([`BackwardWeights`]); a target outside
/// `[0, vocab)` (an ignored row) contributes no one-hot term.
pub fn composition_backward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    lse: Tensor<B, 1>,
    grad: Tensor<B, 1>,
    w: BackwardWeights,
) -> Tensor<B, 2> {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let probs = (logits - lse.reshape([rows, 1])).exp();
    // Out-of-range targets: scatter at column 0 with weight 0.
    let in_range = targets
        .clone()
        .greater_equal_elem(0)
        .bool_and(targets.clone().lower_elem(vocab as i64));
    let safe = targets.mask_fill(in_range.clone().bool_not(), 0);
    let one_hot = Tensor::<B, 2>::zeros([rows, vocab], &device).scatter(
        1,
        safe.reshape([rows, 1]),
        in_range.float().reshape([rows, 1]),
        IndexingUpdateOp::Add,
    );
    (one_hot.mul_scalar(w.target_weight) + probs.mul_scalar(w.softmax_weight)).add_scalar(w.uniform)
        * grad.reshape([rows, 1])
}

/// The composition of tensor ops for the cross-entropy rows of [`crate::cross_entropy`]:
/// `ℓ_r = (1 − ε)(lse_r − x_{r,t_r}) + ε(lse_r − mean_v x_rv)`, 0 where `t_r` is the ignore index,
/// with both terms formed relative to the row max `m` (`lse − x_t = ln_s − (x_t − m)`,
/// `lse − mean x = ln_s − mean (x − m)`, see [`composition_forward`]). Returns `(ℓ [rows],
/// lse [rows])`.
pub fn composition_cross_entropy_rows<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    s: Settings,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [_, vocab] = logits.dims();
    let ignored = targets.clone().equal_elem(s.ignore_index);
    let safe = targets
        .mask_fill(ignored.clone(), 0)
        .clamp(0, vocab as i64 - 1);
    let eps = s.smoothing;
    let (lp, lse, gap) = composition_stats(logits, safe, eps > 0.0);
    let nll = lp.neg();
    let rows_loss = (nll.mul_scalar(1.0 - eps) + gap.mul_scalar(eps)).mask_fill(ignored, 0.0);
    (rows_loss, lse)
}

impl TokenLogprobBackend for Flex {
    fn token_logprob_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (lp, lse) = composition_forward::<Self>(float(logits), Tensor::from_primitive(targets));
        (prim(lp), prim(lse))
    }

    fn token_logprob_backward_weighted(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weights: BackwardWeights,
    ) -> FloatTensor<Self> {
        prim(composition_backward::<Self>(
            float(logits),
            Tensor::from_primitive(targets),
            float(lse),
            float(grad),
            weights,
        ))
    }

    fn cross_entropy_rows_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        settings: Settings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (l, lse) = composition_cross_entropy_rows::<Self>(
            float(logits),
            Tensor::from_primitive(targets),
            settings,
        );
        (prim(l), prim(lse))
    }

    fn token_logprob_max_bytes(_device: &Self::Device) -> Option<u64> {
        None
    }
}

fn id_type(dtype: DType) -> Result<IdType, KernelError> {
    match dtype {
        DType::I32 => Ok(IdType::I32),
        DType::I64 => Ok(IdType::I64),
        DType::U32 => Ok(IdType::U32),
        other => Err(KernelError::UnsupportedDType {
            what: "target id",
            dtype: format!("{other:?}"),
            expected: "i32, i64 or u32",
        }),
    }
}

fn check_f32(what: &'static str, dtype: DType) -> Result<(), KernelError> {
    if dtype == DType::F32 {
        Ok(())
    } else {
        Err(KernelError::UnsupportedDType {
            what,
            dtype: format!("{dtype:?}"),
            expected: "f32",
        })
    }
}

/// Makes `logits [rows, vocab]` and `targets [rows]` contiguous and reads their problem and id
/// type. Panics on what [`token_logprobs`] validates (dtype, shape), a caller's contract.
#[allow(clippy::type_complexity)]
fn contiguous_problem<R: CubeRuntime>(
    logits: CubeTensor<R>,
    targets: CubeTensor<R>,
) -> (CubeTensor<R>, CubeTensor<R>, Problem, IdType) {
    let logits = burn_cubecl::kernel::into_contiguous(logits);
    let targets = burn_cubecl::kernel::into_contiguous(targets);
    let [rows, vocab] = logits.shape().dims::<2>();
    check_f32("logits", logits.dtype).expect("token_logprobs validates the dtype");
    let ids = id_type(targets.dtype).expect("token_logprobs validates the id dtype");
    let problem = Problem::new(rows, vocab).expect("token_logprobs validates the shape");
    (logits, targets, problem, ids)
}

/// The two `[rows]` f32 outputs of a forward kernel as tensors on `like`'s device.
fn row_pair<R: CubeRuntime>(
    like: &CubeTensor<R>,
    rows: usize,
    out: token_logprob::ForwardOutput,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let make = |handle| {
        CubeTensor::new_contiguous(
            like.client.clone(),
            like.device.clone(),
            Shape::new([rows]),
            handle,
            DType::F32,
        )
    };
    (make(out.logprobs), make(out.lse))
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> TokenLogprobBackend
    for CubeBackend<R, F, I, BT>
{
    fn token_logprob_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (logits, targets, problem, ids) = contiguous_problem(logits, targets);
        let rows = problem.rows();
        let out = token_logprob::forward(
            &logits.client,
            problem,
            logits.handle.clone(),
            targets.handle.clone(),
            ids,
        )
        .expect("token_logprobs validates the size");
        row_pair(&logits, rows, out)
    }

    fn cross_entropy_rows_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        settings: Settings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (logits, targets, problem, ids) = contiguous_problem(logits, targets);
        let rows = problem.rows();
        let out = cross_entropy::forward(
            &logits.client,
            problem,
            logits.handle.clone(),
            targets.handle.clone(),
            ids,
            settings,
        )
        .expect("cross_entropy validates the size and settings");
        row_pair(&logits, rows, out)
    }

    fn token_logprob_backward_weighted(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weights: BackwardWeights,
    ) -> FloatTensor<Self> {
        let (logits, targets, problem, ids) = contiguous_problem(logits, targets);
        let lse = burn_cubecl::kernel::into_contiguous(lse);
        let grad = burn_cubecl::kernel::into_contiguous(grad);
        check_f32("upstream gradient", grad.dtype).expect("the forward produced f32");
        let (rows, vocab) = (problem.rows(), problem.vocab());
        let out = token_logprob::backward_weighted(
            &logits.client,
            problem,
            logits.handle.clone(),
            targets.handle.clone(),
            ids,
            lse.handle.clone(),
            grad.handle.clone(),
            weights,
        )
        .expect("validated in the forward");
        CubeTensor::new_contiguous(
            logits.client.clone(),
            logits.device.clone(),
            Shape::new([rows, vocab]),
            out,
            DType::F32,
        )
    }

    fn token_logprob_max_bytes(device: &Self::Device) -> Option<u64> {
        Some(crate::launch::max_buffer_bytes(&R::client(device)))
    }
}

/// The token log-prob's VJP: the forward's logits, ids and lse.
#[derive(Clone, Debug)]
struct TokenLogprobVjp<B: Backend> {
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    lse: FloatTensor<B>,
}

impl<B: TokenLogprobBackend> Vjp<B, 1> for TokenLogprobVjp<B> {
    /// `∂/∂logits = g · (one_hot(targets) − softmax)`.
    fn vjp(self, grad: FloatTensor<B>, _wanted: [bool; 1]) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::token_logprob_backward(
            self.logits,
            self.targets,
            self.lse,
            grad,
        ))]
    }
}

/// The cross-entropy rows' VJP: the forward's logits, ids, lse and settings.
#[derive(Clone, Debug)]
struct CrossEntropyRowsVjp<B: Backend> {
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    lse: FloatTensor<B>,
    settings: Settings,
}

impl<B: TokenLogprobBackend> Vjp<B, 1> for CrossEntropyRowsVjp<B> {
    /// `∂ℓ_r/∂x_rv = softmax − (1 − ε)one_hot − ε/vocab` on counted rows, times the upstream
    /// `g_r`, which is zeroed on ignored rows (their `ℓ_r` is the constant 0).
    fn vjp(self, grad: FloatTensor<B>, _wanted: [bool; 1]) -> [Option<FloatTensor<B>>; 1] {
        let s = self.settings;
        let vocab = self.logits.shape()[1];
        let ids = Tensor::<B, 1, Int>::from_primitive(self.targets.clone());
        let counted = ids.not_equal_elem(s.ignore_index).float();
        let g = prim(float::<B, 1>(grad) * counted);
        [Some(B::token_logprob_backward_weighted(
            self.logits,
            self.targets,
            self.lse,
            g,
            BackwardWeights::cross_entropy(s.smoothing, vocab),
        ))]
    }
}

impl<B: TokenLogprobBackend, C: CheckpointStrategy> TokenLogprobBackend for Autodiff<B, C> {
    fn token_logprob_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (lp, lse) = B::token_logprob_forward(logits.primitive.clone(), targets.clone());
        let lse_out = <Self as AutodiffBackend>::from_inner(lse.clone());
        let lp = Tracked::<C>::op([&logits], lp, || TokenLogprobVjp {
            logits: logits.primitive.clone(),
            targets,
            lse,
        });
        (lp, lse_out)
    }

    fn token_logprob_backward_weighted(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weights: BackwardWeights,
    ) -> FloatTensor<Self> {
        // Second-order gradients are not supported: the result is a constant of the graph.
        let out = B::token_logprob_backward_weighted(
            <Self as AutodiffBackend>::inner(logits),
            targets,
            <Self as AutodiffBackend>::inner(lse),
            <Self as AutodiffBackend>::inner(grad),
            weights,
        );
        <Self as AutodiffBackend>::from_inner(out)
    }

    fn cross_entropy_rows_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        settings: Settings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (rows, lse) =
            B::cross_entropy_rows_forward(logits.primitive.clone(), targets.clone(), settings);
        let lse_out = <Self as AutodiffBackend>::from_inner(lse.clone());
        let rows = Tracked::<C>::op([&logits], rows, || CrossEntropyRowsVjp {
            logits: logits.primitive.clone(),
            targets,
            lse,
            settings,
        });
        (rows, lse_out)
    }

    fn token_logprob_max_bytes(device: &Self::Device) -> Option<u64> {
        B::token_logprob_max_bytes(device)
    }
}

/// The ops as custom ops on `Fusion<B>` ([`custom::fused`]).
impl<B: FusionBackend + TokenLogprobBackend> TokenLogprobBackend for Fusion<B> {
    fn token_logprob_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let rows = logits.shape[0];
        let [lp, lse] = fused_n::<B, 2>(
            op_id("token_logprob_forward", &[]),
            vec![logits, targets],
            [f32_out([rows]), f32_out([rows])],
            |i| {
                let (lp, lse) = B::token_logprob_forward(i.float(), i.int());
                [Prim::Float(lp), Prim::Float(lse)]
            },
        );
        (lp, lse)
    }

    fn token_logprob_backward_weighted(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weights: BackwardWeights,
    ) -> FloatTensor<Self> {
        let shape = logits.shape.dims::<2>();
        let w = weights;
        fused1::<B>(
            op_id(
                "token_logprob_backward",
                &[&w.target_weight, &w.softmax_weight, &w.uniform],
            ),
            vec![logits, targets, lse, grad],
            f32_out(shape),
            move |i| {
                Prim::Float(B::token_logprob_backward_weighted(
                    i.float(),
                    i.int(),
                    i.float(),
                    i.float(),
                    w,
                ))
            },
        )
    }

    fn cross_entropy_rows_forward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        settings: Settings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let rows = logits.shape[0];
        let s = settings;
        let [loss, lse] = fused_n::<B, 2>(
            op_id("cross_entropy_forward", &[&s.ignore_index, &s.smoothing]),
            vec![logits, targets],
            [f32_out([rows]), f32_out([rows])],
            move |i| {
                let (loss, lse) = B::cross_entropy_rows_forward(i.float(), i.int(), s);
                [Prim::Float(loss), Prim::Float(lse)]
            },
        );
        (loss, lse)
    }

    fn token_logprob_max_bytes(device: &Self::Device) -> Option<u64> {
        B::token_logprob_max_bytes(device)
    }
}

/// Validates `logits [B, T, V]` against `targets [B, T]` and the device's buffer limit, without
/// reading any data.
pub fn validate_shapes<B: TokenLogprobBackend>(
    logits: &Tensor<B, 3>,
    targets: &Tensor<B, 2, Int>,
) -> Result<Problem, KernelError> {
    let [b, t, v] = logits.dims();
    let [tb, tt] = targets.dims();
    if [b, t] != [tb, tt] {
        return Err(KernelError::ShapeMismatch {
            what: "targets [B, T] vs logits [B, T, V]",
            expected: vec![b, t],
            got: vec![tb, tt],
        });
    }
    check_f32("logits", logits.dtype())?;
    id_type(targets.dtype())?;
    let problem = Problem::new(b * t, v)?;
    if let Some(limit) = B::token_logprob_max_bytes(&logits.device())
        && problem.logits_bytes() > limit
    {
        return Err(KernelError::TooLarge {
            what: "the logits",
            bytes: problem.logits_bytes(),
            limit,
            device: format!("{:?}", logits.device()),
        });
    }
    Ok(problem)
}

/// `log_softmax(logits, 2)[targets]` per token, fused: `logits [B, T, V]`, `targets [B, T]` →
/// `[B, T]`. Validates shapes, dtypes, the device's buffer limit and (by reading the `B·T` ids
/// back) that every id lies in `[0, V)`.
pub fn token_logprobs<B: TokenLogprobBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Result<Tensor<B, 2>, KernelError> {
    let problem = validate_shapes(&logits, &targets)?;
    let ids: Vec<i64> = targets
        .to_data()
        .convert::<i64>()
        .to_vec()
        .expect("converted to i64");
    token_logprob::check_targets(&ids, problem.vocab())?;
    Ok(token_logprobs_unchecked(logits, targets))
}

/// As [`token_logprobs`] without validation, for hot paths whose shapes and ids are known good
/// (a row with an out-of-range id gets an unspecified value; shapes are still checked by burn).
pub fn token_logprobs_unchecked<B: TokenLogprobBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [b, t, v] = logits.dims();
    let (lp, _lse) = B::token_logprob_forward(
        prim(logits.reshape([b * t, v])),
        targets.reshape([b * t]).into_primitive(),
    );
    float::<B, 1>(lp).reshape([b, t])
}

/// What TRL's `selective_log_softmax` and practitioners write for speed: `x[t] − logsumexp(x)`,
/// with the logsumexp stabilised by the row max (burn has no `logsumexp`; this is
/// [`composition_forward`]). `logits [B, T, V]`, `targets [B, T]` → `[B, T]`. The second, and
/// usually the faster, baseline of the benchmarks.
pub fn token_logprobs_logsumexp<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [b, t, v] = logits.dims();
    let (lp, _lse) = composition_forward(logits.reshape([b * t, v]), targets.reshape([b * t]));
    lp.reshape([b, t])
}

/// What a burn user writes without the kernel: `log_softmax(logits, 2).gather(2, targets)`.
/// `logits [B, T, V]`, `targets [B, T]` → `[B, T]`. The baseline of the benchmarks and the oracle
/// of the autodiff tests.
pub fn token_logprobs_composition<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2)
        .gather(2, targets.reshape([b, t, 1]))
        .reshape([b, t])
}

/// Fused mean cross-entropy of `logits [N, V]` against `targets [N]` (see
/// [`crate::cross_entropy`]: ignore index, label smoothing ε, mean over the rows that count) →
/// a one-element tensor. Validates shapes, dtypes, settings, the device's buffer limit and (by
/// reading the `N` ids back) that each id is in `[0, V)` or the ignore index and that some row
/// counts.
pub fn cross_entropy<B: TokenLogprobBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    settings: Settings,
) -> Result<Tensor<B, 1>, KernelError> {
    let [n, v] = logits.dims();
    let [nt] = targets.dims();
    let problem = validate_shapes(
        &logits.clone().reshape([1, n, v]),
        &targets.clone().reshape([1, nt]),
    )?;
    let ids: Vec<i64> = targets
        .to_data()
        .convert::<i64>()
        .to_vec()
        .expect("converted to i64");
    let counted = cross_entropy::check_targets(&ids, problem.vocab(), settings)?;
    Ok(cross_entropy_unchecked(logits, targets, settings, counted))
}

/// As [`cross_entropy`] without validation, for hot paths whose shapes, ids and settings are
/// known good and whose number of counted rows (`counted ≥ 1`) the caller knows.
pub fn cross_entropy_unchecked<B: TokenLogprobBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    settings: Settings,
    counted: usize,
) -> Tensor<B, 1> {
    let (rows, _lse) =
        B::cross_entropy_rows_forward(prim(logits), targets.into_primitive(), settings);
    float::<B, 1>(rows).sum().div_scalar(counted as f32)
}

/// Runs a cross-entropy `op` (e.g. [`cross_entropy`]) under autodiff on `B` for host
/// `logits [n, v]` and `targets [n]`, and returns `(loss, d(g·loss)/d logits [n·v])` read back
/// to the host. Shared by the kernel tests and the harness's reference checks.
pub fn cross_entropy_and_grad<B: Backend>(
    op: impl Fn(
        Tensor<Autodiff<B>, 2>,
        Tensor<Autodiff<B>, 1, Int>,
    ) -> Result<Tensor<Autodiff<B>, 1>, KernelError>,
    device: &B::Device,
    logits: &[f32],
    targets: &[i64],
    g: f32,
    [n, v]: [usize; 2],
) -> Result<(f32, Vec<f32>), KernelError> {
    let x = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(logits.to_vec(), [n, v]), device)
        .require_grad();
    let ids: Vec<i32> = targets.iter().map(|&i| i as i32).collect();
    let ids = Tensor::<Autodiff<B>, 1, Int>::from_data(TensorData::new(ids, [n]), device);
    let loss = op(x.clone(), ids)?;
    let value = loss
        .clone()
        .into_data()
        .to_vec::<f32>()
        .expect("the loss is f32")[0];
    let grads = loss.mul_scalar(g).sum().backward();
    let grad = x
        .grad(&grads)
        .expect("logits require grad")
        .into_data()
        .to_vec::<f32>()
        .expect("gradients are f32");
    Ok((value, grad))
}

/// The same loss composed of burn tensor ops (the Flex path and the test oracle):
/// [`composition_cross_entropy_rows`] summed over the rows and divided by the number that count.
/// Errors as [`cross_entropy`] does.
pub fn cross_entropy_composition<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    settings: Settings,
) -> Result<Tensor<B, 1>, KernelError> {
    let [n, v] = logits.dims();
    let [nt] = targets.dims();
    if n != nt {
        return Err(KernelError::ShapeMismatch {
            what: "targets [N] vs logits [N, V]",
            expected: vec![n],
            got: vec![nt],
        });
    }
    let ids: Vec<i64> = targets
        .to_data()
        .convert::<i64>()
        .to_vec()
        .expect("converted to i64");
    let counted = cross_entropy::check_targets(&ids, v, settings)?;
    let (rows, _) = composition_cross_entropy_rows(logits, targets, settings);
    Ok(rows.sum().div_scalar(counted as f32))
}

/// Runs `op` (e.g. [`token_logprobs`], or the composition wrapped in `Ok`) under autodiff on `B`
/// for host `logits [b, t, v]`, `targets [b, t]` and upstream gradient `g [b, t]`, and returns
/// `(logprobs [b·t], d(Σ g·logprob)/d logits [b·t·v])` read back to the host. Shared by the kernel
/// tests and the harness's reference checks, which compare both against the plain-Rust references.
pub fn logprobs_and_grad<B: Backend>(
    op: impl Fn(
        Tensor<Autodiff<B>, 3>,
        Tensor<Autodiff<B>, 2, Int>,
    ) -> Result<Tensor<Autodiff<B>, 2>, KernelError>,
    device: &B::Device,
    logits: &[f32],
    targets: &[i64],
    g: &[f32],
    [b, t, v]: [usize; 3],
) -> Result<(Vec<f32>, Vec<f32>), KernelError> {
    let x =
        Tensor::<Autodiff<B>, 3>::from_data(TensorData::new(logits.to_vec(), [b, t, v]), device)
            .require_grad();
    let ids: Vec<i32> = targets.iter().map(|&i| i as i32).collect();
    let ids = Tensor::<Autodiff<B>, 2, Int>::from_data(TensorData::new(ids, [b, t]), device);
    let gt = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(g.to_vec(), [b, t]), device);
    let lp = op(x.clone(), ids)?;
    let lp_host = lp
        .clone()
        .into_data()
        .to_vec::<f32>()
        .expect("logprobs are f32");
    let grads = (lp * gt).sum().backward();
    let grad = x
        .grad(&grads)
        .expect("logits require grad")
        .into_data()
        .to_vec::<f32>()
        .expect("gradients are f32");
    Ok((lp_host, grad))
}
