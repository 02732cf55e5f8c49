//! The seeded problems and the units of work the harness calls: [`tune`] (the learning-rate
//! sweep on the tuning seeds) and [`run_seed`] (all experiments for one verdict seed).
//!
//! Random streams (tags of [`crate::layer::stream`]): per seed and experiment one stream for the
//! problem (weights, targets), one for the held-out set, one for the training batches (shared by
//! every arm: common random numbers) and one for the adapters' `A` (the same `A` for LoRA and
//! DoRA at a rank).

use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::DoraBackend;
use rand::Rng;
use rand::rngs::StdRng;

use crate::config::DoraConfig;
use crate::error::Error;
use crate::layer::{LinearWeights, Method, Net, column_norms, normal, stream};
use crate::measure::{
    AnalysisMeasurement, ArmMeasurement, Experiment, LrChoice, SeedMeasurements, Tuning,
};
use crate::train::{RunOutput, Schedule, Task, eval_mse, read_full, train};

/// A rank-`k` matrix `U Vᵀ` (`U [rows, k]`, `V [cols, k]`, entries `N(0, 1)`) scaled to
/// Frobenius norm `norm`, row-major `[rows, cols]`.
fn low_rank(rows: usize, cols: usize, k: usize, norm: f64, rng: &mut StdRng) -> Vec<f64> {
    let u: Vec<f64> = (0..rows * k).map(|_| normal(rng)).collect();
    let v: Vec<f64> = (0..cols * k).map(|_| normal(rng)).collect();
    let mut d = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            d[i * cols + j] = (0..k).map(|q| u[i * k + q] * v[j * k + q]).sum();
        }
    }
    let f = d.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
    d.iter_mut().for_each(|x| *x *= norm / f);
    d
}

/// The target of one layer: `V = W0 + Δ` with `Δ` rank `k`, `‖Δ‖_F = δ ‖W0‖_F`; then, when
/// `rescale_sd > 0`, every column rescaled to `‖W0[:, j]‖ · exp(σ z_j)` (`z_j ~ N(0, 1)`:
/// magnitudes change independently of the directions `V[:, j] / ‖V[:, j]‖`); then noise of
/// Frobenius norm `noise · ‖W0‖_F` (full rank). The bias is kept.
fn perturb(
    w0: &LinearWeights,
    k: usize,
    delta: f64,
    rescale_sd: f64,
    noise: f64,
    rng: &mut StdRng,
) -> LinearWeights {
    let (r, c) = (w0.d_in, w0.d_out);
    let f0 = w0.frobenius();
    let dw = low_rank(r, c, k, delta * f0, rng);
    let mut w: Vec<f64> = w0.w.iter().zip(&dw).map(|(a, b)| a + b).collect();
    if rescale_sd > 0.0 {
        let m0 = w0.column_norms();
        let nv = column_norms(&w, r, c);
        let target: Vec<f64> = m0
            .iter()
            .map(|m| m * (rescale_sd * normal(rng)).exp())
            .collect();
        for i in 0..r {
            for j in 0..c {
                w[i * c + j] *= target[j] / nv[j].max(1e-30);
            }
        }
    }
    if noise > 0.0 {
        let n: Vec<f64> = (0..r * c).map(|_| normal(rng)).collect();
        let fn_ = n.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
        for (x, e) in w.iter_mut().zip(&n) {
            *x += e * noise * f0 / fn_;
        }
    }
    LinearWeights { w, ..w0.clone() }
}

fn tag(experiment: Experiment) -> u64 {
    match experiment {
        Experiment::Capacity => 100,
        Experiment::Control => 200,
        Experiment::Adapt => 300,
    }
}

/// A seed's problem of one experiment: base layers, task and base held-out MSE.
struct Problem<B: burn::prelude::Backend> {
    base: Vec<LinearWeights>,
    task: Task<B>,
    base_mse: f64,
    pretrain_nmse: f64,
}

