//! Tests of [`super`].

use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// β = 1, π = (0.5, 0.25, 0.25): L = log(1 + 1/2) = 0.4054651081081644; β = 0.1,
/// π = (0.4, 0.4, 0.2): L = log 2. The general loss and the closed form agree on a grid.
#[test]
fn table1_loss_by_hand_and_closed_form() {
    let t = Table1::new();
    assert!(close(
        t.dpo_loss([0.5, 0.25, 0.25], 1.0).unwrap(),
        0.405_465_108_108_164_4,
        1e-15
    ));
    assert!(close(
        t.dpo_loss([0.4, 0.4, 0.2], 0.1).unwrap(),
        std::f64::consts::LN_2,
        1e-15
    ));
    for beta in [0.1, 0.5, 1.0, 3.0] {
        for a in [0.05, 0.3, 0.6, 0.85] {
            for b in [1e-6, 0.01, 0.05, 0.1] {
                let c = 1.0 - a - b;
                let general = t.dpo_loss([a, b, c], beta).unwrap();
                let closed = table1_closed_form_dpo_loss(a, b, beta);
                assert!(close(general, closed, 1e-13), "β {beta} a {a} b {b}");
                assert!(general > TABLE1_DPO_INFIMUM);
            }
        }
    }
}

/// The infimum 0 is approached as b/a → 0 (the loss ≈ (b/a)^β for small b/a) and attained
/// exactly at b = 0 by (0.1, 0, 0.9), by (1, 0, 0), and by anything with b = 0 < a,
/// whatever c; it equals the lower bound H(1) = 0.
#[test]
fn table1_infimum_is_attained_by_the_stated_policy() {
    let t = Table1::new();
    let beta = 0.1;
    assert_eq!(
        t.dpo_loss(TABLE1_DPO_SOLUTION, beta).unwrap(),
        TABLE1_DPO_INFIMUM
    );
    assert_eq!(t.dpo_loss(TABLE1_PPO_LIMIT, beta).unwrap(), 0.0);
    assert_eq!(t.dpo_loss([0.001, 0.0, 0.999], beta).unwrap(), 0.0);
    assert_eq!(dpo_loss_lower_bound(&t.data).unwrap(), TABLE1_DPO_INFIMUM);
    let mut last = f64::INFINITY;
    for k in 1..12 {
        let b = 0.1f64.powi(k);
        let l = t.dpo_loss([0.5, b, 0.5 - b], beta).unwrap();
        assert!(l > 0.0 && l < last, "b {b}: {l}");
        assert!(close(l, (2.0 * b).powf(beta).ln_1p(), 1e-12));
        last = l;
    }
    // Negative control: putting the mass on y2 instead is the worst case, not an optimum.
    assert_eq!(t.dpo_loss([0.0, 0.1, 0.9], beta).unwrap(), f64::INFINITY);
}

/// The PPO side: π*(y3) = 0 for every reward, even r(y3) = 1000 ≫ r(y1); with gap Δ,
/// π* = (1, e^{−Δ/β}, 0)/(1 + e^{−Δ/β}), e.g. Δ = β ln 3 gives (0.75, 0.25, 0); and
/// π* → (1, 0, 0) as Δ grows. The DPO solution has infinite KL (J = −∞); the PPO limit has
/// KL(π ‖ π_ref) = ln 2.
#[test]
fn table1_ppo_optimum() {
    let t = Table1::new();
    let beta = 0.1;
    let p = t
        .ppo_optimum([beta * 3f64.ln(), 0.0, 1000.0], beta)
        .unwrap();
    assert!(
        close(p[0], 0.75, 1e-15) && close(p[1], 0.25, 1e-15),
        "{p:?}"
    );
    assert_eq!(p[2], 0.0);
    for delta in [1.0, 3.0, 10.0] {
        let p = t.ppo_optimum([delta, 0.0, -5.0], beta).unwrap();
        let e = (-delta / beta).exp();
        assert!(close(p[0], 1.0 / (1.0 + e), 1e-15));
        assert!(close(p[1], e / (1.0 + e), 1e-12));
        assert_eq!(p[2], 0.0);
        // Its DPO loss is the BT loss of the reward, log(1 + e^{−Δ}).
        let l = t.dpo_loss(p, beta).unwrap();
        assert!(close(l, (-delta).exp().ln_1p(), 1e-12), "Δ {delta}: {l}");
    }
    // Δ/β = 1000: e^{−1000} underflows, so π* is exactly the limit.
    let far = t.ppo_optimum([100.0, 0.0, 50.0], beta).unwrap();
    assert_eq!(far, TABLE1_PPO_LIMIT);

    let dpo_sol = Table1::policy(TABLE1_DPO_SOLUTION).unwrap();
    let ppo_sol = Table1::policy(TABLE1_PPO_LIMIT).unwrap();
    assert_eq!(
        kl_divergence(&dpo_sol, &t.reference).unwrap(),
        vec![f64::INFINITY]
    );
    assert!(close(
        kl_divergence(&ppo_sol, &t.reference).unwrap()[0],
        std::f64::consts::LN_2,
        1e-15
    ));
    let r = [1.0, 0.0, 5.0];
    assert_eq!(
        rl_objective(&dpo_sol, &t.reference, &r, beta).unwrap(),
        f64::NEG_INFINITY
    );
    // Π_PPO ⊊ Π_DPO: both have DPO loss 0, only one has finite J.
    assert!(
        rl_objective(&ppo_sol, &t.reference, &r, beta)
            .unwrap()
            .is_finite()
    );
}

