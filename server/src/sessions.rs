//! Sessions: creating them (both kinds), reading them ("whose session is
//! this?" from memory), touching and ending interactive ones, and recovery
//! at start-up. The clientless lifecycle is [`crate::clientless`]'s.

use std::sync::Arc;

use uuid::Uuid;

use crate::access::{self, Access, Action, Listable, OnSession};
use crate::clock::Clock;
use crate::known_sessions::KnownSessions;
use crate::model::Result;
use crate::model::{
    ClientDescription, EndReason, NewSession, Session, SessionFacts, SessionId, SessionKind, UserId,
};
use crate::principal::Principal;
use crate::store::{Recovered, SessionQuery, Store};
use crate::task::run_to_completion;

/// The session authority's session operations. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sessions {
    /// Where sessions live.
    store: Arc<dyn Store>,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
    /// The most open (not ended) sessions one user may have; `None`: no
    /// limit.
    max_open_per_user: Option<u32>,
    /// This server's node id: the owner recorded on the sessions it opens.
    node_id: Arc<str>,
    /// Whose session is which and who owns it, from memory (the hot path).
    known: Arc<KnownSessions>,
    /// Who may do what.
    access: Access,
}

impl Sessions {
    /// Session operations over `store`, keeping the facts of up to about
    /// `cached` sessions in memory ([`crate::Config::cached_sessions`]).
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        max_open_per_user: Option<u32>,
        node_id: &str,
        access: Access,
        cached: usize,
    ) -> Self {
        Self {
            store,
            clock,
            max_open_per_user,
            node_id: Arc::from(node_id),
            known: Arc::new(KnownSessions::new(cached)),
            access,
        }
    }

    /// The access rules these operations apply.
    #[must_use]
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Checks that `caller` may take `action` on session `id` (from the
    /// session's facts in memory); the session's user on success.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`] also for a session the caller may
    /// not read; [`crate::Error::Unauthenticated`],
    /// [`crate::Error::PermissionDenied`], [`crate::Error::StoreUnavailable`].
    pub async fn authorize(
        &self,
        caller: &Principal,
        id: SessionId,
        action: OnSession<'_>,
    ) -> Result<UserId> {
        Ok(self.authorized_facts(caller, id, action).await?.user)
    }

    /// [`Sessions::authorize`], returning all the session's facts.
    async fn authorized_facts(
        &self,
        caller: &Principal,
        id: SessionId,
        action: OnSession<'_>,
    ) -> Result<SessionFacts> {
        let facts = self.facts(id).await?;
        let session = access::Session {
            id,
            user: &facts.user,
        };
        self.access.check(caller, action.on(session))?;
        Ok(facts)
    }

    /// Recovery at start-up: the clientless sessions this node left open
    /// when it last stopped without ending them cannot have running modules
    /// any more. Their running runs are recorded as failed (interrupted) and
    /// the sessions end with [`EndReason::ServerRestart`]. Interactive
    /// sessions stay open.
    ///
    /// # Errors
    /// [`crate::Error::StoreUnavailable`].
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
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn user(&self, caller: &Principal, id: SessionId) -> Result<UserId> {
        self.authorize(caller, id, OnSession::Read).await
    }

    /// The node that owns a session (runs its modules).
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn owner(&self, caller: &Principal, id: SessionId) -> Result<String> {
        let facts = self.authorized_facts(caller, id, OnSession::Read).await?;
        Ok(facts.owner_node)
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
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn info(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let session = self.store.session(id).await?;
        let facts = access::Session {
            id,
            user: &session.user,
        };
        self.access.check(caller, Action::ReadSession(facts))?;
        Ok(session)
    }

    /// The sessions matching `query` that `caller` may read.
    ///
    /// # Errors
    /// [`crate::Error::Unauthenticated`], [`crate::Error::StoreUnavailable`].
    pub async fn list(&self, caller: &Principal, query: &SessionQuery) -> Result<Vec<Session>> {
        match self.access.listable(caller)? {
            Listable::All => self.store.list_sessions(query).await,
            Listable::OfUser(user) => {
                if query.user.as_ref().is_some_and(|asked| *asked != user) {
                    return Ok(Vec::new());
                }
                let query = SessionQuery {
                    user: Some(user),
                    ..query.clone()
                };
                self.store.list_sessions(&query).await
            }
            Listable::Only(id) => {
                let beyond = |after: SessionId| {
                    if query.newest_first {
                        after <= id
                    } else {
                        after >= id
                    }
                };
                if query.after.is_some_and(beyond) || query.limit == 0 {
                    return Ok(Vec::new());
                }
                let session = match self.store.session(id).await {
                    Ok(session) => session,
                    Err(crate::Error::SessionNotFound { .. }) => return Ok(Vec::new()),
                    Err(error) => return Err(error),
                };
                let wanted = query.user.as_ref().is_none_or(|user| *user == session.user)
                    && query.kind.is_none_or(|kind| kind == session.kind)
                    && query.wants_state(session.state)
                    && query.started_after.is_none_or(|t| session.start_time >= t)
                    && query.started_before.is_none_or(|t| session.start_time < t);
                Ok(if wanted { vec![session] } else { Vec::new() })
            }
            Listable::Nothing => Ok(Vec::new()),
        }
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

    /// Creates an open session of `kind` for `user` (clientless ones are
    /// opened through [`crate::clientless::Clientless::open`]).
    ///
    /// # Errors
    /// [`crate::Error::TooManySessions`], [`crate::Error::StoreUnavailable`].
    pub async fn create(
        &self,
        caller: &Principal,
        user: UserId,
        kind: SessionKind,
        client: ClientDescription,
    ) -> Result<Session> {
        self.access
            .check(caller, Action::Open { kind, user: &user })?;
        let new = NewSession {
            uuid: Uuid::now_v7(),
            user,
            kind,
            client,
            now: self.clock.now(),
            owner_node: self.node_id.to_string(),
            max_open_per_user: self.max_open_per_user,
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
            session_id = %session.id, user = %session.user, kind = crate::store::names::kind_name(session.kind),
            caller = %caller, "session opened"
        );
        Ok(session)
    }

    /// Records activity on a session that has not ended.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::SessionEnded`],
    /// [`crate::Error::StoreUnavailable`].
    pub async fn touch(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        self.authorize(caller, id, OnSession::Touch).await?;
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        run_to_completion(async move { store.touch_session(id, now).await }).await
    }

    /// Ends an interactive session because its client asked to (a
    /// clientless one closes through [`crate::clientless::Clientless`]).
    /// Ending an ended session returns its record unchanged. The caller's
    /// permission is [`crate::clientless::Clientless::end`]'s to check.
    ///
    /// # Errors
    /// [`crate::Error::SessionNotFound`], [`crate::Error::StoreUnavailable`].
    pub async fn end_interactive(&self, caller: &Principal, id: SessionId) -> Result<Session> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        let reason = EndReason::ClosedByClient;
        let session =
            run_to_completion(async move { store.end_session(id, reason, now).await }).await?;
        tracing::debug!(session_id = %id, caller = %caller, "session ended");
        Ok(session)
    }
}
