//! The burn custom op on every backend it is implemented for: values and gradients against the
//! plain-Rust reference and against burn's autodiff of the tensor-op composition, plus the
//! validation errors. Backends: Flex (composition), CubeBackend<wgpu> (kernel), burn's fused Wgpu
//! (the Fusion registration), Autodiff of each; CUDA with the `cuda` feature.

use burn::backend::{Flex, Wgpu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{
    TokenLogprobBackend, logprobs_and_grad, token_logprobs, token_logprobs_composition,
};
use claimbench_kernels::testing::token_logprob::{backward_tolerance, forward_tolerance};
use claimbench_kernels::testing::{
    assert_close, client_or_skip, logits_and_targets, offset_logits, uniform,
};
use claimbench_kernels::token_logprob::{backward_reference, forward_reference};

type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

fn has_wgpu() -> bool {
    client_or_skip::<cubecl::wgpu::WgpuRuntime>("burn_ops wgpu tests").is_some()
}

/// The fused op (validated entry point) under autodiff: `(logprobs, grad)`.
fn fused<B: TokenLogprobBackend>(
    l: &[f32],
    t: &[i64],
    g: &[f32],
    dims: [usize; 3],
) -> (Vec<f32>, Vec<f32>) {
    logprobs_and_grad::<B>(token_logprobs, &Default::default(), l, t, g, dims).expect("valid input")
}

/// burn's autodiff of `log_softmax + gather`: `(logprobs, grad)`.
fn composed<B: Backend>(l: &[f32], t: &[i64], g: &[f32], dims: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    let op = |x, ids| Ok(token_logprobs_composition(x, ids));
    logprobs_and_grad::<B>(op, &Default::default(), l, t, g, dims).expect("composition cannot fail")
}

/// Shapes `(B, T, V, scale)`: V = 1, odd V, T = 1, B·T not a multiple of the cube size, ±1e4.
const SHAPES: &[(usize, usize, usize, f32)] = &[
    (2, 3, 1, 2.0),
    (1, 1, 7, 3.0),
    (3, 43, 100, 5.0),
    (2, 5, 1003, 1.0e4),
    (1, 9, 50257, 8.0),
];

/// `(B, T, V, offset)` of [`offset_logits`]: the row (ten logits at −1e4, one at −9990,
/// target at −1e4: −10.000454) and rows like it within 10 of ±1e4, at V = 11 and at a vocabulary
/// of vectors of 4.
const OFFSET_SHAPES: &[(usize, usize, usize, f32)] = &[
    (2, 3, 11, -1.0e4),
    (2, 3, 11, 1.0e4),
    (2, 9, 1024, -1.0e4),
    (2, 9, 1024, 1.0e4),
];

fn check_backend<B: TokenLogprobBackend>(name: &str) {
    for (i, &(b, t, v, scale)) in SHAPES.iter().enumerate() {
        let (logits, targets) = logits_and_targets(b * t, v, scale, 100 + i as u64);
        let g = uniform(b * t, 200 + i as u64);
        let what = format!("{name} [{b},{t},{v}] scale {scale}");
        check_case::<B>(&what, &logits, &targets, &g, [b, t, v]);
    }
}

/// The log-probs at large offsets keep the tolerance of `forward_tolerance`, which does not grow
/// with the logits (the op subtracts the row max before the log).
fn check_large_offsets<B: TokenLogprobBackend>(name: &str) {
    for (i, &(b, t, v, offset)) in OFFSET_SHAPES.iter().enumerate() {
        let (logits, targets) = offset_logits(b * t, v, offset, 400 + i as u64);
        let g = uniform(b * t, 500 + i as u64);
        let what = format!("{name} [{b},{t},{v}] offset {offset}");
        check_case::<B>(&what, &logits, &targets, &g, [b, t, v]);
    }
}

/// The fused op and burn's composition, values and gradients, against the references and each
/// other.
fn check_case<B: TokenLogprobBackend>(
    what: &str,
    logits: &[f32],
    targets: &[i64],
    g: &[f32],
    [b, t, v]: [usize; 3],
) {
    let (want_lp, _) = forward_reference(logits, targets, v);
    let want_grad = backward_reference(logits, targets, g, v);
    let (lp, grad) = fused::<B>(logits, targets, g, [b, t, v]);
    let (c_lp, c_grad) = composed::<B>(logits, targets, g, [b, t, v]);
    let (fa, fr) = forward_tolerance(logits);
    let (ga, gr) = backward_tolerance(logits);
    assert_close(
        &format!("{what}: fused vs reference"),
        &lp,
        &want_lp,
        fa,
        fr,
    );
    assert_close(
        &format!("{what}: fused grad vs reference"),
        &grad,
        &want_grad,
        ga,
        gr,
    );
    // burn's composition is itself f32: compare the two with both tolerances added.
    assert_close(
        &format!("{what}: fused vs burn composition"),
        &lp,
        &c_lp,
        2.0 * fa,
        2.0 * fr,
    );
    assert_close(
        &format!("{what}: fused grad vs burn autodiff"),
        &grad,
        &c_grad,
        2.0 * ga,
        2.0 * gr,
    );
}

#[test]
fn flex_composition_matches_reference_and_autodiff() {
    check_backend::<Flex>("flex");
}

#[test]
fn cube_wgpu_kernel_matches_reference_and_autodiff() {
    if has_wgpu() {
        check_backend::<CubeWgpu>("cube-wgpu");
    }
}

#[test]
fn fused_wgpu_kernel_matches_reference_and_autodiff() {
    if has_wgpu() {
        check_backend::<Wgpu>("fusion-wgpu");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_kernel_matches_reference_and_autodiff() {
    check_backend::<burn::backend::Cuda>("cuda");
}

#[test]
fn flex_large_offsets_keep_logprob_precision() {
    check_large_offsets::<Flex>("flex");
}

#[test]
fn cube_wgpu_large_offsets_keep_logprob_precision() {
    if has_wgpu() {
        check_large_offsets::<CubeWgpu>("cube-wgpu");
    }
}

#[test]
fn fused_wgpu_large_offsets_keep_logprob_precision() {
    if has_wgpu() {
        check_large_offsets::<Wgpu>("fusion-wgpu");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_large_offsets_keep_logprob_precision() {
    check_large_offsets::<burn::backend::Cuda>("cuda");
}

#[test]
fn flex_and_wgpu_paths_agree() {
    if !has_wgpu() {
        return;
    }
    let (b, t, v) = (4, 33, 257);
    let (logits, targets) = logits_and_targets(b * t, v, 6.0, 9);
    let g = uniform(b * t, 10);
    let (f_lp, f_grad) = fused::<Flex>(&logits, &targets, &g, [b, t, v]);
    let (w_lp, w_grad) = fused::<Wgpu>(&logits, &targets, &g, [b, t, v]);
    let (fa, fr) = forward_tolerance(&logits);
    let (ga, gr) = backward_tolerance(&logits);
    assert_close("flex vs wgpu logprobs", &w_lp, &f_lp, 2.0 * fa, 2.0 * fr);
    assert_close("flex vs wgpu grads", &w_grad, &f_grad, 2.0 * ga, 2.0 * gr);
}

#[test]
fn shape_mismatch_is_a_clear_error() {
    let device = Default::default();
    let x = Tensor::<Flex, 3>::zeros([2, 3, 5], &device);
    let ids = Tensor::<Flex, 2, Int>::zeros([2, 4], &device);
    let err = token_logprobs(x, ids).unwrap_err();
    assert!(matches!(err, KernelError::ShapeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("expected [2, 3], got [2, 4]"),
        "{err}"
    );
}

#[test]
fn out_of_range_ids_are_a_clear_error() {
    let device = Default::default();
    let x = Tensor::<Flex, 3>::zeros([1, 3, 5], &device);
    let ids = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![0i32, 5, 1], [1, 3]), &device);
    let err = token_logprobs(x, ids).unwrap_err();
    assert_eq!(
        err,
        KernelError::TargetOutOfRange {
            position: 1,
            id: 5,
            vocab: 5
        }
    );
    let ids = Tensor::<Flex, 2, Int>::from_data(
        TensorData::new(vec![-1i32, 0, 1], [1, 3]),
        &Default::default(),
    );
    assert!(
        token_logprobs(
            Tensor::<Flex, 3>::zeros([1, 3, 5], &Default::default()),
            ids
        )
        .is_err()
    );
}

#[test]
fn inputs_beyond_the_wgpu_binding_limit_are_refused() {
    if !has_wgpu() {
        return;
    }
    // 1100 × 32000 f32 = 140.8 MB > 128 MiB: refused from the metadata, before any kernel runs.
    let device = Default::default();
    let x = Tensor::<Wgpu, 3>::zeros([1, 1100, 32000], &device);
    let ids = Tensor::<Wgpu, 2, Int>::zeros([1, 1100], &device);
    let err = token_logprobs(x, ids).unwrap_err();
    assert!(matches!(err, KernelError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("binds at most"), "{err}");
}

mod cross_entropy {
    use super::*;
    use burn::backend::Autodiff;
    use burn::nn::loss::CrossEntropyLossConfig;
    use claimbench_kernels::burn_ops::{
        cross_entropy, cross_entropy_and_grad, cross_entropy_composition,
    };
    use claimbench_kernels::cross_entropy::{Settings, backward_reference, forward_reference};
    use claimbench_kernels::testing::cross_entropy::{inputs, loss_tolerance};

    fn loss_and_grad<B: Backend>(
        op: impl Fn(
            Tensor<Autodiff<B>, 2>,
            Tensor<Autodiff<B>, 1, Int>,
        ) -> Result<Tensor<Autodiff<B>, 1>, KernelError>,
        logits: &[f32],
        targets: &[i64],
        g: f32,
        dims: [usize; 2],
    ) -> Result<(f32, Vec<f32>), KernelError> {
        cross_entropy_and_grad::<B>(op, &Default::default(), logits, targets, g, dims)
    }

    /// `(N, V, scale, ignore every k-th row, settings)`.
    fn cases() -> Vec<(usize, usize, f32, usize, Settings)> {
        let s = |ignore_index, smoothing| Settings {
            ignore_index,
            smoothing,
        };
        vec![
            (3, 1, 2.0, 0, s(-100, 0.1)),
            (1, 7, 3.0, 0, s(-100, 0.0)),
            (129, 100, 5.0, 3, s(-100, 0.0)),
            (40, 33, 5.0, 4, s(0, 0.2)),
            (10, 1003, 1.0e4, 5, s(-100, 0.1)),
            (9, 50257, 8.0, 4, s(-100, 0.1)),
        ]
    }

    fn check<B: TokenLogprobBackend>(name: &str) {
        for (i, (n, v, scale, every, s)) in cases().into_iter().enumerate() {
            let (logits, targets) = inputs(n, v, scale, 300 + i as u64, every, s);
            let what = format!("{name} [{n},{v}] scale {scale} {s:?}");
            check_case::<B>(&what, &logits, &targets, [n, v], s);
        }
    }

    /// `(N, V, offset, settings)` of [`offset_logits`]: the row (ten logits at −1e4, one
    /// at −9990; ℓ = 10.000454 at the row's target) and rows like it within 10 of ±1e4, with and
    /// without label smoothing, at V = 11 and at a vocabulary of vectors of 4.
    fn offset_cases() -> Vec<(usize, usize, f32, Settings)> {
        let s = |smoothing| Settings {
            ignore_index: -100,
            smoothing,
        };
        vec![
            (2, 11, -1.0e4, s(0.0)),
            (2, 11, 1.0e4, s(0.0)),
            (2, 11, -1.0e4, s(0.1)),
            (2, 11, 1.0e4, s(0.1)),
            (16, 1024, -1.0e4, s(0.0)),
            (16, 1024, 1.0e4, s(0.1)),
        ]
    }

    /// The losses at large offsets keep `loss_tolerance`, which does not grow with the logits.
    fn check_large_offsets<B: TokenLogprobBackend>(name: &str) {
        for (i, (n, v, offset, s)) in offset_cases().into_iter().enumerate() {
            let (logits, targets) = offset_logits(n, v, offset, 600 + i as u64);
            let what = format!("{name} [{n},{v}] offset {offset} {s:?}");
            check_case::<B>(&what, &logits, &targets, [n, v], s);
        }
    }

    /// The fused loss and burn's composition, values and gradients, against the references and
    /// each other.
    fn check_case<B: TokenLogprobBackend>(
        what: &str,
        logits: &[f32],
        targets: &[i64],
        [n, v]: [usize; 2],
        s: Settings,
    ) {
        let g = 0.5;
        let (_, want) = forward_reference(logits, targets, v, s);
        let want_grad = backward_reference(logits, targets, g, v, s);
        let (loss, grad) =
            loss_and_grad::<B>(|x, t| cross_entropy(x, t, s), logits, targets, g, [n, v]).unwrap();
        let (c_loss, c_grad) = loss_and_grad::<B>(
            |x, t| cross_entropy_composition(x, t, s),
            logits,
            targets,
            g,
            [n, v],
        )
        .unwrap();
        let (la, lr) = loss_tolerance(logits, v, s);
        let (ga, gr) = backward_tolerance(logits);
        assert_close(
            &format!("{what}: loss vs reference"),
            &[loss],
            &[want as f32],
            la,
            lr,
        );
        assert_close(
            &format!("{what}: grad vs reference"),
            &grad,
            &want_grad,
            ga,
            gr,
        );
        assert_close(
            &format!("{what}: loss vs burn composition"),
            &[loss],
            &[c_loss],
            2.0 * la,
            2.0 * lr,
        );
        assert_close(
            &format!("{what}: grad vs burn autodiff"),
            &grad,
            &c_grad,
            2.0 * ga,
            2.0 * gr,
        );
    }

    #[test]
    fn flex_composition_matches_reference() {
        check::<Flex>("flex");
    }

    #[test]
    fn cube_wgpu_kernel_matches_reference() {
        if has_wgpu() {
            check::<CubeWgpu>("cube-wgpu");
        }
    }

    #[test]
    fn fused_wgpu_kernel_matches_reference() {
        if has_wgpu() {
            check::<Wgpu>("fusion-wgpu");
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_kernel_matches_reference() {
        check::<burn::backend::Cuda>("cuda");
    }

    #[test]
    fn flex_large_offsets_keep_loss_precision() {
        check_large_offsets::<Flex>("flex");
    }

    #[test]
    fn cube_wgpu_large_offsets_keep_loss_precision() {
        if has_wgpu() {
            check_large_offsets::<CubeWgpu>("cube-wgpu");
        }
    }

    #[test]
    fn fused_wgpu_large_offsets_keep_loss_precision() {
        if has_wgpu() {
            check_large_offsets::<Wgpu>("fusion-wgpu");
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_large_offsets_keep_loss_precision() {
        check_large_offsets::<burn::backend::Cuda>("cuda");
    }

    /// Without ignored rows our definition is burn's `CrossEntropyLoss` (the baseline a burn user
    /// picks), with and without label smoothing; on the device too.
    #[test]
    fn agrees_with_burns_cross_entropy_loss() {
        fn run<B: TokenLogprobBackend>(name: &str) {
            let (n, v) = (37, 301);
            for smoothing in [0.0f32, 0.1] {
                let s = Settings {
                    ignore_index: -100,
                    smoothing,
                };
                let (logits, targets) = inputs(n, v, 6.0, 77, 0, s);
                let device = Default::default();
                let x = Tensor::<B, 2>::from_data(TensorData::new(logits.clone(), [n, v]), &device);
                let ids: Vec<i32> = targets.iter().map(|&i| i as i32).collect();
                let t = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [n]), &device);
                let ours = cross_entropy(x.clone(), t.clone(), s)
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap()[0];
                let mut cfg = CrossEntropyLossConfig::new();
                if smoothing > 0.0 {
                    cfg = cfg.with_smoothing(Some(smoothing));
                }
                let burns = cfg
                    .init::<B>(&device)
                    .forward(x, t)
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap()[0];
                let (fa, fr) = forward_tolerance(&logits);
                assert_close(
                    &format!("{name} ε={smoothing}: ours vs burn's CrossEntropyLoss"),
                    &[ours],
                    &[burns],
                    4.0 * fa,
                    4.0 * fr,
                );
            }
        }
        run::<Flex>("flex");
        if has_wgpu() {
            run::<Wgpu>("fusion-wgpu");
        }
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let device = Default::default();
        let x = Tensor::<Flex, 2>::zeros([2, 5], &device);
        let all_ignored =
            Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![-100i32, -100], [2]), &device);
        let err = cross_entropy(x.clone(), all_ignored, Settings::default()).unwrap_err();
        assert!(err.to_string().contains("mean loss is undefined"), "{err}");
        let ids = Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![0i32, 7], [2]), &device);
        let err = cross_entropy(x.clone(), ids.clone(), Settings::default()).unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::TargetOutOfRange {
                    position: 1,
                    id: 7,
                    vocab: 5
                }
            ),
            "{err}"
        );
        let ok = Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![0i32, 1], [2]), &device);
        let bad = Settings {
            smoothing: -0.1,
            ..Settings::default()
        };
        let err = cross_entropy(x.clone(), ok, bad).unwrap_err();
        assert!(
            err.to_string().contains("label smoothing -0.1 is invalid"),
            "{err}"
        );
        let three = Tensor::<Flex, 1, Int>::zeros([3], &device);
        let err = cross_entropy(x, three, Settings::default()).unwrap_err();
        assert!(matches!(err, KernelError::ShapeMismatch { .. }), "{err}");
    }
}
