//! What a brief asks, compiled against one index: its filters turned into the numbers the
//! index holds ([`Plan`]), and the hard filters in the order they apply ([`FILTERS`]).

use std::cmp::Ordering;
use std::collections::HashSet;

use chorus_catalog::currency;
use chorus_catalog::niche::NICHES;
use chorus_proto::matching::{Brief, Objective};
use chorus_proto::registry::Verdict;
use chorus_proto::types::{Money, Tier};

use crate::domain::index::{Entry, Hot, Index, is_active, niche_bit, parse_id};

/// Hard filters in the order they apply; an influencer counts against the first it fails.
pub const FILTERS: [&str; 14] = [
    "status",
    "consent",
    "excluded",
    "exclusivity",
    "platform",
    "tier",
    "location",
    "language",
    "niche",
    "engagement",
    "min_quality_score",
    "vetting",
    "compensation",
    "segment",
];

/// A brief location as index numbers; `u32::MAX` for a place nobody in the index has.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place {
    pub(super) country: u32,
    pub(super) region: Option<u32>,
    pub(super) city: Option<u32>,
}

#[derive(Debug, Clone)]
pub(super) struct SegmentRule {
    pub(super) label: String,
    pub(super) city: Option<u32>,
    pub(super) country: Option<u32>,
    pub(super) niche: u32,
    pub(super) age_bucket: u8,
}

/// Knobs that are configuration rather than brief.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Share of engagements from real followers that convert, for sales objectives.
    pub conversion_rate: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { conversion_rate: 0.02 }
    }
}

/// A brief compiled against one index.
#[derive(Debug)]
pub struct Plan<'a> {
    pub(super) index: &'a Index,
    pub(super) platforms: u16,
    pub(super) tiers: u8,
    pub(super) places: Vec<Place>,
    pub(super) languages: Option<HashSet<u32>>,
    pub(super) niches: Vec<(u32, f64, &'static str)>,
    pub(super) niche_mask: u32,
    pub(super) total_weight: f64,
    pub(super) min_engagement: f32,
    pub(super) max_engagement: f32,
    pub(super) min_quality: Option<f32>,
    pub(super) compensation: u8,
    pub(super) excluded: HashSet<u128>,
    pub(super) categories: Vec<String>,
    pub(super) now_micros: i64,
    pub(super) deliverables: Vec<(u8, i32)>,
    pub(super) currency: u32,
    pub(super) currency_code: String,
    pub(super) minor_per_major: f64,
    pub(super) ages: Vec<u8>,
    pub(super) countries: Vec<u32>,
    pub(super) segments: Vec<SegmentRule>,
    pub(super) audience_test: bool,
    pub(super) sales: bool,
    pub(super) settings: Settings,
}

