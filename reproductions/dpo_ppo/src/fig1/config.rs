//! The 8×8 study's settings ([`Fig1Config`]): presets per scale, limits, validation.

use super::*;

pub(super) const PAPER: &str = "dpo-ppo";

/// The reward model's input and output layout (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RmArch {
    /// `one-hot(x) → H → Y` rewards, one per response.
    PromptHeads,
    /// `[one-hot(x); one-hot(y)] → H → 1` reward.
    Pair,
}

/// Everything that decides the experiment's numbers (the seed aside). Missing fields are an
/// error when deserialising; start from [`Fig1Config::for_scale`].
///
/// Limits ([`crate::limits`]): `n_prompts`, `n_responses`, `covered_per_prompt` ≤ 1024,
/// `pairs_per_prompt` ≤ 4096, `sft_samples_per_prompt` ≤ 100 000, `policy_hidden`, `rm_hidden`
/// ≤ 4096, `sft_steps`, `rm_steps`, `dpo_steps` ≤ 1 000 000, `ppo_iterations` ≤ 100 000,
/// `ppo_batch` ≤ 65 536, `ppo_minibatches` ≤ 4096, `ppo_epochs`, `iter_rounds` ≤ 64,
/// `iter_samples_per_prompt` ≤ 4096. Peak memory of a seed: [`Fig1Config::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig1Config {
    /// Prompts `X` (the paper: 8).
    pub n_prompts: usize,
    /// Responses per prompt `Y` (the paper: 8).
    pub n_responses: usize,
    /// Off-diagonal true rewards are drawn from `U[0, off_diagonal_max)`; the diagonal's is 1.
    /// Must be in `[0, 1)` so that the diagonal is the unique optimum.
    pub off_diagonal_max: f64,
    /// Responses per prompt that appear in the preference data, the diagonal one included;
    /// in `[2, Y − 1]` (at least one response stays uncovered).
    pub covered_per_prompt: usize,
    /// Pairs per prompt among the covered responses (those with the diagonal first); in
    /// `[1, C(covered_per_prompt, 2)]`.
    pub pairs_per_prompt: usize,
    /// Logit scale of `π_ref`'s SFT distribution `q(y|x) ∝ exp(ref_spread · g_xy)`; ≥ 0.
    pub ref_spread: f64,
    /// SFT samples per prompt for `π_ref` and `π_ref^other`; ≥ 1.
    pub sft_samples_per_prompt: usize,
    /// Share of `π_ref^other`'s SFT data on the covered responses (the rest is spread evenly
    /// over the uncovered ones); in `[0, 1]`.
    pub other_covered_share: f64,
    /// Hidden width of the policy MLP; ≥ 1.
    pub policy_hidden: usize,
    /// The reward model's architecture.
    pub rm_arch: RmArch,
    /// Hidden width of the reward-model MLP; ≥ 1.
    pub rm_hidden: usize,
    /// Full-batch SFT steps; ≥ 1.
    pub sft_steps: usize,
    /// SFT learning rate (AdamW, no weight decay); finite and > 0.
    pub sft_lr: f64,
    /// Full-batch reward-model steps; ≥ 1.
    pub rm_steps: usize,
    /// Reward-model learning rate; finite and > 0.
    pub rm_lr: f64,
    /// Reward-model AdamW weight decay; finite and ≥ 0.
    pub rm_weight_decay: f64,
    /// β of DPO and PPO's KL coefficient (the paper: 0.1 for both); finite and > 0.
    pub beta: f64,
    /// Full-batch DPO steps (per DPO run and per DPO-Iter round); ≥ 1.
    pub dpo_steps: usize,
    /// DPO learning rate (AdamW, no weight decay); finite and > 0.
    pub dpo_lr: f64,
    /// PPO iterations (sample a batch, then optimise on it); ≥ 1.
    pub ppo_iterations: usize,
    /// Samples per PPO iteration; ≥ `ppo_minibatches` (the paper: 512).
    pub ppo_batch: usize,
    /// Minibatches per epoch (the paper: 4); ≥ 1.
    pub ppo_minibatches: usize,
    /// Epochs over each batch; ≥ 1.
    pub ppo_epochs: usize,
    /// PPO learning rate (AdamW, no weight decay); finite and > 0.
    pub ppo_lr: f64,
    /// PPO's clip range ε (0.2); finite and > 0.
    pub ppo_clip: f64,
    /// DPO-Iter rounds after the one-round DPO; ≥ 1.
    pub iter_rounds: usize,
    /// Responses sampled per prompt per DPO-Iter round (paired consecutively); ≥ 2.
    pub iter_samples_per_prompt: usize,
}

