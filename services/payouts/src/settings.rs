//! Which providers payouts talks to and how: base URLs, credentials (secrets, from a file or
//! the environment) and request rates. With `CHORUS_PROVIDERS_SIMULATOR` every provider is the
//! simulator at that URL with its test credentials (`chorus up` does this when no provider is
//! configured); otherwise each provider is on when its credentials are set.

use std::sync::Arc;

use chorus_kit::Error;
use chorus_kit::config::{Reader, Secret};

use crate::providers::paypal::{PayPal, PayPalConfig};
use crate::providers::stripe::{Stripe, StripeConfig};
use crate::providers::tremendous::{Tremendous, TremendousConfig};
use crate::providers::{HttpSettings, ProviderError};
use crate::runner::Providers;

/// The simulator's test credentials (crate chorus-providersim's defaults).
const SIM_STRIPE_KEY: &str = "sk_test_chorus";
const SIM_PAYPAL_CLIENT: &str = "chorus-client";
const SIM_PAYPAL_SECRET: &str = "chorus-secret";
const SIM_TREMENDOUS_KEY: &str = "TEST_chorus";

#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    pub stripe: Option<StripeConfig>,
    pub paypal: Option<PayPalConfig>,
    pub tremendous: Option<TremendousConfig>,
}

/// Requests per second each provider documents (PROVIDERS.md): Stripe 100 live (25 in test
/// mode), PayPal 400 POSTs a minute, Tremendous unstated (we keep to 10).
fn http(r: &mut Reader<'_>, name: &str, default_rate: u32) -> HttpSettings {
    let rate: u32 = r.parse(&format!("CHORUS_{name}_RATE"), default_rate);
    r.check(rate == 0, &format!("CHORUS_{name}_RATE"), "requests per second, at least 1");
    HttpSettings {
        rate_per_second: Some(rate.max(1)),
        concurrency: usize::try_from(rate.clamp(1, 32)).unwrap_or(8),
        ..HttpSettings::default()
    }
}

impl ProviderSettings {
    pub fn read(r: &mut Reader<'_>) -> Self {
        if let Some(url) = r.optional("CHORUS_PROVIDERS_SIMULATOR") {
            let url = url.trim_end_matches('/').to_owned();
            return ProviderSettings {
                stripe: Some(StripeConfig {
                    base_url: url.clone(),
                    api_key: Secret::new(SIM_STRIPE_KEY.to_owned()),
                    http: http(r, "STRIPE", 100),
                }),
                paypal: Some(PayPalConfig {
                    base_url: url.clone(),
                    client_id: SIM_PAYPAL_CLIENT.to_owned(),
                    client_secret: Secret::new(SIM_PAYPAL_SECRET.to_owned()),
                    http: http(r, "PAYPAL", 6),
                }),
                tremendous: Some(TremendousConfig {
                    base_url: format!("{url}/api/v2"),
                    api_key: Secret::new(SIM_TREMENDOUS_KEY.to_owned()),
                    funding_source_id: "balance".to_owned(),
                    http: http(r, "TREMENDOUS", 10),
                }),
            };
        }
        let stripe = r.secret_or_file("CHORUS_STRIPE_API_KEY").map(|api_key| StripeConfig {
            base_url: r.string("CHORUS_STRIPE_URL", "https://api.stripe.com"),
            api_key,
            http: http(r, "STRIPE", 100),
        });
        let paypal = match (r.optional("CHORUS_PAYPAL_CLIENT_ID"), r.secret_or_file("CHORUS_PAYPAL_CLIENT_SECRET")) {
            (Some(client_id), Some(client_secret)) => Some(PayPalConfig {
                base_url: r.string("CHORUS_PAYPAL_URL", "https://api-m.paypal.com"),
                client_id,
                client_secret,
                http: http(r, "PAYPAL", 6),
            }),
            (None, None) => None,
            _ => {
                r.check(true, "CHORUS_PAYPAL_CLIENT_SECRET", "set with CHORUS_PAYPAL_CLIENT_ID, or neither");
                None
            }
        };
        let tremendous = r.secret_or_file("CHORUS_TREMENDOUS_API_KEY").map(|api_key| TremendousConfig {
            base_url: r.string("CHORUS_TREMENDOUS_URL", "https://api.tremendous.com/api/v2"),
            api_key,
            funding_source_id: r.string("CHORUS_TREMENDOUS_FUNDING_SOURCE", "balance"),
            http: http(r, "TREMENDOUS", 10),
        });
        ProviderSettings { stripe, paypal, tremendous }
    }

    /// The configured providers' clients.
    pub fn build(&self) -> Result<Providers, Error> {
        let config = |e: ProviderError| Error::invalid_field("CHORUS_PROVIDERS", e.to_string());
        Ok(Providers {
            stripe: self.stripe.clone().map(Stripe::new).transpose().map_err(config)?.map(Arc::new),
            paypal: self.paypal.clone().map(PayPal::new).transpose().map_err(config)?.map(Arc::new),
            tremendous: self.tremendous.clone().map(Tremendous::new).transpose().map_err(config)?.map(Arc::new),
        })
    }
}
