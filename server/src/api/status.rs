//! The one mapping from [`Error`] to a gRPC [`Status`]: each error picks its
//! [`ErrorReason`] (the contract's list, `proto/sessiond/v1/error_reason.proto`),
//! which gives the status code and the `ErrorInfo` reason (domain
//! `sessiond`); the error adds the metadata and, for invalid arguments,
//! `BadRequest` field violations.

use std::collections::HashMap;

use sessiond_proto::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::model::Error;

/// The `ErrorInfo` domain of every sessiond error.
pub const ERROR_DOMAIN: &str = "sessiond";

/// The prefix every [`ErrorReason`] value's name carries in the contract,
/// and its `ErrorInfo` reason does not.
const REASON_PREFIX: &str = "ERROR_REASON_";

/// The `ErrorInfo` reason of `reason`: its name in the contract without the
/// `ERROR_REASON_` prefix (`ERROR_REASON_SESSION_NOT_FOUND` is sent as
/// `SESSION_NOT_FOUND`).
#[must_use]
pub fn reason_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix(REASON_PREFIX).unwrap_or(name)
}

/// The status code `reason` comes with, as the contract documents it.
#[must_use]
pub fn reason_code(reason: ErrorReason) -> Code {
    match reason {
        ErrorReason::InvalidArgument => Code::InvalidArgument,
        ErrorReason::SessionNotFound
        | ErrorReason::ScopeNotFound
        | ErrorReason::ModuleNotFound
        | ErrorReason::ModuleNotOpened => Code::NotFound,
        ErrorReason::SessionNotClientless
        | ErrorReason::SessionEnded
        | ErrorReason::SessionClosing
        | ErrorReason::ScopeNotInnermost => Code::FailedPrecondition,
        ErrorReason::ModuleStillRunning => Code::DeadlineExceeded,
        ErrorReason::TooManyRunningModules | ErrorReason::TooManySessions => {
            Code::ResourceExhausted
        }
        ErrorReason::OwnerUnavailable
        | ErrorReason::StoreUnavailable
        | ErrorReason::WatchTooSlow
        | ErrorReason::ServerShuttingDown => Code::Unavailable,
        ErrorReason::RevisionCompacted => Code::OutOfRange,
        ErrorReason::Unauthenticated => Code::Unauthenticated,
        ErrorReason::PermissionDenied => Code::PermissionDenied,
        ErrorReason::Internal | ErrorReason::Unspecified => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut metadata = HashMap::new();
        let mut meta = |key: &str, value: String| {
            metadata.insert(key.to_owned(), value);
        };
        let reason = match &error {
            Error::InvalidArgument(_) => ErrorReason::InvalidArgument,
            Error::SessionNotFound { session_id } => {
                meta("session_id", session_id.to_string());
                ErrorReason::SessionNotFound
            }
            Error::SessionNotClientless { session_id } => {
                meta("session_id", session_id.to_string());
                ErrorReason::SessionNotClientless
            }
            Error::SessionEnded { session_id } => {
                meta("session_id", session_id.to_string());
                ErrorReason::SessionEnded
            }
            Error::SessionClosing { session_id } => {
                meta("session_id", session_id.to_string());
                ErrorReason::SessionClosing
            }
            Error::ScopeNotFound {
                session_id,
                scope_id,
            } => {
                meta("session_id", session_id.to_string());
                meta("scope_id", scope_id.to_string());
                ErrorReason::ScopeNotFound
            }
            Error::ScopeNotInnermost {
                session_id,
                scope_id,
                innermost,
            } => {
                meta("session_id", session_id.to_string());
                meta("scope_id", scope_id.to_string());
                meta("innermost_scope_id", innermost.to_string());
                ErrorReason::ScopeNotInnermost
            }
            Error::ModuleNotFound { module_id } => {
                meta("module_id", module_id.to_string());
                ErrorReason::ModuleNotFound
            }
            Error::ModuleNotOpened {
                session_id,
                module_id,
            } => {
                meta("session_id", session_id.to_string());
                meta("module_id", module_id.to_string());
                ErrorReason::ModuleNotOpened
            }
            Error::ModuleStillRunning {
                session_id,
                module_id,
                run_id,
            } => {
                meta("session_id", session_id.to_string());
                meta("module_id", module_id.to_string());
                meta("run_id", run_id.to_string());
                ErrorReason::ModuleStillRunning
            }
            Error::TooManyRunningModules { scope, limit } => {
                meta("scope", (*scope).to_owned());
                meta("limit", limit.to_string());
                ErrorReason::TooManyRunningModules
            }
            Error::TooManySessions { user, limit } => {
                meta("user", user.clone());
                meta("limit", limit.to_string());
                ErrorReason::TooManySessions
            }
            Error::Unauthenticated(_) => ErrorReason::Unauthenticated,
            Error::PermissionDenied(denial) => {
                meta("permission", denial.permission.as_str().to_owned());
                meta("subject", denial.subject.clone());
                if let Some(session_id) = denial.session_id {
                    meta("session_id", session_id.to_string());
                }
                if let Some(user) = &denial.user {
                    meta("user", user.to_string());
                }
                if let Some(module_id) = &denial.module_id {
                    meta("module_id", module_id.to_string());
                }
                ErrorReason::PermissionDenied
            }
            Error::OwnerUnavailable { session_id, node } => {
                meta("session_id", session_id.to_string());
                meta("node", node.clone());
                ErrorReason::OwnerUnavailable
            }
            Error::RevisionCompacted {
                compact_revision, ..
            } => {
                meta("compact_revision", compact_revision.to_string());
                ErrorReason::RevisionCompacted
            }
            Error::WatchTooSlow { revision } => {
                meta("revision", revision.to_string());
                ErrorReason::WatchTooSlow
            }
            Error::ShuttingDown { revision } => {
                meta("revision", revision.to_string());
                ErrorReason::ServerShuttingDown
            }
            Error::ServerStopping => ErrorReason::ServerShuttingDown,
            Error::StoreUnavailable(source) => {
                tracing::error!(error = %source, "store unavailable");
                ErrorReason::StoreUnavailable
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ErrorReason::Internal
            }
        };
        let message = match &error {
            Error::StoreUnavailable(_) => {
                "the session store is unavailable; retry later".to_owned()
            }
            Error::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let mut details =
            ErrorDetails::with_error_info(reason_name(reason), ERROR_DOMAIN, metadata);
        if let Error::InvalidArgument(violations) = &error {
            for violation in violations {
                details.add_bad_request_violation(&violation.field, &violation.description);
            }
        }
        Status::with_error_details(reason_code(reason), message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason by wire number, the contract's `UNSPECIFIED` left out.
    fn every_reason() -> Vec<ErrorReason> {
        (1..=i32::from(u8::MAX))
            .filter_map(|n| ErrorReason::try_from(n).ok())
            .collect()
    }

    #[test]
    fn reasons_on_the_wire_are_the_names_without_the_prefix() {
        let sent: Vec<_> = every_reason().into_iter().map(reason_name).collect();
        // The strings clients match on: never change one.
        assert_eq!(
            sent,
            [
                "INVALID_ARGUMENT",
                "SESSION_NOT_FOUND",
                "SESSION_NOT_CLIENTLESS",
                "SESSION_ENDED",
                "SESSION_CLOSING",
                "SCOPE_NOT_FOUND",
                "SCOPE_NOT_INNERMOST",
                "MODULE_NOT_FOUND",
                "MODULE_NOT_OPENED",
                "MODULE_STILL_RUNNING",
                "TOO_MANY_RUNNING_MODULES",
                "TOO_MANY_SESSIONS",
                "OWNER_UNAVAILABLE",
                "STORE_UNAVAILABLE",
                "INTERNAL",
                "UNAUTHENTICATED",
                "PERMISSION_DENIED",
                "REVISION_COMPACTED",
                "WATCH_TOO_SLOW",
                "SERVER_SHUTTING_DOWN",
            ]
        );
        for reason in every_reason() {
            assert!(reason.as_str_name().starts_with(REASON_PREFIX));
        }
    }

    #[test]
    fn a_status_carries_its_reason_code_and_metadata() {
        let status = Status::from(Error::OwnerUnavailable {
            session_id: crate::model::SessionId::parse("session_id", 7).unwrap(),
            node: "node-b".to_owned(),
        });
        assert_eq!(status.code(), Code::Unavailable);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("OWNER_UNAVAILABLE", ERROR_DOMAIN)
        );
        assert_eq!(info.metadata["session_id"], "7");
        assert_eq!(info.metadata["node"], "node-b");
    }
}
