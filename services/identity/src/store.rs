//! Storage of invitations, refresh tokens and API keys, on PostgreSQL or SQLite: by hash only.
//! Invitations and refresh tokens are used at most once (the use is a conditional write, so
//! two concurrent uses cannot both succeed); API keys are used until they expire or are revoked.

use chorus_kit::Error;
use chorus_kit::clock::Clock;
use chorus_kit::storage::Database;
use sqlx::Row;

/// What a used invitation or refresh token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub subject: String,
    pub role: String,
    pub tenant: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    clock: Clock,
}

/// An API key's record, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: String,
    pub display_name: String,
    pub visible_prefix: String,
    pub scopes: Vec<String>,
    pub creator: String,
    pub create_time: i64,
    pub expire_time: i64,
    pub last_use_time: Option<i64>,
    pub revoke_time: Option<i64>,
    pub successor: Option<String>,
}

impl KeyRecord {
    /// Whether a token may be issued for the key at `now`.
    pub fn alive(&self, now: i64) -> bool {
        self.revoke_time.is_none() && self.expire_time > now
    }
}

/// A security-relevant act, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    pub event_time: i64,
    /// Who: the caller's subject.
    pub actor: String,
    pub tenant: String,
    /// What: `api_key.create`, `api_key.rotate`, `api_key.revoke`.
    pub action: String,
    /// To what: a resource name.
    pub target: String,
    /// From where: the peer address, then what a proxy said it forwarded for.
    pub source: String,
}

/// Every column of `api_keys` but the hash.
const KEY_COLUMNS: &str = "id, tenant, display_name, visible_prefix, scopes, creator, create_time, expire_time, \
                           last_use_time, revoke_time, successor";

/// How often a key's last use is written, at most: one write a minute per busy key.
const LAST_USE_GRAIN_MICROS: i64 = 60_000_000;

fn key_record(r: &sqlx::any::AnyRow) -> Result<KeyRecord, Error> {
    Ok(KeyRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        display_name: r.try_get("display_name")?,
        visible_prefix: r.try_get("visible_prefix")?,
        scopes: split(&r.try_get::<String, _>("scopes")?),
        creator: r.try_get("creator")?,
        create_time: r.try_get("create_time")?,
        expire_time: r.try_get("expire_time")?,
        last_use_time: r.try_get("last_use_time")?,
        revoke_time: r.try_get("revoke_time")?,
        successor: r.try_get("successor")?,
    })
}

fn split(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_owned).collect()
}

impl Store {
    pub fn new(db: Database, clock: Clock) -> Self {
        Store { db, clock }
    }

    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Stores an invitation (by its code's hash), revoking the unused codes the same caller
    /// made earlier for the same influencer: the newest is the one that works.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.create_invitation", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn create_invitation(
        &self,
        code_hash: &str,
        influencer: &str,
        scopes: &[String],
        created_by: &str,
        expire_time: i64,
    ) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM invitations WHERE influencer = $1 AND created_by = $2 AND use_time IS NULL")
            .bind(influencer)
            .bind(created_by)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO invitations (code_hash, influencer, scopes, created_by, create_time, expire_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(code_hash)
        .bind(influencer)
        .bind(scopes.join(" "))
        .bind(created_by)
        .bind(self.now_micros())
        .bind(expire_time)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses an invitation: what it grants, once, before it expires; `None` otherwise.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.use_invitation", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn use_invitation(&self, code_hash: &str) -> Result<Option<(String, Vec<String>)>, Error> {
        let now = self.now_micros();
        let row = sqlx::query(
            "UPDATE invitations SET use_time = $1 \
             WHERE code_hash = $2 AND use_time IS NULL AND expire_time > $1 \
             RETURNING influencer, scopes",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| Ok((r.try_get("influencer")?, split(&r.try_get::<String, _>("scopes")?))))
            .transpose()
    }

