//! `claimbench run`: select units, execute them on the planned backends with a progress bar,
//! store each finished unit atomically, rebuild the aggregates, compute claims, render the report.

use std::path::PathBuf;

use anyhow::Result;
use claimbench_claims::ClaimsFile;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::configs;
use crate::devices::{self, BackendChoice};
use crate::env;
use crate::error::{Exit, input_error};
use crate::executor::{Driver, ExecOptions, ExecutorInfo, ExecutorKind};
use crate::plan::PlanFile;
use crate::registry::Registry;
use crate::stage::UnitEnv;
use crate::store::{Configs, MAX_SEEDS, Manifest, RunDir, SCHEMA_VERSION, UnitRecord, UnitStatus};
use claimbench_paper::{DataCard, DataEnv, Scale};

/// Options of `run`. `None` means the default, or on `--resume` the value the run was made with.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--scale`.
    pub scale: Option<Scale>,
    /// `--only`.
    pub only: Option<Vec<String>>,
    /// `--backend`.
    pub backend: Option<BackendChoice>,
    /// `--seeds`.
    pub seeds: Option<u64>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--config`: per-paper overrides of the scale's settings.
    pub config: Option<PathBuf>,
    /// `--resume`.
    pub resume: Option<PathBuf>,
    /// `--force`.
    pub force: bool,
    /// `--corpus-root` (or `CLAIMBENCH_CORPUS_ROOT`): where corpus-backed papers read their text;
    /// `None` for Debian's installed packages, or on `--resume` the root the run was made with.
    pub corpus_root: Option<PathBuf>,
    /// Skip rendering the report.
    pub no_report: bool,
    /// Hide the progress bar.
    pub quiet: bool,
    /// `--plan-only`: write the manifest and `plan.json`, run nothing.
    pub plan_only: bool,
    /// `--executor`, `--jobs`, `--max-retries` and the Slurm options.
    pub exec: ExecOptions,
}

#[derive(Serialize)]
struct ConfigKey<'a> {
    schema_version: u32,
    scale: &'a str,
    seeds: &'a [u64],
    only: &'a [String],
    backend: BackendChoice,
    configs: &'a Configs,
}

/// sha256 of what decides a run's units and numbers (not where it is written).
pub fn config_hash(
    scale: Scale,
    seeds: &[u64],
    only: &[String],
    backend: BackendChoice,
    configs: &Configs,
) -> String {
    let key = ConfigKey {
        schema_version: SCHEMA_VERSION,
        scale: scale.name(),
        seeds,
        only,
        backend,
        configs,
    };
    env::hex(&Sha256::digest(
        serde_json::to_vec(&key).expect("config serialises"),
    ))
}

/// The result of a run: where it is, and the exit code its units call for.
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// The report's index page, if rendered.
    pub report: Option<PathBuf>,
    /// Exit code: 2 on a correctness failure, 4 on a unit error, else 0.
    pub exit: Exit,
}

/// Checks the options that need no file: `--force` only with `--resume`, `--seeds` in
/// `1..=MAX_SEEDS`, `--only` ids in the id grammar (stored without a trailing `/`).
fn check_options(opts: &mut RunOptions) -> Result<()> {
    if opts.force && opts.resume.is_none() {
        return Err(input_error(
            "--force only applies to --resume DIR (it lets a resume differ in commit, configuration, backends or text)",
        ));
    }
    if let Some(n) = opts.seeds
        && !(1..=MAX_SEEDS).contains(&n)
    {
        return Err(input_error(format!(
            "--seeds {n}: must lie in 1..={MAX_SEEDS}"
        )));
    }
    if let Some(root) = &mut opts.corpus_root {
        *root = corpus_dir(root, "--corpus-root")?;
    }
    if let Some(only) = &mut opts.only {
        for o in only.iter_mut() {
            *o = o.trim().trim_end_matches('/').to_string();
            crate::ids::validate(o).map_err(|e| {
                input_error(format!("--only {}: not an id: {e}", crate::ids::shown(o)))
            })?;
        }
    }
    Ok(())
}

/// `root` as an absolute path, or an input error naming it (`what`) when it is not a directory.
fn corpus_dir(root: &std::path::Path, what: &str) -> Result<PathBuf> {
    match std::fs::canonicalize(root) {
        Ok(abs) if abs.is_dir() => Ok(abs),
        Ok(_) => Err(input_error(format!(
            "{what} {}: not a directory (it should hold one folder per domain)",
            root.display()
        ))),
        Err(e) => Err(input_error(format!(
            "{what} {}: not a directory: {e}",
            root.display()
        ))),
    }
}

/// The first domain whose text or tokenizer differs between the cards a run stored (`old`) and
/// those read now (`new`), as the reason a resume refuses (without `--force`); `None` when they
/// agree or the run stored none (made before cards were recorded, or without a corpus-backed
/// paper).
fn changed_domain(old: &[DataCard], new: &[DataCard]) -> Option<String> {
    use std::collections::{BTreeMap, BTreeSet};
    if old.is_empty() {
        return None;
    }
    /// Per domain: its text digests and its tokenizer digests.
    type Digests<'a> = BTreeMap<&'a str, (BTreeSet<&'a str>, BTreeSet<&'a str>)>;
    fn by_domain(cards: &[DataCard]) -> Digests<'_> {
        let mut m = Digests::new();
        for c in cards {
            let e = m.entry(c.domain.as_str()).or_default();
            e.0.insert(c.sha256.as_str());
            e.1.insert(c.tokenizer_sha256.as_str());
        }
        m
    }
    let short = |set: Option<&BTreeSet<&str>>| match set {
        Some(s) if !s.is_empty() => s
            .iter()
            .map(|d| d.get(..12).unwrap_or(d))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".to_string(),
    };
    let (old, new) = (by_domain(old), by_domain(new));
    let domains: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    domains.into_iter().find_map(|d| {
        let (o, n) = (old.get(d), new.get(d));
        let what = if o.map(|x| &x.0) != n.map(|x| &x.0) {
            format!(
                "the text of domain {d} changed since the run started (sha {} → {})",
                short(o.map(|x| &x.0)),
                short(n.map(|x| &x.0))
            )
        } else if o.map(|x| &x.1) != n.map(|x| &x.1) {
            format!(
                "the tokenizer of domain {d} changed since the run started (sha {} → {})",
                short(o.map(|x| &x.1)),
                short(n.map(|x| &x.1))
            )
        } else {
            return None;
        };
        Some(what)
    })
}

/// Executes `claimbench run`.
///
/// Nothing in an existing run directory changes until every check has passed: the options,
/// the lock, the manifest, the settings, the unit selection, the backends and every stored unit
/// record. Only then are stale temporaries removed and the manifest rewritten.
pub fn run(mut opts: RunOptions, reg: &Registry) -> Result<RunResult> {
    check_options(&mut opts)?;
    // sbatch settings from --config's `slurm` section, where no --slurm-* option gave them.
    if let Some(sec) = opts
        .config
        .as_deref()
        .map(configs::slurm_section)
        .transpose()?
        .flatten()
    {
        let s = &mut opts.exec.slurm.settings;
        *s = std::mem::take(s).or(sec);
    }
    opts.exec.slurm.check()?;
    let git = env::git_state();
    let resumed = match &opts.resume {
        Some(dir) => Some(RunDir::open_locked(dir, "run --resume")?),
        None => None,
    };
    let prior = resumed.as_ref().map(|(_, m, _)| m);
    let scale = match (opts.scale, prior) {
        (Some(s), _) => s,
        (None, Some(m)) => m.scale().ok_or_else(|| {
            input_error(format!(
                "--resume: {} holds criterion results brought in by import-criterion, not a run",
                m.run_id
            ))
        })?,
        (None, None) => Scale::Small,
    };
    let backend = opts
        .backend
        .or_else(|| prior.map(|m| m.plan.choice))
        .unwrap_or(BackendChoice::Auto);
    let only = opts
        .only
        .clone()
        .or_else(|| prior.map(|m| m.only.clone()))
        .unwrap_or_default();
    let n_seeds = opts
        .seeds
        .or_else(|| prior.map(|m| m.seeds.len() as u64))
        .unwrap_or_else(|| scale.default_seeds());
    if !(1..=MAX_SEEDS).contains(&n_seeds) {
        return Err(input_error(format!(
            "{n_seeds} seeds: must lie in 1..={MAX_SEEDS}"
        )));
    }
    let seeds: Vec<u64> = (0..n_seeds).collect();
    // Settings: --config over the scale's defaults; on --resume without --config, the run's own.
    let configs = match (&opts.config, prior) {
        (None, Some(m)) => match configs::of_manifest(reg, m)? {
            Some(c) => c,
            None => configs::load(reg, None, scale)?,
        },
        (path, _) => configs::load(reg, path.as_deref(), scale)?,
    };
    let units = reg.select(reg.all_units(scale, &seeds, &configs)?, &only)?;
    if units.len() > crate::store::MAX_UNITS {
        return Err(input_error(format!(
            "{} units ({n_seeds} seeds): more than a run holds ({}); use fewer --seeds or --only",
            units.len(),
            crate::store::MAX_UNITS
        )));
    }
    let papers: std::collections::BTreeSet<&str> = units.iter().map(|u| u.paper.as_str()).collect();
    configs::validate_selected(reg, &configs, &papers, &seeds)?;
    // The text of the corpus-backed papers, read before any unit runs: --corpus-root, on
    // --resume the run's own root, else Debian's installed packages.
    let corpus_root = match (
        &opts.corpus_root,
        prior.and_then(|m| m.corpus_root.as_ref()),
    ) {
        (Some(root), _) => Some(root.clone()),
        (None, Some(root)) => Some(
            corpus_dir(
                std::path::Path::new(root),
                "--resume: the run's corpus root",
            )
            .map_err(|e| input_error(format!("{e:#}; pass --corpus-root DIR")))?,
        ),
        (None, None) => None,
    };
    let data = DataEnv {
        corpus_root: corpus_root.clone(),
    };
    let data_cards = reg.data_cards(&units, &configs, &data)?;
    let corpus_root = corpus_root.map(|p| p.to_string_lossy().into_owned());
    let hash = config_hash(scale, &seeds, &only, backend, &configs);
    let plan = devices::plan(backend, crate::require_device())?;
    let fallbacks = reg.fallbacks(&units);

    let executor_info = ExecutorInfo {
        kind: opts.exec.kind,
        workers: match opts.exec.kind {
            ExecutorKind::Local => opts.exec.jobs.max(1) as u32,
            ExecutorKind::Slurm => opts.exec.slurm.throttle(),
        },
    };
    let (dir, mut manifest, lock, done) = match resumed {
        Some((dir, m, lock)) => {
            if !opts.force {
                if m.git_sha != git.sha {
                    return Err(input_error(format!(
                        "--resume {}: the run was made at commit {}, this binary is at {}; rerun from that commit or add --force",
                        dir.root.display(),
                        crate::ids::shown(&m.git_sha),
                        git.sha
                    )));
                }
                if m.config_hash != hash {
                    return Err(input_error(format!(
                        "--resume {}: the configuration differs from the run's (scale {}, seeds {}, only {:?}, backend {:?}); drop the differing options or add --force",
                        dir.root.display(),
                        m.scale,
                        m.seeds.len(),
                        m.only,
                        m.plan.choice
                    )));
                }
                if m.plan.train != plan.train || m.plan.kernels != plan.kernels {
                    return Err(input_error(format!(
                        "--resume {}: the run used backends train={:?} kernels={:?}, this machine gives train={:?} kernels={:?}; add --force to resume anyway",
                        dir.root.display(),
                        m.plan.train,
                        m.plan.kernels,
                        plan.train,
                        plan.kernels
                    )));
                }
            }
            if let Some(why) = changed_domain(&m.data_cards, &data_cards) {
                if !opts.force {
                    return Err(input_error(format!(
                        "--resume {}: {why}: the installed package or --corpus-root differs; rerun without --resume or pass --force",
                        dir.root.display()
                    )));
                }
                errln!("warning: {why}; resuming anyway (--force)");
            }
            if m.data_cards.is_empty() && !data_cards.is_empty() {
                errln!(
                    "note: the run recorded no data cards; the text read now is recorded, but it cannot be checked against the units already finished"
                );
            }
            // Every stored record is read and checked before anything is written: a bad one
            // stops the resume with the run directory as it was.
            let done: std::collections::HashMap<String, UnitRecord> = dir
                .read_units()?
                .into_iter()
                .filter(|r| r.status == UnitStatus::Passed)
                .map(|r| (r.unit_id.clone(), r))
                .collect();
            let stale = dir.remove_stale_temporaries(&lock)?;
            if stale > 0 {
                errln!("note: removed {stale} temporary file(s) left by the interrupted run");
            }
            // What the interrupted run's tasks staged: whole results are merged, what dead
            // tasks left half-written is removed; live Slurm tasks are left to the executor.
            let mut done = done;
            crate::executor::recover(&dir, &units, &mut done, &opts.exec)?;
            let mut m = m;
            m.finished = None;
            m.plan = plan.clone();
            m.fallbacks = fallbacks.clone();
            m.corpus_root = corpus_root.clone();
            m.data_cards = data_cards.clone();
            m.executor = Some(executor_info);
            (dir, m, lock, done)
        }
        None => {
            let started = chrono::Utc::now();
            let short = git.sha.get(..7).unwrap_or("nogit").to_string();
            let run_id = format!("{}-{short}", started.format("%Y%m%d-%H%M%S"));
            let root = opts
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(&run_id));
            if root.join("manifest.json").exists() {
                return Err(input_error(format!(
                    "--out {}: already holds a run; use --resume {} to finish it, or another directory",
                    root.display(),
                    root.display()
                )));
            }
            let (dir, lock) = RunDir::create_locked(&root, "run")?;
            let run_id = root
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or(run_id);
            let m = Manifest {
                schema_version: SCHEMA_VERSION,
                run_id,
                git_sha: git.sha.clone(),
                git_dirty: git.dirty,
                cargo_lock_sha256: env::cargo_lock_hash(),
                rustc: env::rustc_version(),
                crate_versions: env::crate_versions(),
                features: env::features(),
                plan: plan.clone(),
                cpu: env::cpu_model(),
                os: env::os_name(),
                scale: crate::store::RunScale::Run(scale),
                seeds: seeds.clone(),
                only: only.clone(),
                config_hash: hash.clone(),
                units: units.iter().map(|u| u.id.clone()).collect(),
                skipped: Vec::new(),
                started: started.to_rfc3339(),
                finished: None,
                peaks: None,
                configs: Some(configs.clone()),
                fallbacks: fallbacks.clone(),
                build: Some(env::build_info()),
                corpus_root: corpus_root.clone(),
                data_cards: data_cards.clone(),
                executor: Some(executor_info),
            };
            m.check(&dir.manifest_path())?;
            (dir, m, lock, Default::default())
        }
    };
    if let Some(reason) = &plan.skip_reason {
        errln!("note: {reason}");
    }
    for f in &manifest.fallbacks {
        errln!("warning: {}: {} ({})", f.id, f.what, f.reason);
    }
    if manifest.peaks.is_none() && units.iter().any(|u| u.needs_device()) {
        manifest.peaks = crate::peaks::probe_plan(&plan, scale, opts.quiet);
        if let Some(b) = manifest.build.as_mut().filter(|b| b.autotune) {
            b.autotune_caches = env::autotune_caches();
        }
    }
    dir.write_manifest(&manifest)?;

    // The plan: every unit with its index, dependencies, resources and timing flag, which
    // `run-unit` (every executor's worker) reads its unit from.
    let estimates: std::collections::BTreeMap<String, u64> = papers
        .iter()
        .filter_map(|&p| {
            let bytes = reg.paper(p)?.estimated_bytes(configs.get(p)?).ok()?;
            Some((p.to_string(), bytes))
        })
        .collect();
    let plan_file = PlanFile::new(
        &manifest.run_id,
        &hash,
        scale,
        &units,
        &estimates,
        plan.kernels == Some(claimbench_paper::Exec::Cuda),
    );
    plan_file.write(&dir)?;
    if opts.plan_only {
        outln!(
            "planned {} units: {} (run one with `claimbench run-unit {} --index I`, all with `claimbench run --resume {}`)",
            units.len(),
            dir.root.join(crate::plan::PLAN_FILE).display(),
            dir.root.display(),
            dir.root.display()
        );
        return Ok(RunResult {
            dir: dir.root.clone(),
            report: None,
            exit: Exit::Ok,
        });
    }

    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(units.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut skipped = Vec::new();
    let mut todo = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        if unit.needs_device() && plan.kernels.is_none() {
            skipped.push((
                unit.id.clone(),
                plan.skip_reason.clone().unwrap_or_default(),
            ));
            bar.inc(1);
        } else if done.contains_key(&unit.id) {
            bar.inc(1);
        } else {
            todo.push(i);
        }
    }
    let mut driver = Driver {
        env: UnitEnv {
            reg,
            plan: &plan,
            scale,
            configs: &configs,
            seeds: &seeds,
            data: &data,
        },
        dir: &dir,
        plan: &plan_file,
        units: &units,
        finished: done,
        bar: bar.clone(),
        quiet: opts.quiet,
    };
    driver.execute(todo, &opts.exec)?;
    bar.finish_and_clear();

    let selected: std::collections::HashSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
    let records: Vec<UnitRecord> = dir
        .read_units()?
        .into_iter()
        .filter(|r| selected.contains(r.unit_id.as_str()))
        .collect();
    dir.write_aggregates(&manifest.run_id, &records, manifest.peaks.as_ref())?;
    dir.write_claims(&ClaimsFile::with_fdr(
        crate::claims::evaluate_all(reg, &records, &configs, manifest.scale.name()),
        claimbench_claims::DEFAULT_ALPHA,
    ))?;
    manifest.skipped = skipped;
    manifest.finished = Some(chrono::Utc::now().to_rfc3339());
    dir.write_manifest(&manifest)?;

    let report = if opts.no_report {
        None
    } else {
        Some(crate::report::render_locked(&dir, &lock, reg)?)
    };
    let (exit, suspects) = exit_of(&records, manifest.peaks.as_ref());
    for s in &suspects {
        errln!("suspect measurement: {s}");
    }
    Ok(RunResult {
        dir: dir.root.clone(),
        report,
        exit,
    })
}

/// The exit code of a run's records (contracts.md): a correctness failure is 2, an error 4, and a
/// benchmark whose bandwidth is above the measured floor by more than
/// [`crate::peaks::SUSPECT_SLACK`] cannot be right (the measurement or the floor is wrong): also
/// 2, listed as `kernel impl: why` in the second value ([`crate::peaks::Peaks::suspect_bandwidth`]:
/// a FLOP rate above its floor is flagged on the page only).
pub fn exit_of(records: &[UnitRecord], peaks: Option<&crate::peaks::Peaks>) -> (Exit, Vec<String>) {
    let mut exit = Exit::Ok;
    for r in records {
        exit = exit.combine(match r.status {
            UnitStatus::Passed => Exit::Ok,
            UnitStatus::CorrectnessFailure => Exit::Correctness,
            UnitStatus::Error => Exit::Input,
        });
    }
    let mut suspects = Vec::new();
    if let Some(p) = peaks {
        for b in records.iter().flat_map(|r| &r.benchmarks) {
            if let Some(why) = p.suspect_bandwidth(b.bytes, b.ours_median_ms()) {
                suspects.push(format!("{} {}: {why}", b.kernel, b.implementation));
                exit = exit.combine(Exit::Correctness);
            }
        }
    }
    (exit, suspects)
}
