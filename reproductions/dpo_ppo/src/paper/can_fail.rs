//! Every reproduction claim and every control of the `small` config can fail, shown through the
//! real path: synthetic [`UnitRecord`]s shaped as the units write them (the unit specs of
//! [`units`], metric rows from [`Fig1Measurements::metrics`] and [`ArmMeasurements::metrics`],
//! the exact unit's rows from [`run_table1`]) go through [`Paper::claims`], i.e. the crate's
//! record readers, evidence builders and `claimbench_claims::evaluate`.
//!
//! Per claim, a [`Case`] states the claim's contrast `d = a − b` in the test's own terms (which
//! fields it moves, independently of how the claim code pairs them). Three scenarios over
//! [`SEEDS`], with small seeded noise (sd > 0) that is exactly zero-mean over the seeds:
//! - **present**: `d = sign·EFFECT + noise` (the claimed side): `reproduced`, with the estimate
//!   inside the stated band and p < 0.05 — the test has power;
//! - **absent**: `d = noise` (mean exactly 0): `inconclusive`;
//! - **reversed**: `d = −sign·EFFECT + noise`: `not-reproduced`.
//!
//! The claimed sign comes from the spec's `TestSpec` (a claim that stops being an ordering
//! fails here until its case is revised). Coverage: the cases' ids must equal the spec's
//! reproduction ids plus its control ids, so a new claim without a case fails CI.

use std::collections::{BTreeMap, BTreeSet};

use claimbench_claims::{ClaimKind, ClaimSpec, Direction, TestSpec, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::fig1::{OPTIMUM_TV_MARGIN, UNCOVERED_MARGIN};
use crate::ladder::{CurvePoint, FULL_MARGIN};

/// The synthetic verdict seeds (at least `min_seeds` 5).
const SEEDS: [u64; 6] = [0, 1, 2, 3, 4, 5];
/// Size of the planted contrast, in the claim's units (probability, reward, pass rate).
const EFFECT: f64 = 0.1;
/// Half-width of the uniform per-seed noise before centring.
const NOISE: f64 = 0.02;

/// How a scenario sets a claim's contrast.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Effect {
    Present,
    Absent,
    Reversed,
}

/// Sets one seed's contrast `d = a − b` of a claim.
enum Case {
    /// On the seed's 8×8 measurements.
    Fig1(fn(&mut Fig1Measurements, f64)),
    /// On the seed's ladder arms.
    Ladder(fn(&mut BTreeMap<Arm, ArmMeasurements>, f64)),
}

fn final_of(arms: &BTreeMap<Arm, ArmMeasurements>, arm: Arm) -> f64 {
    arms[&arm].final_pass_k
}

fn set_final(arms: &mut BTreeMap<Arm, ArmMeasurements>, arm: Arm, v: f64) {
    arms.get_mut(&arm).expect("every arm").final_pass_k = v;
}

