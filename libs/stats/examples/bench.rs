//! How long the audience test of a large campaign takes: 10,000 influencers in 10 segments,
//! every metric, 20,000 probability-best draws. Figures in docs/performance.md.
//!
//! `cargo run --release -p chorus-stats --example bench` (`DRAWS=1` leaves out most of the
//! Monte Carlo, to see what the rest costs)

use std::time::Instant;

use chorus_stats::{CampaignData, Config, InfluencerTotals, PlannedSegment, analyze};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), chorus_stats::ConfigError> {
    let mut rng = StdRng::seed_from_u64(1);
    let segments = 10;
    let rows: Vec<InfluencerTotals> = (0..10_000)
        .map(|i| {
            let clicks: u64 = rng.random_range(0..2_000);
            let conversions = (clicks as f64 * rng.random_range(0.0..0.08)) as u64;
            let impressions: u64 = rng.random_range(1_000..200_000);
            InfluencerTotals {
                influencer: format!("inf-{i}"),
                segment: format!("segment-{}", i % segments),
                clicks,
                conversions,
                impressions,
                engagements: (impressions as f64 * rng.random_range(0.0..0.06)) as u64,
                revenue_minor: conversions as i64 * rng.random_range(1_000..9_000),
                spend_minor: rng.random_range(10_000..100_000),
            }
        })
        .collect();
    let plan = (0..segments)
        .map(|s| PlannedSegment {
            segment: format!("segment-{s}"),
            influencers: 1_000,
            spend_minor: 55_000_000,
        })
        .collect();
    let data = CampaignData { rows, plan };
    let config = Config {
        best_draws: std::env::var("DRAWS")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(20_000),
        ..Config::default()
    };
    let mut times = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        let test = analyze(&data, &config)?;
        times.push(start.elapsed());
        std::hint::black_box(test);
    }
    times.sort();
    println!(
        "analyze, 10,000 influencers in {segments} segments: median {:?}, max {:?} over {} runs",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}
