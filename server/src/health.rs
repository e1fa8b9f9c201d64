//! What the server says of its health: the gRPC health service's status,
//! of the server ("") and of each service, and readiness beside it
//! (`/readyz` on the admin listener), which follows it.
//!
//! The server is SERVING from its start until its shutdown begins, except
//! while its store cannot be written: from a write that failed for the
//! database's reason until the next write that commits (the lease renewal
//! tries one every [`crate::cluster::STORE_PROBE_INTERVAL`] meanwhile), it
//! is NOT_SERVING and `/readyz` answers 503 `store unavailable`, so that a
//! load balancer sends callers to a replica that can write. Liveness
//! (`/healthz`) stays 200 throughout: the process is fine, restarting it
//! would not bring the disk or the database back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::server::HealthReporter;

/// The names health reports on: the whole server ("") and each service.
const HEALTH_NAMES: [&str; 5] = [
    "",
    "sessiond.v1.SessionService",
    "sessiond.v1.UserContextService",
    "sessiond.v1.AccessService",
    "sessiond.v1.AuditService",
];

/// Whether the server serves gRPC, as its health service says.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    /// Whether it serves.
    ready: Arc<AtomicBool>,
    /// Whether it does not because its store cannot be written.
    store_unwritable: Arc<AtomicBool>,
}

impl Readiness {
    /// Sets it.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether it is ready.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether the store cannot be written (as the last write found).
    #[must_use]
    pub fn store_unwritable(&self) -> bool {
        self.store_unwritable.load(Ordering::Acquire)
    }
}

/// The gRPC health service's reporter, and readiness (`/readyz`) beside
/// it.
#[derive(Clone)]
pub(crate) struct Health {
    /// The gRPC health service's statuses.
    reporter: HealthReporter,
    /// Readiness, set with them.
    pub(crate) readiness: Readiness,
}

impl Health {
    /// A reporter, not serving yet, and the gRPC health service it reports
    /// to.
    pub(crate) fn new() -> (Self, HealthServer<impl HealthService>) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let health = Self {
            reporter,
            readiness: Readiness::default(),
        };
        (health, service)
    }

    /// Sets the status of the server and of each service.
    pub(crate) async fn set(&self, status: ServingStatus) {
        for name in HEALTH_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
        self.readiness.set(status == ServingStatus::Serving);
    }
}

/// Follows whether the store can be written (`writable`, from
/// [`crate::store::Commits::writable`]): NOT_SERVING while it cannot,
/// SERVING again once it can, until `stop` (the shutdown, which then sets
/// the status itself).
pub(crate) async fn follow_store(
    health: Health,
    mut writable: tokio::sync::watch::Receiver<bool>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let can_write = *writable.borrow_and_update();
        health
            .readiness
            .store_unwritable
            .store(!can_write, Ordering::Release);
        let status = if can_write {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set(status).await;
        tokio::select! {
            changed = writable.changed() => if changed.is_err() { return },
            () = stop.cancelled() => return,
        }
    }
}
