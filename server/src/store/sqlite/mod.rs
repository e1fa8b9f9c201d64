//! The embedded SQLite store: one file in WAL mode, `synchronous = FULL`.
//!
//! Writes go through one connection owned by a writer thread that commits
//! concurrent writes together ([`writer`]: group commit, one fsync per
//! batch, each write acknowledged only after its batch committed), in
//! `BEGIN IMMEDIATE` transactions, so concurrent writers queue instead of
//! failing with "database is locked". Reads use separate query-only
//! connections that WAL runs beside the writer ([`Readers`]); session
//! records are also kept in memory ([`cache`]), exact because one process
//! owns the file ([`ownership`]). Both talk to SQLite directly
//! (`rusqlite`); migrations run through `sqlx`'s migrator when the store
//! opens.

mod backend;
mod cache;
mod codec;
mod events;
mod ownership;
mod rows;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection as _, SqliteConnection};

use self::cache::SessionCache;
use self::codec::store_error;
use self::ownership::Ownership;
use self::writer::Writer;
use crate::model::{Error, Result};

/// How many idle read connections are kept for reuse.
const IDLE_READERS: usize = 8;

/// How long a statement waits for a lock before the store reports itself
/// unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of the store ([`crate::store::Store`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The single writer, committing concurrent writes together: SQLite
    /// allows one writer at a time, and queueing beats retrying on
    /// SQLITE_BUSY.
    writer: Writer,
    /// Query-only connections for reads, which WAL runs concurrently.
    readers: Arc<Readers>,
    /// Session records, kept exact by the writer.
    cache: Arc<SessionCache>,
    /// Woken by the writer after each commit that wrote events.
    commits: Arc<crate::store::Commits>,
    /// This process's lock on the database, held while any clone lives.
    _ownership: Arc<Ownership>,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `path`.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the file cannot be opened or
    /// migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, true).await
    }

    /// [`SqliteStore::open`], recording the event log or not (see
    /// [`crate::store::open_with`]).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_with(path: impl AsRef<Path>, record_events: bool) -> Result<Self> {
        let cached = crate::known_sessions::DEFAULT_CACHED_SESSIONS;
        Self::open_caching(path, record_events, cached).await
    }

    /// [`SqliteStore::open_with`], keeping up to about `cached` session
    /// records (about 0.3 KiB each) in memory.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_caching(
        path: impl AsRef<Path>,
        record_events: bool,
        cached: usize,
    ) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let ownership = Ownership::take(&path).await?;
        migrate(&path).await?;
        let cache = Arc::new(SessionCache::new(cached));
        let commits = Arc::new(crate::store::Commits::default());
        let writer = Writer::start(
            connect(&path, Role::Writer)?,
            Arc::clone(&cache),
            Arc::clone(&commits),
            record_events,
        )?;
        let readers = Arc::new(Readers {
            idle: Mutex::new(vec![connect(&path, Role::Reader)?]),
            path,
        });
        Ok(Self {
            writer,
            readers,
            cache,
            commits,
            _ownership: Arc::new(ownership),
        })
    }
}

/// Creates the file if missing, turns WAL on (it stays on in the file) and
/// applies the migrations the database lacks.
async fn migrate(path: &Path) -> Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        // A migration may rebuild a table that others reference, which
        // SQLite allows only with foreign keys off; the writer turns them on.
        .foreign_keys(false);
    let unavailable = |e: sqlx::Error| Error::StoreUnavailable(Box::new(e));
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(unavailable)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut connection)
        .await
        .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
    connection.close().await.map_err(unavailable)
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The writer's: durable commits.
    Writer,
    /// A reader's: queries only.
    Reader,
}

/// Opens a connection to the migrated database at `path`.
fn connect(path: &Path, role: Role) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(store_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
    let pragmas = match role {
        // The writer's page cache: 16 MiB (SQLite's default is 2 MiB), so
        // that the B-tree pages every write touches stay in memory while
        // the tables grow; measured in notes/sqlite-write-path.md.
        Role::Writer => {
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;"
        }
        Role::Reader => "PRAGMA query_only = ON;",
    };
    connection.execute_batch(pragmas).map_err(store_error)?;
    Ok(connection)
}

/// The read connections: WAL lets each read beside the writer, seeing the
/// last committed state.
#[derive(Debug)]
struct Readers {
    /// The database file, for opening more connections.
    path: PathBuf,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Runs a lookup by key on the calling thread. Such a read takes
    /// microseconds (a few B-tree pages, cached), less than handing it to
    /// another thread would cost; reads never wait for the writer in WAL.
    fn lookup<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => connect(&self.path, Role::Reader)?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        result
    }

    /// Runs a read that may visit many rows on a blocking thread, off the
    /// async workers.
    async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.lookup(read))
            .await
            .map_err(|e| Error::Internal(format!("a read failed: {e}")))?
    }
}

