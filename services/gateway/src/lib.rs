//! The gateway: the edge partner apps talk to. HTTP/JSON transcoded from every method's
//! `google.api.http` rule and gRPC-Web, both proxied to the service that owns the method's
//! proto package; OpenAPI 3.1 at `/openapi.json` and a page at `/docs`, generated from the same
//! descriptor set. Nothing is written per RPC: a new service is served from its protos and one
//! setting (`CHORUS_GATEWAY_UPSTREAM_<NAME>`).
//!
//! It is no kit runtime service: it has no database, outbox, events or tokens of its own. It
//! reads its settings with the kit's reader, logs with the kit's telemetry, and maps errors with
//! the kit's codes. Requests pass one tower stack ([`Gateway::router`]): the edge layer
//! (CORS, API keys exchanged for tokens, rate limits per key and tenant), then the documents,
//! the OAuth2 token endpoint, gRPC-Web and transcoding.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chorus_kit::config::{Reader, Source};
use futures::StreamExt;
use prost::bytes::Bytes;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;

mod cors;
mod errors;
mod grpc_web;
mod keys;
mod limits;
mod oauth;
mod openapi;
pub mod policy;
mod routes;
mod template;
mod transcode;
mod upstream;

pub use errors::http_status;
pub use upstream::bytes_codec::RawCodec;
pub use upstream::setting_of;

use errors::Errors;
use routes::{Found, Route, Routes};
use upstream::Upstreams;

/// Request headers passed on to the upstream as gRPC metadata: the caller's token (verified
/// by the service), the kit's idempotency key, the trace context, and where the call came
/// from (for the audit log).
const FORWARDED: &[&str] = &[
    "authorization",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "x-forwarded-for",
];

