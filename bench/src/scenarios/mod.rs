//! The scenarios and the pair protocol.
//!
//! A *measurement* is one scenario at one number in flight. It runs in
//! pairs: each pair measures every side once (baseline, then sessiond, and
//! for `module_inproc` a third, reference side), alternating the order from
//! pair to pair. A pair whose sides saw more than `--max-other-load` cores
//! of other work is discarded and another is run, up to twice the pairs
//! asked for; if none passes, all are used and the measurement is marked
//! noisy. The medians of the kept pairs' ratios are reported.
//!
//! Which side is the baseline, per scenario:
//! - `get_session_user`, `get_session_info`, `open_close`, `user_context`,
//!   `module_inproc`: the empty-handler baseline server;
//! - `module_exec`: spawning `true` directly in a closed loop (a child
//!   process pinned like the servers);
//! - `lookup_scale`: sessiond with the small table (the subject has the
//!   large one; each keeps its whole table in memory, `--cached-sessions`). Before its pairs, every session of both tables is looked
//!   up once, so that the pairs measure a long-running server's steady
//!   state; the rate of those first lookups is reported as well;
//! - `pg_get_session_user`, `pg_open_close`: the empty-handler baseline
//!   server against sessiond on PostgreSQL, once with one replica and once
//!   with two replicas on the same database (distinct node ids, both pinned
//!   like the other servers; the load's connections alternate between
//!   them, and the measured side's CPU is the sum of both). PostgreSQL
//!   itself ([`crate::pg`]) runs unpinned on all cores;
//! - `auth_get_session_user`, `auth_user_context`: sessiond without
//!   authentication against sessiond with it (static tokens and JWTs
//!   accepted, an access policy enforced), each on its own database; one
//!   measurement with every call carrying a static token, one with a JWT;
//! - `tls_get_session_user`: the baseline against the baseline over TLS
//!   (TLS's own cost), and the baseline over TLS against sessiond over TLS;
//! - `event_log`: sessiond with the event log off (the same build) against
//!   sessiond recording it, for open+close and push+pop;
//! - `metrics`: sessiond without metrics (no admin listener; the same
//!   build) against sessiond with them, for `GetSessionUser`;
//! - `watch` is not a pair: the latency from a change to 1 and 64
//!   watchers, `VerifyLedger` over a million events, bytes per event;
//! - `soak` is not a pair either: sessiond's memory, file descriptors,
//!   threads and database size through a long churn.
//!
//! # Layout
//! - this file: the list of scenarios, the run, its header, and the specs
//!   several scenarios share;
//! - [`pairs`]: the sides of a pair and the pair protocol;
//! - [`setup`]: starting the servers, and the gRPC calls that fill them
//!   before a measurement;
//! - one file per scenario: [`lookups`] (`get_session_user`,
//!   `get_session_info`), [`open_close`], [`user_context`],
//!   [`module_inproc`], [`module_exec`], [`lookup_scale`], [`memory`],
//!   [`postgres`] (`pg_get_session_user`, `pg_open_close`), [`auth`]
//!   (`auth_get_session_user`, `auth_user_context`), [`tls`]
//!   (`tls_get_session_user`), [`event_log`] (`event_log`, `watch`),
//!   [`metrics`] and [`soak`] (only when named: ten minutes of churn).
//!
//! Every sessiond runs as deployed: metrics counted (an admin listener on
//! an ephemeral port) and the log at `info`, written to a file of the run's
//! directory — but in `metrics`, whose one side has no metrics.

mod auth;
mod event_log;
mod lookup_scale;
mod lookups;
mod memory;
mod metrics;
mod module_exec;
mod module_inproc;
mod open_close;
mod pairs;
mod postgres;
mod setup;
mod soak;
mod tls;
mod user_context;

use std::path::PathBuf;
use std::time::Instant;

use crate::machine;
use crate::pg::Postgres;
use crate::report::{Bound, Figure, Report, Spec};
use crate::serve::EXEC_MODULE;
use crate::{Options, Result};

/// Every scenario, in the order they run.
/// `soak` runs only when named.
pub const SCENARIOS: [&str; 17] = [
    "get_session_user",
    "get_session_info",
    "open_close",
    "user_context",
    "module_inproc",
    "module_exec",
    "lookup_scale",
    "memory",
    "pg_get_session_user",
    "pg_open_close",
    "auth_get_session_user",
    "auth_user_context",
    "tls_get_session_user",
    "event_log",
    "watch",
    "metrics",
    "soak",
];

/// The core the servers run on, and the load generator's.
const SERVER_CORE: usize = 0;
const GENERATOR_CORE: usize = 1;

