//! [`UserContextGuard`]: a user-context scope that is popped when it goes
//! out of scope.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::ids::{ScopeId, SessionId};
use crate::user_context::{PoppedScope, PushedScope};

/// A user-context scope pushed by [`Client::user_context`] (the seed's
/// `with utilities.UserContext('R41'):`): while it lives, work in the
/// session acts as its user.
///
/// End it with [`UserContextGuard::restore`], which pops exactly this scope
/// and returns the restored user. If the guard is dropped without
/// `restore`, the scope is popped from a task on the current tokio runtime
/// (after any scope dropped before it in the same session), or a warning is
/// logged where there is no runtime. Drop never blocks and never panics.
/// Nested guards must end innermost first — which dropping them does — or
/// the server refuses with [`Error::ScopeNotInnermost`].
///
/// ```no_run
/// # async fn run(session_id: sessiond_client::SessionId) -> sessiond_client::Result<()> {
/// use sessiond_client::Client;
///
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let as_r41 = client.user_context(session_id, "R41").await?;
/// // ... work here is owned by R41 ...
/// let restored = as_r41.restore().await?;
/// println!("acting as {} again", restored.user);
/// # Ok(()) }
/// ```
#[must_use = "the scope stays pushed until `restore().await` (or a background pop when dropped)"]
#[derive(Debug)]
pub struct UserContextGuard {
    /// The client it was pushed with, for its pop.
    client: Client,
    /// The session whose user context it changed.
    session_id: SessionId,
    /// The user it acts as.
    user: String,
    /// The pushed scope: its id, and what popping it restores.
    scope: PushedScope,
    /// Whether dropping the guard still has to pop the scope.
    armed: bool,
}

impl UserContextGuard {
    pub(crate) fn new(
        client: Client,
        session_id: SessionId,
        user: String,
        scope: PushedScope,
    ) -> Self {
        Self {
            client,
            session_id,
            user,
            scope,
            armed: true,
        }
    }

    /// The session whose user context this scope changed.
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The scope's id.
    #[must_use]
    pub fn scope_id(&self) -> ScopeId {
        self.scope.scope_id
    }

    /// The user that work in the session acts as inside this scope.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user context before the push: what ending this scope restores.
    #[must_use]
    pub fn previous_user(&self) -> &str {
        &self.scope.previous_user
    }

    /// The number of open scopes, this one included, when it was pushed.
    #[must_use]
    pub fn depth(&self) -> u32 {
        self.scope.depth
    }

    /// Pops this scope and returns the restored user context.
    ///
    /// # Errors
    /// [`Error::ScopeNotInnermost`] while a scope pushed after this one is
    /// still open (nothing is changed); [`Error::ScopeNotFound`];
    /// [`Error::SessionEnded`] (the scope ended with its session). When the
    /// outcome is unknown (a transport failure, a passed deadline), the
    /// guard is dropped armed and pops the scope in the background; if the
    /// future is cancelled, likewise.
    pub async fn restore(mut self) -> Result<PoppedScope> {
        let result = self
            .client
            .pop_user_context(self.session_id, self.scope.scope_id)
            .await;
        if result
            .as_ref()
            .map_or_else(|e| !e.outcome_unknown(), |_| true)
        {
            self.armed = false;
        }
        result
    }
}

impl Drop for UserContextGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let session_id = self.session_id;
        let scope_id = self.scope.scope_id;
        let client = self.client.clone();
        let scheduled = self.client.cleanup.schedule(session_id, async move {
            match client.pop(session_id, scope_id, false).await {
                Ok(popped) => tracing::debug!(
                    %session_id,
                    %scope_id,
                    user = %popped.user,
                    "restored the user context of a dropped guard"
                ),
                // The scope ended with its session: nothing left to restore.
                Err(Error::SessionEnded { .. }) => tracing::debug!(
                    %session_id,
                    %scope_id,
                    "the session of a dropped user-context guard has ended"
                ),
                Err(error) => tracing::warn!(
                    %session_id,
                    %scope_id,
                    %error,
                    "could not restore the user context of a dropped guard"
                ),
            }
        });
        if !scheduled {
            tracing::warn!(
                %session_id,
                %scope_id,
                "user-context guard dropped outside a tokio runtime: the scope stays pushed; \
                 call `restore().await` instead"
            );
        }
    }
}
