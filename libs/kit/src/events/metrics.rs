//! Gauges of a service's events for Prometheus, measured every few seconds by a runtime task:
//! `chorus_outbox_depth{service}` (events written but not yet relayed to the bus),
//! `chorus_consumer_lag{topic,group}` (events a consumer group has not acknowledged) and
//! `chorus_dead_letters{service,topic,group}`. The counter `chorus_events_handled_total` is
//! kept by the consumers themselves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::Bus;
use super::dead_letters::DeadLetters;
use crate::error::Error;
use crate::storage::Database;

/// What one service measures.
#[derive(Debug)]
pub struct EventGauges {
    pub service: &'static str,
    pub db: Database,
    pub bus: Arc<dyn Bus>,
    pub dead_letters: DeadLetters,
    /// The (topic, group) of each of the service's consumers.
    pub consumed: Vec<(String, String)>,
}

impl EventGauges {
    /// Measures every `every` until `stop`.
    pub async fn run(self, every: Duration, stop: CancellationToken) -> Result<(), Error> {
        loop {
            if let Err(e) = self.measure().await {
                tracing::warn!(error = %e, "could not measure the event gauges");
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Sets every gauge once.
    pub async fn measure(&self) -> Result<(), Error> {
        let depth: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.db.pool)
            .await?
            .try_get("n")?;
        ::metrics::gauge!("chorus_outbox_depth", "service" => self.service).set(depth as f64);
        // A per-process group is labelled by its prefix, so its series outlive a restart.
        for (topic, group) in &self.consumed {
            let lag = self.bus.lag(topic, group).await?;
            let group = super::group_label(group).to_owned();
            ::metrics::gauge!("chorus_consumer_lag", "topic" => topic.clone(), "group" => group).set(lag as f64);
        }
        // Every consumer's count, 0 included, so a gauge falls back once its letters are replayed.
        let mut dead: BTreeMap<(String, String), i64> = self
            .consumed
            .iter()
            .map(|(topic, group)| ((topic.clone(), super::group_label(group).to_owned()), 0))
            .collect();
        for (topic, group, n) in self.dead_letters.counts().await? {
            dead.insert((topic, group), n);
        }
        for ((topic, group), n) in dead {
            ::metrics::gauge!("chorus_dead_letters", "service" => self.service, "topic" => topic, "group" => group)
                .set(n as f64);
        }
        Ok(())
    }
}
