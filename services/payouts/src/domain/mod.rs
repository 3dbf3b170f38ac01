//! The payouts rules free of storage and transport: payee details parsed into valid types, PII
//! sealed at rest, US tax (holds and the 1099-NEC report) with its figures as data, and the
//! erasure that keeps what the law keeps.

pub mod date;
pub mod erasure;
pub mod payee;
pub mod pii;
pub mod tax;
