//! SQLite straight from the benchmark: bulk-seeding a sessiond database
//! (too many sessions to create over gRPC), and the raw durable write rates
//! that anchor the open/close scenario: one commit per write, and many.
//!
//! Both use the pragmas of sessiond's store: WAL, `synchronous = FULL`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::Result;
use crate::machine::{process_cpu_ticks, ticks_to_us};
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
    /// Insert+update pairs committed together.
    pub per_transaction: u32,
    /// Insert+update pairs per second, committed with `synchronous = FULL`.
    pub per_second: f64,
    /// Pairs in the measured window.
    pub pairs: u64,
    /// CPU time of this process per pair (SQLite's work, as nothing else
    /// runs meanwhile), in microseconds.
    pub cpu_us: f64,
}

/// Measures one insert plus one update by key, `per_transaction` such
/// pairs per durable transaction, on one connection to a fresh database at
/// `path`, for `warmup` then `duration`.
///
/// With one pair per transaction this is the one-commit-per-write rate;
/// with many, what SQLite itself allows group commit on this machine: no
/// gRPC, no sessiond, the same pragmas, and rusqlite on one thread, as
/// sessiond's writer runs it.
///
/// # Errors
/// When the database cannot be created or written.
pub async fn raw_write_rate(
    path: &Path,
    per_transaction: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<RawRate> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || raw_write_loop(&path, per_transaction, warmup, duration))
        .await?
}

fn raw_write_loop(
    path: &Path,
    per_transaction: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<RawRate> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE IF NOT EXISTS raw_sessions (\
             session_id INTEGER PRIMARY KEY AUTOINCREMENT, \
             session_uuid TEXT NOT NULL UNIQUE, \
             user_id TEXT NOT NULL, \
             state TEXT NOT NULL, \
             start_time INTEGER NOT NULL, \
             end_time INTEGER);",
    )?;
    let window_start = Instant::now() + warmup;
    let window_end = window_start + duration;
    // When the first transaction of the window began, and the CPU used by then.
    let mut measured_from: Option<(Instant, u64)> = None;
    let mut pairs = 0_u64;
    let mut serial = 0_u64;
    loop {
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        if now >= window_start && measured_from.is_none() {
            measured_from = Some((now, process_cpu_ticks("self")?));
        }
        let tx = conn.unchecked_transaction()?;
        for _ in 0..per_transaction {
            serial += 1;
            tx.prepare_cached(
                "INSERT INTO raw_sessions (session_uuid, user_id, state, start_time) \
                 VALUES (?, 'user-1', 'open', ?)",
            )?
            .execute(rusqlite::params![
                format!("00000000-0000-4000-8000-{serial:012x}"),
                now_micros()
            ])?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached(
                "UPDATE raw_sessions SET state = 'ended', end_time = ? WHERE session_id = ?",
            )?
            .execute(rusqlite::params![now_micros(), id])?;
        }
        tx.commit()?;
        if measured_from.is_some() {
            pairs += u64::from(per_transaction);
        }
    }
    // The window's transactions, each from its start to its commit.
    let (from, cpu_from) = measured_from.unwrap_or((window_end, 0));
    let elapsed = from.elapsed().as_secs_f64().max(f64::EPSILON);
    let cpu_ticks = process_cpu_ticks("self")?.saturating_sub(cpu_from);
    Ok(RawRate {
        per_transaction,
        per_second: pairs as f64 / elapsed,
        pairs,
        cpu_us: ticks_to_us(cpu_ticks) / pairs.max(1) as f64,
    })
}
