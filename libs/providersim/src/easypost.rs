//! The EasyPost side: a `tracker.updated` Event as EasyPost documents it, signed the way its
//! client libraries verify (`X-Hmac-Signature: hmac-sha256-hex=`, key = NFKD of the secret).

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// Sending a webhook failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("post the tracker event: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("no event {0} was sent before")]
    UnknownEvent(String),
}

/// A new event's id and raw body.
pub(crate) fn tracker_event(tracking_code: &str, status: &str) -> (String, Vec<u8>) {
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let tracker = format!("trk_{}", uuid::Uuid::new_v4().simple());
    let body = json!({
        "object": "Event", "id": id, "description": "tracker.updated", "mode": "test",
        "previous_attributes": {"status": "in_transit"},
        "result": {"object": "Tracker", "id": tracker, "tracking_code": tracking_code, "carrier": "USPS",
            "status": status, "status_detail": "arrived_at_destination", "public_url": format!("https://track.easypost.com/{tracker}"),
            "tracking_details": [{"object": "TrackingDetail", "message": "Update", "status": status,
                "tracking_location": {"city": "Austin", "state": "TX", "country": "US", "zip": "78701"}}]},
    });
    (id, body.to_string().into_bytes())
}

/// The header's value for a body: `hmac-sha256-hex=` and the hex HMAC-SHA256.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key: String = secret.nfkd().collect();
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256-hex={hex}")
}

pub(crate) async fn post(url: &str, secret: &str, body: Vec<u8>) -> Result<(), SendError> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hmac-signature", signature(secret, &body))
        .body(body)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(SendError::Status(response.status().as_u16()));
    }
    Ok(())
}
