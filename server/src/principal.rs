//! The caller of an operation.
//!
//! Every operation receives the calling [`Principal`]; the access rules
//! ([`crate::access`]) decide from it what the call may do, and logs name
//! it. Each API handler asks [`of`] who sent its request: the
//! authenticating layer ([`crate::auth`]) stores the caller in the request's
//! extensions, and a server without authentication stores nothing, so that
//! every call is [`Principal::Anonymous`]. It is a plain function rather
//! than a tonic interceptor because an interceptor rebuilds every request
//! (3–4 % of the server's throughput on `GetSessionUser`, measured with
//! `sessiond-bench`).

use std::fmt;
use std::sync::Arc;

use crate::model::SessionId;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A caller of a server that runs without authentication (development
    /// on loopback): it may do everything. A server with authentication
    /// never lets an anonymous call through to an operation.
    Anonymous,
    /// A caller that proved who it is.
    Authenticated(Arc<Identity>),
}

/// An authenticated caller: who, in which groups, proved how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated name (a user or a service).
    pub subject: String,
    /// The groups its credential states.
    pub groups: Vec<String>,
    /// How it proved it.
    pub method: Method,
    /// For a module run's credential, the one session it may act on.
    pub confined_to: Option<SessionId>,
}

/// How a caller proved who it is (the contract's `AuthenticationMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A TLS client certificate verified against the client CA.
    TlsClientCertificate,
    /// A bearer JWT from the configured issuer.
    Jwt,
    /// A bearer token from the tokens file.
    StaticToken,
    /// A module run's own credential (`SESSIOND_TOKEN`).
    ModuleRun,
}

impl Method {
    /// The method as the contract and the logs spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsClientCertificate => "tls_client_certificate",
            Self::Jwt => "jwt",
            Self::StaticToken => "static_token",
            Self::ModuleRun => "module_run",
        }
    }
}

impl Principal {
    /// The subject: the authenticated name, or `anonymous`.
    #[must_use]
    pub fn subject(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Authenticated(identity) => &identity.subject,
        }
    }

    /// The identity, when the caller authenticated.
    #[must_use]
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Self::Anonymous => None,
            Self::Authenticated(identity) => Some(identity),
        }
    }
}

impl From<Identity> for Principal {
    fn from(identity: Identity) -> Self {
        Self::Authenticated(Arc::new(identity))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subject())
    }
}

/// Who sent `request`: the principal the authenticating layer stored in its
/// extensions, else [`Principal::Anonymous`].
#[must_use]
pub fn of<T>(request: &tonic::Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous)
}
