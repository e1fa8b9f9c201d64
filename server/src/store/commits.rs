//! What happens after a write commits, beside answering it: the feed of
//! watches is woken (only while one listens), and an observer — the
//! server's logs and metrics ([`crate::telemetry`]) — is told what was
//! committed, by how large a batch, in how long.
//!
//! Beside that, whether the store can be written, as the last write found
//! out: it turns unwritable when a write fails for the database's reason
//! ([`Error::StoreUnavailable`]: it cannot be reached, is full, or failed
//! to commit), and writable again with the next write that commits. The
//! server's health follows it ([`crate::health`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use super::ledger::Pending;
use crate::model::{Error, Result};

/// Told about every transaction a store of this process commits.
pub trait CommitObserver: Send + Sync + fmt::Debug {
    /// A transaction of `writes` writes (several when they were batched)
    /// committed `changes`, `took` after it began.
    fn committed(&self, changes: &[Pending], writes: usize, took: Duration);
}

/// A store's commits, as this process sees them.
#[derive(Debug)]
pub struct Commits {
    notify: tokio::sync::Notify,
    listening: AtomicBool,
    observer: OnceLock<Arc<dyn CommitObserver>>,
    /// Whether the last write that reached the database committed (true
    /// until one fails).
    writable: watch::Sender<bool>,
}

impl Default for Commits {
    fn default() -> Self {
        Self {
            notify: tokio::sync::Notify::default(),
            listening: AtomicBool::default(),
            observer: OnceLock::default(),
            writable: watch::Sender::new(true),
        }
    }
}

impl Commits {
    /// A write reached the database and committed: the store is writable.
    pub fn write_committed(&self) {
        let changed = self
            .writable
            .send_if_modified(|writable| !std::mem::replace(writable, true));
        if changed {
            tracing::warn!("the store is writable again");
        }
    }

    /// A write failed for the database's reason (it cannot be reached, is
    /// full, or failed to commit): the store is unwritable until a write
    /// commits again.
    pub fn write_failed(&self) {
        let changed = self
            .writable
            .send_if_modified(|writable| std::mem::replace(writable, false));
        if changed {
            tracing::error!("a write failed: the store is unwritable until a write commits");
        }
    }

    /// Notes what `result`, the answer of a write, says of the store: a
    /// success that it is writable, [`Error::StoreUnavailable`] that it is
    /// not; any other error (a refusal by a rule) says nothing. Returns
    /// `result`.
    pub fn note<T>(&self, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => self.write_committed(),
            Err(Error::StoreUnavailable(_)) => self.write_failed(),
            Err(_) => {}
        }
        result
    }

    /// Whether the store is writable, as the last write found, and every
    /// change of it.
    #[must_use]
    pub fn writable(&self) -> watch::Receiver<bool> {
        self.writable.subscribe()
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    #[test]
    fn the_store_is_unwritable_from_a_failed_write_to_the_next_commit() {
        let commits = Commits::default();
        let writable = commits.writable();
        assert!(*writable.borrow(), "writable until a write fails");

        let refused: Result<()> = Err(Error::SessionNotFound {
            session_id: SessionId::from_store(1),
        });
        assert!(commits.note(refused).is_err());
        assert!(
            *writable.borrow(),
            "a refusal by a rule says nothing of the store"
        );

        let failed: Result<()> = Err(Error::StoreUnavailable("disk full".into()));
        assert!(commits.note(failed).is_err());
        assert!(!*writable.borrow());

        assert_eq!(commits.note(Ok(7)).unwrap(), 7);
        assert!(*writable.borrow(), "writable again once a write commits");
    }
}
