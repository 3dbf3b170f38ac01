//! The service runtime. A service declares what it is ([`Service`]: its name, port, migrations,
//! scopes and the topics it reads; then, given a [`Context`], its gRPC services, consumers,
//! background tasks and readiness gate in [`Parts`]) and the kit does the rest: configuration,
//! the database and its migrations, the bus, caller authentication, the outbox relay, durable
//! timers, idempotency-key retention, consumer groups, health and reflection, telemetry, and a
//! graceful shutdown that stops and awaits every task it started.
//!
//! Three ways in, one code path ([`launch`]): a service's binary ([`main`]), `chorus up`
//! ([`Node`], every service in one process on SQLite files and one in-process bus), and the
//! test kit (a service on a fresh database per test).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chorus_proto::admin::clock_service_server::ClockServiceServer;
use chorus_proto::admin::event_admin_service_server::EventAdminServiceServer;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::server::NamedService;

use crate::auth::{Authenticated, KeySource, TokenSource, Verifier};
use crate::clock::Clock;
use crate::clock::admin::ClockAdmin;
use crate::config::{LogFormat, Reader, Secret, ServerConfig, Source};
use crate::error::Error;
use crate::events::admin::{EventAdmin, Handler, SharedHandler};
use crate::events::dead_letters::{DeadLetters, Retries};
use crate::events::outbox::{Outbox, Relay};
use crate::events::{Bus, Consumer, HandlerResult, SubscribeOptions};
use crate::idempotency::Idempotency;
use crate::server::Host;
use crate::storage::{Database, Migrations};
use crate::timers::Timers;

/// Scopes the kit's own services check on every port (the EventAdminService's
/// `admin.events`, the ClockService's `admin.clock`), beside each service's [`Spec::scopes`];
/// `chorus up`'s dev token holds them.
pub const KIT_SCOPES: &[&str] = &[crate::events::admin::SCOPE, crate::clock::admin::SCOPE];

/// The static facts of a service.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Short name: "registry". Names its topic (`chorus.registry`), its telemetry and, in
    /// `chorus up`, its database file and `CHORUS_<NAME>_URL` for the others.
    pub name: &'static str,
    /// Where it listens by default (`chorus up`; `CHORUS_GRPC_ADDR` in a cluster).
    pub port: u16,
    /// Its own migrations, one list per engine; the kit adds its tables (outbox, inbox,
    /// idempotency keys, timers) to every service.
    pub migrations: &'static Migrations,
    /// Every scope its handlers check, for tokens that may do anything (`chorus up`'s dev token).
    pub scopes: &'static [&'static str],
    /// Other services' topics it consumes. A service that consumes any cannot run alone on an
    /// in-process bus: it would never hear from them.
    pub consumes: &'static [&'static str],
    /// Database connections by default (`CHORUS_DB_MAX_CONNECTIONS`).
    pub db_connections: u32,
    /// The scopes it calls other services with, under its own identity (matching reads the
    /// registry: `registry.read`). A service that needs any must have client credentials.
    pub needs: &'static [&'static str],
    /// It issues the tokens the others verify (the identity service): it verifies with its own
    /// keys and needs no `CHORUS_IDENTITY_URL` or `CHORUS_JWKS`.
    pub issues_tokens: bool,
}

impl Spec {
    /// Connects to the service's database at `url` and brings its schema up to date: the
    /// kit's tables and the service's own.
    pub async fn connect(&self, url: &str, max_connections: u32) -> Result<Database, Error> {
        Database::connect(
            url,
            &[&crate::storage::KIT_MIGRATIONS, self.migrations],
            max_connections,
        )
        .await
    }

    /// The topic this service publishes its events on: one per source service, so they keep
    /// their order.
    pub fn topic(&self) -> String {
        format!("chorus.{}", self.name)
    }
}

