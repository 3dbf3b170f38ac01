//! A partner app at the gateway, against a real identity service and registry (each on a fresh
//! database) and the real Redis: API keys exchanged for tokens, the OAuth2 token endpoint,
//! rate limits per key and per tenant shared by two gateways, and CORS per tenant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_kit::runtime::Launched;
use chorus_proto::identity::CreateApiKeyRequest;
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_testkit::{Backend, Stack, eventually, on_both_backends};
use common::{Answer, influencer, start_gateway};
use serde_json::json;

const BRAND_A_ORIGIN: &str = "https://app.brand-a.example";
const BRAND_B_ORIGIN: &str = "https://app.brand-b.example";

/// Brand A is roomy; brand T (tight) may make 2 calls per key and 3 per tenant, then waits
/// 100 s for each more.
const POLICY: &str = r#"
default_plan = "roomy"
[plans.roomy]
key = { rate = 100.0, burst = 100 }
tenant = { rate = 100.0, burst = 100 }
[plans.tight]
key = { rate = 0.01, burst = 2 }
tenant = { rate = 0.01, burst = 3 }
[tenants.brand-a]
cors_origins = ["https://app.brand-a.example"]
[tenants.brand-b]
cors_origins = ["https://app.brand-b.example"]
[tenants.brand-t]
plan = "tight"
"#;

struct Partner {
    stack: Stack,
    _identity: Launched,
    _registry: Launched,
    gateway: chorus_gateway::Running,
    http: reqwest::Client,
    /// The gateway's settings, for a second gateway sharing its limits.
    settings: Vec<(String, String)>,
    _config: tempfile::NamedTempFile,
}

async fn spawn(backend: Backend) -> Partner {
    spawn_with(backend, &[]).await
}

async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Partner {
    let mut stack = Stack::new(backend);
    let identity_db = stack.database().await;
    let clients = json!([{
        "id": "partner-app",
        "secret_sha256": chorus_identity::domain::hash("s3cret:&="),
        "role": "brand",
        "tenant": "brand-a",
        "scopes": ["registry.read", "registry.write"],
    }]);
    let identity = stack
        .launch(
            &chorus_identity::SERVICE,
            &identity_db,
            &[
                ("CHORUS_SIGNING_KEY", stack.signing_key_pem()),
                ("CHORUS_IDENTITY_CLIENTS", clients.to_string()),
            ],
        )
        .await;
    let registry_db = stack.database().await;
    let registry = stack.launch(&chorus_registry::SERVICE, &registry_db, &[]).await;
    let mut config = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut config, POLICY.as_bytes()).unwrap();
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut settings: Vec<(String, String)> = vec![
        ("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        (
            "CHORUS_GATEWAY_UPSTREAM_IDENTITY".into(),
            format!("http://{}", identity.addr),
        ),
        (
            "CHORUS_GATEWAY_UPSTREAM_REGISTRY".into(),
            format!("http://{}", registry.addr),
        ),
        ("CHORUS_GATEWAY_CONFIG".into(), config.path().display().to_string()),
        ("CHORUS_GATEWAY_REDIS_URL".into(), "redis://127.0.0.1:6379".into()),
        ("CHORUS_GATEWAY_RATE_LIMIT_PREFIX".into(), prefix),
    ];
    for (k, v) in extra {
        settings.retain(|(key, _)| key != k);
        settings.push(((*k).to_owned(), (*v).to_owned()));
    }
    let gateway = start_gateway(settings.clone()).await;
    Partner {
        stack,
        _identity: identity,
        _registry: registry,
        gateway,
        http: reqwest::Client::new(),
        settings,
        _config: config,
    }
}

