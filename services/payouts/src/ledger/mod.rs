//! The double-entry ledger (being built).
