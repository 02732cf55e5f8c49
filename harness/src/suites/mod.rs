//! The registry of units: what `claimbench run` can execute, their ids, and how each one runs on
//! the backend the plan picked. Reproductions register here (through their crates) as they land.

pub mod continual;
pub mod cross_entropy;
pub mod dora;
pub mod dpo_kernels;
pub mod dpo_ppo;
pub mod mixtral;
pub mod token_logprob;

use burn::backend::{Autodiff, Flex, Wgpu};

use crate::bench::BenchConfig;
use crate::configs::PaperConfigs;
use crate::devices::{Exec, Plan};
use crate::store::{MetricRow, UnitRecord, UnitStatus};
use claimbench_kernels::testing::GemmPrecision;
use token_logprob::TrainConfig;

/// The known top-level ids: kernels and papers (contracts.md). A paper id selects the units of
/// the kernels it uses until its own reproduction registers units.
pub const PAPERS: &[(&str, &[&str])] = &[
    ("mixtral", &[mixtral::KERNEL]),
    ("dora", &[dora::KERNEL]),
    ("continual", &[token_logprob::KERNEL, cross_entropy::KERNEL]),
    (
        "dpo-ppo",
        &[
            token_logprob::KERNEL,
            dpo_kernels::DPO_KERNEL,
            dpo_kernels::PPO_KERNEL,
        ],
    ),
];

/// Run length and sample counts (the one type every reproduction takes). Benchmark shapes never
/// change with the scale.
pub use claimbench_paper::Scale;

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

/// What a unit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Token-logprob on flex (the composition) vs the reference.
    TokenLogprobCheckFlex,
    /// Token-logprob kernels on the kernel device vs the reference.
    TokenLogprobCheckDevice,
    /// Token-logprob benchmarks on the kernel device.
    TokenLogprobBench,
    /// Token-logprob training demonstration on the training backend.
    TokenLogprobTrain,
    /// Cross-entropy on flex (the composition) vs the reference.
    CrossEntropyCheckFlex,
    /// Cross-entropy kernels on the kernel device vs the reference.
    CrossEntropyCheckDevice,
    /// Cross-entropy benchmarks on the kernel device.
    CrossEntropyBench,
    /// One arm × seed of the continual pre-training reproduction, on the training backend.
    ContinualArm,
    /// The exact tabular claims of the DPO-vs-PPO paper (f64, CPU).
    DpoTable1,
    /// The DPO path on flex (the composition) vs the f64 reference.
    DpoCheckFlex,
    /// The DPO kernels on the kernel device vs the f64 reference.
    DpoCheckDevice,
    /// The fused DPO path's benchmark on the kernel device.
    DpoBench,
    /// The PPO kernels on the kernel device vs the f64 references.
    PpoCheckDevice,
    /// GAE on the device vs the host loop.
    GaeBench,
    /// One seed of the DPO-vs-PPO 8×8 preference experiments, on the training backend.
    DpoFig1,
    /// One rung × seed of the PPO ablation ladder, on the training backend.
    DpoLadder,
    /// The DoRA reproduction's learning-rate sweep on the tuning seeds, on the training backend.
    DoraTune,
    /// One seed of the DoRA experiments (capacity, control, adaptation, ΔM/ΔD analysis).
    DoraSeed,
    /// The fused LoRA/DoRA layers on flex (the composition) vs the f64 references.
    DoraCheckFlex,
    /// The fused LoRA/DoRA kernels on the kernel device vs the f64 references.
    DoraCheckDevice,
    /// The fused DoRA layer's benchmark on the kernel device.
    DoraBench,
    /// One seed of the Mixtral arms (dense, MoE with and without the aux loss, dense-total).
    MixtralSeed,
    /// The MoE layer on flex (the composition) vs the f64 reference and the loop's autodiff.
    MoeCheckFlex,
    /// The MoE kernels on the kernel device vs the f64 reference and the loop's autodiff.
    MoeCheckDevice,
    /// The MoE layer's benchmark on the kernel device.
    MoeBench,
}

