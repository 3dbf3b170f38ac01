//! Measurement's storage. Links, promo codes, campaign settings, post metrics and duties are
//! plain rows; clicks, conversions and refunds are append-only events (partitioned by day on
//! PostgreSQL, see migrations/postgres) whose "count once" keys live in `dedup_keys`, written
//! in the same transaction. Every write that adds events also bumps the per influencer and day
//! rollups, so reports never scan raw events. Inserts of many rows are one multi-row statement
//! per chunk. Events measurement publishes (a suspected promo-code leak) go to the kit's outbox
//! in the transaction of the change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_kit::clock::{Clock, Micros, timestamp};
use chorus_kit::events::envelope;
use chorus_kit::events::outbox::{Inbox, Outbox};
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::{Backend, Database, placeholders};
use chorus_kit::timers::Timers;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::measurement::*;
use chorus_proto::types::Money;
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::attribution::{ClickHit, CodeHit, Decision};
use crate::domain::days::{DAY_MICROS, day_of};
use crate::domain::destination::Utm;
use crate::domain::leaks::{self, Evidence};

pub mod owners;
pub mod ready;
pub mod report;

use owners::{Owned, claim, contract_of};

/// Measurement's topic.
pub const TOPIC: &str = "chorus.measurement";
/// Measurement's own timers' topic, which only it reads.
pub const TIMER_TOPIC: &str = "chorus.measurement.timers";
/// Rows per multi-row statement: 12 columns × 500 stays far under both engines' limits on
/// bound parameters.
const CHUNK: usize = 500;
const HOUR_MICROS: Micros = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
    clock: Clock,
    timers: Timers,
    /// Day partitions known to exist (PostgreSQL), by table.
    partitions: Arc<Mutex<HashSet<(&'static str, i64)>>>,
    /// The attribution window when a campaign sets none.
    default_window_hours: i64,
    /// Redirect targets by short code, each kept [`TARGET_TTL`] (see `target`).
    targets: Arc<Mutex<HashMap<String, (Instant, Target)>>>,
}

/// How long a redirect target is kept in memory: a campaign's new destination reaches the other
/// replicas' redirects within this (the replica that took the change forgets at once).
pub const TARGET_TTL: Duration = Duration::from_secs(5);
/// Targets kept at most; past this the cache starts again empty.
const TARGETS_KEPT: usize = 100_000;

/// A campaign's measurement settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub destination_url: String,
    pub window_hours: i64,
    pub audience_country: String,
    pub update_time: Micros,
}

/// A link to make.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub campaign_id: String,
    pub influencer_id: String,
    pub deliverable: String,
    pub segment: String,
    /// '' follows the campaign's destination.
    pub destination_url: String,
    pub utm: Utm,
}

/// What a redirect needs to know about a code.
#[derive(Debug, Clone)]
pub struct Target {
    pub link_id: String,
    pub tenant: String,
    pub campaign_id: String,
    pub influencer_id: String,
    /// The link's own destination, else the campaign's; `None` when neither is set.
    pub destination: Option<String>,
    pub utm: Utm,
}

/// A click as the redirect saw it (the IP already hashed).
#[derive(Debug, Clone)]
pub struct NewClick {
    pub id: String,
    pub tenant: String,
    pub link_id: String,
    pub campaign_id: String,
    pub influencer_id: String,
    pub time: Micros,
    pub country: String,
    pub device: DeviceClass,
    pub referrer: String,
    pub bot: bool,
    pub ip_hash: String,
}

/// An order to record, already attributed.
#[derive(Debug, Clone)]
pub struct NewConversion {
    pub order_id: String,
    pub source: ConversionSource,
    pub shop_domain: String,
    pub currency: String,
    pub revenue_minor: i64,
    pub order_time: Micros,
    /// ISO 3166-1 alpha-2, upper case; '' when unknown.
    pub country: String,
    pub decision: Decision,
}

/// A conversion rollup's row: campaign, influencer, day, currency.
type RollupKey = (String, String, i64, String);

/// Filters of the lists.
#[derive(Debug, Clone, Default, Hash)]
pub struct Filter {
    pub campaign_id: Option<String>,
    pub influencer_id: Option<String>,
}

/// The posts an activated contract calls for: each deliverable's count, taken as 0 to 20 (a
/// link is made per post and the report expects each), summed.
pub fn posts_expected(contract: &chorus_proto::contracts::Contract) -> i32 {
    contract
        .terms
        .as_ref()
        .map(|t| t.deliverables.iter().map(|d| d.count.clamp(0, 20)).sum())
        .unwrap_or(0)
}

/// The id in `name` after `collection/`, or the name itself.
pub fn id_of<'a>(name: &'a str, collection: &str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(name)
}

/// A UUIDv7 made at `at` (unix micros): ids of events carry their time, so the day partition
/// of an event is known from its id alone.
pub fn id_at(at: Micros) -> String {
    let secs = u64::try_from(at.div_euclid(1_000_000)).unwrap_or(0);
    let nanos = u32::try_from(at.rem_euclid(1_000_000) * 1_000).unwrap_or(0);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
        .hyphenated()
        .to_string()
}

/// The time an id of [`id_at`] was made at, to the millisecond.
pub fn time_of_id(id: &str) -> Option<Micros> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    let (secs, nanos) = u.get_timestamp()?.to_unix();
    Some(i64::try_from(secs).ok()? * 1_000_000 + i64::from(nanos / 1_000))
}

pub fn precondition(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::FailedPrecondition, message)
}

impl Store {
    pub fn new(db: Database, outbox: Outbox, clock: Clock, timers: Timers, default_window_hours: i64) -> Self {
        Store {
            db,
            outbox,
            clock,
            timers,
            partitions: Arc::default(),
            default_window_hours,
            targets: Arc::default(),
        }
    }

    /// The attribution window, in hours, of a campaign that sets none.
    pub fn default_window_hours(&self) -> i64 {
        self.default_window_hours
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn now(&self) -> Micros {
        self.clock.now_micros()
    }

    /// Makes sure `table` has a partition for each of `days` (PostgreSQL; nothing on SQLite).
    /// Outside any transaction: two writers racing to make one partition is harmless.
    async fn ensure_partitions(&self, table: &'static str, days: impl IntoIterator<Item = i64>) -> Result<(), Error> {
        if self.db.backend != Backend::Postgres {
            return Ok(());
        }
        let missing: Vec<i64> = {
            let known = self.partitions.lock().map_err(|_| poisoned())?;
            let mut d: Vec<i64> = days.into_iter().filter(|d| !known.contains(&(table, *d))).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        for day in missing {
            let name = format!("{table}_d{}", day.max(0));
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM ({day}) TO ({})",
                day + 1
            );
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.db.pool).await {
                // Another writer made it between our check and our CREATE.
                let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                    .bind(&name)
                    .fetch_one(&self.db.pool)
                    .await?;
                if exists.is_none() {
                    return Err(e.into());
                }
            }
            self.partitions.lock().map_err(|_| poisoned())?.insert((table, day));
        }
        Ok(())
    }

