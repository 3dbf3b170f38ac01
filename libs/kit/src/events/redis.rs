//! The cluster bus: Redis Streams. A topic is a stream, a consuming service a consumer group,
//! a replica a consumer. Entries a consumer read but never acknowledged are claimed by another
//! (XAUTOCLAIM) once idle for `reclaim_after`. Publishers trim a stream to what its groups have
//! not acknowledged, every few seconds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chorus_proto::event::Envelope;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamClaimOptions, StreamId, StreamInfoGroupsReply,
    StreamPendingCountReply, StreamRangeReply, StreamReadOptions, StreamReadReply,
};

use super::{Bus, Delivery, SubscribeOptions, Subscription, decode, encode};
use crate::error::Error;

/// Entries kept per stream that has no consumer group, so a first group finds recent history.
const HISTORY: usize = 1_000_000;
/// How often a publisher trims a stream it publishes to.
const TRIM_EVERY: Duration = Duration::from_secs(5);
const FIELD: &str = "e";

/// Trims stream KEYS[1] to what its groups still need, atomically, so no group is created or
/// moves between the look and the cut: everything older than the oldest entry some group still
/// needs (its oldest pending entry, or the one after its last delivered) goes, by `XTRIM MINID`.
/// A stream without groups keeps its newest ARGV[1] entries. An id the script cannot compare
/// exactly stops it: nothing is trimmed. Returns how many entries went.
const TRIM_SCRIPT: &str = r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', key)
if #groups == 0 then
  return redis.call('XTRIM', key, 'MAXLEN', ARGV[1])
end
-- An id as numbers; nil for a sequence too long for a Lua number to hold exactly.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  if ms == nil or #ms > 15 or #seq > 15 then return nil end
  return tonumber(ms), tonumber(seq)
end
local floor_ms, floor_seq
local function lower(ms, seq)
  if floor_ms == nil or ms < floor_ms or (ms == floor_ms and seq < floor_seq) then
    floor_ms, floor_seq = ms, seq
  end
end
for _, group in ipairs(groups) do
  local name, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  local ms, seq = parse(last)
  if ms == nil then return 0 end
  lower(ms, seq + 1)
  local pending = redis.call('XPENDING', key, name)
  if pending[1] > 0 then
    ms, seq = parse(pending[2])
    if ms == nil then return 0 end
    lower(ms, seq)
  end
end
return redis.call('XTRIM', key, 'MINID', string.format('%d-%d', floor_ms, floor_seq))
";

/// A Redis error as callers see it: a server that cannot be reached, a dropped connection, a
/// timeout or a server still loading is an outage (UNAVAILABLE, reason BUS_UNAVAILABLE, with a
/// retry delay); anything else is INTERNAL.
fn redis_err(context: &'static str) -> impl Fn(redis::RedisError) -> Error {
    move |e| {
        let outage = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading | redis::ServerErrorKind::TryAgain)
            );
        if outage {
            tracing::warn!(error = %e, context, "event bus unavailable");
            Error::new(
                crate::ErrorCode::Unavailable,
                "the event bus is unavailable, retry shortly",
            )
            .with_reason("BUS_UNAVAILABLE")
        } else {
            Error::internal(context, e)
        }
    }
}

