//! The durable floor: the least a durable write can cost on this machine.
//!
//! A [`DurableLog`] is group commit with nothing to commit but the fact of
//! the write: one thread takes every write queued (up to [`MAX_BATCH`]),
//! writes one small record per write into a log file, calls `fsync` (what
//! SQLite calls with `synchronous=FULL`) and only then answers each. The
//! baseline served with one (`serve-baseline --durable-log PATH`) answers
//! its write calls that way: no validation, no store, fixed answers, and
//! an acknowledgement only once an `fsync` has covered the write. That is
//! the least a durably acknowledged write needs, so the floor's rate
//! against the plain baseline shows how much of a target durability alone
//! takes on this machine, and sessiond's rate against the floor how much
//! its own work adds.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// The most writes committed together (as sessiond's SQLite writer).
const MAX_BATCH: usize = 256;

/// How many writes may wait for the log's thread.
const QUEUE: usize = 4096;

/// The bytes recorded per write: about a session's row.
const RECORD_BYTES: usize = 100;

/// The log's size: written whole at the start, then overwritten round and
/// round, so that a commit never grows the file or allocates blocks (as
/// SQLite's write-ahead log, which starts over at its beginning after a
/// checkpoint).
const LOG_BYTES: u64 = 16 << 20;

/// A log file with one thread committing writes to it in groups. Cheap to
/// clone; the thread ends once every handle is gone.
#[derive(Clone, Debug)]
pub struct DurableLog {
    /// The thread's queue: where each write's answer goes.
    writes: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
}

impl DurableLog {
    /// Creates (or truncates) the log file at `path`, writes it whole and
    /// starts its thread.
    ///
    /// # Errors
    /// When the file cannot be written or the thread cannot be started.
    pub fn start(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let chunk = vec![0_u8; 1 << 20];
        let mut offset = 0_u64;
        while offset < LOG_BYTES {
            file.write_all_at(&chunk, offset)?;
            offset += chunk.len() as u64;
        }
        file.sync_all()?;
        let (writes, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("durable-log".to_owned())
            .spawn(move || commit_groups(&file, queue))?;
        Ok(Self { writes })
    }

    /// Records one write; returns once an `fsync` has covered it.
    ///
    /// # Errors
    /// `UNAVAILABLE` when the write or the `fsync` failed, or the thread
    /// has stopped.
    pub async fn commit(&self) -> Result<(), Status> {
        let (answer, answered) = oneshot::channel();
        self.writes
            .send(answer)
            .await
            .map_err(|_| Status::unavailable("the durable log has stopped"))?;
        answered
            .await
            .map_err(|_| Status::unavailable("the durable log stopped before answering"))?
            .map_err(Status::unavailable)
    }
}

/// The log's thread: one record per write and one `fsync` per group, until
/// every handle is dropped.
fn commit_groups(file: &File, mut queue: mpsc::Receiver<oneshot::Sender<Result<(), String>>>) {
    let mut group = Vec::with_capacity(MAX_BATCH);
    let mut records = Vec::with_capacity(MAX_BATCH * RECORD_BYTES);
    let mut offset = 0_u64;
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(answer) => group.push(answer),
                Err(_) => break,
            }
        }
        records.clear();
        records.resize(group.len() * RECORD_BYTES, b'w');
        if offset + records.len() as u64 > LOG_BYTES {
            offset = 0;
        }
        let committed = file
            .write_all_at(&records, offset)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("the durable log failed: {e}"));
        offset += records.len() as u64;
        for answer in group.drain(..) {
            // A caller that stopped waiting needs no answer.
            let _ = answer.send(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_is_on_disk_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = DurableLog::start(&path).unwrap();
        let commits: Vec<_> = (0..10)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move { log.commit().await })
            })
            .collect();
        for commit in commits {
            commit.await.unwrap().unwrap();
        }
        let log_bytes = std::fs::read(&path).unwrap();
        assert_eq!(log_bytes.len() as u64, LOG_BYTES, "the log never grows");
        let records = log_bytes.iter().take_while(|&&b| b == b'w').count();
        assert_eq!(records, 10 * RECORD_BYTES, "one record per write, in order");
    }

    #[tokio::test]
    async fn a_failed_write_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"").unwrap();
        // A log on a file opened read-only cannot write.
        let (writes, queue) = mpsc::channel(1);
        let read_only = File::open(&path).unwrap();
        std::thread::spawn(move || commit_groups(&read_only, queue));
        let failing = DurableLog { writes };
        let status = failing.commit().await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("the durable log failed"));
    }
}
