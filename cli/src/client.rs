//! The connection to a Chorus endpoint: global flags for where and as whom, the bearer token
//! (from a flag, the environment, or the dev token `chorus up` writes), gzip both ways except
//! on loopback, where it costs CPU and saves nothing.

use std::path::PathBuf;
use std::time::Duration;

use chorus_kit::config::Secret;
use chorus_proto::admin::event_admin_service_client::EventAdminServiceClient;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::disclosure_service_client::DisclosureServiceClient;
use chorus_proto::matching::matching_service_client::MatchingServiceClient;
use chorus_proto::measurement::measurement_service_client::MeasurementServiceClient;
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::vetting_service_client::VettingServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Result, chain};

/// Largest response message accepted; a page of 1000 influencers fits with room to spare.
const MAX_DECODING_BYTES: usize = 16 * 1024 * 1024;

/// The file under the data dir that holds the token `chorus up` minted.
const DEV_TOKEN_FILE: &str = "dev-token";

/// Where global flags show in every subcommand's help.
pub(crate) const GLOBAL: &str = "Global options";

pub(crate) type Registry = RegistryServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Vetting = VettingServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Matching = MatchingServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Disclosure = DisclosureServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Contracts = ContractsServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type EventAdmin = EventAdminServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Payouts = PayoutsServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Ledger = LedgerServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Measurement = MeasurementServiceClient<InterceptedService<Channel, Bearer>>;

/// Where Chorus runs and how to authenticate; global to every subcommand.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = GLOBAL)]
pub(crate) struct ConnectArgs {
    /// gRPC endpoint of Chorus.
    #[arg(
        long,
        env = "CHORUS_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub(crate) endpoint: String,

    /// gRPC endpoint of the identity service (invitations, tokens; the clock of `chorus up`).
    #[arg(
        long,
        env = "CHORUS_IDENTITY_ENDPOINT",
        default_value = "http://127.0.0.1:50050",
        global = true
    )]
    pub(crate) identity_endpoint: String,

    /// gRPC endpoint of the matching service (campaigns).
    #[arg(
        long,
        env = "CHORUS_MATCHING_ENDPOINT",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    pub(crate) matching_endpoint: String,

    /// gRPC endpoint of the contracts service (offers, contracts, deliverables, the disclosure checker).
    #[arg(
        long,
        env = "CHORUS_CONTRACTS_ENDPOINT",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    pub(crate) contracts_endpoint: String,

    /// gRPC endpoint of the payouts service (payouts, the ledger, payees, tax reports).
    #[arg(
        long,
        env = "CHORUS_PAYOUTS_ENDPOINT",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    pub(crate) payouts_endpoint: String,

    /// gRPC endpoint of the measurement service (links, promo codes, conversions).
    #[arg(
        long,
        env = "CHORUS_MEASUREMENT_ENDPOINT",
        default_value = "http://127.0.0.1:50055",
        global = true
    )]
    pub(crate) measurement_endpoint: String,

    /// Bearer token; when absent, read from <data-dir>/dev-token.
    #[arg(long, env = "CHORUS_TOKEN", hide_env_values = true, global = true, value_parser = secret)]
    pub(crate) token: Option<Secret<String>>,

    /// Compress messages both ways: `auto` does gzip unless the endpoint is this machine.
    #[arg(long, env = "CHORUS_COMPRESSION", value_enum, default_value_t = Compression::Auto, global = true)]
    pub(crate) compression: Compression,

    /// Local state of `chorus up` (data, dev token).
    #[arg(long, env = "CHORUS_DATA_DIR", default_value = ".chorus", global = true)]
    pub(crate) data_dir: PathBuf,
}

/// Whether messages are compressed on the wire.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip, unless the endpoint's host is a loopback address or `localhost`.
    Auto,
    Gzip,
    None,
}

impl Compression {
    /// The encoding to use for calls to `url`. On loopback, gzip cost the seeding of a million
    /// influencers about 5 CPU-seconds and saved nothing.
    fn for_endpoint(self, url: &str) -> Option<CompressionEncoding> {
        match self {
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::None => None,
            Compression::Auto => {
                let host = url.parse::<tonic::codegen::http::Uri>().ok().and_then(|u| {
                    u.host()
                        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                });
                let local = host.is_some_and(|h| {
                    h.eq_ignore_ascii_case("localhost")
                        || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
                });
                (!local).then_some(CompressionEncoding::Gzip)
            }
        }
    }
}

