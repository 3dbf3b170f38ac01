//! Contracts: offers, signed machine-readable contracts, deliverables, and the ad-disclosure
//! checker. A brand's offer template turns shortlisted influencers into offers; an accepted
//! offer becomes a contract whose canonical terms both parties sign by hash and the platform
//! seals; deliverables are checked for ad disclosure, reviewed and approved, which releases
//! the money (payouts hears of it). A service of the kit's runtime: its binary and `chorus up`
//! both run [`SERVICE`].

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod flows;
pub mod notify;
pub mod paper;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use chorus_kit::auth::SigningKey;
use chorus_kit::config::Reader;
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, tuned};
use chorus_proto::contracts::contracts_service_server::ContractsServiceServer;
use chorus_proto::contracts::disclosure_service_server::DisclosureServiceServer;

use crate::domain::disclosure::Checker;
use crate::flows::Deadlines;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[(
        2,
        "contracts",
        include_str!("../migrations/postgres/0002_contracts.sql"),
    )],
    sqlite: &[(2, "contracts", include_str!("../migrations/sqlite/0002_contracts.sql"))],
};

/// The scope contracts calls the identity service with, to invite influencers.
pub const INVITE: &str = "identity.invite";

/// What contracts reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_SEALING_KEY_FILE` (a PKCS#8 PEM file) or `CHORUS_SEALING_KEY` (the PEM): the
    /// Ed25519 key contracts are sealed with. Its public half is served by GetSealingKeys.
    pub sealing_key: Option<SigningKey>,
    /// `CHORUS_IDENTITY_URL`: where invitations are made.
    pub identity_url: String,
    /// `CHORUS_MAIL_DIR`: write each message to a file there (development); unset, messages
    /// are only logged, without their links.
    pub mail_dir: Option<PathBuf>,
    /// `CHORUS_REMIND_BEFORE_H` (48) and `CHORUS_SIGN_WITHIN_DAYS` (14).
    pub deadlines: Deadlines,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let sealing_key = SigningKey::from_settings(r, "CHORUS_SEALING_KEY", "the key contracts are sealed with");
        let remind_h: i64 = r.parse("CHORUS_REMIND_BEFORE_H", 48);
        r.check(
            !(0..=24 * 30).contains(&remind_h),
            "CHORUS_REMIND_BEFORE_H",
            "from 0 to 720",
        );
        let sign_days: i64 = r.parse("CHORUS_SIGN_WITHIN_DAYS", 14);
        r.check(
            !(1..=90).contains(&sign_days),
            "CHORUS_SIGN_WITHIN_DAYS",
            "from 1 to 90",
        );
        Config {
            sealing_key,
            identity_url: r.string("CHORUS_IDENTITY_URL", "http://127.0.0.1:50050"),
            mail_dir: r.optional("CHORUS_MAIL_DIR").map(PathBuf::from),
            deadlines: Deadlines {
                remind_before_micros: remind_h * 3_600_000_000,
                sign_within_micros: sign_days * flows::DAY_MICROS,
            },
        }
    }
}

/// Contracts, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Contracts;

/// Contracts' declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Contracts>();

impl chorus_kit::runtime::Service for Contracts {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "contracts",
        port: 50053,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[events::MATCHING_TOPIC, events::PAYOUTS_TOPIC],
        db_connections: 8,
        needs: &[INVITE],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let sealing = Arc::new(
            config
                .sealing_key
                .ok_or_else(|| Error::invalid_field("CHORUS_SEALING_KEY_FILE", "required"))?,
        );
        let checker = Arc::new(Checker::builtin()?);
        let store = store::Store::new(
            ctx.db.clone(),
            ctx.outbox.clone(),
            ctx.timers.clone(),
            ctx.clock.clone(),
        );
        let identity = ctx.clone();
        let notifier: Arc<dyn notify::Notifier> = match config.mail_dir {
            Some(dir) => Arc::new(notify::Files { dir }),
            None => Arc::new(notify::Quiet),
        };
        let invitations = events::Invitations {
            identity_url: config.identity_url,
            token: Arc::new(move || {
                let identity = identity.clone();
                Box::pin(async move { identity.service_token(&[INVITE]).await })
            }),
            notifier,
        };
        events::declare(parts, store.clone(), config.deadlines, invitations);
        let (contracts, writers) = api::Contracts::new(
            store,
            ctx.idempotency.clone(),
            checker.clone(),
            sealing,
            config.deadlines,
        );
        let api::Writers {
            signatures,
            acceptances,
        } = writers;
        parts
            .task("contracts: signature batches", move |stop| signatures.run(stop))
            .task("contracts: acceptance batches", move |stop| acceptances.run(stop))
            .grpc(tuned!(ContractsServiceServer::new(contracts), ctx))
            .grpc(tuned!(DisclosureServiceServer::new(api::Disclosure::new(checker)), ctx));
        Ok(())
    }
}
