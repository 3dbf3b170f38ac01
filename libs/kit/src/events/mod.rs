//! Events between services. A service writes its events to an outbox table in the same
//! transaction as the change ([`outbox`]); a relay moves them to the bus: Redis Streams with
//! consumer groups in a cluster ([`redis`]), an in-process log on a single node ([`memory`]).
//! Both buses honour one contract, checked by one conformance suite ([`conformance`]):
//! at-least-once delivery per consumer group, redelivery of what a dead consumer left
//! unacknowledged, and order per topic. Consumers dedupe by event id ([`outbox::Inbox`],
//! [`Dedupe`]). A handler that keeps failing gets a bounded number of attempts, then its event
//! is set aside as a dead letter ([`dead_letters`]) for an operator to list and replay
//! ([`admin`]).

pub mod admin;
pub mod conformance;
pub mod dead_letters;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod redis;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chorus_proto::event::Envelope;
use prost::{Message, Name};

use crate::clock::Clock;
use crate::error::Error;
use dead_letters::Retries;

/// The type of an event carrying `M`: the message's full protobuf name
/// (`chorus.registry.v1.InfluencerUpserted`), never a string copied between services.
pub fn type_of<M: Name>() -> String {
    M::full_name()
}

/// The service whose package defines `M` (`registry` for `chorus.registry.v1`): the source
/// of the event, whose topic it travels on.
pub fn source_of<M: Name>() -> &'static str {
    let package = M::PACKAGE;
    package
        .strip_prefix("chorus.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or(package)
}

/// The topic of the service that defines `M`: `chorus.<service>`, one per source service so
/// its events keep their order.
pub fn topic_of<M: Name>() -> String {
    format!("chorus.{}", source_of::<M>())
}

/// Builds an envelope around `payload`: its type is the payload's full name, its source the
/// service whose package defines it, stamped with a new UUIDv7, the clock's time and the
/// current trace context.
pub fn envelope<M: Name>(clock: &Clock, tenant: &str, payload: &M) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: type_of::<M>(),
        source: source_of::<M>().to_owned(),
        tenant: tenant.to_owned(),
        occur_time: Some(clock.now()),
        traceparent: crate::telemetry::current_traceparent().unwrap_or_default(),
        payload: Some(prost_types::Any {
            type_url: M::type_url(),
            value: payload.encode_to_vec(),
        }),
    }
}

/// Type strings of the first release, before types were protobuf names. Consumers accept them
/// for one more release; after it, this table goes.
const LEGACY_TYPES: &[(&str, &str)] = &[
    ("registry.influencer.upserted", "chorus.registry.v1.InfluencerUpserted"),
    ("registry.metrics.recorded", "chorus.registry.v1.MetricsRecorded"),
    ("registry.influencer.deleted", "chorus.registry.v1.InfluencerDeleted"),
    ("registry.vetting.reported", "chorus.registry.v1.VettingReported"),
    ("registry.vetting.verdict_changed", "chorus.registry.v1.VerdictChanged"),
    ("registry.account.flagged", "chorus.registry.v1.AccountFlagged"),
    ("matching.campaign.changed", "chorus.matching.v1.CampaignChanged"),
    (
        "matching.shortlist.member_decided",
        "chorus.matching.v1.ShortlistMemberDecided",
    ),
];

