//! The training loop and the unit of work the harness calls: [`run_seed`] trains the four
//! [`Arm`]s of one seed on the same data and measures them.
//!
//! Random streams ([`stream`] tags): 3 the training batches (shared by every arm: common random
//! numbers, the same token budget), 10 the shared weights (embedding, attention, norms, head: the
//! same in every arm), 20/21/22 the FFN weights of the MoE arms (both MoE arms start identical),
//! dense-active and dense-total, `100 + 2l` and `101 + 2l` the permutations of layer `l`'s
//! specialisation tests (real and planted routing). The validation windows are the same for
//! every seed ([`crate::data`]).
//!
//! Convergence ([`final_slope`]): the least-squares slope of the validation loss over the
//! checkpoints in the last `convergence.window` of the steps, in nats per 1000 steps; an arm
//! converged when the drop it means over the window is at most `convergence.max_relative_drop`
//! of its final loss ([`MixtralConfig::converged`]).
//!
//! Every arm: Adam (β = 0.9, 0.999), gradients clipped per parameter to norm 1, learning rate
//! warmed up linearly over `warmup` steps, then decayed linearly to 10% of the peak; loss
//! `CE + c_aux · mean_l L_aux,l + c_z · mean_l L_z,l` ([`crate::balance`]) with `c_aux = 0` for the
//! dense arms and the no-aux arm and `c_z = 0` for the dense arms.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::{MoeBackend, TokenLogprobBackend, cross_entropy_unchecked};
use claimbench_kernels::cross_entropy::Settings;

use crate::balance::{load_balancing_loss, router_z_loss};
use claimbench_paper::DataEnv;

use crate::config::{MixtralConfig, ModelConfig};
use crate::data::{Batch, Domains, stream};
use crate::error::Error;
use crate::measure::{Arm, ArmMeasurement, SeedMeasurements};
use crate::model::{Decoder, init};
use crate::params::{FfnShape, ParamCounts, param_counts};
use crate::routing::LayerRouting;

/// A backend this crate trains on: autodiff over a backend with the MoE and cross-entropy ops
/// (e.g. `Autodiff<Flex>`, `Autodiff<Wgpu>`, whose fusion stream takes the MoE ops as custom ops).
pub trait TrainBackend:
    AutodiffBackend<InnerBackend: MoeBackend + TokenLogprobBackend> + MoeBackend + TokenLogprobBackend
{
}

impl<B> TrainBackend for B where
    B: AutodiffBackend<InnerBackend: MoeBackend + TokenLogprobBackend>
        + MoeBackend
        + TokenLogprobBackend
{
}

/// The FFN of `arm`.
pub fn ffn_shape(m: &ModelConfig, arm: Arm) -> FfnShape {
    match arm {
        Arm::DenseActive => FfnShape::Dense {
            hidden: m.dense_hidden,
        },
        Arm::DenseTotal => FfnShape::Dense {
            hidden: m.dense_total_hidden,
        },
        Arm::Moe | Arm::MoeNoAux => FfnShape::Moe {
            experts: m.experts,
            top_k: m.top_k,
            hidden: m.expert_hidden,
        },
    }
}

/// The parameter counts of `arm`'s model.
pub fn arm_params(m: &ModelConfig, arm: Arm) -> ParamCounts {
    param_counts(&m.shape(ffn_shape(m, arm)))
}

fn ffn_tag(arm: Arm) -> u64 {
    match arm {
        Arm::Moe | Arm::MoeNoAux => 20,
        Arm::DenseActive => 21,
        Arm::DenseTotal => 22,
    }
}

/// The freshly initialised model of `arm` for `seed` (see the [module docs](self) for streams).
pub fn init_model<B: Backend>(
    cfg: &MixtralConfig,
    arm: Arm,
    seed: u64,
    device: &B::Device,
) -> Decoder<B> {
    init(
        &cfg.model,
        ffn_shape(&cfg.model, arm),
        &mut stream(seed, 10),
        &mut stream(seed, ffn_tag(arm)),
        device,
    )
}

