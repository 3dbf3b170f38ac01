//! The audience test of a campaign: for each metric, each segment's estimate, every pairwise
//! difference with Holm-adjusted p-values, the probability that each segment is best and the
//! data still needed; and the allocation check. Every figure that cannot be computed is `None`,
//! never NaN, and says why in its sentence.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::allocation::{self, AllocationCheck, Observed};
use crate::best::probability_best;
use crate::error::ConfigError;
use crate::estimate::{Difference, Estimate, mean_estimate, ratio_estimate, welch_difference};
use crate::holm::holm_adjust;
use crate::input::{CampaignData, Config, InfluencerTotals};
use crate::power::{SampleSize, required_per_segment};
use crate::sentence::{self, Outlook, Style};

/// The metrics an audience test compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Conversions over clicks (a ratio metric: sums over influencers).
    ConversionsPerClick,
    /// Engagements over impressions (a ratio metric).
    EngagementsPerImpression,
    /// Mean attributed revenue per influencer, minor units (a mean metric).
    RevenuePerInfluencer,
}

impl Metric {
    /// Every metric, in the order reports show them.
    pub const ALL: [Metric; 3] = [
        Metric::ConversionsPerClick,
        Metric::EngagementsPerImpression,
        Metric::RevenuePerInfluencer,
    ];

    /// Whether it is a ratio of two sums (a rate) rather than a mean per influencer.
    pub fn is_ratio(self) -> bool {
        !matches!(self, Metric::RevenuePerInfluencer)
    }

    /// Its name in sentences.
    pub fn label(self) -> &'static str {
        match self {
            Metric::ConversionsPerClick => "conversions per click",
            Metric::EngagementsPerImpression => "engagements per impression",
            Metric::RevenuePerInfluencer => "revenue per influencer",
        }
    }

    /// What its sample size is counted in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ConversionsPerClick => "clicks",
            Metric::EngagementsPerImpression => "impressions",
            Metric::RevenuePerInfluencer => "influencers",
        }
    }

    /// The events its numerator counts, for ratio metrics.
    pub fn event(self) -> Option<&'static str> {
        match self {
            Metric::ConversionsPerClick => Some("conversions"),
            Metric::EngagementsPerImpression => Some("engagements"),
            Metric::RevenuePerInfluencer => None,
        }
    }

    /// How a sentence says one segment beats another on it.
    pub fn better_verb(self) -> &'static str {
        match self {
            Metric::ConversionsPerClick => "converts better than",
            Metric::EngagementsPerImpression => "engages better than",
            Metric::RevenuePerInfluencer => "earns more per influencer than",
        }
    }

    /// One influencer's `(denominator, numerator)`, or `(1, value)` for a mean metric.
    fn pair(self, row: &InfluencerTotals) -> (f64, f64) {
        match self {
            Metric::ConversionsPerClick => (row.clicks as f64, row.conversions as f64),
            Metric::EngagementsPerImpression => (row.impressions as f64, row.engagements as f64),
            Metric::RevenuePerInfluencer => (1.0, row.revenue_minor as f64),
        }
    }
}

/// One segment's result on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentResult {
    /// The segment.
    pub segment: String,
    /// Influencers with data in it (for ratio metrics: with a nonzero denominator).
    pub influencers: usize,
    /// Sum of the numerator (conversions, engagements, revenue in minor units).
    pub numerator: f64,
    /// Sum of the denominator (clicks, impressions, influencers).
    pub denominator: f64,
    /// The estimate with its interval, when it can be computed at all (two influencers and
    /// some denominator), even if below the minimum for claims.
    pub estimate: Option<Estimate>,
    /// Whether the segment has the minimum data for claims (see [`Config::min_influencers`]).
    pub enough_data: bool,
    /// How many more units (clicks, impressions, influencers) it needs for the detectable
    /// difference at the power asked; `None` when that cannot be estimated yet.
    pub more_needed: Option<u64>,
    /// The probability that it is the best segment, among segments with enough data.
    pub probability_best: Option<f64>,
    /// The result in plain words.
    pub sentence: String,
}

