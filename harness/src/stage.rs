//! Running one unit and merging its result: the path every executor takes.
//!
//! Whoever runs a unit (the driver itself, a `--jobs` worker, a Slurm task) writes its
//! artifacts and then its record under `staging/<tag>/`, where `tag` is unique to that task and
//! attempt (`local-3`, `jobs-3-1`, `slurm-812_3`): two attempts of one unit never write the same
//! file. Only the driver (the holder of the run's lock) merges: it checks the staged record and
//! every artifact it lists against their hashes, moves the artifacts to `artifacts/<unit>/` and
//! the record to `units/<unit>.json` (a rename each, the record last), and removes a task's
//! staging folder only once that task is known to be dead ([`discard`]).
//!
//! Architecture Invariant: a record in `units/` is the proof that its artifacts are complete;
//! a staged record is written last, so a task that died mid-way leaves no record and nothing of
//! it is merged.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use claimbench_paper::{DataEnv, Outcome, Scale, UnitSpec};

use crate::devices::Plan;
use crate::error::input_error;
use crate::registry::Registry;
use crate::store::{Configs, RunDir, SCHEMA_VERSION, UnitRecord, UnitStatus, read_json};

/// Folder of the staged results in a run directory.
pub const STAGING: &str = "staging";

/// File name of a staged record.
const RECORD: &str = "record.json";

/// What every unit of a run runs with.
pub struct UnitEnv<'a> {
    /// Papers and kernel suites.
    pub reg: &'a Registry,
    /// Backends and devices.
    pub plan: &'a Plan,
    /// The run's scale.
    pub scale: Scale,
    /// The papers' settings.
    pub configs: &'a Configs,
    /// Verdict seeds.
    pub seeds: &'a [u64],
    /// Where the text is read.
    pub data: &'a DataEnv,
}

/// Checks that `tag` is one segment of the id grammar (it becomes a folder name).
pub fn check_tag(tag: &str) -> Result<()> {
    crate::ids::validate(tag)
        .ok()
        .filter(|_| !tag.contains('/'))
        .ok_or_else(|| {
            input_error(format!(
                "--tag {}: a task tag is one id segment ([a-z0-9._-])",
                crate::ids::shown(tag)
            ))
        })
}

/// `staging/<tag>` of `run`.
pub fn folder(run: &RunDir, tag: &str) -> PathBuf {
    run.root.join(STAGING).join(tag)
}

/// A test hook: `CLAIMBENCH_TEST_<NAME>` holds a unit id (and, after `=`, a number), read only
/// by the executor tests (crash and hold a task).
fn test_hook(name: &str, unit: &str) -> Option<u64> {
    let v = std::env::var(format!("CLAIMBENCH_TEST_{name}")).ok()?;
    let (id, n) = v.split_once('=').unwrap_or((v.as_str(), "0"));
    (id == unit).then(|| n.parse().unwrap_or(0))
}

/// Runs `unit` with the passed records of its dependencies (`inputs`) and stages its
/// artifacts, then its record, under `staging/<tag>/` (cleared first: the tag is this task's
/// own). A panic in the unit becomes an error record; only a failure to write is an error.
pub fn run_staged(
    env: &UnitEnv,
    run: &RunDir,
    unit: &UnitSpec,
    inputs: &[UnitRecord],
    tag: &str,
    tick: &mut dyn FnMut(),
) -> Result<UnitRecord> {
    let stage = folder(run, tag);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    if let Some(ms) = test_hook("HOLD", &unit.id) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let start = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let artifacts = crate::artifacts::StoredArtifacts { dir: run };
        env.reg.execute(
            unit,
            env.plan,
            env.scale,
            env.configs,
            env.seeds,
            inputs,
            &artifacts,
            env.data,
            tick,
        )
    }));
    let (exec, device, mut outcome) = match result {
        Ok(v) => v,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let (exec, device) = crate::registry::placement(unit, env.plan);
            (exec, device, Outcome::error(format!("panicked: {msg}")))
        }
    };
    // Artifacts first: a record is written only once what it lists is in place.
    let mut artifacts = Vec::new();
    for a in std::mem::take(&mut outcome.artifacts) {
        match crate::artifacts::write_in(&stage.join("artifacts"), &unit.id, &a) {
            Ok(r) => artifacts.push(r),
            Err(e) => {
                outcome = Outcome::error(format!("{e:#}"));
                artifacts.clear();
                break;
            }
        }
    }
    if test_hook("CRASH", &unit.id).is_some() {
        // What a task killed between its artifacts and its record leaves behind.
        std::process::abort();
    }
    let record = UnitRecord {
        status: outcome.status.unwrap_or(UnitStatus::Error),
        message: outcome.message,
        seconds: start.elapsed().as_secs_f64(),
        metrics: outcome.metrics,
        benchmarks: outcome.benchmarks,
        artifacts,
        ..empty_record(unit, exec, device)
    };
    crate::store::write_json(&stage.join(RECORD), &record)
        .with_context(|| format!("staging the record of {}", unit.id))?;
    Ok(record)
}

