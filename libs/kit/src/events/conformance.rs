//! The contract every [`Bus`] adapter keeps, as functions a test calls with a fresh bus and a
//! topic of its own. `libs/kit/tests/bus.rs` runs them on Redis, in memory and on the
//! file-backed in-process bus.

// Test support: a broken contract must fail the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chorus_proto::event::Envelope;
use chorus_proto::types::Money;

use super::memory::MemoryBus;
use super::redis::RedisBus;
use super::{Bus, SubscribeOptions, Subscription, envelope, payload};
use crate::error::Error;

/// The history the retention cases build their buses with (`MemoryBusOptions::history`,
/// `RedisBus::with_history`): what a topic without groups keeps.
pub const HISTORY: usize = 100;

/// What the retention cases need beyond the port: trimming now, rather than on the adapter's
/// own schedule.
#[async_trait]
pub trait Trim: Bus {
    async fn trim(&self, topic: &str) -> Result<(), Error>;
}

#[async_trait]
impl Trim for MemoryBus {
    async fn trim(&self, topic: &str) -> Result<(), Error> {
        self.trim_now(topic).await
    }
}

#[async_trait]
impl Trim for RedisBus {
    async fn trim(&self, topic: &str) -> Result<(), Error> {
        self.trim_now(topic).await.map(drop)
    }
}

fn event(n: i64) -> chorus_proto::event::Envelope {
    envelope(
        &crate::clock::Clock::system(),
        "tenant-a",
        &Money {
            currency_code: "USD".into(),
            amount_minor: n,
        },
    )
}

