//! The DPO path on burn (`dpo_loss`: token log-probs → sequence sums → loss) on every backend it
//! is implemented for: loss, implicit rewards and the gradient with respect to the logits against
//! the f64 reference chain (`claimbench_dpo_ppo`: masked sums, `dpo`, the chain rule to the
//! tokens, then the token-logprob backward reference), and against burn's autodiff of the
//! composition; plus the validation errors the issue names (all-zero mask, mismatched chosen /
//! rejected batches, NaN reference log-probs, β ≤ 0).

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use claimbench_dpo_ppo as reference;
use claimbench_kernels::KernelError;
use claimbench_kernels::burn_ops::{
    DpoLoss, PreferenceBackend, concat_pairs, dpo_loss, dpo_loss_composition,
};
use claimbench_kernels::preference::DpoSettings;
use claimbench_kernels::testing::token_logprob::backward_tolerance;
use claimbench_kernels::testing::{
    assert_close, client_or_skip, logits_and_targets, offset_logits,
};
use claimbench_kernels::token_logprob::{backward_reference, forward_reference};

use crate::sequences::{f32s, f64s, mask, scaled};

type CubeWgpu = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

fn has_wgpu() -> bool {
    client_or_skip::<cubecl::wgpu::WgpuRuntime>("dpo ops wgpu tests").is_some()
}

/// `(pairs, T, V, logit scale)`: one pair of one token, odd V, P not a power of two, a long row.
const SHAPES: &[(usize, usize, usize, f32)] = &[
    (1, 1, 7, 3.0),
    (3, 5, 100, 5.0),
    (5, 17, 1003, 8.0),
    (2, 130, 64, 2.0),
];

struct Case {
    dims: [usize; 3],
    logits: Vec<f32>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    reference: Vec<f32>,
}

fn case(pairs: usize, t: usize, v: usize, scale: f32, seed: u64) -> Case {
    let s = 2 * pairs;
    let (logits, targets) = logits_and_targets(s * t, v, scale, seed);
    Case {
        dims: [s, t, v],
        logits,
        targets,
        mask: mask(s, t, seed + 1),
        reference: scaled(s, 20.0, seed + 2).iter().map(|x| x - 30.0).collect(),
    }
}

/// The f64 reference chain: `(mean loss, rewards [2P], grad_logits [2P·T·V])`.
fn want(c: &Case, set: DpoSettings) -> (f32, Vec<f32>, Vec<f32>) {
    let [s, t, v] = c.dims;
    let (lp, _) = forward_reference(&c.logits, &c.targets, v);
    let (out, g_tok) = reference::dpo::dpo_from_tokens(
        &reference::DpoConfig::new(set.beta as f64, set.label_smoothing as f64).unwrap(),
        &f64s(&lp),
        &f64s(&c.mask),
        reference::Shape::new(s, t).unwrap(),
        &f64s(&c.reference),
    )
    .unwrap();
    let grad = backward_reference(&c.logits, &c.targets, &f32s(&g_tok), v);
    let rewards: Vec<f64> = out
        .chosen_rewards
        .iter()
        .chain(&out.rejected_rewards)
        .copied()
        .collect();
    (out.mean_loss as f32, f32s(&rewards), grad)
}

type Op<B> = fn(
    Tensor<B, 3>,
    Tensor<B, 2, Int>,
    Tensor<B, 2>,
    Tensor<B, 1>,
    Tensor<B, 1>,
    DpoSettings,
) -> Result<DpoLoss<B>, KernelError>;

/// Runs `op` under autodiff on `B`: `(loss, rewards, grad_logits)`.
fn run<B: Backend>(c: &Case, set: DpoSettings, op: Op<Autodiff<B>>) -> (f32, Vec<f32>, Vec<f32>) {
    let (loss, rewards, grad, _) = run_with_logps::<B>(c, set, op);
    (loss, rewards, grad)
}

