//! Tests of [`super`].

use super::*;
use crate::stats::testutil::normal;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// `n` times `scale * exp(N(0, sd^2))`, seeded.
fn lognormal(seed: u64, n: usize, scale: f64, sd: f64) -> Vec<f64> {
    normal(seed, n, 0.0, sd)
        .into_iter()
        .map(|z| scale * z.exp())
        .collect()
}

/// Two-sided exact p by brute force: enumerate every way to pick which `n_a` of the pooled
/// (distinct) values are the a's.
fn brute_force_exact_p(a: &[f64], b: &[f64]) -> f64 {
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let n = pooled.len();
    let u_of = |mask: u32| {
        let mut u = 0.0;
        for i in 0..n {
            for j in 0..n {
                if mask & (1 << i) != 0 && mask & (1 << j) == 0 && pooled[i] > pooled[j] {
                    u += 1.0;
                }
            }
        }
        u
    };
    let observed = u_of((1u32 << a.len()) - 1);
    let (mut total, mut le, mut ge) = (0.0, 0.0, 0.0);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == a.len() {
            let u = u_of(mask);
            total += 1.0;
            if u <= observed {
                le += 1.0;
            }
            if u >= observed {
                ge += 1.0;
            }
        }
    }
    (2.0 * f64::min(le, ge) / total).min(1.0)
}

#[test]
fn mann_whitney_exact_small_sample_matches_enumeration() {
    // a = [12, 15, 17, 20], b = [18, 21, 23, 25, 30]: the only pair with a > b is 20 > 18,
    // so U_a = 1 (rank sum R_a = 1 + 2 + 3 + 5 = 11, U = 11 - 4*5/2 = 1). Of the
    // C(9, 4) = 126 equally likely arrangements, exactly one has U = 0 (all a's lowest) and
    // one has U = 1 (swap the top a with the bottom b), so P(U <= 1) = 2/126 and the
    // two-sided exact p = 4/126 = 0.031746 (R: wilcox.test(a, b)$p.value).
    let a = [12.0, 15.0, 17.0, 20.0];
    let b = [18.0, 21.0, 23.0, 25.0, 30.0];
    let mw = mann_whitney_u(&a, &b).unwrap();
    assert_eq!(mw.u, 1.0);
    assert!(close(mw.p_value, 4.0 / 126.0, 1e-12), "p = {}", mw.p_value);
    assert!(close(mw.p_value, brute_force_exact_p(&a, &b), 1e-12));
    // normal z: E[U] = 10, Var[U] = 4*5*10/12 = 16.667, z = -(9 - 0.5)/4.0825 = -2.0821
    assert!(
        close(mw.z, -8.5 / (200.0_f64 / 12.0).sqrt(), 1e-12),
        "z = {}",
        mw.z
    );
    // swapping the samples mirrors U and keeps p
    let mw2 = mann_whitney_u(&b, &a).unwrap();
    assert_eq!(mw2.u, 19.0);
    assert!(close(mw2.p_value, mw.p_value, 1e-12));
    assert!(close(mw2.z, -mw.z, 1e-12));
    // the exact distribution agrees with enumeration for other splits too
    let a = [3.1, 0.4, 2.2, 5.9, 1.0, 7.7];
    let b = [4.4, 6.1, 0.9, 8.8, 9.5, 2.8, 10.2];
    let mw = mann_whitney_u(&a, &b).unwrap();
    assert!(close(mw.p_value, brute_force_exact_p(&a, &b), 1e-12));
    // maximal separation with 8 per side: p = 2 / C(16, 8) = 2 / 12870
    let a: Vec<f64> = (0..8).map(f64::from).collect();
    let b: Vec<f64> = (8..16).map(f64::from).collect();
    let mw = mann_whitney_u(&a, &b).unwrap();
    assert_eq!(mw.u, 0.0);
    assert!(close(mw.p_value, 2.0 / 12870.0, 1e-15));
}

