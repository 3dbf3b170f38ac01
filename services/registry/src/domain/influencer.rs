//! What makes an influencer profile or a metrics snapshot valid, and its normal form: handles
//! lower case without "@", country codes upper case, language tags canonical, niches from the
//! taxonomy. Every check names the offending field, relative to the message checked.

use std::collections::HashSet;

use chorus_kit::{Error, Violations};
use chorus_proto::registry::{AgeBucket, Influencer, InfluencerStatus, MetricsSnapshot};
use chorus_proto::types::{CompensationKind, DeliverableKind, Platform};

use super::limits::*;
use super::niche;

/// An account's key: unique across the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    pub platform: i32,
    pub handle: String,
}

/// "account instagram/maya.bakes", as errors name it.
impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let platform = Platform::try_from(self.platform)
            .map(|p| p.as_str_name().trim_start_matches("PLATFORM_").to_ascii_lowercase())
            .unwrap_or_else(|_| self.platform.to_string());
        write!(f, "account {platform}/{}", self.handle)
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks `inf` and returns its normal form, with output-only fields cleared. Lists over their
/// bound are refused as a whole, and only their first entries are checked one by one.
pub fn normalize(mut inf: Influencer) -> Result<Influencer, Error> {
    let mut v = Violations::new();
    inf.display_name = inf.display_name.trim().to_owned();
    v.check(inf.display_name.is_empty(), "display_name", "required");
    v.check(
        too_long(&inf.display_name, MAX_TEXT),
        "display_name",
        format!("at most {MAX_TEXT} characters"),
    );
    // PostgreSQL refuses NUL in text, and no name or place has a control character.
    v.check(
        has_control(&inf.display_name),
        "display_name",
        "must not contain control characters",
    );

    v.check(
        inf.accounts.is_empty(),
        "accounts",
        "at least one social account is required",
    );
    v.check(
        inf.accounts.len() > MAX_ACCOUNTS,
        "accounts",
        format!("at most {MAX_ACCOUNTS} accounts"),
    );
    let mut keys = HashSet::new();
    for (i, a) in inf.accounts.iter_mut().enumerate().take(MAX_ACCOUNTS) {
        a.metrics = None;
        a.vetting = None;
        if let Err(e) = check_platform(a.platform) {
            v.add(format!("accounts[{i}].platform"), e);
        }
        match normalize_handle(&a.handle) {
            Ok(h) => a.handle = h,
            Err(e) => v.add(format!("accounts[{i}].handle"), e),
        }
        a.url = a.url.trim().to_owned();
        v.check(
            !(a.url.is_empty() || a.url.starts_with("https://") || a.url.starts_with("http://"))
                || too_long(&a.url, MAX_URL),
            format!("accounts[{i}].url"),
            format!("must be an http(s) URL of at most {MAX_URL} characters"),
        );
        if !keys.insert((a.platform, a.handle.clone())) {
            v.add(format!("accounts[{i}]"), "the same platform and handle appear twice");
        }
    }

    v.check(
        inf.niches.len() > MAX_NICHES,
        "niches",
        format!("at most {MAX_NICHES} niches"),
    );
    // Repeats are dropped, first one kept.
    let mut niches = Vec::new();
    let mut seen = HashSet::new();
    for (i, n) in inf.niches.iter().enumerate().take(MAX_NICHES) {
        match check_niche(n) {
            Ok(n) => {
                if seen.insert(n.clone()) {
                    niches.push(n);
                }
            }
            Err(e) => v.add(format!("niches[{i}]"), e),
        }
    }
    inf.niches = niches;

    if let Some(loc) = inf.location.as_mut() {
        loc.country_code = loc.country_code.trim().to_ascii_uppercase();
        v.check(
            !loc.country_code.is_empty() && !is_country(&loc.country_code),
            "location.country_code",
            "must be an ISO 3166-1 alpha-2 code such as US",
        );
        loc.region = loc.region.trim().to_owned();
        loc.city = loc.city.trim().to_owned();
        v.check(
            too_long(&loc.region, MAX_TEXT),
            "location.region",
            format!("at most {MAX_TEXT} characters"),
        );
        v.check(
            too_long(&loc.city, MAX_TEXT),
            "location.city",
            format!("at most {MAX_TEXT} characters"),
        );
        for (field, text) in [("location.region", &loc.region), ("location.city", &loc.city)] {
            v.check(has_control(text), field, "must not contain control characters");
        }
    }

    v.check(
        inf.languages.len() > MAX_LANGUAGES,
        "languages",
        format!("at most {MAX_LANGUAGES} languages"),
    );
    // Repeats are dropped, first one kept.
    let mut languages = Vec::new();
    let mut seen = HashSet::new();
    for (i, l) in inf.languages.iter().enumerate().take(MAX_LANGUAGES) {
        match normalize_language(l) {
            Some(l) => {
                if seen.insert(l.clone()) {
                    languages.push(l);
                }
            }
            None => v.add(format!("languages[{i}]"), LANGUAGE_TAG),
        }
    }
    inf.languages = languages;

    if let Some(aud) = &inf.audience {
        v.check(
            aud.age_buckets.len() > MAX_AGE_BUCKETS,
            "audience.age_buckets",
            format!("at most {MAX_AGE_BUCKETS}, one per bucket"),
        );
        let mut total = 0.0;
        for (i, b) in aud.age_buckets.iter().enumerate().take(MAX_AGE_BUCKETS) {
            v.check(
                AgeBucket::try_from(b.bucket).map_or(true, |b| b == AgeBucket::Unspecified),
                format!("audience.age_buckets[{i}].bucket"),
                "unknown or unspecified age bucket",
            );
            v.check(
                !is_share(b.share),
                format!("audience.age_buckets[{i}].share"),
                "must be between 0 and 1",
            );
            total += b.share;
        }
        v.check(total > 1.0001, "audience.age_buckets", "shares add up to more than 1");
        if let Some(g) = &aud.gender {
            for (name, share) in [("female", g.female), ("male", g.male), ("other", g.other)] {
                v.check(
                    !is_share(share),
                    format!("audience.gender.{name}"),
                    "must be between 0 and 1",
                );
            }
            v.check(
                g.female + g.male + g.other > 1.0001,
                "audience.gender",
                "shares add up to more than 1",
            );
        }
        v.check(
            aud.top_countries.len() > MAX_TOP_COUNTRIES,
            "audience.top_countries",
            format!("at most {MAX_TOP_COUNTRIES}"),
        );
        let mut total = 0.0;
        for (i, c) in aud.top_countries.iter().enumerate().take(MAX_TOP_COUNTRIES) {
            v.check(
                !is_country(&c.country_code.to_ascii_uppercase()),
                format!("audience.top_countries[{i}].country_code"),
                "must be an ISO 3166-1 alpha-2 code",
            );
            v.check(
                !is_share(c.share),
                format!("audience.top_countries[{i}].share"),
                "must be between 0 and 1",
            );
            total += c.share;
        }
        v.check(total > 1.0001, "audience.top_countries", "shares add up to more than 1");
    }
    if let Some(aud) = inf.audience.as_mut() {
        for c in &mut aud.top_countries {
            c.country_code = c.country_code.to_ascii_uppercase();
        }
    }

    v.check(
        inf.rate_card.len() > MAX_RATE_CARD,
        "rate_card",
        format!("at most {MAX_RATE_CARD}, one per deliverable kind"),
    );
    let mut kinds = HashSet::new();
    for (i, r) in inf.rate_card.iter_mut().enumerate().take(MAX_RATE_CARD) {
        v.check(
            DeliverableKind::try_from(r.kind).map_or(true, |k| k == DeliverableKind::Unspecified),
            format!("rate_card[{i}].kind"),
            "unknown or unspecified deliverable kind",
        );
        v.check(
            !kinds.insert(r.kind),
            format!("rate_card[{i}].kind"),
            "kind appears twice",
        );
        match r.price.as_mut() {
            None => v.add(format!("rate_card[{i}].price"), "required"),
            Some(p) => {
                p.currency_code = p.currency_code.trim().to_ascii_uppercase();
                v.check(
                    p.currency_code.len() != 3 || !p.currency_code.chars().all(|c| c.is_ascii_uppercase()),
                    format!("rate_card[{i}].price.currency_code"),
                    "must be an ISO 4217 code such as USD",
                );
                v.check(
                    p.amount_minor < 0,
                    format!("rate_card[{i}].price.amount_minor"),
                    "must not be negative",
                );
            }
        }
    }

    v.check(
        inf.compensation_accepted.len() > MAX_COMPENSATION_KINDS,
        "compensation_accepted",
        format!("at most {MAX_COMPENSATION_KINDS}"),
    );
    // Repeats are dropped, first one kept.
    let mut comp = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in inf
        .compensation_accepted
        .iter()
        .enumerate()
        .take(MAX_COMPENSATION_KINDS)
    {
        match CompensationKind::try_from(*c) {
            Ok(k) if k != CompensationKind::Unspecified => {
                if seen.insert(*c) {
                    comp.push(*c);
                }
            }
            _ => v.add(
                format!("compensation_accepted[{i}]"),
                "unknown or unspecified compensation kind",
            ),
        }
    }
    inf.compensation_accepted = comp;

    if let Some(c) = inf.contact.as_mut() {
        c.email = c.email.trim().to_owned();
        c.phone = c.phone.trim().to_owned();
        v.check(
            !c.email.is_empty() && (too_long(&c.email, MAX_EMAIL) || !is_email(&c.email)),
            "contact.email",
            format!("must be an email address of at most {MAX_EMAIL} characters"),
        );
        v.check(
            too_long(&c.phone, MAX_PHONE) || !c.phone.chars().all(|ch| ch.is_ascii_digit() || " +-().".contains(ch)),
            "contact.phone",
            format!("must be a phone number of at most {MAX_PHONE} characters"),
        );
    }

    // Unspecified stays so: the store makes it ACTIVE for a new influencer and keeps the
    // stored status on an update, so a re-import without a status never unblocks anyone.
    if InfluencerStatus::try_from(inf.status).is_err() {
        v.add("status", format!("unknown status {}", inf.status));
    }
    inf.create_time = None;
    inf.update_time = None;
    v.finish()?;
    Ok(inf)
}

