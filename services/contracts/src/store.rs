//! Storage of offer templates, offers, contracts and deliverables, on PostgreSQL or SQLite.
//! Each is kept whole as protobuf bytes beside the columns queries select on. Every read and
//! change is scoped by who asks ([`Who`]): a brand's tenant or an influencer's id, so another
//! party's rows are simply not found. A change is one transaction: the row is locked, the
//! domain's move is applied, and its events, timers and the request's first answer commit with
//! it ([`Writes`]).

use std::collections::HashMap;

use chorus_kit::Error;
use chorus_kit::batch::Outcome;
use chorus_kit::clock::Clock;
use chorus_kit::events::outbox::{Inbox, Outbox};
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::{Backend, Database, placeholders};
use chorus_kit::timers::Timers;
use chorus_proto::contracts::{
    Contract, CreateOffersResponse, Deliverable, Offer, OfferSkipped, OfferState, OfferTemplate,
};
use chorus_proto::event::Envelope;
use prost::Message;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Row};

pub use chorus_kit::clock::timestamp;

/// Contracts' topic: `chorus_kit::events::topic_of` any of its events.
pub const TOPIC: &str = "chorus.contracts";
/// The topic of contracts' own timers; only contracts reads it.
pub const TIMER_TOPIC: &str = "chorus.contracts.timers";
/// Rows per INSERT when many are written at once.
const BATCH: usize = 500;

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, Error> {
    M::decode(bytes).map_err(|e| Error::internal(what, e))
}

/// The id in a resource name: "offers/abc" → "abc".
pub fn id_of<'a>(name: &'a str, collection: &str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|s| s.strip_prefix('/'))
        .unwrap_or(name)
}

/// Who a read or change is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A brand's user or app: rows of its tenant.
    Brand(String),
    /// An influencer: their own rows.
    Influencer(String),
    /// The service itself (timers, consumers): any row.
    System,
}

impl Who {
    /// The column and value that scope a query, as `AND {column} = $n`.
    fn scope(&self) -> (&'static str, &str) {
        match self {
            Who::Brand(tenant) => ("tenant", tenant),
            Who::Influencer(id) => ("influencer_id", id),
            Who::System => ("''", ""),
        }
    }

    /// Whether a row of `tenant` and `influencer_id` is this caller's to see.
    fn sees(&self, tenant: &str, influencer_id: &str) -> bool {
        match self {
            Who::Brand(t) => t == tenant,
            Who::Influencer(id) => id == influencer_id,
            Who::System => true,
        }
    }
}

/// One call's move in a batch ([`Store::change_contracts`], [`Store::change_offers`]): who
/// asks, the row's id, and the call's claim on its request id.
#[derive(Debug, Clone)]
pub struct Target {
    pub who: Who,
    pub id: String,
    pub claim: Claim,
}

/// A timer to schedule with a change.
#[derive(Debug, Clone)]
pub struct Timer {
    pub key: String,
    pub at: i64,
    pub topic: &'static str,
    pub envelope: Envelope,
}

/// What a change writes beside its row: events, timers set and cancelled, deliverables.
#[derive(Debug, Default)]
pub struct Writes {
    pub events: Vec<Envelope>,
    pub timers: Vec<Timer>,
    pub cancel: Vec<String>,
    /// Deliverables to insert or replace.
    pub deliverables: Vec<Deliverable>,
}

impl Writes {
    pub fn event(&mut self, e: Envelope) {
        self.events.push(e);
    }

    pub fn timer(&mut self, key: String, at: i64, topic: &'static str, envelope: Envelope) {
        self.timers.push(Timer {
            key,
            at,
            topic,
            envelope,
        });
    }
}

/// The writes of many moves applied one after the other, as one set to write: the events in
/// order, and for each timer key the last move's word (scheduled, or cancelled). Within one
/// move, cancellations come before the timers it sets, so cancelling and setting a key moves
/// it.
#[derive(Debug, Default)]
struct Merged {
    events: Vec<Envelope>,
    timers: Vec<(String, Option<Timer>)>,
    slot: HashMap<String, usize>,
    deliverables: Vec<Deliverable>,
}

impl Merged {
    fn add(&mut self, w: Writes) {
        self.events.extend(w.events);
        for key in w.cancel {
            self.set(key, None);
        }
        for t in w.timers {
            self.set(t.key.clone(), Some(t));
        }
        self.deliverables.extend(w.deliverables);
    }

