//! The campaign report, computed from [`CampaignFacts`] (rollups and fact tables, never raw
//! events): figures per influencer, segment, tier and campaign; earned media value from the
//! versioned rate card, apart from revenue; and the audience test of the requested metric from
//! `chorus_stats::analyze`, with the influencer as the unit of analysis.

use std::collections::{BTreeMap, BTreeSet};

use chorus_catalog::money::{Currency, Money};
use chorus_kit::clock::{Micros, timestamp};
use chorus_proto::measurement::{
    CampaignReport, DailyCounts, Figures, InfluencerFigures, PairwiseDifference, SegmentAllocation, SegmentFigures,
    SegmentRate, SegmentTest, TestMetric, TierFigures,
};
use chorus_stats::{CampaignData, Config, InfluencerTotals, Metric, PlannedSegment, analyze};
use serde::Deserialize;

use crate::domain::days::DAY_MICROS;
use crate::store::report::CampaignFacts;

/// The rate card shipped with the service (rules/rate_card.toml).
pub const DEFAULT_RATE_CARD: &str = include_str!("../rules/rate_card.toml");

/// Prices of earned media, per currency, in minor units.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCard {
    /// Printed in every report priced with it.
    pub version: String,
    pub currencies: BTreeMap<String, Rates>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub per_thousand_impressions: i64,
    pub per_engagement: i64,
    pub per_click: i64,
}

impl RateCard {
    /// A card from its TOML; what is wrong otherwise.
    pub fn parse(text: &str) -> Result<RateCard, String> {
        let card: RateCard = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if card.version.trim().is_empty() {
            return Err("version must not be empty".to_owned());
        }
        for (code, r) in &card.currencies {
            if Currency::parse(code).is_none() {
                return Err(format!("{code} is not an ISO 4217 currency"));
            }
            if r.per_thousand_impressions < 0 || r.per_engagement < 0 || r.per_click < 0 {
                return Err(format!("{code}: prices must not be negative"));
            }
        }
        Ok(card)
    }

    /// The shipped card.
    pub fn shipped() -> RateCard {
        // Checked by a test below; an empty card (no currencies) if it were ever broken.
        RateCard::parse(DEFAULT_RATE_CARD).unwrap_or_else(|_| RateCard {
            version: "none".to_owned(),
            currencies: BTreeMap::new(),
        })
    }

    /// Earned media value of the attention counted, in minor units, rounded half up; `None`
    /// when the card has no prices in the currency.
    pub fn value(&self, currency: &str, impressions: i64, engagements: i64, clicks: i64) -> Option<i64> {
        let r = self.currencies.get(currency)?;
        let thousandths = i128::from(impressions) * i128::from(r.per_thousand_impressions)
            + 1_000
                * (i128::from(engagements) * i128::from(r.per_engagement)
                    + i128::from(clicks) * i128::from(r.per_click));
        i64::try_from((thousandths + 500).div_euclid(1_000)).ok()
    }
}

/// A group's totals before the ratios.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    influencers: i64,
    deliverables: i64,
    on_time: i64,
    compliant: i64,
    reach: i64,
    impressions: i64,
    engagements: i64,
    clicks: i64,
    redemptions: i64,
    conversions: i64,
    revenue: i64,
    cash: i64,
    gift_cards: i64,
    products: i64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.influencers += o.influencers;
        self.deliverables += o.deliverables;
        self.on_time += o.on_time;
        self.compliant += o.compliant;
        self.reach += o.reach;
        self.impressions += o.impressions;
        self.engagements += o.engagements;
        self.clicks += o.clicks;
        self.redemptions += o.redemptions;
        self.conversions += o.conversions;
        self.revenue += o.revenue;
        self.cash += o.cash;
        self.gift_cards += o.gift_cards;
        self.products += o.products;
    }

    fn cost(&self) -> i64 {
        self.cash + self.gift_cards + self.products
    }

    fn figures(&self, currency: Currency, card: &RateCard) -> Figures {
        let money = |minor: i64| Some(Money::new(currency, minor).to_proto());
        let ratio = |n: i64, d: i64| if d > 0 { n as f64 / d as f64 } else { 0.0 };
        let cost = self.cost();
        Figures {
            influencers: self.influencers,
            deliverables: self.deliverables,
            delivered_on_time: self.on_time,
            disclosure_compliant: self.compliant,
            reach: self.reach,
            impressions: self.impressions,
            engagements: self.engagements,
            engagement_rate: ratio(self.engagements, self.impressions),
            clicks: self.clicks,
            ctr: ratio(self.clicks, self.impressions),
            redemptions: self.redemptions,
            conversions: self.conversions,
            revenue: money(self.revenue),
            cost: money(cost),
            cost_cash: money(self.cash),
            cost_gift_cards: money(self.gift_cards),
            cost_products: money(self.products),
            cost_per_engagement: (self.engagements > 0)
                .then(|| divide(cost, 1, self.engagements))
                .and_then(money),
            cpm: (self.impressions > 0)
                .then(|| divide(cost, 1_000, self.impressions))
                .and_then(money),
            roas: ratio(self.revenue, cost),
            earned_media_value: card
                .value(currency.code(), self.impressions, self.engagements, self.clicks)
                .and_then(money),
        }
    }
}

