//! Decoding rows and encoding the domain's enums as the SQLite schema spells
//! them, and the few statement helpers every SQLite query goes through.

use std::str::FromStr;

use rusqlite::types::FromSql;
use rusqlite::{Connection, ErrorCode, Params, Row, RowIndex};
use uuid::Uuid;

use crate::model::{
    ClientDescription, ModuleFailure, ModuleId, ModuleRun, RunId, RunOutcome, Session, SessionId,
    Timestamp, UserId,
};
use crate::model::{Error, Result};

pub(super) use crate::store::names::kind_name;
use crate::store::names::{corrupt, parse_failure_kind, parse_kind, parse_reason, parse_state};

/// Runs a statement (prepared once per connection) that returns no rows;
/// returns how many rows it changed.
pub(super) fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(store_error)
}

/// Runs an INSERT of one row (prepared once per connection) and returns
/// the new row's id. Cheaper than `RETURNING`, for which SQLite builds a
/// temporary table on every run.
pub(super) fn insert(conn: &Connection, sql: &str, params: impl Params) -> Result<i64> {
    execute(conn, sql, params)?;
    Ok(conn.last_insert_rowid())
}

/// Runs a query and decodes its first row, if any.
pub(super) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let mut rows = statement.query(params).map_err(store_error)?;
    match rows.next().map_err(store_error)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a query and decodes every row.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let mut rows = statement.query(params).map_err(store_error)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

/// Reads one column of a row, by name or by position.
pub(super) fn column<T: FromSql>(row: &Row<'_>, index: impl RowIndex) -> Result<T> {
    row.get(index).map_err(store_error)
}

/// Decodes a row of `select_session!`, by position (faster than by name):
/// session_id, session_uuid, user_id, kind, state, start_time, end_time,
/// last_activity_time, end_reason, effective_user, client, owner_node,
/// depth.
pub(super) fn session_from_row(row: &Row<'_>) -> Result<Session> {
    let end_reason = row.get_ref(8).map_err(store_error)?;
    let depth: i64 = column(row, 12)?;
    Ok(Session {
        id: SessionId::from_store(column(row, 0)?),
        uuid: Uuid::from_str(text(row, 1)?).map_err(|e| corrupt("session_uuid", e))?,
        user: UserId::from_store(column(row, 2)?),
        kind: parse_kind(text(row, 3)?)?,
        state: parse_state(text(row, 4)?)?,
        start_time: timestamp(row, 5)?,
        end_time: column::<Option<i64>>(row, 6)?.map(Timestamp::from_unix_micros),
        last_activity_time: timestamp(row, 7)?,
        end_reason: end_reason
            .as_str_or_null()
            .map_err(|e| corrupt("end_reason", e))?
            .map(parse_reason)
            .transpose()?,
        effective_user: UserId::from_store(column(row, 9)?),
        client: ClientDescription::from_store(column(row, 10)?),
        user_context_depth: u32::try_from(depth).map_err(|e| corrupt("depth", e))?,
        owner_node: column(row, 11)?,
    })
}

/// Borrows a text column of a row.
fn text<'r>(row: &'r Row<'_>, index: usize) -> Result<&'r str> {
    row.get_ref(index)
        .map_err(store_error)?
        .as_str()
        .map_err(|e| corrupt("a text column", e))
}

fn timestamp(row: &Row<'_>, index: usize) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_micros(column(row, index)?))
}

/// Classifies a database error: trouble reaching or writing the database
/// (busy past the timeout, full, I/O, read-only, cannot open) is
/// [`Error::StoreUnavailable`], which the caller may retry; a violated
/// constraint or a value of the wrong type means the schema and the code
/// disagree, a bug.
pub(super) fn store_error(error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch) | None => {
            Error::Internal(error.to_string())
        }
        Some(_) => Error::StoreUnavailable(Box::new(error)),
    }
}

/// Decodes a row of `select_run!`, by position: run_id, session_id,
/// module_id, acting_user, state, start_time, end_time, value,
/// failure_kind, failure_message, exit_code, signal, stderr_tail.
pub(super) fn run_from_row(row: &Row<'_>) -> Result<ModuleRun> {
    let state: String = column(row, 4)?;
    let failure = || -> Result<ModuleFailure> {
        let kind: Option<String> = column(row, 8)?;
        let kind = kind.ok_or_else(|| corrupt("failure_kind", "NULL"))?;
        Ok(ModuleFailure {
            kind: parse_failure_kind(&kind)?,
            message: column::<Option<String>>(row, 9)?.unwrap_or_default(),
            exit_code: column(row, 10)?,
            signal: column(row, 11)?,
            stderr_tail: column::<Option<String>>(row, 12)?.unwrap_or_default(),
        })
    };
    let outcome = match state.as_str() {
        "running" => None,
        "succeeded" => {
            let value: String = column(row, 7)?;
            let value = serde_json::from_str(&value).map_err(|e| corrupt("value", e))?;
            Some(RunOutcome::Succeeded(value))
        }
        "failed" => Some(RunOutcome::Failed(failure()?)),
        "cancelled" => Some(RunOutcome::Cancelled(failure()?)),
        other => return Err(corrupt("run state", other)),
    };
    Ok(ModuleRun {
        id: RunId::from_store(column(row, 0)?),
        session_id: SessionId::from_store(column(row, 1)?),
        module_id: ModuleId::from_store(column(row, 2)?),
        acting_user: UserId::from_store(column(row, 3)?),
        start_time: timestamp(row, 5)?,
        end_time: column::<Option<i64>>(row, 6)?.map(Timestamp::from_unix_micros),
        outcome,
    })
}
