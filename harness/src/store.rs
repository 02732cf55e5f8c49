//! The run directory of contracts.md: `manifest.json`, `units/<unit>.json` (one per finished unit,
//! written atomically: the unit of resume), and the aggregates `metrics.parquet`, `metrics.csv`,
//! `benchmarks.json`, `claims.json`, all rebuilt from the units.
//!
//! Architecture invariant: every file is written to a temporary file in the same directory and
//! renamed into place, so a run killed at any instant leaves each file either absent or whole.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use claimbench_claims::ClaimsFile;
use polars::prelude::{CsvWriter, DataFrame, ParquetWriter, PolarsResult, SerWriter, df};
use serde::{Deserialize, Serialize};

use crate::devices::Plan;
use crate::error::input_error;
use crate::ids;
use crate::lock::RunLock;
use claimbench_paper::Scale;
use claimbench_paper::bench::BenchFile;
use serde_json::Value;
use std::collections::BTreeMap;

/// Version of the run-directory layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Most seeds one run takes (`--seeds`): the `full` scale uses 10; dora's tuning seeds
/// (1000, 1001) lie below it, so `--only continual --seeds 1001` is a valid run.
pub const MAX_SEEDS: u64 = 4096;

/// The papers' settings a run used, keyed by paper id (each paper's typed config as JSON; see
/// [`crate::configs`]).
pub type Configs = BTreeMap<String, Value>;

/// A run's scale as `manifest.json` stores it (the same strings as [`Scale`], plus
/// [`IMPORTED_SCALE`]): a reproduction scale, or criterion results brought in by
/// `import-criterion`. Anything else is refused when the manifest is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RunScale {
    /// A run of the reproductions and kernels at this scale.
    Run(Scale),
    /// Imported criterion results: no scale, no settings, no reproduction units.
    Imported,
}

impl RunScale {
    /// The name on disk.
    pub fn name(self) -> &'static str {
        match self {
            RunScale::Run(s) => s.name(),
            RunScale::Imported => IMPORTED_SCALE,
        }
    }
}

impl std::fmt::Display for RunScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<RunScale> for String {
    fn from(s: RunScale) -> String {
        s.name().into()
    }
}

impl TryFrom<String> for RunScale {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        if s == IMPORTED_SCALE {
            return Ok(RunScale::Imported);
        }
        s.parse::<Scale>()
            .map(RunScale::Run)
            .map_err(|e| format!("scale: {e} (or {IMPORTED_SCALE} for imported results)"))
    }
}

/// `manifest.json`: what produced a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub schema_version: u32,
    /// Run id (directory name by default).
    pub run_id: String,
    /// Git commit the binary ran from.
    pub git_sha: String,
    /// Uncommitted changes present.
    pub git_dirty: bool,
    /// sha256 of Cargo.lock.
    pub cargo_lock_sha256: String,
    /// rustc version.
    pub rustc: String,
    /// Versions of burn, cubecl, wgpu, polars, ...
    pub crate_versions: Vec<(String, String)>,
    /// Cargo features of the binary.
    pub features: Vec<String>,
    /// Which backend ran what, on which device.
    pub plan: Plan,
    /// CPU model.
    pub cpu: String,
    /// OS.
    pub os: String,
    /// `smoke`, `small` or `full`, or [`IMPORTED_SCALE`] for criterion results brought in by
    /// `import-criterion` (no reproduction units); anything else is refused when read.
    pub scale: RunScale,
    /// Seeds of the seeded units.
    pub seeds: Vec<u64>,
    /// `--only` filters.
    pub only: Vec<String>,
    /// sha256 of the run configuration (scale, seeds, only, backend choice, schema).
    pub config_hash: String,
    /// Unit ids the run selected, in order.
    pub units: Vec<String>,
    /// Units skipped, with the reason (not written as unit files, so a resume retries them).
    pub skipped: Vec<(String, String)>,
    /// RFC 3339 start time.
    pub started: String,
    /// RFC 3339 end time, once the run completed.
    pub finished: Option<String>,
    /// Measured peaks of the kernel device (absent without one, or in runs made before the probe).
    #[serde(default)]
    pub peaks: Option<crate::peaks::Peaks>,
    /// The reproductions' settings the run used (`None` in runs that train nothing, e.g.
    /// imported criterion results).
    #[serde(default)]
    pub configs: Option<Configs>,
    /// Placements other than burn's defaults that the selected papers and kernels declare, with
    /// why ([`Fallback`]); empty in runs made before they were recorded.
    #[serde(default)]
    pub fallbacks: Vec<Fallback>,
    /// The burn/cubecl features and backend settings the binary was built with (absent in runs
    /// made before they were recorded).
    #[serde(default)]
    pub build: Option<crate::env::BuildInfo>,
    /// `--corpus-root`: the folder the corpus-backed papers read their text from; `None` when
    /// it came from Debian's installed packages (and in runs made before it was recorded).
    #[serde(default)]
    pub corpus_root: Option<String>,
    /// The text the selected corpus-backed papers read, one card per domain, text and tokenizer
    /// ([`DataCard`]; `used_by` names the papers); empty in runs without such a paper and in runs
    /// made before cards were recorded.
    #[serde(default)]
    pub data_cards: Vec<DataCard>,
    /// How the units were executed (absent in runs made before it was recorded, and in
    /// imported criterion results).
    #[serde(default)]
    pub executor: Option<ExecutorInfo>,
}

