//! [`DoraBackend`] on `Autodiff<B, C>`: the handwritten backward of the norms (Eq. 6), the epilogue and the whole layer, as VJPs ([`Vjp`]).

use super::*;
use crate::burn_ops::custom::{Tracked, Vjp};

/// The exact gradient of the column norms: with `u = ∂L/∂c / max(c, ε)` and `V = W0 + s A B`,
/// `∂L/∂V = V ⊙ u` (column-wise), so `∂L/∂A = s (W0 ⊙ u) Bᵀ + s² A ((B ⊙ u) Bᵀ)` and
/// `∂L/∂B = s (Aᵀ W0) ⊙ u + s² (Aᵀ A)(B ⊙ u)`: GEMMs of size `d_in·d_out·r`, `V` never formed
/// (only `∂L/∂W0`, when `W0` is tracked, materialises it). Parents `W0, A, B`.
#[derive(Clone, Debug)]
pub(super) struct NormsVjp<B: Backend> {
    w0: FloatTensor<B>,
    a: FloatTensor<B>,
    b: FloatTensor<B>,
    /// The forward's norms `c [d_out]`.
    c: FloatTensor<B>,
    s: f32,
}

impl<B: DoraBackend> Vjp<B, 3> for NormsVjp<B> {
    fn vjp(self, grad: FloatTensor<B>, wanted: [bool; 3]) -> [Option<FloatTensor<B>>; 3] {
        let [want_w0, want_a, want_b] = wanted;
        let s = self.s;
        let (w0, a, b) = (
            float::<B, 2>(self.w0),
            float::<B, 2>(self.a),
            float::<B, 2>(self.b),
        );
        let c = float::<B, 1>(self.c);
        let [d_out] = c.dims();
        let u = (float::<B, 1>(grad) / c.clamp_min(NORM_EPS)).reshape([1, d_out]);
        let dw0 = want_w0.then(|| {
            let v = w0.clone() + a.clone().matmul(b.clone()).mul_scalar(s);
            prim(v * u.clone())
        });
        let da = want_a.then(|| {
            let bu = b.clone() * u.clone();
            prim(
                (w0.clone() * u.clone())
                    .matmul(b.clone().transpose())
                    .mul_scalar(s)
                    + a.clone()
                        .matmul(bu.matmul(b.clone().transpose()))
                        .mul_scalar(s * s),
            )
        });
        let db = want_b.then(|| {
            let at = a.clone().transpose();
            prim(
                at.clone().matmul(w0).mul_scalar(s) * u.clone()
                    + at.matmul(a).matmul(b * u).mul_scalar(s * s),
            )
        });
        [dw0, da, db]
    }
}

/// What the epilogue's backward gives: `∂L/∂z [n, d_out]` (`dy ⊙ g`, or `dy`), `∂L/∂xa =
/// s ∂L/∂z Bᵀ [n, r]`, `∂L/∂B = s xaᵀ ∂L/∂z` (when asked) and `∂L/∂g` (scaled only).
pub(super) struct EpilogueGrads<B: Backend> {
    dz: Tensor<B, 2>,
    dxa: Tensor<B, 2>,
    db: Option<Tensor<B, 2>>,
    dg: Option<FloatTensor<B>>,
}

