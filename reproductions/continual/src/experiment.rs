//! The experiment: its settings ([`ExperimentConfig`]), its arms ([`Arm`]) and training one arm
//! on one seed ([`run_arm`]).
//!
//! Every arm except the union starts from the same D0-pretrained checkpoint per seed (stage 0:
//! linear warmup + cosine `η_max → η_min` on D0), then trains stage 1 for as many steps on D1
//! with its own schedule and replay share, the optimizer state reset in between (paper Sec. 4).
//! The union trains from scratch on D0 ∪ D1 for both stages' steps (equal total tokens); the
//! infinite-schedule arm trains its own stage 0 (warmup → cooldown → constant, no anneal) and
//! finishes stage 1 with the anneal. Losses on held-out D0 and D1 sets are logged every
//! `eval_every` steps.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use burn::backend::Flex;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::TokenLogprobBackend;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunConfig, StageConfig};
use crate::data::{Corpus, Language};
use crate::model::{ModelConfig, TinyLm, lm_loss};
use crate::replay::{ReplayMixer, Source};
use crate::schedule::Schedule;
use claimbench_paper::Scale;

/// The two distribution shifts of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shift {
    /// Pile → SlimPajama proxy: D1 re-draws a share of D0's transitions.
    Weak,
    /// Pile → German proxy: D1 is a new chain on disjoint tokens.
    Strong,
}

impl Shift {
    /// `weak` or `strong`.
    pub fn name(self) -> &'static str {
        match self {
            Shift::Weak => "weak",
            Shift::Strong => "strong",
        }
    }
}

/// One arm of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Arm {
    /// Re-warm to `η_max`, re-decay to `η_min`, replay `share` of every batch from D0.
    Replay {
        /// Which D1.
        shift: Shift,
        /// Replay share `x ∈ [0, 1]`.
        share: f64,
    },
    /// Re-warm to `peak` instead of `η_max`, no replay.
    Peak {
        /// Which D1.
        shift: Shift,
        /// Stage-1 peak learning rate.
        peak: f64,
    },
    /// No re-warming: stage 1 at a constant `η_min`, no replay.
    ConstantMin {
        /// Which D1.
        shift: Shift,
    },
    /// From scratch on D0 ∪ D1 (half of each batch from each), both stages' steps, one cosine.
    Union {
        /// Which D1.
        shift: Shift,
    },
    /// Re-warm + re-decay on D0 itself (no shift).
    SameData,
    /// The infinite schedule through both stages, replaying `share` in stage 1.
    Infinite {
        /// Which D1.
        shift: Shift,
        /// Replay share of stage 1.
        share: f64,
    },
}

impl Arm {
    /// A stable name, used in unit ids and metrics: `replay-5pct`, `peak-0.006`, `constant-min`,
    /// `union`, `same-data`, `infinite-5pct`.
    pub fn name(&self) -> String {
        match *self {
            Arm::Replay { share, .. } => format!("replay-{}", pct(share)),
            Arm::Peak { peak, .. } => format!("peak-{peak}"),
            Arm::ConstantMin { .. } => "constant-min".into(),
            Arm::Union { .. } => "union".into(),
            Arm::SameData => "same-data".into(),
            Arm::Infinite { share, .. } => format!("infinite-{}", pct(share)),
        }
    }

    /// The shift, or `None` for [`Arm::SameData`].
    pub fn shift(&self) -> Option<Shift> {
        match *self {
            Arm::Replay { shift, .. }
            | Arm::Peak { shift, .. }
            | Arm::ConstantMin { shift }
            | Arm::Union { shift }
            | Arm::Infinite { shift, .. } => Some(shift),
            Arm::SameData => None,
        }
    }

    /// The experiment the arm belongs to: `weak`, `strong` or `same-data`.
    pub fn experiment(&self) -> &'static str {
        self.shift().map_or("same-data", Shift::name)
    }
}

/// `0.005 → "0.5pct"`, `0.05 → "5pct"`.
fn pct(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    format!("{p}pct")
}

