//! [`Backend`] on SQLite: each write runs as one operation of the writer's
//! batch ([`super::writer`]); reads run on the read connections, sessions
//! from memory when the cache has them.

use std::sync::Arc;

use async_trait::async_trait;

use super::codec::{column, kind_name, query_all, query_one, session_from_row};
use super::rows::{
    SqliteTx, fetch_facts, fetch_run, fetch_session, latest_run, select_session,
    unended_clientless_of_node,
};
use super::{EXPIRED_SESSIONS, SqliteStore, events};
use crate::events::Cause;
use crate::model::{
    Expiry, ModuleId, ModuleRun, Result, RunId, Session, SessionFacts, SessionId, Timestamp, UserId,
};
use crate::store::names::{parse_kind, state_slots};
use crate::store::{Backend, EventQuery, LedgerHead, Operation, SessionQuery, StoredEvent};

#[async_trait]
impl Backend for SqliteStore {
    async fn write<R: Send + 'static>(&self, op: Operation<R>) -> Result<R> {
        // The operation's primitives never wait (SQLite answers on this
        // thread), so its future completes in one poll on the writer.
        let cause = Cause::current();
        self.writer
            .write(move |tx| futures::executor::block_on(op(&mut SqliteTx(tx, cause))))
            .await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        let query = query.clone();
        self.readers
            .scan(move |conn| events::read_events(conn, &query))
            .await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        self.readers.lookup(events::read_head)
    }

    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)> {
        let query = query.clone();
        self.readers
            .scan(move |conn| events::unended_at_head(conn, &query))
            .await
    }

    fn commits(&self) -> Arc<crate::store::Commits> {
        Arc::clone(&self.commits)
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
        let [open, closing, ended] = state_slots(&query);
        // A user's sessions come from the index by user, in id order.
        macro_rules! listed {
            ($user:literal, $order:literal) => {
                select_session!(
                    "WHERE ",
                    $user,
                    " AND (?2 IS NULL OR s.kind = ?2) AND s.state IN (?3, ?6, ?7) \
                     AND (?8 IS NULL OR s.start_time >= ?8) \
                     AND (?9 IS NULL OR s.start_time < ?9) AND ",
                    $order,
                    " LIMIT ?5"
                )
            };
        }
        let sql = match (query.user.is_some(), query.newest_first) {
            (true, false) => listed!("s.user_id = ?1", "s.session_id > ?4 ORDER BY s.session_id"),
            (true, true) => listed!(
                "s.user_id = ?1",
                "s.session_id < ?4 ORDER BY s.session_id DESC"
            ),
            (false, false) => listed!("?1 IS NULL", "s.session_id > ?4 ORDER BY s.session_id"),
            (false, true) => listed!("?1 IS NULL", "s.session_id < ?4 ORDER BY s.session_id DESC"),
        };
        self.readers
            .scan(move |conn| {
                query_all(
                    conn,
                    sql,
                    rusqlite::params![
                        query.user.as_ref().map(UserId::as_str),
                        query.kind.map(kind_name),
                        open,
                        query.start_beyond(),
                        i64::from(query.limit),
                        closing,
                        ended,
                        query.started_after.map(Timestamp::unix_micros),
                        query.started_before.map(Timestamp::unix_micros),
                    ],
                    session_from_row,
                )
            })
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

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        self.readers.lookup(|conn| fetch_run(conn, run_id))
    }

    async fn latest_run(
        &self,
        session_id: SessionId,
        module: &ModuleId,
    ) -> Result<Option<ModuleRun>> {
        self.readers
            .lookup(|conn| latest_run(conn, session_id, module))
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        self.readers.lookup(|conn| {
            query_one(
                conn,
                "SELECT endpoint FROM nodes WHERE node_id = ? AND lease_expires > ?",
                rusqlite::params![node, now.unix_micros()],
                |row| column(row, "endpoint"),
            )
        })
    }

    async fn stats(&self) -> Result<crate::store::StoreStats> {
        self.readers.scan(read_stats).await
    }
}

/// [`Backend::stats`], in one read transaction.
fn read_stats(conn: &rusqlite::Connection) -> Result<crate::store::StoreStats> {
    let unended_sessions = query_all(
        conn,
        "SELECT kind, COUNT(*) AS n FROM sessions WHERE state <> 'ended' GROUP BY kind \
         ORDER BY kind",
        [],
        |row| {
            let kind: String = column(row, "kind")?;
            let count: i64 = column(row, "n")?;
            Ok((parse_kind(&kind)?, u64::try_from(count).unwrap_or(0)))
        },
    )?;
    let leases = query_all(
        conn,
        "SELECT node_id, lease_expires FROM nodes ORDER BY node_id",
        [],
        |row| {
            Ok((
                column(row, "node_id")?,
                Timestamp::from_unix_micros(column(row, "lease_expires")?),
            ))
        },
    )?;
    let revision = events::read_head(conn)?.head.revision;
    Ok(crate::store::StoreStats {
        unended_sessions,
        leases,
        revision,
    })
}
