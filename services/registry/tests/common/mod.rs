//! `spawn_app`: a registry on a free loopback port with a fresh database (PostgreSQL or SQLite)
//! and an in-process bus the test can watch, plus clients holding tokens of different scopes.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::Jwt;
use chorus_kit::config::{LogFormat, Secret, ServerConfig};
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::{Bus, SubscribeOptions, Subscription};
use chorus_kit::storage::testing;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::vetting_service_client::VettingServiceClient;
use chorus_proto::registry::*;
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use chorus_registry::Config;
use chorus_registry::api::vetting::SampleLimits;
use chorus_registry::domain::tier::TierTable;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

pub const SECRET: &str = "test-secret-at-least-16-chars";
/// Small bounds, so tests can go over them cheaply.
pub const SAMPLE_LIMITS: SampleLimits = SampleLimits {
    max_audience: 500,
    max_comments: 50,
};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub type Client = RegistryServiceClient<InterceptedService<Channel, Bearer>>;
pub type VettingClient = VettingServiceClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
pub struct Bearer(Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(r)
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub bus: MemoryBus,
    pub database_url: String,
    jwt: Jwt,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Result<(), chorus_kit::Error>>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = chorus_kit::telemetry::init("registry-test", LogFormat::Pretty, None);
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, 8).await
}

/// A registry whose pool holds `connections` connections (1 makes statement reuse certain).
pub async fn spawn_app_with(backend: Backend, connections: u32) -> TestApp {
    init_logs();
    let (database_url, dir) = match backend {
        Backend::Postgres => (testing::fresh_postgres_url().await.unwrap(), None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (testing::sqlite_url_in(dir.path()), Some(dir))
        }
    };
    let mut app = start(database_url, MemoryBus::new(), connections).await;
    app._dir = dir;
    app
}

