//! The Mixtral reproduction as a [`Paper`]: the four arms per verdict seed (one unit each), the
//! claims' inputs, the data cards and the paper page's sections ([`crate::report`]).

use burn::backend::{Autodiff, Flex};
use claimbench_paper::report::Section;
use claimbench_paper::{
    DataCard, DataEnv, Exec, Judged, Outcome, Paper, PaperInfo, RunContext, RunsOn, Scale,
    UnitRecord, UnitSpec,
};

use crate::experiments::TrainBackend;
use crate::measure::{Arm, SeedMeasurements};
use crate::params::{ParamCounts, mixtral_8x7b, param_counts};
use crate::{MixtralConfig, run_seed};

/// The paper id.
pub const PAPER: &str = "mixtral";
/// The experiment name of the per-seed units.
pub const SEEDS: &str = "experiments";

/// The Mixtral paper (arXiv 2401.04088).
pub struct Mixtral;

impl Paper for Mixtral {
    type Config = MixtralConfig;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: PAPER,
            title: "Mixtral of Experts",
            arxiv: "2401.04088",
            kernels: &["kernels/moe-layer"],
        }
    }

    fn config(&self, scale: Scale) -> MixtralConfig {
        MixtralConfig::for_scale(scale)
    }

    fn validate(&self, cfg: &MixtralConfig, seeds: Option<&[u64]>) -> Result<(), String> {
        cfg.validate().map_err(|e| e.to_string())?;
        match seeds {
            Some(s) => cfg.validate_with_seeds(s).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn estimated_bytes(&self, cfg: &MixtralConfig) -> u64 {
        cfg.estimated_bytes()
    }

    fn units(&self, _cfg: &MixtralConfig, seeds: &[u64]) -> Vec<UnitSpec> {
        units(seeds)
    }

    fn run_unit(&self, cfg: &MixtralConfig, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        match ctx.exec {
            Exec::Flex => run_seed_unit::<Autodiff<Flex>>(cfg, unit, ctx.data, &Default::default()),
            // burn's fused defaults: the MoE ops are custom ops of their fusion stream.
            Exec::Wgpu => run_seed_unit::<Autodiff<burn::backend::Wgpu>>(
                cfg,
                unit,
                ctx.data,
                &Default::default(),
            ),
            #[cfg(feature = "cuda")]
            Exec::Cuda => run_seed_unit::<Autodiff<burn::backend::Cuda>>(
                cfg,
                unit,
                ctx.data,
                &Default::default(),
            ),
            #[cfg(not(feature = "cuda"))]
            Exec::Cuda => Outcome::error("built without the cuda feature".into()),
        }
    }

    fn claims(&self, cfg: &MixtralConfig, records: &[UnitRecord], scale: &str) -> Judged {
        let mut out = Judged::default();
        let ms = seed_measurements(records, &mut out.warnings);
        if !ms.is_empty() {
            match crate::evaluate(cfg, &ms, scale) {
                Ok(claims) => out.claims = claims,
                Err(e) => out
                    .warnings
                    .push(format!("mixtral claims not evaluated: {e}")),
            }
        }
        out
    }

    fn claim_specs(&self, cfg: &MixtralConfig) -> Vec<claimbench_claims::ClaimSpec> {
        crate::claims::specs(cfg)
    }

    fn sections(&self, cfg: &MixtralConfig, records: &[UnitRecord]) -> Vec<Section> {
        crate::report::sections(cfg, &seed_measurements(records, &mut Vec::new()))
    }

    fn data_cards(&self, cfg: &MixtralConfig, env: &DataEnv) -> Result<Vec<DataCard>, String> {
        let corpus = claimbench_corpus::load(&cfg.data.corpus, env).map_err(|e| e.to_string())?;
        Ok(corpus.cards(&[PAPER]))
    }
}

/// One unit per verdict seed (all four arms).
fn units(seeds: &[u64]) -> Vec<UnitSpec> {
    seeds
        .iter()
        .map(|&seed| UnitSpec {
            id: format!("{PAPER}/seed-{seed}"),
            paper: PAPER.into(),
            experiment: SEEDS.into(),
            arm: "dense-moe-noaux-densetotal".into(),
            seed: Some(seed),
            task: "seed",
            runs_on: RunsOn::Train,
            bench: false,
            depends_on: Vec::new(),
        })
        .collect()
}

fn fmt_counts(what: &str, c: ParamCounts) -> String {
    format!("{what}: {} total, {} active parameters", c.total, c.active)
}

/// All four arms of the unit's seed. The summary carries Mixtral 8x7B's exact parameter counts
/// (Table 1) and the toy arms'.
fn run_seed_unit<A: TrainBackend>(
    cfg: &MixtralConfig,
    unit: &UnitSpec,
    env: &DataEnv,
    device: &A::Device,
) -> Outcome {
    let seed = unit.seed.unwrap_or(0);
    match run_seed::<A>(cfg, seed, env, device) {
        Err(e) => Outcome::error(e.to_string()),
        Ok(m) => {
            let loss = |arm| m.arm(arm).map_or(f64::NAN, |a| a.val_loss);
            let rows = m.metrics();
            Outcome::passed(
                format!(
                    "val loss: dense-active {:.4}, moe {:.4}, moe-noaux {:.4}, dense-total {:.4} (unigram {:.4}); {}",
                    loss(Arm::DenseActive),
                    loss(Arm::Moe),
                    loss(Arm::MoeNoAux),
                    loss(Arm::DenseTotal),
                    m.unigram_loss,
                    fmt_counts("Mixtral 8x7B (Table 1)", param_counts(&mixtral_8x7b())),
                ),
                rows,
            )
        }
    }
}

/// The per-seed measurements of the run's passed units. A unit whose metrics do not parse is
/// left out, with a warning naming it.
pub(crate) fn seed_measurements(
    records: &[UnitRecord],
    warnings: &mut Vec<String>,
) -> Vec<SeedMeasurements> {
    claimbench_paper::passed_measurements(
        records,
        PAPER,
        SEEDS,
        |u| SeedMeasurements::from_metrics(&u.metrics),
        warnings,
    )
}
