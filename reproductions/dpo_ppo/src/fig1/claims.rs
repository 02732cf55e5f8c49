//! The Fig. 1 claims as data and their evaluation.
//!
//! Every claim is a paired ordering over seeds (`min_seeds` 5, a proxy) with a `band_rule`
//! written next to it: the two uncovered-mass claims test against a floor that is a stated
//! fraction of the paper's one illustrated rise (+0.12); the others are sign-only, each rule
//! saying why only the sign carries over from the paper's numbers (a 7B model's safety rate or
//! a heatmap) to our expected true reward on an 8×8 table. Two controls use the oracle-reward
//! PPO arm that every seed already runs ([`Fig1Measurements::reward_ppo_oracle`]): a negative
//! one (no uncovered cell may rise when the reward is right everywhere) and a positive one (PPO
//! on the true reward must raise the true reward).

use claimbench_claims::ClaimKind;

use super::*;

/// The probability margin of the two uncovered-mass claims: DPO's largest increase must lie
/// above it, PPO's below it. 5/12 (≈ 42%) of the paper's illustrated rise of +0.12
/// (0.11 → 0.23).
pub const UNCOVERED_MARGIN: f64 = 0.05;
pub(super) const UNCOVERED_WHY: &str = "0.05 probability: the paper's cell goes 0.11 → 0.23 \
    (+0.12); 0.05 is 5/12 (≈ 42%) of that and well above what f32 rounding and PPO's sampling \
    noise move a cell whose reward the model does not favour";
/// The band rule of the two uncovered-mass claims (and the negative control's floor).
pub(super) const UNCOVERED_RULE: &str = "paper: one uncovered cell rises 0.11 → 0.23 (+0.12) \
    under DPO (Fig. 1); band: the largest rise over uncovered cells above (DPO) or below (PPO) \
    0.05, a stated 5/12 (≈ 42%) of the paper's +0.12. Only this floor transfers, not an upper \
    bound: the paper's +0.12 is one illustrated cell of one run, not the maximum over cells, \
    and the size above the floor depends on how much mass our π_ref leaves on uncovered cells \
    (set by ref_spread)";
/// The band rule of the sign-only claims on expected true reward.
pub(super) const REWARD_SIGN_RULE: &str = "sign only: our measure is the expected true reward on a \
    synthetic 8×8 table whose scale is ours (diagonal 1, off-diagonal U[0, off_diagonal_max)); \
    the paper's numbers are safety rates and reward scores of 7B models (or a heatmap), so only \
    the direction of the paired difference transfers";
/// The largest mean total variation to `π*` at which PPO counts as having learnt the optimum.
pub const OPTIMUM_TV_MARGIN: f64 = 0.1;

pub(super) fn spec(
    id: &str,
    statement: &str,
    source: &str,
    metric: &str,
    test: TestSpec,
) -> ClaimSpec {
    ClaimSpec::new(PAPER, id, statement, source, metric, test)
}

