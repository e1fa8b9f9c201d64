//! Durable storage: persistence only, no rule.
//!
//! The store is split by concern — [`SessionStore`], [`ScopeStore`],
//! [`RunStore`], [`NodeStore`] — and [`Store`] is all of them on one
//! database; each backend implements them in its own module with its own
//! migrations, and [`open`] picks the backend from the database URL's
//! scheme. The traits are backend-neutral (no SQL types in their
//! signatures; ids assigned by the store; times passed in by the caller, so
//! every replica and every test clock agrees).
//!
//! Every write is one transaction of the same shape, written once in
//! [`operations`] for every backend: lock and read what the rule depends
//! on, ask the domain ([`crate::model`]) what it becomes, write that (a
//! session's changed columns: [`SessionChanges`]), commit. A backend
//! provides only a transaction's primitives ([`WriteTx`]), how it runs one
//! ([`Backend::write`]) and its reads ([`Backend`]): SQL and row mapping. A
//! write returns only once it is durable, and a failed write — refused by
//! the rule or by the database — changes nothing.
//!
//! One migration number is one change on both backends, from 0006 on
//! (`migrations/sqlite`, `migrations/postgres`).

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

mod backend;
mod changes;
mod commits;
mod events;
pub mod ledger;
pub(crate) mod names;
pub mod operations;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    EndReason, Error, ModuleId, ModuleRun, PoppedScope, PushedScope, Result, RunId, RunOutcome,
    RunProcess, ScopeId, Session, SessionFacts, SessionId, SessionKind, SessionState, Timestamp,
    UserContext, UserId,
};

pub use crate::model::{Expiry, NewSession};
pub use backend::{Backend, End, Operation, WriteTx};
pub(crate) use changes::{ColumnValue, Dialect, SessionChanges, conclude_run_sql};
pub use commits::{CommitObserver, Commits};
pub use events::EventQuery;
pub use ledger::{Head, LedgerHead, Pending, StoredEvent};
pub use postgres::{PostgresSettings, PostgresStore, read_password_file, redact_password};
pub use sqlite::SqliteStore;

/// Which sessions to list, and where the page starts.
#[derive(Clone, Debug, Default)]
pub struct SessionQuery {
    /// Only this user's sessions.
    pub user: Option<UserId>,
    /// Only sessions of this kind.
    pub kind: Option<SessionKind>,
    /// Only sessions in one of these states; empty: any state.
    pub states: Vec<SessionState>,
    /// Only sessions that started at or after this time.
    pub started_after: Option<Timestamp>,
    /// Only sessions that started before this time.
    pub started_before: Option<Timestamp>,
    /// Newest first (descending ids) instead of oldest first.
    pub newest_first: bool,
    /// Only sessions beyond this one in the listing's order (the previous
    /// page's last one): greater ids, or smaller ones newest first.
    pub after: Option<SessionId>,
    /// The most sessions to return.
    pub limit: u32,
}

impl SessionQuery {
    /// The id the listing starts beyond: [`SessionQuery::after`], else
    /// the end of the ids its order starts from.
    #[must_use]
    pub fn start_beyond(&self) -> i64 {
        self.after
            .map_or(if self.newest_first { i64::MAX } else { 0 }, SessionId::get)
    }
}

impl SessionQuery {
    /// Whether a session in `state` passes the state filter.
    #[must_use]
    pub fn wants_state(&self, state: SessionState) -> bool {
        self.states.is_empty() || self.states.contains(&state)
    }
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

/// Sessions: creating, reading, listing, and the writes of their life.
///
/// # Errors
/// Every method fails with [`Error::StoreUnavailable`] when the database
/// cannot be reached or written, and with the error of the domain rule it
/// applies (then nothing was changed).
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates an open session, admitted by [`crate::model::admit`] against
    /// its user's sessions that have not ended.
    async fn create_session(&self, new: NewSession) -> Result<Session>;

    /// Reads a session. [`Error::SessionNotFound`] when there is none.
    async fn session(&self, id: SessionId) -> Result<Session>;

    /// Reads what never changes about a session: its user and its owner
    /// (the hot path). [`Error::SessionNotFound`] when there is none.
    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts>;

    /// Lists sessions matching `query`, in ascending id order.
    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>>;

    /// Records activity ([`Session::touch`]).
    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session>;

    /// Moves a session to closing ([`Session::begin_closing`]), to end for
    /// `reason` once its runs concluded (the reason its closing event
    /// records); returns it as it is now.
    async fn begin_closing(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;

    /// Ends a clientless session with no closing phase
    /// ([`Session::end_clientless`]): for a session whose owner knows that no
    /// run is in progress in it. Returns it as it is now.
    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;

    /// Ends a session ([`Session::end`]); returns it as it is now. Its
    /// user-context scopes stay as they were (the ended record shows the
    /// depth it ended with).
    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;

    /// The clientless sessions owned by `node` that have not ended.
    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>>;

    /// The open clientless sessions owned by `node` that may have expired:
    /// candidates for [`SessionStore::begin_closing_expired`], which decides.
    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>>;

    /// Moves a session to closing at `now` if [`Expiry::close`] says it
    /// expired, checked in the same transaction; returns why, or `None`.
    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
        now: Timestamp,
    ) -> Result<Option<EndReason>>;
}

