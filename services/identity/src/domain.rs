//! The issuer's rules: who a client is and what it may ask for, what a token granted from an
//! invitation or a refresh token holds, and how the secrets it hands out are made and kept
//! (random, shown once, stored as SHA-256 only, compared in constant time).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::Duration;

use chorus_kit::auth::api_key::ApiKey;
use chorus_kit::auth::role;
use chorus_kit::error::too_long;
use chorus_kit::names::{InfluencerName, ResourceName};
use chorus_kit::{Error, ErrorCode, Violations};
use chorus_proto::identity::{CreateApiKeyRequest, CreateInvitationRequest, IssueTokenRequest, issue_token_request};
use sha2::{Digest, Sha256};

// The bounds of every request field, quoted in identity.proto. Lengths count characters.

/// Longest scope list and scope a token request may name.
pub const MAX_SCOPES: usize = 32;
pub const MAX_SCOPE_CHARS: usize = 64;
pub const MAX_CLIENT_ID: usize = 64;
pub const MAX_CLIENT_SECRET: usize = 256;
/// Codes are 22 characters; room to change that.
pub const MAX_INVITATION_CODE: usize = 64;
/// Refresh tokens are 43 characters; room to change that.
pub const MAX_REFRESH_TOKEN: usize = 128;
/// Scopes one invitation may name.
pub const MAX_INVITATION_SCOPES: usize = 16;
/// How long an invitation code may stay valid, and how long when the request does not say.
pub const MAX_INVITATION_TTL: Duration = Duration::from_secs(30 * 86_400);
pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(7 * 86_400);
/// Longest display name of an API key.
pub const MAX_KEY_NAME: usize = 100;
/// How long an API key may live, and how long when the request does not say.
pub const MAX_KEY_TTL: Duration = Duration::from_secs(366 * 86_400);
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(90 * 86_400);
/// How long a rotated key may stay valid beside its successor, and how long by default.
pub use chorus_kit::auth::{DEFAULT_OVERLAP, MAX_OVERLAP};
/// The scope that manages API keys; no key may hold it, so a leaked key cannot mint others.
pub const KEYS_SCOPE: &str = "identity.keys";

/// A registered client: a service, or an operator's or partner's tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_sha256: [u8; 32],
    pub role: String,
    /// The tenant its tokens act for (a brand's tool); empty for services and operators.
    pub tenant: String,
    /// Every scope it may ask for.
    pub scopes: Vec<String>,
}

impl Client {
    /// Whether `secret` is this client's, compared in constant time.
    pub fn check_secret(&self, secret: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        given
            .iter()
            .zip(self.secret_sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The subject of its tokens: `service:<id>` for a service, the id otherwise.
    pub fn subject(&self) -> String {
        if self.role == role::SERVICE {
            format!("service:{}", self.id)
        } else {
            self.id.clone()
        }
    }
}

/// Parses `CHORUS_IDENTITY_CLIENTS`: a JSON list of
/// `{"id", "secret_sha256" (hex), "role", "tenant" (optional), "scopes"}`.
pub fn parse_clients(json: &str) -> Result<Vec<Client>, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        id: String,
        secret_sha256: String,
        role: String,
        #[serde(default)]
        tenant: String,
        #[serde(default)]
        scopes: Vec<String>,
    }
    let raw: Vec<Raw> = serde_json::from_str(json).map_err(|e| format!("not a JSON list of clients: {e}"))?;
    let mut out: Vec<Client> = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        if c.id.is_empty() || too_long(&c.id, MAX_CLIENT_ID) {
            return Err(format!("client {i}: id must be 1 to {MAX_CLIENT_ID} characters"));
        }
        if out.iter().any(|o| o.id == c.id) {
            return Err(format!("client {i}: id {:?} listed twice", c.id));
        }
        let secret_sha256 =
            hex32(&c.secret_sha256).ok_or_else(|| format!("client {}: secret_sha256 must be 64 hex digits", c.id))?;
        if ![role::SERVICE, role::ADMIN, role::BRAND].contains(&c.role.as_str()) {
            return Err(format!(
                "client {}: role must be service, admin or brand (influencers sign in by invitation)",
                c.id
            ));
        }
        out.push(Client {
            id: c.id,
            secret_sha256,
            role: c.role,
            tenant: c.tenant,
            scopes: c.scopes,
        });
    }
    Ok(out)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of `s`, in hex: how codes and refresh tokens are kept.
