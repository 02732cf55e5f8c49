//! Benchmark methodology: correctness is checked by the caller before anything is timed; then
//! warm-up outside the timing (JIT compilation, autotune where on), rotated rounds whose order
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
    /// The headline baseline: the fastest of [`Samples::baselines`] by median (or the one
    /// baseline of [`interleaved`]).
    pub baseline_ms: Vec<f64>,
    /// A reference pass (e.g. one plain read of the input: the memory floor), when given.
    pub floor_ms: Vec<f64>,
    /// Every baseline timed, in the order given (empty for a single-baseline comparison).
    pub baselines: Vec<BaselineSamples>,
    /// An alternative on another device of the same machine, when timed (never a baseline).
    pub cross_device: Option<BaselineSamples>,
}

/// The per-round times of one named baseline.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BaselineSamples {
    /// What the baseline is (e.g. `burn log_softmax + gather`).
    pub name: String,
    /// Per-round times, ms.
    pub ms: Vec<f64>,
}

/// Times every closure of `impls` once per round for `cfg.rounds` rounds, after
/// `cfg.warmup` untimed calls of each. Round `r` starts at closure `r mod n` and goes on in
/// cyclic order, so every closure takes every position of a round equally often (up to one) and
/// slow drift (thermal, caches, the allocator) favours none. Returns the times per closure, ms.
/// Each closure must read its result back from the device (or sync it) before returning.
pub fn rotated_rounds(
    cfg: BenchConfig,
    impls: &mut [&mut dyn FnMut()],
    mut tick: impl FnMut(),
) -> Vec<Vec<f64>> {
    let n = impls.len();
    for _ in 0..cfg.warmup {
        for f in impls.iter_mut() {
            f();
        }
    }
    let mut times = vec![Vec::with_capacity(cfg.rounds); n];
    for round in 0..cfg.rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let start = Instant::now();
            (impls[i])();
            times[i].push(start.elapsed().as_secs_f64() * 1e3);
        }
        tick();
    }
    times
}

/// Times `ours`, `baseline` and optionally `floor` in rotated rounds ([`rotated_rounds`]).
pub fn interleaved(
    cfg: BenchConfig,
    mut ours: impl FnMut(),
    mut baseline: impl FnMut(),
    mut floor: Option<&mut dyn FnMut()>,
    tick: impl FnMut(),
) -> Samples {
    let has_floor = floor.is_some();
    let mut impls: Vec<&mut dyn FnMut()> = vec![&mut ours, &mut baseline];
    if let Some(f) = floor.as_mut() {
        impls.push(&mut **f);
    }
    let mut t = rotated_rounds(cfg, &mut impls, tick).into_iter();
    let (ours_ms, baseline_ms) = (t.next().unwrap_or_default(), t.next().unwrap_or_default());
    Samples {
        ours_ms,
        baseline_ms,
        floor_ms: if has_floor {
            t.next().unwrap_or_default()
        } else {
            Vec::new()
        },
        baselines: Vec::new(),
        cross_device: None,
    }
}

