//! Benchmark methodology: correctness is checked by the caller before anything is timed; then
//! warm-up outside the timing (JIT compilation, autotune), interleaved A/B rounds whose order
//! alternates, a device read inside every timed region, raw samples kept, and the median paired
//! speedup with a bootstrap CI.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::metrics::MetricRow;

/// Sample counts for one comparison. Shapes never change with the scale; counts do.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Untimed runs of each implementation first.
    pub warmup: usize,
    /// Timed rounds; each round times every implementation once.
    pub rounds: usize,
    /// Bootstrap resamples for the CI of the median speedup.
    pub resamples: usize,
}

/// Raw per-round times, in milliseconds, of the implementations of one comparison.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Samples {
    /// Our implementation.
    pub ours_ms: Vec<f64>,
    /// The baseline a user would pick.
    pub baseline_ms: Vec<f64>,
    /// A reference pass (e.g. one plain read of the input: the memory floor), when given.
    pub floor_ms: Vec<f64>,
}

/// Times `ours`, `baseline` and optionally `floor` in interleaved rounds. Each closure must read
/// its result back from the device (or sync it) before returning, so the time covers the work.
/// Round `i` runs them in the order ours→baseline on even `i` and baseline→ours on odd `i`, so
/// slow drift (thermal, caches) does not favour either.
pub fn interleaved(
    cfg: BenchConfig,
    mut ours: impl FnMut(),
    mut baseline: impl FnMut(),
    mut floor: Option<&mut dyn FnMut()>,
    mut tick: impl FnMut(),
) -> Samples {
    for _ in 0..cfg.warmup {
        ours();
        baseline();
        if let Some(f) = floor.as_mut() {
            f();
        }
    }
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64() * 1e3
    };
    let mut s = Samples::default();
    for round in 0..cfg.rounds {
        if round % 2 == 0 {
            s.ours_ms.push(time(&mut ours));
            s.baseline_ms.push(time(&mut baseline));
        } else {
            s.baseline_ms.push(time(&mut baseline));
            s.ours_ms.push(time(&mut ours));
        }
        if let Some(f) = floor.as_mut() {
            s.floor_ms.push(time(*f));
        }
        tick();
    }
    s
}

/// One entry of `benchmarks.json` (contracts.md), plus the memory-floor samples.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BenchEntry {
    /// Kernel id, e.g. `kernels/token-logprob`.
    pub kernel: String,
    /// Our implementation's name.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// The baseline's name.
    pub baseline: String,
    /// Backend both ran on.
    pub backend: String,
    /// Device both ran on.
    pub device: String,
    /// Element type.
    pub dtype: String,
    /// Problem shape, e.g. `[1024, 32000]`.
    pub shape: Vec<usize>,
    /// Median over paired rounds of baseline time / our time (> 1: ours is faster).
    pub speedup: f64,
    /// 95% bootstrap CI of that median.
    pub speedup_ci: [f64; 2],
    /// Number of paired rounds.
    pub rounds: usize,
    /// Raw per-round times of ours, ms.
    pub ours_ms: Vec<f64>,
    /// Raw per-round times of the baseline, ms.
    pub baseline_ms: Vec<f64>,
    /// Bytes the operation must move at least.
    pub bytes: u64,
    /// Floating-point operations it must perform.
    pub flops: u64,
    /// The speedup the issue asks for, if any.
    pub target: Option<f64>,
    /// What the floor pass is, when measured (e.g. "one sum_dim read pass over the logits").
    #[serde(default)]
    pub floor: Option<String>,
    /// Raw per-round times of the floor pass, ms.
    #[serde(default)]
    pub floor_ms: Vec<f64>,
    /// How the correctness check before timing went (max |Δ| vs the reference, tolerance).
    #[serde(default)]
    pub correctness: String,
}

