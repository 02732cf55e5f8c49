//! Claim evaluation over a run's unit records. Each reproduction contributes its claim specs and
//! the evidence extracted from its units; the verdicts come from `claimbench_claims::evaluate`,
//! never from hand-written values. No reproduction is registered yet, so the list is empty until
//! the paper crates land (see the issues for mixtral, dora, continual and dpo-ppo).

use claimbench_claims::Claim;

use crate::store::{Manifest, UnitRecord};

/// Every claim of the papers whose units are in `records`.
pub fn evaluate_all(_records: &[UnitRecord], _manifest: &Manifest) -> Vec<Claim> {
    Vec::new()
}
