//! The paper's claims as data, and their verdicts from measured arm summaries.
//!
//! [`specs`] states each claim (source, paper value, test, margin and why); [`evaluate`] pairs
//! the arms' per-seed [`Summary`] rows by seed and hands the evidence to
//! `claimbench_claims::evaluate`, which computes the verdict and its interval. Nothing here
//! writes a verdict.

use claimbench_claims::{
    Claim, ClaimError, ClaimSpec, Direction, Evidence, TestSpec, Tolerance, TrendDirection,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::experiment::{Arm, ArmResult, ExperimentConfig, Shift};

/// The per-seed numbers of one arm that the claims use (what a unit stores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`Arm::name`].
    pub arm: String,
    /// [`Arm::experiment`]: `weak`, `strong` or `same-data`.
    pub experiment: String,
    /// Seed.
    pub seed: u64,
    /// D0 / D1 loss at the stage boundary.
    pub pre_d0: f64,
    /// See `pre_d0`.
    pub pre_d1: f64,
    /// D0 / D1 loss at the end.
    pub last_d0: f64,
    /// See `last_d0`.
    pub last_d1: f64,
    /// Highest D0 loss logged in stage 1.
    pub peak_d0: f64,
}

impl From<&ArmResult> for Summary {
    fn from(r: &ArmResult) -> Self {
        Summary {
            arm: r.arm.name(),
            experiment: r.arm.experiment().into(),
            seed: r.seed,
            pre_d0: r.pre.0,
            pre_d1: r.pre.1,
            last_d0: r.last.0,
            last_d1: r.last.1,
            peak_d0: r.peak_d0,
        }
    }
}

impl Summary {
    fn forgetting(&self) -> f64 {
        self.last_d0 - self.pre_d0
    }
    fn adaptation(&self) -> f64 {
        self.pre_d1 - self.last_d1
    }
    fn average(&self) -> f64 {
        0.5 * (self.last_d0 + self.last_d1)
    }
    fn rise(&self) -> f64 {
        self.peak_d0 - self.pre_d0
    }
}

const PAPER: &str = "continual";

/// One row of the paper's replay table (405M): replay share (`None` = union from scratch) and
/// the old-domain (Pile), new-domain and average losses it reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperRow {
    /// Replay share, or `None` for the union baseline.
    pub share: Option<f64>,
    /// Pile (old-domain) loss.
    pub old: Option<f64>,
    /// New-domain loss.
    pub new: Option<f64>,
    /// Average of the two.
    pub average: Option<f64>,
}

const fn row(share: Option<f64>, old: f64, new: Option<f64>, average: Option<f64>) -> PaperRow {
    PaperRow {
        share,
        old: Some(old),
        new,
        average,
    }
}

/// Table 2, Pile → SlimPajama (weak shift): Pile / SlimPajama / average loss.
pub const WEAK_TABLE: &[PaperRow] = &[
    row(Some(0.0), 2.44, Some(2.50), Some(2.47)),
    row(Some(0.005), 2.27, Some(2.50), Some(2.39)),
    row(Some(0.01), 2.26, Some(2.50), Some(2.38)),
    row(Some(0.05), 2.23, Some(2.51), Some(2.37)),
    row(Some(0.10), 2.21, Some(2.51), Some(2.36)),
    row(Some(0.50), 2.16, Some(2.54), Some(2.35)),
    row(None, 2.17, Some(2.53), Some(2.35)),
];

/// Pile → German (strong shift): the paper reports the Pile loss.
pub const STRONG_TABLE: &[PaperRow] = &[
    row(Some(0.0), 3.56, None, None),
    row(Some(0.01), 2.83, None, None),
    row(Some(0.05), 2.57, None, None),
    row(Some(0.10), 2.46, None, None),
    row(Some(0.25), 2.33, None, None),
    row(Some(0.50), 2.24, None, None),
    row(None, 2.26, None, None),
];
/// Claims need this many seeds for a verdict (`small` runs 5; `smoke`'s 2 give inconclusive).
pub const MIN_SEEDS: usize = 3;
/// Equivalence margin on relative average loss, for "matches the union" and "comparable".
pub const EQUIV_MARGIN: f64 = 0.02;
const EQUIV_WHY: &str = "2% of the average loss: the paper calls 2.37 vs 2.35 (0.9%) a match at 405M \
    (Table 2) and its union rows differ from the best replay rows by up to 0.02-0.03 nats; 2% is that \
    gap plus the seed-to-seed spread we measure at toy scale";

