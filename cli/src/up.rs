//! `chorus up`: every service of Chorus in this one process, on SQLite files under the data
//! directory and an in-process bus whose log is a file there too: nothing else to install.
//! Prints each endpoint and a dev token; stops cleanly on ctrl-c or SIGTERM; data and unread
//! events survive a restart.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::Jwt;
use chorus_kit::clock::Clock;
use chorus_kit::config::{LogFormat, Secret, Source};
use chorus_kit::events::Bus;
use chorus_kit::events::memory::MemoryBus;
use chorus_kit::runtime::{Declared, Node, Shared};

/// Every service `chorus up` runs. Adding a service to Chorus is one line here.
pub(crate) fn services() -> [Declared; 2] {
    [chorus_registry::SERVICE, chorus_matching::SERVICE]
}

/// Every scope of the services `chorus up` runs; the dev token holds them all.
pub(crate) fn all_scopes() -> Vec<&'static str> {
    services().iter().flat_map(|d| d.spec.scopes.iter().copied()).collect()
}

#[derive(clap::Args, Debug)]
pub(crate) struct UpArgs {
    /// Address the services listen on.
    #[arg(long, default_value = "127.0.0.1", env = "CHORUS_HOST")]
    host: IpAddr,
    /// A service's port, as NAME=PORT (repeatable; 0 picks a free one); also CHORUS_<NAME>_PORT.
    /// Defaults: registry 50051, matching 50052.
    #[arg(long = "port", value_name = "NAME=PORT", value_parser = service_port)]
    ports: Vec<(String, u16)>,
}

fn service_port(s: &str) -> Result<(String, u16), String> {
    let (name, port) = s
        .split_once('=')
        .ok_or("expected NAME=PORT, for example registry=50051")?;
    let known = services();
    if !known.iter().any(|d| d.spec.name == name) {
        let names: Vec<&str> = known.iter().map(|d| d.spec.name).collect();
        return Err(format!("no service {name:?}; services: {}", names.join(", ")));
    }
    let port = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    Ok((name.to_owned(), port))
}

type BoxError = Box<dyn std::error::Error>;

pub(crate) async fn run(args: UpArgs, data_dir: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(data_dir)?;
    // Quiet by default so the endpoints and token stand out; RUST_LOG=info shows every call.
    let _ = chorus_kit::telemetry::init_with_filter("chorus", LogFormat::Pretty, None, "warn");
    let secret = jwt_secret(data_dir)?;
    let jwt = Jwt::new(&secret);
    let token = jwt.mint(
        "dev",
        "demo",
        "admin",
        &all_scopes(),
        Duration::from_secs(30 * 24 * 3600),
    )?;
    write_private(&data_dir.join("dev-token"), &token)?;

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
    let node = Node {
        data_dir: data_dir.to_owned(),
        host: args.host,
        ports,
        env: Source::from_env()?,
        shared: Shared {
            bus: Arc::new(bus.clone()) as Arc<dyn Bus>,
            clock: Clock::system(),
        },
    };
    let launched = node.start(&services(), &secret).await?;

    outln!("Chorus is up: single node, data in {}", data_dir.display());
    outln!();
    for l in &launched {
        outln!("  {:<10} {:<21}  {}", l.name, l.addr.to_string(), l.services.join(", "));
    }
    let registry_addr = launched
        .iter()
        .find(|l| l.name == "registry")
        .map(|l| l.addr.to_string())
        .unwrap_or_default();
    outln!();
    outln!(
        "Dev token (tenant \"demo\", every scope; also in {}):",
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
        "  buf curl --protocol grpc --http2-prior-knowledge -H \"Authorization: Bearer $(cat {})\" \\\n    http://{registry_addr}/chorus.registry.v1.RegistryService/ListInfluencers -d '{{\"page_size\": 3}}'",
        data_dir.join("dev-token").display()
    );
    outln!();
    outln!("Press ctrl-c to stop.");

    chorus_kit::server::shutdown_signal().await;
    outln!("stopping...");
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
    outln!("stopped; data kept in {}", data_dir.display());
    Ok(())
}

/// The signing secret, made once per data directory so tokens stay valid across restarts.
fn jwt_secret(data_dir: &Path) -> Result<Secret<String>, BoxError> {
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 16
    {
        return Ok(Secret::new(s.trim().to_owned()));
    }
    let s = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    write_private(&path, &s)?;
    Ok(Secret::new(s))
}

/// Writes a file only its owner can read.
fn write_private(path: &PathBuf, contents: &str) -> Result<(), BoxError> {
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
