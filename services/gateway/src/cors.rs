//! CORS by an allowlist of origins per tenant. A preflight carries no credentials, so the
//! gateway cannot know whose page asks: it is answered for an origin that any tenant allows.
//! The actual call carries its key or token, and its answer names the origin only when the
//! caller's tenant allows it. No cookies are involved, so `Allow-Credentials` is never sent
//! (the key or token travels in a header the preflight allows). Written here rather than with
//! tower-http's CORS layer, whose allowlist cannot depend on who the caller turns out to be.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};

use crate::policy::Policy;

const METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const HEADERS: &str = "authorization, content-type, x-api-key, idempotency-key, traceparent, tracestate, \
                       x-grpc-web, x-user-agent, grpc-timeout";
const EXPOSED: &str = "retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, grpc-status, grpc-message, \
                       grpc-status-details-bin";
/// How long a browser may keep a preflight's answer.
const MAX_AGE_S: &str = "600";

/// Whether the request is a CORS preflight.
pub(crate) fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: permission for an origin some tenant allows, none otherwise.
pub(crate) fn preflight(policy: &Policy, headers: &HeaderMap) -> Response {
    let mut r = http::StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::VARY,
        HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers"),
    );
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().is_ok_and(|o| policy.allows_any(o))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_S));
    }
    r
}

/// Marks an actual answer: `Vary: Origin` always, and the origin when `tenant` allows it.
pub(crate) fn decorate(policy: &Policy, origin: Option<&HeaderValue>, tenant: Option<&str>, response: &mut Response) {
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let (Some(origin), Some(tenant)) = (origin, tenant)
        && origin.to_str().is_ok_and(|o| policy.allows(tenant, o))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
    }
}
