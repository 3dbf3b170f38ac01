//! Partner API keys, in GitHub's token format: a visible prefix (`chk_`), 30 random base62
//! characters (178 bits) and a 6-character base62 CRC32 of them. The checksum lets the gateway
//! and the issuer tell a typo or a random string from a key without a database read, and lets
//! secret scanners find leaked keys. The issuer keeps only a key's SHA-256.

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode};

/// What every Chorus API key starts with.
pub const PREFIX: &str = "chk_";
/// Random characters in a key.
const RANDOM: usize = 30;
/// Characters of the checksum.
const CHECKSUM: usize = 6;
/// The length of a whole key.
pub const LENGTH: usize = PREFIX.len() + RANDOM + CHECKSUM;
/// Characters of a key shown in listings: the prefix and the first four random ones.
const VISIBLE: usize = PREFIX.len() + 4;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key that has the right shape and checksum (not yet known to the issuer).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}…)", self.visible())
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Result<ApiKey, Error> {
        let mut random = String::with_capacity(RANDOM);
        // Rejection sampling: bytes of 248 and above would favour the first characters.
        while random.len() < RANDOM {
            let mut buf = [0u8; 48];
            getrandom::fill(&mut buf).map_err(|e| Error::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
            random.extend(
                buf.iter()
                    .filter(|b| **b < 248)
                    .map(|b| BASE62[(*b % 62) as usize] as char)
                    .take(RANDOM - random.len()),
            );
        }
        Ok(ApiKey(format!("{PREFIX}{random}{}", checksum(&random))))
    }

    /// `s` when it is a Chorus key with a correct checksum; `None` for anything else.
    pub fn parse(s: &str) -> Option<ApiKey> {
        valid(s, PREFIX).then(|| ApiKey(s.to_owned()))
    }

    /// The whole key: shown once, to the caller who made it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The part of the key listings show, to tell keys apart.
    pub fn visible(&self) -> &str {
        &self.0[..VISIBLE]
    }

    /// SHA-256 of the key, in hex: how the issuer stores it and the gateway caches it.
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Whether `s` is `prefix`, 30 base62 characters and their checksum.
fn valid(s: &str, prefix: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix) else {
        return false;
    };
    if rest.len() != RANDOM + CHECKSUM || !rest.bytes().all(|b| BASE62.contains(&b)) {
        return false;
    }
    let (random, sum) = rest.split_at(RANDOM);
    checksum(random) == sum
}

/// CRC32 (IEEE) of the random part (never the prefix), base62, left-padded with `0` to six
/// characters.
fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes());
    let mut out = [b'0'; CHECKSUM];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| *b as char).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_checksum_is_githubs() {
        // GitHub's published example (PROVIDERS.md §7).
        assert!(valid("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", "ghp_"));
        assert!(!valid("ghp_M7H4jxUDDWHP4kZ6A4dxlQYsQIWJuq11T4V5", "ghp_"));
    }

    #[test]
    fn keys_are_random_and_checked() {
        let a = ApiKey::generate().unwrap();
        let b = ApiKey::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), LENGTH);
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(ApiKey::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.visible(), &a.expose()[..8]);
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(a.hash().len(), 64);
        // One character changed, anywhere in the random part, breaks the checksum.
        let mut typo = a.expose().to_owned().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(ApiKey::parse(&String::from_utf8(typo).unwrap()), None);
        assert_eq!(ApiKey::parse("chk_short"), None);
        assert_eq!(ApiKey::parse(&a.expose().replace("chk_", "ghp_")), None);
    }
}
