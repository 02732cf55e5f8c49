//! The `claimbench` command line. Exit codes: 0 ok, 1 performance regression, 2 correctness
//! failure or claim no longer reproduced, 3 inconclusive (with --fail-on-inconclusive), 4 input,
//! config or environment error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use claimbench::devices::{self, BackendChoice};
use claimbench::error::Exit;
use claimbench::run::{RunOptions, run};
use claimbench::suites::{self, Scale};

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
    /// Finish an interrupted run: only units not finished in DIR run again.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// With --resume: continue even if the commit, configuration or backends differ.
    #[arg(long, requires = "resume")]
    force: bool,
    /// Do not render the report.
    #[arg(long)]
    no_report: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl RunArgs {
    fn options(self) -> RunOptions {
        RunOptions {
            scale: self.scale,
            only: self.only,
            backend: self.backend,
            seeds: self.seeds,
            out: self.out,
            resume: self.resume,
            force: self.force,
            no_report: self.no_report,
            quiet: self.quiet,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run everything registered (or --only some ids), store the results, render the report.
    Run(RunArgs),
    /// Run only the benchmarks (correctness-checked first), store them, render the report.
    Bench(RunArgs),
    /// Render the static HTML report of a run directory into DIR/report/.
    Report {
        /// The run directory.
        dir: PathBuf,
    },
    /// List the backends and devices found.
    Devices,
    /// List the ids `--only` accepts.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(exit) => exit.code(),
        Err(err) => {
            // Every error that stops a command before its verdicts is an environment, input or
            // config problem (contracts.md: exit 4); unit failures are outcomes, not errors.
            eprintln!("error: {err:#}");
            Exit::Input.code()
        }
    }
}

fn dispatch(cmd: Command) -> Result<Exit> {
    match cmd {
        Command::Run(args) => finish_run(args.options()),
        Command::Bench(args) => {
            let mut opts = args.options();
            let bench_ids: Vec<String> = suites::all_units(&[0])
                .into_iter()
                .filter(|u| u.job == suites::Job::TokenLogprobBench)
                .map(|u| u.id)
                .collect();
            let selected = match opts.only.take() {
                None => bench_ids,
                Some(only) => {
                    let chosen = suites::select(suites::all_units(&[0]), &only)?;
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
            finish_run(opts)
        }
        Command::Report { dir } => {
            let index = claimbench::report::render(&dir)?;
            println!("{}", index.display());
            Ok(Exit::Ok)
        }
        Command::Devices => {
            print_devices();
            Ok(Exit::Ok)
        }
        Command::List => {
            let units = suites::all_units(&(0..Scale::Small.default_seeds()).collect::<Vec<_>>());
            println!("papers (a paper id also selects the kernels it uses):");
            for (p, kernels) in suites::PAPERS {
                println!(
                    "  {p:<12} kernels: {}",
                    if kernels.is_empty() {
                        "none registered yet".to_string()
                    } else {
                        kernels.join(", ")
                    }
                );
            }
            println!("units:");
            for u in units {
                println!(
                    "  {:<44} {}{}",
                    u.id,
                    u.experiment,
                    if u.needs_device {
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

fn finish_run(opts: RunOptions) -> Result<Exit> {
    let result = run(opts)?;
    println!("run directory: {}", result.dir.display());
    if let Some(report) = &result.report {
        println!("report: {}", report.display());
    }
    if result.exit != Exit::Ok {
        eprintln!(
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
    println!("flex     {}", devices::flex_device().label());
    let adapters = devices::wgpu_adapters();
    if adapters.is_empty() {
        println!("wgpu     none found: {}", devices::DEVICE_HINT);
    }
    for a in &adapters {
        println!("wgpu     {}", a.label());
    }
    if let Some(props) = wgpu_properties() {
        println!("         kernel device limits: {props}");
    }
    let cuda = devices::cuda_devices();
    if !cfg!(feature = "cuda") {
        println!("cuda     not built (cargo build --release --features cuda)");
    } else if cuda.is_empty() {
        println!("cuda     built, but no CUDA driver or device found");
    }
    for d in &cuda {
        println!("cuda     {}", d.label());
    }
    match devices::plan(BackendChoice::Auto, false) {
        Ok(p) => println!(
            "auto     trains on {}, runs kernels on {}",
            p.train.name(),
            p.kernels
                .map(|k| k.name())
                .unwrap_or("nothing (kernel checks skipped)")
        ),
        Err(e) => println!("auto     {e}"),
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
