//! The match index: every influencer of the registry in a compact form that a brief can be run
//! against without SQL. One flat vector of entries, so a match is a linear scan that touches
//! only each entry's inline fields (status, niches, place, the largest account's figures); the
//! rest (all accounts, rates, audience, names) sits behind pointers and is read only for the
//! people who pass the cheap filters.
//!
//! It is fed by the registry's events and a streaming read at start-up. The two overlap, so
//! every change is applied only when it is newer than what the entry holds (the profile's
//! update time, a snapshot's observe time, a report's compute time), and deleted ids are
//! remembered so a page of the start-up read cannot bring a deleted person back.

use std::collections::{HashMap, HashSet};

use chorus_catalog::evidence::Evidence;
use chorus_catalog::niche::NICHES;
use chorus_proto::registry::{
    AccountMetrics, AgeBucket, EngagementDenominator, Influencer, InfluencerStatus, SocialAccount, Verdict,
    VettingReport,
};
use chorus_proto::types::Tier;

/// Interned strings (places, languages, currencies): entries hold small numbers, compared as
/// numbers. 0 is "none".
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        self.names.push(s.into());
        let id = self.names.len() as u32;
        self.ids.insert(s.into(), id);
        id
    }

    /// The id of `s` if it was ever interned (a brief naming an unknown city matches nobody).
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        id.checked_sub(1)
            .and_then(|i| self.names.get(i as usize))
            .map_or("", |s| s)
    }

    /// Every interned string with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().enumerate().map(|(i, s)| (i as u32 + 1, &**s))
    }
}

/// One social account as matching sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub platform: u8,
    pub handle: Box<str>,
    pub followers: i64,
    pub tier: u8,
    /// Engagement by followers, as a fraction; NaN when no snapshot has a window.
    pub engagement: f32,
    /// Share of the window's posts that were sponsored.
    pub sponsored: f32,
    /// Observe time of the snapshot the figures come from, microseconds.
    pub observed: i64,
    /// Audience quality score, 0..100; NaN until vetted.
    pub quality: f32,
    pub verdict: u8,
    /// Vetting flags raised (fake followers, engagement pod).
    pub flagged: bool,
    /// How many signals the quality score rests on.
    pub evidence: Evidence,
    /// Compute time of the report the vetting comes from, microseconds.
    pub vetted: i64,
}

/// The figures of the account a match is about, inline in the entry so the scan needs no
/// pointer: the influencer's largest account.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hot {
    pub platform: u8,
    pub tier: u8,
    pub verdict: u8,
    pub flagged: bool,
    pub followers: u32,
    pub engagement: f32,
    pub sponsored: f32,
    pub quality: f32,
}

impl From<&Account> for Hot {
    fn from(a: &Account) -> Self {
        Hot {
            platform: a.platform,
            tier: a.tier,
            verdict: a.verdict,
            flagged: a.flagged,
            followers: a.followers.clamp(0, u32::MAX as i64) as u32,
            engagement: a.engagement,
            sponsored: a.sponsored,
            quality: a.quality,
        }
    }
}

/// An asking price: deliverable kind, currency (interned) and amount in minor units.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub kind: u8,
    pub currency: u32,
    pub amount_minor: i64,
}

/// Audience demographics, when the registry knows them.
#[derive(Debug, Clone)]
pub struct Audience {
    /// Share per age bucket, indexed by the AgeBucket number.
    pub ages: [f32; 7],
    /// Top countries (interned) with their shares.
    pub countries: Box<[(u32, f32)]>,
}

