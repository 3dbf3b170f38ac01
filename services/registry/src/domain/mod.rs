//! The registry's rules, free of I/O: what a valid profile is, how engagement and tiers are
//! derived, the niche taxonomy, where each row of a write goes, and vetting. Most of the
//! registry's tests live here.

pub mod engagement;
pub mod influencer;
pub mod limits;
pub mod vetting;
pub mod write;

// The shared vocabulary, under the names the registry has always used.
pub use chorus_catalog::{niche, tier};