/// The clientless sessions of node `?1` that are open and started before
/// `?2` or idle since `?3` without a running module (either may be NULL).
///
/// `s.state <> 'ended'` repeats what `s.state = 'open'` implies, because
/// SQLite uses the partial index `sessions_unended_by_owner` only for a
/// query that states its condition: without it, every run of the reaper
/// (every 5 s by default) read the whole table, every session that ever
/// existed.
pub(super) const EXPIRED_SESSIONS: &str = "SELECT s.session_id FROM sessions s \
     WHERE s.owner_node = ?1 AND s.kind = 'clientless' AND s.state <> 'ended' \
     AND s.state = 'open' \
     AND ((?2 IS NOT NULL AND s.start_time < ?2) \
       OR (?3 IS NOT NULL AND s.last_activity_time < ?3 AND NOT EXISTS \
           (SELECT 1 FROM module_runs r \
            WHERE r.session_id = s.session_id AND r.state = 'running')))";

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::model::{EndReason, NewSession, RunId, SessionId, SessionKind, SessionState};
    use crate::model::{Timestamp, UserId};
    use crate::store::{RunStore, SessionQuery, SessionStore};

    /// A database as the first three migrations left it, with an open
    /// session (a scope pushed, a run running), an ended one, and a third
    /// deleted so that the id counter is ahead of the rows.
    async fn database_before_migration_4(path: &Path) {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.migrations = migrator.migrations[..3].to_vec().into();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        migrator.run(&mut connection).await.unwrap();
        connection.close().await.unwrap();
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
               last_activity_time, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000001', 'R41', 'clientless', 'open', \
               1, 1, 'R42', 'a'); \
             INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, end_time, \
               last_activity_time, end_reason, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000002', 'R41', 'interactive', 'ended', \
               1, 2, 2, 'idle_timeout', 'R41', 'a'); \
             INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
               last_activity_time, effective_user, owner_node) \
             VALUES ('0190a0b0-0000-7000-8000-000000000003', 'R43', 'clientless', 'open', \
               1, 1, 'R43', 'a'); \
             DELETE FROM sessions WHERE session_id = 3; \
             INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, \
               pushed_at) VALUES (1, 1, 'R42', 'R41', 1); \
             INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
               start_time) VALUES (1, '100000', 'R42', '{}', 'running', 1);",
        )
        .unwrap();
    }

    /// A new clientless session of `R41`, who may have two open, at `now`.
    fn limited_session_of_r41(now: i64) -> NewSession {
        NewSession {
            uuid: uuid::Uuid::now_v7(),
            user: UserId::from_store("R41".to_owned()),
            kind: SessionKind::Clientless,
            client: crate::model::ClientDescription::default(),
            now: Timestamp::from_unix_micros(now),
            owner_node: "a".to_owned(),
            max_open_per_user: Some(2),
        }
    }

    #[tokio::test]
    async fn the_reapers_query_reads_only_sessions_that_have_not_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let conn = Connection::open(&path).unwrap();
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EXPIRED_SESSIONS}"))
            .unwrap();
        let steps: Vec<String> = plan
            .query_map(params!["a", 1, 1], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(
            steps
                .iter()
                .any(|step| step.contains("USING INDEX sessions_unended_by_owner")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN s")),
            "{steps:?}"
        );
        drop(store);
    }

    #[tokio::test]
    async fn migration_4_keeps_every_record_and_id_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        database_before_migration_4(&path).await;
        let store = SqliteStore::open(&path).await.unwrap();

        let open = store.session(SessionId::from_store(1)).await.unwrap();
        assert_eq!(open.state, SessionState::Open);
        assert_eq!(open.effective_user.as_str(), "R42");
        assert_eq!(open.user_context_depth, 1);
        let ended = store.session(SessionId::from_store(2)).await.unwrap();
        assert_eq!(ended.end_reason, Some(EndReason::IdleTimeout));
        let run = store.run(RunId::from_store(1)).await.unwrap();
        assert_eq!((run.session_id, run.outcome), (open.id, None));

        let listed = store
            .list_sessions(&SessionQuery {
                user: Some(UserId::from_store("R41".to_owned())),
                limit: 10,
                ..SessionQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            listed.iter().map(|s| s.id.get()).collect::<Vec<_>>(),
            [1, 2]
        );

        // The deleted session's id is not handed out again.
        let created = store
            .create_session(limited_session_of_r41(3))
            .await
            .unwrap();
        assert_eq!(created.id.get(), 4);
        // The per-user limit still counts the user's open sessions.
        let refused = store.create_session(limited_session_of_r41(4)).await;
        assert!(matches!(
            refused,
            Err(Error::TooManySessions { limit: 2, .. })
        ));
    }

    #[tokio::test]
    async fn checks_and_foreign_keys_still_hold_after_migration_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.db");
        database_before_migration_4(&path).await;
        drop(SqliteStore::open(&path).await.unwrap());
        let conn = connect(&path, Role::Writer).unwrap();
        let bad_state = conn.execute(
            "UPDATE sessions SET state = 'gone' WHERE session_id = 1",
            [],
        );
        assert!(bad_state.is_err(), "{bad_state:?}");
        let bad_run = conn.execute(
            "INSERT INTO module_runs (session_id, module_id, acting_user, parameters, state, \
             start_time) VALUES (99, 'm', 'R41', '{}', 'running', 1)",
            [],
        );
        assert!(bad_run.is_err(), "{bad_run:?}");
        let problems: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(problems, 0);
    }
}
