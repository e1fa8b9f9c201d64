//! The PostgreSQL store's statements of the event log: appending a
//! transaction's events, reading events and the head, the unended sessions
//! as of the head, and compaction.
//!
//! Appending locks the head's row (`SELECT … FOR UPDATE`) as the last step
//! before the commit, and the lock is held through the commit: transactions
//! that record events — on every replica — commit one at a time in
//! revision order, and since PostgreSQL makes a transaction visible before
//! it releases its locks, a reader that sees revision N sees every revision
//! below it. That is what lets a watcher deliver events as it finds them.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Row};
use tokio::time::Instant;

use super::codec::{kind_name, session_from_row, store_error};
use crate::model::{Result, Session, Timestamp, UserId};
use crate::store::ledger::{self, Head, LedgerHead, Pending, StoredEvent};
use crate::store::{ColumnValue, Dialect, EventQuery, SessionQuery};

/// Seals `events` after the head (locked until the transaction ends) and
/// writes them and the new head. Returns the new head, which
/// [`settle_commit`] can look for; `None` when there were no events.
pub(super) async fn append(conn: &mut PgConnection, events: &[Pending]) -> Result<Option<Head>> {
    if events.is_empty() {
        return Ok(None);
    }
    let (revision, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT revision, hash FROM event_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
    let mut head = Head {
        revision,
        hash: ledger::hash_of(&hash)?,
    };
    let sealed = ledger::seal(&mut head, events);
    sqlx::query(
        "WITH appended AS ( \
           INSERT INTO events \
             (revision, time, kind, session_id, user_id, subject, body, prev_hash, hash) \
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], \
             $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::bytea[])) \
         UPDATE event_head SET revision = $10, hash = $11 WHERE id = 1",
    )
    .bind(sealed.iter().map(|e| e.revision).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.time).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.kind).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.session_id).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.user.clone()).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.subject.clone()).collect::<Vec<_>>())
    .bind(sealed.iter().map(|e| e.body.clone()).collect::<Vec<_>>())
    .bind(
        sealed
            .iter()
            .map(|e| e.prev_hash.to_vec())
            .collect::<Vec<_>>(),
    )
    .bind(sealed.iter().map(|e| e.hash.to_vec()).collect::<Vec<_>>())
    .bind(head.revision)
    .bind(head.hash.to_vec())
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    Ok(Some(head))
}

/// How long [`settle_commit`] keeps asking before it calls an outcome
/// unknown.
const SETTLE_FOR: Duration = Duration::from_secs(5);