/// The keys of a normalized influencer's accounts.
pub fn keys(inf: &Influencer) -> Vec<AccountKey> {
    inf.accounts
        .iter()
        .map(|a| AccountKey {
            platform: a.platform,
            handle: a.handle.clone(),
        })
        .collect()
}

/// Checks a snapshot and fills defaults (window of 30 days, observed now).
pub fn normalize_snapshot(mut s: MetricsSnapshot, now_micros: i64) -> Result<MetricsSnapshot, Error> {
    let mut v = Violations::new();
    if let Err(e) = check_platform(s.platform) {
        v.add("platform", e);
    }
    match normalize_handle(&s.handle) {
        Ok(h) => s.handle = h,
        Err(e) => v.add("handle", e),
    }
    for (name, value) in [
        ("followers", s.followers),
        ("following", s.following),
        ("posts", s.posts),
        ("window_posts", s.window_posts),
        ("window_likes", s.window_likes),
        ("window_comments", s.window_comments),
        ("window_sponsored_posts", s.window_sponsored_posts),
        ("window_reach", s.window_reach.unwrap_or(0)),
        ("window_impressions", s.window_impressions.unwrap_or(0)),
    ] {
        v.check(value < 0, name, "must not be negative");
    }
    v.check(
        s.window_sponsored_posts > s.window_posts,
        "window_sponsored_posts",
        "cannot exceed window_posts",
    );
    if s.window_days == 0 {
        s.window_days = 30;
    }
    v.check(
        !(1..=366).contains(&s.window_days),
        "window_days",
        "must be between 1 and 366",
    );
    match &s.observe_time {
        None => s.observe_time = Some(micros_to_timestamp(now_micros)),
        Some(t) => {
            let at = timestamp_to_micros(t);
            v.check(
                t.nanos < 0 || t.nanos >= 1_000_000_000 || at > now_micros + 86_400_000_000,
                "observe_time",
                "must be a valid time, not in the future",
            );
        }
    }
    v.finish()?;
    Ok(s)
}

