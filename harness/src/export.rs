//! `claimbench export RUN --format F [--out FILE]`: a run's benchmark results in the formats the
//! CI dashboards users already have read. The run directory may be a downloaded CI artifact: it
//! is read with the store's checked readers and every number is checked before it is written.
//!
//! # What is exported
//! One *benchmark* per entry of the run's `benchmarks.json` (of its unit records without one, as
//! `compare` reads them), named
//! `<kernel>/<impl>/<shape joined by x>/<dtype>/<backend>` ([`benchmark_name`]), e.g.
//! `kernels/token-logprob/fused-forward/1024x32000/f32/wgpu`. The name leaves out the device (a
//! dashboard's testbed or machine) and the headline baseline (the fastest of the baselines timed,
//! which may change from run to run); both travel with every value (`extra`, the table's
//! columns). Two entries with one name are an input error.
//!
//! Each benchmark is seen through these [`Measure`]s, every value with a 95% interval:
//! - `latency`, ns, smaller is better: the median of our per-round times, with the percentile
//!   bootstrap interval of that median ([`latency_ms`]);
//! - `speedup`, x, bigger is better: the stored median paired speedup over the headline baseline
//!   (`BenchEntry::speedup`) with its stored bootstrap interval (`speedup_ci`);
//! - `bandwidth`, GB/s, bigger is better, when the entry states its `bytes`: bytes / latency, the
//!   interval from the latency's;
//! - `pct-of-floor`, %, bigger is better, when the run measured its device's floor: the stored
//!   `pct_of_floor`, the interval from the latency's (the share scales as 1 / time).
//!
//! # Formats ([`Format`]); all carry the same benchmarks and numbers
//! - `bmf` (`bmf.json`): Bencher Metric Format, <https://bencher.dev/docs/reference/bencher-metric-format/>:
//!   `{ "<benchmark>": { "<measure>": { "value", "lower_value", "upper_value" } } }`. `latency` is
//!   Bencher's built-in Latency measure (ns); Bencher creates the other slugs on first upload
//!   (<https://bencher.dev/docs/how-to/track-custom-benchmarks/>). Upload with
//!   `bencher run --adapter json --file bmf.json`. Schema: `benches/schemas/bmf.schema.json`.
//! - `gh-benchmark` (`gh-benchmark.json`) and `gh-benchmark-bigger` (`gh-benchmark-bigger.json`):
//!   github-action-benchmark's custom format,
//!   <https://github.com/benchmark-action/github-action-benchmark#examples>: an array of
//!   `{ "name", "unit", "value", "range"?, "extra"? }`. The action's `tool` setting, not the file,
//!   says which direction is better, so `gh-benchmark` holds the smaller-is-better measure
//!   (`latency`, in ms here: `tool: customSmallerIsBetter`) and `gh-benchmark-bigger` the others
//!   (`tool: customBiggerIsBetter`). Names are `<benchmark>/<measure>`; `range` is `± h`, h the
//!   larger distance from the value to an end of its interval (the `± <spread>` form the action's
//!   own extractors write); `extra` states the interval, rounds, baseline, device and run.
//!   Schema, from that README (the project publishes none): `benches/schemas/gh-benchmark.schema.json`.
//! - `csv` (`export.csv`) and `parquet` (`export.parquet`): one row per (benchmark, measure):
//!   `run_id, git_sha, benchmark, kernel, implementation, baseline, backend, device, dtype, shape,
//!   measure, unit, value, lower, upper, smaller_is_better`, the BMF numbers (latency in ns),
//!   written with polars as the store writes `metrics.csv` and `metrics.parquet`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use claimbench_claims::regression::ratio_of_medians_ci;
use claimbench_claims::stats::{DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES};
use claimbench_paper::bench::BenchEntry;
use polars::prelude::{CsvWriter, DataFrame, ParquetWriter, PolarsResult, SerWriter, df};
use serde::Serialize;

use crate::error::input_error;
use crate::ids::shown;
use crate::store::{RunDir, write_atomic};

/// What `claimbench export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Bencher Metric Format JSON (`bencher run --adapter json`).
    Bmf,
    /// github-action-benchmark JSON, smaller is better: latency, ms (`customSmallerIsBetter`).
    GhBenchmark,
    /// github-action-benchmark JSON, bigger is better: speedup, bandwidth, % of floor
    /// (`customBiggerIsBetter`).
    GhBenchmarkBigger,
    /// One row per (benchmark, measure), CSV.
    Csv,
    /// One row per (benchmark, measure), Parquet.
    Parquet,
}

