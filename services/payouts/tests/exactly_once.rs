//! Exactly once, in process, on PostgreSQL and SQLite: a provider that times out and then
//! succeeds, two payout runs at the same time, and a replayed approval each pay the payee
//! once, and leave the ledger balanced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_kit::runtime::Launched;
use chorus_kit::storage::Database;
use chorus_proto::contracts::{Compensation, Contract, ContractActivated, DeliverableApproved, DeliverableTerm, Terms};
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use chorus_providersim::{Endpoint, Fault, SimConfig, Simulator};
use chorus_testkit::{Backend, Stack, eventually};
use sqlx::Row;

const CASH: i64 = 2_500;
const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const PAID: i32 = PayoutState::Paid as i32;

struct App {
    stack: Stack,
    payouts: Launched,
    sim: Simulator,
    db: Database,
    brand: String,
}

/// The service with a fast runner and a short lease (a provider timeout of 300 ms for both).
async fn fast(backend: Backend) -> App {
    spawn(backend, "100", "500", "4").await
}

/// The service with an idle runner (one run an hour): runs happen when a test asks. The lease
/// is long, so that a run slower than it on a busy machine is not taken for a dead one.
async fn idle(backend: Backend) -> App {
    spawn(backend, "3600000", "10000", "4").await
}

/// An idle runner, a short lease, and one try per provider call: a call that fails is left
/// to the next run, which the test starts.
async fn stepwise(backend: Backend) -> App {
    spawn(backend, "3600000", "500", "1").await
}

