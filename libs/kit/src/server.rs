//! The server every service runs: its gRPC services behind the RPC layer (span and RED
//! metrics), `grpc.health.v1` and server reflection always mounted and open without a token,
//! message-size limits and deadlines from [`ServerConfig`], an optional plaintext health-only
//! listener for kubelet probes, and graceful shutdown: health turns NOT_SERVING, the grace
//! period lets load balancers notice, then the listener closes and in-flight calls drain.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::config::ServerConfig;
use crate::error::Error;
use crate::telemetry::layer::RpcLayer;

/// Builds and runs one service's gRPC server.
#[derive(Debug)]
pub struct Host {
    config: ServerConfig,
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    /// Resolves when health may say SERVING (see [`Host::ready_when`]).
    ready: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Host {
    pub fn new(config: ServerConfig) -> Self {
        let health = HealthReporter::new();
        let mut routes = RoutesBuilder::default();
        routes.add_service(HealthServer::new(HealthService::from_health_reporter(health.clone())));
        Host {
            config,
            routes,
            health,
            names: Vec::new(),
            ready: None,
        }
    }

    /// Health stays NOT_SERVING until `ready` resolves (matching, until its index has read the
    /// catalogue), so probes and load balancers keep traffic away from a replica that could
    /// only answer UNAVAILABLE.
    pub fn ready_when(&mut self, ready: impl Future<Output = ()> + Send + 'static) -> &mut Self {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            ready.await;
            let _ = tx.send(());
        });
        self.ready = Some(rx);
        self
    }

    /// Where to add the service's own gRPC servers.
    pub fn routes(&mut self) -> &mut RoutesBuilder {
        &mut self.routes
    }

    /// Names a service whose health is reported (its full gRPC name).
    pub fn serving(&mut self, name: &'static str) -> &mut Self {
        self.names.push(name);
        self
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    async fn set_all(&self, status: ServingStatus) {
        self.health.set_service_status("", status).await;
        for name in &self.names {
            self.health.set_service_status(*name, status).await;
        }
    }

    /// Server reflection, v1 and v1alpha (grpcurl, buf curl, Postman and Python's
    /// grpcio-reflection speak one or the other), listing exactly what this port serves:
    /// its own services, health and reflection.
    fn add_reflection(&mut self) {
        let listed: Vec<&str> = self
            .names
            .iter()
            .copied()
            .chain([
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .collect();
        // Each builder adds its own version's descriptors; the other version's are added here.
        let builder = |other: &'static [u8]| {
            listed.iter().fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(chorus_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(other),
                |b, name| b.with_service_name(*name),
            )
        };
        match builder(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET).build_v1() {
            Ok(r) => {
                self.routes.add_service(r);
            }
            Err(e) => tracing::warn!(error = %e, "server reflection v1 unavailable"),
        }
        match builder(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET).build_v1alpha() {
            Ok(r) => {
                self.routes.add_service(r);
            }
            Err(e) => tracing::warn!(error = %e, "server reflection v1alpha unavailable"),
        }
    }

    /// Serves on `listener` until `shutdown` resolves, then drains.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        self.add_reflection();
        let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        match self.ready.take() {
            None => self.set_all(ServingStatus::Serving).await,
            Some(ready) => {
                self.set_all(ServingStatus::NotServing).await;
                let (health, names, stopping) = (self.health.clone(), self.names.clone(), stopping.clone());
                tokio::spawn(async move {
                    if ready.await.is_err() || stopping.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    health.set_service_status("", ServingStatus::Serving).await;
                    for name in &names {
                        health.set_service_status(*name, ServingStatus::Serving).await;
                    }
                    // A shutdown that began while this ran has set NOT_SERVING already, or
                    // set `stopping` before it does: never leave SERVING behind it.
                    if stopping.load(std::sync::atomic::Ordering::Acquire) {
                        health.set_service_status("", ServingStatus::NotServing).await;
                        for name in names {
                            health.set_service_status(name, ServingStatus::NotServing).await;
                        }
                    }
                });
            }
        }
        let health_listener = match self.config.health_addr {
            Some(addr) => Some(bind(addr).await?.0),
            None => None,
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let grace = self.config.shutdown_grace;
        let health = self.health.clone();
        let names = self.names.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.store(true, std::sync::atomic::Ordering::Release);
            health.set_service_status("", ServingStatus::NotServing).await;
            for name in names {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "shutting down: health NOT_SERVING, draining"
            );
            tokio::time::sleep(grace).await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Some(listener) = health_listener {
            let rx = stop_rx.clone();
            let health_routes = {
                let mut r = RoutesBuilder::default();
                r.add_service(HealthServer::new(HealthService::from_health_reporter(
                    self.health.clone(),
                )));
                r.routes()
            };
            tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_routes(health_routes)
                    .serve_with_incoming_shutdown(incoming(listener), stopped(rx))
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "health listener failed");
                }
            });
        }
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal("read listener address", e))?;
        tracing::info!(%addr, services = ?self.names, "serving");
        let mut builder = tonic::transport::Server::builder();
        if let Some(limit) = self.config.request_timeout {
            builder = builder.timeout(limit);
        }
        let serving = builder
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            // Bulk streams (imports) would stall on HTTP/2's 64 KiB default receive window.
            .initial_stream_window_size(Some(2 * 1024 * 1024))
            .initial_connection_window_size(Some(8 * 1024 * 1024))
            .layer(RpcLayer)
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming(listener), stopped(stop_rx.clone()));
        // Draining waits for every connection to close; a client that never answers the
        // server's goodbye must not hold a stop for ever.
        let drain = self.config.drain_timeout;
        let drain_over = async move {
            stopped(stop_rx).await;
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            served = serving => served.map_err(|e| Error::internal("serve grpc", e)),
            () = drain_over => {
                tracing::warn!(drain_ms = drain.as_millis() as u64, "connections still open after the drain timeout; stopping without them");
                Ok(())
            }
        }
    }
}

