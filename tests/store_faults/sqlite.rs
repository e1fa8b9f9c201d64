//! Faults under the SQLite store, injected by the faulty file system: a
//! commit whose flush fails (EIO), a commit whose write fails (EIO), a full
//! disk (ENOSPC), and a flush that takes 100 ms. After each run the server
//! is killed (SIGKILL: nothing is flushed on the way out) and the test
//! reads the database file itself; then a server started on it without
//! the fault verifies the ledger.

use std::path::Path;
use std::time::Duration;

use crate::common::{ServerProcess, database_url};
use crate::faulty_fs::{Fault, FaultyFs};
use crate::probes::Target;
use crate::{
    Expect, PUSH_EVENTS_SQL, SCOPES_SQL, SESSIONS_SQL, START_EVENTS_SQL, Stored, USERS_SQL,
    WITHOUT_EVENT_SQL, assert_told_is_stored, through_fault,
};

/// How long each fault lasts.
const HOLD: Duration = Duration::from_secs(1);

/// Starts the real binary on a database in `dir`, the faulty file system
/// under it when `fs` is given.
async fn start(dir: &Path, fs: Option<&FaultyFs>) -> ServerProcess {
    let env = fs.map(FaultyFs::env).unwrap_or_default();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServerProcess::spawn_with_env(&database_url(dir), &["--admin-listen", "127.0.0.1:0"], &env)
        .await
}

/// What the database file in `dir` holds, read directly.
fn read_stored(dir: &Path) -> Stored {
    let db = rusqlite::Connection::open(dir.join("sessiond.db")).unwrap();
    let ids = |sql: &str| {
        let mut statement = db.prepare(sql).unwrap();
        statement
            .query_map([], |row| row.get::<_, i64>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let names = |sql: &str| {
        let mut statement = db.prepare(sql).unwrap();
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let count = |sql: &str| db.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap();
    Stored {
        sessions: ids(SESSIONS_SQL),
        users: names(USERS_SQL),
        scopes: ids(SCOPES_SQL),
        sessions_without_event: count(WITHOUT_EVENT_SQL),
        start_events: count(START_EVENTS_SQL),
        push_events: count(PUSH_EVENTS_SQL),
    }
}

/// Runs clients through `fault` on a fresh database, then kills the server
/// and checks what the file holds against what the clients were told.
async fn through(name: &'static str, fault: Fault, expect: Expect, hold: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(dir.path());
    let mut server = start(dir.path(), Some(&fs)).await;
    let target = Target::of(&server);
    let (tally, figures) = through_fault(
        name,
        &target,
        expect,
        hold,
        || async { fs.inject(fault) },
        || async { fs.clear() },
    )
    .await;
    target.assert_ledger_verifies().await;
    server.child.start_kill().unwrap();
    server.exited().await;

    assert_told_is_stored(name, &tally, &read_stored(dir.path()));
    let restarted = start(dir.path(), None).await;
    Target::of(&restarted).assert_ledger_verifies().await;
    figures.print();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_flush_failing_at_commit_refuses_writes_and_recovers() {
    through(
        "sqlite: fsync fails (EIO)",
        Fault::FsyncFails,
        Expect::Refusals,
        HOLD,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_failing_at_commit_refuses_writes_and_recovers() {
    through(
        "sqlite: write fails (EIO)",
        Fault::WriteFails,
        Expect::Refusals,
        HOLD,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_refuses_writes_and_recovers() {
    through(
        "sqlite: disk full (ENOSPC)",
        Fault::DiskFull,
        Expect::Refusals,
        HOLD,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_slow_flush_slows_writes_and_refuses_none() {
    through(
        "sqlite: fsync takes 100 ms",
        Fault::FsyncSlow,
        Expect::NoRefusals,
        Duration::from_secs(2),
    )
    .await;
}

/// A crash while flushes fail: the server is killed (SIGKILL) while its
/// last write batch has just failed at its flush and the fault persists,
/// and the database is read without it. The writes refused before the
/// crash were answered STORE_UNAVAILABLE — nothing changed — so none of
/// them may be in the database after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_while_flushes_fail_keeps_no_refused_write() {
    const FAULT: &str = "sqlite: fsync fails (EIO), then SIGKILL";
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(dir.path());
    let mut server = start(dir.path(), Some(&fs)).await;
    let target = Target::of(&server);
    let workload = crate::workload::Workload::start(&target.endpoint, crate::CLIENTS).await;
    crate::common::eventually("writes before the fault", || async {
        (workload.tally().acked() >= 50).then_some(())
    })
    .await;
    fs.inject(Fault::FsyncFails);
    crate::common::eventually("writes refused", || async {
        (workload.tally().refused() >= 20).then_some(())
    })
    .await;
    server.child.start_kill().unwrap();
    server.exited().await;
    for line in server
        .log
        .borrow()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .take(12)
    {
        eprintln!("LOG {line}");
    }
    let tally = workload.stop().await;
    fs.clear();
    let stored = read_stored(dir.path());
    eprintln!(
        "FIGURES {FAULT}: acked {} refused {} (opens acked {}, in the database {})",
        tally.acked(),
        tally.refused(),
        tally.sessions.len(),
        stored.sessions.len()
    );
    assert_told_is_stored(FAULT, &tally, &stored);
}
