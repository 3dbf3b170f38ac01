//! Erasure over the bus and gRPC, on PostgreSQL and SQLite, with a real Redis between the
//! services: a paid payee is deleted by the registry (`InfluencerDeleted`); afterwards GetPayee
//! shows no personal data, the statement shows the pseudonym and the same amounts, what is
//! still owed is held as "payee erased" and never sent, the 1099 report of a retained year
//! still prints the filed identity until retention ends, the raw rows hold no plaintext of the
//! old details, the ledger balances, and a replayed deletion changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_kit::events::redis::RedisBus;
use chorus_kit::runtime::Launched;
use chorus_kit::storage::Database;
use chorus_proto::contracts::{Compensation, Contract, ContractActivated, DeliverableApproved, DeliverableTerm, Terms};
use chorus_proto::event::Envelope;
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::registry::InfluencerDeleted;
use chorus_proto::types::Money;
use chorus_providersim::{SimConfig, Simulator};
use chorus_testkit::fault::PrivateRedis;
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use sqlx::Row;
use tonic::Code;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const ANA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const ANA_ID: &str = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const C1: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b01";
/// 2027-01-15T08:00:00Z: payments made now fall in tax year 2027 (threshold $2,000).
const START: i64 = 1_800_000_000_000_000;
/// What Ana gave and must not be found anywhere after erasure (the name stays only sealed).
const PLAINTEXT: [&str; 6] = [
    "Ana Lima",
    "ana@example.com",
    "ana.paypal",
    "1 Main St",
    "78701",
    "123-45-6789",
];

struct App {
    stack: Stack,
    payouts: Launched,
    sim: Simulator,
    brand: String,
    db: Database,
    _redis: PrivateRedis,
}

