//! The PostgreSQL store's statements: the primitives of a write
//! transaction ([`WriteTx`]: locking, reading and writing rows of sessions,
//! users, scopes, runs and nodes) and the reads they share. SQL and row
//! mapping only; what to write is the domain's answer.
//!
//! Lock order, so that transactions never deadlock: user rows (ascending),
//! then session rows (ascending id), then their scopes and runs.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::codec::{kind_name, run_from_row, session_from_row, store_error, text};
use crate::events::Cause;
use crate::model::{
    Change, Error, ModuleId, ModuleRun, NewRun, NewScope, NewSession, Result, RunId, RunProcess,
    Scope, ScopeId, Session, SessionId, Timestamp, UserId,
};
use crate::store::ledger::{Head, Pending};
use crate::store::names::ConcludedRun;
use crate::store::{ColumnValue, Dialect, SessionChanges, WriteTx, conclude_run_sql};

/// Reads one session.
pub(super) async fn fetch_session(conn: &mut PgConnection, id: SessionId) -> Result<Session> {
    let row = sqlx::query(select_session!("WHERE s.session_id = $1"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or(Error::SessionNotFound { session_id: id })?;
    session_from_row(&row)
}

/// Locks the rows of sessions `ids` (ascending) and reads them, by id;
/// unknown ids are absent.
pub(super) async fn lock_sessions(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<SessionId, Session>> {
    // Planned on each run (see `group_commit`).
    let rows = sqlx::query(select_session!(
        "WHERE s.session_id = ANY($1) ORDER BY s.session_id FOR UPDATE"
    ))
    .persistent(false)
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(store_error)?;
    rows.iter()
        .map(|row| session_from_row(row).map(|s| (s.id, s)))
        .collect()
}

/// Locks the rows of `users` (creating those missing) for the per-user
/// limit, in ascending order, and counts each one's sessions that have not
/// ended.
pub(super) async fn lock_users(
    conn: &mut PgConnection,
    users: &[&str],
) -> Result<HashMap<String, u64>> {
    let mut users = users.to_vec();
    users.sort_unstable();
    users.dedup();
    sqlx::query(
        "INSERT INTO session_users (user_id) SELECT u FROM unnest($1::text[]) AS u ORDER BY u \
         ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id",
    )
    .persistent(false)
    .bind(&users)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(*) FROM sessions \
         WHERE user_id = ANY($1) AND state <> 'ended' GROUP BY user_id",
    )
    .persistent(false)
    .bind(&users)
    .fetch_all(conn)
    .await
    .map_err(store_error)?;
    Ok(counts
        .into_iter()
        .map(|(user, open)| (user, u64::try_from(open).unwrap_or(0)))
        .collect())
}

/// Inserts `sessions` in one statement; their ids by UUID.
pub(super) async fn insert_sessions<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    sessions: &[&NewSession],
) -> std::result::Result<HashMap<String, SessionId>, sqlx::Error> {
    if sessions.is_empty() {
        return Ok(HashMap::new());
    }
    let column =
        |f: fn(&NewSession) -> String| sessions.iter().map(|new| f(new)).collect::<Vec<_>>();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
         last_activity_time, effective_user, client, owner_node) \
         SELECT u::uuid, usr, k, 'open', t, t, usr, c, o \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) \
           AS n(u, usr, k, t, c, o) \
         RETURNING session_id, session_uuid::text",
    )
    .bind(column(|new| new.uuid.to_string()))
    .bind(column(|new| new.user.as_str().to_owned()))
    .bind(column(|new| kind_name(new.kind).to_owned()))
    .bind(
        sessions
            .iter()
            .map(|new| new.now.unix_micros())
            .collect::<Vec<_>>(),
    )
    .bind(column(|new| new.client.as_str().to_owned()))
    .bind(column(|new| new.owner_node.clone()))
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, uuid)| (uuid, SessionId::from_store(id)))
        .collect())
}

/// Reads one run.
pub(super) async fn fetch_run(conn: &mut PgConnection, id: RunId) -> Result<ModuleRun> {
    let row = sqlx::query(select_run!("WHERE run_id = $1"))
        .bind(id.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?
        .ok_or_else(|| Error::Internal(format!("run {id} vanished")))?;
    run_from_row(&row)
}

/// Reads the latest run of `module` in `session`, if any.
pub(super) async fn latest_run(
    conn: &mut PgConnection,
    session: SessionId,
    module: &ModuleId,
) -> Result<Option<ModuleRun>> {
    let row = sqlx::query(select_run!(
        "WHERE session_id = $1 AND module_id = $2 ORDER BY run_id DESC LIMIT 1"
    ))
    .bind(session.get())
    .bind(module.as_str())
    .fetch_optional(conn)
    .await
    .map_err(store_error)?;
    row.as_ref().map(run_from_row).transpose()
}

/// Forgets a node.
pub(super) async fn delete_node<'e>(executor: impl sqlx::PgExecutor<'e>, node: &str) -> Result<()> {
    sqlx::query("DELETE FROM nodes WHERE node_id = $1")
        .bind(text(node))
        .execute(executor)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// A write transaction on one connection: its cause, and the events it
/// recorded, which [`super::events::append`] writes before the commit.
pub(super) struct PgTx<'a>(pub &'a mut PgConnection, pub Arc<Cause>, pub Vec<Pending>);

