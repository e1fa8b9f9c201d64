//! A typed Rust client for sessiond, the session authority, with scoped
//! guards that close a clientless session and restore a user context when
//! they go out of scope.
//!
//! [`Client`] has a method for every RPC of `sessiond.v1.SessionService`,
//! `sessiond.v1.UserContextService` and `sessiond.v1.AccessService`, on
//! domain types ([`SessionId`],
//! [`SessionInfo`] with a [`Uuid`](uuid::Uuid) and `SystemTime`s,
//! `std::time::Duration`, module values as [`serde_json::Value`]); the
//! generated protobuf types stay inside. Every failure is one [`Error`],
//! whose variants are the server's error reasons
//! ([`Error::SessionNotFound`], [`Error::ScopeNotInnermost`],
//! [`Error::ModuleFailed`], [`Error::PermissionDenied`], …) with connection
//! and status fallbacks.
//!
//! The seed's two examples, in Rust:
//!
//! ```no_run
//! # async fn run() -> sessiond_client::Result<()> {
//! use std::time::Duration;
//! use sessiond_client::Client;
//!
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//!
//! // with utilities.ClientlessSession('R41') as session:
//! let session = client.clientless_session("R41").await?;
//! session.open_module("100000").await?;
//! let data = session.get_return_value("100000", Duration::from_secs(5)).await?;
//! session.close().await?;
//!
//! // with utilities.UserContext('R41'):  (in some session)
//! # let session_id = sessiond_client::SessionId::new(1);
//! let as_r41 = client.user_context(session_id, "R41").await?;
//! // ... work owned by R41 ...
//! as_r41.restore().await?;
//! # let _ = data;
//! # Ok(()) }
//! ```
//!
//! # Calls
//! Each call has a deadline (30 s by default; [`ClientBuilder::timeout`],
//! [`Client::with_timeout`]), sent as `grpc-timeout`. Reads are retried on
//! `UNAVAILABLE` with bounded, jittered backoff ([`RetryPolicy`]); writes
//! are retried only where that cannot apply them twice (see [`RetryPolicy`]).
//!
//! # Authentication
//! A server that authenticates its callers takes a bearer token (a static
//! token or a JWT; [`ClientBuilder::bearer_token`], sent as
//! `authorization: Bearer …` with every attempt of every call) or a TLS
//! client certificate ([`TlsSettings`], feature `tls`). [`Client::who_am_i`]
//! says who it took the caller to be; [`Client::check_access`] asks whether
//! an action would be allowed. A call without a credential it accepts fails
//! with [`Error::Unauthenticated`]; an action its policy refuses, with
//! [`Error::PermissionDenied`].
//!
//! # Layout
//! - [`client`](Client): the connection and the retry loop (`client/mod.rs`);
//!   the calls, by service area, in `client/sessions.rs`,
//!   `client/modules.rs`, `client/user_contexts.rs` and `client/access.rs`.
//! - `builder.rs`: [`ClientBuilder`] and [`TlsSettings`]; `auth.rs`: the
//!   bearer-token interceptor; `retry.rs`: [`RetryPolicy`] and which calls
//!   may be retried.
//! - `guard/`: [`ClientlessSession`] and [`UserContextGuard`], and
//!   `guard/cleanup.rs`, the ordered background work of dropped guards.
//! - Domain types: `ids.rs` ([`SessionId`], [`ScopeId`], [`RunId`]),
//!   `session.rs` ([`SessionInfo`], [`SessionKind`], [`SessionState`],
//!   [`EndReason`], [`SessionFilter`]), `module.rs` ([`ModuleRun`],
//!   [`RunState`], [`ModuleFailure`]), `user_context.rs`
//!   ([`UserContext`], [`PushedScope`], [`PoppedScope`]), `access.rs`
//!   ([`WhoAmI`], [`AuthenticationMethod`], [`Access`], [`Permission`],
//!   [`AccessDecision`]).
//! - `error.rs`: [`Error`] and the decoding of the server's statuses;
//!   `value.rs`: JSON ↔ `google.protobuf.Value`; `time.rs`: timestamps and
//!   durations; `contract_enum.rs`: the enums' common shape.
//! - `examples/`: the seed's two examples against a running server. The
//!   operators' command-line tool, `sessionctl`, is a crate of its own
//!   (`sessionctl/` in the workspace), so programs using this library do
//!   not build its command-line dependencies.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `Error` is 136 bytes since `PermissionDenied` names its permission,
// subject and targets (clippy's limit is 128): moving it costs nothing next
// to the RPC that failed, and boxing would hide its fields from a `match`.
#![allow(clippy::result_large_err)]

mod access;
mod auth;
mod builder;
mod client;
mod contract_enum;
mod error;
mod guard;
mod ids;
mod module;
mod retry;
mod session;
mod time;
mod user_context;
mod value;

pub use access::{Access, AccessDecision, AuthenticationMethod, Permission, WhoAmI};
pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
    TlsSettings,
};
pub use client::Client;
pub use contract_enum::UnknownName;
pub use error::{ERROR_DOMAIN, Error, FieldViolation, Result};
pub use guard::{ClientlessSession, UserContextGuard};
pub use ids::{RunId, ScopeId, SessionId};
pub use module::{ModuleFailure, ModuleFailureKind, ModuleRun, RunState};
pub use retry::RetryPolicy;
pub use session::{EndReason, SessionFilter, SessionInfo, SessionKind, SessionPage, SessionState};
pub use user_context::{PoppedScope, PushedScope, UserContext};
