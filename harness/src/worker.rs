//! `claimbench run-unit RUN_DIR --index I | --unit ID [--tag TAG]`: runs exactly one unit of a
//! planned run. It is what every executor's worker runs (a `--jobs` process, a Slurm task) and
//! what a person runs by hand.
//!
//! - With `--tag` (an executor's worker, or `SLURM_ARRAY_JOB_ID`/`SLURM_ARRAY_TASK_ID` set) it
//!   never takes the run lock: the driver holds it. It stages its result under
//!   `staging/<tag>/` for the driver to merge, and exits 0 once a record is staged, whatever
//!   the unit's verdict (the verdict is in the record; a non-zero exit means the task died).
//! - By hand (no tag) it takes the run lock, so no driver runs, and merges its own result;
//!   its exit code is the unit's (2 correctness, 4 error).
//!
//! The unit comes from the units the manifest's settings select (checked against `plan.json`),
//! never from the plan file alone. Its dependencies must have records in `units/`: a worker
//! waits for the driver to merge them (Slurm's `afterok` starts a task as soon as its
//! dependency's task exits, a moment before the driver's next poll).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use claimbench_paper::DataEnv;

use crate::error::{Exit, input_error};
use crate::plan::PlanFile;
use crate::registry::Registry;
use crate::stage::{self, UnitEnv};
use crate::store::{RunDir, UnitStatus};

/// Options of `run-unit`.
#[derive(Clone, Debug, Default)]
pub struct WorkerOptions {
    /// The run directory.
    pub dir: PathBuf,
    /// `--index`.
    pub index: Option<usize>,
    /// `--unit`.
    pub unit: Option<String>,
    /// `--tag`.
    pub tag: Option<String>,
    /// `--wait-for-deps`: seconds to wait for the dependencies' records.
    pub wait_secs: u64,
}

/// The tag of a Slurm array task (`slurm-<array job>_<task>`), from its environment.
pub fn slurm_tag() -> Option<String> {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").ok()?;
    let task = std::env::var("SLURM_ARRAY_TASK_ID").ok()?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (ok(&job) && ok(&task)).then(|| format!("slurm-{job}_{task}"))
}

/// Executes `run-unit`.
pub fn run_unit(opts: WorkerOptions, reg: &Registry) -> Result<Exit> {
    let tag = opts.tag.clone().or_else(slurm_tag);
    if let Some(t) = &tag {
        stage::check_tag(t)?;
    }
    // By hand, the person is the driver: take the lock, so no driver merges beside us.
    let (dir, manifest, _lock) = match &tag {
        Some(_) => {
            let (d, m) = RunDir::open(&opts.dir)?;
            (d, m, None)
        }
        None => {
            let (d, m, l) = RunDir::open_locked(&opts.dir, "run-unit")?;
            (d, m, Some(l))
        }
    };
    let plan = PlanFile::read(&dir)?;
    if plan.config_hash != manifest.config_hash {
        return Err(input_error(format!(
            "{}: plan.json belongs to another configuration than manifest.json",
            dir.root.display()
        )));
    }
    let scale = manifest.scale().ok_or_else(|| {
        input_error(format!(
            "{}: holds imported criterion results, not a run",
            dir.root.display()
        ))
    })?;
    let configs = crate::configs::of_manifest(reg, &manifest)?.ok_or_else(|| {
        input_error("the manifest records no settings (a run made before they were)")
    })?;
    let units = reg.select(
        reg.all_units(scale, &manifest.seeds, &configs)?,
        &manifest.only,
    )?;
    plan.check_against(&units)?;
    let index = match (opts.index, &opts.unit) {
        (Some(i), None) if i < units.len() => i,
        (Some(i), None) => {
            return Err(input_error(format!(
                "--index {i}: the plan has {} units (0..{})",
                units.len(),
                units.len()
            )));
        }
        (None, Some(id)) => plan.index_of(id).ok_or_else(|| {
            input_error(format!(
                "--unit {}: not a unit of this run (see plan.json)",
                crate::ids::shown(id)
            ))
        })?,
        _ => return Err(input_error("give exactly one of --index I and --unit ID")),
    };
    let unit = &units[index];
    // The backends this machine gives must be the ones the run planned.
    let devices = crate::devices::plan(manifest.plan.choice, crate::require_device())?;
    if devices.train != manifest.plan.train || devices.kernels != manifest.plan.kernels {
        return Err(input_error(format!(
            "unit {}: the run planned train={:?} kernels={:?}, this machine gives train={:?} kernels={:?}",
            unit.id, manifest.plan.train, manifest.plan.kernels, devices.train, devices.kernels
        )));
    }
    if unit.needs_device() && devices.kernels.is_none() {
        return Err(input_error(format!(
            "unit {} needs a kernel device and this run has none",
            unit.id
        )));
    }
    if let Some(r) = dir.read_unit(&unit.id)?
        && r.status == UnitStatus::Passed
    {
        outln!("{}: already finished (passed)", unit.id);
        return Ok(Exit::Ok);
    }
    // Dependencies: merged records, waited for.
    let deadline = Instant::now() + Duration::from_secs(opts.wait_secs);
    let mut inputs = Vec::new();
    for d in &unit.depends_on {
        // A dependency the run skips (it needs the kernel device this run lacks) never gets a
        // record: the unit runs without it, as it would in order.
        let skipped = plan
            .index_of(d)
            .is_some_and(|j| plan.units[j].needs_device && devices.kernels.is_none());
        if skipped {
            continue;
        }
        let record = loop {
            if let Some(r) = dir.read_unit(d)? {
                break r;
            }
            if Instant::now() >= deadline {
                return Err(input_error(format!(
                    "unit {}: its dependency {d} has no record in {} after {} s; run it first (its index is {})",
                    unit.id,
                    dir.root.join("units").display(),
                    opts.wait_secs,
                    plan.index_of(d).map_or("unknown".into(), |i| i.to_string())
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        if record.status == UnitStatus::Passed {
            inputs.push(record);
        }
    }
    let data = DataEnv {
        corpus_root: manifest.corpus_root.as_ref().map(PathBuf::from),
    };
    let env = UnitEnv {
        reg,
        plan: &devices,
        scale,
        configs: &configs,
        seeds: &manifest.seeds,
        data: &data,
    };
    let own_tag = tag
        .clone()
        .unwrap_or_else(|| format!("manual-{}", std::process::id()));
    let record = stage::run_staged(&env, &dir, unit, &inputs, &own_tag, &mut || {})?;
    outln!("{}", stage::line(&record));
    if tag.is_some() {
        return Ok(Exit::Ok);
    }
    stage::merge(&dir, &own_tag, &unit.id)?;
    outln!(
        "stored {}; `claimbench run --resume {}` runs the rest and computes the claims",
        dir.unit_path(&unit.id).display(),
        dir.root.display()
    );
    Ok(match record.status {
        UnitStatus::Passed => Exit::Ok,
        UnitStatus::CorrectnessFailure => Exit::Correctness,
        UnitStatus::Error => Exit::Input,
    })
}
