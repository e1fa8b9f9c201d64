//! Decoding rows, encoding the domain's enums as the PostgreSQL schema
//! spells them (the same words as SQLite's), and classifying database
//! errors.

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::model::{
    ClientDescription, ModuleFailure, ModuleId, ModuleRun, RunId, RunOutcome, Session, SessionId,
    Timestamp, UserId,
};
use crate::model::{Error, Result};

use crate::store::names::{corrupt, parse_failure_kind, parse_kind, parse_reason, parse_state};
pub(super) use crate::store::names::{kind_name, reason_name, state_name};

/// Decodes a row of the session columns (`select_session!`).
pub(super) fn session_from_row(row: &PgRow) -> Result<Session> {
    let id: i64 = row.try_get("session_id").map_err(store_error)?;
    let uuid: String = row.try_get("session_uuid").map_err(store_error)?;
    let kind: String = row.try_get("kind").map_err(store_error)?;
    let state: String = row.try_get("state").map_err(store_error)?;
    let end_reason: Option<String> = row.try_get("end_reason").map_err(store_error)?;
    let depth: i32 = row.try_get("depth").map_err(store_error)?;
    Ok(Session {
        id: SessionId::from_store(id),
        uuid: Uuid::from_str(&uuid).map_err(|e| corrupt("session_uuid", e))?,
        user: UserId::from_store(row.try_get("user_id").map_err(store_error)?),
        kind: parse_kind(&kind)?,
        state: parse_state(&state)?,
        start_time: timestamp(row, "start_time")?,
        end_time: optional_timestamp(row, "end_time")?,
        last_activity_time: timestamp(row, "last_activity_time")?,
        end_reason: end_reason.as_deref().map(parse_reason).transpose()?,
        effective_user: UserId::from_store(row.try_get("effective_user").map_err(store_error)?),
        client: ClientDescription::from_store(row.try_get("client").map_err(store_error)?),
        user_context_depth: u32::try_from(depth).map_err(|e| corrupt("depth", e))?,
        owner_node: row.try_get("owner_node").map_err(store_error)?,
    })
}

/// Decodes a row of the run columns (`select_run!`).
pub(super) fn run_from_row(row: &PgRow) -> Result<ModuleRun> {
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
        end_time: optional_timestamp(row, "end_time")?,
        outcome,
    })
}

fn timestamp(row: &PgRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_micros(
        row.try_get(column).map_err(store_error)?,
    ))
}

fn optional_timestamp(row: &PgRow, column: &str) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(column)
        .map_err(store_error)?
        .map(Timestamp::from_unix_micros))
}

/// Text as a PostgreSQL `TEXT` column can hold it: PostgreSQL refuses the
/// NUL character, which a module's stderr or error message may contain, so
/// each one becomes U+FFFD (the replacement character).
pub(super) fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Classifies a database error: trouble reaching or writing the database
/// is [`Error::StoreUnavailable`] (the caller may retry); anything else —
/// a violated constraint, a query the schema does not fit, a value that
/// does not decode — means the code and the schema disagree, a bug.
pub(super) fn store_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::PoolTimedOut => Error::StoreUnavailable(
            "no PostgreSQL connection became free in time: the server is unreachable, or every \
             connection is busy"
                .into(),
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Configuration(_) => Error::StoreUnavailable(Box::new(error)),
        sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_unavailable(&c)) => {
            Error::StoreUnavailable(Box::new(error))
        }
        other => Error::Internal(other.to_string()),
    }
}

/// Whether a SQLSTATE says the database could not do the work now rather
/// than that the work was wrong.
fn is_unavailable(sqlstate: &str) -> bool {
    // 08: connection exception; 40: transaction rollback (serialization
    // failure, deadlock); 53: insufficient resources (disk full, out of
    // memory, too many connections); 57: operator intervention (shutdown,
    // cannot connect now, statement timeout); 58: system error (I/O);
    // 25006: read-only transaction (a standby, or a full disk's safeguard);
    // 55P03: lock not available.
    matches!(sqlstate.get(..2), Some("08" | "40" | "53" | "57" | "58"))
        || matches!(sqlstate, "25006" | "55P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_and_other_text_is_kept() {
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
        assert_eq!(text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn sqlstates_are_classified() {
        for unavailable in [
            "08006", "40001", "40P01", "53100", "57P01", "58030", "25006",
        ] {
            assert!(is_unavailable(unavailable), "{unavailable}");
        }
        for bug in ["23505", "23514", "42P01", "22P02"] {
            assert!(!is_unavailable(bug), "{bug}");
        }
    }
}
