//! Timing of the service's side of a payout run, on PostgreSQL: N contracts held and released
//! through contracts' events, then one RunPayouts paying all N through PayPal (one batch at the
//! simulator, so the provider's share is small) and the ledger, rows and events recorded.
//! Prints each phase; the target is the ledger side of 10,000 payees in 10 s.
//!
//! `cargo run --release -p chorus-payouts --example bench_run -- [payees, default 10000]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_proto::contracts::{Compensation, Contract, ContractActivated, DeliverableApproved, DeliverableTerm, Terms};
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use chorus_providersim::{SimConfig, Simulator};
use chorus_testkit::{Backend, Stack};

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

/// A UUID-shaped id numbered `n` in its last group.
fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}/0190a5b2-7c3d-7e4f-8a1b-{n:012x}")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("payees is a number"))
        .unwrap_or(10_000);
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut stack = Stack::with_clock(Backend::Postgres, Clock::system());
    let db = stack.database().await;
    let payouts = stack
        .launch(
            &chorus_payouts::SERVICE,
            &db,
            &[
                (
                    "CHORUS_PII_KEYS",
                    "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
                ),
                ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
                ("CHORUS_PAYOUT_INTERVAL_MS", "3600000".to_owned()),
                ("CHORUS_PAYPAL_RATE", "1000".to_owned()),
            ],
        )
        .await;
    let brand = stack.token("acme", &["payouts.read", "payouts.write"]);
    let channel = chorus_testkit::authed(payouts.addr, Some(brand)).await;
    let mut ledger = LedgerServiceClient::new(channel.clone());
    let mut client = PayoutsServiceClient::new(channel);

    let t = Instant::now();
    for i in 0..n {
        let who = id("influencers", i);
        let token = stack.mint(&Grant {
            subject: who.clone(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["payouts.self".into()],
        });
        let mut me = PayoutsServiceClient::new(chorus_testkit::authed(payouts.addr, Some(token)).await);
        me.update_payee(UpdatePayeeRequest {
            payee: Some(Payee {
                name: who.replace("influencers/", "payees/"),
                legal_name: format!("Payee {i}"),
                email: format!("p{i}@example.com"),
                cash_method: Method::Paypal as i32,
                paypal_email: format!("p{i}@example.com"),
                tax_form: TaxForm::W8ben as i32,
                tax_form_signed_on: "2026-11-01".into(),
                tax_country: "DE".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    }
    println!(
        "{n} payee profiles: {:.1} s (not part of the target)",
        t.elapsed().as_secs_f64()
    );
    ledger
        .fund_campaign(FundCampaignRequest {
            campaign: CAMPAIGN.into(),
            deposit_id: "dep-1".into(),
            amount: usd(10_000 * n as i64),
            source: Some(fund_campaign_request::Source::BankTransfer("WIRE".into())),
        })
        .await
        .unwrap();

    let bus = stack.shared_bus();
    let clock = Clock::system();
    let t = Instant::now();
    for i in 0..n {
        let contract = Contract {
            name: id("contracts", i),
            campaign: CAMPAIGN.into(),
            influencer: id("influencers", i),
            terms: Some(Terms {
                deliverables: vec![DeliverableTerm {
                    count: 1,
                    ..Default::default()
                }],
                compensation: Some(Compensation {
                    cash: usd(5_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let activated = ContractActivated {
            contract: Some(contract),
            total_value: usd(5_000),
        };
        bus.publish("chorus.contracts", &envelope(&clock, "acme", &activated))
            .await
            .unwrap();
        let approved = DeliverableApproved {
            deliverable: format!("{}/deliverables/1", id("contracts", i)),
            contract: id("contracts", i),
            campaign: CAMPAIGN.into(),
            influencer: id("influencers", i),
            index: 1,
            total: 1,
            cash_release: usd(5_000),
            r#final: true,
            ..Default::default()
        };
        bus.publish("chorus.contracts", &envelope(&clock, "acme", &approved))
            .await
            .unwrap();
    }
    loop {
        let b = ledger
            .get_campaign_budget(GetCampaignBudgetRequest {
                campaign: CAMPAIGN.into(),
                currency_code: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        if b.released.as_ref().map_or(0, |m| m.amount_minor) == 5_000 * n as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{n} contracts held and released from their events: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let r = client
        .run_payouts(RunPayoutsRequest {
            campaign: CAMPAIGN.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let run = t.elapsed();
    println!(
        "RunPayouts: {} submitted, {} paid, {} pending, {} failed, {} blocked in {:.1} s",
        r.submitted,
        r.paid,
        r.pending,
        r.failed,
        r.blocked,
        run.as_secs_f64()
    );
    assert_eq!(r.paid as usize, n, "every payout is paid in the one run");
    assert_eq!(sim.payout_items().len(), n, "once each");
    payouts.stop();
}
