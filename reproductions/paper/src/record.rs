//! What a finished unit stored (`units/<unit>.json`, contracts.md), and the small summaries a
//! paper's claims and report sections read from its records.

use serde::{Deserialize, Serialize};

use crate::bench::BenchEntry;
use crate::metrics::MetricRow;

/// Outcome of one unit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UnitStatus {
    /// Ran and passed its checks.
    Passed,
    /// Its output failed a reference check: a correctness failure (exit 2).
    CorrectnessFailure,
    /// It stopped with an error (a panic or a device error).
    Error,
}

/// `units/<unit>.json`: everything one finished unit measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Layout version.
    pub schema_version: u32,
    /// Unit id, e.g. `kernels/token-logprob/train/seed-0`.
    pub unit_id: String,
    /// Paper id, or `kernels`.
    pub paper: String,
    /// Experiment within the paper or kernel.
    pub experiment: String,
    /// Arm of the experiment.
    pub arm: String,
    /// Seed, for seeded units.
    pub seed: Option<u64>,
    /// Backend it ran on.
    pub backend: String,
    /// Device it ran on.
    pub device: String,
    /// Outcome.
    pub status: UnitStatus,
    /// What went wrong, or a one-line summary.
    pub message: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Metrics, long format.
    pub metrics: Vec<MetricRow>,
    /// Benchmark comparisons measured by this unit.
    pub benchmarks: Vec<BenchEntry>,
    /// Files it stored for the units that depend on it (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactRef>,
}

/// An artifact a record lists: `artifacts/<unit>/<name>`, its length and SHA-256 (lower-case
/// hex), checked whenever it is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// File name, one segment of the id grammar.
    pub name: String,
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, 64 lower-case hex digits.
    pub sha256: String,
}

impl UnitRecord {
    /// A passed record of unit `unit_id` holding `metrics`, as a finished unit stores it
    /// (backend `flex`, device `cpu`, 0 s, no benchmarks or artifacts): for tests that judge a
    /// paper's claims on synthetic rows through `Paper::claims`, the real evidence code.
    pub fn synthetic(
        unit_id: &str,
        paper: &str,
        experiment: &str,
        arm: &str,
        seed: Option<u64>,
        metrics: Vec<MetricRow>,
    ) -> Self {
        UnitRecord {
            schema_version: 1,
            unit_id: unit_id.into(),
            paper: paper.into(),
            experiment: experiment.into(),
            arm: arm.into(),
            seed,
            backend: "flex".into(),
            device: "cpu".into(),
            status: UnitStatus::Passed,
            message: "synthetic".into(),
            seconds: 0.0,
            metrics,
            benchmarks: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// The value of the step-less metric `name`, if recorded.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.metric == name && m.step.is_none())
            .map(|m| m.value)
    }

    /// Whether the unit passed.
    pub fn passed(&self) -> bool {
        self.status == UnitStatus::Passed
    }
}

/// The mean curve of several runs of one arm, each `(steps, values)`: at every step of the first
/// run, the mean of the runs' values at that position (runs that stop earlier are left out
/// there). Empty without runs.
pub fn mean_over_runs(runs: &[(&[usize], &[f64])]) -> Vec<(f64, f64)> {
    let Some((steps, _)) = runs.first() else {
        return Vec::new();
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let v: Vec<f64> = runs.iter().filter_map(|(_, c)| c.get(i).copied()).collect();
            (s as f64, v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// The measurements of the passed units of `paper`'s `experiment` in `records`, each rebuilt
/// from its record (its metric rows, arm, seed) by `parse`. A unit that does not parse is left
/// out, with a warning naming it pushed to `warnings` (its claims are then judged on the other
/// seeds).
pub fn passed_measurements<M, E: std::fmt::Display>(
    records: &[UnitRecord],
    paper: &str,
    experiment: &str,
    parse: impl Fn(&UnitRecord) -> Result<M, E>,
    warnings: &mut Vec<String>,
) -> Vec<M> {
    records
        .iter()
        .filter(|u| u.paper == paper && u.experiment == experiment && u.passed())
        .filter_map(|u| match parse(u) {
            Ok(m) => Some(m),
            Err(e) => {
                warnings.push(format!(
                    "{}: metrics unreadable ({e}); left out of the claims",
                    u.unit_id
                ));
                None
            }
        })
        .collect()
}

/// Mean and 95% t-interval half-width of `xs` (NaN half-width below two values); `None` if empty.
pub fn mean_pm(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    match claimbench_claims::stats::mean_ci(xs, claimbench_claims::DEFAULT_ALPHA, 1) {
        Ok(s) => Some((s.mean, 0.5 * (s.ci[1] - s.ci[0]))),
        Err(_) => Some((xs.iter().sum::<f64>() / xs.len() as f64, f64::NAN)),
    }
}

/// `mean ± half-width` with 3 decimals, `–` for none.
pub fn fmt_pm(v: Option<(f64, f64)>) -> String {
    match v {
        None => "–".into(),
        Some((m, h)) if h.is_finite() => format!("{m:.3} ± {h:.3}"),
        Some((m, _)) => format!("{m:.3}"),
    }
}

/// The seed-mean of `metric` per logged step over `units`.
pub fn mean_curve(units: &[&UnitRecord], metric: &str) -> Vec<(f64, f64)> {
    let mut by_step: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for u in units {
        for m in u.metrics.iter().filter(|m| m.metric == metric) {
            if let Some(s) = m.step {
                by_step.entry(s).or_default().push(m.value);
            }
        }
    }
    by_step
        .into_iter()
        .map(|(s, v)| (s as f64, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_over_runs_averages_by_position_and_skips_short_runs() {
        let (s1, c1) = ([0usize, 10, 20], [3.0, 2.0, 1.0]);
        let (s2, c2) = ([0usize, 10], [5.0, 4.0]);
        let m = mean_over_runs(&[(&s1, &c1), (&s2, &c2)]);
        assert_eq!(m, vec![(0.0, 4.0), (10.0, 3.0), (20.0, 1.0)]);
        assert!(mean_over_runs(&[]).is_empty());
    }

    #[test]
    fn passed_measurements_skips_other_units_and_warns_on_bad_rows() {
        let ok = UnitRecord::synthetic("p/e/seed-0", "p", "e", "a", Some(0), Vec::new());
        let bad = UnitRecord::synthetic("p/e/seed-1", "p", "e", "a", Some(1), Vec::new());
        let other = UnitRecord::synthetic("p/x/seed-0", "p", "x", "a", Some(0), Vec::new());
        let mut warnings = Vec::new();
        let got = passed_measurements(
            &[ok, bad, other],
            "p",
            "e",
            |u| match u.seed {
                Some(0) => Ok(0u64),
                _ => Err("no rows"),
            },
            &mut warnings,
        );
        assert_eq!(got, vec![0]);
        assert_eq!(
            warnings,
            vec!["p/e/seed-1: metrics unreadable (no rows); left out of the claims"]
        );
    }
}