/// Everything that decides the experiment's numbers. Serialized as the `continual` section of a
/// `claimbench run --config` file; missing fields take the scale's defaults
/// ([`ExperimentConfig::for_scale`]).
///
/// Limits ([`crate::limits`], checked by [`ExperimentConfig::check_limits`]): `language_size`
/// ≤ 4096, `fanout` ≤ 1024, `train_sequences` and `eval_sequences` ≤ 1 000 000, `batch` ≤ 4096,
/// `stage_steps` and `eval_every` ≤ 1 000 000, `replay_shares` and `peaks` ≤ 64 entries,
/// `weight_decay` finite in `[0, 1000]`, and the model's ([`ModelConfig`]). Peak memory of one
/// arm: [`ExperimentConfig::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Tokens per language; the model's vocabulary is twice this (the strong shift's D1 uses
    /// the second half).
    pub language_size: usize,
    /// Markov order of the languages (1 or 2).
    pub order: usize,
    /// Successors per context.
    pub fanout: usize,
    /// Share of D0's contexts that the weak shift re-draws (the toy plan's ~30%).
    pub weak_redraw_share: f64,
    /// Training sequences per dataset (D0, D1).
    pub train_sequences: usize,
    /// Held-out sequences per dataset for the logged losses.
    pub eval_sequences: usize,
    /// Every sequence starts with a token naming its dataset (D0, weak D1, strong D1), as real
    /// documents carry their source's signature; without it the weak shift's re-drawn contexts
    /// are indistinguishable from D0's and no model can fit both.
    pub domain_markers: bool,
    /// The model (its `vocab` must be `2 · language_size`, plus 3 with `domain_markers`).
    pub model: ModelConfig,
    /// Sequences per batch.
    pub batch: usize,
    /// Optimizer steps per stage (stage 0 on D0, stage 1 on D1).
    pub stage_steps: usize,
    /// Peak learning rate of stage 0 and of the re-warm.
    pub eta_max: f64,
    /// Floor learning rate (cosine end, the constant arm's rate).
    pub eta_min: f64,
    /// Warmup as a share of a stage (the paper: 1%); at least one step.
    pub warmup_share: f64,
    /// Replay shares of the replay arms, both shifts.
    pub replay_shares: Vec<f64>,
    /// Other stage-1 peaks compared with `eta_max` (weak shift, no replay).
    pub peaks: Vec<f64>,
    /// Replay share of the weak-shift union comparison and the infinite schedule (paper: 5%).
    pub weak_union_share: f64,
    /// Replay share of the strong-shift union comparison (paper: 25%).
    pub strong_union_share: f64,
    /// Plateau rate of the infinite schedule.
    pub infinite_eta_const: f64,
    /// Cooldown of the infinite schedule as a share of a stage.
    pub infinite_cooldown_share: f64,
    /// Final anneal of the infinite schedule as a share of a stage.
    pub infinite_anneal_share: f64,
    /// Steps between logged evaluations.
    pub eval_every: usize,
    /// Reset AdamW's state when stage 1 starts (the paper does).
    pub reset_optimizer: bool,
    /// AdamW weight decay.
    pub weight_decay: f64,
}

impl ExperimentConfig {
    /// Defaults for `smoke`, `small` or `full` .
    pub fn for_scale(scale: Scale) -> Self {
        let (stage_steps, train_sequences, eval_every) = match scale {
            Scale::Smoke => (60, 512, 20),
            Scale::Full => (1000, 8192, 50),
            Scale::Small => (200, 2048, 20),
        };
        let language_size = 32;
        ExperimentConfig {
            language_size,
            fanout: 3,
            order: 1,
            weak_redraw_share: 0.3,
            domain_markers: true,
            train_sequences,
            eval_sequences: 64,
            model: ModelConfig {
                vocab: 2 * language_size + 3,
                context: 32,
                d_model: 32,
                n_heads: 2,
                n_layers: 1,
                d_ff: 64,
            },
            batch: 16,
            stage_steps,
            eta_max: 1e-2,
            eta_min: 1e-3,
            warmup_share: 0.01,
            replay_shares: vec![0.0, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5],
            peaks: vec![5e-3, 2e-2],
            weak_union_share: 0.05,
            strong_union_share: 0.25,
            infinite_eta_const: 3e-3,
            infinite_cooldown_share: 0.4,
            infinite_anneal_share: 0.2,
            eval_every,
            reset_optimizer: true,
            weight_decay: 0.0,
        }
    }

