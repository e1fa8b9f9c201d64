//! Modules: the units of business logic that run in clientless sessions.
//!
//! Two sources, one trait: in-process modules implement [`Module`] and are
//! registered by whoever embeds the server (tests do); exec modules come from
//! a TOML manifest ([`manifest`]) and run as child processes ([`exec`]).
//! Running them is the clientless lifecycle's ([`crate::clientless`]).

pub mod exec;
pub mod manifest;
pub mod process_group;
pub mod warden;

use std::collections::HashMap;
use std::sync::Arc;

pub use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::runs::Secret;
use crate::model::{ModuleFailure, ModuleId, RunId, RunProcess, SessionId, UserId};
use crate::store::RunStore;

/// A unit of work that runs in a clientless session and returns a JSON value.
///
/// Implement it with the re-exported [`async_trait`] attribute:
/// ```
/// use sessiond::model::ModuleFailure;
/// use sessiond::modules::{Module, ModuleContext, async_trait};
///
/// #[derive(Debug)]
/// struct Greeting;
///
/// #[async_trait]
/// impl Module for Greeting {
///     async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure> {
///         Ok(serde_json::json!({ "hello": ctx.acting_user.as_str() }))
///     }
/// }
/// ```
#[async_trait]
pub trait Module: Send + Sync + std::fmt::Debug + 'static {
    /// Runs once. The future may be dropped when the run is cancelled and
    /// does not react to [`ModuleContext::cancelled`] in time.
    ///
    /// # Errors
    /// The run's failure; [`ModuleFailure::error`] for an in-process module.
    async fn run(&self, ctx: ModuleContext) -> Result<serde_json::Value, ModuleFailure>;
}

/// The facts of one run, as the module sees them.
#[derive(Clone, Debug)]
pub struct ModuleContext {
    /// The session the module runs in.
    pub session_id: SessionId,
    /// That session's UUID.
    pub session_uuid: Uuid,
    /// The session's user.
    pub user: UserId,
    /// The session's user context when the module was opened: whom the run
    /// acts as.
    pub acting_user: UserId,
    /// The module's id.
    pub module_id: ModuleId,
    /// This run's id.
    pub run_id: RunId,
    /// The parameters given to `OpenModule`.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Where the module can call sessiond back (`http://HOST:PORT`, or
    /// `https://` when the server serves TLS).
    pub endpoint: String,
    /// The run's own bearer token when the server authenticates callers:
    /// it acts for the caller that opened the module, on this session only,
    /// until the run concludes. Never log it.
    pub credential: Option<Secret>,
    /// The W3C trace context the run continues (`TRACEPARENT` for exec
    /// modules): the span of the call that opened it when traces are
    /// exported, else that call's own `traceparent`, if it had one.
    pub traceparent: Option<String>,
    /// Cancelled when the run should stop (its session closed and the grace
    /// ran out).
    pub(crate) cancel: CancellationToken,
    /// Where the run's process group is recorded
    /// ([`ModuleContext::record_process`]).
    pub(crate) runs: Arc<dyn RunStore>,
}

impl ModuleContext {
    /// Completes when the run is asked to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Whether the run was asked to stop.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Records durably the process group the run's processes are in, so
    /// that the next start of this node kills it if this process dies
    /// first ([`process_group::end_left_behind`]); forgotten when the run's
    /// outcome is recorded.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`].
    pub(crate) async fn record_process(&self, process: &RunProcess) -> crate::Result<()> {
        self.runs.record_run_process(self.run_id, process).await
    }
}

/// The modules a server knows, by id.
#[derive(Clone, Debug, Default)]
pub struct ModuleRegistry {
    /// Each module under its id.
    modules: HashMap<ModuleId, Arc<dyn Module>>,
}

impl ModuleRegistry {
    /// Registers `module` under `id`, replacing any module registered there.
    pub fn register(&mut self, id: ModuleId, module: Arc<dyn Module>) {
        self.modules.insert(id, module);
    }

    /// The module registered under `id`.
    #[must_use]
    pub fn get(&self, id: &ModuleId) -> Option<Arc<dyn Module>> {
        self.modules.get(id).cloned()
    }

    /// How many modules are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether no module is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}
