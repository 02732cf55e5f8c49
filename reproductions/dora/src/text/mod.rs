//! DoRA on real text: continual pre-training's English base model (a
//! [`TinyLm`](claimbench_continual::model::TinyLm) trained on Debian's English fortunes, the
//! `continual/stage0/seed-<s>` unit's artifacts) adapted to a shifted domain (German fortunes,
//! English manual pages) by full fine-tuning, LoRA and DoRA on every attention and
//! feed-forward projection, through the fused layers of `claimbench-kernels`.
//!
//! - [`TextConfig`]: the base model's settings (a copy of continual's, checked against the
//!   stored checkpoint's), the shifts, ranks, steps, learning-rate grid and tuning seeds, the
//!   exact-norm arm, the memory measurement's shape;
//! - [`model::AdaptedLm`]: the base model with its projections adapted (zero adapters give the
//!   base model's logits; merged adapters give one plain model);
//! - [`train`]: one arm, the learning-rate sweep ([`train::tune`]), one seed ([`train::run_seed`]);
//! - [`measure`]: what a seed measured, as metric rows and back;
//! - [`claims`]: the claims on held-out test loss and the `(ΔD, ΔM)` correlations.
//!
//! Data: training windows of the shift's training split (seeded offsets, the same batch stream
//! for every arm of a seed), learning rates chosen on the validation split of the tuning seeds'
//! own base models, verdicts on the test split (evenly spaced windows). Losses are mean
//! next-token cross-entropy in nats.

pub mod claims;
pub mod measure;
pub mod model;
pub mod report;
pub mod train;
pub mod units;

use claimbench_continual::{ExperimentConfig, Shift};
use claimbench_paper::Scale;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::layer::Method;
use crate::memory::MemoryShape;

/// The settings of the real-text experiment. Missing fields take the `small` preset's value;
/// unknown fields are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// The base model and its text: continual pre-training's settings. A verdict seed's base
    /// model is continual's stored stage-0 checkpoint, whose settings must agree with these on
    /// everything stage 0 depends on ([`claimbench_continual::stage0_settings`]).
    pub base: ExperimentConfig,
    /// The shifts adapted to (`smoke` the strong one, German; `small` and `full` both).
    pub shifts: Vec<Shift>,
    /// Adapter ranks, distinct; the largest at most `d_model / 8` (low rank).
    pub ranks: Vec<usize>,
    /// LoRA's `α` as a multiple of the rank (`α = alpha_per_rank · r`, so `s = α / r` is the same
    /// at every rank; the paper's LLaMA runs use `α = 2r`); finite, > 0.
    pub alpha_per_rank: f64,
    /// Adam steps of every arm.
    pub steps: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Warmup steps before the linear decay to 0 (< `steps`).
    pub warmup: usize,
    /// Peak learning rates tried per shift, method and rank on the tuning seeds.
    pub lr_grid: Vec<f64>,
    /// Seeds the learning rates are chosen on (each with its own base model); never a verdict
    /// seed.
    pub tuning_seeds: Vec<u64>,
    /// Steps between evaluations (learning curves, `(ΔD, ΔM)` checkpoints).
    pub eval_every: usize,
    /// Held-out test windows per domain the verdicts are measured on.
    pub test_sequences: usize,
    /// The LoRA/DoRA rank of the magnitude/direction analysis and of the exact-norm arm; one of
    /// `ranks`.
    pub analysis_rank: usize,
    /// Equivalence margin (nats of test loss) of the detached-norm claim; finite, > 0.
    pub exact_margin: f64,
    /// The layer stack whose training-step memory is measured, exact against detached norm.
    pub memory: MemoryShape,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self::for_scale(Scale::Small)
    }
}

