//! Stage and run configuration, and [`ConfigError`], the one error type of this crate.
//!
//! A continual pre-training run is a sequence of stages (e.g. stage 0 on `D0`, stage 1 on `D1`
//! with replay of `D0`). Each [`StageConfig`] pairs a [`Schedule`] with its length in optimizer
//! steps and the share of every batch replayed from the old data; [`RunConfig`] lists the stages
//! and says whether the optimizer state is reset between them (the paper resets it).
//!
//! Rates in messages are printed in scientific notation (`3e-4`), shares and step counts as
//! plain numbers; stage indices are 0-based.

use serde::{Deserialize, Serialize};

use crate::replay::Dataset;
use crate::schedule::Schedule;

/// Formats a learning rate for an error message: `0` for zero, else scientific notation
/// (`3e-4`, `2.5e-5`), `NaN` / `inf` / `-inf` as Rust prints them.
pub(crate) fn fmt_rate(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v.is_finite() {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Checks that a replay share `x` is a finite number in `[0, 1]`.
pub(crate) fn check_share(share: f64) -> Result<(), ConfigError> {
    if share.is_finite() && (0.0..=1.0).contains(&share) {
        Ok(())
    } else {
        Err(ConfigError::ReplayShare { share })
    }
}

/// What is wrong with a schedule, stage, run or replay request. Each message names the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A learning rate is NaN or infinite, e.g. `η_max is NaN; a learning rate must be finite`.
    #[error("{name} is {}; a learning rate must be finite", fmt_rate(*.value))]
    NonFiniteRate {
        /// Which rate: `lr`, `η_max`, `η_min` or `η_const`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A learning rate is below zero, e.g. `η_min -1e-5 is negative`.
    #[error("{name} {} is negative; a learning rate must be ≥ 0", fmt_rate(*.value))]
    NegativeRate {
        /// Which rate: `lr`, `η_max`, `η_min` or `η_const`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// `η_min > η_max`, e.g. `η_min 3e-4 is above η_max 3e-5`.
    #[error("η_min {} is above η_max {}", fmt_rate(*.eta_min), fmt_rate(*.eta_max))]
    MinAboveMax {
        /// The floor given.
        eta_min: f64,
        /// The peak given.
        eta_max: f64,
    },
    /// The infinite schedule's plateau is not within `[η_min, η_max]`.
    #[error(
        "η_const {} is outside [η_min {}, η_max {}]",
        fmt_rate(*.eta_const),
        fmt_rate(*.eta_min),
        fmt_rate(*.eta_max)
    )]
    ConstOutsideRange {
        /// The plateau given.
        eta_const: f64,
        /// The floor given.
        eta_min: f64,
        /// The peak given.
        eta_max: f64,
    },
    /// The infinite schedule anneals geometrically from `η_const` to `η_min`, which needs
    /// `η_min > 0` when `η_const > 0` and the anneal phase is not empty.
    #[error(
        "the infinite schedule anneals exponentially from η_const {} to η_min, so η_min must be \
         above 0 (got 0)",
        fmt_rate(*.eta_const)
    )]
    ZeroAnnealFloor {
        /// The plateau the anneal starts from.
        eta_const: f64,
    },
    /// A cosine schedule's warmup is longer than the schedule, e.g.
    /// `warmup (200 steps) is longer than the stage (100 steps)`.
    #[error("warmup ({warmup} steps) is longer than the stage ({total} steps)")]
    WarmupTooLong {
        /// `warmup_steps` given.
        warmup: usize,
        /// `total_steps` given.
        total: usize,
    },
    /// A schedule with a length spans zero steps.
    #[error("the {kind} schedule spans 0 steps; it needs at least 1")]
    ZeroScheduleSteps {
        /// `cosine` or `infinite`.
        kind: &'static str,
    },
    /// A stage runs zero optimizer steps.
    #[error("a stage must run at least 1 step, not 0")]
    ZeroStageSteps,
    /// A schedule's length differs from its stage's, e.g.
    /// `the schedule spans 90 steps but the stage runs 100 steps; they must be equal`.
    #[error(
        "the schedule spans {schedule_steps} steps but the stage runs {stage_steps} steps; \
         they must be equal"
    )]
    StepsMismatch {
        /// [`Schedule::total_steps`].
        schedule_steps: usize,
        /// [`StageConfig::steps`].
        stage_steps: usize,
    },
    /// A replay share is NaN, infinite or outside `[0, 1]`, e.g.
    /// `replay share 1.5 is outside [0, 1]`.
    #[error("replay share {share} is outside [0, 1]")]
    ReplayShare {
        /// The share given.
        share: f64,
    },
    /// A batch needs examples from a dataset that holds none, e.g.
    /// `the old dataset is empty but the batch needs 1 old example(s)`.
    #[error("the {which} dataset is empty but the batch needs {needed} {which} example(s)")]
    EmptyDataset {
        /// Which dataset is empty.
        which: Dataset,
        /// How many examples of it the batch needs.
        needed: usize,
    },
    /// A run lists no stages.
    #[error("a run needs at least one stage, got none")]
    NoStages,
    /// A stage of a run is invalid, e.g. `stage 1: replay share -0.1 is outside [0, 1]`.
    #[error("stage {index}: {error}")]
    Stage {
        /// 0-based index of the stage.
        index: usize,
        /// What is wrong with it.
        error: Box<ConfigError>,
    },
    /// Any other bad setting of the experiment (model, data or arm lists), with its message,
    /// e.g. `batch must be at least 1, got 0`.
    #[error("{0}")]
    Invalid(String),
    /// A run config is not valid JSON for [`RunConfig`].
    #[error("bad run config JSON: {0}")]
    Parse(String),
}

