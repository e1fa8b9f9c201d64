//! The session / user-context / module-run state machine against a
//! reference model: random sequences of every state-changing RPC
//! (interactive and clientless sessions opened, touched, ended and closed
//! with or without a drain; user contexts set, pushed and popped — the
//! innermost scope, an outer one, a popped one, another session's; modules
//! opened, concluded, cancelled and read) on several sessions of a few
//! users, against the real server over gRPC, on SQLite and on PostgreSQL.
//!
//! Before each call the [`model`] says what the contract promises (its
//! result, or its code and ErrorInfo reason); after it, the call's answer is
//! compared with that, and then everything observable about every session
//! of the case — its record, user, user context, the latest run of each
//! module, the listing of each user's sessions — with the model's state.
//!
//! Every case opens its own sessions for users of its own, so cases are
//! independent of each other on one server. A module `gate` runs until the
//! case concludes it (with a value or an error) or its session's close
//! cancels it, so that runs are RUNNING, concluded or cancelled exactly
//! when the sequence says; `echo` concludes at once with its parameters.
//!
//! Under `cargo test` bolero's random engine runs each store's target for
//! [`TEST_TIME`]; `BOLERO_RANDOM_TEST_TIME_MS` (or
//! `BOLERO_RANDOM_ITERATIONS`) runs it longer, `BOLERO_RANDOM_SEED` replays
//! a failure. RELIABILITY.md has the long runs.
//!
//! # Layout
//! - this file: the operations, the server and the targets;
//! - [`model`]: the reference model;
//! - [`case`]: one sequence of operations on the server and the model;
//! - [`observe`]: comparing what the server shows with the model.

mod case;
#[path = "../common/mod.rs"]
mod common;
mod model;
mod observe;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bolero::generator::{TypeGenerator, r#gen};
use common::TestServer;
use sessiond::model::ModuleFailure;
use sessiond::modules::{Module, ModuleContext, async_trait};
use tokio::sync::Notify;
use tonic::transport::Channel;

/// How long each store's target runs under `cargo test` (unless
/// `BOLERO_RANDOM_TEST_TIME_MS` or `BOLERO_RANDOM_ITERATIONS` says
/// otherwise).
const TEST_TIME: Duration = Duration::from_secs(15);

/// The most operations in one case.
const MAX_OPERATIONS: usize = 32;

/// The most sessions not ended per user on the server under test.
const SESSIONS_PER_USER: u32 = 2;

/// The most runs running in one session on the server under test.
const RUNS_PER_SESSION: u32 = 2;

/// A session of the case: below 128 the latest opened, else by index
/// (modulo how many there are); none yet: a session that does not exist.
pub type Pick = u8;

/// Which module to open or read.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum ModuleChoice {
    /// `gate`: runs until concluded or cancelled.
    Gate,
    /// `echo`: concludes at once with its parameters.
    Echo,
    /// A module the server does not have.
    Unregistered,
}

/// Which scope to pop.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum ScopeChoice {
    /// The innermost scope of the session.
    Innermost,
    /// A scope of the session below the innermost.
    Outer(u8),
    /// A scope the session popped already.
    Popped(u8),
    /// A scope of another session of the case.
    OfAnotherSession(u8),
    /// A scope id nobody pushed.
    Unknown,
}

/// One operation of a case.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum Op {
    /// StartSession (interactive) or OpenClientlessSession for one of the
    /// case's first two users.
    Open {
        /// Which user.
        user: u8,
        /// Clientless or interactive.
        clientless: bool,
    },
    /// TouchSession.
    Touch(Pick),
    /// EndSession.
    End(Pick),
    /// CloseClientlessSession with no grace, or a long one (`drain`).
    Close {
        /// The session.
        session: Pick,
        /// Whether running modules are given time to conclude.
        drain: bool,
    },
    /// OpenModule.
    OpenModule {
        /// The session.
        session: Pick,
        /// The module.
        module: ModuleChoice,
        /// A parameter handed to it.
        parameter: u8,
    },
    /// Concludes a running `gate` run of the case (by index among them).
    Conclude {
        /// Which run.
        run: u8,
        /// With a value, or with an error.
        succeed: bool,
    },
    /// GetReturnValue without waiting.
    ReturnValue(Pick, ModuleChoice),
    /// SetUserContext to one of the case's users.
    Set(Pick, u8),
    /// PushUserContext of one of the case's users.
    Push(Pick, u8),
    /// PopUserContext.
    Pop(Pick, ScopeChoice),
}