/// At most this many entries in each list of a manifest's `build` and `peaks`.
pub const MAX_LISTED: usize = 64;
/// At most this many fallbacks in a manifest, each text at most [`MAX_FALLBACK_TEXT`] bytes.
pub const MAX_FALLBACKS: usize = 64;
/// See [`MAX_FALLBACKS`].
pub const MAX_FALLBACK_TEXT: usize = 1000;

/// At most this many data cards in a manifest.
pub const MAX_DATA_CARDS: usize = 64;
/// Longest `corpus_root` a manifest may hold, bytes.
pub const MAX_CORPUS_ROOT: usize = 4096;

pub use claimbench_paper::{DataCard, Fallback};

/// Checks data cards before they are stored or shown: at most [`MAX_DATA_CARDS`], each one
/// valid ([`DataCard::validate`]) with its domain and every `used_by` entry one segment of the
/// id grammar ([`crate::ids`]). The error names the card and the field.
pub fn check_data_cards(cards: &[DataCard]) -> std::result::Result<(), String> {
    if cards.len() > MAX_DATA_CARDS {
        return Err(format!(
            "{} data cards are more than a run holds (at most {MAX_DATA_CARDS})",
            cards.len()
        ));
    }
    let segment = |s: &str| -> std::result::Result<(), String> {
        ids::validate(s).map_err(|e| e.to_string())?;
        match s.contains('/') {
            true => Err("it has a '/' (one id segment expected)".into()),
            false => Ok(()),
        }
    };
    cards.iter().try_for_each(|c| c.validate(segment))
}

/// What a finished unit stored, and its status (claimbench-paper: papers read them too).
pub use claimbench_paper::{UnitRecord, UnitStatus};

/// One long-format metric value (contracts.md `metrics.*` columns, minus those of the unit): the
/// one row type from a reproduction to the run store and back to the claims.
pub use claimbench_paper::MetricRow;

impl Manifest {
    /// The run's scale; `None` for criterion results brought in by `import-criterion`
    /// ([`IMPORTED_SCALE`]). A checked manifest holds nothing else.
    pub fn scale(&self) -> Option<Scale> {
        match self.scale {
            RunScale::Run(s) => Some(s),
            RunScale::Imported => None,
        }
    }

