//! A consumer that takes events in batches (`Consumer::run_batched`): events waiting together
//! reach the handler together, at most the maximum at a time and in order; each event's answer
//! is its own, so one that fails comes again alone while its neighbours are acknowledged; an
//! event published twice reaches the handler once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_kit::clock::Clock;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::events::{Bus, Consumer, SubscribeOptions, envelope, payload};
use chorus_kit::{Error, ErrorCode};
use chorus_proto::event::Envelope;
use chorus_proto::types::Money;
use chorus_testkit::eventually;

const MAX: usize = 4;
/// The amount whose first attempt fails.
const FLAKY: i64 = 5;

#[derive(Debug, Default)]
struct Seen {
    /// The amounts of each call of the handler, in the order given.
    batches: Vec<Vec<i64>>,
    /// Amounts applied (answered Ok).
    applied: Vec<i64>,
    failed_once: bool,
}

#[tokio::test]
async fn waiting_events_reach_the_handler_together_and_each_is_answered_on_its_own() {
    let bus = Arc::new(MemoryBus::new());
    let clock = Clock::system();
    let events: Vec<Envelope> = (0..10)
        .map(|i| {
            envelope(
                &clock,
                "t",
                &Money {
                    currency_code: "USD".into(),
                    amount_minor: i,
                },
            )
        })
        .collect();
    for e in &events {
        bus.publish("t", e).await.unwrap();
    }
    // Published twice (the relay's retry after a lost answer): handled once.
    bus.publish("t", &events[2]).await.unwrap();

    let options = SubscribeOptions {
        poll: Duration::from_millis(20),
        reclaim_after: Duration::from_millis(100),
        ..SubscribeOptions::default()
    };
    let consumer = Consumer::join(bus.clone(), "t", "g", "c", options).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let (seen, stop) = (seen.clone(), stop.clone());
        consumer.run_batched(
            MAX,
            move |batch: Vec<Envelope>| {
                let mut s = seen.lock().unwrap();
                let amounts: Vec<i64> = batch
                    .iter()
                    .map(|e| payload::<Money>(e).unwrap().amount_minor)
                    .collect();
                s.batches.push(amounts.clone());
                let mut answers = Vec::new();
                for a in amounts {
                    if a == FLAKY && !s.failed_once {
                        s.failed_once = true;
                        answers.push(Err(Error::new(ErrorCode::Unavailable, "not yet")));
                    } else {
                        s.applied.push(a);
                        answers.push(Ok(()));
                    }
                }
                async move { answers }
            },
            stop.cancelled_owned(),
        )
    });
    eventually(Duration::from_secs(10), || async {
        let s = seen.lock().unwrap();
        let mut applied = s.applied.clone();
        applied.sort_unstable();
        match applied == (0..10).collect::<Vec<i64>>() {
            true => Ok(()),
            false => Err(format!("applied so far: {:?}", s.applied)),
        }
    })
    .await;
    // Nothing more arrives: the duplicate and the retried event are settled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap().unwrap();

    let s = seen.lock().unwrap();
    assert_eq!(s.applied.len(), 10, "each event applied once: {:?}", s.applied);
    assert_eq!(
        s.batches.first().map(Vec::len),
        Some(MAX),
        "the events waiting at the start come {MAX} at a time: {:?}",
        s.batches
    );
    assert!(s.batches.iter().all(|b| b.len() <= MAX), "{:?}", s.batches);
    let order: Vec<i64> = s.batches.iter().flatten().copied().filter(|a| *a != FLAKY).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order: {:?}", s.batches);
    let flaky: Vec<&Vec<i64>> = s.batches.iter().filter(|b| b.contains(&FLAKY)).collect();
    assert_eq!(flaky.len(), 2, "the failed event came again: {:?}", s.batches);
    assert_eq!(
        flaky[1],
        &vec![FLAKY],
        "alone, its neighbours acknowledged: {:?}",
        s.batches
    );
}