impl Format {
    /// The file it is written to under `RUN/export/` by default.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Bmf => "bmf.json",
            Format::GhBenchmark => "gh-benchmark.json",
            Format::GhBenchmarkBigger => "gh-benchmark-bigger.json",
            Format::Csv => "export.csv",
            Format::Parquet => "export.parquet",
        }
    }
}

/// A measure of a benchmark (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// Median time, ns.
    Latency,
    /// Median paired speedup over the headline baseline.
    Speedup,
    /// Bytes moved / median time, GB/s.
    Bandwidth,
    /// Share of the device's measured floor, %.
    PctOfFloor,
}

impl Measure {
    /// The BMF measure slug (also the `measure` column and the end of a gh-benchmark name) and
    /// the unit of its values.
    pub fn slug_unit(self) -> (&'static str, &'static str) {
        match self {
            Measure::Latency => ("latency", "ns"),
            Measure::Speedup => ("speedup", "x"),
            Measure::Bandwidth => ("bandwidth", "GB/s"),
            Measure::PctOfFloor => ("pct-of-floor", "%"),
        }
    }

    /// Whether a smaller value is better.
    pub fn smaller_is_better(self) -> bool {
        self == Measure::Latency
    }
}

/// One value of a benchmark: the point estimate and its 95% interval. Serialises as a BMF metric
/// (`value`, `lower_value`, `upper_value`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Value {
    /// Which measure.
    #[serde(skip)]
    pub measure: Measure,
    /// Point estimate, in the measure's unit ([`Measure::slug_unit`]).
    pub value: f64,
    /// Lower end of the 95% interval.
    #[serde(rename = "lower_value")]
    pub lower: f64,
    /// Upper end.
    #[serde(rename = "upper_value")]
    pub upper: f64,
}

/// One exported benchmark.
#[derive(Clone, Debug)]
pub struct Benchmark {
    /// [`benchmark_name`].
    pub name: String,
    /// The run's entry.
    pub entry: BenchEntry,
    /// Its values, in [`Measure`] order.
    pub values: Vec<Value>,
}

/// What a run exports.
#[derive(Clone, Debug)]
pub struct Export {
    /// The run's id.
    pub run_id: String,
    /// Its commit.
    pub git_sha: String,
    /// Benchmarks, by name.
    pub benchmarks: Vec<Benchmark>,
}

/// Longest benchmark name Bencher accepts, bytes.
pub const MAX_NAME: usize = 1024;

/// `<kernel>/<impl>/<shape joined by x>/<dtype>/<backend>`.
pub fn benchmark_name(e: &BenchEntry) -> String {
    let shape: Vec<String> = e.shape.iter().map(usize::to_string).collect();
    format!(
        "{}/{}/{}/{}/{}",
        e.kernel,
        e.implementation,
        shape.join("x"),
        e.dtype,
        e.backend
    )
}

/// The median of `ours_ms` and the 95% percentile bootstrap interval of that median, ms:
/// [`ratio_of_medians_ci`] against a base of one 1 ms sample, whose resampled median is always 1,
/// so each resampled ratio is a resampled median of `ours_ms` ([`DEFAULT_RESAMPLES`] resamples,
/// seeded with [`DEFAULT_BOOTSTRAP_SEED`]: deterministic). Errors on empty, non-finite or
/// non-positive times.
pub fn latency_ms(ours_ms: &[f64]) -> Result<(f64, [f64; 2]), claimbench_claims::ClaimError> {
    ratio_of_medians_ci(
        &[1.0],
        ours_ms,
        0.95,
        DEFAULT_RESAMPLES,
        DEFAULT_BOOTSTRAP_SEED,
    )
}

