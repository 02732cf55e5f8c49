//! Units of the `kernels/dpo-loss` and `kernels/ppo` families: the fused DPO path checked against
//! the f64 reference chain on flex (the composition) and on the kernel device, its benchmark
//! against what a burn user writes, the PPO kernels (KL rewards, GAE, whitening, clipped losses)
//! checked on the device, and GAE on the device against the host loop.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_dpo_ppo as reference;
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{
    PreferenceBackend, dpo_loss, dpo_loss_composition, dpo_loss_unchecked,
};
use claimbench_kernels::ppo::{self, LossInputs, PpoSettings};
use claimbench_kernels::preference::DpoSettings;
use claimbench_kernels::sequences::SeqShape;
use claimbench_kernels::testing::{
    logits_and_targets, max_abs_diff, poison_masked, read_f32, sequence_mask, uniform, within,
};
use claimbench_kernels::token_logprob::{backward_reference, forward_reference};
use cubecl::prelude::*;

use claimbench_paper::bench::{BenchConfig, Comparison, interleaved};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::{ScaleBench, kernel_unit};

/// The kernel id of the fused DPO path.
pub const DPO_KERNEL: &str = "kernels/dpo-loss";
/// The kernel id of the PPO family.
pub const PPO_KERNEL: &str = "kernels/ppo";

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
/// The GAE benchmark of the issue: 4096 sequences × 512 steps.
pub const GAE_BENCH: (usize, usize) = (4096, 512);
/// GAE on the device must beat the host loop: speedup > 1.
pub const GAE_TARGET: f64 = 1.0;
/// Shapes of the PPO correctness unit: `(rows, time)`.
pub const PPO_CHECK_SHAPES: &[(usize, usize)] = &[(1, 1), (3, 7), (65, 33), (2, 1029), (300, 5)];

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

/// The PPO kernels' suite (cubecl level): checks on the device, the GAE benchmark.
pub struct Ppo;

impl KernelSuite for Ppo {
    fn id(&self) -> &'static str {
        PPO_KERNEL
    }

    fn units(&self, _scale: Scale, _seeds: &[u64]) -> Vec<UnitSpec> {
        vec![
            kernel_unit(
                PPO_KERNEL,
                "check/device",
                "ppo-check",
                "kernels",
                RunsOn::Kernel,
            ),
            kernel_unit(
                PPO_KERNEL,
                "bench",
                "gae-bench",
                "device-vs-host-loop",
                RunsOn::Kernel,
            ),
        ]
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        with_backend!(
            ctx.exec,
            flex => Outcome::error("no PPO kernels on flex".into()),
            |B, R, name| ppo_unit::<R>(unit, ctx, name, seed)
        )
    }
}

