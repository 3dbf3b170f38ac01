//! What a valid campaign is. Every rule about a brief lives here, with its test: the handlers
//! call [`check_campaign`] and report every offending field at once, named as the caller wrote
//! it (`campaign.brief.niches[1].niche`). The bounds are in `limits`.

use std::collections::HashSet;

use chorus_catalog::niche;
use chorus_kit::Violations;
use chorus_kit::names::{InfluencerName, ResourceName};
use chorus_proto::matching::{Brief, Campaign, CampaignStatus, Objective};
use chorus_proto::registry::AgeBucket;
use chorus_proto::types::{CompensationKind, DeliverableKind, Platform, Tier};

use super::limits::*;

fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn known<E: TryFrom<i32>>(value: i32) -> bool {
    value != 0 && E::try_from(value).is_ok()
}

/// Why a niche is refused, if it is: its value is shown only when short, so an error never
/// grows with the input.
fn niche_problem(n: &str) -> Option<String> {
    if too_long(n, MAX_SLUG) {
        Some(format!("at most {MAX_SLUG} characters; see docs/niches.md"))
    } else if !niche::is_known(n) {
        Some(format!("unknown niche {n:?}; see docs/niches.md"))
    } else {
        None
    }
}

/// Adds a violation on `field` when `len` is over `max`.
fn check_len(v: &mut Violations, field: &str, len: usize, max: usize) {
    v.check(len > max, field, format!("at most {max}"));
}

/// Writes a campaign's ids in the form they are stored in: an excluded influencer named with any
/// spelling of its UUID (upper case, braces, no hyphens, as the first release accepted) becomes
/// `influencers/{canonical id}`, so it matches and passes [`check_campaign`]. Anything that is no
/// UUID is left for the check to name.
pub fn normalize_campaign(c: &mut Campaign) {
    let Some(x) = c.brief.as_mut().and_then(|b| b.exclusions.as_mut()) else {
        return;
    };
    for name in x.influencers.iter_mut().take(MAX_EXCLUDED_INFLUENCERS) {
        if let Some(id) = name
            .strip_prefix("influencers/")
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
        {
            *name = format!("influencers/{}", id.hyphenated());
        }
    }
}

/// Checks a whole campaign as written by a caller (create, or the result of an update).
pub fn check_campaign(c: &Campaign, v: &mut Violations) {
    v.check(c.display_name.trim().is_empty(), "campaign.display_name", "required");
    v.check(
        too_long(&c.display_name, MAX_TEXT),
        "campaign.display_name",
        format!("at most {MAX_TEXT} characters"),
    );
    match Objective::try_from(c.objective) {
        Ok(Objective::Unspecified) => v.add("campaign.objective", "required"),
        Err(_) => v.add("campaign.objective", format!("unknown objective {}", c.objective)),
        Ok(_) => {}
    }
    v.check(
        CampaignStatus::try_from(c.status).is_err(),
        "campaign.status",
        format!("unknown status {}", c.status),
    );
    match &c.brief {
        None => v.add("campaign.brief", "required"),
        Some(b) => check_brief(b, c.objective == Objective::AudienceTest as i32, v),
    }
}