pub fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a requested scope list's bounds, naming the field.
pub fn check_scopes(scopes: &[String], field: &str) -> Result<(), Error> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid_field(field, format!("at most {MAX_SCOPES} scopes")));
    }
    if let Some((i, _)) = scopes
        .iter()
        .enumerate()
        .find(|(_, s)| s.is_empty() || too_long(s, MAX_SCOPE_CHARS) || s.chars().any(char::is_whitespace))
    {
        return Err(Error::invalid_field(
            format!("{field}[{i}]"),
            format!("1 to {MAX_SCOPE_CHARS} characters, no spaces"),
        ));
    }
    Ok(())
}

/// Checks an IssueTokenRequest's bounds: the scopes, and the one grant it carries.
pub fn check_issue_token(r: &IssueTokenRequest) -> Result<(), Error> {
    let mut v = Violations::new();
    v.take(check_scopes(&r.scopes, "scopes"))?;
    let bounded = |s: &str, max: usize| !s.is_empty() && !too_long(s, max);
    match &r.grant {
        None => v.add(
            "grant",
            "required: client_credentials, invitation_code, refresh_token or api_key",
        ),
        // The checksum tells a typo or a guess from a key before anything is looked up.
        Some(issue_token_request::Grant::ApiKey(key)) => v.check(
            ApiKey::parse(key).is_none(),
            "api_key",
            format!(
                "not a Chorus API key ({}, 30 characters and a 6-character checksum)",
                chorus_kit::auth::api_key::PREFIX
            ),
        ),
        Some(issue_token_request::Grant::ClientCredentials(c)) => {
            v.check(
                !bounded(&c.client_id, MAX_CLIENT_ID),
                "client_credentials.client_id",
                format!("1 to {MAX_CLIENT_ID} characters"),
            );
            v.check(
                !bounded(&c.client_secret, MAX_CLIENT_SECRET),
                "client_credentials.client_secret",
                format!("1 to {MAX_CLIENT_SECRET} characters"),
            );
        }
        Some(issue_token_request::Grant::InvitationCode(code)) => v.check(
            !bounded(code, MAX_INVITATION_CODE),
            "invitation_code",
            format!("1 to {MAX_INVITATION_CODE} characters"),
        ),
        Some(issue_token_request::Grant::RefreshToken(token)) => v.check(
            !bounded(token, MAX_REFRESH_TOKEN),
            "refresh_token",
            format!("1 to {MAX_REFRESH_TOKEN} characters"),
        ),
    }
    v.finish()
}

/// Checks a CreateInvitationRequest against its bounds and the scopes an influencer may hold
/// (`allowed`); returns how long the code is to stay valid.
pub fn check_invitation(r: &CreateInvitationRequest, allowed: &[String]) -> Result<Duration, Error> {
    let mut v = Violations::new();
    v.check(
        InfluencerName::parse(&r.influencer).is_none(),
        "influencer",
        format!("must be {} (a canonical UUID id)", InfluencerName::PATTERN),
    );
    v.check(
        r.scopes.len() > MAX_INVITATION_SCOPES,
        "scopes",
        format!("at most {MAX_INVITATION_SCOPES}"),
    );
    let scopes = &r.scopes[..r.scopes.len().min(MAX_INVITATION_SCOPES)];
    v.take(check_scopes(scopes, "scopes"))?;
    // A scope is named only once it is known to be short.
    if let Some(s) = scopes
        .iter()
        .find(|s| !too_long(s, MAX_SCOPE_CHARS) && !allowed.contains(s))
    {
        v.add(
            "scopes",
            format!("{s} is not an influencer scope ({})", allowed.join(", ")),
        );
    }
    let ttl = match &r.ttl {
        None => DEFAULT_INVITATION_TTL,
        Some(d) if d.seconds > 0 && d.seconds as u64 <= MAX_INVITATION_TTL.as_secs() && d.nanos >= 0 => {
            Duration::from_secs(d.seconds as u64)
        }
        Some(_) => {
            v.add("ttl", "more than 0 and at most 30 days");
            Duration::ZERO
        }
    };
    v.finish()?;
    Ok(ttl)
}

/// A duration field within `(0, max]` (0 allowed when `zero_ok`), or `default` when unset.
fn bounded_duration(
    d: Option<&prost_types::Duration>,
    default: Duration,
    max: Duration,
    zero_ok: bool,
) -> Option<Duration> {
    match d {
        None => Some(default),
        Some(d) if d.nanos == 0 && d.seconds >= i64::from(!zero_ok) && d.seconds as u64 <= max.as_secs() => {
            Some(Duration::from_secs(d.seconds as u64))
        }
        Some(_) => None,
    }
}

