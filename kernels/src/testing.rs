//! Test support shared by the kernel suites: seeded inputs, comparisons that say how far apart two
//! results are, device discovery that skips (or fails, under `CLAIMBENCH_REQUIRE_DEVICE=1`), and the
//! `testgen_*` macros that instantiate one generic suite per runtime (as cubecl's `testgen` does).

use cubecl::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// f32 machine epsilon, the unit of the tolerances below.
pub const EPS: f32 = f32::EPSILON;

/// True when `CLAIMBENCH_REQUIRE_DEVICE=1`: a missing device is then a failure, not a skip.
pub fn require_device() -> bool {
    std::env::var("CLAIMBENCH_REQUIRE_DEVICE").is_ok_and(|v| v == "1")
}

/// The default device's client of runtime `R`, or `None` (after saying why on stderr) when the
/// runtime finds no device. Panics instead when [`require_device`] is set.
pub fn client_or_skip<R: Runtime>(test: &str) -> Option<ComputeClient<R>>
where
    R::Device: Default,
{
    let found = std::panic::catch_unwind(|| R::client(&R::Device::default()));
    match found {
        Ok(client) => Some(client),
        Err(_) if require_device() => panic!(
            "{test}: no device for runtime {} and CLAIMBENCH_REQUIRE_DEVICE=1 (install \
             mesa-vulkan-drivers for a CPU Vulkan device, or a GPU driver)",
            std::any::type_name::<R>()
        ),
        Err(_) => {
            eprintln!(
                "{test}: SKIPPED, no device for runtime {} (install mesa-vulkan-drivers for a CPU \
                 Vulkan device, or a GPU driver)",
                std::any::type_name::<R>()
            );
            None
        }
    }
}

/// Seeded logits `[rows, vocab]`, uniform in `[-scale, scale]`, and target ids uniform in
/// `[0, vocab)`.
pub fn logits_and_targets(
    rows: usize,
    vocab: usize,
    scale: f32,
    seed: u64,
) -> (Vec<f32>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let logits = (0..rows * vocab)
        .map(|_| rng.random_range(-1.0f32..=1.0) * scale)
        .collect();
    let targets = (0..rows)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect();
    (logits, targets)
}

/// Logits `[rows, vocab]` that all lie within 10 of `offset` (±1e4 in the tests), and targets:
/// the log-probs are O(10 + ln vocab) while `lse ≈ offset`, so a log-prob formed as
/// `x_t − lse` with `lse` rounded to f32 is off by up to ulp(offset)/2 (≈ 5e-4 at 1e4).
///
/// Rows `4k` and `4k + 1` are the row: every logit at `offset` but the last, at
/// `offset + 10`; the target is column 0 in row `4k` (log-prob `−10 − ln(1 + (vocab−1)·e⁻¹⁰)`,
/// −10.000454 at vocab 11) and the peak in row `4k + 1` (`−ln(1 + (vocab−1)·e⁻¹⁰)`). Rows `4k + 2`
/// and `4k + 3` are seeded: uniform in `[offset − 10, offset + 10]`, with a uniform target.
pub fn offset_logits(rows: usize, vocab: usize, offset: f32, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut logits = Vec::with_capacity(rows * vocab);
    let mut targets = Vec::with_capacity(rows);
    for r in 0..rows {
        if r % 4 < 2 {
            logits.extend(std::iter::repeat_n(offset, vocab - 1));
            logits.push(offset + 10.0);
            targets.push(if r % 4 == 0 { 0 } else { vocab as i64 - 1 });
        } else {
            logits.extend((0..vocab).map(|_| offset + rng.random_range(-10.0f32..=10.0)));
            targets.push(rng.random_range(0..vocab as i64));
        }
    }
    (logits, targets)
}

/// Seeded values uniform in `[-1, 1]` (upstream gradients).
pub fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect()
}