fn check_brief(b: &Brief, audience_test: bool, v: &mut Violations) {
    let p = "campaign.brief";
    for (field, len, max) in [
        ("niches", b.niches.len(), MAX_NICHES),
        ("locations", b.locations.len(), MAX_LOCATIONS),
        ("languages", b.languages.len(), MAX_LANGUAGES),
        ("tiers", b.tiers.len(), MAX_ENUM_VALUES),
        ("deliverables", b.deliverables.len(), MAX_DELIVERABLES),
        ("compensation_offered", b.compensation_offered.len(), MAX_ENUM_VALUES),
        ("segments", b.segments.len(), MAX_SEGMENTS),
    ] {
        check_len(v, &format!("{p}.{field}"), len, max);
    }
    let mut niches = HashSet::new();
    for (i, n) in b.niches.iter().enumerate().take(MAX_NICHES) {
        if let Some(problem) = niche_problem(&n.niche) {
            v.add(format!("{p}.niches[{i}].niche"), problem);
        } else if !niches.insert(n.niche.as_str()) {
            v.add(format!("{p}.niches[{i}].niche"), "listed twice");
        }
        if !n.weight.is_finite() || n.weight < 0.0 || n.weight > MAX_NICHE_WEIGHT {
            v.add(
                format!("{p}.niches[{i}].weight"),
                format!("must be a number from 0 to {MAX_NICHE_WEIGHT}"),
            );
        }
    }
    for (i, l) in b.locations.iter().enumerate().take(MAX_LOCATIONS) {
        if !is_country(&l.country_code) {
            v.add(
                format!("{p}.locations[{i}].country_code"),
                "required: ISO 3166-1 alpha-2, upper case",
            );
        }
        for (field, text) in [("region", &l.region), ("city", &l.city)] {
            v.check(
                too_long(text, MAX_TEXT),
                format!("{p}.locations[{i}].{field}"),
                format!("at most {MAX_TEXT} characters"),
            );
        }
    }
    for (i, l) in b.languages.iter().enumerate().take(MAX_LANGUAGES) {
        let ok =
            !l.is_empty() && l.len() <= MAX_LANGUAGE_TAG && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
        v.check(
            !ok,
            format!("{p}.languages[{i}]"),
            "must be a BCP 47 tag, for example \"en\" or \"es-MX\"",
        );
    }
    for (i, t) in b.tiers.iter().enumerate().take(MAX_ENUM_VALUES) {
        v.check(
            !known::<Tier>(*t),
            format!("{p}.tiers[{i}]"),
            format!("unknown tier {t}"),
        );
    }
    if let Some(q) = b.min_quality_score {
        v.check(
            !(0.0..=100.0).contains(&q),
            format!("{p}.min_quality_score"),
            "must be from 0 to 100",
        );
    }
    for (field, rate) in [
        ("min_engagement_rate", b.min_engagement_rate),
        ("max_engagement_rate", b.max_engagement_rate),
    ] {
        if let Some(r) = rate {
            v.check(
                !(0.0..=1.0).contains(&r),
                format!("{p}.{field}"),
                "a fraction from 0 to 1 (0.05 is 5%)",
            );
        }
    }
    if let (Some(lo), Some(hi)) = (b.min_engagement_rate, b.max_engagement_rate) {
        v.check(
            lo > hi,
            format!("{p}.max_engagement_rate"),
            "must not be below min_engagement_rate",
        );
    }
    v.check(b.deliverables.is_empty(), format!("{p}.deliverables"), "at least one");
    let mut wanted = HashSet::new();
    for (i, d) in b.deliverables.iter().enumerate().take(MAX_DELIVERABLES) {
        v.check(
            !known::<DeliverableKind>(d.kind),
            format!("{p}.deliverables[{i}].kind"),
            format!("required, a known kind (got {})", d.kind),
        );
        v.check(
            !known::<Platform>(d.platform),
            format!("{p}.deliverables[{i}].platform"),
            format!("required, a known platform (got {})", d.platform),
        );
        v.check(
            !(1..=MAX_DELIVERABLE_COUNT).contains(&d.count),
            format!("{p}.deliverables[{i}].count"),
            format!("from 1 to {MAX_DELIVERABLE_COUNT}"),
        );
        v.check(
            !wanted.insert((d.kind, d.platform)),
            format!("{p}.deliverables[{i}]"),
            "this kind on this platform is listed twice: give one entry its total count",
        );
    }
    v.check(
        b.compensation_offered.is_empty(),
        format!("{p}.compensation_offered"),
        "at least one",
    );
    for (i, k) in b.compensation_offered.iter().enumerate().take(MAX_ENUM_VALUES) {
        v.check(
            !known::<CompensationKind>(*k),
            format!("{p}.compensation_offered[{i}]"),
            format!("unknown compensation kind {k}"),
        );
    }
    match &b.budget {
        None => v.add(format!("{p}.budget"), "required"),
        Some(m) => {
            if !chorus_catalog::currency::is_currency(&m.currency_code) {
                let got = if too_long(&m.currency_code, 8) {
                    String::new()
                } else {
                    format!(" (got {:?})", m.currency_code)
                };
                v.add(
                    format!("{p}.budget.currency_code"),
                    format!("required: an ISO 4217 currency, upper case{got}"),
                );
            }
            v.check(
                !(1..=MAX_BUDGET_MINOR).contains(&m.amount_minor),
                format!("{p}.budget.amount_minor"),
                format!("must be positive, at most {MAX_BUDGET_MINOR}"),
            );
        }
    }
    v.check(
        !(1..=MAX_HEADCOUNT).contains(&b.headcount),
        format!("{p}.headcount"),
        format!("from 1 to {MAX_HEADCOUNT}"),
    );
    if let Some(s) = &b.schedule {
        for (name, t) in [("start_time", &s.start_time), ("end_time", &s.end_time)] {
            v.check(
                t.as_ref().is_some_and(|t| !(0..1_000_000_000).contains(&t.nanos)),
                format!("{p}.schedule.{name}.nanos"),
                "from 0 to 999,999,999",
            );
        }
    }
    if let Some(s) = &b.schedule
        && let (Some(start), Some(end)) = (&s.start_time, &s.end_time)
    {
        v.check(
            (end.seconds, end.nanos) <= (start.seconds, start.nanos),
            format!("{p}.schedule.end_time"),
            "must be after start_time",
        );
    }
    v.check(
        !is_country(&b.disclosure_jurisdiction),
        format!("{p}.disclosure_jurisdiction"),
        "required: ISO 3166-1 alpha-2, upper case, for example \"US\"",
    );
    if let Some(x) = &b.exclusions {
        let at = format!("{p}.exclusions");
        check_len(
            v,
            &format!("{at}.influencers"),
            x.influencers.len(),
            MAX_EXCLUDED_INFLUENCERS,
        );
        check_len(
            v,
            &format!("{at}.exclusivity_categories"),
            x.exclusivity_categories.len(),
            MAX_EXCLUSIVITY_CATEGORIES,
        );
        for (i, name) in x.influencers.iter().enumerate().take(MAX_EXCLUDED_INFLUENCERS) {
            v.check(
                InfluencerName::parse(name).is_none(),
                format!("{p}.exclusions.influencers[{i}]"),
                format!("must be {} (a canonical UUID id)", InfluencerName::PATTERN),
            );
        }
        for (i, c) in x
            .exclusivity_categories
            .iter()
            .enumerate()
            .take(MAX_EXCLUSIVITY_CATEGORIES)
        {
            v.check(
                !is_slug(c),
                format!("{p}.exclusions.exclusivity_categories[{i}]"),
                format!("1 to {MAX_SLUG} lower-case letters, digits and dashes, for example \"pet-food\""),
            );
        }
    }
    if let Some(caps) = &b.diversity_caps {
        for (field, share) in [
            ("max_city_share", caps.max_city_share),
            ("max_niche_share", caps.max_niche_share),
        ] {
            v.check(
                !(0.0..=1.0).contains(&share),
                format!("{p}.diversity_caps.{field}"),
                "a share from 0 to 1 (0 means no cap); 1 is 100%",
            );
        }
    }
    let mut labels = HashSet::new();
    for (i, s) in b.segments.iter().enumerate().take(MAX_SEGMENTS) {
        let f = format!("{p}.segments[{i}]");
        if s.label.trim().is_empty() {
            v.add(format!("{f}.label"), "required");
        } else if too_long(&s.label, MAX_SEGMENT_LABEL) {
            v.add(format!("{f}.label"), format!("at most {MAX_SEGMENT_LABEL} characters"));
        } else if !labels.insert(s.label.as_str()) {
            v.add(format!("{f}.label"), "used by another segment");
        }
        let any = !s.city.is_empty() || !s.country_code.is_empty() || !s.niche.is_empty() || s.age_bucket != 0;
        v.check(
            !any,
            f.clone(),
            "needs at least one of city, country_code, niche, age_bucket",
        );
        v.check(
            !s.country_code.is_empty() && !is_country(&s.country_code),
            format!("{f}.country_code"),
            "ISO 3166-1 alpha-2, upper case",
        );
        v.check(
            too_long(&s.city, MAX_TEXT),
            format!("{f}.city"),
            format!("at most {MAX_TEXT} characters"),
        );
        if !s.niche.is_empty()
            && let Some(problem) = niche_problem(&s.niche)
        {
            v.add(format!("{f}.niche"), problem);
        }
        v.check(
            s.age_bucket != 0 && !known::<AgeBucket>(s.age_bucket),
            format!("{f}.age_bucket"),
            format!("unknown age bucket {}", s.age_bucket),
        );
    }
    if audience_test && b.segments.len() < 2 {
        v.add(format!("{p}.segments"), "an audience test needs at least two segments");
    }
    if let Some(a) = &b.audience {
        let at = format!("{p}.audience");
        check_len(v, &format!("{at}.age_buckets"), a.age_buckets.len(), MAX_ENUM_VALUES);
        check_len(v, &format!("{at}.countries"), a.countries.len(), MAX_AUDIENCE_COUNTRIES);
        for (i, bucket) in a.age_buckets.iter().enumerate().take(MAX_ENUM_VALUES) {
            v.check(
                !known::<AgeBucket>(*bucket),
                format!("{p}.audience.age_buckets[{i}]"),
                format!("unknown age bucket {bucket}"),
            );
        }
        for (i, c) in a.countries.iter().enumerate().take(MAX_AUDIENCE_COUNTRIES) {
            v.check(
                !is_country(c),
                format!("{p}.audience.countries[{i}]"),
                "ISO 3166-1 alpha-2, upper case",
            );
        }
    }
}

