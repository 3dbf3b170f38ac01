//! The test kit: what every service's tests need, in one place and never in production code.
//! A service on a fresh database per test, on PostgreSQL or SQLite ([`spawn`]), clients that
//! carry a bearer token ([`client`]), the macro that runs a test on both engines
//! ([`on_both_backends!`]), and an event probe ([`events`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
pub mod events;
pub mod spawn;

pub use client::{Authed, Bearer, authed, channel};
pub use spawn::{Backend, Stack, TestDb};

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