/// User contexts and their scopes.
///
/// # Errors
/// As [`SessionStore`].
#[async_trait]
pub trait ScopeStore: Send + Sync + std::fmt::Debug + 'static {
    /// Reads a session's user context ([`Session::user_context`]).
    async fn user_context(&self, id: SessionId) -> Result<UserContext>;

    /// Replaces a session's user context ([`Session::set_user_context`]);
    /// returns the previous one.
    async fn set_user_context(&self, id: SessionId, user: UserId, now: Timestamp)
    -> Result<UserId>;

    /// Pushes a scope acting as `user` ([`Session::push_user_context`]).
    async fn push_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<PushedScope>;

    /// Pops the innermost scope ([`Session::pop_user_context`]), restoring
    /// the user context from before its push.
    async fn pop_user_context(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<PoppedScope> {
        self.pop_user_context_as(id, scope, now, allow_anyone())
            .await
    }

    /// [`ScopeStore::pop_user_context`], when `check` allows the user the
    /// popped scope acts as (checked in the same transaction, so that what
    /// was checked is what is popped); `check`'s error otherwise, and
    /// nothing changes.
    async fn pop_user_context_as(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
        check: UserCheck,
    ) -> Result<PoppedScope>;
}

/// A check of a user, run inside a store's write transaction: `Ok` to go
/// on, or the error to fail with (changing nothing).
pub type UserCheck = Arc<dyn Fn(&UserId) -> Result<()> + Send + Sync>;

/// The [`UserCheck`] that allows every user.
#[must_use]
pub fn allow_anyone() -> UserCheck {
    Arc::new(|_| Ok(()))
}

/// Module runs.
///
/// # Errors
/// As [`SessionStore`].
#[async_trait]
pub trait RunStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records a running run of `module` ([`Session::start_run`]), and
    /// activity on its session.
    async fn start_run(
        &self,
        session: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<StartedRun> {
        self.start_run_as(session, module, parameters, now, allow_anyone())
            .await
    }

    /// [`RunStore::start_run`], when `check` allows the user the run acts
    /// as (the session's user context, read in the same transaction);
    /// `check`'s error otherwise, and nothing changes.
    async fn start_run_as(
        &self,
        session: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
        check: UserCheck,
    ) -> Result<StartedRun>;

    /// Records how a run concluded ([`ModuleRun::conclude`]), and activity
    /// on its session, and forgets its process group (the run killed it).
    /// A run that already concluded is returned unchanged.
    async fn finish_run(
        &self,
        run: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun>;

    /// Reads a run.
    async fn run(&self, run: RunId) -> Result<ModuleRun>;

    /// Reads the latest run of `module` in `session`.
    /// [`Error::SessionNotFound`], [`Error::ModuleNotOpened`].
    async fn latest_run(&self, session: SessionId, module: &ModuleId) -> Result<ModuleRun>;

    /// Records the process group of a running run, until
    /// [`RunStore::finish_run`] or [`RunStore::forget_run_processes`].
    async fn record_run_process(&self, run: RunId, process: &RunProcess) -> Result<()>;

    /// The process groups recorded for runs of the sessions `node` owns,
    /// whatever the runs' state (a take-over by another node concludes the
    /// runs but leaves their processes to their own host).
    async fn run_processes_of_node(&self, node: &str) -> Result<Vec<(RunId, RunProcess)>>;

    /// Forgets the process groups of `runs` (they were killed).
    async fn forget_run_processes(&self, runs: &[RunId]) -> Result<()>;
}

/// The server nodes sharing the database: leases, and recovering what a
/// node left behind.
///
/// # Errors
/// As [`SessionStore`].
#[async_trait]
pub trait NodeStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records that `node` is alive until `expires` and reachable at
    /// `endpoint`, registering it if it is not known. Returns whether it was
    /// known: `false` for a node's first lease, and for a node that another
    /// one took over (forgot) since its last renewal.
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool>;

    /// The endpoint of `node` if its lease has not expired at `now`.
    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>>;

    /// Crash recovery for `node`, in one transaction: its sessions' running
    /// runs are interrupted ([`ModuleRun::interrupt`]) and its sessions
    /// recovered ([`Session::recover`]) with `reason`.
    async fn recover_node(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Recovered>;

    /// Takes over every node but `taker` whose lease expired before `now`:
    /// for each, in one transaction, what [`NodeStore::recover_node`] does
    /// with `reason`, and the node is forgotten. Concurrent callers never
    /// take over the same node twice. Returns each node taken over and what
    /// was ended.
    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>>;

    /// Forgets `node` (it left cleanly).
    async fn remove_node(&self, node: &str) -> Result<()>;
}

/// The event log: every change of the stores above records its events in
/// its own transaction ([`WriteTx::record`]); this reads them, records what
/// changes nothing else, and compacts.
///
/// # Errors
/// As [`SessionStore`].
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records `changes`, each made by its cause, in one transaction: for
    /// events that change nothing else (refused calls).
    async fn record_events(&self, changes: Vec<Pending>) -> Result<()>;

    /// Reads the events `query` asks for.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>>;

    /// Reads the head of the log and its compaction checkpoint.
    async fn ledger_head(&self) -> Result<LedgerHead>;

    /// Reads, in one snapshot, the head's revision and the sessions that
    /// have not ended and match `query` (its `state` and `after` ignored).
    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)>;

    /// Removes the oldest events made before `before`, at most `limit`, in
    /// one transaction, moving the checkpoint to the last one removed.
    /// Returns how many were removed.
    async fn compact_events(&self, before: Timestamp, limit: u32) -> Result<u64>;

    /// Woken after each commit of this process that recorded events.
    fn commits(&self) -> Arc<crate::store::Commits>;
}

