//! Endpoints, deliveries and attempts, in SQL both engines accept. Every read and write of a
//! tenant's data names the tenant; deliveries are reached through their endpoint's tenant.

use chorus_kit::Error;
use chorus_kit::clock::timestamp;
use chorus_kit::storage::{Backend, Database, placeholders};
use chorus_proto::webhooks::{DeliveryAttempt, DeliveryState, WebhookDelivery, WebhookEndpoint};
use sqlx::Row;
use sqlx::any::AnyRow;

const ENDPOINT_COLUMNS: &str = "id, tenant, url, description, event_types, disabled, disabled_reason, \
     disable_time, secret, previous_secret, previous_secret_expire_time, create_time, update_time";

const DELIVERY_COLUMNS: &str =
    "d.id, d.endpoint_id, d.event_id, d.event_type, d.state, d.next_attempt_time, d.create_time";

/// An endpoint as stored, secrets included (they never leave through the API but once).
#[derive(Clone)]
pub struct Endpoint {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub disabled: bool,
    pub disabled_reason: String,
    pub disable_time: Option<i64>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expire_time: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn name(&self) -> String {
        format!("webhookEndpoints/{}", self.id)
    }

    /// As the API shows it: never a secret.
    pub fn to_proto(&self) -> WebhookEndpoint {
        WebhookEndpoint {
            name: self.name(),
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            disabled: self.disabled,
            disabled_reason: self.disabled_reason.clone(),
            disable_time: self.disable_time.map(timestamp),
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            previous_secret_expire_time: self.previous_secret_expire_time.map(timestamp),
        }
    }
}

/// The stored form of a type filter: `,a,b,`, so one type is found with LIKE `%,a,%`.
fn types_column(types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(",{},", types.join(","))
    }
}

fn endpoint(r: &AnyRow) -> Result<Endpoint, Error> {
    let types: String = r.try_get("event_types")?;
    Ok(Endpoint {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        event_types: types.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        disable_time: r.try_get("disable_time")?,
        secret: r.try_get("secret")?,
        previous_secret: r.try_get("previous_secret")?,
        previous_secret_expire_time: r.try_get("previous_secret_expire_time")?,
        create_time: r.try_get("create_time")?,
        update_time: r.try_get("update_time")?,
    })
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// A delivery claimed for an attempt, with what the attempt needs of its endpoint.
#[derive(Clone)]
pub struct Due {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub body: Vec<u8>,
    /// Attempts made in the current schedule.
    pub attempts: i64,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expire_time: Option<i64>,
}

impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Due")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: i64,
    /// Empty when the attempt succeeded.
    pub error: String,
    pub duration_ms: i64,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_empty()
    }

    /// 410 Gone: the receiver asks never to be sent anything again (Standard Webhooks).
    pub fn gone(&self) -> bool {
        self.status_code == 410
    }
}

