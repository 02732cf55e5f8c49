//! The fused LoRA/DoRA layers' suite (`kernels/dora-linear`): checked against the f64
//! references on flex (the composition) and on the kernel device, and benchmarked against the
//! baselines a user would run.

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use claimbench_kernels::burn_ops::{
    DoraBackend, NormGrad, dora_linear, dora_linear_peft, lora_linear,
};
use claimbench_kernels::dora::{AdapterSpec, HostAdapter};
use claimbench_kernels::testing::{GemmPrecision, max_abs_diff, uniform, within};
use claimbench_paper::bench::{BenchConfig, Comparison, interleaved};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::{ScaleBench, kernel_unit};

/// The kernel id of the fused LoRA/DoRA layers.
pub const KERNEL: &str = "kernels/dora-linear";
/// The benchmark of the issue: tokens, `d_in = d_out`, rank.
pub const BENCH: (usize, usize, usize) = (2048, 1024, 16);
/// DoRA forward vs the bare base linear: at most 5% overhead.
pub const FORWARD_TARGET: f64 = 0.95;
/// A DoRA training step vs a LoRA step: at most 1.10×.
pub const STEP_TARGET: f64 = 0.91;
/// Shapes of the correctness units `(n, d_in, d_out, r)`: ones, odd, off the cube and chunk
/// sizes, one column, many columns with r = 16.
pub const CHECK_SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (5, 3, 7, 1),
    (130, 65, 33, 4),
    (3, 130, 1, 1),
    (300, 64, 257, 16),
];

/// The suite.
pub struct DoraLinear;

impl KernelSuite for DoraLinear {
    fn id(&self) -> &'static str {
        KERNEL
    }

    fn units(&self, _scale: Scale, _seeds: &[u64]) -> Vec<UnitSpec> {
        vec![
            kernel_unit(
                KERNEL,
                "check/flex",
                "dora-linear-check",
                "flex-composition",
                RunsOn::Flex,
            ),
            kernel_unit(
                KERNEL,
                "check/device",
                "dora-linear-check",
                "fused-kernels",
                RunsOn::Kernel,
            ),
            kernel_unit(
                KERNEL,
                "bench",
                "dora-linear-bench",
                "fused-vs-baselines",
                RunsOn::Kernel,
            ),
        ]
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        with_backend!(ctx.exec, flex => check_flex(seed), |B, R, name| {
            let gemm = GemmPrecision::of_default::<R>();
            if unit.bench {
                bench::<B>(&Default::default(), gemm, name, ctx.device, ctx.scale.bench(), seed, &mut *ctx.tick)
            } else {
                check::<B>(&Default::default(), seed, gemm)
            }
        })
    }
}

/// The composition on flex vs the references.
fn check_flex(seed: u64) -> Outcome {
    check::<Flex>(&Default::default(), seed, GemmPrecision::F32)
}

/// One seeded correctness problem of the fused layers.
struct Case {
    spec: AdapterSpec,
    n: usize,
    x: Vec<f32>,
    w0: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    m: Vec<f32>,
    dy: Vec<f32>,
}

impl Case {
    fn new((n, d_in, d_out, rank): (usize, usize, usize, usize), seed: u64) -> Self {
        let spec = AdapterSpec {
            d_in,
            d_out,
            rank,
            alpha: 2.0 * rank as f32,
        };
        let sc = |len, s: f32, k: u64| -> Vec<f32> {
            uniform(len, seed.wrapping_add(k))
                .into_iter()
                .map(|v| v * s)
                .collect()
        };
        let mut c = Case {
            spec,
            n,
            x: sc(n * d_in, 1.0, 0),
            w0: sc(d_in * d_out, 0.5, 1),
            a: sc(d_in * rank, 0.5, 2),
            b: sc(rank * d_out, 0.3, 3),
            m: Vec::new(),
            dy: sc(n * d_out, 1.0, 4),
        };
        let norms = c.host().column_norms_reference();
        c.m = norms
            .iter()
            .zip(sc(d_out, 0.3, 5))
            .map(|(&v, u)| (v * (1.0 + u as f64)) as f32)
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

    fn tensors<B: Backend>(&self, device: &B::Device) -> [Tensor<B, 2>; 5] {
        let s = self.spec;
        let t = |v: &[f32], shape: [usize; 2]| {
            Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
        };
        [
            t(&self.x, [self.n, s.d_in]),
            t(&self.w0, [s.d_in, s.d_out]),
            t(&self.a, [s.d_in, s.rank]),
            t(&self.b, [s.rank, s.d_out]),
            t(&self.dy, [self.n, s.d_out]),
        ]
    }

    fn m<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(self.m.clone(), [self.m.len()]), device)
    }
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

