//! Dead letters through the runtime, on PostgreSQL and SQLite, over real gRPC: a consumer whose
//! handler fails on one event gives it a bounded number of attempts, sets it aside with its
//! error and goes on with the events behind it; an operator with `admin.events` lists it and,
//! once the cause is mended, replays it, and its effect is applied exactly once. The metrics
//! endpoint shows the event gauges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use chorus_kit::config::Reader;
use chorus_kit::events::outbox::Inbox;
use chorus_kit::events::{Bus, SubscribeOptions, envelope, payload};
use chorus_kit::runtime::{Context, Declared, Parts, Service, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::admin::event_admin_service_client::EventAdminServiceClient;
use chorus_proto::admin::{DeadLetter, ListDeadLettersRequest, ReplayDeadLettersRequest};
use chorus_proto::types::Money;
use chorus_testkit::{Authed, Backend, Stack, authed, eventually};
use sqlx::Row;

const WAIT: Duration = Duration::from_secs(15);
const MAX_ATTEMPTS: u32 = 3;

/// What the test and its service's handler share: whether the cause of the failure is still
/// there, and how often the handler ran on the poisoned event.
#[derive(Debug, Default)]
struct Shared {
    broken: AtomicBool,
    poisoned_runs: AtomicU32,
}

/// The shared state of each running test service, by the key its settings name.
static SHARED: LazyLock<Mutex<HashMap<String, Arc<Shared>>>> = LazyLock::new(Mutex::default);

/// A service that consumes one topic and records each event's amount in `applied`, once per
/// event (the inbox); an amount in "XXX" fails while the test says the cause is there.
struct Ledger;
static LEDGER: Declared = declare::<Ledger>();
const GROUP: &str = "ledger";

static MIGRATIONS: Migrations = Migrations {
    postgres: &[(
        2,
        "applied",
        "CREATE TABLE applied (event_id TEXT NOT NULL, amount BIGINT NOT NULL)",
    )],
    sqlite: &[(
        2,
        "applied",
        "CREATE TABLE applied (event_id TEXT NOT NULL, amount BIGINT NOT NULL)",
    )],
};

struct LedgerConfig {
    topic: String,
    shared: Arc<Shared>,
}

impl Service for Ledger {
    type Config = LedgerConfig;
    const SPEC: Spec = Spec {
        name: "ledger",
        port: 0,
        migrations: &MIGRATIONS,
        scopes: &[],
        consumes: &[],
        db_connections: 4,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> LedgerConfig {
        let key = r.string("LEDGER_KEY", "");
        let shared = SHARED.lock().unwrap().get(&key).cloned().unwrap_or_default();
        LedgerConfig {
            topic: r.string("LEDGER_TOPIC", "chorus.test"),
            shared,
        }
    }

    async fn start(config: LedgerConfig, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let (db, clock) = (ctx.db.clone(), ctx.clock.clone());
        let options = SubscribeOptions {
            poll: Duration::from_millis(50),
            ..SubscribeOptions::default()
        };
        parts.consume(&config.topic, GROUP, options, move |event| {
            let (db, clock, shared) = (db.clone(), clock.clone(), config.shared.clone());
            async move {
                let money: Money = payload(&event)?;
                if money.currency_code == "XXX" {
                    shared.poisoned_runs.fetch_add(1, Ordering::SeqCst);
                    if shared.broken.load(Ordering::SeqCst) {
                        return Err(Error::new(ErrorCode::FailedPrecondition, "no exchange rate for XXX"));
                    }
                }
                let mut tx = db.pool.begin().await?;
                if Inbox::first_time(&mut tx, &clock, GROUP, &event.id).await? {
                    sqlx::query("INSERT INTO applied (event_id, amount) VALUES ($1, $2)")
                        .bind(event.id.clone())
                        .bind(money.amount_minor)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        });
        Ok(())
    }
}

/// The Prometheus endpoint of this test process, started once (the recorder is global).
fn metrics_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        chorus_kit::telemetry::serve_metrics(addr).unwrap();
        addr
    })
}

/// The metrics endpoint's page.
async fn scrape(addr: SocketAddr) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to the metrics endpoint: {e}"))?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut page = String::new();
    stream.read_to_string(&mut page).await.map_err(|e| e.to_string())?;
    Ok(page)
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn money(currency: &str, amount: i64) -> chorus_proto::event::Envelope {
    envelope(
        &chorus_kit::clock::Clock::system(),
        "tenant-a",
        &Money {
            currency_code: currency.into(),
            amount_minor: amount,
        },
    )
}

async fn applied(db: &sqlx::AnyPool) -> Vec<(String, i64)> {
    sqlx::query("SELECT event_id, amount FROM applied ORDER BY amount")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("event_id"), r.get("amount")))
        .collect()
}