/// Tokens of each domain's coloured sample on the page (the start of its first validation
/// window).
pub const SAMPLE_TOKENS: usize = 48;

/// A run's data: the domains' token streams, the validation set (`val_seqs_per_domain` windows
/// per domain, domain-major), the text of each domain's sample tokens and the unigram reference.
#[derive(Debug, Clone)]
pub struct SeedData {
    /// The training and validation streams.
    pub domains: Domains,
    /// The validation set.
    pub val: Batch,
    /// Per domain, the text of each of the first [`SAMPLE_TOKENS`] tokens of its first
    /// validation window ([`claimbench_corpus::Bpe::pieces`]).
    pub sample_pieces: Vec<Vec<String>>,
    /// [`Domains::unigram_loss`] of the validation set.
    pub unigram_loss: f64,
}

impl SeedData {
    /// The data of `cfg`, its text read from `env` (the corpus is loaded once per process). The
    /// validation set does not depend on the seed; the training batches do ([`train_arm`]).
    pub fn load(cfg: &MixtralConfig, env: &DataEnv) -> Result<Self, Error> {
        let corpus = claimbench_corpus::load(&cfg.data.corpus, env)
            .map_err(|e| Error::Data(e.to_string()))?;
        if corpus.bpe.vocab_size > cfg.model.vocab {
            return Err(Error::Data(format!(
                "the tokenizer has {} tokens, more than model.vocab = {}",
                corpus.bpe.vocab_size, cfg.model.vocab
            )));
        }
        let domains = Domains::from_corpus(&cfg.data, &corpus)?;
        let val = domains.validation_batch(cfg.data.val_seqs_per_domain);
        let per = cfg.data.val_seqs_per_domain;
        let sample_pieces = (0..domains.len())
            .map(|d| {
                let row = &val.tokens[d * per * val.len..][..val.len - 1];
                let n = SAMPLE_TOKENS.min(row.len());
                corpus
                    .bpe
                    .pieces(&row[..n])
                    .map_err(|e| Error::Data(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let unigram_loss = domains.unigram_loss(&val, cfg.model.vocab);
        Ok(SeedData {
            domains,
            val,
            sample_pieces,
            unigram_loss,
        })
    }
}

/// The convergence slope of a validation curve: the least-squares slope of `val` against
/// `steps` over the points with `step ∈ fitted` (the config's
/// [`MixtralConfig::convergence_checkpoints`]), in nats per 1000 steps (`NaN` with fewer than 2
/// points).
pub fn final_slope(steps: &[usize], val: &[f64], fitted: &[usize]) -> f64 {
    let pts: Vec<(f64, f64)> = steps
        .iter()
        .zip(val)
        .filter(|(s, _)| fitted.contains(s))
        .map(|(&s, &v)| (s as f64, v))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return f64::NAN;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return f64::NAN;
    }
    1000.0 * sxy / sxx
}

/// `(inputs [n, T], targets [n·T])` of rows `rows` of `batch`.
fn tensors<B: Backend>(
    batch: &Batch,
    rows: std::ops::Range<usize>,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 1, Int>) {
    let (len, n) = (batch.len, rows.len());
    let t = len - 1;
    let mut inp = Vec::with_capacity(n * t);
    let mut tgt = Vec::with_capacity(n * t);
    for r in rows {
        let s = &batch.tokens[r * len..(r + 1) * len];
        inp.extend(s[..t].iter().map(|&x| x as i32));
        tgt.extend(s[1..].iter().map(|&x| x as i32));
    }
    (
        Tensor::from_data(TensorData::new(inp, [n, t]), device),
        Tensor::from_data(TensorData::new(tgt, [n * t]), device),
    )
}

fn read_f64<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f64>, Error> {
    t.into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .map_err(|e| Error::ReadBack(format!("{e:?}")))
}

fn read_ids<B: Backend>(t: Tensor<B, 2, Int>) -> Result<Vec<usize>, Error> {
    Ok(t.into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| Error::ReadBack(format!("{e:?}")))?
        .into_iter()
        .map(|i| i as usize)
        .collect())
}

/// The coefficients of the auxiliary losses of `arm`: `(c_aux, c_z)`.
fn aux_coefs(cfg: &MixtralConfig, arm: Arm) -> (f64, f64) {
    match arm {
        Arm::Moe => (cfg.train.aux_coef, cfg.train.z_coef),
        Arm::MoeNoAux => (0.0, cfg.train.z_coef),
        Arm::DenseActive | Arm::DenseTotal => (0.0, 0.0),
    }
}

/// `(total loss, cross-entropy)` of `model` on `(inputs [n, T], targets [n·T])`: the
/// cross-entropy (fused op) plus the auxiliary terms of the [module docs](self).
pub fn losses<B: Backend + MoeBackend + TokenLogprobBackend>(
    cfg: &MixtralConfig,
    arm: Arm,
    model: &Decoder<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 1, Int>,
) -> Result<(Tensor<B, 1>, Tensor<B, 1>), Error> {
    let n = targets.dims()[0];
    let out = model.forward(inputs)?;
    let ce = cross_entropy_unchecked(out.logits, targets, Settings::default(), n);
    let (c_aux, c_z) = aux_coefs(cfg, arm);
    let layers = out.routing.len().max(1) as f64;
    let mut total = ce.clone();
    for r in out.routing {
        if c_aux > 0.0 {
            total = total
                + load_balancing_loss(r.probs, r.ids, cfg.train.aux_norm)
                    .mul_scalar(c_aux / layers);
        }
        if c_z > 0.0 {
            total = total + router_z_loss(r.logits).mul_scalar(c_z / layers);
        }
    }
    Ok((total, ce))
}

/// The learning rate at step `t` (0-based): linear warm-up to `lr`, then linear decay to
/// `0.1·lr` at the last step.
pub fn learning_rate(cfg: &MixtralConfig, t: usize) -> f64 {
    let tr = &cfg.train;
    if t < tr.warmup {
        return tr.lr * (t + 1) as f64 / tr.warmup as f64;
    }
    let span = (tr.steps - tr.warmup).max(1) as f64;
    let frac = (t - tr.warmup) as f64 / span;
    tr.lr * (1.0 - 0.9 * frac)
}

/// Validation of `model` on `val`, domain by domain: the mean cross-entropy per domain `[D]`
/// and, when `routing` is asked for (with the seed for the permutation streams), each MoE
/// layer's [`LayerRouting`] with its specialisation test ([`LayerRouting::with_mi`]), its
/// planted positive control ([`LayerRouting::with_planted`], `cfg.planted_bias_sd`; from the same
/// forward pass's router logits) and the first choices of each domain's sample tokens.
fn validate<B: Backend + MoeBackend + TokenLogprobBackend>(
    cfg: &MixtralConfig,
    model: &Decoder<B>,
    val: &Batch,
    routing: Option<u64>,
    device: &B::Device,
) -> Result<(Vec<f64>, Vec<LayerRouting>), Error> {
    let per = cfg.data.val_seqs_per_domain;
    let domains = cfg.data.domains();
    let t = val.len - 1;
    let mut losses = Vec::with_capacity(domains);
    let mut ids: Vec<Vec<usize>> = Vec::new();
    let mut logits: Vec<Vec<f64>> = Vec::new();
    let mut k = 0;
    for d in 0..domains {
        let (inp, tgt) = tensors::<B>(val, d * per..(d + 1) * per, device);
        let out = model.forward(inp)?;
        let ce = cross_entropy_unchecked(out.logits, tgt, Settings::default(), per * t);
        losses.push(read_f64(ce)?[0]);
        if routing.is_some() {
            ids.resize(out.routing.len(), Vec::new());
            logits.resize(out.routing.len(), Vec::new());
            for (l, r) in out.routing.into_iter().enumerate() {
                k = r.ids.dims()[1];
                ids[l].extend(read_ids(r.ids)?);
                logits[l].extend(read_f64(r.logits)?);
            }
        }
    }
    let Some(seed) = routing else {
        return Ok((losses, Vec::new()));
    };
    let perms = cfg.permutations;
    let stats = ids
        .iter()
        .enumerate()
        .map(|(l, ids)| {
            let tag = 100 + 2 * l as u64;
            let mut r =
                LayerRouting::from_ids(l, ids, k, t, &val.domain, domains, cfg.model.experts)
                    .with_mi(ids, k, t, &val.domain, perms, &mut stream(seed, tag))
                    .with_planted(
                        &logits[l],
                        k,
                        t,
                        &val.domain,
                        cfg.planted_bias_sd,
                        perms,
                        &mut stream(seed, tag + 1),
                    );
            r.sample_experts = (0..domains)
                .map(|d| {
                    let start = d * per * t;
                    (0..crate::experiments::SAMPLE_TOKENS.min(t))
                        .map(|i| ids[(start + i) * k])
                        .collect()
                })
                .collect();
            r
        })
        .collect();
    Ok((losses, stats))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Trains one arm of one seed on `data` and measures it. `progress(step, steps)` is called
/// after every step.
pub fn train_arm<B: TrainBackend>(
    cfg: &MixtralConfig,
    arm: Arm,
    seed: u64,
    data: &SeedData,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ArmMeasurement, Error> {
    let start = Instant::now();
    let tr = &cfg.train;
    let mut model = init_model::<B>(cfg, arm, seed, device);
    let mut optim = AdamConfig::new()
        .with_grad_clipping(Some(
            burn::optim::grad_clipping::GradientClippingConfig::Norm(1.0),
        ))
        .init::<B, Decoder<B>>();
    let mut batch_rng = stream(seed, 3);
    let (mut curve_steps, mut train_curve, mut val_curve) = (Vec::new(), Vec::new(), Vec::new());
    let inner = |m: &Decoder<B>| m.valid();
    let (v0, _) = validate(cfg, &inner(&model), &data.val, None, device)?;
    curve_steps.push(0);
    // Replaced by the first batch's loss before the first update.
    train_curve.push(f64::NAN);
    val_curve.push(mean(&v0));
    let (mut acc, mut acc_n) = (0.0, 0usize);
    for t in 0..tr.steps {
        let batch = data.domains.mixed_batch(tr.batch, &mut batch_rng);
        let (inp, tgt) = tensors::<B>(&batch, 0..batch.rows(), device);
        let (total, ce) = losses(cfg, arm, &model, inp, tgt)?;
        let ce_v = read_f64(ce.detach())?[0];
        if !ce_v.is_finite() {
            return Err(Error::Diverged {
                run: format!("seed {seed} {}", arm.as_str()),
                step: t,
                loss: ce_v,
            });
        }
        if t == 0 {
            train_curve[0] = ce_v;
        }
        acc += ce_v;
        acc_n += 1;
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(learning_rate(cfg, t), model, grads);
        let done = t + 1;
        if done % tr.eval_every == 0 || done == tr.steps {
            let (v, _) = validate(cfg, &inner(&model), &data.val, None, device)?;
            curve_steps.push(done);
            train_curve.push(acc / acc_n as f64);
            val_curve.push(mean(&v));
            (acc, acc_n) = (0.0, 0);
        }
        progress(done, tr.steps);
    }
    let (val_loss_domain, routing) = validate(cfg, &inner(&model), &data.val, Some(seed), device)?;
    let p = arm_params(&cfg.model, arm);
    let final_slope = final_slope(&curve_steps, &val_curve, &cfg.convergence_checkpoints());
    Ok(ArmMeasurement {
        arm,
        params_total: p.total,
        params_active: p.active,
        val_loss: mean(&val_loss_domain),
        val_loss_domain,
        curve_steps,
        train_curve,
        val_curve,
        final_slope,
        routing,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The four arms of one seed ([`Arm::ALL`]), each trained and measured on the run's data (text
/// read from `env`).
pub fn run_seed<B: TrainBackend>(
    cfg: &MixtralConfig,
    seed: u64,
    env: &DataEnv,
    device: &B::Device,
) -> Result<SeedMeasurements, Error> {
    run_seed_with_progress::<B>(cfg, seed, env, device, &mut |_, _, _| {})
}

/// [`run_seed`] with `progress(arm, step, steps)` called after every training step.
pub fn run_seed_with_progress<B: TrainBackend>(
    cfg: &MixtralConfig,
    seed: u64,
    env: &DataEnv,
    device: &B::Device,
    progress: &mut dyn FnMut(Arm, usize, usize),
) -> Result<SeedMeasurements, Error> {
    cfg.validate_with_seeds(&[seed])?;
    let data = SeedData::load(cfg, env)?;
    let mut arms = Vec::with_capacity(Arm::ALL.len());
    for arm in Arm::ALL {
        arms.push(train_arm::<B>(
            cfg,
            arm,
            seed,
            &data,
            device,
            &mut |s, n| progress(arm, s, n),
        )?);
    }
    Ok(SeedMeasurements {
        seed,
        unigram_loss: data.unigram_loss,
        sample_pieces: data.sample_pieces.clone(),
        arms,
    })
}

/// A short training trace for backend comparisons: the total loss of each of `steps` steps and
/// the gradients at the first step of the embedding, block 0's `W_q`, FFN `w13`, `w2`, router
/// (MoE) and the head, flattened, named.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Total loss per step.
    pub losses: Vec<f64>,
    /// `(name, gradient)` at step 0.
    pub grads: Vec<(String, Vec<f64>)>,
}

/// Trains `arm` for `steps` steps on `seed`'s batches of the run's data (as in [`train_arm`];
/// text read from `env`) and records a [`Trace`].
pub fn trace<B: TrainBackend>(
    cfg: &MixtralConfig,
    arm: Arm,
    seed: u64,
    steps: usize,
    env: &DataEnv,
    device: &B::Device,
) -> Result<Trace, Error> {
    cfg.validate()?;
    let data = SeedData::load(cfg, env)?;
    let mut model = init_model::<B>(cfg, arm, seed, device);
    let mut optim = AdamConfig::new()
        .with_grad_clipping(Some(
            burn::optim::grad_clipping::GradientClippingConfig::Norm(1.0),
        ))
        .init::<B, Decoder<B>>();
    let mut batch_rng = stream(seed, 3);
    let mut out = Trace {
        losses: Vec::new(),
        grads: Vec::new(),
    };
    for t in 0..steps {
        let batch = data.domains.mixed_batch(cfg.train.batch, &mut batch_rng);
        let (inp, tgt) = tensors::<B>(&batch, 0..batch.rows(), device);
        let (total, _) = losses(cfg, arm, &model, inp, tgt)?;
        out.losses.push(read_f64(total.clone().detach())?[0]);
        let raw = total.backward();
        if t == 0 {
            let b0 = &model.blocks[0];
            let mut named: Vec<(String, Option<Tensor<B::InnerBackend, 3>>)> = vec![
                (
                    "embed".into(),
                    model.embed.val().grad(&raw).map(|g| g.unsqueeze()),
                ),
                (
                    "block0.wq".into(),
                    b0.wq.val().grad(&raw).map(|g| g.unsqueeze()),
                ),
                ("block0.w13".into(), b0.ffn.w13.val().grad(&raw)),
                ("block0.w2".into(), b0.ffn.w2.val().grad(&raw)),
                (
                    "head".into(),
                    model.head.val().grad(&raw).map(|g| g.unsqueeze()),
                ),
            ];
            if let Some(r) = &b0.ffn.router {
                named.push((
                    "block0.router".into(),
                    r.val().grad(&raw).map(|g| g.unsqueeze()),
                ));
            }
            for (name, g) in named {
                let g = g.ok_or_else(|| Error::ReadBack(format!("{name} has no gradient")))?;
                out.grads.push((name, read_f64(g)?));
            }
        }
        let grads = GradientsParams::from_grads(raw, &model);
        model = optim.step(learning_rate(cfg, t), model, grads);
    }
    Ok(out)
}
