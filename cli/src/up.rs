//! `chorus up`: every service of Chorus in this one process, on SQLite files under the data
//! directory and an in-process bus whose log is a file there too: nothing else to install.
//! Prints each endpoint and a dev token; stops cleanly on ctrl-c or SIGTERM; data and unread
//! events survive a restart.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::{Grant, Issuer, SigningKey, role};
use chorus_kit::clock::Clock;
use chorus_kit::config::{LogFormat, Source};
use chorus_kit::events::Bus;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::runtime::{Declared, Node, Shared};

/// Every service `chorus up` runs. Adding a service to Chorus is one line here.
pub(crate) fn services() -> [Declared; 7] {
    [
        chorus_identity::SERVICE,
        chorus_registry::SERVICE,
        chorus_matching::SERVICE,
        chorus_contracts::SERVICE,
        chorus_payouts::SERVICE,
        chorus_measurement::SERVICE,
        chorus_webhooks::SERVICE,
    ]
}

/// How long the dev token lives; `chorus up` writes a fresh one every hour while it runs.
const DEV_TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);

/// Every scope of the services `chorus up` runs, and the kit's (`admin.events` for dead
/// letters, `admin.clock` for the simulated clock); the dev token holds them all.
pub(crate) fn all_scopes() -> Vec<&'static str> {
    services()
        .iter()
        .flat_map(|d| d.spec.scopes.iter().copied())
        .chain(chorus_kit::runtime::KIT_SCOPES.iter().copied())
        .collect()
}

#[derive(clap::Args, Debug)]
pub(crate) struct UpArgs {
    /// Address the services listen on.
    #[arg(long, default_value = "127.0.0.1", env = "CHORUS_HOST")]
    host: IpAddr,
    /// A service's port, as NAME=PORT (repeatable; 0 picks a free one); also CHORUS_<NAME>_PORT.
    /// Defaults: identity 50050, registry 50051, matching 50052, contracts 50053, payouts 50054,
    /// measurement 50055 (its link redirects and store webhooks on CHORUS_MEASUREMENT_HTTP_PORT,
    /// 50056; 0 picks a free one), webhooks 50057. The gateway (HTTP/JSON, gRPC-Web, /openapi.json) listens on
    /// CHORUS_GATEWAY_PORT, 8080 (0 picks a free one).
    #[arg(long = "port", value_name = "NAME=PORT", value_parser = service_port)]
    ports: Vec<(String, u16)>,
    /// Runs only these services (comma-separated or repeated), and identity, whose tokens every
    /// service verifies. Events for the others wait in the data directory until they run.
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = service_name)]
    only: Vec<String>,
    /// Runs on a simulated clock that `chorus.admin.v1.ClockService/AdvanceClock` (scope
    /// `admin.clock`, on every port) moves ahead, so due dates and grace periods pass in
    /// seconds; `chorus simulate` drives it. Off, the clock is the system's and cannot move.
    #[arg(long, env = "CHORUS_SIMULATED_CLOCK", value_parser = clap::builder::FalseyValueParser::new())]
    simulated_clock: bool,
}

fn service_name(name: &str) -> Result<String, String> {
    let known = services();
    if known.iter().any(|d| d.spec.name == name) {
        return Ok(name.to_owned());
    }
    let names: Vec<&str> = known.iter().map(|d| d.spec.name).collect();
    Err(format!("no service {name:?}; services: {}", names.join(", ")))
}

/// The services to run: all of them, or those `only` names and the token issuer.
fn chosen(only: &[String]) -> Vec<Declared> {
    services()
        .into_iter()
        .filter(|d| only.is_empty() || d.spec.issues_tokens || only.iter().any(|n| n == d.spec.name))
        .collect()
}

fn service_port(s: &str) -> Result<(String, u16), String> {
    let (name, port) = s
        .split_once('=')
        .ok_or("expected NAME=PORT, for example registry=50051")?;
    let name = service_name(name)?;
    let port = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    Ok((name, port))
}

type BoxError = Box<dyn std::error::Error>;

