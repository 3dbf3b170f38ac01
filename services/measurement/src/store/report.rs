//! The campaign report's facts: what other services' events say (segments, tiers and the plan
//! from matching; deliverables, delivery and disclosure from contracts; cost from payouts) kept
//! in small tables of measurement's own, each event applied once through the kit's inbox; the
//! newest post metrics per deliverable; and the read of everything a report needs, from those
//! tables and the click and conversion rollups, never from raw events.

use std::collections::BTreeMap;

use chorus_kit::Error;
use chorus_kit::clock::Micros;
use chorus_kit::events::outbox::Inbox;
use chorus_proto::measurement::PostMetricsSnapshot;
use sqlx::{AnyConnection, Row};

use super::owners::{self, Owned, contract_of};
use super::{Store, id_of, posts_expected, sum};

/// The inbox's name for the report's facts. The duty handling of contracts' events has its
/// own ("measurement"), so one event may feed both, each once.
pub const FACTS: &str = "measurement.report";

/// A shortlist decision of matching's.
#[derive(Debug, Clone)]
pub struct Decided {
    pub campaign_id: String,
    pub influencer_id: String,
    pub segment: String,
    pub tier: i32,
    pub accepted: bool,
    /// The candidate's expected cost: currency, minor units.
    pub planned_cost: Option<(String, i64)>,
}

/// What contracts said about one deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Approved { compliant: bool },
    Overdue,
}

/// A payout of payouts'.
#[derive(Debug, Clone)]
pub struct Paid {
    pub payout_id: String,
    pub campaign_id: String,
    pub influencer_id: String,
    /// 1 cash, 2 gift card, 3 product; 0 when only its reversal is known yet.
    pub kind: i64,
    pub currency: String,
    pub amount_minor: i64,
}

/// One influencer in a campaign, as the plan and contracts know them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub segment: String,
    pub tier: i32,
    pub planned: bool,
    pub planned_currency: String,
    pub planned_cost_minor: i64,
}

/// Per influencer: deliverables known, delivered on time, disclosure compliant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deliveries {
    pub deliverables: i64,
    pub on_time: i64,
    pub compliant: i64,
}

/// Per influencer: the newest post metrics of their deliverables, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Posts {
    pub reach: i64,
    pub impressions: i64,
    pub engagements: i64,
}

/// Per influencer, day and currency, from the conversion rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sales {
    pub conversions: i64,
    pub redemptions: i64,
    /// Revenue less refunds.
    pub net_minor: i64,
}

/// Everything a campaign's report is computed from.
#[derive(Debug, Clone, Default)]
pub struct CampaignFacts {
    /// By influencer id.
    pub members: BTreeMap<String, Member>,
    pub deliveries: BTreeMap<String, Deliveries>,
    pub posts: BTreeMap<String, Posts>,
    /// Human (not bot) clicks by influencer and day.
    pub clicks: BTreeMap<(String, i64), i64>,
    /// By influencer, day and currency.
    pub sales: BTreeMap<(String, i64, String), Sales>,
    /// Paid and not reversed, by influencer, kind and currency.
    pub cost: BTreeMap<(String, i64, String), i64>,
    /// The tenant has links, codes, settings or members for the campaign.
    pub known: bool,
}