impl Audience {
    /// The bucket holding the largest share.
    pub fn largest_bucket(&self) -> u8 {
        let mut best = (0u8, 0f32);
        for (i, s) in self.ages.iter().enumerate() {
            if *s > best.1 {
                best = (i as u8, *s);
            }
        }
        best.0
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u128,
    /// The profile's update time, microseconds: an older upsert never replaces a newer one.
    pub version: i64,
    pub live: bool,
    pub status: u8,
    pub contact_allowed: bool,
    /// Bit per CompensationKind accepted.
    pub compensation: u8,
    /// Bit per Platform with an account.
    pub platforms: u16,
    /// Bit per niche, in taxonomy order.
    pub niches: u32,
    pub country: u32,
    pub region: u32,
    pub city: u32,
    pub hot: Hot,
    pub languages: Box<[u32]>,
    pub accounts: Box<[Account]>,
    pub rates: Box<[Rate]>,
    pub audience: Option<Box<Audience>>,
    pub display_name: Box<str>,
}

impl Entry {
    /// The largest account on one of `platforms` (a Platform bit mask).
    pub fn account_on(&self, platforms: u16) -> Option<&Account> {
        self.accounts
            .iter()
            .filter(|a| platforms & (1 << a.platform) != 0)
            .max_by_key(|a| a.followers)
    }

    /// The price of one `kind` deliverable in `currency`, when the rate card has it.
    pub fn rate(&self, kind: u8, currency: u32) -> Option<i64> {
        self.rates
            .iter()
            .find(|r| r.kind == kind && r.currency == currency)
            .map(|r| r.amount_minor)
    }

    fn refresh_hot(&mut self) {
        if let Some(top) = self.accounts.iter().max_by_key(|a| a.followers) {
            self.hot = Hot::from(top);
        }
    }
}

/// Bit of niche `id` in the taxonomy, when it is one.
pub fn niche_bit(id: &str) -> Option<u32> {
    NICHES.iter().position(|(n, _)| *n == id).map(|i| 1 << i)
}

/// A metrics or vetting event kept until its profile arrives.
#[derive(Debug)]
enum Early {
    Metrics(i32, Box<str>, AccountMetrics),
    Vetting(VettingReport),
}

/// The catalogue in memory.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    slots: HashMap<u128, u32>,
    free: Vec<u32>,
    deleted: HashSet<u128>,
    /// Exclusive contracts in force: influencer → (category, end time in microseconds).
    exclusive: HashMap<u128, Vec<(Box<str>, i64)>>,
    /// Figures that arrived before their profile: during the start-up read an event can
    /// overtake the page that holds its influencer. The profile's upsert applies them (newer
    /// wins, as always); [`Index::finish_loading`] drops the rest.
    early: HashMap<u128, Vec<Early>>,
    loaded: bool,
    pub places: Interner,
    pub languages: Interner,
    pub currencies: Interner,
}

/// A UUID string as a number, for compact keys.
pub fn parse_id(id: &str) -> Option<u128> {
    uuid::Uuid::parse_str(id).ok().map(|u| u.as_u128())
}

pub fn format_id(id: u128) -> String {
    uuid::Uuid::from_u128(id).to_string()
}

