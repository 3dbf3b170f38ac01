//! The synthetic population behind `chorus seed`: the same seed gives the same people, shaped
//! by DOMAIN.md (tier mix, engagement falling with followers, sponsored share, rate cards near
//! $10 per 1,000 followers, nanos taking product or gift cards).

use chorus_proto::registry::{
    Consent, Contact, Influencer, InfluencerStatus, MetricsSnapshot, RateCardEntry, SocialAccount,
};
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use prost_types::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::words::{self, City, NameSet};

/// Metrics snapshots cover this many days.
const WINDOW_DAYS: i32 = 30;

/// Share of the population per tier and its follower range, low inclusive and high exclusive
/// (DOMAIN.md tiers: nano 1k-10k, micro 10k-100k, mid 100k-250k, macro 250k-1M, mega 1M+).
pub(crate) const TIERS: [(u32, i64, i64); 5] = [
    (700, 1_000, 10_000),
    (200, 10_000, 100_000),
    (60, 100_000, 250_000),
    (30, 250_000, 1_000_000),
    (10, 1_000_000, 5_000_000),
];

/// Typical engagement by followers at anchor points, interpolated on log followers: 5-10% at
/// 1k-5k, 3-5% at 5k-10k, a point lower for micro, about 1.7% for celebrities (DOMAIN.md).
const ENGAGEMENT_ANCHORS: [(f64, f64); 6] = [
    (1_000.0, 0.090),
    (5_000.0, 0.055),
    (10_000.0, 0.040),
    (100_000.0, 0.025),
    (1_000_000.0, 0.017),
    (10_000_000.0, 0.012),
];

/// Price of a feed post per follower, in US cents: $10 per 1,000 followers (DOMAIN.md).
const CENTS_PER_FOLLOWER: f64 = 1.0;
const MIN_POST_CENTS: i64 = 2_500;
/// Story and video prices relative to a feed post (Klear 2019: $43 story, $114 video per $100).
const STORY_SHARE: f64 = 0.43;
const VIDEO_SHARE: f64 = 1.14;

/// One generated influencer and their first metrics snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) influencer: Influencer,
    pub(crate) snapshot: MetricsSnapshot,
}

/// A deterministic stream of people.
#[derive(Debug)]
pub(crate) struct Population {
    rng: SmallRng,
    now: Timestamp,
}

impl Population {
    pub(crate) fn new(seed: u64, now: Timestamp) -> Self {
        Population {
            rng: SmallRng::seed_from_u64(seed),
            now,
        }
    }

    /// The next person; `index` makes the handle unique.
    pub(crate) fn person(&mut self, index: u64) -> Person {
        let platform = *pick(
            &mut self.rng,
            &[
                (Platform::Instagram, 65),
                (Platform::Tiktok, 25),
                (Platform::Youtube, 10),
            ],
        );
        let tier = pick_index(&mut self.rng, &TIERS, |t| t.0);
        let (_, low, high) = TIERS[tier];
        let followers = log_uniform(&mut self.rng, low, high);
        let handle = self.handle(index);
        let snapshot = self.snapshot(platform, &handle, followers);
        let city: &City = &words::CITIES[pick_index(&mut self.rng, words::CITIES, |c| c.weight)];
        let languages = *pick(&mut self.rng, city.languages);
        let names = words::names(languages.first().copied().unwrap_or("en"));
        let influencer = Influencer {
            display_name: self.display_name(names),
            accounts: vec![SocialAccount {
                platform: platform as i32,
                url: profile_url(platform, &handle),
                handle: handle.clone(),
                metrics: None,
                vetting: None,
            }],
            niches: self.niches(),
            location: Some(Location {
                country_code: city.country.to_owned(),
                region: city.region.to_owned(),
                city: city.name.to_owned(),
            }),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            audience: None,
            rate_card: self.rate_card(platform, followers),
            compensation_accepted: self.compensation(tier),
            contact: Some(Contact {
                email: format!("{handle}@example.com"),
                phone: String::new(),
            }),
            consent: Some(Consent {
                contact_allowed: true,
                data_processing_allowed: true,
                consent_time: Some(self.now),
            }),
            status: *pick(
                &mut self.rng,
                &[
                    (InfluencerStatus::Active, 94),
                    (InfluencerStatus::Paused, 5),
                    (InfluencerStatus::Blocked, 1),
                ],
            ) as i32,
            ..Default::default()
        };
        Person { influencer, snapshot }
    }

