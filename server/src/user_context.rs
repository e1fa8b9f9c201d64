//! The user-context rules: whom work inside a session acts as, with scopes
//! that restore exactly what was there before.

use std::sync::Arc;

use crate::access::{self, Action, OnSession};
use crate::clock::Clock;
use crate::model::Result;
use crate::model::{PoppedScope, PushedScope, ScopeId, SessionId, UserContext, UserId};
use crate::principal::Principal;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::task::run_to_completion;

/// The session authority's user-context operations.
#[derive(Clone, Debug)]
pub struct UserContexts {
    /// Where the user-context stacks live.
    store: Arc<dyn Store>,
    /// The sessions (their facts, and who may do what).
    sessions: Sessions,
    /// Where "now" comes from (a context change is session activity).
    clock: Arc<dyn Clock>,
}

impl UserContexts {
    /// User-context operations over `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, sessions: Sessions, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            sessions,
            clock,
        }
    }

    /// A session's current user context.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::StoreUnavailable`]; [`crate::Error::Unauthenticated`],
    /// [`crate::Error::PermissionDenied`] (see [`crate::access`]).
    pub async fn get(&self, caller: &Principal, id: SessionId) -> Result<UserContext> {
        let context = self.store.user_context(id).await?;
        let session = access::Session {
            id,
            user: &context.session_user,
        };
        self.sessions
            .access()
            .check(caller, Action::ReadSession(session))?;
        Ok(context)
    }

    /// Replaces a session's user context; returns the previous one.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::StoreUnavailable`]; [`crate::Error::Unauthenticated`],
    /// [`crate::Error::PermissionDenied`] (see [`crate::access`]).
    pub async fn set(&self, caller: &Principal, id: SessionId, user: UserId) -> Result<UserId> {
        tracing::debug!(session_id = %id, user = %user, caller = %caller, "set user context");
        self.sessions
            .authorize(caller, id, OnSession::ActAs(&user))
            .await?;
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.set_user_context(id, user, now).await }).await
    }

    /// Opens a scope acting as `user`.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::StoreUnavailable`]; [`crate::Error::Unauthenticated`],
    /// [`crate::Error::PermissionDenied`] (see [`crate::access`]).
    pub async fn push(
        &self,
        caller: &Principal,
        id: SessionId,
        user: UserId,
    ) -> Result<PushedScope> {
        tracing::debug!(session_id = %id, user = %user, caller = %caller, "push user context");
        self.sessions
            .authorize(caller, id, OnSession::ActAs(&user))
            .await?;
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.push_user_context(id, user, now).await }).await
    }

    /// Closes the innermost scope and restores the user context from before
    /// its push.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::ScopeNotFound`], [`crate::Error::ScopeNotInnermost`],
    /// [`crate::Error::StoreUnavailable`]; [`crate::Error::Unauthenticated`],
    /// [`crate::Error::PermissionDenied`] (see [`crate::access`]).
    pub async fn pop(
        &self,
        caller: &Principal,
        id: SessionId,
        scope: ScopeId,
    ) -> Result<PoppedScope> {
        tracing::debug!(session_id = %id, scope_id = %scope, caller = %caller, "pop user context");
        let session_user = self.sessions.authorize(caller, id, OnSession::Read).await?;
        let may_leave = self
            .sessions
            .access()
            .act_as_check(caller, id, session_user);
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.pop_user_context_as(id, scope, now, may_leave).await })
            .await
    }
}
