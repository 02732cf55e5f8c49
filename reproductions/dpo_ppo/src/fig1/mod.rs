//! The synthetic experiment of the paper's Sec. 4.2 / Fig. 1 (arXiv 2404.10719), with small burn
//! MLPs, and the distribution-shift and DPO-Iter comparisons (Sec. 5 / Table 2) on the same setup.
//!
//! # Setup (one seed)
//!
//! `X` prompts × `Y` responses (8 × 8, the paper's). The true reward has its optimum on the
//! diagonal: `r*(x, x) = 1`, `r*(x, y ≠ x) ~ U[0, off_diagonal_max)`. The preference data cover
//! few pairs: per prompt `covered_per_prompt` responses (the diagonal one and random others) and
//! `pairs_per_prompt` pairs among them, the pairs with the diagonal first, labelled by `r*` (hard
//! labels). A response of prompt `x` that appears in none of `x`'s pairs is **uncovered**.
//!
//! Models (weights drawn on the host from a seeded `StdRng`, never from burn's RNG):
//! - policy: `one-hot(x) [X] → Linear(X, H) → ReLU → Linear(H, Y) → log-softmax`, `H =
//!   policy_hidden`; all prompts go through at once, so a forward pass gives the `[X, Y]` table;
//! - reward model, two architectures ([`RmArch`]), `H = rm_hidden`:
//!   - `prompt-heads` (the default; `papers.md`: "one-hot prompt → MLP policy and reward model"):
//!     `one-hot(x) [X] → Linear(X, H) → ReLU → Linear(H, Y)`, one reward per response, the
//!     policy's architecture without the softmax;
//!   - `pair`: `[one-hot(x); one-hot(y)] [X + Y] → Linear(X + Y, H) → ReLU → Linear(H, 1)`;
//!
//!   either way evaluated on all `X·Y` cells at once.
//!
//! Runs, in order (all full-batch AdamW unless stated):
//! 1. a *base* initialisation; `π_ref` = base after SFT (cross-entropy) on `sft_samples_per_prompt`
//!    samples per prompt from a spread distribution `q(y|x) ∝ exp(ref_spread · g_xy)`, `g ~ N(0,1)`,
//!    so uncovered cells keep noticeable mass (the paper's 0.11);
//! 2. the reward model, Bradley–Terry loss `−mean log σ(r(x, y_c) − r(x, y_r))` on the pairs;
//! 3. DPO from `π_ref` (policy initialised with `π_ref`'s weights): `−mean log σ(β h)`,
//!    `h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r)` (DPO paper eq. 7), β = 0.1;
//! 4. PPO from `π_ref` in bandit form (one-token responses): each iteration samples
//!    `ppo_batch` (prompt, response) pairs on the host from the read-back policy (prompt `i mod X`
//!    for sample `i`), reward `RM(x, y) − β (log π_old(y|x) − log π_ref(y|x))`, baseline the
//!    per-prompt batch mean of that reward, advantages whitened over the batch
//!    ([`crate::ppo::whiten`]), then `ppo_epochs` epochs of `ppo_minibatches` shuffled minibatches
//!    of the clipped loss `mean max(−A ρ, −A clip(ρ, 1 ± ε))`, `ρ = π/π_old`. Its target is the
//!    KL-regularised optimum of the learnt reward, `π* ∝ π_ref · exp(r_RM/β)` ([`kl_optimum`]);
//!    as a control, the same PPO rewarded by the true `r*` instead of the reward model (an oracle
//!    reward, right on uncovered cells too) separates PPO itself from its reward model's errors,
//!    and carries the two control claims (no uncovered cell rises; the true reward rises);
//! 5. distribution shift: `π_ref^other` = base after SFT on data concentrated on the uncovered
//!    responses (share `other_covered_share` spread over the covered ones); `π_ref^sft` = base
//!    (from the same base weights, not from `π_ref^other`) after SFT on the chosen responses of
//!    the preference data. DPO and PPO (same reward model) from each;
//! 6. DPO-Iter from each of the two: round 0 is the one-round DPO policy of step 5; every further
//!    round samples `iter_samples_per_prompt` responses per prompt from the current policy, pairs
//!    consecutive samples (pairs of equal responses are dropped), labels them with the reward
//!    model, and runs DPO (`dpo_steps`) with the current policy as the reference.
//!
//! Every number comes back in a [`Fig1Measurements`]; [`specs`] states the claims and
//! [`evaluate`] computes their verdicts from per-seed measurements through
//! `claimbench_claims::evaluate`.

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::AutodiffBackend;
use claimbench_claims::{Claim, ClaimError, ClaimSpec, Direction, Evidence, TestSpec};
use claimbench_kernels::burn_ops::{PreferenceBackend, dpo_loss_unchecked};
use claimbench_kernels::preference::DpoSettings;
use claimbench_paper::metrics::{MetricTable, whole};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;
use crate::mlp::{Mlp, MlpWeights, read};
use crate::ppo::whiten;
use crate::seq::Shape;
use crate::tabular::{Preference, TabularPolicy, kl_optimum};
use claimbench_paper::Scale;

mod config;
pub use config::*;
mod setup;
pub use setup::*;
mod train;
use train::*;
mod measure;
pub use measure::*;
mod run;
pub use run::*;
mod claims;
pub use claims::*;
#[cfg(test)]
mod tests;
