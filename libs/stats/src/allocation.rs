//! Did each segment get what it was planned to get? A comparison of segments is only fair when
//! the campaign ran as designed: influencers spread across segments in the planned shares
//! (Pearson's chi-square goodness of fit on the counts) and spend within a tolerance of the
//! planned shares. Each departure is a finding in plain words.

use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::input::{Config, PlannedSegment};
use crate::sentence;

/// What one segment got against its plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentAllocation {
    /// The segment.
    pub segment: String,
    /// Influencers planned (0 for a segment not in the plan).
    pub planned_influencers: u32,
    /// Distinct influencers with data in it.
    pub influencers: usize,
    /// Spend planned, minor units.
    pub planned_spend_minor: i64,
    /// Spend recorded, minor units.
    pub spend_minor: i64,
    /// Planned share of spend; `None` when nothing was planned.
    pub planned_spend_share: Option<f64>,
    /// Share of recorded spend; `None` when nothing was spent.
    pub spend_share: Option<f64>,
}

/// Pearson's chi-square goodness of fit of influencer counts to the planned shares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChiSquare {
    /// `Σ (observed − expected)² / expected`.
    pub statistic: f64,
    /// Segments in the test minus one.
    pub df: usize,
    /// `P(χ²_df ≥ statistic)`.
    pub p_value: f64,
    /// The smallest expected count; below 5 the chi-square approximation is rough.
    pub min_expected: f64,
}

/// What kind of departure from the plan a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The chi-square test rejects the planned shares of influencers.
    InfluencerSharesOffPlan,
    /// A segment got fewer influencers than planned.
    FewerInfluencers,
    /// A segment got more influencers than planned.
    MoreInfluencers,
    /// A segment's share of spend is off its planned share by more than the tolerance.
    SpendShareOffPlan,
    /// A segment has data but no plan.
    UnplannedSegment,
    /// A planned segment has no data.
    NoData,
    /// One influencer has data in more than one segment.
    SharedInfluencer,
}

/// One departure from the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The segment it is about, when it is about one.
    pub segment: Option<String>,
    /// The finding in plain words.
    pub sentence: String,
}

/// The allocation check of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocationCheck {
    /// Every segment, planned ones first in plan order.
    pub segments: Vec<SegmentAllocation>,
    /// The test of influencer counts, when at least two planned segments have planned
    /// influencers and some influencer has data.
    pub influencer_counts: Option<ChiSquare>,
    /// Departures from the plan; empty when the campaign ran as planned.
    pub findings: Vec<Finding>,
}

/// What the data holds per segment: its influencers (distinct: rows are merged per influencer
/// and segment first) and spend.
#[derive(Debug, Default, Clone)]
pub(crate) struct Observed<'a> {
    pub(crate) influencers: Vec<&'a str>,
    pub(crate) spend_minor: i64,
}

/// Pearson's goodness-of-fit test of `observed` counts against `planned` weights (scaled to the
/// observed total). Categories with zero planned weight are left out. `None` with fewer than
/// two categories or no observations.
pub fn chi_square_goodness_of_fit(observed: &[f64], planned: &[f64]) -> Option<ChiSquare> {
    let pairs: Vec<(f64, f64)> = observed
        .iter()
        .zip(planned)
        .filter(|(_, p)| **p > 0.0)
        .map(|(o, p)| (*o, *p))
        .collect();
    let total_observed: f64 = pairs.iter().map(|p| p.0).sum();
    let total_planned: f64 = pairs.iter().map(|p| p.1).sum();
    if pairs.len() < 2 || total_observed <= 0.0 {
        return None;
    }
    let mut statistic = 0.0;
    let mut min_expected = f64::INFINITY;
    for (o, p) in &pairs {
        let expected = total_observed * p / total_planned;
        statistic += (o - expected).powi(2) / expected;
        min_expected = min_expected.min(expected);
    }
    let df = pairs.len() - 1;
    let p_value = ChiSquared::new(df as f64).ok()?.sf(statistic);
    Some(ChiSquare {
        statistic,
        df,
        p_value,
        min_expected,
    })
}