impl Job {
    /// A benchmark job (what `claimbench bench` runs).
    pub fn is_bench(self) -> bool {
        matches!(
            self,
            Job::TokenLogprobBench
                | Job::CrossEntropyBench
                | Job::DpoBench
                | Job::GaeBench
                | Job::DoraBench
                | Job::MoeBench
        )
    }
}

/// One registered unit.
#[derive(Clone, Debug)]
pub struct UnitSpec {
    /// Unit id, e.g. `kernels/token-logprob/train/seed-0`.
    pub id: String,
    /// Paper id or `kernels`.
    pub paper: String,
    /// Experiment name.
    pub experiment: String,
    /// Arm name.
    pub arm: String,
    /// Seed, for seeded units.
    pub seed: Option<u64>,
    /// What it does.
    pub job: Job,
    /// Needs a kernel device (wgpu or CUDA).
    pub needs_device: bool,
}

/// Every unit at these seeds with these settings, in execution order.
pub fn all_units(seeds: &[u64], configs: &PaperConfigs) -> Vec<UnitSpec> {
    let k = token_logprob::KERNEL;
    let unit = |id: String, experiment: &str, arm: &str, seed, job, needs_device| UnitSpec {
        id,
        paper: "kernels".into(),
        experiment: experiment.into(),
        arm: arm.into(),
        seed,
        job,
        needs_device,
    };
    let mut units = vec![
        unit(
            format!("{k}/check/flex"),
            "token-logprob-check",
            "flex-composition",
            Some(0),
            Job::TokenLogprobCheckFlex,
            false,
        ),
        unit(
            format!("{k}/check/device"),
            "token-logprob-check",
            "fused-kernel",
            Some(0),
            Job::TokenLogprobCheckDevice,
            true,
        ),
    ];
    for &s in seeds {
        units.push(unit(
            format!("{k}/train/seed-{s}"),
            "token-logprob-train",
            "bigram-adamw",
            Some(s),
            Job::TokenLogprobTrain,
            false,
        ));
    }
    units.push(unit(
        format!("{k}/bench"),
        "token-logprob-bench",
        "fused-vs-composition",
        Some(0),
        Job::TokenLogprobBench,
        true,
    ));
    let c = cross_entropy::KERNEL;
    units.extend([
        unit(
            format!("{c}/check/flex"),
            "cross-entropy-check",
            "flex-composition",
            Some(0),
            Job::CrossEntropyCheckFlex,
            false,
        ),
        unit(
            format!("{c}/check/device"),
            "cross-entropy-check",
            "fused-kernel",
            Some(0),
            Job::CrossEntropyCheckDevice,
            true,
        ),
        unit(
            format!("{c}/bench"),
            "cross-entropy-bench",
            "fused-vs-burn-cross-entropy",
            Some(0),
            Job::CrossEntropyBench,
            true,
        ),
    ]);
    let (d, p) = (dpo_kernels::DPO_KERNEL, dpo_kernels::PPO_KERNEL);
    units.extend([
        unit(
            format!("{d}/check/flex"),
            "dpo-loss-check",
            "flex-composition",
            Some(0),
            Job::DpoCheckFlex,
            false,
        ),
        unit(
            format!("{d}/check/device"),
            "dpo-loss-check",
            "fused-kernels",
            Some(0),
            Job::DpoCheckDevice,
            true,
        ),
        unit(
            format!("{d}/bench"),
            "dpo-loss-bench",
            "fused-vs-composition",
            Some(0),
            Job::DpoBench,
            true,
        ),
        unit(
            format!("{p}/check/device"),
            "ppo-check",
            "kernels",
            Some(0),
            Job::PpoCheckDevice,
            true,
        ),
        unit(
            format!("{p}/bench"),
            "gae-bench",
            "device-vs-host-loop",
            Some(0),
            Job::GaeBench,
            true,
        ),
    ]);
    units.extend(continual::units(&configs.continual, seeds));
    units.extend(dpo_ppo::units(seeds));
    units.extend(dora::kernel_units());
    units.extend(dora::units(seeds));
    units.extend(mixtral::kernel_units());
    units.extend(mixtral::units(seeds));
    units
}

