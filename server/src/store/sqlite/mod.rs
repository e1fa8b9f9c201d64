//! The embedded SQLite store: one file in WAL mode, `synchronous = FULL`.
//!
//! Writes go through one connection owned by a writer thread that commits
//! concurrent writes together ([`writer`]: group commit, one fsync per
//! batch, each write acknowledged only after its batch committed), in
//! `BEGIN IMMEDIATE` transactions, so concurrent writers queue instead of
//! failing with "database is locked". Reads use separate query-only
//! connections that WAL runs beside the writer ([`Readers`]); session
//! records are also kept in memory ([`cache`]), exact because one process
//! owns the file ([`ownership`]). Both talk to SQLite directly
//! (`rusqlite`); migrations run through `sqlx`'s migrator when the store
//! opens.

mod cache;
mod codec;
mod ownership;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, params};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection as _, SqliteConnection};

use self::cache::SessionCache;
use self::codec::{
    column, execute, failure_kind_name, insert, kind_name, query_all, query_one, reason_name,
    run_from_row, run_state_name, session_from_row, state_name, store_error,
};
use self::ownership::Ownership;
use self::writer::{Transaction, Writer};
use super::{Expiry, NewSession, Recovered, SessionQuery, StartedRun, Store};
use crate::error::{Error, Result};
use crate::model::{
    EndReason, ModuleId, ModuleRun, PoppedScope, PushedScope, RunId, RunOutcome, ScopeId, Session,
    SessionFacts, SessionId, SessionKind, SessionState, Timestamp, UserContext, UserId,
};

/// How many session records are kept in memory (about 0.3 KiB each).
const CACHED_SESSIONS: usize = 65_536;

/// How many idle read connections are kept for reuse.
const IDLE_READERS: usize = 8;

/// How long a statement waits for a lock before the store reports itself
/// unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of a [`Session`], followed by the rest of a query (in the
/// order `codec::session_from_row` reads them).
macro_rules! select_session {
    ($rest:literal) => {
        concat!(
            "SELECT s.session_id, s.session_uuid, s.user_id, s.kind, s.state, s.start_time, ",
            "s.end_time, s.last_activity_time, s.end_reason, s.effective_user, s.client, s.owner_node, ",
            "(SELECT COUNT(*) FROM user_context_scopes c WHERE c.session_id = s.session_id) ",
            "AS depth FROM sessions s ",
            $rest
        )
    };
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The single writer, committing concurrent writes together: SQLite
    /// allows one writer at a time, and queueing beats retrying on
    /// SQLITE_BUSY.
    writer: Writer,
    /// Query-only connections for reads, which WAL runs concurrently.
    readers: Arc<Readers>,
    /// Session records, kept exact by the writer.
    cache: Arc<SessionCache>,
    /// This process's lock on the database, held while any clone lives.
    _ownership: Arc<Ownership>,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `path`.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the file cannot be opened or
    /// migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let ownership = Ownership::take(&path).await?;
        migrate(&path).await?;
        let cache = Arc::new(SessionCache::new(CACHED_SESSIONS));
        let writer = Writer::start(connect(&path, Role::Writer)?, Arc::clone(&cache))?;
        let readers = Arc::new(Readers {
            idle: Mutex::new(vec![connect(&path, Role::Reader)?]),
            path,
        });
        Ok(Self {
            writer,
            readers,
            cache,
            _ownership: Arc::new(ownership),
        })
    }
}

/// Creates the file if missing, turns WAL on (it stays on in the file) and
/// applies the migrations the database lacks.
async fn migrate(path: &Path) -> Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        // A migration may rebuild a table that others reference, which
        // SQLite allows only with foreign keys off; the writer turns them on.
        .foreign_keys(false);
    let unavailable = |e: sqlx::Error| Error::StoreUnavailable(Box::new(e));
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(unavailable)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut connection)
        .await
        .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
    connection.close().await.map_err(unavailable)
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The writer's: durable commits.
    Writer,
    /// A reader's: queries only.
    Reader,
}