/// Redis Streams bus.
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    history: usize,
    trim_every: Duration,
    /// When this publisher last trimmed each topic.
    trimmed: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("history", &self.history)
            .field("trim_every", &self.trim_every)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::invalid_field("REDIS_URL", e.to_string()))?;
        let config = ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(redis_err("connect to redis"))?;
        Ok(RedisBus {
            client,
            publisher,
            history: HISTORY,
            trim_every: TRIM_EVERY,
            trimmed: Arc::default(),
        })
    }

    /// Keeps `history` entries of a stream that has no consumer group (1,000,000 by default).
    pub fn with_history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// Trims a stream it publishes to at most every `every` (5 s by default).
    pub fn with_trim_every(mut self, every: Duration) -> Self {
        self.trim_every = every;
        self
    }

    /// Trims `topic` now to what its groups have not acknowledged (or to the history when it
    /// has none); returns how many entries went. Publishing does this every `trim_every`.
    pub async fn trim_now(&self, topic: &str) -> Result<usize, Error> {
        let mut conn = self.publisher.clone();
        let trimmed: usize = redis::cmd("EVAL")
            .arg(TRIM_SCRIPT)
            .arg(1)
            .arg(topic)
            .arg(self.history)
            .query_async(&mut conn)
            .await
            .map_err(redis_err("trim stream"))?;
        Ok(trimmed)
    }

    /// Trims the topics among `topics` not trimmed by this publisher for `trim_every`. A
    /// failure is logged: the events are published, and the next trim catches up.
    async fn trim_due<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let due: Vec<&str> = {
            let now = Instant::now();
            let Ok(mut trimmed) = self.trimmed.lock() else {
                return;
            };
            topics
                .into_iter()
                .filter(|topic| {
                    if trimmed
                        .get(*topic)
                        .is_some_and(|at| now.duration_since(*at) < self.trim_every)
                    {
                        return false;
                    }
                    trimmed.insert((*topic).to_owned(), now);
                    true
                })
                .collect()
        };
        for topic in due {
            if let Err(e) = self.trim_now(topic).await {
                tracing::warn!(topic, error = %e, "could not trim stream");
            }
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), Error> {
        let mut conn = self.publisher.clone();
        let _: String = conn
            .xadd(topic, "*", &[(FIELD, encode(envelope))])
            .await
            .map_err(redis_err("publish event"))?;
        self.trim_due([topic]).await;
        Ok(())
    }

    async fn delete_group(&self, topic: &str, group: &str) -> Result<(), Error> {
        let mut conn = self.publisher.clone();
        let _: bool = conn
            .xgroup_destroy(topic, group)
            .await
            .map_err(redis_err("delete consumer group"))?;
        Ok(())
    }

    /// One pipeline, one round trip, for the whole batch.
    async fn publish_all(&self, events: &[(String, Envelope)]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (topic, envelope) in events {
            pipe.xadd(topic, "*", &[(FIELD, encode(envelope))]).ignore();
        }
        let mut conn = self.publisher.clone();
        let _: () = pipe.query_async(&mut conn).await.map_err(redis_err("publish events"))?;
        self.trim_due(events.iter().map(|(topic, _)| topic.as_str())).await;
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, Error> {
        // A blocking read holds its connection, so each subscription has its own, with a
        // response timeout longer than the longest block. A connection manager: when Redis
        // restarts or drops the connection, the next call runs on a new one.
        let config = ConnectionManagerConfig::new().set_response_timeout(Some(options.poll + Duration::from_secs(5)));
        let mut conn = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(redis_err("connect to redis"))?;
        create_group(&mut conn, topic, group, options.start_at_end).await?;
        if options.delete_group_on_exit {
            beat(&mut conn, topic, group, options.sweep_after).await?;
            match sweep(&mut conn, topic, group, options.sweep_after).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(topic, swept = n, "deleted the consumer groups of crashed processes"),
                Err(e) => tracing::warn!(topic, error = %e, "could not sweep crashed consumer groups"),
            }
        }
        Ok(Box::new(RedisSubscription {
            conn,
            topic: topic.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            options,
            buffer: VecDeque::new(),
            last_beat: tokio::time::Instant::now(),
            retry_due: None,
        }))
    }

    /// The group's pending entries plus those not yet delivered to it (XINFO GROUPS). When
    /// Redis cannot tell the second (entries were deleted from the middle of the stream), they
    /// are counted, up to [`LAG_COUNT_CAP`].
    async fn lag(&self, topic: &str, group: &str) -> Result<u64, Error> {
        let mut conn = self.publisher.clone();
        let groups: redis::RedisResult<StreamInfoGroupsReply> = conn.xinfo_groups(topic).await;
        let groups = match groups {
            Ok(g) => g,
            // No stream yet: nothing to lag behind.
            Err(e) if e.detail().is_some_and(|d| d.contains("no such key")) => return Ok(0),
            Err(e) => return Err(redis_err("read consumer groups")(e)),
        };
        let Some(g) = groups.groups.into_iter().find(|g| g.name == group) else {
            return Ok(0);
        };
        let undelivered = match g.lag {
            Some(lag) => lag,
            None => {
                let after: StreamRangeReply = conn
                    .xrange_count(topic, format!("({}", g.last_delivered_id), "+", LAG_COUNT_CAP)
                    .await
                    .map_err(redis_err("count undelivered events"))?;
                after.ids.len()
            }
        };
        Ok((g.pending + undelivered) as u64)
    }
}

/// The most undelivered entries [`RedisBus::lag`] counts one by one.
const LAG_COUNT_CAP: usize = 100_000;

/// Creates `group` on `topic` (and the stream) unless it exists.
async fn create_group(conn: &mut ConnectionManager, topic: &str, group: &str, start_at_end: bool) -> Result<(), Error> {
    let start = if start_at_end { "$" } else { "0" };
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(topic, group, start).await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(Error::internal("create consumer group", e)),
        _ => Ok(()),
    }
}

