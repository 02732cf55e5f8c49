//! One seed end to end ([`run`]), with DPO-Iter.

use super::*;

/// DPO-Iter rounds from `start` (round 0's policy, whose reward is `iter[0]`): sample, label with
/// the reward model, DPO against the current policy. Returns the expected true reward per round,
/// round 0 included.
pub(super) fn dpo_iter<B: AutodiffBackend + PreferenceBackend>(
    ctx: &Ctx<'_, B>,
    start: &MlpWeights,
    rm: &[f64],
    setup: &Setup,
    rng: &mut StdRng,
    stage: &str,
) -> Result<Vec<f64>, Error> {
    let cfg = ctx.cfg;
    let ny = cfg.n_responses;
    let mut cur = start.clone();
    let mut cur_logp = ctx.logp_host(&cur)?;
    let mut rewards = vec![setup.expected_true_reward(&probs_of(&cur_logp, ny))];
    for round in 1..=cfg.iter_rounds {
        let probs = probs_of(&cur_logp, ny);
        let mut pairs = Vec::new();
        for x in 0..cfg.n_prompts {
            let row = &probs[x * ny..(x + 1) * ny];
            let s: Vec<usize> = (0..cfg.iter_samples_per_prompt)
                .map(|_| categorical(rng, row))
                .collect();
            for two in s.chunks_exact(2) {
                let (a, b) = (two[0], two[1]);
                let (ra, rb) = (rm[x * ny + a], rm[x * ny + b]);
                if a != b && ra != rb {
                    let (c, r) = if ra > rb { (a, b) } else { (b, a) };
                    pairs.push(Preference::hard(x, c, r));
                }
            }
        }
        if !pairs.is_empty() {
            let (w, _) = ctx.dpo(&cur, &cur_logp, &pairs, &format!("{stage} round {round}"))?;
            cur = w;
            cur_logp = ctx.logp_host(&cur)?;
        }
        rewards.push(setup.expected_true_reward(&probs_of(&cur_logp, ny)));
    }
    Ok(rewards)
}

