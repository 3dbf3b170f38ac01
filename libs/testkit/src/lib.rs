//! Helpers for Chorus's tests, and only its tests: crates take it as a `[dev-dependencies]`
//! entry, never as a dependency of production code, so none of this is compiled into a
//! service.
//!
//! - [`wait`]: [`eventually`], polling a condition instead of sleeping for a guessed time.

// A test kit fails the test it serves, loudly and with context: that is its error handling.
#![allow(clippy::panic, clippy::expect_used)]

pub mod wait;

pub use wait::eventually;