    fn set(&mut self, key: String, timer: Option<Timer>) {
        match self.slot.get(&key) {
            Some(&i) => self.timers[i].1 = timer,
            None => {
                self.slot.insert(key.clone(), self.timers.len());
                self.timers.push((key, timer));
            }
        }
    }
}

/// A row locked for a batch, as its moves leave it.
#[derive(Debug)]
struct Held<M> {
    row: M,
    tenant: String,
    influencer_id: String,
    /// Whether a move succeeded on it (offers are written back then).
    moved: bool,
    /// Whether a move changed it (contracts are written back then).
    changed: bool,
    deliverables: Vec<Deliverable>,
    loaded: Vec<Deliverable>,
}

/// One accepted member of a shortlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub influencer_id: String,
    pub segment: String,
}

/// A new offer to insert: the message and its expiry.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub offer: Offer,
    pub influencer_id: String,
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
    timers: Timers,
    clock: Clock,
}

impl Store {
    pub fn new(db: Database, outbox: Outbox, timers: Timers, clock: Clock) -> Self {
        Store {
            db,
            outbox,
            timers,
            clock,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    /// Writes a change's events and timers and the request's answer, then commits.
    async fn finish(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        writes: Writes,
        claim: &Claim,
        answer: &impl Message,
    ) -> Result<(), Error> {
        let mut merged = Merged::default();
        merged.add(writes);
        self.commit(tx, merged, &[(claim, answer)]).await
    }

    /// Writes the merged writes of a batch and the answers of its calls (each under its own
    /// request id), then commits.
    async fn commit<A: Message>(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        merged: Merged,
        answers: &[(&Claim, &A)],
    ) -> Result<(), Error> {
        put_deliverables(&mut tx, &merged.deliverables).await?;
        let cancel: Vec<&str> = merged
            .timers
            .iter()
            .filter(|(_, t)| t.is_none())
            .map(|(key, _)| key.as_str())
            .collect();
        if !cancel.is_empty() {
            self.timers.cancel_many(&mut tx, cancel).await?;
        }
        let set: Vec<&Timer> = merged.timers.iter().filter_map(|(_, t)| t.as_ref()).collect();
        if !set.is_empty() {
            let timers = set.iter().map(|t| (t.key.as_str(), t.at, t.topic, &t.envelope));
            self.timers.schedule_many(&mut tx, timers).await?;
        }
        if !merged.events.is_empty() {
            self.outbox.add_many(&mut tx, TOPIC, &merged.events).await?;
        }
        for (claim, answer) in answers {
            claim.record(&mut tx, *answer).await?;
        }
        tx.commit().await?;
        if !merged.events.is_empty() {
            self.outbox.committed();
        }
        if !set.is_empty() {
            self.timers.scheduled();
        }
        Ok(())
    }

    /// Locks the rows `ids` of `table` ("offers" or "contracts") in `tx`, in the order of
    /// their ids, and reads their body, tenant and influencer. On PostgreSQL `FOR UPDATE`;
    /// SQLite has none, and a no-op update takes its write lock.
    async fn lock_rows(
        &self,
        tx: &mut AnyConnection,
        table: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, (Vec<u8>, String, String)>, Error> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut rows = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let marks = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = match self.db.backend {
                Backend::Postgres => format!(
                    "SELECT id, body, tenant, influencer_id FROM {table} WHERE id IN ({marks}) ORDER BY id FOR UPDATE"
                ),
                Backend::Sqlite => format!(
                    "UPDATE {table} SET update_time = update_time WHERE id IN ({marks}) \
                     RETURNING id, body, tenant, influencer_id"
                ),
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *tx).await? {
                rows.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
            }
        }
        Ok(rows)
    }

    // ---- offer templates ----

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.set_template", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn set_template(&self, tenant: &str, t: &OfferTemplate, claim: &Claim) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        let campaign_id = id_of(&t.campaign, "campaigns");
        sqlx::query(
            "INSERT INTO offer_templates (tenant, campaign_id, body, update_time) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, campaign_id) DO UPDATE SET body = excluded.body, update_time = excluded.update_time",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(t.encode_to_vec())
        .bind(self.now_micros())
        .execute(&mut *tx)
        .await?;
        self.finish(tx, Writes::default(), claim, t).await
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.template", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn template(&self, tenant: &str, campaign_id: &str) -> Result<Option<OfferTemplate>, Error> {
        let row = sqlx::query("SELECT body FROM offer_templates WHERE tenant = $1 AND campaign_id = $2")
            .bind(tenant)
            .bind(campaign_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode offer template"))
            .transpose()
    }

    // ---- shortlists heard from matching ----

    /// Records a member decision of a shortlist (matching's ShortlistMemberDecided), once per
    /// event: an acceptance adds the member, anything else removes them.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.member_decided", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn member_decided(
        &self,
        consumer: &str,
        event_id: &str,
        tenant: &str,
        shortlist: &str,
        campaign_id: &str,
        member: Option<Member>,
        influencer_id: &str,
    ) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        sqlx::query("DELETE FROM shortlist_members WHERE tenant = $1 AND shortlist = $2 AND influencer_id = $3")
            .bind(tenant)
            .bind(shortlist)
            .bind(influencer_id)
            .execute(&mut *tx)
            .await?;
        if let Some(m) = member {
            sqlx::query(
                "INSERT INTO shortlist_members (tenant, shortlist, influencer_id, campaign_id, segment) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(shortlist)
            .bind(&m.influencer_id)
            .bind(campaign_id)
            .bind(&m.segment)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The accepted members of a tenant's shortlist, in the order of their ids.
    pub async fn accepted_members(&self, tenant: &str, shortlist: &str) -> Result<Vec<Member>, Error> {
        let rows = sqlx::query(
            "SELECT influencer_id, segment FROM shortlist_members WHERE tenant = $1 AND shortlist = $2 ORDER BY influencer_id",
        )
        .bind(tenant)
        .bind(shortlist)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    influencer_id: r.try_get(0)?,
                    segment: r.try_get(1)?,
                })
            })
            .collect()
    }

    // ---- offers ----

    /// Inserts new offers of one campaign, skipping people who already have an open or
    /// accepted one, with their events and timers, in one transaction.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.create_offers", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn create_offers(
        &self,
        tenant: &str,
        campaign_id: &str,
        offers: Vec<NewOffer>,
        make_writes: impl FnOnce(&[Offer]) -> Writes,
        claim: &Claim,
    ) -> Result<CreateOffersResponse, Error> {
        let mut tx = self.pool().begin().await?;
        // Serialises CreateOffers of one campaign, so two calls cannot both offer one person.
        sqlx::query("UPDATE offer_templates SET update_time = update_time WHERE tenant = $1 AND campaign_id = $2")
            .bind(tenant)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        let live: std::collections::HashMap<String, String> = sqlx::query(
            "SELECT influencer_id, id FROM offers WHERE tenant = $1 AND campaign_id = $2 AND state IN (1, 2)",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok::<_, Error>((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, _>>()?;
        let mut response = CreateOffersResponse::default();
        let mut fresh = Vec::with_capacity(offers.len());
        for n in offers {
            if let Some(id) = live.get(&n.influencer_id) {
                response.skipped.push(OfferSkipped {
                    influencer: format!("influencers/{}", n.influencer_id),
                    reason: "ALREADY_OFFERED".into(),
                    offer: format!("offers/{id}"),
                });
            } else {
                response.offers.push(n.offer.name.clone());
                fresh.push(n);
            }
        }
        let now = self.now_micros();
        for chunk in fresh.chunks(BATCH) {
            let mut sql = String::from(
                "INSERT INTO offers (id, tenant, campaign_id, influencer_id, state, body, update_time, expire_time) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for n in chunk {
                q = q
                    .bind(id_of(&n.offer.name, "offers").to_owned())
                    .bind(tenant)
                    .bind(campaign_id)
                    .bind(&n.influencer_id)
                    .bind(i64::from(n.offer.state))
                    .bind(n.offer.encode_to_vec())
                    .bind(now)
                    .bind(n.offer.expire_time.as_ref().map_or(0, chorus_kit::clock::micros));
            }
            q.execute(&mut *tx).await?;
        }
        let made: Vec<Offer> = fresh.into_iter().map(|n| n.offer).collect();
        let writes = make_writes(&made);
        self.finish(tx, writes, claim, &response).await?;
        Ok(response)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.offer", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn offer(&self, who: &Who, id: &str) -> Result<Option<Offer>, Error> {
        let (column, value) = who.scope();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT body FROM offers WHERE id = $1 AND {column} = $2"
        )))
        .bind(id)
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode offer"))
            .transpose()
    }

    /// Offers newest first, after `before_id`, filtered by campaign and state when given.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.offers", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn offers(
        &self,
        who: &Who,
        campaign_id: Option<&str>,
        state: Option<i32>,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Offer>, Error> {
        self.list("offers", who, campaign_id, state, before_id, limit, "decode offer")
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn list<M: Message + Default>(
        &self,
        table: &str,
        who: &Who,
        campaign_id: Option<&str>,
        state: Option<i32>,
        before_id: Option<&str>,
        limit: usize,
        what: &str,
    ) -> Result<Vec<M>, Error> {
        let (column, value) = who.scope();
        let mut sql = format!("SELECT body FROM {table} WHERE {column} = $1 AND id < $2");
        if campaign_id.is_some() {
            sql.push_str(" AND campaign_id = $3");
        }
        if let Some(s) = state {
            sql.push_str(&format!(" AND state = {s}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(before_id.unwrap_or("~"));
        if let Some(c) = campaign_id {
            q = q.bind(c);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), what))
            .collect()
    }

    /// Applies `change` to an offer under its lock; `change` may return a contract to create
    /// (an acceptance). The answer is what `answer` makes of the results.
    pub async fn change_offer<A: Message + Default>(
        &self,
        who: &Who,
        id: &str,
        claim: &Claim,
        change: impl FnOnce(&mut Offer, &str, &mut Writes) -> Result<Option<Contract>, Error>,
        answer: impl FnOnce(&Offer, Option<&Contract>) -> A,
    ) -> Result<A, Error> {
        let target = Target {
            who: who.clone(),
            id: id.to_owned(),
            claim: claim.clone(),
        };
        let (mut change, mut answer) = (Some(change), Some(answer));
        let mut answers = self
            .change_offers(
                std::slice::from_ref(&target),
                |_, o, tenant, w| change.take().map_or_else(|| Err(applied_twice()), |f| f(o, tenant, w)),
                |_, o, c| answer.take().map_or_else(A::default, |f| f(o, c)),
            )
            .await?;
        answers.pop().unwrap_or_else(|| Err(applied_twice()))
    }

    /// Applies one move per target, in order, in one transaction: each offer is locked once
    /// and each move sees what the moves before it made of it. `change(i, ...)` makes the
    /// move of `targets[i]` and may return a contract to create (an acceptance); `answer(i,
    /// ...)` is its answer. A move's error (NOT_FOUND for an offer the caller may not see, a
    /// state that forbids it) is its own answer and leaves the offer as it was; the others go
    /// on. The outer error means the transaction did not commit, nothing was written.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.change_offers", otel.kind = "client", db.system.name = self.db.system(), batch = targets.len()))]
    pub async fn change_offers<A: Message>(
        &self,
        targets: &[Target],
        mut change: impl FnMut(usize, &mut Offer, &str, &mut Writes) -> Result<Option<Contract>, Error>,
        mut answer: impl FnMut(usize, &Offer, Option<&Contract>) -> A,
    ) -> Outcome<A> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let mut held: HashMap<String, Held<Offer>> = HashMap::with_capacity(ids.len());
        for (id, (body, tenant, influencer_id)) in self.lock_rows(&mut tx, "offers", &ids).await? {
            held.insert(
                id,
                Held {
                    row: decode(&body, "decode offer")?,
                    tenant,
                    influencer_id,
                    moved: false,
                    changed: false,
                    deliverables: Vec::new(),
                    loaded: Vec::new(),
                },
            );
        }
        let mut merged = Merged::default();
        let mut made: Vec<(Contract, String, String)> = Vec::new();
        let mut answers = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let Some(h) = held.get_mut(&t.id).filter(|h| t.who.sees(&h.tenant, &h.influencer_id)) else {
                answers.push(Err(Error::not_found(format!("offers/{}", t.id))));
                continue;
            };
            let mut offer = h.row.clone();
            let mut writes = Writes::default();
            match change(i, &mut offer, &h.tenant, &mut writes) {
                Err(e) => answers.push(Err(e)),
                Ok(contract) => {
                    h.row = offer;
                    h.moved = true;
                    merged.add(writes);
                    answers.push(Ok(answer(i, &h.row, contract.as_ref())));
                    if let Some(c) = contract {
                        made.push((c, h.tenant.clone(), t.id.clone()));
                    }
                }
            }
        }
        let now = self.now_micros();
        let moved: Vec<&Offer> = held.values().filter(|h| h.moved).map(|h| &h.row).collect();
        put_offers(&mut tx, &moved, now).await?;
        insert_contracts(&mut tx, &made, now).await?;
        let records = answered(targets, &answers);
        self.commit(tx, merged, &records).await?;
        Ok(answers)
    }

    /// Open offers of a campaign whose expiry is at or before `by`, not yet reminded when
    /// `unreminded`.
    pub async fn due_offers(&self, campaign_id: &str, by: i64, unreminded: bool) -> Result<Vec<String>, Error> {
        let sql = if unreminded {
            "SELECT id FROM offers WHERE campaign_id = $1 AND state = 1 AND expire_time <= $2 AND reminded = 0"
        } else {
            "SELECT id FROM offers WHERE campaign_id = $1 AND state = 1 AND expire_time <= $2"
        };
        let rows = sqlx::query(sql)
            .bind(campaign_id)
            .bind(by)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// Records that offers were reminded, with the reminders, once per timer event.
    pub async fn reminded(
        &self,
        consumer: &str,
        event_id: &str,
        ids: &[String],
        events: Vec<Envelope>,
    ) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        for id in ids {
            sqlx::query("UPDATE offers SET reminded = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.outbox.add_many(&mut tx, TOPIC, &events).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    // ---- contracts ----

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.contract", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn contract(&self, who: &Who, id: &str) -> Result<Option<(Contract, String)>, Error> {
        let (column, value) = who.scope();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT body, tenant FROM contracts WHERE id = $1 AND {column} = $2"
        )))
        .bind(id)
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode contract")?,
                r.try_get(1)?,
            ))
        })
        .transpose()
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.contracts", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn contracts(
        &self,
        who: &Who,
        campaign_id: Option<&str>,
        state: Option<i32>,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Contract>, Error> {
        self.list(
            "contracts",
            who,
            campaign_id,
            state,
            before_id,
            limit,
            "decode contract",
        )
        .await
    }

    /// Applies `change` to a contract and its deliverables under the contract's lock. `change`
    /// gets the contract, its tenant and its deliverables (in order) and says what to write.
    pub async fn change_contract<A: Message + Default>(
        &self,
        who: &Who,
        id: &str,
        claim: &Claim,
        change: impl FnOnce(&mut Contract, &str, &mut [Deliverable], &mut Writes) -> Result<bool, Error>,
        answer: impl FnOnce(&Contract, &[Deliverable]) -> A,
    ) -> Result<A, Error> {
        let target = Target {
            who: who.clone(),
            id: id.to_owned(),
            claim: claim.clone(),
        };
        let (mut change, mut answer) = (Some(change), Some(answer));
        let mut answers = self
            .change_contracts(
                std::slice::from_ref(&target),
                |_, c, tenant, d, w| {
                    change
                        .take()
                        .map_or_else(|| Err(applied_twice()), |f| f(c, tenant, d, w))
                },
                |_, c, d| answer.take().map_or_else(A::default, |f| f(c, d)),
            )
            .await?;
        answers.pop().unwrap_or_else(|| Err(applied_twice()))
    }

    /// Applies one move per target, in order, in one transaction: each contract is locked
    /// once and each move sees what the moves before it made of the contract and its
    /// deliverables (two signatures of one contract: the second activates it). `change(i,
    /// ...)` makes the move of `targets[i]` and says whether the contract changed; it may
    /// change deliverables in place and add new ones (an activation) to its `Writes`.
    /// `answer(i, ...)` is the move's answer. A move's error (NOT_FOUND for a contract the
    /// caller may not see, a state that forbids it) is its own answer and leaves the contract
    /// as it was; the others go on. The outer error means the transaction did not commit,
    /// nothing was written.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.change_contracts", otel.kind = "client", db.system.name = self.db.system(), batch = targets.len()))]
    pub async fn change_contracts<A: Message>(
        &self,
        targets: &[Target],
        mut change: impl FnMut(usize, &mut Contract, &str, &mut [Deliverable], &mut Writes) -> Result<bool, Error>,
        mut answer: impl FnMut(usize, &Contract, &[Deliverable]) -> A,
    ) -> Outcome<A> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let mut held: HashMap<String, Held<Contract>> = HashMap::with_capacity(ids.len());
        for (id, (body, tenant, influencer_id)) in self.lock_rows(&mut tx, "contracts", &ids).await? {
            held.insert(
                id,
                Held {
                    row: decode(&body, "decode contract")?,
                    tenant,
                    influencer_id,
                    moved: false,
                    changed: false,
                    deliverables: Vec::new(),
                    loaded: Vec::new(),
                },
            );
        }
        // Deliverables are made when a contract activates; before that there are none to read.
        let active: Vec<&str> = held
            .iter()
            .filter(|(_, h)| h.row.activate_time.is_some())
            .map(|(id, _)| id.as_str())
            .collect();
        let mut found = deliverables_of(&mut tx, &active).await?;
        for (id, h) in &mut held {
            if let Some(ds) = found.remove(id) {
                h.loaded = ds.clone();
                h.deliverables = ds;
            }
        }
        let mut merged = Merged::default();
        let mut answers = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let Some(h) = held.get_mut(&t.id).filter(|h| t.who.sees(&h.tenant, &h.influencer_id)) else {
                answers.push(Err(Error::not_found(format!("contracts/{}", t.id))));
                continue;
            };
            let mut contract = h.row.clone();
            let mut deliverables = h.deliverables.clone();
            let mut writes = Writes::default();
            match change(i, &mut contract, &h.tenant, &mut deliverables, &mut writes) {
                Err(e) => answers.push(Err(e)),
                Ok(changed) => {
                    // New deliverables (an activation) come in `writes`.
                    deliverables.append(&mut writes.deliverables);
                    h.row = contract;
                    h.deliverables = deliverables;
                    h.changed |= changed;
                    merged.add(writes);
                    answers.push(Ok(answer(i, &h.row, &h.deliverables)));
                }
            }
        }
        let changed: Vec<&Contract> = held.values().filter(|h| h.changed).map(|h| &h.row).collect();
        update_contracts(&mut tx, &changed, self.now_micros()).await?;
        // Of the loaded deliverables, only those the moves changed are written back.
        for h in held.values() {
            let touched = h.deliverables.iter().filter(|d| !h.loaded.contains(d)).cloned();
            merged.deliverables.extend(touched);
        }
        let records = answered(targets, &answers);
        self.commit(tx, merged, &records).await?;
        Ok(answers)
    }

    /// A contract's deliverables, in order; None when the caller cannot see the contract.
    pub async fn deliverables(&self, who: &Who, contract_id: &str) -> Result<Option<Vec<Deliverable>>, Error> {
        if self.contract(who, contract_id).await?.is_none() {
            return Ok(None);
        }
        let mut conn = self.pool().acquire().await?;
        Ok(Some(deliverables_in(&mut conn, contract_id).await?))
    }
}

