//! The matching benchmark (docs/performance.md): against a registry holding the catalogue,
//! it builds the match index through the same streaming read the service starts with, then
//! measures in this one process
//!
//! 1. the index build time and its memory per influencer,
//! 2. Match for a typical brief returning the top 500 (the handler's work: scan, score,
//!    explain), as a latency distribution,
//! 3. the same brief as one SQL query on the registry's PostgreSQL tables, in the same run,
//! 4. Select over 50,000 candidates with a budget and diversity caps.
//!
//! ```sh
//! cargo run --release -p chorus-matching --example bench_match -- \
//!   http://127.0.0.1:50090 postgres://postgres@127.0.0.1/chorus_bench
//! ```
//! with `CHORUS_TOKEN` set to a token holding `registry.read` (`chorus token --scopes
//! registry.read` with the issuer's key).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chorus_matching::api::SharedIndex;
use chorus_matching::domain::rank::{Plan, Settings};
use chorus_matching::domain::select::{Limits, select};
use chorus_matching::events::{RegistrySource, read_all};
use chorus_proto::matching::{Brief, DeliverableWanted, DiversityCaps, NicheWeight, Objective};
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use hdrhistogram::Histogram;
use sqlx::Row;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// "Pet and wellness nanos in five big US cities, a post and a story on Instagram, cash or
/// product, engagement of at least 2%, $50,000 for 500 people."
fn typical() -> Brief {
    Brief {
        niches: vec![
            NicheWeight {
                niche: "pets".into(),
                weight: 2.0,
            },
            NicheWeight {
                niche: "wellness".into(),
                weight: 1.0,
            },
            NicheWeight {
                niche: "fitness".into(),
                weight: 1.0,
            },
        ],
        locations: ["Austin", "Denver", "Chicago", "Seattle", "New York"]
            .iter()
            .map(|c| Location {
                country_code: "US".into(),
                region: String::new(),
                city: (*c).into(),
            })
            .collect(),
        min_engagement_rate: Some(0.02),
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
        compensation_offered: vec![CompensationKind::Cash as i32, CompensationKind::Product as i32],
        budget: Some(Money {
            currency_code: "USD".into(),
            amount_minor: 5_000_000,
        }),
        headcount: 500,
        disclosure_jurisdiction: "US".into(),
        ..Default::default()
    }
}

/// The same brief as SQL over the registry's tables: its filters, and an ORDER BY that ranks
/// by niche weight, then engagement (the part of the score SQL can see without decoding the
/// profile bytes).
const SQL: &str = "
SELECT i.id, i.display_name, i.followers, i.engagement_rate
FROM influencers i
WHERE i.status IN (0, 1)
  AND i.platforms LIKE '%,1,%'
  AND i.followers >= 1000 AND i.followers < 10000
  AND i.country_code = 'US' AND i.city_key IN ('austin', 'denver', 'chicago', 'seattle', 'new york')
  AND (i.niches LIKE '%,pets,%' OR i.niches LIKE '%,wellness,%' OR i.niches LIKE '%,fitness,%')
  AND i.engagement_rate >= 0.02
  AND (i.verdict IS NULL OR i.verdict <> 3)
ORDER BY (CASE WHEN i.niches LIKE '%,pets,%' THEN 2 ELSE 0 END
        + CASE WHEN i.niches LIKE '%,wellness,%' THEN 1 ELSE 0 END
        + CASE WHEN i.niches LIKE '%,fitness,%' THEN 1 ELSE 0 END) DESC,
         i.engagement_rate DESC, i.id
LIMIT 500";

