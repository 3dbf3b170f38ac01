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
use crate::notify::adapters::SmtpSettings;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (
            2,
            "contracts",
            include_str!("../migrations/postgres/0002_contracts.sql"),
        ),
        (
            3,
            "notifications",
            include_str!("../migrations/postgres/0003_notifications.sql"),
        ),
    ],
    sqlite: &[
        (2, "contracts", include_str!("../migrations/sqlite/0002_contracts.sql")),
        (
            3,
            "notifications",
            include_str!("../migrations/sqlite/0003_notifications.sql"),
        ),
    ],
};

/// The scope contracts calls the identity service with, to invite influencers.
pub const INVITE: &str = notify::send::INVITE;

/// What contracts reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_SEALING_KEY_FILE` (a PKCS#8 PEM file) or `CHORUS_SEALING_KEY` (the PEM): the
    /// Ed25519 key contracts are sealed with. Its public half is served by GetSealingKeys.
    pub sealing_key: Option<SigningKey>,
    /// `CHORUS_IDENTITY_URL`: where invitations are made.
    pub identity_url: String,
    /// `CHORUS_REGISTRY_URL`: where influencers' addresses are read (with their consent).
    pub registry_url: String,
    /// `CHORUS_SMTP_URL` and the rest: send notifications through this mail server.
    pub smtp: Option<SmtpSettings>,
    /// `CHORUS_MAIL_DIR`: without SMTP, write each message to a file there (development);
    /// with neither, notifications are only logged, without links or addresses.
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
        let smtp = smtp_settings(r);
        Config {
            sealing_key,
            identity_url: r.string("CHORUS_IDENTITY_URL", "http://127.0.0.1:50050"),
            registry_url: r.string("CHORUS_REGISTRY_URL", "http://127.0.0.1:50051"),
            smtp,
            mail_dir: r.optional("CHORUS_MAIL_DIR").map(PathBuf::from),
            deadlines: Deadlines {
                remind_before_micros: remind_h * 3_600_000_000,
                sign_within_micros: sign_days * flows::DAY_MICROS,
            },
        }
    }
}

/// `CHORUS_SMTP_URL` (`smtp://host:port`, `?tls=required` for STARTTLS, `smtps://` for TLS;
/// credentials in it as `user:password@`), `CHORUS_SMTP_FROM` (required with it),
/// `CHORUS_SMTP_TIMEOUT_MS` (10000), `CHORUS_SMTP_ATTEMPTS` (3) and
/// `CHORUS_SMTP_RETRY_DELAY_MS` (500, doubling); None without a URL.
fn smtp_settings(r: &mut Reader<'_>) -> Option<SmtpSettings> {
    let url = r.optional_secret("CHORUS_SMTP_URL");
    let from = r.optional_secret("CHORUS_SMTP_FROM").map(|f| f.expose().clone());
    let timeout = r.duration_ms("CHORUS_SMTP_TIMEOUT_MS", 10_000);
    let attempts: u32 = r.parse("CHORUS_SMTP_ATTEMPTS", 3);
    r.check(!(1..=10).contains(&attempts), "CHORUS_SMTP_ATTEMPTS", "from 1 to 10");
    let retry_delay = r.duration_ms("CHORUS_SMTP_RETRY_DELAY_MS", 500);
    let url = url?;
    let mailbox = from.as_deref().map(str::parse::<lettre::message::Mailbox>);
    r.check(
        !matches!(mailbox, Some(Ok(_))),
        "CHORUS_SMTP_FROM",
        "required with CHORUS_SMTP_URL: the sender, such as \"Chorus <no-reply@example.com>\"",
    );
    let settings = SmtpSettings {
        url: url.expose().clone(),
        from: mailbox?.ok()?,
        timeout,
        attempts,
        retry_delay,
    };
    let valid = notify::adapters::Smtp::new(settings.clone());
    r.check(
        valid.is_err(),
        "CHORUS_SMTP_URL",
        "smtp://host:port (?tls=required for STARTTLS) or smtps://host:port",
    );
    Some(settings)
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
        needs: &[INVITE, notify::send::CONTACTS[0], notify::send::CONTACTS[1]],
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
        let own = ctx.clone();
        let notifier: Option<Arc<dyn notify::Notifier>> = match (config.smtp, config.mail_dir) {
            (Some(smtp), _) => Some(Arc::new(
                notify::adapters::Smtp::new(smtp)
                    .map_err(|e| Error::invalid_field("CHORUS_SMTP_URL", e.to_string()))?,
            )),
            (None, Some(dir)) => Some(Arc::new(notify::adapters::Files { dir })),
            (None, None) => None,
        };
        let channel = |url: &str, name: &str| {
            chorus_kit::client::balanced(url, |e| e).map_err(|e| Error::invalid_field(name, e.to_string()))
        };
        let notifications = notify::send::Notifications {
            store: store.clone(),
            notifier,
            identity: channel(&config.identity_url, "CHORUS_IDENTITY_URL")?,
            registry: channel(&config.registry_url, "CHORUS_REGISTRY_URL")?,
            tokens: Arc::new(
                move |scopes: &'static [&'static str]| -> futures::future::BoxFuture<'static, Result<String, Error>> {
                    let own = own.clone();
                    Box::pin(async move { own.service_token(scopes).await })
                },
            ),
        };
        events::declare(parts, store.clone(), config.deadlines, notifications);
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
