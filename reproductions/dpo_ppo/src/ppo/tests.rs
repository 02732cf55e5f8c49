//! Tests of [`super`].

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

fn shape(b: usize, t: usize) -> Shape {
    Shape::new(b, t).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn assert_all_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(close(*x, *y, tol), "{what}[{i}]: {x} vs {y}");
    }
}

/// Masks of varying lengths: full, prompt + response + padding, a single token, a hole.
fn ragged_mask() -> (Shape, Vec<f64>) {
    let m = vec![
        1., 1., 1., 1., 1., 1., 1., //
        0., 0., 1., 1., 1., 0., 0., //
        0., 0., 0., 0., 0., 0., 1., //
        0., 1., 1., 0., 1., 1., 0., //
        1., 0., 0., 0., 0., 0., 0., //
    ];
    (shape(5, 7), m)
}

fn random(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Direct O(T²) GAE: over each row's valid tokens v_0 < v_1 < …,
/// A_{v_j} = Σ_k (γλ)^k δ_{v_{j+k}}, with δ using V = 0 past the last valid token.
fn gae_direct(r: &[f64], v: &[f64], mask: &[f64], s: Shape, gamma: f64, lambda: f64) -> Vec<f64> {
    let mut out = vec![0.0; s.len()];
    for b in 0..s.batch {
        let idx: Vec<usize> = (b * s.time..(b + 1) * s.time)
            .filter(|&i| mask[i] == 1.0)
            .collect();
        let delta: Vec<f64> = (0..idx.len())
            .map(|j| {
                let next = if j + 1 < idx.len() {
                    v[idx[j + 1]]
                } else {
                    0.0
                };
                r[idx[j]] + gamma * next - v[idx[j]]
            })
            .collect();
        for j in 0..idx.len() {
            out[idx[j]] = (j..idx.len())
                .map(|k| (gamma * lambda).powi((k - j) as i32) * delta[k])
                .sum();
        }
    }
    out
}

/// logπ = (−1, −2, −3, pad), logπ_ref = (−1.5, −2, −2, pad), κ = 0.1, score 2:
/// r = (−0.1·0.5, 0, −0.1·(−1) + 2, 0) = (−0.05, 0, 2.1, 0). Second row: prompt at 0, one
/// valid token at 1 with logπ = logπ_ref, score −1: r = (0, −1, 0, 0).
#[test]
fn rewards_by_hand() {
    let lp = [-1.0, -2.0, -3.0, f64::NAN, -9.0, -4.0, -9.0, -9.0];
    let lr = [-1.5, -2.0, -2.0, f64::NAN, 0.0, -4.0, 0.0, 0.0];
    let mask = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let r = kl_penalised_rewards(&lp, &lr, &[2.0, -1.0], &mask, shape(2, 4), 0.1).unwrap();
    assert_all_close(&r, &[-0.05, 0.0, 2.1, 0.0, 0.0, -1.0, 0.0, 0.0], 1e-15, "r");
}

/// The score goes to the last valid token even with a hole before it, and κ = 0 leaves only
/// the score; the sum of a row's rewards is score − κ Σ (logπ − logπ_ref).
#[test]
fn rewards_score_placement_and_sum() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(3);
    let lp = random(&mut rng, s.len(), -5.0, -0.1);
    let lr = random(&mut rng, s.len(), -5.0, -0.1);
    let scores = random(&mut rng, s.batch, -2.0, 2.0);
    let r0 = kl_penalised_rewards(&lp, &lr, &scores, &mask, s, 0.0).unwrap();
    let last = [6, 11, 20, 26, 28];
    for (i, &v) in r0.iter().enumerate() {
        let expect = last.iter().position(|&l| l == i).map_or(0.0, |b| scores[b]);
        assert_eq!(v, expect, "position {i}");
    }
    let r = kl_penalised_rewards(&lp, &lr, &scores, &mask, s, 0.05).unwrap();
    for (b, &score) in scores.iter().enumerate() {
        let row = b * s.time..(b + 1) * s.time;
        let total: f64 = r[row.clone()].iter().sum();
        let kl: f64 = row.filter(|&i| mask[i] == 1.0).map(|i| lp[i] - lr[i]).sum();
        assert!(close(total, score - 0.05 * kl, 1e-13), "row {b}");
    }
}

