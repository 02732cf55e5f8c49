//! What every reproduction crate shares with the harness: the contract between a paper and the
//! run.
//!
//! - [`Scale`], the typed run size every config preset is chosen by. A scale is parsed once, at
//!   the edge (the CLI, a manifest), and an unknown name is an error there ([`UnknownScale`]);
//!   nothing downstream falls back to a default.
//! - [`Paper`] (and its object-safe form [`DynPaper`]): what a reproduced paper provides, from
//!   its typed settings to its claims and report sections; [`KernelSuite`], the smaller trait of
//!   a kernel's checks and benchmarks.
//! - [`UnitSpec`], [`RunContext`], [`Outcome`]: one unit, what it runs with, what it returns.
//! - [`MetricRow`] ([`metrics`]), the one row type from a unit's measurement to the run store's
//!   metrics table and back to the claims; [`UnitRecord`], what a finished unit stored.
//! - [`bench`]: the one benchmark helper (interleaved rounds, paired speedups with CIs).
//! - [`report`]: report sections as data (tables, figures described by their numbers).
//! - [`files`]: hex of a digest and the atomic write the harness and the corpus share.
//! - [`DataCard`], [`DataEnv`]: the text a corpus-backed paper used, and where it comes from.
//! - [`alloc`]: the counting global allocator and [`alloc::measure_peak`], for memory claims.

pub mod alloc;
pub mod bench;
mod data;
pub mod files;
pub mod metrics;
mod paper;
mod record;
pub mod report;
mod scale;
mod unit;

pub use data::{DataCard, DataEnv};
pub use metrics::MetricRow;
pub use paper::{ConfigError, DynPaper, Judged, KernelSuite, Paper, PaperInfo};
pub use record::{
    ArtifactRef, UnitRecord, UnitStatus, fmt_pm, mean_curve, mean_over_runs, mean_pm,
    passed_measurements,
};
pub use scale::{Scale, UnknownScale};
pub use unit::{
    Artifact, ArtifactSource, Exec, Fallback, NoArtifacts, Outcome, RunContext, RunsOn, UnitSpec,
};
