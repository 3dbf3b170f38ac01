//! `chorus-gateway`: the HTTP/JSON and gRPC-Web edge as its own process, configured by
//! environment variables (README.md, "Configuration").

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chorus-gateway: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let source = chorus_kit::config::Source::from_env()?;
    let mut r = chorus_kit::config::Reader::new(&source);
    let format = r.parse("CHORUS_LOG_FORMAT", chorus_kit::config::LogFormat::Json);
    let otlp = r.optional("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.is_empty());
    r.finish()?;
    chorus_kit::telemetry::init("gateway", format, otlp.as_deref())?;
    let config = chorus_gateway::Config::read(&source)?;
    for (package, url) in &config.upstreams {
        tracing::info!(%package, %url, "upstream");
    }
    let (listener, addr) = chorus_kit::server::bind(config.addr).await?;
    let running = chorus_gateway::Running::start(&config, listener).await?;
    tracing::info!(%addr, "gateway serving HTTP/JSON, gRPC-Web, /openapi.json and /docs");
    chorus_kit::server::shutdown_signal().await;
    running.shutdown().await?;
    chorus_kit::telemetry::shutdown();
    Ok(())
}
