//! The admin listener (`--admin-listen`): plain HTTP for what operators'
//! tools read — `/metrics` (Prometheus), `/healthz` (the process answers)
//! and `/readyz` (it serves gRPC: follows the gRPC health status, so it
//! turns 503 as soon as a shutdown begins, and while the store cannot be
//! written: see [`crate::health`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Serves the admin endpoints on `listener` until `stop`.
pub async fn serve(listener: TcpListener, admin: Admin, stop: CancellationToken) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(admin);
    if let Err(error) = axum::serve(listener, router)
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