fn check_platform(p: i32) -> Result<(), String> {
    match Platform::try_from(p) {
        Ok(Platform::Unspecified) => Err("required".to_owned()),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("unknown platform {p}")),
    }
}

/// What a bad language tag is told.
pub const LANGUAGE_TAG: &str = "must be a BCP 47 tag of at most 35 characters, such as en or es-MX";

/// A niche id in normal form (trimmed, lower case), or why it is not one of the taxonomy.
pub fn check_niche(raw: &str) -> Result<String, String> {
    let n = raw.trim();
    if too_long(n, MAX_NICHE_ID) {
        return Err(format!("at most {MAX_NICHE_ID} characters; see docs/niches.md"));
    }
    let n = n.to_ascii_lowercase();
    if !niche::is_known(&n) {
        return Err(format!("unknown niche {n:?}; see docs/niches.md"));
    }
    Ok(n)
}

/// Handles are case-insensitive: lower case, no leading "@", letters, digits, '.', '_', '-'.
pub fn normalize_handle(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_start_matches('@');
    let too_long_handle = || Err(format!("at most {MAX_HANDLE} characters"));
    // Checked before lower-casing too, so a huge handle is not copied first.
    if too_long(trimmed, MAX_HANDLE) {
        return too_long_handle();
    }
    let h = trimmed.to_lowercase();
    if h.is_empty() {
        return Err("required".to_owned());
    }
    if too_long(&h, MAX_HANDLE) {
        return too_long_handle();
    }
    if !h.chars().all(|c| c.is_alphanumeric() || "._-".contains(c)) {
        return Err("only letters, digits, '.', '_' and '-'".to_owned());
    }
    Ok(h)
}

fn is_country(code: &str) -> bool {
    code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())
}

fn is_share(x: f64) -> bool {
    x.is_finite() && (0.0..=1.0).contains(&x)
}

fn is_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace),
        None => false,
    }
}

