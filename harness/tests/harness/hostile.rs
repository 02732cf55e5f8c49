//! The `claimbench` binary against hostile or careless input (issue "Hardening"): crafted run
//! directories, two processes on one run, unbounded settings, bad command lines, a closed
//! stdout, and logits that expose f32 rounding. Each case states the expected refusal (exit 4
//! with a short message naming the problem) or the quiet, correct behaviour, and checks that
//! nothing finished is lost.
//!
//! Every test here failed on the code before the fix (52b79c9). To see that, point the tests at
//! an older binary: `CLAIMBENCH_TEST_BIN=/path/to/old/claimbench cargo test --release
//! --test harness hostile::`.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{bin, flex_args, records, stderr};
use crate::fixtures::{Spec, write_run};

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("claimbench runs")
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Asserts exit 4 and a short message that holds every needle.
fn refused(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(4), "expected exit 4, got: {e}");
    for n in needles {
        assert!(e.contains(n), "message lacks {n:?}: {e}");
    }
    assert!(e.len() < 1200, "message is {} bytes long: {e}", e.len());
    assert!(!e.contains("panicked"), "{e}");
}

/// A fixture run directory (schema-following, synthetic numbers) in a fresh temporary parent.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_run(tmp.path(), &Spec::default());
    (tmp, root)
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Every `.html` file under `dir`.
fn html_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect()
}

#[test]
fn ids_follow_one_grammar() {
    use claimbench::ids::{MAX_LEN, MAX_SEGMENTS, validate};
    for id in [
        "dora",
        "dpo-ppo",
        "kernels/token-logprob",
        "kernels/token-logprob/train/seed-0",
        "continual/weak/replay-0.5/seed-4",
        "mixtral/moe_beats_dense",
    ] {
        assert_eq!(validate(id), Ok(()), "{id}");
    }
    for id in [
        "",
        "/tmp/x",
        "../../x",
        "kernels/../x",
        "a//b",
        "a/",
        "./a",
        "javascript:alert(1)",
        "Kernels/x",
        "a b",
        "a\\b",
        "a\0b",
        "k/é",
    ] {
        assert!(validate(id).is_err(), "{id:?} passed");
    }
    assert!(validate(&"a".repeat(MAX_LEN + 1)).is_err());
    assert!(validate(&["a"; MAX_SEGMENTS + 1].join("/")).is_err());
    // Every registered unit id follows it.
    let o = run(&["list"]);
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let ids: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(ids.len() > 50, "{list}");
    for id in ids {
        assert_eq!(validate(id), Ok(()), "registered id {id}");
    }
}

