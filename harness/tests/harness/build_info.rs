//! The manifest's `build` says whether burn's autotune is compiled in, and it is right: with
//! autotune, burn's wgpu matmul and reduction go through cubecl's tuner, which records them in
//! its cache before anything is timed; without it (the CPU build: see kernels/Cargo.toml) burn calls
//! one fixed kernel and the tuner records nothing new.

use burn::backend::Wgpu;
use burn::tensor::{Distribution, Tensor};

#[test]
fn the_recorded_autotune_setting_is_the_one_burn_runs_with() {
    let b = claimbench::env::build_info();
    assert!(b.crates.iter().any(|c| c.name == "burn"), "{b:?}");
    assert!(
        b.settings.iter().any(|s| s.contains("Fusion<")),
        "the wgpu backend is burn's fused default: {:?}",
        b.settings
    );
    if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>("autotune")
        .is_none()
    {
        return;
    }
    let before = claimbench::env::autotune_caches();
    let device = Default::default();
    // Odd shapes so that the tuner meets keys no earlier test in this process tuned.
    let x = Tensor::<Wgpu, 2>::random([193, 257], Distribution::Default, &device);
    let y = Tensor::<Wgpu, 2>::random([257, 131], Distribution::Default, &device);
    claimbench_paper::bench::read_back(x.clone().matmul(y));
    claimbench_paper::bench::read_back(x.sum_dim(1));
    let after = claimbench::env::autotune_caches();
    if b.autotune {
        assert!(
            after.iter().any(|c| c.contains("matmul"))
                && after.iter().any(|c| c.contains("reduce")),
            "autotune is on but cubecl's cache holds no tuned matmul and reduction: {after:?}"
        );
    } else {
        assert_eq!(before, after, "autotune is off but the tuner ran");
    }
}
