//! The ledger in SQL: loads and locks what a batch touches, runs the rules of `domain` and
//! writes the result back in a few multi-row statements, all on the caller's connection so
//! the ledger, the service's rows and its outbox commit together.

use std::collections::{BTreeSet, HashMap};

use chorus_kit::error::Error;
use chorus_kit::storage::{Backend, placeholders};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::domain::{
    self, Account, AccountKind, AccountResult, AccountSpec, Balance, Book, Entry, Hold, PendingState, Transfer,
    TransferKind, TransferResult, TransferSpec,
};

/// The ledger's operations. It holds nothing: every call takes the caller's connection,
/// normally inside the caller's transaction.
///
/// Concurrency: on PostgreSQL a batch locks the transfers it names, then its accounts, each in
/// id order (`SELECT ... FOR UPDATE`), so two transactions touching the same accounts run one
/// after the other and never deadlock. On SQLite the first statement of a batch is a write,
/// which takes the database's single write lock (what `BEGIN IMMEDIATE` would do); the caller
/// must not have read in the same transaction before, or SQLite may refuse the upgrade
/// (SQLITE_BUSY). Two concurrent batches that create the same new transfer id: one of them
/// fails with ALREADY_EXISTS (a unique violation) and its retry answers `Exists`.
#[derive(Debug, Clone, Copy)]
pub struct Ledger;

const ACCOUNT_COLUMNS: &str = "tenant, id, kind, currency, flags, owner, debits_pending, debits_posted, \
     credits_pending, credits_posted, created_at, updated_at";
const TRANSFER_COLUMNS: &str = "tenant, id, debit_account, credit_account, amount, currency, kind, \
     pending_id, linked, code, reference, ts, hold_posted, hold_state, \
     debit_debits_pending, debit_debits_posted, debit_credits_pending, debit_credits_posted, \
     credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted";
const TRANSFER_WIDTH: usize = 22;
const ACCOUNT_WIDTH: usize = 12;

/// Rows per multi-row statement: under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT: usize = 1000;
/// Ids per `IN (...)` list.
const IDS_PER_SELECT: usize = 4000;