/// Every id `--only` accepts: paper ids, kernel ids and unit ids.
pub fn known_ids(units: &[UnitSpec]) -> Vec<String> {
    let mut ids: Vec<String> = PAPERS.iter().map(|(p, _)| p.to_string()).collect();
    ids.extend(units.iter().map(|u| u.id.clone()));
    ids.push(token_logprob::KERNEL.to_string());
    ids.push(cross_entropy::KERNEL.to_string());
    ids.push(dpo_kernels::DPO_KERNEL.to_string());
    ids.push(dpo_kernels::PPO_KERNEL.to_string());
    ids.push(dora::KERNEL.to_string());
    ids.push(mixtral::KERNEL.to_string());
    ids.sort();
    ids.dedup();
    ids
}

/// The units `--only` selects (by id prefix on path segments; a paper id selects its kernels).
/// An id that selects nothing is an error listing the known ids.
pub fn select(units: Vec<UnitSpec>, only: &[String]) -> anyhow::Result<Vec<UnitSpec>> {
    if only.is_empty() {
        return Ok(units);
    }
    let known = known_ids(&units);
    let mut prefixes = Vec::new();
    for o in only {
        let o = o.trim().trim_end_matches('/');
        let mut hit = false;
        if let Some((_, kernels)) = PAPERS.iter().find(|(p, _)| *p == o) {
            prefixes.extend(kernels.iter().map(|k| k.to_string()));
            hit = !kernels.is_empty();
        }
        if units
            .iter()
            .any(|u| u.id == o || u.id.starts_with(&format!("{o}/")) || u.paper == o)
        {
            prefixes.push(o.to_string());
            hit = true;
        }
        if !hit {
            return Err(crate::error::input_error(format!(
                "--only {o}: matches no registered unit; known ids: {}",
                known.join(", ")
            )));
        }
    }
    Ok(units
        .into_iter()
        .filter(|u| {
            prefixes
                .iter()
                .any(|p| u.id == *p || u.id.starts_with(&format!("{p}/")) || u.paper == *p)
        })
        .collect())
}

/// What running a unit produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Passed, correctness failure or error.
    pub status: Option<UnitStatus>,
    /// Summary or reason.
    pub message: String,
    /// Metrics.
    pub metrics: Vec<MetricRow>,
    /// Benchmark comparisons.
    pub benchmarks: Vec<crate::bench::BenchEntry>,
}

impl Outcome {
    /// A passed unit.
    pub fn passed(message: String, metrics: Vec<MetricRow>) -> Self {
        Self {
            status: Some(UnitStatus::Passed),
            message,
            metrics,
            benchmarks: Vec::new(),
        }
    }
    /// A correctness failure.
    pub fn correctness(message: String) -> Self {
        Self {
            status: Some(UnitStatus::CorrectnessFailure),
            message,
            ..Default::default()
        }
    }
    /// An error.
    pub fn error(message: String) -> Self {
        Self {
            status: Some(UnitStatus::Error),
            message,
            ..Default::default()
        }
    }
}

