//! [`MixtralConfig`]: every setting that decides the experiments' numbers (the seed aside), with
//! [`MixtralConfig::for_scale`] presets and [`MixtralConfig::validate`].

use claimbench_kernels::moe::MoeSpec;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::params::{FfnShape, ModelShape};
use claimbench_paper::Scale;

/// The synthetic multi-domain data ([`crate::data`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Vocabulary `V` shared by every domain; must equal `model.vocab`.
    pub vocab: usize,
    /// Domains `D` (one sparse order-2 Markov chain each; no domain tag in the tokens).
    pub domains: usize,
    /// Successors per context `(a, b)` of a domain's chain (`1 ≤ s ≤ V`): the chain's sparsity.
    pub successors: usize,
    /// Predicted tokens per sequence `T` (a sequence holds `T + 1` tokens); ≥ 2.
    pub seq_len: usize,
    /// Validation sequences per domain.
    pub val_seqs_per_domain: usize,
}

/// The decoder and its FFN arms ([`crate::model`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Vocabulary `V` of the embedding and the head; must equal `data.vocab`.
    pub vocab: usize,
    /// Width `d`.
    pub d_model: usize,
    /// Transformer blocks `L`.
    pub n_layers: usize,
    /// Query heads `H` (divides `d_model`; head width `d_model / H`, even for the rotary code).
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`; grouped-query attention as in Mixtral).
    pub n_kv_heads: usize,
    /// Experts `E` of the MoE arms.
    pub experts: usize,
    /// Experts per token `k` of the MoE arms (`1 ≤ k ≤ E`).
    pub top_k: usize,
    /// Hidden width of each expert.
    pub expert_hidden: usize,
    /// Hidden width of the dense equal-active arm; must be `top_k · expert_hidden` (equal active
    /// FFN parameters, the premise of the first claim).
    pub dense_hidden: usize,
    /// Hidden width of the dense equal-total arm (the upper reference);
    /// [`ModelConfig::matched_total_hidden`] in the presets.
    pub dense_total_hidden: usize,
}

/// Optimisation and the auxiliary losses ([`crate::experiments`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Adam steps of every arm.
    pub steps: usize,
    /// Sequences per step (each from a domain drawn uniformly).
    pub batch: usize,
    /// Peak learning rate (linear warm-up, then linear decay to 10%); finite, > 0.
    pub lr: f64,
    /// Warm-up steps (`< steps`).
    pub warmup: usize,
    /// Steps between validation checkpoints of the loss curves (and the last step).
    pub eval_every: usize,
    /// Coefficient of the load-balancing loss in the MoE arm (the no-aux arm uses 0); finite,
    /// > 0.
    pub aux_coef: f64,
    /// Normalisation of the load-balancing loss.
    pub aux_norm: AuxNorm,
    /// Coefficient of the router z-loss in both MoE arms (0 = off); finite, ≥ 0.
    pub z_coef: f64,
}

/// How the load-balancing loss is normalised ([`crate::balance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuxNorm {
    /// HF `load_balancing_loss_func`: `E · Σ_e f_e · P_e`, `k` under balanced routing.
    Hf,
    /// Megablocks: the same divided by `k`, 1 under balanced routing.
    Megablocks,
}

/// Every setting of the reproduction. Missing fields take the `small` preset's value; unknown
/// fields are an error.
///
/// Limits ([`crate::limits`]): `data.vocab`, `model.vocab`, `data.successors` ≤ 4096,
/// `data.domains` ≤ 64, `data.seq_len` ≤ 4096, `data.val_seqs_per_domain` ≤ 65 536,
/// `model.d_model` ≤ 4096, `model.n_layers` ≤ 64, `model.n_heads`, `model.n_kv_heads` ≤ 256,
/// `model.experts`, `model.top_k` ≤ 256, `model.expert_hidden` ≤ 16 384, `model.dense_hidden`,
/// `model.dense_total_hidden` ≤ 262 144, `train.steps`, `train.warmup`, `train.eval_every`
/// ≤ 1 000 000, `train.batch` ≤ 4096. Peak memory of an arm:
/// [`MixtralConfig::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixtralConfig {
    /// The data.
    pub data: DataConfig,
    /// The model.
    pub model: ModelConfig,
    /// The training.
    pub train: TrainConfig,
    /// Bounds on every expert's share of the assignments with the aux loss, in units of the
    /// balanced share `1/E`: `[lo, hi]` with `0 < lo < 1 < hi`.
    pub share_bounds: [f64; 2],
    /// Mean total-variation distance between a domain's expert histogram and the overall one
    /// below which the routing counts as "no clear domain specialisation"; in `(0, 1)`.
    pub specialisation_tv_bound: f64,
    /// The positive control of the specialisation test ([`crate::routing::planted_domain_tv`]):
    /// at evaluation, each layer's router logits get a bias of this many standard deviations
    /// of the layer's own logits (within a token, over experts) on expert `δ mod E` for the
    /// tokens of domain `δ`; finite, > 0. Fixed before the run (not tuned).
    pub planted_bias_sd: f64,
}

