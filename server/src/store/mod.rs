//! Durable storage of sessions and user-context scopes.
//!
//! [`Store`] is the one interface the domain talks to; each backend
//! implements it in its own module with its own migrations, and [`open`]
//! picks the backend from the database URL's scheme. The trait is
//! backend-neutral (no SQL types in its signatures; ids assigned by the
//! store; times passed in by the caller, so every replica and every test
//! clock agrees) and every write method is one transaction that checks its
//! preconditions and applies its change atomically: a write returns only
//! once it is durable, and a failed write changes nothing.

/// The columns of a [`ModuleRun`], followed by the rest of a query: the
/// same SQL on both backends, in the order SQLite's codec reads them by
/// position (PostgreSQL's reads them by name).
macro_rules! select_run {
    ($rest:literal) => {
        concat!(
            "SELECT run_id, session_id, module_id, acting_user, state, start_time, end_time, ",
            "value, failure_kind, failure_message, exit_code, signal, stderr_tail ",
            "FROM module_runs ",
            $rest
        )
    };
}

mod names;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{
    ClientDescription, EndReason, ModuleId, ModuleRun, PoppedScope, PushedScope, RunId, RunOutcome,
    ScopeId, Session, SessionFacts, SessionId, SessionKind, SessionState, Timestamp, UserContext,
    UserId,
};

pub use postgres::{PostgresSettings, PostgresStore, redact_password};
pub use sqlite::SqliteStore;

/// The fields of a session about to be created.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its UUID (v7).
    pub uuid: Uuid,
    /// Its user.
    pub user: UserId,
    /// Interactive or clientless.
    pub kind: SessionKind,
    /// The client description (empty for clientless sessions).
    pub client: ClientDescription,
    /// The start time, also its first activity time.
    pub now: Timestamp,
    /// The node that owns it: it runs its modules and ends it after a crash.
    pub owner_node: String,
    /// The most open (not ended) sessions its user may have, this one
    /// included; `None`: no limit.
    pub max_open_per_user: Option<u32>,
}

impl NewSession {
    /// The record of this session as created with `id`: what the store
    /// wrote, without reading it back.
    #[must_use]
    pub fn into_session(self, id: SessionId) -> Session {
        Session {
            id,
            uuid: self.uuid,
            effective_user: self.user.clone(),
            user: self.user,
            kind: self.kind,
            state: SessionState::Open,
            start_time: self.now,
            end_time: None,
            last_activity_time: self.now,
            end_reason: None,
            client: self.client,
            user_context_depth: 0,
            owner_node: self.owner_node,
        }
    }
}

/// Which sessions to list, and where the page starts.
#[derive(Clone, Debug, Default)]
pub struct SessionQuery {
    /// Only this user's sessions.
    pub user: Option<UserId>,
    /// Only sessions of this kind.
    pub kind: Option<SessionKind>,
    /// Only sessions in this state.
    pub state: Option<SessionState>,
    /// Only sessions with a greater id (the previous page's last one).
    pub after: Option<SessionId>,
    /// The most sessions to return.
    pub limit: u32,
}

/// A new run and the session it runs in, as `start_run` recorded them.
#[derive(Clone, Debug)]
pub struct StartedRun {
    /// The run, running.
    pub run: ModuleRun,
    /// Its session at the moment the run started.
    pub session: Session,
}

/// What start-up recovery ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Clientless sessions ended.
    pub sessions: u64,
    /// Runs recorded as failed (interrupted).
    pub runs: u64,
}

/// When an open clientless session has outlived its welcome. A field that is
/// `None` is a limit that is off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expiry {
    /// Idle: no run running and no activity since before this time.
    pub idle_before: Option<Timestamp>,
    /// Too old: started before this time.
    pub started_before: Option<Timestamp>,
}