/// The identity of the brief: on seeded random problems, L_DPO(π*) = L_BT(r) (and both equal
/// the labels' entropy, the infimum), within 1e-6 and in fact within 1e-12, for several β
/// and shapes including 1 prompt × 2 responses.
#[test]
fn optimum_turns_dpo_into_the_reward_model_loss() {
    for (seed, x, y) in [(0, 1, 2), (1, 4, 3), (2, 8, 8), (3, 16, 5)] {
        let problem = RandomTabular::generate(seed, x, y).unwrap();
        assert_eq!(problem.data.len(), x * y * (y - 1) / 2);
        for beta in [0.05, 0.1, 1.0, 10.0] {
            let o = optimum_losses(&problem, beta).unwrap();
            assert!((o.dpo_at_optimum - o.reward_model).abs() < 1e-6);
            assert!(close(o.dpo_at_optimum, o.reward_model, 1e-12), "{o:?}");
            assert!(close(o.reward_model, o.label_entropy, 1e-12), "{o:?}");
        }
    }
}

/// The identity holds for any reward r' (not only the true one): L_DPO(π_{r'}) = L_BT(r');
/// and the reference is not an optimum (negative control): its loss is log 2 per pair at
/// h = 0, above the bound.
#[test]
fn identity_holds_for_any_reward_and_fails_off_the_optimum() {
    let problem = RandomTabular::generate(7, 5, 4).unwrap();
    let beta = 0.5;
    let other: Vec<f64> = problem
        .reward
        .iter()
        .enumerate()
        .map(|(i, r)| r * 0.3 + (i % 3) as f64)
        .collect();
    let pi = kl_optimum(&problem.reference, &other, beta).unwrap();
    let d = dpo_loss(&pi, &problem.reference, &problem.data, beta).unwrap();
    let bt = bradley_terry_loss(&other, 5, 4, &problem.data).unwrap();
    assert!(close(d, bt, 1e-12));
    let bound = dpo_loss_lower_bound(&problem.data).unwrap();
    assert!(d > bound + 1e-3, "{d} vs {bound}");
    let at_ref = dpo_loss(&problem.reference, &problem.reference, &problem.data, beta).unwrap();
    assert!(close(at_ref, std::f64::consts::LN_2, 1e-15));
    assert!(at_ref > bound + 1e-3);
    // A wrong β in π* breaks the identity.
    let wrong = kl_optimum(&problem.reference, &problem.reward, 2.0 * beta).unwrap();
    let dw = dpo_loss(&wrong, &problem.reference, &problem.data, beta).unwrap();
    assert!(dw > bound + 1e-3);
}

