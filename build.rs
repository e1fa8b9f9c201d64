//! Compiles `proto/` with the pure-Rust `protox` compiler (no system
//! `protoc`), generates the tonic code, and writes the encoded descriptor
//! set that the server's reflection service serves. It also decides which
//! tests this machine can run (`build/prerequisites.rs`).

use std::path::PathBuf;

use prost::Message;

#[path = "build/prerequisites.rs"]
mod prerequisites;

/// The contract: Rust code is generated for these.
const PROTOS: &[&str] = &[
    "proto/sessiond/v1/error_reason.proto",
    "proto/sessiond/v1/session.proto",
    "proto/sessiond/v1/session_service.proto",
    "proto/sessiond/v1/user_context_service.proto",
    "proto/sessiond/v1/access_service.proto",
    "proto/sessiond/v1/event.proto",
    "proto/sessiond/v1/audit_service.proto",
];

/// The `google.rpc` types of the error details (vendored from googleapis):
/// in the descriptor set only, so that reflection clients can decode the
/// details of an error status. Their Rust types come from `tonic-types`.
const ERROR_DETAIL_PROTOS: &[&str] = &[
    "proto/google/rpc/status.proto",
    "proto/google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    prerequisites::detect();
    for proto in PROTOS.iter().chain(ERROR_DETAIL_PROTOS) {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut fds = protox::compile(PROTOS.iter().chain(ERROR_DETAIL_PROTOS), ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("sessiond_descriptor.bin"), fds.encode_to_vec())?;
    fds.file
        .retain(|file| !file.name().starts_with("google/rpc/"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