/// One stage of continual pre-training: a learning-rate schedule over `steps` optimizer steps,
/// with a share `replay_share = x` of every batch drawn from the old data (from the datasets of
/// earlier stages), the rest from this stage's dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The learning rate as a function of the step within this stage.
    pub schedule: Schedule,
    /// Optimizer steps in this stage (≥ 1).
    pub steps: usize,
    /// Share `x ∈ [0, 1]` of examples replayed from old data (the paper uses 0–50%).
    pub replay_share: f64,
}

impl StageConfig {
    /// Checks the stage: `steps ≥ 1`, the schedule is valid ([`Schedule::validate`]), a
    /// schedule with a length ([`Schedule::total_steps`] is `Some(n)`) spans exactly
    /// `n = steps`, and `replay_share ∈ [0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.steps == 0 {
            return Err(ConfigError::ZeroStageSteps);
        }
        self.schedule.validate()?;
        if let Some(n) = self.schedule.total_steps()
            && n != self.steps
        {
            return Err(ConfigError::StepsMismatch {
                schedule_steps: n,
                stage_steps: self.steps,
            });
        }
        check_share(self.replay_share)
    }
}

/// A whole continual pre-training run: stages in order, and whether the optimizer state (e.g.
/// AdamW's moments) is reset when a new stage starts. The paper resets it between datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The stages, run in order (at least one).
    pub stages: Vec<StageConfig>,
    /// Reset the optimizer state at the start of every stage after the first.
    pub reset_optimizer_between_stages: bool,
}

