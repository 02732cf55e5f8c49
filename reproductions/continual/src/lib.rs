//! Pure-Rust pieces of the continual pre-training reproduction.
//!
//! Paper: Ibrahim et al., *Simple and Scalable Strategies to Continually Pre-train Large Language
//! Models*, arXiv 2403.08763. Its headline: re-warming and re-decaying the learning rate, plus
//! replaying a small share `x` of old data in every batch, matches re-training from scratch on
//! the union of the datasets. This crate holds the parts of that recipe that need no tensors:
//!
//! - [`schedule`]: learning-rate schedules as data ([`Schedule`]): constant, linear warmup +
//!   cosine decay (used again in a later stage it is "re-warm + re-decay"), and the paper's
//!   infinite schedule (warmup → cosine cooldown → constant → exponential anneal).
//! - [`replay`]: [`ReplayMixer`], which puts exactly a share `x` of old examples into the stream
//!   of batches with no drift (`|old − x·N| < 1` after any `N` examples) and a seed that decides
//!   only *which* positions are old and which examples are drawn.
//! - [`config`]: [`StageConfig`] / [`RunConfig`] (serde, validated) and the one error type,
//!   [`ConfigError`], whose messages name the bad value.
//! - [`limits`]: the stated bounds of every size and step of [`ExperimentConfig`] and the
//!   memory estimate of one arm ([`ExperimentConfig::estimated_bytes`]).
//!
//! Nothing here panics on user input: every bad value comes back as a [`ConfigError`].
//!
//! ```
//! use claimbench_continual::{ReplayMixer, Schedule};
//!
//! // Re-warm + re-decay: the paper's cosine, η_max 3e-4 → η_min 3e-5, 1% warmup.
//! let s = Schedule::Cosine { eta_max: 3e-4, eta_min: 3e-5, warmup_steps: 10, total_steps: 1000 };
//! s.validate()?;
//! assert!((s.lr(10) - 3e-4).abs() < 1e-15);
//! assert!((s.lr(1000) - 3e-5).abs() < 1e-15);
//!
//! // 5% replay at batch size 16: 0.8 old examples per batch, exactly 80 per 100 batches.
//! let mut mix = ReplayMixer::new(0.05, 42)?;
//! let old: usize = (0..100).map(|_| mix.batch(16)).sum();
//! assert_eq!(old, 80);
//! # Ok::<(), claimbench_continual::ConfigError>(())
//! ```
#![deny(missing_docs)]

pub mod claims;
pub mod config;
pub mod data;
pub mod experiment;
pub mod limits;
pub mod model;
pub mod paper;
pub mod replay;
pub mod schedule;

pub use config::{ConfigError, RunConfig, StageConfig};
pub use experiment::{
    Arm, ArmResult, Checkpoint, EvalPoint, ExperimentConfig, Shift, TrainError, pretrain, run_arm,
    run_arm_from, stage0_settings, uses_checkpoint,
};
pub use replay::{Dataset, ReplayMixer, Source};
pub use schedule::Schedule;