/// The event type of `envelope`, with a first-release string read as the name it became.
pub fn event_type(envelope: &Envelope) -> &str {
    LEGACY_TYPES
        .iter()
        .find(|(old, _)| *old == envelope.r#type)
        .map(|(_, new)| *new)
        .unwrap_or(&envelope.r#type)
}

/// Whether `envelope` is an event of type `M`.
pub fn is<M: Name>(envelope: &Envelope) -> bool {
    event_type(envelope) == M::full_name()
}

/// The payload of `envelope` when it is an `M`; `None` for events of other types.
pub fn read<M: Name + Default>(envelope: &Envelope) -> Option<Result<M, Error>> {
    is::<M>(envelope).then(|| payload(envelope))
}

/// Decodes the payload of `envelope` as `M`, checking its type URL.
pub fn payload<M: Name + Default>(envelope: &Envelope) -> Result<M, Error> {
    let any = envelope
        .payload
        .as_ref()
        .ok_or_else(|| Error::invalid_field("payload", "missing"))?;
    if any.type_url != M::type_url() {
        return Err(Error::invalid_field(
            "payload.type_url",
            format!("expected {}, got {}", M::type_url(), any.type_url),
        ));
    }
    M::decode(any.value.as_slice()).map_err(|e| Error::invalid_field("payload.value", e.to_string()))
}

/// One message handed to a consumer; acknowledge it once its effect is committed.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The bus's id for this message (a stream entry id on Redis).
    pub id: String,
    pub envelope: Envelope,
    /// 1 on first delivery, more when redelivered.
    pub attempt: u32,
}

/// How a subscription behaves.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// A delivery unacknowledged for this long is handed to another consumer of the group.
    pub reclaim_after: Duration,
    /// Longest wait inside one `next` call before it checks for reclaimable messages again.
    pub poll: Duration,
    /// Messages fetched per round trip.
    pub batch: usize,
    /// A group created by this subscription starts after the newest message instead of at
    /// the oldest retained one (for observers that only care about what happens next).
    pub start_at_end: bool,
    /// `consume` deletes the group when it stops (a group of one process only). Name such a
    /// group with [`process_group`]: a process that crashed cannot delete its group, so the
    /// next one to join a group of the same prefix deletes those silent for `sweep_after`.
    pub delete_group_on_exit: bool,
    /// A per-process group older than this whose subscription has not marked it alive for
    /// this long (it does every quarter of it while polling) is deleted as crashed.
    pub sweep_after: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            reclaim_after: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            batch: 128,
            start_at_end: false,
            delete_group_on_exit: false,
            sweep_after: Duration::from_secs(600),
        }
    }
}

/// A consumer group for one process (a replica's cache, an in-memory index): `prefix-` and a
/// UUIDv7, whose time tells how old the group is.
pub fn process_group(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A group as metrics name it: a per-process group ([`process_group`]) by its prefix, so a
/// restart does not make a new series; any other group by its name.
pub fn group_label(group: &str) -> &str {
    match group.rsplit_once('-') {
        Some((prefix, id)) if uuid::Uuid::try_parse(id).is_ok_and(|u| u.get_version_num() == 7) => prefix,
        _ => group,
    }
}

/// Counter of deliveries a consumer group dealt with, by `topic`, `group` ([`group_label`]) and
/// `outcome`: `ok` (the handler took it; each event once per process, a redelivery of one it
/// took counts as `duplicate`), `duplicate` (already handled: a redelivery after a lost
/// acknowledgement, or an event published twice, acknowledged without running the handler),
/// `retry` (the handler failed; it comes again) and `dead_letter` (set aside after its last
/// attempt).
pub const HANDLED_METRIC: &str = "chorus_events_handled_total";

/// The bus port. Topics are per source service ("chorus.registry"); groups are per consuming
/// service ("matching"); consumers are per replica.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), Error>;

    /// Publishes many events, in order; adapters that can send them in one round trip do.
    async fn publish_all(&self, events: &[(String, Envelope)]) -> Result<(), Error> {
        for (topic, envelope) in events {
            self.publish(topic, envelope).await?;
        }
        Ok(())
    }

    /// Removes `group` and its pending entries, for groups that live only as long as one
    /// process (a replica's cache invalidation).
    async fn delete_group(&self, topic: &str, group: &str) -> Result<(), Error>;

    /// Joins `group` as `consumer`. A group that did not exist starts from the oldest
    /// retained message, so nothing published before the first subscription is lost (unless
    /// `options.start_at_end`).
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, Error>;

    /// How many events of `topic` `group` has not acknowledged: delivered and pending, or
    /// not yet delivered. 0 for a group that does not exist.
    async fn lag(&self, topic: &str, group: &str) -> Result<u64, Error>;
}

#[async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// Waits for the next delivery; `None` after `timeout` without one.
    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, Error>;
    async fn ack(&mut self, delivery: &Delivery) -> Result<(), Error>;

    /// Hands a delivery that failed back to be delivered again (to this consumer or another)
    /// after `delay` rather than after `reclaim_after`, counting one more attempt. By default
    /// it waits for `reclaim_after`.
    async fn retry_after(&mut self, delivery: &Delivery, delay: Duration) -> Result<(), Error> {
        let _ = (delivery, delay);
        Ok(())
    }
}