/// The single-layer problem: `W0 ~ N(0, 1/d)` (`[d, d]`, no bias), target [`perturb`]ed
/// (capacity: rescaled columns; control: `W0 + Δ` only).
fn linear_problem<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    experiment: Experiment,
    seed: u64,
    device: &B::Device,
) -> Result<Problem<B>, Error> {
    let t = tag(experiment);
    let mut rng = stream(seed, t);
    let w0 = LinearWeights::gaussian(cfg.d, cfg.d, 1.0, None, &mut rng);
    let rescale = if experiment == Experiment::Capacity {
        cfg.rescale_sd
    } else {
        0.0
    };
    let target = perturb(
        &w0,
        cfg.target_rank,
        cfg.direction_strength,
        rescale,
        0.0,
        &mut rng,
    );
    let task = Task::<B>::new(
        &[target],
        cfg.eval_samples,
        &mut stream(seed, t + 1),
        device,
    );
    let base = vec![w0];
    let base_mse = base_mse(&base, &task, device)?;
    Ok(Problem {
        base,
        task,
        base_mse,
        pretrain_nmse: f64::NAN,
    })
}

/// Held-out MSE of the unadapted base network.
fn base_mse<B: AutodiffBackend + DoraBackend>(
    base: &[LinearWeights],
    task: &Task<B>,
    device: &B::Device,
) -> Result<f64, Error> {
    let (net, params) = Net::<B>::new(base, Method::Full, 1, 1.0, &mut stream(0, 0), device)?;
    eval_mse(&net, &params, task)
}

/// The adaptation problem: teacher A (`N(0, 2/d_in)` weights, `N(0, 0.1²)` biases, ReLU),
/// a student (`N(0, 1/d_in)` weights, `N(0, 0.05²)` biases) fully trained on A for
/// `pretrain_steps` gives the pretrained `W0_l, b0_l`; task B's teacher is the pretrained
/// network with each layer [`perturb`]ed: rank `adapt_target_rank` direction change of
/// strength `δ_l = adapt_direction_strength · (0.25 + 1.5 u_l)`, column rescaling with
/// `σ_l = adapt_rescale_sd · (0.25 + 1.5 v_l)` (`u_l, v_l ~ U(0, 1)` drawn independently per
/// layer, so layers differ in how much of each they need) and noise `adapt_noise` (so that no
/// low-rank adapter reaches it exactly). Biases unchanged.
fn adapt_problem<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    seed: u64,
    device: &B::Device,
) -> Result<Problem<B>, Error> {
    let t = tag(Experiment::Adapt);
    let mut rng = stream(seed, t);
    let layers = cfg.mlp_layers();
    let teacher_a: Vec<LinearWeights> = layers
        .iter()
        .map(|&(i, o)| LinearWeights::gaussian(i, o, 2f64.sqrt(), Some(0.1), &mut rng))
        .collect();
    let student: Vec<LinearWeights> = layers
        .iter()
        .map(|&(i, o)| LinearWeights::gaussian(i, o, 1.0, Some(0.05), &mut rng))
        .collect();
    let task_a = Task::<B>::new(
        &teacher_a,
        cfg.eval_samples,
        &mut stream(seed, t + 5),
        device,
    );
    let init_mse = base_mse(&student, &task_a, device)?;
    let (net, params) = Net::<B>::new(&student, Method::Full, 1, 1.0, &mut rng, device)?;
    let schedule = Schedule {
        steps: cfg.pretrain_steps,
        batch: cfg.batch,
        lr: cfg.pretrain_lr,
        checkpoint_every: cfg.pretrain_steps,
        analysis: false,
    };
    let (out, params) = train(
        &net,
        params,
        &task_a,
        &schedule,
        init_mse,
        stream(seed, t + 6),
        "adapt/pretrain",
        device,
    )?;
    let pretrained = read_full(&net, &params)?;
    let teacher_b: Vec<LinearWeights> = pretrained
        .iter()
        .map(|l| {
            let u: f64 = rng.random();
            let v: f64 = rng.random();
            perturb(
                l,
                cfg.adapt_target_rank,
                cfg.adapt_direction_strength * (0.25 + 1.5 * u),
                cfg.adapt_rescale_sd * (0.25 + 1.5 * v),
                cfg.adapt_noise,
                &mut rng,
            )
        })
        .collect();
    let task = Task::<B>::new(
        &teacher_b,
        cfg.eval_samples,
        &mut stream(seed, t + 1),
        device,
    );
    let base_mse = base_mse(&pretrained, &task, device)?;
    Ok(Problem {
        base: pretrained,
        task,
        base_mse,
        pretrain_nmse: out.final_nmse(),
    })
}