/// Whether the transaction that appended up to `head` committed, when its
/// COMMIT failed — which may mean that only the answer was lost (the
/// connection broke after PostgreSQL committed): `Some(true)` when it
/// committed, `Some(false)` when it did not, `None` when the database could
/// not be asked within [`SETTLE_FOR`].
///
/// Asked on another connection. The transaction held the head's row lock
/// until it ended, so taking that lock waits for its end; then its last
/// revision is in the log with its hash if and only if it committed (a
/// revision is taken again only after the transaction that took it rolled
/// back, and then with another hash).
pub(super) async fn settle_commit(pool: &PgPool, head: &Head) -> Option<bool> {
    let deadline = Instant::now() + SETTLE_FOR;
    loop {
        match committed(pool, head).await {
            Ok(committed) => {
                tracing::warn!(
                    revision = head.revision,
                    committed,
                    "a COMMIT failed; looked up on another connection, the transaction {}",
                    if committed {
                        "committed after all"
                    } else {
                        "did not commit"
                    }
                );
                return Some(committed);
            }
            Err(error) if Instant::now() >= deadline => {
                tracing::warn!(revision = head.revision, %error, "a COMMIT failed, and whether it committed cannot be told");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One look for `head` (see [`settle_commit`]).
async fn committed(pool: &PgPool, head: &Head) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM event_head WHERE id = 1 FOR SHARE")
        .execute(&mut *tx)
        .await?;
    let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM events WHERE revision = $1")
        .bind(head.revision)
        .fetch_optional(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(hash.as_deref() == Some(&head.hash[..]))
}

/// Reads the events `query` asks for.
pub(super) async fn read_events(pool: &PgPool, query: &EventQuery) -> Result<Vec<StoredEvent>> {
    let (sql, values) = query.sql(Dialect::Postgres);
    // Column names of the schema, values bound: nothing from a caller.
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for value in values {
        statement = match value {
            ColumnValue::Int(v) => statement.bind(v),
            ColumnValue::Text(v) => statement.bind(v),
        };
    }
    let rows = statement.fetch_all(pool).await.map_err(store_error)?;
    rows.iter()
        .map(|row| {
            Ok(StoredEvent {
                revision: row.try_get(0).map_err(store_error)?,
                body: row.try_get(1).map_err(store_error)?,
                prev_hash: row.try_get(2).map_err(store_error)?,
                hash: row.try_get(3).map_err(store_error)?,
            })
        })
        .collect()
}

/// Reads the head and the checkpoint.
pub(super) async fn read_head(conn: &mut PgConnection) -> Result<LedgerHead> {
    let (revision, hash, compact_revision, compact_hash): (i64, Vec<u8>, i64, Vec<u8>) =
        sqlx::query_as(
            "SELECT revision, hash, compact_revision, compact_hash FROM event_head WHERE id = 1",
        )
        .fetch_one(conn)
        .await
        .map_err(store_error)?;
    Ok(LedgerHead {
        head: Head {
            revision,
            hash: ledger::hash_of(&hash)?,
        },
        compacted: Head {
            revision: compact_revision,
            hash: ledger::hash_of(&compact_hash)?,
        },
    })
}

/// The head's revision and the unended sessions matching `query`, read in
/// one REPEATABLE READ transaction (one snapshot).
pub(super) async fn unended_at_head(
    pool: &PgPool,
    query: &SessionQuery,
) -> Result<(i64, Vec<Session>)> {
    let mut tx = pool.begin().await.map_err(store_error)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
    let head = read_head(&mut tx).await?;
    let rows = sqlx::query(select_session!(
        "WHERE s.state <> 'ended' AND ($1::text IS NULL OR s.user_id = $1) \
         AND ($2::text IS NULL OR s.kind = $2) ORDER BY s.session_id"
    ))
    .bind(query.user.as_ref().map(UserId::as_str))
    .bind(query.kind.map(kind_name))
    .fetch_all(&mut *tx)
    .await
    .map_err(store_error)?;
    let sessions = rows.iter().map(session_from_row).collect::<Result<_>>()?;
    tx.commit().await.map_err(store_error)?;
    Ok((head.head.revision, sessions))
}

/// Removes the oldest events made before `before`, at most `limit`: the
/// prefix of the log older than that. The checkpoint becomes the last one
/// removed.
pub(super) async fn compact(conn: &mut PgConnection, before: Timestamp, limit: u32) -> Result<u64> {
    // The head's row first, as every appender locks it: compaction and
    // appends do not interleave.
    sqlx::query("SELECT 1 FROM event_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    let oldest: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT revision, time, hash FROM events ORDER BY revision LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(store_error)?;
    let Some((last, _, hash)) = oldest
        .iter()
        .take_while(|(_, time, _)| *time < before.unix_micros())
        .last()
    else {
        return Ok(0);
    };
    let removed = sqlx::query("DELETE FROM events WHERE revision <= $1")
        .bind(last)
        .execute(&mut *conn)
        .await
        .map_err(store_error)?
        .rows_affected();
    sqlx::query(
        "UPDATE event_head SET compact_revision = $1, compact_hash = $2 \
         WHERE id = 1 AND compact_revision < $1",
    )
    .bind(last)
    .bind(hash)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    Ok(removed)
}