    /// Checks what of the manifest later becomes a path, an href or a selection: unit ids,
    /// `--only` ids and skipped ids against the id grammar ([`crate::ids`]), the run id and the
    /// seed count bounded. `path` is the file it was read from, for the message.
    pub fn check(&self, path: &Path) -> Result<()> {
        if self.run_id.is_empty()
            || self.run_id.len() > 200
            || self
                .run_id
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(input_error(format!(
                "{}: run_id {} is not a run id (1 to 200 characters, no '/' or control characters)",
                path.display(),
                ids::shown(&self.run_id)
            )));
        }
        if self.seeds.len() > MAX_SEEDS as usize || self.units.len() > MAX_UNITS {
            return Err(input_error(format!(
                "{}: {} seeds and {} units are more than a run holds (at most {} and {MAX_UNITS})",
                path.display(),
                self.seeds.len(),
                self.units.len(),
                MAX_SEEDS
            )));
        }
        for u in &self.units {
            ids::check(path, "units entry", u)?;
        }
        for o in &self.only {
            ids::check(path, "only entry", o)?;
        }
        for (u, _) in &self.skipped {
            ids::check(path, "skipped entry", u)?;
        }
        if self.fallbacks.len() > MAX_FALLBACKS {
            return Err(input_error(format!(
                "{}: {} fallbacks are more than a run holds (at most {MAX_FALLBACKS})",
                path.display(),
                self.fallbacks.len()
            )));
        }
        let mut texts: Vec<(&str, usize, Vec<&str>)> = Vec::new();
        if let Some(b) = &self.build {
            texts.push((
                "build.crates",
                b.crates.len(),
                b.crates
                    .iter()
                    .flat_map(|c| [c.name.as_str(), c.version.as_str()])
                    .collect(),
            ));
            for c in &b.crates {
                texts.push((
                    "build features",
                    c.features.len(),
                    c.features.iter().map(String::as_str).collect(),
                ));
            }
            texts.push((
                "build.settings",
                b.settings.len(),
                b.settings.iter().map(String::as_str).collect(),
            ));
            texts.push((
                "build.autotune_caches",
                b.autotune_caches.len(),
                b.autotune_caches.iter().map(String::as_str).collect(),
            ));
        }
        if let Some(p) = &self.peaks {
            texts.push((
                "peaks.probes",
                p.probes.len(),
                p.probes.iter().map(|x| x.what.as_str()).collect(),
            ));
            texts.push((
                "peaks",
                1,
                vec![p.method.as_str(), p.device.as_str(), p.backend.as_str()],
            ));
        }
        for (field, count, items) in texts {
            if count > MAX_LISTED
                || items
                    .iter()
                    .any(|t| t.len() > MAX_FALLBACK_TEXT || t.chars().any(char::is_control))
            {
                return Err(input_error(format!(
                    "{}: {field}: more than {MAX_LISTED} entries, or a text over {MAX_FALLBACK_TEXT} bytes or with control characters",
                    path.display()
                )));
            }
        }
        check_data_cards(&self.data_cards)
            .map_err(|e| input_error(format!("{}: {e}", path.display())))?;
        if let Some(root) = &self.corpus_root
            && (root.is_empty()
                || root.len() > MAX_CORPUS_ROOT
                || root.chars().any(char::is_control))
        {
            return Err(input_error(format!(
                "{}: corpus_root is empty, over {MAX_CORPUS_ROOT} bytes or holds control characters",
                path.display()
            )));
        }
        for f in &self.fallbacks {
            ids::check(path, "fallback id", &f.id)?;
            if [&f.what, &f.reason]
                .iter()
                .any(|t| t.len() > MAX_FALLBACK_TEXT || t.chars().any(char::is_control))
            {
                return Err(input_error(format!(
                    "{}: fallback {}: its text is over {MAX_FALLBACK_TEXT} bytes or holds control characters",
                    path.display(),
                    ids::shown(&f.id)
                )));
            }
        }
        Ok(())
    }
}

/// Checks the ids a unit record carries (its unit id, paper id and its benchmarks' kernel ids)
/// against the id grammar. `path` is the file it was read from, for the message.
pub fn check_record(r: &UnitRecord, path: &Path) -> Result<()> {
    ids::check(path, "unit_id", &r.unit_id)?;
    check_paper_id(path, &r.paper)?;
    if r.paper == "kernels" && ids::kernel_of(&r.unit_id).is_none() {
        return Err(input_error(format!(
            "{}: unit_id {} of paper kernels does not start with a kernel id (kernels/<name>/...)",
            path.display(),
            ids::shown(&r.unit_id)
        )));
    }
    for b in &r.benchmarks {
        check_bench(path, b)?;
    }
    if r.artifacts.len() > MAX_ARTIFACTS {
        return Err(input_error(format!(
            "{}: {} artifacts, more than a unit stores (at most {MAX_ARTIFACTS})",
            path.display(),
            r.artifacts.len()
        )));
    }
    for a in &r.artifacts {
        ids::check(path, "artifact name", &a.name)?;
        let hex = a.sha256.len() == 64
            && a.sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if a.name.contains('/') || !hex {
            return Err(input_error(format!(
                "{}: artifact {}: the name must be one id segment and sha256 64 lower-case hex digits",
                path.display(),
                ids::shown(&a.name)
            )));
        }
    }
    Ok(())
}

