//! Measured floors of the kernel device: its practical memory bandwidth and floating-point
//! rate, stored in the manifest so kernel pages place each benchmark against them (`% of floor`)
//! and flag throughputs above what the device can do (a suspect measurement, not a win: exit 2).
//!
//! Bandwidth is the best of several reads of the same 131 MB (1024 × 32000 f32, the token-logprob
//! benchmark's logits), each the best of N passes after a warm-up, each pass ending with a device
//! sync or a read back:
//! - the cubecl probe ([`claimbench_kernels::bandwidth`]): a grid-stride read, an unrolled read
//!   and a copy, all vectorised (bytes read + written / time);
//! - burn's `sum_dim` on the device's fused default backend (the floor before this probe);
//! - `flex_read_gbps`: burn `flex`'s `sum()` on the host CPU, in the same probe: on a device
//!   that is the CPU (lavapipe) a floor below it would be no floor.
//!
//! The FLOP rate is the best of a 1024³ f32 matmul through burn and this suite's
//! own GEMM (`dora::base_matmul`). These are *practical* floors (what code reaches); on a GPU
//! whose datasheet bandwidth is known ([`datasheet_gbps`]) it is stated beside them.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// Throughputs above the measured floor by more than this factor are flagged as suspect (the
/// probe is a practical floor, so a hand-written kernel may beat it slightly).
pub const SUSPECT_SLACK: f64 = 1.10;

/// f32 elements the bandwidth probes read: 1024 × 32000 (131 MB, under lavapipe's 128 MiB
/// binding limit).
pub const PROBE_ELEMS: usize = 1024 * 32000;

/// Units of the cubecl grid-stride read: 1024 cubes of 256.
pub const PROBE_UNITS: usize = 1 << 18;

/// One measured bandwidth probe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    /// What was timed.
    pub what: String,
    /// Achieved GB/s (bytes read + written / best time).
    pub gbps: f64,
}

/// Measured floors of one device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Peaks {
    /// Backend probed (`wgpu`, `cuda`).
    pub backend: String,
    /// Device probed.
    pub device: String,
    /// The bandwidth floor, GB/s (10⁹ bytes per second): the highest of [`Peaks::probes`].
    pub bandwidth_gbps: f64,
    /// Practical f32 rate, GFLOP/s.
    pub gflops: f64,
    /// How each was measured.
    pub method: String,
    /// The same bytes read through burn's `flex` backend on the host CPU, GB/s (absent in runs
    /// made before it was measured).
    #[serde(default)]
    pub flex_read_gbps: Option<f64>,
    /// Every bandwidth probe timed (empty in runs made before the cubecl probe).
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// The device's datasheet memory bandwidth, GB/s, when this suite knows it.
    #[serde(default)]
    pub datasheet_gbps: Option<f64>,
}

impl Peaks {
    /// Why a throughput is suspect, if it is: `bytes`/`flops` moved/computed in `ms`.
    pub fn suspect(&self, bytes: u64, flops: u64, ms: f64) -> Option<String> {
        if ms.is_nan() || ms <= 0.0 {
            return Some(format!("non-positive time {ms} ms"));
        }
        let gbps = bytes as f64 / (ms * 1e-3) / 1e9;
        let gflops = flops as f64 / (ms * 1e-3) / 1e9;
        if gbps > self.bandwidth_gbps * SUSPECT_SLACK {
            return Some(format!(
                "{gbps:.1} GB/s is above the measured bandwidth floor {:.1} GB/s",
                self.bandwidth_gbps
            ));
        }
        if gflops > self.gflops * SUSPECT_SLACK {
            return Some(format!(
                "{gflops:.1} GFLOP/s is above the measured floor {:.1} GFLOP/s",
                self.gflops
            ));
        }
        None
    }

    /// Why a throughput is above the *bandwidth* floor, if it is: the floor measured by
    /// independent probes (a read cannot beat the best read), so above it the measurement is
    /// wrong (exit 2). The FLOP floor on CPU-like devices is this suite's own GEMM, the very
    /// kernel the DoRA benchmark runs, so a throughput near it is expected and noise above it is
    /// flagged on the page ([`Peaks::suspect`]) but does not fail the run.
    pub fn suspect_bandwidth(&self, bytes: u64, ms: f64) -> Option<String> {
        self.suspect(bytes, 0, ms)
    }

