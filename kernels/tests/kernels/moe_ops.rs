//! The MoE layer (Mixtral, arXiv 2401.04088, Sec. 2.1) on every backend it is implemented for
//! (Flex: the composition; CubeBackend: the router, dispatch, grouped-GEMM and
//! combine kernels; burn's fused Wgpu: the same kernels as custom ops of its fusion stream;
//! Autodiff of each: the handwritten backward on the kernel backends, burn's autodiff of the
//! per-expert loop on Flex), against the f64 references of `claimbench_kernels::moe` and
//! burn's autodiff of the HF-style loop; plus the dispatch's invariants, tie-breaking and the
//! validation errors.
//!
//! Tolerances: forward `2e-5·√(d + h) + 1e-6` absolute and 2e-4 relative (f32 sums over `d`
//! then `h` terms against f64); gradients `1e-4·√(d + h)` absolute and 1e-3 relative (two f32
//! paths with different summation orders).

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{MoeBackend, moe_layer, moe_layer_loop};
use claimbench_kernels::moe::{self, MoeDims, MoeSpec, moe_reference, route_reference};
use claimbench_kernels::testing::{GemmPrecision, assert_close, client_or_skip, uniform};
use cubecl::prelude::*;
use cubecl::wgpu::WgpuRuntime;

use crate::sequences::{f32s, scaled};

type CubeWgpu = burn_cubecl::CubeBackend<WgpuRuntime, f32, i32, u32>;

fn has_wgpu() -> bool {
    client_or_skip::<WgpuRuntime>("moe ops wgpu tests").is_some()
}

/// `(n, d, h, E, k)`: all ones; odd sizes; top-3 of 5; off the 16-row tile and 64-column cube;
/// more tokens than one dispatch chunk (256 assignments) with a ragged last one; E = 16, k = 4.
const SHAPES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1),
    (5, 3, 7, 3, 2),
    (33, 20, 12, 5, 3),
    (130, 64, 48, 8, 2),
    (301, 24, 36, 16, 4),
];

struct Case {
    spec: MoeSpec,
    n: usize,
    x: Vec<f32>,
    router: Vec<f32>,
    w13: Vec<f32>,
    w2: Vec<f32>,
    dy: Vec<f32>,
    dprobs: Vec<f32>,
}

impl Case {
    fn new(n: usize, d: usize, h: usize, e: usize, k: usize, seed: u64) -> Self {
        let spec = MoeSpec {
            experts: e,
            top_k: k,
            d_model: d,
            hidden: h,
        };
        Case {
            spec,
            n,
            x: scaled(n * d, 1.0, seed),
            router: scaled(d * e, 2.0 / (d as f32).sqrt(), seed + 1),
            w13: scaled(e * d * 2 * h, 1.0 / (d as f32).sqrt(), seed + 2),
            w2: scaled(e * h * d, 1.0 / (h as f32).sqrt(), seed + 3),
            dy: uniform(n * d, seed + 4),
            dprobs: uniform(n * e, seed + 5),
        }
    }

    fn tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 3>, Tensor<B, 3>) {
        let MoeSpec {
            experts: e,
            d_model: d,
            hidden: h,
            ..
        } = self.spec;
        (
            Tensor::from_data(TensorData::new(self.x.clone(), [self.n, d]), device),
            Tensor::from_data(TensorData::new(self.router.clone(), [d, e]), device),
            Tensor::from_data(TensorData::new(self.w13.clone(), [e, d, 2 * h]), device),
            Tensor::from_data(TensorData::new(self.w2.clone(), [e, h, d]), device),
        )
    }

    fn fwd_tol(&self) -> f32 {
        2e-5 * ((self.spec.d_model + self.spec.hidden) as f32).sqrt() + 1e-6
    }
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn ids_vec<B: Backend>(t: Tensor<B, 2, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().into_vec::<i64>().unwrap()
}

