//! The bus conformance suite, run on Redis Streams and on the in-process bus in memory and in a
//! file; then what each adapter does beyond it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::events::conformance::HISTORY;
use chorus_kit::events::memory::{MemoryBus, MemoryBusOptions};
use chorus_kit::events::redis::RedisBus;
use chorus_kit::events::{Bus, Delivery, SubscribeOptions, Subscription, conformance, process_group};

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

async fn redis() -> Arc<RedisBus> {
    Arc::new(
        RedisBus::connect(&redis_url())
            .await
            .expect("redis is running (scripts/test starts it)")
            .with_history(HISTORY),
    )
}

fn options() -> MemoryBusOptions {
    MemoryBusOptions {
        history: HISTORY,
        ..MemoryBusOptions::default()
    }
}

fn memory() -> Arc<MemoryBus> {
    Arc::new(MemoryBus::with_options(options()))
}

/// The file-backed in-process bus, in `dir` (which must outlive it).
async fn persistent(dir: &tempfile::TempDir) -> Arc<MemoryBus> {
    Arc::new(open(dir).await)
}

async fn open(dir: &tempfile::TempDir) -> MemoryBus {
    MemoryBus::open_with(dir.path().join("events.db"), options())
        .await
        .expect("open the events file")
}

macro_rules! on_all {
    ($($case:ident),* $(,)?) => {
        mod on_redis {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(redis().await, &topic()).await; })*
        }
        mod in_process {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(memory(), &topic()).await; })*
        }
        mod in_a_file {
            use super::*;
            $(#[tokio::test] async fn $case() {
                let dir = tempfile::tempdir().unwrap();
                let bus = persistent(&dir).await;
                conformance::$case(bus.clone(), &topic()).await;
                bus.close().await.unwrap();
            })*
        }
    };
}

on_all!(
    delivers_in_order_with_envelope_intact,
    a_batch_arrives_in_order,
    a_new_group_starts_from_the_oldest_retained,
    a_group_may_start_at_the_end,
    a_deleted_group_starts_over,
    groups_fan_out_and_consumers_share,
    unacknowledged_events_are_reclaimed,
    a_failed_handler_runs_again_on_redelivery,
    a_retry_comes_back_after_its_delay,
    lag_counts_what_a_group_has_not_acknowledged,
    nothing_unread_is_trimmed,
    the_log_shrinks_to_what_a_group_needs,
    a_topic_without_groups_keeps_recent_history,
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

const WAIT: Duration = Duration::from_secs(5);

fn quick() -> SubscribeOptions {
    SubscribeOptions {
        reclaim_after: Duration::from_millis(300),
        poll: Duration::from_millis(50),
        batch: 16,
        ..SubscribeOptions::default()
    }
}

fn batch(topic: &str, events: &[chorus_proto::event::Envelope]) -> Vec<(String, chorus_proto::event::Envelope)> {
    events.iter().map(|e| (topic.to_owned(), e.clone())).collect()
}

/// The next `n` deliveries, unacknowledged.
async fn take(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let mut got = Vec::with_capacity(n);
    for i in 0..n {
        let d = sub
            .next(WAIT)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("delivery {i} of {n} never came"));
        got.push(d);
    }
    got
}

fn ids(events: &[chorus_proto::event::Envelope]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn delivered_ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.envelope.id.clone()).collect()
}

async fn nothing_more(sub: &mut Box<dyn Subscription>) {
    if let Some(d) = sub.next(Duration::from_millis(400)).await.unwrap() {
        panic!("unexpected delivery {}", d.envelope.id);
    }
}

/// Rows of `topic` in the events file, read beside the bus.
async fn rows_in_file(dir: &tempfile::TempDir, topic: &str) -> i64 {
    use sqlx::Connection;
    let path = dir.path().join("events.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE topic = ?")
        .bind(topic)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n
}

/// Publish, consume part with acknowledgements, close, open again: the durable group gets what
/// it read without acknowledging and what it never read, in order, and nothing acknowledged.
#[tokio::test]
async fn in_a_file_a_durable_group_resumes_after_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let sent: Vec<_> = (0..300).map(counted).collect();
    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c1", quick()).await.unwrap();
    bus.publish_all(&batch(&topic, &sent)).await.unwrap();
    let read = take(&mut sub, 120).await;
    assert_eq!(delivered_ids(&read), ids(&sent[..120]));
    for d in &read[..100] {
        sub.ack(d).await.unwrap();
    }
    drop(sub);
    bus.close().await.unwrap();
    drop(bus);

    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c2", quick()).await.unwrap();
    let rest = take(&mut sub, 200).await;
    assert_eq!(delivered_ids(&rest), ids(&sent[100..]));
    for d in &rest {
        sub.ack(d).await.unwrap();
    }
    nothing_more(&mut sub).await;
    bus.close().await.unwrap();
}

