//! Every reproduction claim and the control can fail, and the tests show it.
//!
//! A synthetic world of [`ArmResult`]s (5 seeds, every arm of the `small` config, small seeded
//! noise so every per-seed value has sd > 0) is turned into the unit records a run stores, by
//! the units' own [`metrics`], and judged by [`Continual`]'s `Paper::claims`, the real evidence
//! and verdict code. The paper-shaped world reproduces every claim (the tests have power); for
//! each claim one edit removes its effect (an equivalence: the arms differ by three margins) and
//! one reverses it, and the claim is then not `reproduced`. A coverage test ties the cases to
//! the ids of [`specs`], so a new claim without a case fails.

use std::collections::BTreeSet;

use claimbench_claims::Verdict;
use claimbench_paper::{Paper, Scale, UnitRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::EvalPoint;
use crate::paper::{Continual, metrics, stage0_id, unit_id};

/// Seeds of the synthetic world (the `small` scale's count).
const SEEDS: u64 = 5;
/// Half-width of the uniform noise added to every loss (nats).
const NOISE: f64 = 0.002;
/// D0 forgetting of the 0%-replay arm at η_max: weak, strong shift (nats).
const F0: [f64; 2] = [0.3, 1.0];
/// Final D1 loss of the 0%-replay arm: weak, strong shift (nats).
const L1: [f64; 2] = [2.4, 2.0];
/// D0 / D1 loss at the stage boundary; D1's per shift (nats).
const PRE_D0: f64 = 2.0;
const PRE_D1: [f64; 2] = [3.0, 5.0];

/// Share of the 0%-replay forgetting left at replay share `x`: `1 / (1 + 70 x)` (0.22 at 5%).
fn keep(x: f64) -> f64 {
    1.0 / (1.0 + 70.0 * x)
}

/// Relative D1 cost of replaying `x`: `0.08 x` (+0.4% at 5%, the paper's).
fn cost(x: f64) -> f64 {
    0.08 * x
}

fn ix(shift: Shift) -> usize {
    match shift {
        Shift::Weak => 0,
        Shift::Strong => 1,
    }
}

/// The arms' results per seed, and the noise source of every edit.
struct World {
    cfg: ExperimentConfig,
    results: Vec<ArmResult>,
    rng: StdRng,
}

impl World {
    /// Every arm of `cfg` on seeds `0..SEEDS` with the paper's shape: forgetting falls with
    /// replay, 5% replay leaves 22% of it at +0.4% D1 loss, the union and the infinite schedule
    /// within 0.5% of their replay arms, forgetting and adaptation grow with the stage-1 peak,
    /// re-warming on D0 rises by 0.05 nats (the shift's 0%-replay arm by 0.32).
    fn paper_shaped(cfg: &ExperimentConfig) -> Self {
        let mut w = World {
            cfg: cfg.clone(),
            results: Vec::new(),
            rng: StdRng::seed_from_u64(23),
        };
        for seed in 0..SEEDS {
            let pre_d0 = PRE_D0 + w.noise();
            let pre_d1 = [PRE_D1[0] + w.noise(), PRE_D1[1] + w.noise()];
            for arm in cfg.arms() {
                let i = arm.shift().map_or(0, ix);
                // (forgetting, final D1 loss, rise of D0 above its boundary loss)
                let (f, d1, rise) = match arm {
                    Arm::Replay { share, .. } => (
                        F0[i] * keep(share),
                        L1[i] * (1.0 + cost(share)),
                        F0[i] * keep(share) + 0.02,
                    ),
                    Arm::Union { .. } => {
                        let share = w.union_share(i);
                        let f = F0[i] * keep(share) - 0.01;
                        (f, L1[i] * (1.0 + cost(share)), f + 0.02)
                    }
                    Arm::Peak { peak, .. } => {
                        let (f, a) = w.lr_effect(peak);
                        (f, pre_d1[i] - a, f + 0.02)
                    }
                    Arm::ConstantMin { .. } => {
                        let (f, a) = w.lr_effect(cfg.eta_min);
                        (f, pre_d1[i] - a, f + 0.02)
                    }
                    Arm::SameData => (-0.05, pre_d1[0], 0.05),
                    Arm::Infinite { share, .. } => (
                        F0[i] * keep(share) + 0.005,
                        L1[i] * (1.0 + cost(share)) + 0.002,
                        F0[i] * keep(share) + 0.02,
                    ),
                };
                let last_d0 = pre_d0 + f + w.noise();
                let last_d1 = d1 + w.noise();
                let peak_d0 = pre_d0 + rise + w.noise();
                let pre = (pre_d0, pre_d1[i]);
                w.results.push(ArmResult {
                    arm,
                    seed,
                    curve: vec![
                        EvalPoint {
                            step: cfg.stage_steps,
                            lr: cfg.eta_min,
                            train_loss: f64::NAN,
                            d0_loss: pre.0,
                            d1_loss: pre.1,
                        },
                        EvalPoint {
                            step: 2 * cfg.stage_steps,
                            lr: cfg.eta_min,
                            train_loss: last_d1,
                            d0_loss: last_d0,
                            d1_loss: last_d1,
                        },
                    ],
                    boundary: cfg.stage_steps,
                    pre,
                    last: (last_d0, last_d1),
                    peak_d0,
                });
            }
        }
        w
    }

    fn noise(&mut self) -> f64 {
        self.rng.random_range(-NOISE..NOISE)
    }

    fn union_share(&self, shift: usize) -> f64 {
        [self.cfg.weak_union_share, self.cfg.strong_union_share][shift]
    }

    /// (forgetting, adaptation) of a weak-shift arm whose stage-1 peak is `lr`: both grow with
    /// it, equal to the 0%-replay arm's (0.3, 0.6) at η_max.
    fn lr_effect(&self, lr: f64) -> (f64, f64) {
        let r = lr / self.cfg.eta_max;
        (F0[0] * r.powf(0.6), (PRE_D1[0] - L1[0]) * r.powf(0.3))
    }

    /// The result of `arm` on `seed`.
    fn get(&mut self, arm: Arm, seed: u64) -> &mut ArmResult {
        self.results
            .iter_mut()
            .find(|r| r.arm == arm && r.seed == seed)
            .expect("every arm of the config is in the world")
    }

    /// Applies `edit(world, arm result, seed)` to every result of `arm`.
    fn edit(&mut self, arm: Arm, edit: impl Fn(&mut Self, u64) -> ArmResult) {
        for seed in 0..SEEDS {
            let r = edit(self, seed);
            *self.get(arm, seed) = r;
        }
    }

    /// The records a run stores: per seed the stage-0 unit (no metrics), then one passed unit
    /// per arm with the units' own [`metrics`].
    fn records(&self) -> Vec<UnitRecord> {
        let record = |unit_id: String, experiment: &str, arm: String, seed, metrics| {
            UnitRecord::synthetic(&unit_id, PAPER, experiment, &arm, Some(seed), metrics)
        };
        let mut out: Vec<UnitRecord> = (0..SEEDS)
            .map(|s| record(stage0_id(s), "stage0", "d0".into(), s, Vec::new()))
            .collect();
        out.extend(self.results.iter().map(|r| {
            record(
                unit_id(&r.arm, r.seed),
                r.arm.experiment(),
                r.arm.name(),
                r.seed,
                metrics(&self.cfg, r),
            )
        }));
        out
    }
}

/// `r` with its final losses set to `(d0, d1)`.
fn with_last(r: &ArmResult, d0: f64, d1: f64) -> ArmResult {
    ArmResult {
        last: (d0, d1),
        ..r.clone()
    }
}

fn replay(shift: Shift, share: f64) -> Arm {
    Arm::Replay { shift, share }
}

/// The four stage-1 learning-rate levels of the weak shift (constant η_min, the peaks and η_max)
/// with their rates.
fn lr_levels(cfg: &ExperimentConfig) -> Vec<(Arm, f64)> {
    let shift = Shift::Weak;
    let mut v = vec![
        (Arm::ConstantMin { shift }, cfg.eta_min),
        (replay(shift, 0.0), cfg.eta_max),
    ];
    v.extend(
        cfg.peaks
            .iter()
            .map(|&peak| (Arm::Peak { shift, peak }, peak)),
    );
    v
}

/// Sets the final D0 loss of every replay arm of `shift` to `boundary + f(share)` (+ noise).
fn replay_forgetting(w: &mut World, shift: Shift, f: impl Fn(f64) -> f64) {
    for share in w.cfg.replay_shares.clone() {
        w.edit(replay(shift, share), |w, seed| {
            let r = w.get(replay(shift, share), seed).clone();
            let d0 = r.pre.0 + f(share) + w.noise();
            with_last(&r, d0, r.last.1)
        });
    }
}

/// Scales the final losses of `arm` to `factor` times those of `like` on the same seed.
fn scale_like(w: &mut World, arm: Arm, like: Arm, factor: f64) {
    w.edit(arm, |w, seed| {
        let base = w.get(like, seed).last;
        let r = w.get(arm, seed).clone();
        let (d0, d1) = (base.0 * factor + w.noise(), base.1 * factor + w.noise());
        with_last(&r, d0, d1)
    });
}

/// Sets the weak-shift LR levels' (forgetting, adaptation) from their rate.
fn lr_levels_set(w: &mut World, f: impl Fn(&World, f64) -> (Option<f64>, Option<f64>)) {
    for (arm, lr) in lr_levels(&w.cfg) {
        let (forget, adapt) = f(w, lr);
        w.edit(arm, |w, seed| {
            let r = w.get(arm, seed).clone();
            let d0 = forget.map_or(r.last.0, |x| r.pre.0 + x + w.noise());
            let d1 = adapt.map_or(r.last.1, |x| r.pre.1 - x + w.noise());
            with_last(&r, d0, d1)
        });
    }
}

/// Sets the same-data arm's rise to `rise(seed's weak 0%-replay rise)` (+ noise).
fn same_data_rise(w: &mut World, rise: impl Fn(f64) -> f64) {
    w.edit(Arm::SameData, |w, seed| {
        let shifted = w.get(replay(Shift::Weak, 0.0), seed).clone();
        let r = w.get(Arm::SameData, seed).clone();
        ArmResult {
            peak_d0: r.pre.0 + rise(shifted.peak_d0 - shifted.pre.0) + w.noise(),
            ..r
        }
    });
}

/// An edit of the world that removes or reverses one claim's effect.
type Edit = fn(&mut World);

/// One claim's cases: its short id, the edit that removes its effect, the one that reverses it.
fn cases() -> Vec<(&'static str, Edit, Edit)> {
    vec![
        (
            "replay-monotone-weak",
            |w| replay_forgetting(w, Shift::Weak, |_| F0[0] * keep(0.05)),
            |w| replay_forgetting(w, Shift::Weak, |x| F0[0] * (1.0 - keep(x))),
        ),
        (
            "replay-monotone-strong",
            |w| replay_forgetting(w, Shift::Strong, |_| F0[1] * keep(0.05)),
            |w| replay_forgetting(w, Shift::Strong, |x| F0[1] * (1.0 - keep(x))),
        ),
        (
            "replay-removes-forgetting",
            |w| removed_forgetting(w, 1.0),
            |w| removed_forgetting(w, 1.5),
        ),
        (
            "replay-cost-on-new",
            |w| new_domain_cost(w, 1.05),
            |w| new_domain_cost(w, 0.95),
        ),
        (
            "rewarm-replay-matches-union-weak",
            |w| union_gap(w, Shift::Weak, 1.0 / 1.06),
            |w| union_gap(w, Shift::Weak, 1.06),
        ),
        (
            "rewarm-replay-matches-union-strong",
            |w| union_gap(w, Shift::Strong, 1.0 / 1.06),
            |w| union_gap(w, Shift::Strong, 1.06),
        ),
        (
            "peak-forgetting",
            |w| lr_levels_set(w, |_, _| (Some(F0[0]), None)),
            |w| {
                lr_levels_set(w, |w, lr| {
                    (Some(w.lr_effect(w.cfg.eta_max.powi(2) / lr).0), None)
                })
            },
        ),
        (
            "peak-adaptation",
            |w| lr_levels_set(w, |_, _| (None, Some(PRE_D1[0] - L1[0]))),
            |w| {
                lr_levels_set(w, |w, lr| {
                    (None, Some(w.lr_effect(w.cfg.eta_max.powi(2) / lr).1))
                })
            },
        ),
        (
            "rewarm-same-data-rise",
            |w| same_data_rise(w, |_| 0.0),
            |w| same_data_rise(w, |_| -0.05),
        ),
        (
            "rewarm-same-data-below-shift",
            |w| same_data_rise(w, |shifted| shifted),
            |w| same_data_rise(w, |shifted| shifted + 0.2),
        ),
        (
            "infinite-matches-cosine",
            |w| infinite_gap(w, 1.06),
            |w| infinite_gap(w, 0.94),
        ),
        (SHIFT_ID, |w| strong_gap(w, 0.0), |w| strong_gap(w, -1.5)),
        (
            CONTROL_ID,
            |w| strong_adaptation(w, 0.0),
            |w| strong_adaptation(w, -0.5),
        ),
    ]
}

/// The weak 5%-replay arm keeps `factor` times the 0%-replay arm's forgetting of its seed.
fn removed_forgetting(w: &mut World, factor: f64) {
    let with = replay(Shift::Weak, w.cfg.weak_union_share);
    w.edit(with, |w, seed| {
        let zero = w.get(replay(Shift::Weak, 0.0), seed).clone();
        let r = w.get(with, seed).clone();
        let d0 = r.pre.0 + factor * (zero.last.0 - zero.pre.0) + w.noise();
        with_last(&r, d0, r.last.1)
    });
}

/// The weak 5%-replay arm's final D1 loss is `factor` times the 0%-replay arm's.
fn new_domain_cost(w: &mut World, factor: f64) {
    let with = replay(Shift::Weak, w.cfg.weak_union_share);
    w.edit(with, |w, seed| {
        let zero = w.get(replay(Shift::Weak, 0.0), seed).last.1;
        let r = w.get(with, seed).clone();
        let d1 = zero * factor + w.noise();
        with_last(&r, r.last.0, d1)
    });
}

/// The union's final losses are `factor` times those of the replay arm it is compared with.
fn union_gap(w: &mut World, shift: Shift, factor: f64) {
    let share = w.union_share(ix(shift));
    scale_like(w, Arm::Union { shift }, replay(shift, share), factor);
}

/// The infinite schedule's final losses are `factor` times repeated cosine's.
fn infinite_gap(w: &mut World, factor: f64) {
    let share = w.cfg.weak_union_share;
    let shift = Shift::Weak;
    scale_like(
        w,
        Arm::Infinite { shift, share },
        replay(shift, share),
        factor,
    );
}

/// The strong 0%-replay arm's D1 loss falls by `drop` over stage 1 (+ noise).
fn strong_adaptation(w: &mut World, drop: f64) {
    let arm = replay(Shift::Strong, 0.0);
    w.edit(arm, |w, seed| {
        let r = w.get(arm, seed).clone();
        let d1 = r.pre.1 - drop + w.noise();
        with_last(&r, r.last.0, d1)
    });
}

/// The strong shift's gap at its stage boundary is twice the weak shift's plus `excess` (+
/// noise), on the 0%-replay arms the control reads.
fn strong_gap(w: &mut World, excess: f64) {
    let arm = replay(Shift::Strong, 0.0);
    w.edit(arm, |w, seed| {
        let weak = w.get(replay(Shift::Weak, 0.0), seed).pre;
        let mut r = w.get(arm, seed).clone();
        r.pre.1 = r.pre.0 + SHIFT_RATIO * (weak.1 - weak.0) + excess + w.noise();
        r.curve[0].d1_loss = r.pre.1;
        r
    });
}

fn small() -> ExperimentConfig {
    Continual.config(Scale::Small)
}

/// The verdicts of `Paper::claims` on `world`'s records, by short id; no warnings allowed.
fn judge(world: &World) -> Vec<Claim> {
    let judged = Continual.claims(&world.cfg, &world.records(), "small");
    assert!(judged.warnings.is_empty(), "{:?}", judged.warnings);
    judged.claims
}

fn find<'a>(claims: &'a [Claim], short: &str) -> &'a Claim {
    let id = format!("{PAPER}/{short}");
    claims
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} was not evaluated"))
}

