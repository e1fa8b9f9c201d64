//! Where a request about a session is served: here, or forwarded to the
//! node that owns the session (see [`crate::cluster`]) — decided once, in
//! [`Router::at_owner`], by the domain's [`Session::served_elsewhere`].
//!
//! [`Session::served_elsewhere`]: crate::model::Session::served_elsewhere

use std::future::Future;

use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use super::convert::call_deadline;
use crate::auth::forwarded::{ClusterKey, FORWARDED_IDENTITY, FORWARDED_SIGNATURE};
use crate::cluster::{Cluster, NodeClient};
use crate::events::{Cause, REQUEST_ID_HEADER, RequestId, TRACEPARENT_HEADER};
use crate::model::SessionId;
use crate::model::{Error, Result};
use crate::principal::Principal;
use crate::sessions::Sessions;

/// The header a forwarded request carries, naming the node that forwarded
/// it; a request is forwarded at most once.
pub const FORWARDED_BY: &str = "sessiond-forwarded-by";

/// Decides where a request about a session is served.
#[derive(Clone, Debug)]
pub struct Router {
    /// To look up a session's owner.
    sessions: Sessions,
    /// To reach other nodes.
    cluster: Cluster,
    /// The replicas' shared secret, to state the caller of a forwarded call.
    key: Option<ClusterKey>,
}

impl Router {
    /// A router over `sessions` and `cluster`, stating forwarded callers
    /// with `key` (see [`crate::auth::forwarded`]).
    #[must_use]
    pub fn new(sessions: Sessions, cluster: Cluster, key: Option<ClusterKey>) -> Self {
        Self {
            sessions,
            cluster,
            key,
        }
    }

    /// Serves `request`, about session `id`, where it belongs: at the
    /// session's owner through `forward` (with [`Router::forwarded`]'s
    /// marks, its answer passed on by [`relay`]) when that is another node,
    /// else here through `here`.
    ///
    /// # Errors
    /// The answer's own; [`Error::OwnerUnavailable`] when the owner cannot
    /// be reached or the request was already forwarded once; the errors of
    /// looking the session up.
    pub async fn at_owner<T, R, Forward, Forwarded, Here, Served>(
        &self,
        caller: &Principal,
        id: SessionId,
        request: Request<T>,
        forward: Forward,
        here: Here,
    ) -> std::result::Result<Response<R>, Status>
    where
        Forward: FnOnce(NodeClient, Request<T>) -> Forwarded,
        Forwarded: Future<Output = std::result::Result<Response<R>, Status>>,
        Here: FnOnce(Request<T>) -> Served,
        Served: Future<Output = std::result::Result<Response<R>, Status>>,
    {
        match self.remote_owner(caller, id, &request).await? {
            Some((owner, client)) => {
                let forwarded = self.forwarded(caller, request);
                relay(id, &owner, forward(client, forwarded).await)
            }
            None => here(request).await,
        }
    }

    /// The owner of session `id` (its node id, and a client of it) when the
    /// request must be served there.
    async fn remote_owner<T>(
        &self,
        caller: &Principal,
        id: SessionId,
        request: &Request<T>,
    ) -> Result<Option<(String, NodeClient)>> {
        let node = self.cluster.node_id();
        // The owner never changes: from memory, so that what this node owns
        // costs no read.
        let owner = self.sessions.owner(caller, id).await?;
        if owner == node || !self.sessions.info(caller, id).await?.served_elsewhere(node) {
            return Ok(None);
        }
        if request.metadata().contains_key(FORWARDED_BY) {
            return Err(Error::OwnerUnavailable {
                session_id: id,
                node: owner,
            });
        }
        let client = self.cluster.route(id, &owner).await?;
        Ok(client.map(|client| (owner, client)))
    }

    /// `request`, ready to be sent to the owner: marked as forwarded, with
    /// the caller's remaining deadline and credential, the call's request
    /// id and trace context (so that the events the owner records name the
    /// caller's request), and, with the cluster secret, the caller stated
    /// and signed.
    #[must_use]
    fn forwarded<T>(&self, caller: &Principal, request: Request<T>) -> Request<T> {
        let deadline = call_deadline(request.metadata());
        let authorization = request.metadata().get("authorization").cloned();
        let mut forwarded = Request::new(request.into_inner());
        let metadata = forwarded.metadata_mut();
        if let Ok(node) = self.cluster.node_id().parse() {
            metadata.insert(FORWARDED_BY, node);
        }
        if let Some(authorization) = authorization {
            metadata.insert("authorization", authorization);
        }
        // The caller's id, or the one this node made up for the call.
        let request_id = &Cause::current().request_id;
        if *request_id != RequestId::None
            && let Ok(id) = request_id.to_string().parse()
        {
            metadata.insert(REQUEST_ID_HEADER, id);
        }
        // The caller's trace context, or this server's span of the call.
        if let Some(traceparent) = crate::telemetry::outgoing_traceparent()
            .and_then(|traceparent| traceparent.parse().ok())
        {
            metadata.insert(TRACEPARENT_HEADER, traceparent);
        }
        if let (Some(key), Some(identity)) = (&self.key, caller.identity()) {
            let (statement, signature) = key.sign(identity);
            if let (Ok(statement), Ok(signature)) = (statement.parse(), signature.parse()) {
                metadata.insert(FORWARDED_IDENTITY, statement);
                metadata.insert(FORWARDED_SIGNATURE, signature);
            }
        }
        if let Some(deadline) = deadline {
            forwarded.set_timeout(deadline);
        }
        forwarded
    }
}

/// The answer of `owner`, the node that owns session `id`, as the caller
/// should see it: the owner's own errors pass through; failing to reach it
/// is `OWNER_UNAVAILABLE`, naming the owner.
fn relay<T>(
    id: SessionId,
    owner: &str,
    owner_answer: std::result::Result<T, Status>,
) -> std::result::Result<T, Status> {
    owner_answer.map_err(|status| {
        let from_owner = status.get_error_details().error_info().is_some();
        if from_owner || status.code() != tonic::Code::Unavailable {
            status
        } else {
            tracing::warn!(session_id = %id, node = owner, error = %status.message(), "could not reach a session's owner");
            Error::OwnerUnavailable {
                session_id: id,
                node: owner.to_owned(),
            }
            .into()
        }
    })
}
