//! The one error type of the server: a closed set of failures, each mapped
//! once to a gRPC status by the API layer (`api::status`).
//!
//! The domain's rules return these; a store passes them on (and adds
//! [`Error::StoreUnavailable`] of its own), but never builds a `Status`.

use super::{ModuleId, RunId, ScopeId, SessionId, UserId};

/// Boxed source of an infrastructure failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's name in the request message (e.g. `user`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    #[must_use]
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Every way a sessiond operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request has invalid fields; nothing was done.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No session has this id.
    #[error("session {session_id} not found")]
    SessionNotFound {
        /// The id asked for.
        session_id: SessionId,
    },
    /// A clientless-only operation was asked of an interactive session.
    #[error("session {session_id} is not a clientless session")]
    SessionNotClientless {
        /// The interactive session.
        session_id: SessionId,
    },
    /// The session has ended; only reads are possible.
    #[error("session {session_id} has ended")]
    SessionEnded {
        /// The ended session.
        session_id: SessionId,
    },
    /// The session is closing; it accepts no new work.
    #[error("session {session_id} is closing")]
    SessionClosing {
        /// The closing session.
        session_id: SessionId,
    },
    /// The scope is not on the session's user-context stack.
    #[error("scope {scope_id} is not open in session {session_id}")]
    ScopeNotFound {
        /// The session.
        session_id: SessionId,
        /// The scope asked for.
        scope_id: ScopeId,
    },
    /// The scope is open but another one was pushed after it.
    #[error("scope {scope_id} of session {session_id} is not the innermost scope ({innermost} is)")]
    ScopeNotInnermost {
        /// The session.
        session_id: SessionId,
        /// The scope asked for.
        scope_id: ScopeId,
        /// The scope that may be popped now.
        innermost: ScopeId,
    },
    /// No module with this id is registered.
    #[error("module {module_id} is not registered")]
    ModuleNotFound {
        /// The id asked for.
        module_id: ModuleId,
    },
    /// The module was never opened in the session.
    #[error("module {module_id} was never opened in session {session_id}")]
    ModuleNotOpened {
        /// The session.
        session_id: SessionId,
        /// The module.
        module_id: ModuleId,
    },
    /// The run did not conclude within the wait the caller allowed; it goes
    /// on.
    #[error("module {module_id} (run {run_id}) is still running in session {session_id}")]
    ModuleStillRunning {
        /// The session.
        session_id: SessionId,
        /// The module.
        module_id: ModuleId,
        /// The run waited for.
        run_id: RunId,
    },
    /// As many modules are running as the server allows (in the session, or
    /// in the whole server).
    #[error("{limit} modules are already running in this {scope}, the most allowed")]
    TooManyRunningModules {
        /// `"session"` or `"server"`.
        scope: &'static str,
        /// The configured limit.
        limit: u32,
    },
    /// The user has as many open sessions as the server allows.
    #[error("user {user} already has {limit} open sessions, the most allowed")]
    TooManySessions {
        /// The user.
        user: String,
        /// The configured limit.
        limit: u32,
    },
    /// The session's owner node has no live lease or cannot be reached; its
    /// sessions are ended by another node once its lease expires.
    #[error("node {node}, which owns session {session_id}, is unavailable")]
    OwnerUnavailable {
        /// The session.
        session_id: SessionId,
        /// Its owner.
        node: String,
    },
    /// The server requires authentication and the call carried no
    /// credential it accepts; the text says what was wrong.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The policy does not grant the caller this action.
    #[error("{0}")]
    PermissionDenied(Box<Denial>),
    /// A read of the event log starts after `after`, whose events were
    /// compacted away; the oldest revision one may start after is
    /// `compact_revision`.
    #[error(
        "the events after revision {after} were compacted away; start after {compact_revision} or from the current state"
    )]
    RevisionCompacted {
        /// Where the read asked to start.
        after: i64,
        /// The revision of the compaction checkpoint.
        compact_revision: i64,
    },
    /// A watch was ended because its caller did not keep up; every event up
    /// to `revision` was sent.
    #[error("the watch fell behind and was ended; watch again after revision {revision}")]
    WatchTooSlow {
        /// Every event up to this revision was sent.
        revision: i64,
    },
    /// The server is shutting down; a stream ended at `revision`.
    #[error("the server is shutting down; watch again after revision {revision}")]
    ShuttingDown {
        /// Every event up to this revision was sent.
        revision: i64,
    },
    /// The server is shutting down and opens no new clientless session
    /// (the shutdown ends every session it acknowledged).
    #[error("the server is shutting down; open the session on another replica or once it is back")]
    ServerStopping,
    /// The store cannot be reached, is full, or is busy past its timeout.
    #[error("store unavailable: {0}")]
    StoreUnavailable(#[source] BoxError),
    /// A broken invariant: a bug, or a store that was changed behind our
    /// back.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An action the policy refused: what, to whom, on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The permission refused.
    pub permission: Permission,
    /// The caller.
    pub subject: String,
    /// The session it applies to, if any.
    pub session_id: Option<SessionId>,
    /// The user acted as or taken for, if any.
    pub user: Option<UserId>,
    /// The module to run, if any.
    pub module_id: Option<ModuleId>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} may not {}", self.subject, self.permission.describe())?;
        if let Some(user) = &self.user {
            write!(f, " {user}")?;
        }
        if let Some(module) = &self.module_id {
            write!(f, " (module {module})")?;
        }
        if let Some(session) = self.session_id {
            write!(f, " in session {session}")?;
        }
        Ok(())
    }
}

