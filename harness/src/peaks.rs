//! Measured peaks of the kernel device: a short probe of its practical memory bandwidth and
//! floating-point rate, stored in the manifest so kernel pages can place each benchmark on a
//! roofline and flag throughputs above what the device can do (a suspect measurement, not a win).
//!
//! The probe uses burn's default fused backend on the device, like the baselines: bandwidth is a
//! `sum_dim` read pass over a 64 MiB f32 tensor (bytes read / time; an element-wise copy is not
//! used because fusion may skip work whose output is never read);
//! the FLOP rate is the best of a 1024³ f32 matmul (2·n³ / time), burn's or this suite's own GEMM
//! (`dora::base_matmul`), whichever is faster. Each timed region ends with a read back or a
//! device sync. These are *practical* peaks (what code reaches), not datasheet ones.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// Throughputs above the measured peak by more than this factor are flagged as suspect (the
/// probe is a practical peak, so a hand-written kernel may beat it slightly).
pub const SUSPECT_SLACK: f64 = 1.10;

/// Measured peaks of one device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Peaks {
    /// Backend probed (`wgpu`, `cuda`).
    pub backend: String,
    /// Device probed.
    pub device: String,
    /// Practical memory bandwidth, GB/s (10⁹ bytes per second).
    pub bandwidth_gbps: f64,
    /// Practical f32 rate, GFLOP/s.
    pub gflops: f64,
    /// How each was measured.
    pub method: String,
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
                "{gbps:.1} GB/s is above the measured peak bandwidth {:.1} GB/s",
                self.bandwidth_gbps
            ));
        }
        if gflops > self.gflops * SUSPECT_SLACK {
            return Some(format!(
                "{gflops:.1} GFLOP/s is above the measured peak {:.1} GFLOP/s",
                self.gflops
            ));
        }
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

/// Probes the device with `reps` timed repetitions of each pass (best kept).
pub fn probe<B: Backend>(device: &B::Device, backend: &str, name: &str, reps: usize) -> Peaks {
    let (rows, cols) = (4096usize, 4096usize);
    let x = Tensor::<B, 2>::random([rows, cols], Distribution::Default, device);
    let read_bytes = (rows * cols * 4) as f64;
    let read_ms = best_ms(reps, || {
        claimbench_paper::bench::read_back(x.clone().sum_dim(1))
    });
    let bw_read = read_bytes / (read_ms * 1e-3) / 1e9;

    let n = 1024usize;
    let a = Tensor::<B, 2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Default, device);
    let mm_ms = best_ms(reps, || {
        claimbench_paper::bench::read_back(a.clone().matmul(b.clone()).slice([0..1, 0..1]))
    });
    let gflops = 2.0 * (n * n * n) as f64 / (mm_ms * 1e-3) / 1e9;
    Peaks {
        backend: backend.into(),
        device: name.into(),
        bandwidth_gbps: bw_read,
        gflops,
        method: format!(
            "best of {reps} after a warm-up: sum_dim read pass over 4096×4096 f32 ({bw_read:.1} GB/s), 1024³ f32 matmul ({gflops:.1} GFLOP/s)"
        ),
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

/// Raises the FLOP rate of `p` to this suite's own GEMM's where that is faster (on lavapipe it
/// is about twice burn's matmul): a practical peak is the best rate any code here reaches.
fn with_own_gemm(mut p: Peaks, own: f64) -> Peaks {
    p.method.push_str(&format!(
        "; own GEMM (dora::base_matmul, 2048×1024·1024×1024) {own:.1} GFLOP/s"
    ));
    if own > p.gflops {
        p.gflops = own;
        p.method.push_str(", the higher, kept as the peak");
    }
    p
}

/// Probes the kernel device of `plan` (none: `None`), catching a device failure as "no peaks".
/// Smoke runs time fewer repetitions.
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
        claimbench_paper::Scale::Smoke => 2,
        _ => 5,
    };
    if !quiet {
        errln!("probing the peak bandwidth and FLOP rate of {name}…");
    }
    let result = std::panic::catch_unwind(|| match exec {
        Exec::Wgpu => Some(with_own_gemm(
            probe::<burn::backend::Wgpu>(&Default::default(), "wgpu", &name, reps),
            own_gemm_gflops::<cubecl::wgpu::WgpuRuntime>(&Default::default(), reps),
        )),
        #[cfg(feature = "cuda")]
        Exec::Cuda => Some(with_own_gemm(
            probe::<burn::backend::Cuda>(&Default::default(), "cuda", &name, reps),
            own_gemm_gflops::<cubecl::cuda::CudaRuntime>(&Default::default(), reps),
        )),
        _ => None,
    });
    match result {
        Ok(p) => {
            if let (Some(p), false) = (&p, quiet) {
                errln!(
                    "peaks: {:.1} GB/s, {:.1} GFLOP/s",
                    p.bandwidth_gbps,
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
