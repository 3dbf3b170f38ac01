//! Payouts: money and goods owed and sent. A double-entry ledger per tenant holds each
//! contract's compensation when it is activated, posts it when a deliverable is approved and
//! voids it when the contract ends unpaid; provider adapters (Stripe Connect, PayPal Payouts,
//! Tremendous, shipments) pay it, each with the provider's own idempotency key, so a retry can
//! never pay twice. A service of the kit's runtime: its binary and `chorus up` both run
//! [`SERVICE`].

pub mod accounts;
pub mod api;
pub mod compensation;
pub mod domain;
pub mod events;
pub mod ledger;
pub mod payees;
pub mod providers;
pub mod reports;
pub mod runner;
pub mod service;
pub mod shipments;
pub mod store;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_kit::config::{Reader, Secret};
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::tuned;
use chorus_proto::payouts::ledger_service_server::LedgerServiceServer;
use chorus_proto::payouts::payouts_service_server::PayoutsServiceServer;
use chorus_proto::payouts::*;

use crate::domain::pii::PiiKeys;
use crate::payees::Payees;
use crate::runner::{Providers, Runner};
use crate::shipments::Shipments;
use crate::store::Store;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (2, "ledger", ledger::MIGRATION_POSTGRES),
        (3, "payouts", include_str!("../migrations/postgres/0003_payouts.sql")),
        (4, "erasure", include_str!("../migrations/postgres/0004_erasure.sql")),
    ],
    sqlite: &[
        (2, "ledger", ledger::MIGRATION_SQLITE),
        (3, "payouts", include_str!("../migrations/sqlite/0003_payouts.sql")),
        (4, "erasure", include_str!("../migrations/sqlite/0004_erasure.sql")),
    ],
};

/// What payouts reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_PII_KEYS` (or `_FILE`): the AES-256 keys payee details are sealed with,
    /// `kid:base64,...`, the first current.
    pub pii_keys: Option<Secret<String>>,
    /// The providers: their URLs, credentials and rate limits (see `providers::Settings`).
    pub providers: providers::ProvidersConfig,
    /// `CHORUS_PAYOUT_INTERVAL_MS` (5,000): how often approved payouts are submitted.
    pub interval: Duration,
    /// `CHORUS_PAYOUT_LEASE_MS` (600,000): how long a submission in flight is left alone before
    /// it is taken up again (its process died or the provider never answered).
    pub lease: Duration,
    /// `CHORUS_PAYOUTS_HTTP_ADDR`: where carrier webhooks are received (unset: not at all).
    pub http_addr: Option<SocketAddr>,
    /// `CHORUS_EASYPOST_WEBHOOK_SECRET`: the secret EasyPost signs tracker events with.
    pub easypost_secret: Option<Secret<String>>,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let pii_keys = r.secret("CHORUS_PII_KEYS");
        let interval_ms: u64 = r.parse("CHORUS_PAYOUT_INTERVAL_MS", 5_000);
        r.check(
            !(10..=3_600_000).contains(&interval_ms),
            "CHORUS_PAYOUT_INTERVAL_MS",
            "from 10 to 3600000",
        );
        let http_addr = r.optional("CHORUS_PAYOUTS_HTTP_ADDR").and_then(|a| {
            let parsed = a.parse().ok();
            r.check(parsed.is_none(), "CHORUS_PAYOUTS_HTTP_ADDR", "host:port");
            parsed
        });
        Config {
            pii_keys,
            providers: providers::ProvidersConfig::read(r),
            // Ten minutes: longer than a batch of 5,000 takes at Stripe's 25 requests/s.
            lease: r.duration_ms("CHORUS_PAYOUT_LEASE_MS", 600_000),
            interval: Duration::from_millis(interval_ms),
            http_addr,
            easypost_secret: r.optional_secret("CHORUS_EASYPOST_WEBHOOK_SECRET"),
        }
    }
}

/// What the handlers need beside the store: the runner, payee book, shipments and providers.
#[derive(Debug)]
pub struct Extra {
    pub runner: Runner,
    pub payees: Payees,
    pub shipments: Shipments,
    pub providers: Providers,
    pub store: Store,
}

/// Payouts, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Payouts;

/// Payouts' declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Payouts>();