impl RunConfig {
    /// Checks the run: at least one stage, and each stage valid ([`StageConfig::validate`]);
    /// a stage's error comes back wrapped in [`ConfigError::Stage`] with its 0-based index.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.stages.is_empty() {
            return Err(ConfigError::NoStages);
        }
        for (index, stage) in self.stages.iter().enumerate() {
            stage.validate().map_err(|e| ConfigError::Stage {
                index,
                error: Box::new(e),
            })?;
        }
        Ok(())
    }

    /// Parses a run config from JSON and validates it. Unknown fields are rejected.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let run: RunConfig =
            serde_json::from_str(json).map_err(|e| ConfigError::Parse(e.to_string()))?;
        run.validate()?;
        Ok(run)
    }

    /// Total optimizer steps over all stages, `Σ steps` (saturating).
    pub fn total_steps(&self) -> usize {
        self.stages
            .iter()
            .fold(0usize, |acc, s| acc.saturating_add(s.steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(eta_max: f64, eta_min: f64, warmup: usize, total: usize) -> Schedule {
        Schedule::Cosine {
            eta_max,
            eta_min,
            warmup_steps: warmup,
            total_steps: total,
        }
    }

    fn err_msg(r: Result<(), ConfigError>) -> String {
        r.expect_err("config should be rejected").to_string()
    }

    #[test]
    fn stage_accepts_matching_lengths() {
        let stage = StageConfig {
            schedule: cosine(3e-4, 3e-5, 10, 1000),
            steps: 1000,
            replay_share: 0.05,
        };
        stage.validate().unwrap();
        let constant = StageConfig {
            schedule: Schedule::Constant { lr: 3e-5 },
            steps: 7,
            replay_share: 0.0,
        };
        constant.validate().unwrap();
    }

    #[test]
    fn stage_zero_steps() {
        let stage = StageConfig {
            schedule: Schedule::Constant { lr: 1e-4 },
            steps: 0,
            replay_share: 0.0,
        };
        let msg = err_msg(stage.validate());
        assert!(msg.contains("at least 1 step"), "{msg}");
    }

    #[test]
    fn stage_length_mismatch_names_both() {
        let stage = StageConfig {
            schedule: cosine(3e-4, 3e-5, 10, 90),
            steps: 100,
            replay_share: 0.0,
        };
        let msg = err_msg(stage.validate());
        assert!(msg.contains("90 steps"), "{msg}");
        assert!(msg.contains("100 steps"), "{msg}");
    }

    #[test]
    fn stage_bad_share() {
        for (share, text) in [(1.5, "1.5"), (-0.1, "-0.1"), (f64::NAN, "NaN")] {
            let stage = StageConfig {
                schedule: Schedule::Constant { lr: 1e-4 },
                steps: 10,
                replay_share: share,
            };
            let msg = err_msg(stage.validate());
            assert!(
                msg.contains(&format!("replay share {text} is outside [0, 1]")),
                "{msg}"
            );
        }
    }

    #[test]
    fn stage_passes_schedule_errors_through() {
        let stage = StageConfig {
            schedule: cosine(3e-5, 3e-4, 10, 100),
            steps: 100,
            replay_share: 0.0,
        };
        let msg = err_msg(stage.validate());
        assert!(msg.contains("η_min 3e-4 is above η_max 3e-5"), "{msg}");
    }

    fn paper_run() -> RunConfig {
        RunConfig {
            stages: vec![
                StageConfig {
                    schedule: cosine(3e-4, 3e-5, 10, 1000),
                    steps: 1000,
                    replay_share: 0.0,
                },
                StageConfig {
                    schedule: cosine(3e-4, 3e-5, 10, 1000),
                    steps: 1000,
                    replay_share: 0.05,
                },
            ],
            reset_optimizer_between_stages: true,
        }
    }

    #[test]
    fn run_validates_and_sums_steps() {
        let run = paper_run();
        run.validate().unwrap();
        assert_eq!(run.total_steps(), 2000);
    }

    #[test]
    fn run_needs_a_stage() {
        let run = RunConfig {
            stages: vec![],
            reset_optimizer_between_stages: true,
        };
        let msg = err_msg(run.validate());
        assert!(msg.contains("at least one stage"), "{msg}");
    }

    #[test]
    fn run_names_the_bad_stage() {
        let mut run = paper_run();
        run.stages[1].replay_share = 2.0;
        let msg = err_msg(run.validate());
        assert!(
            msg.contains("stage 1: replay share 2 is outside [0, 1]"),
            "{msg}"
        );
    }

    #[test]
    fn run_serde_round_trip() {
        let run = paper_run();
        let json = serde_json::to_string_pretty(&run).unwrap();
        assert!(json.contains("\"kind\": \"cosine\""), "{json}");
        let back = RunConfig::from_json(&json).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn run_from_json_rejects_bad_input() {
        let unknown = r#"{"stages": [], "reset_optimizer_between_stages": true, "typo": 1}"#;
        let msg = RunConfig::from_json(unknown).unwrap_err().to_string();
        assert!(msg.contains("bad run config JSON"), "{msg}");
        assert!(msg.contains("typo"), "{msg}");

        let invalid = r#"{"stages": [], "reset_optimizer_between_stages": false}"#;
        let msg = RunConfig::from_json(invalid).unwrap_err().to_string();
        assert!(msg.contains("at least one stage"), "{msg}");
    }

    #[test]
    fn rate_formatting() {
        assert_eq!(fmt_rate(3e-4), "3e-4");
        assert_eq!(fmt_rate(2.5e-5), "2.5e-5");
        assert_eq!(fmt_rate(0.0), "0");
        assert_eq!(fmt_rate(f64::NAN), "NaN");
        assert_eq!(fmt_rate(f64::INFINITY), "inf");
    }
}
