//! criterion: the fused cross-entropy's training step (loss forward + backward to the logits)
//! vs burn's own `CrossEntropyLoss` and `mean(logsumexp − x[t])` composed of tensor ops, under
//! autodiff, on burn's default fused wgpu backend, at N = 1024, V = 32000, f32, no ignored rows,
//! no smoothing (burn's defaults). Each timed iteration reduces the gradient to a scalar, reads it
//! back and syncs the device. Correctness is checked first.
//! Function ids follow `claimbench import-criterion`'s naming (`baseline: …`).

use std::time::{Duration, Instant};

use burn::backend::{Autodiff, Wgpu};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_kernels::burn_ops::{composition_forward, cross_entropy, cross_entropy_unchecked};
use claimbench_kernels::cross_entropy::{Settings, forward_reference};
use claimbench_kernels::testing::assert_close;
use claimbench_kernels::testing::cross_entropy::inputs;
use claimbench_kernels::testing::token_logprob::forward_tolerance;
use criterion::{Criterion, criterion_group, criterion_main};

type B = Wgpu;
type A = Autodiff<Wgpu>;

/// Reads a one-element tensor back and syncs its device (`into_data` alone may not wait).
fn scalar<Bk: burn::tensor::backend::Backend>(t: Tensor<Bk, 1>) -> f32 {
    let device = t.device();
    let v = t.into_data().to_vec::<f32>().expect("f32")[0];
    let _ = Bk::sync(&device);
    v
}

/// `mean_r (logsumexp(x_r) − x_{r,t_r})` of burn tensor ops, the max-stabilised form.
fn logsumexp_loss<Bk: burn::tensor::backend::Backend>(
    x: Tensor<Bk, 2>,
    t: Tensor<Bk, 1, Int>,
) -> Tensor<Bk, 1> {
    composition_forward(x, t).0.neg().mean()
}

fn cross_entropy_step(c: &mut Criterion) {
    let found = std::panic::catch_unwind(|| {
        let _ = Tensor::<B, 1>::zeros([1], &Default::default()).into_data();
    });
    if found.is_err() {
        eprintln!(
            "cross_entropy bench: no wgpu device; install mesa-vulkan-drivers or a GPU driver"
        );
        return;
    }
    let (rows, vocab) = (1024, 32000);
    let s = Settings::default();
    let device = Default::default();
    let (logits, targets) = inputs(rows, vocab, 10.0, 7, 0, s);
    let x = Tensor::<B, 2>::from_data(TensorData::new(logits.clone(), [rows, vocab]), &device);
    let ids: Vec<i32> = targets.iter().map(|&t| t as i32).collect();
    let t = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows]), &device);

    // Correctness before timing: both losses against the f64 reference.
    let (_, want) = forward_reference(&logits, &targets, vocab, s);
    let (atol, rtol) = forward_tolerance(&logits);
    let ours = scalar(cross_entropy(x.clone(), t.clone(), s).expect("valid input"));
    let burns = scalar(
        CrossEntropyLossConfig::new()
            .init::<B>(&device)
            .forward(x.clone(), t.clone()),
    );
    assert_close(
        "fused cross-entropy",
        &[ours],
        &[want as f32],
        2.0 * atol,
        2.0 * rtol,
    );
    assert_close(
        "burn CrossEntropyLoss",
        &[burns],
        &[want as f32],
        2.0 * atol,
        2.0 * rtol,
    );
    let composed = scalar(logsumexp_loss(x.clone(), t.clone()));
    assert_close(
        "mean(logsumexp − x[t])",
        &[composed],
        &[want as f32],
        2.0 * atol,
        2.0 * rtol,
    );

    // 0: fused, 1: CrossEntropyLoss, 2: mean(logsumexp − x[t]).
    let step = |which: usize| {
        let xa = Tensor::<A, 2>::from_inner(x.clone()).require_grad();
        let ta = Tensor::<A, 1, Int>::from_inner(t.clone());
        let loss = match which {
            0 => cross_entropy_unchecked(xa.clone(), ta, s, rows),
            1 => CrossEntropyLossConfig::new()
                .init::<A>(&device)
                .forward(xa.clone(), ta),
            _ => logsumexp_loss(xa.clone(), ta),
        };
        let grads = loss.backward();
        std::hint::black_box(scalar(xa.grad(&grads).expect("grad").sum()));
    };
    let mut group = c.benchmark_group("cross_entropy/1024x32000/f32/wgpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (name, which) in [
        ("fused", 0),
        ("baseline: burn CrossEntropyLoss", 1),
        ("baseline: mean(logsumexp-x[t])", 2),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    step(which);
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cross_entropy_step);
criterion_main!(benches);