impl BenchEntry {
    /// Median of our times, ms.
    pub fn ours_median_ms(&self) -> f64 {
        claimbench_claims::stats::median(&self.ours_ms).unwrap_or(f64::NAN)
    }
    /// Median of the baseline's times, ms.
    pub fn baseline_median_ms(&self) -> f64 {
        claimbench_claims::stats::median(&self.baseline_ms).unwrap_or(f64::NAN)
    }
    /// Median of the floor's times, ms (NaN when not measured).
    pub fn floor_median_ms(&self) -> f64 {
        claimbench_claims::stats::median(&self.floor_ms).unwrap_or(f64::NAN)
    }
    /// Effective bandwidth of ours, GB/s, from `bytes` and the median time.
    pub fn ours_gbps(&self) -> f64 {
        self.bytes as f64 / (self.ours_median_ms() * 1e-3) / 1e9
    }
    /// Whether the target is met by the point estimate (`None` without a target).
    pub fn target_met(&self) -> Option<bool> {
        self.target.map(|t| self.speedup >= t)
    }
}

/// The `benchmarks.json` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchFile {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// One entry per comparison.
    pub benchmarks: Vec<BenchEntry>,
}

/// The fixed facts of one comparison a benchmark unit makes, to turn its [`Samples`] into a
/// [`BenchEntry`] and the unit's metric rows.
pub struct Comparison<'a> {
    /// Kernel id.
    pub kernel: &'a str,
    /// Our implementation's name.
    pub name: &'a str,
    /// The baseline's name.
    pub baseline: &'a str,
    /// Backend.
    pub backend: &'a str,
    /// Device.
    pub device: &'a str,
    /// Problem shape.
    pub shape: &'a [usize],
    /// The speedup the issue asks for.
    pub target: Option<f64>,
    /// Bytes the operation must move.
    pub bytes: u64,
    /// FLOPs it must perform.
    pub flops: u64,
    /// What the floor pass is, when measured.
    pub floor: Option<&'a str>,
    /// How the correctness check before timing went.
    pub correctness: &'a str,
}

impl Comparison<'_> {
    /// The entry (median paired speedup with its bootstrap CI over `resamples`, seeded) and the
    /// metric rows `<name>_speedup`, `_ours_median`, `_baseline_median` (and `_floor_median`).
    pub fn entry(
        &self,
        s: &Samples,
        resamples: usize,
        seed: u64,
    ) -> Result<(BenchEntry, Vec<MetricRow>), String> {
        let est =
            claimbench_claims::stats::paired_speedup(&s.ours_ms, &s.baseline_ms, resamples, seed)
                .map_err(|e| format!("{}: {e}", self.name))?;
        let entry = BenchEntry {
            kernel: self.kernel.into(),
            implementation: self.name.into(),
            baseline: self.baseline.into(),
            backend: self.backend.into(),
            device: self.device.into(),
            dtype: "f32".into(),
            shape: self.shape.to_vec(),
            speedup: est.median,
            speedup_ci: est.ci,
            rounds: s.ours_ms.len(),
            ours_ms: s.ours_ms.clone(),
            baseline_ms: s.baseline_ms.clone(),
            bytes: self.bytes,
            flops: self.flops,
            target: self.target,
            floor: self.floor.map(String::from),
            floor_ms: s.floor_ms.clone(),
            correctness: self.correctness.into(),
        };
        let sh = format!("{:?}", self.shape);
        let name = self.name;
        let mut rows = vec![
            MetricRow::full(
                "f32",
                &sh,
                None,
                format!("{name}_speedup"),
                entry.speedup,
                "x",
            ),
            MetricRow::full(
                "f32",
                &sh,
                None,
                format!("{name}_ours_median"),
                entry.ours_median_ms(),
                "ms",
            ),
            MetricRow::full(
                "f32",
                &sh,
                None,
                format!("{name}_baseline_median"),
                entry.baseline_median_ms(),
                "ms",
            ),
        ];
        if !s.floor_ms.is_empty() {
            rows.push(MetricRow::full(
                "f32",
                &sh,
                None,
                format!("{name}_floor_median"),
                entry.floor_median_ms(),
                "ms",
            ));
        }
        Ok((entry, rows))
    }
}

/// Ends a timed region: reads `t` back to the host (which waits for the work that produces it)
/// and syncs the device, so a timing measures the work, not its queueing. `into_data` alone may
/// return before the device is done on some backends.
pub fn read_back<B: burn::tensor::backend::Backend, const D: usize>(t: burn::tensor::Tensor<B, D>) {
    let device = t.device();
    let data = t.into_data();
    std::hint::black_box(data.as_slice::<f32>().map(|s| s.first().copied()).ok());
    let _ = B::sync(&device);
}
