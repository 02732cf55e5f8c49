//! What the experiments measure ([`SeedMeasurements`], [`Tuning`]) and their conversion to and
//! from metric rows `(name, index, value)`.
//!
//! Row names (`{exp}` ∈ `capacity`, `control`, `adapt`; `{method}` ∈ `ft`, `lora`, `dora`;
//! `r{rank}` with rank 0 for FT):
//! - `seed`, `pretrain_nmse` (no index);
//! - `{exp}/{method}/r{rank}/nmse`, `…/lr` (no index), `…/curve` (index = step);
//! - `analysis/{method}/r{rank}/correlation`, `…/slope` (no index), `…/delta_d`, `…/delta_m`,
//!   `…/layer`, `…/step` (index = point number);
//! - tuning: `tune/seed`, `tune/lr_grid` (index = position), `tune/{exp}/{method}/r{rank}/lr`
//!   (no index), `…/score` (index = position in the grid; absent where that learning rate
//!   diverged).

use serde::{Deserialize, Serialize};

use claimbench_paper::metrics::{MetricTable, whole};

use crate::error::Error;
use crate::layer::Method;

/// One metric row: name, index (a step, a point, a grid position; `None` for a scalar), value.
pub use claimbench_paper::metrics::MetricRow;

/// The three training experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Experiment {
    /// Single layer, target = per-column rescaling of `W0` plus a rank-`k` direction change.
    Capacity,
    /// Single layer, target = `W0` + rank `k` (no rescaling).
    Control,
    /// The pretrained MLP adapted to task B.
    Adapt,
}

impl Experiment {
    /// All three, in order.
    pub const ALL: [Experiment; 3] = [Experiment::Capacity, Experiment::Control, Experiment::Adapt];

    /// `capacity`, `control`, `adapt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Experiment::Capacity => "capacity",
            Experiment::Control => "control",
            Experiment::Adapt => "adapt",
        }
    }

    /// The inverse of [`Experiment::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Experiment::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The methods this experiment compares (FT only in `adapt`).
    pub fn methods(self) -> &'static [Method] {
        match self {
            Experiment::Adapt => &[Method::Full, Method::Lora, Method::Dora],
            _ => &[Method::Lora, Method::Dora],
        }
    }
}

/// One trained arm of one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmMeasurement {
    /// The experiment.
    pub experiment: Experiment,
    /// The method.
    pub method: Method,
    /// Adapter rank (0 for FT).
    pub rank: usize,
    /// The peak learning rate used (chosen on the tuning seeds).
    pub lr: f64,
    /// Final held-out MSE / held-out MSE of the base network (1 = no progress).
    pub nmse: f64,
    /// Steps of the learning curve: 0, every `checkpoint_every`, and the last.
    pub curve_steps: Vec<usize>,
    /// Held-out normalised MSE at those steps.
    pub curve: Vec<f64>,
}

/// The magnitude/direction analysis of one method (paper Sec. 3.2, Fig. 2): the `(ΔD, ΔM)`
/// point of every layer at every checkpoint after step 0 of the `adapt` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisMeasurement {
    /// The method.
    pub method: Method,
    /// Adapter rank (0 for FT).
    pub rank: usize,
    /// Layer of each point.
    pub layer: Vec<usize>,
    /// Step of each point.
    pub step: Vec<usize>,
    /// `ΔD = Σ_n (1 − cos(dir_t[:, n], W0[:, n])) / k`.
    pub delta_d: Vec<f64>,
    /// `ΔM = Σ_n |m_t,n − m_0,n| / k`.
    pub delta_m: Vec<f64>,
    /// Pearson correlation of `(ΔD, ΔM)` over the points (NaN when either is constant).
    pub correlation: f64,
    /// Least-squares slope of `ΔM` on `ΔD` (NaN when `ΔD` is constant).
    pub slope: f64,
}

/// Everything one seed measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedMeasurements {
    /// The seed.
    pub seed: u64,
    /// Held-out MSE of the MLP after pretraining on task A / that of its initialisation.
    pub pretrain_nmse: f64,
    /// Every arm of every experiment.
    pub arms: Vec<ArmMeasurement>,
    /// FT, LoRA and DoRA at `analysis_rank` in `adapt`.
    pub analysis: Vec<AnalysisMeasurement>,
}

