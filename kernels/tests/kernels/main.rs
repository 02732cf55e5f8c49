//! The kernel test suite, in one binary (each test binary links burn and wgpu: one link, not two).
//!
//! - `runtimes`: the cubecl kernels against their plain-Rust references, instantiated per runtime
//!   by the `testgen_*` macros (wgpu here; CUDA with `--features cuda`), plus input validation.
//! - `burn_ops`: the burn custom op on Flex, CubeBackend, fused Wgpu and Autodiff of each, against
//!   the references and burn's autodiff of the composition.

mod burn_ops;
mod dora_ops;
mod dora_speed;
mod dpo_ops;
mod matmul_autotune;
mod moe_ops;
mod runtimes;
mod sequences;
