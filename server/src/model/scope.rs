//! User contexts: whom work inside a session acts as, and the stack of
//! scopes that restore exactly what was there before. The rules: only a
//! session that has not ended changes its user context, and only the
//! innermost scope may be popped.

use super::{Error, Result, ScopeId, Session, SessionId, Timestamp, UserId};

/// A session's user context as `GetUserContext` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserContext {
    /// The effective user.
    pub user: UserId,
    /// The session's own user.
    pub session_user: UserId,
    /// How many scopes are open.
    pub depth: u32,
}

/// One open (pushed, not yet popped) scope of a session's user context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Its id.
    pub id: ScopeId,
    /// Its place in the stack: 1 is the outermost.
    pub depth: u32,
    /// The user context it set.
    pub user: UserId,
    /// The user context before its push: what its pop restores.
    pub previous_user: UserId,
}

/// A scope about to be pushed (the store assigns its id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewScope {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Its place in the stack.
    pub depth: u32,
    /// The user context it sets.
    pub user: UserId,
    /// The user context its pop restores.
    pub previous_user: UserId,
    /// When it was pushed.
    pub pushed_at: Timestamp,
}

/// What a `PushUserContext` created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedScope {
    /// The new scope's id, for the matching pop.
    pub scope_id: ScopeId,
    /// The user context before the push; the pop restores it.
    pub previous_user: UserId,
    /// Open scopes, the new one included.
    pub depth: u32,
}

/// What a `PopUserContext` restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoppedScope {
    /// The restored user context.
    pub user: UserId,
    /// Scopes still open.
    pub depth: u32,
}

impl Session {
    /// The session's user context.
    ///
    /// # Errors
    /// [`Error::SessionEnded`].
    pub fn user_context(&self) -> Result<UserContext> {
        self.ensure_not_ended()?;
        Ok(UserContext {
            user: self.effective_user.clone(),
            session_user: self.user.clone(),
            depth: self.user_context_depth,
        })
    }

    /// `SetUserContext`: the record acting as `user` from `now` on (open
    /// scopes stay open and still restore what they saved).
    ///
    /// # Errors
    /// [`Error::SessionEnded`].
    pub fn set_user_context(&self, user: UserId, now: Timestamp) -> Result<Self> {
        self.ensure_not_ended()?;
        Ok(Self {
            effective_user: user,
            ..self.touched(now)
        })
    }

    /// `PushUserContext`: the scope to record and the record acting as
    /// `user`, one scope deeper.
    ///
    /// # Errors
    /// [`Error::SessionEnded`].
    pub fn push_user_context(&self, user: UserId, now: Timestamp) -> Result<(NewScope, Self)> {
        self.ensure_not_ended()?;
        let depth = self.user_context_depth + 1;
        let scope = NewScope {
            session_id: self.id,
            depth,
            user: user.clone(),
            previous_user: self.effective_user.clone(),
            pushed_at: now,
        };
        let session = Self {
            effective_user: user,
            user_context_depth: depth,
            ..self.touched(now)
        };
        Ok((scope, session))
    }

    /// `PopUserContext` of `scope`, given the session's open scopes
    /// (`stack`, outermost first): only the innermost may be popped, and the
    /// record then acts as the user from before its push.
    ///
    /// # Errors
    /// [`Error::SessionEnded`]; [`Error::ScopeNotFound`] when `scope` is not
    /// open in this session; [`Error::ScopeNotInnermost`] when it is open
    /// but another was pushed after it.
    pub fn pop_user_context(
        &self,
        stack: &[Scope],
        scope: ScopeId,
        now: Timestamp,
    ) -> Result<(PoppedScope, Self)> {
        self.ensure_not_ended()?;
        let not_found = || Error::ScopeNotFound {
            session_id: self.id,
            scope_id: scope,
        };
        let innermost = stack.iter().max_by_key(|s| s.depth).ok_or_else(not_found)?;
        if innermost.id != scope {
            if stack.iter().any(|s| s.id == scope) {
                return Err(Error::ScopeNotInnermost {
                    session_id: self.id,
                    scope_id: scope,
                    innermost: innermost.id,
                });
            }
            return Err(not_found());
        }
        let depth = innermost.depth - 1;
        let session = Self {
            effective_user: innermost.previous_user.clone(),
            user_context_depth: depth,
            ..self.touched(now)
        };
        let popped = PoppedScope {
            user: innermost.previous_user.clone(),
            depth,
        };
        Ok((popped, session))
    }
}