/// The forward of `B` against the f64 reference: outputs, ids, softmax and weights.
fn check_forward<B: MoeBackend>(what: &str, device: &B::Device) {
    for (i, &(n, d, h, e, k)) in SHAPES.iter().enumerate() {
        let case = Case::new(n, d, h, e, k, 100 + i as u64);
        let (x, r, w13, w2) = case.tensors::<B>(device);
        let out = moe_layer(&case.spec, x, r, w13, w2).unwrap();
        let logits = to_vec(out.logits.clone());
        let (want_y, want_ids) = moe_reference(&case.spec, &case.x, &logits, &case.w13, &case.w2);
        let tag = format!("{what} n{n} d{d} h{h} E{e} k{k}");
        let ids: Vec<usize> = ids_vec(out.ids).into_iter().map(|i| i as usize).collect();
        assert_eq!(ids, want_ids, "{tag} ids");
        let (probs, weights) = (to_vec(out.probs), to_vec(out.weights));
        for t in 0..n {
            let (_, w, p) = route_reference(&logits[t * e..(t + 1) * e], k);
            assert_close(
                &format!("{tag} probs"),
                &probs[t * e..(t + 1) * e],
                &f32s(&p),
                1e-6,
                1e-5,
            );
            assert_close(
                &format!("{tag} weights"),
                &weights[t * k..(t + 1) * k],
                &f32s(&w),
                1e-6,
                1e-5,
            );
        }
        assert_close(
            &format!("{tag} y"),
            &to_vec(out.y),
            &f32s(&want_y),
            case.fwd_tol(),
            2e-4,
        );
    }
}

#[test]
fn forward_matches_reference_on_flex() {
    check_forward::<Flex>("flex", &Default::default());
}

#[test]
fn forward_matches_reference_on_wgpu_kernels() {
    if !has_wgpu() {
        return;
    }
    check_forward::<CubeWgpu>("cube wgpu", &Default::default());
}

/// burn's fused `Wgpu` takes the MoE ops as custom ops of its fusion stream (the router GEMM is
/// burn's fused matmul).
#[test]
fn forward_matches_reference_on_fused_wgpu() {
    if !has_wgpu() {
        return;
    }
    check_forward::<Wgpu>("fused wgpu", &Default::default());
}

/// Pins a bug of burn 0.21's fused wgpu: the per-expert loop composition ([`moe_layer_loop`],
/// what the benchmark's baseline is) comes out wrong there, while the same ops on the unfused
/// `CubeBackend` of the same device agree with the reference. The test passes while the bug
/// lasts; when it fails, burn has fixed it: drop the fallback of `kernels/moe-layer` (the
/// harness's `kernel_suites::moe_layer::FALLBACK`, which times the loop unfused) and this test.
#[test]
fn fused_wgpu_still_computes_the_loop_wrongly() {
    if !has_wgpu() {
        return;
    }
    let (n, d, h, e, k) = (33, 20, 12, 5, 3);
    let case = Case::new(n, d, h, e, k, 102);
    let run = |fused: bool| -> Vec<f32> {
        if fused {
            let (x, r, w13, w2) = case.tensors::<Wgpu>(&Default::default());
            to_vec(moe_layer_loop(&case.spec, x, r, w13, w2).unwrap().y)
        } else {
            let (x, r, w13, w2) = case.tensors::<CubeWgpu>(&Default::default());
            to_vec(moe_layer_loop(&case.spec, x, r, w13, w2).unwrap().y)
        }
    };
    let logits: Vec<f32> = {
        let (x, r, _, _) = case.tensors::<Flex>(&Default::default());
        to_vec(x.matmul(r))
    };
    let (want, _) = moe_reference(&case.spec, &case.x, &logits, &case.w13, &case.w2);
    let err = |got: &[f32]| {
        got.iter()
            .zip(&want)
            .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()))
    };
    let (unfused, fused) = (err(&run(false)), err(&run(true)));
    eprintln!("per-expert loop max |error|: unfused {unfused:.2e}, fused {fused:.2e}");
    assert!(
        unfused < case.fwd_tol() as f64,
        "the loop on the unfused CubeBackend: {unfused:.2e}"
    );
    assert!(
        fused > 1e-2,
        "burn's fused wgpu now computes the per-expert loop right (max |error| {fused:.2e}): drop the kernels/moe-layer fallback and this test"
    );
}

