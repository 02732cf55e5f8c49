//! Claim kinds, the band a claim states before the run, and the false-discovery control over a
//! run's reproduction claims (contracts.md, `claims.json` version 2).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Claim, ClaimSpec, Verdict, fmt_num, pct};
use crate::stats::{Direction, Evidence, TestSpec, TrendDirection};

/// What a claim is evidence of (contracts.md, version 2). Serialized lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimKind {
    /// An experiment whose outcome could have gone either way: evidence that the paper's
    /// finding holds. Only these enter the false-discovery family ([`apply_fdr`]).
    #[default]
    Reproduction,
    /// An exact or by-construction result (parameter counts, identities): it shows the code
    /// computes what the paper defines, not that a finding holds.
    Check,
    /// An arm or data set where the effect is known to be absent (negative) or planted
    /// (positive): it shows the test has power and does not fire on noise.
    Control,
}

impl ClaimKind {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Reproduction => "reproduction",
            ClaimKind::Check => "check",
            ClaimKind::Control => "control",
        }
    }
}

impl fmt::Display for ClaimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effect band a claim states before the run (contracts.md, version 2): the estimate that
/// counts as reproduced, what counts as contradicted, and the rule the band comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// The estimate the band is about (the quantity of `our_value`), e.g. `mean(a - b)`.
    pub measure: String,
    /// `[lo, hi]` of that estimate that counts as reproduced; `null` is unbounded.
    pub reproduced: [Option<f64>; 2],
    /// What counts as contradicted, in words with the numbers.
    pub contradicted: String,
    /// Where the band comes from: the paper's value with a stated fraction or a noise scale from
    /// tuning seeds, or, for a sign, why only the sign carries over.
    pub rule: String,
}

impl Band {
    /// True when `x` lies in [`Band::reproduced`] (inclusive; open ends are unbounded).
    pub fn contains(&self, x: f64) -> bool {
        x.is_finite()
            && self.reproduced[0].is_none_or(|lo| x >= lo)
            && self.reproduced[1].is_none_or(|hi| x <= hi)
    }

    /// `[lo, hi]` as text, `-inf`/`+inf` for open ends.
    pub fn interval_text(&self) -> String {
        let end = |v: Option<f64>, inf: &str| v.map_or(inf.to_string(), fmt_num);
        format!(
            "[{}, {}]",
            end(self.reproduced[0], "-inf"),
            end(self.reproduced[1], "+inf")
        )
    }
}

/// The false-discovery control of a run (contracts.md, version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fdr {
    /// `BH`: Benjamini–Hochberg step-up.
    pub method: String,
    /// The level q is compared with.
    pub alpha: f64,
    /// Number of reproduction claims in the family.
    pub family_size: usize,
    /// The papers whose reproduction claims form the family (a run made with `--only` has a
    /// smaller family than a full one).
    #[serde(default)]
    pub papers: Vec<String>,
}

/// The band of a test: ordering `(0, +inf)` / `(-inf, 0)` for `mean(a - b)`; magnitude the
/// tolerance band; equivalence `[-margin, margin]`; trend `[min_abs_rho, 1]` (or its mirror)
/// for the mean Spearman rho; exact `expected ± tolerance`.
pub(super) fn band_of(test: &TestSpec, rule: &str) -> Band {
    let (measure, reproduced, contradicted) = match *test {
        TestSpec::Ordering { direction, alpha } => {
            let lvl = pct(1.0 - alpha);
            match direction {
                Direction::Less => (
                    "mean(a - b) over seeds",
                    [None, Some(0.0)],
                    format!("the {lvl} interval of mean(a - b) lies entirely above 0"),
                ),
                Direction::Greater => (
                    "mean(a - b) over seeds",
                    [Some(0.0), None],
                    format!("the {lvl} interval of mean(a - b) lies entirely below 0"),
                ),
            }
        }
        TestSpec::Magnitude {
            target,
            tolerance,
            alpha,
        } => {
            let h = tolerance.half_width(target);
            (
                "mean over seeds",
                [Some(target - h), Some(target + h)],
                format!(
                    "the {} interval of the mean lies entirely outside [{}, {}]",
                    pct(1.0 - alpha),
                    fmt_num(target - h),
                    fmt_num(target + h)
                ),
            )
        }
        TestSpec::Equivalence { margin, alpha } => (
            "mean(a - b) over seeds",
            [Some(-margin), Some(margin)],
            format!(
                "the {} interval of mean(a - b) lies entirely outside [-{m}, {m}]",
                pct(1.0 - alpha),
                m = fmt_num(margin)
            ),
        ),
        TestSpec::Trend {
            direction,
            min_abs_rho,
            alpha,
        } => {
            let min = min_abs_rho.unwrap_or(0.0);
            let lvl = pct(1.0 - alpha);
            match direction {
                TrendDirection::Increasing => (
                    "mean Spearman rho over seeds",
                    [Some(min), Some(1.0)],
                    format!("the {lvl} interval of the mean rho lies entirely below 0"),
                ),
                TrendDirection::Decreasing => (
                    "mean Spearman rho over seeds",
                    [Some(-1.0), Some(-min)],
                    format!("the {lvl} interval of the mean rho lies entirely above 0"),
                ),
            }
        }
        TestSpec::Exact {
            expected,
            tolerance,
        } => (
            "the computed value",
            [Some(expected - tolerance), Some(expected + tolerance)],
            format!("|value - {}| > {}", fmt_num(expected), fmt_num(tolerance)),
        ),
    };
    Band {
        measure: measure.into(),
        reproduced,
        contradicted,
        rule: rule.into(),
    }
}