async fn list(client: &mut EventAdminServiceClient<Authed>) -> Result<Vec<DeadLetter>, String> {
    client
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .map(|r| r.into_inner().dead_letters)
        .map_err(|s| s.to_string())
}

async fn a_failing_handler_ends_in_dead_letters_and_replays_once(backend: Backend) {
    let metrics = metrics_addr();
    let mut stack = Stack::new(backend);
    let key = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("chorus.test{key}");
    let shared = Arc::new(Shared::default());
    shared.broken.store(true, Ordering::SeqCst);
    SHARED.lock().unwrap().insert(key.clone(), shared.clone());
    let url = stack.database().await;
    let service = stack
        .launch(
            &LEDGER,
            &url,
            &[
                ("LEDGER_KEY", key.clone()),
                ("LEDGER_TOPIC", topic.clone()),
                ("CHORUS_EVENT_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string()),
                ("CHORUS_EVENT_RETRY_DELAY_MS", "20".into()),
                ("CHORUS_EVENT_METRICS_INTERVAL_MS", "50".into()),
            ],
        )
        .await;
    let db = LEDGER.spec.connect(&url, 2).await.unwrap();

    let (before, poisoned, after) = (money("USD", 1), money("XXX", 2), money("USD", 3));
    for e in [&before, &poisoned, &after] {
        stack.bus.publish(&topic, e).await.unwrap();
    }

    // The events behind the poisoned one are handled; the poisoned one is set aside after
    // exactly MAX_ATTEMPTS runs, acknowledged, with its error.
    let operator = stack.token("", &["admin.events"]);
    let mut admin = EventAdminServiceClient::new(authed(service.addr, Some(operator)).await);
    let dead = eventually(WAIT, || {
        let mut admin = admin.clone();
        async move {
            match list(&mut admin).await?.as_slice() {
                [one] => Ok(one.clone()),
                other => Err(format!("dead letters: {other:?}")),
            }
        }
    })
    .await;
    assert_eq!(dead.event_id, poisoned.id);
    assert_eq!(dead.event_type, "chorus.type.v1.Money");
    assert_eq!((dead.topic.as_str(), dead.group.as_str()), (topic.as_str(), GROUP));
    assert_eq!(dead.attempts, MAX_ATTEMPTS as i32);
    assert!(dead.error.contains("no exchange rate for XXX"), "{}", dead.error);
    assert!(dead.dead_time.is_some());
    let done = applied(&db.pool).await;
    assert_eq!(
        done,
        [(before.id.clone(), 1), (after.id.clone(), 3)],
        "the events around it are handled"
    );
    eventually(WAIT, || async {
        match stack.bus.lag(&topic, GROUP).await {
            Ok(0) => Ok(()),
            other => Err(format!("lag: {other:?}")),
        }
    })
    .await;
    assert_eq!(
        shared.poisoned_runs.load(Ordering::SeqCst),
        MAX_ATTEMPTS,
        "acknowledged after the last attempt, never run again"
    );

    // The gauges and the counter, on the metrics endpoint.
    let group_label = format!("group=\"{GROUP}\"");
    let topic_label = format!("topic=\"{topic}\"");
    eventually(WAIT, || async {
        let page = scrape(metrics).await?;
        let dead = sample(&page, "chorus_dead_letters", &[&topic_label, &group_label]);
        let lag = sample(&page, "chorus_consumer_lag", &[&topic_label, &group_label]);
        let depth = sample(&page, "chorus_outbox_depth", &["service=\"ledger\""]);
        let gave_up = sample(
            &page,
            "chorus_events_handled_total",
            &[&topic_label, &group_label, "outcome=\"dead_letter\""],
        );
        let retried = sample(
            &page,
            "chorus_events_handled_total",
            &[&topic_label, &group_label, "outcome=\"retry\""],
        );
        let ok = sample(
            &page,
            "chorus_events_handled_total",
            &[&topic_label, &group_label, "outcome=\"ok\""],
        );
        let seen = (dead, lag, depth, gave_up, retried, ok);
        if seen
            == (
                Some(1.0),
                Some(0.0),
                Some(0.0),
                Some(1.0),
                Some(f64::from(MAX_ATTEMPTS - 1)),
                Some(2.0),
            )
        {
            Ok(())
        } else {
            Err(format!("(dead, lag, depth, dead_letter, retry, ok) = {seen:?}"))
        }
    })
    .await;

    // Without the scope, or without a token, nothing.
    let mut reader =
        EventAdminServiceClient::new(authed(service.addr, Some(stack.token("", &["registry.read"]))).await);
    let refused = reader
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("admin.events"), "{}", refused.message());
    let refused = reader
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![dead.id] })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let mut anonymous = EventAdminServiceClient::new(authed(service.addr, None).await);
    let refused = anonymous
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Bad requests name what is wrong.
    let unknown = admin
        .replay_dead_letters(ReplayDeadLettersRequest {
            ids: vec![dead.id, 987_654],
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("987654"), "{}", unknown.message());
    let too_many = admin
        .replay_dead_letters(ReplayDeadLettersRequest {
            ids: (1..=1001).collect(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_error_details(&too_many);
    let fields: Vec<&str> = details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["ids"]);
    assert_eq!(
        shared.poisoned_runs.load(Ordering::SeqCst),
        MAX_ATTEMPTS,
        "a refused replay runs nothing"
    );

    // Replayed before the cause is mended: it fails again and stays, one attempt more.
    let again = admin
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![dead.id] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.replayed_count, 0);
    assert_eq!(again.failed.len(), 1);
    assert_eq!(again.failed[0].id, dead.id);
    assert_eq!(again.failed[0].attempts, MAX_ATTEMPTS as i32 + 1);
    assert_eq!(list(&mut admin).await.unwrap().len(), 1);

    // Mended: the replay applies it and removes the dead letter.
    shared.broken.store(false, Ordering::SeqCst);
    let replayed = admin
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![dead.id] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed_count, 1);
    assert!(replayed.failed.is_empty(), "{:?}", replayed.failed);
    assert!(list(&mut admin).await.unwrap().is_empty());
    let gone = admin
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![dead.id] })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "a replayed dead letter is gone");

    // Delivered once more (a publisher's retry): the inbox keeps its effect to one.
    stack.bus.publish(&topic, &poisoned).await.unwrap();
    eventually(WAIT, || async {
        match shared.poisoned_runs.load(Ordering::SeqCst) {
            n if n == MAX_ATTEMPTS + 3 => Ok(()),
            n => Err(format!("{n} runs on the poisoned event")),
        }
    })
    .await;
    eventually(WAIT, || async {
        match stack.bus.lag(&topic, GROUP).await {
            Ok(0) => Ok(()),
            other => Err(format!("lag: {other:?}")),
        }
    })
    .await;
    let done = applied(&db.pool).await;
    assert_eq!(
        done,
        [(before.id.clone(), 1), (poisoned.id.clone(), 2), (after.id.clone(), 3)],
        "applied exactly once"
    );
    db.close().await;
    service.shutdown().await.unwrap();
}

