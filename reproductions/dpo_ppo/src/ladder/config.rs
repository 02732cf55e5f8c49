//! The ladder's settings ([`LadderConfig`]): presets per scale, limits, validation.

use super::*;
use crate::limits::MAX_TUNING_SEEDS;

/// Everything that decides the ladder's numbers. Serialized as the `dpo_ppo.ladder` section of a
/// run config; [`LadderConfig::for_scale`] gives the defaults.
///
/// **Frozen budgets; seeds that tune never judge.** `iterations` (and the other PPO settings)
/// were chosen in pilots whose seeds were not recorded, so they may have included verdict
/// seeds; they are frozen here, and the manifest records them with the run's config (`small`'s
/// `iterations` has since been confirmed on the tuning seeds: see [`LadderConfig::for_scale`]).
/// Any re-tuning of them must run on [`LadderConfig::tuning_seeds`] only, which
/// [`LadderConfig::validate_with_seeds`] (called through the paper's `validate` with the run's
/// seeds) keeps disjoint from the verdict seeds.
///
/// Limits ([`crate::limits`]): `vocab`, `strides` ≤ 1024, `length` ≤ 256, `holdout_mod`
/// ≤ 65 536, `demos_per_prompt` ≤ 100 000, `hidden` ≤ 4096, `sft_steps`, `eval_every`
/// ≤ 1 000 000, `iterations` ≤ 100 000, `sft_batch`, `batch`, `large_batch` ≤ 65 536,
/// `minibatches`, `large_minibatches` ≤ 4096, `epochs` ≤ 64, `pass_k` ≤ 4096. Peak memory of an
/// arm: [`LadderConfig::estimated_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderConfig {
    /// Vocabulary size `V ≥ 2` (tokens `0..V`; BOS is an extra input, never an output).
    pub vocab: usize,
    /// Number of strides `S`, `1 ≤ S < V`: prompts use `d ∈ 1..=S`.
    pub strides: usize,
    /// Response length `L ≥ 1`.
    pub length: usize,
    /// Prompt `(a, d)` is in the evaluation set iff `(a + d) mod holdout_mod = 0` (≥ 2).
    pub holdout_mod: usize,
    /// Noisy demonstrations per training prompt for SFT.
    pub demos_per_prompt: usize,
    /// Probability that a demonstration token is replaced by a uniform random token, in `[0, 1]`.
    pub demo_noise: f64,
    /// Hidden width of the policy and value MLPs.
    pub hidden: usize,
    /// SFT Adam steps.
    pub sft_steps: usize,
    /// Demonstrations per SFT step.
    pub sft_batch: usize,
    /// SFT learning rate.
    pub sft_lr: f64,
    /// PPO's γ, λ, KL coefficient κ and clip ranges (the crate's [`PpoConfig`]).
    pub ppo: PpoConfig,
    /// Actor (policy) learning rate in PPO.
    pub actor_lr: f64,
    /// Critic (value) learning rate in PPO.
    pub critic_lr: f64,
    /// PPO iterations (rollout + update) per arm, equal for every arm.
    pub iterations: usize,
    /// Sequences per rollout batch in `base` and `adv-norm`.
    pub batch: usize,
    /// Minibatches per epoch in `base` and `adv-norm`; divides `batch`.
    pub minibatches: usize,
    /// Sequences per rollout batch in `large-batch` and `ref-ema` (the paper: 512).
    pub large_batch: usize,
    /// Minibatches per epoch in `large-batch` and `ref-ema` (the paper: 4); divides
    /// `large_batch`.
    pub large_minibatches: usize,
    /// Passes over each rollout batch.
    pub epochs: usize,
    /// Reference EMA rate `η ∈ [0, 1]`: `ref ← (1 − η) ref + η actor` after each actor step.
    pub ema_eta: f64,
    /// The `k` of pass@k (the paper: 5).
    pub pass_k: usize,
    /// Iterations between learning-curve points.
    pub eval_every: usize,
    /// The seeds on which `iterations` and the other settings may be re-tuned (default
    /// `1000, 1001, 1002`, far from the verdict seeds `0..n`); non-empty, distinct, at most
    /// [`crate::limits::MAX_TUNING_SEEDS`], and never a verdict seed
    /// ([`LadderConfig::validate_with_seeds`]). No unit of a run uses them: they are the seeds
    /// a re-tuning must use, as the ignored test `ladder::tests::budget_on_tuning_seeds` does
    /// for `small`'s `iterations`. Absent in a stored config (written before the field
    /// existed): the default.
    #[serde(default = "default_tuning_seeds")]
    pub tuning_seeds: Vec<u64>,
}

/// The default [`LadderConfig::tuning_seeds`]: `1000, 1001, 1002`.
pub fn default_tuning_seeds() -> Vec<u64> {
    (1000..1003).collect()
}

