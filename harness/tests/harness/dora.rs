//! The DoRA reproduction end to end on flex: bad settings (rank 0, rank > min(d_in, d_out),
//! α ≤ 0, tuning seeds that are verdict seeds, unknown fields) stop the run before any training
//! with exit 4 and the problem named; a smoke run gives every claim a computed verdict and a
//! paper page with the real-text sections (on the fixture corpus, from continual's shared base
//! model), the synthetic controls' rank sweeps and learning curves.

use std::path::Path;

use crate::cli::{bin, stderr};

fn args(dir: &Path, config: Option<&Path>, seeds: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--backend",
        "flex",
        "--scale",
        "smoke",
        "--only",
        "dora",
        "--seeds",
        seeds,
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(dir.display().to_string());
    a.push("--corpus-root".into());
    a.push(crate::continual::fixture().display().to_string());
    if let Some(c) = config {
        a.push("--config".into());
        a.push(c.display().to_string());
    }
    a
}

#[test]
fn bad_dora_settings_are_exit_4_before_training() {
    let d = tempfile::tempdir().unwrap();
    for (patch, expect) in [
        (r#"{"dora": {"ranks": [0, 1]}}"#, "ranks[0] = 0"),
        (
            r#"{"dora": {"ranks": [1, 80]}}"#,
            "1 ≤ r ≤ min(d_in, d_out)",
        ),
        (r#"{"dora": {"alpha": 0.0}}"#, "adapter α"),
        (r#"{"dora": {"alpha": -2.0}}"#, "above 0"),
        (r#"{"dora": {"tuning_seeds": [1]}}"#, "tuning"),
        (r#"{"dora": {"rank": 4}}"#, "unknown field `rank`"),
    ] {
        let cfg = d.path().join("bad.json");
        std::fs::write(&cfg, patch).unwrap();
        let out = d.path().join("run");
        let o = bin().args(args(&out, Some(&cfg), "2")).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{patch}: {err}");
        assert!(
            err.contains(expect),
            "{patch}: expected {expect:?} in {err}"
        );
        assert!(
            !out.join("manifest.json").exists(),
            "{patch}: a run started"
        );
    }
}

#[test]
fn dora_smoke_run_has_computed_verdicts_and_a_paper_page() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = bin().args(args(&out, None, "2")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap()).unwrap();
    let dora: Vec<_> = claims["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["paper"] == "dora")
        .collect();
    assert!(dora.len() >= 10, "{dora:?}");
    for c in &dora {
        // Two seeds are fewer than the claims' minimum of 5: every verdict says so.
        assert_eq!(c["verdict"], "inconclusive", "{c}");
        assert_eq!(c["seeds"].as_array().unwrap().len(), 2, "{c}");
        assert!(c["proxy"].as_bool().unwrap(), "{c}");
    }
    let page = std::fs::read_to_string(out.join("report/papers/dora.html")).unwrap();
    for section in [
        "Real text, strong shift: held-out loss by method and rank",
        "Real text, strong shift: learning curves",
        "Real text, strong shift: magnitude and direction",
        "numbers beside ours",
        "capacity test",
        "Synthetic control",
        "adapting a pretrained MLP",
        "Synthetic control: learning curves",
        "Data",
    ] {
        assert!(page.contains(section), "dora page lacks {section}");
    }
    assert!(
        page.matches("<svg").count() >= 5,
        "dora page lacks its plots"
    );
}
