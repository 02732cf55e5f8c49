//! The validated entry points ([`lora_linear`], [`dora_linear`], the norms, merges) and the baselines a burn user writes.

use super::*;

/// Which gradient DoRA's column norm gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormGrad {
    /// Treat `‖V‖_c` as a constant (Sec. 4.3, Eq. 11): `∇_V L = (m / C) ∇_{W'} L`. The paper's
    /// choice for every experiment; no gradient flows through the norm.
    #[default]
    Detached,
    /// The exact gradient through the norm (Eq. 6).
    Exact,
}

pub(super) fn spec_check<B: Backend>(
    spec: &AdapterSpec,
    x: Option<&Tensor<B, 2>>,
    w0: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    b: &Tensor<B, 2>,
    m: Option<&Tensor<B, 1>>,
) -> Result<(), KernelError> {
    spec.check_shapes(
        x.map(|x| x.dims()),
        w0.dims(),
        a.dims(),
        b.dims(),
        m.map(|m| m.dims()),
    )?;
    for (what, dtype) in [
        ("base weight W0", Some(w0.dtype())),
        ("adapter A", Some(a.dtype())),
        ("adapter B", Some(b.dtype())),
        ("input x", x.map(|x| x.dtype())),
        ("magnitude m", m.map(|m| m.dtype())),
    ] {
        if let Some(dtype) = dtype {
            check_f32(what, dtype)?;
        }
    }
    Ok(())
}

/// The fused LoRA layer `y = x W0 + s (x A) B` (`s = spec.scale()`): two backend GEMMs (`x W0`,
/// `x A`) and one epilogue; `A B` is never formed. Checks shapes and dtypes against `spec`
/// (dimensions only: no device read).
pub fn lora_linear<B: DoraBackend>(
    spec: &AdapterSpec,
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, Some(&x), &w0, &a, &b, None)?;
    let (y, _) = B::adapted_forward(
        prim(x),
        prim(w0),
        prim(a),
        prim(b),
        None,
        spec.scale(),
        false,
    );
    Ok(float(y))
}

/// `t` cut from the autodiff graph and not requiring a gradient: what the detached norm (Eq. 11)
/// reads. `detach` alone keeps a leaf's `require_grad` (burn 0.21), so an op on detached
/// parameters stays tracked: the norms' backward then computed the exact gradient for fresh
/// leaves nobody reads, 20–25 ms of a 0.5 s training step at the benchmark shape on lavapipe.
pub fn untracked<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    t.detach().set_require_grad(false)
}

/// The DoRA gain `g = m / max(c, ε)` `[d_out]`.
pub fn dora_gain<B: Backend>(m: Tensor<B, 1>, norms: Tensor<B, 1>) -> Tensor<B, 1> {
    m / norms.clamp_min(NORM_EPS)
}

/// Column norms `c [d_out]` of `V = W0 + s A B`, fused (no floor): differentiable with respect
/// to `W0`, `A`, `B` (the exact gradient; detach the inputs for the detached one).
pub fn dora_column_norms<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 1>, KernelError> {
    spec_check(spec, None, &w0, &a, &b, None)?;
    Ok(float(B::dora_column_norms(
        prim(w0),
        prim(a),
        prim(b),
        spec.scale(),
    )))
}

/// The fused DoRA layer `y = (x W0 + s (x A) B) ⊙ m / max(‖W0 + s A B‖_c, ε)` (Eq. 5): the
/// backend's GEMMs for `x W0` and `x A`, one fused pass for the column norms (over `W0`, with
/// `(A B)[i, j]` recomputed, never stored), one epilogue. `norm` picks the detached (Eq. 11) or
/// exact (Eq. 6) gradient; `∂L/∂m` is Eq. 7 either way.
#[allow(clippy::too_many_arguments)]
pub fn dora_linear<B: DoraBackend>(
    spec: &AdapterSpec,
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    norm: NormGrad,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, Some(&x), &w0, &a, &b, Some(&m))?;
    let s = spec.scale();
    let norms = match norm {
        NormGrad::Detached => B::dora_column_norms(
            prim(untracked(w0.clone())),
            prim(untracked(a.clone())),
            prim(untracked(b.clone())),
            s,
        ),
        NormGrad::Exact => {
            B::dora_column_norms(prim(w0.clone()), prim(a.clone()), prim(b.clone()), s)
        }
    };
    let g = dora_gain(m, float(norms));
    let (y, _) = B::adapted_forward(prim(x), prim(w0), prim(a), prim(b), Some(prim(g)), s, false);
    Ok(float(y))
}