fn ppo_unit<R: Runtime>(unit: &UnitSpec, ctx: &mut RunContext, backend: &str, seed: u64) -> Outcome
where
    R::Device: Default,
{
    let client = R::client(&Default::default());
    if unit.bench {
        bench_gae::<R>(
            &client,
            backend,
            ctx.device,
            ctx.scale.bench(),
            seed,
            &mut *ctx.tick,
        )
    } else {
        check_ppo::<R>(&client, seed)
    }
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn f32s(x: &[f64]) -> Vec<f32> {
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

/// Benchmarks the fused DPO path against the burn composition (log_softmax, gather, masked sum
/// and the loss in tensor ops, burn's autodiff) at [`DPO_BENCH`] on backend `B` (burn's fused
/// default: fusion and autotune on), after checking the fused path against the reference there.
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
    let step = |fused: bool| {
        let xa = Tensor::<Autodiff<B>, 3>::from_inner(x.clone()).require_grad();
        let ia = Tensor::<Autodiff<B>, 2, Int>::from_inner(ids.clone());
        let ma = Tensor::<Autodiff<B>, 2>::from_inner(m.clone());
        let ra = Tensor::<Autodiff<B>, 1>::from_inner(r.clone());
        let out = if fused {
            dpo_loss_unchecked(xa.clone(), ia, ma, ra, set)
        } else {
            dpo_loss_composition(xa.clone(), ia, ma, ra, set)
        };
        let grads = out.loss.backward();
        // The gradient is reduced to a scalar and read: copying 131 MB back would dilute both.
        claimbench_paper::bench::read_back(xa.grad(&grads).expect("grad").sum());
    };
    let fwd_bwd = interleaved(cfg, || step(true), || step(false), None, &mut tick);
    let fwd = interleaved(
        cfg,
        || {
            let out = dpo_loss_unchecked(x.clone(), ids.clone(), m.clone(), r.clone(), set);
            claimbench_paper::bench::read_back(out.loss)
        },
        || {
            let out = dpo_loss_composition(x.clone(), ids.clone(), m.clone(), r.clone(), set);
            claimbench_paper::bench::read_back(out.loss)
        },
        None,
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
            "burn autodiff of log_softmax + gather + masked sum + DPO loss",
            3 * logits_bytes,
            2 * flops,
        ),
        (
            "fused-dpo-forward",
            &fwd,
            None,
            "burn log_softmax + gather + masked sum + DPO loss",
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
        "DPO forward+backward speedup {:.2}x [{:.2}, {:.2}] (fused {:.1} ms, composition {:.1} ms); forward {:.2}x [{:.2}, {:.2}]",
        e.speedup,
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

/// A seeded rollout on the host: `(logprobs, ref_logprobs, values, scores, mask)`, log-probs in
/// `[−3, 0]`, values in `[−2, 2]`, scores in `[−4, 4]`.
fn rollout(rows: usize, time: usize, seed: u64) -> [Vec<f32>; 5] {
    let scaled = |n, s: f32, k| {
        uniform(n, seed + k)
            .into_iter()
            .map(|x| x * s)
            .collect::<Vec<_>>()
    };
    [
        scaled(rows * time, 3.0, 1)
            .iter()
            .map(|x| -x.abs())
            .collect(),
        scaled(rows * time, 3.0, 2)
            .iter()
            .map(|x| -x.abs())
            .collect(),
        scaled(rows * time, 2.0, 3),
        scaled(rows, 4.0, 4),
        sequence_mask(rows, time, seed),
    ]
}

/// Compares `got` with `want` (f64), recording the max |Δ| and whether it is within tolerance.
#[allow(clippy::too_many_arguments)]
fn compare(
    metrics: &mut Vec<MetricRow>,
    failures: &mut Vec<String>,
    shape: &str,
    name: &str,
    got: &[f32],
    want: &[f64],
    atol: f32,
    rtol: f32,
) {
    let want = f32s(want);
    let (d, _) = max_abs_diff(got, &want);
    metrics.push(MetricRow::full(
        "f32",
        shape,
        None,
        format!("max_abs_err_{name}"),
        d as f64,
        "abs",
    ));
    if !within(got, &want, atol, rtol) {
        failures.push(format!(
            "{name} at {shape}: max |Δ| = {d:e} (atol {atol:e}, rtol {rtol:e})"
        ));
    }
}

/// Checks the PPO kernels on the device of `client` against the f64 references of
/// `claimbench_dpo_ppo` over [`PPO_CHECK_SHAPES`], with NaN at masked positions: KL-penalised
/// rewards, GAE (advantages and returns), whitening, and the clipped losses with their gradients.
fn check_ppo<R: Runtime>(client: &ComputeClient<R>, seed: u64) -> Outcome {
    match check_ppo_inner(client, seed) {
        Ok((metrics, failures)) if failures.is_empty() => Outcome::passed(
            format!(
                "{} shapes match the f64 references (KL rewards, GAE, whitening, clipped losses and gradients)",
                PPO_CHECK_SHAPES.len()
            ),
            metrics,
        ),
        Ok((metrics, failures)) => Outcome {
            metrics,
            ..Outcome::correctness(failures.join("; "))
        },
        Err(e) => Outcome::error(e),
    }
}

#[allow(clippy::type_complexity)]
fn check_ppo_inner<R: Runtime>(
    c: &ComputeClient<R>,
    seed: u64,
) -> Result<(Vec<MetricRow>, Vec<String>), String> {
    let up = |x: &[f32]| c.create_from_slice(f32::as_bytes(x));
    let (mut metrics, mut failures) = (Vec::new(), Vec::new());
    let e = |e: &dyn std::fmt::Display| e.to_string();
    for (i, &(rows, time)) in PPO_CHECK_SHAPES.iter().enumerate() {
        let s = SeqShape::new(rows, time).map_err(|x| e(&x))?;
        let rs = reference::Shape::new(rows, time).map_err(|x| e(&x))?;
        let [lp, rlp, v, sc, m] = rollout(rows, time, seed.wrapping_add(100 * i as u64));
        let md = f64s(&m);
        let set = PpoSettings {
            gamma: 0.99,
            lambda: 0.95,
            ..PpoSettings::default()
        };
        let shape = format!("[{rows}, {time}]");
        let rewards = ppo::kl_rewards(
            c,
            s,
            up(&poison_masked(&lp, &m)),
            up(&poison_masked(&rlp, &m)),
            up(&sc),
            up(&m),
            set,
        )
        .map_err(|x| e(&x))?;
        let got_r = read_f32(c, rewards.clone());
        let want_r =
            reference::kl_penalised_rewards(&f64s(&lp), &f64s(&rlp), &f64s(&sc), &md, rs, 0.1)
                .map_err(|x| e(&x))?;
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "kl_rewards",
            &got_r,
            &want_r,
            1e-5,
            1e-5,
        );
        let out =
            ppo::gae(c, s, rewards, up(&poison_masked(&v, &m)), up(&m), set).map_err(|x| e(&x))?;
        let want =
            reference::gae(&f64s(&got_r), &f64s(&v), &md, rs, 0.99, 0.95).map_err(|x| e(&x))?;
        // Sums of up to `time` terms of magnitude ≤ 7.
        let tol = 4.0 * f32::EPSILON * time as f32 * 7.0 + 1e-5;
        let adv = read_f32(c, out.advantages.clone());
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "advantages",
            &adv,
            &want.advantages,
            tol,
            1e-5,
        );
        let ret = read_f32(c, out.returns);
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "returns",
            &ret,
            &want.returns,
            tol,
            1e-5,
        );
        let w = read_f32(c, ppo::whiten(c, s, out.advantages, up(&m)));
        let want_w = reference::whiten(&f64s(&adv), &md, rs).map_err(|x| e(&x))?;
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "whitened",
            &w,
            &want_w,
            1e-4,
            1e-4,
        );
        // New log-probs and values near the old ones: ratios on both sides of the clip range.
        let lp_new: Vec<f32> = lp
            .iter()
            .zip(uniform(rows * time, seed + 7))
            .map(|(a, d)| a + 0.5 * d)
            .collect();
        let v_new: Vec<f32> = v
            .iter()
            .zip(uniform(rows * time, seed + 8))
            .map(|(a, d)| a + 0.5 * d)
            .collect();
        let n = s.check_mask(&m).map_err(|x| e(&x))?;
        let losses = ppo::clipped_losses(
            c,
            s,
            LossInputs {
                logprobs: up(&poison_masked(&lp_new, &m)),
                old_logprobs: up(&poison_masked(&lp, &m)),
                advantages: up(&poison_masked(&w, &m)),
                values: up(&poison_masked(&v_new, &m)),
                old_values: up(&poison_masked(&v, &m)),
                returns: up(&poison_masked(&ret, &m)),
                mask: up(&m),
            },
            n,
            set,
        )
        .map_err(|x| e(&x))?;
        let pl = reference::policy_loss(&f64s(&lp_new), &f64s(&lp), &f64s(&w), &md, rs, 0.2)
            .map_err(|x| e(&x))?;
        let vl = reference::value_loss(&f64s(&v_new), &f64s(&v), &f64s(&ret), &md, rs, 0.2)
            .map_err(|x| e(&x))?;
        let totals = read_f32(c, losses.totals);
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "loss_totals",
            &totals,
            &[pl.loss, vl.loss, pl.clip_fraction, vl.clip_fraction],
            1e-5,
            1e-4,
        );
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "policy_grad",
            &read_f32(c, losses.policy_grad),
            &pl.grad,
            1e-6,
            1e-4,
        );
        compare(
            &mut metrics,
            &mut failures,
            &shape,
            "value_grad",
            &read_f32(c, losses.value_grad),
            &vl.grad,
            1e-6,
            1e-4,
        );
    }
    Ok((metrics, failures))
}

