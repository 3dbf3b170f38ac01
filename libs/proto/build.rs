//! Compiles every proto under `proto/` into `OUT_DIR`, with a file descriptor set for
//! reflection and the gateway. protoc comes from the `protoc-bin-vendored` crate, so a build
//! needs nothing installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let root = root.canonicalize()?;
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    let files: Vec<PathBuf> = [
        "chorus/type/v1/types.proto",
        "chorus/type/v1/options.proto",
        "chorus/event/v1/envelope.proto",
        "chorus/registry/v1/registry.proto",
        "chorus/registry/v1/events.proto",
        "chorus/registry/v1/vetting.proto",
        "chorus/matching/v1/matching.proto",
        "chorus/matching/v1/events.proto",
        "chorus/identity/v1/identity.proto",
        "chorus/contracts/v1/disclosure.proto",
        "chorus/contracts/v1/contracts.proto",
        "chorus/contracts/v1/events.proto",
        "chorus/payouts/v1/events.proto",
        "chorus/payouts/v1/ledger.proto",
        "chorus/payouts/v1/payouts.proto",
        "chorus/measurement/v1/measurement.proto",
        "chorus/measurement/v1/events.proto",
        "chorus/webhooks/v1/webhooks.proto",
        "chorus/admin/v1/events.proto",
        "chorus/admin/v1/clock.proto",
        "google/rpc/error_details.proto",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("chorus_descriptor.bin"))
        .compile_with_config(config, &files, &[root.clone(), include])?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