pub(crate) async fn run(args: UpArgs, data_dir: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(data_dir)?;
    // Quiet by default so the endpoints and token stand out; RUST_LOG=info shows every call.
    // Spans go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    if let Err(e) = chorus_kit::telemetry::init_with_filter("chorus", LogFormat::Pretty, otlp.as_deref(), "warn") {
        eprintln!("warning: telemetry is off: {e}");
    }
    // The issuer's key lives in the data directory, so tokens stay valid across restarts.
    let key_path = data_dir.join("signing-key.pem");
    let issuer = Issuer::new(signing_key(&key_path)?, DEV_TOKEN_LIFE);
    let token = write_dev_token(&issuer, data_dir)?;
    // Prometheus metrics (RPCs, outbox depth, consumer lag, dead letters) when asked for.
    let metrics_addr = match std::env::var("CHORUS_METRICS_ADDR").ok().filter(|a| !a.is_empty()) {
        Some(addr) => {
            let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("CHORUS_METRICS_ADDR={addr:?}: {e}"))?;
            chorus_kit::telemetry::serve_metrics(addr)?;
            Some(addr)
        }
        None => None,
    };
    let mut ports = BTreeMap::new();
    for d in services() {
        let key = format!("CHORUS_{}_PORT", d.spec.name.to_ascii_uppercase());
        if let Ok(v) = std::env::var(&key) {
            let port = v.parse().map_err(|e| format!("{key}={v:?}: {e}"))?;
            ports.insert(d.spec.name.to_owned(), port);
        }
    }
    ports.extend(args.ports);
    // Unread events wait in this file across restarts.
    let bus = MemoryBus::open(data_dir.join("events.db")).await?;
    // With no payment provider configured, payouts pay through a local simulator of their APIs,
    // so a newcomer can take a payout end to end.
    let simulator = match provider_configured() {
        true => None,
        false => Some(chorus_providersim::Simulator::start(chorus_providersim::SimConfig::default()).await?),
    };
    let mut settings = identities(&key_path)?;
    if let Some(sim) = &simulator {
        settings
            .entry("payouts".into())
            .or_default()
            .push(("CHORUS_PROVIDERS_SIMULATOR".into(), sim.stripe_url()));
    }
    // Measurement's link redirects and store webhooks (HTTP) beside its gRPC port.
    let measurement_http = measurement_http_addr(args.host)?;
    settings
        .entry("measurement".into())
        .or_default()
        .push(("CHORUS_MEASUREMENT_HTTP_ADDR".into(), measurement_http.to_string()));
    // Webhooks may reach a receiver on this machine, over http: a newcomer tries them with a
    // local server. A cluster allows neither unless configured (the SSRF guard).
    let webhooks = settings.entry("webhooks".into()).or_default();
    for (key, value) in [
        ("CHORUS_WEBHOOKS_HTTP_HOSTS", "localhost,127.0.0.1,[::1]"),
        ("CHORUS_WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8,::1/128"),
    ] {
        if std::env::var_os(key).is_none() {
            webhooks.push((key.into(), value.into()));
        }
    }
    let node = Node {
        data_dir: data_dir.to_owned(),
        host: args.host,
        ports,
        env: Source::from_env()?,
        settings,
        shared: Shared {
            bus: Arc::new(bus.clone()) as Arc<dyn Bus>,
            clock: match args.simulated_clock {
                true => Clock::offset(),
                false => Clock::system(),
            },
        },
    };
    let launched = node.start(&chosen(&args.only)).await?;
    // The gateway in front of what runs: HTTP/JSON and gRPC-Web on one port.
    let gateway = start_gateway(args.host, &launched).await?;
    // A fresh dev token every hour, so the file always holds one with most of its life left.
    let refresher = tokio::spawn({
        let (issuer, data_dir) = (issuer.clone(), data_dir.to_owned());
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                if let Err(e) = write_dev_token(&issuer, &data_dir) {
                    eprintln!("warning: could not renew the dev token: {e}");
                }
            }
        }
    });

    outln!("Chorus is up: single node, data in {}", data_dir.display());
    if args.simulated_clock {
        outln!("The clock is simulated: chorus.admin.v1.ClockService/AdvanceClock moves it ahead.");
    }
    outln!();
    for l in &launched {
        outln!("  {:<11} {:<21}  {}", l.name, l.addr.to_string(), l.services.join(", "));
    }
    outln!(
        "  {:<11} {:<21}  HTTP/JSON and gRPC-Web for every service; http://{}/docs",
        "gateway",
        gateway.addr.to_string(),
        gateway.addr
    );
    if let Some(addr) = metrics_addr {
        outln!("  {:<11} http://{addr}/metrics", "metrics");
    }
    if launched.iter().any(|l| l.name == "measurement") {
        outln!(
            "  {:<11} {:<21}  link redirects (GET /l/{{code}}), Shopify webhooks (POST /webhooks/shopify), report pages (GET /v1/campaigns/{{id}}/report)",
            "links",
            measurement_http.to_string()
        );
    }
    if let Some(sim) = &simulator {
        outln!(
            "  {:<11} {:<21}  Stripe, PayPal and Tremendous simulated (no provider configured)",
            "providers",
            sim.addr().to_string()
        );
    }
    let registry_addr = launched
        .iter()
        .find(|l| l.name == "registry")
        .map(|l| l.addr.to_string())
        .unwrap_or_default();
    outln!();
    outln!(
        "Dev token (tenant \"demo\", every scope, 24 hours, renewed hourly in {}):",
        data_dir.join("dev-token").display()
    );
    outln!("  {token}");
    outln!();
    outln!("Try:");
    outln!("  chorus seed --influencers 1000");
    outln!("  chorus influencers list --tier nano --country US");
    outln!(
        "  chorus campaigns create --name \"Dog treats\" --niche pets --city US:Austin \\\n    --deliverable instagram:feed-post --compensation cash,product --budget \"5000 USD\" --headcount 20"
    );
    outln!("  chorus campaigns match <campaign>");
    outln!(
        "  curl -H \"Authorization: Bearer $(cat {})\" 'http://{}/v1/influencers?page_size=3'",
        data_dir.join("dev-token").display(),
        gateway.addr
    );
    outln!(
        "  buf curl --protocol grpc --http2-prior-knowledge -H \"Authorization: Bearer $(cat {})\" \\\n    http://{registry_addr}/chorus.registry.v1.RegistryService/ListInfluencers -d '{{\"page_size\": 3}}'",
        data_dir.join("dev-token").display()
    );
    outln!();
    outln!("Press ctrl-c to stop.");

    chorus_kit::server::shutdown_signal().await;
    outln!("stopping...");
    refresher.abort();
    // The gateway first, so no new request reaches a stopping service through it.
    if let Err(e) = gateway.shutdown().await {
        eprintln!("warning: the gateway did not stop cleanly: {e}");
    }
    for l in &launched {
        l.stop();
    }
    // In-flight calls drain (for at most the server's drain timeout); a second ctrl-c or
    // SIGTERM stops at once. Committed data is safe either way: the outbox resumes at the next
    // start, and unread events wait in the bus file.
    tokio::select! {
        stopped = futures::future::join_all(launched.into_iter().map(|l| l.stopped())) => {
            for s in stopped {
                s?;
            }
        }
        () = chorus_kit::server::shutdown_signal() => {
            eprintln!("warning: stopping now, without waiting for open connections");
        }
    }
    if let Err(e) = bus.close().await {
        eprintln!(
            "warning: the event log was not closed cleanly ({e}); unread events are kept, some may be delivered twice"
        );
    }
    // The last spans leave before the process does.
    chorus_kit::telemetry::shutdown();
    outln!("stopped; data kept in {}", data_dir.display());
    Ok(())
}