/// Remembers the last `capacity` event ids, for consumers whose effect is in memory (an index)
/// rather than in a database with an inbox table.
#[derive(Debug)]
pub struct Dedupe {
    seen: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        Dedupe {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether `id` was recorded (and is still within the window).
    pub fn seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Records `id` as done.
    pub fn record(&mut self, id: &str) {
        if !self.seen.insert(id.to_owned()) {
            return;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
    }
}

/// What a consumer's handler says about one event.
pub type HandlerResult = Result<(), Error>;

/// Runs `handler` on every event of `topic` for `group` until `shutdown` resolves: an event
/// seen before (same id) is acknowledged without running the handler again; a handler error
/// leaves the event unacknowledged, so it is redelivered after `reclaim_after`.
pub async fn consume<H, F>(
    bus: Arc<dyn Bus>,
    topic: &str,
    group: &str,
    consumer: &str,
    options: SubscribeOptions,
    handler: H,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error>
where
    H: FnMut(Envelope) -> F + Send,
    F: std::future::Future<Output = HandlerResult> + Send,
{
    match bus.subscribe(topic, group, consumer, options.clone()).await {
        Ok(sub) => {
            Consumer {
                bus,
                sub,
                topic: topic.to_owned(),
                group: group.to_owned(),
                options,
                retries: None,
            }
            .run(handler, shutdown)
            .await
        }
        Err(e) => Err(e),
    }
}

/// A subscription that is already in place, for consumers that must know their group exists
/// before they do something else: a service that rebuilds its state from another service's
/// read joins first, so no event published during the read is missed.
#[derive(Debug)]
pub struct Consumer {
    bus: Arc<dyn Bus>,
    sub: Box<dyn Subscription>,
    topic: String,
    group: String,
    options: SubscribeOptions,
    /// Without it, a failing event is redelivered until it succeeds.
    retries: Option<Retries>,
}

impl Consumer {
    /// Joins `group` now; events published from here on will be delivered to [`Consumer::run`].
    pub async fn join(
        bus: Arc<dyn Bus>,
        topic: &str,
        group: &str,
        consumer: &str,
        options: SubscribeOptions,
    ) -> Result<Consumer, Error> {
        let sub = bus.subscribe(topic, group, consumer, options.clone()).await?;
        Ok(Consumer {
            bus,
            sub,
            topic: topic.to_owned(),
            group: group.to_owned(),
            options,
            retries: None,
        })
    }

    /// Gives a failing event `retries.max_attempts` attempts, `retries.delay` apart (doubling),
    /// then sets it aside as a dead letter and acknowledges it, so the events behind it go on.
    pub fn with_retries(mut self, retries: Retries) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Runs `handler` as [`consume`] does, until `shutdown`; deletes the group afterwards when
    /// the options say so.
    pub async fn run<H, F>(
        self,
        mut handler: H,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Error>
    where
        H: FnMut(Envelope) -> F + Send,
        F: std::future::Future<Output = HandlerResult> + Send,
    {
        let one = move |mut batch: Vec<Envelope>| {
            let handled = batch.pop().map(&mut handler);
            async move {
                match handled {
                    Some(f) => vec![f.await],
                    None => Vec::new(),
                }
            }
        };
        self.run_batched(1, one, shutdown).await
    }

    /// Runs `handler` on up to `max` events at a time: those already waiting when the first
    /// arrives (it never waits for more), so a consumer that keeps up sees batches of one and
    /// one that falls behind catches up with few transactions. The handler answers each event
    /// on its own, in order; each answer is acknowledged, retried or set aside as [`run`]
    /// does for one event. Events seen before are acknowledged without reaching the handler.
    ///
    /// [`run`]: Consumer::run
    pub async fn run_batched<H, F>(
        mut self,
        max: usize,
        mut handler: H,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Error>
    where
        H: FnMut(Vec<Envelope>) -> F + Send,
        F: std::future::Future<Output = Vec<HandlerResult>> + Send,
    {
        let result = self.drive(max.max(1), &mut handler, shutdown).await;
        if self.options.delete_group_on_exit
            && let Err(e) = self.bus.delete_group(&self.topic, &self.group).await
        {
            tracing::warn!(topic = %self.topic, group = %self.group, error = %e, "could not delete consumer group");
        }
        result
    }

    async fn drive<H, F>(
        &mut self,
        max: usize,
        handler: &mut H,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Error>
    where
        H: FnMut(Vec<Envelope>) -> F + Send,
        F: std::future::Future<Output = Vec<HandlerResult>> + Send,
    {
        let (topic, group) = (self.topic.clone(), self.group.clone());
        let (topic, group) = (topic.as_str(), group.as_str());
        let mut dedupe = Dedupe::new(100_000);
        tokio::pin!(shutdown);
        loop {
            let delivery = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                next = self.sub.next(self.options.poll) => next,
            };
            let delivery = match delivery {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(topic, group, error = %e, "bus read failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut deliveries = vec![delivery];
            while deliveries.len() < max {
                match self.sub.next(Duration::ZERO).await {
                    Ok(Some(d)) => deliveries.push(d),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(topic, group, error = %e, "bus read failed; handling what was read");
                        break;
                    }
                }
            }
            // An event seen before is a duplicate (also twice within one batch). Recorded only
            // once the handler succeeded: a failed event must run again when it is redelivered,
            // not be acknowledged as a duplicate of itself. A dead letter is not recorded either:
            // it was not handled.
            let mut fresh = Vec::with_capacity(deliveries.len());
            let mut in_batch = HashSet::new();
            for d in deliveries {
                if dedupe.seen(&d.envelope.id) || !in_batch.insert(d.envelope.id.clone()) {
                    count(topic, group, Outcome::Duplicate.label());
                    self.ack(&d).await;
                } else {
                    fresh.push(d);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            // One span per call of the handler, parented on the first event's trace; a batch
            // records how many events it carried.
            let span = crate::telemetry::process_span(topic, group, &fresh[0].envelope);
            if fresh.len() > 1 {
                span.record("messaging.batch.message_count", fresh.len());
            }
            let envelopes: Vec<Envelope> = fresh.iter().map(|d| d.envelope.clone()).collect();
            let mut answers = tracing::Instrument::instrument(handler(envelopes), span).await;
            if answers.len() != fresh.len() {
                let message = format!("the handler answered {} of {} events", answers.len(), fresh.len());
                answers = fresh
                    .iter()
                    .map(|_| Err(Error::new(crate::ErrorCode::Internal, message.clone())))
                    .collect();
            }
            for (delivery, handled) in fresh.iter().zip(answers) {
                let outcome = match handled {
                    Ok(()) => {
                        dedupe.record(&delivery.envelope.id);
                        self.succeeded(delivery).await;
                        Outcome::Ok
                    }
                    Err(e) => self.failed(delivery, &e).await,
                };
                count(topic, group, outcome.label());
                if outcome != Outcome::Retry {
                    self.ack(delivery).await;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) {
        if let Err(e) = self.sub.ack(delivery).await {
            tracing::warn!(topic = %self.topic, group = %self.group, error = %e, "ack failed");
        }
    }

    /// After the handler took `delivery`: an event that came back after it was set aside (its
    /// acknowledgement was lost) is not a dead letter any more, so a replay cannot apply it twice.
    /// Only an event delivered as often as the attempts allow can have been set aside.
    async fn succeeded(&mut self, delivery: &Delivery) {
        let Some(retries) = &self.retries else { return };
        if delivery.attempt < retries.max_attempts {
            return;
        }
        let (topic, group) = (self.topic.as_str(), self.group.as_str());
        if let Err(e) = retries.dead_letters.settled(topic, group, &delivery.envelope.id).await {
            tracing::warn!(topic, group, event_id = %delivery.envelope.id, error = %e, "could not clear the dead letter of an event handled since");
        }
    }

    /// After a handler failed on `delivery`: another attempt later, or, after the last, a dead
    /// letter (acknowledged by the caller). When the dead letter cannot be written, the event
    /// stays on the bus and is tried again.
    async fn failed(&mut self, delivery: &Delivery, error: &Error) -> Outcome {
        let (topic, group) = (self.topic.as_str(), self.group.as_str());
        let event_id = delivery.envelope.id.as_str();
        let Some(retries) = &self.retries else {
            tracing::warn!(topic, group, event_id, error = %error.detail(), "event handler failed, will be redelivered");
            return Outcome::Retry;
        };
        if delivery.attempt >= retries.max_attempts {
            let recorded = retries
                .dead_letters
                .record(topic, group, &delivery.envelope, delivery.attempt, &error.detail())
                .await;
            match recorded {
                Ok(()) => {
                    tracing::error!(topic, group, event_id, attempts = delivery.attempt, error = %error.detail(), "event handler failed for the last time; set aside as a dead letter");
                    return Outcome::DeadLetter;
                }
                Err(e) => {
                    tracing::warn!(topic, group, event_id, error = %e, "could not write a dead letter; the event will be redelivered");
                }
            }
        } else {
            tracing::warn!(topic, group, event_id, attempt = delivery.attempt, max_attempts = retries.max_attempts, error = %error.detail(), "event handler failed, will retry");
        }
        let delay = retries.delay_after(delivery.attempt, self.options.reclaim_after);
        if let Err(e) = self.sub.retry_after(delivery, delay).await {
            tracing::warn!(topic, group, event_id, error = %e, "could not schedule a retry; the event is redelivered after reclaim_after");
        }
        Outcome::Retry
    }
}

/// What became of one delivery, as `chorus_events_handled_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Seen before; acknowledged without running the handler.
    Duplicate,
    /// The handler failed; the event will be delivered again.
    Retry,
    /// The handler failed for the last time; the event is a dead letter.
    DeadLetter,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Duplicate => "duplicate",
            Outcome::Retry => "retry",
            Outcome::DeadLetter => "dead_letter",
        }
    }
}

/// Counts one event in `chorus_events_handled_total` (replays count as `replayed` or
/// `replay_failed`).
fn count(topic: &str, group: &str, outcome: &'static str) {
    ::metrics::counter!(
        HANDLED_METRIC,
        "topic" => topic.to_owned(),
        "group" => group_label(group).to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}

/// The bus a service's config names: Redis Streams at `redis_url`, else an in-process bus
/// (single node, or a process whose events need not leave it).
pub async fn connect(redis_url: Option<&crate::config::Secret<String>>) -> Result<Arc<dyn Bus>, Error> {
    Ok(match redis_url {
        Some(url) => Arc::new(redis::RedisBus::connect(url.expose()).await?),
        None => Arc::new(memory::MemoryBus::new()),
    })
}

/// Encodes an envelope for a transport that carries bytes.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, Error> {
    Envelope::decode(bytes).map_err(|e| Error::internal("decode event envelope", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_forgets_only_beyond_capacity() {
        let mut d = Dedupe::new(2);
        d.record("a");
        assert!(d.seen("a"));
        d.record("a");
        d.record("b");
        assert!(d.seen("a") && d.seen("b"), "recording again does not push anything out");
        d.record("c");
        assert!(!d.seen("a"), "a fell out of the window");
        assert!(d.seen("b") && d.seen("c"));
    }

    #[test]
    fn metrics_name_a_per_process_group_by_its_prefix() {
        assert_eq!(group_label(&process_group("matching-index")), "matching-index");
        assert_eq!(group_label("matching"), "matching");
        assert_eq!(group_label("e2e-not-a-uuid"), "e2e-not-a-uuid");
        let v4 = format!("test-{}", uuid::Uuid::new_v4().simple());
        assert_eq!(group_label(&v4), v4, "only the UUIDv7 suffix process_group adds");
    }

    #[test]
    fn payload_checks_the_type_url() {
        let env = envelope(
            &Clock::system(),
            "",
            &chorus_proto::types::Money {
                currency_code: "USD".into(),
                amount_minor: 5,
            },
        );
        let money: chorus_proto::types::Money = payload(&env).unwrap();
        assert_eq!(money.amount_minor, 5);
        assert!(payload::<chorus_proto::types::Location>(&env).is_err());
    }

    #[test]
    fn an_event_is_typed_by_its_payloads_full_name() {
        use chorus_proto::registry::InfluencerDeleted;
        let env = envelope(&Clock::manual(5_000_000), "t", &InfluencerDeleted::default());
        assert_eq!(env.r#type, "chorus.registry.v1.InfluencerDeleted");
        assert_eq!(env.source, "registry");
        assert_eq!(topic_of::<InfluencerDeleted>(), "chorus.registry");
        assert_eq!(env.occur_time.map(|t| t.seconds), Some(5), "stamped by the clock");
        assert!(is::<InfluencerDeleted>(&env));
        assert!(read::<chorus_proto::registry::InfluencerUpserted>(&env).is_none());
        assert!(read::<InfluencerDeleted>(&env).is_some_and(|r| r.is_ok()));
    }

    #[test]
    fn first_release_type_strings_are_still_understood() {
        use chorus_proto::registry::InfluencerUpserted;
        let mut env = envelope(&Clock::system(), "", &InfluencerUpserted::default());
        env.r#type = "registry.influencer.upserted".into();
        assert!(is::<InfluencerUpserted>(&env));
        assert_eq!(event_type(&env), "chorus.registry.v1.InfluencerUpserted");
        for (_, new) in LEGACY_TYPES {
            assert!(new.starts_with("chorus.") && new.contains(".v1."), "{new}");
        }
    }
}
