//! The registry: the influencer catalogue. Profiles with their social accounts, metrics
//! snapshots and follower history, with engagement and tier derived at read time. A library
//! with one entry, [`serve`], that the `chorus-registry` binary and `chorus up` both call.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use chorus_kit::auth::{Authenticate, Jwt};
use chorus_kit::config::{LogFormat, Reader, Secret, ServerConfig, Source};
use chorus_kit::events::outbox::{self, Outbox};
use chorus_kit::events::{Bus, Consumer, SubscribeOptions};
use chorus_kit::server::Host;
use chorus_kit::storage::{Database, Migrations};
use chorus_kit::{Error, telemetry};
use chorus_proto::registry::registry_service_server::{RegistryServiceServer, SERVICE_NAME};
use chorus_proto::registry::vetting_service_server::{SERVICE_NAME as VETTING_SERVICE_NAME, VettingServiceServer};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;

use crate::api::vetting::SampleLimits;
use crate::domain::tier::TierTable;
use crate::domain::vetting::report::{MIN_AUDIENCE_SAMPLE, Thresholds};

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (1, "outbox", outbox::MIGRATION_POSTGRES),
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
    ],
    sqlite: &[
        (1, "outbox", outbox::MIGRATION_SQLITE),
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
    ],
};

/// Everything the registry reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `DATABASE_URL`: `postgres://...` or `sqlite://path`.
    pub database_url: Secret<String>,
    /// `REDIS_URL`: the event bus; without it events stay in process.
    pub redis_url: Option<Secret<String>>,
    /// `CHORUS_JWT_SECRET`: verifies callers' tokens.
    pub jwt_secret: Secret<String>,
    /// `CHORUS_TIER_BOUNDARIES`: e.g. `nano=1000,micro=10000,mid=100000,macro=250000,mega=1000000`.
    pub tiers: TierTable,
    /// `CHORUS_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `CHORUS_READ_CACHE_ENTRIES`: profiles kept in memory for Get (0 turns the cache off).
    pub read_cache_entries: usize,
    /// `CHORUS_LOG_FORMAT`: json (default) or pretty.
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: where spans go, when set.
    pub otlp_endpoint: Option<String>,
    /// `CHORUS_METRICS_ADDR`: Prometheus metrics listener, when set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `CHORUS_VETTING_OK_AT`, `_REJECT_BELOW`, `_MIN_COVERAGE`, `_FAKE_SHARE_FLAG`,
    /// `_POD_ENGAGEMENT_MULTIPLE`: how reports turn scores into verdicts and flags;
    /// `_FAKE_PRIOR`: the share of fakes the classifier's decisions expect in a follower sample.
    pub vetting: Thresholds,
    /// `CHORUS_VETTING_MAX_AUDIENCE_SAMPLE`, `CHORUS_VETTING_MAX_COMMENT_SAMPLE`.
    pub samples: SampleLimits,
}

