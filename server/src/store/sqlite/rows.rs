//! The SQLite store's statements: the primitives of a write transaction
//! ([`WriteTx`], on the writer's connection) and the reads. SQL and row
//! mapping only; what to write is the domain's answer.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, ToSql, params, params_from_iter};

use super::codec::{
    column, execute, insert, kind_name, query_all, query_one, run_from_row, session_from_row,
};
use super::writer::Transaction;
use crate::events::Cause;
use crate::model::{
    Change, Error, ModuleId, ModuleRun, NewRun, NewScope, NewSession, Result, RunId, RunProcess,
    Scope, ScopeId, Session, SessionFacts, SessionId, Timestamp, UserId,
};
use crate::store::names::ConcludedRun;
use crate::store::{ColumnValue, Dialect, SessionChanges, WriteTx, conclude_run_sql};

/// The columns of a [`Session`], followed by the rest of a query (in the
/// order `codec::session_from_row` reads them).
macro_rules! select_session {
    ($($rest:expr),+) => {
        concat!(
            "SELECT s.session_id, s.session_uuid, s.user_id, s.kind, s.state, s.start_time, ",
            "s.end_time, s.last_activity_time, s.end_reason, s.effective_user, s.client, ",
            "s.owner_node, s.user_context_depth FROM sessions s ",
            $($rest),+
        )
    };
}
pub(super) use select_session;

/// Reads one session on `conn`.
pub(super) fn fetch_session(conn: &Connection, id: SessionId) -> Result<Session> {
    query_one(
        conn,
        select_session!("WHERE s.session_id = ?"),
        [id.get()],
        session_from_row,
    )?
    .ok_or(Error::SessionNotFound { session_id: id })
}

/// Reads what never changes about a session.
pub(super) fn fetch_facts(conn: &Connection, id: SessionId) -> Result<SessionFacts> {
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
}

/// A write transaction of the writer's batch. The writer is the only one,
/// so a read inside it is as good as a lock; sessions come from memory when
/// the batch or the cache has them.
pub(super) struct SqliteTx<'a, 'b>(pub &'a mut Transaction<'b>, pub Arc<Cause>);

#[async_trait]
impl WriteTx for SqliteTx<'_, '_> {
    async fn lock_session(&mut self, id: SessionId) -> Result<Session> {
        if let Some(session) = self.0.known_session(id) {
            return Ok(session);
        }
        let session = fetch_session(self.0.conn, id)?;
        self.0.read(session.clone());
        Ok(session)
    }

    async fn write_session(&mut self, old: &Session, new: &Session) -> Result<()> {
        let changes = SessionChanges::between(old, new);
        if !changes.is_empty() {
            let id = new.id.get();
            let values = changes.values.iter().map(|v| v as &dyn ToSql);
            let values = values.chain([&id as &dyn ToSql]);
            execute(
                self.0.conn,
                changes.sql(Dialect::Sqlite),
                params_from_iter(values),
            )?;
        }
        self.0.changed(new.clone());
        Ok(())
    }

    async fn insert_session(&mut self, new: &NewSession) -> Result<SessionId> {
        let id = insert(
            self.0.conn,
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
        )
        .map(SessionId::from_store)?;
        self.0.changed(new.clone().into_session(id));
        Ok(id)
    }

    async fn lock_user_and_count_unended(&mut self, user: &UserId) -> Result<u64> {
        // The single writer serializes every write: counting is enough.
        let open: i64 = query_one(
            self.0.conn,
            "SELECT COUNT(*) AS open FROM sessions WHERE user_id = ? AND state <> 'ended'",
            [user.as_str()],
            |row| column(row, "open"),
        )?
        .unwrap_or(0);
        Ok(u64::try_from(open).unwrap_or(0))
    }

    async fn scopes(&mut self, id: SessionId) -> Result<Vec<Scope>> {
        query_all(
            self.0.conn,
            "SELECT scope_id, depth, user_id, previous_user FROM user_context_scopes \
             WHERE session_id = ? ORDER BY depth",
            [id.get()],
            |row| {
                Ok(Scope {
                    id: ScopeId::from_store(column(row, "scope_id")?),
                    depth: column(row, "depth")?,
                    user: UserId::from_store(column(row, "user_id")?),
                    previous_user: UserId::from_store(column(row, "previous_user")?),
                })
            },
        )
    }

