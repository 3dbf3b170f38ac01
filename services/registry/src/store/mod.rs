//! The registry's storage: one portable SQL adapter over the kit's `Database`, so the same code
//! runs on PostgreSQL (cluster) and SQLite (`chorus up`); tests/store.rs runs the conformance
//! suite on both. Every write commits its events to the outbox in the same transaction.

mod cache;
mod list;
mod sql;
mod vetting;

pub use list::{Cursor, ListQuery, Order, OrderKey, SortValue};
pub use vetting::Sample;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chorus_kit::clock::Clock;
use chorus_kit::events::outbox::Outbox;
use chorus_kit::idempotency::Claim;
use chorus_kit::storage::{Backend, Database};
use chorus_kit::{Error, ErrorCode};
use chorus_proto::registry::{AccountMetrics, AccountVetting, Influencer, MetricsSnapshot};
use prost::Message;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::engagement;
use crate::domain::influencer::{AccountKey, keys, micros_to_timestamp, timestamp_to_micros};
use crate::domain::tier::TierTable;
use crate::domain::vetting::report::Thresholds;
use crate::domain::write::{Batch, initial_status};
pub use crate::domain::write::{Outcome, WriteMode};
use crate::error::RegistryError;
use crate::events;
pub(crate) use sql::{Arg, Sql};

/// Rows per multi-row statement: well under both engines' bound-parameter limits.
const CHUNK: usize = 1_000;

/// The result of one row of a write.
pub type RowResult = Result<(Outcome, Influencer), Error>;

#[derive(Debug, Clone)]
struct Existing {
    influencer_id: String,
    latest_time: i64,
    latest: Option<Vec<u8>>,
    vetting: Option<Vec<u8>>,
}

/// Storage of influencers, accounts and metrics history.
#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: Outbox,
    clock: Clock,
    tiers: TierTable,
    vetting: Thresholds,
    cache: Arc<cache::ReadCache>,
}

/// The id in `influencers/{id}`, when it is a UUID in the canonical form ids are issued in
/// (lower case, hyphenated); any other spelling would never match a stored id.
pub fn id_of(name: &str) -> Option<&str> {
    name.strip_prefix("influencers/")
        .filter(|id| chorus_kit::names::is_canonical_id(id))
}

impl Store {
    /// `cache_entries` bounds the read cache (0 turns it off).
    pub fn new(db: Database, outbox: Outbox, clock: Clock, tiers: TierTable, cache_entries: usize) -> Self {
        Store {
            db,
            outbox,
            clock,
            tiers,
            vetting: Thresholds::default(),
            cache: Arc::new(cache::ReadCache::new(cache_entries)),
        }
    }

    /// Now, on the service's clock.
    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The thresholds vetting reports take their verdicts and flags with.
    pub fn with_vetting(mut self, thresholds: Thresholds) -> Self {
        self.vetting = thresholds;
        self
    }

    pub fn vetting(&self) -> &Thresholds {
        &self.vetting
    }

    /// Forgets a cached profile: after a commit here, or on another replica's event.
    pub fn evict(&self, id: &str) {
        self.cache.evict(id);
    }

    pub fn tiers(&self) -> &TierTable {
        &self.tiers
    }

