//! The Slurm executor: a run's units as job arrays, watched until every unit has a record.
//!
//! - **Submission.** The units to run are grouped by dependency depth ([`crate::plan::depths`]);
//!   each depth is one array (`sbatch --array=I,J,…%P`, array index = plan index) whose tasks run
//!   `claimbench run-unit DIR --index $SLURM_ARRAY_TASK_ID`, with `--dependency=afterok:` on the
//!   tasks of the dependencies still running. Timing units form their own arrays with
//!   `--exclusive` and `%1`. Partition, time, memory, CPUs, GPUs and extra `sbatch` arguments
//!   come from the options; memory and time default to the plan's estimates.
//! - **Watching.** `scontrol -o show job <array>` (no `sacct`: it needs slurmdbd) and the staged
//!   results. A task's result is merged as soon as its record is staged; a task Slurm reports
//!   ended (or no longer knows) without one died: what it staged is removed, and it is
//!   submitted again up to `--max-retries` times, its waiting dependents cancelled and
//!   resubmitted behind the new task. After the last attempt the unit gets an error record naming
//!   the task's state, exit code and log.
//! - **Resume.** Every submitted task is in `slurm/tasks.json`. `run --resume --executor slurm`
//!   adopts the tasks still queued or running, merges what finished ones staged, and submits
//!   only the units left.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Driver, ExecOptions};
use crate::configs::SlurmSettings;
use crate::error::input_error;
use crate::stage;
use crate::store::{RunDir, read_json, write_json};

/// The Slurm executor's options.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// What reaches `sbatch` (`--slurm-*`, or `--config`'s `slurm` section).
    pub settings: SlurmSettings,
    /// How often the driver looks at the tasks.
    pub poll: Duration,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            settings: SlurmSettings::default(),
            poll: Duration::from_secs(1),
        }
    }
}

/// Tasks of one array that run at once unless `--slurm-max-parallel` says otherwise.
pub const DEFAULT_MAX_PARALLEL: u32 = 16;

impl SlurmOptions {
    /// The array throttle `%P`.
    pub fn throttle(&self) -> u32 {
        self.settings.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL)
    }

    /// Checks the values that reach `sbatch` (one argument each, never a shell): bounded, no
    /// control characters.
    pub fn check(&self) -> Result<()> {
        let s = &self.settings;
        let text = [&s.partition, &s.time, &s.mem, &s.gpus]
            .into_iter()
            .flatten()
            .chain(&s.args);
        for v in text {
            if v.len() > 200 || v.chars().any(char::is_control) {
                return Err(input_error(format!(
                    "Slurm option {}: at most 200 characters, no control characters",
                    crate::ids::shown(v)
                )));
            }
        }
        if !(1..=10_000).contains(&self.throttle()) {
            return Err(input_error("--slurm-max-parallel must lie in 1..=10000"));
        }
        Ok(())
    }
}

/// One submitted task, as `slurm/tasks.json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Task {
    /// Plan index (the array index).
    index: usize,
    /// The array job id.
    job: u64,
    /// Which attempt of the unit this is (1 for the first).
    attempt: u32,
}

impl Task {
    fn id(&self) -> String {
        format!("{}_{}", self.job, self.index)
    }
    fn tag(&self) -> String {
        format!("slurm-{}_{}", self.job, self.index)
    }
}

/// `slurm/tasks.json`: every task the driver submitted, latest attempt last.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    tasks: Vec<Task>,
}

fn ledger_path(dir: &RunDir) -> PathBuf {
    dir.root.join("slurm").join("tasks.json")
}

/// What Slurm says of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TaskState {
    state: String,
    reason: String,
    exit_code: String,
}

impl TaskState {
    /// The task will not run (again) by itself.
    fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "UNKNOWN"
        )
    }
}

/// Runs `cmd`, returning its stdout; an error names the command, its exit status and stderr.
fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?} (is Slurm installed, SLURM_CONF set?)", cmd))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The state of every task of array job `job` that `scontrol -o show job` lists: a line per
/// started task (`ArrayTaskId=3`), and one line for the tasks still pending together
/// (`ArrayTaskId=4-7%2`, or a list), which gives each of `indices` it covers that state. A job
/// Slurm no longer knows (purged after `MinJobAge`) gives `None`.
fn array_states(job: u64, indices: &[usize]) -> Result<Option<HashMap<usize, TaskState>>> {
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", &job.to_string()])
        .output()
        .context("running scontrol (is Slurm installed, SLURM_CONF set?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("Invalid job id") {
            return Ok(None);
        }
        bail!(
            "scontrol show job {job} failed ({}): {}",
            out.status,
            err.trim()
        );
    }
    let mut states = HashMap::new();
    for line in text.lines() {
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or("")
                .to_string()
        };
        let state = TaskState {
            state: field("JobState"),
            reason: field("Reason"),
            exit_code: field("ExitCode"),
        };
        let tasks = field("ArrayTaskId");
        let spec = tasks.split('%').next().unwrap_or("");
        for &i in indices {
            if in_spec(spec, i) {
                states.insert(i, state.clone());
            }
        }
    }
    Ok(Some(states))
}

