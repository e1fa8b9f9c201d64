//! Who may do what, over real gRPC: a server with static tokens, JWTs and
//! the example policy (plus a `setup` caller that makes the fixtures), and
//! every RPC called by callers with no, malformed, expired, misdirected or
//! unknown credentials, and by an end user, a service, an operator and a
//! module run's token. Every refused call is checked to have changed
//! nothing.
//!
//! # Layout
//! - this file: the server and its fixtures ([`World`]), the callers, and
//!   one helper per call the tests make;
//! - [`matrix`]: every RPC by every kind of caller, with the exact code and
//!   reason;
//! - [`callers`]: what services, end users and module runs may do, and the
//!   ErrorInfo a refusal carries.

mod callers;
#[path = "../common/mod.rs"]
mod common;
mod matrix;

use std::sync::Mutex;

use common::credentials::{AUDIENCE, ISSUER, Issuer, static_token};
use common::{TestServer, reason};
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
        let setup = world.setup.clone();
        world.r41 = world.start(&setup, "R41").await.unwrap();
        world.admin = world.start(&setup, "admin").await.unwrap();
        world.r41_clientless = world.open(&setup, "R41").await.unwrap();
        world.admin_clientless = world.open(&setup, "admin").await.unwrap();
        world
            .open_module(&setup, world.r41_clientless)
            .await
            .unwrap();
        world.module_token = held_tokens.recv().await.unwrap();
        assert!(!world.module_token.is_empty(), "the run got a token");
        world
    }

    /// Starts an interactive session for `user`.
    async fn start(&mut self, caller: &Caller, user: &str) -> Result<i64, Status> {
        let request = caller.request(pb::StartSessionRequest {
            user: user.to_owned(),
            client: String::new(),
        });
        let response = self.sessions.start_session(request).await?;
        Ok(response.into_inner().session_id)
    }

    /// Opens a clientless session for `user`.
    async fn open(&mut self, caller: &Caller, user: &str) -> Result<i64, Status> {
        let request = caller.request(pb::OpenClientlessSessionRequest {
            user: user.to_owned(),
        });
        let response = self.sessions.open_clientless_session(request).await?;
        Ok(response.into_inner().session_id)
    }

    /// Opens the module `hold` in `session_id`.
    async fn open_module(
        &mut self,
        caller: &Caller,
        session_id: i64,
    ) -> Result<pb::OpenModuleResponse, Status> {
        let request = caller.request(pb::OpenModuleRequest {
            session_id,
            module_id: "hold".to_owned(),
            parameters: None,
        });
        Ok(self.sessions.open_module(request).await?.into_inner())
    }

    /// The user of `session_id`.
    async fn session_user(&mut self, caller: &Caller, session_id: i64) -> Result<String, Status> {
        let request = caller.request(pb::GetSessionUserRequest { session_id });
        Ok(self
            .sessions
            .get_session_user(request)
            .await?
            .into_inner()
            .user)
    }

    /// The ids of the sessions `caller` lists, of `user` ("": any).
    async fn list(&mut self, caller: &Caller, user: &str) -> Vec<i64> {
        let request = caller.request(pb::ListSessionsRequest {
            user: user.to_owned(),
            ..Default::default()
        });
        let listed = self.sessions.list_sessions(request).await.unwrap();
        listed
            .into_inner()
            .sessions
            .iter()
            .map(|s| s.session_id)
            .collect()
    }

    /// Ends `session_id` (`EndSession`); its record.
    async fn end(&mut self, caller: &Caller, session_id: i64) -> Result<pb::SessionInfo, Status> {
        let request = caller.request(pb::EndSessionRequest { session_id });
        let response = self.sessions.end_session(request).await?;
        Ok(response.into_inner().session.unwrap())
    }

    /// Closes the clientless `session_id`; its record.
    async fn close(&mut self, caller: &Caller, session_id: i64) -> Result<pb::SessionInfo, Status> {
        let request = caller.request(pb::CloseClientlessSessionRequest {
            session_id,
            grace: None,
        });
        let response = self.sessions.close_clientless_session(request).await?;
        Ok(response.into_inner().session.unwrap())
    }

    /// Sets `user` as the user context of `session_id`.
    async fn set(&mut self, caller: &Caller, session_id: i64, user: &str) -> Result<(), Status> {
        let request = caller.request(pb::SetUserContextRequest {
            session_id,
            user: user.to_owned(),
        });
        self.contexts.set_user_context(request).await.map(drop)
    }

    /// Pushes `user` onto the user context of `session_id`; the scope's id.
    async fn push(&mut self, caller: &Caller, session_id: i64, user: &str) -> Result<i64, Status> {
        let request = caller.request(pb::PushUserContextRequest {
            session_id,
            user: user.to_owned(),
        });
        Ok(self
            .contexts
            .push_user_context(request)
            .await?
            .into_inner()
            .scope_id)
    }

    /// Pops scope `scope_id` of `session_id`.
    async fn pop(&mut self, caller: &Caller, session_id: i64, scope_id: i64) -> Result<(), Status> {
        let request = caller.request(pb::PopUserContextRequest {
            session_id,
            scope_id,
        });
        self.contexts.pop_user_context(request).await.map(drop)
    }

    /// Who the server takes `caller` to be.
    async fn who_am_i(&mut self, caller: &Caller) -> pb::WhoAmIResponse {
        let request = caller.request(pb::WhoAmIRequest {});
        self.access.who_am_i(request).await.unwrap().into_inner()
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
