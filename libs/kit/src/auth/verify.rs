//! Verifying bearer tokens. A [`Verifier`] knows the issuer's public keys, from configuration
//! or fetched from the identity service (GetJwks) and cached; a token naming a key it does not
//! know makes it fetch again (at most every few seconds, so a flood of forged `kid`s costs one
//! fetch). Only `EdDSA` is accepted: `alg: none`, HS256 (even one "signed" with the public
//! key), RS256 and the rest are refused before any key is looked at. Verified tokens are cached
//! until they expire, so a hot path pays for a signature check once per token.
//!
//! [`Authenticated`] wraps a gRPC service: it verifies `authorization: Bearer <token>` and puts
//! the [`Caller`] in the request, or answers UNAUTHENTICATED; methods a service names as open
//! (the identity service's token endpoint) pass without a token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::{GetJwksRequest, JsonWebKey};
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use tonic::server::NamedService;

use super::{AUDIENCE, Caller, Claims, ISSUER};
use crate::error::{Error, ErrorCode};

/// Where a verifier finds the issuer's public keys.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Given in configuration (`CHORUS_JWKS`, a JWKS document).
    Static(Vec<JsonWebKey>),
    /// Fetched from the identity service at this URL (`CHORUS_IDENTITY_URL`).
    Identity(String),
}

/// Verified tokens kept at most, beyond which the cache starts over.
const CACHE_ENTRIES: usize = 50_000;
/// Shortest time between two fetches of the keys.
const REFETCH_AFTER: Duration = Duration::from_secs(5);

/// Verifies tokens against the issuer's public keys.
#[derive(Debug)]
pub struct Verifier {
    source: KeySource,
    keys: RwLock<HashMap<String, DecodingKey>>,
    fetch: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
    max_lifetime: Duration,
    /// SHA-256 of a token, to its caller and expiry (unix seconds).
    verified: Mutex<HashMap<[u8; 32], (Caller, u64)>>,
}

impl Verifier {
    pub fn new(source: KeySource, max_lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let keys = match &source {
            KeySource::Static(jwks) => decoding_keys(jwks),
            KeySource::Identity(_) => HashMap::new(),
        };
        Verifier {
            source,
            keys: RwLock::new(keys),
            fetch: tokio::sync::Mutex::new(None),
            validation,
            max_lifetime,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The caller a token names, once its signature, issuer, audience, lifetime and expiry
    /// hold.
    pub async fn verify(&self, token: &str) -> Result<Caller, Error> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        if let Ok(cache) = self.verified.lock()
            && let Some((caller, exp)) = cache.get(&digest)
            && *exp > now
        {
            return Ok(caller.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("malformed token: {e}")))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid(format!(
                "algorithm {:?} is not accepted; tokens are EdDSA",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| invalid("the token names no key (kid)"))?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.key(&kid)
                    .ok_or_else(|| invalid(format!("unknown signing key {kid:?}")))?
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| invalid(format!("invalid token: {e}")))?;
        let claims = data.claims;
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime.as_secs() {
            return Err(invalid(format!(
                "the token lives longer than the {} s a token may",
                self.max_lifetime.as_secs()
            )));
        }
        if claims.iat > now + 60 {
            return Err(invalid("the token was issued in the future"));
        }
        let exp = claims.exp;
        let caller = Caller::from(claims);
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, (_, e)| *e > now);
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(digest, (caller.clone(), exp));
        }
        Ok(caller)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Fetches the keys again, unless another call did within the last few seconds.
    pub async fn refresh(&self) -> Result<(), Error> {
        let KeySource::Identity(url) = &self.source else {
            return Ok(());
        };
        let mut last = self.fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_AFTER) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks = fetch_jwks(url).await?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = decoding_keys(&jwks);
        }
        Ok(())
    }
}

