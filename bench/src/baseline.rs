//! The baseline: both services of the contract with handlers that do
//! nothing — no validation, no store, no interceptor — and answer with fixed
//! messages shaped like sessiond's (a full `SessionInfo` where sessiond
//! returns one), so that the bytes on the wire are comparable.
//!
//! Served with a [`DurableLog`] it is the *durable floor*: the same, except
//! that each call that writes in sessiond answers only once the log has
//! made a record of it durable.
//!
//! Every message ends in `..Default::default()` so that fields the contract
//! gains later do not break the baseline.
#![allow(clippy::needless_update)]

use prost_types::Timestamp;
use sessiond_proto::v1::session_service_server::SessionService;
use sessiond_proto::v1::user_context_service_server::UserContextService;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, CloseClientlessSessionResponse, EndSessionRequest,
    EndSessionResponse, GetReturnValueRequest, GetReturnValueResponse, GetSessionInfoRequest,
    GetSessionInfoResponse, GetSessionUserRequest, GetSessionUserResponse, GetUserContextRequest,
    GetUserContextResponse, ListSessionsRequest, ListSessionsResponse,
    OpenClientlessSessionRequest, OpenClientlessSessionResponse, OpenModuleRequest,
    OpenModuleResponse, PopUserContextRequest, PopUserContextResponse, PushUserContextRequest,
    PushUserContextResponse, RunState, SessionInfo, SessionKind, SessionState,
    SetUserContextRequest, SetUserContextResponse, StartSessionRequest, StartSessionResponse,
    TouchSessionRequest, TouchSessionResponse, WatchSessionsRequest, WatchSessionsResponse,
};
use tonic::{Request, Response, Status};

use crate::floor::DurableLog;

/// The fixed session every answer describes.
const SESSION_ID: i64 = 1;
/// Its UUID.
const SESSION_UUID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
/// Its user.
const USER: &str = "user-1";

/// Both services of the contract, answering every call with a fixed
/// message.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// The session that every session-returning call answers with.
    session: SessionInfo,
    /// Where writes are made durable before they are answered (the durable
    /// floor); none for the plain baseline.
    log: Option<DurableLog>,
}

impl Baseline {
    /// The durable floor: writes are answered once `log` made them durable.
    pub fn durable(log: DurableLog) -> Self {
        Self {
            log: Some(log),
            ..Self::default()
        }
    }

    /// Returns once a write is durable (at once for the plain baseline).
    async fn write(&self) -> Result<(), Status> {
        match &self.log {
            Some(log) => log.commit().await,
            None => Ok(()),
        }
    }
}

impl Default for Baseline {
    fn default() -> Self {
        let time = Some(Timestamp {
            seconds: 1_750_000_000,
            nanos: 123_456_000,
        });
        Self {
            session: SessionInfo {
                session_id: SESSION_ID,
                session_uuid: SESSION_UUID.to_owned(),
                user: USER.to_owned(),
                kind: SessionKind::Clientless.into(),
                state: SessionState::Open.into(),
                start_time: time,
                end_time: None,
                last_activity_time: time,
                end_reason: 0,
                effective_user: USER.to_owned(),
                client: String::new(),
                user_context_depth: 0,
                ..Default::default()
            },
            log: None,
        }
    }
}

impl Baseline {
    fn time(&self) -> Option<Timestamp> {
        self.session.start_time
    }
}

#[tonic::async_trait]
impl SessionService for Baseline {
    type WatchSessionsStream = futures::stream::Empty<Result<WatchSessionsResponse, Status>>;

    async fn watch_sessions(
        &self,
        _request: Request<WatchSessionsRequest>,
    ) -> Result<Response<Self::WatchSessionsStream>, Status> {
        Ok(Response::new(futures::stream::empty()))
    }

    async fn get_session_user(
        &self,
        _request: Request<GetSessionUserRequest>,
    ) -> Result<Response<GetSessionUserResponse>, Status> {
        Ok(Response::new(GetSessionUserResponse {
            user: USER.to_owned(),
            ..Default::default()
        }))
    }

    async fn get_session_info(
        &self,
        _request: Request<GetSessionInfoRequest>,
    ) -> Result<Response<GetSessionInfoResponse>, Status> {
        Ok(Response::new(GetSessionInfoResponse {
            session: Some(self.session.clone()),
            ..Default::default()
        }))
    }

