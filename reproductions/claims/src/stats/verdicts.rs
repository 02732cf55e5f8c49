//! The five verdict tests, their parameters ([`TestSpec`]) and the measured data they take
//! ([`Evidence`]).
//!
//! Each test is a pure function of per-seed values that returns the verdict and the numbers it was
//! reached from; [`crate::evaluate`] turns those into a [`crate::Claim`] with a human sentence.
//!
//! Common rules:
//! - **Too few seeds.** With `n < max(min_seeds, 2)` per-seed values every seeded test is
//!   `inconclusive`, whatever the data say (the numbers are still reported when `n >= 2`).
//! - **Intervals** come from [`super::mean_ci`]: t-interval for `n < 10`, bootstrap for `n >= 10`.
//! - **Boundaries.** "Entirely on one side of 0" is strict (`hi < 0`, `lo > 0`); an interval that
//!   touches 0 contains it. "Within a band" is inclusive.
//! - **`partially`** is used by two tests only:
//!   - magnitude: the interval overlaps the tolerance band without lying inside it, **and** the
//!     point estimate (the mean) is inside the band — our estimate agrees with the paper but the
//!     data cannot rule out a value outside the tolerance. With the mean outside the band (and the
//!     interval still overlapping it) the verdict is `inconclusive`.
//!   - trend: the interval of the mean Spearman rho excludes 0 on the claimed side (the direction
//!     is reproduced) but `|mean rho|` is below the spec's `min_abs_rho` (the strength is not).
//!
//!   A right sign with an interval that contains 0 is `inconclusive`, never `partially`: it is
//!   no evidence for the claim.

use serde::{Deserialize, Serialize};
use statrs::distribution::ContinuousCDF;

use super::{
    DEFAULT_ALPHA, MeanSummary, check_alpha, check_finite, mean_ci_unchecked, mean_unchecked,
    sd_unchecked, spearman_named, student,
};
use crate::claim::{TestKind, Verdict};
use crate::error::ClaimError;

/// The claimed sign of `mean(a - b)` in an ordering test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// `a < b` (e.g. arm a reaches a lower loss): the claimed side is `a - b < 0`.
    Less,
    /// `a > b`: the claimed side is `a - b > 0`.
    Greater,
}

impl Direction {
    /// `<` or `>`.
    pub fn symbol(self) -> &'static str {
        match self {
            Direction::Less => "<",
            Direction::Greater => ">",
        }
    }
}

/// The claimed direction of a trend of the metric `y` in the covariate `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendDirection {
    /// `y` grows with `x`: claimed `rho > 0`.
    Increasing,
    /// `y` falls with `x`: claimed `rho < 0`.
    Decreasing,
}

impl TrendDirection {
    /// `increasing` or `decreasing`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendDirection::Increasing => "increasing",
            TrendDirection::Decreasing => "decreasing",
        }
    }
}

/// Half-width of a magnitude test's tolerance band. Serialized as `{"absolute": 0.5}` or
/// `{"relative": 0.05}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    /// Band `target ± tol`.
    Absolute(f64),
    /// Band `target ± tol * |target|` (0.05 = 5%).
    Relative(f64),
}

impl Tolerance {
    /// The absolute half-width: `tol` or `tol * |target|`.
    pub fn half_width(self, target: f64) -> f64 {
        match self {
            Tolerance::Absolute(t) => t,
            Tolerance::Relative(r) => r * target.abs(),
        }
    }

    fn value(self) -> f64 {
        match self {
            Tolerance::Absolute(t) | Tolerance::Relative(t) => t,
        }
    }
}

fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}

