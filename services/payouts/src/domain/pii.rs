//! Field-level encryption of a payee's PII at rest (AES-256-GCM). Each value is sealed on its
//! own, tagged with the id of the key that sealed it (so keys rotate: seal with the current,
//! open with any) and bound to its row and column by associated data (so a ciphertext copied
//! into another payee's row, or another column, does not open).

use std::fmt;

use aes_gcm::aead::rand_core::{OsRng, RngCore};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chorus_kit::config::Secret;
use chorus_kit::{Error, ErrorCode};

/// The format tag of a sealed value; a new layout gets a new tag, old values stay readable.
const VERSION: &str = "v1";
/// GCM's standard nonce: 96 random bits. With random nonces NIST SP 800-38D caps one key at
/// 2^32 seals, far beyond a tenant's payees times their fields; rotation resets the count.
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
/// Key ids appear in every sealed value: short, and free of the separators `.`, `:` and `,`.
const MAX_KID: usize = 32;
/// Domain separation: these associated data can never equal another use's.
const AAD_CONTEXT: &[u8] = b"chorus.payouts.pii.v1";
/// Domain separation of the pseudonym key derived from each PII key.
const PSEUDONYM_LABEL: &[u8] = b"chorus.payouts.pseudonym.v1";

/// Why a key configuration or a sealed value was refused. Never carries key material or
/// plaintext, so it may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiError {
    #[error("PII key configuration: {0}")]
    Config(String),
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error("sealed value uses key `{0}`, which is not configured (was it removed too early?)")]
    UnknownKey(String),
    /// Wrong key, wrong row or field, or altered bytes: GCM cannot tell these apart.
    #[error("sealed value does not open: altered, or bound to another row or field")]
    Unauthentic,
    #[error("no randomness for a nonce: {0}")]
    Randomness(String),
}

impl From<PiiError> for Error {
    fn from(e: PiiError) -> Self {
        match e {
            PiiError::Config(_) => {
                Error::new(ErrorCode::FailedPrecondition, e.to_string()).with_reason("PII_KEYS_INVALID")
            }
            other => Error::internal("open or seal payee PII", other),
        }
    }
}

/// Which row and column a sealed value belongs to; its encoding is the GCM associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub tenant: &'a str,
    pub payee: &'a str,
    pub field: &'a str,
}

impl Binding<'_> {
    /// Length-prefixed parts, so ("ab", "c") and ("a", "bc") never collide.
    fn aad(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(AAD_CONTEXT.len() + 24 + self.tenant.len() + self.payee.len() + self.field.len());
        out.extend_from_slice(AAD_CONTEXT);
        for part in [self.tenant, self.payee, self.field] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A sealed value as stored: `v1.<kid>.<nonce>.<ciphertext>`, base64url without padding (text,
/// so it fits a TEXT column on both engines and reads the same in a dump).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// A stored value, not yet checked: `PiiKeys::open` checks it.
    pub fn from_stored(text: impl Into<String>) -> Self {
        Sealed(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the key that sealed it, if the value is well formed.
    pub fn key_id(&self) -> Option<&str> {
        self.parts().ok().map(|p| p.kid)
    }

    fn parts(&self) -> Result<Parts<'_>, PiiError> {
        let mut it = self.0.split('.');
        let (Some(version), Some(kid), Some(nonce), Some(ciphertext), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(PiiError::Malformed("expected v1.<kid>.<nonce>.<ciphertext>"));
        };
        if version != VERSION {
            return Err(PiiError::Malformed("unknown version"));
        }
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| PiiError::Malformed("nonce is not base64url"))?;
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| PiiError::Malformed("nonce is not 96 bits"))?;
        let ciphertext = URL_SAFE_NO_PAD
            .decode(ciphertext)
            .map_err(|_| PiiError::Malformed("ciphertext is not base64url"))?;
        Ok(Parts { kid, nonce, ciphertext })
    }
}

