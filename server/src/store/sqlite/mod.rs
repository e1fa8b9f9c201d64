//! The embedded SQLite store: one file in WAL mode, `synchronous = FULL`.
//!
//! Writes go through one connection owned by a writer task that commits
//! concurrent writes together ([`writer`]: group commit, one fsync per
//! batch, each write acknowledged only after its batch committed), in
//! `BEGIN IMMEDIATE` transactions, so concurrent writers queue instead of
//! failing with "database is locked"; reads use a separate pool of
//! query-only connections that WAL lets run beside the writer.

mod codec;
mod writer;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqliteConnection};

use self::writer::Writer;

use self::codec::{
    failure_kind_name, kind_name, reason_name, run_from_row, run_state_name, session_from_row,
    state_name, store_error,
};
use super::{Expiry, NewSession, Recovered, SessionQuery, StartedRun, Store};
use crate::error::{Error, Result};
use crate::model::{
    EndReason, ModuleId, ModuleRun, PoppedScope, PushedScope, RunId, RunOutcome, ScopeId, Session,
    SessionFacts, SessionId, SessionKind, SessionState, Timestamp, UserContext, UserId,
};

/// How many read connections run beside the writer.
const READERS: u32 = 4;

/// The columns of a [`Session`], followed by the rest of a query.
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