/// T = 3, all valid, r = (0, 0, 1), V = (0.5, 0.5, 0.5), γ = λ = 1: δ = (0, 0, 0.5), so
/// A = (0.5, 0.5, 0.5) and R = (1, 1, 1), the undiscounted return.
#[test]
fn gae_by_hand_gamma_one() {
    let g = gae(
        &[0.0, 0.0, 1.0],
        &[0.5; 3],
        &[1.0; 3],
        shape(1, 3),
        1.0,
        1.0,
    )
    .unwrap();
    assert_eq!(g.advantages, vec![0.5, 0.5, 0.5]);
    assert_eq!(g.returns, vec![1.0, 1.0, 1.0]);
    // B = 1, T = 1: r = 2, V = 0.5, nothing follows: A = δ = 1.5 for every γ, λ; R = 2.
    for (gamma, lambda) in [(1.0, 1.0), (0.5, 0.0)] {
        let g = gae(&[2.0], &[0.5], &[1.0], shape(1, 1), gamma, lambda).unwrap();
        assert_eq!((g.advantages[0], g.returns[0]), (1.5, 2.0));
    }
    // All masked but one: only position 2 is valid, so it is the T = 1 case in disguise.
    let g = gae(
        &[9.0, 9.0, 2.0, 9.0],
        &[9.0, 9.0, 0.5, 9.0],
        &[0.0, 0.0, 1.0, 0.0],
        shape(1, 4),
        0.9,
        0.9,
    )
    .unwrap();
    assert_eq!(g.advantages, vec![0.0, 0.0, 1.5, 0.0]);
    assert_eq!(g.returns, vec![0.0, 0.0, 2.0, 0.0]);
}

/// r = (1, 0, 2), V = (0, 1, 0), γ = 0.9, λ = 0.5 (γλ = 0.45):
/// δ₂ = 2, δ₁ = 0 + 0.9·0 − 1 = −1, δ₀ = 1 + 0.9·1 − 0 = 1.9;
/// A₂ = 2, A₁ = −1 + 0.45·2 = −0.1, A₀ = 1.9 + 0.45·(−0.1) = 1.855; R = (1.855, 0.9, 2).
/// With a padding column in between (masked, skipped) the answer is the same.
#[test]
fn gae_by_hand_discounted_and_skipping() {
    let g = gae(
        &[1.0, 0.0, 2.0],
        &[0.0, 1.0, 0.0],
        &[1.0; 3],
        shape(1, 3),
        0.9,
        0.5,
    )
    .unwrap();
    assert_all_close(&g.advantages, &[1.855, -0.1, 2.0], 1e-15, "A");
    assert_all_close(&g.returns, &[1.855, 0.9, 2.0], 1e-15, "R");
    let g = gae(
        &[1.0, 7.0, 0.0, 2.0, 5.0],
        &[0.0, f64::NAN, 1.0, 0.0, 3.0],
        &[1.0, 0.0, 1.0, 1.0, 0.0],
        shape(1, 5),
        0.9,
        0.5,
    )
    .unwrap();
    assert_all_close(&g.advantages, &[1.855, 0.0, -0.1, 2.0, 0.0], 1e-15, "A");
    assert_all_close(&g.returns, &[1.855, 0.0, 0.9, 2.0, 0.0], 1e-15, "R");
}

