//! Telemetry: `tracing` with JSON (or pretty) logs, OpenTelemetry spans exported over OTLP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C `traceparent` read from incoming gRPC
//! metadata, written to outgoing metadata and stamped on event envelopes, and RED metrics
//! (rate, errors, duration) per gRPC method, served for Prometheus when `CHORUS_METRICS_ADDR`
//! is set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::error::Error;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans leave the process (an OTLP endpoint is configured). Spans only an exporter
/// would read (one per event published) are made only then.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A span for publishing `envelope` on `topic`, child of the operation that caused it (the
/// envelope's traceparent); the envelope then carries this span's context, so its consumers'
/// spans are children of the publish. `None` unless spans are exported.
pub fn publish_span(topic: &str, envelope: &mut chorus_proto::event::Envelope) -> Option<tracing::Span> {
    if !exporting() {
        return None;
    }
    let span = tracing::info_span!(
        "publish",
        otel.name = %format!("publish {topic}"),
        otel.kind = "producer",
        messaging.operation.type = "publish",
        messaging.destination.name = %topic,
        messaging.message.id = %envelope.id,
    );
    set_parent(&span, &envelope.traceparent);
    if let Some(tp) = span.in_scope(current_traceparent) {
        envelope.traceparent = tp;
    }
    Some(span)
}

/// The span a consumer handles `envelope` in: a child of its publish, in the producer's trace.
pub fn process_span(topic: &str, group: &str, envelope: &chorus_proto::event::Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {topic}"),
        otel.kind = "consumer",
        messaging.operation.type = "process",
        messaging.destination.name = %topic,
        messaging.consumer.group.name = %group,
        messaging.message.id = %envelope.id,
        event.type = %crate::events::event_type(envelope),
        messaging.batch.message_count = tracing::field::Empty,
    );
    set_parent(&span, &envelope.traceparent);
    span
}

/// Installs logging and tracing for the process. Spans get W3C trace ids whether or not an
/// exporter is configured, so trace context always travels with calls and events.
pub fn init(service: &'static str, format: LogFormat, otlp_endpoint: Option<&str>) -> Result<(), Error> {
    init_with_filter(service, format, otlp_endpoint, "info")
}

/// [`init`] with the log filter to use when `RUST_LOG` is not set.
pub fn init_with_filter(
    service: &'static str,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    default_filter: &str,
) -> Result<(), Error> {
    let mut builder = SdkTracerProvider::builder();
    if let Some(endpoint) = otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| Error::invalid_field("OTEL_EXPORTER_OTLP_ENDPOINT", e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
        EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let provider = builder.with_resource(resource).build();
    let tracer = provider.tracer(service);
    let _ = PROVIDER.set(provider);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    // RUST_LOG filters what is logged, not what is traced: trace context must survive a quiet
    // log level, so the OpenTelemetry layer sees every span at info and above.
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .try_init()
        .map_err(|e| Error::new(crate::ErrorCode::Internal, format!("tracing already initialised: {e}")))
}

/// Flushes spans still buffered for export; call at the end of `main`.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.shutdown();
    }
}

/// Serves RED metrics at `http://addr/metrics` for Prometheus.
pub fn serve_metrics(addr: SocketAddr) -> Result<(), Error> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::invalid_field("CHORUS_METRICS_ADDR", e.to_string()))
}

/// The `traceparent` of the current span, if it has a valid trace context.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace named by `traceparent` (from a request or an event).
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(context);
}

/// A client interceptor that carries the current trace context to the callee.
pub fn propagate(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    if let Some(tp) = current_traceparent()
        && let Ok(value) = tp.parse()
    {
        request.metadata_mut().insert("traceparent", value);
    }
    Ok(request)
}

pub mod layer {
    //! The tower layer every server runs: a span per call (child of the caller's trace) and RED
    //! metrics per method.

    use std::task::{Context, Poll};
    use std::time::Instant;

    use futures::future::BoxFuture;
    use tower::{Layer, Service};
    use tracing::Instrument;

    #[derive(Debug, Clone, Copy, Default)]
    pub struct RpcLayer;

    impl<S> Layer<S> for RpcLayer {
        type Service = Rpc<S>;
        fn layer(&self, inner: S) -> Self::Service {
            Rpc { inner }
        }
    }

    #[derive(Debug, Clone)]
    pub struct Rpc<S> {
        inner: S,
    }

    impl<S, B, R> Service<http::Request<B>> for Rpc<S>
    where
        S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<B>) -> Self::Future {
            let path = request.uri().path().to_owned();
            // OpenTelemetry's RPC conventions: the span is named "package.Service/Method".
            let name = path.trim_start_matches('/');
            let (service, method) = name.split_once('/').unwrap_or((name, ""));
            let span = tracing::info_span!(
                "rpc",
                otel.name = %name,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
            );
            if let Some(tp) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
                super::set_parent(&span, tp);
            }
            let method = path;
            // Take the service that was driven to readiness; leave a fresh clone behind.
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let started = Instant::now();
            Box::pin(
                async move {
                    let result = inner.call(request).await;
                    // Errors travel as trailers-only responses, so grpc-status is in the headers;
                    // a response without it started normally.
                    let code = match &result {
                        Ok(r) => r
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("0")
                            .to_owned(),
                        Err(_) => "2".to_owned(),
                    };
                    let span = tracing::Span::current();
                    span.record("rpc.grpc.status_code", code.parse::<i64>().unwrap_or(2));
                    // A server span is an error for the codes that mean the server failed.
                    if matches!(code.as_str(), "2" | "4" | "12" | "13" | "14" | "15") {
                        span.record("otel.status_code", "ERROR");
                    }
                    let elapsed = started.elapsed().as_secs_f64();
                    metrics::counter!("grpc_server_handled_total", "method" => method.clone(), "code" => code.clone())
                        .increment(1);
                    metrics::histogram!("grpc_server_handling_seconds", "method" => method).record(elapsed);
                    result
                }
                .instrument(span),
            )
        }
    }
}