/// The issuer's key, made once per data directory.
pub(crate) fn signing_key(path: &Path) -> Result<SigningKey, BoxError> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return Ok(SigningKey::from_pem(&pem)?);
    }
    let key = SigningKey::generate()?;
    write_private(path, &key.to_pem())?;
    Ok(key)
}

/// Mints the dev token (tenant "demo", every scope) and writes it where the CLI finds it.
fn write_dev_token(issuer: &Issuer, data_dir: &Path) -> Result<String, BoxError> {
    let grant = Grant {
        subject: "dev".into(),
        tenant: "demo".into(),
        role: role::ADMIN.into(),
        scopes: all_scopes().into_iter().map(str::to_owned).collect(),
    };
    let (token, _) = issuer.mint(&grant, DEV_TOKEN_LIFE)?;
    write_private(data_dir.join("dev-token").as_path(), &token)?;
    Ok(token)
}

/// Each service's own identity: a client secret made for this run, registered with the
/// identity service with the scopes the service's spec needs, beside the clients the user
/// registers in CHORUS_IDENTITY_CLIENTS; and the issuer's key file.
fn identities(key_path: &Path) -> Result<BTreeMap<String, Vec<(String, String)>>, BoxError> {
    use sha2::Digest;
    let mut settings: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    // Clients of the user's own (CHORUS_IDENTITY_CLIENTS), then one per service.
    let mut clients: Vec<serde_json::Value> = match std::env::var("CHORUS_IDENTITY_CLIENTS") {
        Ok(json) if !json.trim().is_empty() => serde_json::from_str(&json)
            .map_err(|e| format!("CHORUS_IDENTITY_CLIENTS is not a JSON list of clients: {e}"))?,
        _ => Vec::new(),
    };
    for d in services().iter().filter(|d| !d.spec.needs.is_empty()) {
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let hash: String = sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        clients.push(serde_json::json!({
            "id": d.spec.name, "secret_sha256": hash, "role": role::SERVICE, "scopes": d.spec.needs,
        }));
        settings
            .entry(d.spec.name.to_owned())
            .or_default()
            .push(("CHORUS_CLIENT_SECRET".into(), secret));
    }
    // Contracts seals with a key of this data directory and writes its mail beside it.
    let data_dir = key_path.parent().unwrap_or(Path::new("."));
    // Payouts seals payee details with a key of this data directory.
    let pii = data_dir.join("pii-keys");
    if !pii.exists() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for the PII key: {e}"))?;
        write_private(
            &pii,
            &format!(
                "k1:{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
            ),
        )?;
    }
    settings
        .entry("payouts".into())
        .or_default()
        .push(("CHORUS_PII_KEYS_FILE".to_owned(), pii.display().to_string()));
    let sealing = data_dir.join("sealing-key.pem");
    signing_key(&sealing)?;
    settings.entry("contracts".into()).or_default().extend([
        ("CHORUS_SEALING_KEY_FILE".to_owned(), sealing.display().to_string()),
        (
            "CHORUS_MAIL_DIR".to_owned(),
            data_dir.join("mail").display().to_string(),
        ),
    ]);
    settings.entry("identity".into()).or_default().extend([
        ("CHORUS_SIGNING_KEY_FILE".to_owned(), key_path.display().to_string()),
        (
            "CHORUS_IDENTITY_CLIENTS".to_owned(),
            serde_json::Value::from(clients).to_string(),
        ),
    ]);
    Ok(settings)
}

