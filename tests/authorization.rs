//! Who may do what, over real gRPC: a server with static tokens, JWTs and
//! the example policy (plus a `setup` caller that makes the fixtures), and
//! every RPC called by callers with no, malformed, expired, misdirected or
//! unknown credentials, and by an end user, a service, an operator and a
//! module run's token. Every refused call is checked to have changed
//! nothing.

mod common;

use std::sync::Mutex;

use common::credentials::{AUDIENCE, ISSUER, Issuer, static_token, unix_now};
use common::{TestServer, metadata, reason};
use serde_json::json;
use sessiond::config::security::{JwtConfig, SecurityConfig};
use sessiond::model::ModuleFailure;
use sessiond::modules::{Module, ModuleContext, async_trait};
use sessiond_proto::v1 as pb;
use sessiond_proto::v1::access_service_client::AccessServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// A module that hands its run's token to the test and runs until its
/// session closes.
#[derive(Debug)]
struct Hold {
    tokens: Mutex<Option<mpsc::UnboundedSender<String>>>,
}

#[async_trait]
impl Module for Hold {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        if let Some(sender) = self.tokens.lock().unwrap().as_ref() {
            let token = ctx.credential.as_ref().map(|c| c.expose().to_owned());
            let _ = sender.send(token.unwrap_or_default());
        }
        ctx.cancelled().await;
        Ok(json!("held"))
    }
}

/// An authorization header value, or none.
#[derive(Clone, Debug)]
struct Caller {
    name: &'static str,
    authorization: Option<String>,
}

