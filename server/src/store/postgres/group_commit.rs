//! Group commit on PostgreSQL: opens and closes that arrive together share
//! one transaction.
//!
//! Each kind of write has a [`Batcher`]: callers queue their write and wait
//! for its own result; a few worker tasks each take every write queued at
//! that moment (up to [`MAX_BATCH`]) and run them as one batch. A batch
//! commits before any of its callers hears back, so a write is still
//! acknowledged only once durable. A batch that fails before its commit is
//! replayed one write at a time, so that each caller gets the answer its own
//! write deserves (a duplicate UUID fails only its own open); a failed
//! commit fails the whole batch, whose outcome is then unknown, as a single
//! write's would be.
//!
//! The statements that find many sessions by a list (`= ANY($1)`) are
//! planned on each run rather than prepared once: a plan prepared while the
//! table was small scans the whole table, and PostgreSQL keeps using it as
//! the table grows (until its statistics are next refreshed), so that every
//! batch read more sessions than the one before.
//!
//! The locking rules of the store hold inside a batch: the per-user
//! advisory locks of a batch of opens are taken in ascending order, and the
//! session rows of a batch of closes are locked in ascending id order before
//! they are updated.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;

use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::codec::{kind_name, reason_name, session_from_row, store_error};
use crate::error::{Error, Result};
use crate::model::{EndReason, Session, SessionId, Timestamp};
use crate::store::NewSession;

/// The most writes one batch takes.
const MAX_BATCH: usize = 256;
/// The fewest ends run together: one alone is one statement, a batch four
/// (begin, lock, update, commit).
const MIN_END_BATCH: usize = 4;
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
    /// Nothing of it was written: replay its writes one by one.
    Replay,
    /// Its outcome is unknown (its commit failed, or the connection did
    /// during a statement that commits by itself): every write fails.
    Unknown(Error),
}

/// The failure of a statement that committed by itself: replayable when
/// the database refused it (nothing was written).
fn autocommit_failure(error: sqlx::Error) -> BatchFailure {
    match error {
        sqlx::Error::Database(_) => BatchFailure::Replay,
        other => BatchFailure::Unknown(store_error(other)),
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

/// Runs a batch of opens: one write alone, else together, else replayed
/// one by one.
pub(super) async fn create_batch(pool: PgPool, batch: Vec<NewSession>) -> Vec<Result<SessionId>> {
    if batch.len() > 1 {
        match create_sessions(&pool, &batch).await {
            Ok(results) => return results,
            Err(BatchFailure::Unknown(error)) => return all_failed(batch.len(), &error),
            Err(BatchFailure::Replay) => {}
        }
    }
    join_all(
        batch
            .iter()
            .map(|new| super::create_session_alone(&pool, new)),
    )
    .await
}

/// Runs a batch of ends: a few alone (each one statement), more together,
/// else replayed one by one.
pub(super) async fn end_batch(pool: PgPool, batch: Vec<End>) -> Vec<Result<Option<Session>>> {
    if batch.len() >= MIN_END_BATCH {
        match end_sessions(&pool, &batch).await {
            Ok(results) => return results.into_iter().map(Ok).collect(),
            Err(BatchFailure::Unknown(error)) => return all_failed(batch.len(), &error),
            Err(BatchFailure::Replay) => {}
        }
    }
    join_all(
        batch
            .iter()
            .map(|&end| super::end_at_once_alone(&pool, end)),
    )
    .await
}

/// Creates `sessions` together: their ids, in order, or each one's refusal
/// ([`Error::TooManySessions`]). Without a per-user limit, one statement;
/// with one, a transaction that locks and counts first.
async fn create_sessions(
    pool: &PgPool,
    sessions: &[NewSession],
) -> std::result::Result<Vec<Result<SessionId>>, BatchFailure> {
    let all: Vec<&NewSession> = sessions.iter().collect();
    if sessions.iter().all(|new| new.max_open_per_user.is_none()) {
        let ids = insert_sessions(pool, &all)
            .await
            .map_err(autocommit_failure)?;
        return Ok(ids_in_order(
            sessions,
            &ids,
            sessions.iter().map(|_| None).collect(),
        ));
    }
    let mut tx = pool.begin().await.map_err(|_| BatchFailure::Replay)?;
    let refused = per_user_refusals(&mut tx, sessions)
        .await
        .map_err(|_| BatchFailure::Replay)?;
    let admitted: Vec<&NewSession> = sessions
        .iter()
        .zip(&refused)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(new, _)| new)
        .collect();
    let ids = insert_sessions(&mut *tx, &admitted)
        .await
        .map_err(|_| BatchFailure::Replay)?;
    tx.commit()
        .await
        .map_err(|e| BatchFailure::Unknown(store_error(e)))?;
    Ok(ids_in_order(sessions, &ids, refused))
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

/// For each new session, its refusal under its user's limit, counting the
/// user's sessions that have not ended and the batch's earlier ones. Takes
/// the advisory lock of every limited user first, in ascending order.
async fn per_user_refusals(
    tx: &mut Transaction<'static, Postgres>,
    sessions: &[NewSession],
) -> Result<Vec<Option<Error>>> {
    let limited: Vec<&str> = sessions
        .iter()
        .filter(|new| new.max_open_per_user.is_some())
        .map(|new| new.user.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if limited.is_empty() {
        return Ok(sessions.iter().map(|_| None).collect());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, h) FROM \
         (SELECT DISTINCT hashtext(u) AS h FROM unnest($2::text[]) AS u ORDER BY h) AS users",
    )
    .bind(super::PER_USER_LOCK_CLASS)
    .bind(&limited)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(*) FROM sessions \
         WHERE user_id = ANY($1) AND state <> 'ended' GROUP BY user_id",
    )
    .persistent(false)
    .bind(&limited)
    .fetch_all(&mut **tx)
    .await
    .map_err(store_error)?;
    let mut open: HashMap<String, i64> = counts.into_iter().collect();
    Ok(sessions
        .iter()
        .map(|new| {
            let limit = new.max_open_per_user?;
            let count = open.entry(new.user.as_str().to_owned()).or_default();
            if *count >= i64::from(limit) {
                return Some(Error::TooManySessions {
                    user: new.user.as_str().to_owned(),
                    limit,
                });
            }
            *count += 1;
            None
        })
        .collect())
}

/// Inserts `sessions` in one statement; their ids by UUID.
pub(super) async fn insert_sessions<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    sessions: &[&NewSession],
) -> std::result::Result<HashMap<String, SessionId>, sqlx::Error> {
    if sessions.is_empty() {
        return Ok(HashMap::new());
    }
    let column =
        |f: fn(&NewSession) -> String| sessions.iter().map(|new| f(new)).collect::<Vec<_>>();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
         last_activity_time, effective_user, client, owner_node) \
         SELECT u::uuid, usr, k, 'open', t, t, usr, c, o \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) \
           AS n(u, usr, k, t, c, o) \
         RETURNING session_id, session_uuid::text",
    )
    .bind(column(|new| new.uuid.to_string()))
    .bind(column(|new| new.user.as_str().to_owned()))
    .bind(column(|new| kind_name(new.kind).to_owned()))
    .bind(
        sessions
            .iter()
            .map(|new| new.now.unix_micros())
            .collect::<Vec<_>>(),
    )
    .bind(column(|new| new.client.as_str().to_owned()))
    .bind(column(|new| new.owner_node.clone()))
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, uuid)| (uuid, SessionId::from_store(id)))
        .collect())
}

