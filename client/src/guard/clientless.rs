//! [`ClientlessSession`]: a clientless session that is closed when it goes
//! out of scope.

use std::time::Duration;

use uuid::Uuid;

use crate::client::Client;
use crate::error::Result;
use crate::ids::SessionId;
use crate::module::ModuleRun;
use crate::session::SessionInfo;

use super::UserContextGuard;

/// A clientless session opened by [`Client::clientless_session`] (the seed's
/// `with utilities.ClientlessSession('R41') as session:`).
///
/// End it with [`ClientlessSession::close`], which waits for running modules
/// to conclude and returns the final record. If the guard is dropped
/// without `close` (an early return, `?`, a panic), the session is closed
/// from a task on the current tokio runtime; where there is none, a warning
/// is logged and the server's idle timeout ends the session. Drop never
/// blocks and never panics.
///
/// Note that a task spawned while a runtime shuts down may never run, so
/// code that ends with its runtime (a `#[tokio::test]`, `main`) should
/// `close` explicitly.
///
/// ```no_run
/// # async fn run() -> sessiond_client::Result<()> {
/// use std::time::Duration;
/// use sessiond_client::Client;
///
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let session = client.clientless_session("R41").await?;
/// session.open_module("100000").await?;
/// let data = session
///     .get_return_value("100000", Duration::from_secs(5))
///     .await?;
/// let ended = session.close().await?;
/// println!("{data} from session {}, ended {:?}", ended.session_id, ended.end_time);
/// # Ok(()) }
/// ```
#[must_use = "the session stays open until `close().await` (or a background close when dropped)"]
#[derive(Debug)]
pub struct ClientlessSession {
    /// The client it was opened with, for its calls and its close.
    client: Client,
    /// The record as it was opened.
    info: SessionInfo,
    /// Whether dropping the guard still has to close the session.
    armed: bool,
}

impl ClientlessSession {
    pub(crate) fn new(client: Client, info: SessionInfo) -> Self {
        Self {
            client,
            info,
            armed: true,
        }
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.info.session_id
    }

    /// The session's UUID.
    #[must_use]
    pub fn uuid(&self) -> Uuid {
        self.info.session_uuid
    }

    /// The user the session was opened for.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.info.user
    }

    /// The session's record as it was when opened (for the current one:
    /// `client().get_session_info(id)`).
    #[must_use]
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The client the session was opened with.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a run of `module_id` in this session, without parameters (the
    /// seed's `session.open_module(module_id='100000')`).
    ///
    /// # Errors
    /// As [`Client::open_module`].
    pub async fn open_module(&self, module_id: &str) -> Result<ModuleRun> {
        self.open_module_with(module_id, serde_json::Value::Null)
            .await
    }

    /// Starts a run of `module_id` in this session with `parameters` (a
    /// JSON object).
    ///
    /// # Errors
    /// As [`Client::open_module`].
    pub async fn open_module_with(
        &self,
        module_id: &str,
        parameters: serde_json::Value,
    ) -> Result<ModuleRun> {
        self.client
            .open_module(self.id(), module_id, parameters)
            .await
    }

    /// The return value of the latest run of `module_id`, waiting up to
    /// `timeout` (the seed's `session.get_return_value(module_id='100000',
    /// timeout=5)`).
    ///
    /// # Errors
    /// As [`Client::get_return_value`]: notably
    /// [`Error::ModuleFailed`](crate::Error::ModuleFailed) and
    /// [`Error::ModuleStillRunning`](crate::Error::ModuleStillRunning).
    pub async fn get_return_value(
        &self,
        module_id: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        self.client
            .get_return_value(self.id(), module_id, timeout)
            .await
    }

    /// Pushes a user-context scope in this session (the seed's
    /// `UserContext('R41')` inside a clientless session).
    ///
    /// # Errors
    /// As [`Client::user_context`].
    pub async fn user_context(&self, user: impl Into<String>) -> Result<UserContextGuard> {
        self.client.user_context(self.id(), user).await
    }

    /// Closes the session, waiting for running modules to conclude within
    /// the server's default grace, and returns its ended record.
    ///
    /// # Errors
    /// As [`Client::close_clientless_session`]. When the outcome is unknown
    /// (a transport failure, a passed deadline), the guard is dropped armed
    /// and closes the session in the background; if the future is cancelled,
    /// likewise.
    pub async fn close(self) -> Result<SessionInfo> {
        self.close_inner(None).await
    }

    /// Closes the session, giving running modules `grace` to conclude before
    /// they are cancelled, and returns its ended record.
    ///
    /// # Errors
    /// As [`ClientlessSession::close`]; also
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a grace
    /// over one hour.
    pub async fn close_with_grace(self, grace: Duration) -> Result<SessionInfo> {
        self.close_inner(Some(grace)).await
    }

    async fn close_inner(mut self, grace: Option<Duration>) -> Result<SessionInfo> {
        let result = self.client.close_clientless_session(self.id(), grace).await;
        if result
            .as_ref()
            .map_or_else(|e| !e.outcome_unknown(), |_| true)
        {
            self.armed = false;
        }
        result
    }
}

impl Drop for ClientlessSession {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let session_id = self.id();
        let client = self.client.clone();
        let scheduled = self.client.cleanup.schedule(session_id, async move {
            match client.close_clientless(session_id, None, false).await {
                Ok(_) => tracing::debug!(
                    %session_id,
                    "closed a clientless session whose guard was dropped"
                ),
                Err(error) => tracing::warn!(
                    %session_id,
                    %error,
                    "could not close a clientless session whose guard was dropped; \
                     the server's idle timeout will end it"
                ),
            }
        });
        if !scheduled {
            tracing::warn!(
                %session_id,
                "clientless session guard dropped outside a tokio runtime: the session stays \
                 open until the server's idle timeout ends it; call `close().await` instead"
            );
        }
    }
}
