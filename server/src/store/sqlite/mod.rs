//! The embedded SQLite store: one file in WAL mode, `synchronous = FULL`.
//!
//! Writes go through a pool of exactly one connection and each runs in a
//! `BEGIN IMMEDIATE` transaction, so concurrent writers queue instead of
//! failing with "database is locked"; reads use a separate pool of
//! query-only connections that WAL lets run beside the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::{NewSession, SessionQuery, Store};
use crate::error::{Error, Result};
use crate::model::{
    ClientDescription, EndReason, PoppedScope, PushedScope, ScopeId, Session, SessionId,
    SessionKind, SessionState, Timestamp, UserContext, UserId,
};

/// How many read connections run beside the writer.
const READERS: u32 = 4;

/// The columns of a [`Session`], followed by the rest of a query.
macro_rules! select_session {
    ($rest:literal) => {
        concat!(
            "SELECT s.session_id, s.session_uuid, s.user_id, s.kind, s.state, s.start_time, ",
            "s.end_time, s.last_activity_time, s.end_reason, s.effective_user, s.client, ",
            "(SELECT COUNT(*) FROM user_context_scopes c WHERE c.session_id = s.session_id) ",
            "AS depth FROM sessions s ",
            $rest
        )
    };
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The single write connection: SQLite allows one writer at a time, and
    /// queueing here beats retrying on SQLITE_BUSY.
    writer: SqlitePool,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(store_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(store_error)?;
        Ok(Self { writer, readers })
    }

    /// Starts a write transaction that holds the write lock from its start.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        let mut tx = self.begin_write().await?;
        if let Some(limit) = new.max_open_per_user {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND state <> 'ended'",
            )
            .bind(new.user.as_str())
            .fetch_one(&mut *tx)
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
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let session = fetch_session(&mut tx, SessionId::from_store(id)).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session)
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        let mut conn = self.readers.acquire().await.map_err(store_error)?;
        fetch_session(&mut conn, id).await
    }

    async fn session_user(&self, id: SessionId) -> Result<UserId> {
        let user: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM sessions WHERE session_id = ?")
                .bind(id.get())
                .fetch_optional(&self.readers)
                .await
                .map_err(store_error)?;
        user.map(UserId::from_store)
            .ok_or(Error::SessionNotFound { session_id: id })
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
        let mut tx = self.begin_write().await?;
        let session = fetch_session(&mut tx, id).await?;
        if session.state == SessionState::Ended {
            return Err(Error::SessionEnded { session_id: id });
        }
        record_activity(&mut tx, id, now).await?;
        let session = fetch_session(&mut tx, id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session)
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        let mut tx = self.begin_write().await?;
        let session = fetch_session(&mut tx, id).await?;
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
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let session = fetch_session(&mut tx, id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session)
    }

    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        let mut tx = self.begin_write().await?;
        let session = fetch_session(&mut tx, id).await?;
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
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let session = fetch_session(&mut tx, id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session)
    }

    async fn end_clientless_sessions_of(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "UPDATE sessions SET state = 'ended', end_time = ?, end_reason = ? \
             WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended'",
        )
        .bind(now.unix_micros())
        .bind(reason_name(reason))
        .bind(node)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected();
        tx.commit().await.map_err(store_error)?;
        Ok(ended)
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
        let mut tx = self.begin_write().await?;
        let session = fetch_live_session(&mut tx, id).await?;
        set_effective_user(&mut tx, id, &user, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session.effective_user)
    }

    async fn push_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<PushedScope> {
        let mut tx = self.begin_write().await?;
        let session = fetch_live_session(&mut tx, id).await?;
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
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        set_effective_user(&mut tx, id, &user, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(PushedScope {
            scope_id: ScopeId::from_store(scope_id),
            previous_user: session.effective_user,
            depth,
        })
    }

    async fn pop_user_context(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<PoppedScope> {
        let mut tx = self.begin_write().await?;
        let session = fetch_live_session(&mut tx, id).await?;
        let innermost = sqlx::query(
            "SELECT scope_id, previous_user FROM user_context_scopes \
             WHERE session_id = ? ORDER BY depth DESC LIMIT 1",
        )
        .bind(id.get())
        .fetch_optional(&mut *tx)
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
            .fetch_optional(&mut *tx)
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
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        set_effective_user(&mut tx, id, &restored, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(PoppedScope {
            user: restored,
            depth: session.user_context_depth - 1,
        })
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

fn session_from_row(row: &SqliteRow) -> Result<Session> {
    let id: i64 = row.try_get("session_id").map_err(store_error)?;
    let uuid: String = row.try_get("session_uuid").map_err(store_error)?;
    let kind: String = row.try_get("kind").map_err(store_error)?;
    let state: String = row.try_get("state").map_err(store_error)?;
    let end_reason: Option<String> = row.try_get("end_reason").map_err(store_error)?;
    let depth: i64 = row.try_get("depth").map_err(store_error)?;
    Ok(Session {
        id: SessionId::from_store(id),
        uuid: Uuid::from_str(&uuid).map_err(|e| corrupt("session_uuid", e))?,
        user: UserId::from_store(row.try_get("user_id").map_err(store_error)?),
        kind: parse_kind(&kind)?,
        state: parse_state(&state)?,
        start_time: timestamp(row, "start_time")?,
        end_time: row
            .try_get::<Option<i64>, _>("end_time")
            .map_err(store_error)?
            .map(Timestamp::from_unix_micros),
        last_activity_time: timestamp(row, "last_activity_time")?,
        end_reason: end_reason.as_deref().map(parse_reason).transpose()?,
        effective_user: UserId::from_store(row.try_get("effective_user").map_err(store_error)?),
        client: ClientDescription::from_store(row.try_get("client").map_err(store_error)?),
        user_context_depth: u32::try_from(depth).map_err(|e| corrupt("depth", e))?,
    })
}

fn timestamp(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_micros(
        row.try_get(column).map_err(store_error)?,
    ))
}

fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Interactive => "interactive",
        SessionKind::Clientless => "clientless",
    }
}

fn parse_kind(name: &str) -> Result<SessionKind> {
    match name {
        "interactive" => Ok(SessionKind::Interactive),
        "clientless" => Ok(SessionKind::Clientless),
        other => Err(corrupt("kind", other)),
    }
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Open => "open",
        SessionState::Closing => "closing",
        SessionState::Ended => "ended",
    }
}