    /// Checks everything before any training: sizes ≥ 1 and within their limits
    /// ([`ExperimentConfig::check_limits`]), shares in `[0, 1]`, rates ordered, warmup shorter
    /// than a stage, and every arm's run config valid ([`RunConfig::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("fanout", self.fanout),
            ("train_sequences", self.train_sequences),
            ("eval_sequences", self.eval_sequences),
            ("batch", self.batch),
            ("stage_steps", self.stage_steps),
            ("eval_every", self.eval_every),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(if name.ends_with("sequences") {
                ConfigError::Invalid(format!(
                    "{name} is 0: the dataset would be empty; it needs at least 1 sequence"
                ))
            } else {
                ConfigError::Invalid(format!("{name} must be at least 1, got 0"))
            });
        }
        self.check_limits()?;
        if !(1..=2).contains(&self.order) {
            return Err(ConfigError::Invalid(format!(
                "order {} is not supported; the languages are Markov chains of order 1 or 2",
                self.order
            )));
        }
        if self.language_size < 2 || self.fanout > self.language_size {
            return Err(ConfigError::Invalid(format!(
                "language_size {} must be >= 2 and >= fanout {}",
                self.language_size, self.fanout
            )));
        }
        self.model.validate()?;
        if self.eta_min > self.eta_max {
            return Err(ConfigError::MinAboveMax {
                eta_min: self.eta_min,
                eta_max: self.eta_max,
            });
        }
        if self.model.vocab != self.vocab() {
            return Err(ConfigError::Invalid(format!(
                "model vocab {} does not match the {} tokens of the data (2 x language_size {}{})",
                self.model.vocab,
                self.vocab(),
                self.language_size,
                if self.domain_markers {
                    " + 3 markers"
                } else {
                    ""
                }
            )));
        }
        for (name, share) in [
            ("weak_redraw_share", self.weak_redraw_share),
            ("infinite_cooldown_share", self.infinite_cooldown_share),
            ("infinite_anneal_share", self.infinite_anneal_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(ConfigError::Invalid(format!(
                    "{name} {share} is outside [0, 1]"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.warmup_share) {
            return Err(ConfigError::WarmupTooLong {
                warmup: self.warmup_steps(self.stage_steps),
                total: self.stage_steps,
            });
        }
        if self.infinite_cooldown_share + self.infinite_anneal_share > 1.0 {
            return Err(ConfigError::Invalid(format!(
                "infinite_cooldown_share {} + infinite_anneal_share {} exceed one stage",
                self.infinite_cooldown_share, self.infinite_anneal_share
            )));
        }
        if self.replay_shares.is_empty() {
            return Err(ConfigError::Invalid(
                "replay_shares is empty; list at least one share".into(),
            ));
        }
        for arm in self.arms() {
            self.run_config(&arm)
                .map_err(|e| ConfigError::Invalid(format!("arm {}: {e}", arm.name())))?;
        }
        Ok(())
    }

    /// The tokens the data uses: both languages, and the three dataset markers if on.
    pub fn vocab(&self) -> usize {
        2 * self.language_size + if self.domain_markers { 3 } else { 0 }
    }

    /// Warmup steps of one stage: `max(1, round(warmup_share · steps))`.
    pub fn warmup_steps(&self, steps: usize) -> usize {
        ((self.warmup_share * steps as f64).round() as usize).max(1)
    }

    fn cosine(&self, peak: f64, steps: usize) -> Schedule {
        Schedule::Cosine {
            eta_max: peak,
            eta_min: self.eta_min,
            warmup_steps: self.warmup_steps(steps),
            total_steps: steps,
        }
    }

    /// Every arm, in execution order: the replay sweeps (weak, strong), the peaks, constant
    /// `η_min`, the unions, re-warming on D0, the infinite schedule.
    pub fn arms(&self) -> Vec<Arm> {
        let mut arms = Vec::new();
        for shift in [Shift::Weak, Shift::Strong] {
            for &share in &self.replay_shares {
                arms.push(Arm::Replay { shift, share });
            }
        }
        let mut extra = |arm: Arm| {
            if !arms.contains(&arm) {
                arms.push(arm);
            }
        };
        extra(Arm::Replay {
            shift: Shift::Weak,
            share: self.weak_union_share,
        });
        extra(Arm::Replay {
            shift: Shift::Strong,
            share: self.strong_union_share,
        });
        for &peak in &self.peaks {
            extra(Arm::Peak {
                shift: Shift::Weak,
                peak,
            });
        }
        extra(Arm::ConstantMin { shift: Shift::Weak });
        extra(Arm::Union { shift: Shift::Weak });
        extra(Arm::Union {
            shift: Shift::Strong,
        });
        extra(Arm::SameData);
        extra(Arm::Infinite {
            shift: Shift::Weak,
            share: self.weak_union_share,
        });
        arms
    }

    /// The stage-0 schedule shared by every arm that starts from the checkpoint.
    pub fn pretrain_stage(&self) -> StageConfig {
        StageConfig {
            schedule: self.cosine(self.eta_max, self.stage_steps),
            steps: self.stage_steps,
            replay_share: 0.0,
        }
    }

    /// The stages of `arm` as a validated [`RunConfig`]. Stage 0 is the pretraining (for the
    /// union: the only stage, twice as long; for the infinite schedule its own stage 0).
    pub fn run_config(&self, arm: &Arm) -> Result<RunConfig, ConfigError> {
        let s = self.stage_steps;
        let stage = |schedule, replay_share| StageConfig {
            schedule,
            steps: s,
            replay_share,
        };
        let stages = match *arm {
            Arm::Replay { share, .. } => vec![
                self.pretrain_stage(),
                stage(self.cosine(self.eta_max, s), share),
            ],
            Arm::Peak { peak, .. } => {
                vec![self.pretrain_stage(), stage(self.cosine(peak, s), 0.0)]
            }
            Arm::ConstantMin { .. } => vec![
                self.pretrain_stage(),
                stage(Schedule::Constant { lr: self.eta_min }, 0.0),
            ],
            Arm::SameData => vec![
                self.pretrain_stage(),
                stage(self.cosine(self.eta_max, s), 0.0),
            ],
            Arm::Union { .. } => vec![StageConfig {
                schedule: self.cosine(self.eta_max, 2 * s),
                steps: 2 * s,
                replay_share: 0.5,
            }],
            Arm::Infinite { share, .. } => {
                let w = self.warmup_steps(s);
                let c = (self.infinite_cooldown_share * s as f64).round() as usize;
                let n = (self.infinite_anneal_share * s as f64).round() as usize;
                if w + c > s {
                    return Err(ConfigError::WarmupTooLong {
                        warmup: w + c,
                        total: s,
                    });
                }
                vec![
                    stage(
                        Schedule::Infinite {
                            eta_max: self.eta_max,
                            eta_const: self.infinite_eta_const,
                            eta_min: self.eta_min,
                            warmup_steps: w,
                            cooldown_steps: c,
                            constant_steps: s - w - c,
                            anneal_steps: 0,
                        },
                        0.0,
                    ),
                    stage(
                        Schedule::Infinite {
                            eta_max: self.infinite_eta_const,
                            eta_const: self.infinite_eta_const,
                            eta_min: self.eta_min,
                            warmup_steps: 0,
                            cooldown_steps: 0,
                            constant_steps: s - n,
                            anneal_steps: n,
                        },
                        share,
                    ),
                ]
            }
        };
        let run = RunConfig {
            stages,
            reset_optimizer_between_stages: self.reset_optimizer,
        };
        run.validate()?;
        Ok(run)
    }

    /// The learning rate at every global step of `arm` (for the schedule plots).
    pub fn lr_curve(&self, arm: &Arm) -> Result<Vec<f64>, ConfigError> {
        let run = self.run_config(arm)?;
        Ok(run
            .stages
            .iter()
            .flat_map(|st| (0..st.steps).map(move |i| st.schedule.lr(i)))
            .collect())
    }
}

/// The seeded datasets of one seed: D0, both D1s, each with a train and a held-out corpus.
#[derive(Debug, Clone)]
pub struct Datasets {
    /// D0 train / eval.
    pub d0: (Corpus, Corpus),
    /// Weak-shift D1 train / eval.
    pub weak: (Corpus, Corpus),
    /// Strong-shift D1 train / eval.
    pub strong: (Corpus, Corpus),
}

impl Datasets {
    /// Generates the datasets of `seed` (sequences of `context + 1` tokens).
    pub fn generate(cfg: &ExperimentConfig, seed: u64) -> Result<Self, ConfigError> {
        let n = cfg.language_size;
        let base = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let d0 = Language::new(0, n, cfg.fanout, cfg.order, base ^ 1)?;
        let weak = d0.redraw(cfg.weak_redraw_share, base ^ 2)?;
        let strong = Language::new(n, n, cfg.fanout, cfg.order, base ^ 3)?;
        let len = cfg.model.context + 1;
        let pair = |lang: &Language, k: u64| {
            let marker = cfg.domain_markers.then_some((2 * n) as i32 + k as i32 - 1);
            (
                Corpus::generate(lang, cfg.train_sequences, len, base ^ (k << 8), marker),
                Corpus::generate(
                    lang,
                    cfg.eval_sequences,
                    len,
                    base ^ (k << 8) ^ 0xe7a1,
                    marker,
                ),
            )
        };
        Ok(Datasets {
            d0: pair(&d0, 1),
            weak: pair(&weak, 2),
            strong: pair(&strong, 3),
        })
    }

    /// D1's (train, eval) for `shift`.
    pub fn d1(&self, shift: Shift) -> &(Corpus, Corpus) {
        match shift {
            Shift::Weak => &self.weak,
            Shift::Strong => &self.strong,
        }
    }
}

/// One logged evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Global optimizer steps done (0 = before training).
    pub step: usize,
    /// Learning rate of the last step (0 before training).
    pub lr: f64,
    /// Mean training loss over the steps since the previous point (NaN at step 0).
    pub train_loss: f64,
    /// Held-out D0 loss (nats per token).
    pub d0_loss: f64,
    /// Held-out D1 loss (nats per token).
    pub d1_loss: f64,
}

/// What one arm on one seed measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmResult {
    /// The arm.
    pub arm: Arm,
    /// The seed.
    pub seed: u64,
    /// Logged evaluations over both stages (global steps).
    pub curve: Vec<EvalPoint>,
    /// The step where stage 1 starts (`stage_steps`); the union has no stage boundary and
    /// reports its midpoint.
    pub boundary: usize,
    /// D0 / D1 loss at the boundary (the checkpoint before stage 1).
    pub pre: (f64, f64),
    /// D0 / D1 loss at the end.
    pub last: (f64, f64),
    /// Highest D0 loss logged during stage 1.
    pub peak_d0: f64,
    /// Entropy floors of the D0 and D1 eval sets.
    pub floor: (f64, f64),
}