/// The claims of the experiment (ids `dpo-ppo/fig1-…` and `dpo-ppo/shift-…`), before running:
/// seven reproductions, then the two controls `dpo-ppo/fig1-control-…` (kind
/// [`ClaimKind::Control`]). Every one is a paired ordering test over seeds (`min_seeds` 5, a
/// proxy) with its `band_rule`.
pub fn specs(cfg: &Fig1Config) -> Vec<ClaimSpec> {
    let size = format!("{} × {}", cfg.n_prompts, cfg.n_responses);
    let mut a = spec(
        "fig1-dpo-raises-uncovered",
        "DPO raises the probability of some response the preference data never cover for its \
         prompt",
        "Sec. 4.2, Fig. 1",
        &format!(
            "max over uncovered off-diagonal cells of π_DPO − π_ref ({size}); a = that, b = the \
             margin {UNCOVERED_MARGIN}"
        ),
        TestSpec::ordering(Direction::Greater),
    );
    a.paper_value = json!({"pi_ref": 0.11, "pi_dpo": 0.23, "increase": 0.12});
    a.margin_why = UNCOVERED_WHY.into();
    a.band_rule = UNCOVERED_RULE.into();
    let mut b = spec(
        "fig1-ppo-keeps-uncovered-low",
        "PPO does not raise the probability of uncovered responses",
        "Sec. 4.2, Fig. 1",
        &format!(
            "max over uncovered off-diagonal cells of π_PPO − π_ref ({size}); a = that, b = the \
             margin {UNCOVERED_MARGIN}"
        ),
        TestSpec::ordering(Direction::Less),
    );
    b.paper_value = json!("low (Fig. 1)");
    b.margin_why = UNCOVERED_WHY.into();
    b.band_rule = format!(
        "{UNCOVERED_RULE}. The paper gives no number for PPO (its cells 'stay low'), so PPO's \
         band is the same floor from below"
    );
    let mut c = spec(
        "fig1-ppo-beats-dpo",
        "PPO reaches a higher true reward than DPO from the same reference and preference data",
        "Sec. 4.2, Fig. 1",
        "expected true reward E_x E_{y~π} r*(x, y); a = PPO, b = DPO (paired by seed)",
        TestSpec::ordering(Direction::Greater),
    );
    c.paper_value = json!("PPO learns the optimum (diagonal)");
    c.margin_why =
        "ordering: no margin, the interval of the paired difference must exclude 0".into();
    c.band_rule = format!(
        "{REWARD_SIGN_RULE}; Fig. 1 shows heatmaps, no reward number, so the band is PPO − DPO > 0"
    );
    let mut d = spec(
        "fig1-ppo-learns-kl-optimum",
        "PPO learns the optimum of the KL-regularised objective of its reward model",
        "Sec. 4.2, Fig. 1 (Sec. 4.1: π* ∝ π_ref·exp(r/β))",
        &format!(
            "mean total variation between π_PPO and π* ∝ π_ref·exp(r_RM/β); a = that, b = the \
             margin {OPTIMUM_TV_MARGIN}"
        ),
        TestSpec::ordering(Direction::Less),
    );
    d.paper_value = json!("PPO learns the optimum");
    d.margin_why = "0.1 total variation: a policy that has found the argmax of π* but not all of \
        its mass; larger would not be 'learns the optimum'"
        .into();
    d.band_rule = "the paper gives no number ('PPO learns the optimum', Fig. 1); band: mean TV to \
        π* below 0.1, a stated threshold of our own for 'learned' (the argmax of π* found, most \
        of its mass placed), not a fraction of any paper value"
        .into();
    let mut e = spec(
        "shift-sft-on-preference-data-helps-dpo",
        "DPO from a reference SFT-trained on the preference data beats DPO from a reference \
         trained on other data",
        "Sec. 5, Table 2 (SafeRLHF safety rate)",
        "expected true reward; a = DPO from π_ref^sft, b = DPO from π_ref^other",
        TestSpec::ordering(Direction::Greater),
    );
    e.paper_value = json!({"dpo_sft_other": 0.554, "dpo_sft_preference": 0.718});
    e.margin_why = c.margin_why.clone();
    e.band_rule = format!(
        "{REWARD_SIGN_RULE}; the paper's +16.4 points (55.4% → 71.8% SafeRLHF safety) are a \
         safety rate, not our expected reward, so the band is a positive paired difference"
    );
    let mut f = spec(
        "shift-ppo-less-sensitive-to-reference",
        "PPO's result depends less on the reference than DPO's",
        "Sec. 5, Table 2",
        "|R(π_ref^sft start) − R(π_ref^other start)| of expected true reward; a = PPO's, b = DPO's",
        TestSpec::ordering(Direction::Less),
    );
    f.paper_value = json!({"dpo_gap": 0.164, "ppo": 0.995});
    f.margin_why = c.margin_why.clone();
    f.band_rule = format!(
        "{REWARD_SIGN_RULE}; the paper gives DPO's gap (16.4 points) but only one PPO number \
         (99.5%), so PPO's gap has no paper value and the band is PPO's gap < DPO's"
    );
    let mut g = spec(
        "shift-dpo-iter-improves",
        "Iterative DPO (samples of the current policy labelled by the reward model) improves on \
         one round of DPO",
        "Sec. 5, Table 2 (DPO-Iter)",
        &format!(
            "expected true reward from π_ref^sft; a = after {} DPO-Iter rounds, b = one-round DPO",
            cfg.iter_rounds
        ),
        TestSpec::ordering(Direction::Greater),
    );
    g.paper_value =
        json!({"dpo": 0.718, "dpo_iter": 0.999, "hh_rlhf_dpo": 0.611, "hh_rlhf_dpo_iter": 0.678});
    g.margin_why = c.margin_why.clone();
    g.band_rule = format!(
        "{REWARD_SIGN_RULE}; the paper's own gains differ by task (SafeRLHF +28.1 points, \
         HH-RLHF reward +0.067), so no one size transfers and the band is a positive difference"
    );
    let mut h = spec(
        "fig1-control-oracle-ppo-keeps-uncovered-low",
        "Negative control: PPO rewarded by the true reward r* (right on every cell) raises no \
         uncovered response",
        "control (the oracle-reward PPO arm of every seed)",
        &format!(
            "max over uncovered off-diagonal cells of π_PPO-oracle − π_ref ({size}); a = that, b \
             = the margin {UNCOVERED_MARGIN}"
        ),
        TestSpec::ordering(Direction::Less),
    );
    h.kind = ClaimKind::Control;
    h.paper_value = json!("none (control)");
    h.margin_why = UNCOVERED_WHY.into();
    let drop = (cfg.off_diagonal_max - 1.0) / cfg.beta;
    h.band_rule = format!(
        "known absent: every uncovered cell is off the diagonal, so its r* is below \
         {} and at least {:.1} under the diagonal's 1; the optimum π* ∝ π_ref·exp(r*/β) at β = {} \
         scales it by at most e^{drop:.1}/π_ref(diagonal) (< 1 while π_ref(diagonal) > {:.3}), so \
         no uncovered cell should rise. Same 0.05 floor as the uncovered-mass claims: this shows \
         that their max-over-cells statistic does not pass the floor on sampling noise alone",
        cfg.off_diagonal_max,
        1.0 - cfg.off_diagonal_max,
        cfg.beta,
        drop.exp()
    );
    let mut i = spec(
        "fig1-control-oracle-ppo-raises-true-reward",
        "Positive control: PPO rewarded by the true reward r* raises the expected true reward \
         above π_ref's",
        "control (the oracle-reward PPO arm of every seed)",
        "expected true reward; a = PPO on r*, b = π_ref (paired by seed)",
        TestSpec::ordering(Direction::Greater),
    );
    i.kind = ClaimKind::Control;
    i.paper_value = json!("none (control)");
    i.margin_why = c.margin_why.clone();
    i.band_rule = "planted: the reward PPO maximises is the measure itself, and its target \
        π* ∝ π_ref·exp(r*/β) is an exponential tilt of π_ref by r*, which raises the mean of r* \
        (strictly, as r* is not constant), so the effect is known present; sign only, because how \
        far PPO climbs in ppo_iterations is ours to set. It shows that the test of the reward \
        orderings detects an effect that is there"
        .into();
    vec![a, b, c, d, e, f, g, h, i]
}

