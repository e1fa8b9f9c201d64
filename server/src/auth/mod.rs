//! Authentication: who is calling, proved by a TLS client certificate
//! ([`tls`]), a bearer JWT ([`jwt`]), a static bearer token ([`tokens`]),
//! or a module run's own token ([`runs`]); the layer that applies them to
//! every call ([`layer`]); and how replicas pass a caller on
//! ([`forwarded`]). What an authenticated caller may do is
//! [`crate::access`]'s.

pub mod forwarded;
pub mod jwt;
pub mod layer;
pub mod runs;
pub mod tls;
pub mod tokens;

/// Who a credential names: what an authentication method found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The caller's name.
    pub subject: String,
    /// Its groups.
    pub groups: Vec<String>,
}

/// Why a credential was refused (the message goes to the caller in an
/// UNAUTHENTICATED status: it says what is wrong, never echoes the secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);
