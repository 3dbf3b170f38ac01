//! Random requests to every matching validator (campaigns and their briefs, updates,
//! selections, shortlists, decisions): none panics, and each error is INVALID_ARGUMENT whose
//! violations name fields of the message (`chorus_testkit::props`). The validators are pure:
//! no server, no database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_kit::{Error, Violations};
use chorus_matching::api::{apply_mask, check_decisions, check_new_shortlist, check_select};
use chorus_matching::domain::brief::check_campaign;
use chorus_matching::domain::limits::*;
use chorus_proto::matching::*;
use chorus_proto::types::{Location, Money};
use chorus_testkit::props::*;
use proptest::prelude::*;
use prost_types::Timestamp;

const NICHES: &[&str] = &["pets", "wellness", "fitness", "Pets"];
const COUNTRIES: &[&str] = &["US", "GB", "us"];
const LABELS: &[&str] = &["austin", "denver", "dog-owners-25-34"];

/// Every field path a campaign's violations may name.
const CAMPAIGN: &[&str] = &[
    "campaign.display_name",
    "campaign.objective",
    "campaign.status",
    "campaign.brief",
    "campaign.brief.niches",
    "campaign.brief.niches[].niche",
    "campaign.brief.niches[].weight",
    "campaign.brief.locations",
    "campaign.brief.locations[].country_code",
    "campaign.brief.locations[].region",
    "campaign.brief.locations[].city",
    "campaign.brief.languages",
    "campaign.brief.languages[]",
    "campaign.brief.tiers",
    "campaign.brief.tiers[]",
    "campaign.brief.min_quality_score",
    "campaign.brief.min_engagement_rate",
    "campaign.brief.max_engagement_rate",
    "campaign.brief.deliverables",
    "campaign.brief.deliverables[]",
    "campaign.brief.deliverables[].kind",
    "campaign.brief.deliverables[].platform",
    "campaign.brief.deliverables[].count",
    "campaign.brief.compensation_offered",
    "campaign.brief.compensation_offered[]",
    "campaign.brief.budget",
    "campaign.brief.budget.currency_code",
    "campaign.brief.budget.amount_minor",
    "campaign.brief.headcount",
    "campaign.brief.schedule.start_time.nanos",
    "campaign.brief.schedule.end_time.nanos",
    "campaign.brief.schedule.end_time",
    "campaign.brief.disclosure_jurisdiction",
    "campaign.brief.exclusions.influencers",
    "campaign.brief.exclusions.influencers[]",
    "campaign.brief.exclusions.exclusivity_categories",
    "campaign.brief.exclusions.exclusivity_categories[]",
    "campaign.brief.diversity_caps.max_city_share",
    "campaign.brief.diversity_caps.max_niche_share",
    "campaign.brief.segments",
    "campaign.brief.segments[]",
    "campaign.brief.segments[].label",
    "campaign.brief.segments[].city",
    "campaign.brief.segments[].country_code",
    "campaign.brief.segments[].niche",
    "campaign.brief.segments[].age_bucket",
    "campaign.brief.audience.age_buckets",
    "campaign.brief.audience.age_buckets[]",
    "campaign.brief.audience.countries",
    "campaign.brief.audience.countries[]",
];

fn time() -> impl Strategy<Value = Timestamp> + Clone {
    (any::<i64>(), prop_oneof![0..1_000_000_000i32, any::<i32>()])
        .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
}

