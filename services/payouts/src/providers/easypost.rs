//! EasyPost tracker webhooks, verified and parsed: a constant-time check of the HMAC-SHA256 of
//! the raw body (key = NFKD of the webhook secret), then the event id (for the caller's dedupe,
//! delivery being at least once), the tracking code and the status. Pure: no HTTP here.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// The header EasyPost signs with.
pub const SIGNATURE_HEADER: &str = "X-Hmac-Signature";
const PREFIX: &str = "hmac-sha256-hex=";

/// A tracker's status as EasyPost documents it, keeping values it may add later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerStatus {
    Unknown,
    PreTransit,
    InTransit,
    OutForDelivery,
    Delivered,
    AvailableForPickup,
    ReturnToSender,
    Failure,
    Cancelled,
    Error,
    Other(String),
}

impl TrackerStatus {
    pub fn parse(value: &str) -> TrackerStatus {
        match value {
            "unknown" => TrackerStatus::Unknown,
            "pre_transit" => TrackerStatus::PreTransit,
            "in_transit" => TrackerStatus::InTransit,
            "out_for_delivery" => TrackerStatus::OutForDelivery,
            "delivered" => TrackerStatus::Delivered,
            "available_for_pickup" => TrackerStatus::AvailableForPickup,
            "return_to_sender" => TrackerStatus::ReturnToSender,
            "failure" => TrackerStatus::Failure,
            "cancelled" => TrackerStatus::Cancelled,
            "error" => TrackerStatus::Error,
            other => TrackerStatus::Other(other.to_owned()),
        }
    }
}

/// A verified tracker event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerEvent {
    /// `evt_…`: the same event may arrive more than once; dedupe on this.
    pub event_id: String,
    /// `tracker.created` or `tracker.updated`.
    pub description: String,
    pub tracking_code: String,
    pub carrier: Option<String>,
    pub status: TrackerStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no X-Hmac-Signature header")]
    MissingSignature,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("not a tracker event: {0}")]
    Malformed(String),
}

/// Verifies `signature` (the header's value) over the raw `body`, then parses the event.
pub fn verify_tracker_webhook(
    secret: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<TrackerEvent, WebhookError> {
    let signature = signature.ok_or(WebhookError::MissingSignature)?;
    let hex = signature
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(WebhookError::BadSignature)?;
    let expected = decode_hex(hex).ok_or(WebhookError::BadSignature)?;
    let key: String = secret.nfkd().collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)?;
    parse(body)
}

fn parse(body: &[u8]) -> Result<TrackerEvent, WebhookError> {
    let event: Value = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| WebhookError::Malformed(format!("no {what}")))
    };
    if event["object"] != "Event" {
        return Err(WebhookError::Malformed("object is not Event".into()));
    }
    let description = text(&event["description"], "description")?;
    if !description.starts_with("tracker.") {
        return Err(WebhookError::Malformed(format!("{description} is not a tracker event")));
    }
    let tracker = &event["result"];
    Ok(TrackerEvent {
        event_id: text(&event["id"], "id")?,
        description,
        tracking_code: text(&tracker["tracking_code"], "tracking_code")?,
        carrier: tracker["carrier"].as_str().map(str::to_owned),
        status: TrackerStatus::parse(&text(&tracker["status"], "status")?),
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}