impl ArmResult {
    /// Forgetting: final D0 loss minus D0 loss at the boundary.
    pub fn forgetting(&self) -> f64 {
        self.last.0 - self.pre.0
    }

    /// Adaptation: D1 loss at the boundary minus final D1 loss.
    pub fn adaptation(&self) -> f64 {
        self.pre.1 - self.last.1
    }

    /// Mean of the final D0 and D1 losses (the paper's "average" column).
    pub fn average(&self) -> f64 {
        0.5 * (self.last.0 + self.last.1)
    }
}

/// A training error: bad config, or a loss that stopped being finite.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The loss became NaN or infinite.
    #[error("training diverged: loss {loss} at step {step} of arm {arm}")]
    Diverged {
        /// The arm.
        arm: String,
        /// Global step.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// A checkpoint could not be recorded or loaded.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// A training backend: autodiff over a backend with the fused cross-entropy, whose inner
/// backend has it too (for evaluation).
pub trait TrainBackend: AutodiffBackend + TokenLogprobBackend
where
    Self::InnerBackend: TokenLogprobBackend,
{
}

impl<B> TrainBackend for B
where
    B: AutodiffBackend + TokenLogprobBackend,
    B::InnerBackend: TokenLogprobBackend,
{
}

/// Mean held-out loss of `model` on `corpus`, in batches of `batch` sequences, without autodiff.
pub fn eval_loss<B: TokenLogprobBackend>(
    model: &TinyLm<B>,
    corpus: &Corpus,
    batch: usize,
    device: &B::Device,
) -> f64 {
    let (n, len) = (corpus.n(), corpus.len());
    let mut total = 0.0;
    let mut i = 0;
    while i < n {
        let b = batch.min(n - i);
        let ids = corpus.tokens()[i * len..(i + b) * len].to_vec();
        let seqs = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), device);
        let loss: f64 = lm_loss(model, seqs).into_scalar().elem();
        total += loss * b as f64;
        i += b;
    }
    total / n as f64
}

