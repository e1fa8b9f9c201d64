//! One process owns a SQLite database: the store holds an exclusive lock on
//! a file beside it (`PATH.lock`) for as long as it is open.
//!
//! Two servers on one SQLite file would each take the other's clientless
//! sessions for leftovers of a crash, and the store's memory of sessions
//! ([`super::cache`]) would miss the other's writes; several replicas need
//! PostgreSQL. The lock is `flock(2)`, released by the kernel when the
//! process exits however it exits, so a crash never leaves it behind. (It
//! is a separate file because closing any descriptor of the database file
//! itself would drop SQLite's own POSIX locks.)

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::model::{Error, Result};

/// How long opening waits for another owner to let go (a server that is
/// still shutting down) before giving up.
const WAIT: Duration = Duration::from_secs(10);

/// How often opening checks the lock again while it waits.
const POLL: Duration = Duration::from_millis(20);

/// The lock on a database, held while this value lives.
#[derive(Debug)]
pub struct Ownership {
    /// The locked file; unlocked when dropped.
    _lock: Flock<File>,
}

impl Ownership {
    /// Takes the lock of the database at `database`, waiting up to
    /// [`WAIT`] for another holder to release it.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the lock file cannot be opened, or
    /// another process (or another open store in this one) still holds it.
    pub async fn take(database: &Path) -> Result<Self> {
        let path = lock_path(database);
        let deadline = Instant::now() + WAIT;
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((_, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(unavailable(format!(
                        "the database {} is in use by another sessiond (it holds {}); \
                         one server owns a SQLite database, several replicas need PostgreSQL",
                        database.display(),
                        path.display()
                    )));
                }
                Err((_, errno)) => {
                    return Err(unavailable(format!(
                        "cannot lock {}: {errno}",
                        path.display()
                    )));
                }
            }
        }
    }
}

/// The lock file of the database at `database`.
fn lock_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

fn unavailable(message: String) -> Error {
    Error::StoreUnavailable(message.into())
}
