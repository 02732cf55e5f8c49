//! Device discovery and the backend plan of a run: which backend trains, which runs kernels.

use serde::{Deserialize, Serialize};

use crate::error::input_error;

/// One device a backend can run on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceInfo {
    /// `flex`, `wgpu` or `cuda`.
    pub backend: String,
    /// Adapter or device name (e.g. "llvmpipe (LLVM 15.0.7, 256 bits)").
    pub name: String,
    /// Device type: "cpu", "discrete-gpu", "integrated-gpu", "virtual-gpu", "other".
    pub kind: String,
    /// Driver and version, where the API reports one.
    pub driver: String,
    /// Graphics/compute API (Vulkan, Metal, CUDA, host).
    pub api: String,
}

impl DeviceInfo {
    /// A one-line label, e.g. "wgpu: llvmpipe (cpu, Vulkan, Mesa 22.3.6)".
    pub fn label(&self) -> String {
        format!(
            "{}: {} ({}, {}, {})",
            self.backend, self.name, self.kind, self.api, self.driver
        )
    }
}

/// burn's `flex` CPU backend: always present.
pub fn flex_device() -> DeviceInfo {
    DeviceInfo {
        backend: "flex".into(),
        name: "host CPU".into(),
        kind: "cpu".into(),
        driver: "burn-flex 0.21.0".into(),
        api: "host".into(),
    }
}

/// The wgpu adapters found, best first (discrete, integrated, virtual, CPU), as cubecl's default
/// device picks. Mesa lavapipe shows up as a `cpu` Vulkan adapter.
pub fn wgpu_adapters() -> Vec<DeviceInfo> {
    let found = std::panic::catch_unwind(|| {
        let instance = wgpu::Instance::default();
        // cubecl's wgpu runtime asks for the primary APIs (Vulkan, Metal, DX12), not GL: list
        // only adapters it can use.
        cubecl::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .into_iter()
            .map(|a| a.get_info())
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    let rank = |t: &wgpu::DeviceType| match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let mut found = found;
    found.sort_by_key(|i| rank(&i.device_type));
    found
        .into_iter()
        .map(|i| DeviceInfo {
            backend: "wgpu".into(),
            name: i.name.clone(),
            kind: match i.device_type {
                wgpu::DeviceType::DiscreteGpu => "discrete-gpu",
                wgpu::DeviceType::IntegratedGpu => "integrated-gpu",
                wgpu::DeviceType::VirtualGpu => "virtual-gpu",
                wgpu::DeviceType::Cpu => "cpu",
                wgpu::DeviceType::Other => "other",
            }
            .into(),
            driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
            api: format!("{:?}", i.backend),
        })
        .collect()
}

/// CUDA devices, when built with the `cuda` feature and a driver is present.
#[cfg(feature = "cuda")]
pub fn cuda_devices() -> Vec<DeviceInfo> {
    use cubecl::Runtime;
    // Without a driver cudarc panics (on cubecl's device thread too); the probe keeps that quiet.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(|| {
        let client = cubecl::cuda::CudaRuntime::client(&Default::default());
        let props = client.properties();
        format!(
            "{} SMs",
            props.hardware.num_streaming_multiprocessors.unwrap_or(0)
        )
    });
    std::panic::set_hook(hook);
    match ok {
        Ok(sms) => vec![DeviceInfo {
            backend: "cuda".into(),
            name: format!("CUDA device 0 ({sms})"),
            kind: "discrete-gpu".into(),
            driver: "libcuda (loaded at run time)".into(),
            api: "CUDA".into(),
        }],
        Err(_) => Vec::new(),
    }
}

/// CUDA devices: none without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub fn cuda_devices() -> Vec<DeviceInfo> {
    Vec::new()
}

/// The `--backend` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// Train on flex; run kernels on CUDA if built and present, else on wgpu if a device exists.
    Auto,
    /// Everything on flex; kernel checks and benchmarks are skipped.
    Flex,
    /// Train and run kernels on wgpu.
    Wgpu,
    /// Train and run kernels on CUDA (needs the `cuda` feature).
    Cuda,
}

/// A backend that executes units (claimbench-paper: units dispatch on it).
pub use claimbench_paper::Exec;

/// What a run executes where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The `--backend` asked for.
    pub choice: BackendChoice,
    /// Backend of training units.
    pub train: Exec,
    /// Device of training units.
    pub train_device: DeviceInfo,
    /// Backend of kernel checks and benchmarks, if any.
    pub kernels: Option<Exec>,
    /// Device of kernel units, if any.
    pub kernel_device: Option<DeviceInfo>,
    /// Why kernel units are skipped, when they are.
    pub skip_reason: Option<String>,
}

/// How to get a device, for messages.
pub const DEVICE_HINT: &str = "install a Vulkan driver (Debian: `apt-get install mesa-vulkan-drivers` gives the lavapipe CPU device) or a GPU driver";

/// Resolves `--backend` against the devices found. Errors (exit 4) when an explicit backend has no
/// device, or when `require_device` and `auto` finds no kernel device.
pub fn plan(choice: BackendChoice, require_device: bool) -> anyhow::Result<Plan> {
    let wgpu = || wgpu_adapters().into_iter().next();
    let cuda = || cuda_devices().into_iter().next();
    let mut plan = Plan {
        choice,
        train: Exec::Flex,
        train_device: flex_device(),
        kernels: None,
        kernel_device: None,
        skip_reason: None,
    };
    match choice {
        BackendChoice::Auto => {
            if let Some(d) = cuda() {
                plan.kernels = Some(Exec::Cuda);
                plan.kernel_device = Some(d);
            } else if let Some(d) = wgpu() {
                plan.kernels = Some(Exec::Wgpu);
                plan.kernel_device = Some(d);
            } else {
                plan.skip_reason = Some(format!(
                    "no wgpu or CUDA device found: kernel checks and benchmarks were skipped; {DEVICE_HINT}"
                ));
            }
        }
        BackendChoice::Flex => {
            plan.skip_reason =
                Some("--backend flex: kernel checks and benchmarks were skipped".into());
        }
        BackendChoice::Wgpu => {
            let d = wgpu().ok_or_else(|| {
                input_error(format!(
                    "--backend wgpu: no wgpu adapter found; {DEVICE_HINT}"
                ))
            })?;
            plan.train = Exec::Wgpu;
            plan.train_device = d.clone();
            plan.kernels = Some(Exec::Wgpu);
            plan.kernel_device = Some(d);
        }
        BackendChoice::Cuda => {
            if !cfg!(feature = "cuda") {
                return Err(input_error(
                    "--backend cuda: this binary was built without the `cuda` feature (cargo build --release --features cuda)",
                ));
            }
            let d = cuda().ok_or_else(|| {
                input_error("--backend cuda: no CUDA device or driver (libcuda) found")
            })?;
            plan.train = Exec::Cuda;
            plan.train_device = d.clone();
            plan.kernels = Some(Exec::Cuda);
            plan.kernel_device = Some(d);
        }
    }
    // An explicit `--backend flex` is a choice, not a missing device.
    if require_device && plan.kernels.is_none() && choice == BackendChoice::Auto {
        return Err(input_error(format!(
            "CLAIMBENCH_REQUIRE_DEVICE=1 but kernel checks would be skipped: {}",
            plan.skip_reason.clone().unwrap_or_default()
        )));
    }
    Ok(plan)
}
