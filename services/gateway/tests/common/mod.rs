//! A gateway in front of a real registry and matching (each on a fresh database, over real
//! gRPC on loopback), and an HTTP client that talks to it as a partner app would.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_kit::config::Source;
use chorus_kit::runtime::Launched;
pub use chorus_testkit::{Backend, Stack};
use serde_json::{Value, json};

pub struct App {
    pub stack: Stack,
    pub registry: Launched,
    pub matching: Launched,
    pub gateway: chorus_gateway::Running,
    pub http: reqwest::Client,
    pub base: String,
    /// The registry's scopes but contacts, and every matching scope; tenant "brand-a".
    pub token: String,
}

/// The gateway's settings naming the two upstreams, as an operator would write them.
pub fn settings(registry: &Launched, matching: &Launched) -> Vec<(String, String)> {
    vec![
        ("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        (
            "CHORUS_GATEWAY_UPSTREAM_REGISTRY".into(),
            format!("http://{}", registry.addr),
        ),
        (
            "CHORUS_GATEWAY_UPSTREAM_MATCHING".into(),
            format!("http://{}", matching.addr),
        ),
    ]
}

pub async fn start_gateway(pairs: Vec<(String, String)>) -> chorus_gateway::Running {
    let config = chorus_gateway::Config::read(&Source::from_pairs(pairs)).expect("gateway settings");
    let (listener, _) = chorus_kit::server::bind(config.addr).await.expect("bind");
    chorus_gateway::Running::start(&config, listener)
        .await
        .expect("start the gateway")
}

pub async fn spawn(backend: Backend) -> App {
    let mut stack = Stack::new(backend);
    let registry_db = stack.database().await;
    let registry = stack.launch(&chorus_registry::SERVICE, &registry_db, &[]).await;
    let matching_db = stack.database().await;
    let matching = stack
        .launch(
            &chorus_matching::SERVICE,
            &matching_db,
            &[("CHORUS_REGISTRY_URL", format!("http://{}", registry.addr))],
        )
        .await;
    let gateway = start_gateway(settings(&registry, &matching)).await;
    let token = stack.token(
        "brand-a",
        &[
            "registry.read",
            "registry.write",
            "registry.curate",
            "registry.admin",
            "matching.read",
            "matching.write",
        ],
    );
    App {
        base: format!("http://{}", gateway.addr),
        stack,
        registry,
        matching,
        gateway,
        http: reqwest::Client::new(),
        token,
    }
}

/// Sends `request`; its status, headers and body (parsed as JSON when it is).
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

/// A status and a parsed JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        send(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)).bearer_auth(&self.token)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.http.post(self.url(path)).bearer_auth(&self.token).json(body))
            .await
    }

    /// Creates an influencer over HTTP/JSON; its resource name.
    pub async fn create_influencer(&self, display_name: &str, handle: &str, country: &str) -> Value {
        let a = self
            .post("/v1/influencers", &influencer(display_name, handle, country))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json
    }
}

/// An influencer in proto3 JSON: lowerCamelCase names, enums by name.
pub fn influencer(display_name: &str, handle: &str, country: &str) -> Value {
    json!({
        "displayName": display_name,
        "accounts": [{ "platform": "PLATFORM_INSTAGRAM", "handle": handle }],
        "niches": ["pets"],
        "location": { "countryCode": country, "city": "Austin" },
        "languages": ["en"],
        "rateCard": [{
            "kind": "DELIVERABLE_KIND_FEED_POST",
            "price": { "currencyCode": "USD", "amountMinor": "25000" }
        }],
    })
}
