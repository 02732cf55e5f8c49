//! `claimbench compare BASE HEAD` and `claimbench baseline RUN`: benchmark series and claims of
//! two runs, judged with statistics that hold up under noise.
//!
//! A *series* is one benchmark comparison (kernel × impl × baseline × backend × device × dtype ×
//! shape) seen through one *measure*:
//! - `time`: our per-round times, ms (absolute: only comparable on the same machine);
//! - `relative`: per paired round, our time / the baseline's time in the same round. The
//!   baseline runs interleaved with ours on the same device, so machine speed and load largely
//!   cancel: this is the measure CI gates on against a baseline recorded elsewhere.
//!
//! Across two runs the samples are independent: each series gets the ratio of medians
//! (head / base) with a bootstrap CI, a Mann–Whitney U test, and a four-way verdict against a
//! minimum effect; Benjamini–Hochberg controls the false-discovery rate across all series of one
//! comparison (`claimbench_claims::regression`). Correctness comes first: a head unit that failed
//! its reference check is a correctness failure (exit 2), and a throughput above the device's
//! measured peak is flagged as suspect instead of being counted as an improvement.
//!
//! Invariant: comparing a run with itself gives `no-change` on every series and exit 0.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use claimbench_claims::Verdict;
use claimbench_claims::regression::{Change, CompareConfig, SeriesComparison, compare_all};
use serde::{Deserialize, Serialize};

mod render;
pub use render::{junit, markdown, summary, table, text, write_outputs};

use crate::error::{Exit, input_error};
use crate::peaks::Peaks;
use crate::store::{Manifest, RunDir, UnitStatus, read_json, write_atomic, write_json};
use claimbench_paper::bench::BenchEntry;

/// Layout version of a baseline file.
pub const BASELINE_SCHEMA: u32 = 1;
/// The `kind` field that marks a baseline file.
pub const BASELINE_KIND: &str = "claimbench-baseline";

/// What a measure of a benchmark entry is.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Our per-round time, ms.
    Time,
    /// Our time / the baseline's time, per paired round.
    Relative,
}

impl Measure {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Time => "time",
            Measure::Relative => "relative",
        }
    }
}

/// The identity of a series: one benchmark comparison seen through one measure.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Kernel id.
    pub kernel: String,
    /// Our implementation.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// The baseline it was paired with.
    pub baseline: String,
    /// Backend.
    pub backend: String,
    /// Device name.
    pub device: String,
    /// Element type.
    pub dtype: String,
    /// Problem shape.
    pub shape: Vec<usize>,
    /// `time` or `relative`.
    pub measure: Measure,
}

impl SeriesKey {
    /// A one-line name, e.g. `kernels/token-logprob fused-forward/log_softmax+gather wgpu f32 [1024, 32000] relative`.
    pub fn label(&self) -> String {
        format!(
            "{} {}/{} {} {} {:?} {}",
            self.kernel,
            self.implementation,
            self.baseline,
            self.backend,
            self.dtype,
            self.shape,
            self.measure.name()
        )
    }

    /// The same key with another device (to match series across devices under `--force`).
    fn without_device(&self) -> SeriesKey {
        SeriesKey {
            device: String::new(),
            ..self.clone()
        }
    }
}

/// The series of one benchmark entry, for each measure.
pub fn entry_series(e: &BenchEntry) -> Vec<(SeriesKey, Vec<f64>)> {
    let key = |measure| SeriesKey {
        kernel: e.kernel.clone(),
        implementation: e.implementation.clone(),
        baseline: e.baseline.clone(),
        backend: e.backend.clone(),
        device: e.device.clone(),
        dtype: e.dtype.clone(),
        shape: e.shape.clone(),
        measure,
    };
    let relative = e
        .ours_ms
        .iter()
        .zip(&e.baseline_ms)
        .map(|(o, b)| o / b)
        .collect();
    vec![
        (key(Measure::Time), e.ours_ms.clone()),
        (key(Measure::Relative), relative),
    ]
}