/// Times `ours` against several baselines (each named) and optionally `floor`, in rotated
/// rounds ([`rotated_rounds`]). The headline baseline ([`Samples::baseline_ms`]) is the fastest
/// by median time: a speedup is claimed against the strongest alternative timed, never a weaker
/// one. Panics if `baselines` is empty.
///
/// `cross_device`, when given, is timed in the same rounds but is never a baseline: an
/// alternative on another device of the same machine (burn `flex` on the host CPU), reported
/// apart and labelled as a cross-device comparison.
pub fn interleaved_many(
    cfg: BenchConfig,
    mut ours: impl FnMut(),
    mut baselines: Vec<(&str, &mut dyn FnMut())>,
    mut floor: Option<&mut dyn FnMut()>,
    mut cross_device: Option<(&str, &mut dyn FnMut())>,
    tick: impl FnMut(),
) -> Samples {
    assert!(!baselines.is_empty(), "a comparison needs a baseline");
    let names: Vec<String> = baselines.iter().map(|(n, _)| n.to_string()).collect();
    let has_floor = floor.is_some();
    let cross_name = cross_device.as_ref().map(|(n, _)| n.to_string());
    let mut impls: Vec<&mut dyn FnMut()> = vec![&mut ours];
    for (_, f) in baselines.iter_mut() {
        impls.push(&mut **f);
    }
    if let Some(f) = floor.as_mut() {
        impls.push(&mut **f);
    }
    if let Some((_, f)) = cross_device.as_mut() {
        impls.push(&mut **f);
    }
    let mut t = rotated_rounds(cfg, &mut impls, tick);
    let cross_device = cross_name.map(|name| BaselineSamples {
        name,
        ms: t.pop().unwrap_or_default(),
    });
    let floor_ms = if has_floor {
        t.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut t = t.into_iter();
    let ours_ms = t.next().unwrap_or_default();
    let baselines: Vec<BaselineSamples> = names
        .into_iter()
        .zip(t)
        .map(|(name, ms)| BaselineSamples { name, ms })
        .collect();
    let fastest = fastest_baseline(&baselines).unwrap_or(0);
    Samples {
        ours_ms,
        baseline_ms: baselines[fastest].ms.clone(),
        floor_ms,
        baselines,
        cross_device,
    }
}

/// The index of the baseline with the lowest median time (the first on ties); `None` when empty.
pub fn fastest_baseline(baselines: &[BaselineSamples]) -> Option<usize> {
    baselines
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let m = claimbench_claims::stats::median(&b.ms).unwrap_or(f64::INFINITY);
            (i, if m.is_nan() { f64::INFINITY } else { m })
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// One baseline of a [`BenchEntry`]: its raw times and our speedup over it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaselineTiming {
    /// What the baseline is.
    pub name: String,
    /// Median over paired rounds of its time / our time.
    pub speedup: f64,
    /// 95% bootstrap CI of that median.
    pub speedup_ci: [f64; 2],
    /// Raw per-round times, ms.
    pub ms: Vec<f64>,
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
    /// Every baseline timed (contracts.md, version 2), the headline [`BenchEntry::baseline`]
    /// being the fastest; empty when the comparison has one baseline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<BaselineTiming>,
    /// Our achieved bandwidth, GB/s (`bytes` / median time), when `bytes` is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_gbps: Option<f64>,
    /// Our achieved FLOP rate, GFLOP/s, when `flops` is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_gflops: Option<f64>,
    /// Our throughput as a percentage of the run's measured floor (bandwidth or FLOP rate,
    /// whichever bounds the operation); set by the harness from the manifest's peaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pct_of_floor: Option<f64>,
    /// The best alternative on another device of the same machine (burn `flex` on the host
    /// CPU), timed in the same rounds: a cross-device comparison, never the headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_device: Option<BaselineTiming>,
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
    /// Our achieved GFLOP/s from `flops` and the median time.
    pub fn ours_gflops(&self) -> f64 {
        self.flops as f64 / (self.ours_median_ms() * 1e-3) / 1e9
    }
}

/// The `schema_version` this crate writes to `benchmarks.json`: 2 adds `baselines`,
/// `achieved_gbps`, `achieved_gflops` and `pct_of_floor` (contracts.md); 1 is still read.
pub const BENCH_SCHEMA_VERSION: u32 = 2;

/// The `benchmarks.json` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchFile {
    /// [`BENCH_SCHEMA_VERSION`] when written; 1 or 2 when read.
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
    /// The baseline's name (with several baselines, [`interleaved_many`]'s names are used and
    /// the fastest is the headline).
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
        let mut baselines = Vec::with_capacity(s.baselines.len());
        for b in &s.baselines {
            let e = claimbench_claims::stats::paired_speedup(&s.ours_ms, &b.ms, resamples, seed)
                .map_err(|e| format!("{} vs {}: {e}", self.name, b.name))?;
            baselines.push(BaselineTiming {
                name: b.name.clone(),
                speedup: e.median,
                speedup_ci: e.ci,
                ms: b.ms.clone(),
            });
        }
        let cross_device = match &s.cross_device {
            Some(b) => {
                let e =
                    claimbench_claims::stats::paired_speedup(&s.ours_ms, &b.ms, resamples, seed)
                        .map_err(|e| format!("{} vs {}: {e}", self.name, b.name))?;
                Some(BaselineTiming {
                    name: b.name.clone(),
                    speedup: e.median,
                    speedup_ci: e.ci,
                    ms: b.ms.clone(),
                })
            }
            None => None,
        };
        let headline = fastest_baseline(&s.baselines)
            .map(|i| s.baselines[i].name.clone())
            .unwrap_or_else(|| self.baseline.to_string());
        let ours_median = claimbench_claims::stats::median(&s.ours_ms).unwrap_or(f64::NAN);
        let rate = |amount: u64| (amount > 0).then(|| amount as f64 / (ours_median * 1e-3) / 1e9);
        let entry = BenchEntry {
            kernel: self.kernel.into(),
            implementation: self.name.into(),
            baseline: headline,
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
            baselines,
            achieved_gbps: rate(self.bytes),
            achieved_gflops: rate(self.flops),
            pct_of_floor: None,
            cross_device,
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

/// A speedup (baseline time / ours) in words: `2.81x faster` at or above 1, and below 1 the
/// slowdown it is, `1.25x slower` (the inverse): a slowdown is never printed as a "0.8x speedup".
pub fn ratio_words(speedup: f64) -> String {
    if speedup >= 1.0 {
        format!("{speedup:.2}x faster")
    } else if speedup > 0.0 {
        format!("{:.2}x slower", 1.0 / speedup)
    } else {
        format!("speedup {speedup}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_so_every_closure_takes_every_slot() {
        let order = std::cell::RefCell::new(Vec::new());
        let cfg = BenchConfig {
            warmup: 1,
            rounds: 6,
            resamples: 10,
        };
        let (mut a, mut b, mut c) = (
            || order.borrow_mut().push('a'),
            || order.borrow_mut().push('b'),
            || order.borrow_mut().push('c'),
        );
        let t = rotated_rounds(cfg, &mut [&mut a, &mut b, &mut c], || {});
        assert!(t.iter().all(|v| v.len() == 6));
        let o: String = order.borrow().iter().collect();
        // warm-up abc, then rounds starting at a, b, c, a, b, c
        assert_eq!(o, "abcabcbcacababcbcacab");
    }

    #[test]
    fn the_headline_baseline_is_the_fastest() {
        let slow = BaselineSamples {
            name: "slow".into(),
            ms: vec![10.0, 11.0, 12.0],
        };
        let fast = BaselineSamples {
            name: "fast".into(),
            ms: vec![4.0, 5.0, 30.0],
        };
        assert_eq!(fastest_baseline(&[slow.clone(), fast.clone()]), Some(1));
        assert_eq!(fastest_baseline(&[fast, slow]), Some(0));
        assert_eq!(fastest_baseline(&[]), None);
        let s = Samples {
            ours_ms: vec![2.0, 2.0, 2.0],
            baseline_ms: vec![4.0, 5.0, 30.0],
            floor_ms: Vec::new(),
            baselines: vec![
                BaselineSamples {
                    name: "slow".into(),
                    ms: vec![10.0, 11.0, 12.0],
                },
                BaselineSamples {
                    name: "fast".into(),
                    ms: vec![4.0, 5.0, 30.0],
                },
            ],
            cross_device: None,
        };
        let c = Comparison {
            kernel: "kernels/x",
            name: "ours",
            baseline: "ignored",
            backend: "wgpu",
            device: "d",
            shape: &[1],
            target: None,
            bytes: 2_000_000,
            flops: 0,
            floor: None,
            correctness: "",
        };
        let (e, _) = c.entry(&s, 100, 0).unwrap();
        assert_eq!(e.baseline, "fast");
        assert_eq!(e.speedup, 2.5);
        assert_eq!(e.baselines.len(), 2);
        assert_eq!(e.baselines[0].speedup, 5.5);
        assert!((e.achieved_gbps.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(e.achieved_gflops, None);
    }

    #[test]
    fn a_slowdown_is_printed_as_one() {
        assert_eq!(ratio_words(2.5), "2.50x faster");
        assert_eq!(ratio_words(0.8), "1.25x slower");
    }
}
