//! criterion: fused token log-probabilities vs `log_softmax + gather` and `gather − logsumexp`
//! (what burn users write; the second is TRL's form) on
//! burn's default fused wgpu backend (fusion on; burn's autotune is off in the CPU build and on with `cuda`, see
//! Cargo.toml; warm-up outside the timing), at
//! B·T = 1024, V = 32000, f32, plus one `sum_dim` read pass of the logits (the memory floor).
//! Each timed iteration reads its result back from the device and syncs it, as the harness
//! does. Correctness is checked first, for ours and both baselines.
//! For paired ratios with bootstrap CIs in the run store, use `claimbench bench`; or feed these
//! results to the same pipeline with `claimbench import-criterion target/criterion`, which reads
//! the naming used here: the group id gives kernel/shape/dtype/backend, a function id containing
//! `baseline` is the baseline, one starting with `floor` the floor pass.

use std::time::{Duration, Instant};

use burn::backend::Wgpu;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_kernels::burn_ops::{
    token_logprobs, token_logprobs_composition, token_logprobs_logsumexp, token_logprobs_unchecked,
};
use claimbench_kernels::testing::token_logprob::forward_tolerance;
use claimbench_kernels::testing::{assert_close, logits_and_targets};
use claimbench_kernels::token_logprob::forward_reference;
use criterion::{Criterion, criterion_group, criterion_main};

type B = Wgpu;

/// Reads `t` back and syncs its device: `into_data` alone may return before the device is done.
fn read<const D: usize>(t: Tensor<B, D>) {
    let device = t.device();
    let data = t.into_data();
    std::hint::black_box(data.as_slice::<f32>().expect("f32")[0]);
    let _ = <B as burn::tensor::backend::Backend>::sync(&device);
}

fn token_logprob(c: &mut Criterion) {
    if claimbench_benches_no_device() {
        return;
    }
    let (rows, vocab) = (1024, 32000);
    let device = Default::default();
    let (logits, targets) = logits_and_targets(rows, vocab, 10.0, 7);
    let x = Tensor::<B, 3>::from_data(TensorData::new(logits.clone(), [1, rows, vocab]), &device);
    let t = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            targets.iter().map(|&t| t as i32).collect::<Vec<_>>(),
            [1, rows],
        ),
        &device,
    );

    // Correctness before timing.
    let (want, _) = forward_reference(&logits, &targets, vocab);
    let (atol, rtol) = forward_tolerance(&logits);
    let got = token_logprobs(x.clone(), t.clone())
        .expect("valid input")
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    assert_close("fused forward at 1024x32000", &got, &want, atol, rtol);
    let got = token_logprobs_composition(x.clone(), t.clone())
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    assert_close(
        "composition at 1024x32000",
        &got,
        &want,
        4.0 * atol,
        4.0 * rtol,
    );
    let got = token_logprobs_logsumexp(x.clone(), t.clone())
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    assert_close(
        "gather − logsumexp at 1024x32000",
        &got,
        &want,
        4.0 * atol,
        4.0 * rtol,
    );

    let mut group = c.benchmark_group("token_logprob/1024x32000/f32/wgpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let mut timed = |name: &str, f: &dyn Fn()| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    f();
                }
                start.elapsed()
            })
        });
    };
    timed("fused", &|| {
        read(token_logprobs_unchecked(x.clone(), t.clone()))
    });
    timed("baseline: log_softmax+gather", &|| {
        read(token_logprobs_composition(x.clone(), t.clone()))
    });
    timed("baseline: gather-logsumexp", &|| {
        read(token_logprobs_logsumexp(x.clone(), t.clone()))
    });
    timed("floor: sum_dim read pass", &|| read(x.clone().sum_dim(2)));
    group.finish();
}

/// True (after saying so) when no wgpu adapter exists: there is nothing to time.
fn claimbench_benches_no_device() -> bool {
    let found = std::panic::catch_unwind(|| {
        let _ = Tensor::<B, 1>::zeros([1], &Default::default()).into_data();
    });
    if found.is_err() {
        eprintln!(
            "token_logprob bench: no wgpu device; install mesa-vulkan-drivers or a GPU driver"
        );
        return true;
    }
    false
}

criterion_group!(benches, token_logprob);
criterion_main!(benches);
