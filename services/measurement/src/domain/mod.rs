//! Measurement's rules, free of storage and transport: what a link may point at and where a
//! redirect goes (`destination`), who a visitor is (`agent`), the shapes of short codes and
//! promo codes (`codes`), Shopify's webhook (`shopify`), why an order counts for whom
//! (`attribution`), when a promo code looks leaked (`leaks`), and calendar days (`days`).
//! Each has its tests beside it.

pub mod agent;
pub mod attribution;
pub mod codes;
pub mod days;
pub mod destination;
pub mod leaks;
pub mod shopify;