/// An action the access policy grants or refuses (the contract's
/// `Permission`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read a session: its user, record, user context, module values.
    ReadSession,
    /// Start an interactive session for a user.
    StartSession,
    /// Open a clientless session for a user.
    OpenClientlessSession,
    /// Record activity on a session.
    TouchSession,
    /// End or close a session.
    EndSession,
    /// Act as a user (set, push or pop a user context).
    ActAs,
    /// Run a module, acting as the session's user context.
    RunModule,
    /// Read the audit trail.
    ReadAudit,
}

impl Permission {
    /// The permission as the contract's `ErrorInfo` metadata spells it
    /// (`act_as`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadSession => "read_session",
            Self::StartSession => "start_session",
            Self::OpenClientlessSession => "open_clientless_session",
            Self::TouchSession => "touch_session",
            Self::EndSession => "end_session",
            Self::ActAs => "act_as",
            Self::RunModule => "run_module",
            Self::ReadAudit => "read_audit",
        }
    }

    /// The action in words, for messages ("act as").
    fn describe(self) -> &'static str {
        match self {
            Self::ReadSession => "read the session",
            Self::StartSession => "start a session for",
            Self::OpenClientlessSession => "open a clientless session for",
            Self::TouchSession => "touch the session",
            Self::EndSession => "end the session",
            Self::ActAs => "act as",
            Self::RunModule => "run modules as",
            Self::ReadAudit => "read the audit trail",
        }
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects the violations of several fields, so that a request reports
/// every bad field at once.
///
/// Implemented for tuples of `Result<T, FieldViolation>`:
/// `let (id, user) = (SessionId::parse(..), UserId::parse(..)).validate()?;`
pub trait Validate {
    /// The valid values.
    type Output;

    /// All values, or [`Error::InvalidArgument`] with every violation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when any field is invalid.
    fn validate(self) -> Result<Self::Output>;
}

impl<A> Validate for Result<A, FieldViolation> {
    type Output = A;

    fn validate(self) -> Result<A> {
        self.map_err(|v| Error::InvalidArgument(vec![v]))
    }
}

macro_rules! impl_validate_for_tuple {
    ($($name:ident),+) => {
        impl<$($name),+> Validate for ($(Result<$name, FieldViolation>,)+) {
            type Output = ($($name,)+);

            #[allow(non_snake_case)]
            fn validate(self) -> Result<Self::Output> {
                let ($($name,)+) = self;
                match ($($name,)+) {
                    ($(Ok($name),)+) => Ok(($($name,)+)),
                    ($($name,)+) => {
                        let mut violations = Vec::new();
                        $(if let Err(v) = $name { violations.push(v); })+
                        Err(Error::InvalidArgument(violations))
                    }
                }
            }
        }
    };
}

impl_validate_for_tuple!(A, B);
impl_validate_for_tuple!(A, B, C);
impl_validate_for_tuple!(A, B, C, D);
impl_validate_for_tuple!(A, B, C, D, E);
impl_validate_for_tuple!(A, B, C, D, E, F);
impl_validate_for_tuple!(A, B, C, D, E, F, G);
impl_validate_for_tuple!(A, B, C, D, E, F, G, H);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    #[test]
    fn validate_reports_every_bad_field() {
        let result = (
            SessionId::parse("session_id", 0),
            UserId::parse("user", String::new()),
        )
            .validate();
        let Err(Error::InvalidArgument(violations)) = result else {
            panic!("expected InvalidArgument, got {result:?}");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["session_id", "user"]);
    }

    #[test]
    fn validate_passes_good_fields_through() {
        let (id, user) = (
            SessionId::parse("session_id", 7),
            UserId::parse("user", "R41".to_owned()),
        )
            .validate()
            .unwrap();
        assert_eq!(id.get(), 7);
        assert_eq!(user.as_str(), "R41");
    }
}
