//! The score: 0..100, six parts each 0..1 times its weight ([`PARTS`]), minus a penalty for
//! feeds saturated with sponsored posts; and what a candidate costs and is expected to bring.
//! Numbers only: the sentences are `explain`'s.

use std::cmp::Ordering;

use chorus_catalog::norms::engagement_norm;
use chorus_proto::matching::Candidate;
use chorus_proto::types::{DeliverableKind, Tier};

use super::plan::Plan;
use crate::domain::index::{Entry, Hot};

/// The parts of the score and their weights (they add up to 1).
pub const PARTS: [(&str, f64); 6] = [
    (NICHE_FIT, 0.25),
    (LOCATION, 0.10),
    (ENGAGEMENT, 0.20),
    (AUDIENCE_QUALITY, 0.15),
    (DEMOGRAPHIC_FIT, 0.10),
    (COST_EFFICIENCY, 0.20),
];
pub const NICHE_FIT: &str = "niche_fit";
pub const LOCATION: &str = "location";
pub const ENGAGEMENT: &str = "engagement";
pub const AUDIENCE_QUALITY: &str = "audience_quality";
pub const DEMOGRAPHIC_FIT: &str = "demographic_fit";
pub const COST_EFFICIENCY: &str = "cost_efficiency";
pub const SPONSORED_SATURATION: &str = "sponsored_saturation";
/// Most points the sponsored-saturation penalty takes off.
pub const SPONSORED_PENALTY_POINTS: f64 = 15.0;
/// Sponsored share of recent posts that costs nothing, and the share that costs the whole
/// penalty (DOMAIN.md: brands avoid feeds "hawking products on every other post").
pub const SPONSORED_FREE: f64 = 0.2;
pub const SPONSORED_FULL: f64 = 0.6;
/// Engagements per unit of money (a dollar, a euro) that score 0.5 on cost efficiency.
pub const EFFICIENCY_MIDPOINT: f64 = 2.0;

/// Engagements a deliverable brings relative to a feed post, and its price relative to a
/// feed post when the rate card has no entry (DOMAIN.md, Klear 2019: $100 post, $114 video,
/// $43 story).
fn kind_factors(kind: u8) -> (f64, f64) {
    match DeliverableKind::try_from(i32::from(kind)) {
        Ok(DeliverableKind::Story) => (0.3, 0.43),
        Ok(DeliverableKind::Video) => (1.2, 1.14),
        Ok(DeliverableKind::ShortVideo) => (1.2, 1.0),
        Ok(DeliverableKind::BlogPost) => (0.5, 1.5),
        Ok(DeliverableKind::LiveStream) => (0.5, 1.5),
        _ => (1.0, 1.0),
    }
}

/// Market estimate of a feed post in minor units: about $10 per 1,000 followers, at least
/// $25 (DOMAIN.md), read as major units of the budget's currency (there are no exchange
/// rates here: 10 per 1,000 followers is ¥10 in a yen brief, which is why a rate card in the
/// brief's currency always wins over the estimate).
fn estimated_post_price(followers: u32, minor_per_major: f64) -> f64 {
    (f64::from(followers) / 1_000.0 * 10.0).max(25.0) * minor_per_major
}

fn ramp(x: f64, zero_at: f64, one_at: f64) -> f64 {
    if (one_at - zero_at).abs() < f64::EPSILON {
        return if x >= one_at { 1.0 } else { 0.0 };
    }
    ((x - zero_at) / (one_at - zero_at)).clamp(0.0, 1.0)
}

/// The numbers behind one candidate's score.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub slot: u32,
    pub id: u128,
    pub score: f64,
    /// Cost of the deliverables, minor units of the budget's currency.
    pub cost: i64,
    pub cost_estimated: bool,
    pub engagements: f64,
    pub conversions: f64,
    /// Index of the segment, when the brief has segments and the candidate is in one.
    pub segment: Option<u16>,
    /// The best-fitting niche (bit), for the niche diversity cap.
    pub niche: u32,
    pub city: u32,
    pub(super) parts: [f64; 6],
    pub(super) penalty: f64,
    pub(super) hot: Hot,
}

