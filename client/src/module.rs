//! Modules: a started run, the states of a run, and why a run failed; and
//! the reading of a run's outcome (`GetReturnValue`) into a value or an
//! [`Error::ModuleFailed`].

use std::fmt;
use std::time::SystemTime;

use sessiond_proto::v1 as pb;

use crate::contract_enum::contract_enum;
use crate::error::{Error, Result};
use crate::ids::{RunId, SessionId};
use crate::time::required_time;
use crate::value;

contract_enum! {
    /// The state of one module run (the contract's `RunState`).
    pub enum RunState {
        /// Started and not concluded yet.
        Running = 1, "running", "RUN_STATE_RUNNING";
        /// Concluded with a value.
        Succeeded = 2, "succeeded", "RUN_STATE_SUCCEEDED";
        /// Concluded with an error.
        Failed = 3, "failed", "RUN_STATE_FAILED";
        /// Stopped before it concluded (its session closed and the grace ran
        /// out).
        Cancelled = 4, "cancelled", "RUN_STATE_CANCELLED";
    }
}

contract_enum! {
    /// The kinds of module failure (the contract's `ModuleFailureKind`).
    pub enum ModuleFailureKind {
        /// The module reported an error.
        Error = 1, "error", "MODULE_FAILURE_KIND_ERROR";
        /// The module's process exited with a non-zero status.
        ExitStatus = 2, "exit_status", "MODULE_FAILURE_KIND_EXIT_STATUS";
        /// The module's process was ended by a signal.
        Signal = 3, "signal", "MODULE_FAILURE_KIND_SIGNAL";
        /// The module's output was not one JSON document.
        InvalidOutput = 4, "invalid_output", "MODULE_FAILURE_KIND_INVALID_OUTPUT";
        /// The module's output was larger than the server's cap.
        OutputTooLarge = 5, "output_too_large", "MODULE_FAILURE_KIND_OUTPUT_TOO_LARGE";
        /// The run took longer than the module's timeout and was killed.
        Timeout = 6, "timeout", "MODULE_FAILURE_KIND_TIMEOUT";
        /// The run was cancelled (its session closed and the grace ran out).
        Cancelled = 7, "cancelled", "MODULE_FAILURE_KIND_CANCELLED";
        /// The server stopped while the run was running.
        Interrupted = 8, "interrupted", "MODULE_FAILURE_KIND_INTERRUPTED";
        /// The module could not be started.
        SpawnFailed = 9, "spawn_failed", "MODULE_FAILURE_KIND_SPAWN_FAILED";
    }
}

/// A module run as `OpenModule` started it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleRun {
    /// The run's id.
    pub run_id: RunId,
    /// Its state when the server answered (running, or already concluded
    /// for very fast modules).
    pub state: RunState,
    /// When it started.
    pub start_time: SystemTime,
    /// The user context it acts as: the session's effective user when it
    /// was opened.
    pub acting_user: String,
}

impl TryFrom<pb::OpenModuleResponse> for ModuleRun {
    type Error = Error;

    fn try_from(r: pb::OpenModuleResponse) -> Result<Self> {
        Ok(Self {
            run_id: RunId::new(r.run_id),
            state: RunState::from_wire(r.state)
                .ok_or_else(|| Error::invalid_response("state is unspecified"))?,
            start_time: required_time("start_time", r.start_time)?,
            acting_user: r.acting_user,
        })
    }
}

/// Why a module run failed or was cancelled (the contract's
/// `ModuleFailure`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleFailure {
    /// The kind of failure; `None` when the server did not say.
    pub kind: Option<ModuleFailureKind>,
    /// A human-readable description.
    pub message: String,
    /// The exit code of an exec module's process, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended an exec module's process, when one did.
    pub signal: Option<i32>,
    /// The last part of an exec module's standard error (at most 4 KiB).
    pub stderr_tail: String,
}

impl From<pb::ModuleFailure> for ModuleFailure {
    fn from(f: pb::ModuleFailure) -> Self {
        Self {
            kind: ModuleFailureKind::from_wire(f.kind),
            message: f.message,
            exit_code: f.exit_code,
            signal: f.signal,
            stderr_tail: f.stderr_tail,
        }
    }
}

