//! Every reproduction claim and control can fail: for each claim id of the `small` config's
//! [`Paper::claim_specs`], synthetic unit records (the rows [`SeedMeasurements::metrics`] writes,
//! under the units [`Paper::units`] declares) with the claim's effect present, absent and
//! reversed (and, for the ratio-to-chance magnitudes, "a few points above chance") go through
//! [`Paper::claims`], the real evidence and verdict code. Absent and reversed (and weak) must
//! not give `reproduced`; present must. Every other claim's quantity stays at its "present"
//! level, so only the claim under test moves. The cases cover exactly the reproduction and
//! control ids of the specs: a new claim without a case fails here.
//!
//! Records: 6 seeds; every quantity is its level plus seeded noise centred over the seeds (so
//! sd > 0 and the mean is the level exactly: an absent effect has mean difference 0).

use std::collections::BTreeSet;

use claimbench_claims::{Claim, ClaimKind, Verdict};
use claimbench_paper::{Paper, Scale, UnitRecord};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::claims::{LAYER15_FIRST, LAYER15_FIRST_OR_SECOND, layer15_stand_in, ratio_band};
use crate::config::MixtralConfig;
use crate::data::normal;
use crate::experiments::arm_params;
use crate::measure::{Arm, ArmMeasurement, SeedMeasurements};
use crate::paper::Mixtral;
use crate::routing::{LayerRouting, MiTest, chance_overlap};

const SEEDS: [u64; 6] = [10, 11, 12, 13, 14, 15];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Present,
    Absent,
    Reversed,
    /// A rate a few points above chance (ratio-to-chance magnitudes only).
    Weak,
}

/// The level of every measured quantity (means over seeds).
#[derive(Debug, Clone)]
struct Levels {
    /// `val_loss(moe) − val_loss(dense-active)`.
    moe_minus_dense: f64,
    /// `val_loss(dense-total) − val_loss(moe)`.
    total_minus_moe: f64,
    /// Per layer: same-first rate / (1/E).
    same_first_ratio: Vec<f64>,
    /// Per layer: same-first rate − Σ s².
    share_excess: Vec<f64>,
    /// Per layer: first-or-second rate / chance.
    fos_ratio: Vec<f64>,
    /// Per layer: domain–expert MI in excess of its null (bits).
    mi_excess: Vec<f64>,
    /// Per layer: the planted router's MI excess (bits).
    planted_mi_excess: Vec<f64>,
    /// Every arm's convergence slope (nats per 1000 steps).
    slope: f64,
    /// Smallest and largest share × E of the MoE arm (every layer).
    min_ratio: f64,
    max_ratio: f64,
    /// Largest share × E of the no-aux arm minus the MoE arm's.
    noaux_minus_moe_max: f64,
}

fn mid([lo, hi]: [f64; 2]) -> f64 {
    (lo + hi) / 2.0
}

impl Levels {
    /// Every claim's effect present.
    fn present(cfg: &MixtralConfig) -> Self {
        let n = cfg.model.n_layers;
        let l15 = layer15_stand_in(n);
        let at = |l: usize, stand_in: f64, other: f64| if l == l15 { stand_in } else { other };
        Levels {
            moe_minus_dense: -0.15,
            total_minus_moe: -0.05,
            same_first_ratio: (0..n)
                .map(|l| at(l, mid(ratio_band(LAYER15_FIRST)), 1.3))
                .collect(),
            share_excess: vec![0.02; n],
            fos_ratio: (0..n)
                .map(|l| at(l, mid(ratio_band(LAYER15_FIRST_OR_SECOND)), 1.15))
                .collect(),
            mi_excess: vec![0.01; n],
            planted_mi_excess: vec![0.5; n],
            slope: -0.01,
            min_ratio: 0.8,
            max_ratio: 1.3,
            noaux_minus_moe_max: 0.6,
        }
    }