/// The issuer's public keys, from the identity service at `url`.
pub async fn fetch_jwks(url: &str) -> Result<Vec<JsonWebKey>, Error> {
    let unavailable =
        |e: String| Error::unavailable(format!("cannot reach the token issuer at {url} to verify tokens: {e}"));
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| Error::invalid_field("CHORUS_IDENTITY_URL", e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let keys = IdentityServiceClient::new(channel)
        .get_jwks(GetJwksRequest {})
        .await
        .map_err(|s| unavailable(s.message().to_owned()))?
        .into_inner()
        .keys;
    Ok(keys)
}

fn decoding_keys(jwks: &[JsonWebKey]) -> HashMap<String, DecodingKey> {
    jwks.iter()
        .filter(|k| k.kty == "OKP" && k.crv == "Ed25519" && !k.kid.is_empty())
        .filter_map(|k| Some((k.kid.clone(), DecodingKey::from_ed_components(&k.x).ok()?)))
        .collect()
}

/// Parses a JWKS document (`{"keys": [...]}`), as `CHORUS_JWKS` holds it.
pub fn parse_jwks(json: &str) -> Result<Vec<JsonWebKey>, Error> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<Key>,
    }
    #[derive(serde::Deserialize)]
    struct Key {
        kty: String,
        #[serde(default)]
        crv: String,
        #[serde(default)]
        x: String,
        #[serde(default)]
        kid: String,
        #[serde(default)]
        alg: String,
        #[serde(default, rename = "use")]
        key_use: String,
    }
    let doc: Doc = serde_json::from_str(json).map_err(|e| Error::invalid_field("CHORUS_JWKS", e.to_string()))?;
    Ok(doc
        .keys
        .into_iter()
        .map(|k| JsonWebKey {
            kty: k.kty,
            crv: k.crv,
            x: k.x,
            kid: k.kid,
            alg: k.alg,
            r#use: k.key_use,
        })
        .collect())
}

/// A JWKS document for `keys`.
pub fn jwks_json(keys: &[JsonWebKey]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.r#use}))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn invalid(why: impl Into<String>) -> Error {
    Error::unauthenticated(why).with_reason("INVALID_TOKEN")
}

fn unix_now() -> u64 {
    u64::try_from(crate::clock::Clock::system().now_micros() / 1_000_000).unwrap_or_default()
}

/// The bearer token of a request's headers.
fn bearer(headers: &http::HeaderMap) -> Result<Option<&str>, Error> {
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .ok_or_else(|| Error::unauthenticated("authorization must be \"Bearer <token>\""))?;
    Ok(Some(token.trim()))
}

