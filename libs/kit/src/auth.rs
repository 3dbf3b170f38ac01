//! Caller identity on every RPC. A bearer JWT (HS256, shared secret) is verified by an
//! interceptor that puts a [`Caller`] into the request; handlers then ask for the scope they
//! need. No token is UNAUTHENTICATED; a missing scope is PERMISSION_DENIED.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::error::Error;

/// Token issuer and audience every Chorus token carries.
pub const ISSUER: &str = "chorus";
pub const AUDIENCE: &str = "chorus";

/// The claims of a Chorus access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: String,
    /// Space-separated scopes, as in OAuth 2.0.
    pub scope: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
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
    /// The caller the interceptor attached to this request.
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
            Err(Error::permission_denied(format!("scope {scope} required")))
        }
    }
}

/// Signs and verifies tokens with one shared secret.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwt([redacted])")
    }
}

impl Jwt {
    pub fn new(secret: &Secret<String>) -> Self {
        let key = secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Jwt {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// Mints a token, for `chorus up`, `chorus token` and tests.
    pub fn mint(
        &self,
        subject: &str,
        tenant: &str,
        role: &str,
        scopes: &[&str],
        ttl: Duration,
    ) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            tenant: tenant.to_owned(),
            role: role.to_owned(),
            scope: scopes.join(" "),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("sign token", e))
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Error::unauthenticated(format!("invalid token: {e}")))?;
        let c = data.claims;
        Ok(Caller {
            subject: c.sub,
            tenant: c.tenant,
            role: c.role,
            scopes: c.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

/// The tonic interceptor: verifies `authorization: Bearer <jwt>` and attaches the [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticate {
    jwt: Arc<Jwt>,
}

impl Authenticate {
    pub fn new(jwt: Arc<Jwt>) -> Self {
        Authenticate { jwt }
    }
}

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Error::unauthenticated("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(|| Error::unauthenticated("authorization must be \"Bearer <token>\""))?;
        let caller = self.jwt.verify(token.trim())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn jwt(secret: &str) -> Jwt {
        Jwt::new(&Secret::new(secret.to_owned()))
    }

    #[test]
    fn a_minted_token_verifies_to_its_caller() {
        let j = jwt("s3cret");
        let token = j
            .mint("alice", "acme", "brand", &["registry.read"], Duration::from_secs(60))
            .unwrap();
        let caller = j.verify(&token).unwrap();
        assert_eq!(caller.subject, "alice");
        assert_eq!(caller.tenant, "acme");
        assert!(caller.require("registry.read").is_ok());
        let denied = caller.require("registry.write").unwrap_err();
        assert_eq!(denied.code(), crate::error::ErrorCode::PermissionDenied);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = jwt("a").mint("x", "t", "r", &[], Duration::from_secs(60)).unwrap();
        let err = jwt("b").verify(&token).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::Unauthenticated);
    }

    #[test]
    fn the_interceptor_refuses_a_request_without_token() {
        let mut auth = Authenticate::new(Arc::new(jwt("a")));
        let status = auth.call(tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
