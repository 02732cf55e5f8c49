//! `compare`, `baseline`, `history` and `import-criterion` on fixture runs: the verdicts, the exit
//! codes of contracts.md, and clear errors (exit 4, never a panic) on runs that cannot be compared.

use std::path::Path;
use std::process::{Command, Output};

use claimbench::compare::{self, CompareOptions, Measure};
use claimbench_claims::Verdict;

use crate::fixtures::{Spec, write_run};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimbench"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .args(args)
        .output()
        .expect("claimbench runs")
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the binary and checks its exit code and that its output mentions `needle`.
fn expect(args: &[&str], code: i32, needle: &str) -> String {
    let o = bin(args);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {out}");
    assert!(out.contains(needle), "{args:?}: {needle:?} not in {out}");
    out
}

#[test]
fn a_run_against_itself_is_no_change_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    let o = bin(&["compare", p(&base), p(&base)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("0 regression, 0 improvement"), "{out}");
    assert!(!out.contains("REGRESSION"), "{out}");
    // The PR comment and JUnit files are written.
    let md = std::fs::read_to_string(base.join("compare/compare.md")).unwrap();
    assert!(md.contains("no regression"), "{md}");
    let xml = std::fs::read_to_string(base.join("compare/compare.xml")).unwrap();
    assert!(
        xml.contains("<testsuite") && xml.contains("failures=\"0\""),
        "{xml}"
    );
}

