//! Vetting over real gRPC, on PostgreSQL and on SQLite: reports from metrics and samples, their
//! history and events, the List filters they feed, erasure, and bad input to every vetting RPC
//! (the right code, the offending field, and nothing written).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chorus_proto::registry::*;
use chorus_proto::types::Platform;
use common::*;
use prost_types::Timestamp;
use tonic::Code;

const IG: i32 = Platform::Instagram as i32;

/// A bought follower: no posts, a handful of followers, thousands followed, no picture, no
/// biography, a username full of digits.
fn fake_follower(i: usize) -> FollowerAccount {
    FollowerAccount {
        key: format!("fake{i}"),
        posts_count: Some(0),
        followers_count: Some(3 + (i % 7) as i64),
        following_count: Some(2_500 + (i % 900) as i64),
        has_profile_picture: Some(false),
        is_private: Some(false),
        biography_length: Some(0),
        username_length: Some(14),
        username_digit_count: Some(6),
        account_age_days: None,
    }
}

/// An ordinary person: a few hundred posts, followers and follows, a picture and a biography.
fn real_follower(i: usize) -> FollowerAccount {
    FollowerAccount {
        key: format!("real{i}"),
        posts_count: Some(80 + (i % 300) as i64),
        followers_count: Some(250 + (i % 600) as i64),
        following_count: Some(300 + (i % 400) as i64),
        has_profile_picture: Some(true),
        is_private: Some(i.is_multiple_of(3)),
        biography_length: Some(20 + (i % 60) as i32),
        username_length: Some(10),
        username_digit_count: Some(0),
        account_age_days: Some(900),
    }
}

fn sample(handle: &str, followers: Vec<FollowerAccount>) -> Vec<SubmitAudienceSampleRequest> {
    // The account in the first message only, rows over several messages.
    followers
        .chunks(100)
        .enumerate()
        .map(|(i, rows)| SubmitAudienceSampleRequest {
            platform: if i == 0 { IG } else { 0 },
            handle: if i == 0 { handle.into() } else { String::new() },
            followers: rows.to_vec(),
            ..Default::default()
        })
        .collect()
}

fn at_day(mut s: MetricsSnapshot, day: i64) -> MetricsSnapshot {
    s.observe_time = Some(Timestamp {
        seconds: 1_750_000_000 + day * 86_400,
        nanos: 0,
    });
    s
}