fn report(what: &str, h: &Histogram<u64>) {
    println!(
        "{what}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let registry = args.next().unwrap_or_else(|| "http://127.0.0.1:50090".into());
    let database = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1/chorus_bench".into());
    let runs: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let bearer = std::env::var("CHORUS_TOKEN").expect("CHORUS_TOKEN: a token holding registry.read");

    // 1. Build.
    let shared = Arc::new(SharedIndex::default());
    let before = rss_bytes();
    let started = Instant::now();
    let token: chorus_matching::events::Mint = Arc::new(move || {
        let bearer = bearer.clone();
        Box::pin(async move { Ok(bearer) })
    });
    let n = read_all(&shared, &RegistrySource { url: registry, token })
        .await
        .unwrap();
    let build = started.elapsed();
    let after = rss_bytes();
    // Out of the lock: the benchmark is the only reader.
    let index = std::mem::take(&mut *shared.index.write().unwrap());
    println!(
        "index build: {n} influencers in {:.2} s ({:.0}/s)",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64()
    );
    println!(
        "index memory: {:.0} bytes per influencer counted ({} MB), RSS grew {:.0} bytes per influencer ({} MB)",
        index.heap_bytes() as f64 / n as f64,
        index.heap_bytes() >> 20,
        after.saturating_sub(before) as f64 / n as f64,
        after.saturating_sub(before) >> 20
    );

    // 2. Match, top 500: scan, score, explain.
    let brief = typical();
    let none = HashSet::new();
    // What the service passes: every core.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut scan = Histogram::<u64>::new(3).unwrap();
    let mut matched = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let plan = Plan::new(&index, &brief, Objective::Awareness, &none, Settings::default(), 0);
        let r = plan.run(500, threads);
        scan.record(t.elapsed().as_micros() as u64).unwrap();
        let candidates = plan.candidates(&r.top, threads);
        h.record(t.elapsed().as_micros() as u64).unwrap();
        matched = r.matched;
        std::hint::black_box(candidates);
    }
    println!("typical brief: {matched} of {n} pass the filters");
    report("  of which the scan and scoring", &scan);
    report("match top 500 (scan, score, explain)", &h);
    let chorus_p50 = h.value_at_quantile(0.5);

    // 3. The same brief as SQL on PostgreSQL.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&database)
        .await
        .unwrap();
    let mut s = Histogram::<u64>::new(3).unwrap();
    let mut rows = 0;
    for _ in 0..(runs / 10).max(10) {
        let t = Instant::now();
        let found = sqlx::query(SQL).fetch_all(&pool).await.unwrap();
        s.record(t.elapsed().as_micros() as u64).unwrap();
        rows = found.len();
        std::hint::black_box(found.first().map(|r| r.try_get::<String, _>(0)));
    }
    println!("sql: {rows} rows");
    report("same brief as SQL on PostgreSQL", &s);
    println!(
        "ratio at p50: Chorus {:.1}x faster",
        s.value_at_quantile(0.5) as f64 / chorus_p50.max(1) as f64
    );

    // 4. Select over 50,000 candidates: a broad brief (any nano in the US on Instagram).
    let mut broad = typical();
    broad.locations = vec![Location {
        country_code: "US".into(),
        ..Default::default()
    }];
    broad.niches.clear();
    broad.min_engagement_rate = None;
    broad.headcount = 1_000;
    broad.budget = Some(Money {
        currency_code: "USD".into(),
        amount_minor: 6_000_000,
    });
    broad.diversity_caps = Some(DiversityCaps {
        max_city_share: 0.1,
        max_niche_share: 0.2,
    });
    let plan = Plan::new(&index, &broad, Objective::Awareness, &none, Settings::default(), 0);
    let ranked = plan.run(50_000, threads);
    println!(
        "select: {} candidates ranked ({} matched)",
        ranked.top.len(),
        ranked.matched
    );
    let limits = Limits::new(6_000_000, 1_000, 0.1, 0.2, 0);
    let mut sel = Histogram::<u64>::new(3).unwrap();
    let mut chosen = 0;
    for _ in 0..(runs / 10).max(10) {
        let t = Instant::now();
        let s = select(&ranked.top, |c| c.engagements, &limits);
        sel.record(t.elapsed().as_micros() as u64).unwrap();
        chosen = s.chosen.len();
    }
    println!("select chose {chosen}");
    report(
        "select over the candidates (budget, headcount, city and niche caps)",
        &sel,
    );
}