/// The environment facts two runs must share to be compared, from the manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvSummary {
    /// Commit.
    pub git_sha: String,
    /// Uncommitted changes.
    pub git_dirty: bool,
    /// Kernel backend (`wgpu`, `cuda`), empty without one.
    pub backend: String,
    /// Kernel device name.
    pub device: String,
    /// Device driver.
    pub driver: String,
    /// CPU model.
    pub cpu: String,
    /// OS.
    pub os: String,
    /// rustc.
    pub rustc: String,
    /// Cargo features.
    pub features: Vec<String>,
    /// Crate versions.
    pub crate_versions: Vec<(String, String)>,
    /// Scale.
    pub scale: String,
}

impl EnvSummary {
    /// The summary of a manifest.
    pub fn of(m: &Manifest) -> Self {
        let dev = m.plan.kernel_device.as_ref();
        EnvSummary {
            git_sha: m.git_sha.clone(),
            git_dirty: m.git_dirty,
            backend: m
                .plan
                .kernels
                .map(|k| k.name().to_string())
                .unwrap_or_default(),
            device: dev.map(|d| d.name.clone()).unwrap_or_default(),
            driver: dev.map(|d| d.driver.clone()).unwrap_or_default(),
            cpu: m.cpu.clone(),
            os: m.os.clone(),
            rustc: m.rustc.clone(),
            features: m.features.clone(),
            crate_versions: m.crate_versions.clone(),
            scale: m.scale.to_string(),
        }
    }
}

/// A claim's verdict in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimBrief {
    /// Claim id.
    pub id: String,
    /// Paper id.
    pub paper: String,
    /// Verdict.
    pub verdict: Verdict,
}

/// One stored series of a baseline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineSeries {
    /// Identity.
    pub key: SeriesKey,
    /// Smallest relative change that counts for this series.
    pub min_effect: f64,
    /// Samples (4 significant digits).
    pub samples: Vec<f64>,
}

/// A compact baseline: what `compare` needs of a run, in one small file kept in the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`BASELINE_SCHEMA`].
    pub schema_version: u32,
    /// [`BASELINE_KIND`].
    pub kind: String,
    /// Run id it was made from.
    pub run_id: String,
    /// How to refresh it.
    pub refresh: String,
    /// Environment of that run.
    pub env: EnvSummary,
    /// Measured peaks of its device.
    #[serde(default)]
    pub peaks: Option<Peaks>,
    /// Series.
    pub series: Vec<BaselineSeries>,
    /// Claims and their verdicts.
    pub claims: Vec<ClaimBrief>,
}

/// Everything `compare` reads of one side.
#[derive(Clone, Debug)]
pub struct RunView {
    /// Run id or file name.
    pub label: String,
    /// Environment.
    pub env: EnvSummary,
    /// Measured peaks, when probed.
    pub peaks: Option<Peaks>,
    /// Series and their samples.
    pub series: BTreeMap<SeriesKey, Vec<f64>>,
    /// Per-series minimum effect, when the side is a baseline that sets one.
    pub min_effects: BTreeMap<SeriesKey, f64>,
    /// Benchmark entries (for throughputs), by the key of their `time` series.
    pub entries: BTreeMap<SeriesKey, BenchEntry>,
    /// Claims.
    pub claims: Vec<ClaimBrief>,
    /// Units that failed their reference check: (unit id, message).
    pub correctness_failures: Vec<(String, String)>,
    /// Units that stopped with an error: (unit id, message).
    pub errors: Vec<(String, String)>,
    /// Notes on the side (e.g. an unfinished run).
    pub notes: Vec<String>,
}

fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * p).round() / p
}

