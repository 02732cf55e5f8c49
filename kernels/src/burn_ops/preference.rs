//! The preference ops on burn: masked sequence sums and the DPO loss, fused with the token-logprob
//! op into the DPO path `logits → token log-probs → sequence sums → loss` (forward and backward).
//!
//! [`PreferenceBackend`] is implemented like [`TokenLogprobBackend`]: the cubecl kernels of
//! [`crate::preference`] on `CubeBackend`, the tensor-op composition on `Flex`, a handwritten
//! backward on `Autodiff<B, C>`, and custom ops registered with the fusion stream on `Fusion<B>`.
//! [`dpo_loss`] validates (shapes, mask rules, finite reference log-probs, settings, ids);
//! [`dpo_loss_unchecked`] is the hot path; [`dpo_loss_composition`] is what a burn user writes
//! without the kernels (TRL's concatenated forward in burn ops), the benchmark's baseline and the
//! tests' oracle.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::Flex;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Int, Shape, Tensor, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::{Fusion, FusionBackend};

use super::custom::{Prim, Tracked, Vjp, f32_out, fused_n, fused1, op_id};
use super::{TokenLogprobBackend, check_f32, float, prim, token_logprobs_unchecked};
use crate::KernelError;
use crate::preference::{self, DpoSettings};
use crate::sequences::{SeqShape, check_finite};

