//! Helpers for Chorus's tests, and only its tests: crates take it as a `[dev-dependencies]`
//! entry, never as a dependency of production code, so none of this is compiled into a
//! service.
//!
//! - [`wait`]: [`eventually`], polling a condition instead of sleeping for a guessed time.
//! - [`fault`]: a private PostgreSQL cluster and a private Redis server that a test may stop,
//!   kill and restart without touching the shared servers. Tests using them run one at a
//!   time: name the test binary `fault` or `fault_*`, or give the test a path segment `fault`
//!   or `fault_*` (see [`fault`] and `.config/nextest.toml`).

// A test kit fails the test it serves, loudly and with context: that is its error handling.
#![allow(clippy::panic, clippy::expect_used)]

pub mod fault;
pub mod wait;

pub use wait::eventually;
