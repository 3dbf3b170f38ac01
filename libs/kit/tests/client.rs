//! Balanced channels: calls spread over every address a name resolves to, and follow the
//! addresses as they change. Two real gRPC servers on loopback stand for two pods; the
//! resolver stands for the DNS of a headless Service (one name cannot resolve to two loopback
//! servers here without editing /etc/hosts).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_testkit::eventually;
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// A "pod": a health server that answers SERVING for its own name only, so a check of `name`
/// tells which pod answered.
async fn pod(name: &'static str) -> SocketAddr {
    let reporter = HealthReporter::new();
    reporter
        .set_service_status(name, tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(HealthService::from_health_reporter(reporter)))
            .serve_with_incoming(chorus_kit::server::incoming(listener)),
    );
    addr
}

/// How many of `calls` checks of pod "a" pod a answered (the others answered NOT_FOUND).
async fn answered_by_a(client: &mut HealthClient<tonic::transport::Channel>, calls: usize) -> Result<usize, String> {
    let mut by_a = 0;
    for _ in 0..calls {
        match client.check(HealthCheckRequest { service: "a".into() }).await {
            Ok(_) => by_a += 1,
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(format!("call failed: {s}")),
        }
    }
    Ok(by_a)
}

#[tokio::test]
async fn calls_spread_over_every_resolved_address_and_follow_changes() {
    let (a, b) = (pod("a").await, pod("b").await);
    let addresses = Arc::new(Mutex::new(vec![a, b]));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let channel = chorus_kit::client::balanced_with(
        "http://pods.example.internal:50051",
        |e| e.connect_timeout(Duration::from_secs(1)),
        Duration::from_millis(50),
        {
            let (addresses, asked) = (addresses.clone(), asked.clone());
            move |host, port| {
                asked.lock().unwrap().push((host, port));
                let now = addresses.lock().unwrap().clone();
                async move { now }
            }
        },
    )
    .unwrap();
    let mut client = HealthClient::new(channel);

    // Both pods answer: 40 calls all on one pod would be a 1 in 2^39 chance.
    eventually(Duration::from_secs(5), || {
        let mut client = client.clone();
        async move {
            let by_a = answered_by_a(&mut client, 40).await?;
            if (1..40).contains(&by_a) {
                Ok(())
            } else {
                Err(format!("pod a answered {by_a} of 40"))
            }
        }
    })
    .await;
    assert_eq!(asked.lock().unwrap()[0], ("pods.example.internal".to_owned(), 50051));

    // Pod a goes away from the name: every call soon lands on b.
    *addresses.lock().unwrap() = vec![b];
    eventually(Duration::from_secs(5), || {
        let mut client = client.clone();
        async move {
            let by_a = answered_by_a(&mut client, 20).await?;
            if by_a == 0 {
                Ok(())
            } else {
                Err(format!("pod a still answered {by_a} of 20"))
            }
        }
    })
    .await;

    // A lookup that finds nothing keeps the last known address rather than dropping every pod.
    *addresses.lock().unwrap() = Vec::new();
    let seen = asked.lock().unwrap().len();
    eventually(Duration::from_secs(5), || {
        let asked = asked.clone();
        async move {
            if asked.lock().unwrap().len() > seen + 1 {
                Ok(())
            } else {
                Err("not resolved again yet")
            }
        }
    })
    .await;
    assert_eq!(answered_by_a(&mut client, 5).await.unwrap(), 0, "b still answers");
}

#[tokio::test]
async fn an_address_literal_is_dialled_as_it_is() {
    let a = pod("a").await;
    let channel = chorus_kit::client::balanced_with(
        &format!("http://{a}"),
        |e| e,
        Duration::from_millis(50),
        |_, _| -> std::future::Ready<Vec<SocketAddr>> { panic!("an address literal is never resolved") },
    )
    .unwrap();
    let mut client = HealthClient::new(channel);
    assert_eq!(answered_by_a(&mut client, 3).await.unwrap(), 3);
}
