//! The module runner: starts runs, records their outcomes durably, wakes the
//! callers waiting for them, and drains a session's runs when it closes.
//!
//! Per session it keeps the runs in progress and the session's *gate*
//! ([`super`] holds it: shared to open a module, exclusive to close).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::join_all;
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::runs::RunCredentials;
use crate::clock::Clock;
use crate::events::Cause;
use crate::metrics::Metrics;
use crate::model::{Error, Result};
use crate::model::{
    FailureKind, ModuleFailure, ModuleId, ModuleRun, RunId, RunOutcome, RunState, SessionId,
    SessionState, check_value,
};
use crate::modules::{ModuleContext, ModuleRegistry};
use crate::principal::Principal;
use crate::store::names::{failure_kind_name, run_state_name};
use crate::store::{Store, UserCheck};
use crate::task::run_to_completion;

/// How long a cancelled run may take to stop before it is dropped (an exec
/// module's process is killed then). Longer than the exec module's own
/// SIGTERM-to-SIGKILL grace, so that it can report what happened.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// How many times an outcome is written before the runner gives up (the
/// run then stays RUNNING until the next start-up recovery).
const RECORD_ATTEMPTS: u32 = 5;

/// The most modules that may run at once.
#[derive(Clone, Copy, Debug)]
pub struct RunLimits {
    /// In one session.
    pub per_session: u32,
    /// In the whole server.
    pub per_server: u32,
}

/// Starts and tracks module runs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Runner {
    /// Shared by every clone and every run task.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    registry: ModuleRegistry,
    limits: RunLimits,
    /// The server's address, given to modules; set once the server is bound.
    endpoint: OnceLock<String>,
    /// Sessions with runs or a close in progress in this process.
    sessions: Mutex<HashMap<SessionId, Arc<LiveSession>>>,
    /// Runs in progress in the whole server.
    running: Arc<AtomicU32>,
    /// The credentials runs get (`SESSIOND_TOKEN`).
    credentials: RunCredentials,
    /// Concluded runs are counted here.
    metrics: Arc<Metrics>,
}

/// What this process knows of one session's runs.
#[derive(Debug, Default)]
struct LiveSession {
    /// Shared while a module is being opened; exclusive while the session
    /// moves to closing.
    gate: RwLock<()>,
    /// The runs in progress.
    runs: Mutex<HashMap<RunId, LiveRun>>,
    /// How many runs are in progress (reserved before the store is asked).
    running: Arc<AtomicU32>,
}

impl LiveSession {
    /// The runs in progress now.
    fn runs_in_progress(&self) -> Vec<LiveRun> {
        self.runs
            .lock()
            .expect("runs lock")
            .values()
            .cloned()
            .collect()
    }
}

/// A run in progress, as waiters and drains see it.
#[derive(Clone, Debug)]
struct LiveRun {
    /// Leaves [`Conclusion::Pending`] once the run has concluded.
    concluded: watch::Receiver<Conclusion>,
    /// Asks the run to stop.
    cancel: CancellationToken,
}

/// Where a run in progress stands, as its run task publishes it.
#[derive(Clone, Debug)]
enum Conclusion {
    /// Running, or concluded with its outcome not yet durable.
    Pending,
    /// Concluded, and this is its durable record.
    Recorded(ModuleRun),
    /// Concluded, but its outcome could not be recorded (the run stays
    /// running in the store until the next start-up recovery).
    Unrecorded,
}

