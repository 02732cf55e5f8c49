//! Units of the `kernels/dpo-loss` family: the fused DPO path checked against the f64 reference
//! chain on flex (the composition) and on the kernel device, and its benchmark against what burn
//! users write. The PPO family is in [`super::ppo`].

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_dpo_ppo as reference;
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{
    PreferenceBackend, dpo_loss, dpo_loss_composition, dpo_loss_composition_logsumexp,
    dpo_loss_unchecked,
};
use claimbench_kernels::preference::DpoSettings;
use claimbench_kernels::testing::{
    logits_and_targets, max_abs_diff, sequence_mask, uniform, within,
};
use claimbench_kernels::token_logprob::{backward_reference, forward_reference};

use claimbench_paper::bench::{BenchConfig, Comparison, interleaved_many};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::{ScaleBench, kernel_unit};

/// The kernel id of the fused DPO path.
pub const DPO_KERNEL: &str = "kernels/dpo-loss";

/// Shapes of the DPO correctness units: `(pairs, T, V, logit scale)`. One pair of one token, odd
/// V, pairs not a power of two, a long row, GPT-style V.
pub const DPO_CHECK_SHAPES: &[(usize, usize, usize, f32)] = &[
    (1, 1, 7, 3.0),
    (3, 5, 100, 5.0),
    (5, 17, 1003, 8.0),
    (2, 130, 64, 2.0),
    (1, 16, 32000, 10.0),
];
/// The DPO benchmark of the issue: 4 pairs (8 sequences), T = 128, V = 32000, f32.
pub const DPO_BENCH: (usize, usize, usize) = (4, 128, 32000);
/// The speedup the issue asks of the fused DPO path (forward + backward).
pub const DPO_TARGET: f64 = 2.0;

/// The fused DPO path's suite: checks on flex and on the device, the benchmark.
pub struct DpoLoss;

impl KernelSuite for DpoLoss {
    fn id(&self) -> &'static str {
        DPO_KERNEL
    }

    fn units(&self, _scale: Scale, _seeds: &[u64]) -> Vec<UnitSpec> {
        vec![
            kernel_unit(
                DPO_KERNEL,
                "check/flex",
                "dpo-loss-check",
                "flex-composition",
                RunsOn::Flex,
            ),
            kernel_unit(
                DPO_KERNEL,
                "check/device",
                "dpo-loss-check",
                "fused-kernels",
                RunsOn::Kernel,
            ),
            kernel_unit(
                DPO_KERNEL,
                "bench",
                "dpo-loss-bench",
                "fused-vs-composition",
                RunsOn::Kernel,
            ),
        ]
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        with_backend!(ctx.exec, flex => check_dpo::<Flex>(&Default::default(), seed), |B, R, name| {
            if unit.bench {
                bench_dpo::<B>(&Default::default(), name, ctx.device, ctx.scale.bench(), seed, &mut *ctx.tick)
            } else {
                check_dpo::<B>(&Default::default(), seed)
            }
        })
    }
}