/// [`run`], plus the policy's sequence log-probs `[2P]`.
fn run_with_logps<B: Backend>(
    c: &Case,
    set: DpoSettings,
    op: Op<Autodiff<B>>,
) -> (f32, Vec<f32>, Vec<f32>, Vec<f32>) {
    let dev = Default::default();
    let [s, t, v] = c.dims;
    let p = s / 2;
    let x = Tensor::<Autodiff<B>, 3>::from_data(TensorData::new(c.logits.clone(), [s, t, v]), &dev)
        .require_grad();
    let ids: Vec<i32> = c.targets.iter().map(|&i| i as i32).collect();
    let ids = Tensor::<Autodiff<B>, 2, Int>::from_data(TensorData::new(ids, [s, t]), &dev);
    let m = Tensor::from_data(TensorData::new(c.mask.clone(), [s, t]), &dev);
    let rc = Tensor::from_data(TensorData::new(c.reference[..p].to_vec(), [p]), &dev);
    let rr = Tensor::from_data(TensorData::new(c.reference[p..].to_vec(), [p]), &dev);
    let out = op(x.clone(), ids, m, rc, rr, set).expect("valid input");
    let loss = out.loss.clone().into_data().to_vec::<f32>().unwrap()[0];
    let rewards = Tensor::cat(vec![out.chosen_rewards, out.rejected_rewards], 0)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let logps = out
        .policy_logps
        .clone()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let grads = out.loss.backward();
    let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    (loss, rewards, g, logps)
}

fn composition<B: Backend>(
    x: Tensor<B, 3>,
    t: Tensor<B, 2, Int>,
    m: Tensor<B, 2>,
    rc: Tensor<B, 1>,
    rr: Tensor<B, 1>,
    set: DpoSettings,
) -> Result<DpoLoss<B>, KernelError> {
    Ok(dpo_loss_composition(
        x,
        t,
        m,
        Tensor::cat(vec![rc, rr], 0),
        set,
    ))
}

fn check_backend<B: PreferenceBackend>(name: &str) {
    for (i, &(p, t, v, scale)) in SHAPES.iter().enumerate() {
        for set in [
            DpoSettings::default(),
            DpoSettings {
                beta: 0.5,
                label_smoothing: 0.1,
            },
        ] {
            let c = case(p, t, v, scale, 500 + i as u64);
            let what = format!("{name} P={p} T={t} V={v} β={}", set.beta);
            let (wl, wr, wg) = want(&c, set);
            let (l, r, g) = run::<B>(&c, set, dpo_loss::<Autodiff<B>>);
            // The sequence log-probs are sums of up to T f32 log-probs of magnitude ≤ 2·scale+ln V.
            let seq_tol = 4.0 * f32::EPSILON * t as f32 * (2.0 * scale + 8.0) + 1e-5;
            assert_close(
                &format!("{what}: loss"),
                &[l],
                &[wl],
                set.beta * seq_tol,
                1e-5,
            );
            assert_close(
                &format!("{what}: rewards"),
                &r,
                &wr,
                set.beta * seq_tol,
                1e-5,
            );
            assert_close(&format!("{what}: grad"), &g, &wg, 1e-6, 1e-4);
            let (cl, cr, cg) = run::<B>(&c, set, composition::<Autodiff<B>>);
            assert_close(
                &format!("{what}: loss vs composition"),
                &[l],
                &[cl],
                2.0 * set.beta * seq_tol,
                2e-5,
            );
            assert_close(
                &format!("{what}: rewards vs composition"),
                &r,
                &cr,
                2.0 * set.beta * seq_tol,
                2e-5,
            );
            assert_close(&format!("{what}: grad vs composition"), &g, &cg, 2e-6, 2e-4);
        }
    }
}

/// `(pairs, T, V, offset)` of [`offset_logits`] with T = 2: the chosen sequence of the first pair
/// is two of the rows (ten logits at −1e4 and one at −9990, target at −1e4, then at the
/// peak: −10.000454 and −0.000454; an `lse` rounded at 1e4 gives −10 and 0), the rejected one two
/// seeded rows within 10 of the offset. At V = 11 and at a vocabulary of vectors of 4.
const OFFSET_SHAPES: &[(usize, usize, usize, f32)] = &[
    (1, 2, 11, -1.0e4),
    (1, 2, 11, 1.0e4),
    (2, 2, 1024, -1.0e4),
    (2, 2, 1024, 1.0e4),
];