/// Runs the benchmark: pins itself, runs the selected scenarios, prints the
/// table and the `BENCH` lines.
///
/// # Errors
/// An unknown scenario, a server that fails to start, any failed request.
pub fn main(options: Options) -> Result<()> {
    for name in &options.scenarios {
        if !SCENARIOS.contains(&name.as_str()) {
            return Err(format!(
                "unknown scenario {name:?}; the scenarios are {}",
                SCENARIOS.join(", ")
            )
            .into());
        }
    }
    if options.inflight.is_empty() || options.inflight.contains(&0) {
        return Err("--inflight needs numbers > 0".into());
    }
    let cores = machine::cores();
    let server_core = if options.no_pin {
        None
    } else if cores < 2 {
        eprintln!("only {cores} core available: not pinning");
        None
    } else {
        machine::pin_self(GENERATOR_CORE)?;
        Some(SERVER_CORE)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bench = Bench::new(options, server_core, cores)?;
        bench.run().await
    })
}

/// One run of the benchmark.
struct Bench {
    options: Options,
    server_core: Option<usize>,
    cores: usize,
    /// Databases and the manifest; removed at the end.
    dir: tempfile::TempDir,
    /// The exec-module manifest.
    manifest: PathBuf,
}

impl Bench {
    fn new(options: Options, server_core: Option<usize>, cores: usize) -> Result<Self> {
        let dir = match &options.dir {
            Some(parent) => tempfile::Builder::new()
                .prefix("sessiond-bench-")
                .tempdir_in(parent)?,
            None => tempfile::Builder::new()
                .prefix("sessiond-bench-")
                .tempdir()?,
        };
        let manifest = dir.path().join("modules.toml");
        std::fs::write(
            &manifest,
            format!("[modules.\"{EXEC_MODULE}\"]\ncommand = [\"true\"]\ntimeout = \"30s\"\n"),
        )?;
        Ok(Self {
            options,
            server_core,
            cores,
            dir,
            manifest,
        })
    }

