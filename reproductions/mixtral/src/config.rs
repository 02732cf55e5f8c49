//! [`MixtralConfig`]: every setting that decides the experiments' numbers (the seed aside), with
//! [`MixtralConfig::for_scale`] presets and [`MixtralConfig::validate`].

use claimbench_kernels::moe::MoeSpec;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::params::{FfnShape, ModelShape};
use claimbench_corpus::CorpusConfig;
use claimbench_paper::Scale;

/// The multi-domain text ([`crate::data`]): the corpus layer's domains, no domain tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The domains, the byte budget per domain and the BPE's vocabulary (`claimbench-corpus`);
    /// `corpus.vocab_size` must equal `model.vocab`.
    pub corpus: CorpusConfig,
    /// Predicted tokens per sequence `T` (a sequence holds `T + 1` tokens); ≥ 2.
    pub seq_len: usize,
    /// Validation sequences per domain (evenly spaced windows of the validation split).
    pub val_seqs_per_domain: usize,
}

impl DataConfig {
    /// Domains `D`.
    pub fn domains(&self) -> usize {
        self.corpus.domains.len()
    }
}

/// When a training run counts as converged ([`MixtralConfig::converged`]): the least-squares
/// slope of the validation loss over the checkpoints in the last `window` share of the steps
/// ([`crate::experiments::final_slope`]), times the window's length, is a drop of at most
/// `max_relative_drop` of the final validation loss: over the last tenth of training (at the
/// presets) the loss fell by less than 1% of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergenceConfig {
    /// Share of the steps at the end whose checkpoints the slope is fitted to, in `(0, 1]`; it
    /// must hold at least 3 checkpoints.
    pub window: f64,
    /// The largest drop over the window, as a share of the final loss, that still counts as
    /// converged; in `(0, 1)`.
    pub max_relative_drop: f64,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        MixtralConfig::for_scale(Scale::Small).convergence
    }
}

