//! The preference and PPO kernels against the f64 references of `claimbench_dpo_ppo`, on seeded
//! inputs over awkward shapes (one token, odd lengths, rows not a multiple of the cube size, long
//! rows), with NaN at masked positions (never read), plus the host-side validation errors.
//! Instantiated per runtime: wgpu here, CUDA with the `cuda` feature.

use claimbench_dpo_ppo as reference;
use claimbench_kernels::sequences::SeqShape;
use claimbench_kernels::testing::uniform;

/// `(rows, time)`: one token, odd, rows not a multiple of the scan cube (64), one long row, many
/// short rows.
pub const SHAPES: &[(usize, usize)] = &[(1, 1), (3, 7), (65, 33), (2, 1029), (300, 5)];

pub use claimbench_kernels::testing::{poison_masked as poison, sequence_mask as mask};

pub fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub fn f32s(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Scaled uniform values.
pub fn scaled(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    uniform(n, seed).into_iter().map(|v| v * scale).collect()
}

/// Tolerance of a sum of `n` f32 terms of magnitude ≤ `mag` (absolute).
pub fn sum_tol(n: usize, mag: f32) -> f32 {
    4.0 * f32::EPSILON * n as f32 * mag + 1e-6
}

pub fn shape(rows: usize, time: usize) -> (SeqShape, reference::Shape) {
    (
        SeqShape::new(rows, time).unwrap(),
        reference::Shape::new(rows, time).unwrap(),
    )
}

#[macro_export]
macro_rules! testgen_sequences {
    () => {
        use claimbench_dpo_ppo as reference;
        use claimbench_kernels::ppo::{self, LossInputs, PpoSettings};
        use claimbench_kernels::preference::{self, DpoSettings};
        use claimbench_kernels::testing::{assert_close, client_or_skip, read_f32};
        use cubecl::prelude::*;
        use $crate::sequences::*;

        fn client() -> Option<ComputeClient<TestRuntime>> {
            client_or_skip::<TestRuntime>("sequence kernels")
        }

        #[test]
        fn masked_row_sums_match_reference() {
            let Some(c) = client() else { return };
            for (i, &(rows, time)) in SHAPES.iter().enumerate() {
                let (s, rs) = shape(rows, time);
                let m = mask(rows, time, 10 + i as u64);
                let v = scaled(rows * time, 5.0, 20 + i as u64);
                let want = reference::masked_sequence_logprobs(&f64s(&v), &f64s(&m), rs).unwrap();
                let got = read_f32(
                    &c,
                    preference::masked_row_sums(
                        &c,
                        s,
                        c.create_from_slice(f32::as_bytes(&poison(&v, &m))),
                        c.create_from_slice(f32::as_bytes(&m)),
                    ),
                );
                let tol = sum_tol(time, 5.0);
                assert_close(
                    &format!("row sums {rows}x{time}"),
                    &got,
                    &f32s(&want),
                    tol,
                    0.0,
                );
                let all = read_f32(
                    &c,
                    preference::row_sums(&c, s, c.create_from_slice(f32::as_bytes(&v))),
                );
                let want_all: Vec<f32> = v.chunks(time).map(|r| r.iter().sum()).collect();
                assert_close(
                    &format!("plain sums {rows}x{time}"),
                    &all,
                    &want_all,
                    tol,
                    0.0,
                );
            }
        }

        #[test]
        fn dpo_pairs_match_reference() {
            let Some(c) = client() else { return };
            for (i, &pairs) in [1usize, 3, 257, 1000].iter().enumerate() {
                for (beta, eps) in [(0.1f32, 0.0f32), (2.0, 0.2)] {
                    // Margins up to ±300 nats: log σ must not overflow.
                    let policy = scaled(2 * pairs, 300.0, 30 + i as u64);
                    let refs = scaled(2 * pairs, 10.0, 40 + i as u64);
                    let out = preference::dpo_pairs(
                        &c,
                        pairs,
                        c.create_from_slice(f32::as_bytes(&policy)),
                        c.create_from_slice(f32::as_bytes(&refs)),
                        DpoSettings {
                            beta,
                            label_smoothing: eps,
                        },
                    )
                    .unwrap();
                    let (p, r) = (f64s(&policy), f64s(&refs));
                    let want = reference::dpo(
                        &reference::DpoConfig::new(beta as f64, eps as f64).unwrap(),
                        &reference::DpoInputs {
                            policy_chosen: &p[..pairs],
                            policy_rejected: &p[pairs..],
                            reference_chosen: &r[..pairs],
                            reference_rejected: &r[pairs..],
                        },
                    )
                    .unwrap();
                    let what = format!("dpo P={pairs} β={beta} ε={eps}");
                    // The margin βh is a difference of f32 terms up to |β|·620: its rounding
                    // (≈ 4 ulp of that) carries into the loss and the rewards.
                    let atol = 8.0 * f32::EPSILON * beta * 620.0 + 1e-6;
                    assert_close(
                        &format!("{what}: losses"),
                        &read_f32(&c, out.losses),
                        &f32s(&want.losses),
                        atol,
                        1e-5,
                    );
                    let rewards: Vec<f64> = want
                        .chosen_rewards
                        .iter()
                        .chain(&want.rejected_rewards)
                        .copied()
                        .collect();
                    assert_close(
                        &format!("{what}: rewards"),
                        &read_f32(&c, out.rewards),
                        &f32s(&rewards),
                        atol,
                        1e-6,
                    );
                    let grads: Vec<f64> = want
                        .grad_chosen
                        .iter()
                        .chain(&want.grad_rejected)
                        .copied()
                        .collect();
                    assert_close(
                        &format!("{what}: grads"),
                        &read_f32(&c, out.grads),
                        &f32s(&grads),
                        atol * beta,
                        1e-5,
                    );
                }
            }
        }

        #[test]
        fn dpo_pairs_refuse_bad_settings() {
            let Some(c) = client() else { return };
            let h = || c.create_from_slice(f32::as_bytes(&[0.0f32, 0.0]));
            for (beta, eps, needle) in [
                (0.0f32, 0.0f32, "DPO β 0 is invalid"),
                (-1.0, 0.0, "DPO β -1 is invalid"),
                (f32::NAN, 0.0, "DPO β NaN is invalid"),
                (0.1, 0.5, "DPO label smoothing 0.5 is invalid"),
            ] {
                let err = preference::dpo_pairs(
                    &c,
                    1,
                    h(),
                    h(),
                    DpoSettings {
                        beta,
                        label_smoothing: eps,
                    },
                )
                .err()
                .expect("refused");
                assert!(err.to_string().contains(needle), "{err}");
            }
            assert!(preference::dpo_pairs(&c, 0, h(), h(), DpoSettings::default()).is_err());
        }

        /// A rollout: `(logprobs, ref_logprobs, values, scores, mask)`.
        fn rollout(rows: usize, time: usize, seed: u64) -> [Vec<f32>; 5] {
            let m = mask(rows, time, seed);
            [
                scaled(rows * time, 3.0, seed + 1)
                    .iter()
                    .map(|v| -v.abs())
                    .collect(),
                scaled(rows * time, 3.0, seed + 2)
                    .iter()
                    .map(|v| -v.abs())
                    .collect(),
                scaled(rows * time, 2.0, seed + 3),
                scaled(rows, 4.0, seed + 4),
                m,
            ]
        }

        #[test]
        fn kl_rewards_gae_and_whitening_match_reference() {
            let Some(c) = client() else { return };
            let up = |x: &[f32]| c.create_from_slice(f32::as_bytes(x));
            for (i, &(rows, time)) in SHAPES.iter().enumerate() {
                let (s, rs) = shape(rows, time);
                let [lp, rlp, v, sc, m] = rollout(rows, time, 100 * i as u64);
                let md = f64s(&m);
                for (gamma, lambda, kl) in [
                    (1.0f32, 1.0f32, 0.1f32),
                    (0.99, 0.95, 0.05),
                    (0.5, 0.0, 0.0),
                ] {
                    let set = PpoSettings {
                        gamma,
                        lambda,
                        kl_coef: kl,
                        ..PpoSettings::default()
                    };
                    let what = format!("{rows}x{time} γ={gamma} λ={lambda} κ={kl}");
                    let rewards = ppo::kl_rewards(
                        &c,
                        s,
                        up(&poison(&lp, &m)),
                        up(&poison(&rlp, &m)),
                        up(&sc),
                        up(&m),
                        set,
                    )
                    .unwrap();
                    let want_r = reference::kl_penalised_rewards(
                        &f64s(&lp),
                        &f64s(&rlp),
                        &f64s(&sc),
                        &md,
                        rs,
                        kl as f64,
                    )
                    .unwrap();
                    let got_r = read_f32(&c, rewards.clone());
                    assert_close(
                        &format!("{what}: rewards"),
                        &got_r,
                        &f32s(&want_r),
                        1e-5,
                        1e-5,
                    );
                    let out = ppo::gae(&c, s, rewards, up(&poison(&v, &m)), up(&m), set).unwrap();
                    let want = reference::gae(
                        &f64s(&got_r),
                        &f64s(&v),
                        &md,
                        rs,
                        gamma as f64,
                        lambda as f64,
                    )
                    .unwrap();
                    // A sum of up to `time` terms of magnitude ≤ 4 + 2 + 0.6.
                    let tol = sum_tol(time, 7.0);
                    let adv = read_f32(&c, out.advantages.clone());
                    assert_close(
                        &format!("{what}: advantages"),
                        &adv,
                        &f32s(&want.advantages),
                        tol,
                        1e-5,
                    );
                    assert_close(
                        &format!("{what}: returns"),
                        &read_f32(&c, out.returns),
                        &f32s(&want.returns),
                        tol,
                        1e-5,
                    );
                    let (ha, hr) = ppo::gae_host(&got_r, &v, &m, s, set);
                    assert_close(
                        &format!("{what}: host loop"),
                        &ha,
                        &f32s(&want.advantages),
                        tol,
                        1e-5,
                    );
                    assert_close(
                        &format!("{what}: host returns"),
                        &hr,
                        &f32s(&want.returns),
                        tol,
                        1e-5,
                    );
                    let w = read_f32(&c, ppo::whiten(&c, s, out.advantages, up(&m)));
                    let want_w = reference::whiten(&f64s(&adv), &md, rs).unwrap();
                    // Whitened values are O(1): the f32 mean and variance over n terms.
                    let n = m.iter().filter(|&&x| x == 1.0).count();
                    assert_close(
                        &format!("{what}: whitened"),
                        &w,
                        &f32s(&want_w),
                        sum_tol(n, 1.0) * 10.0,
                        1e-4,
                    );
                }
            }
        }

        #[test]
        fn clipped_losses_match_reference() {
            let Some(c) = client() else { return };
            let up = |x: &[f32]| c.create_from_slice(f32::as_bytes(x));
            for (i, &(rows, time)) in SHAPES.iter().enumerate() {
                let (s, rs) = shape(rows, time);
                let [old, _, v_old, _, m] = rollout(rows, time, 7 + 100 * i as u64);
                // New log-probs within ±0.5 of the old: ratios on both sides of the clip range.
                let lp: Vec<f32> = old
                    .iter()
                    .zip(scaled(rows * time, 0.5, 900 + i as u64))
                    .map(|(a, d)| a + d)
                    .collect();
                let v: Vec<f32> = v_old
                    .iter()
                    .zip(scaled(rows * time, 0.5, 901 + i as u64))
                    .map(|(a, d)| a + d)
                    .collect();
                let adv = scaled(rows * time, 2.0, 902 + i as u64);
                let ret = scaled(rows * time, 3.0, 903 + i as u64);
                let n = s.check_mask(&m).unwrap();
                let set = PpoSettings::default();
                let out = ppo::clipped_losses(
                    &c,
                    s,
                    LossInputs {
                        logprobs: up(&poison(&lp, &m)),
                        old_logprobs: up(&poison(&old, &m)),
                        advantages: up(&poison(&adv, &m)),
                        values: up(&poison(&v, &m)),
                        old_values: up(&poison(&v_old, &m)),
                        returns: up(&poison(&ret, &m)),
                        mask: up(&m),
                    },
                    n,
                    set,
                )
                .unwrap();
                let md = f64s(&m);
                let pl = reference::policy_loss(&f64s(&lp), &f64s(&old), &f64s(&adv), &md, rs, 0.2)
                    .unwrap();
                let vl = reference::value_loss(&f64s(&v), &f64s(&v_old), &f64s(&ret), &md, rs, 0.2)
                    .unwrap();
                let what = format!("{rows}x{time}");
                let totals = read_f32(&c, out.totals);
                // Clip decisions at an exact tie could differ in f32; the draws make ties unlikely,
                // and the fractions are compared to one token's share.
                assert_close(
                    &format!("{what}: totals"),
                    &totals,
                    &[
                        pl.loss as f32,
                        vl.loss as f32,
                        pl.clip_fraction as f32,
                        vl.clip_fraction as f32,
                    ],
                    1e-5,
                    1e-4,
                );
                assert_close(
                    &format!("{what}: policy grad"),
                    &read_f32(&c, out.policy_grad),
                    &f32s(&pl.grad),
                    1e-6,
                    1e-4,
                );
                assert_close(
                    &format!("{what}: value grad"),
                    &read_f32(&c, out.value_grad),
                    &f32s(&vl.grad),
                    1e-6,
                    1e-4,
                );
            }
        }

        #[test]
        fn ppo_settings_are_checked() {
            let Some(c) = client() else { return };
            let h = || c.create_from_slice(f32::as_bytes(&[0.0f32]));
            let s = SeqShape::new(1, 1).unwrap();
            for (set, needle) in [
                (
                    PpoSettings {
                        gamma: 1.5,
                        ..PpoSettings::default()
                    },
                    "γ 1.5 is invalid",
                ),
                (
                    PpoSettings {
                        lambda: -0.1,
                        ..PpoSettings::default()
                    },
                    "λ -0.1 is invalid",
                ),
                (
                    PpoSettings {
                        kl_coef: f32::NAN,
                        ..PpoSettings::default()
                    },
                    "KL coefficient NaN",
                ),
                (
                    PpoSettings {
                        clip_eps: 0.0,
                        ..PpoSettings::default()
                    },
                    "policy clip ε 0 is invalid",
                ),
            ] {
                let err = ppo::gae(&c, s, h(), h(), h(), set).err().expect("refused");
                assert!(err.to_string().contains(needle), "{err}");
            }
        }
    };
}

mod wgpu {
    type TestRuntime = cubecl::wgpu::WgpuRuntime;
    crate::testgen_sequences!();
}

#[cfg(feature = "cuda")]
mod cuda {
    type TestRuntime = cubecl::cuda::CudaRuntime;
    crate::testgen_sequences!();
}

mod validation {
    use claimbench_kernels::KernelError;
    use claimbench_kernels::ppo::Rollout;
    use claimbench_kernels::sequences::SeqShape;

    #[test]
    fn bad_rollouts_are_named() {
        let s = SeqShape::new(2, 3).unwrap();
        let ok = [0.0f32; 6];
        let mask = [0.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        let r = Rollout {
            logprobs: &ok,
            ref_logprobs: &ok,
            values: &ok,
            scores: &[1.0, 2.0],
            mask: &mask,
        };
        assert_eq!(r.validate(s), Ok(3));
        let err = Rollout {
            scores: &[1.0, f32::NAN],
            ..r
        }
        .validate(s)
        .unwrap_err();
        assert!(
            err.to_string().contains("scores is NaN at index 1"),
            "{err}"
        );
        let err = Rollout {
            scores: &[1.0],
            ..r
        }
        .validate(s)
        .unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::BatchMismatch {
                    left: 1,
                    right: 2,
                    ..
                }
            ),
            "{err}"
        );
        let zeros = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let err = Rollout { mask: &zeros, ..r }.validate(s).unwrap_err();
        assert!(
            err.to_string().contains("sequence 1 has no valid token"),
            "{err}"
        );
        let half = [0.0, 0.5, 1.0, 1.0, 0.0, 0.0];
        let err = Rollout { mask: &half, ..r }.validate(s).unwrap_err();
        assert!(
            err.to_string()
                .contains("mask value 0.5 at row 0, position 1"),
            "{err}"
        );
        let nan_v = [0.0, f32::NAN, 0.0, 0.0, f32::NAN, f32::NAN];
        // NaN at masked positions is fine; at a valid one it is named.
        assert!(
            Rollout {
                values: &[f32::NAN, 0.0, 0.0, 0.0, f32::NAN, f32::NAN],
                ..r
            }
            .validate(s)
            .is_ok()
        );
        let err = Rollout {
            values: &nan_v,
            ..r
        }
        .validate(s)
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("values is NaN at row 0, position 1"),
            "{err}"
        );
        assert!(SeqShape::new(0, 3).is_err() && SeqShape::new(3, 0).is_err());
    }
}
