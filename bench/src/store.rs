//! SQLite straight from the benchmark: bulk-seeding a sessiond database
//! (too many sessions to create over gRPC), and the raw durable write rate
//! that anchors the open/close scenario.
//!
//! Both use the pragmas of sessiond's store: WAL, `synchronous = FULL`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::Result;
use crate::serve::NODE_ID;

/// Rows inserted per transaction when seeding.
const SEED_BATCH: i64 = 100_000;

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Creates the sessiond database at `path` with sessiond's own SQLite
/// migrations (so that sessiond finds them applied) and inserts `count` open
/// interactive sessions owned by [`NODE_ID`], ids `1..=count`, in
/// transactions of [`SEED_BATCH`] rows. Returns the highest id.
///
/// # Errors
/// When the database cannot be created or written.
pub async fn seed_sessions(path: &Path, count: u64) -> Result<i64> {
    let mut conn = options(path).connect().await?;
    sqlx::migrate!("../server/migrations/sqlite")
        .run(&mut conn)
        .await?;
    let count = i64::try_from(count)?;
    let start = now_micros() - count;
    let mut first = 1;
    while first <= count {
        let last = (first + SEED_BATCH - 1).min(count);
        let mut tx = conn.begin().await?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
             INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
                 last_activity_time, effective_user, client, owner_node) \
             SELECT printf('00000000-0000-4000-8000-%012x', i), 'user-' || (i % 1000), \
                 'interactive', 'open', ?3 + i, ?3 + i, 'user-' || (i % 1000), \
                 'sessiond-bench', ?4 \
             FROM n",
        )
        .bind(first)
        .bind(last)
        .bind(start)
        .bind(NODE_ID)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        first = last + 1;
    }
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(session_id) FROM sessions")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    let max = max.unwrap_or(0);
    if max != count {
        return Err(format!("seeded {count} sessions but the highest id is {max}").into());
    }
    Ok(max)
}

/// The raw durable write rate.
#[derive(Clone, Copy, Debug)]
pub struct RawRate {
    /// Transactions per second, each one insert and one update by key,
    /// committed with `synchronous = FULL`.
    pub per_second: f64,
    /// Transactions in the measured window.
    pub transactions: u64,
}

/// Measures transactions of one insert plus one update by key on one
/// connection to a fresh database at `path`, for `warmup` then `duration`.
///
/// # Errors
/// When the database cannot be created or written.
pub async fn raw_write_rate(path: &Path, warmup: Duration, duration: Duration) -> Result<RawRate> {
    let mut conn = options(path).connect().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS raw_sessions (\
             session_id INTEGER PRIMARY KEY AUTOINCREMENT, \
             session_uuid TEXT NOT NULL UNIQUE, \
             user_id TEXT NOT NULL, \
             state TEXT NOT NULL, \
             start_time INTEGER NOT NULL, \
             end_time INTEGER)",
    )
    .execute(&mut conn)
    .await?;
    let begin = Instant::now();
    let window_start = begin + warmup;
    let window_end = window_start + duration;
    let mut transactions = 0_u64;
    let mut serial = 0_u64;
    loop {
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        serial += 1;
        let mut tx = conn.begin().await?;
        let id = sqlx::query(
            "INSERT INTO raw_sessions (session_uuid, user_id, state, start_time) \
             VALUES (?, 'user-1', 'open', ?)",
        )
        .bind(format!("00000000-0000-4000-8000-{serial:012x}"))
        .bind(now_micros())
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        sqlx::query("UPDATE raw_sessions SET state = 'ended', end_time = ? WHERE session_id = ?")
            .bind(now_micros())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let done = Instant::now();
        if done >= window_start && done < window_end {
            transactions += 1;
        }
    }
    conn.close().await?;
    Ok(RawRate {
        per_second: transactions as f64 / duration.as_secs_f64(),
        transactions,
    })
}
