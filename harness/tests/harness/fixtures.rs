//! Fixture runs for the compare, history and report tests: run directories written with the
//! harness's own types (so they follow the schema), with seeded synthetic benchmark samples and
//! hand-made claims. They stand for what `claimbench run` stores; nothing here is a measurement.
//! Also [`train_unit`], the unit spec of the papers the tests define.

use std::path::Path;

use claimbench::devices::{BackendChoice, DeviceInfo, Exec, Plan};
use claimbench::peaks::Peaks;
use claimbench::store::{
    Manifest, MetricRow, RunDir, SCHEMA_VERSION, UnitRecord, UnitStatus, write_json,
};
use claimbench_claims::{Claim, ClaimsFile, TestKind, Verdict};
use claimbench_paper::bench::{BenchEntry, BenchFile};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The fixture device.
pub const DEVICE: &str = "llvmpipe (LLVM 15.0.6, 256 bits)";

/// What one fixture run holds.
pub struct Spec<'a> {
    /// Run id (also the directory name under the parent).
    pub run_id: &'a str,
    /// Commit.
    pub sha: &'a str,
    /// Start time (RFC 3339), orders runs in history.
    pub started: &'a str,
    /// Seed of the samples.
    pub seed: u64,
    /// Samples per series.
    pub rounds: usize,
    /// Multiplier on our times (1.1: ours 10% slower).
    pub ours_factor: f64,
    /// Kernel device name.
    pub device: &'a str,
    /// Verdict of the fixture claim.
    pub claim: Verdict,
    /// A unit failing its reference check.
    pub correctness_failure: bool,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            run_id: "base",
            sha: "0000000000000000000000000000000000000000",
            started: "2026-11-27T00:00:00+00:00",
            seed: 1,
            rounds: 30,
            ours_factor: 1.0,
            device: DEVICE,
            claim: Verdict::Reproduced,
            correctness_failure: false,
        }
    }
}

fn lognormal(rng: &mut StdRng, median: f64, sd: f64) -> f64 {
    // Box–Muller
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sd * z).exp()
}

fn entry(rng: &mut StdRng, s: &Spec, name: &str, ours: f64, base: f64) -> BenchEntry {
    let ours_ms: Vec<f64> = (0..s.rounds)
        .map(|_| lognormal(rng, ours * s.ours_factor, 0.03))
        .collect();
    let baseline_ms: Vec<f64> = (0..s.rounds).map(|_| lognormal(rng, base, 0.03)).collect();
    let ratios: Vec<f64> = ours_ms
        .iter()
        .zip(&baseline_ms)
        .map(|(o, b)| b / o)
        .collect();
    let speedup = claimbench_claims::median(&ratios).unwrap();
    BenchEntry {
        kernel: "kernels/token-logprob".into(),
        implementation: name.into(),
        baseline: "log_softmax+gather".into(),
        backend: "wgpu".into(),
        device: s.device.into(),
        dtype: "f32".into(),
        shape: vec![1024, 32000],
        speedup,
        speedup_ci: [speedup * 0.95, speedup * 1.05],
        rounds: s.rounds,
        ours_ms,
        baseline_ms,
        bytes: 1024 * 32000 * 4,
        flops: 1024 * 32000 * 5,
        target: Some(3.0),
        floor: Some("one sum_dim read pass".into()),
        floor_ms: Vec::new(),
        correctness: "fixture".into(),
        baselines: Vec::new(),
        achieved_gbps: None,
        achieved_gflops: None,
        pct_of_floor: None,
        cross_device: None,
    }
}

fn claim(paper: &str, id: &str, verdict: Verdict) -> Claim {
    Claim {
        id: id.into(),
        paper: paper.into(),
        statement: "MoE beats dense at equal active parameters (fixture)".into(),
        source: "Table 2".into(),
        test: TestKind::Ordering,
        metric: "validation loss (nats)".into(),
        paper_value: serde_json::json!(1.0),
        our_value: serde_json::json!(0.05),
        ci: Some([0.01, 0.09]),
        margin: None,
        margin_why: String::new(),
        seeds: vec![0, 1, 2, 3, 4],
        scale: "small".into(),
        proxy: true,
        verdict,
        details: "fixture claim".into(),
        kind: claimbench_claims::ClaimKind::Reproduction,
        p_value: Some(0.001),
        q_value: Some(0.002),
        band: None,
    }
}

