//! Tests of [`super`].

use super::*;
use crate::stats::testutil::normal;
use serde_json::json;

fn spec(test: TestSpec) -> ClaimSpec {
    let kind = if matches!(test, TestSpec::Exact { .. }) {
        ClaimKind::Check
    } else {
        ClaimKind::Reproduction
    };
    ClaimSpec {
        kind,
        band_rule: "the paper's sign; its size does not carry over to the toy".into(),
        id: "dora/beats-lora".into(),
        paper: "dora".into(),
        statement: "DoRA reaches a lower eval loss than LoRA at the same rank".into(),
        source: "Table 1".into(),
        test,
        metric: "eval_loss".into(),
        paper_value: json!({"dora": 1.5, "lora": 1.75}),
        margin: None,
        margin_why: String::new(),
        proxy: true,
        min_seeds: 5,
    }
}

fn clear_effect() -> Evidence {
    let b = normal(101, 8, 3.0, 0.5);
    let diff = normal(102, 8, 1.0, 0.2);
    let a = b.iter().zip(&diff).map(|(b, d)| b - d).collect();
    Evidence::Paired { a, b }
}

const SEEDS: [u64; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

#[test]
fn ordering_claim_reproduced_and_reversed() {
    let c = evaluate(
        &spec(TestSpec::ordering(Direction::Less)),
        &clear_effect(),
        &SEEDS,
        "small",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.details);
    assert_eq!(c.test, TestKind::Ordering);
    assert!(c.ci.unwrap()[1] < 0.0);
    assert!(c.our_value.as_f64().unwrap() < -0.7);
    assert_eq!(c.margin, None);
    assert!(c.details.contains("95% t-interval"), "{}", c.details);
    assert!(c.details.contains("as claimed (a < b)"), "{}", c.details);
    assert!(c.details.ends_with(": reproduced"), "{}", c.details);

    let c = evaluate(
        &spec(TestSpec::ordering(Direction::Greater)),
        &clear_effect(),
        &SEEDS,
        "small",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::NotReproduced);
    assert!(c.details.ends_with(": not-reproduced"), "{}", c.details);
}

#[test]
fn ordering_claim_too_few_seeds() {
    let ev = Evidence::Paired {
        a: vec![1.0, 1.1],
        b: vec![2.0, 2.2],
    };
    let c = evaluate(
        &spec(TestSpec::ordering(Direction::Less)),
        &ev,
        &[0, 1],
        "smoke",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(
        c.details.starts_with("too few seeds: 2 of 5 needed"),
        "{}",
        c.details
    );
    assert!(c.details.ends_with(": inconclusive"));
}

#[test]
fn ordering_claim_no_effect_is_inconclusive() {
    let d = normal(103, 8, 0.0, 0.2);
    let m = d.iter().sum::<f64>() / 8.0;
    let d: Vec<f64> = d.iter().map(|v| v - m).collect();
    let c = evaluate(
        &spec(TestSpec::ordering(Direction::Less)),
        &Evidence::Samples(d),
        &SEEDS,
        "small",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.details.contains("contains 0"), "{}", c.details);
}

#[test]
fn evaluate_rejects_bad_input() {
    let s = spec(TestSpec::ordering(Direction::Less));
    assert_eq!(
        evaluate(&s, &clear_effect(), &SEEDS[..7], "small")
            .unwrap_err()
            .to_string(),
        "7 seeds listed but the evidence has 8 per-seed values"
    );
    let mut seeds = SEEDS;
    seeds[7] = 0;
    assert_eq!(
        evaluate(&s, &clear_effect(), &seeds, "small").unwrap_err(),
        ClaimError::DuplicateSeed(0)
    );
    let nan = Evidence::Paired {
        a: vec![1.0, 2.0, 3.0, 4.0, 5.0],
        b: vec![1.0, 2.0, 3.0, f64::NAN, 5.0],
    };
    assert_eq!(
        evaluate(&s, &nan, &SEEDS[..5], "small")
            .unwrap_err()
            .to_string(),
        "sample 3 of arm b is NaN"
    );
    assert_eq!(
        evaluate(&s, &Evidence::Exact(1.0), &[], "small")
            .unwrap_err()
            .to_string(),
        "ordering test cannot use exact evidence (it needs paired or samples)"
    );
    let mut m = spec(TestSpec::equivalence(0.1));
    m.margin = Some(0.2);
    assert!(matches!(
        evaluate(&m, &clear_effect(), &SEEDS, "small"),
        Err(ClaimError::MarginMismatch { .. })
    ));
    let mut m = spec(TestSpec::ordering(Direction::Less));
    m.margin = Some(0.2);
    assert!(matches!(
        evaluate(&m, &clear_effect(), &SEEDS, "small"),
        Err(ClaimError::MarginUnused { .. })
    ));
    let bad_alpha = spec(TestSpec::Ordering {
        direction: Direction::Less,
        alpha: 1.5,
    });
    assert_eq!(
        evaluate(&bad_alpha, &clear_effect(), &SEEDS, "small").unwrap_err(),
        ClaimError::BadAlpha(1.5)
    );
    assert!(matches!(
        evaluate(
            &spec(TestSpec::equivalence(-0.1)),
            &clear_effect(),
            &SEEDS,
            "small"
        ),
        Err(ClaimError::BadMargin { .. })
    ));
}

#[test]
fn equivalence_claim_reports_tost() {
    let d = normal(104, 8, 0.01, 0.02);
    let mut s = spec(TestSpec::equivalence(0.1));
    s.margin = Some(0.1);
    s.margin_why = "0.1 nats is below seed-to-seed noise at this scale".into();
    let c = evaluate(&s, &Evidence::Samples(d), &SEEDS, "small").unwrap();
    assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.details);
    assert_eq!(c.margin, Some(0.1));
    assert!(c.details.contains("p_lower"), "{}", c.details);
    assert!(c.details.contains("90% t-interval"), "{}", c.details);
}

#[test]
fn magnitude_claim_relative_margin() {
    let xs = normal(105, 8, 10.0, 0.1);
    let c = evaluate(
        &spec(TestSpec::magnitude(10.0, Tolerance::Relative(0.05))),
        &Evidence::Samples(xs),
        &SEEDS,
        "small",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.details);
    assert_eq!(c.margin, Some(0.5));
    assert!(c.details.contains("band [9.5, 10.5]"), "{}", c.details);
}

#[test]
fn trend_claim_with_bootstrap() {
    let x = vec![0.0, 0.1, 0.25, 0.5];
    let y: Vec<Vec<f64>> = (0..12)
        .map(|s| {
            let e = normal(200 + s, 4, 0.0, 0.02);
            x.iter().zip(&e).map(|(x, e)| 1.0 - x + e).collect()
        })
        .collect();
    let seeds: Vec<u64> = (100..112).collect();
    let c = evaluate(
        &spec(TestSpec::trend(TrendDirection::Decreasing, Some(0.5))),
        &Evidence::Trend { x, y_per_seed: y },
        &seeds,
        "small",
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.details);
    assert_eq!(c.margin, Some(0.5));
    assert!(c.details.contains("bootstrap interval"), "{}", c.details);
    assert!(c.our_value.as_f64().unwrap() < -0.5);
}

#[test]
fn exact_claim_parameter_count() {
    let mut s = spec(TestSpec::exact(46_702_792_704.0, 0.0));
    s.paper_value = json!(46_702_792_704u64);
    let c = evaluate(&s, &Evidence::Exact(46_702_792_704.0), &[], "small").unwrap();
    assert_eq!(c.verdict, Verdict::Reproduced);
    assert_eq!(c.our_value, json!(46_702_792_704u64));
    assert_eq!(c.ci, None);
    assert_eq!(
        c.details,
        "ours = 46702792704, paper = 46702792704, |difference| = 0 <= tolerance 0: reproduced"
    );
    let c = evaluate(&s, &Evidence::Exact(46_702_792_705.0), &[], "small").unwrap();
    assert_eq!(c.verdict, Verdict::NotReproduced);
}

#[test]
fn verdict_and_kind_strings() {
    let strings: Vec<String> = [
        Verdict::Reproduced,
        Verdict::Partially,
        Verdict::NotReproduced,
        Verdict::Inconclusive,
    ]
    .iter()
    .map(|v| {
        let s = serde_json::to_string(v).unwrap();
        assert_eq!(s, format!("\"{v}\""));
        s
    })
    .collect();
    assert_eq!(
        strings,
        [
            "\"reproduced\"",
            "\"partially\"",
            "\"not-reproduced\"",
            "\"inconclusive\""
        ]
    );
    assert_eq!(
        serde_json::from_str::<Verdict>("\"not-reproduced\"").unwrap(),
        Verdict::NotReproduced
    );
    for (k, s) in [
        (TestKind::Ordering, "ordering"),
        (TestKind::Magnitude, "magnitude"),
        (TestKind::Equivalence, "equivalence"),
        (TestKind::Trend, "trend"),
        (TestKind::Exact, "exact"),
    ] {
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{s}\""));
        assert_eq!(k.to_string(), s);
    }
}

