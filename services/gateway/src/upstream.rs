//! Where each proto package is served, and a gRPC client that carries encoded messages as bytes
//! (the gateway encodes and decodes them itself, from the descriptor set).

use std::collections::BTreeMap;

use bytes_codec::RawCodec;
use prost_reflect::DescriptorPool;
use tonic::transport::{Channel, Endpoint};

/// The `chorus up` port of each service, the default upstream of its package.
const LOCAL_PORTS: &[(&str, u16)] = &[
    ("identity", 50050),
    ("registry", 50051),
    ("matching", 50052),
    ("contracts", 50053),
    ("payouts", 50054),
    ("measurement", 50055),
    ("webhooks", 50057),
];

/// The setting naming a package's upstream: `chorus.registry.v1` →
/// `CHORUS_GATEWAY_UPSTREAM_REGISTRY`.
pub fn setting_of(package: &str) -> String {
    format!("CHORUS_GATEWAY_UPSTREAM_{}", service_of(package).to_ascii_uppercase())
}

/// `chorus.registry.v1` → `registry`; other packages use their dotted name with `_`.
fn service_of(package: &str) -> String {
    let parts: Vec<&str> = package.split('.').collect();
    match parts.as_slice() {
        ["chorus", name, v] if v.starts_with('v') => (*name).to_owned(),
        _ => package.replace('.', "_"),
    }
}

/// The upstream URL of each package that has services, from the settings or the `chorus up`
/// defaults; packages with neither are left out (their calls answer UNAVAILABLE naming the
/// setting).
pub(crate) fn configured(pool: &DescriptorPool, r: &mut chorus_kit::config::Reader<'_>) -> BTreeMap<String, String> {
    let packages: std::collections::BTreeSet<String> = pool.services().map(|s| s.package_name().to_owned()).collect();
    let mut out = BTreeMap::new();
    for package in packages {
        let key = setting_of(&package);
        let default = LOCAL_PORTS
            .iter()
            .find(|(n, _)| *n == service_of(&package))
            .map(|(_, port)| format!("http://127.0.0.1:{port}"));
        let url = r.optional(&key).or(default);
        if let Some(url) = url.filter(|u| !u.is_empty()) {
            r.check(
                Endpoint::from_shared(url.clone()).is_err()
                    || !(url.starts_with("http://") || url.starts_with("https://")),
                &key,
                format!("{url:?} is not an http:// or https:// URL"),
            );
            out.insert(package, url);
        }
    }
    out
}

/// A lazily connected channel per package, balanced over the addresses of its host.
#[derive(Debug, Clone)]
pub(crate) struct Upstreams {
    channels: BTreeMap<String, Channel>,
}

impl Upstreams {
    pub(crate) fn new(urls: &BTreeMap<String, String>) -> Result<Upstreams, String> {
        let mut channels = BTreeMap::new();
        for (package, url) in urls {
            // Behind a headless Service the name resolves to every pod: calls are spread
            // over all of them, not pinned to the one a single connection reached.
            let channel = chorus_kit::client::balanced(url, |e| e.tcp_nodelay(true).http2_adaptive_window(true))
                .map_err(|e| format!("{}={url:?}: {e}", setting_of(package)))?;
            channels.insert(package.clone(), channel);
        }
        Ok(Upstreams { channels })
    }

    /// The channel serving `package`, or UNAVAILABLE naming the setting that would give one.
    pub(crate) fn channel(&self, package: &str) -> Result<Channel, tonic::Status> {
        self.channels.get(package).cloned().ok_or_else(|| {
            tonic::Status::unavailable(format!("no upstream for {package}: set {}", setting_of(package)))
        })
    }

    pub(crate) fn client(&self, package: &str) -> Result<tonic::client::Grpc<Channel>, tonic::Status> {
        Ok(tonic::client::Grpc::new(self.channel(package)?))
    }
}

pub(crate) fn codec() -> RawCodec {
    RawCodec
}

pub(crate) mod bytes_codec {
    //! A codec of already-encoded messages: the gateway's upstream calls, and any client that
    //! calls an RPC it knows only from the descriptor set (the tenant-isolation matrix).

    use prost::bytes::{Buf, BufMut, Bytes};
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Debug, Clone, Copy, Default)]
    pub struct RawCodec;

    #[derive(Debug, Clone, Copy, Default)]
    pub struct RawEncoder;

    #[derive(Debug, Clone, Copy, Default)]
    pub struct RawDecoder;

    impl Codec for RawCodec {
        type Encode = Bytes;
        type Decode = Bytes;
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;

        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }

        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = Status;

        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put(item);
            Ok(())
        }
    }

    impl Decoder for RawDecoder {
        type Item = Bytes;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
            Ok(Some(src.copy_to_bytes(src.remaining())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_named_after_the_service() {
        assert_eq!(setting_of("chorus.registry.v1"), "CHORUS_GATEWAY_UPSTREAM_REGISTRY");
        assert_eq!(setting_of("chorus.payouts.v1"), "CHORUS_GATEWAY_UPSTREAM_PAYOUTS");
        assert_eq!(setting_of("acme.thing"), "CHORUS_GATEWAY_UPSTREAM_ACME_THING");
    }
}