/// Applies the compression chosen for an endpoint to a generated client.
macro_rules! compressed {
    ($client:expr, $encoding:expr) => {{
        let client = $client.max_decoding_message_size(MAX_DECODING_BYTES);
        match $encoding {
            Some(e) => client.send_compressed(e).accept_compressed(e),
            None => client,
        }
    }};
}

/// A generated client of the service at `$url`, connected, with the caller's token attached to
/// every call and the compression chosen for that endpoint.
macro_rules! authed {
    ($args:expr, $client:ident, $url:expr) => {{
        let url: &str = $url;
        let bearer = Bearer::new(&$args.token()?)?;
        let channel = connect(url).await?;
        Ok(compressed!(
            $client::with_interceptor(channel, bearer),
            $args.compression.for_endpoint(url)
        ))
    }};
}

fn secret(value: &str) -> Result<Secret<String>, String> {
    Ok(Secret::new(value.trim().to_owned()))
}

impl ConnectArgs {
    /// The token to send: the flag or environment, else the dev token file.
    pub(crate) fn token(&self) -> Result<Secret<String>> {
        if let Some(token) = self.token.as_ref().filter(|t| !t.expose().is_empty()) {
            return Ok(token.clone());
        }
        let path = self.data_dir.join(DEV_TOKEN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "no token: pass --token, set CHORUS_TOKEN, or run `chorus up` to write {} ({e})",
                path.display()
            )
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("no token: {} is empty", path.display()).into());
        }
        Ok(Secret::new(token.to_owned()))
    }

    /// Whom the token is for: its `sub` claim, read without verifying it (the server verifies;
    /// this only tells the CLI whose resources to ask for).
    pub(crate) fn subject(&self) -> Result<String> {
        token_subject(self.token()?.expose())
    }

    /// A registry client, connected, with the token attached to every call.
    pub(crate) async fn registry(&self) -> Result<Registry> {
        authed!(self, RegistryServiceClient, &self.endpoint)
    }

    /// A vetting client, connected, with the token attached to every call.
    pub(crate) async fn vetting(&self) -> Result<Vetting> {
        authed!(self, VettingServiceClient, &self.endpoint)
    }

    /// A matching client, connected to the matching endpoint, with the token attached.
    pub(crate) async fn matching(&self) -> Result<Matching> {
        authed!(self, MatchingServiceClient, &self.matching_endpoint)
    }

    /// A disclosure checker client, connected to the contracts endpoint, with the token attached.
    pub(crate) async fn disclosure(&self) -> Result<Disclosure> {
        authed!(self, DisclosureServiceClient, &self.contracts_endpoint)
    }

    /// A contracts client, connected to the contracts endpoint, with the token attached.
    pub(crate) async fn contracts(&self) -> Result<Contracts> {
        authed!(self, ContractsServiceClient, &self.contracts_endpoint)
    }

    /// A contracts client that sends no token, for what anyone may call (the sealing keys).
    pub(crate) async fn contracts_anonymous(&self) -> Result<ContractsServiceClient<Channel>> {
        let channel = connect(&self.contracts_endpoint).await?;
        Ok(compressed!(
            ContractsServiceClient::new(channel),
            self.compression.for_endpoint(&self.contracts_endpoint)
        ))
    }

    /// The EventAdminService (dead letters) of the service at `url`, with the token attached.
    pub(crate) async fn event_admin(&self, url: &str) -> Result<EventAdmin> {
        authed!(self, EventAdminServiceClient, url)
    }

    /// A payouts client, connected to the payouts endpoint, with the token attached.
    pub(crate) async fn payouts(&self) -> Result<Payouts> {
        authed!(self, PayoutsServiceClient, &self.payouts_endpoint)
    }

    /// A ledger client, connected to the payouts endpoint, with the token attached.
    pub(crate) async fn ledger(&self) -> Result<Ledger> {
        authed!(self, LedgerServiceClient, &self.payouts_endpoint)
    }

    /// A measurement client, connected to the measurement endpoint, with the token attached.
    pub(crate) async fn measurement(&self) -> Result<Measurement> {
        authed!(self, MeasurementServiceClient, &self.measurement_endpoint)
    }
}

pub(crate) async fn connect(url: &str) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid endpoint \"{url}\": {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    endpoint
        .connect()
        .await
        .map_err(|e| format!("connect to {url}: {}", chain(&e)).into())
}

