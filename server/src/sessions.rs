//! The session rules: starting, reading, touching and ending interactive
//! sessions, and opening and closing clientless ones.

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Clock;
use crate::error::Result;
use crate::model::{ClientDescription, EndReason, Session, SessionId, SessionKind, UserId};
use crate::principal::Principal;
use crate::store::{NewSession, SessionQuery, Store};
use crate::task::run_to_completion;

/// Limits the session rules enforce.
#[derive(Clone, Debug, Default)]
pub struct SessionLimits {
    /// The most open (not ended) sessions one user may have; `None`: no
    /// limit.
    pub max_open_per_user: Option<u32>,
}

/// The session authority's session operations.
#[derive(Clone, Debug)]
pub struct Sessions {
    /// Where sessions live.
    store: Arc<dyn Store>,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
    /// The limits to enforce.
    limits: SessionLimits,
    /// This server's node id: the owner recorded on the sessions it opens.
    node_id: Arc<str>,
}

impl Sessions {
    /// Session operations over `store`.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: SessionLimits,
        node_id: &str,
    ) -> Self {
        Self {
            store,
            clock,
            limits,
            node_id: Arc::from(node_id),
        }
    }

    /// Ends the clientless sessions this node left open when it last
    /// stopped without ending them (they cannot have running modules any
    /// more), with [`EndReason::ServerRestart`]. Interactive sessions stay
    /// open. Returns how many sessions it ended.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`].
    pub async fn recover(&self) -> Result<u64> {
        let ended = self
            .store
            .end_clientless_sessions_of(&self.node_id, EndReason::ServerRestart, self.clock.now())
            .await?;
        if ended > 0 {
            tracing::warn!(
                ended,
                "ended clientless sessions left open by a previous run"
            );
        }
        Ok(ended)
    }

    /// The user a session belongs to.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn user(&self, _caller: &Principal, id: SessionId) -> Result<UserId> {
        self.store.session_user(id).await
    }

    /// A session's record.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn info(&self, _caller: &Principal, id: SessionId) -> Result<Session> {
        self.store.session(id).await
    }

    /// The sessions matching `query`.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`].
    pub async fn list(&self, _caller: &Principal, query: &SessionQuery) -> Result<Vec<Session>> {
        self.store.list_sessions(query).await
    }

    /// Registers a new interactive session for `user`.
    ///
    /// # Errors
    /// [`crate::Error::TooManySessions`], [`crate::Error::StoreUnavailable`].
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
    /// [`crate::Error::TooManySessions`], [`crate::Error::StoreUnavailable`].
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
            max_open_per_user: self.limits.max_open_per_user,
        };
        let store = Arc::clone(&self.store);
        let session = run_to_completion(async move { store.create_session(new).await }).await?;
        tracing::info!(
            session_id = %session.id, user = %session.user, kind = ?session.kind,
            caller = %caller, "session opened"
        );
        Ok(session)
    }

    /// Records activity on a session that has not ended.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::StoreUnavailable`].
    pub async fn touch(&self, _caller: &Principal, id: SessionId) -> Result<Session> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.touch_session(id, now).await }).await
    }

    /// Ends a session because its client asked to. A clientless session is
    /// closed gracefully ([`Sessions::close_clientless`]). Ending an ended
    /// session returns its record unchanged.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn end(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let session = self.store.session(id).await?;
        match session.kind {
            SessionKind::Interactive => self.finish(caller, id, EndReason::ClosedByClient).await,
            SessionKind::Clientless => self.close_clientless(caller, id).await,
        }
    }

    /// Closes a clientless session: it goes closing (no new modules), then
    /// ends with [`EndReason::ClosedByClient`]. Closing an ended session
    /// returns its record unchanged.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`],
    /// [`crate::Error::SessionNotClientless`],
    /// [`crate::Error::StoreUnavailable`].
    pub async fn close_clientless(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        let closing = run_to_completion(async move { store.begin_closing(id, now).await }).await?;
        if closing.end_time.is_some() {
            return Ok(closing);
        }
        self.finish(caller, id, EndReason::ClosedByClient).await
    }

    /// Ends a session for `reason`, durably.
    async fn finish(
        &self,
        caller: &Principal,
        id: SessionId,
        reason: EndReason,
    ) -> Result<Session> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        let session =
            run_to_completion(async move { store.end_session(id, reason, now).await }).await?;
        tracing::info!(session_id = %id, reason = ?session.end_reason, caller = %caller, "session ended");
        Ok(session)
    }
}