impl Partner {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.addr)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        common::send(request).await
    }

    /// A brand user's token: managing keys, reading and curating the catalogue.
    fn admin(&self, tenant: &str) -> String {
        self.stack.token(
            tenant,
            &["identity.keys", "registry.read", "registry.write", "registry.curate"],
        )
    }

    /// Makes an API key over HTTP/JSON; the key and its name.
    async fn key(&self, tenant: &str, scopes: &[&str]) -> (String, String) {
        let made = self
            .send(
                self.http
                    .post(self.url("/v1/apiKeys"))
                    .bearer_auth(self.admin(tenant))
                    .json(&json!({ "displayName": "partner app", "scopes": scopes })),
            )
            .await;
        assert_eq!(made.status, 200, "{}", made.text);
        (
            made.json["key"].as_str().unwrap().to_owned(),
            made.json["apiKey"]["name"].as_str().unwrap().to_owned(),
        )
    }

    /// Makes an API key straight at the identity service, so the gateway counts nothing.
    async fn key_direct(&self, tenant: &str) -> String {
        let channel = chorus_testkit::authed(self._identity.addr, Some(self.admin(tenant))).await;
        IdentityServiceClient::new(channel)
            .create_api_key(CreateApiKeyRequest {
                display_name: "partner app".into(),
                scopes: vec!["registry.read".into()],
                ttl: None,
            })
            .await
            .unwrap()
            .into_inner()
            .key
    }

    async fn list_influencers(&self, key: &str) -> Answer {
        self.send(self.http.get(self.url("/v1/influencers")).bearer_auth(key))
            .await
    }
}

