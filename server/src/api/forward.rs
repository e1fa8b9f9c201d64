//! Forwarding requests about a clientless session's modules and close to
//! the node that owns the session (see [`crate::cluster`]).

use tonic::{Request, Status};
use tonic_types::StatusExt;

use super::convert::call_deadline;
use crate::cluster::{Cluster, NodeClient};
use crate::model::{Error, Result};
use crate::model::{SessionId, SessionState};
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
}

impl Router {
    /// A router over `sessions` and `cluster`.
    #[must_use]
    pub fn new(sessions: Sessions, cluster: Cluster) -> Self {
        Self { sessions, cluster }
    }

    /// The owner of session `id` when it is another node and the session
    /// has not ended (serve the request there), or `None` (serve it here:
    /// this node owns it, or it ended and the store has every answer).
    ///
    /// # Errors
    /// [`Error::OwnerUnavailable`] when the owner cannot be reached or the
    /// request was already forwarded once; the errors of looking the
    /// session up.
    pub async fn remote_owner<T>(
        &self,
        caller: &Principal,
        id: SessionId,
        request: &Request<T>,
    ) -> Result<Option<NodeClient>> {
        let owner = self.sessions.owner(caller, id).await?;
        if owner == self.cluster.node_id()
            || self.sessions.info(caller, id).await?.state == SessionState::Ended
        {
            return Ok(None);
        }
        if request.metadata().contains_key(FORWARDED_BY) {
            return Err(Error::OwnerUnavailable {
                session_id: id,
                node: owner,
            });
        }
        self.cluster.route(id, &owner).await
    }

    /// `request`, ready to be sent to the owner: marked as forwarded, with
    /// the caller's remaining deadline.
    #[must_use]
    pub fn forwarded<T>(&self, request: Request<T>) -> Request<T> {
        let deadline = call_deadline(request.metadata());
        let mut forwarded = Request::new(request.into_inner());
        if let Ok(node) = self.cluster.node_id().parse() {
            forwarded.metadata_mut().insert(FORWARDED_BY, node);
        }
        if let Some(deadline) = deadline {
            forwarded.set_timeout(deadline);
        }
        forwarded
    }
}

/// The owner's answer, as the caller should see it: the owner's own errors
/// pass through; failing to reach it is `OWNER_UNAVAILABLE`.
pub fn relay<T>(
    id: SessionId,
    owner_answer: std::result::Result<T, Status>,
) -> std::result::Result<T, Status> {
    owner_answer.map_err(|status| {
        let from_owner = status.get_error_details().error_info().is_some();
        if from_owner || status.code() != tonic::Code::Unavailable {
            status
        } else {
            tracing::warn!(session_id = %id, error = %status.message(), "could not reach a session's owner");
            Error::OwnerUnavailable {
                session_id: id,
                node: String::new(),
            }
            .into()
        }
    })
}
