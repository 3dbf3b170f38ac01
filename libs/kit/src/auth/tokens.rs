//! A service's own identity for the calls it makes: its client credentials, exchanged with the
//! identity service for a short-lived token per set of scopes, cached until shortly before it
//! expires. Each service asks only for the scopes it declared it needs ([`crate::runtime::Spec`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::{ClientCredentials, IssueTokenRequest, issue_token_request};

use crate::config::Secret;
use crate::error::Error;

/// A token is renewed when less than this is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// Where a service gets tokens for its own calls.
#[derive(Debug)]
pub struct TokenSource {
    identity_url: String,
    client_id: String,
    client_secret: Secret<String>,
    cache: tokio::sync::Mutex<HashMap<Vec<String>, (String, Instant)>>,
}

impl TokenSource {
    pub fn new(identity_url: String, client_id: String, client_secret: Secret<String>) -> Self {
        TokenSource {
            identity_url,
            client_id,
            client_secret,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A token holding `scopes`, from the cache while it has more than a minute left.
    pub async fn token(&self, scopes: &[&str]) -> Result<String, Error> {
        let mut key: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        key.sort();
        let mut cache = self.cache.lock().await;
        if let Some((token, until)) = cache.get(&key)
            && until.saturating_duration_since(Instant::now()) > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let unavailable = |e: String| {
            Error::unavailable(format!(
                "cannot get a token from the issuer at {}: {e}",
                self.identity_url
            ))
        };
        let channel = tonic::transport::Endpoint::from_shared(self.identity_url.clone())
            .map_err(|e| Error::invalid_field("CHORUS_IDENTITY_URL", e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let asked = Instant::now();
        let issued = IdentityServiceClient::new(channel)
            .issue_token(IssueTokenRequest {
                grant: Some(issue_token_request::Grant::ClientCredentials(ClientCredentials {
                    client_id: self.client_id.clone(),
                    client_secret: self.client_secret.expose().clone(),
                })),
                scopes: key.clone(),
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                    unavailable(s.message().to_owned())
                }
                _ => Error::new(
                    crate::ErrorCode::FailedPrecondition,
                    format!("the issuer refused client {}: {}", self.client_id, s.message()),
                ),
            })?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(issued.expires_in).unwrap_or_default());
        cache.insert(key, (issued.access_token.clone(), asked + lifetime));
        Ok(issued.access_token)
    }
}
