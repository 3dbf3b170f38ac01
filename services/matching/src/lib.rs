//! Matching: campaigns and who fits them. A brief is run against an in-memory index of the
//! registry's catalogue (fed by its events, filled at start-up by a streaming read): the
//! candidates come back ranked and explained, and a selection picks the best set within
//! budget, headcount and diversity caps. A library with one entry, [`serve`], that the
//! `chorus-matching` binary and `chorus up` both call.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use chorus_kit::auth::{Authenticate, Jwt};
use chorus_kit::config::{LogFormat, Reader, Secret, ServerConfig, Source};
use chorus_kit::events::Bus;
use chorus_kit::events::outbox::{self, Outbox};
use chorus_kit::server::Host;
use chorus_kit::storage::{Database, Migrations};
use chorus_kit::{Error, telemetry};
use chorus_proto::matching::matching_service_server::{MatchingServiceServer, SERVICE_NAME};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;

use crate::api::{Matching, SharedIndex};
use crate::domain::rank::Settings;
use crate::events::RegistrySource;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (1, "outbox", outbox::MIGRATION_POSTGRES),
        (2, "matching", include_str!("../migrations/postgres/0002_matching.sql")),
    ],
    sqlite: &[
        (1, "outbox", outbox::MIGRATION_SQLITE),
        (2, "matching", include_str!("../migrations/sqlite/0002_matching.sql")),
    ],
};

/// Everything matching reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `DATABASE_URL`: `postgres://...` or `sqlite://path`.
    pub database_url: Secret<String>,
    /// `REDIS_URL`: the event bus; without it events stay in process.
    pub redis_url: Option<Secret<String>>,
    /// `CHORUS_JWT_SECRET`: verifies callers' tokens, and signs matching's own token for the
    /// registry read.
    pub jwt_secret: Secret<String>,
    /// `CHORUS_REGISTRY_URL`: where the catalogue is read from at start-up.
    pub registry_url: String,
    /// `CHORUS_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `CHORUS_MATCHING_CONVERSION_RATE`: share of real engagements expected to convert, for
    /// sales objectives.
    pub conversion_rate: f64,
    /// `CHORUS_LOG_FORMAT`: json (default) or pretty.
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// `CHORUS_METRICS_ADDR`.
    pub metrics_addr: Option<std::net::SocketAddr>,
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
        let config = Config {
            server,
            database_url: database_url.clone().unwrap_or_else(|| Secret::new(String::new())),
            redis_url: r.secret("REDIS_URL"),
            jwt_secret: jwt_secret.clone().unwrap_or_else(|| Secret::new(String::new())),
            registry_url: r.string("CHORUS_REGISTRY_URL", "http://127.0.0.1:50051"),
            db_max_connections: r.parse("CHORUS_DB_MAX_CONNECTIONS", 8),
            conversion_rate: r.parse("CHORUS_MATCHING_CONVERSION_RATE", Settings::default().conversion_rate),
            log_format: r.parse("CHORUS_LOG_FORMAT", LogFormat::Json),
            otlp_endpoint: r.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            metrics_addr,
        };
        let mut missing = chorus_kit::Violations::new();
        missing.check(database_url.is_none(), "DATABASE_URL", "required");
        missing.check(
            jwt_secret.as_ref().is_none_or(|s| s.expose().len() < 16),
            "CHORUS_JWT_SECRET",
            "required, at least 16 characters",
        );
        missing.check(
            !(0.0..=1.0).contains(&config.conversion_rate),
            "CHORUS_MATCHING_CONVERSION_RATE",
            "a fraction from 0 to 1",
        );
        r.finish()?;
        missing.finish()?;
        Ok(config)
    }
}

/// Connects to matching's database and brings its schema up to date.
pub async fn database(config: &Config) -> Result<Database, Error> {
    Database::connect(config.database_url.expose(), &MIGRATIONS, config.db_max_connections).await
}

/// The bus named by the config: Redis Streams when `REDIS_URL` is set, else in process.
pub async fn bus(config: &Config) -> Result<Arc<dyn Bus>, Error> {
    chorus_kit::events::connect(config.redis_url.as_ref()).await
}

/// Serves matching on `listener` until `shutdown` resolves. The index fills in the
/// background; until it has, health is NOT_SERVING and Match and Select answer UNAVAILABLE.
pub async fn serve(
    config: Config,
    db: Database,
    bus: Arc<dyn Bus>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let outbox = Outbox::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let on_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let relay = tokio::spawn(outbox.relay(db.clone(), bus.clone()).run(on_stop(stopped.clone())));
    let store = store::Store::new(db.clone(), outbox);
    let jwt = Arc::new(Jwt::new(&config.jwt_secret));
    let shared = Arc::new(SharedIndex::default());
    let source = RegistrySource {
        url: config.registry_url.clone(),
        jwt: jwt.clone(),
    };
    let feed = tokio::spawn(events::feed(
        shared.clone(),
        store.clone(),
        bus,
        source,
        on_stop(stopped.clone()),
    ));
    let limit = config.server.max_message_bytes;
    let settings = Settings {
        conversion_rate: config.conversion_rate,
    };
    let shared_for_health = shared.clone();
    let service = MatchingServiceServer::new(Matching::new(store, shared, settings))
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut host = Host::new(config.server.clone());
    host.routes()
        .add_service(InterceptedService::new(service, Authenticate::new(jwt)));
    host.serving(SERVICE_NAME);
    let loaded = shared_for_health;
    host.ready_when(async move { loaded.wait_loaded().await });
    let served = host.serve(listener, shutdown).await;
    let _ = stop.send(true);
    match feed.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "index feed ended with an error"),
        Err(e) => tracing::warn!(error = %e, "index feed ended abnormally"),
        Ok(Ok(())) => {}
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
    if config.redis_url.is_none() {
        // On its own, an in-process bus would never hear from the registry: the index would
        // go stale without a word. `chorus up` shares one bus and calls `serve` directly.
        return Err(Error::invalid_field(
            "REDIS_URL",
            "required: the match index follows the registry's events on Redis",
        ));
    }
    telemetry::init("matching", config.log_format, config.otlp_endpoint.as_deref())?;
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