fn spec(id: &str, statement: &str, source: &str, metric: &str, test: TestSpec) -> ClaimSpec {
    ClaimSpec {
        min_seeds: MIN_SEEDS,
        ..ClaimSpec::new(PAPER, id, statement, source, metric, test)
    }
}

/// Every claim, in report order, with the arm names it reads.
pub fn specs(cfg: &ExperimentConfig) -> Vec<ClaimSpec> {
    let mut out = Vec::new();
    for (shift, paper) in [
        (
            Shift::Weak,
            json!({"0%": 2.44, "0.5%": 2.27, "1%": 2.26, "5%": 2.23, "10%": 2.21, "50%": 2.16}),
        ),
        (
            Shift::Strong,
            json!({"0%": 3.56, "1%": 2.83, "5%": 2.57, "10%": 2.46, "25%": 2.33, "50%": 2.24}),
        ),
    ] {
        let mut s = spec(
            &format!("replay-monotone-{}", shift.name()),
            &format!(
                "Old-domain (D0) loss falls monotonically as the replay share grows ({} shift)",
                shift.name()
            ),
            "Table 2 / Fig. 3 (Pile loss vs replay %)",
            "final D0 loss vs replay share (mean Spearman rho over seeds)",
            TestSpec::trend(TrendDirection::Decreasing, Some(0.7)),
        );
        s.paper_value = paper;
        s.margin_why = "reproduced needs mean rho <= -0.7 with its interval below 0: the paper's \
            column is monotone except for ties at the 0.01-nat rounding"
            .into();
        out.push(s);
    }
    let share = pct(cfg.weak_union_share);
    let mut s = spec(
        "replay-removes-forgetting",
        &format!("{share} replay removes most of the forgetting of the old domain (weak shift)"),
        "Sec. 6.2, Table 2",
        "share of forgetting removed, 1 - F(replay) / F(0%), F = D0 loss rise over stage 1",
        TestSpec::magnitude(0.8, Tolerance::Absolute(0.3)),
    );
    s.paper_value = json!(0.8);
    s.margin_why =
        "target 80% ± 30 points: 'most' means more than half (0.5), and replay may remove \
        all of it (up to 1.1 allows a small overshoot)"
            .into();
    out.push(s);
    let mut s = spec(
        "replay-cost-on-new",
        &format!("{share} replay costs the new domain at most about 1% relative loss (weak shift)"),
        "Table 2 (SlimPajama loss 2.50 → 2.51)",
        "relative D1 loss change, L1(replay) / L1(0%) - 1",
        TestSpec::magnitude(0.0, Tolerance::Absolute(0.01)),
    );
    s.paper_value = json!(0.004);
    s.margin_why =
        "the issue's 'at most ~1%': the interval of the relative change must lie in ±1%".into();
    out.push(s);
    for (shift, share, paper) in [
        (
            Shift::Weak,
            cfg.weak_union_share,
            json!({"replay": 2.37, "union": 2.35}),
        ),
        (
            Shift::Strong,
            cfg.strong_union_share,
            json!({"replay (Pile)": 2.33, "union (Pile)": 2.26}),
        ),
    ] {
        let mut s = spec(
            &format!("rewarm-replay-matches-union-{}", shift.name()),
            &format!(
                "Re-warm + re-decay + {} replay matches training from scratch on the union ({} shift)",
                pct(share),
                shift.name()
            ),
            "Table 2 / Sec. 6 headline",
            "relative average loss, avg(replay) / avg(union) - 1",
            TestSpec::equivalence(EQUIV_MARGIN),
        );
        s.paper_value = paper;
        s.margin = Some(EQUIV_MARGIN);
        s.margin_why = EQUIV_WHY.into();
        out.push(s);
    }
    for (id, statement, metric, dir) in [
        (
            "peak-forgetting",
            "A higher re-warm peak η_max forgets more; constant η_min forgets least",
            "D0 loss rise over stage 1 vs stage-1 peak LR (constant η_min as the lowest level)",
            TrendDirection::Increasing,
        ),
        (
            "peak-adaptation",
            "A higher re-warm peak η_max adapts more; constant η_min adapts worst",
            "D1 loss drop over stage 1 vs stage-1 peak LR (constant η_min as the lowest level)",
            TrendDirection::Increasing,
        ),
    ] {
        let mut s = spec(
            id,
            statement,
            "Sec. 5.2, Fig. 2 (η_max 1.5e-4 / 3e-4 / 6e-4, constant η_min)",
            metric,
            TestSpec::trend(dir, Some(0.6)),
        );
        s.paper_value = json!("monotone in η_max");
        s.margin_why =
            "reproduced needs mean rho >= 0.6 over the peak levels with its interval above 0"
                .into();
        out.push(s);
    }
    let mut s = spec(
        "rewarm-same-data-rise",
        "Re-warming on the same data raises its loss transiently",
        "Sec. 5.3 (Pile → Pile, +0.1 at η_max 3e-4)",
        "highest D0 loss in stage 1 minus D0 loss at the boundary (nats)",
        TestSpec::ordering(Direction::Greater),
    );
    s.paper_value = json!(0.1);
    s.margin_why = "ordering against 0: the interval of the rise must lie above 0".into();
    out.push(s);
    let mut s = spec(
        "rewarm-same-data-below-shift",
        "The transient rise from re-warming on the same data is smaller than under a shift",
        "Sec. 5.3 vs Sec. 5.2",
        "D0 rise, same data minus weak shift at 0% replay (nats)",
        TestSpec::ordering(Direction::Less),
    );
    s.paper_value = json!("smaller");
    s.margin_why = "paired by seed; the interval of the difference must lie below 0".into();
    out.push(s);
    let mut s = spec(
        "infinite-matches-cosine",
        &format!(
            "The infinite schedule reaches loss comparable to repeated cosine ({} replay, weak shift)",
            pct(cfg.weak_union_share)
        ),
        "Sec. 7, Fig. 10",
        "relative average loss, avg(infinite) / avg(repeated cosine) - 1",
        TestSpec::equivalence(EQUIV_MARGIN),
    );
    s.paper_value = json!("comparable");
    s.margin = Some(EQUIV_MARGIN);
    s.margin_why = EQUIV_WHY.into();
    out.push(s);
    out
}