/// Accepted connections with Nagle off. `Server::tcp_nodelay` only reaches listeners tonic
/// binds itself; without this, a response's trailers waited for the client's delayed ACK
/// (about 20 ms a call).
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// When the caller's `grpc-timeout` runs out. tonic enforces it until a handler returns its
/// response; a handler that keeps streaming after that checks it itself.
pub fn deadline<T>(request: &tonic::Request<T>) -> Option<tokio::time::Instant> {
    let raw = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    // The gRPC spec allows at most 8 digits; tonic ignores longer values, and so does this.
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    tokio::time::Instant::now().checked_add(timeout)
}

/// Binds `addr` (port 0 picks a free one) and says which address it got.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::new(
            crate::ErrorCode::FailedPrecondition,
            format!("cannot listen on {addr}: {e}"),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal("read listener address", e))?;
    Ok((listener, local))
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_headers_parse() {
        let mut r = tonic::Request::new(());
        assert!(deadline(&r).is_none());
        r.metadata_mut().insert("grpc-timeout", "250m".parse().unwrap());
        let left = deadline(&r).unwrap() - tokio::time::Instant::now();
        assert!(left <= Duration::from_millis(250) && left > Duration::from_millis(200));
        r.metadata_mut().insert("grpc-timeout", "2S".parse().unwrap());
        assert!(deadline(&r).unwrap() - tokio::time::Instant::now() > Duration::from_secs(1));
        r.metadata_mut().insert("grpc-timeout", "xx".parse().unwrap());
        assert!(deadline(&r).is_none());
        // Longer than the 8 digits the spec allows: ignored, not an overflow panic.
        r.metadata_mut()
            .insert("grpc-timeout", "9999999999999999999S".parse().unwrap());
        assert!(deadline(&r).is_none());
        r.metadata_mut().insert("grpc-timeout", "99999999H".parse().unwrap());
        assert!(deadline(&r).is_some_and(|d| d > tokio::time::Instant::now()));
        r.metadata_mut().insert("grpc-timeout", "S".parse().unwrap());
        assert!(deadline(&r).is_none());
    }
}
