//! The two shifts ([`Shift`]) and the arms of the experiment ([`Arm`]).

use super::*;

/// The two distribution shifts of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shift {
    /// Pile → SlimPajama proxy: D1 is other English text (`ExperimentConfig::weak`, English
    /// manual pages by default).
    Weak,
    /// Pile → German proxy: D1 is German text (`ExperimentConfig::strong`, German fortunes by
    /// default).
    Strong,
}

impl Shift {
    /// `weak` or `strong`.
    pub fn name(self) -> &'static str {
        match self {
            Shift::Weak => "weak",
            Shift::Strong => "strong",
        }
    }
}

/// One arm of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Arm {
    /// Re-warm to `η_max`, re-decay to `η_min`, replay `share` of every batch from D0.
    Replay {
        /// Which D1.
        shift: Shift,
        /// Replay share `x ∈ [0, 1]`.
        share: f64,
    },
    /// Re-warm to `peak` instead of `η_max`, no replay.
    Peak {
        /// Which D1.
        shift: Shift,
        /// Stage-1 peak learning rate.
        peak: f64,
    },
    /// No re-warming: stage 1 at a constant `η_min`, no replay.
    ConstantMin {
        /// Which D1.
        shift: Shift,
    },
    /// From scratch on D0 ∪ D1 (half of each batch from each), both stages' steps, one cosine.
    Union {
        /// Which D1.
        shift: Shift,
    },
    /// Re-warm + re-decay on D0 itself (no shift).
    SameData,
    /// The infinite schedule through both stages, replaying `share` in stage 1.
    Infinite {
        /// Which D1.
        shift: Shift,
        /// Replay share of stage 1.
        share: f64,
    },
}

impl Arm {
    /// A stable name, used in unit ids and metrics: `replay-5pct`, `peak-0.006`, `constant-min`,
    /// `union`, `same-data`, `infinite-5pct`.
    pub fn name(&self) -> String {
        match *self {
            Arm::Replay { share, .. } => format!("replay-{}", pct(share)),
            Arm::Peak { peak, .. } => format!("peak-{peak}"),
            Arm::ConstantMin { .. } => "constant-min".into(),
            Arm::Union { .. } => "union".into(),
            Arm::SameData => "same-data".into(),
            Arm::Infinite { share, .. } => format!("infinite-{}", pct(share)),
        }
    }

    /// The shift, or `None` for [`Arm::SameData`].
    pub fn shift(&self) -> Option<Shift> {
        match *self {
            Arm::Replay { shift, .. }
            | Arm::Peak { shift, .. }
            | Arm::ConstantMin { shift }
            | Arm::Union { shift }
            | Arm::Infinite { shift, .. } => Some(shift),
            Arm::SameData => None,
        }
    }

    /// The experiment the arm belongs to: `weak`, `strong` or `same-data`.
    pub fn experiment(&self) -> &'static str {
        self.shift().map_or("same-data", Shift::name)
    }
}

/// `0.005 → "0.5pct"`, `0.05 → "5pct"`.
pub(super) fn pct(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    format!("{p}pct")
}