fn problem<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    experiment: Experiment,
    seed: u64,
    device: &B::Device,
) -> Result<Problem<B>, Error> {
    match experiment {
        Experiment::Adapt => adapt_problem(cfg, seed, device),
        e => linear_problem(cfg, e, seed, device),
    }
}

/// The `(method, rank)` arms of an experiment (rank 0 for FT), ranks ascending.
pub fn arms(cfg: &DoraConfig, experiment: Experiment) -> Vec<(Method, usize)> {
    let mut out = Vec::new();
    for &method in experiment.methods() {
        if method == Method::Full {
            out.push((method, 0));
        } else {
            out.extend(cfg.sorted_ranks().into_iter().map(|r| (method, r)));
        }
    }
    out
}

/// Trains one arm on a prepared problem.
fn train_arm<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    experiment: Experiment,
    p: &Problem<B>,
    (method, rank): (Method, usize),
    lr: f64,
    seed: u64,
    device: &B::Device,
) -> Result<RunOutput, Error> {
    let t = tag(experiment);
    let (net, params) = Net::<B>::new(
        &p.base,
        method,
        rank.max(1),
        cfg.alpha,
        &mut stream(seed, t + 3 + 1000 * rank as u64),
        device,
    )?;
    let steps = match experiment {
        Experiment::Adapt => cfg.adapt_steps,
        _ => cfg.steps,
    };
    let schedule = Schedule {
        steps,
        batch: cfg.batch,
        lr,
        checkpoint_every: cfg.checkpoint_every,
        analysis: experiment == Experiment::Adapt
            && (method == Method::Full || rank == cfg.analysis_rank),
    };
    let run = format!("{}/{}/r{rank}", experiment.as_str(), method.as_str());
    let (out, _) = train(
        &net,
        params,
        &p.task,
        &schedule,
        p.base_mse,
        stream(seed, t + 2),
        &run,
        device,
    )?;
    Ok(out)
}

/// Trains one arm of one experiment for `seed` at learning rate `lr` (the problem is built
/// first; for `adapt` that includes the pretraining). For the kernels-vs-composition tests and
/// one-off runs; [`run_seed`] shares each problem among its arms.
pub fn run_arm<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    experiment: Experiment,
    method: Method,
    rank: usize,
    lr: f64,
    seed: u64,
    device: &B::Device,
) -> Result<ArmMeasurement, Error> {
    cfg.validate()?;
    let p = problem::<B>(cfg, experiment, seed, device)?;
    let rank = if method == Method::Full { 0 } else { rank };
    let out = train_arm(cfg, experiment, &p, (method, rank), lr, seed, device)?;
    Ok(arm_measurement(experiment, method, rank, lr, &out))
}

fn arm_measurement(
    experiment: Experiment,
    method: Method,
    rank: usize,
    lr: f64,
    out: &RunOutput,
) -> ArmMeasurement {
    ArmMeasurement {
        experiment,
        method,
        rank,
        lr,
        nmse: out.final_nmse(),
        curve_steps: out.curve_steps.clone(),
        curve: out.curve.clone(),
    }
}

/// Pearson correlation and least-squares slope of `y` on `x` (NaN where undefined).
pub fn correlation_and_slope(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len().min(y.len()) as f64;
    if n < 2.0 {
        return (f64::NAN, f64::NAN);
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let corr = if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        f64::NAN
    };
    let slope = if sxx > 0.0 { sxy / sxx } else { f64::NAN };
    (corr, slope)
}

fn analysis(method: Method, rank: usize, out: &RunOutput) -> AnalysisMeasurement {
    let delta_d: Vec<f64> = out.points.iter().map(|p| p.2).collect();
    let delta_m: Vec<f64> = out.points.iter().map(|p| p.3).collect();
    let (correlation, slope) = correlation_and_slope(&delta_d, &delta_m);
    AnalysisMeasurement {
        method,
        rank,
        layer: out.points.iter().map(|p| p.0).collect(),
        step: out.points.iter().map(|p| p.1).collect(),
        delta_d,
        delta_m,
        correlation,
        slope,
    }
}

