//! User contexts: the effective user of a session and the scopes pushed
//! onto it.

use crate::ids::ScopeId;

/// A session's user context (the contract's `GetUserContextResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserContext {
    /// The user that work in the session currently acts as.
    pub user: String,
    /// The user the session belongs to.
    pub session_user: String,
    /// How many scopes are pushed and not yet popped.
    pub depth: u32,
}

/// A scope opened by `PushUserContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushedScope {
    /// The scope's id, for the matching pop.
    pub scope_id: ScopeId,
    /// The user context before the push: what the pop restores.
    pub previous_user: String,
    /// The number of open scopes, this one included.
    pub depth: u32,
}

/// The result of popping a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoppedScope {
    /// The restored user context (the value from before the scope's push).
    pub user: String,
    /// The number of scopes still open.
    pub depth: u32,
}
