//! Payouts over real gRPC, on PostgreSQL and SQLite, fed contracts' events on the bus: a brand
//! funds a campaign, an activated contract's compensation is held (or refused with the
//! shortfall), approvals release it, payouts are paid through the provider simulator exactly
//! once, a cancelled contract's hold is voided, and the ledger balances throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::{
    Compensation, Contract, ContractActivated, ContractCancelled, DeliverableApproved, DeliverableTerm, GiftCard,
    Product, Terms,
};
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use chorus_providersim::{SimConfig, Simulator};
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use tonic::Code;
use tonic_types::StatusExt;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const ANA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const BEN: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a02";
const C1: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b01";
const C2: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b02";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;

struct App {
    stack: Stack,
    payouts: Launched,
    sim: Simulator,
    brand: String,
}

async fn spawn(backend: Backend) -> App {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db = stack.database().await;
    let payouts = stack.launch(&chorus_payouts::SERVICE, &db, &settings(&sim)).await;
    let brand = stack.token("acme", &["payouts.read", "payouts.write"]);
    App {
        stack,
        payouts,
        sim,
        brand,
    }
}

fn settings(sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        (
            "CHORUS_PII_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
        ("CHORUS_PAYOUT_INTERVAL_MS", "100".to_owned()),
    ]
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn contract(name: &str, influencer: &str, cash: i64, gift: i64, product: i64) -> Contract {
    Contract {
        name: name.into(),
        campaign: CAMPAIGN.into(),
        influencer: influencer.into(),
        terms: Some(Terms {
            deliverables: vec![DeliverableTerm {
                count: 2,
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

impl App {
    async fn ledger(&self) -> LedgerServiceClient<Authed> {
        LedgerServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(self.brand.clone())).await)
    }

    async fn payouts(&self, token: &str) -> PayoutsServiceClient<Authed> {
        PayoutsServiceClient::new(chorus_testkit::authed(self.payouts.addr, Some(token.to_owned())).await)
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
        let e = envelope(&Clock::manual(START), "acme", m);
        self.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
    }

    async fn fund(&self, id: &str, minor: i64) -> FundCampaignResponse {
        self.ledger()
            .await
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: id.into(),
                amount: usd(minor),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn budget(&self) -> GetCampaignBudgetResponse {
        self.ledger()
            .await
            .get_campaign_budget(GetCampaignBudgetRequest {
                campaign: CAMPAIGN.into(),
                currency_code: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn of_contract(&self, contract: &str) -> Vec<Payout> {
        let mut p = self
            .payouts(&self.brand)
            .await
            .list_payouts(ListPayoutsRequest {
                contract: contract.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .payouts;
        p.sort_by_key(|p| (p.kind, p.deliverable.clone()));
        p
    }

    async fn states(&self, contract: &str) -> Vec<(i32, i64, i32)> {
        self.of_contract(contract)
            .await
            .iter()
            .map(|p| (p.kind, p.amount.as_ref().unwrap().amount_minor, p.state))
            .collect()
    }

    async fn set_payee(&self, who: &str, payee: Payee) -> Payee {
        self.payouts(&self.influencer(who))
            .await
            .update_payee(UpdatePayeeRequest { payee: Some(payee) })
            .await
            .unwrap()
            .into_inner()
            .payee
            .unwrap()
    }
}

fn minor(m: &Option<Money>) -> i64 {
    m.as_ref().unwrap().amount_minor
}

const CASH: i32 = PayoutKind::Cash as i32;
const GIFT: i32 = PayoutKind::GiftCard as i32;
const PRODUCT: i32 = PayoutKind::Product as i32;
const HELD: i32 = PayoutState::Held as i32;

on_both_backends! { spawn;
    a_contract_goes_from_hold_to_a_paid_statement => |app: App| async move {
        // The deposit is idempotent by its id; other fields under the same id are refused.
        let first = app.fund("dep-1", 100_000).await;
        assert_eq!(minor(&first.budget.as_ref().unwrap().balance.as_ref().map(|b| Money { amount_minor: b.net, currency_code: "USD".into() })), 100_000);
        let again = app.fund("dep-1", 100_000).await;
        assert_eq!(again, first);
        let other = app
            .ledger()
            .await
            .fund_campaign(FundCampaignRequest {
                campaign: CAMPAIGN.into(),
                deposit_id: "dep-1".into(),
                amount: usd(5),
                source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
            })
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");

        // Ana onboards: PayPal for cash, a W-9 on file; her details come back masked.
        let payee = app
            .set_payee(ANA, Payee {
                name: format!("payees/{}", ANA.trim_start_matches("influencers/")),
                legal_name: "Ana Lima".into(),
                email: "ana@example.com".into(),
                cash_method: Method::Paypal as i32,
                paypal_email: "ana.paypal@example.com".into(),
                tax_form: TaxForm::W9 as i32,
                tax_form_signed_on: "2026-11-01".into(),
                tax_id: "123-45-6789".into(),
                tax_country: "US".into(),
                shipping_address: Some(Address {
                    name: "Ana Lima".into(),
                    line1: "1 Main St".into(),
                    city: "Austin".into(),
                    region: "TX".into(),
                    postal_code: "78701".into(),
                    country_code: "US".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        assert_eq!(payee.tax_id, "***-**-6789");
        assert!(!payee.paypal_email.contains("ana.paypal"), "{}", payee.paypal_email);
        assert_eq!(payee.cash_blocked_reason, "");

        // Activation holds 400 cash + 50 gift card on the budget, 30 of product on inventory.
        app.publish(&ContractActivated { contract: Some(contract(C1, ANA, 40_000, 5_000, 3_000)), total_value: usd(48_000) }).await;
        let held = eventually(Duration::from_secs(10), || async {
            let s = app.states(C1).await;
            (s.len() == 4 && s.iter().all(|x| x.2 == HELD)).then_some(s).ok_or("not yet")
        })
        .await;
        assert_eq!(held, [(CASH, 20_000, HELD), (CASH, 20_000, HELD), (GIFT, 5_000, HELD), (PRODUCT, 3_000, HELD)]);
        let b = app.budget().await;
        assert_eq!((minor(&b.deposited), minor(&b.held), minor(&b.available)), (100_000, 45_000, 55_000));

        // The first approval releases the first half of the cash; it is paid through PayPal.
        app.publish(&DeliverableApproved {
            deliverable: format!("{C1}/deliverables/1"),
            contract: C1.into(),
            campaign: CAMPAIGN.into(),
            influencer: ANA.into(),
            index: 1,
            total: 2,
            cash_release: usd(20_000),
            r#final: false,
            ..Default::default()
        })
        .await;
        let paid = eventually(Duration::from_secs(15), || async {
            let p = app.of_contract(C1).await;
            p.iter().find(|p| p.state == PayoutState::Paid as i32).cloned().ok_or("not yet")
        })
        .await;
        assert_eq!((paid.kind, minor(&paid.amount), paid.method), (CASH, 20_000, Method::Paypal as i32));
        assert_eq!(app.sim.movements("ana.paypal@example.com"), 1);

        // The second brings the rest: cash, gift card (Tremendous), and the product to ship.
        app.publish(&DeliverableApproved {
            deliverable: format!("{C1}/deliverables/2"),
            contract: C1.into(),
            campaign: CAMPAIGN.into(),
            influencer: ANA.into(),
            index: 2,
            total: 2,
            cash_release: usd(20_000),
            r#final: true,
            ..Default::default()
        })
        .await;
        eventually(Duration::from_secs(15), || async {
            let s = app.states(C1).await;
            (s.iter().filter(|x| x.2 == PayoutState::Paid as i32).count() == 3).then_some(()).ok_or("not yet")
        })
        .await;
        let b = app.budget().await;
        assert_eq!((minor(&b.held), minor(&b.released), minor(&b.available)), (0, 45_000, 55_000));

        // Replayed events change nothing: still one payment per payout.
        app.publish(&ContractActivated { contract: Some(contract(C1, ANA, 40_000, 5_000, 3_000)), total_value: usd(48_000) }).await;
        app.run().await;
        assert_eq!(app.sim.movements("ana.paypal@example.com"), 2);
        assert_eq!(app.of_contract(C1).await.len(), 4);

        // Ana's statement: what, when, why, which deliverable.
        let statement = app
            .payouts(&app.influencer(ANA))
            .await
            .get_statement(GetStatementRequest { influencer: ANA.into(), year: 0 })
            .await
            .unwrap()
            .into_inner()
            .statement
            .unwrap();
        assert_eq!(statement.lines.len(), 4);
        assert_eq!(statement.paid, vec![usd(45_000).unwrap()]);
        assert_eq!(statement.owed, vec![usd(3_000).unwrap()], "the product is owed until delivered");
        assert!(statement.lines.iter().any(|l| l.deliverable.ends_with("/deliverables/1") && l.kind == CASH));
    };

    a_hold_the_budget_cannot_cover_fails_with_the_shortfall => |app: App| async move {
        app.fund("dep-1", 10_000).await;
        app.publish(&ContractActivated { contract: Some(contract(C2, BEN, 25_000, 0, 0)), total_value: usd(25_000) }).await;
        let s = eventually(Duration::from_secs(10), || async {
            let s = app.of_contract(C2).await;
            (!s.is_empty()).then_some(s).ok_or("not yet")
        })
        .await;
        assert!(s.iter().all(|p| p.state == PayoutState::Requested as i32));
        assert!(s[0].blocked_reason.contains("short by USD 150.00"), "{}", s[0].blocked_reason);
        let b = app.budget().await;
        assert_eq!((minor(&b.held), minor(&b.available)), (0, 10_000), "nothing of a failed hold is written");
    };

    a_cancelled_contract_voids_its_hold => |app: App| async move {
        app.fund("dep-1", 100_000).await;
        app.publish(&ContractActivated { contract: Some(contract(C2, BEN, 30_000, 0, 0)), total_value: usd(30_000) }).await;
        eventually(Duration::from_secs(10), || async { (app.states(C2).await.len() == 2).then_some(()).ok_or("not yet") }).await;
        app.publish(&ContractCancelled { contract: C2.into(), campaign: CAMPAIGN.into(), influencer: BEN.into(), reason: "brand cancelled".into(), was_active: true }).await;
        eventually(Duration::from_secs(10), || async {
            app.states(C2).await.iter().all(|x| x.2 == PayoutState::Voided as i32).then_some(()).ok_or("not yet")
        })
        .await;
        let b = app.budget().await;
        assert_eq!((minor(&b.held), minor(&b.available)), (0, 100_000));
    };

    bad_input_is_refused_with_the_fields_named => |app: App| async move {
        let e = app
            .ledger()
            .await
            .fund_campaign(FundCampaignRequest { campaign: "campaigns/x".into(), deposit_id: "a b".into(), amount: usd(-1), source: None })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let fields: Vec<String> = e.get_details_bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
        assert_eq!(fields, ["campaign", "deposit_id", "amount.amount_minor", "source"]);
        // An influencer cannot fund, nor read another's statement.
        let ana = app.influencer(ANA);
        let e = app.payouts(&ana).await.get_statement(GetStatementRequest { influencer: BEN.into(), year: 0 }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = app.payouts(&app.brand).await.get_payout(GetPayoutRequest { name: "payouts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6c01".into() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    };
}

impl App {
    /// Runs the payouts now (beside the automatic runs).
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
}
