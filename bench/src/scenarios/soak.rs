//! `soak`: sessiond under steady churn for a long time (`--soak-duration`,
//! default 10 minutes), its resident memory, open file descriptors,
//! threads and database size sampled every `--soak-interval` (default
//! 15 s). Each worker loops: open a clientless session, look its user up,
//! push a user context, run the in-process module and read its value
//! (every 16th cycle the exec module too), pop, close. Only run when named
//! (`--scenario soak`), never as part of the full run.
//!
//! What it shows: whether anything grows with the number of sessions
//! served once the caches are full (`--cached-sessions` bounds them).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, GetReturnValueRequest, GetSessionUserRequest,
    OpenClientlessSessionRequest, OpenModuleRequest, PopUserContextRequest, PushUserContextRequest,
    RunState,
};
use tonic::transport::Channel;

use super::Bench;
use crate::Result;
use crate::machine;
use crate::serve::{EXEC_MODULE, NOOP_MODULE};

/// Workers, each with one cycle in flight.
const WORKERS: usize = 16;
/// Every this many cycles a worker runs the exec module too.
const EXEC_EVERY: u64 = 16;

/// One reading of the server process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Seconds since the churn began.
    at_s: f64,
    /// Sessions opened (and closed) so far.
    sessions: u64,
    /// Cycles per second since the previous sample.
    rate: f64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
    /// The database file and its WAL.
    db_kib: u64,
}

impl Bench {
    /// `soak`: churn for `--soak-duration`, sampling every
    /// `--soak-interval`; prints the series and a summary.
    pub(super) async fn soak(&self) -> Result<()> {
        let database = self.path("soak.db");
        let sessiond = self.start_sessiond(&database).await?;
        let (duration, interval) = (self.options.soak_duration(), self.options.soak_interval());
        println!(
            "   {WORKERS} workers, each looping open, GetSessionUser, push, run {NOOP_MODULE} \
             (+ {EXEC_MODULE} every {EXEC_EVERY}th cycle), pop, close; {:.0} s, sampled every \
             {:.0} s",
            duration.as_secs_f64(),
            interval.as_secs_f64()
        );
        let channels = sessiond.connect(4).await?;
        let cycles = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let channel = channels[worker % channels.len()].clone();
            let (cycles, stop) = (Arc::clone(&cycles), Arc::clone(&stop));
            workers.spawn(async move {
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    cycle(&channel, worker, n).await?;
                    n += 1;
                    cycles.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, String>(())
            });
        }
        let began = Instant::now();
        let mut samples = vec![sample(sessiond.pid(), &database, 0.0, 0, 0.0)?];
        print_header();
        print_row(&samples[0]);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        while began.elapsed() < duration {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(done) = workers.join_next() => {
                    stop.store(true, Ordering::Relaxed);
                    done?.map_err(|e| format!("soak worker: {e}"))?;
                    return Err("a soak worker stopped early".into());
                }
            }
            let previous = *samples.last().expect("a first sample");
            let at_s = began.elapsed().as_secs_f64();
            let sessions = cycles.load(Ordering::Relaxed);
            let rate = (sessions - previous.sessions) as f64 / (at_s - previous.at_s);
            let next = sample(sessiond.pid(), &database, at_s, sessions, rate)?;
            print_row(&next);
            samples.push(next);
        }
        stop.store(true, Ordering::Relaxed);
        while let Some(done) = workers.join_next().await {
            done?.map_err(|e| format!("soak worker: {e}"))?;
        }
        sessiond.stop().await?;
        print_summary(&samples);
        Ok(())
    }
}

