//! Who is calling, at the edge. A partner's API key (`Authorization: Bearer chk_…` or
//! `X-Api-Key`) is exchanged at the identity service for a short internal token, which then
//! replaces it on the way upstream, so services only ever verify internal tokens. What a key
//! was exchanged for is cached by the key's SHA-256 for at most `CHORUS_GATEWAY_KEY_CACHE_MS`
//! (60 s) and never past the token's expiry: a revoked key stops working within that time.
//! An internal bearer token passes through unchanged; it is verified here too (against the
//! issuer's JWKS) only to learn its tenant for rate limits and CORS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chorus_kit::auth::api_key::ApiKey;
use chorus_kit::auth::{KeySource, Verifier};
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::{IssueTokenRequest, issue_token_request};
use tonic::transport::Channel;

/// The package whose upstream issues tokens.
pub(crate) const IDENTITY: &str = "chorus.identity.v1";
/// How long an exchange may take before the call is answered UNAVAILABLE.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries the key cache holds at most before it starts over.
const CACHE_ENTRIES: usize = 10_000;

/// Who a call is from, as far as limits and CORS are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// What the per-key limit counts: `apiKeys/{id}`, or a token's subject.
    pub(crate) subject: String,
    /// Empty for services and influencers.
    pub(crate) tenant: String,
}

#[derive(Debug, Clone)]
struct Exchanged {
    token: String,
    principal: Principal,
    until: Instant,
}

/// API keys to tokens, and tokens to their tenant.
#[derive(Debug)]
pub(crate) struct Keys {
    identity: Option<Channel>,
    verifier: Option<Verifier>,
    cache_for: Duration,
    cache: Mutex<HashMap<String, Exchanged>>,
}

/// What the credentials of a request came to.
#[derive(Debug)]
pub(crate) enum Credentials {
    /// None given, or a token that is not ours to judge (the service will).
    Anonymous,
    /// A verified internal token, or an exchanged API key (its token now in `authorization`).
    Known(Principal),
}

impl Keys {
    pub(crate) fn new(identity: Option<(Channel, String)>, cache_for: Duration) -> Keys {
        let (identity, verifier) = match identity {
            Some((channel, url)) => (
                Some(channel),
                Some(Verifier::new(
                    KeySource::Identity(url),
                    chorus_kit::auth::DEFAULT_MAX_LIFETIME,
                )),
            ),
            None => (None, None),
        };
        Keys {
            identity,
            verifier,
            cache_for,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the request's credentials; an API key is exchanged and replaced by its token.
    /// A malformed or refused key is the issuer's status (UNAUTHENTICATED).
    pub(crate) async fn resolve(&self, headers: &mut http::HeaderMap) -> Result<Credentials, tonic::Status> {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .map(str::to_owned);
        let header_key = headers.remove("x-api-key");
        let key = match (&bearer, header_key) {
            (Some(b), _) if b.starts_with(chorus_kit::auth::api_key::PREFIX) => Some(b.clone()),
            (_, Some(k)) => Some(k.to_str().unwrap_or_default().trim().to_owned()),
            _ => None,
        };
        if let Some(key) = key {
            let key = ApiKey::parse(&key).ok_or_else(|| {
                tonic::Status::unauthenticated("malformed API key (wrong length, characters or checksum)")
            })?;
            let exchanged = self.exchange(&key).await?;
            let value = http::HeaderValue::try_from(format!("Bearer {}", exchanged.token))
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            headers.insert(http::header::AUTHORIZATION, value);
            return Ok(Credentials::Known(exchanged.principal));
        }
        match (bearer, &self.verifier) {
            (Some(token), Some(verifier)) => Ok(match verifier.verify(&token).await {
                Ok(caller) => Credentials::Known(Principal {
                    subject: caller.subject,
                    tenant: caller.tenant,
                }),
                Err(_) => Credentials::Anonymous,
            }),
            _ => Ok(Credentials::Anonymous),
        }
    }

    async fn exchange(&self, key: &ApiKey) -> Result<Exchanged, tonic::Status> {
        let hash = key.hash();
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(&hash)
            && hit.until > now
        {
            return Ok(hit.clone());
        }
        let channel = self.identity.clone().ok_or_else(|| {
            tonic::Status::unavailable(format!(
                "API keys need the identity service: set {}",
                crate::upstream::setting_of(IDENTITY)
            ))
        })?;
        let mut request = tonic::Request::new(IssueTokenRequest {
            grant: Some(issue_token_request::Grant::ApiKey(key.expose().to_owned())),
            scopes: vec![],
        });
        request.set_timeout(EXCHANGE_TIMEOUT);
        let issued = IdentityServiceClient::new(channel)
            .issue_token(request)
            .await?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(issued.expires_in).unwrap_or_default());
        let exchanged = Exchanged {
            token: issued.access_token,
            principal: Principal {
                subject: issued.subject,
                tenant: issued.tenant,
            },
            until: now + self.cache_for.min(lifetime),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, e| e.until > now);
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(hash, exchanged.clone());
        }
        Ok(exchanged)
    }

    /// The issuer's client, for the OAuth2 token endpoint.
    pub(crate) fn issuer(&self) -> Result<IdentityServiceClient<Channel>, tonic::Status> {
        self.identity.clone().map(IdentityServiceClient::new).ok_or_else(|| {
            tonic::Status::unavailable(format!(
                "the token endpoint needs the identity service: set {}",
                crate::upstream::setting_of(IDENTITY)
            ))
        })
    }
}