/// The state carried between the stages of an arm.
struct Trainer<'a, B: TrainBackend>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg: &'a ExperimentConfig,
    device: &'a B::Device,
    d0_eval: &'a Corpus,
    d1_eval: &'a Corpus,
    /// A second D1 evaluated beside `d1_eval` (stage 0 serves both shifts), and its losses.
    d1_alt: Option<&'a Corpus>,
    alt_losses: Vec<f64>,
    /// AdamW and its moments, carried into the next stage unless `reset_optimizer`.
    optim: Option<OptimizerAdaptor<AdamW, TinyLm<B>, B>>,
    curve: Vec<EvalPoint>,
    step: usize,
    arm: String,
}

impl<B: TrainBackend> Trainer<'_, B>
where
    B::InnerBackend: TokenLogprobBackend,
{
    fn eval(&mut self, model: &TinyLm<B>, lr: f64, train_loss: f64) {
        let valid = model.valid();
        let inner = self.device;
        let d0 = eval_loss::<B::InnerBackend>(&valid, self.d0_eval, 64, inner);
        let d1 = eval_loss::<B::InnerBackend>(&valid, self.d1_eval, 64, inner);
        if let Some(alt) = self.d1_alt {
            let v = eval_loss::<B::InnerBackend>(&valid, alt, 64, inner);
            self.alt_losses.push(v);
        }
        self.curve.push(EvalPoint {
            step: self.step,
            lr,
            train_loss,
            d0_loss: d0,
            d1_loss: d1,
        });
    }

    /// Trains one stage: every step draws a batch through the replay mixer (old = `old`, new =
    /// `new`), takes the stage's learning rate and one AdamW step. Evaluates every
    /// `eval_every` steps, and 4× as often over the first quarter of a stage that starts from a
    /// trained model (`dense`), where the re-warming transient is.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        mut model: TinyLm<B>,
        stage: &StageConfig,
        new: &Corpus,
        old: &Corpus,
        mix_seed: u64,
        dense: bool,
        tick: &mut dyn FnMut(),
    ) -> Result<TinyLm<B>, TrainError> {
        let every = self.cfg.eval_every;
        let dense_every = (every / 4).max(1);
        // A new stage resets AdamW's moments (the paper's recipe) unless configured otherwise.
        let mut optim = match self.optim.take() {
            Some(o) if !self.cfg.reset_optimizer => o,
            _ => AdamWConfig::new()
                .with_weight_decay(self.cfg.weight_decay as f32)
                .init::<B, TinyLm<B>>(),
        };
        let mut mixer = ReplayMixer::new(stage.replay_share, mix_seed)?;
        let len = new.len();
        let b = self.cfg.batch;
        let (mut acc, mut count) = (0.0, 0usize);
        for i in 0..stage.steps {
            let picks = mixer.draw_indices(old.n(), new.n(), b)?;
            let mut ids = Vec::with_capacity(b * len);
            for p in picks {
                ids.extend_from_slice(match p {
                    Source::Old(j) => old.seq(j),
                    Source::New(j) => new.seq(j),
                });
            }
            let seqs = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), self.device);
            let loss = lm_loss(&model, seqs);
            let value: f64 = loss.clone().into_scalar().elem();
            self.step += 1;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    arm: self.arm.clone(),
                    step: self.step,
                    loss: value,
                });
            }
            acc += value;
            count += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = stage.schedule.lr(i);
            model = optim.step(lr, model, grads);
            let early = dense && i < stage.steps / 4 && (i + 1).is_multiple_of(dense_every);
            if self.step.is_multiple_of(every) || early || i + 1 == stage.steps {
                self.eval(&model, lr, acc / count as f64);
                (acc, count) = (0.0, 0);
                tick();
            }
        }
        self.optim = Some(optim);
        Ok(model)
    }
}

