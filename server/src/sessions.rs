//! The session rules: starting, reading, touching and ending interactive
//! sessions; opening clientless ones and closing them gracefully (running
//! modules conclude first); ending the clientless sessions that outlived
//! their idle timeout or maximum lifetime; and recovery at start-up.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use uuid::Uuid;

use crate::clock::Clock;
use crate::known_sessions::KnownSessions;
use crate::model::{
    ClientDescription, EndReason, Session, SessionFacts, SessionId, SessionKind, SessionState,
    UserId,
};
use crate::model::{Error, Result};
use crate::modules::runner::Runner;
use crate::principal::Principal;
use crate::store::{Expiry, NewSession, Recovered, SessionQuery, Store};
use crate::task::run_to_completion;

/// The limits and lifetimes the session rules enforce.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    /// The most open (not ended) sessions one user may have; `None`: no
    /// limit.
    pub max_open_per_user: Option<u32>,
    /// How long running modules may take to conclude when a clientless
    /// session closes and the caller gave no grace.
    pub close_grace: Duration,
    /// A clientless session with no running module and no activity for this
    /// long is ended; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A clientless session older than this is ended; `None`: never.
    pub max_lifetime: Option<Duration>,
}

/// The session authority's session operations. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sessions {
    /// Where sessions live.
    store: Arc<dyn Store>,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
    /// The module runs of clientless sessions, drained when they close.
    runner: Runner,
    /// The limits and lifetimes to enforce.
    policy: SessionPolicy,
    /// This server's node id: the owner recorded on the sessions it opens.
    node_id: Arc<str>,
    /// Whose session is which and who owns it, from memory (the hot path).
    known: Arc<KnownSessions>,
}

/// How many sessions' facts are kept in memory.
const REMEMBERED_SESSIONS: usize = 1 << 20;