/// The decoder and its FFN arms ([`crate::model`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Vocabulary `V` of the embedding and the head; must equal `data.corpus.vocab_size`.
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
/// Limits ([`crate::limits`]): `model.vocab` ≤ 32 768 (the corpus layer's bound on
/// `data.corpus`), `data.seq_len` ≤ 4096, `data.val_seqs_per_domain` ≤ 65 536,
/// `model.d_model` ≤ 4096, `model.n_layers` ≤ 64, `model.n_heads`, `model.n_kv_heads` ≤ 256,
/// `model.experts`, `model.top_k` ≤ 256, `model.expert_hidden` ≤ 16 384, `model.dense_hidden`,
/// `model.dense_total_hidden` ≤ 262 144, `train.steps`, `train.warmup`, `train.eval_every`
/// ≤ 1 000 000, `train.batch` ≤ 4096, `permutations` ≤ 100 000. Peak memory of an arm:
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
    /// Convergence criterion of every arm ([`ConvergenceConfig`]); a claim that reads an arm
    /// which did not converge at some seed is `inconclusive`.
    pub convergence: ConvergenceConfig,
    /// Mutual information between a token's domain and its first-choice expert, in bits, in
    /// excess of the mean of its permutation null ([`crate::routing::domain_mi`]), below which
    /// the routing counts as "no clear domain specialisation"; finite, > 0.
    pub specialisation_mi_bound: f64,
    /// Permutations of the sequences' domain labels in the null of that test (≥ 19, so that
    /// p = 1/(P + 1) ≤ 0.05 is reachable).
    pub permutations: usize,
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
        // (bytes per domain, vocabulary, T, validation windows per domain, d, h_e, steps, batch,
        // warmup, eval_every, convergence window)
        let (bytes, vocab, seq, val, d, he, steps, batch, warmup, every, window) = match scale {
            Scale::Smoke => (1_000_000, 512, 32, 8, 32, 16, 60, 8, 5, 10, 0.5),
            Scale::Small => (1_000_000, 512, 32, 24, 64, 32, 1000, 24, 40, 25, 0.1),
            Scale::Full => (
                8_000_000, 4096, 128, 128, 128, 64, 20_000, 32, 500, 500, 0.1,
            ),
        };
        let (e, layers) = (8, if scale == Scale::Full { 4 } else { 2 });
        MixtralConfig {
            data: DataConfig {
                corpus: CorpusConfig {
                    domains: ["en-fortunes", "de-fortunes", "fr-man", "en-man", "rust-src"]
                        .map(String::from)
                        .to_vec(),
                    max_bytes_per_domain: bytes,
                    vocab_size: vocab,
                },
                seq_len: seq,
                val_seqs_per_domain: val,
            },
            model: ModelConfig {
                vocab,
                d_model: d,
                n_layers: layers,
                n_heads: 4,
                n_kv_heads: 2,
                experts: e,
                top_k: 2,
                expert_hidden: he,
                dense_hidden: 2 * he,
                dense_total_hidden: ModelConfig::matched_total_hidden(e, he),
            },
            train: TrainConfig {
                steps,
                batch,
                lr: 5e-3,
                warmup,
                eval_every: every,
                aux_coef: 1e-2,
                aux_norm: AuxNorm::Hf,
                z_coef: 1e-3,
            },
            convergence: ConvergenceConfig {
                window,
                max_relative_drop: 0.01,
            },
            share_bounds: [0.5, 2.0],
            specialisation_mi_bound: 0.05,
            permutations: 199,
            planted_bias_sd: 2.0,
        }
    }

    /// The checkpoint steps of a training run: 0, every `eval_every`, and the last step.
    pub fn checkpoints(&self) -> Vec<usize> {
        let (n, every) = (self.train.steps, self.train.eval_every.max(1));
        let mut out: Vec<usize> = (0..=n).step_by(every).collect();
        if out.last() != Some(&n) {
            out.push(n);
        }
        out
    }

    /// The loss drop over the convergence window that a slope of `slope` nats per 1000 steps
    /// means (positive when the loss falls).
    pub fn window_drop(&self, slope: f64) -> f64 {
        -slope * self.convergence.window * self.train.steps as f64 / 1000.0
    }

    /// Whether a run whose validation loss ends at `final_loss` with a convergence slope of
    /// `slope` (nats per 1000 steps) converged ([`ConvergenceConfig`]); `false` for a
    /// non-finite slope or loss.
    pub fn converged(&self, slope: f64, final_loss: f64) -> bool {
        slope.is_finite()
            && final_loss.is_finite()
            && self.window_drop(slope) <= self.convergence.max_relative_drop * final_loss
    }

    /// The checkpoints the convergence slope is fitted to: those at or after step
    /// `steps − window · steps`.
    pub fn convergence_checkpoints(&self) -> Vec<usize> {
        let n = self.train.steps as f64;
        let from = n - self.convergence.window * n;
        self.checkpoints()
            .into_iter()
            .filter(|&c| c as f64 >= from - 1e-9)
            .collect()
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
        d.corpus.validate().map_err(|e| Error::Config {
            name: "data.corpus".into(),
            value: format!("{:?}", d.corpus.domains),
            rule: e.to_string(),
        })?;
        if d.corpus.vocab_size != m.vocab {
            return bad(
                "model.vocab",
                m.vocab.to_string(),
                format!(
                    "must equal data.corpus.vocab_size = {} (the model embeds and predicts the \
                     tokenizer's tokens)",
                    d.corpus.vocab_size
                ),
            );
        }
        if d.domains() < 2 {
            return bad(
                "data.corpus.domains",
                format!("{:?}", d.corpus.domains),
                "must list at least 2 domains (routing is compared across domains)".into(),
            );
        }
        if d.seq_len < 2 {
            return bad(
                "data.seq_len",
                d.seq_len.to_string(),
                "must be at least 2 (consecutive-token routing needs two positions)".into(),
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
        let c = &self.convergence;
        if !(c.window.is_finite() && c.window > 0.0 && c.window <= 1.0) {
            return bad(
                "convergence.window",
                c.window.to_string(),
                "must lie in (0, 1]".into(),
            );
        }
        if !(c.max_relative_drop > 0.0 && c.max_relative_drop < 1.0) {
            return bad(
                "convergence.max_relative_drop",
                c.max_relative_drop.to_string(),
                "must lie in (0, 1)".into(),
            );
        }
        let fitted = self.convergence_checkpoints().len();
        if fitted < 3 {
            return bad(
                "train.eval_every",
                t.eval_every.to_string(),
                format!(
                    "leaves {fitted} checkpoints in the last {} of the {} steps; the \
                     convergence slope needs at least 3",
                    c.window, t.steps
                ),
            );
        }
        let mi = self.specialisation_mi_bound;
        if !(mi.is_finite() && mi > 0.0) {
            return bad(
                "specialisation_mi_bound",
                mi.to_string(),
                "must be a finite number above 0 (bits)".into(),
            );
        }
        if self.permutations < 19 {
            return bad(
                "permutations",
                self.permutations.to_string(),
                "must be at least 19 (p = 1/(P + 1) must reach 0.05)".into(),
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
