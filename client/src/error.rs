//! The one error type of the crate: the server's `ErrorInfo` reasons decoded
//! into typed variants, plus connection, configuration and status fallbacks.
//!
//! The reasons are the contract's `ErrorReason` enum
//! (`proto/sessiond/v1/error_reason.proto`): a reason string is parsed into
//! it once ([`parse_reason`]), and each value maps to its variant in one
//! exhaustive match, so a reason added to the contract does not compile
//! until it is decoded here.

use std::error::Error as _;
use std::fmt;

use sessiond_proto::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::ids::{RunId, ScopeId, SessionId};
use crate::module::ModuleFailure;

/// The `ErrorInfo` domain of every error the server reports.
pub const ERROR_DOMAIN: &str = "sessiond";

/// The prefix of every `ErrorReason` value's name in the contract, which
/// the `ErrorInfo` reason on the wire leaves out.
const REASON_PREFIX: &str = "ERROR_REASON_";

/// The result type of every fallible operation of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One invalid field of a request, from the server's `google.rpc.BadRequest`
/// (or from the client's own check, before anything was sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's name in the request message (for example `user`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// Every way an operation of this crate can fail.
///
/// The variants up to [`Error::UnknownReason`] are the server's `ErrorInfo`
/// reasons (the contract's `ErrorReason`, see
/// `proto/sessiond/v1/error_reason.proto`); such a failed request changed
/// nothing on the server, except where a variant says its outcome is
/// unknown. Ids the server did not name in the error's metadata are filled
/// in from the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `INVALID_ARGUMENT`: the request has invalid fields; nothing was done.
    #[error("{}", describe_invalid_argument(message))]
    InvalidArgument {
        /// The server's (or the client's) description.
        message: String,
        /// Every offending field.
        violations: Vec<FieldViolation>,
    },
    /// `SESSION_NOT_FOUND`: no session has this id (the seed's
    /// `SessionNotFoundException`).
    #[error("session {session_id} not found")]
    SessionNotFound {
        /// The id asked for.
        session_id: SessionId,
    },
    /// `SESSION_NOT_CLIENTLESS`: a clientless-only operation on an
    /// interactive session.
    #[error("session {session_id} is not a clientless session")]
    SessionNotClientless {
        /// The interactive session.
        session_id: SessionId,
    },
    /// `SESSION_ENDED`: the session has ended; only reads are possible.
    #[error("session {session_id} has ended")]
    SessionEnded {
        /// The ended session.
        session_id: SessionId,
    },
    /// `SESSION_CLOSING`: the session is closing and accepts no new modules.
    #[error("session {session_id} is closing")]
    SessionClosing {
        /// The closing session.
        session_id: SessionId,
    },
    /// `SCOPE_NOT_FOUND`: the scope is not on the session's user-context
    /// stack (already popped, or never pushed there).
    #[error("scope {scope_id} is not open in session {session_id}")]
    ScopeNotFound {
        /// The session.
        session_id: SessionId,
        /// The scope asked for.
        scope_id: ScopeId,
    },
    /// `SCOPE_NOT_INNERMOST`: the scope is open but another one was pushed
    /// after it; scopes must be restored innermost first.
    #[error("scope {scope_id} of session {session_id} is not the innermost scope")]
    ScopeNotInnermost {
        /// The session.
        session_id: SessionId,
        /// The scope asked for.
        scope_id: ScopeId,
        /// The scope that may be popped now, when the server named it.
        innermost_scope_id: Option<ScopeId>,
    },
    /// `MODULE_NOT_FOUND`: the server knows no module with this id.
    #[error("module {module_id:?} is not registered")]
    ModuleNotFound {
        /// The module asked for.
        module_id: String,
    },
    /// `MODULE_NOT_OPENED`: the module was never opened in this session.
    #[error("module {module_id:?} was never opened in session {session_id}")]
    ModuleNotOpened {
        /// The session.
        session_id: SessionId,
        /// The module asked for.
        module_id: String,
    },
    /// `MODULE_STILL_RUNNING`: the module's latest run did not conclude
    /// within the requested timeout; it goes on running.
    #[error("module {module_id:?} in session {session_id} is still running")]
    ModuleStillRunning {
        /// The session.
        session_id: SessionId,
        /// The module.
        module_id: String,
    },
    /// The module's latest run concluded without a value: it failed or was
    /// cancelled. Not a status: the server answered with the run's outcome.
    #[error("module {module_id:?} in session {session_id} failed: {failure}")]
    ModuleFailed {
        /// The session.
        session_id: SessionId,
        /// The module.
        module_id: String,
        /// The run that failed.
        run_id: RunId,
        /// Why: kind, message, exit code, signal and the tail of stderr.
        failure: ModuleFailure,
    },
    /// `TOO_MANY_SESSIONS`: the user has as many open sessions as the server
    /// allows.
    #[error("{message}")]
    TooManySessions {
        /// The user, when the server named it.
        user: Option<String>,
        /// The configured limit, when the server named it.
        limit: Option<u32>,
        /// The server's description.
        message: String,
    },
    /// `TOO_MANY_RUNNING_MODULES`: the server runs as many modules as it
    /// allows.
    #[error("{message}")]
    TooManyRunningModules {
        /// The server's description.
        message: String,
    },
    /// `STORE_UNAVAILABLE`: the server's store cannot be reached; nothing
    /// was changed, retry later. Reads (and writes, which the server
    /// guarantees did nothing) were already retried per the
    /// [`RetryPolicy`](crate::RetryPolicy).
    #[error("the session store is unavailable: {message}")]
    StoreUnavailable {
        /// The server's description.
        message: String,
    },
    /// `OWNER_UNAVAILABLE`: the request had to be served by the server
    /// replica that owns the session, and that replica has no live lease or
    /// cannot be reached. Once its lease expires another replica ends its
    /// clientless sessions. Whether a forwarded write reached the owner
    /// before the connection failed is unknown.
    #[error("{}", describe_owner_unavailable(*session_id, node.as_deref()))]
    OwnerUnavailable {
        /// The session.
        session_id: SessionId,
        /// The owner's node id, when the server named it.
        node: Option<String>,
    },
    /// `REVISION_COMPACTED`: a watch started at a revision whose events
    /// the server no longer keeps; start again from the current state.
    #[error(
        "the events after that revision were compacted away (oldest start: {compact_revision:?})"
    )]
    RevisionCompacted {
        /// The oldest revision a watch may start after, when the server said.
        compact_revision: Option<i64>,
    },
    /// `WATCH_TOO_SLOW`: the server ended a watch that did not keep up;
    /// nothing was lost, watch again after `revision`.
    #[error("the watch fell behind and the server ended it (at revision {revision:?})")]
    WatchTooSlow {
        /// Every event up to this revision was sent.
        revision: Option<i64>,
    },
    /// `SERVER_SHUTTING_DOWN`: the server is stopping; a stream it served
    /// ended (watch again, elsewhere or later, after `revision`), or it
    /// refused to open a clientless session (open it elsewhere or later).
    #[error("the server is shutting down (a watch ended at revision {revision:?})")]
    ServerShuttingDown {
        /// For a watch: every event up to this revision was sent.
        revision: Option<i64>,
    },
    /// `INTERNAL`: a bug in the server; details are in its log.
    #[error("internal server error: {message}")]
    Internal {
        /// The server's description.
        message: String,
    },
    /// `UNAUTHENTICATED`: the server requires authentication and the call
    /// carried no credential, or one it does not accept (malformed, expired,
    /// from another issuer, unknown, or a module run's credential after the
    /// run concluded). See
    /// [`ClientBuilder::bearer_token`](crate::ClientBuilder::bearer_token)
    /// and [`TlsSettings`](crate::TlsSettings).
    #[error("{}", describe_prefixed("unauthenticated", message))]
    Unauthenticated {
        /// The server's description.
        message: String,
    },
    /// `PERMISSION_DENIED`: the caller is authenticated but the server's
    /// policy does not grant this action; nothing was done. (A session the
    /// caller may not read is [`Error::SessionNotFound`] instead, as if it
    /// did not exist.) [`Client::check_access`](crate::Client::check_access)
    /// asks the same question without taking the action.
    #[error("{}", describe_prefixed("permission denied", message))]
    PermissionDenied {
        /// The permission refused, as the contract's metadata spells it
        /// (`"act_as"`, `"read_session"`, …; see
        /// [`Permission::name`](crate::Permission::name)); empty when the
        /// server did not name it.
        permission: String,
        /// The caller, as the server authenticated it; empty when the server
        /// did not name it.
        subject: String,
        /// The session the action was on, where it applies to one.
        session_id: Option<SessionId>,
        /// The user acted as or taken for, where the action names one.
        user: Option<String>,
        /// The module to run, for `run_module`.
        module_id: Option<String>,
        /// The server's description.
        message: String,
    },
    /// A sessiond `ErrorInfo` reason this version of the client does not
    /// know (sent by a newer server): handle it by its code.
    #[error("{} (reason {reason})", describe_status(status))]
    UnknownReason {
        /// The `ErrorInfo` reason.
        reason: String,
        /// The status, with its code, message and details.
        status: Box<Status>,
    },
    /// The call's deadline (see [`ClientBuilder::timeout`](crate::ClientBuilder::timeout))
    /// passed before it completed; whether a write took effect is unknown.
    #[error("the call's deadline passed before it completed")]
    DeadlineExceeded,
    /// The connection to the server could not be established.
    #[error("cannot connect to {endpoint}")]
    Connect {
        /// The endpoint connected to.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The client's settings cannot be used (a malformed endpoint or token,
    /// TLS without the `tls` feature…); nothing was sent.
    #[error("invalid client settings: {0}")]
    Config(String),
    /// The server's answer breaks the contract (a required field is unset,
    /// a UUID does not parse…).
    #[error("invalid response from the server: {0}")]
    InvalidResponse(String),
    /// Any other gRPC status: the server is unreachable (`UNAVAILABLE`,
    /// after retries where allowed), an RPC the server does not implement,
    /// or a reason this client version does not know.
    #[error("{}", describe_status(.0))]
    Status(Box<Status>),
}