/// A seeded `[rows, time]` 0/1 mask in the prompt/response/padding layout: per row, zeros (the
/// prompt), a response of at least one valid token, then zeros (padding); now and then a masked
/// hole inside the response (which scans must skip). Every row has a valid token.
pub fn sequence_mask(rows: usize, time: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = vec![0.0f32; rows * time];
    for r in 0..rows {
        let start = rng.random_range(0..time);
        let len = rng.random_range(1..=time - start);
        for t in start..start + len {
            m[r * time + t] = 1.0;
        }
        if len > 2 && rng.random_bool(0.3) {
            m[r * time + start + 1] = 0.0;
        }
    }
    m
}

/// `values` with NaN at the masked positions, which the sequence kernels must never read.
pub fn poison_masked(values: &[f32], mask: &[f32]) -> Vec<f32> {
    values
        .iter()
        .zip(mask)
        .map(|(&v, &m)| if m == 1.0 { v } else { f32::NAN })
        .collect()
}

/// The precision of the backend's own GEMM (burn's `matmul`, i.e. cubek), which the DoRA layer
/// and the MoE router build on. cubek runs f32 inputs as TF32 (10 explicit mantissa bits, unit
/// roundoff 2⁻¹¹) on tensor cores wherever the device supports TF32 (CUDA from Ampere on); seen on
/// an H200, where DoRA's outputs then differ from the f64 reference by up to ~1e-3 relative.
/// Elsewhere (lavapipe, Flex) the GEMM is plain f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmPrecision {
    F32,
    Tf32,
}

impl GemmPrecision {
    /// TF32 when `client`'s device supports it (cubek then picks it for f32 inputs).
    pub fn of<R: Runtime>(client: &ComputeClient<R>) -> Self {
        let tf32 = cubecl::tf32::as_type_native_unchecked().storage_type();
        if client.properties().supports_type(tf32) {
            Self::Tf32
        } else {
            Self::F32
        }
    }

    /// [`GemmPrecision::of`] the default device of `R`; `F32` when there is none.
    pub fn of_default<R: Runtime>() -> Self
    where
        R::Device: Default,
    {
        std::panic::catch_unwind(|| Self::of(&R::client(&R::Device::default())))
            .unwrap_or(Self::F32)
    }

    /// Widens an f32 tolerance `(atol, rtol)` for a result that went through the backend's GEMM
    /// with sums of `k` terms of magnitude ≲ 1: under TF32 each product carries up to 2⁻¹⁰
    /// relative error (both factors rounded), so `k` terms add `2e-3·√k` (about four standard
    /// deviations of the random-sign sum) and the relative part becomes at least 4e-3.
    pub fn widen(self, atol: f32, rtol: f32, k: usize) -> (f32, f32) {
        match self {
            Self::F32 => (atol, rtol),
            Self::Tf32 => (atol + 2e-3 * (k as f32).sqrt(), rtol.max(4e-3)),
        }
    }
}

/// The largest `|got − want|` and its index.
pub fn max_abs_diff(got: &[f32], want: &[f32]) -> (f32, usize) {
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            if g.is_nan() || w.is_nan() {
                f32::INFINITY
            } else {
                (g - w).abs()
            }
        })
        .enumerate()
        .fold(
            (0.0, 0),
            |(m, i), (j, d)| if d > m { (d, j) } else { (m, i) },
        )
}

/// True when `|got[i] − want[i]| <= atol + rtol·|want[i]|` for every i (NaN never is).
pub fn within(got: &[f32], want: &[f32], atol: f32, rtol: f32) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= atol + rtol * w.abs())
}

/// Asserts `|got[i] − want[i]| <= atol + rtol·|want[i]|` for every i, with a message that says
/// how far apart the two are and where ("max |Δ| = … at …").
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f32, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        let d = (g - w).abs();
        // NaN fails too: `d <= tol` is false for it.
        let within = d <= tol;
        if !within && worst.is_none_or(|(_, wd, _)| d > wd || d.is_nan()) {
            worst = Some((i, d, tol));
        }
    }
    if std::env::var("CB_MARGIN").is_ok() {
        let mut r = 0.0f32;
        let mut at = 0;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let q = (g - w).abs() / (atol + rtol * w.abs());
            if q > r {
                r = q;
                at = i;
            }
        }
        eprintln!(
            "MARGIN {what}: max |Δ|/tol = {r:.3} at {at} (|Δ| {:e}, want {})",
            (got[at] - want[at]).abs(),
            want[at]
        );
    }
    if let Some((i, d, tol)) = worst {
        let (max_d, at) = max_abs_diff(got, want);
        panic!(
            "{what}: max |Δ| = {max_d:e} at {at}; first worst violation at {i}: got {}, want {}, \
             |Δ| = {d:e} > tol {tol:e} (atol {atol:e}, rtol {rtol:e})",
            got[i], want[i]
        );
    }
}