/// A backend with the preference ops.
///
/// # Shapes
/// - `masked_row_sum(values [rows, time], mask [rows, time]) → [rows]`: `Σ_t values` over the
///   positions with mask 1;
/// - `dpo_pairs(policy [2P], reference [2P]) → (losses [P], rewards [2P], grads [2P])`, chosen
///   sequences at `0..P`, rejected at `P..2P` (see [`crate::preference`]); `grads` is each pair's
///   own `∂ℓ_p/∂ policy`.
///
/// Callers validate first ([`dpo_loss`] does): implementations may panic on invalid input.
pub trait PreferenceBackend: TokenLogprobBackend {
    /// Masked row sums.
    fn masked_row_sum(values: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The DPO loss per pair, the implicit rewards, and the per-pair gradients.
    fn dpo_pairs(
        policy: FloatTensor<Self>,
        reference: FloatTensor<Self>,
        settings: DpoSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The composition of tensor ops for the masked row sums (masked positions are replaced by 0, not
/// multiplied, so padding may hold NaN).
pub fn composition_masked_row_sum<B: Backend>(
    values: Tensor<B, 2>,
    mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [rows, _] = values.dims();
    values
        .mask_fill(mask.lower_elem(0.5), 0.0)
        .sum_dim(1)
        .reshape([rows])
}

/// The composition of tensor ops for the DPO pairs: `(losses [P], rewards [2P], grads [2P])`.
pub fn composition_dpo_pairs<B: Backend>(
    policy: Tensor<B, 1>,
    reference: Tensor<B, 1>,
    s: DpoSettings,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let [n] = policy.dims();
    let p = n / 2;
    let rewards = (policy - reference).mul_scalar(s.beta);
    let z = rewards.clone().slice(0..p) - rewards.clone().slice(p..n);
    let eps = s.label_smoothing;
    let ls_pos = log_sigmoid(z.clone());
    let ls_neg = log_sigmoid(z.neg());
    let mut losses = ls_pos.clone().mul_scalar(-(1.0 - eps));
    if eps > 0.0 {
        losses = losses - ls_neg.clone().mul_scalar(eps);
    }
    let g = (ls_neg.exp().mul_scalar(1.0 - eps) - ls_pos.exp().mul_scalar(eps)).mul_scalar(-s.beta);
    let grads = Tensor::cat(vec![g.clone(), g.neg()], 0);
    (losses, rewards, grads)
}

impl PreferenceBackend for Flex {
    fn masked_row_sum(values: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self> {
        prim(composition_masked_row_sum::<Self>(
            float(values),
            float(mask),
        ))
    }

    fn dpo_pairs(
        policy: FloatTensor<Self>,
        reference: FloatTensor<Self>,
        settings: DpoSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (l, r, g) = composition_dpo_pairs::<Self>(float(policy), float(reference), settings);
        (prim(l), prim(r), prim(g))
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> PreferenceBackend
    for CubeBackend<R, F, I, BT>
{
    fn masked_row_sum(values: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self> {
        let values = burn_cubecl::kernel::into_contiguous(values);
        let mask = burn_cubecl::kernel::into_contiguous(mask);
        check_f32("values", values.dtype).expect("dpo_loss validates the dtype");
        check_f32("mask", mask.dtype).expect("dpo_loss validates the dtype");
        let [rows, time] = values.shape().dims::<2>();
        let shape = SeqShape::new(rows, time).expect("dpo_loss validates the shape");
        let out = preference::masked_row_sums(
            &values.client,
            shape,
            values.handle.clone(),
            mask.handle.clone(),
        );
        CubeTensor::new_contiguous(
            values.client.clone(),
            values.device.clone(),
            Shape::new([rows]),
            out,
            DType::F32,
        )
    }

    fn dpo_pairs(
        policy: FloatTensor<Self>,
        reference: FloatTensor<Self>,
        settings: DpoSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let policy = burn_cubecl::kernel::into_contiguous(policy);
        let reference = burn_cubecl::kernel::into_contiguous(reference);
        check_f32("policy log-probs", policy.dtype).expect("dpo_loss validates the dtype");
        check_f32("reference log-probs", reference.dtype).expect("dpo_loss validates the dtype");
        let n = policy.shape()[0];
        let out = preference::dpo_pairs(
            &policy.client,
            n / 2,
            policy.handle.clone(),
            reference.handle.clone(),
            settings,
        )
        .expect("dpo_loss validates the settings and the pair count");
        let make = |handle, len: usize| {
            CubeTensor::new_contiguous(
                policy.client.clone(),
                policy.device.clone(),
                Shape::new([len]),
                handle,
                DType::F32,
            )
        };
        (
            make(out.losses, n / 2),
            make(out.rewards, n),
            make(out.grads, n),
        )
    }
}

/// The masked row sum's VJP: the mask.
#[derive(Clone, Debug)]
struct MaskedRowSumVjp<B: Backend> {
    mask: FloatTensor<B>,
}

impl<B: PreferenceBackend> Vjp<B, 1> for MaskedRowSumVjp<B> {
    /// `∂/∂values[r, t] = mask[r, t] · g[r]`.
    fn vjp(self, grad: FloatTensor<B>, _wanted: [bool; 1]) -> [Option<FloatTensor<B>>; 1] {
        let mask = float::<B, 2>(self.mask);
        let [rows, _] = mask.dims();
        let g = float::<B, 1>(grad).reshape([rows, 1]);
        [Some(prim(mask * g))]
    }
}

/// The DPO pairs' VJP: the per-pair gradients `[2P]` the forward computed.
#[derive(Clone, Debug)]
struct DpoPairsVjp<B: Backend> {
    grads: FloatTensor<B>,
}

impl<B: PreferenceBackend> Vjp<B, 1> for DpoPairsVjp<B> {
    /// `∂/∂policy[s] = grads[s] · g[s mod P]`.
    fn vjp(self, grad: FloatTensor<B>, _wanted: [bool; 1]) -> [Option<FloatTensor<B>>; 1] {
        let g = float::<B, 1>(grad);
        let both = Tensor::cat(vec![g.clone(), g], 0);
        [Some(prim(float::<B, 1>(self.grads) * both))]
    }
}

impl<B: PreferenceBackend, C: CheckpointStrategy> PreferenceBackend for Autodiff<B, C> {
    fn masked_row_sum(values: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self> {
        let mask = <Self as AutodiffBackend>::inner(mask);
        let out = B::masked_row_sum(values.primitive.clone(), mask.clone());
        Tracked::<C>::op([&values], out, || MaskedRowSumVjp { mask })
    }

    fn dpo_pairs(
        policy: FloatTensor<Self>,
        reference: FloatTensor<Self>,
        settings: DpoSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let reference = <Self as AutodiffBackend>::inner(reference);
        let (losses, rewards, g) = B::dpo_pairs(policy.primitive.clone(), reference, settings);
        let rewards = <Self as AutodiffBackend>::from_inner(rewards);
        let g_out = <Self as AutodiffBackend>::from_inner(g.clone());
        let losses = Tracked::<C>::op([&policy], losses, || DpoPairsVjp { grads: g });
        (losses, rewards, g_out)
    }
}

/// The ops as custom ops on `Fusion<B>` ([`super::custom::fused`]).
impl<B: FusionBackend + PreferenceBackend> PreferenceBackend for Fusion<B> {
    fn masked_row_sum(values: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self> {
        let rows = values.shape[0];
        fused1::<B>(
            op_id("masked_row_sum", &[]),
            vec![values, mask],
            f32_out([rows]),
            |i| Prim::Float(B::masked_row_sum(i.float(), i.float())),
        )
    }

    fn dpo_pairs(
        policy: FloatTensor<Self>,
        reference: FloatTensor<Self>,
        settings: DpoSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let n = policy.shape[0];
        let s = settings;
        let [l, r, g] = fused_n::<B, 3>(
            op_id("dpo_pairs", &[&s.beta, &s.label_smoothing]),
            vec![policy, reference],
            [f32_out([n / 2]), f32_out([n]), f32_out([n])],
            move |i| {
                let (l, r, g) = B::dpo_pairs(i.float(), i.float(), s);
                [Prim::Float(l), Prim::Float(r), Prim::Float(g)]
            },
        );
        (l, r, g)
    }
}

/// The DPO loss of a batch and what it reports.
#[derive(Clone, Debug)]
pub struct DpoLoss<B: Backend> {
    /// The mean loss over pairs, `[1]` (differentiable).
    pub loss: Tensor<B, 1>,
    /// Per-pair losses `[P]`.
    pub losses: Tensor<B, 1>,
    /// Implicit rewards of the chosen responses `β (log π_c − log π_ref,c)`, `[P]`.
    pub chosen_rewards: Tensor<B, 1>,
    /// Implicit rewards of the rejected responses, `[P]`.
    pub rejected_rewards: Tensor<B, 1>,
    /// The policy's sequence log-probs `[2P]`, chosen then rejected.
    pub policy_logps: Tensor<B, 1>,
}

/// Stacks chosen and rejected batches (`[P, ..]` each) into `[2P, ..]`, chosen first: the layout
/// of [`dpo_loss`]. Fails if the batch sizes or the other dimensions differ.
pub fn concat_pairs<B: Backend, const D: usize>(
    chosen: Tensor<B, D>,
    rejected: Tensor<B, D>,
) -> Result<Tensor<B, D>, KernelError> {
    let (c, r) = (chosen.dims(), rejected.dims());
    if c[0] != r[0] {
        return Err(KernelError::BatchMismatch {
            what: "chosen vs rejected sequences",
            left: c[0],
            right: r[0],
        });
    }
    if c[1..] != r[1..] {
        return Err(KernelError::ShapeMismatch {
            what: "rejected vs chosen (beyond the batch dimension)",
            expected: c.to_vec(),
            got: r.to_vec(),
        });
    }
    Ok(Tensor::cat(vec![chosen, rejected], 0))
}

fn host_f32<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
    t.to_data()
        .convert::<f32>()
        .to_vec()
        .expect("converted to f32")
}

/// The DPO loss, fused: `logits [2P, T, V]` (chosen sequences first, see [`concat_pairs`]),
/// `targets [2P, T]`, `mask [2P, T]` (1 on response tokens), the reference's sequence log-probs
/// `reference_chosen [P]` and `reference_rejected [P]` (computed once, without gradient).
///
/// Validates: shapes and dtypes (and the device's buffer limit), an even number of sequences, the
/// mask rules (0/1, no all-zero row: "sequence 3 has no valid token"), finite reference log-probs,
/// the settings (`β > 0`, `ε ∈ [0, 0.5)`), ids in `[0, V)`. Reads the mask, the reference and the
/// ids back to do so; [`dpo_loss_unchecked`] skips that.
pub fn dpo_loss<B: PreferenceBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    reference_chosen: Tensor<B, 1>,
    reference_rejected: Tensor<B, 1>,
    settings: DpoSettings,
) -> Result<DpoLoss<B>, KernelError> {
    settings.validate()?;
    let problem = super::validate_shapes(&logits, &targets)?;
    let [s, t, _] = logits.dims();
    let [pc] = reference_chosen.dims();
    let [pr] = reference_rejected.dims();
    if pc != pr {
        return Err(KernelError::BatchMismatch {
            what: "reference chosen vs reference rejected log-probs",
            left: pc,
            right: pr,
        });
    }
    if s != 2 * pc {
        return Err(KernelError::BatchMismatch {
            what: "policy sequences (chosen + rejected) vs 2 × reference pairs",
            left: s,
            right: 2 * pc,
        });
    }
    if mask.dims() != [s, t] {
        return Err(KernelError::ShapeMismatch {
            what: "mask [2P, T] vs logits [2P, T, V]",
            expected: vec![s, t],
            got: mask.dims().to_vec(),
        });
    }
    check_f32("mask", mask.dtype())?;
    check_f32("reference log-probs", reference_chosen.dtype())?;
    check_f32("reference log-probs", reference_rejected.dtype())?;
    let shape = SeqShape::new(s, t)?;
    shape.check_mask(&host_f32(&mask))?;
    check_finite("reference chosen log-probs", &host_f32(&reference_chosen))?;
    check_finite(
        "reference rejected log-probs",
        &host_f32(&reference_rejected),
    )?;
    let ids: Vec<i64> = targets
        .to_data()
        .convert::<i64>()
        .to_vec()
        .expect("converted to i64");
    crate::token_logprob::check_targets(&ids, problem.vocab())?;
    Ok(dpo_loss_unchecked(
        logits,
        targets,
        mask,
        Tensor::cat(vec![reference_chosen, reference_rejected], 0),
        settings,
    ))
}

/// As [`dpo_loss`] without validation, with the reference log-probs stacked `[2P]` (chosen
/// first): the hot path for inputs known good. Three launches forward (token log-probs, row
/// sums, pairs) on the kernel backends; backward is the pair gradients times the mask, then the
/// token-logprob backward.
pub fn dpo_loss_unchecked<B: PreferenceBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    reference: Tensor<B, 1>,
    settings: DpoSettings,
) -> DpoLoss<B> {
    let lp = token_logprobs_unchecked(logits, targets);
    let policy = float::<B, 1>(B::masked_row_sum(prim(lp), prim(mask)));
    let (losses, rewards, _grads) = B::dpo_pairs(prim(policy.clone()), prim(reference), settings);
    finish(float(losses), float(rewards), policy)
}

fn finish<B: Backend>(
    losses: Tensor<B, 1>,
    rewards: Tensor<B, 1>,
    policy: Tensor<B, 1>,
) -> DpoLoss<B> {
    let [p] = losses.dims();
    DpoLoss {
        loss: losses.clone().mean(),
        losses,
        chosen_rewards: rewards.clone().slice(0..p),
        rejected_rewards: rewards.slice(p..2 * p),
        policy_logps: policy,
    }
}

/// What a burn user writes without the kernels (TRL's concatenated forward in burn ops):
/// `log_softmax(logits).gather(targets)`, masked sums, then the DPO loss in tensor ops, all
/// differentiated by burn's autodiff. Same inputs as [`dpo_loss_unchecked`]; no validation.
pub fn dpo_loss_composition<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    reference: Tensor<B, 1>,
    settings: DpoSettings,
) -> DpoLoss<B> {
    let [s, t, _] = logits.dims();
    let lp = log_softmax(logits, 2)
        .gather(2, targets.reshape([s, t, 1]))
        .reshape([s, t]);
    dpo_of_token_logprobs(lp, mask, reference, settings)
}

/// The rest of both compositions: masked sums of the per-token log-probs `lp [2P, T]`, then
/// the DPO loss in tensor ops.
fn dpo_of_token_logprobs<B: Backend>(
    lp: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    reference: Tensor<B, 1>,
    settings: DpoSettings,
) -> DpoLoss<B> {
    let [s, _] = lp.dims();
    let policy = (lp * mask).sum_dim(1).reshape([s]);
    let (losses, rewards, _grads) = composition_dpo_pairs(policy.clone(), reference, settings);
    finish(losses, rewards, policy)
}

/// [`dpo_loss_composition`] with the per-token log-probs formed as `x[t] − logsumexp(x)`
/// ([`super::token_logprobs_logsumexp`], TRL's `selective_log_softmax`): what a practitioner
/// writes for speed, the second baseline of the benchmarks.
pub fn dpo_loss_composition_logsumexp<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    reference: Tensor<B, 1>,
    settings: DpoSettings,
) -> DpoLoss<B> {
    let lp = super::token_logprobs_logsumexp(logits, targets);
    dpo_of_token_logprobs(lp, mask, reference, settings)
}

/// GAE as a burn user writes it without a kernel: a reverse loop over the `T` steps of
/// `rewards`, `values`, `mask` `[rows, T]` (mask 0/1) on the device, one column at a time,
/// carrying each row's next value and advantage across masked tokens as
/// [`crate::ppo::gae_host`] does: `A_t = r_t + γ·V_next − V_t + γλ·A_next` at valid tokens.
/// Returns `(advantages, returns = A + V)` `[rows, T]`, zero at masked tokens. The GAE
/// benchmark's device baseline.
pub fn gae_loop<B: Backend>(
    rewards: Tensor<B, 2>,
    values: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    gamma: f32,
    lambda: f32,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [rows, time] = rewards.dims();
    let device = rewards.device();
    let col = |x: &Tensor<B, 2>, t: usize| x.clone().slice([0..rows, t..t + 1]);
    let mut next_value = Tensor::<B, 2>::zeros([rows, 1], &device);
    let mut next_adv = Tensor::<B, 2>::zeros([rows, 1], &device);
    let mut columns = Vec::with_capacity(time);
    for t in (0..time).rev() {
        let (r, v, m) = (col(&rewards, t), col(&values, t), col(&mask, t));
        let keep = m.clone().neg().add_scalar(1.0);
        let a = (r + next_value.clone().mul_scalar(gamma) - v.clone()
            + next_adv.clone().mul_scalar(gamma * lambda))
            * m.clone();
        next_value = v * m + next_value * keep.clone();
        next_adv = a.clone() + next_adv * keep;
        columns.push(a);
    }
    columns.reverse();
    let advantages = Tensor::cat(columns, 1);
    let returns = (advantages.clone() + values) * mask;
    (advantages, returns)
}