/// Merges a DoRA adapter into one weight: `(W' [d_in, d_out], c [d_out])` with
/// `W' = (W0 + s A B) ⊙ m / max(c, ε)` (one fused pass after the norms); keep `c` to unmerge.
pub fn dora_merge<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
) -> Result<(Tensor<B, 2>, Tensor<B, 1>), KernelError> {
    spec_check(spec, None, &w0, &a, &b, Some(&m))?;
    let s = spec.scale();
    let norms: Tensor<B, 1> = float(B::dora_column_norms(
        prim(w0.clone()),
        prim(a.clone()),
        prim(b.clone()),
        s,
    ));
    let g = dora_gain(m, norms.clone());
    let both = Tensor::cat(vec![w0, a], 1);
    let merged = float(B::lora_epilogue(prim(both), prim(b), Some(prim(g)), s));
    Ok((merged, norms))
}

/// Recovers `W0 = W' ⊙ max(c, ε) / m − s A B` from a merged weight and the norms [`dora_merge`]
/// returned. Fails on a zero magnitude (the column's direction is lost).
pub fn dora_unmerge<B: DoraBackend>(
    spec: &AdapterSpec,
    merged: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    norms: Tensor<B, 1>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &merged, &a, &b, Some(&m))?;
    let host: Vec<f32> = m.to_data().convert::<f32>().to_vec().expect("f32");
    if let Some(j) = host.iter().position(|&v| v == 0.0 || !v.is_finite()) {
        return Err(KernelError::InvalidSetting {
            what: "DoRA magnitude to unmerge",
            value: format!("{} at column {j}", host[j]),
            expected: "non-zero finite magnitudes (a zero column cannot be unmerged)",
        });
    }
    let [d_out] = norms.dims();
    let undo = (norms.clamp_min(NORM_EPS) / m).reshape([1, d_out]);
    let both = Tensor::cat(vec![merged * undo, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        -spec.scale(),
    )))
}

/// Merges a LoRA adapter: `W0 + s A B` (one fused pass).
pub fn lora_merge<B: DoraBackend>(
    spec: &AdapterSpec,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &w0, &a, &b, None)?;
    let both = Tensor::cat(vec![w0, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        spec.scale(),
    )))
}

/// Undoes [`lora_merge`]: `W' − s A B`.
pub fn lora_unmerge<B: DoraBackend>(
    spec: &AdapterSpec,
    merged: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, KernelError> {
    spec_check(spec, None, &merged, &a, &b, None)?;
    let both = Tensor::cat(vec![merged, a], 1);
    Ok(float(B::lora_epilogue(
        prim(both),
        prim(b),
        None,
        -spec.scale(),
    )))
}

/// LoRA as a burn user writes it: `x W0 + ((x A) B) · s`, differentiated by burn's autodiff.
pub fn lora_linear_composition<B: Backend>(
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scale: f32,
) -> Tensor<B, 2> {
    x.clone().matmul(w0) + x.matmul(a).matmul(b).mul_scalar(scale)
}

/// DoRA as PEFT computes it, in burn ops (`peft/tuners/lora/dora.py`, transposed to burn's
/// layout): `W = W0 + s A B` materialised, `c = ‖W‖_c` (from untracked inputs when detached,
/// as PEFT's `lora_weight.detach()`), `g = m / max(c, ε)`,
/// `y = base + (g − 1) ⊙ base + g ⊙ s (x A) B` with `base = x W0`. The unfused baseline and the
/// oracle of the fused path.
pub fn dora_linear_peft<B: Backend>(
    x: Tensor<B, 2>,
    w0: Tensor<B, 2>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    m: Tensor<B, 1>,
    scale: f32,
    norm: NormGrad,
) -> Tensor<B, 2> {
    let [_, d_out] = w0.dims();
    // PEFT builds the detached norm from `lora_weight.detach()`: the autodiff graph then keeps
    // no `W` for it. Computing `W` from the tracked `A`, `B` and detaching only `c` would keep
    // `W` (saved by `powi`) alive until the backward pass, as much memory as the exact form.
    let c = match norm {
        NormGrad::Detached => {
            let (w0, a, b) = (
                untracked(w0.clone()),
                untracked(a.clone()),
                untracked(b.clone()),
            );
            (w0 + a.matmul(b).mul_scalar(scale))
                .powi_scalar(2)
                .sum_dim(0)
                .sqrt()
        }
        NormGrad::Exact => (w0.clone() + a.clone().matmul(b.clone()).mul_scalar(scale))
            .powi_scalar(2)
            .sum_dim(0)
            .sqrt(),
    };
    let g = (m.reshape([1, d_out]) / c.clamp_min(NORM_EPS)).reshape([1, d_out]);
    let base = x.clone().matmul(w0);
    let lora = x.matmul(a).matmul(b).mul_scalar(scale);
    base.clone() + (g.clone() - 1.0) * base + g * lora
}