/// Reads an f32 buffer back from the device.
pub fn read_f32<R: Runtime>(client: &ComputeClient<R>, handle: cubecl::server::Handle) -> Vec<f32> {
    let bytes = client
        .read_one(handle)
        .expect("reading a device buffer back");
    f32::from_bytes(&bytes).to_vec()
}

/// The generic kernel-vs-reference suite of the token-logprob family, instantiated per runtime by
/// [`testgen_token_logprob!`](crate::testgen_token_logprob).
pub mod token_logprob {
    use super::*;
    use crate::KernelError;
    use crate::token_logprob::{
        IdType, Problem, backward, backward_reference, forward, forward_reference,
    };

    /// Tolerance of a log-probability (or of a loss made of them): `|Δ| <= 1e-5 + 16ε·|want|`,
    /// independent of the logits' magnitude. The kernels form `(x_t − m) − ln Σ_v exp(x_v − m)`
    /// with `m` the row max: `x_t − m` is rounded relative to itself (`≤ |want|`), `ln s` (s in
    /// `[1, vocab]`) carries an absolute error of a few ε from the exps, the f32 sum and the log
    /// (≲ 1e-6 for the vocabularies tested; WGSL's `log` is only good to 2⁻²¹ absolute near 1).
    /// An `lse` formed first would be rounded at `|lse|` (ulp(1e4) ≈ 1e-3) and fail this.
    ///
    /// `_logits` is not used: it is kept so that the callers elsewhere in the workspace compile
    /// unchanged.
    pub fn forward_tolerance(_logits: &[f32]) -> (f32, f32) {
        (1e-5, 16.0 * EPS)
    }

    /// Tolerance of the `lse` output: as [`forward_tolerance`], relative to `|lse|` (which is
    /// itself rounded to f32, to within `ε/2·|lse|`: ≈ 5e-4 at 1e4).
    pub fn lse_tolerance() -> (f32, f32) {
        (1e-5, 16.0 * EPS)
    }

    /// Backward tolerance (for upstream gradients `|g| <= 1`): `|Δ| <= 1e-6 + 8ε·max|logit|`,
    /// relative `1e-5`. It still scales with the logits because the backward reads the f32 `lse`
    /// the forward stored, which is rounded to within `ε/2·|lse|` (≈ 5e-4 at 1e4): every
    /// probability `exp(x − lse)` then carries that relative error (and `x − lse` its own
    /// rounding). Keeping `m` and `ln s` apart would need a second saved `[rows]` tensor through
    /// every backend's op and the autodiff state; the forward outputs do not have this error.
    pub fn backward_tolerance(logits: &[f32]) -> (f32, f32) {
        let max_abs = logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        (1e-6 + 8.0 * EPS * max_abs.max(1.0), 1e-5)
    }

    /// Runs forward and backward on the device for a seeded problem and compares both with the
    /// references, over i32 ids (burn's default) and, when `all_id_types`, i64 and u32 ids.
    pub fn check_against_reference<R: Runtime>(
        rows: usize,
        vocab: usize,
        scale: f32,
        seed: u64,
        all_id_types: bool,
    ) where
        R::Device: Default,
    {
        let test = format!("token_logprob rows={rows} vocab={vocab} scale={scale}");
        let (logits, targets) = logits_and_targets(rows, vocab, scale, seed);
        check_inputs::<R>(&test, &logits, &targets, vocab, seed, all_id_types);
    }

