//! The Fig. 1 claims as data and their evaluation.

use super::*;

/// The probability margin of the two uncovered-mass claims: DPO's largest increase must lie
/// above it, PPO's below it.
pub const UNCOVERED_MARGIN: f64 = 0.05;
pub(super) const UNCOVERED_WHY: &str = "0.05 probability: the paper's cell goes 0.11 → 0.23 (+0.12); 0.05 is \
    well under that and well above what f32 rounding and PPO's sampling noise move a cell whose \
    reward the model does not favour";
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

/// The claims of the experiment (ids `dpo-ppo/fig1-…` and `dpo-ppo/shift-…`), before running.
/// Every one is a paired or one-sample ordering test over seeds (`min_seeds` 5, a proxy).
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
    let mut f = spec(
        "shift-ppo-less-sensitive-to-reference",
        "PPO's result depends less on the reference than DPO's",
        "Sec. 5, Table 2",
        "|R(π_ref^sft start) − R(π_ref^other start)| of expected true reward; a = PPO's, b = DPO's",
        TestSpec::ordering(Direction::Less),
    );
    f.paper_value = json!({"dpo_gap": 0.164, "ppo": 0.995});
    f.margin_why = c.margin_why.clone();
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
    vec![a, b, c, d, e, f, g]
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
    ];
    specs(cfg)
        .iter()
        .zip(&evidence)
        .map(|(s, e)| claimbench_claims::evaluate(s, e, &seeds, scale))
        .collect()
}
