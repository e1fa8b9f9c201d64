//! sessiond: the session authority of an application platform, served over
//! gRPC.
//!
//! It records every session in a durable store and answers "whose session is
//! this?"; opens clientless sessions on behalf of users and runs modules in
//! them; and keeps each session's user context, with scopes that restore
//! what was there before.
//! The contract is the `sessiond-proto` crate (`proto/sessiond/v1`).
//!
//! # Layout
//! Data flows one way: `api` → `sessions` / `user_context` / `modules` →
//! `store`.
//! - [`api`]: tonic service implementations; validate, call the domain, map
//!   errors to `Status` (`api::status`). No SQL, no rules.
//! - [`sessions`], [`user_context`]: the domain rules.
//! - [`modules`]: the `Module` trait, exec modules and their manifest, and
//!   the runner that starts, records, awaits and drains runs.
//! - [`store`]: the [`store::Store`] trait and its SQLite implementation,
//!   with migrations under `migrations/`.
//! - [`model`]: the domain's values; [`error`]: the one error type.
//! - [`known_sessions`]: "whose session is this?" from memory.
//! - [`cluster`]: replicas on one database: leases, lost nodes, routing to
//!   a session's owner.
//! - [`principal`]: who is calling; [`clock`]: where "now" comes from;
//!   [`task`]: running writes to completion.
//! - [`config`]: flags, environment and TOML; [`server`]: assembling and
//!   running the gRPC server ([`Sessiond`]).
//!
//! # Embedding
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = sessiond::Config::default();
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let server = sessiond::Sessiond::open(config).await?;
//! server.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod known_sessions;
pub mod model;
pub mod modules;
pub mod principal;
pub mod server;
pub mod sessions;
pub mod store;
pub mod task;
pub mod user_context;

pub use config::Config;
pub use model::{Error, Result};
pub use server::{Sessiond, SessiondBuilder, StartError};
