//! The carrier webhook listener: EasyPost posts tracker events here. The signature is checked on
//! the raw body before anything is parsed (401 and nothing stored when it is wrong or missing),
//! each event id is applied once, and a product payout follows its shipment's status.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_kit::Error;
use chorus_kit::config::Secret;
use tokio_util::sync::CancellationToken;

use crate::providers::easypost::{self, TrackerStatus};
use crate::shipments::Shipments;

#[derive(Debug, Clone)]
struct Hooks {
    secret: Option<Arc<Secret<String>>>,
    shipments: Shipments,
}

/// The listener's routes, for `serve` and for tests that mount them.
pub fn router(secret: Option<Secret<String>>, shipments: Shipments) -> Router {
    Router::new()
        .route("/webhooks/easypost", post(easypost_event))
        .with_state(Hooks {
            secret: secret.map(Arc::new),
            shipments,
        })
}

/// Serves the webhooks on `addr` until stopped.
pub async fn serve(
    addr: SocketAddr,
    secret: Option<Secret<String>>,
    shipments: Shipments,
    stop: CancellationToken,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal("bind the webhook listener", e))?;
    tracing::info!(%addr, "carrier webhooks listening");
    axum::serve(listener, router(secret, shipments))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| Error::internal("serve carrier webhooks", e))
}

async fn easypost_event(State(h): State<Hooks>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let Some(secret) = &h.secret else {
        return (StatusCode::NOT_FOUND, "no EasyPost webhook secret is configured");
    };
    let signature = headers.get("x-hmac-signature").and_then(|v| v.to_str().ok());
    let event = match easypost::verify_tracker_webhook(secret.expose(), signature, &body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "refused a carrier webhook");
            return (StatusCode::UNAUTHORIZED, "signature missing or wrong");
        }
    };
    match h
        .shipments
        .tracker_event(
            &event.event_id,
            &event.tracking_code,
            event.carrier.as_deref().unwrap_or(""),
            status_name(&event.status),
        )
        .await
    {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e.detail(), "could not apply a carrier webhook; the carrier will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "retry later")
        }
    }
}

/// EasyPost's own spelling of a status, as shipments store it.
fn status_name(s: &TrackerStatus) -> &str {
    match s {
        TrackerStatus::Unknown => "unknown",
        TrackerStatus::PreTransit => "pre_transit",
        TrackerStatus::InTransit => "in_transit",
        TrackerStatus::OutForDelivery => "out_for_delivery",
        TrackerStatus::Delivered => "delivered",
        TrackerStatus::AvailableForPickup => "available_for_pickup",
        TrackerStatus::ReturnToSender => "return_to_sender",
        TrackerStatus::Failure => "failure",
        TrackerStatus::Cancelled => "cancelled",
        TrackerStatus::Error => "error",
        TrackerStatus::Other(other) => other,
    }
}
