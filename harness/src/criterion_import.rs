//! `claimbench import-criterion <target/criterion>`: criterion's measurements become a run
//! directory (units, metrics rows, `benchmarks.json`, report), so `cargo bench` feeds the same
//! `compare` / `history` / report pipeline as `claimbench run`.
//!
//! Criterion writes `<group>/<function>/new/benchmark.json` (ids) and `sample.json` (per sample:
//! `iters` and total `times` in ns). Each sample becomes one per-iteration time in ms. Within a
//! group, the function whose id contains `baseline` is the baseline, one whose id starts with
//! `floor` is the floor pass, and every other function becomes a [`BenchEntry`] against the
//! baseline. Criterion does not interleave functions, so the samples are independent and the
//! speedup is the ratio of medians with a bootstrap CI (not a paired-round median).
//! Kernel id, shape, dtype and backend are read off the group id, e.g.
//! `token_logprob/1024x32000/f32/wgpu` → `kernels/token-logprob`, `[1024, 32000]`, `f32`, `wgpu`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use claimbench_claims::ClaimsFile;
use claimbench_claims::regression::ratio_of_medians_ci;
use serde::Deserialize;

use crate::devices::{self, BackendChoice, Exec, Plan};
use crate::env;
use crate::error::input_error;
use crate::store::{
    Manifest, MetricRow, RunDir, SCHEMA_VERSION, UnitRecord, UnitStatus, read_json,
};
use claimbench_paper::bench::BenchEntry;

