//! `sessiond.v1.UserContextService`.

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::user_context_service_server::UserContextService;
use tonic::{Request, Response, Status};

use crate::model::Validate;
use crate::model::{ScopeId, SessionId, UserId};
use crate::principal;
use crate::user_context::UserContexts;

/// The `UserContextService` implementation.
#[derive(Clone, Debug)]
pub struct UserContextApi {
    /// The user-context rules.
    contexts: UserContexts,
}

impl UserContextApi {
    /// Serves `contexts`.
    #[must_use]
    pub fn new(contexts: UserContexts) -> Self {
        Self { contexts }
    }
}

#[tonic::async_trait]
impl UserContextService for UserContextApi {
    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn get_user_context(
        &self,
        request: Request<pb::GetUserContextRequest>,
    ) -> Result<Response<pb::GetUserContextResponse>, Status> {
        let caller = principal::of(&request);
        let id = SessionId::parse("session_id", request.get_ref().session_id).validate()?;
        let context = self.contexts.get(&caller, id).await?;
        Ok(Response::new(pb::GetUserContextResponse {
            user: context.user.into_string(),
            session_user: context.session_user.into_string(),
            depth: context.depth,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn set_user_context(
        &self,
        request: Request<pb::SetUserContextRequest>,
    ) -> Result<Response<pb::SetUserContextResponse>, Status> {
        let caller = principal::of(&request);
        let pb::SetUserContextRequest { session_id, user } = request.into_inner();
        let (id, user) = (
            SessionId::parse("session_id", session_id),
            UserId::parse("user", user),
        )
            .validate()?;
        let previous = self.contexts.set(&caller, id, user).await?;
        Ok(Response::new(pb::SetUserContextResponse {
            previous_user: previous.into_string(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn push_user_context(
        &self,
        request: Request<pb::PushUserContextRequest>,
    ) -> Result<Response<pb::PushUserContextResponse>, Status> {
        let caller = principal::of(&request);
        let pb::PushUserContextRequest { session_id, user } = request.into_inner();
        let (id, user) = (
            SessionId::parse("session_id", session_id),
            UserId::parse("user", user),
        )
            .validate()?;
        let pushed = self.contexts.push(&caller, id, user).await?;
        Ok(Response::new(pb::PushUserContextResponse {
            scope_id: pushed.scope_id.get(),
            previous_user: pushed.previous_user.into_string(),
            depth: pushed.depth,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = request.get_ref().session_id))]
    async fn pop_user_context(
        &self,
        request: Request<pb::PopUserContextRequest>,
    ) -> Result<Response<pb::PopUserContextResponse>, Status> {
        let caller = principal::of(&request);
        let pb::PopUserContextRequest {
            session_id,
            scope_id,
        } = request.into_inner();
        let (id, scope) = (
            SessionId::parse("session_id", session_id),
            ScopeId::parse("scope_id", scope_id),
        )
            .validate()?;
        let popped = self.contexts.pop(&caller, id, scope).await?;
        Ok(Response::new(pb::PopUserContextResponse {
            user: popped.user.into_string(),
            depth: popped.depth,
        }))
    }
}
