//! Watching a service's events from a test.

use std::time::Duration;

use chorus_kit::events::{Bus, SubscribeOptions, Subscription};

/// A subscription to `topic` from its oldest retained event, in a group of its own.
pub async fn watch(bus: &dyn Bus, topic: &str) -> Box<dyn Subscription> {
    bus.subscribe(
        topic,
        &format!("test-{}", uuid::Uuid::new_v4().simple()),
        "test",
        SubscribeOptions::default(),
    )
    .await
    .expect("subscribe")
}

/// The types of the next `n` events on `sub`, acknowledged; fails after 5 s without one.
pub async fn next_types(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = sub
            .next(Duration::from_secs(5))
            .await
            .expect("read the bus")
            .unwrap_or_else(|| panic!("expected {n} events, got {}: {out:?}", out.len()));
        sub.ack(&d).await.expect("ack");
        out.push(d.envelope.r#type);
    }
    out
}

/// Asserts nothing is published on `sub` within 300 ms.
pub async fn quiet(sub: &mut Box<dyn Subscription>, case: &str) {
    let got = sub.next(Duration::from_millis(300)).await.expect("read the bus");
    assert!(
        got.is_none(),
        "{case}: nothing should be published, got {:?}",
        got.map(|d| d.envelope.r#type)
    );
}
