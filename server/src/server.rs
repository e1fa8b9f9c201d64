//! Assembling and running the gRPC server: the two sessiond services,
//! health (overall and per service), reflection v1 and v1alpha,
//! message-size limits, the lifetime reaper, and a shutdown that drains
//! clientless sessions and in-flight calls within deadlines.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use tokio_util::sync::CancellationToken;

use crate::access::{Access, Policy};
use crate::admin::{self, Admin, GrpcWeb};
use crate::api::{AccessApi, AuditApi, Router, SessionApi, UserContextApi};
use crate::auth::forwarded::ClusterKey;
use crate::auth::layer::{AuthLayer, Authenticator};
use crate::auth::runs::RunCredentials;
use crate::auth::tls;
use crate::clientless::runner::{RunLimits, Runner};
use crate::clientless::{Clientless, ClientlessPolicy};
use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::config::security::SecurityConfig;
use crate::events::{EventLog, Feed, Refusals, Watcher, retention};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::Error;
use crate::model::{EndReason, ModuleId};
use crate::modules::manifest::{self, ManifestError};
use crate::modules::{Module, ModuleRegistry};
use crate::services::{Apis, Served};
use crate::sessions::Sessions;
use crate::shutdown::EndAtShutdown;
use crate::store::{self, EventStore, NodeStore, StatsStore, Store};
use crate::telemetry::changes::ChangeLog;
use crate::user_context::UserContexts;

