//! Every RPC of the three services, made by every kind of caller against
//! admin's sessions, with the exact code and reason of each refusal; every
//! refused call is checked to have changed nothing.

use serde_json::json;
use sessiond_proto::v1 as pb;
use tonic::{Code, Request, Status};

use super::common::credentials::{Issuer, unix_now};
use super::{Caller, World, assert_refused};

/// How many RPCs the three services have.
const RPCS: usize = 16;

impl World {
    /// RPC number `rpc` (of [`RPCS`]), made by `caller` against admin's
    /// fixtures: its name and result. Writes target sessions most callers
    /// should not be able to change.
    async fn call(&mut self, caller: &Caller, rpc: usize) -> (&'static str, Result<(), Status>) {
        let (admin, admin_clientless) = (self.admin, self.admin_clientless);
        let s = &mut self.sessions;
        let c = &mut self.contexts;
        let a = &mut self.access;
        match rpc {
            0 => (
                "GetSessionUser",
                s.get_session_user(caller.request(pb::GetSessionUserRequest { session_id: admin }))
                    .await
                    .map(drop),
            ),
            1 => (
                "GetSessionInfo",
                s.get_session_info(caller.request(pb::GetSessionInfoRequest { session_id: admin }))
                    .await
                    .map(drop),
            ),
            2 => (
                "ListSessions",
                s.list_sessions(caller.request(pb::ListSessionsRequest::default()))
                    .await
                    .map(drop),
            ),
            3 => (
                "StartSession",
                s.start_session(caller.request(pb::StartSessionRequest {
                    user: "admin".into(),
                    client: String::new(),
                }))
                .await
                .map(drop),
            ),
            4 => (
                "TouchSession",
                s.touch_session(caller.request(pb::TouchSessionRequest { session_id: admin }))
                    .await
                    .map(drop),
            ),
            5 => (
                "EndSession",
                s.end_session(caller.request(pb::EndSessionRequest { session_id: admin }))
                    .await
                    .map(drop),
            ),
            6 => (
                "OpenClientlessSession",
                s.open_clientless_session(caller.request(pb::OpenClientlessSessionRequest {
                    user: "admin".into(),
                }))
                .await
                .map(drop),
            ),
            7 => (
                "CloseClientlessSession",
                s.close_clientless_session(caller.request(pb::CloseClientlessSessionRequest {
                    session_id: admin_clientless,
                    grace: None,
                }))
                .await
                .map(drop),
            ),
            8 => (
                "OpenModule",
                s.open_module(caller.request(pb::OpenModuleRequest {
                    session_id: admin_clientless,
                    module_id: "hold".into(),
                    parameters: None,
                }))
                .await
                .map(drop),
            ),
            9 => (
                "GetReturnValue",
                s.get_return_value(caller.request(pb::GetReturnValueRequest {
                    session_id: admin_clientless,
                    module_id: "hold".into(),
                    timeout: None,
                }))
                .await
                .map(drop),
            ),
            10 => (
                "GetUserContext",
                c.get_user_context(caller.request(pb::GetUserContextRequest { session_id: admin }))
                    .await
                    .map(drop),
            ),
            11 => (
                "SetUserContext",
                c.set_user_context(caller.request(pb::SetUserContextRequest {
                    session_id: admin,
                    user: "root".into(),
                }))
                .await
                .map(drop),
            ),
            12 => (
                "PushUserContext",
                c.push_user_context(caller.request(pb::PushUserContextRequest {
                    session_id: admin,
                    user: "root".into(),
                }))
                .await
                .map(drop),
            ),
            13 => (
                "PopUserContext",
                c.pop_user_context(caller.request(pb::PopUserContextRequest {
                    session_id: admin,
                    scope_id: 1,
                }))
                .await
                .map(drop),
            ),
            14 => (
                "WhoAmI",
                a.who_am_i(caller.request(pb::WhoAmIRequest {}))
                    .await
                    .map(drop),
            ),
            15 => (
                "CheckAccess",
                a.check_access(caller.request(pb::CheckAccessRequest {
                    permission: pb::Permission::ReadSession.into(),
                    session_id: admin,
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            _ => unreachable!("{rpc} is not an RPC number"),
        }
    }

    /// Makes every RPC as `caller`, checking around each refused one that it
    /// changed nothing; returns each RPC's name and result.
    async fn every_rpc(&mut self, caller: &Caller) -> Vec<(&'static str, Result<(), Status>)> {
        let mut results = Vec::new();
        for rpc in 0..RPCS {
            let before = self.snapshot().await;
            let (name, result) = self.call(caller, rpc).await;
            if result.is_err() {
                assert_eq!(
                    self.snapshot().await,
                    before,
                    "{} / {name}: a refused call changes nothing",
                    caller.name
                );
            }
            results.push((name, result));
        }
        results
    }
}

#[tokio::test]
async fn callers_without_a_valid_credential_are_refused_every_rpc_and_change_nothing() {
    let mut world = World::new().await;
    let now = unix_now();
    let bad = [
        Caller {
            name: "no credential",
            authorization: None,
        },
        Caller {
            name: "malformed",
            authorization: Some("Basic c2V0dXA6c2V0dXA=".to_owned()),
        },
        Caller {
            name: "empty bearer",
            authorization: Some("Bearer ".to_owned()),
        },
        Caller::bearer(
            "expired JWT",
            &world.issuer.token(
                "olga",
                &["operators"],
                json!({"exp": now - 120, "nbf": now - 3600}),
            ),
        ),
        Caller::bearer(
            "JWT for another audience",
            &world
                .issuer
                .token("olga", &["operators"], json!({"aud": "someone-else"})),
        ),
        Caller::bearer(
            "JWT from another issuer",
            &world
                .issuer
                .token("olga", &["operators"], json!({"iss": "https://evil.test"})),
        ),
        Caller::bearer(
            "JWT signed by an unknown key",
            &Issuer::new("key-1").token("olga", &["operators"], json!({})),
        ),
        Caller::bearer(
            "unknown static token",
            "sdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        Caller::bearer(
            "unknown run token",
            "sdr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        Caller::bearer("not a token", "not-a-token"),
    ];
    for caller in &bad {
        for (rpc, result) in &world.every_rpc(caller).await {
            assert_refused(
                &format!("{} / {rpc}", caller.name),
                result,
                Code::Unauthenticated,
                "UNAUTHENTICATED",
            );
        }
    }
}

#[tokio::test]
async fn a_forged_forwarded_caller_is_not_believed() {
    let mut world = World::new().await;
    let mut request = Request::new(pb::GetSessionUserRequest {
        session_id: world.admin,
    });
    let metadata = request.metadata_mut();
    metadata.insert("sessiond-forwarded-by", "other-node".parse().unwrap());
    metadata.insert(
        "sessiond-forwarded-identity",
        "eyJzdWJqZWN0Ijoic2V0dXAifQ".parse().unwrap(),
    );
    metadata.insert("sessiond-forwarded-signature", "AAAA".parse().unwrap());
    let result = world.sessions.get_session_user(request).await.map(drop);
    assert_refused("forged", &result, Code::Unauthenticated, "UNAUTHENTICATED");
}

/// The expected outcome of one RPC for one caller: allowed, or refused
/// with a code and reason.
type Expected = Option<(Code, &'static str)>;

const OK: Expected = None;
const NOT_FOUND: Expected = Some((Code::NotFound, "SESSION_NOT_FOUND"));
const DENIED: Expected = Some((Code::PermissionDenied, "PERMISSION_DENIED"));

#[tokio::test]
async fn each_kind_of_caller_gets_exactly_what_the_policy_grants() {
    let mut world = World::new().await;
    let service = Caller::bearer("service", &world.tokens.service.clone());
    let service_jwt = Caller::bearer(
        "service (JWT)",
        &world.issuer.token("billing-jwt", &["services"], json!({})),
    );
    let operator = Caller::bearer("operator", &world.tokens.operator.clone());
    let end_user = Caller::bearer("end user R41", &world.tokens.r41.clone());
    let module = Caller::bearer("module token", &world.module_token.clone());

    // Against admin's sessions (the fixtures every_rpc targets), in its
    // order: GetSessionUser, GetSessionInfo, ListSessions, StartSession
    // (admin), TouchSession, EndSession, OpenClientlessSession (admin),
    // CloseClientlessSession, OpenModule, GetReturnValue, GetUserContext,
    // SetUserContext (root), PushUserContext (root), PopUserContext,
    // WhoAmI, CheckAccess. The operator, last, may end and close them.
    let not_opened = Some((Code::NotFound, "MODULE_NOT_OPENED"));
    let no_scope = Some((Code::NotFound, "SCOPE_NOT_FOUND"));
    // Once the operator ended admin's sessions.
    let ended = Some((Code::FailedPrecondition, "SESSION_ENDED"));
    let table: Vec<(&Caller, [Expected; RPCS])> = vec![
        (
            &end_user,
            [
                NOT_FOUND, NOT_FOUND, OK, DENIED, NOT_FOUND, NOT_FOUND, DENIED, NOT_FOUND,
                NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK, OK,
            ],
        ),
        (
            &module,
            [
                NOT_FOUND, NOT_FOUND, OK, DENIED, NOT_FOUND, NOT_FOUND, DENIED, NOT_FOUND,
                NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK, OK,
            ],
        ),
        (
            &service,
            [
                OK, OK, OK, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, not_opened, OK, DENIED,
                DENIED, no_scope, OK, OK,
            ],
        ),
        (
            &service_jwt,
            [
                OK, OK, OK, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, not_opened, OK, DENIED,
                DENIED, no_scope, OK, OK,
            ],
        ),
        (
            &operator,
            [
                OK, OK, OK, DENIED, OK, OK, DENIED, OK, ended, not_opened, ended, DENIED, DENIED,
                ended, OK, OK,
            ],
        ),
    ];
    for (caller, expected) in table {
        let results = world.every_rpc(caller).await;
        for ((rpc, result), expected) in results.iter().zip(expected) {
            let what = format!("{} / {rpc}", caller.name);
            match expected {
                None => assert!(result.is_ok(), "{what}: {result:?}"),
                Some((code, expected_reason)) => {
                    assert_refused(&what, result, code, expected_reason)
                }
            }
        }
    }
}