/// A claim's test and its parameters. Serialized internally tagged,
/// e.g. `{"kind": "ordering", "direction": "less", "alpha": 0.05}`; `alpha` defaults to 0.05.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TestSpec {
    /// `a < b` or `a > b` on paired per-seed values ([`ordering_test`]).
    Ordering {
        /// Claimed sign of `a - b`.
        direction: Direction,
        /// Two-sided interval level `1 - alpha`.
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
    /// The per-seed value (or paired difference) is `target` within a tolerance
    /// ([`magnitude_test`]).
    Magnitude {
        /// The value to reproduce (usually the paper's, or its proxy-scale counterpart).
        target: f64,
        /// Band half-width.
        tolerance: Tolerance,
        /// Two-sided interval level `1 - alpha`.
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
    /// `a` and `b` are equivalent within `± margin` ([`tost`]).
    Equivalence {
        /// Equivalence margin `delta > 0`.
        margin: f64,
        /// TOST level: each one-sided test at `alpha`, i.e. a `1 - 2 alpha` interval.
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
    /// The metric rises or falls with an ordered covariate ([`trend_test`]).
    Trend {
        /// Claimed direction.
        direction: TrendDirection,
        /// Optional minimum strength `|mean rho|` for `reproduced` (in [0, 1]).
        #[serde(default)]
        min_abs_rho: Option<f64>,
        /// Two-sided interval level `1 - alpha`.
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
    /// A deterministic value equals `expected` within `tolerance` ([`exact_test`]).
    Exact {
        /// The paper's value.
        expected: f64,
        /// Absolute tolerance, default 0.
        #[serde(default)]
        tolerance: f64,
    },
}

impl TestSpec {
    /// Ordering test with the default alpha.
    pub fn ordering(direction: Direction) -> Self {
        TestSpec::Ordering {
            direction,
            alpha: DEFAULT_ALPHA,
        }
    }

    /// Magnitude test with the default alpha.
    pub fn magnitude(target: f64, tolerance: Tolerance) -> Self {
        TestSpec::Magnitude {
            target,
            tolerance,
            alpha: DEFAULT_ALPHA,
        }
    }

    /// Equivalence test with the default alpha.
    pub fn equivalence(margin: f64) -> Self {
        TestSpec::Equivalence {
            margin,
            alpha: DEFAULT_ALPHA,
        }
    }

    /// Trend test with the default alpha.
    pub fn trend(direction: TrendDirection, min_abs_rho: Option<f64>) -> Self {
        TestSpec::Trend {
            direction,
            min_abs_rho,
            alpha: DEFAULT_ALPHA,
        }
    }

    /// Exact test.
    pub fn exact(expected: f64, tolerance: f64) -> Self {
        TestSpec::Exact {
            expected,
            tolerance,
        }
    }

    /// The [`TestKind`] written to `claims.json`.
    pub fn kind(&self) -> TestKind {
        match self {
            TestSpec::Ordering { .. } => TestKind::Ordering,
            TestSpec::Magnitude { .. } => TestKind::Magnitude,
            TestSpec::Equivalence { .. } => TestKind::Equivalence,
            TestSpec::Trend { .. } => TestKind::Trend,
            TestSpec::Exact { .. } => TestKind::Exact,
        }
    }

    /// The margin this test uses, as reported in `claims.json`'s `margin`: the magnitude band's
    /// absolute half-width, the equivalence margin, the trend's `min_abs_rho`, the exact
    /// tolerance; `None` for ordering (and for a trend without `min_abs_rho`).
    pub fn margin(&self) -> Option<f64> {
        match *self {
            TestSpec::Ordering { .. } => None,
            TestSpec::Magnitude {
                target, tolerance, ..
            } => Some(tolerance.half_width(target)),
            TestSpec::Equivalence { margin, .. } => Some(margin),
            TestSpec::Trend { min_abs_rho, .. } => min_abs_rho,
            TestSpec::Exact { tolerance, .. } => Some(tolerance),
        }
    }

    /// Checks the parameters: alpha in (0, 0.5), finite targets, tolerances >= 0, equivalence
    /// margin > 0, `min_abs_rho` in [0, 1].
    pub fn validate(&self) -> Result<(), ClaimError> {
        match *self {
            TestSpec::Ordering { alpha, .. } => check_alpha(alpha),
            TestSpec::Magnitude {
                target,
                tolerance,
                alpha,
            } => {
                check_alpha(alpha)?;
                check_target("magnitude target", target)?;
                check_tolerance(tolerance)
            }
            TestSpec::Equivalence { margin, alpha } => {
                check_alpha(alpha)?;
                check_equivalence_margin(margin)
            }
            TestSpec::Trend {
                min_abs_rho, alpha, ..
            } => {
                check_alpha(alpha)?;
                check_min_abs_rho(min_abs_rho)
            }
            TestSpec::Exact {
                expected,
                tolerance,
            } => {
                check_target("exact expected value", expected)?;
                check_non_negative("exact tolerance", tolerance)
            }
        }
    }
}

fn check_target(name: &'static str, x: f64) -> Result<(), ClaimError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(ClaimError::InvalidParameter {
            name,
            reason: format!("must be finite, got {x}"),
        })
    }
}

