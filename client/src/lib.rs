//! A Rust client for sessiond.
//!
//! For now this crate re-exports the generated clients of the contract;
//! the typed client with scoped guards builds on it.
#![forbid(unsafe_code)]

pub use sessiond_proto::v1;