/// Gradients of `L = Σ y ⊙ dy + Σ probs ⊙ dprobs` (the second term exercises the router's softmax
/// path, as a load-balancing loss does) with respect to `x`, the router, `w13` and `w2`.
fn grads<B: MoeBackend>(case: &Case, kernel_layer: bool) -> Vec<Vec<f32>> {
    let device = &Default::default();
    let (x, r, w13, w2) = case.tensors::<Autodiff<B>>(device);
    let (x, r, w13, w2) = (
        x.require_grad(),
        r.require_grad(),
        w13.require_grad(),
        w2.require_grad(),
    );
    let out = if kernel_layer {
        moe_layer(&case.spec, x.clone(), r.clone(), w13.clone(), w2.clone())
    } else {
        moe_layer_loop(&case.spec, x.clone(), r.clone(), w13.clone(), w2.clone())
    }
    .unwrap();
    let [n, d] = out.y.dims();
    let e = case.spec.experts;
    let dy = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(case.dy.clone(), [n, d]), device);
    let gp =
        Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(case.dprobs.clone(), [n, e]), device);
    let loss = (out.y * dy).sum() + (out.probs * gp).sum();
    let g = loss.backward();
    vec![
        to_vec(x.grad(&g).unwrap()),
        to_vec(r.grad(&g).unwrap()),
        to_vec(w13.grad(&g).unwrap()),
        to_vec(w2.grad(&g).unwrap()),
    ]
}

#[test]
fn gradients_match_autodiff_of_the_loop() {
    if has_wgpu() {
        let gemm = GemmPrecision::of_default::<WgpuRuntime>();
        check_gradients::<CubeWgpu>("autodiff cube wgpu", gemm);
        check_gradients::<Wgpu>("autodiff fused wgpu", gemm);
    } else {
        check_gradients::<Flex>("autodiff flex (no wgpu device)", GemmPrecision::F32);
    }
}

/// The layer's gradients on `Autodiff<Flex>` and `Autodiff<B>` against burn's autodiff of the
/// per-expert loop on Flex. `gemm`: the precision of `B`'s own matmul, which the router's
/// logits and their gradients go through (the experts' GEMMs are this crate's, in f32).
fn check_gradients<B: MoeBackend>(name: &'static str, gemm: GemmPrecision) {
    for (i, &(n, d, h, e, k)) in SHAPES.iter().enumerate() {
        let case = Case::new(n, d, h, e, k, 200 + i as u64);
        let want = grads::<Flex>(&case, false);
        let (tol, rtol) = gemm.widen(1e-4 * ((d + h) as f32).sqrt(), 1e-3, d + n);
        let names = ["dx", "drouter", "dw13", "dw2"];
        // Under TF32 the router's logits move by ~1e-3, enough to swap near-tied experts, so
        // `B` is then compared with the loop on `B` itself (same logits, same routing).
        let want_b = match gemm {
            GemmPrecision::F32 => want.clone(),
            GemmPrecision::Tf32 => grads::<B>(&case, false),
        };
        let got = [
            (
                "autodiff flex",
                grads::<Flex>(&case, true),
                &want,
                1e-4 * ((d + h) as f32).sqrt(),
                1e-3,
            ),
            (name, grads::<B>(&case, true), &want_b, tol, rtol),
        ];
        for (what, g, want, tol, rtol) in got {
            for (name, (gv, wv)) in names.iter().zip(g.iter().zip(want)) {
                assert_close(
                    &format!("{what} {name} n{n} d{d} h{h} E{e} k{k}"),
                    gv,
                    wv,
                    tol,
                    rtol,
                );
            }
        }
    }
}