/// Benchmarks GAE on the device (one launch, one unit per sequence) against the host loop at
/// [`GAE_BENCH`]: the rollout's rewards, values and mask live on the device, and the advantages
/// and returns are needed there for the loss. The host loop reads the three back, runs the f32
/// scan on the CPU and uploads the two results; the kernel runs in place. Both end with a device
/// sync. Checked against the f64 reference first.
fn bench_gae<R: Runtime>(
    client: &ComputeClient<R>,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (rows, time) = GAE_BENCH;
    let s = SeqShape::new(rows, time).expect("benchmark shape is valid");
    let [lp, rlp, v, sc, m] = rollout(rows, time, seed);
    let set = PpoSettings::default();
    let up = |x: &[f32]| client.create_from_slice(f32::as_bytes(x));
    let rewards = match ppo::kl_rewards(client, s, up(&lp), up(&rlp), up(&sc), up(&m), set) {
        Ok(h) => h,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let (values, mask) = (up(&v), up(&m));
    let r_host = read_f32(client, rewards.clone());
    let rs = reference::Shape::new(rows, time).expect("valid");
    let want = match reference::gae(&f64s(&r_host), &f64s(&v), &f64s(&m), rs, 1.0, 1.0) {
        Ok(w) => w,
        Err(e) => return Outcome::error(format!("reference: {e}")),
    };
    let got = match ppo::gae(
        client,
        s,
        rewards.clone(),
        values.clone(),
        mask.clone(),
        set,
    ) {
        Ok(g) => read_f32(client, g.advantages),
        Err(e) => return Outcome::error(e.to_string()),
    };
    let tol = 4.0 * f32::EPSILON * time as f32 * 7.0 + 1e-5;
    let want_a = f32s(&want.advantages);
    let (d, _) = max_abs_diff(&got, &want_a);
    if !within(&got, &want_a, tol, 1e-5) {
        return Outcome::correctness(format!(
            "GAE on the device differs from the reference at {rows}x{time}: max |Δ| = {d:e} (atol {tol:e}); not timed"
        ));
    }
    let (host_a, _) = ppo::gae_host(&r_host, &v, &m, s, set);
    let (d_host, _) = max_abs_diff(&host_a, &want_a);
    let correctness = format!(
        "checked before timing: device max |Δ| = {d:.2e}, host loop max |Δ| = {d_host:.2e} against the f64 reference (atol {tol:.1e})"
    );
    let sync = || {
        let _ = cubecl::future::block_on(client.sync());
    };
    let samples = interleaved(
        cfg,
        || {
            let out = ppo::gae(
                client,
                s,
                rewards.clone(),
                values.clone(),
                mask.clone(),
                set,
            )
            .expect("validated above");
            std::hint::black_box(&out.advantages);
            sync();
        },
        || {
            let r = read_f32(client, rewards.clone());
            let vv = read_f32(client, values.clone());
            let mm = read_f32(client, mask.clone());
            let (a, ret) = ppo::gae_host(&r, &vv, &mm, s, set);
            let ha = up(&a);
            let hr = up(&ret);
            std::hint::black_box((&ha, &hr));
            sync();
        },
        None,
        &mut tick,
    );
    let n = (rows * time) as u64;
    let comparison = Comparison {
        kernel: PPO_KERNEL,
        name: "gae-device",
        baseline: "host loop (read rewards, values, mask back; f32 reverse scan on the CPU; upload advantages and returns)",
        backend,
        device: device_name,
        shape: &[rows, time],
        target: Some(GAE_TARGET),
        bytes: 5 * 4 * n,
        flops: 5 * n,
        floor: None,
        correctness: &correctness,
    };
    match comparison.entry(&samples, cfg.resamples, seed) {
        Ok((entry, metrics)) => Outcome {
            message: format!(
                "GAE on the device vs the host loop at {rows}x{time}: speedup {:.2}x [{:.2}, {:.2}] (device {:.2} ms, host loop {:.2} ms)",
                entry.speedup,
                entry.speedup_ci[0],
                entry.speedup_ci[1],
                entry.ours_median_ms(),
                entry.baseline_median_ms()
            ),
            benchmarks: vec![entry],
            ..Outcome::passed(String::new(), metrics)
        },
        Err(e) => Outcome::error(e),
    }
}
