//! The in-process bus for `chorus up`: a capped log per topic with consumer groups, pending entries
//! and reclaim, the same contract as Redis Streams without a server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chorus_proto::event::Envelope;
use tokio::sync::Notify;

use super::{Bus, Delivery, SubscribeOptions, Subscription};
use crate::error::Error;

/// Entries kept per topic, like a Redis stream's MAXLEN: the oldest go beyond it, read or not,
/// so a new group finds the same history on both buses.
const MAX_RETAINED: usize = 100_000;

#[derive(Debug, Default)]
struct Pending {
    consumer: String,
    since: Option<Instant>,
    attempts: u32,
}

#[derive(Debug, Default)]
struct Group {
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

#[derive(Debug, Default)]
struct Topic {
    first: u64,
    log: VecDeque<Envelope>,
    groups: HashMap<String, Group>,
}

impl Topic {
    fn end(&self) -> u64 {
        self.first + self.log.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Envelope> {
        seq.checked_sub(self.first).and_then(|i| self.log.get(i as usize))
    }

    /// Drops the oldest entries beyond the cap; groups that lagged past them skip ahead.
    fn trim(&mut self) {
        while self.log.len() > MAX_RETAINED {
            self.log.pop_front();
            self.first += 1;
        }
        let first = self.first;
        for g in self.groups.values_mut() {
            g.next = g.next.max(first);
            g.pending.retain(|seq, _| *seq >= first);
        }
    }
}

/// The in-process bus; clone it freely, clones share the log.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    topics: Mutex<HashMap<String, Topic>>,
    notify: Notify,
}

impl MemoryBus {
    pub fn new() -> Self {
        MemoryBus::default()
    }
}

fn poisoned() -> Error {
    Error::new(crate::ErrorCode::Internal, "memory bus lock poisoned")
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), Error> {
        {
            let mut topics = self.inner.topics.lock().map_err(|_| poisoned())?;
            let t = topics.entry(topic.to_owned()).or_default();
            t.log.push_back(envelope.clone());
            t.trim();
        }
        self.inner.notify.notify_waiters();
        Ok(())
    }

    async fn delete_group(&self, topic: &str, group: &str) -> Result<(), Error> {
        let mut topics = self.inner.topics.lock().map_err(|_| poisoned())?;
        if let Some(t) = topics.get_mut(topic) {
            t.groups.remove(group);
            t.trim();
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, Error> {
        {
            let mut topics = self.inner.topics.lock().map_err(|_| poisoned())?;
            let t = topics.entry(topic.to_owned()).or_default();
            let next = if options.start_at_end { t.end() } else { t.first };
            t.groups.entry(group.to_owned()).or_insert_with(|| Group {
                next,
                pending: BTreeMap::new(),
            });
        }
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            options,
        }))
    }
}

#[derive(Debug)]
struct MemorySubscription {
    bus: MemoryBus,
    topic: String,
    group: String,
    consumer: String,
    options: SubscribeOptions,
}

impl MemorySubscription {
    /// A reclaimable or new message for this consumer, marked pending.
    fn take(&self) -> Result<Option<Delivery>, Error> {
        let mut topics = self.bus.inner.topics.lock().map_err(|_| poisoned())?;
        let t = topics.get_mut(&self.topic).ok_or_else(|| Error::not_found("topic"))?;
        let end = t.end();
        let Topic { groups, .. } = t;
        let g = groups.get_mut(&self.group).ok_or_else(|| Error::not_found("group"))?;
        let now = Instant::now();
        let stale = g.pending.iter().find_map(|(seq, p)| {
            let idle = p.since.map(|s| now.duration_since(s)).unwrap_or(Duration::MAX);
            (idle >= self.options.reclaim_after).then_some(*seq)
        });
        let seq = match stale {
            Some(seq) => seq,
            None if g.next < end => {
                let seq = g.next;
                g.next += 1;
                seq
            }
            None => return Ok(None),
        };
        let p = g.pending.entry(seq).or_default();
        p.consumer = self.consumer.clone();
        p.since = Some(now);
        p.attempts += 1;
        let attempt = p.attempts;
        let envelope = t.get(seq).cloned();
        Ok(envelope.map(|envelope| Delivery {
            id: seq.to_string(),
            envelope,
            attempt,
        }))
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.bus.inner.notify.notified();
            if let Some(d) = self.take()? {
                return Ok(Some(d));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Wake on a publish, or in time to reclaim what another consumer left behind.
            let wait = (deadline - now).min(self.options.reclaim_after.max(Duration::from_millis(10)));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), Error> {
        let seq: u64 = delivery
            .id
            .parse()
            .map_err(|_| Error::invalid_field("delivery.id", "not from this bus"))?;
        let mut topics = self.bus.inner.topics.lock().map_err(|_| poisoned())?;
        if let Some(t) = topics.get_mut(&self.topic) {
            if let Some(g) = t.groups.get_mut(&self.group) {
                g.pending.remove(&seq);
            }
            t.trim();
        }
        Ok(())
    }
}