/// Checks every segment against the plan and writes a finding for each departure.
pub(crate) fn check(
    plan: &[PlannedSegment],
    observed: &BTreeMap<&str, Observed<'_>>,
    order: &[String],
    config: &Config,
) -> AllocationCheck {
    let planned: BTreeMap<&str, &PlannedSegment> = plan.iter().map(|p| (p.segment.as_str(), p)).collect();
    let planned_spend: i64 = plan.iter().map(|p| p.spend_minor.max(0)).sum();
    let actual_spend: i64 = observed.values().map(|o| o.spend_minor.max(0)).sum();
    let empty = Observed::default();
    let mut findings = Vec::new();
    let mut segments = Vec::new();
    for name in order {
        let got = observed.get(name.as_str()).unwrap_or(&empty);
        let plan = planned.get(name.as_str());
        let allocation = SegmentAllocation {
            segment: name.clone(),
            planned_influencers: plan.map_or(0, |p| p.influencers),
            influencers: got.influencers.len(),
            planned_spend_minor: plan.map_or(0, |p| p.spend_minor),
            spend_minor: got.spend_minor,
            planned_spend_share: (planned_spend > 0)
                .then(|| plan.map_or(0, |p| p.spend_minor.max(0)) as f64 / planned_spend as f64),
            spend_share: (actual_spend > 0).then(|| got.spend_minor.max(0) as f64 / actual_spend as f64),
        };
        let finding = |kind, sentence| Finding {
            kind,
            segment: Some(name.clone()),
            sentence,
        };
        if plan.is_none() {
            findings.push(finding(
                FindingKind::UnplannedSegment,
                sentence::allocation::unplanned(name),
            ));
        } else if got.influencers.is_empty() {
            findings.push(finding(FindingKind::NoData, sentence::allocation::no_data(name)));
        }
        let (got_n, planned_n) = (allocation.influencers, allocation.planned_influencers);
        if plan.is_some() && got_n > 0 && got_n < planned_n as usize {
            findings.push(finding(
                FindingKind::FewerInfluencers,
                sentence::allocation::fewer_influencers(name, got_n, planned_n),
            ));
        }
        if plan.is_some() && got_n > planned_n as usize {
            findings.push(finding(
                FindingKind::MoreInfluencers,
                sentence::allocation::more_influencers(name, got_n, planned_n),
            ));
        }
        if let (Some(share), Some(want)) = (allocation.spend_share, allocation.planned_spend_share)
            && (share - want).abs() > config.spend_share_tolerance
        {
            findings.push(finding(
                FindingKind::SpendShareOffPlan,
                sentence::allocation::spend_share_off(name, share, want),
            ));
        }
        segments.push(allocation);
    }
    let observed_counts: Vec<f64> = plan
        .iter()
        .map(|p| observed.get(p.segment.as_str()).map_or(0, |o| o.influencers.len()) as f64)
        .collect();
    let planned_counts: Vec<f64> = plan.iter().map(|p| f64::from(p.influencers)).collect();
    let influencer_counts = chi_square_goodness_of_fit(&observed_counts, &planned_counts);
    if let Some(test) = influencer_counts
        && test.p_value < config.alpha
    {
        findings.insert(
            0,
            Finding {
                kind: FindingKind::InfluencerSharesOffPlan,
                segment: None,
                sentence: sentence::allocation::shares_off(
                    test.statistic,
                    test.df,
                    test.p_value,
                    test.min_expected < 5.0,
                ),
            },
        );
    }
    let mut segments_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (&segment, o) in observed {
        for &influencer in &o.influencers {
            segments_of.entry(influencer).or_default().push(segment);
        }
    }
    for (influencer, in_segments) in segments_of {
        if in_segments.len() > 1 {
            findings.push(Finding {
                kind: FindingKind::SharedInfluencer,
                segment: None,
                sentence: sentence::allocation::shared_influencer(influencer, &in_segments),
            });
        }
    }
    AllocationCheck {
        segments,
        influencer_counts,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::chi_square_goodness_of_fit;

    #[test]
    fn chi_square_by_hand() {
        // observed 30, 10, 20 against equal shares: expected 20 each, χ² = (100 + 100 + 0) / 20
        // = 10 on 2 df; P(χ²₂ ≥ 10) = e^(−5).
        let t = chi_square_goodness_of_fit(&[30.0, 10.0, 20.0], &[1.0, 1.0, 1.0]).unwrap();
        assert!((t.statistic - 10.0).abs() < 1e-12);
        assert_eq!(t.df, 2);
        assert!((t.p_value - (-5.0f64).exp()).abs() < 1e-12);
        assert!(chi_square_goodness_of_fit(&[3.0], &[1.0]).is_none());
        assert!(chi_square_goodness_of_fit(&[0.0, 0.0], &[1.0, 1.0]).is_none());
    }
}
