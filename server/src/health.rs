//! What the server says of its health: the gRPC health service's status,
//! of the server ("") and of each service, and readiness beside it
//! (`/readyz` on the admin listener), which follows it.

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
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets it.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether it is ready.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The gRPC health service's reporter, and readiness (`/readyz`) beside
/// it.
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
