//! Assembling and running the gRPC server: the two sessiond services behind
//! the principal interceptor, health (overall and per service), reflection
//! v1 and v1alpha, message-size limits, and a shutdown that drains within a
//! deadline.

use std::future::Future;
use std::sync::Arc;

use sessiond_proto::v1::session_service_server::SessionServiceServer;
use sessiond_proto::v1::user_context_service_server::UserContextServiceServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{SessionApi, UserContextApi};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Result;
use crate::principal;
use crate::sessions::{SessionLimits, Sessions};
use crate::store::{self, Store};
use crate::user_context::UserContexts;

/// The largest response message, in bytes.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The names health reports on: the whole server ("") and each service.
const HEALTH_NAMES: [&str; 3] = [
    "",
    "sessiond.v1.SessionService",
    "sessiond.v1.UserContextService",
];

/// A ready sessiond: store open and migrated, crash recovery done.
#[derive(Debug)]
pub struct Sessiond {
    /// The settings it was opened with.
    config: Config,
    /// The session rules.
    sessions: Sessions,
    /// The user-context rules.
    user_contexts: UserContexts,
}

impl Sessiond {
    /// Opens the store `config.database` names, migrates it, and ends the
    /// clientless sessions a previous run of this node left open.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`] when the store cannot be opened;
    /// [`crate::Error::InvalidArgument`] for an unsupported database URL.
    pub async fn open(config: Config) -> Result<Self> {
        let store = store::open(&config.database).await?;
        Self::with_store(config, store, Arc::new(SystemClock)).await
    }

    /// Like [`Sessiond::open`], on a store and clock the caller provides.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`] when recovery cannot write.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let limits = SessionLimits {
            max_open_per_user: config.max_open_sessions_per_user,
        };
        let sessions = Sessions::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            limits,
            &config.node_id,
        );
        sessions.recover().await?;
        let user_contexts = UserContexts::new(store, clock);
        Ok(Self {
            config,
            sessions,
            user_contexts,
        })
    }

    /// Serves gRPC on `listener` until `shutdown` completes, then reports
    /// NOT_SERVING, stops accepting, and lets in-flight calls finish within
    /// the configured drain timeout before closing what is left.
    ///
    /// # Errors
    /// A transport error that stopped the server.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::Serving).await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sessiond_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sessiond_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");

        let max_request = self.config.max_message_bytes;
        let session_service = SessionServiceServer::new(SessionApi::new(self.sessions))
            .max_decoding_message_size(max_request)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        let user_context_service =
            UserContextServiceServer::new(UserContextApi::new(self.user_contexts))
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_BYTES);

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .add_service(InterceptedService::new(
                session_service,
                principal::identify,
            ))
            .add_service(InterceptedService::new(
                user_context_service,
                principal::identify,
            ))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        tokio::pin!(server);

        tokio::select! {
            result = &mut server => return result,
            () = shutdown => {}
        }
        tracing::info!("shutting down: draining in-flight calls");
        set_health(&health, ServingStatus::NotServing).await;
        let _ = stop_accepting.send(());
        let drained = tokio::time::timeout(self.config.drain_timeout, &mut server).await;
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                drain_timeout = ?self.config.drain_timeout,
                "drain deadline passed; closing the remaining connections"
            ),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for name in HEALTH_NAMES {
        health.set_service_status(name, status).await;
    }
}
