//! The admin listener (`--admin-listen`): plain HTTP for what operators'
//! tools read — `/metrics` (Prometheus), `/healthz` (the process answers)
//! and `/readyz` (it serves gRPC: follows the gRPC health status, so it
//! turns 503 as soon as a shutdown begins, and while the store cannot be
//! written: see [`crate::health`]) — and for operators themselves: the web
//! console at `/` ([`crate::console`]) and the gRPC-web calls it makes
//! ([`crate::services::Served::grpc_web`]: the same services behind the
//! same authentication as the gRPC listener).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::health::Readiness;
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::store::StatsStore;

/// What the admin endpoints read.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Where the database's gauges come from.
    pub store: Arc<dyn StatsStore>,
    /// "Now", for lease ages.
    pub clock: Arc<dyn Clock>,
    /// The lease TTL, for lease ages.
    pub lease_ttl: Duration,
    /// Whether gRPC is served.
    pub readiness: Readiness,
}

/// The console's gRPC-web calls ([`crate::services::Served::grpc_web`]),
/// once the services are built; until then they are answered 503.
#[derive(Clone, Debug, Default)]
pub struct GrpcWeb(Arc<OnceLock<Router>>);

impl GrpcWeb {
    /// Serves the console's calls with `router` from now on (the first
    /// router set stays).
    pub fn set(&self, router: Router) {
        let _ = self.0.set(router);
    }
}

/// Serves the admin endpoints, the console and its calls (`grpc_web`) on
/// `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    grpc_web: GrpcWeb,
    stop: CancellationToken,
) {
    let calls = Router::new()
        .route("/{service}/{method}", post(call))
        .with_state(grpc_web);
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(admin)
        .merge(crate::console::router())
        .merge(calls);
    // The caller's address reaches the authentication layer (and the events
    // a call causes) as it does on the gRPC listener.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %error, "the admin listener stopped");
    }
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    admin
        .metrics
        .refresh(admin.store.as_ref(), admin.clock.now(), admin.lease_ttl)
        .await;
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        admin.metrics.encode(),
    )
}

/// A gRPC-web call of the console (an unknown service: 404).
async fn call(State(grpc_web): State<GrpcWeb>, request: Request) -> Response {
    match grpc_web.0.get() {
        Some(router) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if admin.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else if admin.readiness.store_unwritable() {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}
