//! `chorus up`: every service built so far (registry, matching) in this one process, on SQLite files under the data
//! directory and an in-process bus: nothing else to install. Prints each endpoint and a dev
//! token; stops cleanly on ctrl-c or SIGTERM; data survives a restart.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::Jwt;
use chorus_kit::config::{LogFormat, Secret, ServerConfig};
use chorus_kit::events::Bus;
use chorus_kit::events::memory::MemoryBus;
use chorus_registry::domain::tier::TierTable;

/// Every scope of the services `chorus up` runs; the dev token holds them all.
pub(crate) fn all_scopes() -> Vec<&'static str> {
    [chorus_registry::api::SCOPES, chorus_matching::api::SCOPES].concat()
}

#[derive(clap::Args, Debug)]
pub(crate) struct UpArgs {
    /// Address the services listen on.
    #[arg(long, default_value = "127.0.0.1", env = "CHORUS_HOST")]
    host: IpAddr,
    /// Port of the registry (0 picks a free one).
    #[arg(long, default_value_t = 50051, env = "CHORUS_REGISTRY_PORT")]
    registry_port: u16,
    /// Port of matching (0 picks a free one).
    #[arg(long, default_value_t = 50052, env = "CHORUS_MATCHING_PORT")]
    matching_port: u16,
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

    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (stop, _) = tokio::sync::watch::channel(false);

    let registry = chorus_registry::Config {
        server: ServerConfig::local(args.registry_port),
        database_url: Secret::new(format!("sqlite://{}", data_dir.join("registry.db").display())),
        redis_url: None,
        jwt_secret: secret.clone(),
        tiers: TierTable::default(),
        db_max_connections: 4,
        read_cache_entries: 10_000,
        log_format: LogFormat::Pretty,
        otlp_endpoint: None,
        metrics_addr: None,
        vetting: Default::default(),
        samples: Default::default(),
    };
    let db = chorus_registry::database(&registry).await?;
    let (listener, registry_addr) = chorus_kit::server::bind(SocketAddr::new(args.host, args.registry_port))
        .await
        .map_err(|e| {
            format!(
                "registry port {} is taken or not allowed ({e}); pass --registry-port",
                args.registry_port
            )
        })?;
    let mut rx = stop.subscribe();
    let registry_task = tokio::spawn(chorus_registry::serve(
        registry,
        db,
        bus.clone(),
        listener,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    let matching = chorus_matching::Config {
        server: ServerConfig::local(args.matching_port),
        database_url: Secret::new(format!("sqlite://{}", data_dir.join("matching.db").display())),
        redis_url: None,
        jwt_secret: secret.clone(),
        registry_url: format!("http://{registry_addr}"),
        db_max_connections: 4,
        conversion_rate: chorus_matching::domain::rank::Settings::default().conversion_rate,
        log_format: LogFormat::Pretty,
        otlp_endpoint: None,
        metrics_addr: None,
    };
    let matching_db = chorus_matching::database(&matching).await?;
    let (listener, matching_addr) = chorus_kit::server::bind(SocketAddr::new(args.host, args.matching_port))
        .await
        .map_err(|e| {
            format!(
                "matching port {} is taken or not allowed ({e}); pass --matching-port",
                args.matching_port
            )
        })?;
    let mut rx = stop.subscribe();
    let matching_task = tokio::spawn(chorus_matching::serve(
        matching,
        matching_db,
        bus.clone(),
        listener,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    outln!("Chorus is up: single node, data in {}", data_dir.display());
    outln!();
    outln!("  registry   {registry_addr:<21}  chorus.registry.v1.RegistryService, chorus.registry.v1.VettingService");
    outln!("  matching   {matching_addr:<21}  chorus.matching.v1.MatchingService");
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
    let _ = stop.send(true);
    // In-flight calls drain (for at most the server's drain timeout); a second ctrl-c or
    // SIGTERM stops at once. Committed data is safe either way; the outbox resumes next start.
    tokio::select! {
        served = async { (registry_task.await, matching_task.await) } => {
            let (registry, matching) = served;
            registry??;
            matching??;
        }
        () = chorus_kit::server::shutdown_signal() => {
            eprintln!("warning: stopping now, without waiting for open connections");
        }
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
