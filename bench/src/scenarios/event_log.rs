//! `event_log`: what recording the event log costs — open+close and
//! push+pop on sessiond recording the log, against the same build with the
//! log off (`--no-event-log`), at every number in flight; and `watch`: how
//! soon a change reaches 1 and 64 watchers, how long `VerifyLedger` takes
//! over a million events, and what an event takes on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use sessiond::model::{ClientDescription, EndReason, SessionKind, Timestamp, UserId};
use sessiond::store::NewSession;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::watch_sessions_response::Message;
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, OpenClientlessSessionRequest, VerifyLedgerRequest,
    WatchSessionsRequest,
};
use tokio::sync::mpsc;

use super::Bench;
use super::pairs::Side;
use super::setup::open_sessions;
use crate::Result;
use crate::load::Workload;
use crate::report::{Bound, Figure, Report, Spec, WatchFigures};
use crate::serve::NODE_ID;

/// The watcher counts the delivery latency is measured with.
const WATCHERS: [usize; 2] = [1, 64];
/// Open+close pairs written to measure the ledger's verification (two
/// events each); with `--quick`, [`QUICK_LEDGER_PAIRS`].
const LEDGER_PAIRS: u64 = 500_000;
const QUICK_LEDGER_PAIRS: u64 = 5_000;
/// Writes in flight while filling a ledger.
const FILL_IN_FLIGHT: usize = 256;

/// The log's cost: throughput ≥ 0.90 × without it, at every number in
/// flight.
fn event_log_spec() -> Spec {
    Spec {
        headline: Figure::Throughput,
        targets: vec![(Figure::Throughput, Bound::AtLeast(0.90))],
    }
}

impl Bench {
    /// `event_log`: open+close, then push+pop, without and with the log.
    pub(super) async fn event_log(&self, report: &mut Report) -> Result<()> {
        let without = self
            .start_sessiond_without_event_log(&self.path("event_log_off.db"))
            .await?;
        let with = self.start_sessiond(&self.path("event_log_on.db")).await?;
        let count = self.max_inflight();
        let without_sessions: Arc<[i64]> =
            open_sessions(&without, count, "log", None).await?.into();
        let with_sessions: Arc<[i64]> = open_sessions(&with, count, "log", None).await?.into();
        let variants = [
            ("open_close", Workload::OpenClose, Workload::OpenClose),
            (
                "push_pop",
                Workload::PushPop {
                    sessions: without_sessions,
                },
                Workload::PushPop {
                    sessions: with_sessions,
                },
            ),
        ];
        for (variant, off, on) in variants {
            for &inflight in &self.options.inflight {
                let sides = [
                    Side::Grpc {
                        label: "sessiond, no event log",
                        server: &without,
                        workload: off.clone(),
                    },
                    Side::Grpc {
                        label: "sessiond, event log",
                        server: &with,
                        workload: on.clone(),
                    },
                ];
                let mut measurement = self
                    .pairs("event_log", inflight, &sides, event_log_spec(), Vec::new())
                    .await?;
                measurement.variant = Some(variant);
                report.measurements.push(measurement);
            }
        }
        without.stop().await?;
        with.stop().await?;
        Ok(())
    }