/// π* is the minimiser: random perturbations of π* (mixing with another distribution) never
/// go below L_DPO(π*), and π* maximises J with max J = mean β log Z.
#[test]
fn optimum_is_a_minimum_and_maximises_j() {
    let problem = RandomTabular::generate(13, 3, 5).unwrap();
    let beta = 0.3;
    let star = kl_optimum(&problem.reference, &problem.reward, beta).unwrap();
    let l_star = dpo_loss(&star, &problem.reference, &problem.data, beta).unwrap();
    let j_star = rl_objective(&star, &problem.reference, &problem.reward, beta).unwrap();
    let j_max = rl_objective_max(&problem.reference, &problem.reward, beta).unwrap();
    assert!(close(j_star, j_max, 1e-12), "{j_star} vs {j_max}");
    let mut rng = StdRng::seed_from_u64(99);
    for _ in 0..50 {
        let mix: f64 = rng.random_range(0.01..0.5);
        let mut probs = Vec::new();
        for x in 0..3 {
            let w: Vec<f64> = (0..5).map(|_| rng.random_range(0.01f64..1.0)).collect();
            let z: f64 = w.iter().sum();
            probs.extend((0..5).map(|y| (1.0 - mix) * star.prob(x, y) + mix * w[y] / z));
        }
        let pi = TabularPolicy::new(3, 5, probs).unwrap();
        let l = dpo_loss(&pi, &problem.reference, &problem.data, beta).unwrap();
        assert!(l > l_star, "{l} vs {l_star}");
        let j = rl_objective(&pi, &problem.reference, &problem.reward, beta).unwrap();
        assert!(j < j_star, "{j} vs {j_star}");
    }
}

/// Theorem 4.1's mechanism on a random problem: drop every preference involving the last
/// response, then move mass onto it while keeping the ratios among the others. The DPO loss
/// does not change (it only sees log-ratio differences of covered responses), but π leaves
/// the RL optimum: J falls.
#[test]
fn uncovered_response_is_invisible_to_dpo() {
    let problem = RandomTabular::generate(21, 4, 4).unwrap();
    let beta = 0.2;
    let covered: Vec<Preference> = problem
        .data
        .iter()
        .copied()
        .filter(|d| d.chosen != 3 && d.rejected != 3)
        .collect();
    assert_eq!(covered.len(), 4 * 3);
    let star = kl_optimum(&problem.reference, &problem.reward, beta).unwrap();
    let mut probs = Vec::new();
    for x in 0..4 {
        let rest: f64 = (0..3).map(|y| star.prob(x, y)).sum();
        let s = 0.5; // new mass on the last response
        probs.extend((0..3).map(|y| star.prob(x, y) * (1.0 - s) / rest));
        probs.push(s);
    }
    let shifted = TabularPolicy::new(4, 4, probs).unwrap();
    let l0 = dpo_loss(&star, &problem.reference, &covered, beta).unwrap();
    let l1 = dpo_loss(&shifted, &problem.reference, &covered, beta).unwrap();
    assert!(close(l0, l1, 1e-12), "{l0} vs {l1}");
    let j0 = rl_objective(&star, &problem.reference, &problem.reward, beta).unwrap();
    let j1 = rl_objective(&shifted, &problem.reference, &problem.reward, beta).unwrap();
    assert!(j1 < j0 - 1e-3, "{j1} vs {j0}");
    // Negative control: with the full data the same shift does change the DPO loss.
    let f0 = dpo_loss(&star, &problem.reference, &problem.data, beta).unwrap();
    let f1 = dpo_loss(&shifted, &problem.reference, &problem.data, beta).unwrap();
    assert!((f0 - f1).abs() > 1e-3);
}

/// The random problem is reproducible from its seed and differs across seeds; the reference
/// has full support.
#[test]
fn random_problem_is_seeded() {
    let a = RandomTabular::generate(5, 3, 4).unwrap();
    assert_eq!(a, RandomTabular::generate(5, 3, 4).unwrap());
    assert_ne!(a, RandomTabular::generate(6, 3, 4).unwrap());
    assert!(a.reference.probs().iter().all(|&p| p > 0.0));
    for d in &a.data {
        let gap = a.reward[d.prompt * 4 + d.chosen] - a.reward[d.prompt * 4 + d.rejected];
        assert!(close(d.prob, sigmoid(gap), 1e-15));
    }
}

/// Large r/β does not overflow the optimum; a row whose reward is constant gives π* = π_ref.
#[test]
fn kl_optimum_is_stable() {
    let reference = TabularPolicy::new(2, 3, vec![0.2, 0.3, 0.5, 0.6, 0.4, 0.0]).unwrap();
    let reward = [500.0, 500.0, 500.0, 800.0, 0.0, -3.0];
    let p = kl_optimum(&reference, &reward, 0.5).unwrap();
    for y in 0..3 {
        assert!(close(p.prob(0, y), reference.prob(0, y), 1e-15));
    }
    assert_eq!(p.row(1), &[1.0, 0.0, 0.0]);
    let j = rl_objective_max(&reference, &reward, 0.5).unwrap();
    assert!(j.is_finite());
}