/// One case per reproduction claim and control, keyed by claim id.
fn cases() -> Vec<(&'static str, Case)> {
    use Case::{Fig1, Ladder};
    vec![
        (
            "dpo-ppo/fig1-dpo-raises-uncovered",
            Fig1(|m, d| m.dpo_uncovered_increase = UNCOVERED_MARGIN + d),
        ),
        (
            "dpo-ppo/fig1-ppo-keeps-uncovered-low",
            Fig1(|m, d| m.ppo_uncovered_increase = UNCOVERED_MARGIN + d),
        ),
        (
            "dpo-ppo/fig1-ppo-beats-dpo",
            Fig1(|m, d| m.reward_ppo = m.reward_dpo + d),
        ),
        (
            "dpo-ppo/fig1-ppo-learns-kl-optimum",
            Fig1(|m, d| m.ppo_tv_to_optimum = OPTIMUM_TV_MARGIN + d),
        ),
        (
            "dpo-ppo/shift-sft-on-preference-data-helps-dpo",
            Fig1(|m, d| m.shift_reward_dpo_sft = m.shift_reward_dpo_other + d),
        ),
        (
            // PPO's gap = DPO's gap + d (DPO's gap is 0.2, so it stays ≥ 0).
            "dpo-ppo/shift-ppo-less-sensitive-to-reference",
            Fig1(|m, d| {
                m.shift_reward_ppo_other = m.shift_reward_ppo_sft
                    - ((m.shift_reward_dpo_sft - m.shift_reward_dpo_other).abs() + d)
            }),
        ),
        (
            "dpo-ppo/shift-dpo-iter-improves",
            Fig1(|m, d| {
                let last = m.iter_reward_sft.last_mut().expect("rounds");
                *last = m.shift_reward_dpo_sft + d;
            }),
        ),
        (
            "dpo-ppo/fig1-control-oracle-ppo-keeps-uncovered-low",
            Fig1(|m, d| m.ppo_oracle_uncovered_increase = UNCOVERED_MARGIN + d),
        ),
        (
            "dpo-ppo/fig1-control-oracle-ppo-raises-true-reward",
            Fig1(|m, d| m.reward_ppo_oracle = m.reward_ref + d),
        ),
        (
            "dpo-ppo/ppo-ladder-full-beats-base",
            Ladder(|a, d| {
                let v = final_of(a, Arm::Base) + FULL_MARGIN + d;
                set_final(a, Arm::RefEma, v)
            }),
        ),
        (
            "dpo-ppo/ppo-ladder-adv-norm",
            Ladder(|a, d| set_final(a, Arm::AdvNorm, final_of(a, Arm::Base) + d)),
        ),
        (
            "dpo-ppo/ppo-ladder-large-batch",
            Ladder(|a, d| set_final(a, Arm::LargeBatch, final_of(a, Arm::AdvNorm) + d)),
        ),
        (
            "dpo-ppo/ppo-ladder-ref-ema",
            Ladder(|a, d| set_final(a, Arm::RefEma, final_of(a, Arm::LargeBatch) + d)),
        ),
        (
            "dpo-ppo/ppo-ladder-full-beats-sft",
            Ladder(|a, d| {
                let sft = a[&Arm::RefEma].sft_pass_k;
                set_final(a, Arm::RefEma, sft + d)
            }),
        ),
        (
            "dpo-ppo/ppo-ladder-base-below-sft",
            Ladder(|a, d| {
                let sft = a[&Arm::Base].sft_pass_k;
                set_final(a, Arm::Base, sft + d)
            }),
        ),
    ]
}

/// `+1` when the claim says `a > b`, `−1` for `a < b`.
fn claimed_sign(spec: &ClaimSpec) -> f64 {
    match spec.test {
        TestSpec::Ordering {
            direction: Direction::Greater,
            ..
        } => 1.0,
        TestSpec::Ordering {
            direction: Direction::Less,
            ..
        } => -1.0,
        ref t => panic!("{}: a {} test needs its own case here", spec.id, t.kind()),
    }
}