/// The durable store behind sessiond.
///
/// # Errors
/// Every method fails with [`Error::StoreUnavailable`] when the database
/// cannot be reached or written, and with the domain error its documentation
/// names when a precondition does not hold (then nothing was changed).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Creates an open session. Fails with [`Error::TooManySessions`] when
    /// its user already has `max_open_per_user` open sessions.
    async fn create_session(&self, new: NewSession) -> Result<Session>;

    /// Reads a session. [`Error::SessionNotFound`] when there is none.
    async fn session(&self, id: SessionId) -> Result<Session>;

    /// Reads what never changes about a session: its user and its owner
    /// (the hot path). [`Error::SessionNotFound`] when there is none.
    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts>;

    /// Lists sessions matching `query`, in ascending id order.
    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>>;

    /// Records activity at `now` on a session that has not ended.
    /// [`Error::SessionEnded`] when it has.
    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session>;

    /// Moves an open clientless session to closing.
    /// [`Error::SessionNotClientless`] for an interactive session; a session
    /// already closing or ended is returned unchanged.
    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session>;

    /// Ends an open or closing clientless session with `reason` at `now`
    /// without a closing phase: for a session whose owner knows that no run
    /// is in progress in it. [`Error::SessionNotClientless`] for an
    /// interactive session; a session that already ended is returned
    /// unchanged (its first reason stays).
    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;

    /// Ends a session with `reason` at `now`. Its user-context scopes stay
    /// as they were (the ended record shows the depth it ended with). A
    /// session that already ended is returned unchanged (its first reason
    /// stays).
    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;

    /// Crash recovery for `node`: records its sessions' running runs as
    /// failed (interrupted) and ends its clientless sessions that have not
    /// ended with `reason`, in one transaction.
    async fn recover_node(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Recovered>;

    /// The clientless sessions owned by `node` that have not ended.
    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>>;

    /// The open clientless sessions owned by `node` that `expiry` says have
    /// expired (candidates: [`Store::begin_closing_expired`] decides).
    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>>;

    /// Moves an open clientless session to closing if `expiry` says it has
    /// expired, checked in the same transaction; returns why it expired
    /// (maximum lifetime before idleness), or `None` when it has not.
    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
    ) -> Result<Option<EndReason>>;

    /// Records a running run of `module` in an open clientless session,
    /// acting as the session's current user context, and records activity.
    /// [`Error::SessionNotClientless`], [`Error::SessionClosing`],
    /// [`Error::SessionEnded`] when the session cannot run modules.
    async fn start_run(
        &self,
        session: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<StartedRun>;

    /// Records how a running run concluded, and activity on its session. A
    /// run that already concluded is returned unchanged.
    async fn finish_run(
        &self,
        run: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun>;

    /// Reads a run.
    async fn run(&self, run: RunId) -> Result<ModuleRun>;

    /// Records that `node` is alive until `expires` and reachable at
    /// `endpoint`, registering it if it is not known. Returns whether it was
    /// known: `false` for a node's first lease, and for a node that another
    /// one took over (forgot) since its last renewal.
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool>;

    /// The endpoint of `node` if its lease has not expired at `now`.
    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>>;

    /// Takes over every node but `taker` whose lease expired before `now`:
    /// for each, in one transaction, what [`Store::recover_node`] does with
    /// `reason`, and the node is forgotten. Concurrent callers never take
    /// over the same node twice. Returns each node taken over and what was
    /// ended.
    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>>;

    /// Forgets `node` (it left cleanly).
    async fn remove_node(&self, node: &str) -> Result<()>;

    /// Reads the latest run of `module` in `session`.
    /// [`Error::SessionNotFound`], [`Error::ModuleNotOpened`].
    async fn latest_run(&self, session: SessionId, module: &ModuleId) -> Result<ModuleRun>;

    /// Reads a session's user context. [`Error::SessionEnded`] when the
    /// session has ended.
    async fn user_context(&self, id: SessionId) -> Result<UserContext>;

    /// Replaces the user context of a session that has not ended; returns
    /// the previous one. [`Error::SessionEnded`] when it has.
    async fn set_user_context(&self, id: SessionId, user: UserId, now: Timestamp)
    -> Result<UserId>;

    /// Pushes a scope acting as `user`. [`Error::SessionEnded`] when the
    /// session has ended.
    async fn push_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<PushedScope>;

    /// Pops the innermost scope, restoring the user context from before its
    /// push. [`Error::ScopeNotFound`] / [`Error::ScopeNotInnermost`] when
    /// `scope` is not open / not innermost; [`Error::SessionEnded`] when the
    /// session has ended.
    async fn pop_user_context(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<PoppedScope>;
}

/// Opens the store a database URL names, creating and migrating it as
/// needed: `sqlite://PATH` (or `sqlite:PATH`), or `postgres://…` /
/// `postgresql://…` (libpq's URL syntax; the database must exist, its
/// tables are created).
///
/// # Errors
/// [`Error::StoreUnavailable`] when the database cannot be opened or
/// migrated; [`Error::InvalidArgument`] for a URL of another scheme.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    Err(Error::InvalidArgument(vec![
        crate::error::FieldViolation::new(
            "database",
            "unsupported database URL; expected sqlite://PATH or postgres://…",
        ),
    ]))
}
