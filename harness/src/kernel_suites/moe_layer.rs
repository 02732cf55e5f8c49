//! The MoE layer's suite (`kernels/moe-layer`): checked against the f64 reference and burn's
//! autodiff of the per-expert loop on flex (the composition) and on the kernel device, and
//! benchmarked against the loop and a dense SwiGLU of equal active parameters.

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use claimbench_kernels::burn_ops::{MoeBackend, dense_swiglu, moe_layer, moe_layer_loop};
use claimbench_kernels::moe::{MoeSpec, moe_reference};
use claimbench_kernels::testing::{GemmPrecision, max_abs_diff, uniform, within};
use claimbench_paper::bench::{BenchConfig, Comparison, Samples, interleaved};
use claimbench_paper::{
    Exec, Fallback, KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec,
};

use super::{ScaleBench, kernel_unit};

/// The kernel id of the MoE layer.
pub const KERNEL: &str = "kernels/moe-layer";
/// The benchmark of the issue: tokens, d, expert hidden, experts, top-k.
pub const BENCH: (usize, usize, usize, usize, usize) = (2048, 512, 1024, 8, 2);
/// vs the per-expert gather loop: at least 1.2× on lavapipe (2× is the GPU target).
pub const LOOP_TARGET: f64 = 1.2;
/// vs a dense SwiGLU with equal active parameters: at most 1.5× its time.
pub const DENSE_TARGET: f64 = 0.67;
/// Shapes of the correctness units `(n, d, h, E, k)`: ones, odd, top-3 of 5, off the tile and
/// cube sizes, more than one dispatch chunk with E = 16 and k = 4.
pub const CHECK_SHAPES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1),
    (5, 3, 7, 3, 2),
    (33, 20, 12, 5, 3),
    (130, 64, 48, 8, 2),
    (301, 24, 36, 16, 4),
];

/// burn's wgpu runtime without fusion, where the MoE layer and the per-expert loop are timed
/// ([`FALLBACK`]); the dense baseline runs fused.
type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

/// The suite's one departure from burn's defaults, printed and stored in the manifest.
pub const FALLBACK: Fallback = Fallback::new(
    KERNEL,
    "the MoE layer (ours) and the per-expert loop baseline are checked and timed on burn's unfused CubeBackend, the dense FFN baseline on the fused default",
    "burn 0.21's fused wgpu computes the per-expert loop wrongly (pinned by the kernels test moe_ops::fused_wgpu_still_computes_the_loop_wrongly); ours runs unfused too, so both share one backend",
);

/// The suite.
pub struct MoeLayer;

impl KernelSuite for MoeLayer {
    fn id(&self) -> &'static str {
        KERNEL
    }

    fn units(&self, _scale: Scale, _seeds: &[u64]) -> Vec<UnitSpec> {
        vec![
            kernel_unit(
                KERNEL,
                "check/flex",
                "moe-layer-check",
                "flex-composition",
                RunsOn::Flex,
            ),
            kernel_unit(
                KERNEL,
                "check/device",
                "moe-layer-check",
                "kernels",
                RunsOn::Kernel,
            ),
            kernel_unit(
                KERNEL,
                "bench",
                "moe-layer-bench",
                "kernels-vs-baselines",
                RunsOn::Kernel,
            ),
        ]
    }

    fn fallbacks(&self) -> Vec<Fallback> {
        vec![FALLBACK]
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        let is_check = !unit.bench;
        match ctx.exec {
            Exec::Flex => check::<Flex>(&Default::default(), seed, GemmPrecision::F32),
            Exec::Wgpu if is_check => check::<CubeWgpu>(
                &Default::default(),
                seed,
                GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>(),
            ),
            Exec::Wgpu => bench::<CubeWgpu, burn::backend::Wgpu>(
                &Default::default(),
                "wgpu (unfused CubeBackend; the dense baseline fused)",
                ctx.device,
                ctx.scale.moe_bench(),
                seed,
                &mut *ctx.tick,
            ),
            #[cfg(feature = "cuda")]
            Exec::Cuda if is_check => {
                check::<burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>>(
                    &Default::default(),
                    seed,
                    GemmPrecision::of_default::<cubecl::cuda::CudaRuntime>(),
                )
            }
            #[cfg(feature = "cuda")]
            Exec::Cuda => bench::<
                burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>,
                burn::backend::Cuda,
            >(
                &Default::default(),
                "cuda (unfused CubeBackend; the dense baseline fused)",
                ctx.device,
                ctx.scale.bench(),
                seed,
                &mut *ctx.tick,
            ),
            #[cfg(not(feature = "cuda"))]
            Exec::Cuda => Outcome::error("built without the cuda feature".into()),
        }
    }
}