/// One cycle of a worker; `n` counts its cycles.
async fn cycle(channel: &Channel, worker: usize, n: u64) -> Result<(), String> {
    let mut sessions = SessionServiceClient::new(channel.clone());
    let mut contexts = UserContextServiceClient::new(channel.clone());
    let failed = |what: &'static str| move |s: tonic::Status| format!("{what}: {s:?}");
    let session_id = sessions
        .open_clientless_session(OpenClientlessSessionRequest {
            user: format!("soak-{worker}-{}", n % 64),
        })
        .await
        .map_err(failed("OpenClientlessSession"))?
        .into_inner()
        .session_id;
    sessions
        .get_session_user(GetSessionUserRequest { session_id })
        .await
        .map_err(failed("GetSessionUser"))?;
    let scope_id = contexts
        .push_user_context(PushUserContextRequest {
            session_id,
            user: "soak-actor".to_owned(),
        })
        .await
        .map_err(failed("PushUserContext"))?
        .into_inner()
        .scope_id;
    let mut modules = vec![NOOP_MODULE];
    if n.is_multiple_of(EXEC_EVERY) {
        modules.push(EXEC_MODULE);
    }
    for module_id in modules {
        sessions
            .open_module(OpenModuleRequest {
                session_id,
                module_id: module_id.to_owned(),
                parameters: None,
            })
            .await
            .map_err(failed("OpenModule"))?;
        let run = sessions
            .get_return_value(GetReturnValueRequest {
                session_id,
                module_id: module_id.to_owned(),
                timeout: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
            })
            .await
            .map_err(failed("GetReturnValue"))?
            .into_inner();
        if run.state() != RunState::Succeeded {
            return Err(format!("{module_id} ended {:?}", run.state()));
        }
    }
    contexts
        .pop_user_context(PopUserContextRequest {
            session_id,
            scope_id,
        })
        .await
        .map_err(failed("PopUserContext"))?;
    sessions
        .close_clientless_session(CloseClientlessSessionRequest {
            session_id,
            grace: None,
        })
        .await
        .map_err(failed("CloseClientlessSession"))?;
    Ok(())
}

/// Reads the server process `pid` and the database at `database`.
fn sample(pid: u32, database: &Path, at_s: f64, sessions: u64, rate: f64) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .ok_or("no Threads in /proc/PID/status")?
        .trim()
        .parse()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    let file_kib = |suffix: &str| {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len() / 1024)
    };
    Ok(Sample {
        at_s,
        sessions,
        rate,
        rss_kib: machine::rss_kib(pid)?,
        fds,
        threads,
        db_kib: file_kib("") + file_kib("-wal"),
    })
}

fn print_header() {
    println!(
        "   {:>7} {:>10} {:>9} {:>10} {:>5} {:>7} {:>10}",
        "t_s", "sessions", "cycles/s", "rss_kib", "fds", "threads", "db_kib"
    );
}

fn print_row(s: &Sample) {
    println!(
        "   {:>7.0} {:>10} {:>9.0} {:>10} {:>5} {:>7} {:>10}",
        s.at_s, s.sessions, s.rate, s.rss_kib, s.fds, s.threads, s.db_kib
    );
}

/// The first sample, the first after warm-up (the first third of the run,
/// long enough to fill the caches at the default `--cached-sessions` at
/// this machine's rates), the last, and the spread of RSS, fds and threads
/// after warm-up.
fn print_summary(samples: &[Sample]) {
    let last = samples.last().expect("a first sample");
    let warm = samples
        .iter()
        .find(|s| s.at_s >= last.at_s / 3.0)
        .unwrap_or(last);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= warm.at_s).collect();
    let range = |f: fn(&Sample) -> u64| {
        let values = after.iter().map(|s| f(s));
        (values.clone().min().unwrap_or(0), values.max().unwrap_or(0))
    };
    let (rss_min, rss_max) = range(|s| s.rss_kib);
    let (fds_min, fds_max) = range(|s| s.fds as u64);
    let (threads_min, threads_max) = range(|s| s.threads);
    println!(
        "   summary: {} sessions in {:.0} s ({:.0}/s); RSS {} KiB at start, {} KiB after warm-up \
         (t={:.0} s, {} sessions), {} KiB at the end; after warm-up RSS {rss_min}..{rss_max} KiB \
         (+{:.1} %), fds {fds_min}..{fds_max}, threads {threads_min}..{threads_max}; database \
         {} KiB -> {} KiB",
        last.sessions,
        last.at_s,
        last.sessions as f64 / last.at_s.max(1e-9),
        samples[0].rss_kib,
        warm.rss_kib,
        warm.at_s,
        warm.sessions,
        last.rss_kib,
        (rss_max as f64 / rss_min.max(1) as f64 - 1.0) * 100.0,
        warm.db_kib,
        last.db_kib,
    );
    println!(
        "BENCH soak sessions={} seconds={:.0} rss_start_kib={} rss_warm_kib={} rss_end_kib={} \
         rss_max_after_warmup_kib={rss_max} fds_max={fds_max} threads_max={threads_max}",
        last.sessions, last.at_s, samples[0].rss_kib, warm.rss_kib, last.rss_kib
    );
}
