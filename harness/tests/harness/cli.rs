//! End-to-end tests of the `claimbench` binary: bad input gets a clear error and exit 4, runs are
//! deterministic on flex, a SIGKILLed run resumes to the same results, and the report renders.
//! Each test writes its own temporary run directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `CLAIMBENCH_TEST_BIN` (e.g. an older build, to see
/// a test fail before a fix).
pub fn bin() -> Command {
    let exe = std::env::var_os("CLAIMBENCH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_claimbench")));
    let mut c = Command::new(exe);
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("CLAIMBENCH_TEST_UNIT_DELAY_MS");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("claimbench runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A fast, device-free run: flex only, the training units, smoke scale.
pub fn flex_args(out: &Path, seeds: &str) -> Vec<String> {
    [
        "run",
        "--backend",
        "flex",
        "--scale",
        "smoke",
        "--only",
        "kernels/token-logprob/train",
        "--seeds",
        seeds,
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

/// The unit records of a run directory (`units/*.json`; a run killed between writing a record
/// and renaming it leaves a `.tmp*` file, which is not a record).
pub fn records(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("units"))
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

/// The metrics of every unit, keyed by unit id (run-independent fields only).
fn unit_metrics(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in records(dir) {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        out.push((
            v["unit_id"].as_str().unwrap().to_string(),
            v["metrics"].to_string(),
        ));
    }
    out.sort();
    out
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn unknown_only_id_lists_known_ids_exit_4() {
    let o = run(&[
        "run",
        "--only",
        "no-such-paper",
        "--backend",
        "flex",
        "--quiet",
        "--out",
        &tmp().path().join("r").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("no-such-paper")
            && e.contains("known ids")
            && e.contains("kernels/token-logprob"),
        "{e}"
    );
}

#[test]
fn unwritable_out_is_exit_4() {
    let d = tmp();
    let file = d.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(&[
        "run",
        "--backend",
        "flex",
        "--quiet",
        "--out",
        &file.join("run").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
}

#[test]
fn corrupt_manifest_given_to_report_is_exit_4() {
    let d = tmp();
    std::fs::create_dir_all(d.path().join("units")).unwrap();
    std::fs::write(
        d.path().join("manifest.json"),
        b"{\"schema_version\": 1, \"run_id\": ",
    )
    .unwrap();
    let o = run(&["report", &d.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("manifest.json is corrupt"),
        "{}",
        stderr(&o)
    );
    let o = run(&["report", &d.path().join("missing").display().to_string()]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn same_seed_gives_identical_metrics_on_flex() {
    let (a, b) = (tmp(), tmp());
    let (ra, rb) = (a.path().join("run"), b.path().join("run"));
    for r in [&ra, &rb] {
        let o = bin().args(flex_args(r, "2")).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let (ma, mb) = (unit_metrics(&ra), unit_metrics(&rb));
    assert_eq!(ma.len(), 2);
    assert_eq!(ma, mb, "two flex runs with the same seeds differ");
    for f in [
        "metrics.csv",
        "metrics.parquet",
        "benchmarks.json",
        "claims.json",
        "manifest.json",
        "report/index.html",
    ] {
        assert!(ra.join(f).exists(), "{f} missing");
    }
}

#[test]
fn resume_after_sigkill_equals_an_uninterrupted_run() {
    let d = tmp();
    let (clean, killed) = (d.path().join("clean"), d.path().join("killed"));
    let o = bin().args(flex_args(&clean, "3")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A slow run (the test hook sleeps after each unit), killed once its first unit is stored.
    let mut child = bin()
        .args(flex_args(&killed, "3"))
        .env("CLAIMBENCH_TEST_UNIT_DELAY_MS", "4000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let n = records(&killed).len();
        if n >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the first unit never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stored = records(&killed).len();
    assert!(
        (1..3).contains(&stored),
        "expected a partial run, found {stored} units"
    );
    assert!(
        !killed.join("metrics.csv").exists(),
        "a killed run must not have aggregates yet"
    );

    let o = run(&["run", "--resume", &killed.display().to_string(), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(unit_metrics(&killed), unit_metrics(&clean));
    let leftovers: Vec<_> = std::fs::read_dir(killed.join("units"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|x| x != "json"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left after resume: {leftovers:?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("manifest.json")).unwrap())
            .unwrap();
    assert!(manifest["finished"].is_string());
}

#[test]
fn resume_refuses_another_commit_or_config_exit_4() {
    let d = tmp();
    let r = d.path().join("run");
    let o = bin().args(flex_args(&r, "1")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let path = r.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let original = m.clone();
    m["git_sha"] = "0000000000000000000000000000000000000000".into();
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let o = run(&["run", "--resume", &r.display().to_string(), "--quiet"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("commit"), "{}", stderr(&o));
    let o = run(&[
        "run",
        "--resume",
        &r.display().to_string(),
        "--force",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    std::fs::write(&path, serde_json::to_string(&original).unwrap()).unwrap();
    let o = run(&[
        "run",
        "--resume",
        &r.display().to_string(),
        "--seeds",
        "4",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("configuration differs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn devices_and_list_work() {
    let o = run(&["devices"]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("flex") && s.contains("wgpu") && s.contains("auto"),
        "{s}"
    );
    let o = run(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("kernels/token-logprob/bench"));
}

/// The main job at smoke scale on the default backends: needs the kernel device (lavapipe here).
/// Skipped without one unless CLAIMBENCH_REQUIRE_DEVICE=1.
#[test]
fn main_job_smoke_renders_a_kernel_page_with_the_benchmark() {
    let o = run(&["devices"]);
    let has_device = !String::from_utf8_lossy(&o.stdout).contains("wgpu     none found");
    if !has_device {
        assert_ne!(
            std::env::var("CLAIMBENCH_REQUIRE_DEVICE").as_deref(),
            Ok("1"),
            "no wgpu device"
        );
        eprintln!("SKIPPED: no wgpu device");
        return;
    }
    let d = tmp();
    let r: PathBuf = d.path().join("run");
    let o = run(&[
        "run",
        "--scale",
        "smoke",
        "--quiet",
        "--corpus-root",
        &crate::continual::fixture().display().to_string(),
        "--out",
        &r.display().to_string(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let page = std::fs::read_to_string(r.join("report/kernels/token-logprob.html")).unwrap();
    // The headline is the fastest baseline (`gather − logsumexp`); every baseline is listed.
    assert!(
        page.contains("fused-forward vs burn gather − logsumexp")
            && page.contains("burn log_softmax + gather")
            && page.contains("Cross-device comparison"),
        "kernel page lacks the benchmark, one of its baselines or the cross-device line"
    );
    assert!(page.contains("<svg"), "kernel page lacks its plot");
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("benchmarks.json")).unwrap()).unwrap();
    let entries = b["benchmarks"].as_array().unwrap();
    // token-logprob: forward, forward+backward; cross-entropy: forward+backward, forward;
    // dpo-loss: forward+backward, forward; ppo: GAE on the device vs the host loop; dora-linear:
    // forward vs the base linear and vs LoRA's forward, the step vs LoRA's and vs PEFT's unfused
    // composition; moe-layer: the step vs the per-expert loop and vs the dense FFN.
    assert_eq!(entries.len(), 13);
    let moe = std::fs::read_to_string(r.join("report/kernels/moe-layer.html")).unwrap();
    for name in ["moe-step-vs-loop", "moe-step-vs-dense"] {
        assert!(moe.contains(name), "moe-layer page lacks {name}");
    }
    let dora = std::fs::read_to_string(r.join("report/kernels/dora-linear.html")).unwrap();
    for name in [
        "dora-forward",
        "dora-forward-vs-lora",
        "dora-step-vs-lora",
        "dora-step-vs-peft",
    ] {
        assert!(dora.contains(name), "dora-linear page lacks {name}");
    }
    let dpo = std::fs::read_to_string(r.join("report/kernels/dpo-loss.html")).unwrap();
    assert!(
        dpo.contains("fused-dpo-forward-backward"),
        "dpo-loss page lacks its benchmark"
    );
    let ppo = std::fs::read_to_string(r.join("report/kernels/ppo.html")).unwrap();
    assert!(
        ppo.contains("gae-device"),
        "ppo page lacks the GAE benchmark"
    );
    let paper = std::fs::read_to_string(r.join("report/papers/dpo-ppo.html")).unwrap();
    for section in ["Fig. 1", "Distribution shift", "PPO ablation ladder"] {
        assert!(paper.contains(section), "dpo-ppo page lacks {section}");
    }
    let ce = std::fs::read_to_string(r.join("report/kernels/cross-entropy.html")).unwrap();
    assert!(
        ce.contains("burn CrossEntropyLoss") && ce.contains("mean(logsumexp − x[t])"),
        "cross-entropy page lacks its benchmark or one of its baselines"
    );
    for e in entries {
        assert!(e["speedup"].as_f64().unwrap() > 0.0);
        assert_eq!(
            e["ours_ms"].as_array().unwrap().len(),
            e["rounds"].as_u64().unwrap() as usize
        );
    }
}

/// Without a device (the Vulkan loader pointed at no driver), `run` does the flex parts, says once
/// that kernel checks were skipped and what provides a device; CLAIMBENCH_REQUIRE_DEVICE=1 makes
/// that exit 4.
#[test]
fn no_device_runs_flex_parts_or_fails_when_required() {
    let no_vulkan = |c: &mut Command| {
        c.env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json");
    };
    let d = tmp();
    let r = d.path().join("run");
    let mut c = bin();
    no_vulkan(&mut c);
    let o = c
        .env_remove("CLAIMBENCH_REQUIRE_DEVICE")
        .args([
            "run",
            "--scale",
            "smoke",
            "--seeds",
            "1",
            "--only",
            "kernels/token-logprob",
            "--out",
            &r.display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(
        e.matches("kernel checks and benchmarks were skipped")
            .count(),
        1,
        "{e}"
    );
    assert!(e.contains("mesa-vulkan-drivers"), "{e}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("manifest.json")).unwrap()).unwrap();
    let skipped: Vec<&str> = m["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "kernels/token-logprob/check/device",
            "kernels/token-logprob/bench"
        ]
    );
    assert!(
        r.join("units/kernels__token-logprob__check__flex.json")
            .exists()
    );

    let mut c = bin();
    no_vulkan(&mut c);
    let o = c
        .env("CLAIMBENCH_REQUIRE_DEVICE", "1")
        .args([
            "run",
            "--scale",
            "smoke",
            "--out",
            &d.path().join("run2").display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CLAIMBENCH_REQUIRE_DEVICE=1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dpo_ppo_exact_claims_get_computed_verdicts_and_a_paper_page() {
    let d = tmp();
    let out = d.path().join("run");
    let o = run(&[
        "run",
        "--backend",
        "flex",
        "--scale",
        "smoke",
        "--only",
        "dpo-ppo/table1",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap()).unwrap();
    // Exact results are checks: outside the false-discovery family, with no p or q.
    assert_eq!(claims["schema_version"], 2);
    assert_eq!(claims["fdr"]["family_size"], 0);
    let claims = claims["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 3, "{claims:?}");
    for c in claims {
        assert_eq!(c["test"], "exact", "{c}");
        assert_eq!(c["kind"], "check", "{c}");
        assert!(c["p_value"].is_null() && c["q_value"].is_null(), "{c}");
        assert_eq!(c["verdict"], "reproduced", "{c}");
    }
    assert!(out.join("report/papers/dpo-ppo.html").exists());
}