fn pct(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

/// The rows of `experiment`/`arm`, keyed by seed.
fn rows<'a>(all: &'a [Summary], experiment: &str, arm: &str) -> Vec<&'a Summary> {
    all.iter()
        .filter(|r| r.experiment == experiment && r.arm == arm)
        .collect()
}

/// Seeds (ascending) present in every list, and the rows of each list at those seeds.
fn paired<'a>(lists: &[Vec<&'a Summary>]) -> (Vec<u64>, Vec<Vec<&'a Summary>>) {
    let mut seeds: Vec<u64> = lists
        .first()
        .map(|l| l.iter().map(|r| r.seed).collect())
        .unwrap_or_default();
    seeds.sort_unstable();
    seeds.dedup();
    seeds.retain(|s| lists.iter().all(|l| l.iter().any(|r| r.seed == *s)));
    let picked = lists
        .iter()
        .map(|l| {
            seeds
                .iter()
                .map(|s| *l.iter().find(|r| r.seed == *s).expect("retained"))
                .collect()
        })
        .collect();
    (seeds, picked)
}

/// Evaluates every claim of [`specs`] on `summaries` (one per arm per seed). A claim whose arms
/// are missing or have fewer than 2 common seeds is left out (a `--only` run of some arms).
pub fn evaluate(
    cfg: &ExperimentConfig,
    summaries: &[Summary],
    scale: &str,
) -> Result<Vec<Claim>, ClaimError> {
    let mut out = Vec::new();
    let name = |arm: Arm| arm.name();
    for spec in specs(cfg) {
        let short = spec.id.trim_start_matches("continual/").to_string();
        let built: Option<(Evidence, Vec<u64>)> = match short.as_str() {
            "replay-monotone-weak" | "replay-monotone-strong" => {
                let shift = if short.ends_with("weak") {
                    Shift::Weak
                } else {
                    Shift::Strong
                };
                let lists: Vec<_> = cfg
                    .replay_shares
                    .iter()
                    .map(|&share| {
                        rows(summaries, shift.name(), &name(Arm::Replay { shift, share }))
                    })
                    .collect();
                let (seeds, rows) = paired(&lists);
                let y = (0..seeds.len())
                    .map(|i| rows.iter().map(|col| col[i].last_d0).collect())
                    .collect();
                Some((
                    Evidence::Trend {
                        x: cfg.replay_shares.clone(),
                        y_per_seed: y,
                    },
                    seeds,
                ))
            }
            "replay-removes-forgetting" | "replay-cost-on-new" => {
                let zero = rows(
                    summaries,
                    "weak",
                    &name(Arm::Replay {
                        shift: Shift::Weak,
                        share: 0.0,
                    }),
                );
                let with = rows(
                    summaries,
                    "weak",
                    &name(Arm::Replay {
                        shift: Shift::Weak,
                        share: cfg.weak_union_share,
                    }),
                );
                let (seeds, r) = paired(&[zero, with]);
                let v = (0..seeds.len())
                    .map(|i| {
                        if short == "replay-removes-forgetting" {
                            1.0 - r[1][i].forgetting() / r[0][i].forgetting()
                        } else {
                            r[1][i].last_d1 / r[0][i].last_d1 - 1.0
                        }
                    })
                    .collect();
                Some((Evidence::Samples(v), seeds))
            }
            "rewarm-replay-matches-union-weak" | "rewarm-replay-matches-union-strong" => {
                let (shift, share) = if short.ends_with("weak") {
                    (Shift::Weak, cfg.weak_union_share)
                } else {
                    (Shift::Strong, cfg.strong_union_share)
                };
                let a = rows(summaries, shift.name(), &name(Arm::Replay { shift, share }));
                let u = rows(summaries, shift.name(), &name(Arm::Union { shift }));
                let (seeds, r) = paired(&[a, u]);
                let v = (0..seeds.len())
                    .map(|i| r[0][i].average() / r[1][i].average() - 1.0)
                    .collect();
                Some((Evidence::Samples(v), seeds))
            }
            "peak-forgetting" | "peak-adaptation" => {
                let shift = Shift::Weak;
                let mut levels: Vec<(f64, String)> =
                    vec![(cfg.eta_min, name(Arm::ConstantMin { shift }))];
                levels.push((cfg.eta_max, name(Arm::Replay { shift, share: 0.0 })));
                for &peak in &cfg.peaks {
                    levels.push((peak, name(Arm::Peak { shift, peak })));
                }
                levels.sort_by(|a, b| a.0.total_cmp(&b.0));
                let lists: Vec<_> = levels
                    .iter()
                    .map(|(_, a)| rows(summaries, "weak", a))
                    .collect();
                let (seeds, r) = paired(&lists);
                let y = (0..seeds.len())
                    .map(|i| {
                        r.iter()
                            .map(|col| {
                                if short == "peak-forgetting" {
                                    col[i].forgetting()
                                } else {
                                    col[i].adaptation()
                                }
                            })
                            .collect()
                    })
                    .collect();
                Some((
                    Evidence::Trend {
                        x: levels.iter().map(|l| l.0).collect(),
                        y_per_seed: y,
                    },
                    seeds,
                ))
            }
            "rewarm-same-data-rise" => {
                let same = rows(summaries, "same-data", &name(Arm::SameData));
                let (seeds, r) = paired(&[same]);
                Some((
                    Evidence::Samples(r[0].iter().map(|x| x.rise()).collect()),
                    seeds,
                ))
            }
            "rewarm-same-data-below-shift" => {
                let same = rows(summaries, "same-data", &name(Arm::SameData));
                let shift = rows(
                    summaries,
                    "weak",
                    &name(Arm::Replay {
                        shift: Shift::Weak,
                        share: 0.0,
                    }),
                );
                let (seeds, r) = paired(&[same, shift]);
                Some((
                    Evidence::Paired {
                        a: r[0].iter().map(|x| x.rise()).collect(),
                        b: r[1].iter().map(|x| x.rise()).collect(),
                    },
                    seeds,
                ))
            }
            "infinite-matches-cosine" => {
                let share = cfg.weak_union_share;
                let inf = rows(
                    summaries,
                    "weak",
                    &name(Arm::Infinite {
                        shift: Shift::Weak,
                        share,
                    }),
                );
                let cos = rows(
                    summaries,
                    "weak",
                    &name(Arm::Replay {
                        shift: Shift::Weak,
                        share,
                    }),
                );
                let (seeds, r) = paired(&[inf, cos]);
                let v = (0..seeds.len())
                    .map(|i| r[0][i].average() / r[1][i].average() - 1.0)
                    .collect();
                Some((Evidence::Samples(v), seeds))
            }
            _ => None,
        };
        if let Some((evidence, seeds)) = built
            && seeds.len() >= 2
        {
            out.push(claimbench_claims::evaluate(
                &spec, &evidence, &seeds, scale,
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
}
