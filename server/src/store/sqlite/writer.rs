//! Group commit: one writer thread owns the write connection and commits
//! concurrent writes together.
//!
//! Each write is an operation on the connection. The writer takes every
//! operation that is queued (up to [`MAX_BATCH`]), runs them inside one
//! `BEGIN IMMEDIATE` transaction — an operation that fails its
//! preconditions fails alone ([`commit_batch`] says when one takes the
//! batch with it) — and commits once:
//! one fsync for the whole batch. Each caller gets its result only after
//! that commit, so a write is still acknowledged only once it is durable;
//! if the commit fails, every operation of the batch fails with it.
//!
//! The writer is a plain thread calling SQLite directly: a batch costs its
//! statements and one fsync, with no hand-off between threads per
//! statement, and the async callers only wait on a channel. After a commit
//! it applies the sessions the batch changed to the store's
//! [`SessionCache`], before replying to anyone.
//!
//! The events the batch's operations recorded are sealed (given their
//! revisions and hashes, after the head of the log, which the writer keeps
//! in memory: it is the only writer) and written just before the commit,
//! in the same transaction; after the commit the store's `commits` are
//! woken.
//!
//! An operation reads the sessions it checks through its [`Transaction`],
//! which answers from memory when it can: from the records the batch's
//! earlier operations wrote or read (not committed yet, so kept apart and
//! dropped with the batch), else from the [`SessionCache`], which holds
//! committed records only. Both are exact for the transaction, so a write's
//! preconditions cost no query in the common case.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::cache::SessionCache;
use super::codec::execute;
use crate::model::{Error, Result};
use crate::model::{Session, SessionId};
use crate::store::Commits;
use crate::store::ledger::{self, Head, Pending};

/// The most operations committed together.
pub const MAX_BATCH: usize = 256;

/// How many operations may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

/// An operation on the write connection, run inside the batch's
/// transaction; it tells its [`Transaction`] what it did to sessions.
pub type Operation<T> = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<T> + Send>;

/// What an operation works with: the write connection inside the batch's
/// transaction, and the session records as that transaction sees them.
#[derive(Debug)]
pub struct Transaction<'a> {
    /// The write connection, inside the batch's transaction.
    pub conn: &'a mut Connection,
    /// What the batch's earlier operations wrote or read.
    batch: &'a mut BatchRecords,
    /// The committed records.
    cache: &'a SessionCache,
    /// The sessions this operation changed, as they are now, in order.
    changes: Vec<Session>,
    /// The batch's events so far, this operation's last; `None` when the
    /// log is off. (One vector for the whole batch, kept from batch to
    /// batch: the writer allocates no vector of events per operation.)
    events: Option<&'a mut Vec<Pending>>,
}

impl Transaction<'_> {
    /// The record of session `id` as this transaction sees it, when it is
    /// in memory; `None` means it must be read from the database (and then
    /// handed to [`Transaction::read`]).
    pub fn known_session(&self, id: SessionId) -> Option<Session> {
        if let Some(session) = self.changes.iter().rev().find(|s| s.id == id) {
            return Some(session.clone());
        }
        self.batch.get(id, self.cache)
    }

    /// Keeps `session`, just read from the database in this transaction,
    /// for the batch's later operations.
    pub fn read(&mut self, session: Session) {
        self.batch.records.insert(session.id, session);
    }

    /// Records `event` for the event log, written with the batch.
    pub fn record(&mut self, event: Pending) {
        if let Some(events) = &mut self.events {
            events.push(event);
        }
    }

    /// Records that this operation changed a session, whose record is now
    /// `session`; returns it.
    pub fn changed(&mut self, session: Session) -> Session {
        self.changes.push(session.clone());
        session
    }
}

/// The session records of a batch so far: written or read by its
/// operations, not committed yet.
#[derive(Debug, Default)]
struct BatchRecords {
    /// Records by session.
    records: HashMap<SessionId, Session>,
}

impl BatchRecords {
    /// The record of `id` as the batch sees it, if in memory.
    fn get(&self, id: SessionId, cache: &SessionCache) -> Option<Session> {
        match self.records.get(&id) {
            Some(session) => Some(session.clone()),
            None => cache.get(id),
        }
    }

    /// Takes in the changes of an operation that succeeded.
    fn apply(&mut self, changes: &[Session]) {
        for session in changes {
            self.records.insert(session.id, session.clone());
        }
    }
}

