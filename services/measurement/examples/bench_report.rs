//! The campaign report's speed on PostgreSQL (issue 14: a 10,000-influencer campaign with 10
//! million events in at most 500 ms). The report reads rollups, never events, so the campaign
//! is seeded as the rollups 10 million events leave behind, by binary COPY: per influencer a
//! member (three segments, three tiers, a planned cost), a deliverable (approved, on time or
//! not, compliant or not), its newest post metrics and a payout; per influencer and day (30
//! days) a click rollup and a conversion rollup, their counts summing to 8,000,000 clicks and
//! 2,000,000 conversions. Then `GetCampaignReport`'s work (the grouped reads and the
//! arithmetic, in process, without gRPC's encoding) runs R times; each time and the median are
//! printed.
//!
//! `cargo run --release -p chorus-measurement --example bench_report -- [influencers] [runs]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/bench.rs"]
mod bench;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::{Binary, Field};
use chorus_kit::idempotency::Idempotency;
use chorus_kit::names::{CampaignName, ResourceName};
use chorus_measurement::api::MeasurementApi;
use chorus_measurement::clicks::Clicks;
use chorus_measurement::conversions::Ingest;
use chorus_measurement::report::RateCard;
use chorus_proto::measurement::TestMetric;
use prost::Message;
use sqlx::Connection;

const TENANT: &str = "bench";
const CAMPAIGN: &str = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const DAYS: i64 = 30;
const CLICKS: i64 = 8_000_000;
const CONVERSIONS: i64 = 2_000_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    let (url, db, store, clock) = bench::fresh_store().await;
    let first_day = clock.now_micros() / 86_400_000_000 - DAYS;

    let started = Instant::now();
    let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
    let (mut members, mut deliverables, mut posts, mut payouts) =
        (Binary::new(), Binary::new(), Binary::new(), Binary::new());
    let (mut clicks, mut sales) = (Binary::new(), Binary::new());
    let segments = ["austin", "denver", "portland"];
    let (mut clicks_total, mut conversions_total) = (0, 0);
    for i in 0..n {
        let who = format!("0190a5b2-7c3d-7e4f-8a1b-{i:012x}");
        let segment = segments[(i % 3) as usize];
        let deliverable = format!("contracts/0190a5b2-7c3d-7e4f-9a1b-{i:012x}/deliverables/1");
        members.row(&[
            Field::Text(TENANT),
            Field::Text(CAMPAIGN),
            Field::Text(&who),
            Field::Text(segment),
            Field::Int(1 + i % 3),
            Field::Text("USD"),
            Field::Int(10_000 + i % 5_000),
            Field::Int(1),
        ]);
        deliverables.row(&[
            Field::Text(TENANT),
            Field::Text(&deliverable),
            Field::Text(CAMPAIGN),
            Field::Text(&who),
            Field::Int(1),
            Field::Int(i64::from(i % 10 == 0)),
            Field::Int(i64::from(i % 7 != 0)),
        ]);
        posts.row(&[
            Field::Text(TENANT),
            Field::Text(&deliverable),
            Field::Int(0),
            Field::Int(2_000 + i % 3_000),
            Field::Int(3_000 + i % 4_000),
            Field::Int(100 + i % 300),
        ]);
        payouts.row(&[
            Field::Text(TENANT),
            Field::Text(&format!("payout-{i}")),
            Field::Text(CAMPAIGN),
            Field::Text(&who),
            Field::Int(1 + i % 3),
            Field::Text("USD"),
            Field::Int(10_000 + i % 5_000),
            Field::Int(0),
        ]);
        for d in 0..DAYS {
            // Spread the totals evenly over influencer-days, the remainder on the first ones.
            let slot = i * DAYS + d;
            let share = |total: i64| total / (n * DAYS) + i64::from(slot < total % (n * DAYS));
            let (c, v) = (share(CLICKS), share(CONVERSIONS));
            clicks_total += c;
            conversions_total += v;
            clicks.row(&[
                Field::Text(TENANT),
                Field::Text(CAMPAIGN),
                Field::Text(&who),
                Field::Int(first_day + d),
                Field::Int(c),
                Field::Int(0),
            ]);
            sales.row(&[
                Field::Text(TENANT),
                Field::Text(CAMPAIGN),
                Field::Text(&who),
                Field::Int(first_day + d),
                Field::Text("USD"),
                Field::Int(v),
                Field::Int(v / 3),
                Field::Int(v * 2_500),
                Field::Int(0),
            ]);
        }
    }
    for (table, rows) in [
        ("report_members", members),
        ("report_deliverables", deliverables),
        ("post_rollups", posts),
        ("report_payouts", payouts),
        ("click_rollups", clicks),
        ("conversion_rollups", sales),
    ] {
        bench::copy_in(&mut pg, table, &rows.finish()).await;
    }
    sqlx::query("VACUUM ANALYZE").execute(&mut pg).await.unwrap();
    println!(
        "seeded {n} influencers, {clicks_total} clicks and {conversions_total} conversions as rollups in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let api = MeasurementApi::new(
        Ingest {
            clicks: Clicks::new(store.clone()),
            store,
        },
        Arc::new(RateCard::shipped()),
        Idempotency::new(db.clone(), clock.clone(), Duration::from_secs(3_600)),
    );
    let campaign = CampaignName::parse(&format!("campaigns/{CAMPAIGN}")).unwrap();
    let mut times = Vec::new();
    for run in 0..runs {
        let load = bench::load();
        let started = Instant::now();
        let report = api.report(TENANT, &campaign, TestMetric::Unspecified).await.unwrap();
        let ms = started.elapsed().as_secs_f64() * 1_000.0;
        let f = report.campaign_figures.clone().unwrap_or_default();
        assert_eq!(
            (f.clicks, f.conversions, f.influencers),
            (clicks_total, conversions_total, n)
        );
        println!(
            "run {run}: {ms:>7.1} ms  ({} influencer rows, {} bytes encoded; load {load}) {}",
            report.influencers.len(),
            report.encoded_len(),
            report.segment_test.map(|t| t.sentence).unwrap_or_default()
        );
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    println!("median {:.1} ms of {runs} runs", times[times.len() / 2]);
    pg.close().await.unwrap();
    db.close().await;
}