async fn spawn(backend: Backend) -> App {
    let redis = PrivateRedis::new().await;
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    stack.use_bus(Arc::new(RedisBus::connect(&redis.url()).await.unwrap()));
    let url = stack.database().await;
    let settings = vec![
        (
            "CHORUS_PII_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
        // Runs happen when the test asks, so each step is seen as it is.
        ("CHORUS_PAYOUT_INTERVAL_MS", "3600000".to_owned()),
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
    App {
        stack,
        payouts,
        sim,
        brand,
        db,
        _redis: redis,
    }
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn contract() -> Contract {
    Contract {
        name: C1.into(),
        campaign: CAMPAIGN.into(),
        influencer: ANA.into(),
        terms: Some(Terms {
            deliverables: vec![DeliverableTerm {
                count: 2,
                ..Default::default()
            }],
            compensation: Some(Compensation {
                cash: usd(400_000),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn approved(index: i32) -> DeliverableApproved {
    DeliverableApproved {
        deliverable: format!("{C1}/deliverables/{index}"),
        contract: C1.into(),
        campaign: CAMPAIGN.into(),
        influencer: ANA.into(),
        index,
        total: 2,
        cash_release: usd(200_000),
        r#final: index == 2,
        ..Default::default()
    }
}

fn deleted() -> Envelope {
    // The registry's own shape: no tenant, the influencer's resource name.
    envelope(&Clock::manual(START), "", &InfluencerDeleted { influencer: ANA.into() })
}

impl App {
    async fn payouts(&self, token: &str) -> PayoutsServiceClient<Authed> {
        PayoutsServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(token.to_owned())).await)
    }

    async fn ledger(&self) -> LedgerServiceClient<Authed> {
        LedgerServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(self.brand.clone())).await)
    }

    fn ana(&self) -> String {
        self.stack.mint(&Grant {
            subject: ANA.into(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["payouts.self".into()],
        })
    }

    async fn publish_contract<M: prost::Name>(&self, m: &M) {
        let e = envelope(&Clock::manual(START), "acme", m);
        self.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
    }

    async fn publish_registry(&self, e: &Envelope) {
        self.stack.shared_bus().publish("chorus.registry", e).await.unwrap();
    }

    async fn of_contract(&self) -> Vec<Payout> {
        let mut p = self
            .payouts(&self.brand)
            .await
            .list_payouts(ListPayoutsRequest {
                contract: C1.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .payouts;
        p.sort_by(|a, b| a.deliverable.cmp(&b.deliverable));
        p
    }

    async fn wait_states(&self, want: [PayoutState; 2]) -> Vec<Payout> {
        eventually(Duration::from_secs(15), || async {
            let p = self.of_contract().await;
            let states: Vec<i32> = p.iter().map(|p| p.state).collect();
            (states == want.map(|s| s as i32))
                .then_some(p)
                .ok_or(format!("{states:?}"))
        })
        .await
    }

    async fn run(&self) -> RunPayoutsResponse {
        self.payouts(&self.brand)
            .await
            .run_payouts(RunPayoutsRequest {
                campaign: CAMPAIGN.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn statement(&self) -> Statement {
        self.payouts(&self.ana())
            .await
            .get_statement(GetStatementRequest {
                influencer: ANA.into(),
                year: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .statement
            .unwrap()
    }

    async fn reconcile(&self) -> ReconcileResponse {
        self.payouts(&self.brand)
            .await
            .reconcile(ReconcileRequest {
                campaign: CAMPAIGN.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn payee(&self) -> Payee {
        self.payouts(&self.ana())
            .await
            .get_payee(GetPayeeRequest {
                name: format!("payees/{ANA_ID}"),
            })
            .await
            .unwrap()
            .into_inner()
            .payee
            .unwrap()
    }

    async fn tax_csv(&self, year: i32) -> String {
        let r = self
            .payouts(&self.brand)
            .await
            .get_tax_report(GetTaxReportRequest { year, unmasked: false })
            .await
            .unwrap()
            .into_inner();
        String::from_utf8(r.csv).unwrap()
    }

    /// Every text and binary column of the payee tables and the payouts, as text.
    async fn raw_rows(&self) -> String {
        let mut out = String::new();
        for (table, columns) in [
            ("payees", "influencer_id, profile, sealed"),
            (
                "erased_payees",
                "influencer_id, pseudonym, profile, retained, retained_years, retain_until",
            ),
            ("payouts", "id, reason, body, provider_reference"),
        ] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {columns} FROM {table}")))
                .fetch_all(&self.db.pool)
                .await
                .unwrap();
            for r in &rows {
                for i in 0..r.len() {
                    match r.try_get::<String, _>(i) {
                        Ok(s) => out.push_str(&s),
                        Err(_) => out.push_str(&String::from_utf8_lossy(&r.try_get::<Vec<u8>, _>(i).unwrap())),
                    }
                    out.push('|');
                }
                out.push('\n');
            }
        }
        out
    }

    async fn erased_row(&self) -> (String, String, String, String) {
        let r = sqlx::query(
            "SELECT pseudonym, retained, retained_years, retain_until FROM erased_payees WHERE influencer_id = $1",
        )
        .bind(ANA_ID)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    }

    /// The tenant's ledger sums to zero over every account, posted and pending.
    async fn assert_balanced(&self) {
        let page = self
            .ledger()
            .await
            .list_accounts(ListAccountsRequest {
                owner: String::new(),
                page_size: 1000,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.next_page_token.is_empty());
        let sum = |f: fn(&Balance) -> i64| {
            page.accounts
                .iter()
                .map(|a| f(a.balance.as_ref().unwrap()))
                .sum::<i64>()
        };
        assert!(sum(|b| b.credits_posted) > 0, "money moved");
        assert_eq!(sum(|b| b.debits_posted), sum(|b| b.credits_posted));
        assert_eq!(sum(|b| b.debits_pending), sum(|b| b.credits_pending));
    }

    async fn payable(&self) -> Balance {
        self.ledger()
            .await
            .get_account_balance(GetAccountBalanceRequest {
                account: format!("ledgerAccounts/payable.{ANA_ID}.USD"),
                as_of_time: None,
            })
            .await
            .unwrap()
            .into_inner()
            .balance
            .unwrap()
    }
}

on_both_backends! { spawn;
    an_erased_payee_keeps_amounts_and_filed_tax_data_and_loses_the_rest => |app: App| async move {
        app.ledger()
            .await
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: "dep-1".into(),
                amount: usd(1_000_000),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
            })
            .await
            .unwrap();
        app.payouts(&app.ana())
            .await
            .update_payee(UpdatePayeeRequest {
                payee: Some(Payee {
                    name: format!("payees/{ANA_ID}"),
                    legal_name: "Ana Lima".into(),
                    email: "ana@example.com".into(),
                    cash_method: Method::Paypal as i32,
                    paypal_email: "ana.paypal@example.com".into(),
                    tax_form: TaxForm::W9 as i32,
                    tax_form_signed_on: "2026-11-01".into(),
                    tax_id: "123-45-6789".into(),
                    tax_country: "US".into(),
                    shipping_address: Some(Address {
                        line1: "1 Main St".into(),
                        city: "Austin".into(),
                        region: "TX".into(),
                        postal_code: "78701".into(),
                        country_code: "US".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();

        // $4,000 over two posts; the first $2,000 is paid in 2027, which reaches 2027's
        // 1099-NEC threshold, so her identity must be kept for that return.
        app.publish_contract(&ContractActivated { contract: Some(contract()), total_value: usd(400_000) }).await;
        app.wait_states([PayoutState::Held, PayoutState::Held]).await;
        app.publish_contract(&approved(1)).await;
        app.wait_states([PayoutState::Approved, PayoutState::Held]).await;
        assert_eq!(app.run().await.paid, 1);
        assert_eq!(app.sim.movements("ana.paypal@example.com"), 1);
        let before = app.statement().await;
        assert_eq!(before.payee, "Ana Lima");
        assert!(app.tax_csv(2027).await.contains("Ana Lima"));

        // The registry deletes her.
        let event = deleted();
        app.publish_registry(&event).await;
        let payee = eventually(Duration::from_secs(15), || async {
            let p = app.payee().await;
            (!p.pseudonym.is_empty()).then_some(p).ok_or("not erased yet")
        })
        .await;
        assert!(payee.pseudonym.starts_with("payee-") && payee.pseudonym.len() == 22, "{}", payee.pseudonym);
        assert_eq!(
            (payee.legal_name.as_str(), payee.email.as_str(), payee.paypal_email.as_str(), payee.stripe_account.as_str(), payee.tax_id.as_str(), payee.tax_country.as_str()),
            ("", "", "", "", "", "")
        );
        assert_eq!(payee.shipping_address, None);
        assert_eq!(payee.cash_blocked_reason, "payee erased");
        assert_eq!(payee.tax_form, TaxForm::W9 as i32, "the form on file explains past payments");

        // The statement: the pseudonym, the same lines and amounts.
        let after = app.statement().await;
        assert_eq!(after.payee, payee.pseudonym);
        assert_eq!((&after.lines, &after.paid, &after.owed), (&before.lines, &before.paid, &before.owed));
        assert_eq!(after.paid, vec![usd(200_000).unwrap()]);

        // Reconciliation: her destination is unknown now, so her paid payout agrees with
        // PayPal's record; a planted difference names her by the pseudonym, nothing else.
        let clean = app.reconcile().await;
        assert_eq!((clean.compared, clean.differences.len()), (1, 0), "{clean:?}");
        let paid = before.lines.iter().find(|l| l.state == PayoutState::Paid as i32).unwrap();
        assert!(app.sim.tamper_amount(paid.payout.trim_start_matches("payouts/"), 199_999));
        let found = app.reconcile().await;
        let d: Vec<(&str, &str)> = found.differences.iter().map(|d| (d.kind.as_str(), d.payee.as_str())).collect();
        assert_eq!(d, [("amount_differs", payee.pseudonym.as_str())]);
        let shown = format!("{found:?}");
        for pii in PLAINTEXT {
            assert!(!shown.contains(pii), "{pii} in {shown}");
        }

        // Nothing of hers in clear in the database; the retained identity is sealed.
        let raw = app.raw_rows().await;
        for pii in PLAINTEXT {
            assert!(!raw.contains(pii), "{pii} in the raw rows:\n{raw}");
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payees").fetch_one(&app.db.pool).await.unwrap();
        assert_eq!(count, 0, "the profile row is gone");
        let (pseudonym, retained, years, until) = app.erased_row().await;
        assert_eq!(pseudonym, payee.pseudonym);
        assert!(retained.starts_with("v1.k1."), "sealed with the PII key: {retained}");
        assert_eq!((years.as_str(), until.as_str()), ("2027", "2032-01-31"));

        // The 2027 return still prints the identity that was filed (TIN masked by default).
        let csv = app.tax_csv(2027).await;
        assert!(csv.contains("Ana Lima") && csv.contains("***-**-6789") && csv.contains("1 Main St"), "{csv}");
        assert!(!csv.contains(&payee.pseudonym), "{csv}");

        // What is still owed is held, never sent: the destination is gone.
        app.publish_contract(&approved(2)).await;
        app.wait_states([PayoutState::Paid, PayoutState::Approved]).await;
        let run = app.run().await;
        assert_eq!((run.submitted, run.blocked), (0, 1));
        let p = app.of_contract().await;
        assert_eq!((p[1].state, p[1].blocked_reason.as_str()), (PayoutState::Blocked as i32, "payee erased"));
        assert_eq!(app.sim.movements("ana.paypal@example.com"), 1, "nothing more was sent");
        // Later runs leave it alone: nothing can unblock it.
        let run = app.run().await;
        assert_eq!((run.submitted, run.blocked), (0, 0));
        let p = app.of_contract().await;
        assert_eq!((p[1].state, p[1].blocked_reason.as_str()), (PayoutState::Blocked as i32, "payee erased"));
        // The money stays owed to her id on the ledger, and the ledger balances.
        let payable = app.payable().await;
        assert_eq!((payable.credits_posted - payable.debits_posted, payable.credits_pending), (200_000, 0));
        app.assert_balanced().await;

        // She cannot come back through the profile.
        let e = app
            .payouts(&app.ana())
            .await
            .update_payee(UpdatePayeeRequest {
                payee: Some(Payee { name: format!("payees/{ANA_ID}"), legal_name: "Ana Lima".into(), ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("erased"), "{}", e.message());

        // The same event again, and another deletion of her: nothing changes.
        // Someone payouts never knew leaves no trace here.
        let stranger = envelope(
            &Clock::manual(START),
            "",
            &InfluencerDeleted { influencer: "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a99".into() },
        );
        app.publish_registry(&stranger).await;
        let row = app.erased_row().await;
        app.publish_registry(&event).await;
        let again = deleted();
        app.publish_registry(&again).await;
        // The second deletion is after the replay on the same stream: once the inbox has it,
        // both were handled.
        eventually(Duration::from_secs(15), || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE event_id = $1")
                .bind(&again.id)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
            (n == 1).then_some(()).ok_or("not handled yet")
        })
        .await;
        assert_eq!(app.erased_row().await, row);
        let erased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM erased_payees").fetch_one(&app.db.pool).await.unwrap();
        assert_eq!(erased, 1, "only Ana");
        assert_eq!(app.payee().await, payee);
        app.assert_balanced().await;

        // When the 2027 return's retention ends (31 Jan 2032), the identity goes: the next run
        // drops it and the report shows only the pseudonym.
        app.stack.clock.set(1_959_206_400_000_000).unwrap(); // 2032-02-01T00:00:00Z
        app.run().await;
        let (_, retained, years, until) = app.erased_row().await;
        assert_eq!((retained.as_str(), years.as_str(), until.as_str()), ("", "", ""));
        let csv = app.tax_csv(2027).await;
        assert!(csv.contains(&payee.pseudonym) && !csv.contains("Ana Lima") && !csv.contains("6789"), "{csv}");
    };
}
