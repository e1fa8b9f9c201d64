//! The store traits on PostgreSQL. Each write is one transaction of one
//! shape: lock and read what the rule depends on, ask the domain, write its
//! answer, commit. Opens and ends go through their group commit.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::codec::{kind_name, session_from_row, state_name, store_error, text};
use super::group_commit::End;
use super::rows::{
    delete_node, delete_scope, fetch_run, fetch_session, has_running_run, insert_run, insert_scope,
    latest_run, lock_session, lock_unended_clientless_of_node, renew_node, running_runs_of_node,
    scopes, write_run, write_session,
};
use super::{PostgresStore, stopping};
use crate::model::{
    EndReason, Error, Expiry, ModuleId, ModuleRun, NewSession, PoppedScope, PushedScope, Result,
    RunId, RunOutcome, ScopeId, Session, SessionFacts, SessionId, Timestamp, UserContext, UserId,
};
use crate::store::{
    NodeStore, Recovered, RunStore, ScopeStore, SessionQuery, SessionStore, StartedRun,
};

#[async_trait]
impl SessionStore for PostgresStore {
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
        self.change_if(id, |session| session.touch(now).map(Some))
            .await
    }

    async fn begin_closing(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.change_if(id, |session| session.begin_closing(now))
            .await
    }

    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.end(id, reason, now, true).await
    }

    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.end(id, reason, now, false).await
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
        let running = has_running_run(&mut tx, id).await?;
        let Some((reason, closing)) = expiry.close(&session, running) else {
            return Ok(None);
        };
        write_session(&mut tx, &session, &closing).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(reason))
    }
}

#[async_trait]
impl ScopeStore for PostgresStore {
    async fn user_context(&self, id: SessionId) -> Result<UserContext> {
        self.session(id).await?.user_context()
    }

    async fn set_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserId> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        let changed = session.set_user_context(user, now)?;
        write_session(&mut tx, &session, &changed).await?;
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
        let session = lock_session(&mut tx, id).await?;
        let (scope, pushed) = session.push_user_context(user, now)?;
        let scope_id = insert_scope(&mut tx, &scope).await?;
        write_session(&mut tx, &session, &pushed).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(PushedScope {
            scope_id,
            previous_user: scope.previous_user,
            depth: scope.depth,
        })
    }

    async fn pop_user_context(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<PoppedScope> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        let stack = scopes(&mut tx, id).await?;
        let (popped, restored) = session.pop_user_context(&stack, scope, now)?;
        delete_scope(&mut tx, scope).await?;
        write_session(&mut tx, &session, &restored).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(popped)
    }
}

#[async_trait]
impl RunStore for PostgresStore {
    async fn start_run(
        &self,
        session_id: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<StartedRun> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, session_id).await?;
        let (run, active) = session.start_run(module.clone(), parameters.clone(), now)?;
        let id = insert_run(&mut tx, &run).await?;
        write_session(&mut tx, &session, &active).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(StartedRun {
            run: run.into_run(id),
            session: active,
        })
    }

    async fn finish_run(
        &self,
        run_id: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun> {
        let mut tx = self.begin().await?;
        // The session first, as every writer locks: a run's session never
        // changes, so reading it unlocked is safe.
        let session_id = fetch_run(&mut tx, run_id).await?.session_id;
        let session = lock_session(&mut tx, session_id).await?;
        let run = fetch_run(&mut tx, run_id).await?;
        let Some(concluded) = run.conclude(outcome.clone(), now) else {
            return Ok(run);
        };
        write_run(&mut tx, &concluded).await?;
        write_session(&mut tx, &session, &session.touched(now)).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(concluded)
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        fetch_run(&mut conn, run_id).await
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        match latest_run(&mut conn, session_id, module).await? {
            Some(run) => Ok(run),
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
}

#[async_trait]
impl NodeStore for PostgresStore {
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        renew_node(&self.pool, node, endpoint, expires).await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT endpoint FROM nodes WHERE node_id = $1 AND lease_expires > $2")
            .bind(text(node))
            .bind(now.unix_micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)
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
            delete_node(&mut *tx, &node).await?;
            tx.commit().await.map_err(store_error)?;
            taken.push((node, recovered));
        }
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        delete_node(&self.pool, node).await
    }
}

impl PostgresStore {
    /// One write to one session in its own transaction: `rule` says what it
    /// becomes (`None`: it stays as it is), or why not. Returns the session
    /// as it is now.
    async fn change_if(
        &self,
        id: SessionId,
        rule: impl FnOnce(&Session) -> Result<Option<Session>> + Send,
    ) -> Result<Session> {
        let mut tx = self.begin().await?;
        let session = lock_session(&mut tx, id).await?;
        let Some(changed) = rule(&session)? else {
            return Ok(session);
        };
        write_session(&mut tx, &session, &changed).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(changed)
    }

    /// Ends a session, with the other ends that arrive at the same time.
    async fn end(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
        clientless_only: bool,
    ) -> Result<Session> {
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

/// Crash recovery of `node` inside a transaction: locks its clientless
/// sessions that have not ended (so that no run starts or concludes in
/// between), interrupts their running runs and recovers the sessions, as
/// the domain says.
async fn recover(
    conn: &mut PgConnection,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    let sessions = lock_unended_clientless_of_node(conn, node).await?;
    let mut recovered = Recovered::default();
    for run in running_runs_of_node(conn, node).await? {
        if let Some(interrupted) = run.interrupt(now) {
            write_run(conn, &interrupted).await?;
            recovered.runs += 1;
        }
    }
    for session in sessions {
        if let Some(ended) = session.recover(reason, now) {
            write_session(conn, &session, &ended).await?;
            recovered.sessions += 1;
        }
    }
    Ok(recovered)
}