    /// Writes normalized rows in one transaction; each row gets its own result, and a bad row
    /// never fails the others. A single row's stored profile is recorded as `claim`'s answer in
    /// the same transaction (a request id's first answer commits with its effect).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.write", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn write(&self, rows: Vec<Influencer>, mode: WriteMode, claim: &Claim) -> Result<Vec<RowResult>, Error> {
        // Another writer took an account between our look-up and our insert, or two imports
        // deadlocked on the same keys: nothing was written, look again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.write_once(&rows, &mode, claim).await {
                Err(e) if attempt < 3 && matches!(e.code(), ErrorCode::AlreadyExists | ErrorCode::Aborted) => continue,
                other => return other,
            }
        }
    }

    async fn write_once(&self, rows: &[Influencer], mode: &WriteMode, claim: &Claim) -> Result<Vec<RowResult>, Error> {
        let all_keys: Vec<AccountKey> = rows.iter().flat_map(keys).collect();
        let existing = self.existing_accounts(&all_keys, true).await?;
        let now = self.now_micros();

        // Decide per row: which id it writes, or why it cannot.
        let mut batch = Batch::new();
        let plan: Vec<Result<(Outcome, String), Error>> = rows
            .iter()
            .map(|inf| {
                batch
                    .decide(inf, mode, |k| existing.get(k).map(|e| e.influencer_id.as_str()))
                    .map_err(Error::from)
            })
            .collect();

        let mut tx = self.db.pool.begin().await?;
        // An influencer planned as updated may have been erased since the plan was read: the
        // upsert below would bring them back. Lock the rows and check they are all still
        // there: SELECT ... FOR UPDATE on PostgreSQL; on SQLite a no-op UPDATE, because a
        // transaction that reads first fails when it later writes after another writer
        // committed (WAL), while one that writes first waits for the lock.
        let updating: Vec<&str> = plan
            .iter()
            .filter_map(|p| match p {
                Ok((Outcome::Updated, id)) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for chunk in updating.chunks(CHUNK) {
            let found = match self.db.backend {
                Backend::Postgres => {
                    let mut q = Sql::new("SELECT id FROM influencers WHERE id IN (");
                    q.list(chunk.iter().copied()).push(") ORDER BY id FOR UPDATE");
                    q.query().fetch_all(&mut *tx).await?.len()
                }
                Backend::Sqlite => {
                    let mut q = Sql::new("UPDATE influencers SET update_time = update_time WHERE id IN (");
                    q.list(chunk.iter().copied()).push(")");
                    q.query().execute(&mut *tx).await?.rows_affected() as usize
                }
            };
            if found < chunk.len() {
                return Err(match mode {
                    WriteMode::Replace(id) => Error::not_found(format!("influencers/{id}")),
                    // Planned again by `write`: the erased person's accounts are gone now.
                    _ => RegistryError::DeletedWhilePlanned.into(),
                });
            }
        }
        // Influencers. Their copies of the largest account's figures (List's filters) keep the
        // column defaults for a new row and are recomputed below for an updated one, once its
        // accounts are written.
        let mut stored: Vec<Option<(Outcome, Influencer)>> = vec![None; rows.len()];
        let mut write_rows = Vec::new();
        for (row, p) in plan.iter().enumerate() {
            if let Ok((outcome, id)) = p {
                let mut inf = rows[row].clone();
                inf.name = format!("influencers/{id}");
                write_rows.push((row, id.clone(), inf, *outcome));
            }
        }
        // Per id: creation time and the status as stored.
        let mut create_times: HashMap<String, (i64, i32)> = HashMap::new();
        for chunk in write_rows.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO influencers (id, display_name, country_code, region_key, city_key, niches, languages, \
                 platforms, status, profile, create_time, update_time) \
                 VALUES ",
            );
            for (i, (_, id, inf, outcome)) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                let loc = inf.location.clone().unwrap_or_default();
                q.row(vec![
                    id.clone().into(),
                    inf.display_name.clone().into(),
                    loc.country_code.into(),
                    loc.region.to_lowercase().into(),
                    loc.city.to_lowercase().into(),
                    joined(&inf.niches).into(),
                    joined(&inf.languages).into(),
                    platforms(inf).into(),
                    initial_status(inf, *outcome).into(),
                    inf.encode_to_vec().into(),
                    now.into(),
                    now.into(),
                ]);
            }
            q.push(
                " ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, \
                 country_code = excluded.country_code, region_key = excluded.region_key, city_key = excluded.city_key, \
                 niches = excluded.niches, languages = excluded.languages, platforms = excluded.platforms, status = CASE WHEN excluded.status = 0 THEN influencers.status ELSE excluded.status END, \
                 profile = excluded.profile, update_time = excluded.update_time RETURNING id, create_time, status",
            );
            for r in q.query().fetch_all(&mut *tx).await? {
                let status: i64 = r.try_get("status")?;
                create_times.insert(r.try_get("id")?, (r.try_get("create_time")?, status as i32));
            }
        }

        // Accounts. An updated influencer's accounts that its new profile no longer lists are
        // deleted; every listed account is inserted, or kept with the metrics and vetting
        // stored on it now (not the copy the plan read, which a RecordMetrics committed since
        // would make stale). An account another influencer took since the plan was read is
        // not touched, and the batch is planned again.
        let updated: Vec<(&String, Vec<AccountKey>)> = write_rows
            .iter()
            .filter(|(_, _, _, o)| *o == Outcome::Updated)
            .map(|(_, id, inf, _)| (id, keys(inf)))
            .collect();
        for chunk in updated.chunks(CHUNK) {
            let mut q = Sql::new("DELETE FROM accounts WHERE influencer_id IN (");
            q.list(chunk.iter().map(|(id, _)| id.as_str())).push(")");
            let listed: Vec<&AccountKey> = chunk.iter().flat_map(|(_, k)| k).collect();
            if !listed.is_empty() {
                q.push(" AND NOT EXISTS (SELECT 1 FROM (VALUES ");
                for (i, k) in listed.iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.row(vec![k.platform.into(), k.handle.clone().into()]);
                }
                q.push(") AS v WHERE v.column1 = accounts.platform AND v.column2 = accounts.handle)");
            }
            q.query().execute(&mut *tx).await?;
        }
        let mut account_rows: Vec<Vec<Arg>> = write_rows
            .iter()
            .flat_map(|(_, id, inf, _)| {
                keys(inf)
                    .into_iter()
                    .map(|k| vec![k.platform.into(), k.handle.into(), id.clone().into()])
            })
            .collect();
        // A new account starts with the columns' defaults: no metrics, no vetting yet.
        for chunk in account_rows.chunks_mut(CHUNK) {
            let mut q = Sql::new("INSERT INTO accounts (platform, handle, influencer_id) VALUES ");
            let n = chunk.len() as u64;
            for (i, r) in chunk.iter_mut().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.row(std::mem::take(r));
            }
            q.push(
                " ON CONFLICT (platform, handle) DO UPDATE SET influencer_id = excluded.influencer_id \
                 WHERE accounts.influencer_id = excluded.influencer_id",
            );
            if q.query().execute(&mut *tx).await?.rows_affected() < n {
                return Err(RegistryError::TakenWhilePlanned.into());
            }
        }
        // The influencer rows' copies of their largest account, from the accounts as stored.
        let updated_ids: Vec<&str> = updated.iter().map(|(id, _)| id.as_str()).collect();
        vetting::refresh_copies(&mut tx, &updated_ids, now).await?;

        // The stored influencers, as Get would return them, and their events.
        let mut envelopes = Vec::with_capacity(write_rows.len());
        for (row, id, inf, outcome) in write_rows {
            let mut out = inf;
            let (created, status) = create_times.get(&id).copied().unwrap_or((now, out.status));
            out.create_time = Some(micros_to_timestamp(created));
            out.status = status;
            out.update_time = Some(micros_to_timestamp(now));
            for a in &mut out.accounts {
                let key = AccountKey {
                    platform: a.platform,
                    handle: a.handle.clone(),
                };
                a.metrics = existing.get(&key).and_then(|e| self.metrics(e.latest.as_deref()));
                a.vetting = existing.get(&key).and_then(|e| vetting_gist(e.vetting.as_deref()));
            }
            envelopes.push(events::upserted(&self.clock, &out));
            stored[row] = Some((outcome, out));
        }
        self.outbox.add_many(&mut tx, events::TOPIC, &envelopes).await?;
        if let [Some((_, inf))] = stored.as_slice() {
            claim.record(&mut tx, inf).await?;
        }
        tx.commit().await?;
        self.outbox.committed();
        for (_, done) in stored.iter().flatten() {
            self.cache.evict(done.name.trim_start_matches("influencers/"));
        }

        Ok(plan
            .into_iter()
            .zip(stored)
            .map(|(p, s)| match (p, s) {
                (Err(e), _) => Err(e),
                (Ok(_), Some(done)) => Ok(done),
                (Ok(_), None) => Err(Error::new(ErrorCode::Internal, "row planned but not written")),
            })
            .collect())
    }

    /// The stored accounts among `keys`: owner and newest snapshot time, and with `figures`
    /// the newest snapshot and vetting too (a write's events carry them; RecordMetrics does
    /// not need them, and they are most of the bytes).
    async fn existing_accounts(
        &self,
        keys: &[AccountKey],
        figures: bool,
    ) -> Result<HashMap<AccountKey, Existing>, Error> {
        let mut keys: Vec<&AccountKey> = keys.iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut out = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let columns = if figures {
                "platform, handle, influencer_id, latest_time, latest, vetting"
            } else {
                "platform, handle, influencer_id, latest_time"
            };
            let mut q = by_keys(self.db.backend, columns, "accounts", chunk);
            for r in q.query().fetch_all(&self.db.pool).await? {
                let key = AccountKey {
                    platform: r.try_get::<i64, _>("platform")? as i32,
                    handle: r.try_get("handle")?,
                };
                let bytes = |column: &str| -> Result<Option<Vec<u8>>, Error> {
                    if !figures {
                        return Ok(None);
                    }
                    let b: Option<Vec<u8>> = r.try_get(column)?;
                    Ok(b.filter(|b| !b.is_empty()))
                };
                out.insert(
                    key,
                    Existing {
                        influencer_id: r.try_get("influencer_id")?,
                        latest_time: r.try_get("latest_time")?,
                        latest: bytes("latest")?,
                        vetting: bytes("vetting")?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Reads the influencers `ids` (those the cache did not have) into `by_id`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.get", otel.kind = "client", db.system.name = self.db.system()))]
    async fn read_influencers(&self, ids: &[String], by_id: &mut HashMap<String, Influencer>) -> Result<(), Error> {
        for chunk in ids.chunks(CHUNK) {
            let mut q = Sql::new(
                "SELECT i.id, i.profile, i.status, i.create_time, i.update_time, a.platform, a.handle, a.latest, a.vetting \
                 FROM influencers i LEFT JOIN accounts a ON a.influencer_id = i.id WHERE i.id IN (",
            );
            q.list(chunk.iter().map(|s| s.as_str())).push(")");
            for r in q.query().fetch_all(&self.db.pool).await? {
                self.merge_row(by_id, &r)?;
            }
        }
        Ok(())
    }

    /// The influencers with these ids that exist, in the order asked (a repeated id comes back
    /// as often as it was asked for).
    pub async fn get(&self, ids: &[String]) -> Result<Vec<Influencer>, Error> {
        let mut by_id: HashMap<String, Influencer> = HashMap::with_capacity(ids.len());
        let stamp = self.cache.stamp();
        let mut missing = Vec::new();
        for id in ids {
            match self.cache.get(id) {
                Some(inf) => {
                    by_id.insert(id.clone(), inf);
                }
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            self.read_influencers(&missing, &mut by_id).await?;
        }
        for id in &missing {
            if let Some(inf) = by_id.get(id) {
                self.cache.put(stamp, id, inf);
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }

    /// One page of the whole catalogue in id order, after `after` (exclusive): one query, no
    /// read cache (an export would only churn it). ExportInfluencers streams these.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.export_page", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn export_page(&self, after: &str, limit: usize) -> Result<Vec<Influencer>, Error> {
        let mut q = Sql::new(
            "SELECT i.id, i.profile, i.status, i.create_time, i.update_time, a.platform, a.handle, a.latest, a.vetting \
             FROM influencers i LEFT JOIN accounts a ON a.influencer_id = i.id \
             WHERE i.id IN (SELECT id FROM influencers WHERE id > ",
        );
        q.arg(after).push(" ORDER BY id LIMIT ").arg(limit as i64).push(")");
        let mut by_id: HashMap<String, Influencer> = HashMap::with_capacity(limit);
        for r in q.query().fetch_all(&self.db.pool).await? {
            self.merge_row(&mut by_id, &r)?;
        }
        let mut page: Vec<(String, Influencer)> = by_id.into_iter().collect();
        page.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(page.into_iter().map(|(_, inf)| inf).collect())
    }

    fn merge_row(&self, by_id: &mut HashMap<String, Influencer>, r: &AnyRow) -> Result<(), Error> {
        let id: String = r.try_get("id")?;
        if !by_id.contains_key(&id) {
            let bytes: Vec<u8> = r.try_get("profile")?;
            let mut inf = Influencer::decode(bytes.as_slice()).map_err(|e| Error::internal("decode profile", e))?;
            inf.status = r.try_get::<i64, _>("status")? as i32;
            inf.create_time = Some(micros_to_timestamp(r.try_get("create_time")?));
            inf.update_time = Some(micros_to_timestamp(r.try_get("update_time")?));
            by_id.insert(id.clone(), inf);
        }
        let platform: Option<i64> = r.try_get("platform")?;
        if let (Some(platform), Some(inf)) = (platform, by_id.get_mut(&id)) {
            let handle: String = r.try_get("handle")?;
            let latest: Option<Vec<u8>> = r.try_get("latest")?;
            let vetting: Option<Vec<u8>> = r.try_get("vetting")?;
            if let Some(a) = inf
                .accounts
                .iter_mut()
                .find(|a| a.platform as i64 == platform && a.handle == handle)
            {
                a.metrics = self.metrics(latest.as_deref());
                a.vetting = vetting_gist(vetting.as_deref());
            }
        }
        Ok(())
    }

    /// What an account's latest snapshot says, derived with the configured tiers.
    fn metrics(&self, latest: Option<&[u8]>) -> Option<AccountMetrics> {
        let s = MetricsSnapshot::decode(latest.filter(|b| !b.is_empty())?).ok()?;
        Some(self.derive(s))
    }

    fn derive(&self, s: MetricsSnapshot) -> AccountMetrics {
        AccountMetrics {
            engagement_rates: engagement::rates(&s),
            tier: self.tiers.classify(s.followers) as i32,
            sponsored_share: engagement::sponsored_share(&s),
            latest: Some(s),
        }
    }

    /// Erases an influencer: profile, accounts and history, with the deletion event; the
    /// answer of `claim` commits with it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.delete", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn delete(&self, id: &str, claim: &Claim) -> Result<bool, Error> {
        let mut tx = self.db.pool.begin().await?;
        // Children first: SQLite enforces ON DELETE CASCADE only with foreign keys on, and
        // erasure must not depend on a pragma.
        for table in ["vetting_reports", "vetting_inputs", "metrics_snapshots", "accounts"] {
            let mut q = Sql::new(&format!("DELETE FROM {table} WHERE influencer_id = "));
            q.arg(id);
            q.query().execute(&mut *tx).await?;
        }
        let gone = Sql::new("DELETE FROM influencers WHERE id = ")
            .arg(id)
            .query()
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(false);
        }
        self.outbox
            .add_many(&mut tx, events::TOPIC, &[events::deleted(&self.clock, id)])
            .await?;
        claim
            .record(&mut tx, &chorus_proto::registry::DeleteInfluencerResponse {})
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        self.cache.evict(id);
        Ok(true)
    }

    /// Records normalized snapshots; a snapshot for an unknown account is NOT_FOUND for its
    /// row alone. The newest snapshot of an account becomes its current metrics.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.record_metrics", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn record_metrics(&self, snaps: Vec<MetricsSnapshot>) -> Result<Vec<Result<(), Error>>, Error> {
        let keys: Vec<AccountKey> = snaps
            .iter()
            .map(|s| AccountKey {
                platform: s.platform,
                handle: s.handle.clone(),
            })
            .collect();
        let existing = self.existing_accounts(&keys, false).await?;
        let mut results = Vec::with_capacity(snaps.len());
        let mut newest: HashMap<&AccountKey, (i64, &MetricsSnapshot)> = HashMap::new();
        let mut rows = Vec::new();
        // Each row's event, sent only when the row is new: a snapshot is its account and its
        // moment, and recording it again (a retried stream) changes nothing.
        let mut row_events = Vec::new();
        let mut moments: HashSet<(&AccountKey, i64)> = HashSet::new();
        for (s, key) in snaps.iter().zip(&keys) {
            let Some(e) = existing.get(key) else {
                results.push(Err(Error::not_found(key)));
                continue;
            };
            let at = s.observe_time.as_ref().map(timestamp_to_micros).unwrap_or(0);
            results.push(Ok(()));
            if !moments.insert((key, at)) {
                continue;
            }
            if at >= e.latest_time && newest.get(key).is_none_or(|(t, _)| at >= *t) {
                newest.insert(key, (at, s));
            }
            rows.push(vec![
                uuid::Uuid::now_v7().to_string().into(),
                e.influencer_id.clone().into(),
                s.platform.into(),
                s.handle.clone().into(),
                at.into(),
                s.encode_to_vec().into(),
            ]);
            row_events.push((
                (key.platform, key.handle.clone(), at),
                events::metrics_recorded(&self.clock, &e.influencer_id, self.derive(s.clone())),
            ));
        }
        let mut tx = self.db.pool.begin().await?;
        let mut new_rows: HashSet<(i32, String, i64)> = HashSet::new();
        for chunk in rows.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO metrics_snapshots (id, influencer_id, platform, handle, observe_time, snapshot) VALUES ",
            );
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.row(r.clone());
            }
            q.push(" ON CONFLICT (platform, handle, observe_time) DO NOTHING RETURNING platform, handle, observe_time");
            for r in q.query().fetch_all(&mut *tx).await? {
                new_rows.insert((
                    r.try_get::<i64, _>("platform")? as i32,
                    r.try_get("handle")?,
                    r.try_get("observe_time")?,
                ));
            }
        }
        let mut envelopes: Vec<_> = row_events
            .into_iter()
            .filter(|(moment, _)| new_rows.contains(moment))
            .map(|(_, envelope)| envelope)
            .collect();
        // Each account's newest snapshot becomes its current metrics: one UPDATE ... FROM
        // (VALUES ...) per chunk, portable because both engines name VALUES columns column1..n.
        let newest: Vec<_> = newest.into_iter().collect();
        let mut touched = HashSet::new();
        let mut revet = Vec::with_capacity(newest.len());
        for chunk in newest.chunks(CHUNK) {
            let mut q = Sql::new("UPDATE accounts SET followers = v.column3, engagement_rate = v.column4, ");
            q.push("latest_time = v.column5, latest = v.column6 FROM (VALUES ");
            for (i, (key, (at, s))) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.row(vec![
                    key.platform.into(),
                    key.handle.clone().into(),
                    s.followers.into(),
                    engagement::by_followers(s).into(),
                    (*at).into(),
                    s.encode_to_vec().into(),
                ]);
                if let Some(e) = existing.get(*key) {
                    touched.insert(e.influencer_id.as_str());
                    revet.push(((*key).clone(), e.influencer_id.clone()));
                }
            }
            // Only forward: a concurrent stream may have stored a newer snapshot since
            // `existing` was read.
            q.push(
                ") AS v WHERE accounts.platform = v.column1 AND accounts.handle = v.column2 \
                 AND accounts.latest_time <= v.column5",
            );
            q.query().execute(&mut *tx).await?;
        }
        // New evidence: re-vet the accounts, then the influencer rows' copies follow their
        // largest account.
        let revetted = self.revet(&mut tx, &revet, false).await?;
        envelopes.extend(revetted.envelopes);
        let touched: Vec<&str> = touched.into_iter().collect();
        let evict: Vec<String> = touched.iter().map(|id| (*id).to_owned()).collect();
        vetting::refresh_copies(&mut tx, &touched, self.now_micros()).await?;
        self.outbox.add_many(&mut tx, events::TOPIC, &envelopes).await?;
        tx.commit().await?;
        self.outbox.committed();
        for id in &evict {
            self.cache.evict(id);
        }
        Ok(results)
    }

    /// An influencer's snapshots, newest first, after the `(observe_time, id)` cursor.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.snapshots", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn snapshots(
        &self,
        influencer_id: &str,
        account: Option<&AccountKey>,
        limit: usize,
        after: Option<&(i64, String)>,
    ) -> Result<Keyed<MetricsSnapshot>, Error> {
        let page = History {
            table: "metrics_snapshots",
            time: "observe_time",
            payload: "snapshot",
        };
        page.read(&self.db, influencer_id, account, limit, after).await
    }

    /// Whether an influencer exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.exists", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn exists(&self, id: &str) -> Result<bool, Error> {
        let row = Sql::new("SELECT 1 FROM influencers WHERE id = ")
            .arg(id)
            .query()
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.is_some())
    }
}