impl Default for MixtralConfig {
    fn default() -> Self {
        Self::for_scale(Scale::Small)
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        MixtralConfig::for_scale(Scale::Small).data
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        MixtralConfig::for_scale(Scale::Small).model
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        MixtralConfig::for_scale(Scale::Small).train
    }
}

impl ModelConfig {
    /// The dense hidden width whose FFN parameters `3·d·h` come closest to the MoE layer's
    /// `E·3·d·h_e + d·E` (experts plus router): `E·h_e + round(E/3)`.
    pub fn matched_total_hidden(experts: usize, expert_hidden: usize) -> usize {
        experts * expert_hidden + (experts + 1) / 3
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }

    /// The MoE layer's sizes.
    pub fn moe_spec(&self) -> MoeSpec {
        MoeSpec {
            experts: self.experts,
            top_k: self.top_k,
            d_model: self.d_model,
            hidden: self.expert_hidden,
        }
    }

    /// The shape of this model with FFN `ffn` (for [`crate::params::param_counts`]).
    pub fn shape(&self, ffn: FfnShape) -> ModelShape {
        ModelShape {
            vocab: self.vocab,
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim(),
            ffn,
        }
    }
}

impl MixtralConfig {
    /// Presets: `smoke` (2 seeds in seconds), `small` (5 seeds in minutes on 2 CPU cores, Flex
    /// backend) and `full`.
    pub fn for_scale(scale: Scale) -> Self {
        let (e, he) = (8, 16);
        let small = MixtralConfig {
            data: DataConfig {
                vocab: 32,
                domains: 4,
                successors: 3,
                seq_len: 32,
                val_seqs_per_domain: 32,
            },
            model: ModelConfig {
                vocab: 32,
                d_model: 32,
                n_layers: 2,
                n_heads: 4,
                n_kv_heads: 2,
                experts: e,
                top_k: 2,
                expert_hidden: he,
                dense_hidden: 2 * he,
                dense_total_hidden: ModelConfig::matched_total_hidden(e, he),
            },
            train: TrainConfig {
                steps: 600,
                batch: 16,
                lr: 1e-2,
                warmup: 20,
                eval_every: 100,
                aux_coef: 1e-2,
                aux_norm: AuxNorm::Hf,
                z_coef: 1e-3,
            },
            share_bounds: [0.5, 2.0],
            specialisation_tv_bound: 0.1,
            planted_bias_sd: 2.0,
        };
        match scale {
            Scale::Smoke => MixtralConfig {
                data: DataConfig {
                    seq_len: 16,
                    val_seqs_per_domain: 16,
                    ..small.data.clone()
                },
                train: TrainConfig {
                    steps: 60,
                    batch: 8,
                    warmup: 5,
                    eval_every: 20,
                    ..small.train.clone()
                },
                ..small
            },
            Scale::Full => {
                let (e, he) = (8, 32);
                MixtralConfig {
                    data: DataConfig {
                        vocab: 64,
                        seq_len: 64,
                        val_seqs_per_domain: 64,
                        ..small.data.clone()
                    },
                    model: ModelConfig {
                        vocab: 64,
                        d_model: 64,
                        n_layers: 4,
                        n_heads: 4,
                        n_kv_heads: 2,
                        experts: e,
                        top_k: 2,
                        expert_hidden: he,
                        dense_hidden: 2 * he,
                        dense_total_hidden: ModelConfig::matched_total_hidden(e, he),
                    },
                    train: TrainConfig {
                        steps: 2000,
                        batch: 32,
                        lr: 3e-3,
                        warmup: 100,
                        eval_every: 100,
                        ..small.train.clone()
                    },
                    ..small
                }
            }
            Scale::Small => small,
        }
    }

