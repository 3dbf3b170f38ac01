//! `chorus-registry`: the registry as its own process, configured by environment variables
//! (see README.md, "Configuration").

// The import path allocates per row; mimalloc measured faster than glibc's allocator here
// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match chorus_registry::main_from_env().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-registry: {e}");
            for v in e.violations() {
                eprintln!("  {}: {}", v.field, v.description);
            }
            std::process::ExitCode::FAILURE
        }
    }
}
