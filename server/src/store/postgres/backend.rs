//! [`Backend`] on PostgreSQL: each write is one transaction on a pooled
//! connection; opens and ends that arrive together share one
//! ([`super::group_commit`]).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::codec::{kind_name, session_from_row, store_error, text};
use super::rows::{PgTx, fetch_run, fetch_session, latest_run};
use super::{PostgresStore, events, stopping};
use crate::events::Cause;
use crate::model::{
    Error, Expiry, ModuleId, ModuleRun, NewSession, Result, RunId, Session, SessionFacts,
    SessionId, Timestamp, UserId,
};
use crate::store::names::{parse_kind, state_slots};
use crate::store::{Backend, End, EventQuery, LedgerHead, Operation, SessionQuery, StoredEvent};

#[async_trait]
impl Backend for PostgresStore {
    async fn write<R: Send + 'static>(&self, op: Operation<R>) -> Result<R> {
        self.commits.note(self.write_once(op).await)
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        events::read_events(&self.pool, query).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        events::read_head(&mut conn).await
    }

    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)> {
        events::unended_at_head(&self.pool, query).await
    }

    fn commits(&self) -> Arc<crate::store::Commits> {
        Arc::clone(&self.commits)
    }

    async fn create_session(&self, new: NewSession) -> Result<Session> {
        let id = self
            .opens
            .submit((new.clone(), Cause::current()))
            .await
            .unwrap_or_else(|| Err(stopping()));
        let id = self.commits.note(id)?;
        Ok(new.into_session(id))
    }

    async fn end_session(&self, end: End) -> Result<Session> {
        let ended = self
            .ends
            .submit((end, Cause::current()))
            .await
            .unwrap_or_else(|| Err(stopping()));
        self.commits.note(ended)
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
        let [open, closing, ended] = state_slots(query);
        // A user's sessions come from the index by user, in id order.
        macro_rules! listed {
            ($user:literal, $order:literal) => {
                select_session!(
                    "WHERE ",
                    $user,
                    " AND ($2::text IS NULL OR s.kind = $2) \
                     AND s.state IN ($3::text, $6::text, $7::text) \
                     AND ($8::bigint IS NULL OR s.start_time >= $8) \
                     AND ($9::bigint IS NULL OR s.start_time < $9) AND ",
                    $order,
                    " LIMIT $5"
                )
            };
        }
        let sql = match (query.user.is_some(), query.newest_first) {
            (true, false) => listed!("s.user_id = $1", "s.session_id > $4 ORDER BY s.session_id"),
            (true, true) => listed!(
                "s.user_id = $1",
                "s.session_id < $4 ORDER BY s.session_id DESC"
            ),
            (false, false) => listed!(
                "$1::text IS NULL",
                "s.session_id > $4 ORDER BY s.session_id"
            ),
            (false, true) => listed!(
                "$1::text IS NULL",
                "s.session_id < $4 ORDER BY s.session_id DESC"
            ),
        };
        let rows = sqlx::query(sql)
            .bind(query.user.as_ref().map(UserId::as_str))
            .bind(query.kind.map(kind_name))
            .bind(open)
            .bind(query.start_beyond())
            .bind(i64::from(query.limit))
            .bind(closing)
            .bind(ended)
            .bind(query.started_after.map(Timestamp::unix_micros))
            .bind(query.started_before.map(Timestamp::unix_micros))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(session_from_row).collect()
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

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        fetch_run(&mut conn, run_id).await
    }

    async fn latest_run(
        &self,
        session_id: SessionId,
        module: &ModuleId,
    ) -> Result<Option<ModuleRun>> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        latest_run(&mut conn, session_id, module).await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT endpoint FROM nodes WHERE node_id = $1 AND lease_expires > $2")
            .bind(text(node))
            .bind(now.unix_micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn stats(&self) -> Result<crate::store::StoreStats> {
        // One snapshot for the three reads.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM sessions WHERE state <> 'ended' GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let leases: Vec<(String, i64)> =
            sqlx::query_as("SELECT node_id, lease_expires FROM nodes ORDER BY node_id")
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
        let revision = events::read_head(&mut tx).await?.head.revision;
        tx.commit().await.map_err(store_error)?;
        Ok(crate::store::StoreStats {
            unended_sessions: counts
                .into_iter()
                .map(|(kind, n)| Ok((parse_kind(&kind)?, u64::try_from(n).unwrap_or(0))))
                .collect::<Result<_>>()?,
            leases: leases
                .into_iter()
                .map(|(node, expires)| (node, Timestamp::from_unix_micros(expires)))
                .collect(),
            revision,
        })
    }
}

impl PostgresStore {
    /// [`Backend::write`], before what its answer says of the store is
    /// noted.
    async fn write_once<R: Send + 'static>(&self, op: Operation<R>) -> Result<R> {
        // READ COMMITTED: each statement sees what committed before it
        // started, which is what locking first relies on.
        let cause = Cause::current();
        let began = Instant::now();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let mut write = PgTx::new(&mut tx, cause);
        let result = op(&mut write).await?;
        let head = if self.record_events {
            write.append_events().await?
        } else {
            None
        };
        let changes = std::mem::take(&mut write.2);
        if let Err(error) = tx.commit().await {
            // Only what settles as committed is not a failure: an unknown
            // outcome stays STORE_UNAVAILABLE (see RELIABILITY.md).
            let error = store_error(error);
            match head {
                Some(head) if events::settle_commit(&self.pool, &head).await == Some(true) => {}
                _ => return Err(error),
            }
        }
        self.commits.committed(&changes, 1, began.elapsed());
        Ok(result)
    }
}