/// A service, as the runtime runs it.
pub trait Service: Send + Sync + 'static {
    /// What the service reads from its environment beyond the kit's settings.
    type Config: Send + 'static;

    const SPEC: Spec;

    /// Reads the service's own settings; every bad value goes into `r`, so start-up names
    /// them all at once, with the kit's.
    fn configure(r: &mut Reader<'_>) -> Self::Config;

    /// Builds the service's parts on the connected context: its gRPC services, consumers,
    /// tasks and readiness gate.
    fn start<'a>(
        config: Self::Config,
        ctx: &'a Context,
        parts: &'a mut Parts,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;
}

type Configure = fn(&mut Reader<'_>) -> Box<dyn Any + Send>;
type Start = for<'a> fn(Box<dyn Any + Send>, &'a Context, &'a mut Parts) -> BoxFuture<'a, Result<(), Error>>;

/// A [`Service`] with its type erased, so `chorus up` can hold a list of them.
#[derive(Clone, Copy)]
pub struct Declared {
    pub spec: Spec,
    configure: Configure,
    start: Start,
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// The declaration of `S`, for its binary and for `chorus up`'s list.
pub const fn declare<S: Service>() -> Declared {
    Declared {
        spec: S::SPEC,
        configure: configure_erased::<S>,
        start: start_erased::<S>,
    }
}

fn configure_erased<S: Service>(r: &mut Reader<'_>) -> Box<dyn Any + Send> {
    Box::new(S::configure(r))
}

fn start_erased<'a, S: Service>(
    config: Box<dyn Any + Send>,
    ctx: &'a Context,
    parts: &'a mut Parts,
) -> BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move {
        let config = config
            .downcast::<S::Config>()
            .map_err(|_| Error::new(crate::ErrorCode::Internal, "service config of another type"))?;
        S::start(*config, ctx, parts).await
    })
}

/// What the kit reads for every service.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerConfig,
    /// `DATABASE_URL`: `postgres://...` or `sqlite://path`.
    pub database_url: Secret<String>,
    /// `REDIS_URL`: the event bus; without it events stay in process.
    pub redis_url: Option<Secret<String>>,
    /// Where the issuer's public keys come from: `CHORUS_JWKS` (a JWKS document) or the
    /// identity service at `CHORUS_IDENTITY_URL`.
    pub keys: Option<KeySource>,
    /// `CHORUS_IDENTITY_URL`: the token issuer, for the keys and for the service's own tokens.
    pub identity_url: Option<String>,
    /// `CHORUS_CLIENT_ID` (the service's name by default) and `CHORUS_CLIENT_SECRET`: the
    /// service's own identity for the calls it makes.
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    /// `CHORUS_TOKEN_MAX_LIFETIME_S`: tokens living longer than this are refused (24 h).
    pub token_max_lifetime: Duration,
    /// `CHORUS_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `CHORUS_IDEMPOTENCY_RETENTION_HOURS`: how long a request id's first answer is kept
    /// (24 by default, as Stripe keeps its keys).
    pub idempotency_retention: Duration,
    /// `CHORUS_LOG_FORMAT`: json (default) or pretty.
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: where spans go, when set.
    pub otlp_endpoint: Option<String>,
    /// `CHORUS_METRICS_ADDR`: Prometheus metrics listener, when set.
    pub metrics_addr: Option<SocketAddr>,
    /// `CHORUS_EVENT_MAX_ATTEMPTS`: how often a consumer runs a failing handler on one event
    /// (the first time included) before it sets the event aside as a dead letter (5).
    pub event_max_attempts: u32,
    /// `CHORUS_EVENT_RETRY_DELAY_MS`: the wait before an event's second attempt; it doubles
    /// for each attempt after, up to the subscription's reclaim period (1000).
    pub event_retry_delay: Duration,
    /// `CHORUS_EVENT_METRICS_INTERVAL_MS`: how often the outbox depth, consumer lag and dead
    /// letter gauges are measured (5000).
    pub event_metrics_interval: Duration,
}

