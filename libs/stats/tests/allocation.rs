//! The allocation check: each segment got the influencers and spend planned, and each
//! departure is a finding that names the segment and the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_stats::{CampaignData, Config, FindingKind, InfluencerTotals, PlannedSegment, analyze};

fn rows(segment: &str, n: usize, spend_each: i64) -> Vec<InfluencerTotals> {
    (0..n)
        .map(|i| InfluencerTotals {
            influencer: format!("{segment}-{i}"),
            segment: segment.to_owned(),
            clicks: 100,
            conversions: 3,
            impressions: 5_000,
            engagements: 200,
            revenue_minor: 9_000,
            spend_minor: spend_each,
        })
        .collect()
}

fn plan(segment: &str, influencers: u32, spend_minor: i64) -> PlannedSegment {
    PlannedSegment {
        segment: segment.to_owned(),
        influencers,
        spend_minor,
    }
}

#[test]
fn a_campaign_run_as_planned_has_no_findings() {
    let mut data = rows("Austin", 20, 50_000);
    data.extend(rows("Denver", 20, 50_000));
    let test = analyze(
        &CampaignData {
            rows: data,
            plan: vec![plan("Austin", 20, 1_000_000), plan("Denver", 20, 1_000_000)],
        },
        &Config::default(),
    )
    .unwrap();
    let check = &test.allocation;
    assert!(check.findings.is_empty(), "{:?}", check.findings);
    let chi = check.influencer_counts.unwrap();
    assert_eq!(chi.statistic, 0.0);
    assert!((chi.p_value - 1.0).abs() < 1e-12);
    assert_eq!(check.segments[0].spend_share, Some(0.5));
}

#[test]
fn departures_from_the_plan_are_named() {
    let mut data = rows("Austin", 30, 50_000);
    data.extend(rows("Denver", 10, 50_000));
    // An influencer who also posted for Austin shows up in Denver's data.
    let mut shared = rows("Denver", 1, 0);
    shared[0].influencer = "Austin-0".to_owned();
    data.extend(shared);
    let test = analyze(
        &CampaignData {
            rows: data,
            plan: vec![plan("Austin", 20, 1_000_000), plan("Denver", 20, 1_000_000)],
        },
        &Config::default(),
    )
    .unwrap();
    let check = &test.allocation;
    let sentences: Vec<(FindingKind, Option<&str>, &str)> = check
        .findings
        .iter()
        .map(|f| (f.kind, f.segment.as_deref(), f.sentence.as_str()))
        .collect();
    // 30 and 11 against 20 and 20: chi-square (30 − 20.5)² / 20.5 · 2 = 8.80, 1 df.
    let chi = check.influencer_counts.unwrap();
    assert!((chi.statistic - 2.0 * 9.5f64.powi(2) / 20.5).abs() < 1e-12);
    assert!(chi.p_value < 0.01);
    assert_eq!(sentences[0].0, FindingKind::InfluencerSharesOffPlan);
    assert!(
        sentences[0]
            .2
            .starts_with("Influencers are not spread across segments as planned (chi-square 8.80, 1 df, p = 0.003"),
        "{}",
        sentences[0].2
    );
    assert!(
        sentences.contains(&(
            FindingKind::MoreInfluencers,
            Some("Austin"),
            "Austin got 30 influencers; 20 were planned"
        )),
        "{sentences:?}"
    );
    assert!(
        sentences.contains(&(
            FindingKind::FewerInfluencers,
            Some("Denver"),
            "Denver got 11 of the 20 influencers planned"
        )),
        "{sentences:?}"
    );
    // Spend 1.5M against 0.5M: 75% against 50% planned.
    assert!(
        sentences.contains(&(
            FindingKind::SpendShareOffPlan,
            Some("Austin"),
            "Austin got 75% of the spend against 50% planned"
        )),
        "{sentences:?}"
    );
    assert!(
        sentences.contains(&(
            FindingKind::SpendShareOffPlan,
            Some("Denver"),
            "Denver got 25% of the spend against 50% planned"
        )),
        "{sentences:?}"
    );
    assert!(
        sentences.contains(&(
            FindingKind::SharedInfluencer,
            None,
            "Influencer Austin-0 appears in 2 segments (Austin, Denver); segments should not share influencers"
        )),
        "{sentences:?}"
    );
}

#[test]
fn spend_within_the_tolerance_is_not_a_finding() {
    // 52% against 50% planned: inside the 5-point tolerance.
    let mut data = rows("Austin", 20, 52_000);
    data.extend(rows("Denver", 20, 48_000));
    let test = analyze(
        &CampaignData {
            rows: data,
            plan: vec![plan("Austin", 20, 1_000_000), plan("Denver", 20, 1_000_000)],
        },
        &Config::default(),
    )
    .unwrap();
    assert!(test.allocation.findings.is_empty(), "{:?}", test.allocation.findings);
    let tight = Config {
        spend_share_tolerance: 0.01,
        ..Config::default()
    };
    let mut data = rows("Austin", 20, 52_000);
    data.extend(rows("Denver", 20, 48_000));
    let test = analyze(
        &CampaignData {
            rows: data,
            plan: vec![plan("Austin", 20, 1_000_000), plan("Denver", 20, 1_000_000)],
        },
        &tight,
    )
    .unwrap();
    assert_eq!(test.allocation.findings.len(), 2);
}