fn brief_strategy() -> impl Strategy<Value = Brief> {
    let niche = (text_or(NICHES), number()).prop_map(|(niche, weight)| NicheWeight { niche, weight });
    let location = (text_or(COUNTRIES), text(), text()).prop_map(|(country_code, region, city)| Location {
        country_code,
        region,
        city,
    });
    let deliverable = (enum_number(6), prop_oneof![0..60i32, any::<i32>()], enum_number(8))
        .prop_map(|(kind, count, platform)| DeliverableWanted { kind, count, platform });
    let budget = (text_or(&["USD", "EUR", "usd"]), count()).prop_map(|(currency_code, amount_minor)| Money {
        currency_code,
        amount_minor,
    });
    let schedule = (proptest::option::of(time()), proptest::option::of(time()))
        .prop_map(|(start_time, end_time)| Schedule { start_time, end_time });
    let exclusions = (
        list(resource_name("influencers"), MAX_EXCLUDED_INFLUENCERS),
        list(text_or(&["pet-food", "Pet Food"]), MAX_EXCLUSIVITY_CATEGORIES),
    )
        .prop_map(|(influencers, exclusivity_categories)| Exclusions {
            influencers,
            exclusivity_categories,
        });
    let caps = (number(), number()).prop_map(|(max_city_share, max_niche_share)| DiversityCaps {
        max_city_share,
        max_niche_share,
    });
    let segment = (
        text_or(LABELS),
        text(),
        text_or(COUNTRIES),
        text_or(NICHES),
        enum_number(6),
    )
        .prop_map(|(label, city, country_code, niche, age_bucket)| Segment {
            label,
            city,
            country_code,
            niche,
            age_bucket,
        });
    let audience = (
        list(enum_number(6), MAX_ENUM_VALUES),
        list(text_or(COUNTRIES), MAX_AUDIENCE_COUNTRIES),
    )
        .prop_map(|(age_buckets, countries)| AudienceTarget { age_buckets, countries });
    let who = (
        list(niche, MAX_NICHES),
        list(location, MAX_LOCATIONS),
        list(text_or(&["en", "es-MX", "en US"]), MAX_LANGUAGES),
        list(enum_number(6), MAX_ENUM_VALUES),
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(number()),
    );
    let terms = (
        list(deliverable, MAX_DELIVERABLES),
        list(enum_number(3), MAX_ENUM_VALUES),
        proptest::option::of(budget),
        prop_oneof![0..=MAX_HEADCOUNT + 1, any::<i32>()],
        proptest::option::of(schedule),
        text_or(COUNTRIES),
    );
    let shape = (
        proptest::option::of(exclusions),
        proptest::option::of(caps),
        list(segment, MAX_SEGMENTS),
        proptest::option::of(audience),
    );
    (who, terms, shape).prop_map(
        |(
            (niches, locations, languages, tiers, min_quality_score, min_engagement_rate, max_engagement_rate),
            (deliverables, compensation_offered, budget, headcount, schedule, disclosure_jurisdiction),
            (exclusions, diversity_caps, segments, audience),
        )| Brief {
            niches,
            locations,
            languages,
            tiers,
            min_quality_score,
            min_engagement_rate,
            max_engagement_rate,
            deliverables,
            compensation_offered,
            budget,
            headcount,
            schedule,
            disclosure_jurisdiction,
            exclusions,
            diversity_caps,
            segments,
            audience,
        },
    )
}

fn campaign_strategy() -> impl Strategy<Value = Campaign> {
    (
        resource_name("campaigns"),
        text_or(&["Vegan dog treats", "  "]),
        enum_number(4),
        proptest::option::of(brief_strategy()),
        enum_number(6),
    )
        .prop_map(|(name, display_name, objective, brief, status)| Campaign {
            name,
            display_name,
            objective,
            brief,
            status,
            ..Default::default()
        })
}

fn checked(c: &Campaign) -> Result<(), Error> {
    let mut v = Violations::new();
    check_campaign(c, &mut v);
    v.finish()
}

const MASK_PATHS: &[&str] = &[
    "display_name",
    "objective",
    "status",
    "brief",
    "brief.niches",
    "brief.segments",
    "brief.headcount",
    "brief.nope",
    "tenant",
];

