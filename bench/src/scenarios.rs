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
//!   large one). Before its pairs, every session of both tables is looked
//!   up once, so that the pairs measure a long-running server's steady
//!   state; the rate of those first lookups is reported as well;
//! - `pg_get_session_user`, `pg_open_close`: the empty-handler baseline
//!   server against sessiond on PostgreSQL, once with one replica and once
//!   with two replicas on the same database (distinct node ids, both pinned
//!   like the other servers; the load's connections alternate between
//!   them, and the measured side's CPU is the sum of both). PostgreSQL
//!   itself ([`crate::pg`]) runs unpinned on all cores.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, GetSessionUserRequest, OpenClientlessSessionRequest,
    StartSessionRequest,
};
use tonic::transport::Channel;

use crate::child::{self, Server};
use crate::load::{self, Workload};
use crate::machine::{self, CpuUse, Sample};
use crate::pg::Postgres;
use crate::report::{Bound, Figure, Measurement, Memory, Pair, Report, SideResult, Spec};
use crate::serve::{EXEC_MODULE, NODE_ID, NOOP_MODULE};
use crate::{Options, Result, store};

/// Every scenario, in the order they run.
pub const SCENARIOS: [&str; 10] = [
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
];

/// The replica counts of the `pg_*` scenarios.
const PG_REPLICAS: [usize; 2] = [1, 2];

/// The core the servers run on, and the load generator's.
const SERVER_CORE: usize = 0;
const GENERATOR_CORE: usize = 1;

/// Open+close pairs per transaction in the grouped raw SQLite rate: what
/// 64 in flight can put into one commit at most (each has one write
/// outstanding, and an open+close is two writes).
const RAW_GROUP: u32 = 32;

/// Requests in flight while seeding and opening sessions.
const SETUP_CONCURRENCY: usize = 64;

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