fn micros(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

impl Index {
    pub fn new() -> Self {
        Index::default()
    }

    /// Influencers in the index.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every live entry, in slot order (the scan order of a match).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.live)
    }

    /// All slots, live or not: the scan itself checks `live`, which keeps the loop simple.
    pub fn slots(&self) -> &[Entry] {
        &self.entries
    }

    pub fn slot_of(&self, id: u128) -> Option<u32> {
        self.slots.get(&id).copied()
    }

    pub fn get(&self, id: u128) -> Option<&Entry> {
        self.slots.get(&id).map(|s| &self.entries[*s as usize])
    }

    /// Applies a profile as the registry stored it. Returns false when ignored: older than
    /// what the index holds, deleted, or not a valid id.
    pub fn upsert(&mut self, inf: &Influencer) -> bool {
        let Some(id) = inf.name.strip_prefix("influencers/").and_then(parse_id) else {
            return false;
        };
        if self.deleted.contains(&id) {
            return false;
        }
        let version = micros(inf.update_time.as_ref());
        let previous = self.get(id);
        if previous.is_some_and(|p| p.version > version) {
            return false;
        }
        let mut accounts: Vec<Account> = inf.accounts.iter().map(account).collect();
        // Figures newer than the profile's copy (a metrics or vetting event that overtook the
        // upsert) are kept.
        if let Some(p) = previous {
            for a in &mut accounts {
                if let Some(old) = p
                    .accounts
                    .iter()
                    .find(|o| o.platform == a.platform && o.handle == a.handle)
                {
                    if old.observed > a.observed {
                        (a.followers, a.tier, a.engagement, a.sponsored, a.observed) =
                            (old.followers, old.tier, old.engagement, old.sponsored, old.observed);
                    }
                    if old.vetted > a.vetted {
                        (a.quality, a.verdict, a.flagged, a.evidence, a.vetted) =
                            (old.quality, old.verdict, old.flagged, old.evidence, old.vetted);
                    }
                }
            }
        }
        let location = inf.location.clone().unwrap_or_default();
        let mut entry = Entry {
            id,
            version,
            live: true,
            status: inf.status as u8,
            contact_allowed: inf.consent.as_ref().is_some_and(|c| c.contact_allowed),
            compensation: inf
                .compensation_accepted
                .iter()
                .fold(0u8, |m, k| m | (1u8 << (*k as u8 & 7))),
            platforms: accounts.iter().fold(0u16, |m, a| m | (1 << a.platform)),
            niches: inf.niches.iter().filter_map(|n| niche_bit(n)).fold(0, |m, b| m | b),
            country: self.places.intern(&location.country_code.to_uppercase()),
            region: self.places.intern(&location.region.to_lowercase()),
            city: self.places.intern(&location.city.to_lowercase()),
            hot: Hot::default(),
            languages: inf
                .languages
                .iter()
                .map(|l| self.languages.intern(&l.to_lowercase()))
                .collect(),
            accounts: accounts.into_boxed_slice(),
            rates: inf
                .rate_card
                .iter()
                .filter_map(|r| {
                    let price = r.price.as_ref()?;
                    Some(Rate {
                        kind: r.kind as u8,
                        currency: self.currencies.intern(&price.currency_code),
                        amount_minor: price.amount_minor,
                    })
                })
                .collect(),
            audience: inf.audience.as_ref().map(|a| {
                let mut ages = [0f32; 7];
                for b in &a.age_buckets {
                    if let Some(slot) = ages.get_mut(b.bucket as usize) {
                        *slot = b.share as f32;
                    }
                }
                Box::new(Audience {
                    ages,
                    countries: a
                        .top_countries
                        .iter()
                        .map(|c| (self.places.intern(&c.country_code.to_uppercase()), c.share as f32))
                        .collect(),
                })
            }),
            display_name: inf.display_name.as_str().into(),
        };
        entry.refresh_hot();
        match self.slots.get(&id) {
            Some(slot) => self.entries[*slot as usize] = entry,
            None => {
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.entries[s as usize] = entry;
                        s
                    }
                    None => {
                        self.entries.push(entry);
                        (self.entries.len() - 1) as u32
                    }
                };
                self.slots.insert(id, slot);
            }
        }
        for early in self.early.remove(&id).unwrap_or_default() {
            match early {
                Early::Metrics(platform, handle, m) => self.metrics(&inf.name, platform, &handle, &m),
                Early::Vetting(r) => self.vetting(&inf.name, &r),
            };
        }
        true
    }

    /// The start-up read is complete: from now on an event's influencer is always in the
    /// index already (events follow their upsert), so nothing more is kept for later.
    pub fn finish_loading(&mut self) {
        self.loaded = true;
        self.early = HashMap::new();
    }

    /// Keeps figures for an influencer the index does not hold yet, while loading.
    fn keep_early(&mut self, influencer: &str, early: Early) {
        if let (false, Some(id)) = (self.loaded, influencer.strip_prefix("influencers/").and_then(parse_id))
            && !self.deleted.contains(&id)
        {
            self.early.entry(id).or_default().push(early);
        }
    }

    /// Applies an account's new metrics when newer than the index's.
    pub fn metrics(&mut self, influencer: &str, platform: i32, handle: &str, m: &AccountMetrics) -> bool {
        let observed = micros(m.latest.as_ref().and_then(|s| s.observe_time.as_ref()));
        let applied = self.with_account(influencer, platform, handle, |a| {
            if observed < a.observed {
                return false;
            }
            let latest = m.latest.clone().unwrap_or_default();
            a.followers = latest.followers;
            a.tier = m.tier as u8;
            a.engagement = by_followers(m);
            a.sponsored = m.sponsored_share as f32;
            a.observed = observed;
            true
        });
        applied.unwrap_or_else(|| {
            self.keep_early(influencer, Early::Metrics(platform, handle.into(), m.clone()));
            false
        })
    }

    /// Applies an account's new vetting report when newer than the index's.
    pub fn vetting(&mut self, influencer: &str, report: &VettingReport) -> bool {
        let at = micros(report.compute_time.as_ref());
        let applied = self.with_account(influencer, report.platform, &report.handle, |a| {
            if at < a.vetted {
                return false;
            }
            a.quality = report.quality_score as f32;
            a.verdict = report.verdict as u8;
            a.flagged = !report.flags.is_empty();
            a.evidence = Evidence::from(report);
            a.vetted = at;
            true
        });
        applied.unwrap_or_else(|| {
            self.keep_early(influencer, Early::Vetting(report.clone()));
            false
        })
    }

    fn with_account(
        &mut self,
        influencer: &str,
        platform: i32,
        handle: &str,
        change: impl FnOnce(&mut Account) -> bool,
    ) -> Option<bool> {
        let slot = influencer
            .strip_prefix("influencers/")
            .and_then(parse_id)
            .and_then(|id| self.slots.get(&id))?;
        let entry = &mut self.entries[*slot as usize];
        let a = entry
            .accounts
            .iter_mut()
            .find(|a| i32::from(a.platform) == platform && &*a.handle == handle)?;
        let changed = change(a);
        if changed {
            entry.refresh_hot();
        }
        Some(changed)
    }

    /// Forgets an influencer for good: a later (older) upsert cannot bring them back.
    pub fn delete(&mut self, influencer: &str) -> bool {
        let Some(id) = influencer.strip_prefix("influencers/").and_then(parse_id) else {
            return false;
        };
        self.deleted.insert(id);
        self.exclusive.remove(&id);
        self.early.remove(&id);
        match self.slots.remove(&id) {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                e.live = false;
                e.display_name = "".into();
                e.accounts = Box::new([]);
                e.audience = None;
                self.free.push(slot);
                true
            }
            None => false,
        }
    }

    /// The hook for contracts: an exclusive contract in `category` until `end_micros`.
    pub fn set_exclusive(&mut self, id: u128, category: &str, end_micros: i64) {
        let list = self.exclusive.entry(id).or_default();
        list.retain(|(c, _)| &**c != category);
        list.push((category.into(), end_micros));
    }

    /// Whether `id` is under an exclusive contract in one of `categories` at `now_micros`.
    pub fn is_exclusive(&self, id: u128, categories: &[String], now_micros: i64) -> bool {
        !categories.is_empty()
            && self.exclusive.get(&id).is_some_and(|list| {
                list.iter()
                    .any(|(c, end)| *end > now_micros && categories.iter().any(|x| x == &**c))
            })
    }

    /// Whether anyone is under an exclusive contract (so a match can skip the lookups).
    pub fn has_exclusivities(&self) -> bool {
        !self.exclusive.is_empty()
    }

    /// Approximate bytes held per influencer: the entry plus what it points to.
    pub fn heap_bytes(&self) -> usize {
        let mut total = self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.slots.capacity() * (std::mem::size_of::<(u128, u32)>() + 1);
        for e in &self.entries {
            total += e.languages.len() * 4
                + e.rates.len() * std::mem::size_of::<Rate>()
                + e.display_name.len()
                + e.audience
                    .as_ref()
                    .map_or(0, |a| std::mem::size_of::<Audience>() + a.countries.len() * 8);
            for a in e.accounts.iter() {
                total += std::mem::size_of::<Account>() + a.handle.len();
            }
        }
        total
    }
}

