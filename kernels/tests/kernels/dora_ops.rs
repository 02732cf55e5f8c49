//! The LoRA/DoRA layers on burn (`lora_linear`, `dora_linear`, merge/unmerge) on every backend
//! they are implemented for (Flex: the composition; CubeBackend and fused Wgpu: the kernels
//! `column_norms`, `epilogue`, `epilogue_backward`; Autodiff of each: the handwritten backward),
//! against the f64 references of `claimbench_kernels::dora` (the merged weight `W'`, and the
//! paper's closed-form gradients: Eq. 7 for `m`, Eq. 11 detached and Eq. 6 exact for `A`, `B`)
//! and against burn's autodiff of PEFT's unfused composition; plus the exactness checks of the
//! paper's toy plan (output at init equals the base; merged equals unmerged) and the validation
//! errors (rank 0, rank > min(d_in, d_out), α ≤ 0, shape mismatches).

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{
    DoraBackend, NormGrad, dora_linear, dora_linear_peft, dora_merge, dora_unmerge,
    gemm_then_epilogue, lora_linear, lora_linear_composition, lora_merge, lora_unmerge, untracked,
};
use claimbench_kernels::dora::{AdapterSpec, Grads, HostAdapter};
use claimbench_kernels::testing::{GemmPrecision, assert_close, client_or_skip, uniform};

use crate::sequences::f32s;

pub(crate) type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

pub(crate) fn has_wgpu() -> bool {
    client_or_skip::<cubecl::wgpu::WgpuRuntime>("dora ops wgpu tests").is_some()
}

/// `(n, d_in, d_out, r)`: all ones; odd sizes; sizes off the 64-column cube and the 64-row chunk;
/// one output column; many columns with r = 16; over 1024 rows (several chunks, a ragged last).
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (5, 3, 7, 1),
    (130, 65, 33, 4),
    (3, 130, 1, 1),
    (300, 64, 257, 16),
    (1100, 300, 520, 8),
];

pub(crate) struct Case {
    pub(crate) spec: AdapterSpec,
    pub(crate) n: usize,
    pub(crate) x: Vec<f32>,
    pub(crate) w0: Vec<f32>,
    pub(crate) a: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) m: Vec<f32>,
    pub(crate) dy: Vec<f32>,
}

impl Case {
    /// Seeded inputs with a trained-looking adapter (`B ≠ 0`, `m ≠ ‖W0‖`), `α = 1.5 r`.
    pub(crate) fn new(n: usize, d_in: usize, d_out: usize, rank: usize, seed: u64) -> Self {
        let spec = AdapterSpec {
            d_in,
            d_out,
            rank,
            alpha: 1.5 * rank as f32,
        };
        let scaled = |len, s: f32, seed| -> Vec<f32> {
            uniform(len, seed).into_iter().map(|v| v * s).collect()
        };
        let w0 = scaled(d_in * d_out, 0.5, seed);
        let a = scaled(d_in * rank, 0.5, seed + 1);
        let b = scaled(rank * d_out, 0.3, seed + 2);
        let mut c = Case {
            spec,
            n,
            x: uniform(n * d_in, seed + 3),
            w0,
            a,
            b,
            m: Vec::new(),
            dy: uniform(n * d_out, seed + 4),
        };
        let norms = c.host().column_norms_reference();
        c.m = norms
            .iter()
            .zip(uniform(d_out, seed + 5))
            .map(|(&c, u)| (c * (1.0 + 0.3 * u as f64)) as f32)
            .collect();
        c
    }

    fn host(&self) -> HostAdapter<'_> {
        HostAdapter {
            spec: self.spec,
            w0: &self.w0,
            a: &self.a,
            b: &self.b,
            m: &self.m,
        }
    }

    fn what(&self) -> String {
        let s = self.spec;
        format!("n={} {}×{} r={}", self.n, s.d_in, s.d_out, s.rank)
    }
}

pub(crate) fn t2<B: Backend>(v: &[f32], shape: [usize; 2]) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

