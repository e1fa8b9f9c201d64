//! Retention: events older than the retention period are removed, oldest
//! first, and the compaction checkpoint moves with them, so that what is
//! left still verifies.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::EventStore;

/// Events removed per transaction.
const CHUNK: u32 = 10_000;
/// How often the log is compacted, at most.
const EVERY: Duration = Duration::from_secs(600);

/// Compacts `store` now and then until `stop`, keeping `retention`.
pub async fn compact_periodically(
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    stop: CancellationToken,
) {
    let every = EVERY.min(retention / 10).max(Duration::from_secs(1));
    loop {
        compact(&*store, &*clock, retention).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Removes every event older than `retention`; returns how many.
pub async fn compact(store: &dyn EventStore, clock: &dyn Clock, retention: Duration) -> u64 {
    let before = clock.now().minus(retention);
    let mut removed = 0;
    loop {
        match store.compact_events(before, CHUNK).await {
            Ok(0) => break,
            Ok(n) => removed += n,
            Err(error) => {
                tracing::warn!(error = %error, "could not compact the event log");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(events = removed, "compacted the event log");
    }
    removed
}