/// The reverse scan equals the direct sum A_t = Σ_k (γλ)^k δ_{t+k} on ragged masks, for
/// several (γ, λ) including the edges 0 and 1.
#[test]
fn gae_scan_matches_direct_sum() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(11);
    for (gamma, lambda) in [(1.0, 1.0), (0.99, 0.95), (0.5, 0.0), (0.0, 0.7), (1.0, 0.3)] {
        let r = random(&mut rng, s.len(), -1.0, 1.0);
        let v = random(&mut rng, s.len(), -2.0, 2.0);
        let g = gae(&r, &v, &mask, s, gamma, lambda).unwrap();
        let direct = gae_direct(&r, &v, &mask, s, gamma, lambda);
        assert_all_close(&g.advantages, &direct, 1e-12, "A");
        for i in 0..s.len() {
            let expect = if mask[i] == 1.0 {
                direct[i] + v[i]
            } else {
                0.0
            };
            assert!(close(g.returns[i], expect, 1e-12), "R[{i}]");
            if mask[i] == 0.0 {
                assert_eq!(g.advantages[i], 0.0);
            }
        }
    }
}

/// λ = 1: R_t is the discounted return Σ_k γ^k r_{t+k} whatever V is; λ = 0: A_t = δ_t.
#[test]
fn gae_limits() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(5);
    let r = random(&mut rng, s.len(), -1.0, 1.0);
    let v = random(&mut rng, s.len(), -2.0, 2.0);
    let gamma = 0.8;
    let g = gae(&r, &v, &mask, s, gamma, 1.0).unwrap();
    let zero_v = gae(&r, &vec![0.0; s.len()], &mask, s, gamma, 1.0).unwrap();
    assert_all_close(&g.returns, &zero_v.returns, 1e-12, "R");
    assert_all_close(&zero_v.returns, &zero_v.advantages, 1e-15, "R = A at V = 0");
    let td = gae(&r, &v, &mask, s, gamma, 0.0).unwrap();
    let direct = gae_direct(&r, &v, &mask, s, gamma, 0.0);
    assert_all_close(&td.advantages, &direct, 1e-15, "A = δ");
}

/// Negative controls: a wrong γ or λ gives a different GAE, and so does ignoring the mask
/// (treating the hole as valid).
#[test]
fn gae_negative_controls() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(8);
    let r = random(&mut rng, s.len(), -1.0, 1.0);
    let v = random(&mut rng, s.len(), -2.0, 2.0);
    let base = gae(&r, &v, &mask, s, 0.99, 0.95).unwrap();
    let diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let wrong_gamma = gae(&r, &v, &mask, s, 0.9, 0.95).unwrap();
    assert!(diff(&base.advantages, &wrong_gamma.advantages) > 1e-3);
    let wrong_lambda = gae(&r, &v, &mask, s, 0.99, 0.5).unwrap();
    assert!(diff(&base.advantages, &wrong_lambda.advantages) > 1e-3);
    let mut filled = mask.clone();
    filled[24] = 1.0; // the hole in row 3
    let unmasked = gae(&r, &v, &filled, s, 0.99, 0.95).unwrap();
    assert!(diff(&base.advantages[21..28], &unmasked.advantages[21..28]) > 1e-3);
    // Rows are independent: the other rows are unchanged.
    assert_eq!(base.advantages[..21], unmasked.advantages[..21]);
}