#[test]
fn errors_name_the_bad_value() {
    let e = |r: Result<TabularPolicy, Error>| r.unwrap_err().to_string();
    assert_eq!(
        e(TabularPolicy::new(0, 3, vec![])),
        "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 0 × 3"
    );
    assert_eq!(
        e(TabularPolicy::new(1, 1, vec![1.0])),
        "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 1 × 1"
    );
    assert_eq!(
        e(TabularPolicy::new(2, 3, vec![0.5; 5])),
        "policy has 5 values; 2 prompts × 3 responses need 6"
    );
    assert_eq!(
        e(TabularPolicy::new(1, 3, vec![0.6, -0.1, 0.5])),
        "π(y1 | x0) is -0.1; probabilities must be in [0, 1]"
    );
    assert_eq!(
        e(TabularPolicy::new(1, 2, vec![f64::NAN, 0.5])),
        "π(y0 | x0) is NaN; probabilities must be in [0, 1]"
    );
    assert_eq!(
        e(TabularPolicy::new(2, 2, vec![0.5, 0.5, 0.7, 0.5])),
        "π(· | x1) sums to 1.2; it must sum to 1"
    );
    assert_eq!(
        e(kl_optimum(
            &Table1::new().reference,
            &[0.0, f64::INFINITY, 0.0],
            0.1
        )),
        "r(x0, y1) is inf; rewards must be finite"
    );
    assert_eq!(
        e(kl_optimum(&Table1::new().reference, &[0.0; 3], 0.0)),
        "β 0 must be a finite number above 0"
    );
    assert_eq!(
        e(kl_optimum(&Table1::new().reference, &[0.0; 4], 0.1)),
        "reward has 4 values; 1 prompts × 3 responses need 3"
    );

    let t = Table1::new();
    let pi = Table1::policy([0.2, 0.3, 0.5]).unwrap();
    let e = |data: &[Preference]| {
        dpo_loss(&pi, &t.reference, data, 0.1)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(e(&[]), "the preference data set is empty");
    assert_eq!(
        e(&[Preference::hard(0, 0, 1), Preference::hard(0, 5, 1)]),
        "preference 1 (x0, y5 ≻ y1) is outside 1 prompts × 3 responses"
    );
    assert_eq!(
        e(&[Preference::hard(1, 0, 1)]),
        "preference 0 (x1, y0 ≻ y1) is outside 1 prompts × 3 responses"
    );
    assert_eq!(
        e(&[Preference::hard(0, 2, 2)]),
        "preference 0 compares y2 with itself"
    );
    assert_eq!(
        e(&[Preference {
            prob: 1.5,
            ..Preference::hard(0, 0, 1)
        }]),
        "preference 0 has P(chosen ≻ rejected) = 1.5; it must be in [0, 1]"
    );
    assert_eq!(
        e(&[Preference::hard(0, 0, 2)]),
        "π_ref(y2 | x0) = 0 but preference 0 uses y2; DPO needs π_ref > 0 on every response in the data"
    );
    let zero = Table1::policy([0.0, 0.0, 1.0]).unwrap();
    assert_eq!(
        dpo_loss(&zero, &t.reference, &t.data, 0.1)
            .unwrap_err()
            .to_string(),
        "π gives 0 to both y0 and y1 of preference 0 (x0); the DPO margin log π(y_c) − log π(y_r) is undefined"
    );
    assert_eq!(
        dpo_loss(&pi, &t.reference, &t.data, f64::NAN)
            .unwrap_err()
            .to_string(),
        "β NaN must be a finite number above 0"
    );
    let two = TabularPolicy::new(2, 3, vec![0.2, 0.3, 0.5, 0.2, 0.3, 0.5]).unwrap();
    assert_eq!(
        dpo_loss(&pi, &two, &t.data, 0.1).unwrap_err().to_string(),
        "the reference is 2 prompts × 3 responses but the policy is 1 × 3"
    );
    assert_eq!(
        bradley_terry_loss(&[0.0, f64::NAN, 1.0], 1, 3, &t.data)
            .unwrap_err()
            .to_string(),
        "r(x0, y1) is NaN; rewards must be finite"
    );
    assert_eq!(
        dpo_loss_lower_bound(&[Preference {
            prob: f64::NAN,
            ..Preference::hard(0, 0, 1)
        }])
        .unwrap_err()
        .to_string(),
        "preference 0 has P(chosen ≻ rejected) = NaN; it must be in [0, 1]"
    );
    assert_eq!(
        RandomTabular::generate(0, 3, 1).unwrap_err().to_string(),
        "a tabular problem needs ≥ 1 prompt and ≥ 2 responses, got 3 × 1"
    );
}