    /// [`check_against_reference`] on [`offset_logits`]: logits within 10 of `offset` (±1e4),
    /// whose log-probs are O(10) while `lse ≈ offset`; the log-probs must keep the tolerance of
    /// [`forward_tolerance`], which does not grow with the logits.
    pub fn check_large_offset<R: Runtime>(rows: usize, vocab: usize, offset: f32, seed: u64)
    where
        R::Device: Default,
    {
        let test = format!("token_logprob rows={rows} vocab={vocab} offset={offset}");
        let (logits, targets) = offset_logits(rows, vocab, offset, seed);
        check_inputs::<R>(&test, &logits, &targets, vocab, seed, false);
    }

    /// Forward and backward of `logits [rows, vocab]`, `targets [rows]` on the device against the
    /// references (upstream gradients seeded from `seed`).
    pub fn check_inputs<R: Runtime>(
        test: &str,
        logits: &[f32],
        targets: &[i64],
        vocab: usize,
        seed: u64,
        all_id_types: bool,
    ) where
        R::Device: Default,
    {
        let Some(client) = client_or_skip::<R>(test) else {
            return;
        };
        let rows = targets.len();
        let grad_out = uniform(rows, seed ^ 0x9e37);
        let (want_lp, want_lse) = forward_reference(logits, targets, vocab);
        let want_grad = backward_reference(logits, targets, &grad_out, vocab);
        let problem = Problem::new(rows, vocab).expect("valid problem");

        let id_types: &[IdType] = if all_id_types {
            &[IdType::I32, IdType::I64, IdType::U32]
        } else {
            &[IdType::I32]
        };
        for &ids in id_types {
            let logits_h = client.create_from_slice(f32::as_bytes(logits));
            let targets_h = match ids {
                IdType::I32 => client.create_from_slice(i32::as_bytes(
                    &targets.iter().map(|&t| t as i32).collect::<Vec<_>>(),
                )),
                IdType::I64 => client.create_from_slice(i64::as_bytes(targets)),
                IdType::U32 => client.create_from_slice(u32::as_bytes(
                    &targets.iter().map(|&t| t as u32).collect::<Vec<_>>(),
                )),
            };
            let out = forward(&client, problem, logits_h.clone(), targets_h.clone(), ids)
                .expect("forward launches");
            let lse = out.lse.clone();
            let got_lp = read_f32(&client, out.logprobs);
            let got_lse = read_f32(&client, out.lse);
            let (atol, rtol) = forward_tolerance(logits);
            assert_close(
                &format!("{test} {ids:?} logprob"),
                &got_lp,
                &want_lp,
                atol,
                rtol,
            );
            let (atol, rtol) = lse_tolerance();
            assert_close(
                &format!("{test} {ids:?} lse"),
                &got_lse,
                &want_lse,
                atol,
                rtol,
            );

            let grad_h = client.create_from_slice(f32::as_bytes(&grad_out));
            let grad = backward(&client, problem, logits_h, targets_h, ids, lse, grad_h)
                .expect("backward launches");
            let got_grad = read_f32(&client, grad);
            let (atol, rtol) = backward_tolerance(logits);
            assert_close(
                &format!("{test} {ids:?} grad"),
                &got_grad,
                &want_grad,
                atol,
                rtol,
            );
        }
    }

    /// Inputs over the device's one-buffer limit are refused with [`KernelError::TooLarge`] before
    /// anything is allocated. Runtimes without such a limit (CUDA) accept the size.
    pub fn refuses_oversized<R: Runtime>()
    where
        R::Device: Default,
    {
        let Some(client) = client_or_skip::<R>("token_logprob refuses_oversized") else {
            return;
        };
        let limit = crate::launch::max_buffer_bytes(&client);
        let vocab = 32_000usize;
        let rows = (limit / (vocab as u64 * 4) + 1) as usize;
        let problem = Problem::new(rows, vocab).expect("valid problem");
        match crate::token_logprob::check_fits(&client, problem) {
            Err(KernelError::TooLarge {
                bytes, limit: l, ..
            }) => {
                assert!(bytes > l);
                let msg = crate::token_logprob::check_fits(&client, problem)
                    .unwrap_err()
                    .to_string();
                assert!(msg.contains("binds at most"), "unclear message: {msg}");
            }
            other => assert!(
                limit > u32::MAX as u64 * 4,
                "expected TooLarge for {rows}x{vocab}, got {other:?}"
            ),
        }
    }
}