/// BCP 47 in canonical case: language lower, script title, region upper ("es-MX", "zh-Hant").
pub fn normalize_language(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if too_long(raw, MAX_LANGUAGE_TAG) {
        return None;
    }
    let mut parts = raw.split(['-', '_']);
    let lang = parts.next()?;
    if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut out = lang.to_ascii_lowercase();
    for p in parts {
        if !(2..=8).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        out.push('-');
        match p.len() {
            2 => out.push_str(&p.to_ascii_uppercase()),
            4 => {
                out.push_str(&p[..1].to_ascii_uppercase());
                out.push_str(&p[1..].to_ascii_lowercase());
            }
            _ => out.push_str(&p.to_ascii_lowercase()),
        }
    }
    Some(out)
}

pub fn timestamp_to_micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1_000)
}

pub fn micros_to_timestamp(m: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: m.div_euclid(1_000_000),
        nanos: (m.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::registry::{RateCardEntry, SocialAccount};
    use chorus_proto::types::{Location, Money};

    fn valid() -> Influencer {
        Influencer {
            display_name: " Maya Chen ".into(),
            accounts: vec![SocialAccount {
                platform: Platform::Instagram as i32,
                handle: "@Maya.Bakes".into(),
                url: "https://instagram.com/maya.bakes".into(),
                metrics: None,
                vetting: None,
            }],
            niches: vec!["Vegan-Food".into(), "vegan-food".into()],
            location: Some(Location {
                country_code: "us".into(),
                region: "TX".into(),
                city: "Austin".into(),
            }),
            languages: vec!["en-us".into(), "es".into()],
            rate_card: vec![RateCardEntry {
                kind: DeliverableKind::FeedPost as i32,
                price: Some(Money {
                    currency_code: "usd".into(),
                    amount_minor: 10_000,
                }),
            }],
            ..Default::default()
        }
    }

    fn fields(e: Error) -> Vec<String> {
        e.violations().iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn a_valid_profile_comes_back_in_normal_form() {
        let n = normalize(valid()).unwrap();
        assert_eq!(n.display_name, "Maya Chen");
        assert_eq!(n.accounts[0].handle, "maya.bakes");
        assert_eq!(n.niches, ["vegan-food"]);
        assert_eq!(n.location.unwrap().country_code, "US");
        assert_eq!(n.languages, ["en-US", "es"]);
        assert_eq!(n.rate_card[0].price.as_ref().unwrap().currency_code, "USD");
        assert_eq!(n.status, InfluencerStatus::Unspecified as i32, "the store decides");
    }

    #[test]
    fn control_characters_are_refused_where_postgresql_would_fail() {
        let mut i = valid();
        i.display_name = "Maya\u{0}".into();
        i.location.as_mut().unwrap().city = "Aus\ntin".into();
        assert_eq!(fields(normalize(i).unwrap_err()), ["display_name", "location.city"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut i = valid();
        i.display_name = "  ".into();
        i.accounts[0].platform = 99;
        i.niches.push("crypto-bros".into());
        i.languages.push("english!".into());
        i.rate_card[0].price.as_mut().unwrap().amount_minor = -5;
        i.compensation_accepted.push(0);
        i.status = 42;
        let got = fields(normalize(i).unwrap_err());
        assert_eq!(
            got,
            [
                "display_name",
                "accounts[0].platform",
                "niches[2]",
                "languages[2]",
                "rate_card[0].price.amount_minor",
                "compensation_accepted[0]",
                "status"
            ]
        );
    }

    #[test]
    fn accounts_are_required_and_unique() {
        let mut i = valid();
        i.accounts.clear();
        assert_eq!(fields(normalize(i).unwrap_err()), ["accounts"]);
        let mut i = valid();
        let mut twin = i.accounts[0].clone();
        twin.handle = "maya.BAKES".into();
        i.accounts.push(twin);
        assert_eq!(fields(normalize(i).unwrap_err()), ["accounts[1]"]);
    }

    #[test]
    fn snapshots_refuse_negative_counts_and_impossible_windows() {
        let s = MetricsSnapshot {
            platform: Platform::Tiktok as i32,
            handle: "x".into(),
            followers: -1,
            window_posts: 2,
            window_sponsored_posts: 3,
            ..Default::default()
        };
        let got = fields(normalize_snapshot(s, 0).unwrap_err());
        assert_eq!(got, ["followers", "window_sponsored_posts"]);
    }

    #[test]
    fn snapshot_defaults() {
        let s = MetricsSnapshot {
            platform: Platform::Tiktok as i32,
            handle: "@X".into(),
            ..Default::default()
        };
        let n = normalize_snapshot(s, 1_500_000).unwrap();
        assert_eq!(n.window_days, 30);
        assert_eq!(n.handle, "x");
        assert_eq!(
            n.observe_time,
            Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 500_000_000
            })
        );
    }

    #[test]
    fn languages_take_canonical_case() {
        assert_eq!(normalize_language("ZH-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(normalize_language("e"), None);
    }
}
