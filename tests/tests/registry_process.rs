//! The registry as its own process, as Kubernetes runs it: configured by environment, on
//! PostgreSQL and Redis Streams, verifying tokens with the keys it fetches from the identity
//! service, another process, from which the test also gets its token (client credentials).
//! Imports, lists and deletes over real gRPC while a consumer group on Redis observes the
//! events; then SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_e2e::{free_port, workspace_binary};

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_kit::auth::SigningKey;
use chorus_kit::events::redis::RedisBus;
use chorus_kit::events::{Bus, SubscribeOptions, payload};
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::{ClientCredentials, IssueTokenRequest, issue_token_request};
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::*;
use chorus_proto::types::Platform;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_client::HealthClient};

const CLIENT_SECRET: &str = "e2e-client-secret";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_serving(health_port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = Channel::from_shared(format!("http://127.0.0.1:{health_port}"))
            .unwrap()
            .connect()
            .await
        {
            let mut health = HealthClient::new(ch);
            if let Ok(r) = health.check(HealthCheckRequest { service: String::new() }).await
                && r.into_inner().status == 1
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "registry did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row(name: &str, handle: &str) -> Influencer {
    Influencer {
        display_name: name.into(),
        accounts: vec![SocialAccount {
            platform: Platform::Tiktok as i32,
            handle: handle.into(),
            ..Default::default()
        }],
        niches: vec!["pets".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn registry_process_imports_lists_deletes_and_publishes_events() {
    // The issuer first: its key in a file only it reads, and a client for this test.
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("signing-key.pem");
    std::fs::write(&key_path, SigningKey::generate().unwrap().to_pem()).unwrap();
    let secret_hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(CLIENT_SECRET.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let clients = format!(
        r#"[{{"id":"e2e","secret_sha256":"{secret_hash}","role":"admin","tenant":"demo","scopes":["registry.read","registry.curate","registry.admin"]}}]"#
    );
    let (identity_port, identity_health) = (free_port(), free_port());
    let _identity = Process(
        Command::new(workspace_binary("chorus-identity"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", tmp.path().join("identity.db").display()),
            )
            .env("CHORUS_SIGNING_KEY_FILE", &key_path)
            .env("CHORUS_IDENTITY_CLIENTS", clients)
            .env("CHORUS_GRPC_ADDR", format!("127.0.0.1:{identity_port}"))
            .env("CHORUS_HEALTH_ADDR", format!("127.0.0.1:{identity_health}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_serving(identity_health).await;
    let identity_url = format!("http://127.0.0.1:{identity_port}");

    let database_url = chorus_kit::storage::testing::fresh_postgres_url().await.unwrap();
    let redis_url = std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (grpc_port, health_port) = (free_port(), free_port());
    let mut child = Process(
        Command::new(workspace_binary("chorus-registry"))
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", &redis_url)
            .env("CHORUS_IDENTITY_URL", &identity_url)
            .env("CHORUS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("CHORUS_HEALTH_ADDR", format!("127.0.0.1:{health_port}"))
            .env("CHORUS_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_serving(health_port).await;

    // A consumer group of our own on the registry's stream.
    let bus = RedisBus::connect(&redis_url).await.unwrap();
    let group = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let options = SubscribeOptions {
        start_at_end: true,
        ..Default::default()
    };
    let mut events = bus.subscribe("chorus.registry", &group, "c1", options).await.unwrap();

    let identity = Channel::from_shared(identity_url).unwrap().connect().await.unwrap();
    let issued = IdentityServiceClient::new(identity)
        .issue_token(IssueTokenRequest {
            grant: Some(issue_token_request::Grant::ClientCredentials(ClientCredentials {
                client_id: "e2e".into(),
                client_secret: CLIENT_SECRET.into(),
            })),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.scopes, ["registry.read", "registry.curate", "registry.admin"]);
    let token = issued.access_token;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut client = RegistryServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", auth.clone());
        Ok(r)
    });

    let tag = uuid::Uuid::new_v4().simple().to_string();
    let handles: Vec<String> = (0..3).map(|i| format!("e2e_{tag}_{i}")).collect();
    let rows = handles.iter().map(|h| row(h, h)).collect();
    let mut results = client
        .import_influencers(tokio_stream::iter(vec![ImportInfluencersRequest { influencers: rows }]))
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    while let Some(batch) = results.message().await.unwrap() {
        for r in batch.results {
            assert_eq!(r.outcome, ImportOutcome::Created as i32, "{r:?}");
            names.push(r.name);
        }
    }
    assert_eq!(names.len(), 3);

    let listed = client
        .list_influencers(ListInfluencersRequest {
            platform: Platform::Tiktok as i32,
            page_size: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed: HashSet<String> = listed.influencers.into_iter().map(|i| i.name).collect();
    assert_eq!(listed, names.iter().cloned().collect::<HashSet<_>>());

    client
        .delete_influencer(DeleteInfluencerRequest {
            name: names[1].clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Three upserts then the deletion, in order, each with trace context.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 4 && Instant::now() < deadline {
        let Some(d) = events.next(Duration::from_secs(1)).await.unwrap() else {
            continue;
        };
        events.ack(&d).await.unwrap();
        assert!(
            !d.envelope.traceparent.is_empty(),
            "events carry the trace of the call that caused them"
        );
        let name = match d.envelope.r#type.as_str() {
            "chorus.registry.v1.InfluencerUpserted" => {
                payload::<InfluencerUpserted>(&d.envelope)
                    .unwrap()
                    .influencer
                    .unwrap()
                    .name
            }
            "chorus.registry.v1.InfluencerDeleted" => payload::<InfluencerDeleted>(&d.envelope).unwrap().influencer,
            other => panic!("unexpected event {other}"),
        };
        seen.push((d.envelope.r#type.clone(), name));
    }
    let expected: Vec<(String, String)> = names
        .iter()
        .map(|n| ("chorus.registry.v1.InfluencerUpserted".to_owned(), n.clone()))
        .chain([("chorus.registry.v1.InfluencerDeleted".to_owned(), names[1].clone())])
        .collect();
    assert_eq!(seen, expected);
    drop(events);
    bus.delete_group("chorus.registry", &group).await.unwrap();

    // SIGTERM: health goes NOT_SERVING, calls drain, the process exits 0. A watcher on the API
    // port (as a load balancer is) hears NOT_SERVING while its connection is still open.
    let api = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(api)
        .watch(HealthCheckRequest {
            service: "chorus.registry.v1.RegistryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let status = |m: Option<HealthCheckResponse>| m.map(|m| m.status);
    assert_eq!(
        status(watch.message().await.unwrap()),
        Some(ServingStatus::Serving as i32)
    );
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let told = tokio::time::timeout(Duration::from_secs(10), watch.message()).await;
    assert_eq!(
        told.expect("a status within 10 s")
            .map(status)
            .expect("the stream is still open"),
        Some(ServingStatus::NotServing as i32),
        "NOT_SERVING reaches the watcher before its connection closes"
    );
    // The watch is a call in flight: hung up, it lets the drain finish at once.
    drop(watch);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "registry did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
}