fn check_non_negative(what: &'static str, x: f64) -> Result<(), ClaimError> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(ClaimError::BadMargin {
            what,
            requirement: "non-negative",
            value: x,
        })
    }
}

fn check_tolerance(tolerance: Tolerance) -> Result<(), ClaimError> {
    let what = match tolerance {
        Tolerance::Absolute(_) => "absolute tolerance",
        Tolerance::Relative(_) => "relative tolerance",
    };
    check_non_negative(what, tolerance.value())
}

fn check_equivalence_margin(margin: f64) -> Result<(), ClaimError> {
    if margin.is_finite() && margin > 0.0 {
        Ok(())
    } else {
        Err(ClaimError::BadMargin {
            what: "equivalence margin",
            requirement: "positive",
            value: margin,
        })
    }
}

fn check_min_abs_rho(min_abs_rho: Option<f64>) -> Result<(), ClaimError> {
    match min_abs_rho {
        Some(r) if !(0.0..=1.0).contains(&r) => Err(ClaimError::InvalidParameter {
            name: "min_abs_rho",
            reason: format!("must be in [0, 1], got {r}"),
        }),
        _ => Ok(()),
    }
}

/// The measured data a test needs. Serialized externally tagged, e.g.
/// `{"paired": {"a": [...], "b": [...]}}`, `{"samples": [...]}`, `{"exact": 46702792704}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Per-seed values of two arms; `a[i]` and `b[i]` come from the same seed. Tests use
    /// `d = a - b`. Accepted by ordering, magnitude and equivalence.
    Paired {
        /// Arm a, one value per seed.
        a: Vec<f64>,
        /// Arm b, one value per seed.
        b: Vec<f64>,
    },
    /// One value per seed. Ordering compares it with 0, magnitude with the target, equivalence
    /// treats it as already-computed paired differences.
    Samples(Vec<f64>),
    /// Covariate levels `x` (e.g. replay share) and, per seed, the metric at each level
    /// (`y_per_seed[s][j]` at `x[j]`). Accepted by trend.
    Trend {
        /// The ordered covariate.
        x: Vec<f64>,
        /// One row per seed, each as long as `x`.
        y_per_seed: Vec<Vec<f64>>,
    },
    /// One deterministic value (e.g. a parameter count). Accepted by exact.
    Exact(f64),
}

impl Evidence {
    /// `paired`, `samples`, `trend` or `exact`.
    pub fn name(&self) -> &'static str {
        match self {
            Evidence::Paired { .. } => "paired",
            Evidence::Samples(_) => "samples",
            Evidence::Trend { .. } => "trend",
            Evidence::Exact(_) => "exact",
        }
    }

    /// Number of per-seed values (`None` for exact evidence, which has no seeds).
    pub fn n_seeds(&self) -> Option<usize> {
        match self {
            Evidence::Paired { a, .. } => Some(a.len()),
            Evidence::Samples(v) => Some(v.len()),
            Evidence::Trend { y_per_seed, .. } => Some(y_per_seed.len()),
            Evidence::Exact(_) => None,
        }
    }
}

fn seeds_needed(min_seeds: usize) -> usize {
    min_seeds.max(2)
}

