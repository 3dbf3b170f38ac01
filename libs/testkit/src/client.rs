//! gRPC clients for tests: a channel to a loopback address, with a bearer token on every call.

use std::net::SocketAddr;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Puts `authorization: Bearer <token>` on every request (none when the token is `None`).
#[derive(Debug, Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("a token is ASCII"),
            );
        }
        Ok(r)
    }
}

/// A channel that authenticates as its token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// A connected channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a loopback URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// A channel to `addr` carrying `token`; wrap it in a generated client with `Client::new`.
pub async fn authed(addr: SocketAddr, token: Option<String>) -> Authed {
    InterceptedService::new(channel(addr).await, Bearer(token))
}
