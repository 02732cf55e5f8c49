//! The ladder's claims as data (Table 3) and their evaluation.
//!
//! Every claim is a paired ordering over seeds with a `band_rule` next to it. Only signs (and
//! one floor) transfer from Table 3: the paper's pass@5 is one run of a 7B model on APPS, ours an
//! exact pass@k on a toy task whose levels the config sets (`demo_noise` puts SFT near the
//! paper's 38.6%, `iterations` decides how far PPO climbs), so absolute levels and rung gains do
//! not carry over.

use super::*;

pub(super) const PAPER: &str = "dpo-ppo";
/// Table 3's pass@5 (APPS Intro, %): SFT, base, + adv-norm, + large batch, + reference EMA.
pub const TABLE3: [(&str, f64); 5] = [
    ("sft", 38.6),
    ("base", 18.0),
    ("adv-norm", 38.1),
    ("large-batch", 42.3),
    ("ref-ema", 44.4),
];
/// The margin by which the full recipe must beat the base (absolute pass@k, 0.05 = 5 points):
/// about a fifth (19%) of the paper's 26.4-point gain (18.0 → 44.4).
pub const FULL_MARGIN: f64 = 0.05;
/// Why only the sign of a ladder comparison carries over (the start of every rule).
pub(super) const LADDER_SIGN_RULE: &str = "sign only: Table 3 is APPS pass@5 of one run of a 7B \
    model; ours is exact pass@k of a toy MLP policy on a verifiable sequence task, whose SFT level \
    was set by demo_noise to sit near the paper's 38.6% and whose PPO levels are set by the \
    iteration budget, so neither absolute levels nor gains transfer";

/// A measured run: arm, seed and its measurements.
pub type Run = (Arm, u64, ArmMeasurements);

/// Which paired comparison a claim makes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Pair {
    /// `pass_k(a) − shift` vs `pass_k(b)`.
    Arms(Arm, Arm, f64),
    /// `final pass_k(arm)` vs the seed's SFT pass_k.
    VsSft(Arm),
}

pub(super) fn claim_table(cfg: &LadderConfig) -> Vec<(ClaimSpec, Pair)> {
    let k = cfg.pass_k;
    let metric = |what: &str| format!("{what} (exact pass@{k} on the training prompts)");
    let paper = |keys: &[&str]| {
        let mut m = serde_json::Map::new();
        for key in keys {
            if let Some((_, v)) = TABLE3.iter().find(|(n, _)| n == key) {
                m.insert(key.to_string(), json!(v));
            }
        }
        serde_json::Value::Object(m)
    };
    let spec = |id: &str, statement: String, metric: String, dir: Direction| {
        ClaimSpec::new(
            PAPER,
            id,
            &statement,
            "Table 3",
            &metric,
            TestSpec::ordering(dir),
        )
    };
    let mut out = Vec::new();
    let mut s = spec(
        "ppo-ladder-full-beats-base",
        format!(
            "Full PPO (advantage normalisation + large batch + reference EMA) beats base PPO by \
             more than {} points of pass@{k}",
            FULL_MARGIN * 100.0
        ),
        metric(&format!(
            "pass@{k}(ref-ema) − {FULL_MARGIN} − pass@{k}(base), paired by seed"
        )),
        Direction::Greater,
    );
    s.paper_value = paper(&["base", "ref-ema"]);
    s.margin_why = format!(
        "ordering of pass@{k}(ref-ema) − {FULL_MARGIN} against pass@{k}(base): the interval of \
         the paired gain must lie above {FULL_MARGIN} (5 points), a clear but modest share of the \
         paper's 26.4-point gain, so a full recipe that is merely not worse does not pass"
    );
    s.band_rule = format!(
        "paper: full recipe 44.4 vs base 18.0, +26.4 points; band: the paired gain above \
         {FULL_MARGIN}, a stated ≈ 19% (0.05/0.264) of the paper's gain. Only this floor \
         transfers, not the size: the paper's gain is mostly its base collapsing below SFT \
         (38.6 → 18.0), a failure of a 7B model that our toy base need not share, and our levels \
         are set by the config"
    );
    out.push((s, Pair::Arms(Arm::RefEma, Arm::Base, FULL_MARGIN)));
    for (prev, arm, trick, gain) in [
        (Arm::Base, Arm::AdvNorm, "advantage normalisation", 20.1),
        (
            Arm::AdvNorm,
            Arm::LargeBatch,
            "a 4× batch in 4 minibatches",
            4.2,
        ),
        (Arm::LargeBatch, Arm::RefEma, "a reference EMA", 2.1),
    ] {
        let mut s = spec(
            &format!("ppo-ladder-{}", arm.name()),
            format!(
                "Adding {trick} to PPO raises pass@{k} (rung {} over {})",
                arm.name(),
                prev.name()
            ),
            metric(&format!(
                "pass@{k}({}) − pass@{k}({}), paired by seed",
                arm.name(),
                prev.name()
            )),
            Direction::Greater,
        );
        s.paper_value = paper(&[prev.name(), arm.name()]);
        s.margin_why = format!(
            "report claim, ordering without margin: the interval of the paired difference must \
             lie above 0 (the paper's rung gains {gain} points on one run)"
        );
        s.band_rule = format!(
            "{LADDER_SIGN_RULE}; the paper's rung gain is {gain} points of one run with no \
             interval, so the band is a positive paired difference"
        );
        out.push((s, Pair::Arms(arm, prev, 0.0)));
    }
    let mut s = spec(
        "ppo-ladder-full-beats-sft",
        format!("Full PPO ends above the SFT policy it starts from in pass@{k}"),
        metric(&format!(
            "pass@{k}(ref-ema) − pass@{k}(SFT), paired by seed"
        )),
        Direction::Greater,
    );
    s.paper_value = paper(&["sft", "ref-ema"]);
    s.margin_why = "ordering without margin: the interval of the paired gain over SFT must lie \
        above 0 (paper: 44.4 vs 38.6)"
        .into();
    s.band_rule = format!(
        "{LADDER_SIGN_RULE}; paper +5.8 points (38.6 → 44.4), so the band is a positive paired \
         difference"
    );
    out.push((s, Pair::VsSft(Arm::RefEma)));
    let mut s = spec(
        "ppo-ladder-base-below-sft",
        format!("Base PPO (no advantage normalisation, small batch) ends below SFT in pass@{k}"),
        metric(&format!("pass@{k}(base) − pass@{k}(SFT), paired by seed")),
        Direction::Less,
    );
    s.paper_value = paper(&["sft", "base"]);
    s.margin_why = "ordering without margin: the interval of the paired difference must lie \
        below 0 (paper: 18.0 vs 38.6, base PPO degrades the SFT policy)"
        .into();
    s.band_rule = format!(
        "{LADDER_SIGN_RULE}; paper −20.6 points (38.6 → 18.0), so the band is a negative paired \
         difference"
    );
    out.push((s, Pair::VsSft(Arm::Base)));
    out
}