/// Plausible 8×8 measurements of `seed`, every claim's effect present at a neutral size, with
/// per-seed jitter; the tables are uniform (the claims read only the scalars).
fn fig1_base(cfg: &Fig1Config, seed: u64, rng: &mut StdRng) -> Fig1Measurements {
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    let cells = nx * ny;
    let mut j = || rng.random_range(-0.01..0.01);
    let uniform = vec![1.0 / ny as f64; cells];
    let true_reward = (0..cells)
        .map(|c| if c / ny == c % ny { 1.0 } else { 0.3 })
        .collect();
    let coverage = (0..cells)
        .map(|c| {
            let (x, y) = (c / ny, c % ny);
            if y == x || y == (x + 1) % ny {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    // Prompt 0, response 2: uncovered.
    let uncovered_cell = 2;
    Fig1Measurements {
        seed,
        n_prompts: nx,
        n_responses: ny,
        true_reward,
        coverage,
        rm_reward: vec![0.0; cells],
        rm_accuracy: 1.0,
        rm_argmax_uncovered: 0.0,
        pi_ref: uniform.clone(),
        pi_dpo: uniform.clone(),
        pi_ppo: uniform.clone(),
        pi_star: uniform,
        reward_ref: 0.5 + j(),
        reward_dpo: 0.7 + j(),
        reward_ppo: 0.85 + j(),
        reward_star: 0.9 + j(),
        dpo_uncovered_increase: 0.15 + j(),
        dpo_uncovered_cell: uncovered_cell,
        ppo_uncovered_increase: j().abs(),
        ppo_uncovered_cell: uncovered_cell,
        reward_ppo_oracle: 0.9 + j(),
        ppo_oracle_uncovered_increase: -0.02 + j(),
        ppo_oracle_uncovered_cell: uncovered_cell,
        dpo_tv_to_optimum: 0.3 + j(),
        ppo_tv_to_optimum: 0.04 + j(),
        curve_rm_loss: vec![0.69, 0.3, 0.1],
        curve_dpo_loss: vec![0.69, 0.4, 0.2],
        curve_ppo_reward: vec![0.5, 0.7, 0.85],
        shift_reward_ref_other: 0.3 + j(),
        shift_reward_ref_sft: 0.6 + j(),
        shift_reward_dpo_other: 0.55 + j(),
        shift_reward_dpo_sft: 0.75 + j(),
        shift_reward_ppo_other: 0.88 + j(),
        shift_reward_ppo_sft: 0.9 + j(),
        iter_reward_other: (0..=cfg.iter_rounds)
            .map(|r| 0.55 + 0.02 * r as f64)
            .collect(),
        iter_reward_sft: (0..=cfg.iter_rounds)
            .map(|r| 0.75 + 0.03 * r as f64)
            .collect(),
    }
}

/// Plausible ladder measurements of every arm of one seed: SFT 0.34, then 0.5, 0.6, 0.7, 0.8
/// up the ladder, with per-run jitter.
fn ladder_base(cfg: &LadderConfig, rng: &mut StdRng) -> BTreeMap<Arm, ArmMeasurements> {
    let sft = 0.34 + rng.random_range(-0.01..0.01);
    Arm::ALL
        .into_iter()
        .enumerate()
        .map(|(i, arm)| {
            let fin = 0.5 + 0.1 * i as f64 + rng.random_range(-0.01..0.01);
            let (batch, _) = cfg.batching(arm);
            let m = ArmMeasurements {
                k: cfg.pass_k,
                sft_pass1: 0.11,
                sft_pass_k: sft,
                sft_heldout_pass_k: sft - 0.05,
                final_pass1: fin / 2.0,
                final_pass_k: fin,
                final_heldout_pass_k: fin - 0.1,
                final_kl_sft: 0.5,
                samples: cfg.iterations * batch,
                curve: vec![
                    CurvePoint {
                        iteration: 0,
                        pass1: 0.11,
                        pass_k: sft,
                    },
                    CurvePoint {
                        iteration: cfg.iterations,
                        pass1: fin / 2.0,
                        pass_k: fin,
                    },
                ],
            };
            (arm, m)
        })
        .collect()
}

/// Per-seed contrasts of `effect` for a claim of sign `sign`: `center + noise`, the noise
/// uniform in ±[`NOISE`] and then centred so its mean over the seeds is exactly 0.
fn contrasts(effect: Effect, sign: f64, rng: &mut StdRng) -> Vec<f64> {
    let noise: Vec<f64> = SEEDS
        .iter()
        .map(|_| rng.random_range(-NOISE..NOISE))
        .collect();
    let mean = noise.iter().sum::<f64>() / noise.len() as f64;
    let center = match effect {
        Effect::Present => sign * EFFECT,
        Effect::Absent => 0.0,
        Effect::Reversed => -sign * EFFECT,
    };
    noise.iter().map(|n| center + n - mean).collect()
}

fn record(unit: &UnitSpec, metrics: Vec<MetricRow>) -> UnitRecord {
    UnitRecord::synthetic(
        &unit.id,
        &unit.paper,
        &unit.experiment,
        &unit.arm,
        unit.seed,
        metrics,
    )
}

/// The records of a whole run over [`SEEDS`] (every unit of [`units`], passed) with `case`'s
/// contrast of seed `i` set to `d[i]`.
fn run_records(cfg: &DpoPpoConfigs, case: &Case, d: &[f64], rng: &mut StdRng) -> Vec<UnitRecord> {
    let mut fig = BTreeMap::new();
    let mut ladder = BTreeMap::new();
    for (i, &seed) in SEEDS.iter().enumerate() {
        let mut m = fig1_base(&cfg.fig1, seed, rng);
        let mut arms = ladder_base(&cfg.ladder, rng);
        match case {
            Case::Fig1(set) => set(&mut m, d[i]),
            Case::Ladder(set) => set(&mut arms, d[i]),
        }
        fig.insert(seed, m);
        ladder.insert(seed, arms);
    }
    let table1 = run_table1(&[0]).metrics;
    units(&SEEDS)
        .iter()
        .map(|u| {
            let metrics = match u.task {
                "table1" => table1.clone(),
                "fig1" => fig[&u.seed.unwrap()].metrics(),
                "ladder-sft" => Vec::new(),
                _ => {
                    let arm = Arm::from_name(&u.arm).expect("a ladder arm");
                    ladder[&u.seed.unwrap()][&arm].metrics()
                }
            };
            record(u, metrics)
        })
        .collect()
}

#[test]
fn every_reproduction_claim_and_control_can_fail() {
    let paper = DpoPpo;
    let cfg = paper.config(Scale::Small);
    let specs = paper.claim_specs(&cfg);
    let mut rng = StdRng::seed_from_u64(23);
    let mut exercised = BTreeSet::new();
    for (id, case) in cases() {
        let spec = specs
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("{id}: no such claim in claim_specs"));
        assert_ne!(spec.kind, ClaimKind::Check, "{id}: checks need no case");
        assert!(spec.min_seeds >= 5 && SEEDS.len() >= spec.min_seeds, "{id}");
        let sign = claimed_sign(spec);
        for effect in [Effect::Present, Effect::Absent, Effect::Reversed] {
            let d = contrasts(effect, sign, &mut rng);
            let records = run_records(&cfg, &case, &d, &mut rng);
            let judged = paper.claims(&cfg, &records, "small");
            assert!(judged.warnings.is_empty(), "{id}: {:?}", judged.warnings);
            assert_eq!(judged.claims.len(), specs.len(), "{id} {effect:?}");
            let c = judged
                .claims
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("{id}: not evaluated"));
            assert_eq!(c.kind, spec.kind, "{id}");
            assert_eq!(c.seeds, SEEDS.to_vec(), "{id}");
            let want = match effect {
                Effect::Present => Verdict::Reproduced,
                Effect::Absent => Verdict::Inconclusive,
                Effect::Reversed => Verdict::NotReproduced,
            };
            assert_eq!(c.verdict, want, "{id} {effect:?}: {}", c.details);
            if effect == Effect::Present {
                let band = c.band.as_ref().expect("a band");
                assert!(!band.rule.trim().is_empty(), "{id}: no band rule");
                let est = c.our_value.as_f64().expect("a number");
                assert!(band.contains(est), "{id}: {est} outside {band:?}");
                assert!(c.p_value.expect("a p-value") < 0.05, "{id}: {}", c.details);
            }
        }
        exercised.insert(id.to_string());
    }
    let of_kind = |k: ClaimKind| -> BTreeSet<String> {
        specs
            .iter()
            .filter(|s| s.kind == k)
            .map(|s| s.id.clone())
            .collect()
    };
    let (repro, controls) = (
        of_kind(ClaimKind::Reproduction),
        of_kind(ClaimKind::Control),
    );
    assert!(!controls.is_empty(), "the paper needs a control claim");
    assert_eq!(
        exercised,
        repro.union(&controls).cloned().collect::<BTreeSet<_>>(),
        "every reproduction claim and control needs a can-fail case"
    );
}

/// The controls are evaluated in a real run: they come out of [`Paper::claims`] from the fig1
/// units' records alone, and the `small` config's seeds reach `min_seeds`.
#[test]
fn the_controls_are_part_of_the_run() {
    let paper = DpoPpo;
    let cfg = paper.config(Scale::Small);
    let controls: Vec<ClaimSpec> = paper
        .claim_specs(&cfg)
        .into_iter()
        .filter(|s| s.kind == ClaimKind::Control)
        .collect();
    assert_eq!(controls.len(), 2);
    let mut rng = StdRng::seed_from_u64(5);
    let d = vec![0.0; SEEDS.len()];
    let records = run_records(&cfg, &Case::Fig1(|_, _| {}), &d, &mut rng);
    let only_fig1: Vec<UnitRecord> = records
        .into_iter()
        .filter(|r| r.experiment == FIG1)
        .collect();
    let judged = paper.claims(&cfg, &only_fig1, "small");
    for s in &controls {
        let c = judged
            .claims
            .iter()
            .find(|c| c.id == s.id)
            .expect("evaluated");
        assert_eq!(c.kind, ClaimKind::Control);
        assert!(s.band_rule.contains("known absent") || s.band_rule.contains("planted"));
        assert!(Scale::Small.default_seeds() as usize >= s.min_seeds);
    }
}

/// Seeds that tune never judge: `validate` with the run's seeds refuses a tuning seed among them.
#[test]
fn validate_refuses_a_tuning_seed_among_the_verdict_seeds() {
    let paper = DpoPpo;
    for scale in Scale::ALL {
        let cfg = paper.config(scale);
        paper.validate(&cfg, None).unwrap();
        let verdict: Vec<u64> = (0..scale.default_seeds()).collect();
        paper.validate(&cfg, Some(&verdict)).unwrap();
        let clash = [0, 1, cfg.ladder.tuning_seeds[0]];
        let e = paper.validate(&cfg, Some(&clash)).unwrap_err();
        assert!(
            e.starts_with("ladder: ladder setting tuning_seeds")
                && e.contains("is also a verdict seed"),
            "{e}"
        );
    }
}
