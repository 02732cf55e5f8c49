//! Training on real text: one arm ([`train_arm`]), the learning-rate sweep on the tuning
//! seeds ([`tune`]) and all arms of one verdict seed ([`run_seed`]).
//!
//! Every arm: Adam (burn's defaults, no weight decay), `warmup` steps rising linearly to the
//! peak learning rate, then a linear decay to 0 at `steps`; batches of `batch` training
//! windows of the shift's D1 drawn from one seeded stream that every arm of a seed shares
//! (common random numbers: arms differ only by method, rank, norm gradient and learning rate).
//! FT trains every parameter of the base model; LoRA and DoRA train only their adapters.

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use claimbench_continual::data::Corpus;
use claimbench_continual::experiment::{Datasets, eval_loss};
use claimbench_continual::model::{TinyLm, lm_loss, next_token_loss};
use claimbench_continual::{ExperimentConfig, Shift};
use claimbench_kernels::burn_ops::{DoraBackend, NormGrad, TokenLogprobBackend};
use claimbench_paper::DataEnv;
use rand::Rng;

use super::measure::{ArmRun, BaseLoss, LrPick, TextSeed, TextTuning};
use super::model::{ANALYSED, AdaptedLm, PROJECTIONS, decompose_full};
use super::{TextArm, TextConfig};
use crate::error::Error;
use crate::layer::{Decomposed, LinearWeights, Method, stream};

/// A training backend of the real-text arms: autodiff over a backend with the fused
/// cross-entropy and the LoRA/DoRA ops, whose inner backend evaluates.
pub trait TextBackend: AutodiffBackend + DoraBackend + TokenLogprobBackend
where
    Self::InnerBackend: TokenLogprobBackend,
{
}

impl<B> TextBackend for B
where
    B: AutodiffBackend + DoraBackend + TokenLogprobBackend,
    B::InnerBackend: TokenLogprobBackend,
{
}

/// The windows one shift is trained and measured on.
#[derive(Debug, Clone)]
pub struct ShiftData {
    /// The shift.
    pub shift: Shift,
    /// D1 training windows (seeded offsets of its training split).
    pub train: Corpus,
    /// D1 validation windows (what tuning scores).
    pub validation: Corpus,
    /// D1 test windows (what the verdicts read).
    pub test: Corpus,
    /// D0 test windows (forgetting).
    pub d0_test: Corpus,
}

impl ShiftData {
    /// The windows of `shift` for `seed` (continual's datasets, plus evenly spaced test windows
    /// of each domain's test split).
    pub fn load(cfg: &TextConfig, shift: Shift, seed: u64, env: &DataEnv) -> Result<Self, Error> {
        let base = &cfg.base;
        let text = |e: String| Error::Text(e);
        let sets = Datasets::load(base, seed, env).map_err(|e| text(e.to_string()))?;
        let corpus = claimbench_corpus::load(&base.corpus, env).map_err(|e| text(e.to_string()))?;
        let len = base.model.context + 1;
        let test = |id: &str| -> Result<Corpus, Error> {
            let d = corpus
                .domain(id)
                .ok_or_else(|| text(format!("domain {id} is not in the loaded corpus")))?;
            Corpus::spaced_windows(
                d.tokens(claimbench_corpus::Split::Test),
                cfg.test_sequences,
                len,
            )
            .map_err(|e| text(format!("{id} test split: {e}")))
        };
        let (train, validation) = sets.d1(shift).clone();
        let d1 = match shift {
            Shift::Weak => &base.weak,
            Shift::Strong => &base.strong,
        };
        Ok(ShiftData {
            shift,
            train,
            validation,
            test: test(d1)?,
            d0_test: test(&base.d0)?,
        })
    }
}

/// The learning rate of step `t` (0-based): linear warmup to `peak`, linear decay to 0.
pub fn lr_at(cfg: &TextConfig, peak: f64, t: usize) -> f64 {
    if t < cfg.warmup {
        peak * (t + 1) as f64 / cfg.warmup as f64
    } else {
        peak * (cfg.steps - t) as f64 / (cfg.steps - cfg.warmup) as f64
    }
}

/// The batch stream of `seed` on `shift`: `steps × batch` window indices.
fn batches(cfg: &TextConfig, shift: Shift, seed: u64, n: usize) -> Vec<Vec<usize>> {
    let tag = match shift {
        Shift::Weak => 0x7e47_0001,
        Shift::Strong => 0x7e47_0002,
    };
    let mut rng = stream(seed, tag);
    (0..cfg.steps)
        .map(|_| (0..cfg.batch).map(|_| rng.random_range(0..n)).collect())
        .collect()
}

fn batch_tensor<B: Backend>(
    data: &Corpus,
    picks: &[usize],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let len = data.len();
    let mut ids = Vec::with_capacity(picks.len() * len);
    for &j in picks {
        ids.extend_from_slice(data.seq(j));
    }
    Tensor::from_data(TensorData::new(ids, [picks.len(), len]), device)
}

