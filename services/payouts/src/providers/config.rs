//! The providers' settings from configuration: base URL, credentials and rate per provider. A
//! provider without credentials is `None`; with `CHORUS_PROVIDERS_SIMULATOR` every provider is the
//! simulator at that URL (`chorus up` starts one and sets it when no provider is configured).

use std::time::Duration;

use chorus_kit::config::{Reader, Secret};

use super::HttpSettings;
use super::paypal::PayPalConfig;
use super::stripe::StripeConfig;
use super::tremendous::TremendousConfig;

/// Each configured provider; `None` where its credentials are absent.
#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    pub stripe: Option<StripeConfig>,
    pub paypal: Option<PayPalConfig>,
    pub tremendous: Option<TremendousConfig>,
}

impl ProvidersConfig {
    /// Reads `CHORUS_{STRIPE,PAYPAL,TREMENDOUS}_*` and the shared `CHORUS_PROVIDER_*` values.
    /// Defaults: Stripe's API (test or live follows the key), PayPal's and Tremendous's
    /// sandboxes (live must be chosen explicitly), and rates under the documented limits.
    pub fn read(r: &mut Reader<'_>) -> ProvidersConfig {
        let base = Self::http(r);
        if let Some(url) = r.optional("CHORUS_PROVIDERS_SIMULATOR") {
            return Self::simulator(r, &url, &base);
        }
        Self::live(r, base)
    }

    fn http(r: &mut Reader<'_>) -> HttpSettings {
        let base = HttpSettings {
            timeout: r.duration_ms("CHORUS_PROVIDER_TIMEOUT_MS", 10_000),
            max_attempts: r.parse("CHORUS_PROVIDER_MAX_ATTEMPTS", 4),
            first_backoff: Duration::from_millis(200),
            max_backoff: r.duration_ms("CHORUS_PROVIDER_MAX_BACKOFF_MS", 10_000),
            rate_per_second: None,
            concurrency: r.parse("CHORUS_PROVIDER_CONCURRENCY", 8),
        };
        r.check(
            base.max_attempts == 0,
            "CHORUS_PROVIDER_MAX_ATTEMPTS",
            "must be at least 1",
        );
        base
    }

    /// Every provider at the simulator's `url` (crate chorus-providersim), with the
    /// simulator's test credentials: what `chorus up` and the tests run against.
    fn simulator(r: &mut Reader<'_>, url: &str, base: &HttpSettings) -> ProvidersConfig {
        let url = url.trim_end_matches('/');
        let mut paced = |key: &str, default: u32| HttpSettings {
            rate_per_second: Some(r.parse(key, default)),
            ..base.clone()
        };
        ProvidersConfig {
            stripe: Some(StripeConfig {
                base_url: url.to_owned(),
                api_key: Secret::new("sk_test_chorus".to_owned()),
                http: paced("CHORUS_STRIPE_RATE", 100),
            }),
            paypal: Some(PayPalConfig {
                base_url: url.to_owned(),
                client_id: "chorus-client".to_owned(),
                client_secret: Secret::new("chorus-secret".to_owned()),
                http: paced("CHORUS_PAYPAL_RATE", 6),
            }),
            tremendous: Some(TremendousConfig {
                base_url: format!("{url}/api/v2"),
                api_key: Secret::new("TEST_chorus".to_owned()),
                funding_source_id: "balance".to_owned(),
                http: paced("CHORUS_TREMENDOUS_RATE", 10),
            }),
        }
    }

    fn live(r: &mut Reader<'_>, base: HttpSettings) -> ProvidersConfig {
        let mut paced = |key: &str, default: u32| HttpSettings {
            rate_per_second: Some(r.parse(key, default)),
            ..base.clone()
        };
        // Stripe: 25 req/s in test mode, 100 live. PayPal: 400 POSTs a minute.
        // Tremendous documents no figure: 10 is a guess to tune.
        let stripe_http = paced("CHORUS_STRIPE_RATE", 25);
        let paypal_http = paced("CHORUS_PAYPAL_RATE", 6);
        let tremendous_http = paced("CHORUS_TREMENDOUS_RATE", 10);
        let stripe = r.optional_secret("CHORUS_STRIPE_API_KEY").map(|api_key| StripeConfig {
            base_url: r.string("CHORUS_STRIPE_BASE_URL", "https://api.stripe.com"),
            api_key,
            http: stripe_http,
        });
        let paypal_id = r
            .optional_secret("CHORUS_PAYPAL_CLIENT_ID")
            .map(|id| id.expose().clone());
        let paypal_secret = r.optional_secret("CHORUS_PAYPAL_CLIENT_SECRET");
        r.check(
            paypal_id.is_some() != paypal_secret.is_some(),
            "CHORUS_PAYPAL_CLIENT_ID",
            "set both the PayPal client id and secret, or neither",
        );
        let paypal = paypal_id
            .zip(paypal_secret)
            .map(|(client_id, client_secret)| PayPalConfig {
                base_url: r.string("CHORUS_PAYPAL_BASE_URL", "https://api-m.sandbox.paypal.com"),
                client_id,
                client_secret,
                http: paypal_http,
            });
        let tremendous = r
            .optional_secret("CHORUS_TREMENDOUS_API_KEY")
            .map(|api_key| TremendousConfig {
                base_url: r.string("CHORUS_TREMENDOUS_BASE_URL", "https://testflight.tremendous.com/api/v2"),
                api_key,
                funding_source_id: r.string("CHORUS_TREMENDOUS_FUNDING_SOURCE", "balance"),
                http: tremendous_http,
            });
        ProvidersConfig {
            stripe,
            paypal,
            tremendous,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chorus_kit::config::Source;

    use super::*;

    #[test]
    fn providers_without_credentials_are_absent_and_secrets_never_print() {
        let source = Source::from_pairs([("CHORUS_STRIPE_API_KEY", "sk_test_abc"), ("CHORUS_STRIPE_RATE", "100")]);
        let mut reader = Reader::new(&source);
        let config = ProvidersConfig::read(&mut reader);
        reader.finish().unwrap();
        let stripe = config.stripe.clone().unwrap();
        assert_eq!(stripe.http.rate_per_second, Some(100));
        assert_eq!(stripe.base_url, "https://api.stripe.com");
        assert!(config.paypal.is_none() && config.tremendous.is_none());
        assert!(!format!("{config:?}").contains("sk_test_abc"));
    }

    #[test]
    fn half_a_paypal_credential_is_refused() {
        let source = Source::from_pairs([("CHORUS_PAYPAL_CLIENT_ID", "id")]);
        let mut reader = Reader::new(&source);
        ProvidersConfig::read(&mut reader);
        assert!(reader.finish().is_err());
    }
}
