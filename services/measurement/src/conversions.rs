//! Orders in, conversions out: each order is attributed (domain::attribution) from the
//! tenant's promo codes and the tracked clicks it carried back, then recorded once per order
//! id. The RPC and the Shopify webhook both come through here; so each redeemed code is checked
//! for a leak (domain::leaks, in the store's transaction) whichever way its orders came.

use chorus_kit::Error;
use chorus_kit::clock::Micros;
use chorus_proto::measurement::{Conversion, ConversionSource};

use crate::clicks::Clicks;
use crate::domain::attribution::decide;
use crate::store::{NewConversion, Store};

/// An order as it arrives, checked.
#[derive(Debug, Clone)]
pub struct OrderIn {
    pub order_id: String,
    pub order_time: Micros,
    pub currency: String,
    pub revenue_minor: i64,
    pub discount_codes: Vec<String>,
    pub clicks: Vec<String>,
    /// ISO 3166-1 alpha-2, upper case; '' when unknown.
    pub country: String,
}

#[derive(Debug, Clone)]
pub struct Ingest {
    pub store: Store,
    pub clicks: Clicks,
}

impl Ingest {
    /// Attributes and records `orders`; `None` when one of `keys` (a webhook's ids) was seen
    /// before and nothing was written.
    pub async fn record(
        &self,
        tenant: &str,
        orders: Vec<OrderIn>,
        source: ConversionSource,
        shop_domain: &str,
        keys: &[(&str, String)],
    ) -> Result<Option<Vec<(Conversion, bool)>>, Error> {
        let mut flushed = false;
        let mut out = Vec::with_capacity(orders.len());
        for o in orders {
            let code = self.store.code_hit(tenant, &o.discount_codes).await?;
            let mut hits = Vec::new();
            if code.is_none() && !o.clicks.is_empty() {
                hits = self.store.click_hits(tenant, &o.clicks).await?;
                if hits.len() < o.clicks.len() && !flushed {
                    // The click may still wait in the buffer (it is at most a second old).
                    flushed = true;
                    self.clicks.flush().await?;
                    hits = self.store.click_hits(tenant, &o.clicks).await?;
                }
            }
            out.push(NewConversion {
                decision: decide(code.as_ref(), &hits, o.order_time),
                order_id: o.order_id,
                source,
                shop_domain: shop_domain.to_owned(),
                currency: o.currency,
                revenue_minor: o.revenue_minor,
                order_time: o.order_time,
                country: o.country,
            });
        }
        self.store.record_conversions(tenant, &out, keys).await
    }
}