#[test]
fn dispatch_groups_by_expert_stably_and_inverts() {
    if let Some(client) = client_or_skip::<WgpuRuntime>("moe dispatch") {
        check_dispatch(&client);
    }
}

/// Offsets equal the histogram, `assign` is the stable sort of assignments by expert and
/// `inverse` is its inverse, on runtime `R`.
fn check_dispatch<R: Runtime>(client: &ComputeClient<R>) {
    for &(n, e, k) in &[
        (1usize, 1usize, 1usize),
        (7, 3, 2),
        (300, 8, 2),
        (1000, 16, 4),
    ] {
        let dims = MoeDims {
            tokens: n,
            experts: e,
            top_k: k,
            d_model: 1,
            hidden: 1,
        };
        // Seeded ids, distinct per token (as a top-k is), skewed towards low experts.
        let u = uniform(n, 7 + n as u64);
        let ids: Vec<i32> = (0..n)
            .flat_map(|t| {
                let first = ((u[t] * 0.5 + 0.5).powi(2) * e as f32) as usize % e;
                (0..k).map(move |j| ((first + j) % e) as i32)
            })
            .collect();
        let handle = client.create_from_slice(i32::as_bytes(&ids));
        let dsp = moe::dispatch(client, dims, handle);
        let read_u32 = |h| -> Vec<u32> {
            let bytes = client.read_one(h).unwrap();
            u32::from_bytes(&bytes).to_vec()
        };
        let offsets = read_u32(dsp.offsets);
        let assign = read_u32(dsp.assign);
        let inverse = read_u32(dsp.inverse);
        let mut want_offsets = vec![0u32; e + 1];
        for &i in &ids {
            want_offsets[i as usize + 1] += 1;
        }
        for x in 1..=e {
            want_offsets[x] += want_offsets[x - 1];
        }
        assert_eq!(offsets, want_offsets, "offsets n{n} E{e} k{k}");
        let mut want_assign: Vec<u32> = (0..(n * k) as u32).collect();
        want_assign.sort_by_key(|&a| ids[a as usize]);
        assert_eq!(assign, want_assign, "assign (stable) n{n} E{e} k{k}");
        for (p, &a) in assign.iter().enumerate() {
            assert_eq!(inverse[a as usize] as usize, p, "inverse n{n} E{e} k{k}");
        }
    }
}

/// Both tilings of the grouped GEMM (the CPU one the layer uses on lavapipe, and the GPU one),
/// gathered and not, against a host GEMM over expert groups of uneven sizes (one empty).
#[test]
fn grouped_matmul_tilings_match_the_host() {
    if let Some(client) = client_or_skip::<WgpuRuntime>("moe grouped gemm") {
        check_grouped_matmul(&client);
    }
}