    /// Checks every setting, sizes and steps against their limits
    /// ([`MixtralConfig::check_limits`]) first; the error names the first bad one with its value.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, value: String, rule: String| {
            Err(Error::Config {
                name: name.into(),
                value,
                rule,
            })
        };
        let (d, m, t) = (&self.data, &self.model, &self.train);
        for (name, v) in [
            ("data.vocab", d.vocab),
            ("data.domains", d.domains),
            ("data.successors", d.successors),
            ("data.val_seqs_per_domain", d.val_seqs_per_domain),
            ("model.vocab", m.vocab),
            ("model.d_model", m.d_model),
            ("model.n_layers", m.n_layers),
            ("model.n_heads", m.n_heads),
            ("model.n_kv_heads", m.n_kv_heads),
            ("model.experts", m.experts),
            ("model.top_k", m.top_k),
            ("model.expert_hidden", m.expert_hidden),
            ("model.dense_hidden", m.dense_hidden),
            ("model.dense_total_hidden", m.dense_total_hidden),
            ("train.steps", t.steps),
            ("train.batch", t.batch),
            ("train.eval_every", t.eval_every),
        ] {
            if v == 0 {
                return bad(name, "0".into(), "must be at least 1".into());
            }
        }
        self.check_limits()?;
        if d.vocab != m.vocab {
            return bad(
                "data.vocab",
                d.vocab.to_string(),
                format!(
                    "must equal model.vocab = {} (the model embeds and predicts the data's tokens)",
                    m.vocab
                ),
            );
        }
        if d.successors > d.vocab {
            return bad(
                "data.successors",
                d.successors.to_string(),
                format!("must be at most data.vocab = {}", d.vocab),
            );
        }
        if d.seq_len < 2 {
            return bad(
                "data.seq_len",
                d.seq_len.to_string(),
                "must be at least 2 (an order-2 chain needs two tokens of context)".into(),
            );
        }
        if m.top_k > m.experts {
            return bad(
                "model.top_k",
                m.top_k.to_string(),
                format!("must be at most model.experts = {}", m.experts),
            );
        }
        if !m.d_model.is_multiple_of(m.n_heads) {
            return bad(
                "model.n_heads",
                m.n_heads.to_string(),
                format!("must divide model.d_model = {}", m.d_model),
            );
        }
        if !m.n_heads.is_multiple_of(m.n_kv_heads) {
            return bad(
                "model.n_kv_heads",
                m.n_kv_heads.to_string(),
                format!("must divide model.n_heads = {}", m.n_heads),
            );
        }
        if !m.head_dim().is_multiple_of(2) {
            return bad(
                "model.n_heads",
                m.n_heads.to_string(),
                format!(
                    "gives an odd head width d_model / n_heads = {}; rotary positions rotate pairs",
                    m.head_dim()
                ),
            );
        }
        if m.dense_hidden != m.top_k * m.expert_hidden {
            return bad(
                "model.dense_hidden",
                m.dense_hidden.to_string(),
                format!(
                    "must equal model.top_k · model.expert_hidden = {} (equal active FFN \
                     parameters)",
                    m.top_k * m.expert_hidden
                ),
            );
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad(
                "train.lr",
                t.lr.to_string(),
                "must be a finite number above 0".into(),
            );
        }
        if t.warmup >= t.steps {
            return bad(
                "train.warmup",
                t.warmup.to_string(),
                format!("must be below train.steps = {}", t.steps),
            );
        }
        if !(t.aux_coef.is_finite() && t.aux_coef > 0.0) {
            return bad(
                "train.aux_coef",
                t.aux_coef.to_string(),
                "must be a finite number above 0 (the no-aux arm sets it to 0 itself)".into(),
            );
        }
        if !(t.z_coef.is_finite() && t.z_coef >= 0.0) {
            return bad(
                "train.z_coef",
                t.z_coef.to_string(),
                "must be a finite number ≥ 0".into(),
            );
        }
        let [lo, hi] = self.share_bounds;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < 1.0 && hi > 1.0) {
            return bad(
                "share_bounds",
                format!("{:?}", self.share_bounds),
                "must be [lo, hi] with 0 < lo < 1 < hi (in units of the balanced share 1/E)".into(),
            );
        }
        let tv = self.specialisation_tv_bound;
        if !(tv > 0.0 && tv < 1.0) {
            return bad(
                "specialisation_tv_bound",
                tv.to_string(),
                "must lie in (0, 1)".into(),
            );
        }
        let b = self.planted_bias_sd;
        if !(b.is_finite() && b > 0.0) {
            return bad(
                "planted_bias_sd",
                b.to_string(),
                "must be a finite number above 0".into(),
            );
        }
        Ok(())
    }

    /// [`MixtralConfig::validate`], and that `seeds` (the verdict seeds the harness runs) is
    /// non-empty and distinct.
    pub fn validate_with_seeds(&self, seeds: &[u64]) -> Result<(), Error> {
        self.validate()?;
        if seeds.is_empty() {
            return Err(Error::Config {
                name: "seeds".into(),
                value: "[]".into(),
                rule: "must hold at least one seed".into(),
            });
        }
        for (i, s) in seeds.iter().enumerate() {
            if seeds[..i].contains(s) {
                return Err(Error::Config {
                    name: format!("seeds[{i}]"),
                    value: s.to_string(),
                    rule: "seeds must be distinct (claims pair arms by seed)".into(),
                });
            }
        }
        Ok(())
    }
}
