//! `spawn`: a registry and a matching service on free loopback ports, each with a fresh
//! database (PostgreSQL or SQLite), sharing an in-process bus, with clients for two tenants.
//! The generic parts are the test kit's; this file holds what is matching's own.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chorus_kit::runtime::Launched;
use chorus_proto::matching::matching_service_client::MatchingServiceClient;
use chorus_proto::matching::*;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::*;
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
pub use chorus_testkit::{Authed, Backend, Stack, on_both_backends};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

pub type Matching = MatchingServiceClient<Authed>;
pub type Registry = RegistryServiceClient<Authed>;

pub struct App {
    pub registry_addr: SocketAddr,
    pub matching_addr: SocketAddr,
    pub matching_db: String,
    stack: Stack,
    registry: Launched,
    matching: Vec<Launched>,
}

pub async fn spawn(backend: Backend) -> App {
    let mut stack = Stack::new(backend);
    let registry_db = stack.database().await;
    let registry = stack
        .launch(
            &chorus_registry::SERVICE,
            &registry_db,
            &[("CHORUS_READ_CACHE_ENTRIES", "1000".to_owned())],
        )
        .await;
    let matching_db = stack.database().await;
    let mut app = App {
        registry_addr: registry.addr,
        matching_addr: registry.addr,
        matching_db,
        stack,
        registry,
        matching: Vec::new(),
    };
    app.start_matching().await;
    app
}

impl App {
    /// Publishes `e` on `topic` of the bus the services share, as another service would.
    pub async fn publish(&self, topic: &str, e: &chorus_proto::event::Envelope) {
        self.stack.shared_bus().publish(topic, e).await.expect("publish");
    }

    /// Starts (or restarts) matching over its database; its index rebuilds from the registry.
    pub async fn start_matching(&mut self) {
        self.start_matching_against(format!("http://{}", self.registry_addr))
            .await;
    }

    /// Starts matching reading its catalogue from `registry_url`.
    pub async fn start_matching_against(&mut self, registry_url: String) {
        let settings = [
            ("CHORUS_REGISTRY_URL", registry_url),
            ("CHORUS_DB_MAX_CONNECTIONS", "4".to_owned()),
            ("CHORUS_MATCHING_CONVERSION_RATE", "0.02".to_owned()),
        ];
        let launched = self
            .stack
            .launch(&chorus_matching::SERVICE, &self.matching_db, &settings)
            .await;
        self.matching_addr = launched.addr;
        self.matching.push(launched);
    }

    /// Stops the newest matching service and waits for it.
    pub async fn stop_matching(&mut self) {
        self.matching.pop().unwrap().shutdown().await.unwrap();
    }

    pub fn bus(&self) -> &chorus_kit::events::memory::MemoryBus {
        &self.stack.bus
    }

    pub fn backend(&self) -> Backend {
        self.stack.backend
    }

    pub fn token(&self, tenant: &str, scopes: &[&str]) -> String {
        self.stack.token(tenant, scopes)
    }

    pub async fn channel(addr: SocketAddr) -> Channel {
        chorus_testkit::channel(addr).await
    }

    /// A matching client for `tenant` holding `scopes`.
    pub async fn matching_as(&self, tenant: &str, scopes: &[&str]) -> Matching {
        MatchingServiceClient::new(chorus_testkit::authed(self.matching_addr, Some(self.token(tenant, scopes))).await)
    }

    /// Tenant "brand-a", every matching scope.
    pub async fn matching(&self) -> Matching {
        self.matching_as("brand-a", &["matching.read", "matching.write"]).await
    }

    pub async fn registry(&self) -> Registry {
        let token = self.token("ops", chorus_registry::api::SCOPES);
        RegistryServiceClient::new(chorus_testkit::authed(self.registry_addr, Some(token)).await)
    }
}

