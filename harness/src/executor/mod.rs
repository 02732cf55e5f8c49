//! Executors: who runs the units of a planned run. The driver (`claimbench run`, holding the run
//! lock) picks the units still to run, hands them out, merges what each task staged
//! ([`crate::stage`]) and stores an error record for a task that died without a result after its
//! retries.
//!
//! - `local` with one job (the default): the driver runs each unit itself, in plan order.
//! - `local` with `--jobs N`: N worker processes on this machine, each `claimbench run-unit DIR
//!   --index I --tag jobs-I-A`; a unit starts once its dependencies are merged.
//! - `slurm`: job arrays submitted with `sbatch` ([`slurm`]).
//!
//! Timing units (benchmarks) never run beside other work: locally a timing unit starts only when
//! no other task runs, and nothing starts while it runs; on Slurm they form their own `--exclusive`
//! array, one task at a time. The report's benchmark page says how they ran
//! ([`ExecutorInfo::timing_text`]).

pub mod slurm;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use crate::plan::PlanFile;
use crate::stage::{self, UnitEnv};
use crate::store::{RunDir, UnitRecord, UnitStatus};
use claimbench_paper::UnitSpec;

pub use crate::store::{ExecutorInfo, ExecutorKind};

/// How a run's units are executed.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// `--executor`.
    pub kind: ExecutorKind,
    /// `--jobs`: worker processes of the local executor (1: the driver runs every unit itself).
    pub jobs: usize,
    /// `--max-retries`: how often a task that died without a result is started again.
    pub max_retries: u32,
    /// The Slurm options.
    pub slurm: slurm::SlurmOptions,
}

/// The driver's state: what has finished, and the progress output.
pub struct Driver<'a> {
    /// What each unit runs with.
    pub env: UnitEnv<'a>,
    /// The run directory.
    pub dir: &'a RunDir,
    /// The plan (`plan.json`).
    pub plan: &'a PlanFile,
    /// The selected units, in plan order.
    pub units: &'a [UnitSpec],
    /// Records of finished units (passed before a resume, or merged now), by unit id.
    pub finished: HashMap<String, UnitRecord>,
    /// Progress bar (hidden with `--quiet`).
    pub bar: ProgressBar,
    /// `--quiet`.
    pub quiet: bool,
}