/// The learning-rate sweep: every arm of every experiment at every learning rate of
/// `lr_grid` on every tuning seed; per `(experiment, method, rank)` the learning rate with the
/// lowest mean final normalised MSE over the tuning seeds (a run that diverges on any tuning
/// seed disqualifies its learning rate). The verdict seeds are never used here.
pub fn tune<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    device: &B::Device,
) -> Result<Tuning, Error> {
    cfg.validate()?;
    let grid = &cfg.lr_grid;
    let mut choices = Vec::new();
    for experiment in Experiment::ALL {
        let arms = arms(cfg, experiment);
        // sums[arm][lr] = Some(Σ over seeds) until a divergence.
        let mut sums = vec![vec![Some(0.0); grid.len()]; arms.len()];
        for &seed in &cfg.tuning_seeds {
            let p = problem::<B>(cfg, experiment, seed, device)?;
            for (a, &arm) in arms.iter().enumerate() {
                for (i, &lr) in grid.iter().enumerate() {
                    let Some(acc) = sums[a][i] else { continue };
                    sums[a][i] = match train_arm(cfg, experiment, &p, arm, lr, seed, device) {
                        Ok(out) => Some(acc + out.final_nmse()),
                        Err(Error::Diverged { .. }) => None,
                        Err(e) => return Err(e),
                    };
                }
            }
        }
        let n = cfg.tuning_seeds.len() as f64;
        for (a, &(method, rank)) in arms.iter().enumerate() {
            let scores: Vec<Option<f64>> = sums[a].iter().map(|s| s.map(|v| v / n)).collect();
            let best = scores
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s)))
                .min_by(|x, y| x.1.total_cmp(&y.1));
            let Some((i, _)) = best else {
                return Err(Error::Diverged {
                    run: format!(
                        "tuning {}/{}/r{rank} at every learning rate of {grid:?}",
                        experiment.as_str(),
                        method.as_str()
                    ),
                    step: 0,
                    loss: f64::NAN,
                });
            };
            choices.push(LrChoice {
                experiment,
                method,
                rank,
                lr: grid[i],
                scores,
            });
        }
    }
    Ok(Tuning {
        seeds: cfg.tuning_seeds.clone(),
        lr_grid: grid.clone(),
        choices,
    })
}

/// All experiments for one verdict seed, each arm at the learning rate `tuning` chose:
/// capacity and control (LoRA and DoRA at every rank), adapt (FT, LoRA and DoRA at every rank)
/// and the magnitude/direction analysis of the adapt runs of FT and of LoRA/DoRA at
/// `analysis_rank`. Fails when `seed` is a tuning seed or `tuning` lacks an arm.
pub fn run_seed<B: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    tuning: &Tuning,
    seed: u64,
    device: &B::Device,
) -> Result<SeedMeasurements, Error> {
    cfg.validate_with_seeds(&[seed])?;
    let mut m = SeedMeasurements {
        seed,
        pretrain_nmse: f64::NAN,
        arms: Vec::new(),
        analysis: Vec::new(),
    };
    for experiment in Experiment::ALL {
        let p = problem::<B>(cfg, experiment, seed, device)?;
        if experiment == Experiment::Adapt {
            m.pretrain_nmse = p.pretrain_nmse;
        }
        for (method, rank) in arms(cfg, experiment) {
            let lr = tuning
                .lr(experiment, method, rank)
                .ok_or_else(|| Error::Config {
                    name: "tuning".into(),
                    value: format!(
                        "no learning rate for {}/{}/r{rank}",
                        experiment.as_str(),
                        method.as_str()
                    ),
                    rule: "run tune with this config first".into(),
                })?;
            let out = train_arm(cfg, experiment, &p, (method, rank), lr, seed, device)?;
            if !out.points.is_empty() {
                m.analysis.push(analysis(method, rank, &out));
            }
            m.arms
                .push(arm_measurement(experiment, method, rank, lr, &out));
        }
    }
    Ok(m)
}
