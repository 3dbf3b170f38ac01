//! Shopify's order webhooks (PROVIDERS.md §4): the signature, checked on the raw body before
//! anything is parsed, and the few fields of an order and a refund that measurement reads.
//! Order ids exceed 2^53, so they are read from the JSON as exact integers (serde_json keeps
//! a u64 exact; nothing here goes through f64) and kept as text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_kit::clock::Micros;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::domain::days::parse_rfc3339;
use crate::domain::destination::{CLICK_PARAM, click_of};

/// Whether `signature` (the `X-Shopify-Hmac-Sha256` header: base64) is the HMAC-SHA256 of
/// `body` under `secret`. The comparison is constant-time (`Mac::verify_slice`).
pub fn verify(secret: &[u8], signature: Option<&str>, body: &[u8]) -> bool {
    let Some(given) = signature.and_then(|s| STANDARD.decode(s.trim()).ok()) else {
        return false;
    };
    mac(secret, body).is_some_and(|m| m.verify_slice(&given).is_ok())
}

/// The signature Shopify would send for `body`, for tests and the simulator.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    mac(secret, body).map_or_else(String::new, |m| STANDARD.encode(m.finalize().into_bytes()))
}

/// HMAC-SHA256 of `body` under `secret` (HMAC takes a key of any length, so this is always Some).
fn mac(secret: &[u8], body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(body);
    Some(m)
}

/// An order, as measurement reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub created_at: Micros,
    pub currency: String,
    pub total_minor: i64,
    pub discount_codes: Vec<String>,
    /// Click ids the order carried back (landing URL first, then note attributes).
    pub clicks: Vec<String>,
    /// The shipping address's `country_code`, else the billing address's; '' when neither
    /// has a two-letter one.
    pub country: String,
}

/// A refund: the order it belongs to and the money it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub order_id: String,
    pub currency: String,
    pub amount_minor: i64,
}

#[derive(Deserialize)]
struct RawOrder {
    id: Value,
    created_at: Option<String>,
    currency: Option<String>,
    total_price: Option<Value>,
    #[serde(default)]
    discount_codes: Vec<RawCode>,
    landing_site: Option<String>,
    note_attributes: Option<Vec<RawNote>>,
    shipping_address: Option<RawAddress>,
    billing_address: Option<RawAddress>,
}

#[derive(Deserialize)]
struct RawAddress {
    country_code: Option<String>,
}

#[derive(Deserialize)]
struct RawCode {
    code: String,
}

#[derive(Deserialize)]
struct RawNote {
    name: String,
    value: Value,
}

#[derive(Deserialize)]
struct RawRefund {
    id: Value,
    order_id: Value,
    #[serde(default)]
    transactions: Vec<RawTransaction>,
}

#[derive(Deserialize)]
struct RawTransaction {
    kind: Option<String>,
    status: Option<String>,
    amount: Option<Value>,
    currency: Option<String>,
}

/// An id as text: an integer exactly as written, or a string.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        _ => None,
    }
}

/// A decimal amount ("243.00", or a JSON number written with up to the currency's digits) in
/// minor units; exact, never through f64.
pub fn minor_units(v: &Value, currency: &str) -> Option<i64> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let digits = chorus_catalog::currency::minor_digits(currency)? as usize;
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.as_str()),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Trailing zeros past the currency's digits are fine; anything else is not money.
    let (kept, extra) = frac.split_at(frac.len().min(digits));
    if extra.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut minor: i64 = whole.parse().ok()?;
    minor = minor.checked_mul(10i64.pow(digits as u32))?;
    let frac_value: i64 = if kept.is_empty() {
        0
    } else {
        format!("{kept:0<digits$}").parse().ok()?
    };
    minor = minor.checked_add(frac_value)?;
    Some(if neg { -minor } else { minor })
}