#[test]
fn the_cases_cover_every_reproduction_claim_and_the_control() {
    let cfg = small();
    let specs = Continual.claim_specs(&cfg);
    let judged: BTreeSet<String> = specs
        .iter()
        .filter(|s| s.kind != ClaimKind::Check)
        .map(|s| s.id.clone())
        .collect();
    let covered: BTreeSet<String> = cases()
        .iter()
        .map(|(id, ..)| format!("{PAPER}/{id}"))
        .collect();
    assert_eq!(covered, judged);
    let controls: Vec<&ClaimSpec> = specs
        .iter()
        .filter(|s| s.kind == ClaimKind::Control)
        .collect();
    let ids: Vec<String> = controls.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids,
        [SHIFT_ID, CONTROL_ID].map(|id| format!("{PAPER}/{id}"))
    );
    for s in &specs {
        assert!(!s.band_rule.trim().is_empty(), "{} has no band rule", s.id);
        assert!(s.min_seeds >= 5, "{} judges on fewer than 5 seeds", s.id);
    }
}

#[test]
fn the_paper_shaped_world_reproduces_every_claim_inside_its_band() {
    let world = World::paper_shaped(&small());
    let claims = judge(&world);
    assert_eq!(claims.len(), cases().len());
    for (id, ..) in cases() {
        let c = find(&claims, id);
        assert_eq!(c.verdict, Verdict::Reproduced, "{id}: {}", c.details);
        let band = c.band.as_ref().expect("every claim states its band");
        let estimate = c.our_value.as_f64().expect("a number");
        assert!(band.contains(estimate), "{id}: {estimate} outside its band");
        let p = c.p_value.expect("a p-value");
        assert!(p < 0.05, "{id}: p = {p}");
        assert_eq!(c.seeds.len(), SEEDS as usize);
    }
    assert_eq!(
        find(&claims, CONTROL_ID).kind,
        ClaimKind::Control,
        "the control is judged as a control"
    );
}

#[test]
fn every_claim_fails_when_its_effect_is_absent_or_reversed() {
    for (id, absent, reversed) in cases() {
        for (case, edit) in [("absent", absent), ("reversed", reversed)] {
            let mut world = World::paper_shaped(&small());
            edit(&mut world);
            let claims = judge(&world);
            let c = find(&claims, id);
            assert_ne!(
                c.verdict,
                Verdict::Reproduced,
                "{id} ({case}) is still reproduced: {}",
                c.details
            );
            if case == "reversed" {
                assert_eq!(
                    c.verdict,
                    Verdict::NotReproduced,
                    "{id} ({case}): {}",
                    c.details
                );
            }
        }
    }
}
