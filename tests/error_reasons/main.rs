//! The error contract end to end: every `ErrorReason` of the contract,
//! provoked on a real server over real gRPC, arrives at the Rust client as
//! its typed error, with its code and its ids.
//!
//! The list of reasons is the contract's enum itself: the test walks every
//! value of `sessiond.v1.ErrorReason` and provokes each through one
//! exhaustive `match`, so a reason added to the proto fails to compile here
//! until it has a case. Reasons that need a broken world get a real one
//! with only the fault injected: the store's failures come from a
//! [`FaultyStore`] around the real SQLite store, `OWNER_UNAVAILABLE`
//! from a session whose owner (a real `sessiond` process) was killed, and
//! the watch's reasons on servers of their own ([`watch`]).

#[path = "../common/mod.rs"]
mod common;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use common::faulty_store::FaultyStore;
use common::{ServerProcess, TestServer, database_url, eventually};
use serde_json::{Value, json};
use sessiond::model::{Error as ServerError, FailureKind, ModuleFailure};
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_client::{Client, Error, ScopeId, SessionFilter, SessionId, SessionState};
use sessiond_proto::v1::ErrorReason;
use tokio::sync::Semaphore;

/// A session id no test creates.
const MISSING: SessionId = SessionId::new(987_654_321);

/// The most open sessions per user the server allows.
const SESSIONS_PER_USER: u32 = 2;

/// The most modules running at once in one session the server allows.
const MODULES_PER_SESSION: u32 = 2;

/// An in-process module that runs until the test releases it (or its run is
/// cancelled).
#[derive(Clone, Debug)]
struct Held {
    release: Arc<Semaphore>,
}

impl Held {
    fn new() -> Self {
        Self {
            release: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets one run conclude.
    fn release_one(&self) {
        self.release.add_permits(1);
    }
}

#[async_trait]
impl Module for Held {
    async fn run(&self, ctx: ModuleContext) -> Result<Value, ModuleFailure> {
        tokio::select! {
            permit = self.release.acquire() => {
                permit.expect("semaphore open").forget();
                Ok(json!("released"))
            }
            () = ctx.cancelled() => Err(ModuleFailure::new(FailureKind::Cancelled, "cancelled while held")),
        }
    }
}

/// What the cases run against.
struct Fixture {
    /// A server on a real SQLite store wrapped in a [`FaultyStore`], with the
    /// module `held`, at most [`SESSIONS_PER_USER`] open sessions per user
    /// and [`MODULES_PER_SESSION`] running modules per session.
    server: TestServer,
    /// Its store, to inject faults.
    store: Arc<FaultyStore>,
    /// Its module.
    held: Held,
    /// A client of it.
    client: Client,
    /// A server (node `node-b`) on a database where node `node-a`, killed,
    /// still owns a clientless session and a lease.
    replica: TestServer,
    /// That session.
    orphan: SessionId,
    /// A server that authenticates callers by static token and has no
    /// policy (callers may only act as themselves).
    secured: TestServer,
    /// A token of subject `errors` on it.
    token: String,
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = FaultyStore::wrap(
            sessiond::store::open(&database_url(dir.path()))
                .await
                .unwrap(),
        );
        let held = Held::new();
        let server = TestServer::build_in(
            dir,
            |config| {
                config.max_open_sessions_per_user = Some(SESSIONS_PER_USER);
                config.max_running_modules_per_session = MODULES_PER_SESSION;
            },
            |builder| builder.module("held", held.clone()).store(store.clone()),
        )
        .await;
        let client = Client::connect(server.endpoint()).await.unwrap();
        let (replica, orphan) = orphaned_session().await;
        let secured_dir = tempfile::tempdir().unwrap();
        let tokens = secured_dir.path().join("tokens.toml");
        let token = common::credentials::static_token(&tokens, "errors", &[]);
        let secured = TestServer::start_in(secured_dir, |config| {
            config.security.tokens = Some(tokens);
        })
        .await;
        Self {
            server,
            store,
            held,
            client,
            replica,
            orphan,
            secured,
            token,
        }
    }

    /// A new clientless session of `user` on the server.
    async fn clientless(&self, user: &str) -> SessionId {
        self.client
            .open_clientless_session(user)
            .await
            .unwrap()
            .session_id
    }

    /// Releases the `runs` held runs of `session` and waits until the latest
    /// concluded, so that the next case starts with nothing running.
    async fn conclude(&self, session: SessionId, runs: u32) {
        for _ in 0..runs {
            self.held.release_one();
        }
        self.client
            .get_return_value(session, "held", Duration::from_secs(30))
            .await
            .unwrap();
    }
}

/// A server of node `node-b` on a database in which node `node-a` owns an
/// open clientless session: `node-a` was a real `sessiond` process that
/// opened it and was killed (its lease lasts an hour and names an address
/// where nothing listens, so no node takes it over and nobody can reach it).
async fn orphaned_session() -> (TestServer, SessionId) {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--node-id",
        "node-a",
        "--advertise",
        "http://127.0.0.1:1",
        "--lease-ttl",
        "1h",
    ];
    let mut owner = ServerProcess::spawn(&database_url(dir.path()), &flags).await;
    let session = Client::connect(owner.endpoint())
        .await
        .unwrap()
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    owner.child.start_kill().unwrap();
    owner.child.wait().await.unwrap();
    let replica = TestServer::start_in(dir, |config| config.node_id = "node-b".to_owned()).await;
    (replica, session)
}

