//! The continual pre-training reproduction end to end: bad settings stop the run before any
//! training with exit 4 and the problem named; a run gives every claim a computed verdict and a
//! paper page with the paper's table, curves and schedules; a SIGKILLed run resumes to the same
//! numbers (the shared stage-0 checkpoint is recomputed deterministically); and the flex
//! composition and the wgpu kernel train the same model to the same losses.

use std::path::Path;
use std::process::Stdio;

use crate::cli::{bin, stderr};
use std::time::{Duration, Instant};

use burn::backend::{Autodiff, Flex, Wgpu};
use claimbench_continual::{Arm, ExperimentConfig, Shift, run_arm};
use claimbench_paper::Scale;

/// A short flex run of the continual units with `config` as `--config`.
fn args(dir: &Path, config: &Path, seeds: &str) -> Vec<String> {
    [
        "run",
        "--backend",
        "flex",
        "--scale",
        "smoke",
        "--only",
        "continual/weak,continual/strong,continual/same-data",
        "--seeds",
        seeds,
        "--quiet",
        "--config",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        config.display().to_string(),
        "--corpus-root".into(),
        fixture().display().to_string(),
        "--out".into(),
        dir.display().to_string(),
    ])
    .collect()
}

/// The small hand-written corpus of `claimbench-corpus` (the tests do not depend on installed
/// packages; CI's smoke run reads the real ones).
pub fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reproductions/corpus/tests/fixture")
}

/// Short stages so that a whole run takes seconds.
const FAST: &str = r#"{"continual": {"stage_steps": 24, "eval_every": 8, "train_sequences": 128,
    "eval_sequences": 16, "replay_shares": [0.0, 0.05, 0.5]}}"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_settings_are_exit_4_before_training_with_the_problem_named() {
    let d = tempfile::tempdir().unwrap();
    for (patch, expect) in [
        (
            r#"{"continual": {"replay_shares": [0.0, 1.5]}}"#,
            "replay share 1.5 is outside [0, 1]",
        ),
        (
            r#"{"continual": {"eta_min": 0.5}}"#,
            "η_min 5e-1 is above η_max 1e-2",
        ),
        (
            r#"{"continual": {"warmup_share": 2.0}}"#,
            "warmup (120 steps) is longer than the stage (60 steps)",
        ),
        (
            r#"{"continual": {"train_sequences": 0}}"#,
            "train_sequences is 0: the dataset would be empty",
        ),
        (
            r#"{"continual": {"model": {"vocab": 10}}}"#,
            "model vocab 10 does not match",
        ),
        (
            r#"{"continual": {"stage_step": 10}}"#,
            "unknown field `stage_step`",
        ),
        (r#"{"llama": {}}"#, "unknown paper \"llama\""),
        ("{not json", "not valid JSON"),
    ] {
        let cfg = write(d.path(), "bad.json", patch);
        let out = d.path().join("run");
        let t = Instant::now();
        let o = bin().args(args(&out, &cfg, "1")).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{patch}: {err}");
        assert!(
            err.contains(expect),
            "{patch}: expected {expect:?} in {err}"
        );
        assert!(
            err.contains("bad.json"),
            "the message names the file: {err}"
        );
        assert!(
            !out.join("manifest.json").exists(),
            "{patch}: a run directory was created"
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{patch}: not refused up front"
        );
    }
    let missing = d.path().join("absent.json");
    let o = bin()
        .args(args(&d.path().join("r"), &missing, "1"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("absent.json"), "{}", stderr(&o));
}

#[test]
fn a_run_gives_every_claim_a_verdict_a_paper_page_and_resumes_after_sigkill() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), "fast.json", FAST);
    let (clean, killed) = (d.path().join("clean"), d.path().join("killed"));
    let o = bin().args(args(&clean, &cfg, "3")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // 3 + 3 replay arms, 2 peaks, constant, 2 unions, same data, infinite = 14 arms x 3 seeds,
    // and the stage-0 checkpoint unit of each seed.
    let units = crate::cli::records(&clean).len();
    assert_eq!(units, 45);
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clean.join("claims.json")).unwrap()).unwrap();
    let claims = claims["claims"].as_array().unwrap();
    let ids: Vec<&str> = claims.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 13, "{ids:?}");
    for c in claims {
        assert_eq!(c["seeds"].as_array().unwrap().len(), 3, "{c}");
        assert!(c["proxy"].as_bool().unwrap());
        assert!(
            c["details"]
                .as_str()
                .unwrap()
                .ends_with(c["verdict"].as_str().unwrap()),
            "{c}"
        );
    }
    let page = std::fs::read_to_string(clean.join("report/papers/continual.html")).unwrap();
    for needle in [
        "paper old (Pile)",
        "2.44",
        "union (from scratch)",
        "learning-rate schedules",
        "infinite schedule vs repeated cosine",
        "rewarm-replay-matches-union-weak",
        "Shift sizes",
        "control-strong-shift-twice-weak",
        "en-fortunes",
        "corpus-root",
    ] {
        assert!(page.contains(needle), "paper page lacks {needle:?}");
    }
    assert_eq!(
        page.matches("<figure>").count(),
        9,
        "figures on the paper page"
    );

    // Killed after its first units, resumed: the same numbers.
    let mut child = bin()
        .args(args(&killed, &cfg, "3"))
        .env("CLAIMBENCH_TEST_UNIT_DELAY_MS", "1500")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while crate::cli::records(&killed).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no unit finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = bin()
        .args(["run", "--resume", &killed.display().to_string(), "--quiet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let metrics = |dir: &Path| {
        let mut v: Vec<(String, String)> = crate::cli::records(dir)
            .into_iter()
            .map(|p| {
                let j: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                (j["unit_id"].to_string(), j["metrics"].to_string())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(metrics(&killed), metrics(&clean));
    let a = std::fs::read_to_string(clean.join("claims.json")).unwrap();
    let b = std::fs::read_to_string(killed.join("claims.json")).unwrap();
    assert_eq!(a, b, "claims differ after resume");
}

#[test]
fn flex_composition_and_wgpu_kernel_train_the_same_model() {
    if claimbench_kernels::testing::client_or_skip::<cubecl::wgpu::WgpuRuntime>(
        "continual training paths",
    )
    .is_none()
    {
        return;
    }
    let cfg = ExperimentConfig {
        stage_steps: 8,
        eval_every: 4,
        train_sequences: 64,
        eval_sequences: 16,
        ..ExperimentConfig::for_scale(Scale::Smoke)
    };
    let arm = Arm::Replay {
        shift: Shift::Weak,
        share: 0.5,
    };
    let data = claimbench_paper::DataEnv {
        corpus_root: Some(fixture()),
    };
    let f =
        run_arm::<Autodiff<Flex>>(&cfg, &arm, 5, &data, &Default::default(), &mut || {}).unwrap();
    let w =
        run_arm::<Autodiff<Wgpu>>(&cfg, &arm, 5, &data, &Default::default(), &mut || {}).unwrap();
    assert_eq!(f.curve.len(), w.curve.len());
    for (a, b) in f.curve.iter().zip(&w.curve) {
        assert_eq!(a.step, b.step);
        for (x, y, what) in [
            (a.d0_loss, b.d0_loss, "D0"),
            (a.d1_loss, b.d1_loss, "D1"),
            (a.train_loss, b.train_loss, "train"),
        ] {
            if x.is_nan() && y.is_nan() {
                continue;
            }
            assert!(
                (x - y).abs() <= 2e-3 * x.abs().max(1.0),
                "step {}: {what} loss flex {x} vs wgpu {y}",
                a.step
            );
        }
    }
}