/// How a `gate` run concludes.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// With this value.
    Value(serde_json::Value),
    /// With an error.
    Error,
}

/// The verdicts the case gave to `gate` runs, by run id.
#[derive(Debug, Default)]
pub struct Gates {
    verdicts: Mutex<HashMap<i64, Verdict>>,
    given: Notify,
}

impl Gates {
    /// Concludes run `run_id` with `verdict`.
    pub fn conclude(&self, run_id: i64, verdict: Verdict) {
        self.verdicts.lock().unwrap().insert(run_id, verdict);
        self.given.notify_waiters();
    }
}

/// The module `gate`: waits for its verdict, or its cancellation.
#[derive(Debug)]
struct Gate(Arc<Gates>);

#[async_trait]
impl Module for Gate {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        let run_id = ctx.run_id.get();
        loop {
            let given = self.0.given.notified();
            tokio::pin!(given);
            given.as_mut().enable();
            if let Some(verdict) = self.0.verdicts.lock().unwrap().remove(&run_id) {
                return match verdict {
                    Verdict::Value(value) => Ok(value),
                    Verdict::Error => Err(ModuleFailure::error("the case said so")),
                };
            }
            tokio::select! {
                () = given => {}
                () = ctx.cancelled() => {
                    return Err(ModuleFailure::error("cancelled"));
                }
            }
        }
    }
}

/// The module `echo`: returns `{"echo": PARAMETERS}` at once.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl Module for Echo {
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
        Ok(serde_json::json!({ "echo": ctx.parameters }))
    }
}

/// Runs the cases against a server on `database` (`None`: SQLite in a
/// temporary directory).
fn run_cases(store: &str, database: Option<String>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gates = Arc::new(Gates::default());
    let server = runtime.block_on(TestServer::build_in(
        tempfile::tempdir().unwrap(),
        |config| {
            if let Some(database) = database {
                config.database = database;
            }
            config.close_grace = Duration::ZERO;
            config.idle_timeout = None;
            config.max_lifetime = None;
            config.max_open_sessions_per_user = Some(SESSIONS_PER_USER);
            config.max_running_modules_per_session = RUNS_PER_SESSION;
        },
        |builder| {
            builder
                .module("gate", Gate(Arc::clone(&gates)))
                .module("echo", Echo)
        },
    ));
    let channel = runtime.block_on(server.channel());
    let cases = AtomicU64::new(0);
    let operations = AtomicU64::new(0);
    let started = std::time::Instant::now();
    // The runtime and the clients are not unwind-safe; a panic fails the
    // test.
    let (runtime, channel) = (AssertUnwindSafe(&runtime), AssertUnwindSafe(&channel));
    bolero::check!()
        .with_generator(r#gen::<Vec<Op>>().with().len(1usize..=MAX_OPERATIONS))
        .with_test_time(TEST_TIME)
        .for_each(|ops: &Vec<Op>| {
            let number = cases.fetch_add(1, Ordering::Relaxed);
            let mut case = case::Case::new(
                store,
                number,
                Channel::clone(&channel),
                Arc::clone(&gates),
                model::Model::new(SESSIONS_PER_USER as usize, RUNS_PER_SESSION as usize),
            );
            let done = runtime.block_on(case.run(ops));
            operations.fetch_add(done, Ordering::Relaxed);
        });
    eprintln!(
        "state machine on {store}: {} cases, {} operations checked in {:.1} s",
        cases.load(Ordering::Relaxed),
        operations.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    for ((on, reason), count) in case::REFUSALS.lock().unwrap().iter() {
        if on == store {
            eprintln!("  {count:>8}  refused as expected: {reason}");
        }
    }
    runtime.block_on(server.stop());
}

#[test]
fn the_server_follows_the_model_on_sqlite() {
    run_cases("sqlite", None);
}

#[test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
fn the_server_follows_the_model_on_postgres() {
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::postgres::fresh_database("state_machine"));
    run_cases("postgres", Some(url));
}
