//! The bus conformance suite, run on Redis Streams and on the in-process bus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::redis::RedisBus;
use chorus_kit::events::{Bus, conformance};

fn topic() -> String {
    format!("test.{}", uuid::Uuid::new_v4().simple())
}

async fn redis() -> Arc<dyn Bus> {
    let url = std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    Arc::new(
        RedisBus::connect(&url)
            .await
            .expect("redis is running (scripts/test starts it)"),
    )
}

fn memory() -> Arc<dyn Bus> {
    Arc::new(MemoryBus::new())
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod on_redis {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(redis().await, &topic()).await; })*
        }
        mod in_process {
            use super::*;
            $(#[tokio::test] async fn $case() { conformance::$case(memory(), &topic()).await; })*
        }
    };
}

on_both!(
    delivers_in_order_with_envelope_intact,
    a_batch_arrives_in_order,
    a_new_group_starts_from_the_oldest_retained,
    a_group_may_start_at_the_end,
    a_deleted_group_starts_over,
    groups_fan_out_and_consumers_share,
    unacknowledged_events_are_reclaimed,
);