impl<'a> Plan<'a> {
    /// Compiles a valid brief (see `brief::check_campaign`). `rejected` are people the brand
    /// turned down for this campaign.
    pub fn new(
        index: &'a Index,
        brief: &Brief,
        objective: Objective,
        rejected: &HashSet<u128>,
        settings: Settings,
        now_micros: i64,
    ) -> Plan<'a> {
        let platforms = brief
            .deliverables
            .iter()
            .fold(0u16, |m, d| m | (1 << (d.platform & 15)));
        let tiers = if brief.tiers.is_empty() {
            1 << Tier::Nano as u8
        } else {
            brief.tiers.iter().fold(0u8, |m, t| m | (1 << (*t as u8 & 7)))
        };
        let place = |s: &str| index.places.get(s).unwrap_or(u32::MAX);
        let places = brief
            .locations
            .iter()
            .map(|l| Place {
                country: place(&l.country_code.to_uppercase()),
                region: (!l.region.is_empty()).then(|| place(&l.region.to_lowercase())),
                city: (!l.city.is_empty()).then(|| place(&l.city.to_lowercase())),
            })
            .collect();
        let languages = (!brief.languages.is_empty()).then(|| {
            let wanted: Vec<String> = brief.languages.iter().map(|l| l.to_lowercase()).collect();
            index
                .languages
                .iter()
                .filter(|(_, tag)| {
                    wanted
                        .iter()
                        .any(|w| tag == w || (!w.contains('-') && tag.starts_with(&format!("{w}-"))))
                })
                .map(|(id, _)| id)
                .collect()
        });
        let niches: Vec<(u32, f64, &'static str)> = brief
            .niches
            .iter()
            .filter_map(|n| {
                let i = NICHES.iter().position(|(id, _)| *id == n.niche)?;
                let weight = if n.weight == 0.0 { 1.0 } else { n.weight };
                Some((1u32 << i, weight, NICHES[i].0))
            })
            .collect();
        let currency_code = brief
            .budget
            .as_ref()
            .map(|m| m.currency_code.clone())
            .unwrap_or_default();
        let mut excluded: HashSet<u128> = rejected.clone();
        if let Some(x) = &brief.exclusions {
            excluded.extend(
                x.influencers
                    .iter()
                    .filter_map(|n| n.strip_prefix("influencers/").and_then(parse_id)),
            );
        }
        Plan {
            index,
            platforms,
            tiers,
            places,
            languages,
            niche_mask: niches.iter().fold(0, |m, n| m | n.0),
            total_weight: niches.iter().map(|n| n.1).sum(),
            niches,
            min_engagement: brief.min_engagement_rate.map_or(f32::NEG_INFINITY, |r| r as f32),
            max_engagement: brief.max_engagement_rate.map_or(f32::INFINITY, |r| r as f32),
            min_quality: brief.min_quality_score.map(|q| q as f32),
            compensation: brief
                .compensation_offered
                .iter()
                .fold(0u8, |m, k| m | (1 << (*k as u8 & 7))),
            excluded,
            categories: brief
                .exclusions
                .as_ref()
                .map(|x| x.exclusivity_categories.clone())
                .unwrap_or_default(),
            now_micros,
            deliverables: brief.deliverables.iter().map(|d| (d.kind as u8, d.count)).collect(),
            currency: index.currencies.get(&currency_code).unwrap_or(0),
            minor_per_major: currency::minor_per_major(&currency_code) as f64,
            currency_code,
            ages: brief
                .audience
                .as_ref()
                .map(|a| a.age_buckets.iter().map(|b| *b as u8).collect())
                .unwrap_or_default(),
            countries: brief
                .audience
                .as_ref()
                .map(|a| a.countries.iter().map(|c| place(&c.to_uppercase())).collect())
                .unwrap_or_default(),
            segments: brief
                .segments
                .iter()
                .map(|s| SegmentRule {
                    label: s.label.clone(),
                    city: (!s.city.is_empty()).then(|| place(&s.city.to_lowercase())),
                    country: (!s.country_code.is_empty()).then(|| place(&s.country_code.to_uppercase())),
                    niche: niche_bit(&s.niche).unwrap_or(0),
                    age_bucket: s.age_bucket as u8,
                })
                .collect(),
            audience_test: objective == Objective::AudienceTest,
            sales: objective == Objective::Sales,
            settings,
        }
    }

    /// The first filter `e` fails (its index in [`FILTERS`]), or the account the match is
    /// about and the segment.
    pub(super) fn filter(&self, e: &Entry) -> Result<(Hot, Option<u16>), usize> {
        if !is_active(e.status) {
            return Err(0);
        }
        if !e.contact_allowed {
            return Err(1);
        }
        if !self.excluded.is_empty() && self.excluded.contains(&e.id) {
            return Err(2);
        }
        if !self.categories.is_empty() && self.index.is_exclusive(e.id, &self.categories, self.now_micros) {
            return Err(3);
        }
        // Every deliverable is owed by every person: an account on each platform named.
        if e.platforms & self.platforms != self.platforms {
            return Err(4);
        }
        let hot = if self.platforms & (1 << e.hot.platform) != 0 {
            e.hot
        } else {
            e.account_on(self.platforms).map(Hot::from).ok_or(4usize)?
        };
        if self.tiers & (1 << hot.tier) == 0 {
            return Err(5);
        }
        if !self.places.is_empty() && self.place_precision(e) == 0.0 {
            return Err(6);
        }
        if let Some(langs) = &self.languages
            && !e.languages.iter().any(|l| langs.contains(l))
        {
            return Err(7);
        }
        if self.niche_mask != 0 && e.niches & self.niche_mask == 0 {
            return Err(8);
        }
        if (self.min_engagement.is_finite() || self.max_engagement.is_finite())
            && !(hot.engagement >= self.min_engagement && hot.engagement <= self.max_engagement)
        {
            return Err(9);
        }
        if let Some(q) = self.min_quality
            // Unvetted (NaN) fails too.
            && hot.quality.partial_cmp(&q).is_none_or(Ordering::is_lt)
        {
            return Err(10);
        }
        if hot.flagged || hot.verdict == Verdict::Reject as u8 {
            return Err(11);
        }
        if e.compensation & self.compensation == 0 {
            return Err(12);
        }
        let segment = self.segment_of(e);
        if self.audience_test && segment.is_none() {
            return Err(13);
        }
        Ok((hot, segment))
    }