/// The descriptor sets of every service served (for the calls' metrics).
const DESCRIPTOR_SETS: [&[u8]; 4] = [
    sessiond_proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// A ready sessiond: store open and migrated, crash recovery done.
#[derive(Debug)]
pub struct Sessiond {
    /// The settings it was opened with.
    config: Config,
    /// Sessions: creating, reading, interactive ones.
    sessions: Sessions,
    /// The user-context operations.
    user_contexts: UserContexts,
    /// The clientless lifecycle and its module runs.
    clientless: Clientless,
    /// This node among the replicas.
    cluster: Cluster,
    /// Who may do what (reloaded on SIGHUP).
    access: Access,
    /// Who may call; `None` without authentication.
    authentication: Option<Arc<Authenticator>>,
    /// The store, for the event log.
    store: Arc<dyn Store>,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
    /// TLS, when served.
    tls: Option<ServerTlsConfig>,
    /// The replicas' shared secret.
    cluster_key: Option<ClusterKey>,
    /// The metrics (counted always; served and the calls counted only with
    /// an admin listener).
    metrics: Arc<Metrics>,
    /// Where `/metrics`, `/healthz`, `/readyz` and the console are served,
    /// if anywhere.
    admin: Option<TcpListener>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened, migrated or recovered.
    #[error("store: {0}")]
    Store(#[from] Error),
    /// The module manifest is invalid.
    #[error("module manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The security configuration cannot be used (a certificate, the
    /// tokens file, the JWKS, the policy, the cluster secret).
    #[error("{0}")]
    Security(String),
    /// A module registered in code has an invalid id.
    #[error("module id {id:?}: {problem}")]
    ModuleId {
        /// The id.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Builds a [`Sessiond`]: the configuration plus what only code can give
/// (in-process modules, a clock, a store).
#[derive(Debug)]
#[must_use]
pub struct SessiondBuilder {
    config: Config,
    modules: Vec<(String, Arc<dyn Module>)>,
    clock: Arc<dyn Clock>,
    store: Option<Arc<dyn Store>>,
    admin: Option<TcpListener>,
}

impl SessiondBuilder {
    /// Registers an in-process module under `id` (after the manifest's, so
    /// it wins over a manifest entry of the same id).
    pub fn module(mut self, id: impl Into<String>, module: impl Module) -> Self {
        self.modules.push((id.into(), Arc::new(module)));
        self
    }

    /// Uses `clock` instead of the system clock (tests move time by hand).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `store` instead of opening `config.database`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Serves the admin endpoints (`/metrics`, `/healthz`, `/readyz`, the
    /// web console and its gRPC-web; see [`crate::admin`]) on `listener`
    /// too, and counts the gRPC calls.
    pub fn admin(mut self, listener: TcpListener) -> Self {
        self.admin = Some(listener);
        self
    }

    /// Loads the module manifest, opens and migrates the store, and runs
    /// crash recovery for this node.
    ///
    /// # Errors
    /// [`StartError`] naming what could not be used.
    pub async fn open(self) -> Result<Sessiond, StartError> {
        let config = self.config;
        let mut registry = ModuleRegistry::default();
        if let Some(path) = &config.modules {
            manifest::load(path, &mut registry)?;
        }
        for (id, module) in self.modules {
            let module_id =
                ModuleId::parse("module id", id.clone()).map_err(|v| StartError::ModuleId {
                    id,
                    problem: v.description,
                })?;
            registry.register(module_id, module);
        }
        let store = match self.store {
            Some(store) => store,
            None => {
                let password_file = config.database_password_file.as_deref();
                let options = store::StoreOptions {
                    password_file,
                    record_events: config.record_events,
                    cached_sessions: config.cached_sessions,
                };
                store::open_configured(&config.database, &options).await?
            }
        };
        let clock = self.clock;
        let security = &config.security;
        let access = access_of(security, config.listen)?;
        let credentials = RunCredentials::default();
        let authentication = Authenticator::from_config(security, credentials.clone())
            .await
            .map_err(StartError::Security)?
            .map(Arc::new);
        let tls = match &security.tls {
            Some(files) => Some(
                tls::server_config(&files.cert, &files.key, files.client_ca.as_deref())
                    .map_err(StartError::Security)?,
            ),
            None => None,
        };
        let client_tls = tls::client_config(security).map_err(StartError::Security)?;
        let cluster_key = match &security.cluster_secret_file {
            Some(path) => Some(ClusterKey::load(path).map_err(StartError::Security)?),
            None => None,
        };
        let limits = RunLimits {
            per_session: config.max_running_modules_per_session,
            per_server: config.max_running_modules,
        };
        let metrics = Arc::new(Metrics::new());
        store
            .commits()
            .observe(Arc::new(ChangeLog::new(Arc::clone(&metrics))));
        let runner = Runner::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            registry,
            limits,
            credentials,
            Arc::clone(&metrics),
        );
        let sessions = Sessions::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.max_open_sessions_per_user,
            &config.node_id,
            access.clone(),
            config.cached_sessions,
        );
        // What a crash left running dies before its runs are recorded as
        // interrupted.
        let killed =
            crate::modules::process_group::end_left_behind(&*store, &config.node_id).await?;
        if killed > 0 {
            tracing::warn!(
                processes = killed,
                "killed module processes left by a previous run"
            );
        }
        sessions.recover().await?;
        let policy = ClientlessPolicy {
            close_grace: config.close_grace,
            idle_timeout: config.idle_timeout,
            max_lifetime: config.max_lifetime,
        };
        let clientless = Clientless::new(
            sessions.clone(),
            Arc::clone(&store),
            Arc::clone(&clock),
            runner,
            policy,
            &config.node_id,
        );
        let cluster = Cluster::new(
            Arc::clone(&store) as Arc<dyn NodeStore>,
            Arc::clone(&clock),
            &config.node_id,
            config.lease_ttl,
            client_tls,
        );
        let user_contexts =
            UserContexts::new(Arc::clone(&store), sessions.clone(), Arc::clone(&clock));
        Ok(Sessiond {
            config,
            sessions,
            user_contexts,
            clientless,
            cluster,
            access,
            authentication,
            store,
            clock,
            tls,
            cluster_key,
            metrics,
            admin: self.admin,
        })
    }
}

impl Sessiond {
    /// A builder for a server with `config`.
    pub fn builder(config: Config) -> SessiondBuilder {
        SessiondBuilder {
            config,
            modules: Vec::new(),
            clock: Arc::new(SystemClock),
            store: None,
            admin: None,
        }
    }

    /// Opens a server from `config` alone (see [`SessiondBuilder::open`]).
    ///
    /// # Errors
    /// [`StartError`] naming what could not be used.
    pub async fn open(config: Config) -> Result<Self, StartError> {
        Self::builder(config).open().await
    }

    /// Serves gRPC on `listener` until `shutdown` completes, then reports
    /// NOT_SERVING, stops accepting, ends this node's clientless sessions
    /// (their modules get the shutdown grace) with
    /// [`EndReason::ServerShutdown`], and lets in-flight calls finish within
    /// the drain timeout before closing what is left.
    ///
    /// # Errors
    /// A transport error that stopped the server.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        if let Ok(addr) = listener.local_addr() {
            let local = endpoint_of(addr, self.tls.is_some());
            self.clientless.set_endpoint(local.clone());
            let advertised = self.config.advertise.clone().unwrap_or(local);
            if let Err(error) = self.cluster.join(advertised).await {
                tracing::warn!(error = %error, "could not announce this node; retrying with its lease");
            }
        }
        let (health, health_service) = Health::new();
        health.set(ServingStatus::Serving).await;
        let stop_following_store = CancellationToken::new();
        let following_store = tokio::spawn(crate::health::follow_store(
            health.clone(),
            self.store.commits().writable(),
            stop_following_store.clone(),
        ));
        let stop_admin = CancellationToken::new();
        // The admin endpoints answer from the start; the console's calls once
        // the services are built below.
        let grpc_web = GrpcWeb::default();
        let (admin, metrics_layer) = match self.admin.take() {
            Some(listener) => {
                let admin = Admin {
                    metrics: Arc::clone(&self.metrics),
                    store: Arc::clone(&self.store) as Arc<dyn StatsStore>,
                    clock: Arc::clone(&self.clock),
                    lease_ttl: self.config.lease_ttl,
                    readiness: health.readiness.clone(),
                };
                let layer = self.metrics.grpc.layer(&DESCRIPTOR_SETS);
                let served = tokio::spawn(admin::serve(
                    listener,
                    admin,
                    grpc_web.clone(),
                    stop_admin.clone(),
                ));
                (Some(served), Some(layer))
            }
            None => (None, None),
        };

        let stop_events = CancellationToken::new();
        let stop_watches = CancellationToken::new();
        let events = self
            .event_log(stop_events.clone(), stop_watches.clone())
            .await;
        let refusals = Refusals::start(
            Arc::clone(&self.store) as Arc<dyn EventStore>,
            Arc::clone(&self.clock),
        );
        let retention = self.config.event_retention.map(|retention| {
            tokio::spawn(retention::compact_periodically(
                Arc::clone(&self.store) as Arc<dyn EventStore>,
                Arc::clone(&self.clock),
                retention,
                stop_events.clone(),
            ))
        });
        let apis = Apis {
            session: SessionApi::new(
                self.sessions.clone(),
                self.clientless.clone(),
                Router::new(
                    self.sessions.clone(),
                    self.cluster.clone(),
                    self.cluster_key.clone(),
                ),
                events.clone(),
            ),
            user_context: UserContextApi::new(self.user_contexts.clone()),
            access: AccessApi::new(self.sessions.clone(), self.user_contexts.clone()),
            audit: AuditApi::new(events),
        };

        // At shutdown health watches end, so that they do not hold the
        // drain (tonic closes the listening socket itself).
        let stop_accepting = CancellationToken::new();
        let health_service = EndAtShutdown::new(health_service, stop_accepting.clone());
        let served = Served::new(
            apis,
            health_service,
            self.config.max_message_bytes,
            metrics_layer,
            AuthLayer::new(self.authentication.clone(), Some(refusals)),
        );
        grpc_web.set(served.grpc_web());
        let incoming = incoming(listener);
        let mut transport = transport();
        if let Some(tls) = self.tls.clone() {
            transport = transport.tls_config(tls)?;
        }
        let server = transport
            .layer(served.layers())
            .add_routes(served.routes())
            .serve_with_incoming_shutdown(incoming, async {
                stop_accepting.cancelled().await;
            });
        tokio::pin!(server);
        let stop_reaper = CancellationToken::new();
        let reaper = tokio::spawn(reap_periodically(
            self.clientless.clone(),
            self.config.reaper_interval,
            stop_reaper.clone(),
        ));
        let reloads = tokio::spawn(self.access.clone().reload_on_hangup(stop_reaper.clone()));
        let stop_membership = CancellationToken::new();
        let membership = tokio::spawn(self.cluster.clone().maintain(
            stop_membership.clone(),
            self.clientless.clone(),
            self.store.commits().writable(),
        ));

        tokio::select! {
            result = &mut server => {
                stop_following_store.cancel();
                stop_reaper.cancel();
                stop_membership.cancel();
                stop_watches.cancel();
                stop_events.cancel();
                return result;
            }
            () = shutdown => {}
        }
        tracing::info!("shutting down: ending clientless sessions, draining in-flight calls");
        stop_following_store.cancel();
        let _ = following_store.await;
        health.set(ServingStatus::NotServing).await;
        // Watches end at once with a status to resume from, so that they
        // do not hold the drain.
        stop_watches.cancel();
        stop_reaper.cancel();
        let _ = reaper.await;
        let _ = reloads.await;
        stop_accepting.cancel();
        let sessions_ended = self
            .clientless
            .close_all(self.config.shutdown_grace, EndReason::ServerShutdown);
        let calls_drained = tokio::time::timeout(self.config.drain_timeout, &mut server);
        let (ended, drained) = tokio::join!(sessions_ended, calls_drained);
        match ended {
            Ok(count) => tracing::info!(sessions = count, "clientless sessions ended"),
            Err(error) => tracing::error!(error = %error, "could not end the clientless sessions"),
        }
        stop_membership.cancel();
        let _ = membership.await;
        if let Err(error) = self.cluster.leave().await {
            tracing::warn!(error = %error, "could not leave the cluster; the lease will expire");
        }
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                drain_timeout = %humantime::format_duration(self.config.drain_timeout),
                "drain deadline passed; closing the remaining connections"
            ),
        }
        stop_events.cancel();
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        stop_admin.cancel();
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        tracing::info!("stopped");
        Ok(())
    }

    /// The event log's readers: the feed tailing the log (until
    /// `stop_events`) and watches (ended by `stop_watches`).
    async fn event_log(
        &self,
        stop_events: CancellationToken,
        stop_watches: CancellationToken,
    ) -> EventLog {
        let store = Arc::clone(&self.store) as Arc<dyn EventStore>;
        let poll = self.config.event_poll_interval;
        let feed = loop {
            let capacity = self.config.watch_buffer;
            match Feed::start(Arc::clone(&store), poll, capacity, stop_events.clone()).await {
                Ok(feed) => break feed,
                Err(error) => {
                    tracing::warn!(error = %error, "could not read the event log's head; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let watcher = Watcher {
            store: Arc::clone(&self.store),
            feed,
            access: self.access.clone(),
            progress_interval: self.config.watch_progress_interval,
            shutdown: stop_watches,
            watching: Arc::clone(&self.metrics.local.watchers),
        };
        EventLog::new(Arc::clone(&self.store), self.access.clone(), watcher)
    }
}

/// The tokio runtime sessiond serves on (exposed, like [`transport`], so
/// that a benchmark's baseline server runs on exactly the same): the
/// multi-threaded scheduler, one worker per core.
///
/// Built with `--cfg tokio_unstable` (the repository's `.cargo/config.toml`
/// sets it), the runtime also turns off tokio's LIFO slot. With the slot, a
/// handler that completes a response wakes its connection's task, which then
/// runs at once and writes that one response; without it, the responses
/// completed together (a committed batch of writes, a burst of reads) leave
/// in one write per connection. notes/responses-written-together.md has the measurement.
///
/// # Errors
/// When the runtime cannot be built (its threads or I/O driver).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}

/// The gRPC transport settings sessiond serves with (exposed so that a
/// benchmark's baseline server can use exactly the same).
#[must_use]
pub fn transport() -> Server {
    Server::builder().http2_keepalive_interval(Some(Duration::from_secs(30)))
}

/// The TCP settings of accepted connections (exposed like [`transport`]).
#[must_use]
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Ends expired clientless sessions every `interval` until `stop`.
async fn reap_periodically(clientless: Clientless, interval: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = clientless.reap().await {
                    tracing::warn!(error = %error, "looking for expired sessions failed");
                }
            }
            () = stop.cancelled() => return,
        }
    }
}

/// The access rules `security` configures for a server on `listen`.
fn access_of(security: &SecurityConfig, listen: SocketAddr) -> Result<Access, StartError> {
    if !security.authenticates() {
        if !listen.ip().is_loopback() {
            tracing::warn!(address = %listen, "serving WITHOUT authentication (--insecure-no-auth): every caller may do everything");
        }
        return Ok(Access::open());
    }
    let policy = match &security.policy {
        Some(path) => {
            Policy::load(path).map_err(|error| StartError::Security(error.to_string()))?
        }
        None => {
            tracing::warn!(
                "authentication is on and no --policy is given: callers may only act as themselves"
            );
            Policy::default()
        }
    };
    Ok(Access::enforced(policy, security.policy.clone()))
}

/// The address modules call back on: the bound one, with an unspecified IP
/// replaced by loopback.
fn endpoint_of(addr: SocketAddr, tls: bool) -> String {
    let ip = if addr.ip().is_unspecified() {
        if addr.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
    } else {
        addr.ip()
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}
