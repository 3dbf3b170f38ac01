//! The HTTP concerns every adapter shares, in one place: timeouts, client-side pacing at the
//! provider's rate limit (governor's GCRA), and a bounded retry with exponential backoff and
//! jitter that honours Retry-After on 429, 5xx and broken connections.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;

use super::ProviderError;

/// Timeouts, retries and pacing for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// For one request, connection to last byte.
    pub timeout: Duration,
    /// Tries of one request, the first included.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    /// The longest wait between tries; a Retry-After longer than this ends the tries and is
    /// handed to the caller, who reschedules instead of holding the call open.
    pub max_backoff: Duration,
    /// Requests per second this client sends at most; `None` sends as fast as it can.
    pub rate_per_second: Option<u32>,
    /// Single calls in flight at once (Stripe, Tremendous).
    pub concurrency: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            rate_per_second: None,
            concurrency: 8,
        }
    }
}

/// A provider's answer: its status and its JSON body (`Null` when it sent none).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// One provider's HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub(crate) settings: HttpSettings,
}

impl Client {
    pub(crate) fn new(settings: HttpSettings) -> Result<Client, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| ProviderError::Config(format!("build the http client: {e}")))?;
        // A burst of a tenth of a second's requests: small enough that a provider counting
        // per second never sees more than the rate, large enough to make up for timer wake-ups
        // that come late (with a burst of one, each late wake-up is time lost for good).
        let limiter = settings.rate_per_second.and_then(NonZeroU32::new).map(|rate| {
            let burst = NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
        });
        Ok(Client {
            http,
            limiter,
            settings,
        })
    }

    /// Sends the request `build` makes, again on 429, 5xx and transport errors, at most
    /// `max_attempts` times. Any other status is the caller's to read. Sending again is safe
    /// only because every POST an adapter makes carries the provider's idempotency key
    /// (Stripe's header, PayPal's sender_batch_id, Tremendous's external_id).
    pub(crate) async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let mut attempt = 1;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let failure = match once(build(&self.http)).await {
                Ok((answer, _)) if answer.status != 429 && answer.status < 500 => return Ok(answer),
                Ok((answer, retry_after)) => ProviderError::Transient {
                    reason: format!("{what}: http {}", answer.status),
                    retry_after,
                },
                Err(error) => ProviderError::transient(format!("{what}: {error}")),
            };
            let wait = self.backoff(attempt, &failure);
            match wait {
                Some(wait) if attempt < self.settings.max_attempts => tokio::time::sleep(wait).await,
                _ => return Err(failure),
            }
            attempt += 1;
        }
    }

    /// The wait before try `attempt + 1`: the provider's Retry-After when it gave one (`None`
    /// when that is longer than we hold a call), else exponential with jitter in [½, 1].
    fn backoff(&self, attempt: u32, failure: &ProviderError) -> Option<Duration> {
        if let ProviderError::Transient {
            retry_after: Some(wait),
            ..
        } = failure
        {
            return (*wait <= self.settings.max_backoff).then_some(*wait);
        }
        let ceiling = self
            .settings
            .first_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.settings.max_backoff);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1_000) as u32;
        Some(ceiling / 2 + ceiling / 2 * jitter / 1_000)
    }
}

async fn once(request: reqwest::RequestBuilder) -> Result<(Answer, Option<Duration>), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((Answer { status, body }, retry_after))
}
