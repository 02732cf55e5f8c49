//! The statistics behind claim verdicts and benchmark speedups. All functions are pure: same input
//! (and same bootstrap seed), same output.
//!
//! Conventions (binding, from `contracts.md` "Statistics"):
//! - Arms are paired by seed; a claim is tested on the per-seed differences `d[i] = a[i] - b[i]`.
//! - A confidence interval of a mean is a two-sided Student t-interval when `n < 10`
//!   ([`BOOTSTRAP_MIN_SEEDS`]) and a percentile bootstrap of the mean when `n >= 10`
//!   ([`mean_ci`]).
//! - `alpha` is the significance level, `0 < alpha < 0.5` (default [`DEFAULT_ALPHA`] = 0.05); a
//!   two-sided interval has level `1 - alpha`.
//! - Sample sd uses the `n - 1` denominator.
//!
//! The verdict tests themselves (ordering, magnitude, equivalence, trend, exact) and their
//! parameter and evidence types are in the [`verdicts`] submodule, re-exported here.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::ClaimError;

pub mod verdicts;
pub use verdicts::*;

/// Default significance level: 0.05, i.e. 95% two-sided intervals.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// From this many per-seed values on, [`mean_ci`] uses the percentile bootstrap instead of the
/// t-interval (contracts.md: "bootstrap with >= 10 seeds").
pub const BOOTSTRAP_MIN_SEEDS: usize = 10;
/// Bootstrap resamples used by [`mean_ci`].
pub const DEFAULT_RESAMPLES: usize = 10_000;
/// Bootstrap seed used by [`crate::evaluate`], so that a verdict is a function of the data alone.
pub const DEFAULT_BOOTSTRAP_SEED: u64 = 0xC1A1_B5EE_D000_0001;

/// Checks that `xs` is non-empty and every value is finite.
///
/// Errors: [`ClaimError::Empty`] (`"{what} is empty"`) and [`ClaimError::NonFinite`]
/// (`"sample 3 of {what} is NaN"`, 0-based index).
pub fn check_finite(what: &str, xs: &[f64]) -> Result<(), ClaimError> {
    if xs.is_empty() {
        return Err(ClaimError::Empty { what: what.into() });
    }
    for (index, &x) in xs.iter().enumerate() {
        if !x.is_finite() {
            return Err(ClaimError::NonFinite {
                what: what.into(),
                index,
                kind: if x.is_nan() { "NaN" } else { "infinite" },
            });
        }
    }
    Ok(())
}

/// Checks `0 < alpha < 0.5` (the equivalence test uses a `1 - 2 alpha` interval, so larger alphas
/// make no sense anywhere in this crate).
pub fn check_alpha(alpha: f64) -> Result<(), ClaimError> {
    if alpha > 0.0 && alpha < 0.5 {
        Ok(())
    } else {
        Err(ClaimError::BadAlpha(alpha))
    }
}

