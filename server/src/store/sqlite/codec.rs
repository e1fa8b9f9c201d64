//! Decoding rows and encoding the domain's enums as the SQLite schema spells
//! them.

use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{
    ClientDescription, ModuleFailure, ModuleId, ModuleRun, RunId, RunOutcome, Session, SessionId,
    Timestamp, UserId,
};

use crate::store::names::{corrupt, parse_failure_kind, parse_kind, parse_reason, parse_state};
pub(super) use crate::store::names::{
    failure_kind_name, kind_name, reason_name, run_state_name, state_name,
};

pub(super) fn session_from_row(row: &SqliteRow) -> Result<Session> {
    let id: i64 = row.try_get("session_id").map_err(store_error)?;
    let uuid: String = row.try_get("session_uuid").map_err(store_error)?;
    let kind: String = row.try_get("kind").map_err(store_error)?;
    let state: String = row.try_get("state").map_err(store_error)?;
    let end_reason: Option<String> = row.try_get("end_reason").map_err(store_error)?;
    let depth: i64 = row.try_get("depth").map_err(store_error)?;
    Ok(Session {
        id: SessionId::from_store(id),
        uuid: Uuid::from_str(&uuid).map_err(|e| corrupt("session_uuid", e))?,
        user: UserId::from_store(row.try_get("user_id").map_err(store_error)?),
        kind: parse_kind(&kind)?,
        state: parse_state(&state)?,
        start_time: timestamp(row, "start_time")?,
        end_time: row
            .try_get::<Option<i64>, _>("end_time")
            .map_err(store_error)?
            .map(Timestamp::from_unix_micros),
        last_activity_time: timestamp(row, "last_activity_time")?,
        end_reason: end_reason.as_deref().map(parse_reason).transpose()?,
        effective_user: UserId::from_store(row.try_get("effective_user").map_err(store_error)?),
        client: ClientDescription::from_store(row.try_get("client").map_err(store_error)?),
        user_context_depth: u32::try_from(depth).map_err(|e| corrupt("depth", e))?,
        owner_node: row.try_get("owner_node").map_err(store_error)?,
    })
}

pub(super) fn timestamp(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_micros(
        row.try_get(column).map_err(store_error)?,
    ))
}

/// Classifies a database error: trouble reaching or writing the database
/// is [`Error::StoreUnavailable`] (the caller may retry); anything else
/// means the schema and the code disagree, a bug.
pub(super) fn store_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Configuration(_) => Error::StoreUnavailable(Box::new(error)),
        // A violated constraint means the code and the schema disagree; any
        // other database error (full, I/O, busy past the timeout, read-only)
        // is the store being unavailable.
        sqlx::Error::Database(ref db) if db.kind() == sqlx::error::ErrorKind::Other => {
            Error::StoreUnavailable(Box::new(error))
        }
        other => Error::Internal(other.to_string()),
    }
}

pub(super) fn run_from_row(row: &SqliteRow) -> Result<ModuleRun> {
    let state: String = row.try_get("state").map_err(store_error)?;
    let failure = || -> Result<ModuleFailure> {
        let kind: Option<String> = row.try_get("failure_kind").map_err(store_error)?;
        let kind = kind.ok_or_else(|| corrupt("failure_kind", "NULL"))?;
        Ok(ModuleFailure {
            kind: parse_failure_kind(&kind)?,
            message: row
                .try_get::<Option<String>, _>("failure_message")
                .map_err(store_error)?
                .unwrap_or_default(),
            exit_code: row.try_get("exit_code").map_err(store_error)?,
            signal: row.try_get("signal").map_err(store_error)?,
            stderr_tail: row
                .try_get::<Option<String>, _>("stderr_tail")
                .map_err(store_error)?
                .unwrap_or_default(),
        })
    };
    let outcome = match state.as_str() {
        "running" => None,
        "succeeded" => {
            let value: String = row.try_get("value").map_err(store_error)?;
            let value = serde_json::from_str(&value).map_err(|e| corrupt("value", e))?;
            Some(RunOutcome::Succeeded(value))
        }
        "failed" => Some(RunOutcome::Failed(failure()?)),
        "cancelled" => Some(RunOutcome::Cancelled(failure()?)),
        other => return Err(corrupt("run state", other)),
    };
    Ok(ModuleRun {
        id: RunId::from_store(row.try_get("run_id").map_err(store_error)?),
        session_id: SessionId::from_store(row.try_get("session_id").map_err(store_error)?),
        module_id: ModuleId::from_store(row.try_get("module_id").map_err(store_error)?),
        acting_user: UserId::from_store(row.try_get("acting_user").map_err(store_error)?),
        start_time: timestamp(row, "start_time")?,
        end_time: row
            .try_get::<Option<i64>, _>("end_time")
            .map_err(store_error)?
            .map(Timestamp::from_unix_micros),
        outcome,
    })
}
