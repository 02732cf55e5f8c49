//! `plan.json`: every unit of a run with its index, what it depends on, the resources it is
//! expected to need and whether it is a timing unit. `run --plan-only` writes it and stops;
//! every run writes it before any unit starts, and `run-unit DIR --index I` (the one entry point
//! of the local, `--jobs` and Slurm executors) reads its unit from it.
//!
//! The plan is untrusted when read (a run directory may be a downloaded artifact): a worker
//! re-derives the units from the manifest's settings and refuses a plan that lists other ids
//! ([`PlanFile::check_against`]), so a unit's task is always the registry's, never the file's.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::input_error;
use crate::ids;
use crate::store::{RunDir, read_json, write_json};
use claimbench_paper::{Scale, UnitSpec};

/// Version of `plan.json`.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// File name of the plan in a run directory.
pub const PLAN_FILE: &str = "plan.json";

/// What a unit is expected to need on a cluster node (`sbatch --cpus-per-task`, `--mem`,
/// `--time`, `--gpus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs a task asks for.
    pub cpus: u32,
    /// Memory a task asks for, in MiB: the paper's largest estimate with headroom
    /// ([`crate::configs::with_headroom`]), plus the process itself.
    pub memory_mib: u64,
    /// Wall-clock limit, in minutes (by scale: the slowest `small` unit takes about 2.5 min).
    pub time_minutes: u64,
    /// GPUs (1 for units that need the kernel device when the run plans CUDA, else 0).
    pub gpus: u32,
}

/// One unit of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUnit {
    /// Position in the run's unit list: the `--index` of `run-unit`, the Slurm array index.
    pub index: usize,
    /// Unit id.
    pub id: String,
    /// Paper id or `kernels`.
    pub paper: String,
    /// Units whose records (and artifacts) it reads; each comes earlier in the plan.
    pub depends_on: Vec<String>,
    /// A benchmark: it times kernels, so it never shares a machine with other work.
    pub timing: bool,
    /// Needs the kernel device (wgpu or CUDA).
    pub needs_device: bool,
    /// Expected resources.
    pub resources: Resources,
}

/// `plan.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    /// Layout version.
    pub schema_version: u32,
    /// The run's id.
    pub run_id: String,
    /// The run's `config_hash` (a plan belongs to one configuration).
    pub config_hash: String,
    /// Every selected unit, by index.
    pub units: Vec<PlanUnit>,
}

/// Base memory of a claimbench process (binary, corpus, device runtime), in MiB.
const PROCESS_MIB: u64 = 1024;

impl PlanFile {
    /// The plan of `units` (in run order). `estimated_bytes` is the largest tensor estimate of
    /// each paper; `gpu` says whether the kernel device is CUDA.
    pub fn new(
        run_id: &str,
        config_hash: &str,
        scale: Scale,
        units: &[UnitSpec],
        estimated_bytes: &BTreeMap<String, u64>,
        gpu: bool,
    ) -> Self {
        let time_minutes = match scale {
            Scale::Smoke => 15,
            Scale::Small => 60,
            Scale::Full => 24 * 60,
        };
        let units = units
            .iter()
            .enumerate()
            .map(|(index, u)| {
                let bytes = estimated_bytes.get(&u.paper).copied().unwrap_or(0);
                PlanUnit {
                    index,
                    id: u.id.clone(),
                    paper: u.paper.clone(),
                    depends_on: u.depends_on.clone(),
                    timing: u.bench,
                    needs_device: u.needs_device(),
                    resources: Resources {
                        cpus: 1,
                        memory_mib: PROCESS_MIB
                            + crate::configs::with_headroom(bytes).div_ceil(1 << 20),
                        time_minutes,
                        gpus: u32::from(gpu && u.needs_device()),
                    },
                }
            })
            .collect();
        PlanFile {
            schema_version: PLAN_SCHEMA_VERSION,
            run_id: run_id.to_string(),
            config_hash: config_hash.to_string(),
            units,
        }
    }

    /// Writes `DIR/plan.json` atomically.
    pub fn write(&self, dir: &RunDir) -> Result<()> {
        write_json(&dir.root.join(PLAN_FILE), self)
    }

    /// Reads and checks `DIR/plan.json`: the version, every id in the grammar, indices equal to
    /// positions, dependencies earlier in the plan. An input error names the problem.
    pub fn read(dir: &RunDir) -> Result<Self> {
        let path = dir.root.join(PLAN_FILE);
        if !path.is_file() {
            return Err(input_error(format!(
                "{}: no plan.json: the run was made before plans existed, or is not a run directory; `claimbench run --resume {}` writes one",
                dir.root.display(),
                dir.root.display()
            )));
        }
        let plan: PlanFile = read_json(&path)?;
        let bad = |what: String| input_error(format!("{}: {what}", path.display()));
        if plan.schema_version != PLAN_SCHEMA_VERSION {
            return Err(bad(format!(
                "schema_version {} is not supported (this claimbench reads {PLAN_SCHEMA_VERSION})",
                plan.schema_version
            )));
        }
        if plan.units.len() > crate::store::MAX_UNITS {
            return Err(bad(format!("more than {} units", crate::store::MAX_UNITS)));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, u) in plan.units.iter().enumerate() {
            for id in std::iter::once(&u.id).chain(&u.depends_on) {
                ids::validate(id)
                    .map_err(|e| bad(format!("unit {i}: {} is not an id: {e}", ids::shown(id))))?;
            }
            if u.index != i {
                return Err(bad(format!("unit {} has index {}", i, u.index)));
            }
            for d in &u.depends_on {
                if !seen.contains_key(d.as_str()) {
                    return Err(bad(format!(
                        "unit {} depends on {d}, which is not earlier in the plan",
                        u.id
                    )));
                }
            }
            if seen.insert(&u.id, i).is_some() {
                return Err(bad(format!("unit {} is listed twice", u.id)));
            }
        }
        Ok(plan)
    }

    /// Checks that the plan lists exactly `units`, in order, with their dependencies and timing
    /// flags (the units a worker derived from the manifest's settings).
    pub fn check_against(&self, units: &[UnitSpec]) -> Result<()> {
        let same =
            self.units.len() == units.len()
                && self.units.iter().zip(units).all(|(p, u)| {
                    p.id == u.id && p.depends_on == u.depends_on && p.timing == u.bench
                });
        if same {
            Ok(())
        } else {
            Err(input_error(format!(
                "plan.json of run {} does not list the units its manifest's settings select ({} planned, {} selected): it was edited, or this binary is another version",
                self.run_id,
                self.units.len(),
                units.len()
            )))
        }
    }

    /// The index of unit `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.units.iter().position(|u| u.id == id)
    }
}

/// Dependency depth of each of `indices` within that set: 0 for a unit none of whose
/// dependencies is in the set, else one more than its deepest dependency in it. Units of one
/// depth can run at once; the Slurm executor submits one array per depth.
pub fn depths(plan: &PlanFile, indices: &[usize]) -> BTreeMap<usize, usize> {
    let in_set: HashMap<&str, usize> = indices
        .iter()
        .map(|&i| (plan.units[i].id.as_str(), i))
        .collect();
    let mut depth = BTreeMap::new();
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    // Dependencies come earlier in the plan, so one pass in index order settles every depth.
    for i in sorted {
        let d = plan.units[i]
            .depends_on
            .iter()
            .filter_map(|d| in_set.get(d.as_str()))
            .filter_map(|j| depth.get(j).map(|x: &usize| x + 1))
            .max()
            .unwrap_or(0);
        depth.insert(i, d);
    }
    depth
}
