//! The background work of dropped guards, in order per session.
//!
//! A dropped guard hands its end (a pop, a close) to [`Cleanup::schedule`],
//! which spawns it on the current tokio runtime. Jobs of one session run one
//! after the other in the order they were scheduled — guards are dropped
//! innermost first, so nested scopes are popped innermost first, and a
//! session is closed after the scopes dropped before it. Jobs of different
//! sessions run concurrently. Every call a [`Client`](crate::Client) makes
//! about a session first waits ([`Cleanup::settle`]) until that session's
//! scheduled jobs are done, so it sees what the dropped guards left.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::ids::SessionId;

/// The pending clean-up jobs of one client (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    /// Per session, the completion signal of its most recently scheduled
    /// job (`true` once done; a dropped sender means the job will never run,
    /// which counts as done too).
    latest: Mutex<HashMap<SessionId, watch::Receiver<bool>>>,
}

impl Cleanup {
    /// Spawns `job` on the current tokio runtime, to run after the jobs
    /// already scheduled for `session_id`. Returns `false`, dropping `job`,
    /// when there is no current runtime. Never blocks, never panics.
    pub(crate) fn schedule(
        self: &Arc<Self>,
        session_id: SessionId,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let (done, done_rx) = watch::channel(false);
        let previous = self.lock().insert(session_id, done_rx.clone());
        let this = Arc::clone(self);
        drop(runtime.spawn(async move {
            if let Some(previous) = previous {
                wait_done(previous).await;
            }
            job.await;
            let _ = done.send(true);
            this.forget(session_id, &done_rx);
        }));
        true
    }

    /// Waits until every job scheduled so far for `session_id` is done.
    pub(crate) async fn settle(&self, session_id: SessionId) {
        let latest = self.lock().get(&session_id).cloned();
        if let Some(latest) = latest {
            wait_done(latest.clone()).await;
            self.forget(session_id, &latest);
        }
    }

    /// Drops the entry of `session_id` if `done` is still its latest job.
    fn forget(&self, session_id: SessionId, done: &watch::Receiver<bool>) {
        let mut latest = self.lock();
        if latest
            .get(&session_id)
            .is_some_and(|current| current.same_channel(done))
        {
            latest.remove(&session_id);
        }
    }

    /// The map, even if a panic elsewhere poisoned the lock (nothing here
    /// can leave it inconsistent).
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, watch::Receiver<bool>>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits until a job signals completion or can no longer run.
async fn wait_done(mut done: watch::Receiver<bool>) {
    let _ = done.wait_for(|done| *done).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_of_one_session_run_in_order_and_settle_waits_for_them() {
        let cleanup = Arc::new(Cleanup::default());
        let log = Arc::new(StdMutex::new(Vec::new()));
        let session = SessionId::new(1);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first_log = Arc::clone(&log);
        assert!(cleanup.schedule(session, async move {
            let _ = released.await;
            first_log.lock().unwrap().push("first");
        }));
        let second_log = Arc::clone(&log);
        assert!(cleanup.schedule(session, async move {
            second_log.lock().unwrap().push("second");
        }));
        // Another session's job is not held up by the blocked first job.
        let other_log = Arc::clone(&log);
        assert!(cleanup.schedule(SessionId::new(2), async move {
            other_log.lock().unwrap().push("other");
        }));
        cleanup.settle(SessionId::new(2)).await;
        assert_eq!(*log.lock().unwrap(), ["other"]);

        release.send(()).unwrap();
        cleanup.settle(session).await;
        assert_eq!(*log.lock().unwrap(), ["other", "first", "second"]);
        assert!(cleanup.lock().is_empty(), "finished jobs are forgotten");
    }

    #[test]
    fn without_a_runtime_nothing_is_scheduled() {
        let cleanup = Arc::new(Cleanup::default());
        assert!(!cleanup.schedule(SessionId::new(1), async {}));
        assert!(cleanup.lock().is_empty());
    }

    #[test]
    fn a_job_whose_runtime_went_away_does_not_hold_up_settle() {
        let cleanup = Arc::new(Cleanup::default());
        let session = SessionId::new(1);
        {
            let gone = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // Scheduled but never polled: the runtime is dropped first.
            gone.block_on(async {
                assert!(cleanup.schedule(session, std::future::pending()));
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), cleanup.settle(session))
                .await
                .expect("settle returns once the job can no longer run");
        });
    }
}
