//! Storage of invitations and refresh tokens, on PostgreSQL or SQLite: by hash only, each used
//! at most once (the use is a conditional write, so two concurrent uses cannot both succeed).

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
}
