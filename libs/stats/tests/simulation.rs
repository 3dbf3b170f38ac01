//! Simulated campaigns with clustered data, as real ones are: each influencer's conversion rate
//! drawn from a beta distribution (audiences differ), clicks per influencer varying, conversions
//! binomial given both. Under no real difference the influencer-level test rejects about α of
//! the time and a naive per-click test far more often; with a planted difference the test finds
//! it about as often as the sample-size estimate promised.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_stats::estimate::{Difference, ratio_estimate, welch_difference};
use chorus_stats::{CampaignData, Config, InfluencerTotals, analyze};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Binomial, Distribution};

/// Beta concentration a + b: the intra-influencer correlation is 1 / (a + b + 1) ≈ 0.02, modest,
/// yet with 200 clicks per influencer the design effect is about 5.
const CONCENTRATION: f64 = 50.0;
const BASELINE: f64 = 0.05;

/// One segment: `(clicks, conversions)` per influencer.
fn segment(rng: &mut StdRng, influencers: usize, mean_rate: f64) -> Vec<(f64, f64)> {
    let beta = Beta::new(mean_rate * CONCENTRATION, (1.0 - mean_rate) * CONCENTRATION).unwrap();
    (0..influencers)
        .map(|_| {
            let clicks: u64 = rng.random_range(50..=350);
            let rate = beta.sample(rng);
            let conversions = Binomial::new(clicks, rate).unwrap().sample(rng);
            (clicks as f64, conversions as f64)
        })
        .collect()
}

/// The influencer-level test the report runs (delta method, Welch).
fn clustered_test(a: &[(f64, f64)], b: &[(f64, f64)]) -> Difference {
    let ea = ratio_estimate(a, 0.95).unwrap();
    let eb = ratio_estimate(b, 0.95).unwrap();
    welch_difference(&ea, &eb, 0.95).unwrap()
}

/// The test a per-click analysis would run: a pooled two-proportion z-test treating every
/// click as independent. Rejects at two-sided 5%.
fn naive_rejects(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    let sum = |s: &[(f64, f64)]| s.iter().fold((0.0, 0.0), |t, p| (t.0 + p.0, t.1 + p.1));
    let ((na, ya), (nb, yb)) = (sum(a), sum(b));
    let pooled = (ya + yb) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    ((ya / na - yb / nb) / se).abs() > 1.959_964
}

#[test]
fn false_positive_rate_stays_near_alpha_and_a_naive_test_runs_far_above() {
    let mut rng = StdRng::seed_from_u64(20_261_127);
    let runs = 2_000;
    let (mut clustered, mut naive) = (0usize, 0usize);
    for _ in 0..runs {
        let a = segment(&mut rng, 20, BASELINE);
        let b = segment(&mut rng, 20, BASELINE);
        if clustered_test(&a, &b).p_value <= 0.05 {
            clustered += 1;
        }
        if naive_rejects(&a, &b) {
            naive += 1;
        }
    }
    let fpr = clustered as f64 / runs as f64;
    let naive_fpr = naive as f64 / runs as f64;
    eprintln!("false-positive rate: influencer-level {fpr:.4}, per-click {naive_fpr:.4}");
    assert!(
        (0.03..=0.07).contains(&fpr),
        "influencer-level false-positive rate {fpr} is not near 0.05"
    );
    assert!(
        naive_fpr > 0.2 && naive_fpr > 3.0 * fpr,
        "per-click false-positive rate {naive_fpr} should be far above {fpr}: clustering"
    );
}

#[test]
fn a_planted_difference_is_found_with_the_promised_power() {
    let mut rng = StdRng::seed_from_u64(14);
    // What a brand sees first: a campaign with no difference, from which the report estimates
    // how many clicks per segment a 20% difference needs (design effect included).
    let pilot: Vec<InfluencerTotals> = ["a", "b"]
        .iter()
        .flat_map(|s| {
            segment(&mut rng, 300, BASELINE)
                .into_iter()
                .enumerate()
                .map(move |(i, (clicks, conversions))| InfluencerTotals {
                    influencer: format!("{s}-{i}"),
                    segment: (*s).to_owned(),
                    clicks: clicks as u64,
                    conversions: conversions as u64,
                    impressions: 0,
                    engagements: 0,
                    revenue_minor: 0,
                    spend_minor: 0,
                })
        })
        .collect();
    let config = Config::default();
    let report = analyze(
        &CampaignData {
            rows: pilot,
            plan: vec![],
        },
        &config,
    )
    .unwrap();
    let size = report.metrics[0].sample_size.unwrap();
    let design_effect = size.design_effect.unwrap();
    assert!(
        (3.0..9.0).contains(&design_effect),
        "design effect {design_effect}: clustering must show"
    );
    // Clicks per influencer average 200.
    let influencers = size.required_per_segment.div_ceil(200) as usize;
    eprintln!(
        "required {} clicks per segment ({influencers} influencers), design effect {design_effect:.2}",
        size.required_per_segment
    );

    // A 20% difference around the baseline, at that size.
    let delta = config.min_detectable_relative * size.baseline;
    let runs = 600;
    let mut found = 0usize;
    for _ in 0..runs {
        let a = segment(&mut rng, influencers, size.baseline + delta / 2.0);
        let b = segment(&mut rng, influencers, size.baseline - delta / 2.0);
        let d = clustered_test(&a, &b);
        if d.p_value <= config.alpha && d.value > 0.0 {
            found += 1;
        }
    }
    let power = found as f64 / runs as f64;
    eprintln!("empirical power {power:.3} (promised {})", config.power);
    assert!(
        (0.70..=0.90).contains(&power),
        "empirical power {power} is not near the promised {}",
        config.power
    );
}

#[test]
fn holm_keeps_the_family_wise_error_near_alpha_with_three_segments() {
    let mut rng = StdRng::seed_from_u64(3);
    // Few draws for probability-best: this test is about the pairwise tests, and the debug
    // build is slow at Monte Carlo.
    let config = Config {
        best_draws: 20,
        ..Config::default()
    };
    let runs = 1_000;
    let (mut holm, mut raw) = (0usize, 0usize);
    for _ in 0..runs {
        let rows = ["a", "b", "c"]
            .iter()
            .flat_map(|s| {
                segment(&mut rng, 15, BASELINE)
                    .into_iter()
                    .enumerate()
                    .map(move |(i, (clicks, conversions))| InfluencerTotals {
                        influencer: format!("{s}-{i}"),
                        segment: (*s).to_owned(),
                        clicks: clicks as u64,
                        conversions: conversions as u64,
                        impressions: 0,
                        engagements: 0,
                        revenue_minor: 0,
                        spend_minor: 0,
                    })
            })
            .collect();
        let report = analyze(&CampaignData { rows, plan: vec![] }, &config).unwrap();
        let conversions = &report.metrics[0];
        assert_eq!(conversions.tested, 3);
        if conversions.comparisons.iter().any(|c| c.significant) {
            holm += 1;
        }
        if conversions
            .comparisons
            .iter()
            .any(|c| c.difference.is_some_and(|d| d.p_value <= config.alpha))
        {
            raw += 1;
        }
    }
    let (holm, raw) = (holm as f64 / runs as f64, raw as f64 / runs as f64);
    eprintln!("family-wise error: Holm {holm:.3}, uncorrected {raw:.3}");
    assert!((0.02..=0.07).contains(&holm), "Holm family-wise error {holm}");
    assert!(raw > holm + 0.03, "uncorrected {raw} vs Holm {holm}");
}
