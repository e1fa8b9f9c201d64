//! Group commit on PostgreSQL: opens and closes that arrive together share
//! one transaction.
//!
//! Each kind of write has a [`Batcher`]: callers queue their write and wait
//! for its own result; a few worker tasks each take every write queued at
//! that moment (up to [`MAX_BATCH`]) and run them as one batch. A batch
//! commits before any of its callers hears back, so a write is still
//! acknowledged only once durable. A batch that fails before its commit is
//! replayed one write at a time, so that each caller gets the answer its own
//! write deserves (a duplicate UUID fails only its own open). A failed
//! commit is settled on another connection ([`settle_commit`]): a batch
//! that committed after all (only PostgreSQL's answer was lost) is
//! acknowledged, one that did not is replayed, and one whose outcome cannot
//! be told fails whole, as a single write's would.
//!
//! The statements that find many sessions by a list (`= ANY($1)`) are
//! planned on each run rather than prepared once: a plan prepared while the
//! table was small scans the whole table, and PostgreSQL keeps using it as
//! the table grows (until its statistics are next refreshed), so that every
//! batch read more sessions than the one before.
//!
//! The locking rules of the store hold inside a batch: the user rows of a
//! batch of opens are locked in ascending order, and the session rows of a
//! batch of ends in ascending id order, before anything is written. The
//! domain decides each write of a batch as it would alone.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::codec::{reason_name, state_name, store_error};
use super::events::{append, settle_commit};
use super::rows::{PgTx, insert_sessions, lock_sessions, lock_users};
use crate::events::Cause;
use crate::model::{Change, NewSession, Session, SessionId, Timestamp, admit};
use crate::model::{Error, Result};
use crate::store::Commits;
use crate::store::ledger::{Head, Pending};
use crate::store::{End, operations};

/// The most writes one batch takes.
const MAX_BATCH: usize = 256;
/// Batches of one kind that run at once (each holds a pooled connection).
const WORKERS: usize = 2;

/// A write waiting for its batch, and where its result goes.
type Queued<W, R> = (W, oneshot::Sender<R>);

/// Runs queued writes of one kind in batches.
#[derive(Debug)]
pub(super) struct Batcher<W, R> {
    /// Where callers queue; the workers stop when it is dropped.
    queue: mpsc::UnboundedSender<Queued<W, R>>,
}