/// Loads one side: a run directory, or a baseline file written by [`write_baseline`]. A missing,
/// malformed or truncated file is an input error (exit 4) naming it.
pub fn load(path: &Path) -> Result<RunView> {
    if path.is_file() {
        let b: Baseline = read_json(path)?;
        if b.kind != BASELINE_KIND || b.schema_version != BASELINE_SCHEMA {
            return Err(input_error(format!(
                "{} is not a claimbench baseline (kind {:?}, schema {}): expected kind {BASELINE_KIND:?}, schema {BASELINE_SCHEMA}",
                path.display(),
                b.kind,
                b.schema_version
            )));
        }
        let mut series = BTreeMap::new();
        let mut min_effects = BTreeMap::new();
        for c in &b.claims {
            crate::ids::check(path, "claim id", &c.id)?;
            crate::store::check_paper_id(path, &c.paper)?;
        }
        for s in b.series {
            crate::store::check_kernel_id(path, &s.key.kernel)?;
            if s.samples.iter().any(|v| !v.is_finite()) {
                return Err(input_error(format!(
                    "{}: series {} holds a non-finite sample",
                    path.display(),
                    s.key.label()
                )));
            }
            min_effects.insert(s.key.clone(), s.min_effect);
            series.insert(s.key, s.samples);
        }
        return Ok(RunView {
            label: format!("baseline {} (run {})", path.display(), b.run_id),
            env: b.env,
            peaks: b.peaks,
            series,
            min_effects,
            entries: BTreeMap::new(),
            claims: b.claims,
            correctness_failures: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        });
    }
    let (run, manifest) = RunDir::open(path)?;
    let units = run.read_units()?;
    let mut notes = Vec::new();
    if manifest.finished.is_none() {
        notes.push(format!(
            "run {} did not finish: only its finished units are compared",
            manifest.run_id
        ));
    }
    let bench_path = path.join("benchmarks.json");
    let benches: Vec<BenchEntry> = run.benchmark_entries(&units)?;
    let mut series = BTreeMap::new();
    let mut entries = BTreeMap::new();
    for e in &benches {
        if e.ours_ms.len() != e.baseline_ms.len() {
            return Err(input_error(format!(
                "{}: benchmark {} has {} ours_ms but {} baseline_ms samples (paired rounds must match)",
                bench_path.display(),
                e.kernel,
                e.ours_ms.len(),
                e.baseline_ms.len()
            )));
        }
        for (key, samples) in entry_series(e) {
            if samples.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(input_error(format!(
                    "{}: series {} holds a negative or non-finite sample",
                    bench_path.display(),
                    key.label()
                )));
            }
            if key.measure == Measure::Time {
                entries.insert(key.clone(), e.clone());
            }
            if series.insert(key.clone(), samples).is_some() {
                return Err(input_error(format!(
                    "{}: series {} appears twice",
                    bench_path.display(),
                    key.label()
                )));
            }
        }
    }
    let claims = if let Some(file) = run.read_claims()? {
        file.claims
            .into_iter()
            .map(|c| ClaimBrief {
                id: c.id,
                paper: c.paper,
                verdict: c.verdict,
            })
            .collect()
    } else {
        Vec::new()
    };
    let pick = |s: UnitStatus| {
        units
            .iter()
            .filter(|u| u.status == s)
            .map(|u| (u.unit_id.clone(), u.message.clone()))
            .collect::<Vec<_>>()
    };
    Ok(RunView {
        label: format!("run {}", manifest.run_id),
        env: EnvSummary::of(&manifest),
        peaks: manifest.peaks.clone(),
        series,
        min_effects: BTreeMap::new(),
        entries,
        claims,
        correctness_failures: pick(UnitStatus::CorrectnessFailure),
        errors: pick(UnitStatus::Error),
        notes,
    })
}

