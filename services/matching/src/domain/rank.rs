//! Ranking: a brief becomes a [`Plan`] (its filters turned into numbers the index holds), the
//! plan scans the index once, counts what each hard filter removes, and scores the rest.
//!
//! The score is 0..100: six parts, each 0..1 times its weight ([`PARTS`]), minus a penalty for
//! feeds saturated with sponsored posts. The scan computes numbers only; sentences are written
//! for the candidates returned.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use chorus_catalog::currency;
use chorus_catalog::evidence::score_with_evidence;
use chorus_catalog::niche::NICHES;
use chorus_catalog::norms::engagement_norm;
use chorus_proto::matching::{Brief, Candidate, FilterCount, Objective, ScorePart};
use chorus_proto::registry::Verdict;
use chorus_proto::types::{DeliverableKind, Money, Platform, Tier};

use super::index::{Entry, Hot, Index, age_bucket_name, format_id, is_active, parse_id};

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

/// Most threads one scan uses, and the fewest entries worth a thread of their own.
const MAX_SCAN_THREADS: usize = 8;
const MIN_SLICE: usize = 50_000;

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

/// A brief location as index numbers; `u32::MAX` for a place nobody in the index has.
#[derive(Debug, Clone, Copy)]
struct Place {
    country: u32,
    region: Option<u32>,
    city: Option<u32>,
}