impl chorus_kit::runtime::Service for Payouts {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "payouts",
        port: 50054,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[events::CONTRACTS_TOPIC, events::REGISTRY_TOPIC],
        db_connections: 8,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let keys = config
            .pii_keys
            .as_ref()
            .ok_or_else(|| Error::invalid_field("CHORUS_PII_KEYS", "required: kid:base64 of 32 bytes"))?;
        let keys = Arc::new(PiiKeys::parse(keys)?);
        let store = Store::new(ctx.db.clone(), ctx.outbox.clone(), ctx.clock.clone());
        let payees = Payees::new(ctx.db.clone(), keys, ctx.clock.clone());
        let providers = Providers::new(&config.providers)?;
        let runner = Runner::new(store.clone(), payees.clone(), providers.clone(), config.lease);
        let shipments = Shipments::new(store.clone());
        let extra = Arc::new(Extra {
            runner: runner.clone(),
            payees: payees.clone(),
            shipments: shipments.clone(),
            providers,
            store: store.clone(),
        });
        events::declare(parts, store.clone(), shipments.clone(), payees.clone());
        let interval = config.interval;
        parts.task("payout-runs", move |stop| runner.run(interval, stop));
        if let Some(addr) = config.http_addr {
            let secret = config.easypost_secret.clone();
            parts.task("carrier-webhooks", move |stop| {
                webhooks::serve(addr, secret, shipments, stop)
            });
        }
        parts
            .grpc(tuned!(
                LedgerServiceServer::new(api::LedgerApi::new(store.clone(), ctx.idempotency.clone())),
                ctx
            ))
            .grpc(tuned!(
                PayoutsServiceServer::new(api::PayoutsApi::new(store, ctx.idempotency.clone(), extra)),
                ctx
            ));
        Ok(())
    }
}

impl Extra {
    /// Takes back a paid cash payout through its provider; the money returns to the budget.
    pub async fn reverse(&self, tenant: &str, id: &str, reason: &str) -> Result<Payout, Error> {
        let who = store::Who::Brand(tenant.to_owned());
        let payout = self
            .store
            .payout(&who, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("payouts/{id}")))?;
        if payout.state != PayoutState::Paid as i32 || payout.kind != PayoutKind::Cash as i32 {
            return Err(crate::store::precondition(format!(
                "payouts/{id} is {} {}: only a paid cash payout can be reversed",
                PayoutState::try_from(payout.state).map_or("?", |s| s.as_str_name()),
                PayoutKind::try_from(payout.kind).map_or("?", |s| s.as_str_name()),
            )));
        }
        let method = Method::try_from(payout.method).unwrap_or(Method::Unspecified);
        let stripe = match method {
            Method::Stripe => self.providers.stripe.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            crate::store::precondition(format!(
                "payouts/{id} was paid by {}: only Stripe transfers can be reversed by API",
                method.as_str_name()
            ))
        })?;
        let amount = payout.amount.clone().unwrap_or_default();
        let order = providers::PayoutOrder {
            payout_id: id.to_owned(),
            tenant: tenant.to_owned(),
            amount_minor: amount.amount_minor,
            currency: amount.currency_code.clone(),
            destination: providers::Destination::StripeAccount(String::new()),
            description: reason.to_owned(),
            first_attempt_at: 0,
        };
        stripe
            .reverse(&order, &payout.provider_reference, None)
            .await
            .map_err(|e| {
                Error::new(
                    chorus_kit::ErrorCode::Unavailable,
                    format!("Stripe did not reverse the transfer: {e}"),
                )
            })?;
        let provider = "stripe";
        self.store.reversed(tenant, &payout, provider, reason).await?;
        self.store
            .payout(&who, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("payouts/{id}")))
    }

    /// Compares the tenant's submitted and paid payouts with the providers' records.
    pub async fn reconcile(&self, tenant: &str, campaign_id: Option<&str>) -> Result<ReconcileResponse, Error> {
        reports::reconcile(self, tenant, campaign_id).await
    }

    /// The year's 1099-NEC report of the tenant's US payees.
    pub async fn tax_report(&self, tenant: &str, year: i32, unmasked: bool) -> Result<GetTaxReportResponse, Error> {
        reports::tax_report(self, tenant, year, unmasked).await
    }
}