pub(crate) fn t1<B: Backend>(v: &[f32]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// What a layer computed: output and gradients (`dm` empty for LoRA).
struct Got {
    y: Vec<f32>,
    grads: [Vec<f32>; 4],
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layer {
    Lora,
    LoraComposition,
    Dora(NormGrad),
    DoraPeft(NormGrad),
}

/// Runs a layer under autodiff with `L = Σ y ⊙ dy` (so `∂L/∂y = dy`); `W0` is frozen.
fn run<B: DoraBackend>(c: &Case, layer: Layer) -> Got {
    let s = c.spec;
    let x = t2::<Autodiff<B>>(&c.x, [c.n, s.d_in]).require_grad();
    let w0 = t2::<Autodiff<B>>(&c.w0, [s.d_in, s.d_out]);
    let a = t2::<Autodiff<B>>(&c.a, [s.d_in, s.rank]).require_grad();
    let b = t2::<Autodiff<B>>(&c.b, [s.rank, s.d_out]).require_grad();
    let m = t1::<Autodiff<B>>(&c.m).require_grad();
    let (xi, ai, bi, mi) = (x.clone(), a.clone(), b.clone(), m.clone());
    let y = match layer {
        Layer::Lora => lora_linear(&s, xi, w0, ai, bi).unwrap(),
        Layer::LoraComposition => lora_linear_composition(xi, w0, ai, bi, s.scale()),
        Layer::Dora(norm) => dora_linear(&s, xi, w0, ai, bi, mi, norm).unwrap(),
        Layer::DoraPeft(norm) => dora_linear_peft(xi, w0, ai, bi, mi, s.scale(), norm),
    };
    let dy = t2::<Autodiff<B>>(&c.dy, [c.n, s.d_out]);
    let grads = (y.clone() * dy).sum().backward();
    let dm = match layer {
        Layer::Lora | Layer::LoraComposition => Vec::new(),
        _ => host(m.grad(&grads).expect("m is used")),
    };
    Got {
        y: host(y),
        grads: [
            host(x.grad(&grads).unwrap()),
            host(a.grad(&grads).unwrap()),
            host(b.grad(&grads).unwrap()),
            dm,
        ],
    }
}

/// Tolerances: f32 sums of `k` terms of magnitude ≲ 1 (inputs in [−1, 1], weights ≲ 0.5).
fn tol(k: usize) -> f32 {
    4e-6 * (k as f32).sqrt() + 1e-6
}

const NAMES: [&str; 4] = ["dx", "dA", "dB", "dm"];

fn check_grads(what: &str, got: &Got, want: &Grads, sums: [usize; 4], gemm: GemmPrecision) {
    let want = [&want.dx, &want.da, &want.db, &want.dm];
    for i in 0..4 {
        let (atol, rtol) = gemm.widen(tol(sums[i]), 2e-4, sums[i]);
        assert_close(
            &format!("{what}: {}", NAMES[i]),
            &got.grads[i],
            &f32s(want[i]),
            atol,
            rtol,
        );
    }
}

/// `gemm`: the precision of `B`'s own matmul, which the layers' base GEMM is (TF32 widens the
/// tolerances).
fn check_backend<B: DoraBackend>(name: &str, gemm: GemmPrecision) {
    for (i, &(n, d_in, d_out, r)) in SHAPES.iter().enumerate() {
        let c = Case::new(n, d_in, d_out, r, 900 + 10 * i as u64);
        let h = c.host();
        let what = format!("{name} {}", c.what());
        // Gradient sums: dx over d_out (and r), dA / dB over n·d_out, dm over d_in·n.
        let sums = [d_out + r, n * d_out, n * d_in, n * d_in];
        let (fwd_tol, rtol) = gemm.widen(tol(d_in + r), 2e-4, d_in + r);

        let lora = run::<B>(&c, Layer::Lora);
        assert_close(
            &format!("{what}: LoRA y"),
            &lora.y,
            &f32s(&h.lora_forward_reference(&c.x, n)),
            fwd_tol,
            rtol,
        );
        check_grads(
            &format!("{what}: LoRA"),
            &lora,
            &h.lora_grads_reference(&c.x, &c.dy, n),
            sums,
            gemm,
        );
        let comp = run::<B>(&c, Layer::LoraComposition);
        assert_close(
            &format!("{what}: LoRA y vs composition"),
            &lora.y,
            &comp.y,
            fwd_tol,
            rtol,
        );
        for k in 0..3 {
            assert_close(
                &format!("{what}: LoRA {} vs composition", NAMES[k]),
                &lora.grads[k],
                &comp.grads[k],
                gemm.widen(2.0 * tol(sums[k]), 2e-4, 2 * sums[k]).0,
                rtol,
            );
        }

        for (norm, exact) in [(NormGrad::Detached, false), (NormGrad::Exact, true)] {
            let what = format!("{what} DoRA {norm:?}");
            let dora = run::<B>(&c, Layer::Dora(norm));
            assert_close(
                &format!("{what}: y"),
                &dora.y,
                &f32s(&h.dora_forward_reference(&c.x, n)),
                fwd_tol,
                rtol,
            );
            check_grads(
                &what,
                &dora,
                &h.dora_grads_reference(&c.x, &c.dy, n, exact),
                sums,
                gemm,
            );
            let peft = run::<B>(&c, Layer::DoraPeft(norm));
            assert_close(
                &format!("{what}: y vs PEFT composition"),
                &dora.y,
                &peft.y,
                fwd_tol,
                rtol,
            );
            for k in 0..4 {
                assert_close(
                    &format!("{what}: {} vs PEFT composition", NAMES[k]),
                    &dora.grads[k],
                    &peft.grads[k],
                    gemm.widen(2.0 * tol(sums[k]), 2e-4, 2 * sums[k]).0,
                    rtol,
                );
            }
        }
    }
}

/// At init (`B = 0`, `m = ‖W0‖_c`) both layers equal the base layer `x W0`; merged weights give
/// the layer's output; unmerging recovers `W0`; a zero column of `W0` gives a finite output.
fn check_exactness<B: DoraBackend>(name: &str, gemm: GemmPrecision) {
    for (i, &(n, d_in, d_out, r)) in SHAPES.iter().enumerate() {
        let mut c = Case::new(n, d_in, d_out, r, 1700 + 10 * i as u64);
        let s = c.spec;
        let what = format!("{name} {}", c.what());
        let x = || t2::<B>(&c.x, [n, d_in]);
        let w0 = || t2::<B>(&c.w0, [d_in, d_out]);
        let base = host(x().matmul(w0()));
        let zero_b = vec![0.0; r * d_out];
        let at_init = HostAdapter {
            b: &zero_b,
            ..c.host()
        };
        let m0 = f32s(&at_init.column_norms_reference());
        let (a, b0) = (t2::<B>(&c.a, [d_in, r]), t2::<B>(&zero_b, [r, d_out]));
        // Comparisons between two of the backend's GEMMs (the merges themselves are f32 kernels).
        let (fwd_tol, fwd_rtol) = gemm.widen(tol(d_in), 0.0, d_in);
        let y = lora_linear(&s, x(), w0(), a.clone(), b0.clone()).unwrap();
        assert_close(
            &format!("{what}: LoRA at init = base"),
            &host(y),
            &base,
            fwd_tol,
            fwd_rtol.max(1e-5),
        );
        let y = dora_linear(&s, x(), w0(), a.clone(), b0, t1(&m0), NormGrad::Detached).unwrap();
        assert_close(
            &format!("{what}: DoRA at init = base"),
            &host(y),
            &base,
            fwd_tol,
            fwd_rtol.max(1e-4),
        );

        let (a, b, m) = (
            t2::<B>(&c.a, [d_in, r]),
            t2::<B>(&c.b, [r, d_out]),
            t1::<B>(&c.m),
        );
        let (merged, norms) = dora_merge(&s, w0(), a.clone(), b.clone(), m.clone()).unwrap();
        assert_close(
            &format!("{what}: DoRA merged weight"),
            &host(merged.clone()),
            &f32s(&c.host().merged_reference()),
            tol(r),
            1e-4,
        );
        let unmerged = dora_linear(
            &s,
            x(),
            w0(),
            a.clone(),
            b.clone(),
            m.clone(),
            NormGrad::Detached,
        )
        .unwrap();
        assert_close(
            &format!("{what}: DoRA merged = unmerged"),
            &host(x().matmul(merged.clone())),
            &host(unmerged),
            fwd_tol,
            fwd_rtol.max(2e-4),
        );
        let back = dora_unmerge(&s, merged, a.clone(), b.clone(), m, norms).unwrap();
        assert_close(
            &format!("{what}: DoRA unmerge"),
            &host(back),
            &c.w0,
            tol(r) * 4.0,
            1e-4,
        );
        let merged = lora_merge(&s, w0(), a.clone(), b.clone()).unwrap();
        let y = lora_linear(&s, x(), w0(), a.clone(), b.clone()).unwrap();
        assert_close(
            &format!("{what}: LoRA merged = unmerged"),
            &host(x().matmul(merged.clone())),
            &host(y),
            fwd_tol,
            fwd_rtol.max(2e-4),
        );
        let back = lora_unmerge(&s, merged, a, b).unwrap();
        assert_close(
            &format!("{what}: LoRA unmerge"),
            &host(back),
            &c.w0,
            tol(r),
            1e-5,
        );

        // A zero column of W0 with B = 0: ‖V‖ = 0, the floor keeps g finite and y = 0 there.
        for row in 0..d_in {
            c.w0[row * d_out] = 0.0;
        }
        let y = dora_linear(
            &s,
            x(),
            t2::<B>(&c.w0, [d_in, d_out]),
            t2::<B>(&c.a, [d_in, r]),
            t2::<B>(&zero_b, [r, d_out]),
            t1(&c.m),
            NormGrad::Detached,
        )
        .unwrap();
        let y = host(y);
        assert!(
            y.iter().all(|v| v.is_finite()),
            "{what}: zero column gives non-finite output"
        );
        assert!(
            (0..n).all(|t| y[t * d_out] == 0.0),
            "{what}: zero column must give 0"
        );
    }
}

/// The two forward paths of the adapted layers on `B`: `B::adapted_forward` (on a CPU-like
/// device the fused [`claimbench_kernels::dora::adapted_matmul`]: the GEMM with the low-rank
/// term and the scaling in registers) and [`gemm_then_epilogue`] (the backend's GEMM, then the
/// epilogue: the GPU path), for LoRA and DoRA over [`SHAPES`]: each `y` against the f64
/// reference `(x W0 + s (x A) B) ⊙ g`, each `both` against `[x W0 | x A]`, and the two paths
/// against each other.
fn check_forward_paths<B: DoraBackend>(name: &str, gemm: GemmPrecision) {
    for (i, &(n, d_in, d_out, r)) in SHAPES.iter().enumerate() {
        let c = Case::new(n, d_in, d_out, r, 40 + i as u64);
        let s = c.spec;
        let h = c.host();
        let norms = h.column_norms_reference();
        let g: Vec<f32> =
            c.m.iter()
                .zip(&norms)
                .map(|(&m, &c)| (m as f64 / c.max(1e-6)) as f32)
                .collect();
        let lora = h.lora_forward_reference(&c.x, n);
        let base_ref = HostAdapter {
            b: &vec![0.0; r * d_out],
            ..h.clone()
        }
        .lora_forward_reference(&c.x, n);
        let xa_ref = HostAdapter {
            spec: AdapterSpec { d_out: r, ..s },
            w0: &c.a,
            a: &vec![0.0; d_in * r],
            b: &vec![0.0; r * r],
            m: &[],
        }
        .lora_forward_reference(&c.x, n);
        let both_ref: Vec<f32> = (0..n)
            .flat_map(|t| {
                let base = &base_ref[t * d_out..(t + 1) * d_out];
                let xa = &xa_ref[t * r..(t + 1) * r];
                base.iter().chain(xa).map(|&v| v as f32).collect::<Vec<_>>()
            })
            .collect();
        let (atol, rtol) = gemm.widen(tol(d_in + r), 2e-5, d_in);
        for scaled in [false, true] {
            let want: Vec<f32> = lora
                .iter()
                .enumerate()
                .map(|(p, &v)| if scaled { v * g[p % d_out] as f64 } else { v } as f32)
                .collect();
            let args = || {
                (
                    t2::<B>(&c.x, [n, d_in]).into_primitive().tensor(),
                    t2::<B>(&c.w0, [d_in, d_out]).into_primitive().tensor(),
                    t2::<B>(&c.a, [d_in, r]).into_primitive().tensor(),
                    t2::<B>(&c.b, [r, d_out]).into_primitive().tensor(),
                    scaled.then(|| t1::<B>(&g).into_primitive().tensor()),
                )
            };
            let what = format!(
                "{name} {} {}",
                c.what(),
                if scaled { "DoRA" } else { "LoRA" }
            );
            let (x, w0, a, b, gt) = args();
            let (y1, both1) = B::adapted_forward(x, w0, a, b, gt, s.scale(), true);
            let (x, w0, a, b, gt) = args();
            let (y0, _) = B::adapted_forward(x, w0, a, b, gt, s.scale(), false);
            let (x, w0, a, b, gt) = args();
            let (y2, both2) = gemm_then_epilogue::<B>(x, w0, a, b, gt, s.scale());
            let f = |t| host(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(t)));
            let both1 = both1.expect("both when asked");
            let (y0, y1, y2, both1, both2) = (f(y0), f(y1), f(y2), f(both1), f(both2));
            assert_eq!(y0, y1, "{what}: y with and without both");
            assert_close(
                &format!("{what}: adapted_forward y"),
                &y1,
                &want,
                atol,
                rtol,
            );
            assert_close(
                &format!("{what}: GEMM + epilogue y"),
                &y2,
                &want,
                atol,
                rtol,
            );
            assert_close(
                &format!("{what}: adapted_forward both"),
                &both1,
                &both_ref,
                atol,
                rtol,
            );
            assert_close(
                &format!("{what}: GEMM + epilogue both"),
                &both2,
                &both_ref,
                atol,
                rtol,
            );
            assert_close(&format!("{what}: paths agree"), &y1, &y2, atol, rtol);
        }
    }
}

#[test]
fn flex_composition_matches_reference() {
    check_backend::<Flex>("flex", GemmPrecision::F32);
    check_exactness::<Flex>("flex", GemmPrecision::F32);
}

#[test]
fn cube_kernels_match_reference() {
    if has_wgpu() {
        let gemm = GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>();
        check_backend::<CubeWgpu>("cube-wgpu", gemm);
        check_exactness::<CubeWgpu>("cube-wgpu", gemm);
        check_forward_paths::<CubeWgpu>("cube-wgpu", gemm);
    }
}

#[test]
fn fused_wgpu_matches_reference() {
    if has_wgpu() {
        let gemm = GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>();
        check_backend::<Wgpu>("fused-wgpu", gemm);
        check_exactness::<Wgpu>("fused-wgpu", gemm);
        check_forward_paths::<Wgpu>("fused-wgpu", gemm);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_reference() {
    if client_or_skip::<cubecl::cuda::CudaRuntime>("dora ops cuda").is_some() {
        let gemm = GemmPrecision::of_default::<cubecl::cuda::CudaRuntime>();
        check_backend::<burn::backend::Cuda>("cuda", gemm);
        check_exactness::<burn::backend::Cuda>("cuda", gemm);
        check_forward_paths::<burn::backend::Cuda>("cuda", gemm);
    }
}

#[test]
fn bad_configs_are_named() {
    let spec = AdapterSpec {
        d_in: 64,
        d_out: 32,
        rank: 4,
        alpha: 8.0,
    };
    let msg = |s: AdapterSpec| s.validate().unwrap_err().to_string();
    assert!(msg(AdapterSpec { rank: 0, ..spec }).contains("adapter rank r must be at least 1"));
    let m = msg(AdapterSpec { rank: 33, ..spec });
    assert!(
        m.contains("33 (layer 64×32)") && m.contains("min(d_in, d_out)"),
        "{m}"
    );
    for alpha in [0.0, -1.0, f32::NAN] {
        let m = msg(AdapterSpec { alpha, ..spec });
        assert!(m.contains("adapter α") && m.contains("above 0"), "{m}");
    }
    let x = t2::<Flex>(&vec![0.0; 3 * 64], [3, 64]);
    let w0 = t2::<Flex>(&vec![0.0; 64 * 32], [64, 32]);
    let a = t2::<Flex>(&vec![0.0; 64 * 4], [64, 4]);
    let b = t2::<Flex>(&vec![0.0; 4 * 32], [4, 32]);
    let m = t1::<Flex>(&[1.0; 32]);
    let err = |r: Result<Tensor<Flex, 2>, KernelError>| r.unwrap_err().to_string();
    let e = err(lora_linear(
        &spec,
        x.clone(),
        t2(&vec![0.0; 64 * 31], [64, 31]),
        a.clone(),
        b.clone(),
    ));
    assert!(
        e.contains("base weight W0 [d_in, d_out]: expected [64, 32], got [64, 31]"),
        "{e}"
    );
    let e = err(lora_linear(
        &spec,
        t2(&[0.0; 3 * 63], [3, 63]),
        w0.clone(),
        a.clone(),
        b.clone(),
    ));
    assert!(e.contains("input x [n, d_in]"), "{e}");
    let e = err(lora_linear(
        &spec,
        x.clone(),
        w0.clone(),
        t2(&vec![0.0; 64 * 5], [64, 5]),
        b.clone(),
    ));
    assert!(e.contains("adapter A [d_in, r]"), "{e}");
    let e = err(dora_linear(
        &spec,
        x.clone(),
        w0.clone(),
        a.clone(),
        b.clone(),
        t1(&[1.0; 31]),
        NormGrad::Detached,
    ));
    assert!(e.contains("DoRA magnitude m [d_out]"), "{e}");
    let e = err(dora_linear(
        &AdapterSpec { rank: 0, ..spec },
        x,
        w0,
        a,
        b,
        m,
        NormGrad::Detached,
    ));
    assert!(e.contains("rank"), "{e}");
}

/// What the detached norm reads is out of the graph: a parameter passed through `untracked`
/// requires no gradient (a bare `detach` would keep its `require_grad`, and the norms op would
/// then run the exact gradient's backward for nothing).
#[test]
fn detached_norm_inputs_are_untracked() {
    type A = Autodiff<Flex>;
    let a = t2::<A>(&uniform(12, 3), [4, 3]).require_grad();
    assert!(a.is_require_grad());
    assert!(!untracked(a.clone()).is_require_grad());
}

/// `dora::base_matmul` (the layer's GEMM at rank 0, which the peak probe times) against the
/// f64 product `x W0` over [`SHAPES`] (n = 1, odd widths, `d_in` not a multiple of 4, ragged row
/// and column tiles, 1100 rows), on lavapipe; tolerance `4e-6·√d_in + 1e-6` + 2e-5 relative.
#[test]
fn base_matmul_matches_reference_wgpu() {
    use claimbench_kernels::dora;
    use cubecl::prelude::CubeElement;
    let Some(client) = client_or_skip::<cubecl::wgpu::WgpuRuntime>("base_matmul") else {
        return;
    };
    for (i, &(n, d_in, d_out, r)) in SHAPES.iter().enumerate() {
        let c = Case::new(n, d_in, d_out, r, 70 + i as u64);
        let h = c.host();
        let want: Vec<f32> = HostAdapter {
            b: &vec![0.0; r * d_out],
            ..h
        }
        .lora_forward_reference(&c.x, n)
        .iter()
        .map(|&v| v as f32)
        .collect();
        let x = client.create_from_slice(f32::as_bytes(&c.x));
        let w0 = client.create_from_slice(f32::as_bytes(&c.w0));
        let y = dora::base_matmul(&client, n, d_in, d_out, x, w0);
        let got = f32::from_bytes(&client.read_one(y).unwrap()).to_vec();
        assert_close(
            &format!("base_matmul {n}×{d_in}·{d_in}×{d_out}"),
            &got,
            &want,
            tol(d_in),
            2e-5,
        );
    }
}