/// Whether index `i` lies in an array spec: `3`, `1,4-6`, `0-10:2` (the `ArrayTaskId` of a
/// pending record, its `%` throttle cut off).
pub fn in_spec(spec: &str, i: usize) -> bool {
    spec.split(',').any(|part| {
        let (range, step) = part.split_once(':').unwrap_or((part, "1"));
        let step: usize = step.parse().unwrap_or(1).max(1);
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&i) && (i - a).is_multiple_of(step),
            _ => false,
        }
    })
}

/// Whether the Slurm task of `tag` (`slurm-J_I`) may still run: Slurm says it is queued or
/// running, or cannot be asked.
pub fn task_may_live(tag: &str) -> bool {
    let Some((job, index)) = tag
        .strip_prefix("slurm-")
        .and_then(|t| t.split_once('_'))
        .and_then(|(j, i)| Some((j.parse::<u64>().ok()?, i.parse::<usize>().ok()?)))
    else {
        return false;
    };
    match array_states(job, &[index]) {
        Ok(None) => false,
        Ok(Some(s)) => s.get(&index).is_some_and(|t| !t.ended()),
        Err(_) => true,
    }
}

/// The script every task runs (written once per run).
fn task_script(dir: &RunDir) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the claimbench binary")?;
    let root = std::fs::canonicalize(&dir.root)?;
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let text = format!(
        "#!/bin/sh\n# One unit of claimbench run {}: the array index is the plan index (plan.json).\n# burn flex's thread pool takes the task's CPUs, not the node's (a timing task has the node).\nif [ -z \"$RAYON_NUM_THREADS\" ] && [ \"$CLAIMBENCH_TIMING_TASK\" != 1 ]; then\n  export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\nfi\nexec {} run-unit {} --index \"$SLURM_ARRAY_TASK_ID\" --quiet\n",
        dir.root.display(),
        quote(&exe),
        quote(&root)
    );
    let path = root.join("slurm").join("task.sh");
    crate::store::write_atomic(&path, text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

struct Watch<'d, 'a> {
    driver: &'d mut Driver<'a>,
    opts: &'d ExecOptions,
    script: PathBuf,
    logs: PathBuf,
    ledger: Ledger,
    /// The live task of each unit still running, by plan index.
    active: BTreeMap<usize, Task>,
    /// Attempts per plan index.
    attempts: HashMap<usize, u32>,
}

/// Runs `todo` (plan indices) on Slurm and waits until each has a record.
pub fn execute(driver: &mut Driver, todo: Vec<usize>, opts: &ExecOptions) -> Result<()> {
    opts.slurm.check()?;
    let logs = std::fs::canonicalize(&driver.dir.root)?.join("logs");
    std::fs::create_dir_all(&logs)?;
    let path = ledger_path(driver.dir);
    let ledger: Ledger = if path.is_file() {
        read_json(&path)?
    } else {
        Ledger::default()
    };
    let script = task_script(driver.dir)?;
    let mut w = Watch {
        driver,
        opts,
        script,
        logs,
        ledger,
        active: BTreeMap::new(),
        attempts: HashMap::new(),
    };
    let before = w.driver.finished.len();
    w.adopt(&todo)?;
    let merged = w.driver.finished.len() - before;
    let fresh: Vec<usize> = todo
        .iter()
        .copied()
        .filter(|i| !w.active.contains_key(i) && !w.finished(*i))
        .collect();
    w.driver.say(&format!(
        "slurm: {} unit(s) to run: {} adopted from the interrupted run, {} merged from it, {} submitted",
        todo.len(),
        w.active.len(),
        merged,
        fresh.len()
    ));
    w.submit(fresh)?;
    w.watch()
}

impl Watch<'_, '_> {
    fn finished(&self, i: usize) -> bool {
        self.driver.finished.contains_key(&self.driver.units[i].id)
    }

    fn save(&self) -> Result<()> {
        write_json(&ledger_path(self.driver.dir), &self.ledger)
    }

    /// Resume: the latest task of each unit in `todo` from the ledger, adopted when Slurm still
    /// runs it, merged or cleared when it ended.
    fn adopt(&mut self, todo: &[usize]) -> Result<()> {
        let mut latest: BTreeMap<usize, Task> = BTreeMap::new();
        for t in &self.ledger.tasks {
            latest.insert(t.index, t.clone());
        }
        for &i in todo {
            let Some(task) = latest.get(&i).cloned() else {
                continue;
            };
            self.attempts.insert(i, task.attempt);
            let state = array_states(task.job, &[i])?.and_then(|s| s.get(&i).cloned());
            if stage::has_record(self.driver.dir, &task.tag()) {
                self.take(i, &task)?;
            } else if state.as_ref().is_some_and(|s| !s.ended()) {
                self.active.insert(i, task);
            } else {
                stage::discard(self.driver.dir, &task.tag())?;
            }
        }
        // Staged folders of tasks that are neither adopted nor in the ledger's latest attempt
        // belong to dead tasks.
        let live: HashSet<String> = self.active.values().map(Task::tag).collect();
        for tag in stage::staged_tags(self.driver.dir)? {
            if tag.starts_with("slurm-") && !live.contains(&tag) && !task_may_live(&tag) {
                stage::discard(self.driver.dir, &tag)?;
            }
        }
        Ok(())
    }

    /// Merges the staged result of `task`.
    fn take(&mut self, i: usize, task: &Task) -> Result<()> {
        let id = self.driver.units[i].id.clone();
        if let Some(record) = stage::merge(self.driver.dir, &task.tag(), &id)? {
            self.driver.accept(record);
        }
        Ok(())
    }

    /// Submits `indices` (none finished or active) as arrays, one per dependency depth and
    /// kind (timing or not).
    fn submit(&mut self, indices: Vec<usize>) -> Result<()> {
        if indices.is_empty() {
            return Ok(());
        }
        let plan = self.driver.plan;
        let depths = crate::plan::depths(plan, &indices);
        let mut groups: BTreeMap<(usize, bool), Vec<usize>> = BTreeMap::new();
        for (&i, &d) in &depths {
            groups.entry((d, plan.units[i].timing)).or_default().push(i);
        }
        for ((_, timing), group) in groups {
            let mut after: Vec<String> = Vec::new();
            for &i in &group {
                for d in &plan.units[i].depends_on {
                    let j = plan.index_of(d).expect("checked plan");
                    if let Some(t) = self.active.get(&j) {
                        after.push(t.id());
                    }
                }
            }
            after.sort();
            after.dedup();
            let job = self.sbatch(&group, timing, &after)?;
            for &i in &group {
                let n = self.attempts.entry(i).or_insert(0);
                *n += 1;
                let task = Task {
                    index: i,
                    job,
                    attempt: *n,
                };
                self.ledger.tasks.push(task.clone());
                self.active.insert(i, task);
            }
            self.save()?;
        }
        Ok(())
    }

    /// One `sbatch` call: the array of `group`; returns its job id.
    fn sbatch(&self, group: &[usize], timing: bool, after: &[String]) -> Result<u64> {
        let plan = self.driver.plan;
        let o = &self.opts.slurm.settings;
        let spec: Vec<String> = group.iter().map(|i| i.to_string()).collect();
        let throttle = if timing {
            1
        } else {
            self.opts.slurm.throttle()
        };
        let mem = group
            .iter()
            .map(|&i| plan.units[i].resources.memory_mib)
            .max()
            .unwrap_or(1024);
        let minutes = group
            .iter()
            .map(|&i| plan.units[i].resources.time_minutes)
            .max()
            .unwrap_or(60);
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name=claimbench-{}", plan.run_id))
            .arg(format!("--array={}%{throttle}", spec.join(",")))
            .arg(format!("--output={}/slurm-%A_%a.out", self.logs.display()))
            .arg(format!(
                "--mem={}",
                o.mem.clone().unwrap_or_else(|| format!("{mem}M"))
            ))
            .arg(format!(
                "--time={}",
                o.time.clone().unwrap_or_else(|| minutes.to_string())
            ))
            .arg(format!("--cpus-per-task={}", o.cpus.unwrap_or(1)));
        if let Some(p) = &o.partition {
            cmd.arg(format!("--partition={p}"));
        }
        if timing {
            cmd.arg("--exclusive")
                .arg("--export=ALL,CLAIMBENCH_TIMING_TASK=1");
        }
        if let Some(g) = &o.gpus
            && group.iter().any(|&i| plan.units[i].needs_device)
        {
            cmd.arg(format!("--gpus={g}"));
        }
        if !after.is_empty() {
            cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
        }
        cmd.args(&o.args).arg(&self.script);
        let out = capture(&mut cmd)?;
        let job = out.trim().split(';').next().unwrap_or("");
        job.parse()
            .map_err(|_| anyhow::anyhow!("sbatch printed {:?}, not a job id", out.trim()))
    }

    /// Polls until no unit is active.
    fn watch(&mut self) -> Result<()> {
        while !self.active.is_empty() {
            std::thread::sleep(self.opts.slurm.poll);
            let mut by_job: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for t in self.active.values() {
                by_job.entry(t.job).or_default().push(t.index);
            }
            let mut states: HashMap<usize, Option<TaskState>> = HashMap::new();
            for (job, indices) in by_job {
                let s = array_states(job, &indices)?;
                for i in indices {
                    states.insert(i, s.as_ref().and_then(|m| m.get(&i).cloned()));
                }
            }
            let active: Vec<(usize, Task)> =
                self.active.iter().map(|(&i, t)| (i, t.clone())).collect();
            for (i, task) in active {
                if self.active.get(&i) != Some(&task) {
                    continue; // cancelled and resubmitted as a dependent in this pass
                }
                let state = states.get(&i).cloned().flatten();
                if stage::has_record(self.driver.dir, &task.tag()) {
                    self.active.remove(&i);
                    self.take(i, &task)?;
                    continue;
                }
                match state {
                    Some(s) if !s.ended() && s.reason != "DependencyNeverSatisfied" => {
                        self.driver.bar.set_message(format!(
                            "{} ({})",
                            self.driver.units[i].id,
                            s.state.to_lowercase()
                        ));
                    }
                    Some(s) if !s.ended() => {
                        // A dependency's task failed before this driver replaced it (e.g. while
                        // no driver ran): cancel and resubmit behind what runs now.
                        self.cancel(&[task.id()])?;
                        self.active.remove(&i);
                        self.attempts.entry(i).and_modify(|n| *n -= 1);
                        self.submit(vec![i])?;
                    }
                    ended => self.died(i, &task, ended)?,
                }
            }
        }
        Ok(())
    }

    /// The task of unit `i` ended without a record: clear what it staged, then resubmit it
    /// (with its waiting dependents) or, after the last attempt, store an error record.
    fn died(&mut self, i: usize, task: &Task, state: Option<TaskState>) -> Result<()> {
        self.active.remove(&i);
        stage::discard(self.driver.dir, &task.tag())?;
        let log = self
            .logs
            .join(format!("slurm-{}_{}.out", task.job, task.index));
        let what = match &state {
            Some(s) => format!("ended {} (exit code {})", s.state, s.exit_code),
            None => "is no longer known to Slurm".to_string(),
        };
        let why = format!(
            "Slurm task {} of unit {} {what} without a result (log: {})",
            task.id(),
            self.driver.units[i].id,
            log.display()
        );
        // Its dependents that wait on it: cancel them, to resubmit behind the new task (or,
        // after the last attempt, behind nothing: they then run without its result, as they
        // would in order).
        let waiting = self.dependents(i);
        let ids: Vec<String> = waiting.iter().map(|j| self.active[j].id()).collect();
        self.cancel(&ids)?;
        for j in &waiting {
            self.active.remove(j);
            self.attempts.entry(*j).and_modify(|n| *n -= 1);
        }
        let mut again = Vec::new();
        if task.attempt <= self.opts.max_retries {
            self.driver.say(&format!("{why}; submitting it again"));
            again.push(i);
        } else {
            self.driver
                .store_failure(i, format!("{why}, after {} attempt(s)", task.attempt))?;
        }
        again.extend(waiting);
        self.submit(again)
    }

    /// The active units that depend on unit `i`, transitively.
    fn dependents(&self, i: usize) -> Vec<usize> {
        let plan = self.driver.plan;
        let mut ids: HashSet<&str> = HashSet::from([plan.units[i].id.as_str()]);
        let mut out = Vec::new();
        for (&j, _) in self.active.range(i + 1..) {
            if plan.units[j]
                .depends_on
                .iter()
                .any(|d| ids.contains(d.as_str()))
            {
                ids.insert(plan.units[j].id.as_str());
                out.push(j);
            }
        }
        out
    }

    fn cancel(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        capture(Command::new("scancel").args(ids))?;
        Ok(())
    }
}
