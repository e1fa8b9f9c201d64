//! The clientless lifecycle, in one place: open a session on behalf of a
//! user, run modules in it (under its *gate*), close it gracefully (closing,
//! drain, ended), expire it, end them all at shutdown, and forget what this
//! process kept of it.
//!
//! The gate: opening a module holds it shared, moving the session to
//! closing (or ending it) holds it exclusively. So once a session is
//! closing, every run the store accepted for it is also known here, and a
//! drain cannot miss one. The runs themselves are the [`runner`]'s.

pub mod runner;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::RwLock;

use self::runner::Runner;
use crate::access::{self, Action, OnSession};
use crate::clock::Clock;
use crate::model::{
    EndReason, Error, Expiry, ModuleId, ModuleRun, Result, Session, SessionId, SessionKind,
    SessionState, UserId,
};
use crate::principal::Principal;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::task::run_to_completion;

/// How long clientless sessions may live, and how long their modules get
/// when they close.
#[derive(Clone, Debug)]
pub struct ClientlessPolicy {
    /// How long running modules may take to conclude when a clientless
    /// session closes and the caller gave no grace.
    pub close_grace: Duration,
    /// A clientless session with no running module and no activity for this
    /// long is ended; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A clientless session older than this is ended; `None`: never.
    pub max_lifetime: Option<Duration>,
}

/// The owner of every clientless session of this node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clientless {
    /// Creating and reading sessions.
    sessions: Sessions,
    /// Where sessions live.
    store: Arc<dyn Store>,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
    /// The runs in progress, and each session's gate.
    runner: Runner,
    /// Lifetimes and the close grace.
    policy: ClientlessPolicy,
    /// This node: the owner of the sessions it opens.
    node_id: Arc<str>,
    /// Whether the shutdown has started. Each open holds it shared until
    /// its session is created; the shutdown sets it, holding it
    /// exclusively, before it lists the sessions to end: so every session
    /// an open acknowledged is among them, and no open is acknowledged
    /// after.
    stopping: Arc<RwLock<bool>>,
}

impl Clientless {
    /// The clientless lifecycle of node `node_id`.
    #[must_use]
    pub fn new(
        sessions: Sessions,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        runner: Runner,
        policy: ClientlessPolicy,
        node_id: &str,
    ) -> Self {
        Self {
            sessions,
            store,
            clock,
            runner,
            policy,
            node_id: Arc::from(node_id),
            stopping: Arc::new(RwLock::new(false)),
        }
    }

    /// Tells modules where the server listens (`http://HOST:PORT`).
    pub fn set_endpoint(&self, endpoint: String) {
        self.runner.set_endpoint(endpoint);
    }

    /// Opens a clientless session on behalf of `user`, unless the shutdown
    /// has started.
    ///
    /// # Errors
    /// [`Error::ServerStopping`], [`Error::TooManySessions`],
    /// [`Error::StoreUnavailable`].
    pub async fn open(&self, caller: &Principal, user: UserId) -> Result<Session> {
        let stopping = Arc::clone(&self.stopping).read_owned().await;
        if *stopping {
            return Err(Error::ServerStopping);
        }
        let (sessions, caller) = (self.sessions.clone(), caller.clone());
        run_to_completion(async move {
            // Held until the session exists, even if the caller stops waiting.
            let _open = stopping;
            sessions
                .create(&caller, user, SessionKind::Clientless, Default::default())
                .await
        })
        .await
    }

    /// Starts a run of `module_id` in an open clientless session (under its
    /// gate, shared) and returns it once it is recorded as running.
    ///
    /// # Errors
    /// [`Error::ModuleNotFound`], [`Error::TooManyRunningModules`], the
    /// refusals of [`Session::start_run`], [`Error::SessionNotFound`],
    /// [`Error::StoreUnavailable`].
    pub async fn open_module(
        &self,
        caller: &Principal,
        session_id: SessionId,
        module_id: ModuleId,
        parameters: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ModuleRun> {
        let session_user = self
            .sessions
            .authorize(caller, session_id, OnSession::Read)
            .await?;
        let may_run =
            self.sessions
                .access()
                .run_check(caller, session_id, session_user, module_id.clone());
        let started = self
            .runner
            .open(caller, session_id, module_id, parameters, may_run)
            .await;
        if let Err(
            Error::SessionNotFound { .. }
            | Error::SessionNotClientless { .. }
            | Error::SessionEnded { .. },
        ) = &started
        {
            // Such a session never runs modules here: keep no state.
            self.runner.forget(session_id);
        }
        started
    }

    /// The latest run of `module_id` in a session, once it concluded or
    /// `timeout` passed. Waiting never cancels the run.
    ///
    /// # Errors
    /// [`Error::ModuleStillRunning`], [`Error::ModuleNotOpened`],
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn return_value(
        &self,
        caller: &Principal,
        session_id: SessionId,
        module_id: ModuleId,
        timeout: Duration,
    ) -> Result<ModuleRun> {
        self.sessions
            .authorize(caller, session_id, OnSession::Read)
            .await?;
        self.runner
            .wait(caller, session_id, module_id, timeout)
            .await
    }

    /// `EndSession`: an interactive session ends at once; a clientless one
    /// closes gracefully with the default grace. Ending an ended session
    /// returns its record unchanged.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn end(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let session = self.sessions.info(caller, id).await?;
        let facts = access::Session {
            id,
            user: &session.user,
        };
        self.sessions
            .access()
            .check(caller, Action::EndSession(facts))?;
        match session.kind {
            SessionKind::Interactive => self.sessions.end_interactive(caller, id).await,
            SessionKind::Clientless => self.close(caller, id, None).await,
        }
    }

