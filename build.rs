//! Compiles `proto/` with the pure-Rust `protox` compiler (no system
//! `protoc`), generates the tonic code, and writes the encoded descriptor
//! set that the server's reflection service serves. It also decides which
//! tests this machine can run (`build/prerequisites.rs`).

use std::path::PathBuf;

use prost::Message;

#[path = "build/prerequisites.rs"]
mod prerequisites;

const PROTOS: &[&str] = &[
    "proto/sessiond/v1/session.proto",
    "proto/sessiond/v1/session_service.proto",
    "proto/sessiond/v1/user_context_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    prerequisites::detect();
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("sessiond_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
