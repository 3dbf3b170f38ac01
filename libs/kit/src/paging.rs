//! AIP-158 pagination: page sizes checked against a ceiling, and opaque page tokens that
//! carry a cursor plus a fingerprint of the query, so a token is refused when reused with
//! other filters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Longest page token accepted, in characters: tokens made here are far shorter (a cursor of a
/// few keys and a fingerprint), so a longer one was never ours.
pub const MAX_TOKEN: usize = 2_048;

/// `page_size` as the caller asked: 0 means `default`, negative or over `max` is invalid.
pub fn page_size(requested: i32, default: usize, max: usize) -> Result<usize, Error> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(Error::invalid_field("page_size", "must not be negative")),
        n if n as usize > max => Err(Error::invalid_field("page_size", format!("must be at most {max}"))),
        n => Ok(n as usize),
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Token<C> {
    /// Fingerprint of the query the token belongs to.
    q: u64,
    c: C,
}

/// Encodes `cursor` for the query identified by `query`.
pub fn encode<C: Serialize>(query: u64, cursor: &C) -> String {
    let json = serde_json::to_vec(&Token { q: query, c: cursor }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token made by [`encode`] for the same query; `None` for an empty token.
pub fn decode<C: DeserializeOwned>(token: &str, query: u64) -> Result<Option<C>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid_field("page_token", "malformed or from another query");
    if token.len() > MAX_TOKEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let t: Token<C> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.q != query {
        return Err(bad());
    }
    Ok(Some(t.c))
}

/// A stable fingerprint of a query's parameters (FNV-1a over their debug form).
pub fn fingerprint(parts: &impl std::fmt::Debug) -> u64 {
    format!("{parts:?}").bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0, 50, 1000).unwrap(), 50);
        assert_eq!(page_size(7, 50, 1000).unwrap(), 7);
        assert_eq!(page_size(-1, 50, 1000).unwrap_err().violations()[0].field, "page_size");
        assert!(page_size(1001, 50, 1000).is_err());
    }

    #[test]
    fn tokens_round_trip_and_bind_to_their_query() {
        let t = encode(9, &("abc".to_owned(), 5i64));
        assert_eq!(decode::<(String, i64)>(&t, 9).unwrap(), Some(("abc".to_owned(), 5)));
        assert!(decode::<(String, i64)>(&t, 10).is_err());
        assert!(decode::<(String, i64)>("%%%", 9).is_err());
        assert_eq!(decode::<(String, i64)>("", 9).unwrap(), None);
        let long = encode(9, &("x".repeat(MAX_TOKEN), 5i64));
        assert_eq!(
            decode::<(String, i64)>(&long, 9).unwrap_err().violations()[0].field,
            "page_token"
        );
    }
}
