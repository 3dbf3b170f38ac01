//! Services under test: each on a fresh database (PostgreSQL or SQLite), on a free loopback
//! port, started by the kit's own runtime exactly as its binary and `chorus up` start it. A
//! [`Stack`] is one test's small Chorus: a bus, a clock and a signing secret its services share.

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::{Grant, Issuer, SigningKey, role};
use chorus_kit::clock::Clock;
use chorus_kit::config::{LogFormat, Source};
use chorus_kit::events::Bus;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::runtime::{Declared, Launched, Shared, launch};
use chorus_kit::storage::testing;

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

/// One test's services and what they share: a bus, a clock, and a token issuer whose public
/// keys every service is given (`CHORUS_JWKS`). A service that calls others under its own
/// identity gets client credentials, and the stack runs the identity service to honour them.
#[derive(Debug)]
pub struct Stack {
    pub backend: Backend,
    /// The in-process bus the services share, unless [`Stack::use_bus`] gave them another.
    pub bus: MemoryBus,
    /// The bus given by [`Stack::use_bus`] (Redis on a fault fixture), instead of `bus`.
    other_bus: Option<Arc<dyn Bus>>,
    pub clock: Clock,
    key: SigningKey,
    issuer: Issuer,
    /// Client id, secret and scopes of the services that call others.
    clients: Vec<(String, String, Vec<String>)>,
    identity: Option<Launched>,
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
        let key = SigningKey::generate().expect("an Ed25519 key");
        Stack {
            backend,
            bus: MemoryBus::new(),
            other_bus: None,
            clock,
            issuer: Issuer::new(key.clone(), chorus_kit::auth::DEFAULT_MAX_LIFETIME),
            key,
            clients: Vec::new(),
            identity: None,
            dbs: Vec::new(),
        }
    }

    /// Services launched from now on share `bus` (a Redis bus on a
    /// [`PrivateRedis`](crate::fault::PrivateRedis), say) instead of the in-process one.
    pub fn use_bus(&mut self, bus: Arc<dyn Bus>) -> &mut Self {
        self.other_bus = Some(bus);
        self
    }

    /// The bus the stack's services share.
    pub fn shared_bus(&self) -> Arc<dyn Bus> {
        match &self.other_bus {
            Some(bus) => bus.clone(),
            None => Arc::new(self.bus.clone()),
        }
    }

    /// A fresh database on the stack's engine, kept as long as the stack; its URL.
    pub async fn database(&mut self) -> String {
        let db = TestDb::fresh(self.backend).await;
        let url = db.url.clone();
        self.dbs.push(db);
        url
    }

    /// Starts `service` over `database_url` on a free port, with the stack's keys and
    /// `settings` (environment variables) on top.
    pub async fn launch(&mut self, service: &Declared, database_url: &str, settings: &[(&str, String)]) -> Launched {
        let mut pairs: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.to_owned()),
            ("CHORUS_GRPC_ADDR".into(), "127.0.0.1:0".into()),
            ("CHORUS_DRAIN_TIMEOUT_MS".into(), "10000".into()),
            (
                "CHORUS_JWKS".into(),
                chorus_kit::auth::verify::jwks_json(&self.issuer.jwks()),
            ),
        ];
        if !service.spec.needs.is_empty() {
            let (url, secret) = self.identity_for(service).await;
            pairs.push(("CHORUS_IDENTITY_URL".into(), url));
            pairs.push(("CHORUS_CLIENT_SECRET".into(), secret));
        }
        pairs.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        self.start(service, pairs).await
    }

    async fn start(&self, service: &Declared, pairs: Vec<(String, String)>) -> Launched {
        let source = Source::from_pairs(pairs);
        let (listener, _) = chorus_kit::server::bind(([127, 0, 0, 1], 0).into())
            .await
            .expect("bind a loopback port");
        let shared = Shared {
            bus: self.shared_bus(),
            clock: self.clock.clone(),
        };
        launch(service, &source, shared, listener)
            .await
            .unwrap_or_else(|e| panic!("start {}: {e} {:?}", service.spec.name, e.violations()))
    }

    /// The identity service's URL and `service`'s client secret, (re)starting the identity
    /// service when this client is new to it.
    async fn identity_for(&mut self, service: &Declared) -> (String, String) {
        let id = service.spec.name.to_owned();
        if let (Some(identity), Some((_, secret, _))) = (&self.identity, self.clients.iter().find(|c| c.0 == id)) {
            return (format!("http://{}", identity.addr), secret.clone());
        }
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let scopes = service.spec.needs.iter().map(|s| (*s).to_owned()).collect();
        self.clients.push((id, secret.clone(), scopes));
        if let Some(old) = self.identity.take() {
            old.shutdown().await.expect("stop the identity service");
        }
        let clients: Vec<serde_json::Value> = self
            .clients
            .iter()
            .map(|(id, secret, scopes)| {
                serde_json::json!({
                    "id": id,
                    "secret_sha256": sha256_hex(secret),
                    "role": role::SERVICE,
                    "scopes": scopes,
                })
            })
            .collect();
        let db = TestDb::fresh(Backend::Sqlite).await;
        let pairs = vec![
            ("DATABASE_URL".to_owned(), db.url.clone()),
            ("CHORUS_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("CHORUS_SIGNING_KEY".to_owned(), self.key.to_pem()),
            (
                "CHORUS_IDENTITY_CLIENTS".to_owned(),
                serde_json::Value::from(clients).to_string(),
            ),
        ];
        self.dbs.push(db);
        let identity = self.start(&chorus_identity_declared(), pairs).await;
        let url = format!("http://{}", identity.addr);
        self.identity = Some(identity);
        (url, secret)
    }

    /// A token of `tenant` holding `scopes`, valid ten minutes.
    pub fn token(&self, tenant: &str, scopes: &[&str]) -> String {
        self.mint(&Grant {
            subject: "test-user".into(),
            tenant: tenant.into(),
            role: role::ADMIN.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// A token for `grant`, valid ten minutes.
    pub fn mint(&self, grant: &Grant) -> String {
        self.issuer
            .mint(grant, Duration::from_secs(600))
            .expect("mint a token")
            .0
    }

    /// The issuer's key as PKCS#8 PEM, for an identity service a test runs itself.
    pub fn signing_key_pem(&self) -> String {
        self.key.to_pem()
    }

    /// The URL of the identity service the stack runs for services that call others, once one
    /// such service was launched.
    pub fn identity_url(&self) -> Option<String> {
        self.identity.as_ref().map(|i| format!("http://{}", i.addr))
    }

    /// The stack's issuer, for tests that make tokens of their own (expired, other keys).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn chorus_identity_declared() -> Declared {
    chorus_identity::SERVICE
}