/// Most artifacts one unit record lists.
pub const MAX_ARTIFACTS: usize = 16;

/// Most baselines one benchmark entry lists.
pub const MAX_BASELINES: usize = 16;

/// Longest baseline name, bytes.
pub const MAX_BASELINE_NAME: usize = 200;

/// Checks one benchmark entry: its kernel id, and at most [`MAX_BASELINES`] baselines whose
/// names are short text without control characters, each with as many times as ours.
fn check_bench(path: &Path, b: &claimbench_paper::bench::BenchEntry) -> Result<()> {
    check_kernel_id(path, &b.kernel)?;
    if b.baselines.len() > MAX_BASELINES {
        return Err(input_error(format!(
            "{}: a benchmark of {} lists {} baselines (at most {MAX_BASELINES})",
            path.display(),
            ids::shown(&b.kernel),
            b.baselines.len()
        )));
    }
    for base in b.baselines.iter().chain(b.cross_device.as_ref()) {
        if base.name.len() > MAX_BASELINE_NAME
            || base.name.chars().any(char::is_control)
            || base.ms.len() != b.ours_ms.len()
        {
            return Err(input_error(format!(
                "{}: a baseline of {} has a name over {MAX_BASELINE_NAME} bytes, a control character, or not one time per round",
                path.display(),
                ids::shown(&b.kernel)
            )));
        }
    }
    Ok(())
}

/// A paper id (`dora`) or `kernels`: one segment of the id grammar. It names a page
/// (`papers/<id>.html`).
pub fn check_paper_id(path: &Path, paper: &str) -> Result<()> {
    ids::check(path, "paper", paper)?;
    if paper.contains('/') {
        return Err(input_error(format!(
            "{}: paper {} is not a paper id (one segment, e.g. dora)",
            path.display(),
            ids::shown(paper)
        )));
    }
    Ok(())
}