    /// A throughput as a percentage of the floor that bounds it: `bytes`/`flops` in `ms` take
    /// at least `max(bytes / bandwidth, flops / rate)`; that bound over `ms`, × 100. `None`
    /// when the time or both amounts are not positive.
    pub fn pct_of_floor(&self, bytes: u64, flops: u64, ms: f64) -> Option<f64> {
        if ms.is_nan() || ms <= 0.0 || (bytes == 0 && flops == 0) {
            return None;
        }
        let t_mem = bytes as f64 / (self.bandwidth_gbps * 1e9);
        let t_flop = flops as f64 / (self.gflops * 1e9);
        Some(100.0 * t_mem.max(t_flop) / (ms * 1e-3))
    }
}

/// The datasheet memory bandwidth of a known GPU, GB/s, from its name: H200 (4.8 TB/s), H100
/// SXM (3.35 TB/s), H100 PCIe (2.0 TB/s), A100 80 GB (2.039 TB/s), A100 40 GB (1.555 TB/s).
pub fn datasheet_gbps(device: &str) -> Option<f64> {
    let d = device.to_ascii_uppercase();
    if d.contains("H200") {
        Some(4800.0)
    } else if d.contains("H100") && d.contains("PCIE") {
        Some(2000.0)
    } else if d.contains("H100") {
        Some(3350.0)
    } else if d.contains("A100") && d.contains("80GB") {
        Some(2039.0)
    } else if d.contains("A100") {
        Some(1555.0)
    } else {
        None
    }
}

fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: JIT compilation and autotune stay outside the timing
    (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Best GB/s of burn `flex`'s `sum()` over [`PROBE_ELEMS`] f32 on the host CPU.
pub fn flex_read_gbps(reps: usize) -> f64 {
    let device = Default::default();
    let x = Tensor::<burn::backend::Flex, 1>::random([PROBE_ELEMS], Distribution::Default, &device);
    let ms = best_ms(reps, || claimbench_paper::bench::read_back(x.clone().sum()));
    (PROBE_ELEMS * 4) as f64 / (ms * 1e-3) / 1e9
}

/// Probes burn's fused default backend `B`: a `sum_dim` read pass over [`PROBE_ELEMS`] f32 and
/// a 1024³ f32 matmul, each the best of `reps` after a warm-up (autotune stays outside).
fn burn_probe<B: Backend>(device: &B::Device, reps: usize) -> (Probe, f64) {
    let (rows, cols) = (1024usize, PROBE_ELEMS / 1024);
    let x = Tensor::<B, 2>::random([rows, cols], Distribution::Default, device);
    let read_ms = best_ms(reps, || {
        claimbench_paper::bench::read_back(x.clone().sum_dim(1))
    });
    let bw = (PROBE_ELEMS * 4) as f64 / (read_ms * 1e-3) / 1e9;
    let n = 1024usize;
    let a = Tensor::<B, 2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Default, device);
    let mm_ms = best_ms(reps, || {
        claimbench_paper::bench::read_back(a.clone().matmul(b.clone()).slice([0..1, 0..1]))
    });
    let gflops = 2.0 * (n * n * n) as f64 / (mm_ms * 1e-3) / 1e9;
    (
        Probe {
            what: "burn sum_dim (fused)".into(),
            gbps: bw,
        },
        gflops,
    )
}

/// The cubecl probe's variants on runtime `R`, best of `reps` each.
fn cubecl_probes<R: cubecl::Runtime>(device: &R::Device, reps: usize) -> Vec<Probe> {
    let client = R::client(device);
    claimbench_kernels::bandwidth::probe(&client, PROBE_ELEMS, PROBE_UNITS, reps)
        .into_iter()
        .map(|m| Probe {
            what: format!("cubecl {}", m.variant.name()),
            gbps: m.gbps(),
        })
        .collect()
}

