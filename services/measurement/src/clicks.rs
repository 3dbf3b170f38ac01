//! The click buffer. The redirect answers at once and hands its click here; a task writes the
//! buffer to the database at least every `interval` (one second by default, and as soon as
//! `FLUSH_AT` clicks wait) in one transaction of multi-row inserts, with the link counts and
//! rollups. A crash loses at most the clicks of the last interval (docs/architecture.md); a
//! graceful stop writes what is left. A failed write keeps the clicks for the next try, up to
//! `MAX_WAITING`, past which the oldest are dropped and counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_kit::Error;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{NewClick, Store};

/// Clicks waiting that wake the flush before its interval.
const FLUSH_AT: usize = 2_000;
/// The most clicks kept while the database refuses them.
const MAX_WAITING: usize = 200_000;

#[derive(Debug, Clone)]
pub struct Clicks {
    store: Store,
    waiting: Arc<Mutex<Vec<NewClick>>>,
    wake: Arc<Notify>,
    /// Day keys of the IP hash, by day.
    keys: Arc<Mutex<HashMap<i64, Vec<u8>>>>,
}

impl Clicks {
    pub fn new(store: Store) -> Self {
        Clicks {
            store,
            waiting: Arc::default(),
            wake: Arc::new(Notify::new()),
            keys: Arc::default(),
        }
    }

    /// Queues a click for the next flush.
    pub fn push(&self, click: NewClick) {
        let n = match self.waiting.lock() {
            Ok(mut w) => {
                w.push(click);
                w.len()
            }
            Err(_) => return,
        };
        if n >= FLUSH_AT {
            self.wake.notify_one();
        }
    }

    /// Lower-case hex HMAC-SHA256 of the IP under the key of `day`: the same visitor hashes
    /// alike within a day and not across days; once the day's key is destroyed nobody can
    /// tell which IP a hash was.
    pub async fn hash_ip(&self, day: i64, ip: IpAddr) -> Result<String, Error> {
        let cached = self.keys.lock().ok().and_then(|k| k.get(&day).cloned());
        let key = match cached {
            Some(k) => k,
            None => {
                let k = self.store.ip_key(day).await?;
                if let Ok(mut keys) = self.keys.lock() {
                    keys.retain(|d, _| *d >= day - 1);
                    keys.insert(day, k.clone());
                }
                k
            }
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| Error::new(chorus_kit::ErrorCode::Internal, format!("ip key: {e}")))?;
        let bytes = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        mac.update(&bytes);
        Ok(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Writes what waits; the clicks stay queued when the write fails.
    pub async fn flush(&self) -> Result<usize, Error> {
        let batch = match self.waiting.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        if let Err(e) = self.store.insert_clicks(&batch).await {
            if let Ok(mut w) = self.waiting.lock() {
                let mut back = batch;
                back.append(&mut w);
                if back.len() > MAX_WAITING {
                    let dropped = back.len() - MAX_WAITING;
                    back.drain(..dropped);
                    metrics::counter!("measurement_clicks_dropped_total").increment(dropped as u64);
                }
                *w = back;
            }
            return Err(e);
        }
        metrics::counter!("measurement_clicks_stored_total").increment(n as u64);
        Ok(n)
    }

    /// Flushes every `interval` (or sooner when many wait) until `stop`, then once more.
    pub async fn run(self, interval: Duration, stop: CancellationToken) -> Result<(), Error> {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e.detail(), "writing clicks failed; they wait for the next flush");
            }
        }
        self.flush().await.map(|_| ())
    }
}
