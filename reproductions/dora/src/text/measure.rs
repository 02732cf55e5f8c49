//! What the real-text units measure ([`TextSeed`], [`TextTuning`]) and their metric rows.
//!
//! Row names (`{shift}` ∈ `weak`, `strong`; `{arm}` = [`TextArm::name`], e.g. `dora/r4`):
//! - `text/seed`; `text/{shift}/base/test_loss`, `…/base/d0_test_loss` (the base model);
//! - `text/{shift}/{arm}/lr`, `…/test_loss`, `…/d0_test_loss` (no index), `…/curve` (index =
//!   step, validation loss), and for analysed arms `…/delta_d`, `…/delta_m`, `…/layer`,
//!   `…/step` (index = point number);
//! - `text/memory/exact_bytes`, `text/memory/detached_bytes` (absent when the process has no
//!   counting allocator);
//! - tuning: `text-tune/seed` and `text-tune/lr_grid` (index = position),
//!   `text-tune/{shift}/{arm}/lr` (no index), `…/score` (index = grid position, absent where
//!   that rate diverged).

use claimbench_continual::Shift;
use claimbench_paper::metrics::{MetricRow, MetricTable, whole};

use super::TextArm;
use crate::error::Error;
use crate::memory::NormMemory;

/// One trained arm.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRun {
    /// The shift adapted to.
    pub shift: Shift,
    /// The arm.
    pub arm: TextArm,
    /// Its peak learning rate.
    pub lr: f64,
    /// Steps of the logged validation losses.
    pub curve_steps: Vec<usize>,
    /// D1 validation loss at those steps (nats).
    pub curve: Vec<f64>,
    /// Final D1 test loss (nats; NaN in tuning).
    pub test_loss: f64,
    /// Final D0 test loss (nats; NaN in tuning).
    pub d0_test_loss: f64,
    /// `(layer, step, ΔD, ΔM)` of the analysed projections at every logged step after 0.
    pub points: Vec<(usize, usize, f64, f64)>,
}

/// The base model's test losses before adaptation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaseLoss {
    /// The shift.
    pub shift: Shift,
    /// D1 test loss (nats).
    pub test_loss: f64,
    /// D0 test loss (nats).
    pub d0_test_loss: f64,
}

/// Everything one verdict seed measured on real text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSeed {
    /// The seed.
    pub seed: u64,
    /// Per shift.
    pub base: Vec<BaseLoss>,
    /// Every arm of every shift.
    pub arms: Vec<ArmRun>,
    /// Peak training-step bytes, exact against detached norm.
    pub memory: Option<NormMemory>,
}

impl TextSeed {
    /// The arm `arm` of `shift`, if measured.
    pub fn arm(&self, shift: Shift, arm: TextArm) -> Option<&ArmRun> {
        self.arms.iter().find(|a| a.shift == shift && a.arm == arm)
    }

    /// The base model's losses on `shift`.
    pub fn base_of(&self, shift: Shift) -> Option<&BaseLoss> {
        self.base.iter().find(|b| b.shift == shift)
    }

    /// The metric rows (see the [module docs](self)).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows = vec![MetricRow::new("text/seed", None, self.seed as f64)];
        for b in &self.base {
            let p = format!("text/{}/base", b.shift.name());
            rows.push(MetricRow::new(format!("{p}/test_loss"), None, b.test_loss));
            rows.push(MetricRow::new(
                format!("{p}/d0_test_loss"),
                None,
                b.d0_test_loss,
            ));
        }
        for a in &self.arms {
            let p = format!("text/{}/{}", a.shift.name(), a.arm.name());
            rows.push(MetricRow::new(format!("{p}/lr"), None, a.lr));
            rows.push(MetricRow::new(format!("{p}/test_loss"), None, a.test_loss));
            rows.push(MetricRow::new(
                format!("{p}/d0_test_loss"),
                None,
                a.d0_test_loss,
            ));
            for (&s, &v) in a.curve_steps.iter().zip(&a.curve) {
                rows.push(MetricRow::new(format!("{p}/curve"), Some(s as i64), v));
            }
            for (i, &(layer, step, dd, dm)) in a.points.iter().enumerate() {
                let i = Some(i as i64);
                rows.push(MetricRow::new(format!("{p}/delta_d"), i, dd));
                rows.push(MetricRow::new(format!("{p}/delta_m"), i, dm));
                rows.push(MetricRow::new(format!("{p}/layer"), i, layer as f64));
                rows.push(MetricRow::new(format!("{p}/step"), i, step as f64));
            }
        }
        if let Some(m) = self.memory {
            rows.push(MetricRow::new(
                "text/memory/exact_bytes",
                None,
                m.exact_bytes as f64,
            ));
            rows.push(MetricRow::new(
                "text/memory/detached_bytes",
                None,
                m.detached_bytes as f64,
            ));
        }
        rows
    }

    /// The inverse of [`TextSeed::metrics`]. Errors name the bad row.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let g = MetricTable::new(rows);
        let mut m = TextSeed {
            seed: whole(g.scalar("text/seed")?, "text/seed")? as u64,
            base: Vec::new(),
            arms: Vec::new(),
            memory: None,
        };
        if g.contains("text/memory/exact_bytes") {
            let bytes = |n: &str| -> Result<u64, Error> { Ok(whole(g.scalar(n)?, n)? as u64) };
            m.memory = Some(NormMemory {
                exact_bytes: bytes("text/memory/exact_bytes")?,
                detached_bytes: bytes("text/memory/detached_bytes")?,
            });
        }
        for name in g.names() {
            let Some(rest) = name
                .strip_prefix("text/")
                .and_then(|r| r.strip_suffix("/test_loss"))
            else {
                continue;
            };
            let (shift, arm) = rest
                .split_once('/')
                .ok_or_else(|| Error::Metrics(format!("{name}: expected text/{{shift}}/…")))?;
            let shift = parse_shift(shift, name)?;
            let p = format!("text/{rest}");
            if arm == "base" {
                m.base.push(BaseLoss {
                    shift,
                    test_loss: g.scalar(&format!("{p}/test_loss"))?,
                    d0_test_loss: g.scalar(&format!("{p}/d0_test_loss"))?,
                });
                continue;
            }
            let arm = TextArm::parse(arm)
                .ok_or_else(|| Error::Metrics(format!("{name}: unknown arm {arm}")))?;
            let curve = g.indexed(&format!("{p}/curve"))?;
            let mut points = Vec::new();
            if g.contains(&format!("{p}/delta_d")) {
                let dd = g.dense(&format!("{p}/delta_d"))?;
                let dm = g.dense(&format!("{p}/delta_m"))?;
                let layer = g.dense(&format!("{p}/layer"))?;
                let step = g.dense(&format!("{p}/step"))?;
                if [dm.len(), layer.len(), step.len()] != [dd.len(); 3] {
                    return Err(Error::Metrics(format!(
                        "{p}: analysis series differ in length"
                    )));
                }
                for i in 0..dd.len() {
                    points.push((
                        whole(layer[i], "layer")?,
                        whole(step[i], "step")?,
                        dd[i],
                        dm[i],
                    ));
                }
            }
            m.arms.push(ArmRun {
                shift,
                arm,
                lr: g.scalar(&format!("{p}/lr"))?,
                curve_steps: curve.iter().map(|&(s, _)| s).collect(),
                curve: curve.iter().map(|&(_, v)| v).collect(),
                test_loss: g.scalar(&format!("{p}/test_loss"))?,
                d0_test_loss: g.scalar(&format!("{p}/d0_test_loss"))?,
                points,
            });
        }
        Ok(m)
    }
}

