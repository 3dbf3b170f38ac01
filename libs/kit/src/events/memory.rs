//! The in-process bus for `chorus up`: a log per topic with consumer groups, pending entries and
//! reclaim, the same contract as Redis Streams without a server. [`MemoryBus::open`] also keeps
//! the log in a SQLite file, so a restart loses nothing published and redelivers what no durable
//! group acknowledged; reads are served from memory either way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chorus_proto::event::Envelope;
use futures::TryStreamExt;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use super::{Bus, Delivery, SubscribeOptions, Subscription, decode, encode};
use crate::error::Error;
use crate::storage::{Database, Migrations, placeholders};

/// How much a memory bus keeps and how often a file-backed one checkpoints.
#[derive(Debug, Clone)]
pub struct MemoryBusOptions {
    /// The newest entries a topic keeps even when every group has read them, so a group that
    /// joins later (a first one, an observer in a test) finds recent history. Beyond them a
    /// topic keeps exactly what one of its groups has not acknowledged.
    pub history: usize,
    /// How often a file-backed bus writes its durable groups' offsets and deletes trimmed
    /// entries from the file (events themselves are written before `publish` returns).
    pub flush_every: Duration,
}

impl Default for MemoryBusOptions {
    fn default() -> Self {
        MemoryBusOptions {
            history: 100_000,
            flush_every: Duration::from_millis(100),
        }
    }
}

