//! Payouts' flows end to end over real gRPC, on PostgreSQL and SQLite, against the provider
//! simulator: tax forms gating cash, the year's 1099 report, reconciliation against planted
//! differences, product shipments (by RPC and by the carrier's signed webhook), reversals
//! under an idempotency key, PayPal's unclaimed and returned items, and failed payouts (a
//! returned PayPal item, a Stripe refusal, a parcel sent back) paid once the payee or the
//! brand fixes what failed. Every test ends by checking that the tenant's ledger balances.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::{Subscription, envelope, read};
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::{
    Compensation, Contract, ContractActivated, DeliverableApproved, DeliverableTerm, GiftCard, Product, Terms,
};
use chorus_proto::event::Envelope;
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use chorus_providersim::{ItemOutcome, Provider, SendError, SimConfig, Simulator};
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use tokio::sync::Mutex;
use tonic::Code;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const ANA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const BEN: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a02";
const CARA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a03";
const DAN: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a04";
const C1: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b01";
const C2: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b02";
const C3: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b03";
const C4: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b04";
const C5: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b05";
/// 2027-01-15T08:00:00Z: payments made now fall in tax year 2027 ($2,000, provisional).
const START: i64 = 1_800_000_000_000_000;
const HOOK_SECRET: &str = "whsec-flows-test";

const CASH: i32 = PayoutKind::Cash as i32;
const PRODUCT: i32 = PayoutKind::Product as i32;

struct App {
    stack: Stack,
    payouts: Launched,
    sim: Simulator,
    brand: String,
    /// The carrier webhook's URL.
    hook: String,
    /// Payouts' events, read so far and still to read.
    events: Mutex<(Box<dyn Subscription>, Vec<Envelope>)>,
}

