//! The [`DoraBackend`] trait, the tensor-op compositions, and the trait on `Flex` (the compositions).

use super::*;

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
pub(super) fn split<B: Backend>(both: Tensor<B, 2>, d_out: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
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
