//! How the schema spells the domain's enums, shared by every backend: the
//! same words in SQLite and PostgreSQL, so that a session reads the same in
//! either.

use crate::model::{EndReason, FailureKind, ModuleRun, RunOutcome, SessionKind, SessionState};
use crate::model::{Error, Result};
use crate::store::SessionQuery;

pub(crate) fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Interactive => "interactive",
        SessionKind::Clientless => "clientless",
    }
}

pub(crate) fn parse_kind(name: &str) -> Result<SessionKind> {
    match name {
        "interactive" => Ok(SessionKind::Interactive),
        "clientless" => Ok(SessionKind::Clientless),
        other => Err(corrupt("kind", other)),
    }
}

pub(crate) fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Open => "open",
        SessionState::Closing => "closing",
        SessionState::Ended => "ended",
    }
}

/// The state filter of a listing as three SQL parameters, one per state
/// (open, closing, ended): the state's name when `query` wants sessions in
/// it, else NULL, for `s.state IN (?, ?, ?)`. An empty filter wants every
/// state.
pub(crate) fn state_slots(query: &SessionQuery) -> [Option<&'static str>; 3] {
    [
        SessionState::Open,
        SessionState::Closing,
        SessionState::Ended,
    ]
    .map(|state| query.wants_state(state).then(|| state_name(state)))
}

pub(crate) fn parse_state(name: &str) -> Result<SessionState> {
    match name {
        "open" => Ok(SessionState::Open),
        "closing" => Ok(SessionState::Closing),
        "ended" => Ok(SessionState::Ended),
        other => Err(corrupt("state", other)),
    }
}

pub(crate) fn reason_name(reason: EndReason) -> &'static str {
    match reason {
        EndReason::ClosedByClient => "closed_by_client",
        EndReason::IdleTimeout => "idle_timeout",
        EndReason::MaxLifetime => "max_lifetime",
        EndReason::ServerShutdown => "server_shutdown",
        EndReason::ServerRestart => "server_restart",
        EndReason::NodeLost => "node_lost",
    }
}

pub(crate) fn parse_reason(name: &str) -> Result<EndReason> {
    match name {
        "closed_by_client" => Ok(EndReason::ClosedByClient),
        "idle_timeout" => Ok(EndReason::IdleTimeout),
        "max_lifetime" => Ok(EndReason::MaxLifetime),
        "server_shutdown" => Ok(EndReason::ServerShutdown),
        "server_restart" => Ok(EndReason::ServerRestart),
        "node_lost" => Ok(EndReason::NodeLost),
        other => Err(corrupt("end_reason", other)),
    }
}

pub(crate) fn failure_kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Error => "error",
        FailureKind::ExitStatus => "exit_status",
        FailureKind::Signal => "signal",
        FailureKind::InvalidOutput => "invalid_output",
        FailureKind::OutputTooLarge => "output_too_large",
        FailureKind::Timeout => "timeout",
        FailureKind::Cancelled => "cancelled",
        FailureKind::Interrupted => "interrupted",
        FailureKind::SpawnFailed => "spawn_failed",
    }
}

pub(crate) fn parse_failure_kind(name: &str) -> Result<FailureKind> {
    Ok(match name {
        "error" => FailureKind::Error,
        "exit_status" => FailureKind::ExitStatus,
        "signal" => FailureKind::Signal,
        "invalid_output" => FailureKind::InvalidOutput,
        "output_too_large" => FailureKind::OutputTooLarge,
        "timeout" => FailureKind::Timeout,
        "cancelled" => FailureKind::Cancelled,
        "interrupted" => FailureKind::Interrupted,
        "spawn_failed" => FailureKind::SpawnFailed,
        other => return Err(corrupt("failure_kind", other)),
    })
}

/// The columns of a concluded run's row, as both schemas spell them, in the
/// order of [`CONCLUDE_RUN_COLUMNS`].
#[derive(Debug)]
pub(crate) struct ConcludedRun<'a> {
    pub state: &'static str,
    pub end_time: Option<i64>,
    pub value: Option<String>,
    pub failure_kind: Option<&'static str>,
    pub failure_message: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stderr_tail: Option<&'a str>,
}

/// The columns a run's conclusion writes, in [`ConcludedRun`]'s order.
pub(crate) const CONCLUDE_RUN_COLUMNS: [&str; 8] = [
    "state",
    "end_time",
    "value",
    "failure_kind",
    "failure_message",
    "exit_code",
    "signal",
    "stderr_tail",
];

impl<'a> ConcludedRun<'a> {
    /// The columns of `run`, which has concluded (else `None`).
    pub(crate) fn of(run: &'a ModuleRun) -> Option<Self> {
        let outcome = run.outcome.as_ref()?;
        let failure = match outcome {
            RunOutcome::Succeeded(_) => None,
            RunOutcome::Failed(failure) | RunOutcome::Cancelled(failure) => Some(failure),
        };
        Some(Self {
            state: run_state_name(outcome.state()),
            end_time: run.end_time.map(crate::model::Timestamp::unix_micros),
            value: match outcome {
                RunOutcome::Succeeded(value) => Some(value.to_string()),
                _ => None,
            },
            failure_kind: failure.map(|f| failure_kind_name(f.kind)),
            failure_message: failure.map(|f| f.message.as_str()),
            exit_code: failure.and_then(|f| f.exit_code),
            signal: failure.and_then(|f| f.signal),
            stderr_tail: failure.map(|f| f.stderr_tail.as_str()),
        })
    }
}

/// A value in the database that no version of sessiond writes.
pub(crate) fn corrupt(column: &str, value: impl std::fmt::Display) -> Error {
    Error::Internal(format!("unexpected {column} in the database: {value}"))
}

pub(crate) fn run_state_name(state: crate::model::RunState) -> &'static str {
    use crate::model::RunState;
    match state {
        RunState::Running => "running",
        RunState::Succeeded => "succeeded",
        RunState::Failed => "failed",
        RunState::Cancelled => "cancelled",
    }
}