/// One side of a pair.
enum Side<'a> {
    /// A load of `workload` against `server`.
    Grpc {
        label: &'static str,
        server: &'a Server,
        workload: Workload,
    },
    /// A load of `workload` spread over the replicas `servers` (their
    /// connections alternate; their CPU is summed), on the database server
    /// `database` (a local pid, whose CPU is not counted as other load).
    Replicas {
        label: &'static str,
        servers: &'a [Server],
        database: Option<u32>,
        workload: Workload,
    },
    /// The direct spawn loop of `program`, as a child.
    SpawnLoop {
        label: &'static str,
        program: String,
    },
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
        self.options.scenarios.is_empty() || self.options.scenarios.iter().any(|s| s == name)
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
        println!("  load average at start: {}", machine::load_average());
    }

    fn max_attempts(&self) -> usize {
        if self.options.quick {
            self.options.pairs()
        } else {
            self.options.pairs() * 2
        }
    }

    async fn start_baseline(&self) -> Result<Server> {
        Server::start(
            "the baseline server",
            &child::args(["serve-baseline"]),
            self.server_core,
        )
        .await
    }

    /// The durable floor: the baseline, answering writes once a log file
    /// `file` (in the run's directory) has made them durable.
    async fn start_floor(&self, file: &str) -> Result<Server> {
        let args: Vec<OsString> = vec![
            "serve-baseline".into(),
            "--durable-log".into(),
            self.path(file).into(),
        ];
        Server::start("the durable floor", &args, self.server_core).await
    }

    async fn start_sessiond(&self, database: &Path) -> Result<Server> {
        self.start_sessiond_on(&format!("sqlite://{}", database.display()), NODE_ID)
            .await
    }

    /// sessiond on the database `url` as node `node_id`.
    async fn start_sessiond_on(&self, url: &str, node_id: &str) -> Result<Server> {
        let args: Vec<OsString> = vec![
            "serve-sessiond".into(),
            "--database".into(),
            url.into(),
            "--node-id".into(),
            node_id.into(),
            "--modules".into(),
            self.manifest.clone().into(),
        ];
        Server::start("sessiond", &args, self.server_core).await
    }

    fn connections(&self, inflight: usize) -> usize {
        self.options.connections.clamp(1, inflight.max(1))
    }

    /// Measures one load side once: `inflight` requests over connections to
    /// `servers`, which alternate (replica 1, replica 2, replica 1, …; at
    /// least one connection each), with the CPU of all of `servers` summed.
    async fn grpc_side(
        &self,
        label: &str,
        servers: &[Server],
        database: Option<u32>,
        workload: &Workload,
        inflight: usize,
    ) -> Result<SideResult> {
        let warmup = self.options.warmup();
        let duration = self.options.duration();
        let per_server = self.connections(inflight).div_ceil(servers.len()).max(1);
        let mut by_server = Vec::with_capacity(servers.len());
        for server in servers {
            by_server.push(server.connect(per_server).await?);
        }
        let channels: Vec<Channel> = (0..per_server)
            .flat_map(|i| by_server.iter().map(move |channels| channels[i].clone()))
            .collect();
        let ops = (0..inflight)
            .map(|i| workload.op(i, channels[i % channels.len()].clone()))
            .collect();
        let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
        let outcome =
            load::run(ops, warmup, duration, || Sample::take_all(&pids, database)).await?;
        let cpu = CpuUse::between(outcome.start_sample, outcome.end_sample, duration);
        Ok(SideResult {
            label: label.to_owned(),
            rps: outcome.rate(),
            p50_us: outcome.percentile_us(50.0),
            p99_us: outcome.percentile_us(99.0),
            cpu_us_per_op: cpu.server_us / outcome.ops.max(1) as f64,
            switches_per_op: cpu.server_switches as f64 / outcome.ops.max(1) as f64,
            server_cores: cpu.server,
            generator_cores: cpu.generator,
            other_cores: cpu.other,
            database_cores: cpu.database,
        })
    }

    /// Measures one side once.
    async fn side(&self, side: &Side<'_>, inflight: usize) -> Result<SideResult> {
        let warmup = self.options.warmup();
        let duration = self.options.duration();
        match side {
            Side::Grpc {
                label,
                server,
                workload,
            } => {
                self.grpc_side(
                    label,
                    std::slice::from_ref(*server),
                    None,
                    workload,
                    inflight,
                )
                .await
            }
            Side::Replicas {
                label,
                servers,
                database,
                workload,
            } => {
                self.grpc_side(label, servers, *database, workload, inflight)
                    .await
            }
            Side::SpawnLoop { label, program } => {
                let args = child::args([
                    "spawn-loop".to_owned(),
                    "--inflight".to_owned(),
                    inflight.to_string(),
                    "--warmup".to_owned(),
                    warmup.as_secs_f64().to_string(),
                    "--duration".to_owned(),
                    duration.as_secs_f64().to_string(),
                    "--program".to_owned(),
                    program.clone(),
                ]);
                let before = Sample::take(None);
                let began = Instant::now();
                let stdout = child::run_to_end("the spawn loop", &args, self.server_core).await?;
                let after = Sample::take(None);
                let whole = CpuUse::between(before, after, began.elapsed());
                let json: serde_json::Value = serde_json::from_str(stdout.trim())
                    .map_err(|e| format!("the spawn loop printed {stdout:?}: {e}"))?;
                let number = |key: &str| {
                    json.get(key)
                        .and_then(serde_json::Value::as_f64)
                        .ok_or_else(|| format!("the spawn loop's output lacks {key}"))
                };
                let ops = number("ops")?;
                let elapsed = number("elapsed_s")?;
                let cpu_us = number("cpu_us")?;
                Ok(SideResult {
                    label: (*label).to_owned(),
                    rps: ops / elapsed,
                    p50_us: number("p50_us")?,
                    p99_us: number("p99_us")?,
                    cpu_us_per_op: cpu_us / ops.max(1.0),
                    switches_per_op: 0.0,
                    server_cores: cpu_us / 1e6 / elapsed,
                    // The child's CPU is in this process's (waited-for
                    // children), so `whole.other` excludes it.
                    generator_cores: 0.0,
                    other_cores: whole.other,
                    database_cores: 0.0,
                })
            }
        }
    }

    /// Runs the pairs of one measurement.
    async fn pairs(
        &self,
        scenario: &str,
        inflight: usize,
        sides: &[Side<'_>],
        spec: Spec,
        extra: Vec<(String, String)>,
    ) -> Result<Measurement> {
        let wanted = self.options.pairs();
        let mut pairs: Vec<Pair> = Vec::new();
        for attempt in 0..self.max_attempts() {
            if pairs.iter().filter(|p| p.kept).count() >= wanted {
                break;
            }
            let mut order: Vec<usize> = (0..sides.len()).collect();
            if attempt % 2 == 1 {
                order.reverse();
            }
            let mut results: Vec<Option<SideResult>> = vec![None; sides.len()];
            for &index in &order {
                results[index] = Some(self.side(&sides[index], inflight).await?);
            }
            let sides_done: Vec<SideResult> = results.into_iter().flatten().collect();
            let mut pair = Pair {
                sides: sides_done,
                kept: true,
            };
            pair.kept = pair.other_cores() <= self.options.max_other_load;
            print_pair(inflight, pairs.len() + 1, &pair, &spec);
            pairs.push(pair);
        }
        let noisy = !pairs.iter().any(|p| p.kept);
        if noisy {
            println!(
                "   no pair of {scenario} inflight={inflight} passed the load rule: using all \
                 of them (noisy)"
            );
        }
        Ok(Measurement {
            scenario: scenario.to_owned(),
            inflight,
            replicas: None,
            spec,
            pairs,
            noisy,
            extra,
        })
    }

    /// `get_session_user` / `get_session_info` over a table of sessions
    /// created through gRPC.
    async fn lookups(&self, name: &str, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self
            .start_sessiond(&self.path(&format!("{name}.db")))
            .await?;
        let count = self.options.sessions();
        let began = Instant::now();
        let ids: Arc<[i64]> = start_sessions(&sessiond, count).await?.into();
        println!(
            "   {count} sessions created through StartSession in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        for &inflight in &self.options.inflight {
            let workload = if name == "get_session_user" {
                Workload::GetSessionUser { ids: ids.clone() }
            } else {
                Workload::GetSessionInfo { ids: ids.clone() }
            };
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload,
                },
            ];
            let spec = lookup_spec(name, inflight);
            let extra = vec![("sessions".to_owned(), count.to_string())];
            report
                .measurements
                .push(self.pairs(name, inflight, &sides, spec, extra).await?);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        Ok(())
    }

    /// `open_close`, with the raw SQLite rates measured first: one
    /// open+close per transaction (the anchor), and [`RAW_GROUP`]; the
    /// durable floor is each pair's third side.
    async fn open_close(&self, report: &mut Report) -> Result<()> {
        let mut raw = Vec::new();
        for (per_transaction, name) in [(1, "raw.db"), (RAW_GROUP, "raw_group.db")] {
            let rate = store::raw_write_rate(
                &self.path(name),
                per_transaction,
                self.options.warmup(),
                self.options.duration(),
            )
            .await?;
            println!(
                "   raw SQLite, {} insert + update by key per transaction: {:.0} pairs/s \
                 ({} pairs), {:.1} us CPU per pair",
                rate.per_transaction, rate.per_second, rate.pairs, rate.cpu_us
            );
            raw.push(rate);
        }
        let (raw, raw_group) = (raw[0], raw[1]);
        report.raw_store = Some(raw);
        report.raw_group = Some(raw_group);
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("open_close.db")).await?;
        let floor = self.start_floor("open_close.log").await?;
        for &inflight in &self.options.inflight {
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: Workload::OpenClose,
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: Workload::OpenClose,
                },
                Side::Grpc {
                    label: "durable floor",
                    server: &floor,
                    workload: Workload::OpenClose,
                },
            ];
            let spec = throughput_spec(inflight, 0.50);
            let mut measurement = self
                .pairs("open_close", inflight, &sides, spec, Vec::new())
                .await?;
            let multiple = measurement.side(1).rps / raw.per_second;
            measurement.extra = vec![
                ("raw_store_tps".to_owned(), format!("{:.0}", raw.per_second)),
                ("store_multiple".to_owned(), format!("{multiple:.2}")),
                (
                    "raw_group_tps".to_owned(),
                    format!("{:.0}", raw_group.per_second),
                ),
                (
                    "raw_group_cpu_us".to_owned(),
                    format!("{:.1}", raw_group.cpu_us),
                ),
            ];
            measurement.extra.extend(measurement.floor_fields());
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        floor.stop().await?;
        Ok(())
    }

    /// `user_context`: push+pop in one session per worker; the durable
    /// floor is each pair's third side.
    async fn user_context(&self, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("user_context.db")).await?;
        let floor = self.start_floor("user_context.log").await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "uc")
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let workload = Workload::PushPop {
                sessions: sessions.clone(),
            };
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "durable floor",
                    server: &floor,
                    workload,
                },
            ];
            let spec = throughput_spec(inflight, 0.50);
            let mut measurement = self
                .pairs("user_context", inflight, &sides, spec, Vec::new())
                .await?;
            measurement.extra = measurement.floor_fields();
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        floor.stop().await?;
        Ok(())
    }

    /// `module_inproc`: open+value of the no-op module, against the baseline
    /// and against one `GetSessionUser` on the same sessiond.
    async fn module_inproc(&self, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("module_inproc.db")).await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "mod")
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let workload = Workload::Module {
                sessions: sessions.clone(),
                module_id: NOOP_MODULE.to_owned(),
            };
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload,
                },
                Side::Grpc {
                    label: "sessiond GetSessionUser",
                    server: &sessiond,
                    workload: Workload::GetSessionUser {
                        ids: sessions.clone(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::P50OverReference,
                targets: if inflight == 1 {
                    vec![(Figure::P50OverReference, Bound::AtMost(3.0))]
                } else {
                    Vec::new()
                },
            };
            let mut measurement = self
                .pairs("module_inproc", inflight, &sides, spec, Vec::new())
                .await?;
            let reference = measurement.side(2);
            measurement.extra = vec![
                (
                    "ref_get_session_user_p50_us".to_owned(),
                    format!("{:.1}", reference.p50_us),
                ),
                (
                    "ref_get_session_user_rps".to_owned(),
                    format!("{:.0}", reference.rps),
                ),
            ];
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        Ok(())
    }

    /// `module_exec`: open+value of an exec module running `true`, against
    /// spawning `true` directly.
    async fn module_exec(&self, report: &mut Report) -> Result<()> {
        let sessiond = self.start_sessiond(&self.path("module_exec.db")).await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "exec")
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let sides = [
                Side::SpawnLoop {
                    label: "spawn",
                    program: "true".to_owned(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: Workload::Module {
                        sessions: sessions.clone(),
                        module_id: EXEC_MODULE.to_owned(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::Throughput,
                targets: vec![(Figure::Throughput, Bound::AtLeast(0.80))],
            };
            report.measurements.push(
                self.pairs("module_exec", inflight, &sides, spec, Vec::new())
                    .await?,
            );
        }
        sessiond.stop().await?;
        Ok(())
    }

    /// `lookup_scale`: `GetSessionUser` on a small and a large table, both
    /// bulk-inserted before sessiond starts.
    async fn lookup_scale(&self, report: &mut Report) -> Result<()> {
        let (small, large) = self.options.lookup_sizes();
        let mut servers = Vec::new();
        for (count, file) in [(small, "lookup_small.db"), (large, "lookup_large.db")] {
            let path = self.path(file);
            let began = Instant::now();
            store::seed_sessions(&path, count).await?;
            println!(
                "   {count} sessions bulk-inserted in {:.1} s",
                began.elapsed().as_secs_f64()
            );
            let began = Instant::now();
            servers.push(self.start_sessiond(&path).await?);
            println!(
                "   sessiond started on them in {:.1} s",
                began.elapsed().as_secs_f64()
            );
        }
        let ids = |count: u64| -> Arc<[i64]> { (1..=i64::try_from(count).unwrap_or(1)).collect() };
        let (small_ids, large_ids) = (ids(small), ids(large));
        // The steady state of a long-running server: every session has been
        // looked up once (the cold lookups' rate is reported too).
        let mut cold_rates = Vec::new();
        for (server, ids) in servers.iter().zip([&small_ids, &large_ids]) {
            let began = Instant::now();
            look_up_all(server, ids).await?;
            let rate = ids.len() as f64 / began.elapsed().as_secs_f64();
            println!(
                "   each of the {} sessions looked up once ({SETUP_CONCURRENCY} in flight): \
                 {rate:.0}/s",
                ids.len()
            );
            cold_rates.push(rate);
        }
        for &inflight in &self.options.inflight {
            let sides = [
                Side::Grpc {
                    label: "small table",
                    server: &servers[0],
                    workload: Workload::GetSessionUser {
                        ids: small_ids.clone(),
                    },
                },
                Side::Grpc {
                    label: "large table",
                    server: &servers[1],
                    workload: Workload::GetSessionUser {
                        ids: large_ids.clone(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::P99,
                targets: vec![(Figure::P99, Bound::AtMost(1.2))],
            };
            let extra = vec![
                ("sessions_small".to_owned(), small.to_string()),
                ("sessions_large".to_owned(), large.to_string()),
                (
                    "first_lookup_rps_small".to_owned(),
                    format!("{:.0}", cold_rates[0]),
                ),
                (
                    "first_lookup_rps_large".to_owned(),
                    format!("{:.0}", cold_rates[1]),
                ),
            ];
            report.measurements.push(
                self.pairs("lookup_scale", inflight, &sides, spec, extra)
                    .await?,
            );
        }
        for server in servers {
            server.kill().await?;
        }
        Ok(())
    }

    /// `memory`: sessiond's RSS before and after opening many idle
    /// clientless sessions.
    async fn memory(&self) -> Result<Memory> {
        let sessiond = self.start_sessiond(&self.path("memory.db")).await?;
        let count = self.options.memory_sessions();
        // Warm up the connections, the allocator and the store with
        // open+close cycles, which leave nothing open.
        let warmup = (count / 50).max(200);
        open_close_cycles(&sessiond, warmup).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before_kib = machine::rss_kib(sessiond.pid())?;
        let began = Instant::now();
        let opened = open_sessions(&sessiond, usize::try_from(count)?, "mem").await?;
        let open_rate = opened.len() as f64 / began.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after_kib = machine::rss_kib(sessiond.pid())?;
        println!(
            "   {count} clientless sessions opened at {open_rate:.0}/s; RSS {rss_before_kib} KiB \
             -> {rss_after_kib} KiB"
        );
        // Its sessions are thrown away: no graceful close of them all.
        sessiond.kill().await?;
        Ok(Memory {
            sessions: count,
            rss_before_kib,
            rss_after_kib,
            open_rate,
        })
    }

    /// `pg_get_session_user` / `pg_open_close`: the SQLite scenario's
    /// workload, spec and baseline, against sessiond on a fresh PostgreSQL
    /// database, with one replica and then two.
    async fn pg(&self, name: &str, postgres: &Postgres, report: &mut Report) -> Result<()> {
        for replicas in PG_REPLICAS {
            let database = postgres.fresh_database(&format!("{name}_{replicas}"))?;
            let baseline = self.start_baseline().await?;
            let mut servers = Vec::with_capacity(replicas);
            for replica in 1..=replicas {
                servers.push(
                    self.start_sessiond_on(&database, &format!("{NODE_ID}-{replica}"))
                        .await?,
                );
            }
            let mut extra = Vec::new();
            let workload = if name == "pg_get_session_user" {
                // The sessions are created evenly over the replicas.
                let count = self.options.sessions();
                let began = Instant::now();
                let mut ids = Vec::new();
                for (index, server) in servers.iter().enumerate() {
                    let share = count / replicas as u64
                        + u64::from((index as u64) < count % replicas as u64);
                    ids.extend(start_sessions(server, share).await?);
                }
                println!(
                    "   {replicas} replica(s): {count} sessions created through StartSession in \
                     {:.1} s",
                    began.elapsed().as_secs_f64()
                );
                extra.push(("sessions".to_owned(), count.to_string()));
                Workload::GetSessionUser { ids: ids.into() }
            } else {
                println!("   {replicas} replica(s)");
                Workload::OpenClose
            };
            for &inflight in &self.options.inflight {
                let sides = [
                    Side::Replicas {
                        label: "baseline",
                        servers: std::slice::from_ref(&baseline),
                        database: postgres.postmaster_pid(),
                        workload: workload.clone(),
                    },
                    Side::Replicas {
                        label: "sessiond",
                        servers: &servers,
                        database: postgres.postmaster_pid(),
                        workload: workload.clone(),
                    },
                ];
                let spec = if name == "pg_get_session_user" {
                    lookup_spec("get_session_user", inflight)
                } else {
                    throughput_spec(inflight, 0.50)
                };
                let mut measurement = self
                    .pairs(name, inflight, &sides, spec, extra.clone())
                    .await?;
                measurement.replicas = Some(replicas);
                report.measurements.push(measurement);
            }
            baseline.stop().await?;
            for server in servers {
                server.stop().await?;
            }
        }
        Ok(())
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

fn print_pair(inflight: usize, number: usize, pair: &Pair, spec: &Spec) {
    let sides: Vec<String> = pair
        .sides
        .iter()
        .map(|s| {
            format!(
                "{} {:.0}/s p50 {:.1} p99 {:.1} us, cpu {:.1} us/op, {:.1} switches/op ({:.2} \
                 cores, generator {:.2}{})",
                s.label,
                s.rps,
                s.p50_us,
                s.p99_us,
                s.cpu_us_per_op,
                s.switches_per_op,
                s.server_cores,
                s.generator_cores,
                if s.database_cores > 0.0 {
                    format!(", postgres {:.2}", s.database_cores)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    println!(
        "   inflight={inflight} pair {number}: {} | {} {:.3} | other load {:.2} cores: {}",
        sides.join(" | "),
        spec.headline.describe(),
        spec.headline.of(pair),
        pair.other_cores(),
        if pair.kept { "kept" } else { "DISCARDED" }
    );
}

async fn client(server: &Server) -> Result<SessionServiceClient<Channel>> {
    let channel = server.connect(1).await?.remove(0);
    Ok(SessionServiceClient::new(channel))
}

/// Creates `count` interactive sessions through `StartSession`.
async fn start_sessions(server: &Server, count: u64) -> Result<Vec<i64>> {
    let client = client(server).await?;
    let ids: Vec<i64> = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move {
                client
                    .start_session(StartSessionRequest {
                        user: format!("user-{}", i % 1000),
                        client: "sessiond-bench".to_owned(),
                    })
                    .await
                    .map(|r| r.into_inner().session_id)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|s| format!("StartSession: {:?}: {}", s.code(), s.message()))?;
    Ok(ids)
}

/// Calls `GetSessionUser` once for every session of `ids`.
async fn look_up_all(server: &Server, ids: &[i64]) -> Result<()> {
    let client = client(server).await?;
    futures::stream::iter(ids.iter().copied())
        .map(|session_id| {
            let mut client = client.clone();
            async move {
                client
                    .get_session_user(GetSessionUserRequest { session_id })
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|s| format!("GetSessionUser: {:?}: {}", s.code(), s.message()))?;
    Ok(())
}

/// Opens `count` clientless sessions (users `<prefix>-0…999`).
async fn open_sessions(server: &Server, count: usize, prefix: &str) -> Result<Vec<i64>> {
    let client = client(server).await?;
    let ids: Vec<i64> = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            let user = format!("{prefix}-{}", i % 1000);
            async move {
                client
                    .open_clientless_session(OpenClientlessSessionRequest { user })
                    .await
                    .map(|r| r.into_inner().session_id)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|s| format!("OpenClientlessSession: {:?}: {}", s.code(), s.message()))?;
    Ok(ids)
}

/// Opens and closes `count` clientless sessions.
async fn open_close_cycles(server: &Server, count: u64) -> Result<()> {
    let client = client(server).await?;
    futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move {
                let id = client
                    .open_clientless_session(OpenClientlessSessionRequest {
                        user: format!("warm-{}", i % 1000),
                    })
                    .await?
                    .into_inner()
                    .session_id;
                client
                    .close_clientless_session(CloseClientlessSessionRequest {
                        session_id: id,
                        grace: None,
                    })
                    .await?;
                Ok::<_, tonic::Status>(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|s| format!("warm-up open+close: {:?}: {}", s.code(), s.message()))?;
    Ok(())
}