/// A kernel id, `kernels/<name>` (contracts.md). It names a page (`kernels/<name>.html`).
pub fn check_kernel_id(path: &Path, kernel: &str) -> Result<()> {
    ids::check(path, "kernel", kernel)?;
    if ids::kernel_of(kernel).as_deref() != Some(kernel) {
        return Err(input_error(format!(
            "{}: kernel {} is not a kernel id (kernels/<name>, e.g. kernels/token-logprob)",
            path.display(),
            ids::shown(kernel)
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename
/// ([`claimbench_paper::files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(claimbench_paper::files::write_atomic(path, bytes)?)
}

/// Serialises `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serialising JSON")?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// The `scale` of a run directory made by `import-criterion` (criterion's results, no
/// reproduction units).
pub const IMPORTED_SCALE: &str = "criterion";

/// Largest file of a run directory that is read whole (JSON records, tables): a smoke run's
/// largest is under 1 MiB, a `full` run's a few MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Most unit records one run directory may hold (a `full` run has a few hundred).
pub const MAX_UNITS: usize = 250_000;

/// Reads a whole file of a run directory, refusing one over [`MAX_FILE_BYTES`] before reading it.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(path)
        .map_err(|e| input_error(format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input_error(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(input_error(format!(
            "{} is larger than {} MiB: not a claimbench file",
            path.display(),
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Reads JSON from a file of a run directory (at most [`MAX_FILE_BYTES`]), with an error naming
/// the file and the problem.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = read_bounded(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        input_error(format!(
            "{} is corrupt or not a claimbench file: {e}",
            path.display()
        ))
    })
}

/// A run directory on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// Its root.
    pub root: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) a run directory at `root`, checking that it is writable.
    pub fn create(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("units")).map_err(|e| {
            input_error(format!(
                "--out {}: cannot create the run directory: {e}",
                root.display()
            ))
        })?;
        let probe = root.join(".write-probe");
        fs::write(&probe, b"ok").map_err(|e| {
            input_error(format!(
                "--out {}: directory is not writable: {e}",
                root.display()
            ))
        })?;
        let _ = fs::remove_file(probe);
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// [`RunDir::create`] for a new run, under the run's lock ([`RunLock`], taken for `what`):
    /// a directory that already holds a run (checked under the lock, so two processes cannot
    /// both start one there) is an input error.
    pub fn create_locked(root: &Path, what: &str) -> Result<(Self, RunLock)> {
        let dir = Self::create(root)?;
        let lock = RunLock::acquire(root, what)?;
        if dir.manifest_path().exists() {
            return Err(input_error(format!(
                "--out {}: already holds a run; use --resume {} to finish it, or another directory",
                root.display(),
                root.display()
            )));
        }
        Ok((dir, lock))
    }

    /// Opens an existing run directory, reading and checking its manifest.
    pub fn open(root: &Path) -> Result<(Self, Manifest)> {
        if !root.is_dir() {
            return Err(input_error(format!(
                "{} is not a run directory (no such directory)",
                root.display()
            )));
        }
        let manifest_path = root.join("manifest.json");
        if !manifest_path.exists() {
            return Err(input_error(format!(
                "{} is not a run directory: manifest.json is missing",
                root.display()
            )));
        }
        let manifest: Manifest = read_json(&manifest_path)?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(input_error(format!(
                "{}: schema_version {} is not supported (this claimbench reads {SCHEMA_VERSION})",
                manifest_path.display(),
                manifest.schema_version
            )));
        }
        manifest.check(&manifest_path)?;
        Ok((
            Self {
                root: root.to_path_buf(),
            },
            manifest,
        ))
    }

    /// [`RunDir::open`] under the run's lock ([`RunLock`], taken for `what`): the manifest is
    /// read once no other process writes the directory.
    pub fn open_locked(root: &Path, what: &str) -> Result<(Self, Manifest, RunLock)> {
        if !root.join("manifest.json").is_file() {
            // The messages of `open`, before a lock file is created in a directory that is not a
            // run directory.
            Self::open(root)?;
        }
        let lock = RunLock::acquire(root, what)?;
        let (dir, manifest) = Self::open(root)?;
        Ok((dir, manifest, lock))
    }

    /// Path of `manifest.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// Path of a unit's record: `/` in unit ids becomes `__`.
    pub fn unit_path(&self, unit_id: &str) -> PathBuf {
        self.root
            .join("units")
            .join(format!("{}.json", unit_id.replace('/', "__")))
    }

    /// Removes the temporary files (`.tmp*`) that a process killed between writing a file and
    /// renaming it into place left in the run directory, `units/`, `artifacts/` or anywhere
    /// under `report/`;
    /// returns how many. Finished records are never temporaries, so nothing finished is lost.
    /// Only the holder of the run's lock may call it (another process's temporaries are live).
    pub fn remove_stale_temporaries(&self, lock: &RunLock) -> Result<usize> {
        debug_assert!(lock.path().starts_with(&self.root));
        let stale = |p: &Path| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
        };
        let mut found = Vec::new();
        for dir in [self.root.clone(), self.root.join("units")] {
            if !dir.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                found.push(entry?.path());
            }
        }
        for (sub, depth) in [("report", 4), ("artifacts", 2)] {
            let tree = self.root.join(sub);
            if tree.is_dir() {
                // Links are not followed: a link in a downloaded run must not lead the clean-up
                // out.
                for entry in walkdir::WalkDir::new(&tree).max_depth(depth) {
                    let entry = entry.with_context(|| format!("listing {}", tree.display()))?;
                    found.push(entry.into_path());
                }
            }
        }
        let mut n = 0;
        for p in found {
            let meta = fs::symlink_metadata(&p)?;
            if stale(&p) && meta.is_file() {
                fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes the manifest atomically.
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        write_json(&self.manifest_path(), m)
    }

    /// Writes a unit record atomically.
    pub fn write_unit(&self, u: &UnitRecord) -> Result<()> {
        write_json(&self.unit_path(&u.unit_id), u)
    }

    /// Reads and checks the unit record at `p`: its ids follow the grammar and its file is the
    /// one its unit id names (a record cannot stand in for another unit).
    fn read_record(&self, p: &Path) -> Result<UnitRecord> {
        let u: UnitRecord = read_json(p)?;
        check_record(&u, p)?;
        if self.unit_path(&u.unit_id).file_name() != p.file_name() {
            return Err(input_error(format!(
                "{}: holds unit {}, whose record is {}",
                p.display(),
                ids::shown(&u.unit_id),
                self.unit_path(&u.unit_id).display()
            )));
        }
        Ok(u)
    }

    /// The record of a finished unit, if one exists. A corrupt record is an error naming it.
    pub fn read_unit(&self, unit_id: &str) -> Result<Option<UnitRecord>> {
        let p = self.unit_path(unit_id);
        if !p.exists() {
            return Ok(None);
        }
        self.read_record(&p).map(Some)
    }

    /// Every unit record in `units/`, sorted by unit id, each checked ([`UnitRecord::check`]).
    /// More than [`MAX_UNITS`] records is an input error.
    pub fn read_units(&self) -> Result<Vec<UnitRecord>> {
        let dir = self.root.join("units");
        let mut out = Vec::new();
        if dir.is_dir() {
            for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let p = entry?.path();
                if p.extension().is_some_and(|e| e == "json") {
                    if out.len() == MAX_UNITS {
                        return Err(input_error(format!(
                            "{}: holds more than {MAX_UNITS} unit records",
                            dir.display()
                        )));
                    }
                    out.push(self.read_record(&p)?);
                }
            }
        }
        out.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
        Ok(out)
    }

    /// The run's benchmark entries: `benchmarks.json`, or, in a run that has none yet (killed
    /// before its aggregates), those of its unit records `units`. What `compare`, `report` and
    /// `export` read.
    pub fn benchmark_entries(
        &self,
        units: &[UnitRecord],
    ) -> Result<Vec<claimbench_paper::bench::BenchEntry>> {
        Ok(match self.read_benchmarks()? {
            Some(b) => b.benchmarks,
            None => units.iter().flat_map(|u| u.benchmarks.clone()).collect(),
        })
    }

    /// `benchmarks.json`, if present, with every kernel id checked.
    pub fn read_benchmarks(&self) -> Result<Option<BenchFile>> {
        let p = self.root.join("benchmarks.json");
        if !p.exists() {
            return Ok(None);
        }
        let b: BenchFile = read_json(&p)?;
        if !(1..=claimbench_paper::bench::BENCH_SCHEMA_VERSION).contains(&b.schema_version) {
            return Err(crate::error::input_error(format!(
                "{}: schema_version {} is not supported (this claimbench reads 1 to {})",
                p.display(),
                b.schema_version,
                claimbench_paper::bench::BENCH_SCHEMA_VERSION
            )));
        }
        for e in &b.benchmarks {
            check_bench(&p, e)?;
        }
        Ok(Some(b))
    }

    /// `claims.json`, if present, with every claim id and paper id checked.
    pub fn read_claims(&self) -> Result<Option<ClaimsFile>> {
        let p = self.root.join("claims.json");
        if !p.exists() {
            return Ok(None);
        }
        let c: ClaimsFile = read_json(&p)?;
        if !(1..=claimbench_claims::SCHEMA_VERSION).contains(&c.schema_version) {
            return Err(crate::error::input_error(format!(
                "{}: schema_version {} is not supported (this claimbench reads 1 to {})",
                p.display(),
                c.schema_version,
                claimbench_claims::SCHEMA_VERSION
            )));
        }
        for claim in &c.claims {
            ids::check(&p, "claim id", &claim.id)?;
            check_paper_id(&p, &claim.paper)?;
        }
        Ok(Some(c))
    }

    /// Rebuilds `metrics.parquet`, `metrics.csv` and `benchmarks.json` from the unit records;
    /// with the run's measured `peaks`, each benchmark entry gets its `pct_of_floor`.
    pub fn write_aggregates(
        &self,
        run_id: &str,
        units: &[UnitRecord],
        peaks: Option<&crate::peaks::Peaks>,
    ) -> Result<()> {
        let mut df =
            anyhow::Context::context(metrics_frame(run_id, units), "building the metrics table")?;
        let mut buf = Vec::new();
        anyhow::Context::context(
            ParquetWriter::new(&mut buf).finish(&mut df),
            "writing metrics.parquet",
        )?;
        write_atomic(&self.root.join("metrics.parquet"), &buf)?;
        let mut buf = Vec::new();
        anyhow::Context::context(
            CsvWriter::new(&mut buf).finish(&mut df),
            "writing metrics.csv",
        )?;
        write_atomic(&self.root.join("metrics.csv"), &buf)?;
        let benchmarks = units
            .iter()
            .flat_map(|u| u.benchmarks.iter().cloned())
            .map(|mut e| {
                e.pct_of_floor =
                    peaks.and_then(|p| p.pct_of_floor(e.bytes, e.flops, e.ours_median_ms()));
                e
            })
            .collect();
        write_json(
            &self.root.join("benchmarks.json"),
            &BenchFile {
                schema_version: claimbench_paper::bench::BENCH_SCHEMA_VERSION,
                benchmarks,
            },
        )
    }

    /// Writes `claims.json`.
    pub fn write_claims(&self, claims: &ClaimsFile) -> Result<()> {
        write_json(&self.root.join("claims.json"), claims)
    }
}

/// The long-format metrics table of contracts.md:
/// `run_id, paper, experiment, arm, seed, backend, device, dtype, shape, step, metric, value, unit`.
pub fn metrics_frame(run_id: &str, units: &[UnitRecord]) -> PolarsResult<DataFrame> {
    let rows: Vec<(&UnitRecord, &MetricRow)> = units
        .iter()
        .flat_map(|u| u.metrics.iter().map(move |m| (u, m)))
        .collect();
    let s = |f: &dyn Fn(&UnitRecord, &MetricRow) -> String| {
        rows.iter().map(|(u, m)| f(u, m)).collect::<Vec<String>>()
    };
    let seed: Vec<Option<u64>> = rows.iter().map(|(u, _)| u.seed).collect();
    let step: Vec<Option<i64>> = rows.iter().map(|(_, m)| m.step).collect();
    let value: Vec<f64> = rows.iter().map(|(_, m)| m.value).collect();
    df!(
        "run_id" => s(&|_, _| run_id.to_string()),
        "paper" => s(&|u, _| u.paper.clone()),
        "experiment" => s(&|u, _| u.experiment.clone()),
        "arm" => s(&|u, _| u.arm.clone()),
        "seed" => seed,
        "backend" => s(&|u, _| u.backend.clone()),
        "device" => s(&|u, _| u.device.clone()),
        "dtype" => s(&|_, m| m.dtype.clone()),
        "shape" => s(&|_, m| m.shape.clone()),
        "step" => step,
        "metric" => s(&|_, m| m.metric.clone()),
        "value" => value,
        "unit" => s(&|_, m| m.unit.clone()),
    )
}

/// `--executor` (see `crate::executor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// This machine: the driver itself, or `--jobs N` worker processes.
    #[default]
    Local,
    /// Job arrays on a Slurm cluster (the run directory on a shared filesystem).
    Slurm,
}

/// How a run's units were executed, as `manifest.json` stores it (the report's benchmark page
/// says how timing units ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// The executor.
    pub kind: ExecutorKind,
    /// Local worker processes (1 for the driver alone), or Slurm's array throttle.
    pub workers: u32,
}

impl ExecutorInfo {
    /// One sentence for the benchmark page: how the timing units were kept apart.
    pub fn timing_text(&self) -> String {
        match (self.kind, self.workers) {
            (ExecutorKind::Local, 0 | 1) => {
                "Timing units ran one at a time in the driver process, with nothing else of the run beside them.".into()
            }
            (ExecutorKind::Local, n) => format!(
                "Units ran in {n} local worker processes; each timing unit ran alone (no other task of the run started while it ran)."
            ),
            (ExecutorKind::Slurm, n) => format!(
                "Units ran as Slurm job arrays (up to {n} tasks at once); timing units ran as their own array with --exclusive (a whole node each, nothing else on it), one at a time."
            ),
        }
    }
}
