//! Units of the `kernels/cross-entropy` family (used by the continual pre-training reproduction):
//! the fused cross-entropy checked against its reference (loss and gradient, with ignored rows
//! and label smoothing) on flex and on the kernel device, and benchmarked against burn's own
//! `CrossEntropyLoss` on burn's default fused backend.

use burn::backend::{Autodiff, Flex};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_kernels::burn_ops::{
    TokenLogprobBackend, composition_forward, cross_entropy, cross_entropy_and_grad,
    cross_entropy_unchecked,
};
use claimbench_kernels::cross_entropy::{Settings, backward_reference, forward_reference};
use claimbench_kernels::testing::cross_entropy::inputs;
use claimbench_kernels::testing::token_logprob::{backward_tolerance, forward_tolerance};
use claimbench_kernels::testing::{max_abs_diff, within};
use claimbench_kernels::token_logprob::Problem;

use claimbench_paper::bench::{BenchConfig, Comparison, interleaved_many, read_back};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::{ScaleBench, kernel_unit};

/// The kernel id of this family.
pub const KERNEL: &str = "kernels/cross-entropy";

/// The forward+backward speedup the continual issue asks for, vs burn's `CrossEntropyLoss`.
pub const TARGET: f64 = 2.0;

/// Correctness shapes: `(rows, vocab, logit scale, ignore every k-th row, ignore index, ε)`.
/// V = 1, odd V, one row, ignored rows with N not a multiple of the cube size, an ignore index
/// inside the vocabulary, logits at ±1e4, GPT-2's V.
pub const CHECK_CASES: &[(usize, usize, f32, usize, i64, f32)] = &[
    (4, 1, 3.0, 0, -100, 0.1),
    (1, 7, 3.0, 0, -100, 0.0),
    (257, 100, 5.0, 3, -100, 0.0),
    (64, 33, 5.0, 4, 0, 0.1),
    (17, 1003, 1.0e4, 5, -100, 0.1),
    (13, 50257, 8.0, 4, -100, 0.1),
];

/// The suite: checks on flex and on the device, the benchmark against burn's `CrossEntropyLoss`.
pub struct CrossEntropy;

impl KernelSuite for CrossEntropy {
    fn id(&self) -> &'static str {
        KERNEL
    }

    fn units(&self, _scale: Scale, _seeds: &[u64]) -> Vec<UnitSpec> {
        vec![
            kernel_unit(
                KERNEL,
                "check/flex",
                "cross-entropy-check",
                "flex-composition",
                RunsOn::Flex,
            ),
            kernel_unit(
                KERNEL,
                "check/device",
                "cross-entropy-check",
                "fused-kernel",
                RunsOn::Kernel,
            ),
            kernel_unit(
                KERNEL,
                "bench",
                "cross-entropy-bench",
                "fused-vs-burn-cross-entropy",
                RunsOn::Kernel,
            ),
        ]
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        with_backend!(ctx.exec, flex => check::<Flex>(&Default::default(), seed), |B, R, name| {
            if unit.bench {
                bench::<B>(&Default::default(), name, ctx.device, ctx.scale.bench(), seed, &mut *ctx.tick)
            } else {
                check::<B>(&Default::default(), seed)
            }
        })
    }
}

