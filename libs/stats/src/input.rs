//! What an audience test reads: one row of totals per influencer and segment, the plan each
//! segment was given, and the settings of the test (significance level, power, minimum data).

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// One influencer's totals in one segment of a campaign: the unit of analysis. Clicks and
/// conversions are never looked at one by one; they cluster by influencer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluencerTotals {
    /// The influencer's id (any stable string).
    pub influencer: String,
    /// The segment the influencer was sent to (a city, a niche, a demographic).
    pub segment: String,
    /// Tracked-link clicks.
    pub clicks: u64,
    /// Attributed conversions (orders).
    pub conversions: u64,
    /// Post impressions.
    pub impressions: u64,
    /// Engagements (likes, comments, saves, shares).
    pub engagements: u64,
    /// Attributed revenue, in minor units of the campaign's currency (net of refunds, so it can
    /// be negative).
    pub revenue_minor: i64,
    /// What the influencer cost, in minor units.
    pub spend_minor: i64,
}

/// What a segment was planned to get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSegment {
    /// The segment's name, as in [`InfluencerTotals::segment`].
    pub segment: String,
    /// Influencers planned for it.
    pub influencers: u32,
    /// Spend planned for it, in minor units.
    pub spend_minor: i64,
}

/// A campaign's data and plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignData {
    /// One row per influencer and segment (rows repeating a pair are added together).
    pub rows: Vec<InfluencerTotals>,
    /// The plan, one entry per segment.
    pub plan: Vec<PlannedSegment>,
}

/// The settings of an audience test. [`Config::default`] is what reports use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Significance level of the pairwise tests after Holm's correction (0.05).
    pub alpha: f64,
    /// Confidence level of the intervals (0.95).
    pub confidence: f64,
    /// Power the sample-size estimate aims at (0.80).
    pub power: f64,
    /// The smallest relative difference the sample-size estimate is for (0.20: 20%).
    pub min_detectable_relative: f64,
    /// A segment needs at least this many influencers with data before anything is claimed (10).
    pub min_influencers: usize,
    /// A ratio metric needs at least this many events (conversions, engagements) in a segment
    /// before anything is claimed (10).
    pub min_events: u64,
    /// How far a segment's share of spend may be from its planned share, in share points (0.05).
    pub spend_share_tolerance: f64,
    /// Draws for the probability that each segment is best (20,000).
    pub best_draws: usize,
    /// The seed of those draws, so a report reads the same every time.
    pub seed: u64,
    /// The campaign's currency code, for sentences about revenue ("USD").
    pub currency: String,
    /// Decimal places of the currency's minor unit (2).
    pub currency_exponent: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            confidence: 0.95,
            power: 0.80,
            min_detectable_relative: 0.20,
            min_influencers: 10,
            min_events: 10,
            spend_share_tolerance: 0.05,
            best_draws: 20_000,
            seed: 14,
            currency: "USD".to_owned(),
            currency_exponent: 2,
        }
    }
}

impl Config {
    /// Checks every setting and names each one that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut fields = Vec::new();
        let open_unit = |v: f64| v > 0.0 && v < 1.0;
        if !open_unit(self.alpha) {
            fields.push("alpha");
        }
        if !open_unit(self.confidence) {
            fields.push("confidence");
        }
        if !open_unit(self.power) {
            fields.push("power");
        }
        if !(self.min_detectable_relative > 0.0 && self.min_detectable_relative.is_finite()) {
            fields.push("min_detectable_relative");
        }
        if self.min_influencers < 2 {
            fields.push("min_influencers");
        }
        if !(0.0..1.0).contains(&self.spend_share_tolerance) {
            fields.push("spend_share_tolerance");
        }
        if self.best_draws == 0 {
            fields.push("best_draws");
        }
        if self.currency_exponent > 6 {
            fields.push("currency_exponent");
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { fields })
        }
    }
}
