//! `sessiond.v1.SessionService`.

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;

use super::convert::{
    call_deadline, kind_filter, page_size_of, state_filter, states_filter, struct_to_json, time_of,
    wait,
};
use super::forward::Router;
use crate::clientless::Clientless;
use crate::cluster::NodeClient;
use crate::events::{EventLog, WatchRequest};
use crate::model::{ClientDescription, ModuleId, SessionId, UserId};
use crate::model::{FieldViolation, Validate};
use crate::principal;
use crate::sessions::Sessions;
use crate::store::SessionQuery;

/// How much sooner than the caller's own deadline `GetReturnValue` answers,
/// so that the answer arrives before the caller gives up.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// The `SessionService` implementation.
#[derive(Clone, Debug)]
pub struct SessionApi {
    /// Sessions: creating, reading, interactive ones.
    sessions: Sessions,
    /// The clientless lifecycle: modules, closes.
    clientless: Clientless,
    /// Where requests about another node's sessions go.
    router: Router,
    /// The event log, for watches.
    events: EventLog,
}

impl SessionApi {
    /// Serves `sessions` and `clientless`, forwarding what belongs to other
    /// nodes through `router`, and watches of `events`.
    #[must_use]
    pub fn new(
        sessions: Sessions,
        clientless: Clientless,
        router: Router,
        events: EventLog,
    ) -> Self {
        Self {
            sessions,
            clientless,
            router,
            events,
        }
    }
}

