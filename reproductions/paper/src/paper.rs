//! The [`Paper`] trait every reproduction crate implements, its object-safe form [`DynPaper`]
//! (settings as JSON, so the harness can merge, hash and store them without knowing their
//! types), and the smaller [`KernelSuite`] trait of the kernel checks and benchmarks.

use std::fmt::Debug;

use claimbench_claims::{Claim, ClaimSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{DataCard, DataEnv};
use crate::record::UnitRecord;
use crate::report::Section;
use crate::scale::Scale;
use crate::unit::{Fallback, Outcome, RunContext, UnitSpec};

/// Who a paper is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaperInfo {
    /// Paper id, one segment of the id grammar (e.g. `dora`): `--only dora`, `papers/dora.html`.
    pub id: &'static str,
    /// Title as published.
    pub title: &'static str,
    /// arXiv id, e.g. `2402.09353`.
    pub arxiv: &'static str,
    /// The kernel ids (`kernels/<name>`) the paper's claims lean on; `--only <paper>` selects
    /// their units too.
    pub kernels: &'static [&'static str],
}

/// A paper's settings did not parse or are out of bounds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{paper}: {message}")]
pub struct ConfigError {
    /// Paper id.
    pub paper: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

/// What a paper's claims came to: the claims with verdicts, and warnings for evidence left out
/// (a unit whose metrics do not parse, a claim family that could not be evaluated).
#[derive(Debug, Default)]
pub struct Judged {
    /// Claims with computed verdicts.
    pub claims: Vec<Claim>,
    /// One line each, naming what was left out and why.
    pub warnings: Vec<String>,
}

/// One reproduced paper. The harness owns the run store, resume, locking, the settings' merge
/// and hash, `--only`, statistics, plots and templates; a paper owns what is specific to it.
///
/// Architecture invariant: a paper reads nothing but its settings, its units' stored records
/// and its [`RunContext`]; everything it measures leaves as [`crate::MetricRow`]s, so a report
/// and the claims can be rebuilt from a run directory alone.
pub trait Paper: Send + Sync {
    /// Its settings (one preset per [`Scale`], overridable field by field).
    type Config: Clone + Debug + PartialEq + Serialize + DeserializeOwned;

    /// Id, title, arXiv id, kernels.
    fn info(&self) -> PaperInfo;

    /// The preset of `scale`.
    fn config(&self, scale: Scale) -> Self::Config;

    /// Checks the settings; with `seeds` (the run's verdict seeds, given when the run selected
    /// the paper) also what depends on them, e.g. that no tuning seed judges.
    fn validate(&self, cfg: &Self::Config, seeds: Option<&[u64]>) -> Result<(), String>;

    /// Bytes of tensors its largest unit holds at once (units run one at a time); 0 when it
    /// trains nothing.
    fn estimated_bytes(&self, cfg: &Self::Config) -> u64;

    /// Every unit at these seeds, in execution order (dependencies first).
    fn units(&self, cfg: &Self::Config, seeds: &[u64]) -> Vec<UnitSpec>;

