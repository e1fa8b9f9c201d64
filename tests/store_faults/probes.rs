//! What a caller, a load balancer or an orchestrator reads of a server:
//! the gRPC health status, `/readyz` and `/healthz`, and the ledger's
//! verification.

use std::net::SocketAddr;

use sessiond_proto::v1::VerifyLedgerRequest;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::common::{ServerProcess, logged};

/// The message that logs the admin listener's address.
const ADMIN_LISTENING: &str = "admin endpoints (/metrics, /healthz, /readyz) listening";

/// A server under test.
pub struct Target {
    /// `http://ADDR` of its gRPC listener.
    pub endpoint: String,
    /// Its admin listener.
    pub admin: SocketAddr,
}

impl Target {
    /// The server `process` is (started with `--admin-listen`).
    pub fn of(process: &ServerProcess) -> Self {
        let log = process.log.borrow().clone();
        let admin = log
            .lines()
            .find_map(|line| logged(ADMIN_LISTENING, line))
            .expect("the admin listener's address in the log (start with --admin-listen)");
        Self {
            endpoint: process.endpoint(),
            admin,
        }
    }

    /// The gRPC health status of the whole server ("").
    pub async fn grpc_health(&self) -> Option<ServingStatus> {
        let channel = tonic::transport::Channel::from_shared(self.endpoint.clone())
            .ok()?
            .connect()
            .await
            .ok()?;
        let mut health = HealthClient::new(channel);
        let response = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        ServingStatus::try_from(response.into_inner().status).ok()
    }

    /// `GET path` on the admin listener: the status code and the body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.admin).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: sessiond\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (code, body)
    }

    /// Whether it reports ready: SERVING, `/readyz` 200, `/healthz` 200.
    pub async fn ready(&self) -> bool {
        self.grpc_health().await == Some(ServingStatus::Serving)
            && self.admin_get("/readyz").await.0 == 200
            && self.admin_get("/healthz").await.0 == 200
    }

    /// Whether it reports that its store cannot be written: NOT_SERVING,
    /// `/readyz` 503 saying so — and `/healthz` still 200 (alive: a
    /// restart would not help).
    pub async fn not_ready(&self) -> bool {
        if self.grpc_health().await != Some(ServingStatus::NotServing) {
            return false;
        }
        let (code, body) = self.admin_get("/readyz").await;
        if code != 503 || body.trim() != "store unavailable" {
            return false;
        }
        assert_eq!(
            self.admin_get("/healthz").await.0,
            200,
            "alive while the store is unwritable"
        );
        true
    }

    /// Asserts that the whole ledger verifies.
    pub async fn assert_ledger_verifies(&self) {
        let mut audit = AuditServiceClient::connect(self.endpoint.clone())
            .await
            .unwrap();
        let verified = audit
            .verify_ledger(VerifyLedgerRequest {
                from_revision: 0,
                to_revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(verified.ok, "the ledger verifies: {verified:?}");
        assert!(verified.verified_events > 0);
    }
}
