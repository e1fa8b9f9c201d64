//! `UserContextService` calls: the effective user of a session and its
//! scopes.

use sessiond_proto::v1 as pb;

use super::{Call, Client};
use crate::error::{ErrorContext, Result};
use crate::guard::UserContextGuard;
use crate::ids::{ScopeId, SessionId};
use crate::retry::CallKind;
use crate::user_context::{PoppedScope, PushedScope, UserContext};

impl Client {
    /// A session's current user context (the seed's `get_user_context`).
    ///
    /// # Errors
    /// [`Error::SessionNotFound`](crate::Error::SessionNotFound);
    /// [`Error::SessionEnded`](crate::Error::SessionEnded).
    pub async fn get_user_context(&self, session_id: SessionId) -> Result<UserContext> {
        let call = Call::new(
            "GetUserContext",
            CallKind::Read,
            ErrorContext::session(session_id),
        );
        let request = pb::GetUserContextRequest {
            session_id: session_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.contexts();
                async move { c.get_user_context(r).await }
            })
            .await?;
        Ok(UserContext {
            user: response.user,
            session_user: response.session_user,
            depth: response.depth,
        })
    }

    /// Replaces a session's user context (the seed's `set_user_context`);
    /// returns the previous one. A later pop of an enclosing scope still
    /// restores the value from before that scope's push.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a bad
    /// user; [`Error::SessionNotFound`](crate::Error::SessionNotFound);
    /// [`Error::SessionEnded`](crate::Error::SessionEnded).
    pub async fn set_user_context(
        &self,
        session_id: SessionId,
        user: impl Into<String>,
    ) -> Result<String> {
        let user = user.into();
        let call = Call::new(
            "SetUserContext",
            CallKind::Write,
            ErrorContext {
                user: Some(&user),
                ..ErrorContext::session(session_id)
            },
        );
        let request = pb::SetUserContextRequest {
            session_id: session_id.get(),
            user: user.clone(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.contexts();
                async move { c.set_user_context(r).await }
            })
            .await?;
        Ok(response.previous_user)
    }

    /// Opens a scope acting as `user`. Prefer [`Client::user_context`],
    /// whose guard pops it.
    ///
    /// # Errors
    /// As [`Client::set_user_context`].
    pub async fn push_user_context(
        &self,
        session_id: SessionId,
        user: impl Into<String>,
    ) -> Result<PushedScope> {
        let user = user.into();
        let call = Call::new(
            "PushUserContext",
            CallKind::Write,
            ErrorContext {
                user: Some(&user),
                ..ErrorContext::session(session_id)
            },
        );
        let request = pb::PushUserContextRequest {
            session_id: session_id.get(),
            user: user.clone(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.contexts();
                async move { c.push_user_context(r).await }
            })
            .await?;
        Ok(PushedScope {
            scope_id: ScopeId::new(response.scope_id),
            previous_user: response.previous_user,
            depth: response.depth,
        })
    }

    /// Closes the innermost scope and restores the user context from before
    /// its push.
    ///
    /// # Errors
    /// [`Error::ScopeNotInnermost`](crate::Error::ScopeNotInnermost) when
    /// another scope was pushed after it (nothing is changed);
    /// [`Error::ScopeNotFound`](crate::Error::ScopeNotFound) when it is not
    /// open; [`Error::SessionNotFound`](crate::Error::SessionNotFound);
    /// [`Error::SessionEnded`](crate::Error::SessionEnded).
    pub async fn pop_user_context(
        &self,
        session_id: SessionId,
        scope_id: ScopeId,
    ) -> Result<PoppedScope> {
        self.pop(session_id, scope_id, true).await
    }

    /// Pushes a scope acting as `user` (the seed's `UserContext('R41')`), as
    /// a guard that pops exactly that scope: call
    /// [`UserContextGuard::restore`]; if the guard is dropped instead, the
    /// scope is popped in the background. Nested guards are restored
    /// innermost first.
    ///
    /// # Errors
    /// As [`Client::push_user_context`].
    pub async fn user_context(
        &self,
        session_id: SessionId,
        user: impl Into<String>,
    ) -> Result<UserContextGuard> {
        let user = user.into();
        let scope = self.push_user_context(session_id, user.clone()).await?;
        Ok(UserContextGuard::new(self.clone(), session_id, user, scope))
    }

    /// [`Client::pop_user_context`]; `settle: false` for the clean-up of a
    /// dropped guard, which must not wait for itself.
    pub(crate) async fn pop(
        &self,
        session_id: SessionId,
        scope_id: ScopeId,
        settle: bool,
    ) -> Result<PoppedScope> {
        let call = Call::new(
            "PopUserContext",
            CallKind::Write,
            ErrorContext {
                scope_id: Some(scope_id),
                ..ErrorContext::session(session_id)
            },
        )
        .settle(settle);
        let request = pb::PopUserContextRequest {
            session_id: session_id.get(),
            scope_id: scope_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.contexts();
                async move { c.pop_user_context(r).await }
            })
            .await?;
        Ok(PoppedScope {
            user: response.user,
            depth: response.depth,
        })
    }
}