/// The `sub` claim of a JWT: the payload is the second base64url part, JSON.
fn token_subject(token: &str) -> Result<String> {
    use base64::Engine;
    let not_jwt = "the token is not a JWT (HEADER.PAYLOAD.SIGNATURE)";
    let payload = token.split('.').nth(1).ok_or(not_jwt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_jwt)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt)?;
    match claims.get("sub").and_then(serde_json::Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err("the token names no subject (sub)".into()),
    }
}

/// Attaches `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub(crate) struct Bearer {
    header: MetadataValue<Ascii>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer([redacted])")
    }
}

impl Bearer {
    pub(crate) fn new(token: &Secret<String>) -> Result<Self> {
        let mut header: MetadataValue<Ascii> = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| "the token holds characters not allowed in a header")?;
        header.set_sensitive(true);
        Ok(Bearer { header })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// Flags for tests that call a fake service on loopback.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// Flags with `token`, every endpoint unreachable until a test points one at its fake.
    pub(crate) fn args(token: Option<&str>) -> ConnectArgs {
        ConnectArgs {
            endpoint: "http://127.0.0.1:1".to_owned(),
            identity_endpoint: "http://127.0.0.1:6".to_owned(),
            matching_endpoint: "http://127.0.0.1:2".to_owned(),
            contracts_endpoint: "http://127.0.0.1:3".to_owned(),
            payouts_endpoint: "http://127.0.0.1:4".to_owned(),
            measurement_endpoint: "http://127.0.0.1:5".to_owned(),
            token: token.map(|t| Secret::new(t.to_owned())),
            compression: Compression::None,
            data_dir: PathBuf::from("/nonexistent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn args(token: Option<&str>, data_dir: PathBuf) -> ConnectArgs {
        ConnectArgs {
            data_dir,
            ..tests_support::args(token)
        }
    }

    #[test]
    fn the_bearer_header_is_attached_and_never_printed() {
        let mut bearer = Bearer::new(&Secret::new("abc.def".to_owned())).unwrap();
        assert_eq!(format!("{bearer:?}"), "Bearer([redacted])");
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer abc.def");
        assert!(Bearer::new(&Secret::new("bad\ntoken".to_owned())).is_err());
    }

    #[test]
    fn the_token_comes_from_the_flag_else_the_dev_token_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        assert_eq!(args(Some("flag"), dir.clone()).token().unwrap().expose(), "flag");
        let missing = args(None, dir.clone()).token().unwrap_err().to_string();
        assert!(missing.contains("no token"), "{missing}");
        std::fs::write(dir.join(DEV_TOKEN_FILE), "from-file\n").unwrap();
        assert_eq!(args(None, dir).token().unwrap().expose(), "from-file");
    }

    #[test]
    fn the_subject_is_read_from_a_real_token_without_verifying_it() {
        use chorus_kit::auth::{Grant, Issuer, SigningKey};
        let issuer = Issuer::new(SigningKey::generate().unwrap(), Duration::from_secs(3600));
        let grant = Grant {
            subject: "influencers/0193a5b2-1111-7111-8111-111111111111".to_owned(),
            tenant: String::new(),
            role: "influencer".to_owned(),
            scopes: vec!["payouts.self".to_owned()],
        };
        let (token, _) = issuer.mint(&grant, Duration::from_secs(60)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let subject = args(Some(&token), tmp.path().to_path_buf()).subject().unwrap();
        assert_eq!(subject, grant.subject);
        for bad in ["opaque", "a.%%%.c", "a.bm90IGpzb24.c"] {
            let err = token_subject(bad).unwrap_err().to_string();
            assert!(err.contains("not a JWT"), "{bad}: {err}");
        }
        // {"role":"brand"}: no subject.
        let err = token_subject("a.eyJyb2xlIjoiYnJhbmQifQ.c").unwrap_err().to_string();
        assert!(err.contains("no subject"), "{err}");
    }

    #[test]
    fn auto_compression_is_gzip_except_on_loopback() {
        let gzip = Some(CompressionEncoding::Gzip);
        for local in [
            "http://127.0.0.1:50051",
            "http://localhost:50051",
            "http://[::1]:50051",
            "http://127.8.0.1",
        ] {
            assert_eq!(Compression::Auto.for_endpoint(local), None, "{local}");
            assert_eq!(Compression::Gzip.for_endpoint(local), gzip, "{local}");
        }
        for remote in [
            "https://chorus.example.com",
            "http://10.0.0.7:50051",
            "http://[2001:db8::1]:443",
        ] {
            assert_eq!(Compression::Auto.for_endpoint(remote), gzip, "{remote}");
            assert_eq!(Compression::None.for_endpoint(remote), None, "{remote}");
        }
    }
}