/// The offset a durable group keeps is its lowest unacknowledged event: after a restart it
/// receives again what it acknowledged beyond that one (consumers dedupe by event id), while a
/// durable group that had read nothing gets everything.
#[tokio::test]
async fn in_a_file_a_group_resumes_at_its_oldest_unacknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let sent: Vec<_> = (0..50).map(counted).collect();
    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c1", quick()).await.unwrap();
    drop(bus.subscribe(&topic, "idle", "i1", quick()).await.unwrap());
    bus.publish_all(&batch(&topic, &sent)).await.unwrap();
    for (i, d) in take(&mut sub, 30).await.iter().enumerate() {
        if i != 20 {
            sub.ack(d).await.unwrap();
        }
    }
    drop(sub);
    bus.close().await.unwrap();
    drop(bus);

    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c2", quick()).await.unwrap();
    let rest = take(&mut sub, 30).await;
    assert_eq!(delivered_ids(&rest), ids(&sent[20..]));
    let mut idle = bus.subscribe(&topic, "idle", "i2", quick()).await.unwrap();
    assert_eq!(delivered_ids(&take(&mut idle, 50).await), ids(&sent));
    bus.close().await.unwrap();
}

/// What `publish` returned is in the file before any checkpoint: a process that died without
/// closing (its checkpoints never written) leaves every event for the next one, which
/// delivers them all again, acknowledged ones included.
#[tokio::test]
async fn in_a_file_what_was_published_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let sent: Vec<_> = (0..50).map(counted).collect();
    let never_flushes = MemoryBusOptions {
        flush_every: Duration::from_secs(3600),
        ..options()
    };
    let crashed = MemoryBus::open_with(dir.path().join("events.db"), never_flushes)
        .await
        .unwrap();
    let mut sub = crashed.subscribe(&topic, "g", "c1", quick()).await.unwrap();
    for e in &sent {
        crashed.publish(&topic, e).await.unwrap();
    }
    for d in take(&mut sub, 10).await {
        sub.ack(&d).await.unwrap();
    }
    // The crashed process is still "running" (never dropped, never closed) as the next opens
    // the file: only what it wrote before returning from publish counts.
    let next = open(&dir).await;
    let mut again = next.subscribe(&topic, "g", "c2", quick()).await.unwrap();
    let got = take(&mut again, 50).await;
    assert_eq!(delivered_ids(&got), ids(&sent));
    next.close().await.unwrap();
    drop(sub);
    crashed.close().await.unwrap();
}

/// Dropped without `close`, the bus writes its last checkpoint on its way out, best effort:
/// whatever the next process reads, the group receives every unacknowledged event, in order,
/// after at most some of the acknowledged ones.
#[tokio::test]
async fn in_a_file_a_dropped_bus_loses_nothing_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let sent: Vec<_> = (0..40).map(counted).collect();
    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c1", quick()).await.unwrap();
    bus.publish_all(&batch(&topic, &sent)).await.unwrap();
    for d in take(&mut sub, 25).await {
        sub.ack(&d).await.unwrap();
    }
    drop(sub);
    drop(bus);

    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, "g", "c2", quick()).await.unwrap();
    let first = sub.next(WAIT).await.unwrap().expect("a delivery");
    let from = sent
        .iter()
        .position(|e| e.id == first.envelope.id)
        .expect("one of the events sent");
    assert!(from <= 25, "event {from} first: unacknowledged events were skipped");
    let rest = take(&mut sub, sent.len() - from - 1).await;
    assert_eq!(delivered_ids(&rest), ids(&sent[from + 1..]));
    bus.close().await.unwrap();
}

/// A per-process group is not kept in the file: after a restart its name is free and a new
/// group of that name starting at the end sees only what comes next.
#[tokio::test]
async fn in_a_file_a_per_process_group_dies_with_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let group = process_group("cache");
    let per_process = SubscribeOptions {
        delete_group_on_exit: true,
        start_at_end: true,
        ..quick()
    };
    let bus = open(&dir).await;
    let sub = bus.subscribe(&topic, &group, "c1", per_process.clone()).await.unwrap();
    // A durable group beside it, whose progress the checkpoint records.
    let mut durable = bus.subscribe(&topic, "durable", "d1", quick()).await.unwrap();
    for n in 0..5 {
        bus.publish(&topic, &counted(n)).await.unwrap();
    }
    for d in take(&mut durable, 5).await {
        durable.ack(&d).await.unwrap();
    }
    // Closed while the group still exists (its subscription alive), as in a crash.
    bus.close().await.unwrap();
    drop(sub);
    drop(bus);

    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&topic, &group, "c2", per_process).await.unwrap();
    let after = counted(5);
    bus.publish(&topic, &after).await.unwrap();
    let got = sub.next(WAIT).await.unwrap().expect("a delivery");
    assert_eq!(got.envelope.id, after.id, "the group started over at the end");
    bus.close().await.unwrap();
}

