//! `POST /oauth/token`: OAuth 2.0 client credentials (RFC 6749 §4.4) for apps that prefer
//! tokens to API keys. The client authenticates with HTTP Basic or with `client_id` and
//! `client_secret` form fields (§2.3.1); the identity service's IssueToken issues the token,
//! answered as §5.1 JSON, and refusals as §5.2 JSON (`invalid_client` 401, the rest 400).

use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_proto::identity::{ClientCredentials, IssueTokenRequest, issue_token_request};
use serde_json::json;

use crate::keys::Keys;

/// The largest form accepted.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// An RFC 6749 §5.2 error answer.
fn refuse(status: http::StatusCode, error: &str, description: &str, basic: bool) -> Response {
    let mut r = (
        status,
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    if basic && status == http::StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"chorus\""),
        );
    }
    r
}

/// Client id and secret from `Authorization: Basic`, each form-urlencoded as §2.3.1 says.
fn basic(headers: &http::HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some(
        STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| {
                let (id, secret) = pair.split_once(':')?;
                Some((decode(id)?, decode(secret)?))
            })
            .ok_or(()),
    )
}

pub(crate) async fn token(keys: &Keys, request: axum::extract::Request) -> Response {
    let bad = |error: &str, description: &str| refuse(http::StatusCode::BAD_REQUEST, error, description, false);
    let (parts, body) = request.into_parts();
    let form_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return bad("invalid_request", "the body must be application/x-www-form-urlencoded");
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return bad("invalid_request", "the form is too large");
    };
    let mut form: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        // §3.2: parameters must not be repeated.
        if form.iter().any(|(seen, _)| *seen == k) {
            return bad("invalid_request", &format!("{k} is given twice"));
        }
        form.push((k.into_owned(), v.into_owned()));
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match field("grant_type") {
        None => return bad("invalid_request", "grant_type is required"),
        Some("client_credentials") => {}
        Some(_) => return bad("unsupported_grant_type", "only client_credentials is supported here"),
    }
    let from_basic = basic(&parts.headers);
    let used_basic = from_basic.is_some();
    let (client_id, client_secret) = match (from_basic, field("client_id"), field("client_secret")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return bad(
                "invalid_request",
                "give the client's credentials one way: Basic or the form",
            );
        }
        (Some(Ok(pair)), None, None) => pair,
        (Some(Err(())), None, None) => {
            return refuse(
                http::StatusCode::UNAUTHORIZED,
                "invalid_client",
                "malformed Basic credentials",
                true,
            );
        }
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, _, _) => {
            return refuse(
                http::StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required (HTTP Basic or client_id and client_secret)",
                false,
            );
        }
    };
    let scopes = field("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut issuer = match keys.issuer() {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                e.message(),
                false,
            );
        }
    };
    let issued = issuer
        .issue_token(IssueTokenRequest {
            grant: Some(issue_token_request::Grant::ClientCredentials(ClientCredentials {
                client_id,
                client_secret,
            })),
            scopes,
        })
        .await;
    match issued {
        Ok(r) => {
            let r = r.into_inner();
            (
                [(http::header::CACHE_CONTROL, "no-store")],
                axum::Json(json!({
                    "access_token": r.access_token,
                    "token_type": r.token_type,
                    "expires_in": r.expires_in,
                    "scope": r.scopes.join(" "),
                })),
            )
                .into_response()
        }
        Err(s) => match s.code() {
            tonic::Code::Unauthenticated => refuse(
                http::StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
                used_basic,
            ),
            tonic::Code::PermissionDenied => bad("invalid_scope", s.message()),
            tonic::Code::InvalidArgument => bad("invalid_request", s.message()),
            _ => refuse(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token issuer cannot be reached; retry shortly",
                false,
            ),
        },
    }
}