fn f32s(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Forward and gradients `(y, [dx, dA, dB, dm])` of the fused layer under autodiff on `B`, with
/// `∂L/∂y = dy`; `dm` is empty for LoRA.
fn fused<B: DoraBackend>(
    c: &Case,
    device: &B::Device,
    dora: Option<NormGrad>,
) -> Result<(Vec<f32>, [Vec<f32>; 4]), String> {
    let [x, w0, a, b, dy] = c.tensors::<Autodiff<B>>(device);
    let (x, a, b) = (x.require_grad(), a.require_grad(), b.require_grad());
    let m = c.m::<Autodiff<B>>(device).require_grad();
    let y = match dora {
        Some(norm) => dora_linear(
            &c.spec,
            x.clone(),
            w0,
            a.clone(),
            b.clone(),
            m.clone(),
            norm,
        ),
        None => lora_linear(&c.spec, x.clone(), w0, a.clone(), b.clone()),
    }
    .map_err(|e| e.to_string())?;
    let grads = (y.clone() * dy).sum().backward();
    let g = |t: &Tensor<Autodiff<B>, 2>| t.grad(&grads).map(host).ok_or("no gradient");
    let dm = if dora.is_some() {
        m.grad(&grads).map(host).ok_or("no gradient for m")?
    } else {
        Vec::new()
    };
    Ok((host(y), [g(&x)?, g(&a)?, g(&b)?, dm]))
}

/// Checks LoRA and DoRA (detached and exact norm gradients) on backend `B` against the f64
/// references (the merged weight; Eqs. 6, 7, 11) over [`CHECK_SHAPES`]: output and gradients
/// for `x`, `A`, `B`, `m`. Tolerances `4e-6·√k + 1e-6` + 2e-4 relative for sums of `k` terms,
/// [`GemmPrecision::widen`]ed where `B`'s matmul (the layer's base GEMM) is TF32 (`gemm`).
fn check<B: DoraBackend>(device: &B::Device, seed: u64, gemm: GemmPrecision) -> Outcome {
    let mut metrics = Vec::new();
    let mut failures = Vec::new();
    for (i, &shape) in CHECK_SHAPES.iter().enumerate() {
        let c = Case::new(shape, seed.wrapping_add(17 * i as u64));
        let (n, d_in, d_out, r) = shape;
        let h = c.host();
        let tol = |k: usize| gemm.widen(4e-6 * (k as f32).sqrt() + 1e-6, 2e-4, k);
        for (layer, norm) in [
            ("lora", None),
            ("dora-detached", Some(NormGrad::Detached)),
            ("dora-exact", Some(NormGrad::Exact)),
        ] {
            let (y, grads) = match fused::<B>(&c, device, norm) {
                Ok(v) => v,
                Err(e) => return Outcome::error(format!("{layer} at {shape:?}: {e}")),
            };
            let (want_y, want) = match norm {
                None => (
                    h.lora_forward_reference(&c.x, n),
                    h.lora_grads_reference(&c.x, &c.dy, n),
                ),
                Some(nm) => (
                    h.dora_forward_reference(&c.x, n),
                    h.dora_grads_reference(&c.x, &c.dy, n, nm == NormGrad::Exact),
                ),
            };
            let sh = format!("[{n}, {d_in}] x [{d_in}, {d_out}] r={r}");
            for (name, got, want, (atol, rtol)) in [
                ("y", &y, &want_y, tol(d_in + r)),
                ("dx", &grads[0], &want.dx, tol(d_out + r)),
                ("dA", &grads[1], &want.da, tol(n * d_out)),
                ("dB", &grads[2], &want.db, tol(n * d_in)),
                ("dm", &grads[3], &want.dm, tol(n * d_in)),
            ] {
                let want = f32s(want);
                let (d, _) = max_abs_diff(got, &want);
                metrics.push(MetricRow::full(
                    "f32",
                    &sh,
                    None,
                    format!("max_abs_err_{layer}_{name}"),
                    d as f64,
                    "abs",
                ));
                if !within(got, &want, atol, rtol) {
                    failures.push(format!(
                        "{layer} {name} at {sh}: max |Δ| = {d:e} (atol {atol:e}, rtol {rtol:e})"
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Outcome::passed(
            format!(
                "{} shapes: LoRA, DoRA (detached Eq. 11, exact Eq. 6) outputs and gradients for x, A, B, m (Eq. 7) match the f64 references",
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

/// What a benchmark round runs.
#[derive(Clone, Copy, PartialEq)]
enum Layer {
    Base,
    Lora,
    Dora,
    Peft,
}

/// Benchmarks the fused DoRA layer at [`BENCH`] on backend `B` (burn's fused default: fusion and
/// autotune off in the CPU build, on with `cuda`: see Cargo.toml), after checking its forward against the f64 reference there: DoRA forward vs the
/// bare base linear `x W0` (target [`FORWARD_TARGET`]); DoRA forward vs the fused LoRA forward
/// (reported: what the norms and `⊙ g` cost on the same GEMM, since on lavapipe the layer's own
/// GEMM outruns burn's and the first ratio then exceeds 1); a DoRA training step (forward, backward
/// for `x`, `A`, `B`, `m`) vs a fused LoRA step (target [`STEP_TARGET`]); and the DoRA step vs
/// PEFT's unfused composition in burn ops (reported). `gemm`: the precision of `B`'s matmul, for
/// the check's tolerance.
fn bench<B: DoraBackend>(
    device: &B::Device,
    gemm: GemmPrecision,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (n, d, r) = BENCH;
    let c = Case::new((n, d, d, r), seed);
    let s = c.spec;
    let [x, w0, a, b, _] = c.tensors::<B>(device);
    let m = c.m::<B>(device);
    let fwd = |layer: Layer| -> Tensor<B, 2> {
        match layer {
            Layer::Base => x.clone().matmul(w0.clone()),
            Layer::Lora => {
                lora_linear(&s, x.clone(), w0.clone(), a.clone(), b.clone()).expect("valid")
            }
            Layer::Dora => dora_linear(
                &s,
                x.clone(),
                w0.clone(),
                a.clone(),
                b.clone(),
                m.clone(),
                NormGrad::Detached,
            )
            .expect("valid"),
            Layer::Peft => dora_linear_peft(
                x.clone(),
                w0.clone(),
                a.clone(),
                b.clone(),
                m.clone(),
                s.scale(),
                NormGrad::Detached,
            ),
        }
    };
    // Correctness first, at the benchmark's shape.
    let got = host(fwd(Layer::Dora));
    let want = f32s(&c.host().dora_forward_reference(&c.x, n));
    let (dy, _) = max_abs_diff(&got, &want);
    let (atol, rtol) = gemm.widen(4e-6 * ((d + r) as f32).sqrt() + 1e-6, 2e-4, d + r);
    if !within(&got, &want, atol, rtol) {
        return Outcome::correctness(format!(
            "fused DoRA forward differs from the f64 reference at n={n} d={d} r={r}: max |Δ| = {dy:e}; not timed"
        ));
    }
    let correctness = format!(
        "checked before timing: forward max |Δ| = {dy:.2e} against the f64 reference (tolerance {atol:.1e} + {rtol:.0e}·|y|); gradients checked by the check units"
    );
    let step = |layer: Layer| {
        type A<B> = Autodiff<B>;
        let xa = Tensor::<A<B>, 2>::from_inner(x.clone()).require_grad();
        let wa = Tensor::<A<B>, 2>::from_inner(w0.clone());
        let aa = Tensor::<A<B>, 2>::from_inner(a.clone()).require_grad();
        let ba = Tensor::<A<B>, 2>::from_inner(b.clone()).require_grad();
        let ma = Tensor::<A<B>, 1>::from_inner(m.clone()).require_grad();
        let y = match layer {
            Layer::Lora => lora_linear(&s, xa.clone(), wa, aa.clone(), ba.clone()).expect("valid"),
            Layer::Dora => dora_linear(
                &s,
                xa.clone(),
                wa,
                aa.clone(),
                ba.clone(),
                ma,
                NormGrad::Detached,
            )
            .expect("valid"),
            _ => dora_linear_peft(
                xa.clone(),
                wa,
                aa.clone(),
                ba.clone(),
                ma,
                s.scale(),
                NormGrad::Detached,
            ),
        };
        let grads = y.sum().backward();
        // Every gradient is reduced and read, so the time covers all of the backward.
        let sum = xa.grad(&grads).expect("dx").sum()
            + aa.grad(&grads).expect("dA").sum()
            + ba.grad(&grads).expect("dB").sum();
        claimbench_paper::bench::read_back(sum);
    };
    // One element of each output is read (its producer runs in full; `read_back` then syncs):
    // reading all 8 MB back would time a device-to-host copy as large as a GPU's forward.
    let first = |layer: Layer| claimbench_paper::bench::read_back(fwd(layer).slice([0..1, 0..1]));
    let forward = interleaved(
        cfg,
        || first(Layer::Dora),
        || first(Layer::Base),
        None,
        &mut tick,
    );
    let forward_vs_lora = interleaved(
        cfg,
        || first(Layer::Dora),
        || first(Layer::Lora),
        None,
        &mut tick,
    );
    let vs_lora = interleaved(
        cfg,
        || step(Layer::Dora),
        || step(Layer::Lora),
        None,
        &mut tick,
    );
    let vs_peft = interleaved(
        cfg,
        || step(Layer::Dora),
        || step(Layer::Peft),
        None,
        &mut tick,
    );
    let gemm = 2 * (n * d * d) as u64;
    let low_rank = 2 * (2 * n * d * r + d * d * r) as u64;
    let act = (n * d * 4) as u64;
    let shape = vec![n, d, d, r];
    let mut entries = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    for (name, samples, target, baseline, bytes, flops) in [
        (
            "dora-forward",
            &forward,
            Some(FORWARD_TARGET),
            "bare base linear x·W0 (burn matmul)",
            2 * act + (d * d * 4) as u64,
            gemm + low_rank,
        ),
        (
            "dora-forward-vs-lora",
            &forward_vs_lora,
            None,
            "fused LoRA forward (the same GEMM and low-rank steps, no norms or ⊙ g)",
            2 * act + (d * d * 4) as u64,
            gemm + low_rank,
        ),
        (
            "dora-step-vs-lora",
            &vs_lora,
            Some(STEP_TARGET),
            "fused LoRA step (same GEMMs, no norm or scaling)",
            6 * act,
            2 * gemm + 3 * low_rank,
        ),
        (
            "dora-step-vs-peft",
            &vs_peft,
            None,
            "PEFT-style unfused DoRA step in burn ops (W0 + s·A·B materialised)",
            6 * act,
            2 * gemm + 3 * low_rank,
        ),
    ] {
        let comparison = Comparison {
            kernel: KERNEL,
            name,
            baseline,
            backend,
            device: device_name,
            shape: &shape,
            target,
            bytes,
            flops,
            floor: None,
            correctness: &correctness,
        };
        match comparison.entry(samples, cfg.resamples, seed) {
            Ok((e, rows)) => {
                entries.push(e);
                metrics.extend(rows);
            }
            Err(e) => return Outcome::error(e),
        }
    }
    let summary = entries
        .iter()
        .map(|e| {
            format!(
                "{} {:.3}× [{:.3}, {:.3}]",
                e.implementation, e.speedup, e.speedup_ci[0], e.speedup_ci[1]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Outcome {
        benchmarks: entries,
        ..Outcome::passed(summary, metrics)
    }
}
