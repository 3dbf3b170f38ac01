//! The Chorus service kit: everything a service needs that is not its own domain. The service
//! runtime (`runtime`) that runs a service from its declaration; serving (`server`) and
//! channels balanced over a name's addresses (`client`),
//! configuration (`config`), the error model (`error`), caller identity (`auth`), storage
//! (`storage`) and group commit (`batch`), events (`events`), idempotency keys
//! (`idempotency`), business time (`clock`) and durable timers (`timers`), resource names
//! (`names`), update masks (`fieldmask`), pagination (`paging`) and telemetry (`telemetry`).

pub mod auth;
pub mod batch;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod fieldmask;
pub mod idempotency;
pub mod names;
pub mod paging;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod timers;

pub use error::{Error, ErrorCode, Result, Violations};