    /// How precisely `e` matches the brief's best location: city 1, region 0.8, country 0.6;
    /// 0 when it matches none.
    pub(super) fn place_precision(&self, e: &Entry) -> f64 {
        let mut best = 0.0f64;
        for p in &self.places {
            if p.country != e.country || p.region.is_some_and(|r| r != e.region) || p.city.is_some_and(|c| c != e.city)
            {
                continue;
            }
            let precision = if p.city.is_some() {
                1.0
            } else if p.region.is_some() {
                0.8
            } else {
                0.6
            };
            best = best.max(precision);
        }
        best
    }

    pub(super) fn segment_of(&self, e: &Entry) -> Option<u16> {
        self.segments
            .iter()
            .position(|s| {
                s.city.is_none_or(|c| c == e.city)
                    && s.country.is_none_or(|c| c == e.country)
                    && (s.niche == 0 || e.niches & s.niche != 0)
                    && (s.age_bucket == 0 || e.audience.as_ref().is_some_and(|a| a.largest_bucket() == s.age_bucket))
            })
            .map(|i| i as u16)
    }

    /// Whether selection maximises conversions rather than engagements.
    pub fn sales(&self) -> bool {
        self.sales
    }

    pub fn segment_labels(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.label.clone()).collect()
    }

    pub fn currency_code(&self) -> &str {
        &self.currency_code
    }

    pub fn money(&self, amount_minor: i64) -> Money {
        Money {
            currency_code: self.currency_code.clone(),
            amount_minor,
        }
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::registry::{InfluencerStatus, VettingReport};
    use chorus_proto::types::CompensationKind;

    use super::super::tests_support::{brief, index, plan};
    use super::*;
    use crate::domain::index::format_id;
    use crate::domain::index::tests::{influencer, metrics};
    #[test]
    fn each_hard_filter_counts_what_it_removes() {
        let mut ix = index();
        let mut blocked = influencer(10, "Austin", 3_000, 10);
        blocked.status = InfluencerStatus::Blocked as i32;
        ix.upsert(&blocked);
        ix.upsert(&influencer(11, "Houston", 3_000, 10)); // location
        let mut big = influencer(12, "Austin", 50_000, 10); // tier: micro
        big.accounts[0].metrics = Some(metrics(50_000, 0.03, 1));
        ix.upsert(&big);
        let mut cash_only = influencer(13, "Austin", 3_000, 10);
        cash_only.compensation_accepted = vec![CompensationKind::GiftCard as i32];
        ix.upsert(&cash_only);
        let mut faker = influencer(14, "Austin", 3_000, 10);
        faker.compensation_accepted = vec![CompensationKind::Cash as i32];
        ix.upsert(&faker);
        ix.vetting(
            &faker.name,
            &VettingReport {
                platform: faker.accounts[0].platform,
                handle: faker.accounts[0].handle.clone(),
                verdict: Verdict::Reject as i32,
                quality_score: 20.0,
                ..Default::default()
            },
        );
        let r = plan(&ix, &brief()).run(100, 1);
        assert_eq!(r.considered, 11);
        assert_eq!(r.matched, 6);
        let counts: Vec<(String, i64)> = r
            .filter_counts()
            .into_iter()
            .filter(|c| c.removed_count > 0)
            .map(|c| (c.filter, c.removed_count))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("status".to_owned(), 1),
                ("tier".to_owned(), 1),
                ("location".to_owned(), 1),
                ("vetting".to_owned(), 1),
                ("compensation".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn rejected_excluded_and_exclusive_people_are_left_out() {
        let mut ix = index();
        let mut b = brief();
        b.exclusions = Some(chorus_proto::matching::Exclusions {
            influencers: vec![format!("influencers/{}", format_id(1))],
            exclusivity_categories: vec!["pet-food".into()],
        });
        ix.set_exclusive(2, "pet-food", 1_000);
        let rejected: HashSet<u128> = [3u128].into();
        let p = Plan::new(&ix, &b, Objective::Awareness, &rejected, Settings::default(), 10);
        let r = p.run(10, 1);
        assert_eq!(r.removed[2], 2, "excluded: one by the brief, one rejected");
        assert_eq!(r.removed[3], 1, "exclusivity");
        assert!(r.top.iter().all(|s| ![1u128, 2, 3].contains(&s.id)));
    }
}
