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
//! Data flows one way: `api` → `clientless` / `sessions` / `user_context` →
//! `model` (the rules) and `store`.
//! - [`api`]: tonic service implementations; validate, call, map errors to
//!   `Status` (`api::status`). Where a request about another node's session
//!   is served is decided once (`api::forward`). No SQL, no rules.
//! - [`model`]: the domain: its values, its one error type, and every rule,
//!   once, as plain functions on those values.
//! - [`sessions`]: creating and reading sessions, interactive ones' life,
//!   recovery at start-up; [`user_context`]: the user-context operations.
//! - [`clientless`]: the clientless lifecycle in one place — open, the gate,
//!   module runs ([`clientless::runner`]), close and drain, expiry,
//!   shutdown.
//! - [`modules`]: the `Module` trait, exec modules and their manifest, and
//!   the process groups of their runs.
//! - [`store`]: the store traits by concern and their SQLite and PostgreSQL
//!   implementations (persistence only), with migrations under
//!   `migrations/`.
//! - [`known_sessions`]: "whose session is this?" from memory.
//! - [`cluster`]: replicas on one database: leases, lost nodes, routing to
//!   a session's owner.
//! - [`auth`]: who is calling (TLS client certificates, JWTs, static and
//!   module-run tokens; the layer in front of the services);
//!   [`access`]: who may do what (the policy and its rules, applied by
//!   the operations above); [`principal`]: who is calling; [`clock`]: where "now" comes from;
//!   [`task`]: running writes to completion.
//! - [`events`]: the event log's readers (audit, watch, verification,
//!   retention) and the [`events::Cause`] of every change.
//! - [`metrics`]: the Prometheus registry and the gRPC calls' layer;
//!   [`admin`]: the admin listener (`/metrics`, `/healthz`, `/readyz`, the
//!   web console: [`console`]'s embedded files and gRPC-web);
//!   [`health`]: the gRPC health status and readiness;
//!   [`telemetry`]: the log, the lines and counters of committed changes,
//!   traces over OTLP.
//! - [`config`]: flags, environment and TOML; [`services`]: the services
//!   and the layers in front of them, built once for both listeners;
//!   [`server`]: assembling and running the gRPC server ([`Sessiond`]); [`shutdown`]: what would hold
//!   a shutdown up.
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
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod admin;
pub mod api;
pub mod auth;
pub mod clientless;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod events;
pub mod health;
pub mod known_sessions;
pub mod metrics;
pub mod model;
pub mod modules;
pub mod principal;
pub mod server;
pub mod services;
pub mod sessions;
pub mod shutdown;
pub mod store;
pub mod task;
pub mod telemetry;
pub mod user_context;

pub use config::Config;
pub use model::{Error, Result};
pub use server::{Sessiond, SessiondBuilder, StartError};
