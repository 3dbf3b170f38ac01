//! Idempotency keys on PostgreSQL and SQLite: a repeat gets the first answer (errors included)
//! and runs nothing, other parameters under the same key are refused, transient failures are
//! not kept, concurrent repeats wait for the first, answers recorded in a write's transaction
//! commit or roll back with it, and keys expire after the retention period.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chorus_kit::auth::Caller;
use chorus_kit::clock::Clock;
use chorus_kit::idempotency::Idempotency;
use chorus_kit::storage::{Database, KIT_MIGRATIONS, Migrations, testing};
use chorus_kit::{Error, ErrorCode};
use chorus_proto::types::Money;
use tonic::Code;

static EFFECTS: Migrations = Migrations {
    postgres: &[(2, "effects", "CREATE TABLE effects (id TEXT PRIMARY KEY)")],
    sqlite: &[(2, "effects", "CREATE TABLE effects (id TEXT PRIMARY KEY)")],
};

struct Fixture {
    db: Database,
    clock: Clock,
    keys: Idempotency,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(postgres: bool) -> Fixture {
    let (url, dir) = if postgres {
        (testing::fresh_postgres_url().await.unwrap(), None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (testing::sqlite_url_in(dir.path()), Some(dir))
    };
    let db = Database::connect(&url, &[&KIT_MIGRATIONS, &EFFECTS], 4).await.unwrap();
    let clock = Clock::manual(1_800_000_000_000_000);
    let keys = Idempotency::new(db.clone(), clock.clone(), Duration::from_secs(24 * 3600));
    Fixture {
        db,
        clock,
        keys,
        _dir: dir,
    }
}

fn caller(tenant: &str) -> Caller {
    Caller {
        subject: "someone".into(),
        tenant: tenant.into(),
        role: "admin".into(),
        scopes: BTreeSet::new(),
    }
}

fn usd(n: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_minor: n,
    }
}

/// Runs `once` with a work that counts its runs and answers `answer`.
async fn run(
    f: &Fixture,
    tenant: &str,
    key: &str,
    request: &Money,
    runs: &Arc<AtomicUsize>,
    answer: Result<i64, ErrorCode>,
) -> Result<Money, tonic::Status> {
    let runs = runs.clone();
    f.keys
        .once(&caller(tenant), "Test", key, request, move |_| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            match answer {
                Ok(n) => Ok(usd(n)),
                Err(code) => Err(Error::new(code, "the first answer")),
            }
        })
        .await
}