async fn deliverables_in(conn: &mut AnyConnection, contract_id: &str) -> Result<Vec<Deliverable>, Error> {
    let rows = sqlx::query("SELECT body FROM deliverables WHERE contract_id = $1 ORDER BY n")
        .bind(contract_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode deliverable"))
        .collect()
}

/// The deliverables of contracts `ids`, each contract's in order, in multi-row reads.
async fn deliverables_of(conn: &mut AnyConnection, ids: &[&str]) -> Result<HashMap<String, Vec<Deliverable>>, Error> {
    let mut out: HashMap<String, Vec<Deliverable>> = HashMap::new();
    for chunk in ids.chunks(BATCH) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT contract_id, body FROM deliverables WHERE contract_id IN ({marks}) ORDER BY contract_id, n"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let d = decode(r.try_get::<Vec<u8>, _>(1)?.as_slice(), "decode deliverable")?;
            out.entry(r.try_get(0)?).or_default().push(d);
        }
    }
    Ok(out)
}

/// Each call that succeeded, with its claim on its request id: the answers to record.
fn answered<'a, A>(targets: &'a [Target], answers: &'a [Result<A, Error>]) -> Vec<(&'a Claim, &'a A)> {
    let mut out = Vec::with_capacity(answers.len());
    for (t, a) in targets.iter().zip(answers) {
        if let Ok(a) = a {
            out.push((&t.claim, a));
        }
    }
    out
}