/// Every reason the server can send: each value of the contract's enum but
/// `ERROR_REASON_UNSPECIFIED`.
fn every_reason() -> Vec<ErrorReason> {
    (1..=i32::from(u8::MAX))
        .filter_map(|number| ErrorReason::try_from(number).ok())
        .collect()
}

/// The `ErrorInfo` reason of `reason` on the wire: its name without the
/// prefix.
fn wire_name(reason: ErrorReason) -> &'static str {
    reason
        .as_str_name()
        .strip_prefix("ERROR_REASON_")
        .expect("every value is prefixed")
}

/// Provokes `reason` with a real call, asserts the client's typed error and
/// its ids, and returns it.
async fn provoke(f: &Fixture, reason: ErrorReason) -> Error {
    let client = &f.client;
    let user = format!("errors-{}", wire_name(reason).to_lowercase());
    match reason {
        ErrorReason::Unspecified => unreachable!("never sent"),
        ErrorReason::InvalidArgument => {
            let error = client
                .get_session_user(SessionId::new(0))
                .await
                .unwrap_err();
            let Error::InvalidArgument { violations, .. } = &error else {
                panic!("expected InvalidArgument, got {error:?}");
            };
            let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["session_id"]);
            error
        }
        ErrorReason::SessionNotFound => {
            let error = client.get_session_info(MISSING).await.unwrap_err();
            assert!(
                matches!(error, Error::SessionNotFound { session_id } if session_id == MISSING),
                "{error:?}"
            );
            error
        }
        ErrorReason::SessionNotClientless => {
            let interactive = client.start_session(&user, "errors test").await.unwrap();
            let id = interactive.session_id;
            let error = client
                .open_module(id, "held", Value::Null)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::SessionNotClientless { session_id } if session_id == id),
                "{error:?}"
            );
            error
        }
        ErrorReason::SessionEnded => {
            let id = client
                .start_session(&user, "errors test")
                .await
                .unwrap()
                .session_id;
            client.end_session(id).await.unwrap();
            let error = client.touch_session(id).await.unwrap_err();
            assert!(
                matches!(error, Error::SessionEnded { session_id } if session_id == id),
                "{error:?}"
            );
            error
        }
        ErrorReason::SessionClosing => {
            let id = f.clientless(&user).await;
            client.open_module(id, "held", Value::Null).await.unwrap();
            let close = tokio::spawn({
                let client = client.clone();
                async move {
                    client
                        .close_clientless_session(id, Some(Duration::from_secs(60)))
                        .await
                }
            });
            eventually("the session to be closing", || async move {
                let info = client.get_session_info(id).await.unwrap();
                (info.state == SessionState::Closing).then_some(())
            })
            .await;
            let error = client
                .open_module(id, "held", Value::Null)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::SessionClosing { session_id } if session_id == id),
                "{error:?}"
            );
            f.held.release_one();
            let closed = close.await.unwrap().unwrap();
            assert_eq!(closed.state, SessionState::Ended);
            error
        }
        ErrorReason::ScopeNotFound => {
            let id = f.clientless(&user).await;
            let never_pushed = ScopeId::new(424_242);
            let error = client.pop_user_context(id, never_pushed).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::ScopeNotFound { session_id, scope_id }
                        if session_id == id && scope_id == never_pushed
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::ScopeNotInnermost => {
            let id = f.clientless(&user).await;
            let outer = client.push_user_context(id, "alice").await.unwrap();
            let inner = client.push_user_context(id, "bob").await.unwrap();
            let error = client
                .pop_user_context(id, outer.scope_id)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::ScopeNotInnermost { session_id, scope_id, innermost_scope_id }
                        if session_id == id
                            && scope_id == outer.scope_id
                            && innermost_scope_id == Some(inner.scope_id)
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::ModuleNotFound => {
            let id = f.clientless(&user).await;
            let error = client
                .open_module(id, "no-such-module", Value::Null)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::ModuleNotFound { ref module_id } if module_id == "no-such-module"),
                "{error:?}"
            );
            error
        }
        ErrorReason::ModuleNotOpened => {
            let id = f.clientless(&user).await;
            let error = client
                .get_return_value(id, "held", Duration::ZERO)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::ModuleNotOpened { session_id, ref module_id }
                        if session_id == id && module_id == "held"
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::ModuleStillRunning => {
            let id = f.clientless(&user).await;
            client.open_module(id, "held", Value::Null).await.unwrap();
            let error = client
                .get_return_value(id, "held", Duration::from_millis(50))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::ModuleStillRunning { session_id, ref module_id }
                        if session_id == id && module_id == "held"
                ),
                "{error:?}"
            );
            f.conclude(id, 1).await;
            error
        }
        ErrorReason::TooManyRunningModules => {
            let id = f.clientless(&user).await;
            for _ in 0..MODULES_PER_SESSION {
                client.open_module(id, "held", Value::Null).await.unwrap();
            }
            let error = client
                .open_module(id, "held", Value::Null)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::TooManyRunningModules { ref message } if message.contains("session")),
                "{error:?}"
            );
            f.conclude(id, MODULES_PER_SESSION).await;
            error
        }
        ErrorReason::TooManySessions => {
            for _ in 0..SESSIONS_PER_USER {
                f.clientless(&user).await;
            }
            let error = client.open_clientless_session(&user).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::TooManySessions { user: Some(ref u), limit: Some(SESSIONS_PER_USER), .. }
                        if *u == user
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::OwnerUnavailable => {
            let replica = Client::connect(f.replica.endpoint()).await.unwrap();
            let error = replica
                .open_module(f.orphan, "held", Value::Null)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::OwnerUnavailable { session_id, node: Some(ref node) }
                        if session_id == f.orphan && node == "node-a"
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::StoreUnavailable => {
            f.store.fail("list_sessions", || {
                ServerError::StoreUnavailable("injected: the disk is gone".into())
            });
            let error = client.list_sessions(&SessionFilter::new()).await;
            f.store.heal("list_sessions");
            let error = error.unwrap_err();
            assert!(
                matches!(error, Error::StoreUnavailable { ref message } if !message.contains("injected")),
                "{error:?}"
            );
            error
        }
        ErrorReason::Unauthenticated => {
            let anonymous = Client::connect(f.secured.endpoint()).await.unwrap();
            let error = anonymous.get_session_info(MISSING).await.unwrap_err();
            assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
            error
        }
        ErrorReason::PermissionDenied => {
            let caller = Client::builder()
                .bearer_token(&f.token)
                .connect(f.secured.endpoint())
                .await
                .unwrap();
            let error = caller.open_clientless_session("R41").await.unwrap_err();
            assert!(
                matches!(
                    &error,
                    Error::PermissionDenied { permission, subject, user, .. }
                        if permission == "open_clientless_session"
                            && subject == "errors"
                            && user.as_deref() == Some("R41")
                ),
                "{error:?}"
            );
            error
        }
        ErrorReason::RevisionCompacted => watch::revision_compacted().await,
        ErrorReason::WatchTooSlow => watch::watch_too_slow().await,
        ErrorReason::ServerShuttingDown => watch::server_shutting_down().await,
        ErrorReason::Internal => {
            f.store.fail("list_sessions", || {
                ServerError::Internal("injected: a broken invariant".to_owned())
            });
            let error = client.list_sessions(&SessionFilter::new()).await;
            f.store.heal("list_sessions");
            let error = error.unwrap_err();
            assert!(
                matches!(error, Error::Internal { ref message } if !message.contains("injected")),
                "{error:?}"
            );
            error
        }
    }
}

#[tokio::test]
async fn every_error_reason_reaches_the_client_as_its_typed_error() {
    let f = Fixture::start().await;
    let every = every_reason();
    let mut covered = Vec::new();
    for &reason in &every {
        let error = provoke(&f, reason).await;
        let wire = wire_name(reason);
        assert_eq!(error.reason(), Some(wire), "{reason:?}: {error:?}");
        assert_eq!(
            error.code(),
            Some(common::documented_code(reason)),
            "{reason:?}: {error:?}"
        );
        covered.push(
            error
                .reason()
                .and_then(|r| ErrorReason::from_str_name(&format!("ERROR_REASON_{r}")))
                .expect("a reason of the contract"),
        );
    }
    assert_eq!(
        covered, every,
        "every reason of the contract reached the client typed"
    );
    // The server is still serving after every failure, and stops cleanly.
    f.client.list_sessions(&SessionFilter::new()).await.unwrap();
    f.server.stop().await;
    f.replica.stop().await;
}