    /// [`Levels::present`] with the quantity of claim `id` (without the `mixtral/` prefix) set
    /// to `effect`; `None` when no case is written for `id` (or `effect` does not apply).
    fn for_claim(cfg: &MixtralConfig, id: &str, effect: Effect) -> Option<Self> {
        let mut v = Levels::present(cfg);
        if effect == Effect::Present {
            // Still check that the id is known.
            Levels::for_claim(cfg, id, Effect::Absent)?;
            return Some(v);
        }
        let [lo, hi] = cfg.share_bounds;
        let bound = cfg.specialisation_mi_bound;
        let pick = |absent: f64, reversed: f64| match effect {
            Effect::Absent => Some(absent),
            Effect::Reversed => Some(reversed),
            _ => None,
        };
        let (base, layer) = match id.rsplit_once("-l") {
            Some((b, l)) if l.parse::<usize>().is_ok() => (b, l.parse::<usize>().ok()),
            _ => (id, None),
        };
        match (base, layer) {
            ("moe-beats-dense-equal-active", None) => v.moe_minus_dense = pick(0.0, 0.1)?,
            ("dense-equal-total-upper-reference", None) => v.total_minus_moe = pick(0.0, 0.1)?,
            ("moe-closes-gap-to-dense-total", None) => {
                // Share g = −moe_minus_dense / −(moe_minus_dense + total_minus_moe): absent 0,
                // reversed −1 (the MoE worse than dense-active), weak 0.25.
                (v.moe_minus_dense, v.total_minus_moe) = match effect {
                    Effect::Weak => (-0.05, -0.15),
                    _ => (pick(0.0, 0.1)?, -0.2),
                }
            }
            ("same-first-expert-ratio-to-chance", Some(l)) => {
                // Weak: 15.5% against 12.5%.
                *v.same_first_ratio.get_mut(l)? = match effect {
                    Effect::Weak => 1.24,
                    _ => pick(1.0, 0.8)?,
                }
            }
            ("same-first-expert-above-chance", Some(l)) => {
                *v.same_first_ratio.get_mut(l)? = pick(1.0, 0.8)?
            }
            ("same-first-expert-above-share-chance", Some(l)) => {
                *v.share_excess.get_mut(l)? = pick(0.0, -0.02)?
            }
            ("first-or-second-ratio-to-chance", Some(l)) => {
                // Weak: 50% against 46.4%.
                *v.fos_ratio.get_mut(l)? = match effect {
                    Effect::Weak => 0.5 / chance_overlap(cfg.model.experts, cfg.model.top_k),
                    _ => pick(1.0, 0.9)?,
                }
            }
            ("first-or-second-above-chance", Some(l)) => *v.fos_ratio.get_mut(l)? = pick(1.0, 0.9)?,
            ("aux-min-share-above-bound", None) => v.min_ratio = pick(lo, 0.2)?,
            ("aux-max-share-below-bound", None) => v.max_ratio = pick(hi, 3.0)?,
            ("noaux-more-imbalanced", None) => v.noaux_minus_moe_max = pick(0.0, -0.2)?,
            ("no-domain-specialisation", Some(l)) => *v.mi_excess.get_mut(l)? = pick(bound, 0.4)?,
            ("planted-specialisation-detected", Some(l)) => {
                *v.planted_mi_excess.get_mut(l)? = pick(bound, 0.01)?
            }
            _ => return None,
        }
        Some(v)
    }
}

/// `n` draws of `N(0, sd²)` minus their mean (so the mean is exactly 0 up to rounding).
fn centred(rng: &mut StdRng, n: usize, sd: f64) -> Vec<f64> {
    let x: Vec<f64> = (0..n).map(|_| normal(rng) * sd).collect();
    let m = x.iter().sum::<f64>() / n as f64;
    x.into_iter().map(|v| v - m).collect()
}

/// Shares `[E]` whose smallest and largest times `E` are `min` and `max`, the rest equal.
fn shares(e: usize, min: f64, max: f64) -> Vec<f64> {
    let rest = (e as f64 - min - max) / (e as f64 - 2.0);
    let mut s = vec![rest / e as f64; e];
    s[0] = min / e as f64;
    s[1] = max / e as f64;
    s
}

