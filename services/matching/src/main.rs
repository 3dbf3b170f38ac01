//! `chorus-matching`: matching as its own process, configured by environment variables (see
//! README.md, "Configuration").

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match chorus_matching::main_from_env().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-matching: {e}");
            for v in e.violations() {
                eprintln!("  {}: {}", v.field, v.description);
            }
            std::process::ExitCode::FAILURE
        }
    }
}