/// Whether a campaign in `from` may be moved to `to` by an update. Cancelling has its own RPC;
/// completed and cancelled campaigns are final.
pub fn status_change_allowed(from: CampaignStatus, to: CampaignStatus) -> bool {
    use CampaignStatus::*;
    let rank = |s: CampaignStatus| match s {
        Draft | Unspecified => 0,
        Matching => 1,
        Contracting => 2,
        Live => 3,
        Completed => 4,
        Cancelled => 5,
    };
    from == to || (!matches!(from, Completed | Cancelled) && to != Cancelled && rank(to) >= rank(from))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chorus_proto::matching::{DeliverableWanted, DiversityCaps, Exclusions, NicheWeight, Schedule, Segment};
    use chorus_proto::types::{Location, Money};

    /// "Vegan dog treats: 50 wellness-minded dog lovers in Austin and Denver, $5,000, one post
    /// and one story each, product or cash."
    pub(crate) fn dog_treats() -> Campaign {
        Campaign {
            display_name: "Vegan dog treats".into(),
            objective: Objective::Awareness as i32,
            brief: Some(Brief {
                niches: vec![
                    NicheWeight {
                        niche: "pets".into(),
                        weight: 2.0,
                    },
                    NicheWeight {
                        niche: "wellness".into(),
                        weight: 1.0,
                    },
                ],
                locations: vec![
                    Location {
                        country_code: "US".into(),
                        city: "Austin".into(),
                        ..Default::default()
                    },
                    Location {
                        country_code: "US".into(),
                        city: "Denver".into(),
                        ..Default::default()
                    },
                ],
                deliverables: vec![
                    DeliverableWanted {
                        kind: DeliverableKind::FeedPost as i32,
                        count: 1,
                        platform: Platform::Instagram as i32,
                    },
                    DeliverableWanted {
                        kind: DeliverableKind::Story as i32,
                        count: 1,
                        platform: Platform::Instagram as i32,
                    },
                ],
                compensation_offered: vec![CompensationKind::Product as i32, CompensationKind::Cash as i32],
                budget: Some(Money {
                    currency_code: "USD".into(),
                    amount_minor: 500_000,
                }),
                headcount: 50,
                disclosure_jurisdiction: "US".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn fields(c: &Campaign) -> Vec<String> {
        let mut v = Violations::new();
        check_campaign(c, &mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(e) => e.violations().iter().map(|v| v.field.clone()).collect(),
        }
    }

    #[test]
    fn the_dog_treats_brief_is_valid() {
        assert_eq!(fields(&dog_treats()), Vec::<String>::new());
    }

    #[test]
    fn an_empty_campaign_names_every_required_field() {
        let f = fields(&Campaign::default());
        assert_eq!(f, vec!["campaign.display_name", "campaign.objective", "campaign.brief"]);
        let mut c = dog_treats();
        c.brief = Some(Brief::default());
        assert_eq!(
            fields(&c),
            vec![
                "campaign.brief.deliverables",
                "campaign.brief.compensation_offered",
                "campaign.brief.budget",
                "campaign.brief.headcount",
                "campaign.brief.disclosure_jurisdiction",
            ]
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = dog_treats();
        let b = c.brief.as_mut().unwrap();
        b.niches[1].niche = "dogs".into();
        b.niches[0].weight = f64::NAN;
        b.budget.as_mut().unwrap().amount_minor = -5;
        b.diversity_caps = Some(DiversityCaps {
            max_city_share: 1.5,
            max_niche_share: 0.3,
        });
        b.min_engagement_rate = Some(0.2);
        b.max_engagement_rate = Some(0.1);
        b.deliverables[1].count = 0;
        b.locations[0].country_code = "us".into();
        b.tiers = vec![42];
        assert_eq!(
            fields(&c),
            vec![
                "campaign.brief.niches[0].weight",
                "campaign.brief.niches[1].niche",
                "campaign.brief.locations[0].country_code",
                "campaign.brief.tiers[0]",
                "campaign.brief.max_engagement_rate",
                "campaign.brief.deliverables[1].count",
                "campaign.brief.budget.amount_minor",
                "campaign.brief.diversity_caps.max_city_share",
            ]
        );
    }

    #[test]
    fn money_and_deliverables_are_checked_for_what_sums_and_prices_need() {
        let mut c = dog_treats();
        let b = c.brief.as_mut().unwrap();
        b.budget = Some(Money {
            currency_code: "XYZ".into(),
            amount_minor: MAX_BUDGET_MINOR + 1,
        });
        b.deliverables.push(DeliverableWanted {
            kind: DeliverableKind::FeedPost as i32,
            count: 2,
            platform: Platform::Instagram as i32,
        });
        b.schedule = Some(Schedule {
            start_time: Some(prost_types::Timestamp { seconds: 1, nanos: -1 }),
            end_time: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 1_000_000_000,
            }),
        });
        assert_eq!(
            fields(&c),
            vec![
                "campaign.brief.deliverables[2]",
                "campaign.brief.budget.currency_code",
                "campaign.brief.budget.amount_minor",
                "campaign.brief.schedule.start_time.nanos",
                "campaign.brief.schedule.end_time.nanos",
            ]
        );
        let b = c.brief.as_mut().unwrap();
        b.deliverables[2].platform = Platform::Tiktok as i32;
        b.budget = Some(Money {
            currency_code: "JPY".into(),
            amount_minor: MAX_BUDGET_MINOR,
        });
        b.schedule = None;
        assert_eq!(
            fields(&c),
            Vec::<String>::new(),
            "the same kind on another platform is fine"
        );
    }

    #[test]
    fn an_audience_test_needs_two_distinct_segments() {
        let mut c = dog_treats();
        c.objective = Objective::AudienceTest as i32;
        assert_eq!(fields(&c), vec!["campaign.brief.segments"]);
        let seg = |label: &str, city: &str| Segment {
            label: label.into(),
            city: city.into(),
            ..Default::default()
        };
        c.brief.as_mut().unwrap().segments = vec![seg("austin", "Austin"), seg("austin", "Denver")];
        assert_eq!(fields(&c), vec!["campaign.brief.segments[1].label"]);
        c.brief.as_mut().unwrap().segments[1] = seg("denver", "");
        assert_eq!(fields(&c), vec!["campaign.brief.segments[1]"]);
    }

    #[test]
    fn statuses_move_forward_and_final_ones_stay() {
        use CampaignStatus::*;
        assert!(status_change_allowed(Draft, Matching));
        assert!(status_change_allowed(Matching, Live));
        assert!(!status_change_allowed(Live, Draft));
        assert!(!status_change_allowed(Draft, Cancelled), "cancel has its own call");
        assert!(!status_change_allowed(Cancelled, Matching));
        assert!(!status_change_allowed(Completed, Live));
    }

    #[test]
    fn excluded_influencers_are_written_with_canonical_ids() {
        let mut c = dog_treats();
        let id = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";
        c.brief.as_mut().unwrap().exclusions = Some(Exclusions {
            influencers: vec![
                format!("influencers/{}", id.to_uppercase()),
                format!("influencers/{}", id.replace('-', "")),
                "influencers/not-a-uuid".into(),
            ],
            ..Default::default()
        });
        normalize_campaign(&mut c);
        let names = &c.brief.as_ref().unwrap().exclusions.as_ref().unwrap().influencers;
        assert_eq!(names[..2], [format!("influencers/{id}"), format!("influencers/{id}")]);
        let mut v = Violations::new();
        check_campaign(&c, &mut v);
        let err = v.finish().unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["campaign.brief.exclusions.influencers[2]"],
            "only the one that is no UUID"
        );
    }
}
