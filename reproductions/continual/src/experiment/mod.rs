//! The experiment: its settings ([`ExperimentConfig`]), its arms ([`Arm`]) and training one arm
//! on one seed ([`run_arm`]).
//!
//! Every arm except the union starts from the same D0-pretrained checkpoint per seed (stage 0:
//! linear warmup + cosine `η_max → η_min` on D0), then trains stage 1 for as many steps on D1
//! with its own schedule and replay share, the optimizer state reset in between (paper Sec. 4).
//! The union trains from scratch on D0 ∪ D1 for both stages' steps (equal total tokens); the
//! infinite-schedule arm trains its own stage 0 (warmup → cooldown → constant, no anneal) and
//! finishes stage 1 with the anneal. Losses on held-out D0 and D1 sets are logged every
//! `eval_every` steps.

use std::sync::Mutex;

use burn::backend::Flex;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use claimbench_kernels::burn_ops::TokenLogprobBackend;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunConfig, StageConfig};
use crate::data::Corpus;
use crate::model::{ModelConfig, TinyLm, lm_loss};
use crate::replay::{ReplayMixer, Source};
use crate::schedule::Schedule;
use claimbench_corpus::CorpusConfig;
use claimbench_paper::DataEnv;
use claimbench_paper::Scale;

mod arms;
pub use arms::*;
mod settings;
pub use settings::*;
mod datasets;
pub use datasets::*;
mod results;
pub use results::*;
mod train;
pub use train::*;
#[cfg(test)]
mod tests;
