//! Storage of campaigns, shortlists, rejections and exclusivities, on PostgreSQL or SQLite.
//! Campaigns and shortlists are kept whole as protobuf bytes. Every query is scoped by the
//! caller's tenant: another tenant's rows are simply not found. Changes other services care
//! about go to the outbox in the same transaction.

use std::collections::HashSet;

use chorus_kit::Error;
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_kit::events::outbox::Outbox;
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::Database;
use chorus_proto::matching::{Campaign, CampaignChanged, MemberDecision, Shortlist, ShortlistMemberDecided};
use prost::Message;
use sqlx::Row;

use crate::domain::shortlist;

/// Matching's topic: `chorus_kit::events::topic_of` any of its events.
pub const TOPIC: &str = "chorus.matching";

pub use chorus_kit::clock::timestamp;

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, Error> {
    M::decode(bytes).map_err(|e| Error::internal(what, e))
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
    clock: Clock,
}

impl Store {
    pub fn new(db: Database, outbox: Outbox, clock: Clock) -> Self {
        Store { db, outbox, clock }
    }

    /// Now, on the service's clock.
    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Stores a new campaign (already validated, name and times set); the answer of `claim`
    /// commits with it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.create_campaign", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn create_campaign(&self, c: &Campaign, claim: &Claim) -> Result<Campaign, Error> {
        let id = c.name.trim_start_matches("campaigns/");
        let mut tx = self.db.pool.begin().await?;
        let now = self.now_micros();
        sqlx::query(
            "INSERT INTO campaigns (id, tenant, status, body, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&c.tenant)
        .bind(i64::from(c.status))
        .bind(c.encode_to_vec())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.outbox.add(&mut tx, TOPIC, &changed(&self.clock, c)).await?;
        claim.record(&mut tx, c).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(c.clone())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.campaign", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn campaign(&self, tenant: &str, id: &str) -> Result<Option<Campaign>, Error> {
        let row = sqlx::query("SELECT body FROM campaigns WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode campaign"))
            .transpose()
    }

    /// Reads, changes and writes a campaign in one transaction (the row is locked first, so
    /// concurrent changes apply one after the other). NOT_FOUND for another tenant's.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.change_campaign", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn change_campaign(
        &self,
        tenant: &str,
        id: &str,
        claim: &Claim,
        change: impl FnOnce(&mut Campaign) -> Result<(), Error>,
    ) -> Result<Campaign, Error> {
        let mut tx = self.db.pool.begin().await?;
        let locked = sqlx::query("UPDATE campaigns SET update_time = update_time WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(Error::not_found(format!("campaigns/{id}")));
        }
        let row = sqlx::query("SELECT body FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut c: Campaign = decode(row.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode campaign")?;
        let before = c.clone();
        change(&mut c)?;
        if c == before {
            return Ok(c);
        }
        let now = self.now_micros();
        c.update_time = Some(timestamp(now));
        sqlx::query("UPDATE campaigns SET status = $1, body = $2, update_time = $3 WHERE id = $4")
            .bind(i64::from(c.status))
            .bind(c.encode_to_vec())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.outbox.add(&mut tx, TOPIC, &changed(&self.clock, &c)).await?;
        claim.record(&mut tx, &c).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(c)
    }

    /// The tenant's campaigns, newest first, after `before_id` when given.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.campaigns", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn campaigns(
        &self,
        tenant: &str,
        statuses: &[i32],
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Campaign>, Error> {
        let mut sql = String::from("SELECT body FROM campaigns WHERE tenant = $1 AND id < $2");
        if !statuses.is_empty() {
            let list: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
            sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(before_id.unwrap_or("~"))
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode campaign"))
            .collect()
    }

    /// Stores a new shortlist of the tenant's campaign; the answer of `claim` commits with it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.create_shortlist", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn create_shortlist(
        &self,
        tenant: &str,
        campaign_id: &str,
        s: &Shortlist,
        claim: &Claim,
    ) -> Result<(), Error> {
        let id = s.name.rsplit('/').next().unwrap_or_default();
        let now = self.now_micros();
        let mut tx = self.db.pool.begin().await?;
        let owned = sqlx::query("SELECT status FROM campaigns WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(campaign_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(owned) = owned else {
            return Err(Error::not_found(format!("campaigns/{campaign_id}")));
        };
        shortlist::ensure_open(owned.try_get::<i64, _>(0)? as i32)?;
        sqlx::query(
            "INSERT INTO shortlists (id, campaign_id, tenant, body, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(campaign_id)
        .bind(tenant)
        .bind(s.encode_to_vec())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for m in &s.members {
            sqlx::query("INSERT INTO shortlist_members (shortlist_id, influencer_id) VALUES ($1, $2)")
                .bind(id)
                .bind(m.influencer.trim_start_matches("influencers/"))
                .execute(&mut *tx)
                .await?;
        }
        claim.record(&mut tx, s).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.shortlist", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn shortlist(&self, tenant: &str, campaign_id: &str, id: &str) -> Result<Option<Shortlist>, Error> {
        let row = sqlx::query("SELECT body FROM shortlists WHERE tenant = $1 AND campaign_id = $2 AND id = $3")
            .bind(tenant)
            .bind(campaign_id)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode shortlist"))
            .transpose()
    }

    /// A campaign's shortlists, newest first, after `before_id` when given.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.shortlists", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn shortlists(
        &self,
        tenant: &str,
        campaign_id: &str,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Shortlist>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT body FROM shortlists WHERE tenant = $1 AND campaign_id = $2 AND id < $3 ORDER BY id DESC LIMIT {limit}"
        )))
        .bind(tenant)
        .bind(campaign_id)
        .bind(before_id.unwrap_or("~"))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| decode(r.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode shortlist"))
            .collect()
    }

    /// Records the brand's decisions on a shortlist's members: the shortlist, the campaign's
    /// rejections and one event per changed member, in one transaction. The rules are
    /// `domain::shortlist`'s, applied here under the lock.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.decide", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn decide(
        &self,
        tenant: &str,
        campaign_id: &str,
        id: &str,
        decisions: &[MemberDecision],
        claim: &Claim,
    ) -> Result<Shortlist, Error> {
        let mut tx = self.db.pool.begin().await?;
        let locked = sqlx::query(
            "UPDATE shortlists SET update_time = update_time WHERE tenant = $1 AND campaign_id = $2 AND id = $3",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            return Err(Error::not_found(format!("campaigns/{campaign_id}/shortlists/{id}")));
        }
        let status: i64 = sqlx::query("SELECT status FROM campaigns WHERE id = $1")
            .bind(campaign_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        shortlist::ensure_open(status as i32)?;
        let row = sqlx::query("SELECT body FROM shortlists WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut s: Shortlist = decode(row.try_get::<Vec<u8>, _>(0)?.as_slice(), "decode shortlist")?;
        let changes = shortlist::decide(&mut s.members, decisions)?;
        let mut events = Vec::with_capacity(changes.len());
        for change in changes {
            let m = &s.members[change.member];
            // This shortlist's rejection only: another shortlist's stands.
            let influencer_id = m.influencer.trim_start_matches("influencers/");
            sqlx::query("DELETE FROM rejections WHERE campaign_id = $1 AND shortlist_id = $2 AND influencer_id = $3")
                .bind(campaign_id)
                .bind(id)
                .bind(influencer_id)
                .execute(&mut *tx)
                .await?;
            if change.rejects() {
                sqlx::query("INSERT INTO rejections (campaign_id, shortlist_id, influencer_id) VALUES ($1, $2, $3)")
                    .bind(campaign_id)
                    .bind(id)
                    .bind(influencer_id)
                    .execute(&mut *tx)
                    .await?;
            }
            events.push(envelope(
                &self.clock,
                tenant,
                &ShortlistMemberDecided {
                    shortlist: s.name.clone(),
                    campaign: format!("campaigns/{campaign_id}"),
                    influencer: m.influencer.clone(),
                    decision: change.decision,
                    segment: m.segment.clone(),
                    candidate: m.candidate.clone(),
                },
            ));
        }
        if events.is_empty() {
            return Ok(s);
        }
        let now = self.now_micros();
        s.update_time = Some(timestamp(now));
        sqlx::query("UPDATE shortlists SET body = $1, update_time = $2 WHERE id = $3")
            .bind(s.encode_to_vec())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.outbox.add_many(&mut tx, TOPIC, &events).await?;
        claim.record(&mut tx, &s).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(s)
    }

    /// People the brand rejected for a campaign.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.rejected", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn rejected(&self, campaign_id: &str) -> Result<HashSet<u128>, Error> {
        let rows = sqlx::query("SELECT DISTINCT influencer_id FROM rejections WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = HashSet::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get(0)?;
            if let Some(n) = crate::domain::index::parse_id(&id) {
                out.insert(n);
            }
        }
        Ok(out)
    }

    /// Exclusive contracts in force, for the index at start-up.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.exclusivities", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn exclusivities(&self, now: i64) -> Result<Vec<(u128, String, i64)>, Error> {
        let rows = sqlx::query("SELECT influencer_id, category, end_time FROM exclusivities WHERE end_time > $1")
            .bind(now)
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get(0)?;
            if let Some(n) = crate::domain::index::parse_id(&id) {
                out.push((n, r.try_get(1)?, r.try_get(2)?));
            }
        }
        Ok(out)
    }

    /// Records an exclusive contract; `events::exclusivity_started` is the whole hook (this
    /// row and the index).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.add_exclusivity", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn add_exclusivity(&self, influencer_id: &str, category: &str, end_time: i64) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM exclusivities WHERE influencer_id = $1 AND category = $2")
            .bind(influencer_id)
            .bind(category)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO exclusivities (influencer_id, category, end_time) VALUES ($1, $2, $3)")
            .bind(influencer_id)
            .bind(category)
            .bind(end_time)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every influencer id this service keeps anything about: on shortlists, in rejections,
    /// under exclusivities.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.remembered_ids", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn remembered_ids(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT influencer_id FROM shortlist_members UNION SELECT influencer_id FROM rejections \
             UNION SELECT influencer_id FROM exclusivities",
        )
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Forgets a deleted influencer: their place on every shortlist, rejections and
    /// exclusivities.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db matching.forget", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn forget(&self, influencer_id: &str) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        let name = format!("influencers/{influencer_id}");
        let lists = sqlx::query(
            "SELECT s.id, s.body FROM shortlists s JOIN shortlist_members m ON m.shortlist_id = s.id \
             WHERE m.influencer_id = $1",
        )
        .bind(influencer_id)
        .fetch_all(&mut *tx)
        .await?;
        for row in lists {
            let id: String = row.try_get(0)?;
            let mut s: Shortlist = decode(row.try_get::<Vec<u8>, _>(1)?.as_slice(), "decode shortlist")?;
            s.members.retain(|m| m.influencer != name);
            sqlx::query("UPDATE shortlists SET body = $1 WHERE id = $2")
                .bind(s.encode_to_vec())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        for table in ["shortlist_members", "rejections", "exclusivities"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE influencer_id = $1"
            )))
            .bind(influencer_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn changed(clock: &Clock, c: &Campaign) -> chorus_proto::event::Envelope {
    envelope(
        clock,
        &c.tenant,
        &CampaignChanged {
            campaign: Some(c.clone()),
        },
    )
}