/// `a × k / b` rounded half away from zero (b > 0).
fn divide(a: i64, k: i64, b: i64) -> i64 {
    let n = i128::from(a) * i128::from(k);
    let b = i128::from(b);
    let q = (n.abs() * 2 + b) / (2 * b);
    i64::try_from(if n < 0 { -q } else { q }).unwrap_or(i64::MAX)
}

/// The report's currency: the plan's, else the payouts', else the orders', else USD. Figures
/// in other currencies are left out (a campaign is priced in one currency).
fn currency_of(f: &CampaignFacts) -> Currency {
    let planned = f.members.values().map(|m| m.planned_currency.as_str());
    let paid = f.cost.keys().map(|k| k.2.as_str());
    let sold = f.sales.keys().map(|k| k.2.as_str());
    planned
        .chain(paid)
        .chain(sold)
        .find_map(Currency::parse)
        .or_else(|| Currency::parse("USD"))
        .unwrap_or_else(unreachable_currency)
}

#[allow(clippy::panic)]
fn unreachable_currency() -> Currency {
    panic!("USD is in the currency catalogue")
}

fn stats_metric(m: TestMetric) -> Metric {
    match m {
        TestMetric::EngagementsPerImpression => Metric::EngagementsPerImpression,
        TestMetric::RevenuePerInfluencer => Metric::RevenuePerInfluencer,
        TestMetric::ConversionsPerClick | TestMetric::Unspecified => Metric::ConversionsPerClick,
    }
}

/// Clicks and conversions per day, oldest first.
fn daily(f: &CampaignFacts, currency: &str) -> Vec<DailyCounts> {
    let mut by_day: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for ((_, day), n) in &f.clicks {
        by_day.entry(*day).or_default().0 += n;
    }
    for ((_, day, cur), s) in &f.sales {
        if cur == currency {
            by_day.entry(*day).or_default().1 += s.conversions;
        }
    }
    by_day
        .into_iter()
        .map(|(day, (clicks, conversions))| DailyCounts {
            day_start_time: Some(timestamp(day * DAY_MICROS)),
            clicks,
            conversions,
        })
        .collect()
}

