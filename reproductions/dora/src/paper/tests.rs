//! Can-fail tests of every claim, through [`Paper::claims`] on synthetic unit records: the
//! records are those a run stores (one passed `dora/seed-{s}` unit per seed, from [`units`],
//! whose metric rows are [`SeedMeasurements::metrics`] of measurements with every arm and
//! analysis a seed unit writes), so the real parsing, evidence and verdict code decides.
//!
//! For each reproduction and control claim of the `small` config the effect is planted
//! (PRESENT: must be `reproduced`, with its estimate in the band and p < 0.05), left out
//! (ABSENT) and turned around (REVERSED): both must not be `reproduced`. Each case runs on three
//! backgrounds (the quantities the case does not set at, below and above the claimed arms'
//! level), so a claim wired to the wrong arm fails too. Every quantity gets seeded jitter (sd > 0,
//! mean 0 over the seeds), so a paired difference has exactly the planted mean and a real spread.
//! The cases are written per claim id from the paper's statements, not from the crate's
//! claim-to-arm mapping, so a claim that reads the wrong arm fails the PRESENT case.

use std::collections::BTreeSet;

use claimbench_claims::{Claim, ClaimKind, Verdict};
use claimbench_paper::{Paper, UnitRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Dora, SEEDS, TUNE_UNIT, units};
use crate::config::DoraConfig;
use crate::experiments::arms;
use crate::layer::Method;
use crate::measure::{AnalysisMeasurement, ArmMeasurement, Experiment, SeedMeasurements};
use claimbench_paper::Scale;

/// The verdict seeds of the synthetic runs (≥ 5, the claims' `min_seeds`).
const SEED_LIST: [u64; 6] = [0, 1, 2, 3, 4, 5];
/// Every normalised MSE and every correlation before a case moves one.
const BASE: f64 = 0.3;
/// Half-width of the uniform jitter added to every per-seed value.
const JITTER: f64 = 0.02;
/// Offsets from [`BASE`] of every quantity a case does not set: with a nonzero one, a claim
/// that read another arm than its statement names would see a difference where the case put
/// none (or none where it put one), and a case would fail.
const BACKGROUNDS: [f64; 3] = [0.0, -0.15, 0.15];

/// A per-seed quantity a claim can read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Q {
    /// Final normalised MSE of an arm (rank 0 for FT).
    Nmse(Experiment, Method, usize),
    /// `(ΔD, ΔM)` correlation of a method in the analysis (shown, not judged).
    Corr(Method),
}

/// What a claim states, written from its id.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `a < b`, paired by seed; the planted gap.
    Less(Q, Q, f64),
    /// `a ≈ b` within the margin.
    Same(Q, Q, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Present,
    Absent,
    Reversed,
}

fn cfg() -> DoraConfig {
    DoraConfig::for_scale(Scale::Small)
}

/// The shape of claim `id` (without the `dora/` prefix), from the paper's statements.
fn shape(cfg: &DoraConfig, id: &str) -> Option<Shape> {
    use Experiment::{Adapt, Capacity, Control};
    use Method::{Dora as D, Full as F, Lora as L};
    let rank = |prefix: &str| -> Option<usize> { id.strip_prefix(prefix)?.parse().ok() };
    let gap = 0.1;
    if let Some(r) = rank("capacity-dora-beats-lora-r") {
        return Some(Shape::Less(
            Q::Nmse(Capacity, D, r),
            Q::Nmse(Capacity, L, r),
            gap,
        ));
    }
    if let Some(r) = rank("capacity-half-rank-r") {
        return Some(Shape::Less(
            Q::Nmse(Capacity, D, r),
            Q::Nmse(Capacity, L, 2 * r),
            gap,
        ));
    }
    if let Some(r) = rank("control-no-difference-r") {
        return Some(Shape::Same(
            Q::Nmse(Control, D, r),
            Q::Nmse(Control, L, r),
            cfg.control_margin,
        ));
    }
    if let Some(r) = rank("adapt-dora-beats-lora-r") {
        return Some(Shape::Less(Q::Nmse(Adapt, D, r), Q::Nmse(Adapt, L, r), gap));
    }
    let rmax = *cfg.sorted_ranks().last()?;
    Some(match id {
        "adapt-ft-beats-dora" => Shape::Less(Q::Nmse(Adapt, F, 0), Q::Nmse(Adapt, D, rmax), gap),
        _ => return None,
    })
}