/// A move's closure was asked for twice: a bug in the store.
fn applied_twice() -> Error {
    Error::new(chorus_kit::ErrorCode::Internal, "a single move was applied twice")
}

/// Writes offers back, in multi-row statements.
async fn put_offers(conn: &mut AnyConnection, offers: &[&Offer], now: i64) -> Result<(), Error> {
    for chunk in offers.chunks(BATCH) {
        let sql = format!(
            "WITH v (id, state, body, expire_time) AS (VALUES {}) \
             UPDATE offers SET state = v.state, body = v.body, update_time = $1, expire_time = v.expire_time \
             FROM v WHERE offers.id = v.id",
            placeholders(chunk.len(), 4, 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for o in chunk {
            q = q
                .bind(id_of(&o.name, "offers").to_owned())
                .bind(i64::from(o.state))
                .bind(o.encode_to_vec())
                .bind(o.expire_time.as_ref().map_or(0, chorus_kit::clock::micros));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts new contracts, each with its tenant and offer id, in multi-row statements.
async fn insert_contracts(
    conn: &mut AnyConnection,
    made: &[(Contract, String, String)],
    now: i64,
) -> Result<(), Error> {
    for chunk in made.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO contracts (id, tenant, campaign_id, influencer_id, offer_id, state, body, update_time) VALUES {}",
            placeholders(chunk.len(), 8, 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (c, tenant, offer_id) in chunk {
            q = q
                .bind(id_of(&c.name, "contracts").to_owned())
                .bind(tenant)
                .bind(id_of(&c.campaign, "campaigns").to_owned())
                .bind(id_of(&c.influencer, "influencers").to_owned())
                .bind(offer_id)
                .bind(i64::from(c.state))
                .bind(c.encode_to_vec())
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes contracts back, in multi-row statements.
async fn update_contracts(conn: &mut AnyConnection, contracts: &[&Contract], now: i64) -> Result<(), Error> {
    for chunk in contracts.chunks(BATCH) {
        let sql = format!(
            "WITH v (id, state, body) AS (VALUES {}) \
             UPDATE contracts SET state = v.state, body = v.body, update_time = $1 FROM v WHERE contracts.id = v.id",
            placeholders(chunk.len(), 3, 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for c in chunk {
            q = q
                .bind(id_of(&c.name, "contracts").to_owned())
                .bind(i64::from(c.state))
                .bind(c.encode_to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The number in a deliverable's name: "contracts/c/deliverables/3" → 3.
pub fn deliverable_number(name: &str) -> Option<i64> {
    name.rsplit('/').next().and_then(|n| n.parse().ok())
}

/// One event made into a notification, as `notifications` keeps it (never the address).
#[derive(Debug, Clone, Copy)]
pub struct Notified<'a> {
    pub event_id: &'a str,
    pub tenant: &'a str,
    pub kind: &'a str,
    pub influencer_id: &'a str,
    pub about: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

impl Store {
    /// Whether the event `event_id` was already made into a notification.
    pub async fn notified(&self, event_id: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT outcome FROM notifications WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Records what became of an event's notification; the first record stands.
    pub async fn record_notification(&self, n: &Notified<'_>) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO notifications (event_id, tenant, kind, influencer_id, about, outcome, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(n.event_id)
        .bind(n.tenant)
        .bind(n.kind)
        .bind(n.influencer_id)
        .bind(n.about)
        .bind(n.outcome)
        .bind(n.detail)
        .bind(self.clock.now_micros())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Inserts or replaces deliverables, in multi-row statements (4 parameters a row).
async fn put_deliverables(conn: &mut AnyConnection, deliverables: &[Deliverable]) -> Result<(), Error> {
    for chunk in deliverables.chunks(500) {
        let sql = format!(
            "INSERT INTO deliverables (contract_id, n, state, body) VALUES {} \
             ON CONFLICT (contract_id, n) DO UPDATE SET state = excluded.state, body = excluded.body",
            placeholders(chunk.len(), 4, 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            let contract_id = d
                .name
                .strip_prefix("contracts/")
                .and_then(|s| s.split('/').next())
                .unwrap_or_default();
            q = q
                .bind(contract_id.to_owned())
                .bind(deliverable_number(&d.name).unwrap_or_default())
                .bind(i64::from(d.state))
                .bind(d.encode_to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The offer states that hold a person's place in a campaign.
pub const LIVE_OFFER_STATES: [OfferState; 2] = [OfferState::Open, OfferState::Accepted];
