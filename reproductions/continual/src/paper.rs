//! The continual pre-training reproduction as a [`Paper`]: per seed, one stage-0 unit (the
//! D0-pretrained checkpoint, stored as artifacts) and one unit per arm (those that start from
//! the checkpoint depend on it), their metrics, the claims' inputs, and the report's sections.

use burn::backend::{Autodiff, Flex, Wgpu};
use claimbench_kernels::burn_ops::TokenLogprobBackend;
use claimbench_paper::report::{Figure, Section, Series, Table};
use claimbench_paper::{
    Artifact, Exec, Judged, MetricRow, Outcome, Paper, PaperInfo, RunContext, RunsOn, Scale,
    UnitRecord, UnitSpec, fmt_pm, mean_curve, mean_pm,
};

use crate::claims::{STRONG_TABLE, Summary, WEAK_TABLE};
use crate::experiment::TrainBackend;
use crate::{
    Arm, ArmResult, Checkpoint, ExperimentConfig, Shift, pretrain, run_arm_from, uses_checkpoint,
};

/// The continual pre-training paper (arXiv 2403.08763).
pub struct Continual;

impl Paper for Continual {
    type Config = ExperimentConfig;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: PAPER,
            title: "Simple and Scalable Strategies to Continually Pre-train Large Language Models",
            arxiv: "2403.08763",
            kernels: &["kernels/token-logprob", "kernels/cross-entropy"],
        }
    }

    fn config(&self, scale: Scale) -> ExperimentConfig {
        ExperimentConfig::for_scale(scale)
    }

    fn validate(&self, cfg: &ExperimentConfig, _seeds: Option<&[u64]>) -> Result<(), String> {
        cfg.validate().map_err(|e| e.to_string())
    }

    fn estimated_bytes(&self, cfg: &ExperimentConfig) -> u64 {
        cfg.estimated_bytes()
    }

    fn units(&self, cfg: &ExperimentConfig, seeds: &[u64]) -> Vec<UnitSpec> {
        units(cfg, seeds)
    }

    fn run_unit(&self, cfg: &ExperimentConfig, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        match ctx.exec {
            Exec::Flex => run_unit::<Autodiff<Flex>>(cfg, unit, &Default::default(), ctx),
            Exec::Wgpu => run_unit::<Autodiff<Wgpu>>(cfg, unit, &Default::default(), ctx),
            #[cfg(feature = "cuda")]
            Exec::Cuda => {
                run_unit::<Autodiff<burn::backend::Cuda>>(cfg, unit, &Default::default(), ctx)
            }
            #[cfg(not(feature = "cuda"))]
            Exec::Cuda => Outcome::error("built without the cuda feature".into()),
        }
    }

    fn claims(&self, cfg: &ExperimentConfig, records: &[UnitRecord], scale: &str) -> Judged {
        let mut out = Judged::default();
        let summaries = summaries(records);
        if !summaries.is_empty() {
            match crate::claims::evaluate(cfg, &summaries, scale) {
                Ok(claims) => out.claims = claims,
                Err(e) => out
                    .warnings
                    .push(format!("continual claims not evaluated: {e}")),
            }
        }
        out
    }

    fn claim_specs(&self, cfg: &ExperimentConfig) -> Vec<claimbench_claims::ClaimSpec> {
        crate::claims::specs(cfg)
    }

    fn sections(&self, cfg: &ExperimentConfig, records: &[UnitRecord]) -> Vec<Section> {
        report_sections(cfg, records)
    }

    fn data_cards(
        &self,
        cfg: &ExperimentConfig,
        env: &claimbench_paper::DataEnv,
    ) -> Result<Vec<claimbench_paper::DataCard>, String> {
        let corpus = claimbench_corpus::load(&cfg.corpus, env).map_err(|e| e.to_string())?;
        Ok(corpus.cards(&[PAPER]))
    }
}

/// The paper id.
pub const PAPER: &str = "continual";

/// The unit id of `arm` on `seed`: `continual/<experiment>/<arm>/seed-<s>`.
pub fn unit_id(arm: &Arm, seed: u64) -> String {
    format!("{PAPER}/{}/{}/seed-{seed}", arm.experiment(), arm.name())
}

/// The experiment name of the stage-0 units.
pub const STAGE0: &str = "stage0";

/// The artifact of a stage-0 unit holding the settings it was trained with (JSON of
/// [`ExperimentConfig`]): another paper reusing the checkpoint (DoRA on real text) checks them
/// against its own copy before loading the weights.
pub const STAGE0_SETTINGS: &str = "settings.json";

