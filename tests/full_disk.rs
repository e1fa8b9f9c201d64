//! A nearly full disk, for real: the SQLite database on a 2 MiB tmpfs
//! (mounting one needs root; elsewhere the test says so and does nothing).
//! A write that does not fit fails with STORE_UNAVAILABLE; the write-ahead
//! log is then kept small, so that space freed afterwards goes to writes
//! rather than to the log.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, assert_error};
use sessiond_proto::v1::OpenClientlessSessionRequest;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `2m`) on `dir`; `None`
    /// when this machine does not let the test mount one.
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn open(sessions: &mut SessionServiceClient<Channel>) -> Result<i64, tonic::Status> {
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .map(|response| response.into_inner().session_id)
}

/// Fills the file system of `path` with a file there, up to its last byte.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = [0_u8; 4096];
    let mut written = 0;
    while let Ok(n) = file.write(&chunk) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = file.sync_all();
    written
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap()
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

#[tokio::test]
async fn after_a_full_disk_the_log_stays_small_and_freed_space_goes_to_writes() {
    let outer = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(outer.path(), "2m") else {
        eprintln!("not run: mounting a tmpfs needs root");
        return;
    };
    let dir = tempfile::tempdir_in(outer.path()).unwrap();
    let wal = dir.path().join("sessiond.db-wal");
    let ballast = outer.path().join("ballast");
    let server = TestServer::start_in(dir, |config| {
        config.max_open_sessions_per_user = None;
    })
    .await;
    let mut sessions = server.sessions().await;
    for _ in 0..20 {
        open(&mut sessions).await.unwrap();
    }
    let wal_after_20 = size_of(&wal);

    fill(&ballast);
    let refused = open(&mut sessions).await;
    assert_error(refused, Code::Unavailable, "STORE_UNAVAILABLE");
    let wal_after_failure = size_of(&wal);
    let database = dir_of(&wal).join("sessiond.db");
    let database_before = size_of(&database);

    // An operator frees 512 KiB: the log must not eat it.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap();
    file.set_len(size_of(&ballast).saturating_sub(512 * 1024))
        .unwrap();
    drop(file);
    let mut opened = 0;
    while opened < 200 {
        match open(&mut sessions).await {
            Ok(_) => opened += 1,
            Err(status) => panic!(
                "only {opened} opens fit in 512 KiB freed (the log is {} bytes): {status:?}",
                size_of(&wal)
            ),
        }
    }
    eprintln!(
        "WAL after 20 opens: {wal_after_20} bytes ({} per open); after the failed write: \
         {wal_after_failure} bytes; after 200 more opens: {} bytes, the database grown by {} bytes",
        wal_after_20 / 20,
        size_of(&wal),
        size_of(&database) - database_before
    );
    drop(sessions);
    server.stop().await;
}