/// Reads an order; what is wrong with it in words otherwise.
pub fn order(body: &[u8]) -> Result<Order, String> {
    let raw: RawOrder = serde_json::from_slice(body).map_err(|e| format!("not an order: {e}"))?;
    let id = id_text(&raw.id).ok_or("id: not an integer or a string")?;
    let currency = raw.currency.unwrap_or_default().to_ascii_uppercase();
    if !chorus_catalog::currency::is_currency(&currency) {
        return Err(format!("currency: {currency:?} is not an ISO 4217 code"));
    }
    let created_at = raw
        .created_at
        .as_deref()
        .and_then(parse_rfc3339)
        .ok_or("created_at: not an RFC 3339 time")?;
    let total_minor = raw
        .total_price
        .as_ref()
        .and_then(|v| minor_units(v, &currency))
        .filter(|m| *m >= 0)
        .ok_or("total_price: not an amount")?;
    let mut clicks: Vec<String> = raw.landing_site.as_deref().and_then(click_of).into_iter().collect();
    for n in raw.note_attributes.unwrap_or_default() {
        if n.name == CLICK_PARAM
            && let Value::String(v) = n.value
            && !v.is_empty()
            && v.len() <= 64
            && !clicks.contains(&v)
        {
            clicks.push(v);
        }
    }
    let country = [raw.shipping_address, raw.billing_address]
        .into_iter()
        .flatten()
        .filter_map(|a| a.country_code)
        .map(|c| c.trim().to_ascii_uppercase())
        .find(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .unwrap_or_default();
    Ok(Order {
        id,
        created_at,
        country,
        currency,
        total_minor,
        discount_codes: raw.discount_codes.into_iter().map(|c| c.code).collect(),
        clicks,
    })
}

/// Reads a refund: the sum of its successful refund transactions.
pub fn refund(body: &[u8]) -> Result<Refund, String> {
    let raw: RawRefund = serde_json::from_slice(body).map_err(|e| format!("not a refund: {e}"))?;
    let id = id_text(&raw.id).ok_or("id: not an integer or a string")?;
    let order_id = id_text(&raw.order_id).ok_or("order_id: not an integer or a string")?;
    let mut currency = String::new();
    let mut amount_minor = 0i64;
    for t in raw.transactions {
        if t.kind.as_deref() != Some("refund") || t.status.as_deref() != Some("success") {
            continue;
        }
        let c = t.currency.unwrap_or_default().to_ascii_uppercase();
        if !currency.is_empty() && c != currency {
            return Err("transactions: more than one currency".into());
        }
        let m = t
            .amount
            .as_ref()
            .and_then(|a| minor_units(a, &c))
            .ok_or("transactions.amount: not an amount")?;
        amount_minor = amount_minor.checked_add(m).ok_or("transactions.amount: too large")?;
        currency = c;
    }
    Ok(Refund {
        id,
        order_id,
        currency,
        amount_minor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_on_the_raw_body() {
        let body = br#"{"id":1}"#;
        let sig = sign(b"secret", body);
        assert!(verify(b"secret", Some(&sig), body));
        assert!(!verify(b"other", Some(&sig), body));
        assert!(!verify(b"secret", Some(&sig), br#"{"id":2}"#));
        assert!(!verify(b"secret", None, body));
        assert!(!verify(b"secret", Some("not base64!"), body));
    }

    #[test]
    fn order_ids_above_2_pow_53_are_kept_exactly() {
        let body = br#"{"id":9007199254740993,"created_at":"2023-01-10T21:18:40+02:00","currency":"USD","total_price":"243.00",
            "discount_codes":[{"code":"tenoff","amount":"10.00","type":"fixed_amount"}],
            "landing_site":"/shop?chorus_click=abc","note_attributes":[{"name":"chorus_click","value":"def"}]}"#;
        let o = order(body).unwrap();
        assert_eq!(o.id, "9007199254740993");
        assert_eq!(o.total_minor, 24_300);
        assert_eq!(o.discount_codes, ["tenoff"]);
        assert_eq!(o.clicks, ["abc", "def"]);
        assert_eq!(o.created_at, 1_673_378_320_000_000);
        let shopify = br#"{"id":820982911946154508,"created_at":"2023-01-10T21:18:40+02:00","currency":"JPY","total_price":"2430","landing_site":null,"note_attributes":null}"#;
        let o = order(shopify).unwrap();
        assert_eq!((o.id.as_str(), o.total_minor), ("820982911946154508", 2_430));
        assert!(o.clicks.is_empty());
        assert_eq!(o.country, "");
    }

    #[test]
    fn the_country_is_the_shipping_addresses_else_the_billing_one() {
        let body = |ship: &str, bill: &str| {
            format!(
                r#"{{"id":1,"created_at":"2023-01-10T21:18:40Z","currency":"USD","total_price":"1.00",
                "shipping_address":{ship},"billing_address":{bill}}}"#
            )
        };
        let country = |ship: &str, bill: &str| order(body(ship, bill).as_bytes()).unwrap().country;
        assert_eq!(country(r#"{"country_code":"de"}"#, r#"{"country_code":"US"}"#), "DE");
        assert_eq!(country("null", r#"{"country_code":"US"}"#), "US");
        assert_eq!(country(r#"{"country_code":null}"#, r#"{"country_code":"CA"}"#), "CA");
        assert_eq!(country(r#"{"country_code":"Germany"}"#, "null"), "");
    }

    #[test]
    fn amounts_are_exact_minor_units() {
        use serde_json::json;
        assert_eq!(minor_units(&json!("41.94"), "USD"), Some(4_194));
        assert_eq!(minor_units(&json!("41.9"), "USD"), Some(4_190));
        assert_eq!(minor_units(&json!("41.940"), "USD"), Some(4_194));
        assert_eq!(minor_units(&json!(195.66), "USD"), Some(19_566));
        assert_eq!(minor_units(&json!("41.941"), "USD"), None);
        assert_eq!(minor_units(&json!("12.345"), "KWD"), Some(12_345));
        assert_eq!(minor_units(&json!("1e3"), "USD"), None);
        assert_eq!(minor_units(&json!("4.5"), "XXX"), None);
    }

    #[test]
    fn a_refund_sums_its_successful_refund_transactions() {
        let body = br#"{"id":5,"order_id":9007199254740993,"transactions":[
            {"kind":"refund","status":"success","amount":"41.94","currency":"USD"},
            {"kind":"refund","status":"failure","amount":"100.00","currency":"USD"},
            {"kind":"refund","status":"success","amount":"8.06","currency":"USD"}]}"#;
        let r = refund(body).unwrap();
        assert_eq!(
            (r.order_id.as_str(), r.amount_minor, r.currency.as_str()),
            ("9007199254740993", 5_000, "USD")
        );
        assert!(order(b"{}").is_err());
        assert!(
            order(br#"{"id":1.5,"created_at":"2023-01-10T21:18:40Z","currency":"USD","total_price":"1"}"#).is_err()
        );
    }
}
