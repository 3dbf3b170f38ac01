//! Whatever the data, the audience test holds together: no panic, no NaN or infinity,
//! p-values in [0, 1], Holm never lowers a p-value, significance agrees with the adjusted
//! p-value, intervals contain their estimates, and the probabilities of being best add to 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_stats::{CampaignData, Config, InfluencerTotals, PlannedSegment, analyze};
use proptest::prelude::*;

fn row() -> impl Strategy<Value = InfluencerTotals> {
    (
        0..40u32,
        0..4u32,
        prop_oneof![Just(0u64), 0..50u64, 0..1_000_000_000u64],
        0..100u64,
        prop_oneof![Just(0u64), 0..10_000_000u64],
        0..100_000u64,
        -1_000_000..10_000_000i64,
        0..1_000_000i64,
    )
        .prop_map(|(i, s, clicks, conv, imps, eng, revenue, spend)| InfluencerTotals {
            influencer: format!("inf-{i}"),
            segment: format!("seg-{s}"),
            clicks,
            conversions: conv,
            impressions: imps,
            engagements: eng,
            revenue_minor: revenue,
            spend_minor: spend,
        })
}

fn plan() -> impl Strategy<Value = Vec<PlannedSegment>> {
    proptest::collection::vec((0..5u32, 0..30u32, 0..5_000_000i64), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(s, influencers, spend_minor)| PlannedSegment {
                segment: format!("seg-{s}"),
                influencers,
                spend_minor,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_campaign_gives_a_coherent_result(
        rows in proptest::collection::vec(row(), 0..120),
        plan in plan(),
        min_influencers in 2..12usize,
    ) {
        let config = Config { best_draws: 200, min_influencers, min_events: 3, ..Config::default() };
        let test = analyze(&CampaignData { rows, plan }, &config).unwrap();
        let debug = format!("{test:?}");
        prop_assert!(!debug.contains("NaN") && !debug.contains(": inf") && !debug.contains(": -inf"));
        for m in &test.metrics {
            for s in &m.segments {
                if let Some(e) = s.estimate {
                    prop_assert!(e.ci_low <= e.value + 1e-12 && e.value <= e.ci_high + 1e-12, "{e:?}");
                    prop_assert!(e.std_error >= 0.0);
                }
                prop_assert!(!s.sentence.is_empty());
            }
            let best: Vec<f64> = m.segments.iter().filter_map(|s| s.probability_best).collect();
            if !best.is_empty() {
                prop_assert!((best.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{best:?}");
            }
            let mut tested = 0;
            for c in &m.comparisons {
                match (c.difference, c.p_adjusted) {
                    (Some(d), Some(adj)) => {
                        tested += 1;
                        prop_assert!((0.0..=1.0).contains(&d.p_value));
                        prop_assert!(adj >= d.p_value - 1e-15 && adj <= 1.0);
                        prop_assert_eq!(c.significant, adj <= config.alpha);
                        prop_assert!(d.ci_low <= d.value && d.value <= d.ci_high);
                    }
                    (None, None) => {
                        prop_assert!(!c.significant);
                        prop_assert!(c.sentence.contains("not enough data yet"), "{}", c.sentence);
                    }
                    _ => prop_assert!(false, "a difference without an adjusted p-value"),
                }
            }
            prop_assert_eq!(tested, m.tested);
        }
        if let Some(chi) = test.allocation.influencer_counts {
            prop_assert!(chi.statistic >= 0.0 && (0.0..=1.0).contains(&chi.p_value));
        }
    }
}
