//! Sessions: the record, its life (`Open` → `Closing` → `Ended`), and the
//! rules that move it: activity, the closing phase, ending, crash recovery,
//! expiry, and the per-user limit.

use uuid::Uuid;

use super::{ClientDescription, Error, Result, SessionId, Timestamp, UserId};

/// Who drives a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// A client logged in (StartSession / EndSession).
    Interactive,
    /// A headless session opened on behalf of a user to run modules.
    Clientless,
}

/// Where a session is in its life: `Open` → `Closing` → `Ended`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Live.
    Open,
    /// Clientless only: no new modules; running ones conclude.
    Closing,
    /// Over, for good.
    Ended,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// EndSession or CloseClientlessSession was called.
    ClosedByClient,
    /// No activity for longer than the idle timeout.
    IdleTimeout,
    /// The session outlived the maximum lifetime.
    MaxLifetime,
    /// The server ended it while shutting down.
    ServerShutdown,
    /// Its server died without ending it; ended at the next start.
    ServerRestart,
    /// Its replica stopped renewing its lease; another replica ended it.
    NodeLost,
}

/// The record of one session (a row of the sessions table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The store-assigned id.
    pub id: SessionId,
    /// The unique UUID (v7).
    pub uuid: Uuid,
    /// Whom the session belongs to; never changes.
    pub user: UserId,
    /// Interactive or clientless.
    pub kind: SessionKind,
    /// Open, closing or ended.
    pub state: SessionState,
    /// When it started.
    pub start_time: Timestamp,
    /// When it ended, once it has.
    pub end_time: Option<Timestamp>,
    /// The last recorded activity.
    pub last_activity_time: Timestamp,
    /// Why it ended, once it has.
    pub end_reason: Option<EndReason>,
    /// The user context: whom work in the session acts as now.
    pub effective_user: UserId,
    /// The client description of an interactive session; empty otherwise.
    pub client: ClientDescription,
    /// How many user-context scopes are open.
    pub user_context_depth: u32,
    /// The node that owns the session (opened it; runs its modules).
    pub owner_node: String,
}

/// What never changes about a session: whose it is and which node owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    /// The session's user.
    pub user: UserId,
    /// The node that owns it.
    pub owner_node: String,
}

impl Session {
    /// Refuses a change to a session that has ended: only reads remain.
    ///
    /// # Errors
    /// [`Error::SessionEnded`].
    pub fn ensure_not_ended(&self) -> Result<()> {
        if self.state == SessionState::Ended {
            return Err(Error::SessionEnded {
                session_id: self.id,
            });
        }
        Ok(())
    }

    /// Refuses a clientless-only operation on an interactive session.
    ///
    /// # Errors
    /// [`Error::SessionNotClientless`].
    pub fn ensure_clientless(&self) -> Result<()> {
        if self.kind != SessionKind::Clientless {
            return Err(Error::SessionNotClientless {
                session_id: self.id,
            });
        }
        Ok(())
    }

    /// The record with activity recorded at `now`: the last activity time
    /// never moves back (clocks of several replicas disagree a little).
    #[must_use]
    pub fn touched(&self, now: Timestamp) -> Self {
        Self {
            last_activity_time: self.last_activity_time.max(now),
            ..self.clone()
        }
    }

    /// `TouchSession`: activity on a session that has not ended.
    ///
    /// # Errors
    /// [`Error::SessionEnded`].
    pub fn touch(&self, now: Timestamp) -> Result<Self> {
        self.ensure_not_ended()?;
        Ok(self.touched(now))
    }

    /// The closing phase of a clientless session (no new modules; running
    /// ones conclude), with activity at `now`; `None` when it is already
    /// closing or ended (nothing changes).
    ///
    /// # Errors
    /// [`Error::SessionNotClientless`].
    pub fn begin_closing(&self, now: Timestamp) -> Result<Option<Self>> {
        self.ensure_clientless()?;
        if self.state != SessionState::Open {
            return Ok(None);
        }
        Ok(Some(Self {
            state: SessionState::Closing,
            ..self.touched(now)
        }))
    }

    /// What the record looks like once ended for `reason` at `now`; `None`
    /// when it already ended: the first end stands, with its reason and time.
    #[must_use]
    pub fn end(&self, reason: EndReason, now: Timestamp) -> Option<Self> {
        if self.state == SessionState::Ended {
            return None;
        }
        Some(Self {
            state: SessionState::Ended,
            end_time: Some(now),
            end_reason: Some(reason),
            ..self.clone()
        })
    }

    /// [`Session::end`] for a clientless session, refused for an
    /// interactive one.
    ///
    /// # Errors
    /// [`Error::SessionNotClientless`].
    pub fn end_clientless(&self, reason: EndReason, now: Timestamp) -> Result<Option<Self>> {
        self.ensure_clientless()?;
        Ok(self.end(reason, now))
    }

