//! The gRPC face of sessiond: tonic service implementations that validate
//! each request, call the domain, and map its result or error to the
//! contract. Nothing else happens here.

mod access_service;
mod audit_service;
mod convert;
mod forward;
mod malformed;
mod session_service;
mod status;
mod user_context_service;

pub use access_service::AccessApi;
pub use audit_service::AuditApi;
pub use forward::{FORWARDED_BY, Router};
pub use malformed::{MalformedRequestLayer, MalformedRequests};
pub use session_service::{SessionApi, WatchStream};
pub use user_context_service::UserContextApi;
