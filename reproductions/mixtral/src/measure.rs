//! What the experiments measure ([`SeedMeasurements`]) and its conversion to and from metric
//! rows `(name, index, value)`.
//!
//! Row names (`{arm}` ∈ `dense-active`, `moe`, `moe-noaux`, `dense-total`):
//! - `seed`, `unigram_loss` (no index); per domain `δ` its sample's text as UTF-8 bytes,
//!   `sample{δ}/byte` (index = byte offset), and `sample{δ}/end` (index = token, value = the
//!   byte offset where that token's piece ends);
//! - `{arm}/val_loss`, `{arm}/params_total`, `{arm}/params_active`, `{arm}/seconds` (no index);
//!   `{arm}/final_slope` (no index; nats per 1000 steps, [`crate::experiments::final_slope`]);
//!   `{arm}/val_loss_domain` (index = domain); `{arm}/train_curve`, `{arm}/val_curve`
//!   (index = step; the train value at step `s > 0` is the mean training cross-entropy of the
//!   steps since the previous checkpoint, at step 0 the first batch's before any update);
//! - MoE arms, per layer `l`: `{arm}/layer{l}/same_first`, `…/first_or_second`,
//!   `…/same_first_chance` (no index), `…/share` (index = expert), `…/domain_tv` (index =
//!   domain), `…/hist{δ}` (index = expert; domain `δ`'s histogram); the positive control of
//!   the specialisation test: `…/planted_bias` (no index; the bias in logit units) and
//!   `…/planted_domain_tv` (index = domain); the mutual-information tests `…/mi`,
//!   `…/mi_null`, `…/mi_p`, `…/planted_mi`, `…/planted_mi_null`, `…/planted_mi_p` (no index);
//!   `…/sample{δ}/expert` (index = token; the first choice of domain `δ`'s sample tokens).

use serde::{Deserialize, Serialize};

use claimbench_paper::metrics::{MetricTable, whole};

use crate::error::Error;
use crate::routing::{LayerRouting, MiTest};

/// One metric row: name, index (a step, a domain, an expert; `None` for a scalar), value.
pub use claimbench_paper::metrics::MetricRow;

/// The four arms every seed trains (same data, batches, token budget and shared init).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// Dense SwiGLU with hidden `top_k · expert_hidden`: the MoE's active FFN parameters.
    DenseActive,
    /// `E` experts, top-`k`, with the load-balancing (and z-) loss.
    Moe,
    /// The same MoE without the load-balancing loss (z-loss kept).
    MoeNoAux,
    /// Dense SwiGLU with about the MoE's total FFN parameters (the upper reference).
    DenseTotal,
}

impl Arm {
    /// All four, in training order.
    pub const ALL: [Arm; 4] = [Arm::DenseActive, Arm::Moe, Arm::MoeNoAux, Arm::DenseTotal];

    /// `dense-active`, `moe`, `moe-noaux`, `dense-total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::DenseActive => "dense-active",
            Arm::Moe => "moe",
            Arm::MoeNoAux => "moe-noaux",
            Arm::DenseTotal => "dense-total",
        }
    }

    /// The inverse of [`Arm::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Arm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the arm routes through experts.
    pub fn is_moe(self) -> bool {
        matches!(self, Arm::Moe | Arm::MoeNoAux)
    }
}

/// One trained arm of one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmMeasurement {
    /// The arm.
    pub arm: Arm,
    /// Its parameters ([`crate::params::param_counts`]).
    pub params_total: u64,
    /// Its parameters used per token.
    pub params_active: u64,
    /// Final validation cross-entropy (nats/token), the mean over domains.
    pub val_loss: f64,
    /// Final validation cross-entropy per domain `[D]`.
    pub val_loss_domain: Vec<f64>,
    /// Checkpoint steps: 0, every `eval_every`, and the last.
    pub curve_steps: Vec<usize>,
    /// Mean training cross-entropy of the steps since the previous checkpoint (at step 0: the
    /// first batch's, before any update).
    pub train_curve: Vec<f64>,
    /// Validation cross-entropy at the checkpoints.
    pub val_curve: Vec<f64>,
    /// The convergence slope (nats per 1000 steps; [`crate::experiments::final_slope`]).
    pub final_slope: f64,
    /// Per MoE layer, the routing on the validation set (empty for dense arms).
    pub routing: Vec<LayerRouting>,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
}

/// Everything one seed measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedMeasurements {
    /// The seed.
    pub seed: u64,
    /// The unigram reference's validation loss ([`crate::data::Domains::unigram_loss`]).
    pub unigram_loss: f64,
    /// Per domain, the text of each sample token ([`crate::experiments::SAMPLE_TOKENS`]).
    pub sample_pieces: Vec<Vec<String>>,
    /// The four arms.
    pub arms: Vec<ArmMeasurement>,
}

