//! [`DoraBackend`] on `Autodiff<B, C>`: the handwritten backward of the norms (Eq. 6), the epilogue and the whole layer.

use super::*;

/// The exact gradient of the column norms: with `u = ∂L/∂c / max(c, ε)` and `V = W0 + s A B`,
/// `∂L/∂V = V ⊙ u` (column-wise), so `∂L/∂A = s (W0 ⊙ u) Bᵀ + s² A ((B ⊙ u) Bᵀ)` and
/// `∂L/∂B = s (Aᵀ W0) ⊙ u + s² (Aᵀ A)(B ⊙ u)`: GEMMs of size `d_in·d_out·r`, `V` never formed
/// (only `∂L/∂W0`, when `W0` is tracked, materialises it).
#[derive(Debug)]
pub(super) struct NormsGrad;

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

/// State of the layer's backward: `(x, W0, A, B, g, both, s)`.
pub(super) type LayerState<B> = (
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
pub(super) fn layer_backward<B: DoraBackend>(
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
pub(super) struct DoraLayerGrad;

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
pub(super) struct LoraLayerGrad;

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
pub(super) struct EpilogueGrad;

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
