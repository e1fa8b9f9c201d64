//! Decoding the server's errors.

use std::collections::HashMap;

use tonic_types::ErrorDetails;

use super::*;

fn status(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Status::with_error_details(
        code,
        format!("{reason} happened"),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

fn context() -> ErrorContext<'static> {
    ErrorContext {
        session_id: Some(SessionId::new(7)),
        scope_id: Some(ScopeId::new(3)),
        module_id: Some("100000"),
        user: Some("R41"),
    }
}

#[test]
fn every_reason_decodes_to_its_variant() {
    let ctx = context();
    let decode = |code, reason| Error::from_status(status(code, reason, &[]), &ctx);
    assert!(matches!(
        decode(Code::NotFound, "SESSION_NOT_FOUND"),
        Error::SessionNotFound { session_id } if session_id.get() == 7
    ));
    assert!(matches!(
        decode(Code::FailedPrecondition, "SESSION_NOT_CLIENTLESS"),
        Error::SessionNotClientless { .. }
    ));
    assert!(matches!(
        decode(Code::FailedPrecondition, "SESSION_ENDED"),
        Error::SessionEnded { .. }
    ));
    assert!(matches!(
        decode(Code::FailedPrecondition, "SESSION_CLOSING"),
        Error::SessionClosing { .. }
    ));
    assert!(matches!(
        decode(Code::NotFound, "SCOPE_NOT_FOUND"),
        Error::ScopeNotFound { scope_id, .. } if scope_id.get() == 3
    ));
    assert!(matches!(
        decode(Code::FailedPrecondition, "SCOPE_NOT_INNERMOST"),
        Error::ScopeNotInnermost {
            innermost_scope_id: None,
            ..
        }
    ));
    assert!(matches!(
        decode(Code::NotFound, "MODULE_NOT_FOUND"),
        Error::ModuleNotFound { module_id } if module_id == "100000"
    ));
    assert!(matches!(
        decode(Code::NotFound, "MODULE_NOT_OPENED"),
        Error::ModuleNotOpened { .. }
    ));
    assert!(matches!(
        decode(Code::DeadlineExceeded, "MODULE_STILL_RUNNING"),
        Error::ModuleStillRunning { module_id, .. } if module_id == "100000"
    ));
    assert!(matches!(
        decode(Code::ResourceExhausted, "TOO_MANY_SESSIONS"),
        Error::TooManySessions { user: Some(u), limit: None, .. } if u == "R41"
    ));
    assert!(matches!(
        decode(Code::ResourceExhausted, "TOO_MANY_RUNNING_MODULES"),
        Error::TooManyRunningModules { .. }
    ));
    assert!(matches!(
        decode(Code::Unavailable, "STORE_UNAVAILABLE"),
        Error::StoreUnavailable { .. }
    ));
    assert!(matches!(
        decode(Code::Internal, "INTERNAL"),
        Error::Internal { .. }
    ));
    assert!(matches!(
        decode(Code::Unavailable, "OWNER_UNAVAILABLE"),
        Error::OwnerUnavailable { session_id, node: None } if session_id.get() == 7
    ));
    assert!(matches!(
        decode(Code::Unauthenticated, "UNAUTHENTICATED"),
        Error::Unauthenticated { message } if message == "UNAUTHENTICATED happened"
    ));
    assert!(matches!(
        decode(Code::PermissionDenied, "PERMISSION_DENIED"),
        Error::PermissionDenied {
            session_id: Some(session_id),
            user: Some(ref user),
            module_id: Some(ref module_id),
            ref permission,
            ref subject,
            ..
        } if session_id.get() == 7
            && user == "R41"
            && module_id == "100000"
            && permission.is_empty()
            && subject.is_empty()
    ));
    for (code, reason) in [
        (Code::NotFound, "SESSION_NOT_FOUND"),
        (Code::FailedPrecondition, "SCOPE_NOT_INNERMOST"),
        (Code::DeadlineExceeded, "MODULE_STILL_RUNNING"),
        (Code::Unavailable, "STORE_UNAVAILABLE"),
        (Code::Unavailable, "OWNER_UNAVAILABLE"),
        (Code::Unauthenticated, "UNAUTHENTICATED"),
        (Code::PermissionDenied, "PERMISSION_DENIED"),
    ] {
        let error = decode(code, reason);
        assert_eq!(error.code(), Some(code));
        assert_eq!(error.reason(), Some(reason));
    }
}

#[test]
fn every_value_of_the_contract_decodes_to_a_typed_variant() {
    let reasons: Vec<_> = (1..=i32::from(u8::MAX))
        .filter_map(|n| ErrorReason::try_from(n).ok())
        .collect();
    assert!(reasons.len() >= 17, "{reasons:?}");
    for reason in reasons {
        let wire = reason_name(reason);
        assert!(!wire.starts_with(REASON_PREFIX));
        assert_eq!(parse_reason(wire), Some(reason));
        let error = Error::from_status(status(Code::Unknown, wire, &[]), &context());
        assert_eq!(error.error_reason(), Some(reason), "{error:?}");
        assert_eq!(error.reason(), Some(wire));
    }
}

#[test]
fn metadata_wins_over_the_request() {
    let error = Error::from_status(
        status(
            Code::FailedPrecondition,
            "SCOPE_NOT_INNERMOST",
            &[
                ("session_id", "11"),
                ("scope_id", "12"),
                ("innermost_scope_id", "13"),
            ],
        ),
        &context(),
    );
    let Error::ScopeNotInnermost {
        session_id,
        scope_id,
        innermost_scope_id,
    } = error
    else {
        panic!("expected ScopeNotInnermost, got {error:?}");
    };
    assert_eq!(
        (session_id.get(), scope_id.get(), innermost_scope_id),
        (11, 12, Some(ScopeId::new(13)))
    );
    let error = Error::from_status(
        status(
            Code::ResourceExhausted,
            "TOO_MANY_SESSIONS",
            &[("user", "R7"), ("limit", "2")],
        ),
        &context(),
    );
    assert!(matches!(
        error,
        Error::TooManySessions { user: Some(u), limit: Some(2), .. } if u == "R7"
    ));
    let error = Error::from_status(
        status(
            Code::Unavailable,
            "OWNER_UNAVAILABLE",
            &[("session_id", "11"), ("node", "node-b")],
        ),
        &context(),
    );
    assert!(matches!(
        error,
        Error::OwnerUnavailable { session_id, node: Some(ref n) } if session_id.get() == 11 && n == "node-b"
    ));
    assert_eq!(
        error.to_string(),
        "node node-b, which owns session 11, is unavailable"
    );
}

#[test]
fn permission_denied_names_permission_subject_and_target_from_its_metadata() {
    let error = Error::from_status(
        status(
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            &[
                ("permission", "act_as"),
                ("subject", "alice"),
                ("session_id", "11"),
                ("user", "R50"),
            ],
        ),
        &ErrorContext::session(SessionId::new(11)),
    );
    let Error::PermissionDenied {
        ref permission,
        ref subject,
        session_id,
        ref user,
        ref module_id,
        ref message,
    } = error
    else {
        panic!("expected PermissionDenied, got {error:?}");
    };
    assert_eq!(
        (permission.as_str(), subject.as_str(), session_id),
        ("act_as", "alice", Some(SessionId::new(11)))
    );
    assert_eq!((user.as_deref(), module_id.as_deref()), (Some("R50"), None));
    assert_eq!(message, "PERMISSION_DENIED happened");
    assert_eq!(
        permission.parse::<crate::Permission>(),
        Ok(crate::Permission::ActAs),
        "the metadata spells a permission as its short name"
    );
    assert_eq!(error.code(), Some(Code::PermissionDenied));
    assert_eq!(error.reason(), Some("PERMISSION_DENIED"));
    assert!(!error.outcome_unknown(), "a refused call did nothing");

    // A refusal of an action on no session names none.
    let error = Error::from_status(
        status(
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            &[("permission", "read_audit"), ("subject", "bob")],
        ),
        &ErrorContext::default(),
    );
    assert!(
        matches!(
            error,
            Error::PermissionDenied {
                session_id: None,
                user: None,
                module_id: None,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn authentication_errors_say_so_once_in_one_line() {
    let unauthenticated = |message: &str| Error::Unauthenticated {
        message: message.to_owned(),
    };
    assert_eq!(
        unauthenticated("the bearer token has expired").to_string(),
        "unauthenticated: the bearer token has expired"
    );
    assert_eq!(
        unauthenticated("Unauthenticated: no credential").to_string(),
        "Unauthenticated: no credential"
    );
    assert_eq!(unauthenticated("").to_string(), "unauthenticated");
    let denied = Error::from_status(
        Status::with_error_details(
            Code::PermissionDenied,
            "alice may not act as R50 in session 11",
            ErrorDetails::with_error_info(
                "PERMISSION_DENIED",
                ERROR_DOMAIN,
                HashMap::from([("permission".to_owned(), "act_as".to_owned())]),
            ),
        ),
        &ErrorContext::default(),
    );
    assert_eq!(
        denied.to_string(),
        "permission denied: alice may not act as R50 in session 11"
    );
    let plain = Error::from_status(
        Status::unauthenticated("no credential"),
        &ErrorContext::default(),
    );
    assert!(
        matches!(plain, Error::Status(_)),
        "without ErrorInfo: {plain:?}"
    );
    assert_eq!(plain.code(), Some(Code::Unauthenticated));
}

#[test]
fn invalid_arguments_carry_their_field_violations() {
    let mut details = ErrorDetails::with_error_info(
        "INVALID_ARGUMENT",
        ERROR_DOMAIN,
        HashMap::<String, String>::new(),
    );
    details.add_bad_request_violation("session_id", "must be a session id > 0");
    details.add_bad_request_violation("user", "must not be empty");
    let error = Error::from_status(
        Status::with_error_details(Code::InvalidArgument, "bad", details),
        &ErrorContext::default(),
    );
    let Error::InvalidArgument { violations, .. } = error else {
        panic!("expected InvalidArgument, got {error:?}");
    };
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["session_id", "user"]);
}

#[test]
fn statuses_without_a_known_reason_fall_back_to_status() {
    let plain = Error::from_status(Status::unimplemented("nope"), &context());
    assert_eq!(plain.code(), Some(Code::Unimplemented));
    assert!(plain.status().is_some());
    assert_eq!(plain.to_string(), "Unimplemented: nope");

    let unknown = Error::from_status(status(Code::Aborted, "SOMETHING_NEW", &[]), &context());
    assert!(
        matches!(unknown, Error::UnknownReason { ref reason, .. } if reason == "SOMETHING_NEW"),
        "{unknown:?}"
    );
    assert_eq!(unknown.code(), Some(Code::Aborted));
    assert_eq!(unknown.reason(), Some("SOMETHING_NEW"));
    assert_eq!(
        unknown.to_string(),
        "Aborted: SOMETHING_NEW happened (reason SOMETHING_NEW)"
    );
    // The contract's name is not the wire's: not a known reason.
    let prefixed = Error::from_status(
        status(Code::NotFound, "ERROR_REASON_SESSION_NOT_FOUND", &[]),
        &context(),
    );
    assert!(
        matches!(prefixed, Error::UnknownReason { .. }),
        "{prefixed:?}"
    );
    let unspecified = Error::from_status(status(Code::Unknown, "UNSPECIFIED", &[]), &context());
    assert!(matches!(unspecified, Error::Status(_)), "{unspecified:?}");

    let foreign = Error::from_status(
        Status::with_error_details(
            Code::NotFound,
            "elsewhere",
            ErrorDetails::with_error_info(
                "SESSION_NOT_FOUND",
                "other.example",
                HashMap::<String, String>::new(),
            ),
        ),
        &context(),
    );
    assert!(matches!(foreign, Error::Status(_)), "{foreign:?}");

    let deadline = Error::from_status(Status::deadline_exceeded("late"), &context());
    assert!(matches!(deadline, Error::DeadlineExceeded), "{deadline:?}");
    assert_eq!(deadline.code(), Some(Code::DeadlineExceeded));
    let cancelled = Error::from_status(Status::cancelled("by the caller"), &context());
    assert!(matches!(cancelled, Error::Status(_)), "{cancelled:?}");

    let no_ids = Error::from_status(
        status(Code::NotFound, "SESSION_NOT_FOUND", &[]),
        &ErrorContext::default(),
    );
    assert!(matches!(no_ids, Error::Status(_)), "{no_ids:?}");
}