/// Case 1: ids from `benchmarks.json`, `claims.json` and `units/*.json` never become paths or
/// hrefs unchecked: `report` refuses (exit 4, naming the file and the id) and writes nothing
/// outside the run directory.
#[test]
fn crafted_ids_in_run_files_are_refused_by_report() {
    let (tmp, clean) = fixture();
    let o = run(&["report", &path_arg(&clean)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let outside = tmp.path().join("outside");
    let absolute = format!("{}/pwned", outside.display());
    let cases: Vec<(&str, &str, String)> = vec![
        ("benchmarks.json", "kernel", absolute.clone()),
        ("benchmarks.json", "kernel", "../../pwned".into()),
        ("benchmarks.json", "kernel", "javascript:alert(1)".into()),
        (
            "benchmarks.json",
            "kernel",
            "kernels/a/../../../pwned".into(),
        ),
        ("claims.json", "paper", "../../pwned".into()),
        ("claims.json", "paper", absolute.clone()),
        ("units", "unit_id", "../../pwned/x".into()),
        ("units", "paper", "../pwned".into()),
        ("manifest.json", "units", "../../pwned".into()),
    ];
    for (i, (file, field, id)) in cases.iter().enumerate() {
        let run_dir = tmp.path().join(format!("case-{i}"));
        copy_dir(&clean, &run_dir);
        let _ = std::fs::remove_dir_all(run_dir.join("report"));
        match *file {
            "benchmarks.json" => edit_json(&run_dir.join(file), |v| {
                v["benchmarks"][0][*field] = id.as_str().into()
            }),
            "claims.json" => edit_json(&run_dir.join(file), |v| {
                v["claims"][0][*field] = id.as_str().into()
            }),
            "manifest.json" => {
                edit_json(&run_dir.join(file), |v| v[*field][0] = id.as_str().into())
            }
            _ => edit_json(&records(&run_dir)[0], |v| v[*field] = id.as_str().into()),
        }
        let o = run(&["report", &path_arg(&run_dir)]);
        let shown = &id[..id.len().min(40)];
        refused(&o, &[if *file == "units" { ".json" } else { file }, shown]);
        assert!(
            !outside.exists() && !tmp.path().join("pwned.html").exists(),
            "case {i}: a file was written outside the run directory"
        );
        for page in html_files(&run_dir) {
            let html = std::fs::read_to_string(&page).unwrap();
            assert!(!html.contains("javascript:"), "{}", page.display());
        }
    }
    // The manifest's scale is one of three names (or import-criterion's label), never a
    // silent `small`.
    let run_dir = tmp.path().join("case-scale");
    copy_dir(&clean, &run_dir);
    let _ = std::fs::remove_dir_all(run_dir.join("report"));
    edit_json(&run_dir.join("manifest.json"), |v| {
        v["scale"] = "<b>huge</b>".into()
    });
    refused(
        &run(&["report", &path_arg(&run_dir)]),
        &[
            "manifest.json",
            "scale",
            "<b>huge</b>",
            "smoke, small or full",
        ],
    );
    refused(
        &run(&["run", "--resume", &path_arg(&run_dir), "--quiet"]),
        &["manifest.json", "scale"],
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Case 1, continued: a record in another unit's file, an oversized file, and a baseline file
/// with a crafted kernel id are refused too; a hostile run beside a good one does not stop the
/// good one's report (history skips it).
#[test]
fn misfiled_oversized_and_baseline_ids_are_refused() {
    let (tmp, clean) = fixture();
    let misfiled = tmp.path().join("misfiled");
    copy_dir(&clean, &misfiled);
    let rec = &records(&misfiled)[0];
    std::fs::copy(
        rec,
        misfiled.join("units/kernels__token-logprob__other.json"),
    )
    .unwrap();
    refused(&run(&["report", &path_arg(&misfiled)]), &["holds unit"]);

    let big = tmp.path().join("big");
    copy_dir(&clean, &big);
    let f = std::fs::File::options()
        .write(true)
        .open(big.join("claims.json"))
        .unwrap();
    f.set_len(65 << 20).unwrap(); // sparse: no 65 MiB written
    refused(
        &run(&["report", &path_arg(&big)]),
        &["claims.json", "larger"],
    );

    let baseline = tmp.path().join("baseline.json");
    let o = run(&["baseline", &path_arg(&clean), "--out", &path_arg(&baseline)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    edit_json(&baseline, |v| {
        v["series"][0]["key"]["kernel"] = "kernels/<img src=x onerror=alert(1)>".into()
    });
    refused(
        &run(&["compare", &path_arg(&baseline), &path_arg(&clean)]),
        &["baseline.json", "kernel"],
    );

    // The good run's report still renders; its history skips the hostile runs beside it.
    let o = run(&["report", &path_arg(&clean)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Case 2: two `run --resume D` at once. The second names the holder and exits 4 without
/// touching the first's files; the first finishes; stale temporaries (also under `report/`)
/// are removed by the lock holder only.
#[test]
fn concurrent_resumes_are_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("run");
    let o = bin().args(flex_args(&r, "3")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let clean: Vec<String> = records(&r)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .map(|t| {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            v["metrics"].to_string()
        })
        .collect();
    // Two of three units to redo, and temporaries a killed process left behind.
    for p in &records(&r)[1..] {
        std::fs::remove_file(p).unwrap();
    }
    std::fs::write(r.join("units/.tmpKILLED"), b"half").unwrap();
    std::fs::write(r.join("report/kernels/.tmpKILLED"), b"half").unwrap();

    let first = bin()
        .args(["run", "--resume", &path_arg(&r), "--quiet"])
        .env("CLAIMBENCH_TEST_UNIT_DELAY_MS", "2500")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the lock once it has cleaned the temporaries.
    let start = Instant::now();
    while r.join("units/.tmpKILLED").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no clean-up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run(&["run", "--resume", &path_arg(&r), "--quiet"]);
    refused(&o, &["in use by another claimbench process", "pid"]);
    let o = run(&["report", &path_arg(&r)]);
    refused(&o, &["in use by another claimbench process"]);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(!r.join("report/kernels/.tmpKILLED").exists());
    let after: Vec<String> = records(&r)
        .iter()
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            v["metrics"].to_string()
        })
        .collect();
    assert_eq!(
        after, clean,
        "the resumed run differs from the uninterrupted one"
    );
    // Released once the holder exits.
    let o = run(&["report", &path_arg(&r)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

fn config_file(dir: &Path, json: &str) -> String {
    let p = dir.join("config.json");
    std::fs::write(&p, json).unwrap();
    path_arg(&p)
}

/// Case 3: sizes and step counts are bounded by stated limits, and the memory a run would
/// need is estimated before anything is allocated: exit 4 within seconds, never an abort or a
/// run that does not end.
#[test]
fn unbounded_settings_are_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    for (json, needles) in [
        (
            r#"{"continual": {"model": {"d_model": 1000000000}}}"#,
            &["d_model", "limit"][..],
        ),
        (
            r#"{"continual": {"stage_steps": 18446744073709551615}}"#,
            &["stage_steps", "limit"][..],
        ),
        (
            r#"{"mixtral": {"train": {"steps": 18446744073709551615}}}"#,
            &["train.steps", "limit"][..],
        ),
        // Within every limit, yet a ~4B-parameter model: refused by the memory estimate.
        (
            r#"{"continual": {"batch": 4096, "model": {"d_model": 4096, "n_layers": 64}}}"#,
            &["continual", "estimated memory", "GiB", "available"][..],
        ),
    ] {
        let start = Instant::now();
        let o = run(&[
            "run",
            "--backend",
            "flex",
            "--only",
            "continual",
            "--quiet",
            "--config",
            &config_file(tmp.path(), json),
            "--out",
            &path_arg(&tmp.path().join("r")),
        ]);
        refused(&o, needles);
        assert!(start.elapsed() < Duration::from_secs(20));
        assert!(!tmp.path().join("r/manifest.json").exists());
    }
}

/// Case 4: a usage error is bad input (exit 4); `--help` is an answer (exit 0).
#[test]
fn usage_errors_exit_4() {
    refused(&run(&["run", "--scale", "bogus"]), &["bogus", "smoke"]);
    refused(&run(&["run", "--no-such-flag"]), &["--no-such-flag"]);
    refused(&run(&["no-such-command"]), &["no-such-command"]);
    refused(&run(&["run", "--seeds", "-3"]), &["-3"]);
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    assert_eq!(run(&["run", "--help"]).status.code(), Some(0));
}

/// Case 5: a resume that fails validation leaves the run directory as it was, byte for byte
/// (a finished run stays finished), and loses nothing.
#[test]
fn failed_resume_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("run");
    let o = bin().args(flex_args(&r, "2")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = std::fs::read(r.join("manifest.json")).unwrap();
    let bad = r.join("units/kernels__token-logprob__train__seed-1.json");
    std::fs::write(&bad, b"{\"unit_id\": ").unwrap();
    std::fs::write(r.join(".tmpLEFT"), b"x").unwrap();
    let o = run(&["run", "--resume", &path_arg(&r), "--quiet"]);
    refused(&o, &["seed-1.json"]);
    assert_eq!(std::fs::read(r.join("manifest.json")).unwrap(), manifest);
    assert!(
        r.join(".tmpLEFT").exists(),
        "removed before validation passed"
    );
    assert_eq!(std::fs::read(&bad).unwrap(), b"{\"unit_id\": ");
    assert!(
        r.join("units/kernels__token-logprob__train__seed-0.json")
            .exists()
    );
}

/// Case 6: tuning seeds are checked against the verdict seeds of the papers a run selects
/// only, and the refusal stays short however many seeds there are.
#[test]
fn seeds_are_checked_against_selected_papers_only() {
    use claimbench::configs::validate_selected;
    use claimbench_paper::Scale;
    let reg = claimbench::registry::Registry::default();
    let cfg = reg.default_configs(Scale::Small);
    let seeds: Vec<u64> = (0..4000).collect();
    let only = |p: &'static str| std::collections::BTreeSet::from([p]);
    validate_selected(&reg, &cfg, &only("continual"), &seeds)
        .expect("continual has no tuning seeds");
    validate_selected(&reg, &cfg, &only("kernels"), &seeds).expect("kernels have no tuning seeds");
    validate_selected(&reg, &cfg, &only("mixtral"), &seeds).expect("mixtral has no tuning seeds");
    // DoRA's tuning seeds (1000, 1001) are among 0..4000: refused, naming one seed, briefly.
    let e = validate_selected(&reg, &cfg, &only("dora"), &seeds)
        .expect_err("tuning seeds among the verdict seeds");
    let msg = format!("{e:#}");
    assert!(msg.contains("tuning_seeds = 1000"), "{msg}");
    assert!(msg.len() < 300, "{} bytes: {msg}", msg.len());

    // End to end: DoRA's tuning seeds do not refuse a run that does not select DoRA.
    let tmp = tempfile::tempdir().unwrap();
    let mut args = flex_args(&tmp.path().join("r"), "2");
    args.extend([
        "--config".into(),
        config_file(tmp.path(), r#"{"dora": {"tuning_seeds": [0, 1]}}"#),
    ]);
    let o = bin().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    refused(&run(&["run", "--seeds", "100000"]), &["--seeds"]);
}

/// Case 7: a reader that goes away (`claimbench list | head -1`) ends the output quietly.
#[test]
fn closed_stdout_is_quiet() {
    for args in [&["list"][..], &["devices"], &["--help"]] {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first write
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// Case 8: `--force` without `--resume` is refused, and a garbage metrics table is not
/// published.
#[test]
fn force_needs_resume_and_published_tables_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = flex_args(&tmp.path().join("r"), "1");
    args.push("--force".into());
    refused(
        &bin().args(args).output().unwrap(),
        &["--force", "--resume"],
    );
    assert!(!tmp.path().join("r/manifest.json").exists());

    let (_tmp, run_dir) = fixture();
    for (file, junk) in [
        ("metrics.parquet", &b"PAR1 this is not parquet PAR1"[..]),
        ("metrics.csv", b"a,b\n1,2\n"),
    ] {
        let dir = _tmp.path().join(file.replace('.', "-"));
        copy_dir(&run_dir, &dir);
        let _ = std::fs::remove_dir_all(dir.join("report"));
        std::fs::write(dir.join(file), junk).unwrap();
        refused(&run(&["report", &path_arg(&dir)]), &[file]);
        assert!(!dir.join("report/data").join(file).exists());
    }
}

/// The issue's row: ten logits at −1e4 and one at −9990, the target at −1e4. The log-prob is
/// `−10 − ln(1 + 10·e^−10) = −10.000454`; an `lse` rounded in f32 at 1e4 (ulp ≈ 1e-3) gives
/// −10.0.
fn precision_row() -> (Vec<f32>, Vec<i64>) {
    let mut logits = vec![-1.0e4f32; 11];
    logits[10] = -9990.0;
    (logits, vec![0])
}

fn check_precision<B: claimbench_kernels::burn_ops::TokenLogprobBackend>(name: &str) {
    use burn::tensor::{Int, Tensor, TensorData};
    use claimbench_kernels::burn_ops::{cross_entropy, token_logprobs};
    use claimbench_kernels::cross_entropy::Settings;
    let want = -10.0 - (1.0 + 10.0 * (-10.0f64).exp()).ln(); // −10.000453...
    let dev = Default::default();
    let (logits, targets) = precision_row();
    let x = || Tensor::<B, 1>::from_data(TensorData::new(logits.clone(), [11]), &dev);
    let t = || Tensor::<B, 1, Int>::from_data(TensorData::new(targets.clone(), [1]), &dev);
    let lp = token_logprobs(x().reshape([1, 1, 11]), t().reshape([1, 1]))
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap()[0] as f64;
    let ce = cross_entropy(x().reshape([1, 11]), t(), Settings::default())
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap()[0] as f64;
    // 2e-5: a few f32 ulps at 10 (ulp(10) ≈ 9.5e-7) plus exp/ln rounding; 20 times tighter than
    // the 4.5e-4 the rounded lse loses.
    assert!(
        (lp - want).abs() < 2e-5,
        "{name} token log-prob {lp}, want {want}"
    );
    assert!(
        (ce + want).abs() < 2e-5,
        "{name} cross-entropy {ce}, want {}",
        -want
    );
}

/// Case 9: token log-probs and cross-entropy at large logits keep the precision of the shifted
/// form `(x − m) − ln Σ exp(x − m)` (the DPO path's sequence log-probs are sums of these; see
/// `kernels/tests/kernels/dpo_ops.rs` for its large-offset test), on Flex's composition and on
/// the wgpu kernel where an adapter exists.
#[test]
fn large_logits_keep_logprob_precision() {
    check_precision::<burn::backend::Flex>("flex");
    if claimbench::devices::wgpu_adapters().is_empty() {
        eprintln!("skipping the wgpu case: no adapter");
    } else {
        check_precision::<burn::backend::Wgpu>("wgpu");
    }
}
