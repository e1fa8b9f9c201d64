//! What a backend provides — the contract a third backend implements: a
//! write transaction's primitives ([`WriteTx`]: lock, read and write rows),
//! a way to run an operation in one such transaction ([`Backend::write`]),
//! and the reads. SQL and row mapping only: the operations themselves (lock
//! and read, ask the domain, write) are written once, in
//! [`super::operations`], for every backend.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::ledger::{LedgerHead, StoredEvent};
use super::{EventQuery, SessionQuery};
use crate::events::Cause;
use crate::model::{
    Change, EndReason, Expiry, ModuleId, ModuleRun, NewRun, NewScope, NewSession, Result, RunId,
    RunProcess, Scope, ScopeId, Session, SessionFacts, SessionId, Timestamp, UserId,
};

/// The primitives of one write transaction. Every lock is held until the
/// transaction ends; locks are taken in one order (user rows, then session
/// rows by ascending id, then their scopes and runs), so that concurrent
/// transactions never deadlock.
#[async_trait]
pub trait WriteTx: Send {
    /// Locks session `id` and reads it.
    /// [`crate::Error::SessionNotFound`] when there is none.
    async fn lock_session(&mut self, id: SessionId) -> Result<Session>;

    /// Writes what changed from `old` to `new`, two versions of one locked
    /// session ([`super::SessionChanges`]).
    async fn write_session(&mut self, old: &Session, new: &Session) -> Result<()>;

    /// Inserts an open session; returns its id.
    async fn insert_session(&mut self, new: &NewSession) -> Result<SessionId>;

    /// Locks `user`'s row for the per-user limit (creating it if missing)
    /// and counts the user's sessions that have not ended.
    async fn lock_user_and_count_unended(&mut self, user: &UserId) -> Result<u64>;

    /// The open scopes of a locked session, outermost first.
    async fn scopes(&mut self, session: SessionId) -> Result<Vec<Scope>>;

    /// Records a pushed scope; returns its id.
    async fn insert_scope(&mut self, scope: &NewScope) -> Result<ScopeId>;

    /// Forgets a popped scope.
    async fn delete_scope(&mut self, scope: ScopeId) -> Result<()>;

    /// Records a running run; returns its id.
    async fn insert_run(&mut self, run: &NewRun) -> Result<RunId>;

    /// Reads a run.
    async fn run(&mut self, run: RunId) -> Result<ModuleRun>;

    /// Writes a concluded run's outcome.
    async fn write_run(&mut self, run: &ModuleRun) -> Result<()>;

    /// Records a run's process group, or with `None` forgets it.
    async fn set_run_process(&mut self, run: RunId, process: Option<&RunProcess>) -> Result<()>;

    /// The process groups recorded for runs of the sessions `node` owns.
    async fn run_processes_of_node(&mut self, node: &str) -> Result<Vec<(RunId, RunProcess)>>;

    /// Whether a run is running in a locked session.
    async fn has_running_run(&mut self, session: SessionId) -> Result<bool>;

    /// Locks the clientless sessions of `node` that have not ended and
    /// reads them.
    async fn lock_unended_clientless_of_node(&mut self, node: &str) -> Result<Vec<Session>>;

    /// The running runs of the sessions `node` owns.
    async fn running_runs_of_node(&mut self, node: &str) -> Result<Vec<ModuleRun>>;

    /// Records `node`'s lease until `expires` at `endpoint`; returns whether
    /// it had a row.
    async fn renew_node(&mut self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool>;

    /// Locks one node but `taker` whose lease expired by `now` and that no
    /// other transaction holds; `None` when there is none.
    async fn lock_lost_node(&mut self, taker: &str, now: Timestamp) -> Result<Option<String>>;

    /// Forgets a node.
    async fn delete_node(&mut self, node: &str) -> Result<()>;

    /// Records `change` in the event log, made by this transaction's
    /// cause: it is sealed (given its revision and hash) and written when
    /// the transaction commits, and dropped if it does not.
    fn record(&mut self, change: Change);

    /// [`WriteTx::record`] of a change made by `cause`.
    fn record_as(&mut self, change: Change, cause: Arc<Cause>);

    /// Removes the oldest events of the log, up to `limit`, made before
    /// `before`: the prefix of the log older than that; the checkpoint
    /// becomes the last one removed. Returns how many were removed.
    async fn compact_events(&mut self, before: Timestamp, limit: u32) -> Result<u64>;
}

/// An operation run in one write transaction.
pub type Operation<R> =
    Box<dyn for<'t> FnOnce(&'t mut dyn WriteTx) -> BoxFuture<'t, Result<R>> + Send>;