/// The file's tables: the log (an entry is deleted once trimmed) and each durable group's
/// committed offset, its lowest unacknowledged sequence number.
const MIGRATION: &str = "
CREATE TABLE events (
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
CREATE TABLE groups (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (topic, name)
) WITHOUT ROWID;";

const MIGRATIONS: Migrations = Migrations {
    postgres: &[],
    sqlite: &[(1, "events", MIGRATION)],
};

/// Rows per INSERT statement (three parameters each).
const INSERT_CHUNK: usize = 500;

#[derive(Debug, Default)]
struct Pending {
    consumer: String,
    since: Option<Instant>,
    attempts: u32,
}

#[derive(Debug)]
struct Group {
    next: u64,
    pending: BTreeMap<u64, Pending>,
    /// Kept in the file; a per-process group (`delete_group_on_exit`) is not.
    durable: bool,
    /// Live subscriptions; a per-process group goes when its last one does.
    subscribers: usize,
}

impl Group {
    /// The lowest sequence number this group has not acknowledged.
    fn committed(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .map_or(self.next, |first| (*first).min(self.next))
    }
}

#[derive(Debug, Default)]
struct Topic {
    first: u64,
    log: VecDeque<Envelope>,
    groups: HashMap<String, Group>,
    /// Durable offsets or the first retained entry changed since the file last heard of them.
    dirty: bool,
}

impl Topic {
    fn end(&self) -> u64 {
        self.first + self.log.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Envelope> {
        seq.checked_sub(self.first).and_then(|i| self.log.get(i as usize))
    }

    /// Drops the entries every group has acknowledged (all of them, when the topic has no
    /// group) except the newest `history`. Never an entry a group has not acknowledged.
    fn trim(&mut self, history: usize) {
        let history_floor = self.end().saturating_sub(history as u64);
        let floor = self.groups.values().map(Group::committed).fold(history_floor, u64::min);
        if floor > self.first {
            let drop = ((floor - self.first) as usize).min(self.log.len());
            self.log.drain(..drop);
            self.first += drop as u64;
            self.dirty = true;
        }
    }

    /// What the file must learn about this topic, when something changed.
    fn checkpoint(&mut self, name: &str) -> Option<Checkpoint> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(Checkpoint {
            topic: name.to_owned(),
            first: self.first,
            groups: self
                .groups
                .iter()
                .filter(|(_, g)| g.durable)
                .map(|(name, g)| (name.clone(), g.committed()))
                .collect(),
        })
    }
}

/// A topic's state as the file keeps it.
#[derive(Debug)]
struct Checkpoint {
    topic: String,
    first: u64,
    groups: Vec<(String, u64)>,
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
    options: MemoryBusOptions,
    file: Option<File>,
}

#[derive(Debug)]
struct File {
    db: Database,
    /// Publishers take turns between numbering their events and appending them in memory, so
    /// the numbers written to the file are the ones the log gives them.
    append: tokio::sync::Mutex<()>,
    /// Checkpoints are written one at a time, so an older one never lands after a newer one.
    flush: tokio::sync::Mutex<()>,
}

impl MemoryBus {
    /// A bus in memory only: a restart loses its log and groups.
    pub fn new() -> Self {
        MemoryBus::with_options(MemoryBusOptions::default())
    }

    pub fn with_options(options: MemoryBusOptions) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                topics: Mutex::default(),
                notify: Notify::new(),
                options,
                file: None,
            }),
        }
    }

    /// A bus whose log and durable groups live in the SQLite file at `path` (created when
    /// missing), resuming where the last process left it: every durable group starts again at
    /// its committed offset, so whatever it had not acknowledged is delivered again. Call
    /// [`MemoryBus::close`] on shutdown.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        MemoryBus::open_with(path, MemoryBusOptions::default()).await
    }

    pub async fn open_with(path: impl AsRef<Path>, options: MemoryBusOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid_field("events path", format!("cannot create {}: {e}", dir.display())))?;
        }
        // One connection: the publisher and the checkpoints take turns, as SQLite's one
        // writer would make them anyway.
        let db = Database::connect(&sqlite_url(path)?, &[&MIGRATIONS], 1).await?;
        let mut topics = load(&db.pool).await?;
        for topic in topics.values_mut() {
            topic.trim(options.history);
        }
        let flush_every = options.flush_every;
        let bus = MemoryBus {
            inner: Arc::new(Inner {
                topics: Mutex::new(topics),
                notify: Notify::new(),
                options,
                file: Some(File {
                    db,
                    append: tokio::sync::Mutex::new(()),
                    flush: tokio::sync::Mutex::new(()),
                }),
            }),
        };
        tokio::spawn(checkpoints(Arc::downgrade(&bus.inner), flush_every));
        Ok(bus)
    }

    /// Writes the durable groups' offsets and deletes trimmed entries from the file now,
    /// rather than at the next `flush_every`. Nothing to do for a bus in memory only.
    pub async fn flush(&self) -> Result<(), Error> {
        let Some(file) = &self.inner.file else {
            return Ok(());
        };
        let _turn = file.flush.lock().await;
        let plan: Vec<Checkpoint> = self
            .inner
            .topics()?
            .iter_mut()
            .filter_map(|(name, t)| t.checkpoint(name))
            .collect();
        if plan.is_empty() {
            return Ok(());
        }
        if let Err(e) = write_checkpoints(&file.db.pool, &plan).await {
            let mut topics = self.inner.topics()?;
            for c in &plan {
                if let Some(t) = topics.get_mut(&c.topic) {
                    t.dirty = true;
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Flushes and closes the file; publishing afterwards fails. Call it once consumers and the
    /// outbox relay have stopped. Without it (a crash) nothing published is lost: durable
    /// groups resume from the last offsets written, at most `flush_every` old, and receive
    /// again what they acknowledged since.
    pub async fn close(&self) -> Result<(), Error> {
        let Some(file) = &self.inner.file else {
            return Ok(());
        };
        let flushed = self.flush().await;
        file.db.close().await;
        flushed
    }

    /// Trims `topic` now (the bus trims on every acknowledgement already) and, for a file-backed
    /// bus, deletes the trimmed entries from the file; for tests, which cannot wait.
    pub async fn trim_now(&self, topic: &str) -> Result<(), Error> {
        if let Some(t) = self.inner.topics()?.get_mut(topic) {
            t.trim(self.inner.options.history);
        }
        self.flush().await
    }

    /// Appends `events` to their topics in order; with a file, writes them there first, in one
    /// transaction, so an event the caller sees published survives a crash.
    async fn append(&self, events: &[(&str, &Envelope)]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let _turn = match &self.inner.file {
            Some(file) => {
                let turn = file.append.lock().await;
                let rows = {
                    let mut topics = self.inner.topics()?;
                    let mut ends: HashMap<&str, u64> = HashMap::new();
                    let mut rows = Vec::with_capacity(events.len());
                    for (topic, envelope) in events {
                        let end = ends
                            .entry(topic)
                            .or_insert_with(|| topics.entry((*topic).to_owned()).or_default().end());
                        rows.push((*topic, *end, *envelope));
                        *end += 1;
                    }
                    rows
                };
                insert_events(&file.db.pool, &rows).await?;
                Some(turn)
            }
            None => None,
        };
        {
            let mut topics = self.inner.topics()?;
            for (topic, envelope) in events {
                topics
                    .entry((*topic).to_owned())
                    .or_default()
                    .log
                    .push_back((*envelope).clone());
            }
            for (topic, _) in events {
                if let Some(t) = topics.get_mut(*topic) {
                    t.trim(self.inner.options.history);
                }
            }
        }
        self.inner.notify.notify_waiters();
        Ok(())
    }
}

impl Inner {
    fn topics(&self) -> Result<MutexGuard<'_, HashMap<String, Topic>>, Error> {
        self.topics
            .lock()
            .map_err(|_| Error::new(crate::ErrorCode::Internal, "memory bus lock poisoned"))
    }
}

impl Drop for Inner {
    /// Best effort: the last checkpoint is written by a task on the current runtime. When it
    /// cannot be, durable groups resume from the previous one and see some events again.
    fn drop(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        if file.db.pool.is_closed() {
            return;
        }
        let topics = self.topics.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        let plan: Vec<Checkpoint> = topics.iter_mut().filter_map(|(name, t)| t.checkpoint(name)).collect();
        let pool = file.db.pool.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if !plan.is_empty()
                        && let Err(e) = write_checkpoints(&pool, &plan).await
                    {
                        tracing::warn!(error = %e, "could not write the event bus's last checkpoint");
                    }
                    pool.close().await;
                });
            }
            Err(_) => tracing::warn!("event bus dropped outside a runtime, its last checkpoint is not written"),
        }
    }
}