#[test]
fn claims_file_round_trip() {
    let claim = Claim {
        id: "mixtral/params".into(),
        paper: "mixtral".into(),
        statement: "Mixtral 8x7B has 46.7B parameters".into(),
        source: "Section 2".into(),
        test: TestKind::Exact,
        metric: "parameters".into(),
        paper_value: json!(46_702_792_704u64),
        our_value: json!(46_702_792_704u64),
        ci: None,
        margin: Some(0.0),
        margin_why: "a count".into(),
        seeds: vec![],
        scale: "small".into(),
        proxy: false,
        verdict: Verdict::Reproduced,
        details: "equal".into(),
        kind: ClaimKind::Check,
        p_value: None,
        q_value: None,
        band: None,
    };
    let ordering = Claim {
        id: "dora/beats-lora".into(),
        test: TestKind::Ordering,
        paper_value: json!({"dora": 1.5, "lora": 1.75}),
        our_value: json!(-0.25),
        ci: Some([-0.5, -0.125]),
        margin: None,
        seeds: vec![0, 1, 2, 3, 4],
        proxy: true,
        verdict: Verdict::NotReproduced,
        kind: ClaimKind::Reproduction,
        p_value: Some(0.97),
        band: Some(band_of(&TestSpec::ordering(Direction::Less), "the sign")),
        ..claim.clone()
    };
    let file = ClaimsFile::new(vec![claim, ordering]);
    let text = file.to_json();
    assert!(text.contains("\"schema_version\": 2"));
    assert!(text.contains("\"verdict\": \"not-reproduced\""));
    assert!(text.contains("\"test\": \"ordering\""));
    assert!(text.contains("\"ci\": null"));
    assert_eq!(ClaimsFile::from_json(&text).unwrap(), file);

    let value: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = value["claims"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "id",
        "paper",
        "statement",
        "source",
        "test",
        "metric",
        "paper_value",
        "our_value",
        "ci",
        "margin",
        "margin_why",
        "seeds",
        "scale",
        "proxy",
        "verdict",
        "details",
        "kind",
        "p_value",
        "q_value",
        "band",
    ] {
        assert!(keys.contains(&k), "missing {k}");
    }
    let band = &value["claims"][1]["band"];
    assert_eq!(band["reproduced"], json!([null, 0.0]));
    assert_eq!(band["measure"], json!("mean(a - b) over seeds"));

    // Version 1 (no kind, p, q, band, fdr) is still read; its claims count as reproductions.
    let mut v1: Value = serde_json::from_str(&text).unwrap();
    v1["schema_version"] = json!(1);
    v1.as_object_mut().unwrap().remove("fdr");
    for c in v1["claims"].as_array_mut().unwrap() {
        for k in ["kind", "p_value", "q_value", "band"] {
            c.as_object_mut().unwrap().remove(k);
        }
    }
    let old = ClaimsFile::from_json(&v1.to_string()).unwrap();
    assert_eq!(old.schema_version, 1);
    assert!(old.fdr.is_none());
    assert!(
        old.claims
            .iter()
            .all(|c| c.kind == ClaimKind::Reproduction && c.band.is_none())
    );

    let v3 = text.replace("\"schema_version\": 2", "\"schema_version\": 3");
    assert_eq!(
        ClaimsFile::from_json(&v3).unwrap_err(),
        ClaimError::UnsupportedSchema {
            found: 3,
            expected: 2
        }
    );
    assert!(matches!(
        ClaimsFile::from_json("{"),
        Err(ClaimError::Json(_))
    ));
}