/// Checks a CreateApiKeyRequest against its bounds and the scopes the caller holds
/// (`allowed`); returns how long the key is to live.
pub fn check_create_api_key(r: &CreateApiKeyRequest, allowed: &[String]) -> Result<Duration, Error> {
    let mut v = Violations::new();
    v.check(
        r.display_name.trim().is_empty() || too_long(&r.display_name, MAX_KEY_NAME),
        "display_name",
        format!("1 to {MAX_KEY_NAME} characters"),
    );
    v.check(r.scopes.is_empty(), "scopes", "at least one");
    v.take(check_scopes(&r.scopes, "scopes"))?;
    if let Some(s) = r.scopes.iter().find(|s| *s == KEYS_SCOPE) {
        v.add("scopes", format!("{s} cannot be given to a key"));
    } else if let Some(s) = r
        .scopes
        .iter()
        .find(|s| !too_long(s, MAX_SCOPE_CHARS) && !allowed.contains(s))
    {
        v.add("scopes", format!("{s} is not among the caller's scopes"));
    }
    let ttl = bounded_duration(r.ttl.as_ref(), DEFAULT_KEY_TTL, MAX_KEY_TTL, false);
    v.check(ttl.is_none(), "ttl", "whole seconds, more than 0 and at most 366 days");
    v.finish()?;
    Ok(ttl.unwrap_or(DEFAULT_KEY_TTL))
}

/// The overlap of a rotation: whole seconds, at most 7 days; 24 hours when unset.
pub fn check_overlap(overlap: Option<&prost_types::Duration>) -> Result<Duration, Error> {
    chorus_kit::auth::rotation_overlap(overlap)
}

/// The scopes a token gets: those asked for, when every one is allowed; all allowed when none
/// is asked for. A scope outside the allowed set is PERMISSION_DENIED naming it.
pub fn narrow(allowed: &[String], asked: &[String]) -> Result<Vec<String>, Error> {
    if asked.is_empty() {
        return Ok(allowed.to_vec());
    }
    if let Some(s) = asked.iter().find(|s| !allowed.contains(s)) {
        return Err(
            Error::permission_denied(format!("scope {s} is not granted to this caller"))
                .with_reason("SCOPE_NOT_GRANTED"),
        );
    }
    let mut out = asked.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// A new secret of `bytes` random bytes, base64url: an invitation code (16 bytes, 22
/// characters) or a refresh token (32 bytes).
pub fn new_secret(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A refused grant: wrong client, unknown, used or expired code or refresh token. One message
/// for all, so a caller learns nothing about which.
pub fn invalid_grant() -> Error {
    Error::unauthenticated("the grant is invalid, used or expired").with_reason("INVALID_GRANT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: &str) -> Client {
        let json = format!(
            r#"[{{"id":"matching","secret_sha256":"{}","role":"service","scopes":["registry.read"]}}]"#,
            hash(secret)
        );
        parse_clients(&json).unwrap().remove(0)
    }

    #[test]
    fn a_client_is_known_by_its_secret_and_named_by_its_role() {
        let c = client("s3cret-s3cret");
        assert!(c.check_secret("s3cret-s3cret"));
        assert!(!c.check_secret("s3cret-s3creT"));
        assert!(!c.check_secret(""));
        assert_eq!(c.subject(), "service:matching");
    }

    #[test]
    fn client_lists_are_checked() {
        assert!(parse_clients("{}").is_err());
        let bad_hash = r#"[{"id":"a","secret_sha256":"abc","role":"service"}]"#;
        assert!(parse_clients(bad_hash).unwrap_err().contains("64 hex"));
        let h = hash("x");
        let influencer = format!(r#"[{{"id":"a","secret_sha256":"{h}","role":"influencer"}}]"#);
        assert!(parse_clients(&influencer).unwrap_err().contains("invitation"));
        let twice = format!(
            r#"[{{"id":"a","secret_sha256":"{h}","role":"admin"}},{{"id":"a","secret_sha256":"{h}","role":"admin"}}]"#
        );
        assert!(parse_clients(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn a_token_gets_only_allowed_scopes() {
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(narrow(&allowed, &[]).unwrap(), allowed);
        assert_eq!(narrow(&allowed, &["b".into(), "b".into()]).unwrap(), ["b"]);
        let err = narrow(&allowed, &["a".into(), "c".into()]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert!(err.message().contains("scope c"));
        assert!(check_scopes(&vec!["x".to_owned(); 33], "scopes").is_err());
        let spaced = check_scopes(&["a b".to_owned()], "scopes").unwrap_err();
        assert_eq!(spaced.violations()[0].field, "scopes[0]");
    }

    #[test]
    fn secrets_are_random_and_kept_as_hashes() {
        let a = new_secret(16).unwrap();
        let b = new_secret(16).unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }
}
