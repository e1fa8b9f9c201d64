//! The PostgreSQL store, for several server replicas sharing one database.
//!
//! Same schema meaning and same guarantees as the SQLite store, by other
//! means:
//! - **durable before acknowledged**: every write is one transaction
//!   committed with the server's `synchronous_commit` (on by default; the
//!   store warns at start-up when it is off) before it is answered; opens
//!   and ends that arrive together share one ([`group_commit`]);
//! - **no lost update across processes**: transactions run at READ
//!   COMMITTED and every write method first *locks* what its check depends
//!   on — the session row (`SELECT … FOR UPDATE`) before it checks the
//!   session's state or reads its user-context stack or runs, and a
//!   per-user advisory lock before it counts the user's open sessions —
//!   and only then reads (each later statement sees everything the previous
//!   lock holder committed) and writes;
//! - **no deadlock**: a transaction locks at most sessions (in ascending id
//!   order), and only then their scopes and runs; a batch of opens takes
//!   its users' advisory locks in ascending order too;
//! - **no endless wait**: a statement waits at most 30 s for a lock
//!   (`lock_timeout`), and a connection stalled inside a transaction loses it
//!   after 60 s (`idle_in_transaction_session_timeout`), releasing its locks.
//!
//! Ids come from identity columns, unique across replicas. The schema is
//! migrated (`migrations/postgres`) when the store opens; sqlx's migrator
//! holds an advisory lock, so replicas starting together migrate once.

/// The columns of a [`Session`] (`codec::session_from_row`) of the
/// `sessions` row aliased `s`, for a `SELECT` or a `RETURNING`.
macro_rules! session_columns {
    () => {
        concat!(
            "s.session_id, s.session_uuid::text AS session_uuid, s.user_id, s.kind, ",
            "s.state, s.start_time, s.end_time, s.last_activity_time, s.end_reason, ",
            "s.effective_user, s.client, s.owner_node, s.user_context_depth AS depth"
        )
    };
}

/// The columns of a [`Session`], followed by the rest of a query.
macro_rules! select_session {
    ($rest:literal) => {
        concat!("SELECT ", session_columns!(), " FROM sessions s ", $rest)
    };
}

// After the macros above, which `group_commit` uses too.
mod codec;
mod group_commit;
mod settings;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

pub use self::settings::{PostgresSettings, redact_password};

use self::codec::{
    failure_kind_name, kind_name, reason_name, run_from_row, run_state_name, session_from_row,
    state_name, store_error, text,
};
use self::group_commit::{Batcher, End};
use super::{Expiry, NewSession, Recovered, SessionQuery, StartedRun, Store};
use crate::error::{Error, Result};
use crate::model::{
    EndReason, ModuleId, ModuleRun, PoppedScope, PushedScope, RunId, RunOutcome, ScopeId, Session,
    SessionFacts, SessionId, SessionKind, SessionState, Timestamp, UserContext, UserId,
};

/// The first key of the advisory locks that serialize session creation per
/// user (the second is `hashtext(user)`), so they cannot collide with other
/// applications' advisory locks on the same database ("SESS").
const PER_USER_LOCK_CLASS: i32 = 0x5345_5353;

/// How long a statement waits for a lock (PostgreSQL's `lock_timeout`).
const LOCK_TIMEOUT: &str = "30s";

/// A pooled connection idle for this long is pinged before it is used.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long a connection may sit idle inside a transaction before the
/// server ends it (`idle_in_transaction_session_timeout`); sessiond's own
/// transactions never pause between statements.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    /// The connections; each write transaction holds one for its duration.
    pool: PgPool,
    /// Opens that arrive together, created together.
    opens: Arc<Batcher<NewSession, Result<SessionId>>>,
    /// Ends of sessions (by their clients or ours) that arrive together,
    /// committed together.
    ends: Arc<Batcher<End, Result<Option<Session>>>>,
    /// The URL without its password, for `Debug`.
    redacted_url: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.redacted_url)
            .field("pool", &self.pool)
            .finish()
    }
}

