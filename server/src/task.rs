//! Running work that must finish once started.
//!
//! tonic drops a handler's future at its next `.await` when the caller's
//! deadline passes or it disconnects. A write that has started (ending a
//! session, pushing a scope) must not be cut in half by that, so the domain
//! runs each write in its own task and only *waits* for it in the handler.

use std::future::Future;

use tracing::Instrument;

use crate::events::Cause;
use crate::model::{Error, Result};

/// Runs `work` to completion in its own task, even if the caller stops
/// waiting, and returns its result. The work keeps the caller's
/// [`Cause`], so that the events it records name the caller.
///
/// # Errors
/// The error of `work`, or [`Error::Internal`] if the task panicked.
pub async fn run_to_completion<T, F>(work: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    // The caller's span too (a call's trace, when traces are exported).
    tokio::spawn(Cause::scope(Cause::current(), work.in_current_span()))
        .await
        .map_err(|e| Error::Internal(format!("a write task failed: {e}")))?
}