/// Trimmed entries leave the file too: down to what a group has not acknowledged, then to the
/// history.
#[tokio::test]
async fn in_a_file_trimmed_entries_leave_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (read, unread) = (topic(), topic());
    let bus = open(&dir).await;
    let mut sub = bus.subscribe(&read, "g", "c1", quick()).await.unwrap();
    let sent: Vec<_> = (0..(3 * HISTORY as i64)).map(counted).collect();
    bus.publish_all(&batch(&read, &sent)).await.unwrap();
    bus.publish_all(&batch(&unread, &sent)).await.unwrap();
    assert_eq!(rows_in_file(&dir, &read).await, 300, "published means written");
    for d in take(&mut sub, 150).await {
        sub.ack(&d).await.unwrap();
    }
    bus.trim_now(&read).await.unwrap();
    bus.trim_now(&unread).await.unwrap();
    assert_eq!(
        rows_in_file(&dir, &read).await,
        150,
        "what the group has not acknowledged"
    );
    assert_eq!(rows_in_file(&dir, &unread).await, HISTORY as i64);
    for d in take(&mut sub, 150).await {
        sub.ack(&d).await.unwrap();
    }
    bus.trim_now(&read).await.unwrap();
    assert_eq!(rows_in_file(&dir, &read).await, HISTORY as i64, "the history");
    bus.close().await.unwrap();
}

/// A topic whose log was trimmed empty (no history kept) goes on numbering after it: a group
/// that acknowledged everything gets exactly what is published after a restart.
#[tokio::test]
async fn in_a_file_a_caught_up_group_gets_what_comes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic();
    let no_history = MemoryBusOptions {
        history: 0,
        ..options()
    };
    let path = dir.path().join("events.db");
    let bus = MemoryBus::open_with(&path, no_history.clone()).await.unwrap();
    let mut sub = bus.subscribe(&topic, "g", "c1", quick()).await.unwrap();
    let before: Vec<_> = (0..10).map(counted).collect();
    bus.publish_all(&batch(&topic, &before)).await.unwrap();
    for d in take(&mut sub, 10).await {
        sub.ack(&d).await.unwrap();
    }
    drop(sub);
    bus.close().await.unwrap();
    drop(bus);
    assert_eq!(rows_in_file(&dir, &topic).await, 0);

    let bus = MemoryBus::open_with(&path, no_history).await.unwrap();
    let mut sub = bus.subscribe(&topic, "g", "c2", quick()).await.unwrap();
    let after: Vec<_> = (10..15).map(counted).collect();
    bus.publish_all(&batch(&topic, &after)).await.unwrap();
    let got = take(&mut sub, 5).await;
    assert_eq!(delivered_ids(&got), ids(&after));
    for d in &got {
        sub.ack(d).await.unwrap();
    }
    nothing_more(&mut sub).await;
    bus.close().await.unwrap();
}

/// In process, a per-process group whose last subscription is gone (its consumer stopped
/// without deleting it) no longer holds back trimming: nobody can ever read it again.
#[tokio::test]
async fn in_process_an_abandoned_per_process_group_does_not_hold_the_log() {
    let bus = memory();
    let topic = topic();
    let per_process = SubscribeOptions {
        delete_group_on_exit: true,
        ..quick()
    };
    let abandoned = bus
        .subscribe(&topic, &process_group("cache"), "c", per_process)
        .await
        .unwrap();
    let mut durable = bus.subscribe(&topic, "g", "g1", quick()).await.unwrap();
    let sent: Vec<_> = (0..(3 * HISTORY as i64)).map(counted).collect();
    bus.publish_all(&batch(&topic, &sent)).await.unwrap();
    for d in take(&mut durable, sent.len()).await {
        durable.ack(&d).await.unwrap();
    }
    bus.trim_now(&topic).await.unwrap();
    let mut probe = bus.subscribe(&topic, "probe", "p", quick()).await.unwrap();
    let first = probe.next(WAIT).await.unwrap().expect("a delivery");
    assert_eq!(first.envelope.id, sent[0].id, "held while the group has a subscription");
    bus.delete_group(&topic, "probe").await.unwrap();
    drop(probe);
    drop(abandoned);
    bus.trim_now(&topic).await.unwrap();
    let mut late = bus.subscribe(&topic, "late", "l", quick()).await.unwrap();
    let first = late.next(WAIT).await.unwrap().expect("a delivery");
    assert_eq!(first.envelope.id, sent[2 * HISTORY].id, "only the history is left");
}

/// The publisher trims by itself, at most every `trim_every`: entries every group acknowledged
/// go, unread ones stay.
#[tokio::test]
async fn redis_publishers_trim_what_every_group_acknowledged() {
    let bus = RedisBus::connect(&redis_url())
        .await
        .unwrap()
        .with_trim_every(Duration::from_millis(100));
    let topic = topic();
    let mut sub = bus.subscribe(&topic, "g", "c", quick()).await.unwrap();
    let sent: Vec<_> = (0..50).map(counted).collect();
    bus.publish_all(&batch(&topic, &sent)).await.unwrap();
    for d in take(&mut sub, 50).await {
        sub.ack(&d).await.unwrap();
    }
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut unread = 0;
    loop {
        bus.publish(&topic, &counted(100 + unread)).await.unwrap();
        unread += 1;
        let len: i64 = redis::AsyncCommands::xlen(&mut conn, &topic).await.unwrap();
        if len == unread {
            break;
        }
        assert!(
            len > unread,
            "an unread entry was trimmed: {len} left of {unread} unread"
        );
        assert!(tokio::time::Instant::now() < deadline, "never trimmed: {len} entries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
