//! Durable timers: "at T, publish event E". A service schedules a timer inside the transaction
//! of the change that calls for it (a contract's due date, an offer's expiry); the kit's timer
//! task fires it when the service's [`Clock`] reaches T by moving it into the outbox and deleting
//! it in one transaction, so it survives restarts and fires once. A timer has a key: scheduling
//! the same key again moves it, and [`Timers::cancel`] removes it (the deliverable arrived).
//! Replicas share the table; on PostgreSQL each due timer is taken by one of them
//! (`FOR UPDATE SKIP LOCKED`).

use std::sync::Arc;
use std::time::Duration;

use chorus_proto::event::Envelope;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Micros, timestamp};
use crate::error::Error;
use crate::events::outbox::Outbox;
use crate::events::{decode, encode};
use crate::storage::{Backend, Database, placeholders};

pub const MIGRATION_POSTGRES: &str = "
CREATE TABLE timers (
    key TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    topic TEXT NOT NULL,
    envelope BYTEA NOT NULL
);
CREATE INDEX timers_due ON timers (due_at);";

pub const MIGRATION_SQLITE: &str = "
CREATE TABLE timers (
    key TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    topic TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX timers_due ON timers (due_at);";

/// Timers fired per transaction.
const BATCH: i64 = 256;
/// Rows per multi-row statement: 4 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const MAX_ROWS: usize = 500;
/// How often the task looks for timers other replicas scheduled.
const POLL: Duration = Duration::from_secs(1);

/// A service's timers.
#[derive(Debug, Clone)]
pub struct Timers {
    db: Database,
    outbox: Outbox,
    clock: Clock,
    wake: Arc<Notify>,
}

impl Timers {
    pub fn new(db: Database, outbox: Outbox, clock: Clock) -> Self {
        Timers {
            db,
            outbox,
            clock,
            wake: Arc::new(Notify::new()),
        }
    }

    /// At `at`, publish `envelope` on `topic`. Call inside the transaction of the change that
    /// calls for it, then [`Timers::scheduled`] after the commit. A timer with the same `key`
    /// is replaced.
    pub async fn schedule(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        at: Micros,
        topic: &str,
        envelope: &Envelope,
    ) -> Result<(), Error> {
        self.schedule_many(conn, [(key, at, topic, envelope)]).await
    }

    /// [`Timers::schedule`] for many timers, in multi-row statements: `(key, at, topic,
    /// envelope)` each. Of timers given twice under one key, the last one counts, as if
    /// scheduled one after the other.
    pub async fn schedule_many<'a>(
        &self,
        conn: &mut AnyConnection,
        timers: impl IntoIterator<Item = (&'a str, Micros, &'a str, &'a Envelope)>,
    ) -> Result<(), Error> {
        // One statement cannot upsert a key twice (PostgreSQL refuses), so the last of each
        // key is kept, in first-seen order.
        let mut rows: Vec<(&str, Micros, &str, &Envelope)> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for t in timers {
            match seen.get(t.0) {
                Some(&i) => rows[i] = t,
                None => {
                    seen.insert(t.0, rows.len());
                    rows.push(t);
                }
            }
        }
        for chunk in rows.chunks(MAX_ROWS) {
            let sql = format!(
                "INSERT INTO timers (key, due_at, topic, envelope) VALUES {} \
                 ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, topic = excluded.topic, \
                 envelope = excluded.envelope",
                placeholders(chunk.len(), 4, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (key, at, topic, envelope) in chunk {
                q = q
                    .bind(key.to_string())
                    .bind(*at)
                    .bind(topic.to_string())
                    .bind(encode(envelope));
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Removes the timer `key`; whether there was one (a fired timer is gone already).
    pub async fn cancel(&self, conn: &mut AnyConnection, key: &str) -> Result<bool, Error> {
        Ok(self.cancel_many(conn, [key]).await? == 1)
    }

    /// Removes the timers named; how many there were.
    pub async fn cancel_many<'a>(
        &self,
        conn: &mut AnyConnection,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<u64, Error> {
        let keys: Vec<&str> = keys.into_iter().collect();
        let mut gone = 0;
        for chunk in keys.chunks(MAX_ROWS) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("DELETE FROM timers WHERE key IN ({})", marks.join(", "));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                q = q.bind(key.to_string());
            }
            gone += q.execute(&mut *conn).await?.rows_affected();
        }
        Ok(gone)
    }

    /// Tells the timer task a timer was scheduled; call after the commit.
    pub fn scheduled(&self) {
        self.wake.notify_one();
    }

    /// When the next timer is due, if any.
    pub async fn next_due(&self) -> Result<Option<Micros>, Error> {
        let row = sqlx::query("SELECT MIN(due_at) AS due FROM timers")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Fires every timer due by the clock's now; how many it fired.
    pub async fn fire_due(&self) -> Result<usize, Error> {
        let mut fired = 0;
        loop {
            let n = self.fire_batch().await?;
            fired += n;
            if (n as i64) < BATCH {
                break;
            }
        }
        if fired > 0 {
            self.outbox.committed();
        }
        Ok(fired)
    }

    async fn fire_batch(&self) -> Result<usize, Error> {
        let now = self.clock.now_micros();
        let lock = match self.db.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The DELETE comes first: on SQLite a transaction that reads and then writes fails when
        // another writer committed in between; one that writes first waits its turn.
        let sql = format!(
            "DELETE FROM timers WHERE key IN \
             (SELECT key FROM timers WHERE due_at <= $1 ORDER BY due_at, key LIMIT $2{lock}) \
             RETURNING key, due_at, topic, envelope"
        );
        let mut tx = self.db.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let mut due: Vec<(i64, String, String, Envelope)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let bytes: Vec<u8> = row.try_get("envelope")?;
            let mut envelope = decode(&bytes)?;
            let at: i64 = row.try_get("due_at")?;
            // The event happens when it is due, whenever the timer was set.
            envelope.occur_time = Some(timestamp(at));
            due.push((at, row.try_get("key")?, row.try_get("topic")?, envelope));
        }
        // In due order, so the events of one topic leave in the order their times came.
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, _, topic, envelope) in &due {
            self.outbox.add(&mut tx, topic, envelope).await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    /// Fires timers as they fall due until `stop`: wakes at the next due time (on the clock,
    /// so a driven clock that jumps fires them at once), when one is scheduled here, and
    /// every second for the ones other replicas scheduled.
    pub async fn run(self, stop: CancellationToken) -> Result<(), Error> {
        loop {
            let woken = self.wake.notified();
            if let Err(e) = self.fire_due().await {
                tracing::warn!(error = %e, "firing timers failed, retrying");
            }
            let next = match self.next_due().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the next timer failed");
                    None
                }
            };
            let until = next.unwrap_or(i64::MAX);
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = woken => {}
                () = self.clock.sleep_until(until) => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