    // ---- campaign settings ----

    pub async fn settings(&self, tenant: &str, campaign_id: &str) -> Result<Option<Settings>, Error> {
        let row = sqlx::query(
            "SELECT destination_url, attribution_window_hours, audience_country, update_time \
             FROM campaign_settings WHERE tenant = $1 AND campaign_id = $2",
        )
        .bind(tenant)
        .bind(campaign_id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| {
            Ok(Settings {
                destination_url: r.try_get(0)?,
                window_hours: r.try_get(1)?,
                audience_country: r.try_get(2)?,
                update_time: r.try_get(3)?,
            })
        })
        .transpose()
    }

    pub async fn put_settings(&self, tenant: &str, campaign_id: &str, s: &Settings) -> Result<Settings, Error> {
        let now = self.now();
        let mut tx = self.db.pool.begin().await?;
        claim(&mut tx, tenant, &[(Owned::Campaign, campaign_id)]).await?;
        sqlx::query(
            "INSERT INTO campaign_settings (tenant, campaign_id, destination_url, attribution_window_hours, \
             audience_country, update_time) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, campaign_id) DO UPDATE \
             SET destination_url = excluded.destination_url, attribution_window_hours = excluded.attribution_window_hours, \
             audience_country = excluded.audience_country, update_time = excluded.update_time",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(&s.destination_url)
        .bind(s.window_hours)
        .bind(&s.audience_country)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // The campaign's links may go elsewhere now.
        self.targets.lock().map_err(|_| poisoned())?.clear();
        Ok(Settings {
            update_time: now,
            ..s.clone()
        })
    }

    /// NOT_FOUND naming `id` when it is another tenant's (store/owners.rs), for reads.
    pub async fn check_owner(&self, tenant: &str, owned: Owned, id: &str) -> Result<(), Error> {
        let mut conn = self.db.pool.acquire().await?;
        owners::check(&mut conn, tenant, owned, id).await
    }

    // ---- links ----

    /// Makes a link with a fresh short code; ALREADY_EXISTS when the influencer has one for
    /// that deliverable.
    /// The answer is recorded under the call's request id (`claim`) in the same transaction.
    pub async fn create_link(&self, tenant: &str, l: &NewLink, claim_: &Claim) -> Result<Link, Error> {
        let mut tx = self.db.pool.begin().await?;
        let contract = contract_of(&l.deliverable).unwrap_or_default();
        claim(
            &mut tx,
            tenant,
            &[(Owned::Campaign, &l.campaign_id), (Owned::Contract, &contract)],
        )
        .await?;
        match self.insert_link(&mut tx, tenant, l).await? {
            Some(link) => {
                claim_
                    .record(
                        &mut tx,
                        &CreateLinkResponse {
                            link: Some(link.clone()),
                        },
                    )
                    .await?;
                tx.commit().await?;
                Ok(link)
            }
            None => Err(Error::already_exists(format!(
                "influencers/{} already has a link for {}",
                l.influencer_id, l.deliverable
            ))),
        }
    }

    /// Inserts a link; `None` when one exists for its deliverable. A short code that clashes is
    /// drawn again.
    async fn insert_link(&self, conn: &mut AnyConnection, tenant: &str, l: &NewLink) -> Result<Option<Link>, Error> {
        let now = self.now();
        for _ in 0..5 {
            let id = uuid::Uuid::now_v7().hyphenated().to_string();
            let code = crate::domain::codes::new_short()?;
            let done = sqlx::query(
                "INSERT INTO links (id, tenant, code, campaign_id, influencer_id, deliverable, segment, destination_url, \
                 utm_source, utm_medium, utm_campaign, utm_content, clicks, create_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(tenant)
            .bind(&code)
            .bind(&l.campaign_id)
            .bind(&l.influencer_id)
            .bind(&l.deliverable)
            .bind(&l.segment)
            .bind(&l.destination_url)
            .bind(&l.utm.source)
            .bind(&l.utm.medium)
            .bind(&l.utm.campaign)
            .bind(&l.utm.content)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Some(link_of(&id, &code, l, 0, now)));
            }
            if !l.deliverable.is_empty() {
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM links WHERE tenant = $1 AND influencer_id = $2 AND deliverable = $3",
                )
                .bind(tenant)
                .bind(&l.influencer_id)
                .bind(&l.deliverable)
                .fetch_optional(&mut *conn)
                .await?;
                if taken.is_some() {
                    return Ok(None);
                }
            }
        }
        Err(Error::new(
            ErrorCode::Aborted,
            "no free short code after five draws; retry",
        ))
    }

    pub async fn link(&self, tenant: &str, id: &str) -> Result<Option<Link>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE tenant = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(link_row).transpose()
    }

    /// Links newest first, after the cursor (an id).
    pub async fn links(&self, tenant: &str, f: &Filter, after: Option<&str>, limit: usize) -> Result<Vec<Link>, Error> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE tenant = $1 AND ($2 = '' OR campaign_id = $2) \
             AND ($3 = '' OR influencer_id = $3) AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(f.campaign_id.clone().unwrap_or_default())
            .bind(f.influencer_id.clone().unwrap_or_default())
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(link_row).collect()
    }

    /// The link behind a short code, with its destination resolved, for the redirect. A link
    /// with a destination is kept in memory for [`TARGET_TTL`]: the redirect then costs no
    /// database round trip (links never change; a campaign's destination may, and
    /// `put_settings` forgets what this replica kept). Unknown codes and links without a
    /// destination are read each time, so a new link or destination works at once.
    pub async fn target(&self, code: &str) -> Result<Option<Target>, Error> {
        if let Some((at, t)) = self.targets.lock().map_err(|_| poisoned())?.get(code)
            && at.elapsed() < TARGET_TTL
        {
            return Ok(Some(t.clone()));
        }
        let found = self.read_target(code).await?;
        if let Some(t) = found.as_ref().filter(|t| t.destination.is_some()) {
            let mut kept = self.targets.lock().map_err(|_| poisoned())?;
            if kept.len() >= TARGETS_KEPT {
                kept.clear();
            }
            kept.insert(code.to_owned(), (Instant::now(), t.clone()));
        }
        Ok(found)
    }

    async fn read_target(&self, code: &str) -> Result<Option<Target>, Error> {
        let row = sqlx::query(
            "SELECT l.id, l.tenant, l.campaign_id, l.influencer_id, l.destination_url, \
             COALESCE(s.destination_url, ''), l.utm_source, l.utm_medium, l.utm_campaign, l.utm_content \
             FROM links l LEFT JOIN campaign_settings s ON s.tenant = l.tenant AND s.campaign_id = l.campaign_id \
             WHERE l.code = $1",
        )
        .bind(code)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let own: String = r.try_get(4)?;
        let campaign: String = r.try_get(5)?;
        let destination = [own, campaign].into_iter().find(|d| !d.is_empty());
        Ok(Some(Target {
            link_id: r.try_get(0)?,
            tenant: r.try_get(1)?,
            campaign_id: r.try_get(2)?,
            influencer_id: r.try_get(3)?,
            destination,
            utm: Utm {
                source: r.try_get(6)?,
                medium: r.try_get(7)?,
                campaign: r.try_get(8)?,
                content: r.try_get(9)?,
            },
        }))
    }

    // ---- clicks ----

    /// Writes a batch of clicks: the events, each link's count and the per influencer and day
    /// rollups, in one transaction.
    pub async fn insert_clicks(&self, clicks: &[NewClick]) -> Result<(), Error> {
        if clicks.is_empty() {
            return Ok(());
        }
        self.ensure_partitions("clicks", clicks.iter().map(|c| i64::from(day_of(c.time))))
            .await?;
        let mut tx = self.db.pool.begin().await?;
        for chunk in clicks.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO clicks (day, id, tenant, link_id, campaign_id, influencer_id, click_time, country, device, \
                 referrer, bot, ip_hash) VALUES {} ON CONFLICT DO NOTHING",
                placeholders(chunk.len(), 12, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q
                    .bind(i64::from(day_of(c.time)))
                    .bind(&c.id)
                    .bind(&c.tenant)
                    .bind(&c.link_id)
                    .bind(&c.campaign_id)
                    .bind(&c.influencer_id)
                    .bind(c.time)
                    .bind(&c.country)
                    .bind(c.device as i64)
                    .bind(&c.referrer)
                    .bind(i64::from(c.bot))
                    .bind(&c.ip_hash);
            }
            q.execute(&mut *tx).await?;
        }
        let mut per_link: BTreeMap<&str, i64> = BTreeMap::new();
        let mut rollup: BTreeMap<(&str, &str, &str, i64), (i64, i64)> = BTreeMap::new();
        for c in clicks {
            let r = rollup
                .entry((&c.tenant, &c.campaign_id, &c.influencer_id, i64::from(day_of(c.time))))
                .or_default();
            if c.bot {
                r.1 += 1;
            } else {
                r.0 += 1;
                *per_link.entry(&c.link_id).or_default() += 1;
            }
        }
        for (link, n) in per_link {
            sqlx::query("UPDATE links SET clicks = clicks + $1 WHERE id = $2")
                .bind(n)
                .bind(link)
                .execute(&mut *tx)
                .await?;
        }
        let rows: Vec<_> = rollup.into_iter().collect();
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO click_rollups (tenant, campaign_id, influencer_id, day, clicks, bot_clicks) VALUES {} \
                 ON CONFLICT (tenant, campaign_id, influencer_id, day) DO UPDATE SET \
                 clicks = click_rollups.clicks + excluded.clicks, bot_clicks = click_rollups.bot_clicks + excluded.bot_clicks",
                placeholders(chunk.len(), 6, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((tenant, campaign, influencer, day), (n, bots)) in chunk {
                q = q
                    .bind(*tenant)
                    .bind(*campaign)
                    .bind(*influencer)
                    .bind(*day)
                    .bind(*n)
                    .bind(*bots);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A link's clicks, newest first, after the cursor (an id).
    pub async fn clicks(
        &self,
        tenant: &str,
        link_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Click>, Error> {
        let rows = sqlx::query(
            "SELECT id, click_time, country, device, referrer, bot, ip_hash FROM clicks \
             WHERE tenant = $1 AND link_id = $2 AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(link_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Click {
                    id: r.try_get(0)?,
                    link: format!("links/{link_id}"),
                    click_time: Some(timestamp(r.try_get(1)?)),
                    country: r.try_get(2)?,
                    device: r.try_get::<i64, _>(3)? as i32,
                    referrer: r.try_get(4)?,
                    bot: r.try_get::<i64, _>(5)? != 0,
                    ip_hash: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The tenant's clicks among `ids` (their day partition read from each id), with their
    /// link's segment and campaign's window, for attribution.
    pub async fn click_hits(&self, tenant: &str, ids: &[String]) -> Result<Vec<ClickHit>, Error> {
        let mut out = Vec::new();
        for id in ids {
            let Some(at) = time_of_id(id) else { continue };
            // Ids are made to the micro; UUIDv7 keeps the millisecond, so look at that day and,
            // within a millisecond of midnight, the next.
            let day = i64::from(day_of(at));
            let row = sqlx::query(
                "SELECT c.id, c.link_id, c.campaign_id, c.influencer_id, l.segment, c.click_time, c.bot, \
                 COALESCE(s.attribution_window_hours, 0) \
                 FROM clicks c JOIN links l ON l.id = c.link_id \
                 LEFT JOIN campaign_settings s ON s.tenant = c.tenant AND s.campaign_id = c.campaign_id \
                 WHERE c.day IN ($1, $2) AND c.id = $3 AND c.tenant = $4",
            )
            .bind(day)
            .bind(day + 1)
            .bind(id)
            .bind(tenant)
            .fetch_optional(&self.db.pool)
            .await?;
            if let Some(r) = row {
                let hours: i64 = r.try_get(7)?;
                out.push(ClickHit {
                    click_id: r.try_get(0)?,
                    link_id: r.try_get(1)?,
                    campaign_id: r.try_get(2)?,
                    influencer_id: r.try_get(3)?,
                    segment: r.try_get(4)?,
                    click_time: r.try_get(5)?,
                    bot: r.try_get::<i64, _>(6)? != 0,
                    window: HOUR_MICROS * if hours > 0 { hours } else { self.default_window_hours },
                });
            }
        }
        Ok(out)
    }

    // ---- promo codes ----

    /// Inserts promo codes; ALREADY_EXISTS naming the code when one is taken.
    /// The answer is recorded under the call's request id (`claim_`) in the same transaction.
    pub async fn create_promo_codes(
        &self,
        tenant: &str,
        codes: &[PromoCode],
        segment: &str,
        claim_: &Claim,
    ) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        for p in codes {
            claim(
                &mut tx,
                tenant,
                &[
                    (Owned::Campaign, id_of(&p.campaign, "campaigns")),
                    (Owned::Contract, id_of(&p.contract, "contracts")),
                ],
            )
            .await?;
        }
        for p in codes {
            if !insert_promo(&mut tx, tenant, p, segment).await? {
                return Err(Error::already_exists(format!("promo code {} is taken", p.code)));
            }
        }
        claim_
            .record(
                &mut tx,
                &CreatePromoCodesResponse {
                    promo_codes: codes.to_vec(),
                },
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn promo_codes(
        &self,
        tenant: &str,
        f: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PromoCode>, Error> {
        let rows = sqlx::query(
            "SELECT id, code, campaign_id, influencer_id, contract_id, single_use, redemptions, create_time FROM promo_codes \
             WHERE tenant = $1 AND ($2 = '' OR campaign_id = $2) AND ($3 = '' OR influencer_id = $3) \
             AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5",
        )
        .bind(tenant)
        .bind(f.campaign_id.clone().unwrap_or_default())
        .bind(f.influencer_id.clone().unwrap_or_default())
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(promo_row).collect()
    }

    /// The first of `codes` (in the order's order) that is one of the tenant's promo codes.
    pub async fn code_hit(&self, tenant: &str, codes: &[String]) -> Result<Option<CodeHit>, Error> {
        for code in codes {
            let code = crate::domain::codes::normalize(code);
            let row = sqlx::query(
                "SELECT id, code, campaign_id, influencer_id, segment FROM promo_codes WHERE tenant = $1 AND code = $2",
            )
            .bind(tenant)
            .bind(&code)
            .fetch_optional(&self.db.pool)
            .await?;
            if let Some(r) = row {
                return Ok(Some(CodeHit {
                    promo_id: r.try_get(0)?,
                    code: r.try_get(1)?,
                    campaign_id: r.try_get(2)?,
                    influencer_id: r.try_get(3)?,
                    segment: r.try_get(4)?,
                }));
            }
        }
        Ok(None)
    }

    // ---- contracts ----

    /// A contract became active: a link for each of its deliverables (to the campaign's
    /// destination) and a promo code for the influencer, once per event.
    pub async fn contract_activated(
        &self,
        consumer: &str,
        event_id: &str,
        tenant: &str,
        contract: &chorus_proto::contracts::Contract,
    ) -> Result<(), Error> {
        let contract_id = id_of(&contract.name, "contracts");
        let campaign_id = id_of(&contract.campaign, "campaigns");
        let influencer_id = id_of(&contract.influencer, "influencers");
        let count = posts_expected(contract);
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        for n in 1..=count {
            let l = NewLink {
                campaign_id: campaign_id.to_owned(),
                influencer_id: influencer_id.to_owned(),
                deliverable: format!("contracts/{contract_id}/deliverables/{n}"),
                segment: contract.segment.clone(),
                destination_url: String::new(),
                utm: default_utm(campaign_id, influencer_id, &Utm::default()),
            };
            self.insert_link(&mut tx, tenant, &l).await?;
        }
        // A random code the tenant already has is drawn again, as links' codes are.
        let mut made = false;
        for _ in 0..5 {
            let code = PromoCode {
                name: format!("promoCodes/{}", uuid::Uuid::now_v7().hyphenated()),
                code: crate::domain::codes::new_promo("", 8)?,
                campaign: contract.campaign.clone(),
                influencer: contract.influencer.clone(),
                contract: contract.name.clone(),
                single_use: false,
                redemptions: 0,
                create_time: Some(self.clock.now()),
            };
            if insert_promo(&mut tx, tenant, &code, &contract.segment).await? {
                made = true;
                break;
            }
        }
        if !made {
            return Err(Error::new(
                ErrorCode::Aborted,
                format!("no free promo code for {} after five draws; retry", contract.name),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- conversions ----

    /// Records attributed orders, each once per (tenant, order id), with `keys` (kind, key:
    /// a webhook's ids) that make the whole call count once: when one of them was seen, nothing
    /// is written and `None` is answered. Otherwise each order's conversion and whether it was
    /// a duplicate.
    pub async fn record_conversions(
        &self,
        tenant: &str,
        orders: &[NewConversion],
        keys: &[(&str, String)],
    ) -> Result<Option<Vec<(Conversion, bool)>>, Error> {
        let now = self.now();
        let day = i64::from(day_of(now));
        self.ensure_partitions("conversions", [day]).await?;
        let mut tx = self.db.pool.begin().await?;
        for (kind, key) in keys {
            let fresh = sqlx::query(
                "INSERT INTO dedup_keys (tenant, kind, key, target, record_time) VALUES ($1, $2, $3, '', $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(*kind)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if fresh.rows_affected() == 0 {
                return Ok(None);
            }
        }
        // Each order id once: the first of a request wins, a repeat within it is a duplicate.
        let mut out: Vec<Option<(Conversion, bool)>> = vec![None; orders.len()];
        let mut fresh: Vec<(usize, String)> = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for chunk_start in (0..orders.len()).step_by(CHUNK) {
            let chunk: Vec<usize> = (chunk_start..orders.len().min(chunk_start + CHUNK))
                .filter(|i| seen.insert(&orders[*i].order_id, *i).is_none())
                .collect();
            if chunk.is_empty() {
                continue;
            }
            let ids: Vec<String> = chunk.iter().map(|_| id_at(now)).collect();
            let sql = format!(
                "INSERT INTO dedup_keys (tenant, kind, key, target, record_time) VALUES {} ON CONFLICT DO NOTHING RETURNING key",
                placeholders(chunk.len(), 5, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, id) in chunk.iter().zip(&ids) {
                q = q
                    .bind(tenant)
                    .bind("order")
                    .bind(&orders[*i].order_id)
                    .bind(id.clone())
                    .bind(now);
            }
            let inserted: HashSet<String> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
            for (i, id) in chunk.into_iter().zip(ids) {
                if inserted.contains(&orders[i].order_id) {
                    fresh.push((i, id));
                }
            }
        }
        let rows: Vec<(usize, &String)> = fresh.iter().map(|(i, id)| (*i, id)).collect();
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO conversions (day, id, tenant, order_id, source, shop_domain, campaign_id, influencer_id, segment, \
                 method, reason, promo_code_id, click_id, link_id, currency, revenue_minor, order_time, record_time, country) \
                 VALUES {}",
                placeholders(chunk.len(), 19, 1)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, id) in chunk {
                let o = &orders[*i];
                let d = &o.decision;
                q = q
                    .bind(day)
                    .bind((*id).clone())
                    .bind(tenant)
                    .bind(&o.order_id)
                    .bind(o.source as i64)
                    .bind(&o.shop_domain)
                    .bind(&d.campaign_id)
                    .bind(&d.influencer_id)
                    .bind(&d.segment)
                    .bind(d.method as i64)
                    .bind(&d.reason)
                    .bind(&d.promo_id)
                    .bind(&d.click_id)
                    .bind(&d.link_id)
                    .bind(&o.currency)
                    .bind(o.revenue_minor)
                    .bind(o.order_time)
                    .bind(now)
                    .bind(&o.country);
            }
            q.execute(&mut *tx).await?;
        }
        // Rollups and redemptions of what was new.
        let mut rollup: BTreeMap<RollupKey, (i64, i64, i64)> = BTreeMap::new();
        let mut redeemed: BTreeMap<&str, i64> = BTreeMap::new();
        let mut by_country: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for (i, _) in &fresh {
            let o = &orders[*i];
            let r = rollup
                .entry((
                    o.decision.campaign_id.clone(),
                    o.decision.influencer_id.clone(),
                    i64::from(day_of(o.order_time)),
                    o.currency.clone(),
                ))
                .or_default();
            r.0 += 1;
            r.2 += o.revenue_minor;
            if !o.decision.promo_id.is_empty() {
                r.1 += 1;
                *redeemed.entry(&o.decision.promo_id).or_default() += 1;
                *by_country
                    .entry((o.decision.promo_id.as_str(), o.country.as_str()))
                    .or_default() += 1;
            }
        }
        for ((promo, country), n) in by_country {
            sqlx::query(
                "INSERT INTO promo_code_countries (tenant, promo_code_id, country, redemptions) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, promo_code_id, country) DO UPDATE SET \
                 redemptions = promo_code_countries.redemptions + excluded.redemptions",
            )
            .bind(tenant)
            .bind(promo)
            .bind(country)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        for ((campaign, influencer, d, currency), (n, redemptions, revenue)) in &rollup {
            bump_conversions(
                &mut tx,
                tenant,
                campaign,
                influencer,
                *d,
                currency,
                (*n, *redemptions, *revenue, 0),
            )
            .await?;
        }
        let mut leaked = Vec::new();
        for (promo, n) in redeemed {
            let code = sqlx::query(
                "UPDATE promo_codes SET redemptions = redemptions + $1 WHERE id = $2 \
                 RETURNING code, campaign_id, influencer_id, redemptions, leak_time",
            )
            .bind(n)
            .bind(promo)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = code else { continue };
            if r.try_get::<i64, _>(4)? != 0 {
                continue; // flagged before
            }
            let code = Redeemed {
                id: promo,
                code: r.try_get(0)?,
                campaign_id: r.try_get(1)?,
                influencer_id: r.try_get(2)?,
                redemptions: r.try_get(3)?,
            };
            if let Some(e) = self.leak_check(&mut tx, tenant, code, now).await? {
                leaked.push(e);
            }
        }
        if !leaked.is_empty() {
            self.outbox.add_many(&mut tx, TOPIC, &leaked).await?;
        }
        for (i, id) in &fresh {
            out[*i] = Some((conversion_of(id, &orders[*i], 0, now), false));
        }
        tx.commit().await?;
        if !leaked.is_empty() {
            self.outbox.committed();
        }
        // The duplicates: what was recorded before.
        for (i, o) in orders.iter().enumerate() {
            if out[i].is_none() {
                let c = self
                    .conversion_by_order(tenant, &o.order_id)
                    .await?
                    .ok_or_else(|| Error::new(ErrorCode::Aborted, "an order recorded concurrently; retry"))?;
                out[i] = Some((c, true));
            }
        }
        Ok(Some(out.into_iter().flatten().collect()))
    }

    /// A code just redeemed and not flagged before, compared (domain::leaks) with its
    /// influencer's human clicks and the reach of their posts in the code's campaign, inside
    /// the conversions' transaction. The event when it looks leaked; the code is marked
    /// flagged here, so it is said at most once.
    async fn leak_check(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        code: Redeemed<'_>,
        now: Micros,
    ) -> Result<Option<chorus_proto::event::Envelope>, Error> {
        let Redeemed {
            id: promo_id,
            code,
            campaign_id: campaign,
            influencer_id: influencer,
            redemptions,
        } = code;
        if redemptions < leaks::MIN_REDEMPTIONS {
            return Ok(None);
        }
        let clicks = sqlx::query(
            "SELECT CAST(SUM(clicks) AS BIGINT) FROM click_rollups WHERE tenant = $1 AND campaign_id = $2 AND influencer_id = $3",
        )
        .bind(tenant)
        .bind(&campaign)
        .bind(&influencer)
        .fetch_one(&mut *conn)
        .await?;
        // The influencer's posts in the campaign: those contracts reported and those a link
        // was made for.
        let reach = sqlx::query(
            "SELECT CAST(SUM(CASE WHEN reach > 0 THEN reach ELSE 0 END) AS BIGINT) FROM post_rollups \
             WHERE tenant = $1 AND deliverable IN ( \
             SELECT deliverable FROM report_deliverables WHERE tenant = $1 AND campaign_id = $2 AND influencer_id = $3 \
             UNION SELECT deliverable FROM links WHERE tenant = $1 AND campaign_id = $2 AND influencer_id = $3 \
             AND deliverable <> '')",
        )
        .bind(tenant)
        .bind(&campaign)
        .bind(&influencer)
        .fetch_one(&mut *conn)
        .await?;
        // The country rule's counts: the campaign's audience country, and the code's
        // redemptions by the order's country.
        let audience_country: String =
            sqlx::query_scalar("SELECT audience_country FROM campaign_settings WHERE tenant = $1 AND campaign_id = $2")
                .bind(tenant)
                .bind(&campaign)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or_default();
        let (mut located, mut outside) = (0, 0);
        if !audience_country.is_empty() {
            let rows = sqlx::query(
                "SELECT country, redemptions FROM promo_code_countries WHERE tenant = $1 AND promo_code_id = $2 AND country <> ''",
            )
            .bind(tenant)
            .bind(promo_id)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let (country, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                located += n;
                if country != audience_country {
                    outside += n;
                }
            }
        }
        let e = Evidence {
            redemptions,
            clicks: sum(&clicks, 0)?,
            reach: sum(&reach, 0)?,
            audience_country,
            located,
            outside,
        };
        if !leaks::suspected(&e) {
            return Ok(None);
        }
        let marked = sqlx::query("UPDATE promo_codes SET leak_time = $1 WHERE id = $2 AND leak_time = 0")
            .bind(now)
            .bind(promo_id)
            .execute(&mut *conn)
            .await?;
        if marked.rows_affected() != 1 {
            return Ok(None);
        }
        let p = PromoCodeLeakSuspected {
            promo_code: named("promoCodes", promo_id.to_owned()),
            code,
            campaign: named("campaigns", campaign),
            influencer: named("influencers", influencer),
            redemptions: e.redemptions,
            clicks: e.clicks,
            reach: e.reach,
            outside_country_share: e.outside_share(),
            evidence: leaks::sentence(&e),
        };
        Ok(Some(envelope(&self.clock, tenant, &p)))
    }

    /// Reverses part of an order: once per refund id. `keys` as for `record_conversions`.
    /// NOT_FOUND when the order was never recorded.
    pub async fn refund(
        &self,
        tenant: &str,
        order_id: &str,
        refund_id: &str,
        amount: &Money,
        keys: &[(&str, String)],
    ) -> Result<Conversion, Error> {
        let now = self.now();
        let day = i64::from(day_of(now));
        let conversion = self
            .conversion_by_order(tenant, order_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("order {order_id}")))?;
        let revenue = conversion.revenue.clone().unwrap_or_default();
        if amount.currency_code != revenue.currency_code {
            return Err(Error::invalid_field(
                "amount.currency_code",
                format!("the order is in {}", revenue.currency_code),
            ));
        }
        self.ensure_partitions("refunds", [day]).await?;
        let mut tx = self.db.pool.begin().await?;
        // The order's key row is the lock that serialises its refunds: two refunds under
        // different ids must not both see the same total refunded and both pass the check.
        sqlx::query(
            "UPDATE dedup_keys SET record_time = record_time WHERE tenant = $1 AND kind = 'order' AND key = $2",
        )
        .bind(tenant)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        let all_keys = keys
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .chain([("refund", refund_id.to_owned())]);
        for (kind, key) in all_keys {
            let fresh = sqlx::query(
                "INSERT INTO dedup_keys (tenant, kind, key, target, record_time) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(kind)
            .bind(&key)
            .bind(&conversion.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if fresh.rows_affected() == 0 {
                drop(tx);
                return Ok(conversion);
            }
        }
        let conversion_id = id_of(&conversion.name, "conversions").to_owned();
        let refunded: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds WHERE conversion_id = $1",
        )
        .bind(&conversion_id)
        .fetch_one(&mut *tx)
        .await?;
        if refunded + amount.amount_minor > revenue.amount_minor {
            return Err(precondition(format!(
                "order {order_id} has {} {} left to refund",
                revenue.amount_minor - refunded,
                revenue.currency_code
            )));
        }
        sqlx::query(
            "INSERT INTO refunds (day, id, tenant, conversion_id, refund_id, amount_minor, record_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(day)
        .bind(id_at(now))
        .bind(tenant)
        .bind(&conversion_id)
        .bind(refund_id)
        .bind(amount.amount_minor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let order_day = i64::from(day_of(
            conversion.order_time.as_ref().map_or(now, chorus_kit::clock::micros),
        ));
        // The refund that returns the whole order takes back its conversion and, when a code
        // was used, its redemption: the report counts sales that stood. A part refund only
        // lowers the revenue. (PromoCode.redemptions still counts every order that used it,
        // refunded or not: the leak check's evidence.)
        let whole = refunded + amount.amount_minor == revenue.amount_minor;
        let used_code = conversion
            .attribution
            .as_ref()
            .is_some_and(|a| !a.promo_code.is_empty());
        let (conversions, redemptions) = if whole { (-1, -i64::from(used_code)) } else { (0, 0) };
        bump_conversions(
            &mut tx,
            tenant,
            id_of(&conversion.campaign, "campaigns"),
            id_of(&conversion.influencer, "influencers"),
            order_day,
            &revenue.currency_code,
            (conversions, redemptions, 0, amount.amount_minor),
        )
        .await?;
        tx.commit().await?;
        self.conversion(tenant, &conversion_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("order {order_id}")))
    }

    async fn conversion_by_order(&self, tenant: &str, order_id: &str) -> Result<Option<Conversion>, Error> {
        let target: Option<String> =
            sqlx::query_scalar("SELECT target FROM dedup_keys WHERE tenant = $1 AND kind = 'order' AND key = $2")
                .bind(tenant)
                .bind(order_id)
                .fetch_optional(&self.db.pool)
                .await?;
        match target {
            Some(id) => self.conversion(tenant, &id).await,
            None => Ok(None),
        }
    }

    /// The tenant's conversion `id` (its day partition read from the id).
    pub async fn conversion(&self, tenant: &str, id: &str) -> Result<Option<Conversion>, Error> {
        let Some(at) = time_of_id(id) else { return Ok(None) };
        let day = i64::from(day_of(at));
        let sql = format!(
            "SELECT {CONVERSION_COLUMNS} FROM conversions c WHERE c.day IN ($1, $2) AND c.id = $3 AND c.tenant = $4"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(day)
            .bind(day + 1)
            .bind(id)
            .bind(tenant)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(conversion_row).transpose()
    }

    pub async fn conversions(
        &self,
        tenant: &str,
        f: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversion>, Error> {
        let sql = format!(
            "SELECT {CONVERSION_COLUMNS} FROM conversions c WHERE c.tenant = $1 AND ($2 = '' OR c.campaign_id = $2) \
             AND ($3 = '' OR c.influencer_id = $3) AND ($4 = '' OR c.id < $4) ORDER BY c.id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(f.campaign_id.clone().unwrap_or_default())
            .bind(f.influencer_id.clone().unwrap_or_default())
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(conversion_row).collect()
    }

    // ---- the IP key ----

    /// The key IPs of `day` are hashed with, made when missing.
    pub async fn ip_key(&self, day: i64) -> Result<Vec<u8>, Error> {
        if let Some(k) = self.read_ip_key(day).await? {
            return Ok(k);
        }
        self.make_ip_key(day).await?;
        self.read_ip_key(day)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::Internal, "the day's IP key vanished"))
    }

    async fn read_ip_key(&self, day: i64) -> Result<Option<Vec<u8>>, Error> {
        Ok(sqlx::query_scalar("SELECT key_bytes FROM ip_keys WHERE day = $1")
            .bind(day)
            .fetch_optional(&self.db.pool)
            .await?)
    }

    async fn make_ip_key(&self, day: i64) -> Result<(), Error> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
        sqlx::query("INSERT INTO ip_keys (day, key_bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(day)
            .bind(key)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Day `day` begins: its and the next day's keys exist, every key before yesterday's is
    /// destroyed (so no hash older than that can be matched to an IP again), and the next
    /// rotation is set for the next midnight.
    pub async fn rotate_ip_keys(&self, day: i64) -> Result<(), Error> {
        self.make_ip_key(day).await?;
        self.make_ip_key(day + 1).await?;
        sqlx::query("DELETE FROM ip_keys WHERE day < $1")
            .bind(day - 1)
            .execute(&self.db.pool)
            .await?;
        self.schedule_rotation(day + 1).await
    }

    /// Sets the rotation timer for the start of `day` (replacing any).
    pub async fn schedule_rotation(&self, day: i64) -> Result<(), Error> {
        let envelope = chorus_kit::events::envelope(&self.clock, "", &KeyRotationDue { day });
        let mut conn = self.db.pool.acquire().await?;
        self.timers
            .schedule(
                &mut conn,
                "measurement:ip-key-rotation",
                day * DAY_MICROS,
                TIMER_TOPIC,
                &envelope,
            )
            .await?;
        self.timers.scheduled();
        Ok(())
    }

    // ---- post metrics and duties ----

    /// An approved post's duty: the metrics owed by `due`; its overdue event is set for then.
    pub async fn add_duty(
        &self,
        consumer: &str,
        event_id: &str,
        tenant: &str,
        duty: &MeasurementDuty,
        due: Micros,
    ) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        if !Inbox::first_time(&mut tx, &self.clock, consumer, event_id).await? {
            return Ok(());
        }
        owners::announce(&mut tx, tenant, Owned::Campaign, id_of(&duty.campaign, "campaigns")).await?;
        owners::announce(&mut tx, tenant, Owned::Contract, id_of(&duty.contract, "contracts")).await?;
        sqlx::query(
            "INSERT INTO duties (tenant, deliverable, contract_id, campaign_id, influencer_id, metrics, due_time, met_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&duty.deliverable)
        .bind(id_of(&duty.contract, "contracts"))
        .bind(id_of(&duty.campaign, "campaigns"))
        .bind(id_of(&duty.influencer, "influencers"))
        .bind(duty.metrics.join(","))
        .bind(due)
        .execute(&mut *tx)
        .await?;
        let overdue = MeasurementOverdue {
            deliverable: duty.deliverable.clone(),
            contract: duty.contract.clone(),
            campaign: duty.campaign.clone(),
            influencer: duty.influencer.clone(),
            due_time: Some(timestamp(due)),
            missing_metrics: duty.metrics.clone(),
        };
        let envelope = chorus_kit::events::envelope(&self.clock, tenant, &overdue);
        self.timers
            .schedule(&mut tx, &duty_timer(&duty.deliverable), due, TOPIC, &envelope)
            .await?;
        self.schedule_report_due(&mut tx, tenant, id_of(&duty.campaign, "campaigns"), None)
            .await?;
        tx.commit().await?;
        self.timers.scheduled();
        Ok(())
    }

    /// The duty of a deliverable, by whoever may see it: the brand's tenant, or the
    /// influencer it is owed by (`tenant` None).
    pub async fn duty(
        &self,
        tenant: Option<&str>,
        deliverable: &str,
    ) -> Result<Option<(String, MeasurementDuty)>, Error> {
        let row = sqlx::query(
            "SELECT tenant, contract_id, campaign_id, influencer_id, metrics, due_time, met_time FROM duties \
             WHERE deliverable = $1 AND ($2 = '' OR tenant = $2)",
        )
        .bind(deliverable)
        .bind(tenant.unwrap_or(""))
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let due: i64 = r.try_get(5)?;
        let met: Option<i64> = r.try_get(6)?;
        let metrics: String = r.try_get(4)?;
        let state = match met {
            Some(m) if m <= due => DutyState::Met,
            Some(_) => DutyState::MetLate,
            None if self.now() > due => DutyState::Overdue,
            None => DutyState::Pending,
        };
        Ok(Some((
            r.try_get(0)?,
            MeasurementDuty {
                deliverable: deliverable.to_owned(),
                contract: format!("contracts/{}", r.try_get::<String, _>(1)?),
                campaign: format!("campaigns/{}", r.try_get::<String, _>(2)?),
                influencer: format!("influencers/{}", r.try_get::<String, _>(3)?),
                metrics: metrics
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
                due_time: Some(timestamp(due)),
                state: state as i32,
                met_time: met.map(timestamp),
            },
        )))
    }

    /// Stores a snapshot; when it has every metric the duty asks for, the duty is met and its
    /// overdue event (if still pending) cancelled.
    pub async fn add_snapshot(
        &self,
        tenant: &str,
        snapshot: &PostMetricsSnapshot,
        meets_duty: bool,
        claim_: &Claim,
    ) -> Result<PostMetricsSnapshot, Error> {
        let now = self.now();
        let mut s = snapshot.clone();
        s.record_time = Some(timestamp(now));
        let mut tx = self.db.pool.begin().await?;
        let contract = contract_of(&s.deliverable).unwrap_or_default();
        claim(&mut tx, tenant, &[(Owned::Contract, &contract)]).await?;
        sqlx::query(
            "INSERT INTO post_metrics (id, tenant, deliverable, observe_time, body, record_time) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().hyphenated().to_string())
        .bind(tenant)
        .bind(&s.deliverable)
        .bind(s.observe_time.as_ref().map_or(now, chorus_kit::clock::micros))
        .bind(s.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let observed = s.observe_time.as_ref().map_or(now, chorus_kit::clock::micros);
        report::bump_post(&mut tx, tenant, &s, observed).await?;
        if meets_duty {
            let done = sqlx::query(
                "UPDATE duties SET met_time = $1 WHERE tenant = $2 AND deliverable = $3 AND met_time IS NULL",
            )
            .bind(now)
            .bind(tenant)
            .bind(&s.deliverable)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                self.timers.cancel(&mut tx, &duty_timer(&s.deliverable)).await?;
                self.duty_met(&mut tx, tenant, &s.deliverable).await?;
            }
        }
        claim_
            .record(
                &mut tx,
                &RecordPostMetricsResponse {
                    snapshot: Some(s.clone()),
                },
            )
            .await?;
        tx.commit().await?;
        self.timers.scheduled();
        Ok(s)
    }

    pub async fn snapshots(&self, tenant: &str, deliverable: &str) -> Result<Vec<PostMetricsSnapshot>, Error> {
        let rows = sqlx::query(
            "SELECT body FROM post_metrics WHERE tenant = $1 AND deliverable = $2 ORDER BY observe_time, id LIMIT 10000",
        )
        .bind(tenant)
        .bind(deliverable)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let body: Vec<u8> = r.try_get(0)?;
                PostMetricsSnapshot::decode(body.as_slice())
                    .map_err(|e| Error::new(ErrorCode::Internal, format!("a stored snapshot does not decode: {e}")))
            })
            .collect()
    }
}

/// A promo code as its redemptions were just counted.
struct Redeemed<'a> {
    id: &'a str,
    code: String,
    campaign_id: String,
    influencer_id: String,
    /// Including this batch's.
    redemptions: i64,
}

fn duty_timer(deliverable: &str) -> String {
    format!("measurement:duty:{deliverable}")
}

fn poisoned() -> Error {
    Error::new(ErrorCode::Internal, "a lock was poisoned")
}

/// A sum the query cast to BIGINT (PostgreSQL's SUM of BIGINT is NUMERIC, which the Any
/// driver does not read); NULL when there were no rows.
fn sum(r: &AnyRow, i: usize) -> Result<i64, Error> {
    Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0))
}

#[allow(clippy::too_many_arguments)]
async fn bump_conversions(
    conn: &mut AnyConnection,
    tenant: &str,
    campaign: &str,
    influencer: &str,
    day: i64,
    currency: &str,
    (n, redemptions, revenue, refunded): (i64, i64, i64, i64),
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO conversion_rollups (tenant, campaign_id, influencer_id, day, currency, conversions, redemptions, \
         revenue_minor, refunded_minor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant, campaign_id, influencer_id, day, currency) DO UPDATE SET \
         conversions = conversion_rollups.conversions + excluded.conversions, \
         redemptions = conversion_rollups.redemptions + excluded.redemptions, \
         revenue_minor = conversion_rollups.revenue_minor + excluded.revenue_minor, \
         refunded_minor = conversion_rollups.refunded_minor + excluded.refunded_minor",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(influencer)
    .bind(day)
    .bind(currency)
    .bind(n)
    .bind(redemptions)
    .bind(revenue)
    .bind(refunded)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a promo code; false when the tenant has that code already.
async fn insert_promo(conn: &mut AnyConnection, tenant: &str, p: &PromoCode, segment: &str) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO promo_codes (id, tenant, code, campaign_id, influencer_id, contract_id, segment, single_use, redemptions, \
         create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9) ON CONFLICT DO NOTHING",
    )
    .bind(id_of(&p.name, "promoCodes"))
    .bind(tenant)
    .bind(&p.code)
    .bind(id_of(&p.campaign, "campaigns"))
    .bind(id_of(&p.influencer, "influencers"))
    .bind(id_of(&p.contract, "contracts"))
    .bind(segment)
    .bind(i64::from(p.single_use))
    .bind(p.create_time.as_ref().map_or(0, chorus_kit::clock::micros))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The UTM parameters of a link, defaults filled in.
pub fn default_utm(campaign_id: &str, influencer_id: &str, given: &Utm) -> Utm {
    let or = |v: &str, d: &str| if v.is_empty() { d.to_owned() } else { v.to_owned() };
    Utm {
        source: or(&given.source, "chorus"),
        medium: or(&given.medium, "influencer"),
        campaign: or(&given.campaign, campaign_id),
        content: or(&given.content, influencer_id),
    }
}

const LINK_COLUMNS: &str = "id, code, campaign_id, influencer_id, deliverable, segment, destination_url, utm_source, utm_medium, \
                            utm_campaign, utm_content, clicks, create_time";

fn link_of(id: &str, code: &str, l: &NewLink, clicks: i64, created: Micros) -> Link {
    Link {
        name: format!("links/{id}"),
        campaign: format!("campaigns/{}", l.campaign_id),
        influencer: format!("influencers/{}", l.influencer_id),
        deliverable: l.deliverable.clone(),
        destination_url: l.destination_url.clone(),
        utm: Some(chorus_proto::measurement::Utm {
            source: l.utm.source.clone(),
            medium: l.utm.medium.clone(),
            campaign: l.utm.campaign.clone(),
            content: l.utm.content.clone(),
        }),
        code: code.to_owned(),
        segment: l.segment.clone(),
        clicks,
        create_time: Some(timestamp(created)),
    }
}

fn link_row(r: &AnyRow) -> Result<Link, Error> {
    let id: String = r.try_get(0)?;
    let code: String = r.try_get(1)?;
    let l = NewLink {
        campaign_id: r.try_get(2)?,
        influencer_id: r.try_get(3)?,
        deliverable: r.try_get(4)?,
        segment: r.try_get(5)?,
        destination_url: r.try_get(6)?,
        utm: Utm {
            source: r.try_get(7)?,
            medium: r.try_get(8)?,
            campaign: r.try_get(9)?,
            content: r.try_get(10)?,
        },
    };
    Ok(link_of(&id, &code, &l, r.try_get(11)?, r.try_get(12)?))
}

fn promo_row(r: &AnyRow) -> Result<PromoCode, Error> {
    let contract: String = r.try_get(4)?;
    Ok(PromoCode {
        name: format!("promoCodes/{}", r.try_get::<String, _>(0)?),
        code: r.try_get(1)?,
        campaign: format!("campaigns/{}", r.try_get::<String, _>(2)?),
        influencer: format!("influencers/{}", r.try_get::<String, _>(3)?),
        contract: if contract.is_empty() {
            String::new()
        } else {
            format!("contracts/{contract}")
        },
        single_use: r.try_get::<i64, _>(5)? != 0,
        redemptions: r.try_get(6)?,
        create_time: Some(timestamp(r.try_get(7)?)),
    })
}

const CONVERSION_COLUMNS: &str = "c.id, c.order_id, c.source, c.shop_domain, c.campaign_id, c.influencer_id, c.segment, c.method, \
    c.reason, c.promo_code_id, c.click_id, c.link_id, c.currency, c.revenue_minor, c.order_time, c.record_time, \
    CAST((SELECT COALESCE(SUM(r.amount_minor), 0) FROM refunds r WHERE r.conversion_id = c.id) AS BIGINT) AS refunded, \
    c.country";

fn named(collection: &str, id: String) -> String {
    if id.is_empty() {
        id
    } else {
        format!("{collection}/{id}")
    }
}

fn conversion_of(id: &str, o: &NewConversion, refunded: i64, recorded: Micros) -> Conversion {
    let d = &o.decision;
    Conversion {
        name: format!("conversions/{id}"),
        order_id: o.order_id.clone(),
        source: o.source as i32,
        shop_domain: o.shop_domain.clone(),
        campaign: named("campaigns", d.campaign_id.clone()),
        influencer: named("influencers", d.influencer_id.clone()),
        segment: d.segment.clone(),
        attribution: Some(Attribution {
            method: d.method as i32,
            reason: d.reason.clone(),
            promo_code: named("promoCodes", d.promo_id.clone()),
            click: d.click_id.clone(),
            link: named("links", d.link_id.clone()),
        }),
        revenue: Some(Money {
            currency_code: o.currency.clone(),
            amount_minor: o.revenue_minor,
        }),
        refunded: Some(Money {
            currency_code: o.currency.clone(),
            amount_minor: refunded,
        }),
        order_time: Some(timestamp(o.order_time)),
        record_time: Some(timestamp(recorded)),
        country: o.country.clone(),
    }
}

fn conversion_row(r: &AnyRow) -> Result<Conversion, Error> {
    let id: String = r.try_get(0)?;
    let o = NewConversion {
        order_id: r.try_get(1)?,
        source: ConversionSource::try_from(r.try_get::<i64, _>(2)? as i32).unwrap_or_default(),
        shop_domain: r.try_get(3)?,
        currency: r.try_get(12)?,
        revenue_minor: r.try_get(13)?,
        order_time: r.try_get(14)?,
        country: r.try_get(17)?,
        decision: Decision {
            method: AttributionMethod::try_from(r.try_get::<i64, _>(7)? as i32).unwrap_or_default(),
            campaign_id: r.try_get(4)?,
            influencer_id: r.try_get(5)?,
            segment: r.try_get(6)?,
            reason: r.try_get(8)?,
            promo_id: r.try_get(9)?,
            click_id: r.try_get(10)?,
            link_id: r.try_get(11)?,
        },
    };
    Ok(conversion_of(&id, &o, sum(r, 16)?, r.try_get(15)?))
}