/// Adam steps of `module` under `loss`, `log` at step 0, every `eval_every` steps and the last.
fn fit<B: AutodiffBackend, M: AutodiffModule<B>>(
    cfg: &TextConfig,
    mut module: M,
    peak: f64,
    run: &str,
    mut loss: impl FnMut(&M, &[usize]) -> Result<Tensor<B, 1>, Error>,
    picks: &[Vec<usize>],
    mut log: impl FnMut(usize, &M) -> Result<(), Error>,
) -> Result<M, Error> {
    let mut optim = AdamConfig::new().init::<B, M>();
    log(0, &module)?;
    for (t, batch) in picks.iter().enumerate() {
        let l = loss(&module, batch)?;
        let value: f64 = l.clone().into_scalar().elem();
        if !value.is_finite() {
            return Err(Error::Diverged {
                run: format!("{run} (lr {peak})"),
                step: t,
                loss: value,
            });
        }
        let grads = GradientsParams::from_grads(l.backward(), &module);
        module = optim.step(lr_at(cfg, peak, t), module, grads);
        if (t + 1) % cfg.eval_every == 0 || t + 1 == cfg.steps {
            log(t + 1, &module)?;
        }
    }
    Ok(module)
}

/// `(layer, ΔD, ΔM)` of the analysed projections (query, value of every block).
fn analysed_points(dec: &[Decomposed], base: &[LinearWeights]) -> Vec<(usize, f64, f64)> {
    (0..dec.len())
        .filter(|l| ANALYSED.contains(&(l % PROJECTIONS.len())))
        .map(|l| {
            let (dd, dm) = dec[l].deltas(&base[l]);
            (l, dd, dm)
        })
        .collect()
}

/// Trains `arm` at peak learning rate `lr` from `base` on `data` with the batch stream of
/// `seed`, logging the validation loss (and, with `analysis`, the `(ΔD, ΔM)` points of the
/// analysed projections); measures the final test losses unless `tuning`.
#[allow(clippy::too_many_arguments)]
pub fn train_arm<B: TextBackend>(
    cfg: &TextConfig,
    arm: TextArm,
    lr: f64,
    base: &TinyLm<B>,
    data: &ShiftData,
    seed: u64,
    analysis: bool,
    tuning: bool,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<ArmRun, Error>
where
    B::InnerBackend: TokenLogprobBackend,
{
    let picks = batches(cfg, data.shift, seed, data.train.n());
    let run = format!("text/{}/{}", data.shift.name(), arm.name());
    let mut out = ArmRun {
        shift: data.shift,
        arm,
        lr,
        curve_steps: Vec::new(),
        curve: Vec::new(),
        test_loss: f64::NAN,
        d0_test_loss: f64::NAN,
        points: Vec::new(),
    };
    let eval = |lm: &TinyLm<B::InnerBackend>, c: &Corpus| eval_loss(lm, c, 64, device);
    let mut record = |step: usize,
                      lm: &TinyLm<B::InnerBackend>,
                      dec: Option<(Vec<Decomposed>, &[LinearWeights])>,
                      out: &mut ArmRun| {
        let v = eval(lm, &data.validation);
        if !v.is_finite() {
            return Err(Error::Diverged {
                run: format!("{run} (lr {lr})"),
                step,
                loss: v,
            });
        }
        out.curve_steps.push(step);
        out.curve.push(v);
        if let Some((dec, base)) = dec.filter(|_| step > 0) {
            for (l, dd, dm) in analysed_points(&dec, base) {
                out.points.push((l, step, dd, dm));
            }
        }
        tick();
        Ok(())
    };
    let final_lm: TinyLm<B::InnerBackend> = if arm.method == Method::Full {
        let base_layers: Vec<LinearWeights> = super::model::projections(base)
            .into_iter()
            .map(super::model::host_weights)
            .collect::<Result<_, _>>()?;
        let trained = fit(
            cfg,
            base.clone(),
            lr,
            &run,
            |m: &TinyLm<B>, p| Ok(lm_loss(m, batch_tensor::<B>(&data.train, p, device))),
            &picks,
            |step, m: &TinyLm<B>| {
                let dec = match analysis {
                    true => Some((decompose_full(m)?, base_layers.as_slice())),
                    false => None,
                };
                record(step, &m.valid(), dec, &mut out)
            },
        )?;
        trained.valid()
    } else {
        let norm = match arm.exact {
            true => NormGrad::Exact,
            false => NormGrad::Detached,
        };
        let mut rng = stream(seed, 0xada0 + arm.rank as u64);
        let alpha = cfg.alpha_per_rank * arm.rank as f64;
        let (adapted, params) =
            AdaptedLm::new(base.clone(), arm.method, arm.rank, alpha, norm, &mut rng)?;
        let trained = fit(
            cfg,
            params,
            lr,
            &run,
            |p, picks| {
                next_token_loss(batch_tensor::<B>(&data.train, picks, device), |x| {
                    adapted.forward(p, x)
                })
            },
            &picks,
            |step, p| {
                let dec = match analysis {
                    true => Some((adapted.decompose(p)?, adapted.base_layers())),
                    false => None,
                };
                record(step, &adapted.merged(p)?, dec, &mut out)
            },
        )?;
        adapted.merged(&trained)?
    };
    if !tuning {
        out.test_loss = eval(&final_lm, &data.test);
        out.d0_test_loss = eval(&final_lm, &data.d0_test);
    }
    Ok(out)
}

/// The arms whose learning rate is tuned: all but the exact-norm arm, which takes the detached
/// DoRA arm's at its rank (so the two differ only by the gradient).
fn tuned_arms(cfg: &TextConfig) -> Vec<TextArm> {
    cfg.arms().into_iter().filter(|a| !a.exact).collect()
}

/// The learning-rate sweep: every tuned arm of every shift at every rate of `lr_grid` on each
/// tuning seed's own base model (`bases`, in `tuning_seeds` order); the rate with the lowest
/// mean final validation loss wins (a diverged rate is skipped; an arm where all diverge is an
/// error).
pub fn tune<B: TextBackend>(
    cfg: &TextConfig,
    bases: &[TinyLm<B>],
    env: &DataEnv,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<TextTuning, Error>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let mut picks = Vec::new();
    for &shift in &cfg.shifts {
        let data: Vec<ShiftData> = cfg
            .tuning_seeds
            .iter()
            .map(|&s| ShiftData::load(cfg, shift, s, env))
            .collect::<Result<_, _>>()?;
        for arm in tuned_arms(cfg) {
            let mut scores = Vec::new();
            for &lr in &cfg.lr_grid {
                let mut total = 0.0;
                let mut ok = true;
                for ((&seed, base), d) in cfg.tuning_seeds.iter().zip(bases).zip(&data) {
                    match train_arm::<B>(cfg, arm, lr, base, d, seed, false, true, device, tick) {
                        Ok(r) => total += r.curve.last().copied().unwrap_or(f64::NAN),
                        Err(Error::Diverged { .. }) => ok = false,
                        Err(e) => return Err(e),
                    }
                }
                let mean = total / cfg.tuning_seeds.len() as f64;
                scores.push(if ok && mean.is_finite() {
                    mean
                } else {
                    f64::NAN
                });
            }
            let best = scores
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_finite())
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| cfg.lr_grid[i])
                .ok_or_else(|| Error::Diverged {
                    run: format!(
                        "text/{}/{} at every rate of the grid",
                        shift.name(),
                        arm.name()
                    ),
                    step: 0,
                    loss: f64::NAN,
                })?;
            picks.push(LrPick {
                shift,
                arm,
                lr: best,
                scores,
            });
        }
    }
    Ok(TextTuning {
        seeds: cfg.tuning_seeds.clone(),
        lr_grid: cfg.lr_grid.clone(),
        picks,
    })
}