    /// Stores a refresh token (by its hash).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.add_refresh", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn add_refresh(&self, token_hash: &str, granted: &Granted, expire_time: i64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, subject, role, tenant, scopes, expire_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(&granted.subject)
        .bind(&granted.role)
        .bind(&granted.tenant)
        .bind(granted.scopes.join(" "))
        .bind(expire_time)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Uses a refresh token: deletes it and says what it granted, if it was alive.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.use_refresh", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn use_refresh(&self, token_hash: &str) -> Result<Option<Granted>, Error> {
        let row = sqlx::query(
            "DELETE FROM refresh_tokens WHERE token_hash = $1 AND expire_time > $2 \
             RETURNING subject, role, tenant, scopes",
        )
        .bind(token_hash)
        .bind(self.now_micros())
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| {
            Ok(Granted {
                subject: r.try_get("subject")?,
                role: r.try_get("role")?,
                tenant: r.try_get("tenant")?,
                scopes: split(&r.try_get::<String, _>("scopes")?),
            })
        })
        .transpose()
    }

    /// Deletes expired invitations and refresh tokens; how many.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.sweep", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn sweep(&self) -> Result<u64, Error> {
        let now = self.now_micros();
        let a = sqlx::query("DELETE FROM invitations WHERE expire_time <= $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        let b = sqlx::query("DELETE FROM refresh_tokens WHERE expire_time <= $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }

    /// Stores a new API key (by its hash).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.create_api_key", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn create_api_key(&self, key: &KeyRecord, key_hash: &str, audit: &AuditEvent) -> Result<(), Error> {
        let mut tx = self.db.pool.begin().await?;
        insert_key(&mut tx, key, key_hash).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's key `id`, if it has one.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.get_api_key", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn api_key(&self, tenant: &str, id: &str) -> Result<Option<KeyRecord>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(key_record).transpose()
    }

    /// Up to `limit` of the tenant's keys, newest first, after the key `after` when given.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.list_api_keys", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn list_api_keys(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        // Ids are UUIDv7, so their order is the order they were made in.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        )))
        .bind(tenant)
        .bind(after.unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(key_record).collect()
    }

    /// Rotates the tenant's key `id`: stores `successor` and ends the old key at `old_expire`
    /// (or its own expiry, if sooner), in one transaction. The old key, as it now is, or
    /// `None` when it is not the tenant's or was rotated, revoked or expired meanwhile.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.rotate_api_key", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn rotate_api_key(
        &self,
        tenant: &str,
        id: &str,
        successor: &KeyRecord,
        successor_hash: &str,
        old_expire: i64,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, Error> {
        let mut tx = self.db.pool.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET successor = $1, expire_time = CASE WHEN expire_time < $2 THEN expire_time ELSE $2 END \
             WHERE tenant = $3 AND id = $4 AND successor IS NULL AND revoke_time IS NULL AND expire_time > $5 \
             RETURNING {KEY_COLUMNS}"
        )))
        .bind(&successor.id)
        .bind(old_expire)
        .bind(tenant)
        .bind(id)
        .bind(self.now_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let old = key_record(&row)?;
        insert_key(&mut tx, successor, successor_hash).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(old))
    }

    /// Revokes the tenant's key `id` at the audit event's time (a revoked key keeps its first
    /// revoke time); the key as it now is, or `None` when the tenant has no such key.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.revoke_api_key", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn revoke_api_key(&self, tenant: &str, id: &str, audit: &AuditEvent) -> Result<Option<KeyRecord>, Error> {
        let mut tx = self.db.pool.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET revoke_time = COALESCE(revoke_time, $1) WHERE tenant = $2 AND id = $3 \
             RETURNING {KEY_COLUMNS}"
        )))
        .bind(audit.event_time)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(key_record(&row)?))
    }

    /// Up to `limit` audit events, newest first, of `tenant` (of every tenant when `None`),
    /// after the event `after` when given.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.list_audit_events", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn list_audit_events(
        &self,
        tenant: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, Error> {
        let rows = sqlx::query(
            "SELECT id, event_time, actor, tenant, action, target, source FROM audit_events \
             WHERE ($1 OR tenant = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant.is_none())
        .bind(tenant.unwrap_or_default())
        .bind(after.unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    event_time: r.try_get("event_time")?,
                    actor: r.try_get("actor")?,
                    tenant: r.try_get("tenant")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    source: r.try_get("source")?,
                })
            })
            .collect()
    }

    /// Uses a key: its record when it is alive, noting the use (at most once a minute, so a
    /// busy key costs one write a minute, not one per token).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db identity.use_api_key", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn use_api_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, Error> {
        let now = self.now_micros();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        )))
        .bind(key_hash)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(key) = row.as_ref().map(key_record).transpose()? else {
            return Ok(None);
        };
        if !key.alive(now) {
            return Ok(None);
        }
        if key.last_use_time.is_none_or(|t| t <= now - LAST_USE_GRAIN_MICROS) {
            sqlx::query(
                "UPDATE api_keys SET last_use_time = $1 \
                 WHERE id = $2 AND (last_use_time IS NULL OR last_use_time <= $3)",
            )
            .bind(now)
            .bind(&key.id)
            .bind(now - LAST_USE_GRAIN_MICROS)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(Some(key))
    }
}

async fn insert_key(conn: &mut sqlx::AnyConnection, key: &KeyRecord, key_hash: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant, key_hash, display_name, visible_prefix, scopes, creator, create_time, \
         expire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&key.id)
    .bind(&key.tenant)
    .bind(key_hash)
    .bind(&key.display_name)
    .bind(&key.visible_prefix)
    .bind(key.scopes.join(" "))
    .bind(&key.creator)
    .bind(key.create_time)
    .bind(key.expire_time)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_audit(conn: &mut sqlx::AnyConnection, e: &AuditEvent) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO audit_events (id, event_time, actor, tenant, action, target, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(e.event_time)
    .bind(&e.actor)
    .bind(&e.tenant)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.source)
    .execute(conn)
    .await?;
    Ok(())
}
