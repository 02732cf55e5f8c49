//! Claim evaluation over a run's unit records. Each registered paper judges its own claims on
//! the records of its units (`DynPaper::claims`); the verdicts come from `claimbench_claims`'
//! statistics, never from hand-written values.

use claimbench_claims::Claim;

use crate::registry::Registry;
use crate::store::{Configs, UnitRecord};

/// Every claim of the registered papers whose units are in `records`, judged with `configs`
/// (the run's settings) at `scale` (as the manifest spells it). Evidence a paper left out is
/// reported as a warning naming it (never given a verdict by hand).
pub fn evaluate_all(
    reg: &Registry,
    records: &[UnitRecord],
    configs: &Configs,
    scale: &str,
) -> Vec<Claim> {
    let mut out = Vec::new();
    for p in reg.papers() {
        let id = p.info().id;
        let Some(cfg) = configs.get(id) else { continue };
        if !records.iter().any(|u| u.paper == id) {
            continue;
        }
        let judged = p.claims(cfg, records, scale);
        for w in judged.warnings {
            errln!("warning: {id}: {w}");
        }
        out.extend(judged.claims);
    }
    out
}