/// The report of `campaign` ("campaigns/{id}") as of `now`.
pub fn build(campaign: &str, f: &CampaignFacts, metric: TestMetric, card: &RateCard, now: Micros) -> CampaignReport {
    let currency = currency_of(f);
    let code = currency.code();

    // Per influencer.
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    ids.extend(f.members.keys().map(String::as_str));
    ids.extend(f.deliveries.keys().map(String::as_str));
    ids.extend(f.posts.keys().map(String::as_str));
    ids.extend(f.clicks.keys().map(|k| k.0.as_str()));
    ids.extend(f.sales.keys().map(|k| k.0.as_str()));
    ids.extend(f.cost.keys().map(|k| k.0.as_str()));
    let mut per: BTreeMap<&str, Totals> = ids
        .iter()
        .map(|id| {
            (
                *id,
                Totals {
                    influencers: 1,
                    ..Totals::default()
                },
            )
        })
        .collect();
    for (id, d) in &f.deliveries {
        if let Some(t) = per.get_mut(id.as_str()) {
            t.deliverables = d.deliverables;
            t.on_time = d.on_time;
            t.compliant = d.compliant;
        }
    }
    for (id, p) in &f.posts {
        if let Some(t) = per.get_mut(id.as_str()) {
            t.reach = p.reach;
            t.impressions = p.impressions;
            t.engagements = p.engagements;
        }
    }
    for ((id, _), n) in &f.clicks {
        if let Some(t) = per.get_mut(id.as_str()) {
            t.clicks += n;
        }
    }
    for ((id, _, cur), s) in &f.sales {
        if let (Some(t), true) = (per.get_mut(id.as_str()), cur == code) {
            t.conversions += s.conversions;
            t.redemptions += s.redemptions;
            t.revenue += s.net_minor;
        }
    }
    for ((id, kind, cur), minor) in &f.cost {
        if let (Some(t), true) = (per.get_mut(id.as_str()), cur == code) {
            match kind {
                1 => t.cash += minor,
                2 => t.gift_cards += minor,
                _ => t.products += minor,
            }
        }
    }

    // Groups.
    let member = |id: &str| f.members.get(id).cloned().unwrap_or_default();
    let mut campaign_totals = Totals::default();
    let mut segments: BTreeMap<String, Totals> = BTreeMap::new();
    let mut tiers: BTreeMap<i32, Totals> = BTreeMap::new();
    let mut influencers = Vec::with_capacity(per.len());
    let mut rows = Vec::new();
    for (id, t) in &per {
        let m = member(id);
        campaign_totals.add(t);
        tiers.entry(m.tier).or_default().add(t);
        if !m.segment.is_empty() {
            segments.entry(m.segment.clone()).or_default().add(t);
            rows.push(InfluencerTotals {
                influencer: (*id).to_owned(),
                segment: m.segment.clone(),
                clicks: t.clicks.max(0) as u64,
                conversions: t.conversions.max(0) as u64,
                impressions: t.impressions.max(0) as u64,
                engagements: t.engagements.max(0) as u64,
                revenue_minor: t.revenue,
                spend_minor: t.cost(),
            });
        }
        influencers.push(InfluencerFigures {
            influencer: format!("influencers/{id}"),
            segment: m.segment,
            tier: m.tier,
            figures: Some(t.figures(currency, card)),
        });
    }

    // The plan: the accepted shortlist members, by segment.
    let mut plan: BTreeMap<&str, PlannedSegment> = BTreeMap::new();
    for m in f.members.values().filter(|m| m.planned && !m.segment.is_empty()) {
        let p = plan.entry(m.segment.as_str()).or_insert_with(|| PlannedSegment {
            segment: m.segment.clone(),
            influencers: 0,
            spend_minor: 0,
        });
        p.influencers += 1;
        if m.planned_currency == code {
            p.spend_minor = p.spend_minor.saturating_add(m.planned_cost_minor);
        }
    }
    let data = CampaignData {
        rows,
        plan: plan.into_values().collect(),
    };
    let exponent = currency.minor_per_major().max(1).ilog10();
    let config = Config {
        currency: code.to_owned(),
        currency_exponent: exponent,
        ..Config::default()
    };
    let segment_test = segment_test(&data, &config, metric, currency);

    CampaignReport {
        campaign: campaign.to_owned(),
        currency_code: code.to_owned(),
        campaign_figures: Some(campaign_totals.figures(currency, card)),
        influencers,
        segments: segments
            .into_iter()
            .map(|(segment, t)| SegmentFigures {
                segment,
                figures: Some(t.figures(currency, card)),
            })
            .collect(),
        tiers: tiers
            .into_iter()
            .map(|(tier, t)| TierFigures {
                tier,
                figures: Some(t.figures(currency, card)),
            })
            .collect(),
        segment_test: Some(segment_test),
        rate_card_version: card.version.clone(),
        data_through_time: Some(timestamp(now)),
        create_time: Some(timestamp(now)),
        daily: daily(f, code),
    }
}

