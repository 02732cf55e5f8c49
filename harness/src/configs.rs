//! Per-paper experiment settings: each registered paper's preset for the scale, overridden field
//! by field by `claimbench run --config FILE`, validated before anything trains, and stored in the
//! manifest (so `--resume` and the claims use the settings the run was made with).
//!
//! The file is JSON keyed by paper id, e.g. `{"continual": {"stage_steps": 400, "model":
//! {"d_model": 64}}}`; nested objects merge into the presets, unknown papers and unknown keys are
//! errors that name them. The settings travel as JSON ([`Configs`]); each paper parses its own
//! (`DynPaper::check_config`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use claimbench_claims::limits::memory_at_most;
use claimbench_paper::Scale;
use serde_json::Value;

use crate::error::input_error;
use crate::registry::Registry;
use crate::store::{Configs, Manifest};

/// The presets of `scale` with the overrides of `path` (if any) merged in, validated. A bad
/// file, an unknown paper or key, or an invalid value is an input error (exit 4) naming the file
/// and the problem.
pub fn load(reg: &Registry, path: Option<&Path>, scale: Scale) -> Result<Configs> {
    let Some(path) = path else {
        let defaults = reg.default_configs(scale);
        validate(reg, &defaults)?;
        return Ok(defaults);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error(format!("--config {}: cannot read it: {e}", path.display())))?;
    from_overrides(reg, &text, scale)
        .map_err(|e| input_error(format!("--config {}: {e:#}", path.display())))
}

/// The key of the `--config` section that holds `sbatch` settings instead of a paper's.
pub const SLURM_SECTION: &str = "slurm";

/// The `slurm` section of the `--config` file at `path` (`partition`, `time`, `mem`, `cpus`,
/// `gpus`, `max_parallel`, `args`), if it has one; it is not part of the run's settings hash.
/// An unknown key or a value of the wrong type is an input error naming it.
pub fn slurm_section(path: &Path) -> Result<Option<SlurmSettings>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error(format!("--config {}: cannot read it: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| input_error(format!("--config {}: not valid JSON: {e}", path.display())))?;
    match v.get(SLURM_SECTION) {
        None => Ok(None),
        Some(s) => serde_json::from_value(s.clone()).map(Some).map_err(|e| {
            input_error(format!(
                "--config {}: section \"{SLURM_SECTION}\": {e}",
                path.display()
            ))
        }),
    }
}

/// The `sbatch` settings of the Slurm executor: the `--slurm-*` options, or the `slurm` section
/// of a `--config` file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// sbatch `--partition`.
    pub partition: Option<String>,
    /// sbatch `--time`; default: the plan's estimate.
    pub time: Option<String>,
    /// sbatch `--mem`; default: the plan's estimate.
    pub mem: Option<String>,
    /// sbatch `--cpus-per-task`; default 1.
    pub cpus: Option<u32>,
    /// sbatch `--gpus`, for the units that need the kernel device.
    pub gpus: Option<String>,
    /// Tasks of one array running at once (`%P`).
    pub max_parallel: Option<u32>,
    /// More sbatch arguments, each passed as one argument.
    #[serde(default)]
    pub args: Vec<String>,
}

impl SlurmSettings {
    /// These settings, each missing one taken from `file` (its `args` come first).
    pub fn or(self, file: SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            partition: self.partition.or(file.partition),
            time: self.time.or(file.time),
            mem: self.mem.or(file.mem),
            cpus: self.cpus.or(file.cpus),
            gpus: self.gpus.or(file.gpus),
            max_parallel: self.max_parallel.or(file.max_parallel),
            args: file.args.into_iter().chain(self.args).collect(),
        }
    }
}

