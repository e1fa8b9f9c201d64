//! The sessiond gRPC contract, generated from `proto/sessiond/v1/*.proto`.
//!
//! Everything in this crate is generated; nothing is written by hand beyond
//! this file. Other crates import the messages, clients and servers from
//! [`v1`], and the server feeds [`FILE_DESCRIPTOR_SET`] to its reflection
//! service so that tools such as grpcurl can list and describe the API.
//!
//! # Layout
//! - `proto/sessiond/v1/error_reason.proto`: `ErrorReason`, the error model
//!   (the `google.rpc.ErrorInfo` reasons and what each carries).
//! - `proto/sessiond/v1/session.proto`: the shared types (`SessionInfo`,
//!   the enums, `ModuleFailure`).
//! - `proto/sessiond/v1/session_service.proto`: `SessionService`.
//! - `proto/sessiond/v1/user_context_service.proto`: `UserContextService`.
//! - `proto/sessiond/v1/access_service.proto`: `AccessService` (who the
//!   caller is, what it may do).
//! - `proto/google/rpc/`: googleapis' `status.proto` and
//!   `error_details.proto`, vendored for the descriptor set only (their Rust
//!   types are `tonic_types`'), so that reflection clients can decode error
//!   details.
#![forbid(unsafe_code)]

/// Package `sessiond.v1`: messages, `*_client` and `*_server` modules.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("sessiond.v1");
}

/// The encoded `FileDescriptorSet` of every file in `proto/` (the contract
/// and the `google.rpc` error-detail types), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sessiond_descriptor.bin"));
