//! The real-text units of the DoRA paper and how each runs:
//! - `dora/text-base/seed-<t>` per tuning seed: that seed's English base model (continual's
//!   stage 0 under `text.base`), stored as artifacts like continual's own;
//! - `dora/text-tune`: the learning-rate sweep on those base models;
//! - `dora/text/seed-<s>` per verdict seed: every arm from the shared base model
//!   `continual/stage0/seed-<s>` (its stored settings checked against `text.base`), with the
//!   sweep's rates, and the memory measurement.

use burn::tensor::backend::Backend;
use claimbench_continual::Checkpoint;
use claimbench_continual::experiment::ExperimentConfig;
use claimbench_continual::paper::{STAGE0_SETTINGS, stage0_artifacts, stage0_id};
use claimbench_kernels::burn_ops::TokenLogprobBackend;
use claimbench_paper::{MetricRow, Outcome, RunContext, RunsOn, UnitSpec};

use super::TextConfig;
use super::measure::TextTuning;
use super::train::{TextBackend, check_base, run_seed, tune};
use crate::paper::PAPER;

/// The sweep's unit.
pub const TEXT_TUNE: &str = "dora/text-tune";
/// The experiment name of the per-seed real-text units.
pub const TEXT_SEEDS: &str = "text";

/// The unit id of a tuning seed's base model.
pub fn base_id(seed: u64) -> String {
    format!("{PAPER}/text-base/seed-{seed}")
}

/// The real-text units for `seeds` (tuning bases, the sweep, one unit per verdict seed).
pub fn units(cfg: &TextConfig, seeds: &[u64]) -> Vec<UnitSpec> {
    let unit = |id: String, experiment: &str, arm: &str, seed, task, deps| UnitSpec {
        id,
        paper: PAPER.into(),
        experiment: experiment.into(),
        arm: arm.into(),
        seed,
        task,
        runs_on: RunsOn::Train,
        bench: false,
        depends_on: deps,
    };
    let mut out: Vec<UnitSpec> = cfg
        .tuning_seeds
        .iter()
        .map(|&t| {
            unit(
                base_id(t),
                "text-base",
                "stage0",
                Some(t),
                "text-base",
                Vec::new(),
            )
        })
        .collect();
    out.push(unit(
        TEXT_TUNE.into(),
        "text-tune",
        "lr-sweep",
        None,
        "text-tune",
        cfg.tuning_seeds.iter().map(|&t| base_id(t)).collect(),
    ));
    for &s in seeds {
        out.push(unit(
            format!("{PAPER}/{TEXT_SEEDS}/seed-{s}"),
            TEXT_SEEDS,
            "ft-lora-dora",
            Some(s),
            "text-seed",
            vec![stage0_id(s), TEXT_TUNE.into()],
        ));
    }
    out
}

/// The base model stored by dependency `unit_id` for `seed`, after checking the settings it
/// was trained with against `cfg.base`.
fn stored_base<A: Backend>(
    cfg: &TextConfig,
    ctx: &RunContext,
    unit_id: &str,
    seed: u64,
    device: &A::Device,
) -> Result<claimbench_continual::model::TinyLm<A>, String> {
    let read = |name: &str| ctx.artifact(unit_id, name);
    let settings: ExperimentConfig = serde_json::from_slice(&read(STAGE0_SETTINGS)?)
        .map_err(|e| format!("{unit_id}/{STAGE0_SETTINGS}: {e}"))?;
    check_base(cfg, &settings).map_err(|e| format!("{unit_id}: {e}"))?;
    let ck = Checkpoint::from_artifacts(read(Checkpoint::MODEL)?, &read(Checkpoint::CURVES)?)
        .map_err(|e| format!("{unit_id}: {e}"))?;
    ck.model::<A>(&cfg.base, seed, device)
        .map_err(|e| format!("{unit_id}: {e}"))
}

/// Runs a real-text unit (`task` `text-base`, `text-tune` or `text-seed`) on `A`.
pub fn run_unit<A: TextBackend>(
    cfg: &TextConfig,
    unit: &UnitSpec,
    ctx: &mut RunContext,
    device: &A::Device,
) -> Outcome
where
    A::InnerBackend: TokenLogprobBackend,
{
    let seed = unit.seed.unwrap_or(0);
    match unit.task {
        "text-base" => {
            match claimbench_continual::pretrain::<A>(
                &cfg.base,
                seed,
                ctx.data,
                device,
                &mut *ctx.tick,
            ) {
                Err(e) => Outcome::error(e.to_string()),
                Ok(ck) => {
                    let artifacts = stage0_artifacts(&ck, &cfg.base);
                    Outcome {
                        artifacts,
                        ..Outcome::passed(
                            format!("base model of tuning seed {seed}"),
                            Vec::<MetricRow>::new(),
                        )
                    }
                }
            }
        }
        "text-tune" => {
            let bases: Result<Vec<_>, String> = cfg
                .tuning_seeds
                .iter()
                .map(|&t| stored_base::<A>(cfg, ctx, &base_id(t), t, device))
                .collect();
            let bases = match bases {
                Ok(b) => b,
                Err(e) => return Outcome::error(e),
            };
            match tune::<A>(cfg, &bases, ctx.data, device, &mut *ctx.tick) {
                Err(e) => Outcome::error(format!("real-text learning-rate sweep: {e}")),
                Ok(t) => Outcome::passed(
                    format!(
                        "{} learning rates chosen on tuning seeds {:?} from {:?}",
                        t.picks.len(),
                        t.seeds,
                        t.lr_grid
                    ),
                    t.metrics(),
                ),
            }
        }
        "text-seed" => {
            let tuning = match ctx
                .input(TEXT_TUNE)
                .map(|r| TextTuning::from_metrics(&r.metrics))
            {
                Some(Ok(t)) => t,
                Some(Err(e)) => return Outcome::error(format!("{TEXT_TUNE}: {e}")),
                None => return Outcome::error(format!("needs {TEXT_TUNE}, which has not passed")),
            };
            let base = match stored_base::<A>(cfg, ctx, &stage0_id(seed), seed, device) {
                Ok(b) => b,
                Err(e) => return Outcome::error(e),
            };
            let memory = match claimbench_paper::alloc::installed() {
                true => match crate::memory::norm_memory(&cfg.memory, seed) {
                    Ok(m) => Some(m),
                    Err(e) => return Outcome::error(e.to_string()),
                },
                false => None,
            };
            match run_seed::<A>(cfg, &tuning, seed, &base, ctx.data, device, &mut *ctx.tick) {
                Err(e) => Outcome::error(e.to_string()),
                Ok(mut m) => {
                    m.memory = memory;
                    let line = m
                        .base
                        .iter()
                        .map(|b| {
                            let best = m
                                .arms
                                .iter()
                                .filter(|a| a.shift == b.shift)
                                .map(|a| a.test_loss)
                                .fold(f64::INFINITY, f64::min);
                            format!(
                                "{}: base {:.3} → best arm {best:.3} nats",
                                b.shift.name(),
                                b.test_loss
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    Outcome::passed(line, m.metrics())
                }
            }
        }
        other => Outcome::error(format!("unit {}: unknown task {other}", unit.id)),
    }
}