/// A session to end (see [`super::operations::end`]).
#[derive(Clone, Copy, Debug)]
pub struct End {
    /// The session.
    pub id: SessionId,
    /// Why it ends.
    pub reason: EndReason,
    /// When.
    pub now: Timestamp,
    /// Whether an interactive session is refused
    /// ([`Session::end_clientless`] rather than [`Session::end`]).
    pub clientless_only: bool,
}

impl End {
    /// An end of any session ([`Session::end`]).
    #[must_use]
    pub fn any(id: SessionId, reason: EndReason, now: Timestamp) -> Self {
        let clientless_only = false;
        Self {
            id,
            reason,
            now,
            clientless_only,
        }
    }

    /// An end of a clientless session only ([`Session::end_clientless`]).
    #[must_use]
    pub fn clientless(id: SessionId, reason: EndReason, now: Timestamp) -> Self {
        Self {
            clientless_only: true,
            ..Self::any(id, reason, now)
        }
    }

    /// What the domain makes of this end of `session`: its ended record,
    /// `None` when it stays as it is, or the refusal.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotClientless`].
    pub fn decide(&self, session: &Session) -> Result<Option<Session>> {
        if self.clientless_only {
            session.end_clientless(self.reason, self.now)
        } else {
            Ok(session.end(self.reason, self.now))
        }
    }
}

/// A database the store runs on. Implementing it (and nothing else) makes
/// a type a [`super::Store`].
///
/// # Errors
/// Every method fails with [`crate::Error::StoreUnavailable`] when the
/// database cannot be reached or written.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Runs `op` in one write transaction and returns its result once the
    /// transaction committed (durably); if `op` fails, nothing it did is
    /// committed.
    async fn write<R: Send + 'static>(&self, op: Operation<R>) -> Result<R>;

    /// Creates a session ([`super::operations::create`] in its own
    /// transaction, unless the backend commits opens together).
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        self.write(Box::new(move |tx| {
            Box::pin(super::operations::create(tx, new))
        }))
        .await
    }

    /// Ends a session ([`super::operations::end`] in its own transaction,
    /// unless the backend commits ends together).
    async fn end_session(&self, end: End) -> Result<Session> {
        self.write(Box::new(move |tx| {
            Box::pin(super::operations::end(tx, end))
        }))
        .await
    }

    /// Reads a session. [`crate::Error::SessionNotFound`] when there is none.
    async fn session(&self, id: SessionId) -> Result<Session>;

    /// Reads the events `query` asks for.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>>;

    /// Reads the head of the event log and its compaction checkpoint.
    async fn ledger_head(&self) -> Result<LedgerHead>;

    /// Reads, in one snapshot, the head's revision and the sessions that
    /// have not ended and match `query` (its `state` and `after` ignored),
    /// in ascending id order.
    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)>;

    /// Woken after each commit that recorded events.
    fn commits(&self) -> Arc<crate::store::Commits>;

    /// Reads a session's user and owner.
    /// [`crate::Error::SessionNotFound`] when there is none.
    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts>;

    /// Lists sessions matching `query`, in ascending id order.
    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>>;

    /// The clientless sessions owned by `node` that have not ended.
    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>>;

    /// The open clientless sessions of `node` that may have expired by
    /// `expiry` (a filter; the domain decides under the session's lock).
    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>>;

    /// Reads a run.
    async fn run(&self, run: RunId) -> Result<ModuleRun>;

    /// Reads the latest run of `module` in `session`, if any.
    async fn latest_run(&self, session: SessionId, module: &ModuleId) -> Result<Option<ModuleRun>>;

    /// The endpoint of `node` if its lease has not expired at `now`.
    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>>;

    /// See [`crate::store::StatsStore::stats`].
    async fn stats(&self) -> Result<crate::store::StoreStats>;
}
