//! What one arm measures ([`ArmResult`], [`EvalPoint`]) and how training fails ([`TrainError`]).

use super::*;

/// One logged evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Global optimizer steps done (0 = before training).
    pub step: usize,
    /// Learning rate of the last step (0 before training).
    pub lr: f64,
    /// Mean training loss over the steps since the previous point (NaN at step 0).
    pub train_loss: f64,
    /// Held-out D0 loss (nats per token).
    pub d0_loss: f64,
    /// Held-out D1 loss (nats per token).
    pub d1_loss: f64,
}

/// What one arm on one seed measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmResult {
    /// The arm.
    pub arm: Arm,
    /// The seed.
    pub seed: u64,
    /// Logged evaluations over both stages (global steps).
    pub curve: Vec<EvalPoint>,
    /// The step where stage 1 starts (`stage_steps`); the union has no stage boundary and
    /// reports its midpoint.
    pub boundary: usize,
    /// D0 / D1 loss at the boundary (the checkpoint before stage 1).
    pub pre: (f64, f64),
    /// D0 / D1 loss at the end.
    pub last: (f64, f64),
    /// Highest D0 loss logged during stage 1.
    pub peak_d0: f64,
}

impl ArmResult {
    /// Forgetting: final D0 loss minus D0 loss at the boundary.
    pub fn forgetting(&self) -> f64 {
        self.last.0 - self.pre.0
    }

    /// Adaptation: D1 loss at the boundary minus final D1 loss.
    pub fn adaptation(&self) -> f64 {
        self.pre.1 - self.last.1
    }

    /// Mean of the final D0 and D1 losses (the paper's "average" column).
    pub fn average(&self) -> f64 {
        0.5 * (self.last.0 + self.last.1)
    }
}

/// A training error: bad config, or a loss that stopped being finite.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The loss became NaN or infinite.
    #[error("training diverged: loss {loss} at step {step} of arm {arm}")]
    Diverged {
        /// The arm.
        arm: String,
        /// Global step.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// A checkpoint could not be recorded or loaded.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}
