//! Random requests to every registry validator (profiles, metrics, lists, vetting): none
//! panics, and each error is INVALID_ARGUMENT whose violations name fields of the message
//! (`chorus_testkit::props`). The validators are pure: no server, no database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_kit::{Error, Violations, paging};
use chorus_proto::registry::*;
use chorus_proto::types::{Location, Money};
use chorus_registry::api::vetting::{SampleLimits, check_classify, check_comment_sample};
use chorus_registry::api::{UPDATABLE, account, apply_mask, batch_ids, list_query, optional_account, parse_name};
use chorus_registry::domain::influencer::{normalize, normalize_snapshot};
use chorus_registry::domain::limits::*;
use chorus_registry::domain::tier::TierTable;
use chorus_registry::domain::vetting::classifier::Prior;
use chorus_testkit::props::*;
use proptest::prelude::*;
use prost_types::Timestamp;

const HANDLES: &[&str] = &["maya.bakes", "@Maya_Bakes", "x", "run-with-li"];
const NICHES: &[&str] = &["fitness", "Vegan-Food", " pets ", "travel"];
const LANGUAGES: &[&str] = &["en", "es-MX", "zh-hant-tw", "pt_BR"];
const COUNTRIES: &[&str] = &["US", "gb", "DE"];
const CURRENCIES: &[&str] = &["USD", "eur", "JPY"];

/// Every field path a profile's violations may name, relative to the profile.
const PROFILE: &[&str] = &[
    "display_name",
    "accounts",
    "accounts[]",
    "accounts[].platform",
    "accounts[].handle",
    "accounts[].url",
    "niches",
    "niches[]",
    "location.country_code",
    "location.region",
    "location.city",
    "languages",
    "languages[]",
    "audience.age_buckets",
    "audience.age_buckets[].bucket",
    "audience.age_buckets[].share",
    "audience.gender",
    "audience.gender.female",
    "audience.gender.male",
    "audience.gender.other",
    "audience.top_countries",
    "audience.top_countries[].country_code",
    "audience.top_countries[].share",
    "rate_card",
    "rate_card[].kind",
    "rate_card[].price",
    "rate_card[].price.currency_code",
    "rate_card[].price.amount_minor",
    "compensation_accepted",
    "compensation_accepted[]",
    "contact.email",
    "contact.phone",
    "status",
];

fn account_strategy() -> impl Strategy<Value = SocialAccount> + Clone {
    (
        enum_number(8),
        text_or(HANDLES),
        text_or(&["https://instagram.com/maya", "ftp://x"]),
    )
        .prop_map(|(platform, handle, url)| SocialAccount {
            platform,
            handle,
            url,
            metrics: None,
            vetting: None,
        })
}

fn audience_strategy() -> impl Strategy<Value = AudienceDemographics> + Clone {
    let bucket = (enum_number(6), number()).prop_map(|(bucket, share)| AgeBucketShare { bucket, share });
    let gender = (number(), number(), number()).prop_map(|(female, male, other)| GenderSplit { female, male, other });
    let country = (text_or(COUNTRIES), number()).prop_map(|(country_code, share)| CountryShare { country_code, share });
    (
        list(bucket, MAX_AGE_BUCKETS),
        proptest::option::of(gender),
        list(country, MAX_TOP_COUNTRIES),
    )
        .prop_map(|(age_buckets, gender, top_countries)| AudienceDemographics {
            age_buckets,
            gender,
            top_countries,
        })
}

fn influencer_strategy() -> impl Strategy<Value = Influencer> + Clone {
    let location = (text_or(COUNTRIES), text(), text()).prop_map(|(country_code, region, city)| Location {
        country_code,
        region,
        city,
    });
    let price = (text_or(CURRENCIES), count()).prop_map(|(currency_code, amount_minor)| Money {
        currency_code,
        amount_minor,
    });
    let rate = (enum_number(6), proptest::option::of(price)).prop_map(|(kind, price)| RateCardEntry { kind, price });
    let contact = (
        text_or(&["maya@example.com", "not-an-email"]),
        text_or(&["+1 (512) 555-0100"]),
    )
        .prop_map(|(email, phone)| Contact { email, phone });
    let profile = (
        resource_name("influencers"),
        text_or(&["Maya Chen", " Li Wei "]),
        list(account_strategy(), MAX_ACCOUNTS),
        list(text_or(NICHES), MAX_NICHES),
        proptest::option::of(location),
        list(text_or(LANGUAGES), MAX_LANGUAGES),
    );
    let terms = (
        proptest::option::of(audience_strategy()),
        list(rate, MAX_RATE_CARD),
        list(enum_number(3), MAX_COMPENSATION_KINDS),
        proptest::option::of(contact),
        enum_number(3),
    );
    (profile, terms).prop_map(
        |(
            (name, display_name, accounts, niches, location, languages),
            (audience, rate_card, compensation_accepted, contact, status),
        )| Influencer {
            name,
            display_name,
            accounts,
            niches,
            location,
            languages,
            audience,
            rate_card,
            compensation_accepted,
            contact,
            status,
            ..Default::default()
        },
    )
}

