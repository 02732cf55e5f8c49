//! The one custom-op layer: how an op of this crate joins burn's `Fusion` stream and `Autodiff`
//! graph, written once, so each op states only what differs.
//!
//! - **Fusion.** [`fused`] registers one custom op with a `Fusion<B>` stream: its name and
//!   parameters (both part of the op id, so two ops that differ only in a parameter are never
//!   taken for one another), its inputs in the order the body reads them, its outputs' shapes and
//!   dtypes, and the body: the one call to the inner backend `B`. The op is a fusion barrier:
//!   its neighbours fuse separately.
//! - **Autodiff.** [`Tracked::op`] makes a primitive computed on the inner backend the output of a
//!   tracked op with `N` parents. The state its backward needs is built lazily: only when some
//!   parent is tracked, otherwise the output passes through untracked. The backward is a
//!   vector–Jacobian product, [`Vjp::vjp`], which gets the output's gradient and which parents
//!   want one, and returns one gradient per parent. An op with several outputs tracks one of
//!   them; the others are constants of the graph (`from_inner`).
//!
//! Invariant: a body or a VJP runs on the inner backend `B` only, so an op is never
//! differentiated twice and a fused op never re-enters the stream that runs it.

use std::fmt::{self, Debug, Display};
use std::marker::PhantomData;
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Shape};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

/// A float or int primitive of backend `B`: what a fused op's body returns, in output order.
pub enum Prim<B: Backend> {
    /// A float tensor (f32 everywhere in this crate).
    Float(FloatTensor<B>),
    /// An int tensor (ids, or the u32 index buffers of the MoE dispatch).
    Int(IntTensor<B>),
}

/// The inputs of a fused op while it runs, read in the order they were registered.
pub struct Inputs<'a, B: FusionBackend> {
    handles: &'a mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    irs: std::slice::Iter<'a, TensorIr>,
}

impl<B: FusionBackend> Inputs<'_, B> {
    fn next_ir(&mut self) -> &TensorIr {
        self.irs
            .next()
            .expect("a fused op's body reads no more inputs than were registered")
    }

    /// The next input, a float tensor.
    pub fn float(&mut self) -> FloatTensor<B> {
        let ir = self.next_ir().clone();
        self.handles.get_float_tensor::<B>(&ir)
    }

    /// The next input, an int tensor.
    pub fn int(&mut self) -> IntTensor<B> {
        let ir = self.next_ir().clone();
        self.handles.get_int_tensor::<B>(&ir)
    }
}

type Body<B> = Arc<dyn Fn(&mut Inputs<'_, B>) -> Vec<Prim<B>> + Send + Sync>;

/// The one `Operation` type of this crate's fused ops.
struct CustomOp<B: FusionBackend> {
    desc: CustomOpIr,
    body: Body<B>,
}

impl<B: FusionBackend> Debug for CustomOp<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomOp")
            .field("id", &self.desc.id)
            .finish()
    }
}

impl<B: FusionBackend> Operation<B::FusionRuntime> for CustomOp<B> {
    fn execute(
        &self,
        handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    ) {
        let outputs = {
            let mut inputs = Inputs::<B> {
                handles: &mut *handles,
                irs: self.desc.inputs.iter(),
            };
            (self.body)(&mut inputs)
        };
        assert_eq!(
            outputs.len(),
            self.desc.outputs.len(),
            "fused op {} returned a different number of outputs than it registered",
            self.desc.id
        );
        for (ir, out) in self.desc.outputs.iter().zip(outputs) {
            match out {
                Prim::Float(t) => handles.register_float_tensor::<B>(&ir.id, t),
                Prim::Int(t) => handles.register_int_tensor::<B>(&ir.id, t),
            }
        }
    }
}

/// The op id: `name`, or `name[p0,p1,…]` with its parameters.
pub fn op_id(name: &str, params: &[&dyn Display]) -> String {
    if params.is_empty() {
        return name.to_string();
    }
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    format!("{name}[{}]", params.join(","))
}