fn parse_shift(s: &str, name: &str) -> Result<Shift, Error> {
    match s {
        "weak" => Ok(Shift::Weak),
        "strong" => Ok(Shift::Strong),
        _ => Err(Error::Metrics(format!("{name}: unknown shift {s}"))),
    }
}

/// The learning rate chosen for one arm of one shift, and the mean validation loss of every
/// rate of the grid (NaN where it diverged).
#[derive(Debug, Clone, PartialEq)]
pub struct LrPick {
    /// The shift.
    pub shift: Shift,
    /// The arm.
    pub arm: TextArm,
    /// The chosen peak learning rate.
    pub lr: f64,
    /// Per grid position.
    pub scores: Vec<f64>,
}

/// The real-text learning-rate sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTuning {
    /// The tuning seeds.
    pub seeds: Vec<u64>,
    /// The grid.
    pub lr_grid: Vec<f64>,
    /// Per shift and tuned arm.
    pub picks: Vec<LrPick>,
}

impl TextTuning {
    /// The rate chosen for `arm` on `shift`.
    pub fn lr(&self, shift: Shift, arm: TextArm) -> Option<f64> {
        self.picks
            .iter()
            .find(|p| p.shift == shift && p.arm == arm)
            .map(|p| p.lr)
    }

    /// The metric rows (see the [module docs](self)).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for (i, &s) in self.seeds.iter().enumerate() {
            rows.push(MetricRow::new("text-tune/seed", Some(i as i64), s as f64));
        }
        for (i, &lr) in self.lr_grid.iter().enumerate() {
            rows.push(MetricRow::new("text-tune/lr_grid", Some(i as i64), lr));
        }
        for p in &self.picks {
            let name = format!("text-tune/{}/{}", p.shift.name(), p.arm.name());
            rows.push(MetricRow::new(format!("{name}/lr"), None, p.lr));
            for (i, &s) in p.scores.iter().enumerate() {
                if s.is_finite() {
                    rows.push(MetricRow::new(format!("{name}/score"), Some(i as i64), s));
                }
            }
        }
        rows
    }

    /// The inverse of [`TextTuning::metrics`].
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let g = MetricTable::new(rows);
        let seeds = g
            .dense("text-tune/seed")?
            .into_iter()
            .map(|v| whole(v, "text-tune/seed").map(|s| s as u64))
            .collect::<Result<_, _>>()?;
        let lr_grid = g.dense("text-tune/lr_grid")?;
        let mut picks = Vec::new();
        for name in g.names() {
            let Some(rest) = name
                .strip_prefix("text-tune/")
                .and_then(|r| r.strip_suffix("/lr"))
            else {
                continue;
            };
            let (shift, arm) = rest
                .split_once('/')
                .ok_or_else(|| Error::Metrics(format!("{name}: expected text-tune/{{shift}}/…")))?;
            let arm = TextArm::parse(arm)
                .ok_or_else(|| Error::Metrics(format!("{name}: unknown arm {arm}")))?;
            let mut scores = vec![f64::NAN; lr_grid.len()];
            let score = format!("text-tune/{rest}/score");
            if g.contains(&score) {
                for (i, v) in g.indexed(&score)? {
                    let slot = scores.get_mut(i).ok_or_else(|| {
                        Error::Metrics(format!("{score}: index {i} beyond the grid"))
                    })?;
                    *slot = v;
                }
            }
            picks.push(LrPick {
                shift: parse_shift(shift, name)?,
                arm,
                lr: g.scalar(name)?,
                scores,
            });
        }
        Ok(TextTuning {
            seeds,
            lr_grid,
            picks,
        })
    }
}
