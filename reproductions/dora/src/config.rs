//! [`DoraConfig`]: every setting that decides the experiments' numbers (the seed aside), with
//! [`DoraConfig::for_scale`] presets and [`DoraConfig::validate`].

use claimbench_kernels::dora::AdapterSpec;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::text::TextConfig;
use claimbench_paper::Scale;

/// The settings of all four experiments (see the [crate docs](crate)). Missing fields take the
/// `small` preset's value; unknown fields are an error.
///
/// Limits ([`crate::limits`]): `d`, every `mlp_widths` entry and every rank ≤ 4096,
/// `mlp_widths` ≤ 65 entries (64 layers), `ranks`, `lr_grid`, `tuning_seeds` ≤ 64 entries,
/// `steps`, `pretrain_steps`, `adapt_steps`, `checkpoint_every` ≤ 1 000 000, `batch` ≤ 65 536,
/// `eval_samples` ≤ 1 000 000. Peak memory of a seed: [`DoraConfig::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoraConfig {
    /// Width `d` of the single linear layer `W0 [d, d]` of the capacity and control experiments.
    pub d: usize,
    /// Rank `k` of the target's direction change `Δ` (capacity and control).
    pub target_rank: usize,
    /// `‖Δ‖_F / ‖W0‖_F` of the direction change (capacity and control); finite, ≥ 0.
    pub direction_strength: f64,
    /// Standard deviation of the log column scales of the capacity target
    /// (`scale_j = exp(σ z_j)`, `z_j ~ N(0, 1)`); finite, > 0. The control has none.
    pub rescale_sd: f64,
    /// Adapter ranks of every experiment, distinct; each `1 ≤ r ≤ min(d_in, d_out)` of every
    /// adapted layer.
    pub ranks: Vec<usize>,
    /// LoRA's `α` (scaling `s = α / r`), shared by LoRA and DoRA; finite, > 0.
    pub alpha: f64,
    /// Adam steps of the capacity and control runs.
    pub steps: usize,
    /// Fresh samples `x ~ N(0, I)` per step.
    pub batch: usize,
    /// Held-out samples the normalised MSE is measured on.
    pub eval_samples: usize,
    /// Peak learning rates tried per experiment, method and rank on the tuning seeds (the
    /// schedule decays linearly to 0); each finite and > 0.
    pub lr_grid: Vec<f64>,
    /// Seeds the learning rates are chosen on; distinct, and never a verdict seed.
    pub tuning_seeds: Vec<u64>,
    /// Steps between logged points of the learning curves and between the checkpoints of the
    /// magnitude/direction analysis.
    pub checkpoint_every: usize,
    /// Widths of the pretrained MLP `[n_in, h_1, …, n_out]` (ReLU between layers); ≥ 2 entries.
    pub mlp_widths: Vec<usize>,
    /// Full-training steps of the MLP on task A.
    pub pretrain_steps: usize,
    /// Peak learning rate of the pretraining; finite, > 0.
    pub pretrain_lr: f64,
    /// Adam steps of every arm adapting the MLP to task B.
    pub adapt_steps: usize,
    /// Rank of each layer's direction change in task B.
    pub adapt_target_rank: usize,
    /// Mean `‖Δ_l‖_F / ‖W0_l‖_F` of task B's direction change per layer; finite, ≥ 0.
    pub adapt_direction_strength: f64,
    /// Mean standard deviation of task B's log column scales per layer; finite, ≥ 0.
    pub adapt_rescale_sd: f64,
    /// `‖N_l‖_F / ‖W0_l‖_F` of task B's full-rank noise (not reachable at low rank); finite, ≥ 0.
    pub adapt_noise: f64,
    /// Rank of the adapters whose checkpoints the magnitude/direction analysis reads; one of
    /// `ranks`.
    pub analysis_rank: usize,
    /// Equivalence margin of the control claim, in normalised MSE; finite, > 0.
    pub control_margin: f64,
    /// The real-text experiment (the paper's claims): [`crate::text::TextConfig`].
    pub text: TextConfig,
}

impl Default for DoraConfig {
    fn default() -> Self {
        Self::for_scale(Scale::Small)
    }
}