/// Writes checkpoints every `every` while the bus lives.
async fn checkpoints(bus: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = bus.upgrade() else {
            return;
        };
        let bus = MemoryBus { inner };
        if bus.inner.file.as_ref().is_none_or(|f| f.db.pool.is_closed()) {
            return;
        }
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "could not write the event bus checkpoint, will retry");
        }
    }
}

/// A `sqlite://` URL for `path`; sqlx percent-decodes the path, so `%`, `?` and `#` are encoded.
fn sqlite_url(path: &Path) -> Result<String, Error> {
    let path = path
        .to_str()
        .ok_or_else(|| Error::invalid_field("events path", "not valid UTF-8"))?;
    let encoded = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    Ok(format!("sqlite://{encoded}"))
}

/// Reads the log and the durable groups back.
async fn load(pool: &AnyPool) -> Result<HashMap<String, Topic>, Error> {
    let mut topics: HashMap<String, Topic> = HashMap::new();
    let mut rows = sqlx::query("SELECT topic, seq, envelope FROM events ORDER BY topic, seq").fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let name: String = row.try_get("topic")?;
        let seq = row.try_get::<i64, _>("seq")? as u64;
        let envelope = decode(&row.try_get::<Vec<u8>, _>("envelope")?)?;
        let t = topics.entry(name).or_insert_with(|| Topic {
            first: seq,
            ..Topic::default()
        });
        // Only prefixes are ever deleted, so a topic's entries are consecutive.
        if seq != t.end() {
            return Err(Error::new(
                crate::ErrorCode::Internal,
                format!("events file has a gap before entry {seq}"),
            ));
        }
        t.log.push_back(envelope);
    }
    drop(rows);
    let groups = sqlx::query("SELECT topic, name, committed FROM groups")
        .fetch_all(pool)
        .await?;
    for row in groups {
        let t = topics.entry(row.try_get::<String, _>("topic")?).or_default();
        t.groups.insert(
            row.try_get("name")?,
            Group {
                next: row.try_get::<i64, _>("committed")? as u64,
                pending: BTreeMap::new(),
                durable: true,
                subscribers: 0,
            },
        );
    }
    for t in topics.values_mut() {
        if t.log.is_empty() {
            // Everything was acknowledged and trimmed: numbering goes on after it.
            t.first = t.groups.values().map(|g| g.next).max().unwrap_or(0);
        }
        let (first, end) = (t.first, t.end());
        for g in t.groups.values_mut() {
            g.next = g.next.clamp(first, end);
        }
    }
    Ok(topics)
}