/// (1, 2, 3, 4): mean 2.5, population variance 1.25, so out = (x − 2.5)/sqrt(1.25 + 1e-8);
/// with padding in between and NaN in the padding the answer is the same.
#[test]
fn whiten_by_hand() {
    let sd = (1.25f64 + 1e-8).sqrt();
    let expect = [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd];
    let w = whiten(&[1.0, 2.0, 3.0, 4.0], &[1.0; 4], shape(1, 4)).unwrap();
    assert_all_close(&w, &expect, 1e-15, "w");
    let w = whiten(
        &[1.0, f64::NAN, 2.0, 3.0, 9.0, 4.0],
        &[1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        shape(2, 3),
    )
    .unwrap();
    assert_all_close(
        &w,
        &[expect[0], 0.0, expect[1], expect[2], 0.0, expect[3]],
        1e-15,
        "w",
    );
    // Population, not sample: the sample std would give 1.5/sqrt(5/3) = 1.1619 at the end.
    assert!((w[5] - 1.5 / (5.0f64 / 3.0).sqrt()).abs() > 0.1);
}

/// Mean 0 and population variance σ²/(σ² + 1e-8) over the valid tokens of a ragged batch;
/// a single valid token whitens to 0; a constant batch whitens to 0.
#[test]
fn whiten_moments_and_edges() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(2);
    let x = random(&mut rng, s.len(), -3.0, 5.0);
    let w = whiten(&x, &mask, s).unwrap();
    let valid: Vec<usize> = (0..s.len()).filter(|&i| mask[i] == 1.0).collect();
    let n = valid.len() as f64;
    let mean_x = valid.iter().map(|&i| x[i]).sum::<f64>() / n;
    let var_x = valid.iter().map(|&i| (x[i] - mean_x).powi(2)).sum::<f64>() / n;
    let mean = valid.iter().map(|&i| w[i]).sum::<f64>() / n;
    let var = valid.iter().map(|&i| w[i] * w[i]).sum::<f64>() / n;
    assert!(mean.abs() < 1e-14, "mean {mean}");
    assert!(close(var, var_x / (var_x + 1e-8), 1e-13), "var {var}");
    for i in 0..s.len() {
        if mask[i] == 0.0 {
            assert_eq!(w[i], 0.0);
        }
    }
    assert_eq!(whiten(&[7.5], &[1.0], shape(1, 1)).unwrap(), vec![0.0]);
    assert_eq!(
        whiten(&[1.0, 7.5, 2.0], &[0.0, 1.0, 0.0], shape(1, 3)).unwrap(),
        vec![0.0; 3]
    );
    assert_eq!(
        whiten(&[3.0; 4], &[1.0; 4], shape(2, 2)).unwrap(),
        vec![0.0; 4]
    );
}

/// Four tokens, ε = 0.2, (ρ, A) = (1.5, 1), (0.5, −1), (1.5, −1), (1, 2):
/// terms max(−1.5, −1.2) = −1.2 (clipped), max(0.5, 0.8) = 0.8 (clipped),
/// max(1.5, 1.2) = 1.5 (unclipped: pessimistic bound), max(−2, −2) = −2;
/// loss = (−1.2 + 0.8 + 1.5 − 2)/4 = −0.225, clip fraction 2/4, gradient
/// (0, 0, −(−1)(1.5)/4 = 0.375, −2/4 = −0.5).
#[test]
fn policy_loss_by_hand() {
    let old = [0.0; 4];
    let lp = [1.5f64.ln(), 0.5f64.ln(), 1.5f64.ln(), 0.0];
    let adv = [1.0, -1.0, -1.0, 2.0];
    let p = policy_loss(&lp, &old, &adv, &[1.0; 4], shape(1, 4), 0.2).unwrap();
    assert!(close(p.loss, -0.225, 1e-14), "{}", p.loss);
    assert_eq!(p.clip_fraction, 0.5);
    assert_all_close(&p.ratios, &[1.5, 0.5, 1.5, 1.0], 1e-15, "ρ");
    assert_all_close(&p.grad, &[0.0, 0.0, 0.375, -0.5], 1e-14, "grad");
    // With a huge ε nothing clips: loss = mean(−Aρ) = (−1.5 + 0.5 + 1.5 − 2)/4 = −0.375.
    let q = policy_loss(&lp, &old, &adv, &[1.0; 4], shape(1, 4), 10.0).unwrap();
    assert!(close(q.loss, -0.375, 1e-14));
    assert_eq!(q.clip_fraction, 0.0);
    // B = 1, T = 1, clipped: ρ = 2, A = 3, ε = 0.2 → max(−6, −3.6) = −3.6, gradient 0.
    let one = policy_loss(&[2f64.ln()], &[0.0], &[3.0], &[1.0], shape(1, 1), 0.2).unwrap();
    assert!(close(one.loss, -3.6, 1e-15));
    assert_eq!((one.clip_fraction, one.grad[0]), (1.0, 0.0));
}

