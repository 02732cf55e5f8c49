//! The one metric row (contracts.md `metrics.*` columns, minus those of the unit), and reading a
//! measurement back from its rows.
//!
//! A seeded unit stores what it measured as [`MetricRow`]s (name, index, value) in the run's metrics
//! table (`metrics.csv` / `.parquet`): a scalar has no index, a series one row per index. The
//! reproductions rebuild their measurement structs from those rows when a run is resumed or a
//! report re-rendered; [`MetricTable`] groups the rows by name and gives each lookup a checked
//! shape, so a truncated or hand-edited file fails with the metric named instead of a panic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One long-format metric value. A scalar has no `step`; a series has one row per index (a
/// training step, a layer, an expert). The run store writes these rows as they are
/// (`metrics.csv` / `.parquet`, `units/<unit>.json`), and a reproduction rebuilds its
/// measurements from the same rows ([`MetricTable`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricRow {
    /// Element type, e.g. `f32`.
    pub dtype: String,
    /// Shape, e.g. `[1024, 32000]`, or empty.
    pub shape: String,
    /// Training step or series index, if the value belongs to one.
    pub step: Option<i64>,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// Unit of the value (`nats`, `ms`, `abs`, ...), or empty.
    pub unit: String,
}

impl MetricRow {
    /// A reproduction's row: `metric` at index `step` (`None` for a scalar), dtype `f32` (what the
    /// reproductions train in), no shape, no unit.
    pub fn new(metric: impl Into<String>, step: Option<i64>, value: f64) -> Self {
        Self::full("f32", "", step, metric, value, "")
    }

    /// A row with every column given.
    pub fn full(
        dtype: impl Into<String>,
        shape: impl Into<String>,
        step: Option<i64>,
        metric: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Self {
        Self {
            dtype: dtype.into(),
            shape: shape.into(),
            step,
            metric: metric.into(),
            value,
            unit: unit.into(),
        }
    }
}

/// Metric rows that do not describe a measurement, e.g. `seed is missing`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetricsError(pub String);

/// Metric rows grouped by name, names kept in order of first appearance.
#[derive(Debug, Clone)]
pub struct MetricTable<'a> {
    order: Vec<&'a str>,
    by: BTreeMap<&'a str, Vec<(Option<i64>, f64)>>,
}

impl<'a> MetricTable<'a> {
    /// Groups `rows` by name.
    pub fn new(rows: &'a [MetricRow]) -> Self {
        let mut order = Vec::new();
        let mut by: BTreeMap<&str, Vec<(Option<i64>, f64)>> = BTreeMap::new();
        for r in rows {
            let e = by.entry(r.metric.as_str()).or_default();
            if e.is_empty() {
                order.push(r.metric.as_str());
            }
            e.push((r.step, r.value));
        }
        MetricTable { order, by }
    }

    /// The distinct names, in order of first appearance.
    pub fn names(&self) -> &[&'a str] {
        &self.order
    }

    /// Whether any row has this name.
    pub fn contains(&self, name: &str) -> bool {
        self.by.contains_key(name)
    }

    /// The value of a scalar: exactly one row, without an index.
    pub fn scalar(&self, name: &str) -> Result<f64, MetricsError> {
        match self.by.get(name).map(Vec::as_slice) {
            Some([(None, v)]) => Ok(*v),
            Some([(Some(i), _)]) => Err(MetricsError(format!(
                "{name} has index {i}; it is a scalar"
            ))),
            Some(rs) => Err(MetricsError(format!(
                "{name} has {} rows; it needs exactly 1",
                rs.len()
            ))),
            None => Err(MetricsError(format!("{name} is missing"))),
        }
    }

    /// The rows of a series: distinct indices ≥ 0, sorted by index.
    pub fn indexed(&self, name: &str) -> Result<Vec<(usize, f64)>, MetricsError> {
        let rs = self
            .by
            .get(name)
            .ok_or_else(|| MetricsError(format!("{name} is missing")))?;
        let mut out = Vec::with_capacity(rs.len());
        for &(idx, v) in rs {
            match idx {
                Some(i) if i >= 0 => out.push((i as usize, v)),
                _ => {
                    return Err(MetricsError(format!(
                        "{name} has a bad index {idx:?}; it needs an index ≥ 0"
                    )));
                }
            }
        }
        out.sort_by_key(|&(i, _)| i);
        if out.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(MetricsError(format!("{name} has a repeated index")));
        }
        Ok(out)
    }

    /// The values of a series indexed exactly `0..n`.
    pub fn dense(&self, name: &str) -> Result<Vec<f64>, MetricsError> {
        let rs = self.indexed(name)?;
        if rs.iter().enumerate().any(|(i, &(j, _))| i != j) {
            return Err(MetricsError(format!(
                "{name} has a gap: indices must be 0..{}",
                rs.len()
            )));
        }
        Ok(rs.into_iter().map(|(_, v)| v).collect())
    }
}

/// `v` as a count or seed: a whole number ≥ 0 (below 9e15, where f64 holds every integer).
pub fn whole(v: f64, name: &str) -> Result<usize, MetricsError> {
    if v >= 0.0 && v.fract() == 0.0 && v < 9e15 {
        Ok(v as usize)
    } else {
        Err(MetricsError(format!(
            "{name} is {v}; it must be a whole number ≥ 0"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<MetricRow> {
        vec![
            MetricRow::new("seed", None, 3.0),
            MetricRow::new("loss", Some(1), 0.5),
            MetricRow::new("loss", Some(0), 0.7),
            MetricRow::new("gap", Some(0), 1.0),
            MetricRow::new("gap", Some(2), 1.0),
            MetricRow::new("twice", Some(0), 1.0),
            MetricRow::new("twice", Some(0), 2.0),
        ]
    }

    #[test]
    fn lookups_check_their_shape() {
        let rows = rows();
        let t = MetricTable::new(&rows);
        assert_eq!(t.names(), ["seed", "loss", "gap", "twice"]);
        assert_eq!(t.scalar("seed"), Ok(3.0));
        assert_eq!(t.dense("loss"), Ok(vec![0.7, 0.5]));
        assert!(t.scalar("loss").unwrap_err().0.contains("2 rows"));
        assert!(t.scalar("nope").unwrap_err().0.contains("nope is missing"));
        assert!(t.dense("gap").unwrap_err().0.contains("gap"));
        assert!(t.indexed("twice").unwrap_err().0.contains("repeated"));
        assert!(t.indexed("seed").unwrap_err().0.contains("bad index"));
        assert_eq!(whole(4.0, "n"), Ok(4));
        assert!(whole(-1.0, "n").is_err() && whole(0.5, "n").is_err());
    }
}
