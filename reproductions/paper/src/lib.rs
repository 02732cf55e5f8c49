//! What every reproduction crate shares with the harness.
//!
//! - [`Scale`], the typed run size every config preset is chosen by. A scale is parsed once, at
//!   the edge (the CLI, a manifest), and an unknown name is an error there ([`UnknownScale`]);
//!   nothing downstream falls back to a default.
//! - [`MetricRow`], the one row type from a unit's measurement to the run store's metrics table
//!   and back to the claims: a reproduction writes rows, the store keeps them, the claims read them.

pub mod metrics;
mod scale;

pub use metrics::MetricRow;
pub use scale::{Scale, UnknownScale};