impl Store {
    /// Matching's decision on a shortlist member: accepted members are the plan (segment, tier,
    /// expected cost); a rejection takes them out of it.
    pub async fn shortlist_decided(&self, event_id: &str, tenant: &str, d: &Decided) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, FACTS, event_id).await? {
            return Ok(());
        }
        owners::announce(&mut tx, tenant, Owned::Campaign, &d.campaign_id).await?;
        let (currency, minor) = d.planned_cost.clone().unwrap_or_default();
        sqlx::query(
            "INSERT INTO report_members (tenant, campaign_id, influencer_id, segment, tier, planned_currency, \
             planned_cost_minor, planned) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant, campaign_id, influencer_id) DO UPDATE SET segment = excluded.segment, \
             tier = excluded.tier, planned_currency = excluded.planned_currency, \
             planned_cost_minor = excluded.planned_cost_minor, planned = excluded.planned",
        )
        .bind(tenant)
        .bind(&d.campaign_id)
        .bind(&d.influencer_id)
        .bind(&d.segment)
        .bind(i64::from(d.tier))
        .bind(currency)
        .bind(minor)
        .bind(i64::from(d.accepted))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Matching's word that a campaign is `tenant`'s (CampaignChanged). Idempotent by itself.
    pub async fn campaign_announced(&self, tenant: &str, campaign_id: &str) -> Result<(), Error> {
        let mut conn = self.db.pool.acquire().await?;
        owners::announce(&mut conn, tenant, Owned::Campaign, campaign_id).await
    }

    /// An activated contract: its influencer joins the campaign (in the contract's segment,
    /// when matching did not say already) and each of its deliverables is expected.
    pub async fn contract_facts(
        &self,
        event_id: &str,
        tenant: &str,
        contract: &chorus_proto::contracts::Contract,
    ) -> Result<(), Error> {
        let contract_id = id_of(&contract.name, "contracts");
        let campaign_id = id_of(&contract.campaign, "campaigns");
        let influencer_id = id_of(&contract.influencer, "influencers");
        let count = posts_expected(contract);
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, FACTS, event_id).await? {
            return Ok(());
        }
        owners::announce(&mut tx, tenant, Owned::Campaign, campaign_id).await?;
        owners::announce(&mut tx, tenant, Owned::Contract, contract_id).await?;
        sqlx::query(
            "INSERT INTO report_members (tenant, campaign_id, influencer_id, segment, tier, planned_currency, \
             planned_cost_minor, planned) VALUES ($1, $2, $3, $4, 0, '', 0, 0) \
             ON CONFLICT (tenant, campaign_id, influencer_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(influencer_id)
        .bind(&contract.segment)
        .execute(&mut *tx)
        .await?;
        for n in 1..=count {
            insert_deliverable(
                &mut tx,
                tenant,
                &format!("contracts/{contract_id}/deliverables/{n}"),
                campaign_id,
                influencer_id,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An approval (with its submission's disclosure verdict) or an overdue notice. On time
    /// means approved with no overdue notice before it.
    pub async fn delivery(
        &self,
        event_id: &str,
        tenant: &str,
        deliverable: &str,
        campaign_id: &str,
        influencer_id: &str,
        what: Delivery,
    ) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, FACTS, event_id).await? {
            return Ok(());
        }
        owners::announce(&mut tx, tenant, Owned::Campaign, campaign_id).await?;
        let contract = contract_of(deliverable).unwrap_or_default();
        owners::announce(&mut tx, tenant, Owned::Contract, &contract).await?;
        insert_deliverable(&mut tx, tenant, deliverable, campaign_id, influencer_id, Some(what)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A payout paid (or, with `reversed`, taken back). Either may come first.
    pub async fn payout(&self, event_id: &str, tenant: &str, p: &Paid, reversed: bool) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, FACTS, event_id).await? {
            return Ok(());
        }
        owners::announce(&mut tx, tenant, Owned::Campaign, &p.campaign_id).await?;
        let on_conflict = if reversed {
            "reversed = 1"
        } else {
            "kind = excluded.kind, currency = excluded.currency, amount_minor = excluded.amount_minor"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_payouts (tenant, payout_id, campaign_id, influencer_id, kind, currency, amount_minor, \
             reversed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant, payout_id) DO UPDATE SET {on_conflict}"
        )))
        .bind(tenant)
        .bind(&p.payout_id)
        .bind(&p.campaign_id)
        .bind(&p.influencer_id)
        .bind(p.kind)
        .bind(&p.currency)
        .bind(p.amount_minor)
        .bind(i64::from(reversed))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everything the report of `campaign_id` is computed from: a handful of grouped reads of
    /// the rollups and fact tables.
    pub async fn campaign_facts(&self, tenant: &str, campaign_id: &str) -> Result<CampaignFacts, Error> {
        let pool = &self.db.pool;
        let mut f = CampaignFacts::default();
        let rows = sqlx::query(
            "SELECT influencer_id, segment, tier, planned, planned_currency, planned_cost_minor FROM report_members \
             WHERE tenant = $1 AND campaign_id = $2",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            f.members.insert(
                r.try_get(0)?,
                Member {
                    segment: r.try_get(1)?,
                    tier: i32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                    planned: r.try_get::<i64, _>(3)? != 0,
                    planned_currency: r.try_get(4)?,
                    planned_cost_minor: r.try_get(5)?,
                },
            );
        }
        let rows = sqlx::query(
            "SELECT influencer_id, CAST(COUNT(*) AS BIGINT), \
             CAST(SUM(CASE WHEN approved = 1 AND overdue = 0 THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN approved = 1 AND compliant = 1 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM report_deliverables WHERE tenant = $1 AND campaign_id = $2 GROUP BY influencer_id",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            f.deliveries.insert(
                r.try_get(0)?,
                Deliveries {
                    deliverables: sum(r, 1)?,
                    on_time: sum(r, 2)?,
                    compliant: sum(r, 3)?,
                },
            );
        }
        let rows = sqlx::query(
            "SELECT d.influencer_id, CAST(SUM(CASE WHEN p.reach > 0 THEN p.reach ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN p.impressions > 0 THEN p.impressions ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN p.engagements > 0 THEN p.engagements ELSE 0 END) AS BIGINT) \
             FROM post_rollups p JOIN report_deliverables d ON d.tenant = p.tenant AND d.deliverable = p.deliverable \
             WHERE d.tenant = $1 AND d.campaign_id = $2 GROUP BY d.influencer_id",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            f.posts.insert(
                r.try_get(0)?,
                Posts {
                    reach: sum(r, 1)?,
                    impressions: sum(r, 2)?,
                    engagements: sum(r, 3)?,
                },
            );
        }
        let rows =
            sqlx::query("SELECT influencer_id, day, clicks FROM click_rollups WHERE tenant = $1 AND campaign_id = $2")
                .bind(tenant)
                .bind(campaign_id)
                .fetch_all(pool)
                .await?;
        for r in &rows {
            *f.clicks.entry((r.try_get(0)?, r.try_get(1)?)).or_default() += r.try_get::<i64, _>(2)?;
        }
        let rows = sqlx::query(
            "SELECT influencer_id, day, currency, conversions, redemptions, revenue_minor - refunded_minor \
             FROM conversion_rollups WHERE tenant = $1 AND campaign_id = $2",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            let s = f
                .sales
                .entry((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
                .or_default();
            s.conversions += r.try_get::<i64, _>(3)?;
            s.redemptions += r.try_get::<i64, _>(4)?;
            s.net_minor += r.try_get::<i64, _>(5)?;
        }
        let rows = sqlx::query(
            "SELECT influencer_id, kind, currency, CAST(SUM(amount_minor) AS BIGINT) FROM report_payouts \
             WHERE tenant = $1 AND campaign_id = $2 AND reversed = 0 AND kind > 0 \
             GROUP BY influencer_id, kind, currency",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            f.cost.insert((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?), sum(r, 3)?);
        }
        f.known = !f.members.is_empty() || !f.clicks.is_empty() || !f.sales.is_empty() || !f.cost.is_empty() || {
            let r = sqlx::query(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 AS x FROM links WHERE tenant = $1 AND campaign_id = $2 \
                 UNION ALL SELECT 1 FROM promo_codes WHERE tenant = $1 AND campaign_id = $2 \
                 UNION ALL SELECT 1 FROM campaign_settings WHERE tenant = $1 AND campaign_id = $2) AS known",
            )
            .bind(tenant)
            .bind(campaign_id)
            .fetch_one(pool)
            .await?;
            sum(&r, 0)? > 0
        };
        Ok(f)
    }
}

/// Keeps the newest snapshot's figures of a deliverable (−1: not observed in it).
pub(super) async fn bump_post(
    conn: &mut AnyConnection,
    tenant: &str,
    s: &PostMetricsSnapshot,
    observed: Micros,
) -> Result<(), Error> {
    let parts = [s.likes, s.comments, s.saves, s.shares];
    let engagements = if parts.iter().any(Option::is_some) {
        parts.iter().map(|p| p.unwrap_or(0).max(0)).sum()
    } else {
        -1
    };
    sqlx::query(
        "INSERT INTO post_rollups (tenant, deliverable, observe_time, reach, impressions, engagements) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, deliverable) DO UPDATE SET \
         observe_time = excluded.observe_time, \
         reach = CASE WHEN excluded.reach >= 0 THEN excluded.reach ELSE post_rollups.reach END, \
         impressions = CASE WHEN excluded.impressions >= 0 THEN excluded.impressions ELSE post_rollups.impressions END, \
         engagements = CASE WHEN excluded.engagements >= 0 THEN excluded.engagements ELSE post_rollups.engagements END \
         WHERE excluded.observe_time >= post_rollups.observe_time",
    )
    .bind(tenant)
    .bind(&s.deliverable)
    .bind(observed)
    .bind(s.reach.unwrap_or(-1))
    .bind(s.impressions.unwrap_or(-1))
    .bind(engagements)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_deliverable(
    conn: &mut AnyConnection,
    tenant: &str,
    deliverable: &str,
    campaign_id: &str,
    influencer_id: &str,
    what: Option<Delivery>,
) -> Result<(), Error> {
    let (approved, overdue, compliant, on_conflict) = match what {
        None => (0, 0, 0, "NOTHING"),
        Some(Delivery::Approved { compliant }) => (
            1,
            0,
            i64::from(compliant),
            "UPDATE SET approved = 1, compliant = excluded.compliant",
        ),
        // An overdue notice after the approval (a late redelivery) changes nothing.
        Some(Delivery::Overdue) => (
            0,
            1,
            0,
            "UPDATE SET overdue = CASE WHEN report_deliverables.approved = 1 THEN report_deliverables.overdue ELSE 1 END",
        ),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO report_deliverables (tenant, deliverable, campaign_id, influencer_id, approved, overdue, compliant) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, deliverable) DO {on_conflict}"
    )))
    .bind(tenant)
    .bind(deliverable)
    .bind(campaign_id)
    .bind(influencer_id)
    .bind(approved)
    .bind(overdue)
    .bind(compliant)
    .execute(conn)
    .await?;
    Ok(())
}