fn snapshot_strategy() -> impl Strategy<Value = MetricsSnapshot> {
    let time = (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Timestamp { seconds, nanos });
    let counts = (count(), count(), count(), count(), count(), count(), count());
    (
        enum_number(8),
        text_or(HANDLES),
        proptest::option::of(time),
        counts,
        prop_oneof![0..400i32, any::<i32>()],
        proptest::option::of(count()),
        proptest::option::of(count()),
    )
        .prop_map(
            |(platform, handle, observe_time, c, window_days, window_reach, window_impressions)| MetricsSnapshot {
                platform,
                handle,
                observe_time,
                followers: c.0,
                following: c.1,
                posts: c.2,
                window_days,
                window_posts: c.3,
                window_likes: c.4,
                window_comments: c.5,
                window_sponsored_posts: c.6,
                window_reach,
                window_impressions,
            },
        )
}

fn follower_strategy() -> impl Strategy<Value = FollowerAccount> + Clone {
    let small = || proptest::option::of(prop_oneof![-2..2_000i32, any::<i32>()]);
    (
        text(),
        proptest::option::of(count()),
        proptest::option::of(count()),
        proptest::option::of(count()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        (small(), small(), small(), small()),
    )
        .prop_map(
            |(key, posts, followers, following, picture, private, (bio, name, digits, age))| FollowerAccount {
                key,
                posts_count: posts,
                followers_count: followers,
                following_count: following,
                has_profile_picture: picture,
                is_private: private,
                biography_length: bio,
                username_length: name,
                username_digit_count: digits,
                account_age_days: age,
            },
        )
}

/// Known paths under `prefix`.
fn under(prefix: &str, paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| format!("{prefix}.{p}")).collect()
}

fn known(paths: &[String]) -> Vec<&str> {
    paths.iter().map(String::as_str).collect()
}