impl Settings {
    /// Reads the kit's settings; `spec` gives the defaults that differ per service.
    pub fn read(r: &mut Reader<'_>, spec: &Spec) -> Self {
        let server = ServerConfig::read(r);
        let database_url = r.secret("DATABASE_URL");
        let identity_url = r.optional("CHORUS_IDENTITY_URL");
        let jwks = match r.optional("CHORUS_JWKS") {
            Some(json) => match crate::auth::verify::parse_jwks(&json) {
                Ok(keys) => Some(keys),
                Err(e) => {
                    r.check(true, "CHORUS_JWKS", e.message().to_owned());
                    None
                }
            },
            None => None,
        };
        let keys = match (jwks, &identity_url) {
            (Some(keys), _) => Some(KeySource::Static(keys)),
            (None, Some(url)) => Some(KeySource::Identity(url.clone())),
            (None, None) => None,
        };
        r.check(
            keys.is_none() && !spec.issues_tokens,
            "CHORUS_IDENTITY_URL",
            "required (or CHORUS_JWKS): where the token issuer's public keys come from",
        );
        let client_secret = r.secret("CHORUS_CLIENT_SECRET");
        r.check(
            !spec.needs.is_empty() && (client_secret.is_none() || identity_url.is_none()),
            "CHORUS_CLIENT_SECRET",
            format!(
                "required with CHORUS_IDENTITY_URL: {} calls other services with its own identity ({})",
                spec.name,
                spec.needs.join(", ")
            ),
        );
        let max_lifetime_s: u64 = r.parse(
            "CHORUS_TOKEN_MAX_LIFETIME_S",
            crate::auth::DEFAULT_MAX_LIFETIME.as_secs(),
        );
        r.check(max_lifetime_s == 0, "CHORUS_TOKEN_MAX_LIFETIME_S", "at least 1");
        let retention_hours: u64 = r.parse("CHORUS_IDEMPOTENCY_RETENTION_HOURS", 24);
        r.check(
            retention_hours == 0,
            "CHORUS_IDEMPOTENCY_RETENTION_HOURS",
            "at least 1 (Stripe keeps keys 24 hours)",
        );
        let metrics_addr = r
            .optional("CHORUS_METRICS_ADDR")
            .map(|_| r.addr("CHORUS_METRICS_ADDR", "0.0.0.0:9090"));
        let event_max_attempts: u32 = r.parse("CHORUS_EVENT_MAX_ATTEMPTS", 5);
        r.check(event_max_attempts == 0, "CHORUS_EVENT_MAX_ATTEMPTS", "at least 1");
        let event_metrics_interval = r.duration_ms("CHORUS_EVENT_METRICS_INTERVAL_MS", 5000);
        r.check(
            event_metrics_interval.is_zero(),
            "CHORUS_EVENT_METRICS_INTERVAL_MS",
            "at least 1",
        );
        Settings {
            server,
            database_url: database_url.unwrap_or_else(|| Secret::new(String::new())),
            redis_url: r.secret("REDIS_URL"),
            keys,
            identity_url,
            client_id: r.string("CHORUS_CLIENT_ID", spec.name),
            client_secret,
            token_max_lifetime: Duration::from_secs(max_lifetime_s),
            db_max_connections: r.parse("CHORUS_DB_MAX_CONNECTIONS", spec.db_connections),
            idempotency_retention: Duration::from_secs(retention_hours.saturating_mul(3600)),
            log_format: r.parse("CHORUS_LOG_FORMAT", LogFormat::Json),
            otlp_endpoint: r.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            metrics_addr,
            event_max_attempts,
            event_retry_delay: r.duration_ms("CHORUS_EVENT_RETRY_DELAY_MS", 1000),
            event_metrics_interval,
        }
    }
}

/// Reads and checks the kit's and the service's settings together.
fn configure(decl: &Declared, source: &Source) -> Result<(Settings, Box<dyn Any + Send>), Error> {
    let mut r = Reader::new(source);
    let settings = Settings::read(&mut r, &decl.spec);
    let config = (decl.configure)(&mut r);
    r.finish()?;
    Ok((settings, config))
}