#[test]
fn claim_spec_round_trip() {
    let s = spec(TestSpec::trend(TrendDirection::Decreasing, Some(0.5)));
    let text = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<ClaimSpec>(&text).unwrap(), s);
}

#[test]
fn number_formatting() {
    assert_eq!(fmt_num(0.0), "0");
    assert_eq!(fmt_num(3.0), "3");
    assert_eq!(fmt_num(-0.99812), "-0.9981");
    assert_eq!(fmt_num(1.03676), "1.037");
    assert_eq!(fmt_num(12.3456), "12.35");
    assert_eq!(fmt_num(0.1), "0.1");
    assert_eq!(fmt_num(0.99999997), "1");
    assert_eq!(fmt_num(0.000123), "1.23e-4");
    assert_eq!(fmt_num(123456.5), "1.235e5");
    assert_eq!(fmt_num(46_702_792_704.0), "46702792704");
    assert_eq!(fmt_num(f64::NAN), "NaN");
}

#[test]
fn kinds_and_band_rules_are_enforced() {
    let mut exact = spec(TestSpec::exact(1.0, 0.0));
    exact.kind = ClaimKind::Reproduction;
    assert!(matches!(
        evaluate(&exact, &Evidence::Exact(1.0), &[], "small"),
        Err(ClaimError::ExactNotCheck { .. })
    ));
    exact.kind = ClaimKind::Check;
    let c = evaluate(&exact, &Evidence::Exact(1.0), &[], "small").unwrap();
    assert_eq!(
        (c.kind, c.p_value, c.q_value),
        (ClaimKind::Check, None, None)
    );
    assert_eq!(
        ClaimSpec::new("p", "x", "s", "src", "m", TestSpec::exact(1.0, 0.0)).kind,
        ClaimKind::Check
    );

    let mut s = spec(TestSpec::ordering(Direction::Less));
    s.band_rule = " ".into();
    assert!(matches!(
        evaluate(&s, &clear_effect(), &SEEDS, "small"),
        Err(ClaimError::MissingBandRule { .. })
    ));
}

