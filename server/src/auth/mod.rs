//! How callers prove who they are: static bearer tokens, bearer JWTs and TLS client certificates.

pub mod jwt;
pub mod tls;
pub mod tokens;

/// Who a credential names: what an authentication method found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The authenticated identity (a user or service name).
    pub subject: String,
    /// The groups the credential puts its subject in.
    pub groups: Vec<String>,
}

/// Why a credential was refused (the message goes to the caller in an
/// UNAUTHENTICATED status: say what is wrong, never echo the secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);