impl Conclusion {
    fn is_final(&self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// One reserved place under a limit, released when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicU32>);

impl Slot {
    fn reserve(counter: &Arc<AtomicU32>, limit: u32) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(counter)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Runner {
    /// A runner for the modules in `registry`.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        registry: ModuleRegistry,
        limits: RunLimits,
        credentials: RunCredentials,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                registry,
                limits,
                endpoint: OnceLock::new(),
                sessions: Mutex::new(HashMap::new()),
                running: Arc::clone(&metrics.local.running_modules),
                credentials,
                metrics,
            }),
        }
    }

    /// Tells modules where the server listens (`http://HOST:PORT`). Only the
    /// first call counts.
    pub fn set_endpoint(&self, endpoint: String) {
        let _ = self.inner.endpoint.set(endpoint);
    }

    /// Starts a run of `module_id` in an open clientless session and returns
    /// it once it is recorded as running.
    ///
    /// # Errors
    /// [`Error::ModuleNotFound`], [`Error::TooManyRunningModules`], the
    /// session errors of [`Store::start_run`], [`Error::StoreUnavailable`].
    pub async fn open(
        &self,
        caller: &Principal,
        session_id: SessionId,
        module_id: ModuleId,
        parameters: serde_json::Map<String, serde_json::Value>,
        may_run: UserCheck,
    ) -> Result<ModuleRun> {
        if self.inner.registry.get(&module_id).is_none() {
            return Err(Error::ModuleNotFound { module_id });
        }
        let this = self.clone();
        let opener = caller.clone();
        let run = run_to_completion(async move {
            this.start(&opener, session_id, module_id, parameters, may_run)
                .await
        })
        .await?;
        tracing::debug!(
            session_id = %session_id, run_id = %run.id, module_id = %run.module_id,
            acting_user = %run.acting_user, caller = %caller, "module opened"
        );
        Ok(run)
    }

    async fn start(
        &self,
        opener: &Principal,
        session_id: SessionId,
        module_id: ModuleId,
        parameters: serde_json::Map<String, serde_json::Value>,
        may_run: UserCheck,
    ) -> Result<ModuleRun> {
        let inner = &self.inner;
        let module = inner
            .registry
            .get(&module_id)
            .ok_or_else(|| Error::ModuleNotFound {
                module_id: module_id.clone(),
            })?;
        let live = self.live(session_id);
        // Held until the run is among the session's runs in progress.
        let _gate = live.gate.read().await;
        let server_slot = Slot::reserve(&inner.running, inner.limits.per_server).ok_or(
            Error::TooManyRunningModules {
                scope: "server",
                limit: inner.limits.per_server,
            },
        )?;
        let session_slot = Slot::reserve(&live.running, inner.limits.per_session).ok_or(
            Error::TooManyRunningModules {
                scope: "session",
                limit: inner.limits.per_session,
            },
        )?;
        let started = inner
            .store
            .start_run_as(
                session_id,
                &module_id,
                &parameters,
                inner.clock.now(),
                may_run,
            )
            .await?;
        let run = started.run.clone();
        // Valid until the run concludes (dropped at the end of its task).
        let credential = inner.credentials.issue(opener, session_id);
        let cancel = CancellationToken::new();
        let (concluded_tx, concluded) = watch::channel(Conclusion::Pending);
        live.runs.lock().expect("runs lock").insert(
            run.id,
            LiveRun {
                concluded,
                cancel: cancel.clone(),
            },
        );
        let ctx = ModuleContext {
            session_id,
            session_uuid: started.session.uuid,
            user: started.session.user,
            acting_user: run.acting_user.clone(),
            module_id,
            run_id: run.id,
            parameters,
            endpoint: inner.endpoint.get().cloned().unwrap_or_default(),
            credential: credential.as_ref().map(|c| c.token().clone()),
            traceparent: crate::telemetry::outgoing_traceparent(),
            cancel: cancel.clone(),
            runs: Arc::clone(&inner.store) as Arc<dyn crate::store::RunStore>,
        };
        let this = self.clone();
        let live = Arc::clone(&live);
        let run_id = run.id;
        // The run's lines name the request that opened it.
        let opened_by = Cause::current();
        let began = Instant::now();
        tokio::spawn(async move {
            let outcome = execute(module.run(ctx), &cancel).await;
            drop(credential);
            let conclusion = match this.record(run_id, &outcome).await {
                Some(recorded) => {
                    let took = began.elapsed();
                    Cause::sync_scope(opened_by, || this.concluded(&recorded, took));
                    Conclusion::Recorded(recorded)
                }
                None => Conclusion::Unrecorded,
            };
            live.runs.lock().expect("runs lock").remove(&run_id);
            drop((server_slot, session_slot));
            concluded_tx.send_replace(conclusion);
        });
        Ok(run)
    }

    /// Logs and counts a run that concluded, `took` after it started.
    fn concluded(&self, run: &ModuleRun, took: Duration) {
        let state = run.state();
        self.inner.metrics.run_concluded(state, took);
        let failure = run.failure();
        tracing::info!(
            session_id = run.session_id.get(),
            run_id = run.id.get(),
            module_id = run.module_id.as_str(),
            acting_user = run.acting_user.as_str(),
            state = run_state_name(state),
            failure_kind = failure.map(|failure| failure_kind_name(failure.kind)),
            failure_message = failure.map(|failure| failure.message.as_str()),
            exit_code = failure.and_then(|failure| failure.exit_code),
            duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            "module run concluded"
        );
    }

    /// Writes a run's outcome, retrying while the store is unavailable.
    /// Returns the run's durable record, or `None` when it gave up.
    async fn record(&self, run_id: RunId, outcome: &RunOutcome) -> Option<ModuleRun> {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=RECORD_ATTEMPTS {
            match self
                .inner
                .store
                .finish_run(run_id, outcome, self.inner.clock.now())
                .await
            {
                Ok(run) => {
                    return Some(run);
                }
                Err(error) => {
                    tracing::warn!(run_id = %run_id, attempt, error = %error, "recording a run's outcome failed");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        tracing::error!(run_id = %run_id, "gave up recording a run's outcome; it stays running until the next start");
        None
    }

    /// The latest run of `module_id` in a session, once it concluded or
    /// `timeout` passed, whichever is first. Waiting never cancels the run.
    ///
    /// # Errors
    /// [`Error::ModuleStillRunning`] when it did not conclude in time;
    /// [`Error::ModuleNotOpened`], [`Error::SessionNotFound`],
    /// [`Error::StoreUnavailable`].
    pub async fn wait(
        &self,
        _caller: &Principal,
        session_id: SessionId,
        module_id: ModuleId,
        timeout: Duration,
    ) -> Result<ModuleRun> {
        let store = &self.inner.store;
        let run = store.latest_run(session_id, &module_id).await?;
        if run.state() != RunState::Running {
            return Ok(run);
        }
        if let Some(mut concluded) = self.subscribe(session_id, run.id) {
            let waited = tokio::time::timeout(timeout, concluded.wait_for(Conclusion::is_final));
            if let Ok(Ok(conclusion)) = waited.await
                && let Conclusion::Recorded(recorded) = &*conclusion
            {
                // The record this process just made durable: no need to read it back.
                return Ok(recorded.clone());
            }
        }
        let run = store.run(run.id).await?;
        if run.state() == RunState::Running {
            return Err(Error::ModuleStillRunning {
                session_id,
                module_id,
                run_id: run.id,
            });
        }
        Ok(run)
    }

    /// Runs `work` (moving a session to closing, or ending it) while no
    /// module can be opened in the session; `work` is told whether any run
    /// is in progress there.
    pub(super) async fn exclusively<T, F>(
        &self,
        session_id: SessionId,
        work: impl FnOnce(bool) -> F,
    ) -> T
    where
        F: Future<Output = T>,
    {
        let live = self.live(session_id);
        let _gate = live.gate.write().await;
        let running = !live.runs.lock().expect("runs lock").is_empty();
        work(running).await
    }

    /// Waits up to `grace` for the session's runs to conclude, then cancels
    /// the rest and waits for them to stop.
    pub(super) async fn drain(&self, session_id: SessionId, grace: Duration) {
        let live = self
            .inner
            .sessions
            .lock()
            .expect("sessions lock")
            .get(&session_id)
            .cloned();
        let Some(live) = live else {
            return;
        };
        let runs = live.runs_in_progress();
        if runs.is_empty() {
            return;
        }
        let all_concluded = join_all(runs.iter().map(|run| {
            let mut concluded = run.concluded.clone();
            async move {
                let _ = concluded.wait_for(Conclusion::is_final).await;
            }
        }));
        tokio::pin!(all_concluded);
        if tokio::time::timeout(grace, &mut all_concluded)
            .await
            .is_err()
        {
            tracing::info!(session_id = %session_id, "grace over; cancelling the session's runs");
            for run in &runs {
                run.cancel.cancel();
            }
            all_concluded.await;
        }
    }

    /// Cancels the runs in progress in sessions that have ended, and forgets
    /// those sessions: what a node does when it learns that another node
    /// took it over (ending its sessions) while it was still running.
    /// Returns how many runs it cancelled.
    pub(super) async fn cancel_runs_of_ended_sessions(&self) -> usize {
        let live: Vec<(SessionId, Arc<LiveSession>)> = self
            .inner
            .sessions
            .lock()
            .expect("sessions lock")
            .iter()
            .map(|(&id, live)| (id, Arc::clone(live)))
            .collect();
        let mut cancelled = 0;
        for (session_id, live) in live {
            let runs = live.runs_in_progress();
            if runs.is_empty() {
                continue;
            }
            match self.inner.store.session(session_id).await {
                Ok(session) if session.state == SessionState::Ended => {
                    for run in &runs {
                        run.cancel.cancel();
                    }
                    cancelled += runs.len();
                    self.forget(session_id);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    session_id = %session_id, error = %error,
                    "could not tell whether a session with runs has ended"
                ),
            }
        }
        cancelled
    }

    /// Drops what this process keeps of a session that ended.
    pub(super) fn forget(&self, session_id: SessionId) {
        self.inner
            .sessions
            .lock()
            .expect("sessions lock")
            .remove(&session_id);
    }

    fn live(&self, session_id: SessionId) -> Arc<LiveSession> {
        Arc::clone(
            self.inner
                .sessions
                .lock()
                .expect("sessions lock")
                .entry(session_id)
                .or_default(),
        )
    }

    fn subscribe(
        &self,
        session_id: SessionId,
        run_id: RunId,
    ) -> Option<watch::Receiver<Conclusion>> {
        let sessions = self.inner.sessions.lock().expect("sessions lock");
        let runs = sessions.get(&session_id)?.runs.lock().expect("runs lock");
        runs.get(&run_id).map(|run| run.concluded.clone())
    }
}

/// Drives one run to its outcome: its own result, or — once `cancel` fires
/// — cancelled, after giving it [`CANCEL_GRACE`] to stop by itself. A panic
/// in the module is a failed run, not a crashed server.
async fn execute(
    work: impl Future<Output = Result<serde_json::Value, ModuleFailure>>,
    cancel: &CancellationToken,
) -> RunOutcome {
    let work = AssertUnwindSafe(work).catch_unwind();
    tokio::pin!(work);
    let finished = tokio::select! {
        finished = &mut work => Some(finished),
        () = cancel.cancelled() => tokio::time::timeout(CANCEL_GRACE, &mut work).await.ok(),
    };
    let cancelled = cancel.is_cancelled();
    match finished {
        Some(Ok(Ok(value))) if !cancelled => match check_value(&value) {
            Ok(()) => RunOutcome::Succeeded(value),
            Err(unreadable) => RunOutcome::Failed(unreadable),
        },
        Some(Ok(Err(failure))) if failure.kind == FailureKind::Cancelled => {
            RunOutcome::Cancelled(failure)
        }
        Some(Ok(Err(failure))) if !cancelled => RunOutcome::Failed(failure),
        Some(Err(_panic)) if !cancelled => {
            RunOutcome::Failed(ModuleFailure::error("the module panicked"))
        }
        _ => RunOutcome::Cancelled(ModuleFailure::new(
            FailureKind::Cancelled,
            "the session closed before the run concluded",
        )),
    }
}
