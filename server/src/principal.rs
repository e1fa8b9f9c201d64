//! The caller of an operation.
//!
//! Every domain operation receives the calling [`Principal`], so that
//! authentication, impersonation rules and an audit trail attach here
//! without reshaping the code. Until authentication arrives, every call is
//! [`Principal::Anonymous`]; the API's interceptor ([`identify`]) puts the
//! principal into each request's extensions.

use std::fmt;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A caller that did not authenticate.
    Anonymous,
    /// A caller authenticated as this subject.
    Authenticated {
        /// The authenticated identity (a user or service name).
        subject: String,
    },
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Authenticated { subject } => f.write_str(subject),
        }
    }
}

/// The interceptor that identifies the caller of every request and stores
/// the [`Principal`] in its extensions.
///
/// # Errors
/// Never yet; it will refuse bad credentials once authentication exists.
#[allow(clippy::result_large_err, clippy::unnecessary_wraps)]
pub fn identify(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    request.extensions_mut().insert(Principal::Anonymous);
    Ok(request)
}

/// The principal [`identify`] stored in a request.
#[must_use]
pub fn of<T>(request: &tonic::Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous)
}