#[derive(Debug, Clone)]
struct SegmentRule {
    label: String,
    city: Option<u32>,
    country: Option<u32>,
    niche: u32,
    age_bucket: u8,
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
    index: &'a Index,
    platforms: u16,
    tiers: u8,
    places: Vec<Place>,
    languages: Option<HashSet<u32>>,
    niches: Vec<(u32, f64, &'static str)>,
    niche_mask: u32,
    total_weight: f64,
    min_engagement: f32,
    max_engagement: f32,
    min_quality: Option<f32>,
    compensation: u8,
    excluded: HashSet<u128>,
    categories: Vec<String>,
    now_micros: i64,
    deliverables: Vec<(u8, i32)>,
    currency: u32,
    currency_code: String,
    minor_per_major: f64,
    ages: Vec<u8>,
    countries: Vec<u32>,
    segments: Vec<SegmentRule>,
    audience_test: bool,
    sales: bool,
    settings: Settings,
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
    parts: [f64; 6],
    penalty: f64,
    hot: Hot,
}

impl Scored {
    /// Best first; ties by id, so rankings are deterministic.
    pub fn rank_cmp(&self, other: &Scored) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

/// Ordered so a max-heap's top is the worst kept candidate.
struct Worst(Scored);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// What a scan found.
#[derive(Debug)]
pub struct Ranking {
    /// The best candidates, best first.
    pub top: Vec<Scored>,
    pub matched: u64,
    pub considered: u64,
    /// Removed per filter, in [`FILTERS`] order.
    pub removed: [u64; FILTERS.len()],
}

impl Ranking {
    pub fn filter_counts(&self) -> Vec<FilterCount> {
        FILTERS
            .iter()
            .zip(self.removed)
            .map(|(f, n)| FilterCount {
                filter: (*f).to_owned(),
                removed_count: n as i64,
            })
            .collect()
    }
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
                    niche: super::index::niche_bit(&s.niche).unwrap_or(0),
                    age_bucket: s.age_bucket as u8,
                })
                .collect(),
            audience_test: objective == Objective::AudienceTest,
            sales: objective == Objective::Sales,
            settings,
        }
    }

    /// Scans the whole index; keeps the best `keep`. A large index is scanned in parallel
    /// slices, one per core, whose results merge exactly as one scan's would.
    pub fn run(&self, keep: usize) -> Ranking {
        let slots = self.index.slots().len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SCAN_THREADS)
            .min(slots / MIN_SLICE)
            .max(1);
        let mut parts: Vec<Ranking> = if threads == 1 {
            vec![self.scan(0..slots, keep)]
        } else {
            let per = slots.div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = (t * per)..((t + 1) * per).min(slots);
                        scope.spawn(move || self.scan(range, keep))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut all = parts.pop().unwrap_or_else(|| self.scan(0..0, keep));
        for p in parts {
            all.matched += p.matched;
            all.considered += p.considered;
            for (a, b) in all.removed.iter_mut().zip(p.removed) {
                *a += b;
            }
            all.top.extend(p.top);
        }
        all.top.sort_by(Scored::rank_cmp);
        all.top.truncate(keep);
        all
    }

    /// One slice of the scan.
    fn scan(&self, range: std::ops::Range<usize>, keep: usize) -> Ranking {
        let mut removed = [0u64; FILTERS.len()];
        let mut considered = 0u64;
        let mut matched = 0u64;
        let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(keep.min(1 << 16) + 1);
        let start = range.start;
        for (i, e) in self.index.slots()[range].iter().enumerate() {
            if !e.live {
                continue;
            }
            considered += 1;
            let (hot, segment) = match self.filter(e) {
                Ok(found) => found,
                Err(f) => {
                    removed[f] += 1;
                    continue;
                }
            };
            matched += 1;
            let s = self.score((start + i) as u32, e, hot, segment);
            if heap.len() < keep {
                heap.push(Worst(s));
            } else if let Some(worst) = heap.peek()
                && s.rank_cmp(&worst.0) == Ordering::Less
            {
                heap.pop();
                heap.push(Worst(s));
            }
        }
        let mut top: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
        top.sort_by(Scored::rank_cmp);
        Ranking {
            top,
            matched,
            considered,
            removed,
        }
    }

    /// The first filter `e` fails (its index in [`FILTERS`]), or the account the match is
    /// about and the segment.
    fn filter(&self, e: &Entry) -> Result<(Hot, Option<u16>), usize> {
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
    fn place_precision(&self, e: &Entry) -> f64 {
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

    fn segment_of(&self, e: &Entry) -> Option<u16> {
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

    fn score(&self, slot: u32, e: &Entry, hot: Hot, segment: Option<u16>) -> Scored {
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

    /// The API's candidates for `scored`, in order; a long list is written on every core.
    pub fn candidates(&self, scored: &[Scored]) -> Vec<Candidate> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(MAX_SCAN_THREADS);
        if threads == 1 || scored.len() < 64 {
            return scored.iter().map(|s| self.candidate(s)).collect();
        }
        let per = scored.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = scored
                .chunks(per)
                .map(|chunk| scope.spawn(move || chunk.iter().map(|s| self.candidate(s)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// A scored candidate as the API returns it, with the breakdown and a reason.
    pub fn candidate(&self, s: &Scored) -> Candidate {
        let e = &self.index.slots()[s.slot as usize];
        let account = e
            .accounts
            .iter()
            .filter(|a| self.platforms & (1 << a.platform) != 0)
            .max_by_key(|a| a.followers);
        let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
        let mut breakdown: Vec<ScorePart> = PARTS
            .iter()
            .zip(s.parts)
            .map(|((part, weight), value)| ScorePart {
                part: (*part).to_owned(),
                value: round3(value),
                weight: *weight,
                contribution: round2(value * weight * 100.0),
                explanation: self.explain(part, value, e, s),
            })
            .collect();
        breakdown.push(ScorePart {
            part: SPONSORED_SATURATION.to_owned(),
            value: round3(s.penalty),
            weight: SPONSORED_PENALTY_POINTS / 100.0,
            contribution: -round2(s.penalty * SPONSORED_PENALTY_POINTS),
            explanation: format!(
                "{:.0}% of recent posts sponsored (no penalty up to {:.0}%, full at {:.0}%).",
                f64::from(s.hot.sponsored) * 100.0,
                SPONSORED_FREE * 100.0,
                SPONSORED_FULL * 100.0
            ),
        });
        let reason = self.reason(e, s, &breakdown);
        Candidate {
            influencer: format!("influencers/{}", format_id(e.id)),
            display_name: e.display_name.to_string(),
            platform: i32::from(s.hot.platform),
            handle: account.map(|a| a.handle.to_string()).unwrap_or_default(),
            followers: i64::from(s.hot.followers),
            tier: tier as i32,
            city: title(self.index.places.name(e.city)),
            score: s.score,
            breakdown,
            reason,
            cost: Some(self.money(s.cost)),
            cost_estimated: s.cost_estimated,
            expected_engagements: round2(s.engagements),
            expected_conversions: if self.sales { round2(s.conversions) } else { 0.0 },
            segment: s
                .segment
                .and_then(|i| self.segments.get(i as usize))
                .map(|g| g.label.clone())
                .unwrap_or_default(),
        }
    }

    fn explain(&self, part: &str, value: f64, e: &Entry, s: &Scored) -> String {
        match part {
            NICHE_FIT if self.niches.is_empty() => "The brief names no niche.".to_owned(),
            NICHE_FIT => {
                let hits: Vec<&str> = self
                    .niches
                    .iter()
                    .filter(|(bit, _, _)| e.niches & bit != 0)
                    .map(|n| n.2)
                    .collect();
                format!(
                    "Covers {} of the brief's niches ({}).",
                    hits.len(),
                    if hits.is_empty() {
                        "none".to_owned()
                    } else {
                        hits.join(", ")
                    }
                )
            }
            LOCATION if self.places.is_empty() => "The brief takes any location.".to_owned(),
            LOCATION => {
                let at = if value >= 1.0 {
                    "city"
                } else if value >= 0.8 {
                    "region"
                } else {
                    "country"
                };
                format!(
                    "Lives in {}, {}: matches the brief at {at} level.",
                    title(self.index.places.name(e.city)),
                    self.index.places.name(e.country)
                )
            }
            ENGAGEMENT => {
                let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
                let (low, high) = engagement_norm(tier);
                if s.hot.engagement.is_nan() {
                    "No engagement figures yet.".to_owned()
                } else {
                    format!(
                        "Engagement {:.1}% against the {} norm of {:.0}-{:.0}%.",
                        f64::from(s.hot.engagement) * 100.0,
                        tier_name(tier),
                        low * 100.0,
                        high * 100.0
                    )
                }
            }
            AUDIENCE_QUALITY if s.hot.quality.is_nan() => "Not vetted yet: counted as middling.".to_owned(),
            AUDIENCE_QUALITY => format!(
                "Vetting scores the audience {}.",
                // The scored account is the largest on its platform (see `filter`).
                score_with_evidence(
                    f64::from(s.hot.quality),
                    e.account_on(1 << s.hot.platform)
                        .map(|a| a.evidence)
                        .unwrap_or_default()
                )
            ),
            DEMOGRAPHIC_FIT if self.ages.is_empty() && self.countries.is_empty() => {
                "The brief sets no audience target.".to_owned()
            }
            DEMOGRAPHIC_FIT => match &e.audience {
                None => "Audience demographics unknown: counted as middling.".to_owned(),
                Some(a) => format!(
                    "{:.0}% fit with the target audience (largest age group {}).",
                    value * 100.0,
                    age_bucket_name(a.largest_bucket())
                ),
            },
            COST_EFFICIENCY if s.cost <= 0 => format!(
                "{:.0} expected engagements for no cash ({} {}){}.",
                s.engagements,
                currency::decimal(0, &self.currency_code),
                self.currency_code,
                if s.cost_estimated {
                    " (estimated from market rates where the rate card lacks a kind)"
                } else {
                    ""
                }
            ),
            COST_EFFICIENCY => format!(
                "{:.1} expected engagements per {} for {} {}{}.",
                s.engagements / (s.cost as f64 / self.minor_per_major),
                self.currency_code,
                currency::decimal(s.cost, &self.currency_code),
                self.currency_code,
                if s.cost_estimated {
                    " (estimated from market rates where the rate card lacks a kind)"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        }
    }

    /// One sentence: who they are, the two strongest parts, and the price.
    fn reason(&self, e: &Entry, s: &Scored, breakdown: &[ScorePart]) -> String {
        let tier = Tier::try_from(i32::from(s.hot.tier)).unwrap_or(Tier::Unspecified);
        let mut strongest: Vec<&ScorePart> = breakdown.iter().filter(|p| p.contribution > 0.0).collect();
        strongest.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        let strengths: Vec<String> = strongest.iter().take(2).map(|p| p.part.replace('_', " ")).collect();
        let platform = Platform::try_from(i32::from(s.hot.platform))
            .map(|p| p.as_str_name().trim_start_matches("PLATFORM_").to_lowercase())
            .unwrap_or_default();
        let mut reason = format!(
            "{} {platform} creator with {} followers{}; strongest on {}; {} {} for the deliverables",
            capitalise(tier_name(tier)),
            thousands(s.hot.followers),
            if e.city == 0 {
                String::new()
            } else {
                format!(" in {}", title(self.index.places.name(e.city)))
            },
            strengths.join(" and "),
            currency::decimal(s.cost, &self.currency_code),
            self.currency_code,
        );
        if s.penalty > 0.0 {
            reason.push_str("; many sponsored posts");
        }
        reason.push('.');
        reason
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

/// 12345 → "12,345".
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn lowest_bit(mask: u32) -> u32 {
    mask & mask.wrapping_neg()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Emerging => "emerging",
        Tier::Nano => "nano",
        Tier::Micro => "micro",
        Tier::Mid => "mid-tier",
        Tier::Macro => "macro",
        Tier::Mega => "mega",
        Tier::Unspecified => "unclassified",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// "san antonio" → "San Antonio" (the index keeps places lower case).
fn title(s: &str) -> String {
    s.split(' ').map(capitalise).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::brief::tests::dog_treats;
    use crate::domain::index::tests::{influencer, metrics};
    use chorus_proto::registry::{AudienceDemographics, InfluencerStatus, RateCardEntry, VettingReport};
    use chorus_proto::types::CompensationKind;

    fn brief() -> Brief {
        dog_treats().brief.unwrap()
    }

    fn index() -> Index {
        let mut ix = Index::new();
        for n in 1..=6u128 {
            let city = if n % 2 == 0 { "Austin" } else { "Denver" };
            let mut inf = influencer(n, city, 2_000 + n as i64 * 1_000, 10);
            inf.compensation_accepted = vec![CompensationKind::Product as i32];
            inf.rate_card = vec![RateCardEntry {
                kind: DeliverableKind::FeedPost as i32,
                price: Some(Money {
                    currency_code: "USD".into(),
                    amount_minor: 5_000,
                }),
            }];
            ix.upsert(&inf);
        }
        ix
    }

    fn plan<'a>(ix: &'a Index, b: &Brief) -> Plan<'a> {
        Plan::new(ix, b, Objective::Awareness, &HashSet::new(), Settings::default(), 0)
    }

    #[test]
    fn parts_weights_add_up_to_one() {
        let sum: f64 = PARTS.iter().map(|p| p.1).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

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
        let r = plan(&ix, &brief()).run(100);
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
    fn ranking_is_deterministic_and_explained() {
        let ix = index();
        let p = plan(&ix, &brief());
        let a = p.run(3);
        let b = p.run(3);
        let ids = |r: &Ranking| r.top.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.top.len(), 3);
        assert!(a.top.windows(2).all(|w| w[0].score >= w[1].score));
        let c = p.candidate(&a.top[0]);
        assert_eq!(c.breakdown.len(), 7);
        let total: f64 = c.breakdown.iter().map(|p| p.contribution).sum();
        assert!((total - c.score).abs() < 0.05, "{total} vs {}", c.score);
        assert!(c.reason.starts_with("Nano instagram creator"), "{}", c.reason);
        // The feed post is on the rate card; the story is estimated at $10 per 1,000
        // followers (a cent each) times the story factor.
        assert!(c.cost_estimated);
        assert_eq!(
            c.cost.unwrap().amount_minor,
            5_000 + (c.followers as f64 * 0.43).round() as i64
        );
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
        let r = p.run(10);
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
    fn the_quality_explanation_says_how_much_the_score_rests_on() {
        use chorus_proto::registry::AccountVetting;
        let mut ix = index();
        // Person 1's 100 rests on two signals of six, from the profile's gist; person 2's 80 on
        // all six, from a report event; person 3's gist predates the count.
        let mut thin = influencer(1, "Denver", 3_000, 20);
        thin.compensation_accepted = vec![CompensationKind::Product as i32];
        thin.accounts[0].vetting = Some(AccountVetting {
            quality_score: 100.0,
            verdict: Verdict::Review as i32,
            signals_available: 2,
            signals_total: 6,
            thin_evidence: true,
            ..Default::default()
        });
        ix.upsert(&thin);
        let full = influencer(2, "Austin", 4_000, 10);
        ix.vetting(
            &full.name,
            &VettingReport {
                platform: full.accounts[0].platform,
                handle: full.accounts[0].handle.clone(),
                verdict: Verdict::Ok as i32,
                quality_score: 80.0,
                signals_available: 6,
                signals_total: 6,
                compute_time: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
                ..Default::default()
            },
        );
        let mut old = influencer(3, "Denver", 5_000, 20);
        old.compensation_accepted = vec![CompensationKind::Product as i32];
        old.accounts[0].vetting = Some(AccountVetting {
            quality_score: 75.0,
            verdict: Verdict::Ok as i32,
            ..Default::default()
        });
        ix.upsert(&old);
        let p = plan(&ix, &brief());
        let said = |id: u128| {
            p.assess(id)
                .unwrap()
                .breakdown
                .into_iter()
                .find(|part| part.part == AUDIENCE_QUALITY)
                .unwrap()
                .explanation
        };
        assert_eq!(
            said(1),
            "Vetting scores the audience 100, thin evidence: 2 of 6 signals."
        );
        assert_eq!(said(2), "Vetting scores the audience 80, 6 of 6 signals.");
        assert_eq!(said(3), "Vetting scores the audience 75.");
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
        let r = p.run(10);
        assert_eq!(r.removed[2], 2, "excluded: one by the brief, one rejected");
        assert_eq!(r.removed[3], 1, "exclusivity");
        assert!(r.top.iter().all(|s| ![1u128, 2, 3].contains(&s.id)));
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
        let r = p.run(2);
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
        let top = p.run(1).top;
        assert!(top[0].cost_estimated);
        assert_eq!(top[0].cost, (50.0f64 * 1.43).round() as i64);
        let c = p.candidate(&top[0]);
        assert!(c.reason.contains("72 JPY"), "{}", c.reason);
    }

    #[test]
    fn a_parallel_scan_finds_what_one_scan_finds() {
        let mut ix = Index::new();
        for n in 1..=(2 * MIN_SLICE as u128 + 7) {
            let city = ["Austin", "Denver", "Houston"][(n % 3) as usize];
            let mut inf = influencer(n, city, 1_000 + (n as i64 * 7919) % 9_000, 1);
            inf.compensation_accepted = vec![CompensationKind::Cash as i32];
            ix.upsert(&inf);
        }
        let p = plan(&ix, &brief());
        let whole = p.scan(0..ix.slots().len(), 300);
        let parallel = p.run(300);
        assert_eq!(parallel.matched, whole.matched);
        assert_eq!(parallel.considered, whole.considered);
        assert_eq!(parallel.removed, whole.removed);
        let ids = |r: &Ranking| r.top.iter().map(|s| (s.id, s.score.to_bits())).collect::<Vec<_>>();
        assert_eq!(ids(&parallel), ids(&whole));
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

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A scored candidate with only what selection reads.
    pub(crate) fn scored(id: u128, engagements: f64, cost: i64, city: u32, niche: u32, segment: Option<u16>) -> Scored {
        Scored {
            slot: 0,
            id,
            score: 50.0,
            cost,
            cost_estimated: false,
            engagements,
            conversions: engagements * 0.01,
            segment,
            niche,
            city,
            parts: [0.0; 6],
            penalty: 0.0,
            hot: Hot::default(),
        }
    }
}