/// The spec's band, its measure named for the evidence: one value per seed is `mean value`,
/// paired arms `mean(a - b)`.
pub(super) fn band_for(spec: &ClaimSpec, evidence: &Evidence) -> Band {
    let mut b = spec.band();
    if matches!(evidence, Evidence::Samples(_)) {
        b.measure = b.measure.replace("mean(a - b)", "mean value");
        b.contradicted = b.contradicted.replace("mean(a - b)", "the mean value");
    }
    b
}

/// False-discovery control over the reproduction claims of a run: Benjamini–Hochberg at
/// `alpha` ([`crate::regression::benjamini_hochberg`]).
///
/// The family is every claim of kind [`ClaimKind::Reproduction`]; one without a p-value (its
/// test undefined, e.g. too few seeds) counts with p = 1 and gets no q. Then a reproduction
/// stays `reproduced` only when `q <= alpha` and its estimate (`our_value`) lies in its band;
/// otherwise it becomes `inconclusive`, and `details` says why with the numbers. Checks and
/// controls keep `q = null` and their verdicts. Returns the family's description.
pub fn apply_fdr(claims: &mut [Claim], alpha: f64) -> Fdr {
    let family: Vec<usize> = (0..claims.len())
        .filter(|&i| claims[i].kind == ClaimKind::Reproduction)
        .collect();
    let ps: Vec<f64> = family
        .iter()
        .map(|&i| claims[i].p_value.unwrap_or(1.0).clamp(0.0, 1.0))
        .collect();
    let qs = crate::regression::benjamini_hochberg(&ps);
    let n = family.len();
    let mut papers: Vec<String> = Vec::new();
    for (&i, &q) in family.iter().zip(&qs) {
        let c = &mut claims[i];
        if !papers.contains(&c.paper) {
            papers.push(c.paper.clone());
        }
        c.q_value = c.p_value.map(|_| q);
        if c.verdict != Verdict::Reproduced {
            continue;
        }
        let estimate = c.our_value.as_f64();
        let in_band = match (&c.band, estimate) {
            (Some(b), Some(x)) => b.contains(x),
            (None, Some(_)) => true,
            _ => false,
        };
        let why = match c.q_value {
            Some(q) if q > alpha => Some(format!(
                "; Benjamini–Hochberg over {n} reproduction claims gives q = {} > {}",
                fmt_num(q),
                fmt_num(alpha)
            )),
            None => Some("; no p-value, so it cannot pass the false-discovery control".into()),
            _ if !in_band => Some(format!(
                "; the estimate {} lies outside the band {}",
                estimate.map_or("null".into(), fmt_num),
                c.band.as_ref().map_or(String::new(), Band::interval_text)
            )),
            _ => None,
        };
        if let Some(why) = why {
            c.verdict = Verdict::Inconclusive;
            c.details += &format!("{why}: {}", Verdict::Inconclusive);
        } else if let Some(q) = c.q_value {
            c.details += &format!(
                "; q = {} <= {} after Benjamini–Hochberg over {n} reproduction claims",
                fmt_num(q),
                fmt_num(alpha)
            );
        }
    }
    papers.sort();
    Fdr {
        method: "BH".into(),
        alpha,
        family_size: n,
        papers,
    }
}