    fn selected(&self, name: &str) -> bool {
        (self.options.scenarios.is_empty() && name != "soak")
            || self.options.scenarios.iter().any(|s| s == name)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    async fn run(&self) -> Result<()> {
        self.print_header();
        let began = Instant::now();
        let mut report = Report::default();
        // Found or started once, before the first pg_* scenario; a started
        // cluster is stopped when this is dropped, on error too.
        let mut postgres: Option<std::result::Result<Postgres, String>> = None;
        for name in SCENARIOS {
            if !self.selected(name) {
                continue;
            }
            println!("\n== {name}");
            let scenario_began = Instant::now();
            match name {
                "get_session_user" | "get_session_info" => {
                    self.lookups(name, &mut report).await?;
                }
                "open_close" => self.open_close(&mut report).await?,
                "user_context" => self.user_context(&mut report).await?,
                "module_inproc" => self.module_inproc(&mut report).await?,
                "module_exec" => self.module_exec(&mut report).await?,
                "lookup_scale" => self.lookup_scale(&mut report).await?,
                "memory" => report.memory = Some(self.memory().await?),
                "pg_get_session_user" | "pg_open_close" => {
                    let postgres = postgres.get_or_insert_with(|| {
                        let began = Instant::now();
                        let found = Postgres::find_or_start();
                        if let Ok(found) = &found {
                            println!(
                                "   PostgreSQL: {} ({}; {:.1} s); unpinned, on the same {} \
                                 cores as the servers and the load generator",
                                found.origin,
                                if found.is_throwaway() {
                                    "started for this run, stopped at its end"
                                } else {
                                    "given"
                                },
                                began.elapsed().as_secs_f64(),
                                self.cores
                            );
                        }
                        found
                    });
                    match postgres {
                        Ok(postgres) => self.pg(name, postgres, &mut report).await?,
                        Err(problem) => println!("   skipped: no PostgreSQL ({})", problem.trim()),
                    }
                }
                "auth_get_session_user" | "auth_user_context" => {
                    self.auth(name, &mut report).await?;
                }
                "tls_get_session_user" => self.tls_get_session_user(&mut report).await?,
                "event_log" => self.event_log(&mut report).await?,
                "watch" => report.watch = Some(self.watch().await?),
                "metrics" => self.metrics(&mut report).await?,
                "soak" => self.soak().await?,
                _ => unreachable!("validated above"),
            }
            println!(
                "   ({name} took {:.1} s)",
                scenario_began.elapsed().as_secs_f64()
            );
        }
        println!(
            "\n== results (medians over kept pairs; total {:.1} s; load average now {})\n",
            began.elapsed().as_secs_f64(),
            machine::load_average()
        );
        print!("{}", report.table());
        println!();
        for line in report.bench_lines() {
            println!("{line}");
        }
        Ok(())
    }

    fn print_header(&self) {
        let o = &self.options;
        println!("sessiond-bench");
        println!(
            "  build: {}; cores: {}; pinning: {}",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            self.cores,
            match self.server_core {
                Some(core) => format!(
                    "servers on core {core} (taskset -c {core}), load generator on core \
                     {GENERATOR_CORE}"
                ),
                None => "none".to_owned(),
            }
        );
        println!(
            "  per side: {:.1} s warm-up + {:.1} s measured; {} pair(s) kept per measurement; \
             in flight: {:?}; up to {} HTTP/2 connections",
            o.warmup().as_secs_f64(),
            o.duration().as_secs_f64(),
            o.pairs(),
            o.inflight,
            o.connections
        );
        println!(
            "  load rule: a pair is discarded when, during one of its sides, other work on the \
             machine (busy time of /proc/stat minus the server's and the load generator's CPU \
             time) used more than {:.2} cores; up to {} pairs are run to keep {}",
            o.max_other_load,
            self.max_attempts(),
            o.pairs()
        );
        println!(
            "  ratio: sessiond / baseline, the figure its target is stated in (throughput at \
             many in flight, p50 latency at 1); module_inproc: open+value p50 / GetSessionUser \
             p50; module_exec: rate / direct spawn rate; lookup_scale: p99 large / p99 small"
        );
        println!(
            "  an operation is one RPC, or the pair open+close, push+pop, open+value; cpu us/op \
             is the server's CPU time per operation (with its child processes), sw/op its \
             threads' context switches per operation"
        );
        if self.selected("open_close") || self.selected("user_context") {
            println!(
                "  durable floor (open_close, user_context): a third side, the baseline \
                 answering each write only once a group-committed fsync covers a 100-byte \
                 record of it (one thread, a pre-written 16 MiB log); floor_ratio = floor / \
                 baseline, of_floor = sessiond / floor"
            );
        }
        if self.selected("pg_get_session_user") || self.selected("pg_open_close") {
            println!(
                "  pg_*: sessiond on PostgreSQL with 1 and with 2 replicas (both pinned like the \
                 servers; the load's connections alternate between them; cpu us/op and sw/op \
                 are their sum); PostgreSQL runs unpinned on the same {} cores, and when this \
                 run started it, its CPU is shown as `postgres` and not counted as other load",
                self.cores
            );
        }
        if self.selected("auth_get_session_user") || self.selected("auth_user_context") {
            println!(
                "  auth_*: the baseline side is sessiond without authentication, the measured \
                 side sessiond with it (static tokens and JWTs accepted, an access policy \
                 enforced), every call carrying `authorization: Bearer` with a static token \
                 (variant token) or a JWT (variant jwt); ratio: throughput at every number in \
                 flight"
            );
        }
        if self.selected("tls_get_session_user") {
            println!(
                "  tls_get_session_user: variant baseline = the baseline over TLS / over plain \
                 TCP (TLS's own cost); variant sessiond = sessiond over TLS / the baseline over \
                 TLS; no target"
            );
        }
        println!("  load average at start: {}", machine::load_average());
    }

    fn max_attempts(&self) -> usize {
        if self.options.quick {
            self.options.pairs()
        } else {
            self.options.pairs() * 2
        }
    }

    fn max_inflight(&self) -> usize {
        self.options.inflight.iter().copied().max().unwrap_or(1)
    }
}

/// The spec of `get_session_user` / `get_session_info`.
fn lookup_spec(name: &str, inflight: usize) -> Spec {
    let many = inflight > 1;
    let targets = match (name, inflight) {
        ("get_session_user", 64) => vec![
            (Figure::Throughput, Bound::AtLeast(0.90)),
            (Figure::P99, Bound::AtMost(1.2)),
        ],
        ("get_session_user", 1) => vec![(Figure::P50, Bound::AtMost(1.1))],
        ("get_session_info", 64) => vec![(Figure::Throughput, Bound::AtLeast(0.80))],
        _ => Vec::new(),
    };
    Spec {
        headline: if many {
            Figure::Throughput
        } else {
            Figure::P50
        },
        targets,
    }
}

/// Throughput ≥ `target` × baseline at 64 in flight; the p50 ratio at 1.
fn throughput_spec(inflight: usize, target: f64) -> Spec {
    if inflight > 1 {
        Spec {
            headline: Figure::Throughput,
            targets: if inflight == 64 {
                vec![(Figure::Throughput, Bound::AtLeast(target))]
            } else {
                Vec::new()
            },
        }
    } else {
        Spec {
            headline: Figure::P50,
            targets: Vec::new(),
        }
    }
}

/// The `auth_*` scenarios: throughput ≥ 0.90 × sessiond without
/// authentication, at every number in flight.
fn auth_spec() -> Spec {
    Spec {
        headline: Figure::Throughput,
        targets: vec![(Figure::Throughput, Bound::AtLeast(0.90))],
    }
}

/// A cost reported without a bound: the throughput ratio at many in
/// flight, the p50 ratio at 1.
fn cost_spec(inflight: usize) -> Spec {
    Spec {
        headline: if inflight > 1 {
            Figure::Throughput
        } else {
            Figure::P50
        },
        targets: Vec::new(),
    }
}
