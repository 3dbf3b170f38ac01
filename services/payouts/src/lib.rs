//! Payouts: money and goods owed and sent. A double-entry ledger per tenant holds each
//! contract's compensation when it is activated, posts it when a deliverable is approved and
//! voids it when the contract ends unpaid; provider adapters (Stripe Connect, PayPal Payouts,
//! Tremendous, shipments) pay it, each with the provider's own idempotency key, so a retry can
//! never pay twice.

pub mod domain;
pub mod ledger;
pub mod providers;