fn too_few(what: &str, min: usize, got: usize) -> Result<(), ClaimError> {
    if got < min {
        Err(ClaimError::TooFew {
            what: what.into(),
            min,
            got,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn mean_unchecked(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

pub(crate) fn sd_unchecked(xs: &[f64]) -> f64 {
    let m = mean_unchecked(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() as f64 - 1.0)).sqrt()
}

/// Arithmetic mean: `mean = (1/n) * sum_i x[i]`. Errors on empty or non-finite input.
pub fn mean(xs: &[f64]) -> Result<f64, ClaimError> {
    check_finite("samples", xs)?;
    Ok(mean_unchecked(xs))
}

/// Sample standard deviation: `sd = sqrt( sum_i (x[i] - mean)^2 / (n - 1) )`. Needs `n >= 2`.
pub fn sample_sd(xs: &[f64]) -> Result<f64, ClaimError> {
    check_finite("samples", xs)?;
    too_few("sample sd", 2, xs.len())?;
    Ok(sd_unchecked(xs))
}

/// Paired differences `d[i] = a[i] - b[i]` (arm `a` minus arm `b`, same seed `i`).
///
/// Errors name the arms: `"sample 3 of arm b is NaN"`, `"length mismatch: arm a has 5 values but
/// arm b has 4"`, `"arm a is empty"`.
pub fn paired_differences(a: &[f64], b: &[f64]) -> Result<Vec<f64>, ClaimError> {
    check_finite("arm a", a)?;
    check_finite("arm b", b)?;
    if a.len() != b.len() {
        return Err(ClaimError::LengthMismatch {
            left: "arm a".into(),
            left_len: a.len(),
            right: "arm b".into(),
            right_len: b.len(),
        });
    }
    Ok(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

/// Quantile of the standard Student t distribution with `df` degrees of freedom:
/// `t_{p, df} = F^{-1}(p)` (statrs `StudentsT(0, 1, df)`). E.g. `t_{0.975, 4} = 2.7764`.
pub fn t_quantile(p: f64, df: f64) -> Result<f64, ClaimError> {
    if !(p > 0.0 && p < 1.0) {
        return Err(ClaimError::InvalidParameter {
            name: "probability",
            reason: format!("must be in (0, 1), got {p}"),
        });
    }
    let t = StudentsT::new(0.0, 1.0, df).map_err(|e| ClaimError::InvalidParameter {
        name: "degrees of freedom",
        reason: format!("{df}: {e}"),
    })?;
    Ok(t.inverse_cdf(p))
}

fn student(df: f64) -> StudentsT {
    // df = n - 1 >= 1 everywhere this is called, which StudentsT accepts.
    StudentsT::new(0.0, 1.0, df).expect("df >= 1 is a valid Student t")
}

pub(crate) fn t_interval_unchecked(xs: &[f64], alpha: f64) -> [f64; 2] {
    let n = xs.len() as f64;
    let m = mean_unchecked(xs);
    let se = sd_unchecked(xs) / n.sqrt();
    let t = student(n - 1.0).inverse_cdf(1.0 - alpha / 2.0);
    [m - t * se, m + t * se]
}

/// Two-sided Student t confidence interval of the mean at level `1 - alpha`:
/// `mean ± t_{1 - alpha/2, n - 1} * sd / sqrt(n)`. Needs `n >= 2`.
///
/// Example: `d = [1, 2, 3, 4, 5]`: mean 3, sd 1.5811, `t_{0.975, 4} = 2.7764`,
/// CI `[1.0368, 4.9632]`.
pub fn t_interval(xs: &[f64], alpha: f64) -> Result<[f64; 2], ClaimError> {
    check_alpha(alpha)?;
    check_finite("samples", xs)?;
    too_few("t-interval", 2, xs.len())?;
    Ok(t_interval_unchecked(xs, alpha))
}

fn bootstrap_means(xs: &[f64], resamples: usize, seed: u64) -> Vec<f64> {
    let n = xs.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| xs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    means
}

pub(crate) fn bootstrap_ci_unchecked(
    xs: &[f64],
    alpha: f64,
    resamples: usize,
    seed: u64,
) -> [f64; 2] {
    let means = bootstrap_means(xs, resamples, seed);
    [
        percentile_sorted(&means, 100.0 * alpha / 2.0),
        percentile_sorted(&means, 100.0 * (1.0 - alpha / 2.0)),
    ]
}

pub(crate) fn check_resamples(resamples: usize) -> Result<(), ClaimError> {
    if resamples == 0 {
        return Err(ClaimError::InvalidParameter {
            name: "resamples",
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Percentile bootstrap confidence interval of the mean at level `1 - alpha`.
///
/// Draws `resamples` resamples of size `n` with replacement from `xs` (`StdRng` seeded with
/// `seed`, so the result is deterministic), computes each resample's mean `m*_k`, and returns
/// `[P_{100 alpha/2}(m*), P_{100 (1 - alpha/2)}(m*)]` with [`percentile`]'s linear interpolation.
pub fn bootstrap_mean_ci(
    xs: &[f64],
    alpha: f64,
    resamples: usize,
    seed: u64,
) -> Result<[f64; 2], ClaimError> {
    check_alpha(alpha)?;
    check_finite("samples", xs)?;
    check_resamples(resamples)?;
    Ok(bootstrap_ci_unchecked(xs, alpha, resamples, seed))
}

/// How a confidence interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum CiMethod {
    /// Student t-interval, `mean ± t_{1-alpha/2, n-1} sd/sqrt(n)`.
    TInterval,
    /// Percentile bootstrap of the mean.
    Bootstrap {
        /// Number of resamples.
        resamples: usize,
        /// `StdRng` seed.
        seed: u64,
    },
}

impl CiMethod {
    /// A short human name, e.g. `t-interval` or `bootstrap interval (10000 resamples)`.
    pub fn describe(&self) -> String {
        match self {
            CiMethod::TInterval => "t-interval".into(),
            CiMethod::Bootstrap { resamples, .. } => {
                format!("bootstrap interval ({resamples} resamples)")
            }
        }
    }
}

/// Mean of per-seed values with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanSummary {
    /// Number of values (seeds).
    pub n: usize,
    /// `(1/n) sum x[i]`.
    pub mean: f64,
    /// Sample sd (`n - 1` denominator).
    pub sd: f64,
    /// `[lo, hi]` at level `level`.
    pub ci: [f64; 2],
    /// Confidence level `1 - alpha`.
    pub level: f64,
    /// How `ci` was computed.
    pub method: CiMethod,
}

pub(crate) fn mean_ci_unchecked(xs: &[f64], alpha: f64, seed: u64) -> MeanSummary {
    let (ci, method) = if xs.len() < BOOTSTRAP_MIN_SEEDS {
        (t_interval_unchecked(xs, alpha), CiMethod::TInterval)
    } else {
        (
            bootstrap_ci_unchecked(xs, alpha, DEFAULT_RESAMPLES, seed),
            CiMethod::Bootstrap {
                resamples: DEFAULT_RESAMPLES,
                seed,
            },
        )
    };
    MeanSummary {
        n: xs.len(),
        mean: mean_unchecked(xs),
        sd: sd_unchecked(xs),
        ci,
        level: 1.0 - alpha,
        method,
    }
}

/// Mean with the contract's confidence interval at level `1 - alpha`: the t-interval
/// ([`t_interval`]) when `n < 10`, else the percentile bootstrap of the mean
/// ([`bootstrap_mean_ci`], [`DEFAULT_RESAMPLES`] resamples, `StdRng` seeded with
/// `bootstrap_seed`). Needs `n >= 2`.
pub fn mean_ci(xs: &[f64], alpha: f64, bootstrap_seed: u64) -> Result<MeanSummary, ClaimError> {
    check_alpha(alpha)?;
    check_finite("samples", xs)?;
    too_few("confidence interval", 2, xs.len())?;
    Ok(mean_ci_unchecked(xs, alpha, bootstrap_seed))
}

/// [`mean_ci`] of the paired differences `d[i] = a[i] - b[i]`.
pub fn paired_summary(
    a: &[f64],
    b: &[f64],
    alpha: f64,
    bootstrap_seed: u64,
) -> Result<MeanSummary, ClaimError> {
    let d = paired_differences(a, b)?;
    mean_ci(&d, alpha, bootstrap_seed)
}

/// Percentile of already sorted, non-empty data, `p` in [0, 100], linear interpolation.
pub(crate) fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// The `p`-th percentile (`0 <= p <= 100`) with linear interpolation between order statistics
/// (numpy's default): sort to `x_(0) <= ... <= x_(n-1)`, `h = (n - 1) p / 100`,
/// `P_p = x_(floor h) + (h - floor h) (x_(floor h + 1) - x_(floor h))`.
pub fn percentile(xs: &[f64], p: f64) -> Result<f64, ClaimError> {
    check_finite("samples", xs)?;
    if !(0.0..=100.0).contains(&p) {
        return Err(ClaimError::InvalidParameter {
            name: "percentile",
            reason: format!("must be in [0, 100], got {p}"),
        });
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(percentile_sorted(&sorted, p))
}

/// Median, the 50th [`percentile`]: the middle value, or the mean of the two middle values.
pub fn median(xs: &[f64]) -> Result<f64, ClaimError> {
    percentile(xs, 50.0)
}

pub(crate) fn average_ranks_unchecked(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]] == xs[order[start]] {
            end += 1;
        }
        // positions start..end (0-based) share the 1-based rank ((start+1) + end) / 2
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// 1-based ranks with ties given the average of the positions they span, e.g.
/// `[10, 20, 20, 30] -> [1, 2.5, 2.5, 4]`.
pub fn average_ranks(xs: &[f64]) -> Result<Vec<f64>, ClaimError> {
    check_finite("samples", xs)?;
    Ok(average_ranks_unchecked(xs))
}

/// Pearson correlation of finite, equally long, non-constant sequences (checked by the caller):
/// `r = sum (x - mx)(y - my) / sqrt( sum (x - mx)^2 * sum (y - my)^2 )`, clamped to [-1, 1].
/// Returns `Err(which)` (0 for x, 1 for y) when a sequence is constant.
fn pearson_unchecked(x: &[f64], y: &[f64]) -> Result<f64, usize> {
    let mx = mean_unchecked(x);
    let my = mean_unchecked(y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 {
        return Err(0);
    }
    if syy == 0.0 {
        return Err(1);
    }
    Ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

fn check_pair(x_name: &str, x: &[f64], y_name: &str, y: &[f64]) -> Result<(), ClaimError> {
    check_finite(x_name, x)?;
    check_finite(y_name, y)?;
    if x.len() != y.len() {
        return Err(ClaimError::LengthMismatch {
            left: x_name.into(),
            left_len: x.len(),
            right: y_name.into(),
            right_len: y.len(),
        });
    }
    too_few("correlation", 2, x.len())
}

/// Pearson correlation
/// `r = sum_i (x[i] - mean x)(y[i] - mean y) / sqrt( sum_i (x[i] - mean x)^2 sum_i (y[i] - mean y)^2 )`.
/// Needs `n >= 2` equally long, finite, non-constant sequences.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64, ClaimError> {
    check_pair("x", x, "y", y)?;
    pearson_unchecked(x, y).map_err(|which| ClaimError::Constant {
        what: if which == 0 { "x" } else { "y" }.into(),
    })
}

/// Spearman rank correlation `rho = pearson(rank(x), rank(y))` with [`average_ranks`] for ties
/// (the exact formula with ties, not `1 - 6 sum d^2 / (n (n^2 - 1))`).
///
/// Examples: a strictly increasing relation gives 1, a decreasing one -1, and
/// `x = [1, 2, 3, 4], y = [1, 2, 2, 3]` gives `4.5 / sqrt(5 * 4.5) = 0.9487`.
/// Errors when a sequence is constant (rho undefined) or on bad input.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64, ClaimError> {
    spearman_named("x", x, "y", y)
}

pub(crate) fn spearman_named(
    x_name: &str,
    x: &[f64],
    y_name: &str,
    y: &[f64],
) -> Result<f64, ClaimError> {
    check_pair(x_name, x, y_name, y)?;
    let rx = average_ranks_unchecked(x);
    let ry = average_ranks_unchecked(y);
    pearson_unchecked(&rx, &ry).map_err(|which| ClaimError::Constant {
        what: if which == 0 { x_name } else { y_name }.into(),
    })
}

/// Speedup of our implementation over a baseline from paired benchmark rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedupEstimate {
    /// Median over rounds of `baseline_ms[i] / ours_ms[i]` (> 1: ours is faster).
    pub median: f64,
    /// 95% percentile bootstrap interval of that median.
    pub ci: [f64; 2],
    /// Number of paired rounds.
    pub rounds: usize,
}

pub(crate) fn check_positive_times(what: &str, xs: &[f64]) -> Result<(), ClaimError> {
    check_finite(what, xs)?;
    for (index, &value) in xs.iter().enumerate() {
        if value <= 0.0 {
            return Err(ClaimError::NonPositive {
                what: what.into(),
                index,
                value,
            });
        }
    }
    Ok(())
}

/// Speedup from interleaved A/B benchmark rounds (contracts.md, `benchmarks.json`).
///
/// Per round `r_i = baseline_ms[i] / ours_ms[i]` (rounds are paired, so the ratio is taken within
/// a round). Point estimate: `median(r)`. CI: 95% percentile bootstrap of the median — `resamples`
/// resamples of the `n` ratios with replacement (`StdRng` seeded with `seed`, deterministic),
/// `[P_2.5, P_97.5]` of the resampled medians.
///
/// Errors (never panics) on empty input, a length mismatch, NaN/infinite or non-positive times,
/// and `resamples == 0`.
pub fn paired_speedup(
    ours_ms: &[f64],
    baseline_ms: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<SpeedupEstimate, ClaimError> {
    check_positive_times("ours_ms", ours_ms)?;
    check_positive_times("baseline_ms", baseline_ms)?;
    if ours_ms.len() != baseline_ms.len() {
        return Err(ClaimError::LengthMismatch {
            left: "ours_ms".into(),
            left_len: ours_ms.len(),
            right: "baseline_ms".into(),
            right_len: baseline_ms.len(),
        });
    }
    check_resamples(resamples)?;
    let ratios: Vec<f64> = baseline_ms
        .iter()
        .zip(ours_ms)
        .map(|(b, o)| b / o)
        .collect();
    let n = ratios.len();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let point = percentile_sorted(&sorted, 50.0);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut buf = vec![0.0; n];
    let mut medians: Vec<f64> = (0..resamples)
        .map(|_| {
            for slot in buf.iter_mut() {
                *slot = ratios[rng.random_range(0..n)];
            }
            buf.sort_by(f64::total_cmp);
            percentile_sorted(&buf, 50.0)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Ok(SpeedupEstimate {
        median: point,
        ci: [
            percentile_sorted(&medians, 2.5),
            percentile_sorted(&medians, 97.5),
        ],
        rounds: n,
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `n` normal samples N(mean, sd^2) by Box–Muller, seeded.
    pub fn normal(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                mean + sd * z
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::normal;
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_interval_matches_hand_computation() {
        let d = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!(close(mean(&d).unwrap(), 3.0, 1e-12));
        assert!(close(sample_sd(&d).unwrap(), 1.581_138_8, 1e-6));
        assert!(close(t_quantile(0.975, 4.0).unwrap(), 2.776_445, 1e-5));
        let [lo, hi] = t_interval(&d, 0.05).unwrap();
        assert!(close(lo, 1.0368, 1e-4), "lo = {lo}");
        assert!(close(hi, 4.9632, 1e-4), "hi = {hi}");
        let s = mean_ci(&d, 0.05, 1).unwrap();
        assert_eq!(s.method, CiMethod::TInterval);
        assert_eq!(s.ci, [lo, hi]);
        assert!(close(s.level, 0.95, 1e-12));
    }

    #[test]
    fn mean_ci_switches_to_a_deterministic_bootstrap_at_ten() {
        let d = normal(7, 12, 1.0, 0.2);
        let s = mean_ci(&d, 0.05, 42).unwrap();
        assert_eq!(
            s.method,
            CiMethod::Bootstrap {
                resamples: DEFAULT_RESAMPLES,
                seed: 42
            }
        );
        assert_eq!(s.ci, mean_ci(&d, 0.05, 42).unwrap().ci);
        assert_ne!(s.ci, mean_ci(&d, 0.05, 43).unwrap().ci);
        // close to the t-interval for a normal sample
        let t = t_interval(&d, 0.05).unwrap();
        assert!(s.ci[0] < s.mean && s.mean < s.ci[1]);
        assert!(close(s.ci[0], t[0], 0.05) && close(s.ci[1], t[1], 0.05));
        assert!(mean_ci(&d[..9], 0.05, 42).unwrap().method == CiMethod::TInterval);
    }

    #[test]
    fn percentile_and_median_interpolate_linearly() {
        assert_eq!(median(&[3.0, 1.0, 2.0]).unwrap(), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]).unwrap(), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0).unwrap(), 1.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 100.0).unwrap(), 5.0);
        assert!(close(
            percentile(&[1.0, 2.0, 3.0, 4.0], 25.0).unwrap(),
            1.75,
            1e-12
        ));
        assert_eq!(median(&[7.0]).unwrap(), 7.0);
        assert!(matches!(
            percentile(&[1.0], 101.0),
            Err(ClaimError::InvalidParameter { .. })
        ));
        assert!(matches!(median(&[]), Err(ClaimError::Empty { .. })));
    }

    #[test]
    fn spearman_known_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!(close(
            spearman(&x, &[2.0, 4.0, 8.0, 16.0, 32.0]).unwrap(),
            1.0,
            1e-12
        ));
        assert!(close(
            spearman(&x, &[5.0, 3.0, 1.0, 0.0, -9.0]).unwrap(),
            -1.0,
            1e-12
        ));
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert!(close(rho, 0.9487, 1e-4), "rho = {rho}");
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 30.0]).unwrap(),
            vec![1.0, 2.5, 2.5, 4.0]
        );
        assert_eq!(
            spearman(&x, &[1.0; 5]).unwrap_err().to_string(),
            "y is constant, so its rank correlation is undefined"
        );
        assert!(matches!(
            spearman(&x, &[1.0, 2.0]),
            Err(ClaimError::LengthMismatch { .. })
        ));
        assert!(close(
            pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap(),
            0.9934,
            1e-4
        ));
    }

    #[test]
    fn paired_differences_reports_the_bad_sample() {
        let err =
            paired_differences(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, f64::NAN]).unwrap_err();
        assert_eq!(err.to_string(), "sample 3 of arm b is NaN");
        let err = paired_differences(&[1.0, f64::INFINITY], &[1.0, 2.0]).unwrap_err();
        assert_eq!(err.to_string(), "sample 1 of arm a is infinite");
        let err = paired_differences(&[1.0, 2.0], &[1.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch: arm a has 2 values but arm b has 1"
        );
        assert_eq!(
            paired_differences(&[], &[]).unwrap_err().to_string(),
            "arm a is empty"
        );
        assert_eq!(
            paired_differences(&[3.0, 5.0], &[1.0, 1.5]).unwrap(),
            vec![2.0, 3.5]
        );
    }

    #[test]
    fn bad_alpha_and_too_few_are_errors() {
        assert_eq!(
            t_interval(&[1.0, 2.0], 0.7).unwrap_err().to_string(),
            "alpha must be in (0, 0.5), got 0.7"
        );
        assert!(matches!(
            t_interval(&[1.0, 2.0], f64::NAN),
            Err(ClaimError::BadAlpha(_))
        ));
        assert_eq!(
            t_interval(&[1.0], 0.05).unwrap_err().to_string(),
            "t-interval needs at least 2 values, got 1"
        );
        assert!(bootstrap_mean_ci(&[1.0, 2.0], 0.05, 0, 1).is_err());
        assert!(t_quantile(1.0, 3.0).is_err());
        assert!(t_quantile(0.5, 0.0).is_err());
    }

    #[test]
    fn speedup_of_threefold_rounds() {
        let ours = normal(3, 30, 1.0, 0.01);
        let noise = normal(4, 30, 0.0, 0.01);
        let baseline: Vec<f64> = ours.iter().zip(&noise).map(|(o, e)| 3.0 * o + e).collect();
        let s = paired_speedup(&ours, &baseline, 10_000, 9).unwrap();
        assert_eq!(s.rounds, 30);
        assert!(close(s.median, 3.0, 0.02), "median {}", s.median);
        assert!(s.ci[0] <= 3.0 && 3.0 <= s.ci[1], "ci {:?}", s.ci);
        assert!(s.ci[0] <= s.median && s.median <= s.ci[1]);
        assert!(s.ci[1] - s.ci[0] < 0.05, "ci {:?}", s.ci);
        assert_eq!(s, paired_speedup(&ours, &baseline, 10_000, 9).unwrap());
        // exact ratios: a degenerate interval
        let exact = paired_speedup(&[1.0, 2.0, 4.0], &[3.0, 6.0, 12.0], 100, 0).unwrap();
        assert_eq!(exact.median, 3.0);
        assert_eq!(exact.ci, [3.0, 3.0]);
    }

    #[test]
    fn speedup_rejects_bad_input() {
        assert_eq!(
            paired_speedup(&[], &[], 100, 0).unwrap_err().to_string(),
            "ours_ms is empty"
        );
        assert_eq!(
            paired_speedup(&[1.0, 2.0], &[1.0], 100, 0)
                .unwrap_err()
                .to_string(),
            "length mismatch: ours_ms has 2 values but baseline_ms has 1"
        );
        assert_eq!(
            paired_speedup(&[1.0, -2.0], &[1.0, 1.0], 100, 0)
                .unwrap_err()
                .to_string(),
            "sample 1 of ours_ms is not positive (-2)"
        );
        assert!(matches!(
            paired_speedup(&[1.0, 2.0], &[0.0, 1.0], 100, 0),
            Err(ClaimError::NonPositive { .. })
        ));
        assert!(matches!(
            paired_speedup(&[1.0], &[f64::NAN], 100, 0),
            Err(ClaimError::NonFinite { .. })
        ));
        assert!(matches!(
            paired_speedup(&[1.0], &[1.0], 0, 0),
            Err(ClaimError::InvalidParameter { .. })
        ));
    }
}