/// Writes numbered events. A publish cancelled after its commit but before its events reached
/// the log leaves rows the log never numbered: the next publish takes the same numbers and
/// replaces them. Fine, since the cancelled publish never returned and its caller still holds
/// its events (the relay's outbox rows).
async fn insert_events(pool: &AnyPool, rows: &[(&str, u64, &Envelope)]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT OR REPLACE INTO events (topic, seq, envelope) VALUES {}",
            placeholders(chunk.len(), 3, 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (topic, seq, envelope) in chunk {
            q = q.bind((*topic).to_owned()).bind(*seq as i64).bind(encode(envelope));
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_checkpoints(pool: &AnyPool, plan: &[Checkpoint]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    for c in plan {
        sqlx::query("DELETE FROM groups WHERE topic = $1")
            .bind(c.topic.clone())
            .execute(&mut *tx)
            .await?;
        for (name, committed) in &c.groups {
            sqlx::query("INSERT INTO groups (topic, name, committed) VALUES ($1, $2, $3)")
                .bind(c.topic.clone())
                .bind(name.clone())
                .bind(*committed as i64)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM events WHERE topic = $1 AND seq < $2")
            .bind(c.topic.clone())
            .bind(c.first as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), Error> {
        self.append(&[(topic, envelope)]).await
    }

    /// One transaction for the whole batch on a file-backed bus.
    async fn publish_all(&self, events: &[(String, Envelope)]) -> Result<(), Error> {
        let events: Vec<(&str, &Envelope)> = events.iter().map(|(t, e)| (t.as_str(), e)).collect();
        self.append(&events).await
    }

    async fn delete_group(&self, topic: &str, group: &str) -> Result<(), Error> {
        let mut topics = self.inner.topics()?;
        if let Some(t) = topics.get_mut(topic)
            && let Some(g) = t.groups.remove(group)
        {
            t.dirty |= g.durable;
            t.trim(self.inner.options.history);
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
            let mut topics = self.inner.topics()?;
            let t = topics.entry(topic.to_owned()).or_default();
            let next = if options.start_at_end { t.end() } else { t.first };
            let durable = !options.delete_group_on_exit;
            let g = t.groups.entry(group.to_owned()).or_insert_with(|| Group {
                next,
                pending: BTreeMap::new(),
                durable,
                subscribers: 0,
            });
            g.subscribers += 1;
            t.dirty |= durable;
        }
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            options,
            retry_due: None,
        }))
    }

    async fn lag(&self, topic: &str, group: &str) -> Result<u64, Error> {
        let topics = self.inner.topics()?;
        let Some(t) = topics.get(topic) else {
            return Ok(0);
        };
        Ok(t.groups
            .get(group)
            .map_or(0, |g| t.end().saturating_sub(g.next) + g.pending.len() as u64))
    }
}

#[derive(Debug)]
struct MemorySubscription {
    bus: MemoryBus,
    topic: String,
    group: String,
    consumer: String,
    options: SubscribeOptions,
    /// The earliest retry this subscription scheduled, so `next` wakes for it.
    retry_due: Option<Instant>,
}

impl MemorySubscription {
    /// A reclaimable or new message for this consumer, marked pending.
    fn take(&self) -> Result<Option<Delivery>, Error> {
        let mut topics = self.bus.inner.topics()?;
        let t = topics.get_mut(&self.topic).ok_or_else(|| Error::not_found("topic"))?;
        let end = t.end();
        let Topic { groups, dirty, .. } = t;
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
        *dirty |= g.durable;
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
            // Wake on a publish, in time to reclaim what another consumer left behind, or for a
            // retry this one scheduled.
            if self.retry_due.is_some_and(|due| due <= now) {
                self.retry_due = None;
            }
            let retry = self.retry_due.map_or(Duration::MAX, |due| due - now);
            let wait = (deadline - now)
                .min(self.options.reclaim_after.max(Duration::from_millis(10)))
                .min(retry);
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), Error> {
        let seq: u64 = delivery
            .id
            .parse()
            .map_err(|_| Error::invalid_field("delivery.id", "not from this bus"))?;
        let mut topics = self.bus.inner.topics()?;
        if let Some(t) = topics.get_mut(&self.topic) {
            if let Some(g) = t.groups.get_mut(&self.group)
                && g.pending.remove(&seq).is_some()
            {
                t.dirty |= g.durable;
            }
            t.trim(self.bus.inner.options.history);
        }
        Ok(())
    }

    /// Backdates the entry's delivery so it is reclaimable after `delay`.
    async fn retry_after(&mut self, delivery: &Delivery, delay: Duration) -> Result<(), Error> {
        let seq: u64 = delivery
            .id
            .parse()
            .map_err(|_| Error::invalid_field("delivery.id", "not from this bus"))?;
        let now = Instant::now();
        {
            let mut topics = self.bus.inner.topics()?;
            let pending = topics
                .get_mut(&self.topic)
                .and_then(|t| t.groups.get_mut(&self.group))
                .and_then(|g| g.pending.get_mut(&seq));
            if let Some(p) = pending {
                p.since = now.checked_sub(self.options.reclaim_after.saturating_sub(delay));
            }
        }
        let due = now + delay;
        self.retry_due = Some(self.retry_due.map_or(due, |d| d.min(due)));
        Ok(())
    }
}

impl Drop for MemorySubscription {
    /// A per-process group whose last subscription is gone can never be read again (its name
    /// is unique to one process), so it goes now rather than hold the log forever: in process,
    /// what the Redis adapter's sweep does for a crashed process.
    fn drop(&mut self) {
        let Ok(mut topics) = self.bus.inner.topics() else {
            return;
        };
        let Some(t) = topics.get_mut(&self.topic) else {
            return;
        };
        let Some(g) = t.groups.get_mut(&self.group) else {
            return;
        };
        g.subscribers = g.subscribers.saturating_sub(1);
        if g.subscribers == 0 && !g.durable {
            t.groups.remove(&self.group);
            t.trim(self.bus.inner.options.history);
        }
    }
}
