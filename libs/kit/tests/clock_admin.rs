//! The ClockService over real gRPC, on PostgreSQL and SQLite: on a simulated clock, moving it
//! ahead a day fires at once the timer a service set for tomorrow; on the system's clock the
//! move is refused and nothing fires; without `admin.clock` nothing is answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::clock::Clock;
use chorus_kit::config::Reader;
use chorus_kit::events::envelope;
use chorus_kit::runtime::{Context, Declared, Parts, Service, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, clock};
use chorus_proto::admin::clock_service_client::ClockServiceClient;
use chorus_proto::admin::{AdvanceClockRequest, GetTimeRequest};
use chorus_proto::types::Money;
use chorus_testkit::events::{quiet, watch};
use chorus_testkit::{Authed, Backend, Stack, authed, on_both_backends};

const DAY: i64 = 86_400_000_000;

/// A service that, as it starts, sets a timer to publish a Money on its topic a day from now.
struct Alarm;
static ALARM: Declared = declare::<Alarm>();

static NO_TABLES: Migrations = Migrations {
    postgres: &[],
    sqlite: &[],
};

impl Service for Alarm {
    type Config = String;
    const SPEC: Spec = Spec {
        name: "alarm",
        port: 0,
        migrations: &NO_TABLES,
        scopes: &[],
        consumes: &[],
        db_connections: 2,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> String {
        r.string("ALARM_TOPIC", "chorus.test")
    }

    async fn start(topic: String, ctx: &Context, _parts: &mut Parts) -> Result<(), Error> {
        let tomorrow = ctx.clock.now_micros() + DAY;
        let event = envelope(&ctx.clock, "t", &Money::default());
        let mut tx = ctx.db.pool.begin().await?;
        ctx.timers
            .schedule(&mut tx, "tomorrow", tomorrow, &topic, &event)
            .await?;
        tx.commit().await?;
        ctx.timers.scheduled();
        Ok(())
    }
}

struct Running {
    stack: Stack,
    topic: String,
    clock: ClockServiceClient<Authed>,
    service: chorus_kit::runtime::Launched,
}

async fn start(backend: Backend, clock: Clock) -> Running {
    let mut stack = Stack::with_clock(backend, clock);
    let url = stack.database().await;
    let topic = format!("chorus.alarm.{}", uuid::Uuid::new_v4().simple());
    let service = stack.launch(&ALARM, &url, &[("ALARM_TOPIC", topic.clone())]).await;
    let operator = stack.token("", &[clock::admin::SCOPE]);
    let clock = ClockServiceClient::new(authed(service.addr, Some(operator)).await);
    Running {
        stack,
        topic,
        clock,
        service,
    }
}

fn by(d: Duration) -> AdvanceClockRequest {
    AdvanceClockRequest {
        by: Some(d.try_into().unwrap()),
    }
}

async fn a_simulated_clock_moved_ahead_fires_the_timers_that_fall_due(backend: Backend) {
    let mut r = start(backend, Clock::offset()).await;
    let mut alarms = watch(&r.stack.bus, &r.topic).await;
    let before = r.clock.get_time(GetTimeRequest {}).await.unwrap().into_inner();
    assert!(before.simulated);
    quiet(&mut alarms, "a day has not passed").await;

    let moved = r
        .clock
        .advance_clock(by(Duration::from_secs(86_401)))
        .await
        .unwrap()
        .into_inner();
    let ahead = clock::micros(&moved.now.unwrap()) - clock::micros(&before.now.unwrap());
    assert!((DAY..DAY + 60_000_000).contains(&ahead), "{ahead}");
    let fired = alarms
        .next(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the timer fired");
    assert_eq!(fired.envelope.r#type, "chorus.type.v1.Money");
    let after = r.clock.get_time(GetTimeRequest {}).await.unwrap().into_inner();
    assert!(clock::micros(&after.now.unwrap()) - clock::micros(&before.now.unwrap()) >= DAY);

    let bad = r.clock.advance_clock(by(Duration::ZERO)).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("by"), "{}", bad.message());
}

async fn the_systems_clock_is_not_moved_and_the_scope_is_required(backend: Backend) {
    let mut r = start(backend, Clock::system()).await;
    let mut alarms = watch(&r.stack.bus, &r.topic).await;
    let time = r.clock.get_time(GetTimeRequest {}).await.unwrap().into_inner();
    assert!(!time.simulated);
    let refused = r
        .clock
        .advance_clock(by(Duration::from_secs(86_401)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("--simulated-clock"), "{}", refused.message());
    quiet(&mut alarms, "the clock did not move").await;

    let addr = r.service.addr;
    let other = r.stack.token("", &["admin.events"]);
    let mut unscoped = ClockServiceClient::new(authed(addr, Some(other)).await);
    let denied = unscoped.get_time(GetTimeRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(denied.message().contains("admin.clock"), "{}", denied.message());
}

/// The backend itself: each test starts its own stack on it.
async fn on(backend: Backend) -> Backend {
    backend
}

on_both_backends! { on;
    a_simulated_clock_moved_ahead_fires_the_timers_that_fall_due => super::a_simulated_clock_moved_ahead_fires_the_timers_that_fall_due;
    the_systems_clock_is_not_moved_and_the_scope_is_required => super::the_systems_clock_is_not_moved_and_the_scope_is_required;
}