/// A gRPC service behind token verification. Its methods the protos mark
/// `allow_anonymous` ([`super::anonymous`]) answer without a token too; a token given to them
/// is still verified.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> Authenticated<S> {
    pub fn new(inner: S, verifier: Arc<Verifier>) -> Self {
        Authenticated { inner, verifier }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Authenticated<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let open = super::anonymous::allows_anonymous(request.uri().path());
        Box::pin(async move {
            let caller = match bearer(request.headers()) {
                Ok(Some(token)) => verifier.verify(token).await.map(Some),
                Ok(None) if open => Ok(None),
                Ok(None) => Err(Error::unauthenticated("missing bearer token").with_reason("MISSING_TOKEN")),
                Err(e) => Err(e),
            };
            match caller {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Ok(None) => inner.call(request).await,
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

impl Error {
    /// UNAVAILABLE: a dependency is down; the caller may retry (RetryInfo says when).
    pub fn unavailable(what: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unavailable, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Grant, Issuer, SigningKey};

    fn grant() -> Grant {
        Grant {
            subject: "alice".into(),
            tenant: "acme".into(),
            role: "brand".into(),
            scopes: vec!["registry.read".into()],
        }
    }

    fn pair() -> (Issuer, Verifier) {
        let issuer = Issuer::new(SigningKey::generate().unwrap(), Duration::from_secs(3600));
        let verifier = Verifier::new(KeySource::Static(issuer.jwks()), Duration::from_secs(3600));
        (issuer, verifier)
    }

    fn refused(result: Result<Caller, Error>, says: &str) {
        let e = result.expect_err("refused");
        assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
        assert!(e.message().contains(says), "{:?} should say {says:?}", e.message());
    }

    #[tokio::test]
    async fn a_minted_token_verifies_to_its_caller() {
        let (issuer, verifier) = pair();
        let (token, _) = issuer.mint(&grant(), Duration::from_secs(60)).unwrap();
        let caller = verifier.verify(&token).await.unwrap();
        assert_eq!((caller.subject.as_str(), caller.tenant.as_str()), ("alice", "acme"));
        assert!(caller.require("registry.read").is_ok());
        assert_eq!(
            caller.require("registry.write").unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        // Verified once, then from the cache.
        assert_eq!(verifier.verify(&token).await.unwrap(), caller);
    }

    #[tokio::test]
    async fn expired_tokens_are_refused() {
        let (issuer, verifier) = pair();
        let past = Clock::manual(Clock::system().now_micros() - 7_200_000_000);
        let (token, _) = issuer
            .with_clock(past)
            .mint(&grant(), Duration::from_secs(600))
            .unwrap();
        refused(verifier.verify(&token).await, "ExpiredSignature");
    }

    #[tokio::test]
    async fn another_issuers_key_is_an_unknown_kid() {
        let (_, verifier) = pair();
        let (other, _) = pair();
        let (token, _) = other.mint(&grant(), Duration::from_secs(60)).unwrap();
        refused(verifier.verify(&token).await, "unknown signing key");
    }

    #[tokio::test]
    async fn wrong_audience_or_issuer_or_a_long_life_is_refused() {
        let key = SigningKey::generate().unwrap();
        let verifier = Verifier::new(KeySource::Static(vec![key.public_jwk()]), Duration::from_secs(3600));
        let sign = |claims: &Claims| {
            let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
            header.kid = Some(key.kid().to_owned());
            jsonwebtoken::encode(&header, claims, &key.encoding_key()).unwrap()
        };
        let now = unix_now();
        let good = Claims {
            sub: "alice".into(),
            tenant: "acme".into(),
            role: "brand".into(),
            scope: "registry.read".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now + 60,
            iat: now,
            jti: String::new(),
        };
        assert!(verifier.verify(&sign(&good)).await.is_ok(), "the control case passes");
        let aud = Claims {
            aud: "someone-else".into(),
            ..good.clone()
        };
        refused(verifier.verify(&sign(&aud)).await, "InvalidAudience");
        let iss = Claims {
            iss: "mallory".into(),
            ..good.clone()
        };
        refused(verifier.verify(&sign(&iss)).await, "InvalidIssuer");
        let long = Claims {
            exp: now + 7200,
            ..good.clone()
        };
        refused(verifier.verify(&sign(&long)).await, "lives longer");
    }

    #[tokio::test]
    async fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let (issuer, verifier) = pair();
        let (token, _) = issuer.mint(&grant(), Duration::from_secs(60)).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let kid = issuer.jwks()[0].kid.clone();
        // alg none, no signature.
        let none = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#),
        );
        refused(verifier.verify(&format!("{none}.{payload}.")).await, "malformed token");
        // HS256 "signed" with the public key as the HMAC secret: the key confusion attack.
        let public =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &issuer.jwks()[0].x).unwrap();
        let claims: Claims = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(kid);
        let forged = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&public)).unwrap();
        refused(verifier.verify(&forged).await, "not accepted");
        // A signature from another key under this key's kid.
        let mut parts: Vec<&str> = token.split('.').collect();
        let (other, _) = pair();
        let (other_token, _) = other.mint(&grant(), Duration::from_secs(60)).unwrap();
        let other_sig = other_token.split('.').nth(2).unwrap().to_owned();
        parts[2] = &other_sig;
        refused(verifier.verify(&parts.join(".")).await, "InvalidSignature");
    }

    use crate::clock::Clock;
}
