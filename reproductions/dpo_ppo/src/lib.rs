//! The DPO-vs-PPO reproduction: f64 references of its formulas, and its experiments in burn.
//!
//! Paper: Xu et al., *Is DPO Superior to PPO for LLM Alignment? A Comprehensive Study*, arXiv
//! 2404.10719. Its headline: DPO's solution set strictly contains PPO's (Theorem 4.1,
//! `Π_PPO ⊊ Π_DPO`), so DPO can put mass on responses the preference data never covers, and a
//! well-tuned PPO (advantage normalisation, large batches, reference EMA) beats DPO. This crate
//! holds the parts of both methods that need no tensors, in f64 (the references the preference and
//! PPO kernels of `claimbench-kernels` are tested against), and the seeded experiments:
//!
//! - [`seq`]: the `[B, T]` [`Shape`], the mask rules every function shares, masked sequence
//!   log-probabilities ([`masked_sequence_logprobs`]) and their gradient back to the tokens.
//! - [`dpo`](mod@dpo): the DPO loss with conservative label smoothing, the implicit rewards, and the
//!   closed-form gradient ([`dpo()`], [`DpoConfig`]), on a numerically stable [`log_sigmoid`].
//! - [`ppo`]: KL-penalised per-token rewards, GAE as a reverse scan over valid tokens, advantage
//!   whitening, and the clipped policy and value losses with their gradients ([`PpoConfig`]).
//! - [`tabular`]: the paper's Table 1 and Theorem 4.1 as numbers, the KL-regularised optimum
//!   `π* ∝ π_ref·exp(r/β)`, and a seeded random tabular problem on which `π*` turns the DPO loss
//!   into the Bradley–Terry loss of `r` ([`optimum_losses`]).
//! - [`claims`]: the exact claims of Sec. 4.1 (Table 1, the optimum identity) as data, measured
//!   here and judged by `claimbench_claims::evaluate`; they are checks (kind `check`), not
//!   evidence that the paper's findings hold.
//! - [`fig1`]: the Sec. 4.2 / Fig. 1 synthetic 8 × 8 experiment with burn MLPs (SFT reference,
//!   Bradley–Terry reward model, DPO, bandit PPO) and the distribution-shift / DPO-Iter runs on the
//!   same setup, with their claims as data ([`fig1::specs`], [`fig1::evaluate`]): seven
//!   reproductions, each with the rule its band comes from, and two controls on the
//!   oracle-reward PPO arm (a negative and a positive one).
//! - [`ladder`]: the PPO ablation ladder of Table 3 (base, + advantage normalisation, + large
//!   batch, + reference EMA) on a toy program-writing task with a pass/fail checker: burn MLP
//!   policy and critic, SFT on noisy demonstrations, token-level PPO, exact pass@k, and its
//!   claims as data ([`ladder::run_arm`], [`ladder::specs`], [`ladder::evaluate`]); its PPO
//!   budget is frozen in [`ladder::LadderConfig`], and re-tuning may use only its
//!   `tuning_seeds`, which never judge.
//! - [`paper`]: the crate as a `claimbench_paper::Paper` (units, records, claims, the report's
//!   sections); its tests show that every reproduction claim and control can fail, through
//!   `Paper::claims` on synthetic unit records.
//! - [`mlp`]: the one-hidden-layer MLP both experiments train, with its weights on the host
//!   (seeded initialisation, copies, the reference EMA).
//! - [`limits`]: the stated bounds of every size and step of both experiments' configs and
//!   their memory estimates.
//! - [`error`]: the one error type, [`Error`], whose messages name the bad value.
//!
//! Nothing here panics on user input (apart from out-of-range indices passed to
//! [`TabularPolicy::prob`] / [`TabularPolicy::row`]): every bad value comes back as an [`Error`].
//!
//! ```
//! use claimbench_dpo_ppo::{DpoConfig, DpoInputs, Shape, Table1, dpo, masked_sequence_logprobs};
//!
//! // Sequence log-probabilities: prompt at t = 0, padding at t = 3.
//! let shape = Shape::new(2, 4)?;
//! let mask = [0., 1., 1., 0., 0., 1., 1., 0.];
//! let policy = masked_sequence_logprobs(&[-9., -1., -2., f64::NAN, -9., -3., -4., 0.], &mask, shape)?;
//! assert_eq!(policy, vec![-3.0, -7.0]);
//!
//! // One pair (chosen = row 0, rejected = row 1) against a reference at −4 and −6: h = 1 − (−1) = 2.
//! let out = dpo(
//!     &DpoConfig::new(0.5, 0.0)?,
//!     &DpoInputs {
//!         policy_chosen: &policy[..1],
//!         policy_rejected: &policy[1..],
//!         reference_chosen: &[-4.0],
//!         reference_rejected: &[-6.0],
//!     },
//! )?;
//! assert!((out.mean_loss - (1.0 + (-1.0f64).exp()).ln()).abs() < 1e-15);
//!
//! // Table 1: π = (0.1, 0, 0.9) reaches the DPO loss's infimum 0 though π_ref(y3) = 0.
//! assert_eq!(Table1::new().dpo_loss([0.1, 0.0, 0.9], 0.1)?, 0.0);
//! # Ok::<(), claimbench_dpo_ppo::Error>(())
//! ```
#![deny(missing_docs)]

pub mod claims;
pub mod dpo;
pub mod error;
pub mod fig1;
pub mod ladder;
pub mod limits;
pub mod mlp;
pub mod paper;
pub mod ppo;
pub mod seq;
pub mod tabular;

pub use dpo::{DpoConfig, DpoInputs, DpoOutput, dpo, log_sigmoid, sigmoid};
pub use error::Error;
pub use ppo::{
    Gae, PolicyLoss, PpoConfig, ValueLoss, WHITEN_EPS, gae, kl_penalised_rewards, policy_loss,
    value_loss, whiten,
};
pub use seq::{Shape, masked_sequence_logprobs, sequence_grad_to_tokens};
pub use tabular::{
    OptimumLosses, Preference, RandomTabular, TABLE1_DPO_INFIMUM, TABLE1_DPO_SOLUTION,
    TABLE1_PPO_LIMIT, Table1, TabularPolicy, bradley_terry_loss, dpo_loss, dpo_loss_lower_bound,
    kl_divergence, kl_optimum, optimum_losses, rl_objective, rl_objective_max,
    table1_closed_form_dpo_loss,
};
