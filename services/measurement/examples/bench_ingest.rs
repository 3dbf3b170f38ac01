//! Ingest speed on PostgreSQL (issue 14: clicks and conversions, durable and deduplicated, at
//! least 0.5x a raw binary COPY of the same rows in the same run). On a fresh database with
//! measurement's tables: N clicks written the way the redirect's flusher writes them (batches
//! of 2,000: the events, each link's count and the rollups in one transaction each), then M
//! orders the way RecordConversions writes them (batches of 1,000: the order ids' dedup keys,
//! the events, the rollups, promo-code redemptions and the leak check, one transaction each;
//! a third of the orders use one of 1,000 promo codes). Then the very same event rows are
//! COPYed (binary) into bare tables of the same columns, and both rates are printed.
//!
//! `cargo run --release -p chorus-measurement --example bench_ingest -- [clicks] [orders]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/bench.rs"]
mod bench;

use std::time::Instant;

use bench::{Binary, Field};
use chorus_kit::idempotency::Claim;
use chorus_measurement::domain::attribution::Decision;
use chorus_measurement::domain::days::day_of;
use chorus_measurement::store::{NewClick, NewConversion, id_at};
use chorus_proto::measurement::{AttributionMethod, ConversionSource, DeviceClass, PromoCode};
use sqlx::Connection;

const TENANT: &str = "bench";
const INFLUENCERS: usize = 1_000;
const CLICK_BATCH: usize = 2_000;
const ORDER_BATCH: usize = 1_000;

