//! What the harness runs: a [`UnitSpec`] (one arm × seed, one kernel check or one benchmark),
//! the [`RunContext`] it runs in, and the [`Outcome`] it returns.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::bench::BenchEntry;
use crate::data::DataEnv;
use crate::metrics::MetricRow;
use crate::record::{UnitRecord, UnitStatus};
use crate::scale::Scale;

/// A backend that executes units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exec {
    /// burn's CPU backend (tensor-op compositions).
    Flex,
    /// burn's fused wgpu backend (the cubecl kernels).
    Wgpu,
    /// burn's fused CUDA backend (the cubecl kernels).
    Cuda,
}

impl Exec {
    /// Lower-case name, as stored in the run directory.
    pub fn name(self) -> &'static str {
        match self {
            Exec::Flex => "flex",
            Exec::Wgpu => "wgpu",
            Exec::Cuda => "cuda",
        }
    }
}

/// Where a unit runs; the harness turns it into an [`Exec`] from the run's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsOn {
    /// The training backend of the plan (flex on a CPU-only machine).
    Train,
    /// The kernel device (wgpu or CUDA); skipped, with the reason, when there is none.
    Kernel,
    /// burn's CPU backend whatever the plan (the tensor-op compositions' checks).
    Flex,
}

/// One registered unit.
#[derive(Clone, Debug)]
pub struct UnitSpec {
    /// Unit id, e.g. `kernels/token-logprob/train/seed-0` (the id grammar of contracts.md).
    pub id: String,
    /// Paper id or `kernels`.
    pub paper: String,
    /// Experiment name.
    pub experiment: String,
    /// Arm name.
    pub arm: String,
    /// Seed, for seeded units.
    pub seed: Option<u64>,
    /// What the owning paper or suite runs for it: a name only it interprets (e.g. `tune`).
    pub task: &'static str,
    /// Where it runs.
    pub runs_on: RunsOn,
    /// A benchmark (what `claimbench bench` selects).
    pub bench: bool,
    /// Units whose stored records (and artifacts) this one reads ([`RunContext::inputs`],
    /// [`RunContext::artifact`]), e.g. a tuning sweep or a pretrained checkpoint. They come
    /// earlier in the unit list, and `--only` selects them too.
    pub depends_on: Vec<String>,
}

impl UnitSpec {
    /// Needs a kernel device.
    pub fn needs_device(&self) -> bool {
        self.runs_on == RunsOn::Kernel
    }
}

/// What a unit runs with.
pub struct RunContext<'a> {
    /// The backend the harness chose for the unit ([`UnitSpec::runs_on`] under the plan).
    pub exec: Exec,
    /// That backend's device name, for benchmark entries.
    pub device: &'a str,
    /// The run's scale.
    pub scale: Scale,
    /// The run's verdict seeds.
    pub seeds: &'a [u64],
    /// The passed records of [`UnitSpec::depends_on`], in that order.
    pub inputs: &'a [UnitRecord],
    /// Where the artifacts of those records are read from (the run directory).
    pub artifacts: &'a dyn ArtifactSource,
    /// Where corpus-backed units read their text (`--corpus-root`, or Debian's packages).
    pub data: &'a DataEnv,
    /// Call now and then in long work (keeps the progress bar alive).
    pub tick: &'a mut dyn FnMut(),
}

impl RunContext<'_> {
    /// The stored record of the dependency `id`.
    pub fn input(&self, id: &str) -> Option<&UnitRecord> {
        self.inputs.iter().find(|r| r.unit_id == id)
    }

    /// The bytes of the artifact `name` that the dependency `unit_id` stored, checked against
    /// the length and SHA-256 its record lists. The error names the file and how to recompute it.
    pub fn artifact(&self, unit_id: &str, name: &str) -> Result<Vec<u8>, String> {
        let record = self.input(unit_id).ok_or_else(|| {
            format!("{unit_id} is not a passed dependency of this unit: its artifacts are not readable here")
        })?;
        self.artifacts.read(record, name)
    }
}

/// A file a unit stores for the units that depend on it (a checkpoint, a policy's weights):
/// written to `artifacts/<unit>/<name>` before the unit's record, which lists its length and
/// SHA-256 ([`ArtifactRef`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// File name: one segment of the id grammar (`model.bin`).
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Reads the artifacts of stored records (the harness's run directory; a test's map).
pub trait ArtifactSource {
    /// The artifact `name` of `record`, checked against what the record lists.
    fn read(&self, record: &UnitRecord, name: &str) -> Result<Vec<u8>, String>;
}

/// No artifacts at all (units without dependencies, tests).
pub struct NoArtifacts;

impl ArtifactSource for NoArtifacts {
    fn read(&self, record: &UnitRecord, name: &str) -> Result<Vec<u8>, String> {
        Err(format!(
            "artifact {name} of {}: no artifacts are readable here",
            record.unit_id
        ))
    }
}

/// What running a unit produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Passed, correctness failure or error.
    pub status: Option<UnitStatus>,
    /// Summary or reason.
    pub message: String,
    /// Metrics.
    pub metrics: Vec<MetricRow>,
    /// Benchmark comparisons.
    pub benchmarks: Vec<BenchEntry>,
    /// Files for the units that depend on this one.
    pub artifacts: Vec<Artifact>,
}

impl Outcome {
    /// A passed unit.
    pub fn passed(message: String, metrics: Vec<MetricRow>) -> Self {
        Self {
            status: Some(UnitStatus::Passed),
            message,
            metrics,
            ..Default::default()
        }
    }
    /// A correctness failure.
    pub fn correctness(message: String) -> Self {
        Self {
            status: Some(UnitStatus::CorrectnessFailure),
            message,
            ..Default::default()
        }
    }
    /// An error.
    pub fn error(message: String) -> Self {
        Self {
            status: Some(UnitStatus::Error),
            message,
            ..Default::default()
        }
    }
}

/// A placement that differs from burn's default for a stated reason (a burn bug, or results kept
/// equal to earlier runs): the harness prints it as a warning when a run selects it and stores
/// it in `manifest.json` (`fallbacks`), and the report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The paper or kernel id it concerns (`mixtral`, `kernels/moe-layer`).
    pub id: Cow<'static, str>,
    /// What runs where, instead of the default.
    pub what: Cow<'static, str>,
    /// Why, with what pins it (a test) where it is a bug.
    pub reason: Cow<'static, str>,
}

impl Fallback {
    /// A fallback of static text (what papers and kernel suites declare).
    pub const fn new(id: &'static str, what: &'static str, reason: &'static str) -> Self {
        Fallback {
            id: Cow::Borrowed(id),
            what: Cow::Borrowed(what),
            reason: Cow::Borrowed(reason),
        }
    }
}
