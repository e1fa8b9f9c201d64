//! SQLite for the benchmark: seeding a sessiond database through
//! sessiond's own store (too many sessions to create over gRPC), and the
//! raw durable write rates that anchor the open/close scenario: one commit
//! per write, and many.
//!
//! The raw rates measure SQLite itself, in a table of their own
//! (`raw_sessions`) in a file of their own, never sessiond's database,
//! with the pragmas of sessiond's store: WAL, `synchronous = FULL`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use sessiond::model::{ClientDescription, SessionKind, Timestamp, UserId};
use sessiond::store::NewSession;

use crate::Result;
use crate::machine::{process_cpu_ticks, ticks_to_us};
use crate::serve::NODE_ID;

/// Sessions created at once while seeding, so that the store's group
/// commit puts many of them into each transaction.
const SEED_IN_FLIGHT: usize = 512;

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Creates the sessiond database at `path` through sessiond's SQLite store
/// (its migrations, its rules, its writes) with `count` open interactive
/// sessions of users `user-0` … `user-999`, owned by [`NODE_ID`], ids
/// `1..=count`, [`SEED_IN_FLIGHT`] in flight. The store is closed before
/// this returns, since it owns the file while it is open. Returns the
/// highest id.
///
/// # Errors
/// When the store cannot be opened or a session cannot be created, or when
/// the ids are not `1..=count`.
pub async fn seed_sessions(path: &Path, count: u64) -> Result<i64> {
    let store = sessiond::store::open(&format!("sqlite://{}", path.display())).await?;
    let client = ClientDescription::from_store("sessiond-bench".to_owned());
    let (created, highest) = futures::stream::iter(0..count)
        .map(|i| {
            let store = Arc::clone(&store);
            let new = NewSession {
                uuid: uuid::Uuid::now_v7(),
                user: UserId::from_store(format!("user-{}", i % 1000)),
                kind: SessionKind::Interactive,
                client: client.clone(),
                now: Timestamp::from_unix_micros(now_micros()),
                owner_node: NODE_ID.to_owned(),
                max_open_per_user: None,
            };
            async move { store.create_session(new).await.map(|s| s.id.get()) }
        })
        .buffer_unordered(SEED_IN_FLIGHT)
        .try_fold((0_u64, 0_i64), |(created, highest), id| async move {
            Ok((created + 1, highest.max(id)))
        })
        .await?;
    drop(store);
    let expected = i64::try_from(count)?;
    if created != count || highest != expected {
        return Err(format!(
            "seeded {created} of {count} sessions and the highest id is {highest}"
        )
        .into());
    }
    Ok(highest)
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
