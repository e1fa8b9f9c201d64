//! What every commit tells the operator: a log line per session started
//! and ended (at `info`; the other changes at `debug`), the ended sessions'
//! counter, and the store's commit metrics. It sees each change once, from
//! whichever path made it — a call, expiry, shutdown, recovery, a takeover
//! — after its transaction committed. Each line names the request that
//! caused the change ([`Cause`]).

use std::sync::Arc;
use std::time::Duration;

use crate::events::Cause;
use crate::metrics::Metrics;
use crate::model::{Change, EventKind};
use crate::store::names::{kind_name, reason_name};
use crate::store::{CommitObserver, Pending};

/// The commit observer of [`crate::store::Commits`].
#[derive(Debug)]
pub struct ChangeLog {
    metrics: Arc<Metrics>,
}

impl ChangeLog {
    /// An observer counting in `metrics`.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl CommitObserver for ChangeLog {
    fn committed(&self, changes: &[Pending], writes: usize, took: Duration) {
        self.metrics.committed(writes, took);
        for (change, cause) in changes {
            if change.kind == EventKind::SessionEnded
                && let Some(reason) = change.end_reason
            {
                self.metrics.session_ended(reason);
            }
            Cause::sync_scope(Arc::clone(cause), || log(change, cause));
        }
    }
}

/// The line of one change.
fn log(change: &Change, cause: &Cause) {
    let Some(session) = &change.session else {
        // Refusals: logged by the layer that refused them.
        return;
    };
    let caller = cause.subject();
    match change.kind {
        EventKind::SessionStarted | EventKind::ClientlessSessionOpened => {
            let kind = if change.kind == EventKind::SessionStarted {
                crate::model::SessionKind::Interactive
            } else {
                crate::model::SessionKind::Clientless
            };
            tracing::info!(
                session_id = session.id.get(),
                user = session.user.as_str(),
                kind = kind_name(kind),
                caller,
                "session started"
            );
        }
        EventKind::SessionEnded => tracing::info!(
            session_id = session.id.get(),
            user = session.user.as_str(),
            reason = change.end_reason.map(reason_name),
            caller,
            "session ended"
        ),
        EventKind::SessionClosing => tracing::debug!(
            session_id = session.id.get(),
            reason = change.end_reason.map(reason_name),
            caller,
            "session closing"
        ),
        EventKind::UserContextSet | EventKind::UserContextPushed | EventKind::UserContextPopped => {
            tracing::debug!(
                session_id = session.id.get(),
                effective_user = session.effective_user.as_str(),
                scope_id = change.scope_id.map(|scope| scope.get()),
                caller,
                change = match change.kind {
                    EventKind::UserContextSet => "set",
                    EventKind::UserContextPushed => "pushed",
                    _ => "popped",
                },
                "user context changed"
            );
        }
        EventKind::RunStarted | EventKind::RunConcluded => {
            // The runner logs a run's conclusion, with its message and
            // duration; the start is a debug line.
            if change.kind == EventKind::RunStarted
                && let Some((run_id, module_id)) = &change.run
            {
                tracing::debug!(
                    session_id = session.id.get(),
                    run_id = run_id.get(),
                    module_id = module_id.as_str(),
                    acting_user = session.effective_user.as_str(),
                    caller,
                    "module run started"
                );
            }
        }
        EventKind::CallRefused => {}
    }
}