/// Whether `staging/<tag>/` holds a whole staged record.
pub fn has_record(run: &RunDir, tag: &str) -> bool {
    folder(run, tag).join(RECORD).is_file()
}

/// Merges the result staged under `tag` for `unit_id` (driver only): the record is read and
/// checked, each artifact it lists is checked against its length and hash and moved to
/// `artifacts/<unit>/`, then the record is moved to `units/`. `None` when no whole record is
/// staged (the task has not finished, or died: nothing is merged). A staged record that does
/// not check is an input error and is left where it is.
pub fn merge(run: &RunDir, tag: &str, unit_id: &str) -> Result<Option<UnitRecord>> {
    let stage = folder(run, tag);
    let staged = stage.join(RECORD);
    if !staged.is_file() {
        return Ok(None);
    }
    let record: UnitRecord = read_json(&staged)?;
    crate::store::check_record(&record, &staged)?;
    if record.unit_id != unit_id {
        return Err(input_error(format!(
            "{}: holds unit {}, but task {tag} ran {unit_id}",
            staged.display(),
            crate::ids::shown(&record.unit_id)
        )));
    }
    let mut moves = Vec::new();
    for a in &record.artifacts {
        let from = stage.join("artifacts").join(&a.name);
        crate::artifacts::read_checked(&from, a)
            .map_err(|what| input_error(format!("staged artifact {}: {what}", from.display())))?;
        moves.push((from, crate::artifacts::path(run, unit_id, &a.name)));
    }
    for (from, to) in moves {
        rename(&from, &to)?;
    }
    rename(&staged, &run.unit_path(unit_id))?;
    // The folder is empty now unless the task left temporaries; those go with `discard` once
    // the task is known to be dead.
    let _ = std::fs::remove_dir(stage.join("artifacts"));
    let _ = std::fs::remove_dir(&stage);
    Ok(Some(record))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// Removes what the task `tag` left under `staging/` (driver only, once the task is known to be
/// dead: its process was reaped, or Slurm reports it ended). Returns whether there was anything.
pub fn discard(run: &RunDir, tag: &str) -> Result<bool> {
    let stage = folder(run, tag);
    if !stage.exists() {
        return Ok(false);
    }
    std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    Ok(true)
}

/// The tags under `staging/` (names that are not tags are ignored: they were not written by a
/// task).
pub fn staged_tags(run: &RunDir) -> Result<Vec<String>> {
    let dir = run.root.join(STAGING);
    let mut tags = Vec::new();
    if dir.is_dir() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if check_tag(&name).is_ok() {
                tags.push(name);
            }
        }
    }
    tags.sort();
    Ok(tags)
}

/// One line for a finished unit (the progress output of every executor).
pub fn line(record: &UnitRecord) -> String {
    format!(
        "{:<40} {:<19} {:>6.1}s  {}",
        record.unit_id,
        status_word(record.status),
        record.seconds,
        record.message
    )
}

/// The error record the driver stores for a unit whose task never produced one.
pub fn failed_record(unit: &UnitSpec, plan: &Plan, message: String) -> UnitRecord {
    let (exec, device) = crate::registry::placement(unit, plan);
    UnitRecord {
        message,
        ..empty_record(unit, exec, device)
    }
}

/// A record of `unit` on `exec`/`device` with no result yet: status error, no metrics.
fn empty_record(unit: &UnitSpec, exec: claimbench_paper::Exec, device: String) -> UnitRecord {
    UnitRecord {
        schema_version: SCHEMA_VERSION,
        unit_id: unit.id.clone(),
        paper: unit.paper.clone(),
        experiment: unit.experiment.clone(),
        arm: unit.arm.clone(),
        seed: unit.seed,
        backend: exec.name().into(),
        device,
        status: UnitStatus::Error,
        message: String::new(),
        seconds: 0.0,
        metrics: Vec::new(),
        benchmarks: Vec::new(),
        artifacts: Vec::new(),
    }
}

/// The word shown for a unit status.
pub fn status_word(s: UnitStatus) -> &'static str {
    match s {
        UnitStatus::Passed => "passed",
        UnitStatus::CorrectnessFailure => "CORRECTNESS FAILURE",
        UnitStatus::Error => "ERROR",
    }
}
