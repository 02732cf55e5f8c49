//! Units of the `kernels/token-logprob` family: the kernel checked against its reference on the
//! device, the flex composition checked the same way, benchmarks against the burn composition,
//! and a small training run that uses the op (on flex by default, on the kernel with `--backend
//! wgpu|cuda`) to show the op trains a model and both paths agree.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use claimbench_kernels::burn_ops::{
    TokenLogprobBackend, logprobs_and_grad, token_logprobs, token_logprobs_composition,
    token_logprobs_logsumexp, token_logprobs_unchecked,
};
use claimbench_kernels::testing::token_logprob::{backward_tolerance, forward_tolerance};
use claimbench_kernels::testing::{logits_and_targets, max_abs_diff, uniform, within};
use claimbench_kernels::token_logprob::{Problem, backward_reference, forward_reference};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use claimbench_paper::bench::{BenchConfig, Comparison, interleaved_many, read_back};
use claimbench_paper::{KernelSuite, MetricRow, Outcome, RunContext, RunsOn, Scale, UnitSpec};

use super::{ScaleBench, kernel_unit};

/// The kernel id of this family.
pub const KERNEL: &str = "kernels/token-logprob";

/// Shapes of the correctness units: `(rows, vocab, logit scale)`. V = 1, odd V, GPT-2's V, one
/// token, rows not a multiple of the cube size, logits at ±1e4.
pub const CHECK_SHAPES: &[(usize, usize, f32)] = &[
    (4, 1, 3.0),
    (1, 7, 3.0),
    (257, 100, 5.0),
    (13, 50257, 8.0),
    (17, 1003, 1.0e4),
    (64, 32000, 10.0),
];

/// The benchmark shape of the issue: B·T = 1024, V = 32000, f32.
pub const BENCH_ROWS: usize = 1024;
/// See [`BENCH_ROWS`].
pub const BENCH_VOCAB: usize = 32000;
/// The forward speedup the foundation issue asks for.
pub const FORWARD_TARGET: f64 = 3.0;

/// The suite: checks on flex and on the device, the training demonstration per seed, the
/// benchmark.
pub struct TokenLogprob;

impl KernelSuite for TokenLogprob {
    fn id(&self) -> &'static str {
        KERNEL
    }

    fn units(&self, _scale: Scale, seeds: &[u64]) -> Vec<UnitSpec> {
        let mut units = vec![
            kernel_unit(
                KERNEL,
                "check/flex",
                "token-logprob-check",
                "flex-composition",
                RunsOn::Flex,
            ),
            kernel_unit(
                KERNEL,
                "check/device",
                "token-logprob-check",
                "fused-kernel",
                RunsOn::Kernel,
            ),
        ];
        for &s in seeds {
            let mut u = kernel_unit(
                KERNEL,
                &format!("train/seed-{s}"),
                "token-logprob-train",
                "bigram-adamw",
                RunsOn::Train,
            );
            u.seed = Some(s);
            u.task = "train";
            units.push(u);
        }
        units.push(kernel_unit(
            KERNEL,
            "bench",
            "token-logprob-bench",
            "fused-vs-composition",
            RunsOn::Kernel,
        ));
        units
    }

    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        let train = ctx.scale.train();
        match unit.task {
            "train" => with_backend!(
                ctx.exec,
                flex => train_unit::<Flex>(&Default::default(), train, seed),
                |B, R, name| train_unit::<B>(&Default::default(), train, seed)
            ),
            "check" => with_backend!(
                ctx.exec,
                flex => check::<Flex>(&Default::default(), seed),
                |B, R, name| check::<B>(&Default::default(), seed)
            ),
            _ => with_backend!(
                ctx.exec,
                flex => Outcome::error("no benchmark on flex".into()),
                |B, R, name| bench::<B>(&Default::default(), name, ctx.device, ctx.scale.bench(), seed, &mut *ctx.tick)
            ),
        }
    }
}

fn shape_str(dims: &[usize]) -> String {
    format!("{dims:?}")
}