/// The policy gradient by finite differences on a ragged batch, at points away from the
/// clip kinks (|ρ − (1 ± ε)| > 1e-3), mixing clipped and unclipped tokens.
#[test]
fn policy_grad_matches_finite_differences() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(21);
    let eps = 0.2;
    let old = random(&mut rng, s.len(), -4.0, -0.5);
    let mut lp: Vec<f64> = old
        .iter()
        .map(|o| o + rng.random_range(-0.5..0.5))
        .collect();
    for i in 0..lp.len() {
        let rho = (lp[i] - old[i]).exp();
        if (rho - 1.0 - eps).abs() < 1e-3 || (rho - 1.0 + eps).abs() < 1e-3 {
            lp[i] += 0.01;
        }
    }
    let adv = random(&mut rng, s.len(), -2.0, 2.0);
    let p = policy_loss(&lp, &old, &adv, &mask, s, eps).unwrap();
    assert!(
        p.clip_fraction > 0.1 && p.clip_fraction < 0.9,
        "{}",
        p.clip_fraction
    );
    let f = |lp: &[f64]| policy_loss(lp, &old, &adv, &mask, s, eps).unwrap().loss;
    let h = 1e-7;
    for i in 0..lp.len() {
        let (mut a, mut b) = (lp.clone(), lp.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (f(&a) - f(&b)) / (2.0 * h);
        assert!(
            close(fd, p.grad[i], 1e-6),
            "token {i}: {fd} vs {}",
            p.grad[i]
        );
    }
}

/// V = (1, 3), V_old = (0, 3), R = (2, 0), ε_v = 0.5: token 0 clips V to 0.5 and
/// (0.5 − 2)² = 2.25 > (1 − 2)² = 1; token 1 is inside the range, 9 both ways;
/// loss = ½ (2.25 + 9)/2 = 2.8125, clip fraction 1/2, gradient (0, (3 − 0)/2 = 1.5).
#[test]
fn value_loss_by_hand() {
    let v = value_loss(
        &[1.0, 3.0],
        &[0.0, 3.0],
        &[2.0, 0.0],
        &[1.0; 2],
        shape(1, 2),
        0.5,
    )
    .unwrap();
    assert_eq!(v.loss, 2.8125);
    assert_eq!(v.clip_fraction, 0.5);
    assert_eq!(v.grad, vec![0.0, 1.5]);
    // T = 1, B = 1: unclipped ½ (V − R)².
    let w = value_loss(&[1.0], &[1.0], &[-1.0], &[1.0], shape(1, 1), 0.2).unwrap();
    assert_eq!(w.loss, 2.0);
    assert_eq!(w.grad, vec![2.0]);
}

/// The value gradient by finite differences on a ragged batch, away from the clip kinks.
#[test]
fn value_grad_matches_finite_differences() {
    let (s, mask) = ragged_mask();
    let mut rng = StdRng::seed_from_u64(4);
    let eps = 0.2;
    let old = random(&mut rng, s.len(), -1.0, 1.0);
    let mut v: Vec<f64> = old
        .iter()
        .map(|o| o + rng.random_range(-0.6..0.6))
        .collect();
    for i in 0..v.len() {
        if ((v[i] - old[i]).abs() - eps).abs() < 1e-3 {
            v[i] += 0.01;
        }
    }
    let r = random(&mut rng, s.len(), -1.5, 1.5);
    let out = value_loss(&v, &old, &r, &mask, s, eps).unwrap();
    assert!(out.clip_fraction > 0.0 && out.clip_fraction < 1.0);
    let f = |v: &[f64]| value_loss(v, &old, &r, &mask, s, eps).unwrap().loss;
    let h = 1e-7;
    for i in 0..v.len() {
        let (mut a, mut b) = (v.clone(), v.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (f(&a) - f(&b)) / (2.0 * h);
        assert!(
            close(fd, out.grad[i], 1e-6),
            "token {i}: {fd} vs {}",
            out.grad[i]
        );
    }
}

/// The losses are token means over the batch, so a row's weight is its length: a one-token
/// row next to a three-token row gets 1/4 of the weight, not 1/2.
#[test]
fn losses_are_token_means() {
    let mask = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0];
    let s = shape(2, 3);
    let adv = [1.0, 1.0, 1.0, 0.0, 0.0, 5.0];
    let p = policy_loss(&[0.0; 6], &[0.0; 6], &adv, &mask, s, 0.2).unwrap();
    assert!(close(p.loss, -(1.0 + 1.0 + 1.0 + 5.0) / 4.0, 1e-15));
    let v = value_loss(&[0.0; 6], &[0.0; 6], &adv, &mask, s, 0.2).unwrap();
    assert!(close(v.loss, 0.5 * (1.0 + 1.0 + 1.0 + 25.0) / 4.0, 1e-15));
}