/// Runs `unit` on the backends of `plan`. Returns the backend and device it ran on.
pub fn execute(
    unit: &UnitSpec,
    plan: &Plan,
    scale: Scale,
    configs: &PaperConfigs,
    seeds: &[u64],
    tick: &mut dyn FnMut(),
) -> (Exec, String, Outcome) {
    let seed = unit.seed.unwrap_or(0);
    match unit.job {
        Job::DpoTable1 => (Exec::Flex, plan_flex_name(), dpo_ppo::run_unit(seeds)),
        Job::DpoFig1 | Job::DpoLadder => {
            let cfg = &configs.dpo_ppo;
            let fig1 = unit.job == Job::DpoFig1;
            let out = match plan.train {
                Exec::Flex if fig1 => {
                    dpo_ppo::run_fig1::<Autodiff<Flex>>(cfg, unit, &Default::default())
                }
                Exec::Flex => dpo_ppo::run_ladder::<Autodiff<Flex>>(cfg, unit, &Default::default()),
                Exec::Wgpu if fig1 => {
                    dpo_ppo::run_fig1::<Autodiff<Wgpu>>(cfg, unit, &Default::default())
                }
                Exec::Wgpu => dpo_ppo::run_ladder::<Autodiff<Wgpu>>(cfg, unit, &Default::default()),
                #[cfg(feature = "cuda")]
                Exec::Cuda if fig1 => dpo_ppo::run_fig1::<Autodiff<burn::backend::Cuda>>(
                    cfg,
                    unit,
                    &Default::default(),
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda => dpo_ppo::run_ladder::<Autodiff<burn::backend::Cuda>>(
                    cfg,
                    unit,
                    &Default::default(),
                ),
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
            tick();
            (plan.train, plan.train_device.name.clone(), out)
        }
        Job::DoraTune | Job::DoraSeed => {
            let cfg = &configs.dora;
            let tune = unit.job == Job::DoraTune;
            let out = match plan.train {
                Exec::Flex if tune => dora::run_tune::<Autodiff<Flex>>(cfg, &Default::default()),
                Exec::Flex => dora::run_seed_unit::<Autodiff<Flex>>(cfg, unit, &Default::default()),
                Exec::Wgpu if tune => dora::run_tune::<Autodiff<Wgpu>>(cfg, &Default::default()),
                Exec::Wgpu => dora::run_seed_unit::<Autodiff<Wgpu>>(cfg, unit, &Default::default()),
                #[cfg(feature = "cuda")]
                Exec::Cuda if tune => {
                    dora::run_tune::<Autodiff<burn::backend::Cuda>>(cfg, &Default::default())
                }
                #[cfg(feature = "cuda")]
                Exec::Cuda => dora::run_seed_unit::<Autodiff<burn::backend::Cuda>>(
                    cfg,
                    unit,
                    &Default::default(),
                ),
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
            tick();
            (plan.train, plan.train_device.name.clone(), out)
        }
        Job::MixtralSeed => {
            let cfg = &configs.mixtral;
            // The kernels' CubeBackend, not burn's fused default: its fusion computes the MoE
            // loop wrongly in burn 0.21.
            type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;
            let out = match plan.train {
                Exec::Flex => {
                    mixtral::run_seed_unit::<Autodiff<Flex>>(cfg, unit, &Default::default())
                }
                Exec::Wgpu => {
                    mixtral::run_seed_unit::<Autodiff<CubeWgpu>>(cfg, unit, &Default::default())
                }
                #[cfg(feature = "cuda")]
                Exec::Cuda => mixtral::run_seed_unit::<
                    Autodiff<burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>>,
                >(cfg, unit, &Default::default()),
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
            tick();
            (plan.train, plan.train_device.name.clone(), out)
        }
        Job::MoeCheckFlex => (
            Exec::Flex,
            plan_flex_name(),
            mixtral::check::<Flex>(&Default::default(), seed, GemmPrecision::F32),
        ),
        Job::MoeCheckDevice | Job::MoeBench => {
            type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;
            let exec = plan
                .kernels
                .expect("device units are skipped without a kernel device");
            let name = plan
                .kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let check = unit.job == Job::MoeCheckDevice;
            let out = match exec {
                Exec::Wgpu if check => mixtral::check::<CubeWgpu>(
                    &Default::default(),
                    seed,
                    GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>(),
                ),
                Exec::Wgpu => mixtral::bench::<CubeWgpu, burn::backend::Wgpu>(
                    &Default::default(),
                    "wgpu (unfused CubeBackend; the dense baseline fused)",
                    &name,
                    scale.moe_bench(),
                    seed,
                    tick,
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda if check => mixtral::check::<
                    burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>,
                >(
                    &Default::default(),
                    seed,
                    GemmPrecision::of_default::<cubecl::cuda::CudaRuntime>(),
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda => mixtral::bench::<
                    burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>,
                    burn::backend::Cuda,
                >(
                    &Default::default(),
                    "cuda (unfused CubeBackend; the dense baseline fused)",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                _ => Outcome::error(format!("no kernel backend {exec:?} in this build")),
            };
            (exec, name, out)
        }
        Job::DoraCheckFlex => (
            Exec::Flex,
            plan_flex_name(),
            dora::check::<Flex>(&Default::default(), seed, GemmPrecision::F32),
        ),
        Job::DoraCheckDevice | Job::DoraBench => {
            let exec = plan
                .kernels
                .expect("device units are skipped without a kernel device");
            let name = plan
                .kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let check = unit.job == Job::DoraCheckDevice;
            let out = match exec {
                Exec::Wgpu if check => dora::check::<Wgpu>(
                    &Default::default(),
                    seed,
                    GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>(),
                ),
                Exec::Wgpu => dora::bench::<Wgpu>(
                    &Default::default(),
                    GemmPrecision::of_default::<cubecl::wgpu::WgpuRuntime>(),
                    "wgpu",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda if check => dora::check::<burn::backend::Cuda>(
                    &Default::default(),
                    seed,
                    GemmPrecision::of_default::<cubecl::cuda::CudaRuntime>(),
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda => dora::bench::<burn::backend::Cuda>(
                    &Default::default(),
                    GemmPrecision::of_default::<cubecl::cuda::CudaRuntime>(),
                    "cuda",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                _ => Outcome::error(format!("no kernel backend {exec:?} in this build")),
            };
            (exec, name, out)
        }
        Job::DpoCheckFlex => (
            Exec::Flex,
            plan_flex_name(),
            dpo_kernels::check_dpo::<Flex>(&Default::default(), seed),
        ),
        Job::DpoCheckDevice | Job::DpoBench | Job::PpoCheckDevice | Job::GaeBench => {
            let exec = plan
                .kernels
                .expect("device units are skipped without a kernel device");
            let name = plan
                .kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let out = match exec {
                Exec::Wgpu => dpo_device_unit::<Wgpu, cubecl::wgpu::WgpuRuntime>(
                    unit.job, "wgpu", &name, scale, seed, tick,
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda => dpo_device_unit::<burn::backend::Cuda, cubecl::cuda::CudaRuntime>(
                    unit.job, "cuda", &name, scale, seed, tick,
                ),
                _ => Outcome::error(format!("no kernel backend {exec:?} in this build")),
            };
            (exec, name, out)
        }
        Job::ContinualArm => {
            let cfg = &configs.continual;
            let out = match plan.train {
                Exec::Flex => {
                    continual::run_unit::<Autodiff<Flex>>(cfg, unit, &Default::default(), tick)
                }
                Exec::Wgpu => {
                    continual::run_unit::<Autodiff<Wgpu>>(cfg, unit, &Default::default(), tick)
                }
                #[cfg(feature = "cuda")]
                Exec::Cuda => continual::run_unit::<Autodiff<burn::backend::Cuda>>(
                    cfg,
                    unit,
                    &Default::default(),
                    tick,
                ),
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
            (plan.train, plan.train_device.name.clone(), out)
        }
        Job::TokenLogprobCheckFlex => (
            Exec::Flex,
            plan_flex_name(),
            token_logprob::check::<Flex>(&Default::default(), seed),
        ),
        Job::CrossEntropyCheckFlex => (
            Exec::Flex,
            plan_flex_name(),
            cross_entropy::check::<Flex>(&Default::default(), seed),
        ),
        Job::CrossEntropyCheckDevice | Job::CrossEntropyBench => {
            let exec = plan
                .kernels
                .expect("device units are skipped without a kernel device");
            let name = plan
                .kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let check = unit.job == Job::CrossEntropyCheckDevice;
            let out = match exec {
                Exec::Wgpu if check => cross_entropy::check::<Wgpu>(&Default::default(), seed),
                Exec::Wgpu => cross_entropy::bench::<Wgpu>(
                    &Default::default(),
                    "wgpu",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                #[cfg(feature = "cuda")]
                Exec::Cuda if check => {
                    cross_entropy::check::<burn::backend::Cuda>(&Default::default(), seed)
                }
                #[cfg(feature = "cuda")]
                Exec::Cuda => cross_entropy::bench::<burn::backend::Cuda>(
                    &Default::default(),
                    "cuda",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                _ => Outcome::error(format!("no kernel backend {exec:?} in this build")),
            };
            (exec, name, out)
        }
        Job::TokenLogprobCheckDevice | Job::TokenLogprobBench => {
            let exec = plan
                .kernels
                .expect("device units are skipped without a kernel device");
            let name = plan
                .kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let out = match (exec, unit.job) {
                (Exec::Wgpu, Job::TokenLogprobCheckDevice) => {
                    token_logprob::check::<Wgpu>(&Default::default(), seed)
                }
                (Exec::Wgpu, _) => token_logprob::bench::<Wgpu>(
                    &Default::default(),
                    "wgpu",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                #[cfg(feature = "cuda")]
                (Exec::Cuda, Job::TokenLogprobCheckDevice) => {
                    token_logprob::check::<burn::backend::Cuda>(&Default::default(), seed)
                }
                #[cfg(feature = "cuda")]
                (Exec::Cuda, _) => token_logprob::bench::<burn::backend::Cuda>(
                    &Default::default(),
                    "cuda",
                    &name,
                    scale.bench(),
                    seed,
                    tick,
                ),
                _ => Outcome::error(format!("no kernel backend {exec:?} in this build")),
            };
            (exec, name, out)
        }
        Job::TokenLogprobTrain => {
            let cfg = scale.train();
            let out = match plan.train {
                Exec::Flex => token_logprob::train_unit::<Flex>(&Default::default(), cfg, seed),
                Exec::Wgpu => token_logprob::train_unit::<Wgpu>(&Default::default(), cfg, seed),
                #[cfg(feature = "cuda")]
                Exec::Cuda => {
                    token_logprob::train_unit::<burn::backend::Cuda>(&Default::default(), cfg, seed)
                }
                #[cfg(not(feature = "cuda"))]
                Exec::Cuda => Outcome::error("built without the cuda feature".into()),
            };
            (plan.train, plan.train_device.name.clone(), out)
        }
    }
}

/// Runs a device unit of the DPO/PPO kernel families on burn backend `B` (the fused default) and
/// cubecl runtime `R` (the same device).
fn dpo_device_unit<B, R>(
    job: Job,
    backend: &str,
    device_name: &str,
    scale: Scale,
    seed: u64,
    tick: &mut dyn FnMut(),
) -> Outcome
where
    B: claimbench_kernels::burn_ops::PreferenceBackend,
    B::Device: Default,
    R: cubecl::Runtime,
    R::Device: Default,
{
    let client = || R::client(&Default::default());
    match job {
        Job::DpoCheckDevice => dpo_kernels::check_dpo::<B>(&Default::default(), seed),
        Job::DpoBench => dpo_kernels::bench_dpo::<B>(
            &Default::default(),
            backend,
            device_name,
            scale.bench(),
            seed,
            tick,
        ),
        Job::PpoCheckDevice => dpo_kernels::check_ppo::<R>(&client(), seed),
        _ => {
            dpo_kernels::bench_gae::<R>(&client(), backend, device_name, scale.bench(), seed, tick)
        }
    }
}

fn plan_flex_name() -> String {
    crate::devices::flex_device().name
}

/// The value of the step-less metric `name` of a unit, if recorded.
pub(crate) fn scalar(u: &UnitRecord, name: &str) -> Option<f64> {
    u.metrics
        .iter()
        .find(|m| m.metric == name && m.step.is_none())
        .map(|m| m.value)
}

/// Mean and 95% t-interval half-width of `xs` (NaN half-width below two values); `None` if empty.
pub(crate) fn mean_pm(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    match claimbench_claims::stats::mean_ci(xs, claimbench_claims::DEFAULT_ALPHA, 1) {
        Ok(s) => Some((s.mean, 0.5 * (s.ci[1] - s.ci[0]))),
        Err(_) => Some((xs.iter().sum::<f64>() / xs.len() as f64, f64::NAN)),
    }
}

/// `mean ± half-width` with 3 decimals, `–` for none.
pub(crate) fn fmt_pm(v: Option<(f64, f64)>) -> String {
    match v {
        None => "–".into(),
        Some((m, h)) if h.is_finite() => format!("{m:.3} ± {h:.3}"),
        Some((m, _)) => format!("{m:.3}"),
    }
}

/// The seed-mean of `metric` per logged step over `units`.
pub(crate) fn mean_curve(units: &[&UnitRecord], metric: &str) -> Vec<(f64, f64)> {
    let mut by_step: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for u in units {
        for m in u.metrics.iter().filter(|m| m.metric == metric) {
            if let Some(s) = m.step {
                by_step.entry(s).or_default().push(m.value);
            }
        }
    }
    by_step
        .into_iter()
        .map(|(s, v)| (s as f64, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}
