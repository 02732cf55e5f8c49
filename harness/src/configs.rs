//! Per-paper experiment settings: the scale's defaults, overridden field by field by
//! `claimbench run --config FILE`, validated before anything trains, and stored in the manifest
//! (so `--resume` and the claims use the settings the run was made with).
//!
//! The file is JSON keyed by paper id, e.g. `{"continual": {"stage_steps": 400, "model":
//! {"d_model": 64}}}`; nested objects merge into the defaults, unknown keys are errors that
//! name the key.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use claimbench_claims::limits::memory_at_most;
use claimbench_continual::ExperimentConfig;
use claimbench_dora::DoraConfig;
use claimbench_dpo_ppo::fig1::Fig1Config;
use claimbench_dpo_ppo::ladder::LadderConfig;
use claimbench_mixtral::MixtralConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::input_error;
use crate::suites::Scale;

/// The settings of every paper's reproduction that has any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperConfigs {
    /// `continual` (arXiv 2403.08763).
    pub continual: ExperimentConfig,
    /// `dpo-ppo` (arXiv 2404.10719). Manifests written before it existed read as the `small`
    /// defaults (they hold no units of its experiments).
    #[serde(rename = "dpo-ppo", default)]
    pub dpo_ppo: DpoPpoConfigs,
    /// `dora` (arXiv 2402.09353). Manifests written before it existed read as the `small`
    /// defaults (they hold no units of its experiments).
    #[serde(default)]
    pub dora: DoraConfig,
    /// `mixtral` (arXiv 2401.04088). Manifests written before it existed read as the `small`
    /// defaults (they hold no units of its experiments).
    #[serde(default)]
    pub mixtral: MixtralConfig,
}

/// The settings of the DPO-vs-PPO experiments: the 8×8 preference problems (Fig. 1, the
/// distribution shift, DPO-Iter) and the PPO ablation ladder (Table 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoPpoConfigs {
    /// Fig. 1 and the distribution-shift experiments.
    pub fig1: Fig1Config,
    /// The PPO ablation ladder.
    pub ladder: LadderConfig,
}

impl DpoPpoConfigs {
    /// The defaults of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        DpoPpoConfigs {
            fig1: Fig1Config::for_scale(scale),
            ladder: LadderConfig::for_scale(scale),
        }
    }
}

impl Default for DpoPpoConfigs {
    /// The `small` defaults.
    fn default() -> Self {
        Self::for_scale(Scale::Small)
    }
}

impl PaperConfigs {
    /// The defaults of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        PaperConfigs {
            continual: ExperimentConfig::for_scale(scale),
            dpo_ppo: DpoPpoConfigs::for_scale(scale),
            dora: DoraConfig::for_scale(scale),
            mixtral: MixtralConfig::for_scale(scale),
        }
    }

    /// The defaults of `scale` with the overrides of `path` (if any) merged in, validated. A
    /// bad file, an unknown key or an invalid value is an input error (exit 4) naming the file
    /// and the problem.
    pub fn load(path: Option<&Path>, scale: Scale) -> Result<Self> {
        let defaults = Self::for_scale(scale);
        let Some(path) = path else {
            defaults.validate()?;
            return Ok(defaults);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            input_error(format!("--config {}: cannot read it: {e}", path.display()))
        })?;
        Self::from_overrides(&text, scale)
            .map_err(|e| input_error(format!("--config {}: {e:#}", path.display())))
    }

    /// [`PaperConfigs::load`] from JSON text.
    pub fn from_overrides(text: &str, scale: Scale) -> Result<Self> {
        let patch: Value =
            serde_json::from_str(text).map_err(|e| input_error(format!("not valid JSON: {e}")))?;
        if !patch.is_object() {
            return Err(input_error(
                "expected a JSON object keyed by paper id, e.g. {\"continual\": {...}}",
            ));
        }
        let mut merged = serde_json::to_value(Self::for_scale(scale))?;
        merge(&mut merged, &patch);
        let cfg: PaperConfigs =
            serde_json::from_value(merged).map_err(|e| input_error(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every paper's settings.
    pub fn validate(&self) -> Result<()> {
        self.continual
            .validate()
            .map_err(|e| input_error(format!("continual: {e}")))?;
        self.dpo_ppo
            .fig1
            .validate()
            .map_err(|e| input_error(format!("dpo-ppo fig1: {e}")))?;
        self.dpo_ppo
            .ladder
            .validate()
            .map_err(|e| input_error(format!("dpo-ppo ladder: {e}")))?;
        self.dora
            .validate()
            .map_err(|e| input_error(format!("dora: {e}")))?;
        self.mixtral
            .validate()
            .map_err(|e| input_error(format!("mixtral: {e}")))
    }

    /// [`PaperConfigs::validate`] plus the checks that need the run's verdict seeds (a
    /// paper's tuning seeds must not be among them), for the papers a run selected only: a
    /// paper that does not run cannot clash with the run's seeds.
    pub fn validate_selected(&self, papers: &BTreeSet<&str>, seeds: &[u64]) -> Result<()> {
        self.validate()?;
        if papers.contains("dora") {
            self.dora
                .validate_with_seeds(seeds)
                .map_err(|e| input_error(format!("dora: {e}")))?;
        }
        if papers.contains("mixtral") {
            self.mixtral
                .validate_with_seeds(seeds)
                .map_err(|e| input_error(format!("mixtral: {e}")))?;
        }
        if let (Some((paper, estimate)), Some(available)) =
            (self.largest_estimate(papers), available_memory())
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
    /// (each reproduction's `estimated_bytes`: one arm of one seed; units run one at a time).
    /// `None` when no selected paper trains a model.
    pub fn largest_estimate(&self, papers: &BTreeSet<&str>) -> Option<(&'static str, u64)> {
        [
            ("continual", self.continual.estimated_bytes()),
            (
                "dpo-ppo",
                self.dpo_ppo
                    .fig1
                    .estimated_bytes()
                    .max(self.dpo_ppo.ladder.estimated_bytes()),
            ),
            ("dora", self.dora.estimated_bytes()),
            ("mixtral", self.mixtral.estimated_bytes()),
        ]
        .into_iter()
        .filter(|(p, _)| papers.contains(p))
        .max_by_key(|&(_, bytes)| bytes)
    }
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
