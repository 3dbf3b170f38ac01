//! The registry through a PostgreSQL outage, on a private cluster the test stops and starts:
//! callers get UNAVAILABLE with the reason and a retry delay, a write that failed leaves
//! nothing behind, and once the database is back the same service answers again. The binary is
//! named `fault`, so nextest runs it in the serial `fault` group.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_proto::registry::*;
use chorus_testkit::eventually;
use chorus_testkit::fault::PrivatePostgres;
use common::*;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Asserts `status` is what a client should get during an outage: UNAVAILABLE, ErrorInfo
/// DATABASE_UNAVAILABLE (domain chorus), and a RetryInfo saying when to try again.
fn assert_outage(case: &str, status: &Status) {
    assert_eq!(status.code(), Code::Unavailable, "{case}: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("{case}: no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "DATABASE_UNAVAILABLE", "{case}: {info:?}");
    assert_eq!(info.domain, "chorus", "{case}: {info:?}");
    let retry = details
        .retry_info()
        .unwrap_or_else(|| panic!("{case}: no RetryInfo in {status:?}"));
    assert!(
        retry.retry_delay.is_some_and(|d| !d.is_zero()),
        "{case}: a retry delay: {retry:?}"
    );
}

fn create_request(name: &str, handle: &str, request_id: &str) -> CreateInfluencerRequest {
    CreateInfluencerRequest {
        influencer: Some(influencer(name, handle)),
        request_id: request_id.to_owned(),
    }
}

#[tokio::test]
async fn a_postgres_outage_is_unavailable_then_the_service_recovers() {
    let mut pg = PrivatePostgres::new().await;
    let database_url = pg.create_database().await;
    let mut stack = Stack::new(Backend::Postgres);
    let registry = stack.launch(&chorus_registry::SERVICE, &database_url, &[]).await;
    let token = stack.token("tenant-a", &["registry.read", "registry.write"]);
    let mut client = Client::new(chorus_testkit::authed(registry.addr, Some(token)).await);
    let mut events = chorus_testkit::events::watch(&stack.bus, chorus_registry::events::TOPIC).await;
    let before = create(&mut client, influencer("Before", "before")).await;
    assert_eq!(next_types(&mut events, 1).await, ["chorus.registry.v1.InfluencerUpserted"]);

    pg.stop().await;
    let read = client
        .list_influencers(ListInfluencersRequest::default())
        .await
        .expect_err("a read while the database is down");
    assert_outage("list", &read);
    let write = client
        .create_influencer(create_request("During", "during", "req-during"))
        .await
        .expect_err("a write while the database is down");
    assert_outage("create", &write);

    pg.start().await;
    // The pool reconnects by itself: the same service answers again.
    let listed = eventually(Duration::from_secs(20), || {
        let mut client = client.clone();
        async move {
            client
                .list_influencers(ListInfluencersRequest::default())
                .await
                .map(|r| r.into_inner().influencers)
        }
    })
    .await;
    let names: Vec<&str> = listed.iter().map(|i| i.display_name.as_str()).collect();
    assert_eq!(names, ["Before"], "the failed write left no influencer");
    quiet(&mut events, "the failed write").await;

    // Nor half of one: its handle is free, and its request id kept no answer (a transient error
    // is not an answer), so the retry does the work now, once.
    let retried = client
        .create_influencer(create_request("During", "during", "req-during"))
        .await
        .expect("the retry after the outage")
        .into_inner()
        .influencer
        .unwrap();
    assert_ne!(retried.name, before.name);
    assert_eq!(next_types(&mut events, 1).await, ["chorus.registry.v1.InfluencerUpserted"]);
    let again = client
        .create_influencer(create_request("During", "during", "req-during"))
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    assert_eq!(again.name, retried.name, "a repeat gets the first answer");
    let names: Vec<String> = all(&mut client).await.into_iter().map(|i| i.display_name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    quiet(&mut events, "the repeat").await;

    registry.shutdown().await.unwrap();
}