    async fn insert_scope(&mut self, scope: &NewScope) -> Result<ScopeId> {
        insert(
            self.0.conn,
            "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
             pushed_at) VALUES (?, ?, ?, ?, ?)",
            params![
                scope.session_id.get(),
                i64::from(scope.depth),
                scope.user.as_str(),
                scope.previous_user.as_str(),
                scope.pushed_at.unix_micros(),
            ],
        )
        .map(ScopeId::from_store)
    }

    async fn delete_scope(&mut self, scope: ScopeId) -> Result<()> {
        let sql = "DELETE FROM user_context_scopes WHERE scope_id = ?";
        execute(self.0.conn, sql, [scope.get()]).map(drop)
    }

    async fn insert_run(&mut self, run: &NewRun) -> Result<RunId> {
        let parameters = serde_json::to_string(&run.parameters)
            .map_err(|e| Error::Internal(format!("encoding parameters: {e}")))?;
        insert(
            self.0.conn,
            "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, \
             state, start_time) VALUES (?, ?, ?, ?, 'running', ?)",
            params![
                run.session_id.get(),
                run.module_id.as_str(),
                run.acting_user.as_str(),
                parameters,
                run.start_time.unix_micros(),
            ],
        )
        .map(RunId::from_store)
    }

    async fn run(&mut self, run: RunId) -> Result<ModuleRun> {
        fetch_run(self.0.conn, run)
    }

    async fn write_run(&mut self, run: &ModuleRun) -> Result<()> {
        let c = ConcludedRun::of(run)
            .ok_or_else(|| Error::Internal(format!("run {} has not concluded", run.id)))?;
        execute(
            self.0.conn,
            conclude_run_sql(Dialect::Sqlite),
            params![
                c.state,
                c.end_time,
                c.value,
                c.failure_kind,
                c.failure_message,
                c.exit_code,
                c.signal,
                c.stderr_tail,
                run.id.get(),
            ],
        )
        .map(drop)
    }

    async fn set_run_process(&mut self, run: RunId, process: Option<&RunProcess>) -> Result<()> {
        let process = process.map(ToString::to_string);
        let sql = "UPDATE module_runs SET process = ? WHERE run_id = ?";
        execute(self.0.conn, sql, params![process, run.get()]).map(drop)
    }

    async fn run_processes_of_node(&mut self, node: &str) -> Result<Vec<(RunId, RunProcess)>> {
        query_all(
            self.0.conn,
            "SELECT run_id, process FROM module_runs WHERE process IS NOT NULL AND session_id IN \
             (SELECT session_id FROM sessions WHERE owner_node = ?) ORDER BY run_id",
            [node],
            |row| {
                let process: String = column(row, 1)?;
                let process = process
                    .parse()
                    .map_err(|e: crate::model::BadRunProcess| Error::Internal(e.to_string()))?;
                Ok((RunId::from_store(column(row, 0)?), process))
            },
        )
    }

    async fn has_running_run(&mut self, session: SessionId) -> Result<bool> {
        query_one(
            self.0.conn,
            "SELECT 1 AS running FROM module_runs WHERE session_id = ? AND state = 'running' \
             LIMIT 1",
            [session.get()],
            |_| Ok(()),
        )
        .map(|running| running.is_some())
    }

    async fn lock_unended_clientless_of_node(&mut self, node: &str) -> Result<Vec<Session>> {
        let mut sessions = Vec::new();
        for id in unended_clientless_of_node(self.0.conn, node)? {
            sessions.push(self.lock_session(id).await?);
        }
        Ok(sessions)
    }

    async fn running_runs_of_node(&mut self, node: &str) -> Result<Vec<ModuleRun>> {
        query_all(
            self.0.conn,
            select_run!(
                "WHERE state = 'running' AND session_id IN \
                 (SELECT session_id FROM sessions WHERE owner_node = ?)"
            ),
            [node],
            run_from_row,
        )
    }

    async fn renew_node(&mut self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        let known = query_one(
            self.0.conn,
            "SELECT 1 AS known FROM nodes WHERE node_id = ?",
            [node],
            |_| Ok(()),
        )?
        .is_some();
        execute(
            self.0.conn,
            "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES (?, ?, ?) \
             ON CONFLICT (node_id) DO UPDATE SET endpoint = excluded.endpoint, \
             lease_expires = excluded.lease_expires",
            params![node, endpoint, expires.unix_micros()],
        )?;
        Ok(known)
    }

    async fn lock_lost_node(&mut self, taker: &str, now: Timestamp) -> Result<Option<String>> {
        query_one(
            self.0.conn,
            "SELECT node_id FROM nodes WHERE lease_expires <= ? AND node_id <> ? \
             ORDER BY node_id LIMIT 1",
            params![now.unix_micros(), taker],
            |row| column(row, "node_id"),
        )
    }

    async fn delete_node(&mut self, node: &str) -> Result<()> {
        execute(self.0.conn, "DELETE FROM nodes WHERE node_id = ?", [node]).map(drop)
    }

    fn record(&mut self, change: Change) {
        self.0.record((change, Arc::clone(&self.1)));
    }

    fn record_as(&mut self, change: Change, cause: Arc<Cause>) {
        self.0.record((change, cause));
    }

    async fn compact_events(&mut self, before: Timestamp, limit: u32) -> Result<u64> {
        super::events::compact(self.0.conn, before, limit)
    }
}

/// Reads one run on `conn`.
pub(super) fn fetch_run(conn: &Connection, id: RunId) -> Result<ModuleRun> {
    query_one(
        conn,
        select_run!("WHERE run_id = ?"),
        [id.get()],
        run_from_row,
    )?
    .ok_or_else(|| Error::Internal(format!("run {id} vanished")))
}

/// Reads the latest run of `module` in `session`, if any.
pub(super) fn latest_run(
    conn: &Connection,
    session: SessionId,
    module: &ModuleId,
) -> Result<Option<ModuleRun>> {
    query_one(
        conn,
        select_run!("WHERE session_id = ? AND module_id = ? ORDER BY run_id DESC LIMIT 1"),
        params![session.get(), module.as_str()],
        run_from_row,
    )
}

/// The clientless sessions `node` owns that have not ended.
pub(super) fn unended_clientless_of_node(conn: &Connection, node: &str) -> Result<Vec<SessionId>> {
    query_all(
        conn,
        "SELECT session_id FROM sessions \
         WHERE owner_node = ? AND kind = 'clientless' AND state <> 'ended' ORDER BY session_id",
        [node],
        |row| column(row, "session_id").map(SessionId::from_store),
    )
}

impl ToSql for ColumnValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Self::Int(value) => value.to_sql(),
            Self::Text(value) => value.to_sql(),
        }
    }
}
