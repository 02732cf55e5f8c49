//! Tests of [`super`].

use super::*;
use crate::stats::testutil::normal;
use serde_json::json;

fn spec(test: TestSpec) -> ClaimSpec {
    ClaimSpec {
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
        ..claim.clone()
    };
    let file = ClaimsFile::new(vec![claim, ordering]);
    let text = file.to_json();
    assert!(text.contains("\"schema_version\": 1"));
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
    ] {
        assert!(keys.contains(&k), "missing {k}");
    }

    let v2 = text.replace("\"schema_version\": 1", "\"schema_version\": 2");
    assert_eq!(
        ClaimsFile::from_json(&v2).unwrap_err(),
        ClaimError::UnsupportedSchema {
            found: 2,
            expected: 1
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