async fn spawn(backend: Backend) -> App {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // The provider's records are made in the services' time: reconciliation reads a period.
    sim.set_clock(START / 1_000_000);
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db = stack.database().await;
    let port = free_port();
    let settings = vec![
        (
            "CHORUS_PII_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
        // Runs happen when a test asks (RunPayouts), so each step is observed as it is.
        ("CHORUS_PAYOUT_INTERVAL_MS", "3600000".to_owned()),
        ("CHORUS_PAYOUT_LEASE_MS", "200".to_owned()),
        ("CHORUS_PAYOUTS_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("CHORUS_EASYPOST_WEBHOOK_SECRET", HOOK_SECRET.to_owned()),
    ];
    let events = chorus_testkit::events::watch(&*stack.shared_bus(), "chorus.payouts").await;
    let payouts = stack.launch(&chorus_payouts::SERVICE, &db, &settings).await;
    let brand = stack.token("acme", &["payouts.read", "payouts.write"]);
    App {
        stack,
        payouts,
        sim,
        brand,
        hook: format!("http://127.0.0.1:{port}/webhooks/easypost"),
        events: Mutex::new((events, Vec::new())),
    }
}

/// A loopback port nobody listens on right now, for the webhook listener.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn minor(m: &Option<Money>) -> i64 {
    m.as_ref().unwrap().amount_minor
}

/// A one-deliverable contract paying `cash`, a gift card and a product (0: none).
fn contract(name: &str, influencer: &str, cash: i64, gift: i64, product: i64) -> Contract {
    Contract {
        name: name.into(),
        campaign: CAMPAIGN.into(),
        influencer: influencer.into(),
        terms: Some(Terms {
            deliverables: vec![DeliverableTerm {
                count: 1,
                ..Default::default()
            }],
            compensation: Some(Compensation {
                cash: (cash > 0).then(|| usd(cash)).flatten(),
                gift_cards: if gift > 0 {
                    vec![GiftCard {
                        value: usd(gift),
                        brand: "Amazon".into(),
                    }]
                } else {
                    vec![]
                },
                products: if product > 0 {
                    vec![Product {
                        sku: "SKU-1".into(),
                        title: "Harness".into(),
                        declared_value: usd(product),
                        quantity: 1,
                    }]
                } else {
                    vec![]
                },
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A payee profile: `cash` is "acct_..." (Stripe) or an email (PayPal); `form` the tax form.
fn payee(who: &str, cash: &str, country: &str, form: TaxForm, tin: &str) -> Payee {
    let id = who.trim_start_matches("influencers/");
    let (method, stripe, paypal) = if cash.starts_with("acct_") {
        (Method::Stripe, cash.to_owned(), String::new())
    } else {
        (Method::Paypal, String::new(), cash.to_owned())
    };
    let signed = if form == TaxForm::Unspecified { "" } else { "2026-06-01" };
    Payee {
        name: format!("payees/{id}"),
        legal_name: format!("Payee {}", &id[id.len() - 2..]),
        email: format!("p{}@example.com", &id[id.len() - 2..]),
        cash_method: method as i32,
        stripe_account: stripe,
        paypal_email: paypal,
        tax_form: form as i32,
        tax_form_signed_on: signed.into(),
        tax_id: tin.into(),
        tax_country: country.into(),
        shipping_address: Some(Address {
            name: "Payee".into(),
            line1: "1 Main St".into(),
            city: if country == "US" { "Austin" } else { "Berlin" }.into(),
            region: if country == "US" { "TX" } else { "" }.into(),
            postal_code: if country == "US" { "78701" } else { "10115" }.into(),
            country_code: country.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl App {
    async fn ledger(&self) -> LedgerServiceClient<Authed> {
        LedgerServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(self.brand.clone())).await)
    }

    async fn client(&self, token: &str) -> PayoutsServiceClient<Authed> {
        PayoutsServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(token.to_owned())).await)
    }

    async fn brand(&self) -> PayoutsServiceClient<Authed> {
        self.client(&self.brand).await
    }

    fn influencer(&self, name: &str) -> String {
        self.stack.mint(&Grant {
            subject: name.into(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["payouts.self".into()],
        })
    }

    async fn publish<M: prost::Name>(&self, m: &M) {
        let e = envelope(&self.stack.clock, "acme", m);
        self.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
    }

    async fn fund(&self, minor: i64) {
        self.ledger()
            .await
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: "dep-1".into(),
                amount: usd(minor),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
            })
            .await
            .unwrap();
    }

    async fn available(&self) -> i64 {
        let b = self
            .ledger()
            .await
            .get_campaign_budget(GetCampaignBudgetRequest {
                campaign: CAMPAIGN.into(),
                currency_code: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        minor(&b.available)
    }

    async fn set_payee(&self, who: &str, p: Payee) -> Payee {
        self.client(&self.influencer(who))
            .await
            .update_payee(UpdatePayeeRequest { payee: Some(p) })
            .await
            .unwrap()
            .into_inner()
            .payee
            .unwrap()
    }

    async fn of_contract(&self, contract: &str) -> Vec<Payout> {
        let mut p = self
            .brand()
            .await
            .list_payouts(ListPayoutsRequest {
                contract: contract.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .payouts;
        p.sort_by_key(|p| p.kind);
        p
    }

    /// The contract's payout of `kind`.
    async fn payout(&self, contract: &str, kind: i32) -> Payout {
        let all = self.of_contract(contract).await;
        all.into_iter().find(|p| p.kind == kind).unwrap()
    }

    /// Activates `c` and waits until its payouts are held.
    async fn activate(&self, c: Contract) {
        let name = c.name.clone();
        self.publish(&ContractActivated {
            contract: Some(c),
            total_value: None,
        })
        .await;
        eventually(Duration::from_secs(10), || async {
            let p = self.of_contract(&name).await;
            (!p.is_empty() && p.iter().all(|p| p.state == PayoutState::Held as i32))
                .then_some(())
                .ok_or("not held yet")
        })
        .await;
    }

    /// Approves `contract`'s only deliverable and waits until none of its payouts is held.
    async fn approve(&self, contract: &str, influencer: &str) {
        self.publish(&DeliverableApproved {
            deliverable: format!("{contract}/deliverables/1"),
            contract: contract.into(),
            campaign: CAMPAIGN.into(),
            influencer: influencer.into(),
            index: 1,
            total: 1,
            r#final: true,
            ..Default::default()
        })
        .await;
        eventually(Duration::from_secs(10), || async {
            let p = self.of_contract(contract).await;
            p.iter()
                .all(|p| p.state != PayoutState::Held as i32)
                .then_some(())
                .ok_or("still held")
        })
        .await;
    }

    async fn run(&self) -> RunPayoutsResponse {
        self.brand()
            .await
            .run_payouts(RunPayoutsRequest {
                campaign: CAMPAIGN.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Every event of type `M` payouts published so far (read until the bus is quiet).
    async fn events<M: prost::Name + Default>(&self) -> Vec<M> {
        let mut guard = self.events.lock().await;
        let (sub, log) = &mut *guard;
        while let Some(d) = sub.next(Duration::from_millis(100)).await.unwrap() {
            sub.ack(&d).await.unwrap();
            log.push(d.envelope);
        }
        log.iter().filter_map(|e| read::<M>(e)).map(Result::unwrap).collect()
    }

    /// Waits until `n` events of type `M` were published, and gives them.
    async fn await_events<M: prost::Name + Default>(&self, n: usize) -> Vec<M> {
        eventually(Duration::from_secs(10), || async {
            let got = self.events::<M>().await;
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} of {n} events", got.len()))
            }
        })
        .await
    }

    async fn balance(&self, account: &str) -> Balance {
        self.ledger()
            .await
            .get_account_balance(GetAccountBalanceRequest {
                account: format!("ledgerAccounts/{account}"),
                as_of_time: None,
            })
            .await
            .unwrap()
            .into_inner()
            .balance
            .unwrap()
    }

    /// The tenant's ledger sums to zero: debits equal credits, posted and pending, over every
    /// account (all pages).
    async fn assert_balanced(&self) {
        let (mut dp, mut cp, mut dpe, mut cpe, mut n) = (0i64, 0i64, 0i64, 0i64, 0);
        let mut token = String::new();
        loop {
            let page = self
                .ledger()
                .await
                .list_accounts(ListAccountsRequest {
                    owner: String::new(),
                    page_size: 2,
                    page_token: token,
                })
                .await
                .unwrap()
                .into_inner();
            for a in &page.accounts {
                let b = a.balance.as_ref().unwrap();
                dp += b.debits_posted;
                cp += b.credits_posted;
                dpe += b.debits_pending;
                cpe += b.credits_pending;
                n += 1;
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert!(n >= 3, "the tenant has its accounts: {n}");
        assert!(cp > 0, "money moved");
        assert_eq!(dp, cp, "posted debits and credits of {n} accounts");
        assert_eq!(dpe, cpe, "pending debits and credits of {n} accounts");
    }
}

fn state_name(p: &Payout) -> &'static str {
    PayoutState::try_from(p.state).unwrap().as_str_name()
}

on_both_backends! { spawn;
    a_us_payee_is_paid_cash_only_with_a_w9_and_a_foreign_payee_with_a_w8 => |app: App| async move {
        app.fund(100_000).await;
        // Ana is a US payee with no tax form; Ben lives in Germany with a W-8BEN.
        let ana = app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::Unspecified, "")).await;
        assert!(ana.cash_blocked_reason.contains("W-9"), "{}", ana.cash_blocked_reason);
        let ben = app.set_payee(BEN, payee(BEN, "acct_ben1", "DE", TaxForm::W8ben, "")).await;
        assert_eq!(ben.cash_blocked_reason, "");
        app.activate(contract(C1, ANA, 30_000, 0, 0)).await;
        app.activate(contract(C2, BEN, 20_000, 0, 0)).await;
        app.approve(C1, ANA).await;
        app.approve(C2, BEN).await;

        let run = app.run().await;
        assert_eq!((run.blocked, run.paid), (1, 1), "{run:?}");
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_BLOCKED");
        assert!(a.blocked_reason.contains("W-9"), "{}", a.blocked_reason);
        let b = app.payout(C2, CASH).await;
        assert_eq!(state_name(&b), "PAYOUT_STATE_PAID");
        assert_eq!(b.method, Method::Stripe as i32);
        assert!(b.provider_reference.starts_with("tr_"), "{}", b.provider_reference);
        assert_eq!((app.sim.movements("acct_ben1"), app.sim.movements("acct_ana1")), (1, 0));
        // The brand sees why in the listing of blocked payouts.
        let blocked = app
            .brand()
            .await
            .list_payouts(ListPayoutsRequest { campaign: CAMPAIGN.into(), state: PayoutState::Blocked as i32, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .payouts;
        assert_eq!(blocked.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), [a.name.as_str()]);

        // A W-9 without a TIN is not enough; the payout is queued again and blocked again.
        let half = Payee { name: format!("payees/{}", &ANA[12..]), tax_form: TaxForm::W9 as i32, tax_form_signed_on: "2027-01-10".into(), ..Default::default() };
        let ana = app.set_payee(ANA, half).await;
        assert!(ana.cash_blocked_reason.contains("identification number"), "{}", ana.cash_blocked_reason);
        assert_eq!(app.run().await.blocked, 1);
        let a = app.payout(C1, CASH).await;
        assert!(a.blocked_reason.contains("identification number"), "{}", a.blocked_reason);

        // With the TIN the payout is approved again and the next run pays it, once.
        let ana = app.set_payee(ANA, Payee { name: format!("payees/{}", &ANA[12..]), tax_id: "123-45-6789".into(), ..Default::default() }).await;
        assert_eq!(ana.cash_blocked_reason, "");
        assert_eq!(state_name(&app.payout(C1, CASH).await), "PAYOUT_STATE_APPROVED");
        let run = app.run().await;
        assert_eq!((run.paid, run.blocked), (1, 0), "{run:?}");
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_PAID");
        assert_eq!(a.blocked_reason, "");
        let again = app.run().await;
        assert_eq!((again.submitted, again.paid), (0, 0), "{again:?}");
        assert_eq!(app.sim.movements("acct_ana1"), 1);

        let paid = app.await_events::<PayoutPaid>(2).await;
        let mut who: Vec<(String, i64, String)> = paid.iter().map(|e| (e.influencer.clone(), minor(&e.amount), e.provider.clone())).collect();
        who.sort();
        assert_eq!(who, [(ANA.to_owned(), 30_000, "stripe".to_owned()), (BEN.to_owned(), 20_000, "stripe".to_owned())]);
        app.assert_balanced().await;
    };

    the_tax_report_lists_us_payees_at_the_threshold_with_masked_tins => |app: App| async move {
        app.fund(1_000_000).await;
        // Ana reaches $2,000 exactly, counting the gift card and the product; Cara, a US payee
        // too, stops a cent short; Ben is paid more but is not a US payee.
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.set_payee(CARA, payee(CARA, "acct_cara1", "US", TaxForm::W9, "234-56-7890")).await;
        app.set_payee(BEN, payee(BEN, "acct_ben1", "DE", TaxForm::W8ben, "")).await;
        app.activate(contract(C1, ANA, 150_000, 25_000, 25_000)).await;
        app.activate(contract(C2, CARA, 199_999, 0, 0)).await;
        app.activate(contract(C3, BEN, 300_000, 0, 0)).await;
        for (c, who) in [(C1, ANA), (C2, CARA), (C3, BEN)] {
            app.approve(c, who).await;
        }
        let run = app.run().await;
        assert_eq!(run.paid, 4, "three cash payouts and a gift card: {run:?}");
        let product = app.payout(C1, PRODUCT).await;
        app.brand().await.update_shipment(UpdateShipmentRequest { name: product.name.clone(), carrier: "USPS".into(), tracking_code: "TRK-TAX-1".into(), status: "delivered".into() }).await.unwrap();
        assert!(app.of_contract(C1).await.iter().all(|p| p.state == PayoutState::Paid as i32));

        let report = |token: String, year: i32, unmasked: bool| {
            let app = &app;
            async move {
                app.client(&token).await.get_tax_report(GetTaxReportRequest { year, unmasked }).await.map(|r| r.into_inner())
            }
        };
        let r = report(app.brand.clone(), 2027, false).await.unwrap();
        assert_eq!((r.year, r.rows, minor(&r.threshold)), (2027, 1, 200_000));
        let csv = String::from_utf8(r.csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[0].starts_with("Tax year,Payee ID"), "{csv}");
        let cells: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(cells[..5], ["2027", &ANA[12..], "Payee 01", "SSN", "***-**-6789"], "{csv}");
        assert_eq!(cells[11..17], ["1500.00", "250.00", "250.00", "2000.00", "2000.00", "2000.00"], "{csv}");
        assert!(cells[17].starts_with("provisional"), "{csv}");
        assert!(!csv.contains("123-45-6789") && !csv.contains(&CARA[12..]) && !csv.contains(&BEN[12..]), "{csv}");

        // The full TIN needs payouts.tax.
        let e = report(app.brand.clone(), 2027, true).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let tax = app.stack.token("acme", &["payouts.read", "payouts.tax"]);
        let full = report(tax, 2027, true).await.unwrap();
        let csv = String::from_utf8(full.csv).unwrap();
        assert!(csv.contains(",SSN,123-45-6789,"), "{csv}");
        // Nothing was paid in 2026.
        let r = report(app.brand.clone(), 2026, false).await.unwrap();
        assert_eq!((r.rows, minor(&r.threshold)), (0, 200_000));
        app.assert_balanced().await;
    };

    reconcile_finds_each_planted_difference_once => |app: App| async move {
        app.fund(1_000_000).await;
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.set_payee(BEN, payee(BEN, "ben.pp@example.com", "US", TaxForm::W9, "234-56-7890")).await;
        app.set_payee(CARA, payee(CARA, "acct_cara1", "US", TaxForm::W9, "345-67-8901")).await;
        app.set_payee(DAN, payee(DAN, "dan.pp@example.com", "US", TaxForm::W9, "456-78-9012")).await;
        let all = [(C1, ANA, 10_000), (C2, BEN, 20_000), (C3, CARA, 30_000), (C4, DAN, 40_000)];
        for (c, who, cash) in all {
            app.activate(contract(c, who, cash, 0, 0)).await;
            app.approve(c, who).await;
        }
        assert_eq!(app.run().await.paid, 4);
        // Another brand pays Ana through the same Stripe account: its transfer is that brand's
        // to reconcile, never "unknown" to this one.
        let globex = app.stack.token("globex", &["payouts.read", "payouts.write"]);
        LedgerServiceClient::new(chorus_testkit::authed(app.payouts.addr, Some(globex.clone())).await)
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: "dep-g".into(),
                amount: usd(50_000),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-G".into())),
            })
            .await
            .unwrap();
        let clock = &app.stack.clock;
        let activated =
            envelope(clock, "globex", &ContractActivated { contract: Some(contract(C5, ANA, 5_000, 0, 0)), total_value: None });
        app.stack.shared_bus().publish("chorus.contracts", &activated).await.unwrap();
        let approved = envelope(clock, "globex", &DeliverableApproved {
            deliverable: format!("{C5}/deliverables/1"),
            contract: C5.into(),
            campaign: CAMPAIGN.into(),
            influencer: ANA.into(),
            index: 1,
            total: 1,
            r#final: true,
            ..Default::default()
        });
        app.stack.shared_bus().publish("chorus.contracts", &approved).await.unwrap();
        let globex_payouts = app.client(&globex).await;
        eventually(Duration::from_secs(10), || {
            let mut c = globex_payouts.clone();
            async move {
                let r = c.run_payouts(RunPayoutsRequest { campaign: CAMPAIGN.into() }).await.map_err(|e| e.to_string())?;
                let listed = c.list_payouts(ListPayoutsRequest { contract: C5.into(), ..Default::default() }).await.map_err(|e| e.to_string())?;
                let paid = listed.into_inner().payouts.iter().any(|p| p.state == PayoutState::Paid as i32);
                (paid || r.into_inner().paid == 1).then_some(()).ok_or("globex not paid yet".to_owned())
            }
        })
        .await;
        assert_eq!(app.sim.movements("acct_ana1"), 2);
        let theirs = globex_payouts.clone().reconcile(ReconcileRequest { campaign: CAMPAIGN.into() }).await.unwrap().into_inner();
        assert_eq!(theirs.compared, 1);
        assert!(theirs.differences.is_empty(), "{:?}", theirs.differences);
        let reconcile = || async {
            let mut r = app.brand().await.reconcile(ReconcileRequest { campaign: CAMPAIGN.into() }).await.unwrap().into_inner();
            r.differences.sort_by(|a, b| (&a.kind, &a.payout).cmp(&(&b.kind, &b.payout)));
            r
        };
        let clean = reconcile().await;
        assert_eq!(clean.compared, 4);
        assert!(clean.differences.is_empty(), "{:?}", clean.differences);

        let ana = app.payout(C1, CASH).await;
        let ben = app.payout(C2, CASH).await;
        let cara = app.payout(C3, CASH).await;
        let dan = app.payout(C4, CASH).await;
        let id = |p: &Payout| p.name.trim_start_matches("payouts/").to_owned();
        assert!(app.sim.tamper_amount(&ana.provider_reference, 9_999));
        assert!(app.sim.tamper_status(&id(&ben), "RETURNED"));
        assert!(app.sim.tamper_delete(&cara.provider_reference));
        assert!(app.sim.tamper_amount(&id(&dan), 40_001));
        let planted = app.sim.plant_transfer("acct_stranger1", 5_000, "usd", Some("not-a-payout-of-ours"));

        let found = reconcile().await;
        let got: Vec<(&str, &str, &str)> = found.differences.iter().map(|d| (d.kind.as_str(), d.provider.as_str(), d.payout.as_str())).collect();
        let mut want = vec![
            ("amount_differs", "stripe", ana.name.as_str()),
            ("amount_differs", "paypal", dan.name.as_str()),
            ("missing_at_provider", "stripe", cara.name.as_str()),
            ("status_differs", "paypal", ben.name.as_str()),
            ("unknown_to_us", "stripe", "payouts/not-a-payout-of-ours"),
        ];
        want.sort_by(|a, b| (a.0, a.2).cmp(&(b.0, b.2)));
        assert_eq!(got, want, "{:#?}", found.differences);
        let unknown = found.differences.iter().find(|d| d.kind == "unknown_to_us").unwrap();
        assert_eq!(unknown.provider_reference, planted);
        let amount = found.differences.iter().find(|d| d.payout == ana.name).unwrap();
        assert!(amount.detail.contains("10000") && amount.detail.contains("9999"), "{}", amount.detail);
        app.assert_balanced().await;
    };

    a_product_ships_by_rpc_and_is_paid_when_delivered_after_its_approval => |app: App| async move {
        app.fund(100_000).await;
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.set_payee(BEN, payee(BEN, "acct_ben1", "US", TaxForm::W9, "234-56-7890")).await;
        app.activate(contract(C1, ANA, 0, 0, 3_000)).await;
        app.approve(C1, ANA).await;
        let p = app.payout(C1, PRODUCT).await;
        assert_eq!(state_name(&p), "PAYOUT_STATE_APPROVED");
        let ship = |status: &'static str, carrier: &'static str, tracking: &'static str, name: String| {
            let app = &app;
            async move {
                app.brand().await.update_shipment(UpdateShipmentRequest { name, carrier: carrier.into(), tracking_code: tracking.into(), status: status.into() }).await.map(|r| r.into_inner().payout.unwrap())
            }
        };
        let shipped = ship("", "USPS", "TRK-RPC-1", p.name.clone()).await.unwrap();
        assert_eq!(state_name(&shipped), "PAYOUT_STATE_SUBMITTED");
        let s = shipped.shipment.as_ref().unwrap();
        assert_eq!((s.carrier.as_str(), s.tracking_code.as_str(), s.sku.as_str()), ("USPS", "TRK-RPC-1", "SKU-1"));
        let delivered = ship("delivered", "", "", p.name.clone()).await.unwrap();
        assert_eq!(state_name(&delivered), "PAYOUT_STATE_PAID");
        assert_eq!(delivered.provider_reference, "TRK-RPC-1");
        let paid = app.await_events::<PayoutPaid>(1).await;
        assert_eq!((paid[0].payout.as_str(), paid[0].kind, paid[0].provider.as_str()), (p.name.as_str(), PRODUCT, "shipment"));
        let clearing = app.balance("clearing.shipment.USD").await;
        assert_eq!((clearing.credits_posted, clearing.debits_posted), (3_000, 0));
        // A paid shipment no longer changes.
        let e = ship("return_to_sender", "", "", p.name.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

        // Ben's product arrives before his post is approved: it is paid at the approval.
        app.activate(contract(C2, BEN, 0, 0, 4_000)).await;
        let q = app.payout(C2, PRODUCT).await;
        let early = ship("delivered", "UPS", "TRK-RPC-2", q.name.clone()).await.unwrap();
        assert_eq!(state_name(&early), "PAYOUT_STATE_HELD", "not paid before its deliverable is approved");
        assert_eq!(app.events::<PayoutPaid>().await.len(), 1);
        app.approve(C2, BEN).await;
        let q = eventually(Duration::from_secs(10), || async {
            let q = app.payout(C2, PRODUCT).await;
            (q.state == PayoutState::Paid as i32).then_some(q).ok_or("not paid yet")
        })
        .await;
        let paid = app.await_events::<PayoutPaid>(2).await;
        assert_eq!(paid.iter().filter(|e| e.payout == q.name).count(), 1);
        assert_eq!(app.balance("clearing.shipment.USD").await.credits_posted, 7_000);
        app.assert_balanced().await;
    };

    the_carrier_webhook_pays_a_delivered_product_once => |app: App| async move {
        app.fund(100_000).await;
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.activate(contract(C1, ANA, 0, 0, 3_000)).await;
        app.approve(C1, ANA).await;
        let p = app.payout(C1, PRODUCT).await;
        app.brand().await.update_shipment(UpdateShipmentRequest { name: p.name.clone(), carrier: "USPS".into(), tracking_code: "TRK-HOOK-1".into(), status: String::new() }).await.unwrap();

        // A wrong signature is refused and changes nothing.
        let e = app.sim.send_tracker_event(&app.hook, "not-the-secret", "TRK-HOOK-1", "delivered").await.unwrap_err();
        assert!(matches!(e, SendError::Status(401)), "{e:?}");
        let p = app.payout(C1, PRODUCT).await;
        assert_eq!((state_name(&p), p.shipment.as_ref().unwrap().status.as_str()), ("PAYOUT_STATE_SUBMITTED", ""));

        app.sim.send_tracker_event(&app.hook, HOOK_SECRET, "TRK-HOOK-1", "in_transit").await.unwrap();
        let p = app.payout(C1, PRODUCT).await;
        assert_eq!((state_name(&p), p.shipment.as_ref().unwrap().status.as_str()), ("PAYOUT_STATE_SUBMITTED", "in_transit"));
        let event = app.sim.send_tracker_event(&app.hook, HOOK_SECRET, "TRK-HOOK-1", "delivered").await.unwrap();
        let p = app.payout(C1, PRODUCT).await;
        assert_eq!(state_name(&p), "PAYOUT_STATE_PAID");
        // Delivered at least once: the same event again is taken and applied no more.
        app.sim.resend_tracker_event(&app.hook, HOOK_SECRET, &event).await.unwrap();
        let paid = app.await_events::<PayoutPaid>(1).await;
        assert_eq!(paid.len(), 1, "{paid:?}");
        assert_eq!(app.balance("clearing.shipment.USD").await.credits_posted, 3_000);
        app.assert_balanced().await;
    };

    a_stripe_payout_is_reversed_once_under_its_key_and_a_paypal_one_is_refused => |app: App| async move {
        app.fund(100_000).await;
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.set_payee(BEN, payee(BEN, "ben.pp@example.com", "US", TaxForm::W9, "234-56-7890")).await;
        app.activate(contract(C1, ANA, 30_000, 0, 0)).await;
        app.activate(contract(C2, BEN, 20_000, 0, 0)).await;
        app.approve(C1, ANA).await;
        app.approve(C2, BEN).await;
        assert_eq!(app.run().await.paid, 2);
        assert_eq!(app.available().await, 50_000);
        let ana = app.payout(C1, CASH).await;
        let ben = app.payout(C2, CASH).await;

        let reverse = |name: String, reason: &'static str, key: &'static str| {
            let app = &app;
            async move {
                let mut r = tonic::Request::new(ReversePayoutRequest { name, reason: reason.into() });
                r.metadata_mut().insert("idempotency-key", key.parse().unwrap());
                app.brand().await.reverse_payout(r).await.map(|r| r.into_inner().payout.unwrap())
            }
        };
        let first = reverse(ana.name.clone(), "posted by mistake", "rev-1").await.unwrap();
        assert_eq!(state_name(&first), "PAYOUT_STATE_REVERSED");
        assert_eq!(app.available().await, 80_000, "the budget has the amount back");
        let transfer = app.sim.transfers().into_iter().find(|t| t.id == ana.provider_reference).unwrap();
        assert_eq!((transfer.reversed, transfer.reversals.len()), (true, 1));
        let reversed = app.await_events::<PayoutReversed>(1).await;
        assert_eq!((reversed[0].payout.as_str(), minor(&reversed[0].amount)), (ana.name.as_str(), 30_000));

        // The same request under the same key: the first answer, nothing done again.
        let again = reverse(ana.name.clone(), "posted by mistake", "rev-1").await.unwrap();
        assert_eq!(again, first);
        let e = reverse(ana.name.clone(), "another reason", "rev-1").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert_eq!(app.sim.transfers().into_iter().find(|t| t.id == ana.provider_reference).unwrap().reversals.len(), 1);
        assert_eq!(app.events::<PayoutReversed>().await.len(), 1);
        assert_eq!(app.available().await, 80_000);
        // A reversed payout cannot be reversed again, under any key.
        let e = reverse(ana.name.clone(), "posted by mistake", "rev-3").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

        // PayPal payouts cannot be taken back by API; the refusal is kept under its key.
        let e = reverse(ben.name.clone(), "posted by mistake", "rev-2").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("METHOD_PAYPAL") && e.message().contains("Stripe"), "{}", e.message());
        let same = reverse(ben.name.clone(), "posted by mistake", "rev-2").await.unwrap_err();
        assert_eq!((same.code(), same.message()), (e.code(), e.message()));
        assert_eq!(state_name(&app.payout(C2, CASH).await), "PAYOUT_STATE_PAID");

        // Stripe and we agree: the transfer is reversed on both sides.
        let r = app.brand().await.reconcile(ReconcileRequest { campaign: CAMPAIGN.into() }).await.unwrap().into_inner();
        assert!(r.differences.is_empty(), "{:?}", r.differences);
        let clearing = app.balance("clearing.stripe.USD").await;
        assert_eq!((clearing.credits_posted, clearing.debits_posted), (30_000, 30_000));
        app.assert_balanced().await;
    };

    paypal_unclaimed_waits_returned_fails_and_a_new_email_is_paid_once => |app: App| async move {
        app.fund(100_000).await;
        app.sim.set_paypal_outcome("ana.old@example.com", ItemOutcome::Unclaimed);
        app.sim.set_paypal_outcome("ben.gone@example.com", ItemOutcome::Returned);
        app.set_payee(ANA, payee(ANA, "ana.old@example.com", "US", TaxForm::W9, "123-45-6789")).await;
        app.set_payee(BEN, payee(BEN, "ben.gone@example.com", "US", TaxForm::W9, "234-56-7890")).await;
        app.activate(contract(C1, ANA, 25_000, 0, 0)).await;
        app.activate(contract(C2, BEN, 15_000, 0, 0)).await;
        // Each in a batch of its own: Ana's retry below is then the same set of payouts as
        // her first batch, which PayPal must not take for that batch again.
        app.approve(C1, ANA).await;
        let run = app.run().await;
        assert_eq!((run.pending, run.failed, run.paid), (1, 0, 0), "{run:?}");
        // Unclaimed: still with PayPal, pending, and the payout says why.
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_SUBMITTED");
        assert!(a.blocked_reason.contains("UNCLAIMED"), "{a:?}");
        app.approve(C2, BEN).await;
        let run = app.run().await;
        assert_eq!((run.pending, run.failed, run.paid), (0, 1, 0), "{run:?}");
        assert_eq!(app.sim.paypal_batches().len(), 2);
        // Returned: failed with PayPal's reason, and said so.
        let b = app.payout(C2, CASH).await;
        assert_eq!(state_name(&b), "PAYOUT_STATE_FAILED");
        assert!(b.failure_reason.contains("RETURNED"), "{}", b.failure_reason);

        // Thirty days later PayPal gives Ana's unclaimed money back; the next poll fails it.
        app.sim.tamper_status(a.name.trim_start_matches("payouts/"), "RETURNED");
        app.stack.clock.advance(Duration::from_secs(30 * 86_400)).unwrap();
        let run = app.run().await;
        assert_eq!(run.failed, 1, "{run:?}");
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_FAILED");
        assert!(a.failure_reason.contains("RETURNED"), "{}", a.failure_reason);
        let failed = app.await_events::<PayoutFailed>(2).await;
        let mut reasons: Vec<(String, bool)> = failed.iter().map(|e| (e.payout.clone(), e.reason.contains("RETURNED"))).collect();
        reasons.sort();
        let mut want = vec![(a.name.clone(), true), (b.name.clone(), true)];
        want.sort();
        assert_eq!(reasons, want);

        // Ana gives a new PayPal email: the payout is approved again and paid there, once.
        app.set_payee(ANA, Payee { name: format!("payees/{}", &ANA[12..]), paypal_email: "ana.new@example.com".into(), ..Default::default() }).await;
        assert_eq!(state_name(&app.payout(C1, CASH).await), "PAYOUT_STATE_APPROVED");
        app.stack.clock.advance(Duration::from_secs(60)).unwrap();
        let run = app.run().await;
        assert_eq!(run.paid, 1, "{run:?}");
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_PAID");
        app.stack.clock.advance(Duration::from_secs(60)).unwrap();
        app.run().await;
        assert_eq!((app.sim.movements("ana.new@example.com"), app.sim.movements("ana.old@example.com")), (1, 1));
        let paid = app.await_events::<PayoutPaid>(1).await;
        assert_eq!(paid.iter().map(|e| (e.payout.clone(), minor(&e.amount))).collect::<Vec<_>>(), [(a.name.clone(), 25_000)]);
        // Ben's money stays owed to him until he fixes his details.
        let payable = app.balance(&format!("payable.{}.USD", &BEN[12..])).await;
        assert_eq!(payable.credits_posted - payable.debits_posted, 15_000);
        app.assert_balanced().await;
    };

    a_stripe_payout_refused_for_funds_stays_owed_and_is_paid_to_the_new_account_once => |app: App| async move {
        app.fund(100_000).await;
        app.sim.set_balance(Provider::Stripe, Some(10_000));
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.activate(contract(C1, ANA, 30_000, 0, 0)).await;
        app.approve(C1, ANA).await;
        let run = app.run().await;
        assert_eq!((run.failed, run.paid), (1, 0), "{run:?}");
        let a = app.payout(C1, CASH).await;
        assert_eq!(state_name(&a), "PAYOUT_STATE_FAILED");
        assert!(a.failure_reason.contains("balance_insufficient"), "{}", a.failure_reason);
        let failed = app.await_events::<PayoutFailed>(1).await;
        assert_eq!((failed[0].payout.as_str(), failed[0].provider.as_str()), (a.name.as_str(), "stripe"));
        // A failed payout waits for its payee: later runs leave it alone.
        app.stack.clock.advance(Duration::from_secs(60)).unwrap();
        assert_eq!(app.run().await, RunPayoutsResponse::default());
        assert_eq!(app.balance(&format!("payable.{}.USD", &ANA[12..])).await.credits_posted, 30_000);

        // The platform is funded and Ana names another account: paid there, once.
        app.sim.set_balance(Provider::Stripe, None);
        app.set_payee(ANA, Payee { name: format!("payees/{}", &ANA[12..]), stripe_account: "acct_ana2".into(), ..Default::default() }).await;
        app.stack.clock.advance(Duration::from_secs(60)).unwrap();
        let run = app.run().await;
        assert_eq!((run.paid, run.failed), (1, 0), "{run:?}");
        app.stack.clock.advance(Duration::from_secs(60)).unwrap();
        app.run().await;
        assert_eq!((app.sim.movements("acct_ana2"), app.sim.movements("acct_ana1")), (1, 0));
        let a = app.payout(C1, CASH).await;
        assert_eq!((state_name(&a), a.failure_reason.as_str()), ("PAYOUT_STATE_PAID", ""));
        assert_eq!(app.await_events::<PayoutPaid>(1).await.len(), 1);
        let payable = app.balance(&format!("payable.{}.USD", &ANA[12..])).await;
        assert_eq!((payable.credits_posted, payable.debits_posted), (30_000, 30_000));
        app.assert_balanced().await;
    };

    a_shipment_returned_to_sender_fails_and_a_new_one_delivered_pays => |app: App| async move {
        app.fund(100_000).await;
        app.set_payee(ANA, payee(ANA, "acct_ana1", "US", TaxForm::W9, "123-45-6789")).await;
        app.activate(contract(C1, ANA, 0, 0, 3_000)).await;
        app.approve(C1, ANA).await;
        let p = app.payout(C1, PRODUCT).await;
        let ship = |carrier: &'static str, tracking: &'static str, status: &'static str| {
            let (app, name) = (&app, p.name.clone());
            async move {
                app.brand()
                    .await
                    .update_shipment(UpdateShipmentRequest { name, carrier: carrier.into(), tracking_code: tracking.into(), status: status.into() })
                    .await
                    .unwrap()
                    .into_inner()
                    .payout
                    .unwrap()
            }
        };
        ship("USPS", "TRK-BACK-1", "").await;
        let back = ship("", "", "return_to_sender").await;
        assert_eq!(state_name(&back), "PAYOUT_STATE_FAILED");
        assert!(back.failure_reason.contains("return_to_sender"), "{}", back.failure_reason);
        let failed = app.await_events::<PayoutFailed>(1).await;
        assert_eq!((failed[0].payout.as_str(), failed[0].provider.as_str()), (p.name.as_str(), "shipment"));
        assert!(failed[0].reason.contains("return_to_sender"), "{}", failed[0].reason);

        // Sent again under a new tracking code, delivered: paid once.
        let again = ship("UPS", "TRK-BACK-2", "").await;
        assert_eq!((state_name(&again), again.failure_reason.as_str()), ("PAYOUT_STATE_SUBMITTED", ""));
        let paid = ship("", "", "delivered").await;
        assert_eq!((state_name(&paid), paid.provider_reference.as_str()), ("PAYOUT_STATE_PAID", "TRK-BACK-2"));
        assert_eq!(app.await_events::<PayoutPaid>(1).await.len(), 1);
        assert_eq!(app.balance("clearing.shipment.USD").await.credits_posted, 3_000);
        app.assert_balanced().await;
    };
}