#[derive(Deserialize)]
struct CriterionId {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct CriterionSample {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// One criterion benchmark: ids and per-iteration times in ms.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Group id.
    pub group: String,
    /// Function id.
    pub function: String,
    /// Per-iteration times, ms.
    pub ms: Vec<f64>,
}

/// Reads every `*/new/benchmark.json` + `sample.json` under `dir`.
pub fn read_dir(dir: &Path) -> Result<Vec<Measured>> {
    if !dir.is_dir() {
        return Err(input_error(format!(
            "{}: no such directory (criterion writes target/criterion after `cargo bench`)",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry =
            entry.map_err(|e| input_error(format!("{}: cannot walk: {e}", dir.display())))?;
        let p = entry.path();
        if p.file_name().is_none_or(|n| n != "benchmark.json")
            || p.parent()
                .and_then(Path::file_name)
                .is_none_or(|n| n != "new")
        {
            continue;
        }
        let id: CriterionId = read_json(p)?;
        let sample_path = p.with_file_name("sample.json");
        let s: CriterionSample = read_json(&sample_path)?;
        if s.iters.len() != s.times.len() || s.iters.is_empty() {
            return Err(input_error(format!(
                "{}: {} iteration counts but {} times",
                sample_path.display(),
                s.iters.len(),
                s.times.len()
            )));
        }
        let ms: Vec<f64> = s
            .iters
            .iter()
            .zip(&s.times)
            .map(|(n, t)| t / n / 1e6)
            .collect();
        if ms.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return Err(input_error(format!(
                "{}: a sample has a zero iteration count or a non-positive time",
                sample_path.display()
            )));
        }
        out.push(Measured {
            group: id.group_id,
            function: id.function_id.unwrap_or_else(|| "bench".into()),
            ms,
        });
    }
    if out.is_empty() {
        return Err(input_error(format!(
            "{}: holds no criterion results (*/new/benchmark.json); run `cargo bench` first",
            dir.display()
        )));
    }
    Ok(out)
}

/// What a group id says: (kernel id, shape, dtype, backend).
pub fn parse_group(group: &str) -> (String, Vec<usize>, String, String) {
    let mut parts = group.split('/');
    let kernel = format!(
        "kernels/{}",
        parts.next().unwrap_or("unknown").replace('_', "-")
    );
    let (mut shape, mut dtype, mut backend) = (Vec::new(), String::new(), String::new());
    for p in parts {
        let dims: Option<Vec<usize>> = p.split('x').map(|d| d.parse().ok()).collect();
        match (dims, p) {
            (Some(d), _) if !d.is_empty() => shape = d,
            (_, "f32" | "f16" | "bf16" | "f64") => dtype = p.to_string(),
            (_, "wgpu" | "cuda" | "flex") => backend = p.to_string(),
            _ => {}
        }
    }
    (kernel, shape, dtype, backend)
}

/// Imports the criterion results under `criterion_dir` into a new run directory `out`; returns
/// the number of benchmark entries made.
pub fn import(criterion_dir: &Path, out: &Path, resamples: usize) -> Result<usize> {
    let measured = read_dir(criterion_dir)?;
    if out.join("manifest.json").exists() {
        return Err(input_error(format!(
            "{}: already holds a run; import into a new directory",
            out.display()
        )));
    }
    let mut groups: BTreeMap<String, Vec<Measured>> = BTreeMap::new();
    for m in measured {
        // The group names the kernel id, a page of the report: checked before it is used.
        let (kernel, ..) = parse_group(&m.group);
        crate::store::check_kernel_id(&criterion_dir.join(&m.group).join(&m.function), &kernel)?;
        groups.entry(m.group.clone()).or_default().push(m);
    }
    let git = env::git_state();
    let (run, _lock) = RunDir::create_locked(out, "import-criterion")?;
    let adapters = devices::wgpu_adapters();
    let cuda = devices::cuda_devices();
    let mut units = Vec::new();
    let mut kernel_exec = None;
    for (group, fns) in &groups {
        let (kernel, shape, dtype, backend) = parse_group(group);
        let device = match backend.as_str() {
            "wgpu" => adapters.first().map(|d| d.name.clone()),
            "cuda" => cuda.first().map(|d| d.name.clone()),
            "flex" => Some(devices::flex_device().name),
            _ => None,
        }
        .unwrap_or_else(|| "unknown".into());
        kernel_exec = kernel_exec.or(match backend.as_str() {
            "wgpu" => Some(Exec::Wgpu),
            "cuda" => Some(Exec::Cuda),
            _ => None,
        });
        let shape_s = format!("{shape:?}");
        let metrics: Vec<MetricRow> = fns
            .iter()
            .flat_map(|f| {
                f.ms.iter().enumerate().map(|(i, &v)| MetricRow {
                    dtype: dtype.clone(),
                    shape: shape_s.clone(),
                    step: Some(i as i64),
                    metric: format!("time_per_iter/{}", f.function),
                    value: v,
                    unit: "ms".into(),
                })
            })
            .collect();
        // Several baselines: the headline is the fastest by median; all are listed.
        let bases: Vec<_> = fns
            .iter()
            .filter(|f| f.function.contains("baseline"))
            .collect();
        let median_of = |ms: &[f64]| claimbench_claims::median(ms).unwrap_or(f64::INFINITY);
        let baseline = bases
            .iter()
            .min_by(|a, b| median_of(&a.ms).total_cmp(&median_of(&b.ms)))
            .copied();
        let base_name = |function: &str| {
            function
                .trim_start_matches("baseline")
                .trim_start_matches([':', ' '])
                .to_string()
        };
        let floor = fns.iter().find(|f| f.function.starts_with("floor"));
        let mut benchmarks = Vec::new();
        if let Some(base) = baseline {
            for f in fns
                .iter()
                .filter(|f| !f.function.contains("baseline") && !f.function.starts_with("floor"))
            {
                let n = bases
                    .iter()
                    .map(|b| b.ms.len())
                    .fold(f.ms.len(), usize::min);
                let (ours_ms, base_ms) = (f.ms[..n].to_vec(), base.ms[..n].to_vec());
                let (speedup, ci) = ratio_of_medians_ci(&ours_ms, &base_ms, 0.95, resamples, 0)
                    .map_err(|e| input_error(format!("{group}/{}: {e}", f.function)))?;
                let mut listed = Vec::new();
                if bases.len() > 1 {
                    for b in &bases {
                        let ms = b.ms[..n].to_vec();
                        let (speedup, speedup_ci) =
                            ratio_of_medians_ci(&ours_ms, &ms, 0.95, resamples, 0)
                                .map_err(|e| input_error(format!("{group}/{}: {e}", b.function)))?;
                        listed.push(claimbench_paper::bench::BaselineTiming {
                            name: base_name(&b.function),
                            speedup,
                            speedup_ci,
                            ms,
                        });
                    }
                }
                benchmarks.push(BenchEntry {
                    kernel: kernel.clone(),
                    implementation: f.function.clone(),
                    baseline: base_name(&base.function),
                    backend: backend.clone(),
                    device: device.clone(),
                    dtype: dtype.clone(),
                    shape: shape.clone(),
                    speedup,
                    speedup_ci: ci,
                    rounds: n,
                    ours_ms,
                    baseline_ms: base_ms,
                    bytes: 0,
                    flops: 0,
                    target: None,
                    floor: floor.map(|f| f.function.clone()),
                    floor_ms: floor.map(|f| f.ms.clone()).unwrap_or_default(),
                    correctness:
                        "checked by the criterion bench before timing (it panics on a mismatch)"
                            .into(),
                    baselines: listed,
                    achieved_gbps: None,
                    achieved_gflops: None,
                    pct_of_floor: None,
                    cross_device: None,
                });
            }
        }
        let unit = UnitRecord {
            schema_version: SCHEMA_VERSION,
            unit_id: format!("{kernel}/criterion/{}", crate::ids::slug(group)),
            paper: "kernels".into(),
            experiment: "criterion".into(),
            arm: group.clone(),
            seed: None,
            backend: backend.clone(),
            device,
            status: UnitStatus::Passed,
            message: format!(
                "imported from criterion: {} function(s){}",
                fns.len(),
                if baseline.is_none() {
                    " (no function id contains \"baseline\": times only, no speedup)"
                } else {
                    ""
                }
            ),
            seconds: 0.0,
            metrics,
            benchmarks,
            artifacts: Vec::new(),
        };
        run.write_unit(&unit)?;
        units.push(unit);
    }
    let now = chrono::Utc::now().to_rfc3339();
    let run_id = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "criterion".into());
    let kernel_device = match kernel_exec {
        Some(Exec::Wgpu) => adapters.first().cloned(),
        Some(Exec::Cuda) => cuda.first().cloned(),
        _ => None,
    };
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.clone(),
        git_sha: git.sha,
        git_dirty: git.dirty,
        cargo_lock_sha256: env::cargo_lock_hash(),
        rustc: env::rustc_version(),
        crate_versions: env::crate_versions(),
        features: vec!["criterion-import".into()],
        plan: Plan {
            choice: BackendChoice::Auto,
            train: Exec::Flex,
            train_device: devices::flex_device(),
            kernels: kernel_exec,
            kernel_device,
            skip_reason: Some(format!(
                "imported from criterion results in {}; the device is the one this machine has now",
                criterion_dir.display()
            )),
        },
        cpu: env::cpu_model(),
        os: env::os_name(),
        scale: crate::store::RunScale::Imported,
        seeds: Vec::new(),
        only: Vec::new(),
        config_hash: String::new(),
        units: units.iter().map(|u| u.unit_id.clone()).collect(),
        skipped: Vec::new(),
        started: now.clone(),
        finished: Some(now),
        configs: None,
        peaks: None,
        fallbacks: Vec::new(),
        build: None,
        corpus_root: None,
        data_cards: Vec::new(),
        executor: None,
    };
    run.write_manifest(&manifest)?;
    run.write_aggregates(&run_id, &units, None)?;
    run.write_claims(&ClaimsFile::new(Vec::new()))?;
    Ok(units.iter().map(|u| u.benchmarks.len()).sum())
}

/// The default run directory of an import: `runs/criterion-<date>-<time>`.
pub fn default_out() -> PathBuf {
    PathBuf::from("runs").join(format!(
        "criterion-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ))
}
