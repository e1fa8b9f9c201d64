//! `sessiond-bench`: a closed-loop gRPC benchmark of sessiond.
//!
//! Every scenario runs a *baseline* — a server with the same contract whose
//! handlers return fixed answers, served with sessiond's own tonic transport
//! and TCP settings — and sessiond, alternately, in pairs, and reports the
//! median of the per-pair ratios. Both servers are child processes of this
//! binary (hidden `serve-baseline` / `serve-sessiond` modes) pinned to core
//! 0; the load generator pins itself to core 1. Pairs during which other
//! work on the machine was high are discarded and reported.
//!
//! ```text
//! cargo run --release -p sessiond-bench                      # the full run
//! cargo run -p sessiond-bench -- --quick                     # smoke test (CI)
//! cargo run --release -p sessiond-bench -- --scenario open_close --pairs 3
//! ```
//!
//! Modules:
//! - [`baseline`]: the empty-handler servers of the contract;
//! - [`floor`]: the durable floor's group-committed log;
//! - [`serve`]: the hidden child modes (servers, the direct spawn loop);
//! - [`child`]: starting, pinning, sampling and stopping child processes;
//! - [`credentials`]: the tokens, JWT, policy and TLS certificates of the
//!   `auth_*` and `tls_*` scenarios;
//! - [`machine`]: `/proc` readings (CPU, RSS, machine load) and pinning;
//! - [`load`]: the closed-loop load generator and its operations;
//! - [`store`]: seeding through sessiond's store, and the raw durable write
//!   rates of SQLite itself;
//! - [`pg`]: PostgreSQL for the `pg_*` scenarios (a given server or a
//!   throwaway cluster);
//! - [`scenarios`]: the scenarios and the pair protocol;
//! - [`report`]: the table and the `BENCH` lines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod baseline;
mod child;
mod credentials;
mod floor;
mod load;
mod machine;
mod pg;
mod report;
mod scenarios;
mod serve;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "sessiond-bench",
    version,
    about = "Closed-loop gRPC benchmark of sessiond against an empty-handler baseline.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The benchmark's settings.
    #[command(flatten)]
    options: Options,
    /// A hidden child mode (used by the benchmark itself).
    #[command(subcommand)]
    command: Option<ChildMode>,
}

/// The settings of a benchmark run.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Run only this scenario (repeatable): get_session_user,
    /// get_session_info, open_close, user_context, module_inproc,
    /// module_exec, lookup_scale, memory, pg_get_session_user,
    /// pg_open_close, auth_get_session_user, auth_user_context,
    /// tls_get_session_user, event_log, watch, metrics, soak. Default: all
    /// but soak.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Run every scenario briefly (a smoke test: short sides, one pair,
    /// small tables).
    #[arg(long)]
    pub quick: bool,
    /// Measured seconds per side [default: 3; --quick: 0.3].
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Warm-up seconds before each side's measurement [default: 0.5;
    /// --quick: 0.1].
    #[arg(long, value_name = "SECONDS")]
    pub warmup: Option<f64>,
    /// Pairs (baseline + sessiond) to keep per measurement [default: 5;
    /// --quick: 1].
    #[arg(long)]
    pub pairs: Option<usize>,
    /// The numbers of requests in flight to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub inflight: Vec<usize>,
    /// The most HTTP/2 connections the load is spread over (fewer when
    /// fewer requests are in flight).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Sessions in the table of get_session_user / get_session_info
    /// [default: 10000; --quick: 1000].
    #[arg(long)]
    pub sessions: Option<u64>,
    /// lookup_scale's small table [default: 1000; --quick: 100].
    #[arg(long)]
    pub lookup_small: Option<u64>,
    /// lookup_scale's large table [default: 1000000; --quick: 1000].
    #[arg(long)]
    pub lookup_large: Option<u64>,
    /// Idle clientless sessions the memory scenario opens
    /// [default: 100000; --quick: 2000].
    #[arg(long)]
    pub memory_sessions: Option<u64>,
    /// How long the soak scenario churns [default: 600; --quick: 5].
    #[arg(long, value_name = "SECONDS")]
    pub soak_duration: Option<f64>,
    /// How often the soak scenario samples the server [default: 15;
    /// --quick: 1].
    #[arg(long, value_name = "SECONDS")]
    pub soak_interval: Option<f64>,
    /// sessiond's `--cached-sessions` (sessions kept in memory)
    /// [default: sessiond's].
    #[arg(long)]
    pub cached_sessions: Option<usize>,
    /// A pair is discarded when other work on the machine used more than
    /// this many cores (averaged over a side) beside the server and the load
    /// generator.
    #[arg(long, default_value_t = 0.25, value_name = "CORES")]
    pub max_other_load: f64,
    /// Do not pin the servers and the load generator to separate cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Where the temporary databases go [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl Options {
    fn pick<T>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }

    /// The measured time of one side.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.duration, 3.0, 0.3))
    }

    /// The warm-up before each side.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.warmup, 0.5, 0.1))
    }

    /// The pairs to keep per measurement.
    pub fn pairs(&self) -> usize {
        self.pick(self.pairs, 5, 1).max(1)
    }

    /// The size of the get_session_* table.
    pub fn sessions(&self) -> u64 {
        self.pick(self.sessions, 10_000, 1_000).max(1)
    }

    /// lookup_scale's small and large table sizes.
    pub fn lookup_sizes(&self) -> (u64, u64) {
        (
            self.pick(self.lookup_small, 1_000, 100).max(1),
            self.pick(self.lookup_large, 1_000_000, 1_000).max(1),
        )
    }

    /// How long the soak scenario churns.
    pub fn soak_duration(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.soak_duration, 600.0, 5.0))
    }

    /// How often the soak scenario samples the server.
    pub fn soak_interval(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.soak_interval, 15.0, 1.0).max(0.1))
    }

    /// The sessions the memory scenario opens.
    pub fn memory_sessions(&self) -> u64 {
        self.pick(self.memory_sessions, 100_000, 2_000).max(1)
    }
}

