//! Everything that decides the experiment's numbers ([`ExperimentConfig`]): presets per scale, validation, the arms and their schedules.

use super::*;

/// Everything that decides the experiment's numbers. Serialized as the `continual` section of a
/// `claimbench run --config` file; missing fields take the scale's defaults
/// ([`ExperimentConfig::for_scale`]).
///
/// Limits ([`crate::limits`], checked by [`ExperimentConfig::check_limits`]): the corpus's
/// ([`CorpusConfig::validate`]), `train_sequences` and `eval_sequences` ≤ 1 000 000, `batch` ≤ 4096,
/// `stage_steps` and `eval_every` ≤ 1 000 000, `replay_shares` and `peaks` ≤ 64 entries,
/// `weight_decay` finite in `[0, 1000]`, and the model's ([`ModelConfig`]). Peak memory of one
/// arm: [`ExperimentConfig::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The text: domains, byte budget per domain and the BPE's vocabulary
    /// ([`claimbench_corpus`]); it must list `d0`, `weak` and `strong`.
    pub corpus: CorpusConfig,
    /// D0's domain (English: the paper's Pile).
    pub d0: String,
    /// The weak shift's D1 (other English text: the paper's SlimPajama).
    pub weak: String,
    /// The strong shift's D1 (German: the paper's German Common Crawl).
    pub strong: String,
    /// Training windows per dataset (D0, D1): `context + 1` tokens each, at seeded offsets of the
    /// domain's training split (a finite dataset, sampled with replacement by the mixer).
    pub train_sequences: usize,
    /// Held-out windows per dataset for the logged losses, evenly spaced over the domain's
    /// validation split (the same for every seed).
    pub eval_sequences: usize,
    /// The model (its `vocab` must be the corpus's `vocab_size`).
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

/// `cfg` with every setting that stage 0 does not read (the stage-1 arms' shares, peaks and
/// schedules) set to the `small` preset's: two configs whose projections are equal train the same
/// stage-0 checkpoint. What a paper reusing continual's checkpoint compares.
pub fn stage0_settings(cfg: &ExperimentConfig) -> ExperimentConfig {
    let p = ExperimentConfig::for_scale(Scale::Small);
    ExperimentConfig {
        replay_shares: p.replay_shares,
        peaks: p.peaks,
        weak_union_share: p.weak_union_share,
        strong_union_share: p.strong_union_share,
        infinite_eta_const: p.infinite_eta_const,
        infinite_cooldown_share: p.infinite_cooldown_share,
        infinite_anneal_share: p.infinite_anneal_share,
        reset_optimizer: p.reset_optimizer,
        ..cfg.clone()
    }
}

impl ExperimentConfig {
    /// Defaults for `smoke`, `small` or `full` .
    pub fn for_scale(scale: Scale) -> Self {
        // (steps per stage, training windows, eval interval, bytes per domain, vocabulary,
        // context, width, layers)
        let (stage_steps, train_sequences, eval_every, bytes, vocab, context, d, layers) =
            match scale {
                Scale::Smoke => (60, 512, 20, 300_000, 512, 32, 32, 1),
                Scale::Small => (200, 4096, 20, 2_000_000, 512, 32, 64, 1),
                Scale::Full => (1000, 16_384, 50, 8_000_000, 2048, 128, 128, 4),
            };
        ExperimentConfig {
            corpus: CorpusConfig {
                domains: vec!["en-fortunes".into(), "en-man".into(), "de-fortunes".into()],
                max_bytes_per_domain: bytes,
                vocab_size: vocab,
            },
            d0: "en-fortunes".into(),
            weak: "en-man".into(),
            strong: "de-fortunes".into(),
            train_sequences,
            eval_sequences: 64,
            model: ModelConfig {
                vocab,
                context,
                d_model: d,
                n_heads: 4,
                n_layers: layers,
                d_ff: 4 * d,
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
        self.corpus
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (name, id) in [
            ("d0", &self.d0),
            ("weak", &self.weak),
            ("strong", &self.strong),
        ] {
            if !self.corpus.domains.contains(id) {
                return Err(ConfigError::Invalid(format!(
                    "{name} {id:?} is not one of corpus.domains ({})",
                    self.corpus.domains.join(", ")
                )));
            }
        }
        if self.d0 == self.weak || self.d0 == self.strong || self.weak == self.strong {
            return Err(ConfigError::Invalid(format!(
                "d0 {}, weak {} and strong {} must be three different domains",
                self.d0, self.weak, self.strong
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
                "model vocab {} does not match corpus.vocab_size {}",
                self.model.vocab,
                self.vocab()
            )));
        }
        for (name, share) in [
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

    /// The tokens the data uses: the corpus's BPE vocabulary.
    pub fn vocab(&self) -> usize {
        self.corpus.vocab_size
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