#[test]
fn a_ten_percent_slowdown_is_a_regression_and_swapped_an_improvement() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    let head = write_run(
        tmp.path(),
        &Spec {
            run_id: "head",
            seed: 2,
            ours_factor: 1.10,
            ..Spec::default()
        },
    );
    let (b, h) = (compare::load(&base).unwrap(), compare::load(&head).unwrap());
    let c = compare::compare(&b, &h, &CompareOptions::default()).unwrap();
    // Two benchmarks × two measures; both measures of both benchmarks moved by 10%.
    assert_eq!(c.series.len(), 4);
    assert_eq!(c.count("regression"), 4, "{}", compare::text(&c));
    assert_eq!(c.exit, claimbench::error::Exit::Regression);
    let c = compare::compare(&h, &b, &CompareOptions::default()).unwrap();
    assert_eq!(c.count("improvement"), 4, "{}", compare::text(&c));
    assert_eq!(c.exit, claimbench::error::Exit::Ok);

    // Through the binary: exit 1, the JUnit file fails the series.
    let o = bin(&["compare", p(&base), p(&head)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = std::fs::read_to_string(head.join("compare/compare.xml")).unwrap();
    assert!(xml.contains("failures=\"4\""), "{xml}");
    // A minimum effect above the shift makes it no change (exit 0).
    let o = bin(&["compare", p(&base), p(&head), "--min-effect", "0.3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_claim_no_longer_reproduced_or_a_correctness_failure_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    let head = write_run(
        tmp.path(),
        &Spec {
            run_id: "head",
            claim: Verdict::NotReproduced,
            ..Spec::default()
        },
    );
    let o = bin(&["compare", p(&base), p(&head)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("mixtral/moe-beats-dense: reproduced -> not-reproduced"),
        "{out}"
    );
    assert!(out.contains("REGRESSION OF THE SCIENCE"), "{out}");

    let broken = write_run(
        tmp.path(),
        &Spec {
            run_id: "broken",
            correctness_failure: true,
            ..Spec::default()
        },
    );
    expect(&["compare", p(&base), p(&broken)], 2, "CORRECTNESS FAILURE");
}

#[test]
fn a_throughput_above_the_measured_peak_is_suspect_not_a_win() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    // 20× faster: 131 MB in ~13 ms is ~10 GB/s, above the fixture's 1 GB/s peak.
    let head = write_run(
        tmp.path(),
        &Spec {
            run_id: "head",
            ours_factor: 0.05,
            ..Spec::default()
        },
    );
    let c = compare::compare(
        &compare::load(&base).unwrap(),
        &compare::load(&head).unwrap(),
        &CompareOptions::default(),
    )
    .unwrap();
    assert!(c.count("suspect") >= 2, "{}", compare::text(&c));
    assert_eq!(c.count("improvement"), 0, "{}", compare::text(&c));
}

#[test]
fn runs_that_cannot_be_compared_exit_4_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    // Another device.
    let other = write_run(
        tmp.path(),
        &Spec {
            run_id: "other",
            device: "NVIDIA H100 80GB HBM3",
            ..Spec::default()
        },
    );
    expect(
        &["compare", p(&base), p(&other)],
        4,
        "not comparable: kernel device",
    );
    let o = bin(&["compare", p(&base), p(&other), "--force"]);
    assert!(text(&o).contains("NOT COMPARABLE"), "{}", text(&o));

    // Not a run directory; missing manifest; truncated benchmarks.json; garbage baseline file.
    expect(
        &["compare", p(&base), p(&tmp.path().join("nope"))],
        4,
        "no such directory",
    );
    let trunc = write_run(
        tmp.path(),
        &Spec {
            run_id: "trunc",
            ..Spec::default()
        },
    );
    let bj = trunc.join("benchmarks.json");
    let full = std::fs::read_to_string(&bj).unwrap();
    std::fs::write(&bj, &full[..full.len() / 2]).unwrap();
    expect(
        &["compare", p(&base), p(&trunc)],
        4,
        "benchmarks.json is corrupt",
    );
    std::fs::remove_file(trunc.join("manifest.json")).unwrap();
    expect(
        &["compare", p(&base), p(&trunc)],
        4,
        "manifest.json is missing",
    );
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"kind\": 3").unwrap();
    expect(&["compare", p(&junk), p(&base)], 4, "junk.json is corrupt");

    // A series of the base missing from the head.
    let few = write_run(
        tmp.path(),
        &Spec {
            run_id: "few",
            ..Spec::default()
        },
    );
    let bj = few.join("benchmarks.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bj).unwrap()).unwrap();
    v["benchmarks"].as_array_mut().unwrap().pop();
    std::fs::write(&bj, v.to_string()).unwrap();
    expect(&["compare", p(&base), p(&few)], 4, "lacks 2 series");
    expect(
        &["compare", p(&base), p(&few), "--allow-missing"],
        0,
        "missing in head",
    );
}

#[test]
fn too_few_samples_are_inconclusive_and_fail_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(
        tmp.path(),
        &Spec {
            rounds: 3,
            ..Spec::default()
        },
    );
    let head = write_run(
        tmp.path(),
        &Spec {
            run_id: "head",
            rounds: 3,
            seed: 9,
            ..Spec::default()
        },
    );
    expect(&["compare", p(&base), p(&head)], 0, "4 inconclusive");
    let o = bin(&["compare", p(&base), p(&head), "--fail-on-inconclusive"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn a_baseline_file_round_trips_and_gates_on_the_relative_measure() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), &Spec::default());
    let file = tmp.path().join("baseline.json");
    let o = bin(&[
        "baseline",
        p(&base),
        "--out",
        p(&file),
        "--min-effect",
        "0.25",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = compare::load(&file).unwrap();
    assert_eq!(b.series.len(), 4);
    assert!(b.min_effects.values().all(|&m| m == 0.25));
    // Same run against its baseline: exit 0. A 10% slowdown is below the stored 25% effect.
    let o = bin(&["compare", p(&file), p(&base), "--measure", "relative"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let slow = write_run(
        tmp.path(),
        &Spec {
            run_id: "slow",
            ours_factor: 1.5,
            seed: 4,
            ..Spec::default()
        },
    );
    expect(
        &["compare", p(&file), p(&slow), "--measure", "relative"],
        1,
        "2 regression",
    );
    let c = compare::compare(
        &b,
        &compare::load(&slow).unwrap(),
        &CompareOptions {
            measures: vec![Measure::Relative],
            ..CompareOptions::default()
        },
    )
    .unwrap();
    assert!(c.series.iter().all(|s| s.stats.min_effect == 0.25));
}

#[test]
fn history_orders_runs_and_finds_the_change() {
    let tmp = tempfile::tempdir().unwrap();
    // Ten runs; ours becomes 30% slower from run 6 on. Commits are not in this repository, so
    // the runs are ordered by start time.
    for i in 0..10 {
        let id = format!("run-{i:02}");
        let sha = format!("{i:040}");
        let started = format!("2026-11-{:02}T00:00:00+00:00", i + 1);
        write_run(
            tmp.path(),
            &Spec {
                run_id: &id,
                sha: &sha,
                started: &started,
                seed: 100 + i as u64,
                rounds: 15,
                ours_factor: if i >= 6 { 1.3 } else { 1.0 },
                ..Spec::default()
            },
        );
    }
    std::fs::create_dir(tmp.path().join("not-a-run")).unwrap();
    let h = claimbench::history::collect(tmp.path(), None).unwrap();
    assert_eq!(h.runs.len(), 10);
    assert!(h.order.starts_with("start time"), "{}", h.order);
    let time_series: Vec<_> = h
        .series
        .iter()
        .filter(|s| s.key.implementation == "fused-forward")
        .collect();
    assert_eq!(time_series.len(), 2);
    for s in time_series {
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
        let c = &s.changes[0];
        assert_eq!(c.run_id, "run-06");
        assert_eq!(c.commit, format!("{:040}", 6));
        assert!((c.relative - 0.3).abs() < 0.08, "{}", c.relative);
    }
    expect(&["history", p(tmp.path())], 0, "at run run-06");
    assert!(tmp.path().join("history/index.html").is_file());
    assert!(tmp.path().join("history/history.json").is_file());
    let o = bin(&["history", p(&tmp.path().join("not-a-run"))]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

#[test]
fn criterion_results_become_a_run_that_compare_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let crit = tmp.path().join("criterion");
    let write = |func: &str, per_iter_ns: f64| {
        let d = crit
            .join("token_logprob_1024x32000_f32_wgpu")
            .join(func.replace([':', ' ', '(', ')'], "_"))
            .join("new");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("benchmark.json"),
            serde_json::json!({
                "group_id": "token_logprob/1024x32000/f32/wgpu",
                "function_id": func,
                "value_str": null, "throughput": null,
                "full_id": format!("token_logprob/1024x32000/f32/wgpu/{func}"),
                "directory_name": "x", "title": "x"
            })
            .to_string(),
        )
        .unwrap();
        let iters: Vec<f64> = (1..=10).map(|i| i as f64).collect();
        let times: Vec<f64> = iters
            .iter()
            .enumerate()
            .map(|(k, n)| n * per_iter_ns * (1.0 + 0.01 * (k % 3) as f64))
            .collect();
        std::fs::write(
            d.join("sample.json"),
            serde_json::json!({"sampling_mode": "Linear", "iters": iters, "times": times})
                .to_string(),
        )
        .unwrap();
    };
    write("fused", 250e6);
    write("baseline: log_softmax+gather", 2500e6);
    write("floor: sum_dim", 130e6);
    let out = tmp.path().join("imported");
    let o = bin(&["import-criterion", p(&crit), "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let file: claimbench_paper::bench::BenchFile =
        serde_json::from_str(&std::fs::read_to_string(out.join("benchmarks.json")).unwrap())
            .unwrap();
    assert_eq!(file.benchmarks.len(), 1);
    let e = &file.benchmarks[0];
    assert_eq!(e.kernel, "kernels/token-logprob");
    assert_eq!(e.shape, vec![1024, 32000]);
    assert_eq!(e.baseline, "log_softmax+gather");
    assert!((e.speedup - 10.0).abs() < 0.3, "{}", e.speedup);
    assert!(
        (e.ours_median_ms() - 252.5).abs() < 3.0,
        "{}",
        e.ours_median_ms()
    );
    assert!(out.join("metrics.parquet").is_file() && out.join("report/index.html").is_file());
    // The imported run compares with itself.
    let o = bin(&["compare", p(&out), p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Nothing to import is exit 4.
    let o = bin(&["import-criterion", p(&tmp.path().join("empty-nothing"))]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}