impl SeedMeasurements {
    /// The arm `(experiment, method, rank)` (rank 0 for FT), if measured.
    pub fn arm(
        &self,
        experiment: Experiment,
        method: Method,
        rank: usize,
    ) -> Option<&ArmMeasurement> {
        self.arms
            .iter()
            .find(|a| a.experiment == experiment && a.method == method && a.rank == rank)
    }

    /// The analysis of `method`, if measured.
    pub fn analysis_of(&self, method: Method) -> Option<&AnalysisMeasurement> {
        self.analysis.iter().find(|a| a.method == method)
    }

    /// The measurements as metric rows (see the [module docs](self)).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows: Vec<MetricRow> = vec![
            MetricRow::new("seed", None, self.seed as f64),
            MetricRow::new("pretrain_nmse", None, self.pretrain_nmse),
        ];
        for a in &self.arms {
            let p = arm_prefix(a.experiment.as_str(), a.method, a.rank);
            rows.push(MetricRow::new(format!("{p}/nmse"), None, a.nmse));
            rows.push(MetricRow::new(format!("{p}/lr"), None, a.lr));
            for (&s, &v) in a.curve_steps.iter().zip(&a.curve) {
                rows.push(MetricRow::new(format!("{p}/curve"), Some(s as i64), v));
            }
        }
        for a in &self.analysis {
            let p = arm_prefix("analysis", a.method, a.rank);
            rows.push(MetricRow::new(
                format!("{p}/correlation"),
                None,
                a.correlation,
            ));
            rows.push(MetricRow::new(format!("{p}/slope"), None, a.slope));
            for i in 0..a.delta_d.len() {
                let i64i = Some(i as i64);
                rows.push(MetricRow::new(format!("{p}/delta_d"), i64i, a.delta_d[i]));
                rows.push(MetricRow::new(format!("{p}/delta_m"), i64i, a.delta_m[i]));
                rows.push(MetricRow::new(
                    format!("{p}/layer"),
                    i64i,
                    a.layer[i] as f64,
                ));
                rows.push(MetricRow::new(format!("{p}/step"), i64i, a.step[i] as f64));
            }
        }
        rows
    }

    /// The inverse of [`SeedMeasurements::metrics`] (arms in the order of their first row).
    /// Errors: [`Error::Metrics`] naming the bad row.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let g = MetricTable::new(rows);
        let mut m = SeedMeasurements {
            seed: whole(g.scalar("seed")?, "seed")? as u64,
            pretrain_nmse: g.scalar("pretrain_nmse")?,
            arms: Vec::new(),
            analysis: Vec::new(),
        };
        for prefix in prefixes(&g) {
            let (head, method, rank) = parse_prefix(&prefix)?;
            if head == "analysis" {
                let ints = |field: &str| -> Result<Vec<usize>, Error> {
                    g.dense(&format!("{prefix}/{field}"))?
                        .into_iter()
                        .map(|v| whole(v, field).map_err(Error::from))
                        .collect()
                };
                m.analysis.push(AnalysisMeasurement {
                    method,
                    rank,
                    layer: ints("layer")?,
                    step: ints("step")?,
                    delta_d: g.dense(&format!("{prefix}/delta_d"))?,
                    delta_m: g.dense(&format!("{prefix}/delta_m"))?,
                    correlation: g.scalar(&format!("{prefix}/correlation"))?,
                    slope: g.scalar(&format!("{prefix}/slope"))?,
                });
            } else {
                let experiment = Experiment::parse(head).ok_or_else(|| {
                    Error::Metrics(format!("{prefix}: unknown experiment {head}"))
                })?;
                let curve = g.indexed(&format!("{prefix}/curve"))?;
                m.arms.push(ArmMeasurement {
                    experiment,
                    method,
                    rank,
                    lr: g.scalar(&format!("{prefix}/lr"))?,
                    nmse: g.scalar(&format!("{prefix}/nmse"))?,
                    curve_steps: curve.iter().map(|&(s, _)| s).collect(),
                    curve: curve.iter().map(|&(_, v)| v).collect(),
                });
            }
        }
        Ok(m)
    }
}