/// The D0-pretrained checkpoint of one seed, and the curve that led to it.
#[derive(Clone)]
struct Checkpoint {
    bytes: Vec<u8>,
    /// Stage-0 evaluations with the weak-shift D1 in `d1_loss`.
    weak: Vec<EvalPoint>,
    /// The same with the strong-shift D1.
    strong: Vec<EvalPoint>,
}

impl Checkpoint {
    /// The stage-0 curve as `arm` reports it (same data: D1 is D0).
    fn curve(&self, arm: &Arm) -> Vec<EvalPoint> {
        match arm.shift() {
            Some(Shift::Weak) => self.weak.clone(),
            Some(Shift::Strong) => self.strong.clone(),
            None => self
                .weak
                .iter()
                .map(|p| EvalPoint {
                    d1_loss: p.d0_loss,
                    ..*p
                })
                .collect(),
        }
    }
}

/// Stage-0 checkpoints shared by the arms of a process, keyed by seed, backend and config.
fn checkpoints() -> &'static Mutex<HashMap<String, Checkpoint>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Checkpoint>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

type Rec = BinBytesRecorder<FullPrecisionSettings>;

/// A fresh model for `seed`, identical on every backend: burn's initialisers run on `flex`
/// (seeded, under a lock so that concurrent callers cannot interleave with flex's one global
/// seeded RNG; recording the model forces burn's lazy initialisers inside the lock), and the
/// weights are loaded into `B`. Nothing else in a process may draw from flex's RNG.
pub fn init_model<B: Backend>(cfg: &ExperimentConfig, seed: u64, device: &B::Device) -> TinyLm<B> {
    static INIT: Mutex<()> = Mutex::new(());
    // The whole function holds the lock: building the `B` model to load into also draws from
    // flex's RNG when `B` is flex (its values are then replaced by the record).
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let host = Default::default();
    Flex::seed(&host, seed ^ 0x5eed);
    let bytes = Rec::default()
        .record(cfg.model.init::<Flex>(&host).into_record(), ())
        .expect("recording an in-memory model cannot fail");
    let record = Rec::default()
        .load(bytes, device)
        .expect("a record just written loads");
    cfg.model.init::<B>(device).load_record(record)
}