/// ListDeadLetters pages oldest first.
async fn dead_letters_page_oldest_first(backend: Backend) {
    let mut stack = Stack::new(backend);
    let key = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("chorus.test{key}");
    let shared = Arc::new(Shared::default());
    shared.broken.store(true, Ordering::SeqCst);
    SHARED.lock().unwrap().insert(key.clone(), shared.clone());
    let url = stack.database().await;
    let service = stack
        .launch(
            &LEDGER,
            &url,
            &[
                ("LEDGER_KEY", key),
                ("LEDGER_TOPIC", topic.clone()),
                ("CHORUS_EVENT_MAX_ATTEMPTS", "1".into()),
            ],
        )
        .await;
    let poisoned: Vec<_> = (0..5).map(|n| money("XXX", n)).collect();
    for e in &poisoned {
        stack.bus.publish(&topic, e).await.unwrap();
    }
    let mut admin = EventAdminServiceClient::new(authed(service.addr, Some(stack.token("", &["admin.events"]))).await);
    eventually(WAIT, || {
        let mut admin = admin.clone();
        async move {
            match list(&mut admin).await?.len() {
                5 => Ok(()),
                n => Err(format!("{n} dead letters")),
            }
        }
    })
    .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_dead_letters(ListDeadLettersRequest {
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.dead_letters.len() <= 2);
        seen.extend(page.dead_letters.into_iter().map(|d| d.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let published: Vec<String> = poisoned.iter().map(|e| e.id.clone()).collect();
    assert_eq!(seen, published, "every dead letter once, oldest first");
    let bad = admin
        .list_dead_letters(ListDeadLettersRequest {
            page_size: -1,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn postgres_a_failing_handler_ends_in_dead_letters_and_replays_once() {
    a_failing_handler_ends_in_dead_letters_and_replays_once(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_failing_handler_ends_in_dead_letters_and_replays_once() {
    a_failing_handler_ends_in_dead_letters_and_replays_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_dead_letters_page_oldest_first() {
    dead_letters_page_oldest_first(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_dead_letters_page_oldest_first() {
    dead_letters_page_oldest_first(Backend::Sqlite).await;
}

/// An event set aside whose acknowledgement was lost comes back; when the handler takes it then,
/// its dead letter goes, so a later replay cannot apply it a second time.
async fn a_dead_letter_goes_once_its_event_is_handled(url: String) {
    use chorus_kit::events::Consumer;
    use chorus_kit::events::dead_letters::{DeadLetters, Retries};
    use chorus_kit::events::memory::MemoryBus;

    let db = chorus_kit::storage::Database::connect(&url, &[&chorus_kit::storage::KIT_MIGRATIONS], 2)
        .await
        .unwrap();
    let letters = DeadLetters::new(db.clone(), chorus_kit::clock::Clock::system());
    let event = money("EUR", 7);
    letters
        .record("t", GROUP, &event, MAX_ATTEMPTS, "no exchange rate")
        .await
        .unwrap();
    // A second record of the same event keeps the larger count, not the sum.
    letters
        .record("t", GROUP, &event, MAX_ATTEMPTS + 1, "still none")
        .await
        .unwrap();
    let stored = letters.list(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].attempts, stored[0].error.as_str()),
        (i64::from(MAX_ATTEMPTS) + 1, "still none")
    );

    let bus = Arc::new(MemoryBus::new());
    let options = SubscribeOptions {
        poll: Duration::from_millis(20),
        ..SubscribeOptions::default()
    };
    let retries = Retries {
        // Every delivery is then one that could have been set aside.
        max_attempts: 1,
        delay: Duration::from_millis(10),
        dead_letters: letters.clone(),
    };
    let consumer = Consumer::join(bus.clone(), "t", GROUP, "c", options)
        .await
        .unwrap()
        .with_retries(retries);
    let runs = Arc::new(AtomicU32::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let (runs, stop) = (runs.clone(), stop.clone());
        consumer.run(
            move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            },
            stop.cancelled_owned(),
        )
    });
    bus.publish("t", &event).await.unwrap();
    eventually(WAIT, || async {
        let left = letters.list(0, 10).await.map_err(|e| e.to_string())?;
        match (runs.load(Ordering::SeqCst), left.len()) {
            (1, 0) => Ok(()),
            seen => Err(format!("(handler runs, dead letters) = {seen:?}")),
        }
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn postgres_a_dead_letter_goes_once_its_event_is_handled() {
    let url = chorus_kit::storage::testing::fresh_postgres_url().await.unwrap();
    a_dead_letter_goes_once_its_event_is_handled(url).await;
}

#[tokio::test]
async fn sqlite_a_dead_letter_goes_once_its_event_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    a_dead_letter_goes_once_its_event_is_handled(chorus_kit::storage::testing::sqlite_url_in(dir.path())).await;
}
