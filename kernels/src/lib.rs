//! Portable cubecl kernels for claimbench, each next to a plain-Rust reference.
//!
//! Architecture invariant: the kernels here know no paper and no burn. Kernel modules
//! (`token_logprob::kernel`) depend on cubecl alone and are launched through validated entry points
//! that return [`KernelError`]; the burn custom ops (CubeBackend kernel, Flex composition, Autodiff
//! backward, Fusion registration) live in [`burn_ops`], behind the `burn` feature.
//!
//! Layers, as in cubek: a validated public entry point (`token_logprob::forward`) → a crate-private
//! launcher that assumes validated input → the `#[cube(launch_unchecked)]` kernel.

pub mod bandwidth;
pub mod cross_entropy;
pub mod dora;
pub mod error;
pub mod gemm;
pub mod launch;
pub mod moe;
pub mod ppo;
pub mod preference;
pub mod sequences;
pub mod testing;
pub mod token_logprob;

#[cfg(feature = "burn")]
pub mod burn_ops;

pub use error::KernelError;

/// Whether burn's `autotune` is compiled in (feature `autotune`, on with `cuda`): burn's matmuls and
/// reductions are then chosen by cubecl's tuner instead of one fixed kernel. Off in the CPU build:
/// one of the tuner's matmul candidates is wrong on lavapipe (tests/kernels/matmul_autotune.rs).
pub const BURN_AUTOTUNE: bool = cfg!(feature = "autotune");
