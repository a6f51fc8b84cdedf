//! The load generator as a library: scenarios callable from the `loadtest` binary and from
//! the hub's tests (which run every scenario at tiny sizes).
//!
//! # What this crate must not do
//! Reach the hub other than through its public HTTP API and WebSocket protocol, target anything
//! but loopback addresses, or run unbounded in count or time.

pub mod api;
pub mod error;
pub mod peer;
pub mod plot;
pub mod scenario;
pub mod stats;
pub mod sys;
pub mod ws;
