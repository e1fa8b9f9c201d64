//! Group commit: one writer thread owns the write connection and commits
//! concurrent writes together.
//!
//! Each write is an operation on the connection. The writer takes every
//! operation that is queued (up to [`MAX_BATCH`]), runs them inside one
//! `BEGIN IMMEDIATE` transaction — each in its own savepoint, so an operation
//! that fails (a precondition, say) is rolled back alone — and commits once:
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

/// Runs `batch` in one transaction, each operation in a savepoint.
fn commit_batch(
    connection: &Connection,
    batch: &mut [Box<dyn Job>],
    changes: &mut Vec<Change>,
) -> std::result::Result<(), String> {
    run(connection, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let step = run(connection, "SAVEPOINT operation").and_then(|()| {
            if !job.run(connection, changes) {
                run(connection, "ROLLBACK TO operation")?;
            }
            run(connection, "RELEASE operation")
        });
        if let Err(reason) = step {
            let _ = run(connection, "ROLLBACK");
            return Err(reason);
        }
    }
    if let Err(reason) = run(connection, "COMMIT") {
        let _ = run(connection, "ROLLBACK");
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
