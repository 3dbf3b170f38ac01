//! The contracts benchmark (docs/performance.md): on PostgreSQL, the service started by the
//! kit's runtime on a loopback port in this process (the client shares the machine),
//!
//! 1. CreateOffers for 10,000 influencers in one call (target ≤ 5 s),
//! 2. the 10,000 influencers accept (16 at a time), not timed against a target,
//! 3. both parties sign each of the 10,000 contracts, which activates and seals them
//!    (16 at a time; target ≤ 10 s for the 20,000 signatures).
//!
//! AcceptOffer and SignContract go through the service's group-commit queues; it prints how
//! many calls shared a transaction on average, and the load average before and after.
//!
//! ```sh
//! cargo run --release -p chorus-contracts --example bench_contracts -- 10000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use chorus_kit::auth::{Grant, SigningKey, role};
use chorus_kit::batch::{BATCHES_METRIC, ITEMS_METRIC};
use chorus_kit::clock::Clock;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::*;
use chorus_proto::types::{DeliverableKind, Money, Platform};
use chorus_testkit::metrics::Metrics;
use chorus_testkit::{Backend, Stack};
use futures::StreamExt;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const CONCURRENCY: usize = 16;

fn terms() -> Terms {
    let usd = |m| {
        Some(Money {
            currency_code: "USD".into(),
            amount_minor: m,
        })
    };
    Terms {
        deliverables: vec![DeliverableTerm {
            kind: DeliverableKind::FeedPost as i32,
            platform: Platform::Instagram as i32,
            count: 1,
            due_time: Some(chorus_kit::clock::timestamp(
                Clock::system().now_micros() + 30 * 86_400_000_000,
            )),
            brief: String::new(),
        }],
        compensation: Some(Compensation {
            cash: usd(15_000),
            gift_cards: vec![],
            products: vec![Product {
                sku: "SKU-1".into(),
                title: "Sample".into(),
                declared_value: usd(3_000),
                quantity: 1,
            }],
        }),
        disclosure_jurisdiction: "US".into(),
        ..Default::default()
    }
}

/// A request as `token`'s holder sends it.
fn as_caller<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Calls per transaction of the queue `queue` so far.
fn per_batch(metrics: &Metrics, queue: &str) -> f64 {
    let labels: &[(&str, &str)] = &[("queue", queue)];
    metrics.counter(ITEMS_METRIC, labels) as f64 / metrics.counter(BATCHES_METRIC, labels).max(1) as f64
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map_or(10_000, |s| s.parse().unwrap());
    println!("load average at the start: {}", load_average());
    let metrics = Metrics::install();
    let mut stack = Stack::new(Backend::Postgres);
    let db = stack.database().await;
    let service = stack
        .launch(
            &chorus_contracts::SERVICE,
            &db,
            &[
                ("CHORUS_SEALING_KEY", SigningKey::generate().unwrap().to_pem()),
                ("CHORUS_DB_MAX_CONNECTIONS", "16".to_owned()),
            ],
        )
        .await;
    let brand_token = stack.token("bench", &["contracts.read", "contracts.write"]);
    // One connection for every caller, as a gateway would hold; each call carries its own
    // caller's token.
    let channel = chorus_testkit::channel(service.addr).await;
    let mut brand = ContractsServiceClient::new(channel.clone());
    brand
        .set_offer_template(as_caller(
            &brand_token,
            SetOfferTemplateRequest {
                template: Some(OfferTemplate {
                    campaign: CAMPAIGN.into(),
                    terms: Some(terms()),
                    offer_valid_days: 14,
                    brand_names: vec![],
                    brand_display_name: "Bench".into(),
                    update_time: None,
                }),
            },
        ))
        .await
        .unwrap();
    let people: Vec<String> = (0..n)
        .map(|_| format!("influencers/{}", uuid::Uuid::now_v7()))
        .collect();
    let targets = people
        .iter()
        .map(|p| OfferTarget {
            influencer: p.clone(),
            segment: String::new(),
        })
        .collect();

    let t = Instant::now();
    let made = brand
        .create_offers(as_caller(
            &brand_token,
            CreateOffersRequest {
                campaign: CAMPAIGN.into(),
                shortlist: String::new(),
                targets,
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let create = t.elapsed();
    assert_eq!(made.offers.len(), n);
    println!("CreateOffers for {n}: {:.2} s", create.as_secs_f64());

    let token_of = |p: &str| {
        stack.mint(&Grant {
            subject: p.to_owned(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["contracts.respond".into()],
        })
    };
    let jobs: Vec<(String, String)> = made
        .offers
        .iter()
        .cloned()
        .zip(people.iter().map(|p| token_of(p)))
        .collect();
    let t = Instant::now();
    let contracts: Vec<(Contract, String)> = futures::stream::iter(jobs)
        .map(|(offer, token)| {
            let mut c = ContractsServiceClient::new(channel.clone());
            let request = as_caller(
                &token,
                AcceptOfferRequest {
                    name: offer,
                    version: 1,
                },
            );
            async move {
                let r = c.accept_offer(request).await.unwrap().into_inner();
                (r.contract.unwrap(), token)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    println!(
        "AcceptOffer x {n} (makes each contract): {:.2} s ({:.1} calls per transaction)",
        t.elapsed().as_secs_f64(),
        per_batch(&metrics, "contracts.acceptances")
    );

    let t = Instant::now();
    let active = futures::stream::iter(contracts)
        .map(|(contract, token)| {
            let mut c = ContractsServiceClient::new(channel.clone());
            let sign = SignContractRequest {
                name: contract.name.clone(),
                terms_version: contract.terms_version,
                terms_sha256: contract.terms_sha256.clone(),
                ip_address: "203.0.113.7".into(),
                user_agent: "bench".into(),
            };
            let (by_influencer, by_brand) = (as_caller(&token, sign.clone()), as_caller(&brand_token, sign));
            async move {
                c.sign_contract(by_influencer).await.unwrap();
                let c = c.sign_contract(by_brand).await.unwrap().into_inner().contract.unwrap();
                c.state == ContractState::Active as i32
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|a| std::future::ready(*a))
        .count()
        .await;
    let sign = t.elapsed();
    assert_eq!(active, n);
    println!(
        "SignContract x {} (both parties; activates, seals, makes deliverables and timers): {:.2} s ({:.0} signatures/s, {:.1} calls per transaction)",
        2 * n,
        sign.as_secs_f64(),
        (2 * n) as f64 / sign.as_secs_f64(),
        per_batch(&metrics, "contracts.signatures")
    );
    println!("load average at the end: {}", load_average());
    service.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
}