    /// What crash recovery does to a session of a node that stopped without
    /// ending it: a clientless session cannot have running modules any more
    /// and ends for `reason`; an interactive one stays as it is (`None`), as
    /// does one that already ended.
    #[must_use]
    pub fn recover(&self, reason: EndReason, now: Timestamp) -> Option<Self> {
        match self.kind {
            SessionKind::Clientless => self.end(reason, now),
            SessionKind::Interactive => None,
        }
    }

    /// Whether a request about this session must be served by the node
    /// that owns it rather than by `node`: a clientless session's runs and
    /// its close live on its owner until it ends; an interactive or ended
    /// session's records answer from any node.
    #[must_use]
    pub fn served_elsewhere(&self, node: &str) -> bool {
        self.kind == SessionKind::Clientless
            && self.state != SessionState::Ended
            && self.owner_node != node
    }
}

/// The fields of a session about to be created.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its UUID (v7).
    pub uuid: Uuid,
    /// Its user.
    pub user: UserId,
    /// Interactive or clientless.
    pub kind: SessionKind,
    /// The client description (empty for clientless sessions).
    pub client: ClientDescription,
    /// The start time, also its first activity time.
    pub now: Timestamp,
    /// The node that owns it: it runs its modules and ends it after a crash.
    pub owner_node: String,
    /// The most open (not ended) sessions its user may have, this one
    /// included; `None`: no limit.
    pub max_open_per_user: Option<u32>,
}

impl NewSession {
    /// The record of this session as created with `id`: what the store
    /// writes, without reading it back.
    #[must_use]
    pub fn into_session(self, id: SessionId) -> Session {
        Session {
            id,
            uuid: self.uuid,
            effective_user: self.user.clone(),
            user: self.user,
            kind: self.kind,
            state: SessionState::Open,
            start_time: self.now,
            end_time: None,
            last_activity_time: self.now,
            end_reason: None,
            client: self.client,
            user_context_depth: 0,
            owner_node: self.owner_node,
        }
    }
}

/// The per-user limit: whether `new` may be created when its user already
/// has `open` sessions that have not ended (those created before it in the
/// same transaction included).
///
/// # Errors
/// [`Error::TooManySessions`].
pub fn admit(new: &NewSession, open: u64) -> Result<()> {
    match new.max_open_per_user {
        Some(limit) if open >= u64::from(limit) => Err(Error::TooManySessions {
            user: new.user.as_str().to_owned(),
            limit,
        }),
        _ => Ok(()),
    }
}

/// When an open clientless session has outlived its welcome. A field that is
/// `None` is a limit that is off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expiry {
    /// Idle: no run running and no activity since before this time.
    pub idle_before: Option<Timestamp>,
    /// Too old: started before this time.
    pub started_before: Option<Timestamp>,
}

impl Expiry {
    /// The limits at `now` for an idle timeout and a maximum lifetime.
    #[must_use]
    pub fn at(
        now: Timestamp,
        idle_timeout: Option<std::time::Duration>,
        max_lifetime: Option<std::time::Duration>,
    ) -> Self {
        Self {
            idle_before: idle_timeout.map(|t| now.minus(t)),
            started_before: max_lifetime.map(|t| now.minus(t)),
        }
    }

    /// Whether every limit is off.
    #[must_use]
    pub fn is_off(&self) -> bool {
        self.idle_before.is_none() && self.started_before.is_none()
    }

    /// Why `session` has expired, if it has: only an open clientless session
    /// expires; the maximum lifetime wins over idleness; a session with a
    /// run `running` is not idle. `None` when it has not expired.
    #[must_use]
    pub fn applies_to(&self, session: &Session, running: bool) -> Option<EndReason> {
        if session.kind != SessionKind::Clientless || session.state != SessionState::Open {
            return None;
        }
        if self
            .started_before
            .is_some_and(|limit| session.start_time < limit)
        {
            return Some(EndReason::MaxLifetime);
        }
        let idle = self
            .idle_before
            .is_some_and(|limit| session.last_activity_time < limit);
        (idle && !running).then_some(EndReason::IdleTimeout)
    }

    /// The closing record of an expired session (an expiry is not activity)
    /// and why it expired; `None` when [`Expiry::applies_to`] says it has not.
    #[must_use]
    pub fn close(&self, session: &Session, running: bool) -> Option<(EndReason, Session)> {
        let reason = self.applies_to(session, running)?;
        Some((
            reason,
            Session {
                state: SessionState::Closing,
                ..session.clone()
            },
        ))
    }
}
