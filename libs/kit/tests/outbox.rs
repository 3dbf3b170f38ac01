//! The outbox and inbox on PostgreSQL and SQLite: events exist exactly when their transaction
//! commits, the relay publishes them in order, and the inbox dedupes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::outbox::{Inbox, MIGRATION_POSTGRES, MIGRATION_SQLITE, Outbox};
use chorus_kit::events::{Bus, SubscribeOptions, envelope, payload};
use chorus_kit::storage::{Database, Migrations, testing};
use chorus_proto::types::Money;

static MIGRATIONS: Migrations = Migrations {
    postgres: &[(1, "outbox", MIGRATION_POSTGRES)],
    sqlite: &[(1, "outbox", MIGRATION_SQLITE)],
};

fn money(n: i64) -> chorus_proto::event::Envelope {
    envelope(
        &chorus_kit::clock::Clock::system(),
        "",
        &Money {
            currency_code: "EUR".into(),
            amount_minor: n,
        },
    )
}

async fn outbox_publishes_only_committed_events_in_order(db: Database) {
    let outbox = Outbox::new();
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe("t", "g", "c", SubscribeOptions::default()).await.unwrap();

    let mut tx = db.pool.begin().await.unwrap();
    outbox.add(&mut tx, "t", &money(-1)).await.unwrap();
    tx.rollback().await.unwrap();
    for n in 0..600 {
        let mut tx = db.pool.begin().await.unwrap();
        outbox.add(&mut tx, "t", &money(n)).await.unwrap();
        tx.commit().await.unwrap();
    }
    let relay = outbox.relay(db.clone(), Arc::new(bus.clone()));
    assert_eq!(relay.publish_batch().await.unwrap(), 512);
    assert_eq!(relay.publish_batch().await.unwrap(), 88);
    assert_eq!(
        relay.publish_batch().await.unwrap(),
        0,
        "published events leave the outbox"
    );
    for n in 0..600 {
        let d = sub.next(Duration::from_secs(1)).await.unwrap().expect("event");
        assert_eq!(
            payload::<Money>(&d.envelope).unwrap().amount_minor,
            n,
            "in commit order, rolled back one absent"
        );
        sub.ack(&d).await.unwrap();
    }
}

async fn inbox_records_each_event_once(db: Database) {
    let mut conn = db.pool.acquire().await.unwrap();
    let clock = chorus_kit::clock::Clock::manual(1_700_000_000_123_456);
    assert!(Inbox::first_time(&mut conn, &clock, "matching", "e1").await.unwrap());
    assert!(!Inbox::first_time(&mut conn, &clock, "matching", "e1").await.unwrap());
    assert!(
        Inbox::first_time(&mut conn, &clock, "payouts", "e1").await.unwrap(),
        "per consumer"
    );
    let at: i64 = sqlx::query_scalar("SELECT processed_at FROM inbox WHERE consumer = 'matching'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(at, 1_700_000_000_123, "stamped by the given clock, in milliseconds");
}

async fn postgres() -> Database {
    let url = testing::fresh_postgres_url().await.unwrap();
    Database::connect(&url, &[&MIGRATIONS], 4).await.unwrap()
}

async fn sqlite(dir: &tempfile::TempDir) -> Database {
    Database::connect(&testing::sqlite_url_in(dir.path()), &[&MIGRATIONS], 4)
        .await
        .unwrap()
}

/// A bus that commits a waiting transaction while it publishes: the moment a relay's batch
/// is in flight.
#[derive(Debug)]
struct CommitsDuringPublish {
    inner: MemoryBus,
    waiting: tokio::sync::Mutex<Option<sqlx::Transaction<'static, sqlx::Any>>>,
}

#[async_trait::async_trait]
impl Bus for CommitsDuringPublish {
    async fn publish(&self, topic: &str, envelope: &chorus_proto::event::Envelope) -> chorus_kit::Result<()> {
        self.inner.publish(topic, envelope).await
    }
    async fn publish_all(&self, events: &[(String, chorus_proto::event::Envelope)]) -> chorus_kit::Result<()> {
        if let Some(tx) = self.waiting.lock().await.take() {
            tx.commit().await.unwrap();
        }
        self.inner.publish_all(events).await
    }
    async fn delete_group(&self, topic: &str, group: &str) -> chorus_kit::Result<()> {
        self.inner.delete_group(topic, group).await
    }
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        options: SubscribeOptions,
    ) -> chorus_kit::Result<Box<dyn chorus_kit::events::Subscription>> {
        self.inner.subscribe(topic, group, consumer, options).await
    }
    async fn lag(&self, topic: &str, group: &str) -> chorus_kit::Result<u64> {
        self.inner.lag(topic, group).await
    }
}

/// A transaction that took its sequence number first but commits while a later one is being
/// published: its event is still published, by the next batch (a `seq <= last` delete lost it).
#[tokio::test]
async fn an_event_committed_late_with_a_lower_seq_is_still_published() {
    let db = postgres().await;
    let outbox = Outbox::new();
    let mut slow = db.pool.begin().await.unwrap();
    outbox.add(&mut slow, "t", &money(1)).await.unwrap();
    let mut quick = db.pool.begin().await.unwrap();
    outbox.add(&mut quick, "t", &money(2)).await.unwrap();
    quick.commit().await.unwrap();
    let bus = Arc::new(CommitsDuringPublish {
        inner: MemoryBus::new(),
        waiting: tokio::sync::Mutex::new(Some(slow)),
    });
    let mut sub = bus.subscribe("t", "g", "c", SubscribeOptions::default()).await.unwrap();
    let relay = outbox.relay(db.clone(), bus.clone());
    assert_eq!(
        relay.publish_batch().await.unwrap(),
        1,
        "only the committed one was read"
    );
    assert_eq!(
        relay.publish_batch().await.unwrap(),
        1,
        "the late one, not deleted unpublished"
    );

    let mut got = Vec::new();
    while let Some(d) = sub.next(Duration::from_millis(200)).await.unwrap() {
        got.push(payload::<Money>(&d.envelope).unwrap().amount_minor);
        sub.ack(&d).await.unwrap();
    }
    assert_eq!(got, vec![2, 1]);
}

#[tokio::test]
async fn outbox_on_postgres() {
    outbox_publishes_only_committed_events_in_order(postgres().await).await;
}

#[tokio::test]
async fn outbox_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    outbox_publishes_only_committed_events_in_order(sqlite(&dir).await).await;
}

#[tokio::test]
async fn inbox_on_postgres() {
    inbox_records_each_event_once(postgres().await).await;
}

#[tokio::test]
async fn inbox_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    inbox_records_each_event_once(sqlite(&dir).await).await;
}

#[tokio::test]
async fn migrations_run_once_even_when_replicas_race() {
    let url = testing::fresh_postgres_url().await.unwrap();
    let sets = [&MIGRATIONS];
    let (a, b) = tokio::join!(Database::connect(&url, &sets, 2), Database::connect(&url, &sets, 2));
    a.unwrap();
    b.unwrap();
}