/// Writes the compact baseline of the run in `run` to `out`: its series (4 significant digits),
/// claims, environment and peaks, each series with `min_effect`.
pub fn write_baseline(run: &Path, out: &Path, min_effect: f64, refresh: &str) -> Result<Baseline> {
    if !(0.0..1.0).contains(&min_effect) || min_effect == 0.0 {
        return Err(input_error(format!(
            "--min-effect {min_effect}: must lie in (0, 1), e.g. 0.05 for 5%"
        )));
    }
    let view = load(run)?;
    if !view.correctness_failures.is_empty() || !view.errors.is_empty() {
        return Err(input_error(format!(
            "{}: a baseline must come from a clean run, but {} unit(s) failed: {}",
            run.display(),
            view.correctness_failures.len() + view.errors.len(),
            view.correctness_failures
                .iter()
                .chain(&view.errors)
                .map(|(u, _)| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if view.series.is_empty() {
        return Err(input_error(format!(
            "{}: the run has no benchmark series to keep as a baseline",
            run.display()
        )));
    }
    let (_, manifest) = RunDir::open(run)?;
    let baseline = Baseline {
        schema_version: BASELINE_SCHEMA,
        kind: BASELINE_KIND.into(),
        run_id: manifest.run_id,
        refresh: refresh.into(),
        env: view.env,
        peaks: view.peaks,
        series: view
            .series
            .into_iter()
            .map(|(key, samples)| BaselineSeries {
                key,
                min_effect,
                samples: samples.into_iter().map(|v| round_sig(v, 4)).collect(),
            })
            .collect(),
        claims: view.claims,
    };
    write_json(out, &baseline)?;
    Ok(baseline)
}

/// A difference between the two environments.
#[derive(Clone, Debug, Serialize)]
pub struct EnvDiff {
    /// What differs.
    pub field: String,
    /// Base value.
    pub base: String,
    /// Head value.
    pub head: String,
    /// True when it makes the timings incomparable (another device or backend).
    pub blocking: bool,
}

/// The environment differences between two sides; blocking ones first.
pub fn env_diff(base: &EnvSummary, head: &EnvSummary) -> Vec<EnvDiff> {
    let mut out = Vec::new();
    let mut add = |field: &str, b: String, h: String, blocking: bool| {
        if b != h {
            out.push(EnvDiff {
                field: field.into(),
                base: b,
                head: h,
                blocking,
            });
        }
    };
    add(
        "kernel backend",
        base.backend.clone(),
        head.backend.clone(),
        true,
    );
    add(
        "kernel device",
        base.device.clone(),
        head.device.clone(),
        true,
    );
    add("driver", base.driver.clone(), head.driver.clone(), false);
    add("CPU", base.cpu.clone(), head.cpu.clone(), false);
    add("OS", base.os.clone(), head.os.clone(), false);
    add("rustc", base.rustc.clone(), head.rustc.clone(), false);
    add(
        "features",
        base.features.join(","),
        head.features.join(","),
        false,
    );
    let versions = |e: &EnvSummary| {
        e.crate_versions
            .iter()
            .map(|(c, v)| format!("{c} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    add("crate versions", versions(base), versions(head), false);
    add("scale", base.scale.clone(), head.scale.clone(), false);
    out
}

/// Settings of one `compare`.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Statistics settings (minimum effect, FDR level, bootstrap).
    pub stats: CompareConfig,
    /// Which measures to compare.
    pub measures: Vec<Measure>,
    /// Compare despite another device or backend (series matched without the device).
    pub force: bool,
    /// Series of the base that the head lacks are listed, not an error.
    pub allow_missing: bool,
    /// Inconclusive series make the exit 3.
    pub fail_on_inconclusive: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            stats: CompareConfig::default(),
            measures: vec![Measure::Time, Measure::Relative],
            force: false,
            allow_missing: false,
            fail_on_inconclusive: false,
        }
    }
}

/// One series in the result.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesRow {
    /// Identity (head's).
    pub key: SeriesKey,
    /// Statistics and verdict.
    pub stats: SeriesComparison,
    /// Why the head's throughput is suspect, if it is.
    pub suspect: Option<String>,
}

impl SeriesRow {
    /// The verdict word shown: a suspect improvement is `suspect`.
    pub fn verdict(&self) -> &'static str {
        match (self.stats.change, &self.suspect) {
            (Change::Improvement, Some(_)) => "suspect",
            (Change::Regression, _) => "regression",
            (Change::Improvement, None) => "improvement",
            (Change::NoChange, _) => "no change",
            (Change::Inconclusive, _) => "inconclusive",
        }
    }
}

/// A claim that was reproduced in the base and is not in the head, or changed verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimRow {
    /// Claim id.
    pub id: String,
    /// Base verdict (None: new claim).
    pub base: Option<Verdict>,
    /// Head verdict (None: missing in head).
    pub head: Option<Verdict>,
    /// Reproduced in base and not in head: a regression of the science.
    pub regression: bool,
}

/// The outcome of `compare`.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Base side label.
    pub base: String,
    /// Head side label.
    pub head: String,
    /// Environment differences.
    pub env: Vec<EnvDiff>,
    /// Compared series, sorted by verdict severity then key.
    pub series: Vec<SeriesRow>,
    /// Base series absent from the head.
    pub missing: Vec<SeriesKey>,
    /// Head series absent from the base.
    pub new: Vec<SeriesKey>,
    /// Claims whose verdict changed.
    pub claims: Vec<ClaimRow>,
    /// Head units that failed their reference check.
    pub correctness_failures: Vec<(String, String)>,
    /// Head units that stopped with an error.
    pub errors: Vec<(String, String)>,
    /// Notes (unfinished runs, forced comparisons).
    pub notes: Vec<String>,
    /// The false-discovery rate used.
    pub alpha: f64,
    /// Exit code.
    #[serde(skip)]
    pub exit: Exit,
}

impl Comparison {
    /// Number of series with this verdict word.
    pub fn count(&self, verdict: &str) -> usize {
        self.series
            .iter()
            .filter(|s| s.verdict() == verdict)
            .count()
    }
}

/// Compares `head` against `base`. Runs on another device or backend are an input error (exit 4)
/// unless `opts.force`; a base series missing from the head is one too unless
/// `opts.allow_missing`.
pub fn compare(base: &RunView, head: &RunView, opts: &CompareOptions) -> Result<Comparison> {
    let env = env_diff(&base.env, &head.env);
    let mut notes: Vec<String> = base.notes.iter().chain(&head.notes).cloned().collect();
    let blocking: Vec<&EnvDiff> = env.iter().filter(|d| d.blocking).collect();
    if !blocking.is_empty() {
        let what = blocking
            .iter()
            .map(|d| format!("{}: {:?} vs {:?}", d.field, d.base, d.head))
            .collect::<Vec<_>>()
            .join("; ");
        if !opts.force {
            return Err(input_error(format!(
                "{} and {} are not comparable: {what}. Timings from different devices say nothing about a code change; pass --force to compare anyway (series matched without the device)",
                base.label, head.label
            )));
        }
        notes.push(format!(
            "NOT COMPARABLE, compared because of --force: {what}"
        ));
    }
    let norm = |k: &SeriesKey| {
        if opts.force {
            k.without_device()
        } else {
            k.clone()
        }
    };
    let wanted = |k: &SeriesKey| opts.measures.contains(&k.measure);
    let base_series: BTreeMap<SeriesKey, (&SeriesKey, &Vec<f64>)> = base
        .series
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| (norm(k), (k, v)))
        .collect();
    let head_series: BTreeMap<SeriesKey, (&SeriesKey, &Vec<f64>)> = head
        .series
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| (norm(k), (k, v)))
        .collect();
    let missing: Vec<SeriesKey> = base_series
        .iter()
        .filter(|(k, _)| !head_series.contains_key(*k))
        .map(|(_, (k, _))| (*k).clone())
        .collect();
    let new: Vec<SeriesKey> = head_series
        .iter()
        .filter(|(k, _)| !base_series.contains_key(*k))
        .map(|(_, (k, _))| (*k).clone())
        .collect();
    if !missing.is_empty() && !opts.allow_missing {
        return Err(input_error(format!(
            "{} lacks {} series that {} has: {}. Did a benchmark fail or not run (check --only)? Pass --allow-missing to compare the rest, or refresh the baseline if the benchmark was removed",
            head.label,
            missing.len(),
            base.label,
            missing
                .iter()
                .map(SeriesKey::label)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }

    let pairs: Vec<(&SeriesKey, &Vec<f64>, &Vec<f64>, f64)> = head_series
        .iter()
        .filter_map(|(k, (hk, hv))| {
            base_series.get(k).map(|(bk, bv)| {
                let m = base
                    .min_effects
                    .get(*bk)
                    .copied()
                    .unwrap_or(opts.stats.min_effect);
                (*hk, *bv, *hv, m)
            })
        })
        .collect();
    let input: Vec<(&[f64], &[f64], f64)> = pairs
        .iter()
        .map(|(_, b, h, m)| (b.as_slice(), h.as_slice(), *m))
        .collect();
    let stats = compare_all(&input, &opts.stats)
        .map_err(|e| input_error(format!("comparing {} with {}: {e}", base.label, head.label)))?;
    let mut series: Vec<SeriesRow> = pairs
        .iter()
        .zip(stats)
        .map(|((key, _, _, _), stats)| {
            let suspect = suspect_of(head, key);
            SeriesRow {
                key: (*key).clone(),
                stats,
                suspect,
            }
        })
        .collect();
    let rank = |r: &SeriesRow| match r.verdict() {
        "regression" => 0,
        "suspect" => 1,
        "improvement" => 2,
        "inconclusive" => 3,
        _ => 4,
    };
    series.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.key.cmp(&b.key)));

    let claims = claim_rows(&base.claims, &head.claims);
    let mut exit = Exit::Ok;
    if series.iter().any(|s| s.verdict() == "regression") {
        exit = exit.combine(Exit::Regression);
    }
    if !head.correctness_failures.is_empty() || claims.iter().any(|c| c.regression) {
        exit = exit.combine(Exit::Correctness);
    }
    if opts.fail_on_inconclusive && series.iter().any(|s| s.verdict() == "inconclusive") {
        exit = exit.combine(Exit::Inconclusive);
    }
    if !head.errors.is_empty() {
        exit = exit.combine(Exit::Input);
    }
    Ok(Comparison {
        base: base.label.clone(),
        head: head.label.clone(),
        env,
        series,
        missing,
        new,
        claims,
        correctness_failures: head.correctness_failures.clone(),
        errors: head.errors.clone(),
        notes,
        alpha: opts.stats.alpha,
        exit,
    })
}

/// Why the head's measured throughput for a `time` series is suspect: above the measured peak.
fn suspect_of(head: &RunView, key: &SeriesKey) -> Option<String> {
    let peaks = head.peaks.as_ref()?;
    let time_key = SeriesKey {
        measure: Measure::Time,
        ..key.clone()
    };
    let e = head.entries.get(&time_key)?;
    peaks.suspect(e.bytes, e.flops, e.ours_median_ms())
}

fn claim_rows(base: &[ClaimBrief], head: &[ClaimBrief]) -> Vec<ClaimRow> {
    let b: BTreeMap<&str, Verdict> = base.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
    let h: BTreeMap<&str, Verdict> = head.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
    let ids: BTreeSet<&str> = b.keys().chain(h.keys()).copied().collect();
    ids.into_iter()
        .filter_map(|id| {
            let (bv, hv) = (b.get(id).copied(), h.get(id).copied());
            (bv != hv).then(|| ClaimRow {
                id: id.to_string(),
                base: bv,
                head: hv,
                regression: bv == Some(Verdict::Reproduced)
                    && hv.is_some_and(|v| v != Verdict::Reproduced),
            })
        })
        .collect()
}