/// What a stage-0 unit stores: the checkpoint's artifacts and the settings it was trained
/// with ([`STAGE0_SETTINGS`]).
pub fn stage0_artifacts(ck: &Checkpoint, cfg: &ExperimentConfig) -> Vec<Artifact> {
    let mut out: Vec<Artifact> = ck
        .to_artifacts()
        .into_iter()
        .map(|(name, bytes)| Artifact {
            name: name.into(),
            bytes,
        })
        .collect();
    out.push(Artifact {
        name: STAGE0_SETTINGS.into(),
        bytes: serde_json::to_vec(cfg).expect("settings serialise"),
    });
    out
}

/// The unit id of `seed`'s stage-0 checkpoint: `continual/stage0/seed-<s>`.
pub fn stage0_id(seed: u64) -> String {
    format!("{PAPER}/{STAGE0}/seed-{seed}")
}

/// Every unit, seed-major (a run interrupted after a few seeds has whole seeds): per seed, the
/// stage-0 checkpoint (when an arm starts from it), then the arms, those that start from the
/// checkpoint depending on its unit.
pub fn units(cfg: &ExperimentConfig, seeds: &[u64]) -> Vec<UnitSpec> {
    let mut out = Vec::new();
    let shared = cfg.arms().iter().any(|a| uses_checkpoint(cfg, a));
    for &seed in seeds {
        let unit = |id: String, experiment: &str, arm: String, task, depends_on| UnitSpec {
            id,
            paper: PAPER.into(),
            experiment: experiment.into(),
            arm,
            seed: Some(seed),
            task,
            runs_on: RunsOn::Train,
            bench: false,
            depends_on,
        };
        if shared {
            out.push(unit(
                stage0_id(seed),
                STAGE0,
                "d0".into(),
                "stage0",
                Vec::new(),
            ));
        }
        for arm in cfg.arms() {
            let deps = match uses_checkpoint(cfg, &arm) {
                true => vec![stage0_id(seed)],
                false => Vec::new(),
            };
            out.push(unit(
                unit_id(&arm, seed),
                arm.experiment(),
                arm.name(),
                "arm",
                deps,
            ));
        }
    }
    out
}

/// The [`Arm`] a unit names.
pub fn arm_of(cfg: &ExperimentConfig, unit: &UnitSpec) -> Option<Arm> {
    cfg.arms()
        .into_iter()
        .find(|a| a.experiment() == unit.experiment && a.name() == unit.arm)
}

/// Runs the unit on the autodiff backend `A` (e.g. `Autodiff<Flex>`): a stage-0 unit stores
/// its checkpoint as artifacts (no metrics); an arm unit reads its dependency's checkpoint,
/// trains and turns the result into metrics.
fn run_unit<A: TrainBackend>(
    cfg: &ExperimentConfig,
    unit: &UnitSpec,
    device: &A::Device,
    ctx: &mut RunContext,
) -> Outcome
where
    A::InnerBackend: TokenLogprobBackend,
{
    let seed = unit.seed.unwrap_or(0);
    if unit.task == "stage0" {
        return match pretrain::<A>(cfg, seed, ctx.data, device, &mut *ctx.tick) {
            Err(e) => Outcome::error(e.to_string()),
            Ok(ck) => {
                let artifacts = stage0_artifacts(&ck, cfg);
                let size: usize = artifacts.iter().map(|a| a.bytes.len()).sum();
                Outcome {
                    artifacts,
                    ..Outcome::passed(
                        format!("stage-0 checkpoint of seed {seed} ({size} bytes)"),
                        Vec::new(),
                    )
                }
            }
        };
    }
    let Some(arm) = arm_of(cfg, unit) else {
        return Outcome::error(format!(
            "unit {}: no arm {}/{} in this configuration",
            unit.id, unit.experiment, unit.arm
        ));
    };
    let checkpoint = if uses_checkpoint(cfg, &arm) {
        let stage0 = stage0_id(seed);
        let read = |name: &str| ctx.artifact(&stage0, name);
        match read(Checkpoint::MODEL).and_then(|model| {
            let curves = read(Checkpoint::CURVES)?;
            Checkpoint::from_artifacts(model, &curves).map_err(|e| e.to_string())
        }) {
            Ok(ck) => Some(ck),
            Err(e) => return Outcome::error(format!("stage-0 checkpoint: {e}")),
        }
    } else {
        None
    };
    match run_arm_from::<A>(
        cfg,
        &arm,
        seed,
        checkpoint.as_ref(),
        ctx.data,
        device,
        &mut *ctx.tick,
    ) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(r) => Outcome::passed(
            format!(
                "D0 {:.3} → {:.3}, D1 {:.3} → {:.3} nats over stage 1",
                r.pre.0, r.last.0, r.pre.1, r.last.1
            ),
            metrics(cfg, &r),
        ),
    }
}