impl TextConfig {
    /// Presets. The base model is continual's preset of the same scale (d 32 at `smoke`, so
    /// ranks up to 4; d 64 at `small`, ranks 2/4/8).
    pub fn for_scale(scale: Scale) -> Self {
        let small = TextConfig {
            base: ExperimentConfig::for_scale(Scale::Small),
            shifts: vec![Shift::Weak, Shift::Strong],
            ranks: vec![2, 4, 8],
            alpha_per_rank: 2.0,
            steps: 200,
            batch: 16,
            warmup: 10,
            lr_grid: vec![3e-3, 1e-2, 3e-2, 1e-1],
            tuning_seeds: vec![1000],
            eval_every: 20,
            test_sequences: 128,
            analysis_rank: 4,
            exact_margin: 0.03,
            memory: MemoryShape::default(),
        };
        match scale {
            Scale::Smoke => TextConfig {
                base: ExperimentConfig::for_scale(Scale::Smoke),
                shifts: vec![Shift::Strong],
                ranks: vec![2, 4],
                steps: 40,
                warmup: 4,
                lr_grid: vec![1e-2, 3e-2],
                eval_every: 10,
                test_sequences: 32,
                analysis_rank: 2,
                ..small
            },
            Scale::Full => TextConfig {
                base: ExperimentConfig::for_scale(Scale::Full),
                ranks: vec![2, 4, 8, 16],
                steps: 1000,
                warmup: 50,
                lr_grid: vec![1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                tuning_seeds: vec![1000, 1001],
                eval_every: 50,
                test_sequences: 256,
                analysis_rank: 8,
                ..small
            },
            Scale::Small => small,
        }
    }

    /// The arms of one shift: FT, LoRA and DoRA at every rank, and DoRA with the exact norm at
    /// `analysis_rank`.
    pub fn arms(&self) -> Vec<TextArm> {
        let mut out = vec![TextArm::FT];
        for method in [Method::Lora, Method::Dora] {
            for &rank in &self.sorted_ranks() {
                out.push(TextArm {
                    method,
                    rank,
                    exact: false,
                });
            }
        }
        out.push(TextArm {
            method: Method::Dora,
            rank: self.analysis_rank,
            exact: true,
        });
        out
    }

    /// The ranks sorted ascending.
    pub fn sorted_ranks(&self) -> Vec<usize> {
        let mut r = self.ranks.clone();
        r.sort_unstable();
        r
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, value: String, rule: &str| {
            Err(Error::Config {
                name: format!("text.{name}"),
                value,
                rule: rule.into(),
            })
        };
        self.base
            .validate()
            .map_err(|e| Error::Text(format!("text.base: {e}")))?;
        for (name, v, max) in [
            ("steps", self.steps, 1_000_000),
            ("batch", self.batch, 65_536),
            ("eval_every", self.eval_every, 1_000_000),
            ("test_sequences", self.test_sequences, 1_000_000),
        ] {
            if v == 0 || v > max {
                return bad(name, v.to_string(), &format!("must be in 1..={max}"));
            }
        }
        if self.warmup >= self.steps {
            return bad(
                "warmup",
                self.warmup.to_string(),
                &format!("must be below steps = {}", self.steps),
            );
        }
        if self.shifts.is_empty() {
            return bad("shifts", "[]".into(), "must name at least one shift");
        }
        for (i, s) in self.shifts.iter().enumerate() {
            if self.shifts[..i].contains(s) {
                return bad(&format!("shifts[{i}]"), s.name().into(), "must be distinct");
            }
        }
        let d = self.base.model.d_model;
        if self.ranks.is_empty() {
            return bad("ranks", "[]".into(), "must hold at least one rank");
        }
        for (i, &r) in self.ranks.iter().enumerate() {
            if r == 0 || 8 * r > d {
                return bad(
                    &format!("ranks[{i}]"),
                    r.to_string(),
                    &format!("must be in 1..={} (d_model {d} / 8: low rank)", d / 8),
                );
            }
            if self.ranks[..i].contains(&r) {
                return bad(&format!("ranks[{i}]"), r.to_string(), "must be distinct");
            }
        }
        if !self.ranks.contains(&self.analysis_rank) {
            return bad(
                "analysis_rank",
                self.analysis_rank.to_string(),
                &format!("must be one of ranks {:?}", self.ranks),
            );
        }
        for (name, v) in [
            ("alpha_per_rank", self.alpha_per_rank),
            ("exact_margin", self.exact_margin),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, v.to_string(), "must be a finite number above 0");
            }
        }
        if self.lr_grid.is_empty() || self.lr_grid.len() > 64 {
            return bad(
                "lr_grid",
                format!("{:?}", self.lr_grid),
                "must hold 1 to 64 learning rates",
            );
        }
        for (i, &lr) in self.lr_grid.iter().enumerate() {
            if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
                return bad(
                    &format!("lr_grid[{i}]"),
                    lr.to_string(),
                    "must be in (0, 1]",
                );
            }
        }
        if self.tuning_seeds.is_empty() || self.tuning_seeds.len() > 64 {
            return bad(
                "tuning_seeds",
                format!("{:?}", self.tuning_seeds),
                "must hold 1 to 64 seeds",
            );
        }
        for (i, s) in self.tuning_seeds.iter().enumerate() {
            if self.tuning_seeds[..i].contains(s) {
                return bad(
                    &format!("tuning_seeds[{i}]"),
                    s.to_string(),
                    "must be distinct",
                );
            }
        }
        self.memory.validate()
    }

    /// [`TextConfig::validate`], and no tuning seed among `verdict_seeds`.
    pub fn validate_with_seeds(&self, verdict_seeds: &[u64]) -> Result<(), Error> {
        self.validate()?;
        if let Some(s) = self.tuning_seeds.iter().find(|s| verdict_seeds.contains(s)) {
            return Err(Error::Config {
                name: "text.tuning_seeds".into(),
                value: s.to_string(),
                rule: "is also a verdict seed (--seeds); tuning seeds must differ from the \
                       verdict seeds"
                    .into(),
            });
        }
        Ok(())
    }
}

/// One arm of the real-text experiment: a method, its rank (0 for FT) and, for DoRA, whether
/// the column norm gets its exact gradient (Eq. 6) instead of the detached one (Eq. 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TextArm {
    /// The method.
    pub method: Method,
    /// Rank (0 for FT).
    pub rank: usize,
    /// DoRA with the exact norm gradient.
    pub exact: bool,
}

impl TextArm {
    /// Full fine-tuning.
    pub const FT: TextArm = TextArm {
        method: Method::Full,
        rank: 0,
        exact: false,
    };

    /// `ft`, `lora/r4`, `dora/r4`, `dora-exact/r4`: the arm's part of metric names.
    pub fn name(&self) -> String {
        let m = match (self.method, self.exact) {
            (Method::Dora, true) => "dora-exact",
            (m, _) => m.as_str(),
        };
        format!("{m}/r{}", self.rank)
    }

    /// The inverse of [`TextArm::name`].
    pub fn parse(s: &str) -> Option<TextArm> {
        let (m, r) = s.split_once("/r")?;
        let rank: usize = r.parse().ok()?;
        let (method, exact) = match m {
            "dora-exact" => (Method::Dora, true),
            other => (Method::parse(other)?, false),
        };
        ((method == Method::Full) == (rank == 0)).then_some(TextArm {
            method,
            rank,
            exact,
        })
    }
}