/// Probes the device of burn backend `B` / cubecl runtime `R` with `reps` timed repetitions of
/// each pass (best kept), and the host CPU through flex: the floor is the highest bandwidth
/// measured, the FLOP rate the best of burn's matmul and this suite's GEMM.
pub fn probe<B: Backend, R: cubecl::Runtime>(
    device: &B::Device,
    runtime_device: &R::Device,
    backend: &str,
    name: &str,
    reps: usize,
) -> Peaks {
    // The FLOP rate first, then the device reads, then the host read (flex's thread pool last,
    // so it never shares the cores with a device probe).
    let own = own_gemm_gflops::<R>(runtime_device, reps);
    let (burn_read, burn_gflops) = burn_probe::<B>(device, reps);
    let mut probes = cubecl_probes::<R>(runtime_device, reps);
    probes.push(burn_read);
    let flex = flex_read_gbps(reps);
    probes.push(Probe {
        what: "flex sum (host CPU)".into(),
        gbps: flex,
    });
    let best = probes
        .iter()
        .max_by(|a, b| a.gbps.total_cmp(&b.gbps))
        .cloned()
        .expect("at least the flex probe");
    let gflops = burn_gflops.max(own);
    let listed: Vec<String> = probes
        .iter()
        .map(|p| format!("{} {:.1} GB/s", p.what, p.gbps))
        .collect();
    let datasheet = datasheet_gbps(name);
    let mut method = format!(
        "best of {reps} after a warm-up over {PROBE_ELEMS} f32 (131 MB): {}; the floor is the highest ({}). \
         FLOP rate: burn 1024³ f32 matmul {burn_gflops:.1} GFLOP/s, own GEMM (dora::base_matmul, 2048×1024·1024×1024) {own:.1} GFLOP/s; the higher is kept",
        listed.join(", "),
        best.what
    );
    if let Some(d) = datasheet {
        method.push_str(&format!(
            "; datasheet bandwidth {d:.0} GB/s: the floor is {:.0}% of it",
            100.0 * best.gbps / d
        ));
    }
    Peaks {
        backend: backend.into(),
        device: name.into(),
        bandwidth_gbps: best.gbps,
        gflops,
        method,
        flex_read_gbps: Some(flex),
        probes,
        datasheet_gbps: datasheet,
    }
}

/// The f32 rate of this suite's own GEMM (`dora::base_matmul`, the adapted layers' GEMM on
/// CPU-like devices) on a 2048 × 1024 · 1024 × 1024 product (the DoRA benchmark's base GEMM, so
/// the benchmark and the peak share a shape), GFLOP/s: best of `reps` (at least 3) after a
/// warm-up, each timed call ending with a device sync.
fn own_gemm_gflops<R: cubecl::Runtime>(device: &R::Device, reps: usize) -> f64 {
    use cubecl::prelude::CubeElement;
    let client = R::client(device);
    let (m, n) = (2048usize, 1024usize);
    let data: Vec<f32> = (0..m * n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let a = client.create_from_slice(f32::as_bytes(&data));
    let b = client.create_from_slice(f32::as_bytes(&data[..n * n]));
    let ms = best_ms(reps.max(3), || {
        let _y = claimbench_kernels::dora::base_matmul(&client, m, n, n, a.clone(), b.clone());
        let _ = cubecl::future::block_on(client.sync());
    });
    2.0 * (m * n * n) as f64 / (ms * 1e-3) / 1e9
}

/// Probes the kernel device of `plan` (none: `None`), catching a device failure as "no peaks".
/// Smoke runs time fewer repetitions (5, not 10): a floor is a best-of, and one measured too
/// low would flag honest benchmarks as suspect (exit 2).
pub fn probe_plan(
    plan: &crate::devices::Plan,
    scale: claimbench_paper::Scale,
    quiet: bool,
) -> Option<Peaks> {
    use crate::devices::Exec;
    let exec = plan.kernels?;
    let name = plan
        .kernel_device
        .as_ref()
        .map(|d| d.name.clone())
        .unwrap_or_default();
    let reps = match scale {
        claimbench_paper::Scale::Smoke => 5,
        _ => 10,
    };
    if !quiet {
        errln!("probing the peak bandwidth and FLOP rate of {name}…");
    }
    let result = std::panic::catch_unwind(|| match exec {
        Exec::Wgpu => Some(probe::<burn::backend::Wgpu, cubecl::wgpu::WgpuRuntime>(
            &Default::default(),
            &Default::default(),
            "wgpu",
            &name,
            reps,
        )),
        #[cfg(feature = "cuda")]
        Exec::Cuda => Some(probe::<burn::backend::Cuda, cubecl::cuda::CudaRuntime>(
            &Default::default(),
            &Default::default(),
            "cuda",
            &name,
            reps,
        )),
        _ => None,
    });
    match result {
        Ok(p) => {
            if let (Some(p), false) = (&p, quiet) {
                errln!(
                    "floors: {:.1} GB/s (flex on the host CPU: {:.1} GB/s), {:.1} GFLOP/s",
                    p.bandwidth_gbps,
                    p.flex_read_gbps.unwrap_or(f64::NAN),
                    p.gflops
                );
            }
            p
        }
        Err(_) => {
            errln!("warning: the peak probe failed on {name}; kernel pages show no roofline");
            None
        }
    }
}