/// The metrics of one arm: the logged curve (`d0_loss`, `d1_loss`, `lr`, `train_loss` per
/// step) and the summary (`pre_*`, `last_*`, `peak_d0`, forgetting, adaptation,
/// average). The can-fail tests (`claims::can_fail`) build their records with it too.
pub(crate) fn metrics(cfg: &ExperimentConfig, r: &ArmResult) -> Vec<MetricRow> {
    let shape = format!("batch{}x{}", cfg.batch, cfg.model.context + 1);
    let mut m = Vec::new();
    for p in &r.curve {
        let step = Some(p.step as i64);
        m.push(MetricRow::full(
            "f32", &shape, step, "d0_loss", p.d0_loss, "nats",
        ));
        m.push(MetricRow::full(
            "f32", &shape, step, "d1_loss", p.d1_loss, "nats",
        ));
        m.push(MetricRow::full("f32", &shape, step, "lr", p.lr, "lr"));
        if p.train_loss.is_finite() {
            m.push(MetricRow::full(
                "f32",
                &shape,
                step,
                "train_loss",
                p.train_loss,
                "nats",
            ));
        }
    }
    for (name, value) in [
        ("pre_d0", r.pre.0),
        ("pre_d1", r.pre.1),
        ("last_d0", r.last.0),
        ("last_d1", r.last.1),
        ("peak_d0", r.peak_d0),
        ("forgetting", r.forgetting()),
        ("adaptation", r.adaptation()),
        ("avg_loss", r.average()),
    ] {
        m.push(MetricRow::full("f32", &shape, None, name, value, "nats"));
    }
    m
}

/// The claims' per-seed inputs from the run's passed continual units.
fn summaries(records: &[UnitRecord]) -> Vec<Summary> {
    records
        .iter()
        .filter(|u| u.paper == PAPER && u.passed())
        .filter_map(|u| {
            Some(Summary {
                arm: u.arm.clone(),
                experiment: u.experiment.clone(),
                seed: u.seed?,
                pre_d0: u.scalar("pre_d0")?,
                pre_d1: u.scalar("pre_d1")?,
                last_d0: u.scalar("last_d0")?,
                last_d1: u.scalar("last_d1")?,
                peak_d0: u.scalar("peak_d0")?,
            })
        })
        .collect()
}

/// Mean and half-width of the 95% interval over seeds (`None` with no values; half-width NaN
/// with one).
fn fmt_paper(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2}"))
}

/// The units of `experiment`/`arm`.
fn arm_units<'a>(units: &'a [UnitRecord], experiment: &str, arm: &str) -> Vec<&'a UnitRecord> {
    units
        .iter()
        .filter(|u| u.paper == PAPER && u.passed() && u.experiment == experiment && u.arm == arm)
        .collect()
}

fn replay_table(cfg: &ExperimentConfig, units: &[UnitRecord], shift: Shift) -> Table {
    let paper = match shift {
        Shift::Weak => WEAK_TABLE,
        Shift::Strong => STRONG_TABLE,
    };
    let mut rows = Vec::new();
    let mut arms: Vec<(String, Arm, Option<f64>)> = cfg
        .replay_shares
        .iter()
        .map(|&share| {
            (
                format!("{}%", (share * 1000.0).round() / 10.0),
                Arm::Replay { shift, share },
                Some(share),
            )
        })
        .collect();
    arms.push(("union (from scratch)".into(), Arm::Union { shift }, None));
    for (label, arm, share) in arms {
        let us = arm_units(units, shift.name(), &arm.name());
        let col =
            |name: &str| mean_pm(&us.iter().filter_map(|u| u.scalar(name)).collect::<Vec<_>>());
        let p = paper.iter().find(|r| match (share, r.share) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-12,
            (None, None) => true,
            _ => false,
        });
        rows.push(vec![
            label,
            fmt_paper(p.and_then(|r| r.old)),
            fmt_paper(p.and_then(|r| r.new)),
            fmt_paper(p.and_then(|r| r.average)),
            fmt_pm(col("last_d0")),
            fmt_pm(col("last_d1")),
            fmt_pm(col("avg_loss")),
            us.len().to_string(),
        ]);
    }
    Table {
        header: [
            "replay",
            "paper old (Pile)",
            "paper new",
            "paper avg",
            "ours D0",
            "ours D1",
            "ours avg",
            "seeds",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    }
}

