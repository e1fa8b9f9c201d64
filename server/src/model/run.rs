//! Module runs: one `OpenModule` of a module in a clientless session, its
//! state and its outcome; and the rules: which session may start a run, and
//! how a run concludes once, for good.

use std::fmt;

use super::{
    Error, FieldViolation, Result, Session, SessionId, SessionKind, SessionState, Timestamp,
    UserId, check_text,
};

/// A module run's id: assigned by the store, > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(i64);

impl RunId {
    /// Wraps an id read from the store.
    #[must_use]
    pub fn from_store(id: i64) -> Self {
        Self(id)
    }

    /// The raw id, as the contract carries it.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A module's id (e.g. `"100000"`): 1–256 characters, not blank, no control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(String);

impl ModuleId {
    /// Validates caller input (or a manifest's key).
    ///
    /// # Errors
    /// A violation of `field` saying which rule `id` breaks.
    pub fn parse(field: &str, id: String) -> Result<Self, FieldViolation> {
        check_text(field, &id, false)?;
        Ok(Self(id))
    }

    /// Wraps an id read from the store.
    #[must_use]
    pub fn from_store(id: String) -> Self {
        Self(id)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Started, not concluded.
    Running,
    /// Concluded with a value.
    Succeeded,
    /// Concluded with a failure.
    Failed,
    /// Stopped before it concluded.
    Cancelled,
}

/// The kinds of module failure (the contract's `ModuleFailureKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// An in-process module returned an error.
    Error,
    /// The process exited with a non-zero status.
    ExitStatus,
    /// The process was ended by a signal.
    Signal,
    /// The output was not one JSON document.
    InvalidOutput,
    /// The output exceeded the cap.
    OutputTooLarge,
    /// The run exceeded its timeout.
    Timeout,
    /// The run was cancelled (its session closed and the grace ran out).
    Cancelled,
    /// The server stopped while the run was running.
    Interrupted,
    /// The module could not be started.
    SpawnFailed,
}

/// Why a run did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFailure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// A human-readable description.
    pub message: String,
    /// The process's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, when one did.
    pub signal: Option<i32>,
    /// The end of the process's standard error.
    pub stderr_tail: String,
}

impl ModuleFailure {
    /// A failure of `kind` with a message and no process details.
    #[must_use]
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            exit_code: None,
            signal: None,
            stderr_tail: String::new(),
        }
    }

    /// The error an in-process module reports.
    #[must_use]
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Error, message)
    }
}

/// How a run concluded.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// With this return value.
    Succeeded(serde_json::Value),
    /// With this failure.
    Failed(ModuleFailure),
    /// Cancelled, for this reason.
    Cancelled(ModuleFailure),
}

impl RunOutcome {
    /// The state a run with this outcome is in.
    #[must_use]
    pub fn state(&self) -> RunState {
        match self {
            Self::Succeeded(_) => RunState::Succeeded,
            Self::Failed(_) => RunState::Failed,
            Self::Cancelled(_) => RunState::Cancelled,
        }
    }
}

/// The deepest nesting of arrays and objects a run's value may have.
///
/// Clients read a value as a `google.protobuf.Value` inside the response,
/// and protobuf decoders (prost, the C++ and Python ones) refuse messages
/// nested more than 100 deep; each level of the value costs up to three
/// (an object is a `Struct`, a map entry and a `Value`). 32 levels stay
/// within that, so that every value stored can be read.
pub const MAX_VALUE_DEPTH: usize = 32;