impl Caller {
    fn bearer(name: &'static str, token: &str) -> Self {
        Self {
            name,
            authorization: Some(format!("Bearer {token}")),
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }
}

/// How many RPCs the three services have.
const RPCS: usize = 16;

/// The server under test, its clients and the fixtures.
struct World {
    server: TestServer,
    sessions: SessionServiceClient<Channel>,
    contexts: UserContextServiceClient<Channel>,
    access: AccessServiceClient<Channel>,
    setup: Caller,
    /// Interactive sessions of R41 and of admin.
    r41: i64,
    admin: i64,
    /// Clientless sessions of R41 and of admin.
    r41_clientless: i64,
    admin_clientless: i64,
    /// The token of a run of `hold` in `r41_clientless`.
    module_token: String,
    issuer: Issuer,
    tokens: Tokens,
}

struct Tokens {
    service: String,
    operator: String,
    r41: String,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tokens_file = dir.path().join("tokens.toml");
        let setup_token = static_token(&tokens_file, "setup", &[]);
        let tokens = Tokens {
            service: static_token(&tokens_file, "billing", &["services"]),
            operator: static_token(&tokens_file, "olga", &["operators"]),
            r41: static_token(&tokens_file, "R41", &[]),
        };
        let issuer = Issuer::new("key-1");
        let jwks = issuer.write_jwks(dir.path());
        let policy = dir.path().join("policy.toml");
        let example = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml"),
        )
        .unwrap();
        std::fs::write(
            &policy,
            format!(
                "{example}\n[[grant]]\nsubjects = [\"setup\"]\nread_sessions = \"any\"\n\
                 end_sessions = \"any\"\nstart_sessions_for = [\"*\"]\n\
                 open_clientless_sessions_for = [\"*\"]\nact_as = [\"*\"]\n"
            ),
        )
        .unwrap();
        let (sender, mut held_tokens) = mpsc::unbounded_channel();
        let hold = Hold {
            tokens: Mutex::new(Some(sender)),
        };
        let security = SecurityConfig {
            tokens: Some(tokens_file),
            jwt: Some(JwtConfig {
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                jwks: jwks.display().to_string(),
                subject_claim: "sub".to_owned(),
                groups_claim: "groups".to_owned(),
            }),
            policy: Some(policy),
            ..SecurityConfig::default()
        };
        let server = TestServer::build_in(
            dir,
            |config| config.security = security,
            |builder| builder.module("hold", hold),
        )
        .await;
        let channel = server.channel().await;
        let mut world = Self {
            sessions: SessionServiceClient::new(channel.clone()),
            contexts: UserContextServiceClient::new(channel.clone()),
            access: AccessServiceClient::new(channel),
            server,
            setup: Caller::bearer("setup", &setup_token),
            r41: 0,
            admin: 0,
            r41_clientless: 0,
            admin_clientless: 0,
            module_token: String::new(),
            issuer,
            tokens,
        };
        world.r41 = world.start("R41").await;
        world.admin = world.start("admin").await;
        world.r41_clientless = world.open("R41").await;
        world.admin_clientless = world.open("admin").await;
        world
            .sessions
            .open_module(world.setup.request(pb::OpenModuleRequest {
                session_id: world.r41_clientless,
                module_id: "hold".to_owned(),
                parameters: None,
            }))
            .await
            .unwrap();
        world.module_token = held_tokens.recv().await.unwrap();
        assert!(!world.module_token.is_empty(), "the run got a token");
        world
    }

    async fn start(&mut self, user: &str) -> i64 {
        let request = self.setup.request(pb::StartSessionRequest {
            user: user.to_owned(),
            client: String::new(),
        });
        self.sessions
            .start_session(request)
            .await
            .unwrap()
            .into_inner()
            .session_id
    }

    async fn open(&mut self, user: &str) -> i64 {
        let request = self.setup.request(pb::OpenClientlessSessionRequest {
            user: user.to_owned(),
        });
        self.sessions
            .open_clientless_session(request)
            .await
            .unwrap()
            .into_inner()
            .session_id
    }

    /// Everything a call could change: every session's record (state,
    /// activity, user context) and the latest run of `hold` in each
    /// clientless session.
    async fn snapshot(&mut self) -> String {
        let list = self
            .sessions
            .list_sessions(self.setup.request(pb::ListSessionsRequest {
                page_size: 1000,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let mut text = format!("{:?}", list.sessions);
        for id in [self.r41_clientless, self.admin_clientless] {
            let run = self
                .sessions
                .get_return_value(self.setup.request(pb::GetReturnValueRequest {
                    session_id: id,
                    module_id: "hold".to_owned(),
                    timeout: Some(prost_types::Duration::default()),
                }))
                .await;
            text.push_str(&format!(
                "{:?}",
                run.map(|r| r.into_inner().run_id).map_err(|s| reason(&s))
            ));
        }
        text
    }

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

/// Asserts `result` failed with `code` and `expected` reason.
#[track_caller]
fn assert_refused(what: &str, result: &Result<(), Status>, code: Code, expected: &str) {
    match result {
        Ok(()) => panic!("{what}: allowed, expected {code:?} / {expected}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            assert_eq!(reason(status), expected, "{what}: {status:?}");
        }
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

#[tokio::test]
async fn services_act_as_r_users_only_and_permission_denied_names_what() {
    let mut world = World::new().await;
    let service = Caller::bearer("service", &world.tokens.service.clone());
    // Allowed for R41: open, run a module as R41, push and pop, close.
    let opened = world
        .sessions
        .open_clientless_session(
            service.request(pb::OpenClientlessSessionRequest { user: "R41".into() }),
        )
        .await
        .unwrap()
        .into_inner();
    let id = opened.session_id;
    let run = world
        .sessions
        .open_module(service.request(pb::OpenModuleRequest {
            session_id: id,
            module_id: "hold".into(),
            parameters: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.acting_user, "R41");
    let pushed = world
        .contexts
        .push_user_context(service.request(pb::PushUserContextRequest {
            session_id: id,
            user: "R42".into(),
        }))
        .await
        .unwrap()
        .into_inner();

    // Not for admin: refused, naming the permission, the subject, the user.
    let before = world.snapshot().await;
    let refused = world
        .contexts
        .push_user_context(service.request(pb::PushUserContextRequest {
            session_id: id,
            user: "admin".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "PERMISSION_DENIED");
    assert_eq!(metadata(&refused, "permission").as_deref(), Some("act_as"));
    assert_eq!(metadata(&refused, "subject").as_deref(), Some("billing"));
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(metadata(&refused, "session_id"), Some(id.to_string()));
    let refused = world
        .sessions
        .open_clientless_session(service.request(pb::OpenClientlessSessionRequest {
            user: "admin".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        metadata(&refused, "permission").as_deref(),
        Some("open_clientless_session")
    );
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(
        world.snapshot().await,
        before,
        "refused calls change nothing"
    );

    // A module acting as admin (the setup pushed admin) may not be run by the service.
    let setup = world.setup.clone();
    world
        .contexts
        .pop_user_context(service.request(pb::PopUserContextRequest {
            session_id: id,
            scope_id: pushed.scope_id,
        }))
        .await
        .unwrap();
    let admin_scope = world
        .contexts
        .push_user_context(setup.request(pb::PushUserContextRequest {
            session_id: id,
            user: "admin".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let before = world.snapshot().await;
    let refused = world
        .sessions
        .open_module(service.request(pb::OpenModuleRequest {
            session_id: id,
            module_id: "hold".into(),
            parameters: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        metadata(&refused, "permission").as_deref(),
        Some("run_module")
    );
    assert_eq!(metadata(&refused, "user").as_deref(), Some("admin"));
    assert_eq!(metadata(&refused, "module_id").as_deref(), Some("hold"));
    let refused = world
        .contexts
        .pop_user_context(service.request(pb::PopUserContextRequest {
            session_id: id,
            scope_id: admin_scope.scope_id,
        }))
        .await
        .unwrap_err();
    assert_eq!(metadata(&refused, "permission").as_deref(), Some("act_as"));
    assert_eq!(
        world.snapshot().await,
        before,
        "refused calls change nothing"
    );

    // CheckAccess says the same without doing it.
    let check = |permission: pb::Permission, user: &str| pb::CheckAccessRequest {
        permission: permission.into(),
        session_id: id,
        user: user.to_owned(),
        module_id: "hold".to_owned(),
    };
    let yes = world
        .access
        .check_access(service.request(check(pb::Permission::ActAs, "R7")))
        .await
        .unwrap()
        .into_inner();
    assert!(yes.allowed, "{yes:?}");
    let no = world
        .access
        .check_access(service.request(check(pb::Permission::ActAs, "root")))
        .await
        .unwrap()
        .into_inner();
    assert!(!no.allowed);
    assert!(no.reason.contains("root"), "{no:?}");
    let no = world
        .access
        .check_access(service.request(check(pb::Permission::RunModule, "")))
        .await
        .unwrap()
        .into_inner();
    assert!(!no.allowed, "the session acts as admin now: {no:?}");
    world
        .sessions
        .close_clientless_session(service.request(pb::CloseClientlessSessionRequest {
            session_id: id,
            grace: None,
        }))
        .await
        .unwrap();
}

#[tokio::test]
async fn end_users_see_and_change_only_their_own_sessions() {
    let mut world = World::new().await;
    let end_user = Caller::bearer("R41", &world.tokens.r41.clone());
    let listed = world
        .sessions
        .list_sessions(end_user.request(pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = listed.sessions.iter().map(|s| s.session_id).collect();
    assert_eq!(ids, [world.r41, world.r41_clientless]);
    let asked_for_admin = world
        .sessions
        .list_sessions(end_user.request(pb::ListSessionsRequest {
            user: "admin".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(asked_for_admin.sessions.is_empty());

    // Itself as user context: yes; anyone else: no.
    world
        .contexts
        .set_user_context(end_user.request(pb::SetUserContextRequest {
            session_id: world.r41,
            user: "R41".into(),
        }))
        .await
        .unwrap();
    let refused = world
        .contexts
        .set_user_context(end_user.request(pb::SetUserContextRequest {
            session_id: world.r41,
            user: "R42".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let who = world
        .access
        .who_am_i(end_user.request(pb::WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.subject, "R41");
    assert_eq!(who.method(), pb::AuthenticationMethod::StaticToken);

    // It may end its own session.
    let ended = world
        .sessions
        .end_session(end_user.request(pb::EndSessionRequest {
            session_id: world.r41,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.session.unwrap().state(), pb::SessionState::Ended);
}

#[tokio::test]
async fn a_module_token_reaches_its_own_session_only_and_expires_with_its_run() {
    let mut world = World::new().await;
    let module = Caller::bearer("module", &world.module_token.clone());
    let own = world.r41_clientless;
    let who = world
        .access
        .who_am_i(module.request(pb::WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (who.subject.as_str(), who.method(), who.session_id),
        ("setup", pb::AuthenticationMethod::ModuleRun, own)
    );
    let user = world
        .sessions
        .get_session_user(module.request(pb::GetSessionUserRequest { session_id: own }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.user, "R41");
    let pushed = world
        .contexts
        .push_user_context(module.request(pb::PushUserContextRequest {
            session_id: own,
            user: "R42".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    world
        .contexts
        .pop_user_context(module.request(pb::PopUserContextRequest {
            session_id: own,
            scope_id: pushed.scope_id,
        }))
        .await
        .unwrap();
    for other in [world.r41, world.admin, world.admin_clientless] {
        let refused = world
            .sessions
            .get_session_user(module.request(pb::GetSessionUserRequest { session_id: other }))
            .await
            .map(drop);
        assert_refused(
            "another session",
            &refused,
            Code::NotFound,
            "SESSION_NOT_FOUND",
        );
    }
    let refused = world
        .sessions
        .end_session(module.request(pb::EndSessionRequest { session_id: own }))
        .await
        .map(drop);
    assert_refused(
        "its own session's end",
        &refused,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );

    // The run concludes when its session closes; its token with it.
    let setup = world.setup.clone();
    world
        .sessions
        .close_clientless_session(setup.request(pb::CloseClientlessSessionRequest {
            session_id: own,
            grace: None,
        }))
        .await
        .unwrap();
    let refused = world
        .sessions
        .get_session_user(module.request(pb::GetSessionUserRequest { session_id: own }))
        .await
        .map(drop);
    assert_refused(
        "after the run",
        &refused,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_credential() {
    let world = World::new().await;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(world.server.channel().await);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            world.server.channel().await,
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let listed = format!("{:?}", answers.message().await.unwrap().unwrap());
    assert!(listed.contains("sessiond.v1.AccessService"), "{listed}");
}