impl SeedMeasurements {
    /// The arm `arm`, if measured.
    pub fn arm(&self, arm: Arm) -> Option<&ArmMeasurement> {
        self.arms.iter().find(|a| a.arm == arm)
    }

    /// The measurements as metric rows (see the [module docs](self)).
    pub fn metrics(&self) -> Vec<MetricRow> {
        let mut rows: Vec<MetricRow> = vec![
            MetricRow::new("seed", None, self.seed as f64),
            MetricRow::new("unigram_loss", None, self.unigram_loss),
        ];
        let idx = |i: usize| Some(i as i64);
        for (d, pieces) in self.sample_pieces.iter().enumerate() {
            let mut at = 0usize;
            for (i, piece) in pieces.iter().enumerate() {
                for &b in piece.as_bytes() {
                    rows.push(MetricRow::new(format!("sample{d}/byte"), idx(at), b as f64));
                    at += 1;
                }
                rows.push(MetricRow::new(format!("sample{d}/end"), idx(i), at as f64));
            }
        }
        for a in &self.arms {
            let p = a.arm.as_str();
            rows.push(MetricRow::new(format!("{p}/val_loss"), None, a.val_loss));
            rows.push(MetricRow::new(
                format!("{p}/params_total"),
                None,
                a.params_total as f64,
            ));
            rows.push(MetricRow::new(
                format!("{p}/params_active"),
                None,
                a.params_active as f64,
            ));
            rows.push(MetricRow::new(format!("{p}/seconds"), None, a.seconds));
            rows.push(MetricRow::new(
                format!("{p}/final_slope"),
                None,
                a.final_slope,
            ));
            for (d, &v) in a.val_loss_domain.iter().enumerate() {
                rows.push(MetricRow::new(format!("{p}/val_loss_domain"), idx(d), v));
            }
            for (i, &s) in a.curve_steps.iter().enumerate() {
                rows.push(MetricRow::new(
                    format!("{p}/train_curve"),
                    idx(s),
                    a.train_curve[i],
                ));
                rows.push(MetricRow::new(
                    format!("{p}/val_curve"),
                    idx(s),
                    a.val_curve[i],
                ));
            }
            for r in &a.routing {
                let q = format!("{p}/layer{}", r.layer);
                rows.push(MetricRow::new(
                    format!("{q}/same_first"),
                    None,
                    r.same_first,
                ));
                rows.push(MetricRow::new(
                    format!("{q}/first_or_second"),
                    None,
                    r.first_or_second,
                ));
                rows.push(MetricRow::new(
                    format!("{q}/same_first_chance"),
                    None,
                    r.same_first_chance,
                ));
                for (e, &s) in r.shares.iter().enumerate() {
                    rows.push(MetricRow::new(format!("{q}/share"), idx(e), s));
                }
                for (d, &tv) in r.domain_tv.iter().enumerate() {
                    rows.push(MetricRow::new(format!("{q}/domain_tv"), idx(d), tv));
                }
                for (d, h) in r.domain_hist.iter().enumerate() {
                    for (e, &s) in h.iter().enumerate() {
                        rows.push(MetricRow::new(format!("{q}/hist{d}"), idx(e), s));
                    }
                }
                rows.push(MetricRow::new(
                    format!("{q}/planted_bias"),
                    None,
                    r.planted_bias,
                ));
                for (d, &tv) in r.planted_domain_tv.iter().enumerate() {
                    rows.push(MetricRow::new(format!("{q}/planted_domain_tv"), idx(d), tv));
                }
                for (name, t) in [("mi", &r.mi), ("planted_mi", &r.planted_mi)] {
                    rows.push(MetricRow::new(format!("{q}/{name}"), None, t.observed));
                    rows.push(MetricRow::new(
                        format!("{q}/{name}_null"),
                        None,
                        t.null_mean,
                    ));
                    rows.push(MetricRow::new(format!("{q}/{name}_p"), None, t.p));
                }
                for (d, es) in r.sample_experts.iter().enumerate() {
                    for (i, &e) in es.iter().enumerate() {
                        rows.push(MetricRow::new(
                            format!("{q}/sample{d}/expert"),
                            idx(i),
                            e as f64,
                        ));
                    }
                }
            }
        }
        rows
    }

