//! Tests of [`super`].

use super::super::testutil::normal;
use super::super::{CiMethod, t_interval};
use super::*;

/// Differences with mean exactly `mean` (noise re-centred), sd about `sd`.
fn centred(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let z = normal(seed, n, 0.0, sd);
    let m = z.iter().sum::<f64>() / n as f64;
    z.iter().map(|v| v - m + mean).collect()
}

#[test]
fn ordering_clear_effect_reverse_and_none() {
    // a reaches a lower loss than b by 1.0 (sd 0.2) on 8 seeds
    let b = normal(11, 8, 3.0, 0.5);
    let diff = normal(12, 8, 1.0, 0.2);
    let a: Vec<f64> = b.iter().zip(&diff).map(|(b, d)| b - d).collect();
    let d = super::super::paired_differences(&a, &b).unwrap();
    let r = ordering_test(&d, Direction::Less, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
    let s = r.summary.unwrap();
    assert!(s.ci[1] < 0.0 && (s.mean + 1.0).abs() < 0.3);
    assert_eq!(s.method, CiMethod::TInterval);
    let r = ordering_test(&d, Direction::Greater, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::NotReproduced);

    let none = centred(13, 8, 0.0, 0.2);
    for dir in [Direction::Less, Direction::Greater] {
        assert_eq!(
            ordering_test(&none, dir, 0.05, 5, 0).unwrap().verdict,
            Verdict::Inconclusive
        );
    }
}

#[test]
fn ordering_with_bootstrap_seeds() {
    let d = normal(21, 12, -1.0, 0.2);
    let r = ordering_test(&d, Direction::Less, 0.05, 5, 3).unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
    assert!(matches!(
        r.summary.as_ref().unwrap().method,
        CiMethod::Bootstrap { .. }
    ));
    assert_eq!(r, ordering_test(&d, Direction::Less, 0.05, 5, 3).unwrap());
}

#[test]
fn ordering_too_few_seeds_is_inconclusive() {
    let r = ordering_test(&[-1.0, -1.1], Direction::Less, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!((r.n, r.seeds_needed), (2, 5));
    assert!(r.summary.is_some());
    let r = ordering_test(&[-1.0], Direction::Less, 0.05, 1, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.seeds_needed, 2);
    assert!(r.summary.is_none());
}

#[test]
fn ordering_interval_touching_zero_is_inconclusive() {
    // d = [0, 0]: degenerate interval [0, 0]
    let r = ordering_test(&[0.0, 0.0], Direction::Less, 0.05, 2, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

#[test]
fn magnitude_verdicts() {
    let tight = normal(31, 8, 10.0, 0.1);
    let v = |xs: &[f64], target, tol| magnitude_test(xs, target, tol, 0.05, 5, 0).unwrap().verdict;
    assert_eq!(
        v(&tight, 10.0, Tolerance::Absolute(0.5)),
        Verdict::Reproduced
    );
    assert_eq!(
        v(&tight, 10.0, Tolerance::Relative(0.05)),
        Verdict::Reproduced
    );
    assert_eq!(
        v(&tight, 12.0, Tolerance::Absolute(0.5)),
        Verdict::NotReproduced
    );
    assert_eq!(
        v(&tight, 12.0, Tolerance::Relative(0.05)),
        Verdict::NotReproduced
    );
    // mean exactly 10, sd 1: the 95% interval (about ±0.84) sticks out of 10 ± 0.3
    let wide = centred(32, 8, 10.0, 1.0);
    assert_eq!(v(&wide, 10.0, Tolerance::Absolute(0.3)), Verdict::Partially);
    // same data, target 10.5 ± 0.3: the mean is outside the band, the interval overlaps it
    assert_eq!(
        v(&wide, 10.5, Tolerance::Absolute(0.3)),
        Verdict::Inconclusive
    );
    assert_eq!(
        v(&tight[..2], 10.0, Tolerance::Absolute(0.5)),
        Verdict::Inconclusive
    );
    let r = magnitude_test(&tight, 10.0, Tolerance::Relative(0.05), 0.05, 5, 0).unwrap();
    assert_eq!(r.band, [9.5, 10.5]);
    assert!(matches!(
        magnitude_test(&tight, 10.0, Tolerance::Absolute(-1.0), 0.05, 5, 0),
        Err(ClaimError::BadMargin { .. })
    ));
}

#[test]
fn tost_verdicts() {
    let tiny = normal(41, 8, 0.01, 0.02);
    let r = tost(&tiny, 0.1, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
    assert!(r.p_value().unwrap() < 0.05);
    assert!((r.equivalence.as_ref().unwrap().level - 0.90).abs() < 1e-12);

    let far = normal(42, 8, 1.0, 0.1);
    let r = tost(&far, 0.1, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::NotReproduced);
    assert!(r.p_upper.unwrap() > 0.99);

    let noisy = normal(43, 8, 0.0, 1.0);
    let r = tost(&noisy, 0.1, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(r.p_value().unwrap() > 0.05);

    let r = tost(&tiny[..3], 0.1, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);

    assert_eq!(
        tost(&tiny, -0.1, 0.05, 5, 0).unwrap_err().to_string(),
        "equivalence margin must be finite and positive, got -0.1"
    );
}

#[test]
fn tost_p_values_match_the_interval() {
    // d = [1..5]: mean 3, se 0.70711, df 4; with delta = 4:
    // p_upper = P(T4 <= (3 - 4)/0.70711 = -1.41421) = 0.11509, p_lower = P(T4 >= 9.8995) ≈ 2.9e-4
    let d = [1.0, 2.0, 3.0, 4.0, 5.0];
    let r = tost(&d, 4.0, 0.05, 5, 0).unwrap();
    assert!(
        (r.p_upper.unwrap() - 0.11509).abs() < 1e-4,
        "{:?}",
        r.p_upper
    );
    assert!(r.p_lower.unwrap() < 1e-3);
    // 90% interval = t-interval at alpha 0.1, which reaches past 4 since p_upper > 0.05
    assert_eq!(
        r.equivalence.as_ref().unwrap().ci,
        t_interval(&d, 0.1).unwrap()
    );
    assert!(r.equivalence.as_ref().unwrap().ci[1] > 4.0);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    // with delta = 6: p_upper = P(T4 <= -4.2426) ≈ 0.0066 < 0.05, equivalent
    let r = tost(&d, 6.0, 0.05, 5, 0).unwrap();
    assert!(r.p_value().unwrap() < 0.05);
    assert_eq!(r.verdict, Verdict::Reproduced);
}

#[test]
fn trend_verdicts() {
    let x = [0.0, 0.1, 0.25, 0.5, 1.0];
    // forgetting falls with replay share, with noise, 6 seeds
    let decreasing: Vec<Vec<f64>> = (0..6)
        .map(|s| {
            let e = normal(50 + s, 5, 0.0, 0.05);
            x.iter().zip(&e).map(|(x, e)| 1.0 - x + e).collect()
        })
        .collect();
    let r = trend_test(
        &x,
        &decreasing,
        TrendDirection::Decreasing,
        None,
        0.05,
        5,
        0,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
    assert!(r.mean_rho.unwrap() < -0.8);
    assert!(r.pooled_rho.unwrap() < -0.8);
    let r = trend_test(
        &x,
        &decreasing,
        TrendDirection::Increasing,
        None,
        0.05,
        5,
        0,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::NotReproduced);

    // monotone on every seed: every rho is -1, degenerate interval [-1, -1]
    let perfect: Vec<Vec<f64>> = (0..5)
        .map(|s| x.iter().map(|x| -x * (s as f64 + 1.0)).collect())
        .collect();
    let r = trend_test(&x, &perfect, TrendDirection::Decreasing, None, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
    assert_eq!(r.summary.unwrap().ci, [-1.0, -1.0]);

    // pure noise
    let noise: Vec<Vec<f64>> = (0..6).map(|s| normal(60 + s, 5, 0.0, 1.0)).collect();
    let r = trend_test(&x, &noise, TrendDirection::Decreasing, None, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");

    // right direction, weaker than the claimed strength: y falls weakly with heavy noise
    let weak: Vec<Vec<f64>> = (0..8)
        .map(|s| {
            let e = normal(70 + s, 5, 0.0, 0.35);
            x.iter().zip(&e).map(|(x, e)| 1.0 - x + e).collect()
        })
        .collect();
    let r = trend_test(&x, &weak, TrendDirection::Decreasing, None, 0.05, 5, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced, "{r:?}");
    let m = r.mean_rho.unwrap();
    let r = trend_test(
        &x,
        &weak,
        TrendDirection::Decreasing,
        Some(0.99),
        0.05,
        5,
        0,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Partially, "mean rho {m}");
    let r = trend_test(
        &x,
        &weak,
        TrendDirection::Decreasing,
        Some(-m - 0.01),
        0.05,
        5,
        0,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Reproduced);
}

#[test]
fn trend_constant_metric_and_bad_input() {
    let x = [1.0, 2.0, 3.0];
    let y = vec![
        vec![1.0, 2.0, 3.0],
        vec![5.0, 5.0, 5.0],
        vec![1.0, 2.0, 4.0],
    ];
    let r = trend_test(&x, &y, TrendDirection::Increasing, None, 0.05, 2, 0).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.constant_seed, Some(1));
    assert_eq!(r.rho_per_seed[1], None);
    assert!(r.mean_rho.is_none() && r.pooled_rho.is_some());

    assert!(matches!(
        trend_test(
            &[1.0, 1.0, 1.0],
            &y,
            TrendDirection::Increasing,
            None,
            0.05,
            2,
            0
        ),
        Err(ClaimError::Constant { .. })
    ));
    assert_eq!(
        trend_test(
            &x,
            &[vec![1.0, 2.0]],
            TrendDirection::Increasing,
            None,
            0.05,
            2,
            0
        )
        .unwrap_err()
        .to_string(),
        "length mismatch: x has 3 values but y of seed 0 has 2"
    );
    assert!(trend_test(&x, &[], TrendDirection::Increasing, None, 0.05, 2, 0).is_err());
    assert!(trend_test(&x, &y, TrendDirection::Increasing, Some(1.5), 0.05, 2, 0).is_err());
}

#[test]
fn exact_verdicts() {
    let n = 46_702_792_704.0;
    assert_eq!(exact_test(n, n, 0.0).unwrap().verdict, Verdict::Reproduced);
    let r = exact_test(n + 1.0, n, 0.0).unwrap();
    assert_eq!(r.verdict, Verdict::NotReproduced);
    assert_eq!(r.abs_diff, 1.0);
    assert_eq!(
        exact_test(n + 1.0, n, 1.0).unwrap().verdict,
        Verdict::Reproduced
    );
    assert!(exact_test(f64::NAN, n, 0.0).is_err());
    assert!(exact_test(n, n, -1.0).is_err());
}

#[test]
fn test_spec_serde_and_margin() {
    let spec: TestSpec =
        serde_json::from_str(r#"{"kind": "ordering", "direction": "less"}"#).unwrap();
    assert_eq!(spec, TestSpec::ordering(Direction::Less));
    let spec = TestSpec::magnitude(10.0, Tolerance::Relative(0.05));
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"magnitude","target":10.0,"tolerance":{"relative":0.05},"alpha":0.05}"#
    );
    assert_eq!(serde_json::from_str::<TestSpec>(&json).unwrap(), spec);
    assert_eq!(spec.margin(), Some(0.5));
    assert_eq!(TestSpec::ordering(Direction::Greater).margin(), None);
    assert_eq!(TestSpec::equivalence(0.1).margin(), Some(0.1));
    assert!(TestSpec::equivalence(0.0).validate().is_err());
    assert!(
        TestSpec::Ordering {
            direction: Direction::Less,
            alpha: 0.5
        }
        .validate()
        .is_err()
    );
    let ev = Evidence::Paired {
        a: vec![1.0],
        b: vec![2.0],
    };
    let json = serde_json::to_string(&ev).unwrap();
    assert_eq!(json, r#"{"paired":{"a":[1.0],"b":[2.0]}}"#);
    assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), ev);
}