/// One seeded MoE layer problem.
struct Case {
    spec: MoeSpec,
    n: usize,
    x: Vec<f32>,
    router: Vec<f32>,
    w13: Vec<f32>,
    w2: Vec<f32>,
    dy: Vec<f32>,
}

impl Case {
    fn new((n, d, h, e, k): (usize, usize, usize, usize, usize), seed: u64) -> Self {
        let sc = |len, s: f32, i: u64| -> Vec<f32> {
            uniform(len, seed.wrapping_add(i))
                .into_iter()
                .map(|v| v * s)
                .collect()
        };
        Case {
            spec: MoeSpec {
                experts: e,
                top_k: k,
                d_model: d,
                hidden: h,
            },
            n,
            x: sc(n * d, 1.0, 0),
            router: sc(d * e, 2.0 / (d as f32).sqrt(), 1),
            w13: sc(e * d * 2 * h, 1.0 / (d as f32).sqrt(), 2),
            w2: sc(e * h * d, 1.0 / (h as f32).sqrt(), 3),
            dy: sc(n * d, 1.0, 4),
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
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

/// `(y, logits, [dx, drouter, dw13, dw2])` on the host.
type LayerRun = (Vec<f32>, Vec<f32>, [Vec<f32>; 4]);

/// `(y, logits, [dx, drouter, dw13, dw2])` of `L = Σ y ⊙ dy` under autodiff on `B`, through the
/// kernels' layer (`moe_layer`) or the per-expert loop.
fn run_layer<B: MoeBackend>(
    c: &Case,
    device: &B::Device,
    kernels: bool,
) -> Result<LayerRun, String> {
    let (x, r, w13, w2) = c.tensors::<Autodiff<B>>(device);
    let (x, r, w13, w2) = (
        x.require_grad(),
        r.require_grad(),
        w13.require_grad(),
        w2.require_grad(),
    );
    let layer = if kernels { moe_layer } else { moe_layer_loop };
    let out =
        layer(&c.spec, x.clone(), r.clone(), w13.clone(), w2.clone()).map_err(|e| e.to_string())?;
    let dy = Tensor::<Autodiff<B>, 2>::from_data(
        TensorData::new(c.dy.clone(), [c.n, c.spec.d_model]),
        device,
    );
    let grads = (out.y.clone() * dy).sum().backward();
    let g = |t: Option<Vec<f32>>| t.ok_or_else(|| "a gradient is missing".to_string());
    Ok((
        host(out.y.inner()),
        host(out.logits.inner()),
        [
            g(x.grad(&grads).map(host))?,
            g(r.grad(&grads).map(host))?,
            g(w13.grad(&grads).map(host))?,
            g(w2.grad(&grads).map(host))?,
        ],
    ))
}

/// The MoE layer on `B` (kernels where `B` has them) against the f64 reference (forward) and
/// burn's autodiff of the per-expert loop on flex (gradients for x, router, w13, w2).
/// Tolerances: forward `2e-5·√(d + h) + 1e-6` + 2e-4 relative; gradients `1e-4·√(d + h)` + 1e-3
/// relative. Where `B`'s own matmul (the router's) is TF32 (`gemm`), its logits move by ~1e-3,
/// enough to swap near-tied experts: the gradients are then compared with the loop on `B` itself
/// (same logits, same routing) under [`GemmPrecision::widen`]ed tolerances.
fn check<B: MoeBackend>(device: &B::Device, seed: u64, gemm: GemmPrecision) -> Outcome {
    let mut metrics = Vec::new();
    let mut failures = Vec::new();
    for (i, &shape) in CHECK_SHAPES.iter().enumerate() {
        let c = Case::new(shape, seed.wrapping_add(31 * i as u64));
        let (n, d, h, e, k) = shape;
        let (y, logits, grads) = match run_layer::<B>(&c, device, true) {
            Ok(v) => v,
            Err(err) => return Outcome::error(format!("MoE layer at {shape:?}: {err}")),
        };
        let want = match gemm {
            GemmPrecision::F32 => run_layer::<Flex>(&c, &Default::default(), false),
            GemmPrecision::Tf32 => run_layer::<B>(&c, device, false),
        };
        let (_, _, want_grads) = match want {
            Ok(v) => v,
            Err(err) => return Outcome::error(format!("per-expert loop at {shape:?}: {err}")),
        };
        let (want_y, _) = moe_reference(&c.spec, &c.x, &logits, &c.w13, &c.w2);
        let want_y: Vec<f32> = want_y.iter().map(|&v| v as f32).collect();
        let sh = format!("n={n} d={d} h={h} E={e} k={k}");
        let ftol = 2e-5 * ((d + h) as f32).sqrt() + 1e-6;
        let (gtol, grtol) = gemm.widen(1e-4 * ((d + h) as f32).sqrt(), 1e-3, d + n);
        let mut checks = vec![("y", &y, &want_y, ftol, 2e-4)];
        for (name, (g, w)) in ["dx", "drouter", "dw13", "dw2"]
            .iter()
            .zip(grads.iter().zip(&want_grads))
        {
            checks.push((name, g, w, gtol, grtol));
        }
        for (name, got, want, atol, rtol) in checks {
            let (diff, _) = max_abs_diff(got, want);
            metrics.push(MetricRow::full(
                "f32",
                &sh,
                None,
                format!("max_abs_err_{name}"),
                diff as f64,
                "abs",
            ));
            if !within(got, want, atol, rtol) {
                failures.push(format!(
                    "{name} at {sh}: max |Δ| = {diff:e} (atol {atol:e}, rtol {rtol:e})"
                ));
            }
        }
    }
    if failures.is_empty() {
        Outcome::passed(
            format!(
                "{} shapes: output matches the f64 reference; gradients for x, router, w13, w2 match burn's autodiff of the per-expert loop",
                CHECK_SHAPES.len()
            ),
            metrics,
        )
    } else {
        Outcome {
            metrics,
            ..Outcome::correctness(failures.join("; "))
        }
    }
}

/// Benchmarks the MoE layer's forward + backward at [`BENCH`] on `B`, after checking its forward
/// there against the f64 reference: the kernels vs the per-expert gather loop a PyTorch user
/// writes (HF `MixtralSparseMoeBlock` in burn ops; target [`LOOP_TARGET`]) and vs a dense SwiGLU
/// FFN with equal active parameters (hidden `k·h`; target [`DENSE_TARGET`]). The three run in
/// the same rotated rounds (each round starts one slot later, so each takes every position
/// equally often), each to a read of every gradient.
///
/// `B` is the unfused `CubeBackend` (burn's matmul; autotune off in the CPU build, on with `cuda`: see Cargo.toml): burn 0.21's fused wgpu computes
/// the loop wrongly ([`FALLBACK`]), so the MoE layer and the loop run there. The
/// dense FFN runs on `D`, burn's fused default backend on the same device (fusion on),
/// the baseline a burn user would pick for it.
fn bench<B: MoeBackend, D: Backend<Device = B::Device>>(
    device: &B::Device,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (n, d, h, e, k) = BENCH;
    let c = Case::new(BENCH, seed);
    let (x, r, w13, w2) = c.tensors::<B>(device);
    // Correctness first, at the benchmark's shape (forward only: the backward is checked by the
    // check units at smaller shapes).
    let out = match moe_layer(&c.spec, x.clone(), r.clone(), w13.clone(), w2.clone()) {
        Ok(o) => o,
        Err(err) => return Outcome::error(err.to_string()),
    };
    let logits = host(out.logits);
    let got = host(out.y);
    let (want, _) = moe_reference(&c.spec, &c.x, &logits, &c.w13, &c.w2);
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let (diff, _) = max_abs_diff(&got, &want);
    let atol = 2e-5 * ((d + h) as f32).sqrt() + 1e-6;
    if !within(&got, &want, atol, 2e-4) {
        return Outcome::correctness(format!(
            "MoE layer forward differs from the f64 reference at {BENCH:?}: max |Δ| = {diff:e}; not timed"
        ));
    }
    let correctness = format!(
        "checked before timing: forward max |Δ| = {diff:.2e} against the f64 reference (tolerance {atol:.1e} + 2e-4·|y|); gradients checked by the check units"
    );
    let dense13 = Tensor::<D, 2>::from_data(
        TensorData::new(
            uniform(d * 2 * k * h, seed + 7)
                .into_iter()
                .map(|v| v / (d as f32).sqrt())
                .collect(),
            [d, 2 * k * h],
        ),
        device,
    );
    let dense2 = Tensor::<D, 2>::from_data(
        TensorData::new(
            uniform(k * h * d, seed + 8)
                .into_iter()
                .map(|v| v / ((k * h) as f32).sqrt())
                .collect(),
            [k * h, d],
        ),
        device,
    );
    type A<B> = Autodiff<B>;
    let moe_step = |kernels: bool| {
        let xa = Tensor::<A<B>, 2>::from_inner(x.clone()).require_grad();
        let ra = Tensor::<A<B>, 2>::from_inner(r.clone()).require_grad();
        let w13a = Tensor::<A<B>, 3>::from_inner(w13.clone()).require_grad();
        let w2a = Tensor::<A<B>, 3>::from_inner(w2.clone()).require_grad();
        let layer = if kernels { moe_layer } else { moe_layer_loop };
        let y = layer(&c.spec, xa.clone(), ra.clone(), w13a.clone(), w2a.clone())
            .expect("valid")
            .y;
        let grads = y.sum().backward();
        // Every gradient is reduced and read, so the time covers all of the backward.
        let sum = xa.grad(&grads).expect("dx").sum()
            + ra.grad(&grads).expect("drouter").sum()
            + w13a.grad(&grads).expect("dw13").sum()
            + w2a.grad(&grads).expect("dw2").sum();
        claimbench_paper::bench::read_back(sum);
    };
    let x_dense = Tensor::<D, 2>::from_data(TensorData::new(c.x.clone(), [n, d]), device);
    let mut dense_step = || {
        let xa = Tensor::<A<D>, 2>::from_inner(x_dense.clone()).require_grad();
        let a = Tensor::<A<D>, 2>::from_inner(dense13.clone()).require_grad();
        let b = Tensor::<A<D>, 2>::from_inner(dense2.clone()).require_grad();
        let grads = dense_swiglu(xa.clone(), a.clone(), b.clone())
            .sum()
            .backward();
        let sum = xa.grad(&grads).expect("dx").sum()
            + a.grad(&grads).expect("dw13").sum()
            + b.grad(&grads).expect("dw2").sum();
        claimbench_paper::bench::read_back(sum);
    };
    let samples = interleaved(
        cfg,
        || moe_step(true),
        || moe_step(false),
        Some(&mut dense_step),
        &mut tick,
    );
    let vs_loop = Samples {
        ours_ms: samples.ours_ms.clone(),
        baseline_ms: samples.baseline_ms.clone(),
        ..Samples::default()
    };
    let vs_dense = Samples {
        ours_ms: samples.ours_ms,
        baseline_ms: samples.floor_ms,
        ..Samples::default()
    };
    // Forward + backward: three GEMMs of 2·m·d·(2h or h) each way (m = n·k), plus the router.
    let m = n * k;
    let flops = 3 * (2 * m * d * 2 * h + 2 * m * h * d) as u64 + 3 * (2 * n * d * e) as u64;
    let bytes = 4 * (3 * (e * d * 3 * h) + 6 * m * d + 4 * m * 2 * h) as u64;
    let shape = vec![n, d, h, e, k];
    let mut entries = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    for (name, s, target, baseline) in [
        (
            "moe-step-vs-loop",
            &vs_loop,
            LOOP_TARGET,
            "per-expert gather loop (HF MixtralSparseMoeBlock in burn ops: select, SwiGLU, index-add)",
        ),
        (
            "moe-step-vs-dense",
            &vs_dense,
            DENSE_TARGET,
            "dense SwiGLU FFN with equal active parameters (hidden k·h), on burn's fused default backend",
        ),
    ] {
        let comparison = Comparison {
            kernel: KERNEL,
            name,
            baseline,
            backend,
            device: device_name,
            shape: &shape,
            target: Some(target),
            bytes,
            flops,
            floor: None,
            correctness: &correctness,
        };
        match comparison.entry(s, cfg.resamples, seed) {
            Ok((entry, rows)) => {
                entries.push(entry);
                metrics.extend(rows);
            }
            Err(err) => return Outcome::error(err),
        }
    }
    let summary = entries
        .iter()
        .map(|en| {
            format!(
                "{} {:.3}× [{:.3}, {:.3}]",
                en.implementation, en.speedup, en.speedup_ci[0], en.speedup_ci[1]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Outcome {
        benchmarks: entries,
        ..Outcome::passed(summary, metrics)
    }
}
