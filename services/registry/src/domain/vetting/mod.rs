//! Vetting: explainable audience-quality and fraud signals for one social account. The
//! follower classifier, the comment rules and the report's scoring are pure functions; the
//! store feeds them and keeps their results.

pub mod classifier;
pub mod comments;
pub mod explain;
pub mod report;