fn shortlist_strategy() -> impl Strategy<Value = Shortlist> {
    let member = (resource_name("influencers"), text(), text_or(LABELS), enum_number(3)).prop_map(
        |(influencer, display_name, segment, decision)| ShortlistMember {
            influencer,
            display_name,
            segment,
            decision,
            candidate: None,
        },
    );
    (text_or(&["First pick", " "]), list(member, MAX_SHORTLIST)).prop_map(|(display_name, members)| Shortlist {
        display_name,
        members,
        ..Default::default()
    })
}

proptest! {
    #![proptest_config(config())]

    /// CreateCampaign.
    #[test]
    fn campaigns(c in campaign_strategy()) {
        assert_named(&checked(&c), CAMPAIGN)?;
    }

    /// UpdateCampaign: the mask, then the campaign it makes.
    #[test]
    fn updates(from in campaign_strategy(), paths in list(text_or(MASK_PATHS), MAX_MASK_PATHS)) {
        let result = (|| -> Result<(), Error> {
            let mut to = Campaign::default();
            apply_mask(&mut to, &from, &paths)?;
            checked(&to)
        })();
        let mut fields = CAMPAIGN.to_vec();
        fields.extend(["update_mask.paths", "update_mask.paths[]"]);
        assert_named(&result, &fields)?;
    }

    #[test]
    fn selections(
        campaign in resource_name("campaigns"),
        candidate_limit in any::<i32>(),
        save_as in text(),
        request_id in text(),
    ) {
        let r = SelectInfluencersRequest { campaign, candidate_limit, save_as, request_id };
        let result = check_select(&r);
        assert_named(&result, &["campaign", "candidate_limit", "save_as"])?;
        if let Ok((_, limit)) = result {
            prop_assert!((1..=MAX_SELECT_CANDIDATES).contains(&limit));
        }
    }


    #[test]
    fn new_shortlists(parent in resource_name("campaigns"), shortlist in proptest::option::of(shortlist_strategy())) {
        let r = CreateShortlistRequest { parent, shortlist, request_id: String::new() };
        let fields = [
            "parent",
            "shortlist.display_name",
            "shortlist.members",
            "shortlist.members[].influencer",
            "shortlist.members[].segment",
        ];
        assert_named(&check_new_shortlist(&r), &fields)?;
    }

    #[test]
    fn decisions(
        name in prop_oneof![
            "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
                .prop_map(|id| format!("campaigns/{id}/shortlists/{id}")),
            text(),
        ],
        decisions in list(
            (resource_name("influencers"), enum_number(3))
                .prop_map(|(influencer, decision)| MemberDecision { influencer, decision }),
            MAX_SHORTLIST,
        ),
    ) {
        let r = DecideShortlistMembersRequest { name, decisions, request_id: String::new() };
        let fields = ["name", "decisions", "decisions[].influencer", "decisions[].decision"];
        assert_named(&check_decisions(&r), &fields)?;
    }
}

#[test]
fn a_list_over_its_bound_is_one_violation_and_only_its_first_entries_are_checked() {
    let c = Campaign {
        display_name: "x".into(),
        objective: Objective::Awareness as i32,
        brief: Some(Brief {
            languages: vec!["not a tag".into(); 100 * MAX_LANGUAGES],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = checked(&c).unwrap_err();
    let languages = e
        .violations()
        .iter()
        .filter(|v| v.field.starts_with("campaign.brief.languages"))
        .count();
    assert_eq!(languages, 1 + MAX_LANGUAGES);
}

#[test]
fn a_deliverable_listed_twice_is_named_where_it_repeats() {
    let twice = DeliverableWanted {
        kind: 1,
        count: 1,
        platform: 1,
    };
    let other = DeliverableWanted { platform: 2, ..twice };
    let c = Campaign {
        display_name: "x".into(),
        objective: Objective::Awareness as i32,
        brief: Some(Brief {
            deliverables: vec![twice, other, twice],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = checked(&c).unwrap_err();
    let repeated: Vec<&str> = e
        .violations()
        .iter()
        .filter(|v| v.field.starts_with("campaign.brief.deliverables["))
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(repeated, ["campaign.brief.deliverables[2]"]);
}