/// The DPO path at large logit offsets: the sequence log-probs (sums of token log-probs, all
/// `<= 0`) keep the sum of the token tolerance `1e-5 + 16ε·|lp|` and the f32 sum's own rounding,
/// independent of the logits' magnitude; rewards and loss inherit it through `β`. The gradient
/// keeps `backward_tolerance` (it reads the rounded `lse`).
fn check_large_offsets<B: PreferenceBackend>(name: &str) {
    let set = DpoSettings {
        beta: 0.5,
        label_smoothing: 0.1,
    };
    for (i, &(p, t, v, offset)) in OFFSET_SHAPES.iter().enumerate() {
        let s = 2 * p;
        let seed = 700 + i as u64;
        let (logits, targets) = offset_logits(s * t, v, offset, seed);
        let c = Case {
            dims: [s, t, v],
            logits,
            targets,
            mask: vec![1.0; s * t],
            reference: scaled(s, 20.0, seed + 2).iter().map(|x| x - 30.0).collect(),
        };
        let what = format!("{name} P={p} T={t} V={v} offset {offset}");
        let (lp, _) = forward_reference(&c.logits, &c.targets, v);
        let want_logps: Vec<f32> = lp
            .chunks_exact(t)
            .zip(c.mask.chunks_exact(t))
            .map(|(l, m)| {
                l.iter()
                    .zip(m)
                    .map(|(&l, &m)| l as f64 * m as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        let (wl, wr, wg) = want(&c, set);
        let (l, r, g, logps) = run_with_logps::<B>(&c, set, dpo_loss::<Autodiff<B>>);
        let seq_atol = t as f32 * 1e-5;
        let seq_rtol = (16.0 + t as f32) * f32::EPSILON;
        let max_seq = want_logps.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let seq_tol = seq_atol + seq_rtol * max_seq;
        let (ga, gr) = backward_tolerance(&c.logits);
        assert_close(
            &format!("{what}: sequence log-probs"),
            &logps,
            &want_logps,
            seq_atol,
            seq_rtol,
        );
        assert_close(
            &format!("{what}: rewards"),
            &r,
            &wr,
            set.beta * seq_tol,
            4.0 * f32::EPSILON,
        );
        assert_close(
            &format!("{what}: loss"),
            &[l],
            &[wl],
            2.0 * set.beta * seq_tol,
            1e-5,
        );
        assert_close(&format!("{what}: grad"), &g, &wg, ga, gr);
        let (cl, cr, cg, c_logps) = run_with_logps::<B>(&c, set, composition::<Autodiff<B>>);
        assert_close(
            &format!("{what}: sequence log-probs vs composition"),
            &logps,
            &c_logps,
            2.0 * seq_atol,
            2.0 * seq_rtol,
        );
        assert_close(
            &format!("{what}: rewards vs composition"),
            &r,
            &cr,
            2.0 * set.beta * seq_tol,
            8.0 * f32::EPSILON,
        );
        assert_close(
            &format!("{what}: loss vs composition"),
            &[l],
            &[cl],
            4.0 * set.beta * seq_tol,
            2e-5,
        );
        assert_close(
            &format!("{what}: grad vs composition"),
            &g,
            &cg,
            2.0 * ga,
            2.0 * gr,
        );
    }
}

#[test]
fn flex_large_offsets_keep_sequence_logp_precision() {
    check_large_offsets::<Flex>("flex");
}

#[test]
fn cube_large_offsets_keep_sequence_logp_precision() {
    if has_wgpu() {
        check_large_offsets::<CubeWgpu>("cube-wgpu");
    }
}

#[test]
fn fused_wgpu_large_offsets_keep_sequence_logp_precision() {
    if has_wgpu() {
        check_large_offsets::<Wgpu>("fused-wgpu");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_large_offsets_keep_sequence_logp_precision() {
    if client_or_skip::<cubecl::cuda::CudaRuntime>("dpo ops cuda").is_some() {
        check_large_offsets::<burn::backend::Cuda>("cuda");
    }
}

#[test]
fn flex_composition_matches_reference() {
    check_backend::<Flex>("flex");
}

#[test]
fn cube_kernels_match_reference() {
    if has_wgpu() {
        check_backend::<CubeWgpu>("cube-wgpu");
    }
}

#[test]
fn fused_wgpu_matches_reference() {
    if has_wgpu() {
        check_backend::<Wgpu>("fused-wgpu");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_reference() {
    if client_or_skip::<cubecl::cuda::CudaRuntime>("dpo ops cuda").is_some() {
        check_backend::<burn::backend::Cuda>("cuda");
    }
}

/// Runs the validated op on Flex with one input altered.
fn refused(alter: impl FnOnce(&mut Case, &mut DpoSettings, &mut usize)) -> KernelError {
    let mut c = case(2, 3, 5, 1.0, 9);
    let mut set = DpoSettings::default();
    let mut ref_rejected = 2;
    alter(&mut c, &mut set, &mut ref_rejected);
    let dev = Default::default();
    let [s, t, v] = c.dims;
    let x = Tensor::<Flex, 3>::from_data(TensorData::new(c.logits.clone(), [s, t, v]), &dev);
    let ids: Vec<i32> = c.targets.iter().map(|&i| i as i32).collect();
    let ids = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [s, t]), &dev);
    let m = Tensor::from_data(TensorData::new(c.mask.clone(), [s, t]), &dev);
    let rc = Tensor::from_data(TensorData::new(c.reference[..2].to_vec(), [2]), &dev);
    let rr = Tensor::from_data(
        TensorData::new(vec![-3.0f32; ref_rejected], [ref_rejected]),
        &dev,
    );
    dpo_loss(x, ids, m, rc, rr, set).expect_err("refused")
}

#[test]
fn bad_inputs_are_refused_with_a_clear_message() {
    let err = refused(|c, _, _| c.mask[3..6].fill(0.0));
    assert!(
        err.to_string().contains("sequence 1 has no valid token"),
        "{err}"
    );
    let err = refused(|_, _, r| *r = 3);
    assert!(
        err.to_string()
            .contains("reference chosen vs reference rejected log-probs: 2 vs 3"),
        "{err}"
    );
    let err = refused(|c, _, _| c.reference[1] = f32::NAN);
    assert!(
        err.to_string()
            .contains("reference chosen log-probs is NaN at index 1"),
        "{err}"
    );
    let err = refused(|_, s, _| s.beta = 0.0);
    assert!(err.to_string().contains("DPO β 0 is invalid"), "{err}");
    let err = refused(|_, s, _| s.beta = -0.1);
    assert!(err.to_string().contains("DPO β -0.1 is invalid"), "{err}");
    let err = refused(|c, _, _| c.mask[0] = 2.0);
    assert!(
        err.to_string()
            .contains("mask value 2 at row 0, position 0"),
        "{err}"
    );
    let err = refused(|c, _, _| c.targets[4] = 5);
    assert!(
        matches!(
            err,
            KernelError::TargetOutOfRange {
                position: 4,
                id: 5,
                vocab: 5
            }
        ),
        "{err}"
    );

    let dev = Default::default();
    let chosen = Tensor::<Flex, 2>::zeros([3, 4], &dev);
    let rejected = Tensor::<Flex, 2>::zeros([2, 4], &dev);
    let err = concat_pairs(chosen.clone(), rejected).unwrap_err();
    assert!(
        err.to_string()
            .contains("chosen vs rejected sequences: 3 vs 2"),
        "{err}"
    );
    assert_eq!(concat_pairs(chosen.clone(), chosen).unwrap().dims(), [6, 4]);
}

/// The GAE benchmark's device baseline (a reverse loop over time steps in burn ops) computes what
/// the host loop computes, over awkward shapes (one step, one row, odd sizes) with masked tokens
/// between valid ones; on flex here, and on fused wgpu when a device is present.
#[test]
fn gae_loop_matches_the_host_loop() {
    use claimbench_kernels::burn_ops::gae_loop;
    use claimbench_kernels::ppo::{PpoSettings, gae_host};
    use claimbench_kernels::sequences::SeqShape;
    fn check<B: Backend>(device: &B::Device) {
        let discounted = PpoSettings {
            gamma: 0.99,
            lambda: 0.95,
            ..PpoSettings::default()
        };
        for (i, (&(rows, time), set)) in [(1usize, 1usize), (1, 9), (5, 1), (7, 33), (64, 130)]
            .iter()
            .zip([PpoSettings::default(), discounted].into_iter().cycle())
            .enumerate()
        {
            let s = SeqShape::new(rows, time).unwrap();
            let r = scaled(rows * time, 2.0, 40 + i as u64);
            let v = scaled(rows * time, 2.0, 50 + i as u64);
            let m = mask(rows, time, 60 + i as u64);
            let (want_a, want_r) = gae_host(&r, &v, &m, s, set);
            let t = |x: &[f32]| {
                Tensor::<B, 2>::from_data(TensorData::new(x.to_vec(), [rows, time]), device)
            };
            let (a, ret) = gae_loop(t(&r), t(&v), t(&m), set.gamma, set.lambda);
            let tol = 4.0 * f32::EPSILON * time as f32 * 8.0 + 1e-5;
            let read = |x: Tensor<B, 2>| x.into_data().to_vec::<f32>().unwrap();
            assert_close(
                &format!("advantages {rows}x{time}"),
                &read(a),
                &want_a,
                tol,
                1e-5,
            );
            assert_close(
                &format!("returns {rows}x{time}"),
                &read(ret),
                &want_r,
                tol,
                1e-5,
            );
        }
    }
    check::<Flex>(&Default::default());
    if has_wgpu() {
        check::<Wgpu>(&Default::default());
    }
}
