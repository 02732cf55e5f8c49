//! Units of the `kernels/ppo` family: the PPO kernels (KL rewards, GAE, whitening, clipped
//! losses) checked on the device against the f64 references, and GAE on the device benchmarked
//! against a burn loop over time steps and the host loop.

use burn::tensor::{Tensor, TensorData};
use claimbench_dpo_ppo as reference;
use claimbench_kernels::burn_ops::gae_loop;
use claimbench_kernels::ppo::{self, LossInputs, PpoSettings};
use claimbench_kernels::sequences::SeqShape;
use claimbench_kernels::testing::{
    max_abs_diff, poison_masked, read_f32, sequence_mask, uniform, within,
};
use cubecl::prelude::*;

use claimbench_paper::bench::{BenchConfig, Comparison, interleaved_many};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::dpo_kernels::{f32s, f64s};
use super::{ScaleBench, kernel_unit};

/// The kernel id of the PPO family.
pub const PPO_KERNEL: &str = "kernels/ppo";
/// The GAE benchmark of the issue: 4096 sequences × 512 steps.
pub const GAE_BENCH: (usize, usize) = (4096, 512);
/// GAE on the device must beat the host loop: speedup > 1.
pub const GAE_TARGET: f64 = 1.0;
/// Shapes of the PPO correctness unit: `(rows, time)`.
pub const PPO_CHECK_SHAPES: &[(usize, usize)] = &[(1, 1), (3, 7), (65, 33), (2, 1029), (300, 5)];

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
            |B, R, name| ppo_unit::<B, R>(unit, ctx, name, seed)
        )
    }
}

fn ppo_unit<B: burn::tensor::backend::Backend, R: Runtime>(
    unit: &UnitSpec,
    ctx: &mut RunContext,
    backend: &str,
    seed: u64,
) -> Outcome
where
    R::Device: Default,
    B::Device: Default,
{
    let client = R::client(&Default::default());
    if unit.bench {
        bench_gae::<B, R>(
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

/// The baselines of the GAE benchmark: a reverse loop over the time steps in burn ops on the
/// device ([`gae_loop`], what a burn user writes), and the host loop (read back, scan on the CPU,
/// upload). The headline is the faster.
pub const GAE_BASELINES: [&str; 2] = [
    "burn loop over time steps on the device",
    "host loop (read rewards, values, mask back; f32 reverse scan on the CPU; upload advantages and returns)",
];

/// Benchmarks GAE on the device (one launch, one unit per sequence) against both
/// [`GAE_BASELINES`] at [`GAE_BENCH`]: the rollout's rewards, values and mask live on the device,
/// and the advantages and returns are needed there for the loss. The host loop reads the three
/// back, runs the f32 scan on the CPU and uploads the two results; the burn loop runs on burn's
/// default backend `B` of the same device; the kernel runs in place. All end with a device sync.
/// Ours and both baselines are checked against the f64 reference first.
fn bench_gae<B: burn::tensor::backend::Backend, R: Runtime>(
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
    let bdev = B::Device::default();
    let bt =
        |x: &[f32]| Tensor::<B, 2>::from_data(TensorData::new(x.to_vec(), [rows, time]), &bdev);
    let (br, bv, bm) = (bt(&r_host), bt(&v), bt(&m));
    let loop_a = gae_loop(br.clone(), bv.clone(), bm.clone(), set.gamma, set.lambda)
        .0
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    let (d_loop, _) = max_abs_diff(&loop_a, &want_a);
    if !within(&loop_a, &want_a, tol, 1e-5) {
        return Outcome::error(format!(
            "the baseline {} differs from the reference: max |Δ| = {d_loop:e}; not timed",
            GAE_BASELINES[0]
        ));
    }
    let correctness = format!(
        "checked before timing: device max |Δ| = {d:.2e}, burn loop {d_loop:.2e}, host loop max |Δ| = {d_host:.2e} against the f64 reference (atol {tol:.1e})"
    );
    let sync = || {
        let _ = cubecl::future::block_on(client.sync());
    };
    let mut burn_loop = || {
        let (a, ret) = gae_loop(br.clone(), bv.clone(), bm.clone(), set.gamma, set.lambda);
        claimbench_paper::bench::read_back(a.slice([0..1, 0..1]) + ret.slice([0..1, 0..1]));
    };
    let mut host_loop = || {
        let r = read_f32(client, rewards.clone());
        let vv = read_f32(client, values.clone());
        let mm = read_f32(client, mask.clone());
        let (a, ret) = ppo::gae_host(&r, &vv, &mm, s, set);
        let ha = up(&a);
        let hr = up(&ret);
        std::hint::black_box((&ha, &hr));
        sync();
    };
    let samples = interleaved_many(
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
        vec![
            (GAE_BASELINES[0], &mut burn_loop),
            (GAE_BASELINES[1], &mut host_loop),
        ],
        None,
        None,
        &mut tick,
    );
    let n = (rows * time) as u64;
    let comparison = Comparison {
        kernel: PPO_KERNEL,
        name: "gae-device",
        baseline: GAE_BASELINES[1],
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
                "GAE on the device at {rows}x{time}: {} than the {} [{:.2}, {:.2}] (device {:.2} ms, it {:.2} ms)",
                claimbench_paper::bench::ratio_words(entry.speedup),
                entry.baseline,
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
