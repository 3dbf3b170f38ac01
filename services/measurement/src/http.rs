//! The HTTP listener: `GET /l/{code}` redirects a visitor to the link's destination (302, UTM
//! parameters and the click id added) and queues the click; `POST /webhooks/shopify` takes a
//! store's orders and refunds. The webhook's signature is checked on the raw body against the
//! secret of the tenant that owns `X-Shopify-Shop-Domain` before anything is parsed: a wrong
//! signature or an unknown shop is 401 and nothing is stored. `GET /v1/campaigns/{id}/report`
//! serves the campaign report as JSON, CSV or an HTML page (`?format=`), to a bearer token of
//! the same kind gRPC takes (scope measurement.read, the campaign's tenant).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chorus_kit::Error;
use chorus_kit::auth::Verifier;
use chorus_kit::config::Secret;
use chorus_kit::names::CampaignName;
use chorus_proto::measurement::{ConversionSource, TestMetric};
use tokio_util::sync::CancellationToken;

use crate::api::{self, MeasurementApi};
use crate::clicks::Clicks;
use crate::conversions::{Ingest, OrderIn};
use crate::domain::{agent, codes, days, destination, shopify};
use crate::store::{NewClick, id_at};

/// A shop whose webhooks are taken: its tenant and signing secret.
#[derive(Debug, Clone)]
pub struct Shop {
    pub tenant: String,
    pub secret: Secret<String>,
}

/// Proxies whose country header (and X-Forwarded-For) is believed.
#[derive(Debug, Clone, Default)]
pub struct Proxies(Vec<(IpAddr, u8)>);

impl Proxies {
    /// `10.0.0.1,10.1.0.0/16,::1`; what is wrong, otherwise.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (ip, bits) = item.split_once('/').unwrap_or((item, ""));
            let ip: IpAddr = ip.parse().map_err(|_| format!("{item}: not an IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or(format!("{item}: bad prefix"))?
            };
            out.push((ip, bits));
        }
        Ok(Proxies(out))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, bits)| match (canonical(*net), ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                prefix_eq(u128::from(u32::from(n)) << 96, u128::from(u32::from(i)) << 96, *bits)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix_eq(u128::from(n), u128::from(i), *bits),
            _ => false,
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    bits == 0 || (a ^ b) >> (128 - u32::from(bits)) == 0
}

#[derive(Debug, Clone)]
struct Http {
    ingest: Ingest,
    clicks: Clicks,
    shops: Arc<HashMap<String, Shop>>,
    proxies: Arc<Proxies>,
    country_header: String,
    reports: Option<Reports>,
}

/// What the report route needs: the API that builds reports and the verifier of tokens.
#[derive(Debug, Clone)]
pub struct Reports {
    pub api: MeasurementApi,
    pub verifier: Arc<Verifier>,
}

/// The listener's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub shops: HashMap<String, Shop>,
    pub proxies: Proxies,
    /// The header a trusted proxy puts the visitor's country in (lower case).
    pub country_header: String,
    /// Serve `/v1/campaigns/{id}/report` (unset: not at all).
    pub reports: Option<Reports>,
}

/// The listener's routes, for `serve` and for tests that mount them.
pub fn router(ingest: Ingest, clicks: Clicks, options: Options) -> Router {
    Router::new()
        .route("/l/{code}", get(redirect))
        .route("/webhooks/shopify", post(shopify_webhook))
        .route("/v1/campaigns/{id}/report", get(report))
        .with_state(Http {
            reports: options.reports,
            ingest,
            clicks,
            shops: Arc::new(options.shops),
            proxies: Arc::new(options.proxies),
            country_header: options.country_header,
        })
}

/// Serves the listener on `addr` until stopped.
pub async fn serve(addr: SocketAddr, app: Router, stop: CancellationToken) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal("bind the measurement HTTP listener", e))?;
    tracing::info!(%addr, "link redirects and store webhooks listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| Error::internal("serve link redirects", e))
}

fn not_found() -> Response {
    metrics::counter!("measurement_redirect_unknown_total").increment(1);
    (StatusCode::NOT_FOUND, "no such link").into_response()
}