fn parse_state(name: &str) -> Result<SessionState> {
    match name {
        "open" => Ok(SessionState::Open),
        "closing" => Ok(SessionState::Closing),
        "ended" => Ok(SessionState::Ended),
        other => Err(corrupt("state", other)),
    }
}

fn reason_name(reason: EndReason) -> &'static str {
    match reason {
        EndReason::ClosedByClient => "closed_by_client",
        EndReason::IdleTimeout => "idle_timeout",
        EndReason::MaxLifetime => "max_lifetime",
        EndReason::ServerShutdown => "server_shutdown",
        EndReason::ServerRestart => "server_restart",
    }
}

fn parse_reason(name: &str) -> Result<EndReason> {
    match name {
        "closed_by_client" => Ok(EndReason::ClosedByClient),
        "idle_timeout" => Ok(EndReason::IdleTimeout),
        "max_lifetime" => Ok(EndReason::MaxLifetime),
        "server_shutdown" => Ok(EndReason::ServerShutdown),
        "server_restart" => Ok(EndReason::ServerRestart),
        other => Err(corrupt("end_reason", other)),
    }
}

/// A value in the database that no version of sessiond writes.
fn corrupt(column: &str, value: impl std::fmt::Display) -> Error {
    Error::Internal(format!(
        "unexpected {column} in the sessions table: {value}"
    ))
}

/// Classifies a database error: trouble reaching or writing the database
/// is [`Error::StoreUnavailable`] (the caller may retry); anything else
/// means the schema and the code disagree, a bug.
fn store_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Database(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Configuration(_) => Error::StoreUnavailable(Box::new(error)),
        other => Error::Internal(other.to_string()),
    }
}