/// The verdicts of [`specs`] on per-seed measurements (one per seed, distinct seeds), through
/// `claimbench_claims::evaluate`.
pub fn evaluate(
    cfg: &Fig1Config,
    per_seed: &[Fig1Measurements],
    scale: &str,
) -> Result<Vec<Claim>, ClaimError> {
    let seeds: Vec<u64> = per_seed.iter().map(|m| m.seed).collect();
    let col = |f: fn(&Fig1Measurements) -> f64| per_seed.iter().map(f).collect::<Vec<f64>>();
    let constant = |v: f64| vec![v; per_seed.len()];
    let evidence = [
        Evidence::Paired {
            a: col(|m| m.dpo_uncovered_increase),
            b: constant(UNCOVERED_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.ppo_uncovered_increase),
            b: constant(UNCOVERED_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.reward_ppo),
            b: col(|m| m.reward_dpo),
        },
        Evidence::Paired {
            a: col(|m| m.ppo_tv_to_optimum),
            b: constant(OPTIMUM_TV_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.shift_reward_dpo_sft),
            b: col(|m| m.shift_reward_dpo_other),
        },
        Evidence::Paired {
            a: col(Fig1Measurements::ppo_reference_gap),
            b: col(Fig1Measurements::dpo_reference_gap),
        },
        Evidence::Paired {
            a: col(|m| m.iter_reward_sft.last().copied().unwrap_or(f64::NAN)),
            b: col(|m| m.shift_reward_dpo_sft),
        },
        Evidence::Paired {
            a: col(|m| m.ppo_oracle_uncovered_increase),
            b: constant(UNCOVERED_MARGIN),
        },
        Evidence::Paired {
            a: col(|m| m.reward_ppo_oracle),
            b: col(|m| m.reward_ref),
        },
    ];
    specs(cfg)
        .iter()
        .zip(&evidence)
        .map(|(s, e)| claimbench_claims::evaluate(s, e, &seeds, scale))
        .collect()
}