impl fmt::Display for ModuleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{kind}")?,
            None => f.write_str("failure")?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(code) = self.exit_code {
            write!(f, " (exit code {code})")?;
        }
        if let Some(signal) = self.signal {
            write!(f, " (signal {signal})")?;
        }
        Ok(())
    }
}

/// The outcome of `GetReturnValue`: the value of a succeeded run, or
/// [`Error::ModuleFailed`] for a failed or cancelled one.
pub(crate) fn return_value(
    session_id: SessionId,
    module_id: &str,
    response: pb::GetReturnValueResponse,
) -> Result<serde_json::Value> {
    let failed = |failure: Option<pb::ModuleFailure>, default_kind| Error::ModuleFailed {
        session_id,
        module_id: module_id.to_owned(),
        run_id: RunId::new(response.run_id),
        failure: failure.map_or_else(
            || ModuleFailure {
                kind: default_kind,
                message: String::new(),
                exit_code: None,
                signal: None,
                stderr_tail: String::new(),
            },
            ModuleFailure::from,
        ),
    };
    match RunState::from_wire(response.state) {
        Some(RunState::Succeeded) => Ok(response
            .value
            .map_or(serde_json::Value::Null, value::from_proto)),
        Some(RunState::Failed) => Err(failed(response.failure, None)),
        Some(RunState::Cancelled) => {
            Err(failed(response.failure, Some(ModuleFailureKind::Cancelled)))
        }
        Some(RunState::Running) => Err(Error::ModuleStillRunning {
            session_id,
            module_id: module_id.to_owned(),
        }),
        Some(RunState::Unknown(n)) => {
            Err(Error::invalid_response(format!("unknown run state {n}")))
        }
        None => Err(Error::invalid_response("state is unspecified")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn response(state: RunState) -> pb::GetReturnValueResponse {
        pb::GetReturnValueResponse {
            run_id: 9,
            state: state.wire(),
            ..pb::GetReturnValueResponse::default()
        }
    }

    #[test]
    fn a_succeeded_run_gives_its_value_and_nothing_is_null() {
        let id = SessionId::new(1);
        let with_value = pb::GetReturnValueResponse {
            value: Some(value::to_proto(json!({"rows": [1, 2]}))),
            ..response(RunState::Succeeded)
        };
        assert_eq!(
            return_value(id, "100000", with_value).unwrap(),
            json!({"rows": [1, 2]})
        );
        assert_eq!(
            return_value(id, "100000", response(RunState::Succeeded)).unwrap(),
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_failed_run_is_module_failed_with_every_detail() {
        let failed = pb::GetReturnValueResponse {
            failure: Some(pb::ModuleFailure {
                kind: ModuleFailureKind::ExitStatus.wire(),
                message: "exited with 3".into(),
                exit_code: Some(3),
                signal: None,
                stderr_tail: "boom\n".into(),
            }),
            ..response(RunState::Failed)
        };
        let error = return_value(SessionId::new(1), "100000", failed).unwrap_err();
        let Error::ModuleFailed {
            session_id,
            module_id,
            run_id,
            failure,
        } = &error
        else {
            panic!("expected ModuleFailed, got {error:?}");
        };
        assert_eq!(
            (session_id.get(), module_id.as_str(), run_id.get()),
            (1, "100000", 9)
        );
        assert_eq!(failure.kind, Some(ModuleFailureKind::ExitStatus));
        assert_eq!(failure.exit_code, Some(3));
        assert_eq!(failure.signal, None);
        assert_eq!(failure.stderr_tail, "boom\n");
        assert!(error.to_string().contains("exit code 3"), "{error}");
    }

    #[test]
    fn a_cancelled_run_fails_as_cancelled_and_a_running_one_is_still_running() {
        let error =
            return_value(SessionId::new(1), "m", response(RunState::Cancelled)).unwrap_err();
        assert!(matches!(
            error,
            Error::ModuleFailed { ref failure, .. } if failure.kind == Some(ModuleFailureKind::Cancelled)
        ));
        let error = return_value(SessionId::new(1), "m", response(RunState::Running)).unwrap_err();
        assert!(
            matches!(error, Error::ModuleStillRunning { .. }),
            "{error:?}"
        );
        let unset = pb::GetReturnValueResponse::default();
        assert!(matches!(
            return_value(SessionId::new(1), "m", unset),
            Err(Error::InvalidResponse(_))
        ));
    }
}
