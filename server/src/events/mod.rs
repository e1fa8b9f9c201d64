//! The event log at run time: who causes each change ([`Cause`]), the feed
//! that tails the log for every watcher ([`Feed`]), watches ([`watch`]),
//! refused calls recorded in batches ([`Refusals`]), the ledger's
//! verification ([`verify`]) and retention ([`retention`]). [`EventLog`] is
//! what the API serves them through, with the caller's access checked.
//!
//! The log itself — one event per change, in the change's transaction, with
//! its revision and hash — is the store's ([`crate::store::ledger`]); the
//! changes are the domain's ([`crate::model::Change`]).

mod cause;
mod feed;
mod refusals;
pub mod retention;
pub mod verify;
pub mod watch;

use std::sync::Arc;

use sessiond_proto::v1 as pb;
use tokio::sync::mpsc;

pub use cause::{Cause, REQUEST_ID_HEADER, RequestId, SYSTEM_SUBJECT, TRACEPARENT_HEADER};
pub use feed::{Batch, Feed};
pub use refusals::Refusals;
pub use verify::Verification;
pub use watch::{WatchRequest, Watcher};

use crate::access::{Access, Action};
use crate::model::Result;
use crate::principal::Principal;
use crate::store::{EventQuery, LedgerHead, Store};

/// The event log as callers read it: the audit trail (for callers granted
/// `read_audit`) and watches.
#[derive(Clone, Debug)]
pub struct EventLog {
    store: Arc<dyn Store>,
    access: Access,
    watcher: Watcher,
}

impl EventLog {
    /// The log of `store`, read through `watcher`'s feed, with `access`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, access: Access, watcher: Watcher) -> Self {
        Self {
            store,
            access,
            watcher,
        }
    }

    /// The events `query` asks for, and the compaction checkpoint's
    /// revision.
    ///
    /// # Errors
    /// [`crate::Error::PermissionDenied`] without `read_audit`;
    /// [`crate::Error::StoreUnavailable`].
    pub async fn list(
        &self,
        caller: &Principal,
        query: &EventQuery,
    ) -> Result<(Vec<pb::Event>, i64)> {
        self.access.check(caller, Action::ReadAudit)?;
        let compacted = self.store.ledger_head().await?.compacted.revision;
        let events = self
            .store
            .events(query)
            .await?
            .iter()
            .map(crate::store::StoredEvent::decode)
            .collect::<Result<_>>()?;
        Ok((events, compacted))
    }

    /// Verifies the ledger from `from` to `to` ([`verify::verify`]).
    ///
    /// # Errors
    /// As [`EventLog::list`].
    pub async fn verify(&self, caller: &Principal, from: i64, to: i64) -> Result<Verification> {
        self.access.check(caller, Action::ReadAudit)?;
        verify::verify(&*self.store, from, to).await
    }

    /// The head of the log and its checkpoint.
    ///
    /// # Errors
    /// As [`EventLog::list`].
    pub async fn checkpoint(&self, caller: &Principal) -> Result<LedgerHead> {
        self.access.check(caller, Action::ReadAudit)?;
        self.store.ledger_head().await
    }

    /// Starts a watch for `caller` ([`Watcher::start`]): it sees the events
    /// of the sessions it may read.
    #[must_use]
    pub fn watch(&self, caller: Principal, request: WatchRequest) -> mpsc::Receiver<watch::Item> {
        self.watcher.start(caller, request)
    }
}
