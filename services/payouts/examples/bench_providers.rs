//! Timing of a payout run against the provider simulator: N payees through Stripe at a
//! simulated 100 requests/s (the client paces itself at the same rate), then the same N through
//! PayPal in one batch. Prints the time taken against the least the rate limit allows.
//!
//! `cargo run -p chorus-payouts --example bench_providers -- [payees, default 10000]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use chorus_kit::config::Secret;
use chorus_payouts::providers::paypal::{PayPal, PayPalConfig};
use chorus_payouts::providers::stripe::{Stripe, StripeConfig};
use chorus_payouts::providers::{Destination, HttpSettings, Outcome, PayoutOrder, Provider};
use chorus_providersim::{Endpoint, Provider as Sim, SimConfig, Simulator};

const RATE: u32 = 100;

#[tokio::main]
async fn main() {
    let payees: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("payees is a number"))
        .unwrap_or(10_000);
    let mut config = SimConfig::default();
    config.rate_limits.insert(Sim::Stripe, RATE);
    let sim = Simulator::start(config).await.expect("start the simulator");
    let http = HttpSettings {
        rate_per_second: Some(RATE),
        concurrency: 8,
        ..HttpSettings::default()
    };
    let now = now_micros();

    let stripe = Stripe::new(StripeConfig {
        base_url: sim.stripe_url(),
        api_key: Secret::new(sim.config().stripe_key.clone()),
        http: http.clone(),
    })
    .unwrap();
    let orders: Vec<PayoutOrder> = (0..payees)
        .map(|n| order(Destination::StripeAccount(format!("acct_bench{n}")), now))
        .collect();
    let started = Instant::now();
    let paid = stripe
        .submit(&orders, now)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Outcome::Paid { .. })))
        .count();
    let took = started.elapsed();
    let least = Duration::from_secs_f64(payees as f64 / f64::from(RATE));
    println!(
        "stripe: {paid}/{payees} paid in {:.2} s; the rate limit allows {:.2} s at best; ratio {:.3}; {} POSTs ({} met a 429)",
        took.as_secs_f64(),
        least.as_secs_f64(),
        took.as_secs_f64() / least.as_secs_f64().max(f64::EPSILON),
        sim.requests(Endpoint::StripeCreateTransfer),
        sim.requests(Endpoint::StripeCreateTransfer) - payees,
    );

    let paypal = PayPal::new(PayPalConfig {
        base_url: sim.paypal_url(),
        client_id: sim.config().paypal_client_id.clone(),
        client_secret: Secret::new(sim.config().paypal_secret.clone()),
        http,
    })
    .unwrap();
    let orders: Vec<PayoutOrder> = (0..payees.min(15_000))
        .map(|n| {
            order(
                Destination::PayPal {
                    email: format!("payee{n}@example.com"),
                },
                now,
            )
        })
        .collect();
    let started = Instant::now();
    let paid = paypal
        .submit(&orders, now)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Outcome::Paid { .. })))
        .count();
    println!(
        "paypal: {paid}/{} paid in {:.2} s in {} batch(es), {} reads of the batch",
        orders.len(),
        started.elapsed().as_secs_f64(),
        sim.paypal_batches().len(),
        sim.requests(Endpoint::PayPalGetBatch),
    );
    sim.shutdown().await;
}

fn order(destination: Destination, now: i64) -> PayoutOrder {
    PayoutOrder {
        payout_id: uuid::Uuid::now_v7().to_string(),
        tenant: "bench".into(),
        amount_minor: 1_000,
        currency: "USD".into(),
        destination,
        description: "bench payout".into(),
        first_attempt_at: now,
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