/// Every ladder claim, in report order (ids `dpo-ppo/ppo-ladder-*`, source "Table 3", the
/// paper's values, proxy, at least 5 seeds).
pub fn specs(cfg: &LadderConfig) -> Vec<ClaimSpec> {
    claim_table(cfg).into_iter().map(|(s, _)| s).collect()
}

/// The verdicts of [`specs`] from measured runs: each claim pairs the two arms' final pass@k
/// by seed (seeds present in both, ascending; duplicates of an (arm, seed) keep the first) and
/// hands the evidence to `claimbench_claims::evaluate`. Errors: `ClaimError` when a claim has
/// no seed with both arms, or the numbers are not finite.
pub fn evaluate(cfg: &LadderConfig, runs: &[Run], scale: &str) -> Result<Vec<Claim>, ClaimError> {
    let mut by: BTreeMap<(Arm, u64), &ArmMeasurements> = BTreeMap::new();
    for (arm, seed, m) in runs {
        by.entry((*arm, *seed)).or_insert(m);
    }
    let seeds_of = |arm: Arm| -> Vec<u64> {
        by.keys()
            .filter(|(a, _)| *a == arm)
            .map(|(_, s)| *s)
            .collect()
    };
    let mut out = Vec::new();
    for (spec, pair) in claim_table(cfg) {
        let (mut a, mut b, mut seeds) = (Vec::new(), Vec::new(), Vec::new());
        match pair {
            Pair::Arms(x, y, shift) => {
                for s in seeds_of(x) {
                    if let Some(my) = by.get(&(y, s)) {
                        a.push(by[&(x, s)].final_pass_k - shift);
                        b.push(my.final_pass_k);
                        seeds.push(s);
                    }
                }
            }
            Pair::VsSft(x) => {
                for s in seeds_of(x) {
                    let m = by[&(x, s)];
                    a.push(m.final_pass_k);
                    b.push(m.sft_pass_k);
                    seeds.push(s);
                }
            }
        }
        out.push(claimbench_claims::evaluate(
            &spec,
            &Evidence::Paired { a, b },
            &seeds,
            scale,
        )?);
    }
    Ok(out)
}