pub(super) fn epilogue_grads<B: DoraBackend>(
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

/// The adapted layer's state and VJP: `∂L/∂A = xᵀ ∂L/∂xa`, `∂L/∂x = [∂L/∂z | ∂L/∂xa]
/// [W0 | A]ᵀ` (one GEMM), `∂L/∂W0 = xᵀ ∂L/∂z` (only when tracked), `∂L/∂B`, `∂L/∂g` from the
/// epilogue's backward. Parents `x, W0, A, B, g` (DoRA) or `x, W0, A, B` (LoRA).
#[derive(Clone, Debug)]
pub(super) struct LayerVjp<B: Backend> {
    x: FloatTensor<B>,
    w0: FloatTensor<B>,
    a: FloatTensor<B>,
    b: FloatTensor<B>,
    g: Option<FloatTensor<B>>,
    /// The forward's `[x W0 | x A]` `[n, d_out + r]`.
    both: FloatTensor<B>,
    s: f32,
}

impl<B: DoraBackend> Vjp<B, 5> for LayerVjp<B> {
    fn vjp(self, dy: FloatTensor<B>, wanted: [bool; 5]) -> [Option<FloatTensor<B>>; 5] {
        let [want_x, want_w0, want_a, want_b, _] = wanted;
        let e = epilogue_grads::<B>(dy, self.both, self.b, self.g, self.s, want_b);
        let x = float::<B, 2>(self.x);
        let dx = want_x.then(|| {
            let dboth = Tensor::cat(vec![e.dz.clone(), e.dxa.clone()], 1);
            let wa = Tensor::cat(vec![float::<B, 2>(self.w0), float(self.a)], 1);
            prim(dboth.matmul(wa.transpose()))
        });
        let dw0 = want_w0.then(|| prim(x.clone().transpose().matmul(e.dz)));
        let da = want_a.then(|| prim(x.transpose().matmul(e.dxa)));
        [dx, dw0, da, e.db.map(prim), e.dg]
    }
}

impl<B: DoraBackend> Vjp<B, 4> for LayerVjp<B> {
    fn vjp(self, dy: FloatTensor<B>, wanted: [bool; 4]) -> [Option<FloatTensor<B>>; 4] {
        let [x, w0, a, b] = wanted;
        let [dx, dw0, da, db, _] = Vjp::<B, 5>::vjp(self, dy, [x, w0, a, b, false]);
        [dx, dw0, da, db]
    }
}

/// The epilogue's own state and VJP, for merges under autodiff (parents `both, B, g`):
/// `∂L/∂both = [∂L/∂z | ∂L/∂xa]`.
#[derive(Clone, Debug)]
pub(super) struct EpilogueVjp<B: Backend> {
    both: FloatTensor<B>,
    b: FloatTensor<B>,
    g: Option<FloatTensor<B>>,
    s: f32,
}

impl<B: DoraBackend> Vjp<B, 3> for EpilogueVjp<B> {
    fn vjp(self, dy: FloatTensor<B>, wanted: [bool; 3]) -> [Option<FloatTensor<B>>; 3] {
        let [want_both, want_b, _] = wanted;
        let e = epilogue_grads::<B>(dy, self.both, self.b, self.g, self.s, want_b);
        let dboth = want_both.then(|| prim(Tensor::cat(vec![e.dz, e.dxa], 1)));
        [dboth, e.db.map(prim), e.dg]
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
        Tracked::<C>::op([&w0, &a, &b], out.clone(), || NormsVjp {
            w0: w0.primitive.clone(),
            a: a.primitive.clone(),
            b: b.primitive.clone(),
            c: out,
            s: scale,
        })
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
        // B stands in for a missing g (LoRA): the VJP returns no gradient there.
        let g_parent = g.as_ref().unwrap_or(&b);
        Tracked::<C>::op([&both, &b, g_parent], out, || EpilogueVjp {
            both: both.primitive.clone(),
            b: b.primitive.clone(),
            g: g.as_ref().map(|g| g.primitive.clone()),
            s: scale,
        })
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
        // The backward reads `both`: ask for it when any input is tracked.
        let tracked_any = Tracked::<C>::any(&[&x, &w0, &a, &b])
            || g.as_ref().is_some_and(|g| Tracked::<C>::any(&[g]));
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
        let (y, both) = forward(tracked_any || keep_both);
        let both_out = both.clone().map(<Self as AutodiffBackend>::from_inner);
        let state = || LayerVjp {
            x: x.primitive.clone(),
            w0: w0.primitive.clone(),
            a: a.primitive.clone(),
            b: b.primitive.clone(),
            g: g.as_ref().map(|g| g.primitive.clone()),
            // Tracked without `both` (no input looked tracked): run the forward again for it.
            both: both
                .clone()
                .or_else(|| forward(true).1)
                .expect("adapted_forward returns both when asked"),
            s: scale,
        };
        let y = match &g {
            Some(g) => Tracked::<C>::op([&x, &w0, &a, &b, g], y, state),
            None => Tracked::<C>::op([&x, &w0, &a, &b], y, state),
        };
        (y, both_out)
    }
}