/// The handle through which writes reach the writer thread. Cheap to clone;
/// the thread ends (and closes the connection) once every handle is gone.
#[derive(Clone, Debug)]
pub struct Writer {
    /// The writer thread's queue.
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `connection`, keeping `cache` up to
    /// date.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the thread cannot be started.
    pub fn start(
        mut connection: Connection,
        cache: Arc<SessionCache>,
        commits: Arc<Commits>,
        record_events: bool,
    ) -> Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let head = read_head(&connection)?;
        std::thread::Builder::new()
            .name("sessiond-sqlite-writer".to_owned())
            .spawn(move || {
                let mut log = Log {
                    head,
                    commits,
                    record_events,
                };
                write_batches(&mut connection, &cache, &mut log, queue);
            })
            .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
        Ok(Self { jobs })
    }

    /// Runs `operation` in the next batch and returns its result once the
    /// batch is committed.
    ///
    /// # Errors
    /// The operation's own error (its changes are rolled back), or
    /// [`Error::StoreUnavailable`] when the batch could not be committed.
    pub async fn write<T, F>(&self, operation: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = TypedJob {
            operation: Some(Box::new(operation) as Operation<T>),
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .await
            .map_err(|_| unavailable("the writer has stopped"))?;
        result
            .await
            .map_err(|_| unavailable("the writer stopped before replying"))?
    }
}