impl Ledger {
    /// Opens accounts, idempotently: an id already taken answers `Exists` (same fields) or
    /// `ExistsWithDifferentFields`; two transactions opening the same account race safely.
    /// Malformed specs (empty id, a currency that is not ISO 4217, both limits) and specs of
    /// different tenants fail the call with INVALID_ARGUMENT.
    pub async fn create_accounts(
        conn: &mut AnyConnection,
        backend: Backend,
        now: i64,
        accounts: &[AccountSpec],
    ) -> Result<Vec<AccountResult>, Error> {
        let Some(tenant) = one_tenant(accounts.iter().map(|a| a.tenant.as_str()), "accounts")? else {
            return Ok(Vec::new());
        };
        for (i, spec) in accounts.iter().enumerate() {
            domain::check_account(spec)
                .map_err(|(field, reason)| Error::invalid_field(format!("accounts[{i}].{field}"), reason))?;
        }
        take_write_lock(conn, backend).await?;
        // First of each id in the batch; later ones compare with it.
        let mut first: HashMap<&str, &AccountSpec> = HashMap::new();
        let fresh: Vec<&AccountSpec> = accounts.iter().filter(|a| first.insert(&a.id, a).is_none()).collect();
        let mut inserted = BTreeSet::new();
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            inserted.extend(insert_accounts(conn, now, chunk).await?);
        }
        let others: Vec<String> = first
            .keys()
            .filter(|id| !inserted.contains(**id))
            .map(|id| (*id).to_owned())
            .collect();
        let existing: HashMap<String, Account> = Ledger::accounts(conn, tenant, &others)
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut answered = BTreeSet::new();
        let mut results = Vec::with_capacity(accounts.len());
        for spec in accounts {
            let first_time = answered.insert(spec.id.as_str());
            if first_time && inserted.contains(&spec.id) {
                results.push(AccountResult::Created);
                continue;
            }
            // A repeat within the batch compares with its first; otherwise with the stored one.
            let stored = match existing.get(&spec.id) {
                Some(a) => a.spec(),
                None => first
                    .get(spec.id.as_str())
                    .map_or_else(|| spec.clone(), |s| (*s).clone()),
            };
            results.push(match domain::account_difference(&stored, spec) {
                None => AccountResult::Exists,
                Some(field) => AccountResult::ExistsWithDifferentFields { field },
            });
        }
        Ok(results)
    }

    /// Applies `transfers` in order (see `domain::apply`) and writes what succeeded; one result
    /// per transfer. All transfers of a call belong to one tenant; a call mixing tenants fails
    /// with INVALID_ARGUMENT and writes nothing.
    pub async fn create_transfers(
        conn: &mut AnyConnection,
        backend: Backend,
        now: i64,
        transfers: &[TransferSpec],
    ) -> Result<Vec<TransferResult>, Error> {
        let Some(tenant) = one_tenant(transfers.iter().map(|t| t.tenant.as_str()), "transfers")? else {
            return Ok(Vec::new());
        };
        take_write_lock(conn, backend).await?;
        let mut book = Book::default();
        let named: BTreeSet<&str> = transfers
            .iter()
            .flat_map(|t| [t.id.as_str(), t.kind.pending_id()])
            .filter(|id| !id.is_empty())
            .collect();
        for entry in select_entries(conn, backend == Backend::Postgres, tenant, &named).await? {
            book.transfers.insert(entry.transfer.id.clone(), entry);
        }
        let accounts: BTreeSet<&str> = transfers
            .iter()
            .flat_map(|t| [t.debit_account.as_str(), t.credit_account.as_str()])
            .chain(
                book.transfers
                    .values()
                    .flat_map(|e| [e.transfer.debit_account.as_str(), e.transfer.credit_account.as_str()]),
            )
            .filter(|id| !id.is_empty())
            .collect();
        let locked = select_accounts(conn, backend == Backend::Postgres, tenant, &accounts).await?;
        book.accounts = locked.into_iter().map(|a| (a.id.clone(), a)).collect();
        let applied = domain::apply(&mut book, now, transfers);
        let created: Vec<&Entry> = applied.created.iter().filter_map(|id| book.transfers.get(id)).collect();
        for chunk in created.chunks(ROWS_PER_STATEMENT) {
            insert_entries(conn, chunk).await?;
        }
        let changed: Vec<&Account> = applied
            .accounts_changed
            .iter()
            .filter_map(|id| book.accounts.get(id))
            .collect();
        for chunk in changed.chunks(ROWS_PER_STATEMENT) {
            update_balances(conn, tenant, chunk).await?;
        }
        let holds: Vec<&Entry> = applied
            .holds_changed
            .iter()
            .filter_map(|id| book.transfers.get(id))
            .collect();
        for chunk in holds.chunks(ROWS_PER_STATEMENT) {
            update_holds(conn, tenant, chunk).await?;
        }
        Ok(applied.results)
    }

    /// The tenant's accounts among `ids`, in the order asked; unknown ids are left out.
    pub async fn accounts(conn: &mut AnyConnection, tenant: &str, ids: &[String]) -> Result<Vec<Account>, Error> {
        let set: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let found = select_accounts(conn, false, tenant, &set).await?;
        let mut by_id: HashMap<String, Account> = found.into_iter().map(|a| (a.id.clone(), a)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// The tenant's transfers among `ids`, in the order asked; unknown ids are left out.
    pub async fn transfers(conn: &mut AnyConnection, tenant: &str, ids: &[String]) -> Result<Vec<Transfer>, Error> {
        let set: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let found = select_entries(conn, false, tenant, &set).await?;
        let mut by_id: HashMap<String, Transfer> =
            found.into_iter().map(|e| (e.transfer.id.clone(), e.transfer)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// An account's four balances right after the last transfer at or before `at` (unix
    /// micros): zero if it existed then with no transfer yet, `None` if it did not exist.
    pub async fn balance_as_of(
        conn: &mut AnyConnection,
        tenant: &str,
        account: &str,
        at: i64,
    ) -> Result<Option<Balance>, Error> {
        let mut latest: Option<(i64, Balance)> = None;
        for side in ["debit", "credit"] {
            let sql = format!(
                "SELECT ts, {side}_debits_pending, {side}_debits_posted, {side}_credits_pending, {side}_credits_posted \
                 FROM ledger_transfers WHERE tenant = $1 AND {side}_account = $2 AND ts <= $3 ORDER BY ts DESC LIMIT 1"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(account)
                .bind(at)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = row {
                let ts: i64 = row.try_get(0)?;
                let balance = balance_at(&row, 1)?;
                if latest.is_none_or(|(t, _)| ts > t) {
                    latest = Some((ts, balance));
                }
            }
        }
        if let Some((_, balance)) = latest {
            return Ok(Some(balance));
        }
        let created = Ledger::accounts(conn, tenant, &[account.to_owned()]).await?;
        Ok(created
            .first()
            .filter(|a| a.created_at <= at)
            .map(|_| Balance::default()))
    }

    /// An account's transfers in time order, each with the account's balances right after it,
    /// `limit` at a time after the cursor `after` (the previous page's `next`); `next` is
    /// `None` on the last page.
    pub async fn history(
        conn: &mut AnyConnection,
        tenant: &str,
        account: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<(Transfer, Balance)>, Option<i64>), Error> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        // One ordered index range per side, merged: cheap however long the history.
        let sql = format!(
            "SELECT * FROM (SELECT {TRANSFER_COLUMNS} FROM ledger_transfers \
               WHERE tenant = $1 AND debit_account = $2 AND ts > $3 ORDER BY ts LIMIT $4) AS d \
             UNION ALL \
             SELECT * FROM (SELECT {TRANSFER_COLUMNS} FROM ledger_transfers \
               WHERE tenant = $1 AND credit_account = $2 AND ts > $3 ORDER BY ts LIMIT $4) AS c \
             ORDER BY ts LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(account)
            .bind(after.unwrap_or(i64::MIN))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = entry_from(row)?;
            let balance = if entry.transfer.debit_account == account {
                entry.debit_after
            } else {
                entry.credit_after
            };
            page.push((entry.transfer, balance));
        }
        let next = if i64::try_from(page.len()).unwrap_or(i64::MAX) >= limit {
            page.last().map(|(t, _)| t.timestamp)
        } else {
            None
        };
        Ok((page, next))
    }

    /// What a pending transfer held, has posted and still holds; `None` if there is no such
    /// transfer or it is not a pending one.
    pub async fn pending_remaining(
        conn: &mut AnyConnection,
        tenant: &str,
        pending_id: &str,
    ) -> Result<Option<Hold>, Error> {
        let set = BTreeSet::from([pending_id]);
        let found = select_entries(conn, false, tenant, &set).await?;
        Ok(found.first().and_then(Entry::hold))
    }

    /// The tenant's accounts in id order, those of `owner` only when it is not empty, after
    /// the id `after`: a page of at most `limit`.
    pub async fn list_accounts(
        conn: &mut AnyConnection,
        tenant: &str,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Account>, Error> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant = $1 AND ($2 = '' OR owner = $2) \
             AND id > $3 ORDER BY id LIMIT {}",
            limit.max(1)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(owner)
            .bind(after.unwrap_or(""))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(account_from).collect()
    }
}

/// The tenant all items share; `None` for an empty batch.
fn one_tenant<'a>(mut tenants: impl Iterator<Item = &'a str>, what: &str) -> Result<Option<&'a str>, Error> {
    let Some(first) = tenants.next() else {
        return Ok(None);
    };
    if first.is_empty() {
        return Err(Error::invalid_field(format!("{what}[0].tenant"), "must not be empty"));
    }
    if let Some(i) = tenants.position(|t| t != first) {
        return Err(Error::invalid_field(
            format!("{what}[{}].tenant", i + 1),
            format!("a batch belongs to one tenant ({first})"),
        ));
    }
    Ok(Some(first))
}

/// On SQLite, makes the transaction a writer now (a write that changes nothing), so it
/// queues behind another writer instead of failing when it first writes after reading.
pub(crate) async fn take_write_lock(conn: &mut AnyConnection, backend: Backend) -> Result<(), Error> {
    if backend == Backend::Sqlite {
        sqlx::query("UPDATE ledger_accounts SET updated_at = updated_at WHERE 0 = 1")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts accounts not there yet; the ids it inserted.
async fn insert_accounts(conn: &mut AnyConnection, now: i64, specs: &[&AccountSpec]) -> Result<Vec<String>, Error> {
    let sql = format!(
        "INSERT INTO ledger_accounts ({ACCOUNT_COLUMNS}) VALUES {} ON CONFLICT (tenant, id) DO NOTHING RETURNING id",
        placeholders(specs.len(), ACCOUNT_WIDTH, 1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in specs {
        q = q
            .bind(&s.tenant)
            .bind(&s.id)
            .bind(s.kind.as_str())
            .bind(&s.currency)
            .bind(s.flags.bits())
            .bind(&s.owner)
            .bind(0_i64)
            .bind(0_i64)
            .bind(0_i64)
            .bind(0_i64)
            .bind(now)
            .bind(now);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(Error::from))
        .collect()
}

/// Accounts by id, in id order; locked (`FOR UPDATE`, PostgreSQL) when `lock`.
async fn select_accounts(
    conn: &mut AnyConnection,
    lock: bool,
    tenant: &str,
    ids: &BTreeSet<&str>,
) -> Result<Vec<Account>, Error> {
    let ids: Vec<&str> = ids.iter().copied().collect();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_SELECT) {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant = $1 AND id IN ({}) ORDER BY id{}",
            in_list(chunk.len()),
            if lock { " FOR UPDATE" } else { "" }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.push(account_from(&row)?);
        }
    }
    Ok(out)
}

/// Transfers by id, in id order; locked (`FOR UPDATE`, PostgreSQL) when `lock`.
async fn select_entries(
    conn: &mut AnyConnection,
    lock: bool,
    tenant: &str,
    ids: &BTreeSet<&str>,
) -> Result<Vec<Entry>, Error> {
    let ids: Vec<&str> = ids.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_SELECT) {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE tenant = $1 AND id IN ({}) ORDER BY id{}",
            in_list(chunk.len()),
            if lock { " FOR UPDATE" } else { "" }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.push(entry_from(&row)?);
        }
    }
    Ok(out)
}

/// `$2, $3, ...`: `n` ids after the tenant.
fn in_list(n: usize) -> String {
    (2..n + 2).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

async fn insert_entries(conn: &mut AnyConnection, entries: &[&Entry]) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) VALUES {}",
        placeholders(entries.len(), TRANSFER_WIDTH, 1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in entries {
        let t = &e.transfer;
        let (posted, state) = e.hold.map_or((0, 0), |(p, s)| (p, s.code()));
        q = q
            .bind(&t.tenant)
            .bind(&t.id)
            .bind(&t.debit_account)
            .bind(&t.credit_account)
            .bind(t.amount)
            .bind(&t.currency)
            .bind(t.kind.code())
            .bind(t.kind.pending_id())
            .bind(i64::from(t.linked))
            .bind(&t.code)
            .bind(&t.reference)
            .bind(t.timestamp)
            .bind(posted)
            .bind(state);
        for b in [e.debit_after, e.credit_after] {
            q = q
                .bind(b.debits_pending)
                .bind(b.debits_posted)
                .bind(b.credits_pending)
                .bind(b.credits_posted);
        }
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Writes accounts' new balances in one `UPDATE ... FROM (VALUES ...)`.
async fn update_balances(conn: &mut AnyConnection, tenant: &str, accounts: &[&Account]) -> Result<(), Error> {
    let sql = format!(
        "WITH v (id, dp, dpo, cp, cpo, ts) AS (VALUES {}) \
         UPDATE ledger_accounts SET debits_pending = v.dp, debits_posted = v.dpo, credits_pending = v.cp, \
           credits_posted = v.cpo, updated_at = v.ts \
         FROM v WHERE ledger_accounts.tenant = $1 AND ledger_accounts.id = v.id",
        placeholders(accounts.len(), 6, 2)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for a in accounts {
        q = q
            .bind(&a.id)
            .bind(a.debits_pending)
            .bind(a.debits_posted)
            .bind(a.credits_pending)
            .bind(a.credits_posted)
            .bind(a.updated_at);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Writes pending transfers' new progress.
async fn update_holds(conn: &mut AnyConnection, tenant: &str, entries: &[&Entry]) -> Result<(), Error> {
    let sql = format!(
        "WITH v (id, posted, state) AS (VALUES {}) \
         UPDATE ledger_transfers SET hold_posted = v.posted, hold_state = v.state \
         FROM v WHERE ledger_transfers.tenant = $1 AND ledger_transfers.id = v.id",
        placeholders(entries.len(), 3, 2)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for e in entries {
        let (posted, state) = e.hold.map_or((0, 0), |(p, s)| (p, s.code()));
        q = q.bind(&e.transfer.id).bind(posted).bind(state);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> Error {
    Error::internal(
        "read ledger",
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unknown {what} {value}")),
    )
}

fn account_from(row: &AnyRow) -> Result<Account, Error> {
    let kind: String = row.try_get(2)?;
    Ok(Account {
        tenant: row.try_get(0)?,
        id: row.try_get(1)?,
        kind: AccountKind::parse(&kind).ok_or_else(|| corrupt("account kind", &kind))?,
        currency: row.try_get(3)?,
        flags: domain::AccountFlags::from_bits(row.try_get(4)?),
        owner: row.try_get(5)?,
        debits_pending: row.try_get(6)?,
        debits_posted: row.try_get(7)?,
        credits_pending: row.try_get(8)?,
        credits_posted: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
    })
}

fn balance_at(row: &AnyRow, at: usize) -> Result<Balance, Error> {
    Ok(Balance {
        debits_pending: row.try_get(at)?,
        debits_posted: row.try_get(at + 1)?,
        credits_pending: row.try_get(at + 2)?,
        credits_posted: row.try_get(at + 3)?,
    })
}

fn entry_from(row: &AnyRow) -> Result<Entry, Error> {
    let kind: i64 = row.try_get(6)?;
    let state: i64 = row.try_get(13)?;
    let hold = match state {
        0 => None,
        s => Some((
            row.try_get(12)?,
            PendingState::from_code(s).ok_or_else(|| corrupt("hold state", s))?,
        )),
    };
    let transfer = Transfer {
        tenant: row.try_get(0)?,
        id: row.try_get(1)?,
        debit_account: row.try_get(2)?,
        credit_account: row.try_get(3)?,
        amount: row.try_get(4)?,
        currency: row.try_get(5)?,
        kind: TransferKind::from_code(kind, row.try_get(7)?).ok_or_else(|| corrupt("transfer kind", kind))?,
        linked: row.try_get::<i64, _>(8)? != 0,
        code: row.try_get(9)?,
        reference: row.try_get(10)?,
        timestamp: row.try_get(11)?,
    };
    Ok(Entry {
        transfer,
        hold,
        debit_after: balance_at(row, 14)?,
        credit_after: balance_at(row, 18)?,
    })
}