#[test]
fn mann_whitney_ties_use_normal_approximation_with_corrections() {
    // a = [1, 2, 2, 3], b = [2, 3, 4, 5]. Pooled ranks: 1 -> 1, the three 2s -> 3,
    // the two 3s -> 5.5, 4 -> 7, 5 -> 8. R_a = 1 + 3 + 3 + 5.5 = 12.5, U = 12.5 - 10 = 2.5
    // (pairs: a=2 ties b=2 twice -> 1, a=3 beats b=2 and ties b=3 -> 1.5).
    // E[U] = 8; ties t = 3, 2: sum t^3 - t = 24 + 6 = 30;
    // Var[U] = 16/12 * (9 - 30/56) = 11.285714; z = (2.5 - 8 + 0.5)/3.359422 = -1.488351;
    // p = erfc(1.488351/sqrt 2) = 0.136658 (R: wilcox.test(a, b, exact = FALSE) gives
    // W = 2.5, p = 0.1367).
    let mw = mann_whitney_u(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
    assert_eq!(mw.u, 2.5);
    assert!(close(mw.z, -1.488_351_394, 1e-8), "z = {}", mw.z);
    assert!(close(mw.p_value, 0.136_658_248, 1e-8), "p = {}", mw.p_value);
    // all values equal: zero variance, p = 1
    let mw = mann_whitney_u(&[2.0; 4], &[2.0; 6]).unwrap();
    assert_eq!((mw.u, mw.z, mw.p_value), (12.0, 0.0, 1.0));
    // one observation each, distinct: exact, U = 1 of {0, 1}, p = min(1, 2 * 1/2) = 1
    assert_eq!(mann_whitney_u(&[2.0], &[1.0]).unwrap().p_value, 1.0);
}

#[test]
fn ten_percent_slowdown_is_a_regression_and_swapped_an_improvement() {
    let cfg = CompareConfig::default();
    let base = lognormal(11, 30, 100.0, 0.03);
    let head: Vec<f64> = lognormal(12, 30, 100.0, 0.03)
        .iter()
        .map(|x| x * 1.10)
        .collect();
    let c = compare_series(&base, &head, 0.05, &cfg).unwrap();
    assert_eq!(c.change, Change::Regression, "{c:?}");
    assert!(close(c.ratio, 1.10, 0.03), "ratio {}", c.ratio);
    assert!(c.ratio_ci[0] > 1.05 && c.ratio_ci[0] <= c.ratio && c.ratio <= c.ratio_ci[1]);
    assert!(c.p_value < 1e-6, "p {}", c.p_value);
    assert_eq!(c.q_value, c.p_value);
    assert_eq!((c.n_base, c.n_head), (30, 30));
    assert!(c.reason.starts_with("head is "), "{}", c.reason);
    assert!(c.reason.contains("slower"), "{}", c.reason);

    let s = compare_series(&head, &base, 0.05, &cfg).unwrap();
    assert_eq!(s.change, Change::Improvement, "{s:?}");
    assert!(close(s.ratio, 1.0 / c.ratio, 1e-12));
    assert!(s.ratio_ci[1] < 1.0 / 1.05);
    assert!(close(s.p_value, c.p_value, 1e-15));
    assert!(s.reason.contains("faster"), "{}", s.reason);

    // deterministic, and serialisable with the kebab-case verdict
    assert_eq!(c, compare_series(&base, &head, 0.05, &cfg).unwrap());
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["change"], "regression");
    assert_eq!(serde_json::to_value(Change::NoChange).unwrap(), "no-change");
    // the same (significant) slowdown is no change that matters at a 15% threshold: the
    // whole interval lies within [1/1.15, 1.15]
    let loose = compare_series(&base, &head, 0.15, &cfg).unwrap();
    assert_eq!(loose.change, Change::NoChange, "{loose:?}");
    assert!(loose.p_value < 1e-6);
}

