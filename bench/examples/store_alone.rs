//! sessiond's SQLite store on its own, with no gRPC: 64 tasks on one
//! current-thread runtime, each repeating open+close (`open-close`) or
//! push+pop (`push-pop`) as fast as the store answers. It prints the rate
//! and the process's CPU per pair after a 1-s warm-up and a measured window
//! (5 s unless a number of seconds follows the workload). BENCHMARKS.md
//! ("Against the store alone") compares it with the gRPC scenarios; run it
//! on the server's core, as they do:
//!
//! ```text
//! cargo build --release -p sessiond-bench --example store_alone
//! taskset -c 0 target/release/examples/store_alone open-close
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sessiond::model::{ClientDescription, EndReason, SessionKind, Timestamp, UserId};
use sessiond::store::{NewSession, SqliteStore, Store};

/// Callers in flight, as in the scenarios at 64 in flight.
const TASKS: usize = 64;

/// Distinct users of the open+close workload.
const USERS: usize = 64;

/// The error type `machine` expects at the crate root, as in the benchmark.
type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The benchmark's readings of `/proc` (this example uses the CPU time).
#[allow(dead_code)]
#[path = "../src/machine.rs"]
mod machine;

/// This process's CPU time so far, in microseconds.
fn cpu_micros() -> Result<f64> {
    Ok(machine::ticks_to_us(machine::process_cpu_ticks("self")?))
}

/// What each task repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// `create_session` then `end_clientless_session`.
    OpenClose,
    /// `push_user_context` then `pop_user_context` on the task's session.
    PushPop,
}

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    Timestamp::from_unix_micros(micros)
}

fn new_session(task: usize) -> NewSession {
    NewSession {
        uuid: uuid::Uuid::now_v7(),
        user: UserId::from_store(format!("user-{}", task % USERS)),
        kind: SessionKind::Clientless,
        client: ClientDescription::default(),
        now: now(),
        owner_node: "store-alone".to_owned(),
        max_open_per_user: None,
    }
}

/// Repeats `workload` until `until`; returns the pairs done.
async fn repeat(
    store: Arc<dyn Store>,
    workload: Workload,
    task: usize,
    until: Instant,
) -> Result<u64> {
    let own = store.create_session(new_session(task)).await?;
    let other = UserId::from_store(format!("other-{task}"));
    let mut pairs = 0;
    while Instant::now() < until {
        match workload {
            Workload::OpenClose => {
                let session = store.create_session(new_session(task)).await?;
                store
                    .end_clientless_session(session.id, EndReason::ClosedByClient, now())
                    .await?;
            }
            Workload::PushPop => {
                let pushed = store
                    .push_user_context(own.id, other.clone(), now())
                    .await?;
                store
                    .pop_user_context(own.id, pushed.scope_id, now())
                    .await?;
            }
        }
        pairs += 1;
    }
    Ok(pairs)
}

/// Runs `TASKS` tasks for `length`; prints and returns nothing else.
async fn round(
    store: &Arc<dyn Store>,
    workload: Workload,
    length: Duration,
    label: &str,
) -> Result<()> {
    let (cpu_from, from) = (cpu_micros()?, Instant::now());
    let until = from + length;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(repeat(Arc::clone(store), workload, task, until)))
        .collect();
    let mut pairs = 0;
    for task in tasks {
        pairs += task.await??;
    }
    let (cpu, elapsed) = (cpu_micros()? - cpu_from, from.elapsed().as_secs_f64());
    println!(
        "{label}: {:.0} pairs/s ({pairs} pairs), {:.1} us CPU per pair",
        pairs as f64 / elapsed,
        cpu / pairs.max(1) as f64
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let workload = match args.next().as_deref() {
        Some("open-close") => Workload::OpenClose,
        Some("push-pop") => Workload::PushPop,
        _ => return Err("usage: store_alone open-close|push-pop [SECONDS]".into()),
    };
    let seconds: f64 = args.next().map_or(Ok(5.0), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    // `SESSIOND_NO_EVENT_LOG=1`: the store without the event log.
    let record_events = std::env::var_os("SESSIOND_NO_EVENT_LOG").is_none();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_with(dir.path().join("store.db"), record_events).await?);
    round(&store, workload, Duration::from_secs(1), "warm-up").await?;
    round(
        &store,
        workload,
        Duration::from_secs_f64(seconds),
        "measured",
    )
    .await
}
