//! [`DoraBackend`] on `CubeBackend`: the cubecl kernels of [`crate::dora`].

use super::*;

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

pub(super) fn contiguous_f32<R: CubeRuntime>(t: CubeTensor<R>) -> CubeTensor<R> {
    check_f32("LoRA/DoRA operand", t.dtype).expect("the entry points validate the dtype");
    burn_cubecl::kernel::into_contiguous(t)
}

pub(super) fn tensor_like<R: CubeRuntime, const D: usize>(
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
