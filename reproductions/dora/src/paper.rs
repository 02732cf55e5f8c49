//! The DoRA reproduction as a [`Paper`]: the learning-rate sweep on the tuning seeds (one unit),
//! all four experiments per verdict seed (one unit each, reading the sweep's stored record), the
//! claims' inputs and the paper page's sections.

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::DoraBackend;
use claimbench_paper::report::{Bar, Figure, Section, Series, Table};
use claimbench_paper::{
    Exec, Judged, Outcome, Paper, PaperInfo, RunContext, RunsOn, Scale, UnitRecord, UnitSpec,
    fmt_pm, mean_over_runs, mean_pm,
};

use crate::config::DoraConfig;
use crate::experiments::{run_seed, tune};
use crate::layer::Method;
use crate::measure::{Experiment, SeedMeasurements, Tuning};

/// The paper id.
pub const PAPER: &str = "dora";
/// The learning-rate sweep's unit.
pub const TUNE_UNIT: &str = "dora/tune";
/// The experiment name of the per-seed units.
pub const SEEDS: &str = "experiments";

/// The DoRA paper (arXiv 2402.09353).
pub struct Dora;

impl Paper for Dora {
    type Config = DoraConfig;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: PAPER,
            title: "DoRA: Weight-Decomposed Low-Rank Adaptation",
            arxiv: "2402.09353",
            kernels: &["kernels/dora-linear"],
        }
    }

    fn config(&self, scale: Scale) -> DoraConfig {
        DoraConfig::for_scale(scale)
    }

    fn validate(&self, cfg: &DoraConfig, seeds: Option<&[u64]>) -> Result<(), String> {
        cfg.validate().map_err(|e| e.to_string())?;
        match seeds {
            Some(s) => cfg.validate_with_seeds(s).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn estimated_bytes(&self, cfg: &DoraConfig) -> u64 {
        cfg.estimated_bytes()
    }

    fn units(&self, cfg: &DoraConfig, seeds: &[u64]) -> Vec<UnitSpec> {
        let mut out = units(seeds);
        out.extend(crate::text::units::units(&cfg.text, seeds));
        out
    }

    fn run_unit(&self, cfg: &DoraConfig, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        if unit.task.starts_with("text-") {
            let text = &cfg.text;
            return match ctx.exec {
                Exec::Flex => crate::text::units::run_unit::<Autodiff<Flex>>(
                    text,
                    unit,
                    ctx,
                    &Default::default(),
                ),
                Exec::Wgpu => crate::text::units::run_unit::<Autodiff<Wgpu>>(
                    text,
                    unit,
                    ctx,
                    &Default::default(),
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda => crate::text::units::run_unit::<Autodiff<burn::backend::Cuda>>(
                    text,
                    unit,
                    ctx,
                    &Default::default(),
                ),
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
        }
        let tune = unit.task == "tune";
        let tuning = if tune {
            None
        } else {
            match stored_tuning(ctx) {
                Ok(t) => Some(t),
                Err(e) => return Outcome::error(e),
            }
        };
        match (ctx.exec, tuning) {
            (Exec::Flex, None) => run_tune::<Autodiff<Flex>>(cfg, &Default::default()),
            (Exec::Flex, Some(t)) => {
                run_seed_unit::<Autodiff<Flex>>(cfg, &t, unit, &Default::default())
            }
            (Exec::Wgpu, None) => run_tune::<Autodiff<Wgpu>>(cfg, &Default::default()),
            (Exec::Wgpu, Some(t)) => {
                run_seed_unit::<Autodiff<Wgpu>>(cfg, &t, unit, &Default::default())
            }
            #[cfg(feature = "cuda")]
            (Exec::Cuda, None) => {
                run_tune::<Autodiff<burn::backend::Cuda>>(cfg, &Default::default())
            }
            #[cfg(feature = "cuda")]
            (Exec::Cuda, Some(t)) => {
                run_seed_unit::<Autodiff<burn::backend::Cuda>>(cfg, &t, unit, &Default::default())
            }
            #[cfg(not(feature = "cuda"))]
            (Exec::Cuda, _) => Outcome::error("built without the cuda feature".into()),
        }
    }

    fn claims(&self, cfg: &DoraConfig, records: &[UnitRecord], scale: &str) -> Judged {
        let mut out = Judged::default();
        let ts = crate::text::report::text_seeds(records, &mut out.warnings);
        if !ts.is_empty() {
            match crate::text::claims::evaluate(&cfg.text, &ts, scale) {
                Ok((claims, missing)) => {
                    out.claims = claims;
                    for id in missing {
                        out.warnings.push(format!(
                            "{id} not evaluated: some seed has no value for it (the memory \
                             needs the claimbench binary's counting allocator)"
                        ));
                    }
                }
                Err(e) => out
                    .warnings
                    .push(format!("dora text claims not evaluated: {e}")),
            }
        }
        let ms = seed_measurements(records, &mut out.warnings);
        if !ms.is_empty() {
            match crate::evaluate(cfg, &ms, scale) {
                Ok(claims) => out.claims.extend(claims),
                Err(e) => out.warnings.push(format!("dora claims not evaluated: {e}")),
            }
        }
        out
    }

    fn claim_specs(&self, cfg: &DoraConfig) -> Vec<claimbench_claims::ClaimSpec> {
        let mut out = crate::text::claims::specs(&cfg.text);
        out.extend(crate::claims::specs(cfg));
        out
    }

    fn sections(&self, cfg: &DoraConfig, records: &[UnitRecord]) -> Vec<Section> {
        let mut out = crate::text::report::sections(&cfg.text, records);
        out.extend(report_sections(cfg, records));
        out
    }

    fn data_cards(
        &self,
        cfg: &DoraConfig,
        env: &claimbench_paper::DataEnv,
    ) -> Result<Vec<claimbench_paper::DataCard>, String> {
        let corpus =
            claimbench_corpus::load(&cfg.text.base.corpus, env).map_err(|e| e.to_string())?;
        Ok(corpus.cards(&[PAPER]))
    }
}
/// The paper's units: the sweep, then one unit per verdict seed.
fn units(seeds: &[u64]) -> Vec<UnitSpec> {
    let mut out = vec![UnitSpec {
        id: TUNE_UNIT.into(),
        paper: PAPER.into(),
        experiment: "tune".into(),
        arm: "lr-sweep".into(),
        seed: None,
        task: "tune",
        runs_on: RunsOn::Train,
        bench: false,
        depends_on: Vec::new(),
    }];
    for &seed in seeds {
        out.push(UnitSpec {
            id: format!("{PAPER}/seed-{seed}"),
            paper: PAPER.into(),
            experiment: SEEDS.into(),
            arm: "ft-lora-dora".into(),
            seed: Some(seed),
            task: "seed",
            runs_on: RunsOn::Train,
            bench: false,
            depends_on: vec![TUNE_UNIT.into()],
        });
    }
    out
}

/// The sweep a seed unit reads: its dependency's stored record ([`TUNE_UNIT`]).
fn stored_tuning(ctx: &RunContext) -> Result<Tuning, String> {
    let r = ctx.input(TUNE_UNIT).ok_or_else(|| {
        format!("needs the learning-rate sweep {TUNE_UNIT}, which has not passed")
    })?;
    Tuning::from_metrics(&r.metrics).map_err(|e| format!("{TUNE_UNIT}: metrics unreadable ({e})"))
}

/// The learning-rate sweep on the tuning seeds.
fn run_tune<A: AutodiffBackend + DoraBackend>(cfg: &DoraConfig, device: &A::Device) -> Outcome {
    match tune::<A>(cfg, device) {
        Err(e) => Outcome::error(format!("learning-rate sweep: {e}")),
        Ok(t) => Outcome::passed(
            format!(
                "{} learning rates chosen on tuning seeds {:?} from the grid {:?}",
                t.choices.len(),
                t.seeds,
                t.lr_grid
            ),
            t.metrics(),
        ),
    }
}

/// All four experiments of the unit's seed, with the learning rates of the sweep `t`.
fn run_seed_unit<A: AutodiffBackend + DoraBackend>(
    cfg: &DoraConfig,
    t: &Tuning,
    unit: &UnitSpec,
    device: &A::Device,
) -> Outcome {
    let seed = unit.seed.unwrap_or(0);
    match run_seed::<A>(cfg, t, seed, device) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(m) => {
            let nmse = |e, meth, r| m.arm(e, meth, r).map_or(f64::NAN, |a| a.nmse);
            let r = cfg.ranks[0];
            Outcome::passed(
                format!(
                    "capacity r={r}: LoRA nmse {:.3}, DoRA {:.3}; adapt r={r}: LoRA {:.4}, DoRA {:.4}, FT {:.4}",
                    nmse(Experiment::Capacity, Method::Lora, r),
                    nmse(Experiment::Capacity, Method::Dora, r),
                    nmse(Experiment::Adapt, Method::Lora, r),
                    nmse(Experiment::Adapt, Method::Dora, r),
                    nmse(Experiment::Adapt, Method::Full, 0),
                ),
                m.metrics(),
            )
        }
    }
}

/// The per-seed measurements of the run's passed units. A unit whose metrics do not parse is
/// left out, with a warning naming it.
fn seed_measurements(records: &[UnitRecord], warnings: &mut Vec<String>) -> Vec<SeedMeasurements> {
    claimbench_paper::passed_measurements(
        records,
        PAPER,
        SEEDS,
        |u| SeedMeasurements::from_metrics(&u.metrics),
        warnings,
    )
}

fn nmse_of(ms: &[SeedMeasurements], e: Experiment, method: Method, rank: usize) -> Vec<f64> {
    ms.iter()
        .filter_map(|m| m.arm(e, method, rank).map(|a| a.nmse))
        .collect()
}

/// The rank sweep of one experiment: a table (mean ± 95% CI over seeds) and a log-scale plot.
fn sweep_section(
    cfg: &DoraConfig,
    ms: &[SeedMeasurements],
    e: Experiment,
    title: &str,
    note: &str,
) -> Section {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut whiskers = Vec::new();
    for method in [Method::Lora, Method::Dora] {
        let mut pts = Vec::new();
        for &r in &cfg.ranks {
            let xs = nmse_of(ms, e, method, r);
            let pm = mean_pm(&xs);
            rows.push(vec![method.as_str().to_string(), r.to_string(), fmt_pm(pm)]);
            if let Some((mean, half)) = pm {
                pts.push((r as f64, mean.max(1e-12).log10()));
                let half = if half.is_finite() { half } else { 0.0 };
                whiskers.push(Bar {
                    label: format!("{} r{r}", method.as_str()),
                    mean,
                    lo: mean - half,
                    hi: mean + half,
                });
            }
        }
        series.push(Series {
            label: method.as_str().to_string(),
            points: pts,
        });
    }
    if e == Experiment::Adapt {
        let xs = nmse_of(ms, e, Method::Full, 0);
        if let Some((mean, _)) = mean_pm(&xs) {
            rows.push(vec!["ft".into(), "full".into(), fmt_pm(mean_pm(&xs))]);
            series.push(Series {
                label: "ft (full fine-tuning)".into(),
                points: cfg
                    .ranks
                    .iter()
                    .map(|&r| (r as f64, mean.max(1e-12).log10()))
                    .collect(),
            });
        }
    }
    // The adaptation's errors are far below 1: a "no progress" line would flatten its bars.
    let references = if e == Experiment::Adapt {
        Vec::new()
    } else {
        vec![("no progress (the base layer)".to_string(), 1.0)]
    };
    Section {
        title: title.into(),
        note: note.into(),
        table: Some(Table {
            header: ["method", "rank", "held-out normalised MSE (mean ± 95% CI)"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        }),
        figures: vec![
            Figure::xy(title, "rank r", "log10 normalised MSE", &series, true),
            Figure::bars(
                "normalised MSE by method and rank: mean and 95% CI over seeds",
                "normalised MSE",
                &whiskers,
                &references,
            ),
        ],
        caption: format!(
            "Mean over {} seeds (log scale), then the same with 95% CIs; 1 = no better than the base layer.",
            ms.len()
        ),
    }
}

/// The paper page's sections: the rank sweeps (capacity, control, adaptation), the ΔD–ΔM
/// analysis with fitted slopes, and learning curves.
fn report_sections(cfg: &DoraConfig, units: &[UnitRecord]) -> Vec<Section> {
    let ms = seed_measurements(units, &mut Vec::new());
    if ms.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        sweep_section(
            cfg,
            &ms,
            Experiment::Capacity,
            "Synthetic control: capacity test (targets with per-column rescaling plus a low-rank direction change)",
            &format!(
                "One linear layer W0 [{d}, {d}]; target = (W0 + rank-{k} direction change) with log-normal column scales (σ = {sd}). \
                 The paper's Fig. 5 rank sweep (LLaMA-7B commonsense): LoRA 39.5/40.7/70.9/74.7/65.8, DoRA 61.9/77.9/77.5/78.4/72.1 at r = 4/8/16/32/64.",
                d = cfg.d,
                k = cfg.target_rank,
                sd = cfg.rescale_sd
            ),
        ),
        sweep_section(
            cfg,
            &ms,
            Experiment::Control,
            "Synthetic control: target W0 + low rank (no rescaling)",
            &format!(
                "Both methods can represent the target exactly from rank {}: no difference is expected.",
                cfg.target_rank
            ),
        ),
        sweep_section(
            cfg,
            &ms,
            Experiment::Adapt,
            "Synthetic control: adapting a pretrained MLP to a related task",
            &format!(
                "MLP {:?} pretrained on task A, adapted to task B (per-layer column rescaling, a rank-{} direction change and full-rank noise); \
                 full fine-tuning is the reference arm.",
                cfg.mlp_widths, cfg.adapt_target_rank
            ),
        ),
    ];
    // ΔD–ΔM: every seed's points per method, with the mean correlation and slope.
    let mut series = Vec::new();
    let mut rows = Vec::new();
    for (method, paper) in [
        (Method::Full, "−0.62"),
        (Method::Dora, "−0.31"),
        (Method::Lora, "+0.83"),
    ] {
        let an: Vec<_> = ms.iter().filter_map(|m| m.analysis_of(method)).collect();
        if an.is_empty() {
            continue;
        }
        let corr: Vec<f64> = an
            .iter()
            .map(|a| a.correlation)
            .filter(|v| v.is_finite())
            .collect();
        let slope: Vec<f64> = an
            .iter()
            .map(|a| a.slope)
            .filter(|v| v.is_finite())
            .collect();
        rows.push(vec![
            method.as_str().to_string(),
            paper.to_string(),
            fmt_pm(mean_pm(&corr)),
            fmt_pm(mean_pm(&slope)),
        ]);
        let slope_mean = mean_pm(&slope).map_or(f64::NAN, |(m, _)| m);
        series.push(Series {
            label: format!("{} (mean slope {slope_mean:.3})", method.as_str()),
            points: an
                .iter()
                .flat_map(|a| a.delta_d.iter().copied().zip(a.delta_m.iter().copied()))
                .collect(),
        });
    }
    out.push(Section {
        title: "Synthetic control: magnitude and direction updates of the MLP (not judged)".into(),
        note: format!(
            "ΔM = Σ_n |m_n,t − m_n,0| / k and ΔD = Σ_n (1 − cos(W_t[:, n], W0[:, n])) / k per adapted layer per checkpoint \
             of the adaptation runs at rank {}; the correlation is over each seed's points.",
            cfg.analysis_rank
        ),
        table: Some(Table {
            header: ["method", "paper correlation", "our correlation (mean ± 95% CI)", "fitted slope ΔM/ΔD"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        }),
        figures: vec![Figure::xy("ΔD vs ΔM, all seeds and checkpoints", "ΔD", "ΔM", &series, false)],
        caption: "Each point is one layer at one checkpoint of one seed.".into(),
    });
    let curve = |e: Experiment, method: Method, r: usize| -> Option<Series> {
        let runs: Vec<(&[usize], &[f64])> = ms
            .iter()
            .filter_map(|m| m.arm(e, method, r))
            .map(|a| (a.curve_steps.as_slice(), a.curve.as_slice()))
            .collect();
        let pts: Vec<(f64, f64)> = mean_over_runs(&runs)
            .into_iter()
            .map(|(s, v)| (s, v.max(1e-12).log10()))
            .collect();
        if pts.is_empty() {
            return None;
        }
        let label = if method == Method::Full {
            "ft".to_string()
        } else {
            format!("{} r={r}", method.as_str())
        };
        Some(Series { label, points: pts })
    };
    let r0 = cfg.ranks[0];
    let ra = cfg.analysis_rank;
    let cap: Vec<Series> = [(Method::Lora, r0), (Method::Dora, r0)]
        .into_iter()
        .filter_map(|(m, r)| curve(Experiment::Capacity, m, r))
        .collect();
    let adapt: Vec<Series> = [(Method::Full, 0), (Method::Lora, ra), (Method::Dora, ra)]
        .into_iter()
        .filter_map(|(m, r)| curve(Experiment::Adapt, m, r))
        .collect();
    out.push(Section {
        title: "Synthetic control: learning curves".into(),
        note:
            "Held-out normalised MSE, mean over seeds, at the learning rate each arm's sweep chose."
                .into(),
        table: None,
        figures: vec![
            Figure::xy("capacity test", "step", "log10 normalised MSE", &cap, true),
            Figure::xy("adaptation", "step", "log10 normalised MSE", &adapt, true),
        ],
        caption: String::new(),
    });
    out
}

#[cfg(test)]
mod tests;
