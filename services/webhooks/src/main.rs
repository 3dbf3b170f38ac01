//! `chorus-webhooks`: webhooks to partner apps as their own process, configured by
//! environment variables (see README.md, "Configuration").

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    chorus_kit::runtime::main(&chorus_webhooks::SERVICE)
}