/// Trains `arm` on `seed` (see the module docs) on backend `B`. `tick` is called at every
/// logged evaluation. The stage-0 checkpoint is computed once per process per seed and reused
/// by the arms that start from it (training is deterministic, so a resumed run recomputes the
/// same one).
pub fn run_arm<B: TrainBackend>(
    cfg: &ExperimentConfig,
    arm: &Arm,
    seed: u64,
    device: &B::Device,
    tick: &mut dyn FnMut(),
) -> Result<ArmResult, TrainError>
where
    B::InnerBackend: TokenLogprobBackend,
{
    cfg.validate()?;
    let run = cfg.run_config(arm)?;
    let data = Datasets::generate(cfg, seed)?;
    let (d0_train, d0_eval) = &data.d0;
    let (d1_train, d1_eval) = match arm.shift() {
        Some(shift) => data.d1(shift),
        None => &data.d0,
    };
    let mut t = Trainer::<B> {
        cfg,
        device,
        d0_eval,
        d1_eval,
        d1_alt: None,
        alt_losses: Vec::new(),
        optim: None,
        curve: Vec::new(),
        step: 0,
        arm: arm.name(),
    };
    let s = cfg.stage_steps;
    let mix_seed = |stage: u64| seed.wrapping_mul(1_000_003) ^ (stage << 32);
    let model = init_model::<B>(cfg, seed, device);
    let trained = match arm {
        Arm::Union { .. } => {
            t.eval(&model, 0.0, f64::NAN);
            t.stage(
                model,
                &run.stages[0],
                d1_train,
                d0_train,
                mix_seed(0),
                false,
                tick,
            )?
        }
        // Without the reset, stage 1 continues stage 0's optimizer state, which the shared
        // checkpoint does not hold: such arms train their own stage 0.
        _ if matches!(arm, Arm::Infinite { .. }) || !cfg.reset_optimizer => {
            t.eval(&model, 0.0, f64::NAN);
            let m = t.stage(
                model,
                &run.stages[0],
                d0_train,
                d0_train,
                mix_seed(0),
                false,
                tick,
            )?;
            t.stage(
                m,
                &run.stages[1],
                d1_train,
                d0_train,
                mix_seed(1),
                true,
                tick,
            )?
        }
        _ => {
            let key = format!(
                "{seed}/{}/{}",
                std::any::type_name::<B>(),
                serde_json::to_string(cfg).unwrap_or_default()
            );
            let cached = checkpoints()
                .lock()
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?
                .get(&key)
                .cloned();
            let ck = match cached {
                Some(ck) => ck,
                None => {
                    // Stage 0 on D0 alone, evaluated on both shifts' D1 so that every arm
                    // can reuse it.
                    t.d1_eval = &data.weak.1;
                    t.d1_alt = Some(&data.strong.1);
                    t.eval(&model, 0.0, f64::NAN);
                    let m = t.stage(
                        model,
                        &run.stages[0],
                        d0_train,
                        d0_train,
                        mix_seed(0),
                        false,
                        tick,
                    )?;
                    let bytes = Rec::default()
                        .record(m.into_record(), ())
                        .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
                    let strong = t
                        .curve
                        .iter()
                        .zip(&t.alt_losses)
                        .map(|(p, &d1)| EvalPoint { d1_loss: d1, ..*p })
                        .collect();
                    let ck = Checkpoint {
                        bytes,
                        weak: std::mem::take(&mut t.curve),
                        strong,
                    };
                    checkpoints()
                        .lock()
                        .map_err(|e| TrainError::Checkpoint(e.to_string()))?
                        .insert(key, ck.clone());
                    t.d1_eval = d1_eval;
                    t.d1_alt = None;
                    ck
                }
            };
            t.curve = ck.curve(arm);
            t.step = s;
            let record = Rec::default()
                .load(ck.bytes, device)
                .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
            let pre = init_model::<B>(cfg, seed, device).load_record(record);
            t.stage(
                pre,
                &run.stages[1],
                d1_train,
                d0_train,
                mix_seed(1),
                true,
                tick,
            )?
        }
    };
    drop(trained);
    let curve = t.curve;
    let boundary = s;
    let at = |step: usize| {
        curve
            .iter()
            .find(|p| p.step == step)
            .copied()
            .unwrap_or(curve[curve.len() - 1])
    };
    let b = at(boundary);
    let last = curve[curve.len() - 1];
    let peak_d0 = curve
        .iter()
        .filter(|p| p.step > boundary)
        .map(|p| p.d0_loss)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(ArmResult {
        arm: *arm,
        seed,
        curve,
        boundary,
        pre: (b.d0_loss, b.d1_loss),
        last: (last.d0_loss, last.d1_loss),
        peak_d0,
        floor: (d0_eval.floor, d1_eval.floor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type T = Autodiff<Flex>;

    fn tiny() -> ExperimentConfig {
        ExperimentConfig {
            stage_steps: 40,
            train_sequences: 256,
            eval_sequences: 32,
            eval_every: 10,
            ..ExperimentConfig::for_scale(Scale::Smoke)
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_value_named() {
        let bad = |f: &dyn Fn(&mut ExperimentConfig)| {
            let mut c = ExperimentConfig::for_scale(Scale::Small);
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(&|c| c.replay_shares.push(1.5)).contains("replay share 1.5 is outside [0, 1]"));
        let e = bad(&|c| c.eta_min = 2e-2);
        assert_eq!(e, "η_min 2e-2 is above η_max 1e-2");
        let e = bad(&|c| c.warmup_share = 1.5);
        assert!(e.contains("warmup") && e.contains("300"), "{e}");
        assert!(
            bad(&|c| {
                c.infinite_cooldown_share = 1.0;
                c.infinite_anneal_share = 0.0
            })
            .contains("warmup")
        );
        assert!(bad(&|c| c.train_sequences = 0).contains("dataset would be empty"));
        assert!(bad(&|c| c.model.vocab = 10).contains("vocab 10"));
        assert!(bad(&|c| c.model.n_heads = 3).contains("does not divide"));
        ExperimentConfig::for_scale(Scale::Small)
            .validate()
            .unwrap();
        ExperimentConfig::for_scale(Scale::Smoke)
            .validate()
            .unwrap();
    }

    #[test]
    #[ignore = "timing probe: cargo test --release -p claimbench-continual -- --ignored --nocapture"]
    fn step_time() {
        let mut cfg = ExperimentConfig::for_scale(Scale::Small);
        if let Ok(v) = std::env::var("PROBE") {
            let patch: serde_json::Value = serde_json::from_str(&v).unwrap();
            let mut base = serde_json::to_value(&cfg).unwrap();
            for (k, v) in patch.as_object().unwrap() {
                base[k] = v.clone();
            }
            cfg = serde_json::from_value(base).unwrap();
        }
        for arm in [
            Arm::Replay {
                shift: Shift::Weak,
                share: 0.0,
            },
            Arm::Replay {
                shift: Shift::Weak,
                share: 0.05,
            },
            Arm::Replay {
                shift: Shift::Weak,
                share: 0.5,
            },
            Arm::Union { shift: Shift::Weak },
            Arm::Replay {
                shift: Shift::Strong,
                share: 0.0,
            },
            Arm::Replay {
                shift: Shift::Strong,
                share: 0.25,
            },
            Arm::Union {
                shift: Shift::Strong,
            },
            Arm::SameData,
            Arm::ConstantMin { shift: Shift::Weak },
            Arm::Peak {
                shift: Shift::Weak,
                peak: cfg.eta_max * 2.0,
            },
            Arm::Infinite {
                shift: Shift::Weak,
                share: 0.05,
            },
        ] {
            let t = std::time::Instant::now();
            let r = run_arm::<T>(&cfg, &arm, 1, &Default::default(), &mut || {}).unwrap();
            eprintln!(
                "{:>8} {:>14} {:>6.2?} pre {:.3}/{:.3} last {:.3}/{:.3} avg {:.3} forget {:.3} adapt {:.3} peak-rise {:.3} floor {:.3}/{:.3}",
                arm.experiment(),
                arm.name(),
                t.elapsed(),
                r.pre.0,
                r.pre.1,
                r.last.0,
                r.last.1,
                r.average(),
                r.forgetting(),
                r.adaptation(),
                r.peak_d0 - r.pre.0,
                r.floor.0,
                r.floor.1
            );
        }
    }

    #[test]
    fn the_optimizer_reset_between_stages_changes_stage_1_only() {
        let reset = tiny();
        let carry = ExperimentConfig {
            reset_optimizer: false,
            ..tiny()
        };
        let arm = Arm::Replay {
            shift: Shift::Weak,
            share: 0.05,
        };
        let dev = Default::default();
        let a = run_arm::<T>(&reset, &arm, 3, &dev, &mut || {}).unwrap();
        let b = run_arm::<T>(&carry, &arm, 3, &dev, &mut || {}).unwrap();
        // Stage 0 is the same; stage 1 starts from other AdamW moments.
        assert_eq!(a.pre, b.pre, "{:?} vs {:?}", a.curve, b.curve);
        let after = |r: &ArmResult| {
            r.curve
                .iter()
                .find(|p| p.step > r.boundary)
                .copied()
                .unwrap()
        };
        assert_ne!(after(&a).d1_loss, after(&b).d1_loss);
    }

    #[test]
    fn the_parameter_count_matches_the_model() {
        for scale in [Scale::Smoke, Scale::Small] {
            let cfg = ExperimentConfig::for_scale(scale);
            // Through `init_model`: an unlocked init would draw from flex's global seeded RNG
            // while another test initialises under the lock.
            let m = init_model::<Flex>(&cfg, 0, &Default::default());
            assert_eq!(m.num_params(), cfg.model.parameters());
        }
    }

    #[test]
    fn arms_are_distinct_and_named() {
        let cfg = ExperimentConfig::for_scale(Scale::Small);
        let names: Vec<String> = cfg
            .arms()
            .iter()
            .map(|a| format!("{}/{}", a.experiment(), a.name()))
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(
            names.contains(&"strong/replay-0.5pct".to_string()),
            "{names:?}"
        );
        // 7 + 7 replay arms, 2 peaks, constant, 2 unions, same data, infinite.
        assert_eq!(names.len(), 21);
        // Equal total steps for every arm (the union at equal tokens).
        for arm in cfg.arms() {
            assert_eq!(
                cfg.lr_curve(&arm).unwrap().len(),
                2 * cfg.stage_steps,
                "{arm:?}"
            );
        }
    }

    #[test]
    fn an_arm_learns_forgets_and_reuses_the_checkpoint_deterministically() {
        let cfg = tiny();
        let dev = Default::default();
        let t0 = std::time::Instant::now();
        let arm = Arm::Replay {
            shift: Shift::Strong,
            share: 0.0,
        };
        let a = run_arm::<T>(&cfg, &arm, 7, &dev, &mut || {}).unwrap();
        let first = t0.elapsed();
        let ln_v = (cfg.model.vocab as f64).ln();
        let start = a.curve[0];
        assert!((start.d0_loss - ln_v).abs() < 0.5, "{start:?}");
        // Stage 0 learns D0; stage 1 learns D1 and forgets D0.
        assert!(a.pre.0 < start.d0_loss - 0.3, "{a:?}");
        assert!(a.adaptation() > 0.3, "{a:?}");
        assert!(a.forgetting() > 0.0, "{a:?}");
        assert!(
            a.pre.0 > a.floor.0 && a.last.1 > a.floor.1,
            "below the entropy floor: {a:?}"
        );
        assert_eq!(a.curve.last().unwrap().step, 2 * cfg.stage_steps);
        // A second arm of the same seed reuses stage 0 (same boundary D0 loss, faster).
        let t1 = std::time::Instant::now();
        let b = run_arm::<T>(
            &cfg,
            &Arm::Replay {
                shift: Shift::Strong,
                share: 0.5,
            },
            7,
            &dev,
            &mut || {},
        )
        .unwrap();
        let second = t1.elapsed();
        eprintln!("arm: {first:?} with stage 0, {second:?} reusing it");
        assert_eq!(a.pre, b.pre);
        assert_eq!(
            format!("{:?}", &a.curve[..5]),
            format!("{:?}", &b.curve[..5])
        );
        // Half of every batch from D0 forgets less.
        assert!(b.forgetting() < a.forgetting(), "{a:?} {b:?}");
        // Recomputing stage 0 from scratch gives the same checkpoint (what --resume relies on).
        checkpoints().lock().unwrap().clear();
        let again = run_arm::<T>(&cfg, &arm, 7, &dev, &mut || {}).unwrap();
        assert_eq!(format!("{again:?}"), format!("{a:?}"));
    }
}
