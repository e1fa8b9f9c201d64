//! Injected store faults, against the real `sessiond` binary: clients write
//! (open a clientless session, push a user context in it) while the store
//! fails under them, then recovers.
//!
//! Each fault must give every call either success — and then its write is
//! durable — or UNAVAILABLE with the ErrorInfo reason STORE_UNAVAILABLE,
//! which promises that nothing changed; never half a change (a session
//! without its event, a scope without its event; the ledger verifies); the
//! server reports NOT_SERVING (gRPC health) and `/readyz` 503 while it
//! cannot write, `/healthz` stays 200, and once the fault clears writes
//! succeed and the server is ready again without a restart.
//!
//! RELIABILITY.md ("Injected store faults") has the figures each test
//! prints (`--nocapture`).
//!
//! # Layout
//! - this file: the scenario every fault goes through and the checks of
//!   what the database holds afterwards;
//! - [`faulty_fs`]: a faulty file system (an `LD_PRELOAD` shim built with
//!   gcc) for SQLite: flushes that fail or are slow, writes that fail with
//!   EIO or ENOSPC;
//! - [`workload`]: the writing clients and what they were told;
//! - [`probes`]: readiness, liveness and the ledger, as a caller reads them;
//! - [`sqlite`], [`postgres`]: the faults on each store;
//! - [`lost_commit`]: a COMMIT whose answer is lost on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;
mod faulty_fs;
mod lost_commit;
mod postgres;
mod probes;
mod sqlite;
mod workload;

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use common::eventually;
use probes::Target;
use workload::{Tally, Workload};

/// Clients writing at once.
pub const CLIENTS: usize = 4;

/// What a fault must do to callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Writes are refused (STORE_UNAVAILABLE) while it lasts, and the
    /// server is not ready.
    Refusals,
    /// Writes only slow down: none is refused, the server stays ready.
    NoRefusals,
}

/// What one run through a fault measured.
#[derive(Debug)]
pub struct Figures {
    /// Which fault, on which store.
    pub fault: &'static str,
    /// Writes acknowledged in the whole run.
    pub acked: usize,
    /// Writes refused (STORE_UNAVAILABLE) in the whole run.
    pub refused: usize,
    /// Writes acknowledged per second before the fault.
    pub rate_before: f64,
    /// Writes acknowledged per second while it lasted.
    pub rate_during: f64,
    /// From the fault's start to the server reporting not ready.
    pub not_ready_after: Option<Duration>,
    /// From the fault's end to the first write acknowledged.
    pub first_ack_after_clear: Duration,
    /// Writes refused after the fault ended.
    pub refused_after_clear: usize,
    /// From the fault's end to the server reporting ready again.
    pub ready_after_clear: Duration,
}

impl Figures {
    /// Prints them on one line, for RELIABILITY.md.
    pub fn print(&self) {
        eprintln!(
            "FIGURES {}: acked {} refused {} | {:.0} writes/s before, {:.0} during | \
             not ready {} after the fault began | first ack {} ms after it cleared, \
             {} refused after it cleared, ready again after {} ms",
            self.fault,
            self.acked,
            self.refused,
            self.rate_before,
            self.rate_during,
            self.not_ready_after
                .map_or_else(|| "never".to_owned(), |d| format!("{} ms", d.as_millis())),
            self.first_ack_after_clear.as_millis(),
            self.refused_after_clear,
            self.ready_after_clear.as_millis(),
        );
    }
}

