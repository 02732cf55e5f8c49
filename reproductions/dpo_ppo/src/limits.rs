//! The stated bounds of [`Fig1Config`]'s and [`LadderConfig`]'s sizes, counts and steps, and
//! their memory estimates ([`Fig1Config::estimated_bytes`], [`LadderConfig::estimated_bytes`]).
//!
//! The limits sit far above the `full` presets (Fig. 1: an 8 × 8 table, hidden 32, 600 steps,
//! PPO batches of 512; the ladder: 8 tokens, 3 strides, length 6, batches of 512) yet keep a
//! validated run finite and its tables allocatable: a million full-batch steps of these MLPs
//! take hours, not centuries. Where sizes multiply (the pair reward model's `X·Y·(X + Y)`
//! inputs, the ladder's `V²·S·L` states) the estimate, not the limits, decides what fits.

use claimbench_claims::limits::{LimitError, at_most, product, total};

use crate::error::Error;
use crate::fig1::{Fig1Config, RmArch};
use crate::ladder::LadderConfig;

/// Most prompts `X` and responses `Y` of Fig. 1 (`n_prompts`, `n_responses`,
/// `covered_per_prompt`).
pub const MAX_TABLE_SIDE: usize = 1024;
/// Most preference pairs per prompt (`pairs_per_prompt`).
pub const MAX_PAIRS_PER_PROMPT: usize = 4096;
/// Most samples per prompt (`sft_samples_per_prompt`, the ladder's `demos_per_prompt`).
pub const MAX_SAMPLES_PER_PROMPT: usize = 100_000;
/// Widest hidden layer of an MLP (`policy_hidden`, `rm_hidden`, the ladder's `hidden`).
pub const MAX_HIDDEN: usize = 4096;
/// Most optimizer steps of one run (`sft_steps`, `rm_steps`, `dpo_steps`), and the longest
/// `eval_every`.
pub const MAX_STEPS: usize = 1_000_000;
/// Most PPO iterations (`ppo_iterations`, the ladder's `iterations`).
pub const MAX_ITERATIONS: usize = 100_000;
/// Most samples or sequences per batch (`ppo_batch`, `sft_batch`, `batch`, `large_batch`).
pub const MAX_BATCH: usize = 65_536;
/// Most minibatches per epoch (`ppo_minibatches`, `minibatches`, `large_minibatches`).
pub const MAX_MINIBATCHES: usize = 4096;
/// Most epochs over a batch and most DPO-Iter rounds (`ppo_epochs`, `epochs`, `iter_rounds`).
pub const MAX_EPOCHS: usize = 64;
/// Most responses sampled per prompt and round of DPO-Iter (`iter_samples_per_prompt`), and the
/// largest `k` of pass@k (`pass_k`).
pub const MAX_DRAWS: usize = 4096;
/// Largest ladder vocabulary (`vocab`; `strides` is below it).
pub const MAX_VOCAB: usize = 1024;
/// Longest ladder response (`length`).
pub const MAX_LENGTH: usize = 256;
/// Largest ladder `holdout_mod` (beyond `vocab + strides` no prompt is held out anyway).
pub const MAX_HOLDOUT_MOD: usize = 65_536;
/// Most ladder `tuning_seeds`.
pub const MAX_TUNING_SEEDS: usize = 64;