/// Checks the fused op (forward through [`token_logprobs`], backward through autodiff of it) on
/// backend `B` against the plain-Rust references, over [`CHECK_SHAPES`]; records the max |Δ| and
/// the tolerance per shape. On flex this checks the composition; on wgpu/CUDA the kernels.
pub fn check<B: TokenLogprobBackend>(device: &B::Device, seed: u64) -> Outcome {
    let mut metrics = Vec::new();
    let mut failures = Vec::new();
    for (i, &(rows, vocab, scale)) in CHECK_SHAPES.iter().enumerate() {
        let (logits, targets) = logits_and_targets(rows, vocab, scale, seed.wrapping_add(i as u64));
        let g = uniform(rows, seed ^ 0x5eed ^ i as u64);
        let (want_lp, _) = forward_reference(&logits, &targets, vocab);
        let want_grad = backward_reference(&logits, &targets, &g, vocab);
        let (got_lp, got_grad) =
            match fused_with_grad::<B>(device, &logits, &targets, &g, rows, vocab) {
                Ok(v) => v,
                Err(e) => return Outcome::error(format!("{rows}x{vocab}: {e}")),
            };
        let shape = shape_str(&[rows, vocab]);
        let (fa, fr) = forward_tolerance(&logits);
        let (ga, gr) = backward_tolerance(&logits);
        for (name, got, want, atol, rtol) in [
            ("forward", &got_lp, &want_lp, fa, fr),
            ("grad", &got_grad, &want_grad, ga, gr),
        ] {
            let (d, at) = max_abs_diff(got, want);
            let worst_tol = want
                .iter()
                .map(|w| atol + rtol * w.abs())
                .fold(f32::INFINITY, f32::min);
            let ok = within(got, want, atol, rtol);
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
                (atol + rtol * want[at].abs()) as f64,
                "abs",
            ));
            if !ok {
                failures.push(format!("{name} at {rows}x{vocab} (scale {scale}): max |Δ| = {d:e} at {at} (tolerance ≥ {worst_tol:e})"));
            }
        }
    }
    if failures.is_empty() {
        Outcome::passed(
            format!(
                "{} shapes match the reference (values and gradients)",
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

/// Forward through the validated op and backward of `Σ g·logprob` under autodiff; returns
/// `(logprobs [rows], grad_logits [rows·vocab])`.
fn fused_with_grad<B: TokenLogprobBackend>(
    device: &B::Device,
    logits: &[f32],
    targets: &[i64],
    g: &[f32],
    rows: usize,
    vocab: usize,
) -> Result<(Vec<f32>, Vec<f32>), claimbench_kernels::KernelError> {
    logprobs_and_grad::<B>(token_logprobs, device, logits, targets, g, [1, rows, vocab])
}

/// The baselines of the forward, as a burn user would write them: the textbook composition and
/// the faster `x[t] − logsumexp(x)`. The headline speedup is against the faster.
pub const BASELINES: [&str; 2] = ["burn log_softmax + gather", "burn gather − logsumexp"];

/// The cross-device alternative of the forward: [`BASELINES`]`[1]` on burn `flex`, host CPU.
pub const CROSS_DEVICE: &str = "burn flex gather − logsumexp on the host CPU";

/// Benchmarks the fused forward against both [`BASELINES`] at [`BENCH_ROWS`] × [`BENCH_VOCAB`]
/// on backend `B` (burn's fused default: fusion on; autotune off in the CPU build, on with `cuda`: see Cargo.toml), after checking ours and every
/// baseline against the reference; the floor is one `sum_dim` read pass of the logits. A second
/// comparison times forward + backward under autodiff against burn's autodiff of both.
pub fn bench<B: TokenLogprobBackend>(
    device: &B::Device,
    backend: &str,
    device_name: &str,
    cfg: BenchConfig,
    seed: u64,
    mut tick: impl FnMut(),
) -> Outcome {
    let (rows, vocab) = (BENCH_ROWS, BENCH_VOCAB);
    let problem = Problem::new(rows, vocab).expect("benchmark shape is valid");
    let (logits, targets) = logits_and_targets(rows, vocab, 10.0, seed);
    let g = uniform(rows, seed ^ 0x5eed);
    let (want_lp, _) = forward_reference(&logits, &targets, vocab);
    let want_grad = backward_reference(&logits, &targets, &g, vocab);
    let shape = vec![rows, vocab];

    // Correctness first: the fused op and every baseline must match the reference at the
    // benchmark shape (a wrong baseline is an error: its time would mean nothing).
    let x = Tensor::<B, 3>::from_data(TensorData::new(logits.clone(), [1, rows, vocab]), device);
    let t = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            targets.iter().map(|&t| t as i32).collect::<Vec<_>>(),
            [1, rows],
        ),
        device,
    );
    let fused = match token_logprobs(x.clone(), t.clone()) {
        Ok(v) => v.into_data().to_vec::<f32>().expect("f32"),
        Err(e) => return Outcome::error(e.to_string()),
    };
    let (fa, fr) = forward_tolerance(&logits);
    let (d_fused, _) = max_abs_diff(&fused, &want_lp);
    if !within(&fused, &want_lp, fa, fr) {
        return Outcome::correctness(format!(
            "fused forward differs from the reference at {rows}x{vocab}: max |Δ| = {d_fused:e} (atol {fa:e}); not timed"
        ));
    }
    let mut base_notes = Vec::new();
    for (name, got) in [
        (
            BASELINES[0],
            token_logprobs_composition(x.clone(), t.clone()),
        ),
        (BASELINES[1], token_logprobs_logsumexp(x.clone(), t.clone())),
    ] {
        let got = got.into_data().to_vec::<f32>().expect("f32");
        let (d, _) = max_abs_diff(&got, &want_lp);
        // log_softmax rounds `x − lse` at the logits' magnitude: allow it 4× our tolerance.
        if !within(&got, &want_lp, 4.0 * fa, 4.0 * fr) {
            return Outcome::error(format!(
                "the baseline {name} differs from the reference at {rows}x{vocab}: max |Δ| = {d:e}; not timed"
            ));
        }
        base_notes.push(format!("{name} {d:.2e}"));
    }
    let (got_lp, got_grad) = match fused_with_grad::<B>(device, &logits, &targets, &g, rows, vocab)
    {
        Ok(v) => v,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let (ga, gr) = backward_tolerance(&logits);
    let (d_grad, _) = max_abs_diff(&got_grad, &want_grad);
    if !within(&got_grad, &want_grad, ga, gr) {
        return Outcome::correctness(format!(
            "fused backward differs from the reference at {rows}x{vocab}: max |Δ| = {d_grad:e} (atol {ga:e}); not timed"
        ));
    }
    let (d_lp2, _) = max_abs_diff(&got_lp, &want_lp);
    let correctness = format!(
        "checked before timing: fused forward max |Δ| = {d_fused:.2e} (baselines: {}; autodiff path {d_lp2:.2e}), backward max |Δ| = {d_grad:.2e}; tolerances {fa:.1e} / {ga:.1e}",
        base_notes.join(", ")
    );

    // Forward: fused vs both baselines, with the one-pass read floor, in rotated order.
    let mut floor = || read_back(x.clone().sum_dim(2));
    let mut softmax_gather = || read_back(token_logprobs_composition(x.clone(), t.clone()));
    let mut gather_lse = || read_back(token_logprobs_logsumexp(x.clone(), t.clone()));
    // The alternative a user without a GPU picks on this machine: the faster composition on
    // burn flex, on the host CPU (a cross-device comparison, shown apart).
    let fx = Tensor::<Flex, 3>::from_data(
        TensorData::new(logits.clone(), [1, rows, vocab]),
        &Default::default(),
    );
    let ft = Tensor::<Flex, 2, Int>::from_data(t.to_data(), &Default::default());
    let mut flex_lse = || read_back(token_logprobs_logsumexp(fx.clone(), ft.clone()));
    let fwd = interleaved_many(
        cfg,
        || read_back(token_logprobs_unchecked(x.clone(), t.clone())),
        vec![
            (BASELINES[0], &mut softmax_gather),
            (BASELINES[1], &mut gather_lse),
        ],
        Some(&mut floor),
        Some((CROSS_DEVICE, &mut flex_lse)),
        &mut tick,
    );

    // Forward + backward under autodiff: the gradient is reduced to a scalar and read, so the
    // (equal) cost of copying 131 MB back does not dilute the ratio.
    let gt = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(g.clone(), [1, rows]), device);
    // 0: fused, 1: log_softmax + gather, 2: gather − logsumexp.
    let step = |which: usize| {
        let xa = Tensor::<Autodiff<B>, 3>::from_inner(x.clone()).require_grad();
        let ta = Tensor::<Autodiff<B>, 2, Int>::from_inner(t.clone());
        let lp = match which {
            0 => token_logprobs_unchecked(xa.clone(), ta),
            1 => token_logprobs_composition(xa.clone(), ta),
            _ => token_logprobs_logsumexp(xa.clone(), ta),
        };
        let grads = (lp * gt.clone()).sum().backward();
        read_back(xa.grad(&grads).expect("grad").sum());
    };
    let (mut bwd_softmax, mut bwd_lse) = (|| step(1), || step(2));
    let fwd_bwd = interleaved_many(
        cfg,
        || step(0),
        vec![
            (BASELINES[0], &mut bwd_softmax),
            (BASELINES[1], &mut bwd_lse),
        ],
        None,
        None,
        &mut tick,
    );

    let mut entries = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    for (name, s, target, floor_desc, bytes, flops) in [
        (
            "fused-forward",
            &fwd,
            Some(FORWARD_TARGET),
            Some("one sum_dim read pass over the logits (memory floor)"),
            problem.forward_bytes(),
            problem.forward_flops(),
        ),
        (
            "fused-forward-backward",
            &fwd_bwd,
            None,
            None,
            problem.forward_bytes() + 2 * problem.logits_bytes(),
            problem.forward_flops() * 2,
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
            floor: floor_desc,
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
    let f = &entries[0];
    let summary = format!(
        "forward {} against {} [{:.2}, {:.2}] (fused {:.1} ms, it {:.1} ms, read floor {:.1} ms); forward+backward {:.2}x [{:.2}, {:.2}]",
        claimbench_paper::bench::ratio_words(f.speedup),
        f.baseline,
        f.speedup_ci[0],
        f.speedup_ci[1],
        f.ours_median_ms(),
        f.baseline_median_ms(),
        f.floor_median_ms(),
        entries[1].speedup,
        entries[1].speedup_ci[0],
        entries[1].speedup_ci[1]
    );
    Outcome {
        benchmarks: entries,
        ..Outcome::passed(summary, metrics)
    }
}

/// A seeded first-order Markov chain over `vocab` tokens with `fanout` successors per token:
/// the data of the training unit. Its conditional entropy is the loss floor.
pub struct MarkovChain {
    vocab: usize,
    /// Row-major transition probabilities `[vocab, vocab]`.
    probs: Vec<f64>,
}

impl MarkovChain {
    /// Draws the chain: each token gets `fanout` distinct successors with weights `exp(N(0,1))`.
    pub fn new(vocab: usize, fanout: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut probs = vec![0.0; vocab * vocab];
        for row in probs.chunks_mut(vocab) {
            let mut chosen = Vec::new();
            while chosen.len() < fanout.min(vocab) {
                let c = rng.random_range(0..vocab);
                if !chosen.contains(&c) {
                    chosen.push(c);
                }
            }
            let w: Vec<f64> = chosen
                .iter()
                .map(|_| (rng.random_range(-1.5f64..1.5)).exp())
                .collect();
            let total: f64 = w.iter().sum();
            for (c, w) in chosen.iter().zip(w) {
                row[*c] = w / total;
            }
        }
        Self { vocab, probs }
    }

    /// `batch` pairs `(x, y)`, `x` uniform, `y ~ P(· | x)`.
    pub fn sample(&self, batch: usize, rng: &mut StdRng) -> (Vec<i32>, Vec<i32>) {
        let mut xs = Vec::with_capacity(batch);
        let mut ys = Vec::with_capacity(batch);
        for _ in 0..batch {
            let x = rng.random_range(0..self.vocab);
            let u: f64 = rng.random();
            let row = &self.probs[x * self.vocab..(x + 1) * self.vocab];
            let mut acc = 0.0;
            let y = row.iter().position(|p| {
                acc += p;
                u < acc
            });
            xs.push(x as i32);
            ys.push(y.unwrap_or_else(|| {
                row.iter()
                    .rposition(|&p| p > 0.0)
                    .expect("row has successors")
            }) as i32);
        }
        (xs, ys)
    }

    /// The loss floor: `(1/V) Σ_x H(P(· | x))` in nats (x is drawn uniformly).
    pub fn conditional_entropy(&self) -> f64 {
        let h: f64 = self
            .probs
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| -p * p.ln())
            .sum();
        h / self.vocab as f64
    }
}

/// A bigram language model: one row of next-token logits per token.
#[derive(Module, Debug)]
pub struct Bigram<B: Backend> {
    /// `[vocab, vocab]` logits table.
    pub table: Param<Tensor<B, 2>>,
}

/// Training settings of the demonstration unit.
#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Successors per token.
    pub fanout: usize,
    /// Pairs per step.
    pub batch: usize,
    /// AdamW steps.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
}

/// Trains a [`Bigram`] with AdamW on a seeded [`MarkovChain`], minimising `−mean(token_logprob)`
/// through the op, on backend `B` under autodiff. Returns the loss per step (nats).
pub fn train<B: TokenLogprobBackend>(
    device: &B::Device,
    cfg: TrainConfig,
    seed: u64,
) -> Result<(Vec<f64>, f64), claimbench_kernels::KernelError> {
    type A<B> = Autodiff<B>;
    let chain = MarkovChain::new(cfg.vocab, cfg.fanout, seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xda7a);
    let init: Vec<f32> = (0..cfg.vocab * cfg.vocab)
        .map(|_| rng.random_range(-0.05f32..0.05))
        .collect();
    let mut model = Bigram {
        table: Param::from_tensor(Tensor::<A<B>, 2>::from_data(
            TensorData::new(init, [cfg.vocab, cfg.vocab]),
            device,
        )),
    };
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .init::<A<B>, Bigram<A<B>>>();
    let mut losses = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        let (x, y) = chain.sample(cfg.batch, &mut rng);
        let x = Tensor::<A<B>, 1, Int>::from_data(TensorData::new(x, [cfg.batch]), device);
        let y = Tensor::<A<B>, 2, Int>::from_data(TensorData::new(y, [1, cfg.batch]), device);
        let logits = model
            .table
            .val()
            .select(0, x)
            .reshape([1, cfg.batch, cfg.vocab]);
        let loss = token_logprobs(logits, y)?.mean().neg();
        losses.push(loss.clone().into_scalar().elem::<f64>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
    }
    Ok((losses, chain.conditional_entropy()))
}

/// The training unit: loss per step, final loss, the entropy floor and the excess over it.
pub fn train_unit<B: TokenLogprobBackend>(
    device: &B::Device,
    cfg: TrainConfig,
    seed: u64,
) -> Outcome {
    match train::<B>(device, cfg, seed) {
        Err(e) => Outcome::error(e.to_string()),
        Ok((losses, floor)) => {
            if let Some((i, l)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                return Outcome::error(format!("training diverged: loss {l} at step {i}"));
            }
            let shape = shape_str(&[cfg.batch, cfg.vocab]);
            let mut m: Vec<MetricRow> = losses
                .iter()
                .enumerate()
                .map(|(i, &l)| {
                    MetricRow::full("f32", &shape, Some(i as i64), "train_loss", l, "nats")
                })
                .collect();
            let last = *losses.last().unwrap_or(&f64::NAN);
            m.push(MetricRow::full(
                "f32",
                &shape,
                None,
                "final_loss",
                last,
                "nats",
            ));
            m.push(MetricRow::full(
                "f32",
                &shape,
                None,
                "initial_loss",
                losses[0],
                "nats",
            ));
            m.push(MetricRow::full(
                "f32",
                &shape,
                None,
                "entropy_floor",
                floor,
                "nats",
            ));
            m.push(MetricRow::full(
                "f32",
                &shape,
                None,
                "excess_loss",
                last - floor,
                "nats",
            ));
            Outcome::passed(
                format!("loss {:.4} → {last:.4} nats (floor {floor:.4})", losses[0]),
                m,
            )
        }
    }
}