/// The values of one entry, or why it cannot be exported.
fn values(e: &BenchEntry) -> std::result::Result<Vec<Value>, String> {
    let (ms, [lo_ms, hi_ms]) = latency_ms(&e.ours_ms).map_err(|err| format!("ours_ms: {err}"))?;
    let [s_lo, s_hi] = e.speedup_ci;
    if [e.speedup, s_lo, s_hi]
        .iter()
        .any(|x| !x.is_finite() || *x <= 0.0)
    {
        return Err("its speedup or speedup_ci is not a positive number".into());
    }
    let v = |measure, value, lower, upper| Value {
        measure,
        value,
        lower,
        upper,
    };
    let mut out = vec![
        v(Measure::Latency, ms * 1e6, lo_ms * 1e6, hi_ms * 1e6),
        v(Measure::Speedup, e.speedup, s_lo, s_hi),
    ];
    if e.bytes > 0 {
        // bytes / (t ms · 1e-3 s/ms) / 1e9 B/GB
        let gbps = |t: f64| e.bytes as f64 / t / 1e6;
        out.push(v(Measure::Bandwidth, gbps(ms), gbps(hi_ms), gbps(lo_ms)));
    }
    if let Some(p) = e.pct_of_floor {
        if !p.is_finite() || p < 0.0 {
            return Err("its pct_of_floor is not a number >= 0".into());
        }
        let at = |t: f64| p * ms / t;
        out.push(v(Measure::PctOfFloor, p, at(hi_ms), at(lo_ms)));
    }
    Ok(out)
}

/// Reads the run at `run` (checked: manifest, every unit record, `benchmarks.json`) and its
/// benchmarks' values. A run without benchmarks, an entry with bad numbers or text, or two
/// entries with one name is an input error naming the file.
pub fn collect(run: &Path) -> Result<Export> {
    let (dir, manifest) = RunDir::open(run)?;
    let units = dir.read_units()?;
    let source = if run.join("benchmarks.json").exists() {
        run.join("benchmarks.json")
    } else {
        run.join("units")
    };
    let entries = dir.benchmark_entries(&units)?;
    if entries.is_empty() {
        return Err(input_error(format!(
            "{}: the run has no benchmark results to export (`claimbench bench` makes them)",
            run.display()
        )));
    }
    let mut by_name: BTreeMap<String, Benchmark> = BTreeMap::new();
    for entry in entries {
        let name = benchmark_name(&entry);
        let fields = [&entry.implementation, &entry.dtype, &entry.backend];
        if name.len() > MAX_NAME
            || fields
                .iter()
                .any(|f| f.is_empty() || f.chars().any(char::is_control))
        {
            return Err(input_error(format!(
                "{}: benchmark {}: its name is over {MAX_NAME} bytes, or its impl, dtype or backend is empty or holds control characters",
                source.display(),
                shown(&name)
            )));
        }
        let values = values(&entry).map_err(|why| {
            input_error(format!(
                "{}: benchmark {}: {why}",
                source.display(),
                shown(&name)
            ))
        })?;
        if by_name.contains_key(&name) {
            return Err(input_error(format!(
                "{}: two benchmarks are named {} (kernel, impl, shape, dtype and backend must differ)",
                source.display(),
                shown(&name)
            )));
        }
        by_name.insert(
            name.clone(),
            Benchmark {
                name,
                entry,
                values,
            },
        );
    }
    Ok(Export {
        run_id: manifest.run_id,
        git_sha: manifest.git_sha,
        benchmarks: by_name.into_values().collect(),
    })
}

/// The BMF document: benchmark name → measure slug → metric.
pub fn bmf(x: &Export) -> BTreeMap<&str, BTreeMap<&'static str, &Value>> {
    let mut out = BTreeMap::new();
    for b in &x.benchmarks {
        let measures = b.values.iter().map(|v| (v.measure.slug_unit().0, v));
        out.insert(b.name.as_str(), measures.collect());
    }
    out
}

/// One entry of github-action-benchmark's custom JSON.
#[derive(Clone, Debug, Serialize)]
pub struct GhEntry {
    /// `<benchmark>/<measure>`.
    pub name: String,
    /// Unit (`ms` for latency).
    pub unit: String,
    /// Point estimate.
    pub value: f64,
    /// `± h`.
    pub range: String,
    /// Interval, rounds, baseline, device and run, one per line.
    pub extra: String,
}

