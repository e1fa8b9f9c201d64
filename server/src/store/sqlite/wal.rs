//! The write-ahead log when a write fails, as on a full disk.
//!
//! Each commit appends every page it changed to the WAL (about 25 KiB for
//! a batch that opens one session and records its event), and SQLite copies
//! the WAL back into the database and starts it over only once it holds
//! 1000 pages (4 MiB): until then, every commit needs new disk space for
//! the log. On a nearly full disk, space an operator frees is eaten by the
//! log a few KiB per commit, and writes fail again soon after.
//!
//! So after a batch fails, the writer checkpoints the log and truncates it
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