/// The generic kernel-vs-reference suite of the fused cross-entropy, instantiated per runtime by
/// [`testgen_cross_entropy!`](crate::testgen_cross_entropy).
pub mod cross_entropy {
    use super::token_logprob::{backward_tolerance, forward_tolerance};
    use super::*;
    use crate::cross_entropy::{
        Settings, backward, backward_reference, check_targets, forward, forward_reference,
    };
    use crate::token_logprob::{IdType, Problem};

    /// Seeded problem: every `ignore_every`-th row (if any) gets the ignore index as its target.
    pub fn inputs(
        rows: usize,
        vocab: usize,
        scale: f32,
        seed: u64,
        ignore_every: usize,
        s: Settings,
    ) -> (Vec<f32>, Vec<i64>) {
        let (logits, mut targets) = logits_and_targets(rows, vocab, scale, seed);
        if ignore_every > 0 {
            for t in targets.iter_mut().step_by(ignore_every) {
                *t = s.ignore_index;
            }
        }
        (logits, targets)
    }

    /// Tolerance `(atol, rtol)` of the per-row losses ℓ (and of their mean): twice
    /// [`forward_tolerance`] (ℓ is made of a log-prob and, with label smoothing ε, of
    /// `lse − mean_v x_v`), plus `ε·16ε_f32·max_r (max_v x_rv − min_v x_rv)`: the mean of the
    /// logits is summed in f32 relative to a logit of the row (the first one in the kernel, the
    /// max in the Flex composition), so its error grows with the rows' range, not with their
    /// magnitude.
    pub fn loss_tolerance(logits: &[f32], vocab: usize, s: Settings) -> (f32, f32) {
        let (atol, rtol) = forward_tolerance(logits);
        let range = logits
            .chunks_exact(vocab)
            .map(|row| {
                let (lo, hi) = row
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    });
                hi - lo
            })
            .fold(0.0f32, f32::max);
        (2.0 * atol + s.smoothing * 16.0 * EPS * range, 2.0 * rtol)
    }

    /// Forward (per-row losses and their mean) and backward on the device against the references,
    /// with [`loss_tolerance`] and the token-logprob family's [`backward_tolerance`].
    pub fn check_against_reference<R: Runtime>(
        rows: usize,
        vocab: usize,
        scale: f32,
        seed: u64,
        ignore_every: usize,
        s: Settings,
    ) where
        R::Device: Default,
    {
        let test = format!(
            "cross_entropy rows={rows} vocab={vocab} scale={scale} ignore_every={ignore_every} {s:?}"
        );
        let (logits, targets) = inputs(rows, vocab, scale, seed, ignore_every, s);
        check_inputs::<R>(&test, &logits, &targets, vocab, s);
    }

    /// [`check_against_reference`] on [`offset_logits`] (logits within 10 of `offset`, ±1e4):
    /// the losses are O(10) while `lse ≈ offset`, and must keep [`loss_tolerance`].
    pub fn check_large_offset<R: Runtime>(
        rows: usize,
        vocab: usize,
        offset: f32,
        seed: u64,
        s: Settings,
    ) where
        R::Device: Default,
    {
        let test = format!("cross_entropy rows={rows} vocab={vocab} offset={offset} {s:?}");
        let (logits, targets) = offset_logits(rows, vocab, offset, seed);
        check_inputs::<R>(&test, &logits, &targets, vocab, s);
    }

    /// Forward and backward of `logits [rows, vocab]`, `targets [rows]` (ids in `[0, vocab)` or
    /// the ignore index) on the device against the references.
    pub fn check_inputs<R: Runtime>(
        test: &str,
        logits: &[f32],
        targets: &[i64],
        vocab: usize,
        s: Settings,
    ) where
        R::Device: Default,
    {
        let Some(client) = client_or_skip::<R>(test) else {
            return;
        };
        let rows = targets.len();
        let n = check_targets(targets, vocab, s).expect("valid targets");
        let (want_rows, want_mean) = forward_reference(logits, targets, vocab, s);
        let g = 0.75f32;
        let want_grad = backward_reference(logits, targets, g, vocab, s);
        let problem = Problem::new(rows, vocab).expect("valid problem");
        let logits_h = client.create_from_slice(f32::as_bytes(logits));
        let targets_h = client.create_from_slice(i32::as_bytes(
            &targets.iter().map(|&t| t as i32).collect::<Vec<_>>(),
        ));
        let out = forward(
            &client,
            problem,
            logits_h.clone(),
            targets_h.clone(),
            IdType::I32,
            s,
        )
        .expect("forward launches");
        let lse = out.lse.clone();
        let got_rows = read_f32(&client, out.logprobs);
        let (atol, rtol) = loss_tolerance(logits, vocab, s);
        assert_close(
            &format!("{test} row losses"),
            &got_rows,
            &want_rows,
            atol,
            rtol,
        );
        // Every ℓ_r >= 0, so the per-row bounds average to this one.
        let got_mean = got_rows.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        assert!(
            (got_mean - want_mean).abs() <= atol as f64 + rtol as f64 * want_mean.abs(),
            "{test}: mean {got_mean} vs reference {want_mean}"
        );

        let row_grad: Vec<f32> = targets
            .iter()
            .map(|&t| {
                if t == s.ignore_index {
                    0.0
                } else {
                    g / n as f32
                }
            })
            .collect();
        let row_grad_h = client.create_from_slice(f32::as_bytes(&row_grad));
        let grad = backward(
            &client,
            problem,
            logits_h,
            targets_h,
            IdType::I32,
            lse,
            row_grad_h,
            s,
        )
        .expect("backward launches");
        let got_grad = read_f32(&client, grad);
        let (atol, rtol) = backward_tolerance(logits);
        assert_close(&format!("{test} grad"), &got_grad, &want_grad, atol, rtol);
    }
}

