//! `spawn`: the webhooks service on a fresh database (PostgreSQL or SQLite) with a manual
//! clock, a bus the test publishes on as the other services would, and a real HTTP receiver on
//! loopback that records what it is sent and answers what the test tells it to.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_kit::clock::Clock;
use chorus_kit::runtime::Launched;
use chorus_proto::event::Envelope;
use chorus_proto::webhooks::webhooks_service_client::WebhooksServiceClient;
use chorus_proto::webhooks::*;
pub use chorus_testkit::{Authed, Backend, Stack, authed, eventually, on_both_backends};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub type Client = WebhooksServiceClient<Authed>;

/// 2026-11-02T00:00:00Z, where every test's clock starts.
pub const START: i64 = 1_793_577_600_000_000;
pub const CAMPAIGN_CHANGED: &str = "chorus.matching.v1.CampaignChanged";
pub const CONTRACT_SIGNED: &str = "chorus.contracts.v1.ContractSigned";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether one of the signatures is this secret's over `{id}.{timestamp}.{body}`,
    /// computed here from the Standard Webhooks rule, not with the service's code.
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

/// A real HTTP server on loopback: records each request, answers the queued statuses in turn
/// (then 200), a 302 to `/landed` when told to redirect.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    pub addr: Option<SocketAddr>,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    always: Arc<Mutex<Option<u16>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let mut r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.addr = Some(listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(receive).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }

    /// Answers these statuses to the next requests, in order.
    pub fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    /// Answers `status` to every request from now on.
    pub fn always(&self, status: u16) {
        *self.always.lock().unwrap() = Some(status);
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn got_at(&self, path: &str) -> Vec<Received> {
        self.got().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `n` requests reached `path`.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        eventually(Duration::from_secs(15), || async {
            let got = self.got_at(path);
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} of {n} requests at {path}", got.len()))
            }
        })
        .await
    }
}

async fn receive(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        id: text("webhook-id"),
        timestamp: text("webhook-timestamp"),
        signature: text("webhook-signature"),
        body: body.to_vec(),
    });
    let queued = r.answers.lock().unwrap().pop_front();
    let status = queued.or(*r.always.lock().unwrap()).unwrap_or(200);
    if status == 302 {
        return (StatusCode::FOUND, [("location", "/landed")]).into_response();
    }
    StatusCode::from_u16(status).unwrap().into_response()
}

pub struct App {
    pub stack: Stack,
    pub webhooks: Option<Launched>,
    pub db: String,
    pub settings: Vec<(&'static str, String)>,
    /// Tenant "brand-a", with webhooks.manage.
    pub a: Client,
    /// Tenant "brand-b", with webhooks.manage.
    pub b: Client,
    pub receiver: Receiver,
}

/// Loopback allowed, as a receiver started by the test needs; endpoints disabled after 24 h
/// of failures (rather than five days), so one run of the 27.5-hour schedule disables one.
pub async fn spawn(backend: Backend) -> App {
    spawn_with(
        backend,
        vec![
            ("CHORUS_WEBHOOKS_ALLOW_PRIVATE", "1".to_owned()),
            ("CHORUS_WEBHOOKS_HTTP_HOSTS", "127.0.0.1,localhost".to_owned()),
            ("CHORUS_WEBHOOKS_DISABLE_AFTER_HOURS", "24".to_owned()),
        ],
    )
    .await
}

pub async fn spawn_with(backend: Backend, settings: Vec<(&'static str, String)>) -> App {
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db = stack.database().await;
    let receiver = Receiver::start().await;
    let webhooks = stack.launch(&chorus_webhooks::SERVICE, &db, &settings).await;
    let a = client(&stack, &webhooks, "brand-a").await;
    let b = client(&stack, &webhooks, "brand-b").await;
    App {
        stack,
        webhooks: Some(webhooks),
        db,
        settings,
        a,
        b,
        receiver,
    }
}

async fn client(stack: &Stack, at: &Launched, tenant: &str) -> Client {
    WebhooksServiceClient::new(authed(at.addr, Some(stack.token(tenant, &["webhooks.manage"]))).await)
}

impl App {
    /// Stops the service and starts it again over the same database.
    pub async fn restart(&mut self) {
        if let Some(w) = self.webhooks.take() {
            w.shutdown().await.unwrap();
        }
        let settings = self.settings.clone();
        let w = self.stack.launch(&chorus_webhooks::SERVICE, &self.db, &settings).await;
        self.a = client(&self.stack, &w, "brand-a").await;
        self.b = client(&self.stack, &w, "brand-b").await;
        self.webhooks = Some(w);
    }

    /// Publishes `payload` as an event of `tenant` on its service's topic, as that service's
    /// outbox relay would; its envelope.
    pub async fn emit<M: prost::Name>(&self, tenant: &str, payload: &M) -> Envelope {
        let e = chorus_kit::events::envelope(&self.stack.clock, tenant, payload);
        self.stack
            .shared_bus()
            .publish(&chorus_kit::events::topic_of::<M>(), &e)
            .await
            .unwrap();
        e
    }

    /// A campaign changed for `tenant`.
    pub async fn campaign(&self, tenant: &str, name: &str) -> Envelope {
        let campaign = chorus_proto::matching::Campaign {
            name: format!("campaigns/{}", uuid::Uuid::now_v7()),
            tenant: tenant.into(),
            display_name: name.into(),
            ..Default::default()
        };
        self.emit(
            tenant,
            &chorus_proto::matching::CampaignChanged {
                campaign: Some(campaign),
            },
        )
        .await
    }

    pub fn advance(&self, by: Duration) {
        self.stack.clock.advance(by).unwrap();
    }
}

/// An endpoint of `c`'s tenant at `url` for `types` (empty: all); it and its secret.
pub async fn create(c: &mut Client, url: &str, types: &[&str]) -> (WebhookEndpoint, String) {
    let r = c
        .create_webhook_endpoint(CreateWebhookEndpointRequest {
            endpoint: Some(WebhookEndpoint {
                url: url.into(),
                description: "test".into(),
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    (r.endpoint.unwrap(), r.secret)
}

pub async fn deliveries(c: &mut Client, endpoint: &str) -> Vec<WebhookDelivery> {
    c.list_webhook_deliveries(ListWebhookDeliveriesRequest {
        parent: endpoint.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .deliveries
}

/// Waits until the endpoint's newest delivery has `n` attempts; that delivery.
pub async fn attempts(c: &Client, endpoint: &str, n: usize) -> WebhookDelivery {
    eventually(Duration::from_secs(15), || {
        let mut c = c.clone();
        async move {
            let d = deliveries(&mut c, endpoint).await;
            match d.first() {
                Some(d) if d.attempts.len() >= n => Ok(d.clone()),
                other => Err(format!("waiting for {n} attempts: {other:?}")),
            }
        }
    })
    .await
}

pub async fn get(c: &mut Client, name: &str) -> WebhookEndpoint {
    c.get_webhook_endpoint(GetWebhookEndpointRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap()
}

/// The field names of an INVALID_ARGUMENT's BadRequest.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