async fn a_repeat_gets_the_first_answer_and_runs_nothing(f: Fixture) {
    let runs = Arc::new(AtomicUsize::new(0));
    let first = run(&f, "t", "k1", &usd(5), &runs, Ok(1)).await.unwrap();
    let again = run(&f, "t", "k1", &usd(5), &runs, Ok(2)).await.unwrap();
    assert_eq!(first, again, "the first answer, not a new one");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Another tenant's key of the same name is its own.
    let other = run(&f, "u", "k1", &usd(5), &runs, Ok(3)).await.unwrap();
    assert_eq!(other.amount_minor, 3);
    // No key: every call runs.
    run(&f, "t", "", &usd(5), &runs, Ok(4)).await.unwrap();
    run(&f, "t", "", &usd(5), &runs, Ok(4)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

async fn other_parameters_under_a_key_are_refused(f: Fixture) {
    let runs = Arc::new(AtomicUsize::new(0));
    run(&f, "t", "k2", &usd(5), &runs, Ok(1)).await.unwrap();
    let err = run(&f, "t", "k2", &usd(6), &runs, Ok(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("k2"), "names the key: {}", err.message());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let long = "x".repeat(129);
    let err = run(&f, "t", &long, &usd(5), &runs, Ok(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn errors_are_kept_but_transient_ones_are_not(f: Fixture) {
    let runs = Arc::new(AtomicUsize::new(0));
    let err = run(&f, "t", "k3", &usd(5), &runs, Err(ErrorCode::NotFound))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let again = run(&f, "t", "k3", &usd(5), &runs, Ok(1)).await.unwrap_err();
    assert_eq!((again.code(), again.message()), (Code::NotFound, "the first answer"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // An outage is not the request's answer: the retry it invites runs.
    let err = run(&f, "t", "k4", &usd(5), &runs, Err(ErrorCode::Unavailable))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let retried = run(&f, "t", "k4", &usd(5), &runs, Ok(7)).await.unwrap();
    assert_eq!(retried.amount_minor, 7);
    // A request refused as invalid never ran: fixed, it may come back under its id.
    let err = run(&f, "t", "k9", &usd(-1), &runs, Err(ErrorCode::InvalidArgument))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fixed = run(&f, "t", "k9", &usd(1), &runs, Ok(8)).await.unwrap();
    assert_eq!(fixed.amount_minor, 8);
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

async fn concurrent_repeats_wait_for_the_first(f: Fixture) {
    let runs = Arc::new(AtomicUsize::new(0));
    let slow = |n: i64| {
        let runs = runs.clone();
        let keys = f.keys.clone();
        async move {
            keys.once(&caller("t"), "Test", "k5", &usd(5), move |_| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(usd(n))
            })
            .await
        }
    };
    let (a, b) = tokio::join!(slow(1), slow(2));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both answer with the one run");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

async fn an_answer_recorded_in_a_transaction_commits_with_it(f: Fixture) {
    let db = f.db.clone();
    // The write fails after recording: neither its effect nor its answer stays.
    let failing = f
        .keys
        .once(&caller("t"), "Test", "k6", &usd(5), move |claim| async move {
            let mut tx = db.pool.begin().await?;
            sqlx::query("INSERT INTO effects (id) VALUES ('a')")
                .execute(&mut *tx)
                .await?;
            claim.record(&mut tx, &usd(1)).await?;
            drop(tx);
            Err::<Money, _>(Error::new(ErrorCode::Aborted, "rolled back"))
        })
        .await;
    assert_eq!(failing.unwrap_err().code(), Code::Aborted);
    let db = f.db.clone();
    let ok = f
        .keys
        .once(&caller("t"), "Test", "k6", &usd(5), move |claim| async move {
            let mut tx = db.pool.begin().await?;
            sqlx::query("INSERT INTO effects (id) VALUES ('a')")
                .execute(&mut *tx)
                .await?;
            claim.record(&mut tx, &usd(2)).await?;
            tx.commit().await?;
            Ok(usd(2))
        })
        .await
        .unwrap();
    assert_eq!(ok.amount_minor, 2, "the key was free again after the rollback");
    let runs = Arc::new(AtomicUsize::new(0));
    let replay = run(&f, "t", "k6", &usd(5), &runs, Ok(3)).await.unwrap();
    assert_eq!(replay.amount_minor, 2);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn keys_expire_after_the_retention_period(f: Fixture) {
    let runs = Arc::new(AtomicUsize::new(0));
    run(&f, "t", "k7", &usd(5), &runs, Ok(1)).await.unwrap();
    f.clock.advance(Duration::from_secs(23 * 3600)).unwrap();
    assert_eq!(run(&f, "t", "k7", &usd(5), &runs, Ok(2)).await.unwrap().amount_minor, 1);
    assert_eq!(f.keys.sweep_once().await.unwrap(), 0, "kept 24 hours");
    f.clock.advance(Duration::from_secs(3600)).unwrap();
    // Past retention the key is free, swept or not.
    assert_eq!(run(&f, "t", "k7", &usd(6), &runs, Ok(3)).await.unwrap().amount_minor, 3);
    run(&f, "t", "k8", &usd(5), &runs, Ok(1)).await.unwrap();
    f.clock.advance(Duration::from_secs(25 * 3600)).unwrap();
    assert_eq!(f.keys.sweep_once().await.unwrap(), 2, "k7 and k8 are past retention");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(#[tokio::test] async fn $case() { super::$case(fixture(true).await).await; })*
        }
        mod sqlite {
            use super::*;
            $(#[tokio::test] async fn $case() { super::$case(fixture(false).await).await; })*
        }
    };
}

on_both!(
    a_repeat_gets_the_first_answer_and_runs_nothing,
    other_parameters_under_a_key_are_refused,
    errors_are_kept_but_transient_ones_are_not,
    concurrent_repeats_wait_for_the_first,
    an_answer_recorded_in_a_transaction_commits_with_it,
    keys_expire_after_the_retention_period,
);
