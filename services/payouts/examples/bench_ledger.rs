//! Ledger speed on PostgreSQL (issue 13: >= 10,000 transfers/s in batches, and >= 0.3x the
//! rate of inserting the same rows plainly). Makes a fresh database, opens 100 budgets and
//! 10,000 payables, applies N transfers (holds, partial and full posts, voids, payouts) in
//! batches, then inserts the very rows the ledger wrote into a table of the same shape with a
//! bare multi-row INSERT, and prints both rates and their ratio.
//!
//! `cargo run --release -p chorus-payouts --example bench_ledger -- 100000 [batch]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use chorus_kit::storage::{Database, KIT_MIGRATIONS, Migrations, testing};
use chorus_payouts::ledger::{
    AccountFlags, AccountKind, AccountSpec, Ledger, MIGRATION_POSTGRES, MIGRATION_SQLITE, TransferKind, TransferResult,
    TransferSpec,
};
use sqlx::Row;

static LEDGER: Migrations = Migrations {
    postgres: &[(2, "ledger", MIGRATION_POSTGRES)],
    sqlite: &[(2, "ledger", MIGRATION_SQLITE)],
};

const TENANT: &str = "tenants/bench";
const BUDGETS: usize = 100;
const PAYABLES: usize = 10_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4_000);
    let url = testing::fresh_postgres_url().await.unwrap();
    let db = Database::connect(&url, &[&KIT_MIGRATIONS, &LEDGER], 4).await.unwrap();
    open_accounts(&db).await;
    let transfers = mix(n);

    let started = Instant::now();
    let mut refused = 0;
    for chunk in transfers.chunks(batch) {
        let mut tx = db.pool.begin().await.unwrap();
        let results = Ledger::create_transfers(&mut tx, db.backend, now(), chunk)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        refused += results.iter().filter(|r| **r != TransferResult::Created).count();
    }
    let ledger_secs = started.elapsed().as_secs_f64();
    let ledger_rate = n as f64 / ledger_secs;

    let plain_secs = plain_insert(&db, batch).await;
    let plain_rate = n as f64 / plain_secs;
    println!("transfers: {n} in batches of {batch}, {refused} refused (expected 0)");
    println!("ledger:       {ledger_secs:>7.2} s  {ledger_rate:>9.0} transfers/s");
    println!("plain insert: {plain_secs:>7.2} s  {plain_rate:>9.0} rows/s");
    println!("ratio:        {:.2}x", ledger_rate / plain_rate);
    db.close().await;
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn payable(i: usize) -> String {
    format!("payable-{i:05}")
}

fn budget(i: usize) -> String {
    format!("budget-{i:03}")
}

/// Funding, clearing, 100 budgets funded with plenty, 10,000 payables.
async fn open_accounts(db: &Database) {
    let spec = |id: String, kind, flags| AccountSpec {
        id,
        tenant: TENANT.into(),
        kind,
        currency: "USD".into(),
        flags,
        owner: "campaigns/bench".into(),
    };
    let mut accounts = vec![
        spec("funding".into(), AccountKind::Funding, AccountFlags::default()),
        spec("clearing".into(), AccountKind::Clearing, AccountFlags::default()),
    ];
    accounts.extend((0..BUDGETS).map(|i| spec(budget(i), AccountKind::Budget, AccountFlags::NO_OVERDRAFT)));
    accounts.extend((0..PAYABLES).map(|i| spec(payable(i), AccountKind::Payable, AccountFlags::default())));
    let mut tx = db.pool.begin().await.unwrap();
    Ledger::create_accounts(&mut tx, db.backend, now(), &accounts)
        .await
        .unwrap();
    let funds: Vec<TransferSpec> = (0..BUDGETS)
        .map(|i| {
            transfer(
                format!("fund-{i}"),
                "funding".into(),
                budget(i),
                1_000_000_000,
                TransferKind::Single,
                "deposit",
            )
        })
        .collect();
    Ledger::create_transfers(&mut tx, db.backend, now(), &funds)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn transfer(id: String, debit: String, credit: String, amount: i64, kind: TransferKind, code: &str) -> TransferSpec {
    TransferSpec {
        id,
        tenant: TENANT.into(),
        debit_account: debit,
        credit_account: credit,
        amount,
        currency: "USD".into(),
        kind,
        linked: false,
        code: code.into(),
        reference: "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70/deliverables/1".into(),
    }
}

/// Half holds (budget -> payable), then for earlier holds a partial post, a full post or a
/// void, and payouts (payable -> clearing) of what was posted: what activations, approvals,
/// cancellations and payout runs do. A simple LCG keeps it reproducible.
fn mix(n: usize) -> Vec<TransferSpec> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    let mut out = Vec::with_capacity(n);
    // Open holds: (id, payable, amount left).
    let mut open: Vec<(String, usize, i64)> = Vec::new();
    let mut paid: Vec<(usize, i64)> = Vec::new();
    while out.len() < n {
        let id = format!("t-{:08}", out.len());
        let roll = next() % 100;
        if roll < 50 || open.len() < 100 {
            let (b, p, amount) = (next() % BUDGETS, next() % PAYABLES, 1_000 + (next() % 50_000) as i64);
            out.push(transfer(
                id.clone(),
                budget(b),
                payable(p),
                amount,
                TransferKind::Pending,
                "hold",
            ));
            open.push((id, p, amount));
        } else if roll < 90 || paid.is_empty() {
            let (pending_id, p, left) = open.swap_remove(next() % open.len());
            let kind = if roll < 60 {
                TransferKind::VoidPending {
                    pending_id: pending_id.clone(),
                }
            } else {
                TransferKind::PostPending {
                    pending_id: pending_id.clone(),
                }
            };
            let partial = roll >= 80 && left > 1;
            let amount = if partial { left / 2 } else { 0 };
            let voided = matches!(kind, TransferKind::VoidPending { .. });
            out.push(transfer(
                id,
                String::new(),
                String::new(),
                amount,
                kind,
                if voided { "release" } else { "approve" },
            ));
            if partial {
                open.push((pending_id, p, left - amount));
                paid.push((p, amount));
            } else if !voided {
                paid.push((p, left));
            }
        } else {
            let (p, amount) = paid.swap_remove(next() % paid.len());
            out.push(transfer(
                id,
                payable(p),
                "clearing".into(),
                amount,
                TransferKind::Single,
                "payout",
            ));
        }
    }
    out
}

/// Inserts the rows the ledger wrote into `bench_plain` (same columns and indexes), a batch per
/// transaction and 1,000 rows per statement as the ledger does; the seconds it took.
async fn plain_insert(db: &Database, batch: usize) -> f64 {
    sqlx::query("CREATE TABLE bench_plain (LIKE ledger_transfers INCLUDING ALL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT * FROM ledger_transfers WHERE id LIKE 't-%' ORDER BY ts")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let text = [0, 1, 2, 3, 5, 7, 9, 10];
    let width = 22;
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let mut tx = db.pool.begin().await.unwrap();
        for part in chunk.chunks(1_000) {
            let mut sql = String::from("INSERT INTO bench_plain VALUES ");
            for r in 0..part.len() {
                if r > 0 {
                    sql.push_str(", ");
                }
                let cols: Vec<String> = (0..width).map(|c| format!("${}", r * width + c + 1)).collect();
                sql.push_str(&format!("({})", cols.join(", ")));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in part {
                for c in 0..width {
                    q = if text.contains(&c) {
                        q.bind(row.get::<String, _>(c))
                    } else {
                        q.bind(row.get::<i64, _>(c))
                    };
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    started.elapsed().as_secs_f64()
}