/// Writes a fixture run into `parent/<run_id>`; returns its path.
pub fn write_run(parent: &Path, s: &Spec) -> std::path::PathBuf {
    let root = parent.join(s.run_id);
    let dir = RunDir::create(&root).unwrap();
    let mut rng = StdRng::seed_from_u64(s.seed);
    let benches = vec![
        entry(&mut rng, s, "fused-forward", 257.0, 2800.0),
        entry(&mut rng, s, "fused-forward+backward", 900.0, 5600.0),
    ];
    let mut units = vec![UnitRecord {
        schema_version: SCHEMA_VERSION,
        unit_id: "kernels/token-logprob/bench".into(),
        paper: "kernels".into(),
        experiment: "bench".into(),
        arm: "fused".into(),
        seed: None,
        backend: "wgpu".into(),
        device: s.device.into(),
        status: UnitStatus::Passed,
        message: "fixture".into(),
        seconds: 1.0,
        metrics: vec![MetricRow {
            dtype: "f32".into(),
            shape: "[1024, 32000]".into(),
            step: None,
            metric: "max_abs_err_forward".into(),
            value: 1e-6,
            unit: "abs".into(),
        }],
        benchmarks: benches.clone(),
        artifacts: Vec::new(),
    }];
    if s.correctness_failure {
        units.push(UnitRecord {
            unit_id: "kernels/token-logprob/check-device".into(),
            status: UnitStatus::CorrectnessFailure,
            message: "fused forward differs from the reference: max |Δ| = 1e-1".into(),
            benchmarks: Vec::new(),
            ..units[0].clone()
        });
    }
    for u in &units {
        dir.write_unit(u).unwrap();
    }
    let kernel_device = DeviceInfo {
        backend: "wgpu".into(),
        name: s.device.into(),
        kind: "cpu".into(),
        driver: "Mesa 22.3.6".into(),
        api: "Vulkan".into(),
    };
    let m = Manifest {
        schema_version: SCHEMA_VERSION,
        run_id: s.run_id.into(),
        git_sha: s.sha.into(),
        git_dirty: false,
        cargo_lock_sha256: "0".repeat(64),
        rustc: "rustc 1.95.0".into(),
        crate_versions: vec![("burn".into(), "0.21.0".into())],
        features: vec!["wgpu".into()],
        plan: Plan {
            choice: BackendChoice::Auto,
            train: Exec::Flex,
            train_device: claimbench::devices::flex_device(),
            kernels: Some(Exec::Wgpu),
            kernel_device: Some(kernel_device),
            skip_reason: None,
        },
        cpu: "fixture CPU".into(),
        os: "Linux".into(),
        scale: claimbench::store::RunScale::Run(claimbench_paper::Scale::Small),
        seeds: vec![0, 1, 2, 3, 4],
        only: Vec::new(),
        config_hash: "f".repeat(64),
        units: units.iter().map(|u| u.unit_id.clone()).collect(),
        skipped: Vec::new(),
        started: s.started.into(),
        finished: Some(s.started.into()),
        configs: None,
        fallbacks: Vec::new(),
        build: None,
        corpus_root: None,
        data_cards: Vec::new(),
        executor: None,
        peaks: Some(Peaks {
            backend: "wgpu".into(),
            device: s.device.into(),
            bandwidth_gbps: 1.0,
            gflops: 50.0,
            method: "fixture".into(),
            flex_read_gbps: None,
            probes: Vec::new(),
            datasheet_gbps: None,
        }),
    };
    dir.write_manifest(&m).unwrap();
    dir.write_aggregates(s.run_id, &units, None).unwrap();
    write_json(
        &root.join("benchmarks.json"),
        &BenchFile {
            schema_version: 1,
            benchmarks: benches,
        },
    )
    .unwrap();
    dir.write_claims(&ClaimsFile::new(vec![
        claim("mixtral", "mixtral/moe-beats-dense", s.claim),
        claim("dora", "dora/half-rank", Verdict::Inconclusive),
    ]))
    .unwrap();
    root
}

/// The unit `<paper>/<arm>/seed-<seed>` of a paper defined in a test: a training unit (no
/// benchmark) of `experiment`, run as `task`, after `depends_on`.
pub fn train_unit(
    paper: &str,
    experiment: &str,
    arm: &str,
    seed: u64,
    task: &'static str,
    depends_on: Vec<String>,
) -> claimbench_paper::UnitSpec {
    claimbench_paper::UnitSpec {
        id: format!("{paper}/{arm}/seed-{seed}"),
        paper: paper.into(),
        experiment: experiment.into(),
        arm: arm.into(),
        seed: Some(seed),
        task,
        runs_on: claimbench_paper::RunsOn::Train,
        bench: false,
        depends_on,
    }
}
