//! Several replicas on one database.
//!
//! Each server is a *node* with an id and a lease in the store that it
//! renews. A clientless session belongs to the node that opened it (its
//! *owner*, which runs its modules); a request about its modules or its
//! close that reaches another node is forwarded to the owner. A node whose
//! lease expired is *lost*: a live node takes it over — ends its clientless
//! sessions with [`EndReason::NodeLost`] and records its running runs as
//! failed — and each lost node is taken over by exactly one node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sessiond_proto::v1::session_service_client::SessionServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::clientless::Clientless;
use crate::clock::Clock;
use crate::model::{EndReason, SessionId};
use crate::model::{Error, Result};

/// How often the lease is renewed while the store cannot be written: each
/// renewal is a write that finds out whether it can be again.
pub const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
use crate::store::NodeStore;

/// A client of another node's `SessionService`.
pub type NodeClient = SessionServiceClient<Channel>;

/// This node's membership: its lease, and the way to other nodes.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Shared by every clone and the maintenance task.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Leases and takeovers: the only part of the store a cluster sees.
    store: Arc<dyn NodeStore>,
    clock: Arc<dyn Clock>,
    /// This node's id.
    node_id: Arc<str>,
    /// How long a lease lasts without renewal.
    lease_ttl: Duration,
    /// Where other nodes reach this one; set once the server is bound.
    endpoint: OnceLock<String>,
    /// One channel per other node, by node id.
    clients: Mutex<HashMap<String, NodeClient>>,
    /// TLS for calls to nodes at `https://` endpoints.
    tls: Option<ClientTlsConfig>,
}

impl Cluster {
    /// Membership of `node_id` with leases of `lease_ttl`.
    #[must_use]
    pub fn new(
        store: Arc<dyn NodeStore>,
        clock: Arc<dyn Clock>,
        node_id: &str,
        lease_ttl: Duration,
        tls: Option<ClientTlsConfig>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                node_id: Arc::from(node_id),
                lease_ttl,
                endpoint: OnceLock::new(),
                clients: Mutex::new(HashMap::new()),
                tls,
            }),
        }
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Announces this node at `endpoint` and takes its first lease.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn join(&self, endpoint: String) -> Result<()> {
        let _ = self.inner.endpoint.set(endpoint);
        self.renew().await.map(drop)
    }

    /// Renews this node's lease. Returns `false` when the store did not know
    /// this node: another node took it over since the last renewal.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn renew(&self) -> Result<bool> {
        let inner = &self.inner;
        let endpoint = inner.endpoint.get().map_or("", String::as_str);
        let expires = inner.clock.now().plus(inner.lease_ttl);
        inner
            .store
            .renew_node(&inner.node_id, endpoint, expires)
            .await
    }

    /// Takes over every node whose lease expired; returns how many
    /// sessions that ended.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn take_over_lost_nodes(&self) -> Result<u64> {
        let taken = self
            .inner
            .store
            .take_over_lost_nodes(
                &self.inner.node_id,
                self.inner.clock.now(),
                EndReason::NodeLost,
            )
            .await?;
        let mut sessions = 0;
        for (node, recovered) in taken {
            tracing::warn!(
                node = %node, sessions = recovered.sessions, runs = recovered.runs,
                "took over a lost node"
            );
            self.inner
                .clients
                .lock()
                .expect("clients lock")
                .remove(&node);
            sessions += recovered.sessions;
        }
        Ok(sessions)
    }

    /// Leaves the cluster at a clean shutdown (after this node's sessions
    /// ended), so that nobody waits for its lease to expire.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn leave(&self) -> Result<()> {
        self.inner.store.remove_node(&self.inner.node_id).await
    }

    /// Renews the lease every third of its lifetime and looks for lost nodes
    /// every half, until `stop`.
    ///
    /// A renewal can find that this node was taken over: it stopped renewing
    /// for longer than the lease (a long pause), so another node ended its
    /// clientless sessions and recorded their runs as interrupted. The node
    /// then cancels those runs, which would otherwise go on for sessions
    /// that have ended, and carries on with a new lease.
    ///
    /// While the store cannot be written (`store_writable` says so), the
    /// lease is also renewed every [`STORE_PROBE_INTERVAL`]: that write
    /// finds out when the store can be written again, even when no caller
    /// writes (a load balancer sends none to a server that is not ready).
    pub async fn maintain(
        self,
        stop: CancellationToken,
        clientless: Clientless,
        mut store_writable: tokio::sync::watch::Receiver<bool>,
    ) {
        let ttl = self.inner.lease_ttl;
        let mut probes = tokio::time::interval(STORE_PROBE_INTERVAL);
        probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewals = tokio::time::interval(ttl / 3);
        let mut checks = tokio::time::interval(ttl / 2);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = async {
                    loop {
                        tokio::select! {
                            _ = renewals.tick() => return,
                            _ = probes.tick(), if !*store_writable.borrow() => return,
                            // Whether to probe changed: look again.
                            Ok(()) = store_writable.changed() => {}
                        }
                    }
                } => match self.renew().await {
                    Ok(true) => {}
                    Ok(false) => {
                        let cancelled = clientless.cancel_runs_of_ended_sessions().await;
                        tracing::error!(
                            cancelled,
                            "this node's lease had expired and another node took it over, \
                             ending its clientless sessions; cancelled their runs"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "renewing this node's lease failed");
                    }
                },
                _ = checks.tick() => {
                    if let Err(error) = self.take_over_lost_nodes().await {
                        tracing::warn!(error = %error, "looking for lost nodes failed");
                    }
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// How to reach `owner`, the node that owns session `id`: `None` when it
    /// is this node.
    ///
    /// # Errors
    /// [`Error::OwnerUnavailable`] when the owner has no live lease (it will
    /// be taken over) or cannot be addressed; [`Error::StoreUnavailable`].
    pub async fn route(&self, id: SessionId, owner: &str) -> Result<Option<NodeClient>> {
        if owner == &*self.inner.node_id {
            return Ok(None);
        }
        if let Some(client) = self.inner.clients.lock().expect("clients lock").get(owner) {
            return Ok(Some(client.clone()));
        }
        let unavailable = || Error::OwnerUnavailable {
            session_id: id,
            node: owner.to_owned(),
        };
        let endpoint = self
            .inner
            .store
            .node_endpoint(owner, self.inner.clock.now())
            .await?
            .filter(|e| !e.is_empty())
            .ok_or_else(unavailable)?;
        let secure = endpoint.starts_with("https://");
        let mut channel = Endpoint::from_shared(endpoint)
            .map_err(|_| unavailable())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if secure && let Some(tls) = &self.inner.tls {
            channel = channel.tls_config(tls.clone()).map_err(|_| unavailable())?;
        }
        let channel = channel.connect_lazy();
        let client = SessionServiceClient::new(channel);
        self.inner
            .clients
            .lock()
            .expect("clients lock")
            .insert(owner.to_owned(), client.clone());
        Ok(Some(client))
    }
}