#[test]
fn identical_distributions_are_rarely_flagged_after_bh() {
    let cfg = CompareConfig::default();
    let data: Vec<(Vec<f64>, Vec<f64>)> = (0..200u64)
        .map(|i| {
            (
                lognormal(1000 + 2 * i, 30, 50.0, 0.03),
                lognormal(1001 + 2 * i, 30, 50.0, 0.03),
            )
        })
        .collect();
    let series: Vec<(&[f64], &[f64], f64)> = data
        .iter()
        .map(|(b, h)| (b.as_slice(), h.as_slice(), 0.05))
        .collect();
    let out = compare_all(&series, &cfg).unwrap();
    assert_eq!(out.len(), 200);
    let flagged = out
        .iter()
        .filter(|c| matches!(c.change, Change::Regression | Change::Improvement))
        .count();
    assert!(flagged < 10, "{flagged} of 200 flagged");
    assert!(flagged <= 2, "{flagged} of 200 flagged");
    // most are a confident no-change at 3% noise and 30 samples
    let no_change = out.iter().filter(|c| c.change == Change::NoChange).count();
    assert!(no_change >= 150, "only {no_change} no-change");
    // q >= p everywhere, and each entry is compare_series' numbers with the adjusted q
    assert!(out.iter().all(|c| c.q_value >= c.p_value));
    let single = compare_series(&data[7].0, &data[7].1, 0.05, &cfg).unwrap();
    assert_eq!(single.ratio_ci, out[7].ratio_ci);
    assert_eq!(single.p_value, out[7].p_value);
    assert_eq!(compare_all(&[], &cfg).unwrap(), vec![]);
}

#[test]
fn compare_all_adjusts_before_judging() {
    // one clear regression among null series stays a regression after BH
    let cfg = CompareConfig::default();
    let base = lognormal(5, 30, 10.0, 0.03);
    let slow: Vec<f64> = lognormal(6, 30, 10.0, 0.03)
        .iter()
        .map(|x| x * 1.2)
        .collect();
    let same = lognormal(7, 30, 10.0, 0.03);
    let out = compare_all(
        &[
            (&base, &slow, 0.05),
            (&base, &same, 0.05),
            (&base, &base, 0.1),
        ],
        &cfg,
    )
    .unwrap();
    assert_eq!(out[0].change, Change::Regression, "{:?}", out[0]);
    assert_eq!(out[1].change, Change::NoChange, "{:?}", out[1]);
    assert_eq!(out[2].min_effect, 0.1);
    let q = benjamini_hochberg(&[out[0].p_value, out[1].p_value, out[2].p_value]);
    assert_eq!(q, out.iter().map(|c| c.q_value).collect::<Vec<_>>());
    let err = compare_all(
        &[(&base, &same, 0.05), (&base, &[1.0, f64::NAN], 0.05)],
        &cfg,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "sample 1 of head of series 1 is NaN");
}

#[test]
fn a_sample_against_itself_is_no_change() {
    let cfg = CompareConfig::default();
    let x = lognormal(21, 30, 3.0, 0.02);
    let c = compare_series(&x, &x, 0.05, &cfg).unwrap();
    assert_eq!(c.change, Change::NoChange, "{c:?}");
    assert_eq!(c.ratio, 1.0);
    assert_eq!(c.p_value, 1.0);
    assert_eq!(c.q_value, 1.0);
    assert!(c.ratio_ci[0] <= 1.0 && 1.0 <= c.ratio_ci[1]);
    assert!(c.reason.contains("within the 5% band"), "{}", c.reason);
    let mw = mann_whitney_u(&x, &x).unwrap();
    assert_eq!((mw.u, mw.z, mw.p_value), (450.0, 0.0, 1.0));
    // a constant sample: a degenerate interval [1, 1]
    let k = [2.5; 6];
    let c = compare_series(&k, &k, 0.0, &cfg).unwrap();
    assert_eq!(c.change, Change::NoChange);
    assert_eq!((c.ratio, c.ratio_ci, c.p_value), (1.0, [1.0, 1.0], 1.0));
    assert_eq!(
        ratio_of_medians_ci(&k, &k, 0.9, 100, 1).unwrap(),
        (1.0, [1.0, 1.0])
    );
}