/// [`load`] from JSON text.
pub fn from_overrides(reg: &Registry, text: &str, scale: Scale) -> Result<Configs> {
    let patch: Value =
        serde_json::from_str(text).map_err(|e| input_error(format!("not valid JSON: {e}")))?;
    let Value::Object(patch) = patch else {
        return Err(input_error(
            "expected a JSON object keyed by paper id, e.g. {\"continual\": {...}}",
        ));
    };
    let mut merged = reg.default_configs(scale);
    // `slurm` is the Slurm executor's section ([`slurm_section`]), not a paper.
    for (paper, v) in patch.iter().filter(|(k, _)| k.as_str() != SLURM_SECTION) {
        let slot = merged.get_mut(paper).ok_or_else(|| {
            input_error(format!(
                "unknown paper {}; expected one of: {}",
                crate::ids::shown(paper),
                reg.papers()
                    .map(|p| p.info().id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        merge(slot, v);
    }
    validate(reg, &merged)?;
    Ok(merged)
}

/// The settings a run directory's manifest holds, checked: every key a registered paper, each
/// paper's settings parsed and valid. A registered paper the manifest lacks (a run made before
/// the paper existed, which holds none of its units) reads as its `small` preset. `None` for
/// imported criterion results (no settings, no scale).
pub fn of_manifest(reg: &Registry, m: &Manifest) -> Result<Option<Configs>> {
    let Some(scale) = m.scale() else {
        return Ok(None);
    };
    let mut c = m
        .configs
        .clone()
        .unwrap_or_else(|| reg.default_configs(scale));
    for p in reg.papers() {
        c.entry(p.info().id.to_string())
            .or_insert_with(|| p.default_config(Scale::Small));
    }
    validate(reg, &c).map_err(|e| input_error(format!("manifest configs: {e:#}")))?;
    Ok(Some(c))
}

/// Checks every paper's settings: no unknown paper, none missing, each one valid.
pub fn validate(reg: &Registry, configs: &Configs) -> Result<()> {
    for key in configs.keys() {
        if reg.paper(key).is_none() {
            return Err(input_error(format!(
                "settings for an unknown paper {}",
                crate::ids::shown(key)
            )));
        }
    }
    for p in reg.papers() {
        let id = p.info().id;
        let cfg = configs
            .get(id)
            .ok_or_else(|| input_error(format!("{id}: no settings")))?;
        p.check_config(cfg, None)
            .map_err(|e| input_error(e.to_string()))?;
    }
    Ok(())
}

/// [`validate`] plus the checks that need the run's verdict seeds (a paper's tuning seeds must
/// not be among them), for the papers a run selected only: a paper that does not run cannot
/// clash with the run's seeds. Then the memory check of the largest selected unit.
pub fn validate_selected(
    reg: &Registry,
    configs: &Configs,
    papers: &BTreeSet<&str>,
    seeds: &[u64],
) -> Result<()> {
    validate(reg, configs)?;
    for p in reg.papers().filter(|p| papers.contains(p.info().id)) {
        p.check_config(&configs[p.info().id], Some(seeds))
            .map_err(|e| input_error(e.to_string()))?;
    }
    if let (Some((paper, estimate)), Some(available)) =
        (largest_estimate(reg, configs, papers), available_memory())
    {
        memory_at_most(with_headroom(estimate), available).map_err(|e| {
            input_error(format!(
                "{paper}: {e} (MemAvailable; the tensors' estimate plus 25% and 256 MiB); \
                 lower its sizes with --config"
            ))
        })?;
    }
    Ok(())
}

/// The selected paper whose largest unit needs the most memory, and that estimate in bytes
/// (each paper's `estimated_bytes`: one arm of one seed; units run one at a time). `None` when no
/// selected paper trains a model.
pub fn largest_estimate(
    reg: &Registry,
    configs: &Configs,
    papers: &BTreeSet<&str>,
) -> Option<(&'static str, u64)> {
    reg.papers()
        .filter(|p| papers.contains(p.info().id))
        .filter_map(|p| {
            let id = p.info().id;
            Some((id, p.estimated_bytes(configs.get(id)?).ok()?))
        })
        .max_by_key(|&(_, bytes)| bytes)
}

/// What a unit whose tensors are estimated at `estimate` bytes may take as a process: the
/// estimate plus 25% (what it does not count: autodiff bookkeeping, allocator slack, burn's
/// intermediates) plus 256 MiB (the binary and runtimes). Measured on flex: continual at
/// `d_model` 768, 6 layers, `d_ff` 3072, batch 64 peaked at 2.22 GiB RSS against an estimate of
/// 2.00 GiB, a smoke run at 65 MiB.
pub fn with_headroom(estimate: u64) -> u64 {
    estimate
        .saturating_add(estimate / 4)
        .saturating_add(256 << 20)
}

/// The memory this machine can give a new process now (`MemAvailable` of `/proc/meminfo`), in
/// bytes; `None` where the file is missing or unreadable (then no estimate is enforced).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Overlays `patch` on `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}