fn fast() -> SubscribeOptions {
    SubscribeOptions {
        reclaim_after: Duration::from_millis(300),
        poll: Duration::from_millis(50),
        batch: 16,
        start_at_end: false,
        ..SubscribeOptions::default()
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// Every event published reaches a group once, in order, with its envelope intact.
pub async fn delivers_in_order_with_envelope_intact(bus: Arc<dyn Bus>, topic: &str) {
    let mut sub = bus.subscribe(topic, "g", "c1", fast()).await.expect("subscribe");
    let sent: Vec<_> = (0..20).map(event).collect();
    for e in &sent {
        bus.publish(topic, e).await.expect("publish");
    }
    for want in &sent {
        let got = sub.next(WAIT).await.expect("next").expect("a delivery");
        assert_eq!(&got.envelope, want, "envelope changed in transit");
        assert_eq!(got.attempt, 1);
        sub.ack(&got).await.expect("ack");
    }
    let amount: Money = payload(&sent[7]).expect("payload");
    assert_eq!(amount.amount_minor, 7);
    assert!(
        sub.next(Duration::from_millis(200)).await.expect("next").is_none(),
        "nothing more to deliver"
    );
}

/// A batch published in one call arrives whole and in order.
pub async fn a_batch_arrives_in_order(bus: Arc<dyn Bus>, topic: &str) {
    let mut sub = bus.subscribe(topic, "g", "c1", fast()).await.expect("subscribe");
    let batch: Vec<_> = (0..50).map(|n| (topic.to_owned(), event(n))).collect();
    bus.publish_all(&batch).await.expect("publish all");
    for (_, want) in &batch {
        let got = sub.next(WAIT).await.expect("next").expect("a delivery");
        assert_eq!(&got.envelope, want);
        sub.ack(&got).await.expect("ack");
    }
}

/// A group created after events were published still receives them.
pub async fn a_new_group_starts_from_the_oldest_retained(bus: Arc<dyn Bus>, topic: &str) {
    bus.publish(topic, &event(1)).await.expect("publish");
    let mut sub = bus.subscribe(topic, "late", "c1", fast()).await.expect("subscribe");
    let got = sub.next(WAIT).await.expect("next").expect("a delivery");
    assert_eq!(payload::<Money>(&got.envelope).expect("payload").amount_minor, 1);
}

/// A deleted group is gone: joining it again starts a new group from the oldest retained
/// (retained here because another group has not read it).
pub async fn a_deleted_group_starts_over(bus: Arc<dyn Bus>, topic: &str) {
    let _unread = bus.subscribe(topic, "other", "o1", fast()).await.expect("subscribe");
    bus.publish(topic, &event(1)).await.expect("publish");
    let mut sub = bus.subscribe(topic, "once", "c1", fast()).await.expect("subscribe");
    let got = sub.next(WAIT).await.expect("next").expect("a delivery");
    sub.ack(&got).await.expect("ack");
    drop(sub);
    bus.delete_group(topic, "once").await.expect("delete group");
    let mut again = bus.subscribe(topic, "once", "c1", fast()).await.expect("subscribe");
    let replay = again
        .next(WAIT)
        .await
        .expect("next")
        .expect("the new group starts from the oldest");
    assert_eq!(replay.envelope.id, got.envelope.id);
}

/// A group asked to start at the end sees only what is published after it joined.
pub async fn a_group_may_start_at_the_end(bus: Arc<dyn Bus>, topic: &str) {
    bus.publish(topic, &event(1)).await.expect("publish");
    let options = SubscribeOptions {
        start_at_end: true,
        ..fast()
    };
    let mut sub = bus.subscribe(topic, "tail", "c1", options).await.expect("subscribe");
    bus.publish(topic, &event(2)).await.expect("publish");
    let got = sub.next(WAIT).await.expect("next").expect("a delivery");
    assert_eq!(payload::<Money>(&got.envelope).expect("payload").amount_minor, 2);
}

/// Each group gets every event; consumers within a group share them without duplicates.
pub async fn groups_fan_out_and_consumers_share(bus: Arc<dyn Bus>, topic: &str) {
    let mut a1 = bus.subscribe(topic, "a", "a1", fast()).await.expect("subscribe");
    let mut a2 = bus.subscribe(topic, "a", "a2", fast()).await.expect("subscribe");
    let mut b = bus.subscribe(topic, "b", "b1", fast()).await.expect("subscribe");
    for n in 0..30 {
        bus.publish(topic, &event(n)).await.expect("publish");
    }
    let mut seen_a = HashSet::new();
    let mut turns = 0;
    while seen_a.len() < 30 && turns < 200 {
        turns += 1;
        for sub in [&mut a1, &mut a2] {
            if let Some(d) = sub.next(Duration::from_millis(20)).await.expect("next") {
                assert!(seen_a.insert(d.envelope.id.clone()), "group a got an event twice");
                sub.ack(&d).await.expect("ack");
            }
        }
    }
    assert_eq!(seen_a.len(), 30, "group a got every event");
    let mut seen_b = 0;
    while let Some(d) = b.next(Duration::from_millis(300)).await.expect("next") {
        seen_b += 1;
        b.ack(&d).await.expect("ack");
    }
    assert_eq!(seen_b, 30, "group b got every event too");
}

/// What a consumer read and never acknowledged goes to another consumer of the group.
pub async fn unacknowledged_events_are_reclaimed(bus: Arc<dyn Bus>, topic: &str) {
    let mut dead = bus.subscribe(topic, "g", "dead", fast()).await.expect("subscribe");
    bus.publish(topic, &event(42)).await.expect("publish");
    let first = dead.next(WAIT).await.expect("next").expect("a delivery");
    drop(dead); // crashed before acknowledging
    let mut alive = bus.subscribe(topic, "g", "alive", fast()).await.expect("subscribe");
    let again = alive.next(WAIT).await.expect("next").expect("the event is redelivered");
    assert_eq!(again.envelope.id, first.envelope.id);
    assert!(again.attempt >= 2, "redelivery counts attempts, got {}", again.attempt);
    alive.ack(&again).await.expect("ack");
    assert!(
        alive.next(Duration::from_millis(600)).await.expect("next").is_none(),
        "acknowledged events stay done"
    );
}

/// A handler that fails leaves its event unacknowledged; the redelivery runs the handler
/// again (it is not taken for a duplicate), and a duplicate of a done event does not.
pub async fn a_failed_handler_runs_again_on_redelivery(bus: Arc<dyn Bus>, topic: &str) {
    use std::sync::Mutex;
    let first = event(7);
    bus.publish(topic, &first).await.expect("publish");
    bus.publish(topic, &first).await.expect("publish a duplicate");
    bus.publish(topic, &event(8)).await.expect("publish");
    let calls: Arc<Mutex<Vec<(i64, bool)>>> = Arc::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = {
        let calls = calls.clone();
        let bus = bus.clone();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            super::consume(
                bus,
                &topic,
                "g",
                "only",
                fast(),
                move |envelope| {
                    let calls = calls.clone();
                    async move {
                        let n = payload::<Money>(&envelope)?.amount_minor;
                        let mut calls = calls.lock().expect("lock");
                        // The first attempt at 7 fails; everything else succeeds.
                        let fail = n == 7 && !calls.iter().any(|(m, _)| *m == 7);
                        calls.push((n, !fail));
                        if fail {
                            Err(crate::Error::new(crate::ErrorCode::Unavailable, "try again"))
                        } else {
                            Ok(())
                        }
                    }
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await
        })
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !calls.lock().expect("lock").contains(&(7, true)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "7 never succeeded: {:?}",
            calls.lock()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _ = stop.send(());
    consumer.await.expect("join").expect("consume");
    let calls = calls.lock().expect("lock").clone();
    assert_eq!(calls.iter().filter(|c| **c == (7, false)).count(), 1, "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| **c == (7, true)).count(),
        1,
        "run again, once: {calls:?}"
    );
    assert_eq!(calls.iter().filter(|c| c.0 == 8).count(), 1, "{calls:?}");
}

/// A failed delivery handed back with `retry_after` comes back after its delay, long before
/// the reclaim period, with each attempt counted, and stays done once acknowledged.
pub async fn a_retry_comes_back_after_its_delay(bus: Arc<dyn Bus>, topic: &str) {
    let options = SubscribeOptions {
        reclaim_after: Duration::from_secs(60),
        ..fast()
    };
    let mut sub = bus.subscribe(topic, "g", "c1", options).await.expect("subscribe");
    let sent = event(9);
    bus.publish(topic, &sent).await.expect("publish");
    let started = tokio::time::Instant::now();
    let mut delivery = sub.next(WAIT).await.expect("next").expect("a delivery");
    for attempt in 1..=3 {
        assert_eq!(delivery.envelope.id, sent.id);
        assert_eq!(delivery.attempt, attempt, "every attempt is counted");
        if attempt == 3 {
            break;
        }
        sub.retry_after(&delivery, Duration::from_millis(100))
            .await
            .expect("retry after");
        delivery = sub.next(WAIT).await.expect("next").expect("the retry comes back");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "retries came back after their delay, not after the 60 s reclaim period"
    );
    sub.ack(&delivery).await.expect("ack");
    assert!(
        sub.next(Duration::from_millis(300)).await.expect("next").is_none(),
        "acknowledged events stay done"
    );
}

/// A group's lag is what it has not acknowledged: delivered and pending, or not yet delivered.
pub async fn lag_counts_what_a_group_has_not_acknowledged(bus: Arc<dyn Bus>, topic: &str) {
    assert_eq!(bus.lag(topic, "g").await.expect("lag"), 0, "no topic, no lag");
    let mut sub = bus.subscribe(topic, "g", "c1", fast()).await.expect("subscribe");
    for n in 0..5 {
        bus.publish(topic, &event(n)).await.expect("publish");
    }
    assert_eq!(bus.lag(topic, "g").await.expect("lag"), 5, "none delivered");
    let first = sub.next(WAIT).await.expect("next").expect("a delivery");
    let second = sub.next(WAIT).await.expect("next").expect("a delivery");
    assert_eq!(bus.lag(topic, "g").await.expect("lag"), 5, "delivered but pending");
    sub.ack(&first).await.expect("ack");
    sub.ack(&second).await.expect("ack");
    assert_eq!(bus.lag(topic, "g").await.expect("lag"), 3, "two acknowledged");
    assert_eq!(bus.lag(topic, "other").await.expect("lag"), 0, "no such group");
}

/// Publishes `events` in batches of 100, as the outbox relay would.
async fn publish_in_batches(bus: &dyn Bus, topic: &str, events: &[Envelope]) {
    let batch: Vec<(String, Envelope)> = events.iter().map(|e| (topic.to_owned(), e.clone())).collect();
    for chunk in batch.chunks(100) {
        bus.publish_all(chunk).await.expect("publish all");
    }
}

/// Reads and acknowledges as many deliveries as `want` holds, asserting they are `want`, in order.
async fn read_in_order(sub: &mut Box<dyn Subscription>, want: &[Envelope], what: &str) {
    for (i, want) in want.iter().enumerate() {
        let got = sub
            .next(WAIT)
            .await
            .expect("next")
            .unwrap_or_else(|| panic!("{what}: event {i} ({}) never came", want.id));
        assert_eq!(got.envelope.id, want.id, "{what}: event {i} out of order");
        sub.ack(&got).await.expect("ack");
    }
}

/// Nothing a group has not acknowledged is trimmed: a group that has read nothing still gets
/// every event after another acknowledged them all and the bus trimmed, well beyond the
/// history a topic without groups keeps; so does a group whose consumer read some and died.
pub async fn nothing_unread_is_trimmed<B: Trim>(bus: Arc<B>, topic: &str) {
    let sent: Vec<_> = (0..(12 * HISTORY as i64)).map(event).collect();
    let mut quick = bus.subscribe(topic, "quick", "q", fast()).await.expect("subscribe");
    let mut slow = bus.subscribe(topic, "slow", "s", fast()).await.expect("subscribe");
    let mut dead = bus.subscribe(topic, "died", "d1", fast()).await.expect("subscribe");
    publish_in_batches(bus.as_ref(), topic, &sent).await;
    read_in_order(&mut quick, &sent, "quick").await;
    for _ in 0..10 {
        dead.next(WAIT).await.expect("next").expect("a delivery"); // never acknowledged
    }
    drop(dead);
    bus.trim(topic).await.expect("trim");
    read_in_order(&mut slow, &sent, "slow").await;
    bus.trim(topic).await.expect("trim"); // now only the dead consumer's group holds the log
    let mut heir = bus.subscribe(topic, "died", "d2", fast()).await.expect("subscribe");
    let mut seen = HashSet::new();
    while seen.len() < sent.len() {
        let got = heir
            .next(WAIT)
            .await
            .expect("next")
            .unwrap_or_else(|| panic!("the dead consumer's group got {} of {}", seen.len(), sent.len()));
        seen.insert(got.envelope.id.clone());
        heir.ack(&got).await.expect("ack");
    }
}

/// Trimming removes what every group acknowledged: a group created afterwards starts at the
/// oldest entry a group still needs (one that is pending counts), and once all acknowledged
/// everything it finds at most the newest [`HISTORY`] (an adapter may keep that much history;
/// the in-process bus does, Redis does not).
pub async fn the_log_shrinks_to_what_a_group_needs<B: Trim>(bus: Arc<B>, topic: &str) {
    let sent: Vec<_> = (0..(5 * HISTORY as i64)).map(event).collect();
    let mut a = bus.subscribe(topic, "a", "a1", fast()).await.expect("subscribe");
    let mut b = bus.subscribe(topic, "b", "b1", fast()).await.expect("subscribe");
    publish_in_batches(bus.as_ref(), topic, &sent).await;
    read_in_order(&mut a, &sent, "a").await;
    read_in_order(&mut b, &sent[..200], "b").await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(b.next(WAIT).await.expect("next").expect("a delivery"));
    }
    bus.trim(topic).await.expect("trim");
    let mut late = bus.subscribe(topic, "late", "l1", fast()).await.expect("subscribe");
    read_in_order(&mut late, &sent[200..], "late").await;
    for d in &held {
        b.ack(d).await.expect("ack");
    }
    read_in_order(&mut b, &sent[210..], "b").await;
    bus.trim(topic).await.expect("trim");
    let mut later = bus.subscribe(topic, "later", "l2", fast()).await.expect("subscribe");
    let mut kept = Vec::new();
    while let Some(d) = later.next(Duration::from_millis(300)).await.expect("next") {
        kept.push(d.envelope.id.clone());
        later.ack(&d).await.expect("ack");
    }
    assert!(
        kept.len() <= HISTORY,
        "{} entries acknowledged by every group still retained",
        kept.len()
    );
    let newest: Vec<_> = sent[sent.len() - kept.len()..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(kept, newest, "what is kept is the newest, in order");
}

/// A topic without groups keeps its newest [`HISTORY`] entries for the first group to join.
pub async fn a_topic_without_groups_keeps_recent_history<B: Trim>(bus: Arc<B>, topic: &str) {
    let sent: Vec<_> = (0..(HISTORY as i64 + 50)).map(event).collect();
    publish_in_batches(bus.as_ref(), topic, &sent).await;
    bus.trim(topic).await.expect("trim");
    let mut first = bus.subscribe(topic, "first", "f", fast()).await.expect("subscribe");
    read_in_order(&mut first, &sent[50..], "first").await;
    assert!(
        first.next(Duration::from_millis(200)).await.expect("next").is_none(),
        "nothing older than the history"
    );
}