impl<'a> PgTx<'a> {
    /// A transaction on `conn` made by `cause`.
    pub(super) fn new(conn: &'a mut PgConnection, cause: Arc<Cause>) -> Self {
        Self(conn, cause, Vec::new())
    }

    /// Writes the recorded events; returns the new head (`None`: there
    /// were none).
    pub(super) async fn append_events(&mut self) -> Result<Option<Head>> {
        super::events::append(self.0, &self.2).await
    }
}

#[async_trait]
impl WriteTx for PgTx<'_> {
    async fn lock_session(&mut self, id: SessionId) -> Result<Session> {
        let conn = &mut *self.0;
        let row = sqlx::query(select_session!("WHERE s.session_id = $1 FOR UPDATE"))
            .bind(id.get())
            .fetch_optional(conn)
            .await
            .map_err(store_error)?
            .ok_or(Error::SessionNotFound { session_id: id })?;
        session_from_row(&row)
    }

    async fn write_session(&mut self, old: &Session, new: &Session) -> Result<()> {
        let conn = &mut *self.0;
        let changes = SessionChanges::between(old, new);
        if changes.is_empty() {
            return Ok(());
        }
        // Column names of the schema, values bound: nothing from a caller.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(changes.sql(Dialect::Postgres)));
        for value in changes.values {
            query = match value {
                ColumnValue::Int(v) => query.bind(v),
                ColumnValue::Text(v) => query.bind(v),
            };
        }
        query
            .bind(new.id.get())
            .execute(conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_session(&mut self, new: &NewSession) -> Result<SessionId> {
        let conn = &mut *self.0;
        insert_sessions(conn, &[new])
            .await
            .map_err(store_error)?
            .remove(&new.uuid.to_string())
            .ok_or_else(|| Error::Internal(format!("session {} was not inserted", new.uuid)))
    }

    async fn lock_user_and_count_unended(&mut self, user: &UserId) -> Result<u64> {
        let open = lock_users(self.0, &[user.as_str()]).await?;
        Ok(open.get(user.as_str()).copied().unwrap_or(0))
    }

    async fn scopes(&mut self, session: SessionId) -> Result<Vec<Scope>> {
        let conn = &mut *self.0;
        let rows = sqlx::query(
            "SELECT scope_id, depth, user_id, previous_user FROM user_context_scopes \
             WHERE session_id = $1 ORDER BY depth",
        )
        .bind(session.get())
        .fetch_all(conn)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let depth: i32 = row.try_get("depth").map_err(store_error)?;
                Ok(Scope {
                    id: ScopeId::from_store(row.try_get("scope_id").map_err(store_error)?),
                    depth: u32::try_from(depth)
                        .map_err(|e| crate::store::names::corrupt("depth", e))?,
                    user: UserId::from_store(row.try_get("user_id").map_err(store_error)?),
                    previous_user: UserId::from_store(
                        row.try_get("previous_user").map_err(store_error)?,
                    ),
                })
            })
            .collect()
    }

    async fn insert_scope(&mut self, scope: &NewScope) -> Result<ScopeId> {
        let conn = &mut *self.0;
        let depth =
            i32::try_from(scope.depth).map_err(|e| Error::Internal(format!("scope depth: {e}")))?;
        sqlx::query_scalar(
            "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
             pushed_at) VALUES ($1, $2, $3, $4, $5) RETURNING scope_id",
        )
        .bind(scope.session_id.get())
        .bind(depth)
        .bind(scope.user.as_str())
        .bind(scope.previous_user.as_str())
        .bind(scope.pushed_at.unix_micros())
        .fetch_one(conn)
        .await
        .map(ScopeId::from_store)
        .map_err(store_error)
    }

    async fn delete_scope(&mut self, scope: ScopeId) -> Result<()> {
        let conn = &mut *self.0;
        sqlx::query("DELETE FROM user_context_scopes WHERE scope_id = $1")
            .bind(scope.get())
            .execute(conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_run(&mut self, run: &NewRun) -> Result<RunId> {
        let conn = &mut *self.0;
        let parameters = serde_json::to_string(&run.parameters)
            .map_err(|e| Error::Internal(format!("encoding parameters: {e}")))?;
        sqlx::query_scalar(
            "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
             start_time) VALUES ($1, $2, $3, $4, 'running', $5) RETURNING run_id",
        )
        .bind(run.session_id.get())
        .bind(run.module_id.as_str())
        .bind(run.acting_user.as_str())
        .bind(parameters)
        .bind(run.start_time.unix_micros())
        .fetch_one(conn)
        .await
        .map(RunId::from_store)
        .map_err(store_error)
    }

    async fn run(&mut self, run: RunId) -> Result<ModuleRun> {
        fetch_run(self.0, run).await
    }

    async fn write_run(&mut self, run: &ModuleRun) -> Result<()> {
        let conn = &mut *self.0;
        let c = ConcludedRun::of(run)
            .ok_or_else(|| Error::Internal(format!("run {} has not concluded", run.id)))?;
        sqlx::query(sqlx::AssertSqlSafe(conclude_run_sql(Dialect::Postgres)))
            .bind(c.state)
            .bind(c.end_time)
            .bind(c.value)
            .bind(c.failure_kind)
            .bind(c.failure_message.map(text))
            .bind(c.exit_code)
            .bind(c.signal)
            .bind(c.stderr_tail.map(text))
            .bind(run.id.get())
            .execute(conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_run_process(&mut self, run: RunId, process: Option<&RunProcess>) -> Result<()> {
        let conn = &mut *self.0;
        sqlx::query("UPDATE module_runs SET process = $1 WHERE run_id = $2")
            .bind(process.map(ToString::to_string))
            .bind(run.get())
            .execute(conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn run_processes_of_node(&mut self, node: &str) -> Result<Vec<(RunId, RunProcess)>> {
        let conn = &mut *self.0;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT r.run_id, r.process FROM module_runs r \
             JOIN sessions s ON s.session_id = r.session_id \
             WHERE r.process IS NOT NULL AND s.owner_node = $1 ORDER BY r.run_id",
        )
        .bind(node)
        .fetch_all(conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|(run, process)| {
                let process = process
                    .parse()
                    .map_err(|e: crate::model::BadRunProcess| Error::Internal(e.to_string()))?;
                Ok((RunId::from_store(run), process))
            })
            .collect()
    }

    async fn has_running_run(&mut self, session: SessionId) -> Result<bool> {
        let conn = &mut *self.0;
        let running: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM module_runs WHERE session_id = $1 AND state = 'running' LIMIT 1",
        )
        .bind(session.get())
        .fetch_optional(conn)
        .await
        .map_err(store_error)?;
        Ok(running.is_some())
    }

    async fn lock_unended_clientless_of_node(&mut self, node: &str) -> Result<Vec<Session>> {
        let conn = &mut *self.0;
        let rows = sqlx::query(select_session!(
            "WHERE s.owner_node = $1 AND s.kind = 'clientless' AND s.state <> 'ended' \
             ORDER BY s.session_id FOR UPDATE"
        ))
        .bind(node)
        .fetch_all(conn)
        .await
        .map_err(store_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn running_runs_of_node(&mut self, node: &str) -> Result<Vec<ModuleRun>> {
        let conn = &mut *self.0;
        let rows = sqlx::query(select_run!(
            "WHERE state = 'running' AND session_id IN \
             (SELECT session_id FROM sessions WHERE owner_node = $1)"
        ))
        .bind(node)
        .fetch_all(conn)
        .await
        .map_err(store_error)?;
        rows.iter().map(run_from_row).collect()
    }

    async fn renew_node(&mut self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        let conn = &mut *self.0;
        let updated =
            sqlx::query("UPDATE nodes SET endpoint = $2, lease_expires = $3 WHERE node_id = $1")
                .bind(text(node))
                .bind(text(endpoint))
                .bind(expires.unix_micros())
                .execute(&mut *conn)
                .await
                .map_err(store_error)?
                .rows_affected();
        if updated > 0 {
            return Ok(true);
        }
        sqlx::query(
            "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET endpoint = EXCLUDED.endpoint, \
             lease_expires = EXCLUDED.lease_expires",
        )
        .bind(text(node))
        .bind(text(endpoint))
        .bind(expires.unix_micros())
        .execute(conn)
        .await
        .map_err(store_error)?;
        Ok(false)
    }

    async fn lock_lost_node(&mut self, taker: &str, now: Timestamp) -> Result<Option<String>> {
        let conn = &mut *self.0;
        sqlx::query_scalar(
            "SELECT node_id FROM nodes WHERE lease_expires <= $1 AND node_id <> $2 \
             ORDER BY node_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now.unix_micros())
        .bind(text(taker))
        .fetch_optional(conn)
        .await
        .map_err(store_error)
    }

    async fn delete_node(&mut self, node: &str) -> Result<()> {
        delete_node(&mut *self.0, node).await
    }

    fn record(&mut self, change: Change) {
        self.2.push((change, Arc::clone(&self.1)));
    }

    fn record_as(&mut self, change: Change, cause: Arc<Cause>) {
        self.2.push((change, cause));
    }

    async fn compact_events(&mut self, before: Timestamp, limit: u32) -> Result<u64> {
        super::events::compact(self.0, before, limit).await
    }
}