pub(super) fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub(super) fn f32s(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// One seeded DPO problem: `logits [2P, T, V]`, ids, a prompt/response/padding mask, reference
/// sequence log-probs `[2P]`.
struct DpoCase {
    dims: [usize; 3],
    logits: Vec<f32>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    reference: Vec<f32>,
}

impl DpoCase {
    fn new(pairs: usize, t: usize, v: usize, scale: f32, seed: u64) -> Self {
        let s = 2 * pairs;
        let (logits, targets) = logits_and_targets(s * t, v, scale, seed);
        let reference = uniform(s, seed + 2)
            .iter()
            .map(|x| 20.0 * x - 30.0)
            .collect();
        Self {
            dims: [s, t, v],
            logits,
            targets,
            mask: sequence_mask(s, t, seed + 1),
            reference,
        }
    }

    /// The f64 reference chain: `(mean loss, rewards [2P], grad_logits [2P·T·V])`.
    fn want(&self, set: DpoSettings) -> Result<(f32, Vec<f32>, Vec<f32>), String> {
        let [s, t, v] = self.dims;
        let (lp, _) = forward_reference(&self.logits, &self.targets, v);
        let shape = reference::Shape::new(s, t).map_err(|e| e.to_string())?;
        let config = reference::DpoConfig::new(set.beta as f64, set.label_smoothing as f64)
            .map_err(|e| e.to_string())?;
        let (out, g_tok) = reference::dpo::dpo_from_tokens(
            &config,
            &f64s(&lp),
            &f64s(&self.mask),
            shape,
            &f64s(&self.reference),
        )
        .map_err(|e| e.to_string())?;
        let grad = backward_reference(&self.logits, &self.targets, &f32s(&g_tok), v);
        let rewards: Vec<f64> = out
            .chosen_rewards
            .iter()
            .chain(&out.rejected_rewards)
            .copied()
            .collect();
        Ok((out.mean_loss as f32, f32s(&rewards), grad))
    }

    /// Tensors on `device`: `(logits, ids, mask, reference [2P])`.
    fn tensors<B: burn::tensor::backend::Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 3>, Tensor<B, 2, Int>, Tensor<B, 2>, Tensor<B, 1>) {
        let [s, t, v] = self.dims;
        let ids: Vec<i32> = self.targets.iter().map(|&i| i as i32).collect();
        (
            Tensor::from_data(TensorData::new(self.logits.clone(), [s, t, v]), device),
            Tensor::from_data(TensorData::new(ids, [s, t]), device),
            Tensor::from_data(TensorData::new(self.mask.clone(), [s, t]), device),
            Tensor::from_data(TensorData::new(self.reference.clone(), [s]), device),
        )
    }

    /// The validated fused op under autodiff on `B`: `(loss, rewards, grad_logits)`.
    fn fused<B: PreferenceBackend>(
        &self,
        device: &B::Device,
        set: DpoSettings,
    ) -> Result<(f32, Vec<f32>, Vec<f32>), KernelError> {
        let (x, ids, m, r) = self.tensors::<Autodiff<B>>(device);
        let x = x.require_grad();
        let p = self.dims[0] / 2;
        let out = dpo_loss(
            x.clone(),
            ids,
            m,
            r.clone().slice(0..p),
            r.slice(p..2 * p),
            set,
        )?;
        let loss = out.loss.clone().into_data().to_vec::<f32>().expect("f32")[0];
        let rewards = Tensor::cat(vec![out.chosen_rewards, out.rejected_rewards], 0)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let grads = out.loss.backward();
        let g = x.grad(&grads).expect("logits require grad");
        Ok((loss, rewards, g.into_data().to_vec::<f32>().expect("f32")))
    }
}

/// Tolerances of the DPO path for a case: `(loss and rewards atol, grad atol, rtol)`. The sequence
/// log-probs are f32 sums of up to `T` log-probs of magnitude ≤ 2·scale + ln V, scaled by β.
fn dpo_tolerance(t: usize, scale: f32, set: DpoSettings) -> (f32, f32, f32) {
    let seq = 4.0 * f32::EPSILON * t as f32 * (2.0 * scale + 11.0) + 1e-5;
    (set.beta * seq, 1e-6, 1e-4)
}

