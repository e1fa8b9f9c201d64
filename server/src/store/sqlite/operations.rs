//! The store traits on SQLite. Each write is one operation of the writer's
//! batch, of one shape: read what the rule depends on (the writer is the
//! only one, so a read is as good as a lock), ask the domain, write its
//! answer.

use async_trait::async_trait;

use super::codec::{column, kind_name, query_all, session_from_row, state_name};
use super::rows::{
    count_unended, delete_node, delete_scope, fetch_facts, fetch_run, fetch_session,
    has_running_run, insert_run, insert_scope, insert_session, latest_run, lost_nodes, renew_node,
    running_runs_of_node, scopes, select_session, session_in, unended_clientless_of_node,
    write_run, write_session,
};
use super::writer::Transaction;
use super::{EXPIRED_SESSIONS, SqliteStore};
use crate::model::{
    EndReason, Error, Expiry, ModuleId, ModuleRun, NewSession, PoppedScope, PushedScope, Result,
    RunId, RunOutcome, ScopeId, Session, SessionFacts, SessionId, Timestamp, UserContext, UserId,
    admit,
};
use crate::store::{
    NodeStore, Recovered, RunStore, ScopeStore, SessionQuery, SessionStore, StartedRun,
};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        self.writer
            .write(move |tx| {
                if new.max_open_per_user.is_some() {
                    admit(&new, count_unended(tx.conn, &new.user)?)?;
                }
                let id = insert_session(tx.conn, &new)?;
                Ok(tx.changed(new.into_session(id)))
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
        self.readers.lookup(|conn| fetch_facts(conn, id))
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
                    rusqlite::params![
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
        self.change(id, move |session| session.touch(now)).await
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.change_if(id, move |session| session.begin_closing(now))
            .await
    }

    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.change_if(id, move |session| session.end_clientless(reason, now))
            .await
    }

    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.change_if(id, move |session| Ok(session.end(reason, now)))
            .await
    }

    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>> {
        let node = node.to_owned();
        self.readers
            .scan(move |conn| unended_clientless_of_node(conn, &node))
            .await
    }

    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>> {
        let (node, expiry) = (node.to_owned(), *expiry);
        self.readers
            .scan(move |conn| {
                query_all(
                    conn,
                    EXPIRED_SESSIONS,
                    rusqlite::params![
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
                let running = has_running_run(tx.conn, id)?;
                let Some((reason, closing)) = expiry.close(&session, running) else {
                    return Ok(None);
                };
                write_session(tx, &session, closing)?;
                Ok(Some(reason))
            })
            .await
    }
}

#[async_trait]
impl ScopeStore for SqliteStore {
    async fn user_context(&self, id: SessionId) -> Result<UserContext> {
        self.session(id).await?.user_context()
    }

    async fn set_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserId> {
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                let changed = session.set_user_context(user, now)?;
                write_session(tx, &session, changed)?;
                Ok(session.effective_user)
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
                let session = session_in(tx, id)?;
                let (scope, pushed) = session.push_user_context(user, now)?;
                let scope_id = insert_scope(tx.conn, &scope)?;
                write_session(tx, &session, pushed)?;
                Ok(PushedScope {
                    scope_id,
                    previous_user: scope.previous_user,
                    depth: scope.depth,
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
                let session = session_in(tx, id)?;
                let stack = scopes(tx.conn, id)?;
                let (popped, restored) = session.pop_user_context(&stack, scope, now)?;
                delete_scope(tx.conn, scope)?;
                write_session(tx, &session, restored)?;
                Ok(popped)
            })
            .await
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn start_run(
        &self,
        session_id: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<StartedRun> {
        let (module, parameters) = (module.clone(), parameters.clone());
        self.writer
            .write(move |tx| {
                let session = session_in(tx, session_id)?;
                let (run, active) = session.start_run(module, parameters, now)?;
                let id = insert_run(tx.conn, &run)?;
                let session = write_session(tx, &session, active)?;
                Ok(StartedRun {
                    run: run.into_run(id),
                    session,
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
        let outcome = outcome.clone();
        self.writer
            .write(move |tx| {
                let run = fetch_run(tx.conn, run_id)?;
                let Some(concluded) = run.conclude(outcome, now) else {
                    return Ok(run);
                };
                write_run(tx.conn, &concluded)?;
                let session = session_in(tx, run.session_id)?;
                write_session(tx, &session, session.touched(now))?;
                Ok(concluded)
            })
            .await
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        self.readers.lookup(|conn| fetch_run(conn, run_id))
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        self.readers.lookup(|conn| {
            match latest_run(conn, session_id, module)? {
                Some(run) => Ok(run),
                None => {
                    // Tell an unknown session from a module never opened in it.
                    fetch_facts(conn, session_id)?;
                    Err(Error::ModuleNotOpened {
                        session_id,
                        module_id: module.clone(),
                    })
                }
            }
        })
    }
}

#[async_trait]
impl NodeStore for SqliteStore {
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        let (node, endpoint) = (node.to_owned(), endpoint.to_owned());
        self.writer
            .write(move |tx| renew_node(tx.conn, &node, &endpoint, expires))
            .await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        self.readers.lookup(|conn| {
            super::codec::query_one(
                conn,
                "SELECT endpoint FROM nodes WHERE node_id = ? AND lease_expires > ?",
                rusqlite::params![node, now.unix_micros()],
                |row| column(row, "endpoint"),
            )
        })
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

    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>> {
        let taker = taker.to_owned();
        self.writer
            .write(move |tx| {
                let mut taken = Vec::new();
                for node in lost_nodes(tx.conn, &taker, now)? {
                    let recovered = recover(tx, &node, reason, now)?;
                    delete_node(tx.conn, &node)?;
                    taken.push((node, recovered));
                }
                Ok(taken)
            })
            .await
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.writer
            .write(move |tx| delete_node(tx.conn, &node))
            .await
    }
}

impl SqliteStore {
    /// One write to one session: `rule` says what it becomes, or why not.
    async fn change(
        &self,
        id: SessionId,
        rule: impl FnOnce(&Session) -> Result<Session> + Send + 'static,
    ) -> Result<Session> {
        self.change_if(id, move |session| rule(session).map(Some))
            .await
    }

    /// As [`SqliteStore::change`], where the rule may leave the session as
    /// it is (`None`); returns the session as it is now.
    async fn change_if(
        &self,
        id: SessionId,
        rule: impl FnOnce(&Session) -> Result<Option<Session>> + Send + 'static,
    ) -> Result<Session> {
        self.writer
            .write(move |tx| {
                let session = session_in(tx, id)?;
                match rule(&session)? {
                    Some(changed) => write_session(tx, &session, changed),
                    None => Ok(session),
                }
            })
            .await
    }
}

/// Crash recovery of `node` in the writer's transaction: its running runs
/// are interrupted and its sessions recovered, as the domain says.
fn recover(
    tx: &mut Transaction<'_>,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    let mut recovered = Recovered::default();
    for run in running_runs_of_node(tx.conn, node)? {
        if let Some(interrupted) = run.interrupt(now) {
            write_run(tx.conn, &interrupted)?;
            recovered.runs += 1;
        }
    }
    for id in unended_clientless_of_node(tx.conn, node)? {
        let session = session_in(tx, id)?;
        if let Some(ended) = session.recover(reason, now) {
            write_session(tx, &session, ended)?;
            recovered.sessions += 1;
        }
    }
    Ok(recovered)
}
