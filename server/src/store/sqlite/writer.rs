//! Group commit: one writer task owns the write connection and commits
//! concurrent writes together.
//!
//! Each write is an operation on the connection. The writer takes every
//! operation that is queued (up to [`MAX_BATCH`]), runs them inside one
//! `BEGIN IMMEDIATE` transaction — each in its own savepoint, so an operation
//! that fails (a precondition, say) is rolled back alone — and commits once:
//! one fsync for the whole batch. Each caller gets its result only after
//! that commit, so a write is still acknowledged only once it is durable;
//! if the commit fails, every operation of the batch fails with it.

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::codec::store_error;
use crate::error::{Error, Result};

/// The most operations committed together.
pub const MAX_BATCH: usize = 256;

/// How many operations may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

/// An operation on the write connection.
pub type Operation<T> =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send>;

/// The handle through which writes reach the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    /// The writer task's queue.
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer task on `connection`.
    pub fn start(connection: SqliteConnection) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(connection, queue));
        Self { jobs }
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
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
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
    /// Runs the operation; true when it succeeded.
    fn run<'a>(&'a mut self, connection: &'a mut SqliteConnection) -> BoxFuture<'a, bool>;
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
    fn run<'a>(&'a mut self, connection: &'a mut SqliteConnection) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(operation) = self.operation.take() else {
                return false;
            };
            let result = operation(connection).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let reply = match (committed, self.result) {
            // A failed operation's error stands whatever the batch did.
            (_, Some(Err(error))) => Err(error),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => Err(Error::Internal("a write was never run".to_owned())),
            (Err(reason), _) => Err(unavailable(&reason)),
        };
        // The caller may have stopped waiting; the write stands regardless.
        let _ = self.reply.send(reply);
    }
}

/// The writer task: batches until every handle is dropped.
async fn write_batches(mut connection: SqliteConnection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let committed = commit_batch(&mut connection, &mut batch).await;
        if let Err(reason) = &committed {
            tracing::error!(error = %reason, operations = batch.len(), "a write batch failed");
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
    }
    let _ = connection.close().await;
}

/// Runs `batch` in one transaction, each operation in a savepoint.
async fn commit_batch(
    connection: &mut SqliteConnection,
    batch: &mut [Box<dyn Job>],
) -> std::result::Result<(), String> {
    execute(connection, "BEGIN IMMEDIATE").await?;
    for job in batch.iter_mut() {
        let step = async {
            execute(connection, "SAVEPOINT operation").await?;
            if !job.run(connection).await {
                execute(connection, "ROLLBACK TO operation").await?;
            }
            execute(connection, "RELEASE operation").await
        };
        if let Err(reason) = step.await {
            let _ = execute(connection, "ROLLBACK").await;
            return Err(reason);
        }
    }
    if let Err(reason) = execute(connection, "COMMIT").await {
        let _ = execute(connection, "ROLLBACK").await;
        return Err(reason);
    }
    Ok(())
}

async fn execute(
    connection: &mut SqliteConnection,
    sql: &'static str,
) -> std::result::Result<(), String> {
    sqlx::raw_sql(sql)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(|e| store_error(e).to_string())
}

fn unavailable(reason: &str) -> Error {
    Error::StoreUnavailable(reason.to_owned().into())
}
