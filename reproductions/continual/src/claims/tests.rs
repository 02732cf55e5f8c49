//! Unit tests of [`super::evaluate`]: pairing by seed and claims left out when their arms are.

use super::*;
use claimbench_paper::Scale;

/// Synthetic summaries with the paper's shape (more replay, less forgetting; the union
/// equal to 5% replay), to exercise the pairing. Not a result.
fn synthetic(cfg: &ExperimentConfig, seeds: u64, monotone: bool) -> Vec<Summary> {
    let mut out = Vec::new();
    for seed in 0..seeds {
        let jitter = 0.001 * seed as f64;
        for arm in cfg.arms() {
            let (d0, d1) = match arm {
                Arm::Replay { share, .. } if monotone => (
                    2.5 - share - 0.2 * (share > 0.0) as u8 as f64,
                    2.0 + 0.01 * share,
                ),
                Arm::Replay { share, .. } => (2.5 + share, 2.0),
                Arm::Union { .. } => (2.3 - 0.05, 2.0 + 0.0005),
                _ => (2.45, 2.05),
            };
            let r = Summary {
                arm: arm.name(),
                experiment: arm.experiment().into(),
                seed,
                pre_d0: 2.0,
                pre_d1: 3.0,
                last_d0: d0 + jitter,
                last_d1: d1 + jitter,
                peak_d0: d0 + 0.1 + jitter,
            };
            out.push(r);
        }
    }
    out
}

#[test]
fn every_claim_is_evaluated_and_the_verdict_follows_the_data() {
    let cfg = ExperimentConfig::for_scale(Scale::Small);
    let claims = evaluate(&cfg, &synthetic(&cfg, 5, true), "small").unwrap();
    assert_eq!(claims.len(), specs(&cfg).len());
    let get = |id: &str| {
        claims
            .iter()
            .find(|c| c.id == format!("continual/{id}"))
            .unwrap()
    };
    assert_eq!(get("replay-monotone-weak").verdict.as_str(), "reproduced");
    // Reverse the trend: the same claim is not reproduced.
    let claims = evaluate(&cfg, &synthetic(&cfg, 5, false), "small").unwrap();
    let get = |id: &str| {
        claims
            .iter()
            .find(|c| c.id == format!("continual/{id}"))
            .unwrap()
    };
    assert_eq!(
        get("replay-monotone-weak").verdict.as_str(),
        "not-reproduced"
    );
}

#[test]
fn missing_arms_leave_their_claims_out() {
    let cfg = ExperimentConfig::for_scale(Scale::Small);
    let rows: Vec<Summary> = synthetic(&cfg, 5, true)
        .into_iter()
        .filter(|r| r.experiment == "same-data")
        .collect();
    let claims = evaluate(&cfg, &rows, "small").unwrap();
    let ids: Vec<&str> = claims.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["continual/rewarm-same-data-rise"]);
}
