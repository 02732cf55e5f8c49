//! The kernel suites: each kernel's checks (the composition on flex, the kernels on the device,
//! against plain-Rust references) and benchmarks (against the baselines a user would run), as
//! [`KernelSuite`](claimbench_paper::KernelSuite)s the registry lists.

/// `$body` with `$B` bound to burn's default (fused; autotune off in the CPU build, on with `cuda`: see Cargo.toml) backend of the kernel device
/// that `$exec` names, `$R` to its cubecl runtime and `$name` to its name (`"wgpu"`, `"cuda"`);
/// `$flex` on flex. The one place a kernel suite turns an [`Exec`](claimbench_paper::Exec) into
/// types; without the `cuda` feature a CUDA unit is an error.
macro_rules! with_backend {
    ($exec:expr, flex => $flex:expr, |$B:ident, $R:ident, $name:ident| $body:expr) => {
        match $exec {
            claimbench_paper::Exec::Flex => $flex,
            claimbench_paper::Exec::Wgpu => {
                #[allow(dead_code)]
                type $B = burn::backend::Wgpu;
                #[allow(dead_code)]
                type $R = cubecl::wgpu::WgpuRuntime;
                #[allow(unused_variables)]
                let $name = "wgpu";
                $body
            }
            #[cfg(feature = "cuda")]
            claimbench_paper::Exec::Cuda => {
                #[allow(dead_code)]
                type $B = burn::backend::Cuda;
                #[allow(dead_code)]
                type $R = cubecl::cuda::CudaRuntime;
                #[allow(unused_variables)]
                let $name = "cuda";
                $body
            }
            #[cfg(not(feature = "cuda"))]
            claimbench_paper::Exec::Cuda => {
                claimbench_paper::Outcome::error("built without the cuda feature".into())
            }
        }
    };
}

pub mod cross_entropy;
pub mod dora_linear;
pub mod dpo_kernels;
pub mod moe_layer;
pub mod ppo;
pub mod token_logprob;

use claimbench_paper::bench::BenchConfig;
use claimbench_paper::{RunsOn, Scale, UnitSpec};
use token_logprob::TrainConfig;

/// What the harness derives from a [`Scale`]: benchmark sample counts, the token-logprob
/// training demonstration.
pub trait ScaleBench {
    /// Benchmark sample counts.
    fn bench(self) -> BenchConfig;
    /// Benchmark sample counts of the MoE layer.
    fn moe_bench(self) -> BenchConfig;
    /// Training settings of the token-logprob demonstration.
    fn train(self) -> TrainConfig;
}

impl ScaleBench for Scale {
    /// Benchmark sample counts.
    fn bench(self) -> BenchConfig {
        match self {
            Scale::Smoke => BenchConfig {
                warmup: 2,
                rounds: 6,
                resamples: 10_000,
            },
            Scale::Small => BenchConfig {
                warmup: 3,
                rounds: 15,
                resamples: 10_000,
            },
            Scale::Full => BenchConfig {
                warmup: 5,
                rounds: 40,
                resamples: 10_000,
            },
        }
    }
    /// Benchmark sample counts of the MoE layer: one forward + backward at the shape takes
    /// tens of seconds on lavapipe, so fewer rounds than [`Scale::bench`] below `full`.
    fn moe_bench(self) -> BenchConfig {
        match self {
            Scale::Smoke => BenchConfig {
                warmup: 1,
                rounds: 3,
                resamples: 10_000,
            },
            Scale::Small => BenchConfig {
                warmup: 1,
                rounds: 6,
                resamples: 10_000,
            },
            Scale::Full => self.bench(),
        }
    }

    /// Training settings of the token-logprob demonstration.
    fn train(self) -> TrainConfig {
        let steps = match self {
            Scale::Smoke => 20,
            Scale::Small => 80,
            Scale::Full => 300,
        };
        TrainConfig {
            vocab: 64,
            fanout: 4,
            batch: 256,
            steps,
            lr: 0.05,
        }
    }
}

/// A kernel unit `<kernel>/<suffix>` with seed 0: a check (task `check`) or, with a `bench`
/// suffix, a benchmark (task `bench`).
pub fn kernel_unit(
    kernel: &str,
    suffix: &str,
    experiment: &str,
    arm: &str,
    runs_on: RunsOn,
) -> UnitSpec {
    let bench = suffix == "bench";
    UnitSpec {
        id: format!("{kernel}/{suffix}"),
        paper: "kernels".into(),
        experiment: experiment.into(),
        arm: arm.into(),
        seed: Some(0),
        task: if bench { "bench" } else { "check" },
        runs_on,
        bench,
        depends_on: Vec::new(),
    }
}
