//! The double-entry ledger of payouts, after TigerBeetle: accounts per tenant with four
//! balances and limits, transfers that always balance, two-phase holds (pending, then posted in
//! full or in parts, or voided), linked chains written whole or not at all, client-chosen ids
//! as idempotency keys, and each account's balances as of any time.
//!
//! The rules live in `domain` (no SQL, unit-tested), the SQL in `store`; [`Ledger`] runs on
//! the caller's connection so the service commits ledger, rows and outbox events together.

mod domain;
mod store;

pub use domain::{
    Account, AccountFlags, AccountKind, AccountResult, AccountSpec, Balance, Hold, PendingState, Transfer,
    TransferKind, TransferResult, TransferSpec, is_currency,
};
pub use store::Ledger;
pub(crate) use store::take_write_lock;

/// The ledger's tables on PostgreSQL (migration 2 of the payouts service).
pub const MIGRATION_POSTGRES: &str = include_str!("../../migrations/postgres/0002_ledger.sql");
/// The ledger's tables on SQLite.
pub const MIGRATION_SQLITE: &str = include_str!("../../migrations/sqlite/0002_ledger.sql");