/// Opens a connection to the migrated database at `path`.
fn connect(path: &Path, role: Role) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(store_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
    let pragmas = match role {
        // The writer's page cache: 16 MiB (SQLite's default is 2 MiB), so
        // that the B-tree pages every write touches stay in memory while
        // the tables grow; measured in BENCHMARKS.md.
        Role::Writer => {
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;"
        }
        Role::Reader => "PRAGMA query_only = ON;",
    };
    connection.execute_batch(pragmas).map_err(store_error)?;
    Ok(connection)
}

/// The read connections: WAL lets each read beside the writer, seeing the
/// last committed state.
#[derive(Debug)]
struct Readers {
    /// The database file, for opening more connections.
    path: PathBuf,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Runs a lookup by key on the calling thread. Such a read takes
    /// microseconds (a few B-tree pages, cached), less than handing it to
    /// another thread would cost; reads never wait for the writer in WAL.
    fn lookup<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => connect(&self.path, Role::Reader)?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        result
    }

    /// Runs a read that may visit many rows on a blocking thread, off the
    /// async workers.
    async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.lookup(read))
            .await
            .map_err(|e| Error::Internal(format!("a read failed: {e}")))?
    }
}

/// The clientless sessions of node `?1` that are open and started before
/// `?2` or idle since `?3` without a running module (either may be NULL).
///
/// `s.state <> 'ended'` repeats what `s.state = 'open'` implies, because
/// SQLite uses the partial index `sessions_unended_by_owner` only for a
/// query that states its condition: without it, every run of the reaper
/// (every 5 s by default) read the whole table, every session that ever
/// existed.
const EXPIRED_SESSIONS: &str = "SELECT s.session_id FROM sessions s \
     WHERE s.owner_node = ?1 AND s.kind = 'clientless' AND s.state <> 'ended' \
     AND s.state = 'open' \
     AND ((?2 IS NOT NULL AND s.start_time < ?2) \
       OR (?3 IS NOT NULL AND s.last_activity_time < ?3 AND NOT EXISTS \
           (SELECT 1 FROM module_runs r \
            WHERE r.session_id = s.session_id AND r.state = 'running')))";

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        self.writer
            .write(move |tx| {
                if let Some(limit) = new.max_open_per_user {
                    let open: i64 = query_one(
                        tx.conn,
                        "SELECT COUNT(*) AS open FROM sessions \
                         WHERE user_id = ? AND state <> 'ended'",
                        [new.user.as_str()],
                        |row| column(row, "open"),
                    )?
                    .unwrap_or(0);
                    if open >= i64::from(limit) {
                        return Err(Error::TooManySessions {
                            user: new.user.into_string(),
                            limit,
                        });
                    }
                }
                let id: i64 = insert(
                    tx.conn,
                    "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
                     last_activity_time, effective_user, client, owner_node) \
                     VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                    params![
                        new.uuid.to_string(),
                        new.user.as_str(),
                        kind_name(new.kind),
                        new.now.unix_micros(),
                        new.now.unix_micros(),
                        new.user.as_str(),
                        new.client.as_str(),
                        new.owner_node,
                    ],
                )?;
                Ok(tx.changed(new.into_session(SessionId::from_store(id))))
            })
            .await
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        if let Some(session) = self.cache.get(id) {
            return Ok(session);
        }
        let epoch = self.cache.epoch();
        let session = self.readers.lookup(|conn| fetch_session(conn, id))?;
        self.cache.offer(session.clone(), epoch);
        Ok(session)
    }

    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts> {
        self.readers.lookup(|conn| {
            query_one(
                conn,
                "SELECT user_id, owner_node FROM sessions WHERE session_id = ?",
                [id.get()],
                |row| {
                    Ok(SessionFacts {
                        user: UserId::from_store(column(row, "user_id")?),
                        owner_node: column(row, "owner_node")?,
                    })
                },
            )?
            .ok_or(Error::SessionNotFound { session_id: id })
        })
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>> {
        let query = query.clone();
        // A user's sessions come from the index by user, in id order.
        let sql = if query.user.is_some() {
            select_session!(
                "WHERE s.user_id = ?1 AND (?2 IS NULL OR s.kind = ?2) \
                 AND (?3 IS NULL OR s.state = ?3) AND s.session_id > ?4 \
                 ORDER BY s.session_id LIMIT ?5"
            )
        } else {
            select_session!(
                "WHERE ?1 IS NULL AND (?2 IS NULL OR s.kind = ?2) \
                 AND (?3 IS NULL OR s.state = ?3) AND s.session_id > ?4 \
                 ORDER BY s.session_id LIMIT ?5"
            )
        };
        self.readers
            .scan(move |conn| {
                query_all(
                    conn,
                    sql,
                    params![
                        query.user.as_ref().map(UserId::as_str),
                        query.kind.map(kind_name),
                        query.state.map(state_name),
                        query.after.map_or(0, SessionId::get),
                        i64::from(query.limit),
                    ],
                    session_from_row,
                )
            })
            .await
    }

    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.writer
            .write(move |tx| {
                let session = live_session_in(tx, id)?;
                record_activity(tx.conn, id, now)?;
                Ok(tx.changed(Session {
                    last_activity_time: session.last_activity_time.max(now),
                    ..session
                }))
            })
            .await
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                if session.kind != SessionKind::Clientless {
                    return Err(Error::SessionNotClientless { session_id: id });
                }
                if session.state != SessionState::Open {
                    return Ok(session);
                }
                execute(
                    tx.conn,
                    "UPDATE sessions SET state = 'closing', \
                     last_activity_time = MAX(last_activity_time, ?) WHERE session_id = ?",
                    params![now.unix_micros(), id.get()],
                )?;
                Ok(tx.changed(Session {
                    state: SessionState::Closing,
                    last_activity_time: session.last_activity_time.max(now),
                    ..session
                }))
            })
            .await
    }

    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                end(tx, session, reason, now)
            })
            .await
    }

    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                if session.kind != SessionKind::Clientless {
                    return Err(Error::SessionNotClientless { session_id: id });
                }
                end(tx, session, reason, now)
            })
            .await
    }

    async fn recover_node(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Recovered> {
        let node = node.to_owned();
        self.writer
            .write(move |tx| recover(tx, &node, reason, now))
            .await
    }

    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        let (node, endpoint) = (node.to_owned(), endpoint.to_owned());
        self.writer
            .write(move |tx| {
                let known = query_one(
                    tx.conn,
                    "SELECT 1 AS known FROM nodes WHERE node_id = ?",
                    [&node],
                    |_| Ok(()),
                )?
                .is_some();
                execute(
                    tx.conn,
                    "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES (?, ?, ?) \
                     ON CONFLICT (node_id) DO UPDATE SET endpoint = excluded.endpoint, \
                     lease_expires = excluded.lease_expires",
                    params![node, endpoint, expires.unix_micros()],
                )?;
                Ok(known)
            })
            .await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        self.readers.lookup(|conn| {
            query_one(
                conn,
                "SELECT endpoint FROM nodes WHERE node_id = ? AND lease_expires > ?",
                params![node, now.unix_micros()],
                |row| column(row, "endpoint"),
            )
        })
    }

    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>> {
        let taker = taker.to_owned();
        self.writer
            .write(move |tx| {
                let lost: Vec<String> = query_all(
                    tx.conn,
                    "SELECT node_id FROM nodes WHERE lease_expires <= ? AND node_id <> ?",
                    params![now.unix_micros(), taker],
                    |row| column(row, "node_id"),
                )?;
                let mut taken = Vec::with_capacity(lost.len());
                for node in lost {
                    let recovered = recover(tx, &node, reason, now)?;
                    forget_node(tx.conn, &node)?;
                    taken.push((node, recovered));
                }
                Ok(taken)
            })
            .await
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.writer
            .write(move |tx| forget_node(tx.conn, &node))
            .await
    }

    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>> {
        let node = node.to_owned();
        self.readers
            .scan(move |conn| {
                query_all(
                    conn,
                    "SELECT session_id FROM sessions \
                     WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended'",
                    [node],
                    |row| column(row, "session_id").map(SessionId::from_store),
                )
            })
            .await
    }

    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>> {
        let (node, expiry) = (node.to_owned(), *expiry);
        self.readers
            .scan(move |conn| {
                query_all(
                    conn,
                    EXPIRED_SESSIONS,
                    params![
                        node,
                        expiry.started_before.map(Timestamp::unix_micros),
                        expiry.idle_before.map(Timestamp::unix_micros),
                    ],
                    |row| column(row, "session_id").map(SessionId::from_store),
                )
            })
            .await
    }

    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
    ) -> Result<Option<EndReason>> {
        let expiry = *expiry;
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                if session.kind != SessionKind::Clientless || session.state != SessionState::Open {
                    return Ok(None);
                }
                let too_old = expiry
                    .started_before
                    .is_some_and(|limit| session.start_time < limit);
                let idle = match expiry.idle_before {
                    Some(limit) if session.last_activity_time < limit => {
                        let running = query_one(
                            tx.conn,
                            "SELECT 1 AS running FROM module_runs \
                             WHERE session_id = ? AND state = 'running' LIMIT 1",
                            [id.get()],
                            |_| Ok(()),
                        )?;
                        running.is_none()
                    }
                    _ => false,
                };
                let reason = if too_old {
                    EndReason::MaxLifetime
                } else if idle {
                    EndReason::IdleTimeout
                } else {
                    return Ok(None);
                };
                execute(
                    tx.conn,
                    "UPDATE sessions SET state = 'closing' WHERE session_id = ?",
                    [id.get()],
                )?;
                tx.changed(Session {
                    state: SessionState::Closing,
                    ..session
                });
                Ok(Some(reason))
            })
            .await
    }

    async fn start_run(
        &self,
        session_id: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<StartedRun> {
        let parameters = serde_json::to_string(parameters)
            .map_err(|e| Error::Internal(format!("encoding parameters: {e}")))?;
        let module = module.clone();
        self.writer
            .write(move |tx| {
                let session = session_in(tx, session_id)?;
                match (session.kind, session.state) {
                    (SessionKind::Interactive, _) => {
                        return Err(Error::SessionNotClientless { session_id });
                    }
                    (_, SessionState::Closing) => return Err(Error::SessionClosing { session_id }),
                    (_, SessionState::Ended) => return Err(Error::SessionEnded { session_id }),
                    (SessionKind::Clientless, SessionState::Open) => {}
                }
                let run_id: i64 = insert(
                    tx.conn,
                    "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, \
                     state, start_time) VALUES (?, ?, ?, ?, 'running', ?)",
                    params![
                        session_id.get(),
                        module.as_str(),
                        session.effective_user.as_str(),
                        parameters,
                        now.unix_micros(),
                    ],
                )?;
                record_activity(tx.conn, session_id, now)?;
                // Both records as just written, without reading them back.
                let run = ModuleRun {
                    id: RunId::from_store(run_id),
                    session_id,
                    module_id: module,
                    acting_user: session.effective_user.clone(),
                    start_time: now,
                    end_time: None,
                    outcome: None,
                };
                let session = tx.changed(Session {
                    last_activity_time: session.last_activity_time.max(now),
                    ..session
                });
                Ok(StartedRun { run, session })
            })
            .await
    }

    async fn finish_run(
        &self,
        run_id: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun> {
        let state = run_state_name(outcome);
        let (value, failure) = match outcome {
            RunOutcome::Succeeded(value) => (Some(value.to_string()), None),
            RunOutcome::Failed(failure) | RunOutcome::Cancelled(failure) => {
                (None, Some(failure.clone()))
            }
        };
        self.writer
            .write(move |tx| {
                let updated = execute(
                    tx.conn,
                    "UPDATE module_runs SET state = ?, end_time = ?, value = ?, failure_kind = ?, \
                     failure_message = ?, exit_code = ?, signal = ?, stderr_tail = ? \
                     WHERE run_id = ? AND state = 'running'",
                    params![
                        state,
                        now.unix_micros(),
                        value,
                        failure.as_ref().map(|f| failure_kind_name(f.kind)),
                        failure.as_ref().map(|f| f.message.as_str()),
                        failure.as_ref().and_then(|f| f.exit_code),
                        failure.as_ref().and_then(|f| f.signal),
                        failure.as_ref().map(|f| f.stderr_tail.as_str()),
                        run_id.get(),
                    ],
                )?;
                let run = fetch_run(tx.conn, run_id)?;
                if updated > 0 {
                    let session = session_in(tx, run.session_id)?;
                    record_activity(tx.conn, run.session_id, now)?;
                    tx.changed(Session {
                        last_activity_time: session.last_activity_time.max(now),
                        ..session
                    });
                }
                Ok(run)
            })
            .await
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        self.readers.lookup(|conn| fetch_run(conn, run_id))
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        self.readers.lookup(|conn| {
            let run = query_one(
                conn,
                select_run!("WHERE session_id = ? AND module_id = ? ORDER BY run_id DESC LIMIT 1"),
                params![session_id.get(), module.as_str()],
                run_from_row,
            )?;
            match run {
                Some(run) => Ok(run),
                None => {
                    // Tell an unknown session from a module never opened in it.
                    fetch_session(conn, session_id)?;
                    Err(Error::ModuleNotOpened {
                        session_id,
                        module_id: module.clone(),
                    })
                }
            }
        })
    }

    async fn user_context(&self, id: SessionId) -> Result<UserContext> {
        let session = self.session(id).await?;
        if session.state == SessionState::Ended {
            return Err(Error::SessionEnded { session_id: id });
        }
        Ok(UserContext {
            user: session.effective_user,
            session_user: session.user,
            depth: session.user_context_depth,
        })
    }

    async fn set_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserId> {
        self.writer
            .write(move |tx| {
                let session = live_session_in(tx, id)?;
                let depth = session.user_context_depth;
                let previous = session.effective_user.clone();
                set_effective_user(tx, session, user, depth, now)?;
                Ok(previous)
            })
            .await
    }

    async fn push_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<PushedScope> {
        self.writer
            .write(move |tx| {
                let session = live_session_in(tx, id)?;
                let depth = session.user_context_depth + 1;
                let scope_id: i64 = insert(
                    tx.conn,
                    "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
                     pushed_at) VALUES (?, ?, ?, ?, ?)",
                    params![
                        id.get(),
                        i64::from(depth),
                        user.as_str(),
                        session.effective_user.as_str(),
                        now.unix_micros(),
                    ],
                )?;
                let previous_user = session.effective_user.clone();
                set_effective_user(tx, session, user, depth, now)?;
                Ok(PushedScope {
                    scope_id: ScopeId::from_store(scope_id),
                    previous_user,
                    depth,
                })
            })
            .await
    }

    async fn pop_user_context(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<PoppedScope> {
        self.writer
            .write(move |tx| {
                let session = live_session_in(tx, id)?;
                let innermost = query_one(
                    tx.conn,
                    "SELECT scope_id, previous_user FROM user_context_scopes \
                     WHERE session_id = ? ORDER BY depth DESC LIMIT 1",
                    [id.get()],
                    |row| {
                        Ok((
                            ScopeId::from_store(column(row, "scope_id")?),
                            UserId::from_store(column(row, "previous_user")?),
                        ))
                    },
                )?;
                let Some((innermost, restored)) = innermost else {
                    return Err(Error::ScopeNotFound {
                        session_id: id,
                        scope_id: scope,
                    });
                };
                if innermost != scope {
                    let open = query_one(
                        tx.conn,
                        "SELECT 1 AS open FROM user_context_scopes \
                         WHERE session_id = ? AND scope_id = ?",
                        [id.get(), scope.get()],
                        |_| Ok(()),
                    )?;
                    return Err(match open {
                        Some(()) => Error::ScopeNotInnermost {
                            session_id: id,
                            scope_id: scope,
                            innermost,
                        },
                        None => Error::ScopeNotFound {
                            session_id: id,
                            scope_id: scope,
                        },
                    });
                }
                execute(
                    tx.conn,
                    "DELETE FROM user_context_scopes WHERE scope_id = ?",
                    [scope.get()],
                )?;
                let depth = session.user_context_depth - 1;
                set_effective_user(tx, session, restored.clone(), depth, now)?;
                Ok(PoppedScope {
                    user: restored,
                    depth,
                })
            })
            .await
    }
}

/// Reads one session on `conn`.
fn fetch_session(conn: &Connection, id: SessionId) -> Result<Session> {
    query_one(
        conn,
        select_session!("WHERE s.session_id = ?"),
        [id.get()],
        session_from_row,
    )?
    .ok_or(Error::SessionNotFound { session_id: id })
}

/// Session `id` as the writer's transaction sees it: from memory when the
/// batch or the cache knows it, else read (and kept for the batch).
fn session_in(tx: &mut Transaction<'_>, id: SessionId) -> Result<Session> {
    if let Some(session) = tx.known_session(id) {
        return Ok(session);
    }
    let session = fetch_session(tx.conn, id)?;
    tx.read(session.clone());
    Ok(session)
}

/// Ends `session` (as read in this transaction) unless it already ended;
/// returns it as it is now.
fn end(
    tx: &mut Transaction<'_>,
    session: Session,
    reason: EndReason,
    now: Timestamp,
) -> Result<Session> {
    if session.state == SessionState::Ended {
        return Ok(session);
    }
    execute(
        tx.conn,
        "UPDATE sessions SET state = 'ended', end_time = ?, end_reason = ? WHERE session_id = ?",
        params![now.unix_micros(), reason_name(reason), session.id.get()],
    )?;
    Ok(tx.changed(Session {
        state: SessionState::Ended,
        end_time: Some(now),
        end_reason: Some(reason),
        ..session
    }))
}

/// A session whose user context may change, as the writer's transaction
/// sees it: one that has not ended.
fn live_session_in(tx: &mut Transaction<'_>, id: SessionId) -> Result<Session> {
    let session = session_in(tx, id)?;
    if session.state == SessionState::Ended {
        return Err(Error::SessionEnded { session_id: id });
    }
    Ok(session)
}

/// Crash recovery of `node` on `conn`: its running runs fail (interrupted)
/// and its clientless sessions that have not ended end with `reason`.
fn recover(
    tx: &mut Transaction<'_>,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    let runs = execute(
        tx.conn,
        "UPDATE module_runs SET state = 'failed', end_time = ?1, failure_kind = 'interrupted', \
         failure_message = 'the server stopped while the module was running' \
         WHERE state = 'running' AND session_id IN \
         (SELECT session_id FROM sessions WHERE owner_node = ?2)",
        params![now.unix_micros(), node],
    )?;
    let sessions = execute(
        tx.conn,
        "UPDATE sessions SET state = 'ended', end_time = ?, end_reason = ? \
         WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended'",
        params![now.unix_micros(), reason_name(reason), node],
    )?;
    if sessions > 0 {
        tx.changed_all();
    }
    Ok(Recovered {
        sessions: sessions as u64,
        runs: runs as u64,
    })
}