/// The whole per-token pipeline on a ragged batch, end to end: rewards → GAE → whitening →
/// losses; finite everywhere, 0 at masked positions.
#[test]
fn pipeline_is_finite_and_masked() {
    let (s, mask) = ragged_mask();
    let cfg = PpoConfig::default();
    cfg.validate().unwrap();
    let mut rng = StdRng::seed_from_u64(17);
    let lp = random(&mut rng, s.len(), -4.0, -0.1);
    let lr = random(&mut rng, s.len(), -4.0, -0.1);
    let scores = random(&mut rng, s.batch, -1.0, 1.0);
    let values = random(&mut rng, s.len(), -1.0, 1.0);
    let r = kl_penalised_rewards(&lp, &lr, &scores, &mask, s, cfg.kl_coef).unwrap();
    let g = gae(&r, &values, &mask, s, cfg.gamma, cfg.lambda).unwrap();
    let a = whiten(&g.advantages, &mask, s).unwrap();
    let p = policy_loss(&lp, &lp, &a, &mask, s, cfg.clip_eps).unwrap();
    // At ρ = 1 the loss is −mean(Â) = 0.
    assert!(p.loss.abs() < 1e-14);
    assert_eq!(p.clip_fraction, 0.0);
    let v = value_loss(&values, &values, &g.returns, &mask, s, cfg.value_clip_eps).unwrap();
    assert!(v.loss.is_finite() && v.loss > 0.0);
    for i in 0..s.len() {
        if mask[i] == 0.0 {
            assert_eq!((r[i], a[i], p.grad[i], v.grad[i]), (0.0, 0.0, 0.0, 0.0));
        }
    }
}