/// The comparison of two segments on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The first segment.
    pub a: String,
    /// The second segment.
    pub b: String,
    /// `a − b` and its Welch test; `None` when either segment lacks the minimum data.
    pub difference: Option<Difference>,
    /// The p-value after Holm's correction over this metric's comparisons.
    pub p_adjusted: Option<f64>,
    /// Whether the adjusted p-value is at most α.
    pub significant: bool,
    /// The better segment when the difference is significant.
    pub better: Option<String>,
    /// The result in plain words.
    pub sentence: String,
}

/// Everything about one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    /// The metric.
    pub metric: Metric,
    /// One result per segment, planned segments first in plan order.
    pub segments: Vec<SegmentResult>,
    /// Every pair of segments, in segment order.
    pub comparisons: Vec<Comparison>,
    /// How many comparisons Holm's correction ran over (pairs with enough data).
    pub tested: usize,
    /// The sample size per segment for the detectable difference, when estimable.
    pub sample_size: Option<SampleSize>,
}

/// The whole audience test of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceTest {
    /// One result per metric, in [`Metric::ALL`] order.
    pub metrics: Vec<MetricResult>,
    /// Whether segments got the influencers and spend planned.
    pub allocation: AllocationCheck,
}

/// Runs the audience test of a campaign: estimates, pairwise tests with Holm's correction,
/// probability best, sample sizes and the allocation check, each with its sentence. Rows with
/// the same influencer and segment are added together. Never fails on data (too little of it
/// is a "not enough data yet" result); fails only on settings out of range.
pub fn analyze(data: &CampaignData, config: &Config) -> Result<AudienceTest, ConfigError> {
    config.validate()?;
    let rows = merge_rows(&data.rows);
    let order = segment_order(data, &rows);
    let mut by_segment: BTreeMap<&str, Vec<&InfluencerTotals>> = BTreeMap::new();
    let mut observed: BTreeMap<&str, Observed> = BTreeMap::new();
    for row in &rows {
        by_segment.entry(&row.segment).or_default().push(row);
        let o = observed.entry(&row.segment).or_default();
        o.influencers.push(&row.influencer);
        o.spend_minor = o.spend_minor.saturating_add(row.spend_minor);
    }
    let metrics = Metric::ALL
        .iter()
        .map(|&metric| analyze_metric(metric, &order, &by_segment, config))
        .collect();
    let allocation = allocation::check(&data.plan, &observed, &order, config);
    Ok(AudienceTest { metrics, allocation })
}

/// Adds up rows that repeat an influencer and segment.
fn merge_rows(rows: &[InfluencerTotals]) -> Vec<InfluencerTotals> {
    let mut merged: BTreeMap<(&str, &str), InfluencerTotals> = BTreeMap::new();
    for row in rows {
        merged
            .entry((row.segment.as_str(), row.influencer.as_str()))
            .and_modify(|m| {
                m.clicks = m.clicks.saturating_add(row.clicks);
                m.conversions = m.conversions.saturating_add(row.conversions);
                m.impressions = m.impressions.saturating_add(row.impressions);
                m.engagements = m.engagements.saturating_add(row.engagements);
                m.revenue_minor = m.revenue_minor.saturating_add(row.revenue_minor);
                m.spend_minor = m.spend_minor.saturating_add(row.spend_minor);
            })
            .or_insert_with(|| row.clone());
    }
    merged.into_values().collect()
}