    /// Runs one of its units.
    fn run_unit(&self, cfg: &Self::Config, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome;

    /// Its claims, judged on the passed records of its units. `scale` is the run's, as the
    /// manifest spells it (claims say whether they ran at the paper's scale).
    fn claims(&self, cfg: &Self::Config, records: &[UnitRecord], scale: &str) -> Judged;

    /// Its claims as stated before the run (ids, kinds, tests, bands and their rules), at
    /// these settings: exactly the ids [`Paper::claims`] judges when every unit passed.
    fn claim_specs(&self, cfg: &Self::Config) -> Vec<ClaimSpec>;

    /// The paper page's own sections (data; the harness draws and renders them).
    fn sections(&self, cfg: &Self::Config, records: &[UnitRecord]) -> Vec<Section>;

    /// Where its units run other than on burn's defaults, and why (none by default).
    fn fallbacks(&self) -> Vec<Fallback> {
        Vec::new()
    }
    /// The text its units will read, one card per domain (`used_by` naming this paper), loaded
    /// from `env` before any unit runs; none for a paper without a corpus. An error is an input
    /// or environment problem (a missing package, a corpus root without a domain): the harness
    /// stops with exit 4 and the message.
    fn data_cards(&self, _cfg: &Self::Config, _env: &DataEnv) -> Result<Vec<DataCard>, String> {
        Ok(Vec::new())
    }
}

/// [`Paper`] with its settings as JSON: what the harness's registry holds. Implemented for
/// every [`Paper`].
pub trait DynPaper: Send + Sync {
    /// Id, title, arXiv id, kernels.
    fn info(&self) -> PaperInfo;
    /// The preset of `scale`, as JSON.
    fn default_config(&self, scale: Scale) -> Value;
    /// Parses and validates settings (see [`Paper::validate`]).
    fn check_config(&self, cfg: &Value, seeds: Option<&[u64]>) -> Result<(), ConfigError>;
    /// See [`Paper::estimated_bytes`].
    fn estimated_bytes(&self, cfg: &Value) -> Result<u64, ConfigError>;
    /// See [`Paper::units`].
    fn units(&self, cfg: &Value, seeds: &[u64]) -> Result<Vec<UnitSpec>, ConfigError>;
    /// See [`Paper::run_unit`].
    fn run_unit(&self, cfg: &Value, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome;
    /// See [`Paper::claims`].
    fn claims(&self, cfg: &Value, records: &[UnitRecord], scale: &str) -> Judged;
    /// See [`Paper::claim_specs`].
    fn claim_specs(&self, cfg: &Value) -> Result<Vec<ClaimSpec>, ConfigError>;
    /// See [`Paper::sections`].
    fn sections(&self, cfg: &Value, records: &[UnitRecord]) -> Vec<Section>;
    /// See [`Paper::fallbacks`].
    fn fallbacks(&self) -> Vec<Fallback>;
    /// See [`Paper::data_cards`].
    fn data_cards(&self, cfg: &Value, env: &DataEnv) -> Result<Vec<DataCard>, ConfigError>;
}

fn parse<P: Paper>(p: &P, cfg: &Value) -> Result<P::Config, ConfigError> {
    P::Config::deserialize(cfg).map_err(|e| ConfigError {
        paper: p.info().id,
        message: e.to_string(),
    })
}

impl<P: Paper> DynPaper for P {
    fn info(&self) -> PaperInfo {
        Paper::info(self)
    }

    fn default_config(&self, scale: Scale) -> Value {
        serde_json::to_value(self.config(scale)).expect("settings serialise to JSON")
    }

    fn check_config(&self, cfg: &Value, seeds: Option<&[u64]>) -> Result<(), ConfigError> {
        let c = parse(self, cfg)?;
        self.validate(&c, seeds).map_err(|message| ConfigError {
            paper: Paper::info(self).id,
            message,
        })
    }

    fn estimated_bytes(&self, cfg: &Value) -> Result<u64, ConfigError> {
        Ok(Paper::estimated_bytes(self, &parse(self, cfg)?))
    }

    fn units(&self, cfg: &Value, seeds: &[u64]) -> Result<Vec<UnitSpec>, ConfigError> {
        Ok(Paper::units(self, &parse(self, cfg)?, seeds))
    }

    fn run_unit(&self, cfg: &Value, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        match parse(self, cfg) {
            Ok(c) => Paper::run_unit(self, &c, unit, ctx),
            Err(e) => Outcome::error(e.to_string()),
        }
    }

    fn claims(&self, cfg: &Value, records: &[UnitRecord], scale: &str) -> Judged {
        match parse(self, cfg) {
            Ok(c) => Paper::claims(self, &c, records, scale),
            Err(e) => Judged {
                claims: Vec::new(),
                warnings: vec![format!("claims not evaluated: {e}")],
            },
        }
    }

    fn claim_specs(&self, cfg: &Value) -> Result<Vec<ClaimSpec>, ConfigError> {
        Ok(Paper::claim_specs(self, &parse(self, cfg)?))
    }

    fn sections(&self, cfg: &Value, records: &[UnitRecord]) -> Vec<Section> {
        parse(self, cfg)
            .map(|c| Paper::sections(self, &c, records))
            .unwrap_or_default()
    }

    fn fallbacks(&self) -> Vec<Fallback> {
        Paper::fallbacks(self)
    }

    fn data_cards(&self, cfg: &Value, env: &DataEnv) -> Result<Vec<DataCard>, ConfigError> {
        Paper::data_cards(self, &parse(self, cfg)?, env).map_err(|message| ConfigError {
            paper: Paper::info(self).id,
            message,
        })
    }
}

/// A kernel's checks and benchmarks (`kernels/<name>/...` units): no settings, no claims; its
/// page is built by the harness from the units' checks and benchmark entries.
pub trait KernelSuite: Send + Sync {
    /// Kernel id, `kernels/<name>`.
    fn id(&self) -> &'static str;
    /// Every unit at this scale and these seeds, in execution order.
    fn units(&self, scale: Scale, seeds: &[u64]) -> Vec<UnitSpec>;
    /// Runs one of its units.
    fn run_unit(&self, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome;
    /// Where its units run other than on burn's defaults, and why (none by default).
    fn fallbacks(&self) -> Vec<Fallback> {
        Vec::new()
    }
}