/// What a process shares between the services it runs: the bus and the clock.
#[derive(Debug, Clone)]
pub struct Shared {
    pub bus: Arc<dyn Bus>,
    pub clock: Clock,
}

/// What a service is given to build itself.
#[derive(Debug, Clone)]
pub struct Context {
    pub spec: Spec,
    pub db: Database,
    pub bus: Arc<dyn Bus>,
    /// Where the service's writes put their events (in the write's transaction).
    pub outbox: Outbox,
    pub clock: Clock,
    /// Request-id answers, kept for the retention period.
    pub idempotency: Idempotency,
    /// "At T, publish E", durable across restarts.
    pub timers: Timers,
    pub server: ServerConfig,
    /// Verifies callers' tokens.
    pub verifier: Arc<Verifier>,
    /// The longest a token may live (`CHORUS_TOKEN_MAX_LIFETIME_S`).
    pub token_max_lifetime: Duration,
    tokens: Option<Arc<TokenSource>>,
}

impl Context {
    /// The largest message the service sends or accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.server.max_message_bytes
    }

    /// A token of this service's own identity holding `scopes` (among those its spec
    /// `needs`), for its calls to another service; cached while it is fresh.
    pub async fn service_token(&self, scopes: &[&str]) -> Result<String, Error> {
        if let Some(s) = scopes.iter().find(|s| !self.spec.needs.contains(s)) {
            return Err(Error::new(
                crate::ErrorCode::Internal,
                format!(
                    "{} asked for scope {s}, which its spec does not list in `needs`",
                    self.spec.name
                ),
            ));
        }
        match &self.tokens {
            Some(t) => t.token(scopes).await,
            None => Err(Error::new(
                crate::ErrorCode::FailedPrecondition,
                format!("{} has no client credentials (CHORUS_CLIENT_SECRET)", self.spec.name),
            )),
        }
    }

    /// The service's event topic.
    pub fn topic(&self) -> String {
        self.spec.topic()
    }
}

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<(), Error>> + Send>;

struct ConsumerDecl {
    topic: String,
    group: String,
    consumer: String,
    options: SubscribeOptions,
    handler: Handler,
    /// Events handled together, at most this many, when the service declared a batch handler.
    batch: Option<(usize, BatchHandler)>,
}

/// A handler of several events at once ([`Parts::consume_batched`]).
type BatchHandler = Box<dyn FnMut(Vec<chorus_proto::event::Envelope>) -> BoxFuture<'static, Vec<HandlerResult>> + Send>;