/// The hidden modes in which the benchmark runs its own children.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum ChildMode {
    /// Serve the baseline (fixed answers, no store); print `LISTEN <addr>`.
    #[command(hide = true)]
    ServeBaseline {
        /// The address to bind.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Serve the durable floor: answer writes once a log file at this
        /// path has made them durable.
        #[arg(long)]
        durable_log: Option<PathBuf>,
        /// Serve TLS.
        #[command(flatten)]
        tls: serve::TlsArgs,
    },
    /// Serve sessiond with the in-process `noop` module; print
    /// `LISTEN <addr>`.
    #[command(hide = true)]
    ServeSessiond {
        /// The address to bind.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The database URL (`sqlite://PATH` or `postgres://…`).
        #[arg(long)]
        database: String,
        /// The node id (distinct per replica on one database).
        #[arg(long, default_value = serve::NODE_ID)]
        node_id: String,
        /// The exec-module manifest.
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Serve TLS.
        #[command(flatten)]
        tls: serve::TlsArgs,
        /// Authenticate callers and enforce an access policy.
        #[command(flatten)]
        auth: serve::AuthArgs,
        /// Record no event log (to measure what the log costs).
        #[arg(long)]
        no_event_log: bool,
        /// Metrics and logs.
        #[command(flatten)]
        operations: serve::Operations,
        /// Sessions kept in memory (sessiond's `--cached-sessions`).
        #[arg(long)]
        cached_sessions: Option<usize>,
    },
    /// Spawn a command in a closed loop and print the result as JSON.
    #[command(hide = true)]
    SpawnLoop {
        /// Spawns in flight.
        #[arg(long)]
        inflight: usize,
        /// Warm-up seconds.
        #[arg(long)]
        warmup: f64,
        /// Measured seconds.
        #[arg(long)]
        duration: f64,
        /// The program to spawn.
        #[arg(long, default_value = "true")]
        program: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(ChildMode::ServeBaseline {
            listen,
            durable_log,
            tls,
        }) => serve::baseline(listen, durable_log, tls),
        Some(ChildMode::ServeSessiond {
            listen,
            database,
            node_id,
            modules,
            tls,
            auth,
            no_event_log,
            operations,
            cached_sessions,
        }) => serve::sessiond(
            listen,
            database,
            node_id,
            modules,
            (tls, auth),
            (!no_event_log, cached_sessions),
            operations,
        ),
        Some(ChildMode::SpawnLoop {
            inflight,
            warmup,
            duration,
            program,
        }) => serve::spawn_loop(
            &program,
            inflight,
            Duration::from_secs_f64(warmup),
            Duration::from_secs_f64(duration),
        ),
        None => scenarios::main(cli.options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sessiond-bench: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The error type of the benchmark: a message for the operator.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