/// The columns of a [`ModuleRun`], followed by the rest of a query.
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

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The single writer, committing concurrent writes together: SQLite
    /// allows one writer at a time, and queueing beats retrying on
    /// SQLITE_BUSY.
    writer: Writer,
    /// Query-only connections for reads, which WAL runs concurrently.
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `path`.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the file cannot be opened or
    /// migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let mut connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(store_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut connection)
            .await
            .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
        let writer = Writer::start(connection);
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(store_error)?;
        Ok(Self { writer, readers })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(limit) = new.max_open_per_user {
                        let open: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND state <> 'ended'",
                        )
                        .bind(new.user.as_str())
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(store_error)?;
                        if open >= i64::from(limit) {
                            return Err(Error::TooManySessions {
                                user: new.user.into_string(),
                                limit,
                            });
                        }
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
                     last_activity_time, effective_user, client, owner_node) \
                     VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?) RETURNING session_id",
                    )
                    .bind(new.uuid.to_string())
                    .bind(new.user.as_str())
                    .bind(kind_name(new.kind))
                    .bind(new.now.unix_micros())
                    .bind(new.now.unix_micros())
                    .bind(new.user.as_str())
                    .bind(new.client.as_str())
                    .bind(&new.owner_node)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    let session = fetch_session(&mut *conn, SessionId::from_store(id)).await?;
                    Ok(session)
                })
            })
            .await
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        let mut conn = self.readers.acquire().await.map_err(store_error)?;
        fetch_session(&mut conn, id).await
    }

    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts> {
        let facts: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, owner_node FROM sessions WHERE session_id = ?")
                .bind(id.get())
                .fetch_optional(&self.readers)
                .await
                .map_err(store_error)?;
        let (user, owner_node) = facts.ok_or(Error::SessionNotFound { session_id: id })?;
        Ok(SessionFacts {
            user: UserId::from_store(user),
            owner_node,
        })
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>> {
        let rows = sqlx::query(select_session!(
            "WHERE (?1 IS NULL OR s.user_id = ?1) AND (?2 IS NULL OR s.kind = ?2) \
             AND (?3 IS NULL OR s.state = ?3) AND s.session_id > ?4 \
             ORDER BY s.session_id LIMIT ?5"
        ))
        .bind(query.user.as_ref().map(UserId::as_str))
        .bind(query.kind.map(kind_name))
        .bind(query.state.map(state_name))
        .bind(query.after.map_or(0, SessionId::get))
        .bind(i64::from(query.limit))
        .fetch_all(&self.readers)
        .await
        .map_err(store_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let session = fetch_session(&mut *conn, id).await?;
                    if session.state == SessionState::Ended {
                        return Err(Error::SessionEnded { session_id: id });
                    }
                    record_activity(&mut *conn, id, now).await?;
                    let session = fetch_session(&mut *conn, id).await?;
                    Ok(session)
                })
            })
            .await
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let session = fetch_session(&mut *conn, id).await?;
                    if session.kind != SessionKind::Clientless {
                        return Err(Error::SessionNotClientless { session_id: id });
                    }
                    if session.state != SessionState::Open {
                        return Ok(session);
                    }
                    sqlx::query(
                        "UPDATE sessions SET state = 'closing', \
                     last_activity_time = MAX(last_activity_time, ?) WHERE session_id = ?",
                    )
                    .bind(now.unix_micros())
                    .bind(id.get())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    let session = fetch_session(&mut *conn, id).await?;
                    Ok(session)
                })
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
            .write(move |conn| {
                Box::pin(async move {
                    let session = fetch_session(&mut *conn, id).await?;
                    if session.state == SessionState::Ended {
                        return Ok(session);
                    }
                    sqlx::query(
                        "UPDATE sessions SET state = 'ended', end_time = ?, end_reason = ? \
                     WHERE session_id = ?",
                    )
                    .bind(now.unix_micros())
                    .bind(reason_name(reason))
                    .bind(id.get())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    let session = fetch_session(&mut *conn, id).await?;
                    Ok(session)
                })
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
            .write(move |conn| Box::pin(async move { recover(conn, &node, reason, now).await }))
            .await
    }

    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<()> {
        let (node, endpoint) = (node.to_owned(), endpoint.to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES (?, ?, ?) \
                         ON CONFLICT (node_id) DO UPDATE SET endpoint = excluded.endpoint, \
                         lease_expires = excluded.lease_expires",
                    )
                    .bind(node)
                    .bind(endpoint)
                    .bind(expires.unix_micros())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                })
            })
            .await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT endpoint FROM nodes WHERE node_id = ? AND lease_expires > ?")
            .bind(node)
            .bind(now.unix_micros())
            .fetch_optional(&self.readers)
            .await
            .map_err(store_error)
    }

    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>> {
        let taker = taker.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let lost: Vec<String> = sqlx::query_scalar(
                        "SELECT node_id FROM nodes WHERE lease_expires <= ? AND node_id <> ?",
                    )
                    .bind(now.unix_micros())
                    .bind(taker)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    let mut taken = Vec::with_capacity(lost.len());
                    for node in lost {
                        let recovered = recover(conn, &node, reason, now).await?;
                        forget_node(conn, &node).await?;
                        taken.push((node, recovered));
                    }
                    Ok(taken)
                })
            })
            .await
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.writer
            .write(move |conn| Box::pin(async move { forget_node(conn, &node).await }))
            .await
    }

    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT session_id FROM sessions \
             WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended'",
        )
        .bind(node)
        .fetch_all(&self.readers)
        .await
        .map_err(store_error)?;
        Ok(ids.into_iter().map(SessionId::from_store).collect())
    }

    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT s.session_id FROM sessions s \
             WHERE s.owner_node = ?1 AND s.kind = 'clientless' AND s.state = 'open' \
             AND ((?2 IS NOT NULL AND s.start_time < ?2) \
               OR (?3 IS NOT NULL AND s.last_activity_time < ?3 AND NOT EXISTS \
                   (SELECT 1 FROM module_runs r \
                    WHERE r.session_id = s.session_id AND r.state = 'running')))",
        )
        .bind(node)
        .bind(expiry.started_before.map(Timestamp::unix_micros))
        .bind(expiry.idle_before.map(Timestamp::unix_micros))
        .fetch_all(&self.readers)
        .await
        .map_err(store_error)?;
        Ok(ids.into_iter().map(SessionId::from_store).collect())
    }

    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
    ) -> Result<Option<EndReason>> {
        let expiry = *expiry;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                let session = fetch_session(&mut *conn, id).await?;
                if session.kind != SessionKind::Clientless || session.state != SessionState::Open {
                    return Ok(None);
                }
                let too_old = expiry
                    .started_before
                    .is_some_and(|limit| session.start_time < limit);
                let idle = match expiry.idle_before {
                    Some(limit) if session.last_activity_time < limit => {
                        let running: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM module_runs WHERE session_id = ? AND state = 'running'",
                        )
                        .bind(id.get())
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(store_error)?;
                        running == 0
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
                sqlx::query("UPDATE sessions SET state = 'closing' WHERE session_id = ?")
                    .bind(id.get())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
                Ok(Some(reason))
                })
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
            .write(move |conn| {
                Box::pin(async move {
                let session = fetch_session(&mut *conn, session_id).await?;
                match (session.kind, session.state) {
                    (SessionKind::Interactive, _) => {
                        return Err(Error::SessionNotClientless { session_id });
                    }
                    (_, SessionState::Closing) => return Err(Error::SessionClosing { session_id }),
                    (_, SessionState::Ended) => return Err(Error::SessionEnded { session_id }),
                    (SessionKind::Clientless, SessionState::Open) => {}
                }
                let run_id: i64 = sqlx::query_scalar(
                    "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
                     start_time) VALUES (?, ?, ?, ?, 'running', ?) RETURNING run_id",
                )
                .bind(session_id.get())
                .bind(module.as_str())
                .bind(session.effective_user.as_str())
                .bind(parameters)
                .bind(now.unix_micros())
                .fetch_one(&mut *conn)
                .await
                .map_err(store_error)?;
                record_activity(&mut *conn, session_id, now).await?;
                let run = fetch_run(&mut *conn, RunId::from_store(run_id)).await?;
                let session = fetch_session(&mut *conn, session_id).await?;
                Ok(StartedRun { run, session })
                })
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
            .write(move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(
                    "UPDATE module_runs SET state = ?, end_time = ?, value = ?, failure_kind = ?, \
                     failure_message = ?, exit_code = ?, signal = ?, stderr_tail = ? \
                     WHERE run_id = ? AND state = 'running'",
                )
                .bind(state)
                .bind(now.unix_micros())
                .bind(value)
                .bind(failure.as_ref().map(|f| failure_kind_name(f.kind)))
                .bind(failure.as_ref().map(|f| f.message.clone()))
                .bind(failure.as_ref().and_then(|f| f.exit_code))
                .bind(failure.as_ref().and_then(|f| f.signal))
                .bind(failure.as_ref().map(|f| f.stderr_tail.clone()))
                .bind(run_id.get())
                .execute(&mut *conn)
                .await
                .map_err(store_error)?
                .rows_affected();
                    let run = fetch_run(&mut *conn, run_id).await?;
                    if updated > 0 {
                        record_activity(&mut *conn, run.session_id, now).await?;
                    }
                    Ok(run)
                })
            })
            .await
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        let mut conn = self.readers.acquire().await.map_err(store_error)?;
        fetch_run(&mut conn, run_id).await
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        let mut conn = self.readers.acquire().await.map_err(store_error)?;
        let row = sqlx::query(select_run!(
            "WHERE session_id = ? AND module_id = ? ORDER BY run_id DESC LIMIT 1"
        ))
        .bind(session_id.get())
        .bind(module.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(store_error)?;
        match row {
            Some(row) => run_from_row(&row),
            None => {
                // Tell an unknown session from a module never opened in it.
                fetch_session(&mut conn, session_id).await?;
                Err(Error::ModuleNotOpened {
                    session_id,
                    module_id: module.clone(),
                })
            }
        }
    }

    async fn user_context(&self, id: SessionId) -> Result<UserContext> {
        let mut conn = self.readers.acquire().await.map_err(store_error)?;
        let session = fetch_session(&mut conn, id).await?;
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
            .write(move |conn| {
                Box::pin(async move {
                    let session = fetch_live_session(&mut *conn, id).await?;
                    set_effective_user(&mut *conn, id, &user, now).await?;
                    Ok(session.effective_user)
                })
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
            .write(move |conn| {
                Box::pin(async move {
                    let session = fetch_live_session(&mut *conn, id).await?;
                    let depth = session.user_context_depth + 1;
                    let scope_id: i64 = sqlx::query_scalar(
                    "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
                     pushed_at) VALUES (?, ?, ?, ?, ?) RETURNING scope_id",
                )
                .bind(id.get())
                .bind(i64::from(depth))
                .bind(user.as_str())
                .bind(session.effective_user.as_str())
                .bind(now.unix_micros())
                .fetch_one(&mut *conn)
                .await
                .map_err(store_error)?;
                    set_effective_user(&mut *conn, id, &user, now).await?;
                    Ok(PushedScope {
                        scope_id: ScopeId::from_store(scope_id),
                        previous_user: session.effective_user,
                        depth,
                    })
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
            .write(move |conn| {
                Box::pin(async move {
                let session = fetch_live_session(&mut *conn, id).await?;
                let innermost = sqlx::query(
                    "SELECT scope_id, previous_user FROM user_context_scopes \
                     WHERE session_id = ? ORDER BY depth DESC LIMIT 1",
                )
                .bind(id.get())
                .fetch_optional(&mut *conn)
                .await
                .map_err(store_error)?;
                let Some(innermost) = innermost else {
                    return Err(Error::ScopeNotFound {
                        session_id: id,
                        scope_id: scope,
                    });
                };
                let innermost_id = ScopeId::from_store(innermost.try_get("scope_id").map_err(store_error)?);
                if innermost_id != scope {
                    let open: Option<i64> = sqlx::query_scalar(
                        "SELECT scope_id FROM user_context_scopes WHERE session_id = ? AND scope_id = ?",
                    )
                    .bind(id.get())
                    .bind(scope.get())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(store_error)?;
                    return Err(match open {
                        Some(_) => Error::ScopeNotInnermost {
                            session_id: id,
                            scope_id: scope,
                            innermost: innermost_id,
                        },
                        None => Error::ScopeNotFound {
                            session_id: id,
                            scope_id: scope,
                        },
                    });
                }
                let restored = UserId::from_store(innermost.try_get("previous_user").map_err(store_error)?);
                sqlx::query("DELETE FROM user_context_scopes WHERE scope_id = ?")
                    .bind(scope.get())
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
                set_effective_user(&mut *conn, id, &restored, now).await?;
                Ok(PoppedScope {
                    user: restored,
                    depth: session.user_context_depth - 1,
                })
                })
            })
            .await
    }
}

/// Reads one session on `conn`.
async fn fetch_session(conn: &mut SqliteConnection, id: SessionId) -> Result<Session> {
    let row = sqlx::query(select_session!("WHERE s.session_id = ?"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or(Error::SessionNotFound { session_id: id })?;
    session_from_row(&row)
}

/// Reads a session whose user context may change: one that has not ended.
async fn fetch_live_session(conn: &mut SqliteConnection, id: SessionId) -> Result<Session> {
    let session = fetch_session(conn, id).await?;
    if session.state == SessionState::Ended {
        return Err(Error::SessionEnded { session_id: id });
    }
    Ok(session)
}

/// Crash recovery of `node` on `conn`: its running runs fail (interrupted)
/// and its clientless sessions that have not ended end with `reason`.
async fn recover(
    conn: &mut SqliteConnection,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    let runs = sqlx::query(
        "UPDATE module_runs SET state = 'failed', end_time = ?1, failure_kind = 'interrupted', \
         failure_message = 'the server stopped while the module was running' \
         WHERE state = 'running' AND session_id IN \
         (SELECT session_id FROM sessions WHERE owner_node = ?2)",
    )
    .bind(now.unix_micros())
    .bind(node)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?
    .rows_affected();
    let sessions = sqlx::query(
        "UPDATE sessions SET state = 'ended', end_time = ?, end_reason = ? \
         WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended'",
    )
    .bind(now.unix_micros())
    .bind(reason_name(reason))
    .bind(node)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?
    .rows_affected();
    Ok(Recovered { sessions, runs })
}

async fn forget_node(conn: &mut SqliteConnection, node: &str) -> Result<()> {
    sqlx::query("DELETE FROM nodes WHERE node_id = ?")
        .bind(node)
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Reads one run on `conn`.
async fn fetch_run(conn: &mut SqliteConnection, id: RunId) -> Result<ModuleRun> {
    let row = sqlx::query(select_run!("WHERE run_id = ?"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or_else(|| Error::Internal(format!("run {id} vanished")))?;
    run_from_row(&row)
}

async fn record_activity(conn: &mut SqliteConnection, id: SessionId, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET last_activity_time = MAX(last_activity_time, ?) \
         WHERE session_id = ?",
    )
    .bind(now.unix_micros())
    .bind(id.get())
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

async fn set_effective_user(
    conn: &mut SqliteConnection,
    id: SessionId,
    user: &UserId,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET effective_user = ?, \
         last_activity_time = MAX(last_activity_time, ?) WHERE session_id = ?",
    )
    .bind(user.as_str())
    .bind(now.unix_micros())
    .bind(id.get())
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}