impl Fig1Config {
    /// Defaults for `smoke` (seconds), `small` (5 seeds in well under a minute on 2 cores) and
    /// `full`. The three scales differ only in steps and batch.
    pub fn for_scale(scale: Scale) -> Self {
        let (sft, rm, dpo, ppo_iters, ppo_batch, rounds) = match scale {
            Scale::Smoke => (150, 150, 100, 25, 128, 2),
            Scale::Full => (600, 600, 400, 200, 512, 5),
            Scale::Small => (300, 300, 200, 80, 512, 3),
        };
        Fig1Config {
            n_prompts: 8,
            n_responses: 8,
            off_diagonal_max: 0.6,
            covered_per_prompt: 3,
            pairs_per_prompt: 3,
            ref_spread: 0.5,
            sft_samples_per_prompt: 64,
            other_covered_share: 0.1,
            policy_hidden: 32,
            rm_arch: RmArch::PromptHeads,
            rm_hidden: 32,
            sft_steps: sft,
            sft_lr: 1e-2,
            rm_steps: rm,
            rm_lr: 1e-2,
            rm_weight_decay: 1e-2,
            beta: 0.1,
            dpo_steps: dpo,
            dpo_lr: 1e-2,
            ppo_iterations: ppo_iters,
            ppo_batch,
            ppo_minibatches: 4,
            ppo_epochs: 2,
            ppo_lr: 1e-2,
            ppo_clip: 0.2,
            iter_rounds: rounds,
            iter_samples_per_prompt: 8,
        }
    }

    /// Checks every setting, sizes and steps against their limits
    /// ([`Fig1Config::check_limits`]) first; the error names the first bad one
    /// ([`Error::Fig1Setting`]).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &'static str, value: String, requirement: &str| {
            Err(Error::Fig1Setting {
                name,
                value,
                requirement: requirement.into(),
            })
        };
        let counts = [
            ("n_prompts", self.n_prompts, 1),
            ("n_responses", self.n_responses, 3),
            ("sft_samples_per_prompt", self.sft_samples_per_prompt, 1),
            ("policy_hidden", self.policy_hidden, 1),
            ("rm_hidden", self.rm_hidden, 1),
            ("sft_steps", self.sft_steps, 1),
            ("rm_steps", self.rm_steps, 1),
            ("dpo_steps", self.dpo_steps, 1),
            ("ppo_iterations", self.ppo_iterations, 1),
            ("ppo_minibatches", self.ppo_minibatches, 1),
            ("ppo_epochs", self.ppo_epochs, 1),
            ("iter_rounds", self.iter_rounds, 1),
            ("iter_samples_per_prompt", self.iter_samples_per_prompt, 2),
        ];
        for (name, v, min) in counts {
            if v < min {
                return bad(name, v.to_string(), &format!("must be at least {min}"));
            }
        }
        self.check_limits()?;
        if self.covered_per_prompt < 2 || self.covered_per_prompt >= self.n_responses {
            return bad(
                "covered_per_prompt",
                self.covered_per_prompt.to_string(),
                &format!(
                    "must be in [2, n_responses − 1 = {}] (a pair needs 2 responses and one \
                     response must stay uncovered)",
                    self.n_responses - 1
                ),
            );
        }
        let max_pairs = self.covered_per_prompt * (self.covered_per_prompt - 1) / 2;
        if self.pairs_per_prompt == 0 || self.pairs_per_prompt > max_pairs {
            return bad(
                "pairs_per_prompt",
                self.pairs_per_prompt.to_string(),
                &format!(
                    "must be in [1, {max_pairs}] (the pairs among {} covered responses); with 0 \
                     there are no preferences",
                    self.covered_per_prompt
                ),
            );
        }
        if self.ppo_batch < self.ppo_minibatches {
            return bad(
                "ppo_batch",
                self.ppo_batch.to_string(),
                &format!(
                    "must be at least ppo_minibatches = {} (every minibatch needs a sample)",
                    self.ppo_minibatches
                ),
            );
        }
        if !(0.0..1.0).contains(&self.off_diagonal_max) {
            return bad(
                "off_diagonal_max",
                self.off_diagonal_max.to_string(),
                "must be in [0, 1) so that the diagonal (reward 1) is the unique optimum",
            );
        }
        if !(0.0..=1.0).contains(&self.other_covered_share) {
            return bad(
                "other_covered_share",
                self.other_covered_share.to_string(),
                "must be in [0, 1]",
            );
        }
        let positive = [
            ("beta", self.beta),
            ("sft_lr", self.sft_lr),
            ("rm_lr", self.rm_lr),
            ("dpo_lr", self.dpo_lr),
            ("ppo_lr", self.ppo_lr),
            ("ppo_clip", self.ppo_clip),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, v.to_string(), "must be a finite number above 0");
            }
        }
        for (name, v) in [
            ("ref_spread", self.ref_spread),
            ("rm_weight_decay", self.rm_weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, v.to_string(), "must be a finite number ≥ 0");
            }
        }
        Ok(())
    }

    pub(super) fn cells(&self) -> usize {
        self.n_prompts * self.n_responses
    }
}
