//! The bus conformance suite, run on Redis Streams and on the in-process bus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::redis::RedisBus;
use chorus_kit::events::{Bus, SubscribeOptions, conformance, process_group};

fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// An event of its own for a Redis-only test.
fn counted(n: i64) -> chorus_proto::event::Envelope {
    chorus_kit::events::envelope(
        &chorus_kit::clock::Clock::system(),
        "tenant-a",
        &chorus_proto::types::Money {
            currency_code: "USD".into(),
            amount_minor: n,
        },
    )
}

fn topic() -> String {
    format!("test.{}", uuid::Uuid::new_v4().simple())
}

async fn redis() -> Arc<dyn Bus> {
    Arc::new(
        RedisBus::connect(&redis_url())
            .await
            .expect("redis is running (scripts/test starts it)"),
    )
}

fn memory() -> Arc<dyn Bus> {
    Arc::new(MemoryBus::new())
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod on_redis {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(redis().await, &topic()).await; })*
        }
        mod in_process {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(memory(), &topic()).await; })*
        }
    };
}

on_both!(
    delivers_in_order_with_envelope_intact,
    a_batch_arrives_in_order,
    a_new_group_starts_from_the_oldest_retained,
    a_group_may_start_at_the_end,
    a_deleted_group_starts_over,
    groups_fan_out_and_consumers_share,
    unacknowledged_events_are_reclaimed,
    a_failed_handler_runs_again_on_redelivery,
);

/// A process that crashed never deletes its per-process group; the next process of the same
/// kind deletes it once its heartbeat has expired, and leaves live groups,
/// young groups and other services' groups alone. (Redis only: the in-process bus dies with
/// its process.)
#[tokio::test]
async fn redis_sweeps_the_groups_of_crashed_processes() {
    let bus = redis().await;
    let topic = topic();
    let options = SubscribeOptions {
        poll: Duration::from_millis(100),
        delete_group_on_exit: true,
        sweep_after: Duration::from_millis(1500),
        ..SubscribeOptions::default()
    };
    // Crashed after reading: its consumer exists and goes idle.
    let crashed = process_group("cache");
    let mut sub = bus.subscribe(&topic, &crashed, "c", options.clone()).await.unwrap();
    assert!(sub.next(Duration::from_millis(50)).await.unwrap().is_none());
    drop(sub);
    // Crashed before its first read, an hour ago: no consumer, an old name.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let since_epoch = hour_ago.duration_since(std::time::UNIX_EPOCH).unwrap();
    let old_id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, since_epoch.as_secs(), 0));
    let never_read = format!("cache-{}", old_id.simple());
    drop(bus.subscribe(&topic, &never_read, "n", options.clone()).await.unwrap());
    // Alive: polls all along.
    let live = process_group("cache");
    let mut live_sub = bus.subscribe(&topic, &live, "l", options.clone()).await.unwrap();
    let polling = tokio::spawn(async move {
        loop {
            let _ = live_sub.next(Duration::from_millis(100)).await;
        }
    });
    // Another service's group, and another kind of per-process group: never this sweep's.
    let mut other = bus
        .subscribe(&topic, "matching", "m", SubscribeOptions::default())
        .await
        .unwrap();
    assert!(other.next(Duration::from_millis(50)).await.unwrap().is_none());
    let other_kind = process_group("index");
    drop(bus.subscribe(&topic, &other_kind, "i", options.clone()).await.unwrap());

    tokio::time::sleep(Duration::from_millis(1700)).await;
    // Just created by a process still starting: no consumer yet, but young.
    let young = process_group("cache");
    drop(bus.subscribe(&topic, &young, "y", options.clone()).await.unwrap());
    let newcomer = process_group("cache");
    drop(bus.subscribe(&topic, &newcomer, "z", options).await.unwrap());
    polling.abort();

    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let groups: redis::streams::StreamInfoGroupsReply =
        redis::AsyncCommands::xinfo_groups(&mut conn, &topic).await.unwrap();
    let mut names: Vec<String> = groups.groups.into_iter().map(|g| g.name).collect();
    names.sort();
    let mut expected = vec![live, "matching".to_owned(), other_kind, young, newcomer];
    expected.sort();
    assert_eq!(
        names, expected,
        "crashed {crashed} and never-read {never_read} are swept"
    );
}

/// A group that disappears under a live subscription (Redis restarted without persistence, or
/// the group was deleted) is created again, and events published afterwards arrive.
#[tokio::test]
async fn redis_recreates_a_group_that_disappeared() {
    let bus = redis().await;
    let topic = topic();
    let options = SubscribeOptions {
        poll: Duration::from_millis(100),
        start_at_end: true,
        ..SubscribeOptions::default()
    };
    let mut sub = bus.subscribe(&topic, "g", "c", options).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: bool = redis::AsyncCommands::xgroup_destroy(&mut conn, &topic, "g")
        .await
        .unwrap();
    // The next read finds the group gone and creates it again.
    assert!(sub.next(Duration::from_millis(300)).await.unwrap().is_none());
    let event = counted(5);
    bus.publish(&topic, &event).await.unwrap();
    let got = sub
        .next(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("delivered after the group came back");
    assert_eq!(got.envelope.id, event.id);
}

/// An entry without a readable envelope is skipped and acknowledged, not left pending to be
/// reclaimed forever; the events after it still arrive.
#[tokio::test]
async fn redis_acknowledges_unreadable_entries() {
    let bus = redis().await;
    let topic = topic();
    let options = SubscribeOptions {
        poll: Duration::from_millis(100),
        ..SubscribeOptions::default()
    };
    let mut sub = bus.subscribe(&topic, "g", "c", options).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::AsyncCommands::xadd(&mut conn, &topic, "*", &[("e", &b"\xff\xfe not protobuf"[..])])
        .await
        .unwrap();
    let _: String = redis::AsyncCommands::xadd(&mut conn, &topic, "*", &[("other", "field")])
        .await
        .unwrap();
    let event = counted(9);
    bus.publish(&topic, &event).await.unwrap();
    let got = sub
        .next(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the readable event");
    assert_eq!(got.envelope.id, event.id);
    sub.ack(&got).await.unwrap();
    let pending: redis::streams::StreamPendingReply =
        redis::AsyncCommands::xpending(&mut conn, &topic, "g").await.unwrap();
    assert_eq!(pending.count(), 0, "nothing left pending");
}