async fn latest(v: &mut VettingClient, handle: &str) -> VettingReport {
    v.get_vetting_report(GetVettingReportRequest {
        platform: IG,
        handle: handle.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .report
    .unwrap()
}

async fn reports(v: &mut VettingClient, parent: &str) -> Vec<VettingReport> {
    v.list_vetting_reports(ListVettingReportsRequest {
        parent: parent.into(),
        page_size: 100,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .reports
}

fn signal<'a>(r: &'a VettingReport, id: &str) -> &'a Signal {
    r.signals.iter().find(|s| s.id == id).unwrap()
}

async fn metrics_make_a_report(app: TestApp) {
    let mut c = app.client().await;
    let mut v = app.vetting().await;
    let inf = create(&mut c, influencer("Maya", "maya")).await;
    let mut events = app.events().await;
    let _ = next_types(&mut events, 1).await; // upserted

    // 4,000 followers, 6% engagement, one sponsored post in ten; a week later, 4,100.
    let first = at_day(snapshot(Platform::Instagram, "maya", 4_000, 2_200), 0);
    let second = at_day(snapshot(Platform::Instagram, "maya", 4_100, 2_300), 7);
    assert_eq!(record(&mut c, vec![first, second]).await.recorded_count, 2);
    let r = latest(&mut v, "maya").await;
    assert_eq!(r.signals.len(), 6);
    let available: Vec<&str> = r
        .signals
        .iter()
        .filter(|s| s.available)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        available,
        vec![
            "engagement_vs_tier",
            "follower_growth_anomalies",
            "follower_following_ratio",
            "sponsored_saturation"
        ]
    );
    let e = signal(&r, "engagement_vs_tier");
    assert!((e.value - 2_530.0 / 10.0 / 4_100.0).abs() < 1e-9, "{e:?}");
    assert_eq!((e.norm_low, e.norm_high, e.score), (Some(0.03), Some(0.10), 1.0));
    assert!(!e.explanation.is_empty() && e.weight > 0.0);
    assert_eq!(r.coverage, 0.6);
    assert_eq!((r.signals_available, r.signals_total, r.thin_evidence), (4, 6, false));
    assert_eq!(r.quality_score, 100.0);
    assert_eq!(r.verdict, Verdict::Ok as i32);
    assert_eq!(r.model_version, "vetting-v2/follower-classifier-v2");
    assert!(r.compute_time.is_some());
    assert_eq!(r.thresholds.unwrap().ok_at, 70.0);

    // The profile carries the gist; the influencer's events come with the report's.
    let got = c
        .get_influencer(GetInfluencerRequest { name: inf.name.clone() })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    let gist = got.accounts[0].vetting.clone().unwrap();
    assert_eq!(
        (gist.quality_score, gist.verdict, gist.report.clone()),
        (100.0, Verdict::Ok as i32, r.name.clone())
    );
    assert_eq!(
        (gist.signals_available, gist.signals_total, gist.thin_evidence),
        (4, 6, false)
    );
    assert_eq!(
        next_types(&mut events, 4).await,
        [
            "chorus.registry.v1.MetricsRecorded",
            "chorus.registry.v1.MetricsRecorded",
            "chorus.registry.v1.VettingReported",
            "chorus.registry.v1.VerdictChanged",
        ]
    );

    // The same evidence again changes nothing: no new report, no vetting event.
    let again = at_day(snapshot(Platform::Instagram, "maya", 4_100, 2_300), 8);
    record(&mut c, vec![again]).await;
    assert_eq!(next_types(&mut events, 1).await, ["chorus.registry.v1.MetricsRecorded"]);
    quiet(&mut events, "unchanged report").await;
    assert_eq!(reports(&mut v, &inf.name).await.len(), 1);
}

async fn samples_case(app: TestApp) {
    let mut c = app.client().await;
    let mut v = app.vetting().await;
    let inf = create(&mut c, influencer("Ravi", "ravi")).await;
    let clean = create(&mut c, influencer("Lena", "lena")).await;
    record(
        &mut c,
        vec![
            at_day(snapshot(Platform::Instagram, "ravi", 4_000, 2_200), 0),
            at_day(snapshot(Platform::Instagram, "lena", 5_000, 3_000), 0),
        ],
    )
    .await;
    let mut events = app.events().await;
    let before = next_types(&mut events, 8).await;
    assert_eq!(
        before
            .iter()
            .filter(|t| *t == "chorus.registry.v1.VettingReported")
            .count(),
        2
    );

    // Comments: 12 of 20 generic, emoji-only or duplicated.
    let mut comments: Vec<String> = ["nice pic", "🔥🔥", "love it", "wow"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    comments = comments.into_iter().cycle().take(12).collect();
    comments.extend((0..8).map(|i| format!("Which trail is this? I hiked near Austin last spring, day {i}")));
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: IG,
            handle: "Ravi".into(),
            comments,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    let s = signal(&r, "comment_authenticity");
    assert!(s.available && (s.value - 0.6).abs() < 1e-9 && s.score == 0.0, "{s:?}");
    assert!(s.explanation.contains("12 of 20"), "{}", s.explanation);

    // Audience: 200 bought followers among 300.
    let followers: Vec<FollowerAccount> = (0..300)
        .map(|i| if i % 3 == 0 { real_follower(i) } else { fake_follower(i) })
        .collect();
    let reply = v
        .submit_audience_sample(tokio_stream::iter(sample("ravi", followers)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.sample_size, reply.fake_count), (300, 200));
    let r = reply.report.unwrap();
    let share = r.real_follower_share.unwrap();
    assert_eq!(share.sample_size, 300);
    assert!((share.share - 1.0 / 3.0).abs() < 1e-9);
    assert!(share.lower < share.share && share.share < share.upper && share.upper - share.lower < 0.12);
    // Observed and corrected: the decision took the configured prior, and the correction used
    // its held-out rates (the model's ROC at 1 - prior), which the report shows.
    assert!((share.observed_fake_share - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(share.fake_prior, 0.15);
    let rates = chorus_registry::domain::vetting::classifier::Model::current()
        .decision(Default::default())
        .rates();
    assert_eq!(
        (share.sensitivity, share.specificity),
        (rates.sensitivity, rates.specificity)
    );
    let expected = (2.0 / 3.0 + rates.specificity - 1.0) / (rates.sensitivity + rates.specificity - 1.0);
    assert!((share.fake_share - expected.min(1.0)).abs() < 1e-9, "{share:?}");
    assert!(share.fake_share_lower < share.fake_share && share.fake_share_lower > 0.35);
    assert_eq!(share.fake_share_clamped, expected > 1.0);
    let real = signal(&r, "real_follower_share");
    assert!((real.value - (1.0 - share.fake_share)).abs() < 1e-9, "{real:?}");
    assert_eq!(r.flags, vec![VettingFlag::FakeFollowers as i32]);
    assert_eq!(r.verdict, Verdict::Reject as i32);
    assert_eq!(latest(&mut v, "ravi").await, r);
    // One snapshot: engagement, ratio and sponsored share only, coverage 0.45: REVIEW. The
    // comments lift coverage to 0.6 and the score to 75: OK. The audience rejects.
    assert_eq!(
        next_types(&mut events, 5).await,
        [
            "chorus.registry.v1.VettingReported",
            "chorus.registry.v1.VerdictChanged",
            "chorus.registry.v1.VettingReported",
            "chorus.registry.v1.VerdictChanged",
            "chorus.registry.v1.AccountFlagged",
        ]
    );
    let history = reports(&mut v, &inf.name).await;
    let verdicts: Vec<i32> = history.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Reject as i32, Verdict::Ok as i32, Verdict::Review as i32]
    );
    assert_eq!(history[0], r);

    // List filters on the largest account's vetting.
    let names = |page: ListInfluencersResponse| page.influencers.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let lister = c.clone();
    let listed = move |req: ListInfluencersRequest| {
        let mut c = lister.clone();
        async move { names(c.list_influencers(req).await.unwrap().into_inner()) }
    };
    let rejected = listed(ListInfluencersRequest {
        verdicts: vec![Verdict::Reject as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(rejected, std::slice::from_ref(&inf.name));
    let good = listed(ListInfluencersRequest {
        min_quality_score: Some(60.0),
        ..Default::default()
    })
    .await;
    assert!(!good.contains(&inf.name));
    let lena = latest(&mut v, "lena").await;
    assert_eq!(good.contains(&clean.name), lena.quality_score >= 60.0);
    let unvetted = create(&mut c, influencer("Noor", "noor")).await;
    let any_verdict = listed(ListInfluencersRequest {
        verdicts: vec![Verdict::Ok as i32, Verdict::Review as i32, Verdict::Reject as i32],
        ..Default::default()
    })
    .await;
    assert!(!any_verdict.contains(&unvetted.name) && any_verdict.len() == 2);

    // Erasure takes the reports and samples with the person.
    c.delete_influencer(DeleteInfluencerRequest {
        name: inf.name.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let gone = v
        .get_vetting_report(GetVettingReportRequest {
            platform: IG,
            handle: "ravi".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let gone = v
        .list_vetting_reports(ListVettingReportsRequest {
            parent: inf.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let db = chorus_registry::SERVICE
        .spec
        .connect(&app.database_url, 1)
        .await
        .unwrap();
    for table in ["vetting_reports", "vetting_inputs"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE influencer_id = '{}'",
            inf.name.trim_start_matches("influencers/")
        )))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
}

async fn classify_case(app: TestApp) {
    let mut v = app.vetting().await;
    let out = v
        .classify_accounts(ClassifyAccountsRequest {
            accounts: vec![fake_follower(1), real_follower(2)],
            prior: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.prior, 0.15, "the configured prior");
    assert!(
        out.model_version.starts_with("follower-classifier-"),
        "{}",
        out.model_version
    );
    let [fake, real] = &out.classifications[..] else {
        panic!("{out:?}")
    };
    assert_eq!((fake.key.as_str(), fake.fake), ("fake1", true));
    assert_eq!((real.key.as_str(), real.fake), ("real2", false));
    assert!(fake.fake_probability > 0.9 && real.fake_probability < 0.1, "{out:?}");
    // Reasons say, in words, what sets the account apart from a typical real one.
    assert!(
        fake.reasons.iter().any(|r| r.starts_with("0 posts")),
        "{:?}",
        fake.reasons
    );
    assert!(fake.reasons.len() <= 3 && real.reasons.is_empty(), "{out:?}");

    // A prior per call: the probabilities are for it, by the odds. An account the model puts
    // near even odds is real among mostly real followers and fake where fakes are expected.
    let doubtful = FollowerAccount {
        key: "doubtful".into(),
        posts_count: Some(8),
        followers_count: Some(80),
        following_count: Some(700),
        has_profile_picture: Some(true),
        is_private: Some(false),
        biography_length: Some(0),
        username_length: Some(11),
        username_digit_count: Some(2),
        account_age_days: None,
    };
    let at = |prior: f64| {
        let mut v = v.clone();
        let doubtful = doubtful.clone();
        async move {
            v.classify_accounts(ClassifyAccountsRequest {
                accounts: vec![doubtful],
                prior: Some(prior),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let (low, high) = (at(0.05).await, at(0.6).await);
    assert_eq!((low.prior, high.prior), (0.05, 0.6));
    let (p_low, p_high) = (
        low.classifications[0].fake_probability,
        high.classifications[0].fake_probability,
    );
    let odds = |p: f64| p / (1.0 - p);
    let ratio = odds(p_high) / odds(p_low);
    assert!(
        (ratio - odds(0.6) / odds(0.05)).abs() < 1e-6 * ratio,
        "{p_low} {p_high}"
    );
    assert_eq!(
        (low.classifications[0].fake, high.classifications[0].fake),
        (p_low >= 0.5, p_high >= 0.5)
    );
    assert!(
        !low.classifications[0].fake && high.classifications[0].fake,
        "{low:?} {high:?}"
    );
}

async fn bad_input_is_refused_and_nothing_is_written(app: TestApp) {
    let mut c = app.client().await;
    let mut v = app.vetting().await;
    let inf = create(&mut c, influencer("Ines", "ines")).await;
    let mut events = app.events().await;
    let _ = next_types(&mut events, 1).await;

    // ClassifyAccounts: every missing or out-of-range feature is named.
    let mut missing = real_follower(0);
    missing.following_count = None;
    missing.is_private = None;
    let mut negative = real_follower(1);
    negative.posts_count = Some(-1);
    let mut digits = real_follower(2);
    digits.username_digit_count = Some(11);
    let r = v
        .classify_accounts(ClassifyAccountsRequest {
            accounts: vec![real_follower(9), missing, negative, digits],
            prior: None,
        })
        .await;
    invalid(
        "classify",
        r,
        &[
            "accounts[1].following_count",
            "accounts[1].is_private",
            "accounts[2].posts_count",
            "accounts[3].username_digit_count",
        ],
    );
    invalid(
        "classify nothing",
        v.classify_accounts(ClassifyAccountsRequest::default()).await,
        &["accounts"],
    );
    let too_many = (0..=chorus_registry::api::vetting::MAX_CLASSIFY)
        .map(real_follower)
        .collect();
    invalid(
        "classify too many",
        v.classify_accounts(ClassifyAccountsRequest {
            accounts: too_many,
            prior: None,
        })
        .await,
        &["accounts"],
    );
    for prior in [0.0, 1.0, -0.2, 1.5, f64::NAN] {
        invalid(
            "classify with a prior outside (0, 1)",
            v.classify_accounts(ClassifyAccountsRequest {
                accounts: vec![real_follower(1)],
                prior: Some(prior),
            })
            .await,
            &["prior"],
        );
    }

    // Audience samples: over the bound, a bad row, too few, no account, an unknown one.
    let over = (0..=SAMPLE_LIMITS.max_audience).map(real_follower).collect();
    let r = v.submit_audience_sample(tokio_stream::iter(sample("ines", over))).await;
    invalid("sample over the bound", r, &["followers"]);
    let mut rows: Vec<FollowerAccount> = (0..40).map(real_follower).collect();
    rows[27].has_profile_picture = None;
    let r = v.submit_audience_sample(tokio_stream::iter(sample("ines", rows))).await;
    invalid("bad follower row", r, &["followers[27].has_profile_picture"]);
    let few = (0..5).map(real_follower).collect();
    invalid(
        "sample too small",
        v.submit_audience_sample(tokio_stream::iter(sample("ines", few))).await,
        &["followers"],
    );
    let mut nameless = sample("ines", (0..40).map(real_follower).collect());
    nameless[0].handle.clear();
    invalid(
        "sample without an account",
        v.submit_audience_sample(tokio_stream::iter(nameless)).await,
        &["handle"],
    );
    let mut switched = sample("ines", (0..240).map(real_follower).collect());
    switched[1].handle = "someone-else".into();
    switched[1].platform = IG;
    invalid(
        "sample naming two accounts",
        v.submit_audience_sample(tokio_stream::iter(switched)).await,
        &["handle"],
    );
    let r = v
        .submit_audience_sample(tokio_stream::iter(sample(
            "nobody",
            (0..40).map(real_follower).collect(),
        )))
        .await;
    not_found("sample of an unknown account", r, "nobody");

    // Comment samples.
    let comments = |n: usize| (0..n).map(|i| format!("comment number {i}")).collect::<Vec<_>>();
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: IG,
            handle: "ines".into(),
            comments: comments(SAMPLE_LIMITS.max_comments + 1),
            ..Default::default()
        })
        .await;
    invalid("comments over the bound", r, &["comments"]);
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: 99,
            handle: String::new(),
            comments: vec![],
            ..Default::default()
        })
        .await;
    invalid("comments without anything", r, &["platform", "handle", "comments"]);
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: IG,
            handle: "ines".into(),
            comments: vec!["fine".into(), "x".repeat(2_201)],
            ..Default::default()
        })
        .await;
    invalid("comment too long", r, &["comments[1]"]);
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: IG,
            handle: "nobody".into(),
            comments: comments(3),
            ..Default::default()
        })
        .await;
    not_found("comments of an unknown account", r, "nobody");

    // Reports: the account must be named; an account without evidence has none yet.
    let r = v.get_vetting_report(GetVettingReportRequest::default()).await;
    invalid("report of nobody", r, &["platform", "handle"]);
    let r = v
        .get_vetting_report(GetVettingReportRequest {
            platform: IG,
            handle: "ines".into(),
        })
        .await;
    not_found("report before any evidence", r, "ines");
    let r = v
        .list_vetting_reports(ListVettingReportsRequest {
            parent: "influencers/nope".into(),
            page_size: -1,
            ..Default::default()
        })
        .await;
    invalid("history of a bad name", r, &["parent", "page_size"]);
    let r = v
        .list_vetting_reports(ListVettingReportsRequest {
            parent: inf.name.clone(),
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await;
    invalid("history with a malformed token", r, &["page_token"]);
    let r = c
        .list_influencers(ListInfluencersRequest {
            min_quality_score: Some(101.0),
            verdicts: vec![Verdict::Ok as i32, 42],
            ..Default::default()
        })
        .await;
    invalid("vetting filters", r, &["min_quality_score", "verdicts[1]"]);

    // Nothing was stored and nothing published.
    assert!(reports(&mut v, &inf.name).await.is_empty());
    quiet(&mut events, "vetting bad input").await;
}

/// Samples stored before the correction have no decision on their row: they were counted by
/// follower-classifier-v1 (P >= 0.56, the same weights), and are corrected with the rates of
/// that decision, the one at a prior of 0.44.
async fn an_old_sample_is_corrected_with_v1s_decision(app: TestApp) {
    use chorus_registry::domain::vetting::classifier::{Model, V1_PRIOR};
    let mut c = app.client().await;
    let mut v = app.vetting().await;
    create(&mut c, influencer("Omar", "omar")).await;
    record(
        &mut c,
        vec![at_day(snapshot(Platform::Instagram, "omar", 4_000, 2_200), 0)],
    )
    .await;
    let followers = (0..40)
        .map(|i| if i % 4 == 0 { fake_follower(i) } else { real_follower(i) })
        .collect();
    let fresh = v
        .submit_audience_sample(tokio_stream::iter(sample("omar", followers)))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap()
        .real_follower_share
        .unwrap();
    assert_eq!(fresh.fake_prior, 0.15);
    let db = chorus_registry::SERVICE
        .spec
        .connect(&app.database_url, 1)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(
        "UPDATE vetting_inputs SET audience_prior = NULL, audience_sensitivity = NULL, \
         audience_specificity = NULL, audience_rate_fakes = NULL, audience_rate_reals = NULL \
         WHERE handle = 'omar'",
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    // Any new evidence recomputes the report from the stored sample.
    let r = v
        .submit_comment_sample(SubmitCommentSampleRequest {
            platform: IG,
            handle: "omar".into(),
            comments: (0..12)
                .map(|i| format!("Where did you buy the lamp in photo {i}?"))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    let old = r.real_follower_share.unwrap();
    let v1 = Model::current().decision(V1_PRIOR).rates();
    assert_eq!(old.fake_prior, 0.44);
    assert_eq!((old.sensitivity, old.specificity), (v1.sensitivity, v1.specificity));
    assert_eq!((old.share, old.sample_size), (fresh.share, fresh.sample_size));
    assert_ne!(old.fake_share, fresh.fake_share, "corrected with other rates");
}

#[test]
fn the_fake_prior_is_configured_and_a_bad_one_is_named() {
    use chorus_kit::config::{Reader, Source};
    let read = |prior: Option<&str>| {
        let source = Source::from_pairs(prior.map(|p| ("CHORUS_VETTING_FAKE_PRIOR", p)));
        let mut r = Reader::new(&source);
        let config = chorus_registry::Config::read(&mut r);
        r.finish().map(|()| config)
    };
    assert_eq!(read(None).unwrap().vetting.fake_prior.get(), 0.15);
    assert_eq!(read(Some("0.3")).unwrap().vetting.fake_prior.get(), 0.3);
    for bad in ["0", "1", "1.5", "-0.1", "often"] {
        let err = read(Some(bad)).unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["CHORUS_VETTING_FAKE_PRIOR"], "{bad}");
    }
}

/// A sample retried with its request id is stored once: the repeat gets the first answer and
/// makes no new report; the same id with other rows is refused naming the id.
async fn retried_samples_are_stored_once(app: TestApp) {
    let mut c = app.client().await;
    let mut v = app.vetting().await;
    let inf = create(&mut c, influencer("Ravi", "ravi")).await;
    let comments = SubmitCommentSampleRequest {
        platform: IG,
        handle: "ravi".into(),
        comments: vec!["nice pic".into(), "Which trail is this one?".into()],
        request_id: "comments-1".into(),
    };
    let before = reports(&mut v, &inf.name).await.len();
    let first = v.submit_comment_sample(comments.clone()).await.unwrap().into_inner();
    let count = reports(&mut v, &inf.name).await.len();
    assert_eq!(count, before + 1, "a sample makes a report");
    let again = v.submit_comment_sample(comments.clone()).await.unwrap().into_inner();
    assert_eq!(again, first, "the repeat gets the first answer");
    assert_eq!(reports(&mut v, &inf.name).await.len(), count, "and stores nothing");
    let other = SubmitCommentSampleRequest {
        comments: vec!["wow".into()],
        ..comments
    };
    let err = v.submit_comment_sample(other).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("comments-1"), "names the key: {}", err.message());

    let followers: Vec<FollowerAccount> = (0..150).map(real_follower).collect();
    let mut stream = sample("ravi", followers.clone());
    stream[0].request_id = "audience-1".into();
    let first = v
        .submit_audience_sample(tokio_stream::iter(stream.clone()))
        .await
        .unwrap()
        .into_inner();
    let count = reports(&mut v, &inf.name).await.len();
    let again = v
        .submit_audience_sample(tokio_stream::iter(stream.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "a repeated stream gets the first answer");
    assert_eq!(reports(&mut v, &inf.name).await.len(), count, "and stores nothing");
    stream.last_mut().unwrap().followers[0] = fake_follower(0);
    let err = v.submit_audience_sample(tokio_stream::iter(stream)).await.unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::FailedPrecondition,
        "other rows, same id: {err:?}"
    );
}

on_both_backends! { spawn_app;
    metrics_produce_a_report_with_every_signal_and_its_events => metrics_make_a_report;
    samples_feed_the_report_its_history_events_and_filters => samples_case;
    classify_accounts_explains_each_call => classify_case;
    bad_vetting_input_is_refused_and_nothing_is_written => bad_input_is_refused_and_nothing_is_written;
    an_audience_sample_stored_before_the_correction_is_read_as_v1s_decision => an_old_sample_is_corrected_with_v1s_decision;
    a_retried_sample_is_stored_once => retried_samples_are_stored_once;
}