fn summary_if_possible(xs: &[f64], alpha: f64, seed: u64) -> Option<MeanSummary> {
    (xs.len() >= 2).then(|| mean_ci_unchecked(xs, alpha, seed))
}

/// One-sided p-value of the claim `mean(xs) > edge` (`greater`) or `mean(xs) < edge`, by a
/// Student t test (`df = n - 1`, `t = (mean - edge) / (sd / sqrt(n))`): `P(T >= t)` or
/// `P(T <= t)`. With `sd = 0`, 0 when the claim holds strictly and 1 otherwise. `None` when
/// `n < 2`. The claim is the alternative; `H0` is the other side of the edge, boundary included.
pub fn one_sided_p(xs: &[f64], edge: f64, greater: bool) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let m = mean_unchecked(xs);
    let se = sd_unchecked(xs) / n.sqrt();
    if se > 0.0 {
        let t = (m - edge) / se;
        let dist = student(n - 1.0);
        Some(if greater { dist.sf(t) } else { dist.cdf(t) })
    } else {
        let holds = if greater { m > edge } else { m < edge };
        Some(if holds { 0.0 } else { 1.0 })
    }
}

/// Result of [`ordering_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderingResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Number of per-seed differences.
    pub n: usize,
    /// `max(min_seeds, 2)`: fewer seeds give `inconclusive`.
    pub seeds_needed: usize,
    /// Mean difference `mean(d)`.
    pub mean: f64,
    /// Mean with its `1 - alpha` interval (`None` when `n < 2`).
    pub summary: Option<MeanSummary>,
    /// One-sided p-value of the claimed side against 0 ([`one_sided_p`]; `None` when `n < 2`).
    pub p_value: Option<f64>,
}