/// The first `(field, value, limit)` above its limit, as the error `setting` builds.
fn first_above(
    fields: &[(&'static str, usize, usize)],
    setting: impl Fn(&'static str, LimitError) -> Error,
) -> Result<(), Error> {
    for &(name, value, max) in fields {
        at_most(name, value, max).map_err(|e| setting(name, e))?;
    }
    Ok(())
}

impl Fig1Config {
    /// Checks every size, count and step against its limit; the error is
    /// [`Error::Fig1Setting`], e.g. `fig1 setting policy_hidden = 1000000000: is above the limit
    /// 4096`. Called by [`Fig1Config::validate`] before anything multiplies sizes.
    pub fn check_limits(&self) -> Result<(), Error> {
        first_above(
            &[
                ("n_prompts", self.n_prompts, MAX_TABLE_SIDE),
                ("n_responses", self.n_responses, MAX_TABLE_SIDE),
                (
                    "covered_per_prompt",
                    self.covered_per_prompt,
                    MAX_TABLE_SIDE,
                ),
                (
                    "pairs_per_prompt",
                    self.pairs_per_prompt,
                    MAX_PAIRS_PER_PROMPT,
                ),
                (
                    "sft_samples_per_prompt",
                    self.sft_samples_per_prompt,
                    MAX_SAMPLES_PER_PROMPT,
                ),
                ("policy_hidden", self.policy_hidden, MAX_HIDDEN),
                ("rm_hidden", self.rm_hidden, MAX_HIDDEN),
                ("sft_steps", self.sft_steps, MAX_STEPS),
                ("rm_steps", self.rm_steps, MAX_STEPS),
                ("dpo_steps", self.dpo_steps, MAX_STEPS),
                ("ppo_iterations", self.ppo_iterations, MAX_ITERATIONS),
                ("ppo_batch", self.ppo_batch, MAX_BATCH),
                ("ppo_minibatches", self.ppo_minibatches, MAX_MINIBATCHES),
                ("ppo_epochs", self.ppo_epochs, MAX_EPOCHS),
                ("iter_rounds", self.iter_rounds, MAX_EPOCHS),
                (
                    "iter_samples_per_prompt",
                    self.iter_samples_per_prompt,
                    MAX_DRAWS,
                ),
            ],
            |name, e| Error::Fig1Setting {
                name,
                value: e.value,
                requirement: e.rule,
            },
        )
    }

    /// An upper-bound estimate of the peak memory of one seed, in bytes (saturating). With `X`
    /// prompts, `Y` responses, `C = X·Y` cells, `P_π = X·H + H + H·Y + Y` policy parameters
    /// (`H = policy_hidden`), `P_r` the reward model's (`X·H_r + H_r + H_r·Y + Y` with prompt
    /// heads, `(X + Y)·H_r + 2H_r + 1` for pairs), `(R, I, O)` its rows, inputs and outputs
    /// (`(X, X, Y)`, or `(C, X + Y, 1)` for pairs), `N = ppo_batch`, `M = ppo_minibatches`:
    ///
    /// ```text
    /// 16·(P_π + P_r) + 64·P_π          Adam state of a policy and the reward model; 16 kept policies
    /// + 16·X·(X + H + Y)               a policy forward (one-hot prompts, hidden, logits) and grads
    /// + 12·R·I + 16·R·(H_r + O)        reward-model inputs (host f64 + f32) and activations
    /// + 12·C·(X·pairs_per_prompt + ⌈N/M⌉)   the pair and PPO-minibatch selectors (host + f32)
    /// + 128·C + 64·N                   16 f64 tables of the cells; rollout vectors
    /// ```
    pub fn estimated_bytes(&self) -> u64 {
        let (x, y, h, hr) = (
            self.n_prompts,
            self.n_responses,
            self.policy_hidden,
            self.rm_hidden,
        );
        let cells = product(&[x, y]);
        let mlp = |n_in: usize, hidden: usize, n_out: usize| {
            total(&[
                product(&[n_in, hidden]),
                hidden as u64,
                product(&[hidden, n_out]),
                n_out as u64,
            ])
        };
        let policy = mlp(x, h, y);
        let (rm, rows, inputs, outputs) = match self.rm_arch {
            RmArch::PromptHeads => (mlp(x, hr, y), x as u64, x, y),
            RmArch::Pair => {
                let i = x.saturating_add(y);
                (mlp(i, hr, 1), cells, i, 1)
            }
        };
        let minibatch = self.ppo_batch.div_ceil(self.ppo_minibatches.max(1));
        let selector_rows = product(&[x, self.pairs_per_prompt]).saturating_add(minibatch as u64);
        total(&[
            total(&[policy, rm]).saturating_mul(16),
            policy.saturating_mul(64),
            product(&[16, x, x.saturating_add(h).saturating_add(y)]),
            rows.saturating_mul(product(&[12, inputs])),
            rows.saturating_mul(product(&[16, hr.saturating_add(outputs)])),
            cells.saturating_mul(selector_rows).saturating_mul(12),
            cells.saturating_mul(128),
            product(&[64, self.ppo_batch]),
        ])
    }
}

impl LadderConfig {
    /// Checks every size, count and step against its limit; the error is
    /// [`Error::LadderConfig`], e.g. `ladder setting hidden = 1000000000: is above the limit
    /// 4096`. Called by [`LadderConfig::validate`] before the task's prompts are built.
    pub fn check_limits(&self) -> Result<(), Error> {
        first_above(
            &[
                ("vocab", self.vocab, MAX_VOCAB),
                ("strides", self.strides, MAX_VOCAB),
                ("length", self.length, MAX_LENGTH),
                ("holdout_mod", self.holdout_mod, MAX_HOLDOUT_MOD),
                (
                    "demos_per_prompt",
                    self.demos_per_prompt,
                    MAX_SAMPLES_PER_PROMPT,
                ),
                ("hidden", self.hidden, MAX_HIDDEN),
                ("sft_steps", self.sft_steps, MAX_STEPS),
                ("sft_batch", self.sft_batch, MAX_BATCH),
                ("iterations", self.iterations, MAX_ITERATIONS),
                ("batch", self.batch, MAX_BATCH),
                ("minibatches", self.minibatches, MAX_MINIBATCHES),
                ("large_batch", self.large_batch, MAX_BATCH),
                ("large_minibatches", self.large_minibatches, MAX_MINIBATCHES),
                ("epochs", self.epochs, MAX_EPOCHS),
                ("pass_k", self.pass_k, MAX_DRAWS),
                ("eval_every", self.eval_every, MAX_STEPS),
            ],
            |name, e| Error::LadderConfig {
                name,
                value: e.value,
                rule: e.rule,
            },
        )
    }

    /// An upper-bound estimate of the peak memory of one arm of one seed, in bytes
    /// (saturating). With `V, S, L, H` the vocabulary, strides, length and hidden width,
    /// `P = V·S` prompts, `N_s = P·L·(V + 1)` states, `F = 2V + S + L + 1` features, the
    /// actor's `P_a = F·H + H + H·V + V` and the critic's `P_c = F·H + 2H + 1` parameters,
    /// `rows = L·max(sft_batch, batch/minibatches, large_batch/large_minibatches)` and
    /// `b = max(batch, large_batch)`:
    ///
    /// ```text
    /// 16·(P_a + P_c) + 12·P_a        Adam state of actor and critic; reference, EMA, SFT cache
    /// + N_s·(8F + 4H + 28V + 8)      one forward over every state (f32 inputs on host and
    ///                                device, hidden, logits), three f64 state tables, values
    /// + 12·rows·(F + V + 2H)         a training minibatch (inputs, one-hots, both hiddens, grads)
    /// + 80·b·L                       a rollout's per-token vectors
    /// + P·demos_per_prompt·(8L + 32) the SFT demonstrations
    /// ```
    pub fn estimated_bytes(&self) -> u64 {
        let (v, s, l, h) = (self.vocab, self.strides, self.length, self.hidden);
        let prompts = product(&[v, s]);
        let states = product(&[v, s, l, v.saturating_add(1)]);
        let f = v
            .saturating_mul(2)
            .saturating_add(s)
            .saturating_add(l)
            .saturating_add(1);
        let actor = total(&[product(&[f, h]), h as u64, product(&[h, v]), v as u64]);
        let critic = total(&[product(&[f, h]), product(&[2, h]), 1]);
        let rows = [
            self.sft_batch,
            self.batch / self.minibatches.max(1),
            self.large_batch / self.large_minibatches.max(1),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .saturating_mul(l);
        let per_state = total(&[product(&[8, f]), product(&[4, h]), product(&[28, v]), 8]);
        let per_row = total(&[f as u64, v as u64, product(&[2, h])]);
        total(&[
            total(&[actor, critic]).saturating_mul(16),
            actor.saturating_mul(12),
            states.saturating_mul(per_state),
            product(&[12, rows]).saturating_mul(per_row),
            product(&[80, self.batch.max(self.large_batch), l]),
            prompts.saturating_mul(product(&[
                self.demos_per_prompt,
                l.saturating_mul(8).saturating_add(32),
            ])),
        ])
    }
}

#[cfg(test)]
mod tests {
    use claimbench_claims::limits::{GIB, fmt_bytes};
    use claimbench_paper::Scale;

    use super::*;

    #[test]
    fn every_scale_validates_and_fits_in_8_gib() {
        for scale in Scale::ALL {
            let f = Fig1Config::for_scale(scale);
            f.validate().unwrap();
            let l = LadderConfig::for_scale(scale);
            l.validate().unwrap();
            for (what, bytes) in [
                ("fig1", f.estimated_bytes()),
                ("ladder", l.estimated_bytes()),
            ] {
                eprintln!(
                    "dpo-ppo {what} {scale}: {bytes} bytes ({})",
                    fmt_bytes(bytes)
                );
                assert!(bytes < 8 * GIB, "{what} {scale}: {}", fmt_bytes(bytes));
            }
        }
        let pair = Fig1Config {
            rm_arch: RmArch::Pair,
            ..Fig1Config::for_scale(Scale::Full)
        };
        pair.validate().unwrap();
        assert!(pair.estimated_bytes() < 8 * GIB);
    }

    #[test]
    fn fig1_huge_sizes_and_steps_are_refused_naming_field_and_limit() {
        let refused = |f: fn(&mut Fig1Config)| {
            let mut c = Fig1Config::for_scale(Scale::Small);
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert_eq!(
            refused(|c| c.policy_hidden = 1_000_000_000),
            "fig1 setting policy_hidden = 1000000000: is above the limit 4096"
        );
        assert_eq!(
            refused(|c| c.dpo_steps = usize::MAX),
            format!(
                "fig1 setting dpo_steps = {}: is above the limit 1000000",
                usize::MAX
            )
        );
        type Edit = fn(&mut Fig1Config);
        let cases: [(&str, Edit); 15] = [
            ("n_prompts", |c| c.n_prompts = usize::MAX),
            ("n_responses", |c| c.n_responses = usize::MAX),
            ("pairs_per_prompt", |c| c.pairs_per_prompt = usize::MAX),
            ("sft_samples_per_prompt", |c| {
                c.sft_samples_per_prompt = usize::MAX
            }),
            ("rm_hidden", |c| c.rm_hidden = usize::MAX),
            ("sft_steps", |c| c.sft_steps = usize::MAX),
            ("rm_steps", |c| c.rm_steps = usize::MAX),
            ("ppo_iterations", |c| c.ppo_iterations = usize::MAX),
            ("ppo_batch", |c| c.ppo_batch = usize::MAX),
            ("ppo_minibatches", |c| c.ppo_minibatches = usize::MAX),
            ("ppo_epochs", |c| c.ppo_epochs = usize::MAX),
            ("iter_rounds", |c| c.iter_rounds = usize::MAX),
            ("iter_samples_per_prompt", |c| {
                c.iter_samples_per_prompt = usize::MAX
            }),
            ("covered_per_prompt", |c| c.covered_per_prompt = usize::MAX),
            ("policy_hidden", |c| c.policy_hidden = usize::MAX),
        ];
        for (field, patch) in cases {
            let e = refused(patch);
            assert!(
                e.starts_with(&format!("fig1 setting {field} = "))
                    && e.contains("is above the limit"),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn ladder_huge_sizes_and_steps_are_refused_naming_field_and_limit() {
        let refused = |f: fn(&mut LadderConfig)| {
            let mut c = LadderConfig::for_scale(Scale::Small);
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert_eq!(
            refused(|c| c.hidden = 1_000_000_000),
            "ladder setting hidden = 1000000000: is above the limit 4096"
        );
        assert_eq!(
            refused(|c| c.iterations = usize::MAX),
            format!(
                "ladder setting iterations = {}: is above the limit 100000",
                usize::MAX
            )
        );
        type Edit = fn(&mut LadderConfig);
        let cases: [(&str, Edit); 13] = [
            ("vocab", |c| c.vocab = usize::MAX),
            ("length", |c| c.length = usize::MAX),
            ("holdout_mod", |c| c.holdout_mod = usize::MAX),
            ("demos_per_prompt", |c| c.demos_per_prompt = usize::MAX),
            ("sft_steps", |c| c.sft_steps = usize::MAX),
            ("sft_batch", |c| c.sft_batch = usize::MAX),
            ("batch", |c| c.batch = usize::MAX),
            ("minibatches", |c| c.minibatches = usize::MAX),
            ("large_batch", |c| c.large_batch = usize::MAX),
            ("large_minibatches", |c| c.large_minibatches = usize::MAX),
            ("epochs", |c| c.epochs = usize::MAX),
            ("pass_k", |c| c.pass_k = usize::MAX),
            ("eval_every", |c| c.eval_every = usize::MAX),
        ];
        for (field, patch) in cases {
            let e = refused(patch);
            assert!(
                e.starts_with(&format!("ladder setting {field} = "))
                    && e.contains("is above the limit"),
                "{field}: {e}"
            );
        }
        // Zero checks still come first.
        assert_eq!(
            refused(|c| c.epochs = 0),
            "ladder setting epochs = 0: must be at least 1"
        );
    }

    #[test]
    fn estimates_grow_with_the_widths_and_saturate() {
        let f = Fig1Config::for_scale(Scale::Small);
        let wider = Fig1Config {
            policy_hidden: 4 * f.policy_hidden,
            ..f.clone()
        };
        assert!(wider.estimated_bytes() > f.estimated_bytes());
        let huge = Fig1Config {
            n_prompts: usize::MAX,
            n_responses: usize::MAX,
            ..f.clone()
        };
        assert_eq!(huge.estimated_bytes(), u64::MAX);

        let l = LadderConfig::for_scale(Scale::Small);
        let wider = LadderConfig {
            hidden: 4 * l.hidden,
            ..l.clone()
        };
        assert!(wider.estimated_bytes() > l.estimated_bytes());
        let bigger = LadderConfig {
            vocab: 4 * l.vocab,
            ..l.clone()
        };
        assert!(bigger.estimated_bytes() > l.estimated_bytes());
        let huge = LadderConfig {
            vocab: usize::MAX,
            ..l.clone()
        };
        assert_eq!(huge.estimated_bytes(), u64::MAX);
    }
}
