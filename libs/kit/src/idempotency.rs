//! Idempotency keys, Stripe's way, for every mutating RPC. A caller names an attempt with
//! `request_id` (or an `idempotency-key` header, which the gateway maps its `Idempotency-Key`
//! to); the key is the caller's tenant and that id. The first attempt runs and its answer is
//! kept for the retention period (24 hours by default), errors included; a repeat with the same
//! parameters gets that answer and changes nothing; a repeat with other parameters is
//! FAILED_PRECONDITION naming the key; a repeat while the first still runs waits for it.
//!
//! Two kinds of error are not kept, as Stripe keeps none for a request that never began to run:
//! INVALID_ARGUMENT (the caller fixes the request and sends it again under the same id), and
//! transient failures (UNAVAILABLE, ABORTED, INTERNAL, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED):
//! nothing was done, and the retry they invite must be able to succeed. The work
//! runs on a task of its own, so a caller that hangs up does not cut it short: its retry finds
//! the answer. A write records its answer inside its own transaction ([`Claim::record`]), so
//! the effect and the answer commit together; work that does not is recorded right after.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use tokio_util::sync::CancellationToken;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::{Error, ErrorCode};
use crate::storage::Database;

pub const MIGRATION_POSTGRES: &str = "
CREATE TABLE idempotency_keys (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    method TEXT NOT NULL,
    owner TEXT,
    lease_until BIGINT NOT NULL,
    code INTEGER,
    message TEXT,
    details BYTEA,
    response BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);";

pub const MIGRATION_SQLITE: &str = "
CREATE TABLE idempotency_keys (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    method TEXT NOT NULL,
    owner TEXT,
    lease_until BIGINT NOT NULL,
    code INTEGER,
    message TEXT,
    details BLOB,
    response BLOB,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);";

/// Longest request id, in characters.
pub const MAX_KEY: usize = 128;
/// How long a running first attempt holds its key before a repeat may take over (its process
/// died). Every handler answers well within it.
const LEASE: Duration = Duration::from_secs(120);
/// How long a repeat waits for a running first attempt before answering ABORTED.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// The store of first answers.
#[derive(Debug, Clone)]
pub struct Idempotency {
    db: Database,
    clock: Clock,
    retention: Duration,
}

/// The request id of a call: the `request_id` field, else the `idempotency-key` header.
pub fn key_of<T>(request: &tonic::Request<T>, request_id: &str) -> String {
    if !request_id.is_empty() {
        return request_id.to_owned();
    }
    request
        .metadata()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Checks a request id: at most [`MAX_KEY`] characters, no control characters.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.chars().count() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "request_id",
            format!("at most {MAX_KEY} characters, no control characters"),
        ));
    }
    Ok(())
}

/// Whether an answer with this code is kept: the outcome of the request, not of the moment,
/// nor of a request that was refused before it ran.
fn is_final(code: tonic::Code) -> bool {
    !matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::Unavailable
            | tonic::Code::Aborted
            | tonic::Code::Internal
            | tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Cancelled
            | tonic::Code::Unauthenticated
    )
}

fn fingerprint(method: &str, request: &impl Message) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(request.encode_to_vec());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller's namespace of keys: its tenant, or its subject when it has none (a service).
fn namespace(caller: &Caller) -> String {
    if caller.tenant.is_empty() {
        format!("subject:{}", caller.subject)
    } else {
        caller.tenant.clone()
    }
}

/// A first attempt's hold on its key. Writes call [`Claim::record`] inside their transaction.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    inner: Option<Arc<Held>>,
}

#[derive(Debug)]
struct Held {
    tenant: String,
    key: String,
    owner: String,
    recorded: AtomicBool,
}

impl Claim {
    /// No key: the work is not idempotent by key (the caller gave no request id).
    pub fn none() -> Self {
        Claim::default()
    }

    /// Records `answer` as this key's first answer, on `conn` inside the write's transaction,
    /// so it commits (or not) with the effect. ABORTED when the key was taken over meanwhile.
    pub async fn record(&self, conn: &mut AnyConnection, answer: &impl Message) -> Result<(), Error> {
        let Some(held) = &self.inner else {
            return Ok(());
        };
        let done = sqlx::query(
            "UPDATE idempotency_keys SET code = 0, response = $1, owner = NULL \
             WHERE tenant = $2 AND key = $3 AND owner = $4 AND code IS NULL",
        )
        .bind(answer.encode_to_vec())
        .bind(&held.tenant)
        .bind(&held.key)
        .bind(&held.owner)
        .execute(conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::new(
                ErrorCode::Aborted,
                format!("request_id {:?} was taken over by a retry; retry", held.key),
            ));
        }
        held.recorded.store(true, Ordering::Release);
        Ok(())
    }
}

enum Begun<T> {
    Fresh(Claim),
    Answered(Result<T, tonic::Status>),
}

impl Idempotency {
    pub fn new(db: Database, clock: Clock, retention: Duration) -> Self {
        Idempotency { db, clock, retention }
    }

