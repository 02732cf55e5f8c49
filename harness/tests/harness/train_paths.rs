//! The training demonstration gives the same losses through the flex composition and through the
//! wgpu kernel (same seed, same init, same data), and actually learns.

use burn::backend::{Flex, Wgpu};
use claimbench::kernel_suites::token_logprob::{TrainConfig, train};

const CFG: TrainConfig = TrainConfig {
    vocab: 64,
    fanout: 4,
    batch: 256,
    steps: 15,
    lr: 0.05,
};

#[test]
fn flex_training_learns_towards_the_entropy_floor() {
    let (losses, floor) =
        train::<Flex>(&Default::default(), TrainConfig { steps: 60, ..CFG }, 3).unwrap();
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        (first - (64f64).ln()).abs() < 0.1,
        "initial loss {first} should be near ln 64"
    );
    assert!(last < first - 1.0, "loss did not fall: {first} -> {last}");
    assert!(
        last > floor - 0.3,
        "loss {last} far below the entropy floor {floor}: the metric is wrong"
    );
}

#[test]
fn flex_and_wgpu_training_paths_agree() {
    // Skips (or fails under CLAIMBENCH_REQUIRE_DEVICE=1) without a wgpu device.
    if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>("training paths")
        .is_none()
    {
        return;
    }
    let (flex, _) = train::<Flex>(&Default::default(), CFG, 11).unwrap();
    let (wgpu, _) = train::<Wgpu>(&Default::default(), CFG, 11).unwrap();
    for (step, (f, w)) in flex.iter().zip(&wgpu).enumerate() {
        assert!(
            (f - w).abs() <= 1e-3 * f.abs().max(1.0),
            "step {step}: flex loss {f} vs wgpu (kernel) loss {w}"
        );
    }
}
