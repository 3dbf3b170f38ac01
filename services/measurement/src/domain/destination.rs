//! Where a tracked link may send a visitor, and the URL a redirect answers with. Destinations
//! are checked once, when a link (or a campaign's settings) is made: https only, a DNS host
//! (no IP literal, no localhost), no user info, at most 2,000 characters. The redirect only
//! ever sends a visitor to a stored destination, so the listener is no open redirect.

use chorus_kit::Error;
use url::{Host, Url};

pub const MAX_URL: usize = 2_000;

/// The UTM parameters of a redirect, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Utm {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub content: String,
}

/// Checks a destination URL; INVALID_ARGUMENT naming `field` when it may not be one.
pub fn check(raw: &str, field: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::invalid_field(field, why.to_owned());
    if raw.is_empty() {
        return Err(bad("required"));
    }
    if raw.len() > MAX_URL {
        return Err(bad("at most 2000 characters"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let url = Url::parse(raw).map_err(|e| bad(&format!("not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(bad("must be an https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry user info (user:password@)"));
    }
    match url.host() {
        Some(Host::Domain(d)) if d.contains('.') && d != "localhost" && !d.ends_with(".localhost") => {}
        Some(Host::Domain(_)) => return Err(bad("must name a public host (no localhost or bare names)")),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Err(bad("must name a host, not an IP address")),
        None => return Err(bad("must name a host")),
    }
    Ok(url)
}

/// The redirect's target: the destination with the UTM parameters set (replacing any of the
/// same name) and `chorus_click` carrying the click id to the landing page, where the store
/// keeps it in the order's `landing_site` (attribution reads it back).
pub fn redirect(destination: &str, utm: &Utm, click_id: &str) -> Option<String> {
    let mut url = Url::parse(destination).ok()?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            !matches!(
                k.as_ref(),
                "utm_source" | "utm_medium" | "utm_campaign" | "utm_content" | CLICK_PARAM
            )
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("utm_source", &utm.source)
            .append_pair("utm_medium", &utm.medium)
            .append_pair("utm_campaign", &utm.campaign)
            .append_pair("utm_content", &utm.content)
            .append_pair(CLICK_PARAM, click_id);
    }
    Some(url.into())
}

/// The query parameter that carries the click id to the landing page and back in the order.
pub const CLICK_PARAM: &str = "chorus_click";

/// The `chorus_click` of a landing URL (absolute, or a path with a query as Shopify's
/// `landing_site` often is).
pub fn click_of(landing: &str) -> Option<String> {
    let url = Url::parse(landing)
        .or_else(|_| Url::parse("https://landing.invalid").and_then(|base| base.join(landing)))
        .ok()?;
    url.query_pairs()
        .find(|(k, _)| k == CLICK_PARAM)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_to_a_named_host_are_destinations() {
        assert!(check("https://shop.example.com/spring?ref=x", "d").is_ok());
        for (bad, why) in [
            ("", "required"),
            ("http://shop.example.com/", "https"),
            ("javascript:alert(1)", "https"),
            ("https://user:pw@shop.example.com/", "user info"),
            ("https://user@shop.example.com/", "user info"),
            ("https://127.0.0.1/", "IP address"),
            ("https://[::1]/", "IP address"),
            ("https://localhost/", "public host"),
            ("https://intranet/", "public host"),
            ("https://shop.example.com/a b", "spaces"),
            ("//shop.example.com/", "not a URL"),
        ] {
            let e = check(bad, "link.destination_url").unwrap_err();
            assert_eq!(e.violations()[0].field, "link.destination_url");
            assert!(
                e.violations()[0].description.contains(why),
                "{bad}: {:?}",
                e.violations()
            );
        }
        assert!(check(&format!("https://a.example.com/{}", "x".repeat(2_000)), "d").is_err());
    }

    #[test]
    fn a_redirect_adds_utm_and_the_click_and_keeps_the_rest() {
        let utm = Utm {
            source: "chorus".into(),
            medium: "influencer".into(),
            campaign: "spring".into(),
            content: "ana".into(),
        };
        let to = redirect("https://shop.example.com/p?color=red&utm_source=old#top", &utm, "c1").unwrap();
        assert_eq!(
            to,
            "https://shop.example.com/p?color=red&utm_source=chorus&utm_medium=influencer&utm_campaign=spring&utm_content=ana&chorus_click=c1#top"
        );
        assert_eq!(click_of(&to).as_deref(), Some("c1"));
        assert_eq!(
            click_of("/products/x?chorus_click=abc&utm_source=chorus").as_deref(),
            Some("abc")
        );
        assert_eq!(click_of("http://www.example.com?source=abc"), None);
    }
}