/// The per-seed measurements at `levels`, noise from a fixed stream.
fn measurements(cfg: &MixtralConfig, v: &Levels) -> Vec<SeedMeasurements> {
    let (m, n) = (&cfg.model, SEEDS.len());
    let (e, d, layers) = (m.experts, cfg.data.domains(), m.n_layers);
    let chance_first = 1.0 / e as f64;
    let chance_fos = chance_overlap(e, m.top_k);
    let mut rng = StdRng::seed_from_u64(2401_04088);
    let mut noise = |sd: f64| centred(&mut rng, n, sd);
    let dense = noise(0.05);
    let (d_moe, d_total) = (noise(0.01), noise(0.01));
    let (n_min, n_max, n_noaux) = (noise(0.02), noise(0.02), noise(0.02));
    let per_layer = |noise: &mut dyn FnMut(f64) -> Vec<f64>, sd: f64| -> Vec<Vec<f64>> {
        (0..layers).map(|_| noise(sd)).collect()
    };
    let n_same = per_layer(&mut noise, 0.02);
    let n_excess = per_layer(&mut noise, 0.002);
    let n_fos = per_layer(&mut noise, 0.02);
    let n_mi = per_layer(&mut noise, 0.005);
    let n_planted = per_layer(&mut noise, 0.02);
    SEEDS
        .iter()
        .enumerate()
        .map(|(i, &seed)| {
            let loss_dense = 3.2 + dense[i];
            let loss_moe = loss_dense + v.moe_minus_dense + d_moe[i];
            let loss_total = loss_moe + v.total_minus_moe + d_total[i];
            let moe_max = v.max_ratio + n_max[i];
            let routing = |noaux: bool| -> Vec<LayerRouting> {
                (0..layers)
                    .map(|l| {
                        let same_first = v.same_first_ratio[l] * chance_first + n_same[l][i];
                        let mi = v.mi_excess[l] + n_mi[l][i];
                        let sh = if noaux {
                            shares(e, v.min_ratio, moe_max + v.noaux_minus_moe_max + n_noaux[i])
                        } else {
                            shares(e, v.min_ratio + n_min[i], moe_max)
                        };
                        LayerRouting {
                            layer: l,
                            same_first,
                            first_or_second: v.fos_ratio[l] * chance_fos + n_fos[l][i],
                            same_first_chance: same_first - v.share_excess[l] - n_excess[l][i],
                            domain_hist: vec![sh.clone(); d],
                            shares: sh,
                            domain_tv: vec![0.05; d],
                            planted_bias: 1.0,
                            planted_domain_tv: vec![0.3; d],
                            mi: MiTest {
                                observed: 0.1 + mi,
                                null_mean: 0.1,
                                p: 0.01,
                            },
                            planted_mi: MiTest {
                                observed: 0.1 + v.planted_mi_excess[l] + n_planted[l][i],
                                null_mean: 0.1,
                                p: 0.005,
                            },
                            sample_experts: vec![vec![0, 1, 2]; d],
                        }
                    })
                    .collect()
            };
            let arm = |arm: Arm, val_loss: f64| {
                let p = arm_params(m, arm);
                ArmMeasurement {
                    arm,
                    params_total: p.total,
                    params_active: p.active,
                    val_loss,
                    val_loss_domain: vec![val_loss; d],
                    curve_steps: vec![0, cfg.train.steps],
                    train_curve: vec![3.5, val_loss],
                    val_curve: vec![3.5, val_loss],
                    final_slope: v.slope,
                    routing: match arm {
                        Arm::Moe => routing(false),
                        Arm::MoeNoAux => routing(true),
                        _ => Vec::new(),
                    },
                    seconds: 1.0,
                }
            };
            SeedMeasurements {
                seed,
                unigram_loss: 5.5,
                sample_pieces: vec![vec!["a".into(), "é".into(), "".into()]; d],
                arms: vec![
                    arm(Arm::DenseActive, loss_dense),
                    arm(Arm::Moe, loss_moe),
                    arm(Arm::MoeNoAux, loss_moe),
                    arm(Arm::DenseTotal, loss_total),
                ],
            }
        })
        .collect()
}

/// The records a run stores for these measurements (one passed unit per seed).
fn records(cfg: &MixtralConfig, ms: &[SeedMeasurements]) -> Vec<UnitRecord> {
    let units = Mixtral.units(cfg, &SEEDS);
    ms.iter()
        .zip(units)
        .map(|(m, u)| {
            assert_eq!(u.seed, Some(m.seed));
            UnitRecord::synthetic(&u.id, &u.paper, &u.experiment, &u.arm, u.seed, m.metrics())
        })
        .collect()
}

/// The claims of `Paper::claims` on synthetic records at `levels` (no warnings allowed).
fn judged(cfg: &MixtralConfig, levels: &Levels) -> Vec<Claim> {
    let j = Mixtral.claims(cfg, &records(cfg, &measurements(cfg, levels)), "small");
    assert!(j.warnings.is_empty(), "{:?}", j.warnings);
    assert_eq!(j.claims.len(), Mixtral.claim_specs(cfg).len());
    j.claims
}

fn verdict_of<'a>(claims: &'a [Claim], id: &str) -> &'a Claim {
    claims
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not judged"))
}

fn ids_of_kind(cfg: &MixtralConfig, kind: ClaimKind) -> BTreeSet<String> {
    Mixtral
        .claim_specs(cfg)
        .into_iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.id)
        .collect()
}