/// One queued write, its result type erased.
trait Job: Send + std::fmt::Debug {
    /// Runs the operation in `transaction`; true when it succeeded, and then
    /// its changes are added to `changes` (its events stay in the batch's;
    /// a failed operation's are dropped).
    fn run(&mut self, transaction: Transaction<'_>, changes: &mut Vec<Session>) -> bool;
    /// Replies: the operation's result if `committed` is `Ok`, its error
    /// otherwise.
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct TypedJob<T> {
    operation: Option<Operation<T>>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T> std::fmt::Debug for TypedJob<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedJob").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Job for TypedJob<T> {
    fn run(&mut self, mut transaction: Transaction<'_>, changes: &mut Vec<Session>) -> bool {
        let Some(operation) = self.operation.take() else {
            return false;
        };
        let mark = transaction.events.as_ref().map_or(0, |events| events.len());
        // A panicking operation fails alone (its result stays unset) and
        // leaves the writer running for the others.
        let result = catch_unwind(AssertUnwindSafe(|| operation(&mut transaction))).ok();
        let ok = matches!(result, Some(Ok(_)));
        if ok {
            transaction.batch.apply(&transaction.changes);
            changes.append(&mut transaction.changes);
        } else if let Some(events) = &mut transaction.events {
            events.truncate(mark);
        }
        self.result = result;
        ok
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let reply = match (committed, self.result) {
            // A failed operation's error stands whatever the batch did.
            (_, Some(Err(error))) => Err(error),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => Err(Error::Internal("a write failed unexpectedly".to_owned())),
            (Err(reason), _) => Err(unavailable(&reason)),
        };
        // The caller may have stopped waiting; the write stands regardless.
        let _ = self.reply.send(reply);
    }
}

/// The event log as the writer keeps it.
#[derive(Debug)]
struct Log {
    /// The last event committed.
    head: Head,
    /// Woken after each commit that wrote events.
    commits: Arc<Commits>,
    /// Whether events are written at all.
    record_events: bool,
}

/// The head of the log as the database has it.
fn read_head(connection: &Connection) -> Result<Head> {
    let (revision, hash): (i64, Vec<u8>) = connection
        .query_row(
            "SELECT revision, hash FROM event_head WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| Error::StoreUnavailable(Box::new(e)))?;
    Ok(Head {
        revision,
        hash: ledger::hash_of(&hash)?,
    })
}

/// The writer thread: batches until every handle is dropped.
fn write_batches(
    connection: &mut Connection,
    cache: &SessionCache,
    log: &mut Log,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut changes = Vec::new();
    let mut events = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let head = log.head;
        let began = Instant::now();
        let log_slot = log.record_events.then_some((&mut log.head, &mut events));
        let rows_before = connection.total_changes();
        let committed = commit_batch(connection, cache, &mut batch, &mut changes, log_slot);
        let took = began.elapsed();
        let writes = batch.len();
        match &committed {
            Ok(()) => {
                cache.apply(changes.drain(..));
                log.commits.wake(&events);
                // A batch whose writes were all refused wrote nothing and
                // says nothing of the disk.
                if connection.total_changes() != rows_before {
                    log.commits.write_committed();
                }
            }
            Err(reason) => {
                changes.clear();
                events.clear();
                log.head = head;
                tracing::error!(error = %reason, writes, "a write batch failed");
                log.commits.write_failed();
                super::wal::after_failed_batch(connection);
            }
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
        // After the answers: what logs and metrics learn of the batch does
        // not delay them.
        if committed.is_ok() {
            log.commits.report(&events, writes, took);
        }
        events.clear();
    }
}

/// Runs `batch` in one transaction.
///
/// An operation that fails before changing anything (a precondition: the
/// common case) fails alone; SQLite already undid its failing statement.
/// One that fails after changing rows, or that made SQLite abandon the
/// transaction (I/O error, disk full), takes the whole batch down with it:
/// the transaction is rolled back and every operation of the batch fails,
/// so nothing half-done is ever committed. That costs nothing per
/// operation, where a savepoint each would.
fn commit_batch(
    connection: &mut Connection,
    cache: &SessionCache,
    batch: &mut [Box<dyn Job>],
    changes: &mut Vec<Session>,
    log: Option<(&mut Head, &mut Vec<Pending>)>,
) -> std::result::Result<(), String> {
    // The batch's own records: they live as long as its transaction.
    let mut records = BatchRecords::default();
    let (head, mut events) = log.unzip();
    run(connection, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let before = connection.total_changes();
        let transaction = Transaction {
            conn: &mut *connection,
            batch: &mut records,
            cache,
            changes: Vec::new(),
            events: events.as_deref_mut(),
        };
        if job.run(transaction, changes) {
            continue;
        }
        if connection.is_autocommit() {
            return Err("SQLite abandoned the transaction after a failed write".to_owned());
        }
        if connection.total_changes() != before {
            let _ = run(connection, "ROLLBACK");
            return Err("a write failed after changing rows; its batch was rolled back".to_owned());
        }
    }
    if let (Some(head), Some(events)) = (head, events)
        && !events.is_empty()
        && let Err(error) = append(connection, head, events)
    {
        let _ = run(connection, "ROLLBACK");
        return Err(format!("the batch's events could not be written: {error}"));
    }
    if let Err(reason) = run(connection, "COMMIT") {
        if !connection.is_autocommit() {
            let _ = run(connection, "ROLLBACK");
        }
        return Err(reason);
    }
    Ok(())
}

/// Seals `events` after `head` and writes them and the new head.
fn append(connection: &Connection, head: &mut Head, events: &[Pending]) -> rusqlite::Result<()> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO events \
         (revision, time, kind, session_id, user_id, subject, body, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for event in ledger::seal(head, events) {
        insert.execute(rusqlite::params![
            event.revision,
            event.time,
            event.kind,
            event.session_id,
            event.user,
            event.subject,
            event.body,
            event.prev_hash,
            event.hash,
        ])?;
    }
    connection
        .prepare_cached("UPDATE event_head SET revision = ?1, hash = ?2 WHERE id = 1")?
        .execute(rusqlite::params![head.revision, head.hash])?;
    Ok(())
}

fn run(connection: &Connection, sql: &'static str) -> std::result::Result<(), String> {
    execute(connection, sql, [])
        .map(drop)
        .map_err(|e| e.to_string())
}

fn unavailable(reason: &str) -> Error {
    Error::StoreUnavailable(reason.to_owned().into())
}

#[cfg(test)]
mod tests {
    use super::super::cache::tests::session;
    use super::*;
    use crate::model::SessionState;

    /// A queued write of `operation`, and where its reply arrives.
    fn job<T: Send + 'static>(
        operation: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<T>>) {
        let (reply, result) = oneshot::channel();
        let job = TypedJob {
            operation: Some(Box::new(operation) as Operation<T>),
            result: None,
            reply,
        };
        (Box::new(job), result)
    }

    fn insert(connection: &Connection, x: i64) -> Result<()> {
        execute(connection, "INSERT INTO t (x) VALUES (?)", [x]).map(drop)
    }

    fn table() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        connection
    }

    fn rows(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    /// A cache holding the committed records of sessions `ids`, open.
    fn cache_of(ids: &[i64]) -> SessionCache {
        let cache = SessionCache::new(16);
        cache.apply(ids.iter().map(|&id| session(id)));
        cache
    }

    /// Runs `jobs` as one batch over `cache` and replies to each; returns
    /// the changes it committed.
    fn commit_over(
        connection: &mut Connection,
        cache: &SessionCache,
        jobs: Vec<Box<dyn Job>>,
    ) -> Vec<Session> {
        let mut batch = jobs;
        let mut changes = Vec::new();
        let committed = commit_batch(connection, cache, &mut batch, &mut changes, None);
        for job in batch {
            job.finish(committed.clone());
        }
        if committed.is_err() {
            changes.clear();
        }
        changes
    }

    /// Runs `jobs` as one batch and replies to each.
    fn commit(connection: &mut Connection, jobs: Vec<Box<dyn Job>>) {
        commit_over(connection, &SessionCache::new(16), jobs);
    }

    /// A write that reads session `id` as its transaction sees it.
    fn look_up(id: i64) -> (Box<dyn Job>, oneshot::Receiver<Result<Option<Session>>>) {
        job(move |tx| Ok(tx.known_session(SessionId::from_store(id))))
    }

    /// A write that inserts a row and records session `id` as closing.
    fn close(id: i64) -> (Box<dyn Job>, oneshot::Receiver<Result<()>>) {
        job(move |tx| {
            insert(tx.conn, id)?;
            tx.changed(Session {
                state: SessionState::Closing,
                ..session(id)
            });
            Ok(())
        })
    }

    fn state(result: oneshot::Receiver<Result<Option<Session>>>) -> Option<SessionState> {
        result
            .blocking_recv()
            .unwrap()
            .unwrap()
            .map(|session| session.state)
    }

    #[test]
    fn a_write_sees_what_earlier_writes_of_its_batch_did_and_the_cache_does_not() {
        let mut connection = table();
        let cache = cache_of(&[1, 2]);
        let (before, before_result) = look_up(1);
        let (closing, _) = close(1);
        let (after, after_result) = look_up(1);
        let (other, other_result) = look_up(2);
        let (unknown, unknown_result) = look_up(3);
        let changes = commit_over(
            &mut connection,
            &cache,
            vec![before, closing, after, other, unknown],
        );
        assert_eq!(state(before_result), Some(SessionState::Open));
        assert_eq!(state(after_result), Some(SessionState::Closing));
        assert_eq!(
            state(other_result),
            Some(SessionState::Open),
            "from the cache"
        );
        assert_eq!(state(unknown_result), None, "to be read from the database");
        assert!(matches!(
            changes.as_slice(),
            [s] if s.state == SessionState::Closing
        ));
        assert_eq!(
            cache.get(SessionId::from_store(1)).unwrap().state,
            SessionState::Open,
            "the cache holds committed records only; the writer thread applies the batch"
        );
    }

    #[test]
    fn what_a_refused_write_recorded_is_not_seen_by_the_rest_of_its_batch() {
        let mut connection = table();
        let cache = cache_of(&[1]);
        let (refused, refused_result) = job(|tx| -> Result<()> {
            tx.changed(Session {
                state: SessionState::Ended,
                ..session(1)
            });
            Err(Error::Internal("refused".to_owned()))
        });
        let (after, after_result) = look_up(1);
        let changes = commit_over(&mut connection, &cache, vec![refused, after]);
        assert!(refused_result.blocking_recv().unwrap().is_err());
        assert_eq!(state(after_result), Some(SessionState::Open));
        assert!(changes.is_empty());
    }

    #[test]
    fn a_batch_rolled_back_leaves_nothing_for_the_next() {
        let mut connection = table();
        let cache = cache_of(&[1]);
        let (closing, closing_result) = close(1);
        let (halfway, _) = job(|tx| -> Result<()> {
            insert(tx.conn, 2)?;
            Err(Error::Internal("halfway".to_owned()))
        });
        let changes = commit_over(&mut connection, &cache, vec![closing, halfway]);
        assert!(changes.is_empty());
        assert!(closing_result.blocking_recv().unwrap().is_err());
        let (next, next_result) = look_up(1);
        commit_over(&mut connection, &cache, vec![next]);
        assert_eq!(state(next_result), Some(SessionState::Open));
    }

    #[test]
    fn a_write_failing_its_checks_fails_alone() {
        let mut connection = table();
        let (first, first_result) = job(|tx| insert(tx.conn, 1));
        let (refused, refused_result) =
            job(|_| -> Result<()> { Err(Error::Internal("refused".to_owned())) });
        let (last, last_result) = job(|tx| insert(tx.conn, 2));
        commit(&mut connection, vec![first, refused, last]);
        assert!(first_result.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            refused_result.blocking_recv().unwrap(),
            Err(Error::Internal(message)) if message == "refused"
        ));
        assert!(last_result.blocking_recv().unwrap().is_ok());
        assert_eq!(rows(&connection), 2);
    }

    #[test]
    fn a_write_failing_halfway_fails_its_whole_batch() {
        let mut connection = table();
        let (first, first_result) = job(|tx| insert(tx.conn, 1));
        let (halfway, halfway_result) = job(|tx| -> Result<()> {
            insert(tx.conn, 2)?;
            Err(Error::Internal("halfway".to_owned()))
        });
        let (last, last_result) = job(|tx| insert(tx.conn, 3));
        commit(&mut connection, vec![first, halfway, last]);
        assert!(matches!(
            first_result.blocking_recv().unwrap(),
            Err(Error::StoreUnavailable(_))
        ));
        assert!(matches!(
            halfway_result.blocking_recv().unwrap(),
            Err(Error::Internal(message)) if message == "halfway"
        ));
        assert!(matches!(
            last_result.blocking_recv().unwrap(),
            Err(Error::StoreUnavailable(_))
        ));
        assert_eq!(rows(&connection), 0, "nothing of the batch was committed");
        assert!(connection.is_autocommit(), "no transaction is left open");
    }
}
