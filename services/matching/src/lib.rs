//! Matching: campaigns and who fits them. A brief is run against an in-memory index of the
//! registry's catalogue (fed by its events, filled at start-up by a streaming read): the
//! candidates come back ranked and explained, and a selection picks the best set within
//! budget, headcount and diversity caps. A service of the kit's runtime ([`Matching`]): its
//! binary and `chorus up` both run [`SERVICE`].

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use std::sync::Arc;

use chorus_kit::config::Reader;
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, tuned};
use chorus_proto::matching::matching_service_server::MatchingServiceServer;

use crate::api::SharedIndex;
use crate::domain::rank::Settings;
use crate::events::RegistrySource;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (2, "matching", include_str!("../migrations/postgres/0002_matching.sql")),
        (
            3,
            "request ids kept by the kit",
            include_str!("../migrations/postgres/0003_kit_idempotency.sql"),
        ),
    ],
    sqlite: &[
        (2, "matching", include_str!("../migrations/sqlite/0002_matching.sql")),
        (
            3,
            "request ids kept by the kit",
            include_str!("../migrations/sqlite/0003_kit_idempotency.sql"),
        ),
    ],
};

/// What matching reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_REGISTRY_URL`: where the catalogue is read from at start-up.
    pub registry_url: String,
    /// `CHORUS_MATCHING_CONVERSION_RATE`: share of real engagements expected to convert, for
    /// sales objectives.
    pub conversion_rate: f64,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let config = Config {
            registry_url: r.string("CHORUS_REGISTRY_URL", "http://127.0.0.1:50051"),
            conversion_rate: r.parse("CHORUS_MATCHING_CONVERSION_RATE", Settings::default().conversion_rate),
        };
        r.check(
            !(0.0..=1.0).contains(&config.conversion_rate),
            "CHORUS_MATCHING_CONVERSION_RATE",
            "a fraction from 0 to 1",
        );
        config
    }
}

/// Matching, as the kit's runtime runs it. Until its index has read the catalogue, health is
/// NOT_SERVING and Match and Select answer UNAVAILABLE.
#[derive(Debug)]
pub struct Matching;

/// Matching's declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Matching>();

impl chorus_kit::runtime::Service for Matching {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "matching",
        port: 50052,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[events::REGISTRY_TOPIC, events::CONTRACTS_TOPIC],
        db_connections: 8,
        // The start-up read of the catalogue, under matching's own identity.
        needs: &["registry.read"],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let store = store::Store::new(ctx.db.clone(), ctx.outbox.clone(), ctx.clock.clone());
        let shared = Arc::new(SharedIndex::default());
        let identity = ctx.clone();
        let source = RegistrySource {
            url: config.registry_url,
            token: Arc::new(move || {
                let identity = identity.clone();
                Box::pin(async move { identity.service_token(&["registry.read"]).await })
            }),
        };
        events::feed(parts, shared.clone(), store.clone(), source);
        events::exclusivity_feed(parts, shared.clone(), store.clone());
        let settings = Settings {
            conversion_rate: config.conversion_rate,
        };
        let loaded = shared.clone();
        parts
            .grpc(tuned!(
                MatchingServiceServer::new(api::Matching::new(store, shared, settings, ctx.idempotency.clone())),
                ctx
            ))
            .ready_when(async move { loaded.wait_loaded().await });
        Ok(())
    }
}