/// What follows a failed attempt, decided by the worker's schedule.
#[derive(Debug, Clone)]
pub enum Next {
    Succeeded,
    /// Retry at this time.
    RetryAt(i64),
    /// The schedule ran out (or the endpoint is gone): the delivery failed, and the endpoint is
    /// disabled with `reason` as `disable` says.
    Failed {
        reason: String,
        disable: Disable,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Disable {
    /// When the endpoint's failures began at or before this time.
    IfFailingSince(i64),
    Now,
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Store { db }
    }

    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant, url, description, event_types, disabled, \
             disabled_reason, disable_time, secret, previous_secret, previous_secret_expire_time, \
             failing_since, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, '', NULL, $7, NULL, NULL, NULL, $8, $8)",
        )
        .bind(&e.id)
        .bind(&e.tenant)
        .bind(&e.url)
        .bind(&e.description)
        .bind(types_column(&e.event_types))
        .bind(i64::from(e.disabled))
        .bind(&e.secret)
        .bind(e.create_time)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn endpoint(&self, tenant: &str, id: &str) -> Result<Option<Endpoint>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Up to `limit` of the tenant's endpoints, newest first (ids are UUIDv7), after `after`.
    pub async fn endpoints(&self, tenant: &str, after: &str, limit: usize) -> Result<Vec<Endpoint>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant = $1 AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(tenant)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(endpoint).collect()
    }

    /// Applies `changes` in one statement; enabling clears the reason, the disable time and
    /// the failure streak. The endpoint as it now is, or `None` when it is not the tenant's.
    pub async fn update_endpoint(
        &self,
        tenant: &str,
        id: &str,
        changes: &Changes,
        now: i64,
    ) -> Result<Option<Endpoint>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET \
             url = COALESCE($3, url), \
             description = COALESCE($4, description), \
             event_types = COALESCE($5, event_types), \
             disabled = COALESCE($6, disabled), \
             disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason ELSE '' END, \
             disable_time = CASE WHEN $6 IS NULL THEN disable_time WHEN $6 = 1 THEN $7 ELSE NULL END, \
             failing_since = CASE WHEN $6 = 0 THEN NULL ELSE failing_since END, \
             update_time = $7 \
             WHERE tenant = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(tenant)
        .bind(id)
        .bind(changes.url.clone())
        .bind(changes.description.clone())
        .bind(changes.event_types.as_deref().map(types_column))
        .bind(changes.disabled.map(i64::from))
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Deletes the endpoint with its deliveries and attempts; whether it was the tenant's.
    pub async fn delete_endpoint(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes `secret` current; the old one signs on until `previous_until` (`None`: retired
    /// now). Assignments read the row as it was, so the old secret moves over in the same
    /// statement.
    pub async fn rotate_secret(
        &self,
        tenant: &str,
        id: &str,
        secret: &str,
        previous_until: Option<i64>,
        now: i64,
    ) -> Result<Option<Endpoint>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET \
             previous_secret = CASE WHEN $4 IS NULL THEN NULL ELSE secret END, \
             previous_secret_expire_time = $4, secret = $3, update_time = $5 \
             WHERE tenant = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(tenant)
        .bind(id)
        .bind(secret)
        .bind(previous_until)
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        row.as_ref().map(endpoint).transpose()
    }

    /// Whether the tenant has an enabled endpoint, so an event nobody wants is not rendered.
    pub async fn listens(&self, tenant: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT 1 AS one FROM webhook_endpoints WHERE tenant = $1 AND disabled = 0 LIMIT 1")
            .bind(tenant)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A delivery of the event for every enabled endpoint of `tenant` subscribed to its type,
    /// due at `now`; one statement, and a redelivered event adds nothing (one delivery per
    /// endpoint and event). How many were added.
    pub async fn enqueue(
        &self,
        tenant: &str,
        event_id: &str,
        event_type: &str,
        body: &[u8],
        now: i64,
    ) -> Result<u64, Error> {
        let like = format!(
            "%,{},%",
            event_type.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, state, attempts, \
             next_attempt_time, lease_until, create_time) \
             SELECT e.id || '/' || $2, e.id, $2, $3, $4, 1, 0, $5, NULL, $5 FROM webhook_endpoints e \
             WHERE e.tenant = $1 AND e.disabled = 0 AND (e.event_types = '' OR e.event_types LIKE $6 ESCAPE '\\') \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(event_id)
        .bind(event_type)
        .bind(body)
        .bind(now)
        .bind(like)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` deliveries due by `now` whose endpoint is enabled and that nobody
    /// holds, until `lease_until` (wall-clock micros: a lease is not business time, so a
    /// simulated clock's jump cannot end one early).
    pub async fn claim(&self, now: i64, wall_now: i64, lease_until: i64, limit: usize) -> Result<Vec<Due>, Error> {
        let lock = match self.db.backend {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let ids: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET lease_until = $3 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
              WHERE d.state = 1 AND e.disabled = 0 AND d.next_attempt_time <= $1 \
              AND (d.lease_until IS NULL OR d.lease_until <= $2) \
              ORDER BY d.next_attempt_time LIMIT $4{lock}) \
             RETURNING id"
        )))
        .bind(now)
        .bind(wall_now)
        .bind(lease_until)
        .bind(limit as i64)
        .fetch_all(&self.db.pool)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT d.id, d.endpoint_id, d.event_id, d.body, d.attempts, e.url, e.secret, e.previous_secret, \
             e.previous_secret_expire_time FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.id IN {}",
            placeholders(1, ids.len(), 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Due {
                    id: r.try_get("id")?,
                    endpoint_id: r.try_get("endpoint_id")?,
                    event_id: r.try_get("event_id")?,
                    body: r.try_get("body")?,
                    attempts: r.try_get("attempts")?,
                    url: r.try_get("url")?,
                    secret: r.try_get("secret")?,
                    previous_secret: r.try_get("previous_secret")?,
                    previous_secret_expire_time: r.try_get("previous_secret_expire_time")?,
                })
            })
            .collect()
    }

    /// When the next delivery of an enabled endpoint is due.
    pub async fn next_due(&self) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "SELECT MIN(d.next_attempt_time) AS due FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.state = 1 AND e.disabled = 0",
        )
        .fetch_one(&self.db.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Records an attempt and what follows it, releasing the lease, in one transaction; the
    /// endpoint's failure streak starts or ends with it, and the endpoint is disabled when
    /// `next` says so. Whether the endpoint was disabled.
    pub async fn record(&self, due: &Due, outcome: &Outcome, next: &Next, now: i64) -> Result<bool, Error> {
        let mut tx = self.db.pool.begin().await?;
        // Writes first: on SQLite a transaction that reads, then writes, fails when another
        // writer committed in between.
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, seq, attempt_time, status_code, error, duration_ms) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM webhook_attempts WHERE delivery_id = $1",
        )
        .bind(&due.id)
        .bind(now)
        .bind(outcome.status_code)
        .bind(&outcome.error)
        .bind(outcome.duration_ms)
        .execute(&mut *tx)
        .await?;
        let (state, next_time) = match next {
            Next::Succeeded => (DeliveryState::Succeeded, None),
            Next::RetryAt(at) => (DeliveryState::Pending, Some(*at)),
            Next::Failed { .. } => (DeliveryState::Failed, None),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_time = $3, \
             lease_until = NULL WHERE id = $1",
        )
        .bind(&due.id)
        .bind(state as i64)
        .bind(next_time)
        .execute(&mut *tx)
        .await?;
        let mut disabled = false;
        if outcome.succeeded() {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
                .bind(&due.endpoint_id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1")
                .bind(&due.endpoint_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if let Next::Failed { reason, disable } = next {
                let since = match disable {
                    Disable::Now => i64::MAX,
                    Disable::IfFailingSince(t) => *t,
                };
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET disabled = 1, disabled_reason = $2, disable_time = $3, update_time = $3 \
                     WHERE id = $1 AND disabled = 0 AND failing_since <= $4",
                )
                .bind(&due.endpoint_id)
                .bind(reason)
                .bind(now)
                .bind(since)
                .execute(&mut *tx)
                .await?;
                disabled = done.rows_affected() > 0;
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    /// Up to `limit` deliveries of the tenant's endpoint, newest first (event ids are UUIDv7),
    /// before the event `before`, each with its attempts; `None` when the endpoint is not the
    /// tenant's.
    pub async fn deliveries(
        &self,
        tenant: &str,
        endpoint_id: &str,
        before: &str,
        limit: usize,
    ) -> Result<Option<Vec<WebhookDelivery>>, Error> {
        if self.endpoint(tenant, endpoint_id).await?.is_none() {
            return Ok(None);
        }
        // One snapshot for the deliveries and their attempts, so an attempt committed between
        // the two reads cannot appear beside its delivery's previous state.
        let mut tx = self.db.pool.begin().await?;
        if self.db.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = $1 \
             AND ($2 = '' OR d.event_id < $2) ORDER BY d.event_id DESC LIMIT $3"
        )))
        .bind(endpoint_id)
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut out: Vec<(String, WebhookDelivery)> = rows.iter().map(delivery).collect::<Result<_, _>>()?;
        attach_attempts(&mut tx, &mut out).await?;
        tx.commit().await?;
        Ok(Some(out.into_iter().map(|(_, d)| d).collect()))
    }

    /// Sends the delivery again from the start of the schedule, now. `None` when the tenant
    /// has no such delivery.
    pub async fn replay(
        &self,
        tenant: &str,
        endpoint_id: &str,
        event_id: &str,
        now: i64,
    ) -> Result<Option<WebhookDelivery>, Error> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 1, attempts = 0, next_attempt_time = $4, lease_until = NULL \
             WHERE endpoint_id = $2 AND event_id = $3 \
             AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE tenant = $1)",
        )
        .bind(tenant)
        .bind(endpoint_id)
        .bind(event_id)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.event_id = $2"
        )))
        .bind(endpoint_id)
        .bind(event_id)
        .fetch_one(&self.db.pool)
        .await?;
        let mut out = vec![delivery(&row)?];
        let mut conn = self.db.pool.acquire().await?;
        attach_attempts(&mut conn, &mut out).await?;
        Ok(out.pop().map(|(_, d)| d))
    }
}

/// Each delivery's attempts, oldest first.
async fn attach_attempts(
    conn: &mut sqlx::AnyConnection,
    deliveries: &mut [(String, WebhookDelivery)],
) -> Result<(), Error> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT delivery_id, attempt_time, status_code, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id IN {} ORDER BY delivery_id, seq",
        placeholders(1, deliveries.len(), 1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, _) in deliveries.iter() {
        q = q.bind(id.clone());
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("delivery_id")?;
        if let Some((_, d)) = deliveries.iter_mut().find(|(d, _)| *d == id) {
            d.attempts.push(DeliveryAttempt {
                attempt_time: Some(timestamp(r.try_get("attempt_time")?)),
                status_code: r.try_get::<i64, _>("status_code")? as i32,
                error: r.try_get("error")?,
                duration_ms: r.try_get("duration_ms")?,
            });
        }
    }
    Ok(())
}

/// A delivery row as the API shows it, beside its id.
fn delivery(r: &AnyRow) -> Result<(String, WebhookDelivery), Error> {
    let endpoint: String = r.try_get("endpoint_id")?;
    let event: String = r.try_get("event_id")?;
    let state: i64 = r.try_get("state")?;
    Ok((
        r.try_get("id")?,
        WebhookDelivery {
            name: format!("webhookEndpoints/{endpoint}/deliveries/{event}"),
            event_type: r.try_get("event_type")?,
            state: state as i32,
            next_attempt_time: r.try_get::<Option<i64>, _>("next_attempt_time")?.map(timestamp),
            create_time: Some(timestamp(r.try_get("create_time")?)),
            attempts: Vec::new(),
        },
    ))
}
