//! The harness test suite, in one binary.
//!
//! - `cli`: the `claimbench` binary end to end: exit codes on bad input, determinism on flex,
//!   SIGKILL + `--resume`, the main job's report.
//! - `train_paths`: the training demonstration agrees on flex and on the wgpu kernel.
//! - `exit_codes`: how outcomes combine into one exit code.

mod cli;
mod exit_codes;
mod train_paths;
