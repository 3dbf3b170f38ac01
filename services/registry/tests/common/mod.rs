//! `spawn_app`: a registry on a free loopback port with a fresh database (PostgreSQL or SQLite)
//! and an in-process bus the test can watch, plus clients holding tokens of different scopes.
//! The generic parts (starting a service, token clients, the both-backends macro) are the
//! test kit's; this file holds what is the registry's own.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;

use chorus_kit::events::Subscription;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::runtime::Launched;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::vetting_service_client::VettingServiceClient;
use chorus_proto::registry::*;
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use chorus_registry::api::vetting::SampleLimits;
pub use chorus_testkit::events::{next_types, quiet};
pub use chorus_testkit::{Authed, Backend, Stack, on_both_backends};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

/// Small bounds, so tests can go over them cheaply.
pub const SAMPLE_LIMITS: SampleLimits = SampleLimits {
    max_audience: 500,
    max_comments: 50,
};

pub type Client = RegistryServiceClient<Authed>;
pub type VettingClient = VettingServiceClient<Authed>;

const EVERY_SCOPE: &[&str] = chorus_registry::api::SCOPES;

pub struct TestApp {
    pub addr: SocketAddr,
    pub bus: MemoryBus,
    pub database_url: String,
    stack: Stack,
    launched: Option<Launched>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, 8).await
}

/// A registry whose pool holds `connections` connections (1 makes statement reuse certain).
pub async fn spawn_app_with(backend: Backend, connections: u32) -> TestApp {
    let mut stack = Stack::new(backend);
    let database_url = stack.database().await;
    let launched = start(&mut stack, &database_url, connections).await;
    TestApp {
        addr: launched.addr,
        bus: stack.bus.clone(),
        database_url,
        stack,
        launched: Some(launched),
    }
}

/// A registry on its own port over `database_url` and the stack's bus.
async fn start(stack: &mut Stack, database_url: &str, connections: u32) -> Launched {
    let settings = [
        ("CHORUS_DB_MAX_CONNECTIONS", connections.to_string()),
        ("CHORUS_READ_CACHE_ENTRIES", "10000".to_owned()),
        (
            "CHORUS_VETTING_MAX_AUDIENCE_SAMPLE",
            SAMPLE_LIMITS.max_audience.to_string(),
        ),
        (
            "CHORUS_VETTING_MAX_COMMENT_SAMPLE",
            SAMPLE_LIMITS.max_comments.to_string(),
        ),
    ];
    stack.launch(&chorus_registry::SERVICE, database_url, &settings).await
}

impl TestApp {
    /// A second registry on the same database and bus, as a second replica would be: it is
    /// stopped when the test ends.
    pub async fn replica(&mut self) -> Launched {
        let url = self.database_url.clone();
        start(&mut self.stack, &url, 8).await
    }

    pub fn token(&self, scopes: &[&str]) -> String {
        self.stack.token("tenant-a", scopes)
    }

    /// A token of `tenant` holding `scopes`.
    pub fn token_of(&self, tenant: &str, scopes: &[&str]) -> String {
        self.stack.token(tenant, scopes)
    }

    /// An influencer's token: role influencer, subject `name` (`influencers/{id}`), no tenant.
    pub fn influencer_token(&self, name: &str, scopes: &[&str]) -> String {
        self.stack.mint(&chorus_kit::auth::Grant {
            subject: name.into(),
            tenant: String::new(),
            role: chorus_kit::auth::role::INFLUENCER.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    pub async fn client_with(&self, token: Option<String>) -> Client {
        RegistryServiceClient::new(chorus_testkit::authed(self.addr, token).await)
    }

    /// A client of the registry at `addr` with every scope.
    pub async fn client_at(&self, addr: SocketAddr) -> Client {
        RegistryServiceClient::new(chorus_testkit::authed(addr, Some(self.token(EVERY_SCOPE))).await)
    }

    /// A VettingService client with every registry scope.
    pub async fn vetting(&self) -> VettingClient {
        VettingServiceClient::new(chorus_testkit::authed(self.addr, Some(self.token(EVERY_SCOPE))).await)
    }

    /// A client with every registry scope.
    pub async fn client(&self) -> Client {
        self.client_with(Some(self.token(EVERY_SCOPE))).await
    }

    pub async fn channel(&self) -> Channel {
        chorus_testkit::channel(self.addr).await
    }

    /// Subscribes to the registry's topic from the oldest event.
    pub async fn events(&self) -> Box<dyn Subscription> {
        chorus_testkit::events::watch(&self.bus, chorus_registry::events::TOPIC).await
    }

    /// Begins the graceful shutdown without waiting for it (health NOT_SERVING, then drain).
    pub fn begin_stop(&self) {
        if let Some(l) = &self.launched {
            l.stop();
        }
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(l) = self.launched.take() {
            l.shutdown().await.unwrap();
        }
    }
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

/// Asserts `result` is `code` and its message names `what`; the status.
pub fn refused<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, code: Code, what: &str) -> Status {
    let status = match result {
        Ok(r) => panic!("{case}: expected {code:?}, got {:?}", r.into_inner()),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert!(
        status.message().contains(what),
        "{case}: {:?} should name {what}",
        status.message()
    );
    status
}

/// Asserts `result` is NOT_FOUND and its message names `what`.
pub fn not_found<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, what: &str) {
    let status = refused(case, result, Code::NotFound, what);
    assert!(violated_fields(&status).is_empty(), "{case}: {status:?}");
}

/// Asserts `result` is PERMISSION_DENIED and its message names `scope`.
pub fn denied<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, scope: &str) {
    refused(case, result, Code::PermissionDenied, scope);
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
