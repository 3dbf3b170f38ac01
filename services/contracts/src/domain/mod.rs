//! The rules of offers, contracts and deliverables, free of storage and transport: the terms
//! and their canonical document, the states and the moves between them, the sealed record and
//! its PDF, and the ad-disclosure checker.

pub mod disclosure;
pub mod document;
#[cfg(test)]
mod fixtures;
pub mod json;
pub mod lifecycle;
pub mod limits;
pub mod pdf;
pub mod seal;
pub mod terms;