/// Runs every case of the claims of `kind`; returns the ids exercised.
fn exercise(kind: ClaimKind) -> BTreeSet<String> {
    let cfg = Mixtral.config(Scale::Small);
    let mut done = BTreeSet::new();
    for id in ids_of_kind(&cfg, kind) {
        let short = id.strip_prefix("mixtral/").unwrap();
        for effect in [
            Effect::Present,
            Effect::Absent,
            Effect::Reversed,
            Effect::Weak,
        ] {
            let Some(levels) = Levels::for_claim(&cfg, short, effect) else {
                assert_ne!(effect, Effect::Present, "{id}: no case written");
                assert_ne!(effect, Effect::Absent, "{id}: no absent case");
                assert_ne!(effect, Effect::Reversed, "{id}: no reversed case");
                continue;
            };
            let claims = judged(&cfg, &levels);
            let c = verdict_of(&claims, &id);
            assert_eq!(c.kind, kind, "{id}");
            eprintln!("{id} {effect:?}: {}", c.details);
            if effect == Effect::Present {
                assert_eq!(
                    c.verdict,
                    Verdict::Reproduced,
                    "{id} present: {}",
                    c.details
                );
            } else {
                assert_ne!(
                    c.verdict,
                    Verdict::Reproduced,
                    "{id} {effect:?}: {}",
                    c.details
                );
            }
        }
        done.insert(id);
    }
    done
}

#[test]
fn every_reproduction_claim_can_fail_and_has_power() {
    let cfg = Mixtral.config(Scale::Small);
    let want = ids_of_kind(&cfg, ClaimKind::Reproduction);
    assert!(want.len() >= 10, "{want:?}");
    assert_eq!(exercise(ClaimKind::Reproduction), want);
}

#[test]
fn the_positive_control_can_fail_and_detects_planted_specialisation() {
    let cfg = Mixtral.config(Scale::Small);
    let want = ids_of_kind(&cfg, ClaimKind::Control);
    let expected: BTreeSet<String> = (0..cfg.model.n_layers)
        .map(|l| format!("mixtral/planted-specialisation-detected-l{l}"))
        .collect();
    assert_eq!(want, expected);
    assert_eq!(exercise(ClaimKind::Control), want);
}

/// The ratio claims sit at the stand-in of layer 15 with the band of the stated rule; the
/// parameter counts are checks; every reproduction and control states a band rule; with every
/// effect present at once, every reproduction and control is reproduced.
#[test]
fn kinds_bands_and_the_all_present_run() {
    let cfg = Mixtral.config(Scale::Small);
    let l15 = layer15_stand_in(cfg.model.n_layers);
    assert_eq!(l15, 1);
    assert_eq!(layer15_stand_in(4), 1);
    assert_eq!(layer15_stand_in(1), 0);
    assert_eq!(layer15_stand_in(32), 15);
    let [lo, hi] = ratio_band(LAYER15_FIRST);
    assert!(
        (lo - 1.444).abs() < 1e-9 && (hi - 2.908).abs() < 1e-9,
        "{lo} {hi}"
    );
    let [lo, hi] = ratio_band(LAYER15_FIRST_OR_SECOND);
    assert!(
        lo > 1.16 && lo < 1.17 && hi > 1.66 && hi < 1.67,
        "{lo} {hi}"
    );
    let specs = Mixtral.claim_specs(&cfg);
    for s in &specs {
        match s.kind {
            ClaimKind::Check => assert!(s.id.starts_with("mixtral/params-"), "{}", s.id),
            _ => assert!(!s.band_rule.trim().is_empty(), "{}", s.id),
        }
    }
    let band = |id: &str| {
        specs
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .band()
            .reproduced
    };
    let [a, b] = band(&format!("mixtral/same-first-expert-ratio-to-chance-l{l15}"));
    assert!((a.unwrap() - 1.444).abs() < 1e-9 && (b.unwrap() - 2.908).abs() < 1e-9);
    assert_eq!(
        ids_of_kind(&cfg, ClaimKind::Check),
        ["mixtral/params-active", "mixtral/params-total"]
            .map(String::from)
            .into()
    );
    let claims = judged(&cfg, &Levels::present(&cfg));
    for c in &claims {
        assert_eq!(c.verdict, Verdict::Reproduced, "{}: {}", c.id, c.details);
        assert!(c.band.is_some() || c.kind == ClaimKind::Check, "{}", c.id);
    }
}

/// The convergence rule: with every effect present but every arm's loss still falling faster
/// than the criterion allows, every reproduction is `inconclusive` and says why; the controls
/// and checks keep their verdicts.
#[test]
fn unconverged_arms_make_every_reproduction_inconclusive() {
    let cfg = Mixtral.config(Scale::Small);
    let mut levels = Levels::present(&cfg);
    // 2% of a loss of ~3.2 over the window: twice the criterion's 1%.
    levels.slope = -1000.0 * 0.02 * 3.2 / (cfg.convergence.window * cfg.train.steps as f64);
    for c in judged(&cfg, &levels) {
        match c.kind {
            ClaimKind::Reproduction => {
                assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.id);
                assert!(c.details.contains("not converged"), "{}", c.details);
            }
            _ => assert_eq!(c.verdict, Verdict::Reproduced, "{}: {}", c.id, c.details),
        }
    }
}