impl Config {
    pub fn read(source: &Source) -> Result<Self, Error> {
        let mut r = Reader::new(source);
        let server = ServerConfig::read(&mut r);
        let database_url = r.secret("DATABASE_URL");
        let jwt_secret = r.secret("CHORUS_JWT_SECRET");
        let metrics_addr = r
            .optional("CHORUS_METRICS_ADDR")
            .map(|_| r.addr("CHORUS_METRICS_ADDR", "0.0.0.0:9090"));
        let defaults = Thresholds::default();
        let config = Config {
            server,
            database_url: database_url.clone().unwrap_or_else(|| Secret::new(String::new())),
            redis_url: r.secret("REDIS_URL"),
            jwt_secret: jwt_secret.clone().unwrap_or_else(|| Secret::new(String::new())),
            tiers: r.parse("CHORUS_TIER_BOUNDARIES", TierTable::default()),
            db_max_connections: r.parse("CHORUS_DB_MAX_CONNECTIONS", 16),
            read_cache_entries: r.parse("CHORUS_READ_CACHE_ENTRIES", 50_000),
            log_format: r.parse("CHORUS_LOG_FORMAT", LogFormat::Json),
            otlp_endpoint: r.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            metrics_addr,
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
        let mut missing = chorus_kit::Violations::new();
        missing.check(database_url.is_none(), "DATABASE_URL", "required");
        missing.check(
            jwt_secret.as_ref().is_none_or(|s| s.expose().len() < 16),
            "CHORUS_JWT_SECRET",
            "required, at least 16 characters",
        );
        if let Err(why) = config.vetting.check() {
            missing.add("CHORUS_VETTING_OK_AT", why);
        }
        missing.check(
            config.samples.max_audience < MIN_AUDIENCE_SAMPLE as usize,
            "CHORUS_VETTING_MAX_AUDIENCE_SAMPLE",
            format!("at least {MIN_AUDIENCE_SAMPLE}"),
        );
        missing.check(
            config.samples.max_comments == 0,
            "CHORUS_VETTING_MAX_COMMENT_SAMPLE",
            "at least 1",
        );
        r.finish()?;
        missing.finish()?;
        Ok(config)
    }
}

/// Connects to the registry's database and brings its schema up to date.
pub async fn database(config: &Config) -> Result<Database, Error> {
    Database::connect(config.database_url.expose(), &MIGRATIONS, config.db_max_connections).await
}

/// The bus named by the config: Redis Streams when `REDIS_URL` is set, else in process.
pub async fn bus(config: &Config) -> Result<Arc<dyn Bus>, Error> {
    chorus_kit::events::connect(config.redis_url.as_ref()).await
}

/// Serves the registry on `listener` until `shutdown` resolves, then drains calls and flushes
/// the outbox.
pub async fn serve(
    config: Config,
    db: Database,
    bus: Arc<dyn Bus>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let outbox = Outbox::new();
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let bus_for_cache = bus.clone();
    let relay = tokio::spawn(outbox.relay(db.clone(), bus).run(async {
        let _ = relay_stopped.await;
    }));
    let store =
        store::Store::new(db.clone(), outbox, config.tiers, config.read_cache_entries).with_vetting(config.vetting);
    // Other replicas' writes reach this replica's read cache as events: a consumer group of
    // its own, from now on.
    let (stop_evictions, evictions_stopped) = tokio::sync::oneshot::channel::<()>();
    // Joined before serving, so no write made once this replica answers can be missed.
    let evictions = if config.read_cache_entries > 0 {
        let store = store.clone();
        let group = chorus_kit::events::process_group("registry-cache");
        let options = SubscribeOptions {
            start_at_end: true,
            delete_group_on_exit: true,
            ..Default::default()
        };
        let consumer = Consumer::join(bus_for_cache, events::TOPIC, &group, "cache", options).await?;
        Some(tokio::spawn(async move {
            let consumed = consumer
                .run(
                    move |envelope| {
                        if let Some(id) = events::influencer_id(&envelope) {
                            store.evict(&id);
                        }
                        async { Ok(()) }
                    },
                    async {
                        let _ = evictions_stopped.await;
                    },
                )
                .await;
            if let Err(e) = consumed {
                tracing::warn!(error = %e, "read cache invalidation stopped");
            }
        }))
    } else {
        None
    };
    let jwt = Arc::new(Jwt::new(&config.jwt_secret));
    let limit = config.server.max_message_bytes;
    let vetting = VettingServiceServer::new(api::vetting::Vetting::new(store.clone(), config.samples))
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let service = RegistryServiceServer::new(api::Registry::new(store))
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut host = Host::new(config.server.clone());
    host.routes()
        .add_service(InterceptedService::new(service, Authenticate::new(jwt.clone())))
        .add_service(InterceptedService::new(vetting, Authenticate::new(jwt)));
    host.serving(SERVICE_NAME);
    host.serving(VETTING_SERVICE_NAME);
    let served = host.serve(listener, shutdown).await;
    let _ = stop_relay.send(());
    let _ = stop_evictions.send(());
    if let Some(task) = evictions {
        let _ = task.await;
    }
    if let Err(e) = relay.await {
        tracing::warn!(error = %e, "outbox relay ended abnormally");
    }
    db.close().await;
    served
}

/// The standalone binary's main: configuration from the environment, logs, metrics, serve.
pub async fn main_from_env() -> Result<(), Error> {
    let config = Config::read(&Source::from_env()?)?;
    telemetry::init("registry", config.log_format, config.otlp_endpoint.as_deref())?;
    if let Some(addr) = config.metrics_addr {
        telemetry::serve_metrics(addr)?;
    }
    let db = database(&config).await?;
    let bus = bus(&config).await?;
    let (listener, _) = chorus_kit::server::bind(config.server.grpc_addr).await?;
    let served = serve(config, db, bus, listener, chorus_kit::server::shutdown_signal()).await;
    telemetry::shutdown();
    served
}