async fn spawn(backend: Backend, interval_ms: &str, lease_ms: &str, attempts: &str) -> App {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut stack = Stack::new(backend);
    let url = stack.database().await;
    let settings = vec![
        (
            "CHORUS_PII_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
        ("CHORUS_PAYOUT_INTERVAL_MS", interval_ms.to_owned()),
        ("CHORUS_PAYOUT_LEASE_MS", lease_ms.to_owned()),
        ("CHORUS_PROVIDER_TIMEOUT_MS", "300".to_owned()),
        ("CHORUS_PROVIDER_MAX_ATTEMPTS", attempts.to_owned()),
    ];
    let payouts = stack.launch(&chorus_payouts::SERVICE, &url, &settings).await;
    let db = Database::connect(
        &url,
        &[&chorus_kit::storage::KIT_MIGRATIONS, &chorus_payouts::MIGRATIONS],
        2,
    )
    .await
    .unwrap();
    let brand = stack.token("acme", &["payouts.read", "payouts.write"]);
    let app = App {
        stack,
        payouts,
        sim,
        db,
        brand,
    };
    app.fund(CASH * 20).await;
    app
}

fn influencer(i: usize) -> String {
    format!("influencers/0190a5b2-7c3d-7e4f-8a1b-{:012x}", 0xa000 + i)
}

fn contract_name(i: usize) -> String {
    format!("contracts/0190a5b2-7c3d-7e4f-8a1b-{:012x}", 0xb000 + i)
}

fn account(i: usize) -> String {
    format!("acct_once{i:02}")
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn approval(i: usize) -> DeliverableApproved {
    DeliverableApproved {
        deliverable: format!("{}/deliverables/1", contract_name(i)),
        contract: contract_name(i),
        campaign: CAMPAIGN.into(),
        influencer: influencer(i),
        index: 1,
        total: 1,
        cash_release: usd(CASH),
        r#final: true,
        ..Default::default()
    }
}

impl App {
    async fn fund(&self, minor: i64) {
        let channel = chorus_testkit::authed(self.payouts.addr, Some(self.brand.clone())).await;
        LedgerServiceClient::new(channel)
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: "dep-1".into(),
                amount: usd(minor),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
            })
            .await
            .unwrap();
    }

    /// Payee `i` onboards (Stripe, a W-9), their contract is activated and its one
    /// deliverable approved: one cash payout of CASH.
    async fn approve(&self, i: usize) {
        self.onboard(i).await;
        let activated = ContractActivated {
            contract: Some(Contract {
                name: contract_name(i),
                campaign: CAMPAIGN.into(),
                influencer: influencer(i),
                terms: Some(Terms {
                    deliverables: vec![DeliverableTerm {
                        count: 1,
                        ..Default::default()
                    }],
                    compensation: Some(Compensation {
                        cash: usd(CASH),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            total_value: usd(CASH),
        };
        self.publish(&activated).await;
        self.publish(&approval(i)).await;
    }

    async fn onboard(&self, i: usize) {
        self.onboard_to(i, &account(i)).await;
    }

    async fn onboard_to(&self, i: usize, stripe_account: &str) {
        let who = influencer(i);
        let token = self.stack.mint(&Grant {
            subject: who.clone(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["payouts.self".into()],
        });
        let payee = Payee {
            name: format!("payees/{}", who.trim_start_matches("influencers/")),
            legal_name: format!("Payee {i}"),
            email: format!("payee{i}@example.com"),
            cash_method: Method::Stripe as i32,
            stripe_account: stripe_account.to_owned(),
            tax_form: TaxForm::W9 as i32,
            tax_form_signed_on: "2026-01-05".into(),
            tax_id: format!("123-45-{:04}", 6700 + i),
            tax_country: "US".into(),
            ..Default::default()
        };
        PayoutsServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(token)).await)
            .update_payee(UpdatePayeeRequest { payee: Some(payee) })
            .await
            .unwrap();
    }

    async fn publish<M: prost::Name>(&self, m: &M) {
        let e = envelope(&Clock::system(), "acme", m);
        self.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
    }

    async fn run(&self) -> RunPayoutsResponse {
        let channel = chorus_testkit::authed(self.payouts.addr, Some(self.brand.clone())).await;
        PayoutsServiceClient::new(channel)
            .run_payouts(RunPayoutsRequest {
                campaign: CAMPAIGN.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn count(&self, state: i32) -> usize {
        let row = sqlx::query("SELECT COUNT(*) FROM payouts WHERE state = $1")
            .bind(state)
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        usize::try_from(row.get::<i64, _>(0)).unwrap()
    }

    async fn wait_for(&self, state: i32, n: usize) {
        eventually(Duration::from_secs(20), || async {
            let got = self.count(state).await;
            (got == n).then_some(()).ok_or(format!("{got} of {n} in state {state}"))
        })
        .await;
    }

    /// Each of the `n` payees was paid once, by one Stripe transfer and one `paid.` ledger
    /// transfer; the books balance and every payable is back to zero.
    async fn paid_once(&self, n: usize) {
        assert_eq!(self.count(PAID).await, n);
        for i in 0..n {
            assert_eq!(self.sim.movements(&account(i)), 1, "payee {i} is paid exactly once");
        }
        assert_eq!(self.sim.transfers().len(), n);
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(debits_pending), 0) AS BIGINT), CAST(COALESCE(SUM(credits_pending), 0) AS BIGINT), \
             CAST(COALESCE(SUM(debits_posted), 0) AS BIGINT), CAST(COALESCE(SUM(credits_posted), 0) AS BIGINT) \
             FROM ledger_accounts",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        let sums: Vec<i64> = (0..4).map(|c| row.get::<i64, _>(c)).collect();
        assert_eq!(
            (sums[0], sums[2]),
            (sums[1], sums[3]),
            "debits == credits, pending and posted"
        );
        let payables = sqlx::query(
            "SELECT debits_pending, credits_pending, debits_posted, credits_posted FROM ledger_accounts \
             WHERE id LIKE 'payable.%'",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap();
        assert_eq!(payables.len(), n);
        for p in &payables {
            let b: Vec<i64> = (0..4).map(|c| p.get::<i64, _>(c)).collect();
            assert_eq!(b, [0, 0, CASH, CASH], "released and paid out once");
        }
        let paid = sqlx::query("SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE 'paid.%'")
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        assert_eq!(paid.get::<i64, _>(0), n as i64);
    }
}

chorus_testkit::on_both_backends! { fast;
    a_provider_that_times_out_then_succeeds_pays_once => |app: App| async move {
        // The transfer is made at once but answered after 1 s, past the 300 ms timeout: the
        // client tries again under the same key (Stripe: "in progress", then the replay).
        app.sim.fault(Endpoint::StripeCreateTransfer, Fault::Slow(Duration::from_secs(1)), 1);
        app.approve(0).await;
        app.wait_for(PAID, 1).await;
        assert!(app.sim.requests(Endpoint::StripeCreateTransfer) >= 2, "the timed-out call was sent again");
        app.paid_once(1).await;
    };

    a_replayed_approval_pays_once => |app: App| async move {
        app.approve(0).await;
        app.publish(&approval(0)).await;
        app.wait_for(PAID, 1).await;
        // Replayed once more after the payment, and a run asked for on top of the runner's.
        app.publish(&approval(0)).await;
        app.run().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let releases = sqlx::query("SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE 'release.%'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        assert_eq!(releases.get::<i64, _>(0), 1, "one release for the deliverable");
        let all = sqlx::query("SELECT COUNT(*) FROM payouts").fetch_one(&app.db.pool).await.unwrap();
        assert_eq!(all.get::<i64, _>(0), 1);
        app.paid_once(1).await;
    };
}

mod concurrent {
    use super::*;

    chorus_testkit::on_both_backends! { idle;
        two_payout_runs_at_once_pay_once => |app: App| async move {
            const N: usize = 10;
            for i in 0..N {
                app.approve(i).await;
            }
            app.wait_for(PayoutState::Approved as i32, N).await;
            let (a, b) = tokio::join!(app.run(), app.run());
            assert_eq!(a.submitted + b.submitted, N as i32, "each payout is taken by one run: {a:?} {b:?}");
            // Whatever a run left pending is finished by later ones.
            eventually(Duration::from_secs(20), || async {
                app.run().await;
                let paid = app.count(PAID).await;
                (paid == N).then_some(()).ok_or(format!("{paid} paid"))
            })
            .await;
            app.paid_once(N).await;
        };
    }
}

mod stepwise {
    use super::*;

    chorus_testkit::on_both_backends! { stepwise;
        a_payee_who_moves_account_mid_flight_is_paid_once => |app: App| async move {
            // The transfer to the first account is made, and the answer lost.
            app.sim.fault(Endpoint::StripeCreateTransfer, Fault::DropAfter, 1);
            app.approve(0).await;
            app.wait_for(PayoutState::Approved as i32, 1).await;
            app.run().await;
            assert_eq!(app.sim.movements(&account(0)), 1);
            assert_eq!(app.count(PayoutState::Submitted as i32).await, 1, "nothing known yet");
            // The payee moves to another account before the payout is sent again: Stripe
            // refuses the same key with other parameters; the payout was paid all the same.
            app.onboard_to(0, "acct_moved00").await;
            tokio::time::sleep(Duration::from_millis(600)).await;
            app.run().await;
            let p = app.count(PAID).await;
            assert_eq!(p, 1, "paid by the first transfer, not failed");
            assert_eq!(app.sim.movements("acct_moved00"), 0);
            app.paid_once(1).await;
        };
    }
}
