//! The crash loop: clients make random calls against the real `sessiond`
//! binary and record every answer, while a node is killed with SIGKILL at
//! random moments and started again, round after round; then every
//! acknowledged write must be in the database and every invariant must
//! hold ([`check`] says exactly what that means). On SQLite (one node,
//! killed and restarted) and on PostgreSQL (two replicas on one database,
//! `a` killed at random while `b` keeps serving).
//!
//! Each round also checks that no process of a run outlives the node that
//! started it: the processes of the killed node's runs must be gone once
//! it has started again (its leaders die with it, the rest at its next
//! start). At the end every node is stopped and no module process may be
//! left at all, and the event ledger must verify.
//!
//! The loop runs `SESSIOND_CRASH_LOOP_SECS` seconds per store (default
//! 15); `SESSIOND_CRASH_LOOP_SEED` fixes the random choices (the timing
//! still varies). The figures of a run are printed (`--nocapture`).
//!
//! # Layout
//! - this file: the two tests, the rounds, the summary;
//! - [`nodes`]: the `sessiond` processes;
//! - [`workload`] and [`calls`]: the workers and their calls;
//! - [`ledger`]: what the workers were told;
//! - [`check`]: the database against the ledgers, and the invariants;
//! - [`processes`]: module processes in `/proc`.

mod calls;
mod check;
#[path = "../common/mod.rs"]
mod common;
mod ledger;
mod nodes;
mod processes;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sessiond_proto::v1::VerifyLedgerRequest;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;

use ledger::{Kind, Record, Tally};
use nodes::Nodes;
use workload::{Rng, Worker};

/// Clients calling at once.
const WORKERS: usize = 8;

/// Modules besides the examples': one that leaves a child behind and
/// concludes at once, one whose child lives while it runs. Both read their
/// parameters first, as the examples do (a run's process group is recorded
/// before the module is given them).
const EXTRA_MODULES: &str = r#"
[modules.forks]
command = ["sh", "-c", "cat > /dev/null; sleep 3600 & echo '\"forked\"'"]
timeout = "30s"

[modules.lingers]
command = ["sh", "-c", "cat > /dev/null; sleep 3600 & sleep 2; echo '\"lingered\"'"]
timeout = "30s"
"#;