/// Runs the whole experiment for one seed (see the module docs). Same seed and config ⇒
/// bit-identical measurements on the same backend. Errors: [`Error::Fig1Setting`] for a bad
/// config, [`Error::Diverged`], [`Error::ReadBack`].
pub fn run<B: AutodiffBackend + PreferenceBackend>(
    cfg: &Fig1Config,
    seed: u64,
    device: &B::Device,
) -> Result<Fig1Measurements, Error> {
    let setup = Setup::generate(cfg, seed)?;
    let (nx, ny) = (cfg.n_prompts, cfg.n_responses);
    let ctx = Ctx::<B>::new(cfg, device);
    let mut init_rng = stream(seed, 3);
    let base = MlpWeights::init(nx, cfg.policy_hidden, ny, &mut init_rng);
    let rm_init = rm_weights(cfg, &mut init_rng);

    // Fig. 1: π_ref, the reward model, DPO and PPO from π_ref.
    let ref_w = ctx.sft(&base, &setup.ref_counts, "sft (ref)")?;
    let ref_logp = ctx.logp_host(&ref_w)?;
    let pi_ref = probs_of(&ref_logp, ny);
    let (rm, curve_rm_loss) = train_reward_model::<B>(cfg, &setup, &rm_init, device)?;
    let correct = setup
        .pairs
        .iter()
        .filter(|p| rm[p.prompt * ny + p.chosen] > rm[p.prompt * ny + p.rejected])
        .count();
    let rm_accuracy = correct as f64 / setup.pairs.len() as f64;
    let argmax_uncovered = (0..nx)
        .filter(|&x| {
            let row = &rm[x * ny..(x + 1) * ny];
            let best = (0..ny).fold(0, |b, y| if row[y] > row[b] { y } else { b });
            !setup.covered[x * ny + best]
        })
        .count();
    let (dpo_w, curve_dpo_loss) = ctx.dpo(&ref_w, &ref_logp, &setup.pairs, "dpo (ref)")?;
    let pi_dpo = probs_of(&ctx.logp_host(&dpo_w)?, ny);
    let mut ppo_rng = stream(seed, 4);
    let (ppo_w, curve_ppo_reward) =
        ctx.ppo(&ref_w, &ref_logp, &rm, &setup, &mut ppo_rng, "ppo (ref)")?;
    let pi_ppo = probs_of(&ctx.logp_host(&ppo_w)?, ny);
    let mut oracle_rng = stream(seed, 5);
    let (oracle_w, _) = ctx.ppo(
        &ref_w,
        &ref_logp,
        &setup.true_reward,
        &setup,
        &mut oracle_rng,
        "ppo (oracle reward)",
    )?;
    let pi_oracle = probs_of(&ctx.logp_host(&oracle_w)?, ny);
    let (oracle_cell, oracle_inc) = setup.largest_uncovered_increase(&pi_oracle, &pi_ref);
    let star = kl_optimum(&TabularPolicy::new(nx, ny, pi_ref.clone())?, &rm, cfg.beta)?;
    let pi_star = star.probs().to_vec();
    let (dpo_cell, dpo_inc) = setup.largest_uncovered_increase(&pi_dpo, &pi_ref);
    let (ppo_cell, ppo_inc) = setup.largest_uncovered_increase(&pi_ppo, &pi_ref);

    // Distribution shift: two references from the same base, DPO / PPO / DPO-Iter from each.
    let mut shift = Vec::new();
    for (name, counts, tag) in [
        ("other", &setup.other_counts, 10u64),
        ("sft", &setup.chosen_counts, 20u64),
    ] {
        let w = ctx.sft(&base, counts, &format!("sft ({name})"))?;
        let lp = ctx.logp_host(&w)?;
        let r_ref = setup.expected_true_reward(&probs_of(&lp, ny));
        let (dw, _) = ctx.dpo(&w, &lp, &setup.pairs, &format!("dpo ({name})"))?;
        let r_dpo = setup.expected_true_reward(&probs_of(&ctx.logp_host(&dw)?, ny));
        let mut rng = stream(seed, tag);
        let (_, pcurve) = ctx.ppo(&w, &lp, &rm, &setup, &mut rng, &format!("ppo ({name})"))?;
        let r_ppo = pcurve.last().copied().unwrap_or(f64::NAN);
        let mut irng = stream(seed, tag + 1);
        let iter = dpo_iter(
            &ctx,
            &dw,
            &rm,
            &setup,
            &mut irng,
            &format!("dpo-iter ({name})"),
        )?;
        shift.push((r_ref, r_dpo, r_ppo, iter));
    }
    let [(ro, dpo_o, ppo_o, iter_o), (rs, dpo_s, ppo_s, iter_s)]: [_; 2] = shift
        .try_into()
        .map_err(|_| Error::Metrics("internal: two references expected".into()))?;

    Ok(Fig1Measurements {
        seed,
        n_prompts: nx,
        n_responses: ny,
        reward_ref: setup.expected_true_reward(&pi_ref),
        reward_dpo: setup.expected_true_reward(&pi_dpo),
        reward_ppo: setup.expected_true_reward(&pi_ppo),
        reward_star: setup.expected_true_reward(&pi_star),
        dpo_tv_to_optimum: mean_tv(&pi_dpo, &pi_star, ny),
        ppo_tv_to_optimum: mean_tv(&pi_ppo, &pi_star, ny),
        true_reward: setup.true_reward.clone(),
        coverage: setup
            .covered
            .iter()
            .map(|&c| if c { 1.0 } else { 0.0 })
            .collect(),
        rm_reward: rm,
        rm_accuracy,
        rm_argmax_uncovered: argmax_uncovered as f64 / nx as f64,
        pi_ref,
        pi_dpo,
        pi_ppo,
        pi_star,
        dpo_uncovered_increase: dpo_inc,
        dpo_uncovered_cell: dpo_cell,
        ppo_uncovered_increase: ppo_inc,
        ppo_uncovered_cell: ppo_cell,
        reward_ppo_oracle: setup.expected_true_reward(&pi_oracle),
        ppo_oracle_uncovered_increase: oracle_inc,
        ppo_oracle_uncovered_cell: oracle_cell,
        curve_rm_loss,
        curve_dpo_loss,
        curve_ppo_reward,
        shift_reward_ref_other: ro,
        shift_reward_ref_sft: rs,
        shift_reward_dpo_other: dpo_o,
        shift_reward_dpo_sft: dpo_s,
        shift_reward_ppo_other: ppo_o,
        shift_reward_ppo_sft: ppo_s,
        iter_reward_other: iter_o,
        iter_reward_sft: iter_s,
    })
}
