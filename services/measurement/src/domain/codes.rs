//! Short codes (`/l/{code}`) and promo codes: their shapes, and random ones.

use chorus_kit::Error;

/// A short code's length; 36^8 ≈ 2.8e12 codes, so a random one is new almost always (a clash
/// is retried).
pub const SHORT_LEN: usize = 8;
const SHORT_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Promo code characters the service picks from: no 0/O or 1/I, which buyers mistype.
const PROMO_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn random_from(alphabet: &[u8], n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(chorus_kit::ErrorCode::Internal, format!("no randomness: {e}")))?;
    // 256 is not a multiple of the alphabet's size; the bias (under 1%) does not matter for
    // codes that are unique by lookup, not by secrecy.
    Ok(bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect())
}

/// A new random short code.
pub fn new_short() -> Result<String, Error> {
    random_from(SHORT_ALPHABET, SHORT_LEN)
}

/// Whether `code` could be a short code (checked before any lookup).
pub fn is_short(code: &str) -> bool {
    code.len() == SHORT_LEN && code.bytes().all(|b| SHORT_ALPHABET.contains(&b))
}

/// A promo code as stored: upper case, 4..32 characters of [A-Z0-9-]; INVALID_ARGUMENT naming
/// `field` otherwise.
pub fn promo(code: &str, field: &str) -> Result<String, Error> {
    let up = code.trim().to_ascii_uppercase();
    if !(4..=32).contains(&up.len()) || !up.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::invalid_field(field, "4..32 characters of A-Z 0-9 -"));
    }
    Ok(up)
}

/// How an order's discount code is matched to a stored one: trimmed, upper case.
pub fn normalize(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// A random promo code after `prefix` (upper-cased), `n` characters long in all (at least 6
/// random characters).
pub fn new_promo(prefix: &str, random: usize) -> Result<String, Error> {
    Ok(format!(
        "{}{}",
        prefix.to_ascii_uppercase(),
        random_from(PROMO_ALPHABET, random)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_codes_have_one_shape() {
        let c = new_short().unwrap();
        assert!(is_short(&c), "{c}");
        assert!(!is_short("ABCDEFGH"));
        assert!(!is_short("abc"));
        assert!(!is_short("abcdefg/"));
    }

    #[test]
    fn promo_codes_are_upper_case_and_bounded() {
        assert_eq!(promo(" ana-10 ", "code").unwrap(), "ANA-10");
        assert_eq!(promo("abc", "code").unwrap_err().violations()[0].field, "code");
        assert!(promo("SPACE BAR", "code").is_err());
        assert!(promo(&"A".repeat(33), "code").is_err());
        let p = new_promo("spring", 8).unwrap();
        assert!(
            p.starts_with("SPRING") && p.len() == 14 && promo(&p, "c").is_ok(),
            "{p}"
        );
    }
}