impl Scored {
    /// Best first; ties by id, so rankings are deterministic.
    pub fn rank_cmp(&self, other: &Scored) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

impl Plan<'_> {
    pub(super) fn score(&self, slot: u32, e: &Entry, hot: Hot, segment: Option<u16>) -> Scored {
        // Niche fit: the share of the brief's niche weight the candidate covers.
        let (niche, best_niche) = if self.niches.is_empty() {
            (1.0, lowest_bit(e.niches))
        } else {
            let mut sum = 0.0;
            let mut best = (0u32, 0.0f64);
            for (bit, w, _) in &self.niches {
                if e.niches & bit != 0 {
                    sum += w;
                    if *w > best.1 {
                        best = (*bit, *w);
                    }
                }
            }
            ((sum / self.total_weight).min(1.0), best.0)
        };
        let location = if self.places.is_empty() {
            1.0
        } else {
            self.place_precision(e)
        };
        let engagement = engagement_fit(hot.engagement, hot.tier);
        let quality = if hot.quality.is_nan() {
            0.5
        } else {
            f64::from(hot.quality) / 100.0
        };
        let demographic = self.demographic_fit(e);
        // Cost and what it buys.
        let mut cost = 0f64;
        let mut estimated = false;
        let mut posts = 0f64;
        for (kind, count) in &self.deliverables {
            let (reach, price_factor) = kind_factors(*kind);
            let price = match e.rate(*kind, self.currency) {
                Some(p) if self.currency != 0 => p as f64,
                _ => {
                    estimated = true;
                    estimated_post_price(hot.followers, self.minor_per_major) * price_factor
                }
            };
            cost += price * f64::from(*count);
            posts += reach * f64::from(*count);
        }
        let rate = if hot.engagement.is_nan() {
            0.0
        } else {
            f64::from(hot.engagement)
        };
        let engagements = f64::from(hot.followers) * rate * posts;
        // Someone who asks nothing (product or gift only, a zero rate card) is as efficient as
        // can be, provided they bring engagements at all.
        let efficiency = if cost > 0.0 {
            let per_unit = engagements / (cost / self.minor_per_major);
            per_unit / (per_unit + EFFICIENCY_MIDPOINT)
        } else if engagements > 0.0 {
            1.0
        } else {
            0.0
        };
        let conversions = engagements * quality * self.settings.conversion_rate;
        let parts = [niche, location, engagement, quality, demographic, efficiency];
        let penalty = ramp(f64::from(hot.sponsored), SPONSORED_FREE, SPONSORED_FULL);
        let total: f64 =
            parts.iter().zip(PARTS).map(|(v, (_, w))| v * w).sum::<f64>() * 100.0 - penalty * SPONSORED_PENALTY_POINTS;
        // A figure that is not a number must not rank first (total_cmp puts NaN above 100).
        let total = if total.is_finite() { total } else { 0.0 };
        Scored {
            slot,
            id: e.id,
            score: (total.clamp(0.0, 100.0) * 100.0).round() / 100.0,
            cost: cost.round() as i64,
            cost_estimated: estimated,
            engagements,
            conversions,
            segment,
            niche: best_niche,
            city: e.city,
            parts,
            penalty,
            hot,
        }
    }

    /// Share of the audience in the target age buckets and countries, 0.5 of the audience
    /// counting as a full fit; 0.5 when the audience is unknown, 1 without a target.
    fn demographic_fit(&self, e: &Entry) -> f64 {
        if self.ages.is_empty() && self.countries.is_empty() {
            return 1.0;
        }
        let Some(a) = &e.audience else { return 0.5 };
        let mut fits = Vec::with_capacity(2);
        if !self.ages.is_empty() {
            let share: f32 = self
                .ages
                .iter()
                .map(|b| a.ages.get(*b as usize).copied().unwrap_or(0.0))
                .sum();
            fits.push((f64::from(share) / 0.5).min(1.0));
        }
        if !self.countries.is_empty() {
            let share: f32 = a
                .countries
                .iter()
                .filter(|(c, _)| self.countries.contains(c))
                .map(|(_, s)| s)
                .sum();
            fits.push((f64::from(share) / 0.5).min(1.0));
        }
        fits.iter().sum::<f64>() / fits.len() as f64
    }

    /// Scores one influencer against the brief whatever the filters say (for shortlist
    /// members the brand picked by hand); `None` when not in the index.
    pub fn assess(&self, id: u128) -> Option<Candidate> {
        let slot = self.index.slot_of(id)?;
        let e = &self.index.slots()[slot as usize];
        let hot = if self.platforms & (1 << e.hot.platform) != 0 {
            e.hot
        } else {
            e.account_on(self.platforms).map(Hot::from).unwrap_or(e.hot)
        };
        let s = self.score(slot, e, hot, self.segment_of(e));
        Some(self.candidate(&s))
    }
}

/// Engagement inside the tier's norm scores 1; below it the score falls to 0 at a quarter of
/// the lower norm (followers who never engage); above it, to 0.3 at three times the upper norm
/// (pods). No figures score 0.
pub fn engagement_fit(rate: f32, tier: u8) -> f64 {
    if rate.is_nan() {
        return 0.0;
    }
    let rate = f64::from(rate);
    let (low, high) = engagement_norm(Tier::try_from(i32::from(tier)).unwrap_or(Tier::Unspecified));
    if rate < low {
        ramp(rate, low / 4.0, low)
    } else if rate > high {
        1.0 - 0.7 * ramp(rate, high, 3.0 * high)
    } else {
        1.0
    }
}

fn lowest_bit(mask: u32) -> u32 {
    mask & mask.wrapping_neg()
}

#[cfg(test)]
mod tests {

    use chorus_proto::registry::{AudienceDemographics, RateCardEntry};
    use chorus_proto::types::{CompensationKind, Money};