fn forget_node(conn: &Connection, node: &str) -> Result<()> {
    execute(conn, "DELETE FROM nodes WHERE node_id = ?", [node]).map(drop)
}

/// Reads one run on `conn`.
fn fetch_run(conn: &Connection, id: RunId) -> Result<ModuleRun> {
    query_one(
        conn,
        select_run!("WHERE run_id = ?"),
        [id.get()],
        run_from_row,
    )?
    .ok_or_else(|| Error::Internal(format!("run {id} vanished")))
}

fn record_activity(conn: &Connection, id: SessionId, now: Timestamp) -> Result<()> {
    execute(
        conn,
        "UPDATE sessions SET last_activity_time = MAX(last_activity_time, ?) \
         WHERE session_id = ?",
        params![now.unix_micros(), id.get()],
    )
    .map(drop)
}

/// Changes a session's user context: its effective user is now `user`,
/// at user-context depth `depth` (the scope pushed or popped is the
/// caller's); returns its record.
fn set_effective_user(
    tx: &mut Transaction<'_>,
    session: Session,
    user: UserId,
    depth: u32,
    now: Timestamp,
) -> Result<Session> {
    execute(
        tx.conn,
        "UPDATE sessions SET effective_user = ?, \
         last_activity_time = MAX(last_activity_time, ?) WHERE session_id = ?",
        params![user.as_str(), now.unix_micros(), session.id.get()],
    )?;
    Ok(tx.changed(Session {
        effective_user: user,
        user_context_depth: depth,
        last_activity_time: session.last_activity_time.max(now),
        ..session
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as the first three migrations left it, with an open
    /// session (a scope pushed, a run running), an ended one, and a third
    /// deleted so that the id counter is ahead of the rows.
    async fn database_before_migration_4(path: &Path) {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.migrations = migrator.migrations[..3].to_vec().into();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        migrator.run(&mut connection).await.unwrap();
        connection.close().await.unwrap();
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
               last_activity_time, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000001', 'R41', 'clientless', 'open', \
               1, 1, 'R42', 'a'); \
             INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, end_time, \
               last_activity_time, end_reason, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000002', 'R41', 'interactive', 'ended', \
               1, 2, 2, 'idle_timeout', 'R41', 'a'); \
             INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
               last_activity_time, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000003', 'R43', 'clientless', 'open', \
               1, 1, 'R43', 'a'); \
             DELETE FROM sessions WHERE session_id = 3; \
             INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
               pushed_at) VALUES (1, 1, 'R42', 'R41', 1); \
             INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
               start_time) VALUES (1, '100000', 'R42', '{}', 'running', 1);",
        )
        .unwrap();
    }

    /// A new clientless session of `R41`, who may have two open, at `now`.
    fn limited_session_of_r41(now: i64) -> NewSession {
        NewSession {
            uuid: uuid::Uuid::now_v7(),
            user: UserId::from_store("R41".to_owned()),
            kind: SessionKind::Clientless,
            client: crate::model::ClientDescription::default(),
            now: Timestamp::from_unix_micros(now),
            owner_node: "a".to_owned(),
            max_open_per_user: Some(2),
        }
    }

    #[tokio::test]
    async fn the_reapers_query_reads_only_sessions_that_have_not_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let conn = Connection::open(&path).unwrap();
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EXPIRED_SESSIONS}"))
            .unwrap();
        let steps: Vec<String> = plan
            .query_map(params!["a", 1, 1], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(
            steps
                .iter()
                .any(|step| step.contains("USING INDEX sessions_unended_by_owner")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN s")),
            "{steps:?}"
        );
        drop(store);
    }

    #[tokio::test]
    async fn migration_4_keeps_every_record_and_id_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        database_before_migration_4(&path).await;
        let store = SqliteStore::open(&path).await.unwrap();

        let open = store.session(SessionId::from_store(1)).await.unwrap();
        assert_eq!(open.state, SessionState::Open);
        assert_eq!(open.effective_user.as_str(), "R42");
        assert_eq!(open.user_context_depth, 1);
        let ended = store.session(SessionId::from_store(2)).await.unwrap();
        assert_eq!(ended.end_reason, Some(EndReason::IdleTimeout));
        let run = store.run(RunId::from_store(1)).await.unwrap();
        assert_eq!((run.session_id, run.outcome), (open.id, None));

        let listed = store
            .list_sessions(&SessionQuery {
                user: Some(UserId::from_store("R41".to_owned())),
                kind: None,
                state: None,
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(
            listed.iter().map(|s| s.id.get()).collect::<Vec<_>>(),
            [1, 2]
        );

        // The deleted session's id is not handed out again.
        let created = store
            .create_session(limited_session_of_r41(3))
            .await
            .unwrap();
        assert_eq!(created.id.get(), 4);
        // The per-user limit still counts the user's open sessions.
        let refused = store.create_session(limited_session_of_r41(4)).await;
        assert!(matches!(
            refused,
            Err(Error::TooManySessions { limit: 2, .. })
        ));
    }

    #[tokio::test]
    async fn checks_and_foreign_keys_still_hold_after_migration_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        database_before_migration_4(&path).await;
        drop(SqliteStore::open(&path).await.unwrap());
        let conn = connect(&path, Role::Writer).unwrap();
        let bad_state = conn.execute(
            "UPDATE sessions SET state = 'gone' WHERE session_id = 1",
            [],
        );
        assert!(bad_state.is_err(), "{bad_state:?}");
        let bad_run = conn.execute(
            "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
             start_time) VALUES (99, 'm', 'R41', '{}', 'running', 1)",
            [],
        );
        assert!(bad_run.is_err(), "{bad_run:?}");
        let problems: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(problems, 0);
    }
}
