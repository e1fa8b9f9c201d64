//! Scoped guards: [`ClientlessSession`] closes the session it opened,
//! [`UserContextGuard`] pops the scope it pushed.
//!
//! Each has an explicit async end (`close`, `restore`) that disarms it and
//! reports the outcome. A guard dropped while armed never blocks and never
//! panics: it schedules its end on the current tokio runtime ([`cleanup`]),
//! or logs a warning when there is none (the server's idle timeout is then
//! the backstop for a session; a scope lives until its session ends).

pub(crate) mod cleanup;
mod clientless;
mod user_context;

pub use clientless::ClientlessSession;
pub use user_context::UserContextGuard;
