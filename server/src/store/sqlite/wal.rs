//! The write-ahead log when a write fails, as on a full disk.
//!
//! Each commit appends every page it changed to the WAL (about 25 KiB for
//! a batch that opens one session and records its event), and SQLite copies
//! the WAL back into the database and starts it over only once it holds
//! 1000 pages (4 MiB): until then, every commit needs new disk space for
//! the log. On a nearly full disk, space an operator frees is eaten by the
//! log a few KiB per commit, and writes fail again soon after.
//!
//! A batch that failed at its commit's flush (fsync: EIO) has its frames,
//! commit frame included, in the log file all the same: SQLite only leaves
//! them out of its index, and the next write overwrites them. Were the
//! server to crash before that write, recovery would read them back and
//! the batch would be committed after all, though its callers were told
//! STORE_UNAVAILABLE — nothing changed. So after a batch fails, the writer
//! first commits a write that changes nothing the store reads (a counter in
//! the database header): its frame takes the failed batch's place, which breaks the
//! checksum chain of the frames after it, so recovery stops before them;
//! and recovering the no-op itself, should its own flush fail, changes
//! nothing.
//!
//! Then it checkpoints the log and truncates it
//! to nothing (giving its space back), and from then on — until the server
//! restarts — checkpoints every [`LOW_SPACE_WAL_PAGES`] pages and truncates
//! the file to [`LOW_SPACE_WAL_BYTES`] after each: the log stays small, and
//! freed space goes to the data. Both are logged.

use rusqlite::Connection;

/// The WAL's checkpoint threshold, in pages, once a write has failed
/// (SQLite's default: 1000).
pub const LOW_SPACE_WAL_PAGES: u32 = 64;

/// The size the WAL file is truncated to after each checkpoint once a write
/// has failed.
pub const LOW_SPACE_WAL_BYTES: u64 = 256 * 1024;

/// After a failed batch (its transaction rolled back): checkpoint and
/// truncate the log, and keep it small from now on.
pub(super) fn after_failed_batch(connection: &Connection) {
    if let Err(error) = overwrite_failed_frames(connection) {
        // Its frame still covers the failed batch's unless its own write
        // (rather than its flush) failed.
        tracing::warn!(
            error = %error,
            "after a failed write, the write that covers its frames in the write-ahead log failed too"
        );
    }
    let checkpointed = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    });
    let low_space = connection.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {LOW_SPACE_WAL_PAGES}; \
         PRAGMA journal_size_limit = {LOW_SPACE_WAL_BYTES};"
    ));
    match (checkpointed, low_space) {
        (Ok((busy, wal_pages)), Ok(())) => tracing::warn!(
            wal_pages,
            truncated = busy == 0,
            checkpoint_every_pages = LOW_SPACE_WAL_PAGES,
            "a write failed: the write-ahead log was checkpointed and is kept small from now on"
        ),
        (checkpointed, low_space) => tracing::error!(
            checkpoint_error = checkpointed.err().map(tracing::field::display),
            setting_error = low_space.err().map(tracing::field::display),
            "a write failed, and the write-ahead log could not be checkpointed"
        ),
    }
}

/// Commits a write that changes nothing the store reads, whose frame
/// replaces the first of the failed batch's in the log (see the module's
/// documentation): it counts one more in the database header's
/// `user_version`, which sessiond does not otherwise use. (A row rewritten
/// as it is would not do: SQLite writes no page whose bytes stay the same.)
fn overwrite_failed_frames(connection: &Connection) -> rusqlite::Result<()> {
    let count: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let next = (count + 1) % i64::from(i32::MAX);
    let written = connection.execute_batch(&format!(
        "BEGIN IMMEDIATE; PRAGMA user_version = {next}; COMMIT;"
    ));
    if written.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    written
}