    /// `CloseClientlessSession`: the session goes closing (no new modules),
    /// its running modules get `grace` (default: the policy's) to conclude,
    /// the rest are cancelled, and it ends with [`EndReason::ClosedByClient`].
    /// Closing an ended session returns its record unchanged; concurrent
    /// closes all return once it ended. The close goes on even if the caller
    /// stops waiting.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::SessionNotClientless`],
    /// [`Error::StoreUnavailable`].
    pub async fn close(
        &self,
        caller: &Principal,
        id: SessionId,
        grace: Option<Duration>,
    ) -> Result<Session> {
        self.sessions.authorize(caller, id, OnSession::End).await?;
        let this = self.clone();
        let grace = grace.unwrap_or(self.policy.close_grace);
        let session = run_to_completion(async move {
            this.close_here(id, grace, EndReason::ClosedByClient).await
        })
        .await?;
        tracing::debug!(session_id = %id, caller = %caller, "clientless session closed");
        Ok(session)
    }

    /// Ends every clientless session this node owns, draining each like a
    /// close with `grace`, for `reason` (server shutdown): once the opens in
    /// progress finished, and refusing any open after them
    /// ([`Error::ServerStopping`]).
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when they cannot be listed; a session
    /// that fails to end is logged and left to the next start's recovery.
    pub async fn close_all(&self, grace: Duration, reason: EndReason) -> Result<usize> {
        // No open from now on, and those in progress finish first.
        *self.stopping.write().await = true;
        let ids = self
            .store
            .unended_clientless_sessions(&self.node_id)
            .await?;
        let closes = ids.iter().map(|&id| async move {
            let closed = self.close_here(id, grace, reason).await;
            if let Err(error) = &closed {
                tracing::error!(session_id = %id, error = %error, "could not end a session");
            }
            closed.is_ok()
        });
        Ok(join_all(closes).await.into_iter().filter(|&ok| ok).count())
    }

    /// Ends the clientless sessions of this node that outlived the idle
    /// timeout or the maximum lifetime ([`Expiry`]), draining them like a
    /// close. Returns how many it ended.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the candidates cannot be listed.
    pub async fn reap(&self) -> Result<usize> {
        let expiry = Expiry::at(
            self.clock.now(),
            self.policy.idle_timeout,
            self.policy.max_lifetime,
        );
        if expiry.is_off() {
            return Ok(0);
        }
        let candidates = self.store.expired_sessions(&self.node_id, &expiry).await?;
        let expirations = candidates.iter().map(|&id| async move {
            match self.expire(id, &expiry).await {
                Ok(ended) => ended,
                Err(error) => {
                    tracing::error!(session_id = %id, error = %error, "could not end an expired session");
                    false
                }
            }
        });
        Ok(join_all(expirations)
            .await
            .into_iter()
            .filter(|&ended| ended)
            .count())
    }

    /// Cancels the runs in progress in sessions that have ended, and forgets
    /// those sessions: what a node does when it learns that another node
    /// took it over (ending its sessions) while it was still running.
    /// Returns how many runs it cancelled.
    pub async fn cancel_runs_of_ended_sessions(&self) -> usize {
        self.runner.cancel_runs_of_ended_sessions().await
    }

    /// Ends one session if it still is expired when checked under its gate.
    async fn expire(&self, id: SessionId, expiry: &Expiry) -> Result<bool> {
        let reason = self
            .runner
            .exclusively(id, |_| {
                self.store
                    .begin_closing_expired(id, expiry, self.clock.now())
            })
            .await?;
        let Some(reason) = reason else {
            return Ok(false);
        };
        self.drain_and_end(id, self.policy.close_grace, reason)
            .await?;
        tracing::debug!(session_id = %id, reason = crate::store::names::reason_name(reason), "clientless session expired");
        Ok(true)
    }

    /// The graceful close on this node: closing, drain within `grace`, ended
    /// for `reason`. A session with no run in progress ends at once.
    async fn close_here(
        &self,
        id: SessionId,
        grace: Duration,
        reason: EndReason,
    ) -> Result<Session> {
        let now = self.clock.now();
        let closing = self
            .runner
            .exclusively(id, |running| async move {
                if running {
                    self.store.begin_closing(id, reason, now).await
                } else {
                    self.store.end_clientless_session(id, reason, now).await
                }
            })
            .await;
        let closing = match closing {
            Err(error @ (Error::SessionNotFound { .. } | Error::SessionNotClientless { .. })) => {
                self.runner.forget(id);
                return Err(error);
            }
            other => other?,
        };
        if closing.state == SessionState::Ended {
            self.runner.forget(id);
            return Ok(closing);
        }
        self.drain_and_end(id, grace, reason).await
    }

    /// The end of a closing session: its runs get `grace`, then it ends for
    /// `reason` and this process forgets it.
    async fn drain_and_end(
        &self,
        id: SessionId,
        grace: Duration,
        reason: EndReason,
    ) -> Result<Session> {
        self.runner.drain(id, grace).await;
        let session = self.store.end_session(id, reason, self.clock.now()).await?;
        self.runner.forget(id);
        Ok(session)
    }
}