/// Emits the cross-entropy kernel suite for the runtime named `TestRuntime` in the calling module.
/// Shapes: V = 1, 7 (odd), 50257 (odd, large); one row; rows not a multiple of the cube size;
/// logits spread over ±1e4 and within 10 of ±1e4 (V = 11, 1024); the benchmark shape
/// 1024 × 32000. Settings: plain, ignore index −100 on every 3rd row, ignore index 0 inside the
/// vocabulary, label smoothing 0.1 and 1.
#[macro_export]
macro_rules! testgen_cross_entropy {
    () => {
        use $crate::cross_entropy::Settings as CeSettings;
        use $crate::testing::cross_entropy as ce_suite;

        fn ce(ignore_index: i64, smoothing: f32) -> CeSettings {
            CeSettings {
                ignore_index,
                smoothing,
            }
        }
        #[test]
        fn ce_vocab_1() {
            ce_suite::check_against_reference::<TestRuntime>(5, 1, 3.0, 11, 0, ce(-100, 0.1));
        }
        #[test]
        fn ce_single_row_odd_vocab() {
            ce_suite::check_against_reference::<TestRuntime>(1, 7, 3.0, 12, 0, ce(-100, 0.0));
        }
        #[test]
        fn ce_ignored_rows_not_multiple_of_cube() {
            ce_suite::check_against_reference::<TestRuntime>(257, 100, 5.0, 13, 3, ce(-100, 0.0));
        }
        #[test]
        fn ce_ignore_index_inside_vocab_with_smoothing() {
            ce_suite::check_against_reference::<TestRuntime>(64, 33, 5.0, 14, 4, ce(0, 0.1));
        }
        #[test]
        fn ce_full_smoothing() {
            ce_suite::check_against_reference::<TestRuntime>(31, 257, 5.0, 15, 5, ce(-100, 1.0));
        }
        #[test]
        fn ce_gpt2_vocab_odd() {
            ce_suite::check_against_reference::<TestRuntime>(9, 50257, 8.0, 16, 4, ce(-100, 0.1));
        }
        #[test]
        fn ce_extreme_logits() {
            ce_suite::check_against_reference::<TestRuntime>(17, 1003, 1.0e4, 17, 0, ce(-100, 0.1));
        }
        /// The row (ten logits at −1e4, one at −9990; ℓ = 10.000454, not 10.0) and rows
        /// like it at ±1e4, with and without label smoothing.
        #[test]
        fn ce_large_offset_vocab_11() {
            for offset in [-1.0e4, 1.0e4] {
                for smoothing in [0.0, 0.1] {
                    ce_suite::check_large_offset::<TestRuntime>(
                        6,
                        11,
                        offset,
                        19,
                        ce(-100, smoothing),
                    );
                }
            }
        }
        /// As `ce_large_offset_vocab_11` at a vocabulary of vectors of 4.
        #[test]
        fn ce_large_offset_vocab_1024() {
            for offset in [-1.0e4, 1.0e4] {
                for smoothing in [0.0, 0.1] {
                    ce_suite::check_large_offset::<TestRuntime>(
                        33,
                        1024,
                        offset,
                        20,
                        ce(-100, smoothing),
                    );
                }
            }
        }
        #[test]
        fn ce_benchmark_shape_1024x32000() {
            ce_suite::check_against_reference::<TestRuntime>(
                1024,
                32000,
                10.0,
                18,
                7,
                ce(-100, 0.1),
            );
        }
    };
}

