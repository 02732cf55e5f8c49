//! The layers as custom ops on `Fusion<B>`: each registered with its parameters in the op id.

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
                let (y, both) = B::adapted_forward(next(), next(), next(), next(), None, s, keep);
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
