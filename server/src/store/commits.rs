//! What happens after a write commits, beside answering it: the feed of
//! watches is woken (only while one listens), and an observer — the
//! server's logs and metrics ([`crate::telemetry`]) — is told what was
//! committed, by how large a batch, in how long.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::ledger::Pending;

/// Told about every transaction a store of this process commits.
pub trait CommitObserver: Send + Sync + fmt::Debug {
    /// A transaction of `writes` writes (several when they were batched)
    /// committed `changes`, `took` after it began.
    fn committed(&self, changes: &[Pending], writes: usize, took: Duration);
}

/// A store's commits, as this process sees them.
#[derive(Debug, Default)]
pub struct Commits {
    notify: tokio::sync::Notify,
    listening: AtomicBool,
    observer: OnceLock<Arc<dyn CommitObserver>>,
}

impl Commits {
    /// A transaction committed (see [`CommitObserver::committed`]): tells
    /// the observer, and wakes the listener when it recorded events and one
    /// listens — so that a server nobody watches pays no wake-up of another
    /// thread per commit.
    pub fn committed(&self, changes: &[Pending], writes: usize, took: Duration) {
        self.wake(changes);
        self.report(changes, writes, took);
    }

    /// The first half of [`Commits::committed`], which a store calls before
    /// it answers the writes: wakes the listener when `changes` has events
    /// and one listens (so that a watch has what its caller was told of).
    pub fn wake(&self, changes: &[Pending]) {
        if !changes.is_empty() && self.listening.load(Ordering::Acquire) {
            self.notify.notify_one();
        }
    }

    /// The second half of [`Commits::committed`], which a store may call
    /// after it answered the writes: tells the observer.
    pub fn report(&self, changes: &[Pending], writes: usize, took: Duration) {
        if let Some(observer) = self.observer.get() {
            observer.committed(changes, writes, took);
        }
    }

    /// Tells `observer` about every commit from now on. Only the first
    /// observer counts.
    pub fn observe(&self, observer: Arc<dyn CommitObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Starts or stops listening.
    pub fn listen(&self, on: bool) {
        self.listening.store(on, Ordering::Release);
    }

    /// Completes after the next commit that recorded events (or at once
    /// after one that came while listening and nobody waited).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}
