//! What an endpoint may be: its URL (https, or http to the hosts allowed; no credentials in
//! it; an address written in it must be one the guard allows), its description, and the event
//! types it names (known ones, each once). Each rule names the field it is about.

use std::sync::Arc;

use chorus_kit::Violations;
use chorus_kit::error::too_long;
use url::{Host, Url};

use crate::catalog::Catalog;
use crate::guard::Policy;

pub const MAX_URL: usize = 2_048;
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_TYPES: usize = 100;

/// The settings the rules read.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Hosts an `http://` URL may name (`CHORUS_WEBHOOKS_HTTP_HOSTS`); others need https.
    pub http_hosts: Vec<String>,
    pub policy: Arc<Policy>,
    pub catalog: Arc<Catalog>,
}

impl Rules {
    /// The URL as it will be called (normalised), or a violation of `field`.
    pub fn url(&self, v: &mut Violations, field: &str, url: &str) -> Option<String> {
        if url.is_empty() {
            v.add(field, "required");
            return None;
        }
        if too_long(url, MAX_URL) || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.add(
                field,
                format!("at most {MAX_URL} characters, no spaces or control characters"),
            );
            return None;
        }
        let parsed = match Url::parse(url) {
            Ok(u) => u,
            Err(e) => {
                v.add(field, format!("not a URL: {e}"));
                return None;
            }
        };
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let bad = match parsed.scheme() {
            "https" => None,
            "http" if self.http_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) => None,
            "http" => Some("must be https (http only to the hosts CHORUS_WEBHOOKS_HTTP_HOSTS lists)".to_owned()),
            other => Some(format!("must be https, not {other}")),
        }
        .or_else(|| {
            (!parsed.username().is_empty() || parsed.password().is_some())
                .then(|| "must not hold a user name or password".to_owned())
        })
        .or_else(|| parsed.host().is_none().then(|| "must name a host".to_owned()))
        .or_else(|| {
            let ip = match parsed.host() {
                Some(Host::Ipv4(ip)) => Some(ip.into()),
                Some(Host::Ipv6(ip)) => Some(ip.into()),
                _ => None,
            };
            ip.and_then(|ip| self.policy.check(ip))
                .map(|why| format!("refused: {why}"))
        });
        match bad {
            Some(why) => {
                v.add(field, why);
                None
            }
            None => Some(parsed.to_string()),
        }
    }

    pub fn description(&self, v: &mut Violations, field: &str, text: &str) {
        v.check(
            too_long(text, MAX_DESCRIPTION) || text.chars().any(|c| c.is_control() && c != '\n'),
            field,
            format!("at most {MAX_DESCRIPTION} characters, no control characters but new lines"),
        );
    }

    /// Every type known, each once; empty means every type.
    pub fn event_types(&self, v: &mut Violations, field: &str, types: &[String]) {
        if types.len() > MAX_TYPES {
            v.add(field, format!("at most {MAX_TYPES}"));
            return;
        }
        for (i, t) in types.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if !self.catalog.knows(t) {
                let shown = if too_long(t, 100) {
                    "the type".to_owned()
                } else {
                    format!("{t:?}")
                };
                v.add(
                    at,
                    format!(
                        "{shown} is not an event type; known: {}",
                        self.catalog.types().collect::<Vec<_>>().join(", ")
                    ),
                );
            } else if types[..i].contains(t) {
                v.add(at, format!("{t} is named twice"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            http_hosts: vec!["localhost".into()],
            policy: Arc::new(Policy::default()),
            catalog: Arc::new(Catalog::load().unwrap()),
        }
    }

    fn url(u: &str) -> Result<String, String> {
        let mut v = Violations::new();
        let out = rules().url(&mut v, "endpoint.url", u);
        match v.finish() {
            Ok(()) => Ok(out.unwrap()),
            Err(e) => Err(e.violations()[0].description.clone()),
        }
    }

    #[test]
    fn urls_are_https_without_credentials_or_refused_addresses() {
        assert_eq!(
            url("https://hooks.example.com/in").unwrap(),
            "https://hooks.example.com/in"
        );
        assert!(url("http://localhost:8080/x").is_ok());
        assert!(
            url("http://hooks.example.com/in")
                .unwrap_err()
                .contains("must be https")
        );
        assert!(url("ftp://hooks.example.com").unwrap_err().contains("not ftp"));
        assert!(url("https://u:p@hooks.example.com").unwrap_err().contains("password"));
        assert!(url("https://10.0.0.8/in").unwrap_err().contains("10.0.0.8 is private"));
        assert!(url("https://[::1]/in").unwrap_err().contains("loopback"));
        assert!(url("https://169.254.169.254/").unwrap_err().contains("link-local"));
        assert!(url("not-a-url").unwrap_err().contains("not a URL"));
        assert!(url("https://hooks.example.com/a b").unwrap_err().contains("no spaces"));
        assert_eq!(url("").unwrap_err(), "required");
        assert!(
            url("https://hooks.example.com/a\u{0}b")
                .unwrap_err()
                .contains("control")
        );
    }

    #[test]
    fn event_types_are_known_and_named_once() {
        let mut v = Violations::new();
        let types = [
            "chorus.contracts.v1.ContractSigned".to_owned(),
            "chorus.contracts.v1.Nope".to_owned(),
            "chorus.contracts.v1.ContractSigned".to_owned(),
        ];
        rules().event_types(&mut v, "endpoint.event_types", &types);
        let e = v.finish().unwrap_err();
        let fields: Vec<&str> = e.violations().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["endpoint.event_types[1]", "endpoint.event_types[2]"]);
    }
}