    /// A mutating RPC, whole: checks that the caller holds `scope`, then runs `work` once for
    /// the caller's request id (`request_id` of the request, else the `idempotency-key`
    /// header), or answers as the first run did. The request, encoded whole, is the
    /// fingerprint a repeat must match.
    pub async fn serve<Req, T, W, F>(
        &self,
        request: tonic::Request<Req>,
        scope: &str,
        method: &str,
        request_id: fn(&Req) -> &str,
        work: W,
    ) -> Result<T, tonic::Status>
    where
        Req: Message + Send + 'static,
        T: Message + Default + Send + 'static,
        W: FnOnce(Caller, Req, Claim) -> F + Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let caller = Caller::of(&request)?.clone();
        caller.require(scope)?;
        let key = key_of(&request, request_id(request.get_ref()));
        let r = request.into_inner();
        let print = fingerprint(method, &r);
        let who = caller.clone();
        self.run(&who, &key, method, print, move |claim| work(caller, r, claim))
            .await
    }

    /// Runs `work` once for the caller's `key`, or answers as the first run did. `method` and
    /// `request` (encoded whole) are the fingerprint a repeat must match. An empty key runs
    /// `work` every time.
    pub async fn once<Req, T, W, F>(
        &self,
        caller: &Caller,
        method: &str,
        key: &str,
        request: &Req,
        work: W,
    ) -> Result<T, tonic::Status>
    where
        Req: Message,
        T: Message + Default + Send + 'static,
        W: FnOnce(Claim) -> F + Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        self.run(caller, key, method, fingerprint(method, request), work).await
    }

    async fn run<T, W, F>(
        &self,
        caller: &Caller,
        key: &str,
        method: &str,
        print: String,
        work: W,
    ) -> Result<T, tonic::Status>
    where
        T: Message + Default + Send + 'static,
        W: FnOnce(Claim) -> F + Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        if key.is_empty() {
            return work(Claim::none()).await.map_err(Into::into);
        }
        check_key(key)?;
        let tenant = namespace(caller);
        let claim = match self.begin(&tenant, key, method, &print).await? {
            Begun::Answered(answer) => return answer,
            Begun::Fresh(claim) => claim,
        };
        // On a task of its own: a caller that hangs up must not cut the work short between its
        // commit and the record of its answer.
        let outcome = tokio::spawn(tracing::Instrument::in_current_span(work(claim.clone())))
            .await
            .unwrap_or_else(|e| Err(Error::internal("idempotent work", e)));
        let held = claim.inner.as_ref().map(Arc::clone);
        let Some(held) = held else {
            return outcome.map_err(Into::into);
        };
        match outcome {
            Ok(answer) => {
                if !held.recorded.load(Ordering::Acquire) {
                    let mut conn = self.db.pool.acquire().await.map_err(Error::from)?;
                    if let Err(e) = claim.record(&mut conn, &answer).await {
                        tracing::warn!(key, error = %e, "could not keep the answer of a request id");
                    }
                }
                Ok(answer)
            }
            Err(e) => {
                let status: tonic::Status = e.into();
                let kept = if is_final(status.code()) {
                    self.keep_error(&held, &status).await
                } else {
                    self.release(&held).await
                };
                if let Err(e) = kept {
                    tracing::warn!(key, error = %e, "could not settle a request id after an error");
                }
                Err(status)
            }
        }
    }

    /// Takes the key, or finds its answer, or waits for the attempt that holds it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db idempotency.begin", otel.kind = "client", db.system.name = self.db.system()))]
    async fn begin<T: Message + Default>(
        &self,
        tenant: &str,
        key: &str,
        method: &str,
        print: &str,
    ) -> Result<Begun<T>, Error> {
        let waited = tokio::time::Instant::now();
        loop {
            let now = self.clock.now_micros();
            let owner = uuid::Uuid::now_v7().to_string();
            let lease_until = now + LEASE.as_micros() as i64;
            let expires_at = now + self.retention.as_micros() as i64;
            let taken = sqlx::query(
                "INSERT INTO idempotency_keys \
                 (tenant, key, fingerprint, method, owner, lease_until, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(key)
            .bind(print)
            .bind(method)
            .bind(&owner)
            .bind(lease_until)
            .bind(now)
            .bind(expires_at)
            .execute(&self.db.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(Begun::Fresh(self.claim(tenant, key, owner)));
            }
            let row = sqlx::query(
                "SELECT fingerprint, method, owner, lease_until, code, message, details, response, expires_at \
                 FROM idempotency_keys WHERE tenant = $1 AND key = $2",
            )
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.db.pool)
            .await?;
            let Some(row) = row else {
                continue; // released or swept in between: try again
            };
            let expires: i64 = row.try_get("expires_at")?;
            if expires <= now {
                // Past retention, not yet swept: the key is free again.
                sqlx::query("DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND expires_at <= $3")
                    .bind(tenant)
                    .bind(key)
                    .bind(now)
                    .execute(&self.db.pool)
                    .await?;
                continue;
            }
            let first_print: String = row.try_get("fingerprint")?;
            if first_print != print {
                let first_method: String = row.try_get("method")?;
                return Err(Error::new(
                    ErrorCode::FailedPrecondition,
                    format!(
                        "request_id {key:?} was first used for {first_method} with other parameters; \
                         use a new request_id for a different request"
                    ),
                ));
            }
            let code: Option<i32> = row.try_get("code")?;
            if let Some(code) = code {
                return Ok(Begun::Answered(replay(&row, code)?));
            }
            let lease: i64 = row.try_get("lease_until")?;
            if lease < now {
                // The attempt holding it died: take it over.
                let old: Option<String> = row.try_get("owner")?;
                let moved = sqlx::query(
                    "UPDATE idempotency_keys SET owner = $1, lease_until = $2 \
                     WHERE tenant = $3 AND key = $4 AND owner = $5 AND code IS NULL",
                )
                .bind(&owner)
                .bind(lease_until)
                .bind(tenant)
                .bind(key)
                .bind(old.unwrap_or_default())
                .execute(&self.db.pool)
                .await?;
                if moved.rows_affected() == 1 {
                    return Ok(Begun::Fresh(self.claim(tenant, key, owner)));
                }
                continue;
            }
            if waited.elapsed() >= WAIT {
                return Err(Error::new(
                    ErrorCode::Aborted,
                    format!("a request with request_id {key:?} is still in progress; retry later"),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn claim(&self, tenant: &str, key: &str, owner: String) -> Claim {
        Claim {
            inner: Some(Arc::new(Held {
                tenant: tenant.to_owned(),
                key: key.to_owned(),
                owner,
                recorded: AtomicBool::new(false),
            })),
        }
    }

    async fn keep_error(&self, held: &Held, status: &tonic::Status) -> Result<(), Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET code = $1, message = $2, details = $3, owner = NULL \
             WHERE tenant = $4 AND key = $5 AND owner = $6 AND code IS NULL",
        )
        .bind(status.code() as i32)
        .bind(status.message())
        .bind(status.details().to_vec())
        .bind(&held.tenant)
        .bind(&held.key)
        .bind(&held.owner)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    async fn release(&self, held: &Held) -> Result<(), Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND owner = $3 AND code IS NULL")
            .bind(&held.tenant)
            .bind(&held.key)
            .bind(&held.owner)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Deletes keys past their retention, once now and then every hour of the clock's time
    /// until `stop`.
    pub async fn sweep(self, stop: CancellationToken) -> Result<(), Error> {
        loop {
            match self.sweep_once().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "idempotency keys past retention deleted"),
                Err(e) => tracing::warn!(error = %e, "could not delete old idempotency keys"),
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = self.clock.sleep(Duration::from_secs(3600)) => {}
            }
        }
    }

    /// Deletes the keys past retention; how many.
    pub async fn sweep_once(&self) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(self.clock.now_micros())
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// The first answer, as it was given.
fn replay<T: Message + Default>(row: &sqlx::any::AnyRow, code: i32) -> Result<Result<T, tonic::Status>, Error> {
    if code == 0 {
        let bytes: Option<Vec<u8>> = row.try_get("response")?;
        let answer =
            T::decode(bytes.unwrap_or_default().as_slice()).map_err(|e| Error::internal("decode a kept answer", e))?;
        return Ok(Ok(answer));
    }
    let message: Option<String> = row.try_get("message")?;
    let details: Option<Vec<u8>> = row.try_get("details")?;
    Ok(Err(tonic::Status::with_details(
        tonic::Code::from_i32(code),
        message.unwrap_or_default(),
        details.unwrap_or_default().into(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_the_method_and_every_field() {
        let a = chorus_proto::types::Money {
            currency_code: "USD".into(),
            amount_minor: 5,
        };
        let b = chorus_proto::types::Money {
            amount_minor: 6,
            ..a.clone()
        };
        assert_eq!(fingerprint("M", &a), fingerprint("M", &a.clone()));
        assert_ne!(fingerprint("M", &a), fingerprint("M", &b));
        assert_ne!(fingerprint("M", &a), fingerprint("N", &a));
    }

    #[test]
    fn only_outcomes_of_the_request_are_kept() {
        assert!(is_final(tonic::Code::NotFound));
        assert!(is_final(tonic::Code::AlreadyExists));
        assert!(!is_final(tonic::Code::InvalidArgument), "a bad request never ran");
        assert!(is_final(tonic::Code::FailedPrecondition));
        assert!(!is_final(tonic::Code::Unavailable));
        assert!(!is_final(tonic::Code::Internal));
        assert!(!is_final(tonic::Code::Aborted));
    }

    #[test]
    fn keys_are_bounded() {
        assert!(check_key(&"k".repeat(MAX_KEY)).is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY + 1)).is_err());
        assert!(check_key("a\u{0}b").is_err());
    }
}
