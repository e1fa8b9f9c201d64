//! Prometheus metrics, in one explicit registry per server: the gRPC
//! calls ([`grpc`], named as go-grpc-prometheus names them, so that the
//! dashboards people already have work), and sessiond's own (`sessiond_*`).
//!
//! Every series a label set can take exists from the start, at zero, so
//! that `rate()` sees its first increase.
//!
//! Counters and histograms are moved where things happen: the calls by
//! [`grpc::GrpcMetricsLayer`], commits, ended sessions and concluded runs by
//! [`crate::telemetry`]. Gauges of the whole database (sessions not ended,
//! the log's revision, the replicas' leases) are read from the store at
//! each scrape ([`Metrics::refresh`]), so that every replica reports the
//! same numbers, right after a restart too; those of this process (modules
//! running, watches) are read from it at each scrape as well.

pub mod grpc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::{EndReason, RunState, SessionKind, Timestamp};
use crate::store::StatsStore;
use crate::store::names::{kind_name, reason_name, run_state_name};

/// Buckets of durations in seconds, from 100µs (a read) to 10s.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of module run durations in seconds, from 10ms to 1h.
const RUN_SECONDS_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Buckets of writes per committed transaction.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A label set of one label, `kind`, `reason`, `state` or `replica`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabel {
    replica: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The gRPC calls.
    pub grpc: grpc::GrpcMetrics,
    open_sessions: Family<KindLabel, Gauge>,
    sessions_ended: Family<ReasonLabel, Counter>,
    runs_running: Gauge,
    runs: Family<StateLabel, Counter>,
    run_seconds: HistogramFamily<StateLabel>,
    commit_seconds: Histogram,
    commit_writes: Histogram,
    watchers: Gauge,
    event_revision: Gauge,
    lease_age: Family<ReplicaLabel, Gauge<f64, AtomicU64>>,
    scrape_errors: Counter,
    /// Gauges of this process, kept by the parts that own them.
    pub local: LocalGauges,
}

