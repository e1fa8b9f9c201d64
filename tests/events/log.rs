//! The log: one event per change, of the right kind, with the right fields
//! (who, from where, which request), revisions one apart and chained; a
//! touch records nothing; a refused call is recorded as CALL_REFUSED and
//! changes nothing. On SQLite and on PostgreSQL.

use std::sync::Arc;

use serde_json::json;
use sessiond::config::security::SecurityConfig;
use sessiond::model::{FailureKind, ModuleFailure};
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::EventKind as K;
use tokio::sync::Semaphore;
use tonic::{Code, Request};

use super::common::credentials::static_token;
use super::common::eventually;
use super::{Backend, Clients, as_caller, assert_chained, events_after, head, list_all, server_on};

/// A W3C trace context a caller sends.
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// A module that runs until the test releases it.
#[derive(Clone, Debug)]
struct Held {
    release: Arc<Semaphore>,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            release: Arc::new(Semaphore::new(0)),
        }
    }
}

#[async_trait]
impl Module for Held {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        tokio::select! {
            permit = self.release.acquire() => {
                permit.expect("semaphore open").forget();
                Ok(json!("released"))
            }
            () = ctx.cancelled() => Err(ModuleFailure::new(FailureKind::Cancelled, "cancelled")),
        }
    }
}

/// A module that fails at once.
#[derive(Debug)]
struct Failing;

#[async_trait]
impl Module for Failing {
    async fn run(&self, _ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        Err(ModuleFailure::error("no such project"))
    }
}

/// The events of session `id`, oldest first.
async fn of_session(clients: &mut Clients, token: Option<&str>, id: i64) -> Vec<pb::Event> {
    let filter = pb::ListEventsRequest {
        session_id: id,
        ..pb::ListEventsRequest::default()
    };
    list_all(&mut clients.audit, token, filter).await
}

fn kinds(events: &[pb::Event]) -> Vec<K> {
    events.iter().map(pb::Event::kind).collect()
}

