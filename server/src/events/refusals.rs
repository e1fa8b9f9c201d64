//! Refused calls, recorded in the event log in batches: a refusal is queued
//! without waiting (it must not slow the refusal down, nor let a flood of
//! refused calls slow anyone else) and a task writes what is queued in one
//! transaction. A full queue drops the refusal and counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::Cause;
use crate::clock::Clock;
use crate::model::{Change, Refusal};
use crate::store::{EventStore, Pending};

/// Refusals waiting to be written, at most.
const QUEUE: usize = 4096;
/// Refusals written per transaction, at most.
const BATCH: usize = 512;

/// Where refused calls are recorded.
#[derive(Clone, Debug)]
pub struct Refusals {
    queue: mpsc::Sender<Pending>,
    clock: Arc<dyn Clock>,
    dropped: Arc<AtomicU64>,
}

impl Refusals {
    /// Starts writing refusals to `store`; the task ends when every handle
    /// is gone.
    #[must_use]
    pub fn start(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        Self {
            queue,
            clock,
            dropped: Arc::default(),
        }
    }

    /// Queues `refusal`, made by `cause`, for the log.
    pub fn record(&self, refusal: Refusal, cause: Arc<Cause>) {
        let change = Change::refused(refusal, self.clock.now());
        if self.queue.try_send((change, cause)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "refused calls come faster than the event log records them; some were not recorded"
                );
            }
        }
    }

    /// How many refusals were dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(store: Arc<dyn EventStore>, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let count = batch.len();
        if let Err(error) = store.record_events(std::mem::take(&mut batch)).await {
            tracing::warn!(error = %error, refusals = count, "could not record refused calls");
        }
    }
}