impl Metrics {
    /// A registry with every metric, at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let grpc = grpc::GrpcMetrics::register(&mut registry);
        let open_sessions = Family::<KindLabel, Gauge>::default();
        registry.register(
            "sessiond_open_sessions",
            "Sessions that have not ended (open or closing), by kind, in the whole database",
            open_sessions.clone(),
        );
        for kind in [SessionKind::Interactive, SessionKind::Clientless] {
            open_sessions.get_or_create_owned(&KindLabel {
                kind: kind_name(kind),
            });
        }
        let sessions_ended = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "sessiond_sessions_ended",
            "Sessions this server ended, by end reason",
            sessions_ended.clone(),
        );
        for reason in [
            EndReason::ClosedByClient,
            EndReason::IdleTimeout,
            EndReason::MaxLifetime,
            EndReason::ServerShutdown,
            EndReason::ServerRestart,
            EndReason::NodeLost,
        ] {
            sessions_ended.get_or_create_owned(&ReasonLabel {
                reason: reason_name(reason),
            });
        }
        let runs_running = Gauge::default();
        registry.register(
            "sessiond_module_runs_running",
            "Module runs running in this server",
            runs_running.clone(),
        );
        let runs = Family::<StateLabel, Counter>::default();
        registry.register(
            "sessiond_module_runs",
            "Module runs this server concluded, by state (succeeded, failed, cancelled)",
            runs.clone(),
        );
        let run_seconds: HistogramFamily<StateLabel> =
            Family::new_with_constructor(|| Histogram::new(RUN_SECONDS_BUCKETS));
        registry.register(
            "sessiond_module_run_duration_seconds",
            "How long module runs took, from start to conclusion, by state",
            run_seconds.clone(),
        );
        for state in [RunState::Succeeded, RunState::Failed, RunState::Cancelled] {
            let label = StateLabel {
                state: run_state_name(state),
            };
            runs.get_or_create_owned(&label);
            run_seconds.get_or_create_owned(&label);
        }
        let commit_seconds = Histogram::new(SECONDS_BUCKETS);
        registry.register(
            "sessiond_store_commit_duration_seconds",
            "How long the store's write transactions took, from begin to durable commit",
            commit_seconds.clone(),
        );
        let commit_writes = Histogram::new(BATCH_BUCKETS);
        registry.register(
            "sessiond_store_commit_batch_size",
            "Writes per committed transaction (writes arriving together share one)",
            commit_writes.clone(),
        );
        let watchers = Gauge::default();
        registry.register(
            "sessiond_watchers",
            "WatchSessions streams open on this server",
            watchers.clone(),
        );
        let event_revision = Gauge::default();
        registry.register(
            "sessiond_event_revision",
            "The revision of the event log's last event",
            event_revision.clone(),
        );
        let lease_age = Family::<ReplicaLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sessiond_replica_lease_age_seconds",
            "Time since each replica last renewed its lease (as this server's --lease-ttl \
             reckons it); a replica is lost when it reaches the TTL",
            lease_age.clone(),
        );
        let scrape_errors = Counter::default();
        registry.register(
            "sessiond_metrics_store_read_errors",
            "Scrapes whose read of the store failed (the gauges it feeds kept their values)",
            scrape_errors.clone(),
        );
        Self {
            registry,
            grpc,
            open_sessions,
            sessions_ended,
            runs_running,
            runs,
            run_seconds,
            commit_seconds,
            commit_writes,
            watchers,
            event_revision,
            lease_age,
            scrape_errors,
            local: LocalGauges::default(),
        }
    }

    /// A session ended, for `reason`.
    pub fn session_ended(&self, reason: EndReason) {
        self.sessions_ended
            .get_or_create(&ReasonLabel {
                reason: reason_name(reason),
            })
            .inc();
    }

    /// A module run concluded in `state` after `took`.
    pub fn run_concluded(&self, state: RunState, took: Duration) {
        let label = StateLabel {
            state: run_state_name(state),
        };
        self.runs.get_or_create(&label).inc();
        self.run_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// The store committed a transaction of `writes` writes in `took`.
    pub fn committed(&self, writes: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        #[allow(clippy::cast_precision_loss)]
        self.commit_writes.observe(writes as f64);
    }

    /// Reads the gauges: of the database from `store` (each replica's lease
    /// age reckoned with `lease_ttl` at `now`, read just before; at least
    /// 0), of this process from
    /// [`Metrics::local`].
    pub async fn refresh(&self, store: &dyn StatsStore, now: Timestamp, lease_ttl: Duration) {
        self.runs_running.set(i64::from(
            self.local.running_modules.load(Ordering::Relaxed),
        ));
        self.watchers
            .set(self.local.watchers.load(Ordering::Relaxed));
        let stats = match store.stats().await {
            Ok(stats) => stats,
            Err(error) => {
                self.scrape_errors.inc();
                tracing::warn!(error = %error, "metrics: could not read the store");
                return;
            }
        };
        for kind in [SessionKind::Interactive, SessionKind::Clientless] {
            let count = stats
                .unended_sessions
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            self.open_sessions
                .get_or_create(&KindLabel {
                    kind: kind_name(kind),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.event_revision.set(stats.revision);
        // Replicas that left are no longer reported.
        self.lease_age.clear();
        for (replica, expires) in stats.leases {
            let remaining = expires.unix_micros() - now.unix_micros();
            #[allow(clippy::cast_precision_loss)]
            // A renewal that committed after `now` was read would be a
            // hair in the future.
            let age = (lease_ttl.as_secs_f64() - remaining as f64 / 1e6).max(0.0);
            self.lease_age
                .get_or_create(&ReplicaLabel { replica })
                .set(age);
        }
    }

    /// The metrics in the OpenMetrics text format.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Gauges of this process that other parts keep up to date, read at each
/// scrape.
#[derive(Clone, Debug, Default)]
pub struct LocalGauges {
    /// Module runs running (the runner's count).
    pub running_modules: Arc<std::sync::atomic::AtomicU32>,
    /// WatchSessions streams open.
    pub watchers: Arc<std::sync::atomic::AtomicI64>,
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