/// Whether clients can read `value` back: the failure of a run that
/// returned a value nested deeper than [`MAX_VALUE_DEPTH`].
///
/// # Errors
/// A [`FailureKind::InvalidOutput`] failure saying so.
pub fn check_value(value: &serde_json::Value) -> Result<(), ModuleFailure> {
    use serde_json::Value;
    // Iterative, so that any depth an in-process module builds is measured.
    let mut deepest = 0;
    let mut pending = vec![(value, 0_usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        if deepest > MAX_VALUE_DEPTH {
            return Err(ModuleFailure::new(
                FailureKind::InvalidOutput,
                format!(
                    "the value nests arrays and objects more than {MAX_VALUE_DEPTH} levels deep, \
                     deeper than clients can read"
                ),
            ));
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// The durable record of one module run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleRun {
    /// The store-assigned id.
    pub id: RunId,
    /// The session it runs in.
    pub session_id: SessionId,
    /// The module.
    pub module_id: ModuleId,
    /// The session's user context when the module was opened.
    pub acting_user: UserId,
    /// When it started.
    pub start_time: Timestamp,
    /// When it concluded; `None` while running.
    pub end_time: Option<Timestamp>,
    /// How it concluded; `None` while running.
    pub outcome: Option<RunOutcome>,
}

impl ModuleRun {
    /// The run's state.
    #[must_use]
    pub fn state(&self) -> RunState {
        self.outcome
            .as_ref()
            .map_or(RunState::Running, RunOutcome::state)
    }

    /// Why the run failed or was cancelled; `None` while running or when it
    /// succeeded.
    #[must_use]
    pub fn failure(&self) -> Option<&ModuleFailure> {
        match self.outcome.as_ref()? {
            RunOutcome::Succeeded(_) => None,
            RunOutcome::Failed(failure) | RunOutcome::Cancelled(failure) => Some(failure),
        }
    }

    /// The record of this run concluded with `outcome` at `now`; `None` when
    /// it already concluded: the first outcome stands.
    #[must_use]
    pub fn conclude(&self, outcome: RunOutcome, now: Timestamp) -> Option<Self> {
        if self.outcome.is_some() {
            return None;
        }
        Some(Self {
            end_time: Some(now),
            outcome: Some(outcome),
            ..self.clone()
        })
    }

    /// What crash recovery records of a run its server stopped in the
    /// middle of: failed, interrupted; `None` when it had concluded.
    #[must_use]
    pub fn interrupt(&self, now: Timestamp) -> Option<Self> {
        self.conclude(
            RunOutcome::Failed(ModuleFailure::new(
                FailureKind::Interrupted,
                "the server stopped while the module was running",
            )),
            now,
        )
    }
}

/// A run about to be recorded (the store assigns its id).
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    /// The session it runs in.
    pub session_id: SessionId,
    /// The module.
    pub module_id: ModuleId,
    /// The session's user context when it was opened.
    pub acting_user: UserId,
    /// Its parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// When it started.
    pub start_time: Timestamp,
}

impl NewRun {
    /// The record of this run as created with `id`, running.
    #[must_use]
    pub fn into_run(self, id: RunId) -> ModuleRun {
        ModuleRun {
            id,
            session_id: self.session_id,
            module_id: self.module_id,
            acting_user: self.acting_user,
            start_time: self.start_time,
            end_time: None,
            outcome: None,
        }
    }
}

impl Session {
    /// `OpenModule`: whether a run of `module` may start now — only in an
    /// open clientless session — and, if so, the run to record (acting as
    /// the session's current user context) and the session with activity at
    /// `now`.
    ///
    /// # Errors
    /// [`Error::SessionNotClientless`], [`Error::SessionClosing`],
    /// [`Error::SessionEnded`].
    pub fn start_run(
        &self,
        module: ModuleId,
        parameters: serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
    ) -> Result<(NewRun, Self)> {
        let session_id = self.id;
        match (self.kind, self.state) {
            (SessionKind::Interactive, _) => {
                return Err(Error::SessionNotClientless { session_id });
            }
            (_, SessionState::Closing) => return Err(Error::SessionClosing { session_id }),
            (_, SessionState::Ended) => return Err(Error::SessionEnded { session_id }),
            (SessionKind::Clientless, SessionState::Open) => {}
        }
        let run = NewRun {
            session_id,
            module_id: module,
            acting_user: self.effective_user.clone(),
            parameters,
            start_time: now,
        };
        Ok((run, self.touched(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `levels` arrays or objects, one inside the other, around a number.
    fn nested(levels: usize, object: bool) -> serde_json::Value {
        (0..levels).fold(serde_json::json!(1), |inner, _| {
            if object {
                serde_json::json!({ "x": inner })
            } else {
                serde_json::json!([inner])
            }
        })
    }

    #[test]
    fn values_nested_deeper_than_clients_read_are_refused() {
        for object in [false, true] {
            assert!(check_value(&nested(MAX_VALUE_DEPTH, object)).is_ok());
            let failure = check_value(&nested(MAX_VALUE_DEPTH + 1, object)).unwrap_err();
            assert_eq!(failure.kind, FailureKind::InvalidOutput);
        }
        assert!(check_value(&serde_json::json!("flat")).is_ok());
    }
}
