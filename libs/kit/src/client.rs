//! Client channels that spread calls over every replica of a service.
//!
//! One HTTP/2 connection carries every call a channel makes, so a channel dialled at a
//! Kubernetes ClusterIP pins all its calls to whichever pod the first connection reached. Behind
//! a headless Service the name resolves to every ready pod instead: [`balanced`] keeps one
//! connection per address, picks one per call (power of two choices, by pending calls) and
//! resolves the name again every few seconds, so pods that come or go are added or dropped.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// How often a balanced channel resolves its host name again; about the TTL CoreDNS gives the
/// records of a headless Service (5 s).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// A lazily connected channel to `url` that balances per call over every address its host
/// name resolves to (DNS, again every [`RESOLVE_EVERY`]); `tune` sets up each address's
/// endpoint (timeouts, windows). An address literal, `https://` (the certificate names the
/// host, not each address) or a call outside a tokio runtime gets one plain lazy channel.
pub fn balanced<T>(url: &str, tune: T) -> Result<Channel, tonic::transport::Error>
where
    T: Fn(Endpoint) -> Endpoint + Send + 'static,
{
    balanced_with(url, tune, RESOLVE_EVERY, |host, port| async move {
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(Iterator::collect)
            .unwrap_or_default()
    })
}

/// [`balanced`] with its resolver and interval given: `resolve(host, port)` returns the current
/// addresses, none when the lookup fails (the last known set is then kept).
pub fn balanced_with<T, R, F>(
    url: &str,
    tune: T,
    every: Duration,
    resolve: R,
) -> Result<Channel, tonic::transport::Error>
where
    T: Fn(Endpoint) -> Endpoint + Send + 'static,
    R: Fn(String, u16) -> F + Send + 'static,
    F: Future<Output = Vec<SocketAddr>> + Send,
{
    let endpoint = Endpoint::from_shared(url.to_owned())?;
    let uri = endpoint.uri().clone();
    let host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    let runtime = tokio::runtime::Handle::try_current();
    let (Some(host), Ok(runtime), Some("http")) = (host, runtime, uri.scheme_str()) else {
        return Ok(tune(endpoint).connect_lazy());
    };
    if host.parse::<IpAddr>().is_ok() {
        return Ok(tune(endpoint).connect_lazy());
    }
    let (host, port) = (host.to_owned(), uri.port_u16().unwrap_or(80));
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(16);
    runtime.spawn(async move {
        let mut known = BTreeSet::new();
        loop {
            let found: BTreeSet<SocketAddr> = resolve(host.clone(), port).await.into_iter().collect();
            // A failed or empty lookup keeps what worked: better a stale pod than none.
            if found.is_empty() {
                tracing::debug!(%host, "no address resolved; keeping the last known ones");
            } else {
                for gone in known.difference(&found) {
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
                for new in found.difference(&known) {
                    // Each address keeps the name as its :authority (origin).
                    match Endpoint::from_shared(format!("http://{new}")) {
                        Ok(at) => {
                            let at = tune(at.origin(uri.clone()));
                            if changes.send(Change::Insert(*new, at)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(%new, error = %e, "cannot dial a resolved address"),
                    }
                }
                known = found;
            }
            // The channel is gone once every clone of it is dropped.
            if changes.is_closed() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    Ok(channel)
}