/// The key a per-process group's subscription keeps alive while its process runs. Redis 7.0
/// does not refresh a consumer's idle time on an empty read, so a quiet stream would make a
/// live group look abandoned: liveness is this key instead.
fn heartbeat_key(topic: &str, group: &str) -> String {
    format!("chorus:group-alive:{topic}:{group}")
}

/// Marks `group` alive for `ttl`.
async fn beat(conn: &mut ConnectionManager, topic: &str, group: &str, ttl: Duration) -> Result<(), Error> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let _: () = conn
        .pset_ex(heartbeat_key(topic, group), 1u8, ms)
        .await
        .map_err(redis_err("mark consumer group alive"))?;
    Ok(())
}

/// Deletes the per-process groups ([`super::process_group`]) of `topic` that share `group`'s
/// prefix and whose processes are gone: a name older than `stale_after` and no heartbeat
/// within `stale_after`. Returns how many it deleted.
async fn sweep(conn: &mut ConnectionManager, topic: &str, group: &str, stale_after: Duration) -> Result<usize, Error> {
    let Some((prefix, _)) = group.rsplit_once('-') else {
        return Ok(0);
    };
    let groups: StreamInfoGroupsReply = conn
        .xinfo_groups(topic)
        .await
        .map_err(redis_err("list consumer groups"))?;
    let mut swept = 0;
    for other in groups.groups {
        let Some(id) = other.name.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')) else {
            continue;
        };
        if other.name == group || uuid_age(id).is_none_or(|age| age < stale_after) {
            continue;
        }
        let alive: bool = conn
            .exists(heartbeat_key(topic, &other.name))
            .await
            .map_err(redis_err("check consumer group heartbeat"))?;
        if !alive {
            let _: bool = conn
                .xgroup_destroy(topic, &other.name)
                .await
                .map_err(redis_err("delete consumer group"))?;
            swept += 1;
        }
    }
    Ok(swept)
}

/// How long ago the UUIDv7 `id` was made; `None` for anything else (a group not named by
/// [`super::process_group`] is never swept).
fn uuid_age(id: &str) -> Option<Duration> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    // UUIDv7s carry the system's time, so their age is read on the system clock.
    let made = secs as i64 * 1_000_000 + i64::from(nanos / 1_000);
    let age = crate::clock::Clock::system().now_micros().saturating_sub(made).max(0);
    Some(Duration::from_micros(age as u64))
}

struct RedisSubscription {
    conn: ConnectionManager,
    topic: String,
    group: String,
    consumer: String,
    options: SubscribeOptions,
    buffer: VecDeque<Delivery>,
    /// When a per-process group last marked itself alive.
    last_beat: tokio::time::Instant,
    /// The earliest retry this subscription scheduled, so `next` looks for it in time.
    retry_due: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl RedisSubscription {
    fn delivery(&self, entry: StreamId, reclaimed: bool) -> Option<Delivery> {
        let bytes: Vec<u8> = match entry.map.get(FIELD) {
            Some(redis::Value::BulkString(b)) => b.clone(),
            _ => {
                tracing::warn!(topic = %self.topic, entry = %entry.id, "stream entry without an envelope, skipped");
                return None;
            }
        };
        match decode(&bytes) {
            Ok(envelope) => {
                let attempt = entry
                    .delivered_count
                    .map(|c| c as u32)
                    .unwrap_or(if reclaimed { 2 } else { 1 });
                Some(Delivery {
                    id: entry.id,
                    envelope,
                    attempt,
                })
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, entry = %entry.id, error = %e, "undecodable envelope, skipped");
                None
            }
        }
    }

    /// A failed call: when the group is gone (Redis restarted without persistence, or the
    /// group was deleted), creates it again and carries on; anything else is the caller's.
    async fn recover(&mut self, e: redis::RedisError, context: &'static str) -> Result<(), Error> {
        if e.code() != Some("NOGROUP") {
            return Err(Error::internal(context, e));
        }
        tracing::warn!(
            topic = %self.topic,
            group = %self.group,
            "consumer group was gone (Redis restarted or the group was deleted); created again, events published meanwhile are missed"
        );
        create_group(&mut self.conn, &self.topic, &self.group, self.options.start_at_end).await
    }

    /// Acknowledges entries that carry no readable envelope (already logged): no handler can
    /// ever take them, and left pending they would be reclaimed forever.
    async fn drop_unreadable(&mut self, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = self
            .conn
            .xack(&self.topic, &self.group, ids)
            .await
            .map_err(redis_err("ack unreadable events"))?;
        Ok(())
    }

