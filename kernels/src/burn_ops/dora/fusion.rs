//! The layers as custom ops on `Fusion<B>` ([`crate::burn_ops::custom::fused`]), each with the
//! scale in its op id.

use super::DoraBackend;
use crate::burn_ops::custom::{Prim, f32_out, fused, fused_n, fused1, op_id};
use burn::tensor::ops::FloatTensor;
use burn_fusion::{Fusion, FusionBackend};

impl<B: FusionBackend + DoraBackend> DoraBackend for Fusion<B> {
    fn dora_column_norms(
        w0: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let d_out = w0.shape[1];
        fused1::<B>(
            op_id("dora_column_norms", &[&scale]),
            vec![w0, a, b],
            f32_out([d_out]),
            move |i| Prim::Float(B::dora_column_norms(i.float(), i.float(), i.float(), scale)),
        )
    }

    fn lora_epilogue(
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Option<FloatTensor<Self>>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let shape = f32_out([both.shape[0], b.shape[1]]);
        match g {
            Some(g) => fused1::<B>(
                op_id("dora_epilogue", &[&scale]),
                vec![both, b, g],
                shape,
                move |i| {
                    let (both, b, g) = (i.float(), i.float(), i.float());
                    Prim::Float(B::lora_epilogue(both, b, Some(g), scale))
                },
            ),
            None => fused1::<B>(
                op_id("lora_epilogue", &[&scale]),
                vec![both, b],
                shape,
                move |i| Prim::Float(B::lora_epilogue(i.float(), i.float(), None, scale)),
            ),
        }
    }

    fn dora_epilogue_backward(
        dy: FloatTensor<Self>,
        both: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [n, d_out] = dy.shape.dims::<2>();
        let [dz, dg] = fused_n::<B, 2>(
            op_id("dora_epilogue_backward", &[&scale]),
            vec![dy, both, b, g],
            [f32_out([n, d_out]), f32_out([d_out])],
            move |i| {
                let (dz, dg) =
                    B::dora_epilogue_backward(i.float(), i.float(), i.float(), i.float(), scale);
                [Prim::Float(dz), Prim::Float(dg)]
            },
        );
        (dz, dg)
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
        let shapes = [f32_out([n, d_out]), f32_out([n, d_out + rank])];
        let shapes = &shapes[..if keep_both { 2 } else { 1 }];
        let dora = g.is_some();
        let name = match (dora, keep_both) {
            (true, true) => "dora_layer+both",
            (true, false) => "dora_layer",
            (false, true) => "lora_layer+both",
            (false, false) => "lora_layer",
        };
        // g last: the body reads the inputs in order.
        let inputs = [x, w0, a, b].into_iter().chain(g).collect();
        let mut out = fused::<B>(op_id(name, &[&scale]), inputs, shapes, move |i| {
            let (x, w0, a, b) = (i.float(), i.float(), i.float(), i.float());
            let g = dora.then(|| i.float());
            let (y, both) = B::adapted_forward(x, w0, a, b, g, scale, keep_both);
            [Some(y), both]
                .into_iter()
                .flatten()
                .map(Prim::Float)
                .collect()
        });
        let both = keep_both.then(|| out.pop().expect("two outputs"));
        (out.pop().expect("an output"), both)
    }
}