/// Records with the `(time, id)` key a page continues after.
pub(crate) type Keyed<T> = Vec<(T, (i64, String))>;

/// A table of one influencer's records over time (metrics snapshots, vetting reports), read a
/// page at a time, newest first, by keyset on `(time, id)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct History {
    pub(crate) table: &'static str,
    pub(crate) time: &'static str,
    /// The column holding the encoded message.
    pub(crate) payload: &'static str,
}

impl History {
    pub(crate) async fn read<M: Message + Default>(
        self,
        db: &Database,
        influencer_id: &str,
        account: Option<&AccountKey>,
        limit: usize,
        after: Option<&(i64, String)>,
    ) -> Result<Vec<(M, (i64, String))>, Error> {
        let History { table, time, payload } = self;
        let mut q = Sql::new(&format!(
            "SELECT id, {time}, {payload} FROM {table} WHERE influencer_id = "
        ));
        q.arg(influencer_id);
        if let Some(k) = account {
            q.push(" AND platform = ")
                .arg(k.platform)
                .push(" AND handle = ")
                .arg(k.handle.as_str());
        }
        if let Some((t, id)) = after {
            q.push(&format!(" AND ({time} < ")).arg(*t);
            q.push(&format!(" OR ({time} = ")).arg(*t);
            q.push(" AND id < ").arg(id.as_str()).push("))");
        }
        q.push(&format!(" ORDER BY {time} DESC, id DESC LIMIT "))
            .arg(limit as i64);
        let mut out = Vec::new();
        for r in q.query().fetch_all(&db.pool).await? {
            let bytes: Vec<u8> = r.try_get(payload)?;
            let m = M::decode(bytes.as_slice()).map_err(|e| Error::internal(table, e))?;
            out.push((m, (r.try_get(time)?, r.try_get("id")?)));
        }
        Ok(out)
    }
}