    /// The inverse of [`SeedMeasurements::metrics`] (arms in the order of their first row).
    /// Errors: [`Error::Metrics`] naming the bad or missing row.
    pub fn from_metrics(rows: &[MetricRow]) -> Result<Self, Error> {
        let g = MetricTable::new(rows);
        let seed = whole(g.scalar("seed")?, "seed")? as u64;
        let mut sample_pieces = Vec::new();
        while g.contains(&format!("sample{}/end", sample_pieces.len())) {
            let d = sample_pieces.len();
            let bytes: Vec<u8> = if g.contains(&format!("sample{d}/byte")) {
                g.dense(&format!("sample{d}/byte"))?
                    .into_iter()
                    .map(|b| whole(b, "sample byte").map(|b| b.min(255) as u8))
                    .collect::<Result<_, _>>()?
            } else {
                Vec::new()
            };
            let mut pieces = Vec::new();
            let mut at = 0usize;
            for end in g.dense(&format!("sample{d}/end"))? {
                let end = whole(end, "sample end")?;
                if end < at || end > bytes.len() {
                    return Err(Error::Metrics(format!(
                        "sample{d}/end: offset {end} outside {at}..={}",
                        bytes.len()
                    )));
                }
                pieces.push(String::from_utf8_lossy(&bytes[at..end]).into_owned());
                at = end;
            }
            sample_pieces.push(pieces);
        }
        let mut m = SeedMeasurements {
            seed,
            unigram_loss: g.scalar("unigram_loss")?,
            sample_pieces,
            arms: Vec::new(),
        };
        let mut arms: Vec<Arm> = Vec::new();
        for name in g.names() {
            if name.starts_with("sample") {
                continue;
            }
            if let Some((head, _)) = name.split_once('/') {
                let arm = Arm::parse(head)
                    .ok_or_else(|| Error::Metrics(format!("{name}: unknown arm {head}")))?;
                if !arms.contains(&arm) {
                    arms.push(arm);
                }
            }
        }
        for arm in arms {
            let p = arm.as_str();
            let val = g.indexed(&format!("{p}/val_curve"))?;
            let train = g.indexed(&format!("{p}/train_curve"))?;
            if train.iter().map(|t| t.0).ne(val.iter().map(|v| v.0)) {
                return Err(Error::Metrics(format!(
                    "{p}/train_curve and {p}/val_curve have different steps"
                )));
            }
            let mut routing = Vec::new();
            for l in 0.. {
                let q = format!("{p}/layer{l}");
                if !g.contains(&format!("{q}/same_first")) {
                    break;
                }
                let domain_tv = g.dense(&format!("{q}/domain_tv"))?;
                let mi = |name: &str| -> Result<MiTest, Error> {
                    Ok(MiTest {
                        observed: g.scalar(&format!("{q}/{name}"))?,
                        null_mean: g.scalar(&format!("{q}/{name}_null"))?,
                        p: g.scalar(&format!("{q}/{name}_p"))?,
                    })
                };
                let mut sample_experts = Vec::new();
                while g.contains(&format!("{q}/sample{}/expert", sample_experts.len())) {
                    let d = sample_experts.len();
                    sample_experts.push(
                        g.dense(&format!("{q}/sample{d}/expert"))?
                            .into_iter()
                            .map(|e| whole(e, "sample expert"))
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                let domain_hist = (0..domain_tv.len())
                    .map(|d| g.dense(&format!("{q}/hist{d}")))
                    .collect::<Result<_, _>>()?;
                routing.push(LayerRouting {
                    layer: l,
                    same_first: g.scalar(&format!("{q}/same_first"))?,
                    first_or_second: g.scalar(&format!("{q}/first_or_second"))?,
                    same_first_chance: g.scalar(&format!("{q}/same_first_chance"))?,
                    shares: g.dense(&format!("{q}/share"))?,
                    domain_hist,
                    domain_tv,
                    planted_bias: g.scalar(&format!("{q}/planted_bias"))?,
                    planted_domain_tv: g.dense(&format!("{q}/planted_domain_tv"))?,
                    mi: mi("mi")?,
                    planted_mi: mi("planted_mi")?,
                    sample_experts,
                });
            }
            m.arms.push(ArmMeasurement {
                arm,
                params_total: whole(g.scalar(&format!("{p}/params_total"))?, "params_total")?
                    as u64,
                params_active: whole(g.scalar(&format!("{p}/params_active"))?, "params_active")?
                    as u64,
                val_loss: g.scalar(&format!("{p}/val_loss"))?,
                val_loss_domain: g.dense(&format!("{p}/val_loss_domain"))?,
                curve_steps: val.iter().map(|&(s, _)| s).collect(),
                train_curve: train.iter().map(|&(_, v)| v).collect(),
                val_curve: val.iter().map(|&(_, v)| v).collect(),
                final_slope: g.scalar(&format!("{p}/final_slope"))?,
                routing,
                seconds: g.scalar(&format!("{p}/seconds"))?,
            });
        }
        Ok(m)
    }
}
