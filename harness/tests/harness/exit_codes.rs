//! contracts.md: when several exit codes apply the highest wins, except that 3 (inconclusive)
//! never hides 1 (regression) or 2 (correctness).

use claimbench::error::Exit::*;

#[test]
fn highest_wins_but_inconclusive_never_hides() {
    assert_eq!(Ok.combine(Input), Input);
    assert_eq!(Regression.combine(Correctness), Correctness);
    assert_eq!(Inconclusive.combine(Regression), Regression);
    assert_eq!(Correctness.combine(Inconclusive), Correctness);
    assert_eq!(Ok.combine(Inconclusive), Inconclusive);
    assert_eq!(Input.combine(Inconclusive), Input);
}

/// A benchmark whose throughput is above the measured floor by more than 10% cannot be right:
/// the run exits 2 and names it; at the floor it is fine, and `pct_of_floor` says where it is.
#[test]
fn a_throughput_above_the_floor_is_a_correctness_failure() {
    use claimbench::peaks::Peaks;
    use claimbench::store::{UnitRecord, UnitStatus};
    let entry: claimbench_paper::bench::BenchEntry = serde_json::from_value(serde_json::json!({
        "kernel": "kernels/token-logprob", "impl": "fused-forward", "baseline": "b",
        "backend": "wgpu", "device": "d", "dtype": "f32", "shape": [1024, 32000],
        "speedup": 3.0, "speedup_ci": [2.9, 3.1], "rounds": 3,
        "ours_ms": [10.0, 10.0, 10.0], "baseline_ms": [30.0, 30.0, 30.0],
        "bytes": 131_072_000u64, "flops": 0, "target": null
    }))
    .unwrap();
    let record: UnitRecord = serde_json::from_value(serde_json::json!({
        "schema_version": 1, "unit_id": "kernels/token-logprob/bench", "paper": "kernels",
        "experiment": "bench", "arm": "fused", "seed": 0, "backend": "wgpu", "device": "d",
        "status": "passed", "message": "", "seconds": 1.0, "metrics": [],
        "benchmarks": [entry]
    }))
    .unwrap();
    assert_eq!(record.status, UnitStatus::Passed);
    let peaks = |gbps: f64| Peaks {
        backend: "wgpu".into(),
        device: "d".into(),
        bandwidth_gbps: gbps,
        gflops: 100.0,
        method: "test".into(),
        flex_read_gbps: None,
        probes: Vec::new(),
        datasheet_gbps: None,
    };
    // 131 MB in 10 ms is 13.1 GB/s.
    let (exit, suspects) =
        claimbench::run::exit_of(std::slice::from_ref(&record), Some(&peaks(10.0)));
    assert_eq!(exit, Correctness);
    assert_eq!(suspects.len(), 1, "{suspects:?}");
    assert!(suspects[0].contains("fused-forward"), "{suspects:?}");
    let (exit, suspects) =
        claimbench::run::exit_of(std::slice::from_ref(&record), Some(&peaks(13.0)));
    assert_eq!(exit, Ok, "{suspects:?}");
    let pct = peaks(13.0).pct_of_floor(131_072_000, 0, 10.0).unwrap();
    assert!((pct - 100.8).abs() < 0.1, "{pct}");
    assert_eq!(claimbench::run::exit_of(&[record], None).0, Ok);
}
