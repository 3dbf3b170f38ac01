//! The registry: the influencer catalogue. Profiles with their social accounts, metrics
//! snapshots and follower history, with engagement and tier derived at read time. A service of
//! the kit's runtime ([`Registry`]): its binary and `chorus up` both run [`SERVICE`].

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use chorus_kit::config::Reader;
use chorus_kit::events::SubscribeOptions;
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, tuned};
use chorus_proto::registry::registry_service_server::RegistryServiceServer;
use chorus_proto::registry::vetting_service_server::VettingServiceServer;

use crate::api::vetting::SampleLimits;
use crate::domain::tier::TierTable;
use crate::domain::vetting::report::{MIN_AUDIENCE_SAMPLE, Thresholds};

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (2, "registry", include_str!("../migrations/postgres/0002_registry.sql")),
        (
            3,
            "accounts by key",
            include_str!("../migrations/postgres/0003_accounts_by_key.sql"),
        ),
        (4, "vetting", include_str!("../migrations/postgres/0004_vetting.sql")),
        (
            5,
            "list covering indexes",
            include_str!("../migrations/postgres/0005_list_covering_indexes.sql"),
        ),
        (
            6,
            "one snapshot per account and moment",
            include_str!("../migrations/postgres/0006_snapshot_moment.sql"),
        ),
        (
            7,
            "how audience samples were classified",
            include_str!("../migrations/postgres/0007_audience_decision.sql"),
        ),
        (
            8,
            "request ids kept by the kit",
            include_str!("../migrations/postgres/0008_kit_idempotency.sql"),
        ),
    ],
    sqlite: &[
        (2, "registry", include_str!("../migrations/sqlite/0002_registry.sql")),
        (
            3,
            "accounts by key",
            include_str!("../migrations/sqlite/0003_accounts_by_key.sql"),
        ),
        (4, "vetting", include_str!("../migrations/sqlite/0004_vetting.sql")),
        (
            5,
            "list covering indexes",
            include_str!("../migrations/sqlite/0005_list_covering_indexes.sql"),
        ),
        (
            6,
            "one snapshot per account and moment",
            include_str!("../migrations/sqlite/0006_snapshot_moment.sql"),
        ),
        (
            7,
            "how audience samples were classified",
            include_str!("../migrations/sqlite/0007_audience_decision.sql"),
        ),
        (
            8,
            "request ids kept by the kit",
            include_str!("../migrations/sqlite/0008_kit_idempotency.sql"),
        ),
    ],
};

/// What the registry reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_TIER_BOUNDARIES`: e.g. `nano=1000,micro=10000,mid=100000,macro=250000,mega=1000000`.
    pub tiers: TierTable,
    /// `CHORUS_READ_CACHE_ENTRIES`: profiles kept in memory for Get (0 turns the cache off).
    pub read_cache_entries: usize,
    /// `CHORUS_VETTING_OK_AT`, `_REJECT_BELOW`, `_MIN_COVERAGE`, `_FAKE_SHARE_FLAG`,
    /// `_POD_ENGAGEMENT_MULTIPLE`: how reports turn scores into verdicts and flags;
    /// `_FAKE_PRIOR`: the share of fakes the classifier's decisions expect in a follower sample.
    pub vetting: Thresholds,
    /// `CHORUS_VETTING_MAX_AUDIENCE_SAMPLE`, `CHORUS_VETTING_MAX_COMMENT_SAMPLE`.
    pub samples: SampleLimits,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let defaults = Thresholds::default();
        let config = Config {
            tiers: r.parse("CHORUS_TIER_BOUNDARIES", TierTable::default()),
            read_cache_entries: r.parse("CHORUS_READ_CACHE_ENTRIES", 50_000),
            vetting: Thresholds {
                ok_at: r.parse("CHORUS_VETTING_OK_AT", defaults.ok_at),
                reject_below: r.parse("CHORUS_VETTING_REJECT_BELOW", defaults.reject_below),
                min_coverage: r.parse("CHORUS_VETTING_MIN_COVERAGE", defaults.min_coverage),
                fake_share_flag: r.parse("CHORUS_VETTING_FAKE_SHARE_FLAG", defaults.fake_share_flag),
                pod_engagement_multiple: r.parse(
                    "CHORUS_VETTING_POD_ENGAGEMENT_MULTIPLE",
                    defaults.pod_engagement_multiple,
                ),
                fake_prior: r.parse("CHORUS_VETTING_FAKE_PRIOR", defaults.fake_prior),
            },
            samples: SampleLimits {
                max_audience: r.parse(
                    "CHORUS_VETTING_MAX_AUDIENCE_SAMPLE",
                    SampleLimits::default().max_audience,
                ),
                max_comments: r.parse(
                    "CHORUS_VETTING_MAX_COMMENT_SAMPLE",
                    SampleLimits::default().max_comments,
                ),
            },
        };
        if let Err(why) = config.vetting.check() {
            r.check(true, "CHORUS_VETTING_OK_AT", why);
        }
        r.check(
            config.samples.max_audience < MIN_AUDIENCE_SAMPLE as usize,
            "CHORUS_VETTING_MAX_AUDIENCE_SAMPLE",
            format!("at least {MIN_AUDIENCE_SAMPLE}"),
        );
        r.check(
            config.samples.max_comments == 0,
            "CHORUS_VETTING_MAX_COMMENT_SAMPLE",
            "at least 1",
        );
        config
    }
}

/// The registry, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Registry;

/// The registry's declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Registry>();

impl chorus_kit::runtime::Service for Registry {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "registry",
        port: 50051,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[],
        db_connections: 16,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let store = store::Store::new(
            ctx.db.clone(),
            ctx.outbox.clone(),
            ctx.clock.clone(),
            config.tiers,
            config.read_cache_entries,
        )
        .with_vetting(config.vetting);
        if config.read_cache_entries > 0 {
            // Other replicas' writes reach this replica's read cache as events, in a consumer
            // group of its own from now on, joined before the registry serves.
            let store = store.clone();
            let options = SubscribeOptions {
                start_at_end: true,
                delete_group_on_exit: true,
                ..Default::default()
            };
            parts.consume(
                events::TOPIC,
                chorus_kit::events::process_group("registry-cache"),
                options,
                move |envelope| {
                    if let Some(id) = events::influencer_id(&envelope) {
                        store.evict(&id);
                    }
                    async { Ok(()) }
                },
            );
        }
        parts
            .grpc(tuned!(
                RegistryServiceServer::new(api::Registry::new(store.clone(), ctx.idempotency.clone())),
                ctx
            ))
            .grpc(tuned!(
                VettingServiceServer::new(api::vetting::Vetting::new(
                    store,
                    config.samples,
                    ctx.idempotency.clone()
                )),
                ctx
            ));
        Ok(())
    }
}
