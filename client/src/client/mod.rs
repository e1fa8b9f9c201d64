//! [`Client`]: one shared connection, the four services, per-call
//! deadlines and the retry loop every call goes through. The calls
//! themselves are in [`sessions`], [`modules`], [`user_contexts`],
//! [`access`], [`audit`] and, for the one stream, [`watch`].

mod access;
mod audit;
mod modules;
mod sessions;
mod user_contexts;
mod watch;

pub use audit::EventStream;
pub use watch::WatchStream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sessiond_proto::v1::access_service_client::AccessServiceClient;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::auth::BearerToken;
use crate::builder::{ClientBuilder, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT};
use crate::error::{Error, ErrorContext, Result};
use crate::guard::cleanup::Cleanup;
use crate::retry::{CallKind, RetryPolicy};

/// The channel every call goes over: the connection, behind the token
/// interceptor (so every attempt of every call carries the token).
type Transport = InterceptedService<Channel, BearerToken>;

/// A sessiond client: methods for every RPC of `SessionService`,
/// `UserContextService`, `AccessService` and `AuditService`, on domain
/// types, and the scoped guards
/// [`ClientlessSession`](crate::ClientlessSession) and
/// [`UserContextGuard`](crate::UserContextGuard).
///
/// Cloning is cheap; clones share one connection (HTTP/2 multiplexes their
/// calls) and the background clean-up of dropped guards. Methods take
/// `&self` and may be called concurrently.
///
/// Calls issued through a client after one of its guards was dropped wait
/// until that guard's clean-up (a pop, a close) has been done, so they see
/// the session as the guard left it.
///
/// ```no_run
/// # async fn run() -> sessiond_client::Result<()> {
/// use sessiond_client::{Client, SessionId};
///
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let user = client.get_session_user(SessionId::new(42)).await?;
/// println!("session 42 belongs to {user}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    /// `sessiond.v1.SessionService`.
    sessions: SessionServiceClient<Transport>,
    /// `sessiond.v1.UserContextService`.
    contexts: UserContextServiceClient<Transport>,
    /// `sessiond.v1.AccessService`.
    access: AccessServiceClient<Transport>,
    /// `sessiond.v1.AuditService`.
    audit: AuditServiceClient<Transport>,
    /// The deadline of each call; `None`: none.
    timeout: Option<Duration>,
    /// How retryable calls are retried.
    retry: RetryPolicy,
    /// The clean-up work of dropped guards, shared by all clones.
    pub(crate) cleanup: Arc<Cleanup>,
}

impl Client {
    /// Connects to `endpoint` with the default settings (see
    /// [`ClientBuilder`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed endpoint; [`Error::Connect`] when the
    /// server cannot be reached.
    pub async fn connect(endpoint: impl AsRef<str>) -> Result<Self> {
        ClientBuilder::new().connect(endpoint).await
    }

    /// A client on an existing channel, with the default settings.
    #[must_use]
    pub fn from_channel(channel: Channel) -> Self {
        Self::assemble(
            channel,
            BearerToken::default(),
            Some(DEFAULT_TIMEOUT),
            RetryPolicy::default(),
            DEFAULT_MAX_RESPONSE_BYTES,
        )
    }

    /// Settings for a client: deadline, retries, token, TLS.
    #[must_use]
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A clone of this client (same connection) whose calls have `timeout`
    /// as their deadline.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// A clone of this client (same connection) whose calls have no
    /// deadline.
    #[must_use]
    pub fn without_timeout(&self) -> Self {
        Self {
            timeout: None,
            ..self.clone()
        }
    }

    /// The deadline of each call, if any.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn assemble(
        channel: Channel,
        auth: BearerToken,
        timeout: Option<Duration>,
        retry: RetryPolicy,
        max_response_bytes: usize,
    ) -> Self {
        let transport = InterceptedService::new(channel, auth);
        Self {
            sessions: SessionServiceClient::new(transport.clone())
                .max_decoding_message_size(max_response_bytes),
            contexts: UserContextServiceClient::new(transport.clone())
                .max_decoding_message_size(max_response_bytes),
            access: AccessServiceClient::new(transport.clone())
                .max_decoding_message_size(max_response_bytes),
            audit: AuditServiceClient::new(transport).max_decoding_message_size(max_response_bytes),
            timeout,
            retry,
            cleanup: Arc::new(Cleanup::default()),
        }
    }

    /// Sends one unary call: waits for the clean-up of dropped guards of the
    /// call's session (unless `call.settle` is off), sets the deadline,
    /// retries per the policy, and decodes a failure.
    async fn unary<Req, Resp, Fut>(
        &self,
        call: Call<'_>,
        request: Req,
        mut send: impl FnMut(tonic::Request<Req>) -> Fut,
    ) -> Result<Resp>
    where
        Req: Clone,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        if call.settle
            && let Some(session_id) = call.context.session_id
        {
            self.cleanup.settle(session_id).await;
        }
        let deadline = self
            .timeout
            .map(|timeout| timeout.saturating_add(call.extra_time));
        let mut attempt = 1;
        loop {
            let mut message = tonic::Request::new(request.clone());
            if let Some(deadline) = deadline {
                message.set_timeout(deadline);
            }
            match send(message).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status)
                    if attempt < self.retry.max_attempts && call.kind.may_retry(&status) =>
                {
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(
                        rpc = call.rpc,
                        attempt,
                        code = ?status.code(),
                        message = status.message(),
                        ?wait,
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(status) => return Err(Error::from_status(status, &call.context)),
            }
        }
    }

    /// The `SessionService` client, for one call.
    fn sessions(&self) -> SessionServiceClient<Transport> {
        self.sessions.clone()
    }

    /// The `UserContextService` client, for one call.
    fn contexts(&self) -> UserContextServiceClient<Transport> {
        self.contexts.clone()
    }

    /// The `AccessService` client, for one call.
    fn access(&self) -> AccessServiceClient<Transport> {
        self.access.clone()
    }

    /// The `AuditService` client, for one call.
    fn audit(&self) -> AuditServiceClient<Transport> {
        self.audit.clone()
    }
}

/// How one call is made.
struct Call<'a> {
    /// The RPC's name, for logs.
    rpc: &'static str,
    /// How it may be retried.
    kind: CallKind,
    /// What it is about, to fill in errors.
    context: ErrorContext<'a>,
    /// Time on top of the client's deadline, for calls that wait on purpose.
    extra_time: Duration,
    /// Whether to wait for the clean-up of dropped guards of the session
    /// first (off for the clean-up itself).
    settle: bool,
}

impl<'a> Call<'a> {
    fn new(rpc: &'static str, kind: CallKind, context: ErrorContext<'a>) -> Self {
        Self {
            rpc,
            kind,
            context,
            extra_time: Duration::ZERO,
            settle: true,
        }
    }

    fn extra_time(mut self, extra: Duration) -> Self {
        self.extra_time = extra;
        self
    }

    fn settle(mut self, settle: bool) -> Self {
        self.settle = settle;
        self
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}
