//! Audience tests: whether a difference between a campaign's segments (cities, niches,
//! demographics) is real or noise. Clicks and conversions cluster by influencer, so the
//! influencer is the unit of analysis throughout: rates are sums over influencers with a
//! delta-method (cluster-robust) variance, differences are Welch tests on those, p-values are
//! Holm-adjusted, and every result comes with a plain sentence. Pure functions: no I/O.
//! The reasoning is in docs/architecture.md ("Audience tests").
//!
//! ```
//! use chorus_stats::{CampaignData, Config, analyze};
//! let test = analyze(&CampaignData::default(), &Config::default()).unwrap();
//! assert!(test.metrics.iter().all(|m| m.comparisons.is_empty()));
//! ```

#![warn(missing_docs)]

pub mod allocation;
pub mod best;
mod error;
pub mod estimate;
pub mod holm;
mod input;
pub mod power;
mod report;
mod sentence;

pub use allocation::{AllocationCheck, ChiSquare, Finding, FindingKind, SegmentAllocation};
pub use error::ConfigError;
pub use estimate::{Difference, Estimate};
pub use input::{CampaignData, Config, InfluencerTotals, PlannedSegment};
pub use power::SampleSize;
pub use report::{AudienceTest, Comparison, Metric, MetricResult, SegmentResult, analyze};