impl<W: Send + 'static, R: Send + 'static> Batcher<W, R> {
    /// Starts the workers; `run` turns a batch into one result per write,
    /// in order.
    pub(super) fn start<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<W>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (queue, receiver) = mpsc::unbounded_channel::<Queued<W, R>>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            let (receiver, run) = (Arc::clone(&receiver), run.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&receiver).await {
                    let (writes, replies): (Vec<W>, Vec<_>) = batch.into_iter().unzip();
                    for (reply, result) in replies.into_iter().zip(run(writes).await) {
                        // A caller that stopped waiting does not need it.
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `write` and waits for its result; `None` when the workers
    /// are gone (the runtime is shutting down).
    pub(super) async fn submit(&self, write: W) -> Option<R> {
        let (reply, result) = oneshot::channel();
        self.queue.send((write, reply)).ok()?;
        result.await.ok()
    }
}

/// Waits for a queued write, then takes every other one queued by now.
async fn next_batch<W, R>(
    receiver: &Mutex<mpsc::UnboundedReceiver<Queued<W, R>>>,
) -> Option<Vec<Queued<W, R>>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(queued) => batch.push(queued),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Why a batch did not commit.
enum BatchFailure {
    /// Nothing of it was written, for this reason: replay its writes one by
    /// one.
    Replay(Error),
    /// Its outcome is unknown (its commit failed, or the connection did
    /// during a statement that commits by itself): every write fails.
    Unknown(Error),
}

/// Appends `events` unless the log is off (`commits` is `None`); returns
/// the new head (`None`: nothing appended).
async fn record(
    conn: &mut sqlx::PgConnection,
    commits: Option<&Commits>,
    events: &[Pending],
) -> std::result::Result<Option<Head>, BatchFailure> {
    match commits {
        Some(_) => append(conn, events).await.map_err(replay),
        None => Ok(None),
    }
}

/// Commits `tx`, which appended up to `head`. A failed COMMIT is settled
/// ([`settle_commit`]): committed after all is a success, not committed a
/// batch to replay, and an outcome nobody can tell is unknown.
async fn commit(
    pool: &PgPool,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    head: Option<Head>,
) -> std::result::Result<(), BatchFailure> {
    let Err(error) = tx.commit().await else {
        return Ok(());
    };
    let error = store_error(error);
    match head {
        Some(head) => match settle_commit(pool, &head).await {
            Some(true) => Ok(()),
            Some(false) => Err(BatchFailure::Replay(error)),
            None => Err(BatchFailure::Unknown(error)),
        },
        None => Err(BatchFailure::Unknown(error)),
    }
}

/// A failure before the commit: nothing was written.
fn replay(error: impl Into<StoreFailure>) -> BatchFailure {
    BatchFailure::Replay(error.into().0)
}

/// A failure of the database or of a store function, as an [`Error`].
struct StoreFailure(Error);

impl From<Error> for StoreFailure {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl From<sqlx::Error> for StoreFailure {
    fn from(error: sqlx::Error) -> Self {
        Self(store_error(error))
    }
}

/// Every write of a batch whose outcome is unknown fails with `error`.
fn all_failed<T>(count: usize, error: &Error) -> Vec<Result<T>> {
    (0..count)
        .map(|_| {
            Err(Error::StoreUnavailable(
                format!("a batch of writes failed at its commit: {error}").into(),
            ))
        })
        .collect()
}

/// Runs `batch` together, else (when nothing of it was written) each write
/// alone, so that each caller gets the answer its own write deserves.
async fn together_else_alone<W, R, F, Fut>(batch: &[W], run: F) -> Vec<Result<R>>
where
    W: Clone,
    F: Fn(Vec<W>) -> Fut,
    Fut: Future<Output = std::result::Result<Vec<Result<R>>, BatchFailure>>,
{
    match run(batch.to_vec()).await {
        Ok(results) => return results,
        Err(BatchFailure::Unknown(error)) => return all_failed(batch.len(), &error),
        Err(BatchFailure::Replay(error)) if batch.len() == 1 => return vec![Err(error)],
        Err(BatchFailure::Replay(_)) => {}
    }
    join_all(batch.iter().map(|write| {
        let alone = run(vec![write.clone()]);
        async move {
            match alone.await {
                Ok(mut results) => results
                    .pop()
                    .unwrap_or_else(|| Err(Error::Internal("a write had no result".to_owned()))),
                Err(BatchFailure::Unknown(error) | BatchFailure::Replay(error)) => Err(error),
            }
        }
    }))
    .await
}

/// A write and the cause of its caller.
pub(super) type Caused<W> = (W, Arc<Cause>);

/// Runs a batch of opens, recording their events unless `commits` is
/// `None` (the log is off); `commits` is woken after a commit.
pub(super) async fn create_batch(
    pool: PgPool,
    commits: Option<Arc<Commits>>,
    batch: Vec<Caused<NewSession>>,
) -> Vec<Result<SessionId>> {
    together_else_alone(&batch, |sessions| {
        create_sessions(&pool, commits.as_deref(), sessions)
    })
    .await
}

/// Runs a batch of ends, recording their events unless `commits` is `None`;
/// `commits` is woken after a commit that ended one.
pub(super) async fn end_batch(
    pool: PgPool,
    commits: Option<Arc<Commits>>,
    batch: Vec<Caused<End>>,
) -> Vec<Result<Session>> {
    together_else_alone(&batch, |ends| end_sessions(&pool, commits.as_deref(), ends)).await
}

/// Creates `sessions` together, in one transaction with their events: their
/// ids, in order, or each one's refusal by [`admit`] (with a per-user
/// limit, the users' rows are locked and their sessions counted first).
async fn create_sessions(
    pool: &PgPool,
    commits: Option<&Commits>,
    caused: Vec<Caused<NewSession>>,
) -> std::result::Result<Vec<Result<SessionId>>, BatchFailure> {
    let began = Instant::now();
    let writes = caused.len();
    let sessions: Vec<NewSession> = caused.iter().map(|(new, _)| new.clone()).collect();
    let mut tx = pool.begin().await.map_err(replay)?;
    let limited: Vec<&str> = sessions
        .iter()
        .filter(|new| new.max_open_per_user.is_some())
        .map(|new| new.user.as_str())
        .collect();
    let mut open = if limited.is_empty() {
        HashMap::new()
    } else {
        lock_users(&mut tx, &limited).await.map_err(replay)?
    };
    let refused: Vec<Option<Error>> = sessions
        .iter()
        .map(|new| {
            let count = open.entry(new.user.as_str().to_owned()).or_default();
            match admit(new, *count) {
                Ok(()) => {
                    *count += 1;
                    None
                }
                Err(refusal) => Some(refusal),
            }
        })
        .collect();
    let admitted: Vec<&NewSession> = sessions
        .iter()
        .zip(&refused)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(new, _)| new)
        .collect();
    let ids = insert_sessions(&mut *tx, &admitted).await.map_err(replay)?;
    let answers = ids_in_order(&sessions, &ids, refused);
    let events: Vec<Pending> = caused
        .into_iter()
        .zip(&answers)
        .filter_map(|((new, cause), answer)| {
            let id = *answer.as_ref().ok()?;
            Some((Change::started(&new.into_session(id)), cause))
        })
        .collect();
    let head = record(&mut tx, commits, &events).await?;
    commit(pool, tx, head).await?;
    if let Some(commits) = commits {
        commits.committed(&events, writes, began.elapsed());
    }
    Ok(answers)
}

/// Each new session's id (by UUID), or its refusal.
fn ids_in_order(
    sessions: &[NewSession],
    ids: &HashMap<String, SessionId>,
    refused: Vec<Option<Error>>,
) -> Vec<Result<SessionId>> {
    sessions
        .iter()
        .zip(refused)
        .map(|(new, refusal)| match refusal {
            Some(refusal) => Err(refusal),
            None => ids
                .get(&new.uuid.to_string())
                .copied()
                .ok_or_else(|| Error::Internal(format!("session {} was not inserted", new.uuid))),
        })
        .collect()
}

/// Ends the sessions of `ends` in one transaction: locks and reads their
/// rows (ascending id), asks the domain about each end in order (a second
/// end of a session sees the first), writes every ended record in one
/// statement, and commits. Each end's answer: the session as it is now, or
/// its refusal.
async fn end_sessions(
    pool: &PgPool,
    commits: Option<&Commits>,
    caused: Vec<Caused<End>>,
) -> std::result::Result<Vec<Result<Session>>, BatchFailure> {
    if let [(end, cause)] = caused.as_slice() {
        return end_alone(pool, commits, *end, Arc::clone(cause)).await;
    }
    let began = Instant::now();
    let writes = caused.len();
    let ends: Vec<End> = caused.iter().map(|(end, _)| *end).collect();
    let mut ids: Vec<i64> = ends.iter().map(|end| end.id.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = pool.begin().await.map_err(replay)?;
    let mut sessions = lock_sessions(&mut tx, &ids).await.map_err(replay)?;
    let mut ended: HashMap<SessionId, Session> = HashMap::new();
    let mut events: Vec<Pending> = Vec::new();
    let answers: Vec<Result<Session>> = caused
        .iter()
        .map(|(end, cause)| {
            let session = sessions
                .get(&end.id)
                .ok_or(Error::SessionNotFound { session_id: end.id })?;
            let Some(now_ended) = end.decide(session)? else {
                return Ok(session.clone());
            };
            if let Some(event) = Change::of_life(session, &now_ended, end.now) {
                events.push((event, Arc::clone(cause)));
            }
            sessions.insert(end.id, now_ended.clone());
            ended.insert(end.id, now_ended.clone());
            Ok(now_ended)
        })
        .collect();
    if !ended.is_empty() {
        let ended: Vec<&Session> = ended.values().collect();
        sqlx::query(
            "UPDATE sessions s SET state = e.state, end_time = e.t, end_reason = e.reason \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) \
               AS e(id, state, t, reason) \
             WHERE s.session_id = e.id",
        )
        .persistent(false)
        .bind(ended.iter().map(|s| s.id.get()).collect::<Vec<_>>())
        .bind(
            ended
                .iter()
                .map(|s| state_name(s.state))
                .collect::<Vec<_>>(),
        )
        .bind(
            ended
                .iter()
                .map(|s| s.end_time.map(Timestamp::unix_micros))
                .collect::<Vec<_>>(),
        )
        .bind(
            ended
                .iter()
                .map(|s| s.end_reason.map(reason_name))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await
        .map_err(replay)?;
    }
    let head = record(&mut tx, commits, &events).await?;
    commit(pool, tx, head).await?;
    if let Some(commits) = commits {
        commits.committed(&events, writes, began.elapsed());
    }
    Ok(answers)
}

/// One end by itself: the store's own operation, on statements prepared
/// once per connection (a batch's statements are planned on every run).
async fn end_alone(
    pool: &PgPool,
    commits: Option<&Commits>,
    end: End,
    cause: Arc<Cause>,
) -> std::result::Result<Vec<Result<Session>>, BatchFailure> {
    let began = Instant::now();
    let mut tx = pool.begin().await.map_err(replay)?;
    let mut write = PgTx::new(&mut tx, cause);
    let ended = match operations::end(&mut write, end).await {
        Ok(ended) => ended,
        // Refused, or failed before its commit: nothing was written.
        Err(error) => return Ok(vec![Err(error)]),
    };
    let head = if commits.is_some() {
        write.append_events().await.map_err(replay)?
    } else {
        None
    };
    let changes = std::mem::take(&mut write.2);
    commit(pool, tx, head).await?;
    if let Some(commits) = commits {
        commits.committed(&changes, 1, began.elapsed());
    }
    Ok(vec![Ok(ended)])
}
