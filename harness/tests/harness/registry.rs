//! The shape holds: a paper defined here (two arms, one claim, one figure), in a registry of its
//! own, runs through `run`, the claims and the report with no change to harness code.

use claimbench::devices::BackendChoice;
use claimbench::registry::{Entry, Registry};
use claimbench::run::{RunOptions, run};
use claimbench_claims::{ClaimSpec, ClaimsFile, Direction, Evidence, TestSpec, Verdict};
use claimbench_paper::report::{Figure, Section, Series, Table};
use claimbench_paper::{
    Judged, MetricRow, Outcome, Paper, PaperInfo, RunContext, Scale, UnitRecord, UnitSpec,
};
use serde::{Deserialize, Serialize};

use crate::fixtures::train_unit;

/// A synthetic labelled control: arm `b` measures `gap` above arm `a`, plus seeded noise.
struct Toy;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToyConfig {
    /// Mean of `b − a`.
    gap: f64,
}

const ARMS: [&str; 2] = ["a", "b"];

/// Deterministic noise in [−0.1, 0.1) from the seed and arm.
fn noise(seed: u64, arm: usize) -> f64 {
    let x = (seed.wrapping_mul(6364136223846793005)
        ^ (arm as u64 + 1).wrapping_mul(1442695040888963407))
        >> 11;
    (x as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
}

fn values(records: &[UnitRecord], arm: &str) -> Vec<(u64, f64)> {
    let mut v: Vec<(u64, f64)> = records
        .iter()
        .filter(|u| u.paper == "toy" && u.arm == arm && u.passed())
        .filter_map(|u| Some((u.seed?, u.scalar("value")?)))
        .collect();
    v.sort_by_key(|&(s, _)| s);
    v
}

impl Paper for Toy {
    type Config = ToyConfig;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: "toy",
            title: "A toy paper",
            arxiv: "0000.00000",
            kernels: &[],
        }
    }

    fn config(&self, _scale: Scale) -> ToyConfig {
        ToyConfig { gap: 1.0 }
    }

    fn validate(&self, cfg: &ToyConfig, _seeds: Option<&[u64]>) -> Result<(), String> {
        if cfg.gap.is_finite() {
            Ok(())
        } else {
            Err(format!("gap = {}: must be finite", cfg.gap))
        }
    }

    fn estimated_bytes(&self, _cfg: &ToyConfig) -> u64 {
        0
    }

    fn units(&self, _cfg: &ToyConfig, seeds: &[u64]) -> Vec<UnitSpec> {
        seeds
            .iter()
            .flat_map(|&s| ARMS.map(|arm| train_unit("toy", "control", arm, s, "arm", Vec::new())))
            .collect()
    }

    fn run_unit(&self, cfg: &ToyConfig, unit: &UnitSpec, _ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        let arm = ARMS.iter().position(|a| *a == unit.arm).unwrap_or(0);
        let value = arm as f64 * cfg.gap + noise(seed, arm);
        Outcome::passed(
            format!("value {value:.3}"),
            vec![MetricRow::new("value", None, value)],
        )
    }

    fn claim_specs(&self, _cfg: &ToyConfig) -> Vec<ClaimSpec> {
        vec![toy_spec()]
    }

    fn claims(&self, _cfg: &ToyConfig, records: &[UnitRecord], scale: &str) -> Judged {
        let (a, b) = (values(records, "a"), values(records, "b"));
        let seeds: Vec<u64> = a.iter().map(|&(s, _)| s).collect();
        let spec = toy_spec();
        let evidence = Evidence::Paired {
            a: a.iter().map(|&(_, v)| v).collect(),
            b: b.iter().map(|&(_, v)| v).collect(),
        };
        match claimbench_claims::evaluate(&spec, &evidence, &seeds, scale) {
            Ok(c) => Judged {
                claims: vec![c],
                warnings: Vec::new(),
            },
            Err(e) => Judged {
                claims: Vec::new(),
                warnings: vec![e.to_string()],
            },
        }
    }

    fn sections(&self, _cfg: &ToyConfig, records: &[UnitRecord]) -> Vec<Section> {
        let series: Vec<Series> = ARMS
            .iter()
            .map(|arm| Series {
                label: arm.to_string(),
                points: values(records, arm)
                    .into_iter()
                    .map(|(s, v)| (s as f64, v))
                    .collect(),
            })
            .collect();
        vec![Section {
            title: "Toy arms per seed".into(),
            note: "A labelled synthetic control.".into(),
            table: Some(Table {
                header: vec!["arm".into(), "seeds".into()],
                rows: ARMS
                    .iter()
                    .map(|a| vec![a.to_string(), values(records, a).len().to_string()])
                    .collect(),
            }),
            figures: vec![Figure::xy(
                "value per seed",
                "seed",
                "value",
                &series,
                false,
            )],
            caption: "One point per seed.".into(),
        }]
    }
}

fn toy_run(
    dir: &std::path::Path,
    config: Option<&str>,
) -> (claimbench::run::RunResult, ClaimsFile) {
    let reg = Registry::new(vec![Entry::Paper(Box::new(Toy))]);
    let config = config.map(|text| {
        let p = dir.with_extension("json");
        std::fs::write(&p, text).unwrap();
        p
    });
    let result = run(
        RunOptions {
            scale: Some(Scale::Smoke),
            backend: Some(BackendChoice::Flex),
            seeds: Some(6),
            out: Some(dir.to_path_buf()),
            config,
            quiet: true,
            ..Default::default()
        },
        &reg,
    )
    .unwrap();
    let claims =
        ClaimsFile::from_json(&std::fs::read_to_string(dir.join("claims.json")).unwrap()).unwrap();
    (result, claims)
}

#[test]
fn a_paper_defined_in_a_test_runs_through_run_claims_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (result, claims) = toy_run(&tmp.path().join("r"), None);
    assert_eq!(result.exit, claimbench::error::Exit::Ok);
    assert_eq!(claims.claims.len(), 1);
    let c = &claims.claims[0];
    assert_eq!(c.id, "toy/a-below-b");
    assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.details);
    let units = std::fs::read_dir(tmp.path().join("r/units"))
        .unwrap()
        .count();
    assert_eq!(units, 12, "two arms × six seeds");
    let page = std::fs::read_to_string(tmp.path().join("r/report/papers/toy.html")).unwrap();
    assert!(
        page.contains("Toy arms per seed"),
        "the section is on the page"
    );
    assert!(page.contains("<svg"), "the figure is drawn");
    assert!(
        page.contains("Arm a measures less than arm b."),
        "the claim is on the page"
    );

    // The same paper with the arms' order reversed by its settings: the claim is contradicted.
    let (_, flipped) = toy_run(
        &tmp.path().join("flipped"),
        Some(r#"{"toy": {"gap": -1.0}}"#),
    );
    assert_eq!(
        flipped.claims[0].verdict,
        Verdict::NotReproduced,
        "{}",
        flipped.claims[0].details
    );
}

fn toy_spec() -> ClaimSpec {
    ClaimSpec {
        min_seeds: 2,
        band_rule: "a test claim: only the sign".into(),
        ..ClaimSpec::new(
            "toy",
            "a-below-b",
            "Arm a measures less than arm b.",
            "the test",
            "value",
            TestSpec::Ordering {
                direction: Direction::Less,
                alpha: 0.05,
            },
        )
    }
}
