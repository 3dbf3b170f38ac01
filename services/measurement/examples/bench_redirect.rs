//! The redirect's speed (issue 14: at least 0.5x a static-response HTTP server's maximum
//! throughput in the same run, and at half that maximum, open loop, a p99 of at most 5 ms).
//! Serves measurement's HTTP listener (`http::router`: the link looked up, the IP hashed, the
//! click queued and written by the flusher every second to a fresh PostgreSQL database) and,
//! beside it on the same runtime, a static server answering every request with the same kind
//! of 302 and no work. Each is driven closed loop by C keep-alive connections for S seconds
//! (its maximum), then the redirect open loop at half its maximum for S seconds: requests
//! leave on schedule whatever the answers do, and latency counts from the scheduled time.
//!
//! `cargo run --release -p chorus-measurement --example bench_redirect -- [connections] [seconds]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/bench.rs"]
#[allow(dead_code)] // not its COPY
mod bench;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chorus_kit::idempotency::Claim;
use chorus_measurement::clicks::Clicks;
use chorus_measurement::conversions::Ingest;
use chorus_measurement::domain::destination::Utm;
use chorus_measurement::http::{self, Options, Proxies};
use chorus_measurement::store::{NewLink, default_utm};
use tokio_util::sync::CancellationToken;

const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The static server: the same 302 for every request, nothing looked up, nothing stored.
async fn fixed() -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [
            (
                header::LOCATION,
                "https://shop.example.com/spring?utm_source=chorus&utm_medium=influencer",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1_000)
        .build()
        .unwrap()
}

/// Requests per second `connections` closed loops reach in `secs` (after one second's warm-up).
async fn max_rate(url: &str, connections: usize, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, stop, counting, done) = (url.to_owned(), stop.clone(), counting.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                let r = c.get(&url).header("user-agent", UA).send().await.unwrap();
                assert_eq!(r.status(), 302);
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    counting.store(false, Ordering::Relaxed);
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    rate
}

/// Latencies (from each request's scheduled time) of `rate` requests per second for `secs`.
async fn open_loop(url: &str, rate: f64, secs: u64) -> Vec<Duration> {
    let c = client();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let n = (rate * secs as f64) as u64;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let (c, url) = (c.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = c.get(&url).header("user-agent", UA).send().await.unwrap();
            assert_eq!(r.status(), 302);
            at.elapsed()
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1_000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    // The servers on a runtime of their own, the load on another: two cores each may use.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let load = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let (redirect_addr, static_addr) = (free_addr(), free_addr());
    let (db, code) = servers.block_on(async {
        let (_, db, store, clock) = bench::fresh_store().await;
        let today = clock.now_micros() / 86_400_000_000;
        store.ip_key(today).await.unwrap();
        let (campaign, influencer) = (
            "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70",
            "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01",
        );
        let link = store
            .create_link(
                "bench",
                &NewLink {
                    campaign_id: campaign.into(),
                    influencer_id: influencer.into(),
                    deliverable: String::new(),
                    segment: "austin".into(),
                    destination_url: "https://shop.example.com/spring?color=red".into(),
                    utm: default_utm(campaign, influencer, &Utm::default()),
                },
                &Claim::none(),
            )
            .await
            .unwrap();
        let clicks = Clicks::new(store.clone());
        let flusher = clicks.clone();
        tokio::spawn(flusher.run(Duration::from_secs(1), stop.clone()));
        let app = http::router(
            Ingest {
                store,
                clicks: clicks.clone(),
            },
            clicks,
            Options {
                shops: Default::default(),
                proxies: Proxies::default(),
                country_header: "cf-ipcountry".into(),
                reports: None,
            },
        );
        tokio::spawn(http::serve(redirect_addr, app, stop.clone()));
        let fixed_app = Router::new().route("/l/{code}", get(fixed));
        tokio::spawn(http::serve(static_addr, fixed_app, stop.clone()));
        (db, link.code)
    });
    std::thread::sleep(Duration::from_millis(300));
    let redirect_url = format!("http://{redirect_addr}/l/{code}");
    let static_url = format!("http://{static_addr}/l/{code}");
    load.block_on(async {
        let load_before = bench::load();
        let fixed_rate = max_rate(&static_url, connections, secs).await;
        let redirect_rate = max_rate(&redirect_url, connections, secs).await;
        println!("load average (1 min) at start {load_before}, now {}", bench::load());
        println!("static server: {fixed_rate:>8.0} requests/s (closed loop, {connections} connections, {secs} s)");
        println!(
            "redirect:      {redirect_rate:>8.0} requests/s   ratio {:.2}",
            redirect_rate / fixed_rate
        );
        let half = redirect_rate / 2.0;
        let lat = open_loop(&redirect_url, half, secs).await;
        println!(
            "redirect open loop at {half:.0}/s for {secs} s ({} requests): p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (load {})",
            lat.len(),
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            pct(&lat, 0.999),
            pct(&lat, 1.0),
            bench::load()
        );
    });
    stop.cancel();
    servers.block_on(async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let stored: i64 = sqlx::query_scalar("SELECT CAST(SUM(clicks) AS BIGINT) FROM links")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        println!("clicks stored: {stored}");
        db.close().await;
    });
}