fn check_grouped_matmul<R: Runtime>(client: &ComputeClient<R>) {
    let (n, e, k, inner, cols) = (131usize, 5usize, 2usize, 20usize, 36usize);
    let dims = MoeDims {
        tokens: n,
        experts: e,
        top_k: k,
        d_model: inner,
        hidden: 1,
    };
    // Expert 3 gets nothing; expert 0 most tokens.
    let ids: Vec<i32> = (0..n)
        .flat_map(|t| {
            let a = [0, 0, 1, 2, 4][t % 5];
            let b = if a == 4 { 0 } else { 4 };
            [a, b]
        })
        .collect();
    let dsp = moe::dispatch(client, dims, client.create_from_slice(i32::as_bytes(&ids)));
    let assign: Vec<u32> = u32::from_bytes(&client.read_one(dsp.assign.clone()).unwrap()).to_vec();
    let offsets: Vec<u32> =
        u32::from_bytes(&client.read_one(dsp.offsets.clone()).unwrap()).to_vec();
    let x = uniform(n * inner, 41);
    let w = uniform(e * inner * cols, 42);
    let m = n * k;
    for tiling in [moe::GEMM_CPU, moe::GEMM_GPU] {
        for gather in [true, false] {
            let a_rows = if gather { n } else { m };
            let a = if gather {
                x.clone()
            } else {
                uniform(m * inner, 43)
            };
            let got = claimbench_kernels::testing::read_f32(
                client,
                moe::grouped_matmul(
                    client,
                    dims,
                    client.create_from_slice(f32::as_bytes(&a)),
                    a_rows,
                    gather.then_some(&dsp.assign),
                    client.create_from_slice(f32::as_bytes(&w)),
                    &dsp.offsets,
                    inner,
                    cols,
                    tiling,
                ),
            );
            let mut want = vec![0.0f32; m * cols];
            for ex in 0..e {
                for p in offsets[ex] as usize..offsets[ex + 1] as usize {
                    let src = if gather { assign[p] as usize / k } else { p };
                    for c in 0..cols {
                        want[p * cols + c] = (0..inner)
                            .map(|i| {
                                a[src * inner + i] as f64 * w[(ex * inner + i) * cols + c] as f64
                            })
                            .sum::<f64>() as f32;
                    }
                }
            }
            assert_close(
                &format!("{tiling:?} gather={gather}"),
                &got,
                &want,
                1e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn router_breaks_ties_towards_the_lower_expert() {
    let logits = vec![1.0f32, 3.0, 3.0, 0.5, 3.0, 1.0];
    let (ids, w, _) = route_reference(&logits, 2);
    assert_eq!(ids, vec![1, 2]);
    assert!((w[0] - 0.5).abs() < 1e-12);
    let x =
        Tensor::<Flex, 2>::from_data(TensorData::new(logits.clone(), [1, 6]), &Default::default());
    let (_, _, ids_flex) = <Flex as MoeBackend>::moe_route(x.into_primitive().tensor(), 2);
    assert_eq!(
        ids_vec(Tensor::<Flex, 2, Int>::from_primitive(ids_flex)),
        vec![1, 2]
    );
    if has_wgpu() {
        let x =
            Tensor::<CubeWgpu, 2>::from_data(TensorData::new(logits, [1, 6]), &Default::default());
        let (_, _, ids) = <CubeWgpu as MoeBackend>::moe_route(x.into_primitive().tensor(), 2);
        assert_eq!(
            ids_vec(Tensor::<CubeWgpu, 2, Int>::from_primitive(ids)),
            vec![1, 2]
        );
    }
}

#[test]
fn bad_layers_are_refused_by_name() {
    let spec = |e, k, h| MoeSpec {
        experts: e,
        top_k: k,
        d_model: 4,
        hidden: h,
    };
    assert!(matches!(
        spec(2, 3, 4).validate(),
        Err(KernelError::InvalidSetting { what: "top-k", .. })
    ));
    assert!(matches!(
        spec(0, 1, 4).validate(),
        Err(KernelError::EmptyDimension {
            what: "number of experts"
        })
    ));
    assert!(matches!(
        spec(2, 1, 0).validate(),
        Err(KernelError::EmptyDimension {
            what: "expert hidden width"
        })
    ));
    let case = Case::new(3, 4, 5, 2, 1, 9);
    let (x, r, w13, w2) = case.tensors::<Flex>(&Default::default());
    let err = moe_layer(&spec(3, 1, 5), x, r, w13, w2).unwrap_err();
    assert!(err.to_string().contains("router weight"), "{err}");
}

/// The same suites on CUDA (the unfused `CubeBackend`, as the harness runs the MoE units).
#[cfg(feature = "cuda")]
mod cuda {
    use super::*;
    use cubecl::cuda::CudaRuntime;
    type CubeCuda = burn_cubecl::CubeBackend<CudaRuntime, f32, i32, u8>;

    #[test]
    fn cuda_forward_gradients_dispatch_and_gemm_match() {
        let Some(client) = client_or_skip::<CudaRuntime>("moe ops cuda") else {
            return;
        };
        check_forward::<CubeCuda>("cube cuda", &Default::default());
        check_gradients::<CubeCuda>("autodiff cube cuda", GemmPrecision::of(&client));
        check_dispatch(&client);
        check_grouped_matmul(&client);
    }
}

/// The benchmark of the issue, as a probe: the MoE layer's forward + backward at tokens 2048,
/// d 512, expert hidden 1024, E 8, top-2, f32 on wgpu: the kernels (`Autodiff<CubeBackend>`),
/// the HF-style per-expert loop and the dense SwiGLU FFN with equal active parameters (hidden
/// 2048), both on `Autodiff<CubeBackend>` (burn's matmul; autotune off). Interleaved rounds, each
/// timed to a read of every gradient. Ignored (minutes on lavapipe); run with
/// `cargo test --release -p claimbench-kernels --test kernels moe_layer_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn moe_layer_speed() {
    use std::time::Instant;
    type Ad = Autodiff<CubeWgpu>;
    if !has_wgpu() {
        return;
    }
    let rounds: usize = std::env::var("MOE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (n, d, h, e, k) = (2048, 512, 1024, 8, 2);
    let case = Case::new(n, d, h, e, k, 11);
    let device = Default::default();
    let dense13 = Tensor::<Ad, 2>::from_data(
        TensorData::new(scaled(d * 4 * h, 0.04, 12), [d, 4 * h]),
        &device,
    );
    let dense2 = Tensor::<Ad, 2>::from_data(
        TensorData::new(scaled(2 * h * d, 0.03, 13), [2 * h, d]),
        &device,
    );
    let run = |which: usize| -> f64 {
        let (x, r, w13, w2) = case.tensors::<Ad>(&device);
        let (x, r, w13, w2) = (
            x.require_grad(),
            r.require_grad(),
            w13.require_grad(),
            w2.require_grad(),
        );
        let t = Instant::now();
        let sums = match which {
            0 | 1 => {
                let out = if which == 0 {
                    moe_layer(&case.spec, x.clone(), r.clone(), w13.clone(), w2.clone())
                } else {
                    moe_layer_loop(&case.spec, x.clone(), r.clone(), w13.clone(), w2.clone())
                }
                .unwrap();
                let g = out.y.sum().backward();
                [
                    x.grad(&g).unwrap().sum(),
                    r.grad(&g).unwrap().sum(),
                    w13.grad(&g).unwrap().sum(),
                    w2.grad(&g).unwrap().sum(),
                ]
            }
            _ => {
                let (a, b) = (
                    dense13.clone().require_grad(),
                    dense2.clone().require_grad(),
                );
                let y = claimbench_kernels::burn_ops::dense_swiglu(x.clone(), a.clone(), b.clone());
                let g = y.sum().backward();
                let z = x.grad(&g).unwrap().sum();
                [
                    z.clone(),
                    z,
                    a.grad(&g).unwrap().sum(),
                    b.grad(&g).unwrap().sum(),
                ]
            }
        };
        let total: f32 = sums.into_iter().map(|s| s.into_scalar()).sum();
        assert!(total.is_finite());
        t.elapsed().as_secs_f64()
    };
    for w in 0..3 {
        run(w);
    }
    let names = ["kernels", "per-expert loop", "dense equal-active"];
    let mut times = vec![vec![]; 3];
    for _ in 0..rounds {
        for (w, ts) in times.iter_mut().enumerate() {
            ts.push(run(w));
        }
    }
    for (name, ts) in names.iter().zip(&times) {
        println!("{name}: {ts:.3?} s");
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "speedup vs loop {:.3}, vs dense {:.3}",
        median(&times[1]) / median(&times[0]),
        median(&times[2]) / median(&times[0])
    );
}

/// Times the pieces of the kernels' forward and backward at the benchmark shape (ignored probe).
#[test]
#[ignore]
fn moe_pieces_speed() {
    use std::time::Instant;
    let Some(client) = client_or_skip::<WgpuRuntime>("probe") else {
        return;
    };
    let (n, d, h, e, k) = (2048usize, 512usize, 1024usize, 8usize, 2usize);
    let dims = MoeDims {
        tokens: n,
        experts: e,
        top_k: k,
        d_model: d,
        hidden: h,
    };
    let m = n * k;
    let ids: Vec<i32> = (0..n)
        .flat_map(|t| [(t % e) as i32, ((t / e + t + 1) % e) as i32])
        .collect();
    let ids_h = client.create_from_slice(i32::as_bytes(&ids));
    let f = |len: usize, seed| client.create_from_slice(f32::as_bytes(&uniform(len, seed)));
    let x = f(n * d, 1);
    let w13 = f(e * d * 2 * h, 2);
    let w2 = f(e * h * d, 3);
    let wts = f(n * k, 4);
    let dy = f(n * d, 5);
    let dsp = moe::dispatch(&client, dims, ids_h);
    let time = |what: &str, run: &mut dyn FnMut() -> cubecl::server::Handle| {
        let _ = client.read_one(run()).unwrap();
        let t = Instant::now();
        let _ = client.read_one(run()).unwrap();
        println!("{what}: {:.3} s", t.elapsed().as_secs_f64());
    };
    time("up gemm [m,d]x[d,2h] gathered", &mut || {
        moe::grouped_matmul(
            &client,
            dims,
            x.clone(),
            n,
            Some(&dsp.assign),
            w13.clone(),
            &dsp.offsets,
            d,
            2 * h,
            moe::gemm_tiling(&client),
        )
    });
    let act = f(m * h, 6);
    time("down gemm [m,h]x[h,d]", &mut || {
        moe::grouped_matmul(
            &client,
            dims,
            act.clone(),
            m,
            None,
            w2.clone(),
            &dsp.offsets,
            h,
            d,
            moe::gemm_tiling(&client),
        )
    });
    let dout = f(m * d, 7);
    time("wgrad dw2 [h,d] over m", &mut || {
        moe::grouped_weight_grad(
            &client,
            dims,
            act.clone(),
            m,
            false,
            dout.clone(),
            &dsp,
            h,
            d,
        )
    });
    let dh = f(m * 2 * h, 8);
    time("wgrad dw13 [d,2h] over m gathered", &mut || {
        moe::grouped_weight_grad(
            &client,
            dims,
            x.clone(),
            n,
            true,
            dh.clone(),
            &dsp,
            d,
            2 * h,
        )
    });
    time("dxg gemm [m,2h]x[2h,d]", &mut || {
        moe::grouped_matmul(
            &client,
            dims,
            dh.clone(),
            m,
            None,
            w2.clone(),
            &dsp.offsets,
            2 * h,
            d,
            moe::gemm_tiling(&client),
        )
    });
    let (y, saved) = moe::experts_forward(
        &client,
        dims,
        x.clone(),
        wts.clone(),
        &dsp,
        w13.clone(),
        w2.clone(),
    );
    let _ = client.read_one(y).unwrap();
    let t = Instant::now();
    let (y, saved2) = moe::experts_forward(
        &client,
        dims,
        x.clone(),
        wts.clone(),
        &dsp,
        w13.clone(),
        w2.clone(),
    );
    let _ = client.read_one(y).unwrap();
    println!("experts_forward: {:.3} s", t.elapsed().as_secs_f64());
    let _ = saved;
    let t = Instant::now();
    let g = moe::experts_backward(
        &client,
        dims,
        x.clone(),
        wts.clone(),
        &dsp,
        w13.clone(),
        w2.clone(),
        &saved2,
        dy.clone(),
    );
    let _ = client.read_one(g.dx).unwrap();
    println!("experts_backward: {:.3} s", t.elapsed().as_secs_f64());
}
