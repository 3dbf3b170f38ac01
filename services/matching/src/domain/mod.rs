//! Matching's rules, free of I/O: what a valid brief is, the index the briefs run against,
//! ranking with its explanations, selection within budget and caps, and the
//! brand's decisions on a shortlist. Most tests live here.

pub mod brief;
pub mod index;
pub mod limits;
pub mod rank;
pub mod select;
pub mod shortlist;