    /// `watch`: delivery latency to 1 and 64 watchers, `VerifyLedger` over a
    /// million events, bytes per event.
    pub(super) async fn watch(&self) -> Result<WatchFigures> {
        let mut figures = WatchFigures::default();
        let server = self.start_sessiond(&self.path("watch.db")).await?;
        for watchers in WATCHERS {
            let latency = self.delivery(&server, watchers).await?;
            println!(
                "   {watchers} watcher(s): change to watcher p50 {:.3} ms, p99 {:.3} ms \
                 ({} deliveries)",
                latency.p50_ms, latency.p99_ms, latency.samples
            );
            figures.latency.push(latency);
        }
        server.stop().await?;

        let began = Instant::now();
        let pairs = if self.options.quick {
            QUICK_LEDGER_PAIRS
        } else {
            LEDGER_PAIRS
        };
        let logged = self.path("ledger.db");
        fill(&logged, pairs, true).await?;
        let plain = self.path("ledger_off.db");
        fill(&plain, pairs, false).await?;
        let events = pairs * 2;
        figures.bytes_per_event =
            (used_bytes(&logged)? as f64 - used_bytes(&plain)? as f64) / events as f64;
        println!(
            "   {pairs} open+close pairs written twice through the store, with and \
             without the log ({:.1} s): {:.0} bytes per event on disk (the difference of \
             the two databases' used pages, over {events} events)",
            began.elapsed().as_secs_f64(),
            figures.bytes_per_event
        );
        let server = self.start_sessiond(&logged).await?;
        let channel = server.connect(1).await?.remove(0);
        let began = Instant::now();
        let verified = AuditServiceClient::new(channel)
            .verify_ledger(VerifyLedgerRequest::default())
            .await
            .map_err(|s| format!("VerifyLedger: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        figures.verify_seconds = began.elapsed().as_secs_f64();
        figures.verified_events = verified.verified_events;
        if !verified.ok {
            return Err(format!(
                "VerifyLedger found revision {} bad: {}",
                verified.first_bad_revision, verified.problem
            )
            .into());
        }
        println!(
            "   VerifyLedger over {} events: {:.2} s",
            verified.verified_events, figures.verify_seconds
        );
        server.stop().await?;
        Ok(figures)
    }

    /// Opens and closes sessions one at a time for the measured window
    /// while `watchers` watch; the latency from each change's time to each
    /// watcher's receipt of it.
    async fn delivery(&self, server: &crate::child::Server, watchers: usize) -> Result<Latency> {
        let channels = server
            .connect(watchers.min(self.options.connections.max(1)))
            .await?;
        let (samples, mut received) = mpsc::unbounded_channel::<u64>();
        let mut tasks = Vec::new();
        for i in 0..watchers {
            let mut client = SessionServiceClient::new(channels[i % channels.len()].clone());
            let mut stream = client
                .watch_sessions(WatchSessionsRequest::default())
                .await
                .map_err(|s| format!("WatchSessions: {:?}: {}", s.code(), s.message()))?
                .into_inner();
            let samples = samples.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(Some(response)) = stream.message().await {
                    if let Some(Message::Event(event)) = response.message
                        && let Some(time) = event.time
                    {
                        let _ = samples.send(micros_since(&time));
                    }
                }
            }));
        }
        drop(samples);
        // Let the watches reach the feed before the first change.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut writer = SessionServiceClient::new(channels[0].clone());
        let end = Instant::now() + self.options.warmup() + self.options.duration();
        while Instant::now() < end {
            let id = writer
                .open_clientless_session(OpenClientlessSessionRequest {
                    user: "watched".to_owned(),
                })
                .await
                .map_err(|s| format!("OpenClientlessSession: {}", s.message()))?
                .into_inner()
                .session_id;
            writer
                .close_clientless_session(CloseClientlessSessionRequest {
                    session_id: id,
                    ..Default::default()
                })
                .await
                .map_err(|s| format!("CloseClientlessSession: {}", s.message()))?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for task in tasks {
            task.abort();
        }
        let mut histogram = Histogram::<u64>::new(3)?;
        while let Ok(micros) = received.try_recv() {
            histogram.record(micros.max(1))?;
        }
        Ok(Latency {
            watchers,
            p50_ms: histogram.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
            samples: histogram.len(),
        })
    }
}

pub use crate::report::Latency;

/// Microseconds from `time` to now.
fn micros_since(time: &prost_types::Timestamp) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let then = Duration::new(
        u64::try_from(time.seconds).unwrap_or(0),
        u32::try_from(time.nanos).unwrap_or(0),
    );
    u64::try_from(now.saturating_sub(then).as_micros()).unwrap_or(u64::MAX)
}

/// Writes `pairs` open+close pairs into a new database at `path` through
/// sessiond's store, recording the log or not.
async fn fill(path: &Path, pairs: u64, record_events: bool) -> Result<()> {
    let url = format!("sqlite://{}", path.display());
    let store = sessiond::store::open_with(&url, record_events).await?;
    let client = ClientDescription::from_store(String::new());
    futures::stream::iter(0..pairs)
        .map(|i| {
            let store = Arc::clone(&store);
            let now = Timestamp::from(SystemTime::now());
            let new = NewSession {
                uuid: uuid::Uuid::now_v7(),
                user: UserId::from_store(format!("user-{}", i % 1000)),
                kind: SessionKind::Clientless,
                client: client.clone(),
                now,
                owner_node: NODE_ID.to_owned(),
                max_open_per_user: None,
            };
            async move {
                let session = store.create_session(new).await?;
                store
                    .end_clientless_session(session.id, EndReason::ClosedByClient, now)
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(FILL_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    drop(store);
    // The store's writer closes its connection once its last handle is
    // gone, on its own thread.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// The bytes of `path`'s pages in use, after its WAL is checkpointed.
fn used_bytes(path: &Path) -> Result<u64> {
    let connection = rusqlite::Connection::open(path)?;
    connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let pragma = |name: &str| -> Result<u64> {
        let value: i64 = connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))?;
        Ok(u64::try_from(value)?)
    };
    Ok((pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?)
}
