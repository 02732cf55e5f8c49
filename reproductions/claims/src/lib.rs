//! Claims as data and the statistics that compute their verdicts.
//!
//! A reproduction declares each claim as a [`ClaimSpec`] (statement, source, test and its
//! parameters), runs its experiments, and hands the measured per-seed values as [`Evidence`] to
//! [`evaluate`], which returns the [`Claim`] entry of `claims.json` ([`ClaimsFile`]) with a verdict
//! computed from the data and a `details` sentence giving the numbers.
//!
//! - [`claim`]: the `claims.json` types and [`evaluate`].
//! - [`stats`]: confidence intervals (t for `n < 10`, bootstrap for `n >= 10`), the five verdict
//!   tests (ordering, magnitude, TOST equivalence, Spearman trend, exact), percentiles, and
//!   [`paired_speedup`] for benchmarks.
//! - [`regression`]: benchmark comparisons across two independent runs (Mann–Whitney U,
//!   bootstrap ratio of medians, Benjamini–Hochberg, a four-way [`regression::Change`] verdict)
//!   and PELT change points over run history.
//! - [`limits`]: the bounds every reproduction's config puts on its sizes and steps
//!   ([`limits::at_most`], [`limits::LimitError`]) and the saturating helpers of their memory
//!   estimates.
//! - [`ClaimError`]: bad input; nothing here panics on user input.

pub mod claim;
pub mod error;
pub mod limits;
pub mod regression;
pub mod stats;

pub use claim::{
    Band, Claim, ClaimKind, ClaimSpec, ClaimsFile, Fdr, SCHEMA_VERSION, TestKind, Verdict,
    apply_fdr, evaluate, fmt_num,
};
pub use error::ClaimError;
pub use stats::{
    CiMethod, DEFAULT_ALPHA, Direction, Evidence, MeanSummary, SpeedupEstimate, TestSpec,
    Tolerance, TrendDirection, median, paired_speedup, percentile,
};
