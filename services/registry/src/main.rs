//! `chorus-registry`: the registry as its own process, configured by environment variables
//! (see README.md, "Configuration").

// The import path allocates per row; mimalloc measured faster than glibc's allocator here
// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    chorus_kit::runtime::main(&chorus_registry::SERVICE)
}
