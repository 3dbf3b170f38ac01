//! The registry's rules, free of I/O: what a valid profile is, how engagement and tiers are
//! derived, and the niche taxonomy. Most of the registry's tests live here.

pub mod engagement;
pub mod influencer;
pub mod niche;
pub mod tier;
pub mod vetting;