#[test]
fn too_few_or_too_noisy_is_inconclusive() {
    let cfg = CompareConfig::default();
    let base = lognormal(31, 30, 1.0, 0.03);
    // even a 50% slowdown is not judged on 3 head samples
    let head = [1.5, 1.52, 1.49];
    let c = compare_series(&base, &head, 0.05, &cfg).unwrap();
    assert_eq!(c.change, Change::Inconclusive);
    assert_eq!(c.reason, "only 3 head samples (< 5)");
    assert!(close(c.ratio, 1.5, 0.05));
    let c = compare_series(&head, &head[..2], 0.05, &cfg).unwrap();
    assert_eq!(c.reason, "only 3 base and 2 head samples (< 5)");
    let c = compare_series(&head, &base, 0.05, &cfg).unwrap();
    assert_eq!(c.reason, "only 3 base samples (< 5)");

    // a 3% shift buried in 40% noise: neither a regression nor a no-change
    let base = lognormal(41, 30, 1.0, 0.4);
    let head: Vec<f64> = lognormal(42, 30, 1.0, 0.4)
        .iter()
        .map(|x| x * 1.03)
        .collect();
    let c = compare_series(&base, &head, 0.05, &cfg).unwrap();
    assert_eq!(c.change, Change::Inconclusive, "{c:?}");
    assert!(c.p_value > 0.05, "p {}", c.p_value);
    assert!(c.ratio_ci[1] - c.ratio_ci[0] > 0.2, "ci {:?}", c.ratio_ci);
    assert!(
        c.reason.starts_with("no significant difference"),
        "{}",
        c.reason
    );
}

#[test]
fn benjamini_hochberg_known_vector() {
    // sorted: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04
    let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
    let want = [0.02, 0.04, 0.04, 0.02];
    assert!(
        q.iter().zip(want).all(|(a, b)| close(*a, b, 1e-12)),
        "{q:?}"
    );
    // step-up: a later small m p/j pulls earlier q-values down; capped at 1
    let q = benjamini_hochberg(&[0.02, 0.03, 0.035]);
    assert!(q.iter().all(|&x| close(x, 0.035, 1e-12)), "{q:?}");
    assert_eq!(benjamini_hochberg(&[0.9, 1.0]), vec![1.0, 1.0]);
    assert_eq!(benjamini_hochberg(&[0.3]), vec![0.3]);
    assert!(benjamini_hochberg(&[]).is_empty());
    let q = benjamini_hochberg(&[0.01, f64::NAN]);
    assert!(close(q[0], 0.02, 1e-12) && q[1].is_nan(), "{q:?}");
}

#[test]
fn change_points_find_steps() {
    // constant: none, whatever the level
    assert_eq!(change_points(&[5.0; 20], None), Vec::<usize>::new());
    assert_eq!(change_points(&[0.0; 20], None), Vec::<usize>::new());
    // a noise-free step: exactly one
    let mut clean = vec![1.0; 10];
    clean.extend([2.0; 10]);
    assert_eq!(change_points(&clean, None), vec![10]);
    // a 30% step at index 10 in 20 points with 2% noise
    let noisy: Vec<f64> = lognormal(51, 20, 1.0, 0.02)
        .iter()
        .enumerate()
        .map(|(i, x)| if i < 10 { *x } else { 1.3 * x })
        .collect();
    assert_eq!(change_points(&noisy, None), vec![10]);
    // two steps (up at 10, down at 20) in 30 points
    let two: Vec<f64> = lognormal(52, 30, 10.0, 0.02)
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            0..10 => *x,
            10..20 => 1.3 * x,
            _ => 0.8 * x,
        })
        .collect();
    assert_eq!(change_points(&two, None), vec![10, 20]);
    // the penalty decides: huge -> none, zero -> every distinct step
    assert!(change_points(&two, Some(1e6)).is_empty());
    assert!(change_points(&two, Some(f64::INFINITY)).is_empty());
    assert_eq!(change_points(&[1.0, 1.0, 2.0, 3.0], Some(0.0)), vec![2, 3]);
    // non-positive values: raw scale; non-finite or too short: none
    assert_eq!(
        change_points(&[-1.0, -1.1, -0.9, 3.0, 3.1, 2.9], None),
        vec![3]
    );
    assert!(change_points(&[1.0, f64::NAN, 2.0], None).is_empty());
    assert!(change_points(&[1.0], None).is_empty());
    assert!(change_points(&[], None).is_empty());
    assert_eq!(change_points(&[1.0, 2.0], Some(0.0)), vec![1]);
}

