//! The typed run size every config preset is chosen by.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How large a run is. Every reproduction has one preset per scale; benchmark shapes never
/// change with it. Serialised lower-case (`"smoke"`, `"small"`, `"full"`), as the manifest stores
/// it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// CI: the same code paths with fewer steps, seeds and samples.
    Smoke,
    /// The default: the claims, in minutes on 2 cores.
    #[default]
    Small,
    /// Longer runs and more samples.
    Full,
}

impl Scale {
    /// Every scale, smallest first.
    pub const ALL: [Scale; 3] = [Scale::Smoke, Scale::Small, Scale::Full];

    /// Lower-case name, as the CLI and the manifest spell it.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Small => "small",
            Scale::Full => "full",
        }
    }

    /// Default number of verdict seeds.
    pub fn default_seeds(self) -> u64 {
        match self {
            Scale::Smoke => 2,
            Scale::Small => 5,
            Scale::Full => 10,
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scale name that is not `smoke`, `small` or `full`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scale {0:?}: expected smoke, small or full")]
pub struct UnknownScale(pub String);

impl FromStr for Scale {
    type Err = UnknownScale;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scale::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| UnknownScale(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for s in Scale::ALL {
            assert_eq!(s.name().parse::<Scale>(), Ok(s));
            assert_eq!(s.to_string(), s.name());
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Scale>(&json).unwrap(), s);
        }
        for bad in ["other", "Small", "", "smal"] {
            let e = bad.parse::<Scale>().unwrap_err();
            assert_eq!(e.0, bad);
            assert!(e.to_string().contains("smoke, small or full"), "{e}");
            assert!(serde_json::from_str::<Scale>(&format!("\"{bad}\"")).is_err());
        }
        let long = "x".repeat(1000).parse::<Scale>().unwrap_err();
        assert!(long.to_string().len() < 100, "an unknown name is shortened");
        assert_eq!(Scale::default(), Scale::Small);
        assert!(Scale::Smoke.default_seeds() < Scale::Full.default_seeds());
    }
}
