//! Dead letters: events a consumer gave up on. A handler that fails gets a bounded number of
//! attempts ([`Retries`]); after the last, the event is kept here (its envelope, the topic and
//! group it came through, how often it failed and the last error) and acknowledged, so the
//! events behind it go on. An operator lists them and replays them once the cause is mended
//! (`admin`, the EventAdminService every service serves).

use std::time::Duration;

use chorus_proto::event::Envelope;
use sqlx::Row;

use crate::clock::{Clock, Micros};
use crate::error::Error;
use crate::events::{decode, encode, event_type};
use crate::storage::Database;

pub const MIGRATION_POSTGRES: &str = "
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    envelope BYTEA NOT NULL,
    attempts BIGINT NOT NULL,
    error TEXT NOT NULL,
    dead_at BIGINT NOT NULL,
    UNIQUE (topic, consumer_group, event_id)
);";

pub const MIGRATION_SQLITE: &str = "
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    envelope BLOB NOT NULL,
    attempts BIGINT NOT NULL,
    error TEXT NOT NULL,
    dead_at BIGINT NOT NULL,
    UNIQUE (topic, consumer_group, event_id)
);";

/// How a consumer retries a failing handler before it sets the event aside.
#[derive(Debug, Clone)]
pub struct Retries {
    /// Attempts in all, the first included (`CHORUS_EVENT_MAX_ATTEMPTS`, 5).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each one after, up to the
    /// subscription's `reclaim_after` (`CHORUS_EVENT_RETRY_DELAY_MS`, 1000).
    pub delay: Duration,
    /// Where events go after the last attempt.
    pub dead_letters: DeadLetters,
}

impl Retries {
    /// The wait after failed attempt `attempt` (1 for the first).
    pub fn delay_after(&self, attempt: u32, ceiling: Duration) -> Duration {
        backoff(self.delay, attempt, ceiling)
    }
}

/// `base` doubled for each attempt after the first, at most `ceiling`.
fn backoff(base: Duration, attempt: u32, ceiling: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(ceiling)
}

/// One event set aside.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub topic: String,
    pub group: String,
    pub event_id: String,
    pub event_type: String,
    pub envelope: Envelope,
    /// How often the handler failed on it.
    pub attempts: i64,
    /// The last error.
    pub error: String,
    /// When it was set aside, or last failed a replay (the service's clock).
    pub dead_at: Micros,
}

const COLUMNS: &str = "id, topic, consumer_group, event_id, event_type, envelope, attempts, error, dead_at";

/// The dead letters of one service's database.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    db: Database,
    clock: Clock,
}

impl DeadLetters {
    pub fn new(db: Database, clock: Clock) -> Self {
        DeadLetters { db, clock }
    }

    /// Sets `envelope` aside after `attempts` failures with `error`. The same event through
    /// the same group again (its acknowledgement was lost) updates the one row.
    pub async fn record(
        &self,
        topic: &str,
        group: &str,
        envelope: &Envelope,
        attempts: u32,
        error: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO dead_letters (topic, consumer_group, event_id, event_type, envelope, attempts, error, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (topic, consumer_group, event_id) DO UPDATE SET \
             attempts = CASE WHEN excluded.attempts > dead_letters.attempts THEN excluded.attempts ELSE dead_letters.attempts END, \
             error = excluded.error, dead_at = excluded.dead_at",
        )
        .bind(topic)
        .bind(group)
        .bind(envelope.id.clone())
        .bind(event_type(envelope).to_owned())
        .bind(encode(envelope))
        .bind(i64::from(attempts))
        .bind(error)
        .bind(self.clock.now_micros())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` dead letters after id `after` (0 for the first page), oldest first.
    pub async fn list(&self, after: i64, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(read).collect()
    }

    /// The dead letters among `ids` that exist, in id order.
    pub async fn get(&self, ids: &[i64]) -> Result<Vec<DeadLetter>, Error> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {COLUMNS} FROM dead_letters WHERE id IN ({}) ORDER BY id",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.db.pool).await? {
                found.push(read(&row)?);
            }
        }
        found.sort_by_key(|d| d.id);
        Ok(found)
    }

    /// Removes a dead letter whose replay succeeded.
    pub async fn remove(&self, id: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM dead_letters WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Removes the dead letter of `event_id` in `group`, if any: the event was handled since.
    pub async fn settled(&self, topic: &str, group: &str, event_id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM dead_letters WHERE topic = $1 AND consumer_group = $2 AND event_id = $3")
            .bind(topic)
            .bind(group)
            .bind(event_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Records a replay that failed again: one more attempt, the new error, the time now.
    pub async fn failed_again(&self, id: i64, error: &str) -> Result<Option<DeadLetter>, Error> {
        sqlx::query("UPDATE dead_letters SET attempts = attempts + 1, error = $2, dead_at = $3 WHERE id = $1")
            .bind(id)
            .bind(error)
            .bind(self.clock.now_micros())
            .execute(&self.db.pool)
            .await?;
        Ok(self.get(&[id]).await?.pop())
    }

    /// How many dead letters each (topic, group) has.
    pub async fn counts(&self) -> Result<Vec<(String, String, i64)>, Error> {
        let rows =
            sqlx::query("SELECT topic, consumer_group, COUNT(*) AS n FROM dead_letters GROUP BY topic, consumer_group")
                .fetch_all(&self.db.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("topic")?, r.try_get("consumer_group")?, r.try_get("n")?)))
            .collect()
    }
}

fn read(row: &sqlx::any::AnyRow) -> Result<DeadLetter, Error> {
    Ok(DeadLetter {
        id: row.try_get("id")?,
        topic: row.try_get("topic")?,
        group: row.try_get("consumer_group")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        envelope: decode(&row.try_get::<Vec<u8>, _>("envelope")?)?,
        attempts: row.try_get("attempts")?,
        error: row.try_get("error")?,
        dead_at: row.try_get("dead_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_ceiling() {
        let ceiling = Duration::from_millis(500);
        let delays: Vec<u128> = (1..=5)
            .map(|a| backoff(Duration::from_millis(100), a, ceiling).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        assert_eq!(
            backoff(Duration::from_secs(1), u32::MAX, Duration::MAX),
            Duration::from_secs(65_536)
        );
    }
}