/// Checks the fused loss and its gradient (autodiff through the op) on `B` against the
/// plain-Rust references; records max |Δ| and the tolerance per case.
pub fn check<B: TokenLogprobBackend>(device: &B::Device, seed: u64) -> Outcome {
    let mut metrics = Vec::new();
    let mut failures = Vec::new();
    for (i, &(rows, vocab, scale, every, ignore_index, smoothing)) in CHECK_CASES.iter().enumerate()
    {
        let s = Settings {
            ignore_index,
            smoothing,
        };
        let (logits, targets) = inputs(rows, vocab, scale, seed + i as u64, every, s);
        let g = 0.5f32;
        let (_, want) = forward_reference(&logits, &targets, vocab, s);
        let want_grad = backward_reference(&logits, &targets, g, vocab, s);
        let (loss, grad) = match cross_entropy_and_grad::<B>(
            |x, t| cross_entropy(x, t, s),
            device,
            &logits,
            &targets,
            g,
            [rows, vocab],
        ) {
            Ok(v) => v,
            Err(e) => return Outcome::error(format!("{rows}x{vocab}: {e}")),
        };
        let shape = format!("[{rows}, {vocab}]");
        let (fa, fr) = forward_tolerance(&logits);
        let (ga, gr) = backward_tolerance(&logits);
        let want = [want as f32];
        for (name, got, want, atol, rtol) in [
            ("loss", &[loss][..], &want[..], 2.0 * fa, 2.0 * fr),
            ("grad", &grad[..], &want_grad[..], ga, gr),
        ] {
            let (d, at) = max_abs_diff(got, want);
            let tol = atol + rtol * want[at].abs();
            metrics.push(MetricRow::full(
                "f32",
                &shape,
                None,
                format!("max_abs_err_{name}"),
                d as f64,
                "abs",
            ));
            metrics.push(MetricRow::full(
                "f32",
                &shape,
                None,
                format!("tolerance_{name}"),
                tol as f64,
                "abs",
            ));
            if !within(got, want, atol, rtol) {
                failures.push(format!(
                    "{name} at {rows}x{vocab} (ε {smoothing}, ignore {ignore_index}): max |Δ| = {d:e} at {at} (tolerance {tol:e})"
                ));
            }
        }
    }
    if failures.is_empty() {
        Outcome::passed(
            format!(
                "{} cases match the reference (loss and gradient; ignored rows, label smoothing)",
                CHECK_CASES.len()
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

/// The baselines, as a burn user would write them: burn's own loss module, and the mean of
/// `logsumexp(x) − x[t]` composed of tensor ops (the form TRL-style code uses; valid here
/// because the benchmark has no ignored rows and no smoothing). The headline is the faster.
pub const BASELINES: [&str; 2] = ["burn CrossEntropyLoss", "burn mean(logsumexp − x[t])"];

/// The cross-device alternative of the forward: [`BASELINES`]`[1]` on burn `flex`, host CPU.
pub const CROSS_DEVICE: &str = "burn flex mean(logsumexp − x[t]) on the host CPU";

/// `mean_r (lse_r − x_{r,t_r})` composed of burn tensor ops ([`composition_forward`]).
fn logsumexp_loss<B: burn::tensor::backend::Backend>(
    x: Tensor<B, 2>,
    t: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    composition_forward(x, t).0.neg().mean()
}

/// Benchmarks the fused cross-entropy forward+backward (the training step's loss) against both
/// [`BASELINES`] on backend `B` (burn's fused default) at 1024 × 32000, f32, no ignored rows
/// and no smoothing (burn's defaults), after checking ours and each baseline against the
/// reference there. A second comparison times the forward alone.
pub fn bench<B: TokenLogprobBackend>(
    device: &B::Device,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (rows, vocab) = (
        super::token_logprob::BENCH_ROWS,
        super::token_logprob::BENCH_VOCAB,
    );
    let s = Settings::default();
    let problem = Problem::new(rows, vocab).expect("benchmark shape is valid");
    let (logits, targets) = inputs(rows, vocab, 10.0, seed, 0, s);
    let (_, want) = forward_reference(&logits, &targets, vocab, s);
    let want_grad = backward_reference(&logits, &targets, 1.0, vocab, s);
    let burn_ce = |x: Tensor<Autodiff<B>, 2>, t: Tensor<Autodiff<B>, 1, Int>| {
        Ok::<_, claimbench_kernels::KernelError>(
            CrossEntropyLossConfig::new()
                .init::<Autodiff<B>>(&x.device())
                .forward(x, t),
        )
    };
    // Correctness first, for ours and for the baseline, at the benchmark shape.
    let mut notes = Vec::new();
    for (name, which) in [("fused", 0), (BASELINES[0], 1), (BASELINES[1], 2)] {
        let fused = which == 0;
        let result = match which {
            0 => cross_entropy_and_grad::<B>(
                |x, t| cross_entropy(x, t, s),
                device,
                &logits,
                &targets,
                1.0,
                [rows, vocab],
            ),
            1 => {
                cross_entropy_and_grad::<B>(burn_ce, device, &logits, &targets, 1.0, [rows, vocab])
            }
            _ => cross_entropy_and_grad::<B>(
                |x, t| Ok(logsumexp_loss(x, t)),
                device,
                &logits,
                &targets,
                1.0,
                [rows, vocab],
            ),
        };
        let (loss, grad) = match result {
            Ok(v) => v,
            Err(e) => return Outcome::error(format!("{name}: {e}")),
        };
        let (fa, fr) = forward_tolerance(&logits);
        let (ga, gr) = backward_tolerance(&logits);
        let (dg, _) = max_abs_diff(&grad, &want_grad);
        let dl = (loss as f64 - want).abs();
        if dl > (2.0 * fa) as f64 + (2.0 * fr) as f64 * want.abs()
            || !within(&grad, &want_grad, ga, gr)
        {
            let msg = format!(
                "{name} differs from the reference at {rows}x{vocab}: |Δloss| = {dl:e}, max |Δgrad| = {dg:e}; not timed"
            );
            return if fused {
                Outcome::correctness(msg)
            } else {
                Outcome::error(format!("the baseline is wrong: {msg}"))
            };
        }
        notes.push(format!("{name} |Δloss| {dl:.1e}, max |Δgrad| {dg:.1e}"));
    }
    let correctness = format!(
        "checked before timing against the f64 reference: {}",
        notes.join("; ")
    );

    let x = Tensor::<B, 2>::from_data(TensorData::new(logits.clone(), [rows, vocab]), device);
    let ids: Vec<i32> = targets.iter().map(|&t| t as i32).collect();
    let t = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows]), device);
    // 0: fused, 1: CrossEntropyLoss, 2: mean(logsumexp − x[t]).
    let step = |which: usize| {
        let xa = Tensor::<Autodiff<B>, 2>::from_inner(x.clone()).require_grad();
        let ta = Tensor::<Autodiff<B>, 1, Int>::from_inner(t.clone());
        let loss = match which {
            0 => cross_entropy_unchecked(xa.clone(), ta, s, rows),
            1 => CrossEntropyLossConfig::new()
                .init::<Autodiff<B>>(device)
                .forward(xa.clone(), ta),
            _ => logsumexp_loss(xa.clone(), ta),
        };
        let grads = loss.backward();
        // The gradient is reduced to a scalar and read: the (equal) 131 MB copy to the host
        // would otherwise dilute the ratio.
        read_back(xa.grad(&grads).expect("grad").sum());
    };
    let (mut bwd_module, mut bwd_lse) = (|| step(1), || step(2));
    let fwd_bwd = interleaved_many(
        cfg,
        || step(0),
        vec![
            (BASELINES[0], &mut bwd_module),
            (BASELINES[1], &mut bwd_lse),
        ],
        None,
        None,
        &mut tick,
    );
    let mut fwd_module = || {
        read_back(
            CrossEntropyLossConfig::new()
                .init::<B>(device)
                .forward(x.clone(), t.clone()),
        )
    };
    let mut fwd_lse = || read_back(logsumexp_loss(x.clone(), t.clone()));
    // The alternative a user without a GPU picks on this machine (cross-device, shown apart).
    let fx = Tensor::<Flex, 2>::from_data(
        TensorData::new(logits.clone(), [rows, vocab]),
        &Default::default(),
    );
    let ft = Tensor::<Flex, 1, Int>::from_data(t.to_data(), &Default::default());
    let mut flex_lse = || read_back(logsumexp_loss(fx.clone(), ft.clone()));
    let fwd = interleaved_many(
        cfg,
        || read_back(cross_entropy_unchecked(x.clone(), t.clone(), s, rows)),
        vec![
            (BASELINES[0], &mut fwd_module),
            (BASELINES[1], &mut fwd_lse),
        ],
        None,
        Some((CROSS_DEVICE, &mut flex_lse)),
        &mut tick,
    );

    let mut entries = Vec::new();
    let mut metrics = Vec::new();
    let shape = vec![rows, vocab];
    for (name, samples, target, bytes, flops) in [
        (
            "fused-forward-backward",
            &fwd_bwd,
            Some(TARGET),
            problem.forward_bytes() + 2 * problem.logits_bytes(),
            problem.forward_flops() * 2,
        ),
        (
            "fused-forward",
            &fwd,
            None,
            problem.forward_bytes(),
            problem.forward_flops(),
        ),
    ] {
        let comparison = Comparison {
            kernel: KERNEL,
            name,
            baseline: BASELINES[0],
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
            Ok((entry, rows)) => {
                entries.push(entry);
                metrics.extend(rows);
            }
            Err(e) => return Outcome::error(e),
        }
    }
    let (fb, f) = (&entries[0], &entries[1]);
    let summary = format!(
        "forward+backward {} against {} [{:.2}, {:.2}] (fused {:.1} ms, it {:.1} ms; target ≥ {TARGET}x); forward {:.2}x [{:.2}, {:.2}]",
        claimbench_paper::bench::ratio_words(fb.speedup),
        fb.baseline,
        fb.speedup_ci[0],
        fb.speedup_ci[1],
        fb.ours_median_ms(),
        fb.baseline_median_ms(),
        f.speedup,
        f.speedup_ci[0],
        f.speedup_ci[1]
    );
    Outcome {
        benchmarks: entries,
        ..Outcome::passed(summary, metrics)
    }
}