#[test]
fn p_values_follow_each_test() {
    // A clear effect in the claimed direction: small p; reversed: p near 1.
    let s = spec(TestSpec::ordering(Direction::Less));
    let c = evaluate(&s, &clear_effect(), &SEEDS, "small").unwrap();
    assert!(c.p_value.unwrap() < 1e-4, "{:?}", c.p_value);
    assert!(c.details.contains("p = "));
    let s = spec(TestSpec::ordering(Direction::Greater));
    let c = evaluate(&s, &clear_effect(), &SEEDS, "small").unwrap();
    assert!(c.p_value.unwrap() > 0.999);

    // t-test by hand: d = [1, 2, 3, 4, 5], t = 3 / (1.5811 / sqrt 5) = 4.2426, df 4:
    // P(T >= 4.2426) = 0.006624.
    let p = crate::stats::one_sided_p(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0, true).unwrap();
    assert!((p - 0.006624).abs() < 1e-5, "{p}");
    assert_eq!(crate::stats::one_sided_p(&[1.0], 0.0, true), None);
    assert_eq!(crate::stats::one_sided_p(&[2.0, 2.0], 0.0, true), Some(0.0));
    assert_eq!(
        crate::stats::one_sided_p(&[2.0, 2.0], 0.0, false),
        Some(1.0)
    );

    // Magnitude: inside a wide band, small p; with the mean on the band's edge, p is not small.
    let xs = normal(7, 8, 1.0, 0.05);
    let inside = spec(TestSpec::magnitude(1.0, Tolerance::Absolute(0.5)));
    let c = evaluate(&inside, &Evidence::Samples(xs.clone()), &SEEDS, "small").unwrap();
    assert!(c.p_value.unwrap() < 1e-6);
    let edge = spec(TestSpec::magnitude(1.5, Tolerance::Absolute(0.5)));
    let c = evaluate(&edge, &Evidence::Samples(xs), &SEEDS, "small").unwrap();
    assert!(c.p_value.unwrap() > 0.1, "{:?}", c.p_value);

    // Trend: every seed decreasing, p tiny for "decreasing", near 1 for "increasing".
    let x = vec![0.0, 1.0, 2.0, 3.0];
    let y: Vec<Vec<f64>> = (0..5)
        .map(|s| vec![4.0 + s as f64 * 0.1, 3.0, 2.5, 1.0])
        .collect();
    let ev = Evidence::Trend { x, y_per_seed: y };
    let c = evaluate(
        &spec(TestSpec::trend(TrendDirection::Decreasing, None)),
        &ev,
        &SEEDS[..5],
        "small",
    )
    .unwrap();
    assert_eq!(c.p_value, Some(0.0));
    let c = evaluate(
        &spec(TestSpec::trend(TrendDirection::Increasing, None)),
        &ev,
        &SEEDS[..5],
        "small",
    )
    .unwrap();
    assert_eq!(c.p_value, Some(1.0));
}

