//! gRPC-Web for browser apps: `application/grpc-web` (`+proto`) and `application/grpc-web-text`
//! (base64) requests are turned into gRPC by tonic-web and proxied, still encoded, to the
//! upstream of the method's package; the answer's trailers come back in the body as gRPC-Web
//! requires. Any method of any package with an upstream can be called, annotated or not
//! (browsers cannot stream requests, so client streaming is out by nature).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use prost_reflect::DescriptorPool;
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};

use crate::upstream::Upstreams;

/// Headers a gRPC-Web call passes on: the gRPC ones, and those the JSON edge forwards.
const PASSED: &[&str] = &[
    "content-type",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "authorization",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "x-forwarded-for",
];

pub(crate) fn is_grpc_web(request: &axum::extract::Request) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc-web"))
}

/// A gRPC-Web answer that is only a status (in its headers, which gRPC-Web allows), for a
/// call refused before it reached a service.
pub(crate) fn refusal(status: &tonic::Status, content_type: Option<http::HeaderValue>) -> Response {
    let mut r = status.clone().into_http::<axum::body::Body>();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        content_type.unwrap_or(http::HeaderValue::from_static("application/grpc-web+proto")),
    );
    r.into_response()
}

/// The gRPC-Web endpoint.
#[derive(Debug, Clone)]
pub(crate) struct GrpcWeb {
    proxy: Proxy,
}

impl GrpcWeb {
    pub(crate) fn new(pool: &DescriptorPool, upstreams: Upstreams) -> GrpcWeb {
        GrpcWeb {
            proxy: Proxy {
                pool: pool.clone(),
                upstreams,
            },
        }
    }

    pub(crate) async fn call(&self, request: axum::extract::Request) -> Response {
        let service = tonic_web::GrpcWebLayer::new().layer(self.proxy.clone());
        match service.oneshot(request).await {
            Ok(r) => r.map(axum::body::Body::new).into_response(),
            Err(e) => match e {},
        }
    }
}

/// Forwards a gRPC request to the upstream of its package, untouched but for its headers.
#[derive(Debug, Clone)]
struct Proxy {
    pool: DescriptorPool,
    upstreams: Upstreams,
}

impl Service<http::Request<Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (pool, upstreams) = (self.pool.clone(), self.upstreams.clone());
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let method = path
                .strip_prefix('/')
                .and_then(|p| p.split_once('/'))
                .and_then(|(service, method)| {
                    pool.get_service_by_name(service)?
                        .methods()
                        .find(|m| m.name() == method)
                });
            let Some(method) = method else {
                return Ok(tonic::Status::unimplemented(format!("no method {path}")).into_http());
            };
            if request.method() != http::Method::POST {
                return Ok(tonic::Status::unimplemented("gRPC-Web calls are POST").into_http());
            }
            let channel = match upstreams.channel(method.parent_service().package_name()) {
                Ok(c) => c,
                Err(status) => return Ok(status.into_http()),
            };
            let (mut parts, body) = request.into_parts();
            let mut headers = http::HeaderMap::new();
            for name in PASSED {
                for value in parts.headers.get_all(*name) {
                    headers.append(*name, value.clone());
                }
            }
            parts.headers = headers;
            parts.uri = match http::Uri::try_from(path.as_str()) {
                Ok(uri) => uri,
                Err(e) => return Ok(tonic::Status::invalid_argument(e.to_string()).into_http()),
            };
            // tonic-web decodes `-text` bodies as they stream but keeps the base64 length as
            // an exact size hint, which HTTP/2 would send as a wrong content-length.
            let body = Body::new(UnknownLength(body));
            match channel.oneshot(http::Request::from_parts(parts, body)).await {
                Ok(response) => Ok(response),
                Err(e) => {
                    let mut why = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        why = format!("{why}: {s}");
                        source = s.source();
                    }
                    Ok(
                        tonic::Status::unavailable(format!("{}: {why}", method.parent_service().package_name()))
                            .into_http(),
                    )
                }
            }
        })
    }
}

/// A body that does not claim to know its length.
#[derive(Debug)]
struct UnknownLength(Body);

impl http_body::Body for UnknownLength {
    type Data = prost::bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}