    async fn list_sessions(
        &self,
        _request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        Ok(Response::new(ListSessionsResponse {
            sessions: vec![self.session.clone()],
            next_page_token: String::new(),
            ..Default::default()
        }))
    }

    async fn start_session(
        &self,
        _request: Request<StartSessionRequest>,
    ) -> Result<Response<StartSessionResponse>, Status> {
        self.write().await?;
        Ok(Response::new(StartSessionResponse {
            session_id: SESSION_ID,
            session_uuid: SESSION_UUID.to_owned(),
            session: Some(self.session.clone()),
            ..Default::default()
        }))
    }

    async fn touch_session(
        &self,
        _request: Request<TouchSessionRequest>,
    ) -> Result<Response<TouchSessionResponse>, Status> {
        self.write().await?;
        Ok(Response::new(TouchSessionResponse {
            last_activity_time: self.time(),
            ..Default::default()
        }))
    }

    async fn end_session(
        &self,
        _request: Request<EndSessionRequest>,
    ) -> Result<Response<EndSessionResponse>, Status> {
        self.write().await?;
        Ok(Response::new(EndSessionResponse {
            session: Some(self.session.clone()),
            ..Default::default()
        }))
    }

    async fn open_clientless_session(
        &self,
        _request: Request<OpenClientlessSessionRequest>,
    ) -> Result<Response<OpenClientlessSessionResponse>, Status> {
        self.write().await?;
        Ok(Response::new(OpenClientlessSessionResponse {
            session_id: SESSION_ID,
            session_uuid: SESSION_UUID.to_owned(),
            session: Some(self.session.clone()),
            ..Default::default()
        }))
    }

    async fn close_clientless_session(
        &self,
        _request: Request<CloseClientlessSessionRequest>,
    ) -> Result<Response<CloseClientlessSessionResponse>, Status> {
        self.write().await?;
        Ok(Response::new(CloseClientlessSessionResponse {
            session: Some(self.session.clone()),
            ..Default::default()
        }))
    }

    async fn open_module(
        &self,
        _request: Request<OpenModuleRequest>,
    ) -> Result<Response<OpenModuleResponse>, Status> {
        self.write().await?;
        Ok(Response::new(OpenModuleResponse {
            run_id: 1,
            state: RunState::Running.into(),
            start_time: self.time(),
            acting_user: USER.to_owned(),
            ..Default::default()
        }))
    }

    async fn get_return_value(
        &self,
        _request: Request<GetReturnValueRequest>,
    ) -> Result<Response<GetReturnValueResponse>, Status> {
        Ok(Response::new(GetReturnValueResponse {
            run_id: 1,
            state: RunState::Succeeded.into(),
            value: Some(prost_types::Value {
                kind: Some(prost_types::value::Kind::NullValue(0)),
            }),
            failure: None,
            start_time: self.time(),
            end_time: self.time(),
            acting_user: USER.to_owned(),
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl UserContextService for Baseline {
    async fn get_user_context(
        &self,
        _request: Request<GetUserContextRequest>,
    ) -> Result<Response<GetUserContextResponse>, Status> {
        Ok(Response::new(GetUserContextResponse {
            user: USER.to_owned(),
            session_user: USER.to_owned(),
            depth: 0,
            ..Default::default()
        }))
    }

    async fn set_user_context(
        &self,
        _request: Request<SetUserContextRequest>,
    ) -> Result<Response<SetUserContextResponse>, Status> {
        self.write().await?;
        Ok(Response::new(SetUserContextResponse {
            previous_user: USER.to_owned(),
            ..Default::default()
        }))
    }

    async fn push_user_context(
        &self,
        _request: Request<PushUserContextRequest>,
    ) -> Result<Response<PushUserContextResponse>, Status> {
        self.write().await?;
        Ok(Response::new(PushUserContextResponse {
            scope_id: 1,
            previous_user: USER.to_owned(),
            depth: 1,
            ..Default::default()
        }))
    }

    async fn pop_user_context(
        &self,
        _request: Request<PopUserContextRequest>,
    ) -> Result<Response<PopUserContextResponse>, Status> {
        self.write().await?;
        Ok(Response::new(PopUserContextResponse {
            user: USER.to_owned(),
            depth: 0,
            ..Default::default()
        }))
    }
}