/// Every arm of every shift on verdict seed `seed` from its base model `base`, with the swept
/// learning rates `t`, and the memory of the exact against the detached norm.
pub fn run_seed<B: TextBackend>(
    cfg: &TextConfig,
    t: &TextTuning,
    seed: u64,
    base: &TinyLm<B>,
    env: &DataEnv,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<TextSeed, Error>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let mut out = TextSeed {
        seed,
        base: Vec::new(),
        arms: Vec::new(),
        memory: None,
    };
    for &shift in &cfg.shifts {
        let data = ShiftData::load(cfg, shift, seed, env)?;
        let valid = base.valid();
        out.base.push(BaseLoss {
            shift,
            test_loss: eval_loss(&valid, &data.test, 64, device),
            d0_test_loss: eval_loss(&valid, &data.d0_test, 64, device),
        });
        for arm in cfg.arms() {
            let lookup = TextArm {
                exact: false,
                ..arm
            };
            let lr = t.lr(shift, lookup).ok_or_else(|| {
                Error::Text(format!(
                    "the sweep has no learning rate for {}/{}",
                    shift.name(),
                    lookup.name()
                ))
            })?;
            let analysis =
                arm.rank == cfg.analysis_rank && !arm.exact || arm.method == Method::Full;
            out.arms.push(train_arm::<B>(
                cfg, arm, lr, base, &data, seed, analysis, false, device, tick,
            )?);
        }
    }
    Ok(out)
}

/// `cfg`'s base settings agree with those a stored stage-0 checkpoint was trained with (on
/// everything stage 0 reads), else an error naming both sides' first difference.
pub fn check_base(cfg: &TextConfig, stored: &ExperimentConfig) -> Result<(), Error> {
    let a = claimbench_continual::stage0_settings(&cfg.base);
    let b = claimbench_continual::stage0_settings(stored);
    if a == b {
        return Ok(());
    }
    let (ja, jb) = (
        serde_json::to_value(&a).unwrap_or_default(),
        serde_json::to_value(&b).unwrap_or_default(),
    );
    let field = ja
        .as_object()
        .and_then(|o| o.iter().find(|(k, v)| jb.get(k.as_str()) != Some(*v)))
        .map(|(k, _)| k.clone())
        .unwrap_or_default();
    Err(Error::Text(format!(
        "the stored base model was trained with other settings than dora's text.base (first \
         difference: {field}); give continual and dora.text.base the same settings"
    )))
}