impl Driver<'_> {
    /// Prints a line above the progress bar.
    pub fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            errln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Takes a merged record.
    fn accept(&mut self, record: UnitRecord) {
        self.say(&stage::line(&record));
        self.bar.inc(1);
        self.finished.insert(record.unit_id.clone(), record);
    }

    /// Stores an error record for unit `index`, whose task left none.
    fn store_failure(&mut self, index: usize, message: String) -> Result<()> {
        let record = stage::failed_record(&self.units[index], self.env.plan, message);
        self.dir
            .write_unit(&record)
            .with_context(|| format!("storing unit {}", record.unit_id))?;
        self.accept(record);
        Ok(())
    }

    /// The passed records of `unit`'s dependencies.
    fn inputs(&self, unit: &UnitSpec) -> Vec<UnitRecord> {
        unit.depends_on
            .iter()
            .filter_map(|d| self.finished.get(d))
            .filter(|r| r.status == UnitStatus::Passed)
            .cloned()
            .collect()
    }

    /// Runs the units at `todo` (plan indices, in plan order) with `opts`.
    pub fn execute(&mut self, todo: Vec<usize>, opts: &ExecOptions) -> Result<()> {
        match opts.kind {
            ExecutorKind::Local if opts.jobs <= 1 => self.sequential(todo),
            ExecutorKind::Local => self.parallel(todo, opts.jobs, opts.max_retries),
            ExecutorKind::Slurm => slurm::execute(self, todo, opts),
        }
    }

    /// The driver runs each unit itself.
    fn sequential(&mut self, todo: Vec<usize>) -> Result<()> {
        let delay_ms: u64 = std::env::var("CLAIMBENCH_TEST_UNIT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for i in todo {
            let unit = &self.units[i];
            self.bar.set_message(unit.id.clone());
            let inputs = self.inputs(unit);
            let tag = format!("local-{i}");
            let tick_bar = self.bar.clone();
            let mut tick = move || tick_bar.tick();
            stage::run_staged(&self.env, self.dir, unit, &inputs, &tag, &mut tick)?;
            let record = stage::merge(self.dir, &tag, &unit.id)?
                .with_context(|| format!("unit {}: its staged record vanished", unit.id))?;
            self.accept(record);
            if delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(delay_ms));
            }
        }
        Ok(())
    }

    /// `jobs` worker processes, each `claimbench run-unit`.
    fn parallel(&mut self, todo: Vec<usize>, jobs: usize, max_retries: u32) -> Result<()> {
        struct Task {
            index: usize,
            tag: String,
            child: Child,
            log: PathBuf,
        }
        let exe = std::env::current_exe().context("finding the claimbench binary")?;
        let logs = self.dir.root.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut waiting = todo;
        let mut running: Vec<Task> = Vec::new();
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        loop {
            let mut i = 0;
            while i < running.len() {
                let Some(status) = running[i].child.try_wait()? else {
                    i += 1;
                    continue;
                };
                let task = running.swap_remove(i);
                let id = &self.units[task.index].id;
                match stage::merge(self.dir, &task.tag, id)? {
                    Some(record) => {
                        stage::discard(self.dir, &task.tag)?;
                        self.accept(record);
                    }
                    None => {
                        stage::discard(self.dir, &task.tag)?;
                        let n = attempts[&task.index];
                        let why = format!(
                            "task {} of unit {id} {} without a result (log: {})",
                            task.tag,
                            describe(status),
                            task.log.display()
                        );
                        if n <= max_retries {
                            self.say(&format!("{why}; starting it again"));
                            waiting.insert(0, task.index);
                        } else {
                            self.store_failure(task.index, format!("{why}, after {n} attempt(s)"))?;
                        }
                    }
                }
            }
            if waiting.is_empty() && running.is_empty() {
                return Ok(());
            }
            let outstanding: HashSet<&str> = waiting
                .iter()
                .chain(running.iter().map(|t| &t.index))
                .map(|&i| self.units[i].id.as_str())
                .collect();
            // A dependency outside the outstanding units has finished, or will not run (a
            // unit skipped for want of a device): the unit then runs without it, as in order.
            let ready = |i: usize| {
                self.units[i]
                    .depends_on
                    .iter()
                    .all(|d| !outstanding.contains(d.as_str()))
            };
            let timing = |i: usize| self.plan.units[i].timing;
            let mut started = Vec::new();
            if !running.iter().any(|t| timing(t.index)) {
                let free = jobs.saturating_sub(running.len());
                started.extend(
                    waiting
                        .iter()
                        .copied()
                        .filter(|&i| ready(i) && !timing(i))
                        .take(free),
                );
                if started.is_empty()
                    && running.is_empty()
                    && let Some(&i) = waiting.iter().find(|&&i| ready(i))
                {
                    started.push(i);
                }
            }
            for i in started {
                waiting.retain(|&w| w != i);
                let n = attempts.entry(i).or_insert(0);
                *n += 1;
                let tag = format!("jobs-{i}-{n}");
                let log = logs.join(format!("{tag}.log"));
                let child = spawn_worker(&exe, &self.dir.root, i, &tag, &log, jobs, timing(i))?;
                self.bar.set_message(self.units[i].id.clone());
                running.push(Task {
                    index: i,
                    tag,
                    child,
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `claimbench run-unit ROOT --index I --tag TAG`, its output in `log`. The worker dies
/// with the driver (`PR_SET_PDEATHSIG`), so a killed driver leaves no task running: a resume
/// may then clear what the tasks staged.
fn spawn_worker(
    exe: &std::path::Path,
    root: &std::path::Path,
    index: usize,
    tag: &str,
    log: &std::path::Path,
    jobs: usize,
    timing: bool,
) -> Result<Child> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    // Each worker gets its share of the cores for burn flex's thread pool (rayon), unless the
    // user set one: N workers each taking every core oversubscribe the machine (measured: two
    // workers of two threads on 2 cores ran each continual unit 2.1× slower). The results do not
    // depend on the thread count (checked: the same metrics with 1 and 2 threads).
    // A timing unit runs alone and keeps every core, as in the driver.
    if !timing && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        cmd.env("RAYON_NUM_THREADS", threads_per_worker(jobs).to_string());
    }
    cmd.arg("run-unit")
        .arg(root)
        .arg("--index")
        .arg(index.to_string())
        .arg("--tag")
        .arg(tag)
        // The driver starts a unit only once its dependencies are merged.
        .arg("--wait-for-deps")
        .arg("0")
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
        .with_context(|| format!("starting {} run-unit", exe.display()))
}

/// This machine's cores shared among `jobs` workers (at least 1 each).
pub fn threads_per_worker(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / jobs.max(1)).max(1)
}

/// "exited with code N" or "was killed by signal S".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// The plan index a task tag names: `local-I`, `jobs-I-A` or `slurm-J_I`.
pub fn index_of_tag(tag: &str) -> Option<usize> {
    let i = if let Some(rest) = tag.strip_prefix("local-") {
        rest
    } else if let Some(rest) = tag.strip_prefix("jobs-") {
        rest.split_once('-')?.0
    } else {
        tag.strip_prefix("slurm-")?.split_once('_')?.1
    };
    i.parse().ok()
}

/// On resume, before any unit runs: merges the whole results the interrupted run's dead tasks
/// staged (a passed one joins `done`) and removes what they left half-written. Local tasks
/// died with their driver (whose lock we now hold); a Slurm task may still be queued or running:
/// the Slurm executor adopts those, and any other executor refuses to resume beside them.
pub fn recover(
    dir: &RunDir,
    units: &[UnitSpec],
    done: &mut HashMap<String, UnitRecord>,
    opts: &ExecOptions,
) -> Result<()> {
    let mut merged = 0;
    for tag in stage::staged_tags(dir)? {
        if tag.starts_with("slurm-") {
            if opts.kind == ExecutorKind::Slurm {
                continue;
            }
            if slurm::task_may_live(&tag) {
                return Err(crate::error::input_error(format!(
                    "{}: Slurm task {tag} of this run may still be queued or running; resume with --executor slurm, or scancel it first (or, if Slurm is gone, delete {})",
                    dir.root.display(),
                    stage::folder(dir, &tag).display()
                )));
            }
        }
        let unit = index_of_tag(&tag).and_then(|i| units.get(i));
        match unit {
            Some(u) if !done.contains_key(&u.id) => {
                if let Some(r) = stage::merge(dir, &tag, &u.id)? {
                    merged += 1;
                    if r.status == UnitStatus::Passed {
                        done.insert(r.unit_id.clone(), r);
                    }
                }
                stage::discard(dir, &tag)?;
            }
            _ => {
                stage::discard(dir, &tag)?;
            }
        }
    }
    if merged > 0 {
        errln!("note: merged {merged} result(s) the interrupted run's tasks had staged");
    }
    Ok(())
}