    /// adjective + noun + index: readable, unique by the index, the same for the same seed.
    fn handle(&mut self, index: u64) -> String {
        let adjective = pick_uniform(&mut self.rng, words::ADJECTIVES);
        let noun = pick_uniform(&mut self.rng, words::NOUNS);
        if self.rng.random_bool(0.3) {
            format!("{adjective}_{noun}_{index}")
        } else {
            format!("{adjective}{noun}{index}")
        }
    }

    fn display_name(&mut self, names: &NameSet) -> String {
        let first = pick_uniform(&mut self.rng, names.first);
        let last = pick_uniform(&mut self.rng, names.last);
        if self.rng.random_bool(0.2) {
            let initial = last.chars().next().unwrap_or('X');
            format!("{first} {initial}.")
        } else {
            format!("{first} {last}")
        }
    }

    fn snapshot(&mut self, platform: Platform, handle: &str, followers: i64) -> MetricsSnapshot {
        let rng = &mut self.rng;
        let rate = engagement(rng, followers);
        let window_posts = match platform {
            Platform::Tiktok => rng.random_range(10..=45),
            Platform::Youtube => rng.random_range(2..=10),
            _ => rng.random_range(8..=30),
        };
        let interactions = (rate * followers as f64 * window_posts as f64).round() as i64;
        let comments = (interactions as f64 * rng.random_range(0.03..0.08)).round() as i64;
        // most feeds are mostly organic; a few are saturated with ads (DOMAIN.md authenticity)
        let sponsored_share = match rng.random::<f64>() {
            u if u < 0.80 => rng.random_range(0.0..0.12),
            u if u < 0.95 => rng.random_range(0.12..0.35),
            _ => rng.random_range(0.5..0.85),
        };
        let following = match rng.random::<f64>() {
            u if u < 0.85 => rng.random_range(300..=1_500),
            u if u < 0.95 => rng.random_range(50..300),
            _ => rng.random_range(1_500..=3_500),
        };
        MetricsSnapshot {
            platform: platform as i32,
            handle: handle.to_owned(),
            observe_time: Some(self.now),
            followers,
            following,
            posts: window_posts * rng.random_range(6..=60),
            window_days: WINDOW_DAYS,
            window_posts,
            window_likes: interactions - comments,
            window_comments: comments,
            window_sponsored_posts: ((window_posts as f64 * sponsored_share).round() as i64).min(window_posts),
            window_reach: None,
            window_impressions: None,
        }
    }

    /// 1-3 distinct niches, weighted towards the common ones.
    fn niches(&mut self) -> Vec<String> {
        let count = *pick(&mut self.rng, &[(1usize, 40), (2, 40), (3, 20)]);
        let mut chosen: Vec<String> = Vec::with_capacity(count);
        while chosen.len() < count {
            let niche = *pick(&mut self.rng, words::NICHES);
            if !chosen.iter().any(|c| c == niche) {
                chosen.push(niche.to_owned());
            }
        }
        chosen
    }

