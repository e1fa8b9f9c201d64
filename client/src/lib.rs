//! A typed Rust client for sessiond, the session authority, with scoped
//! guards that close a clientless session and restore a user context when
//! they go out of scope.
//!
//! [`Client`] has a method for every RPC of `sessiond.v1.SessionService`,
//! `sessiond.v1.UserContextService`, `sessiond.v1.AccessService` and
//! `sessiond.v1.AuditService`, on domain types ([`SessionId`],
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
//! # Events
//! [`Client::watch_sessions`] streams the changes to sessions as they are
//! committed ([`WatchEvent`]), optionally after a snapshot of the open
//! ones, and resumes by itself after the last revision it delivered when
//! the server or the connection goes away. The audit trail — the same
//! changes, hash-chained, and the calls refused — is read with
//! [`Client::list_events`] (every page, as a stream) or
//! [`Client::list_events_page`], checked with [`Client::verify_ledger`],
//! and pinned with [`Client::get_checkpoint`]; it needs the `read_audit`
//! permission.
//!
//! ```no_run
//! # async fn run() -> sessiond_client::Result<()> {
//! use futures::StreamExt;
//! use sessiond_client::{Client, WatchEvent, WatchOptions};
//!
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let mut watch = client.watch_sessions(WatchOptions::from_now().initial_state());
//! while let Some(item) = watch.next().await {
//!     if let WatchEvent::Event(event) = item? {
//!         println!("{} {} session {:?}", event.revision, event.kind, event.session_id);
//!     }
//! }
//! # Ok(()) }
//! ```
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
//!   `client/modules.rs`, `client/user_contexts.rs`, `client/access.rs`,
//!   `client/audit.rs` (with [`EventStream`]) and `client/watch.rs` (the
//!   resuming [`WatchStream`]).
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
//!   [`AccessDecision`]), `event.rs` ([`Event`], [`EventKind`],
//!   [`LedgerHash`], [`EventFilter`], [`EventPage`]), `audit.rs`
//!   ([`LedgerVerification`], [`Checkpoint`]), `watch.rs`
//!   ([`WatchOptions`], [`WatchEvent`], and where a watch resumes).
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
mod audit;
mod auth;
mod builder;
mod client;
mod contract_enum;
mod error;
mod event;
mod guard;
mod ids;
mod module;
mod retry;
mod session;
mod time;
mod user_context;
mod value;
mod watch;

pub use access::{Access, AccessDecision, AuthenticationMethod, Permission, WhoAmI};
pub use audit::{Checkpoint, LedgerFault, LedgerVerification};
pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
    TlsSettings,
};
pub use client::{Client, EventStream, WatchStream};
pub use contract_enum::UnknownName;
pub use error::{ERROR_DOMAIN, Error, FieldViolation, Result};
pub use event::{Event, EventFilter, EventKind, EventPage, InvalidHash, LedgerHash};
pub use guard::{ClientlessSession, UserContextGuard};
pub use ids::{RunId, ScopeId, SessionId};
pub use module::{ModuleFailure, ModuleFailureKind, ModuleRun, RunState};
pub use retry::RetryPolicy;
pub use session::{EndReason, SessionFilter, SessionInfo, SessionKind, SessionPage, SessionState};
pub use user_context::{PoppedScope, PushedScope, UserContext};
pub use watch::{WatchEvent, WatchOptions};
