//! What the harness runs: a [`UnitSpec`] (one arm × seed, one kernel check or one benchmark),
//! the [`RunContext`] it runs in, and the [`Outcome`] it returns.

use serde::{Deserialize, Serialize};

use crate::bench::BenchEntry;
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
    /// Units whose stored records this one reads ([`RunContext::inputs`]), e.g. a tuning sweep.
    /// They come earlier in the unit list, and `--only` selects them too.
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
    /// Call now and then in long work (keeps the progress bar alive).
    pub tick: &'a mut dyn FnMut(),
}

impl RunContext<'_> {
    /// The stored record of the dependency `id`.
    pub fn input(&self, id: &str) -> Option<&UnitRecord> {
        self.inputs.iter().find(|r| r.unit_id == id)
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
}

impl Outcome {
    /// A passed unit.
    pub fn passed(message: String, metrics: Vec<MetricRow>) -> Self {
        Self {
            status: Some(UnitStatus::Passed),
            message,
            metrics,
            benchmarks: Vec::new(),
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