/// Every change of an interactive and a clientless session, without
/// authentication, and the event each one recorded.
async fn each_change_is_one_event_with_its_fields(backend: Backend) {
    let held = Held::default();
    let server = server_on(
        backend,
        "each_change_is_one_event",
        |_| {},
        |builder| {
            builder
                .module("held", held.clone())
                .module("failing", Failing)
        },
    )
    .await;
    let mut c = Clients::on(server.channel().await);
    assert_eq!(head(&mut c.audit).await, 0, "a new log is empty");

    // An interactive session: started (with the caller's request id and
    // trace context), touched, its user context set, pushed, popped, ended.
    let mut start = Request::new(pb::StartSessionRequest {
        user: "U1".into(),
        client: "web".into(),
    });
    let headers = start.metadata_mut();
    headers.insert("x-request-id", "req-start-1".parse().unwrap());
    headers.insert("traceparent", TRACEPARENT.parse().unwrap());
    let started = c.sessions.start_session(start).await.unwrap().into_inner();
    let id = started.session_id;
    c.sessions
        .touch_session(pb::TouchSessionRequest { session_id: id })
        .await
        .unwrap();
    c.contexts
        .set_user_context(pb::SetUserContextRequest {
            session_id: id,
            user: "U3".into(),
        })
        .await
        .unwrap();
    let scope = c
        .contexts
        .push_user_context(pb::PushUserContextRequest {
            session_id: id,
            user: "U4".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .scope_id;
    c.contexts
        .pop_user_context(pb::PopUserContextRequest {
            session_id: id,
            scope_id: scope,
        })
        .await
        .unwrap();
    c.sessions
        .end_session(pb::EndSessionRequest { session_id: id })
        .await
        .unwrap();

    // A clientless session: opened, a run that fails, a run that holds
    // its close up (closing) until released, then ended.
    let opened = c
        .sessions
        .open_clientless_session(pb::OpenClientlessSessionRequest { user: "U2".into() })
        .await
        .unwrap()
        .into_inner();
    let clientless = opened.session_id;
    let open_module = |module: &str| pb::OpenModuleRequest {
        session_id: clientless,
        module_id: module.into(),
        parameters: None,
    };
    let failing = c
        .sessions
        .open_module(open_module("failing"))
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let failed = c
        .sessions
        .get_return_value(pb::GetReturnValueRequest {
            session_id: clientless,
            module_id: "failing".into(),
            timeout: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.state(), pb::RunState::Failed);
    let holding = c
        .sessions
        .open_module(open_module("held"))
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let mut closer = c.sessions.clone();
    let close = tokio::spawn(async move {
        closer
            .close_clientless_session(pb::CloseClientlessSessionRequest {
                session_id: clientless,
                grace: Some(prost_types::Duration {
                    seconds: 600,
                    nanos: 0,
                }),
            })
            .await
    });
    let mut reader = c.clone();
    eventually("the session to be closing", || {
        let mut reader = reader.clone();
        async move {
            let events = of_session(&mut reader, None, clientless).await;
            events
                .iter()
                .any(|e| e.kind() == K::SessionClosing)
                .then_some(())
        }
    })
    .await;
    held.release.add_permits(1);
    let closed = close.await.unwrap().unwrap().into_inner().session.unwrap();
    assert_eq!(closed.state(), pb::SessionState::Ended);

    let all = events_after(&mut reader.audit, 0).await;
    assert_eq!(all[0].revision, 1);
    assert_eq!(all[0].prev_hash, [0; 32], "the first event chains to zeros");
    assert_chained(&all);
    let interactive = of_session(&mut c, None, id).await;
    let clientless_events = of_session(&mut c, None, clientless).await;
    assert_eq!(
        kinds(&interactive),
        [
            K::SessionStarted,
            K::UserContextSet,
            K::UserContextPushed,
            K::UserContextPopped,
            K::SessionEnded
        ],
        "one event per change, none for the touch"
    );
    assert_eq!(
        kinds(&clientless_events),
        [
            K::ClientlessSessionOpened,
            K::RunStarted,
            K::RunConcluded,
            K::RunStarted,
            K::SessionClosing,
            K::RunConcluded,
            K::SessionEnded
        ]
    );
    assert_eq!(
        all.len(),
        interactive.len() + clientless_events.len(),
        "nothing else was recorded"
    );

    // Who, from where, which request: every call's event.
    for event in interactive.iter().chain(&clientless_events) {
        assert!(event.time.is_some(), "{event:?}");
        assert_eq!(event.hash.len(), 32);
        if event.kind() == K::RunConcluded {
            assert_eq!(event.subject, "system:sessiond", "{event:?}");
            assert_eq!(
                event.authentication_method(),
                pb::AuthenticationMethod::Unspecified
            );
            assert!(event.peer.is_empty() && event.request_id.is_empty());
            continue;
        }
        assert_eq!(event.subject, "anonymous", "{event:?}");
        assert_eq!(
            event.authentication_method(),
            pb::AuthenticationMethod::None
        );
        let peer: std::net::SocketAddr = event.peer.parse().expect("the caller's address");
        assert!(peer.ip().is_loopback() && peer.port() != server.addr.port());
        assert!(!event.request_id.is_empty(), "{event:?}");
    }

    let [started_event, set, pushed, popped, ended] = interactive.as_slice() else {
        unreachable!()
    };
    assert_eq!(
        (
            started_event.session_id,
            started_event.session_uuid.as_str()
        ),
        (id, started.session_uuid.as_str())
    );
    assert_eq!(
        (
            started_event.user.as_str(),
            started_event.effective_user.as_str()
        ),
        ("U1", "U1")
    );
    assert_eq!(started_event.request_id, "req-start-1");
    assert_eq!(started_event.traceparent, TRACEPARENT);
    assert_eq!((set.effective_user.as_str(), set.scope_id), ("U3", 0));
    assert!(set.traceparent.is_empty(), "only the call that sent one");
    assert_ne!(set.request_id, started_event.request_id);
    assert_ne!(set.request_id, pushed.request_id, "made up per request");
    assert_eq!(
        (pushed.effective_user.as_str(), pushed.scope_id),
        ("U4", scope)
    );
    assert_eq!(
        (popped.effective_user.as_str(), popped.scope_id),
        ("U3", scope)
    );
    assert_eq!(ended.end_reason(), pb::EndReason::ClosedByClient);
    for event in &interactive {
        assert_eq!((event.user.as_str(), event.session_id), ("U1", id));
    }

    let [
        opened_event,
        failing_started,
        failing_concluded,
        held_started,
        closing,
        held_concluded,
        closed_event,
    ] = clientless_events.as_slice()
    else {
        unreachable!()
    };
    assert_eq!(opened_event.session_uuid, opened.session_uuid);
    assert_eq!(opened_event.user, "U2");
    for (event, run, module) in [
        (failing_started, failing, "failing"),
        (failing_concluded, failing, "failing"),
        (held_started, holding, "held"),
        (held_concluded, holding, "held"),
    ] {
        assert_eq!((event.run_id, event.module_id.as_str()), (run, module));
        assert_eq!(event.effective_user, "U2");
    }
    assert_eq!(failing_started.run_state(), pb::RunState::Unspecified);
    assert_eq!(
        (
            failing_concluded.run_state(),
            failing_concluded.failure_kind()
        ),
        (pb::RunState::Failed, pb::ModuleFailureKind::Error)
    );
    assert_eq!(
        (held_concluded.run_state(), held_concluded.failure_kind()),
        (pb::RunState::Succeeded, pb::ModuleFailureKind::Unspecified)
    );
    assert_eq!(closing.end_reason(), pb::EndReason::ClosedByClient);
    assert_eq!(closed_event.end_reason(), pb::EndReason::ClosedByClient);
    server.stop().await;
}

#[tokio::test]
async fn each_change_is_one_event_with_its_fields_on_sqlite() {
    each_change_is_one_event_with_its_fields(Backend::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn each_change_is_one_event_with_its_fields_on_postgres() {
    each_change_is_one_event_with_its_fields(Backend::Postgres).await;
}

/// The policy of the tests with authentication: a service opens sessions
/// for R users and ends any; end users read and end their own; `auditor`
/// reads the audit trail.
pub(super) const POLICY: &str = "\
[[grant]]
groups = [\"services\"]
read_sessions = \"any\"
start_sessions_for = [\"R*\"]
open_clientless_sessions_for = [\"R*\"]
act_as = [\"R*\"]
end_sessions = \"any\"

[[grant]]
subjects = [\"auditor\"]
read_audit = true

[[grant]]
subjects = [\"*\"]
read_sessions = \"own\"
end_sessions = \"own\"
";

/// The static tokens of the tests with authentication.
pub(super) struct Tokens {
    /// `billing`, in group `services`.
    pub service: String,
    /// `R41`, an end user.
    pub r41: String,
    /// `auditor`, granted `read_audit`.
    pub auditor: String,
}

/// Writes the tokens file and [`POLICY`] into `dir` and returns the
/// security settings using them, and the tokens.
pub(super) fn secured(dir: &std::path::Path) -> (SecurityConfig, Tokens) {
    let tokens_file = dir.join("tokens.toml");
    let tokens = Tokens {
        service: static_token(&tokens_file, "billing", &["services"]),
        r41: static_token(&tokens_file, "R41", &[]),
        auditor: static_token(&tokens_file, "auditor", &[]),
    };
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let security = SecurityConfig {
        tokens: Some(tokens_file),
        policy: Some(policy),
        ..SecurityConfig::default()
    };
    (security, tokens)
}

/// An authenticated caller is named with its method; refused calls are
/// recorded (asynchronously) as CALL_REFUSED and change nothing.
async fn callers_are_named_and_refusals_recorded(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let (security, tokens) = secured(files.path());
    let server = server_on(
        backend,
        "callers_are_named",
        |config| config.security = security,
        |builder| builder,
    )
    .await;
    let mut c = Clients::on(server.channel().await);
    let (service, r41, auditor) = (
        Some(tokens.service.as_str()),
        Some(tokens.r41.as_str()),
        Some(tokens.auditor.as_str()),
    );
    let start = |user: &str| pb::StartSessionRequest {
        user: user.into(),
        client: String::new(),
    };
    let id = c
        .sessions
        .start_session(as_caller(service, start("R41")))
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let set = |user: &str| pb::SetUserContextRequest {
        session_id: id,
        user: user.into(),
    };
    c.contexts
        .set_user_context(as_caller(r41, set("R41")))
        .await
        .unwrap();
    let changes = list_all(&mut c.audit, auditor, pb::ListEventsRequest::default()).await;
    assert_eq!(
        changes
            .iter()
            .map(|e| (e.kind(), e.subject.as_str(), e.authentication_method()))
            .collect::<Vec<_>>(),
        [
            (
                K::SessionStarted,
                "billing",
                pb::AuthenticationMethod::StaticToken
            ),
            (
                K::UserContextSet,
                "R41",
                pb::AuthenticationMethod::StaticToken
            ),
        ]
    );

    // Four refusals: no credential; acting as someone else; opening a
    // session for someone else; the audit trail without read_audit.
    let refused = c.sessions.start_session(start("R41")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = c
        .contexts
        .set_user_context(as_caller(r41, set("R42")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = c
        .sessions
        .start_session(as_caller(r41, start("R42")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = c
        .audit
        .list_events(as_caller(service, pb::ListEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let only_refusals = pb::ListEventsRequest {
        kinds: vec![K::CallRefused.into()],
        ..pb::ListEventsRequest::default()
    };
    let mut reader = c.clone();
    let refusals = eventually("the four refusals to be recorded", || {
        let (mut reader, filter) = (reader.clone(), only_refusals.clone());
        async move {
            let refusals = list_all(&mut reader.audit, auditor, filter).await;
            (refusals.len() >= 4).then_some(refusals)
        }
    })
    .await;
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    let find = |method: &str, subject: &str| {
        refusals
            .iter()
            .find(|e| e.method == method && e.subject == subject)
            .unwrap_or_else(|| panic!("no refusal of {method} by {subject}: {refusals:?}"))
    };
    let unauthenticated = find("/sessiond.v1.SessionService/StartSession", "anonymous");
    assert_eq!(unauthenticated.error_reason, "UNAUTHENTICATED");
    let act_as = find("/sessiond.v1.UserContextService/SetUserContext", "R41");
    assert_eq!(act_as.error_reason, "PERMISSION_DENIED");
    assert_eq!((act_as.session_id, act_as.user.as_str()), (id, "R42"));
    assert_eq!(
        act_as.authentication_method(),
        pb::AuthenticationMethod::StaticToken
    );
    let open = find("/sessiond.v1.SessionService/StartSession", "R41");
    assert_eq!(
        (
            open.error_reason.as_str(),
            open.user.as_str(),
            open.session_id
        ),
        ("PERMISSION_DENIED", "R42", 0)
    );
    let audit = find("/sessiond.v1.AuditService/ListEvents", "billing");
    assert_eq!(audit.error_reason, "PERMISSION_DENIED");
    for refusal in &refusals {
        assert!(!refusal.peer.is_empty() && !refusal.request_id.is_empty());
    }

    // Nothing changed: no change event, the user context as it was.
    let all = list_all(&mut reader.audit, auditor, pb::ListEventsRequest::default()).await;
    assert_chained(&all);
    let after: Vec<_> = all
        .into_iter()
        .filter(|e| e.kind() != K::CallRefused)
        .collect();
    assert_eq!(after, changes, "a refused write records no change");
    let context = reader
        .contexts
        .get_user_context(as_caller(
            service,
            pb::GetUserContextRequest { session_id: id },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(context.user, "R41");
    let listed = reader
        .sessions
        .list_sessions(as_caller(service, pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1, "no session was started for R42");
    server.stop().await;
}

#[tokio::test]
async fn callers_are_named_and_refusals_recorded_on_sqlite() {
    callers_are_named_and_refusals_recorded(Backend::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn callers_are_named_and_refusals_recorded_on_postgres() {
    callers_are_named_and_refusals_recorded(Backend::Postgres).await;
}