    use super::super::tests_support::{brief, plan};
    use super::*;
    use crate::domain::index::Index;
    use crate::domain::index::tests::influencer;
    #[test]
    fn parts_weights_add_up_to_one() {
        let sum: f64 = PARTS.iter().map(|p| p.1).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_city_match_outranks_a_country_match_and_unvetted_is_middling() {
        let mut b = brief();
        b.locations.push(chorus_proto::types::Location {
            country_code: "US".into(),
            ..Default::default()
        });
        // Everyone accepts cash here.
        let mut ix2 = Index::new();
        for (n, city) in [(1u128, "Austin"), (2, "Houston")] {
            let mut inf = influencer(n, city, 5_000, 1);
            inf.compensation_accepted = vec![CompensationKind::Cash as i32];
            ix2.upsert(&inf);
        }
        b.compensation_offered = vec![CompensationKind::Cash as i32];
        let p = plan(&ix2, &b);
        let r = p.run(10, 1);
        assert_eq!(r.top.len(), 2);
        assert_eq!(r.top[0].id, 1, "Austin, matched at city level, first");
        let c = p.candidate(&r.top[1]);
        let loc = c.breakdown.iter().find(|p| p.part == LOCATION).unwrap();
        assert_eq!(loc.value, 0.6);
        let q = c.breakdown.iter().find(|p| p.part == AUDIENCE_QUALITY).unwrap();
        assert_eq!(q.value, 0.5);
        assert!(q.explanation.contains("Not vetted"));
    }

    #[test]
    fn a_free_rate_card_is_the_most_efficient_and_a_yen_brief_estimates_in_yen() {
        let mut ix = Index::new();
        // Two people alike but for price: one asks nothing (product only), one $50 a piece.
        for (n, price) in [(1u128, 0i64), (2, 5_000)] {
            let mut inf = influencer(n, "Austin", 5_000, 1);
            inf.compensation_accepted = vec![CompensationKind::Product as i32];
            inf.rate_card = [DeliverableKind::FeedPost, DeliverableKind::Story]
                .map(|kind| RateCardEntry {
                    kind: kind as i32,
                    price: Some(Money {
                        currency_code: "USD".into(),
                        amount_minor: price,
                    }),
                })
                .to_vec();
            ix.upsert(&inf);
        }
        let p = plan(&ix, &brief());
        let r = p.run(2, 1);
        assert_eq!(r.top.len(), 2);
        let (free, paid) = (&r.top[0], &r.top[1]);
        assert_eq!((free.cost, paid.cost), (0, 10_000), "the free one ranks first");
        assert!(free.score > paid.score);
        let c = p.candidate(free);
        let part = c.breakdown.iter().find(|b| b.part == COST_EFFICIENCY).unwrap();
        assert_eq!(part.value, 1.0);
        assert!(part.explanation.contains("for no cash"), "{}", part.explanation);

        // In a yen brief neither has a yen rate card: the estimate is 10 per 1,000 followers
        // (at least 25) in yen, which has no minor unit, times 1 + 0.43 for the story.
        let mut b = brief();
        b.budget = Some(Money {
            currency_code: "JPY".into(),
            amount_minor: 1_000_000,
        });
        let p = plan(&ix, &b);
        let top = p.run(1, 1).top;
        assert!(top[0].cost_estimated);
        assert_eq!(top[0].cost, (50.0f64 * 1.43).round() as i64);
        let c = p.candidate(&top[0]);
        assert!(c.reason.contains("72 JPY"), "{}", c.reason);
    }

    #[test]
    fn engagement_fit_follows_the_tier_norm() {
        let nano = Tier::Nano as u8;
        assert_eq!(engagement_fit(0.05, nano), 1.0);
        assert_eq!(engagement_fit(0.0075, nano), 0.0);
        assert!((engagement_fit(0.30, nano) - 0.3).abs() < 1e-6);
        assert_eq!(engagement_fit(f32::NAN, nano), 0.0);
    }

    #[test]
    fn demographic_fit_reads_the_audience_when_known() {
        let mut ix = Index::new();
        let mut inf = influencer(1, "Austin", 5_000, 1);
        inf.compensation_accepted = vec![CompensationKind::Cash as i32];
        inf.audience = Some(AudienceDemographics {
            age_buckets: vec![chorus_proto::registry::AgeBucketShare {
                bucket: chorus_proto::registry::AgeBucket::AgeBucket2534 as i32,
                share: 0.3,
            }],
            ..Default::default()
        });
        ix.upsert(&inf);
        let mut b = brief();
        b.audience = Some(chorus_proto::matching::AudienceTarget {
            age_buckets: vec![chorus_proto::registry::AgeBucket::AgeBucket2534 as i32],
            countries: vec![],
        });
        let p = plan(&ix, &b);
        let e = ix.get(1).unwrap();
        assert!((p.demographic_fit(e) - 0.6).abs() < 1e-6);
    }
}