    fn rate_card(&mut self, platform: Platform, followers: i64) -> Vec<RateCardEntry> {
        let asked = followers as f64 * CENTS_PER_FOLLOWER * self.rng.random_range(0.7..1.4);
        let post = whole_dollars(asked).max(MIN_POST_CENTS);
        let story = whole_dollars(post as f64 * STORY_SHARE);
        let video = whole_dollars(post as f64 * VIDEO_SHARE);
        let entries: &[(DeliverableKind, i64)] = match platform {
            Platform::Tiktok => &[(DeliverableKind::ShortVideo, post), (DeliverableKind::Story, story)],
            Platform::Youtube => &[(DeliverableKind::Video, video), (DeliverableKind::ShortVideo, post)],
            _ => &[
                (DeliverableKind::FeedPost, post),
                (DeliverableKind::Story, story),
                (DeliverableKind::Video, video),
            ],
        };
        entries
            .iter()
            .map(|(kind, amount_minor)| RateCardEntry {
                kind: *kind as i32,
                price: Some(Money {
                    currency_code: "USD".to_owned(),
                    amount_minor: *amount_minor,
                }),
            })
            .collect()
    }

    /// Everyone accepts something; smaller accounts often take product or gift cards.
    fn compensation(&mut self, tier: usize) -> Vec<i32> {
        const CASH: [f64; 5] = [0.60, 0.85, 0.95, 1.0, 1.0];
        const GIFT_CARD: [f64; 5] = [0.45, 0.30, 0.15, 0.05, 0.0];
        const PRODUCT: [f64; 5] = [0.65, 0.50, 0.30, 0.15, 0.10];
        let tier = tier.min(4);
        let mut kinds = Vec::with_capacity(3);
        for (kind, odds) in [
            (CompensationKind::Cash, CASH),
            (CompensationKind::GiftCard, GIFT_CARD),
            (CompensationKind::Product, PRODUCT),
        ] {
            if self.rng.random_bool(odds[tier]) {
                kinds.push(kind as i32);
            }
        }
        if kinds.is_empty() {
            let fallback = if tier == 0 {
                CompensationKind::Product
            } else {
                CompensationKind::Cash
            };
            kinds.push(fallback as i32);
        }
        kinds
    }
}

/// The typical engagement rate by followers for an account of this size.
pub(crate) fn typical_engagement(followers: i64) -> f64 {
    let x = (followers.max(1) as f64).ln();
    let mut previous = ENGAGEMENT_ANCHORS[0];
    if x <= previous.0.ln() {
        return previous.1;
    }
    for anchor in &ENGAGEMENT_ANCHORS[1..] {
        let (low, high) = (previous.0.ln(), anchor.0.ln());
        if x <= high {
            let t = (x - low) / (high - low);
            return previous.1 + t * (anchor.1 - previous.1);
        }
        previous = *anchor;
    }
    previous.1
}

/// Typical engagement with noise; a few accounts look bought (far below the norm) or
/// pod-boosted (far above), so vetting has something to find.
fn engagement(rng: &mut SmallRng, followers: i64) -> f64 {
    let z = normal(rng).clamp(-2.5, 2.5);
    let mut rate = typical_engagement(followers) * (0.2 * z).exp();
    match rng.random::<f64>() {
        u if u < 0.02 => rate *= rng.random_range(0.15..0.4),
        u if u < 0.03 => rate *= rng.random_range(1.8..2.6),
        _ => {}
    }
    rate.clamp(0.001, 0.4)
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A whole number in [low, high), uniform on the log scale.
fn log_uniform(rng: &mut SmallRng, low: i64, high: i64) -> i64 {
    let (a, b) = ((low as f64).ln(), (high as f64).ln());
    (rng.random_range(a..b).exp() as i64).clamp(low, high - 1)
}

fn whole_dollars(cents: f64) -> i64 {
    ((cents / 100.0).round() as i64) * 100
}

fn profile_url(platform: Platform, handle: &str) -> String {
    match platform {
        Platform::Tiktok => format!("https://www.tiktok.com/@{handle}"),
        Platform::Youtube => format!("https://www.youtube.com/@{handle}"),
        _ => format!("https://www.instagram.com/{handle}"),
    }
}

/// An item by weight; the tables are constants and never empty.
fn pick<'a, T>(rng: &mut SmallRng, items: &'a [(T, u32)]) -> &'a T {
    &items[pick_index(rng, items, |(_, w)| *w)].0
}

