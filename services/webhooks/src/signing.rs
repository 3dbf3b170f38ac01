//! Standard Webhooks signatures: a secret is `whsec_` and the base64 of random bytes (the key is
//! their decode); a delivery is signed `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`,
//! and during a rotation by both secrets, space-separated. Checked against the specification's
//! published vector (test below).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_kit::{Error, ErrorCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix Standard Webhooks (and Stripe) give signing secrets.
pub const PREFIX: &str = "whsec_";
/// Random bytes in a new secret: the spec allows 24 to 64.
const SECRET_BYTES: usize = 32;

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> Result<String, Error> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key)
        .map_err(|e| Error::new(ErrorCode::Internal, format!("no randomness for a webhook secret: {e}")))?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The HMAC key of `secret`: the base64 decode of what follows `whsec_`.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

/// One signature, `v1,<base64>`, of a delivery under `secret`; `None` for a malformed secret
/// (never made here).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_of(secret)?).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret still signing, current first.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// standard-webhooks/standard-webhooks, the specification's example (PROVIDERS.md §6).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn signs_the_published_vector() {
        assert_eq!(
            sign(SECRET, ID, TS, BODY).as_deref(),
            Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=")
        );
    }

    #[test]
    fn two_secrets_give_two_signatures_current_first() {
        let other = new_secret().unwrap();
        let h = header(&[&other, SECRET], ID, TS, BODY);
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[0].to_owned()), sign(&other, ID, TS, BODY));
        assert_eq!(parts[1], "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn a_new_secret_is_whsec_and_32_random_bytes() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert_eq!(key_of(&a).map(|k| k.len()), Some(32));
        assert!(sign("not-a-secret", ID, TS, BODY).is_none());
    }
}