impl PostgresStore {
    /// Connects with default settings to the database at `url`
    /// (`postgres://…` or `postgresql://…`) and migrates it.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the database cannot be reached or
    /// migrated; [`Error::InvalidArgument`] for a URL that does not parse.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(&PostgresSettings::new(url)).await
    }

    /// Connects with `settings` and migrates the database.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the database cannot be reached or
    /// migrated; [`Error::InvalidArgument`] for a URL that does not parse.
    pub async fn connect(settings: &PostgresSettings) -> Result<Self> {
        let options: PgConnectOptions = settings.url.parse().map_err(|e| {
            Error::InvalidArgument(vec![crate::error::FieldViolation::new(
                "database",
                format!("not a PostgreSQL URL: {e}"),
            )])
        })?;
        let options = options.application_name("sessiond").options([
            // A write that waits this long for a row another replica holds
            // fails as unavailable instead of hanging its caller.
            ("lock_timeout", LOCK_TIMEOUT),
            // A replica that stalls inside a transaction (stopped, cut off
            // with its TCP connection still up) releases its locks.
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            ),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // A connection in steady use is not pinged before each use (a
            // round trip per statement); one idle for a while is, so that a
            // server restart or a dropped connection is noticed here rather
            // than by a caller's request.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(store_error)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
        let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&pool)
            .await
            .map_err(store_error)?;
        if synchronous_commit == "off" {
            tracing::warn!(
                synchronous_commit = %synchronous_commit,
                "PostgreSQL acknowledges commits before they are durable; \
                 a crash may lose writes sessiond already acknowledged"
            );
        }
        Ok(Self {
            opens: Arc::new(Batcher::start({
                let pool = pool.clone();
                move |batch| group_commit::create_batch(pool.clone(), batch)
            })),
            ends: Arc::new(Batcher::start({
                let pool = pool.clone();
                move |batch| group_commit::end_batch(pool.clone(), batch)
            })),
            pool,
            redacted_url: settings.redacted_url(),
        })
    }

    /// Starts a write transaction (READ COMMITTED: each statement sees what
    /// committed before it started, which is what locking first relies on).
    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(store_error)
    }

    /// Ends a session unless it already ended (then returns it unchanged);
    /// with `clientless_only`, an interactive session is refused.
    async fn end_unless_ended(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
        clientless_only: bool,
    ) -> Result<Session> {
        if let Some(ended) = self.end_at_once(id, reason, now, clientless_only).await? {
            return Ok(ended);
        }
        // Unknown, refused or already ended: the locked path says which.
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        if clientless_only && session.kind != SessionKind::Clientless {
            return Err(Error::SessionNotClientless { session_id: id });
        }
        end(tx, session, reason, now).await
    }

    /// Ends a session that has not ended (and, with `clientless_only`, is
    /// clientless), with the other ends that arrive at the same time; `None`
    /// when no session matched.
    async fn end_at_once(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
        clientless_only: bool,
    ) -> Result<Option<Session>> {
        let end = End {
            id,
            reason,
            now,
            clientless_only,
        };
        self.ends
            .submit(end)
            .await
            .unwrap_or_else(|| Err(stopping()))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        let id = self
            .opens
            .submit(new.clone())
            .await
            .unwrap_or_else(|| Err(stopping()))?;
        Ok(new.into_session(id))
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        fetch_session(&mut conn, id).await
    }

    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts> {
        let facts: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, owner_node FROM sessions WHERE session_id = $1")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        let (user, owner_node) = facts.ok_or(Error::SessionNotFound { session_id: id })?;
        Ok(SessionFacts {
            user: UserId::from_store(user),
            owner_node,
        })
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>> {
        // A user's sessions come from the index by user, in id order.
        let sql = if query.user.is_some() {
            select_session!(
                "WHERE s.user_id = $1 AND ($2::text IS NULL OR s.kind = $2) \
                 AND ($3::text IS NULL OR s.state = $3) AND s.session_id > $4 \
                 ORDER BY s.session_id LIMIT $5"
            )
        } else {
            select_session!(
                "WHERE $1::text IS NULL AND ($2::text IS NULL OR s.kind = $2) \
                 AND ($3::text IS NULL OR s.state = $3) AND s.session_id > $4 \
                 ORDER BY s.session_id LIMIT $5"
            )
        };
        let rows = sqlx::query(sql)
            .bind(query.user.as_ref().map(UserId::as_str))
            .bind(query.kind.map(kind_name))
            .bind(query.state.map(state_name))
            .bind(query.after.map_or(0, SessionId::get))
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        if session.state == SessionState::Ended {
            return Err(Error::SessionEnded { session_id: id });
        }
        record_activity(&mut tx, id, now).await?;
        let session = fetch_session(&mut tx, id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(session)
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        if session.kind != SessionKind::Clientless {
            return Err(Error::SessionNotClientless { session_id: id });
        }
        if session.state != SessionState::Open {
            return Ok(session);
        }
        sqlx::query(
            "UPDATE sessions SET state = 'closing', \
             last_activity_time = GREATEST(last_activity_time, $1) WHERE session_id = $2",
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
        self.end_unless_ended(id, reason, now, false).await
    }

    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.end_unless_ended(id, reason, now, true).await
    }

    async fn recover_node(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Recovered> {
        let mut tx = self.begin().await?;
        let recovered = recover(&mut tx, node, reason, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(recovered)
    }

    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        // `xmax` is 0 in the row an INSERT created, and the updating
        // transaction's id in a row the conflict clause updated.
        sqlx::query_scalar(
            "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET endpoint = EXCLUDED.endpoint, \
             lease_expires = EXCLUDED.lease_expires RETURNING xmax <> 0",
        )
        .bind(text(node))
        .bind(text(endpoint))
        .bind(expires.unix_micros())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT endpoint FROM nodes WHERE node_id = $1 AND lease_expires > $2")
            .bind(text(node))
            .bind(now.unix_micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>> {
        let mut taken = Vec::new();
        loop {
            // One node per transaction; SKIP LOCKED lets replicas looking at
            // the same time take over different nodes, never one twice.
            let mut tx = self.begin().await?;
            let lost: Option<String> = sqlx::query_scalar(
                "SELECT node_id FROM nodes WHERE lease_expires <= $1 AND node_id <> $2 \
                 ORDER BY node_id LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(now.unix_micros())
            .bind(text(taker))
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some(node) = lost else {
                return Ok(taken);
            };
            let recovered = recover(&mut tx, &node, reason, now).await?;
            sqlx::query("DELETE FROM nodes WHERE node_id = $1")
                .bind(&node)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            taken.push((node, recovered));
        }
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(text(node))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT session_id FROM sessions \
             WHERE owner_node = $1 AND kind = 'clientless' AND state <> 'ended' \
             ORDER BY session_id",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(ids.into_iter().map(SessionId::from_store).collect())
    }

    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT s.session_id FROM sessions s \
             WHERE s.owner_node = $1 AND s.kind = 'clientless' AND s.state = 'open' \
             AND (($2::bigint IS NOT NULL AND s.start_time < $2) \
               OR ($3::bigint IS NOT NULL AND s.last_activity_time < $3 AND NOT EXISTS \
                   (SELECT 1 FROM module_runs r \
                    WHERE r.session_id = s.session_id AND r.state = 'running'))) \
             ORDER BY s.session_id",
        )
        .bind(node)
        .bind(expiry.started_before.map(Timestamp::unix_micros))
        .bind(expiry.idle_before.map(Timestamp::unix_micros))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(ids.into_iter().map(SessionId::from_store).collect())
    }

    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
    ) -> Result<Option<EndReason>> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        if session.kind != SessionKind::Clientless || session.state != SessionState::Open {
            return Ok(None);
        }
        let too_old = expiry
            .started_before
            .is_some_and(|limit| session.start_time < limit);
        let idle = match expiry.idle_before {
            Some(limit) if session.last_activity_time < limit => {
                let running: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM module_runs WHERE session_id = $1 AND state = 'running'",
                )
                .bind(id.get())
                .fetch_one(&mut *tx)
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
        sqlx::query("UPDATE sessions SET state = 'closing' WHERE session_id = $1")
            .bind(id.get())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(reason))
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
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, session_id).await?;
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
             start_time) VALUES ($1, $2, $3, $4, 'running', $5) RETURNING run_id",
        )
        .bind(session_id.get())
        .bind(module.as_str())
        .bind(session.effective_user.as_str())
        .bind(parameters)
        .bind(now.unix_micros())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        record_activity(&mut tx, session_id, now).await?;
        let run = fetch_run(&mut tx, RunId::from_store(run_id)).await?;
        let session = fetch_session(&mut tx, session_id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(StartedRun { run, session })
    }

    async fn finish_run(
        &self,
        run_id: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun> {
        let (value, failure) = match outcome {
            RunOutcome::Succeeded(value) => (Some(value.to_string()), None),
            RunOutcome::Failed(failure) | RunOutcome::Cancelled(failure) => (None, Some(failure)),
        };
        let mut tx = self.begin().await?;
        // The session first, as every writer locks: a run's session never
        // changes, so reading it unlocked is safe.
        let session_id: i64 =
            sqlx::query_scalar("SELECT session_id FROM module_runs WHERE run_id = $1")
                .bind(run_id.get())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?
                .ok_or_else(|| Error::Internal(format!("run {run_id} vanished")))?;
        let session_id = SessionId::from_store(session_id);
        lock_session(&mut tx, session_id).await?;
        let updated = sqlx::query(
            "UPDATE module_runs SET state = $1, end_time = $2, value = $3, failure_kind = $4, \
             failure_message = $5, exit_code = $6, signal = $7, stderr_tail = $8 \
             WHERE run_id = $9 AND state = 'running'",
        )
        .bind(run_state_name(outcome))
        .bind(now.unix_micros())
        .bind(value)
        .bind(failure.map(|f| failure_kind_name(f.kind)))
        .bind(failure.map(|f| text(&f.message)))
        .bind(failure.and_then(|f| f.exit_code))
        .bind(failure.and_then(|f| f.signal))
        .bind(failure.map(|f| text(&f.stderr_tail)))
        .bind(run_id.get())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected();
        let run = fetch_run(&mut tx, run_id).await?;
        if updated > 0 {
            record_activity(&mut tx, session_id, now).await?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(run)
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        fetch_run(&mut conn, run_id).await
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let row = sqlx::query(select_run!(
            "WHERE session_id = $1 AND module_id = $2 ORDER BY run_id DESC LIMIT 1"
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
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
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
        let mut tx = self.begin().await?;
        let session = lock_live_session(&mut tx, id).await?;
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
        let mut tx = self.begin().await?;
        let session = lock_live_session(&mut tx, id).await?;
        let depth = session.user_context_depth + 1;
        let scope_id: i64 = sqlx::query_scalar(
            "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
             pushed_at) VALUES ($1, $2, $3, $4, $5) RETURNING scope_id",
        )
        .bind(id.get())
        .bind(i32::try_from(depth).map_err(|e| Error::Internal(format!("scope depth: {e}")))?)
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
        let mut tx = self.begin().await?;
        let session = lock_live_session(&mut tx, id).await?;
        let innermost = sqlx::query(
            "SELECT scope_id, previous_user FROM user_context_scopes \
             WHERE session_id = $1 ORDER BY depth DESC LIMIT 1",
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
                "SELECT scope_id FROM user_context_scopes \
                 WHERE session_id = $1 AND scope_id = $2",
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
        sqlx::query("DELETE FROM user_context_scopes WHERE scope_id = $1")
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

/// Crash recovery of `node` inside a transaction: its running runs fail
/// (interrupted) and its clientless sessions that have not ended end with
/// `reason`.
async fn recover(
    conn: &mut PgConnection,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    // Lock the node's live sessions first, in id order like every other
    // writer, so that no start_run or finish_run interleaves.
    sqlx::query(
        "SELECT session_id FROM sessions WHERE owner_node = $1 AND state <> 'ended' \
         ORDER BY session_id FOR UPDATE",
    )
    .bind(node)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    let runs = sqlx::query(
        "UPDATE module_runs SET state = 'failed', end_time = $1, \
         failure_kind = 'interrupted', \
         failure_message = 'the server stopped while the module was running' \
         WHERE state = 'running' AND session_id IN \
         (SELECT session_id FROM sessions WHERE owner_node = $2)",
    )
    .bind(now.unix_micros())
    .bind(node)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?
    .rows_affected();
    let sessions = sqlx::query(
        "UPDATE sessions SET state = 'ended', end_time = $1, end_reason = $2 \
         WHERE owner_node = $3 AND kind = 'clientless' AND state <> 'ended'",
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

/// Reads one session on `conn`.
async fn fetch_session(conn: &mut PgConnection, id: SessionId) -> Result<Session> {
    let row = sqlx::query(select_session!("WHERE s.session_id = $1"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or(Error::SessionNotFound { session_id: id })?;
    session_from_row(&row)
}

/// Creates one session by itself; returns its id.
async fn create_session_alone(pool: &PgPool, new: &NewSession) -> Result<SessionId> {
    let Some(limit) = new.max_open_per_user else {
        // Nothing to check: one statement, its own transaction.
        return insert_session(pool, new).await;
    };
    let mut tx = pool.begin().await.map_err(store_error)?;
    // Two replicas creating this user's sessions at once would both
    // count below the limit; the lock makes the second count after the
    // first commits.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(PER_USER_LOCK_CLASS)
        .bind(new.user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
    let open: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND state <> 'ended'")
            .bind(new.user.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
    if open >= i64::from(limit) {
        return Err(Error::TooManySessions {
            user: new.user.as_str().to_owned(),
            limit,
        });
    }
    let id = insert_session(&mut *tx, new).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(id)
}

/// Ends one session by itself, in one statement (see
/// [`PostgresStore::end_at_once`]).
async fn end_at_once_alone(pool: &PgPool, end: End) -> Result<Option<Session>> {
    // `(state <> 'ended') IS TRUE` is `state <> 'ended'` (`state` is NOT
    // NULL) in a form PostgreSQL cannot match to the partial indexes `WHERE
    // state <> 'ended'`. Given the plain form, its planner chose to scan
    // such an index for the one id (EXPLAIN of the prepared statement): it
    // estimates the index nearly empty, but the entries of ended sessions
    // stay in it until a vacuum, so a close would read more entries the
    // more sessions closed before it. This way the row is found by its
    // primary key.
    let row = sqlx::query(concat!(
        "UPDATE sessions s SET state = 'ended', end_time = $1, end_reason = $2 \
         WHERE s.session_id = $3 AND (s.state <> 'ended') IS TRUE \
         AND (NOT $4 OR s.kind = 'clientless') RETURNING ",
        session_columns!()
    ))
    .bind(end.now.unix_micros())
    .bind(reason_name(end.reason))
    .bind(end.id.get())
    .bind(end.clientless_only)
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    row.as_ref().map(session_from_row).transpose()
}

/// The answer to a write queued while the runtime shuts down.
fn stopping() -> Error {
    Error::StoreUnavailable("the store is shutting down".into())
}

/// Inserts an open session; returns its id.
async fn insert_session<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    new: &NewSession,
) -> Result<SessionId> {
    group_commit::insert_sessions(executor, &[new])
        .await
        .map_err(store_error)?
        .remove(&new.uuid.to_string())
        .ok_or_else(|| Error::Internal(format!("session {} was not inserted", new.uuid)))
}

/// Ends `session` (locked by `tx`) unless it already ended, commits, and
/// returns it as it is now.
async fn end(
    mut tx: Transaction<'static, Postgres>,
    session: Session,
    reason: EndReason,
    now: Timestamp,
) -> Result<Session> {
    if session.state == SessionState::Ended {
        return Ok(session);
    }
    sqlx::query(
        "UPDATE sessions SET state = 'ended', end_time = $1, end_reason = $2 \
         WHERE session_id = $3",
    )
    .bind(now.unix_micros())
    .bind(reason_name(reason))
    .bind(session.id.get())
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    let session = fetch_session(&mut tx, session.id).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(session)
}

/// Locks a session's row until the transaction ends, and reads it.
///
/// One statement: a `FOR UPDATE` that waited for another transaction reads
/// the row version that transaction committed, the user-context depth
/// included (a column of the row since migration 0005, where a subquery
/// would see the snapshot from before the wait).
async fn lock_session(conn: &mut PgConnection, id: SessionId) -> Result<Session> {
    let row = sqlx::query(select_session!("WHERE s.session_id = $1 FOR UPDATE"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or(Error::SessionNotFound { session_id: id })?;
    session_from_row(&row)
}

/// Locks and reads a session whose user context may change: one that has
/// not ended.
async fn lock_live_session(conn: &mut PgConnection, id: SessionId) -> Result<Session> {
    let session = lock_session(conn, id).await?;
    if session.state == SessionState::Ended {
        return Err(Error::SessionEnded { session_id: id });
    }
    Ok(session)
}

/// Reads one run on `conn`.
async fn fetch_run(conn: &mut PgConnection, id: RunId) -> Result<ModuleRun> {
    let row = sqlx::query(select_run!("WHERE run_id = $1"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or_else(|| Error::Internal(format!("run {id} vanished")))?;
    run_from_row(&row)
}

/// Moves a session's last activity forward to `now` (never back).
async fn record_activity(conn: &mut PgConnection, id: SessionId, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET last_activity_time = GREATEST(last_activity_time, $1) \
         WHERE session_id = $2",
    )
    .bind(now.unix_micros())
    .bind(id.get())
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Sets a session's user context and records activity.
async fn set_effective_user(
    conn: &mut PgConnection,
    id: SessionId,
    user: &UserId,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET effective_user = $1, \
         last_activity_time = GREATEST(last_activity_time, $2) WHERE session_id = $3",
    )
    .bind(user.as_str())
    .bind(now.unix_micros())
    .bind(id.get())
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}