/// Emits the token-logprob kernel suite for the runtime named `TestRuntime` in the calling module.
/// Shapes: V = 1, 7 (odd, no vector width divides it), 50257 (GPT-2's vocabulary, odd); T = 1;
/// rows not a multiple of the cube size; more rows than one grid dimension holds; logits spread
/// over ±1e4 and within 10 of ±1e4 (V = 11, 1024); the benchmark shape 1024 × 32000.
#[macro_export]
macro_rules! testgen_token_logprob {
    () => {
        use $crate::testing::token_logprob as suite;

        #[test]
        fn vocab_1_logprob_is_zero() {
            suite::check_against_reference::<TestRuntime>(5, 1, 3.0, 1, true);
        }
        #[test]
        fn single_token_odd_vocab() {
            suite::check_against_reference::<TestRuntime>(1, 7, 3.0, 2, true);
        }
        #[test]
        fn rows_not_multiple_of_cube() {
            suite::check_against_reference::<TestRuntime>(257, 100, 5.0, 3, true);
        }
        #[test]
        fn gpt2_vocab_odd() {
            suite::check_against_reference::<TestRuntime>(13, 50257, 8.0, 4, false);
        }
        #[test]
        fn extreme_logits_do_not_overflow() {
            suite::check_against_reference::<TestRuntime>(17, 1003, 1.0e4, 5, false);
        }
        /// The row (ten logits at −1e4, one at −9990, target at −1e4: −10.000454, not
        /// −10.0) and rows like it at ±1e4.
        #[test]
        fn large_offset_vocab_11() {
            for offset in [-1.0e4, 1.0e4] {
                suite::check_large_offset::<TestRuntime>(6, 11, offset, 8);
            }
        }
        /// As `large_offset_vocab_11` at a vocabulary of vectors of 4.
        #[test]
        fn large_offset_vocab_1024() {
            for offset in [-1.0e4, 1.0e4] {
                suite::check_large_offset::<TestRuntime>(33, 1024, offset, 9);
            }
        }
        #[test]
        fn rows_beyond_one_grid_dimension() {
            // 70 000 rows > 65 535 cubes along x: the grid spills into y.
            suite::check_against_reference::<TestRuntime>(70_000, 3, 4.0, 7, false);
        }
        #[test]
        fn benchmark_shape_1024x32000() {
            suite::check_against_reference::<TestRuntime>(1024, 32000, 10.0, 6, false);
        }
        #[test]
        fn oversized_input_is_refused() {
            suite::refuses_oversized::<TestRuntime>();
        }
    };
}