impl LadderConfig {
    /// Defaults for `smoke`, `small` or `full` .
    ///
    /// Why these values:
    /// - `V = 8, S = 3, L = 6`, `holdout_mod = 4`: 24 prompts, 18 trained on and 6 held out;
    ///   with `S = 3` every transition `(y_{t−1}, d)` of a held-out prompt occurs in training
    ///   (with `S = 4` the orbit `{0, 4}` of stride 4 never would).
    /// - `demo_noise = 0.35`: a demonstration passes with `q^L = 0.694^6 = 0.11`, so the
    ///   converged SFT policy has pass@1 ≈ 0.11 and pass@5 ≈ 0.34 (measured), near the paper's
    ///   SFT 38.6%, with room to improve. 300 Adam steps of 64 demonstrations at 3e-3 converge.
    /// - `hidden = 64`: more units than the 24 `(y_{t−1}, d)` conjunctions plus 8 starts.
    /// - PPO: `γ = λ = 1`, `κ = 0.1` (the paper), `ε = ε_v = 0.2` (conventional); 2 epochs;
    ///   Adam at 1e-3 for the actor and 3e-3 for the critic (a faster critic, as OpenRLHF's
    ///   critic rate is above its actor's).
    /// - Batches: `smoke`/`small` 32 per step, 128 in 4 minibatches for the large batch (a
    ///   quarter of the paper's 512 in 4); `full` the paper's 128 and 512 in 4.
    /// - `iterations = 20` (`smoke` 8, `full` 10 with its 4× larger batches). First chosen in
    ///   pilots whose seeds were not recorded: at 60 iterations the large-batch arms reached
    ///   pass@5 = 1.000 on every seed (and `full` at 20 reached 0.99), a ceiling at which the
    ///   last rung cannot be ranked. `small`'s budget is re-derived on the tuning seeds only by
    ///   the ignored test `ladder::tests::budget_on_tuning_seeds`, with this rule, stated before
    ///   it was run: **the largest budget in {10, 20, 30, 40, 50, 60} iterations at which the
    ///   best arm's mean pass@5 over [`LadderConfig::tuning_seeds`] is below a ceiling of
    ///   0.95**, so the last rung can still be ranked. pass@5 is the claims' metric (exact, on
    ///   the fixed training prompts, of the policy after that many iterations: a run's
    ///   `final_pass_k`, equal to a longer run's curve point at that iteration); the best arm
    ///   is the arm with the highest mean at that budget; held-out pass@5 is printed beside it
    ///   and not used. The test asserts that the rule gives the frozen value. (`smoke` and
    ///   `full` are not re-derived.) Measured 2026-12-06 on tuning seeds 1000–1002 (`cargo
    ///   test --release -p claimbench-dpo-ppo --lib ladder::tests::budget_on_tuning_seeds --
    ///   --ignored --nocapture`; 5 s of training), the best arm's mean pass@5 at 10, 20, 30,
    ///   40, 50, 60 iterations: 0.759 (ref-ema), 0.941 (ref-ema; seeds 0.923, 0.936, 0.962),
    ///   0.989 (large-batch), 0.998, 1.000, 1.000; SFT 0.371, and at 20 base 0.586, adv-norm
    ///   0.580, large-batch 0.940. The rule gives 20: **confirmed on the tuning seeds**, 0.009
    ///   below the ceiling (one seed's best arm is above it).
    /// - `η = 0.02`: a `small` run of the large-batch arms takes 20·2·4 = 160 actor steps; the
    ///   paper's 1e-3 would leave 0.999^160 = 85% of the reference at SFT, i.e. no EMA to speak
    ///   of, while 0.02 lags the actor by 1/η = 50 steps (0.98^160 = 4% SFT left; `full`'s 80
    ///   steps leave 20%), the regime of a long run at 1e-3.
    pub fn for_scale(scale: Scale) -> Self {
        // `full` uses the paper's batches (128 per step; 512 in 4 minibatches for the large
        // batch); `small` and `smoke` a quarter of that. Every scale takes the same number of
        // actor steps per iteration, so η means the same at every scale.
        let (iterations, eval_every, batch) = match scale {
            Scale::Smoke => (8, 2, 32),
            Scale::Full => (10, 1, 128),
            Scale::Small => (20, 2, 32),
        };
        LadderConfig {
            vocab: 8,
            strides: 3,
            length: 6,
            holdout_mod: 4,
            demos_per_prompt: 16,
            demo_noise: 0.35,
            hidden: 64,
            sft_steps: 300,
            sft_batch: 64,
            sft_lr: 3e-3,
            ppo: PpoConfig::default(),
            actor_lr: 1e-3,
            critic_lr: 3e-3,
            iterations,
            batch,
            minibatches: 1,
            large_batch: 4 * batch,
            large_minibatches: 4,
            epochs: 2,
            ema_eta: 0.02,
            pass_k: 5,
            eval_every,
            tuning_seeds: default_tuning_seeds(),
        }
    }