/// A session to end unless it has ended (see `PostgresStore::end_at_once`).
#[derive(Clone, Copy, Debug)]
pub(super) struct End {
    /// The session.
    pub id: SessionId,
    /// Why it ends.
    pub reason: EndReason,
    /// When.
    pub now: Timestamp,
    /// Whether an interactive session is refused.
    pub clientless_only: bool,
}

/// Ends the sessions of `ends` that have not ended (and are clientless
/// where asked) in one transaction: each one's new record, or `None` for
/// one that did not match (unknown, refused, already ended, or a second
/// end of the same session in the batch), for the caller's locked path.
async fn end_sessions(
    pool: &PgPool,
    ends: &[End],
) -> std::result::Result<Vec<Option<Session>>, BatchFailure> {
    let mut seen = HashSet::new();
    let firsts: Vec<&End> = ends.iter().filter(|end| seen.insert(end.id)).collect();
    let ids: Vec<i64> = firsts.iter().map(|end| end.id.get()).collect();
    let mut tx = pool.begin().await.map_err(|_| BatchFailure::Replay)?;
    sqlx::query(
        "SELECT session_id FROM sessions WHERE session_id = ANY($1) ORDER BY session_id FOR UPDATE",
    )
    .persistent(false)
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .map_err(|_| BatchFailure::Replay)?;
    // By primary key, not through a partial index (see `end_at_once_alone`).
    let rows = sqlx::query(concat!(
        "UPDATE sessions s SET state = 'ended', end_time = e.t, end_reason = e.reason \
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bool[]) AS e(id, t, reason, clientless_only) \
         WHERE s.session_id = ANY($1) AND s.session_id = e.id AND (s.state <> 'ended') IS TRUE \
         AND (NOT e.clientless_only OR s.kind = 'clientless') \
         RETURNING ",
        session_columns!()
    ))
    .persistent(false)
    .bind(&ids)
    .bind(firsts.iter().map(|end| end.now.unix_micros()).collect::<Vec<_>>())
    .bind(firsts.iter().map(|end| reason_name(end.reason)).collect::<Vec<_>>())
    .bind(firsts.iter().map(|end| end.clientless_only).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await
    .map_err(|_| BatchFailure::Replay)?;
    let mut ended = HashMap::new();
    for row in &rows {
        let session = session_from_row(row).map_err(|_| BatchFailure::Replay)?;
        ended.insert(session.id, session);
    }
    tx.commit()
        .await
        .map_err(|e| BatchFailure::Unknown(store_error(e)))?;
    // Only the first end of a session in the batch takes its record.
    Ok(ends.iter().map(|end| ended.remove(&end.id)).collect())
}