/// `SELECT columns FROM table` for the rows with these account keys, each key one probe of
/// the table's (platform, handle) primary key. The obvious `(platform, handle) IN (...)`
/// became a thousand bitmap scans OR-ed together on PostgreSQL (75 ms for 1,000 keys against
/// 10 ms this way); a plain join with the VALUES list lets PostgreSQL hash-join over a scan of
/// the whole table when it has no statistics yet (a fresh import: 114 s instead of 72 s), so
/// there each key is a LATERAL subquery that OFFSET 0 keeps from being flattened. SQLite
/// probes the key for each VALUES row of the join.
pub(super) fn by_keys(backend: Backend, columns: &str, table: &str, keys: &[&AccountKey]) -> Sql {
    let mut q = Sql::new("SELECT ");
    for (i, c) in columns.split(',').enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("t.").push(c.trim());
    }
    q.push(" FROM (VALUES ");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.row(vec![k.platform.into(), k.handle.clone().into()]);
    }
    q.push(&match backend {
        Backend::Postgres => format!(
            ") AS v CROSS JOIN LATERAL (SELECT {columns} FROM {table} \
             WHERE platform = v.column1 AND handle = v.column2 OFFSET 0) t"
        ),
        Backend::Sqlite => format!(") AS v JOIN {table} t ON t.platform = v.column1 AND t.handle = v.column2"),
    });
    q
}

fn vetting_gist(bytes: Option<&[u8]>) -> Option<AccountVetting> {
    AccountVetting::decode(bytes.filter(|b| !b.is_empty())?).ok()
}

/// The platforms of the row's accounts as ",1,3,", for List's platform filter.
fn platforms(inf: &Influencer) -> String {
    let mut ids: Vec<String> = inf.accounts.iter().map(|a| a.platform.to_string()).collect();
    ids.sort_unstable();
    ids.dedup();
    joined(&ids)
}

/// ",a,b," so that `LIKE '%,a,%'` matches one whole element.
fn joined(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(",{},", items.join(","))
    }
}