/// Checks the validated fused DPO path (forward through [`dpo_loss`], backward through autodiff)
/// on backend `B` against the f64 reference chain over [`DPO_CHECK_SHAPES`], plain and with label
/// smoothing. On flex this checks the composition; on wgpu/CUDA the kernels.
fn check_dpo<B: PreferenceBackend>(device: &B::Device, seed: u64) -> Outcome {
    let mut metrics = Vec::new();
    let mut failures = Vec::new();
    for (i, &(p, t, v, scale)) in DPO_CHECK_SHAPES.iter().enumerate() {
        for set in [
            DpoSettings::default(),
            DpoSettings {
                beta: 0.5,
                label_smoothing: 0.1,
            },
        ] {
            let case = DpoCase::new(p, t, v, scale, seed.wrapping_add(31 * i as u64));
            let want = match case.want(set) {
                Ok(w) => w,
                Err(e) => return Outcome::error(format!("reference: {e}")),
            };
            let got = match case.fused::<B>(device, set) {
                Ok(g) => g,
                Err(e) => return Outcome::error(format!("P={p} T={t} V={v}: {e}")),
            };
            let (va, ga, rtol) = dpo_tolerance(t, scale, set);
            let shape = format!(
                "[{}, {t}, {v}] β={} ε={}",
                2 * p,
                set.beta,
                set.label_smoothing
            );
            for (name, g, w, atol) in [
                ("loss", vec![got.0], vec![want.0], va),
                ("rewards", got.1, want.1, va),
                ("grad", got.2, want.2, ga),
            ] {
                let (d, _) = max_abs_diff(&g, &w);
                metrics.push(MetricRow::full(
                    "f32",
                    &shape,
                    None,
                    format!("max_abs_err_{name}"),
                    d as f64,
                    "abs",
                ));
                if !within(&g, &w, atol, rtol) {
                    failures.push(format!(
                        "{name} at {shape}: max |Δ| = {d:e} (atol {atol:e}, rtol {rtol:e})"
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Outcome::passed(
            format!(
                "{} shapes × 2 settings match the f64 reference (loss, implicit rewards, gradient)",
                DPO_CHECK_SHAPES.len()
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

/// The baselines of the DPO benchmark, as burn users would write them: TRL's concatenated
/// forward with `log_softmax + gather`, and with `x[t] − logsumexp(x)`; the headline is the
/// faster.
pub const DPO_BASELINES: [&str; 2] = [
    "burn log_softmax + gather + masked sum + DPO loss",
    "burn gather − logsumexp + masked sum + DPO loss",
];

/// The cross-device alternative of the forward: [`DPO_BASELINES`]`[1]` on burn `flex`, host CPU.
pub const DPO_CROSS_DEVICE: &str =
    "burn flex gather − logsumexp + masked sum + DPO loss on the host CPU";

/// Benchmarks the fused DPO path against both [`DPO_BASELINES`] (the loss in tensor ops, burn's
/// autodiff) at [`DPO_BENCH`] on backend `B` (burn's fused
/// default: fusion on, autotune off in the CPU build, on with `cuda`: Cargo.toml), after checking the fused path against the reference there.
/// Forward + backward (the target) and forward alone.
fn bench_dpo<B: PreferenceBackend>(
    device: &B::Device,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (p, t, v) = DPO_BENCH;
    let set = DpoSettings::default();
    let case = DpoCase::new(p, t, v, 10.0, seed);
    let want = match case.want(set) {
        Ok(w) => w,
        Err(e) => return Outcome::error(format!("reference: {e}")),
    };
    let got = match case.fused::<B>(device, set) {
        Ok(g) => g,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let (va, ga, rtol) = dpo_tolerance(t, 10.0, set);
    let (d_loss, _) = max_abs_diff(&[got.0], &[want.0]);
    let (d_grad, _) = max_abs_diff(&got.2, &want.2);
    if !within(&[got.0], &[want.0], va, rtol) || !within(&got.2, &want.2, ga, rtol) {
        return Outcome::correctness(format!(
            "fused DPO path differs from the reference at 2P={} T={t} V={v}: loss |Δ| = {d_loss:e}, grad max |Δ| = {d_grad:e}; not timed",
            2 * p
        ));
    }
    let correctness = format!(
        "checked before timing: loss |Δ| = {d_loss:.2e}, gradient max |Δ| = {d_grad:.2e} against the f64 reference (tolerances {va:.1e} / {ga:.1e} + {rtol:.0e}·|x|)"
    );

    let (x, ids, m, r) = case.tensors::<B>(device);
    // The baselines must compute the same loss before they are timed.
    for (name, which) in [(DPO_BASELINES[0], 1), (DPO_BASELINES[1], 2)] {
        let out = if which == 1 {
            dpo_loss_composition(x.clone(), ids.clone(), m.clone(), r.clone(), set)
        } else {
            dpo_loss_composition_logsumexp(x.clone(), ids.clone(), m.clone(), r.clone(), set)
        };
        let loss = out.loss.into_data().to_vec::<f32>().expect("f32")[0];
        if !within(&[loss], &[want.0], 4.0 * va, 4.0 * rtol) {
            return Outcome::error(format!(
                "the baseline {name} differs from the reference: loss {loss} vs {}; not timed",
                want.0
            ));
        }
    }
    // 0: fused, 1: log_softmax composition, 2: logsumexp composition.
    let step = |which: usize| {
        let xa = Tensor::<Autodiff<B>, 3>::from_inner(x.clone()).require_grad();
        let ia = Tensor::<Autodiff<B>, 2, Int>::from_inner(ids.clone());
        let ma = Tensor::<Autodiff<B>, 2>::from_inner(m.clone());
        let ra = Tensor::<Autodiff<B>, 1>::from_inner(r.clone());
        let out = match which {
            0 => dpo_loss_unchecked(xa.clone(), ia, ma, ra, set),
            1 => dpo_loss_composition(xa.clone(), ia, ma, ra, set),
            _ => dpo_loss_composition_logsumexp(xa.clone(), ia, ma, ra, set),
        };
        let grads = out.loss.backward();
        // The gradient is reduced to a scalar and read: copying 131 MB back would dilute both.
        claimbench_paper::bench::read_back(xa.grad(&grads).expect("grad").sum());
    };
    let (mut b1, mut b2) = (|| step(1), || step(2));
    let fwd_bwd = interleaved_many(
        cfg,
        || step(0),
        vec![(DPO_BASELINES[0], &mut b1), (DPO_BASELINES[1], &mut b2)],
        None,
        None,
        &mut tick,
    );
    let forward = |which: usize| {
        let out = match which {
            0 => dpo_loss_unchecked(x.clone(), ids.clone(), m.clone(), r.clone(), set),
            1 => dpo_loss_composition(x.clone(), ids.clone(), m.clone(), r.clone(), set),
            _ => dpo_loss_composition_logsumexp(x.clone(), ids.clone(), m.clone(), r.clone(), set),
        };
        claimbench_paper::bench::read_back(out.loss)
    };
    let (mut f1, mut f2) = (|| forward(1), || forward(2));
    // The alternative a user without a GPU picks on this machine (cross-device, shown apart).
    let host = Default::default();
    let (fx, fi, fm, fr) = (
        Tensor::<Flex, 3>::from_data(x.to_data(), &host),
        Tensor::<Flex, 2, Int>::from_data(ids.to_data(), &host),
        Tensor::<Flex, 2>::from_data(m.to_data(), &host),
        Tensor::<Flex, 1>::from_data(r.to_data(), &host),
    );
    let mut flex_lse = || {
        let out =
            dpo_loss_composition_logsumexp(fx.clone(), fi.clone(), fm.clone(), fr.clone(), set);
        claimbench_paper::bench::read_back(out.loss)
    };
    let fwd = interleaved_many(
        cfg,
        || forward(0),
        vec![(DPO_BASELINES[0], &mut f1), (DPO_BASELINES[1], &mut f2)],
        None,
        Some((DPO_CROSS_DEVICE, &mut flex_lse)),
        &mut tick,
    );
    let logits_bytes = (2 * p * t * v * 4) as u64;
    let flops = (2 * p * t * v * 4) as u64;
    let shape = vec![2 * p, t, v];
    let mut entries = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    for (name, s, target, baseline, bytes, fl) in [
        (
            "fused-dpo-forward-backward",
            &fwd_bwd,
            Some(DPO_TARGET),
            DPO_BASELINES[0],
            3 * logits_bytes,
            2 * flops,
        ),
        (
            "fused-dpo-forward",
            &fwd,
            None,
            DPO_BASELINES[0],
            logits_bytes,
            flops,
        ),
    ] {
        let comparison = Comparison {
            kernel: DPO_KERNEL,
            name,
            baseline,
            backend,
            device: device_name,
            shape: &shape,
            target,
            bytes,
            flops: fl,
            floor: None,
            correctness: &correctness,
        };
        match comparison.entry(s, cfg.resamples, seed) {
            Ok((entry, rows)) => {
                entries.push(entry);
                metrics.extend(rows);
            }
            Err(e) => return Outcome::error(e),
        }
    }
    let e = &entries[0];
    let summary = format!(
        "DPO forward+backward {} against {} [{:.2}, {:.2}] (fused {:.1} ms, it {:.1} ms); forward {:.2}x [{:.2}, {:.2}]",
        claimbench_paper::bench::ratio_words(e.speedup),
        e.baseline,
        e.speedup_ci[0],
        e.speedup_ci[1],
        e.ours_median_ms(),
        e.baseline_median_ms(),
        entries[1].speedup,
        entries[1].speedup_ci[0],
        entries[1].speedup_ci[1]
    );
    Outcome {
        benchmarks: entries,
        ..Outcome::passed(summary, metrics)
    }
}