/// Engagement by followers from the registry's derived metrics; NaN when it has none.
fn by_followers(m: &AccountMetrics) -> f32 {
    m.engagement_rates
        .iter()
        .find(|r| r.denominator == EngagementDenominator::Followers as i32)
        .map_or(f32::NAN, |r| r.rate as f32)
}

fn account(a: &SocialAccount) -> Account {
    let m = a.metrics.clone().unwrap_or_default();
    let v = a.vetting.clone();
    let latest = m.latest.clone().unwrap_or_default();
    Account {
        platform: a.platform as u8,
        handle: a.handle.as_str().into(),
        followers: latest.followers,
        tier: if a.metrics.is_some() {
            m.tier as u8
        } else {
            Tier::Unspecified as u8
        },
        engagement: by_followers(&m),
        sponsored: m.sponsored_share as f32,
        observed: micros(latest.observe_time.as_ref()),
        quality: v.as_ref().map_or(f32::NAN, |v| v.quality_score as f32),
        verdict: v.as_ref().map_or(Verdict::Unspecified as u8, |v| v.verdict as u8),
        flagged: v.as_ref().is_some_and(|v| !v.flags.is_empty()),
        evidence: v.as_ref().map(Evidence::from).unwrap_or_default(),
        vetted: v.as_ref().map_or(0, |v| micros(v.compute_time.as_ref())),
    }
}