#[test]
fn errors_name_the_bad_value() {
    let s = shape(1, 3);
    let m = [1.0; 3];
    let z = [0.0; 3];
    let e = |r: Result<Gae, Error>| r.unwrap_err().to_string();
    assert_eq!(e(gae(&z, &z, &m, s, 1.5, 1.0)), "γ 1.5 is outside [0, 1]");
    assert_eq!(e(gae(&z, &z, &m, s, -0.1, 1.0)), "γ -0.1 is outside [0, 1]");
    assert_eq!(
        e(gae(&z, &z, &m, s, 1.0, f64::NAN)),
        "λ NaN is outside [0, 1]"
    );
    assert_eq!(
        e(gae(&z, &z, &[0.0; 3], s, 1.0, 1.0)),
        "mask row 0 is all zeros; every sequence needs at least one valid token"
    );
    assert_eq!(
        e(gae(&[0.0, f64::NAN, 0.0], &z, &m, s, 1.0, 1.0)),
        "rewards[0, 1] is NaN; inputs must be finite"
    );
    assert_eq!(
        e(gae(&z, &[0.0, 0.0, f64::INFINITY], &m, s, 1.0, 1.0)),
        "values[0, 2] is inf; inputs must be finite"
    );
    assert_eq!(
        e(gae(&z, &[0.0; 2], &m, s, 1.0, 1.0)),
        "values has 2 values; shape [B = 1, T = 3] needs 3"
    );

    let e = |r: Result<Vec<f64>, Error>| r.unwrap_err().to_string();
    assert_eq!(
        e(kl_penalised_rewards(&z, &z, &[1.0], &m, s, -0.1)),
        "KL coefficient -0.1 must be a finite number ≥ 0"
    );
    assert_eq!(
        e(kl_penalised_rewards(&z, &z, &[1.0], &m, s, f64::NAN)),
        "KL coefficient NaN must be a finite number ≥ 0"
    );
    assert_eq!(
        e(kl_penalised_rewards(&z, &z, &[1.0, 2.0], &m, s, 0.1)),
        "scores has 2 entries but the shape's B has 1; they must match"
    );
    assert_eq!(
        e(kl_penalised_rewards(&z, &z, &[f64::NAN], &m, s, 0.1)),
        "scores[0] is NaN; inputs must be finite"
    );
    assert_eq!(
        e(kl_penalised_rewards(&z, &[0.0; 4], &[1.0], &m, s, 0.1)),
        "ref_logprobs has 4 values; shape [B = 1, T = 3] needs 3"
    );
    assert_eq!(
        e(whiten(&z, &[1.0, 2.0, 0.0], s)),
        "mask[0, 1] is 2; a mask holds only 0 or 1"
    );
    assert_eq!(
        e(whiten(&[0.0, f64::NEG_INFINITY, 0.0], &m, s)),
        "values[0, 1] is -inf; inputs must be finite"
    );

    let e = |r: Result<PolicyLoss, Error>| r.unwrap_err().to_string();
    assert_eq!(
        e(policy_loss(&z, &z, &z, &m, s, 0.0)),
        "policy clip ε 0 must be a finite number above 0"
    );
    assert_eq!(
        e(policy_loss(&z, &z, &z, &m, s, -0.2)),
        "policy clip ε -0.2 must be a finite number above 0"
    );
    assert_eq!(
        e(policy_loss(&z, &z, &z, &m, s, f64::INFINITY)),
        "policy clip ε inf must be a finite number above 0"
    );
    assert_eq!(
        e(policy_loss(&[0.0, 800.0, 0.0], &z, &z, &m, s, 0.2)),
        "ratio[0, 1] is inf; inputs must be finite"
    );
    assert_eq!(
        e(policy_loss(&z, &z, &[0.0; 2], &m, s, 0.2)),
        "advantages has 2 values; shape [B = 1, T = 3] needs 3"
    );
    assert_eq!(
        e(policy_loss(
            &z,
            &z,
            &z,
            &m,
            Shape { batch: 0, time: 3 },
            0.2
        )),
        "shape [B = 0, T = 3] is empty; B and T must both be ≥ 1"
    );

    let e = |r: Result<ValueLoss, Error>| r.unwrap_err().to_string();
    assert_eq!(
        e(value_loss(&z, &z, &z, &m, s, 0.0)),
        "value clip ε 0 must be a finite number above 0"
    );
    assert_eq!(
        e(value_loss(&z, &z, &[0.0, 0.0, f64::NAN], &m, s, 0.2)),
        "returns[0, 2] is NaN; inputs must be finite"
    );
    assert_eq!(
        e(value_loss(
            &z,
            &z,
            &z,
            &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
            shape(2, 3),
            0.2
        )),
        "mask row 1 is all zeros; every sequence needs at least one valid token"
    );

    let bad = PpoConfig {
        lambda: 2.0,
        ..PpoConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "λ 2 is outside [0, 1]"
    );
    let bad = PpoConfig {
        value_clip_eps: 0.0,
        ..PpoConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "value clip ε 0 must be a finite number above 0"
    );
    let bad = PpoConfig {
        kl_coef: -1.0,
        ..PpoConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "KL coefficient -1 must be a finite number ≥ 0"
    );
}

#[test]
fn config_round_trips_through_json() {
    let c = PpoConfig::default();
    let j = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<PpoConfig>(&j).unwrap(), c);
}