/// How far each shift is from D0: the stage-0 model's loss on D1 minus its loss on held-out D0
/// (at the stage boundary of the 0%-replay arms), per seed, mean ± 95% CI.
fn shift_sizes(cfg: &ExperimentConfig, units: &[UnitRecord]) -> Section {
    let mut rows = Vec::new();
    for (shift, domain) in [(Shift::Weak, &cfg.weak), (Shift::Strong, &cfg.strong)] {
        let us = arm_units(
            units,
            shift.name(),
            &Arm::Replay { shift, share: 0.0 }.name(),
        );
        let gaps: Vec<f64> = us
            .iter()
            .filter_map(|u| Some(u.scalar("pre_d1")? - u.scalar("pre_d0")?))
            .collect();
        let col =
            |name: &str| mean_pm(&us.iter().filter_map(|u| u.scalar(name)).collect::<Vec<_>>());
        rows.push(vec![
            format!("{} ({} → {domain})", shift.name(), cfg.d0),
            fmt_pm(col("pre_d0")),
            fmt_pm(col("pre_d1")),
            fmt_pm(mean_pm(&gaps)),
            us.len().to_string(),
        ]);
    }
    Section {
        title: "Shift sizes".into(),
        note: format!(
            "The D0 model (stage 0 on {}) evaluated on each shift's held-out text: the gap is its \
             loss on D1 minus its loss on held-out D0. The rule set before the run \
             (continual/{}) requires the strong shift's gap to be at least twice the weak one's.",
            cfg.d0,
            crate::claims::SHIFT_ID
        ),
        table: Some(Table {
            header: ["shift", "D0 loss", "D1 loss", "gap (nats)", "seeds"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        }),
        figures: Vec::new(),
        caption: String::new(),
    }
}

/// The continual paper page's sections: the paper's replay tables beside ours, the forgetting
/// and adaptation curves per arm, and the learning-rate schedules.
fn report_sections(cfg: &ExperimentConfig, units: &[UnitRecord]) -> Vec<Section> {
    let mut out = Vec::new();
    if !units.iter().any(|u| u.paper == PAPER) {
        return out;
    }
    let note = format!(
        "Scaled-down proxy: a {}-layer, d = {} decoder ({} parameters) on real text: D0 {}, weak shift {}, strong shift {} \
         (the data cards above), one byte-level BPE of {} tokens; {} steps per stage of {} sequences × {} tokens; held-out losses in nats per token, mean ± 95% CI over seeds. \
         The paper's numbers are the 405M model's (Table 2; the strong shift reports only the Pile loss).",
        cfg.model.n_layers,
        cfg.model.d_model,
        cfg.model.parameters(),
        cfg.d0,
        cfg.weak,
        cfg.strong,
        cfg.corpus.vocab_size,
        cfg.stage_steps,
        cfg.batch,
        cfg.model.context + 1
    );
    out.push(shift_sizes(cfg, units));
    for shift in [Shift::Weak, Shift::Strong] {
        let curves = |metric: &str| -> Vec<Series> {
            let mut arms: Vec<Arm> = cfg
                .replay_shares
                .iter()
                .map(|&share| Arm::Replay { shift, share })
                .collect();
            arms.push(Arm::Union { shift });
            arms.iter()
                .map(|a| Series {
                    label: a.name(),
                    points: mean_curve(&arm_units(units, shift.name(), &a.name()), metric),
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
        let (old, new) = (curves("d0_loss"), curves("d1_loss"));
        let mut figures = Vec::new();
        if !old.is_empty() {
            figures.push(Figure::xy(
                &format!("{} shift: old-domain (D0) loss", shift.name()),
                "step",
                "D0 loss (nats)",
                &old,
                true,
            ));
            figures.push(Figure::xy(
                &format!("{} shift: new-domain (D1) loss", shift.name()),
                "step",
                "D1 loss (nats)",
                &new,
                true,
            ));
        }
        out.push(Section {
            title: format!("Replay share, {} shift: the paper's table beside ours", shift.name()),
            note: note.clone(),
            table: Some(replay_table(cfg, units, shift)),
            figures,
            caption: format!(
                "Forgetting (D0) and adaptation (D1) over steps, mean over seeds; stage 1 starts at step {}. \
                 The union trains from scratch on both datasets for the same total steps.",
                cfg.stage_steps
            ),
        });
    }
    // The learning-rate arms.
    let shift = Shift::Weak;
    let mut lr_arms: Vec<Arm> = vec![Arm::ConstantMin { shift }];
    lr_arms.push(Arm::Replay { shift, share: 0.0 });
    lr_arms.extend(cfg.peaks.iter().map(|&peak| Arm::Peak { shift, peak }));
    let lr_curves = |metric: &str| -> Vec<Series> {
        lr_arms
            .iter()
            .map(|a| Series {
                label: a.name(),
                points: mean_curve(&arm_units(units, shift.name(), &a.name()), metric),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let mut figures = Vec::new();
    let (old, new) = (lr_curves("d0_loss"), lr_curves("d1_loss"));
    if !old.is_empty() {
        figures.push(Figure::xy(
            "stage-1 peak LR: D0 loss",
            "step",
            "D0 loss (nats)",
            &old,
            true,
        ));
        figures.push(Figure::xy(
            "stage-1 peak LR: D1 loss",
            "step",
            "D1 loss (nats)",
            &new,
            true,
        ));
    }
    let same = arm_units(units, "same-data", &Arm::SameData.name());
    let shifted = arm_units(units, "weak", &Arm::Replay { shift, share: 0.0 }.name());
    let rise: Vec<Series> = [
        ("same data (D0 → D0)", &same),
        ("weak shift (D0 → D1)", &shifted),
    ]
    .into_iter()
    .map(|(label, us)| Series {
        label: label.into(),
        points: mean_curve(us, "d0_loss"),
    })
    .filter(|s| !s.points.is_empty())
    .collect();
    if !rise.is_empty() {
        figures.push(Figure::xy(
            "re-warming: D0 loss on the same data vs under a shift",
            "step",
            "D0 loss (nats)",
            &rise,
            true,
        ));
    }
    out.push(Section {
        title: "Learning-rate re-warming: peak η_max, constant η_min, same data".into(),
        note: "Weak shift, no replay. Constant η_min is stage 1 without re-warming.".into(),
        table: None,
        figures,
        caption: "Mean over seeds; stage 1 starts where the curves part.".into(),
    });
    // The schedules themselves, from the configuration (not measured).
    let mut sched_arms = lr_arms.clone();
    sched_arms.push(Arm::Union { shift });
    sched_arms.push(Arm::Infinite {
        shift,
        share: cfg.weak_union_share,
    });
    let series: Vec<Series> = sched_arms
        .iter()
        .filter_map(|a| {
            let lr = cfg.lr_curve(a).ok()?;
            Some(Series {
                label: a.name(),
                points: lr.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect(),
            })
        })
        .collect();
    let inf = Arm::Infinite {
        shift,
        share: cfg.weak_union_share,
    };
    let cos = Arm::Replay {
        shift,
        share: cfg.weak_union_share,
    };
    let cmp: Vec<Series> = [inf, cos]
        .iter()
        .map(|a| Series {
            label: format!(
                "{} ({})",
                a.name(),
                if *a == inf {
                    "infinite"
                } else {
                    "repeated cosine"
                }
            ),
            points: mean_curve(&arm_units(units, "weak", &a.name()), "d1_loss"),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let mut figures = vec![Figure::xy(
        "learning-rate schedules",
        "step",
        "learning rate",
        &series,
        true,
    )];
    if !cmp.is_empty() {
        figures.push(Figure::xy(
            "infinite schedule vs repeated cosine: D1 loss",
            "step",
            "D1 loss (nats)",
            &cmp,
            true,
        ));
    }
    out.push(Section {
        title: "Schedules: repeated cosine, constant, infinite".into(),
        note: format!(
            "Cosine: linear warmup ({}% of a stage) then cosine η_max → η_min, restarted at stage 1 (re-warm + re-decay). \
             Infinite (Sec. 7): warmup → cosine cooldown to η_const = {} → constant, and a final exponential anneal to η_min \
             only at the end of stage 1, so stage 0 never needed the total length.",
            cfg.warmup_share * 100.0,
            cfg.infinite_eta_const
        ),
        table: None,
        figures,
        caption: "The schedules are the configured ones (claimbench_continual::Schedule), one point per optimizer step.".into(),
    });
    out
}