/// How much later than the caller's deadline the upstream's runs out, so the caller hears the
/// gateway's DEADLINE_EXCEEDED rather than the gRPC client's own CANCELLED.
const UPSTREAM_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_GATEWAY_ADDR`: the HTTP listener (default 127.0.0.1:8080).
    pub addr: SocketAddr,
    /// The upstream URL of each proto package (`CHORUS_GATEWAY_UPSTREAM_<NAME>`, defaulting to
    /// the `chorus up` ports on loopback).
    pub upstreams: std::collections::BTreeMap<String, String>,
    /// `CHORUS_GATEWAY_MAX_BODY_BYTES`: the largest request body (default 4 MiB); larger is 413.
    pub max_body_bytes: usize,
    /// `CHORUS_GATEWAY_DEADLINE_MS`: how long an HTTP/JSON call may take, connecting to the
    /// upstream included (default 30 s); sent upstream as the gRPC deadline, and past it the
    /// caller gets 504 DEADLINE_EXCEEDED instead of a request held open.
    pub deadline: std::time::Duration,
    /// `CHORUS_GATEWAY_MAX_IN_FLIGHT`: HTTP/JSON and gRPC-Web calls served at once (default
    /// 1024); one more is refused at once with 503 and `Retry-After`, so overload sheds calls
    /// instead of queueing them in memory.
    pub max_in_flight: usize,
    /// `CHORUS_GATEWAY_CONFIG`: a TOML file of rate-limit plans and each tenant's plan and
    /// allowed browser origins ([`policy`]); without it, the built-in plan and no origins.
    pub policy: policy::Policy,
    /// `CHORUS_GATEWAY_REDIS_URL`: the Redis the replicas share rate limits in; without it, no
    /// rate limits.
    pub redis_url: Option<String>,
    /// `CHORUS_GATEWAY_RATE_LIMIT_PREFIX`: the prefix of the limiter's Redis keys
    /// (`chorus:gateway:rl:`).
    pub rate_limit_prefix: String,
    /// `CHORUS_GATEWAY_KEY_CACHE_MS`: how long what an API key was exchanged for is reused
    /// (at most and by default 60 s), so a revoked key is refused within that time.
    pub key_cache: std::time::Duration,
}

impl Config {
    /// Reads the settings, naming every bad value at once.
    pub fn read(source: &Source) -> Result<Config, chorus_kit::error::Error> {
        let pool = pool().map_err(|e| chorus_kit::error::Error::new(chorus_kit::error::ErrorCode::Internal, e))?;
        let mut r = Reader::new(source);
        let config = Config {
            addr: r.addr("CHORUS_GATEWAY_ADDR", "127.0.0.1:8080"),
            upstreams: upstream::configured(&pool, &mut r),
            max_body_bytes: r.parse("CHORUS_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024),
            deadline: r.duration_ms("CHORUS_GATEWAY_DEADLINE_MS", 30_000),
            max_in_flight: r.parse("CHORUS_GATEWAY_MAX_IN_FLIGHT", 1024),
            policy: match r.optional("CHORUS_GATEWAY_CONFIG") {
                None => policy::Policy::default(),
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))
                    .and_then(|text| policy::Policy::parse(&text))
                    .unwrap_or_else(|why| {
                        r.check(true, "CHORUS_GATEWAY_CONFIG", why);
                        policy::Policy::default()
                    }),
            },
            redis_url: r.optional("CHORUS_GATEWAY_REDIS_URL").filter(|u| !u.is_empty()),
            rate_limit_prefix: r.string("CHORUS_GATEWAY_RATE_LIMIT_PREFIX", "chorus:gateway:rl:"),
            key_cache: r.duration_ms("CHORUS_GATEWAY_KEY_CACHE_MS", 60_000),
        };
        r.check(
            config.key_cache > std::time::Duration::from_secs(60),
            "CHORUS_GATEWAY_KEY_CACHE_MS",
            "at most 60000: a revoked key must stop working within a minute",
        );
        r.check(
            config.deadline.is_zero(),
            "CHORUS_GATEWAY_DEADLINE_MS",
            "must be above 0",
        );
        r.check(
            config.max_in_flight == 0,
            "CHORUS_GATEWAY_MAX_IN_FLIGHT",
            "must be above 0",
        );
        r.finish()?;
        Ok(config)
    }
}

/// Every Chorus proto, with the http annotations and comments, as a pool of descriptors.
pub fn pool() -> Result<DescriptorPool, String> {
    DescriptorPool::decode(chorus_proto::FILE_DESCRIPTOR_SET).map_err(|e| format!("the descriptor set: {e}"))
}

/// What every request handler shares.
#[derive(Debug)]
struct Shared {
    routes: Routes,
    upstreams: Upstreams,
    errors: Errors,
    openapi: Bytes,
    docs: String,
    max_body_bytes: usize,
    deadline: std::time::Duration,
    in_flight: Arc<tokio::sync::Semaphore>,
    grpc_web: grpc_web::GrpcWeb,
    policy: policy::Policy,
    keys: keys::Keys,
    limiter: Option<limits::Limiter>,
}

/// A built gateway: its routes, upstreams and documents.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(config: &Config) -> Result<Gateway, String> {
        let pool = pool()?;
        let routes = Routes::build(&pool)?;
        let upstreams = Upstreams::new(&config.upstreams)?;
        let document = openapi::document(&pool, &routes);
        let docs = openapi::page(&document);
        let openapi = Bytes::from(serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?);
        let identity = match (upstreams.channel(keys::IDENTITY), config.upstreams.get(keys::IDENTITY)) {
            (Ok(channel), Some(url)) => Some((channel, url.clone())),
            _ => None,
        };
        let limiter = config
            .redis_url
            .as_deref()
            .map(|url| limits::Limiter::new(url, config.rate_limit_prefix.clone()))
            .transpose()?;
        Ok(Gateway {
            shared: Arc::new(Shared {
                errors: Errors::new(&pool)?,
                grpc_web: grpc_web::GrpcWeb::new(&pool, upstreams.clone()),
                routes,
                upstreams,
                openapi,
                docs,
                max_body_bytes: config.max_body_bytes,
                deadline: config.deadline,
                in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight)),
                policy: config.policy.clone(),
                keys: keys::Keys::new(identity, config.key_cache),
                limiter,
            }),
        })
    }

    /// The HTTP service: the edge layer (CORS, API keys, rate limits), then documents, the
    /// OAuth2 token endpoint, gRPC-Web, and transcoding for every other request.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/openapi.json", get(openapi_json))
            .route("/docs", get(docs))
            .route("/healthz", get(|| async { "ok" }))
            .route("/oauth/token", post(oauth_token))
            .fallback(dispatch)
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), edge))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `stop` is cancelled; in-flight requests finish first.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router().into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    }
}

/// A gateway serving on `listener`, for `chorus up` and tests.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn start(config: &Config, listener: TcpListener) -> Result<Running, String> {
        let gateway = Gateway::new(config)?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(gateway.serve(listener, stop.clone()));
        Ok(Running { addr, stop, task })
    }

    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.task.await.map_err(std::io::Error::other)?
    }
}

async fn openapi_json(State(s): State<Arc<Shared>>) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], s.openapi.clone()).into_response()
}

async fn docs(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(s.docs.clone())
}

async fn oauth_token(State(s): State<Arc<Shared>>, request: Request) -> Response {
    oauth::token(&s.keys, request).await
}

/// Paths served without credentials or limits: documents, probes, and the token endpoint
/// (which authenticates its clients itself).
const OPEN_PATHS: &[&str] = &["/openapi.json", "/docs", "/healthz", "/oauth/token"];

/// The edge: CORS preflights answered, credentials resolved (an API key exchanged for its
/// token), the caller's key and tenant limits counted, and the answer marked for CORS.
async fn edge(State(s): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    if cors::is_preflight(request.method(), request.headers()) {
        return cors::preflight(&s.policy, request.headers());
    }
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    if OPEN_PATHS.contains(&request.uri().path()) {
        let mut response = next.run(request).await;
        cors::decorate(&s.policy, origin.as_ref(), None, &mut response);
        return response;
    }
    forwarded_for(&mut request);
    let grpc_web = grpc_web::is_grpc_web(&request);
    let content_type = request.headers().get(http::header::CONTENT_TYPE).cloned();
    let refuse = |status: &tonic::Status| match grpc_web {
        true => grpc_web::refusal(status, content_type.clone()),
        false => s.errors.response(status),
    };
    let principal = match s.keys.resolve(request.headers_mut()).await {
        Ok(keys::Credentials::Known(p)) => Some(p),
        Ok(keys::Credentials::Anonymous) => None,
        Err(status) => {
            let mut response = refuse(&status);
            cors::decorate(&s.policy, origin.as_ref(), None, &mut response);
            return response;
        }
    };
    let decision = match (&principal, &s.limiter) {
        (Some(p), Some(limiter)) => {
            let plan = s.policy.plan(&p.tenant);
            let mut limits = vec![(format!("key:{}", p.subject), plan.key)];
            if !p.tenant.is_empty() {
                limits.push((format!("tenant:{}", p.tenant), plan.tenant));
            }
            limiter.check(&limits).await
        }
        _ => None,
    };
    let mut response = match decision {
        Some(d) if !d.allowed => {
            let details = tonic_types::ErrorDetails::with_retry_info(Some(d.retry_after));
            refuse(&<tonic::Status as tonic_types::StatusExt>::with_error_details(
                Code::ResourceExhausted,
                "rate limit exceeded for this key or its tenant; retry after the delay given",
                details,
            ))
        }
        _ => next.run(request).await,
    };
    if let Some(d) = decision {
        d.headers(response.headers_mut());
    }
    cors::decorate(
        &s.policy,
        origin.as_ref(),
        principal.as_ref().map(|p| p.tenant.as_str()),
        &mut response,
    );
    response
}

/// Appends the caller's address to `X-Forwarded-For`, as a proxy does, so the services can
/// say where a call came from (the addresses before it are the caller's own say).
fn forwarded_for(request: &mut Request) {
    let Some(peer) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return;
    };
    let value = match request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = http::HeaderValue::from_str(&value) {
        request.headers_mut().insert("x-forwarded-for", v);
    }
}

async fn dispatch(State(s): State<Arc<Shared>>, request: Request) -> Response {
    // Held until the answer is written (a streamed body may outlive it: its upstream stream is
    // bounded by the upstream's own flow control).
    let Ok(_permit) = s.in_flight.clone().try_acquire_owned() else {
        let mut r = s.errors.plain(
            http::StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "the gateway is at its limit of calls in flight; retry shortly",
        );
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        return r;
    };
    if grpc_web::is_grpc_web(&request) {
        return s.grpc_web.call(request).await;
    }
    let path = request.uri().path().to_owned();
    let (route, vars) = match s.routes.find(request.method(), &path) {
        Found::Route(route, vars) => (route, vars),
        Found::WrongMethod(allowed) => {
            let allow = allowed.into_iter().collect::<Vec<_>>().join(", ");
            let mut r = s.errors.plain(
                http::StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                format!("{} is not allowed on {path}; allowed: {allow}", request.method()),
            );
            if let Ok(v) = http::HeaderValue::from_str(&allow) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return r;
        }
        Found::NoRoute => {
            return s.errors.plain(
                http::StatusCode::NOT_FOUND,
                Code::NotFound,
                format!("no route {path} (see /openapi.json)"),
            );
        }
    };
    let deadline = s.deadline;
    match tokio::time::timeout(deadline, call(&s, route, &vars, request)).await {
        Ok(Ok(r) | Err(r)) => r,
        Err(_) => s.errors.response(&tonic::Status::deadline_exceeded(format!(
            "no answer from the service within {} ms (CHORUS_GATEWAY_DEADLINE_MS)",
            deadline.as_millis()
        ))),
    }
}

/// Builds the request message, calls the upstream, and writes the answer.
async fn call(
    s: &Shared,
    route: &Route,
    vars: &[(Vec<String>, String)],
    request: Request,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, s.max_body_bytes).await.map_err(|_| {
        s.errors.plain(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidArgument,
            format!("the body is over {} bytes", s.max_body_bytes),
        )
    })?;
    if !body.is_empty()
        && let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE)
        && !ct.to_str().unwrap_or_default().starts_with("application/json")
    {
        return Err(s.errors.plain(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            "the body must be application/json",
        ));
    }
    let message = transcode::request(route, vars, parts.uri.query(), &body).map_err(|e| {
        let violations: Vec<(String, String)> = e.field.iter().map(|f| (f.clone(), e.message.clone())).collect();
        s.errors.invalid(e.message, &violations)
    })?;
    let mut grpc_request = tonic::Request::new(Bytes::from(prost::Message::encode_to_vec(&message)));
    // The upstream learns the caller's deadline (for its own calls); a stream's deadline covers
    // only its start, not the whole export. The gateway's own timer, a little earlier, answers
    // the caller (504) and drops the call, which resets the upstream's stream.
    if !route.rpc.is_server_streaming() {
        grpc_request.set_timeout(s.deadline + UPSTREAM_DEADLINE_MARGIN);
    }
    for name in FORWARDED {
        for value in parts.headers.get_all(*name) {
            if let Ok(v) = tonic::metadata::MetadataValue::try_from(value.as_bytes()) {
                grpc_request.metadata_mut().append(*name, v);
            }
        }
    }
    let package = route.rpc.parent_service().package_name().to_owned();
    let mut client = s.upstreams.client(&package).map_err(|e| s.errors.response(&e))?;
    client.ready().await.map_err(|e| {
        s.errors
            .response(&tonic::Status::unavailable(format!("{package}: {e}")))
    })?;
    let path = http::uri::PathAndQuery::try_from(route.grpc_path())
        .map_err(|e| s.errors.response(&tonic::Status::internal(e.to_string())))?;
    if route.rpc.is_server_streaming() {
        let ndjson = parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/x-ndjson"));
        let stream = client
            .server_streaming(grpc_request, path, upstream::codec())
            .await
            .map_err(|e| s.errors.response(&e))?
            .into_inner();
        return stream_response(s, route, stream, ndjson).await;
    }
    let answer = client
        .unary(grpc_request, path, upstream::codec())
        .await
        .map_err(|e| s.errors.response(&e))?
        .into_inner();
    let json = transcode::response(route, &answer).map_err(|e| s.errors.response(&e))?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// A server stream as a JSON array or NDJSON, written as the messages arrive. An error before
/// the first message is an ordinary error response; after it, NDJSON ends with a line holding
/// the error (`{"error": Status}`) and a JSON array is cut short, so it never parses as whole.
async fn stream_response(
    s: &Shared,
    route: &Route,
    mut stream: tonic::Streaming<Bytes>,
    ndjson: bool,
) -> Result<Response, Response> {
    let first = stream.message().await.map_err(|e| s.errors.response(&e))?;
    let route = route.clone();
    let errors = s.errors.clone();
    let (open, sep, end, close, content_type) = match ndjson {
        true => ("", "", "\n", "", "application/x-ndjson"),
        false => ("[", ",", "", "]", "application/json"),
    };
    let items = futures::stream::unfold((first, stream, true), move |(next, mut stream, first)| {
        let (route, errors) = (route.clone(), errors.clone());
        async move {
            let item = next?;
            let mut chunk = Vec::new();
            if !first {
                chunk.extend_from_slice(sep.as_bytes());
            }
            match transcode::response(&route, &item) {
                Ok(json) => {
                    chunk.extend_from_slice(&json);
                    chunk.extend_from_slice(end.as_bytes());
                }
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, stream, false))),
            }
            let following = match stream.message().await {
                Ok(m) => m,
                Err(e) if ndjson => {
                    chunk.extend_from_slice(serde_json::json!({ "error": errors.json(&e) }).to_string().as_bytes());
                    chunk.extend_from_slice(b"\n");
                    None
                }
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, stream, false))),
            };
            Some((Ok(Bytes::from(chunk)), (following, stream, false)))
        }
    });
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(open.as_bytes()))])
        .chain(items)
        .chain(futures::stream::iter([Ok(Bytes::from_static(close.as_bytes()))]));
    Ok(([(http::header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response())
}
