//! The SQLite store's statements: reading and writing rows of sessions,
//! scopes, runs and nodes, inside the writer's transaction or on a reader.
//! SQL and row mapping only; what to write is the domain's answer.

use rusqlite::{Connection, params, params_from_iter};

use super::codec::{
    column, execute, insert, kind_name, query_all, query_one, run_from_row, session_from_row,
};
use super::writer::Transaction;
use crate::model::{
    Error, ModuleId, ModuleRun, NewRun, NewScope, NewSession, Result, RunId, Scope, ScopeId,
    Session, SessionFacts, SessionId, Timestamp, UserId,
};
use crate::store::names::{ConcludedRun, conclude_run_sql};
use crate::store::{ColumnValue, changed_columns, update_session_sql};

/// The columns of a [`Session`], followed by the rest of a query (in the
/// order `codec::session_from_row` reads them).
macro_rules! select_session {
    ($rest:literal) => {
        concat!(
            "SELECT s.session_id, s.session_uuid, s.user_id, s.kind, s.state, s.start_time, ",
            "s.end_time, s.last_activity_time, s.end_reason, s.effective_user, s.client, ",
            "s.owner_node, s.user_context_depth FROM sessions s ",
            $rest
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

/// Session `id` as the writer's transaction sees it: from memory when the
/// batch or the cache knows it, else read (and kept for the batch). The
/// writer is the only one, so this is as good as a lock.
pub(super) fn session_in(tx: &mut Transaction<'_>, id: SessionId) -> Result<Session> {
    if let Some(session) = tx.known_session(id) {
        return Ok(session);
    }
    let session = fetch_session(tx.conn, id)?;
    tx.read(session.clone());
    Ok(session)
}

/// Writes what changed from `old` to `new` (two versions of one session);
/// returns `new`.
pub(super) fn write_session(
    tx: &mut Transaction<'_>,
    old: &Session,
    new: Session,
) -> Result<Session> {
    let columns = changed_columns(old, &new);
    if !columns.is_empty() {
        let sql = update_session_sql(&columns, |n| format!("?{n}"));
        let values = columns
            .into_iter()
            .map(|(_, value)| match value {
                ColumnValue::Int(v) => rusqlite::types::Value::from(v),
                ColumnValue::Text(v) => rusqlite::types::Value::from(v),
            })
            .chain([rusqlite::types::Value::from(new.id.get())]);
        execute(tx.conn, &sql, params_from_iter(values))?;
    }
    Ok(tx.changed(new))
}

/// Inserts an open session; returns its id.
pub(super) fn insert_session(conn: &Connection, new: &NewSession) -> Result<SessionId> {
    insert(
        conn,
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
    .map(SessionId::from_store)
}

/// How many sessions of `user` have not ended.
pub(super) fn count_unended(conn: &Connection, user: &UserId) -> Result<u64> {
    let open: i64 = query_one(
        conn,
        "SELECT COUNT(*) AS open FROM sessions WHERE user_id = ? AND state <> 'ended'",
        [user.as_str()],
        |row| column(row, "open"),
    )?
    .unwrap_or(0);
    Ok(u64::try_from(open).unwrap_or(0))
}

/// The session's open scopes, outermost first.
pub(super) fn scopes(conn: &Connection, id: SessionId) -> Result<Vec<Scope>> {
    query_all(
        conn,
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

/// Records a pushed scope; returns its id.
pub(super) fn insert_scope(conn: &Connection, scope: &NewScope) -> Result<ScopeId> {
    insert(
        conn,
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

/// Forgets a popped scope.
pub(super) fn delete_scope(conn: &Connection, scope: ScopeId) -> Result<()> {
    execute(
        conn,
        "DELETE FROM user_context_scopes WHERE scope_id = ?",
        [scope.get()],
    )
    .map(drop)
}

/// Records a running run; returns its id.
pub(super) fn insert_run(conn: &Connection, run: &NewRun) -> Result<RunId> {
    let parameters = serde_json::to_string(&run.parameters)
        .map_err(|e| Error::Internal(format!("encoding parameters: {e}")))?;
    insert(
        conn,
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

/// Writes a concluded run's outcome.
pub(super) fn write_run(conn: &Connection, run: &ModuleRun) -> Result<()> {
    let c = ConcludedRun::of(run)
        .ok_or_else(|| Error::Internal(format!("run {} has not concluded", run.id)))?;
    execute(
        conn,
        &conclude_run_sql(|n| format!("?{n}")),
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

/// Whether a run is running in `session`.
pub(super) fn has_running_run(conn: &Connection, session: SessionId) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 AS running FROM module_runs WHERE session_id = ? AND state = 'running' LIMIT 1",
        [session.get()],
        |_| Ok(()),
    )
    .map(|running| running.is_some())
}

/// The running runs of the sessions `node` owns.
pub(super) fn running_runs_of_node(conn: &Connection, node: &str) -> Result<Vec<ModuleRun>> {
    query_all(
        conn,
        select_run!(
            "WHERE state = 'running' AND session_id IN \
             (SELECT session_id FROM sessions WHERE owner_node = ?)"
        ),
        [node],
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

/// Whether `node` has a row, and its lease until `expires` at `endpoint`.
pub(super) fn renew_node(
    conn: &Connection,
    node: &str,
    endpoint: &str,
    expires: Timestamp,
) -> Result<bool> {
    let known = query_one(
        conn,
        "SELECT 1 AS known FROM nodes WHERE node_id = ?",
        [node],
        |_| Ok(()),
    )?
    .is_some();
    execute(
        conn,
        "INSERT INTO nodes (node_id, endpoint, lease_expires) VALUES (?, ?, ?) \
         ON CONFLICT (node_id) DO UPDATE SET endpoint = excluded.endpoint, \
         lease_expires = excluded.lease_expires",
        params![node, endpoint, expires.unix_micros()],
    )?;
    Ok(known)
}

/// The nodes but `taker` whose lease expired by `now`.
pub(super) fn lost_nodes(conn: &Connection, taker: &str, now: Timestamp) -> Result<Vec<String>> {
    query_all(
        conn,
        "SELECT node_id FROM nodes WHERE lease_expires <= ? AND node_id <> ? ORDER BY node_id",
        params![now.unix_micros(), taker],
        |row| column(row, "node_id"),
    )
}

/// Forgets a node.
pub(super) fn delete_node(conn: &Connection, node: &str) -> Result<()> {
    execute(conn, "DELETE FROM nodes WHERE node_id = ?", [node]).map(drop)
}