impl DoraConfig {
    /// Presets: `smoke` (2 seeds in seconds), `small` (5 seeds and the LR sweep in about 3 minutes
    /// on 2 CPU cores, Flex backend) and `full`.
    pub fn for_scale(scale: Scale) -> Self {
        let small = DoraConfig {
            d: 32,
            target_rank: 2,
            direction_strength: 0.5,
            rescale_sd: 0.5,
            ranks: vec![1, 2, 4, 8],
            alpha: 8.0,
            steps: 600,
            batch: 64,
            eval_samples: 2048,
            lr_grid: vec![3e-3, 1e-2, 3e-2, 1e-1],
            tuning_seeds: vec![1000, 1001],
            checkpoint_every: 50,
            mlp_widths: vec![16, 64, 64, 64, 16],
            pretrain_steps: 800,
            pretrain_lr: 1e-2,
            adapt_steps: 600,
            adapt_target_rank: 2,
            adapt_direction_strength: 0.3,
            adapt_rescale_sd: 0.3,
            adapt_noise: 0.02,
            analysis_rank: 4,
            control_margin: 0.02,
            text: TextConfig::for_scale(scale),
        };
        match scale {
            Scale::Smoke => DoraConfig {
                d: 16,
                ranks: vec![1, 2, 4],
                steps: 150,
                eval_samples: 512,
                lr_grid: vec![1e-2, 3e-2, 1e-1],
                tuning_seeds: vec![1000],
                checkpoint_every: 25,
                mlp_widths: vec![8, 24, 24, 8],
                pretrain_steps: 200,
                adapt_steps: 150,
                analysis_rank: 2,
                ..small
            },
            Scale::Full => DoraConfig {
                d: 64,
                target_rank: 4,
                ranks: vec![1, 2, 4, 8, 16],
                steps: 1000,
                batch: 128,
                eval_samples: 4096,
                checkpoint_every: 50,
                mlp_widths: vec![32, 64, 64, 64, 32],
                pretrain_steps: 1500,
                adapt_steps: 1000,
                adapt_target_rank: 4,
                analysis_rank: 8,
                ..small
            },
            Scale::Small => small,
        }
    }

