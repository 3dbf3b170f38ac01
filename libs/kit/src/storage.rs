//! Storage: one SQL pool over PostgreSQL (cluster) or SQLite (single node, embedded), chosen by
//! the URL. Services write portable SQL through sqlx's `Any` driver and keep a migration set per
//! engine; migrations are embedded in the binary and run at start-up, serialised across
//! replicas on PostgreSQL by sqlx's advisory lock.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions, Executor, SqlSafeStr};

use crate::error::Error;

/// The VALUES list of a multi-row statement: `($1, $2), ($3, $4)` for `rows` rows of `width`
/// parameters each, numbered from `first` (1 for a statement that binds nothing before them).
pub fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 7);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + r * width + c).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Which engine a pool talks to; a few statements differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// One embedded migration: version, description, SQL.
pub type MigrationFile = (i64, &'static str, &'static str);

/// A service's migrations, one list per engine.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub postgres: &'static [MigrationFile],
    pub sqlite: &'static [MigrationFile],
}

/// Migration versions from here on belong to the kit; a service numbers its own from 2 (1 is
/// the kit's outbox, from before the kit kept a range of its own).
pub const KIT_VERSIONS: i64 = 1_000_000;

/// The kit's tables in every service's database: the outbox and inbox, idempotency keys,
/// durable timers and dead letters.
pub static KIT_MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (1, "outbox", crate::events::outbox::MIGRATION_POSTGRES),
        (
            KIT_VERSIONS + 1,
            "kit: idempotency keys",
            crate::idempotency::MIGRATION_POSTGRES,
        ),
        (KIT_VERSIONS + 2, "kit: timers", crate::timers::MIGRATION_POSTGRES),
        (
            KIT_VERSIONS + 3,
            "kit: dead letters",
            crate::events::dead_letters::MIGRATION_POSTGRES,
        ),
    ],
    sqlite: &[
        (1, "outbox", crate::events::outbox::MIGRATION_SQLITE),
        (
            KIT_VERSIONS + 1,
            "kit: idempotency keys",
            crate::idempotency::MIGRATION_SQLITE,
        ),
        (KIT_VERSIONS + 2, "kit: timers", crate::timers::MIGRATION_SQLITE),
        (
            KIT_VERSIONS + 3,
            "kit: dead letters",
            crate::events::dead_letters::MIGRATION_SQLITE,
        ),
    ],
};

/// A connected, migrated database.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
}

static DRIVERS: Once = Once::new();

impl Database {
    /// Connects to `url` (`postgres://...` or `sqlite://path`), creating a SQLite file and its
    /// folder when missing, then runs the migrations of every set (a service's are the kit's
    /// [`KIT_MIGRATIONS`] and its own; `runtime::Spec::connect` lists both).
    pub async fn connect(url: &str, sets: &[&Migrations], max_connections: u32) -> Result<Self, Error> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::invalid_field(
                "DATABASE_URL",
                "expected a postgres:// or sqlite:// URL",
            ));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid_field("DATABASE_URL", format!("cannot parse: {e}")))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.min(4) } else { max_connections })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout queues
                        // writers instead of failing them.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                    } else {
                        // The services run short statements; PostgreSQL's JIT compiles any
                        // whose estimated cost is high (a stale estimate after a bulk load
                        // is enough) and spent 190 ms compiling a 1,000-row metrics UPDATE
                        // that runs in 80 ms (docs/performance.md).
                        conn.execute("SET jit = off").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| Error::internal("connect to database", e))?;
        let set: Vec<Migration> = sets
            .iter()
            .flat_map(|m| match backend {
                Backend::Postgres => m.postgres,
                Backend::Sqlite => m.sqlite,
            })
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(set)
            .run(&pool)
            .await
            .map_err(|e| Error::internal("run migrations", e))?;
        Ok(Database { pool, backend })
    }

    /// The engine's name as OpenTelemetry's `db.system.name` says it.
    pub fn system(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes a `sqlite://` URL create its file (and folder) when missing.
fn sqlite_url(url: &str) -> Result<String, Error> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path != ":memory:"
        && let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid_field("DATABASE_URL", format!("cannot create {}: {e}", dir.display())))?;
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        query.to_owned()
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Fresh databases for tests: one per test, on the shared PostgreSQL server or in a temporary
/// SQLite file.
pub mod testing {
    use sqlx::Connection;

    use super::*;

    /// The server tests create their databases on (`CHORUS_TEST_PG_URL`).
    pub fn postgres_server_url() -> String {
        std::env::var("CHORUS_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
    }

    /// Creates an empty PostgreSQL database named `chorus_test_<uuid>` and returns its URL.
    /// `scripts/test` drops leftovers before each run.
    pub async fn fresh_postgres_url() -> Result<String, Error> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let server = postgres_server_url();
        let name = format!("chorus_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&format!("{server}/postgres"))
            .await
            .map_err(|e| Error::internal("connect to test postgres", e))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| Error::internal("create test database", e))?;
        Ok(format!("{server}/{name}"))
    }

    /// A SQLite URL in `dir`.
    pub fn sqlite_url_in(dir: &std::path::Path) -> String {
        format!("sqlite://{}", dir.join("test.db").display())
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_from_the_first_parameter() {
        assert_eq!(placeholders(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 2, 4), "($4, $5)");
        assert_eq!(placeholders(0, 3, 1), "");
    }
}
