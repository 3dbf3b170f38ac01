//! Measurement: what each influencer's posts did. Tracked links redirect visitors through the
//! service's HTTP listener and count their clicks (buffered, the IP only as a keyed hash);
//! promo codes and store orders (by RPC or Shopify's signed webhook) become conversions,
//! attributed to an influencer by code or by click; post metrics snapshots meet the contract's
//! measurement duty. A service of the kit's runtime: its binary and `chorus up` both run
//! [`SERVICE`].

pub mod api;
pub mod clicks;
pub mod conversions;
pub mod domain;
pub mod events;
pub mod http;
pub mod render;
pub mod report;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_kit::config::{Reader, Secret};
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::tuned;
use chorus_proto::measurement::measurement_service_server::MeasurementServiceServer;

use crate::clicks::Clicks;
use crate::conversions::Ingest;
use crate::http::{Proxies, Shop};
use crate::report::RateCard;
use crate::store::Store;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (
            2,
            "measurement",
            include_str!("../migrations/postgres/0002_measurement.sql"),
        ),
        (
            3,
            "measurement_report",
            include_str!("../migrations/postgres/0003_report.sql"),
        ),
        (
            4,
            "measurement_leaks",
            include_str!("../migrations/postgres/0004_leaks.sql"),
        ),
        (
            5,
            "measurement_owners",
            include_str!("../migrations/postgres/0005_owners.sql"),
        ),
    ],
    sqlite: &[
        (
            2,
            "measurement",
            include_str!("../migrations/sqlite/0002_measurement.sql"),
        ),
        (
            3,
            "measurement_report",
            include_str!("../migrations/sqlite/0003_report.sql"),
        ),
        (
            4,
            "measurement_leaks",
            include_str!("../migrations/sqlite/0004_leaks.sql"),
        ),
        (
            5,
            "measurement_owners",
            include_str!("../migrations/sqlite/0005_owners.sql"),
        ),
    ],
};

/// What measurement reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_MEASUREMENT_HTTP_ADDR`: where link redirects and store webhooks are served
    /// (unset: not at all).
    pub http_addr: Option<SocketAddr>,
    /// `CHORUS_CLICK_FLUSH_MS` (1,000; 10..1,000): how often buffered clicks are written.
    pub flush: Duration,
    /// `CHORUS_ATTRIBUTION_WINDOW_HOURS` (168): how long after a click an order still counts
    /// for it, unless the campaign says otherwise.
    pub window_hours: i64,
    /// `CHORUS_TRUSTED_PROXIES`: addresses or prefixes (`10.0.0.0/8,::1`) whose country header
    /// and X-Forwarded-For are believed; nobody's by default.
    pub proxies: Proxies,
    /// `CHORUS_COUNTRY_HEADER` (`cf-ipcountry`): the header trusted proxies put the visitor's
    /// ISO country code in.
    pub country_header: String,
    /// `CHORUS_SHOPIFY_SHOPS` (or `_FILE`): `shop.myshopify.com=tenant:secret,...`, the shops
    /// whose webhooks are taken, each with its tenant and signing secret.
    pub shops: HashMap<String, Shop>,
    /// `CHORUS_RATE_CARD_FILE`: the TOML rate card earned media value is priced with
    /// (rules/rate_card.toml when unset); its version is shown in every report.
    pub rate_card: Arc<RateCard>,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let http_addr = r.optional("CHORUS_MEASUREMENT_HTTP_ADDR").and_then(|a| {
            let parsed = a.parse().ok();
            r.check(parsed.is_none(), "CHORUS_MEASUREMENT_HTTP_ADDR", "host:port");
            parsed
        });
        let flush_ms: u64 = r.parse("CHORUS_CLICK_FLUSH_MS", 1_000);
        r.check(
            !(10..=1_000).contains(&flush_ms),
            "CHORUS_CLICK_FLUSH_MS",
            "from 10 to 1000",
        );
        let window_hours: i64 = r.parse("CHORUS_ATTRIBUTION_WINDOW_HOURS", 168);
        r.check(
            !(1..=2_160).contains(&window_hours),
            "CHORUS_ATTRIBUTION_WINDOW_HOURS",
            "from 1 to 2160",
        );
        let proxies = r.string("CHORUS_TRUSTED_PROXIES", "");
        let proxies = match Proxies::parse(&proxies) {
            Ok(p) => p,
            Err(why) => {
                r.check(true, "CHORUS_TRUSTED_PROXIES", why);
                Proxies::default()
            }
        };
        let country_header = r.string("CHORUS_COUNTRY_HEADER", "cf-ipcountry").to_ascii_lowercase();
        let shops = match r
            .optional_secret("CHORUS_SHOPIFY_SHOPS")
            .map(|s| parse_shops(s.expose()))
        {
            None => HashMap::new(),
            Some(Ok(shops)) => shops,
            Some(Err(why)) => {
                r.check(true, "CHORUS_SHOPIFY_SHOPS", why);
                HashMap::new()
            }
        };
        let rate_card = match r.optional("CHORUS_RATE_CARD_FILE") {
            None => RateCard::shipped(),
            Some(path) => match std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {path}: {e}"))
                .and_then(|t| RateCard::parse(&t))
            {
                Ok(card) => card,
                Err(why) => {
                    r.check(true, "CHORUS_RATE_CARD_FILE", why);
                    RateCard::shipped()
                }
            },
        };
        Config {
            rate_card: Arc::new(rate_card),
            http_addr,
            flush: Duration::from_millis(flush_ms),
            window_hours,
            proxies,
            country_header,
            shops,
        }
    }
}

