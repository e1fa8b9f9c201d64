//! The one mapping from [`Error`] to a gRPC [`Status`]: a code, an
//! `ErrorInfo` (domain `sessiond`, an UPPER_SNAKE reason, metadata) and, for
//! invalid arguments, `BadRequest` field violations.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::model::Error;

/// The `ErrorInfo` domain of every sessiond error.
pub const ERROR_DOMAIN: &str = "sessiond";

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut metadata = HashMap::new();
        let (code, reason) = match &error {
            Error::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            Error::SessionNotFound { session_id } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                (Code::NotFound, "SESSION_NOT_FOUND")
            }
            Error::SessionNotClientless { session_id } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                (Code::FailedPrecondition, "SESSION_NOT_CLIENTLESS")
            }
            Error::SessionEnded { session_id } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                (Code::FailedPrecondition, "SESSION_ENDED")
            }
            Error::SessionClosing { session_id } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                (Code::FailedPrecondition, "SESSION_CLOSING")
            }
            Error::ScopeNotFound {
                session_id,
                scope_id,
            } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                metadata.insert("scope_id".to_owned(), scope_id.to_string());
                (Code::NotFound, "SCOPE_NOT_FOUND")
            }
            Error::ScopeNotInnermost {
                session_id,
                scope_id,
                innermost,
            } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                metadata.insert("scope_id".to_owned(), scope_id.to_string());
                metadata.insert("innermost_scope_id".to_owned(), innermost.to_string());
                (Code::FailedPrecondition, "SCOPE_NOT_INNERMOST")
            }
            Error::ModuleNotFound { module_id } => {
                metadata.insert("module_id".to_owned(), module_id.to_string());
                (Code::NotFound, "MODULE_NOT_FOUND")
            }
            Error::ModuleNotOpened {
                session_id,
                module_id,
            } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                metadata.insert("module_id".to_owned(), module_id.to_string());
                (Code::NotFound, "MODULE_NOT_OPENED")
            }
            Error::ModuleStillRunning {
                session_id,
                module_id,
                run_id,
            } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                metadata.insert("module_id".to_owned(), module_id.to_string());
                metadata.insert("run_id".to_owned(), run_id.to_string());
                (Code::DeadlineExceeded, "MODULE_STILL_RUNNING")
            }
            Error::TooManyRunningModules { scope, limit } => {
                metadata.insert("scope".to_owned(), (*scope).to_owned());
                metadata.insert("limit".to_owned(), limit.to_string());
                (Code::ResourceExhausted, "TOO_MANY_RUNNING_MODULES")
            }
            Error::TooManySessions { user, limit } => {
                metadata.insert("user".to_owned(), user.clone());
                metadata.insert("limit".to_owned(), limit.to_string());
                (Code::ResourceExhausted, "TOO_MANY_SESSIONS")
            }
            Error::OwnerUnavailable { session_id, node } => {
                metadata.insert("session_id".to_owned(), session_id.to_string());
                metadata.insert("node".to_owned(), node.clone());
                (Code::Unavailable, "OWNER_UNAVAILABLE")
            }
            Error::StoreUnavailable(source) => {
                tracing::error!(error = %source, "store unavailable");
                (Code::Unavailable, "STORE_UNAVAILABLE")
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (Code::Internal, "INTERNAL")
            }
        };
        let message = match &error {
            Error::StoreUnavailable(_) => {
                "the session store is unavailable; retry later".to_owned()
            }
            Error::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        if let Error::InvalidArgument(violations) = &error {
            for violation in violations {
                details.add_bad_request_violation(&violation.field, &violation.description);
            }
        }
        Status::with_error_details(code, message, details)
    }
}
