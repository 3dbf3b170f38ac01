//! Durable timers on PostgreSQL and SQLite: a timer fires when the clock reaches it, once, in
//! due order, survives a restart of the process that set it, and can be moved or cancelled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::clock::Clock;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::outbox::Outbox;
use chorus_kit::events::{Bus, SubscribeOptions, Subscription, envelope, payload};
use chorus_kit::storage::{Database, KIT_MIGRATIONS, testing};
use chorus_kit::timers::Timers;
use chorus_proto::types::Money;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_800_000_000_000_000;
const HOUR: i64 = 3_600_000_000;

struct Fixture {
    url: String,
    clock: Clock,
    bus: MemoryBus,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(postgres: bool) -> Fixture {
    let (url, dir) = if postgres {
        (testing::fresh_postgres_url().await.unwrap(), None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (testing::sqlite_url_in(dir.path()), Some(dir))
    };
    Fixture {
        url,
        clock: Clock::manual(T0),
        bus: MemoryBus::new(),
        _dir: dir,
    }
}

/// A "process": database, outbox relay and timer task, stopped by its token.
struct Process {
    db: Database,
    timers: Timers,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start(f: &Fixture) -> Process {
    let db = Database::connect(&f.url, &[&KIT_MIGRATIONS], 4).await.unwrap();
    let outbox = Outbox::new();
    let timers = Timers::new(db.clone(), outbox.clone(), f.clock.clone());
    let stop = CancellationToken::new();
    let relay = outbox.relay(db.clone(), Arc::new(f.bus.clone()));
    let tasks = vec![
        tokio::spawn({
            let stop = stop.clone();
            async move { relay.run(stop.cancelled_owned()).await }
        }),
        tokio::spawn({
            let (timers, stop) = (timers.clone(), stop.clone());
            async move { timers.run(stop).await.unwrap() }
        }),
    ];
    Process {
        db,
        timers,
        stop,
        tasks,
    }
}

impl Process {
    async fn schedule(&self, key: &str, at: i64, amount: i64) {
        let mut tx = self.db.pool.begin().await.unwrap();
        let e = envelope(&Clock::manual(T0), "t", &money(amount));
        self.timers.schedule(&mut tx, key, at, "chorus.test", &e).await.unwrap();
        tx.commit().await.unwrap();
        self.timers.scheduled();
    }

    async fn cancel(&self, key: &str) -> bool {
        let mut tx = self.db.pool.begin().await.unwrap();
        let gone = self.timers.cancel(&mut tx, key).await.unwrap();
        tx.commit().await.unwrap();
        gone
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        self.db.close().await;
    }
}

fn money(n: i64) -> Money {
    Money {
        currency_code: "EUR".into(),
        amount_minor: n,
    }
}

/// The amounts and times of the events published within `wait`.
async fn fired(sub: &mut Box<dyn Subscription>, wait: Duration) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    while let Some(d) = sub.next(wait).await.unwrap() {
        sub.ack(&d).await.unwrap();
        let m: Money = payload(&d.envelope).unwrap();
        let at = d.envelope.occur_time.unwrap();
        out.push((m.amount_minor, chorus_kit::clock::micros(&at)));
    }
    out
}

async fn timers_fire_when_due_once_in_order_and_survive_a_restart(f: Fixture) {
    let mut sub = f
        .bus
        .subscribe("chorus.test", "g", "c", SubscribeOptions::default())
        .await
        .unwrap();
    let p = start(&f).await;
    p.schedule("c", T0 + 3 * HOUR, 3).await;
    p.schedule("a", T0 + HOUR, 1).await;
    p.schedule("b", T0 + 2 * HOUR, 2).await;
    p.schedule("gone", T0 + HOUR, 99).await;
    assert!(p.cancel("gone").await);
    p.schedule("moved", T0 + HOUR, 50).await;
    p.schedule("moved", T0 + 10 * HOUR, 51).await;
    assert!(
        fired(&mut sub, Duration::from_millis(300)).await.is_empty(),
        "nothing is due yet"
    );
    f.clock.advance(Duration::from_secs(3600 * 2)).unwrap();
    assert_eq!(
        fired(&mut sub, Duration::from_millis(500)).await,
        [(1, T0 + HOUR), (2, T0 + 2 * HOUR)],
        "the two due ones, in due order, stamped with their due time"
    );
    // A restart in between: the third fires from the table, once.
    p.stop().await;
    let p = start(&f).await;
    f.clock.advance(Duration::from_secs(3600)).unwrap();
    assert_eq!(fired(&mut sub, Duration::from_millis(500)).await, [(3, T0 + 3 * HOUR)]);
    assert_eq!(p.timers.fire_due().await.unwrap(), 0, "a fired timer is gone");
    assert_eq!(
        p.timers.next_due().await.unwrap(),
        Some(T0 + 10 * HOUR),
        "the moved one waits"
    );
    assert!(!p.cancel("a").await, "nothing left to cancel");
    f.clock.set(T0 + 10 * HOUR).unwrap();
    assert_eq!(
        fired(&mut sub, Duration::from_millis(500)).await,
        [(51, T0 + 10 * HOUR)]
    );
    p.stop().await;
}

#[tokio::test]
async fn timers_on_postgres() {
    timers_fire_when_due_once_in_order_and_survive_a_restart(fixture(true).await).await;
}

#[tokio::test]
async fn timers_on_sqlite() {
    timers_fire_when_due_once_in_order_and_survive_a_restart(fixture(false).await).await;
}

/// Two processes share one PostgreSQL table: each due timer fires once between them.
#[tokio::test]
async fn replicas_fire_each_timer_once() {
    let f = fixture(true).await;
    let mut sub = f
        .bus
        .subscribe("chorus.test", "g", "c", SubscribeOptions::default())
        .await
        .unwrap();
    let (a, b) = (start(&f).await, start(&f).await);
    for i in 0..600 {
        let p = if i % 2 == 0 { &a } else { &b };
        p.schedule(&format!("t{i}"), T0 + HOUR + i, i).await;
    }
    f.clock.advance(Duration::from_secs(7200)).unwrap();
    let got = fired(&mut sub, Duration::from_millis(800)).await;
    let mut amounts: Vec<i64> = got.iter().map(|(n, _)| *n).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, (0..600).collect::<Vec<_>>(), "every timer once");
    a.stop().await;
    b.stop().await;
}

/// Many timers in one call behave as the same calls one at a time: a key given twice keeps its
/// last time, an existing key moves, and cancel_many counts what it removed.
async fn many_at_once_is_many_one_at_a_time(f: Fixture) {
    let mut sub = f
        .bus
        .subscribe("chorus.test", "g", "c", SubscribeOptions::default())
        .await
        .unwrap();
    let p = start(&f).await;
    p.schedule("old", T0 + 5 * HOUR, 7).await;
    let c = Clock::manual(T0);
    let e: Vec<_> = (0..1200).map(|i| envelope(&c, "t", &money(i))).collect();
    let keys: Vec<String> = (0..1200).map(|i| format!("k{}", i % 1100)).collect();
    let mut tx = p.db.pool.begin().await.unwrap();
    // 1,200 timers over 1,100 keys (more than one statement's worth), k0..k99 given twice:
    // their second time wins. Then "old" moves earlier.
    let mut rows: Vec<(&str, i64, &str, _)> = (0..1200)
        .map(|i| (keys[i].as_str(), T0 + HOUR + i as i64, "chorus.test", &e[i]))
        .collect();
    rows.push(("old", T0 + HOUR, "chorus.test", &e[0]));
    p.timers.schedule_many(&mut tx, rows).await.unwrap();
    let gone = p
        .timers
        .cancel_many(
            &mut tx,
            (0..1100)
                .filter(|i| i % 2 == 1)
                .map(|i| keys[i].as_str())
                .chain(["none"]),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    p.timers.scheduled();
    assert_eq!(gone, 550, "the odd keys were there, \"none\" was not");
    f.clock.advance(Duration::from_secs(3 * 3600)).unwrap();
    let mut got = fired(&mut sub, Duration::from_millis(800)).await;
    got.sort_unstable();
    let mut want: Vec<(i64, i64)> = (0..1100)
        .filter(|k| k % 2 == 0)
        .map(|k| if k < 100 { k + 1100 } else { k })
        .map(|i| (i, T0 + HOUR + i))
        .chain([(0, T0 + HOUR)])
        .collect();
    want.sort_unstable();
    assert_eq!(got, want, "even keys at their last time, and the moved one");
    assert_eq!(p.timers.next_due().await.unwrap(), None, "nothing else is left");
    p.stop().await;
}

#[tokio::test]
async fn many_at_once_on_postgres() {
    many_at_once_is_many_one_at_a_time(fixture(true).await).await;
}

#[tokio::test]
async fn many_at_once_on_sqlite() {
    many_at_once_is_many_one_at_a_time(fixture(false).await).await;
}
