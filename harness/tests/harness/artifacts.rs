//! Units that depend on another unit's stored artifact (a checkpoint, a policy): a paper defined
//! here stores one per seed and its arm reads it back; `--only` pulls the dependency in; a
//! resume reads the stored artifact and refuses a corrupt one with a message naming the file;
//! a record listing a name outside the grammar is refused before any path is built; the paper's
//! declared fallback reaches the manifest and the report.

use claimbench::devices::BackendChoice;
use claimbench::registry::{Entry, Registry};
use claimbench::run::{RunOptions, run};
use claimbench::store::{Manifest, RunDir};
use claimbench_paper::report::Section;

use crate::fixtures::train_unit;
use claimbench_paper::{
    Artifact, Fallback, Judged, MetricRow, Outcome, Paper, PaperInfo, RunContext, Scale,
    UnitRecord, UnitSpec, UnitStatus,
};

/// Per seed: `base` stores `seed · 10` as an artifact; `arm` reads it and reports it plus one.
struct Chain;

impl Paper for Chain {
    type Config = serde_json::Value;

    fn info(&self) -> PaperInfo {
        PaperInfo {
            id: "chain",
            title: "A paper whose arms start from a stored artifact",
            arxiv: "0000.00001",
            kernels: &[],
        }
    }

    fn config(&self, _scale: Scale) -> serde_json::Value {
        serde_json::json!({})
    }

    fn validate(&self, _cfg: &serde_json::Value, _seeds: Option<&[u64]>) -> Result<(), String> {
        Ok(())
    }

    fn estimated_bytes(&self, _cfg: &serde_json::Value) -> u64 {
        0
    }

    fn units(&self, _cfg: &serde_json::Value, seeds: &[u64]) -> Vec<UnitSpec> {
        seeds
            .iter()
            .flat_map(|&s| {
                let base = format!("chain/base/seed-{s}");
                [
                    train_unit("chain", "chain", "base", s, "base", Vec::new()),
                    train_unit("chain", "chain", "arm", s, "arm", vec![base]),
                ]
            })
            .collect()
    }

    fn run_unit(&self, _cfg: &serde_json::Value, unit: &UnitSpec, ctx: &mut RunContext) -> Outcome {
        let seed = unit.seed.unwrap_or(0);
        if unit.task == "base" {
            return Outcome {
                artifacts: vec![Artifact {
                    name: "base.bin".into(),
                    bytes: (seed * 10).to_le_bytes().to_vec(),
                }],
                ..Outcome::passed("stored".into(), Vec::new())
            };
        }
        match ctx.artifact(&format!("chain/base/seed-{seed}"), "base.bin") {
            Ok(bytes) => {
                let v = u64::from_le_bytes(bytes.try_into().unwrap_or_default()) as f64 + 1.0;
                Outcome::passed(format!("value {v}"), vec![MetricRow::new("value", None, v)])
            }
            Err(e) => Outcome::error(e),
        }
    }

    fn claims(&self, _cfg: &serde_json::Value, _records: &[UnitRecord], _scale: &str) -> Judged {
        Judged::default()
    }

    fn claim_specs(&self, _cfg: &serde_json::Value) -> Vec<claimbench_claims::ClaimSpec> {
        Vec::new()
    }

    fn sections(&self, _cfg: &serde_json::Value, _records: &[UnitRecord]) -> Vec<Section> {
        Vec::new()
    }

    fn fallbacks(&self) -> Vec<Fallback> {
        vec![Fallback::new(
            "chain",
            "runs on flex only",
            "a test paper (no kernels)",
        )]
    }
}

fn options(out: &std::path::Path) -> RunOptions {
    RunOptions {
        scale: Some(Scale::Smoke),
        backend: Some(BackendChoice::Flex),
        seeds: Some(2),
        out: Some(out.to_path_buf()),
        quiet: true,
        ..Default::default()
    }
}

fn record(dir: &RunDir, id: &str) -> UnitRecord {
    dir.read_unit(id).unwrap().unwrap()
}

#[test]
fn an_arm_reads_its_dependency_artifact_and_a_corrupt_one_is_refused() {
    let reg = Registry::new(vec![Entry::Paper(Box::new(Chain))]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let result = run(options(&out), &reg).unwrap();
    assert_eq!(result.exit, claimbench::error::Exit::Ok);
    let (dir, manifest): (RunDir, Manifest) = RunDir::open(&out).unwrap();
    let base = record(&dir, "chain/base/seed-1");
    assert_eq!(base.artifacts.len(), 1);
    assert_eq!(base.artifacts[0].bytes, 8);
    assert_eq!(base.artifacts[0].sha256.len(), 64);
    let arm = record(&dir, "chain/arm/seed-1");
    assert_eq!(arm.scalar("value"), Some(11.0), "{}", arm.message);
    // The declared fallback is in the manifest and on the environment page.
    assert_eq!(manifest.fallbacks.len(), 1);
    assert_eq!(manifest.fallbacks[0].id, "chain");
    let env = std::fs::read_to_string(out.join("report").join("environment.html")).unwrap();
    assert!(env.contains("runs on flex only"), "{env}");

    // --only an arm selects its dependency too.
    let only = tmp.path().join("only");
    let result = run(
        RunOptions {
            only: Some(vec!["chain/arm/seed-0".into()]),
            ..options(&only)
        },
        &reg,
    )
    .unwrap();
    assert_eq!(result.exit, claimbench::error::Exit::Ok);
    let (only_dir, m) = RunDir::open(&only).unwrap();
    assert_eq!(m.units, vec!["chain/base/seed-0", "chain/arm/seed-0"]);
    assert_eq!(
        record(&only_dir, "chain/arm/seed-0").scalar("value"),
        Some(1.0)
    );

    // A resume reads the stored artifact; a corrupt one (same length) is refused by hash, with
    // a message naming the file and how to recompute it.
    let art = out
        .join("artifacts")
        .join("chain__base__seed-1")
        .join("base.bin");
    std::fs::write(&art, 99u64.to_le_bytes()).unwrap();
    std::fs::remove_file(dir.unit_path("chain/arm/seed-1")).unwrap();
    let resume = RunOptions {
        resume: Some(out.clone()),
        scale: None,
        seeds: None,
        out: None,
        ..options(&out)
    };
    run(resume, &reg).unwrap();
    let arm = record(&dir, "chain/arm/seed-1");
    assert_eq!(arm.status, UnitStatus::Error);
    assert!(arm.message.contains("SHA-256"), "{}", arm.message);
    assert!(arm.message.contains("base.bin"), "{}", arm.message);
    // Deleting the dependency's record recomputes it, and the arm passes again.
    std::fs::remove_file(dir.unit_path("chain/base/seed-1")).unwrap();
    std::fs::remove_file(dir.unit_path("chain/arm/seed-1")).unwrap();
    let resume = RunOptions {
        resume: Some(out.clone()),
        scale: None,
        seeds: None,
        out: None,
        ..options(&out)
    };
    assert_eq!(run(resume, &reg).unwrap().exit, claimbench::error::Exit::Ok);
    assert_eq!(record(&dir, "chain/arm/seed-1").scalar("value"), Some(11.0));

    // A record that lists an artifact name outside the grammar is refused (exit 4) before
    // any path is built from it.
    let p = dir.unit_path("chain/base/seed-0");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("\"base.bin\"", "\"../../x\"")).unwrap();
    let err = RunDir::open(&out)
        .and_then(|(d, _)| d.read_units())
        .unwrap_err();
    assert!(
        err.downcast_ref::<claimbench::error::InputError>()
            .is_some(),
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("artifact name"), "{err:#}");
}
