//! Webhooks: a tenant's events POSTed to the endpoints it subscribed, signed the Standard
//! Webhooks way, retried on their schedule, then the endpoint disabled with its failures
//! listed. It consumes every topic that carries a tenant's events ([`catalog::TOPICS`]), turns
//! each event into one delivery per subscribed endpoint ([`store::Store::enqueue`]), and a
//! worker sends what is due ([`deliver`]) past an SSRF guard ([`guard`]). A service of the
//! kit's runtime: its binary and `chorus up` both run [`SERVICE`].

pub mod api;
pub mod catalog;
pub mod deliver;
pub mod guard;
pub mod rules;
pub mod signing;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_kit::clock::Clock;
use chorus_kit::config::Reader;
use chorus_kit::events::event_type;
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::tuned;
use chorus_proto::event::Envelope;
use chorus_proto::webhooks::webhooks_service_server::WebhooksServiceServer;
use ipnet::IpNet;
use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::deliver::Worker;
use crate::guard::Policy;
use crate::rules::Rules;
use crate::store::Store;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[(2, "webhooks", include_str!("../migrations/postgres/0002_webhooks.sql"))],
    sqlite: &[(2, "webhooks", include_str!("../migrations/sqlite/0002_webhooks.sql"))],
};

/// What webhooks reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_WEBHOOKS_ALLOW_PRIVATE` (`1`): deliveries may reach private, loopback and
    /// link-local addresses (tests; endpoints inside the operator's own network). Off.
    pub allow_private: bool,
    /// `CHORUS_WEBHOOKS_ALLOWED_CIDRS`: prefixes allowed although not public (`10.8.0.0/16`).
    pub allowed: Vec<IpNet>,
    /// `CHORUS_WEBHOOKS_HTTP_HOSTS`: hosts an `http://` endpoint may name; others need https.
    pub http_hosts: Vec<String>,
    /// `CHORUS_WEBHOOKS_TIMEOUT_MS` (15,000; 100..60,000): an attempt with no answer by then
    /// failed.
    pub timeout: Duration,
    /// `CHORUS_WEBHOOKS_DISABLE_AFTER_HOURS` (120, five days; 0..720): an endpoint whose
    /// delivery ran out of retries is disabled when it has failed without a success this long.
    pub disable_after: Duration,
    /// `CHORUS_WEBHOOKS_CONCURRENCY` (16; 1..256): attempts in flight per process.
    pub concurrency: usize,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let allow_private = match r.optional("CHORUS_WEBHOOKS_ALLOW_PRIVATE").as_deref() {
            None | Some("" | "0" | "false") => false,
            Some("1" | "true") => true,
            Some(_) => {
                r.check(true, "CHORUS_WEBHOOKS_ALLOW_PRIVATE", "1 or 0");
                false
            }
        };
        let cidrs = r.string("CHORUS_WEBHOOKS_ALLOWED_CIDRS", "");
        let allowed = Policy::parse_cidrs(&cidrs).unwrap_or_else(|why| {
            r.check(true, "CHORUS_WEBHOOKS_ALLOWED_CIDRS", why);
            Vec::new()
        });
        let http_hosts = r
            .string("CHORUS_WEBHOOKS_HTTP_HOSTS", "")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let timeout_ms: u64 = r.parse("CHORUS_WEBHOOKS_TIMEOUT_MS", 15_000);
        r.check(
            !(100..=60_000).contains(&timeout_ms),
            "CHORUS_WEBHOOKS_TIMEOUT_MS",
            "from 100 to 60000",
        );
        let hours: u64 = r.parse("CHORUS_WEBHOOKS_DISABLE_AFTER_HOURS", 120);
        r.check(hours > 720, "CHORUS_WEBHOOKS_DISABLE_AFTER_HOURS", "from 0 to 720");
        let concurrency: usize = r.parse("CHORUS_WEBHOOKS_CONCURRENCY", 16);
        r.check(
            !(1..=256).contains(&concurrency),
            "CHORUS_WEBHOOKS_CONCURRENCY",
            "from 1 to 256",
        );
        Config {
            allow_private,
            allowed,
            http_hosts,
            timeout: Duration::from_millis(timeout_ms),
            disable_after: Duration::from_secs(hours * 3600),
            concurrency,
        }
    }
}

/// Webhooks, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Webhooks;

/// Webhooks' declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Webhooks>();

impl chorus_kit::runtime::Service for Webhooks {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "webhooks",
        port: 50057,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: catalog::TOPICS,
        db_connections: 8,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let catalog = Arc::new(Catalog::load()?);
        let policy = Arc::new(Policy {
            allow_private: config.allow_private,
            allowed: config.allowed.clone(),
        });
        let store = Store::new(ctx.db.clone());
        let wake = Arc::new(Notify::new());
        for topic in catalog::TOPICS {
            let (store, catalog, clock, wake) = (store.clone(), catalog.clone(), ctx.clock.clone(), wake.clone());
            parts.consume(topic, "webhooks", Default::default(), move |envelope| {
                let (store, catalog, clock, wake) = (store.clone(), catalog.clone(), clock.clone(), wake.clone());
                async move {
                    if intake(&store, &catalog, &clock, &envelope).await? > 0 {
                        wake.notify_one();
                    }
                    Ok(())
                }
            });
        }
        let worker = Worker::new(
            store.clone(),
            ctx.clock.clone(),
            policy.clone(),
            config.timeout,
            config.disable_after,
            config.concurrency,
            wake.clone(),
        )?;
        parts.task("webhook-deliveries", move |stop| worker.run(stop));
        let rules = Rules {
            http_hosts: config.http_hosts,
            policy,
            catalog,
        };
        parts.grpc(tuned!(
            WebhooksServiceServer::new(api::Webhooks::new(store, ctx.clock.clone(), rules, wake)),
            ctx
        ));
        Ok(())
    }
}

/// One delivery of `envelope` per endpoint of its tenant subscribed to its type; nothing for
/// an event without a tenant or of a type partners do not see. How many deliveries.
async fn intake(store: &Store, catalog: &Catalog, clock: &Clock, envelope: &Envelope) -> Result<u64, Error> {
    let kind = event_type(envelope);
    if envelope.tenant.is_empty() || !catalog.knows(kind) || !store.listens(&envelope.tenant).await? {
        return Ok(0);
    }
    let body = catalog.body(kind, envelope)?;
    store
        .enqueue(&envelope.tenant, &envelope.id, kind, &body, clock.now_micros())
        .await
}