fn pick_index<T>(rng: &mut SmallRng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len().saturating_sub(1)
}

fn pick_uniform<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(n: u64, seed: u64) -> Vec<Person> {
        let mut population = Population::new(seed, Timestamp::default());
        (0..n).map(|i| population.person(i)).collect()
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn rate(s: &MetricsSnapshot) -> f64 {
        (s.window_likes + s.window_comments) as f64 / s.window_posts as f64 / s.followers as f64
    }

    #[test]
    fn the_tier_mix_is_mostly_nano() {
        let people = people(20_000, 7);
        let share = |low: i64, high: i64| {
            let n = people
                .iter()
                .filter(|p| (low..high).contains(&p.snapshot.followers))
                .count();
            n as f64 / people.len() as f64
        };
        for (weight, low, high) in TIERS {
            let expected = f64::from(weight) / 1000.0;
            let got = share(low, high);
            assert!((got - expected).abs() < 0.015, "{low}..{high}: {got} vs {expected}");
        }
    }

    #[test]
    fn engagement_falls_with_followers_within_the_domain_bands() {
        let people = people(30_000, 11);
        let band = |low: i64, high: i64| {
            median(
                people
                    .iter()
                    .map(|p| &p.snapshot)
                    .filter(|s| (low..high).contains(&s.followers))
                    .map(rate)
                    .collect(),
            )
        };
        let small_nano = band(1_000, 5_000);
        let large_nano = band(5_000, 10_000);
        let micro = band(10_000, 100_000);
        let mega = band(1_000_000, i64::MAX);
        assert!((0.05..=0.10).contains(&small_nano), "1k-5k {small_nano}");
        assert!((0.03..=0.05).contains(&large_nano), "5k-10k {large_nano}");
        assert!((0.02..=0.04).contains(&micro), "micro {micro}");
        assert!((0.012..=0.022).contains(&mega), "mega {mega}");
        assert!(small_nano > large_nano && large_nano > micro && micro > mega);
    }

    #[test]
    fn snapshots_rate_cards_and_compensation_are_plausible() {
        for p in people(5_000, 3) {
            let s = &p.snapshot;
            assert!(s.window_sponsored_posts <= s.window_posts);
            assert!(s.window_comments < s.window_likes || s.window_likes == 0);
            assert!(s.posts >= s.window_posts);
            let i = &p.influencer;
            assert!(!i.compensation_accepted.is_empty());
            assert!((1..=3).contains(&i.niches.len()));
            assert!(i.niches.iter().all(|n| words::NICHES.iter().any(|(id, _)| id == n)));
            let post = i
                .rate_card
                .iter()
                .filter_map(|r| r.price.as_ref())
                .map(|m| m.amount_minor);
            assert!(
                post.clone().all(|cents| cents >= 1_000 && cents % 100 == 0),
                "{:?}",
                i.rate_card
            );
            assert_eq!(i.accounts[0].handle, s.handle);
        }
    }

    #[test]
    fn a_seed_gives_the_same_unique_handles() {
        let handles = |seed| {
            people(2_000, seed)
                .into_iter()
                .map(|p| p.snapshot.handle)
                .collect::<Vec<_>>()
        };
        let first = handles(42);
        assert_eq!(first, handles(42));
        assert_ne!(first, handles(43));
        let unique: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(unique.len(), first.len());
        assert!(first.iter().all(|h| {
            h.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
    }

    #[test]
    fn typical_engagement_follows_the_anchors() {
        assert!((typical_engagement(1_000) - 0.09).abs() < 1e-9);
        assert!((typical_engagement(500) - 0.09).abs() < 1e-9);
        assert!((typical_engagement(100_000) - 0.025).abs() < 1e-9);
        assert!((typical_engagement(50_000_000) - 0.012).abs() < 1e-9);
        assert!(typical_engagement(3_000) < 0.09 && typical_engagement(3_000) > 0.055);
    }
}
