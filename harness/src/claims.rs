//! Claim evaluation over a run's unit records. Each reproduction contributes its claim specs and
//! the evidence extracted from its units; the verdicts come from `claimbench_claims::evaluate`,
//! never from hand-written values. Registered: `continual`, `dora` (capacity, control, adaptation,
//! ΔM/ΔD), and `dpo-ppo` (the exact Table 1
//! claims, Fig. 1 with the distribution shift, the PPO ladder).

use claimbench_claims::Claim;

use crate::configs::PaperConfigs;
use crate::store::{Manifest, UnitRecord};
use crate::suites::{continual, dora, dpo_ppo, mixtral};

/// Every claim of the papers whose units are in `records`, with the settings the run used (the
/// scale's defaults for a manifest without them). A claim whose evidence is malformed is left
/// out with a warning naming it (never given a verdict by hand).
pub fn evaluate_all(records: &[UnitRecord], manifest: &Manifest) -> Vec<Claim> {
    // Imported criterion results have neither settings nor reproduction units.
    let Some(configs) = manifest
        .configs
        .clone()
        .or_else(|| manifest.scale().map(PaperConfigs::for_scale))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let summaries = continual::summaries(records);
    if !summaries.is_empty() {
        match claimbench_continual::claims::evaluate(
            &configs.continual,
            &summaries,
            &manifest.scale,
        ) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: continual claims not evaluated: {e}"),
        }
    }
    if let Some(m) = dpo_ppo::measurements(records) {
        match claimbench_dpo_ppo::claims::evaluate(&m, &manifest.scale) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: dpo-ppo claims not evaluated: {e}"),
        }
    }
    let fig1 = dpo_ppo::fig1_measurements(records);
    if !fig1.is_empty() {
        match claimbench_dpo_ppo::fig1::evaluate(&configs.dpo_ppo.fig1, &fig1, &manifest.scale) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: dpo-ppo Fig. 1 claims not evaluated: {e}"),
        }
    }
    let ladder = dpo_ppo::ladder_runs(records);
    if !ladder.is_empty() {
        match claimbench_dpo_ppo::ladder::evaluate(
            &configs.dpo_ppo.ladder,
            &ladder,
            &manifest.scale,
        ) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: dpo-ppo ladder claims not evaluated: {e}"),
        }
    }
    let dora = dora::seed_measurements(records);
    if !dora.is_empty() {
        match claimbench_dora::evaluate(&configs.dora, &dora, &manifest.scale) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: dora claims not evaluated: {e}"),
        }
    }
    let mixtral = mixtral::seed_measurements(records);
    if !mixtral.is_empty() {
        match claimbench_mixtral::evaluate(&configs.mixtral, &mixtral, &manifest.scale) {
            Ok(claims) => out.extend(claims),
            Err(e) => errln!("warning: mixtral claims not evaluated: {e}"),
        }
    }
    out
}