/// Ordering test on per-seed differences `d = a - b`.
///
/// With the `1 - alpha` interval `[lo, hi]` of `mean(d)` ([`super::mean_ci`]) and the claimed side
/// `d < 0` ([`Direction::Less`]) or `d > 0` ([`Direction::Greater`]):
/// `reproduced` when the interval lies strictly on the claimed side of 0, `not-reproduced` when
/// strictly on the other side, `inconclusive` when it contains 0 or when
/// `n < max(min_seeds, 2)`.
pub fn ordering_test(
    d: &[f64],
    direction: Direction,
    alpha: f64,
    min_seeds: usize,
    bootstrap_seed: u64,
) -> Result<OrderingResult, ClaimError> {
    check_alpha(alpha)?;
    check_finite("differences", d)?;
    let n = d.len();
    let needed = seeds_needed(min_seeds);
    let summary = summary_if_possible(d, alpha, bootstrap_seed);
    let verdict = match &summary {
        Some(s) if n >= needed => {
            let [lo, hi] = s.ci;
            let (claimed, opposite) = match direction {
                Direction::Less => (hi < 0.0, lo > 0.0),
                Direction::Greater => (lo > 0.0, hi < 0.0),
            };
            if claimed {
                Verdict::Reproduced
            } else if opposite {
                Verdict::NotReproduced
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    };
    Ok(OrderingResult {
        verdict,
        n,
        seeds_needed: needed,
        mean: mean_unchecked(d),
        summary,
        p_value: one_sided_p(d, 0.0, direction == Direction::Greater),
    })
}

/// Result of [`magnitude_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MagnitudeResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Number of per-seed values.
    pub n: usize,
    /// `max(min_seeds, 2)`.
    pub seeds_needed: usize,
    /// Mean of the per-seed values.
    pub mean: f64,
    /// Tolerance band `[target - h, target + h]`, `h` = [`Tolerance::half_width`].
    pub band: [f64; 2],
    /// Mean with its `1 - alpha` interval (`None` when `n < 2`).
    pub summary: Option<MeanSummary>,
    /// p-value that the mean lies inside the band: the larger of the one-sided p-values against
    /// each edge (`mean > lo` and `mean < hi`, an intersection–union test; [`one_sided_p`]).
    pub p_value: Option<f64>,
}

/// Magnitude test: is the mean of the per-seed values `target` within a tolerance?
///
/// Band `B = [target - h, target + h]` with `h = tol` (absolute) or `h = tol * |target|`
/// (relative); `[lo, hi]` the `1 - alpha` interval of the mean:
/// - `reproduced`: `[lo, hi]` ⊆ `B` (inclusive);
/// - `not-reproduced`: `[lo, hi]` ∩ `B` = ∅;
/// - `partially`: the interval overlaps `B`, is not inside it, and the mean is in `B`;
/// - `inconclusive`: the interval overlaps `B` but the mean is outside it, or
///   `n < max(min_seeds, 2)`.
pub fn magnitude_test(
    xs: &[f64],
    target: f64,
    tolerance: Tolerance,
    alpha: f64,
    min_seeds: usize,
    bootstrap_seed: u64,
) -> Result<MagnitudeResult, ClaimError> {
    check_alpha(alpha)?;
    check_target("magnitude target", target)?;
    check_tolerance(tolerance)?;
    check_finite("samples", xs)?;
    let n = xs.len();
    let needed = seeds_needed(min_seeds);
    let h = tolerance.half_width(target);
    let band = [target - h, target + h];
    let mean = mean_unchecked(xs);
    let summary = summary_if_possible(xs, alpha, bootstrap_seed);
    let verdict = match &summary {
        Some(s) if n >= needed => {
            let [lo, hi] = s.ci;
            if lo >= band[0] && hi <= band[1] {
                Verdict::Reproduced
            } else if hi < band[0] || lo > band[1] {
                Verdict::NotReproduced
            } else if mean >= band[0] && mean <= band[1] {
                Verdict::Partially
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    };
    let p_value = one_sided_p(xs, band[0], true)
        .zip(one_sided_p(xs, band[1], false))
        .map(|(a, b)| a.max(b));
    Ok(MagnitudeResult {
        verdict,
        n,
        seeds_needed: needed,
        mean,
        band,
        summary,
        p_value,
    })
}

/// Result of [`tost`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TostResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Number of per-seed differences.
    pub n: usize,
    /// `max(min_seeds, 2)`.
    pub seeds_needed: usize,
    /// Mean difference.
    pub mean: f64,
    /// Equivalence margin `delta`.
    pub margin: f64,
    /// p-value of `H0: mu <= -delta` vs `mu > -delta` (`None` when `n < 2`).
    pub p_lower: Option<f64>,
    /// p-value of `H0: mu >= delta` vs `mu < delta` (`None` when `n < 2`).
    pub p_upper: Option<f64>,
    /// Mean with the `1 - 2 alpha` interval, the one equivalence is decided on.
    pub equivalence: Option<MeanSummary>,
    /// Mean with the `1 - alpha` interval, the one a clear difference is decided on.
    pub difference: Option<MeanSummary>,
}

impl TostResult {
    /// The TOST p-value `max(p_lower, p_upper)`.
    pub fn p_value(&self) -> Option<f64> {
        Some(self.p_lower?.max(self.p_upper?))
    }
}

/// Equivalence by two one-sided tests (TOST) on per-seed differences `d`, margin `delta > 0`.
///
/// p-values (Student t, `df = n - 1`, `se = sd / sqrt(n)`):
/// `p_lower = P(T >= (mean + delta) / se)` for `H0: mu <= -delta`, and
/// `p_upper = P(T <= (mean - delta) / se)` for `H0: mu >= delta`. (With `se = 0` they are 0 or 1.)
///
/// Verdict, from intervals of the mean ([`super::mean_ci`]: t for `n < 10`, bootstrap for
/// `n >= 10`):
/// - `reproduced` (equivalent): the `1 - 2 alpha` interval lies strictly inside `(-delta, delta)`
///   (for the t-interval this is exactly `max(p_lower, p_upper) < alpha`);
/// - `not-reproduced` (a clear difference): the `1 - alpha` interval lies strictly outside
///   `[-delta, delta]`;
/// - `inconclusive` otherwise, or when `n < max(min_seeds, 2)`.
///
/// With `n >= 10` the verdict follows the bootstrap intervals; the p-values stay the t-based ones.
pub fn tost(
    d: &[f64],
    margin: f64,
    alpha: f64,
    min_seeds: usize,
    bootstrap_seed: u64,
) -> Result<TostResult, ClaimError> {
    check_alpha(alpha)?;
    check_equivalence_margin(margin)?;
    check_finite("differences", d)?;
    let n = d.len();
    let needed = seeds_needed(min_seeds);
    let mean = mean_unchecked(d);
    let equivalence = summary_if_possible(d, 2.0 * alpha, bootstrap_seed);
    let difference = summary_if_possible(d, alpha, bootstrap_seed);
    let (p_lower, p_upper) = match &difference {
        Some(s) => {
            let se = s.sd / (n as f64).sqrt();
            if se > 0.0 {
                let t = student(n as f64 - 1.0);
                (
                    Some(t.sf((mean + margin) / se)),
                    Some(t.cdf((mean - margin) / se)),
                )
            } else {
                let p = |reject: bool| if reject { 0.0 } else { 1.0 };
                (Some(p(mean > -margin)), Some(p(mean < margin)))
            }
        }
        None => (None, None),
    };
    let verdict = match (&equivalence, &difference) {
        (Some(eq), Some(diff)) if n >= needed => {
            if eq.ci[0] > -margin && eq.ci[1] < margin {
                Verdict::Reproduced
            } else if diff.ci[0] > margin || diff.ci[1] < -margin {
                Verdict::NotReproduced
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    };
    Ok(TostResult {
        verdict,
        n,
        seeds_needed: needed,
        mean,
        margin,
        p_lower,
        p_upper,
        equivalence,
        difference,
    })
}

/// Result of [`trend_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Number of seeds.
    pub n: usize,
    /// `max(min_seeds, 2)`.
    pub seeds_needed: usize,
    /// Spearman rho of each seed (`None` where that seed's metric is constant).
    pub rho_per_seed: Vec<Option<f64>>,
    /// Mean of the per-seed rhos (`None` when any is undefined).
    pub mean_rho: Option<f64>,
    /// Spearman rho of all `(x[j], y_per_seed[s][j])` pairs pooled over seeds (`None` when all
    /// metrics are one constant).
    pub pooled_rho: Option<f64>,
    /// Mean rho with its `1 - alpha` interval, clipped to [-1, 1] (`None` when undefined or
    /// `n < 2`).
    pub summary: Option<MeanSummary>,
    /// The spec's minimum strength, if any.
    pub min_abs_rho: Option<f64>,
    /// Index of the first seed whose metric is constant (rho undefined), if any.
    pub constant_seed: Option<usize>,
    /// One-sided p-value of the per-seed rhos against 0 in the claimed direction
    /// ([`one_sided_p`]); `None` when a rho is undefined or `n < 2`.
    pub p_value: Option<f64>,
}

/// Trend test: does the metric rise (fall) with the ordered covariate `x`?
///
/// Per seed `s`: `rho_s = spearman(x, y_per_seed[s])` (average ranks for ties). Across seeds:
/// `mean rho` with its `1 - alpha` interval `[lo, hi]` ([`super::mean_ci`], clipped to [-1, 1]).
/// Also reported: the pooled rho over all `(x, y)` pairs of all seeds (not used for the verdict).
///
/// For [`TrendDirection::Increasing`] (mirror for decreasing):
/// - `reproduced`: `lo > 0` and, if `min_abs_rho` is set, `mean rho >= min_abs_rho`;
/// - `partially`: `lo > 0` but `mean rho < min_abs_rho` (right direction, weaker than claimed);
/// - `not-reproduced`: `hi < 0`;
/// - `inconclusive`: the interval contains 0, some seed's metric is constant (rho undefined), or
///   `n < max(min_seeds, 2)`.
///
/// Errors: `x` constant, shorter than 2 or non-finite; a row of `y_per_seed` of another length
/// or non-finite; no seeds.
pub fn trend_test(
    x: &[f64],
    y_per_seed: &[Vec<f64>],
    direction: TrendDirection,
    min_abs_rho: Option<f64>,
    alpha: f64,
    min_seeds: usize,
    bootstrap_seed: u64,
) -> Result<TrendResult, ClaimError> {
    check_alpha(alpha)?;
    check_min_abs_rho(min_abs_rho)?;
    check_finite("x", x)?;
    if y_per_seed.is_empty() {
        return Err(ClaimError::Empty {
            what: "y_per_seed".into(),
        });
    }
    let mut rho_per_seed = Vec::with_capacity(y_per_seed.len());
    let mut constant_seed = None;
    for (s, y) in y_per_seed.iter().enumerate() {
        match spearman_named("x", x, &format!("y of seed {s}"), y) {
            Ok(rho) => rho_per_seed.push(Some(rho)),
            Err(ClaimError::Constant { what }) if what != "x" => {
                constant_seed.get_or_insert(s);
                rho_per_seed.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    let pooled_x: Vec<f64> = y_per_seed.iter().flat_map(|_| x.iter().copied()).collect();
    let pooled_y: Vec<f64> = y_per_seed.iter().flatten().copied().collect();
    let pooled_rho = spearman_named("x", &pooled_x, "y", &pooled_y).ok();

    let n = y_per_seed.len();
    let needed = seeds_needed(min_seeds);
    let rhos: Option<Vec<f64>> = rho_per_seed.iter().copied().collect();
    let mean_rho = rhos.as_deref().map(mean_unchecked);
    let summary = rhos
        .as_deref()
        .and_then(|r| summary_if_possible(r, alpha, bootstrap_seed))
        .map(|mut s| {
            s.ci = [s.ci[0].clamp(-1.0, 1.0), s.ci[1].clamp(-1.0, 1.0)];
            s
        });
    let verdict = match &summary {
        Some(s) if n >= needed => {
            // Work in the claimed orientation: positive = the claimed direction.
            let sign = match direction {
                TrendDirection::Increasing => 1.0,
                TrendDirection::Decreasing => -1.0,
            };
            let (lo, hi) = if sign > 0.0 {
                (s.ci[0], s.ci[1])
            } else {
                (-s.ci[1], -s.ci[0])
            };
            if lo > 0.0 {
                match min_abs_rho {
                    Some(min) if sign * s.mean < min => Verdict::Partially,
                    _ => Verdict::Reproduced,
                }
            } else if hi < 0.0 {
                Verdict::NotReproduced
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    };
    let p_value = rhos
        .as_deref()
        .and_then(|r| one_sided_p(r, 0.0, direction == TrendDirection::Increasing));
    Ok(TrendResult {
        verdict,
        n,
        seeds_needed: needed,
        rho_per_seed,
        mean_rho,
        pooled_rho,
        summary,
        min_abs_rho,
        constant_seed,
        p_value,
    })
}

/// Result of [`exact_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Our value.
    pub ours: f64,
    /// The paper's value.
    pub expected: f64,
    /// Absolute tolerance.
    pub tolerance: f64,
    /// `|ours - expected|`.
    pub abs_diff: f64,
}

/// Exact test of a deterministic value (no seeds): `reproduced` when
/// `|ours - expected| <= tolerance`, else `not-reproduced`.
///
/// Integers are exact in `f64` up to 2^53 (≈ 9.0e15), enough for parameter counts.
pub fn exact_test(ours: f64, expected: f64, tolerance: f64) -> Result<ExactResult, ClaimError> {
    check_finite("our value", &[ours])?;
    check_target("exact expected value", expected)?;
    check_non_negative("exact tolerance", tolerance)?;
    let abs_diff = (ours - expected).abs();
    Ok(ExactResult {
        verdict: if abs_diff <= tolerance {
            Verdict::Reproduced
        } else {
            Verdict::NotReproduced
        },
        ours,
        expected,
        tolerance,
        abs_diff,
    })
}

#[cfg(test)]
mod tests;