#[test]
fn a_known_noise_floor_keeps_small_histories_from_splitting() {
    // Two runs 10% apart: without a floor the single difference is the whole noise estimate
    // (MAD 0) and splits; with each value's own variance (sd 8% on the log scale) it does not.
    assert_eq!(change_points(&[1.0, 1.1], None), vec![1]);
    assert!(change_points_with_noise(&[1.0, 1.1], 0.08 * 0.08).is_empty());
    // A clear 50% step over ten runs still splits with that floor.
    let v: Vec<f64> = (0..10).map(|i| if i < 5 { 1.0 } else { 1.5 }).collect();
    assert_eq!(change_points_with_noise(&v, 0.03 * 0.03), vec![5]);
}

#[test]
fn change_points_on_pure_noise_are_the_penalty_s_false_alarms() {
    // 100 noise-only histories of 30 runs (3% lognormal noise). With the default
    // 3 sigma2 ln(n) penalty about 10% of such histories get at least one spurious change
    // point (measured over 1000 seeds; 23% with the BIC's factor 2), so this bounds the
    // rate rather than asking for none.
    let with_alarm = (0..100)
        .filter(|&s| !change_points(&lognormal(600 + s, 30, 1.0, 0.03), None).is_empty())
        .count();
    assert!(
        with_alarm <= 20,
        "{with_alarm} of 100 noise histories split"
    );
}

#[test]
fn bad_input_is_an_error() {
    let cfg = CompareConfig::default();
    let ok = [1.0, 2.0, 3.0];
    assert_eq!(
        mann_whitney_u(&[], &ok).unwrap_err().to_string(),
        "a is empty"
    );
    assert_eq!(
        mann_whitney_u(&ok, &[1.0, f64::NAN])
            .unwrap_err()
            .to_string(),
        "sample 1 of b is NaN"
    );
    assert_eq!(
        compare_series(&ok, &[], 0.05, &cfg)
            .unwrap_err()
            .to_string(),
        "head is empty"
    );
    assert_eq!(
        compare_series(&[1.0, f64::NAN], &ok, 0.05, &cfg)
            .unwrap_err()
            .to_string(),
        "sample 1 of base is NaN"
    );
    assert_eq!(
        compare_series(&ok, &[1.0, f64::INFINITY], 0.05, &cfg)
            .unwrap_err()
            .to_string(),
        "sample 1 of head is infinite"
    );
    assert_eq!(
        ratio_of_medians_ci(&[1.0, -2.0], &ok, 0.95, 100, 0)
            .unwrap_err()
            .to_string(),
        "sample 1 of base is not positive (-2)"
    );
    assert!(matches!(
        ratio_of_medians_ci(&ok, &[0.0, 1.0], 0.95, 100, 0),
        Err(ClaimError::NonPositive { .. })
    ));
    assert!(matches!(
        ratio_of_medians_ci(&ok, &ok, 1.0, 100, 0),
        Err(ClaimError::InvalidParameter { name: "level", .. })
    ));
    assert!(matches!(
        ratio_of_medians_ci(&ok, &ok, 0.95, 0, 0),
        Err(ClaimError::InvalidParameter {
            name: "resamples",
            ..
        })
    ));
    assert!(matches!(
        compare_series(&ok, &ok, -0.1, &cfg),
        Err(ClaimError::BadMargin { .. })
    ));
    let bad = CompareConfig { alpha: 0.0, ..cfg };
    assert!(matches!(
        compare_series(&ok, &ok, 0.05, &bad),
        Err(ClaimError::BadAlpha(_))
    ));
    assert!(compare_all(&[(&ok, &ok, 0.05)], &bad).is_err());
}

#[test]
fn config_defaults_and_serde() {
    let d = CompareConfig::default();
    assert_eq!(
        (
            d.min_effect,
            d.alpha,
            d.level,
            d.resamples,
            d.min_samples,
            d.seed
        ),
        (0.05, 0.05, 0.95, 10_000, 5, 0x5eed)
    );
    let c: CompareConfig = serde_json::from_str(r#"{"alpha": 0.01}"#).unwrap();
    assert_eq!((c.alpha, c.resamples), (0.01, 10_000));
}
