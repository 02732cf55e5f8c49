//! LoRA and DoRA linear layers on burn (arXiv 2402.09353): the base GEMM is the backend's own
//! matmul; the column norms, the low-rank term and the column scaling are fused around it.
//!
//! [`DoraBackend`] is implemented like the other ops of [`super`]: the cubecl kernels of
//! [`crate::dora`] on `CubeBackend`, the tensor-op composition on `Flex`, a handwritten backward on
//! `Autodiff<B, C>` and custom ops on `Fusion<B>`. Entry points:
//! - [`lora_linear`], [`dora_linear`] (the layers; [`NormGrad`] picks the detached gradient of
//!   Sec. 4.3 / Eq. 11 or the exact one of Eq. 6), [`dora_column_norms`], and
//!   [`dora_merge`] / [`dora_unmerge`], [`lora_merge`] / [`lora_unmerge`];
//! - [`lora_linear_composition`], [`dora_linear_peft`]: what a burn user writes without the
//!   kernels (PEFT's unfused forms), the benchmarks' baselines and the tests' oracles.
//!
//! Shapes (burn's `Linear` layout): `x [n, d_in]`, `W0 [d_in, d_out]`, `A [d_in, r]`,
//! `B [r, d_out]`, `m [d_out]`, output `[n, d_out]`; scaling `s = α / r`.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::Flex;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use super::{check_f32, float, prim};
use crate::KernelError;
use crate::dora::{self, AdapterSpec, Dims, NORM_EPS};

mod ops;
pub use ops::*;
mod autodiff;
mod cube;
mod layers;
pub use layers::*;
mod fusion;
