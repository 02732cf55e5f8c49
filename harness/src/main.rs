//! The `claimbench` command line. Exit codes: 0 ok, 1 performance regression, 2 correctness
//! failure or claim no longer reproduced, 3 inconclusive (with --fail-on-inconclusive), 4 input,
//! config or environment error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use claimbench::compare::{self, Measure};
use claimbench::configs::SlurmSettings;
use claimbench::devices::{self, BackendChoice};
use claimbench::error::Exit;
use claimbench::executor::{ExecOptions, ExecutorKind, slurm::SlurmOptions};
use claimbench::registry::Registry;
use claimbench::run::{RunOptions, run};
use claimbench::{errln, out, outln};
use claimbench_paper::Scale;

// Counts live and peak heap bytes so a unit can measure training memory: DoRA's Sec. 4.3 claim
// that the detached column norm cuts it (`claimbench_paper::alloc::measure_peak`).
#[global_allocator]
static ALLOC: claimbench_paper::alloc::CountingAlloc =
    claimbench_paper::alloc::CountingAlloc::new();

#[derive(Parser)]
#[command(
    name = "claimbench",
    version,
    about = "Check what LLM papers claim: reproduce, benchmark, report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// How long to run: smoke (CI), small (default: the claims in minutes), full.
    #[arg(long, value_enum)]
    scale: Option<Scale>,
    /// Comma-separated ids (prefixes) to run: a paper, a kernel or a unit id (see `claimbench list`).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Backends: auto (train on flex, kernels on CUDA or wgpu), flex, wgpu, cuda.
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Number of seeds for seeded units (default by scale: smoke 2, small 5, full 10).
    #[arg(long)]
    seeds: Option<u64>,
    /// Run directory (default: runs/<date>-<time>-<commit>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// JSON overrides of the reproductions' settings, keyed by paper id (e.g.
    /// `{"continual": {"stage_steps": 400}}`); validated before anything runs.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Finish an interrupted run: only units not finished in DIR run again.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// With --resume: continue even if the commit, configuration, backends or text differ.
    #[arg(long, requires = "resume")]
    force: bool,
    #[command(flatten)]
    corpus: CorpusArgs,
    /// Do not render the report.
    #[arg(long)]
    no_report: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Write the manifest and plan.json (every unit with its index, dependencies, resources and
    /// whether it times kernels), then stop: run units with `run-unit`, or all with --resume.
    #[arg(long)]
    plan_only: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

/// Who runs the units.
#[derive(clap::Args, Clone)]
struct ExecArgs {
    /// local: this machine (the default); slurm: job arrays submitted with sbatch (the run
    /// directory must be on a filesystem the nodes share).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// With the local executor: N worker processes (each `claimbench run-unit`); timing units
    /// still run alone.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// How often a task that died without a result (crashed, cancelled, preempted) is started
    /// again before its unit is stored as an error.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=20))]
    max_retries: u32,
    /// Slurm partition (sbatch --partition).
    #[arg(long, value_name = "NAME")]
    slurm_partition: Option<String>,
    /// Time limit per task (sbatch --time; default: the plan's estimate by scale).
    #[arg(long, value_name = "TIME")]
    slurm_time: Option<String>,
    /// Memory per task (sbatch --mem, e.g. 8G; default: the plan's estimate).
    #[arg(long, value_name = "MEM")]
    slurm_mem: Option<String>,
    /// CPUs per task (sbatch --cpus-per-task; default 1).
    #[arg(long, value_name = "N")]
    slurm_cpus: Option<u32>,
    /// GPUs per task of the units that need the kernel device (sbatch --gpus, e.g. 1 or h100:1).
    #[arg(long, value_name = "GPUS")]
    slurm_gpus: Option<String>,
    /// Tasks of one array running at once (sbatch --array=...%P; default 16); timing units run
    /// one at a time.
    #[arg(long, value_name = "P")]
    slurm_max_parallel: Option<u32>,
    /// One more sbatch argument, passed as is (repeat for more), e.g. --slurm-arg=--account=lab.
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    slurm_args: Vec<String>,
}

impl ExecArgs {
    fn options(self) -> ExecOptions {
        ExecOptions {
            kind: self.executor,
            jobs: usize::from(self.jobs),
            max_retries: self.max_retries,
            slurm: SlurmOptions {
                settings: SlurmSettings {
                    partition: self.slurm_partition,
                    time: self.slurm_time,
                    mem: self.slurm_mem,
                    cpus: self.slurm_cpus,
                    gpus: self.slurm_gpus,
                    max_parallel: self.slurm_max_parallel,
                    args: self.slurm_args,
                },
                ..SlurmOptions::default()
            },
        }
    }
}

/// Where corpus-backed papers read their text.
#[derive(clap::Args, Clone)]
struct CorpusArgs {
    /// Read the papers' text from DIR (one folder per domain) instead of Debian's installed
    /// packages; on --resume, the run's own root by default.
    #[arg(long, value_name = "DIR", env = "CLAIMBENCH_CORPUS_ROOT")]
    corpus_root: Option<PathBuf>,
}

impl RunArgs {
    fn options(self) -> RunOptions {
        RunOptions {
            scale: self.scale,
            only: self.only,
            backend: self.backend,
            seeds: self.seeds,
            out: self.out,
            config: self.config,
            resume: self.resume,
            force: self.force,
            corpus_root: self.corpus.corpus_root,
            no_report: self.no_report,
            quiet: self.quiet,
            plan_only: self.plan_only,
            exec: self.exec.options(),
        }
    }
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The base: a run directory or a baseline file.
    base: PathBuf,
    /// The head: a run directory.
    head: PathBuf,
    /// Default smallest relative change that counts (a baseline file may set it per series).
    #[arg(long, default_value_t = 0.05)]
    min_effect: f64,
    /// False-discovery rate across all series (Benjamini–Hochberg).
    #[arg(long, default_value_t = 0.05)]
    fdr: f64,
    /// Measures to compare: time (absolute, same machine only), relative (ours / baseline per round).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Measure::Time, Measure::Relative])]
    measure: Vec<Measure>,
    /// Compare even when the runs used another device or backend.
    #[arg(long)]
    force: bool,
    /// List base series missing from the head instead of failing.
    #[arg(long)]
    allow_missing: bool,
    /// Exit 3 when a series is inconclusive (and nothing worse happened).
    #[arg(long)]
    fail_on_inconclusive: bool,
    /// Where to write compare.md (for a PR comment), compare.xml (JUnit) and compare.json
    /// (default: HEAD/compare).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything registered (or --only some ids), store the results, render the report.
    Run(RunArgs),
    /// Run only the benchmarks (correctness-checked first), store them, render the report.
    Bench(RunArgs),
    /// Run exactly one unit of a planned run (what every executor's worker runs). With --tag (or
    /// inside a Slurm array task) it stages the result for the driver; by hand it takes the run
    /// lock and stores the result itself.
    RunUnit {
        /// The run directory (made by `run`, or `run --plan-only`).
        dir: PathBuf,
        /// The unit's index in plan.json.
        #[arg(long, conflicts_with = "unit", required_unless_present = "unit")]
        index: Option<usize>,
        /// The unit's id.
        #[arg(long)]
        unit: Option<String>,
        /// This task's tag (one id segment, unique per task and attempt): set by the executors.
        #[arg(long)]
        tag: Option<String>,
        /// Seconds to wait for the dependencies' records (the driver merges them).
        #[arg(long, default_value_t = 600)]
        wait_for_deps: u64,
        /// No output but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Render the static HTML report of a run directory into DIR/report/.
    Report {
        /// The run directory.
        dir: PathBuf,
        /// Then open every page in headless Chromium: broken links, missing plots, console errors.
        #[arg(long)]
        check: bool,
    },
    /// Compare the benchmarks and claims of two runs (a run directory, or a baseline file as BASE).
    /// Exit 1 on a regression, 2 on a correctness failure or a claim no longer reproduced, 3 on
    /// an inconclusive series with --fail-on-inconclusive, 4 when the runs cannot be compared.
    Compare(CompareArgs),
    /// Keep a compact baseline of a run's benchmarks (e.g. benches/baselines/lavapipe-smoke.json).
    /// Without RUN: makes a fresh smoke run (what CI runs) first, so one command refreshes it.
    Baseline {
        /// The run directory (default: a new smoke run in runs/baseline-<date>-<time>).
        run: Option<PathBuf>,
        /// Where to write it.
        #[arg(long, default_value = "benches/baselines/lavapipe-smoke.json")]
        out: PathBuf,
        /// Smallest relative change that counts, stored per series. The default 25% suits smoke
        /// runs (6 rounds on a shared 2-core machine: their 95% CIs span about ±10%).
        #[arg(long, default_value_t = 0.25)]
        min_effect: f64,
        #[command(flatten)]
        corpus: CorpusArgs,
    },
    /// Store the status of the reproductions: a summary of a `small` run's claims (counts by kind,
    /// claim ids, commit, settings hash) and README's table from it. Without RUN: makes a fresh
    /// `small` run of every paper first, so one command refreshes both.
    Summary {
        /// The run directory (default: a new small run in runs/summary-<date>-<time>).
        run: Option<PathBuf>,
        /// Where to write the summary.
        #[arg(long, default_value = claimbench::summary::SUMMARY_PATH)]
        out: PathBuf,
        /// The README whose status table to rewrite (between its status markers).
        #[arg(long, default_value = "README.md")]
        readme: PathBuf,
        #[command(flatten)]
        corpus: CorpusArgs,
    },
    /// Benchmark series over the runs stored in RUNS_DIR, in commit order, with change points;
    /// writes RUNS_DIR/history/index.html and history.json.
    History {
        /// Directory holding run directories (e.g. runs/).
        runs_dir: PathBuf,
    },
    /// Export a run's benchmark results for CI dashboards: Bencher (bmf), github-action-benchmark
    /// (gh-benchmark: latency, smaller is better; gh-benchmark-bigger: speedup, bandwidth, % of
    /// floor), csv or parquet. Writes RUN/export/<file> (or --out) and prints its path.
    Export {
        /// The run directory (e.g. a downloaded CI artifact).
        run: PathBuf,
        /// What to write.
        #[arg(long, value_enum)]
        format: claimbench::export::Format,
        /// Where to write it (default: RUN/export/bmf.json, gh-benchmark.json,
        /// gh-benchmark-bigger.json, export.csv or export.parquet).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Turn criterion results (target/criterion after `cargo bench`) into a run directory.
    ImportCriterion {
        /// criterion's output directory.
        dir: PathBuf,
        /// Run directory to create (default runs/criterion-<date>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the backends and devices found.
    Devices,
    /// List the ids `--only` accepts.
    List,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are answers (exit 0); every other parse error is bad
            // input, exit 4 (contracts.md keeps 2 for correctness failures, clap's default).
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Input.code()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli.command) {
        Ok(exit) => exit.code(),
        Err(err) => {
            // Every error that stops a command before its verdicts is an environment, input or
            // config problem (contracts.md: exit 4); unit failures are outcomes, not errors.
            errln!("error: {err:#}");
            Exit::Input.code()
        }
    }
}

fn dispatch(cmd: Command) -> Result<Exit> {
    let reg = Registry::default();
    match cmd {
        Command::Run(args) => finish_run(args.options(), &reg),
        Command::Bench(args) => {
            let mut opts = args.options();
            let defaults = reg.default_configs(Scale::Small);
            let bench_ids: Vec<String> = reg
                .all_units(Scale::Small, &[0], &defaults)?
                .into_iter()
                .filter(|u| u.bench)
                .map(|u| u.id)
                .collect();
            let selected = match opts.only.take() {
                None => bench_ids,
                Some(only) => {
                    let chosen =
                        reg.select(reg.all_units(Scale::Small, &[0], &defaults)?, &only)?;
                    let ids: Vec<String> = chosen
                        .into_iter()
                        .map(|u| u.id)
                        .filter(|id| bench_ids.contains(id))
                        .collect();
                    if ids.is_empty() {
                        return Err(claimbench::error::input_error(format!(
                            "--only {}: selects no benchmark",
                            only.join(",")
                        )));
                    }
                    ids
                }
            };
            opts.only = Some(selected);
            finish_run(opts, &reg)
        }
        Command::RunUnit {
            dir,
            index,
            unit,
            tag,
            wait_for_deps,
            quiet: _,
        } => claimbench::worker::run_unit(
            claimbench::worker::WorkerOptions {
                dir,
                index,
                unit,
                tag,
                wait_secs: wait_for_deps,
            },
            &reg,
        ),
        Command::Report { dir, check } => {
            let index = claimbench::report::render(&dir, &reg)?;
            outln!("{}", index.display());
            if check {
                return check_site(&dir.join("report"));
            }
            Ok(Exit::Ok)
        }
        Command::Compare(a) => {
            let open_unit = |x: f64| x > 0.0 && x < 1.0;
            if !open_unit(a.min_effect) || !open_unit(a.fdr) {
                return Err(claimbench::error::input_error(format!(
                    "--min-effect {} and --fdr {} must lie in (0, 1)",
                    a.min_effect, a.fdr
                )));
            }
            let base = compare::load(&a.base)?;
            let head = compare::load(&a.head)?;
            let opts = compare::CompareOptions {
                stats: claimbench_claims::regression::CompareConfig {
                    min_effect: a.min_effect,
                    alpha: a.fdr,
                    ..Default::default()
                },
                measures: a.measure,
                force: a.force,
                allow_missing: a.allow_missing,
                fail_on_inconclusive: a.fail_on_inconclusive,
            };
            let c = compare::compare(&base, &head, &opts)?;
            out!("{}", compare::text(&c));
            let out = a.out.unwrap_or_else(|| a.head.join("compare"));
            for p in compare::write_outputs(&c, &out)? {
                outln!("wrote {}", p.display());
            }
            Ok(c.exit)
        }
        Command::Baseline {
            run,
            out,
            min_effect,
            corpus,
        } => {
            let run = match run {
                Some(r) => r,
                None => {
                    let result = fresh_run(&reg, "baseline", Scale::Smoke, None, true, corpus)?;
                    if result.exit != Exit::Ok {
                        return Err(claimbench::error::input_error(format!(
                            "the smoke run in {} did not pass (exit {}); no baseline written",
                            result.dir.display(),
                            result.exit as u8
                        )));
                    }
                    result.dir
                }
            };
            let b = compare::write_baseline(
                &run,
                &out,
                min_effect,
                "claimbench baseline   (a fresh smoke run, then this file; --min-effect to change the 25% default)",
            )?;
            outln!(
                "wrote {} ({} series, {} claims, min effect {:.0}%) from run {}",
                out.display(),
                b.series.len(),
                b.claims.len(),
                min_effect * 100.0,
                b.run_id
            );
            Ok(Exit::Ok)
        }
        Command::Summary {
            run,
            out,
            readme,
            corpus,
        } => {
            let run = match run {
                Some(r) => r,
                None => {
                    let only: Vec<String> = reg.papers().map(|p| p.info().id.to_string()).collect();
                    fresh_run(&reg, "summary", Scale::Small, Some(only), false, corpus)?.dir
                }
            };
            let s = claimbench::summary::of_run(&run, &reg)?;
            let text = serde_json::to_string_pretty(&s)? + "\n";
            claimbench::store::write_atomic(&out, text.as_bytes())?;
            let old = std::fs::read_to_string(&readme)
                .with_context(|| format!("reading {}", readme.display()))?;
            let new = claimbench::summary::replace_in_readme(&old, &s)?;
            claimbench::store::write_atomic(&readme, new.as_bytes())?;
            for (id, p) in &s.papers {
                outln!(
                    "{id}: reproductions {}; controls {}; checks {}",
                    p.counts.reproduction.text(),
                    p.counts.control.pass_text(),
                    p.counts.check.pass_text()
                );
            }
            outln!(
                "wrote {} and the status table of {} from run {}",
                out.display(),
                readme.display(),
                s.run_id
            );
            Ok(Exit::Ok)
        }
        Command::History { runs_dir } => {
            let h = claimbench::history::collect(&runs_dir, None)?;
            out!("{}", claimbench::history::text(&h));
            let index = claimbench::report::render_history(&runs_dir, &h)?;
            outln!("{}", index.display());
            Ok(Exit::Ok)
        }
        Command::Export { run, format, out } => {
            let path = claimbench::export::export(&run, format, out.as_deref())?;
            outln!("{}", path.display());
            Ok(Exit::Ok)
        }
        Command::ImportCriterion { dir, out } => {
            let out = out.unwrap_or_else(claimbench::criterion_import::default_out);
            let n = claimbench::criterion_import::import(&dir, &out, 10_000)?;
            let index = claimbench::report::render(&out, &reg)?;
            outln!(
                "imported {} comparison(s) into {}\nreport: {}",
                n,
                out.display(),
                index.display()
            );
            Ok(Exit::Ok)
        }
        Command::Devices => {
            print_devices();
            Ok(Exit::Ok)
        }
        Command::List => {
            let units = reg.all_units(
                Scale::Small,
                &(0..Scale::Small.default_seeds()).collect::<Vec<_>>(),
                &reg.default_configs(Scale::Small),
            )?;
            outln!("papers (a paper id also selects the kernels it uses):");
            for p in reg.papers() {
                let i = p.info();
                outln!(
                    "  {:<12} arXiv {}  {}; kernels: {}",
                    i.id,
                    i.arxiv,
                    i.title,
                    i.kernels.join(", ")
                );
            }
            outln!("units:");
            for u in units {
                outln!(
                    "  {:<44} {}{}",
                    u.id,
                    u.experiment,
                    if u.needs_device() {
                        " (needs a wgpu or CUDA device)"
                    } else {
                        ""
                    }
                );
            }
            Ok(Exit::Ok)
        }
    }
}

/// Checks a rendered site; a broken site is a failure of the report (exit 2), no browser an
/// environment error (exit 4).
fn check_site(site: &std::path::Path) -> Result<Exit> {
    let browser = claimbench::sitecheck::find_browser().ok_or_else(|| {
        claimbench::error::input_error(
            "--check needs headless Chromium: apt-get install chromium (or set CLAIMBENCH_BROWSER)",
        )
    })?;
    let r = claimbench::sitecheck::check(site, Some(&browser))?;
    for p in &r.problems {
        errln!("site: {p}");
    }
    outln!(
        "site check: {} pages, {} links, {} plots, {} problem(s) (opened in {})",
        r.pages,
        r.links,
        r.plots,
        r.problems.len(),
        browser.display()
    );
    Ok(if r.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Correctness
    })
}

fn finish_run(opts: RunOptions, reg: &Registry) -> Result<Exit> {
    let result = run(opts, reg)?;
    outln!("run directory: {}", result.dir.display());
    if let Some(report) = &result.report {
        outln!("report: {}", report.display());
    }
    if result.exit != Exit::Ok {
        errln!(
            "exit {}: {}",
            result.exit as u8,
            match result.exit {
                Exit::Correctness => "a unit failed its correctness check",
                Exit::Input => "a unit stopped with an error",
                _ => "see the report",
            }
        );
    }
    Ok(result.exit)
}

fn print_devices() {
    outln!("flex     {}", devices::flex_device().label());
    let adapters = devices::wgpu_adapters();
    if adapters.is_empty() {
        outln!("wgpu     none found: {}", devices::DEVICE_HINT);
    }
    for a in &adapters {
        outln!("wgpu     {}", a.label());
    }
    if let Some(props) = wgpu_properties() {
        outln!("         kernel device limits: {props}");
    }
    let cuda = devices::cuda_devices();
    if !cfg!(feature = "cuda") {
        outln!("cuda     not built (cargo build --release --features cuda)");
    } else if cuda.is_empty() {
        outln!("cuda     built, but no CUDA driver or device found");
    }
    for d in &cuda {
        outln!("cuda     {}", d.label());
    }
    match devices::plan(BackendChoice::Auto, false) {
        Ok(p) => outln!(
            "auto     trains on {}, runs kernels on {}",
            p.train.name(),
            p.kernels
                .map(|k| k.name())
                .unwrap_or("nothing (kernel checks skipped)")
        ),
        Err(e) => outln!("auto     {e}"),
    }
}

/// Plane ops, shared memory, vector width and buffer limit of cubecl's default wgpu device.
fn wgpu_properties() -> Option<String> {
    use cubecl::Runtime;
    if devices::wgpu_adapters().is_empty() {
        return None;
    }
    std::panic::catch_unwind(|| {
        let client = cubecl::wgpu::WgpuRuntime::client(&Default::default());
        let p = client.properties();
        format!(
            "plane ops {}, shared memory {} KiB, max vector size {}, max units per cube {}, max buffer {} MiB",
            if p.features.plane.is_empty() { "no" } else { "yes" },
            p.hardware.max_shared_memory_size / 1024,
            p.hardware.max_vector_size,
            p.hardware.max_units_per_cube,
            p.memory.max_page_size / (1024 * 1024)
        )
    })
    .ok()
}

/// A fresh run at `scale` (of `only`, or everything) into `runs/<prefix>-<date>-<time>`, with
/// default backends, seeds and settings and the text from `corpus`: what `baseline` and `summary`
/// make when given no run.
fn fresh_run(
    reg: &Registry,
    prefix: &str,
    scale: Scale,
    only: Option<Vec<String>>,
    no_report: bool,
    corpus: CorpusArgs,
) -> Result<claimbench::run::RunResult> {
    let dir = PathBuf::from("runs").join(format!(
        "{prefix}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    claimbench::run::run(
        RunOptions {
            scale: Some(scale),
            only,
            backend: None,
            seeds: None,
            out: Some(dir),
            config: None,
            resume: None,
            force: false,
            corpus_root: corpus.corpus_root,
            no_report,
            quiet: false,
            plan_only: false,
            exec: Default::default(),
        },
        reg,
    )
}