async fn redirect(
    State(h): State<Http>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !codes::is_short(&code) {
        return not_found();
    }
    let target = match h.ingest.store.target(&code).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e.detail(), "link lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "retry shortly").into_response();
        }
    };
    let Some(dest) = target.destination.as_deref() else {
        // An automatic link before the campaign named where its links go.
        return (StatusCode::NOT_FOUND, "this link has no destination yet").into_response();
    };
    let now = h.ingest.store.clock().now_micros();
    let id = id_at(now);
    let Some(location) = destination::redirect(dest, &target.utm, &id) else {
        return (StatusCode::NOT_FOUND, "this link has no destination").into_response();
    };
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ua = text(header::USER_AGENT.as_str());
    let trusted = h.proxies.contains(peer.ip());
    let (ip, country) = if trusted {
        let forwarded = text("x-forwarded-for")
            .split(',')
            .map(str::trim)
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .rev()
            .find(|ip| !h.proxies.contains(*ip));
        let c = text(&h.country_header).trim().to_ascii_uppercase();
        let c = if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) && c != "XX" {
            c
        } else {
            String::new()
        };
        (forwarded.unwrap_or(peer.ip()), c)
    } else {
        (peer.ip(), String::new())
    };
    let referrer = url::Url::parse(text(header::REFERER.as_str()))
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let ip_hash = match h.clicks.hash_ip(i64::from(days::day_of(now)), ip).await {
        Ok(hash) => hash,
        Err(e) => {
            tracing::warn!(error = %e.detail(), "no IP key; the click is not counted");
            return found(location);
        }
    };
    h.clicks.push(NewClick {
        id,
        tenant: target.tenant,
        link_id: target.link_id,
        campaign_id: target.campaign_id,
        influencer_id: target.influencer_id,
        time: now,
        country,
        device: agent::device(ua),
        referrer,
        bot: agent::is_bot(ua),
        ip_hash,
    });
    found(location)
}

/// The redirect, never cached: a cached 302 would send the next visitor on without a click.
fn found(location: String) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

