//! Storage of offer templates, offers, contracts and deliverables, on PostgreSQL or SQLite.
//! Each is kept whole as protobuf bytes beside the columns queries select on. Every read and
//! change is scoped by who asks ([`Who`]): a brand's tenant or an influencer's id, so another
//! party's rows are simply not found. A change is one transaction: the row is locked, the
//! domain's move is applied, and its events, timers and the request's first answer commit with
//! it ([`Writes`]).

use chorus_kit::Error;
use chorus_kit::clock::Clock;
use chorus_kit::events::outbox::{Inbox, Outbox};
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::{Database, placeholders};
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
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        writes: Writes,
        claim: &Claim,
        answer: &impl Message,
    ) -> Result<(), Error> {
        put_deliverables(&mut tx, &writes.deliverables).await?;
        if !writes.cancel.is_empty() {
            self.timers
                .cancel_many(&mut tx, writes.cancel.iter().map(String::as_str))
                .await?;
        }
        if !writes.timers.is_empty() {
            let timers = writes
                .timers
                .iter()
                .map(|t| (t.key.as_str(), t.at, t.topic, &t.envelope));
            self.timers.schedule_many(&mut tx, timers).await?;
        }
        if !writes.events.is_empty() {
            self.outbox.add_many(&mut tx, TOPIC, &writes.events).await?;
        }
        claim.record(&mut tx, answer).await?;
        tx.commit().await?;
        if !writes.events.is_empty() {
            self.outbox.committed();
        }
        if !writes.timers.is_empty() {
            self.timers.scheduled();
        }
        Ok(())
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

    /// Locks and reads an offer in `tx`.
    async fn offer_in(tx: &mut AnyConnection, who: &Who, id: &str) -> Result<(Offer, String), Error> {
        let (body, tenant) = locked_row(tx, "offers", who, id).await?;
        Ok((decode(body.as_slice(), "decode offer")?, tenant))
    }

    async fn put_offer(tx: &mut AnyConnection, o: &Offer, now: i64) -> Result<(), Error> {
        sqlx::query("UPDATE offers SET state = $1, body = $2, update_time = $3, expire_time = $4 WHERE id = $5")
            .bind(i64::from(o.state))
            .bind(o.encode_to_vec())
            .bind(now)
            .bind(o.expire_time.as_ref().map_or(0, chorus_kit::clock::micros))
            .bind(id_of(&o.name, "offers"))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Applies `change` to an offer under its lock; `change` may return a contract to create
    /// (an acceptance). The answer is what `answer` makes of the results.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.change_offer", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn change_offer<A: Message>(
        &self,
        who: &Who,
        id: &str,
        claim: &Claim,
        change: impl FnOnce(&mut Offer, &str, &mut Writes) -> Result<Option<Contract>, Error>,
        answer: impl FnOnce(&Offer, Option<&Contract>) -> A,
    ) -> Result<A, Error> {
        let mut tx = self.pool().begin().await?;
        let (mut offer, tenant) = Self::offer_in(&mut tx, who, id).await?;
        let mut writes = Writes::default();
        let contract = change(&mut offer, &tenant, &mut writes)?;
        let now = self.now_micros();
        Self::put_offer(&mut tx, &offer, now).await?;
        if let Some(c) = &contract {
            sqlx::query(
                "INSERT INTO contracts (id, tenant, campaign_id, influencer_id, offer_id, state, body, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id_of(&c.name, "contracts"))
            .bind(&tenant)
            .bind(id_of(&c.campaign, "campaigns"))
            .bind(id_of(&c.influencer, "influencers"))
            .bind(id)
            .bind(i64::from(c.state))
            .bind(c.encode_to_vec())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let a = answer(&offer, contract.as_ref());
        self.finish(tx, writes, claim, &a).await?;
        Ok(a)
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
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db contracts.change_contract", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn change_contract<A: Message>(
        &self,
        who: &Who,
        id: &str,
        claim: &Claim,
        change: impl FnOnce(&mut Contract, &str, &mut [Deliverable], &mut Writes) -> Result<bool, Error>,
        answer: impl FnOnce(&Contract, &[Deliverable]) -> A,
    ) -> Result<A, Error> {
        let mut tx = self.pool().begin().await?;
        let (body, tenant) = locked_row(&mut tx, "contracts", who, id).await?;
        let mut contract: Contract = decode(body.as_slice(), "decode contract")?;
        // Deliverables are made when the contract activates; before that there are none to read.
        let mut deliverables = if contract.activate_time.is_some() {
            deliverables_in(&mut tx, id).await?
        } else {
            Vec::new()
        };
        let loaded = deliverables.clone();
        let mut writes = Writes::default();
        let changed = change(&mut contract, &tenant, &mut deliverables, &mut writes)?;
        if changed {
            sqlx::query("UPDATE contracts SET state = $1, body = $2, update_time = $3 WHERE id = $4")
                .bind(i64::from(contract.state))
                .bind(contract.encode_to_vec())
                .bind(self.now_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        // New deliverables (an activation) come in `writes`; of the loaded ones, only those the
        // move changed are written back.
        let mut all = deliverables;
        all.append(&mut writes.deliverables);
        writes.deliverables = all.iter().filter(|d| !loaded.contains(d)).cloned().collect();
        let a = answer(&contract, &all);
        self.finish(tx, writes, claim, &a).await?;
        Ok(a)
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

/// Locks the row `id` of `table` ("offers" or "contracts") in the transaction and reads its
/// body and tenant, in one statement: the no-op update takes the row lock on both engines
/// (SQLite has no FOR UPDATE). NOT_FOUND when the caller may not see it.
async fn locked_row(tx: &mut AnyConnection, table: &str, who: &Who, id: &str) -> Result<(Vec<u8>, String), Error> {
    let (column, value) = who.scope();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET update_time = update_time WHERE id = $1 AND {column} = $2 RETURNING body, tenant"
    )))
    .bind(id)
    .bind(value)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(Error::not_found(format!("{table}/{id}")));
    };
    Ok((row.try_get(0)?, row.try_get(1)?))
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

/// The number in a deliverable's name: "contracts/c/deliverables/3" → 3.
pub fn deliverable_number(name: &str) -> Option<i64> {
    name.rsplit('/').next().and_then(|n| n.parse().ok())
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