/// `shop.myshopify.com=tenant:secret,...`; what is wrong, otherwise (never the secret).
pub fn parse_shops(list: &str) -> Result<HashMap<String, Shop>, String> {
    let mut shops = HashMap::new();
    for (i, item) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        let bad = || format!("entry {}: expected shop-domain=tenant:secret", i + 1);
        let (domain, rest) = item.split_once('=').ok_or_else(bad)?;
        let (tenant, secret) = rest.split_once(':').ok_or_else(bad)?;
        if domain.trim().is_empty() || tenant.trim().is_empty() || secret.is_empty() {
            return Err(bad());
        }
        shops.insert(
            domain.trim().to_ascii_lowercase(),
            Shop {
                tenant: tenant.trim().to_owned(),
                secret: Secret::new(secret.to_owned()),
            },
        );
    }
    Ok(shops)
}

/// Measurement, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Measurement;

/// Measurement's declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Measurement>();

impl chorus_kit::runtime::Service for Measurement {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "measurement",
        port: 50055,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[events::CONTRACTS_TOPIC, events::MATCHING_TOPIC, events::PAYOUTS_TOPIC],
        db_connections: 8,
        needs: &[],
        issues_tokens: false,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let store = Store::new(
            ctx.db.clone(),
            ctx.outbox.clone(),
            ctx.clock.clone(),
            ctx.timers.clone(),
            config.window_hours,
        );
        let clicks = Clicks::new(store.clone());
        // Today's key exists before the first click; the rotation timer is set for midnight.
        let today = i64::from(domain::days::day_of(ctx.clock.now_micros()));
        store.ip_key(today).await?;
        store.schedule_rotation(today + 1).await?;
        events::declare(parts, store.clone(), config.rate_card.clone());
        let ingest = Ingest {
            store: store.clone(),
            clicks: clicks.clone(),
        };
        let flusher = clicks.clone();
        let interval = config.flush;
        parts.task("click-flush", move |stop| flusher.run(interval, stop));
        let measurement = api::MeasurementApi::new(ingest.clone(), config.rate_card, ctx.idempotency.clone());
        if let Some(addr) = config.http_addr {
            let app = http::router(
                ingest,
                clicks,
                http::Options {
                    shops: config.shops,
                    proxies: config.proxies,
                    country_header: config.country_header,
                    reports: Some(http::Reports {
                        api: measurement.clone(),
                        verifier: ctx.verifier.clone(),
                    }),
                },
            );
            parts.task("link-redirects", move |stop| http::serve(addr, app, stop));
        }
        parts.grpc(tuned!(MeasurementServiceServer::new(measurement), ctx));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shops_name_their_tenant_and_secret() {
        let shops = parse_shops("Acme.myshopify.com=acme:shpss_a:b, beta.myshopify.com=beta:s2").unwrap();
        assert_eq!(shops["acme.myshopify.com"].tenant, "acme");
        assert_eq!(shops["acme.myshopify.com"].secret.expose(), "shpss_a:b");
        assert_eq!(shops["beta.myshopify.com"].tenant, "beta");
        assert!(parse_shops("acme.myshopify.com").unwrap_err().contains("entry 1"));
        assert!(parse_shops("a=b:").is_err());
    }
}
