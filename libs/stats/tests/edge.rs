//! Campaigns with too little data: an empty campaign, a planned segment with no rows, zero
//! clicks, one influencer, no conversions at all. None panics, no figure is NaN or infinite,
//! and each says "not enough data yet" rather than claiming anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_stats::{
    AudienceTest, CampaignData, Config, FindingKind, InfluencerTotals, Metric, PlannedSegment, analyze,
};

fn row(influencer: &str, segment: &str, clicks: u64, conversions: u64) -> InfluencerTotals {
    InfluencerTotals {
        influencer: influencer.to_owned(),
        segment: segment.to_owned(),
        clicks,
        conversions,
        impressions: clicks * 40,
        engagements: conversions * 30,
        revenue_minor: conversions as i64 * 4_000,
        spend_minor: 30_000,
    }
}

fn plan(segment: &str, influencers: u32) -> PlannedSegment {
    PlannedSegment {
        segment: segment.to_owned(),
        influencers,
        spend_minor: i64::from(influencers) * 30_000,
    }
}

/// No NaN or infinity anywhere in the result (Debug prints every float), and no sentence
/// carries one either.
#[track_caller]
fn assert_finite(test: &AudienceTest) {
    let debug = format!("{test:?}");
    for bad in ["NaN", ": inf", ": -inf", "(inf", "(-inf"] {
        assert!(!debug.contains(bad), "{bad} in {debug}");
    }
    let json = serde_json::to_string(test).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf%"), "{json}");
}

fn segment<'a>(test: &'a AudienceTest, metric: Metric, name: &str) -> &'a chorus_stats::SegmentResult {
    let m = test.metrics.iter().find(|m| m.metric == metric).unwrap();
    m.segments.iter().find(|s| s.segment == name).unwrap()
}

/// A healthy segment: 12 influencers with clicks, conversions and varied revenue.
fn healthy(name: &str) -> Vec<InfluencerTotals> {
    (0..12)
        .map(|i| row(&format!("{name}-{i}"), name, 100 + 17 * i, 3 + i % 4))
        .collect()
}

#[test]
fn an_empty_campaign_has_nothing_to_claim() {
    let test = analyze(&CampaignData::default(), &Config::default()).unwrap();
    assert_finite(&test);
    for m in &test.metrics {
        assert!(m.segments.is_empty() && m.comparisons.is_empty());
        assert!(m.sample_size.is_none());
    }
    assert!(test.allocation.influencer_counts.is_none());
    assert!(test.allocation.findings.is_empty());
}

#[test]
fn a_planned_segment_without_data_is_not_enough_and_a_finding() {
    let data = CampaignData {
        rows: healthy("Austin"),
        plan: vec![plan("Austin", 12), plan("Denver", 12)],
    };
    let test = analyze(&data, &Config::default()).unwrap();
    assert_finite(&test);
    let denver = segment(&test, Metric::ConversionsPerClick, "Denver");
    assert!(!denver.enough_data && denver.estimate.is_none());
    assert!(denver.sentence.contains("not enough data yet"), "{}", denver.sentence);
    let pair = &test.metrics[0].comparisons[0];
    assert!(pair.difference.is_none() && !pair.significant);
    assert!(pair.sentence.contains("not enough data yet"), "{}", pair.sentence);
    // Austin's own variance says how much Denver needs.
    assert!(
        pair.sentence
            .contains("more clicks per segment to detect a 20% difference")
    );
    assert!(
        segment(&test, Metric::ConversionsPerClick, "Denver")
            .more_needed
            .unwrap()
            > 0
    );
    let kinds: Vec<FindingKind> = test.allocation.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::NoData), "{kinds:?}");
    assert!(kinds.contains(&FindingKind::InfluencerSharesOffPlan), "{kinds:?}");
}

#[test]
fn zero_clicks_one_influencer_and_no_conversions_claim_nothing() {
    let mut rows = healthy("Austin");
    // Denver: influencers without a click.
    rows.extend((0..12).map(|i| row(&format!("d-{i}"), "Denver", 0, 0)));
    // Boise: one influencer.
    rows.push(row("b-0", "Boise", 400, 9));
    // Reno: clicks but not one conversion (nor revenue, nor engagement).
    rows.extend((0..15).map(|i| row(&format!("r-{i}"), "Reno", 200, 0)));
    let data = CampaignData {
        rows,
        plan: ["Austin", "Denver", "Boise", "Reno"]
            .iter()
            .map(|s| plan(s, 12))
            .collect(),
    };
    let test = analyze(&data, &Config::default()).unwrap();
    assert_finite(&test);
    for metric in Metric::ALL {
        for name in ["Denver", "Boise", "Reno"] {
            let s = segment(&test, metric, name);
            assert!(!s.enough_data, "{metric:?} {name}");
            assert!(s.probability_best.is_none());
            assert!(s.sentence.contains("not enough data yet"), "{}", s.sentence);
        }
        let m = test.metrics.iter().find(|m| m.metric == metric).unwrap();
        assert_eq!(m.tested, 0, "{metric:?}: nothing can be tested");
        for c in &m.comparisons {
            assert!(c.difference.is_none() && c.p_adjusted.is_none() && !c.significant);
            assert!(c.sentence.contains("not enough data yet"), "{}", c.sentence);
        }
    }
    // Zero clicks: no rate at all; one influencer: no variance.
    assert!(segment(&test, Metric::ConversionsPerClick, "Denver").estimate.is_none());
    assert!(segment(&test, Metric::ConversionsPerClick, "Boise").estimate.is_none());
    // No conversions: the rate is 0, but 0 of 10 needed conversions is not a claim.
    let reno = segment(&test, Metric::ConversionsPerClick, "Reno");
    assert_eq!(reno.estimate.unwrap().value, 0.0);
}

#[test]
fn all_zero_conversions_everywhere_is_not_enough_data() {
    let rows = ["Austin", "Denver"]
        .iter()
        .flat_map(|s| (0..20).map(move |i| row(&format!("{s}-{i}"), s, 150, 0)))
        .collect();
    let test = analyze(&CampaignData { rows, plan: vec![] }, &Config::default()).unwrap();
    assert_finite(&test);
    let m = &test.metrics[0];
    assert!(m.sample_size.is_none(), "a zero baseline has no 20% difference");
    let c = &m.comparisons[0];
    assert!(c.difference.is_none());
    assert!(
        c.sentence
            .ends_with("each segment needs at least 10 influencers with clicks and 10 conversions first"),
        "{}",
        c.sentence
    );
    // Two segments without a plan are findings, not errors.
    assert!(
        test.allocation
            .findings
            .iter()
            .all(|f| f.kind == FindingKind::UnplannedSegment)
    );
}

#[test]
fn settings_out_of_range_are_named() {
    let config = Config {
        alpha: 0.0,
        power: 1.5,
        best_draws: 0,
        ..Config::default()
    };
    let err = analyze(&CampaignData::default(), &config).unwrap_err();
    assert_eq!(err.fields, vec!["alpha", "power", "best_draws"]);
}
