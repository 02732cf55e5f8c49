//! The harness test suite, in one binary.
//!
//! - `artifacts`: units that start from another unit's stored artifact, `--only` and resume
//!   over them, corrupt and hostile artifacts, declared fallbacks.
//! - `build_info`: burn's autotune compiled in and used (the manifest's `build`).
//! - `cli`: the `claimbench` binary end to end: exit codes on bad input, determinism on flex,
//!   SIGKILL + `--resume`, the main job's report.
//! - `data_cards`: corpus-backed papers defined in the test: a paper that cannot load its text
//!   stops the run before any unit, cards merge into the manifest and reach the paper pages,
//!   crafted cards are refused by `report`, a resume whose text changed needs `--force`,
//!   `--corpus-root` is checked and reaches the units.
//! - `continual`: the continual reproduction's settings errors, claims, paper page, resume, and
//!   flex vs wgpu training.
//! - `dora`: the DoRA reproduction's settings errors, claims and paper page on flex.
//! - `train_paths`: the training demonstration agrees on flex and on the wgpu kernel.
//! - `executors`: `run --plan-only` and `run-unit` by hand; `--jobs 2` and `--executor slurm`
//!   (a real one-node cluster) give the local executor's metrics and claims; a cancelled task is
//!   resubmitted, a crashing one reported, a resumed Slurm run submits only what is missing.
//! - `exit_codes`: how outcomes combine into one exit code.
//! - `compare`: `compare`, `baseline`, `history`, `import-criterion` on fixture runs.
//! - `export`: `export` in every format on fixture runs: the JSON against `benches/schemas/`
//!   (and the schemas' own negative controls), the tables against the BMF numbers, bad runs exit 4.
//! - `site`: the report site opened in headless Chromium; determinism; the checker's own control.
//! - `hostile`: crafted run directories, concurrent resumes, unbounded settings, usage errors,
//!   a closed stdout, and large logits: refused with exit 4 or handled quietly.
//! - `fixtures`: schema-following fixture runs with seeded synthetic samples.
//! - `layers`: no harness module refers to a layer above it (ARCHITECTURE.md).
//! - `registry`: a paper defined in the test, run through `run`, claims and report in its own
//!   registry, with no change to harness code.

mod artifacts;
mod build_info;
mod cli;
mod compare;
mod continual;
mod data_cards;
mod dora;
mod executors;
mod exit_codes;
mod export;
mod fixtures;
mod hostile;
mod layers;
mod mixtral;
mod registry;
mod site;
mod summary;
mod train_paths;