    /// Claims entries other consumers of the group left idle too long.
    async fn reclaim(&mut self) -> Result<(), Error> {
        let idle_ms = self.options.reclaim_after.as_millis() as u64;
        let reply: redis::RedisResult<StreamAutoClaimReply> = self
            .conn
            .xautoclaim_options(
                &self.topic,
                &self.group,
                &self.consumer,
                idle_ms,
                "0-0",
                StreamAutoClaimOptions::default().count(self.options.batch),
            )
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.recover(e, "reclaim pending events").await,
        };
        let mut unreadable = Vec::new();
        let mut claimed = Vec::new();
        for entry in reply.claimed {
            let id = entry.id.clone();
            match self.delivery(entry, true) {
                Some(d) => claimed.push(d),
                None => unreadable.push(id),
            }
        }
        self.count_deliveries(&mut claimed).await?;
        self.buffer.extend(claimed);
        self.drop_unreadable(&unreadable).await
    }

    /// Sets each reclaimed delivery's attempt to the times Redis delivered it (XAUTOCLAIM
    /// does not say), in one round trip, so bounded retries count every attempt.
    async fn count_deliveries(&mut self, claimed: &mut [Delivery]) -> Result<(), Error> {
        if claimed.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for d in claimed.iter() {
            pipe.xpending_count(&self.topic, &self.group, &d.id, &d.id, 1);
        }
        let replies: Vec<StreamPendingCountReply> = pipe
            .query_async(&mut self.conn)
            .await
            .map_err(redis_err("count deliveries"))?;
        for (d, reply) in claimed.iter_mut().zip(replies) {
            if let Some(p) = reply.ids.first() {
                d.attempt = u32::try_from(p.times_delivered).unwrap_or(u32::MAX);
            }
        }
        Ok(())
    }

    async fn read(&mut self, block: Duration) -> Result<(), Error> {
        let opts = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(self.options.batch)
            .block(block.as_millis().max(1) as usize);
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            self.conn.xread_options(&[&self.topic], &[">"], &opts).await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.recover(e, "read events").await,
        };
        let mut unreadable = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let id = entry.id.clone();
                match self.delivery(entry, false) {
                    Some(d) => self.buffer.push_back(d),
                    None => unreadable.push(id),
                }
            }
        }
        self.drop_unreadable(&unreadable).await
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        if self.options.delete_group_on_exit && self.last_beat.elapsed() >= self.options.sweep_after / 4 {
            beat(&mut self.conn, &self.topic, &self.group, self.options.sweep_after).await?;
            self.last_beat = tokio::time::Instant::now();
        }
        loop {
            if let Some(d) = self.buffer.pop_front() {
                return Ok(Some(d));
            }
            self.reclaim().await?;
            if !self.buffer.is_empty() {
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Block no longer than the reclaim period, so stale entries are picked up in time,
            // nor past a retry this subscription scheduled.
            let now = tokio::time::Instant::now();
            if self.retry_due.is_some_and(|due| due <= now) {
                self.retry_due = None;
            }
            let retry = self.retry_due.map_or(Duration::MAX, |due| due - now);
            self.read(left.min(self.options.reclaim_after).min(self.options.poll).min(retry))
                .await?;
            if self.buffer.is_empty() && tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), Error> {
        let _: i64 = self
            .conn
            .xack(&self.topic, &self.group, &[&delivery.id])
            .await
            .map_err(redis_err("ack event"))?;
        Ok(())
    }

    /// Claims the entry again with its idle time set so that it is reclaimable after `delay`
    /// (XCLAIM IDLE, JUSTID: the claim itself counts no delivery; the reclaim will).
    async fn retry_after(&mut self, delivery: &Delivery, delay: Duration) -> Result<(), Error> {
        let idle = self.options.reclaim_after.saturating_sub(delay);
        let options = StreamClaimOptions::default()
            .idle(usize::try_from(idle.as_millis()).unwrap_or(usize::MAX))
            .with_justid();
        let _: redis::Value = self
            .conn
            .xclaim_options(&self.topic, &self.group, &self.consumer, 0, &[&delivery.id], options)
            .await
            .map_err(redis_err("schedule a retry"))?;
        let due = tokio::time::Instant::now() + delay;
        self.retry_due = Some(self.retry_due.map_or(due, |d| d.min(due)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[tokio::test]
    async fn an_unreachable_server_is_an_outage_not_an_internal_error() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let refused = client.get_multiplexed_async_connection().await.unwrap_err();
        let err = redis_err("connect")(refused);
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert_eq!(err.reason(), "BUS_UNAVAILABLE");
        let parse = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a stream entry"));
        assert_eq!(redis_err("read")(parse).code(), ErrorCode::Internal);
    }
}