/// `x` to 4 significant digits.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// The smaller-is-better entries (`bigger == false`: latency, ms) or the bigger-is-better ones.
pub fn gh_benchmark(x: &Export, bigger: bool) -> Vec<GhEntry> {
    let mut out = Vec::new();
    for b in &x.benchmarks {
        for v in b
            .values
            .iter()
            .filter(|v| v.measure.smaller_is_better() != bigger)
        {
            // Latency in ms: readable on the action's charts.
            let (scale, unit) = match v.measure {
                Measure::Latency => (1e-6, "ms"),
                m => (1.0, m.slug_unit().1),
            };
            let (value, lo, hi) = (v.value * scale, v.lower * scale, v.upper * scale);
            let e = &b.entry;
            out.push(GhEntry {
                name: format!("{}/{}", b.name, v.measure.slug_unit().0),
                unit: unit.into(),
                value,
                range: format!("± {}", sig((value - lo).max(hi - value))),
                extra: format!(
                    "95% CI: [{}, {}] {unit}\nrounds: {}\nbaseline: {}\ndevice: {}\nrun: {} at {}",
                    sig(lo),
                    sig(hi),
                    e.ours_ms.len(),
                    e.baseline,
                    e.device,
                    x.run_id,
                    x.git_sha
                ),
            });
        }
    }
    out
}

/// The `csv` / `parquet` table (columns in the module docs), one row per (benchmark, measure).
pub fn frame(x: &Export) -> PolarsResult<DataFrame> {
    let rows: Vec<(&Benchmark, &Value)> = x
        .benchmarks
        .iter()
        .flat_map(|b| b.values.iter().map(move |v| (b, v)))
        .collect();
    let s = |f: &dyn Fn(&Benchmark, &Value) -> String| {
        rows.iter().map(|(b, v)| f(b, v)).collect::<Vec<String>>()
    };
    let n = |f: &dyn Fn(&Value) -> f64| rows.iter().map(|(_, v)| f(v)).collect::<Vec<f64>>();
    let smaller: Vec<bool> = rows
        .iter()
        .map(|(_, v)| v.measure.smaller_is_better())
        .collect();
    df!(
        "run_id" => s(&|_, _| x.run_id.clone()),
        "git_sha" => s(&|_, _| x.git_sha.clone()),
        "benchmark" => s(&|b, _| b.name.clone()),
        "kernel" => s(&|b, _| b.entry.kernel.clone()),
        "implementation" => s(&|b, _| b.entry.implementation.clone()),
        "baseline" => s(&|b, _| b.entry.baseline.clone()),
        "backend" => s(&|b, _| b.entry.backend.clone()),
        "device" => s(&|b, _| b.entry.device.clone()),
        "dtype" => s(&|b, _| b.entry.dtype.clone()),
        "shape" => s(&|b, _| format!("{:?}", b.entry.shape)),
        "measure" => s(&|_, v| v.measure.slug_unit().0.into()),
        "unit" => s(&|_, v| v.measure.slug_unit().1.into()),
        "value" => n(&|v| v.value),
        "lower" => n(&|v| v.lower),
        "upper" => n(&|v| v.upper),
        "smaller_is_better" => smaller,
    )
}

/// Pretty JSON and a final newline.
fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serialising the export")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The bytes of `x` in `format`.
pub fn render(x: &Export, format: Format) -> Result<Vec<u8>> {
    match format {
        Format::Bmf => json(&bmf(x)),
        Format::GhBenchmark => json(&gh_benchmark(x, false)),
        Format::GhBenchmarkBigger => json(&gh_benchmark(x, true)),
        Format::Csv | Format::Parquet => {
            let mut df = frame(x).context("building the export table")?;
            let mut buf = Vec::new();
            if format == Format::Csv {
                CsvWriter::new(&mut buf)
                    .finish(&mut df)
                    .context("writing the CSV export")?;
            } else {
                ParquetWriter::new(&mut buf)
                    .finish(&mut df)
                    .context("writing the Parquet export")?;
            }
            Ok(buf)
        }
    }
}

/// Exports the run at `run` in `format` to `out` (default `RUN/export/<Format::file_name>`),
/// atomically, creating the folder; returns the path written. An `export` folder of the run that
/// is a symbolic link is refused: a downloaded run must not choose where the file goes.
pub fn export(run: &Path, format: Format, out: Option<&Path>) -> Result<PathBuf> {
    let x = collect(run)?;
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => {
            let folder = run.join("export");
            if std::fs::symlink_metadata(&folder).is_ok_and(|m| !m.is_dir()) {
                return Err(input_error(format!(
                    "{} is a link or a file, not a folder: pass --out FILE",
                    folder.display()
                )));
            }
            folder.join(format.file_name())
        }
    };
    let bytes = render(&x, format)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| input_error(format!("cannot create {}: {e}", parent.display())))?;
    }
    write_atomic(&path, &bytes)?;
    Ok(path)
}