async fn shopify_webhook(State(h): State<Http>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let domain = text("x-shopify-shop-domain").to_ascii_lowercase();
    let Some(shop) = h.shops.get(&domain) else {
        tracing::warn!(shop = %domain, "refused a webhook of an unknown shop");
        return (StatusCode::UNAUTHORIZED, "unknown shop".into());
    };
    let signature = text("x-shopify-hmac-sha256");
    if !shopify::verify(shop.secret.expose().as_bytes(), Some(&signature), &body) {
        tracing::warn!(shop = %domain, "refused a webhook with a wrong signature");
        return (StatusCode::UNAUTHORIZED, "signature missing or wrong".into());
    }
    let mut keys: Vec<(&str, String)> = Vec::new();
    for (kind, header) in [
        ("shopify-webhook", "x-shopify-webhook-id"),
        ("shopify-event", "x-shopify-event-id"),
    ] {
        let v = text(header);
        if !v.is_empty() && v.len() <= 200 {
            keys.push((kind, format!("{domain}/{v}")));
        }
    }
    let topic = text("x-shopify-topic");
    let answer = match topic.as_str() {
        "orders/create" | "orders/paid" | "orders/updated" => match shopify::order(&body) {
            Ok(o) => h
                .ingest
                .record(
                    &shop.tenant,
                    vec![OrderIn {
                        order_id: o.id,
                        order_time: o.created_at,
                        currency: o.currency,
                        revenue_minor: o.total_minor,
                        discount_codes: o.discount_codes,
                        clicks: o.clicks,
                        country: o.country,
                    }],
                    ConversionSource::Shopify,
                    &domain,
                    &keys,
                )
                .await
                .map(|r| if r.is_some() { "recorded" } else { "duplicate webhook" }),
            Err(why) => return (StatusCode::BAD_REQUEST, why),
        },
        "refunds/create" => match shopify::refund(&body) {
            Ok(r) if r.amount_minor == 0 => Ok("no money refunded"),
            Ok(r) => {
                let amount = chorus_proto::types::Money {
                    currency_code: r.currency,
                    amount_minor: r.amount_minor,
                };
                match h
                    .ingest
                    .store
                    .refund(&shop.tenant, &r.order_id, &format!("{domain}/{}", r.id), &amount, &keys)
                    .await
                {
                    Ok(_) => Ok("refund recorded"),
                    // An order recorded nowhere (placed before the shop was connected).
                    Err(e) if e.code() == chorus_kit::ErrorCode::NotFound => Ok("unknown order"),
                    // More than is left to refund, or another currency: retrying cannot help.
                    Err(e)
                        if matches!(
                            e.code(),
                            chorus_kit::ErrorCode::FailedPrecondition | chorus_kit::ErrorCode::InvalidArgument
                        ) =>
                    {
                        return (StatusCode::UNPROCESSABLE_ENTITY, e.message().to_owned());
                    }
                    Err(e) => Err(e),
                }
            }
            Err(why) => return (StatusCode::BAD_REQUEST, why),
        },
        // Other topics are acknowledged and ignored, so Shopify does not retry them.
        _ => Ok("ignored"),
    };
    match answer {
        Ok(what) => (StatusCode::OK, what.to_owned()),
        Err(e) => {
            tracing::warn!(error = %e.detail(), "could not apply a store webhook; the store will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "retry later".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_by_address_and_prefix() {
        let p = Proxies::parse("10.1.0.0/16, 192.168.1.7, ::1").unwrap();
        assert!(p.contains("10.1.200.3".parse().unwrap()));
        assert!(!p.contains("10.2.0.1".parse().unwrap()));
        assert!(p.contains("192.168.1.7".parse().unwrap()));
        assert!(!p.contains("192.168.1.8".parse().unwrap()));
        assert!(p.contains("::1".parse().unwrap()));
        assert!(p.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Proxies::parse("10.0.0.0/33").is_err());
        assert!(Proxies::parse("nope").is_err());
        assert!(!Proxies::default().contains("127.0.0.1".parse().unwrap()));
    }
}

#[derive(Debug, serde::Deserialize)]
struct ReportQuery {
    format: Option<String>,
    metric: Option<String>,
}

fn problem(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn error_response(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.code().http()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = problem(status, e.message());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    r
}

/// The metric a `metric=` names: `conversions_per_click` (the default),
/// `engagements_per_impression`, `revenue_per_influencer`, or the enum's own names.
pub fn metric_named(name: Option<&str>) -> Option<TestMetric> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Some(TestMetric::ConversionsPerClick);
    };
    let upper = name.to_ascii_uppercase();
    TestMetric::from_str_name(&upper)
        .or_else(|| TestMetric::from_str_name(&format!("TEST_METRIC_{upper}")))
        .filter(|m| *m != TestMetric::Unspecified)
}

/// `GET /v1/campaigns/{id}/report?format=json|csv|html&metric=...`, with `Authorization:
/// Bearer <token>`: 401 without a valid token, 403 without measurement.read, 404 for a
/// campaign the token's tenant has nothing of, 400 for a bad id, format or metric.
async fn report(
    State(h): State<Http>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(reports) = &h.reports else {
        return problem(StatusCode::NOT_FOUND, "reports are not served here");
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(token) = token else {
        return error_response(&Error::unauthenticated("missing bearer token"));
    };
    let caller = match reports.verifier.verify(token.trim()).await {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let tenant = match api::brand_of(&caller, api::READ) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    let Some(campaign) = CampaignName::from_id(&id) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "campaign: must be campaigns/{campaign} with a UUID id",
        );
    };
    let Some(metric) = metric_named(q.metric.as_deref()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "metric: one of conversions_per_click, engagements_per_impression, revenue_per_influencer",
        );
    };
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return problem(StatusCode::BAD_REQUEST, "format: one of json, csv, html");
    }
    let r = match reports.api.report(&tenant, &campaign, metric).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    match format {
        "csv" => match crate::render::csv(&r) {
            Ok(body) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response(),
            Err(e) => error_response(&Error::internal("write the report's CSV", e)),
        },
        "html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // Nothing but the page itself and its inline styles.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            crate::render::html(&r),
        )
            .into_response(),
        _ => match crate::render::json(&r) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
            Err(e) => error_response(&e),
        },
    }
}
