//! The SQLite store's statements of the event log: reading events and the
//! head, the unended sessions as of the head, and compaction. (Appending
//! is the writer's: [`super::writer`].)

use rusqlite::{Connection, params_from_iter};

use super::codec::{column, query_all, query_one, session_from_row};
use super::rows::select_session;
use crate::model::{Result, Session, Timestamp, UserId};
use crate::store::ledger::{self, Head, LedgerHead, StoredEvent};
use crate::store::{Dialect, EventQuery, SessionQuery};

/// Reads the events `query` asks for.
pub(super) fn read_events(conn: &Connection, query: &EventQuery) -> Result<Vec<StoredEvent>> {
    let (sql, values) = query.sql(Dialect::Sqlite);
    query_all(conn, &sql, params_from_iter(values.iter()), |row| {
        Ok(StoredEvent {
            revision: column(row, 0)?,
            body: column(row, 1)?,
            prev_hash: column(row, 2)?,
            hash: column(row, 3)?,
        })
    })
}

/// Reads the head and the checkpoint.
pub(super) fn read_head(conn: &Connection) -> Result<LedgerHead> {
    let head = query_one(
        conn,
        "SELECT revision, hash, compact_revision, compact_hash FROM event_head WHERE id = 1",
        [],
        |row| {
            let hash: Vec<u8> = column(row, 1)?;
            let compact_hash: Vec<u8> = column(row, 3)?;
            Ok(LedgerHead {
                head: Head {
                    revision: column(row, 0)?,
                    hash: ledger::hash_of(&hash)?,
                },
                compacted: Head {
                    revision: column(row, 2)?,
                    hash: ledger::hash_of(&compact_hash)?,
                },
            })
        },
    )?;
    Ok(head.unwrap_or_default())
}

/// The head's revision and the unended sessions matching `query`, read in
/// one transaction (one snapshot of the WAL).
pub(super) fn unended_at_head(
    conn: &Connection,
    query: &SessionQuery,
) -> Result<(i64, Vec<Session>)> {
    let snapshot = conn
        .unchecked_transaction()
        .map_err(super::codec::store_error)?;
    let head = read_head(&snapshot)?;
    let sessions = query_all(
        &snapshot,
        select_session!(
            "WHERE s.state <> 'ended' AND (?1 IS NULL OR s.user_id = ?1) \
             AND (?2 IS NULL OR s.kind = ?2) ORDER BY s.session_id"
        ),
        rusqlite::params![
            query.user.as_ref().map(UserId::as_str),
            query.kind.map(super::codec::kind_name),
        ],
        session_from_row,
    )?;
    snapshot.commit().map_err(super::codec::store_error)?;
    Ok((head.head.revision, sessions))
}

/// Removes the oldest events made before `before`, at most `limit`: the
/// prefix of the log older than that. The checkpoint becomes the last one
/// removed.
pub(super) fn compact(conn: &Connection, before: Timestamp, limit: u32) -> Result<u64> {
    let oldest = query_all(
        conn,
        "SELECT revision, time, hash FROM events ORDER BY revision LIMIT ?1",
        [i64::from(limit)],
        |row| {
            let time: i64 = column(row, 1)?;
            let hash: Vec<u8> = column(row, 2)?;
            Ok((column::<i64>(row, 0)?, time, hash))
        },
    )?;
    let Some((last, _, hash)) = oldest
        .iter()
        .take_while(|(_, time, _)| *time < before.unix_micros())
        .last()
    else {
        return Ok(0);
    };
    let removed = super::codec::execute(conn, "DELETE FROM events WHERE revision <= ?1", [last])?;
    super::codec::execute(
        conn,
        "UPDATE event_head SET compact_revision = ?1, compact_hash = ?2 \
         WHERE id = 1 AND compact_revision < ?1",
        rusqlite::params![last, hash],
    )?;
    Ok(removed as u64)
}