/// Planned segments in plan order, then segments only in the data, by name.
fn segment_order(data: &CampaignData, rows: &[InfluencerTotals]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for p in &data.plan {
        if !order.contains(&p.segment) {
            order.push(p.segment.clone());
        }
    }
    let in_data: BTreeSet<&str> = rows.iter().map(|r| r.segment.as_str()).collect();
    order.extend(
        in_data
            .into_iter()
            .filter(|s| !order.iter().any(|o| o == s))
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    order
}

/// One segment's numbers on one metric before sentences.
struct Measured {
    influencers: usize,
    numerator: f64,
    denominator: f64,
    estimate: Option<Estimate>,
    enough: bool,
}

fn measure(metric: Metric, rows: &[&InfluencerTotals], config: &Config) -> Measured {
    let pairs: Vec<(f64, f64)> = rows.iter().map(|r| metric.pair(r)).collect();
    let numerator: f64 = pairs.iter().map(|p| p.1).sum();
    let denominator: f64 = pairs.iter().map(|p| p.0).sum();
    let influencers = pairs.iter().filter(|p| p.0 > 0.0).count();
    let (estimate, enough) = if metric.is_ratio() {
        let e = ratio_estimate(&pairs, config.confidence);
        let enough = influencers >= config.min_influencers && numerator >= config.min_events as f64 && e.is_some();
        (e, enough)
    } else {
        let values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let e = mean_estimate(&values, config.confidence);
        let enough = influencers >= config.min_influencers && e.is_some_and(|e| e.std_error > 0.0);
        (e, enough)
    };
    Measured {
        influencers,
        numerator,
        denominator,
        estimate,
        enough,
    }
}

/// The unit variance pooled over segments that have an estimate: for ratio metrics
/// `Σ Var(R_s)·X_s² / Σ X_s` (each segment's `Var(R_s)·X_s` weighted by its denominator), for
/// the mean metric the pooled influencer variance `Σ (n_s − 1)·s_s² / Σ (n_s − 1)`.
fn pooled_unit_variance(metric: Metric, measured: &[Measured]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for m in measured {
        let Some(e) = m.estimate else { continue };
        let var = e.std_error * e.std_error;
        if metric.is_ratio() {
            num += var * m.denominator * m.denominator;
            den += m.denominator;
        } else {
            let n = e.n as f64;
            num += (n - 1.0) * var * n;
            den += n - 1.0;
        }
    }
    (den > 0.0 && num > 0.0).then(|| num / den)
}

fn analyze_metric(
    metric: Metric,
    order: &[String],
    by_segment: &BTreeMap<&str, Vec<&InfluencerTotals>>,
    config: &Config,
) -> MetricResult {
    let style = Style {
        metric,
        currency: config.currency.clone(),
        currency_exponent: config.currency_exponent,
        confidence: config.confidence,
    };
    let minimum = sentence::minimum(metric, config.min_influencers, config.min_events);
    let measured: Vec<Measured> = order
        .iter()
        .map(|s| {
            measure(
                metric,
                by_segment.get(s.as_str()).map_or(&[][..], Vec::as_slice),
                config,
            )
        })
        .collect();

    // The sample size, from the campaign's own variance around its pooled baseline.
    let total_num: f64 = measured.iter().map(|m| m.numerator).sum();
    let total_den: f64 = measured.iter().map(|m| m.denominator).sum();
    let baseline = (total_den > 0.0).then(|| total_num / total_den);
    let sample_size = pooled_unit_variance(metric, &measured)
        .and_then(|v| required_per_segment(v, baseline?, config.min_detectable_relative, config.alpha, config.power));
    let more_needed: Vec<Option<u64>> = measured
        .iter()
        .map(|m| sample_size.map(|s| s.required_per_segment.saturating_sub(m.denominator as u64)))
        .collect();

    // Probability best among segments with enough data.
    let ready: Vec<usize> = (0..order.len()).filter(|&i| measured[i].enough).collect();
    let draws: Vec<(f64, f64)> = ready
        .iter()
        .filter_map(|&i| measured[i].estimate.map(|e| (e.value, e.std_error)))
        .collect();
    let mut best = vec![None; order.len()];
    if ready.len() >= 2 {
        for (&i, p) in ready
            .iter()
            .zip(probability_best(&draws, config.best_draws, config.seed))
        {
            best[i] = Some(p);
        }
    }

    let segments = order
        .iter()
        .zip(&measured)
        .enumerate()
        .map(|(i, (name, m))| {
            let sentence = match (m.enough, m.estimate) {
                (true, Some(e)) => sentence::segment_estimate(
                    &style,
                    name,
                    e.value,
                    (e.ci_low, e.ci_high),
                    m.influencers,
                    m.denominator,
                    best[i],
                ),
                _ => sentence::segment_not_enough(
                    metric,
                    name,
                    m.influencers,
                    metric.is_ratio().then_some(m.numerator),
                    &minimum,
                ),
            };
            SegmentResult {
                segment: name.clone(),
                influencers: m.influencers,
                numerator: m.numerator,
                denominator: m.denominator,
                estimate: m.estimate,
                enough_data: m.enough,
                more_needed: more_needed[i],
                probability_best: best[i],
                sentence,
            }
        })
        .collect();

    // Pairwise tests; Holm's family is the pairs where both segments have enough data.
    let mut pairs: Vec<(usize, usize, Option<Difference>)> = Vec::new();
    for i in 0..order.len() {
        for j in i + 1..order.len() {
            let diff = match (measured[i].enough, measured[j].enough) {
                (true, true) => match (measured[i].estimate, measured[j].estimate) {
                    (Some(a), Some(b)) => welch_difference(&a, &b, config.confidence),
                    _ => None,
                },
                _ => None,
            };
            pairs.push((i, j, diff));
        }
    }
    let raw: Vec<f64> = pairs.iter().filter_map(|p| p.2.map(|d| d.p_value)).collect();
    let tested = raw.len();
    let mut adjusted = holm_adjust(&raw).into_iter();
    let comparisons = pairs
        .into_iter()
        .map(|(i, j, diff)| {
            let (a, b) = (&order[i], &order[j]);
            let Some(d) = diff else {
                let more = match (more_needed[i], more_needed[j]) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    _ => None,
                };
                return Comparison {
                    a: a.clone(),
                    b: b.clone(),
                    difference: None,
                    p_adjusted: None,
                    significant: false,
                    better: None,
                    sentence: sentence::pair_not_enough(metric, a, b, more, config.min_detectable_relative, &minimum),
                };
            };
            let p_adj = adjusted.next().unwrap_or(1.0);
            let significant = p_adj <= config.alpha;
            let (va, vb) = (
                measured[i].estimate.map_or(0.0, |e| e.value),
                measured[j].estimate.map_or(0.0, |e| e.value),
            );
            let (better, sentence) = if significant {
                let (high, low, hv, lv, dv, ci) = if d.value >= 0.0 {
                    (a, b, va, vb, d.value, (d.ci_low, d.ci_high))
                } else {
                    (b, a, vb, va, -d.value, (-d.ci_high, -d.ci_low))
                };
                (
                    Some(high.clone()),
                    sentence::better(&style, high, low, hv, lv, dv, ci, p_adj, tested),
                )
            } else {
                let outlook = match (more_needed[i], more_needed[j]) {
                    (Some(x), Some(y)) if x.max(y) > 0 => Outlook::More(x.max(y)),
                    (Some(_), Some(_)) => Outlook::AlreadyEnough,
                    _ => Outlook::Unknown,
                };
                (
                    None,
                    sentence::no_clear_difference(
                        &style,
                        a,
                        b,
                        va,
                        vb,
                        d.value,
                        (d.ci_low, d.ci_high),
                        p_adj,
                        tested,
                        &outlook,
                        config.min_detectable_relative,
                    ),
                )
            };
            Comparison {
                a: a.clone(),
                b: b.clone(),
                difference: Some(d),
                p_adjusted: Some(p_adj),
                significant,
                better,
                sentence,
            }
        })
        .collect();

    MetricResult {
        metric,
        segments,
        comparisons,
        tested,
        sample_size,
    }
}