    /// The layers `(d_in, d_out)` of the MLP.
    pub fn mlp_layers(&self) -> Vec<(usize, usize)> {
        self.mlp_widths.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The adapter of rank `rank` on a `d_in × d_out` layer.
    pub fn adapter(&self, d_in: usize, d_out: usize, rank: usize) -> AdapterSpec {
        AdapterSpec {
            d_in,
            d_out,
            rank,
            alpha: self.alpha as f32,
        }
    }

    /// The rank of the control's equivalence claim: the smallest of `ranks` at or above
    /// `target_rank` (the target is then reachable by both methods).
    pub fn control_rank(&self) -> Option<usize> {
        self.ranks
            .iter()
            .copied()
            .filter(|&r| r >= self.target_rank)
            .min()
    }

    /// The ranks sorted ascending.
    pub fn sorted_ranks(&self) -> Vec<usize> {
        let mut r = self.ranks.clone();
        r.sort_unstable();
        r
    }

    /// Checks every setting, sizes and steps against their limits ([`DoraConfig::check_limits`])
    /// first; the error names the first bad one. Adapter geometry goes through
    /// `AdapterSpec::validate`, so its messages are the kernels' ([`Error::Adapter`]).
    pub fn validate(&self) -> Result<(), Error> {
        self.text.validate()?;
        let bad = |name: &str, value: String, rule: &str| {
            Err(Error::Config {
                name: name.into(),
                value,
                rule: rule.into(),
            })
        };
        for (name, v) in [
            ("d", self.d),
            ("target_rank", self.target_rank),
            ("steps", self.steps),
            ("batch", self.batch),
            ("eval_samples", self.eval_samples),
            ("checkpoint_every", self.checkpoint_every),
            ("pretrain_steps", self.pretrain_steps),
            ("adapt_steps", self.adapt_steps),
            ("adapt_target_rank", self.adapt_target_rank),
        ] {
            if v == 0 {
                return bad(name, "0".into(), "must be at least 1");
            }
        }
        self.check_limits()?;
        if self.ranks.is_empty() {
            return bad("ranks", "[]".into(), "must hold at least one adapter rank");
        }
        if self.mlp_widths.len() < 2 {
            return bad(
                "mlp_widths",
                format!("{:?}", self.mlp_widths),
                "needs at least 2 widths [n_in, …, n_out] (one layer)",
            );
        }
        if let Some(i) = self.mlp_widths.iter().position(|&w| w == 0) {
            return bad(
                &format!("mlp_widths[{i}]"),
                "0".into(),
                "every layer width must be at least 1",
            );
        }
        for (i, &r) in self.ranks.iter().enumerate() {
            if self.ranks[..i].contains(&r) {
                return bad(
                    &format!("ranks[{i}]"),
                    r.to_string(),
                    "ranks must be distinct",
                );
            }
            let layers = std::iter::once(("capacity layer", (self.d, self.d)))
                .chain(self.mlp_layers().into_iter().map(|l| ("MLP layer", l)));
            for (what, (d_in, d_out)) in layers {
                self.adapter(d_in, d_out, r)
                    .validate()
                    .map_err(|source| Error::Adapter {
                        setting: format!("ranks[{i}] = {r} ({what} {d_in}×{d_out})"),
                        source,
                    })?;
            }
        }
        // α alone (the ranks above may all have failed first on something else).
        self.adapter(self.d, self.d, 1)
            .validate()
            .map_err(|source| Error::Adapter {
                setting: format!("alpha = {}", self.alpha),
                source,
            })?;
        if self.target_rank > self.d {
            return bad(
                "target_rank",
                self.target_rank.to_string(),
                &format!(
                    "exceeds min(d_in, d_out) = {} of the capacity layer",
                    self.d
                ),
            );
        }
        let mlp_min = self
            .mlp_layers()
            .iter()
            .map(|&(a, b)| a.min(b))
            .min()
            .unwrap_or(0);
        if self.adapt_target_rank > mlp_min {
            return bad(
                "adapt_target_rank",
                self.adapt_target_rank.to_string(),
                &format!("exceeds min(d_in, d_out) = {mlp_min} of the smallest MLP layer"),
            );
        }
        if !self.ranks.contains(&self.analysis_rank) {
            return bad(
                "analysis_rank",
                self.analysis_rank.to_string(),
                &format!("must be one of ranks {:?}", self.ranks),
            );
        }
        if self.control_rank().is_none() {
            return bad(
                "ranks",
                format!("{:?}", self.ranks),
                &format!(
                    "needs a rank ≥ target_rank = {} for the control claim (a target both \
                     methods can reach)",
                    self.target_rank
                ),
            );
        }
        if self.adapt_steps < 2 * self.checkpoint_every {
            return bad(
                "checkpoint_every",
                self.checkpoint_every.to_string(),
                &format!(
                    "must be at most adapt_steps / 2 = {} (the analysis needs ≥ 2 checkpoints)",
                    self.adapt_steps / 2
                ),
            );
        }
        if self.lr_grid.is_empty() {
            return bad(
                "lr_grid",
                "[]".into(),
                "must hold at least one learning rate",
            );
        }
        for (i, &lr) in self.lr_grid.iter().enumerate() {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(
                    &format!("lr_grid[{i}]"),
                    lr.to_string(),
                    "every learning rate must be a finite number above 0",
                );
            }
        }
        for (name, v) in [
            ("pretrain_lr", self.pretrain_lr),
            ("rescale_sd", self.rescale_sd),
            ("control_margin", self.control_margin),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, v.to_string(), "must be a finite number above 0");
            }
        }
        for (name, v) in [
            ("direction_strength", self.direction_strength),
            ("adapt_direction_strength", self.adapt_direction_strength),
            ("adapt_rescale_sd", self.adapt_rescale_sd),
            ("adapt_noise", self.adapt_noise),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, v.to_string(), "must be a finite number ≥ 0");
            }
        }
        if self.tuning_seeds.is_empty() {
            return bad(
                "tuning_seeds",
                "[]".into(),
                "must hold at least one seed to choose the learning rates on",
            );
        }
        for (i, &s) in self.tuning_seeds.iter().enumerate() {
            if self.tuning_seeds[..i].contains(&s) {
                return bad(
                    &format!("tuning_seeds[{i}]"),
                    s.to_string(),
                    "tuning seeds must be distinct",
                );
            }
        }
        Ok(())
    }

    /// [`DoraConfig::validate`], and that no tuning seed is one of `verdict_seeds` (the seeds
    /// the harness runs [`crate::run_seed`] on): a learning rate chosen on a seed would bias
    /// that seed's comparison.
    pub fn validate_with_seeds(&self, verdict_seeds: &[u64]) -> Result<(), Error> {
        self.validate()?;
        if let Some(s) = self.tuning_seeds.iter().find(|s| verdict_seeds.contains(s)) {
            return Err(Error::Config {
                name: "tuning_seeds".into(),
                value: s.to_string(),
                rule: "is also a verdict seed (--seeds); tuning seeds must differ from the \
                       verdict seeds, so pick --seeds without it or other tuning_seeds"
                    .into(),
            });
        }
        self.text.validate_with_seeds(verdict_seeds)
    }
}
