//! Compiles every `.proto` under `proto/` once, for all services, and writes a
//! descriptor set that the servers expose through gRPC reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "dispatch311/common/v1/common.proto",
    "dispatch311/jobs/v1/jobs.proto",
    "dispatch311/intake/v1/intake.proto",
    "dispatch311/routing/v1/routing.proto",
    "dispatch311/dispatch/v1/dispatch.proto",
    "dispatch311/survey/v1/survey.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // read when the script runs, not when it is compiled: one target directory
    // serves several checkouts (a CI clone beside the working copy), and cargo
    // may reuse this script's binary across them
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // A vendored protoc and its well-known types: a fresh machine needs no install.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("dispatch311_descriptor.bin"))
        .compile_with_config(
            config,
            &PROTOS.iter().map(|p| root.join(p)).collect::<Vec<_>>(),
            &[root.clone(), well_known],
        )?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