/// How long the loop runs.
fn loop_time() -> Duration {
    let seconds = std::env::var("SESSIOND_CRASH_LOOP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15.0);
    Duration::from_secs_f64(seconds)
}

/// The seed of the random choices.
fn seed() -> u64 {
    std::env::var("SESSIOND_CRASH_LOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// A copy of `examples/` (its manifest, with [`EXTRA_MODULES`], and its
/// scripts) in `dir`; returns the manifest.
fn install_modules(dir: &Path) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    std::fs::create_dir(dir.join("modules")).unwrap();
    for entry in std::fs::read_dir(examples.join("modules")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("modules").join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(examples.join("modules.toml")).unwrap();
    let path = dir.join("modules.toml");
    std::fs::write(&path, manifest + EXTRA_MODULES).unwrap();
    path
}

/// One store's loop.
struct CrashLoop {
    store: &'static str,
    database: String,
    /// Each node's name and whether it is killed.
    nodes: Vec<(&'static str, bool)>,
    /// Each node's extra flags.
    flags: Vec<&'static str>,
    /// The longest a killed node stays down.
    max_downtime: Duration,
}

/// What the rounds saw.
#[derive(Default)]
struct Rounds {
    rounds: u64,
    /// Processes of the killed nodes' runs, checked gone after restarts.
    doomed: usize,
    /// Those that were not.
    survivors: Vec<String>,
}

impl CrashLoop {
    async fn run(self) {
        let dir = tempfile::tempdir().unwrap();
        let dir_path = dir.path().canonicalize().unwrap();
        let _cleanup = processes::Cleanup(&dir_path);
        let manifest = install_modules(&dir_path);
        let flags = self
            .nodes
            .iter()
            .map(|(name, _)| {
                let mut flags: Vec<String> = [
                    "--node-id",
                    name,
                    "--modules",
                    manifest.to_str().unwrap(),
                    "--admin-listen",
                    "",
                    "--shutdown-grace",
                    "1s",
                ]
                .map(str::to_owned)
                .into();
                flags.extend(self.flags.iter().map(|f| (*f).to_owned()));
                flags
            })
            .collect();
        let seed = seed();
        let duration = loop_time();
        println!(
            "crash loop ({}): {:.0} s, seed {seed} (SESSIOND_CRASH_LOOP_SEED)",
            self.store,
            duration.as_secs_f64()
        );
        let started = Instant::now();
        let phase = |what: &str| println!("   [{:>6.1} s] {what}", started.elapsed().as_secs_f64());
        let mut nodes = Nodes::start(&self.database, flags).await;
        phase("nodes up");
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|n| {
                let worker = Worker::new(n, seed ^ (n as u64 + 1), nodes.endpoints(), stop.clone());
                tokio::spawn(worker.run())
            })
            .collect();

        let killable: Vec<usize> = (0..self.nodes.len()).filter(|&n| self.nodes[n].1).collect();
        let mut rng = Rng::new(seed);
        let mut rounds = Rounds::default();
        let began = Instant::now();
        while began.elapsed() < duration {
            tokio::time::sleep(Duration::from_millis(100 + rng.below(1500))).await;
            let node = killable[usize::try_from(rng.below(killable.len() as u64)).unwrap()];
            let max_downtime = u64::try_from(self.max_downtime.as_millis()).unwrap();
            let downtime = Duration::from_millis(rng.below(max_downtime + 1));
            kill_and_restart(&mut nodes, node, &dir_path, downtime, &mut rounds).await;
            rounds.rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        phase("rounds over");
        let mut ledgers = Vec::new();
        for worker in workers {
            ledgers.push(worker.await.unwrap());
        }
        phase("workers done");
        // The last kill, with every client done: what it leaves is final.
        for &node in &killable {
            kill_and_restart(&mut nodes, node, &dir_path, Duration::ZERO, &mut rounds).await;
        }
        let verified = AuditServiceClient::connect(nodes.endpoint(0))
            .await
            .unwrap()
            .verify_ledger(VerifyLedgerRequest::default())
            .await
            .unwrap()
            .into_inner();
        let kills = nodes.kills;
        phase("last kill, restart and ledger verified");
        nodes.stop_all().await;
        phase("nodes stopped");
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut left = processes::in_dir(&dir_path);
        while !left.is_empty() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = processes::in_dir(&dir_path);
        }

        let snapshot = check::snapshot(&self.database).await;
        phase("database read");
        let records: Vec<&Record> = ledgers.iter().flat_map(|l| &l.sessions).collect();
        let mut violations = check::violations(&records, &snapshot);
        for ledger in &ledgers {
            violations.extend(ledger.violations.iter().cloned());
        }
        violations.extend(rounds.survivors.iter().cloned());
        for process in &left {
            violations.push(format!("{process:?} left after every node stopped"));
        }
        if !verified.ok {
            violations.push(format!("the ledger does not verify: {verified:?}"));
        }
        let mut tally = Tally::default();
        for ledger in &ledgers {
            tally.add(&ledger.tally);
        }
        print_summary(
            &self, &rounds, kills, &tally, &records, &snapshot, &verified,
        );
        println!("   module processes left at the end: {}", left.len());
        println!("   violations (lost or wrong): {}", violations.len());
        assert!(
            violations.is_empty(),
            "{} violations; the first:\n{}",
            violations.len(),
            violations[..violations.len().min(40)].join("\n")
        );
        assert!(
            kills >= 2 && tally.acknowledged_writes() > 0,
            "the loop did nothing"
        );
    }
}

/// SIGKILL of `node`, `downtime`, a start; then every process of the runs
/// it had started must be gone.
async fn kill_and_restart(
    nodes: &mut Nodes,
    node: usize,
    dir: &Path,
    downtime: Duration,
    rounds: &mut Rounds,
) {
    let pid = nodes.pid(node);
    let before = processes::in_dir(dir);
    nodes.kill(node).await;
    let doomed = processes::of_node(&before, pid);
    tokio::time::sleep(downtime).await;
    nodes.restart(node).await;
    // Its start-up killed them; SIGKILL is delivered, not awaited.
    let give_up = Instant::now() + Duration::from_secs(5);
    while doomed.iter().any(|&p| processes::alive(p)) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rounds.doomed += doomed.len();
    for process in doomed.into_iter().filter(|&p| processes::alive(p)) {
        rounds
            .survivors
            .push(format!("{process:?} of node {node} survived its restart"));
    }
}

fn print_summary(
    run: &CrashLoop,
    rounds: &Rounds,
    kills: u64,
    tally: &Tally,
    records: &[&Record],
    snapshot: &check::Snapshot,
    verified: &sessiond_proto::v1::VerifyLedgerResponse,
) {
    let clientless = records
        .iter()
        .filter(|r| r.kind == Kind::Clientless)
        .count();
    let pending = records.iter().filter(|r| r.pending.is_some()).count();
    let runs: usize = records.iter().map(|r| r.runs.len()).sum();
    println!(
        "   {} rounds, {kills} kills ({} nodes: {})",
        rounds.rounds,
        run.nodes.len(),
        run.nodes
            .iter()
            .map(|(name, killed)| format!("{name}{}", if *killed { " killed" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "   {} acknowledged writes: {:?}",
        tally.acknowledged_writes(),
        tally.acknowledged
    );
    println!("   {} reads checked against them", tally.reads);
    println!("   refused (nothing written): {:?}", tally.refused);
    println!("   writes without an answer: {:?}", tally.unknown);
    println!(
        "   sessions acknowledged: {} ({clientless} clientless), {pending} with a write left \
         without an answer; runs acknowledged: {runs}; in the database: {} sessions, {} runs",
        records.len(),
        snapshot.sessions.len(),
        snapshot.runs.len()
    );
    println!(
        "   module processes of killed nodes checked gone after the restart: {}",
        rounds.doomed
    );
    println!(
        "   ledger: ok={} over {} events",
        verified.ok, verified.verified_events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_write_across_kill_9_rounds() {
    let dir = tempfile::tempdir().unwrap();
    CrashLoop {
        store: "SQLite",
        database: common::database_url(dir.path()),
        nodes: vec![("solo", true)],
        flags: vec![],
        max_downtime: Duration::from_millis(300),
    }
    .run()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn postgres_replicas_lose_no_acknowledged_write_while_one_is_killed() {
    CrashLoop {
        store: "PostgreSQL, two replicas",
        database: common::postgres::fresh_database("crash_loop").await,
        nodes: vec![("a", true), ("b", false)],
        flags: vec!["--lease-ttl", "2s"],
        max_downtime: Duration::from_secs(4),
    }
    .run()
    .await;
}