/// What a service hands the runtime: filled in by [`Service::start`].
pub struct Parts {
    host: Host,
    names: Vec<&'static str>,
    verifier: Arc<Verifier>,
    consumers: Vec<ConsumerDecl>,
    tasks: Vec<(&'static str, Task)>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("services", &self.names)
            .field("consumers", &self.consumers.len())
            .field("tasks", &self.tasks.iter().map(|(n, _)| *n).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Gzip both ways and the configured message limit, on a generated tonic server.
#[macro_export]
macro_rules! tuned {
    ($server:expr, $ctx:expr) => {
        $server
            .send_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .accept_compressed(::tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size($ctx.max_message_bytes())
            .max_encoding_message_size($ctx.max_message_bytes())
    };
}

/// A generated tonic server, as [`Parts::grpc`] takes it.
pub trait GrpcService:
    tower::Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

impl Parts {
    /// Serves a gRPC service behind caller authentication (the methods its proto marks
    /// `allow_anonymous` answer without a token); its health is reported under its full name.
    /// Tune it first with [`tuned!`].
    pub fn grpc<S: GrpcService>(&mut self, service: S) -> &mut Self
    where
        S::Future: Send + 'static,
    {
        self.host
            .routes()
            .add_service(Authenticated::new(service, self.verifier.clone()));
        self.host.serving(S::NAME);
        self.names.push(S::NAME);
        self
    }

    /// Verifies callers with `source` instead of the configured keys: the issuer verifies
    /// against its own. Call before [`Parts::grpc`].
    pub fn verify_with(&mut self, source: KeySource, max_lifetime: Duration) -> &mut Self {
        self.verifier = Arc::new(Verifier::new(source, max_lifetime));
        self
    }

    /// Health stays NOT_SERVING until `ready` resolves (matching, until its index has read
    /// the catalogue).
    pub fn ready_when(&mut self, ready: impl Future<Output = ()> + Send + 'static) -> &mut Self {
        self.host.ready_when(ready);
        self
    }

    /// Runs `handler` on every event of `topic` for `group`. The group is joined before the
    /// service serves and before its tasks start, so nothing published from then on is missed.
    pub fn consume<H, F>(
        &mut self,
        topic: &str,
        group: impl Into<String>,
        options: SubscribeOptions,
        mut handler: H,
    ) -> &mut Self
    where
        H: FnMut(chorus_proto::event::Envelope) -> F + Send + 'static,
        F: Future<Output = HandlerResult> + Send + 'static,
    {
        let group = group.into();
        self.consumers.push(ConsumerDecl {
            topic: topic.to_owned(),
            consumer: consumer_name(&group),
            group,
            options,
            handler: Box::new(move |e| Box::pin(handler(e))),
            batch: None,
        });
        self
    }

    /// [`Parts::consume`] for a consumer that can apply several events in one transaction:
    /// `batch` gets up to `max` events that were waiting together, in order, and answers each
    /// (see [`Consumer::run_batched`]); `handler` takes one event, for dead letters replayed
    /// by an operator.
    pub fn consume_batched<H, F, B, G>(
        &mut self,
        topic: &str,
        group: impl Into<String>,
        options: SubscribeOptions,
        max: usize,
        handler: H,
        mut batch: B,
    ) -> &mut Self
    where
        H: FnMut(chorus_proto::event::Envelope) -> F + Send + 'static,
        F: Future<Output = HandlerResult> + Send + 'static,
        B: FnMut(Vec<chorus_proto::event::Envelope>) -> G + Send + 'static,
        G: Future<Output = Vec<HandlerResult>> + Send + 'static,
    {
        self.consume(topic, group, options, handler);
        if let Some(last) = self.consumers.last_mut() {
            last.batch = Some((max, Box::new(move |events| Box::pin(batch(events)))));
        }
        self
    }

    /// Runs a background task until the service stops: `run` gets a token that is cancelled
    /// at shutdown, and the runtime waits for the task to end.
    pub fn task<T, F>(&mut self, name: &'static str, run: T) -> &mut Self
    where
        T: FnOnce(CancellationToken) -> F + Send + 'static,
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.tasks.push((name, Box::new(move |c| Box::pin(run(c)))));
        self
    }
}

/// A consumer's name within its group: the host and process, so a replica's pending entries
/// are told apart from another's.
fn consumer_name(group: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    format!("{group}@{host}:{}", std::process::id())
}

/// A service that is running.
#[derive(Debug)]
pub struct Launched {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The gRPC services it serves, by full name.
    pub services: Vec<&'static str>,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Launched {
    /// Begins the graceful shutdown: health NOT_SERVING, grace, drain, then every task.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// A token that stops the service when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Waits until the service has stopped (after [`Launched::stop`] or a failure).
    pub async fn stopped(self) -> Result<(), Error> {
        self.done.await.map_err(|e| Error::internal("service task", e))?
    }

    /// Stops the service and waits for it.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.stop();
        self.stopped().await
    }
}

/// How long background tasks may take to finish once cancelled.
const TASKS_GRACE: Duration = Duration::from_secs(15);

/// Starts `decl` on `listener` with the settings in `source`: connects and migrates its
/// database, builds it, joins its consumer groups, starts its tasks and serves. Returns once it
/// serves (health may wait for its readiness gate).
pub async fn launch(
    decl: &Declared,
    source: &Source,
    shared: Shared,
    listener: TcpListener,
) -> Result<Launched, Error> {
    let (settings, config) = configure(decl, source)?;
    let spec = decl.spec;
    let db = spec
        .connect(settings.database_url.expose(), settings.db_max_connections)
        .await?;
    let verifier = Arc::new(Verifier::new(
        settings.keys.clone().unwrap_or(KeySource::Static(Vec::new())),
        settings.token_max_lifetime,
    ));
    let tokens = match (&settings.identity_url, &settings.client_secret) {
        (Some(url), Some(secret)) => Some(Arc::new(TokenSource::new(
            url.clone(),
            settings.client_id.clone(),
            secret.clone(),
        ))),
        _ => None,
    };
    let outbox = Outbox::new();
    let ctx = Context {
        spec,
        db: db.clone(),
        bus: shared.bus.clone(),
        outbox: outbox.clone(),
        clock: shared.clock.clone(),
        idempotency: Idempotency::new(db.clone(), shared.clock.clone(), settings.idempotency_retention),
        timers: Timers::new(db.clone(), outbox.clone(), shared.clock.clone()),
        server: settings.server.clone(),
        verifier: verifier.clone(),
        token_max_lifetime: settings.token_max_lifetime,
        tokens,
    };
    let mut parts = Parts {
        host: Host::new(settings.server.clone()),
        names: Vec::new(),
        verifier,
        consumers: Vec::new(),
        tasks: Vec::new(),
    };
    if let Err(e) = (decl.start)(config, &ctx, &mut parts).await {
        db.close().await;
        return Err(e);
    }

    // Groups first: a task that reads another service's state (matching's catalogue load)
    // must not miss events published while it reads.
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    let dead_letters = DeadLetters::new(db.clone(), shared.clock.clone());
    let retries = Retries {
        max_attempts: settings.event_max_attempts,
        delay: settings.event_retry_delay,
        dead_letters: dead_letters.clone(),
    };
    let mut joined = Vec::new();
    let mut handlers: HashMap<(String, String), SharedHandler> = HashMap::new();
    // Every consumer's (topic, group), for the lag and dead-letter gauges.
    let mut consumed: Vec<(String, String)> = Vec::new();
    for c in std::mem::take(&mut parts.consumers) {
        consumed.push((c.topic.clone(), c.group.clone()));
        let per_process = c.options.delete_group_on_exit;
        match Consumer::join(shared.bus.clone(), &c.topic, &c.group, &c.consumer, c.options).await {
            Ok(consumer) => {
                let handler: SharedHandler = Arc::new(std::sync::Mutex::new(c.handler));
                let consumer = if per_process {
                    // A per-process group feeds this process's own state (a cache, an index),
                    // rebuilt at start: its events are never set aside, since no other process
                    // could replay them and this one's group dies with it. They are retried,
                    // with the same backoff, until they succeed.
                    consumer.with_retries(Retries {
                        max_attempts: u32::MAX,
                        ..retries.clone()
                    })
                } else {
                    // Replays of its dead letters run the same handler (EventAdminService).
                    handlers.insert((c.topic.clone(), c.group.clone()), handler.clone());
                    consumer.with_retries(retries.clone())
                };
                joined.push((consumer, handler, c.batch));
            }
            Err(e) => {
                db.close().await;
                return Err(e);
            }
        }
    }
    let admin = EventAdmin::new(dead_letters.clone(), handlers);
    parts.grpc(crate::tuned!(EventAdminServiceServer::new(admin), ctx));
    parts.grpc(crate::tuned!(
        ClockServiceServer::new(ClockAdmin::new(ctx.clock.clone())),
        ctx
    ));
    let relay: Relay = outbox.relay(db.clone(), shared.bus.clone());
    // The relay outlives the other tasks: it publishes what their last acts wrote.
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn({
        let stop = relay_stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    for (consumer, handler, batch) in joined {
        let stop = cancel.clone();
        let handler = move |envelope| {
            let handler = handler.clone();
            async move { crate::events::admin::run(&handler, envelope).await }
        };
        tasks.spawn(async move {
            let ran = match batch {
                Some((max, batch)) => consumer.run_batched(max, batch, stop.cancelled_owned()).await,
                None => consumer.run(handler, stop.cancelled_owned()).await,
            };
            if let Err(e) = ran {
                tracing::warn!(error = %e, "consumer stopped with an error");
            }
        });
    }
    let mut background = parts.tasks;
    background.push(("timers", {
        let timers = ctx.timers.clone();
        Box::new(move |c| Box::pin(timers.run(c)))
    }));
    background.push(("idempotency retention", {
        let keys = ctx.idempotency.clone();
        Box::new(move |c| Box::pin(keys.sweep(c)))
    }));
    background.push(("event metrics", {
        let gauges = crate::events::metrics::EventGauges {
            service: spec.name,
            db: db.clone(),
            bus: shared.bus.clone(),
            dead_letters,
            consumed,
        };
        let every = settings.event_metrics_interval;
        Box::new(move |c| Box::pin(gauges.run(every, c)))
    }));
    for (name, run) in background {
        let fut = run(cancel.clone());
        tasks.spawn(async move {
            if let Err(e) = fut.await {
                tracing::warn!(task = name, error = %e, "background task ended with an error");
            }
        });
    }

    let (host, names) = (parts.host, parts.names);
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal("read listener address", e))?;
    let stop = CancellationToken::new();
    let done = tokio::spawn({
        let stop = stop.clone();
        async move {
            let served = host.serve(listener, stop.clone().cancelled_owned()).await;
            // A server that failed on its own takes the rest down with it.
            stop.cancel();
            cancel.cancel();
            tasks.close();
            if tokio::time::timeout(TASKS_GRACE, tasks.wait()).await.is_err() {
                tracing::warn!(
                    grace_s = TASKS_GRACE.as_secs(),
                    "background tasks still running after the grace period; stopping without them"
                );
            }
            relay_stop.cancel();
            if let Err(e) = relay_task.await {
                tracing::warn!(error = %e, "outbox relay ended abnormally");
            }
            db.close().await;
            served
        }
    });
    Ok(Launched {
        name: spec.name,
        addr,
        services: names,
        stop,
        done,
    })
}

/// A service's binary: settings from the environment, logs and metrics, then serve until
/// SIGTERM or ctrl-c. Prints what is wrong and exits non-zero on bad settings.
pub fn main(decl: &Declared) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chorus-{}: cannot start the async runtime: {e}", decl.spec.name);
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_from_env(decl)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-{}: {e}", decl.spec.name);
            for v in e.violations() {
                eprintln!("  {}: {}", v.field, v.description);
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve_from_env(decl: &Declared) -> Result<(), Error> {
    let source = Source::from_env()?;
    let (settings, _) = configure(decl, &source)?;
    if settings.redis_url.is_none() && !decl.spec.consumes.is_empty() {
        // On its own, an in-process bus would never hear from the services it follows: its
        // state would go stale without a word. `chorus up` shares one bus between services.
        return Err(Error::invalid_field(
            "REDIS_URL",
            format!(
                "required: {} follows {} on Redis",
                decl.spec.name,
                decl.spec.consumes.join(", ")
            ),
        ));
    }
    crate::telemetry::init(decl.spec.name, settings.log_format, settings.otlp_endpoint.as_deref())?;
    if let Some(addr) = settings.metrics_addr {
        crate::telemetry::serve_metrics(addr)?;
    }
    let bus = crate::events::connect(settings.redis_url.as_ref()).await?;
    let (listener, _) = crate::server::bind(settings.server.grpc_addr).await?;
    let shared = Shared {
        bus,
        clock: Clock::system(),
    };
    let launched = launch(decl, &source, shared, listener).await?;
    let stop = launched.stop_token();
    let served = tokio::select! {
        () = crate::server::shutdown_signal() => launched.shutdown().await,
        // The service stopped by itself (its server failed).
        () = stop.cancelled() => launched.stopped().await,
    };
    crate::telemetry::shutdown();
    served
}

/// One process running many services, as `chorus up` does: SQLite files in one data
/// directory, one bus and one clock for all, each service on its own port. A service finds
/// another at `CHORUS_<NAME>_URL`, which the node sets for every service it runs.
#[derive(Debug)]
pub struct Node {
    pub data_dir: PathBuf,
    pub host: std::net::IpAddr,
    /// Port per service name; a service not listed gets its [`Spec::port`] (0 picks a free one).
    pub ports: BTreeMap<String, u16>,
    /// Settings every service reads (the process environment), under the node's own.
    pub env: Source,
    /// Settings of one service only (its client secret, the issuer's key), by service name.
    pub settings: BTreeMap<String, Vec<(String, String)>>,
    pub shared: Shared,
}

/// A service `chorus up` could not bind, with the port it wanted.
#[derive(Debug)]
pub struct PortTaken {
    pub service: &'static str,
    pub port: u16,
    pub error: Error,
}

impl Node {
    /// The port `spec` listens on in this node.
    pub fn port_of(&self, spec: &Spec) -> u16 {
        self.ports.get(spec.name).copied().unwrap_or(spec.port)
    }

    /// Binds every service's port, then starts them all. A port that cannot be bound is
    /// reported as [`PortTaken`] before anything starts.
    pub async fn start(&self, services: &[Declared]) -> Result<Vec<Launched>, NodeError> {
        let mut bound = Vec::new();
        for decl in services {
            let port = self.port_of(&decl.spec);
            match crate::server::bind(SocketAddr::new(self.host, port)).await {
                Ok(b) => bound.push((decl, b)),
                Err(error) => {
                    return Err(NodeError::PortTaken(PortTaken {
                        service: decl.spec.name,
                        port,
                        error,
                    }));
                }
            }
        }
        let peers: Vec<(String, String)> = bound
            .iter()
            .map(|(decl, (_, addr))| {
                (
                    format!("CHORUS_{}_URL", decl.spec.name.to_ascii_uppercase()),
                    format!("http://{addr}"),
                )
            })
            .collect();
        let mut launched = Vec::new();
        for (decl, (listener, addr)) in bound {
            // A single node stops sooner than a replica behind a load balancer, and SQLite has
            // one writer, so a few connections are plenty; the environment may say otherwise.
            let defaults =
                Source::from_pairs([("CHORUS_DRAIN_TIMEOUT_MS", "10000"), ("CHORUS_DB_MAX_CONNECTIONS", "4")]);
            let database = self.data_dir.join(format!("{}.db", decl.spec.name));
            let own = [
                ("DATABASE_URL".to_owned(), format!("sqlite://{}", database.display())),
                ("CHORUS_GRPC_ADDR".to_owned(), addr.to_string()),
            ];
            let only = self.settings.get(decl.spec.name).cloned().unwrap_or_default();
            let source = defaults
                .under(&self.env)
                .with_overrides(own.into_iter().chain(peers.iter().cloned()).chain(only));
            match launch(decl, &source, self.shared.clone(), listener).await {
                Ok(l) => launched.push(l),
                Err(e) => {
                    for l in launched {
                        let _ = l.shutdown().await;
                    }
                    return Err(NodeError::Service(decl.spec.name, e));
                }
            }
        }
        Ok(launched)
    }
}

/// Why a node did not start.
#[derive(Debug)]
pub enum NodeError {
    PortTaken(PortTaken),
    Service(&'static str, Error),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::PortTaken(p) => write!(
                f,
                "{} port {} is taken or not allowed ({}); pass --port {}=<port>",
                p.service,
                p.port,
                p.error.message(),
                p.service
            ),
            NodeError::Service(name, e) => {
                write!(f, "{name}: {e}")?;
                for v in e.violations() {
                    write!(f, "\n  {}: {}", v.field, v.description)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for NodeError {}
