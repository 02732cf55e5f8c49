//! claimbench: reproduce the headline claims of LLM papers at small scale, benchmark the kernels
//! behind them against the baselines a user would pick, and publish a static report.
//!
//! Architecture invariant: only this crate knows polars (the run store's tables) and minijinja
//! (the report); reproductions and kernels never import it.

#[macro_use]
pub mod out;

pub mod artifacts;
pub mod claim_views;
pub mod claims;
pub mod compare;
pub mod configs;
pub mod criterion_import;
pub mod devices;
pub mod env;
pub mod error;
pub mod executor;
pub mod export;
pub mod history;
pub mod ids;
pub mod kernel_suites;
pub mod lock;
pub mod peaks;
pub mod plan;
pub mod plots;
pub mod registry;
pub mod report;
pub mod run;
pub mod sitecheck;
pub mod stage;
pub mod store;
pub mod summary;
pub mod worker;

/// True when `CLAIMBENCH_REQUIRE_DEVICE=1`: "no device, kernel checks skipped" becomes an error.
pub fn require_device() -> bool {
    std::env::var("CLAIMBENCH_REQUIRE_DEVICE").is_ok_and(|v| v == "1")
}
