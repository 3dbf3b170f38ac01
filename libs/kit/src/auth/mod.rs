//! Caller identity on every RPC. One issuer (the identity service) signs short-lived tokens
//! with an Ed25519 key ([`keys`]); every service holds only the public keys, fetched as a JWKS
//! and cached, and verifies each call's bearer token ([`verify`]), caching what it verified
//! until it expires. A verified token becomes a [`Caller`]; handlers ask it for the scope they
//! need. No token is UNAUTHENTICATED; a missing scope is PERMISSION_DENIED. A service's own
//! calls to another carry a token of its own identity ([`tokens`]).

pub mod anonymous;
pub mod api_key;
pub mod keys;
pub mod tokens;
pub mod verify;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub use keys::{Issuer, SigningKey};
pub use tokens::TokenSource;
pub use verify::{Authenticated, KeySource, Verifier};

/// The `iss` of every Chorus token.
pub const ISSUER: &str = "chorus";
/// The `aud` of every Chorus token: the suite.
pub const AUDIENCE: &str = "chorus";
/// The longest a token may live, unless configured otherwise (`CHORUS_TOKEN_MAX_LIFETIME_S`).
pub const DEFAULT_MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How long a rotated secret (a partner's API key, a webhook signing secret) stays valid
/// beside its successor by default, and at most.
pub const DEFAULT_OVERLAP: std::time::Duration = std::time::Duration::from_secs(86_400);
pub const MAX_OVERLAP: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The `overlap` field of a rotation: whole seconds, 0 (retire the old secret at once) to 7
/// days; 24 hours when unset. INVALID_ARGUMENT naming `overlap` otherwise.
pub fn rotation_overlap(overlap: Option<&prost_types::Duration>) -> Result<std::time::Duration, Error> {
    match overlap {
        None => Ok(DEFAULT_OVERLAP),
        Some(d) if d.nanos == 0 && d.seconds >= 0 && d.seconds as u64 <= MAX_OVERLAP.as_secs() => {
            Ok(std::time::Duration::from_secs(d.seconds as u64))
        }
        Some(_) => Err(Error::invalid_field("overlap", "whole seconds, 0 to 7 days")),
    }
}

/// Roles a token can carry.
pub mod role {
    /// A service calling another with its own identity.
    pub const SERVICE: &str = "service";
    /// An influencer, signed in from an invitation; the subject is `influencers/{id}`.
    pub const INFLUENCER: &str = "influencer";
    /// A brand's or agency's user, or a partner app on its behalf.
    pub const BRAND: &str = "brand";
    /// An operator of the platform.
    pub const ADMIN: &str = "admin";
}

/// The claims of a Chorus access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// The brand or agency the caller acts for; empty for services and influencers.
    #[serde(default)]
    pub tenant: String,
    pub role: String,
    /// Space-separated scopes, as in OAuth 2.0.
    pub scope: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    /// The token's own id.
    #[serde(default)]
    pub jti: String,
}

/// Who a token is for: what the issuer puts in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: String,
    pub tenant: String,
    pub role: String,
    pub scopes: Vec<String>,
}

/// Who is calling: known on every authenticated RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub tenant: String,
    pub role: String,
    pub scopes: BTreeSet<String>,
}

impl Caller {
    /// The caller the authentication layer attached to this request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Error> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Error::unauthenticated("missing bearer token"))
    }

    /// Fails with PERMISSION_DENIED unless the caller holds `scope`.
    pub fn require(&self, scope: &str) -> Result<(), Error> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Error::permission_denied(format!("scope {scope} required")).with_reason("SCOPE_REQUIRED"))
        }
    }

    /// The influencer id when the caller is an influencer (`influencers/{id}`).
    pub fn influencer(&self) -> Option<&str> {
        (self.role == role::INFLUENCER)
            .then(|| self.subject.strip_prefix("influencers/"))
            .flatten()
    }
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Self {
        Caller {
            subject: c.sub,
            tenant: c.tenant,
            role: c.role,
            scopes: c.scope.split_whitespace().map(str::to_owned).collect(),
        }
    }
}