async fn a_partner_calls_the_api_with_only_an_api_key(app: Partner) {
    let created = app
        .send(
            app.http
                .post(app.url("/v1/influencers"))
                .bearer_auth(app.admin("brand-a"))
                .json(&influencer("Ada Barks", "ada.barks", "US")),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let (key, name) = app.key("brand-a", &["registry.read"]).await;
    assert!(key.starts_with("chk_"), "{key}");

    let listed = app.list_influencers(&key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["influencers"][0]["name"], created.json["name"]);
    let by_header = app
        .send(app.http.get(app.url("/v1/influencers")).header("X-Api-Key", &key))
        .await;
    assert_eq!(by_header.status, 200, "{}", by_header.text);
    // The key's scopes hold: it reads, it does not write.
    let write = app
        .send(
            app.http
                .post(app.url("/v1/influencers"))
                .bearer_auth(&key)
                .json(&influencer("Bo", "bo.writes", "US")),
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.text);

    // Listed without the secret, with its last use.
    let keys = app
        .send(app.http.get(app.url("/v1/apiKeys")).bearer_auth(app.admin("brand-a")))
        .await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert_eq!(keys.json["apiKeys"][0]["name"], name.as_str());
    assert!(keys.json["apiKeys"][0]["lastUseTime"].is_string(), "{}", keys.text);
    assert!(!keys.text.contains(&key[8..]), "the secret is never listed");

    // A typo is refused by its checksum; a well-formed unknown key by the issuer.
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'q' { b'r' } else { b'q' };
    let typo = app.list_influencers(std::str::from_utf8(&typo).unwrap()).await;
    assert_eq!(typo.status, 401, "{}", typo.text);
    assert!(
        typo.json["message"].as_str().unwrap().contains("checksum"),
        "{}",
        typo.text
    );
    let unknown = chorus_kit::auth::api_key::ApiKey::generate().unwrap();
    assert_eq!(app.list_influencers(unknown.expose()).await.status, 401);
}

async fn a_revoked_key_is_refused_within_the_cache_window(app: Partner) {
    let (key, name) = app.key("brand-a", &["registry.read"]).await;
    assert_eq!(app.list_influencers(&key).await.status, 200);
    let revoked = app
        .send(
            app.http
                .post(app.url(&format!("/v1/{name}:revoke")))
                .bearer_auth(app.admin("brand-a"))
                .json(&json!({})),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    // The cache is 300 ms here (60 s in production).
    eventually(Duration::from_secs(5), || async {
        match app.list_influencers(&key).await.status {
            401 => Ok(()),
            s => Err(format!("still answered {s}")),
        }
    })
    .await;
    // Another tenant cannot revoke brand A's keys.
    let (_, other) = app.key("brand-a", &["registry.read"]).await;
    let foreign = app
        .send(
            app.http
                .post(app.url(&format!("/v1/{other}:revoke")))
                .bearer_auth(app.admin("brand-b"))
                .json(&json!({})),
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    // The audit log says who revoked it and from where: the gateway passes the caller's address.
    let audit = app
        .send(
            app.http
                .get(app.url("/v1/auditEvents"))
                .bearer_auth(app.stack.token("brand-a", &["identity.audit"])),
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let revocation = audit.json["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "api_key.revoke")
        .expect("the revocation, audited");
    assert_eq!(revocation["target"], name.as_str());
    assert_eq!(revocation["source"], "127.0.0.1 for 127.0.0.1", "{}", audit.text);
}

async fn spawn_short_cache(backend: Backend) -> Partner {
    spawn_with(backend, &[("CHORUS_GATEWAY_KEY_CACHE_MS", "300")]).await
}

async fn the_token_endpoint_speaks_oauth2(app: Partner) {
    let form = |body: &'static str| {
        app.http
            .post(app.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    // HTTP Basic, the secret form-urlencoded as RFC 6749 §2.3.1 says.
    let basic = app
        .send(
            form("grant_type=client_credentials&scope=registry.read")
                .basic_auth("partner-app", Some("s3cret%3A%26%3D")),
        )
        .await;
    assert_eq!(basic.status, 200, "{}", basic.text);
    assert_eq!(basic.headers["cache-control"], "no-store");
    assert_eq!(basic.json["token_type"], "Bearer");
    assert_eq!(basic.json["scope"], "registry.read");
    assert!(basic.json["expires_in"].as_i64().unwrap() > 0);
    let token = basic.json["access_token"].as_str().unwrap();
    let listed = app
        .send(app.http.get(app.url("/v1/influencers")).bearer_auth(token))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);

    let fields = app
        .send(form(
            "grant_type=client_credentials&client_id=partner-app&client_secret=s3cret%3A%26%3D",
        ))
        .await;
    assert_eq!(fields.status, 200, "{}", fields.text);
    assert_eq!(fields.json["scope"], "registry.read registry.write");

    for (request, status, error) in [
        (
            form("grant_type=client_credentials").basic_auth("partner-app", Some("wrong")),
            401,
            "invalid_client",
        ),
        (form("grant_type=client_credentials"), 401, "invalid_client"),
        (
            form("grant_type=password&client_id=partner-app&client_secret=x"),
            400,
            "unsupported_grant_type",
        ),
        (form("client_id=partner-app&client_secret=x"), 400, "invalid_request"),
        (
            form("grant_type=client_credentials&grant_type=client_credentials"),
            400,
            "invalid_request",
        ),
        (
            form("grant_type=client_credentials&scope=payouts.write")
                .basic_auth("partner-app", Some("s3cret%3A%26%3D")),
            400,
            "invalid_scope",
        ),
        (
            app.http
                .post(app.url("/oauth/token"))
                .json(&json!({"grant_type": "client_credentials"})),
            400,
            "invalid_request",
        ),
    ] {
        let a = app.send(request).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (status, Some(error)),
            "{}",
            a.text
        );
        assert!(a.json["error_description"].is_string(), "{}", a.text);
    }
    let wrong = app
        .send(form("grant_type=client_credentials").basic_auth("partner-app", Some("wrong")))
        .await;
    assert_eq!(wrong.headers["www-authenticate"], "Basic realm=\"chorus\"");
}

async fn limits_hold_per_key_and_per_tenant_across_two_gateways(app: Partner) {
    let second = start_gateway(app.settings.clone()).await;
    let at_second = |path: &str| format!("http://{}{path}", second.addr);
    let k1 = app.key_direct("brand-t").await;
    let k2 = app.key_direct("brand-t").await;

    let first = app.list_influencers(&k1).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.headers["ratelimit-limit"], "2");
    assert_eq!(first.headers["ratelimit-remaining"], "1");
    assert_eq!(app.list_influencers(&k1).await.status, 200);
    // The key's burst is spent, at the other gateway too.
    let over = app
        .send(app.http.get(at_second("/v1/influencers")).bearer_auth(&k1))
        .await;
    assert_eq!(over.status, 429, "{}", over.text);
    let retry: u64 = over.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=100).contains(&retry), "{retry}");
    assert_eq!(over.headers["ratelimit-remaining"], "0");
    assert_eq!(over.json["code"], 8, "RESOURCE_EXHAUSTED: {}", over.text);
    assert_eq!(
        over.json["details"][0]["@type"], "type.googleapis.com/google.rpc.RetryInfo",
        "{}",
        over.text
    );
    assert!(over.json["details"][0]["retryDelay"].as_str().unwrap().ends_with('s'));

    // The tenant's third call goes through with another key; its fourth does not, anywhere.
    let third = app
        .send(app.http.get(at_second("/v1/influencers")).bearer_auth(&k2))
        .await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert_eq!(app.list_influencers(&k2).await.status, 429, "the tenant's limit");
    // Another tenant is not held back.
    let (a, _) = app.key("brand-a", &["registry.read"]).await;
    assert_eq!(app.list_influencers(&a).await.status, 200);

    // Over gRPC-Web: RESOURCE_EXHAUSTED with RetryInfo, in the headers.
    let grpc = app
        .http
        .post(app.url("/chorus.registry.v1.RegistryService/ListInfluencers"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(&k1)
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(grpc.headers()["grpc-status"], "8");
    assert!(
        grpc.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web")
    );
    let details = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        grpc.headers()["grpc-status-details-bin"].as_bytes(),
    )
    .unwrap();
    let status = <tonic_types::Status as prost::Message>::decode(details.as_slice()).unwrap();
    assert_eq!(status.details[0].type_url, "type.googleapis.com/google.rpc.RetryInfo");
    second.shutdown().await.unwrap();
}

async fn spawn_without_redis(backend: Backend) -> Partner {
    spawn_with(backend, &[("CHORUS_GATEWAY_REDIS_URL", "redis://127.0.0.1:1")]).await
}

async fn calls_pass_when_redis_is_unreachable(app: Partner) {
    let metrics = chorus_testkit::metrics::Metrics::install();
    let key = app.key_direct("brand-t").await;
    for _ in 0..3 {
        let a = app.list_influencers(&key).await;
        assert_eq!(a.status, 200, "fail open: {}", a.text);
        assert!(!a.headers.contains_key("ratelimit-limit"));
    }
    assert!(metrics.counter("gateway_rate_limit_unavailable_total", &[]) >= 3);
}

async fn cors_follows_each_tenants_allowlist(app: Partner) {
    let preflight = |origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/influencers"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    // Any tenant's origin passes the preflight, which carries no credentials.
    for origin in [BRAND_A_ORIGIN, BRAND_B_ORIGIN] {
        let a = app.send(preflight(origin)).await;
        assert_eq!(a.status, 204);
        assert_eq!(a.headers["access-control-allow-origin"], origin);
        assert!(
            a.headers["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("authorization")
        );
        assert!(
            a.headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("GET")
        );
        assert!(!a.headers.contains_key("access-control-allow-credentials"));
    }
    let refused = app.send(preflight("https://evil.example")).await;
    assert!(!refused.headers.contains_key("access-control-allow-origin"));
    assert!(refused.headers["vary"].to_str().unwrap().contains("origin"));

    // The actual answer names the origin only for the caller's own tenant.
    let (key, _) = app.key("brand-a", &["registry.read"]).await;
    let call = |origin: &str| {
        app.http
            .get(app.url("/v1/influencers"))
            .bearer_auth(&key)
            .header("origin", origin)
    };
    let own = app.send(call(BRAND_A_ORIGIN)).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.headers["access-control-allow-origin"], BRAND_A_ORIGIN);
    assert!(own.headers["vary"].to_str().unwrap().contains("origin"));
    assert!(
        own.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("retry-after")
    );
    let other = app.send(call(BRAND_B_ORIGIN)).await;
    assert_eq!(other.status, 200);
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    assert!(other.headers["vary"].to_str().unwrap().contains("origin"));
    // A brand user's own token counts as brand A too.
    let token = app
        .send(
            app.http
                .get(app.url("/v1/influencers"))
                .bearer_auth(app.admin("brand-a"))
                .header("origin", BRAND_A_ORIGIN),
        )
        .await;
    assert_eq!(token.headers["access-control-allow-origin"], BRAND_A_ORIGIN);
}

on_both_backends! { spawn;
    partner_calls_with_an_api_key => a_partner_calls_the_api_with_only_an_api_key;
    oauth_token_endpoint => the_token_endpoint_speaks_oauth2;
    rate_limits_per_key_and_tenant_shared => limits_hold_per_key_and_per_tenant_across_two_gateways;
    cors_per_tenant => cors_follows_each_tenants_allowlist;
}

mod short_cache {
    use super::*;

    on_both_backends! { spawn_short_cache;
        revoked_key_refused_within_cache_window => a_revoked_key_is_refused_within_the_cache_window;
    }
}

mod no_redis {
    use super::*;

    on_both_backends! { spawn_without_redis;
        fails_open => calls_pass_when_redis_is_unreachable;
    }
}
