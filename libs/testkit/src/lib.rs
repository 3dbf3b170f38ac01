//! The test kit: what every service's tests need, in one place, and only for tests: crates take
//! it as a `[dev-dependencies]` entry, never as a dependency of production code.
//!
//! - [`spawn`]: a service on a fresh database per test, on PostgreSQL or SQLite, started by the
//!   kit's runtime as its binary would be ([`Stack`]).
//! - [`client`]: channels that carry a bearer token.
//! - [`on_both_backends!`]: runs a test body on both engines.
//! - [`events`]: watching a service's events.
//! - [`wait`]: [`eventually`], polling a condition instead of sleeping for a guessed time.
//! - [`props`]: strategies for random requests, and the property every validator keeps.
//! - [`metrics`]: what services record (a counter of events handled), read as a scrape would.
//! - [`fault`]: a private PostgreSQL cluster and a private Redis server that a test may stop,
//!   kill and restart without touching the shared servers. Tests using them run one at a
//!   time: name the test binary `fault` or `fault_*`, or give the test a path segment `fault`
//!   or `fault_*` (see [`fault`] and `.config/nextest.toml`).

// A test kit fails the test it serves, loudly and with context: that is its error handling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
pub mod events;
pub mod fault;
pub mod metrics;
pub mod props;
pub mod spawn;
pub mod wait;

pub use client::{Authed, Bearer, authed, channel};
pub use spawn::{Backend, Stack, TestDb};
pub use wait::eventually;

/// Runs each async test body once on PostgreSQL and once on SQLite. `$spawn` is an async fn
/// taking a [`Backend`] and returning what the bodies take.
///
/// ```ignore
/// on_both_backends! { spawn_app;
///     creates_a_thing => |app: TestApp| async move { ... };
/// }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($spawn:path; $($name:ident => $body:expr;)*) => {
        mod postgres {
            use super::*;
            $(#[tokio::test] async fn $name() { let app = $spawn($crate::Backend::Postgres).await; ($body)(app).await; })*
        }
        mod sqlite {
            use super::*;
            $(#[tokio::test] async fn $name() { let app = $spawn($crate::Backend::Sqlite).await; ($body)(app).await; })*
        }
    };
}