/// A registry on its own port over an existing database and bus: another replica.
async fn start(database_url: String, bus: MemoryBus, connections: u32) -> TestApp {
    let config = Config {
        server: ServerConfig::local(0),
        database_url: Secret::new(database_url.clone()),
        redis_url: None,
        jwt_secret: Secret::new(SECRET.to_owned()),
        tiers: TierTable::default(),
        db_max_connections: connections,
        read_cache_entries: 10_000,
        log_format: LogFormat::Pretty,
        otlp_endpoint: None,
        metrics_addr: None,
        vetting: Default::default(),
        samples: SAMPLE_LIMITS,
    };
    let db = chorus_registry::database(&config).await.unwrap();
    let (listener, addr) = chorus_kit::server::bind(config.server.grpc_addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(chorus_registry::serve(
        config,
        db,
        Arc::new(bus.clone()),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    TestApp {
        addr,
        bus,
        database_url,
        jwt: Jwt::new(&Secret::new(SECRET.to_owned())),
        stop: Some(stop),
        served: Some(served),
        _dir: None,
    }
}

impl TestApp {
    /// A second registry on the same database and bus, as a second replica would be.
    pub async fn replica(&self) -> TestApp {
        start(self.database_url.clone(), self.bus.clone(), 8).await
    }

    pub fn token(&self, scopes: &[&str]) -> String {
        self.jwt
            .mint("test-user", "tenant-a", "admin", scopes, Duration::from_secs(600))
            .unwrap()
    }

    pub async fn client_with(&self, token: Option<String>) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        RegistryServiceClient::with_interceptor(channel, Bearer(token))
    }

    /// A VettingService client with every registry scope.
    pub async fn vetting(&self) -> VettingClient {
        let token = self.token(&["registry.read", "registry.write", "registry.admin"]);
        VettingServiceClient::with_interceptor(self.channel().await, Bearer(Some(token)))
    }

    /// A client with every registry scope.
    pub async fn client(&self) -> Client {
        self.client_with(Some(self.token(&["registry.read", "registry.write", "registry.admin"])))
            .await
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Subscribes to the registry's topic from the oldest event.
    pub async fn events(&self) -> Box<dyn Subscription> {
        self.bus
            .subscribe(
                chorus_registry::events::TOPIC,
                &uuid::Uuid::new_v4().to_string(),
                "test",
                SubscribeOptions::default(),
            )
            .await
            .unwrap()
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.served.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// The next `n` event types on `sub`.
pub async fn next_types(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = sub.next(Duration::from_secs(5)).await.unwrap().expect("an event");
        sub.ack(&d).await.unwrap();
        out.push(d.envelope.r#type);
    }
    out
}

pub fn account(platform: Platform, handle: &str) -> SocialAccount {
    SocialAccount {
        platform: platform as i32,
        handle: handle.into(),
        url: String::new(),
        metrics: None,
        vetting: None,
    }
}

pub fn influencer(name: &str, handle: &str) -> Influencer {
    Influencer {
        display_name: name.into(),
        accounts: vec![account(Platform::Instagram, handle)],
        niches: vec!["pets".into(), "vegan-food".into()],
        location: Some(Location {
            country_code: "US".into(),
            region: "TX".into(),
            city: "Austin".into(),
        }),
        languages: vec!["en".into()],
        rate_card: vec![RateCardEntry {
            kind: DeliverableKind::FeedPost as i32,
            price: Some(Money {
                currency_code: "USD".into(),
                amount_minor: 10_000,
            }),
        }],
        compensation_accepted: vec![CompensationKind::Cash as i32, CompensationKind::Product as i32],
        ..Default::default()
    }
}

pub fn snapshot(platform: Platform, handle: &str, followers: i64, likes: i64) -> MetricsSnapshot {
    MetricsSnapshot {
        platform: platform as i32,
        handle: handle.into(),
        followers,
        following: 400,
        posts: 300,
        window_days: 30,
        window_posts: 10,
        window_likes: likes,
        window_comments: likes / 10,
        window_sponsored_posts: 1,
        ..Default::default()
    }
}

pub async fn create(client: &mut Client, inf: Influencer) -> Influencer {
    client
        .create_influencer(CreateInfluencerRequest {
            influencer: Some(inf),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap()
}

pub async fn record(client: &mut Client, snaps: Vec<MetricsSnapshot>) -> RecordMetricsResponse {
    client
        .record_metrics(tokio_stream::iter(vec![RecordMetricsRequest { snapshots: snaps }]))
        .await
        .unwrap()
        .into_inner()
}

/// Asserts `result` is INVALID_ARGUMENT naming exactly `fields`, in order.
pub fn invalid<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, fields: &[&str]) {
    let status = match result {
        Ok(r) => panic!("{case}: expected INVALID_ARGUMENT, got {:?}", r.into_inner()),
        Err(s) => s,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert_eq!(violated_fields(&status), fields, "{case}: {status:?}");
}

/// Asserts `result` is NOT_FOUND and its message names `what`.
pub fn not_found<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, what: &str) {
    let status = match result {
        Ok(r) => panic!("{case}: expected NOT_FOUND, got {:?}", r.into_inner()),
        Err(s) => s,
    };
    assert_eq!(status.code(), Code::NotFound, "{case}: {status:?}");
    assert!(
        status.message().contains(what),
        "{case}: {:?} should name {what}",
        status.message()
    );
    assert!(violated_fields(&status).is_empty(), "{case}: {status:?}");
}

/// Asserts no event is published within 300 ms.
pub async fn quiet(events: &mut Box<dyn Subscription>, case: &str) {
    let got = events.next(Duration::from_millis(300)).await.unwrap();
    assert!(
        got.is_none(),
        "{case}: nothing should be published, got {:?}",
        got.map(|d| d.envelope.r#type)
    );
}

/// Field paths named in an INVALID_ARGUMENT status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Runs an async test body once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:expr;)*) => {
        mod postgres {
            use super::*;
            $(#[tokio::test] async fn $name() { let app = spawn_app(Backend::Postgres).await; ($body)(app).await; })*
        }
        mod sqlite {
            use super::*;
            $(#[tokio::test] async fn $name() { let app = spawn_app(Backend::Sqlite).await; ($body)(app).await; })*
        }
    };
}

/// Every influencer in the catalogue, walking all pages.
pub async fn all(client: &mut Client) -> Vec<Influencer> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_influencers(ListInfluencersRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.influencers);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}