/// Where measurement's HTTP listener binds: `CHORUS_MEASUREMENT_HTTP_PORT` (50056; 0 picks a
/// free port now, so the banner can print it).
fn measurement_http_addr(host: IpAddr) -> Result<std::net::SocketAddr, BoxError> {
    let port: u16 = match std::env::var("CHORUS_MEASUREMENT_HTTP_PORT") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|e| format!("CHORUS_MEASUREMENT_HTTP_PORT={v:?}: {e}"))?,
        _ => 50056,
    };
    if port != 0 {
        return Ok((host, port).into());
    }
    Ok(std::net::TcpListener::bind((host, 0))?.local_addr()?)
}

/// Starts the gateway on CHORUS_GATEWAY_PORT (8080), its upstreams the services just launched
/// (on loopback when they listen on every address); the rest of its settings from the
/// environment.
async fn start_gateway(
    host: IpAddr,
    launched: &[chorus_kit::runtime::Launched],
) -> Result<chorus_gateway::Running, BoxError> {
    let port: u16 = match std::env::var("CHORUS_GATEWAY_PORT") {
        Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("CHORUS_GATEWAY_PORT={v:?}: {e}"))?,
        _ => 8080,
    };
    let mut pairs: Vec<(String, String)> = vec![(
        "CHORUS_GATEWAY_ADDR".into(),
        std::net::SocketAddr::from((host, port)).to_string(),
    )];
    for l in launched {
        let mut addr = l.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::from([127, 0, 0, 1]));
        }
        pairs.push((
            format!("CHORUS_GATEWAY_UPSTREAM_{}", l.name.to_ascii_uppercase()),
            format!("http://{addr}"),
        ));
    }
    let source = Source::from_pairs(pairs).under(&Source::from_env()?);
    let config = chorus_gateway::Config::read(&source)?;
    let (listener, _) = chorus_kit::server::bind(config.addr).await?;
    Ok(chorus_gateway::Running::start(&config, listener).await?)
}

/// A payment provider has credentials in the environment (or the user points at a simulator).
fn provider_configured() -> bool {
    [
        "CHORUS_PROVIDERS_SIMULATOR",
        "CHORUS_STRIPE_API_KEY",
        "CHORUS_STRIPE_API_KEY_FILE",
        "CHORUS_PAYPAL_CLIENT_ID",
        "CHORUS_TREMENDOUS_API_KEY",
        "CHORUS_TREMENDOUS_API_KEY_FILE",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> Result<(), BoxError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(services: &[Declared]) -> Vec<&'static str> {
        services.iter().map(|d| d.spec.name).collect()
    }

    #[test]
    fn only_runs_the_named_services_and_the_issuer() {
        assert_eq!(
            names(&chosen(&[])),
            [
                "identity",
                "registry",
                "matching",
                "contracts",
                "payouts",
                "measurement",
                "webhooks"
            ]
        );
        assert_eq!(names(&chosen(&["registry".to_owned()])), ["identity", "registry"]);
        assert_eq!(
            names(&chosen(&["matching".to_owned(), "identity".to_owned()])),
            ["identity", "matching"]
        );
        assert!(
            service_name("billing")
                .unwrap_err()
                .contains("services: identity, registry, matching, contracts, payouts, measurement, webhooks")
        );
    }
}
