//! The registry through a PostgreSQL outage, on a private cluster the test stops and starts:
//! callers get UNAVAILABLE with the reason and a retry delay, a write that failed leaves
//! nothing behind, and once the database is back the same service answers again. The binary is
//! named `fault`, so nextest runs it in the serial `fault` group.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_kit::events::Subscription;
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

/// The id and display name of the next InfluencerUpserted on `events`, acknowledged; `None`
/// after `within` without one.
async fn upserted(events: &mut Box<dyn Subscription>, within: Duration) -> Option<(String, String)> {
    let d = events.next(within).await.unwrap()?;
    events.ack(&d).await.unwrap();
    let p: InfluencerUpserted = chorus_kit::events::payload(&d.envelope).unwrap();
    Some((d.envelope.id, p.influencer.unwrap().display_name))
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
    let token = stack.token("tenant-a", &["registry.read", "registry.curate"]);
    let mut client = Client::new(chorus_testkit::authed(registry.addr, Some(token)).await);
    let mut events = chorus_testkit::events::watch(&stack.bus, chorus_registry::events::TOPIC).await;
    let before = create(&mut client, influencer("Before", "before")).await;
    let before_event = upserted(&mut events, Duration::from_secs(5))
        .await
        .expect("the create's event");
    assert_eq!(before_event.1, "Before");

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

    // The events, by id: the create's (its relay may have published it and lost its commit to
    // the stop, so it may come again with the same id, as at-least-once delivery allows) and
    // one for the retry; none for the failed write, none for the repeat.
    let mut seen = std::collections::BTreeMap::new();
    // The relay retries on its own schedule: wait for the retry's event, then for quiet.
    while !seen.values().any(|name| name == "During") {
        let (id, name) = upserted(&mut events, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no event for the retry within 20 s: {seen:?}"));
        seen.insert(id, name);
    }
    while let Some((id, name)) = upserted(&mut events, Duration::from_millis(500)).await {
        seen.insert(id, name);
    }
    // The create's event again is allowed (same id), nothing else of it.
    if let Some(name) = seen.get(&before_event.0) {
        assert_eq!(name, "Before", "{seen:?}");
        seen.remove(&before_event.0);
    }
    let got: Vec<(String, String)> = seen.into_iter().collect();
    assert_eq!(
        got.len(),
        1,
        "one event for the retry, none for the failed write or the repeat: {got:?}"
    );
    assert_eq!(got[0].1, "During", "{got:?}");

    registry.shutdown().await.unwrap();
}