/// The values `(quantity, value before jitter)` a case sets; every other quantity is [`BASE`].
fn planted(shape: Shape, case: Case) -> Vec<(Q, f64)> {
    let sign = match case {
        Case::Present => 1.0,
        Case::Absent => 0.0,
        Case::Reversed => -1.0,
    };
    match shape {
        Shape::Less(a, b, gap) => vec![(a, BASE - sign * gap), (b, BASE)],
        // The control's effect is the absence of a difference: ABSENT (of the equivalence)
        // puts the arms five margins apart, REVERSED five margins apart the other way.
        Shape::Same(a, b, margin) => {
            let apart = match case {
                Case::Present => 0.0,
                Case::Absent => 5.0 * margin,
                Case::Reversed => -5.0 * margin,
            };
            vec![(a, BASE + apart), (b, BASE)]
        }
    }
}

/// Uniform jitter in ±[`JITTER`] per seed, minus its mean (so sd > 0 and mean exactly 0).
fn jitter(rng: &mut StdRng) -> Vec<f64> {
    let xs: Vec<f64> = SEED_LIST
        .iter()
        .map(|_| rng.random_range(-JITTER..JITTER))
        .collect();
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.into_iter().map(|x| x - mean).collect()
}

/// The records of a run whose quantities are `set` (others `BASE + background`), each with
/// jitter: the sweep's unit (which the claims skip) and one passed seed unit per seed.
fn records(cfg: &DoraConfig, set: &[(Q, f64)], background: f64) -> Vec<UnitRecord> {
    let mut rng = StdRng::seed_from_u64(23);
    let mut value = |q: Q| -> Vec<f64> {
        let v = set
            .iter()
            .find(|(k, _)| *k == q)
            .map_or(BASE + background, |&(_, v)| v);
        jitter(&mut rng).into_iter().map(|j| v + j).collect()
    };
    let mut per_seed: Vec<SeedMeasurements> = SEED_LIST
        .iter()
        .map(|&seed| SeedMeasurements {
            seed,
            pretrain_nmse: 0.07,
            arms: Vec::new(),
            analysis: Vec::new(),
        })
        .collect();
    for experiment in Experiment::ALL {
        for (method, rank) in arms(cfg, experiment) {
            let xs = value(Q::Nmse(experiment, method, rank));
            for (m, nmse) in per_seed.iter_mut().zip(xs) {
                m.arms.push(ArmMeasurement {
                    experiment,
                    method,
                    rank,
                    lr: cfg.lr_grid[0],
                    nmse,
                    curve_steps: vec![0, cfg.steps],
                    curve: vec![1.0, nmse],
                });
            }
        }
    }
    for method in [Method::Full, Method::Lora, Method::Dora] {
        let rank = if method == Method::Full {
            0
        } else {
            cfg.analysis_rank
        };
        let xs = value(Q::Corr(method));
        for (m, correlation) in per_seed.iter_mut().zip(xs) {
            m.analysis.push(AnalysisMeasurement {
                method,
                rank,
                layer: vec![0, 1, 0, 1],
                step: vec![50, 50, 100, 100],
                delta_d: vec![0.01, 0.02, 0.03, 0.04],
                delta_m: vec![0.02, 0.01, 0.04, 0.03],
                correlation,
                slope: correlation,
            });
        }
    }
    units(&SEED_LIST)
        .into_iter()
        .map(|u| {
            let metrics = match u.seed {
                Some(s) => per_seed
                    .iter()
                    .find(|m| m.seed == s)
                    .map(SeedMeasurements::metrics)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            UnitRecord::synthetic(&u.id, &u.paper, &u.experiment, &u.arm, u.seed, metrics)
        })
        .collect()
}

/// The claim `id` judged on `records` by the paper (no warnings allowed).
fn judge(cfg: &DoraConfig, records: &[UnitRecord], id: &str) -> Claim {
    let judged = Dora.claims(cfg, records, "small");
    assert!(judged.warnings.is_empty(), "{:?}", judged.warnings);
    judged
        .claims
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not judged"))
}

#[test]
fn the_synthetic_records_are_the_units_records() {
    let cfg = cfg();
    let recs = records(&cfg, &[], 0.0);
    assert_eq!(recs.len(), SEED_LIST.len() + 1);
    assert_eq!(recs[0].unit_id, TUNE_UNIT);
    for r in &recs[1..] {
        assert_eq!((r.experiment.as_str(), r.passed()), (SEEDS, true));
        let m = SeedMeasurements::from_metrics(&r.metrics).unwrap();
        assert_eq!(Some(m.seed), r.seed);
        let n_arms: usize = Experiment::ALL.iter().map(|&e| arms(&cfg, e).len()).sum();
        assert_eq!((m.arms.len(), m.analysis.len()), (n_arms, 3));
    }
    // Every synthetic claim is judged on them, none is skipped (the real-text claims need
    // real-text units: tests/text.rs).
    let judged = Dora.claims(&cfg, &recs, "small");
    assert!(judged.warnings.is_empty(), "{:?}", judged.warnings);
    assert_eq!(judged.claims.len(), crate::claims::specs(&cfg).len());
}

#[test]
fn every_reproduction_and_control_can_fail_and_can_pass() {
    let cfg = cfg();
    let specs = crate::claims::specs(&cfg);
    let mut exercised = BTreeSet::new();
    let mut failures = Vec::new();
    for spec in specs.iter().filter(|s| s.kind != ClaimKind::Check) {
        let short = spec.id.strip_prefix("dora/").unwrap();
        let shape =
            shape(&cfg, short).unwrap_or_else(|| panic!("no can-fail case for claim {}", spec.id));
        for (case, background) in [Case::Present, Case::Absent, Case::Reversed]
            .into_iter()
            .flat_map(|c| BACKGROUNDS.map(|b| (c, b)))
        {
            let recs = records(&cfg, &planted(shape, case), background);
            let c = judge(&cfg, &recs, &spec.id);
            assert_eq!(c.kind, spec.kind, "{}", spec.id);
            let band = c.band.as_ref().expect("every claim states a band");
            assert!(!band.rule.is_empty(), "{}: no band rule", spec.id);
            let estimate = c.our_value.as_f64().unwrap_or(f64::NAN);
            let ok = match case {
                Case::Present => {
                    c.verdict == Verdict::Reproduced
                        && band.contains(estimate)
                        && c.p_value.is_some_and(|p| p < 0.05)
                }
                Case::Absent | Case::Reversed => c.verdict != Verdict::Reproduced,
            };
            if !ok {
                failures.push(format!(
                    "{} {case:?} (background {background:+}): {} (estimate {estimate}, p {:?}): {}",
                    spec.id, c.verdict, c.p_value, c.details
                ));
            }
        }
        exercised.insert(spec.id.clone());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let expected: BTreeSet<String> = specs
        .iter()
        .filter(|s| s.kind != ClaimKind::Check)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(exercised, expected);
    assert_eq!(
        exercised.len(),
        4 + 3 + 1 + 4 + 1,
        "the small config's controls"
    );
}

#[test]
fn the_synthetic_claims_are_controls_and_the_real_text_ones_reproductions_or_a_check() {
    let cfg = cfg();
    for s in crate::claims::specs(&cfg) {
        assert_eq!(s.kind, ClaimKind::Control, "{}", s.id);
        assert!(!s.band_rule.trim().is_empty(), "{}", s.id);
        assert!(s.min_seeds >= 5 && s.proxy, "{}", s.id);
    }
    for s in crate::text::claims::specs(&cfg.text) {
        let kind = match s.id.as_str() {
            "dora/text-memory-detached-saves" => ClaimKind::Check,
            _ => ClaimKind::Reproduction,
        };
        assert_eq!(s.kind, kind, "{}", s.id);
        assert!(!s.band_rule.trim().is_empty(), "{}", s.id);
    }
    // Both shifts: 3 + 2 + 3 + 1 per shift, and the memory check.
    assert_eq!(crate::text::claims::specs(&cfg.text).len(), 2 * 9 + 1);
}

#[test]
fn tuning_seeds_never_judge() {
    for scale in [Scale::Smoke, Scale::Small, Scale::Full] {
        let cfg = DoraConfig::for_scale(scale);
        let verdict: Vec<u64> = (0..scale.default_seeds()).collect();
        assert!(
            cfg.tuning_seeds.iter().all(|s| !verdict.contains(s)),
            "{scale}: tuning seeds {:?} among the default verdict seeds",
            cfg.tuning_seeds
        );
        Dora.validate(&cfg, Some(&verdict)).unwrap();
        let mut overlap = verdict.clone();
        overlap.push(cfg.tuning_seeds[0]);
        let e = Dora.validate(&cfg, Some(&overlap)).unwrap_err();
        assert!(
            e.contains("tuning_seeds") && e.contains("verdict seed"),
            "{e}"
        );
    }
}