/// A dog-loving nano influencer in `city` with `followers` and 6% engagement.
pub fn person(name: &str, handle: &str, city: &str, niches: &[&str]) -> Influencer {
    Influencer {
        display_name: name.into(),
        accounts: vec![SocialAccount {
            platform: Platform::Instagram as i32,
            handle: handle.into(),
            ..Default::default()
        }],
        niches: niches.iter().map(|n| (*n).to_owned()).collect(),
        location: Some(Location {
            country_code: "US".into(),
            region: String::new(),
            city: city.into(),
        }),
        languages: vec!["en".into()],
        rate_card: vec![
            RateCardEntry {
                kind: DeliverableKind::FeedPost as i32,
                price: Some(usd(6_000)),
            },
            RateCardEntry {
                kind: DeliverableKind::Story as i32,
                price: Some(usd(2_500)),
            },
        ],
        compensation_accepted: vec![CompensationKind::Cash as i32, CompensationKind::Product as i32],
        consent: Some(Consent {
            contact_allowed: true,
            data_processing_allowed: true,
            consent_time: None,
        }),
        ..Default::default()
    }
}

pub fn usd(minor: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    }
}

pub fn snapshot(handle: &str, followers: i64, engagement: f64) -> MetricsSnapshot {
    let posts = 10;
    let per_post = (followers as f64 * engagement) as i64;
    MetricsSnapshot {
        platform: Platform::Instagram as i32,
        handle: handle.into(),
        observe_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        followers,
        following: 300,
        posts: 200,
        window_days: 30,
        window_posts: posts,
        window_likes: per_post * posts * 9 / 10,
        window_comments: per_post * posts / 10,
        window_sponsored_posts: 1,
        ..Default::default()
    }
}

/// Creates `inf` with `snap` recorded; returns its name.
pub async fn add(registry: &mut Registry, inf: Influencer, snap: MetricsSnapshot) -> String {
    let created = registry
        .create_influencer(CreateInfluencerRequest {
            influencer: Some(inf),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    let recorded = registry
        .record_metrics(futures::stream::iter(vec![RecordMetricsRequest {
            snapshots: vec![snap],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.recorded_count, 1, "{recorded:?}");
    created.name
}

/// The dog-treats brief: pets and wellness, Austin and Denver, a post and a story on
/// Instagram, product or cash, $5,000, 50 people.
pub fn dog_treats() -> Campaign {
    Campaign {
        display_name: "Vegan dog treats".into(),
        objective: Objective::Awareness as i32,
        brief: Some(Brief {
            niches: vec![
                NicheWeight {
                    niche: "pets".into(),
                    weight: 2.0,
                },
                NicheWeight {
                    niche: "wellness".into(),
                    weight: 1.0,
                },
            ],
            locations: ["Austin", "Denver"]
                .iter()
                .map(|c| Location {
                    country_code: "US".into(),
                    region: String::new(),
                    city: (*c).into(),
                })
                .collect(),
            deliverables: vec![
                DeliverableWanted {
                    kind: DeliverableKind::FeedPost as i32,
                    count: 1,
                    platform: Platform::Instagram as i32,
                },
                DeliverableWanted {
                    kind: DeliverableKind::Story as i32,
                    count: 1,
                    platform: Platform::Instagram as i32,
                },
            ],
            compensation_offered: vec![CompensationKind::Product as i32, CompensationKind::Cash as i32],
            budget: Some(usd(500_000)),
            headcount: 50,
            disclosure_jurisdiction: "US".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub async fn create_campaign(m: &mut Matching, c: Campaign) -> Campaign {
    m.create_campaign(CreateCampaignRequest {
        campaign: Some(c),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .campaign
    .unwrap()
}

/// Runs a match until `ready` holds for it (the index is fed asynchronously), or fails after
/// ten seconds with the last answer.
pub async fn match_until(
    m: &mut Matching,
    campaign: &str,
    ready: impl Fn(&MatchInfluencersResponse) -> bool,
) -> MatchInfluencersResponse {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = m
            .match_influencers(MatchInfluencersRequest {
                campaign: campaign.into(),
                page_size: 100,
            })
            .await;
        match answer {
            Ok(r) if ready(r.get_ref()) => return r.into_inner(),
            Ok(r) if Instant::now() > deadline => panic!("match never got there: {:?}", r.get_ref()),
            Err(s) if s.code() != Code::Unavailable || Instant::now() > deadline => panic!("match failed: {s:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub fn names(r: &MatchInfluencersResponse) -> Vec<String> {
    r.candidates.iter().map(|c| c.display_name.clone()).collect()
}

pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

pub fn invalid<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, fields: &[&str]) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert_eq!(violated_fields(&status), fields, "{case}");
}

pub fn code<T: std::fmt::Debug>(case: &str, result: Result<Response<T>, Status>, code: Code) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
}
