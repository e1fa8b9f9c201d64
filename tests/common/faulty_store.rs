//! A [`Store`] that fails chosen calls: a real store underneath, and only
//! the fault injected, so that a real server answers real clients with the
//! errors of a store that broke (`STORE_UNAVAILABLE`, `INTERNAL`).
//!
//! Every method delegates to the wrapped store unless a fault is set for its
//! name. The `delegate!` calls below list the methods of each of the store's
//! traits (`Store` is their union): when a trait changes, only its list
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sessiond::model::{
    EndReason, Error, Expiry, ModuleId, ModuleRun, NewSession, PoppedScope, PushedScope, Result,
    RunId, RunOutcome, RunProcess, ScopeId, Session, SessionFacts, SessionId, Timestamp,
    UserContext, UserId,
};
use sessiond::modules::async_trait;
use sessiond::store::{
    EventQuery, EventStore, LedgerHead, NodeStore, Pending, Recovered, RunStore, ScopeStore,
    SessionQuery, SessionStore, StartedRun, StatsStore, Store, StoreStats, StoredEvent, UserCheck,
};

/// Makes the error a failing call returns (errors are not `Clone`).
pub type MakeError = fn() -> Error;

/// A store whose calls fail on demand.
#[derive(Debug)]
pub struct FaultyStore {
    /// The real store.
    inner: Arc<dyn Store>,
    /// The failing methods, by name, and what they fail with.
    faults: Mutex<HashMap<&'static str, MakeError>>,
}

impl FaultyStore {
    /// Wraps `inner`; no call fails until [`FaultyStore::fail`].
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            faults: Mutex::new(HashMap::new()),
        })
    }

    /// Makes every call of the method named `method` fail with `error()`
    /// until [`FaultyStore::heal`].
    pub fn fail(&self, method: &'static str, error: MakeError) {
        self.faults.lock().unwrap().insert(method, error);
    }

    /// Lets calls of `method` through again.
    pub fn heal(&self, method: &str) {
        self.faults.lock().unwrap().remove(method);
    }

    /// The injected error of `method`, if it is failing.
    fn check(&self, method: &str) -> Result<()> {
        match self.faults.lock().unwrap().get(method) {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }
}

/// Implements a store trait by delegating each listed method, after
/// [`FaultyStore::check`].
macro_rules! delegate {
    ($trait:ident {
        $(async fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)+
    }) => {
        #[async_trait]
        impl $trait for FaultyStore {
            $(
                async fn $method(&self $(, $arg: $ty)*) -> $ret {
                    self.check(stringify!($method))?;
                    self.inner.$method($($arg),*).await
                }
            )+
        }
    };
}

delegate!(SessionStore {
    async fn create_session(&self, new: NewSession) -> Result<Session>;
    async fn session(&self, id: SessionId) -> Result<Session>;
    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts>;
    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>>;
    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session>;
    async fn begin_closing(&self, id: SessionId, reason: EndReason, now: Timestamp) -> Result<Session>;
    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session>;
    async fn end_session(&self, id: SessionId, reason: EndReason, now: Timestamp) -> Result<Session>;
    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>>;
    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>>;
    async fn begin_closing_expired(&self, id: SessionId, expiry: &Expiry, now: Timestamp) -> Result<Option<EndReason>>;
});

delegate!(ScopeStore {
    async fn user_context(&self, id: SessionId) -> Result<UserContext>;
    async fn set_user_context(&self, id: SessionId, user: UserId, now: Timestamp) -> Result<UserId>;
    async fn push_user_context(&self, id: SessionId, user: UserId, now: Timestamp) -> Result<PushedScope>;
    async fn pop_user_context_as(&self, id: SessionId, scope: ScopeId, now: Timestamp, check: UserCheck) -> Result<PoppedScope>;
});

delegate!(RunStore {
    async fn start_run_as(
        &self,
        session: SessionId,
        module: &ModuleId,
        parameters: &Map<String, Value>,
        now: Timestamp,
        check: UserCheck,
    ) -> Result<StartedRun>;
    async fn finish_run(&self, run: RunId, outcome: &RunOutcome, now: Timestamp) -> Result<ModuleRun>;
    async fn run(&self, run: RunId) -> Result<ModuleRun>;
    async fn latest_run(&self, session: SessionId, module: &ModuleId) -> Result<ModuleRun>;
    async fn record_run_process(&self, run: RunId, process: &RunProcess) -> Result<()>;
    async fn run_processes_of_node(&self, node: &str) -> Result<Vec<(RunId, RunProcess)>>;
    async fn forget_run_processes(&self, runs: &[RunId]) -> Result<()>;
});

delegate!(NodeStore {
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool>;
    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>>;
    async fn recover_node(&self, node: &str, reason: EndReason, now: Timestamp) -> Result<Recovered>;
    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>>;
    async fn remove_node(&self, node: &str) -> Result<()>;
});

#[async_trait]
impl EventStore for FaultyStore {
    async fn record_events(&self, changes: Vec<Pending>) -> Result<()> {
        self.check("record_events")?;
        self.inner.record_events(changes).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        self.check("events")?;
        self.inner.events(query).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        self.check("ledger_head")?;
        self.inner.ledger_head().await
    }

    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)> {
        self.check("unended_sessions_at_head")?;
        self.inner.unended_sessions_at_head(query).await
    }

    async fn compact_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.check("compact_events")?;
        self.inner.compact_events(before, limit).await
    }

    fn commits(&self) -> Arc<sessiond::store::Commits> {
        self.inner.commits()
    }
}

#[async_trait]
impl StatsStore for FaultyStore {
    async fn stats(&self) -> Result<StoreStats> {
        self.check("stats")?;
        self.inner.stats().await
    }
}