/// The audience test of one metric, as the report's message.
fn segment_test(data: &CampaignData, config: &Config, metric: TestMetric, currency: Currency) -> SegmentTest {
    let metric = if metric == TestMetric::Unspecified {
        TestMetric::ConversionsPerClick
    } else {
        metric
    };
    let wanted = stats_metric(metric);
    let mut out = SegmentTest {
        metric: metric as i32,
        alpha: config.alpha,
        ..SegmentTest::default()
    };
    // `analyze` fails only on settings out of range, and these are the defaults.
    let Ok(test) = analyze(data, config) else {
        out.sentence = "the audience test's settings are out of range".to_owned();
        return out;
    };
    let Some(result) = test.metrics.iter().find(|m| m.metric == wanted) else {
        return out;
    };
    out.rates = result
        .segments
        .iter()
        .map(|s| SegmentRate {
            segment: s.segment.clone(),
            influencers: s.influencers as i64,
            numerator: s.numerator,
            denominator: s.denominator,
            rate: s.estimate.map(|e| e.value).unwrap_or(if s.denominator > 0.0 {
                s.numerator / s.denominator
            } else {
                0.0
            }),
            ci_low: s.estimate.map_or(0.0, |e| e.ci_low),
            ci_high: s.estimate.map_or(0.0, |e| e.ci_high),
            probability_best: s.probability_best.unwrap_or(0.0),
        })
        .collect();
    // Only the pairs that were tested: a pair without enough data has no difference to show,
    // and its sentence says what it needs.
    out.differences = result
        .comparisons
        .iter()
        .filter_map(|c| {
            let d = c.difference?;
            Some(PairwiseDifference {
                segment_a: c.a.clone(),
                segment_b: c.b.clone(),
                difference: d.value,
                ci_low: d.ci_low,
                ci_high: d.ci_high,
                p_value: d.p_value,
                p_value_holm: c.p_adjusted.unwrap_or(1.0),
                significant: c.significant,
            })
        })
        .collect();
    out.allocation = test
        .allocation
        .segments
        .iter()
        .map(|a| SegmentAllocation {
            segment: a.segment.clone(),
            planned_influencers: i64::from(a.planned_influencers),
            actual_influencers: a.influencers as i64,
            planned_spend: Some(Money::new(currency, a.planned_spend_minor).to_proto()),
            actual_spend: Some(Money::new(currency, a.spend_minor).to_proto()),
            as_planned: !test
                .allocation
                .findings
                .iter()
                .any(|f| f.segment.as_deref() == Some(a.segment.as_str())),
        })
        .collect();
    out.enough_data = result.tested > 0;
    out.more_clicks_per_segment = result
        .segments
        .iter()
        .filter_map(|s| s.more_needed)
        .max()
        .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
    out.sentence = headline(result);
    out
}

/// The one sentence a report leads with: the most significant difference; else the closest
/// call among tested pairs; else what the data still needs.
fn headline(result: &chorus_stats::MetricResult) -> String {
    let by_p = |c: &&chorus_stats::Comparison| c.p_adjusted.unwrap_or(f64::INFINITY);
    let best = |it: Vec<&chorus_stats::Comparison>| {
        it.into_iter()
            .min_by(|a, b| by_p(a).total_cmp(&by_p(b)))
            .map(|c| c.sentence.clone())
    };
    let significant: Vec<_> = result.comparisons.iter().filter(|c| c.significant).collect();
    let tested: Vec<_> = result.comparisons.iter().filter(|c| c.difference.is_some()).collect();
    best(significant)
        .or_else(|| best(tested))
        .or_else(|| result.comparisons.first().map(|c| c.sentence.clone()))
        .unwrap_or_else(|| match result.segments.len() {
            0 => "no segments yet: nothing to compare".to_owned(),
            _ => format!(
                "only {} has data so far: nothing to compare it with",
                result.segments[0].segment
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rate_card_parses_and_prices_half_up() {
        let card = RateCard::parse(DEFAULT_RATE_CARD).unwrap();
        assert_eq!(card, RateCard::shipped());
        assert!(!card.version.is_empty());
        // 10,500 impressions at $8.00 CPM = $84.00, 300 engagements at $0.10, 40 clicks at $0.60.
        assert_eq!(card.value("USD", 10_500, 300, 40), Some(8_400 + 3_000 + 2_400));
        // 1 impression: 0.8 cents rounds to 1.
        assert_eq!(card.value("USD", 1, 0, 0), Some(1));
        assert_eq!(card.value("JPY", 1_000, 0, 0), None);
        assert!(RateCard::parse("version = \"\"\n[currencies]\n").is_err());
        assert!(
            RateCard::parse(
                "version = \"x\"\n[currencies.ZZZ]\nper_thousand_impressions = 1\nper_engagement = 1\nper_click = 1\n"
            )
            .is_err()
        );
    }

    #[test]
    fn divisions_round_half_away_from_zero() {
        assert_eq!(divide(10, 1, 4), 3);
        assert_eq!(divide(-10, 1, 4), -3);
        assert_eq!(divide(1_000, 1_000, 3), 333_333);
        assert_eq!(divide(5, 1, 10), 1);
    }
}