/// The learning rate chosen for one `(experiment, method, rank)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrChoice {
    /// The experiment.
    pub experiment: Experiment,
    /// The method.
    pub method: Method,
    /// Adapter rank (0 for FT).
    pub rank: usize,
    /// The chosen peak learning rate: the lowest score.
    pub lr: f64,
    /// Per learning rate of the grid, the mean final normalised MSE over the tuning seeds
    /// (`None`: diverged on some tuning seed).
    pub scores: Vec<Option<f64>>,
}

/// The learning-rate sweep's result (from the tuning seeds only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// The tuning seeds.
    pub seeds: Vec<u64>,
    /// The grid tried.
    pub lr_grid: Vec<f64>,
    /// One choice per experiment, method and rank.
    pub choices: Vec<LrChoice>,
}

impl Tuning {
    /// The chosen learning rate of `(experiment, method, rank)`.
    pub fn lr(&self, experiment: Experiment, method: Method, rank: usize) -> Option<f64> {
        self.choices
            .iter()
            .find(|c| c.experiment == experiment && c.method == method && c.rank == rank)
            .map(|c| c.lr)
    }

    /// As metric rows (see the [module docs](self)).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows: Vec<MetricRow> = Vec::new();
        for (i, &s) in self.seeds.iter().enumerate() {
            rows.push(MetricRow::new("tune/seed", Some(i as i64), s as f64));
        }
        for (i, &lr) in self.lr_grid.iter().enumerate() {
            rows.push(MetricRow::new("tune/lr_grid", Some(i as i64), lr));
        }
        for c in &self.choices {
            let p = format!(
                "tune/{}",
                arm_prefix(c.experiment.as_str(), c.method, c.rank)
            );
            rows.push(MetricRow::new(format!("{p}/lr"), None, c.lr));
            for (i, s) in c.scores.iter().enumerate() {
                if let Some(s) = s {
                    rows.push(MetricRow::new(format!("{p}/score"), Some(i as i64), *s));
                }
            }
        }
        rows
    }

    /// The inverse of [`Tuning::metrics`]. Errors: [`Error::Metrics`].
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let g = MetricTable::new(rows);
        let seeds = g
            .dense("tune/seed")?
            .into_iter()
            .map(|v| whole(v, "tune/seed").map(|s| s as u64))
            .collect::<Result<_, _>>()?;
        let lr_grid = g.dense("tune/lr_grid")?;
        let mut choices = Vec::new();
        for prefix in prefixes(&g) {
            let Some(rest) = prefix.strip_prefix("tune/") else {
                continue;
            };
            let (head, method, rank) = parse_prefix(rest)?;
            let experiment = Experiment::parse(head)
                .ok_or_else(|| Error::Metrics(format!("{prefix}: unknown experiment {head}")))?;
            let mut scores = vec![None; lr_grid.len()];
            for (i, v) in g.indexed(&format!("{prefix}/score")).unwrap_or_default() {
                let slot = scores.get_mut(i).ok_or_else(|| {
                    Error::Metrics(format!("{prefix}/score index {i} is outside the grid"))
                })?;
                *slot = Some(v);
            }
            choices.push(LrChoice {
                experiment,
                method,
                rank,
                lr: g.scalar(&format!("{prefix}/lr"))?,
                scores,
            });
        }
        Ok(Tuning {
            seeds,
            lr_grid,
            choices,
        })
    }
}

fn arm_prefix(head: &str, method: Method, rank: usize) -> String {
    format!("{head}/{}/r{rank}", method.as_str())
}

/// `{head}/{method}/r{rank}` → its parts.
fn parse_prefix(prefix: &str) -> Result<(&str, Method, usize), Error> {
    let bad = || {
        Error::Metrics(format!(
            "{prefix}: expected {{experiment}}/{{method}}/r{{rank}}"
        ))
    };
    let mut parts = prefix.split('/');
    let (Some(head), Some(method), Some(rank), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let method = Method::parse(method).ok_or_else(bad)?;
    let rank = rank
        .strip_prefix('r')
        .and_then(|r| r.parse().ok())
        .ok_or_else(bad)?;
    Ok((head, method, rank))
}

/// The distinct `a/b/c` prefixes of three-level-plus-field names, in order.
fn prefixes(table: &MetricTable<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in table.names() {
        if let Some((prefix, _)) = name.rsplit_once('/')
            && prefix.matches('/').count() >= 2
            && !out.iter().any(|p| p == prefix)
        {
            out.push(prefix.to_string());
        }
    }
    out
}