/// Whether an influencer status takes offers.
pub fn is_active(status: u8) -> bool {
    status == InfluencerStatus::Active as u8 || status == InfluencerStatus::Unspecified as u8
}

/// The name of an age bucket for reasons ("25-34").
pub fn age_bucket_name(bucket: u8) -> &'static str {
    match AgeBucket::try_from(i32::from(bucket)) {
        Ok(AgeBucket::AgeBucket1317) => "13-17",
        Ok(AgeBucket::AgeBucket1824) => "18-24",
        Ok(AgeBucket::AgeBucket2534) => "25-34",
        Ok(AgeBucket::AgeBucket3544) => "35-44",
        Ok(AgeBucket::AgeBucket4554) => "45-54",
        Ok(AgeBucket::AgeBucket55Plus) => "55+",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chorus_proto::registry::{Consent, EngagementRate, MetricsSnapshot};
    use chorus_proto::types::{Location, Platform};

    pub(crate) fn ts(micros: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: micros / 1_000_000,
            nanos: ((micros % 1_000_000) * 1_000) as i32,
        })
    }

    pub(crate) fn metrics(followers: i64, rate: f64, at: i64) -> AccountMetrics {
        AccountMetrics {
            latest: Some(MetricsSnapshot {
                followers,
                observe_time: ts(at),
                ..Default::default()
            }),
            engagement_rates: vec![EngagementRate {
                denominator: EngagementDenominator::Followers as i32,
                rate,
            }],
            tier: if followers < 10_000 { Tier::Nano } else { Tier::Micro } as i32,
            sponsored_share: 0.1,
        }
    }

    pub(crate) fn influencer(n: u128, city: &str, followers: i64, version: i64) -> Influencer {
        Influencer {
            name: format!("influencers/{}", format_id(n)),
            display_name: format!("Person {n}"),
            accounts: vec![SocialAccount {
                platform: Platform::Instagram as i32,
                handle: format!("p{n}"),
                metrics: Some(metrics(followers, 0.06, 1)),
                ..Default::default()
            }],
            niches: vec!["pets".into()],
            location: Some(Location {
                country_code: "US".into(),
                region: "TX".into(),
                city: city.into(),
            }),
            languages: vec!["en".into()],
            status: InfluencerStatus::Active as i32,
            consent: Some(Consent {
                contact_allowed: true,
                ..Default::default()
            }),
            update_time: ts(version),
            ..Default::default()
        }
    }

    #[test]
    fn an_older_upsert_never_replaces_a_newer_one() {
        let mut ix = Index::new();
        assert!(ix.upsert(&influencer(1, "Austin", 5_000, 20)));
        assert!(!ix.upsert(&influencer(1, "Denver", 5_000, 10)), "older copy ignored");
        let e = ix.get(1).unwrap();
        assert_eq!(ix.places.name(e.city), "austin");
        assert!(ix.upsert(&influencer(1, "Denver", 5_000, 30)));
        assert_eq!(ix.places.name(ix.get(1).unwrap().city), "denver");
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn a_deleted_influencer_never_comes_back_and_its_slot_is_reused() {
        let mut ix = Index::new();
        ix.upsert(&influencer(1, "Austin", 5_000, 10));
        ix.upsert(&influencer(2, "Austin", 5_000, 10));
        assert!(ix.delete(&format!("influencers/{}", format_id(1))));
        assert!(
            !ix.upsert(&influencer(1, "Austin", 5_000, 99)),
            "a late page of the start-up read"
        );
        assert!(ix.get(1).is_none());
        assert_eq!(ix.entries().count(), 1);
        ix.upsert(&influencer(3, "Austin", 5_000, 10));
        assert_eq!(ix.slots().len(), 2, "slot of the deleted entry reused");
    }

    #[test]
    fn metrics_and_vetting_apply_only_when_newer_and_survive_an_older_profile_copy() {
        let mut ix = Index::new();
        let name = format!("influencers/{}", format_id(7));
        ix.upsert(&influencer(7, "Austin", 5_000, 10));
        assert!(ix.metrics(&name, Platform::Instagram as i32, "p7", &metrics(8_000, 0.09, 50)));
        assert!(!ix.metrics(&name, Platform::Instagram as i32, "p7", &metrics(1, 0.01, 40)));
        let report = VettingReport {
            platform: Platform::Instagram as i32,
            handle: "p7".into(),
            quality_score: 81.0,
            verdict: Verdict::Ok as i32,
            compute_time: ts(60),
            ..Default::default()
        };
        assert!(ix.vetting(&name, &report));
        // A profile update whose accounts carry older figures keeps the newer ones.
        assert!(ix.upsert(&influencer(7, "Austin", 5_000, 70)));
        let e = ix.get(7).unwrap();
        assert_eq!(e.hot.followers, 8_000);
        assert!((e.hot.engagement - 0.09).abs() < 1e-6);
        assert_eq!(e.hot.quality, 81.0);
        assert!(
            !ix.metrics(&name, Platform::Tiktok as i32, "p7", &metrics(1, 0.1, 99)),
            "no such account"
        );
    }

    #[test]
    fn figures_that_overtake_their_profile_during_loading_apply_when_it_arrives() {
        let mut ix = Index::new();
        let name = format!("influencers/{}", format_id(8));
        let report = VettingReport {
            platform: Platform::Instagram as i32,
            handle: "p8".into(),
            quality_score: 33.0,
            verdict: Verdict::Review as i32,
            compute_time: ts(60),
            ..Default::default()
        };
        // Events first, then the page of the start-up read with older figures.
        assert!(!ix.metrics(&name, Platform::Instagram as i32, "p8", &metrics(9_000, 0.08, 50)));
        assert!(!ix.vetting(&name, &report));
        assert!(ix.upsert(&influencer(8, "Austin", 5_000, 10)));
        let e = ix.get(8).unwrap();
        assert_eq!(e.hot.followers, 9_000, "the newer metrics won over the page's");
        assert_eq!(e.hot.quality, 33.0);
        // Once loaded, nothing is kept for later: events follow their upsert.
        ix.finish_loading();
        let late = format!("influencers/{}", format_id(9));
        assert!(!ix.metrics(&late, Platform::Instagram as i32, "p9", &metrics(9_000, 0.08, 50)));
        assert!(ix.upsert(&influencer(9, "Austin", 5_000, 10)));
        assert_eq!(ix.get(9).unwrap().hot.followers, 5_000);
    }

    #[test]
    fn exclusivity_holds_until_its_end_in_its_category_only() {
        let mut ix = Index::new();
        ix.set_exclusive(5, "pet-food", 100);
        let cats = vec!["pet-food".to_owned()];
        assert!(ix.is_exclusive(5, &cats, 50));
        assert!(!ix.is_exclusive(5, &cats, 100));
        assert!(!ix.is_exclusive(5, &["soda".to_owned()], 50));
        assert!(!ix.is_exclusive(6, &cats, 50));
    }
}