fn influencer(i: usize) -> String {
    format!("0190a5b2-7c3d-7e4f-8a1b-{:012x}", i % INFLUENCERS)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_clicks: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let n_orders: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let (url, db, store, clock) = bench::fresh_store().await;
    let campaign = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70".to_owned();
    let now = clock.now_micros();

    // The promo codes, one per influencer.
    let codes: Vec<PromoCode> = (0..INFLUENCERS)
        .map(|i| PromoCode {
            name: format!("promoCodes/{}", uuid::Uuid::now_v7()),
            code: format!("CODE{i:05}"),
            campaign: format!("campaigns/{campaign}"),
            influencer: format!("influencers/{}", influencer(i)),
            ..Default::default()
        })
        .collect();
    store
        .create_promo_codes(TENANT, &codes, "", &Claim::none())
        .await
        .unwrap();

    let clicks: Vec<NewClick> = (0..n_clicks)
        .map(|i| NewClick {
            id: id_at(now + i as i64),
            tenant: TENANT.into(),
            link_id: format!("link-{}", i % INFLUENCERS),
            campaign_id: campaign.clone(),
            influencer_id: influencer(i),
            time: now + i as i64,
            country: "US".into(),
            device: DeviceClass::Mobile,
            referrer: "www.instagram.com".into(),
            bot: i % 50 == 0,
            ip_hash: format!("{:064x}", i * 7_919),
        })
        .collect();
    let orders: Vec<NewConversion> = (0..n_orders)
        .map(|i| {
            let by_code = i % 3 == 0;
            let who = i % INFLUENCERS;
            NewConversion {
                order_id: format!("order-{i}"),
                source: ConversionSource::Api,
                shop_domain: String::new(),
                currency: "USD".into(),
                revenue_minor: 1_000 + (i % 9_000) as i64,
                order_time: now,
                country: "US".into(),
                decision: Decision {
                    method: if by_code {
                        AttributionMethod::PromoCode
                    } else {
                        AttributionMethod::Click
                    },
                    campaign_id: campaign.clone(),
                    influencer_id: influencer(who),
                    segment: "austin".into(),
                    promo_id: if by_code {
                        codes[who].name.trim_start_matches("promoCodes/").to_owned()
                    } else {
                        String::new()
                    },
                    click_id: if by_code {
                        String::new()
                    } else {
                        clicks[i % n_clicks.max(1)].id.clone()
                    },
                    link_id: format!("link-{who}"),
                    reason: "bench".into(),
                },
            }
        })
        .collect();

    let load_before = bench::load();
    let started = Instant::now();
    for chunk in clicks.chunks(CLICK_BATCH) {
        store.insert_clicks(chunk).await.unwrap();
    }
    let click_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for chunk in orders.chunks(ORDER_BATCH) {
        let out = store.record_conversions(TENANT, chunk, &[]).await.unwrap().unwrap();
        assert!(out.iter().all(|(_, duplicate)| !duplicate));
    }
    let order_secs = started.elapsed().as_secs_f64();

    // The same event rows, COPYed into bare tables of the same columns.
    let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
    for t in ["clicks", "conversions"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE {t}_raw (LIKE {t})")))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    let mut rows = Binary::new();
    for c in &clicks {
        rows.row(&[
            Field::Int(i64::from(day_of(c.time))),
            Field::Text(&c.id),
            Field::Text(&c.tenant),
            Field::Text(&c.link_id),
            Field::Text(&c.campaign_id),
            Field::Text(&c.influencer_id),
            Field::Int(c.time),
            Field::Text(&c.country),
            Field::Int(c.device as i64),
            Field::Text(&c.referrer),
            Field::Int(i64::from(c.bot)),
            Field::Text(&c.ip_hash),
        ]);
    }
    let click_data = rows.finish();
    let ids: Vec<String> = orders.iter().map(|_| id_at(now)).collect();
    let mut rows = Binary::new();
    for (o, id) in orders.iter().zip(&ids) {
        let d = &o.decision;
        rows.row(&[
            Field::Int(i64::from(day_of(now))),
            Field::Text(id),
            Field::Text(TENANT),
            Field::Text(&o.order_id),
            Field::Int(o.source as i64),
            Field::Text(&o.shop_domain),
            Field::Text(&d.campaign_id),
            Field::Text(&d.influencer_id),
            Field::Text(&d.segment),
            Field::Int(d.method as i64),
            Field::Text(&d.reason),
            Field::Text(&d.promo_id),
            Field::Text(&d.click_id),
            Field::Text(&d.link_id),
            Field::Text(&o.currency),
            Field::Int(o.revenue_minor),
            Field::Int(o.order_time),
            Field::Int(now),
            Field::Text(&o.country),
        ]);
    }
    let order_data = rows.finish();
    let started = Instant::now();
    let copied = bench::copy_in(
        &mut pg,
        "clicks_raw (day, id, tenant, link_id, campaign_id, influencer_id, click_time, country, device, referrer, bot, ip_hash)",
        &click_data,
    )
    .await;
    assert_eq!(copied as usize, n_clicks);
    let copy_click_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let copied = bench::copy_in(
        &mut pg,
        "conversions_raw (day, id, tenant, order_id, source, shop_domain, campaign_id, influencer_id, segment, method, \
         reason, promo_code_id, click_id, link_id, currency, revenue_minor, order_time, record_time, country)",
        &order_data,
    )
    .await;
    assert_eq!(copied as usize, n_orders);
    let copy_order_secs = started.elapsed().as_secs_f64();
    let load_after = bench::load();

    let rate = |n: usize, s: f64| n as f64 / s;
    println!("load average (1 min) before {load_before}, after {load_after}");
    println!(
        "clicks:      ingest {click_secs:>6.2} s {:>9.0}/s   COPY {copy_click_secs:>6.2} s {:>9.0}/s   ratio {:.2}",
        rate(n_clicks, click_secs),
        rate(n_clicks, copy_click_secs),
        copy_click_secs / click_secs
    );
    println!(
        "conversions: ingest {order_secs:>6.2} s {:>9.0}/s   COPY {copy_order_secs:>6.2} s {:>9.0}/s   ratio {:.2}",
        rate(n_orders, order_secs),
        rate(n_orders, copy_order_secs),
        copy_order_secs / order_secs
    );
    let (all, ingest, copy) = (
        n_clicks + n_orders,
        click_secs + order_secs,
        copy_click_secs + copy_order_secs,
    );
    println!(
        "both:        ingest {ingest:>6.2} s {:>9.0}/s   COPY {copy:>6.2} s {:>9.0}/s   ratio {:.2}",
        rate(all, ingest),
        rate(all, copy),
        copy / ingest
    );
    pg.close().await.unwrap();
    db.close().await;
}
