//! Who made a change, and through which call: the [`Cause`] every event
//! records.
//!
//! The layer in front of the services ([`crate::auth::layer`]) finds out the
//! caller, its address, its request id and trace context, and runs the
//! request inside [`Cause::scope`]; a store write reads it back with
//! [`Cause::current`] when it starts (in the caller's task), so that no
//! operation in between passes it along. What the server does by itself —
//! expiry, shutdown, recovery, a run concluding — runs outside any call and
//! is caused by [`Cause::system`]. Work a call hands to another task keeps
//! its cause through [`crate::task::run_to_completion`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::principal::{Method, Principal};

/// The subject of what the server does by itself.
pub const SYSTEM_SUBJECT: &str = "system:sessiond";

/// The header a caller names its request with.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The W3C trace context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The longest request id or `traceparent` kept; longer ones are cut.
const MAX_HEADER_CHARS: usize = 128;

tokio::task_local! {
    static CURRENT: Arc<Cause>;
}

/// Who made a change, and through which call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// The caller; `None` for the server itself.
    pub principal: Option<Principal>,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The request's id: the caller's `x-request-id`, else one made up.
    pub request_id: RequestId,
    /// The call's W3C `traceparent`, when it had one.
    pub traceparent: Option<String>,
}

/// A request's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestId {
    /// None: the server itself.
    None,
    /// The caller's `x-request-id`.
    Given(String),
    /// Made up by this server: a per-process random prefix and a counter.
    Local(u64),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Given(id) => f.write_str(id),
            Self::Local(n) => write!(f, "{:08x}-{n:x}", process_prefix()),
        }
    }
}

/// A random number fixed for this process, so that made-up request ids of
/// different replicas and runs differ.
fn process_prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| uuid::Uuid::now_v7().as_u128() as u32)
}

impl Cause {
    /// The server itself.
    #[must_use]
    pub fn system() -> Arc<Self> {
        static SYSTEM: OnceLock<Arc<Cause>> = OnceLock::new();
        Arc::clone(SYSTEM.get_or_init(|| {
            Arc::new(Cause {
                principal: None,
                peer: None,
                request_id: RequestId::None,
                traceparent: None,
            })
        }))
    }

    /// The cause of a call by `principal` from `peer` with `headers`.
    #[must_use]
    pub fn of_call(
        principal: &Principal,
        peer: Option<SocketAddr>,
        headers: &http::HeaderMap,
    ) -> Arc<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .map(|value| value.chars().take(MAX_HEADER_CHARS).collect::<String>())
        };
        let request_id = match header(REQUEST_ID_HEADER) {
            Some(id) => RequestId::Given(id),
            None => RequestId::Local(COUNTER.fetch_add(1, Ordering::Relaxed)),
        };
        Arc::new(Self {
            principal: Some(principal.clone()),
            peer,
            request_id,
            traceparent: header(TRACEPARENT_HEADER),
        })
    }

    /// Who: the authenticated subject, `anonymous`, or [`SYSTEM_SUBJECT`].
    #[must_use]
    pub fn subject(&self) -> &str {
        self.principal
            .as_ref()
            .map_or(SYSTEM_SUBJECT, Principal::subject)
    }

    /// How the caller authenticated; `None` for an anonymous caller and for
    /// the server itself.
    #[must_use]
    pub fn method(&self) -> Option<Method> {
        self.principal
            .as_ref()
            .and_then(Principal::identity)
            .map(|identity| identity.method)
    }

    /// Whether the caller is anonymous (a server without authentication).
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.principal == Some(Principal::Anonymous)
    }

    /// The cause of the work running now: the call's, inside
    /// [`Cause::scope`], else [`Cause::system`].
    #[must_use]
    pub fn current() -> Arc<Self> {
        CURRENT
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Self::system())
    }

    /// Runs `work` with `cause` as [`Cause::current`].
    pub fn scope<F: Future>(cause: Arc<Self>, work: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(cause, work)
    }

    /// Calls `work` with `cause` as [`Cause::current`], outside any task
    /// too (the SQLite writer's thread logs what it committed so).
    pub fn sync_scope<R>(cause: Arc<Self>, work: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(cause, work)
    }

    /// The id of the request the work running now serves; `None` for the
    /// server's own work. (Each log line names it: [`crate::telemetry`].)
    #[must_use]
    pub fn current_request_id() -> Option<String> {
        CURRENT
            .try_with(|cause| match &cause.request_id {
                RequestId::None => None,
                id => Some(id.to_string()),
            })
            .ok()
            .flatten()
    }
}
