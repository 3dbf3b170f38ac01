//! The transactional outbox and the inbox. A service adds its events to `outbox` inside the
//! transaction that makes the change, so an event exists if and only if the change committed;
//! the [`Relay`] publishes them to the bus in order and deletes them. A consumer that keeps its
//! effect in a database records each event id in `inbox` in the same transaction as the effect,
//! so a redelivery is harmless.

use std::sync::Arc;
use std::time::Duration;

use chorus_proto::event::Envelope;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;

use super::{Bus, decode, encode};
use crate::error::Error;
use crate::storage::{Backend, Database, placeholders};

/// Outbox and inbox tables, as a migration each service lists first.
pub const MIGRATION_POSTGRES: &str = "
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope BYTEA NOT NULL
);
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);";

pub const MIGRATION_SQLITE: &str = "
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);";

/// Only one relay per database publishes at a time, which keeps the order of events.
const RELAY_LOCK: i64 = 0x0c40_0500;
const RELAY_BATCH: i64 = 512;

/// Writes events into the outbox and wakes the relay after a commit.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Adds `envelope` for `topic`; call inside the transaction of the change.
    pub async fn add(&self, conn: &mut AnyConnection, topic: &str, envelope: &Envelope) -> Result<(), Error> {
        self.add_many(conn, topic, std::slice::from_ref(envelope)).await
    }

    /// Adds many envelopes for `topic` in multi-row statements; call inside the transaction.
    pub async fn add_many(&self, conn: &mut AnyConnection, topic: &str, envelopes: &[Envelope]) -> Result<(), Error> {
        for chunk in envelopes.chunks(500) {
            let sql = format!(
                "INSERT INTO outbox (topic, event_id, envelope) VALUES {}",
                placeholders(chunk.len(), 3, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q.bind(topic.to_owned()).bind(e.id.clone()).bind(encode(e));
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Tells the relay there is something to publish; call after the commit.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// The relay for this outbox.
    pub fn relay(&self, db: Database, bus: Arc<dyn Bus>) -> Relay {
        Relay {
            db,
            bus,
            wake: self.wake.clone(),
            idle_poll: Duration::from_millis(500),
        }
    }
}

/// Moves committed events from the outbox to the bus.
#[derive(Debug)]
pub struct Relay {
    db: Database,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    idle_poll: Duration,
}

impl Relay {
    /// Publishes until `shutdown` resolves, then once more so nothing committed is left behind.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            let published = match self.publish_batch().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed, retrying");
                    0
                }
            };
            if published as i64 == RELAY_BATCH {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.idle_poll) => {}
            }
        }
        while let Ok(n) = self.publish_batch().await {
            if n == 0 {
                break;
            }
        }
    }

    /// Publishes up to one batch; returns how many events it published.
    pub async fn publish_batch(&self) -> Result<usize, Error> {
        match self.db.backend {
            Backend::Postgres => {
                // Replicas share the outbox: one relay at a time, so order holds.
                let mut tx = self.db.pool.begin().await?;
                let locked: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(RELAY_LOCK)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                if !locked {
                    return Ok(0);
                }
                let n = self.publish_from(&mut tx).await?;
                tx.commit().await?;
                Ok(n)
            }
            // One process owns a SQLite file, so one relay. No transaction: a read transaction
            // that later writes fails at once in WAL mode when another writer committed in
            // between, while a plain DELETE waits for the lock (busy_timeout).
            Backend::Sqlite => {
                let mut conn = self.db.pool.acquire().await?;
                self.publish_from(&mut conn).await
            }
        }
    }

    async fn publish_from(&self, conn: &mut AnyConnection) -> Result<usize, Error> {
        let rows = sqlx::query("SELECT seq, topic, envelope FROM outbox ORDER BY seq LIMIT $1")
            .bind(RELAY_BATCH)
            .fetch_all(&mut *conn)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        let mut spans = Vec::new();
        for row in &rows {
            seqs.push(row.try_get::<i64, _>("seq")?);
            let topic: String = row.try_get("topic")?;
            let bytes: Vec<u8> = row.try_get("envelope")?;
            let mut envelope = decode(&bytes)?;
            spans.extend(crate::telemetry::publish_span(&topic, &mut envelope));
            events.push((topic, envelope));
        }
        self.bus.publish_all(&events).await?;
        drop(spans);
        // Exactly the rows published. Sequence numbers are taken at insert and transactions
        // commit in any order, so a lower seq may commit while this batch is in flight: a
        // `seq <= last` would delete it unpublished. It goes out with the next batch instead
        // (consumers apply a change only when it is newer, so that order is safe).
        let mut sql = String::from("DELETE FROM outbox WHERE seq IN (");
        for i in 1..=seqs.len() {
            if i > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${i}"));
        }
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for seq in seqs {
            q = q.bind(seq);
        }
        q.execute(&mut *conn).await?;
        Ok(rows.len())
    }
}

/// Consumer-side dedupe in the consumer's own database.
#[derive(Debug, Clone, Copy)]
pub struct Inbox;

impl Inbox {
    /// Records that `consumer` processed `event_id` (at the clock's time); false when it
    /// already had. Call in the transaction of the effect and skip the effect on false.
    pub async fn first_time(
        conn: &mut AnyConnection,
        clock: &crate::clock::Clock,
        consumer: &str,
        event_id: &str,
    ) -> Result<bool, Error> {
        let now = clock.now_micros() / 1000;
        let done = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// [`Inbox::first_time`] for several events in one statement: the ids among `event_ids`
    /// that `consumer` had not processed, now recorded.
    pub async fn first_times(
        conn: &mut AnyConnection,
        clock: &crate::clock::Clock,
        consumer: &str,
        event_ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, Error> {
        let now = clock.now_micros() / 1000;
        let mut fresh = std::collections::HashSet::with_capacity(event_ids.len());
        for chunk in event_ids.chunks(1_000) {
            let sql = format!(
                "INSERT INTO inbox (consumer, event_id, processed_at) VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
                placeholders(chunk.len(), 3, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(consumer).bind(*id).bind(now);
            }
            for row in q.fetch_all(&mut *conn).await? {
                fresh.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(fresh)
    }
}
