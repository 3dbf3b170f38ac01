//! Trace context: a span gets a W3C trace id, events made inside it carry it, and a child of a
//! remote traceparent keeps the caller's trace id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chorus_kit::config::LogFormat;
use chorus_kit::telemetry;

#[test]
fn spans_carry_w3c_trace_context() {
    telemetry::init("test", LogFormat::Json, None).unwrap();
    let span = tracing::info_span!("work");
    let tp = span
        .in_scope(telemetry::current_traceparent)
        .expect("a traceparent inside a span");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[1].len(), 32);

    let remote = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let child = tracing::info_span!("handle");
    telemetry::set_parent(&child, remote);
    let tp = child.in_scope(telemetry::current_traceparent).unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "same trace as the caller: {tp}"
    );
    assert!(!tp.contains("00f067aa0ba902b7"), "but a span of its own");

    let outer = span.in_scope(telemetry::current_traceparent).unwrap();
    let env = span.in_scope(|| {
        chorus_kit::events::envelope(
            &chorus_kit::clock::Clock::system(),
            "",
            &chorus_proto::types::Money::default(),
        )
    });
    assert_eq!(
        env.traceparent, outer,
        "an event made in a span carries that span's context"
    );
}

#[tokio::test]
async fn spawned_tasks_keep_the_trace_when_instrumented() {
    let _ = telemetry::init("test2", LogFormat::Json, None);
    let span = tracing::info_span!("rpc");
    let outer = span.in_scope(telemetry::current_traceparent).unwrap();
    let inner = tokio::spawn(tracing::Instrument::instrument(
        async { telemetry::current_traceparent() },
        span.clone(),
    ))
    .await
    .unwrap();
    assert_eq!(inner.as_deref(), Some(outer.as_str()));
}
