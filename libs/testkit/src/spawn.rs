//! Services under test: each on a fresh database (PostgreSQL or SQLite), on a free loopback
//! port, started by the kit's own runtime exactly as its binary and `chorus up` start it. A
//! [`Stack`] is one test's small Chorus: a bus, a clock and a signing secret its services share.

use std::time::Duration;

use chorus_kit::auth::Jwt;
use chorus_kit::clock::Clock;
use chorus_kit::config::{LogFormat, Secret, Source};
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::runtime::{Declared, Launched, Shared, launch};
use chorus_kit::storage::testing;

/// The signing secret of every test stack.
pub const SECRET: &str = "test-secret-at-least-16-chars";

/// The database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database of its own for one test: a new PostgreSQL database on the shared server
/// (`scripts/test` drops leftovers), or a SQLite file in a directory removed on drop.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn fresh(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => TestDb {
                url: testing::fresh_postgres_url().await.expect("create a test database"),
                _dir: None,
            },
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                TestDb {
                    url: testing::sqlite_url_in(dir.path()),
                    _dir: Some(dir),
                }
            }
        }
    }
}

/// Logs for tests, when `TEST_LOG` is set; silent otherwise.
pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = chorus_kit::telemetry::init("test", LogFormat::Pretty, None);
    }
}

/// One test's services and what they share.
#[derive(Debug)]
pub struct Stack {
    pub backend: Backend,
    pub bus: MemoryBus,
    pub clock: Clock,
    jwt: Jwt,
    dbs: Vec<TestDb>,
}

impl Stack {
    /// A stack on the system clock.
    pub fn new(backend: Backend) -> Stack {
        Stack::with_clock(backend, Clock::system())
    }

    /// A stack whose services read time from `clock` (a manual one moves only when told).
    pub fn with_clock(backend: Backend, clock: Clock) -> Stack {
        init_logs();
        Stack {
            backend,
            bus: MemoryBus::new(),
            clock,
            jwt: Jwt::new(&Secret::new(SECRET.to_owned())),
            dbs: Vec::new(),
        }
    }

    /// A fresh database on the stack's engine, kept as long as the stack; its URL.
    pub async fn database(&mut self) -> String {
        let db = TestDb::fresh(self.backend).await;
        let url = db.url.clone();
        self.dbs.push(db);
        url
    }

    /// Starts `service` over `database_url` on a free port, with the stack's secret and
    /// `settings` (environment variables) on top.
    pub async fn launch(&self, service: &Declared, database_url: &str, settings: &[(&str, String)]) -> Launched {
        let mut pairs: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.to_owned()),
            ("CHORUS_JWT_SECRET".into(), SECRET.into()),
            ("CHORUS_GRPC_ADDR".into(), "127.0.0.1:0".into()),
            ("CHORUS_DRAIN_TIMEOUT_MS".into(), "10000".into()),
        ];
        pairs.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let source = Source::from_pairs(pairs);
        let (listener, _) = chorus_kit::server::bind(([127, 0, 0, 1], 0).into())
            .await
            .expect("bind a loopback port");
        let shared = Shared {
            bus: std::sync::Arc::new(self.bus.clone()),
            clock: self.clock.clone(),
        };
        launch(service, &source, shared, listener)
            .await
            .unwrap_or_else(|e| panic!("start {}: {e} {:?}", service.spec.name, e.violations()))
    }

    /// A token of `tenant` holding `scopes`, valid ten minutes.
    pub fn token(&self, tenant: &str, scopes: &[&str]) -> String {
        self.jwt
            .mint("test-user", tenant, "admin", scopes, Duration::from_secs(600))
            .expect("mint a token")
    }
}