/// Runs clients against `target` through a fault: writes first, then
/// `inject`, `hold` of the fault, `clear`, and writes until one is
/// acknowledged and the server is ready again. Checks the answers
/// (acknowledged or STORE_UNAVAILABLE, nothing else; none refused when the
/// fault only slows) and the server's health on the way.
pub async fn through_fault<I, C>(
    fault: &'static str,
    target: &Target,
    expect: Expect,
    hold: Duration,
    inject: impl FnOnce() -> I,
    clear: impl FnOnce() -> C,
) -> (Tally, Figures)
where
    I: Future<Output = ()>,
    C: Future<Output = ()>,
{
    let workload = Workload::start(&target.endpoint, CLIENTS).await;
    eventually("writes before the fault", || async {
        (workload.tally().acked() >= 50).then_some(())
    })
    .await;
    let measured = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let injected = Instant::now();
    let rate_before = per_second(
        workload.tally().acked_between(measured, injected),
        injected - measured,
    );

    inject().await;
    let not_ready_after = match expect {
        Expect::Refusals => {
            eventually("a write refused during the fault", || async {
                (workload.tally().refused_after(injected) > 0).then_some(())
            })
            .await;
            eventually("the server reporting not ready", || async {
                target.not_ready().await.then_some(())
            })
            .await;
            Some(injected.elapsed())
        }
        Expect::NoRefusals => None,
    };
    tokio::time::sleep((injected + hold).saturating_duration_since(Instant::now())).await;
    if expect == Expect::NoRefusals {
        assert!(target.ready().await, "ready while writes are only slow");
    }
    let ended = Instant::now();
    let rate_during = per_second(
        workload.tally().acked_between(injected, ended),
        ended - injected,
    );

    clear().await;
    let cleared = Instant::now();
    let first_ack_after_clear = eventually("a write acknowledged after the fault", || async {
        workload.tally().first_ack_after(cleared)
    })
    .await;
    eventually("the server ready again", || async {
        target.ready().await.then_some(())
    })
    .await;
    let ready_after_clear = cleared.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tally = workload.stop().await;

    assert!(
        tally.wrong.is_empty(),
        "every answer is a success or STORE_UNAVAILABLE; {} were not, e.g. {}",
        tally.wrong.len(),
        tally.wrong[0]
    );
    match expect {
        Expect::Refusals => assert!(tally.refused() > 0),
        Expect::NoRefusals => assert_eq!(tally.refused(), 0, "a slow disk refuses nothing"),
    }
    let figures = Figures {
        fault,
        acked: tally.acked(),
        refused: tally.refused(),
        rate_before,
        rate_during,
        not_ready_after,
        first_ack_after_clear,
        refused_after_clear: tally.refused_after(cleared),
        ready_after_clear,
    };
    (tally, figures)
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn per_second(count: usize, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64()
}

/// What the database holds after a run, read by the test itself.
#[derive(Debug, Default)]
pub struct Stored {
    /// Every session's id.
    pub sessions: HashSet<i64>,
    /// Every session's user.
    pub users: HashSet<String>,
    /// Every scope's id.
    pub scopes: HashSet<i64>,
    /// Sessions without the event of their start.
    pub sessions_without_event: i64,
    /// Events of a session's start.
    pub start_events: i64,
    /// Events of a pushed user context.
    pub push_events: i64,
}

/// The same queries on both stores (`kind`: the contract's `EventKind`
/// numbers: 1 session started, 2 clientless session opened, 6 user context
/// pushed).
pub const SESSIONS_SQL: &str = "SELECT session_id FROM sessions";
/// See [`SESSIONS_SQL`].
pub const USERS_SQL: &str = "SELECT user_id FROM sessions";
/// See [`SESSIONS_SQL`].
pub const SCOPES_SQL: &str = "SELECT scope_id FROM user_context_scopes";
/// See [`SESSIONS_SQL`].
pub const WITHOUT_EVENT_SQL: &str = "SELECT COUNT(*) FROM sessions s WHERE NOT EXISTS \
     (SELECT 1 FROM events e WHERE e.session_id = s.session_id AND e.kind IN (1, 2))";
/// See [`SESSIONS_SQL`].
pub const START_EVENTS_SQL: &str = "SELECT COUNT(*) FROM events WHERE kind IN (1, 2)";
/// See [`SESSIONS_SQL`].
pub const PUSH_EVENTS_SQL: &str = "SELECT COUNT(*) FROM events WHERE kind = 6";

/// Asserts that what the clients were told is what the database holds:
/// every acknowledged write is there, no refused one is (STORE_UNAVAILABLE
/// promises that nothing changed), and every change has its event.
pub fn assert_told_is_stored(fault: &str, tally: &Tally, stored: &Stored) {
    let lost: Vec<_> = tally
        .sessions
        .iter()
        .filter(|id| !stored.sessions.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{fault}: acknowledged opens lost: {lost:?}"
    );
    let lost: Vec<_> = tally
        .scopes
        .iter()
        .filter(|id| !stored.scopes.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{fault}: acknowledged pushes lost: {lost:?}"
    );
    let refused: Vec<_> = tally
        .refused_users
        .iter()
        .filter(|user| stored.users.contains(*user))
        .collect();
    assert!(
        refused.is_empty(),
        "{fault}: sessions in the database whose open was refused with STORE_UNAVAILABLE \
         (of {} refused opens), users {refused:?}",
        tally.refused_users.len()
    );
    assert_eq!(
        stored.sessions.len(),
        tally.sessions.len(),
        "{fault}: sessions in the database whose open was refused"
    );
    assert_eq!(
        stored.scopes.len(),
        tally.scopes.len(),
        "{fault}: scopes in the database whose push was refused"
    );
    assert_eq!(
        stored.sessions_without_event, 0,
        "{fault}: sessions without their event"
    );
    assert_eq!(
        stored.start_events,
        i64::try_from(stored.sessions.len()).unwrap(),
        "{fault}: start events without their session"
    );
    assert_eq!(
        stored.push_events,
        i64::try_from(stored.scopes.len()).unwrap(),
        "{fault}: push events without their scope"
    );
}