fn judged(id: &str, p: Option<f64>, estimate: f64, verdict: Verdict) -> Claim {
    let mut s = spec(TestSpec::ordering(Direction::Less));
    s.id = id.into();
    let mut c = evaluate(&s, &clear_effect(), &SEEDS, "small").unwrap();
    c.p_value = p;
    c.our_value = json!(estimate);
    c.verdict = verdict;
    c
}

#[test]
fn fdr_keeps_only_claims_that_survive_correction_and_lie_in_their_band() {
    let mut claims = vec![
        judged("dora/a", Some(0.001), -1.0, Verdict::Reproduced),
        // Significant alone (p < 0.05) but not after BH over 4: q = 4 * 0.04 / 2 = 0.08 -> 0.08.
        judged("dora/b", Some(0.04), -1.0, Verdict::Reproduced),
        judged("dora/c", Some(0.9), 1.0, Verdict::NotReproduced),
        // No p-value: counts as p = 1 and cannot stay reproduced.
        judged("dora/d", None, -1.0, Verdict::Reproduced),
        // A control and a check are outside the family.
        Claim {
            kind: ClaimKind::Control,
            ..judged("dora/e", Some(0.5), -1.0, Verdict::Reproduced)
        },
        Claim {
            kind: ClaimKind::Check,
            p_value: None,
            ..judged("dora/f", None, -1.0, Verdict::Reproduced)
        },
    ];
    let fdr = apply_fdr(&mut claims, 0.05);
    assert_eq!(fdr.family_size, 4);
    assert_eq!(fdr.method, "BH");
    assert_eq!(fdr.papers, vec!["dora".to_string()]);
    let v: Vec<Verdict> = claims.iter().map(|c| c.verdict).collect();
    assert_eq!(
        v,
        [
            Verdict::Reproduced,
            Verdict::Inconclusive,
            Verdict::NotReproduced,
            Verdict::Inconclusive,
            Verdict::Reproduced,
            Verdict::Reproduced
        ]
    );
    assert!((claims[0].q_value.unwrap() - 0.004).abs() < 1e-12);
    assert!((claims[1].q_value.unwrap() - 0.08).abs() < 1e-12);
    assert!(
        claims[1].details.contains("q = 0.08 > 0.05"),
        "{}",
        claims[1].details
    );
    assert_eq!(claims[3].q_value, None);
    assert_eq!(claims[4].q_value, None);
    assert_eq!(claims[5].q_value, None);

    // An estimate outside the band does not count as reproduced, whatever q says.
    let mut out = vec![judged("dora/g", Some(1e-6), 0.5, Verdict::Reproduced)];
    apply_fdr(&mut out, 0.05);
    assert_eq!(out[0].verdict, Verdict::Inconclusive);
    assert!(
        out[0].details.contains("outside the band [-inf, 0]"),
        "{}",
        out[0].details
    );

    let file = ClaimsFile::with_fdr(
        vec![judged("dora/h", Some(0.01), -1.0, Verdict::Reproduced)],
        0.05,
    );
    assert_eq!(file.fdr.as_ref().unwrap().family_size, 1);
    assert_eq!(file.schema_version, SCHEMA_VERSION);
}