/// Ciphertext reveals only length and key id, but a dump of rows has no business showing it.
impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key_id() {
            Some(kid) => write!(f, "Sealed({kid}, {} bytes)", self.0.len()),
            None => f.write_str("Sealed(malformed)"),
        }
    }
}

struct Parts<'a> {
    kid: &'a str,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
    /// HMAC-SHA256 of the key under a fixed label: the key erasure's pseudonyms are made with
    /// (`domain::erasure::pseudonym`), separate from the encryption key itself.
    pseudonym: Secret<Vec<u8>>,
}

/// The configured keys: the first is current (it seals), all of them open. Rotating is adding
/// a new key in front, re-sealing at leisure (`needs_reseal`, `reseal`), then dropping the old.
pub struct PiiKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for PiiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "PiiKeys {{ ids: {ids:?}, keys: [redacted] }}")
    }
}

impl PiiKeys {
    /// Reads `k2:BASE64,k1:BASE64` (standard base64 of 32 random bytes each, e.g.
    /// `openssl rand -base64 32`); the first entry is the current key.
    pub fn parse(config: &Secret<String>) -> Result<Self, PiiError> {
        let text = config.expose().trim();
        if text.is_empty() {
            return Err(PiiError::Config(
                "no keys: expected `kid:BASE64_32_BYTES[,kid:...]`".into(),
            ));
        }
        let mut keys: Vec<Key> = Vec::new();
        for (i, entry) in text.split(',').enumerate() {
            let key = parse_entry(i + 1, entry.trim())?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(PiiError::Config(format!(
                    "entry {}: key id `{}` appears twice",
                    i + 1,
                    key.id
                )));
            }
            keys.push(key);
        }
        Ok(PiiKeys { keys })
    }

    /// The key erased payees' pseudonyms are made with, derived from the current key. A
    /// pseudonym is stored when it is made, so rotating keys never renames an erased payee.
    pub fn pseudonym_key(&self) -> Option<&Secret<Vec<u8>>> {
        self.keys.first().map(|k| &k.pseudonym)
    }

    /// The id new values are sealed with.
    pub fn current_id(&self) -> &str {
        // parse refuses an empty list, so there is always a first key.
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    pub fn seal(&self, plaintext: &str, at: Binding<'_>) -> Result<Sealed, PiiError> {
        let key = self.keys.first().ok_or_else(|| PiiError::Config("no keys".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| PiiError::Randomness(e.to_string()))?;
        let aad = at.aad();
        let ciphertext = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            // aes-gcm fails only on a message over 64 GiB.
            .map_err(|_| PiiError::Malformed("value too large to seal"))?;
        Ok(Sealed(format!(
            "{VERSION}.{}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        )))
    }

    pub fn open(&self, sealed: &Sealed, at: Binding<'_>) -> Result<Secret<String>, PiiError> {
        let parts = sealed.parts()?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parts.kid)
            .ok_or_else(|| PiiError::UnknownKey(parts.kid.to_owned()))?;
        let aad = at.aad();
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(parts.nonce),
                Payload {
                    msg: &parts.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| PiiError::Unauthentic)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| PiiError::Malformed("plaintext is not UTF-8"))
    }

    /// Whether a value was sealed with an older key and should be re-sealed.
    pub fn needs_reseal(&self, sealed: &Sealed) -> bool {
        sealed.key_id() != Some(self.current_id())
    }

    /// Opens with whichever key sealed it, seals again with the current one.
    pub fn reseal(&self, sealed: &Sealed, at: Binding<'_>) -> Result<Sealed, PiiError> {
        let plain = self.open(sealed, at)?;
        self.seal(plain.expose(), at)
    }
}

/// One `kid:BASE64` entry; errors say which entry (by position and id), never the key itself.
fn parse_entry(position: usize, entry: &str) -> Result<Key, PiiError> {
    let bad = |why: String| PiiError::Config(format!("entry {position}: {why}"));
    let (id, b64) = entry
        .split_once(':')
        .ok_or_else(|| bad("expected `kid:BASE64_32_BYTES`, found no `:`".into()))?;
    let id = id.trim();
    if id.is_empty() || id.len() > MAX_KID || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(bad(format!("key id must be 1-{MAX_KID} of [A-Za-z0-9_-]")));
    }
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| bad(format!("key `{id}` is not standard base64")))?;
    if bytes.len() != KEY_LEN {
        return Err(bad(format!(
            "key `{id}` is {} bytes, AES-256 needs {KEY_LEN}",
            bytes.len()
        )));
    }
    let cipher =
        Aes256Gcm::new_from_slice(&bytes).map_err(|_| bad(format!("key `{id}` is not a valid AES-256 key")))?;
    let pseudonym = {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&bytes)
            .map_err(|_| bad(format!("key `{id}` is not a valid HMAC key")))?;
        mac.update(PSEUDONYM_LABEL);
        Secret::new(mac.finalize().into_bytes().to_vec())
    };
    Ok(Key {
        id: id.to_owned(),
        cipher,
        pseudonym,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn b64(fill: u8) -> String {
        STANDARD.encode([fill; KEY_LEN])
    }

    fn keys(config: &str) -> PiiKeys {
        PiiKeys::parse(&Secret::new(config.to_owned())).unwrap()
    }

    fn config_error(config: &str) -> String {
        match PiiKeys::parse(&Secret::new(config.to_owned())) {
            Err(PiiError::Config(why)) => why,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    const AT: Binding<'static> = Binding {
        tenant: "t1",
        payee: "p1",
        field: "tax_id",
    };

    #[test]
    fn the_pseudonym_key_is_the_current_keys_own_and_not_the_key_itself() {
        let k1 = keys(&format!("k1:{}", b64(1)));
        let k2_then_k1 = keys(&format!("k2:{},k1:{}", b64(2), b64(1)));
        let of = |k: &PiiKeys| k.pseudonym_key().unwrap().expose().clone();
        assert_eq!(of(&k1), of(&keys(&format!("k1:{}", b64(1)))), "stable for a key");
        assert_ne!(of(&k1), of(&k2_then_k1), "the current key's");
        assert_eq!(of(&k1).len(), 32);
        assert_ne!(of(&k1), vec![1u8; 32], "derived, not the AES key");
        assert!(!format!("{k1:?}").contains(&format!("{:?}", of(&k1))));
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let k = keys(&format!("k1:{}", b64(7)));
        let a = k.seal("123-45-6789", AT).unwrap();
        let b = k.seal("123-45-6789", AT).unwrap();
        assert_ne!(a, b, "random nonces: equal plaintexts seal differently");
        assert!(a.as_str().starts_with("v1.k1."));
        assert!(!a.as_str().contains("6789"));
        assert_eq!(k.open(&a, AT).unwrap().expose(), "123-45-6789");
        assert_eq!(
            k.open(&Sealed::from_stored(b.as_str()), AT).unwrap().expose(),
            "123-45-6789"
        );
    }

    #[test]
    fn another_row_or_field_does_not_open() {
        let k = keys(&format!("k1:{}", b64(7)));
        let s = k.seal("1 Main St", AT).unwrap();
        for other in [
            Binding { tenant: "t2", ..AT },
            Binding { payee: "p2", ..AT },
            Binding { field: "address", ..AT },
            // the same bytes split differently must not collide
            Binding {
                tenant: "t1p",
                payee: "1",
                ..AT
            },
        ] {
            assert_eq!(k.open(&s, other).unwrap_err(), PiiError::Unauthentic, "{other:?}");
        }
    }

    #[test]
    fn tampered_values_fail() {
        let k = keys(&format!("k1:{}", b64(7)));
        let s = k.seal("acct_1ABC", AT).unwrap();
        let parts: Vec<&str> = s.as_str().split('.').collect();
        let mut ct = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        ct[0] ^= 1;
        let flipped = format!("v1.k1.{}.{}", parts[2], URL_SAFE_NO_PAD.encode(&ct));
        assert_eq!(
            k.open(&Sealed::from_stored(flipped), AT).unwrap_err(),
            PiiError::Unauthentic
        );
        let mut nonce = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        nonce[11] ^= 0x80;
        let renonced = format!("v1.k1.{}.{}", URL_SAFE_NO_PAD.encode(&nonce), parts[3]);
        assert_eq!(
            k.open(&Sealed::from_stored(renonced), AT).unwrap_err(),
            PiiError::Unauthentic
        );
        let truncated = &s.as_str()[..s.as_str().len() - 4];
        assert!(k.open(&Sealed::from_stored(truncated), AT).is_err());
        for junk in [
            "",
            "v1.k1.x",
            "v2.k1.AAAAAAAAAAAAAAAA.AAAA",
            "v1.k1.AAAA.AAAA",
            "v1.k1.AAAAAAAAAAAAAAAA.AAAA.x",
        ] {
            assert!(
                matches!(k.open(&Sealed::from_stored(junk), AT), Err(PiiError::Malformed(_))),
                "{junk}"
            );
        }
    }

    #[test]
    fn unknown_key_id_is_named() {
        let old = keys(&format!("k1:{}", b64(1)));
        let s = old.seal("x", AT).unwrap();
        let new = keys(&format!("k2:{}", b64(2)));
        let err = new.open(&s, AT).unwrap_err();
        assert_eq!(err, PiiError::UnknownKey("k1".into()));
        assert!(err.to_string().contains("`k1`"), "{err}");
    }

    #[test]
    fn rotation_seals_with_the_first_and_opens_with_any() {
        let before = keys(&format!("k1:{}", b64(1)));
        let old = before.seal("paypal@example.com", AT).unwrap();
        let after = keys(&format!("k2:{}, k1:{}", b64(2), b64(1)));
        assert_eq!(after.current_id(), "k2");
        assert_eq!(after.open(&old, AT).unwrap().expose(), "paypal@example.com");
        assert!(after.needs_reseal(&old));
        let new = after.reseal(&old, AT).unwrap();
        assert_eq!(new.key_id(), Some("k2"));
        assert!(!after.needs_reseal(&new));
        assert_eq!(after.open(&new, AT).unwrap().expose(), "paypal@example.com");
        // Once every value is re-sealed, k1 can go.
        let only_new = keys(&format!("k2:{}", b64(2)));
        assert_eq!(only_new.open(&new, AT).unwrap().expose(), "paypal@example.com");
    }

    #[test]
    fn debug_never_shows_keys_or_plaintext() {
        let key_b64 = b64(9);
        let k = keys(&format!("k1:{key_b64}"));
        let shown = format!("{k:?}");
        assert!(shown.contains("[redacted]") && shown.contains("k1"), "{shown}");
        assert!(!shown.contains(&key_b64[..8]), "{shown}");
        let plain = k.open(&k.seal("123-45-6789", AT).unwrap(), AT).unwrap();
        let shown = format!("{plain:?}");
        assert!(shown.contains("[redacted]") && !shown.contains("6789"), "{shown}");
    }

    #[test]
    fn bad_configuration_names_the_problem() {
        let good = b64(1);
        assert!(config_error("").contains("no keys"));
        assert!(config_error(&good).contains("entry 1") && config_error(&good).contains("no `:`"));
        let short = STANDARD.encode([1u8; 31]);
        let e = config_error(&format!("k1:{good},k2:{short}"));
        assert!(
            e.contains("entry 2") && e.contains("`k2`") && e.contains("31 bytes"),
            "{e}"
        );
        assert!(!e.contains(&short), "the key itself is never echoed: {e}");
        assert!(config_error(&format!("k1:{good},k1:{good}")).contains("appears twice"));
        assert!(config_error("k1:not base64!").contains("not standard base64"));
        assert!(config_error(&format!("k.1:{good}")).contains("key id"));
        assert!(config_error(&format!(":{good}")).contains("key id"));
    }
}
