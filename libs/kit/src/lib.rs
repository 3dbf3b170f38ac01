//! The Chorus service kit: everything a service needs that is not its own domain. Serving
//! (`server`), configuration (`config`), the error model (`error`), caller identity (`auth`),
//! storage (`storage`), events (`events`), pagination (`paging`) and telemetry (`telemetry`).

pub mod auth;
pub mod config;
pub mod error;
pub mod events;
pub mod paging;
pub mod server;
pub mod storage;
pub mod telemetry;

pub use error::{Error, ErrorCode, Result, Violations};