impl Error {
    /// The gRPC code the server answered with, or that a variant stands for;
    /// `None` for failures on the client's side ([`Error::Config`],
    /// [`Error::InvalidResponse`], [`Error::ModuleFailed`], and an
    /// [`Error::InvalidArgument`] raised before sending).
    #[must_use]
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::SessionNotFound { .. }
            | Self::ScopeNotFound { .. }
            | Self::ModuleNotFound { .. }
            | Self::ModuleNotOpened { .. } => Code::NotFound,
            Self::SessionNotClientless { .. }
            | Self::SessionEnded { .. }
            | Self::SessionClosing { .. }
            | Self::ScopeNotInnermost { .. } => Code::FailedPrecondition,
            Self::ModuleStillRunning { .. } | Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::TooManySessions { .. } | Self::TooManyRunningModules { .. } => {
                Code::ResourceExhausted
            }
            Self::StoreUnavailable { .. }
            | Self::OwnerUnavailable { .. }
            | Self::WatchTooSlow { .. }
            | Self::ServerShuttingDown { .. }
            | Self::Connect { .. } => Code::Unavailable,
            Self::RevisionCompacted { .. } => Code::OutOfRange,
            Self::Internal { .. } => Code::Internal,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::UnknownReason { status, .. } | Self::Status(status) => status.code(),
            Self::ModuleFailed { .. } | Self::Config(_) | Self::InvalidResponse(_) => {
                return None;
            }
        })
    }

    /// The server's `ErrorInfo` reason this variant decodes (for example
    /// `"SESSION_NOT_FOUND"`), or the unknown reason of
    /// [`Error::UnknownReason`]; `None` for the other variants.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::UnknownReason { reason, .. } => Some(reason),
            known => known.error_reason().map(reason_name),
        }
    }

    /// The contract's `ErrorReason` this variant stands for.
    fn error_reason(&self) -> Option<ErrorReason> {
        Some(match self {
            Self::InvalidArgument { .. } => ErrorReason::InvalidArgument,
            Self::SessionNotFound { .. } => ErrorReason::SessionNotFound,
            Self::SessionNotClientless { .. } => ErrorReason::SessionNotClientless,
            Self::SessionEnded { .. } => ErrorReason::SessionEnded,
            Self::SessionClosing { .. } => ErrorReason::SessionClosing,
            Self::ScopeNotFound { .. } => ErrorReason::ScopeNotFound,
            Self::ScopeNotInnermost { .. } => ErrorReason::ScopeNotInnermost,
            Self::ModuleNotFound { .. } => ErrorReason::ModuleNotFound,
            Self::ModuleNotOpened { .. } => ErrorReason::ModuleNotOpened,
            Self::ModuleStillRunning { .. } => ErrorReason::ModuleStillRunning,
            Self::TooManySessions { .. } => ErrorReason::TooManySessions,
            Self::TooManyRunningModules { .. } => ErrorReason::TooManyRunningModules,
            Self::OwnerUnavailable { .. } => ErrorReason::OwnerUnavailable,
            Self::StoreUnavailable { .. } => ErrorReason::StoreUnavailable,
            Self::Internal { .. } => ErrorReason::Internal,
            Self::Unauthenticated { .. } => ErrorReason::Unauthenticated,
            Self::PermissionDenied { .. } => ErrorReason::PermissionDenied,
            Self::RevisionCompacted { .. } => ErrorReason::RevisionCompacted,
            Self::WatchTooSlow { .. } => ErrorReason::WatchTooSlow,
            Self::ServerShuttingDown { .. } => ErrorReason::ServerShuttingDown,
            Self::ModuleFailed { .. }
            | Self::UnknownReason { .. }
            | Self::DeadlineExceeded
            | Self::Connect { .. }
            | Self::Config(_)
            | Self::InvalidResponse(_)
            | Self::Status(_) => return None,
        })
    }

    /// The status this error was decoded from, for the [`Error::Status`]
    /// fallback and [`Error::UnknownReason`].
    #[must_use]
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Status(status) | Self::UnknownReason { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Whether the outcome of the failed call is unknown (it may or may not
    /// have taken effect): transport failures and unexplained statuses.
    /// Guards keep their cleanup armed after such a failure.
    pub(crate) fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Status(_)
                | Self::UnknownReason { .. }
                | Self::OwnerUnavailable { .. }
                | Self::DeadlineExceeded
                | Self::Connect { .. }
                | Self::Internal { .. }
        )
    }

    pub(crate) fn invalid_response(what: impl Into<String>) -> Self {
        Self::InvalidResponse(what.into())
    }

    /// Decodes a status the server answered `context`'s request with.
    pub(crate) fn from_status(status: Status, context: &ErrorContext<'_>) -> Self {
        let details = status.get_error_details();
        let Some(info) = sessiond_error_info(&details) else {
            return Self::fallback(status);
        };
        let meta = |key: &str| info.metadata.get(key).map(String::as_str);
        let session_id = || {
            meta("session_id")
                .and_then(|v| v.parse().ok())
                .or(context.session_id)
        };
        let scope_id = || {
            meta("scope_id")
                .and_then(|v| v.parse().ok())
                .or(context.scope_id)
        };
        let module_id = || {
            meta("module_id")
                .map(str::to_owned)
                .or_else(|| context.module_id.map(str::to_owned))
        };
        let message = || status.message().to_owned();
        let Some(reason) = parse_reason(&info.reason) else {
            return Self::UnknownReason {
                reason: info.reason.clone(),
                status: Box::new(status),
            };
        };
        let decoded = match reason {
            // Never sent: a plain status.
            ErrorReason::Unspecified => None,
            ErrorReason::InvalidArgument => Some(Self::InvalidArgument {
                message: message(),
                violations: details
                    .bad_request()
                    .map(|b| {
                        b.field_violations
                            .iter()
                            .map(|v| FieldViolation {
                                field: v.field.clone(),
                                description: v.description.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            ErrorReason::SessionNotFound => {
                session_id().map(|session_id| Self::SessionNotFound { session_id })
            }
            ErrorReason::SessionNotClientless => {
                session_id().map(|session_id| Self::SessionNotClientless { session_id })
            }
            ErrorReason::SessionEnded => {
                session_id().map(|session_id| Self::SessionEnded { session_id })
            }
            ErrorReason::SessionClosing => {
                session_id().map(|session_id| Self::SessionClosing { session_id })
            }
            ErrorReason::ScopeNotFound => {
                session_id()
                    .zip(scope_id())
                    .map(|(session_id, scope_id)| Self::ScopeNotFound {
                        session_id,
                        scope_id,
                    })
            }
            ErrorReason::ScopeNotInnermost => {
                session_id()
                    .zip(scope_id())
                    .map(|(session_id, scope_id)| Self::ScopeNotInnermost {
                        session_id,
                        scope_id,
                        innermost_scope_id: meta("innermost_scope_id").and_then(|v| v.parse().ok()),
                    })
            }
            ErrorReason::ModuleNotFound => {
                module_id().map(|module_id| Self::ModuleNotFound { module_id })
            }
            ErrorReason::ModuleNotOpened => {
                session_id()
                    .zip(module_id())
                    .map(|(session_id, module_id)| Self::ModuleNotOpened {
                        session_id,
                        module_id,
                    })
            }
            ErrorReason::ModuleStillRunning => {
                session_id()
                    .zip(module_id())
                    .map(|(session_id, module_id)| Self::ModuleStillRunning {
                        session_id,
                        module_id,
                    })
            }
            ErrorReason::TooManySessions => Some(Self::TooManySessions {
                user: meta("user")
                    .map(str::to_owned)
                    .or_else(|| context.user.map(str::to_owned)),
                limit: meta("limit").and_then(|v| v.parse().ok()),
                message: message(),
            }),
            ErrorReason::TooManyRunningModules => {
                Some(Self::TooManyRunningModules { message: message() })
            }
            ErrorReason::StoreUnavailable => Some(Self::StoreUnavailable { message: message() }),
            ErrorReason::OwnerUnavailable => {
                session_id().map(|session_id| Self::OwnerUnavailable {
                    session_id,
                    node: meta("node")
                        .filter(|node| !node.is_empty())
                        .map(str::to_owned),
                })
            }
            ErrorReason::Internal => Some(Self::Internal { message: message() }),
            ErrorReason::RevisionCompacted => Some(Self::RevisionCompacted {
                compact_revision: meta("compact_revision").and_then(|v| v.parse().ok()),
            }),
            ErrorReason::WatchTooSlow => Some(Self::WatchTooSlow {
                revision: meta("revision").and_then(|v| v.parse().ok()),
            }),
            ErrorReason::ServerShuttingDown => Some(Self::ServerShuttingDown {
                revision: meta("revision").and_then(|v| v.parse().ok()),
            }),
            ErrorReason::Unauthenticated => Some(Self::Unauthenticated { message: message() }),
            ErrorReason::PermissionDenied => Some(Self::PermissionDenied {
                permission: meta("permission").unwrap_or_default().to_owned(),
                subject: meta("subject").unwrap_or_default().to_owned(),
                session_id: session_id(),
                user: meta("user")
                    .map(str::to_owned)
                    .or_else(|| context.user.map(str::to_owned)),
                module_id: module_id(),
                message: message(),
            }),
        };
        decoded.unwrap_or_else(|| Self::fallback(status))
    }

    /// A status without a reason this client knows: a passed deadline (the
    /// server's `DEADLINE_EXCEEDED`, or tonic's own `CANCELLED` when the
    /// client-side timer fired first), or [`Error::Status`].
    fn fallback(status: Status) -> Self {
        let client_timer_fired = status.code() == Code::Cancelled && {
            let mut cause = status.source();
            let mut found = false;
            while let Some(c) = cause {
                found |= c.is::<tonic::TimeoutExpired>();
                cause = c.source();
            }
            found
        };
        if status.code() == Code::DeadlineExceeded || client_timer_fired {
            Self::DeadlineExceeded
        } else {
            Self::Status(Box::new(status))
        }
    }
}

/// The `ErrorInfo` of a status when it is sessiond's (domain
/// [`ERROR_DOMAIN`]).
fn sessiond_error_info(details: &tonic_types::ErrorDetails) -> Option<&tonic_types::ErrorInfo> {
    details
        .error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
}

/// The contract's `ErrorReason` of an `ErrorInfo` reason: the value named
/// `ERROR_REASON_` + `reason`; `None` for a reason this version does not
/// know.
fn parse_reason(reason: &str) -> Option<ErrorReason> {
    ErrorReason::from_str_name(&format!("{REASON_PREFIX}{reason}"))
}

/// The `ErrorInfo` reason of `reason`: its name without the prefix.
fn reason_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix(REASON_PREFIX).unwrap_or(name)
}

/// The sessiond reason of a status, when it carries one this version knows.
pub(crate) fn error_reason(status: &Status) -> Option<ErrorReason> {
    sessiond_error_info(&status.get_error_details()).and_then(|info| parse_reason(&info.reason))
}

/// What a request was about, to fill in the ids an error's metadata lacks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ErrorContext<'a> {
    /// The request's session.
    pub(crate) session_id: Option<SessionId>,
    /// The request's scope.
    pub(crate) scope_id: Option<ScopeId>,
    /// The request's module.
    pub(crate) module_id: Option<&'a str>,
    /// The request's user.
    pub(crate) user: Option<&'a str>,
}

impl<'a> ErrorContext<'a> {
    /// A request about one session.
    pub(crate) fn session(session_id: SessionId) -> Self {
        Self {
            session_id: Some(session_id),
            ..Self::default()
        }
    }

    /// A request on behalf of a user.
    pub(crate) fn user(user: &'a str) -> Self {
        Self {
            user: Some(user),
            ..Self::default()
        }
    }
}

/// The message, prefixed with "invalid argument" unless it says so already
/// (the server's messages do).
fn describe_invalid_argument(message: &str) -> String {
    if message.starts_with("invalid argument") {
        message.to_owned()
    } else {
        format!("invalid argument: {message}")
    }
}

/// The message, prefixed with `what` unless it says so already; `what`
/// alone when the message is empty.
fn describe_prefixed(what: &str, message: &str) -> String {
    if message.is_empty() {
        what.to_owned()
    } else if message
        .get(..what.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(what))
    {
        message.to_owned()
    } else {
        format!("{what}: {message}")
    }
}

/// The message of [`Error::OwnerUnavailable`].
fn describe_owner_unavailable(session_id: SessionId, node: Option<&str>) -> String {
    match node {
        Some(node) => format!("node {node}, which owns session {session_id}, is unavailable"),
        None => format!("the node that owns session {session_id} is unavailable"),
    }
}

/// `Code: message`, and the root cause of a transport failure when the
/// message does not already say it.
fn describe_status(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut cause = status.source();
    let mut root = None;
    while let Some(c) = cause {
        root = Some(c);
        cause = c.source();
    }
    if let Some(root) = root {
        let root = root.to_string();
        if !text.contains(&root) {
            text.push_str(": ");
            text.push_str(&root);
        }
    }
    text
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[cfg(test)]
mod tests;
