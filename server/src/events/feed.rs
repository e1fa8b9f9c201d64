//! The feed: one task per server that tails the event log and hands every
//! new event, in revision order and without gaps, to every watcher.
//!
//! It reads the log after the last revision it delivered whenever this
//! process commits events (the store's `commits`) and every poll interval
//! (the events other replicas commit on a shared database), and broadcasts
//! each page it reads as one batch. While nobody watches it reads nothing,
//! so that an unwatched server pays for no event reads; when watched again
//! it goes on from the head. The broadcast channel is bounded: a
//! watcher that falls more than its capacity behind finds out
//! ([`broadcast::error::RecvError::Lagged`]) instead of making the feed
//! buffer for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sessiond_proto::v1 as pb;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::model::Result;
use crate::store::{Commits, EventQuery, EventStore};

/// Events read from the log per query.
const PAGE: u32 = 1000;

/// Events, in revision order, contiguous; an empty one tells watches to
/// read what they lack from the log (the feed skipped ahead).
pub type Batch = Arc<[pb::Event]>;

/// The log's tail, shared by every watcher of this server.
#[derive(Clone, Debug)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sender: broadcast::Sender<Batch>,
    /// The store's signal of this process's commits.
    commits: Arc<Commits>,
    /// The last revision broadcast.
    delivered: AtomicI64,
}

impl Feed {
    /// Starts tailing `store` from its head, every `poll` and after each of
    /// this process's commits, until `stop`. It keeps `capacity` batches
    /// (at least one) for watchers that have not received them yet
    /// ([`crate::config::Config::watch_buffer`]).
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`] when the head cannot be read.
    pub async fn start(
        store: Arc<dyn EventStore>,
        poll: Duration,
        capacity: usize,
        stop: CancellationToken,
    ) -> Result<Self> {
        let head = store.ledger_head().await?.head.revision;
        let (sender, _) = broadcast::channel(capacity.max(1));
        let inner = Arc::new(Inner {
            sender,
            commits: store.commits(),
            delivered: AtomicI64::new(head),
        });
        tokio::spawn(tail(Arc::clone(&inner), store, poll, stop));
        Ok(Self { inner })
    }

    /// The last revision handed to watchers: every event up to it has been
    /// (it may lag the log while nobody watches).
    #[must_use]
    pub fn delivered(&self) -> i64 {
        self.inner.delivered.load(Ordering::Acquire)
    }

    /// The batches delivered from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        let receiver = self.inner.sender.subscribe();
        self.inner.commits.listen(true);
        receiver
    }
}

/// Reads and broadcasts what the log gained, until `stop`.
async fn tail(
    inner: Arc<Inner>,
    store: Arc<dyn EventStore>,
    poll: Duration,
    stop: CancellationToken,
) {
    let commits = Arc::clone(&inner.commits);
    let mut watched = true;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = commits.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
        if inner.sender.receiver_count() == 0 {
            // Nobody watches: no reads at all, and no wake-up per commit
            // (until a watch subscribes). A watch that starts reads what it
            // needs from the log itself.
            commits.listen(false);
            watched = false;
            continue;
        }
        commits.listen(true);
        if !watched {
            // Watched again: on from the head, not through what nobody saw;
            // an empty batch tells the watches to read what they lack from
            // the log.
            match store.ledger_head().await {
                Ok(head) => {
                    inner
                        .delivered
                        .fetch_max(head.head.revision, Ordering::AcqRel);
                    let _ = inner.sender.send(Arc::from([]));
                    watched = true;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "could not read the event log's head");
                    continue;
                }
            }
        }
        loop {
            let after = inner.delivered.load(Ordering::Acquire);
            let page = match store.events(&EventQuery::after(after, PAGE)).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(error = %error, after, "could not read the event log for watchers");
                    break;
                }
            };
            let Some(last) = page.last().map(|event| event.revision) else {
                break;
            };
            let full = page.len() == PAGE as usize;
            let batch: Vec<pb::Event> = page
                .iter()
                .filter_map(|stored| match stored.decode() {
                    Ok(event) => Some(event),
                    Err(error) => {
                        tracing::error!(error = %error, "an event of the log does not decode");
                        None
                    }
                })
                .collect();
            // Delivered first, then sent: a watcher that starts "from now"
            // in between skips what it will still receive.
            inner.delivered.store(last, Ordering::Release);
            let _ = inner.sender.send(batch.into());
            if !full {
                break;
            }
        }
    }
}
