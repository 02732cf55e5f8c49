//! The ladder's arms ([`Arm`]) and what one arm measures ([`ArmMeasurements`], as metric rows both ways).

use super::*;

/// One rung of the ladder; each adds one trick to the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// Raw advantages, `batch` sequences in `minibatches`, fixed reference.
    Base,
    /// + advantage whitening over the batch's valid tokens.
    AdvNorm,
    /// + `large_batch` sequences in `large_minibatches`.
    LargeBatch,
    /// + reference EMA.
    RefEma,
}

impl Arm {
    /// Every arm in ladder order.
    pub const ALL: [Arm; 4] = [Arm::Base, Arm::AdvNorm, Arm::LargeBatch, Arm::RefEma];

    /// `base`, `adv-norm`, `large-batch`, `ref-ema`.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Base => "base",
            Arm::AdvNorm => "adv-norm",
            Arm::LargeBatch => "large-batch",
            Arm::RefEma => "ref-ema",
        }
    }

    /// The arm named `name` ([`Arm::name`]).
    pub fn from_name(name: &str) -> Option<Arm> {
        Arm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whitened advantages.
    pub fn adv_norm(self) -> bool {
        self != Arm::Base
    }

    /// The large batch.
    pub fn large_batch(self) -> bool {
        matches!(self, Arm::LargeBatch | Arm::RefEma)
    }

    /// The reference EMA.
    pub fn ref_ema(self) -> bool {
        self == Arm::RefEma
    }
}

/// One learning-curve point: exact pass rates on the evaluation prompts before iteration
/// `iteration`'s update (`iteration = iterations` is the final policy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// PPO iterations done.
    pub iteration: usize,
    /// pass@1.
    pub pass1: f64,
    /// pass@k.
    pub pass_k: f64,
}

/// What one arm on one seed measures. All pass rates are exact expectations over the policy's
/// samples ([`StateTable::pass_rates`]), on the training prompts (the fixed evaluation set the
/// claims use) unless named `heldout` (prompts never trained on, reported only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmMeasurements {
    /// The `k` of pass@k.
    pub k: usize,
    /// pass@1 of the SFT policy (the paper's "SFT" row; the same for every arm of a seed).
    pub sft_pass1: f64,
    /// pass@k of the SFT policy.
    pub sft_pass_k: f64,
    /// pass@k of the SFT policy on the held-out prompts.
    pub sft_heldout_pass_k: f64,
    /// pass@1 after PPO.
    pub final_pass1: f64,
    /// pass@k after PPO.
    pub final_pass_k: f64,
    /// pass@k after PPO on the held-out prompts.
    pub final_heldout_pass_k: f64,
    /// Exact sequence-level `KL(π ‖ π_SFT)` after PPO, averaged over the training prompts.
    pub final_kl_sft: f64,
    /// Sequences sampled in PPO (`iterations × batch`).
    pub samples: usize,
    /// Pass rates every `eval_every` iterations and at the end.
    pub curve: Vec<CurvePoint>,
}

/// Metric names of [`ArmMeasurements::metrics`] without a step.
pub const SCALAR_METRICS: [&str; 9] = [
    "k",
    "sft_pass1",
    "sft_pass_k",
    "sft_heldout_pass_k",
    "final_pass1",
    "final_pass_k",
    "final_heldout_pass_k",
    "final_kl_sft",
    "samples",
];

impl ArmMeasurements {
    /// `(name, step, value)` rows: the [`SCALAR_METRICS`] with step `None`, then
    /// `curve_pass1` and `curve_pass_k` with step = PPO iterations done.
    pub fn metrics(&self) -> Vec<MetricRow> {
        let scalars = [
            self.k as f64,
            self.sft_pass1,
            self.sft_pass_k,
            self.sft_heldout_pass_k,
            self.final_pass1,
            self.final_pass_k,
            self.final_heldout_pass_k,
            self.final_kl_sft,
            self.samples as f64,
        ];
        let mut rows: Vec<MetricRow> = SCALAR_METRICS
            .iter()
            .zip(scalars)
            .map(|(n, v)| MetricRow::new(*n, None, v))
            .collect();
        for p in &self.curve {
            rows.push(MetricRow::new(
                "curve_pass1",
                Some(p.iteration as i64),
                p.pass1,
            ));
        }
        for p in &self.curve {
            rows.push(MetricRow::new(
                "curve_pass_k",
                Some(p.iteration as i64),
                p.pass_k,
            ));
        }
        rows
    }

    /// The inverse of [`ArmMeasurements::metrics`] (rows in any order). [`Error::Metrics`] for
    /// a missing, duplicated or unknown metric, a negative or missing step, a non-integral count,
    /// or curves whose steps differ.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let bad = |m: String| Err(Error::Metrics(m));
        let mut scalars: HashMap<&str, f64> = HashMap::new();
        let mut c1: BTreeMap<usize, f64> = BTreeMap::new();
        let mut ck: BTreeMap<usize, f64> = BTreeMap::new();
        for MetricRow {
            metric: name,
            step,
            value,
            ..
        } in rows
        {
            let name = name.as_str();
            if let Some(&known) = SCALAR_METRICS.iter().find(|&&n| n == name) {
                if step.is_some() {
                    return bad(format!("metric {name} takes no step, got {step:?}"));
                }
                if scalars.insert(known, *value).is_some() {
                    return bad(format!("metric {name} appears twice"));
                }
                continue;
            }
            let curve = match name {
                "curve_pass1" => &mut c1,
                "curve_pass_k" => &mut ck,
                _ => return bad(format!("unknown metric {name}")),
            };
            let Some(s) = step.and_then(|s| usize::try_from(s).ok()) else {
                return bad(format!("metric {name} needs a step ≥ 0, got {step:?}"));
            };
            if curve.insert(s, *value).is_some() {
                return bad(format!("metric {name} appears twice at step {s}"));
            }
        }
        let get = |n: &str| -> Result<f64, Error> {
            scalars
                .get(n)
                .copied()
                .ok_or_else(|| Error::Metrics(format!("missing metric {n}")))
        };
        let count = |n: &str| -> Result<usize, Error> {
            let v = get(n)?;
            if v >= 0.0 && v.fract() == 0.0 && v < 9e15 {
                Ok(v as usize)
            } else {
                Err(Error::Metrics(format!(
                    "metric {n} is {v}; it must be a count"
                )))
            }
        };
        if c1.keys().ne(ck.keys()) {
            return bad("curve_pass1 and curve_pass_k have different steps".into());
        }
        Ok(ArmMeasurements {
            k: count("k")?,
            sft_pass1: get("sft_pass1")?,
            sft_pass_k: get("sft_pass_k")?,
            sft_heldout_pass_k: get("sft_heldout_pass_k")?,
            final_pass1: get("final_pass1")?,
            final_pass_k: get("final_pass_k")?,
            final_heldout_pass_k: get("final_heldout_pass_k")?,
            final_kl_sft: get("final_kl_sft")?,
            samples: count("samples")?,
            curve: c1
                .iter()
                .zip(ck.values())
                .map(|((&iteration, &pass1), &pass_k)| CurvePoint {
                    iteration,
                    pass1,
                    pass_k,
                })
                .collect(),
        })
    }
}