/// Registers one custom op on `Fusion<B>`'s stream and returns its outputs.
///
/// - `id`: the op's name with its parameters ([`op_id`]);
/// - `inputs`: the tensors `body` reads, in order (float or int: [`Inputs`] reads them by kind);
/// - `outputs`: each output's shape and dtype, in the order `body` returns them;
/// - `body`: the call to the inner backend `B`, run when the stream executes the op.
pub fn fused<B: FusionBackend>(
    id: String,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: &[(Vec<usize>, DType)],
    body: impl Fn(&mut Inputs<'_, B>) -> Vec<Prim<B>> + Send + Sync + 'static,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let client = inputs
        .first()
        .expect("a fused op has at least one input")
        .client
        .clone();
    let streams = OperationStreams::with_inputs(inputs.iter());
    let outputs = outputs
        .iter()
        .map(|(shape, dtype)| {
            TensorIr::uninit(
                client.create_empty_handle(),
                Shape::from(shape.clone()),
                *dtype,
            )
        })
        .collect();
    let desc = CustomOpIr {
        id,
        inputs: inputs.into_iter().map(FusionTensor::into_ir).collect(),
        outputs,
    };
    let op = CustomOp::<B> {
        desc: desc.clone(),
        body: Arc::new(body),
    };
    client.register(streams, OperationIr::Custom(desc), op)
}

/// [`fused`] for an op with one output.
pub fn fused1<B: FusionBackend>(
    id: String,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    output: (Vec<usize>, DType),
    body: impl Fn(&mut Inputs<'_, B>) -> Prim<B> + Send + Sync + 'static,
) -> FusionTensor<B::FusionRuntime> {
    let mut out = fused::<B>(id, inputs, &[output], move |i| vec![body(i)]);
    out.pop().expect("one output was registered")
}

/// [`fused`] for an op with `K` outputs, as an array.
pub fn fused_n<B: FusionBackend, const K: usize>(
    id: String,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: [(Vec<usize>, DType); K],
    body: impl Fn(&mut Inputs<'_, B>) -> [Prim<B>; K] + Send + Sync + 'static,
) -> [FusionTensor<B::FusionRuntime>; K] {
    let out = fused::<B>(id, inputs, &outputs, move |i| body(i).into());
    out.try_into()
        .unwrap_or_else(|_| unreachable!("{K} outputs were registered"))
}

/// The output shape of an f32 tensor of `Fusion<B>`, for [`fused`]'s `outputs`.
pub fn f32_out(shape: impl Into<Vec<usize>>) -> (Vec<usize>, DType) {
    (shape.into(), DType::F32)
}

/// The backward of a tracked op as a vector–Jacobian product: the state the op keeps, and how the
/// output's gradient becomes its `N` parents' gradients.
pub trait Vjp<B: Backend, const N: usize>: Clone + Send + Debug + 'static {
    /// `grad`: the gradient of the op's tracked output (its shape); `wanted[i]`: whether parent
    /// `i` is tracked. Returns one gradient per parent, in the parents' shapes; `None` where not
    /// wanted (a `Some` for an untracked parent is dropped).
    fn vjp(self, grad: FloatTensor<B>, wanted: [bool; N]) -> [Option<FloatTensor<B>>; N];
}

/// The one `Backward` type of this crate's ops: runs the state's [`Vjp`].
#[derive(Debug)]
struct VjpBackward<S>(PhantomData<S>);

impl<B: Backend, const N: usize, S: Vjp<B, N>> Backward<B, N> for VjpBackward<S> {
    type State = S;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let out = ops.state.vjp(grad, wanted);
        for (parent, grad) in ops.parents.into_iter().zip(out) {
            if let (Some(parent), Some(grad)) = (parent, grad) {
                grads.register::<B>(parent.id, grad);
            }
        }
    }
}

/// Tracked ops of `Autodiff<_, C>` (the checkpoint strategy named once, the rest inferred):
/// `Tracked::<C>::op(parents, out, state)`.
pub struct Tracked<C>(PhantomData<C>);

impl<C: CheckpointStrategy> Tracked<C> {
    /// Makes `out`, computed on the inner backend from `parents`' primitives, the output of a
    /// tracked op. `state` runs only when some parent is tracked; otherwise `out` passes through
    /// untracked. A parent may be listed twice (an absent optional input is stood in for by
    /// another parent; its VJP then returns `None` there).
    pub fn op<B: Backend, const N: usize, S: Vjp<B, N>>(
        parents: [&FloatTensor<Autodiff<B, C>>; N],
        out: FloatTensor<B>,
        state: impl FnOnce() -> S,
    ) -> FloatTensor<Autodiff<B, C>> {
        let nodes = parents.map(|p| p.node.clone());
        match VjpBackward::<S>(PhantomData)
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    /// Whether any of `parents` is tracked (its gradient is required somewhere).
    pub fn any<B: Backend>(parents: &[&FloatTensor<Autodiff<B, C>>]) -> bool {
        parents.iter().any(|p| !p.node.requirement.is_none())
    }
}
