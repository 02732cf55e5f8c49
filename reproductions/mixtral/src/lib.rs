//! Mixtral (Jiang et al., *Mixtral of Experts*, arXiv 2401.04088) at toy scale, on burn's CPU
//! `Flex` backend through the MoE layer of `claimbench-kernels` (`moe_layer`: router, top-k,
//! grouped SwiGLU experts), trained on real multi-domain text.
//!
//! Mixtral replaces every FFN of a decoder by `E = 8` SwiGLU experts of which a router picks
//! `k = 2` per token (Sec. 2.1): `y = Σ_{i ∈ top-2} Softmax(TopK(x·W_g))_i · SwiGLU_i(x)`. The
//! paper's claims reproduced here: a sparse model beats a dense one with the same active
//! parameters and recovers most of what a dense model of its total size gains (Sec. 3, Fig. 3,
//! Table 2); consecutive tokens are routed to the same experts about 2× (first choice) and 1.4×
//! (first or second) as often as chance at the paper's layer 15 (Sec. 5, Table 5; a magnitude
//! claim at our stand-in layer, [`claims::layer15_stand_in`]) while experts show no clear topic
//! specialisation (Fig. 7: the domain–expert mutual information against a permutation null, with
//! a positive control, a router given the domain, that the same test must detect); Mixtral 8x7B
//! has 46.7B total / 12.9B active parameters (Table 1; checks). The load balance with and
//! without an auxiliary loss is the toy plan's addition (the paper states no training losses).
//! Every claim's band rule is in [`claims`]; `claims/can_fail.rs` shows that each reproduction
//! and control can fail. Claims on arms that did not converge are inconclusive
//! ([`MixtralConfig::converged`]).
//!
//! # Experiment (one seed)
//!
//! Data ([`data`]): the corpus layer's domains (`claimbench-corpus`; at the presets English and
//! German fortunes, French and English manual pages, Rust's standard library), one byte-level
//! BPE, no domain tag; training batches mix the domains uniformly (a window at a uniform offset
//! of a uniformly drawn domain's training split), the validation set holds
//! `val_seqs_per_domain` evenly spaced windows of each domain's validation split.
//!
//! Model ([`model`]): a pre-RMSNorm decoder with rotary grouped-query attention, untied
//! embedding and head, no biases, and one of four FFNs ([`Arm`]):
//! - `dense-active`: SwiGLU of hidden `k·h_e` (the MoE's active FFN parameters);
//! - `moe`: `E` experts of hidden `h_e`, top-`k`, load-balancing loss ([`balance`]: HF's
//!   `E·Σ f_e P_e` or megablocks' `/k`) and router z-loss;
//! - `moe-noaux`: the same without the load-balancing loss;
//! - `dense-total`: SwiGLU of hidden `E·h_e + round(E/3)` (about the MoE's total FFN and router
//!   parameters: the upper reference).
//!
//! All arms of a seed share the data, the batches (the same tokens in the same order), the
//! shared weights' initialisation and the schedule ([`experiments`]); the two MoE arms start
//! identical. Measured: validation loss (overall, per domain, curves, the convergence slope),
//! the unigram reference, and per MoE layer the consecutive-token same-first-expert and
//! top-`k`-overlap rates, expert shares and per-domain histograms, the domain–expert mutual
//! information with its permutation test ([`routing::domain_mi`]), the planted-specialisation
//! control (the same tests for the layer's router logits plus `planted_bias_sd` standard
//! deviations on expert `δ mod E` for domain `δ`; [`routing::planted_ids`]) and each domain's
//! sample tokens with their first-choice experts (the page's Fig. 8, [`report`]). [`params`]
//! counts parameters exactly (Mixtral 8x7B and the toys).
//!
//! # API
//!
//! - [`MixtralConfig`] (`for_scale`, `validate`, `validate_with_seeds`, `converged`), its limits
//!   and memory estimate in [`limits`] (`check_limits`, `estimated_bytes`);
//! - [`run_seed`] / [`run_seed_with_progress`] → [`SeedMeasurements`] (the four arms of one
//!   seed); [`SeedMeasurements::metrics`] / [`SeedMeasurements::from_metrics`] (metric rows);
//! - [`specs`], [`evaluate`] (verdicts computed by `claimbench_claims`);
//! - [`param_counts`], [`mixtral_8x7b`], [`arm_params`] (exact integers);
//! - [`trace`] (a few steps' losses and gradients, for backend comparisons).
//!
//! The learning rate (5e-3, Adam) is fixed a priori for every arm, not tuned: there are no
//! tuning seeds. The `small` preset (2 layers, d = 64, `E = 8` experts of hidden 32, top-2,
//! 512-token BPE, windows of 32 tokens, batches of 24, 1000 steps) was sized by probes of seed 0
//! against the suite's 30-minute budget. The convergence rule was first an absolute bound (a
//! slope above −0.1 nats per 1000 steps); a first probe of a larger preset missed it by far, and
//! it became the relative rule (a drop of at most 1% of the loss over the last 10% of the steps)
//! before the probe that sized the preset was read. Both probes are in the closing note of the
//! issue that moved Mixtral to real text.
//!
//! # Measured
//!
//! `small` on 2 cores (`Autodiff<Flex>`, release build), run `summary-20261206-123346` at commit
//! 8fc957a: 115–129 s per seed (four arms of 1000 steps), **605 s** for the five seeds, 37% of
//! the run's units. `smoke` takes a few seconds per seed. Validation cross-entropy (nats per
//! token, mean over the five domains; the unigram reference is 5.356):
//!
//! | arm | mean val loss | per seed | drop over the last 10% of steps |
//! |---|---|---|---|
//! | dense-active | 3.689 | 3.691 3.680 3.679 3.677 3.717 | 0.61–1.17% |
//! | moe | 3.592 | 3.593 3.593 3.606 3.579 3.590 | 0.74–1.30% |
//! | moe-noaux | 3.596 | 3.603 3.587 3.606 3.596 3.587 | 0.71–1.39% |
//! | dense-total | 3.530 | 3.514 3.506 3.530 3.535 3.564 | 0.53–1.43% |
//!
//! 10 of the 20 runs still fell by more than the criterion's 1% over the last 100 steps, so every
//! claim that reads an arm is inconclusive. Their tests, before that rule: MoE below dense-active
//! by 0.097 [0.072, 0.121] nats and dense-total below the MoE by 0.062 [0.030, 0.095]; the MoE
//! closes 0.61 [0.43, 0.79] of the gap (band [0.5, 1.5]: partially); at layer 1 (the stand-in
//! for layer 15) the same first expert at 1.38× chance [1.23, 1.53] (band [1.444, 2.908]) and
//! first-or-second at 1.23× [1.16, 1.30] (band [1.164, 1.666]), at layer 0 within a few points of
//! chance; the load bounds hold and the no-aux arm is more imbalanced. Specialisation: the
//! domain–expert mutual information exceeds its permutation null by 0.007 bits at layer 0
//! (significant at most seeds, far below the 0.05-bit bound) and by 0.079 bits at layer 1 (p =
//! 0.005 at every seed; the bound is inside its interval): with languages and code as domains,
//! the second layer's router does read the domain a little. The planted router is detected at
//! both layers (0.65 and 0.72 bits above the bound).
#![deny(missing_docs)]

pub mod balance;
pub mod claims;
pub mod config;
pub mod data;
pub mod error;
pub mod experiments;
pub mod limits;
pub mod measure;
pub mod model;
pub mod paper;
pub mod params;
pub mod report;
pub mod routing;

pub use claims::{evaluate, specs};
pub use config::{AuxNorm, ConvergenceConfig, DataConfig, MixtralConfig, ModelConfig, TrainConfig};
pub use error::Error;
pub use experiments::{
    SeedData, Trace, TrainBackend, arm_params, ffn_shape, final_slope, init_model, run_seed,
    run_seed_with_progress, trace, train_arm,
};
pub use measure::{Arm, ArmMeasurement, MetricRow, SeedMeasurements};
pub use params::{
    FfnShape, MIXTRAL_8X7B_ACTIVE, MIXTRAL_8X7B_TOTAL, ModelShape, ParamCounts, mixtral_8x7b,
    param_counts,
};
pub use routing::{LayerRouting, MiTest, chance_overlap};
