//! The SSRF guard. A partner names the URL, so without a guard a webhook is a way to make the
//! service POST to its own network: the metadata service at 169.254.169.254, a database on
//! 10.x, the pod's loopback. Every delivery resolves the host afresh and refuses addresses that
//! are not public ([`refusal`]), then connects to exactly the addresses it checked (the HTTP
//! client's resolver is this guard, so nothing resolves twice); redirects are never followed
//! and no proxy is used. Tests, and operators with endpoints inside their network, allow
//! private addresses (`CHORUS_WEBHOOKS_ALLOW_PRIVATE=1`) or some prefixes of them
//! (`CHORUS_WEBHOOKS_ALLOWED_CIDRS`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which addresses a delivery may reach.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Every address, private ones included.
    pub allow_private: bool,
    /// These prefixes even though they are not public.
    pub allowed: Vec<IpNet>,
}

impl Policy {
    /// Reads `10.0.0.0/8,::1/128` (a bare address is its own /32 or /128).
    pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s}: not an address or prefix"))
            })
            .collect()
    }

    /// Why `ip` may not be reached, or `None` when it may.
    pub fn check(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        let why = refusal(ip)?;
        if self.allow_private || self.allowed.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        Some(format!("{ip} is {why}"))
    }
}

/// An IPv4 address carried in IPv6 (mapped `::ffff:a.b.c.d`, or NAT64 `64:ff9b::a.b.c.d`) as
/// the IPv4 address it reaches, so `::ffff:127.0.0.1` is loopback like `127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is; `None` for a public one.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_unspecified() || a == 0 {
        "unspecified (0.0.0.0/8)"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (cloud metadata lives there)"
    } else if a == 100 && (64..128).contains(&b) {
        "shared address space (100.64.0.0/10)"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking (198.18.0.0/15)"
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        "IETF protocol assignments (192.0.0.0/24)"
    } else if ip.is_multicast() {
        "multicast"
    } else if a >= 240 {
        "reserved or broadcast"
    } else {
        return None;
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_unique_local() {
        "unique local (fc00::/7)"
    } else if ip.is_unicast_link_local() || first & 0xffc0 == 0xfec0 {
        "link-local or site-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.segments()[..6] == [0; 6] {
        "IPv4-compatible (deprecated)"
    } else {
        return None;
    })
}

/// The HTTP client's resolver: a lookup whose non-public answers are dropped, so the client
/// can only connect to what passed. A host with no address left fails the delivery, naming
/// what it resolved to.
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<Policy>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    None => true,
                    Some(why) => {
                        refused.push(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = if refused.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("refused: {host} resolves to {}", refused.join(", "))
                };
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A refusal, as an error the HTTP client carries back.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_every_kind_of_non_public_address_in_both_families() {
        let strict = Policy::default();
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "::127.0.0.1",
        ] {
            assert!(strict.check(ip(bad)).is_some(), "{bad} passed");
        }
        for good in ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(strict.check(ip(good)), None, "{good}");
        }
        assert_eq!(
            strict.check(ip("::ffff:10.0.0.5")).as_deref(),
            Some("10.0.0.5 is private")
        );
    }

    #[test]
    fn allowed_prefixes_open_only_themselves() {
        let p = Policy {
            allow_private: false,
            allowed: Policy::parse_cidrs("127.0.0.0/8, ::1").unwrap(),
        };
        assert_eq!(p.check(ip("127.0.0.1")), None);
        assert_eq!(p.check(ip("::1")), None);
        assert!(p.check(ip("10.0.0.1")).is_some());
        let all = Policy {
            allow_private: true,
            allowed: vec![],
        };
        assert_eq!(all.check(ip("10.0.0.1")), None);
        assert!(Policy::parse_cidrs("10.0.0.0/33").is_err());
        assert!(Policy::parse_cidrs("example.com").is_err());
    }
}