/// A valid stored profile an update starts from.
fn stored() -> Influencer {
    Influencer {
        name: "influencers/0190b3c4-1c2d-7e3f-8a4b-5c6d7e8f9a0b".into(),
        display_name: "Maya Chen".into(),
        accounts: vec![SocialAccount {
            platform: 1,
            handle: "maya.bakes".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Every updatable path, and one read-only.
static MASK_PATHS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut paths = UPDATABLE.to_vec();
    paths.push("name");
    paths
});

proptest! {
    #![proptest_config(config())]

    /// CreateInfluencer and each ImportInfluencers row.
    #[test]
    fn profiles(inf in influencer_strategy()) {
        let paths = under("influencer", PROFILE);
        let result = normalize(inf).map_err(|e| e.nest("influencer"));
        assert_named(&result, &known(&paths))?;
    }

    /// UpdateInfluencer: the name, the mask, then the profile the mask makes.
    #[test]
    fn updates(patch in influencer_strategy(), paths in list(text_or(MASK_PATHS.as_slice()), MAX_MASK_PATHS)) {
        let result = (|| -> Result<Influencer, Error> {
            parse_name(&patch.name, "influencer.name")?;
            let mut current = stored();
            apply_mask(&mut current, patch, &paths)?;
            normalize(current).map_err(|e| e.nest("influencer"))
        })();
        let mut fields = under("influencer", PROFILE);
        fields.extend(["influencer.name", "update_mask.paths", "update_mask.paths[]"].map(String::from));
        assert_named(&result, &known(&fields))?;
    }

    /// Each RecordMetrics row.
    #[test]
    fn snapshots(s in snapshot_strategy(), now in any::<i64>()) {
        let fields = [
            "platform", "handle", "observe_time", "followers", "following", "posts", "window_days",
            "window_posts", "window_likes", "window_comments", "window_sponsored_posts",
            "window_reach", "window_impressions",
        ];
        assert_named(&normalize_snapshot(s, now), &fields)?;
    }

    #[test]
    fn list_influencers(
        (page_size, page_token, order_by, platform) in (
            any::<i32>(),
            text(),
            text_or(&["followers desc", "display_name", "create_time asc", "followers up"]),
            enum_number(8),
        ),
        (niches, country_code, region, city, languages) in (
            list(text_or(NICHES), MAX_FILTER_VALUES),
            text_or(COUNTRIES),
            text(),
            text(),
            list(text_or(LANGUAGES), MAX_FILTER_VALUES),
        ),
        (tiers, statuses, verdicts) in (
            list(enum_number(6), MAX_FILTER_VALUES),
            list(enum_number(3), MAX_FILTER_VALUES),
            list(enum_number(3), MAX_FILTER_VALUES),
        ),
        (min_followers, max_followers, min_rate, max_rate, min_quality) in (
            proptest::option::of(count()),
            proptest::option::of(count()),
            proptest::option::of(number()),
            proptest::option::of(number()),
            proptest::option::of(number()),
        ),
    ) {
        let r = ListInfluencersRequest {
            page_size, page_token, order_by, platform, niches, country_code, region, city, languages,
            tiers, min_followers, max_followers,
            min_engagement_rate: min_rate, max_engagement_rate: max_rate,
            statuses, min_quality_score: min_quality, verdicts,
        };
        let result = (|| -> Result<(), Error> {
            let mut v = Violations::new();
            v.take(paging::page_size(r.page_size, 50, MAX_PAGE))?;
            v.take(list_query(&r, &TierTable::default()))?;
            v.finish()?;
            paging::decode::<String>(&r.page_token, 7)?;
            Ok(())
        })();
        let fields = [
            "page_size", "page_token", "order_by", "platform", "niches", "niches[]", "country_code",
            "region", "city", "languages", "languages[]", "tiers", "tiers[]", "min_followers",
            "max_followers", "min_engagement_rate", "max_engagement_rate", "statuses", "statuses[]",
            "min_quality_score", "verdicts", "verdicts[]",
        ];
        assert_named(&result, &fields)?;
    }

    #[test]
    fn batch_get(names in list(resource_name("influencers"), MAX_BATCH_GET)) {
        assert_named(&batch_ids(&names), &["names", "names[]"])?;
    }

    /// ListMetricsSnapshots, ListVettingReports and GetVettingReport: a parent, an account.
    #[test]
    fn accounts(parent in resource_name("influencers"), platform in enum_number(8), handle in text_or(HANDLES)) {
        let result = (|| -> Result<(), Error> {
            let mut v = Violations::new();
            v.take(parse_name(&parent, "parent"))?;
            optional_account(platform, &handle, &mut v);
            account(platform, &handle, &mut v);
            v.finish()
        })();
        assert_named(&result, &["parent", "platform", "handle"])?;
    }

    #[test]
    fn comment_samples(
        platform in enum_number(8),
        handle in text_or(HANDLES),
        comments in list(text_or(&["love this!", "🔥🔥", "great post"]), DEFAULT_MAX_COMMENT_SAMPLE),
        request_id in text(),
    ) {
        let r = SubmitCommentSampleRequest { platform, handle, comments, request_id };
        let result = check_comment_sample(&r, &SampleLimits::default());
        assert_named(&result, &["platform", "handle", "comments", "comments[]", "request_id"])?;
    }


    #[test]
    fn classify_requests(accounts in list(follower_strategy(), MAX_CLASSIFY), prior in proptest::option::of(number())) {
        let r = ClassifyAccountsRequest { accounts, prior };
        let fields = under("accounts[]", &[
            "key", "posts_count", "followers_count", "following_count", "has_profile_picture",
            "is_private", "biography_length", "username_length", "username_digit_count",
            "account_age_days",
        ]);
        let mut fields = known(&fields);
        fields.extend(["accounts", "prior"]);
        let result = check_classify(&r, Prior::DEFAULT);
        assert_named(&result, &fields)?;
        if let Ok((_, rows)) = &result {
            prop_assert_eq!(rows.len(), r.accounts.len(), "every account is classified");
        }
    }
}

#[test]
fn a_list_over_its_bound_is_one_violation_and_only_its_first_entries_are_checked() {
    let inf = Influencer {
        display_name: "Maya".into(),
        accounts: vec![SocialAccount::default(); 10 * MAX_ACCOUNTS],
        ..Default::default()
    };
    let e = normalize(inf).unwrap_err();
    let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields[0], "accounts");
    // Only the first MAX_ACCOUNTS accounts are looked at (platform, handle, repeat).
    let last = format!("accounts[{}]", MAX_ACCOUNTS - 1);
    assert!(fields.iter().any(|f| f.starts_with(&last)));
    let past = format!("accounts[{MAX_ACCOUNTS}]");
    assert!(!fields.iter().any(|f| f.starts_with(&past)), "{fields:?}");
    assert!(fields.len() <= 1 + 3 * MAX_ACCOUNTS);
}

#[test]
fn strings_are_bounded_in_characters_not_bytes() {
    let mut inf = stored();
    inf.display_name = "中".repeat(MAX_TEXT);
    inf.accounts[0].handle = "é".repeat(MAX_HANDLE);
    assert!(normalize(inf.clone()).is_ok());
    inf.display_name.push('中');
    inf.accounts[0].handle.push('é');
    let e = normalize(inf).unwrap_err();
    let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["display_name", "accounts[0].handle"]);
}

#[test]
fn repeated_languages_niches_and_kinds_are_dropped_in_linear_time() {
    let mut inf = stored();
    inf.languages = vec!["en".into(), "EN".into(), "es-mx".into(), "es-MX".into()];
    inf.niches = vec!["pets".into(), "Pets".into(), "fitness".into()];
    inf.compensation_accepted = vec![1, 1, 2];
    let n = normalize(inf).unwrap();
    assert_eq!(n.languages, ["en", "es-MX"]);
    assert_eq!(n.niches, ["pets", "fitness"]);
    assert_eq!(n.compensation_accepted, [1, 2]);
}