    /// Checks every value before any training. Errors name the bad value:
    /// [`Error::LadderConfig`] (sizes of 0, sizes and steps above their limits
    /// ([`LadderConfig::check_limits`]), strides ≥ vocab, minibatches not dividing the batch,
    /// rates not finite and above 0, `demo_noise` or `η` outside `[0, 1]`, an empty train or
    /// evaluation split, `tuning_seeds` empty, too long or with a repeat), and
    /// [`PpoConfig::validate`]'s errors for γ, λ, κ and the clip ranges.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &'static str, value: String, rule: String| {
            Err(Error::LadderConfig { name, value, rule })
        };
        for (name, v) in [
            ("vocab", self.vocab),
            ("strides", self.strides),
            ("length", self.length),
            ("holdout_mod", self.holdout_mod),
            ("demos_per_prompt", self.demos_per_prompt),
            ("hidden", self.hidden),
            ("sft_steps", self.sft_steps),
            ("sft_batch", self.sft_batch),
            ("iterations", self.iterations),
            ("batch", self.batch),
            ("minibatches", self.minibatches),
            ("large_batch", self.large_batch),
            ("large_minibatches", self.large_minibatches),
            ("epochs", self.epochs),
            ("pass_k", self.pass_k),
            ("eval_every", self.eval_every),
        ] {
            if v == 0 {
                return bad(name, "0".into(), "must be at least 1".into());
            }
        }
        self.check_limits()?;
        if self.vocab < 2 {
            return bad("vocab", self.vocab.to_string(), "must be at least 2".into());
        }
        if self.strides >= self.vocab {
            return bad(
                "strides",
                self.strides.to_string(),
                format!("must be below vocab {}", self.vocab),
            );
        }
        if self.holdout_mod < 2 {
            return bad(
                "holdout_mod",
                self.holdout_mod.to_string(),
                "must be at least 2".into(),
            );
        }
        for (name, batch, mb, batch_name) in [
            ("minibatches", self.batch, self.minibatches, "batch"),
            (
                "large_minibatches",
                self.large_batch,
                self.large_minibatches,
                "large_batch",
            ),
        ] {
            if !batch.is_multiple_of(mb) {
                return bad(
                    name,
                    mb.to_string(),
                    format!("does not divide {batch_name} {batch}"),
                );
            }
        }
        for (name, v) in [
            ("sft_lr", self.sft_lr),
            ("actor_lr", self.actor_lr),
            ("critic_lr", self.critic_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(
                    name,
                    v.to_string(),
                    "must be a finite number above 0".into(),
                );
            }
        }
        for (name, v) in [("demo_noise", self.demo_noise), ("ema_eta", self.ema_eta)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, v.to_string(), "is outside [0, 1]".into());
            }
        }
        if self.tuning_seeds.is_empty() {
            return bad(
                "tuning_seeds",
                "[]".into(),
                "must hold at least one seed (the seeds a re-tuning of the budget must use)".into(),
            );
        }
        if self.tuning_seeds.len() > MAX_TUNING_SEEDS {
            return bad(
                "tuning_seeds",
                format!("{} seeds", self.tuning_seeds.len()),
                format!("is above the limit of {MAX_TUNING_SEEDS} seeds"),
            );
        }
        for (i, s) in self.tuning_seeds.iter().enumerate() {
            if self.tuning_seeds[..i].contains(s) {
                return bad(
                    "tuning_seeds",
                    format!("{:?}", self.tuning_seeds),
                    format!("repeats seed {s}; tuning seeds must be distinct"),
                );
            }
        }
        self.ppo.validate()?;
        let task = Task::new(self);
        if task.train.is_empty() || task.eval.is_empty() {
            return bad(
                "holdout_mod",
                self.holdout_mod.to_string(),
                format!(
                    "leaves {} training and {} evaluation prompts; both need at least 1",
                    task.train.len(),
                    task.eval.len()
                ),
            );
        }
        Ok(())
    }

    /// [`LadderConfig::validate`], and that no tuning seed is one of `verdict_seeds` (the run's
    /// seeds, on which the claims are judged): a budget tuned on a seed would bias that seed's
    /// comparison. Error: [`Error::LadderConfig`] naming `tuning_seeds` and the shared seed.
    pub fn validate_with_seeds(&self, verdict_seeds: &[u64]) -> Result<(), Error> {
        self.validate()?;
        if let Some(s) = self.tuning_seeds.iter().find(|s| verdict_seeds.contains(s)) {
            return Err(Error::LadderConfig {
                name: "tuning_seeds",
                value: format!("{:?}", self.tuning_seeds),
                rule: format!(
                    "seed {s} is also a verdict seed (--seeds); tuning seeds must differ from \
                     the verdict seeds, so pick --seeds without it or other tuning_seeds"
                ),
            });
        }
        Ok(())
    }

    /// `(sequences per iteration, minibatches per epoch)` of `arm`.
    pub fn batching(&self, arm: Arm) -> (usize, usize) {
        if arm.large_batch() {
            (self.large_batch, self.large_minibatches)
        } else {
            (self.batch, self.minibatches)
        }
    }
}
