//! The rules of offers, contracts and deliverables, free of storage and transport: the terms
//! and their canonical document, the states and the moves between them, the sealed record and
//! its PDF, and the ad-disclosure checker.

pub mod disclosure;