/// The responses of one WatchSessions call.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchSessionsResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SessionService for SessionApi {
    type WatchSessionsStream = WatchStream;

    async fn watch_sessions(
        &self,
        request: Request<pb::WatchSessionsRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = principal::of(&request);
        let pb::WatchSessionsRequest {
            after_revision,
            user,
            session_id,
            send_initial_state,
        } = request.into_inner();
        let after = if after_revision < 0 {
            Err(FieldViolation::new("after_revision", "must be >= 0"))
        } else if send_initial_state && after_revision != 0 {
            Err(FieldViolation::new(
                "after_revision",
                "must be 0 with send_initial_state: the initial state is the current one",
            ))
        } else {
            Ok(after_revision)
        };
        let user = if user.is_empty() {
            Ok(None)
        } else {
            UserId::parse("user", user).map(Some)
        };
        let session = if session_id == 0 {
            Ok(None)
        } else {
            SessionId::parse("session_id", session_id).map(Some)
        };
        let (after_revision, user, session_id) = (after, user, session).validate()?;
        let watch = WatchRequest {
            after_revision,
            user,
            session_id,
            send_initial_state,
        };
        let responses = ReceiverStream::new(self.events.watch(caller, watch))
            .map(|item| item.map_err(Status::from));
        Ok(Response::new(Box::pin(responses)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn get_session_user(
        &self,
        request: Request<pb::GetSessionUserRequest>,
    ) -> Result<Response<pb::GetSessionUserResponse>, Status> {
        let caller = principal::of(&request);
        let id = SessionId::parse("session_id", request.get_ref().session_id).validate()?;
        let user = self.sessions.user(&caller, id).await?;
        Ok(Response::new(pb::GetSessionUserResponse {
            user: user.into_string(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn get_session_info(
        &self,
        request: Request<pb::GetSessionInfoRequest>,
    ) -> Result<Response<pb::GetSessionInfoResponse>, Status> {
        let caller = principal::of(&request);
        let id = SessionId::parse("session_id", request.get_ref().session_id).validate()?;
        let session = self.sessions.info(&caller, id).await?;
        Ok(Response::new(pb::GetSessionInfoResponse {
            session: Some(session.into()),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = principal::of(&request);
        let pb::ListSessionsRequest {
            user,
            kind,
            state,
            page_size,
            page_token,
            states,
            started_after,
            started_before,
            newest_first,
        } = request.into_inner();
        let user = if user.is_empty() {
            Ok(None)
        } else {
            UserId::parse("user", user).map(Some)
        };
        let (user, kind, state, mut states, page_size, after, started_after, started_before) = (
            user,
            kind_filter("kind", kind),
            state_filter("state", state),
            states_filter("states", &states),
            page_size_of(page_size),
            page_start(&page_token),
            time_of("started_after", started_after),
            time_of("started_before", started_before),
        )
            .validate()?;
        // `state` and `states` together: a session in any of them.
        if let Some(state) = state.filter(|state| !states.contains(state)) {
            states.push(state);
        }
        let query = SessionQuery {
            user,
            kind,
            states,
            started_after,
            started_before,
            newest_first,
            after,
            limit: page_size + 1,
        };
        let mut sessions = self.sessions.list(&caller, &query).await?;
        let next_page_token = if sessions.len() > page_size as usize {
            sessions.truncate(page_size as usize);
            sessions
                .last()
                .map(|s| s.id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn start_session(
        &self,
        request: Request<pb::StartSessionRequest>,
    ) -> Result<Response<pb::StartSessionResponse>, Status> {
        let caller = principal::of(&request);
        let pb::StartSessionRequest { user, client } = request.into_inner();
        let (user, client) = (
            UserId::parse("user", user),
            ClientDescription::parse("client", client),
        )
            .validate()?;
        let session = self.sessions.start(&caller, user, client).await?;
        Ok(Response::new(pb::StartSessionResponse {
            session_id: session.id.get(),
            session_uuid: session.uuid.hyphenated().to_string(),
            session: Some(session.into()),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn touch_session(
        &self,
        request: Request<pb::TouchSessionRequest>,
    ) -> Result<Response<pb::TouchSessionResponse>, Status> {
        let caller = principal::of(&request);
        let id = SessionId::parse("session_id", request.get_ref().session_id).validate()?;
        let session = self.sessions.touch(&caller, id).await?;
        Ok(Response::new(pb::TouchSessionResponse {
            last_activity_time: Some(session.last_activity_time.into()),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        let caller = principal::of(&request);
        let id = SessionId::parse("session_id", request.get_ref().session_id).validate()?;
        let forward =
            |mut owner: NodeClient, request| async move { owner.end_session(request).await };
        let here = |_| async {
            let session = self.clientless.end(&caller, id).await?;
            Ok(Response::new(pb::EndSessionResponse {
                session: Some(session.into()),
            }))
        };
        self.router
            .at_owner(&caller, id, request, forward, here)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn open_clientless_session(
        &self,
        request: Request<pb::OpenClientlessSessionRequest>,
    ) -> Result<Response<pb::OpenClientlessSessionResponse>, Status> {
        let caller = principal::of(&request);
        let user = UserId::parse("user", request.into_inner().user).validate()?;
        let session = self.clientless.open(&caller, user).await?;
        Ok(Response::new(pb::OpenClientlessSessionResponse {
            session_id: session.id.get(),
            session_uuid: session.uuid.hyphenated().to_string(),
            session: Some(session.into()),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn close_clientless_session(
        &self,
        request: Request<pb::CloseClientlessSessionRequest>,
    ) -> Result<Response<pb::CloseClientlessSessionResponse>, Status> {
        let caller = principal::of(&request);
        let pb::CloseClientlessSessionRequest { session_id, grace } = request.get_ref();
        let (id, grace) = (
            SessionId::parse("session_id", *session_id),
            wait("grace", *grace),
        )
            .validate()?;
        let forward = |mut owner: NodeClient, request| async move {
            owner.close_clientless_session(request).await
        };
        let here = |_| async {
            let session = self.clientless.close(&caller, id, grace).await?;
            Ok(Response::new(pb::CloseClientlessSessionResponse {
                session: Some(session.into()),
            }))
        };
        self.router
            .at_owner(&caller, id, request, forward, here)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn open_module(
        &self,
        request: Request<pb::OpenModuleRequest>,
    ) -> Result<Response<pb::OpenModuleResponse>, Status> {
        let caller = principal::of(&request);
        let (id, module_id) = (
            SessionId::parse("session_id", request.get_ref().session_id),
            ModuleId::parse("module_id", request.get_ref().module_id.clone()),
        )
            .validate()?;
        let forward =
            |mut owner: NodeClient, request| async move { owner.open_module(request).await };
        let caller = &caller;
        let here = |request: Request<pb::OpenModuleRequest>| async move {
            let parameters = request
                .into_inner()
                .parameters
                .map(struct_to_json)
                .unwrap_or_default();
            let run = self
                .clientless
                .open_module(caller, id, module_id, parameters)
                .await?;
            Ok(Response::new(pb::OpenModuleResponse {
                run_id: run.id.get(),
                state: pb::RunState::from(run.state()).into(),
                start_time: Some(run.start_time.into()),
                acting_user: run.acting_user.into_string(),
            }))
        };
        self.router
            .at_owner(caller, id, request, forward, here)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn get_return_value(
        &self,
        request: Request<pb::GetReturnValueRequest>,
    ) -> Result<Response<pb::GetReturnValueResponse>, Status> {
        let caller = principal::of(&request);
        let deadline = call_deadline(request.metadata());
        let (id, module_id, timeout) = (
            SessionId::parse("session_id", request.get_ref().session_id),
            ModuleId::parse("module_id", request.get_ref().module_id.clone()),
            wait("timeout", request.get_ref().timeout),
        )
            .validate()?;
        let forward =
            |mut owner: NodeClient, request| async move { owner.get_return_value(request).await };
        let here = |_| async {
            let mut timeout = timeout.unwrap_or_default();
            if let Some(deadline) = deadline {
                timeout = timeout.min(deadline.saturating_sub(DEADLINE_MARGIN));
            }
            let run = self
                .clientless
                .return_value(&caller, id, module_id, timeout)
                .await?;
            Ok(Response::new(run.into()))
        };
        self.router
            .at_owner(&caller, id, request, forward, here)
            .await
    }
}

/// Where a page starts: after the session id its token names.
fn page_start(token: &str) -> Result<Option<SessionId>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse::<i64>()
        .ok()
        .and_then(|id| SessionId::parse("page_token", id).ok())
        .map(Some)
        .ok_or_else(|| FieldViolation::new("page_token", "is not a token this server issued"))
}
