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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::cache::{Change, SessionCache};
use super::codec::execute;
use crate::error::{Error, Result};

/// The most operations committed together.
pub const MAX_BATCH: usize = 256;

/// How many operations may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

/// An operation on the write connection, run inside the batch's
/// transaction; it lists what it did to sessions in the `Vec<Change>`.
pub type Operation<T> = Box<dyn FnOnce(&Connection, &mut Vec<Change>) -> Result<T> + Send>;

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
    pub fn start(connection: Connection, cache: Arc<SessionCache>) -> Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sessiond-sqlite-writer".to_owned())
            .spawn(move || write_batches(&connection, &cache, queue))
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
        F: FnOnce(&Connection, &mut Vec<Change>) -> Result<T> + Send + 'static,
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
    /// Runs the operation; true when it succeeded, and then its changes
    /// are added to `changes`.
    fn run(&mut self, connection: &Connection, changes: &mut Vec<Change>) -> bool;
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
    fn run(&mut self, connection: &Connection, changes: &mut Vec<Change>) -> bool {
        let Some(operation) = self.operation.take() else {
            return false;
        };
        let mut own = Vec::new();
        // A panicking operation fails alone (its result stays unset) and
        // leaves the writer running for the others.
        let Ok(result) = catch_unwind(AssertUnwindSafe(|| operation(connection, &mut own))) else {
            return false;
        };
        let ok = result.is_ok();
        if ok {
            changes.append(&mut own);
        }
        self.result = Some(result);
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

/// The writer thread: batches until every handle is dropped.
fn write_batches(
    connection: &Connection,
    cache: &SessionCache,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut changes = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(connection, &mut batch, &mut changes);
        match &committed {
            Ok(()) => cache.apply(changes.drain(..)),
            Err(reason) => {
                changes.clear();
                tracing::error!(error = %reason, operations = batch.len(), "a write batch failed");
            }
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
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
    connection: &Connection,
    batch: &mut [Box<dyn Job>],
    changes: &mut Vec<Change>,
) -> std::result::Result<(), String> {
    run(connection, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let before = connection.total_changes();
        if job.run(connection, changes) {
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
    if let Err(reason) = run(connection, "COMMIT") {
        if !connection.is_autocommit() {
            let _ = run(connection, "ROLLBACK");
        }
        return Err(reason);
    }
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
    use super::*;

    /// A queued write of `operation`, and where its reply arrives.
    fn job<T: Send + 'static>(
        operation: impl FnOnce(&Connection, &mut Vec<Change>) -> Result<T> + Send + 'static,
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

    /// Runs `jobs` as one batch and replies to each.
    fn commit(connection: &Connection, jobs: Vec<Box<dyn Job>>) {
        let mut batch = jobs;
        let committed = commit_batch(connection, &mut batch, &mut Vec::new());
        for job in batch {
            job.finish(committed.clone());
        }
    }

    #[test]
    fn a_write_failing_its_checks_fails_alone() {
        let connection = table();
        let (first, first_result) = job(|c, _| insert(c, 1));
        let (refused, refused_result) =
            job(|_, _| -> Result<()> { Err(Error::Internal("refused".to_owned())) });
        let (last, last_result) = job(|c, _| insert(c, 2));
        commit(&connection, vec![first, refused, last]);
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
        let connection = table();
        let (first, first_result) = job(|c, _| insert(c, 1));
        let (halfway, halfway_result) = job(|c, _| -> Result<()> {
            insert(c, 2)?;
            Err(Error::Internal("halfway".to_owned()))
        });
        let (last, last_result) = job(|c, _| insert(c, 3));
        commit(&connection, vec![first, halfway, last]);
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