impl Sessions {
    /// Session operations over `store`.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        runner: Runner,
        policy: SessionPolicy,
        node_id: &str,
    ) -> Self {
        Self {
            store,
            clock,
            runner,
            policy,
            node_id: Arc::from(node_id),
            known: Arc::new(KnownSessions::new(REMEMBERED_SESSIONS)),
        }
    }

    /// Recovery at start-up: the clientless sessions this node left open
    /// when it last stopped without ending them cannot have running modules
    /// any more. Their running runs are recorded as failed (interrupted) and
    /// the sessions end with [`EndReason::ServerRestart`]. Interactive
    /// sessions stay open.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn recover(&self) -> Result<Recovered> {
        let recovered = self
            .store
            .recover_node(&self.node_id, EndReason::ServerRestart, self.clock.now())
            .await?;
        if recovered != Recovered::default() {
            tracing::warn!(
                sessions = recovered.sessions,
                runs = recovered.runs,
                "ended clientless sessions and runs left open by a previous run"
            );
        }
        Ok(recovered)
    }

    /// The user a session belongs to.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn user(&self, _caller: &Principal, id: SessionId) -> Result<UserId> {
        Ok(self.facts(id).await?.user)
    }

    /// The node that owns a session (runs its modules).
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn owner(&self, _caller: &Principal, id: SessionId) -> Result<String> {
        Ok(self.facts(id).await?.owner_node)
    }

    async fn facts(&self, id: SessionId) -> Result<SessionFacts> {
        if let Some(facts) = self.known.get(id) {
            return Ok(facts);
        }
        let facts = self.store.session_facts(id).await?;
        self.known.insert(id, facts.clone());
        Ok(facts)
    }

    /// A session's record.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn info(&self, _caller: &Principal, id: SessionId) -> Result<Session> {
        self.store.session(id).await
    }

    /// The sessions matching `query`.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`].
    pub async fn list(&self, _caller: &Principal, query: &SessionQuery) -> Result<Vec<Session>> {
        self.store.list_sessions(query).await
    }

    /// Registers a new interactive session for `user`.
    ///
    /// # Errors
    /// [`Error::TooManySessions`], [`Error::StoreUnavailable`].
    pub async fn start(
        &self,
        caller: &Principal,
        user: UserId,
        client: ClientDescription,
    ) -> Result<Session> {
        self.create(caller, user, SessionKind::Interactive, client)
            .await
    }

    /// Opens a clientless session on behalf of `user`.
    ///
    /// # Errors
    /// [`Error::TooManySessions`], [`Error::StoreUnavailable`].
    pub async fn open_clientless(&self, caller: &Principal, user: UserId) -> Result<Session> {
        self.create(
            caller,
            user,
            SessionKind::Clientless,
            ClientDescription::default(),
        )
        .await
    }

    async fn create(
        &self,
        caller: &Principal,
        user: UserId,
        kind: SessionKind,
        client: ClientDescription,
    ) -> Result<Session> {
        let new = NewSession {
            uuid: Uuid::now_v7(),
            user,
            kind,
            client,
            now: self.clock.now(),
            owner_node: self.node_id.to_string(),
            max_open_per_user: self.policy.max_open_per_user,
        };
        let store = Arc::clone(&self.store);
        let session = run_to_completion(async move { store.create_session(new).await }).await?;
        self.known.insert(
            session.id,
            SessionFacts {
                user: session.user.clone(),
                owner_node: session.owner_node.clone(),
            },
        );
        tracing::debug!(
            session_id = %session.id, user = %session.user, kind = ?session.kind,
            caller = %caller, "session opened"
        );
        Ok(session)
    }

    /// Records activity on a session that has not ended.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::SessionEnded`],
    /// [`Error::StoreUnavailable`].
    pub async fn touch(&self, _caller: &Principal, id: SessionId) -> Result<Session> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.touch_session(id, now).await }).await
    }

    /// Ends a session because its client asked to. A clientless session is
    /// closed gracefully with the default grace. Ending an ended session
    /// returns its record unchanged.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::StoreUnavailable`].
    pub async fn end(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let session = self.store.session(id).await?;
        match session.kind {
            SessionKind::Interactive => {
                let store = Arc::clone(&self.store);
                let now = self.clock.now();
                let reason = EndReason::ClosedByClient;
                let session =
                    run_to_completion(async move { store.end_session(id, reason, now).await })
                        .await?;
                tracing::debug!(session_id = %id, caller = %caller, "session ended");
                Ok(session)
            }
            SessionKind::Clientless => self.close_clientless(caller, id, None).await,
        }
    }

    /// Closes a clientless session: it goes closing (no new modules), its
    /// running modules get `grace` (default: the policy's) to conclude, the
    /// rest are cancelled, and it ends with [`EndReason::ClosedByClient`].
    /// Closing an ended session returns its record unchanged; concurrent
    /// closes all return once it ended. The close goes on even if the caller
    /// stops waiting.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`], [`Error::SessionNotClientless`],
    /// [`Error::StoreUnavailable`].
    pub async fn close_clientless(
        &self,
        caller: &Principal,
        id: SessionId,
        grace: Option<Duration>,
    ) -> Result<Session> {
        let this = self.clone();
        let grace = grace.unwrap_or(self.policy.close_grace);
        let session =
            run_to_completion(
                async move { this.close(id, grace, EndReason::ClosedByClient).await },
            )
            .await?;
        tracing::debug!(session_id = %id, caller = %caller, reason = ?session.end_reason, "clientless session closed");
        Ok(session)
    }

    /// Ends every clientless session this node owns, draining each like a
    /// close with `grace`, for `reason` (server shutdown).
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when they cannot be listed; a session
    /// that fails to end is logged and left to the next start's recovery.
    pub async fn close_all(&self, grace: Duration, reason: EndReason) -> Result<usize> {
        let ids = self
            .store
            .unended_clientless_sessions(&self.node_id)
            .await?;
        let closes = ids.iter().map(|&id| async move {
            let closed = self.close(id, grace, reason).await;
            if let Err(error) = &closed {
                tracing::error!(session_id = %id, error = %error, "could not end a session");
            }
            closed.is_ok()
        });
        Ok(join_all(closes).await.into_iter().filter(|&ok| ok).count())
    }

    /// Ends the clientless sessions of this node that outlived the idle
    /// timeout or the maximum lifetime, draining them like a close. Returns
    /// how many it ended.
    ///
    /// # Errors
    /// [`Error::StoreUnavailable`] when the candidates cannot be listed.
    pub async fn reap(&self) -> Result<usize> {
        let now = self.clock.now();
        let expiry = Expiry {
            idle_before: self.policy.idle_timeout.map(|t| now.minus(t)),
            started_before: self.policy.max_lifetime.map(|t| now.minus(t)),
        };
        if expiry.idle_before.is_none() && expiry.started_before.is_none() {
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

    /// Ends one session if it still is expired when checked under its gate.
    async fn expire(&self, id: SessionId, expiry: &Expiry) -> Result<bool> {
        let reason = self
            .runner
            .exclusively(id, |_| self.store.begin_closing_expired(id, expiry))
            .await?;
        let Some(reason) = reason else {
            return Ok(false);
        };
        self.runner.drain(id, self.policy.close_grace).await;
        self.store.end_session(id, reason, self.clock.now()).await?;
        self.runner.forget(id);
        tracing::info!(session_id = %id, reason = ?reason, "clientless session expired");
        Ok(true)
    }

    /// The graceful close: closing, drain within `grace`, ended for
    /// `reason`. A session with no run in progress ends at once.
    async fn close(&self, id: SessionId, grace: Duration, reason: EndReason) -> Result<Session> {
        let now = self.clock.now();
        let closing = self
            .runner
            .exclusively(id, |running| async move {
                if running {
                    self.store.begin_closing(id, now).await
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
        self.runner.drain(id, grace).await;
        let session = self.store.end_session(id, reason, self.clock.now()).await?;
        self.runner.forget(id);
        Ok(session)
    }
}
