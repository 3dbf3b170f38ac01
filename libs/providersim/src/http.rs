//! The HTTP side shared by the three providers: the routes, the answer type that can also be a
//! dropped connection, and the gate every request passes (rate limit, then fault plan).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::{Endpoint, Fault, Provider, Shared, paypal, stripe, tremendous};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/transfers", post(stripe::create).get(stripe::list))
        .route("/v1/transfers/{id}", get(stripe::get))
        .route("/v1/transfers/{id}/reversals", post(stripe::reverse))
        .route("/v1/oauth2/token", post(paypal::token))
        .route("/v1/payments/payouts", post(paypal::create))
        .route("/v1/payments/payouts/{id}", get(paypal::get))
        .route("/v1/payments/payouts-item/{id}/cancel", post(paypal::cancel))
        .route("/api/v2/orders", post(tremendous::create).get(tremendous::list))
        .route("/api/v2/orders/{id}", get(tremendous::get))
        .with_state(shared)
}

/// A status, a JSON body and extra headers: what a provider answered (and Stripe replays).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// An answer, or a connection dropped without one.
#[derive(Debug)]
pub(crate) enum Answer {
    Reply(Reply),
    Dropped,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Reply(reply) => reply.into_response(),
            // A body that fails at once makes the server abort the connection mid-answer, so
            // the client sees a broken connection rather than a status.
            Answer::Dropped => {
                let failing =
                    futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("dropped")) });
                Response::new(Body::from_stream(failing))
            }
        }
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply(reply)
    }
}

/// Counts the request and applies the provider's rate limit: `Err` is the 429 to send.
pub(crate) fn gate(shared: &Shared, endpoint: Endpoint) -> Result<(), Reply> {
    let wait = match shared.state().admit(endpoint) {
        Ok(()) => return Ok(()),
        Err(wait) => wait,
    };
    Err(rate_limited(endpoint.provider(), wait))
}

/// Runs `execute` under the endpoint's next planned fault, if any.
pub(crate) async fn with_fault(shared: &Shared, endpoint: Endpoint, execute: impl FnOnce() -> Reply) -> Answer {
    let fault = shared.state().next_fault(endpoint);
    match fault {
        None => execute().into(),
        Some(Fault::ServerError) => server_error(endpoint.provider()).into(),
        Some(Fault::Slow(delay)) => {
            let reply = execute();
            tokio::time::sleep(delay).await;
            reply.into()
        }
        Some(Fault::DropAfter) => {
            let _ = execute();
            Answer::Dropped
        }
        Some(Fault::DropBefore) => Answer::Dropped,
    }
}

/// Retry-After is whole seconds: round the limiter's wait up, at least one.
fn rate_limited(provider: Provider, wait: Duration) -> Reply {
    let seconds = wait.as_secs_f64().ceil().max(1.0).to_string();
    let body = match provider {
        Provider::Stripe => json!({"error": {"type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests hit the API too quickly."}}),
        Provider::PayPal => json!({"name": "RATE_LIMIT_REACHED",
            "message": "Too many requests. Blocked due to rate limiting.", "debug_id": debug_id()}),
        Provider::Tremendous => json!({"status": 429, "errors": {"message": "Too many requests"}}),
    };
    Reply::new(429, body).with_header("retry-after", seconds)
}

fn server_error(provider: Provider) -> Reply {
    let body = match provider {
        Provider::Stripe => json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        Provider::PayPal => json!({"name": "INTERNAL_SERVICE_ERROR",
            "message": "An internal service error has occurred.", "debug_id": debug_id()}),
        Provider::Tremendous => json!({"status": 500, "errors": {"message": "Internal server error"}}),
    };
    Reply::new(500, body)
}

pub(crate) fn debug_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..13].to_owned()
}

/// An id in a provider's style: a prefix and upper-case letters and digits.
pub(crate) fn new_id(prefix: &str, len: usize) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase();
    format!("{prefix}{}", &raw[..len.min(raw.len())])
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The `user:password` of an `Authorization: Basic` header.
pub(crate) fn basic(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    String::from_utf8(decoded).ok()
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