/// What an operator counts: a summary of the whole database, read at once
/// (the server's metrics read it at each scrape).
///
/// # Errors
/// As [`SessionStore`].
#[async_trait]
pub trait StatsStore: Send + Sync + std::fmt::Debug + 'static {
    /// How many sessions have not ended, by kind; every replica's nodes'
    /// leases; the event log's head revision.
    async fn stats(&self) -> Result<StoreStats>;
}

/// What [`StatsStore::stats`] reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Sessions not ended (open or closing), by kind; kinds without any are
    /// left out.
    pub unended_sessions: Vec<(SessionKind, u64)>,
    /// Each known node (replica) and when its lease expires.
    pub leases: Vec<(String, Timestamp)>,
    /// The revision of the event log's last event (0 before the first).
    pub revision: i64,
}

/// The durable store behind sessiond: every concern, on one database.
pub trait Store:
    SessionStore + ScopeStore + RunStore + NodeStore + EventStore + StatsStore
{
}

impl<T: SessionStore + ScopeStore + RunStore + NodeStore + EventStore + StatsStore> Store for T {}

/// Opens the store a database URL names, creating and migrating it as
/// needed: `sqlite://PATH` (or `sqlite:PATH`), or `postgres://…` /
/// `postgresql://…` (libpq's URL syntax; the database must exist, its
/// tables are created).
///
/// # Errors
/// [`Error::StoreUnavailable`] when the database cannot be opened or
/// migrated; [`Error::InvalidArgument`] for a URL of another scheme.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, true).await
}

/// [`open`], recording the event log or not: `record_events` false leaves
/// the log empty (no evidence, nothing to watch) and exists only to measure
/// what the log costs, side by side in one build (`sessiond-bench`).
///
/// # Errors
/// As [`open`].
pub async fn open_with(url: &str, record_events: bool) -> Result<Arc<dyn Store>> {
    let options = StoreOptions {
        record_events,
        ..StoreOptions::default()
    };
    open_configured(url, &options).await
}

/// How a store is opened, beyond its URL.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions<'a> {
    /// The PostgreSQL password is read from this file (its first line)
    /// rather than taken from the URL.
    pub password_file: Option<&'a std::path::Path>,
    /// Whether changes are recorded in the event log ([`open_with`]).
    pub record_events: bool,
    /// How many session records the SQLite store keeps in memory
    /// ([`crate::Config::cached_sessions`]).
    pub cached_sessions: usize,
}

impl Default for StoreOptions<'_> {
    fn default() -> Self {
        Self {
            password_file: None,
            record_events: true,
            cached_sessions: crate::known_sessions::DEFAULT_CACHED_SESSIONS,
        }
    }
}

/// [`open`] with `options`.
///
/// # Errors
/// As [`open`]; [`Error::InvalidArgument`] (`database_password_file`) when
/// the password file cannot be read, or is given for a SQLite database.
pub async fn open_configured(url: &str, options: &StoreOptions<'_>) -> Result<Arc<dyn Store>> {
    let StoreOptions {
        password_file,
        record_events,
        cached_sessions,
    } = *options;
    let password_file_violation = |description: String| {
        Error::InvalidArgument(vec![crate::model::FieldViolation::new(
            "database_password_file",
            description,
        )])
    };
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(Error::InvalidArgument(vec![
                crate::model::FieldViolation::new(
                    "database",
                    "sqlite:// needs the database file's path, e.g. sqlite://sessiond.db",
                ),
            ]));
        }
        if password_file.is_some() {
            return Err(password_file_violation(
                "a password file is for postgres:// databases".to_owned(),
            ));
        }
        return Ok(Arc::new(
            SqliteStore::open_caching(path, record_events, cached_sessions).await?,
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let password = match password_file {
            Some(path) => Some(
                postgres::read_password_file(path)
                    .map_err(|e| password_file_violation(format!("{}: {e}", path.display())))?,
            ),
            None => None,
        };
        let settings = PostgresSettings {
            record_events,
            password,
            ..PostgresSettings::new(url)
        };
        return Ok(Arc::new(PostgresStore::connect(&settings).await?));
    }
    Err(Error::InvalidArgument(vec![
        crate::model::FieldViolation::new(
            "database",
            "unsupported database URL; expected sqlite://PATH or postgres://…",
        ),
    ]))
}
